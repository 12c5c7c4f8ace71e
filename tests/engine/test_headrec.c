/*
 * test_headrec.c — the head log's records (mt_head.c, docs/format.md):
 * version 2 gives back every point bit for bit (decimal and other floats,
 * ids that go down as well as up, every type), version 1 records of an
 * older data directory still replay, a damaged float tag is refused, and
 * agents' decimals take fewer bytes than version 1's 8 a float.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_hash.h"
#include "test_util.h"

#define NPTS 4096

/* The points a test records, and what replay gave back. */
typedef struct pts {
    uint32_t id[NPTS];
    int64_t ts[NPTS];
    mt_val v[NPTS];
    mt_vtype type[NPTS];
    size_t n, at;
} pts;

static pts in;

static mt_vtype type_of(void *ud, uint32_t id)
{
    (void)ud;
    for (size_t i = 0; i < in.n; i++)
        if (in.id[i] == id) return in.type[i];
    cr_assert_fail("id %u was never recorded", id);
    return MT_VT_FLOAT;
}

static int same(void *ud, const mt_rec_point *p)
{
    (void)ud;
    cr_assert_lt(in.at, in.n, "more points than recorded");
    size_t i = in.at++;
    cr_assert_eq(p->id, in.id[i], "point %zu: id", i);
    cr_assert_eq(p->ts, in.ts[i], "point %zu: ts", i);
    if (in.type[i] == MT_VT_STRING) {
        cr_assert_eq(p->v.u, 3);
        cr_assert(memcmp(p->str, "abc", 3) == 0);
    } else {
        cr_assert_eq(p->v.u, in.v[i].u, "point %zu: %016llx != %016llx", i,
                     (unsigned long long)p->v.u, (unsigned long long)in.v[i].u);
    }
    return 0;
}

static void add(uint32_t id, int64_t ts, mt_vtype t, mt_val v)
{
    cr_assert_lt(in.n, NPTS);
    in.id[in.n] = id, in.ts[in.n] = ts, in.type[in.n] = t, in.v[in.n] = v;
    in.n++;
}

/* Record in's points, replay them; the record's bytes into *len. */
static void round_trip(size_t *len)
{
    mt_recbuf r = {0};
    mt_rec_reset(&r);
    for (size_t i = 0; i < in.n; i++)
        cr_assert_eq(mt_rec_add(&r, in.id[i], in.ts[i], in.type[i], in.v[i], "abc"), MT_OK);
    cr_assert_eq(mt_rec_finish(&r), MT_OK);
    cr_assert_eq(r.out[0], 2, "version 2 is written");
    in.at = 0;
    cr_assert_eq(mt_rec_replay(r.out, r.out_len, type_of, same, NULL), MT_OK);
    cr_assert_eq(in.at, in.n);
    if (len) *len = r.out_len;
    mt_rec_free(&r);
}

static mt_val f64(double d)
{
    mt_val v;
    v.f = d;
    return v;
}

Test(headrec, every_value_comes_back_bit_for_bit)
{
    memset(&in, 0, sizeof in);
    uint64_t seed = mt_test_seed();
    /* floats: decimals of every scale, then what is no decimal at all */
    const double odd[] = {0.0,
                          -0.0,
                          NAN,
                          -NAN,
                          INFINITY,
                          -INFINITY,
                          0.1 + 0.2,
                          1.0 / 3,
                          5e-324,
                          DBL_MAX,
                          -DBL_MIN,
                          1e300,
                          123456.789,
                          -72.47,
                          9007199254740993.0,
                          4503599627370497.5,
                          1e-15,
                          15.46};
    int64_t ts = -1000;
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++)
        add(7, ts += 10, MT_VT_FLOAT, f64(odd[i]));
    for (int e = 0; e <= MT_DECIMAL_MAX_E; e++)
        for (int k = 0; k < 20; k++) {
            double m = (double)(int64_t)(mt_test_rand(&seed) % 2000000) - 1000000;
            add(7, ts += 10, MT_VT_FLOAT, f64(m / pow(10, e)));
        }
    for (int k = 0; k < 500; k++) {
        mt_val v = {.u = mt_test_rand(&seed)};
        add(7, ts += 10, MT_VT_FLOAT, v);
    }
    /* ids up, down and at the ends; the other types beside */
    const uint32_t ids[] = {1, UINT32_MAX, 2, 3, 1000, 999, UINT32_MAX - 1, 1};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        mt_vtype t = (mt_vtype)(i % MT_VT_COUNT);
        if (t == MT_VT_FLOAT) t = MT_VT_INT;
        mt_val v = {.u = t == MT_VT_BOOL ? i & 1 : t == MT_VT_STRING ? 3 : mt_test_rand(&seed)};
        /* one type an id, as the index gives a series one: id 1 twice, a uint both times */
        uint32_t id = ids[i];
        if (id == 1) t = MT_VT_UINT, v.u = mt_test_rand(&seed);
        add(id, ts += (int64_t)(mt_test_rand(&seed) % 2000) - 1000, t, v);
    }
    add(5, INT64_MAX, MT_VT_FLOAT, f64(1.5));
    add(5, INT64_MIN, MT_VT_FLOAT, f64(-1.5));
    round_trip(NULL);
}

Test(headrec, agents_decimals_take_fewer_bytes_than_version_1)
{
    memset(&in, 0, sizeof in);
    uint64_t seed = mt_test_seed();
    int64_t ts = 1735689600000000000;
    /* a cpu line's fields: 10 series made one after another, values with 2 decimals */
    for (int line = 0; line < 300; line++, ts += 10000000000)
        for (uint32_t f = 0; f < 10; f++)
            add(100 + f, ts, MT_VT_FLOAT, f64((double)(mt_test_rand(&seed) % 10000) / 100));
    size_t len;
    round_trip(&len);
    /* version 1 spent 8 bytes a value before zstd, which finds little in random digits */
    cr_assert_lt(len, in.n * 5, "%zu bytes for %zu points", len, in.n);
    cr_log_info("version 2: %.2f bytes a point", (double)len / (double)in.n);
}

/* A stored record of version ver around the raw body raw[0..n). */
static uint8_t *stored(int ver, const uint8_t *raw, size_t n, size_t *len)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *rec = malloc(9 + bound);
    size_t zn = ZSTD_compress(rec + 9, bound, raw, n, 1);
    cr_assert(!ZSTD_isError(zn));
    rec[0] = (uint8_t)ver;
    mt_put_le(rec + 1, n, 4);
    mt_put_le(rec + 5, (uint32_t)mt_hash64(rec + 9, zn), 4);
    *len = 9 + zn;
    return rec;
}

Test(headrec, version_1_records_still_replay)
{
    memset(&in, 0, sizeof in);
    add(300, 1000, MT_VT_FLOAT, f64(15.46));
    add(301, 1000, MT_VT_INT, (mt_val){.i = -42});
    add(300, 2000, MT_VT_FLOAT, f64(0.1 + 0.2));
    /* version 1: uvarint id, svarint ts delta, a float's 8 bytes */
    uint8_t raw[64];
    size_t n = 0;
    n += mt_put_uvarint(raw + n, 3);
    for (size_t i = 0; i < in.n; i++) {
        n += mt_put_uvarint(raw + n, in.id[i]);
        n += mt_put_uvarint(raw + n, mt_zigzag(in.ts[i] - (i ? in.ts[i - 1] : 0)));
        if (in.type[i] == MT_VT_FLOAT) {
            mt_put_le(raw + n, in.v[i].u, 8);
            n += 8;
        } else {
            n += mt_put_uvarint(raw + n, mt_zigzag(in.v[i].i));
        }
    }
    size_t len;
    uint8_t *rec = stored(1, raw, n, &len);
    in.at = 0;
    cr_assert_eq(mt_rec_replay(rec, len, type_of, same, NULL), MT_OK);
    cr_assert_eq(in.at, 3);
    free(rec);
    /* the same body read as version 2 is not those points: the version byte decides */
    rec = stored(9, raw, n, &len);
    cr_assert_eq(mt_rec_replay(rec, len, type_of, same, NULL), MT_EFORMAT);
    free(rec);
}

Test(headrec, a_damaged_float_tag_or_id_is_refused)
{
    memset(&in, 0, sizeof in);
    add(300, 1000, MT_VT_FLOAT, f64(1.5));
    const uint64_t bad_tags[] = {17, 31, 16 | 32}; /* an unknown kind; a raw tag with bits above */
    for (size_t k = 0; k < sizeof bad_tags / sizeof *bad_tags; k++) {
        uint8_t raw[64];
        size_t n = 0;
        n += mt_put_uvarint(raw + n, 1);
        n += mt_put_uvarint(raw + n, mt_zigzag(300));
        n += mt_put_uvarint(raw + n, mt_zigzag(1000));
        n += mt_put_uvarint(raw + n, bad_tags[k]);
        memset(raw + n, 0, 8);
        n += 8;
        size_t len;
        uint8_t *rec = stored(2, raw, n, &len);
        in.at = 0;
        cr_assert_eq(mt_rec_replay(rec, len, type_of, same, NULL), MT_ECORRUPT, "tag %llu",
                     (unsigned long long)bad_tags[k]);
        free(rec);
    }
    /* an id delta that leaves 1..2^32-1 */
    const int64_t bad_ids[] = {0, -5, (int64_t)UINT32_MAX + 1};
    for (size_t k = 0; k < sizeof bad_ids / sizeof *bad_ids; k++) {
        uint8_t raw[64];
        size_t n = 0;
        n += mt_put_uvarint(raw + n, 1);
        n += mt_put_uvarint(raw + n, mt_zigzag(bad_ids[k]));
        n += mt_put_uvarint(raw + n, mt_zigzag(1000));
        n += mt_put_uvarint(raw + n, mt_zigzag(15) << 5 | 1);
        size_t len;
        uint8_t *rec = stored(2, raw, n, &len);
        cr_assert_eq(mt_rec_replay(rec, len, type_of, same, NULL), MT_ECORRUPT, "id %lld",
                     (long long)bad_ids[k]);
        free(rec);
    }
}
