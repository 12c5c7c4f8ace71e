/*
 * mt_query.c — planning and running a query (semantics in mt_query.h).
 *
 * Plan: resolve the selector, label each series, and sort the series into
 * groups (by label for --by, one group for none, one per series
 * otherwise). Run: one group at a time; within a group every series has a
 * scan cursor, and buckets are filled series by series, then emitted. The
 * next bucket is the one that holds the earliest next point of the group,
 * so empty buckets cost nothing however small the step.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_query_int.h"
#include "mt_stats.h"

#define DEFAULT_MAX_SERIES 100000

/* ---- aggregation names ------------------------------------------------------------- */

int mt_agg_parse(const char *text, mt_agg *out, size_t cap, size_t *n, char *err, size_t errcap)
{
    static const struct {
        const char *name;
        mt_agg_kind kind;
    } names[] = {{"count", MT_AGG_COUNT}, {"sum", MT_AGG_SUM},          {"avg", MT_AGG_AVG},
                 {"mean", MT_AGG_AVG},    {"min", MT_AGG_MIN},          {"max", MT_AGG_MAX},
                 {"first", MT_AGG_FIRST}, {"last", MT_AGG_LAST},        {"stddev", MT_AGG_STDDEV},
                 {"rate", MT_AGG_RATE},   {"increase", MT_AGG_INCREASE}};
    *n = 0;
    const char *p = text;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof out->name) {
            snprintf(err, errcap, "empty or overlong aggregation in '%s'", text);
            return MT_EPARSE;
        }
        if (*n == cap) {
            snprintf(err, errcap, "too many aggregations (limit %zu)", cap);
            return MT_EPARSE;
        }
        mt_agg *a = &out[*n];
        memset(a, 0, sizeof *a);
        memcpy(a->name, p, len);
        bool known = false;
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !known; i++)
            if (!strcmp(a->name, names[i].name)) a->kind = names[i].kind, known = true;
        char *end;
        if (!known && a->name[0] == 'p' && a->name[1] >= '0' && a->name[1] <= '9') {
            /* pNN is the NN-th percentile, 0 to 100 (p0 the min, p100 the max, p99.5); digits
               past two that start 99 are VictoriaMetrics' style: p999 is 99.9, p9999 99.99 */
            const char *d = a->name + 1;
            size_t nd = strspn(d, "0123456789");
            double v = strtod(d, &end);
            if (!*end && d[nd] == '.' && nd <= 3 && v <= 100)
                a->q = v / 100, known = true; /* p99.9, p50.5 */
            else if (!*end && !d[nd] && (nd <= 2 || !strcmp(d, "100")))
                a->q = v / 100, known = true;
            else if (!*end && !d[nd] && nd >= 3 && !strncmp(d, "99", 2))
                a->q = v / pow(10, (double)nd), known = true;
            if (known)
                a->kind = MT_AGG_QUANTILE;
            else {
                snprintf(err, errcap,
                         "unknown aggregation '%s': a percentile is p0 to p100 (p50, p99.9), or "
                         "p999 for 99.9 and p9999 for 99.99",
                         a->name);
                return MT_EPARSE;
            }
        } else if (!known && !strncmp(a->name, "quantile(", 9)) {
            a->q = strtod(a->name + 9, &end);
            if (end != a->name + 9 && !strcmp(end, ")") && a->q >= 0 && a->q <= 1)
                a->kind = MT_AGG_QUANTILE, known = true;
        }
        if (!known) {
            snprintf(err, errcap,
                     "unknown aggregation '%s' (count, sum, avg, min, max, first, last, stddev, "
                     "rate, increase, pNN, quantile(q))",
                     a->name);
            return MT_EPARSE;
        }
        (*n)++;
        p += len;
        if (*p == ',') p++;
    }
    return MT_OK;
}

/* ---- plan ------------------------------------------------------------------------- */

typedef struct cursor {
    uint32_t id;
    mt_vtype type;
    char *label; /* the series in line-protocol form */
    char *group; /* its group's label */
    mt_scan *scan;
    mt_points blk; /* the current block */
    size_t i;      /* next point in blk */
    bool done;
    bool has_last;
    double last;       /* the series' previous value, for increase */
    bool is_sum;       /* the current item is a sealed hour's summary, not a point */
    mt_chunk_info sum; /* that summary */
} cursor;

struct mt_query {
    mt_engine *e;
    mt_query_spec spec;
    mt_agg aggs[MT_QUERY_MAX_AGGS];
    bool need_values;   /* a quantile is asked */
    bool need_summary;  /* count, sum, avg, min, max or stddev is asked */
    bool need_increase; /* increase or rate is asked */
    bool use_summaries; /* every aggregation can come from hour summaries (see agg_next) */
    cursor *c;
    size_t nc;
    size_t g0, g1; /* the current group: cursors [g0, g1) */
    bool group_open;
    int64_t bucket; /* the current bucket's start */
    double *vals;   /* the bucket's values (quantiles) */
    size_t nvals, vcap;
    double out[MT_QUERY_MAX_AGGS];
    uint64_t points;
    uint64_t hours_from_summaries; /* sealed hours answered without decoding */
    char damage[4200];             /* the hour and file of an MT_ECORRUPT, else "" */
};

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    case MT_VT_UINT: return (double)v.u;
    case MT_VT_BOOL: return (double)v.u;
    default: return NAN;
    }
}

static int by_group(const void *a, const void *b)
{
    const cursor *x = a, *y = b;
    int r = strcmp(x->group, y->group);
    return r ? r : (x->id > y->id) - (x->id < y->id);
}

/* The group label of a series for --by: "tag=v,tag2=v2" in the order asked. */
static char *group_label(const mt_query_spec *spec, const mt_series_parts *p)
{
    char buf[4096];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < spec->nby; i++) {
        const char *val = "";
        int vl = 0;
        for (size_t t = 0; t < p->ntags; t++) {
            if (p->tag_keys[t].len == strlen(spec->by[i]) &&
                !memcmp(p->tag_keys[t].ptr, spec->by[i], p->tag_keys[t].len)) {
                val = p->tag_values[t].ptr;
                vl = (int)p->tag_values[t].len;
            }
        }
        n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, "%s%s=%.*s",
                              i ? "," : "", spec->by[i], vl, val);
        if (n >= sizeof buf) break;
    }
    return strdup(buf);
}

void mt_query_close(mt_query *q)
{
    if (!q) return;
    for (size_t i = 0; i < q->nc; i++) {
        mt_scan_close(q->c[i].scan);
        if (q->c[i].group != q->c[i].label) free(q->c[i].group);
        free(q->c[i].label);
    }
    free(q->c);
    free(q->vals);
    free(q);
}

size_t mt_query_series(const mt_query *q)
{
    return q->nc;
}

uint32_t mt_query_series_id(const mt_query *q, size_t i)
{
    return i < q->nc ? q->c[i].id : 0;
}

uint64_t mt_query_summaries_used(const mt_query *q)
{
    return q->hours_from_summaries;
}

const char *mt_query_damage(const mt_query *q)
{
    return q->damage;
}

const char *mt_query_series_name(const mt_query *q, size_t i)
{
    return i < q->nc ? q->c[i].label : NULL;
}

int mt_query_open(mt_engine *e, const mt_query_spec *spec, mt_query **out, char *err, size_t errcap)
{
    if (spec->from >= spec->to || spec->step < 0 || spec->naggs > MT_QUERY_MAX_AGGS ||
        spec->nby > MT_QUERY_MAX_BY) {
        snprintf(err, errcap,
                 "the range must have from < to, a step >= 0, at most %d "
                 "aggregations and %d group tags",
                 MT_QUERY_MAX_AGGS, MT_QUERY_MAX_BY);
        return MT_EINVAL;
    }
    mt_selector *sel = malloc(sizeof *sel);
    if (!sel) return -ENOMEM;
    int rc = mt_selector_parse(spec->select, spec->field, sel, err, errcap);
    if (!rc && spec->tenant) rc = mt_selector_restrict(sel, spec->tenant, err, errcap);
    uint32_t *ids = NULL;
    size_t n = 0;
    if (!rc) rc = mt_selector_resolve(e, sel, &ids, &n);
    mt_selector_free(sel);
    free(sel);
    if (rc) return rc;
    size_t max = spec->max_series ? spec->max_series : DEFAULT_MAX_SERIES;
    if (n > max) {
        free(ids);
        snprintf(err, errcap, "the selector matches %zu series, more than the limit of %zu", n,
                 max);
        return MT_ELIMIT;
    }
    mt_query *q = calloc(1, sizeof *q);
    if (!q) {
        free(ids);
        return -ENOMEM;
    }
    q->e = e;
    q->spec = *spec;
    if (spec->naggs) memcpy(q->aggs, spec->aggs, spec->naggs * sizeof *q->aggs);
    q->spec.aggs = q->aggs;
    /* count, sum, avg, min, max, first and last of whole sealed hours come from the summaries
       stored at sealing, without decoding, when buckets are whole hours */
    q->use_summaries = spec->naggs > 0 && spec->step % MT_HOUR_NS == 0;
    for (size_t i = 0; i < spec->naggs; i++) {
        mt_agg_kind k = q->aggs[i].kind;
        q->need_values |= k == MT_AGG_QUANTILE;
        q->need_increase |= k == MT_AGG_INCREASE || k == MT_AGG_RATE;
        q->need_summary |= k != MT_AGG_QUANTILE && k != MT_AGG_INCREASE && k != MT_AGG_RATE &&
                           k != MT_AGG_FIRST && k != MT_AGG_LAST;
        if (k == MT_AGG_STDDEV || k == MT_AGG_INCREASE || k == MT_AGG_RATE || k == MT_AGG_QUANTILE)
            q->use_summaries = false;
    }
    q->c = calloc(n ? n : 1, sizeof *q->c);
    char key[MT_SERIES_MAX_KEY];
    mt_series_parts *parts = malloc(sizeof *parts);
    rc = q->c && parts ? MT_OK : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t kl;
        cursor *c = &q->c[q->nc];
        uint32_t id;
        if (mt_engine_series_key(e, ids[i], key, sizeof key, &kl) ||
            mt_series_parse(key, kl, parts))
            continue;
        if (mt_engine_series_lookup(e, key, kl, &id, &c->type) != MT_OK) continue;
        if (c->type == MT_VT_STRING && spec->naggs) continue; /* strings are not aggregated */
        c->id = ids[i];
        char label[4096];
        int ll = mt_series_format(key, kl, label, sizeof label);
        if (ll >= 0 && (size_t)ll < sizeof label) {
            c->label = malloc((size_t)ll + 1);
            if (c->label) memcpy(c->label, label, (size_t)ll + 1);
        } else { /* a name longer than the buffer: format it again, whole */
            c->label = malloc((size_t)ll + 1);
            if (c->label) mt_series_format(key, kl, c->label, (size_t)ll + 1);
        }
        /* per series, the group is the label itself (not freed twice: see mt_query_close) */
        c->group = spec->by_none ? strdup("") : spec->nby ? group_label(spec, parts) : c->label;
        if (!c->label || !c->group) rc = -ENOMEM;
        q->nc++;
    }
    free(parts);
    free(ids);
    if (rc) {
        mt_query_close(q);
        return rc;
    }
    if (spec->naggs && (spec->by_none || spec->nby)) qsort(q->c, q->nc, sizeof *q->c, by_group);
    *out = q;
    return MT_OK;
}

/* ---- run ---------------------------------------------------------------------------- */

/* Make sure c has a point to look at; false at its end. */
static int peek(mt_query *q, cursor *c, bool *have)
{
    *have = false;
    if (c->done) return MT_OK;
    if (!c->scan) {
        int rc = mt_scan_open(q->e, c->id, q->spec.from, q->spec.to, &c->scan);
        if (rc) return rc;
    }
    while (!c->is_sum && c->i >= c->blk.n) {
        int rc = mt_scan_next_or_summary(c->scan, &c->blk, q->use_summaries ? &c->sum : NULL);
        if (rc == MT_ECORRUPT) mt_scan_damage(c->scan, q->damage, sizeof q->damage);
        if (rc == MT_ENOTFOUND) {
            c->done = true;
            mt_scan_close(c->scan);
            c->scan = NULL;
            return MT_OK;
        }
        if (rc) return rc;
        c->i = 0;
        c->is_sum = q->use_summaries && c->sum.count > 0;
    }
    *have = true;
    return MT_OK;
}

/* The time of a cursor's current item (a summary stands at its first point). */
static int64_t item_ts(const cursor *c)
{
    return c->is_sum ? c->sum.min_ts : c->blk.ts[c->i];
}

static int64_t bucket_of(const mt_query *q, int64_t ts)
{
    if (!q->spec.step) return q->spec.from;
    int64_t b = ts / q->spec.step * q->spec.step;
    if (ts < 0 && b != ts) b -= q->spec.step;
    return b;
}

static int raw_next(mt_query *q, mt_row *row)
{
    while (q->g0 < q->nc) {
        cursor *c = &q->c[q->g0];
        bool have;
        int rc = peek(q, c, &have);
        if (rc) return rc;
        if (!have) {
            q->g0++;
            continue;
        }
        if (q->spec.max_points && ++q->points > q->spec.max_points) return MT_ELIMIT;
        *row = (mt_row){.group = c->label,
                        .time = c->blk.ts[c->i],
                        .type = c->type,
                        .raw = c->blk.vals[c->i],
                        .str = c->blk.strs};
        c->i++;
        return MT_OK;
    }
    return MT_ENOTFOUND;
}

typedef struct acc {
    mt_summary s;
    double increase;
    bool any_increase;
    int64_t first_ts, last_ts; /* first and last are by time across the group's series */
    double first, last;
} acc;

static int agg_next(mt_query *q, mt_row *row)
{
    for (;;) {
        if (!q->group_open) {
            if (q->g0 >= q->nc) return MT_ENOTFOUND;
            q->g1 = q->g0 + 1;
            if (q->spec.by_none || q->spec.nby)
                while (q->g1 < q->nc && !strcmp(q->c[q->g1].group, q->c[q->g0].group)) q->g1++;
            q->group_open = true;
        }
        /* the earliest next point of the group decides the bucket */
        int64_t first = INT64_MAX;
        for (size_t k = q->g0; k < q->g1; k++) {
            bool have;
            int rc = peek(q, &q->c[k], &have);
            if (rc) return rc;
            if (have && item_ts(&q->c[k]) < first) first = item_ts(&q->c[k]);
        }
        if (first == INT64_MAX) { /* the group is done */
            q->g0 = q->g1;
            q->group_open = false;
            continue;
        }
        int64_t start = bucket_of(q, first);
        int64_t end = q->spec.step ? start + q->spec.step : q->spec.to;
        acc a = {.first_ts = INT64_MAX, .last_ts = INT64_MIN};
        mt_summary_init(&a.s);
        q->nvals = 0;
        for (size_t k = q->g0; k < q->g1; k++) {
            cursor *c = &q->c[k];
            bool have;
            for (;;) {
                int rc = peek(q, c, &have);
                if (rc) return rc;
                if (!have || item_ts(c) >= end) break;
                if (c->is_sum) { /* a whole hour at once */
                    const mt_chunk_info *h = &c->sum;
                    mt_summary hs = {.count = h->count,
                                     .sum = h->sum,
                                     .min = h->min,
                                     .max = h->max,
                                     .first = h->first,
                                     .last = h->last,
                                     .mean = h->sum / h->count};
                    mt_summary_merge(&a.s, &hs);
                    if (h->min_ts < a.first_ts) a.first_ts = h->min_ts, a.first = h->first;
                    if (h->max_ts >= a.last_ts) a.last_ts = h->max_ts, a.last = h->last;
                    c->is_sum = false;
                    q->hours_from_summaries++;
                    continue;
                }
                /* the run of this block inside the bucket, in one tight loop: a block's
                   points are in time order, so first and last are its ends */
                const int64_t *ts = c->blk.ts;
                const mt_val *vals = c->blk.vals;
                size_t i = c->i, stop = i + 1;
                while (stop < c->blk.n && ts[stop] < end) stop++;
                q->points += stop - i;
                if (q->spec.max_points && q->points > q->spec.max_points) return MT_ELIMIT;
                if (q->need_values && q->nvals + (stop - i) > q->vcap) {
                    size_t cap = q->vcap ? q->vcap : 1024;
                    while (cap < q->nvals + (stop - i)) cap *= 2;
                    double *nv = realloc(q->vals, cap * sizeof *nv);
                    if (!nv) return -ENOMEM;
                    q->vals = nv;
                    q->vcap = cap;
                }
                if (ts[i] < a.first_ts) a.first_ts = ts[i], a.first = as_double(c->type, vals[i]);
                if (ts[stop - 1] >= a.last_ts)
                    a.last_ts = ts[stop - 1], a.last = as_double(c->type, vals[stop - 1]);
                for (; i < stop; i++) {
                    double v = as_double(c->type, vals[i]);
                    if (q->need_summary) mt_summary_add(&a.s, v);
                    if (q->need_increase) {
                        if (c->has_last) { /* a drop is a reset: the new value is the rise */
                            a.increase += v >= c->last ? v - c->last : v;
                            a.any_increase = true;
                        }
                        c->last = v;
                        c->has_last = true;
                    }
                    if (q->need_values) q->vals[q->nvals++] = v;
                }
                c->i = stop;
            }
        }
        double secs = (double)(end - start) / 1e9;
        for (size_t i = 0; i < q->spec.naggs; i++) {
            const mt_agg *ag = &q->aggs[i];
            double r = NAN;
            switch (ag->kind) {
            case MT_AGG_COUNT: r = (double)a.s.count; break;
            case MT_AGG_SUM: r = a.s.sum; break;
            case MT_AGG_AVG: r = mt_summary_avg(&a.s); break;
            case MT_AGG_MIN: r = a.s.min; break;
            case MT_AGG_MAX: r = a.s.max; break;
            case MT_AGG_FIRST: r = a.first; break;
            case MT_AGG_LAST: r = a.last; break;
            case MT_AGG_STDDEV: r = mt_summary_stddev(&a.s); break;
            case MT_AGG_INCREASE: r = a.any_increase ? a.increase : NAN; break;
            case MT_AGG_RATE: r = a.any_increase ? a.increase / secs : NAN; break;
            case MT_AGG_QUANTILE: mt_percentile_cont(q->vals, q->nvals, ag->q, &r); break;
            }
            q->out[i] = r;
        }
        *row = (mt_row){
            .group = q->c[q->g0].group, .time = start, .nvalues = q->spec.naggs, .values = q->out};
        return MT_OK;
    }
}

int mt_query_next(mt_query *q, mt_row *row)
{
    return q->spec.naggs ? agg_next(q, row) : raw_next(q, row);
}
