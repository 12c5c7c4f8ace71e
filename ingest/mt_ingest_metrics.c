/*
 * mt_ingest_metrics.c — ingest's /metrics families (contract in
 * mt_ingest.h), in the Prometheus text format 0.0.4: HELP and TYPE before
 * the samples of each.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mt_ingest.h"

typedef struct out {
    char *buf;
    size_t len, cap;
    bool oom;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->oom = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(out *o, const char *name, const char *type, const char *help, double v)
{
    family(o, name, type, help);
    put(o, "%s %.17g\n", name, v);
}

char *mt_ingest_metrics(const mt_ingest_counters *c, const mt_engine_stats *e, size_t *len)
{
    out o = {malloc(4096), 0, 4096, false};
    if (!o.buf) return NULL;
    one(&o, "metron_lines_accepted_total", "counter", "Lines of line protocol accepted.",
        (double)c->lines_ok);
    family(&o, "metron_lines_rejected_total", "counter", "Lines rejected, by reason.");
    for (int r = 0; r < MT_LP_E__COUNT; r++)
        put(&o, "metron_lines_rejected_total{reason=\"%s\"} %llu\n",
            mt_lp_errcode_label((mt_lp_errcode)r), (unsigned long long)c->lines_rejected[r]);
    one(&o, "metron_points_accepted_total", "counter", "Points committed by the engine.",
        (double)c->points_ok);
    family(&o, "metron_points_rejected_total", "counter",
           "Points refused by the engine, by reason.");
    uint64_t other = e->points_out_of_time + e->points_over_series_limit;
    put(&o, "metron_points_rejected_total{reason=\"type_conflict\"} %llu\n",
        (unsigned long long)(c->points_rejected > other ? c->points_rejected - other : 0));
    put(&o, "metron_points_rejected_total{reason=\"timestamp\"} %llu\n",
        (unsigned long long)e->points_out_of_time);
    family(&o, "metron_remote_write_samples_total", "counter",
           "Prometheus remote-write samples, by outcome: decoded into a batch (the engine may "
           "still refuse some), refused as bad data, stale markers left out.");
    put(&o, "metron_remote_write_samples_total{outcome=\"accepted\"} %llu\n",
        (unsigned long long)c->rw_samples);
    put(&o, "metron_remote_write_samples_total{outcome=\"bad_data\"} %llu\n",
        (unsigned long long)c->rw_bad_samples);
    put(&o, "metron_remote_write_samples_total{outcome=\"stale\"} %llu\n",
        (unsigned long long)c->rw_stale);
    one(&o, "metron_remote_write_series_forbidden_total", "counter",
        "Prometheus remote-write series refused (403) for another tenant's business_id label.",
        (double)c->rw_forbidden);
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
