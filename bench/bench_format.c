/*
 * bench_format — mt_format_double (query/mt_dtoa.c) against the printf loop
 * it stands for (the first of %.15g, %.16g, %.17g that reads back), on the
 * values a range answer writes: rates (counter deltas over a 5-minute
 * window, 16-17 digits) and agents' short decimals. Both are timed in one
 * process, each on the same values, --repeat times; medians in ns a value.
 * Every value's two texts are compared first: a difference is an error.
 *
 *   bench_format [--values N] [--repeat N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mt_query.h"
#include "mt_time.h"

static size_t by_printf(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return strlen(buf);
}

/* Seconds for one pass of f over v[0..n); *sink keeps the work from being dropped. */
static double pass(size_t (*f)(double, char *, size_t), const double *v, size_t n, size_t *sink)
{
    char buf[64];
    int64_t t0 = mt_mono_ns();
    for (size_t i = 0; i < n; i++) *sink += f(v[i], buf, sizeof buf);
    return (double)(mt_mono_ns() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = 200000;
    int repeat = 5;
    static const struct option opts[] = {
        {"values", required_argument, 0, 'n'}, {"repeat", required_argument, 0, 'r'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            n = (size_t)strtoull(optarg, NULL, 10);
        else if (c == 'r')
            repeat = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench_format [--values N] [--repeat N]\n");
            return 2;
        }
    }
    if (!n || repeat < 1 || repeat > MT_BENCH_MAX_RUNS) return 2;
    double *v = malloc(n * sizeof *v);
    if (!v) return 1;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* even: a counter's increase over 300 s; odd: a decimal with 2 places */
        v[i] = i % 2 ? (double)(x % 1000000) / 100 : (double)(x % 100000000000ull) / 300.0;
    }
    char a[64], b[64];
    for (size_t i = 0; i < n; i++) {
        mt_format_double(v[i], a, sizeof a);
        by_printf(v[i], b, sizeof b);
        if (strcmp(a, b)) {
            fprintf(stderr, "bench_format: %.17g: %s against printf's %s\n", v[i], a, b);
            return 1;
        }
    }
    double s[2][MT_BENCH_MAX_RUNS];
    size_t sink = 0;
    for (int r = 0; r < repeat; r++) { /* interleaved: the machine's noise falls on both */
        s[0][r] = pass(mt_format_double, v, n, &sink);
        s[1][r] = pass(by_printf, v, n, &sink);
    }
    if (!sink) return 1; /* every text has a byte: the passes ran */
    printf("bench_format: %zu values (rates and 2-place decimals), %d runs each\n", n, repeat);
    static const char *name[2] = {"mt_format_double", "printf loop"};
    double med[2];
    for (int k = 0; k < 2; k++) {
        qsort(s[k], (size_t)repeat, sizeof(double), mt_bench_cmp_double);
        med[k] = s[k][repeat / 2];
        printf("%-16s median %6.1f ns a value (min %.1f)\n", name[k], med[k] / (double)n * 1e9,
               s[k][0] / (double)n * 1e9);
    }
    printf("printf loop / mt_format_double: %.1fx\n", med[1] / med[0]);
    free(v);
    return 0;
}
