/*
 * mt_dtoa.c — mt_format_double: the shortest decimal that reads back as
 * the same double, as the first of %.15g, %.16g, %.17g that does, without
 * printf in the usual case.
 *
 * The digits come from Schubfach (R. Giulietti, "The Schubfach way to
 * render doubles", 2020): the shortest decimal in the double's rounding
 * interval, the closest of them to it (ties: the even one). Debian has this
 * kind of code only in C++ (double-conversion, dragonbox): a C++ toolchain
 * for one function was not worth it. Its table, g(k), is written by
 * gen_dtoa_table.py from exact integers.
 *
 * Why those digits are the ones %.Pg prints, for a normal double v (ulp u):
 *   - shortest has D <= 15 digits: v is within u/2 (at most 2^-53 of v) of
 *     them, under half the spacing of 15-digit decimals (at least 10^-15
 *     of v): they are also v rounded to 15 digits, %.15g (which drops the
 *     trailing zeros);
 *   - D = 17: no 16-digit decimal reads back, so printf goes to %.17g, v
 *     rounded to 17 digits (ties to even); that decimal always reads back,
 *     so it is the closest of the candidates, as Schubfach picks;
 *   - D = 16: the interval is symmetric unless v is a power of two; then
 *     the closest 16-digit decimal is in it whenever any is, and it is what
 *     %.16g prints. A power of two (the interval's lower half is u/4) may
 *     have a 16-digit decimal that reads back while the nearest does not:
 *     printf decides those, as it does subnormals (where u is large next to
 *     v), zeros, infinities and NaN.
 * %.Pg writes an exponent when the decimal exponent X < -4 or X >= P,
 * P = max(D, 15): the same rule here. tests/query/test_query.c checks every
 * case against printf.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_query.h"

#include "mt_dtoa_table.h"

__extension__ typedef unsigned __int128 u128;

/* floor(log10(2^q)), floor(log10(3/4 * 2^q)), floor(log2(10^e)): exact over the exponents of
   doubles (gen_dtoa_table.py's range; checked there against exact arithmetic) */
static int flog10_pow2(int q)
{
    return (int)(((int64_t)q * 661971961083LL) >> 41);
}

static int flog10_three_quarters_pow2(int q)
{
    return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}

static int flog2_pow10(int e)
{
    return (int)(((int64_t)e * 913124641741LL) >> 38);
}

/*
 * g * cp / 2^127 rounded to odd, g = g1 * 2^63 + g0 (the table's halves). The low bits it
 * drops are below the excess of g over 10^-k * 2^-r: an exact tie stays a tie.
 */
static uint64_t rop(const uint64_t g[2], uint64_t cp)
{
    uint64_t x1 = (uint64_t)(((u128)g[1] * cp) >> 64);
    u128 y = (u128)g[0] * cp;
    uint64_t z = ((uint64_t)y >> 1) + x1;
    uint64_t vbp = (uint64_t)(y >> 64) + (z >> 63);
    return vbp | (((z & (UINT64_MAX >> 1)) + (UINT64_MAX >> 1)) >> 63);
}

/*
 * The shortest decimal *sig * 10^*e10 in the rounding interval of c * 2^q (a normal double:
 * 2^52 <= c < 2^53), the closest to it of those. *sig may end in zeros.
 */
static void shortest(uint64_t c, int q, uint64_t *sig, int *e10)
{
    /* the interval, times 2^(q-2): [cbl, cbr], closed when c is even (strtod's ties) */
    uint64_t out = c & 1, cb = c << 2, cbr = cb + 2, cbl;
    int k;
    if (c != 1ull << 52) {
        cbl = cb - 2;
        k = flog10_pow2(q);
    } else { /* a power of two: the double below is half as far as the one above */
        cbl = cb - 1;
        k = flog10_three_quarters_pow2(q);
    }
    assert(k >= MT_DTOA_K_MIN && k <= MT_DTOA_K_MAX);
    int h = q + flog2_pow10(-k) + 2;
    assert(h >= 2 && h <= 5); /* cb << h < 2^60 */
    const uint64_t *g = mt_dtoa_g[k - MT_DTOA_K_MIN];
    /* the interval's ends and v, times 10^-k, in quarters */
    uint64_t vb = rop(g, cb << h), vbl = rop(g, cbl << h), vbr = rop(g, cbr << h);
    uint64_t s = vb >> 2;
    *e10 = k;
    if (s >= 100) { /* a digit fewer: at most one multiple of 10 lies in the interval */
        uint64_t sp10 = 10 * (s / 10), tp10 = sp10 + 10;
        bool upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;
        if (upin != wpin) {
            *sig = upin ? sp10 : tp10;
            return;
        }
    }
    uint64_t t = s + 1;
    bool uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;
    if (uin != win) {
        *sig = uin ? s : t;
        return;
    }
    uint64_t mid = (s + t) << 1; /* both in: the closer, and the even one of a tie */
    *sig = vb < mid || (vb == mid && !(s & 1)) ? s : t;
}

/* "00" to "99": two digits a division (a number's digits cost half the divisions). */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                  "31323334353637383940414243444546474849505152535455565758596061"
                                  "62636465666768697071727374757677787980818283848586878889909192"
                                  "93949596979899";

/* The n decimal digits of q < 10^9 (leading zeros included) into d, in 32 bits. */
static void put_digits32(uint32_t q, int n, char *d)
{
    while (n >= 2) {
        memcpy(d + n - 2, digit_pairs + 2 * (q % 100), 2);
        q /= 100;
        n -= 2;
    }
    if (n) d[0] = (char)('0' + q % 10);
}

static size_t format_printf(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return strlen(buf);
}

size_t mt_format_double(double v, char *buf, size_t cap)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int be = (int)(bits >> 52 & 0x7ff);
    uint64_t frac = bits & ((1ull << 52) - 1);
    /* 40: the sign, 17 digits, the point and "0.000", and the fixed-size copies below */
    if (be == 0 || be == 0x7ff || cap < 40) return format_printf(v, buf, cap);
    uint64_t sig;
    int e10;
    shortest(frac | 1ull << 52, be - 1075, &sig, &e10);
    if (sig % 100000000 == 0) sig /= 100000000, e10 += 8;
    if (sig % 10000 == 0) sig /= 10000, e10 += 4;
    while (sig % 10 == 0) sig /= 10, e10++;
    int D = 17;
    while (D > 1 && sig < mt_pow10[D - 1]) D--;
    assert(D >= 1 && D <= 17 && sig < mt_pow10[D]);
    if (D == 16 && frac == 0) return format_printf(v, buf, cap); /* see the top of the file */
    int X = e10 + D - 1, P = D > 15 ? D : 15;
    /* the digits, then copies of a fixed 17 bytes, cut by where p goes next: a short memcpy of
       a variable length costs more than the digits (d and buf hold 40 bytes: both in bounds) */
    char d[40] = {0};
    if (D > 8) {
        put_digits32((uint32_t)(sig / 100000000), D - 8, d);
        put_digits32((uint32_t)(sig % 100000000), 8, d + D - 8);
    } else {
        put_digits32((uint32_t)sig, D, d);
    }
    char *p = buf;
    if (bits >> 63) *p++ = '-';
    if (X < -4 || X >= P) { /* d.ddde+XX, as printf writes it */
        *p++ = d[0];
        if (D > 1) {
            *p++ = '.';
            memcpy(p, d + 1, 16);
            p += D - 1;
        }
        int x = X < 0 ? -X : X;
        *p++ = 'e';
        *p++ = X < 0 ? '-' : '+';
        if (x >= 100) *p++ = (char)('0' + x / 100);
        *p++ = (char)('0' + x / 10 % 10);
        *p++ = (char)('0' + x % 10);
    } else if (X < 0) { /* 0.000ddd */
        memcpy(p, "0.0000", 6);
        p += 1 - X;
        memcpy(p, d, 17);
        p += D;
    } else if (D > X + 1) { /* ddd.ddd */
        memcpy(p, d, 17);
        p += X + 1;
        *p++ = '.';
        memcpy(p, d + X + 1, 17);
        p += D - X - 1;
    } else { /* ddd000 */
        memcpy(p, d, 17);
        memset(p + D, '0', 16);
        p += X + 1;
    }
    *p = '\0';
    return (size_t)(p - buf);
}
