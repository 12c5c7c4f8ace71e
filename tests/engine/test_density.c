/*
 * test_density.c — the bytes that issue 23 took out of the hour files, and
 * that nothing was lost with them: timestamps stored in units of 10^k,
 * the version 2 chunk header, near-decimal summaries in the version 3
 * footer. Every value comes back bit for bit.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_codec.h"
#include "mt_engine_int.h"
#include "test_util.h"

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double of_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Encode and decode; every stamp and value must come back. Returns the chunk's length. */
static size_t round_trip(mt_encoder *enc, mt_decoder *dec, const int64_t *ts, const mt_val *v,
                         size_t n)
{
    mt_points in = {.type = MT_VT_FLOAT, .n = n, .ts = ts, .vals = v}, out;
    const uint8_t *chunk;
    size_t len;
    cr_assert_eq(mt_encoder_encode(enc, &in, &chunk, &len), MT_OK);
    cr_assert_eq(chunk[2], 2, "written as version 2");
    cr_assert_eq(mt_decoder_decode(dec, chunk, len, &out), MT_OK);
    cr_assert_eq(out.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(out.ts[i], ts[i], "stamp %zu of %zu: %lld != %lld", i, n, (long long)out.ts[i],
                     (long long)ts[i]);
        cr_assert_eq(out.vals[i].u, v[i].u, "value %zu", i);
    }
    return len;
}

Test(density, stamps_in_units_of_every_power_of_ten_round_trip)
{
    mt_encoder *enc;
    mt_decoder *dec;
    cr_assert_eq(mt_encoder_new(0, &enc), MT_OK);
    cr_assert_eq(mt_decoder_new(&dec), MT_OK);
    enum { N = 200 };
    int64_t ts[N];
    mt_val v[N];
    for (size_t i = 0; i < N; i++) v[i].f = (double)(i % 7) / 4;
    int64_t u = 1;
    for (int k = 0; k <= 18; k++, u = k <= 18 ? u * 10 : u) {
        /* starts anywhere 2N steps of u fit: negative, zero, near both ends of int64 */
        int64_t starts[5] = {0, -u * 7, u * 3};
        size_t nstarts = 3, n = N;
        if (INT64_MAX / u > 4 * N) {
            starts[nstarts++] = INT64_MIN / u * u + u;
            starts[nstarts++] = (INT64_MAX / u - 3 * N) * u;
        }
        if ((uint64_t)(INT64_MAX / u / 4) < n) n = (size_t)(INT64_MAX / u / 4); /* steps fit */
        for (size_t s = 0; s < nstarts; s++) {
            for (int irregular = 0; irregular < 2; irregular++) {
                int64_t t = starts[s];
                for (size_t i = 0; i < n; i++) {
                    ts[i] = t;
                    if (i + 1 < n) t += (irregular ? (int64_t)(1 + next_rand() % 2) : 1) * u;
                }
                round_trip(enc, dec, ts, v, n);
            }
        }
    }
    mt_encoder_free(enc);
    mt_decoder_free(dec);
}

Test(density, a_regular_nanosecond_hour_stores_its_stamps_in_a_few_bytes)
{
    mt_encoder *enc;
    mt_decoder *dec;
    cr_assert_eq(mt_encoder_new(0, &enc), MT_OK);
    cr_assert_eq(mt_decoder_new(&dec), MT_OK);
    enum { N = 360 };
    int64_t ts[N];
    mt_val v[N];
    int64_t m = 5000;
    for (size_t i = 0; i < N; i++) {
        m += (int64_t)(next_rand() % 201) - 100;
        v[i].f = (double)m / 100;
        ts[i] = 1796400000000000000 + (int64_t)i * 10000000000;
    }
    size_t scaled = round_trip(enc, dec, ts, v, N);
    for (size_t i = 0; i < N; i++) ts[i] += 1; /* no longer a multiple of 10: k = 0 */
    size_t unscaled = round_trip(enc, dec, ts, v, N);
    /* zigzagged, 1796400000e9 + 1 and 10e9 take 9 + 5 bytes; 179640000 and 1 take 5 + 1 */
    cr_expect_eq(unscaled - scaled, 8, "%zu bytes against %zu", scaled, unscaled);
    mt_encoder_free(enc);
    mt_decoder_free(dec);
}

Test(density, near_decimals_give_back_every_bit_pattern)
{
    size_t accepted = 0;
    for (int i = 0; i < 1000000; i++) {
        uint64_t u = next_rand();
        if (i % 4 == 1) u &= 0x800FFFFFFFFFFFFFull; /* subnormals and zeros */
        if (i % 4 == 2) u = bits_of((double)(int64_t)(u % 2000001 - 1000000) / 1000);
        int e = (int)(next_rand() % (MT_DECIMAL_MAX_E + 1));
        if (i % 4 == 2 && e < 3) e = 3; /* the decimal's own digits */
        int64_t m, c;
        double d = of_bits(u);
        if (!mt_decimal_near(d, e, &m, &c)) {
            cr_assert(i % 4 != 2, "a decimal is always near one: %.17g at e %d", d, e);
            continue;
        }
        accepted++;
        cr_assert_eq(bits_of(mt_decimal_near_value(m, e, c)), u, "%016llx at e %d",
                     (unsigned long long)u, e);
    }
    cr_expect_gt(accepted, 250000, "accepted %zu", accepted);
    /* A running sum of decimals is a decimal but for a few units of rounding. */
    double sum = 0;
    int64_t exact = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t x = (int64_t)(next_rand() % 10001);
        exact += x;
        sum += (double)x / 100;
        int64_t m, c;
        cr_assert(mt_decimal_near(sum, 2, &m, &c));
        cr_assert_eq(m, exact, "the integer is the exact sum");
        cr_assert(llabs(c) < 1024, "a small correction: %lld", (long long)c);
        cr_assert_eq(bits_of(mt_decimal_near_value(m, 2, c)), bits_of(sum));
    }
    int64_t m, c;
    cr_assert(mt_decimal_near(-0.0, 0, &m, &c));
    cr_expect_eq(m, 0);
    cr_expect_eq(c, -1, "-0.0 is the pattern just below +0.0");
    cr_expect(signbit(mt_decimal_near_value(m, 0, c)));
    cr_expect(!mt_decimal_near(INFINITY, 0, &m, &c));
    cr_expect(!mt_decimal_near(NAN, 3, &m, &c));
}

/* ---- the version 3 footer ---------------------------------------------------------------- */

static char dir[] = "/tmp/mt_density.XXXXXX";

Test(density, footer_summaries_and_times_come_back_bit_for_bit)
{
    cr_assert(mkdtemp(dir));
    const int64_t hour = 499000;
    const int64_t start = hour * MT_HOUR_NS;
    const double awkward[][5] = {
        /* sum, min, max, first, last */
        {1234.5600000000002, 0.01, 99.99, 50.5, 12.25}, /* a rounded sum of decimals */
        {-0.0, -0.0, -0.0, -0.0, -0.0},
        {0.1 + 0.2, 0.1, 0.2, 0.2, 0.1},
        {1e300, 5e-324, 1e300, 1e-300, 3.0},                      /* no decimal: raw */
        {9007199254740993.0, -1.0, 9007199254740992.0, 1.0, 2.0}, /* beyond 2^53 */
        {1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3},
        {123456789.123, 1e-15, 0.000000000000123, 1e-15, 1e-15},
        {INFINITY, -INFINITY, INFINITY, 1.0, 1.0},
        {-5e15, -1e15, -1e15, -1e15, -1e15},
    };
    const size_t n = sizeof awkward / sizeof awkward[0];
    /* times: every power of ten, an odd nanosecond, the hour's last nanosecond */
    const int64_t offs[][2] = {{0, 0},
                               {10000000000, 3580000000000},
                               {1, 2},
                               {MT_HOUR_NS - 1, 0},
                               {1000, MT_HOUR_NS - 1001},
                               {3000000000000, 590000000000},
                               {7, 13},
                               {0, MT_HOUR_NS - 1},
                               {123456789, 1}};
    mt_hf_writer *w;
    cr_assert_eq(mt_hf_begin(dir, hour, 1, &w), MT_OK);
    const uint8_t chunk[3] = {1, 2, 3};
    for (size_t i = 0; i < n + 1; i++) {
        mt_hf_entry e = {.id = (uint32_t)(i + 1) * 3,
                         .type = i == n ? MT_VT_STRING : MT_VT_FLOAT,
                         .count = (uint32_t)i + 1,
                         .min_ts = start + offs[i % n][0],
                         .max_ts = start + offs[i % n][0] + offs[i % n][1]};
        if (i < n) {
            e.sum = awkward[i][0], e.min = awkward[i][1], e.max = awkward[i][2];
            e.first = awkward[i][3], e.last = awkward[i][4];
        }
        char key[16];
        int kl = snprintf(key, sizeof key, "k%zu", i);
        cr_assert_eq(mt_hf_add(w, &e, chunk, sizeof chunk, key, (size_t)kl), MT_OK);
    }
    uint64_t bytes;
    cr_assert_eq(mt_hf_commit(w, &bytes), MT_OK);
    char path[256];
    mt_hf_path(path, sizeof path, dir, hour, 1);
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0);
    uint8_t version;
    cr_assert_eq(pread(fd, &version, 1, 4), 1);
    cr_expect_eq(version, 3);
    mt_hf_index ix;
    int rc = mt_hf_read_index(fd, hour, &ix);
    cr_assert_eq(rc, MT_OK, "%s", mt_strerror(rc));
    cr_assert_eq(ix.n, n + 1);
    for (size_t i = 0; i < n + 1; i++) {
        const mt_hf_entry *e = &ix.e[i];
        cr_expect_eq(e->id, (i + 1) * 3);
        cr_expect_eq(e->count, i + 1);
        cr_expect_eq(e->len, 3);
        cr_expect_eq(e->min_ts, start + offs[i % n][0], "entry %zu", i);
        cr_expect_eq(e->max_ts, start + offs[i % n][0] + offs[i % n][1], "entry %zu", i);
        if (i == n) continue;
        const double got[5] = {e->sum, e->min, e->max, e->first, e->last};
        for (int k = 0; k < 5; k++)
            cr_expect_eq(bits_of(got[k]), bits_of(awkward[i][k]),
                         "entry %zu summary %d: %.17g != %.17g", i, k, got[k], awkward[i][k]);
    }
    mt_hf_index_free(&ix);
    close(fd);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
