/*
 * mt_delete.c — deletion (mt_engine.h, mt_engine_delete): a tenant's every
 * series, or some series' points in a time range, taken out of the store.
 *
 * A writer job, in the order of a seal, so that a crash at any point leaves
 * each hour old or new, never half:
 *   1. the head points of the series in the range are sealed first (a seal
 *      of every head hour: mt_seal_run, MT_SEAL_ALL, which is crash-safe on
 *      its own): afterwards every point to delete is in an hour file;
 *   2. each hour file holding such points is written again as a new
 *      generation without them (untouched chunks copied byte for byte, a
 *      chunk the range cuts decoded, filtered and encoded again), its
 *      rollups recomputed from the points it keeps, as a seal computes them;
 *      an hour left with no point is dropped;
 *   3. one LMDB transaction: the hours' records (new generation, or
 *      deleted), their rollups (replaced, or deleted), the head log written
 *      again from the head (its old records held the deleted points,
 *      compressed), for a tenant its series' keys and postings (the ids stay
 *      taken: series_by_id keeps the type alone), the outbox entries that
 *      tell the SQL sink what to delete or re-mirror, and in meta one
 *      "unref:HOUR.GEN" entry per file it stops naming (the old generation
 *      of each hour, rewritten or dropped; value: its size);
 *   4. mt_engine_publish: the hour list switches and the replaced files are
 *      unlinked (once no reader's snapshot names them); then
 *      mt_engine_unref_settle removes the entries of the files gone, in a
 *      transaction of its own.
 * A crash before 3 leaves the old state (open removes the new files nobody
 * names); after it, the new one: open unlinks every file the "unref:"
 * entries list that the index does not name and that has the listed size
 * (the file of an hour dropped whole is named by nothing: without the entry
 * it would go to DIR/lost+found with the deleted points in it), then clears
 * the entries. A file nothing accounts for still goes to lost+found, never
 * unlinked. tests/engine/test_delete.c kills a child at both points
 * (mt_fault.h: "delete.rewritten", "delete.committed"). A tenant delete
 * leaves tombstones only in a format that has them (a writer's is 5 and up,
 * mt_engine_int.h); the "unref:" entries need no format of their own: a build that does not know
 * them reads past them (meta is read by name) and sets such a file aside as
 * before, and they live only until the next publish or open.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_fault.h"
#include "mt_series.h"
#include "mt_stats.h"
#include "mt_uuid.h"

typedef struct plan {
    int64_t hour;
    bool drop;
    uint32_t gen, old_gen;
    uint64_t bytes;
    mt_rollups *ro; /* rewritten: the hour's rollups, recomputed */
} plan;

typedef struct job {
    const mt_delete_spec *spec;
    mt_delete_result *res;
    bool *sel; /* by id: the series concerned */
    uint32_t *ids;
    size_t nids;
    int64_t from, to;
    plan *plans;
    size_t np;
    uint64_t seq_before;
    bool log_rewritten;
    uint64_t log_points;
} job;

static bool bid_is(const char *key, size_t klen, const char *bid)
{
    mt_series_parts p;
    if (!klen || mt_series_parse(key, klen, &p)) return false;
    for (size_t k = 0; k < p.ntags; k++)
        if (p.tag_keys[k].len == 11 && !memcmp(p.tag_keys[k].ptr, "business_id", 11))
            return p.tag_values[k].len == strlen(bid) &&
                   !memcmp(p.tag_values[k].ptr, bid, p.tag_values[k].len);
    return false;
}

/*
 * What a range delete's hours tell the sink: u8 1 when a selected series has no business_id
 * (its rows have none), then each selected series' tenant as 16 bytes, once each. The sink
 * replaces those tenants' rows of the hour only: in a cluster, other nodes' tenants share the
 * hour in the one PostgreSQL (docs/cluster.md). A business_id that is not a UUID has no row
 * there (the sink quarantines it). *out is malloc'd; the caller frees it.
 */
static int tenants_of(const mt_engine *e, const job *j, uint8_t **out, size_t *len)
{
    uint8_t *d = malloc(1 + 16 * (j->nids ? j->nids : 1));
    if (!d) return -ENOMEM;
    size_t n = 1;
    d[0] = 0;
    for (size_t i = 0; i < j->nids; i++) {
        mt_series_parts p;
        const uint32_t id = j->ids[i];
        if (mt_series_parse(MT_INDEX_KEY(&e->index, id), MT_INDEX_KEYLEN(&e->index, id), &p))
            continue; /* a tombstone: no key, no rows */
        mt_name bid = {"", 0};
        for (size_t k = 0; k < p.ntags; k++)
            if (p.tag_keys[k].len == 11 && !memcmp(p.tag_keys[k].ptr, "business_id", 11))
                bid = p.tag_values[k];
        uint8_t u[16];
        if (!bid.len) {
            d[0] = 1;
            continue;
        }
        if (!mt_uuid_parse(bid.ptr, bid.len, u)) continue;
        bool seen = false;
        for (size_t k = 1; k < n && !seen; k += 16) seen = !memcmp(d + k, u, 16);
        if (!seen) memcpy(d + n, u, 16), n += 16;
    }
    *out = d;
    *len = n;
    return MT_OK;
}

/* Whether a selected series still has head points in [from, to). */
static bool head_holds(const mt_engine *e, const job *j)
{
    int64_t h0 = mt_hour_of(j->from), h1 = mt_hour_of(j->to - 1);
    for (size_t i = 0; i < j->nids; i++) {
        uint32_t id = j->ids[i];
        if (id >= e->head.cap) continue;
        const mt_head_series *s = &e->head.s[id];
        for (uint32_t k = 0; k < s->nb; k++)
            if (s->b[k].n && s->b[k].hour >= h0 && s->b[k].hour <= h1) return true;
    }
    return false;
}

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    case MT_VT_UINT:
    case MT_VT_BOOL: return (double)v.u;
    default: return 0;
    }
}

/* One chunk of the hour: kept whole, cut by the range (encoded again), or gone (*kept 0). */
static int copy_chunk(mt_engine *e, job *j, mt_hf_writer *w, mt_rollups *ro, const mt_hour_live *l,
                      const mt_hf_entry *en, size_t *kept)
{
    const uint8_t *raw = l->map->base + en->off;
    mt_vtype t = (mt_vtype)en->type;
    mt_points op;
    int rc = mt_decoder_decode(e->dec, raw, en->len, &op); /* checked, and for the rollups */
    if (rc) return rc;
    bool cut = j->sel[en->id] && en->max_ts >= j->from && en->min_ts < j->to;
    if (!cut) {
        *kept = op.n;
        rc = mt_rollups_add(ro, &e->index, en->id, t, op.vals, op.n);
        return rc ? rc
                  : mt_hf_add(w, en, raw, en->len, MT_INDEX_KEY(&e->index, en->id),
                              MT_INDEX_KEYLEN(&e->index, en->id));
    }
    int64_t *ts = malloc((op.n ? op.n : 1) * sizeof *ts);
    mt_val *v = malloc((op.n ? op.n : 1) * sizeof *v);
    size_t n = 0;
    if (!ts || !v) rc = -ENOMEM;
    for (size_t i = 0; !rc && i < op.n; i++)
        if (op.ts[i] < j->from || op.ts[i] >= j->to) ts[n] = op.ts[i], v[n++] = op.vals[i];
    j->res->points_deleted += op.n - n;
    *kept = n;
    if (!rc && n) {
        mt_hf_entry ne = {.id = en->id, .type = en->type, .count = (uint32_t)n};
        ne.min_ts = ts[0], ne.max_ts = ts[n - 1];
        if (t != MT_VT_STRING) {
            mt_summary s;
            mt_summary_init(&s);
            for (size_t i = 0; i < n; i++) mt_summary_add(&s, as_double(t, v[i]));
            ne.sum = s.sum, ne.min = s.min, ne.max = s.max, ne.first = s.first, ne.last = s.last;
        }
        mt_points np = {
            .type = t, .n = n, .ts = ts, .vals = v, .strs = op.strs, .strs_len = op.strs_len};
        const uint8_t *chunk;
        size_t len;
        rc = mt_rollups_add(ro, &e->index, en->id, t, v, n);
        if (!rc) rc = mt_encoder_encode(e->enc, &np, &chunk, &len);
        if (!rc)
            rc = mt_hf_add(w, &ne, chunk, len, MT_INDEX_KEY(&e->index, en->id),
                           MT_INDEX_KEYLEN(&e->index, en->id));
    }
    free(ts);
    free(v);
    return rc;
}

/* The hour without the points to delete: a new generation (pl->gen), or pl->drop. */
static int rewrite(mt_engine *e, job *j, mt_hour_desc *d, plan *pl)
{
    const mt_hour_live *l = d->live;
    mt_hf_writer *w;
    pl->gen = e->next_gen++;
    int rc = mt_rollups_new(d->hour, &pl->ro);
    if (rc) return rc;
    rc = mt_hf_begin(e->dir, d->hour, pl->gen, &w);
    if (rc) return rc;
    size_t kept = 0;
    for (size_t i = 0; !rc && i < l->idx->n; i++) {
        size_t k = 0;
        rc = copy_chunk(e, j, w, pl->ro, l, &l->idx->e[i], &k);
        kept += k;
    }
    if (!rc && !kept) pl->drop = true;
    if (!rc && !pl->drop) rc = mt_rollups_finish(pl->ro);
    if (rc || pl->drop) {
        mt_hf_abort(w);
        return rc;
    }
    return mt_hf_commit(w, &pl->bytes);
}

/* ---- the files a delete stops naming (mt_engine_int.h, "unref") ---------------------------- */

#define UNREF_PREFIX     "unref:"
#define UNREF_PREFIX_LEN 6
#define UNREF_KEY_MAX    48 /* "unref:" -2147483648 "." 4294967295, and a NUL */

static void unref_key(char out[UNREF_KEY_MAX], int64_t hour, uint32_t gen)
{
    snprintf(out, UNREF_KEY_MAX, UNREF_PREFIX "%lld.%u", (long long)hour, (unsigned)gen);
}

/* The hour and generation of an "unref:" key, false when it is not one this build wrote. */
static bool unref_parse(const void *k, size_t kl, int64_t *hour, uint32_t *gen)
{
    char buf[UNREF_KEY_MAX], again[UNREF_KEY_MAX];
    if (kl <= UNREF_PREFIX_LEN || kl >= sizeof buf || memcmp(k, UNREF_PREFIX, UNREF_PREFIX_LEN))
        return false;
    memcpy(buf, k, kl);
    buf[kl] = '\0';
    long long h;
    unsigned g;
    if (sscanf(buf + UNREF_PREFIX_LEN, "%lld.%u", &h, &g) != 2 || h < INT32_MIN || h > INT32_MAX)
        return false;
    unref_key(again, h, g); /* exactly the form written: no sign, space or zero padding */
    if (strcmp(again, buf)) return false;
    *hour = h, *gen = g;
    return true;
}

int mt_engine_unref_put(mt_kv_txn *t, int64_t hour, uint32_t gen, uint64_t bytes)
{
    char key[UNREF_KEY_MAX];
    unref_key(key, hour, gen);
    return mt_engine_meta_put(t, key, bytes);
}

/* fn(ud, hour, gen, bytes, key, klen) for each entry that parses; stops at fn's error. */
static int unref_each(mt_kv_txn *t,
                      int (*fn)(void *ud, int64_t hour, uint32_t gen, uint64_t bytes,
                                const void *key, size_t klen),
                      void *ud)
{
    mt_kv_cursor *c;
    const void *k, *v;
    size_t kl, vl;
    int rc = mt_kv_cursor_open(t, MT_DB_META, &c);
    if (rc) return rc;
    for (rc = mt_kv_cursor_seek(c, UNREF_PREFIX, UNREF_PREFIX_LEN, &k, &kl, &v, &vl); rc == MT_OK;
         rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        if (kl < UNREF_PREFIX_LEN || memcmp(k, UNREF_PREFIX, UNREF_PREFIX_LEN)) break;
        int64_t hour;
        uint32_t gen;
        uint64_t bytes;
        if (vl != 8 || !unref_parse(k, kl, &hour, &gen)) continue;
        memcpy(&bytes, v, 8);
        if ((rc = fn(ud, hour, gen, bytes, k, kl))) break;
    }
    mt_kv_cursor_close(c);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

static int load_one(void *ud, int64_t hour, uint32_t gen, uint64_t bytes, const void *k, size_t kl)
{
    (void)k, (void)kl;
    mt_engine *e = ud;
    mt_unref *n = realloc(e->unref, (e->nunref + 1) * sizeof *n);
    if (!n) return -ENOMEM;
    e->unref = n;
    e->unref[e->nunref++] = (mt_unref){hour, gen, bytes};
    return MT_OK;
}

int mt_engine_unref_load(mt_engine *e, mt_kv_txn *t)
{
    free(e->unref);
    e->unref = NULL;
    e->nunref = 0;
    return unref_each(t, load_one, e);
}

bool mt_engine_unref_listed(const mt_engine *e, int64_t hour, uint32_t gen, uint64_t size)
{
    for (size_t i = 0; i < e->nunref; i++)
        if (e->unref[i].hour == hour && e->unref[i].gen == gen)
            return e->unref[i].bytes == size; /* another size: not the file the delete dropped */
    return false;
}

typedef struct settled {
    mt_engine *e;
    char (*keys)[UNREF_KEY_MAX]; /* the entries to remove */
    size_t n;
} settled;

/* An entry done with: its file gone, or named by the index again (then never unlinked). */
static int settle_one(void *ud, int64_t hour, uint32_t gen, uint64_t bytes, const void *k,
                      size_t kl)
{
    (void)bytes;
    settled *s = ud;
    const mt_hour_desc *d = mt_engine_hour(s->e, hour);
    char path[4096];
    struct stat st;
    mt_hf_path(path, sizeof path, s->e->dir, hour, gen);
    bool done = (d && d->gen == gen) || (stat(path, &st) && errno == ENOENT);
    if (!done) return MT_OK; /* a reader's snapshot still holds it (mt_engine_bury) */
    char(*n)[UNREF_KEY_MAX] = realloc(s->keys, (s->n + 1) * sizeof *n);
    if (!n) return -ENOMEM;
    s->keys = n;
    memcpy(s->keys[s->n], k, kl);
    s->keys[s->n++][kl] = '\0';
    return MT_OK;
}

static int settle_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    (void)e;
    const settled *s = ud;
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < s->n; i++) {
        rc = mt_kv_del(t, MT_DB_META, s->keys[i], strlen(s->keys[i]));
        if (rc == MT_ENOTFOUND) rc = MT_OK;
    }
    return rc;
}

int mt_engine_unref_settle(mt_engine *e)
{
    free(e->unref); /* open's list: the sweep is done */
    e->unref = NULL;
    e->nunref = 0;
    settled s = {.e = e};
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    rc = unref_each(t, settle_one, &s);
    mt_kv_abort(t);
    if (!rc && s.n) rc = mt_engine_write_txn(e, settle_body, NULL, &s);
    free(s.keys);
    return rc;
}

static int del_rollups(mt_kv_txn *t, int64_t hour)
{
    int rc = MT_OK;
    for (int k = 0; !rc && k < 2; k++) {
        uint8_t key[5] = {k ? 'G' : 'S'};
        mt_engine_hour_key(key + 1, hour);
        rc = mt_kv_del(t, MT_DB_ROLLUPS, key, 5);
        if (rc == MT_ENOTFOUND) rc = MT_OK;
    }
    return rc;
}

static int body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    job *j = ud;
    const mt_delete_spec *sp = j->spec;
    int rc = MT_OK;
    j->log_rewritten = false;
    uint8_t *of = NULL; /* a range delete: the tenants its hours concern (tenants_of) */
    size_t of_len = 0;
    if (!sp->business_id && j->np && (rc = tenants_of(e, j, &of, &of_len))) return rc;
    for (size_t i = 0; !rc && i < j->np; i++) {
        const plan *pl = &j->plans[i];
        uint8_t key[4], val[MT_HOUR_VAL];
        const void *v;
        size_t vl;
        uint32_t gen;
        uint64_t bytes, seq = 0;
        mt_engine_hour_key(key, pl->hour);
        rc = mt_kv_get(t, MT_DB_HOURS, key, 4, &v, &vl);
        if (rc == MT_ENOTFOUND) rc = MT_ECORRUPT; /* an hour in memory is in the index */
        if (!rc) rc = mt_engine_hour_parse(v, vl, &gen, &bytes, &seq);
        if (!rc) rc = del_rollups(t, pl->hour);
        /* the generation it named is unlinked at publish; a crash before that leaves it for
           open to unlink, with the deleted points in it (not to set aside in lost+found) */
        if (!rc) rc = mt_engine_unref_put(t, pl->hour, gen, bytes);
        if (!rc && pl->drop) {
            rc = mt_kv_del(t, MT_DB_HOURS, key, 4);
        } else if (!rc) {
            mt_engine_hour_val(val, pl->gen, pl->bytes, seq); /* its sealed_seq stays */
            rc = mt_kv_put(t, MT_DB_HOURS, key, 4, val, sizeof val);
            if (!rc) rc = mt_rollups_store(pl->ro, t);
        }
        if (!rc && of) { /* the sink replaces these tenants' rows of the hour (mt_sink.h) */
            uint8_t *d = malloc(9 + of_len);
            if (!d) {
                rc = -ENOMEM;
                break;
            }
            d[0] = MT_DELETE_HOUR_OF;
            memcpy(d + 1, &pl->hour, 8);
            memcpy(d + 9, of, of_len);
            rc = mt_outbox_put(e, t, MT_OUTBOX_DELETE, d, 9 + of_len);
            free(d);
        }
    }
    if (!rc && j->np) rc = mt_engine_meta_put(t, "gen", e->next_gen);
    for (size_t i = 0; !rc && sp->business_id && i < j->nids; i++) {
        uint32_t id = j->ids[i];
        rc = mt_index_unstore(t, id, MT_INDEX_KEY(&e->index, id), MT_INDEX_KEYLEN(&e->index, id),
                              (mt_vtype)e->index.ents[id].type);
    }
    /* a tombstone in series_by_id: builds before format 4 would call it damage; a writer's
       open raised the format past that (mt_engine_int.h) */
    assert(e->format >= MT_FORMAT_TOMBSTONES);
    /* The tenant as its UUID's 16 bytes until the sink has deleted its rows (a tenant that is
       not a UUID has no row there: PostgreSQL's business_id columns are UUIDs). */
    uint8_t d[17] = {MT_DELETE_TENANT};
    if (!rc && sp->business_id && !sp->keep_mirror &&
        mt_uuid_parse(sp->business_id, strlen(sp->business_id), d + 1))
        rc = mt_outbox_put(e, t, MT_OUTBOX_DELETE, d, sizeof d);
    /* the log's records hold the deleted points (sealed ones are skipped at replay, but they
       are still there): written again from the head, which no longer has them */
    uint64_t first = 0;
    if (!rc && (j->np || j->nids)) rc = mt_seal_log_first_seq(t, &first);
    if (!rc && first) {
        j->log_rewritten = true;
        rc = mt_seal_log_rewrite(e, t, NULL, 0, &j->log_points);
    }
    free(of);
    return rc;
}

static void undo(mt_engine *e, void *ud)
{
    job *j = ud;
    e->seq = j->seq_before;
    j->log_rewritten = false;
}

static void follows(mt_engine *e, void *ud)
{
    job *j = ud;
    if (j->log_rewritten) mt_seal_log_rewritten(e, j->seq_before, j->log_points);
    if (j->spec->business_id) {
        mt_index_forget(&e->index, j->ids, j->nids);
        e->series_forgotten++; /* under the exclusive lock (mt_engine_publish) */
    }
}

static int run(mt_engine *e, void *ud)
{
    job *j = ud;
    const mt_delete_spec *sp = j->spec;
    mt_delete_result *res = j->res;
    memset(res, 0, sizeof *res);
    j->from = sp->business_id ? MT_TS_MIN : sp->from;
    j->to = sp->business_id ? MT_TS_MAX : sp->to;
    if (j->from >= j->to) return MT_EINVAL;
    j->sel = calloc(e->index.n + 1, sizeof *j->sel);
    j->ids = malloc((e->index.n + 1) * sizeof *j->ids);
    if (!j->sel || !j->ids) return -ENOMEM;
    for (size_t i = 0; !sp->business_id && i < sp->nids; i++)
        if (sp->ids[i] >= 1 && sp->ids[i] <= e->index.n) j->sel[sp->ids[i]] = true;
    for (uint32_t id = 1; id <= e->index.n; id++) {
        if (!e->index.ents[id].len) j->sel[id] = false; /* deleted before */
        if (sp->business_id)
            j->sel[id] = bid_is(MT_INDEX_KEY(&e->index, id), MT_INDEX_KEYLEN(&e->index, id),
                                sp->business_id);
        if (j->sel[id]) j->ids[j->nids++] = id;
    }
    res->series = j->nids;
    int rc = MT_OK;
    if (head_holds(e, j)) {
        rc = mt_seal_run(e, MT_SEAL_ALL, &res->hours_sealed);
        if (!rc && head_holds(e, j)) rc = MT_ECORRUPT; /* an hour file that cannot be read */
    }
    j->plans = calloc(e->nhours ? e->nhours : 1, sizeof *j->plans);
    mt_publish *pub = calloc(e->nhours ? e->nhours : 1, sizeof *pub);
    if (!rc && (!j->plans || !pub)) rc = -ENOMEM;
    uint32_t gen_before = e->next_gen;
    for (size_t h = 0; !rc && j->nids && h < e->nhours; h++) {
        mt_hour_desc *d = &e->hours[h];
        if ((d->hour + 1) * MT_HOUR_NS <= j->from || d->hour * MT_HOUR_NS >= j->to) continue;
        if ((rc = mt_engine_hour_index(e, d))) break; /* never rewritten without its points */
        const mt_hf_index *ix = d->live->idx;
        bool hit = false;
        for (size_t i = 0; !hit && i < ix->n; i++) {
            const mt_hf_entry *en = &ix->e[i];
            hit = j->sel[en->id] && en->max_ts >= j->from && en->min_ts < j->to;
        }
        if (!hit) continue;
        plan *pl = &j->plans[j->np++];
        *pl = (plan){.hour = d->hour, .old_gen = d->gen};
        rc = rewrite(e, j, d, pl);
        if (rc) { /* its file, if any, was removed */
            mt_rollups_free(pl->ro);
            j->np--;
        } else {
            if (pl->drop)
                res->hours_dropped++;
            else
                res->hours_rewritten++;
        }
    }
    j->seq_before = e->seq;
    if (!rc && (j->np || sp->business_id)) {
        mt_fault_crash("delete.rewritten"); /* tests: the new files durable, nothing committed */
        rc = mt_engine_write_txn(e, body, undo, j);
        if (!rc) mt_fault_crash("delete.committed"); /* tests: committed, not published */
    }
    for (size_t i = 0; i < j->np; i++)
        pub[i] = (mt_publish){.hour = j->plans[i].hour,
                              .gen = j->plans[i].gen,
                              .bytes = j->plans[i].bytes,
                              .drop = j->plans[i].drop,
                              .had_old = true,
                              .old_gen = j->plans[i].old_gen};
    if (rc) {
        if (pub) mt_engine_discard(e, pub, j->np);
        e->next_gen = gen_before;
    } else {
        rc = mt_engine_publish(e, pub, j->np, follows, j); /* unlinks the old files (bury) */
        if (sp->business_id) res->series_forgotten = j->nids;
        /* their entries go once the files are gone; a failure leaves them for the next open,
           which settles them again: the delete itself is done */
        if (j->np) (void)mt_engine_unref_settle(e);
    }
    for (size_t i = 0; i < j->np; i++) mt_rollups_free(j->plans[i].ro);
    free(pub);
    return rc;
}

int mt_engine_delete(mt_engine *e, const mt_delete_spec *spec, mt_delete_result *res)
{
    mt_delete_result dummy;
    if (!res) res = &dummy;
    if (!spec || (spec->business_id && !spec->business_id[0]) ||
        (!spec->business_id && spec->nids && !spec->ids))
        return MT_EINVAL;
    job j = {.spec = spec, .res = res};
    int rc = mt_engine_run_job(e, run, &j);
    free(j.sel);
    free(j.ids);
    free(j.plans);
    return rc;
}
