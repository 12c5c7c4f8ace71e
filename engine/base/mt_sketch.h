/*
 * mt_sketch.h — a mergeable quantile sketch with a relative-error
 * guarantee: DDSketch (Masson, Rim, Lee, VLDB 2019), logarithmic mapping,
 * no bucket collapsing.
 *
 * Why DDSketch: its error bound is relative to the value (1% of a p99
 * latency of 2 s is 20 ms, of 2 ms is 20 us), it holds on skewed and
 * heavy-tailed data (lognormal, Pareto) where rank-error sketches (t-digest,
 * KLL) give no value bound, and merging is exact: the merge of two sketches
 * equals the sketch of the union, so per-hour sketches combine into days
 * and months with no error growth.
 *
 * A value x != 0 goes to bin i = ceil(log_gamma |x|), gamma = (1 + a) /
 * (1 - a) with a = MT_SKETCH_ALPHA, one store for positive and one for
 * negative values, and zero is counted apart; so every finite double has a
 * bin and no range must be declared up front. A bin's estimate,
 * 2 gamma^i / (gamma + 1), is within a relative a of every value in it.
 *
 * mt_sketch_quantile follows PERCENTILE_CONT: the estimates of the order
 * statistics at floor and ceil of q (n - 1), linearly interpolated, so for
 * values of one sign the answer is within a relative a of the exact one.
 * min and max are kept exact (q = 0 and q = 1 are exact).
 *
 * Non-finite values are not counted. Pure C, no I/O; a sketch is used by
 * one thread at a time.
 */
#ifndef MT_SKETCH_H
#define MT_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_SKETCH_ALPHA 0.01 /* the relative-error guarantee */

typedef struct mt_sketch mt_sketch;

/* A new empty sketch in *out: MT_OK or -ENOMEM. */
int mt_sketch_new(mt_sketch **out);

/* Free s. NULL is a no-op. */
void mt_sketch_free(mt_sketch *s);

/* Forget every value; keeps the memory. */
void mt_sketch_clear(mt_sketch *s);

/* Add x (n times). MT_OK; MT_EINVAL for a non-finite x (not counted); -ENOMEM. */
int mt_sketch_add(mt_sketch *s, double x, uint64_t n);

/* Add every value of b to a (b unchanged). MT_OK or -ENOMEM. */
int mt_sketch_merge(mt_sketch *a, const mt_sketch *b);

/* The number of values added. */
uint64_t mt_sketch_count(const mt_sketch *s);

/* The q-quantile (q in [0, 1]) in *out: MT_OK, MT_EINVAL (q outside, or empty). */
int mt_sketch_quantile(const mt_sketch *s, double q, double *out);

/*
 * Serialize s: *buf is malloc'd, owned by the caller, *len bytes. Sparse:
 * only bins that hold values, as varint deltas. MT_OK or -ENOMEM.
 */
int mt_sketch_encode(const mt_sketch *s, uint8_t **buf, size_t *len);

/*
 * Add the values of an encoded sketch to s (decode into a cleared sketch
 * to read one). MT_OK, MT_ECORRUPT for bytes that are not a sketch
 * (s may then hold part of them), -ENOMEM.
 */
int mt_sketch_decode_merge(mt_sketch *s, const void *buf, size_t len);

#endif
