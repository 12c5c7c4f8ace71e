/*
 * mt_rollup.c — hourly rollups, computed while an hour is sealed from the
 * values being written (no second pass over the disk), stored in the same
 * LMDB transaction as the hour file's record.
 *
 * One value per hour and kind in MT_DB_ROLLUPS:
 *   'S' u32 hour (BE, offset 2^31)  the series rows, ascending by id
 *   'G' u32 hour                    the group rows, ascending by key
 * A row is count, sum, min, max, p50, p95, p99; group rows go on with each
 * group's DDSketch (mt_sketch.h): quantiles over days and months merge
 * hours instead of reading them again. Quantiles are PostgreSQL's
 * PERCENTILE_CONT (mt_stats.h): exact.
 *
 * The value (docs/format.md): version 2 is the byte 0x02, then a zstd
 * frame of n, the ids (as deltas) or keys, then the rows' values in
 * mt_rollcodec's compact columns: decimal integers of min, max and the
 * order statistics the quantiles interpolate between, the sum as an
 * integer and a correction, sketches by column; a row that does not come
 * back bit for bit that way keeps raw doubles. Version 1, still read, is
 * the bare zstd frame (0x28 first) with counts and six float64 columns,
 * then each sketch as it was encoded. Both give the reader the same bits.
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
#include "mt_engine_int.h"
#include "mt_hash.h"
#include "mt_rollcodec.h"
#include "mt_sketch.h"
#include "mt_stats.h"
#include "mt_time.h"
#include "mt_zstd.h"

#define MAX_ROWS (1u << 24)        /* more rows in one hour is a corrupt value */
#define MAX_RAW  ((size_t)1 << 30) /* bytes of one decompressed value, at most */

#define V2 0x02 /* first byte of a version-2 value; version 1 is a bare zstd frame (0x28) */

typedef mt_rollrow vals;

typedef struct group {
    char *key; /* business_id 0 measurement 0 field */
    size_t klen;
    size_t n;  /* values of the hour */
    double *v; /* at store: its slice of the values gathered by group */
} group;

struct mt_rollups {
    int64_t hour;
    group *g;
    size_t ng, gcap;
    uint32_t *slots; /* open addressing by the key's hash: group index + 1, 0 empty */
    size_t nslots;   /* a power of two, at least twice ng */
    uint32_t *sid;   /* series rows, in the order added (ascending ids) */
    vals *sv;
    size_t ns, scap, sidcap;
    uint32_t *sgroup; /* each series row's group */
    size_t sgcap;
    /* every value of the hour, series after series (one array: growing it moves pages, not
       values); gathered by group at store */
    double *all;
    size_t nall, allcap;
    double group_s; /* time spent on the group rows alone: what the seed's view computes */
    /* mt_rollups_finish: the compressed 'S' and 'G' values (NULL: none), the rest freed */
    bool finished;
    uint8_t *z[2];
    size_t zl[2];
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
    for (size_t i = 0; i < r->ng; i++) free(r->g[i].key);
    free(r->g);
    free(r->slots);
    free(r->sid);
    free(r->sv);
    free(r->sgroup);
    free(r->all);
    free(r->z[0]);
    free(r->z[1]);
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

/* count, sum, min, max, the three quantiles of v[0..n) and their order statistics (v is
   reordered). */
static void compute(double *v, size_t n, vals *out)
{
    *out = (vals){.count = n};
    mt_describe_ranks(v, n, mt_roll_fractions, MT_ROLL_NQ, &out->sum, &out->min, &out->max, out->q,
                      out->ranks);
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
    int rc = id == 0 || id > e->index.n || !e->index.ents[id].len
                 ? MT_ENOTFOUND
                 : group_key(&e->index, id, out, cap, len);
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

/* Double the hash slots (or make the first 64) and place every group again. */
static int rehash(mt_rollups *r)
{
    size_t n = r->nslots ? r->nslots * 2 : 64;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -ENOMEM;
    for (size_t i = 0; i < r->ng; i++) {
        size_t at = mt_hash64(r->g[i].key, r->g[i].klen) & (n - 1);
        while (slots[at]) at = (at + 1) & (n - 1);
        slots[at] = (uint32_t)i + 1;
    }
    free(r->slots);
    r->slots = slots;
    r->nslots = n;
    return MT_OK;
}

/* The index of the group with this key in *gi, created if new. */
static int find_group(mt_rollups *r, const char *key, size_t klen, size_t *gi)
{
    int rc;
    if (2 * (r->ng + 1) > r->nslots && (rc = rehash(r))) return rc;
    size_t at = mt_hash64(key, klen) & (r->nslots - 1);
    for (; r->slots[at]; at = (at + 1) & (r->nslots - 1)) {
        group *g = &r->g[r->slots[at] - 1];
        if (g->klen == klen && !memcmp(g->key, key, klen)) {
            *gi = r->slots[at] - 1;
            return MT_OK;
        }
    }
    if ((rc = mt_grow(&r->g, &r->gcap, r->ng + 1, sizeof *r->g, 64))) return rc;
    group *g = &r->g[r->ng];
    memset(g, 0, sizeof *g);
    if (!(g->key = malloc(klen))) return -ENOMEM;
    memcpy(g->key, key, klen);
    g->klen = klen;
    r->slots[at] = (uint32_t)r->ng + 1;
    *gi = r->ng++;
    return MT_OK;
}

int mt_rollups_add(mt_rollups *r, const mt_index *ix, uint32_t id, mt_vtype t, const mt_val *v,
                   size_t n)
{
    if (t == MT_VT_STRING || n == 0) return MT_OK;
    char key[MT_SERIES_MAX_KEY];
    size_t klen, gi;
    int rc;
    if ((rc = group_key(ix, id, key, sizeof key, &klen)) || (rc = find_group(r, key, klen, &gi)))
        return rc;
    if ((rc = mt_grow(&r->all, &r->allcap, r->nall + n, sizeof *r->all, 64)) ||
        (rc = mt_grow(&r->sid, &r->sidcap, r->ns + 1, sizeof *r->sid, 64)) ||
        (rc = mt_grow(&r->sgroup, &r->sgcap, r->ns + 1, sizeof *r->sgroup, 64)) ||
        (rc = mt_grow(&r->sv, &r->scap, r->ns + 1, sizeof *r->sv, 64)))
        return rc;
    double *mine = r->all + r->nall;
    for (size_t i = 0; i < n; i++) mine[i] = as_double(t, v[i]);
    r->nall += n;
    r->g[gi].n += n;
    r->sid[r->ns] = id;
    r->sgroup[r->ns] = (uint32_t)gi;
    /* the series' own rollup, on its slice (reordering it is harmless: the group's values
       are a set, gathered at store) */
    compute(mine, n, &r->sv[r->ns]);
    r->ns++;
    return MT_OK;
}

/* Gather the values by group: each group's slice of one array, in series order. */
static int gather(mt_rollups *r, double **out)
{
    double *by = malloc((r->nall ? r->nall : 1) * sizeof *by);
    if (!by) return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < r->ng; i++) {
        r->g[i].v = by + off;
        off += r->g[i].n;
        r->g[i].n = 0; /* refilled below */
    }
    const double *src = r->all;
    for (size_t s = 0; s < r->ns; s++) {
        group *g = &r->g[r->sgroup[s]];
        memcpy(g->v + g->n, src, r->sv[s].count * sizeof *src);
        g->n += r->sv[s].count;
        src += r->sv[s].count;
    }
    *out = by;
    return MT_OK;
}

double mt_rollups_group_seconds(const mt_rollups *r)
{
    return r->group_s;
}

/* ---- the stored form --------------------------------------------------------------------- */

typedef mt_rollbuf buf;
#define put    mt_rollbuf_put
#define put_uv mt_rollbuf_uv

/* Compress raw into r->z[k], after the version byte. */
static int pack(mt_rollups *r, int k, const buf *raw)
{
    size_t cap = 1 + mt_zstd_bound(raw->len), zl;
    uint8_t *z = malloc(cap);
    if (!z) return -ENOMEM;
    z[0] = V2;
    int rc = mt_zstd_compress(NULL, z + 1, cap - 1, raw->p, raw->len, 3, &zl);
    if (rc) {
        free(z);
        return rc;
    }
    r->z[k] = z;
    r->zl[k] = 1 + zl;
    return MT_OK;
}

typedef struct gref {
    const char *key;
    size_t klen, i;
} gref;

static int by_key(const void *a, const void *b)
{
    const gref *x = a, *y = b;
    int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

/* What finish frees: the values gathered, once the rows are packed. */
static void drop_values(mt_rollups *r)
{
    free(r->all), free(r->sid), free(r->sv), free(r->sgroup);
    r->all = NULL, r->sid = NULL, r->sv = NULL, r->sgroup = NULL;
    r->nall = r->allcap = r->ns = r->scap = r->sidcap = r->sgcap = 0;
}

int mt_rollups_finish(mt_rollups *r)
{
    if (r->finished) return MT_OK;
    buf b = {0};
    int rc = MT_OK;
    if (r->ns) { /* series: ids as deltas (ascending), then the values */
        put_uv(&b, r->ns);
        for (size_t i = 0; i < r->ns; i++) put_uv(&b, r->sid[i] - (i ? r->sid[i - 1] : 0));
        rc = mt_rollcodec_put(&b, r->sv, NULL, r->ns, false);
        if (!rc) rc = pack(r, 0, &b);
    }
    /* groups, in key order; a key longer than LMDB's keys is left out as it always was */
    size_t *order = r->ng ? malloc(r->ng * sizeof *order) : NULL;
    gref *refs = r->ng ? malloc(r->ng * sizeof *refs) : NULL;
    vals *gv = r->ng ? malloc(r->ng * sizeof *gv) : NULL;
    mt_sketch *sk = NULL;
    size_t n = 0;
    if (r->ng && (!order || !refs || !gv || mt_sketch_new(&sk))) rc = rc ? rc : -ENOMEM;
    for (size_t i = 0; !rc && i < r->ng; i++)
        if (5 + r->g[i].klen <= 511) refs[n++] = (gref){r->g[i].key, r->g[i].klen, i};
    if (!rc && n) qsort(refs, n, sizeof *refs, by_key);
    for (size_t i = 0; !rc && i < n; i++) order[i] = refs[i].i;
    buf sketches = {0};
    size_t *skoff = n ? malloc(n * sizeof *skoff) : NULL;
    if (n && !skoff) rc = rc ? rc : -ENOMEM;
    double *by = NULL;
    int64_t t0 = mt_mono_ns();
    if (!rc && n) rc = gather(r, &by);
    r->group_s += (double)(mt_mono_ns() - t0) / 1e9;
    for (size_t i = 0; !rc && i < n; i++) {
        group *g = &r->g[order[i]];
        mt_sketch_clear(sk);
        for (size_t k = 0; !rc && k < g->n; k++)
            if ((rc = mt_sketch_add(sk, g->v[k], 1)) == MT_EINVAL) rc = MT_OK;
        uint8_t *enc;
        size_t len;
        if (!rc && !(rc = mt_sketch_encode(sk, &enc, &len))) {
            skoff[i] = sketches.len;
            put(&sketches, enc, len);
            free(enc);
            rc = sketches.rc;
        }
        t0 = mt_mono_ns();
        if (!rc) compute(g->v, g->n, &gv[order[i]]); /* after the sketch: it reorders */
        r->group_s += (double)(mt_mono_ns() - t0) / 1e9;
    }
    if (!rc && n) {
        b.len = 0;
        put_uv(&b, n);
        for (size_t i = 0; i < n; i++) {
            put_uv(&b, r->g[order[i]].klen);
            put(&b, r->g[order[i]].key, r->g[order[i]].klen);
        }
        for (size_t i = 0; i < n; i++) { /* now that the buffer has stopped moving */
            gv[order[i]].sketch = sketches.p + skoff[i];
            gv[order[i]].sketch_len = (i + 1 < n ? skoff[i + 1] : sketches.len) - skoff[i];
        }
        rc = mt_rollcodec_put(&b, gv, order, n, true);
        if (!rc) rc = pack(r, 1, &b);
    }
    mt_sketch_free(sk);
    free(by);
    free(sketches.p);
    free(skoff);
    free(order);
    free(refs);
    free(gv);
    free(b.p);
    if (rc) return rc;
    drop_values(r);
    r->finished = true;
    return MT_OK;
}

int mt_rollups_store(mt_rollups *r, mt_kv_txn *t)
{
    int rc = mt_rollups_finish(r);
    for (int k = 0; !rc && k < 2; k++) {
        if (!r->z[k]) continue;
        uint8_t key[5] = {k ? 'G' : 'S'};
        mt_engine_hour_key(key + 1, r->hour);
        rc = mt_kv_put(t, MT_DB_ROLLUPS, key, 5, r->z[k], r->zl[k]);
    }
    return rc;
}

/* ---- reading ------------------------------------------------------------------------------ */

static mt_name next_part(const char **p, const char *end)
{
    const char *z = memchr(*p, '\0', (size_t)(end - *p));
    mt_name n = {*p, (size_t)((z ? z : end) - *p)};
    *p = z ? z + 1 : end;
    return n;
}

/* Version 1's values: counts, six float64 columns, then the groups' sketches (len + bytes). */
static int read_v1(mt_rd *rd, size_t n, bool groups, vals *rows)
{
    for (size_t i = 0; i < n; i++)
        if (mt_rd_uvarint(rd, &rows[i].count)) return MT_ECORRUPT;
    if (mt_rd_left(rd) < 6 * 8 * n) return MT_ECORRUPT;
    for (size_t i = 0; i < n; i++) {
        double *to[6] = {&rows[i].sum,  &rows[i].min,  &rows[i].max,
                         &rows[i].q[0], &rows[i].q[1], &rows[i].q[2]};
        for (int k = 0; k < 6; k++) {
            uint64_t bits = mt_get_le(rd->p + 8 * (k * n + i), 8);
            memcpy(to[k], &bits, 8);
        }
    }
    rd->p += 6 * 8 * n;
    for (size_t i = 0; groups && i < n; i++) {
        uint64_t sl;
        if (mt_rd_uvarint(rd, &sl) || sl > mt_rd_left(rd)) return MT_ECORRUPT;
        rows[i].sketch = rd->p, rows[i].sketch_len = sl, rd->p += sl;
    }
    return MT_OK;
}

/* Read one hour's value (either version): decompress with zd, then call fn per row. */
static int read_hour(mt_zstd_d *zd, const uint8_t *z, size_t zl, int64_t hour, bool groups,
                     int (*fn)(void *ud, const mt_rollup *r), void *ud)
{
    bool v2 = zl && z[0] == V2;
    if (v2) z++, zl--;
    uint64_t raw_len;
    if (mt_zstd_frame_size(z, zl, &raw_len) || raw_len > MAX_RAW) return MT_ECORRUPT;
    uint8_t *raw = malloc(raw_len ? raw_len : 1), *sk = NULL;
    if (!raw) return -ENOMEM;
    mt_rd rd = {raw, raw + raw_len};
    uint64_t n = 0;
    int rc = mt_zstd_decompress(zd, raw, raw_len, z, zl);
    if (!rc) rc = mt_rd_uvarint(&rd, &n);
    if (!rc && (n == 0 || n > MAX_ROWS)) rc = MT_ECORRUPT;
    uint32_t *ids = NULL;
    mt_name *keys = NULL;
    vals *rows = NULL;
    if (!rc && (!(rows = calloc(n, sizeof *rows)) ||
                (groups ? !(keys = malloc(n * sizeof *keys)) : !(ids = malloc(n * sizeof *ids)))))
        rc = -ENOMEM;
    uint64_t id = 0, x;
    for (uint64_t i = 0; !rc && i < n; i++) {
        if ((rc = mt_rd_uvarint(&rd, &x))) break;
        if (groups) {
            if (x > mt_rd_left(&rd))
                rc = MT_ECORRUPT;
            else
                keys[i] = (mt_name){(const char *)rd.p, x}, rd.p += x;
        } else if (x > UINT32_MAX - id || (i && x == 0)) { /* checked before the sum could wrap */
            rc = MT_ECORRUPT;
        } else {
            ids[i] = (uint32_t)(id += x);
        }
    }
    if (!rc && v2 && !(rc = mt_rollcodec_get(&rd, n, groups, rows, &sk)) && mt_rd_left(&rd))
        rc = MT_ECORRUPT;
    if (!rc && !v2) rc = read_v1(&rd, n, groups, rows);
    for (uint64_t i = 0; !rc && i < n; i++) {
        const vals *v = &rows[i];
        mt_rollup ro = {.hour = hour,
                        .count = v->count,
                        .sum = v->sum,
                        .min = v->min,
                        .max = v->max,
                        .p50 = v->q[0],
                        .p95 = v->q[1],
                        .p99 = v->q[2]};
        if (groups) {
            ro.sketch = v->sketch, ro.sketch_len = v->sketch_len;
            const char *p = keys[i].ptr, *end = p + keys[i].len;
            ro.group = p, ro.group_len = keys[i].len;
            ro.business_id = next_part(&p, end);
            ro.measurement = next_part(&p, end);
            ro.field = next_part(&p, end);
        } else {
            ro.id = ids[i];
        }
        rc = fn(ud, &ro);
    }
    free(ids);
    free(keys);
    free(rows);
    free(sk);
    free(raw);
    return rc;
}

int mt_engine_rollups(mt_engine *e, int64_t from_hour, int64_t to_hour, bool groups,
                      int (*fn)(void *ud, const mt_rollup *r), void *ud)
{
    /* one context for every hour: a one-off decompression would create one per call */
    mt_zstd_d *zd;
    if (mt_zstd_d_new(&zd)) return -ENOMEM;
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) {
        mt_zstd_d_free(zd);
        return rc;
    }
    mt_kv_cursor *c;
    if ((rc = mt_kv_cursor_open(t, MT_DB_ROLLUPS, &c))) {
        mt_kv_abort(t);
        mt_zstd_d_free(zd);
        return rc;
    }
    uint8_t start[5];
    start[0] = groups ? 'G' : 'S';
    mt_engine_hour_key(start + 1, from_hour < INT32_MIN ? INT32_MIN : from_hour);
    const void *k, *v;
    size_t kl, vl;
    int r;
    for (r = mt_kv_cursor_seek(c, start, 5, &k, &kl, &v, &vl); r == MT_OK && !rc;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        const uint8_t *kb = k;
        if (kl != 5 || kb[0] != start[0]) break;
        int64_t hour = (int64_t)mt_load_be32(kb + 1) - 0x80000000LL;
        if (hour >= to_hour) break;
        rc = read_hour(zd, v, vl, hour, groups, fn, ud);
    }
    if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r; /* a damaged record: not the end */
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    mt_zstd_d_free(zd);
    return rc;
}

int mt_rollups_drop(mt_kv_txn *t, int64_t before, bool dry_run, size_t *hours)
{
    int rc = MT_OK;
    size_t most = 0; /* hours: a string-only hour has groups but no series rows */
    uint8_t end[5];
    mt_engine_hour_key(end + 1, before);
    for (int k = 0; k < 2 && !rc; k++) {
        const uint8_t kind = k ? 'S' : 'G';
        end[0] = kind;
        /* collect first: no cursor lives across a delete */
        uint8_t(*keys)[5] = NULL;
        size_t n = 0, cap = 0;
        mt_kv_cursor *c;
        if ((rc = mt_kv_cursor_open(t, MT_DB_ROLLUPS, &c))) break;
        const void *key, *v;
        size_t kl, vl;
        int r;
        for (r = mt_kv_cursor_seek(c, &kind, 1, &key, &kl, &v, &vl); !rc && r == MT_OK;
             r = mt_kv_cursor_next(c, &key, &kl, &v, &vl)) {
            if (kl != 5 || memcmp(key, end, 5) >= 0) break;
            if (!(rc = mt_grow(&keys, &cap, n + 1, sizeof *keys, 64))) memcpy(keys[n++], key, 5);
        }
        if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r;
        mt_kv_cursor_close(c);
        for (size_t i = 0; !rc && !dry_run && i < n; i++)
            rc = mt_kv_del(t, MT_DB_ROLLUPS, keys[i], 5);
        if (n > most) most = n;
        free(keys);
    }
    if (!rc) *hours += most;
    return rc;
}
