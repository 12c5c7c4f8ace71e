/*
 * mt_qparse.h — a query as its clients spell it: the strings of metron
 * query's flags and of GET /api/v1/query's parameters (docs/query.md), made
 * into an mt_query_spec by one parser, and the names of the output formats,
 * so that the CLI and HTTP take the same input and refuse it with the same
 * error. Pure (no engine access); thread-safe.
 */
#ifndef MT_QPARSE_H
#define MT_QPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_query.h"

/* The names mt_output_format_parse takes, for error messages. */
#define MT_OUTPUT_FORMAT_NAMES "table, tsv, csv, json or series"

/*
 * Parse an output format name into *f: "table", "tsv" (the same table,
 * which the CLI does not align), "csv", "json" or "series". False, *f
 * untouched, for any other name or NULL (a caller's default is its own).
 */
bool mt_output_format_parse(const char *name, mt_output_format *f);

/* The name of f as mt_output_format_parse takes it back ("lp" for MT_OUT_LP); static. */
const char *mt_output_format_name(mt_output_format f);

/* Who spells the query: the names errors use ("--from" or "from"). */
typedef enum mt_qparse_style {
    MT_QPARSE_HTTP, /* select, from, to, step, agg, by, field, max_series */
    MT_QPARSE_CLI,  /* SELECTOR, --from, --to, --step, --agg, --by, --field, --max-series */
} mt_qparse_style;

/* The strings of a query, each borrowed; NULL where not given. */
typedef struct mt_query_args {
    const char *select;     /* required */
    const char *from, *to;  /* required: RFC 3339, epoch seconds, now, -24h (mt_time_parse) */
    const char *step;       /* a duration (mt_duration_parse) */
    const char *agg;        /* "count,avg,p95" (mt_agg_parse) */
    const char *by;         /* "none", or up to MT_QUERY_MAX_BY tags, comma-separated */
    const char *field;      /* the field, when not in the selector */
    const char *max_series; /* a decimal number of series */
} mt_query_args;

#define MT_QPARSE_MAX_BY_LEN 511 /* bytes of the by string */

/* A parsed query: spec points into this struct (aggs, by) and at args' strings. */
typedef struct mt_query_parsed {
    mt_query_spec spec;
    mt_agg aggs[MT_QUERY_MAX_AGGS];
    char by[MT_QPARSE_MAX_BY_LEN + 1]; /* a copy of args->by, cut at its commas */
} mt_query_parsed;

/*
 * Parse a into out->spec, times relative to now (ns). out must stay where
 * it is while spec is used, and a's strings must outlive it. Returns MT_OK
 * or MT_EINVAL with the reason in err (capacity errcap), naming the
 * argument as style spells it:
 *   "<select> is required", "<from> is required: RFC 3339, ...",
 *   "<from> is not a time: RFC 3339, ...", "<step> is not a duration ...",
 *   mt_agg_parse's reason, "<by> is longer than 511 bytes",
 *   "too many <by> tags (at most 8)", "<max_series> is a number of series".
 * spec's other fields (max_points, tenant) are zero: the caller's to set.
 */
int mt_query_args_parse(const mt_query_args *a, mt_qparse_style style, int64_t now,
                        mt_query_parsed *out, char *err, size_t errcap);

#endif
