/*
 * mt_fed.h — stored series in the Prometheus text exposition format 0.0.4:
 * the answer of metrond's GET /federate (the latest sample of each series,
 * as Prometheus' own federation gives it) and of `metron export --format
 * prometheus` (every sample in a range). docs/query.md, "Prometheus export",
 * is the user's view.
 *
 * Names. A series (measurement, tags, field) becomes the metric
 * <measurement>_<field> (<measurement> alone for the field "value", as
 * Telegraf's prometheus_client output does: the reverse of remote write's
 * mapping, ingest/mt_rw.h) with one label per tag: every character outside
 * [a-zA-Z0-9_:] (a UTF-8 sequence counts as one) becomes '_', and a name
 * that starts with a digit gets a leading '_'. Label names take the same
 * rule without ':', and one that would start with "__" (reserved by
 * Prometheus) gets the prefix "tag". Label values are kept, escaped (\\,
 * \", \n), with invalid UTF-8 bytes replaced by U+FFFD. Two tags of one
 * series that map to the same label name: the first (in key order) is
 * kept, except that business_id always keeps its own (the tenant's). Two series that map to the
 * same name and labels: the first (by series id) is written, the others counted in duplicates.
 *
 * Values: floats as the shortest decimal that reads back the same (NaN,
 * +Inf, -Inf), integers exactly, booleans 1 and 0; string series have no
 * Prometheus value and are left out (counted). Timestamps are in ms, the
 * floor of the ns; of several points in one ms only the last is written.
 * Every family gets "# HELP" (its measurement and field: promtool wants
 * one) and "# TYPE name untyped", and its samples follow, sorted by labels.
 *
 * Selectors. match[] takes Prometheus series selectors, ORed:
 *
 *   name   name{label op "value", ...}   {__name__=~"re", label op "value"}
 *
 * with op = != =~ !~, values in "...", '...' or `...` (escapes \\ \" \' \n
 * \t \r), regular expressions POSIX extended and anchored (Prometheus uses
 * RE2: \d, (?i) and the like are not taken). At least one matcher must not
 * match the empty string, as in Prometheus. Ranges, offsets, @, functions
 * and operators are refused (MT_EPARSE naming the selector). They match
 * the Prometheus view (the sanitized name and labels; a missing label is
 * ""). Each selector looks at every series the reader may see (its
 * tenant's through the business_id postings, else all): O(series).
 *
 * Threads: any thread; the engine's read rules apply (mt_engine.h).
 */
#ifndef MT_FED_H
#define MT_FED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_query.h"

/* What "latest" looks back over, as Prometheus' default lookback delta: 5 minutes. */
#define MT_FED_LOOKBACK_NS (5 * 60 * 1000000000LL)

typedef struct mt_fed_spec {
    const char *const *match; /* Prometheus series selectors (match[]), ORed; nmatch of them */
    size_t nmatch;
    const char *select; /* when nmatch is 0: a Metron selector (mt_query.h) instead */
    int64_t from, to;   /* [from, to) in ns */
    bool latest;        /* each series' last sample in the range only (federation); else all */
    const char *tenant; /* NULL: every series; else only those whose business_id is this one,
                           whatever the selectors say (the reader's credential decides) */
    size_t max_series;  /* refuse more matched series with MT_ELIMIT (0: 100000) */
} mt_fed_spec;

/* What a write did. */
typedef struct mt_fed_result {
    size_t series;          /* series with at least one sample written */
    uint64_t samples;       /* sample lines written */
    size_t strings_skipped; /* matched string series (no Prometheus value) */
    size_t duplicates;      /* matched series whose name and labels an earlier one had */
} mt_fed_result;

/*
 * Write the matched series of e in the text format through fn (a family's
 * lines in several calls). res (may be NULL) says what was written.
 * Returns MT_OK; MT_EPARSE (a selector: err names it and why), MT_EINVAL
 * (from >= to), MT_ELIMIT (more series than max_series) with err; fn's
 * error; MT_ECORRUPT (err names the hour and file) or -ENOMEM. Nothing is
 * written before the selectors are checked, so a parse error writes nothing.
 */
int mt_fed_write(mt_engine *e, const mt_fed_spec *spec, mt_write_fn fn, void *ud,
                 mt_fed_result *res, char *err, size_t errcap);

/*
 * The metric name of (measurement, field) into out (capacity cap,
 * NUL-terminated); returns the length the whole name needs, like snprintf.
 */
size_t mt_fed_metric_name(mt_name measurement, mt_name field, char *out, size_t cap);

/* The label name of tag key into out, as mt_fed_metric_name. */
size_t mt_fed_label_name(mt_name key, char *out, size_t cap);

#endif
