/*
 * metrond — the Metron daemon: the storage engine behind line-protocol
 * listeners (TCP, UDP, HTTP) on one libuv loop.
 *
 * Settings come from defaults, then the config file (INI, section
 * [metrond], parsed by inih), then METROND_* environment variables, then
 * flags; later ones win. `metrond --help` lists every setting with its
 * default; the retention policy is the file's [retention] section
 * (policy.h). SIGHUP reloads the tokens, the rules, the retention policy
 * and the log level (reload.h). Retention and compaction run on timers, on
 * libuv's thread pool (they wait for the engine's writer, never on the
 * loop). SIGTERM
 * and SIGINT stop accepting, let every batch in flight commit, seal what
 * is due and exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <uv.h>

#include "mt_engine.h"
#include "mt_ingest.h"
#include "mt_log.h"
#include "mt_pgrules.h"
#include "mt_minute.h"
#include "version.h"
#include "mt_sink.h"
#include "mt_alert.h"
#include "rules.h"
#include "mt_time.h"
#include "policy.h"
#include "reload.h"
#include "sdnotify.h"

#define STOP_DEADLINE_MS 30000

typedef struct setting {
    const char *name; /* config key; flag is --name with '_' as '-'; env METROND_NAME */
    const char *def;
    const char *help;
    char *value; /* current value (malloc'd) */
} setting;

static setting settings[] = {
    {"data", "./data", "data directory (created if missing)", NULL},
    {"lp_tcp", "127.0.0.1:8089", "raw line protocol over TCP, host:port or off", NULL},
    {"lp_udp", "127.0.0.1:8089", "line protocol over UDP (a datagram is a batch), or off", NULL},
    {"http", "127.0.0.1:8086", "HTTP API (/write, /api/v2/write, /ping, /health, /metrics), or off",
     NULL},
    {"lp_precision", "ns", "timestamp unit of raw TCP/UDP lines: ns, us, ms, s", NULL},
    {"max_line", "65536", "bytes per line", NULL},
    {"max_body", "25000000", "bytes of an HTTP body, after gunzip", NULL},
    {"default_db", "metron",
     "the InfluxDB database (db=, bucket=) stored as written; any other is the tag db=NAME", NULL},
    {"max_conns_http", "1024",
     "open HTTP connections; at the limit the most stalled (idle or slow) one is closed", NULL},
    {"max_conns_tcp", "1024", "open raw TCP connections; at the limit new ones are refused", NULL},
    {"max_conns", "0",
     "TCP and HTTP connections together (0: no cap beyond max_conns_http and max_conns_tcp; "
     "deprecated, it was the only limit)",
     NULL},
    {"idle_timeout", "300", "seconds before a silent connection is closed (0: never)", NULL},
    {"header_timeout", "10",
     "seconds an HTTP request's headers may take from its first byte (408; 0: no limit)", NULL},
    {"body_timeout", "10",
     "seconds an HTTP body may take after its headers, plus 1 s per body_min_rate bytes (408; "
     "0: no limit)",
     NULL},
    {"body_min_rate", "4096", "bytes per second an HTTP body must keep up after body_timeout",
     NULL},
    {"mem_budget", "25165824",
     "bytes of batches in flight (over it reading pauses) and HTTP bodies held (over it new "
     "bodies get 503)",
     NULL},
    {"grace", "300", "seconds after an hour ends before it is sealed", NULL},
    {"footer_cache", "268435456",
     "bytes of parsed hour-file footers kept in memory; the least recently read are dropped "
     "past it and read again when needed",
     NULL},
    {"late_quiet", "60",
     "seconds without a late point for an already sealed hour before its late points are merged "
     "into its file (sooner when they are as many as the file holds)",
     NULL},
    {"seal_settle", "16",
     "head records without a point of an hour, once the newest timestamp passed its end and the "
     "grace, before it is sealed: a stream still writing it keeps it open (0: sealed at once)",
     NULL},
    {"max_future", "600",
     "seconds a point may be ahead of this server's clock; later ones are refused per line "
     "(0: no limit)",
     NULL},
    {"commit_interval_ms", "0", "extra milliseconds to gather a group commit", NULL},
    {"sync", "true", "fsync every commit (false: faster, loses the last commits on power loss)",
     NULL},
    {"max_series", "0", "series in all; points of new series beyond it are refused (0: no limit)",
     NULL},
    {"max_new_series_per_hour", "0",
     "new series per tenant (business_id) per hour; beyond it they are refused (0: no limit)",
     NULL},
    {"postgres", "",
     "PostgreSQL to mirror rollups into (libpq URL; passwords in ~/.pgpass or PGPASSWORD, not "
     "here); empty: no mirror",
     NULL},
    {"postgres_outbox_budget", "100000",
     "outbox entries (sealed hours, alert changes) past 90% of which the log warns; nothing is "
     "dropped",
     NULL},
    {"postgres_flush_interval", "10",
     "seconds between upserts of the minutes points touched into monitoring.metrics_minute and "
     "series_minute (0: no minute mirror)",
     NULL},
    {"postgres_minute_retention", "172800",
     "seconds of minute rows kept in PostgreSQL (whole day partitions are dropped past it)", NULL},
    {"postgres_minute_values", "2097152",
     "values the minute mirror holds at once (16 bytes each, twice while sorted); a flush with "
     "more computes them measurement by measurement, reading the points twice",
     NULL},
    {"postgres_raw_rows", "false",
     "also a row per point in monitoring.performance_metrics, for each complete minute of the "
     "raw window (needs postgres and the minute mirror)",
     NULL},
    {"postgres_raw_window", "3600",
     "seconds of raw rows kept (whole hour partitions are dropped past it)", NULL},
    {"postgres_raw_max_rate", "20000",
     "points per second the raw rows may carry: above it metrond refuses to start, and a minute "
     "above it gets no raw rows (the store keeps every point)",
     NULL},
    {"rules_file", "",
     "alert rules (INI, docs/alerts.md); empty: the rules of monitoring.alert_rules when "
     "postgres is set, else no alerting",
     NULL},
    {"alert_interval", "30", "seconds between alert evaluations", NULL},
    {"public_url", "",
     "this metrond's address for links in webhooks (default: http:// and the http setting)", NULL},
    {"postgres_retention_interval", "3600",
     "seconds between applying the [retention] section's postgres.TABLE keep to PostgreSQL "
     "(old partitions dropped, old resolved alerts deleted; the first right after connecting; "
     "0: never)",
     NULL},
    {"retention_interval", "3600",
     "seconds between applying the [retention] policy (default 90d raw, 400d rollups; 0: never)",
     NULL},
    {"compact_interval", "3600",
     "seconds between compactions: backfilled hours merged, index.mdb shrunk when mostly free "
     "(0: never)",
     NULL},
    {"log_level", "info", "debug, info, warn or error", NULL},
    {"tokens_file", "",
     "API tokens, one 'business_id sha256-hex' per line; with tokens every HTTP request but "
     "/ping, /health and /ready needs one, a tenant's token reads and writes only its tenant, "
     "and TCP/UDP are off",
     NULL},
    {"metrics_public", "false",
     "with tokens_file: serve /metrics without a token (else it needs a system '*' token)", NULL},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

/*
 * Each connection is a descriptor: raise the soft RLIMIT_NOFILE to the hard
 * one (1024 is a common soft default, below the two connection limits), and
 * say so when even that leaves too few (accept then fails and is counted by
 * nothing but the kernel).
 */
static void raise_nofile(uint64_t conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl)) getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < conns + 64)
        mt_log(MT_LOG_WARN,
               "msg=\"open file limit below the connection limits\" nofile=%llu "
               "max_conns_http+max_conns_tcp=%llu (raise LimitNOFILE or ulimit -n)",
               (unsigned long long)rl.rlim_cur, (unsigned long long)conns);
}

static setting *find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0) return &settings[i];
    return NULL;
}

static void set(setting *s, const char *v)
{
    free(s->value);
    s->value = strdup(v);
}

static const char *get(const char *name)
{
    return find(name)->value;
}

static bool is_setting(const char *name)
{
    return find(name) != NULL;
}

static mt_policy policy;
static mt_events_conf *kpis; /* the [kpi NAME] sections (NULL: none) */

static int ini_entry(void *ud, const char *section, const char *name, const char *value)
{
    const char *path = ud;
    if (strcmp(section, "retention") == 0) {
        char err[512];
        if (!mt_policy_set(&policy, name, value, err, sizeof err)) return 1;
        fprintf(stderr, "metrond: %s: [retention] %s\n", path, err);
        return 0;
    }
    const char *kpi_name;
    if (mt_events_kpi_section(section, &kpi_name)) {
        char err[512];
        if (!kpis && mt_events_conf_new(&kpis)) return 0;
        if (mt_events_conf_set(kpis, kpi_name, name, value, err, sizeof err) == MT_OK) return 1;
        fprintf(stderr, "metrond: %s: %s\n", path, err);
        return 0;
    }
    if (strcmp(section, "metrond") != 0) return 1;
    setting *s = find(name);
    if (!s) {
        fprintf(stderr, "metrond: %s: unknown setting '%s'\n", path, name);
        return 0;
    }
    set(s, value);
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: metrond [--config FILE] [--SETTING VALUE ...]\n\nsettings (default):\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", settings[i].name);
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(f, "  %-22s %s (%s)\n", flag, settings[i].help, settings[i].def);
    }
    fprintf(f, "  %-22s print the hash of the token read from stdin, for tokens_file\n",
            "--hash-token");
    fprintf(f, "  %-22s print the version, commit, build type and library versions\n", "--version");
    fprintf(f, "  %-22s print the settings as a config file (those not set commented)\n",
            "--print-config");
    fprintf(f, "\nEach setting may also come from a config file (INI, section [metrond],\n"
               "key as above with '_') or the environment (METROND_DATA, ...).\n"
               "Precedence: flags, then environment, then file, then defaults.\n"
               "SIGHUP reloads the tokens file, the rules file, the file's [retention]\n"
               "and log_level; other settings need a restart (docs/operations.md).\n");
}

/* Print `comment` as '#' lines of at most 78 columns. */
static void print_comment(FILE *f, const char *comment)
{
    const char *p = comment;
    while (*p) {
        size_t n = strlen(p);
        if (n > 76) {
            n = 76;
            while (n > 0 && p[n] != ' ') n--;
            if (n == 0) n = strcspn(p, " ");
        }
        fprintf(f, "# %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ') p++;
    }
}

/*
 * The settings as a config file, for /etc/metron/metrond.conf (the package
 * makes it with this, so no setting is missing): each with its help, and
 * commented out at its default unless the file, environment or a flag set it.
 */
static void print_config(FILE *f)
{
    fprintf(f, "# metrond's configuration (INI). Every setting is listed with its help and\n"
               "# default; a commented line is the default. The environment (METROND_DATA, ...)\n"
               "# and flags (--data, ...) override this file. `metrond --help` lists the same.\n"
               "\n[metrond]\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        fprintf(f, "\n");
        print_comment(f, settings[i].help);
        bool is_def = strcmp(settings[i].value, settings[i].def) == 0;
        fprintf(f, "%s%s = %s\n", is_def ? "# " : "", settings[i].name, settings[i].value);
    }
    fprintf(f,
            "\n# Retention (docs/operations.md): raw points, rollups, per measurement or tenant,\n"
            "# and the PostgreSQL mirror's tables. Durations: 90d, 12h, 3600s; 0 or forever.\n"
            "[retention]\n# default = 90d\n# rollups = 400d\n# measurement.mem = 30d\n"
            "# tenant.<business_id> = 365d\n# postgres.query_performance = 30d\n"
            "\n# KPIs mirrored into monitoring.business_metrics: one [kpi NAME] section each\n"
            "# (docs/postgres.md).\n");
}

static int parse_u64(const char *name, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(get(name), &end, 10);
    if (errno || *end || end == get(name)) {
        fprintf(stderr, "metrond: %s must be a non-negative integer, not '%s'\n", name, get(name));
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *name, bool *out)
{
    const char *v = get(name);
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no"))
        *out = false;
    else {
        fprintf(stderr, "metrond: %s must be true or false, not '%s'\n", name, v);
        return -1;
    }
    return 0;
}

/* ---- running --------------------------------------------------------------------- */

typedef struct daemon {
    uv_loop_t *loop;
    mt_engine *eng;
    mt_ingest *ing;
    mt_sink *sink;     /* NULL without [postgres] */
    mt_minute *minute; /* the minute mirror: NULL without postgres or with flush interval 0 */
    bool raw_rows;     /* it sends raw rows too (postgres_raw_rows) */
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline, retention, compact, alerts;
    uv_work_t maint;
    mt_alerting *alerting; /* NULL without rules */
    mt_notifier *notifier; /* NULL without webhooks */
    mt_pgrules *pgrules;   /* rules followed in PostgreSQL (no rules file, a postgres) */
    mt_reload *reload;     /* SIGHUP; NULL when it could not start */
    /* the endpoints read from PostgreSQL (pgrules' thread only), and the calls reported */
    mt_webhook *eps;
    mt_webhook_stats *reported;
    size_t neps;
    bool maint_busy; /* a maintenance job on the thread pool, of maint_kind */
    enum { MAINT_RETENTION, MAINT_COMPACT, MAINT_ALERTS } maint_kind;
    bool stopping, ingest_stopped;
    int exit_code;
} daemon_t;

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* ---- maintenance: retention and compaction, off the loop --------------------------- */

/* Compact index.mdb only when most of it is free pages, and they are worth it. */
#define INDEX_FREE_MIN (64ULL << 20)

static void maint_run(uv_work_t *w)
{
    daemon_t *d = w->data;
    if (d->maint_kind == MAINT_ALERTS) {
        int rc = mt_alerting_run(d->alerting, mt_now_ns(), NULL);
        if (rc) mt_log(MT_LOG_ERROR, "msg=\"alert evaluation failed\" err=\"%s\"", mt_strerror(rc));
        return;
    }
    if (d->maint_kind == MAINT_RETENTION) {
        mt_retention_result r;
        const mt_policy *p = mt_reload_policy_acquire(d->reload); /* a reload may replace it */
        int rc = mt_engine_retention(d->eng, p ? &p->r : &policy.r, mt_now_ns(), false, &r);
        mt_reload_policy_release(d->reload, p);
        if (rc)
            mt_log(MT_LOG_ERROR, "msg=\"retention failed, nothing removed\" err=\"%s\"",
                   mt_strerror(rc));
        else if (r.hours_dropped || r.hours_rewritten || r.rollup_hours_dropped)
            mt_log(MT_LOG_INFO,
                   "msg=\"retention applied\" hours_dropped=%zu hours_rewritten=%zu "
                   "points_dropped=%llu rollup_hours_dropped=%zu bytes_freed=%llu",
                   r.hours_dropped, r.hours_rewritten, (unsigned long long)r.points_dropped,
                   r.rollup_hours_dropped, (unsigned long long)r.bytes_freed);
        return;
    }
    mt_engine_stats st;
    mt_engine_stats_get(d->eng, &st);
    bool index = st.index_bytes > 2 * st.index_live_bytes &&
                 st.index_bytes - st.index_live_bytes > INDEX_FREE_MIN;
    mt_compact_result r;
    int rc = mt_engine_compact(d->eng, index, NULL, NULL, &r);
    if (rc)
        mt_log(MT_LOG_ERROR, "msg=\"compaction failed\" err=\"%s\"", mt_strerror(rc));
    else if (r.hours_rewritten || index)
        mt_log(MT_LOG_INFO,
               "msg=\"compacted\" hours_rewritten=%zu index_bytes_before=%llu "
               "index_bytes_after=%llu",
               r.hours_rewritten, (unsigned long long)r.index_before,
               (unsigned long long)r.index_after);
}

static void finish_stop(daemon_t *d);

static void maint_done(uv_work_t *w, int status)
{
    (void)status;
    daemon_t *d = w->data;
    d->maint_busy = false;
    if (d->ingest_stopped) finish_stop(d);
}

static void maint_start(daemon_t *d, int kind)
{
    if (d->maint_busy || d->stopping) return; /* the next tick comes soon enough */
    d->maint_busy = true;
    d->maint_kind = kind;
    d->maint.data = d;
    if (uv_queue_work(d->loop, &d->maint, maint_run, maint_done)) d->maint_busy = false;
}

static void on_retention_timer(uv_timer_t *t)
{
    maint_start(t->data, MAINT_RETENTION);
}

static void on_compact_timer(uv_timer_t *t)
{
    maint_start(t->data, MAINT_COMPACT);
}

static void on_alerts_timer(uv_timer_t *t)
{
    maint_start(t->data, MAINT_ALERTS);
}

/* ---- the SQL sink's self-metrics, for /metrics ------------------------------------- */

static char *sink_metrics(void *ud, size_t *len)
{
    daemon_t *d = ud;
    mt_sink_stats st;
    mt_sink_stats_get(d->sink, &st);
    char *buf = malloc(8192) /* 3072 sink, 3072 minute mirror, 1024 raw rows, 1024 events */;
    if (!buf) return NULL;
    int n = snprintf(
        buf, 3072,
        "# HELP metron_sink_connected Whether the SQL sink is connected to PostgreSQL.\n"
        "# TYPE metron_sink_connected gauge\nmetron_sink_connected %d\n"
        "# HELP metron_sink_outbox_depth Sealed hours waiting to be mirrored.\n"
        "# TYPE metron_sink_outbox_depth gauge\nmetron_sink_outbox_depth %zu\n"
        "# HELP metron_sink_oldest_undelivered_seconds Age of the oldest hour waiting.\n"
        "# TYPE metron_sink_oldest_undelivered_seconds gauge\n"
        "metron_sink_oldest_undelivered_seconds %.3f\n"
        "# HELP metron_sink_rows_delivered_total Rollup rows committed into PostgreSQL.\n"
        "# TYPE metron_sink_rows_delivered_total counter\nmetron_sink_rows_delivered_total %llu\n"
        "# HELP metron_sink_failures_total Batches that failed and were retried.\n"
        "# TYPE metron_sink_failures_total counter\nmetron_sink_failures_total %llu\n"
        "# HELP metron_sink_rows_skipped_total Rows that could not be formed (a series key or "
        "alert record that does not decode).\n"
        "# TYPE metron_sink_rows_skipped_total counter\nmetron_sink_rows_skipped_total %llu\n"
        "# HELP metron_sink_rows_quarantined_total Rows PostgreSQL does not take, held in the "
        "data dir (metron sink quarantine list).\n"
        "# TYPE metron_sink_rows_quarantined_total counter\n"
        "metron_sink_rows_quarantined_total %llu\n"
        "# HELP metron_sink_quarantine_rows Rows in the quarantine now.\n"
        "# TYPE metron_sink_quarantine_rows gauge\nmetron_sink_quarantine_rows %zu\n",
        st.connected ? 1 : 0, st.outbox_depth, st.oldest_age_s,
        (unsigned long long)st.rows_delivered, (unsigned long long)st.failures,
        (unsigned long long)st.rows_skipped, (unsigned long long)st.rows_quarantined,
        st.quarantine_held);
    if (n < 0 || n >= 3072) n = 0;
    if (d->minute) {
        mt_minute_stats ms;
        mt_minute_stats_get(d->minute, &ms);
        int k = snprintf(
            buf + n, 3072,
            "# HELP metron_minute_lag_seconds Age of the oldest commit whose minute is not yet "
            "in PostgreSQL (0: none).\n"
            "# TYPE metron_minute_lag_seconds gauge\nmetron_minute_lag_seconds %.3f\n"
            "# HELP metron_minute_pending_minutes Minutes touched and not yet mirrored.\n"
            "# TYPE metron_minute_pending_minutes gauge\nmetron_minute_pending_minutes %zu\n"
            "# HELP metron_minute_rows_pending Rows of those minutes (estimated from the last "
            "minute computed).\n"
            "# TYPE metron_minute_rows_pending gauge\nmetron_minute_rows_pending %llu\n"
            "# HELP metron_minute_rows_delivered_total Minute rows committed into PostgreSQL.\n"
            "# TYPE metron_minute_rows_delivered_total counter\n"
            "metron_minute_rows_delivered_total %llu\n"
            "# HELP metron_minute_failures_total Minute mirror transactions that failed.\n"
            "# TYPE metron_minute_failures_total counter\nmetron_minute_failures_total %llu\n"
            "# HELP metron_minute_minutes_total Minutes computed and committed.\n"
            "# TYPE metron_minute_minutes_total counter\nmetron_minute_minutes_total %llu\n"
            "# HELP metron_minute_flush_seconds_total Time spent computing and upserting minutes.\n"
            "# TYPE metron_minute_flush_seconds_total counter\n"
            "metron_minute_flush_seconds_total %.6f\n"
            "# HELP metron_minute_points_read_total Points scanned to compute minutes.\n"
            "# TYPE metron_minute_points_read_total counter\nmetron_minute_points_read_total "
            "%llu\n"
            "# HELP metron_minute_spilled_total Transactions whose values exceeded "
            "postgres_minute_values (their points read twice).\n"
            "# TYPE metron_minute_spilled_total counter\nmetron_minute_spilled_total %llu\n",
            ms.lag_s, ms.minutes_pending, (unsigned long long)ms.rows_pending,
            (unsigned long long)ms.rows_delivered, (unsigned long long)ms.failures,
            (unsigned long long)ms.minutes_mirrored, ms.flush_s, (unsigned long long)ms.points_read,
            (unsigned long long)ms.spilled);
        if (k > 0 && k < 3072) n += k;
        if (d->raw_rows) {
            k = snprintf(buf + n, 1024,
                         "# HELP metron_raw_rows_total Raw rows committed into "
                         "monitoring.performance_metrics.\n"
                         "# TYPE metron_raw_rows_total counter\nmetron_raw_rows_total %llu\n"
                         "# HELP metron_raw_minutes_skipped_total Minutes over "
                         "postgres_raw_max_rate, sent without raw rows.\n"
                         "# TYPE metron_raw_minutes_skipped_total counter\n"
                         "metron_raw_minutes_skipped_total %llu\n"
                         "# HELP metron_raw_points_per_second Points per second of the last "
                         "complete minute.\n"
                         "# TYPE metron_raw_points_per_second gauge\n"
                         "metron_raw_points_per_second %.1f\n"
                         "# HELP metron_raw_over_budget 1 when that minute was over "
                         "postgres_raw_max_rate.\n"
                         "# TYPE metron_raw_over_budget gauge\nmetron_raw_over_budget %d\n",
                         (unsigned long long)ms.raw_rows, (unsigned long long)ms.raw_skipped,
                         ms.raw_rate, ms.raw_over ? 1 : 0);
            if (k > 0 && k < 1024) n += k;
        }
        k = snprintf(buf + n, 1024,
                     "# HELP metron_events_rows_total Rows of security_event and business_kpi "
                     "points committed into PostgreSQL (a re-send counts again).\n"
                     "# TYPE metron_events_rows_total counter\n"
                     "metron_events_rows_total{table=\"security_events\"} %llu\n"
                     "metron_events_rows_total{table=\"business_metrics\"} %llu\n"
                     "# HELP metron_events_skipped_total security_event and business_kpi points "
                     "that made no row (no tenant, no event_type or metric_name, ...).\n"
                     "# TYPE metron_events_skipped_total counter\n"
                     "metron_events_skipped_total %llu\n",
                     (unsigned long long)ms.events_rows, (unsigned long long)ms.kpi_rows,
                     (unsigned long long)ms.events_skipped);
        if (k > 0 && k < 1024) n += k;
    }
    *len = (size_t)n;
    return buf;
}

/* Raw rows: 0 when the busiest of the last 5 complete minutes stored is within the budget;
   else the refusal logged and the exit code. */
static int raw_budget_ok(mt_engine *e, uint64_t max_rate)
{
    double pps;
    int64_t at;
    int rc = mt_minute_recent_rate(e, mt_now_ns(), 5, &pps, &at);
    if (rc) {
        mt_log(MT_LOG_ERROR,
               "msg=\"cannot measure the recent ingest rate for raw rows\" err=\"%s\"",
               mt_strerror(rc));
        return 1;
    }
    if (pps <= (double)max_rate) return 0;
    char when[40];
    mt_time_format(at, when, sizeof when);
    mt_log(MT_LOG_ERROR,
           "msg=\"refusing to start: raw rows at the recent ingest rate are over "
           "postgres_raw_max_rate (raise it if PostgreSQL takes that many rows per second by COPY, "
           "or set postgres_raw_rows = false)\" points_per_s=%.0f minute=%s "
           "postgres_raw_max_rate=%llu",
           pps, when, (unsigned long long)max_rate);
    return 1;
}

/* What this metrond is, the sink's metrics (with postgres) and the notifications' (with
   alerting). */
static char *daemon_metrics(void *ud, size_t *len)
{
    daemon_t *d = ud;
    size_t n = 0;
    char *sink = d->sink ? sink_metrics(d, &n) : NULL;
    size_t cap = n + 8192 + 512 + 1024;
    char *buf = malloc(cap);
    if (!buf) {
        free(sink);
        return NULL;
    }
    if (n) memcpy(buf, sink, n);
    free(sink);
    int k = snprintf(buf + n, 512,
                     "# HELP metron_build_info The version, git commit and build type of this "
                     "metrond (value 1).\n"
                     "# TYPE metron_build_info gauge\n"
                     "metron_build_info{version=\"%s\",commit=\"%s\",build=\"%s\"} 1\n",
                     mt_version(), mt_version_commit(), mt_version_build());
    if (k > 0 && k < 512) n += (size_t)k;
    if (d->alerting) n += mt_notify_metrics(buf + n, cap - n - 1024);
    n += mt_reload_metrics(d->reload, buf + n, cap - n);
    *len = n;
    return buf;
}

/* ---- rules followed in PostgreSQL (their thread) ------------------------------------- */

static void pg_rules(void *ud, const mt_alert_rule *rules, size_t n)
{
    daemon_t *d = ud;
    mt_alerting_set_rules(d->alerting, rules, n);
}

static void pg_ack(void *ud, const char *alert_id)
{
    daemon_t *d = ud;
    mt_alerting_acknowledge(d->alerting, alert_id);
}

/* A delivery's outcome, kept in monitoring.alerts.notifications_sent (the notifier's thread). */
static void on_delivery(void *ud, const mt_notify_record *r)
{
    daemon_t *d = ud;
    mt_alerting_delivered(d->alerting, r);
}

/* A new set of endpoints: a new notifier (the old one delivers what it holds, then goes). */
static void pg_endpoints(void *ud, const mt_webhook *e, size_t n)
{
    daemon_t *d = ud;
    bool same = n == d->neps;
    for (size_t i = 0; same && i < n; i++) same = mt_webhook_same(&e[i], &d->eps[i]);
    if (same) return;
    mt_webhook *hooks = n ? malloc(n * sizeof *hooks) : NULL;
    mt_webhook_stats *rep = n ? calloc(n, sizeof *rep) : NULL;
    mt_notifier *nf = NULL;
    if (n && (!hooks || !rep)) goto out;
    if (n) memcpy(hooks, e, n * sizeof *e);
    for (size_t i = 0; i < n; i++) {
        bool known = false; /* loaded before as it is: said already */
        for (size_t k = 0; k < d->neps && !known; k++) {
            known = mt_webhook_same(&e[i], &d->eps[k]);
            /* the count the running notifier holds is newer than PostgreSQL's */
            if (!strcmp(e[i].id, d->eps[k].id) && d->notifier) {
                mt_webhook_stats st;
                mt_notifier_stats(d->notifier, k, &st);
                if (st.hour_start_ns > hooks[i].hour_start_ns ||
                    (st.hour_start_ns == hooks[i].hour_start_ns &&
                     st.hour_count > hooks[i].hour_count))
                    hooks[i].hour_count = st.hour_count, hooks[i].hour_start_ns = st.hour_start_ns;
            }
        }
        if (e[i].unknown_event[0] && !known)
            mt_log(MT_LOG_WARN,
                   "msg=\"webhook event type unknown: it matches nothing\" endpoint=\"%s\" "
                   "id=%s event_type=\"%s\"",
                   e[i].name, e[i].id, e[i].unknown_event);
        if (e[i].unusable && !known) /* once: each notification it misses is counted on /metrics */
            mt_log(MT_LOG_WARN,
                   "msg=\"notification channel Metron cannot deliver: its notifications are "
                   "counted, not sent\" channel=\"%s\" id=%s type=\"%s\" err=\"%s\"",
                   e[i].name, e[i].id, e[i].ch.type_name, e[i].unusable);
    }
    if (n && mt_notifier_start(hooks, n, &nf)) goto out;
    mt_notifier_on_delivery(nf, on_delivery, d);
    mt_notifier_stop(mt_alerting_set_notifier(d->alerting, nf));
    d->notifier = nf;
    free(d->eps);
    free(d->reported);
    d->eps = hooks, d->reported = rep, d->neps = n;
    hooks = NULL, rep = NULL;
    mt_log(MT_LOG_INFO, "msg=\"webhook endpoints loaded\" endpoints=%zu", n);
out:
    free(hooks);
    free(rep);
}

static bool pg_endpoint_delta(void *ud, const char *id, mt_pg_endpoint_delta *out)
{
    daemon_t *d = ud;
    for (size_t i = 0; i < d->neps && d->notifier; i++) {
        if (strcmp(d->eps[i].id, id)) continue;
        mt_webhook_stats now;
        mt_notifier_stats(d->notifier, i, &now);
        mt_webhook_stats *was = &d->reported[i];
        *out = (mt_pg_endpoint_delta){.total = now.total - was->total,
                                      .successful = now.successful - was->successful,
                                      .failed = now.failed - was->failed,
                                      .last_success_ns = now.last_success_ns,
                                      .last_failure_ns = now.last_failure_ns};
        /* the hour's count is the channel's (pg_channel_count): kept as it was reported */
        now.hour_count = was->hour_count, now.hour_start_ns = was->hour_start_ns;
        *was = now;
        return out->total > 0;
    }
    return false;
}

/* A channel's rate-limit count, when it changed since it was last written. */
static bool pg_channel_count(void *ud, const char *id, int *count, int64_t *hour_start_ns)
{
    daemon_t *d = ud;
    for (size_t i = 0; i < d->neps && d->notifier; i++) {
        if (strcmp(d->eps[i].id, id)) continue;
        mt_webhook_stats now;
        mt_notifier_stats(d->notifier, i, &now);
        mt_webhook_stats *was = &d->reported[i];
        if (now.hour_count == was->hour_count && now.hour_start_ns == was->hour_start_ns)
            return false;
        was->hour_count = now.hour_count, was->hour_start_ns = now.hour_start_ns;
        *count = now.hour_count, *hour_start_ns = now.hour_start_ns;
        return true;
    }
    return false;
}

/* What open found damaged: served as errors, never as data; said once at start. */
static void log_damage(void *ud, const char *line)
{
    (void)ud;
    mt_log(MT_LOG_ERROR, "msg=\"damaged data\" what=\"%s\"", line);
}

static char *alerts_listing(void *ud, bool all, const char *tenant, size_t *len)
{
    daemon_t *d = ud;
    return d->alerting ? mt_alerting_list(d->alerting, all, tenant, len) : NULL;
}

/* ---- stopping -------------------------------------------------------------------- */

static void on_ingest_stopped(void *ud)
{
    daemon_t *d = ud;
    d->ingest_stopped = true;
    mt_reload_stop(d->reload); /* before the tokens it swaps go (now) and the notifiers */
    uv_timer_stop(&d->retention);
    uv_timer_stop(&d->compact);
    uv_timer_stop(&d->alerts);
    if (!d->maint_busy) finish_stop(d); /* else when the job is done */
}

static void finish_stop(daemon_t *d)
{
    /* the rules' thread first (it acknowledges into the engine and swaps notifiers), then no
       delivery record any more: the engine closes below */
    mt_pgrules_stop(d->pgrules);
    d->pgrules = NULL;
    mt_notifier_on_delivery(d->notifier, NULL, NULL);
    size_t hours = 0;
    int rc = mt_engine_seal(d->eng, false, &hours);
    if (rc) mt_log(MT_LOG_ERROR, "msg=\"seal at shutdown failed\" err=%s", mt_strerror(rc));
    mt_minute_stop(d->minute); /* the engine's floor keeps what it has not mirrored */
    d->minute = NULL;
    mt_sink_stop(d->sink); /* what it has not delivered stays in the outbox */
    d->sink = NULL;
    mt_engine_close(d->eng);
    d->eng = NULL;
    mt_log(MT_LOG_INFO, "msg=\"stopped\" sealed_hours=%zu", hours);
    uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&d->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&d->retention, on_handle_closed);
    uv_close((uv_handle_t *)&d->compact, on_handle_closed);
    uv_close((uv_handle_t *)&d->alerts, on_handle_closed);
    free(d->eps);
    free(d->reported);
    d->eps = NULL, d->reported = NULL, d->neps = 0;
    mt_alerting_free(d->alerting);
    d->alerting = NULL;
    mt_notifier_stop(d->notifier); /* what is queued is delivered (with its retries) first */
    d->notifier = NULL;
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    mt_log(MT_LOG_ERROR, "msg=\"shutdown took too long: exiting\" deadline_ms=%d",
           STOP_DEADLINE_MS);
    _exit(1); /* everything acknowledged is committed already; the head replays at start */
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (d->stopping) return;
    d->stopping = true;
    mt_log(MT_LOG_INFO, "msg=\"stopping\" signal=%s", signum == SIGTERM ? "TERM" : "INT");
    mt_sdnotify_stopping();
    uv_timer_start(&d->deadline, on_deadline, STOP_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&d->deadline);
    mt_ingest_stop(d->ing, on_ingest_stopped, d);
}

/*
 * glibc gives freed memory back to the kernel at first (blocks over 128 KiB get their own
 * mapping, and the top of an arena over 128 KiB is trimmed) and raises both thresholds only as
 * it sees larger blocks freed, up to 32 MiB and 64 MiB. Until then every query answer and every
 * ingest batch takes page faults for memory it just gave back: a PromQL range over 20 series
 * spent half its CPU in them, and one-stream ingest ran ~20% slower. metrond starts where
 * glibc's own adaptation ends. GLIBC_TUNABLES in the environment, when set, decides instead.
 * (Fixed thresholds below that ceiling are worse: an answer over them is a fresh mapping each
 * time; 2 MiB made a 5.8 MB rollup answer 3x slower.)
 */
static void malloc_tune(void)
{
    if (getenv("GLIBC_TUNABLES")) return;
    /* 0 from a sanitizer's allocator, which ignores them: nothing to tell */
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int main(int argc, char **argv)
{
    malloc_tune();
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--version")) {
            mt_version_print(stdout, "metrond");
            return 0;
        }
    for (size_t i = 0; i < NSETTINGS; i++) set(&settings[i], settings[i].def);
    mt_policy_init(&policy);
    /* flags: --config first (the file comes before flags in precedence) */
    struct option longopts[NSETTINGS + 6];
    char names[NSETTINGS][64];
    size_t k = 0;
    for (; k < NSETTINGS; k++) {
        snprintf(names[k], sizeof names[k], "%s", settings[k].name);
        for (char *p = names[k]; *p; p++)
            if (*p == '_') *p = '-';
        longopts[k] = (struct option){names[k], required_argument, 0, 1000 + (int)k};
    }
    longopts[k++] = (struct option){"config", required_argument, 0, 'c'};
    longopts[k++] = (struct option){"nosync", no_argument, 0, 'n'};
    longopts[k++] = (struct option){"help", no_argument, 0, 'h'};
    longopts[k++] = (struct option){"hash-token", no_argument, 0, 't'};
    longopts[k++] = (struct option){"print-config", no_argument, 0, 'p'};
    longopts[k] = (struct option){0, 0, 0, 0};
    const char *config = NULL;
    bool print = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (c == 'c') {
            config = optarg;
        } else if (c == 'p') {
            print = true;
        } else if (c == 't') {
            /* read from stdin: a token on the command line would show in ps and shell history */
            char tok[512];
            if (!fgets(tok, sizeof tok, stdin)) return 2;
            tok[strcspn(tok, "\r\n")] = '\0';
            char hex[65];
            mt_ingest_token_hash(tok, strlen(tok), hex);
            printf("%s\n", hex);
            return 0;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else if (c == '?') {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "metrond: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config) {
        int line = ini_parse(config, ini_entry, (void *)config);
        if (line != 0) {
            if (line > 0)
                fprintf(stderr, "metrond: %s: error at line %d\n", config, line);
            else
                fprintf(stderr, "metrond: cannot read %s\n", config);
            return 2;
        }
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        char env[64] = "METROND_";
        size_t n = strlen(env);
        for (const char *p = settings[i].name; *p && n + 1 < sizeof env; p++)
            env[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[n] = '\0';
        const char *v = getenv(env);
        if (v) set(&settings[i], v);
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (c >= 1000)
            set(&settings[c - 1000], optarg);
        else if (c == 'n')
            set(find("sync"), "false");
    }

    mt_log_level level;
    if (mt_log_level_parse(get("log_level"), &level)) {
        fprintf(stderr, "metrond: log_level must be debug, info, warn or error\n");
        return 2;
    }
    mt_log_set_level(level);
    uint64_t max_conns_http, max_conns_tcp, header_timeout, body_timeout, body_min_rate;
    uint64_t max_line, max_body, max_conns, idle, budget, grace, future, interval, max_series,
        max_new, late_quiet, settle, footer_cache, retention_every, compact_every, alert_every,
        budget_entries, flush_every, minute_keep, minute_values, raw_window, raw_rate,
        pg_retain_every;
    bool sync, metrics_public, raw_rows;
    if (parse_u64("postgres_outbox_budget", &budget_entries) ||
        parse_u64("postgres_flush_interval", &flush_every) ||
        parse_u64("postgres_minute_retention", &minute_keep) ||
        parse_u64("postgres_minute_values", &minute_values) ||
        parse_bool("postgres_raw_rows", &raw_rows) ||
        parse_u64("postgres_raw_window", &raw_window) ||
        parse_u64("postgres_raw_max_rate", &raw_rate) ||
        parse_u64("alert_interval", &alert_every) ||
        parse_u64("retention_interval", &retention_every) ||
        parse_u64("postgres_retention_interval", &pg_retain_every) ||
        parse_u64("compact_interval", &compact_every) || parse_u64("max_line", &max_line) ||
        parse_u64("max_body", &max_body) || parse_u64("max_conns", &max_conns) ||
        parse_u64("idle_timeout", &idle) || parse_u64("mem_budget", &budget) ||
        parse_u64("max_conns_http", &max_conns_http) ||
        parse_u64("max_conns_tcp", &max_conns_tcp) ||
        parse_u64("header_timeout", &header_timeout) || parse_u64("body_timeout", &body_timeout) ||
        parse_u64("body_min_rate", &body_min_rate) || parse_u64("grace", &grace) ||
        parse_u64("late_quiet", &late_quiet) || parse_u64("seal_settle", &settle) ||
        parse_u64("footer_cache", &footer_cache) || parse_u64("max_future", &future) ||
        parse_u64("commit_interval_ms", &interval) || parse_u64("max_series", &max_series) ||
        parse_u64("max_new_series_per_hour", &max_new) || parse_bool("sync", &sync) ||
        parse_bool("metrics_public", &metrics_public))
        return 2;
    mt_precision prec;
    if (!mt_precision_parse(get("lp_precision"), strlen(get("lp_precision")), &prec) ||
        prec > MT_PREC_S) {
        fprintf(stderr, "metrond: lp_precision must be ns, us, ms or s\n");
        return 2;
    }
    if (raw_rows && (!*get("postgres") || !flush_every || !raw_rate || !raw_window)) {
        fprintf(stderr, "metrond: postgres_raw_rows needs postgres, postgres_flush_interval, "
                        "postgres_raw_window and postgres_raw_max_rate above 0\n");
        return 2;
    }
    if (print) { /* checked above: the values printed are ones metrond accepts */
        print_config(stdout);
        for (size_t i = 0; i < NSETTINGS; i++) free(settings[i].value);
        mt_policy_free(&policy);
        mt_events_conf_free(kpis);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* a reload asked for before the loop watches it: not an exit */
    raise_nofile(max_conns_http + max_conns_tcp);

    daemon_t d = {.loop = uv_default_loop()};
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = get("data");
    eo.grace_ns = (int64_t)grace * 1000000000;
    eo.footer_cache = footer_cache;
    /* a point the retention would remove at its next run is refused per line, not acknowledged
       and then lost (only while retention runs) */
    eo.max_age_ns = retention_every ? mt_policy_longest_keep(&policy) : 0;
    eo.settle_records = settle > UINT32_MAX ? UINT32_MAX : (uint32_t)settle;
    eo.late_quiet_ns = late_quiet > (uint64_t)INT64_MAX / 1000000000
                           ? INT64_MAX
                           : (int64_t)late_quiet * 1000000000;
    eo.max_future_ns = future > (uint64_t)INT64_MAX / 1000000000 ? 0 : (int64_t)future * 1000000000;
    eo.commit_interval_ns = (int64_t)interval * 1000000;
    eo.nosync = !sync;
    eo.max_series = max_series;
    eo.max_new_series_per_hour = max_new > UINT32_MAX ? UINT32_MAX : (uint32_t)max_new;
    eo.outbox = *get("postgres") != '\0'; /* queue sealed hours only when a sink drains them */
    if (eo.outbox && flush_every) { /* before the engine: it tells the mirror of each commit */
        mt_minute_options mo = mt_minute_options_default();
        mo.conninfo = get("postgres");
        mo.flush_ns =
            flush_every > 86400 ? 86400 * 1000000000LL : (int64_t)flush_every * 1000000000;
        mo.retention_ns = minute_keep > 100ULL * 365 * 86400 ? 100LL * 365 * 86400 * 1000000000
                                                             : (int64_t)minute_keep * 1000000000;
        if (minute_keep == 0) mo.retention_ns = 0; /* the default */
        mo.ahead_ns = eo.max_future_ns > 0 ? eo.max_future_ns : mo.ahead_ns;
        mo.raw = raw_rows;
        mo.raw_window_ns = raw_window > 100ULL * 365 * 86400 ? 100LL * 365 * 86400 * 1000000000
                                                             : (int64_t)raw_window * 1000000000;
        mo.raw_max_rate = raw_rate;
        mo.values_max = minute_values > SIZE_MAX / 32 ? SIZE_MAX / 32 : (size_t)minute_values;
        mo.events = kpis;
        int mrc = mt_minute_new(&mo, &d.minute);
        if (mrc) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot make the minute mirror\" err=\"%s\"",
                   mt_strerror(mrc));
            return 1;
        }
        d.raw_rows = raw_rows;
        eo.committed = mt_minute_touch;
        eo.committed_ud = d.minute;
        eo.committed_step_ns = MT_MINUTE_NS;
    }
    if (eo.outbox && !flush_every)
        mt_log(MT_LOG_WARN, "msg=\"postgres_flush_interval = 0: no minute mirror, so "
                            "security_event and business_kpi points are not mirrored into "
                            "security_events and business_metrics\"");
    char why[2048] = ""; /* a damaged index record: which, and the way out */
    eo.why = why;
    eo.why_cap = sizeof why;
    int rc = mt_engine_open(&eo, &d.eng);
    if (rc) {
        mt_minute_stop(d.minute);
        mt_log(MT_LOG_ERROR, "msg=\"cannot open the data directory\" data=%s err=\"%s\"", eo.dir,
               rc == -EBUSY ? "in use by another metrond"
               : why[0]     ? why
                            : mt_strerror(rc));
        return 1;
    }
    mt_engine_stats st;
    mt_engine_stats_get(d.eng, &st);
    mt_log(MT_LOG_INFO,
           "msg=\"data directory open\" data=%s series=%llu head_points=%llu sealed_hours=%llu "
           "sync=%s",
           eo.dir, (unsigned long long)st.series, (unsigned long long)st.head_points,
           (unsigned long long)st.sealed_hours, sync ? "fsync" : "off");
    mt_engine_damage(d.eng, log_damage, NULL);
    if (st.files_set_aside)
        mt_log(MT_LOG_WARN,
               "msg=\"hour files the index does not account for were moved aside, not deleted\" "
               "dir=%s/lost+found files=%llu",
               eo.dir, (unsigned long long)st.files_set_aside);

    if (eo.outbox) {
        mt_sink_options so = mt_sink_options_default();
        so.conninfo = get("postgres");
        so.outbox_budget = budget_entries;
        so.retain = &policy.pg;
        so.retain_every_ns = pg_retain_every > 100ULL * 365 * 86400
                                 ? 100LL * 365 * 86400 * 1000000000
                                 : (int64_t)pg_retain_every * 1000000000;
        if ((rc = mt_sink_start(d.eng, &so, &d.sink))) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot start the SQL sink\" err=\"%s\"", mt_strerror(rc));
            mt_engine_close(d.eng);
            mt_minute_stop(d.minute); /* never started: freed */
            return 1;
        }
        mt_log(MT_LOG_INFO, "msg=\"mirroring rollups into PostgreSQL\"");
    }
    if (raw_rows && (rc = raw_budget_ok(d.eng, raw_rate))) { /* before anything is sent */
        mt_minute_stop(d.minute);
        mt_sink_stop(d.sink);
        mt_engine_close(d.eng);
        return rc;
    }
    if (d.minute && (rc = mt_minute_start(d.minute, d.eng))) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the minute mirror\" err=\"%s\"", mt_strerror(rc));
        mt_minute_stop(d.minute);
        mt_sink_stop(d.sink);
        mt_engine_close(d.eng);
        return 1;
    }
    if (d.minute)
        mt_log(MT_LOG_INFO,
               "msg=\"mirroring minute summaries into PostgreSQL\" interval_s=%llu "
               "retention_s=%llu",
               (unsigned long long)flush_every, (unsigned long long)minute_keep);

    if (*get("rules_file")) {
        mt_alert_rule *rules;
        mt_webhook *hooks;
        size_t nrules, nhooks;
        char err[512];
        if (mt_rules_load(get("rules_file"), &rules, &nrules, &hooks, &nhooks, err, sizeof err)) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot read the rules\" err=\"%s\"", err);
            mt_minute_stop(d.minute);
            mt_sink_stop(d.sink);
            mt_engine_close(d.eng);
            return 2;
        }
        if (nhooks && (rc = mt_notifier_start(hooks, nhooks, &d.notifier)))
            mt_log(MT_LOG_ERROR, "msg=\"cannot start the webhooks\" err=\"%s\"", mt_strerror(rc));
        mt_notifier_on_delivery(d.notifier, on_delivery, &d);
        free(hooks);
        rc = mt_alerting_new(d.eng, rules, nrules, d.sink != NULL, d.notifier, &d.alerting);
        free(rules);
        if (rc) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot load the alert states\" err=\"%s\"",
                   mt_strerror(rc));
            mt_minute_stop(d.minute);
            mt_sink_stop(d.sink);
            mt_engine_close(d.eng);
            return 1;
        }
        mt_log(MT_LOG_INFO, "msg=\"alerting\" rules=%zu webhooks=%zu interval_s=%llu", nrules,
               nhooks, (unsigned long long)alert_every);
    }

    if (!d.alerting && d.sink) { /* the rules live in PostgreSQL: follow them */
        mt_pgrules_callbacks cb = {.rules = pg_rules,
                                   .acknowledged = pg_ack,
                                   .endpoints = pg_endpoints,
                                   .endpoint_delta = pg_endpoint_delta,
                                   .channel_count = pg_channel_count,
                                   .ud = &d};
        if ((rc = mt_alerting_new(d.eng, NULL, 0, true, NULL, &d.alerting)) ||
            (rc = mt_pgrules_start(get("postgres"), 0, &cb, &d.pgrules))) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot follow the alert rules\" err=\"%s\"",
                   mt_strerror(rc));
            mt_alerting_free(d.alerting);
            mt_minute_stop(d.minute);
            mt_sink_stop(d.sink);
            mt_engine_close(d.eng);
            return 1;
        }
        mt_log(MT_LOG_INFO,
               "msg=\"alerting on the rules of monitoring.alert_rules\" interval_s=%llu",
               (unsigned long long)alert_every);
    }

    if (d.alerting) {
        char base[300];
        snprintf(base, sizeof base, "%s", get("public_url"));
        if (!base[0] && strcmp(get("http"), "off"))
            snprintf(base, sizeof base, "http://%s", get("http"));
        mt_alerting_set_link_base(d.alerting, base);
    }

    mt_ingest_config ic = mt_ingest_config_default();
    if (d.alerting) {
        ic.alerts = alerts_listing;
        ic.alerts_ud = &d;
    }
    ic.more_metrics = daemon_metrics;
    ic.more_metrics_ud = &d;
    ic.lp_tcp = get("lp_tcp");
    ic.lp_udp = get("lp_udp");
    ic.http = get("http");
    ic.lp_precision = prec;
    ic.limits = mt_lp_options_default().limits;
    ic.limits.max_line_len = max_line;
    ic.max_body = max_body;
    ic.default_db = get("default_db");
    ic.max_conns = max_conns;
    ic.max_conns_http = max_conns_http;
    ic.max_conns_tcp = max_conns_tcp;
    ic.idle_timeout_ms = idle * 1000;
    ic.header_timeout_ms = header_timeout * 1000;
    ic.body_timeout_ms = body_timeout * 1000;
    ic.body_min_rate = body_min_rate;
    ic.mem_budget = budget;
    ic.tokens_file = get("tokens_file");
    ic.metrics_public = metrics_public;
    rc = mt_ingest_start(d.loop, d.eng, &ic, &d.ing);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the listeners\" err=\"%s\"",
               rc == MT_EINVAL ? "bad address" : uv_strerror(rc));
        uv_run(d.loop, UV_RUN_DEFAULT); /* let the stopped listeners close */
        mt_pgrules_stop(d.pgrules);
        mt_alerting_free(d.alerting);
        mt_notifier_stop(d.notifier);
        mt_minute_stop(d.minute);
        mt_sink_stop(d.sink);
        mt_engine_close(d.eng);
        return 1;
    }
    mt_log(MT_LOG_INFO, "msg=\"listening\" lp_tcp=%s lp_udp=%s http=%s lp_precision=%s", ic.lp_tcp,
           ic.lp_udp, ic.http, mt_precision_name(prec));
    char status[400];
    snprintf(status, sizeof status, "listening: http %s, lp_tcp %s, lp_udp %s", ic.http, ic.lp_tcp,
             ic.lp_udp);
    mt_sdnotify_ready(status);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_timer_init(d.loop, &d.deadline);
    d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_timer_init(d.loop, &d.retention);
    uv_timer_init(d.loop, &d.compact);
    uv_timer_init(d.loop, &d.alerts);
    d.retention.data = d.compact.data = d.alerts.data = &d;
    if (d.alerting && alert_every)
        uv_timer_start(&d.alerts, on_alerts_timer, alert_every * 1000, alert_every * 1000);
    /* the first run soon after start (a daemon that restarts often still gets maintained) */
    if (retention_every)
        uv_timer_start(&d.retention, on_retention_timer, 5000, retention_every * 1000);
    if (compact_every) uv_timer_start(&d.compact, on_compact_timer, 65000, compact_every * 1000);
    mt_reload_options ro = {.loop = d.loop,
                            .config = config,
                            .argc = argc,
                            .argv = argv,
                            .known = is_setting,
                            .policy = &policy,
                            .retention_on = retention_every != 0,
                            .eng = d.eng,
                            .ing = d.ing,
                            .tokens_file = get("tokens_file"),
                            .sink = d.sink,
                            .alerting = *get("rules_file") ? d.alerting : NULL,
                            .rules_file = get("rules_file"),
                            .notifier = &d.notifier};
    if ((rc = mt_reload_start(&ro, &d.reload)))
        mt_log(MT_LOG_ERROR, "msg=\"cannot watch SIGHUP: reloading needs a restart\" err=\"%s\"",
               mt_strerror(rc));
    uv_run(d.loop, UV_RUN_DEFAULT);
    mt_reload_free(d.reload);
    uv_loop_close(d.loop);
    for (size_t i = 0; i < NSETTINGS; i++) free(settings[i].value);
    mt_policy_free(&policy);
    mt_events_conf_free(kpis); /* after the mirror that borrowed it */
    return d.exit_code;
}
