/* mt_rice.c — Golomb-Rice blocks (format in mt_rice.h). */
#include "mt_rice.h"

#include <math.h>
#include <string.h>

#define ESCAPE_Q 31 /* unary run that marks an escaped 64-bit value */

size_t mt_rice_bound(size_t n)
{
    return 1 + (n * (ESCAPE_Q + 64) + 7) / 8 + 8;
}

static uint64_t cost_at(const uint64_t *z, size_t n, unsigned k)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t q = z[i] >> k;
        bits += q < ESCAPE_Q ? q + 1 + k : ESCAPE_Q + 64;
    }
    return bits;
}

/* The k near log2(mean * ln 2) (the Rice optimum for geometric data) that costs least. */
static unsigned best_k(const uint64_t *z, size_t n, uint64_t *cost)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)z[i];
    double mean = n ? sum / (double)n : 0;
    int k0 = mean * 0.6931 >= 2 ? (int)floor(log2(mean * 0.6931)) : 0;
    if (k0 > 63) k0 = 63;
    unsigned best = (unsigned)k0;
    uint64_t best_cost = UINT64_MAX;
    for (int k = k0 - 1; k <= k0 + 1; k++) {
        if (k < 0 || k > 63) continue;
        uint64_t c = cost_at(z, n, (unsigned)k);
        if (c < best_cost) best_cost = c, best = (unsigned)k;
    }
    *cost = best_cost;
    return best;
}

uint64_t mt_rice_cost(const uint64_t *z, size_t n)
{
    uint64_t cost;
    best_k(z, n, &cost);
    return cost;
}

typedef struct bitw {
    uint8_t *p;
    uint64_t acc;
    unsigned nb;
} bitw;

/* Append the low `bits` (<= 32) bits of v. */
static inline void put_bits(bitw *w, uint64_t v, unsigned bits)
{
    if (bits < 64) v &= (1ull << bits) - 1;
    w->acc |= v << w->nb;
    w->nb += bits;
    while (w->nb >= 8) {
        *w->p++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->nb -= 8;
    }
}

static inline void put_wide(bitw *w, uint64_t v, unsigned bits)
{
    if (bits > 32) {
        put_bits(w, v, 32);
        v >>= 32;
        bits -= 32;
    }
    put_bits(w, v, bits);
}

size_t mt_rice_encode(const uint64_t *z, size_t n, uint8_t *out)
{
    uint64_t cost;
    unsigned k = best_k(z, n, &cost);
    out[0] = (uint8_t)k;
    bitw w = {out + 1, 0, 0};
    for (size_t i = 0; i < n; i++) {
        uint64_t q = z[i] >> k;
        if (q < ESCAPE_Q) {
            put_bits(&w, (1ull << q) - 1, (unsigned)q + 1);
            put_wide(&w, z[i], k);
        } else {
            put_bits(&w, (1ull << ESCAPE_Q) - 1, ESCAPE_Q);
            put_wide(&w, z[i], 64);
        }
    }
    if (w.nb) *w.p++ = (uint8_t)w.acc;
    return (size_t)(w.p - out);
}

typedef struct bitr {
    const uint8_t *base;
    size_t len, pos; /* bytes, and the next byte to load */
    uint64_t acc;
    unsigned nb;   /* valid bits in acc */
    uint64_t used; /* bits consumed */
} bitr;

/* Top the window up to at least 56 bits; past the end it loads zeros. */
static inline void refill(bitr *r)
{
    if (r->pos + 8 <= r->len) {
        uint64_t w;
        memcpy(&w, r->base + r->pos, 8);
        r->acc |= w << r->nb;
        r->pos += (63 - r->nb) >> 3;
        r->nb |= 56;
        return;
    }
    while (r->nb < 56) {
        uint64_t b = r->pos < r->len ? r->base[r->pos] : 0;
        r->acc |= b << r->nb;
        r->pos++;
        r->nb += 8;
    }
}

static inline uint64_t take(bitr *r, unsigned bits)
{
    uint64_t v = bits ? r->acc & (UINT64_MAX >> (64 - bits)) : 0;
    r->acc = bits < 64 ? r->acc >> bits : 0;
    r->nb -= bits;
    r->used += bits;
    return v;
}

static inline uint64_t take_wide(bitr *r, unsigned bits)
{
    if (bits <= 32) {
        if (r->nb < bits) refill(r);
        return take(r, bits);
    }
    refill(r);
    uint64_t lo = take(r, 32);
    refill(r);
    return lo | take(r, bits - 32) << 32;
}

int mt_rice_decode(const uint8_t *in, size_t len, uint64_t *z, size_t n, size_t *used)
{
    if (len < 1 || in[0] > 63) return -1;
    unsigned k = in[0];
    uint64_t avail = (uint64_t)(len - 1) * 8;
    if (n > avail) return -1; /* every value takes at least one bit */
    bitr r = {in + 1, len - 1, 0, 0, 0, 0};
    const uint64_t kmask = k < 64 ? (1ull << k) - 1 : UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        refill(&r);
        uint64_t ones = ~r.acc;
        unsigned q = ones ? (unsigned)__builtin_ctzll(ones) : 64;
        unsigned t = q + 1 + k;
        if (q < ESCAPE_Q && t <= r.nb) {
            /* the usual case: the run, its stop bit and the k low bits are all in the window
               (t <= 56), taken at once; the same bits as the general path below */
            z[i] = ((uint64_t)q << k) | ((r.acc >> (q + 1)) & kmask);
            r.acc >>= t;
            r.nb -= t;
            r.used += t;
        } else if (q < ESCAPE_Q) {
            take(&r, q + 1);
            z[i] = ((uint64_t)q << k) | take_wide(&r, k);
        } else {
            take(&r, ESCAPE_Q);
            z[i] = take_wide(&r, 64);
        }
        if (r.used > avail) return -1;
    }
    *used = 1 + (size_t)((r.used + 7) / 8);
    return 0;
}
