/*
 * mt_codec.c — the chunk codec (contract in mt_codec.h, header layout in
 * mt_format.h).
 *
 * A chunk body is a byte stream:
 *
 *   u8 type, uvarint n
 *   timestamps  u8 mode | k << 1, then in units of 10^k: svarint ts0,
 *               svarint (ts1 - ts0); mode 0: every step is that one
 *               (regular scrapes: nothing more); mode 1: a Rice block of the
 *               zigzagged deltas-of-deltas. k (0..18) is the largest power
 *               of ten that divides ts0 and every step: nanosecond stamps
 *               of whole seconds every 10 s store ts0 in 5 bytes and the
 *               step as 1 (version 1 chunks always have k = 0).
 *   values      by type:
 *     int, uint   the integer stream below, on the 64-bit patterns with
 *                 wrapping arithmetic (so uint64 needs nothing special)
 *     float       u8 mode.
 *                 mode 0, decimal scaling: most metrics are decimals with
 *                 few digits, so v = m / 10^e exactly for a small e and an
 *                 integer |m| < 2^53 (12.34 -> 1234, e = 2). u8 e; uvarint
 *                 count of exceptions; each exception as uvarint index gap
 *                 and its 8 raw bytes; then the integer stream of the m
 *                 (an exception repeats the previous m to keep steps
 *                 small). A value is taken only if m / 10^e gives back its
 *                 exact bits, so -0.0, NaN payloads, subnormals and
 *                 1/3-like values become exceptions and still round-trip.
 *                 This is the idea of VictoriaMetrics and ALP, which beat
 *                 Gorilla's XOR on such data.
 *                 mode 1, XOR: when more than 1/8 of the values would be
 *                 exceptions, each value's bits XOR the previous value's,
 *                 8 bytes little-endian, left to zstd.
 *     bool        n bits, least significant first
 *     string      per value: uvarint length, bytes
 *
 *   integer stream: u8 mode (0 delta, 1 delta-of-delta), uvarint g, svarint
 *   v0, then a Rice block (mt_rice.h) of the zigzagged delta / g per value,
 *   or svarint (d1 / g) and a Rice block of the zigzagged
 *   delta-of-delta / g. g is the gcd of the deltas (memory in pages,
 *   counters of sectors); the mode whose Rice block is smaller wins
 *   (counters that grow at a steady rate favour delta-of-delta).
 *
 *   svarint = zigzag then LEB128 uvarint.
 *
 * The body is then compressed with zstd when that saves at least 1/16 of
 * it (strings, XOR floats, constant runs); Rice bits are already close to
 * the entropy of random-walk steps, so most numeric chunks are stored as
 * they are and decode without zstd.
 *
 * Worked example, cpu usage 12.5, 12.75, 12.5 at t = 1000, 1010, 1020 s:
 *   ts: mode 0, k = 10, 100, step 1. values: mode 0, e = 2, no exceptions,
 *   integer stream of 1250, 1275, 1250: delta mode, g = 25, v0 = 1250,
 *   then a Rice block of mt_zigzag(+1), mt_zigzag(-1) = 2, 1 at k = 0:
 *   bits 110 10 -> one byte 0x0B.
 *
 * Decoding checks every length and count against the bytes that remain,
 * so hostile input fails with MT_ECORRUPT instead of reading past the end.
 */
#include "mt_codec.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mt_buf.h"
#include "mt_format.h"
#include "mt_hash.h"
#include "mt_rice.h"
#include "mt_zstd.h"

#define DEFAULT_LEVEL 9
#define HEADER_MAX    (4 + 10 + 10 + 4) /* magic, version, flags; n; body length; checksum */
#define MAX_DECIMAL_E MT_DECIMAL_MAX_E

#define MT_TS_MAX_K 18 /* 10^18 is the largest power of ten in an int64 */

static const double pow10_exact[MAX_DECIMAL_E + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

const char *mt_vtype_name(mt_vtype t)
{
    static const char *const names[MT_VT_COUNT] = {"float", "integer", "unsigned", "boolean",
                                                   "string"};
    return (unsigned)t < MT_VT_COUNT ? names[t] : "unknown";
}

/* ---- byte buffers ------------------------------------------------------- */

typedef struct buf {
    uint8_t *data;
    size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t more)
{
    if (b->cap - b->len >= more) return MT_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more) cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return MT_OK;
}

/* Writers assume buf_reserve made room (callers reserve the worst case). */
static void put_u8(buf *b, uint8_t v)
{
    b->data[b->len++] = v;
}

static void put_uvarint(buf *b, uint64_t v)
{
    b->len += mt_put_uvarint(b->data + b->len, v);
}

static void put_svarint(buf *b, int64_t v)
{
    put_uvarint(b, mt_zigzag(v));
}

static void put_u64le(buf *b, uint64_t v)
{
    mt_put_le(b->data + b->len, v, 8);
    b->len += 8;
}

/* ---- integer stream ------------------------------------------------------ */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Worst-case bytes of an integer stream of n values. */
static size_t int_stream_bound(size_t n)
{
    return 1 + 10 + 10 + 10 + mt_rice_bound(n);
}

/*
 * Encode n 64-bit patterns v (wrapping arithmetic). dz and ddz are
 * scratch for n values each.
 */
static void put_int_stream(buf *b, const uint64_t *v, size_t n, uint64_t *dz, uint64_t *ddz)
{
    uint64_t g = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)(v[i] - v[i - 1]);
        g = gcd64(g, d < 0 ? 0 - (uint64_t)d : (uint64_t)d);
    }
    if (g == 0 || g > (uint64_t)INT64_MAX) g = 1;
    const int64_t gs = (int64_t)g;
    /* delta-of-delta is only allowed when no step overflows */
    bool dod_ok = true;
    int64_t q1 = 0, prev_q = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t q = (int64_t)(v[i] - v[i - 1]) / gs, dd = 0;
        dz[i - 1] = mt_zigzag(q);
        if (i == 1)
            q1 = q;
        else if (__builtin_sub_overflow(q, prev_q, &dd))
            dod_ok = false;
        else
            ddz[i - 2] = mt_zigzag(dd);
        prev_q = q;
    }
    bool dod =
        n > 2 && dod_ok &&
        mt_rice_cost(ddz, n - 2) + 8 * mt_uvarint_size(mt_zigzag(q1)) < mt_rice_cost(dz, n - 1);
    put_u8(b, dod ? 1 : 0);
    put_uvarint(b, g);
    put_svarint(b, (int64_t)v[0]);
    if (n < 2) return;
    if (dod) {
        put_svarint(b, q1);
        b->len += mt_rice_encode(ddz, n - 2, b->data + b->len);
    } else {
        b->len += mt_rice_encode(dz, n - 1, b->data + b->len);
    }
}

static int get_rice(mt_rd *r, uint64_t *z, size_t n)
{
    size_t used;
    if (mt_rice_decode(r->p, (size_t)(r->end - r->p), z, n, &used)) return MT_ECORRUPT;
    r->p += used;
    return MT_OK;
}

/* What an integer stream becomes: the integers, or doubles as C converts them from int64 or
   uint64 (PromQL's samples, converted in the same pass) */
enum { AS_BITS, AS_INT_DOUBLE, AS_UINT_DOUBLE };

static inline void store_as(mt_val *v, uint64_t x, int as)
{
    if (as == AS_BITS)
        v->u = x;
    else if (as == AS_INT_DOUBLE)
        v->f = (double)(int64_t)x;
    else
        v->f = (double)x;
}

/*
 * The values from the zigzagged Rice values already in vals: steps of delta / g from 1 on, or
 * (dod) the first step q1 and deltas-of-deltas from 2 on. Inlined with a constant `as`, so each
 * caller gets its own loop.
 */
static inline __attribute__((always_inline)) void
prefix_sums(mt_val *vals, size_t n, uint64_t x, bool dod, uint64_t q, uint64_t g, int as)
{
    store_as(&vals[0], x, as);
    if (n < 2) return;
    if (dod) {
        store_as(&vals[1], x += q * g, as);
        for (size_t i = 2; i < n; i++) {
            q += (uint64_t)mt_unzigzag(vals[i].u);
            store_as(&vals[i], x += q * g, as);
        }
        return;
    }
    for (size_t i = 1; i < n; i++)
        store_as(&vals[i], x += (uint64_t)mt_unzigzag(vals[i].u) * g, as);
}

static int get_int_stream_as(mt_rd *r, mt_val *vals, size_t n, int as)
{
    uint8_t mode;
    uint64_t g;
    int64_t first, q1 = 0;
    if (mt_rd_u8(r, &mode) || mode > 1 || mt_rd_uvarint(r, &g) || g == 0 ||
        g > (uint64_t)INT64_MAX || mt_rd_svarint(r, &first))
        return MT_ECORRUPT;
    bool dod = mode == 1 && n >= 2;
    if (dod && (n < 3 || mt_rd_svarint(r, &q1))) return MT_ECORRUPT;
    /* the Rice values land where their values go, then become them in place */
    size_t skip = dod ? 2 : 1;
    if (n > skip && get_rice(r, &vals[skip].u, n - skip)) return MT_ECORRUPT;
    switch (as) {
    case AS_INT_DOUBLE:
        prefix_sums(vals, n, (uint64_t)first, dod, (uint64_t)q1, g, AS_INT_DOUBLE);
        break;
    case AS_UINT_DOUBLE:
        prefix_sums(vals, n, (uint64_t)first, dod, (uint64_t)q1, g, AS_UINT_DOUBLE);
        break;
    default: prefix_sums(vals, n, (uint64_t)first, dod, (uint64_t)q1, g, AS_BITS); break;
    }
    return MT_OK;
}

/* ---- floats -------------------------------------------------------------- */

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

bool mt_decimal_at(double v, int e, int64_t *m)
{
    assert(e >= 0 && e <= MAX_DECIMAL_E);
    double s = v * pow10_exact[e];
    if (!(fabs(s) < 9007199254740992.0)) return false; /* also rejects NaN, Inf */
    int64_t c = (int64_t)llrint(s);
    if (dbits(mt_decimal_value(c, e)) != dbits(v)) return false;
    *m = c;
    return true;
}

double mt_decimal_value(int64_t m, int e)
{
    assert(e >= 0 && e <= MAX_DECIMAL_E);
    return (double)m / pow10_exact[e];
}

/* Bit patterns in the order of the doubles they hold; -0.0 is -1, +0.0 is 0. */
static int64_t ordered(uint64_t u)
{
    return u >> 63 ? -(int64_t)(u & INT64_MAX) - 1 : (int64_t)u;
}

static uint64_t unordered(int64_t o)
{
    return o < 0 ? (uint64_t)(-(o + 1)) | 1ull << 63 : (uint64_t)o;
}

bool mt_decimal_near(double v, int e, int64_t *m, int64_t *c)
{
    assert(e >= 0 && e <= MAX_DECIMAL_E);
    double s = v * pow10_exact[e];
    if (!(fabs(s) < 4611686018427387904.0)) return false; /* 2^62; also NaN, Inf */
    int64_t mm = (int64_t)llrint(s);
    int64_t cc;
    if (__builtin_sub_overflow(ordered(dbits(v)), ordered(dbits(mt_decimal_value(mm, e))), &cc) ||
        cc > (int64_t)1 << 32 || cc < -((int64_t)1 << 32))
        return false;
    *m = mm;
    *c = cc;
    return true;
}

double mt_decimal_near_value(int64_t m, int e, int64_t c)
{
    uint64_t u =
        unordered((int64_t)((uint64_t)ordered(dbits(mt_decimal_value(m, e))) + (uint64_t)c));
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/*
 * The smallest exponent at which the values are exact decimals, ignoring
 * the odd value that is exact at none; -1 when more than 1/8 are such.
 */
static int choose_exponent(const mt_val *vals, size_t n)
{
    int e = 0;
    size_t misfits = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t m;
        int k = e;
        while (k <= MAX_DECIMAL_E && !mt_decimal_at(vals[i].f, k, &m)) k++;
        if (k <= MAX_DECIMAL_E)
            e = k;
        else if (++misfits > n / 8)
            return -1;
    }
    return e;
}

/* scratch: room for 3n values */
static int put_floats(buf *b, const mt_val *vals, size_t n, uint64_t *scratch)
{
    int e = choose_exponent(vals, n);
    size_t nexc = 0;
    int64_t prev = 0;
    for (size_t i = 0; e >= 0 && i < n; i++) {
        int64_t m;
        if (mt_decimal_at(vals[i].f, e, &m))
            prev = m;
        else
            nexc++;
        scratch[i] = (uint64_t)prev;
    }
    if (e < 0 || nexc > n / 8) {
        put_u8(b, 1);
        uint64_t last = 0;
        for (size_t i = 0; i < n; i++) {
            put_u64le(b, vals[i].u ^ last);
            last = vals[i].u;
        }
        return MT_OK;
    }
    put_u8(b, 0);
    put_u8(b, (uint8_t)e);
    put_uvarint(b, nexc);
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t m;
        if (mt_decimal_at(vals[i].f, e, &m)) continue;
        put_uvarint(b, i - last);
        put_u64le(b, vals[i].u);
        last = i;
    }
    put_int_stream(b, scratch, n, scratch + n, scratch + 2 * n);
    return MT_OK;
}

static int get_floats(mt_rd *r, mt_val *vals, size_t n)
{
    uint8_t mode;
    if (mt_rd_u8(r, &mode) || mode > 1) return MT_ECORRUPT;
    if (mode == 1) {
        if ((size_t)(r->end - r->p) / 8 < n) return MT_ECORRUPT;
        uint64_t last = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t x;
            mt_rd_u64le(r, &x);
            vals[i].u = last ^= x;
        }
        return MT_OK;
    }
    uint8_t e;
    uint64_t nexc;
    if (mt_rd_u8(r, &e) || e > MAX_DECIMAL_E || mt_rd_uvarint(r, &nexc) || nexc > n ||
        (size_t)(r->end - r->p) / 9 < nexc)
        return MT_ECORRUPT;
    /* Exceptions are read first but applied after the stream: remember where they are. */
    mt_rd exc = *r;
    for (uint64_t k = 0; k < nexc; k++) {
        uint64_t gap, bits;
        if (mt_rd_uvarint(r, &gap) || mt_rd_u64le(r, &bits)) return MT_ECORRUPT;
    }
    if (get_int_stream_as(r, vals, n, AS_BITS)) return MT_ECORRUPT;
    const double scale = pow10_exact[e]; /* mt_decimal_value, without a call per point */
    size_t i = 0;
#if defined(__SSE2__)
    /* two divisions at once: divpd rounds each lane as divsd does (the same bits), at about
       the throughput of one; the divider bounds this loop */
    const __m128d s2 = _mm_set1_pd(scale);
    for (; i + 2 <= n; i += 2) {
        __m128d m = _mm_set_pd((double)(int64_t)vals[i + 1].u, (double)(int64_t)vals[i].u);
        _mm_storeu_pd(&vals[i].f, _mm_div_pd(m, s2));
    }
#endif
    for (; i < n; i++) vals[i].f = (double)(int64_t)vals[i].u / scale;
    size_t idx = 0;
    for (uint64_t k = 0; k < nexc; k++) {
        uint64_t gap, bits;
        mt_rd_uvarint(&exc, &gap);
        mt_rd_u64le(&exc, &bits);
        if (gap > n || (k > 0 && gap == 0) || (idx += gap) >= n) return MT_ECORRUPT;
        vals[idx].u = bits;
    }
    return MT_OK;
}

/*
 * The largest k (at most MT_TS_MAX_K) such that 10^k divides the first
 * timestamp and every step that is stored: stamps of a second's precision
 * in nanoseconds lose nine zero digits, and a 10 s step becomes 1. Steps
 * are taken with wrapping arithmetic, as they are stored.
 */
static unsigned ts_scale(const int64_t *ts, size_t n, bool regular)
{
    uint64_t g = ts[0] < 0 ? 0 - (uint64_t)ts[0] : (uint64_t)ts[0];
    for (size_t i = 1; i < n && g != 1; i++) {
        int64_t d = (int64_t)((uint64_t)ts[i] - (uint64_t)ts[i - 1]);
        g = gcd64(g, d < 0 ? 0 - (uint64_t)d : (uint64_t)d);
        if (regular) break; /* every later step is this one */
    }
    unsigned k = 0;
    while (k < MT_TS_MAX_K && g % mt_pow10[k + 1] == 0) k++;
    return k;
}

/* ---- body ---------------------------------------------------------------- */

static int check_points(const mt_points *p)
{
    if (p->n == 0 || p->n > MT_CODEC_MAX_POINTS || (unsigned)p->type >= MT_VT_COUNT)
        return MT_EINVAL;
    for (size_t i = 1; i < p->n; i++)
        if (p->ts[i] <= p->ts[i - 1]) return MT_EINVAL;
    if (p->type == MT_VT_BOOL) {
        for (size_t i = 0; i < p->n; i++)
            if (p->vals[i].u > 1) return MT_EINVAL;
    }
    if (p->type == MT_VT_STRING) {
        for (size_t i = 0; i < p->n; i++) {
            size_t off = MT_VAL_STR_OFF(p->vals[i]), len = MT_VAL_STR_LEN(p->vals[i]);
            if (off > p->strs_len || len > p->strs_len - off) return MT_EINVAL;
        }
    }
    return MT_OK;
}

static int encode_body(buf *b, const mt_points *p, uint64_t *scratch)
{
    size_t n = p->n;
    /* header, timestamps, then the worst value encoding: an exception per value */
    size_t bound = 64 + mt_rice_bound(n) + n * (4 + 8) + n * 8 + int_stream_bound(n);
    if (p->type == MT_VT_STRING) bound += n * 10 + p->strs_len;
    int rc = buf_reserve(b, bound);
    if (rc) return rc;
    put_u8(b, (uint8_t)p->type);
    put_uvarint(b, n);
    /* timestamps: regular (one step) or a Rice block of deltas-of-deltas, in units of 10^k */
    int64_t d1 = n > 1 ? (int64_t)((uint64_t)p->ts[1] - (uint64_t)p->ts[0]) : 0;
    bool regular = true;
    for (size_t i = 2; i < n && regular; i++) regular = p->ts[i] - p->ts[i - 1] == d1;
    unsigned scale = ts_scale(p->ts, n, regular);
    const int64_t unit = (int64_t)mt_pow10[scale];
    put_u8(b, (uint8_t)((regular ? 0 : 1) | scale << 1));
    put_svarint(b, p->ts[0] / unit);
    if (n > 1) put_svarint(b, d1 / unit);
    if (!regular) {
        int64_t prev = d1 / unit;
        for (size_t i = 2; i < n; i++) {
            int64_t d = (int64_t)((uint64_t)p->ts[i] - (uint64_t)p->ts[i - 1]) / unit;
            scratch[i - 2] = mt_zigzag((int64_t)((uint64_t)d - (uint64_t)prev));
            prev = d;
        }
        b->len += mt_rice_encode(scratch, n - 2, b->data + b->len);
    }
    switch (p->type) {
    case MT_VT_FLOAT: return put_floats(b, p->vals, n, scratch);
    case MT_VT_INT:
    case MT_VT_UINT:
        for (size_t i = 0; i < n; i++) scratch[i] = p->vals[i].u;
        put_int_stream(b, scratch, n, scratch + n, scratch + 2 * n);
        return MT_OK;
    case MT_VT_BOOL:
        for (size_t i = 0; i < n; i += 8) {
            uint8_t byte = 0;
            for (size_t k = i; k < n && k < i + 8; k++)
                byte |= (uint8_t)((p->vals[k].u & 1) << (k - i));
            put_u8(b, byte);
        }
        return MT_OK;
    case MT_VT_STRING:
        for (size_t i = 0; i < n; i++) {
            size_t len = MT_VAL_STR_LEN(p->vals[i]);
            put_uvarint(b, len);
            memcpy(b->data + b->len, p->strs + MT_VAL_STR_OFF(p->vals[i]), len);
            b->len += len;
        }
        return MT_OK;
    }
    return MT_EINVAL;
}

struct mt_decoder {
    mt_zstd_d *zd;
    buf body;     /* decompressed body */
    int64_t *ts;  /* decoded timestamps */
    mt_val *vals; /* decoded values */
    size_t cap;   /* entries in ts and vals */
    char *strs;   /* decoded string bytes */
    size_t strs_cap;
};

static int decoder_reserve(mt_decoder *d, size_t n)
{
    if (n <= d->cap) return MT_OK;
    int64_t *ts = realloc(d->ts, n * sizeof *ts);
    if (ts) d->ts = ts;
    mt_val *vals = realloc(d->vals, n * sizeof *vals);
    if (vals) d->vals = vals;
    if (!ts || !vals) return -ENOMEM;
    d->cap = n;
    return MT_OK;
}

/*
 * ts[0..n) (increasing) as floor(ts / u) in place; whether two now repeat. A step repeats in
 * the usual series (a point every 10 s), so its quotient is reused: a division per new step,
 * not per point.
 */
static bool floor_stamps(int64_t *ts, size_t n, uint64_t u)
{
    int64_t q0 = ts[0] / (int64_t)u, r0 = ts[0] % (int64_t)u;
    if (r0 < 0) q0--, r0 += (int64_t)u;
    uint64_t rem = (uint64_t)r0, step = 0, q = 0, r = 0, prev = (uint64_t)ts[0];
    int64_t t = q0;
    bool rep = false;
    ts[0] = t;
    for (size_t j = 1; j < n; j++) {
        /* the true distance, wrapping when the two lie far apart on each side of zero */
        uint64_t d = (uint64_t)ts[j] - prev;
        prev = (uint64_t)ts[j];
        if (d != step) step = d, q = d / u, r = d % u;
        if (!r) { /* whole units apart (q >= 1): no carry */
            ts[j] = t = (int64_t)((uint64_t)t + q);
            continue;
        }
        uint64_t carry = (rem += r) >= u;
        rem -= carry * u;
        rep |= q + carry == 0;
        ts[j] = t = (int64_t)((uint64_t)t + q + carry);
    }
    return rep;
}

bool mt_points_to_f64(const mt_points *in, int unit_e, int64_t *t, mt_val *v)
{
    assert(in->type != MT_VT_STRING && unit_e >= 0 && unit_e <= MT_F64_MAX_UNIT_E && in->n);
    if (t != in->ts) memmove(t, in->ts, in->n * sizeof *t);
    bool rep = unit_e > 0 && floor_stamps(t, in->n, mt_pow10[unit_e]);
    const mt_val *x = in->vals;
    switch (in->type) {
    case MT_VT_FLOAT:
        if (v != x) memmove(v, x, in->n * sizeof *v);
        break;
    case MT_VT_INT:
        for (size_t j = 0; j < in->n; j++) v[j].f = (double)x[j].i;
        break;
    case MT_VT_UINT:
        for (size_t j = 0; j < in->n; j++) v[j].f = (double)x[j].u;
        break;
    default:
        for (size_t j = 0; j < in->n; j++) v[j].f = x[j].u ? 1 : 0;
        break;
    }
    return rep;
}

/*
 * Decode a body into d's arrays. unit_e < 0: as stored (ns, typed values); otherwise in the
 * form of mt_decoder_decode_f64, *repeats set.
 */
static int decode_body(mt_decoder *d, const uint8_t *body, size_t len, int unit_e, mt_points *out,
                       bool *repeats)
{
    mt_rd r = {body, body + len};
    uint8_t type;
    uint64_t n;
    if (mt_rd_u8(&r, &type) || type >= MT_VT_COUNT || mt_rd_uvarint(&r, &n) || n == 0 ||
        n > MT_CODEC_MAX_POINTS || n > (uint64_t)(r.end - r.p) * 8 + 1)
        return MT_ECORRUPT;
    if (unit_e >= 0 && type == MT_VT_STRING) return MT_EINVAL;
    int rc = decoder_reserve(d, n);
    if (rc) return rc;
    uint8_t ts_mode;
    int64_t t0, d1 = 0;
    if (mt_rd_u8(&r, &ts_mode) || (ts_mode >> 1) > MT_TS_MAX_K || mt_rd_svarint(&r, &t0) ||
        (n > 1 && mt_rd_svarint(&r, &d1)) || ((ts_mode & 1) && n < 3))
        return MT_ECORRUPT;
    const unsigned k = ts_mode >> 1;
    /* Wrapping products: a damaged unit can only give stamps the order check refuses. */
    const uint64_t unit = mt_pow10[k];
    d->ts[0] = (int64_t)((uint64_t)t0 * unit);
    uint64_t step = (uint64_t)d1 * unit;
    if (n > 1) d->ts[1] = (int64_t)((uint64_t)d->ts[0] + step);
    bool scaled = false; /* stamps already in 10^unit_e */
    if (ts_mode & 1) {
        /* deltas-of-deltas land in the timestamp array, then become timestamps in place */
        if (get_rice(&r, (uint64_t *)d->ts + 2, n - 2)) return MT_ECORRUPT;
        for (size_t i = 2; i < n; i++) {
            step += (uint64_t)mt_unzigzag((uint64_t)d->ts[i]) * unit;
            d->ts[i] = (int64_t)((uint64_t)d->ts[i - 1] + step);
        }
        for (size_t i = 1; i < n; i++)
            if (d->ts[i] <= d->ts[i - 1]) return MT_ECORRUPT;
    } else {
        /* one step: the stamps increase when it is positive and the last does not overflow,
           a check for the chunk instead of one a point */
        int64_t span, last;
        if (n > 1 &&
            ((int64_t)step <= 0 || __builtin_mul_overflow((int64_t)step, (int64_t)(n - 1), &span) ||
             __builtin_add_overflow(d->ts[0], span, &last)))
            return MT_ECORRUPT;
        int64_t wide;
        if (unit_e >= 0 && k >= (unsigned)unit_e &&
            !__builtin_mul_overflow(t0, (int64_t)unit, &wide) &&
            !__builtin_mul_overflow(d1, (int64_t)unit, &wide)) {
            /* stored in units of 10^k, a multiple of the unit asked: the stamps come out in it
               exactly (the checks above hold them in ns), with no division */
            const uint64_t mul = mt_pow10[k - (unsigned)unit_e];
            uint64_t t = (uint64_t)t0 * mul, st = (uint64_t)d1 * mul;
            for (size_t i = 0; i < n; i++, t += st) d->ts[i] = (int64_t)t;
            scaled = true;
        } else {
            for (size_t i = 2; i < n; i++) d->ts[i] = (int64_t)((uint64_t)d->ts[i - 1] + step);
        }
    }
    size_t strs_len = 0;
    switch ((mt_vtype)type) {
    case MT_VT_FLOAT: rc = get_floats(&r, d->vals, n); break;
    case MT_VT_INT:
        rc = get_int_stream_as(&r, d->vals, n, unit_e >= 0 ? AS_INT_DOUBLE : AS_BITS);
        break;
    case MT_VT_UINT:
        rc = get_int_stream_as(&r, d->vals, n, unit_e >= 0 ? AS_UINT_DOUBLE : AS_BITS);
        break;
    case MT_VT_BOOL:
        if ((uint64_t)(r.end - r.p) < (n + 7) / 8) return MT_ECORRUPT;
        for (size_t i = 0; i < n; i++) d->vals[i].u = (r.p[i / 8] >> (i % 8)) & 1;
        if (unit_e >= 0)
            for (size_t i = 0; i < n; i++) d->vals[i].f = d->vals[i].u ? 1 : 0;
        r.p += (n + 7) / 8;
        break;
    case MT_VT_STRING:
        /* All string bytes come from the body, so the body length bounds them. */
        if (d->strs_cap < len) {
            char *s = realloc(d->strs, len);
            if (!s) return -ENOMEM;
            d->strs = s;
            d->strs_cap = len;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t l;
            if (mt_rd_uvarint(&r, &l) || l > (uint64_t)(r.end - r.p) || l > 0xFFFFFFFFu)
                return MT_ECORRUPT;
            if (l) memcpy(d->strs + strs_len, r.p, l);
            d->vals[i].u = MT_VAL_STR(strs_len, l);
            strs_len += l;
            r.p += l;
        }
        break;
    }
    if (rc) return rc;
    if (r.p != r.end) return MT_ECORRUPT;
    if (unit_e >= 0) {
        /* the stamps not yet in the unit asked: ns precision finer than it */
        *repeats = !scaled && unit_e > 0 && floor_stamps(d->ts, n, mt_pow10[unit_e]);
    }
    *out = (mt_points){.type = (mt_vtype)type,
                       .n = n,
                       .ts = d->ts,
                       .vals = d->vals,
                       .strs = d->strs,
                       .strs_len = strs_len};
    return MT_OK;
}

/* ---- encoder ------------------------------------------------------------- */

struct mt_encoder {
    mt_zstd_c *zc;
    int level;
    buf body;          /* uncompressed body */
    buf out;           /* header + payload */
    uint64_t *scratch; /* per-value integers */
    size_t scratch_cap;
};

int mt_encoder_new(int level, mt_encoder **out)
{
    if (level < 0 || level > 19) return MT_EINVAL;
    mt_encoder *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->level = level ? level : DEFAULT_LEVEL;
    if (mt_zstd_c_new(&e->zc)) {
        free(e);
        return -ENOMEM;
    }
    *out = e;
    return MT_OK;
}

void mt_encoder_free(mt_encoder *e)
{
    if (!e) return;
    mt_zstd_c_free(e->zc);
    free(e->body.data);
    free(e->out.data);
    free(e->scratch);
    free(e);
}

int mt_encoder_encode(mt_encoder *e, const mt_points *pts, const uint8_t **chunk, size_t *len)
{
    int rc = check_points(pts);
    if (rc) return rc;
    if (e->scratch_cap < 3 * pts->n) {
        uint64_t *s = realloc(e->scratch, 3 * pts->n * sizeof *s);
        if (!s) return -ENOMEM;
        e->scratch = s;
        e->scratch_cap = 3 * pts->n;
    }
    e->body.len = 0;
    if ((rc = encode_body(&e->body, pts, e->scratch))) return rc;
    if (e->body.len > MT_CHUNK_MAX_BODY) return MT_EINVAL;
    size_t bound = mt_zstd_bound(e->body.len), zn;
    e->out.len = 0;
    if ((rc = buf_reserve(&e->out, HEADER_MAX + bound))) return rc;
    uint8_t *payload = e->out.data + HEADER_MAX;
    if ((rc = mt_zstd_compress(e->zc, payload, bound, e->body.data, e->body.len, e->level, &zn)))
        return rc;
    bool packed = zn < e->body.len - e->body.len / 16;
    if (!packed) {
        memcpy(payload, e->body.data, e->body.len);
        zn = e->body.len;
    }
    uint8_t h[HEADER_MAX];
    size_t hl = 0;
    h[hl++] = MT_CHUNK_MAGIC0;
    h[hl++] = MT_CHUNK_MAGIC1;
    h[hl++] = MT_CHUNK_VERSION;
    h[hl++] = (uint8_t)((unsigned)pts->type | (packed ? MT_CHUNK_FLAG_ZSTD : 0));
    hl += mt_put_uvarint(h + hl, pts->n);
    if (packed) hl += mt_put_uvarint(h + hl, e->body.len);
    mt_put_le(h + hl, (uint32_t)mt_hash64_seeded(h, hl, mt_hash64(payload, zn)), 4);
    hl += 4;
    /* the header is written just before the payload, which was placed for the longest one */
    uint8_t *start = payload - hl;
    memcpy(start, h, hl);
    *chunk = start;
    *len = hl + zn;
    return MT_OK;
}

/* ---- decoder ------------------------------------------------------------- */

int mt_decoder_new(mt_decoder **out)
{
    /* The zstd context comes with the first packed chunk: creating one costs more than
     * decoding a series' hour, and most chunks are not packed (Rice codes leave zstd little). */
    mt_decoder *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    *out = d;
    return MT_OK;
}

void mt_decoder_free(mt_decoder *d)
{
    if (!d) return;
    mt_zstd_d_free(d->zd);
    free(d->body.data);
    free(d->ts);
    free(d->vals);
    free(d->strs);
    free(d);
}

/* A chunk's header, either version. */
typedef struct header {
    mt_vtype type;
    bool packed;
    uint32_t n;      /* points */
    size_t body_len; /* the body once unpacked */
    const uint8_t *payload;
    size_t payload_len;
    uint32_t sum;   /* the stored checksum */
    size_t sum_off; /* bytes of header the checksum covers */
} header;

/* Parse and check a header; MT_OK only when the payload lies within chunk[0..len). */
static int read_header(const uint8_t *h, size_t len, header *out)
{
    if (len < 4 || h[0] != MT_CHUNK_MAGIC0 || h[1] != MT_CHUNK_MAGIC1) return MT_ECORRUPT;
    if (h[2] != MT_CHUNK_VERSION && h[2] != MT_CHUNK_VERSION_1) return MT_EFORMAT;
    unsigned type = h[3] & MT_CHUNK_TYPE_MASK;
    if (type >= MT_VT_COUNT || (h[3] & ~(MT_CHUNK_TYPE_MASK | MT_CHUNK_FLAG_ZSTD)))
        return MT_ECORRUPT;
    *out = (header){.type = (mt_vtype)type, .packed = h[3] & MT_CHUNK_FLAG_ZSTD};
    uint64_t n, body_len;
    size_t hl;
    if (h[2] == MT_CHUNK_VERSION_1) {
        if (len < MT_CHUNK_V1_HEADER_SIZE ||
            (uint32_t)mt_get_le(h + 8, 4) != len - MT_CHUNK_V1_HEADER_SIZE)
            return MT_ECORRUPT;
        n = (uint32_t)mt_get_le(h + 4, 4);
        body_len = (uint32_t)mt_get_le(h + 12, 4);
        out->sum_off = 16;
        hl = MT_CHUNK_V1_HEADER_SIZE;
    } else {
        mt_rd r = {h + 4, h + len};
        if (mt_rd_uvarint(&r, &n) || n > MT_CODEC_MAX_POINTS) return MT_ECORRUPT;
        body_len = 0;
        if (out->packed && mt_rd_uvarint(&r, &body_len)) return MT_ECORRUPT;
        out->sum_off = (size_t)(r.p - h);
        if (mt_rd_left(&r) < 4) return MT_ECORRUPT;
        hl = out->sum_off + 4;
    }
    out->payload = h + hl;
    out->payload_len = len - hl;
    if (!out->packed) body_len = out->payload_len;
    if (n == 0 || n > MT_CODEC_MAX_POINTS || body_len > MT_CHUNK_MAX_BODY ||
        (!out->packed && body_len != out->payload_len))
        return MT_ECORRUPT;
    out->n = (uint32_t)n;
    out->body_len = (size_t)body_len;
    out->sum = (uint32_t)mt_get_le(h + out->sum_off, 4);
    return MT_OK;
}

int mt_codec_peek(const void *chunk, size_t len, size_t *n, mt_vtype *type)
{
    header hd;
    int rc = read_header(chunk, len, &hd);
    if (rc) return rc;
    *n = hd.n;
    *type = hd.type;
    return MT_OK;
}

static int decode_chunk(mt_decoder *d, const void *chunk, size_t len, int unit_e, mt_points *out,
                        bool *repeats)
{
    *out = (mt_points){0};
    header hd;
    int rc = read_header(chunk, len, &hd);
    if (rc) return rc;
    const uint8_t *body = hd.payload;
    if ((uint32_t)mt_hash64_seeded(chunk, hd.sum_off, mt_hash64(hd.payload, hd.payload_len)) !=
        hd.sum)
        return MT_ECORRUPT;
    if (hd.packed) {
        d->body.len = 0;
        if (!d->zd && mt_zstd_d_new(&d->zd)) return -ENOMEM;
        if ((rc = buf_reserve(&d->body, hd.body_len ? hd.body_len : 1))) return rc;
        if ((rc = mt_zstd_decompress(d->zd, d->body.data, hd.body_len, hd.payload, hd.payload_len)))
            return rc;
        body = d->body.data;
    }
    rc = decode_body(d, body, hd.body_len, unit_e, out, repeats);
    if (rc == MT_OK && (out->n != hd.n || out->type != hd.type)) rc = MT_ECORRUPT;
    if (rc) *out = (mt_points){0};
    if (rc == MT_OK && unit_e >= 0) out->type = MT_VT_FLOAT; /* the values are doubles now */
    return rc;
}

int mt_decoder_decode(mt_decoder *d, const void *chunk, size_t len, mt_points *out)
{
    return decode_chunk(d, chunk, len, -1, out, NULL);
}

int mt_decoder_decode_f64(mt_decoder *d, const void *chunk, size_t len, int unit_e, mt_points *out,
                          bool *repeats)
{
    *repeats = false;
    if (unit_e < 0 || unit_e > MT_F64_MAX_UNIT_E) {
        *out = (mt_points){0};
        return MT_EINVAL;
    }
    return decode_chunk(d, chunk, len, unit_e, out, repeats);
}

int mt_decoder_decode_body_f64(mt_decoder *d, const void *body, size_t len, int unit_e,
                               mt_points *out, bool *repeats)
{
    *repeats = false;
    int rc = unit_e < 0 || unit_e > MT_F64_MAX_UNIT_E
                 ? MT_EINVAL
                 : decode_body(d, body, len, unit_e, out, repeats);
    if (rc) *out = (mt_points){0};
    if (rc == MT_OK) out->type = MT_VT_FLOAT;
    return rc;
}

int mt_decoder_decode_body(mt_decoder *d, const void *body, size_t len, mt_points *out)
{
    int rc = decode_body(d, body, len, -1, out, NULL);
    if (rc) *out = (mt_points){0};
    return rc;
}
