/*
 * test_engine.c — the storage engine on real files: round trips, ordering,
 * last-write-wins, type conflicts, sealing, late points and backfill,
 * reopen, recovery of leftover files, corruption, concurrent readers.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine.h"
#include "mt_fault.h"
#include "test_util.h"

#define H  MT_HOUR_NS
#define T0 (1735689600LL * 1000000000LL) /* 2025-01-01T00:00:00Z, an hour boundary */
#define S  1000000000LL

static char dir[256];
static int64_t fake_now;
static uint32_t settle; /* open_engine's settle_records: 0, hours seal when the watermark passes */

static int64_t clock_fn(void *ud)
{
    (void)ud;
    return fake_now;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    fake_now = T0 + 1000 * H; /* far after the data: hours are due by the wall clock */
    settle = 0;
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(engine, .init = setup, .fini = teardown);

/* The options of these tests: their dir, no writer-side seals, the fake clock, settle. */
static mt_engine_options test_options(void)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    o.clock_ns = clock_fn;
    o.settle_records = settle;
    return o;
}

static mt_engine *open_engine(void)
{
    mt_engine_options o = test_options();
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    cr_assert_eq(rc, MT_OK, "open: %s", mt_strerror(rc));
    return e;
}

/* Key of cpu,host=<host> <field>. */
static size_t key(char *out, const char *host, const char *field)
{
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{host, strlen(host)}};
    size_t n =
        mt_series_key(out, 512, (mt_name){"cpu", 3}, tk, tv, 1, (mt_name){field, strlen(field)});
    cr_assert_gt(n, 0);
    return n;
}

static void add_f(mt_batch *b, const char *host, const char *field, int64_t ts, double v)
{
    char k[512];
    size_t kl = key(k, host, field);
    cr_assert_eq(mt_batch_add(b, k, kl, ts, MT_VT_FLOAT, (mt_val){.f = v}, NULL), MT_OK);
}

static void write_ok(mt_engine *e, mt_batch *b, size_t accepted)
{
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_assert_eq(r.accepted, accepted, "accepted %zu of %zu", r.accepted, accepted);
    mt_batch_reset(b);
}

/* Read a whole series into arrays; returns the count. */
static size_t read_all(mt_engine *e, const char *host, const char *field, int64_t from, int64_t to,
                       int64_t *ts, double *v, size_t cap)
{
    char k[512];
    size_t kl = key(k, host, field);
    uint32_t id;
    mt_vtype t;
    if (mt_engine_series_lookup(e, k, kl, &id, &t) != MT_OK) return 0;
    mt_scan *s;
    cr_assert_eq(mt_scan_open(e, id, from, to, &s), MT_OK);
    size_t n = 0;
    mt_points p;
    int rc;
    while ((rc = mt_scan_next(s, &p)) == MT_OK) {
        for (size_t i = 0; i < p.n; i++) {
            cr_assert_lt(n, cap);
            if (n) cr_assert_gt(p.ts[i], ts[n - 1], "time order");
            ts[n] = p.ts[i];
            v[n] = p.vals[i].f;
            n++;
        }
    }
    cr_assert_eq(rc, MT_ENOTFOUND, "scan ended with %s", mt_strerror(rc));
    mt_scan_close(s);
    return n;
}

/* A batch fitted before it waits holds less and loses nothing: points, keys, strings, lines. */
Test(engine, a_fitted_batch_holds_less_and_keeps_every_point)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    cr_assert_not_null(b);
    char k[512];
    enum { N = 1400 }; /* a read's worth: room for 2,048 before the fit */
    for (int i = 0; i < N; i++) {
        mt_batch_line(b, (uint64_t)i + 1);
        if (i % 7 == 0) {
            char str[16];
            int n = snprintf(str, sizeof str, "s%d", i);
            size_t kl = key(k, "h1", "note");
            cr_assert_eq(
                mt_batch_add(b, k, kl, T0 + i, MT_VT_STRING, (mt_val){.u = (uint64_t)n}, str),
                MT_OK);
        } else {
            add_f(b, i % 2 ? "h1" : "h2", "usage", T0 + i, i / 4.0);
        }
    }
    size_t before = mt_batch_bytes(b);
    mt_batch_fit(b);
    cr_assert_lt(mt_batch_bytes(b), before - 500 * 24, "%zu -> %zu", before, mt_batch_bytes(b));
    cr_assert_eq(mt_batch_len(b), N);
    for (size_t i = 0; i < N; i++) {
        mt_batch_pt pt;
        cr_assert_eq(mt_batch_point(b, i, &pt), MT_OK);
        cr_assert_eq(pt.ts, T0 + (int64_t)i);
        cr_assert_eq(pt.line, i + 1);
        cr_assert_eq(pt.type, i % 7 == 0 ? MT_VT_STRING : MT_VT_FLOAT);
    }
    add_f(b, "h3", "usage", T0 + N, 1.5); /* still usable: it grows again */
    write_ok(e, b, N + 1);
    int64_t ts[N];
    double v[N];
    cr_assert_eq(read_all(e, "h2", "usage", T0, T0 + N, ts, v, N), N / 2 - N / 14);
    cr_assert_eq(read_all(e, "h3", "usage", T0, T0 + N + 1, ts, v, N), 1);
    cr_assert_eq(v[0], 1.5);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* A batch point packs its id flag, type and line in one word: none spills into another. */
Test(engine, a_batch_point_keeps_its_id_type_and_line_at_their_limits)
{
    mt_batch *b = mt_batch_new();
    cr_assert_not_null(b);
    mt_batch_line(b, UINT64_MAX); /* named as the last line a point can carry */
    cr_assert_eq(mt_batch_add_id(b, UINT32_MAX, T0, MT_VT_BOOL, (mt_val){.u = 1}, NULL), MT_OK);
    mt_batch_line(b, (1u << 28) - 1);
    char k[512];
    size_t kl = key(k, "h1", "s");
    cr_assert_eq(mt_batch_add(b, k, kl, T0 + 1, MT_VT_STRING, (mt_val){.u = 2}, "ab"), MT_OK);
    mt_batch_line(b, 0);
    cr_assert_eq(mt_batch_add_id(b, 1, T0 + 2, MT_VT_FLOAT, (mt_val){.f = 2}, NULL), MT_OK);
    mt_batch_pt pt;
    cr_assert_eq(mt_batch_point(b, 0, &pt), MT_OK);
    cr_assert(pt.id == UINT32_MAX && pt.type == MT_VT_BOOL && pt.line == (1u << 28) - 1 &&
              pt.key == NULL);
    cr_assert_eq(mt_batch_point(b, 1, &pt), MT_OK);
    cr_assert(pt.id == 0 && pt.type == MT_VT_STRING && pt.line == (1u << 28) - 1);
    cr_assert(pt.klen == kl && memcmp(pt.key, k, kl) == 0);
    cr_assert_eq(mt_batch_point(b, 2, &pt), MT_OK);
    cr_assert(pt.id == 1 && pt.type == MT_VT_FLOAT && pt.line == 0 && pt.ts == T0 + 2);
    mt_batch_free(b);
}

Test(engine, points_round_trip_in_time_order_and_survive_reopen)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    /* three hours, written out of order */
    for (int i = 3 * 360 - 1; i >= 0; i--) add_f(b, "a", "usage", T0 + i * 10 * S, i * 0.5);
    write_ok(e, b, 1080);
    int64_t ts[2000];
    double v[2000];
    cr_assert_eq(read_all(e, "a", "usage", T0, T0 + 3 * H, ts, v, 2000), 1080);
    cr_expect_eq(ts[0], T0);
    cr_expect_eq(v[1079], 1079 * 0.5);
    mt_engine_close(e);
    e = open_engine();
    cr_assert_eq(read_all(e, "a", "usage", T0, T0 + 3 * H, ts, v, 2000), 1080);
    cr_expect_eq(v[500], 250.0);
    /* a sub-range */
    size_t n = read_all(e, "a", "usage", T0 + 100 * S, T0 + 200 * S, ts, v, 2000);
    cr_expect_eq(n, 10);
    cr_expect_eq(ts[0], T0 + 100 * S);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, last_write_wins_in_head_and_across_a_seal)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0 + 10 * S, 1);
    add_f(b, "a", "u", T0 + 10 * S, 2); /* same batch */
    write_ok(e, b, 2);
    add_f(b, "a", "u", T0 + 10 * S, 3); /* later batch */
    add_f(b, "a", "u", T0 + 20 * S, 4);
    write_ok(e, b, 2);
    int64_t ts[10];
    double v[10];
    cr_assert_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 10), 2);
    cr_expect_eq(v[0], 3);
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK);
    cr_expect_eq(hours, 1);
    add_f(b, "a", "u", T0 + 10 * S, 5); /* overwrite a sealed point */
    write_ok(e, b, 1);
    cr_assert_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 10), 2);
    cr_expect_eq(v[0], 5, "head beats the sealed chunk");
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK);
    cr_assert_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 10), 2);
    cr_expect_eq(v[0], 5, "merged into the new generation");
    cr_expect_eq(v[1], 4);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 0);
    cr_expect_eq(st.sealed_hours, 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, type_conflicts_are_rejected_and_the_rest_is_kept)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    char k[512];
    size_t kl = key(k, "a", "u");
    add_f(b, "a", "u", T0, 1.5);
    cr_assert_eq(mt_batch_add(b, k, kl, T0 + S, MT_VT_INT, (mt_val){.i = 7}, NULL), MT_OK);
    add_f(b, "b", "u", T0, 2.5);
    cr_assert_eq(mt_batch_add(b, "garbage", 7, T0, MT_VT_FLOAT, (mt_val){.f = 1}, NULL), MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 2);
    cr_expect_eq(r.rejected, 2);
    cr_expect_eq(r.first_rejected, 1);
    cr_expect_eq(r.first_reason, MT_ECONFLICT);
    uint32_t id;
    mt_vtype t;
    cr_expect_eq(mt_engine_series_lookup(e, "garbage", 7, &id, &t), MT_ENOTFOUND);
    int64_t ts[4];
    double v[4];
    cr_expect_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 4), 1);
    cr_expect_eq(read_all(e, "b", "u", T0, T0 + H, ts, v, 4), 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, every_type_round_trips_through_seal_and_reopen)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    const char *fields[] = {"f", "i", "u", "b", "s"};
    char k[5][512];
    size_t kl[5];
    for (int t = 0; t < 5; t++) kl[t] = key(k[t], "x", fields[t]);
    for (int i = 0; i < 500; i++) {
        int64_t ts = T0 + i * 15 * S;
        mt_batch_add(b, k[0], kl[0], ts, MT_VT_FLOAT, (mt_val){.f = -0.0 + i / 3.0}, NULL);
        mt_batch_add(b, k[1], kl[1], ts, MT_VT_INT, (mt_val){.i = INT64_MIN + i}, NULL);
        mt_batch_add(b, k[2], kl[2], ts, MT_VT_UINT, (mt_val){.u = UINT64_MAX - i}, NULL);
        mt_batch_add(b, k[3], kl[3], ts, MT_VT_BOOL, (mt_val){.u = i % 3 == 0}, NULL);
        char str[32];
        int sl = snprintf(str, sizeof str, "value %d", i);
        mt_batch_add(b, k[4], kl[4], ts, MT_VT_STRING, (mt_val){.u = (uint64_t)(i % 7 ? sl : 0)},
                     str);
    }
    write_ok(e, b, 2500);
    for (int round = 0; round < 3; round++) {
        if (round == 1) cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
        if (round == 2) {
            mt_engine_close(e);
            e = open_engine();
        }
        for (int t = 0; t < 5; t++) {
            uint32_t id;
            mt_vtype type;
            cr_assert_eq(mt_engine_series_lookup(e, k[t], kl[t], &id, &type), MT_OK);
            cr_assert_eq(type, (mt_vtype)t);
            mt_scan *s;
            cr_assert_eq(mt_scan_open(e, id, T0, T0 + 10 * H, &s), MT_OK);
            mt_points p;
            int i = 0;
            while (mt_scan_next(s, &p) == MT_OK) {
                for (size_t j = 0; j < p.n; j++, i++) {
                    cr_assert_eq(p.ts[j], T0 + i * 15 * S);
                    switch (t) {
                    case 0: cr_assert_eq(p.vals[j].f, -0.0 + i / 3.0); break;
                    case 1: cr_assert_eq(p.vals[j].i, INT64_MIN + i); break;
                    case 2: cr_assert_eq(p.vals[j].u, UINT64_MAX - i); break;
                    case 3: cr_assert_eq(p.vals[j].u, (uint64_t)(i % 3 == 0)); break;
                    case 4: {
                        char str[32];
                        int sl = snprintf(str, sizeof str, "value %d", i);
                        size_t len = MT_VAL_STR_LEN(p.vals[j]);
                        cr_assert_eq(len, (size_t)(i % 7 ? sl : 0));
                        cr_assert(memcmp(p.strs + MT_VAL_STR_OFF(p.vals[j]), str, len) == 0);
                        break;
                    }
                    }
                }
            }
            cr_assert_eq(i, 500, "type %d round %d", t, round);
            mt_scan_close(s);
        }
    }
    mt_batch_free(b);
    mt_engine_close(e);
}

/*
 * mt_scan_next_f64 against mt_scan_next converted here, block by block: floor(ts / 10^e) and
 * the values as C converts them. n points compared.
 */
static size_t expect_f64_scan(mt_engine *e, uint32_t id, mt_vtype t, int64_t from, int64_t to,
                              int unit_e)
{
    mt_scan *a, *f;
    cr_assert_eq(mt_scan_open(e, id, from, to, &a), MT_OK);
    cr_assert_eq(mt_scan_open(e, id, from, to, &f), MT_OK);
    const int64_t u = (int64_t)mt_pow10[unit_e];
    mt_points pa, pf;
    bool rep;
    size_t n = 0, ia = 0, nf = 0;
    int ra = mt_scan_next(a, &pa), rf;
    /* the blocks may be cut differently: walk both as one sequence of points */
    while ((rf = mt_scan_next_f64(f, unit_e, &pf, &rep)) == MT_OK) {
        cr_assert_eq(pf.type, MT_VT_FLOAT);
        bool want_rep = false;
        for (size_t j = 0; j < pf.n; j++, n++, nf++) {
            while (ra == MT_OK && ia == pa.n) ra = mt_scan_next(a, &pa), ia = 0;
            cr_assert_eq(ra, MT_OK, "the f64 scan has more points (%zu)", n);
            int64_t ts = pa.ts[ia], q = ts / u - (ts % u < 0);
            want_rep |= j && pf.ts[j - 1] == q;
            cr_assert_eq(pf.ts[j], q, "point %zu: %lld, want %lld", n, (long long)pf.ts[j],
                         (long long)q);
            mt_val x = pa.vals[ia++];
            double v = t == MT_VT_INT ? (double)x.i : t == MT_VT_UINT ? (double)x.u : x.f;
            cr_assert_eq(pf.vals[j].f, v, "point %zu", n);
        }
        /* repeats may be said of a chunk the range cut; never missed */
        cr_assert(rep || !want_rep, "repeats in a block not said: unit 10^%d, from %lld to %lld",
                  unit_e, (long long)from, (long long)to);
    }
    cr_assert_eq(rf, MT_ENOTFOUND, "f64 scan ended with %s", mt_strerror(rf));
    while (ra == MT_OK && ia == pa.n) ra = mt_scan_next(a, &pa), ia = 0;
    cr_assert_eq(ra, MT_ENOTFOUND, "the f64 scan has fewer points (%zu)", n);
    mt_scan_close(a);
    mt_scan_close(f);
    return nf;
}

Test(engine, the_f64_scan_equals_the_points_converted_on_every_path)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    char ki[512], kf[512];
    size_t kil = key(ki, "x", "i"), kfl = key(kf, "x", "f");
    /* integers at ns precision (two in one ms), floats every 10 s: three hours */
    for (int i = 0; i < 3 * 514; i++) {
        int64_t ts = T0 + i * 7 * S + (i % 3) * 400000;
        mt_batch_add(b, ki, kil, ts, MT_VT_INT, (mt_val){.i = (int64_t)i * 1000003 - 77}, NULL);
    }
    mt_batch_add(b, ki, kil, T0 + 5 * S + 100, MT_VT_INT, (mt_val){.i = -5}, NULL);
    mt_batch_add(b, ki, kil, T0 + 5 * S + 200, MT_VT_INT, (mt_val){.i = -6}, NULL);
    for (int i = 0; i < 3 * 360; i++)
        mt_batch_add(b, kf, kfl, T0 + i * 10 * S, MT_VT_FLOAT, (mt_val){.f = i / 4.0}, NULL);
    write_ok(e, b, 3 * 514 + 2 + 3 * 360);
    uint32_t idi, idf;
    mt_vtype t;
    cr_assert_eq(mt_engine_series_lookup(e, ki, kil, &idi, &t), MT_OK);
    cr_assert_eq(mt_engine_series_lookup(e, kf, kfl, &idf, &t), MT_OK);
    const int64_t ranges[][2] = {
        {T0, T0 + 3 * H},                         /* whole hours */
        {T0 + 600 * S + 1000000, T0 + 2 * H + 5}, /* from whole ms, to not: converted */
        {T0 + 12345, T0 + H},                     /* from not whole */
        {T0 + 601 * S, T0 + 6001 * S},            /* whole ms, cutting chunks */
    };
    for (int round = 0; round < 3; round++) {
        if (round == 1) {
            /* hours 0 and 1 sealed, 2 in the head; then late points for hour 0 (merged) */
            cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
            for (int i = 0; i < 40; i++) {
                add_f(b, "x", "f", T0 + i * 10 * S + 5 * S, -i);
                mt_batch_add(b, ki, kil, T0 + i * 13 * S + 1, MT_VT_INT, (mt_val){.i = i}, NULL);
            }
            for (int i = 0; i < 20; i++) add_f(b, "x", "f", T0 + 3 * H + i * 10 * S, i);
            write_ok(e, b, 100);
        }
        if (round == 2) {
            mt_engine_close(e);
            e = open_engine();
        }
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
            for (int ue = 0; ue <= MT_F64_MAX_UNIT_E; ue += 3) {
                size_t ni = expect_f64_scan(e, idi, MT_VT_INT, ranges[r][0], ranges[r][1], ue);
                size_t nf = expect_f64_scan(e, idf, MT_VT_FLOAT, ranges[r][0], ranges[r][1], ue);
                cr_assert_gt(ni, 0, "range %zu", r);
                cr_assert_gt(nf, 0, "range %zu", r);
            }
    }
    mt_scan *s;
    mt_points p;
    bool rep;
    cr_assert_eq(mt_scan_open(e, idf, T0, T0 + H, &s), MT_OK);
    cr_assert_eq(mt_scan_next_f64(s, MT_F64_MAX_UNIT_E + 1, &p, &rep), MT_EINVAL);
    mt_scan_close(s);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* The head keeps points encoded (mt_head.c, "Buckets"): every bit pattern, stamp and arrival
   order must come back as written, before a seal, after it and after a reopen. */
#define NBITS 3000

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

typedef struct wpoint {
    int64_t ts;
    uint64_t bits;
    int order;
} wpoint;

static int wpoint_cmp(const void *a, const void *b)
{
    const wpoint *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->order - y->order;
}

Test(engine, the_head_keeps_every_float_bit_pattern_and_the_last_write_of_a_stamp)
{
    static wpoint w[NBITS];
    uint64_t x = 88172645463325252ULL;
    const double special[] = {-0.0,
                              0.0,
                              1.5,
                              2.25,
                              3.125,
                              1e300,
                              -1e-310,
                              0.1 + 0.2,
                              1e15,
                              123456.789,
                              __builtin_inf(),
                              -__builtin_inf(),
                              9007199254740993.0};
    for (int i = 0; i < NBITS; i++) {
        /* three hours, out of order, many stamps written twice or more */
        w[i].ts = T0 + (int64_t)(xorshift(&x) % (3 * 360)) * 10 * S + (i % 5 == 0 ? 1 : 0);
        w[i].order = i;
        uint64_t r = xorshift(&x);
        double d;
        switch (i % 4) {
        case 0: w[i].bits = r; break; /* any pattern: NaN payloads, subnormals */
        case 1: d = (double)(int64_t)(r % 100000) / 100.0, memcpy(&w[i].bits, &d, 8); break;
        case 2: d = (double)(int64_t)(r % 1000) / 8.0 - 50, memcpy(&w[i].bits, &d, 8); break;
        default: d = special[r % (sizeof special / sizeof *special)]; memcpy(&w[i].bits, &d, 8);
        }
    }
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    char k[512];
    size_t kl = key(k, "bits", "f");
    for (int i = 0; i < NBITS; i++) {
        mt_val v = {.u = w[i].bits};
        cr_assert_eq(mt_batch_add(b, k, kl, w[i].ts, MT_VT_FLOAT, v, NULL), MT_OK);
        if (i % 500 == 499) write_ok(e, b, 500);
    }
    qsort(w, NBITS, sizeof *w, wpoint_cmp);
    size_t want = 0;
    for (int i = 0; i < NBITS; i++) {
        if (want && w[want - 1].ts == w[i].ts) want--;
        w[want++] = w[i];
    }
    uint32_t id;
    mt_vtype type;
    cr_assert_eq(mt_engine_series_lookup(e, k, kl, &id, &type), MT_OK);
    for (int round = 0; round < 3; round++) {
        if (round == 1) cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
        if (round == 2) {
            mt_engine_close(e);
            e = open_engine();
        }
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, T0 - H, T0 + 4 * H, &s), MT_OK);
        mt_points p;
        size_t n = 0;
        while (mt_scan_next(s, &p) == MT_OK)
            for (size_t j = 0; j < p.n; j++, n++) {
                cr_assert_lt(n, want);
                cr_assert_eq(p.ts[j], w[n].ts, "round %d point %zu", round, n);
                cr_assert_eq(p.vals[j].u, w[n].bits, "round %d point %zu: %016llx, wrote %016llx",
                             round, n, (unsigned long long)p.vals[j].u,
                             (unsigned long long)w[n].bits);
            }
        cr_assert_eq(n, want, "round %d", round);
        mt_scan_close(s);
    }
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, the_head_holds_regular_points_in_a_few_bytes_each)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    uint64_t x = 7;
    for (int t = 0; t < 360; t++) { /* an hour of 100 series every 10 s, values with 2 decimals */
        for (int h = 0; h < 100; h++) {
            char host[16];
            snprintf(host, sizeof host, "h%d", h);
            add_f(b, host, "usage", T0 + t * 10 * S, (double)(int64_t)(xorshift(&x) % 10000) / 100);
        }
        write_ok(e, b, 100);
    }
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_assert_eq(st.head_points, 36000);
    /* plain arrays took 16 bytes a point, and up to twice that with their slack */
    cr_assert_lt((double)st.head_bytes / (double)st.head_points, 6.0, "%llu bytes for %llu points",
                 (unsigned long long)st.head_bytes, (unsigned long long)st.head_points);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, hours_seal_by_event_time_after_the_grace)
{
    mt_engine *e = open_engine();
    fake_now = T0; /* the wall clock says: nothing is old */
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0 + 10 * S, 1);
    add_f(b, "a", "u", T0 + H + 10 * S, 2);
    write_ok(e, b, 2);
    size_t hours = 9;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_expect_eq(hours, 0, "hour 0 is within its grace");
    add_f(b, "a", "u", T0 + H + 5 * 60 * S, 3); /* newest point: end of hour 0 + 5 min grace */
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_expect_eq(hours, 1);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.sealed_hours, 1);
    cr_expect_eq(st.head_points, 2);
    /* a late point for the sealed hour goes to the head, then into a new generation */
    add_f(b, "a", "u", T0 + 20 * S, 9);
    write_ok(e, b, 1);
    fake_now = T0 + 3 * H;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_expect_eq(hours, 2, "hour 0 again (late point) and hour 1 (wall clock, quiet)");
    int64_t ts[8];
    double v[8];
    cr_assert_eq(read_all(e, "a", "u", T0, T0 + 2 * H, ts, v, 8), 4);
    cr_expect_eq(v[1], 9);
    mt_batch_free(b);
    mt_engine_close(e);
}

static int count_files(const char *root, const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "find %s/blocks -name '*%s' | wc -l", root, suffix);
    FILE *f = popen(cmd, "r");
    int n = 0;
    if (fscanf(f, "%d", &n) != 1) n = -1;
    pclose(f);
    return n;
}

static int count_entry(void *ud, const mt_outbox_entry *en)
{
    (void)en;
    ++*(size_t *)ud;
    return 0;
}

/* A 32 KiB map fills at once: every commit path grows it and retries (one commit function),
   none fails with MT_EFULL or loses what it was committing */
Test(engine, a_full_map_grows_and_every_commit_path_retries)
{
    mt_engine_options o = test_options();
    o.outbox = true;
    o.map_size = 32 << 10;
    mt_engine *e = NULL;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    fake_now = T0 + 100 * H;
    mt_batch *b = mt_batch_new();
    char host[16];
    for (int k = 0; k < 40; k++) { /* group commits: new series and head records */
        snprintf(host, sizeof host, "h%d", k);
        for (int i = 0; i < 200; i++) add_f(b, host, "u", T0 + (k % 8) * H + i * S, k * 1000 + i);
        write_ok(e, b, 200);
    }
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK, "seal: hour files, rollups, outbox");
    cr_expect_eq(hours, 8);
    char val[400];
    memset(val, 'x', sizeof val);
    for (int k = 0; k < 100; k++) { /* state records, queued for the sink */
        char key[32];
        snprintf(key, sizeof key, "alert/%03d", k);
        cr_assert_eq(mt_engine_state_put(e, key, strlen(key), val, sizeof val, MT_OUTBOX_ALERT),
                     MT_OK, "state put %d", k);
    }
    mt_state_op ops[50];
    char keys[50][32];
    for (int k = 0; k < 50; k++) {
        snprintf(keys[k], sizeof keys[k], "quar/%03d", k);
        ops[k] = (mt_state_op){keys[k], strlen(keys[k]), val, sizeof val, 0};
    }
    size_t acked = 0;
    cr_assert_eq(mt_engine_state_apply(e, ops, 50, 50, &acked), MT_OK);
    cr_expect_eq(acked, 50);
    size_t removed = 0;
    cr_assert_eq(mt_engine_outbox_ack(e, 100, &removed), MT_OK);
    cr_expect_eq(removed, 50);
    mt_retention pol = {.keep_ns = 96 * H, .rollup_keep_ns = 96 * H}; /* the first 4 hours go */
    mt_retention_result rr;
    cr_assert_eq(mt_engine_retention(e, &pol, fake_now, false, &rr), MT_OK);
    cr_expect_eq(rr.hours_dropped, 4);
    /* everything committed reads back after a reopen */
    mt_engine_close(e);
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    int64_t ts[256];
    double v[256];
    for (int k = 0; k < 40; k++) {
        snprintf(host, sizeof host, "h%d", k);
        size_t n = read_all(e, host, "u", T0, T0 + 100 * H, ts, v, 256);
        cr_expect_eq(n, k % 8 < 4 ? 0 : 200, "%s", host);
        for (size_t i = 0; i < n; i++) cr_expect_eq(v[i], k * 1000 + (int)i);
    }
    size_t depth = 0;
    cr_assert_eq(mt_engine_outbox_peek(e, 1000, count_entry, &depth), MT_OK);
    cr_expect_eq(depth, 8 + 100 - 100, "8 hours + 100 alerts queued, 100 acknowledged");
    void *got = NULL;
    size_t gl = 0;
    cr_expect_eq(mt_engine_state_get(e, "quar/049", 8, &got, &gl), MT_OK);
    cr_expect_eq(gl, sizeof val);
    free(got);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Opening reads no hour file's footer: each is parsed when a read first needs it, so opening
   and memory follow what is read, not what is kept */
Test(engine, opening_parses_no_footer_and_a_scan_parses_only_its_hours)
{
    mt_engine *e = open_engine();
    fake_now = T0 + 40 * H;
    mt_batch *b = mt_batch_new();
    for (int h = 0; h < 30; h++)
        for (int i = 0; i < 6; i++) add_f(b, "a", "u", T0 + h * H + i * 600 * S, h * 10 + i);
    write_ok(e, b, 180);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    e = open_engine();
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.sealed_hours, 30);
    cr_expect_eq(st.footers_loaded, 0, "open parsed %llu footers",
                 (unsigned long long)st.footers_loaded);
    int64_t ts[192];
    double v[192];
    cr_assert_eq(read_all(e, "a", "u", T0 + 7 * H, T0 + 9 * H, ts, v, 16), 12);
    for (int i = 0; i < 12; i++) cr_expect_eq(v[i], (7 + i / 6) * 10 + i % 6);
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.footers_loaded, 2, "hours 7 and 8 only: %llu",
                 (unsigned long long)st.footers_loaded);
    mt_engine_close(e);
    /* a cache of 1 byte: the writer drops every footer between requests; reads parse again */
    mt_engine_options o = test_options();
    o.footer_cache = 1;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(read_all(e, "a", "u", T0, T0 + 30 * H, ts, v, 16 * 12), 180);
        mt_engine_stats_get(e, &st);
        cr_expect_eq(st.footers_loaded, 30, "round %d", round);
        cr_assert_eq(mt_engine_seal(e, false, NULL), MT_OK); /* a turn of the writer */
        mt_engine_stats_get(e, &st);
        cr_expect_eq(st.footers_loaded, 0, "round %d: trimmed to the cache", round);
        cr_expect_eq(st.footer_bytes, 0);
    }
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Late points for a sealed hour wait in the head, read beside its file, and are merged once when
   the hour goes quiet or they are as many as the file holds, not once per batch */
Test(engine, late_points_wait_beside_their_hour_file_and_are_merged_once)
{
    mt_engine *e = open_engine();
    fake_now = T0 + 2 * H;
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 100; i++) add_f(b, "a", "u", T0 + i * 10 * S, i);
    write_ok(e, b, 100);
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK);
    cr_assert_eq(hours, 1);
    add_f(b, "a", "u", T0 + 2 * H, -1); /* the watermark is an hour past hour 0 */
    write_ok(e, b, 1);
    for (int k = 0; k < 50; k++) { /* 50 late batches, a second apart: never quiet */
        fake_now += S;
        add_f(b, "a", "u", T0 + (k % 2 ? k * 10 * S : 1000 * S + k * S), 1000 + k);
        write_ok(e, b, 1);
        cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
        cr_assert_eq(hours, 0, "batch %d: the hour was rewritten for one late point", k);
    }
    cr_expect_eq(count_files(dir, ".blk"), 1, "one generation of hour 0");
    int64_t ts[300];
    double v[300];
    for (int pass = 0; pass < 2; pass++) { /* beside the file, then merged into it */
        size_t n = read_all(e, "a", "u", T0, T0 + H, ts, v, 300);
        cr_assert_eq(n, 125, "100 sealed + 25 new (25 replace sealed ones): pass %d", pass);
        for (size_t i = 0; i < n; i++) {
            int64_t at = (ts[i] - T0) / S;
            int k = at < 1000 ? (int)(at / 10) : (int)(at - 1000);
            bool late = at >= 1000 || (k % 2 && k < 50);
            cr_expect_eq(v[i], late ? 1000 + k : k, "pass %d, second %lld", pass, (long long)at);
        }
        if (pass) break;
        fake_now += 5 * 60 * S; /* the grace, quiet */
        cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
        cr_assert_eq(hours, 1, "hour 0 merged once, hour 2 still open");
    }
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 1);
    /* as many late points as the file holds (at least 65,536): merged without waiting */
    for (int i = 0; i < 70000; i++) add_f(b, "a", "u", T0 + 1500 * S + i * 1000, i);
    write_ok(e, b, 70000);
    fake_now += S;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_expect_eq(hours, 1);
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 1, "the late points are in the file");
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Batches [from, to) of one point of series c at hour 1 + 6 min: the watermark passes hour 0
   (end + grace), not hour 1; 16 of them after hour 0's last point: no stream writes it still
   (settle_records). */
static void watermark(mt_engine *e, mt_batch *b, int from, int to)
{
    for (int k = from; k < to; k++) {
        add_f(b, "c", "u", T0 + H + (360 + k) * S, 1);
        write_ok(e, b, 1);
    }
}

/* Hour 0 (series a) and hour 1 (series b) in the same batches, so every log record holds both. */
static void two_hours_mixed(mt_engine *e, mt_batch *b)
{
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 10; i++) {
            add_f(b, "a", "u", T0 + (k * 10 + i) * S, k * 10 + i);
            add_f(b, "b", "u", T0 + H + (k * 10 + i) * S, -(k * 10 + i));
        }
        write_ok(e, b, 20);
    }
    watermark(e, b, 0, 16);
}

static void expect_series(mt_engine *e, const char *host, int64_t from, size_t want, double sign)
{
    int64_t ts[300];
    double v[300];
    size_t n = read_all(e, host, "u", from, from + H, ts, v, 300); /* asserts strict order */
    cr_expect_eq(n, want, "%s: %zu points, want %zu", host, n, want);
    for (size_t i = 0; i < n; i++) cr_expect_eq(v[i], sign * (double)((ts[i] - from) / S));
}

/* Sealing one hour deletes the log's records before the oldest one an unsealed point needs and
   never writes the waiting points again; a reopen replays what is kept and skips the points
   their hour's file holds (no point twice, none lost). */
Test(engine, a_seal_trims_the_head_log_and_a_reopen_skips_what_files_hold)
{
    settle = 16; /* the default */
    mt_engine *e = open_engine();
    fake_now = T0 + 3 * H;
    mt_batch *b = mt_batch_new();
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 10; i++) {
            add_f(b, "a", "u", T0 + (k * 10 + i) * S, k * 10 + i);
            add_f(b, "b", "u", T0 + H + (k * 10 + i) * S, -(k * 10 + i));
        }
        write_ok(e, b, 20);
    }
    size_t hours = 0;
    watermark(e, b, 0, 14); /* 14 records since hour 0's last point: still being written */
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 0, "the watermark passed hour 0 while a stream was still writing it");
    watermark(e, b, 14, 16);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.log_points, 416);
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 1, "hour 0 only, once 16 records went by without it");
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.log_rewrites, 0, "the waiting points were not written again");
    cr_expect_eq(st.log_points, 416, "every record holds a point of hour 1: all kept");
    cr_expect_eq(st.head_points, 216);
    for (int round = 0; round < 2; round++) { /* as sealed, then replayed by an open */
        expect_series(e, "a", T0, 200, 1);
        expect_series(e, "b", T0 + H, 200, -1);
        mt_engine_stats_get(e, &st);
        cr_expect_eq(st.head_points, 216, "round %d: hour 0's points not replayed", round);
        mt_engine_close(e);
        e = open_engine();
    }
    cr_assert_eq(mt_engine_seal(e, true, &hours), MT_OK);
    cr_assert_eq(hours, 1);
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.log_points, 0, "nothing waits: every record deleted");
    cr_expect_eq(st.log_rewrites, 0);
    mt_engine_close(e);
    e = open_engine();
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 0);
    cr_expect_eq(st.log_points, 0);
    expect_series(e, "a", T0, 200, 1);
    expect_series(e, "b", T0 + H, 200, -1);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Settling is counted in points as well as records, whichever comes first: with full group
   commits (262,144 points each) 16 records would keep hours of several replaying streams in
   memory for millions of points. */
Test(engine, an_hour_passed_by_the_watermark_settles_after_settle_points_points)
{
    settle = 16;
    mt_engine_options o = test_options();
    o.settle_points = 50;
    mt_engine *e = NULL;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    fake_now = T0 + 3 * H; /* neither hour is quiet by the wall clock */
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 10; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 10);
    for (int i = 0; i < 40; i++) add_f(b, "c", "u", T0 + H + (360 + i) * S, 1);
    write_ok(e, b, 40); /* the watermark passed hour 0's end and the grace */
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 0, "40 points since hour 0's last one: a stream may still write it");
    for (int i = 40; i < 50; i++) add_f(b, "c", "u", T0 + H + (360 + i) * S, 1);
    write_ok(e, b, 10);
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 1, "50 points of hour 1 in 2 records after hour 0's last: settled");
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 50, "hour 1 stays");
    expect_series(e, "a", T0, 10, 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* One point held in the head pins the log's oldest record: once what is kept outgrows twice what
   is needed (plus 1 Mi points), the seal writes the log again, once. */
Test(engine, a_log_pinned_by_an_old_record_is_written_again_once)
{
    settle = 16; /* the default */
    mt_engine *e = open_engine();
    fake_now = T0 + 3 * H;
    mt_batch *b = mt_batch_new();
    add_f(b, "b", "u", T0 + H, 0); /* hour 1: the first record */
    write_ok(e, b, 1);
    for (int k = 0; k < 11; k++) { /* 1.1 Mi points of hour 0 */
        for (int i = 0; i < 100000; i++) add_f(b, "a", "u", T0 + (k * 100000 + i) * 1000, i);
        write_ok(e, b, 100000);
    }
    watermark(e, b, 0, 16);
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 1);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.log_rewrites, 1);
    cr_expect_eq(st.log_points, 17, "only the 17 waiting points");
    mt_engine_close(e);
    e = open_engine();
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 17);
    cr_expect_eq(st.log_points, 17);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Retention drops a sealed hour while the log still has records with its points (a later hour
   pins them): they must not come back at the next open, with no file left to say they are
   sealed. */
Test(engine, a_dropped_hour_does_not_come_back_from_the_head_log)
{
    settle = 16; /* the default */
    mt_engine *e = open_engine();
    fake_now = T0 + 3 * H;
    mt_batch *b = mt_batch_new();
    two_hours_mixed(e, b);
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 1);
    mt_retention p = {.keep_ns = 3 * H / 2}; /* hour 0 ended 2 h ago: it goes; hour 1 stays */
    mt_retention_result res;
    cr_assert_eq(mt_engine_retention(e, &p, fake_now, false, &res), MT_OK);
    cr_expect_eq(res.hours_dropped, 1);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.log_points, 216, "the log was written again with the waiting points only");
    mt_engine_close(e);
    e = open_engine();
    expect_series(e, "a", T0, 0, 1);
    expect_series(e, "b", T0 + H, 200, -1);
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 216);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* Retention rewrites a sealed hour without its expired series while the log still has records
   with the hour's points (a later hour pins them): the new generation keeps the hour's
   sealed_seq (read from its hours record, not kept in memory), so a reopen skips those points:
   the kept series is not read twice from the head, the expired one does not come back. */
Test(engine, a_rewritten_hour_keeps_its_sealed_seq_for_the_replay)
{
    settle = 16; /* the default */
    mt_engine *e = open_engine();
    fake_now = T0 + 3 * H;
    mt_batch *b = mt_batch_new();
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{"x", 1}};
    char mem[512];
    size_t ml = mt_series_key(mem, sizeof mem, (mt_name){"mem", 3}, tk, tv, 1, (mt_name){"u", 1});
    cr_assert_gt(ml, 0);
    for (int k = 0; k < 20; k++) {
        for (int i = 0; i < 10; i++) {
            int64_t ts = T0 + (k * 10 + i) * S;
            add_f(b, "a", "u", ts, k * 10 + i);
            cr_assert_eq(mt_batch_add(b, mem, ml, ts, MT_VT_FLOAT, (mt_val){.f = 1}, NULL), MT_OK);
            add_f(b, "b", "u", T0 + H + (k * 10 + i) * S, -(k * 10 + i));
        }
        write_ok(e, b, 30);
    }
    watermark(e, b, 0, 16);
    size_t hours = 0;
    cr_assert_eq(mt_engine_seal(e, false, &hours), MT_OK);
    cr_assert_eq(hours, 1);
    mt_retention_rule rule = {.measurement = "mem", .keep_ns = 3 * H / 2};
    mt_retention p = {.rules = &rule, .nrules = 1}; /* hour 0 loses mem only */
    mt_retention_result res;
    cr_assert_eq(mt_engine_retention(e, &p, fake_now, false, &res), MT_OK);
    cr_expect_eq(res.hours_rewritten, 1);
    cr_expect_eq(res.hours_dropped, 0);
    cr_expect_eq(res.points_dropped, 200);
    mt_engine_close(e);
    e = open_engine();
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.head_points, 216, "hour 1 and the watermark only: %llu",
                 (unsigned long long)st.head_points);
    cr_expect_eq(st.late_points, 0, "no point of hour 0 came back to the head");
    expect_series(e, "a", T0, 200, 1);
    expect_series(e, "b", T0 + H, 200, -1);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, a_directory_opens_once)
{
    mt_engine *e = open_engine();
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    mt_engine *again = NULL;
    cr_expect_eq(mt_engine_open(&o, &again), -EBUSY);
    cr_expect_null(again);
    mt_engine_close(e);
    e = open_engine();
    mt_engine_close(e);
}

/* A writer cut before its first commit leaves index.mdb empty: a reader sees no data there
   (and no lost index while no hour file exists), not an error of LMDB's. */
Test(engine, a_reader_takes_an_empty_index_for_none)
{
    char path[300];
    snprintf(path, sizeof path, "%s/index.mdb", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.read_only = true;
    mt_engine *ro = NULL;
    cr_expect_eq(mt_engine_open(&o, &ro), MT_ENOTFOUND);
    mt_engine *e = open_engine(); /* the writer starts on the empty file */
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0, 1);
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_batch_free(b);
    mt_engine_close(e);
    cr_assert_eq(truncate(path, 0), 0);
    cr_expect_eq(mt_engine_open(&o, &ro), MT_ENOINDEX, "hour files without their index");
    cr_expect_null(ro);
}

/* A reader maps the hour files its snapshot names on first use: the writer replaces the hour
   (a late point merged) and keeps the old generation until that snapshot is closed. */
Test(engine, a_replaced_generation_stays_while_a_reader_snapshot_names_it)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 10; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 10);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.read_only = true;
    mt_engine *ro = NULL;
    cr_assert_eq(mt_engine_open(&o, &ro), MT_OK);
    add_f(b, "a", "u", T0 + 5 * S, 50); /* replaces a sealed point */
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    cr_expect_eq(count_files(dir, ".blk"), 2, "generation 1 kept for the reader's snapshot");
    int64_t ts[16];
    double v[16];
    cr_assert_eq(read_all(ro, "a", "u", T0, T0 + H, ts, v, 16), 10, "mapped after the merge");
    cr_expect_eq(v[5], 5, "the snapshot's generation");
    cr_assert_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 16), 10);
    cr_expect_eq(v[5], 50, "the writer's");
    mt_engine_close(ro);
    add_f(b, "a", "u", T0 + 6 * S, 60); /* a commit and a seal: the writer looks again */
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    cr_expect_eq(count_files(dir, ".blk"), 1, "both older generations gone once no one reads");
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, a_read_only_snapshot_reads_beside_the_writer)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = "/tmp/metron-no-such-dir-for-this-test";
    o.read_only = true;
    mt_engine *ro = NULL;
    cr_expect_eq(mt_engine_open(&o, &ro), MT_ENOTFOUND);
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 10; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 10);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    add_f(b, "a", "u", T0 + H, 10); /* in the head */
    write_ok(e, b, 1);
    o.dir = dir;
    cr_assert_eq(mt_engine_open(&o, &ro), MT_OK, "beside the writer, which holds the lock");
    int64_t ts[16];
    double v[16];
    cr_expect_eq(read_all(ro, "a", "u", T0, T0 + 2 * H, ts, v, 16), 11, "sealed and head points");
    add_f(b, "a", "u", T0 + H + S, 11);
    write_ok(e, b, 1);
    cr_expect_eq(read_all(ro, "a", "u", T0, T0 + 2 * H, ts, v, 16), 11, "a snapshot");
    add_f(b, "a", "u", T0 + 2 * H, 12);
    mt_write_result r;
    cr_expect_eq(mt_engine_write(ro, b, &r), MT_ECLOSED);
    cr_expect_eq(mt_engine_seal(ro, true, NULL), MT_ECLOSED);
    mt_engine_close(ro);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, leftover_files_are_removed_at_open)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0 + 10 * S, 1);
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    cr_assert_eq(count_files(dir, ".blk"), 1);
    /* what a crash leaves: a temp file, a generation never recorded */
    char path[512];
    snprintf(path, sizeof path, "%s/blocks/2025/01/01/00.77.blk.tmp", dir);
    FILE *f = fopen(path, "w");
    fputs("half", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/blocks/2025/01/01/00.78.blk", dir);
    f = fopen(path, "w");
    fputs("not recorded", f);
    fclose(f);
    e = open_engine();
    cr_expect_eq(count_files(dir, ".blk"), 1);
    cr_expect_eq(count_files(dir, ".tmp"), 0);
    int64_t ts[4];
    double v[4];
    cr_expect_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 4), 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, a_corrupt_chunk_is_reported_never_served)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 100; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 100);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    char cmd[512], path[512];
    snprintf(cmd, sizeof cmd, "find %s/blocks -name '*.blk'", dir);
    FILE *f = popen(cmd, "r");
    cr_assert(fgets(path, sizeof path, f));
    pclose(f);
    path[strcspn(path, "\n")] = '\0';
    int fd = open(path, O_RDWR);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, 40), 1); /* inside the first chunk */
    c ^= 0x10;
    cr_assert_eq(pwrite(fd, &c, 1, 40), 1);
    close(fd);
    e = open_engine();
    char k[512];
    size_t kl = key(k, "a", "u");
    uint32_t id;
    mt_vtype t;
    cr_assert_eq(mt_engine_series_lookup(e, k, kl, &id, &t), MT_OK);
    mt_scan *s;
    cr_assert_eq(mt_scan_open(e, id, T0, T0 + H, &s), MT_OK);
    mt_points p;
    cr_expect_eq(mt_scan_next(s, &p), MT_ECORRUPT);
    mt_scan_close(s);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, a_lost_index_refuses_to_open_and_removes_nothing)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 10; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 10);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    mt_batch_free(b);
    char idx[512], kept[512];
    snprintf(idx, sizeof idx, "%s/index.mdb", dir);
    snprintf(kept, sizeof kept, "%s/index.mdb.kept", dir);
    cr_assert_eq(rename(idx, kept), 0);
    mt_engine_options o = test_options();
    mt_engine *lost = NULL;
    cr_expect_eq(mt_engine_open(&o, &lost), MT_ENOINDEX, "a missing index");
    cr_expect_null(lost);
    cr_expect_eq(count_files(dir, ".blk"), 1, "the hour file is still there");
    FILE *f = fopen(idx, "w"); /* emptied */
    fclose(f);
    cr_expect_eq(mt_engine_open(&o, &lost), MT_ENOINDEX, "an empty index");
    cr_expect_eq(count_files(dir, ".blk"), 1);
    cr_expect(strstr(mt_strerror(MT_ENOINDEX), "index.mdb"), "the error names the file");
    cr_assert_eq(rename(kept, idx), 0); /* the way out: the index restored */
    e = open_engine();
    int64_t ts[16];
    double v[16];
    cr_expect_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 16), 10);
    mt_engine_close(e);
}

/* Everything an engine serves, as sorted text: every series' points, every rollup row. */
typedef struct dump {
    char **lines;
    size_t n, cap;
    mt_engine *e;
} dump;

static void dump_add(dump *d, const char *line)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->lines = realloc(d->lines, d->cap * sizeof *d->lines);
        cr_assert_not_null(d->lines);
    }
    d->lines[d->n++] = strdup(line);
}

static int dump_rollup(void *ud, const mt_rollup *r)
{
    dump *d = ud;
    char name[1024] = "", line[2048];
    if (r->id) {
        char k[4096];
        size_t kl;
        cr_assert_eq(mt_engine_series_key(d->e, r->id, k, sizeof k, &kl), MT_OK);
        mt_series_format(k, kl, name, sizeof name);
    } else {
        snprintf(name, sizeof name, "%.*s/%.*s/%.*s", (int)r->business_id.len, r->business_id.ptr,
                 (int)r->measurement.len, r->measurement.ptr, (int)r->field.len, r->field.ptr);
    }
    snprintf(line, sizeof line, "R %lld %s %llu %a %a %a %a %a %a", (long long)r->hour, name,
             (unsigned long long)r->count, r->sum, r->min, r->max, r->p50, r->p95, r->p99);
    dump_add(d, line);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static dump dump_engine(mt_engine *e)
{
    dump d = {.e = e};
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    for (uint32_t id = 1; id <= st.series; id++) {
        char k[4096], name[1024], line[2048];
        size_t kl;
        cr_assert_eq(mt_engine_series_key(e, id, k, sizeof k, &kl), MT_OK);
        mt_series_format(k, kl, name, sizeof name);
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, INT64_MIN / 2, INT64_MAX / 2, &s), MT_OK);
        mt_points p;
        int rc;
        while ((rc = mt_scan_next(s, &p)) == MT_OK)
            for (size_t i = 0; i < p.n; i++) {
                snprintf(line, sizeof line, "P %s %lld %llx", name, (long long)p.ts[i],
                         (unsigned long long)p.vals[i].u);
                dump_add(&d, line);
            }
        cr_assert_eq(rc, MT_ENOTFOUND);
        mt_scan_close(s);
    }
    cr_assert_eq(mt_engine_rollups(e, 0, INT64_MAX / MT_HOUR_NS, true, dump_rollup, &d), MT_OK);
    cr_assert_eq(mt_engine_rollups(e, 0, INT64_MAX / MT_HOUR_NS, false, dump_rollup, &d), MT_OK);
    qsort(d.lines, d.n, sizeof *d.lines, cmp_str);
    return d;
}

static void dump_free(dump *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->lines[i]);
    free(d->lines);
}

static void report_line(void *ud, const char *line)
{
    int *n = ud;
    (*n)++;
    fprintf(stderr, "rebuild: %s\n", line);
}

Test(engine, a_lost_index_is_rebuilt_from_the_hour_files)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    /* three hours, two tenants, a backfilled hour (two generations), a series only in the head */
    const char *hosts[] = {"a", "b", "c"};
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < 120; i++)
            for (int k = 0; k < 3; k++) {
                char key[512];
                mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
                        tv[2] = {{k == 2 ? "t-b" : "t-a", 3}, {hosts[k], 1}};
                size_t kl = mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2,
                                          (mt_name){"u", 1});
                cr_assert_eq(mt_batch_add(b, key, kl, T0 + h * H + i * 30 * S, MT_VT_FLOAT,
                                          (mt_val){.f = h * 1000 + i * 0.25 + k}, NULL),
                             MT_OK);
            }
    write_ok(e, b, 3 * 120 * 3);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    add_f(b, "late", "u", T0 + H + 7 * S, 42); /* a new generation of hour 1 */
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    dump before = dump_engine(e);
    add_f(b, "head", "u", T0 + 900 * H, 1); /* only in the head: lost with the index */
    write_ok(e, b, 1);
    mt_batch_free(b);
    mt_engine_close(e);

    char idx[512];
    snprintf(idx, sizeof idx, "%s/index.mdb", dir);
    cr_assert_eq(unlink(idx), 0);
    mt_engine_options o = test_options();
    cr_assert_eq(mt_engine_open(&o, &e), MT_ENOINDEX);
    int lines = 0;
    o.rebuild_index = true;
    o.report = report_line;
    o.report_ud = &lines;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    cr_expect_geq(lines, 1, "the rebuild says what it did");
    dump after = dump_engine(e);
    cr_assert_eq(after.n, before.n, "%zu lines before, %zu after", before.n, after.n);
    for (size_t i = 0; i < before.n; i++)
        cr_assert_str_eq(after.lines[i], before.lines[i], "line %zu", i);
    /* the postings work: a tag selects its series */
    uint32_t *ids;
    size_t n;
    cr_assert_eq(mt_engine_postings(e, MT_TERM_TAG, (mt_name){"business_id", 11},
                                    (mt_name){"t-b", 3}, &ids, &n),
                 MT_OK);
    cr_expect_eq(n, 1);
    free(ids);
    mt_engine_close(e);
    cr_expect_eq(count_files(dir, ".blk"), 3, "one generation per hour after the sweep");
    e = open_engine(); /* and it opens as any directory */
    dump again = dump_engine(e);
    cr_expect_eq(again.n, before.n);
    mt_engine_close(e);
    dump_free(&before);
    dump_free(&after);
    dump_free(&again);
}

Test(engine, hour_files_open_cannot_account_for_are_set_aside_not_deleted)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0, 1);
    add_f(b, "a", "u", T0 + H, 2);
    write_ok(e, b, 2);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    mt_batch_free(b);
    /* a committed generation (1) for an hour the index does not name */
    char path[512];
    snprintf(path, sizeof path, "%s/blocks/2025/01/01/05.1.blk", dir);
    FILE *f = fopen(path, "w");
    fputs("someone's hour", f);
    fclose(f);
    e = open_engine();
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.files_set_aside, 1);
    cr_expect_neq(access(path, F_OK), 0, "moved from blocks/");
    snprintf(path, sizeof path, "%s/lost+found/2025-01-01T05.1.blk", dir);
    cr_expect_eq(access(path, F_OK), 0, "kept in lost+found/");
    cr_expect_eq(count_files(dir, ".blk"), 2, "the hours the index names stay");
    mt_engine_close(e);
}

static void collect_line(void *ud, const char *line)
{
    snprintf(ud, 4096, "%s", line);
}

Test(engine, a_damaged_hour_file_is_named_at_open_and_by_the_scan)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 100; i++) add_f(b, "a", "u", T0 + i * S, i);
    add_f(b, "a", "u", T0 + H, 100);
    write_ok(e, b, 101);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    mt_batch_free(b);
    char path[512];
    snprintf(path, sizeof path, "%s/blocks/2025/01/01/00.", dir);
    char cmd[600], file[512];
    snprintf(cmd, sizeof cmd, "ls %s*.blk", path);
    FILE *f = popen(cmd, "r");
    cr_assert(fgets(file, sizeof file, f));
    pclose(f);
    file[strcspn(file, "\n")] = '\0';
    struct stat sb;
    cr_assert_eq(stat(file, &sb), 0);
    cr_assert_eq(truncate(file, sb.st_size / 2), 0);
    for (int ro = 0; ro < 2; ro++) {
        mt_engine_options o = test_options();
        o.read_only = ro;
        cr_assert_eq(mt_engine_open(&o, &e), MT_OK, "damage does not stop the open (ro %d)", ro);
        char line[4096] = "";
        cr_expect_eq(mt_engine_damage(e, collect_line, line), 1);
        cr_expect(strstr(line, file) && strstr(line, "2025-01-01T00:00:00Z"), "%s", line);
        mt_engine_stats st;
        mt_engine_stats_get(e, &st);
        cr_expect_eq(st.hours_unreadable, 1);
        char k[512];
        size_t kl = key(k, "a", "u");
        uint32_t id;
        mt_vtype t;
        cr_assert_eq(mt_engine_series_lookup(e, k, kl, &id, &t), MT_OK);
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, T0, T0 + 2 * H, &s), MT_OK);
        mt_points p;
        cr_expect_eq(mt_scan_next(s, &p), MT_ECORRUPT, "never served");
        char what[4200];
        cr_expect_gt(mt_scan_damage(s, what, sizeof what), 0);
        cr_expect(strstr(what, file), "%s", what);
        mt_scan_close(s);
        /* the other hour still reads */
        int64_t ts[4];
        double v[4];
        cr_expect_eq(read_all(e, "a", "u", T0 + H, T0 + 2 * H, ts, v, 4), 1);
        mt_engine_close(e);
    }
}

Test(engine, timestamps_at_the_int64_edges_are_kept_or_refused_never_lost)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    const int64_t ok[2] = {MT_TS_MIN, MT_TS_MAX};
    const int64_t bad[4] = {INT64_MIN, MT_TS_MIN - 1, MT_TS_MAX + 1, INT64_MAX};
    for (int i = 0; i < 4; i++) add_f(b, "edge", "u", bad[i], -1);
    for (int i = 0; i < 2; i++) add_f(b, "edge", "u", ok[i], i);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 2);
    cr_expect_eq(r.rejected, 4);
    cr_expect_eq(r.first_reason, MT_ETIME);
    cr_expect_eq(r.first_rejected, 0);
    mt_batch_reset(b);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK, "the edge hours seal without overflow");
    mt_engine_close(e);
    e = open_engine();
    int64_t ts[8];
    double v[8];
    cr_assert_eq(read_all(e, "edge", "u", INT64_MIN, INT64_MAX, ts, v, 8), 2);
    cr_expect_eq(ts[0], MT_TS_MIN);
    cr_expect_eq(ts[1], MT_TS_MAX);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.sealed_hours, 2);
    mt_engine_close(e);
    /* a window into the future: a point a day ahead is refused, one a minute ahead kept */
    mt_engine_options o = test_options();
    o.max_future_ns = 600 * S;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    add_f(b, "future", "u", fake_now + 24 * H, 1);
    add_f(b, "future", "u", fake_now + 60 * S, 2);
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 1);
    cr_expect_eq(r.first_reason, MT_ETIME);
    mt_batch_reset(b);
    mt_engine_close(e);
    /* and into the past: a point the retention would remove is refused, a recent one kept */
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_retention pol = {.keep_ns = 90 * 24 * H};
    cr_assert_eq(mt_engine_set_age_policy(e, &pol), MT_OK);
    add_f(b, "past", "u", fake_now - 90 * 24 * H - S, 1);
    add_f(b, "past", "u", fake_now - 89 * 24 * H, 2);
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 1);
    cr_expect_eq(r.first_rejected, 0);
    cr_expect_eq(r.first_reason, MT_EOLD, "%s", mt_strerror(r.first_reason));
    cr_expect_eq(r.first_bound, fake_now - 90 * 24 * H);
    mt_batch_free(b);
    mt_engine_close(e);
}

/* The key of measurement m, tag host, field v. */
static size_t m_host_key(char *k, size_t cap, const char *m, const char *host)
{
    mt_name tk = {"host", 4}, tv = {host, strlen(host)};
    return mt_series_key(k, cap, (mt_name){m, strlen(m)}, &tk, &tv, 1, (mt_name){"v", 1});
}

Test(engine, each_series_is_refused_by_its_own_keep_and_a_refused_point_creates_no_series)
{
    mt_engine_options o = test_options();
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    /* the default keeps 30 days; the measurement disk 7; cpu,host=b one more rule: forever */
    const int64_t D = 24 * H;
    mt_retention_rule rules[] = {{.measurement = "disk", .keep_ns = 7 * D},
                                 {.measurement = "cpu", .business_id = "", .keep_ns = 0}};
    mt_retention pol = {.keep_ns = 30 * D, .rules = rules, .nrules = 2};
    cr_assert_eq(mt_engine_set_age_policy(e, &pol), MT_OK);
    rules[0].keep_ns = 1; /* the engine holds a copy */
    mt_batch *b = mt_batch_new();
    char k[256];
    size_t kl;
    const struct {
        const char *m, *host;
        int64_t age;
        bool kept;
    } pts[] = {
        {"disk", "a", 6 * D, true},  {"disk", "b", 10 * D, false}, {"mem", "a", 10 * D, true},
        {"mem", "b", 31 * D, false}, {"cpu", "a", 400 * D, true},  {"disk", "c", 8 * D, false},
    };
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        kl = m_host_key(k, sizeof k, pts[i].m, pts[i].host);
        mt_batch_line(b, 10 + i);
        cr_assert_eq(
            mt_batch_add(b, k, kl, fake_now - pts[i].age, MT_VT_FLOAT, (mt_val){.f = 1.0}, NULL),
            MT_OK);
    }
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 3);
    cr_expect_eq(r.rejected, 3);
    cr_expect_eq(r.first_rejected, 1);
    cr_expect_eq(r.first_reason, MT_EOLD);
    cr_expect_eq(r.first_bound, fake_now - 7 * D, "disk keeps 7 days");
    mt_batch_pt pt;
    cr_assert_eq(mt_batch_point(b, r.first_rejected, &pt), MT_OK);
    cr_expect_eq(pt.line, 11, "the refused point names its line");
    cr_expect_eq(pt.ts, fake_now - 10 * D);
    for (size_t i = 0; i < sizeof pts / sizeof *pts; i++) {
        kl = m_host_key(k, sizeof k, pts[i].m, pts[i].host);
        uint32_t id;
        mt_vtype t;
        cr_expect_eq(mt_engine_series_lookup(e, k, kl, &id, &t) == MT_OK, pts[i].kept,
                     "%s,host=%s: a series only when a point of it was written", pts[i].m,
                     pts[i].host);
    }
    /* no policy: nothing is too old */
    mt_batch_reset(b);
    cr_assert_eq(mt_engine_set_age_policy(e, NULL), MT_OK);
    add_f(b, "old", "u", fake_now - 1000 * D, 1);
    write_ok(e, b, 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, postings_find_series_by_measurement_field_and_tag)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "usage", T0, 1);
    add_f(b, "b", "usage", T0, 1);
    add_f(b, "a", "idle", T0, 1);
    write_ok(e, b, 3);
    uint32_t *ids;
    size_t n;
    cr_assert_eq(
        mt_engine_postings(e, MT_TERM_MEASUREMENT, (mt_name){"cpu", 3}, (mt_name){0}, &ids, &n),
        MT_OK);
    cr_expect_eq(n, 3);
    free(ids);
    cr_assert_eq(
        mt_engine_postings(e, MT_TERM_TAG, (mt_name){"host", 4}, (mt_name){"a", 1}, &ids, &n),
        MT_OK);
    cr_expect_eq(n, 2);
    cr_expect_lt(ids[0], ids[1]);
    char out[512], text[256];
    size_t kl;
    cr_assert_eq(mt_engine_series_key(e, ids[1], out, sizeof out, &kl), MT_OK);
    mt_series_format(out, kl, text, sizeof text);
    cr_expect_str_eq(text, "cpu,host=a idle");
    free(ids);
    cr_assert_eq(
        mt_engine_postings(e, MT_TERM_FIELD, (mt_name){"usage", 5}, (mt_name){0}, &ids, &n), MT_OK);
    cr_expect_eq(n, 2);
    free(ids);
    cr_assert_eq(mt_engine_postings(e, MT_TERM_FIELD, (mt_name){"nope", 4}, (mt_name){0}, &ids, &n),
                 MT_OK);
    cr_expect_eq(n, 0);
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, cardinality_limits_refuse_new_series_and_keep_the_rest)
{
    mt_engine_options o = test_options();
    o.max_new_series_per_hour = 2;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0, 1);
    add_f(b, "b", "u", T0, 1);
    add_f(b, "c", "u", T0, 1);     /* a third new series of the same (system) tenant this hour */
    add_f(b, "a", "u", T0 + S, 2); /* an existing series is fine */
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.accepted, 3);
    cr_expect_eq(r.rejected, 1);
    cr_expect_eq(r.first_rejected, 2);
    cr_expect_eq(r.first_reason, MT_ELIMIT);
    mt_batch_reset(b);
    fake_now += H; /* the next hour: room again */
    add_f(b, "c", "u", T0, 1);
    write_ok(e, b, 1);
    mt_engine_close(e);
    o.max_new_series_per_hour = 0;
    o.max_series = 3;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    add_f(b, "d", "u", T0, 1);
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    cr_expect_eq(r.rejected, 1);
    cr_expect_eq(r.first_reason, MT_ELIMIT);
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    cr_expect_eq(st.series, 3);
    cr_expect_eq(st.points_over_series_limit, 1);
    mt_batch_free(b);
    mt_engine_close(e);
}

#ifdef MT_FAULT_INJECTION
Test(engine, a_failed_commit_is_fatal_and_never_acknowledged)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "a", "u", T0, 1);
    write_ok(e, b, 1);
    mt_fault_set("kv.commit", 1);
    add_f(b, "a", "u", T0 + S, 2);
    mt_write_result r;
    cr_expect_eq(mt_engine_write(e, b, &r), -EIO, "the failed commit is reported");
    mt_batch_reset(b);
    add_f(b, "a", "u", T0 + 2 * S, 3);
    cr_expect_eq(mt_engine_submit(e, b, NULL, NULL), MT_ECLOSED, "no write after an I/O failure");
    mt_engine_close(e);
    e = open_engine();
    int64_t ts[4];
    double v[4];
    cr_expect_eq(read_all(e, "a", "u", T0, T0 + H, ts, v, 4), 1, "only the acknowledged point");
    mt_batch_free(b);
    mt_engine_close(e);
}

Test(engine, a_failed_hour_file_fsync_or_rename_keeps_the_points_in_the_head)
{
    /* fs.dirsync: the fsync of a new day's directories' parents (a new day: 48 h later) */
    const char *points[] = {"hf.fsync", "hf.rename", "fs.dirsync"};
    for (int k = 0; k < 3; k++) {
        mt_engine *e = open_engine();
        mt_batch *b = mt_batch_new();
        add_f(b, "f", points[k], T0 + (k < 2 ? k : 48) * H, 1);
        write_ok(e, b, 1);
        mt_fault_set(points[k], 1);
        cr_expect_eq(mt_engine_seal(e, true, NULL), -EIO, "%s", points[k]);
        cr_expect_eq(count_files(dir, ".tmp"), 0, "the temp file is removed");
        int64_t ts[4];
        double v[4];
        cr_expect_eq(read_all(e, "f", points[k], T0, T0 + 49 * H, ts, v, 4), 1);
        cr_expect_eq(mt_engine_seal(e, true, NULL), MT_OK, "the next seal succeeds");
        mt_engine_close(e);
        e = open_engine();
        cr_expect_eq(read_all(e, "f", points[k], T0, T0 + 49 * H, ts, v, 4), 1);
        mt_batch_free(b);
        mt_engine_close(e);
    }
}
#endif

typedef struct values_seen {
    char text[256];
} values_seen;

static int on_value(void *ud, mt_name v, size_t series)
{
    values_seen *vs = ud;
    size_t n = strlen(vs->text);
    snprintf(vs->text + n, sizeof vs->text - n, "%.*s:%zu ", (int)v.len, v.ptr, series);
    return 0;
}

Test(engine, tag_values_are_listed_with_their_series_counts)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    add_f(b, "b", "usage", T0, 1);
    add_f(b, "a", "usage", T0, 1);
    add_f(b, "a", "idle", T0, 1);
    add_f(b, "c", "idle", T0, 1);
    write_ok(e, b, 4);
    values_seen vs = {""};
    cr_assert_eq(mt_engine_tag_values(e, (mt_name){"host", 4}, on_value, &vs), MT_OK);
    cr_expect_str_eq(vs.text, "a:2 b:1 c:1 ");
    values_seen none = {""};
    cr_assert_eq(mt_engine_tag_values(e, (mt_name){"hos", 3}, on_value, &none), MT_OK);
    cr_expect_str_eq(none.text, "");
    mt_batch_free(b);
    mt_engine_close(e);
}

typedef struct reader_arg {
    mt_engine *e;
    volatile int *stop;
    int scans;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *a = arg;
    char k[512];
    size_t kl = key(k, "a", "u");
    while (!*a->stop) {
        uint32_t id;
        mt_vtype t;
        if (mt_engine_series_lookup(a->e, k, kl, &id, &t) != MT_OK) continue;
        mt_scan *s;
        if (mt_scan_open(a->e, id, T0, T0 + 100 * H, &s) != MT_OK) abort();
        mt_points p;
        int64_t last = INT64_MIN;
        int rc;
        while ((rc = mt_scan_next(s, &p)) == MT_OK)
            for (size_t i = 0; i < p.n; i++) {
                if (p.ts[i] <= last || p.vals[i].f != (double)((p.ts[i] - T0) / S)) abort();
                last = p.ts[i];
            }
        if (rc != MT_ENOTFOUND) abort();
        mt_scan_close(s);
        a->scans++;
    }
    return NULL;
}

Test(engine, readers_run_while_the_writer_writes_and_seals)
{
    mt_engine *e = open_engine();
    volatile int stop = 0;
    reader_arg ra[2] = {{e, &stop, 0}, {e, &stop, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, reader, &ra[i]);
    mt_batch *b = mt_batch_new();
    for (int hour = 0; hour < 6; hour++) {
        for (int i = 0; i < 360; i++) {
            int64_t sec = hour * 3600 + i * 10;
            add_f(b, "a", "u", T0 + sec * S, (double)sec);
        }
        write_ok(e, b, 360);
        if (hour % 2) cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    cr_expect_gt(ra[0].scans + ra[1].scans, 0);
    mt_batch_free(b);
    mt_engine_close(e);
}

static int rollup_row(void *ud, const mt_rollup *r)
{
    *(mt_rollup *)ud = *r;
    ((mt_rollup *)ud)->group = NULL; /* the names live during the call only */
    return 0;
}

Test(engine, a_backfilled_hour_gets_its_rollups_recomputed)
{
    mt_engine *e = open_engine();
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < 10; i++) add_f(b, "a", "u", T0 + i * S, i);
    write_ok(e, b, 10);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_rollup r = {0};
    cr_assert_eq(mt_engine_rollups(e, T0 / H, T0 / H + 1, true, rollup_row, &r), MT_OK);
    cr_expect_eq(r.count, 10);
    cr_expect_eq(r.max, 9);
    cr_expect_eq(r.p50, 4.5);
    /* a late point for the sealed hour: the next seal rewrites the hour and its rollups */
    add_f(b, "a", "u", T0 + 30 * 60 * S, 100);
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    cr_assert_eq(mt_engine_rollups(e, T0 / H, T0 / H + 1, true, rollup_row, &r), MT_OK);
    cr_expect_eq(r.count, 11);
    cr_expect_eq(r.max, 100);
    cr_expect_eq(r.p50, 5);
    cr_assert_eq(mt_engine_rollups(e, T0 / H, T0 / H + 1, false, rollup_row, &r), MT_OK);
    cr_expect_eq(r.count, 11, "the series row too");
    mt_batch_free(b);
    mt_engine_close(e);
}

typedef struct seen {
    uint64_t seq[16];
    int64_t hour[16];
    size_t n;
} seen;

static int on_entry(void *ud, const mt_outbox_entry *en)
{
    seen *s = ud;
    cr_assert_eq(en->kind, MT_OUTBOX_HOUR);
    cr_assert_eq(en->len, 8);
    int64_t h;
    memcpy(&h, en->data, 8);
    s->seq[s->n] = en->seq;
    s->hour[s->n++] = h;
    return 0;
}

Test(engine, every_sealed_hour_is_queued_in_the_outbox_until_acknowledged)
{
    mt_engine_options o = test_options();
    o.outbox = true;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    mt_batch *b = mt_batch_new();
    for (int h = 0; h < 3; h++) add_f(b, "a", "u", T0 + h * H, h);
    write_ok(e, b, 3);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    seen s = {.n = 0};
    cr_assert_eq(mt_engine_outbox_peek(e, 2, on_entry, &s), MT_OK);
    cr_assert_eq(s.n, 2, "at most max");
    cr_expect_eq(s.hour[0], T0 / H);
    cr_expect_eq(s.hour[1], T0 / H + 1);
    size_t removed, depth;
    int64_t oldest;
    cr_assert_eq(mt_engine_outbox_ack(e, s.seq[1], &removed), MT_OK);
    cr_expect_eq(removed, 2);
    cr_assert_eq(mt_engine_outbox_stats(e, &depth, &oldest), MT_OK);
    cr_expect_eq(depth, 1);
    cr_expect_gt(oldest, 0);
    /* backfill: the hour is queued again, after the one still waiting */
    add_f(b, "a", "u", T0 + 60 * S, 9);
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    mt_engine_close(e);
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK); /* queued entries are durable */
    s.n = 0;
    cr_assert_eq(mt_engine_outbox_peek(e, 16, on_entry, &s), MT_OK);
    cr_assert_eq(s.n, 2);
    cr_expect_eq(s.hour[0], T0 / H + 2);
    cr_expect_eq(s.hour[1], T0 / H);
    cr_expect_gt(s.seq[1], s.seq[0]);
    mt_batch_free(b);
    mt_engine_close(e);
    /* without a sink nothing is queued */
    o.outbox = false;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    b = mt_batch_new();
    add_f(b, "a", "u", T0 + 5 * H, 1);
    write_ok(e, b, 1);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    cr_assert_eq(mt_engine_outbox_stats(e, &depth, &oldest), MT_OK);
    cr_expect_eq(depth, 2);
    mt_batch_free(b);
    mt_engine_close(e);
}
