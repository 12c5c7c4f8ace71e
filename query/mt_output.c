/*
 * mt_output.c — query results as CSV, a tab-separated table, or JSON (the
 * stable shapes of docs/query.md), written through a callback so the CLI
 * (stdout) and metrond's HTTP API (a response body) print the same bytes.
 */
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_out.h"
#include "mt_query.h"
#include "mt_time.h"

/* 10^0 .. 10^19, exact in uint64 (and as doubles up to 10^22) */
static const uint64_t pow10u[] = {1ull,
                                  10ull,
                                  100ull,
                                  1000ull,
                                  10000ull,
                                  100000ull,
                                  1000000ull,
                                  10000000ull,
                                  100000000ull,
                                  1000000000ull,
                                  10000000000ull,
                                  100000000000ull,
                                  1000000000000ull,
                                  10000000000000ull,
                                  100000000000000ull,
                                  1000000000000000ull,
                                  10000000000000000ull,
                                  100000000000000000ull,
                                  1000000000000000000ull,
                                  10000000000000000000ull};

/*
 * The common case without printf: |v| in [1e-4, 1e15) and v the double
 * nearest some r / 10^k with r < 10^15. Then that decimal, with the
 * smallest such k, is exactly what the %.15g of the general case prints
 * (v is within half an ulp of it, far closer than the 15-digit grid's
 * spacing). One test at the most digits that fit, K, finds it: r / 10^k
 * is r * 10^(K-k) / 10^K, and both divisions are correctly rounded, so
 * the test is exact; the trailing zeros of the integer found give the
 * smallest k. x is floor(log10 |v|), or one off: then v only goes on to
 * format_exact. The caller checks the range and that buf holds 40 bytes.
 * Returns the length, or 0 when v is not such a value.
 */
static size_t format_short(double v, int x, char *buf)
{
    double a = fabs(v);
    int k = 14 - x;
    if (k < 0 || k > 18) return 0;
    double s = nearbyint(a * (double)pow10u[k]);
    if (s >= 1e15 || s / (double)pow10u[k] != a) return 0;
    uint64_t r = (uint64_t)s;
    while (k > 0 && r % 10 == 0) r /= 10, k--;
    uint64_t scale = pow10u[k];
    char *p = buf;
    if (v < 0) *p++ = '-';
    char tmp[24];
    int n = 0;
    for (uint64_t ip = r / scale; n == 0 || ip; ip /= 10) tmp[n++] = (char)('0' + ip % 10);
    while (n) *p++ = tmp[--n];
    if (k) {
        *p++ = '.';
        uint64_t frac = r % scale;
        for (int i = k - 1; i >= 0; i--, frac /= 10) p[i] = (char)('0' + frac % 10);
        p += k;
    }
    *p = 0;
    return (size_t)(p - buf);
}

/*
 * The rest of [1e-4, 1e15) without printf or strtod, in 128-bit integers:
 * the same result as the loop below. |v| = m / 2^s exactly (m of 53 bits);
 * for P = 15, 16, 17 digits, q = |v| * 10^t rounded half to even (as
 * glibc's printf rounds) is the P-digit decimal q / 10^t, and it reads back
 * as v when it lies within half an ulp of |v| (at the edge too when m is
 * even: strtod rounds ties to even). The caller checks the range and that
 * buf holds 40 bytes. Returns the length, or 0.
 */
static size_t format_exact(double v, int x, char *buf)
{
    __extension__ typedef unsigned __int128 u128;
    double a = fabs(v);
    int e;
    double f = frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(f, 53);
    int s = 53 - e; /* 3 <= s <= 67 in this range */
#define P10(k) ((k) <= 19 ? (u128)pow10u[k] : (u128)pow10u[19] * pow10u[(k)-19])
    /* x, the decimal exponent, may be one off: the loop below settles it */
    for (int P = 15; P <= 17; P++) {
        int t;
        u128 q, rem, half;
        for (;;) {
            t = P - 1 - x;
            if (t < 0 || t > 21) return 0;
            u128 n = (u128)m * P10(t);
            q = n >> s;
            rem = n & (((u128)1 << s) - 1);
            half = (u128)1 << (s - 1);
            if (q >= pow10u[P])
                x++;
            else if (q < pow10u[P - 1])
                x--;
            else
                break;
        }
        if (rem > half || (rem == half && (q & 1))) q++;
        int X = x;
        if (q == pow10u[P]) q = pow10u[P - 1], X++, t--;
        if (X >= P || X < -4 || t < 0) return 0; /* %g would print an exponent */
        /* |q / 10^t - m / 2^s| against half an ulp, all times 4 * 10^t * 2^s */
        u128 A = q << (s + 2), B = (u128)m * P10(t) * 4, lim = P10(t) * 2;
        u128 lim_low = m == (1ull << 52) ? lim / 2 : lim; /* the ulp below a power of 2 is half */
        bool even = !(m & 1);
        bool ok = A >= B ? (A - B < lim || (even && A - B == lim))
                         : (B - A < lim_low || (even && B - A == lim_low));
        if (!ok) continue;
        /* the P digits of q, the point after X + 1 of them; trailing zeros go */
        char d[20];
        uint64_t digits = (uint64_t)q; /* < 10^17: 64-bit division, not a 128-bit libcall */
        for (int i = P - 1; i >= 0; i--, digits /= 10) d[i] = (char)('0' + (int)(digits % 10));
        int last = P - 1;
        while (last > X && last > 0 && d[last] == '0') last--;
        char *p = buf;
        if (v < 0) *p++ = '-';
        if (X < 0) {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -X - 1; i++) *p++ = '0';
            for (int i = 0; i <= last; i++) *p++ = d[i];
        } else {
            for (int i = 0; i <= X; i++) *p++ = d[i];
            if (last > X) {
                *p++ = '.';
                for (int i = X + 1; i <= last; i++) *p++ = d[i];
            }
        }
        *p = 0;
        return (size_t)(p - buf);
    }
#undef P10
    return 0;
}

size_t mt_format_double(double v, char *buf, size_t cap)
{
    /* floor(log10 |v|) from the binary exponent and one comparison, without log10: exact
       but where the double nearest a power of ten lies below it; one off is allowed */
    static const double p10[] = {1e-4, 1e-3, 1e-2, 1e-1, 1e0,  1e1,  1e2,  1e3,  1e4,  1e5, 1e6,
                                 1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16};
    double a = fabs(v);
    size_t n = 0;
    if (a >= 1e-4 && a < 1e15 && cap >= 40) {
        int e;
        frexp(a, &e); /* a in [2^(e-1), 2^e) */
        int x = (int)floor((e - 1) * 0.30102999566398120);
        if (x < -4) x = -4;
        if (a >= p10[x + 5]) x++;
        n = format_short(v, x, buf);
        if (!n) n = format_exact(v, x, buf);
    }
    if (n) return n;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return strlen(buf);
}

int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows)
{
    mt_out o = {fn, ud, 0};
    bool per_series = !spec->by_none && !spec->nby;
    /* header */
    if (f == MT_OUT_JSON) mt_out_puts(&o, "{\"columns\":[");
    bool first = true;
    if (per_series) mt_out_cell(&o, f, first, "series", 6, true), first = false;
    for (size_t i = 0; i < spec->nby; i++)
        mt_out_cell(&o, f, first, spec->by[i], strlen(spec->by[i]), true), first = false;
    mt_out_cell(&o, f, first, "time", 4, true);
    if (!spec->naggs) mt_out_cell(&o, f, false, "value", 5, true);
    for (size_t i = 0; i < spec->naggs; i++)
        mt_out_cell(&o, f, false, spec->aggs[i].name, strlen(spec->aggs[i].name), true);
    mt_out_puts(&o, f == MT_OUT_JSON ? "],\"rows\":[" : "\n");

    mt_row row;
    int rc = MT_ENOTFOUND;
    size_t n = 0;
    while (!o.rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        char t[48], v[64];
        mt_time_format(row.time, t, sizeof t);
        if (f == MT_OUT_JSON) mt_out_puts(&o, n ? ",[" : "[");
        first = true;
        if (per_series) {
            mt_out_cell(&o, f, first, row.group, strlen(row.group), true);
            first = false;
        } else {
            /* "tag=v,tag2=w" in the order of --by: one cell per value */
            const char *g = row.group;
            for (size_t i = 0; i < spec->nby; i++) {
                const char *eq = strchr(g, '='), *end = eq ? strchr(eq, ',') : NULL;
                /* values may hold commas: the next cell starts at ",<next tag>=" */
                if (eq && i + 1 < spec->nby) {
                    char next[300];
                    snprintf(next, sizeof next, ",%s=", spec->by[i + 1]);
                    end = strstr(eq, next);
                }
                if (!end) end = eq ? eq + strlen(eq) : g;
                mt_out_cell(&o, f, first, eq ? eq + 1 : "", eq ? (size_t)(end - eq - 1) : 0, true);
                first = false;
                g = *end ? end + 1 : end;
            }
        }
        mt_out_cell(&o, f, first, t, strlen(t), true);
        if (!spec->naggs) {
            const char *s = v;
            size_t sl;
            switch (row.type) {
            case MT_VT_FLOAT: mt_format_double(row.raw.f, v, sizeof v); break;
            case MT_VT_INT: snprintf(v, sizeof v, "%lld", (long long)row.raw.i); break;
            case MT_VT_UINT: snprintf(v, sizeof v, "%llu", (unsigned long long)row.raw.u); break;
            case MT_VT_BOOL: snprintf(v, sizeof v, "%s", row.raw.u ? "true" : "false"); break;
            case MT_VT_STRING: s = row.str + MT_VAL_STR_OFF(row.raw); break;
            }
            sl = row.type == MT_VT_STRING ? MT_VAL_STR_LEN(row.raw) : strlen(v);
            mt_out_cell(&o, f, false, s, sl, row.type == MT_VT_STRING);
        }
        for (size_t i = 0; i < row.nvalues; i++) {
            bool none = isnan(row.values[i]) || isinf(row.values[i]);
            if (!none) mt_format_double(row.values[i], v, sizeof v);
            const char *s = none ? (f == MT_OUT_JSON ? "null" : "") : v;
            mt_out_cell(&o, f, false, s, strlen(s), false);
        }
        mt_out_puts(&o, f == MT_OUT_JSON ? "]" : "\n");
        n++;
    }
    if (f == MT_OUT_JSON) mt_out_puts(&o, "]}\n");
    if (rows) *rows = n;
    if (o.rc) return o.rc;
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}
