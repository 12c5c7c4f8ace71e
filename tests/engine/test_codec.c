/*
 * test_codec.c — the chunk codec: lossless round trips of every type with
 * random and adversarial inputs (millions of values), and rejection of
 * corrupt and truncated chunks without reading out of bounds.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "mt_buf.h"
#include "mt_codec.h"
#include "mt_rice.h"
#include "test_util.h"

typedef struct fixture {
    mt_encoder *enc;
    mt_decoder *dec;
} fixture;

static fixture fx;

static void setup(void)
{
    cr_assert_eq(mt_encoder_new(0, &fx.enc), MT_OK);
    cr_assert_eq(mt_decoder_new(&fx.dec), MT_OK);
}

static void teardown(void)
{
    mt_encoder_free(fx.enc);
    mt_decoder_free(fx.dec);
}

TestSuite(codec, .init = setup, .fini = teardown);

static uint64_t dbits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static int64_t floor_by(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return a % b && a < 0 ? q - 1 : q;
}

/*
 * The f64 form of a chunk (mt_decoder_decode_f64) against the points it was made from:
 * stamps floor(ts / 10^unit_e), values as C converts them, repeats exactly when two stamps
 * fell in one unit.
 */
static void expect_f64(const uint8_t *chunk, size_t len, const mt_points *in, int unit_e)
{
    mt_points out;
    bool repeats;
    int rc = mt_decoder_decode_f64(fx.dec, chunk, len, unit_e, &out, &repeats);
    if (in->type == MT_VT_STRING) {
        cr_assert_eq(rc, MT_EINVAL, "a string chunk has no f64 form");
        return;
    }
    cr_assert_eq(rc, MT_OK);
    cr_assert_eq(out.type, MT_VT_FLOAT);
    cr_assert_eq(out.n, in->n);
    int64_t u = (int64_t)mt_pow10[unit_e];
    bool want_rep = false;
    for (size_t i = 0; i < in->n; i++) {
        int64_t t = floor_by(in->ts[i], u);
        cr_assert_eq(out.ts[i], t, "unit 10^%d, ts %zu: %lld != %lld", unit_e, i,
                     (long long)out.ts[i], (long long)t);
        want_rep |= i && floor_by(in->ts[i - 1], u) == t;
        mt_val x = in->vals[i];
        double v = in->type == MT_VT_FLOAT  ? x.f
                   : in->type == MT_VT_INT  ? (double)x.i
                   : in->type == MT_VT_UINT ? (double)x.u
                                            : (x.u ? 1.0 : 0.0);
        cr_assert_eq(dbits_of(out.vals[i].f), dbits_of(v), "unit 10^%d, value %zu", unit_e, i);
    }
    cr_assert_eq(repeats, want_rep, "unit 10^%d: repeats", unit_e);
}

/* Encode, decode, and require the same bits back. Returns the chunk size. */
static size_t round_trip(const mt_points *in)
{
    static unsigned calls;
    static const int units[] = {6, 0, 9, 3}; /* ms first: PromQL's */
    const uint8_t *chunk;
    size_t len;
    cr_assert_eq(mt_encoder_encode(fx.enc, in, &chunk, &len), MT_OK);
    mt_points out;
    cr_assert_eq(mt_decoder_decode(fx.dec, chunk, len, &out), MT_OK);
    cr_assert_eq(out.type, in->type);
    cr_assert_eq(out.n, in->n);
    for (size_t i = 0; i < in->n; i++) {
        cr_assert_eq(out.ts[i], in->ts[i], "ts %zu", i);
        if (in->type == MT_VT_STRING) {
            size_t l = MT_VAL_STR_LEN(in->vals[i]);
            cr_assert_eq(MT_VAL_STR_LEN(out.vals[i]), l, "string %zu", i);
            cr_assert(memcmp(out.strs + MT_VAL_STR_OFF(out.vals[i]),
                             in->strs + MT_VAL_STR_OFF(in->vals[i]), l) == 0);
        } else {
            cr_assert_eq(out.vals[i].u, in->vals[i].u, "value %zu: %016llx != %016llx", i,
                         (unsigned long long)out.vals[i].u, (unsigned long long)in->vals[i].u);
        }
    }
    size_t n;
    mt_vtype t;
    cr_assert_eq(mt_codec_peek(chunk, len, &n, &t), MT_OK);
    cr_assert_eq(n, in->n);
    cr_assert_eq(t, in->type);
    expect_f64(chunk, len, in, units[calls++ % 4]);
    return len;
}

/* n regular timestamps every 10 s from 2025-01-01. */
static int64_t *regular_ts(size_t n)
{
    int64_t *ts = malloc(n * sizeof *ts);
    for (size_t i = 0; i < n; i++) ts[i] = 1735689600000000000 + (int64_t)i * 10000000000;
    return ts;
}

static mt_points pts_of(mt_vtype type, const int64_t *ts, const mt_val *v, size_t n)
{
    return (mt_points){.type = type, .n = n, .ts = ts, .vals = v};
}

Test(codec, special_floats_round_trip_bit_for_bit)
{
    const uint64_t bits[] = {
        0x0000000000000000ull, /* +0 */
        0x8000000000000000ull, /* -0 */
        0x0000000000000001ull, /* smallest subnormal */
        0x000FFFFFFFFFFFFFull, /* largest subnormal */
        0x8000000000000001ull, /* negative subnormal */
        0x0010000000000000ull, /* DBL_MIN */
        0x7FEFFFFFFFFFFFFFull, /* DBL_MAX */
        0xFFEFFFFFFFFFFFFFull, /* -DBL_MAX */
        0x7FF0000000000000ull, /* +Inf */
        0xFFF0000000000000ull, /* -Inf */
        0x7FF8000000000000ull, /* quiet NaN */
        0xFFF8000000000000ull, /* negative quiet NaN */
        0x7FF0000000000001ull, /* signalling NaN, payload 1 */
        0x7FFFFFFFFFFFFFFFull, /* NaN, all payload bits */
        0x7FF4000000DEAD01ull, /* NaN with a payload */
        0x3FF0000000000000ull, /* 1.0 */
        0x3FB999999999999Aull, /* 0.1 */
        0x3FD5555555555555ull, /* 1/3 */
    };
    size_t n = sizeof bits / sizeof bits[0];
    int64_t *ts = regular_ts(n);
    mt_val v[sizeof bits / sizeof bits[0]];
    for (size_t i = 0; i < n; i++) v[i].u = bits[i];
    mt_points p = pts_of(MT_VT_FLOAT, ts, v, n);
    round_trip(&p);
    /* The same specials as rare exceptions among decimals (decimal mode). */
    size_t m = 400;
    int64_t *ts2 = regular_ts(m);
    mt_val *w = malloc(m * sizeof *w);
    for (size_t i = 0; i < m; i++) w[i].f = (double)(int64_t)(i * 37 % 1000) / 100.0;
    for (size_t i = 0; i < n; i++) w[i * 21].u = bits[i];
    p = pts_of(MT_VT_FLOAT, ts2, w, m);
    round_trip(&p);
    free(ts);
    free(ts2);
    free(w);
}

Test(codec, decimals_compress_well)
{
    size_t n = 360;
    int64_t *ts = regular_ts(n);
    mt_val *v = malloc(n * sizeof *v);
    uint64_t seed = mt_test_seed();
    int64_t c = 5000;
    for (size_t i = 0; i < n; i++) {
        c += (int64_t)(mt_test_rand(&seed) % 201) - 100;
        v[i].f = (double)c / 100.0;
    }
    mt_points p = pts_of(MT_VT_FLOAT, ts, v, n);
    size_t len = round_trip(&p);
    /* a random walk of hundredths with steps up to +-1.00: about a byte a point */
    cr_expect_lt(len, n * 3 / 2, "%zu bytes for %zu points", len, n);
    free(ts);
    free(v);
}

Test(codec, random_bit_patterns_millions)
{
    uint64_t seed = mt_test_seed();
    size_t n = 1 << 16;
    int64_t *ts = malloc(n * sizeof *ts);
    mt_val *v = malloc(n * sizeof *v);
    size_t total = 0;
    for (int round = 0; round < 40; round++) {
        size_t m = 1 + mt_test_rand(&seed) % n;
        int64_t t = (int64_t)mt_test_rand(&seed);
        for (size_t i = 0; i < m; i++) {
            uint64_t gap = 1 + (mt_test_rand(&seed) >> (mt_test_rand(&seed) % 64 | 20));
            if (t > INT64_MAX - (int64_t)gap) {
                m = i ? i : 1;
                if (i == 0) ts[0] = t;
                break;
            }
            ts[i] = t;
            t += (int64_t)gap;
            v[i].u = mt_test_rand(&seed);
        }
        mt_vtype type = (mt_vtype)(round % 3); /* float, int, uint */
        mt_points p = pts_of(type, ts, v, m);
        round_trip(&p);
        total += m;
    }
    cr_log_info("round-tripped %zu random values (MT_TEST_SEED=%llu)", total,
                (unsigned long long)mt_test_seed());
    free(ts);
    free(v);
}

Test(codec, decimal_values_of_every_scale_millions)
{
    uint64_t seed = mt_test_seed();
    size_t n = 4096;
    int64_t *ts = regular_ts(n);
    mt_val *v = malloc(n * sizeof *v);
    for (int round = 0; round < 600; round++) {
        int e = round % 16;
        double scale = pow(10, e);
        int64_t span = (int64_t)1 << (1 + mt_test_rand(&seed) % 52);
        for (size_t i = 0; i < n; i++) {
            int64_t m = (int64_t)(mt_test_rand(&seed) % (uint64_t)span) - span / 2;
            v[i].f = (double)m / scale;
            if (mt_test_rand(&seed) % 97 == 0) v[i].u = mt_test_rand(&seed); /* an exception */
        }
        mt_points p = pts_of(MT_VT_FLOAT, ts, v, n);
        round_trip(&p);
    }
    free(ts);
    free(v);
}

Test(codec, integer_extremes_and_overflowing_steps)
{
    const int64_t vals[] = {INT64_MIN, INT64_MAX,     INT64_MIN,     0,  -1,
                            INT64_MAX, INT64_MAX - 1, INT64_MIN + 1, 42, INT64_MIN};
    size_t n = sizeof vals / sizeof vals[0];
    int64_t ts[] = {INT64_MIN,     INT64_MIN + 1, -1,       0, 1, 2, 1000,
                    INT64_MAX - 2, INT64_MAX - 1, INT64_MAX};
    mt_val v[sizeof vals / sizeof vals[0]];
    for (size_t i = 0; i < n; i++) v[i].i = vals[i];
    for (int t = MT_VT_INT; t <= MT_VT_UINT; t++) {
        mt_points p = pts_of((mt_vtype)t, ts, v, n);
        round_trip(&p);
    }
    /* all-equal extreme steps make the gcd 2^63, which must fall back to 1 */
    mt_val w[3] = {{.i = 0}, {.i = INT64_MIN}, {.i = 0}};
    mt_points p = pts_of(MT_VT_INT, ts, w, 3);
    round_trip(&p);
}

Test(codec, counters_and_page_multiples)
{
    size_t n = 360;
    int64_t *ts = regular_ts(n);
    mt_val *v = malloc(n * sizeof *v);
    uint64_t seed = mt_test_seed();
    uint64_t c = 123456789, rate = 1000;
    for (size_t i = 0; i < n; i++) {
        rate += mt_test_rand(&seed) % 21 - 10;
        c += rate;
        v[i].u = c;
    }
    mt_points p = pts_of(MT_VT_UINT, ts, v, n);
    size_t counter_len = round_trip(&p);
    cr_expect_lt(counter_len, n + 64, "counter: %zu bytes", counter_len);
    for (size_t i = 0; i < n; i++) v[i].i = (int64_t)(2000000 + mt_test_rand(&seed) % 100) * 4096;
    p = pts_of(MT_VT_INT, ts, v, n);
    round_trip(&p);
    for (size_t i = 0; i < n; i++) v[i].i = 7;
    p = pts_of(MT_VT_INT, ts, v, n);
    cr_expect_lt(round_trip(&p), 64);
    free(ts);
    free(v);
}

Test(codec, bools_and_strings)
{
    size_t n = 77;
    int64_t *ts = regular_ts(n);
    mt_val v[77];
    for (size_t i = 0; i < n; i++) v[i].u = (i * 7 % 3) == 0;
    mt_points p = pts_of(MT_VT_BOOL, ts, v, n);
    round_trip(&p);

    char strs[4096];
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = i % 5 == 0 ? 0 : i;
        for (size_t k = 0; k < len; k++) strs[off + k] = (char)(i * 31 + k);
        v[i].u = MT_VAL_STR(off, len);
        off += len;
    }
    p = pts_of(MT_VT_STRING, ts, v, n);
    p.strs = strs;
    p.strs_len = off;
    round_trip(&p);
    free(ts);
}

Test(codec, single_point_and_max_points)
{
    int64_t t = -5;
    mt_val v = {.f = -0.0};
    mt_points p = pts_of(MT_VT_FLOAT, &t, &v, 1);
    round_trip(&p);
    size_t n = 1 << 20;
    int64_t *ts = regular_ts(n);
    mt_val *w = calloc(n, sizeof *w);
    for (size_t i = 0; i < n; i++) w[i].i = (int64_t)(i % 1000);
    p = pts_of(MT_VT_INT, ts, w, n);
    round_trip(&p);
    free(ts);
    free(w);
}

Test(codec, invalid_input_is_refused)
{
    int64_t ts[] = {10, 10, 20};
    mt_val v[3] = {{.u = 0}, {.u = 1}, {.u = 2}};
    const uint8_t *chunk;
    size_t len;
    mt_points p = pts_of(MT_VT_INT, ts, v, 0);
    cr_expect_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_EINVAL);
    p = pts_of(MT_VT_INT, ts, v, 3);
    cr_expect_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_EINVAL, "equal timestamps");
    int64_t ok_ts[] = {10, 20, 30};
    p = pts_of(MT_VT_BOOL, ok_ts, v, 3);
    cr_expect_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_EINVAL, "bool value 2");
    p = pts_of((mt_vtype)9, ok_ts, v, 3);
    cr_expect_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_EINVAL);
    v[2].u = MT_VAL_STR(2, 5);
    p = pts_of(MT_VT_STRING, ok_ts, v, 3);
    p.strs = "abcd";
    p.strs_len = 4;
    cr_expect_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_EINVAL, "string out of range");
    mt_encoder *e = NULL;
    cr_expect_eq(mt_encoder_new(20, &e), MT_EINVAL);
    mt_encoder_free(NULL);
    mt_decoder_free(NULL);
}

/* A copy in an exact-size heap block, so ASan sees any read past its end. */
static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    return c;
}

Test(codec, every_flipped_bit_and_every_truncation_is_detected)
{
    size_t n = 50;
    int64_t *ts = regular_ts(n);
    mt_val v[50];
    for (size_t i = 0; i < n; i++) v[i].f = (double)i * 1.25;
    mt_points p = pts_of(MT_VT_FLOAT, ts, v, n);
    const uint8_t *chunk;
    size_t len;
    cr_assert_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_OK);
    uint8_t *good = dup_exact(chunk, len);
    mt_points out;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *c = dup_exact(good, cut);
        int rc = mt_decoder_decode(fx.dec, c, cut, &out);
        cr_assert(rc == MT_ECORRUPT || rc == MT_EFORMAT, "truncated at %zu: %d", cut, rc);
        cr_assert_eq(out.n, 0);
        free(c);
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        uint8_t *c = dup_exact(good, len);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = mt_decoder_decode(fx.dec, c, len, &out);
        cr_assert(rc == MT_ECORRUPT || rc == MT_EFORMAT, "bit %zu flipped: %d", bit, rc);
        free(c);
    }
    uint8_t *c = dup_exact(good, len);
    c[2] = 99;
    cr_expect_eq(mt_decoder_decode(fx.dec, c, len, &out), MT_EFORMAT, "unknown version");
    free(c);
    free(good);
    free(ts);
}

/* The body a chunk wraps, decompressed here (the format is in mt_format.h: version 2). */
static uint8_t *body_of(const uint8_t *chunk, size_t len, size_t *body_len)
{
    cr_assert_eq(chunk[2], 2, "a version 2 chunk");
    mt_rd r = {chunk + 4, chunk + len};
    uint64_t n = 0, blen = 0;
    cr_assert_eq(mt_rd_uvarint(&r, &n), MT_OK);
    if (chunk[3] & 0x80) cr_assert_eq(mt_rd_uvarint(&r, &blen), MT_OK);
    size_t at = (size_t)(r.p - chunk) + 4; /* the checksum */
    uint8_t *body;
    if (!(chunk[3] & 0x80)) { /* stored as it is */
        *body_len = len - at;
        body = malloc(*body_len);
        memcpy(body, chunk + at, *body_len);
        return body;
    }
    *body_len = (size_t)blen;
    body = malloc(*body_len);
    size_t got = ZSTD_decompress(body, *body_len, chunk + at, len - at);
    cr_assert_eq(got, *body_len);
    return body;
}

/* Bodies without the checksum's protection: damage must fail cleanly or decode, never crash. */
Test(codec, damaged_bodies_never_read_out_of_bounds)
{
    uint64_t seed = mt_test_seed();
    size_t n = 300;
    int64_t *ts = regular_ts(n);
    mt_val v[300];
    char strs[300];
    memset(strs, 'x', sizeof strs);
    size_t damaged_ok = 0, rejected = 0;
    for (int type = 0; type < MT_VT_COUNT; type++) {
        for (size_t i = 0; i < n; i++) {
            v[i].u = type == MT_VT_BOOL     ? i % 2
                     : type == MT_VT_STRING ? MT_VAL_STR(i / 2, i % 3)
                     : type == MT_VT_FLOAT
                         ? (i % 50 ? dbits_of((double)i / 4) : mt_test_rand(&seed))
                         : mt_test_rand(&seed) % 1000 * 4096;
        }
        mt_points p = pts_of((mt_vtype)type, ts, v, n);
        p.strs = strs;
        p.strs_len = sizeof strs;
        const uint8_t *chunk;
        size_t len, blen;
        cr_assert_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_OK);
        uint8_t *body = body_of(chunk, len, &blen);
        for (int round = 0; round < 4000; round++) {
            size_t cut = round % 4 == 0 ? mt_test_rand(&seed) % (blen + 1) : blen;
            uint8_t *c = dup_exact(body, cut);
            for (int k = 0; k < 1 + round % 3 && cut; k++)
                c[mt_test_rand(&seed) % cut] = (uint8_t)mt_test_rand(&seed);
            mt_points out;
            int rc = mt_decoder_decode_body(fx.dec, c, cut, &out);
            cr_assert(rc == MT_OK || rc == MT_ECORRUPT, "rc %d", rc);
            if (rc == MT_OK) {
                damaged_ok++;
                for (size_t i = 1; i < out.n; i++) cr_assert_gt(out.ts[i], out.ts[i - 1]);
            } else {
                rejected++;
            }
            free(c);
        }
        free(body);
    }
    cr_log_info("damaged bodies: %zu decoded, %zu rejected", damaged_ok, rejected);
    free(ts);
}

/* Rice blocks round-trip every k the encoder picks, values that fill the bit window, escaped
   values beside ordinary ones, and report the bytes they took. */
Test(codec, rice_blocks_round_trip_at_every_k_with_escapes)
{
    enum { N = 2000 };
    static uint64_t z[N], back[N];
    static uint8_t buf[16 + (N * 95 + 7) / 8 + 8];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (unsigned shift = 0; shift < 64; shift++) {
        for (size_t i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            z[i] = x >> shift;
            if (i % 97 == 5) z[i] = x | (1ull << 63); /* escaped: q >= 31 at any k here */
        }
        cr_assert_leq(mt_rice_bound(N), sizeof buf);
        size_t len = mt_rice_encode(z, N, buf), used = 0;
        memset(back, 0, sizeof back);
        cr_assert_eq(mt_rice_decode(buf, len, back, N, &used), 0, "shift %u", shift);
        cr_expect_eq(used, len, "shift %u: %zu bytes used of %zu", shift, used, len);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(back[i], z[i], "shift %u, value %zu (k %u)", shift, i, buf[0]);
        cr_expect_eq(mt_rice_decode(buf, len - 1, back, N, &used), -1, "shift %u: short", shift);
    }
}

/* A body of n bools whose stamps are regular (one step): t0 and the step as stored. */
static size_t regular_body(uint8_t *b, uint64_t n, int64_t t0, int64_t step)
{
    size_t l = 0;
    b[l++] = MT_VT_BOOL;
    l += mt_put_uvarint(b + l, n);
    b[l++] = 0; /* regular, in units of 10^0 ns */
    l += mt_put_uvarint(b + l, mt_zigzag(t0));
    if (n > 1) l += mt_put_uvarint(b + l, mt_zigzag(step));
    memset(b + l, 0, (n + 7) / 8);
    return l + (n + 7) / 8;
}

/* One check per chunk instead of one per stamp: a step that is not positive, or that carries
   the last stamp past INT64_MAX, is damage, as the per-stamp check found it. */
Test(codec, regular_stamps_that_do_not_increase_are_refused)
{
    uint8_t b[64];
    mt_points out;
    size_t l = regular_body(b, 5, 1000, 10);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_OK);
    cr_assert_eq(out.ts[4], 1040);
    l = regular_body(b, 5, INT64_MAX - 40, 10);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_OK, "the last stamp is INT64_MAX");
    cr_assert_eq(out.ts[4], INT64_MAX);
    l = regular_body(b, 5, INT64_MAX - 39, 10);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_ECORRUPT, "wraps past INT64_MAX");
    l = regular_body(b, 5, 1000, 0);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_ECORRUPT, "a zero step");
    l = regular_body(b, 5, 1000, -10);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_ECORRUPT, "a negative step");
    l = regular_body(b, 3, 0, INT64_MAX / 2 + 1);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_ECORRUPT, "step x (n - 1) wraps");
    l = regular_body(b, 1, INT64_MAX, 0);
    cr_assert_eq(mt_decoder_decode_body(fx.dec, b, l, &out), MT_OK, "one point has no step");
}

Test(codec, the_f64_form_floors_stamps_and_converts_every_type)
{
    /* ns stamps: two in one ms, one before 1970 a ns short of a ms, the int64 ends */
    int64_t ts[] = {INT64_MIN, -1000001, -1000000, -1,      0,
                    999999,    1000000,  1000001,  2999999, INT64_MAX};
    size_t n = sizeof ts / sizeof ts[0];
    mt_val v[sizeof ts / sizeof ts[0]];
    const uint8_t *chunk;
    size_t len;
    for (int t = MT_VT_FLOAT; t <= MT_VT_BOOL; t++) {
        for (size_t i = 0; i < n; i++)
            v[i].u = t == MT_VT_BOOL    ? i % 2
                     : t == MT_VT_FLOAT ? dbits_of((double)i / 3 - 1)
                                        : (uint64_t)INT64_MAX - i * 12345678901ull; /* > 2^53 */
        mt_points p = pts_of((mt_vtype)t, ts, v, n);
        cr_assert_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_OK);
        for (int e = 0; e <= MT_F64_MAX_UNIT_E; e++) expect_f64(chunk, len, &p, e);
        /* regular stamps of whole seconds, in every unit from ns to s: no division needed */
        int64_t *rt = regular_ts(n);
        p.ts = rt;
        cr_assert_eq(mt_encoder_encode(fx.enc, &p, &chunk, &len), MT_OK);
        for (int e = 0; e <= MT_F64_MAX_UNIT_E; e++) expect_f64(chunk, len, &p, e);
        free(rt);
    }
    mt_points out;
    bool rep;
    cr_assert_eq(mt_decoder_decode_f64(fx.dec, chunk, len, MT_F64_MAX_UNIT_E + 1, &out, &rep),
                 MT_EINVAL);
    cr_assert_eq(mt_decoder_decode_f64(fx.dec, chunk, len, -1, &out, &rep), MT_EINVAL);
    cr_assert_eq(out.n, 0);
    /* and the conversion of points at hand, in place */
    int64_t t2[] = {-1, 0, 1500000, 1999999, 2000000};
    mt_val v2[] = {{.i = -3}, {.i = 0}, {.i = 1}, {.i = INT64_MIN}, {.i = 7}};
    mt_points p2 = pts_of(MT_VT_INT, t2, v2, 5);
    cr_assert(mt_points_to_f64(&p2, 6, t2, v2), "1500000 and 1999999 share ms 1");
    const int64_t want_t[] = {-1, 0, 1, 1, 2};
    for (size_t i = 0; i < 5; i++) cr_assert_eq(t2[i], want_t[i], "ts %zu", i);
    cr_assert_eq(v2[0].f, -3.0);
    cr_assert_eq(v2[3].f, (double)INT64_MIN);
}
