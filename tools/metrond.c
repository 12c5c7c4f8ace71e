/*
 * metrond — the Metron daemon: the storage engine behind line-protocol
 * listeners (TCP, UDP, HTTP) on one libuv loop.
 *
 * main() reads the settings (settings.h), starts each part in turn — the
 * engine, the PostgreSQL mirrors, alerting, the listeners, then signals,
 * maintenance timers and SIGHUP reloads (reload.h) — and runs the loop.
 * A part that cannot start stops metrond with its name in the log and what
 * started released. Retention, compaction and alert rounds are separate
 * jobs on libuv's thread pool (they wait for the engine's writer or read,
 * never on the loop). SIGTERM and SIGINT stop accepting, let every batch in
 * flight commit, seal what is due and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "mt_engine.h"
#include "mt_fault.h"
#include "mt_server.h"
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
#include "settings.h"

#define STOP_DEADLINE_MS 30000

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

/* ---- running --------------------------------------------------------------------- */

typedef struct daemon daemon_t;

/* A maintenance job: its timer, and its run on libuv's thread pool (waiting for the engine's
   writer or reading, never on the loop). Each has its own: a long compaction does not make an
   alert round wait, nor skip it. A job still running at its next tick skips that tick. */
typedef struct maint_task {
    const char *name;
    void (*run)(daemon_t *d);
    daemon_t *d;
    uv_timer_t timer;
    uv_work_t work;
    bool busy;
} maint_task;

struct daemon {
    uv_loop_t *loop;
    const mt_settings *cfg;
    mt_engine *eng;
    mt_server *srv;
    mt_sink *sink;     /* NULL without [postgres] */
    mt_minute *minute; /* the minute mirror: NULL without postgres or with flush interval 0 */
    uv_signal_t sigterm, sigint;
    uv_timer_t deadline;
    maint_task retention, compact, alerts;
    mt_alerting *alerting; /* NULL without rules */
    mt_notifier *notifier; /* NULL without webhooks */
    mt_pgrules *pgrules;   /* rules followed in PostgreSQL (no rules file, a postgres) */
    mt_reload *reload;     /* SIGHUP; NULL when it could not start */
    /* the endpoints read from PostgreSQL (pgrules' thread only), and the calls reported */
    mt_webhook *eps;
    mt_webhook_stats *reported;
    size_t neps;
    bool stopping, server_stopped;
    int exit_code;
};

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* ---- maintenance: retention and compaction, off the loop --------------------------- */

/* Compact index.mdb only when most of it is free pages, and they are worth it. */
#define INDEX_FREE_MIN (64ULL << 20)

static void run_alerts(daemon_t *d)
{
    int rc = mt_alerting_run(d->alerting, mt_now_ns(), NULL);
    if (rc) mt_log(MT_LOG_ERROR, "msg=\"alert evaluation failed\" err=\"%s\"", mt_strerror(rc));
}

static void run_retention(daemon_t *d)
{
    if (mt_fault_hit("maint.stall")) { /* test builds: a job as long as a big one */
        mt_log(MT_LOG_WARN, "msg=\"fault injected: maintenance job held\" job=retention s=8");
        sleep(8);
        mt_log(MT_LOG_WARN, "msg=\"fault injected: maintenance job released\" job=retention");
    }
    mt_retention_result r;
    const mt_policy *p = mt_reload_policy_acquire(d->reload); /* a reload may replace it */
    int rc = mt_engine_retention(d->eng, p ? &p->r : &d->cfg->policy.r, mt_now_ns(), false, &r);
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
}

static void run_compact(daemon_t *d)
{
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

static void maint_work(uv_work_t *w)
{
    maint_task *t = w->data;
    t->run(t->d);
}

static void finish_stop(daemon_t *d);

static bool maint_busy(const daemon_t *d)
{
    return d->retention.busy || d->compact.busy || d->alerts.busy;
}

static void maint_done(uv_work_t *w, int status)
{
    (void)status;
    maint_task *t = w->data;
    t->busy = false;
    if (t->d->server_stopped && !maint_busy(t->d)) finish_stop(t->d);
}

static void on_maint_timer(uv_timer_t *timer)
{
    maint_task *t = timer->data;
    if (t->busy || t->d->stopping) return; /* the next tick comes soon enough */
    t->busy = true;
    t->work.data = t;
    int rc = uv_queue_work(t->d->loop, &t->work, maint_work, maint_done);
    if (rc) {
        t->busy = false;
        mt_log(MT_LOG_ERROR, "msg=\"cannot queue a maintenance job\" job=%s err=\"%s\"", t->name,
               uv_strerror(rc));
    }
}

static void maint_init(daemon_t *d, maint_task *t, const char *name, void (*run)(daemon_t *))
{
    *t = (maint_task){.name = name, .run = run, .d = d};
    uv_timer_init(d->loop, &t->timer);
    t->timer.data = t;
}

/* every seconds (0: never), the first run after first_ms */
static void maint_schedule(maint_task *t, uint64_t first_ms, uint64_t every)
{
    if (every) uv_timer_start(&t->timer, on_maint_timer, first_ms, every * 1000);
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
    size_t cap = MT_SINK_METRICS_MAX + MT_MINUTE_METRICS_MAX + 8192 + 512 + 1024, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    if (d->sink) n += mt_sink_metrics(d->sink, buf + n, cap - n);
    if (d->minute) n += mt_minute_metrics(d->minute, d->cfg->postgres_raw_rows, buf + n, cap - n);
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

static void on_server_stopped(void *ud)
{
    daemon_t *d = ud;
    d->server_stopped = true;
    mt_reload_stop(d->reload); /* before the tokens it swaps go (now) and the notifiers */
    uv_timer_stop(&d->retention.timer);
    uv_timer_stop(&d->compact.timer);
    uv_timer_stop(&d->alerts.timer);
    if (!maint_busy(d)) finish_stop(d); /* else when the last job is done */
}

/*
 * Stop and free every part that started, in the order that loses nothing:
 * the rules' thread first (it acknowledges into the engine and swaps
 * notifiers), then no delivery record any more; with seal, what is due is
 * sealed while the engine is still there.
 */
static void release_parts(daemon_t *d, bool seal)
{
    mt_pgrules_stop(d->pgrules);
    d->pgrules = NULL;
    mt_notifier_on_delivery(d->notifier, NULL, NULL);
    size_t hours = 0;
    if (seal) {
        int rc = mt_engine_seal(d->eng, false, &hours);
        if (rc) mt_log(MT_LOG_ERROR, "msg=\"seal at shutdown failed\" err=%s", mt_strerror(rc));
    }
    mt_minute_stop(d->minute); /* the engine's floor keeps what it has not mirrored */
    d->minute = NULL;
    mt_sink_stop(d->sink); /* what it has not delivered stays in the outbox */
    d->sink = NULL;
    mt_engine_close(d->eng);
    d->eng = NULL;
    if (seal) mt_log(MT_LOG_INFO, "msg=\"stopped\" sealed_hours=%zu", hours);
    free(d->eps);
    free(d->reported);
    d->eps = NULL, d->reported = NULL, d->neps = 0;
    mt_alerting_free(d->alerting);
    d->alerting = NULL;
    mt_notifier_stop(d->notifier); /* what is queued is delivered (with its retries) first */
    d->notifier = NULL;
}

static void finish_stop(daemon_t *d)
{
    release_parts(d, true);
    uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&d->deadline, on_handle_closed);
    uv_close((uv_handle_t *)&d->retention.timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->compact.timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->alerts.timer, on_handle_closed);
}

static void on_deadline(uv_timer_t *t)
{
    (void)t;
    mt_log(MT_LOG_ERROR, "msg=\"shutdown took too long: exiting\" deadline_ms=%d",
           STOP_DEADLINE_MS);
    _exit(1); /* everything acknowledged is committed already; the head replays at start */
}

/* Stop accepting, let every batch in flight commit, then finish_stop. */
static void begin_stop(daemon_t *d)
{
    d->stopping = true;
    mt_sdnotify_stopping();
    uv_timer_start(&d->deadline, on_deadline, STOP_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&d->deadline);
    mt_server_stop(d->srv, on_server_stopped, d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (d->stopping) return;
    mt_log(MT_LOG_INFO, "msg=\"stopping\" signal=%s", signum == SIGTERM ? "TERM" : "INT");
    begin_stop(d);
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

/* ---- starting: each part in turn; one that cannot start stops metrond, named ---------- */

/* Seconds to nanoseconds, capped at 100 years (a setting of "forever"). */
static int64_t secs_ns(uint64_t s)
{
    return s > 100ULL * 365 * 86400 ? 100LL * 365 * 86400 * 1000000000 : (int64_t)s * 1000000000;
}

/* The minute mirror exists before the engine: the engine tells it of each commit. */
static int make_minute_mirror(daemon_t *d, mt_engine_options *eo)
{
    const mt_settings *c = d->cfg;
    if (!eo->outbox) return MT_OK;
    if (!c->postgres_flush_interval) {
        mt_log(MT_LOG_WARN, "msg=\"postgres_flush_interval = 0: no minute mirror, so "
                            "security_event and business_kpi points are not mirrored into "
                            "security_events and business_metrics\"");
        return MT_OK;
    }
    mt_minute_options mo = mt_minute_options_default();
    mo.conninfo = mt_settings_get("postgres");
    mo.flush_ns = c->postgres_flush_interval > 86400
                      ? 86400 * 1000000000LL
                      : (int64_t)c->postgres_flush_interval * 1000000000;
    mo.retention_ns = secs_ns(c->postgres_minute_retention); /* 0: the mirror's default */
    mo.ahead_ns = eo->max_future_ns > 0 ? eo->max_future_ns : mo.ahead_ns;
    mo.raw = c->postgres_raw_rows;
    mo.raw_window_ns = secs_ns(c->postgres_raw_window);
    mo.raw_max_rate = c->postgres_raw_max_rate;
    mo.values_max = c->postgres_minute_values > SIZE_MAX / 32 ? SIZE_MAX / 32
                                                              : (size_t)c->postgres_minute_values;
    mo.events = c->kpis;
    int rc = mt_minute_new(&mo, &d->minute);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot make the minute mirror\" err=\"%s\"", mt_strerror(rc));
        return rc;
    }
    eo->committed = mt_minute_touch;
    eo->committed_ud = d->minute;
    eo->committed_step_ns = MT_MINUTE_NS;
    return MT_OK;
}

static int open_engine(daemon_t *d)
{
    const mt_settings *c = d->cfg;
    mt_engine_options eo = mt_engine_options_default();
    eo.dir = mt_settings_get("data");
    eo.grace_ns = (int64_t)c->grace * 1000000000;
    eo.footer_cache = c->footer_cache;
    eo.settle_records = c->seal_settle > UINT32_MAX ? UINT32_MAX : (uint32_t)c->seal_settle;
    eo.settle_points = c->seal_settle_points;
    eo.late_quiet_ns = c->late_quiet > (uint64_t)INT64_MAX / 1000000000
                           ? INT64_MAX
                           : (int64_t)c->late_quiet * 1000000000;
    eo.max_future_ns =
        c->max_future > (uint64_t)INT64_MAX / 1000000000 ? 0 : (int64_t)c->max_future * 1000000000;
    eo.commit_interval_ns = (int64_t)c->commit_interval_ms * 1000000;
    eo.nosync = !c->sync;
    eo.max_series = c->max_series;
    eo.max_new_series_per_hour =
        c->max_new_series_per_hour > UINT32_MAX ? UINT32_MAX : (uint32_t)c->max_new_series_per_hour;
    eo.outbox = *mt_settings_get("postgres") != '\0'; /* sealed hours queue for a sink only */
    int rc = make_minute_mirror(d, &eo);
    if (rc) return rc;
    char why[2048] = ""; /* a damaged index record: which, and the way out */
    eo.why = why;
    eo.why_cap = sizeof why;
    if ((rc = mt_engine_open(&eo, &d->eng))) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot open the data directory\" data=%s err=\"%s\"", eo.dir,
               rc == -EBUSY ? "in use by another metrond"
               : why[0]     ? why
                            : mt_strerror(rc));
        return rc;
    }
    /* a point the retention would remove at its next run is refused per line, not acknowledged
       and then lost (only while retention runs) */
    if (c->retention_interval && (rc = mt_engine_set_age_policy(d->eng, &c->policy.r))) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot set the retention's age limit\" err=\"%s\"",
               mt_strerror(rc));
        return rc;
    }
    mt_engine_stats st;
    mt_engine_stats_get(d->eng, &st);
    mt_log(MT_LOG_INFO,
           "msg=\"data directory open\" data=%s series=%llu head_points=%llu sealed_hours=%llu "
           "sync=%s",
           eo.dir, (unsigned long long)st.series, (unsigned long long)st.head_points,
           (unsigned long long)st.sealed_hours, c->sync ? "fsync" : "off");
    mt_engine_damage(d->eng, log_damage, NULL);
    if (st.files_set_aside)
        mt_log(MT_LOG_WARN,
               "msg=\"hour files the index does not account for were moved aside, not deleted\" "
               "dir=%s/lost+found files=%llu",
               eo.dir, (unsigned long long)st.files_set_aside);
    return MT_OK;
}

/* The SQL sink and the minute mirror (with postgres). */
static int start_mirrors(daemon_t *d)
{
    const mt_settings *c = d->cfg;
    if (!*mt_settings_get("postgres")) return MT_OK;
    mt_sink_options so = mt_sink_options_default();
    so.conninfo = mt_settings_get("postgres");
    so.outbox_budget = c->postgres_outbox_budget;
    so.retain = &c->policy.pg;
    so.retain_every_ns = secs_ns(c->postgres_retention_interval);
    if (d->minute) so.touch = mt_minute_touch, so.touch_ud = d->minute; /* range deletes */
    int rc = mt_sink_start(d->eng, &so, &d->sink);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the SQL sink\" err=\"%s\"", mt_strerror(rc));
        return rc;
    }
    mt_log(MT_LOG_INFO, "msg=\"mirroring rollups into PostgreSQL\"");
    /* before anything is sent */
    if (c->postgres_raw_rows && raw_budget_ok(d->eng, c->postgres_raw_max_rate)) return MT_EINVAL;
    if (!d->minute) return MT_OK;
    if ((rc = mt_minute_start(d->minute, d->eng))) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the minute mirror\" err=\"%s\"", mt_strerror(rc));
        return rc;
    }
    mt_log(MT_LOG_INFO,
           "msg=\"mirroring minute summaries into PostgreSQL\" interval_s=%llu retention_s=%llu",
           (unsigned long long)c->postgres_flush_interval,
           (unsigned long long)c->postgres_minute_retention);
    return MT_OK;
}

/* The rules of rules_file, their webhooks and the alert states. 2: the file is wrong. */
static int start_rules_file(daemon_t *d)
{
    mt_alert_rule *rules;
    mt_webhook *hooks;
    size_t nrules, nhooks;
    char err[512];
    if (mt_rules_load(mt_settings_get("rules_file"), &rules, &nrules, &hooks, &nhooks, err,
                      sizeof err)) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot read the rules\" err=\"%s\"", err);
        return 2;
    }
    int rc = nhooks ? mt_notifier_start(hooks, nhooks, &d->notifier) : MT_OK;
    free(hooks);
    if (rc) {
        free(rules);
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the webhooks\" err=\"%s\"", mt_strerror(rc));
        return 1;
    }
    mt_notifier_on_delivery(d->notifier, on_delivery, d);
    rc = mt_alerting_new(d->eng, rules, nrules, d->sink != NULL, d->notifier, &d->alerting);
    free(rules);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot load the alert states\" err=\"%s\"", mt_strerror(rc));
        return 1;
    }
    mt_log(MT_LOG_INFO, "msg=\"alerting\" rules=%zu webhooks=%zu interval_s=%llu", nrules, nhooks,
           (unsigned long long)d->cfg->alert_interval);
    return MT_OK;
}

/* No rules file but a postgres: the rules of monitoring.alert_rules, followed. */
static int start_pg_rules(daemon_t *d)
{
    mt_pgrules_callbacks cb = {.rules = pg_rules,
                               .acknowledged = pg_ack,
                               .endpoints = pg_endpoints,
                               .endpoint_delta = pg_endpoint_delta,
                               .channel_count = pg_channel_count,
                               .ud = d};
    int rc = mt_alerting_new(d->eng, NULL, 0, true, NULL, &d->alerting);
    if (!rc) rc = mt_pgrules_start(mt_settings_get("postgres"), 0, &cb, &d->pgrules);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot follow the alert rules\" err=\"%s\"", mt_strerror(rc));
        return 1;
    }
    mt_log(MT_LOG_INFO, "msg=\"alerting on the rules of monitoring.alert_rules\" interval_s=%llu",
           (unsigned long long)d->cfg->alert_interval);
    return MT_OK;
}

static int start_alerting(daemon_t *d)
{
    int rc = *mt_settings_get("rules_file") ? start_rules_file(d)
             : d->sink                      ? start_pg_rules(d)
                                            : MT_OK;
    if (rc || !d->alerting) return rc;
    char base[300];
    snprintf(base, sizeof base, "%s", mt_settings_get("public_url"));
    if (!base[0] && strcmp(mt_settings_get("http"), "off"))
        snprintf(base, sizeof base, "http://%s", mt_settings_get("http"));
    mt_alerting_set_link_base(d->alerting, base);
    return MT_OK;
}

/* The listeners. On failure they are closed (the loop runs their close). */
static int start_server(daemon_t *d)
{
    const mt_settings *c = d->cfg;
    mt_server_config ic = mt_server_config_default();
    if (d->alerting) {
        ic.alerts = alerts_listing;
        ic.alerts_ud = d;
    }
    ic.more_metrics = daemon_metrics;
    ic.more_metrics_ud = d;
    ic.lp_tcp = mt_settings_get("lp_tcp");
    ic.lp_udp = mt_settings_get("lp_udp");
    ic.http = mt_settings_get("http");
    ic.lp_precision = c->prec;
    ic.limits = mt_lp_options_default().limits;
    ic.limits.max_line_len = c->max_line;
    ic.max_body = c->max_body;
    ic.default_db = mt_settings_get("default_db");
    ic.max_conns = c->max_conns;
    ic.max_conns_http = c->max_conns_http;
    ic.max_conns_tcp = c->max_conns_tcp;
    ic.idle_timeout_ms = c->idle_timeout * 1000;
    ic.header_timeout_ms = c->header_timeout * 1000;
    ic.body_timeout_ms = c->body_timeout * 1000;
    ic.body_min_rate = c->body_min_rate;
    ic.mem_budget = c->mem_budget;
    ic.tokens_file = mt_settings_get("tokens_file");
    ic.metrics_public = c->metrics_public;
    int rc = mt_server_start(d->loop, d->eng, &ic, &d->srv);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"cannot start the listeners\" err=\"%s\"",
               rc == MT_EINVAL ? "bad address" : uv_strerror(rc));
        uv_run(d->loop, UV_RUN_DEFAULT); /* let the stopped listeners close */
        return rc;
    }
    mt_log(MT_LOG_INFO, "msg=\"listening\" lp_tcp=%s lp_udp=%s http=%s lp_precision=%s", ic.lp_tcp,
           ic.lp_udp, ic.http, mt_precision_name(c->prec));
    char status[400];
    snprintf(status, sizeof status, "listening: http %s, lp_tcp %s, lp_udp %s", ic.http, ic.lp_tcp,
             ic.lp_udp);
    mt_sdnotify_ready(status);
    return MT_OK;
}

/* Signals, maintenance timers and SIGHUP, once the listeners run. */
static void start_loop_parts(daemon_t *d)
{
    const mt_settings *c = d->cfg;
    uv_signal_init(d->loop, &d->sigterm);
    uv_signal_init(d->loop, &d->sigint);
    uv_timer_init(d->loop, &d->deadline);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    maint_init(d, &d->retention, "retention", run_retention);
    maint_init(d, &d->compact, "compaction", run_compact);
    maint_init(d, &d->alerts, "alerts", run_alerts);
    if (d->alerting) maint_schedule(&d->alerts, c->alert_interval * 1000, c->alert_interval);
    /* the first runs soon after start (a daemon that restarts often still gets maintained) */
    maint_schedule(&d->retention, 5000, c->retention_interval);
    maint_schedule(&d->compact, 65000, c->compact_interval);
    mt_reload_options ro = {.loop = d->loop,
                            .config = c->config,
                            .argc = c->argc,
                            .argv = c->argv,
                            .known = mt_settings_known,
                            .policy = &c->policy,
                            .retention_on = c->retention_interval != 0,
                            .eng = d->eng,
                            .ing = d->srv,
                            .tokens_file = mt_settings_get("tokens_file"),
                            .sink = d->sink,
                            .alerting = *mt_settings_get("rules_file") ? d->alerting : NULL,
                            .rules_file = mt_settings_get("rules_file"),
                            .notifier = &d->notifier};
    int rc = mt_reload_start(&ro, &d->reload);
    if (rc) { /* as fatal as any other part: stop the way SIGTERM does */
        mt_log(MT_LOG_ERROR, "msg=\"cannot watch SIGHUP\" err=\"%s\"", mt_strerror(rc));
        d->exit_code = 1;
        begin_stop(d);
    }
}

/* Start every part; on failure release what started and return the exit status. */
static int daemon_start(daemon_t *d)
{
    int rc;
    if ((rc = open_engine(d)) || (rc = start_mirrors(d)) || (rc = start_alerting(d)) ||
        (rc = start_server(d))) {
        release_parts(d, false);
        return rc == 2 ? 2 : 1;
    }
    start_loop_parts(d);
    return 0;
}

int main(int argc, char **argv)
{
    malloc_tune();
    mt_settings cfg;
    int rc = mt_settings_load(argc, argv, &cfg);
    if (rc == MT_SETTINGS_RUN) {
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN); /* a reload asked for before the loop watches it: not an exit */
        raise_nofile(cfg.max_conns_http + cfg.max_conns_tcp);
        /* Queries keep libuv's default four pool threads while each maintenance job holds
           one waiting for the writer (an operator's own UV_THREADPOOL_SIZE wins). Set before
           the pool's first use, which sizes it. */
        setenv("UV_THREADPOOL_SIZE", "7", 0);
        daemon_t d = {.loop = uv_default_loop(), .cfg = &cfg};
        rc = daemon_start(&d);
        if (!rc) {
            uv_run(d.loop, UV_RUN_DEFAULT); /* until SIGTERM or SIGINT */
            rc = d.exit_code;
        }
        mt_reload_free(d.reload);
        uv_loop_close(d.loop);
    }
    mt_settings_free(&cfg); /* after the mirror that borrowed its KPIs */
    return rc;
}
