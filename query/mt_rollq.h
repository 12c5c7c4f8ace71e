/*
 * mt_rollq.h — reading the hourly rollups (mt_engine_rollups) as a report:
 * the stored hourly rows, or buckets of whole hours (a day, a month) merged
 * from them, filtered by a selector, written as CSV, table or JSON.
 *
 * Columns, per group (the seed's monitoring.hourly_metrics_summary):
 *   hour_bucket, business_id, metric_category, metric_name, sample_count,
 *   avg_value, min_value, max_value, median_value, p95_value, p99_value
 * per series: hour_bucket, series, then the same values.
 *
 * Buckets longer than an hour: count, avg, min and max are exact (merged
 * from the hours); a group's quantiles come from its merged per-hour
 * DDSketches (relative error <= MT_SKETCH_ALPHA, mt_sketch.h) unless exact
 * is asked, when they are computed from every value in the blocks. A
 * series' quantiles over such buckets are always exact (series rollups
 * carry no sketch: see mt_rollup.c).
 *
 * Threads: one report per thread; many may run at once.
 */
#ifndef MT_ROLLQ_H
#define MT_ROLLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_query.h"

typedef struct mt_rollq_spec {
    int64_t from, to;   /* the hours that start in [from, to), ns */
    int64_t step;       /* 0 or 1 h: hourly rows; a multiple of 1 h: buckets aligned to the epoch */
    bool series;        /* per series instead of per group */
    const char *select; /* NULL or "": everything; else the groups/series of these series */
    bool exact;         /* buckets: a group's quantiles from the blocks, not its sketches */
    const char *tenant; /* NULL: every tenant; else only this business_id's groups and series,
                           whatever select says (the reader's credential decides) */
    int64_t grace_ns;   /* <= 0: the engine's (mt_engine_grace_ns); else the grace of the
                           daemon that writes the data dir, for mt_rollq_open_hours */
} mt_rollq_spec;

/* An hour of the range whose rollups do not exist yet, and when they will. */
typedef struct mt_rollq_open {
    int64_t hour_ns;      /* the hour's start */
    int64_t available_ns; /* its end plus the grace: when it is sealed, if its writes settled */
} mt_rollq_open;

/*
 * The open hours of spec's range at time now_ns: hours that start in
 * [from, to), have begun, end (plus the grace) after now_ns, and have no
 * rollup yet (not sealed), oldest first, into out (capacity cap; with a
 * grace under an hour there are at most 2: the current hour, and the one
 * before during its grace); returns how many, or an engine error
 * (negative).
 */
int mt_rollq_open_hours(mt_engine *e, const mt_rollq_spec *spec, int64_t now_ns, mt_rollq_open *out,
                        size_t cap);

/*
 * Write the report through fn in format f; *rows (may be NULL) gets the
 * rows written. When the range holds open hours (mt_rollq_open_hours, at
 * the wall clock), JSON gets "open":[{"hour":T,"available_at":T}] after
 * "rows", and a table a line after its rows saying when each appears; CSV
 * stays rows only (a caller may say it elsewhere). Returns MT_OK; MT_EINVAL or MT_EPARSE (bad step,
 * range or selector) with the reason in err (capacity errcap); an engine error (MT_ECORRUPT ...),
 * -ENOMEM, or fn's error.
 */
int mt_rollq_write(mt_engine *e, const mt_rollq_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows, char *err, size_t errcap);

#endif
