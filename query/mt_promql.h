/*
 * mt_promql.h — PromQL over stored series, and the answers of Prometheus'
 * HTTP query API (JSON, as Prometheus 2.42 writes them). docs/query.md,
 * "PromQL", is the user's view.
 *
 * Series are seen through mt_fed.h's mapping: `cpu,host=a usage_user` is
 * cpu_usage_user{host="a"}; selectors match the sanitized name and labels.
 *
 * The subset evaluated (everything else is refused with MT_EPARSE and an
 * error naming the construct, which the HTTP layer answers as bad_data):
 *   - instant selectors name{l op "v"} with = != =~ !~ (regular expressions
 *     POSIX extended, anchored at both ends as Prometheus anchors RE2's),
 *     range selectors name[5m], `offset` (also negative), `@ t`,
 *     `@ start()`, `@ end()` (step-invariant parts evaluated once, at the
 *     first step, as Prometheus does); subqueries expr[range:step]
 *     (@ on them, not inside);
 *   - the lookback: an instant selector at t takes each series' latest
 *     sample in [t - 5m, t] (Prometheus 2.x: both ends included); a range
 *     selector [d] at t takes the samples in [t - d, t];
 *   - rate irate increase delta idelta deriv predict_linear resets changes
 *     holt_winters,
 *     avg/sum/min/max/count/last/present/stddev/stdvar/quantile _over_time;
 *     abs ceil floor round sqrt ln log2 log10 exp sgn clamp clamp_min
 *     clamp_max time vector scalar, absent absent_over_time label_replace
 *     label_join sort sort_desc timestamp, the date functions, acos ... tanh
 *     deg rad pi, histogram_quantile (classic le buckets);
 *   - sum avg min max count stddev stdvar topk bottomk quantile group
 *     count_values, by/without;
 *   - + - * / % ^ atan2 == != > < >= <= (bool), and/or/unless, between scalars and
 *     vectors, vector/vector one-to-one with on()/ignoring() and many-to-one
 *     with group_left()/group_right();
 *   - number and string literals, parentheses, unary minus.
 * Not evaluated: @ inside subqueries (or on one under predict_linear),
 * native histograms.
 * Range queries evaluate at start, start+step, ... <= end (ms). Stale
 * markers do not exist in Metron's storage: a series simply ends.
 *
 * Threads: any thread; one call is one query; the engine's read rules apply.
 */
#ifndef MT_PROMQL_H
#define MT_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_query.h"

/* Prometheus' default lookback delta, in ms. */
#define MT_PROMQL_LOOKBACK_MS (5 * 60 * 1000)
/* Prometheus' limit on steps per series of a range query. */
#define MT_PROMQL_MAX_STEPS 11000

/*
 * A cache of catalogs (every series a reader may see, with its Prometheus name and labels)
 * shared by the queries given it: most of a small query's cost otherwise. An entry is used
 * while the engine's series epoch (mt_engine_series_epoch) has not changed; 8 entries (engine,
 * tenant, limit), the least recently used replaced. Any thread; free it after its last query.
 * mt_promql_cache_new: MT_OK or -ENOMEM (an error of pthread_mutex_init, negated).
 */
typedef struct mt_promql_cache mt_promql_cache;
int mt_promql_cache_new(mt_promql_cache **out);
void mt_promql_cache_free(mt_promql_cache *c);

typedef struct mt_promql_spec {
    const char *expr;     /* the PromQL expression */
    int64_t start, end;   /* ms; an instant query has start == end */
    int64_t step;         /* ms, > 0 for a range query; 0: an instant query */
    const char *tenant;   /* NULL: every series; else only this business_id's (the credential's) */
    size_t max_series;    /* series in the catalog and in any one result (0: 100000) */
    uint64_t max_samples; /* samples loaded from storage, over the query (0: 50,000,000) */
    unsigned threads;     /* threads reading and computing a selector's series at once (0: the
                             CPUs online, at most 4; 1: the calling thread alone) */
    mt_promql_cache *cache; /* catalogs shared between queries, or NULL: built for this one */
} mt_promql_spec;

/*
 * Evaluate spec and write Prometheus' success answer through fn:
 * {"status":"success","data":{"resultType":"matrix|vector|scalar|string",
 * "result":[...]}} (a range query's result is always a matrix). Nothing is
 * written on an error. Returns MT_OK; MT_EPARSE (the expression: err says
 * where and why, or names the construct Metron does not evaluate),
 * MT_EINVAL (a range, step or evaluation error such as many-to-many
 * matching, with err), MT_ELIMIT (too many series or samples, err), fn's
 * error, MT_ECORRUPT (err names the hour and file), -ENOMEM.
 */
int mt_promql_query(mt_engine *e, const mt_promql_spec *spec, mt_write_fn fn, void *ud, char *err,
                    size_t errcap);

/*
 * Parse expr and write it back fully parenthesized into out (capacity cap,
 * NUL-terminated): the parser's view, for tests and error messages. MT_OK
 * or MT_EPARSE with err.
 */
int mt_promql_format(const char *expr, char *out, size_t cap, char *err, size_t errcap);

typedef enum mt_promql_list {
    MT_PROMQL_SERIES,       /* /api/v1/series: data is [{labels},...] */
    MT_PROMQL_LABELS,       /* /api/v1/labels: data is ["name",...] */
    MT_PROMQL_LABEL_VALUES, /* /api/v1/label/<name>/values: data is ["value",...] */
} mt_promql_list;

/*
 * Write the success answer of a listing through fn. match (nmatch of them,
 * ORed; none: every series, except for MT_PROMQL_SERIES where Prometheus
 * requires one) are series selectors; label is the name for
 * MT_PROMQL_LABEL_VALUES. Series are those with a sample in [start, end]
 * (ms). Sorted as Prometheus sorts them. MT_OK, MT_EPARSE / MT_EINVAL with
 * err, MT_ELIMIT, fn's error, -ENOMEM.
 */
int mt_promql_list_write(mt_engine *e, mt_promql_list what, const char *label,
                         const char *const *match, size_t nmatch, int64_t start, int64_t end,
                         const char *tenant, mt_write_fn fn, void *ud, char *err, size_t errcap);

/*
 * Parse a time as the Prometheus API takes it: seconds since the epoch
 * (fractions allowed) or RFC 3339, into *ms. MT_OK or MT_EPARSE.
 */
int mt_promql_parse_time(const char *s, int64_t *ms);

/* Parse a duration: float seconds ("15", "0.5") or a PromQL duration ("1m30s"); *ms > 0. */
int mt_promql_parse_step(const char *s, int64_t *ms);

#endif
