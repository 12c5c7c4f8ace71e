/*
 * mt_seal.c — sealing: due hours of the head become hour files.
 *
 * Order of a seal, so that a crash at any point leaves the old state or
 * the new one:
 *   1. write each due hour's new generation file: temp name, fsync,
 *      rename, fsync of the directory (mt_hourfile.c). An hour sealed
 *      before (late points) is merged: unchanged chunks are copied as
 *      bytes, changed ones decoded, merged (the head wins on equal
 *      timestamps) and encoded again;
 *   2. one LMDB transaction: record the generations with their sealed_seq,
 *      delete the head log's records below the floor (or, when old records
 *      pin it, write the log again without the sealed points), advance the
 *      generation counter;
 *   3. under the exclusive lock: switch the in-memory hour list, drop the
 *      sealed points from the head; then hand the replaced files to
 *      mt_engine_bury, which unlinks each once no reader's snapshot (in
 *      any process) can name it.
 * A crash before 2 leaves files no transaction references: open removes
 * them and the head still holds every point. A crash after 2 leaves
 * replaced files behind: open removes those too.
 *
 * The exact chunk summary (count, sum, min, max, first, last) is computed
 * here from the values being encoded, with no second pass over the disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_stats.h"
#include "mt_time.h"

#define RECORD_POINTS    (1u << 16) /* points per rewritten head record: bounds its buffers */
#define LOG_SLACK_POINTS ((uint64_t)1 << 20) /* sealed points the log may keep beyond 2x */

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    case MT_VT_UINT: return (double)v.u;
    case MT_VT_BOOL: return (double)v.u;
    default: return 0;
    }
}

static void summarize(mt_hf_entry *e, mt_vtype t, const mt_pts *p)
{
    e->type = (uint8_t)t;
    e->count = (uint32_t)p->n;
    e->min_ts = p->ts[0];
    e->max_ts = p->ts[p->n - 1];
    if (t == MT_VT_STRING) return;
    mt_summary s;
    mt_summary_init(&s);
    for (size_t i = 0; i < p->n; i++) mt_summary_add(&s, as_double(t, p->v[i]));
    e->sum = s.sum, e->min = s.min, e->max = s.max, e->first = s.first, e->last = s.last;
}

/* One series' chunk of the new file. */
static int seal_series(mt_engine *e, mt_hf_writer *w, const mt_hour_desc *old, uint32_t id,
                       int64_t hour, mt_rollups *ro)
{
    mt_vtype t = (mt_vtype)e->index.ents[id].type;
    mt_pts h = {0};
    int rc = mt_head_collect(&e->head, id, hour * MT_HOUR_NS, (hour + 1) * MT_HOUR_NS, t, &h.ts,
                             &h.v, &h.strs, &h.strs_len, &h.n);
    if (rc) return rc;
    const mt_hf_entry *oe = old ? mt_hf_find(old->live->idx, id) : NULL;
    const uint8_t *raw = oe ? old->live->map->base + oe->off : NULL;
    if (!h.n) {
        if (!oe) goto out;
        /* unchanged: copy the bytes; decode them only for the hour's rollups */
        mt_points op;
        rc = mt_decoder_decode(e->dec, raw, oe->len, &op);
        int64_t t0 = mt_mono_ns();
        if (!rc) rc = mt_rollups_add(ro, &e->index, id, t, op.vals, op.n);
        e->st.rollup_seconds += (double)(mt_mono_ns() - t0) / 1e9;
        if (!rc)
            rc = mt_hf_add(w, oe, raw, oe->len, MT_INDEX_KEY(&e->index, id),
                           MT_INDEX_KEYLEN(&e->index, id));
        goto out;
    }
    mt_pts merged = {0}, *use = &h;
    if (oe) {
        mt_points op;
        if ((rc = mt_decoder_decode(e->dec, raw, oe->len, &op))) goto out;
        if ((rc = mt_pts_merge(t, &op, &h, &merged))) goto out;
        use = &merged;
    }
    int64_t t0 = mt_mono_ns();
    rc = mt_rollups_add(ro, &e->index, id, t, use->v, use->n);
    e->st.rollup_seconds += (double)(mt_mono_ns() - t0) / 1e9;
    if (rc) goto merged_out;
    mt_hf_entry en = {.id = id};
    summarize(&en, t, use);
    mt_points p = {.type = t,
                   .n = use->n,
                   .ts = use->ts,
                   .vals = use->v,
                   .strs = use->strs,
                   .strs_len = use->strs_len};
    const uint8_t *chunk;
    size_t len;
    rc = mt_encoder_encode(e->enc, &p, &chunk, &len);
    if (!rc)
        rc = mt_hf_add(w, &en, chunk, len, MT_INDEX_KEY(&e->index, id),
                       MT_INDEX_KEYLEN(&e->index, id));
merged_out:
    mt_pts_free(&merged);
out:
    mt_pts_free(&h);
    return rc;
}

static int seal_hour(mt_engine *e, int64_t hour, uint32_t gen, uint64_t *bytes, mt_rollups *ro)
{
    mt_hour_desc *old = mt_engine_hour(e, hour);
    if (old && mt_engine_hour_index(e, old)) return MT_ECORRUPT; /* mt_seal_run skips those */
    mt_hf_writer *w = NULL;
    int rc = mt_hf_begin(e->dir, hour, gen, &w);
    if (rc) return rc; /* w was never made */
    for (uint32_t id = 1; !rc && id <= e->index.n; id++) rc = seal_series(e, w, old, id, hour, ro);
    int64_t t0 = mt_mono_ns();
    if (!rc) rc = mt_rollups_finish(ro); /* the hour's values go before the next hour's come */
    e->st.rollup_seconds += (double)(mt_mono_ns() - t0) / 1e9;
    if (rc) {
        mt_hf_abort(w);
        return rc;
    }
    return mt_hf_commit(w, bytes);
}

int mt_seal_log_rewrite(mt_engine *e, mt_kv_txn *t, const int64_t *due, size_t ndue,
                        uint64_t *points)
{
    int rc = mt_kv_drop_all(t, MT_DB_HEAD);
    *points = 0;
    mt_rec_reset(&e->rec);
    for (uint32_t id = 1; !rc && id <= e->index.n && id < e->head.cap; id++) {
        const mt_head_series *s = &e->head.s[id];
        mt_vtype type = (mt_vtype)e->index.ents[id].type;
        for (uint32_t k = 0; !rc && k < s->nb; k++) {
            if (mt_head_hour_in(due, ndue, s->b[k].hour)) continue;
            mt_head_cursor c;
            mt_head_cursor_init(&c, &s->b[k], type);
            int64_t ts;
            mt_val v;
            const char *str;
            while (!rc && mt_head_cursor_next(&c, &ts, &v, &str)) {
                rc = mt_rec_add(&e->rec, id, ts, type, v, str);
                ++*points;
                if (!rc && e->rec.npoints >= RECORD_POINTS) {
                    rc = mt_engine_put_record(e, t);
                    mt_rec_reset(&e->rec);
                }
            }
        }
    }
    if (!rc && e->rec.npoints) rc = mt_engine_put_record(e, t);
    return rc;
}

void mt_seal_log_rewritten(mt_engine *e, uint64_t seq_before, uint64_t points)
{
    mt_head *h = &e->head;
    h->nlog = 0;
    h->log_points = 0;
    if (e->seq > seq_before) { /* the records written again, as one run */
        mt_head_log_add(h, e->seq, points);
        if (h->nlog) h->log[0].first_seq = seq_before + 1;
    }
    for (size_t i = 0; i < h->nhours; i++) h->hours[i].first_seq = seq_before + 1;
}

/*
 * Late points: points for an hour that already has a file wait in the head
 * (durable in its log; scans read them beside the file) and are merged into
 * a new generation once, when no point came for the hour for late_quiet_ns,
 * or when they are as many as the file holds (at least LATE_MIN_POINTS), or
 * when the late points of every hour together pass LATE_BUDGET_POINTS (the
 * head's memory). The file at least doubles between two merges forced by
 * size, so a stream of late batches costs a bounded number of rewrites per
 * point, as a growing array does, instead of one rewrite of the hour per
 * batch. docs/storage.md, "Late points".
 */
#define LATE_MIN_POINTS    ((uint64_t)1 << 16)
#define LATE_BUDGET_POINTS ((uint64_t)1 << 20) /* about 16 MiB of head */

static bool late_due(mt_engine *e, mt_hour_desc *old, const mt_head_hour *hh, bool quiet,
                     uint64_t late)
{
    if (mt_engine_hour_index(e, old)) return false; /* never rewritten from the head alone */
    if (quiet || late >= LATE_BUDGET_POINTS) return true;
    if (hh->points < LATE_MIN_POINTS) return false;
    uint64_t held = 0;
    const mt_hf_index *ix = old->live->idx;
    for (size_t i = 0; i < ix->n; i++) held += ix->e[i].count;
    return hh->points >= held;
}

typedef struct sealed {
    int64_t hour;
    mt_rollups *ro;
    uint32_t gen, old_gen;
    bool had_old;
    uint64_t bytes;
} sealed;

typedef struct record_job {
    const sealed *done;
    size_t nd;
    const int64_t *due;
    size_t ndue;
    uint64_t seq_before;
    bool rewrite;       /* the log is written again without the sealed points ... */
    uint64_t floor;     /* ... or loses its records before this one */
    uint64_t rewritten; /* points written again */
} record_job;

/* The seal's transaction: the new generations, their rollups and mirroring, the head log. */
static int record_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    record_job *j = ud;
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < j->nd; i++) {
        const sealed *d = &j->done[i];
        uint8_t key[4], val[MT_HOUR_VAL];
        mt_engine_hour_key(key, d->hour);
        /* every head point of the hour came from a record up to seq_before: the seal runs on
           the writer thread, between group commits */
        mt_engine_hour_val(val, d->gen, d->bytes, j->seq_before);
        rc = mt_kv_put(t, MT_DB_HOURS, key, 4, val, sizeof val);
        int64_t t0 = mt_mono_ns();
        if (!rc) rc = mt_rollups_store(d->ro, t); /* with the file: one transaction */
        uint8_t hour_le[8];
        mt_put_le(hour_le, (uint64_t)d->hour, 8);
        if (!rc) rc = mt_outbox_put(e, t, MT_OUTBOX_HOUR, hour_le, 8); /* ... and its mirroring */
        e->st.rollup_seconds += (double)(mt_mono_ns() - t0) / 1e9;
    }
    if (!rc) rc = mt_engine_meta_put(t, "gen", e->next_gen);
    if (rc) return rc;
    if (j->rewrite) return mt_seal_log_rewrite(e, t, j->due, j->ndue, &j->rewritten);
    uint8_t k[8];
    mt_put_be(k, j->floor, 8);
    size_t gone;
    return mt_kv_del_below(t, MT_DB_HEAD, k, 8, &gone);
}

/* Under the publication's lock: the sealed hours' points leave the head as their files arrive,
   and the log's bookkeeping follows what the transaction did to it. */
static void drop_sealed(mt_engine *e, void *ud)
{
    const record_job *j = ud;
    mt_head_drop(&e->head, j->due, j->ndue);
    if (j->rewrite)
        mt_seal_log_rewritten(e, j->seq_before, j->rewritten);
    else
        mt_head_log_trim(&e->head, j->floor);
    e->st.log_rewrites += j->rewrite;
}

static void record_undo(mt_engine *e, void *ud)
{
    e->seq = ((const record_job *)ud)->seq_before; /* a rewrite numbered records from it */
}

int mt_seal_run(mt_engine *e, mt_seal_mode mode, size_t *nhours)
{
    *nhours = 0;
    const int64_t wall = e->opt.clock_ns(e->opt.clock_ud), grace = e->opt.grace_ns;
    int64_t *due = malloc((e->head.nhours ? e->head.nhours : 1) * sizeof *due);
    sealed *done = malloc((e->head.nhours ? e->head.nhours : 1) * sizeof *done);
    mt_publish *pub = malloc((e->head.nhours ? e->head.nhours : 1) * sizeof *pub);
    if (!due || !done || !pub) {
        free(due);
        free(done);
        free(pub);
        return -ENOMEM;
    }
    size_t ndue = 0;
    uint64_t late = 0;          /* points waiting in the head for hours that have a file */
    uint64_t sealed_points = 0; /* points of the due hours */
    for (size_t i = 0; i < e->head.nhours; i++)
        if (mt_engine_hour(e, e->head.hours[i].hour)) late += e->head.hours[i].points;
    for (size_t i = 0; i < e->head.nhours; i++) {
        const mt_head_hour *hh = &e->head.hours[i];
        int64_t end = (hh->hour + 1) * MT_HOUR_NS;
        mt_hour_desc *old = mt_engine_hour(e, hh->hour);
        bool quiet = end + grace <= wall && wall - hh->last_write_wall >= grace;
        bool late_quiet = wall - hh->last_write_wall >= e->opt.late_quiet_ns;
        /* the watermark passed the hour's end (with the grace) and its writes settled: a
           stream still writing it (several streams replaying different parts of a day) keeps
           it open, for at most the grace of wall clock, instead of making the rest of its
           points late */
        bool passed = end + grace <= e->head.max_ts;
        bool writing = e->seq - hh->last_seq < e->opt.settle_records &&
                       e->head.appended - hh->last_mark < e->opt.settle_points;
        bool settled = !writing || wall - hh->first_write_wall >= grace;
        bool is_due = mode == MT_SEAL_ALL || (mode == MT_SEAL_BACKFILL && old) ||
                      (mode == MT_SEAL_DUE && !old && ((passed && settled) || quiet)) ||
                      (mode == MT_SEAL_DUE && old && late_due(e, old, hh, late_quiet, late));
        /* an hour whose current file cannot be read is never rewritten from the head alone */
        if (is_due && old && mt_engine_hour_index(e, old)) is_due = false;
        if (is_due) due[ndue++] = hh->hour, sealed_points += hh->points;
    }
    int rc = MT_OK;
    size_t nd = 0;
    uint32_t gen_before = e->next_gen;
    uint64_t seq_before = e->seq;
    for (size_t i = 0; i < ndue && !rc; i++) {
        mt_hour_desc *old = mt_engine_hour(e, due[i]);
        done[nd] = (sealed){.hour = due[i],
                            .gen = e->next_gen++,
                            .had_old = old != NULL,
                            .old_gen = old ? old->gen : 0};
        rc = mt_rollups_new(due[i], &done[nd].ro);
        if (!rc) rc = seal_hour(e, due[i], done[nd].gen, &done[nd].bytes, done[nd].ro);
        if (!rc)
            nd++;
        else
            mt_rollups_free(done[nd].ro);
    }
    /* The log keeps its records from the oldest one an unsealed point needs: the sealed points
       before it go by deleting records, never by writing the rest again. Only when what stays
       on disk outgrows twice what is needed (an hour held long in the head pins old records)
       is the log written again, once. docs/storage.md, "The head log". */
    uint64_t remaining = e->head.points - sealed_points;
    uint64_t floor = mt_head_log_floor(&e->head, due, ndue, e->seq + 1);
    bool rewrite = mt_head_log_points_from(&e->head, floor) > 2 * remaining + LOG_SLACK_POINTS;
    record_job rj = {.done = done,
                     .nd = nd,
                     .due = due,
                     .ndue = ndue,
                     .seq_before = seq_before,
                     .rewrite = rewrite,
                     .floor = floor};
    if (!rc && ndue) rc = mt_engine_write_txn(e, record_body, record_undo, &rj);
    for (size_t i = 0; i < nd; i++)
        pub[i] = (mt_publish){.hour = done[i].hour,
                              .gen = done[i].gen,
                              .bytes = done[i].bytes,
                              .had_old = done[i].had_old,
                              .old_gen = done[i].old_gen};
    if (rc) {
        mt_engine_discard(e, pub, nd);
        e->next_gen = gen_before;
        e->seq = seq_before;
    } else if (ndue) {
        rc = mt_engine_publish(e, pub, nd, drop_sealed, &rj);
        *nhours = nd;
        mt_kv_unmap_pages(e->kv); /* the trim walked the log's records: mt_kv.h */
    }
    free(pub);
    for (size_t i = 0; i < nd; i++) {
        e->st.rollup_group_seconds += mt_rollups_group_seconds(done[i].ro);
        mt_rollups_free(done[i].ro);
    }
    free(due);
    free(done);
    return rc;
}

int mt_seal_log_first_seq(mt_kv_txn *t, uint64_t *seq)
{
    mt_kv_cursor *c;
    const void *k, *v;
    size_t kl, vl;
    *seq = 0;
    int rc = mt_kv_cursor_open(t, MT_DB_HEAD, &c);
    if (rc) return rc;
    rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
    if (rc == MT_OK && kl == 8) *seq = mt_get_be(k, 8);
    mt_kv_cursor_close(c);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}
