/*
 * test_pgretain.c — PostgreSQL kept in bounds (issue 19, schema version
 * 10), on the test PostgreSQL, each test in a database of its own.
 *
 * Time zones: partitions are made, named and bounded in UTC whatever the
 * session's time zone, from the client (PGTZ) or the database (ALTER
 * DATABASE ... SET timezone), across month boundaries; partitions a session
 * in another time zone made before are kept and the gaps beside them
 * filled; a real metrond keeps mirroring into a database whose sessions are
 * not in UTC. Retention: a real metrond, with a [retention] section and
 * postgres_retention_interval = 1, drops exactly the partitions that end
 * before each table's window, again at the next pass, keeps every row
 * inside the windows, and deletes only the old resolved alerts.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

static char url[512], dbname[64];

static void setup(void)
{
    snprintf(dbname, sizeof dbname, "metron_pgretain_%d", (int)getpid());
    mth_pg_create(dbname, url, sizeof url);
}

static void teardown(void)
{
    mth_pg_drop(dbname);
}

TestSuite(pgretain, .init = setup, .fini = teardown, .timeout = 180);

/*
 * Run sql (a script) through psql as a session in time zone tz (PGTZ; NULL:
 * the database's default); the last line of its output into out. true when
 * psql succeeded.
 */
static bool psql_tz(const char *tz, const char *sql, char *out, size_t cap)
{
    char env[128];
    snprintf(env, sizeof env, "%s%s%s", tz ? "PGTZ='" : "env -u PGTZ", tz ? tz : "", tz ? "'" : "");
    return mt_test_psql(env, url, sql, out, cap);
}

/* As psql_tz; the test fails when psql does. */
static void sql_tz(const char *tz, const char *sql, char *out, size_t cap)
{
    char got[4096];
    cr_assert(psql_tz(tz, sql, got, sizeof got), "in time zone %s: %s\n%s", tz ? tz : "(db)", got,
              sql);
    if (out) snprintf(out, cap, "%s", got);
}

static long sql_long(const char *tz, const char *sql)
{
    char got[4096];
    sql_tz(tz, sql, got, sizeof got);
    return atol(got);
}

/* `metron schema install` as a session in time zone tz; its exit status, output in out. */
static int install_tz(const char *tz, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s%s %s schema install --pg '%s' 2>&1",
             tz ? "PGTZ='" : "env -u PGTZ", tz ? tz : "", tz ? "'" : "", METRON_PATH, url);
    return mt_test_run(out, cap, cmd);
}

/* The monthly tables: each partition named <table>_YYYY_MM of its UTC month, bounded by it. */
static const char bad_months_sql[] =
    "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " JOIN pg_class p ON p.oid = i.inhparent,"
    " LATERAL monitoring.partition_bounds(c.oid) b"
    " WHERE p.relname IN ('performance_metrics', 'security_events', 'query_performance',"
    "  'system_health', 'hourly_metrics_summary', 'series_hourly_summary')"
    " AND p.relnamespace = 'monitoring'::regnamespace AND NOT ("
    "  c.relname = p.relname || '_' || to_char(b.lo AT TIME ZONE 'UTC', 'YYYY_MM')"
    "  AND b.lo = date_trunc('month', b.lo AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    "  AND b.hi = (date_trunc('month', b.lo AT TIME ZONE 'UTC') + interval '1 month')"
    "   AT TIME ZONE 'UTC');";

static const char monthly_count_sql[] =
    "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
    " WHERE p.relname IN ('performance_metrics', 'security_events', 'query_performance',"
    "  'system_health', 'hourly_metrics_summary', 'series_hourly_summary')"
    " AND p.relnamespace = 'monitoring'::regnamespace;";

/*
 * Rows one second before and at the start of this UTC month land in the
 * partitions named for the previous and this UTC month, in any session.
 */
static void month_edges_land_right(const char *tz)
{
    char got[512];
    sql_tz(tz,
           "CREATE TEMP TABLE edge AS SELECT date_trunc('month', now() AT TIME ZONE 'UTC')"
           " AT TIME ZONE 'UTC' AS at;"
           "INSERT INTO monitoring.query_performance (query_id, query_hash, execution_count,"
           " total_exec_time, mean_exec_time, collected_at)"
           " SELECT 1, 'edge', 1, 1, 1, at - interval '1 second' FROM edge"
           " UNION ALL SELECT 2, 'edge', 1, 1, 1, at FROM edge;"
           "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, metric_category,"
           " metric_name, sample_count) SELECT at - interval '1 hour', 'edge', 'x', 1 FROM edge"
           " UNION ALL SELECT at, 'edge', 'x', 1 FROM edge;"
           "SELECT string_agg(t, ' ' ORDER BY t) FROM ("
           " SELECT q.tableoid::regclass::text || '=' ||"
           "  to_char(q.collected_at AT TIME ZONE 'UTC', 'YYYY_MM') AS t"
           " FROM monitoring.query_performance q WHERE query_hash = 'edge'"
           " UNION ALL SELECT h.tableoid::regclass::text || '=' ||"
           "  to_char(h.hour_bucket AT TIME ZONE 'UTC', 'YYYY_MM')"
           " FROM monitoring.hourly_metrics_summary h WHERE metric_category = 'edge') x;"
           "DELETE FROM monitoring.query_performance WHERE query_hash = 'edge';"
           "DELETE FROM monitoring.hourly_metrics_summary WHERE metric_category = 'edge';",
           got, sizeof got);
    /* e.g. monitoring.hourly_metrics_summary_2026_11=2026_11 ... */
    int n = 0;
    for (char *save, *t = strtok_r(got, " ", &save); t; t = strtok_r(NULL, " ", &save), n++) {
        char *eq = strchr(t, '=');
        cr_assert_not_null(eq, "%s", t);
        cr_expect(!strncmp(eq - 7, eq + 1, 7) && eq[-8] == '_',
                  "in time zone %s: a row of UTC month %s landed in %.*s", tz ? tz : "(db)", eq + 1,
                  (int)(eq - t), t);
    }
    cr_expect_eq(n, 4, "in time zone %s: %s", tz ? tz : "(db)", got);
}

Test(pgretain, partitions_are_utc_months_whatever_the_session_time_zone)
{
    char out[4096];
    /* first made in UTC, then maintained from sessions east and west of it: the failure
       was "relation performance_metrics_2026_11 already exists" */
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    cr_assert_eq(install_tz("America/New_York", out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "0 partitions created"), "%s", out);
    cr_assert_eq(install_tz("Pacific/Kiritimati", out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "0 partitions created"), "%s", out);
    /* the database's own time zone, as Grafana's or psql's sessions get it */
    char alter[256];
    snprintf(alter, sizeof alter, "ALTER DATABASE %s SET timezone = 'Pacific/Kiritimati';", dbname);
    sql_tz("UTC", alter, NULL, 0);
    cr_assert_eq(install_tz(NULL, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "0 partitions created"), "%s", out);
    char tzname[64];
    sql_tz(NULL, "SHOW timezone;", tzname, sizeof tzname);
    cr_assert_str_eq(tzname, "Pacific/Kiritimati");
    /* two months more each way, from the database's zone and from New York */
    cr_expect_eq(sql_long(NULL, "SELECT monitoring.create_partitions(2, 4);"), 6 * 2);
    cr_expect_eq(sql_long("America/New_York", "SELECT monitoring.create_partitions(3, 5);"), 6 * 2);
    cr_expect_eq(sql_long("Asia/Kathmandu", "SELECT monitoring.create_partitions(3, 5);"), 0);
    cr_expect_eq(sql_long(NULL, monthly_count_sql), 6 * 9, "3 months back to 5 ahead");
    cr_expect_eq(sql_long("America/New_York", bad_months_sql), 0,
                 "every partition named and bounded by its UTC month");
    month_edges_land_right(NULL);
    month_edges_land_right("America/New_York");
    month_edges_land_right("Pacific/Kiritimati");

    /* the day partitions of the minute tables and the hour partitions of raw rows: UTC days
       and hours (Kathmandu is 5:45 ahead: a local hour is no UTC hour) */
    sql_tz("Asia/Kathmandu",
           "SELECT monitoring.minute_partitions('48 hours'),"
           " monitoring.raw_partitions('3 hours', '1 hour');",
           NULL, 0);
    sql_tz("America/New_York",
           "SELECT monitoring.minute_partitions('48 hours'),"
           " monitoring.raw_partitions('3 hours', '1 hour');",
           NULL, 0);
    cr_expect_eq(sql_long("Pacific/Kiritimati",
                          "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                          " JOIN pg_class p ON p.oid = i.inhparent,"
                          " LATERAL monitoring.partition_bounds(c.oid) b"
                          " WHERE p.relname IN ('metrics_minute', 'series_minute',"
                          "  'metrics_minute_all') AND NOT ("
                          "  c.relname = p.relname || '_' || to_char(b.lo AT TIME ZONE 'UTC',"
                          "   'YYYY_MM_DD') AND b.lo = date_trunc('day', b.lo AT TIME ZONE 'UTC')"
                          "   AT TIME ZONE 'UTC' AND b.hi = b.lo + interval '1 day');"),
                 0, "minute partitions are UTC days");
    cr_expect_eq(sql_long("UTC", "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid ="
                                 " i.inhparent WHERE p.relname = 'metrics_minute';"),
                 4, "two days back to tomorrow, made once whatever the zone");
    long hours = sql_long("Pacific/Kiritimati",
                          "SELECT count(*) FROM pg_inherits m JOIN pg_inherits i ON i.inhparent ="
                          " m.inhrelid JOIN pg_class c ON c.oid = i.inhrelid,"
                          " LATERAL monitoring.partition_bounds(c.oid) b"
                          " WHERE m.inhparent = 'monitoring.performance_metrics'::regclass"
                          " AND b.lo IS NOT NULL;");
    cr_expect_geq(hours, 4, "the raw window's hours (3 h back, 1 ahead)");
    cr_expect_eq(sql_long("Pacific/Kiritimati",
                          "SELECT count(*) FROM pg_inherits m JOIN pg_inherits i ON i.inhparent ="
                          " m.inhrelid JOIN pg_class c ON c.oid = i.inhrelid,"
                          " LATERAL monitoring.partition_bounds(c.oid) b"
                          " WHERE m.inhparent = 'monitoring.performance_metrics'::regclass"
                          " AND b.lo IS NOT NULL AND NOT (c.relname = 'performance_metrics_' ||"
                          "  to_char(b.lo AT TIME ZONE 'UTC', 'YYYY_MM_DD_HH24')"
                          "  AND b.lo = date_trunc('hour', b.lo AT TIME ZONE 'UTC') AT TIME ZONE"
                          "  'UTC' AND b.hi = b.lo + interval"
                          "  '1 hour');"),
                 0, "raw partitions are UTC hours");
}

/*
 * A database maintained in New York before version 9: months bounded at
 * New York's midnight, under the UTC month's name. They are kept, and the
 * gaps around them filled, from sessions in any zone; the range stays
 * covered without a hole.
 */
Test(pgretain, months_made_in_another_zone_are_kept_and_the_gaps_filled)
{
    char out[4096];
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    sql_tz("UTC",
           "DO $$ DECLARE p regclass; m timestamp;"
           " BEGIN"
           "  FOR p IN SELECT i.inhrelid::regclass FROM pg_inherits i"
           "   WHERE i.inhparent = 'monitoring.system_health'::regclass LOOP"
           "   EXECUTE format('DROP TABLE %s', p);"
           "  END LOOP;"
           "  FOR k IN -1 .. 1 LOOP"
           "   m := date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k);"
           "   EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF monitoring.system_health"
           "    FOR VALUES FROM (%L) TO (%L)', 'system_health_' || to_char(m, 'YYYY_MM'),"
           "    m AT TIME ZONE 'America/New_York',"
           "    (m + interval '1 month') AT TIME ZONE 'America/New_York');"
           "  END LOOP;"
           " END $$;",
           NULL, 0);
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    cr_assert_eq(install_tz("America/New_York", out, sizeof out), 0, "%s", out);
    cr_assert_eq(install_tz("Pacific/Kiritimati", out, sizeof out), 0, "%s", out);
    /* the three New York months are still there, with their bounds */
    cr_expect_eq(sql_long("UTC", "SELECT count(*) FROM pg_inherits i,"
                                 " LATERAL monitoring.partition_bounds(i.inhrelid) b"
                                 " WHERE i.inhparent = 'monitoring.system_health'::regclass"
                                 " AND b.lo = date_trunc('month', b.lo AT TIME ZONE"
                                 " 'America/New_York') AT TIME ZONE 'America/New_York'"
                                 " AND b.hi = date_trunc('month', b.hi AT TIME ZONE"
                                 " 'America/New_York') AT TIME ZONE 'America/New_York';"),
                 3, "New York's months kept as they were");
    /* from the first month back to the end of the third ahead: contiguous, no hole */
    sql_tz(
        "Pacific/Kiritimati",
        "WITH b AS (SELECT b.lo, b.hi, lag(b.hi) OVER (ORDER BY b.lo) AS prev FROM pg_inherits i,"
        " LATERAL monitoring.partition_bounds(i.inhrelid) b"
        " WHERE i.inhparent = 'monitoring.system_health'::regclass)"
        " SELECT bool_and(prev IS NULL OR prev = lo) AND min(lo) <= (date_trunc('month',"
        " now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC' AND max(hi) >="
        " (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '4 months') AT TIME ZONE"
        " 'UTC' FROM b;",
        out, sizeof out);
    cr_expect_str_eq(out, "t", "system_health's partitions leave no hole");
    /* every hour of the range takes a row */
    sql_tz("America/New_York",
           "INSERT INTO monitoring.system_health (component_type, component_name, health_status,"
           " collected_at) SELECT 'db', 'x', 'ok', g FROM generate_series("
           " (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE"
           " 'UTC', (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '4 months')"
           " AT TIME ZONE 'UTC' - interval '1 hour', interval '1 hour') g;",
           NULL, 0);
}

/* Poll sql (as UTC) until it answers want, up to ms. */
static bool wait_for(const char *sql, const char *want, char *got, size_t cap, int ms)
{
    for (int64_t end = mth_now_ms() + ms; mth_now_ms() < end; mth_sleep_ms(100))
        if (psql_tz("UTC", sql, got, cap) && !strcmp(got, want)) return true;
    return false;
}

/*
 * The mirror in a database whose sessions are not in UTC (the database's
 * zone Kiritimati, metrond's PGTZ New York), after a UTC session made its
 * partitions: the sink's install and the minute mirror's partitions go on,
 * and an hour sealed lands in the summaries.
 */
Test(pgretain, the_mirror_keeps_working_outside_utc)
{
    char out[4096], args[1024], lp[512], alter[256];
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    snprintf(alter, sizeof alter, "ALTER DATABASE %s SET timezone = 'Pacific/Kiritimati';", dbname);
    sql_tz("UTC", alter, NULL, 0);
    mth_daemon d;
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-raw-rows true --grace 1", url);
    mth_start(&d, "PGTZ=America/New_York", args);
    time_t now = time(NULL);
    /* an hour two hours back (sealed at once) and a minute that is over */
    snprintf(lp, sizeof lp, "tz,host=a v=1 %lld\ntz,host=a v=2 %lld\n", (long long)(now - 2 * 3600),
             (long long)(now - 90));
    mth_write(&d, lp);
    bool minute = wait_for("SELECT count(*) FROM monitoring.metrics_minute WHERE metric_category"
                           " = 'tz' AND minute_bucket > now() - interval '10 minutes';",
                           "1", out, sizeof out, 20000);
    cr_expect(minute, "minute rows: %s (log %s)", out, d.log);
    bool hour = wait_for("SELECT count(*) FROM monitoring.hourly_metrics_summary WHERE"
                         " metric_category = 'tz';",
                         "1", out, sizeof out, 20000);
    cr_expect(hour, "hourly rows: %s (log %s)", out, d.log);
    cr_expect(wait_for("SELECT count(*) FROM monitoring.series_hourly_summary WHERE"
                       " metric_category = 'tz';",
                       "1", out, sizeof out, 20000),
              "series rows: %s", out);
    cr_expect_eq(mth_log_lines(&d, "already exists"), 0, "log %s", d.log);
    cr_expect_eq(mth_log_lines(&d, "level=error"), 0, "log %s", d.log);
    mth_stop(&d);
    cr_expect_eq(sql_long(NULL, bad_months_sql), 0);
    mth_cleanup(&d);
}

/* The partitions of the monthly tables that end at or before now() - keep, per table. */
static const char doomed_sql[] =
    "SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '') FROM pg_inherits i"
    " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent,"
    " LATERAL monitoring.partition_bounds(c.oid) b, (VALUES ('query_performance', '30 days'),"
    " ('system_health', '20 days'), ('security_events', '90 days'),"
    " ('hourly_metrics_summary', '400 days'), ('series_hourly_summary', '400 days')) k(t, keep)"
    " WHERE p.relname = k.t AND p.relnamespace = 'monitoring'::regnamespace"
    " AND b.hi <= now() - k.keep::interval;";

Test(pgretain, old_partitions_dropped_on_schedule_and_only_old_resolved_alerts_deleted)
{
    char out[4096], args[1024];
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    /* sixteen months back: every table has partitions past its window */
    sql_tz("UTC", "SELECT monitoring.create_partitions(16, 3);", NULL, 0);
    /* rows well past each window, and inside it (the newest day of the window included) */
    sql_tz(
        "America/New_York",
        "INSERT INTO monitoring.query_performance (query_id, query_hash, execution_count,"
        " total_exec_time, mean_exec_time, collected_at) VALUES"
        " (1, 'old', 1, 1, 1, now() - interval '70 days'),"
        " (2, 'edge', 1, 1, 1, now() - interval '29 days'),"
        " (3, 'new', 1, 1, 1, now() - interval '1 day');"
        "INSERT INTO monitoring.system_health (component_type, component_name, health_status,"
        " collected_at) VALUES ('db', 'old', 'ok', now() - interval '60 days'),"
        " ('db', 'edge', 'ok', now() - interval '19 days'), ('db', 'new', 'ok', now());"
        "INSERT INTO monitoring.security_events (business_id, event_type, event_category,"
        " severity, event_source, event_description, occurred_at) VALUES"
        " (gen_random_uuid(), 'login', 'auth', 'low', 't', 'old', now() - interval '130 days'),"
        " (gen_random_uuid(), 'login', 'auth', 'low', 't', 'edge', now() - interval '89 days'),"
        " (gen_random_uuid(), 'login', 'auth', 'low', 't', 'new', now());"
        "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, metric_category,"
        " metric_name, sample_count) VALUES"
        " (date_trunc('hour', now() - interval '440 days'), 'old', 'x', 1),"
        " (date_trunc('hour', now() - interval '399 days'), 'edge', 'x', 1),"
        " (date_trunc('hour', now()), 'new', 'x', 1);"
        "INSERT INTO monitoring.series_hourly_summary (hour_bucket, series, metric_category,"
        " metric_name, sample_count) VALUES"
        " (date_trunc('hour', now() - interval '440 days'), 'old x', 'old', 'x', 1),"
        " (date_trunc('hour', now()), 'new x', 'new', 'x', 1);"
        "INSERT INTO monitoring.performance_metrics (metric_name, metric_category, metric_type,"
        " metric_value, collected_at) VALUES ('x', 'old', 'gauge', 1, now() - interval '400 days');"
        "INSERT INTO monitoring.alert_rules (id, rule_name, rule_category, severity, metric_name,"
        " condition_type, condition_definition, created_by) VALUES"
        " ('00000000-0000-4000-8000-0000000000aa', 'r', 'c', 'warning', 'x', 'threshold', '{}',"
        " '00000000-0000-0000-0000-000000000000');"
        "INSERT INTO monitoring.alerts (alert_rule_id, alert_title, alert_message, severity,"
        " status, metric_name, trigger_value, triggered_at, resolved_at, updated_at)"
        " SELECT '00000000-0000-4000-8000-0000000000aa', t, t, 'warning', s, 'x', 1,"
        "  now() - interval '200 days', r, u FROM (VALUES"
        "  ('resolved long ago', 'resolved', now() - interval '100 days', now() - interval"
        "   '100 days'),"
        "  ('resolved, no time', 'resolved', NULL, now() - interval '95 days'),"
        "  ('resolved lately', 'resolved', now() - interval '10 days', now() - interval"
        "   '10 days'),"
        "  ('active for long', 'active', NULL, now() - interval '200 days'),"
        "  ('acknowledged long ago', 'acknowledged', NULL, now() - interval '200 days'))"
        "  v(t, s, r, u);",
        NULL, 0);
    char doomed[4096];
    sql_tz("UTC", doomed_sql, doomed, sizeof doomed);
    cr_assert(strstr(doomed, "query_performance_") && strstr(doomed, "system_health_") &&
                  strstr(doomed, "security_events_") && strstr(doomed, "hourly_metrics_summary_") &&
                  strstr(doomed, "series_hourly_summary_"),
              "every table has partitions past its window: %s", doomed);
    long parts_before = sql_long("UTC", monthly_count_sql);
    long ndoomed = 1;
    for (const char *p = doomed; (p = strchr(p, ' ')); p++) ndoomed++;

    char cfg[] = "/tmp/pgretain-cfg-XXXXXX";
    mt_test_file(cfg, "[retention]\n"
                      "postgres.system_health = 20d\n"     /* not the default (30d) */
                      "postgres.query_performance = 30d\n" /* the default, said */
                      "postgres.performance_metrics = forever\n");
    mth_daemon d;
    snprintf(args, sizeof args,
             "--config %s --postgres '%s' --postgres-flush-interval 0 "
             "--postgres-retention-interval 1",
             cfg, url);
    mth_start(&d, "PGTZ=Pacific/Kiritimati", args);
    /* the first pass runs once the sink is connected */
    cr_expect(wait_for(doomed_sql, "", out, sizeof out, 20000), "still there: %s (log %s)", out,
              d.log);
    cr_expect_eq(sql_long("UTC", monthly_count_sql), parts_before - ndoomed,
                 "only those dropped: %s", doomed);
    /* every row inside its window is still there */
    sql_tz("UTC",
           "SELECT string_agg(x, ' ' ORDER BY x) FROM ("
           " SELECT 'qp:' || query_hash AS x FROM monitoring.query_performance"
           " UNION ALL SELECT 'sh:' || component_name FROM monitoring.system_health"
           " UNION ALL SELECT 'se:' || event_description FROM monitoring.security_events"
           " UNION ALL SELECT 'hs:' || metric_category FROM monitoring.hourly_metrics_summary"
           " UNION ALL SELECT 'ss:' || metric_category FROM monitoring.series_hourly_summary"
           " UNION ALL SELECT 'pm:' || metric_category FROM monitoring.performance_metrics"
           " UNION ALL SELECT 'al:' || alert_title FROM monitoring.alerts) v;",
           out, sizeof out);
    cr_expect_str_eq(out, "al:acknowledged long ago al:active for long al:resolved lately hs:edge "
                          "hs:new pm:old qp:edge qp:new se:edge se:new sh:edge sh:new ss:new");
    cr_expect_geq(mth_log_lines(&d, "PostgreSQL retention applied"), 1, "log %s", d.log);

    /* on schedule: partitions past the window made again go at the next pass */
    sql_tz("UTC", "SELECT monitoring.create_partitions(16, 3);", NULL, 0);
    sql_tz("UTC", doomed_sql, out, sizeof out);
    cr_expect_str_neq(out, "", "made again");
    cr_expect(wait_for(doomed_sql, "", out, sizeof out, 10000), "still there: %s (log %s)", out,
              d.log);
    cr_expect_eq(mth_log_lines(&d, "level=error"), 0, "log %s", d.log);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(cfg);
}

/* A postgres.* key that names no table is refused at start, with the tables it knows. */
Test(pgretain, an_unknown_table_is_refused_at_start)
{
    char cfg[] = "/tmp/pgretain-cfg-XXXXXX", cmd[1024], out[4096];
    mt_test_file(cfg, "[retention]\npostgres.business_metrics = 730d\n");
    snprintf(cmd, sizeof cmd, "%s --config %s --data /nonexistent/x 2>&1", METROND_PATH, cfg);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    unlink(cfg);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s", out);
    cr_expect(strstr(out, "unknown PostgreSQL table in 'postgres.business_metrics'"), "%s", out);
    cr_expect(strstr(out, "query_performance"), "%s", out);
}

/*
 * An upgrade from before version 9, with rows in the hourly summaries (plain
 * tables then): the table is attached whole as the first partition, rows and
 * upserts as before, the catalog as a fresh install's, and the retention
 * drops it whole once its last month leaves the window.
 */
Test(pgretain, an_upgrade_attaches_the_old_summaries_whole)
{
    char out[4096], fresh[65536];
    cr_assert_eq(install_tz("UTC", out, sizeof out), 0, "%s", out);
    sql_tz("UTC",
           "SELECT catalog FROM monitoring.schema_migrations WHERE catalog IS NOT NULL"
           " ORDER BY version DESC LIMIT 1;",
           fresh, sizeof fresh);
    /* the summaries as plain tables again (as versions 1 to 7 had them), with rows; this
       version and what follows it not applied */
    sql_tz(
        "UTC",
        "DO $$ DECLARE t text; BEGIN"
        " FOREACH t IN ARRAY ARRAY['hourly_metrics_summary', 'series_hourly_summary'] LOOP"
        "  EXECUTE format('CREATE TABLE monitoring.%I (LIKE monitoring.%I INCLUDING ALL)',"
        "   t || '_plain', t);"
        "  EXECUTE format('DROP TABLE monitoring.%I', t);"
        "  EXECUTE format('ALTER TABLE monitoring.%I RENAME TO %I', t || '_plain', t);"
        "  EXECUTE format('ALTER TABLE monitoring.%I ENABLE ROW LEVEL SECURITY', t);"
        "  EXECUTE format('CREATE POLICY tenant_reader ON monitoring.%I FOR SELECT USING (true)',"
        "   t);"
        " END LOOP; END $$;"
        "DELETE FROM monitoring.schema_migrations WHERE version >="
        " (SELECT version FROM monitoring.schema_migrations WHERE name = '009_retention.sql');"
        "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, metric_category,"
        " metric_name, sample_count) VALUES (now() - interval '600 days', 'a', 'old', 1),"
        " (date_trunc('hour', now()), 'a', 'new', 2);"
        "INSERT INTO monitoring.series_hourly_summary (hour_bucket, series, metric_category,"
        " metric_name, sample_count) SELECT date_trunc('hour', now()) - g * interval '1 hour',"
        " 's', 'a', 'b', 1 FROM generate_series(0, 99) g;",
        NULL, 0);
    cr_assert_eq(install_tz("America/New_York", out, sizeof out), 0, "%s", out);
    sql_tz("UTC",
           "SELECT string_agg(c.relname || ' ' || b.lo || ' ' || (b.hi = (date_trunc('month',"
           " now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'), ', ')"
           " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,"
           " LATERAL monitoring.partition_bounds(c.oid) b"
           " WHERE i.inhparent = 'monitoring.hourly_metrics_summary'::regclass"
           " AND c.relname LIKE '%_until_%';",
           out, sizeof out);
    cr_expect(strstr(out, "hourly_metrics_summary_until_") && strstr(out, " -infinity true"),
              "the old table, up to the end of this month: %s", out);
    cr_expect_eq(sql_long("UTC", "SELECT count(*) FROM monitoring.series_hourly_summary;"), 100);
    sql_tz("UTC",
           "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, metric_category,"
           " metric_name, sample_count) VALUES (date_trunc('hour', now()), 'a', 'new', 5)"
           " ON CONFLICT ON CONSTRAINT hourly_metrics_summary_key DO UPDATE"
           " SET sample_count = EXCLUDED.sample_count;"
           "SELECT string_agg(metric_name || '=' || sample_count, ' ' ORDER BY metric_name)"
           " FROM monitoring.hourly_metrics_summary;",
           out, sizeof out);
    cr_expect_str_eq(out, "new=5 old=1", "the sink's upsert finds the old rows");
    char now_cat[65536];
    sql_tz("UTC",
           "SELECT catalog FROM monitoring.schema_migrations WHERE catalog IS NOT NULL"
           " ORDER BY version DESC LIMIT 1;",
           now_cat, sizeof now_cat);
    cr_expect_str_eq(now_cat, fresh, "the catalog of a fresh install");
    char check[1024];
    snprintf(check, sizeof check, "%s schema check --pg '%s' >/dev/null 2>&1", METRON_PATH, url);
    cr_expect_eq(system(check), 0, "no drift");
    cr_expect_eq(sql_long("UTC", "SELECT monitoring.retain('monitoring.hourly_metrics_summary',"
                                 " interval '1 day');"),
                 0, "this month is inside the window");
    /* once the window starts after this month, the old table goes whole, nothing newer */
    cr_expect_eq(sql_long("UTC", "SELECT monitoring.drop_partitions_before("
                                 "'monitoring.hourly_metrics_summary', (date_trunc('month', now()"
                                 " AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC');"),
                 1);
    cr_expect_eq(sql_long("UTC", "SELECT count(*) FROM monitoring.hourly_metrics_summary;"), 0);
    cr_expect_eq(sql_long("UTC", "SELECT count(*) FROM pg_inherits WHERE inhparent ="
                                 " 'monitoring.hourly_metrics_summary'::regclass;"),
                 3, "the three months ahead");
}
