/*
 * mt_rollcodec.c — the compact form of rollup rows (contract in
 * mt_rollcodec.h).
 *
 * What the version-1 form stored as six float64 a row (sum, min, max, p50,
 * p95, p99) is mostly a few decimals: the devops workload's values are
 * m / 10^e for a small e, and PERCENTILE_CONT is an interpolation between
 * two of the values themselves (at floor and ceil of p (n - 1)). So a
 * row whose min, max and six order statistics are all exact decimals at
 * one e (mt_decimal_at, the chunk codec's test) stores e and integers:
 *
 *   min_m                        zigzag varint
 *   7 steps, each >= 0           uvarints: lo50 - min, hi50 - lo50, lo95 - hi50,
 *                                hi95 - lo95, lo99 - hi95, hi99 - lo99, max - hi99
 *   sum_m - count * lo50         zigzag varint, sum_m = llrint(sum * 10^e)
 *   ord(sum) - ord(sum_m / 10^e) zigzag varint: the sum's last bits (often 0)
 *
 * (sum_m and the correction are mt_decimal_near's, mt_codec.h: ord() maps a
 * double's bits to an int64 in the order of the doubles, -0.0 just below
 * +0.0, so a sum a few ulps from its decimal costs a byte.) p50,
 * p95 and p99 are recomputed at read by mt_percentile_lerp, the function
 * mt_describe computed them with. At encode the row is decoded again and
 * compared bit for bit; a row that differs, or fits no e (-0.0, 2^53 and
 * above, subnormals, a sum beyond 2^62 or more than 2^32 ulps from its
 * decimal), or whose integers would take 48
 * bytes or more, keeps its six raw doubles.
 *
 * A group's sketch (mt_sketch_encode: version, min, max, zero count, then
 * per sign store its bins as zigzag index deltas and counts) is stored
 * without min and max when they are the row's (they are, for finite
 * values), with the bin indexes as gaps (delta - 1: mostly 0) and each
 * count as a zigzag difference from the previous bin's (neighbouring bins
 * hold similar counts); rebuilt byte for byte at read, checked at encode,
 * else kept verbatim.
 *
 * Every field goes in its own column, each column written as uvarint
 * length + bytes, in this order:
 *   0 count (uvarint)        1 mode (u8: e 0..15, or 0xFF raw)
 *   2 min_m                  3..9 the 7 steps
 *   10 sum                   11 sum correction
 *   12 raw rows: sum, min, max, p50, p95, p99 as float64 LE, row after row
 * and with sketches:
 *   13 sketch mode (u8: 0 verbatim, 1 compact)
 *   14 compact header: version (u8), zero, positive bins, negative bins (uvarints)
 *   15 bin index: a store's first as zigzag(index), then delta - 1 (uvarints)
 *   16 bin count: zigzag(count - previous count in the store)
 *   17 verbatim sketches: uvarint length + bytes
 * Similar numbers then sit together for zstd, which wraps the whole value.
 */
#include "mt_rollcodec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mt_codec.h"
#include "mt_stats.h"

const double mt_roll_fractions[MT_ROLL_NQ] = {0.5, 0.95, 0.99};

#define NCOL      18                 /* columns with sketches; 13 without */
#define RAW       0xFF               /* mode of a row kept as raw doubles */
#define NSTEP     7                  /* steps from min to max through the six order statistics */
#define M_LIMIT   9007199254740992.0 /* 2^53: mt_decimal_at's bound */
#define SHIFT_MAX 14                 /* mode = e | shift << 4, and 0xFF stays RAW */
#define SK_FIXED  17                 /* version + min + max at the head of a sketch */

enum {
    C_COUNT,
    C_MODE,
    C_MIN,
    C_STEP,
    C_SUM = C_STEP + NSTEP,
    C_CORR,
    C_RAW,
    C_SKMODE,
    C_SKHDR,
    C_SKIDX,
    C_SKCNT,
    C_SKVERB
};

void mt_rollbuf_put(mt_rollbuf *b, const void *src, size_t n)
{
    if (b->rc) return;
    if (mt_grow(&b->p, &b->cap, b->len + n, 1, 64)) {
        b->rc = -ENOMEM;
        return;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

void mt_rollbuf_uv(mt_rollbuf *b, uint64_t v)
{
    uint8_t tmp[MT_UVARINT_MAX];
    mt_rollbuf_put(b, tmp, mt_put_uvarint(tmp, v));
}

static void put_sv(mt_rollbuf *b, int64_t v)
{
    mt_rollbuf_uv(b, mt_zigzag(v));
}

static void put_f64(mt_rollbuf *b, double d)
{
    uint64_t bits;
    uint8_t le[8];
    memcpy(&bits, &d, 8);
    mt_put_le(le, bits, 8);
    mt_rollbuf_put(b, le, 8);
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

/* A decimal row's integers: e, min and the 7 steps, the sum and its correction. */
typedef struct drow {
    int e, shift; /* min and steps are multiples of 2^shift, stored divided */
    int64_t min;
    uint64_t step[NSTEP];
    int64_t sum, corr; /* sum_m - count * min_m; ord difference */
} drow;

/* The doubles of a decimal row: MT_OK, or MT_ECORRUPT for integers no encoder writes. */
static int drow_values(const drow *d, uint64_t count, mt_rollrow *out)
{
    if (d->e < 0 || d->e > MT_DECIMAL_MAX_E || d->shift < 0 || d->shift > SHIFT_MAX || count == 0)
        return MT_ECORRUPT;
    if (!(fabs((double)d->min) < M_LIMIT / (double)(1 << d->shift))) return MT_ECORRUPT;
    int64_t m = d->min * ((int64_t)1 << d->shift), at[NSTEP + 1];
    at[0] = m;
    for (int k = 0; k < NSTEP; k++) {
        if (d->step[k] >= (uint64_t)1 << (54 - d->shift) ||
            (m += (int64_t)(d->step[k] << d->shift)) >= (int64_t)M_LIMIT)
            return MT_ECORRUPT;
        at[k + 1] = m;
    }
    __int128 s = (__int128)count * at[1] + d->sum;
    if (s > INT64_MAX || s < INT64_MIN) return MT_ECORRUPT;
    out->count = count;
    out->sum = mt_decimal_near_value((int64_t)s, d->e, d->corr);
    out->min = mt_decimal_value(at[0], d->e);
    out->max = mt_decimal_value(at[NSTEP], d->e);
    for (int i = 0; i < MT_ROLL_NQ; i++)
        out->q[i] = mt_percentile_lerp(mt_decimal_value(at[1 + 2 * i], d->e),
                                       mt_decimal_value(at[2 + 2 * i], d->e), (size_t)count,
                                       mt_roll_fractions[i]);
    return MT_OK;
}

/* r as a decimal row in *d, when that gives back every bit; false: keep it raw. */
static bool as_decimal(const mt_rollrow *r, drow *d)
{
    if (r->count == 0) return false;
    const double v[NSTEP + 1] = {r->min,      r->ranks[0], r->ranks[1], r->ranks[2],
                                 r->ranks[3], r->ranks[4], r->ranks[5], r->max};
    int64_t m[NSTEP + 1];
    int e = 0;
    for (int k = 0; k <= NSTEP && e <= MT_DECIMAL_MAX_E;)
        if (mt_decimal_at(v[k], e, &m[k]))
            k++;
        else
            e++, k = 0; /* the smallest e that suits every value */
    if (e > MT_DECIMAL_MAX_E) return false;
    d->e = e;
    uint64_t any = (uint64_t)m[0];
    for (int k = 0; k < NSTEP; k++) {
        if (m[k + 1] < m[k]) return false;
        d->step[k] = (uint64_t)(m[k + 1] - m[k]);
        any |= d->step[k];
    }
    /* byte counts, kB: whole powers of two that cost varint bytes for nothing */
    d->shift = any ? __builtin_ctzll(any) : 0;
    if (d->shift > SHIFT_MAX) d->shift = SHIFT_MAX;
    d->min = m[0] / ((int64_t)1 << d->shift);
    for (int k = 0; k < NSTEP; k++) d->step[k] >>= d->shift;
    int64_t sm, corr;
    if (!mt_decimal_near(r->sum, e, &sm, &corr)) return false;
    __int128 diff = (__int128)sm - (__int128)r->count * m[1];
    if (diff > INT64_MAX || diff < INT64_MIN) return false;
    d->sum = (int64_t)diff;
    d->corr = corr;
    size_t bytes = mt_uvarint_size(mt_zigzag(d->min)) + mt_uvarint_size(mt_zigzag(d->sum)) +
                   mt_uvarint_size(mt_zigzag(d->corr));
    for (int k = 0; k < NSTEP; k++) bytes += mt_uvarint_size(d->step[k]);
    if (bytes >= 6 * 8) return false; /* wide decimals (e = 15 over a wide range): raw is smaller */
    mt_rollrow back;
    if (drow_values(d, r->count, &back)) return false;
    if (bits_of(back.sum) != bits_of(r->sum) || bits_of(back.min) != bits_of(r->min) ||
        bits_of(back.max) != bits_of(r->max))
        return false;
    for (int i = 0; i < MT_ROLL_NQ; i++)
        if (bits_of(back.q[i]) != bits_of(r->q[i])) return false;
    return true;
}

/* ---- sketches ------------------------------------------------------------------------------ */

/* A sketch's parts past its min and max: the header and where its bins start. */
typedef struct skparts {
    uint8_t version;
    uint64_t zero, bins[2];
    mt_rd at; /* the bins of both stores */
} skparts;

static int sk_parse(const uint8_t *p, size_t len, skparts *s)
{
    mt_rd rd = {p, p + len};
    if (len < SK_FIXED) return MT_ECORRUPT;
    s->version = p[0];
    rd.p += SK_FIXED;
    return mt_rd_uvarint(&rd, &s->zero) ? MT_ECORRUPT : (s->at = rd, MT_OK);
}

/* The sketch's bytes from its parts, min and max, and its bins as (index, count) pairs. */
static void sk_build(mt_rollbuf *b, const skparts *s, double min, double max, const int64_t *idx,
                     const uint64_t *cnt)
{
    mt_rollbuf_put(b, &s->version, 1);
    put_f64(b, min);
    put_f64(b, max);
    mt_rollbuf_uv(b, s->zero);
    size_t k = 0;
    for (int st = 0; st < 2; st++) {
        mt_rollbuf_uv(b, s->bins[st]);
        int64_t prev = 0;
        for (uint64_t j = 0; j < s->bins[st]; j++, k++) {
            mt_rollbuf_uv(b, mt_zigzag(idx[k] - prev));
            mt_rollbuf_uv(b, cnt[k]);
            prev = idx[k];
        }
    }
}

/* Append r's sketch in the compact form when it rebuilds to the same bytes. */
static void put_sketch(mt_rollbuf *c, const mt_rollrow *r)
{
    skparts s;
    int64_t *idx = NULL;
    uint64_t *cnt = NULL;
    mt_rollbuf back = {0};
    bool compact = false;
    size_t nb = 0, cap = 0, cap2 = 0;
    if (sk_parse(r->sketch, r->sketch_len, &s) || mt_get_le(r->sketch + 1, 8) != bits_of(r->min) ||
        mt_get_le(r->sketch + 9, 8) != bits_of(r->max))
        goto verbatim;
    for (int st = 0; st < 2; st++) {
        if (mt_rd_uvarint(&s.at, &s.bins[st])) goto verbatim;
        int64_t prev = 0;
        for (uint64_t j = 0; j < s.bins[st]; j++, nb++) {
            uint64_t d, n;
            if (mt_rd_uvarint(&s.at, &d) || mt_rd_uvarint(&s.at, &n)) goto verbatim;
            int64_t i;
            if (__builtin_add_overflow(prev, mt_unzigzag(d), &i) || (j && i <= prev)) goto verbatim;
            if (mt_grow(&idx, &cap, nb + 1, sizeof *idx, 64) ||
                mt_grow(&cnt, &cap2, nb + 1, sizeof *cnt, 64)) {
                c[C_SKMODE].rc = -ENOMEM;
                goto out;
            }
            idx[nb] = prev = i;
            cnt[nb] = n;
        }
    }
    if (mt_rd_left(&s.at)) goto verbatim;
    sk_build(&back, &s, r->min, r->max, idx, cnt);
    if (back.rc) {
        c[C_SKMODE].rc = back.rc;
        goto out;
    }
    compact = back.len == r->sketch_len && !memcmp(back.p, r->sketch, back.len);
verbatim:
    mt_rollbuf_put(&c[C_SKMODE], &(uint8_t){compact}, 1);
    if (!compact) {
        mt_rollbuf_uv(&c[C_SKVERB], r->sketch_len);
        mt_rollbuf_put(&c[C_SKVERB], r->sketch, r->sketch_len);
        goto out;
    }
    mt_rollbuf_put(&c[C_SKHDR], &s.version, 1);
    mt_rollbuf_uv(&c[C_SKHDR], s.zero);
    mt_rollbuf_uv(&c[C_SKHDR], s.bins[0]);
    mt_rollbuf_uv(&c[C_SKHDR], s.bins[1]);
    for (size_t k = 0, st = 0, j = 0; k < nb; k++, j++) {
        while (j == s.bins[st]) st++, j = 0; /* the next store: its first index whole */
        mt_rollbuf_uv(&c[C_SKIDX], j ? (uint64_t)(idx[k] - idx[k - 1] - 1) : mt_zigzag(idx[k]));
        put_sv(&c[C_SKCNT], (int64_t)(cnt[k] - (j ? cnt[k - 1] : 0)));
    }
out:
    free(idx);
    free(cnt);
    free(back.p);
}

int mt_rollcodec_put(mt_rollbuf *b, const mt_rollrow *rows, const size_t *order, size_t n,
                     bool sketches)
{
    mt_rollbuf c[NCOL] = {{0}};
    int ncol = sketches ? NCOL : C_SKMODE;
    for (size_t i = 0; i < n; i++) {
        const mt_rollrow *r = &rows[order ? order[i] : i];
        drow d;
        mt_rollbuf_uv(&c[C_COUNT], r->count);
        if (as_decimal(r, &d)) {
            mt_rollbuf_put(&c[C_MODE], &(uint8_t){(uint8_t)(d.e | d.shift << 4)}, 1);
            put_sv(&c[C_MIN], d.min);
            for (int k = 0; k < NSTEP; k++) mt_rollbuf_uv(&c[C_STEP + k], d.step[k]);
            put_sv(&c[C_SUM], d.sum);
            put_sv(&c[C_CORR], d.corr);
        } else {
            mt_rollbuf_put(&c[C_MODE], &(uint8_t){RAW}, 1);
            const double raw[6] = {r->sum, r->min, r->max, r->q[0], r->q[1], r->q[2]};
            for (int k = 0; k < 6; k++) put_f64(&c[C_RAW], raw[k]);
        }
        if (sketches) put_sketch(c, r);
    }
    for (int k = 0; k < ncol; k++) {
        if (c[k].rc) b->rc = b->rc ? b->rc : c[k].rc;
        mt_rollbuf_uv(b, c[k].len);
        mt_rollbuf_put(b, c[k].p, c[k].len);
        free(c[k].p);
    }
    return b->rc;
}

/* ---- reading ------------------------------------------------------------------------------- */

static int rd_f64(mt_rd *r, double *d)
{
    uint64_t u;
    int rc = mt_rd_u64le(r, &u);
    if (!rc) memcpy(d, &u, 8);
    return rc;
}

/* Rebuild one compact sketch from the columns into sk; its offset and length in *off, *len. */
static int get_sketch(mt_rd *c, const mt_rollrow *r, mt_rollbuf *sk, int64_t **idx, uint64_t **cnt,
                      size_t *cap)
{
    skparts s;
    if (mt_rd_u8(&c[C_SKHDR], &s.version) || mt_rd_uvarint(&c[C_SKHDR], &s.zero) ||
        mt_rd_uvarint(&c[C_SKHDR], &s.bins[0]) || mt_rd_uvarint(&c[C_SKHDR], &s.bins[1]))
        return MT_ECORRUPT;
    /* each bin takes at least a byte of the index column */
    if (s.bins[0] > mt_rd_left(&c[C_SKIDX]) || s.bins[1] > mt_rd_left(&c[C_SKIDX]) - s.bins[0])
        return MT_ECORRUPT;
    size_t nb = (size_t)(s.bins[0] + s.bins[1]);
    if (mt_grow(idx, cap, nb ? nb : 1, sizeof **idx, 64)) return -ENOMEM;
    uint64_t *c2 = realloc(*cnt, *cap * sizeof **cnt);
    if (!c2) return -ENOMEM;
    *cnt = c2;
    for (size_t k = 0, st = 0, j = 0; k < nb; k++, j++) {
        while (j == s.bins[st]) st++, j = 0;
        uint64_t x, y;
        if (mt_rd_uvarint(&c[C_SKIDX], &x) || mt_rd_uvarint(&c[C_SKCNT], &y)) return MT_ECORRUPT;
        if (!j)
            (*idx)[k] = mt_unzigzag(x);
        else if (x >= (uint64_t)1 << 40 ||
                 __builtin_add_overflow((*idx)[k - 1], (int64_t)x + 1, &(*idx)[k]))
            return MT_ECORRUPT;
        (*cnt)[k] = (j ? (*cnt)[k - 1] : 0) + (uint64_t)mt_unzigzag(y);
    }
    sk_build(sk, &s, r->min, r->max, *idx, *cnt);
    return sk->rc;
}

int mt_rollcodec_get(mt_rd *rd, size_t n, bool sketches, mt_rollrow *rows, uint8_t **sk)
{
    mt_rd c[NCOL];
    int ncol = sketches ? NCOL : C_SKMODE;
    *sk = NULL;
    for (int k = 0; k < ncol; k++) {
        uint64_t len;
        if (mt_rd_uvarint(rd, &len) || len > mt_rd_left(rd)) return MT_ECORRUPT;
        c[k] = (mt_rd){rd->p, rd->p + len};
        rd->p += len;
    }
    mt_rollbuf out = {0};
    size_t *off = sketches && n ? malloc(n * sizeof *off) : NULL;
    int64_t *idx = NULL;
    uint64_t *cnt = NULL;
    size_t cap = 0;
    int rc = sketches && n && !off ? -ENOMEM : MT_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        mt_rollrow *r = &rows[i];
        uint8_t mode;
        memset(r, 0, sizeof *r);
        if ((rc = mt_rd_uvarint(&c[C_COUNT], &r->count)) || (rc = mt_rd_u8(&c[C_MODE], &mode)))
            break;
        if (mode == RAW) {
            double *to[6] = {&r->sum, &r->min, &r->max, &r->q[0], &r->q[1], &r->q[2]};
            for (int k = 0; !rc && k < 6; k++) rc = rd_f64(&c[C_RAW], to[k]);
        } else {
            drow d = {.e = mode & 15, .shift = mode >> 4};
            if (mt_rd_svarint(&c[C_MIN], &d.min)) rc = MT_ECORRUPT;
            for (int k = 0; !rc && k < NSTEP; k++) rc = mt_rd_uvarint(&c[C_STEP + k], &d.step[k]);
            if (!rc && (mt_rd_svarint(&c[C_SUM], &d.sum) || mt_rd_svarint(&c[C_CORR], &d.corr)))
                rc = MT_ECORRUPT;
            if (!rc) rc = drow_values(&d, r->count, r);
        }
        if (rc || !sketches) continue;
        uint8_t skmode;
        off[i] = out.len;
        if ((rc = mt_rd_u8(&c[C_SKMODE], &skmode))) break;
        if (skmode == 1) {
            rc = get_sketch(c, r, &out, &idx, &cnt, &cap);
        } else if (skmode == 0) {
            uint64_t len;
            if (mt_rd_uvarint(&c[C_SKVERB], &len) || len > mt_rd_left(&c[C_SKVERB])) {
                rc = MT_ECORRUPT;
                break;
            }
            mt_rollbuf_put(&out, c[C_SKVERB].p, (size_t)len);
            c[C_SKVERB].p += len;
            rc = out.rc;
        } else {
            rc = MT_ECORRUPT;
        }
        r->sketch_len = out.len - off[i];
    }
    for (int k = 0; !rc && k < ncol; k++)
        if (mt_rd_left(&c[k])) rc = MT_ECORRUPT; /* every column read to its end */
    for (size_t i = 0; !rc && sketches && i < n; i++) rows[i].sketch = out.p + off[i];
    free(off);
    free(idx);
    free(cnt);
    *sk = out.p;
    return rc;
}
