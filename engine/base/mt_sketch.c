/*
 * mt_sketch.c — DDSketch (mt_sketch.h): two dense stores of bin counts
 * that grow to cover the bins in use, and an exact zero count, min and max.
 *
 * Encoding (version 1): u8 1, min and max as float64 LE, uvarint zero
 * count, then the positive and the negative store: uvarint bins in use,
 * and per bin in ascending index: svarint index delta (the first from 0),
 * uvarint count (> 0).
 */
#include "mt_sketch.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"

/* Every finite double's |index| is below 37300 at a = 0.01; beyond is corrupt. */
#define MAX_INDEX 40000
#define VERSION   1

typedef struct store {
    uint64_t *c; /* c[k] counts bin lo + k */
    int32_t lo;
    size_t len;
} store;

struct mt_sketch {
    store pos, neg; /* neg holds |x| of negative values */
    uint64_t zero, count;
    double min, max;
    double gamma, log_gamma;
};

int mt_sketch_new(mt_sketch **out)
{
    mt_sketch *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->gamma = (1 + MT_SKETCH_ALPHA) / (1 - MT_SKETCH_ALPHA);
    s->log_gamma = log(s->gamma);
    mt_sketch_clear(s);
    *out = s;
    return MT_OK;
}

void mt_sketch_free(mt_sketch *s)
{
    if (!s) return;
    free(s->pos.c);
    free(s->neg.c);
    free(s);
}

void mt_sketch_clear(mt_sketch *s)
{
    if (s->pos.len) memset(s->pos.c, 0, s->pos.len * sizeof *s->pos.c);
    if (s->neg.len) memset(s->neg.c, 0, s->neg.len * sizeof *s->neg.c);
    s->zero = s->count = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

uint64_t mt_sketch_count(const mt_sketch *s)
{
    return s->count;
}

/* Make st cover bin i, keeping its counts; grows with slack so a run of new bins is cheap. */
static int cover(store *st, int32_t i)
{
    if (st->len && i >= st->lo && i - st->lo < (int64_t)st->len) return MT_OK;
    int64_t slack = st->len / 2 > 32 ? (int64_t)st->len / 2 : 32;
    int64_t lo = st->len ? st->lo : i, hi = st->len ? st->lo + (int64_t)st->len - 1 : i;
    if (i < lo) lo = i - slack;
    if (i > hi) hi = i + slack;
    if (!st->len) lo -= slack, hi += slack;
    if (lo < -MAX_INDEX) lo = -MAX_INDEX;
    if (hi > MAX_INDEX) hi = MAX_INDEX;
    size_t len = (size_t)(hi - lo + 1);
    uint64_t *c = calloc(len, sizeof *c);
    if (!c) return -ENOMEM;
    if (st->len) memcpy(c + (st->lo - lo), st->c, st->len * sizeof *c);
    free(st->c);
    st->c = c;
    st->lo = (int32_t)lo;
    st->len = len;
    return MT_OK;
}

static int bump(store *st, int32_t i, uint64_t n)
{
    int rc = cover(st, i);
    if (rc) return rc;
    st->c[i - st->lo] += n;
    return MT_OK;
}

static int32_t index_of(const mt_sketch *s, double a)
{
    double i = ceil(log(a) / s->log_gamma);
    return (int32_t)(i < -MAX_INDEX ? -MAX_INDEX : i > MAX_INDEX ? MAX_INDEX : i);
}

static double estimate(const mt_sketch *s, int32_t i)
{
    return 2 * pow(s->gamma, i) / (s->gamma + 1);
}

int mt_sketch_add(mt_sketch *s, double x, uint64_t n)
{
    if (!isfinite(x)) return MT_EINVAL;
    if (!n) return MT_OK;
    int rc = MT_OK;
    if (x > 0)
        rc = bump(&s->pos, index_of(s, x), n);
    else if (x < 0)
        rc = bump(&s->neg, index_of(s, -x), n);
    else
        s->zero += n;
    if (rc) return rc;
    s->count += n;
    if (x < s->min) s->min = x;
    if (x > s->max) s->max = x;
    return MT_OK;
}

static int merge_store(store *a, const store *b)
{
    for (size_t k = 0; k < b->len; k++) {
        if (!b->c[k]) continue;
        int rc = bump(a, b->lo + (int32_t)k, b->c[k]);
        if (rc) return rc;
    }
    return MT_OK;
}

int mt_sketch_merge(mt_sketch *a, const mt_sketch *b)
{
    int rc = merge_store(&a->pos, &b->pos);
    if (!rc) rc = merge_store(&a->neg, &b->neg);
    if (rc) return rc;
    a->zero += b->zero;
    a->count += b->count;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
    return MT_OK;
}

/* The estimate of the value of rank r (0-based, ascending), clamped to [min, max]. */
static double at_rank(const mt_sketch *s, uint64_t r)
{
    double v = s->max;
    uint64_t seen = 0;
    bool found = false;
    for (size_t k = s->neg.len; k-- > 0 && !found;) /* most negative first */
        if ((seen += s->neg.c[k]) > r) v = -estimate(s, s->neg.lo + (int32_t)k), found = true;
    if (!found && (seen += s->zero) > r) v = 0, found = true;
    for (size_t k = 0; k < s->pos.len && !found; k++)
        if ((seen += s->pos.c[k]) > r) v = estimate(s, s->pos.lo + (int32_t)k), found = true;
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

int mt_sketch_quantile(const mt_sketch *s, double q, double *out)
{
    if (!(q >= 0 && q <= 1) || !s->count) return MT_EINVAL;
    /* PERCENTILE_CONT's position, as PostgreSQL computes it */
    double pos = q * (double)(s->count - 1);
    /* near 2^64 values (only a damaged or hostile encoding holds that many) the double rounds
       up past the last rank: clamp before converting, which would be undefined */
    uint64_t last = s->count - 1;
    uint64_t lo = floor(pos) >= 0x1p64 ? last : (uint64_t)floor(pos);
    uint64_t hi = ceil(pos) >= 0x1p64 ? last : (uint64_t)ceil(pos);
    if (lo > last) lo = last;
    if (hi > last) hi = last;
    double a = lo == 0 ? s->min : at_rank(s, lo);
    if (lo == s->count - 1) a = s->max;
    if (hi == lo) {
        *out = a;
        return MT_OK;
    }
    double b = hi == s->count - 1 ? s->max : at_rank(s, hi);
    double f = pos - (double)lo, d = b - a;
    /* PERCENTILE_CONT's interpolation; two finite values of opposite signs near DBL_MAX have a
       difference that overflows, and then the weighted form stays between them */
    *out = isfinite(d) ? a + f * d : a * (1 - f) + b * f;
    return MT_OK;
}

static size_t store_bins(const store *st)
{
    size_t n = 0;
    for (size_t k = 0; k < st->len; k++) n += st->c[k] != 0;
    return n;
}

static uint8_t *put_store(uint8_t *p, const store *st)
{
    p += mt_put_uvarint(p, store_bins(st));
    int64_t prev = 0;
    for (size_t k = 0; k < st->len; k++) {
        if (!st->c[k]) continue;
        int64_t i = st->lo + (int64_t)k;
        p += mt_put_uvarint(p, mt_zigzag(i - prev));
        p += mt_put_uvarint(p, st->c[k]);
        prev = i;
    }
    return p;
}

int mt_sketch_encode(const mt_sketch *s, uint8_t **buf, size_t *len)
{
    size_t bins = store_bins(&s->pos) + store_bins(&s->neg);
    size_t cap = 1 + 16 + 3 * MT_UVARINT_MAX + bins * 2 * MT_UVARINT_MAX;
    uint8_t *b = malloc(cap), *p = b;
    if (!b) return -ENOMEM;
    *p++ = VERSION;
    uint64_t bits;
    memcpy(&bits, &s->min, 8);
    mt_put_le(p, bits, 8);
    memcpy(&bits, &s->max, 8);
    mt_put_le(p + 8, bits, 8);
    p += 16;
    p += mt_put_uvarint(p, s->zero);
    p = put_store(p, &s->pos);
    p = put_store(p, &s->neg);
    *buf = b;
    *len = (size_t)(p - b);
    return MT_OK;
}

static int read_store(mt_rd *r, store *st, uint64_t *count)
{
    uint64_t bins, d, n;
    int64_t i = 0;
    int rc = mt_rd_uvarint(r, &bins);
    if (rc) return rc;
    if (bins > 2 * MAX_INDEX + 1) return MT_ECORRUPT;
    for (uint64_t k = 0; k < bins; k++) {
        if ((rc = mt_rd_uvarint(r, &d)) || (rc = mt_rd_uvarint(r, &n))) return rc;
        int64_t delta = mt_unzigzag(d);
        if ((k && delta <= 0) || delta > 2 * MAX_INDEX || delta < -MAX_INDEX) return MT_ECORRUPT;
        i += delta;
        if (i < -MAX_INDEX || i > MAX_INDEX || n == 0 || *count + n < *count) return MT_ECORRUPT;
        if ((rc = bump(st, (int32_t)i, n))) return rc;
        *count += n;
    }
    return MT_OK;
}

int mt_sketch_decode_merge(mt_sketch *s, const void *buf, size_t len)
{
    mt_rd r = {buf, (const uint8_t *)buf + len};
    uint8_t version;
    uint64_t lo, hi, zero, count = 0;
    int rc = mt_rd_u8(&r, &version);
    if (!rc && version != VERSION) rc = MT_ECORRUPT;
    if (!rc) rc = mt_rd_u64le(&r, &lo);
    if (!rc) rc = mt_rd_u64le(&r, &hi);
    if (!rc) rc = mt_rd_uvarint(&r, &zero);
    if (rc) return rc;
    double mn, mx;
    memcpy(&mn, &lo, 8);
    memcpy(&mx, &hi, 8);
    count = zero;
    if ((rc = read_store(&r, &s->pos, &count)) || (rc = read_store(&r, &s->neg, &count))) return rc;
    if (mt_rd_left(&r) || (count && !(mn <= mx)) || s->count + count < s->count) return MT_ECORRUPT;
    s->zero += zero;
    s->count += count;
    if (count && mn < s->min) s->min = mn;
    if (count && mx > s->max) s->max = mx;
    return MT_OK;
}
