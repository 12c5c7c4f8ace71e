/*
 * mt_query.h — the query façade: selectors, range scans, aggregation.
 *
 * A selector names series:
 *
 *   measurement.field{tag="v", tag!="v", tag=~"re", tag!~"re"}
 *
 * The field is what follows the last '.' (measurement names may contain
 * dots: give the field separately then). Regular expressions are POSIX
 * extended and anchored at both ends, as in PromQL; a tag a series does not
 * have matches as the empty string. Equality matchers are resolved through
 * the engine's postings; the others filter the candidates.
 *
 * A query reads the selected series over [from, to) and returns rows:
 *   raw        one row per point, per series in time order;
 *   aggregated one row per group and step bucket: buckets are aligned to
 *              the epoch (start = floor(t / step) * step, like date_bin),
 *              and empty buckets give no row. Without a step, the whole
 *              range is one bucket.
 * Groups: per series (default), by the values of some tags, or all series
 * together. Quantiles (pNN, quantile(q)) have PERCENTILE_CONT semantics and
 * are exact: they select over every value of the bucket, across the group.
 * increase sums the rises between consecutive points (a drop is a counter
 * reset: the new value counts as the rise), from the last point before the
 * bucket when there is one; rate is increase per second of the bucket.
 *
 * Rows stream: memory holds one bucket of one group at a time, not the
 * range. Strings are not aggregated (their series give no rows).
 *
 * Threads: a query is used by one thread; many queries may run at once.
 */
#ifndef MT_QUERY_H
#define MT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"

typedef enum mt_agg_kind {
    MT_AGG_COUNT,
    MT_AGG_SUM,
    MT_AGG_AVG,
    MT_AGG_MIN,
    MT_AGG_MAX,
    MT_AGG_FIRST,
    MT_AGG_LAST,
    MT_AGG_STDDEV,
    MT_AGG_INCREASE,
    MT_AGG_RATE,
    MT_AGG_QUANTILE,
} mt_agg_kind;

typedef struct mt_agg {
    mt_agg_kind kind;
    double q;      /* MT_AGG_QUANTILE: the fraction, [0, 1] */
    char name[24]; /* as asked: "count", "p95", "quantile(0.5)" */
} mt_agg;

#define MT_QUERY_MAX_AGGS 16
#define MT_QUERY_MAX_BY   8

/*
 * Parse "count,avg,p95,quantile(0.999)" into out (capacity cap), *n set.
 * Returns MT_OK or MT_EPARSE with the reason in err (capacity errcap).
 */
int mt_agg_parse(const char *text, mt_agg *out, size_t cap, size_t *n, char *err, size_t errcap);

/*
 * Whether text parses as a selector, as mt_query_open parses it (without
 * resolving it). MT_OK; MT_EPARSE with the reason in err (capacity cap);
 * -ENOMEM. For callers that check a selector before its first use.
 */
int mt_selector_check(const char *text, char *err, size_t cap);

typedef struct mt_query_spec {
    const char *select; /* the selector */
    const char *field;  /* the field, when not in the selector (NULL: from the selector) */
    int64_t from, to;   /* [from, to) in ns */
    int64_t step;       /* bucket width in ns; 0: the whole range */
    const mt_agg *aggs; /* none: raw points */
    size_t naggs;
    bool by_none;                    /* all series in one group */
    const char *by[MT_QUERY_MAX_BY]; /* group by these tags (nby of them) */
    size_t nby;
    size_t max_series;   /* refuse a query that selects more (0: 100000) */
    uint64_t max_points; /* stop with MT_ELIMIT after reading more (0: no limit) */
    const char *tenant;  /* NULL: every series; else only those whose business_id is this one,
                            whatever the selector says (the reader's credential decides) */
} mt_query_spec;

/* One row; every pointer is valid until the next mt_query_next or mt_query_close. */
typedef struct mt_row {
    const char *group;    /* the series as line protocol, "tag=v,..." for --by, "" for none */
    int64_t time;         /* the point's time, or the bucket's start */
    size_t nvalues;       /* aggregated: one value per aggregation */
    const double *values; /* aggregated values (NaN where undefined, e.g. stddev of one) */
    mt_vtype type;        /* raw: the value's type */
    mt_val raw;           /* raw: the value (strings: MT_VAL_STR into str) */
    const char *str;      /* raw strings */
} mt_row;

typedef struct mt_query mt_query;

/*
 * Parse and plan a query: resolve the selector, group the series. Returns
 * MT_OK and *out; MT_EPARSE (selector, regex) or MT_ELIMIT (too many
 * series) or MT_EINVAL (range, step) with the reason in err; -ENOMEM.
 * A selector that matches nothing is not an error: the query has no rows.
 */
int mt_query_open(mt_engine *e, const mt_query_spec *spec, mt_query **out, char *err,
                  size_t errcap);

/* The next row: MT_OK, MT_ENOTFOUND at the end, MT_ELIMIT past max_points, or an error. */
int mt_query_next(mt_query *q, mt_row *row);

/* Series the selector matched. */
size_t mt_query_series(const mt_query *q);

/* Series-hours answered from the summaries stored at sealing, without decoding. */
uint64_t mt_query_summaries_used(const mt_query *q);

/* The id of the i-th matched series. */
uint32_t mt_query_series_id(const mt_query *q, size_t i);

/*
 * After mt_query_next (or mt_query_write) stopped with MT_ECORRUPT: the
 * damaged hour and its file (mt_scan_damage), "" otherwise; valid until close.
 */
const char *mt_query_damage(const mt_query *q);

/* The i-th matched series as line protocol ("cpu,host=a usage"); valid until close. */
const char *mt_query_series_name(const mt_query *q, size_t i);

/* Close a query. NULL is a no-op. */
void mt_query_close(mt_query *q);

/* Output formats (docs/query.md). */
typedef enum mt_output_format {
    MT_OUT_CSV,   /* header row, RFC 4180 quoting */
    MT_OUT_TABLE, /* the same columns, tab separated */
    MT_OUT_JSON,  /* {"columns":[...],"rows":[[...],...]} */
    /* JSON grouped by series: each series (or group) once, then one array per column:
       {"columns":["time","value"],"series":[{"series":"cpu,host=a usage","time":[...],
       "value":[...]},...]} (docs/query.md); a group's rows are buffered until it ends */
    MT_OUT_SERIES,
    /* raw points as line protocol, one field per line, values exact, timestamps in ns, no
       header: what import and /write take back (aggregated queries: MT_EINVAL) */
    MT_OUT_LP,
} mt_output_format;

/* Where output goes: returns 0, or an error that stops the writing (and is returned). */
typedef int (*mt_write_fn)(void *ud, const char *buf, size_t len);

/*
 * Run q to its end, writing the header and every row in format f through
 * fn. spec is the one q was opened with (it names the columns). *rows
 * (may be NULL) gets the rows written. Returns MT_OK, the query's error
 * (MT_ELIMIT past max_points), or fn's.
 */
int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows);

/*
 * The same, one row at a time (a caller that paces the output, e.g. metrond's
 * streamed /api/v1/export): _open writes the header, _row one row of q (as
 * mt_query_next gave it), _finish what ends the output (JSON's closing brackets,
 * MT_OUT_SERIES' last group). spec is borrowed: it must outlive the writer, and
 * be the one the query was opened with. Each returns MT_OK, fn's first error
 * (nothing more is written after it), -ENOMEM, or for _open MT_EINVAL (MT_OUT_LP
 * of an aggregated query). _close frees (NULL is a no-op), after _finish or not.
 */
typedef struct mt_query_out mt_query_out;
int mt_query_out_open(const mt_query_spec *spec, mt_output_format f, mt_write_fn fn, void *ud,
                      mt_query_out **out);
int mt_query_out_row(mt_query_out *o, const mt_row *row);
int mt_query_out_finish(mt_query_out *o);
void mt_query_out_close(mt_query_out *o);

/* The shortest decimal that reads back as the same double, into buf (NUL-terminated; 32 bytes
 * hold any); returns its length. */
size_t mt_format_double(double v, char *buf, size_t cap);

#endif
