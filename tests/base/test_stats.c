/*
 * test_stats.c — summaries and PERCENTILE_CONT by selection, against a
 * full sort with PostgreSQL's formula, bit for bit. (tests/sql/test_pg.c
 * checks the same function against PostgreSQL itself.)
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mt_stats.h"
#include "test_util.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The reference: sort everything, then PostgreSQL's percentile_cont_final. */
static double reference(const double *v, size_t n, double p)
{
    double *s = malloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp);
    double pos = p * (double)(n - 1), r;
    size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
    r = hi > lo ? s[lo] + (pos - (double)lo) * (s[hi] - s[lo]) : s[lo];
    free(s);
    return r;
}

Test(stats, percentile_cont_equals_a_full_sort_bit_for_bit)
{
    uint64_t seed = mt_test_seed();
    const double fixed[] = {0, 0.01, 0.25, 0.5, 0.75, 0.95, 0.99, 1};
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + mt_test_rand(&seed) % (round < 2000 ? 64 : 5000);
        double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *v);
        int kind = round % 5;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = mt_test_rand(&seed);
            v[i] = kind == 4   ? (i == n / 2 ? 1e300 : (double)(r % 1000) / 8) /* one outlier */
                   : kind == 0 ? (double)(int64_t)(r % 2001 - 1000) / 100      /* decimals */
                   : kind == 1 ? (double)(r % 7)                               /* many ties */
                   : kind == 2 ? exp((double)(r % 100000) / 5000.0)            /* heavy tail */
                               : (double)(int64_t)r / 3.0;                     /* anything */
        }
        double p[10], got[10];
        size_t np = 0;
        for (size_t i = 0; i < 8; i++) p[np++] = fixed[i];
        p[np++] = (double)(mt_test_rand(&seed) % 1000001) / 1e6;
        memcpy(w, v, n * sizeof *v);
        cr_assert_eq(mt_percentiles_cont(w, n, p, np - 1, got), MT_OK);
        for (size_t i = 0; i < np - 1; i++)
            cr_assert_eq(got[i], reference(v, n, p[i]), "n %zu p %g (MT_TEST_SEED=%llu)", n, p[i],
                         (unsigned long long)mt_test_seed());
        memcpy(w, v, n * sizeof *v);
        double one;
        cr_assert_eq(mt_percentile_cont(w, n, p[np - 1], &one), MT_OK);
        cr_assert_eq(one, reference(v, n, p[np - 1]), "n %zu p %.17g", n, p[np - 1]);
        free(v);
        free(w);
    }
}

Test(stats, percentile_cont_edges)
{
    double v[] = {3, 1, 2}, out;
    cr_expect_eq(mt_percentile_cont(v, 3, 0.5, &out), MT_OK);
    cr_expect_eq(out, 2);
    cr_expect_eq(mt_percentile_cont(v, 3, 1.5, &out), MT_EINVAL);
    cr_expect_eq(mt_percentile_cont(v, 3, NAN, &out), MT_EINVAL);
    cr_expect_eq(mt_percentile_cont(v, 0, 0.5, &out), MT_EINVAL);
    double one = 42;
    cr_expect_eq(mt_percentile_cont(&one, 1, 0.99, &out), MT_OK);
    cr_expect_eq(out, 42);
    double two[] = {10, 20};
    cr_expect_eq(mt_percentile_cont(two, 2, 0.95, &out), MT_OK);
    cr_expect_eq(out, 10 + 0.95 * 10);
    /* fractions out of order still answer each one */
    double w[] = {5, 4, 3, 2, 1}, p[] = {0.75, 0.25}, o[2];
    cr_expect_eq(mt_percentiles_cont(w, 5, p, 2, o), MT_OK);
    cr_expect_eq(o[0], 4);
    cr_expect_eq(o[1], 2);
}

Test(stats, summaries_merge_like_one_pass)
{
    uint64_t seed = mt_test_seed();
    mt_summary all, a, b;
    mt_summary_init(&all);
    mt_summary_init(&a);
    mt_summary_init(&b);
    cr_expect(isnan(mt_summary_avg(&all)));
    for (int i = 0; i < 10000; i++) {
        double v = (double)(mt_test_rand(&seed) % 100000) / 100.0 - 300;
        mt_summary_add(&all, v);
        mt_summary_add(i < 3000 ? &a : &b, v);
    }
    mt_summary_merge(&a, &b);
    cr_expect_eq(a.count, all.count);
    cr_expect_eq(a.min, all.min);
    cr_expect_eq(a.max, all.max);
    cr_expect_eq(a.first, all.first);
    cr_expect_eq(a.last, all.last);
    cr_expect(fabs(a.sum - all.sum) <= 1e-9 * fabs(all.sum));
    cr_expect(fabs(mt_summary_stddev(&a) - mt_summary_stddev(&all)) <=
              1e-12 * mt_summary_stddev(&all));
    mt_summary one;
    mt_summary_init(&one);
    mt_summary_add(&one, 5);
    cr_expect(isnan(mt_summary_stddev(&one)));
    cr_expect_eq(mt_summary_avg(&one), 5);
}
