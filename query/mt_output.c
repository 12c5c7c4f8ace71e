/*
 * mt_output.c — query results as CSV, a tab-separated table, or JSON (the
 * stable shapes of docs/query.md), written through a callback so the CLI
 * (stdout) and metrond's HTTP API (a response body) print the same bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_out.h"
#include "mt_query.h"
#include "mt_query_int.h"
#include "mt_time.h"

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
    double s = nearbyint(a * (double)mt_pow10[k]);
    if (s >= 1e15 || s / (double)mt_pow10[k] != a) return 0;
    uint64_t r = (uint64_t)s;
    while (k > 0 && r % 10 == 0) r /= 10, k--;
    uint64_t scale = mt_pow10[k];
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

/* The n decimal digits of q (9 <= n <= 17, leading zeros included) into d: the last 8 and the
   rest apart, two chains of divisions the processor runs side by side. */
static void put_digits(uint64_t q, int n, char *d)
{
    put_digits32((uint32_t)(q / 100000000), n - 8, d);
    put_digits32((uint32_t)(q % 100000000), 8, d + n - 8);
}

/*
 * The rest of [1e-4, 1e15) without printf or strtod, in 128-bit integers:
 * the same result as the loop of mt_format_double. |v| = m / 2^s exactly (m
 * of 53 bits, 3 <= s <= 66 here). One product N = m * 10^t, t = 16 - x,
 * is |v| * 10^t * 2^s exactly: its integer part fl (17 digits) and the
 * rest rem / 2^s give the 17-, 16- and 15-digit decimals of |v| rounded
 * half to even (as glibc's printf rounds): the 16-digit one is fl / 10
 * rounded by (fl % 10) * 2^s + rem against 5 * 2^s, and so on. A P-digit
 * decimal c (in units of 10^-t) reads back as v when |c * 2^s - N| is
 * under half an ulp, 10^t / 2 (at the edge too when m is even: strtod
 * rounds ties to even; the ulp below a power of two is half). The first P
 * that reads back is printed, as %.{P}g prints it. The caller checks the
 * range and that buf holds 40 bytes. Returns the length, or 0.
 */
static size_t format_exact(double v, int x, char *buf)
{
    __extension__ typedef unsigned __int128 u128;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int be = (int)(bits >> 52 & 0x7ff);
    if (be == 0 || be == 0x7ff) return 0; /* subnormal, inf, nan: not in this range */
    uint64_t m = (bits & ((1ull << 52) - 1)) | 1ull << 52;
    int s = 1075 - be; /* |v| = m / 2^s */
    if (s < 3 || s > 66) return 0;
#define P10(k) ((k) <= 19 ? (u128)mt_pow10[k] : (u128)mt_pow10[19] * mt_pow10[(k)-19])
    /* x, the decimal exponent, may be one off: the 17 digits settle it */
    u128 N;
    uint64_t fl;
    int t;
    for (int tries = 0;; tries++) {
        t = 16 - x;
        if (t < 0 || t > 21 || tries > 2) return 0;
        N = (u128)m * P10(t);
        fl = (uint64_t)(N >> s);
        if (fl >= mt_pow10[17])
            x++;
        else if (fl < mt_pow10[16])
            x--;
        else
            break;
    }
    u128 rem = N & (((u128)1 << s) - 1), one = (u128)1 << s;
    u128 lim = P10(t); /* an ulp of |v|, in units of N */
    bool even = !(m & 1), pow2 = m == 1ull << 52;
    for (int P = 15; P <= 17; P++) {
        /* constant divisors (a multiplication each), not mt_pow10[17 - P] (a division) */
        uint64_t scale = P == 15 ? 100 : P == 16 ? 10 : 1;
        uint64_t q = P == 15 ? fl / 100 : P == 16 ? fl / 10 : fl;
        uint64_t below = fl - q * scale;
        u128 frac = (u128)below * one + rem; /* what lies below q, times 2^s */
        u128 halfway = P == 17 ? one / 2 : (u128)(scale / 2) * one;
        if (frac > halfway || (frac == halfway && (q & 1))) q++;
        /* q * scale against N, all times 2 (times 4 below a power of two) */
        u128 c = (u128)q * scale << s;
        bool above = c >= N;
        u128 diff = above ? c - N : N - c;
        u128 d2 = above || !pow2 ? diff * 2 : diff * 4;
        if (!(d2 < lim || (even && d2 == lim))) continue;
        int X = x;
        if (q == mt_pow10[P]) q = mt_pow10[P - 1], X++;
        if (X >= P || X < -4) return 0; /* %g would print an exponent */
        /* copies of a fixed 17 bytes, cut by where p goes next: a short memcpy of a variable
           length costs more than the digits (buf holds 40 bytes, d 40: both stay inside) */
        char d[40] = {0};
        put_digits(q, P, d);
        int last = P - 1;
        while (last > X && last > 0 && d[last] == '0') last--;
        char *p = buf;
        if (v < 0) *p++ = '-';
        if (X < 0) {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -X - 1; i++) *p++ = '0';
            memcpy(p, d, 17);
            p += last + 1;
        } else {
            memcpy(p, d, 17);
            p += X + 1;
            if (last > X) {
                *p++ = '.';
                memcpy(p, d + X + 1, 17);
                p += last - X;
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
        uint64_t bits;
        memcpy(&bits, &a, sizeof bits);
        int e = (int)(bits >> 52) - 1022; /* a in [2^(e-1), 2^e): a is normal here */
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

struct mt_query_out {
    mt_out o;
    const mt_query_spec *spec;
    mt_output_format f;
    bool per_series; /* the first column is the series (neither --by nor by none) */
    size_t rows;
    /* MT_OUT_SERIES: the group being collected, its time column and value columns */
    char *group;                        /* malloc'd; NULL before the first row */
    mt_sbuf col[1 + MT_QUERY_MAX_AGGS]; /* "time", then "value" or one per aggregation */
    size_t ncol;
};

/* "tag=v,tag2=w" (a group of --by, in its order) as one value per tag: the i-th into *v, *n. */
static const char *by_value(const mt_query_spec *spec, const char **g, size_t i, size_t *n)
{
    const char *eq = strchr(*g, '='), *end = eq ? strchr(eq, ',') : NULL;
    /* values may hold commas: the next value starts at ",<next tag>=" */
    if (eq && i + 1 < spec->nby) {
        char next[300];
        snprintf(next, sizeof next, ",%s=", spec->by[i + 1]);
        end = strstr(eq, next);
    }
    if (!end) end = eq ? eq + strlen(eq) : *g;
    const char *v = eq ? eq + 1 : "";
    *n = eq ? (size_t)(end - eq - 1) : 0;
    *g = *end ? end + 1 : end;
    return v;
}

/* A raw value as text into v (capacity 64) or, for strings, a pointer into the row. */
static const char *raw_value(const mt_row *row, char *v, size_t *len)
{
    switch (row->type) {
    case MT_VT_FLOAT: mt_format_double(row->raw.f, v, 64); break;
    case MT_VT_INT: snprintf(v, 64, "%lld", (long long)row->raw.i); break;
    case MT_VT_UINT: snprintf(v, 64, "%llu", (unsigned long long)row->raw.u); break;
    case MT_VT_BOOL: snprintf(v, 64, "%s", row->raw.u ? "true" : "false"); break;
    case MT_VT_STRING: *len = MT_VAL_STR_LEN(row->raw); return row->str + MT_VAL_STR_OFF(row->raw);
    }
    *len = strlen(v);
    return v;
}

static int sb_write(void *ud, const char *buf, size_t len)
{
    mt_sbuf *b = ud;
    mt_sb_put(b, buf, len);
    return b->oom ? -ENOMEM : 0;
}

/* MT_OUT_SERIES: write the group collected so far, and empty its columns. */
static void series_flush(mt_query_out *w)
{
    mt_out *o = &w->o;
    if (!w->group) return;
    mt_out_puts(o, w->rows ? ",\n{" : "{");
    if (w->per_series) {
        mt_out_puts(o, "\"series\":");
        mt_out_cell(o, MT_OUT_JSON, true, w->group, strlen(w->group), true);
        mt_out_puts(o, ",");
    } else if (w->spec->nby) {
        mt_out_puts(o, "\"group\":{");
        const char *g = w->group;
        for (size_t i = 0; i < w->spec->nby; i++) {
            size_t n;
            const char *v = by_value(w->spec, &g, i, &n);
            mt_out_cell(o, MT_OUT_JSON, i == 0, w->spec->by[i], strlen(w->spec->by[i]), true);
            mt_out_puts(o, ":");
            mt_out_cell(o, MT_OUT_JSON, true, v, n, true);
        }
        mt_out_puts(o, "},");
    }
    for (size_t c = 0; c < w->ncol; c++) {
        const char *name = c == 0 ? "time" : w->spec->naggs ? w->spec->aggs[c - 1].name : "value";
        if (c) mt_out_puts(o, ",");
        mt_out_cell(o, MT_OUT_JSON, true, name, strlen(name), true);
        mt_out_puts(o, ":[");
        mt_out_put(o, w->col[c].p ? w->col[c].p : "", w->col[c].len);
        mt_out_puts(o, "]");
        w->col[c].len = 0;
    }
    mt_out_puts(o, "}");
    w->rows++;
    free(w->group);
    w->group = NULL;
}

static int series_row(mt_query_out *w, const mt_row *row)
{
    if (w->group && strcmp(w->group, row->group)) series_flush(w);
    if (!w->group && !(w->group = strdup(row->group))) return -ENOMEM;
    bool first = w->col[0].len == 0;
    char t[48], v[64];
    mt_time_format(row->time, t, sizeof t);
    mt_out c = {sb_write, &w->col[0], 0};
    mt_out_cell(&c, MT_OUT_JSON, first, t, strlen(t), true);
    if (!w->spec->naggs) {
        size_t n;
        const char *s = raw_value(row, v, &n);
        c.ud = &w->col[1];
        mt_out_cell(&c, MT_OUT_JSON, first, s, n, row->type == MT_VT_STRING);
    }
    for (size_t i = 0; i < row->nvalues && i + 1 < w->ncol; i++) {
        bool none = isnan(row->values[i]) || isinf(row->values[i]);
        if (!none) mt_format_double(row->values[i], v, sizeof v);
        c.ud = &w->col[i + 1];
        mt_out_cell(&c, MT_OUT_JSON, first, none ? "null" : v, strlen(none ? "null" : v), false);
    }
    return c.rc;
}

/* One point as a line of line protocol: "<measurement,tags> <field>=<value> <ns>". */
static void lp_row(mt_out *o, const mt_row *row)
{
    /* the label is "measurement,tags field": the field follows the last unescaped space */
    const char *label = row->group, *sp = NULL;
    for (const char *p = label; *p; p++)
        if (*p == ' ' && (p == label || p[-1] != '\\')) sp = p;
    if (!sp) return;
    char v[64];
    mt_out_put(o, label, (size_t)(sp - label));
    mt_out_put(o, " ", 1);
    mt_out_puts(o, sp + 1);
    mt_out_put(o, "=", 1);
    switch (row->type) {
    case MT_VT_FLOAT: mt_out_put(o, v, mt_format_double(row->raw.f, v, sizeof v)); break;
    case MT_VT_INT: mt_out_printf(o, "%lldi", (long long)row->raw.i); break;
    case MT_VT_UINT: mt_out_printf(o, "%lluu", (unsigned long long)row->raw.u); break;
    case MT_VT_BOOL: mt_out_puts(o, row->raw.u ? "true" : "false"); break;
    case MT_VT_STRING: {
        const char *s = row->str + MT_VAL_STR_OFF(row->raw);
        size_t n = MT_VAL_STR_LEN(row->raw), run = 0;
        mt_out_put(o, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '"' && s[i] != '\\') continue;
            mt_out_put(o, s + run, i - run);
            mt_out_put(o, "\\", 1);
            run = i; /* the quote or backslash itself goes with the next run */
        }
        mt_out_put(o, s + run, n - run);
        mt_out_put(o, "\"", 1);
        break;
    }
    }
    mt_out_printf(o, " %lld\n", (long long)row->time);
}

int mt_query_out_open(const mt_query_spec *spec, mt_output_format f, mt_write_fn fn, void *ud,
                      mt_query_out **out)
{
    *out = NULL;
    if (f == MT_OUT_LP && spec->naggs) return MT_EINVAL;
    mt_query_out *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    w->o = (mt_out){fn, ud, 0};
    w->spec = spec;
    w->f = f;
    w->per_series = !spec->by_none && !spec->nby;
    w->ncol = 1 + (spec->naggs ? spec->naggs : 1);
    mt_out *o = &w->o;
    *out = w;
    if (f == MT_OUT_LP) return MT_OK;
    mt_output_format hf = f == MT_OUT_SERIES ? MT_OUT_JSON : f;
    if (hf == MT_OUT_JSON) mt_out_puts(o, "{\"columns\":[");
    bool first = true;
    if (f != MT_OUT_SERIES) {
        if (w->per_series) mt_out_cell(o, hf, first, "series", 6, true), first = false;
        for (size_t i = 0; i < spec->nby; i++)
            mt_out_cell(o, hf, first, spec->by[i], strlen(spec->by[i]), true), first = false;
    }
    mt_out_cell(o, hf, first, "time", 4, true);
    if (!spec->naggs) mt_out_cell(o, hf, false, "value", 5, true);
    for (size_t i = 0; i < spec->naggs; i++)
        mt_out_cell(o, hf, false, spec->aggs[i].name, strlen(spec->aggs[i].name), true);
    mt_out_puts(o, f == MT_OUT_SERIES ? "],\"series\":[\n"
                   : f == MT_OUT_JSON ? "],\"rows\":["
                                      : "\n");
    return o->rc;
}

int mt_query_out_row(mt_query_out *w, const mt_row *row)
{
    mt_out *o = &w->o;
    mt_output_format f = w->f;
    const mt_query_spec *spec = w->spec;
    if (o->rc) return o->rc;
    if (f == MT_OUT_LP) {
        lp_row(o, row);
        w->rows++;
        return o->rc;
    }
    if (f == MT_OUT_SERIES) {
        int rc = series_row(w, row);
        return rc ? rc : o->rc;
    }
    char t[48], v[64];
    mt_time_format(row->time, t, sizeof t);
    if (f == MT_OUT_JSON) mt_out_puts(o, w->rows ? ",[" : "[");
    bool first = true;
    if (w->per_series) {
        mt_out_cell(o, f, first, row->group, strlen(row->group), true);
        first = false;
    } else {
        /* one cell per value of --by */
        const char *g = row->group;
        for (size_t i = 0; i < spec->nby; i++) {
            size_t n;
            const char *val = by_value(spec, &g, i, &n);
            mt_out_cell(o, f, first, val, n, true);
            first = false;
        }
    }
    mt_out_cell(o, f, first, t, strlen(t), true);
    if (!spec->naggs) {
        size_t n;
        const char *s = raw_value(row, v, &n);
        mt_out_cell(o, f, false, s, n, row->type == MT_VT_STRING);
    }
    for (size_t i = 0; i < row->nvalues; i++) {
        bool none = isnan(row->values[i]) || isinf(row->values[i]);
        if (!none) mt_format_double(row->values[i], v, sizeof v);
        const char *s = none ? (f == MT_OUT_JSON ? "null" : "") : v;
        mt_out_cell(o, f, false, s, strlen(s), false);
    }
    mt_out_puts(o, f == MT_OUT_JSON ? "]" : "\n");
    w->rows++;
    return o->rc;
}

int mt_query_out_finish(mt_query_out *w)
{
    if (w->f == MT_OUT_SERIES) {
        series_flush(w);
        mt_out_puts(&w->o, "]}\n");
    } else if (w->f == MT_OUT_JSON) {
        mt_out_puts(&w->o, "]}\n");
    }
    return w->o.rc;
}

void mt_query_out_close(mt_query_out *w)
{
    if (!w) return;
    for (size_t i = 0; i < sizeof w->col / sizeof w->col[0]; i++) free(w->col[i].p);
    free(w->group);
    free(w);
}

int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows)
{
    mt_query_out *w;
    int rc = mt_query_out_open(spec, f, fn, ud, &w);
    size_t n = 0;
    mt_row row;
    while (!rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        rc = mt_query_out_row(w, &row);
        n++;
    }
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    int frc = w ? mt_query_out_finish(w) : MT_OK; /* JSON stays whole after a query's error */
    mt_query_out_close(w);
    if (rows) *rows = n;
    return rc ? rc : frc;
}
