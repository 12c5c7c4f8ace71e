/*
 * test_events_kpis.c — security events and business KPIs (schema version 8,
 * sql/mt_events.h, sql/mt_pgkpi.h) end to end, and the views that tell the
 * truth: a real metrond with two tenants' tokens mirrors security_event and
 * business_kpi lines into a database of its own in the test PostgreSQL, and
 * each tenant's reader role (a real non-superuser login, as `metron schema
 * tenant add` maps it) sees only its own rows through row-level security in
 * security_dashboard and business_kpi_dashboard; kill -9 and a restart send
 * them again onto the same rows. metron-pgstat computes KPIs from an
 * application's own tables ([kpi.NAME] queries). slow_queries_dashboard
 * shows a statement once; system_health takes the host's cpu, memory and
 * disk and Metron's alerts.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mt_ingest.h"
#include "mt_pg.h"
#include "mt_pgstat.h"
#include "mt_schema.h"
#include "mt_time.h"
#include "test_util.h"
#include "tools/metrond_harness.h"

#define A "aaaaaaaa-0000-4000-8000-00000000000a"
#define B "bbbbbbbb-0000-4000-8000-00000000000b"

static pid_t live; /* the metrond running, killed by the suite's fini when a test fails */
static char db[64], reader_a[64], reader_b[64];

static void fini(void)
{
    if (live > 0) {
        kill(live, SIGKILL);
        waitpid(live, NULL, 0);
    }
    mt_pg *pg;
    if (mt_pg_open(mt_test_pg_url(), &pg, NULL, 0)) return;
    char sql[256]; /* names of ours (a pid), not input */
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    mt_pg_exec(pg, sql, 0, NULL);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s_app WITH (FORCE)", db);
    mt_pg_exec(pg, sql, 0, NULL);
    const char *roles[] = {reader_a, reader_b};
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", roles[i]);
        mt_pg_exec(pg, sql, 0, NULL);
    }
    mt_pg_close(pg);
}

static void init(void)
{
    int pid = (int)getpid();
    snprintf(db, sizeof db, "evkpi_%d", pid);
    snprintf(reader_a, sizeof reader_a, "evkpi_a_%d", pid);
    snprintf(reader_b, sizeof reader_b, "evkpi_b_%d", pid);
}

TestSuite(events_kpis, .init = init, .fini = fini, .timeout = 240);

/* The URL of the test server for user on database d. */
static void url_for(char *out, size_t cap, const char *user, const char *d)
{
    const char *base = mt_test_pg_url(), *at = strchr(base, '@'), *slash = strrchr(base, '/');
    cr_assert(at && slash && at < slash, "URL %s: postgresql://user@host:port/db", base);
    snprintf(out, cap, "postgresql://%s@%.*s/%s", user, (int)(slash - at - 1), at + 1, d);
}

static mt_pg *connect_url(const char *url)
{
    char err[512] = "";
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(url, &pg, err, sizeof err), MT_OK, "%s: %s", url, err);
    return pg;
}

static void exec_ok(mt_pg *pg, const char *sql)
{
    cr_assert_eq(mt_pg_exec_script(pg, sql), MT_OK, "%s: %s", sql, mt_pg_errmsg(pg));
}

/* The first column of the first row, "" for none or NULL. */
static void value(mt_pg *pg, const char *sql, char *out, size_t cap)
{
    int rc = mt_pg_query_value(pg, sql, 0, NULL, out, cap);
    if (rc == MT_ENOTFOUND) out[0] = '\0';
    cr_assert(rc == MT_OK || rc == MT_ENOTFOUND, "%s: %s", sql, mt_pg_errmsg(pg));
}

/* Poll sql on url until it answers want (deadline ms). */
static bool wait_value(const char *url, const char *sql, const char *want, int ms, char *got,
                       size_t cap)
{
    mt_pg *pg = connect_url(url);
    bool ok = false;
    for (int64_t end = mth_now_ms() + ms; !ok && mth_now_ms() < end; mth_sleep_ms(100)) {
        if (mt_pg_query_value(pg, sql, 0, NULL, got, cap) != MT_OK) got[0] = '\0';
        ok = !strcmp(got, want);
    }
    mt_pg_close(pg);
    return ok;
}

/* Run a command (stderr joined); its output into out, the exit status back. */
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return mt_test_run(out, cap, cmd);
}

/* metrond on dir (made when dir[0] is 0) with args; waits for /health. */
static void start(mth_daemon *d, const char *args)
{
    if (!d->dir[0]) {
        snprintf(d->dir, sizeof d->dir, "/tmp/metrond-evkpi-XXXXXX");
        cr_assert_not_null(mkdtemp(d->dir));
        snprintf(d->log, sizeof d->log, "%s.log", d->dir);
    }
    d->http = mth_free_port();
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "exec %s --data %s --lp-tcp off --lp-udp off --http 127.0.0.1:%d --grace 3600 "
             "--retention-interval 0 --compact-interval 0 %s >>%s 2>&1",
             METROND_PATH, d->dir, d->http, args, d->log);
    d->pid = fork();
    cr_assert_geq(d->pid, 0);
    if (d->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    live = d->pid;
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(25))
        if (mth_http(d->http, "GET", "/health", NULL, NULL, 0, NULL, 0) == 200) return;
    cr_assert_fail("metrond did not come up (log: %s)", d->log);
}

/* Write lines (precision s) with a tenant's token: 204 or the test fails. */
static void write_as(mth_daemon *d, const char *token, const char *lines)
{
    char hdr[256], body[1024];
    snprintf(hdr, sizeof hdr, "Authorization: Token %s\r\n", token);
    cr_assert_eq(mth_http(d->http, "POST", "/write?db=metron&precision=s", hdr, lines,
                          strlen(lines), body, sizeof body),
                 204, "%s", body);
}

/* A reader role of tenant bid, mapped by `metron schema tenant add`. */
static void add_reader(mt_pg *su, const char *role, const char *bid, const char *url)
{
    char sql[256], out[4096];
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", role);
    exec_ok(su, sql);
    cr_assert_eq(run(out, sizeof out, "%s schema tenant add %s %s --pg '%s' 2>&1", METRON_PATH,
                     role, bid, url),
                 0, "%s", out);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

Test(events_kpis, two_tenants_see_their_own_events_and_kpis_exactly_once)
{
    char url[512], ra[512], rb[512], got[4096], args[2048], lines[4096];
    url_for(url, sizeof url, "postgres", db);
    mt_pg *su = connect_url(mt_test_pg_url());
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    exec_ok(su, sql);
    mt_pg_close(su);
    /* two tenants' tokens, and the KPI settings */
    char tokens[] = "/tmp/evkpi-tokens-XXXXXX", conf[] = "/tmp/evkpi-conf-XXXXXX";
    char ha[65], hb[65], hs[65], text[512];
    mt_ingest_token_hash("token-a", 7, ha);
    mt_ingest_token_hash("token-b", 7, hb);
    mt_ingest_token_hash("token-s", 7, hs);
    snprintf(text, sizeof text, A " %s\n" B " %s\n* %s\n", ha, hb, hs);
    mt_test_file(tokens, text);
    mt_test_file(conf, "[kpi orders]\ntarget = 200\ncategory = sales\n\n"
                       "[kpi.visits]\nis_kpi = false\n");
    mth_daemon d = {0};
    snprintf(args, sizeof args,
             "--config %s --tokens-file %s --postgres '%s' --postgres-flush-interval 1", conf,
             tokens, url);
    start(&d, args);

    int64_t now = now_s(), yday = now - 86400;
    /* tenant A: three events (one point of several fields is one event), two days of a KPI, a
       KPI that is no KPI; tenant B: one event and one day */
    snprintf(lines, sizeof lines,
             "security_event,event_type=login_failed,event_category=authentication,severity=high,"
             "source_ip=203.0.113.7,user=alice risk_score=80i,blocked=true,"
             "description=\"5 failed logins\",attempts=5i %lld\n"
             "security_event,event_type=login_failed,event_category=authentication,severity=high,"
             "source_ip=203.0.113.7,user=alice risk_score=90i %lld\n"
             "security_event,event_type=export,event_category=data_access,severity=low,"
             "source_ip=not-an-ip risk_score=10i,blocked=false %lld\n"
             "business_kpi,metric_name=orders,period=day,industry=retail value=100 %lld\n"
             "business_kpi,metric_name=orders,period=day,industry=retail value=150 %lld\n"
             "business_kpi,metric_name=visits,period=day,industry=retail value=7 %lld\n",
             (long long)now - 5, (long long)now - 4, (long long)now - 3, (long long)yday,
             (long long)now, (long long)now);
    write_as(&d, "token-a", lines);
    snprintf(lines, sizeof lines,
             "security_event,event_type=privilege_escalation,event_category=authorization,"
             "severity=critical risk_score=100i,blocked=true %lld\n"
             "business_kpi,metric_name=orders,period=day,industry=banking value=42 %lld\n",
             (long long)now - 2, (long long)now);
    write_as(&d, "token-b", lines);

    cr_assert(wait_value(url,
                         "SELECT count(*) || '/' || (SELECT count(*) FROM"
                         " monitoring.business_metrics) FROM monitoring.security_events",
                         "4/4", 30000, got, sizeof got),
              "events/KPI rows: %s (log %s)", got, d.log);
    mt_pg *own = connect_url(url);
    /* the event's fields, its tags, what its columns cannot take */
    value(own,
          "SELECT concat_ws('|', event_category, severity, ip_address, risk_score, is_blocked,"
          " event_description, event_data ->> 'attempts', event_data ->> 'user', user_id,"
          " investigation_status) FROM monitoring.security_events WHERE business_id = '" A
          "' AND risk_score = 80",
          got, sizeof got);
    cr_expect_str_eq(got, "authentication|high|203.0.113.7|80|t|5 failed logins|5|alice|new",
                     "user alice is no UUID: in event_data, user_id NULL");
    value(own,
          "SELECT concat_ws('|', event_data ->> 'source_ip', ip_address IS NULL,"
          " event_description, event_source) FROM monitoring.security_events"
          " WHERE event_type = 'export'",
          got, sizeof got);
    cr_expect_str_eq(got, "not-an-ip|t|export|unknown");
    /* the KPI: today's against yesterday's, target and category from [kpi orders] */
    value(own,
          "SELECT concat_ws('|', current_value, previous_value, target_value, trend_direction,"
          " percentage_change, metric_category, industry_vertical, time_period, is_kpi,"
          " period_start = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
          " FROM monitoring.business_metrics WHERE business_id = '" A "' AND metric_name ="
          " 'orders' AND previous_value IS NOT NULL",
          got, sizeof got);
    cr_expect_str_eq(got, "150.0000|100.0000|200.0000|up|50.0000|sales|retail|daily|t|t");
    value(own,
          "SELECT concat_ws('|', is_kpi, metric_category) FROM monitoring.business_metrics"
          " WHERE metric_name = 'visits'",
          got, sizeof got);
    cr_expect_str_eq(got, "f|kpi", "[kpi.visits] is_kpi = false");

    /* each tenant's reader sees its own rows only */
    add_reader(own, reader_a, A, url);
    add_reader(own, reader_b, B, url);
    url_for(ra, sizeof ra, reader_a, db);
    url_for(rb, sizeof rb, reader_b, db);
    mt_pg *r = connect_url(ra);
    value(r,
          "SELECT string_agg(concat_ws(':', business_id, event_category, severity, event_count,"
          " max_risk_score, blocked_events), ' ' ORDER BY event_category)"
          " FROM monitoring.security_dashboard",
          got, sizeof got);
    cr_expect_str_eq(got, A ":authentication:high:2:90:1 " A ":data_access:low:1:10:0");
    value(r,
          "SELECT string_agg(concat_ws(':', business_id, metric_name, current_value,"
          " achievement_percentage, trend_direction), ' ' ORDER BY period_start)"
          " FROM monitoring.business_kpi_dashboard",
          got, sizeof got);
    cr_expect_str_eq(got, A ":orders:100.0000:50.00 " A ":orders:150.0000:75.00:up",
                     "A's KPIs, not visits (is_kpi false), not B's");
    mt_pg_close(r);
    r = connect_url(rb);
    value(r,
          "SELECT string_agg(concat_ws(':', business_id, event_category, severity, event_count),"
          " ' ') FROM monitoring.security_dashboard",
          got, sizeof got);
    cr_expect_str_eq(got, B ":authorization:critical:1");
    value(r,
          "SELECT string_agg(concat_ws(':', business_id, industry_vertical, current_value,"
          " coalesce(trend_direction, '-')), ' ') FROM monitoring.business_kpi_dashboard",
          got, sizeof got);
    cr_expect_str_eq(got, B ":banking:42.0000:-");
    value(r, "SELECT count(*) FROM monitoring.security_events WHERE business_id = '" A "'", got,
          sizeof got);
    cr_expect_str_eq(got, "0", "B's reader reads none of A's events");
    mt_pg_close(r);

    /* a person's triage stays; kill -9 and a restart send the minutes again onto the same
       rows (the floor), and a late point of yesterday changes today's trend */
    exec_ok(own, "UPDATE monitoring.security_events SET investigation_status = 'closed'"
                 " WHERE event_type = 'export'");
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    start(&d, args);
    snprintf(lines, sizeof lines,
             "business_kpi,metric_name=orders,period=day,industry=retail value=300 %lld\n",
             (long long)yday + 1);
    write_as(&d, "token-a", lines);
    cr_assert(wait_value(url,
                         "SELECT trend_direction || ' ' || percentage_change FROM"
                         " monitoring.business_metrics WHERE business_id = '" A "' AND"
                         " metric_name = 'orders' AND previous_value IS NOT NULL",
                         "down -50.0000", 30000, got, sizeof got),
              "today's trend after yesterday's late point: %s", got);
    value(own,
          "SELECT count(*) || '/' || (SELECT count(*) FROM monitoring.business_metrics) || '/' ||"
          " (SELECT investigation_status FROM monitoring.security_events WHERE event_type ="
          " 'export') FROM monitoring.security_events",
          got, sizeof got);
    cr_expect_str_eq(got, "4/4/closed", "the same rows after kill -9 and a restart");
    char body[16384];
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", "Authorization: Token token-s\r\n", NULL, 0,
                          body, sizeof body),
                 200, "%s", body);
    cr_expect(strstr(body, "metron_events_rows_total{table=\"business_metrics\"} "), "%s", body);
    mt_pg_close(own);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    unlink(tokens);
    unlink(conf);
}

Test(events_kpis, pgstat_computes_kpis_from_the_application_tables)
{
    char url[512], app[512], got[4096], args[1024], out[8192], appdb[80];
    url_for(url, sizeof url, "postgres", db);
    snprintf(appdb, sizeof appdb, "%s_app", db);
    url_for(app, sizeof app, "postgres", appdb);
    mt_pg *su = connect_url(mt_test_pg_url());
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    exec_ok(su, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", appdb);
    exec_ok(su, sql);
    mt_pg_close(su);
    /* the application: its businesses and their orders, yesterday and today (UTC) */
    mt_pg *a = connect_url(app);
    exec_ok(a, "CREATE TABLE businesses (id uuid PRIMARY KEY, industry text NOT NULL);"
               "CREATE TABLE orders (id serial PRIMARY KEY, business_id uuid REFERENCES"
               " businesses, amount_cents bigint NOT NULL, status text NOT NULL,"
               " created_at timestamptz NOT NULL);"
               "INSERT INTO businesses VALUES ('" A "', 'retail'), ('" B "', 'retail');"
               "INSERT INTO orders (business_id, amount_cents, status, created_at)"
               " SELECT '" A "', 1000, 'completed', date_trunc('day', now() AT TIME ZONE 'UTC')"
               "   AT TIME ZONE 'UTC' - interval '1 day' + g * interval '1 minute'"
               "   FROM generate_series(1, 4) g;"
               "INSERT INTO orders (business_id, amount_cents, status, created_at)"
               " SELECT '" A "', 2500, 'completed', now() - g * interval '1 second'"
               "   FROM generate_series(1, 6) g;"
               "INSERT INTO orders (business_id, amount_cents, status, created_at)"
               " SELECT '" B "', 500, 'completed', now() - g * interval '1 second'"
               "   FROM generate_series(1, 3) g;"
               "INSERT INTO orders (business_id, amount_cents, status, created_at)"
               " VALUES ('" B "', 500, 'cancelled', now())");
    mt_pg_close(a);
    /* metrond takes writes with a token only: metron-pgstat sends METRON_TOKEN's */
    char tokens[] = "/tmp/evkpi-tokens-XXXXXX", hs[65], text[128];
    mt_ingest_token_hash("token-s", 7, hs);
    snprintf(text, sizeof text, "* %s\n", hs);
    mt_test_file(tokens, text);
    mth_daemon d = {0};
    snprintf(args, sizeof args, "--tokens-file %s --postgres '%s' --postgres-flush-interval 1",
             tokens, url);
    start(&d, args);
    char conf[] = "/tmp/evkpi-pgstat-XXXXXX", ini[4096];
    snprintf(ini, sizeof ini,
             "[pgstat]\npg = %s\nurl = http://127.0.0.1:%d\ninterval = 1s\nsink_pg = %s\n\n"
             "[kpi.orders_per_day]\n"
             "query = SELECT o.business_id, count(*) AS value,\n"
             "  date_trunc('day', o.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS time\n"
             "  FROM orders o WHERE o.status = 'completed'\n"
             "  AND o.created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE"
             " 'UTC' - interval '1 day'\n"
             "  GROUP BY 1, 3;\n"
             "period = day\nindustry = retail\ncategory = sales\ntarget = 5\n\n"
             "[kpi.revenue_today]\n"
             "query = SELECT business_id, sum(amount_cents) / 100.0 AS value, 'web' AS channel\n"
             "  FROM orders WHERE status = 'completed'\n"
             "  AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'\n"
             "  GROUP BY business_id\n"
             "period = day\nindustry = retail\n\n"
             "[kpi.broken]\nquery = SELECT value FROM no_such_table\n",
             app, d.http, url);
    mt_test_file(conf, ini);
    char spool[] = "/tmp/evkpi-spool-XXXXXX";
    cr_assert_not_null(mkdtemp(spool));
    cr_assert_eq(run(out, sizeof out, "METRON_TOKEN=token-s %s --config %s --once --spool %s 2>&1",
                     METRON_PGSTAT_PATH, conf, spool),
                 0, "%s", out);
    cr_expect(strstr(out, "kpi query failed") && strstr(out, "kpi=broken"),
              "the failing KPI is named, the others go on: %s", out);
    cr_assert(wait_value(url,
                         "SELECT string_agg(concat_ws(':', business_id, metric_name,"
                         " current_value, coalesce(previous_value::text, '-'), target_value,"
                         " coalesce(trend_direction, '-'), coalesce(percentage_change::text, '-')),"
                         " ' ' ORDER BY business_id, metric_name, period_start)"
                         " FROM monitoring.business_metrics",
                         A ":orders_per_day:4.0000:-:5.0000:-:- " A
                           ":orders_per_day:6.0000:4.0000:5.0000:up:50.0000 " A
                           ":revenue_today:150.0000:-:-:- " B
                           ":orders_per_day:3.0000:-:5.0000:-:- " B ":revenue_today:15.0000:-:-:-",
                         30000, got, sizeof got),
              "business_metrics: %s (log %s)", got, d.log);
    mt_pg *own = connect_url(url);
    value(own,
          "SELECT concat_ws('|', metric_category, industry_vertical, dimensions ->> 'channel')"
          " FROM monitoring.business_metrics WHERE metric_name = 'revenue_today' AND"
          " business_id = '" B "'",
          got, sizeof got);
    cr_expect_str_eq(got, "kpi|retail|web", "another column is a dimension");
    value(own,
          "SELECT string_agg(concat_ws(':', metric_name, achievement_percentage), ' ' ORDER BY"
          " period_start) FROM monitoring.business_kpi_dashboard WHERE business_id = '" A
          "' AND metric_name = 'orders_per_day'",
          got, sizeof got);
    cr_expect_str_eq(got, "orders_per_day:80.00 orders_per_day:120.00");
    /* query_performance and system_health went into metrond's PostgreSQL, not the app's */
    value(own, "SELECT count(*) > 0 FROM monitoring.system_health", got, sizeof got);
    cr_expect_str_eq(got, "t");
    a = connect_url(app);
    value(a, "SELECT to_regclass('monitoring.system_health') IS NULL", got, sizeof got);
    cr_expect_str_eq(got, "t", "nothing written into the watched database");
    mt_pg_close(a);
    mt_pg_close(own);
    /* no sink named: refused, never the watched database by default */
    cr_expect_eq(run(out, sizeof out, "%s --pg '%s' --url http://127.0.0.1:%d --once 2>&1",
                     METRON_PGSTAT_PATH, app, d.http),
                 2, "%s", out);
    cr_expect(strstr(out, "--sink-pg"), "%s", out);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    unlink(conf);
    unlink(tokens);
    snprintf(out, sizeof out, "rm -rf %s", spool);
    cr_expect_eq(system(out), 0);
}

Test(events_kpis, slow_queries_once_per_statement_and_system_health_from_the_host)
{
    char url[512], got[4096];
    url_for(url, sizeof url, "postgres", db);
    mt_pg *su = connect_url(mt_test_pg_url());
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    exec_ok(su, sql);
    mt_pg_close(su);
    mt_pg *own = connect_url(url);
    mt_schema_result res;
    cr_assert_eq(mt_schema_install(own, &res), MT_OK, "%s", mt_pg_errmsg(own));
    /* one slow statement collected every interval, and another */
    exec_ok(own,
            "INSERT INTO monitoring.query_performance (business_id, query_id, query_hash,"
            " normalized_query, execution_count, total_exec_time, mean_exec_time, collected_at)"
            " SELECT '" A "', 7, '7', 'SELECT pg_sleep($1)', g, 300 * g, 300 + g,"
            " now() - (10 - g) * interval '1 minute' FROM generate_series(1, 8) g;"
            "INSERT INTO monitoring.query_performance (business_id, query_id, query_hash,"
            " normalized_query, execution_count, total_exec_time, mean_exec_time, collected_at)"
            " VALUES ('" A "', 9, '9', 'SELECT 9', 1, 150, 150, now() - interval '5 minutes'),"
            " ('" A "', 10, '10', 'SELECT 10', 1, 50, 50, now());"
            "SELECT monitoring.minute_partitions('48 hours');"
            /* the host's cpu, memory and disks as Telegraf sends them, and an alert on it */
            "INSERT INTO monitoring.series_minute (minute_bucket, series, business_id,"
            " metric_category, metric_name, dimensions, sample_count, last_value)"
            " VALUES (date_trunc('minute', now()) - interval '2 minutes', 'cpu,cpu=cpu-total,"
            "host=dbhost usage_idle', NULL, 'cpu', 'usage_idle', '{\"cpu\": \"cpu-total\","
            " \"host\": \"dbhost\"}', 6, 90),"
            " (date_trunc('minute', now()) - interval '1 minute', 'cpu,cpu=cpu-total,host=dbhost"
            " usage_idle', NULL, 'cpu', 'usage_idle', '{\"cpu\": \"cpu-total\", \"host\":"
            " \"dbhost\"}', 6, 62.5),"
            " (date_trunc('minute', now()) - interval '1 minute', 'cpu,cpu=cpu0,host=dbhost"
            " usage_idle', NULL, 'cpu', 'usage_idle', '{\"cpu\": \"cpu0\", \"host\": \"dbhost\"}',"
            " 6, 1),"
            " (date_trunc('minute', now()) - interval '1 minute', 'mem,host=dbhost used_percent',"
            " NULL, 'mem', 'used_percent', '{\"host\": \"dbhost\"}', 6, 41.25),"
            " (date_trunc('minute', now()) - interval '1 minute', 'disk,host=dbhost,path=/"
            " used_percent', NULL, 'disk', 'used_percent', '{\"host\": \"dbhost\", \"path\":"
            " \"/\"}', 6, 55),"
            " (date_trunc('minute', now()) - interval '1 minute', 'disk,host=dbhost,path=/data"
            " used_percent', NULL, 'disk', 'used_percent', '{\"host\": \"dbhost\", \"path\":"
            " \"/data\"}', 6, 87.5),"
            " (date_trunc('minute', now()) - interval '1 minute', 'mem,host=other used_percent',"
            " NULL, 'mem', 'used_percent', '{\"host\": \"other\"}', 6, 99);"
            "INSERT INTO monitoring.alert_rules (id, rule_name, rule_category, severity,"
            " metric_name, condition_type, condition_definition, created_by) VALUES"
            " ('00000000-0000-4000-8000-0000000000a1', 'cpu', 'metron', 'critical', 'cpu',"
            " 'threshold', '{}', gen_random_uuid());"
            "INSERT INTO monitoring.alerts (alert_rule_id, alert_title, alert_message, severity,"
            " status, metric_name, trigger_value, affected_components, triggered_at) VALUES"
            " ('00000000-0000-4000-8000-0000000000a1', 'cpu', 'cpu', 'critical', 'active',"
            " 'cpu.usage_idle', 5, '[\"cpu,cpu=cpu-total,host=dbhost usage_idle\"]',"
            " '2030-01-01T00:00:00Z'),"
            " ('00000000-0000-4000-8000-0000000000a1', 'cpu', 'cpu', 'critical', 'resolved',"
            " 'cpu.usage_idle', 5, '[\"cpu,host=dbhost usage_idle\"]', '2020-01-01T00:00:00Z'),"
            " ('00000000-0000-4000-8000-0000000000a1', 'cpu', 'cpu', 'critical', 'active',"
            " 'cpu.usage_idle', 5, '[\"cpu,host=dbhost2 usage_idle\"]', '2031-01-01T00:00:00Z')");
    value(own,
          "SELECT string_agg(concat_ws(':', query_hash, avg_time_ms, execution_count), ' ')"
          " FROM monitoring.slow_queries_dashboard",
          got, sizeof got);
    cr_expect_str_eq(got, "7:308.000:8 9:150.000:1",
                     "each statement once, its latest slow interval, slowest first");
    /* metron-pgstat's row: the host's figures and its alerts */
    mt_pg *watched = connect_url(mt_test_pg_url());
    mt_pgstat *st;
    mt_pgstat_options o = {.server = "dbhost:5432/app", .host = "dbhost"};
    cr_assert_eq(mt_pgstat_new(&o, &st), MT_OK);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    cr_assert_eq(mt_pgstat_collect(st, watched, mt_now_ns(), &buf, &len, &cap), MT_OK, "%s",
                 mt_pg_errmsg(watched));
    cr_assert_eq(mt_pgstat_write(st, own, mt_now_ns()), MT_OK, "%s", mt_pg_errmsg(own));
    value(own,
          "SELECT concat_ws('|', cpu_usage_percent, memory_usage_percent, disk_usage_percent,"
          " alerts_active, last_alert_at = '2030-01-01T00:00:00Z') FROM monitoring.system_health",
          got, sizeof got);
    cr_expect_str_eq(got, "37.50|41.25|87.50|1|t",
                     "cpu-total's latest idle, mem, the fullest disk; dbhost's alerts only");
    /* a host no agent reports on: NULL, not 0 */
    mt_pgstat_free(st);
    o.host = "nohost";
    cr_assert_eq(mt_pgstat_new(&o, &st), MT_OK);
    cr_assert_eq(mt_pgstat_collect(st, watched, mt_now_ns(), &buf, &len, &cap), MT_OK);
    cr_assert_eq(mt_pgstat_write(st, own, mt_now_ns()), MT_OK, "%s", mt_pg_errmsg(own));
    value(own,
          "SELECT concat_ws('|', cpu_usage_percent IS NULL, disk_usage_percent IS NULL,"
          " alerts_active) FROM monitoring.system_health ORDER BY collected_at DESC LIMIT 1",
          got, sizeof got);
    cr_expect_str_eq(got, "t|t|0");
    free(buf);
    mt_pgstat_free(st);
    mt_pg_close(watched);
    mt_pg_close(own);
}
