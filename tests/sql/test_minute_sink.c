/*
 * test_minute_sink.c — the minute mirror (sql/mt_minute.h) end to end: a
 * real metrond writing into a database of its own in the test PostgreSQL.
 * Every point written through /write is also inserted into a plain table
 * `pts` of the same database, and the minute rows must equal what SQL
 * computes over it (count, avg, min, max, PERCENTILE_CONT; per series
 * count, sum, min, max, last); so must monitoring.system_dashboard.
 * Random values take MT_TEST_SEED (printed on failure).
 */
#include "sql/live_harness.h"

/* One point: tenant (NULL: none), measurement, host, field, time (s), value. */
static void point(mth_daemon *d, const char *url, feed *f, const char *bid, const char *meas,
                  int host, const char *field, int64_t ts, double v)
{
    char tags[128], series[256];
    if (bid) {
        snprintf(tags, sizeof tags, ",business_id=%s,host=h%d", bid, host);
    } else {
        snprintf(tags, sizeof tags, ",host=h%d", host);
    }
    snprintf(series, sizeof series, "%s%s %s", meas, tags, field);
    f->nlp += (size_t)snprintf(f->lp + f->nlp, sizeof f->lp - f->nlp, "%s%s %s=%.3f %lld\n", meas,
                               tags, field, v, (long long)ts);
    f->nsql +=
        (size_t)snprintf(f->sql + f->nsql, sizeof f->sql - f->nsql,
                         "%s (to_timestamp(%lld), %s%s%s, '%s', '%s', '%s', %.3f)",
                         f->n ? ",\n" : "INSERT INTO pts VALUES", (long long)ts, bid ? "'" : "",
                         bid ? bid : "NULL", bid ? "'" : "", meas, field, series, v);
    if (++f->n == 200) feed_flush(d, url, f);
}

/* A spread of points over the minutes [from, to) (s): 3 tenants, 2 measurements, 3 hosts. */
static void spread(mth_daemon *d, const char *url, feed *f, int64_t from, int64_t to)
{
    const char *bids[] = {A, B, NULL};
    for (int64_t ts = from; ts < to; ts += 10)
        for (int t = 0; t < 3; t++)
            for (int h = 0; h < 3; h++) {
                point(d, url, f, bids[t], "cpu", h, "usage", ts,
                      (double)(next_rand() % 100000) / 1000);
                point(d, url, f, bids[t], "mem", h, "used", ts + 1,
                      (double)(next_rand() % 2000000) / 1000);
            }
    feed_flush(d, url, f);
}

static const char pts_sql[] =
    "CREATE TABLE pts (ts timestamptz, bid uuid, meas text, field text, series text, v float8)";

/* Group rows that differ from SQL over pts (either side missing, or a value). */
static const char diff_groups[] =
    "WITH e AS (SELECT date_trunc('minute', ts) m, bid, meas, field, count(*) c, avg(v) a,"
    " min(v) lo, max(v) hi, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) p50,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY v) p95,"
    " percentile_cont(0.99) WITHIN GROUP (ORDER BY v) p99 FROM pts GROUP BY 1, 2, 3, 4)"
    " SELECT count(*) FROM e FULL JOIN monitoring.metrics_minute r ON r.minute_bucket = e.m"
    " AND r.business_id IS NOT DISTINCT FROM e.bid AND r.metric_category = e.meas"
    " AND r.metric_name = e.field"
    " WHERE e.m IS NULL OR r.minute_bucket IS NULL OR r.sample_count <> e.c"
    " OR abs(r.avg_value - e.a) > 1e-9 * greatest(1, abs(e.a)) OR r.min_value <> e.lo"
    " OR r.max_value <> e.hi OR r.median_value <> e.p50 OR r.p95_value <> e.p95"
    " OR r.p99_value <> e.p99;";

static const char diff_series[] =
    "WITH e AS (SELECT date_trunc('minute', ts) m, series, bid, count(*) c, sum(v) s, min(v) lo,"
    " max(v) hi, (array_agg(v ORDER BY ts DESC))[1] la FROM pts GROUP BY 1, 2, 3)"
    " SELECT count(*) FROM e FULL JOIN monitoring.series_minute r ON r.minute_bucket = e.m"
    " AND r.series = e.series"
    " WHERE e.m IS NULL OR r.minute_bucket IS NULL OR r.sample_count <> e.c"
    " OR r.business_id IS DISTINCT FROM e.bid"
    " OR abs(r.sum_value - e.s) > 1e-9 * greatest(1, abs(e.s)) OR r.min_value <> e.lo"
    " OR r.max_value <> e.hi OR r.last_value <> e.la;";

/* system_dashboard against the same aggregates over the points of its window. */
static const char diff_dashboard[] =
    "WITH e AS (SELECT coalesce(bid, '00000000-0000-0000-0000-000000000000') b, meas, field,"
    " avg(v) a, min(v) lo, max(v) hi, count(*) c FROM pts"
    " WHERE date_trunc('minute', ts) > now() - interval '16 minutes' GROUP BY 1, 2, 3)"
    " SELECT count(*) FROM e FULL JOIN monitoring.system_dashboard r ON r.business_id = e.b"
    " AND r.metric_category = e.meas AND r.metric_name = e.field"
    " WHERE e.b IS NULL OR r.business_id IS NULL OR r.sample_count <> e.c"
    " OR abs(r.avg_value - e.a) > 1e-9 * greatest(1, abs(e.a)) OR r.min_value <> e.lo"
    " OR r.max_value <> e.hi OR r.health_status <> 'healthy';";

/* Poll until sql answers want (deadline ms). */
static bool wait_for(const char *url, const char *sql, const char *want, int ms, char *got,
                     size_t cap)
{
    for (int64_t end = mth_now_ms() + ms; mth_now_ms() < end; mth_sleep_ms(100)) {
        if (psql_try(url, sql, got, cap) && !strcmp(got, want)) return true;
    }
    return false;
}

/* The differing group rows, for the failure message. */
static void group_diff_text(const char *url, char *out, size_t cap)
{
    char sql[sizeof diff_groups + 512];
    snprintf(sql, sizeof sql, "%s", diff_groups);
    char *sel = strstr(sql, "SELECT count(*) FROM e FULL JOIN");
    const char *tail = strstr(diff_groups, "SELECT count(*) FROM e FULL JOIN") + 15;
    snprintf(sel, sizeof sql - (size_t)(sel - sql),
             "SELECT string_agg(concat_ws(' ', coalesce(e.m, r.minute_bucket), coalesce(e.bid,"
             " r.business_id), coalesce(e.meas, r.metric_category), e.c, r.sample_count, e.hi,"
             " r.max_value), '; ') %s",
             tail);
    psql_try(url, sql, out, cap);
}

static void expect_mirrored(const char *url, const char *when)
{
    char got[64], why[2048];
    if (!wait_for(url, diff_groups, "0", 20000, got, sizeof got)) {
        group_diff_text(url, why, sizeof why);
        cr_assert_fail("%s: %s group rows differ from SQL over the points (minute, tenant, "
                       "measurement, count in SQL and in the row, max in SQL and in the row: %s)",
                       when, got, why);
    }
    cr_assert(wait_for(url, diff_series, "0", 5000, got, sizeof got),
              "%s: %s series rows differ from SQL over the points", when, got);
}

/* The start's catch-up flush is over: it committed minutes (from the engine's floor to a few
   minutes ahead, points or none) and none is pending. Rows of PostgreSQL cannot say it: when
   the last stop came after its minute's end flush, the floor is past every point. */
static bool catch_up_done(mth_daemon *d)
{
    char body[16384];
    for (int64_t end = mth_now_ms() + 30000; mth_now_ms() < end; mth_sleep_ms(100)) {
        if (mth_http(d->http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body) != 200) continue;
        static const char name[] = "\nmetron_minute_minutes_total ";
        const char *m = strstr(body, name);
        if (m && atoll(m + sizeof name - 1) > 0 &&
            strstr(body, "\nmetron_minute_pending_minutes 0\n"))
            return true;
    }
    return false;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Seconds until the next minute boundary is at least margin away. */
static void away_from_boundary(int margin)
{
    while (60 - now_s() % 60 < margin || now_s() % 60 < 2) mth_sleep_ms(200);
}

TestSuite(minute_sink, .fini = kill_live, .timeout = 240);

Test(minute_sink, minute_rows_equal_sql_and_late_points_update_them)
{
    seed_rng();
    char url[512], args[700], got[256];
    mth_pg_drop("minute_equal");
    mth_pg_create("minute_equal", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    mth_daemon d;
    snprintf(args, sizeof args, "--postgres '%s' --postgres-flush-interval 1", url);
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 240;
    spread(&d, url, &f, base, now_s() + 1);
    expect_mirrored(url, "after the writes");
    psql_file(url, "SELECT count(*) >= 5 * 6 FROM monitoring.metrics_minute", got, sizeof got);
    cr_expect_str_eq(got, "t", "five minutes of 6 groups at least");
    cr_expect(wait_for(url, diff_dashboard, "0", 5000, got, sizeof got),
              "system_dashboard: %s rows differ from SQL over the points", got);

    /* late points: the oldest minute changes, and its row with it */
    psql_file(url,
              "SELECT sample_count FROM monitoring.metrics_minute WHERE business_id = '" A "'"
              " AND metric_category = 'cpu' AND minute_bucket = (SELECT min(minute_bucket) FROM"
              " monitoring.metrics_minute)",
              got, sizeof got);
    long before = atol(got);
    for (int h = 0; h < 3; h++) point(&d, url, &f, A, "cpu", h, "usage", base + 5, 1000.0 + h);
    feed_flush(&d, url, &f);
    expect_mirrored(url, "after late points");
    psql_file(url,
              "SELECT sample_count FROM monitoring.metrics_minute WHERE business_id = '" A "'"
              " AND metric_category = 'cpu' AND minute_bucket = (SELECT min(minute_bucket) FROM"
              " monitoring.metrics_minute)",
              got, sizeof got);
    cr_expect_eq(atol(got), before + 3, "the late minute's row was replaced (%s)", got);

    /* /metrics: caught up */
    char body[16384];
    bool idle = false;
    for (int64_t end = mth_now_ms() + 5000; !idle && mth_now_ms() < end; mth_sleep_ms(100)) {
        cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
        idle = strstr(body, "\nmetron_minute_pending_minutes 0\n") &&
               strstr(body, "\nmetron_minute_lag_seconds 0.000\n");
    }
    cr_expect(idle, "no lag once mirrored: %s", strstr(body, "metron_minute") ?: body);
    cr_expect(strstr(body, "# TYPE metron_minute_rows_pending gauge\n"), "%s", body);
    cr_expect(strstr(body, "\nmetron_minute_spilled_total 0\n"),
              "the default budget holds this feed's values at once: %s", body);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("minute_equal");
}

Test(minute_sink, kill9_then_restart_gives_the_same_rows_once)
{
    seed_rng();
    char url[512], fast[700], slow[700], got[256];
    mth_pg_drop("minute_crash");
    mth_pg_create("minute_crash", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    snprintf(fast, sizeof fast, "--postgres '%s' --postgres-flush-interval 1", url);
    snprintf(slow, sizeof slow, "--postgres '%s' --postgres-flush-interval 3600", url);
    mth_daemon d;
    start_in(&d, true, fast);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 180;
    spread(&d, url, &f, base, now_s() + 1);
    expect_mirrored(url, "before any crash");
    mth_stop(&d);

    /* A late point acknowledged, then kill -9 before any flush could take it: with an hour
       between flushes, only the start's catch-up and a minute's end flush. The restart must
       find its minute (the engine's floor went down with the commit). */
    start_in(&d, false, slow);
    cr_assert(catch_up_done(&d), "the start's catch-up flush (minutes from the floor on)");
    away_from_boundary(5);
    point(&d, url, &f, B, "mem", 1, "used", base + 7, 5000.5);
    feed_flush(&d, url, &f);
    kill9(&d);
    psql_file(url, diff_groups, got, sizeof got);
    cr_expect_str_eq(got, "1", "the late point was not mirrored before the kill");
    start_in(&d, false, fast);
    expect_mirrored(url, "after kill -9 and a restart");

    /* kill -9 at random moments of the flushes, with late and current points each time */
    int64_t last = 0;
    for (int round = 0; round < 4; round++) {
        /* a new timestamp each round: a repeated one replaces the point, pts would keep both */
        last = now_s() > last ? now_s() : last + 1;
        for (int h = 0; h < 3; h++) {
            point(&d, url, &f, A, "cpu", h, "usage", base + 11 + round,
                  (double)(next_rand() % 100));
            point(&d, url, &f, NULL, "cpu", h, "usage", last, (double)(next_rand() % 100));
        }
        feed_flush(&d, url, &f);
        mth_sleep_ms((int)(next_rand() % 1500));
        kill9(&d);
        start_in(&d, false, fast);
    }
    expect_mirrored(url, "after kill -9 mid-flush, four times");

    /* PostgreSQL drops metrond's connections: the minutes wait, and land after the reconnect */
    psql_file(url,
              "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity"
              " WHERE datname = current_database() AND pid <> pg_backend_pid()",
              got, sizeof got);
    cr_expect_str_eq(got, "t", "metrond's connections were there to drop");
    for (int h = 0; h < 3; h++)
        point(&d, url, &f, B, "cpu", h, "usage", base + 23, (double)(next_rand() % 100));
    feed_flush(&d, url, &f);
    expect_mirrored(url, "after PostgreSQL dropped the connections");
    psql_file(url,
              "SELECT count(*) - count(DISTINCT (minute_bucket, business_id, metric_category,"
              " metric_name)) FROM monitoring.metrics_minute",
              got, sizeof got);
    cr_expect_str_eq(got, "0", "one row per key");
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("minute_crash");
}

/* A PostgreSQL of the test's own (tests/support/pg_tmp.sh), crashed and restarted on purpose. */
static void pg_tmp(const char *what, const char *dir, char *url, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s %s", PG_TMP_SH, what, dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[512] = "";
    if (!fgets(line, sizeof line, p)) line[0] = '\0';
    cr_assert_eq(pclose(p), 0, "pg_tmp.sh %s %s failed", what, dir);
    if (url) snprintf(url, cap, "%.*s", (int)strcspn(line, "\n"), line);
}

/* A /metrics gauge of metrond, or -1. */
static double gauge(mth_daemon *d, const char *name)
{
    static char body[1 << 16];
    if (mth_http(d->http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body) != 200) return -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(body, key);
    return at ? strtod(at + strlen(key), NULL) : -1;
}

Test(minute_sink, a_postgresql_crash_delays_the_minutes_and_loses_none)
{
    seed_rng();
    char url[512], args[700], got[256];
    const char *pg = own_pg;
    snprintf(own_pg, sizeof own_pg, "/tmp/metron-minute-pg-%d", (int)getpid());
    pg_tmp("start", pg, url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    snprintf(args, sizeof args, "--postgres '%s' --postgres-flush-interval 1", url);
    mth_daemon d;
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 120;
    spread(&d, url, &f, base, now_s() + 1);
    expect_mirrored(url, "before the crash");

    pg_tmp("crash", pg, NULL, 0);
    /* points while PostgreSQL is down, current and late: acknowledged by metrond now, put in
       pts (the test's own account) once PostgreSQL is back */
    for (int h = 0; h < 3; h++) {
        point(&d, url, &f, A, "cpu", h, "usage", now_s(), (double)(next_rand() % 100));
        point(&d, url, &f, B, "mem", h, "used", base + 5, (double)(next_rand() % 100));
    }
    mth_write(&d, f.lp);
    f.nlp = 0;
    double pending = 0;
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end && pending <= 0; mth_sleep_ms(200))
        pending = gauge(&d, "metron_minute_pending_minutes");
    cr_expect_gt(pending, 0, "the minutes wait while PostgreSQL is down (/metrics)");
    mth_sleep_ms(3000); /* flushes fail meanwhile (three intervals) */
    cr_expect_gt(gauge(&d, "metron_minute_failures_total"), 0, "the failed flushes are counted");

    pg_tmp("restart", pg, NULL, 0);
    f.nsql += (size_t)snprintf(f.sql + f.nsql, sizeof f.sql - f.nsql, ";\n");
    psql_file(url, f.sql, NULL, 0);
    f.nlp = f.nsql = f.n = 0;
    expect_mirrored(url, "after PostgreSQL crashed and restarted");
    psql_file(url,
              "SELECT count(*) - count(DISTINCT (minute_bucket, business_id, metric_category,"
              " metric_name)) FROM monitoring.metrics_minute",
              got, sizeof got);
    cr_expect_str_eq(got, "0", "one row per key");
    double lag = -1;
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(200))
        if ((lag = gauge(&d, "metron_minute_pending_minutes")) <= 1) break;
    cr_expect_leq(lag, 1, "caught up: at most the open minute pending");
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    pg_tmp("stop", pg, NULL, 0);
    own_pg[0] = '\0';
}

Test(minute_sink, day_partitions_past_the_retention_are_dropped)
{
    char url[512], args[700], got[256];
    mth_pg_drop("minute_keep");
    mth_pg_create("minute_keep", url, sizeof url);
    mth_daemon d;
    snprintf(args, sizeof args, "--postgres '%s' --postgres-flush-interval 1", url);
    start_in(&d, true, args);
    cr_assert(wait_for(url, "SELECT to_regproc('monitoring.minute_partitions') IS NOT NULL", "t",
                       10000, got, sizeof got),
              "schema installed");
    mth_stop(&d);
    /* partitions back to six days, a row five days old */
    psql_file(url,
              "SELECT monitoring.minute_partitions('6 days');"
              "INSERT INTO monitoring.metrics_minute (minute_bucket, metric_category, metric_name,"
              " sample_count) VALUES (date_trunc('minute', now() - interval '5 days'), 'cpu', 'u',"
              " 1);"
              "SELECT count(*) FROM pg_inherits WHERE inhparent ="
              " 'monitoring.metrics_minute'::regclass",
              got, sizeof got);
    cr_assert_eq(atol(got), 8, "six days back to tomorrow: %s", got);
    start_in(&d, false, args); /* the default retention, 48 h */
    const char *old =
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent IN ('monitoring.metrics_minute'::regclass,"
        " 'monitoring.series_minute'::regclass, 'monitoring.metrics_minute_all'::regclass)"
        " AND substring(pg_get_expr(c.relpartbound, c.oid)"
        " FROM 'TO \\(''([^'']+)''\\)')::timestamptz <= now() - interval '48 hours'";
    cr_expect(wait_for(url, old, "0", 10000, got, sizeof got),
              "%s partitions wholly past 48 h left", got);
    psql_file(url, "SELECT count(*) FROM monitoring.metrics_minute", got, sizeof got);
    cr_expect_str_eq(got, "0", "the old row went with its partition");
    psql_file(url,
              "SELECT count(*) FROM pg_inherits WHERE inhparent ="
              " 'monitoring.metrics_minute'::regclass",
              got, sizeof got);
    cr_expect_eq(atol(got), 4, "two days back to tomorrow stay: %s", got);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("minute_keep");
}

/* metrics_minute_all against SQL over every tenant's points of each (minute, measurement, field).
 */
static const char diff_all[] =
    "WITH e AS (SELECT date_trunc('minute', ts) m, meas, field, count(*) c, avg(v) a,"
    " min(v) lo, max(v) hi, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) p50,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY v) p95,"
    " percentile_cont(0.99) WITHIN GROUP (ORDER BY v) p99 FROM pts GROUP BY 1, 2, 3)"
    " SELECT count(*) FROM e FULL JOIN monitoring.metrics_minute_all r ON r.minute_bucket = e.m"
    " AND r.metric_category = e.meas AND r.metric_name = e.field"
    " WHERE e.m IS NULL OR r.minute_bucket IS NULL OR r.sample_count <> e.c"
    " OR abs(r.avg_value - e.a) > 1e-9 * greatest(1, abs(e.a)) OR r.min_value <> e.lo"
    " OR r.max_value <> e.hi OR r.median_value <> e.p50 OR r.p95_value <> e.p95"
    " OR r.p99_value <> e.p99;";

Test(minute_sink, the_system_wide_row_has_true_quantiles_and_tenants_cannot_read_it)
{
    seed_rng();
    char url[512], args[700], got[256], sql[2048], role[64];
    mth_pg_drop("minute_all");
    mth_pg_create("minute_all", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    mth_daemon d;
    snprintf(args, sizeof args, "--postgres '%s' --postgres-flush-interval 1", url);
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 180;
    spread(&d, url, &f, base, now_s() + 1);
    /* tenant A's cpu much higher than B's: a max of the tenants' p95s is no p95 of all */
    for (int64_t ts = base; ts < base + 60; ts += 5)
        point(&d, url, &f, A, "cpu", 9, "usage", ts, 900.0 + (double)(ts - base));
    feed_flush(&d, url, &f);
    cr_assert(wait_for(url, diff_all, "0", 20000, got, sizeof got),
              "%s system-wide rows differ from SQL over every tenant's points", got);
    psql_file(url, "SELECT count(*) FROM monitoring.metrics_minute_all WHERE p95_value IS NOT NULL",
              got, sizeof got);
    cr_expect_geq(atol(got), 4 * 2, "four minutes of cpu and mem at least: %s", got);
    /* the weighted average of the tenants' rows is the system-wide one; the max of their p95s
       is not its p95 where tenant A stands out */
    psql_file(url,
              "SELECT count(*) FILTER (WHERE abs(w - r.avg_value) > 1e-9 * greatest(1, abs(w))),"
              " count(*) FILTER (WHERE mp95 <> r.p95_value) > 0"
              " FROM (SELECT minute_bucket, metric_category, metric_name,"
              " sum(avg_value * sample_count) / sum(sample_count) w, max(p95_value) mp95"
              " FROM monitoring.metrics_minute GROUP BY 1, 2, 3) t"
              " JOIN monitoring.metrics_minute_all r USING (minute_bucket, metric_category,"
              " metric_name)",
              got, sizeof got);
    cr_expect_str_eq(got, "0|t", "sum(avg * count) / sum(count) equals the system-wide average");

    /* a tenant reader sees its own minute rows and no system-wide row; a role without a tenant
       sees none either; the owner (here the superuser metrond connects as) sees them all */
    snprintf(role, sizeof role, "minute_all_reader_%d", (int)getpid());
    snprintf(
        sql, sizeof sql,
        "DROP ROLE IF EXISTS %s; CREATE ROLE %s NOLOGIN;"
        " GRANT monitoring_dashboard TO %s;"
        " INSERT INTO monitoring.tenant_readers (role_name, business_id) VALUES ('%s', '" A "');"
        " SET ROLE %s;"
        " SELECT (SELECT count(*) FROM monitoring.metrics_minute_all) || ' ' ||"
        " (SELECT count(*) > 0 FROM monitoring.metrics_minute WHERE business_id = '" A "')"
        " || ' ' || (SELECT count(*) FROM monitoring.metrics_minute WHERE business_id = '" B "')",
        role, role, role, role, role);
    psql_file(url, sql, got, sizeof got);
    cr_expect_str_eq(got, "0 true 0",
                     "tenant A's reader: no system-wide row, its own rows only (%s)", got);
    snprintf(sql, sizeof sql,
             "SET ROLE monitoring_dashboard;"
             " SELECT count(*) FROM monitoring.metrics_minute_all");
    psql_file(url, sql, got, sizeof got);
    cr_expect_str_eq(got, "0", "the dashboard role itself: no system-wide row");
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("minute_all");
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
    char base_url[512];
    snprintf(base_url, sizeof base_url, "%s", getenv("METRON_TEST_PG"));
    psql_file(base_url, sql, NULL, 0);
}

/* A flush whose values exceed postgres_minute_values reads them again, (measurement, field) by
   (measurement, field): the rows are those of one pass (a budget of 40 values: every batch is
   one (measurement, field) here, whose values exceed it). */
Test(minute_sink, values_over_the_budget_are_described_in_batches_with_the_same_rows)
{
    seed_rng();
    char url[512], args[700], got[256];
    mth_pg_drop("minute_batches");
    mth_pg_create("minute_batches", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    mth_daemon d;
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-minute-values 40", url);
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 180;
    spread(&d, url, &f, base, now_s() + 1);
    expect_mirrored(url, "values in batches");
    cr_expect(wait_for(url, diff_all, "0", 5000, got, sizeof got),
              "%s system-wide rows differ from SQL over every tenant's points", got);
    char body[16384];
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(strstr(body, "\nmetron_minute_spilled_total ") &&
                  !strstr(body, "\nmetron_minute_spilled_total 0\n"),
              "the values spilled: %s", strstr(body, "metron_minute_spilled") ?: body);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("minute_batches");
}
