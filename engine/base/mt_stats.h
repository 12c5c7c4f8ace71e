/*
 * mt_stats.h — exact statistics over float64 values: the math of rollups
 * and range queries, shared by the engine (sealing) and query/. Pure C, no
 * I/O; thread-safe.
 *
 * Percentiles follow PostgreSQL's PERCENTILE_CONT: for a fraction p in
 * [0, 1] over n sorted values v[0..n-1], the position is p * (n - 1); the
 * result interpolates linearly between the two values around it:
 *
 *   lo = floor(p * (n - 1)), hi = ceil(p * (n - 1))
 *   result = v[lo] + (p * (n - 1) - lo) * (v[hi] - v[lo])
 *
 * computed with the same floating-point steps as PostgreSQL's
 * percentile_cont_final (src/backend/utils/adt/orderedsetaggs.c), so the
 * results are equal, not just close. The values are found by selection
 * (quickselect, expected O(n)), not a full sort.
 */
#ifndef MT_STATS_H
#define MT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* count, sum, min, max, first, last and the sum of squares for variance. */
typedef struct mt_summary {
    uint64_t count;
    double sum;
    double min, max;
    double first, last; /* by the order values were added */
    double mean, m2;    /* Welford's running mean and sum of squared deviations */
} mt_summary;

/* An empty summary. */
void mt_summary_init(mt_summary *s);

/* Add one value. */
void mt_summary_add(mt_summary *s, double v);

/* Merge b into a, as if b's values had been added after a's. */
void mt_summary_merge(mt_summary *a, const mt_summary *b);

/* Average (NaN when empty). */
double mt_summary_avg(const mt_summary *s);

/* Sample standard deviation, as PostgreSQL's stddev_samp (NaN for fewer than 2 values). */
double mt_summary_stddev(const mt_summary *s);

/*
 * PERCENTILE_CONT(p) of v[0..n): reorders v in place (selection, not a
 * full sort). Returns MT_OK with *out, MT_EINVAL for p outside [0, 1] or
 * n == 0.
 */
int mt_percentile_cont(double *v, size_t n, double p, double *out);

/*
 * Several fractions at once over the same values (p ascending is fastest:
 * each selection narrows the next). Reorders v. MT_OK or MT_EINVAL.
 */
int mt_percentiles_cont(double *v, size_t n, const double *p, size_t np, double *out);

/*
 * The sum (added in order, as PostgreSQL's avg does), min and max of
 * v[0..n) and PERCENTILE_CONT at each fraction, in three passes: one for
 * the sum and range, one counting values into equal-width buckets, one
 * gathering the few buckets that hold the ranks wanted (then selection in
 * those). sum, min, max may be NULL. Reorders v. MT_OK, or MT_EINVAL (n ==
 * 0, p outside [0, 1]).
 */
int mt_describe(double *v, size_t n, const double *p, size_t np, double *sum, double *min,
                double *max, double *out);

/*
 * As mt_describe, and when ranks is not NULL it gets 2 * np values: for
 * each fraction the two order statistics it interpolates between, at
 * floor and ceil of p (n - 1) (equal when the position is whole). With
 * them mt_percentile_lerp gives the very bits of out[i] again: rollups
 * store these, which compress, instead of the interpolated doubles.
 */
int mt_describe_ranks(double *v, size_t n, const double *p, size_t np, double *sum, double *min,
                      double *max, double *out, double *ranks);

/*
 * PERCENTILE_CONT(p) of n values (n >= 1, p in [0, 1]) from lo and hi, the
 * order statistics at floor and ceil of p (n - 1): the function
 * mt_describe itself computes every percentile with, so the result is
 * bit for bit what it returned for the same values.
 */
double mt_percentile_lerp(double lo, double hi, size_t n, double p);

#endif
