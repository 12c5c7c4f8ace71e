/*
 * test_sketch.c — the DDSketch's promise: every quantile within 1%
 * (relative) of the exact PERCENTILE_CONT, on skewed and heavy-tailed data
 * (lognormal, Pareto), for one sketch and for hourly sketches merged into a
 * month; merging equals sketching the union; the encoding round-trips and
 * refuses bytes that are not a sketch.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mt_sketch.h"
#include "mt_stats.h"

static const double qs[] = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};
#define NQ (sizeof qs / sizeof qs[0])

/* splitmix64: deterministic data, the same on every machine */
static uint64_t rng = 42;
static double uniform(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static double lognormal(void)
{
    double n = sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
    return exp(1.0 + 2.0 * n); /* sigma 2: spans many decades */
}

static double pareto(void)
{
    return 0.001 / pow(uniform(), 1 / 1.16); /* the 80/20 shape; infinite variance */
}

static double latency_signed(void)
{
    return (uniform() < 0.3 ? -1 : 1) * lognormal(); /* both stores and the mixed middle */
}

/* Worst relative error of the sketch's quantiles against the exact ones. */
static double worst_error(const mt_sketch *s, double *v, size_t n, bool same_sign)
{
    double worst = 0;
    for (size_t i = 0; i < NQ; i++) {
        double exact, est;
        cr_assert_eq(mt_percentile_cont(v, n, qs[i], &exact), MT_OK);
        cr_assert_eq(mt_sketch_quantile(s, qs[i], &est), MT_OK);
        if (!same_sign && exact != 0 && fabs(exact) < 1e-3) continue; /* interpolated across 0 */
        double err = fabs(est - exact) / fabs(exact);
        if (err > worst) worst = err;
    }
    return worst;
}

static void check_bound(double (*gen)(void), size_t n, bool same_sign)
{
    double *v = malloc(n * sizeof *v);
    mt_sketch *s;
    cr_assert_eq(mt_sketch_new(&s), MT_OK);
    for (size_t i = 0; i < n; i++) {
        v[i] = gen();
        cr_assert_eq(mt_sketch_add(s, v[i], 1), MT_OK);
    }
    cr_assert_eq(mt_sketch_count(s), n);
    double err = worst_error(s, v, n, same_sign);
    cr_assert(err <= MT_SKETCH_ALPHA * (1 + 1e-9), "worst relative error %g", err);
    mt_sketch_free(s);
    free(v);
}

Test(sketch, lognormal_within_one_percent)
{
    check_bound(lognormal, 200000, true);
}
Test(sketch, pareto_within_one_percent)
{
    check_bound(pareto, 200000, true);
}
Test(sketch, negative_and_positive_values)
{
    check_bound(latency_signed, 100000, false);
}

/* 30 days of hourly sketches, each encoded as stored, merged: the month's quantiles. */
Test(sketch, a_month_of_hours_merges_within_the_bound)
{
    size_t hours = 30 * 24, per = 400, n = hours * per;
    double *v = malloc(n * sizeof *v);
    mt_sketch *hour, *month, *whole;
    cr_assert_eq(mt_sketch_new(&hour), MT_OK);
    cr_assert_eq(mt_sketch_new(&month), MT_OK);
    cr_assert_eq(mt_sketch_new(&whole), MT_OK);
    for (size_t h = 0; h < hours; h++) {
        mt_sketch_clear(hour);
        for (size_t i = 0; i < per; i++) {
            /* a daily cycle on a heavy tail */
            double x = pareto() * (2 + sin((double)h * M_PI / 12));
            v[h * per + i] = x;
            cr_assert_eq(mt_sketch_add(hour, x, 1), MT_OK);
            cr_assert_eq(mt_sketch_add(whole, x, 1), MT_OK);
        }
        uint8_t *buf;
        size_t len;
        cr_assert_eq(mt_sketch_encode(hour, &buf, &len), MT_OK);
        cr_assert_eq(mt_sketch_decode_merge(month, buf, len), MT_OK);
        free(buf);
    }
    cr_assert_eq(mt_sketch_count(month), n);
    double err = worst_error(month, v, n, true);
    cr_assert(err <= MT_SKETCH_ALPHA * (1 + 1e-9), "worst relative error %g", err);
    /* merging loses nothing: the merged month answers as the sketch of every value */
    for (size_t i = 0; i < NQ; i++) {
        double a, b;
        mt_sketch_quantile(month, qs[i], &a);
        mt_sketch_quantile(whole, qs[i], &b);
        cr_assert_eq(a, b, "q %g: merged %.17g, whole %.17g", qs[i], a, b);
    }
    mt_sketch_free(hour);
    mt_sketch_free(month);
    mt_sketch_free(whole);
    free(v);
}

Test(sketch, merge_equals_the_union)
{
    mt_sketch *a, *b, *u;
    mt_sketch_new(&a), mt_sketch_new(&b), mt_sketch_new(&u);
    for (int i = 0; i < 5000; i++) {
        double x = latency_signed(), y = i % 7 ? lognormal() : 0;
        mt_sketch_add(a, x, 1), mt_sketch_add(b, y, 2);
        mt_sketch_add(u, x, 1), mt_sketch_add(u, y, 2);
    }
    cr_assert_eq(mt_sketch_merge(a, b), MT_OK);
    cr_assert_eq(mt_sketch_count(a), 15000);
    for (size_t i = 0; i < NQ; i++) {
        double x, y;
        mt_sketch_quantile(a, qs[i], &x);
        mt_sketch_quantile(u, qs[i], &y);
        cr_assert_eq(x, y);
    }
    mt_sketch_free(a), mt_sketch_free(b), mt_sketch_free(u);
}

Test(sketch, extremes_are_exact_and_empty_is_refused)
{
    mt_sketch *s;
    mt_sketch_new(&s);
    double q;
    cr_assert_eq(mt_sketch_quantile(s, 0.5, &q), MT_EINVAL);
    cr_assert_eq(mt_sketch_add(s, NAN, 1), MT_EINVAL);
    cr_assert_eq(mt_sketch_add(s, INFINITY, 1), MT_EINVAL);
    cr_assert_eq(mt_sketch_count(s), 0);
    const double v[] = {3.25, -7.5, 0, 1e-300, 1e300, 42};
    for (size_t i = 0; i < 6; i++) mt_sketch_add(s, v[i], 1);
    mt_sketch_quantile(s, 0, &q);
    cr_assert_eq(q, -7.5);
    mt_sketch_quantile(s, 1, &q);
    cr_assert_eq(q, 1e300);
    cr_assert_eq(mt_sketch_quantile(s, 1.5, &q), MT_EINVAL);
    mt_sketch_free(s);
}

Test(sketch, encoding_round_trips_and_refuses_garbage)
{
    mt_sketch *s, *t;
    mt_sketch_new(&s), mt_sketch_new(&t);
    for (int i = 0; i < 3000; i++) mt_sketch_add(s, latency_signed(), 1);
    mt_sketch_add(s, 0, 5);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(mt_sketch_encode(s, &buf, &len), MT_OK);
    cr_assert_eq(mt_sketch_decode_merge(t, buf, len), MT_OK);
    for (size_t i = 0; i < NQ; i++) {
        double x, y;
        mt_sketch_quantile(s, qs[i], &x);
        mt_sketch_quantile(t, qs[i], &y);
        cr_assert_eq(x, y);
    }
    /* every truncation and a bad version are refused */
    for (size_t cut = 0; cut < len; cut++) {
        mt_sketch_clear(t);
        cr_assert_eq(mt_sketch_decode_merge(t, buf, cut), MT_ECORRUPT, "cut %zu", cut);
    }
    buf[0] = 9;
    cr_assert_eq(mt_sketch_decode_merge(t, buf, len), MT_ECORRUPT);
    free(buf);
    mt_sketch_free(s), mt_sketch_free(t);
}
