/*
 * mt_rollup.c — hourly rollups, computed while an hour is sealed from the
 * values being written (no second pass over the disk), stored in the same
 * LMDB transaction as the hour file's record.
 *
 * Keys in MT_DB_ROLLUPS:
 *   'S' u32 hour (BE, offset 2^31) u32 series id (BE)          per series
 *   'G' u32 hour (BE, offset 2^31) business_id 0 measurement 0 field   per group
 * Value: u64 count, then sum, min, max, p50, p95, p99 as float64 (LE);
 * a group's value goes on with its DDSketch (mt_sketch.h), so quantiles
 * over days and months merge hours instead of reading them again.
 * Quantiles are PostgreSQL's PERCENTILE_CONT (mt_stats.h): exact.
 *
 * Series rows carry no sketch: at a point every 10 s a series-hour holds
 * 360 values in ~600 bytes of block, and its sketch would cost as much
 * again; a series' long-range quantiles are computed exactly from its
 * blocks instead, which is fast (one series, sequential reads).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_sketch.h"
#include "mt_engine_int.h"
#include "mt_stats.h"

#define ROLLUP_VALUE 56 /* u64 count + 6 doubles */

static const double fractions[3] = {0.5, 0.95, 0.99};

typedef struct group {
    char *key; /* business_id 0 measurement 0 field */
    size_t klen;
    double *v;
    size_t n, cap;
} group;

struct mt_rollups {
    int64_t hour;
    group *g;
    size_t ng, gcap;
    uint8_t *rows; /* series rollups, ready: key (9 bytes) + value, back to back */
    size_t rows_len, rows_cap;
    double *tmp; /* scratch for percentiles */
    size_t tmp_cap;
};

int mt_rollups_new(int64_t hour, mt_rollups **out)
{
    mt_rollups *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->hour = hour;
    *out = r;
    return MT_OK;
}

void mt_rollups_free(mt_rollups *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->ng; i++) free(r->g[i].key), free(r->g[i].v);
    free(r->g);
    free(r->rows);
    free(r->tmp);
    free(r);
}

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    case MT_VT_UINT: return (double)v.u;
    default: return (double)v.u;
    }
}

/* count, sum, min, max and the three quantiles of v[0..n) (reordered). */
static void compute(double *v, size_t n, uint8_t out[ROLLUP_VALUE])
{
    mt_summary s;
    mt_summary_init(&s);
    for (size_t i = 0; i < n; i++) mt_summary_add(&s, v[i]);
    double q[3];
    mt_percentiles_cont(v, n, fractions, 3, q);
    mt_put_le(out, s.count, 8);
    const double d[6] = {s.sum, s.min, s.max, q[0], q[1], q[2]};
    for (int k = 0; k < 6; k++) {
        uint64_t b;
        memcpy(&b, &d[k], 8);
        mt_put_le(out + 8 + 8 * k, b, 8);
    }
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return MT_OK;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *n = realloc(*p, c * elem);
    if (!n) return -ENOMEM;
    *p = n;
    *cap = c;
    return MT_OK;
}

/* The group of series id: business_id 0 measurement 0 field. */
static int group_key(const mt_index *ix, uint32_t id, char *key, size_t cap, size_t *len)
{
    mt_series_parts parts;
    const mt_series_ent *se = &ix->ents[id];
    if (mt_series_parse(ix->arena + se->off, se->len, &parts)) return MT_ECORRUPT;
    mt_name bid = {"", 0};
    for (size_t k = 0; k < parts.ntags; k++)
        if (parts.tag_keys[k].len == 11 && !memcmp(parts.tag_keys[k].ptr, "business_id", 11))
            bid = parts.tag_values[k];
    size_t klen = bid.len + 1 + parts.measurement.len + 1 + parts.field.len;
    if (klen > cap) return MT_ELIMIT;
    memcpy(key, bid.ptr, bid.len);
    key[bid.len] = '\0';
    memcpy(key + bid.len + 1, parts.measurement.ptr, parts.measurement.len);
    key[bid.len + 1 + parts.measurement.len] = '\0';
    memcpy(key + bid.len + 2 + parts.measurement.len, parts.field.ptr, parts.field.len);
    *len = klen;
    return MT_OK;
}

int mt_engine_series_group(mt_engine *e, uint32_t id, char *out, size_t cap, size_t *len)
{
    pthread_rwlock_rdlock(&e->lock);
    int rc = id == 0 || id > e->index.n ? MT_ENOTFOUND : group_key(&e->index, id, out, cap, len);
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

int mt_rollups_add(mt_rollups *r, const mt_index *ix, uint32_t id, mt_vtype t, const mt_val *v,
                   size_t n)
{
    if (t == MT_VT_STRING || n == 0) return MT_OK;
    int rc = reserve((void **)&r->tmp, &r->tmp_cap, n, sizeof *r->tmp);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) r->tmp[i] = as_double(t, v[i]);
    char key[MT_SERIES_MAX_KEY];
    size_t klen;
    if ((rc = group_key(ix, id, key, sizeof key, &klen))) return rc;
    size_t gi = 0;
    while (gi < r->ng && (r->g[gi].klen != klen || memcmp(r->g[gi].key, key, klen))) gi++;
    if (gi == r->ng) {
        if ((rc = reserve((void **)&r->g, &r->gcap, r->ng + 1, sizeof *r->g))) return rc;
        group *g = &r->g[r->ng];
        memset(g, 0, sizeof *g);
        if (!(g->key = malloc(klen))) return -ENOMEM;
        memcpy(g->key, key, klen);
        g->klen = klen;
        r->ng++;
    }
    group *g = &r->g[gi];
    if ((rc = reserve((void **)&g->v, &g->cap, g->n + n, sizeof *g->v))) return rc;
    memcpy(g->v + g->n, r->tmp, n * sizeof *r->tmp);
    g->n += n;
    /* the series' own rollup */
    if ((rc = reserve((void **)&r->rows, &r->rows_cap, r->rows_len + 9 + ROLLUP_VALUE, 1)))
        return rc;
    uint8_t *row = r->rows + r->rows_len;
    row[0] = 'S';
    mt_engine_hour_key(row + 1, r->hour);
    row[5] = (uint8_t)(id >> 24), row[6] = (uint8_t)(id >> 16), row[7] = (uint8_t)(id >> 8);
    row[8] = (uint8_t)id;
    compute(r->tmp, n, row + 9);
    r->rows_len += 9 + ROLLUP_VALUE;
    return MT_OK;
}

int mt_rollups_store(mt_rollups *r, mt_kv_txn *t)
{
    int rc = MT_OK;
    for (size_t off = 0; !rc && off < r->rows_len; off += 9 + ROLLUP_VALUE)
        rc = mt_kv_put(t, MT_DB_ROLLUPS, r->rows + off, 9, r->rows + off + 9, ROLLUP_VALUE);
    uint8_t key[5 + MT_SERIES_MAX_KEY], *val = NULL, *sk = NULL;
    size_t sklen;
    mt_sketch *sketch = NULL;
    if (!rc && r->ng) rc = mt_sketch_new(&sketch);
    for (size_t i = 0; !rc && i < r->ng; i++) {
        group *g = &r->g[i];
        if (5 + g->klen > 511) continue; /* LMDB's key limit: such a group has no rollup row */
        key[0] = 'G';
        mt_engine_hour_key(key + 1, r->hour);
        memcpy(key + 5, g->key, g->klen);
        mt_sketch_clear(sketch);
        for (size_t k = 0; !rc && k < g->n; k++)
            if ((rc = mt_sketch_add(sketch, g->v[k], 1)) == MT_EINVAL) rc = MT_OK;
        if (!rc) rc = mt_sketch_encode(sketch, &sk, &sklen);
        if (rc) break;
        uint8_t *nv = realloc(val, ROLLUP_VALUE + sklen);
        if (!nv) {
            free(sk);
            rc = -ENOMEM;
            break;
        }
        val = nv;
        compute(g->v, g->n, val); /* after the sketch: compute reorders the values */
        memcpy(val + ROLLUP_VALUE, sk, sklen);
        free(sk);
        rc = mt_kv_put(t, MT_DB_ROLLUPS, key, 5 + g->klen, val, ROLLUP_VALUE + sklen);
    }
    mt_sketch_free(sketch);
    free(val);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------- */

static mt_name next_part(const char **p, const char *end)
{
    const char *z = memchr(*p, '\0', (size_t)(end - *p));
    mt_name n = {*p, (size_t)((z ? z : end) - *p)};
    *p = z ? z + 1 : end;
    return n;
}

int mt_engine_rollups(mt_engine *e, int64_t from_hour, int64_t to_hour, bool groups,
                      int (*fn)(void *ud, const mt_rollup *r), void *ud)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    mt_kv_cursor *c;
    if ((rc = mt_kv_cursor_open(t, MT_DB_ROLLUPS, &c))) {
        mt_kv_abort(t);
        return rc;
    }
    uint8_t start[5];
    start[0] = groups ? 'G' : 'S';
    mt_engine_hour_key(start + 1, from_hour < INT32_MIN ? INT32_MIN : from_hour);
    const void *k, *v;
    size_t kl, vl;
    for (int r = mt_kv_cursor_seek(c, start, 5, &k, &kl, &v, &vl); r == MT_OK && !rc;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        const uint8_t *kb = k, *vb = v;
        if (kl < 5 || kb[0] != start[0] || vl < ROLLUP_VALUE) break;
        int64_t hour = (int64_t)((uint32_t)kb[1] << 24 | (uint32_t)kb[2] << 16 |
                                 (uint32_t)kb[3] << 8 | kb[4]) -
                       0x80000000LL;
        if (hour >= to_hour) break;
        mt_rollup ro = {.hour = hour, .count = mt_get_le(vb, 8)};
        double d[6];
        for (int i = 0; i < 6; i++) {
            uint64_t b = mt_get_le(vb + 8 + 8 * i, 8);
            memcpy(&d[i], &b, 8);
        }
        ro.sum = d[0], ro.min = d[1], ro.max = d[2], ro.p50 = d[3], ro.p95 = d[4], ro.p99 = d[5];
        if (groups) {
            const char *p = (const char *)kb + 5, *end = (const char *)kb + kl;
            ro.business_id = next_part(&p, end);
            ro.measurement = next_part(&p, end);
            ro.field = next_part(&p, end);
            ro.group = kb + 5;
            ro.group_len = kl - 5;
            ro.sketch = vb + ROLLUP_VALUE;
            ro.sketch_len = vl - ROLLUP_VALUE;
        } else if (kl == 9) {
            ro.id = (uint32_t)kb[5] << 24 | (uint32_t)kb[6] << 16 | (uint32_t)kb[7] << 8 | kb[8];
        }
        rc = fn(ud, &ro);
    }
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    return rc;
}
