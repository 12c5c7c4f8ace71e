/*
 * test_rollcodec.c — the compact form of rollup rows (engine/mt_rollcodec.h)
 * and the stored values around it (engine/mt_rollup.c): every row read
 * back is bit for bit what mt_describe computed, awkward rows included
 * (they fall back to raw doubles); group sketches come back byte for byte;
 * rows of decimals do take fewer bytes; and a version-1 value, written by
 * a copy of the old packing below, still reads the same.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mt_engine.h"
#include "mt_kv.h"
#include "mt_rollcodec.h"
#include "mt_sketch.h"
#include "mt_stats.h"
#include "mt_zstd.h"
#include "test_util.h"

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* The row of v[0..n), as the seal computes it (mt_describe_ranks on a copy). */
static mt_rollrow row_of(const double *v, size_t n)
{
    double *w = malloc(n * sizeof *w);
    cr_assert_not_null(w);
    memcpy(w, v, n * sizeof *w);
    mt_rollrow r = {.count = n};
    cr_assert_eq(mt_describe_ranks(w, n, mt_roll_fractions, MT_ROLL_NQ, &r.sum, &r.min, &r.max, r.q,
                                   r.ranks),
                 MT_OK);
    free(w);
    return r;
}

/* What mt_describe itself gives for v[0..n): the reference every row is held to. */
static void expect_describe(const mt_rollrow *got, const double *v, size_t n, const char *what)
{
    double *w = malloc(n * sizeof *w), sum, min, max, q[MT_ROLL_NQ];
    cr_assert_not_null(w);
    memcpy(w, v, n * sizeof *w);
    cr_assert_eq(mt_describe(w, n, mt_roll_fractions, MT_ROLL_NQ, &sum, &min, &max, q), MT_OK);
    free(w);
    cr_expect_eq(got->count, n, "%s: count", what);
    cr_expect_eq(bits(got->sum), bits(sum), "%s: sum %.17g, want %.17g", what, got->sum, sum);
    cr_expect_eq(bits(got->min), bits(min), "%s: min %.17g, want %.17g", what, got->min, min);
    cr_expect_eq(bits(got->max), bits(max), "%s: max %.17g, want %.17g", what, got->max, max);
    for (int i = 0; i < MT_ROLL_NQ; i++)
        cr_expect_eq(bits(got->q[i]), bits(q[i]), "%s: q%d %.17g, want %.17g", what, i, got->q[i],
                     q[i]);
}

/* Encode rows[0..n) and decode them again into back (sk: the rebuilt sketches, to free). */
static size_t round_trip(const mt_rollrow *rows, size_t n, bool sketches, mt_rollrow *back,
                         uint8_t **sk)
{
    mt_rollbuf b = {0};
    cr_assert_eq(mt_rollcodec_put(&b, rows, NULL, n, sketches), MT_OK);
    mt_rd rd = {b.p, b.p + b.len};
    int rc = mt_rollcodec_get(&rd, n, sketches, back, sk);
    cr_assert_eq(rc, MT_OK, "decode: %s", mt_strerror(rc));
    cr_expect_eq(mt_rd_left(&rd), 0, "every byte read");
    free(b.p);
    return b.len;
}

typedef struct kase {
    const char *what;
    double v[400];
    size_t n;
} kase;

static void fill_cases(kase *k, size_t *nk)
{
    size_t n = 0;
    uint64_t st = mt_test_seed();
    k[n] = (kase){"n=1", {42.5}, 1}, n++;
    k[n] = (kase){"n=2", {3.25, -1.5}, 2}, n++;
    k[n] = (kase){"all equal", {0}, 300};
    for (size_t i = 0; i < 300; i++) k[n].v[i] = 7.1;
    n++;
    k[n] = (kase){"negative", {0}, 200};
    for (size_t i = 0; i < 200; i++) k[n].v[i] = -(double)(mt_test_rand(&st) % 100000) / 100;
    n++;
    k[n] = (kase){"-0.0 among zeros", {0.0, -0.0, 0.0, 1.0, -0.0}, 5}, n++;
    k[n] = (kase){"-0.0 alone", {-0.0}, 1}, n++;
    k[n] = (kase){"e=15", {0}, 150};
    for (size_t i = 0; i < 150; i++)
        k[n].v[i] = (double)(mt_test_rand(&st) % 8000000000000000ull) / 1e15;
    n++;
    k[n] = (kase){"beyond 2^53 (int and uint series)", {0}, 360};
    for (size_t i = 0; i < 360; i++)
        k[n].v[i] = (double)(9007199254740993ull + (mt_test_rand(&st) % (1ull << 60)));
    n++;
    k[n] = (kase){"subnormal", {DBL_TRUE_MIN, 4.9e-320, 2 * DBL_TRUE_MIN, DBL_MIN / 2}, 4}, n++;
    k[n] = (kase){"cpu-like, 2 decimals", {0}, 360};
    for (size_t i = 0; i < 360; i++) k[n].v[i] = (double)(mt_test_rand(&st) % 10001) / 100;
    n++;
    k[n] = (kase){"bytes, multiples of 1024", {0}, 360};
    for (size_t i = 0; i < 360; i++) k[n].v[i] = (double)((mt_test_rand(&st) % 10000000) * 1024);
    n++;
    k[n] = (kase){"counter", {0}, 360};
    for (size_t i = 0; i < 360; i++)
        k[n].v[i] = 1e12 + (double)i * 1000 + (double)(mt_test_rand(&st) % 1000);
    n++;
    k[n] = (kase){"mixed e and huge", {1e300, 0.1, 2.5, -3e-300, 12345.6789}, 5}, n++;
    k[n] = (kase){"no decimal (thirds)", {1.0 / 3, 2.0 / 3, 1.0, 4.0 / 3}, 4}, n++;
    *nk = n;
}

Test(rollcodec, awkward_rows_read_back_bit_for_bit)
{
    static kase k[32];
    size_t nk;
    fill_cases(k, &nk);
    mt_rollrow rows[32], back[32];
    for (size_t i = 0; i < nk; i++) rows[i] = row_of(k[i].v, k[i].n);
    uint8_t *sk = NULL;
    round_trip(rows, nk, false, back, &sk);
    cr_expect_null(sk, "no sketches in series rows");
    for (size_t i = 0; i < nk; i++) expect_describe(&back[i], k[i].v, k[i].n, k[i].what);
    /* one at a time too: a row's column stands alone */
    for (size_t i = 0; i < nk; i++) {
        round_trip(&rows[i], 1, false, back, &sk);
        expect_describe(&back[0], k[i].v, k[i].n, k[i].what);
    }
    cr_log_info("seed %llu", (unsigned long long)mt_test_seed());
}

Test(rollcodec, rows_of_decimals_take_fewer_bytes_than_raw_doubles)
{
    static kase k[32];
    size_t nk;
    fill_cases(k, &nk);
    mt_rollrow back;
    uint8_t *sk = NULL;
    const char *compact[] = {
        "n=1",     "all equal", "cpu-like, 2 decimals", "bytes, multiples of 1024",
        "counter", "negative"};
    for (size_t i = 0; i < nk; i++)
        for (size_t c = 0; c < sizeof compact / sizeof *compact; c++) {
            if (strcmp(k[i].what, compact[c])) continue;
            mt_rollrow r = row_of(k[i].v, k[i].n);
            size_t len = round_trip(&r, 1, false, &back, &sk);
            /* raw: 48 bytes of doubles plus 13 column lengths, count, mode */
            cr_expect_lt(len, 13 + 2 + 6 * 8 - 8, "%s: %zu bytes, not the compact form", k[i].what,
                         len);
        }
}

Test(rollcodec, a_row_that_does_not_recompute_keeps_its_doubles)
{
    double v[] = {1.5, 2.5, 3.5, 10.25};
    mt_rollrow r[3] = {row_of(v, 4), row_of(v, 4), row_of(v, 4)}, back[3];
    r[0].q[1] = nextafter(r[0].q[1], 0); /* not the interpolation of its order statistics */
    r[1].sum = 1e300;                    /* a sum no integer at e reaches */
    r[2].ranks[2] = 0.75;                /* order statistics out of order */
    uint8_t *sk = NULL;
    round_trip(r, 3, false, back, &sk);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(bits(back[i].sum), bits(r[i].sum), "row %d sum", i);
        cr_expect_eq(bits(back[i].min), bits(r[i].min), "row %d min", i);
        cr_expect_eq(bits(back[i].max), bits(r[i].max), "row %d max", i);
        for (int q = 0; q < MT_ROLL_NQ; q++)
            cr_expect_eq(bits(back[i].q[q]), bits(r[i].q[q]), "row %d q%d", i, q);
    }
}

Test(rollcodec, group_sketches_rebuild_byte_for_byte)
{
    static kase k[32];
    size_t nk;
    fill_cases(k, &nk);
    mt_rollrow rows[33], back[33];
    uint8_t *enc[33];
    mt_sketch *s;
    cr_assert_eq(mt_sketch_new(&s), MT_OK);
    for (size_t i = 0; i <= nk; i++) {
        mt_sketch_clear(s);
        const double *v = k[i < nk ? i : 0].v;
        size_t n = k[i < nk ? i : 0].n;
        for (size_t j = 0; j < n; j++) mt_sketch_add(s, v[j], 1);
        rows[i] = row_of(v, n);
        cr_assert_eq(mt_sketch_encode(s, &enc[i], &rows[i].sketch_len), MT_OK);
        rows[i].sketch = enc[i];
    }
    rows[nk].min = -1; /* its sketch's min is not the row's: kept verbatim */
    uint8_t *sk = NULL;
    round_trip(rows, nk + 1, true, back, &sk);
    for (size_t i = 0; i <= nk; i++) {
        cr_expect_eq(back[i].sketch_len, rows[i].sketch_len, "%zu: sketch length", i);
        cr_expect(!memcmp(back[i].sketch, rows[i].sketch, rows[i].sketch_len), "%zu: sketch", i);
        free(enc[i]);
    }
    free(sk);
    mt_sketch_free(s);
}

Test(rollcodec, corrupt_columns_are_errors)
{
    double v[] = {1.5, 2.5, 3.5};
    mt_rollrow r = row_of(v, 3), back;
    mt_rollbuf b = {0};
    cr_assert_eq(mt_rollcodec_put(&b, &r, NULL, 1, false), MT_OK);
    for (size_t cut = 0; cut < b.len; cut++) { /* every truncation */
        mt_rd rd = {b.p, b.p + cut};
        uint8_t *sk = NULL;
        cr_expect_eq(mt_rollcodec_get(&rd, 1, false, &back, &sk), MT_ECORRUPT, "cut at %zu", cut);
        free(sk);
    }
    free(b.p);
}

/* ---- a version-1 value in a data dir --------------------------------------------------- */

static char dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

typedef struct rows {
    mt_rollup r[64];
    uint8_t key[64][128];
    uint8_t sketch[64][4096];
    size_t n;
} rows;

static int keep(void *ud, const mt_rollup *r)
{
    rows *rs = ud;
    cr_assert_lt(rs->n, 64);
    cr_assert_leq(r->group_len, 128);
    cr_assert_leq(r->sketch_len, 4096);
    mt_rollup *to = &rs->r[rs->n];
    *to = *r;
    if (r->group_len) memcpy(rs->key[rs->n], r->group, r->group_len);
    if (r->sketch_len) memcpy(rs->sketch[rs->n], r->sketch, r->sketch_len);
    to->group = rs->key[rs->n], to->sketch = rs->sketch[rs->n];
    to->business_id = to->measurement = to->field = (mt_name){0};
    rs->n++;
    return 0;
}

/* The packing of version 1 (mt_rollup.c before the compact form), kept here to write one. */
static void v1_pack(const rows *rs, bool groups, uint8_t **out, size_t *len)
{
    mt_rollbuf b = {0};
    mt_rollbuf_uv(&b, rs->n);
    for (size_t i = 0; i < rs->n; i++)
        if (groups) {
            mt_rollbuf_uv(&b, rs->r[i].group_len);
            mt_rollbuf_put(&b, rs->r[i].group, rs->r[i].group_len);
        } else {
            mt_rollbuf_uv(&b, rs->r[i].id - (i ? rs->r[i - 1].id : 0));
        }
    for (size_t i = 0; i < rs->n; i++) mt_rollbuf_uv(&b, rs->r[i].count);
    for (int k = 0; k < 6; k++)
        for (size_t i = 0; i < rs->n; i++) {
            const mt_rollup *r = &rs->r[i];
            double d[6] = {r->sum, r->min, r->max, r->p50, r->p95, r->p99};
            uint8_t le[8];
            mt_put_le(le, bits(d[k]), 8);
            mt_rollbuf_put(&b, le, 8);
        }
    for (size_t i = 0; groups && i < rs->n; i++) {
        mt_rollbuf_uv(&b, rs->r[i].sketch_len);
        mt_rollbuf_put(&b, rs->r[i].sketch, rs->r[i].sketch_len);
    }
    cr_assert_eq(b.rc, MT_OK);
    size_t cap = mt_zstd_bound(b.len);
    *out = malloc(cap);
    cr_assert_eq(mt_zstd_compress(NULL, *out, cap, b.p, b.len, 3, len), MT_OK);
    free(b.p);
}

static void expect_same(const rows *a, const rows *b, const char *kind)
{
    cr_assert_eq(a->n, b->n, "%s: rows", kind);
    for (size_t i = 0; i < a->n; i++) {
        const mt_rollup *x = &a->r[i], *y = &b->r[i];
        cr_expect_eq(x->id, y->id);
        cr_expect_eq(x->count, y->count);
        const double dx[6] = {x->sum, x->min, x->max, x->p50, x->p95, x->p99};
        const double dy[6] = {y->sum, y->min, y->max, y->p50, y->p95, y->p99};
        for (int k = 0; k < 6; k++)
            cr_expect_eq(bits(dx[k]), bits(dy[k]), "%s %zu: %d", kind, i, k);
        cr_expect_eq(x->group_len, y->group_len);
        cr_expect(!x->group_len || !memcmp(x->group, y->group, x->group_len));
        cr_expect_eq(x->sketch_len, y->sketch_len);
        cr_expect(!x->sketch_len || !memcmp(x->sketch, y->sketch, x->sketch_len), "%s %zu: sketch",
                  kind, i);
    }
}

Test(rollcodec, a_version_1_value_still_reads_the_same)
{
    snprintf(dir, sizeof dir, "/tmp/metron-rollcodec-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const int64_t t0 = 1735689600LL * 1000000000LL, hour = t0 / MT_HOUR_NS;
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    const char *bids[] = {"tenant-a", "tenant-b"};
    uint64_t st = mt_test_seed();
    for (int h = 0; h < 4; h++) {
        char k[512], host[16];
        snprintf(host, sizeof host, "h%d", h);
        mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
                tv[2] = {{bids[h % 2], 8}, {host, strlen(host)}};
        size_t kf = mt_series_key(k, sizeof k, (mt_name){"cpu", 3}, tk, tv, 2, (mt_name){"u", 1});
        for (int i = 0; i < 360; i++) {
            double v = (double)(mt_test_rand(&st) % 10001) / 100;
            if (h == 3 && i == 7) v = -0.0;
            cr_assert_eq(
                mt_batch_add(b, k, kf, t0 + i * 10000000000LL, MT_VT_FLOAT, (mt_val){.f = v}, NULL),
                MT_OK);
        }
        size_t ki = mt_series_key(k, sizeof k, (mt_name){"net", 3}, tk, tv, 2, (mt_name){"n", 1});
        for (int i = 0; i < 360; i++)
            cr_assert_eq(mt_batch_add(b, k, ki, t0 + i * 10000000000LL, MT_VT_INT,
                                      (mt_val){.i = (INT64_C(1) << 60) + i * 977 + h}, NULL),
                         MT_OK);
    }
    cr_assert_eq(mt_engine_write(e, b, NULL), MT_OK);
    mt_batch_free(b);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    static rows now[2], old[2];
    for (int g = 0; g < 2; g++)
        cr_assert_eq(mt_engine_rollups(e, hour, hour + 1, g, keep, &now[g]), MT_OK);
    mt_engine_close(e);
    cr_assert_eq(now[0].n, 8, "series rows");
    cr_assert_eq(now[1].n, 4, "group rows");

    mt_kv *kv;
    mt_kv_txn *t;
    cr_assert_eq(mt_kv_open(dir, NULL, &kv), MT_OK);
    cr_assert_eq(mt_kv_begin(kv, true, &t), MT_OK);
    for (int g = 0; g < 2; g++) {
        uint8_t key[5] = {g ? 'G' : 'S'}, *v1;
        mt_store_be32(key + 1, (uint32_t)(hour + 0x80000000LL));
        const void *cur;
        size_t curl, v1l;
        cr_assert_eq(mt_kv_get(t, MT_DB_ROLLUPS, key, 5, &cur, &curl), MT_OK);
        cr_expect_eq(((const uint8_t *)cur)[0], 0x02, "written as version 2");
        v1_pack(&now[g], g, &v1, &v1l);
        cr_assert_eq(v1[0], 0x28, "version 1 is a bare zstd frame");
        cr_assert_eq(mt_kv_put(t, MT_DB_ROLLUPS, key, 5, v1, v1l), MT_OK);
        free(v1);
    }
    cr_assert_eq(mt_kv_commit(t), MT_OK);
    mt_kv_close(kv);

    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    for (int g = 0; g < 2; g++)
        cr_assert_eq(mt_engine_rollups(e, hour, hour + 1, g, keep, &old[g]), MT_OK);
    mt_engine_close(e);
    expect_same(&now[0], &old[0], "series");
    expect_same(&now[1], &old[1], "groups");
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
