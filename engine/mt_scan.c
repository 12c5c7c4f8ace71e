/*
 * mt_scan.c — reading one series over a time range.
 *
 * mt_scan_open takes the shared lock once: it notes which sealed chunks
 * the range needs (acquiring each hour file's mapping, so a file
 * replaced by a later seal stays readable through it) and copies the head's
 * points in the range. Everything after that runs without locks. Blocks
 * come out an hour at a time: a sealed chunk merged with the head's points
 * of the same hour (late points win), or the head's points alone.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_time.h"

typedef struct scan_chunk {
    int64_t hour;
    uint32_t gen;
    mt_hfmap *map;   /* the hour file, acquired; NULL when it could not be read */
    mt_hf_entry ent; /* where the chunk is */
} scan_chunk;

struct mt_scan {
    const char *dir;  /* the engine's, for naming a damaged file */
    int64_t bad_hour; /* the chunk that failed, after MT_ECORRUPT */
    uint32_t bad_gen;
    bool bad;
    mt_vtype type;
    int64_t from, to;
    scan_chunk *chunks;
    size_t nchunks, ci;
    mt_pts head; /* head points in [from, to), sorted, last write winning */
    size_t hi;
    mt_decoder *dec;
    mt_pts out;  /* the block handed out */
    mt_pts conv; /* ... in the f64 form, when converted from out or a decoded chunk */
    size_t conv_cap;
};

void mt_scan_close(mt_scan *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nchunks; i++) mt_hfmap_release(s->chunks[i].map);
    free(s->chunks);
    mt_pts_free(&s->head);
    mt_pts_free(&s->out);
    mt_pts_free(&s->conv);
    mt_decoder_free(s->dec);
    free(s);
}

/* Note the sealed chunks of the range (under the shared lock). */
static int note_chunks(mt_engine *e, mt_scan *s, uint32_t id)
{
    int64_t h0 = mt_hour_of(s->from), h1 = mt_hour_of(s->to - 1);
    size_t lo = 0, hi = e->nhours;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->hours[mid].hour < h0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < e->nhours && e->hours[i].hour <= h1; i++) {
        mt_hour_desc *d = &e->hours[i];
        scan_chunk c = {.hour = d->hour, .gen = d->gen};
        int hr = mt_engine_hour_index(e, d);
        if (hr == -ENOMEM) return hr;
        if (hr == MT_OK) {
            const mt_hf_entry *en = mt_hf_find(d->live->idx, id);
            if (!en || en->max_ts < s->from || en->min_ts >= s->to) continue;
            c.ent = *en;
            c.map = d->live->map;
            mt_hfmap_acquire(c.map);
        }
        if (s->nchunks % 64 == 0) {
            scan_chunk *n = realloc(s->chunks, (s->nchunks + 64) * sizeof *n);
            if (!n) {
                mt_hfmap_release(c.map);
                return -ENOMEM;
            }
            s->chunks = n;
        }
        s->chunks[s->nchunks++] = c;
    }
    return MT_OK;
}

int mt_scan_open(mt_engine *e, uint32_t id, int64_t from, int64_t to, mt_scan **out)
{
    mt_scan *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->from = from;
    s->to = to;
    s->dir = e->dir;
    int rc = mt_decoder_new(&s->dec);
    if (!rc && from >= to) rc = MT_EINVAL;
    if (!rc) {
        pthread_rwlock_rdlock(&e->lock);
        if (id == 0 || id > e->index.n) {
            rc = MT_ENOTFOUND;
        } else {
            s->type = (mt_vtype)e->index.ents[id].type;
            rc = note_chunks(e, s, id);
            if (!rc)
                rc = mt_head_collect(&e->head, id, from, to, s->type, &s->head.ts, &s->head.v,
                                     &s->head.strs, &s->head.strs_len, &s->head.n);
        }
        pthread_rwlock_unlock(&e->lock);
    }
    if (rc) {
        mt_scan_close(s);
        return rc;
    }
    *out = s;
    return MT_OK;
}

/* Hand out n points; the arrays stay the scan's (or its decoder's) until the next call. */
static void emit(mt_scan *s, const int64_t *ts, const mt_val *v, const char *strs, size_t strs_len,
                 size_t n, mt_points *out)
{
    *out = (mt_points){
        .type = s->type, .n = n, .ts = ts, .vals = v, .strs = strs, .strs_len = strs_len};
}

/* First index in ts[a..n) with ts >= x. */
static size_t lower(const int64_t *ts, size_t a, size_t n, int64_t x)
{
    while (a < n && ts[a] < x) a++;
    return a;
}

/* Note which hour file failed (mt_scan_damage names it) and say so. */
static int damaged(mt_scan *s, const scan_chunk *c)
{
    s->bad = true;
    s->bad_hour = c->hour;
    s->bad_gen = c->gen;
    return MT_ECORRUPT;
}

size_t mt_scan_damage(const mt_scan *s, char *out, size_t cap)
{
    if (!s->bad || !cap) return 0;
    char path[4096], when[48];
    mt_hf_path(path, sizeof path, s->dir, s->bad_hour, s->bad_gen);
    mt_time_format(s->bad_hour * MT_HOUR_NS, when, sizeof when);
    int n = snprintf(out, cap, "hour %s, file %s", when, path);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/*
 * The next block, as mt_scan_next_or_summary has it (sum: NULL or where a summary goes), or
 * with f64 (unit_e >= 0) in the form mt_scan_next_f64 gives, *repeats set.
 */
static int next_block(mt_scan *s, mt_points *out, mt_chunk_info *sum, int unit_e, bool *repeats);

int mt_scan_next(mt_scan *s, mt_points *out)
{
    return next_block(s, out, NULL, -1, NULL);
}

int mt_scan_next_or_summary(mt_scan *s, mt_points *out, mt_chunk_info *sum)
{
    return next_block(s, out, sum, -1, NULL);
}

int mt_scan_next_f64(mt_scan *s, int unit_e, mt_points *out, bool *repeats)
{
    *repeats = false;
    if (unit_e < 0 || unit_e > MT_F64_MAX_UNIT_E || s->type == MT_VT_STRING) return MT_EINVAL;
    return next_block(s, out, NULL, unit_e, repeats);
}

/* Hand out p in the f64 form of unit_e, converted into the scan's own arrays. */
static int emit_f64(mt_scan *s, const mt_points *p, int unit_e, mt_points *out, bool *repeats)
{
    if (p->n > s->conv_cap) {
        int64_t *t = realloc(s->conv.ts, p->n * sizeof *t);
        if (t) s->conv.ts = t;
        mt_val *v = t ? realloc(s->conv.v, p->n * sizeof *v) : NULL;
        if (!v) return -ENOMEM;
        s->conv.v = v;
        s->conv_cap = p->n;
    }
    *repeats = mt_points_to_f64(p, unit_e, s->conv.ts, s->conv.v);
    *out = (mt_points){.type = MT_VT_FLOAT, .n = p->n, .ts = s->conv.ts, .vals = s->conv.v};
    return MT_OK;
}

/* Whether the range's ends are whole units of 10^unit_e: chunk_f64 can cut in that unit. */
static bool whole_units(const mt_scan *s, int unit_e)
{
    const int64_t u = (int64_t)mt_pow10[unit_e];
    return s->from % u == 0 && s->to % u == 0;
}

/* A sealed chunk that needs no merge, decoded straight into the f64 form and cut to the range
   (out->n may be 0). */
static int chunk_f64(mt_scan *s, const scan_chunk *c, int unit_e, mt_points *out, bool *repeats)
{
    assert(whole_units(s, unit_e));
    const int64_t u = (int64_t)mt_pow10[unit_e];
    mt_points cp;
    int rc =
        mt_decoder_decode_f64(s->dec, c->map->base + c->ent.off, c->ent.len, unit_e, &cp, repeats);
    if (rc) return rc;
    assert(cp.n > 0); /* the decoder refuses an empty chunk */
    /* with from and to whole units, ts >= from is floor(ts / u) >= from / u, and so for to */
    const int64_t from = s->from / u, to = s->to / u;
    size_t a = cp.ts[0] >= from ? 0 : lower(cp.ts, 0, cp.n, from);
    size_t b = cp.ts[cp.n - 1] < to ? cp.n : lower(cp.ts, a, cp.n, to);
    *out = cp;
    out->ts += a, out->vals += a, out->n = b - a;
    return MT_OK;
}

static int next_block(mt_scan *s, mt_points *out, mt_chunk_info *sum, int unit_e, bool *repeats)
{
    if (sum) sum->count = 0;
    for (;;) {
        bool have_c = s->ci < s->nchunks, have_h = s->hi < s->head.n;
        if (!have_c && !have_h) return MT_ENOTFOUND;
        int64_t hh = have_h ? mt_hour_of(s->head.ts[s->hi]) : INT64_MAX;
        int64_t hc = have_c ? s->chunks[s->ci].hour : INT64_MAX;
        int64_t hour = hc < hh ? hc : hh;
        /* head points of this hour */
        size_t h_end = s->hi;
        while (h_end < s->head.n && mt_hour_of(s->head.ts[h_end]) == hour) h_end++;
        if (hc != hour) {
            size_t a = s->hi;
            s->hi = h_end;
            emit(s, s->head.ts + a, s->head.v + a, s->head.strs, s->head.strs_len, h_end - a, out);
            return unit_e < 0 ? MT_OK : emit_f64(s, out, unit_e, out, repeats);
        }
        scan_chunk *c = &s->chunks[s->ci++];
        if (s->ci < s->nchunks && s->chunks[s->ci].map) {
            /* the next hour's chunk lies in another file, most often out of the caches: its
               first lines fetched while this one decodes */
            const scan_chunk *nx = &s->chunks[s->ci];
            const uint8_t *p = nx->map->base + nx->ent.off;
            for (uint32_t o = 0; o < nx->ent.len && o < 512; o += 64) __builtin_prefetch(p + o);
        }
        if (!c->map) return damaged(s, c);
        /* a whole sealed hour with no late points waiting: its summary instead of its points */
        if (sum && s->hi == h_end && c->ent.type != MT_VT_STRING && hour * MT_HOUR_NS >= s->from &&
            (hour + 1) * MT_HOUR_NS <= s->to) {
            *sum = mt_hf_entry_info(hour, &c->ent);
            *out = (mt_points){.type = s->type};
            return MT_OK;
        }
        if (unit_e >= 0 && s->hi == h_end && whole_units(s, unit_e)) {
            /* the usual block of a PromQL query: decoded and converted in one pass */
            int rc = chunk_f64(s, c, unit_e, out, repeats);
            if (rc == MT_ECORRUPT || rc == MT_EFORMAT) return damaged(s, c);
            if (rc) return rc;
            if (!out->n) continue; /* the range cut it all away */
            return MT_OK;
        }
        mt_points cp;
        int rc = mt_decoder_decode(s->dec, c->map->base + c->ent.off, c->ent.len, &cp);
        /* a chunk version this build does not know, in a file whose own version it knows, is
           a damaged byte */
        if (rc == MT_ECORRUPT || rc == MT_EFORMAT) return damaged(s, c);
        if (rc) return rc;
        assert(cp.n > 0); /* the decoder refuses an empty chunk */
        /* the range may cut the chunk; most chunks lie wholly inside it, and need no walk */
        size_t a = cp.ts[0] >= s->from ? 0 : lower(cp.ts, 0, cp.n, s->from);
        size_t b = cp.ts[cp.n - 1] < s->to ? cp.n : lower(cp.ts, a, cp.n, s->to);
        mt_points cut = cp;
        cut.ts += a, cut.vals += a, cut.n = b - a;
        if (s->hi == h_end) {
            if (!cut.n) continue;
            emit(s, cut.ts, cut.vals, cut.strs, cut.strs_len, cut.n, out);
            return unit_e < 0 ? MT_OK : emit_f64(s, out, unit_e, out, repeats);
        }
        mt_pts h = {.ts = s->head.ts + s->hi,
                    .v = s->head.v + s->hi,
                    .strs = s->head.strs,
                    .strs_len = s->head.strs_len,
                    .n = h_end - s->hi};
        s->hi = h_end;
        mt_pts merged;
        if ((rc = mt_pts_merge(s->type, &cut, &h, &merged))) return rc;
        mt_pts_free(&s->out);
        s->out = merged;
        *out = (mt_points){.type = s->type,
                           .n = merged.n,
                           .ts = merged.ts,
                           .vals = merged.v,
                           .strs = merged.strs,
                           .strs_len = merged.strs_len};
        return unit_e < 0 ? MT_OK : emit_f64(s, out, unit_e, out, repeats);
    }
}
