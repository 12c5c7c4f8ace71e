/*
 * test_schema.c — the monitoring schema on the real PostgreSQL of
 * tools/test.sh, each test in a database of its own: it installs, installs
 * again without change, every view and partitioned table works, the NULL
 * tenant upserts into one row, drift is reported, a newer version is
 * refused, and no setting gives the dashboard role a tenant.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mt_pg.h"
#include "mt_schema.h"
#include "test_util.h"

static char url[512], dbname[64];

/* A fresh database on the test server; url names it. */
static void setup(void)
{
    char err[512] = "";
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    snprintf(dbname, sizeof dbname, "metron_schema_%d", (int)getpid());
    char sql[128]; /* the name is ours (a pid), not input */
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", dbname);
    mt_pg_exec(pg, sql, 0, NULL);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    cr_assert_eq(mt_pg_exec(pg, sql, 0, NULL), MT_OK, "%s", mt_pg_errmsg(pg));
    mt_pg_close(pg);
    const char *base = mt_test_pg_url();
    const char *slash = strrchr(base, '/');
    cr_assert_not_null(slash);
    snprintf(url, sizeof url, "%.*s/%s", (int)(slash - base), base, dbname);
}

static void teardown(void)
{
    mt_pg *pg;
    if (mt_pg_open(mt_test_pg_url(), &pg, NULL, 0)) return;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    mt_pg_exec(pg, sql, 0, NULL);
    mt_pg_close(pg);
}

TestSuite(schema, .init = setup, .fini = teardown, .timeout = 120);

static mt_pg *db(void)
{
    char err[512] = "";
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(url, &pg, err, sizeof err), MT_OK, "%s", err);
    return pg;
}

static void exec_ok(mt_pg *pg, const char *sql)
{
    cr_assert_eq(mt_pg_exec(pg, sql, 0, NULL), MT_OK, "%s: %s", sql, mt_pg_errmsg(pg));
}

static long count(mt_pg *pg, const char *sql)
{
    char v[32];
    cr_assert_eq(mt_pg_query_value(pg, sql, 0, NULL, v, sizeof v), MT_OK, "%s: %s", sql,
                 mt_pg_errmsg(pg));
    return atol(v);
}

typedef struct lines {
    char text[16][512];
    size_t n;
} lines;

static void collect(void *ud, const char *line)
{
    lines *l = ud;
    if (l->n < 16) snprintf(l->text[l->n++], 512, "%s", line);
}

Test(schema, installs_once_and_every_object_works)
{
    mt_pg *pg = db();
    mt_schema_result r;
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(r.from_version, 0);
    cr_expect_eq(r.to_version, mt_schema_latest());
    cr_expect_eq(r.partitions, 6 * 5,
                 "6 partitioned by month (4 since version 1, the hourly summaries since version "
                 "10), a month back to three ahead");
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(r.from_version, mt_schema_latest());
    cr_expect_eq(r.partitions, 0, "installed: nothing to do");
    lines d = {.n = 0};
    size_t drift;
    cr_assert_eq(mt_schema_check(pg, collect, &d, &drift), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(drift, 0, "%s", d.text[0]);
    /* every dashboard view answers */
    const char *views[] = {"system_dashboard", "alerts_dashboard", "slow_queries_dashboard",
                           "business_kpi_dashboard", "security_dashboard"};
    for (int i = 0; i < 5; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM monitoring.%s", views[i]);
        cr_expect_eq(count(pg, sql), 0);
    }
    /* every partitioned table takes a row of now (the seed's never had a partition) */
    exec_ok(pg, "INSERT INTO monitoring.performance_metrics (metric_name, metric_category, "
                "metric_type, metric_value) VALUES ('bytes', 'disk', 'counter', 5e12)");
    exec_ok(pg, "INSERT INTO monitoring.security_events (business_id, event_type, event_category, "
                "severity, event_source, event_description) VALUES (gen_random_uuid(), 'login', "
                "'authentication', 'low', 'app', 'ok')");
    exec_ok(pg, "INSERT INTO monitoring.query_performance (query_id, query_hash, execution_count, "
                "total_exec_time, mean_exec_time) VALUES (1, 'h', 3, 600, 200)");
    exec_ok(pg, "INSERT INTO monitoring.system_health (component_type, component_name, "
                "health_status) VALUES ('database', 'pg', 'healthy')");
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.slow_queries_dashboard"), 1);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.security_dashboard"), 1);
    /* the system-wide (NULL) tenant upserts into one row */
    for (int i = 0; i < 2; i++)
        exec_ok(pg, "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, "
                    "metric_category, metric_name, sample_count, avg_value) VALUES "
                    "(date_trunc('hour', now()), NULL, 'cpu', 'usage', 10, 1.5) ON CONFLICT ON "
                    "CONSTRAINT hourly_metrics_summary_key DO UPDATE SET sample_count = "
                    "EXCLUDED.sample_count + 1, updated_at = now()");
    cr_expect_eq(count(pg, "SELECT sample_count FROM monitoring.hourly_metrics_summary"), 11);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.system_dashboard"), 0,
                 "the live view reads minute rows, not hours");
    /* the minute tables: day partitions made on demand, the NULL tenant one row per key */
    cr_expect_eq(count(pg, "SELECT created FROM monitoring.minute_partitions('48 hours')"), 3 * 4,
                 "three tables, from two days back to tomorrow");
    for (int i = 0; i < 2; i++)
        exec_ok(pg, "INSERT INTO monitoring.metrics_minute (minute_bucket, business_id, "
                    "metric_category, metric_name, sample_count, avg_value) VALUES "
                    "(date_trunc('minute', now()), NULL, 'cpu', 'usage', 10, 1.5) ON CONFLICT ON "
                    "CONSTRAINT metrics_minute_key DO UPDATE SET sample_count = "
                    "EXCLUDED.sample_count + 1, updated_at = now()");
    cr_expect_eq(count(pg, "SELECT sample_count FROM monitoring.metrics_minute"), 11);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.system_dashboard"), 1);
    /* drift: a column added, a type changed */
    exec_ok(pg, "ALTER TABLE monitoring.alerts ADD COLUMN extra integer");
    exec_ok(pg, "ALTER TABLE monitoring.alert_rules ALTER COLUMN severity TYPE text");
    d.n = 0;
    cr_assert_eq(mt_schema_check(pg, collect, &d, &drift), MT_OK);
    cr_expect_eq(drift, 3, "%zu lines", drift);
    cr_expect_str_eq(d.text[0], "+ column alert_rules.severity text not null");
    cr_expect_str_eq(d.text[1], "+ column alerts.extra integer");
    cr_expect_str_eq(d.text[2], "- column alert_rules.severity character varying(20) not null");
    /* a database from a newer Metron is refused, unchanged */
    exec_ok(pg, "UPDATE monitoring.schema_migrations SET version = 99 WHERE version = 3");
    cr_expect_eq(mt_schema_install(pg, &r), MT_EFORMAT);
    cr_expect_eq(r.from_version, 99);
    mt_pg_close(pg);
}

Test(schema, an_older_version_is_upgraded_in_place)
{
    mt_pg *pg = db();
    mt_schema_result r;
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_assert_geq(mt_schema_latest(), 2);
    /* make it the database version 1 left: without 2's index, 1's catalog the reference */
    exec_ok(pg, "DROP INDEX monitoring.idx_series_hourly_summary_tenant_metric_time");
    exec_ok(pg, "DROP FUNCTION monitoring.notify_metron() CASCADE"); /* version 3 */
    exec_ok(pg, "DELETE FROM monitoring.schema_migrations WHERE version >= 2");
    exec_ok(pg, "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, metric_category, "
                "metric_name, sample_count) VALUES (now(), 'cpu', 'u', 7)");
    lines d = {.n = 0};
    size_t drift;
    cr_assert_eq(mt_schema_check(pg, collect, &d, &drift), MT_OK);
    cr_expect_geq(drift, 1, "an old version is drift");
    cr_expect(strstr(d.text[0], "version 1, this build has"), "%s", d.text[0]);
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(r.from_version, 1);
    cr_expect_eq(r.to_version, mt_schema_latest());
    cr_expect_eq(count(pg, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                           "'idx_series_hourly_summary_tenant_metric_time'"),
                 1);
    cr_expect_eq(count(pg, "SELECT sample_count FROM monitoring.hourly_metrics_summary"), 7,
                 "the data stays");
    d.n = 0;
    cr_assert_eq(mt_schema_check(pg, collect, &d, &drift), MT_OK);
    cr_expect_eq(drift, 0, "%s", d.text[0]);
    mt_pg_close(pg);
}

Test(schema, no_setting_gives_the_dashboard_role_a_tenant)
{
    mt_pg *pg = db();
    mt_schema_result r;
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    exec_ok(pg,
            "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, "
            "metric_category, metric_name, sample_count) VALUES "
            "(date_trunc('hour', now()), '11111111-1111-4111-8111-111111111111', 'cpu', 'u', 1),"
            "(date_trunc('hour', now()), '22222222-2222-4222-8222-222222222222', 'cpu', 'u', 2),"
            "(date_trunc('hour', now()), NULL, 'cpu', 'u', 3)");
    /* version 1's switch: it can no longer turn isolation off */
    exec_ok(pg, "SELECT monitoring.set_tenant_isolation(true)");
    cr_expect_eq(mt_pg_exec(pg, "SELECT monitoring.set_tenant_isolation(false)", 0, NULL), MT_EPG);
    /* the dashboard role maps to no tenant: version 1's setting gives it none, it sees no row
       (a mapped reader role, tests/sql/test_tenancy.c) */
    const char *as_tenant = "SET ROLE monitoring_dashboard; SET monitoring.business_id = "
                            "'11111111-1111-4111-8111-111111111111'";
    cr_assert_eq(mt_pg_exec_script(pg, as_tenant), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.hourly_metrics_summary"), 0);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.system_dashboard"), 0,
                 "nor through a view");
    /* the role reads, never writes */
    cr_expect_eq(mt_pg_exec(pg, "DELETE FROM monitoring.hourly_metrics_summary", 0, NULL), MT_EPG);
    mt_pg_close(pg);
}

Test(schema, the_cli_installs_and_checks)
{
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "%s schema install --pg '%s' 2>&1; %s schema check --pg '%s' 2>&1",
             METRON_PATH, url, METRON_PATH, url);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0, "%s", out);
    char want[128]; /* the latest version this build carries, whatever it is */
    snprintf(want, sizeof want, "schema monitoring: version 0 -> %d; 30 partitions created\n",
             mt_schema_latest());
    cr_expect(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "schema monitoring: version %d, no drift\n", mt_schema_latest());
    cr_expect(strstr(out, want), "%s", out);
    snprintf(cmd, sizeof cmd, "%s schema check --pg 'postgresql://nobody@127.0.0.1:1/x' 2>&1",
             METRON_PATH);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(WEXITSTATUS(pclose(p)), 1);
    cr_expect(strstr(out, "metron: cannot connect to PostgreSQL: "), "%s", out);
}
