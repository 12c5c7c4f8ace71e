/*
 * test_tenancy.c — tenant isolation keyed on the role (schema version 4),
 * on the real PostgreSQL of tools/test.sh, as real non-superuser roles
 * (superusers pass by row-level security even when it is FORCEd): Metron's
 * role installs without CREATEROLE after `metron schema roles --apply`, maps
 * two reader roles with `metron schema tenant add`, and a reader of tenant
 * A, logged in as itself, sees A's rows and the system-wide ones in every
 * table and view whatever it SETs, reads no partition, no secret and no
 * map, and writes nothing; Metron's role still writes as the sink and the
 * pgstat agent do, and reads the secrets as the rules follower does.
 *
 * Roles belong to the cluster: each test names its own after its pid and
 * drops them at the end.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mt_pg.h"
#include "mt_pgrules.h"
#include "mt_pgstat.h"
#include "mt_schema.h"
#include "mt_time.h"
#include "test_util.h"

#define A       "11111111-1111-4111-8111-111111111111"
#define B       "22222222-2222-4222-8222-222222222222"
#define TENANTS "unnest(ARRAY['" A "', '" B "', NULL]::uuid[]) b"

static char dbname[64], owner[64], reader_a[64], reader_b[64];

/* The URL base (postgresql://user@host:port/db) with user and db changed (db NULL: the test's). */
static void url_on(char *out, size_t cap, const char *base, const char *user, const char *db)
{
    const char *at = strchr(base, '@'), *slash = strrchr(base, '/');
    cr_assert(at && slash && at < slash, "URL %s: postgresql://user@host:port/db", base);
    snprintf(out, cap, "postgresql://%s@%.*s/%s", user, (int)(slash - at - 1), at + 1,
             db ? db : dbname);
}

/* A URL of the test server for user on the test's database (dbname) or on db. */
static void url_for(char *out, size_t cap, const char *user, const char *db)
{
    url_on(out, cap, mt_test_pg_url(), user, db);
}

static mt_pg *connect_as(const char *user)
{
    char url[512], err[512] = "";
    url_for(url, sizeof url, user, NULL);
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(url, &pg, err, sizeof err), MT_OK, "%s: %s", user, err);
    return pg;
}

static void exec_ok(mt_pg *pg, const char *sql)
{
    cr_assert_eq(mt_pg_exec_script(pg, sql), MT_OK, "%s: %s", sql, mt_pg_errmsg(pg));
}

static long count(mt_pg *pg, const char *sql)
{
    char v[32];
    cr_assert_eq(mt_pg_query_value(pg, sql, 0, NULL, v, sizeof v), MT_OK, "%s: %s", sql,
                 mt_pg_errmsg(pg));
    return atol(v);
}

/* Run `metron ARGS` with stderr joined to stdout; the exit status. */
static int metron(char *out, size_t cap, const char *fmt, ...)
{
    char args[2048], cmd[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", METRON_PATH, args);
    return mt_test_run(out, cap, cmd);
}

static void setup(void)
{
    int pid = (int)getpid();
    snprintf(dbname, sizeof dbname, "metron_tenancy_%d", pid);
    snprintf(owner, sizeof owner, "metron_owner_%d", pid);
    snprintf(reader_a, sizeof reader_a, "grafana_a_%d", pid);
    snprintf(reader_b, sizeof reader_b, "grafana_b_%d", pid);
    char err[512] = "", sql[256]; /* names of ours (a pid), not input */
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    cr_assert_eq(mt_pg_exec(pg, sql, 0, NULL), MT_OK, "%s", mt_pg_errmsg(pg));
    mt_pg_close(pg);
}

static void teardown(void)
{
    mt_pg *pg;
    if (mt_pg_open(mt_test_pg_url(), &pg, NULL, 0)) return;
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    mt_pg_exec(pg, sql, 0, NULL);
    const char *roles[] = {reader_a, reader_b, owner};
    for (int i = 0; i < 3; i++) {
        snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", roles[i]);
        mt_pg_exec(pg, sql, 0, NULL);
    }
    mt_pg_close(pg);
}

TestSuite(tenancy, .init = setup, .fini = teardown, .timeout = 120);

/* Every tenant table, and whether it takes system-wide (NULL business_id) rows. */
static const struct {
    const char *name;
    bool nulls;
} tables[] = {
    {"performance_metrics", true},
    {"hourly_metrics_summary", true},
    {"series_hourly_summary", true},
    {"security_events", false},
    {"query_performance", true},
    {"business_metrics", false},
    {"system_health", true},
    {"alert_rules", true},
    {"alerts", true},
    {"notification_channels", true},
    {"webhook_endpoints", true},
    {"metrics_minute", true},
    {"series_minute", true},
};
#define NTABLES (sizeof tables / sizeof tables[0])

/* Every dashboard view, and how many rows tenant A's reader gets from it (A's and the NULL's). */
static const struct {
    const char *name;
    long reader_rows;
} views[] = {
    {"system_dashboard", 2},       {"alerts_dashboard", 2},   {"slow_queries_dashboard", 2},
    {"business_kpi_dashboard", 1}, {"security_dashboard", 1},
};

/* A row per tenant (A, B, and the system-wide NULL where allowed) in every tenant table. */
static const char rows_sql[] =
    "INSERT INTO monitoring.performance_metrics (business_id, metric_name, metric_category,"
    " metric_type, metric_value) SELECT b, 'u', 'cpu', 'gauge', 1 FROM " TENANTS ";"
    "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, metric_category,"
    " metric_name, sample_count) SELECT date_trunc('hour', now()), b, 'cpu', 'u', 1 FROM " TENANTS
    ";"
    "INSERT INTO monitoring.series_hourly_summary (hour_bucket, series, business_id,"
    " metric_category, metric_name, sample_count) SELECT date_trunc('hour', now()),"
    " 'cpu,b=' || coalesce(b::text, '-') || ' u', b, 'cpu', 'u', 1 FROM " TENANTS ";"
    "SELECT monitoring.minute_partitions('48 hours');"
    "INSERT INTO monitoring.metrics_minute (minute_bucket, business_id, metric_category,"
    " metric_name, sample_count) SELECT date_trunc('minute', now()), b, 'cpu', 'u', 1 FROM " TENANTS
    ";"
    "INSERT INTO monitoring.metrics_minute_all (minute_bucket, metric_category, metric_name,"
    " sample_count) VALUES (date_trunc('minute', now()), 'cpu', 'u', 3);"
    "INSERT INTO monitoring.series_minute (minute_bucket, series, business_id,"
    " metric_category, metric_name, sample_count) SELECT date_trunc('minute', now()),"
    " 'cpu,b=' || coalesce(b::text, '-') || ' u', b, 'cpu', 'u', 1 FROM " TENANTS ";"
    "INSERT INTO monitoring.security_events (business_id, event_type, event_category, severity,"
    " event_source, event_description) SELECT b, 'login', 'authentication', 'low', 'app', 'ok'"
    " FROM " TENANTS " WHERE b IS NOT NULL;"
    "INSERT INTO monitoring.query_performance (business_id, query_id, query_hash,"
    " execution_count, total_exec_time, mean_exec_time) SELECT b, 1, 'h', 3, 600, 200 FROM " TENANTS
    ";"
    "INSERT INTO monitoring.business_metrics (business_id, metric_name, metric_category,"
    " industry_vertical, current_value, time_period, period_start, period_end, is_kpi)"
    " SELECT b, 'orders', 'sales', 'retail', 5, 'day', now() - interval '1 hour', now(), true"
    " FROM " TENANTS " WHERE b IS NOT NULL;"
    "INSERT INTO monitoring.system_health (business_id, component_type, component_name,"
    " health_status) SELECT b, 'database', 'pg', 'healthy' FROM " TENANTS ";"
    "INSERT INTO monitoring.alert_rules (id, business_id, rule_name, rule_category, severity,"
    " metric_name, condition_type, condition_definition, critical_threshold, comparison_operator,"
    " created_by) SELECT md5(coalesce(b::text, 'system'))::uuid, b, 'cpu high', 'performance',"
    " 'critical', 'u', 'threshold', '{}', 90, 'gt', gen_random_uuid() FROM " TENANTS ";"
    "INSERT INTO monitoring.alerts (business_id, alert_rule_id, alert_title, alert_message,"
    " severity, metric_name, trigger_value) SELECT b, md5(coalesce(b::text, 'system'))::uuid,"
    " 'cpu high', 'u 95 > 90', 'critical', 'u', 95 FROM " TENANTS ";"
    "INSERT INTO monitoring.notification_channels (business_id, channel_name, channel_type,"
    " configuration) SELECT b, 'chan', 'webhook',"
    " '{\"url\": \"http://127.0.0.1:9/c\", \"secret\": \"channel-secret\"}' FROM " TENANTS ";"
    "INSERT INTO monitoring.webhook_endpoints (business_id, endpoint_name, webhook_url,"
    " secret_token) SELECT b, 'hook', 'http://127.0.0.1:9/h', 'endpoint-secret' FROM " TENANTS;

/* A's reader sees A's rows and the NULL ones, never B's, in every table and view. */
static void sees_a(mt_pg *r, const char *when)
{
    char sql[512];
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FILTER (WHERE business_id = '" A "') * 100"
                 " + count(*) FILTER (WHERE business_id = '" B "') * 10"
                 " + count(*) FILTER (WHERE business_id IS NULL) FROM monitoring.%s",
                 tables[i].name);
        cr_expect_eq(count(r, sql), tables[i].nulls ? 101 : 100,
                     "%s, %s: A's row, no B row, %s NULL row (100*A + 10*B + NULL)", when,
                     tables[i].name, tables[i].nulls ? "the" : "no");
    }
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM monitoring.%s", views[i].name);
        cr_expect_eq(count(r, sql), views[i].reader_rows, "%s, view %s", when, views[i].name);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM monitoring.%s WHERE business_id = '" B "'",
                 views[i].name);
        cr_expect_eq(count(r, sql), 0, "%s, view %s: no B row", when, views[i].name);
    }
}

/* A role with no tenant sees no row at all. */
static void sees_nothing(mt_pg *r, const char *when)
{
    char sql[256];
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(business_id) FROM monitoring.%s", tables[i].name);
        cr_expect_eq(count(r, sql), 0, "%s, %s", when, tables[i].name);
    }
}

static void denied(mt_pg *r, const char *sql)
{
    cr_expect_eq(mt_pg_exec(r, sql, 0, NULL), MT_EPG, "a reader ran: %s", sql);
}

/* Partitions of the tenant tables, one per row: each read directly is refused. */
static int partition_denied(void *ud, int ncols, const char *const *v)
{
    mt_pg *r = ud;
    (void)ncols;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", v[0]);
    denied(r, sql);
    return 0;
}

static const char partitions_sql[] =
    "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'monitoring' AND c.relkind = 'r' ORDER BY 1";

/* What metrond's rules follower hands over: the endpoints with their secrets. */
typedef struct follower {
    pthread_mutex_t lock;
    int endpoints, secrets, deltas;
} follower;

static void on_rules(void *ud, const mt_alert_rule *r, size_t n)
{
    (void)ud, (void)r, (void)n;
}

static void on_endpoints(void *ud, const mt_webhook *e, size_t n)
{
    follower *f = ud;
    int secrets = 0;
    for (size_t i = 0; i < n; i++)
        secrets += !strcmp(e[i].secret, e[i].channel ? "channel-secret" : "endpoint-secret");
    pthread_mutex_lock(&f->lock);
    f->endpoints = (int)n;
    f->secrets = secrets;
    pthread_mutex_unlock(&f->lock);
}

static bool on_delta(void *ud, const char *id, mt_pg_endpoint_delta *out)
{
    follower *f = ud;
    (void)id;
    pthread_mutex_lock(&f->lock);
    bool first = f->deltas++ < 3; /* one call for each of the three endpoints */
    pthread_mutex_unlock(&f->lock);
    *out = (mt_pg_endpoint_delta){.total = first, .successful = first};
    return first;
}

Test(tenancy, a_reader_sees_only_its_tenant_whatever_it_sets)
{
    char out[8192], su_url[512], own_url[512];
    url_for(su_url, sizeof su_url, "postgres", NULL);
    url_for(own_url, sizeof own_url, owner, NULL);
    /* the administrator, once; then Metron's role installs without CREATEROLE */
    cr_assert_eq(
        metron(out, sizeof out, "schema roles --owner %s --apply --pg '%s'", owner, su_url), 0,
        "%s", out);
    cr_expect(strstr(out, "CREATE SCHEMA monitoring AUTHORIZATION"), "%s", out);
    cr_assert_eq(metron(out, sizeof out, "schema install --pg '%s'", own_url), 0, "%s", out);
    mt_pg *own = connect_as(owner);
    cr_assert_eq(count(own, "SELECT count(*) FROM pg_roles WHERE rolname = current_user"
                            " AND (rolsuper OR rolcreaterole OR rolbypassrls)"),
                 0, "Metron's role is no superuser, has no CREATEROLE, no BYPASSRLS");
    cr_expect_eq(count(own, "SELECT count(*) FROM monitoring.tenant_tables()"), (long)NTABLES,
                 "a new tenant table belongs in this test");

    /* Metron's role may not create a reader: it prints what the administrator runs */
    cr_expect_eq(metron(out, sizeof out, "schema tenant add %s " A " --pg '%s'", reader_a, own_url),
                 1, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "CREATE ROLE \"%s\" LOGIN;\nGRANT monitoring_dashboard TO \"%s\";",
             reader_a, reader_a);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect(strstr(out, "may not create roles"), "%s", out);
    mt_pg *su = connect_as("postgres");
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", reader_a); /* no membership: Metron grants */
    exec_ok(su, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE monitoring_dashboard", reader_b);
    exec_ok(su, sql);
    cr_assert_eq(metron(out, sizeof out, "schema tenant add %s " A " --pg '%s'", reader_a, own_url),
                 0, "%s", out);
    cr_expect(strstr(out, "monitoring_dashboard granted"), "%s", out);
    cr_assert_eq(metron(out, sizeof out, "schema tenant add %s " B " --pg '%s'", reader_b, own_url),
                 0, "%s", out);
    cr_assert_eq(metron(out, sizeof out, "schema tenant list --pg '%s'", own_url), 0, "%s", out);
    cr_expect(strstr(out, reader_a) && strstr(out, A) && strstr(out, reader_b) && strstr(out, B),
              "%s", out);

    /* Metron's role writes every table and, with FORCE, still sees every row */
    exec_ok(own, rows_sql);
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM monitoring.%s", tables[i].name);
        cr_expect_eq(count(own, sql), tables[i].nulls ? 3 : 2, "%s", tables[i].name);
    }

    mt_pg *r = connect_as(reader_a);
    cr_expect_eq(count(r, "SELECT count(*) WHERE current_user = session_user"), 1);
    sees_a(r, "logged in");
    exec_ok(r, "SET monitoring.business_id = '" B "'");
    sees_a(r, "after SET monitoring.business_id = B");
    exec_ok(r, "SELECT set_config('monitoring.business_id', '" B "', false)");
    sees_a(r, "after set_config");
    exec_ok(r, "RESET ROLE");
    sees_a(r, "after RESET ROLE");
    exec_ok(r, "SET ROLE monitoring_dashboard");
    sees_nothing(r, "as monitoring_dashboard, a role with no tenant");
    exec_ok(r, "RESET ROLE");
    snprintf(sql, sizeof sql, "SET ROLE %s", owner);
    denied(r, sql);
    snprintf(sql, sizeof sql, "SET ROLE %s", reader_b);
    denied(r, sql);
    snprintf(sql, sizeof sql, "SET SESSION AUTHORIZATION %s", reader_b);
    denied(r, sql);
    sees_a(r, "after the refused SET ROLEs");
    /* the map answers a reader for itself only */
    snprintf(sql, sizeof sql, "SELECT monitoring.reader_tenant('%s')", reader_b);
    char v[64];
    cr_expect_eq(mt_pg_query_value(r, sql, 0, NULL, v, sizeof v), MT_ENOTFOUND, "B's tenant: %s",
                 v);
    cr_expect_eq(
        mt_pg_query_value(r, "SELECT monitoring.reader_tenant(current_user)", 0, NULL, v, sizeof v),
        MT_OK);
    cr_expect_str_eq(v, A);

    /* no write, no DDL, no secret, no map, no switch, no partition */
    denied(r, "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id,"
              " metric_category, metric_name, sample_count) VALUES (now(), '" A "', 'x', 'y', 1)");
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "UPDATE monitoring.%s SET business_id = business_id",
                 tables[i].name);
        denied(r, sql);
        snprintf(sql, sizeof sql, "DELETE FROM monitoring.%s", tables[i].name);
        denied(r, sql);
        snprintf(sql, sizeof sql, "TRUNCATE monitoring.%s", tables[i].name);
        denied(r, sql);
    }
    denied(r, "CREATE TABLE monitoring.mine (x int)");
    denied(r, "CREATE TABLE public.mine (x int)");
    denied(r, "CREATE VIEW public.mine AS SELECT * FROM monitoring.alerts");
    denied(r, "SELECT secret_token FROM monitoring.webhook_endpoints");
    denied(r, "SELECT webhook_url FROM monitoring.webhook_endpoints");
    denied(r, "SELECT * FROM monitoring.webhook_endpoints");
    denied(r, "SELECT configuration FROM monitoring.notification_channels");
    cr_expect_eq(count(r, "SELECT count(endpoint_name) FROM monitoring.webhook_endpoints"), 2,
                 "the other columns stay readable: A's endpoint and the system-wide one");
    denied(r, "SELECT * FROM monitoring.tenant_readers");
    denied(r, "INSERT INTO monitoring.tenant_readers VALUES (current_user, '" B "')");
    denied(r, "SELECT monitoring.set_tenant_isolation(false)");
    denied(r, "ALTER TABLE monitoring.alerts NO FORCE ROW LEVEL SECURITY");
    denied(r, "DROP POLICY tenant_reader ON monitoring.alerts");
    denied(r, "SELECT monitoring.create_partitions(1, 6)");
    denied(r, "SELECT monitoring.minute_partitions('1 hour')");
    /* the system-wide minute rows (every tenant's points) are the owner's alone */
    cr_expect_eq(count(r, "SELECT count(*) FROM monitoring.metrics_minute_all"), 0,
                 "a tenant reader sees no system-wide minute row");
    denied(r, "INSERT INTO monitoring.metrics_minute_all (minute_bucket, metric_category,"
              " metric_name, sample_count) VALUES (now(), 'cpu', 'u', 1)");
    cr_assert_eq(mt_pg_query_rows(r, partitions_sql, 0, NULL, partition_denied, r), MT_OK);
    cr_expect_eq(count(r, "SELECT count(*) FROM ("
                          "SELECT 1 FROM pg_class WHERE relispartition AND relkind = 'r') x"),
                 42,
                 "6 partitioned by month, a month back to three ahead; 3 minute tables, "
                 "two days back to tomorrow");

    /* partitions created later, even under default privileges that grant them, stay closed */
    exec_ok(own, "ALTER DEFAULT PRIVILEGES IN SCHEMA monitoring GRANT SELECT ON TABLES TO "
                 "monitoring_dashboard");
    cr_expect_eq(count(own, "SELECT monitoring.create_partitions(1, 6)"), 6 * 3);
    cr_assert_eq(mt_pg_query_rows(r, partitions_sql, 0, NULL, partition_denied, r), MT_OK);
    /* and one granted by hand answers no row to anyone but its owner */
    exec_ok(own, "CREATE TEMP TABLE part AS SELECT i.inhrelid::regclass::text AS name"
                 " FROM pg_inherits i, monitoring.system_health h"
                 " WHERE i.inhrelid = h.tableoid LIMIT 1");
    char part[128];
    cr_assert_eq(mt_pg_query_value(own, "SELECT name FROM part", 0, NULL, part, sizeof part),
                 MT_OK);
    snprintf(sql, sizeof sql, "GRANT SELECT ON %s TO %s", part, reader_a);
    exec_ok(own, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", part);
    cr_expect_eq(count(own, sql), 3, "the owner reads the partition: A, B, NULL");
    cr_expect_eq(count(r, sql), 0, "%s granted to the reader: no row all the same", part);

    /* Metron's role still writes as the sink does: upserts, the NULL tenant into one row */
    for (int i = 0; i < 2; i++)
        exec_ok(own,
                "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id,"
                " metric_category, metric_name, sample_count, updated_at)"
                " SELECT date_trunc('hour', now()), b, 'cpu', 'u', 7, now() FROM " TENANTS
                " ON CONFLICT ON CONSTRAINT hourly_metrics_summary_key DO UPDATE SET"
                " sample_count = EXCLUDED.sample_count + 1, updated_at = now();"
                "INSERT INTO monitoring.series_hourly_summary (hour_bucket, series, business_id,"
                " metric_category, metric_name, sample_count) SELECT date_trunc('hour', now()),"
                " 'cpu,b=' || coalesce(b::text, '-') || ' u', b, 'cpu', 'u', 7 FROM " TENANTS
                " ON CONFLICT ON CONSTRAINT series_hourly_summary_key DO UPDATE SET"
                " sample_count = EXCLUDED.sample_count + 1;"
                "UPDATE monitoring.alerts SET status = 'resolved' WHERE business_id = '" B "'");
    cr_expect_eq(count(own, "SELECT sum(sample_count) FROM monitoring.hourly_metrics_summary"), 24);
    cr_expect_eq(count(own, "SELECT sum(sample_count) FROM monitoring.series_hourly_summary"), 24);
    cr_expect_eq(count(r, "SELECT sum(sample_count) FROM monitoring.hourly_metrics_summary"), 16,
                 "the reader sees the new values of its rows");
    /* as the pgstat agent does */
    mt_pgstat *st;
    cr_assert_eq(
        mt_pgstat_new(&(mt_pgstat_options){.server = "db:5432", .this_db_only = true}, &st), MT_OK);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    cr_assert_eq(mt_pgstat_collect(st, own, mt_now_ns(), &buf, &len, &cap), MT_OK, "%s",
                 mt_pg_errmsg(own));
    cr_expect_eq(mt_pgstat_write(st, own, mt_now_ns()), MT_OK, "%s", mt_pg_errmsg(own));
    cr_expect_eq(count(own, "SELECT count(*) FROM monitoring.system_health"), 4);
    free(buf);
    mt_pgstat_free(st);
    /* as the rules follower does: the secrets, and the endpoints' statistics written back */
    follower f = {.lock = PTHREAD_MUTEX_INITIALIZER};
    mt_pgrules_callbacks cb = {
        .rules = on_rules, .endpoints = on_endpoints, .endpoint_delta = on_delta, .ud = &f};
    mt_pgrules *pr;
    cr_assert_eq(mt_pgrules_start(own_url, 0, &cb, &pr), MT_OK);
    int64_t deadline = mt_now_ns() + 20 * 1000000000LL;
    long calls = 0;
    while (mt_now_ns() < deadline &&
           (calls = count(own, "SELECT sum(total_calls) FROM monitoring.webhook_endpoints")) < 3)
        usleep(20 * 1000);
    mt_pgrules_stop(pr);
    cr_expect_eq(calls, 3, "each endpoint's call written back");
    cr_expect_eq(f.endpoints, 6, "3 webhook endpoints, 3 channels with a URL");
    cr_expect_eq(f.secrets, 6, "Metron's role reads every secret");

    /* a reader removed sees nothing */
    cr_assert_eq(metron(out, sizeof out, "schema tenant remove %s --pg '%s'", reader_a, own_url), 0,
                 "%s", out);
    sees_nothing(r, "after tenant remove");
    mt_pg_close(r);
    mt_pg_close(su);
    mt_pg_close(own);
}

Test(tenancy, install_and_tenant_add_say_what_an_administrator_runs)
{
    char out[8192], su_url[512], own_url[512];
    url_for(su_url, sizeof su_url, "postgres", NULL);
    url_for(own_url, sizeof own_url, owner, NULL);
    mt_pg *su = connect_as("postgres");
    char sql[256];
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", owner);
    exec_ok(su, sql);
    /* without CREATE on the database: refused, and the message names the command */
    cr_expect_eq(metron(out, sizeof out, "schema install --pg '%s'", own_url), 1, "%s", out);
    cr_expect(strstr(out, "metron schema roles"), "%s", out);
    cr_expect(strstr(out, "nothing changed"), "%s", out);
    /* roles prints only what is missing, refuses a superuser, then has nothing to do */
    cr_expect_eq(metron(out, sizeof out, "schema roles --owner postgres --pg '%s'", su_url), 1,
                 "%s", out);
    cr_expect(strstr(out, "superuser"), "%s", out);
    cr_expect_eq(metron(out, sizeof out, "schema roles --owner %s --pg '%s'", owner, su_url), 0,
                 "%s", out);
    cr_expect(!strstr(out, "CREATE ROLE \"metron_owner"), "the role exists: %s", out);
    snprintf(sql, sizeof sql, "GRANT CREATE ON DATABASE \"%s\" TO \"%s\";", dbname, owner);
    cr_expect(strstr(out, sql), "%s", out);
    cr_expect_eq(
        metron(out, sizeof out, "schema roles --owner %s --apply --pg '%s'", owner, su_url), 0,
        "%s", out);
    cr_expect_eq(metron(out, sizeof out, "schema roles --owner %s --pg '%s'", owner, su_url), 0,
                 "%s", out);
    cr_expect(strstr(out, "nothing to do"), "%s", out);
    cr_assert_eq(metron(out, sizeof out, "schema install --pg '%s'", own_url), 0, "%s", out);
    char latest[32]; /* the latest version this build carries, whatever it is */
    snprintf(latest, sizeof latest, "version 0 -> %d", mt_schema_latest());
    cr_expect(strstr(out, latest), "%s", out);
    /* tenant add refuses what would widen or cannot be a tenant */
    cr_expect_eq(metron(out, sizeof out, "schema tenant add x not-a-uuid --pg '%s'", own_url), 1,
                 "%s", out);
    cr_expect(strstr(out, "is not a UUID"), "%s", out);
    cr_expect_eq(
        metron(out, sizeof out, "schema tenant add monitoring_dashboard " A " --pg '%s'", own_url),
        1, "%s", out);
    cr_expect_eq(metron(out, sizeof out, "schema tenant add %s " A " --pg '%s'", owner, own_url), 1,
                 "%s", out);
    cr_expect(strstr(out, "every tenant"), "%s", out);
    cr_expect_eq(metron(out, sizeof out, "schema tenant add postgres " A " --pg '%s'", own_url), 1,
                 "%s", out);
    cr_expect_eq(metron(out, sizeof out, "schema tenant remove nobody_%d --pg '%s'", 1, own_url), 1,
                 "%s", out);
    cr_expect_eq(count(su, "SELECT count(*) FROM pg_database WHERE datname = current_database()"),
                 1);
    mt_pg_close(su);
}

/*
 * monitoring_dashboard belongs to the cluster, and the shared test server
 * has it: a new server of its own, where Metron's role may create neither
 * the dashboard role nor any other.
 */
Test(tenancy, install_on_a_new_server_names_schema_roles)
{
    char dir[128], cmd[512], base[512] = "";
    snprintf(dir, sizeof dir, "/tmp/metron-tenancy-pg-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s start %s", PG_TMP_SH, dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    bool started = fgets(base, sizeof base, p) != NULL;
    cr_assert_eq(pclose(p), 0, "pg_tmp.sh start failed");
    cr_assert(started);
    base[strcspn(base, "\n")] = '\0';
    char su_url[512], own_url[512], out[3][4096], sql[256];
    url_on(su_url, sizeof su_url, base, "postgres", "metron_test");
    url_on(own_url, sizeof own_url, base, owner, "metron_test");
    char err[512] = "";
    mt_pg *su;
    int rc = mt_pg_open(su_url, &su, err, sizeof err);
    /* CREATE on the database: only the missing role stands in the way */
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN; GRANT CREATE ON DATABASE metron_test TO %s",
             owner, owner);
    if (!rc) rc = mt_pg_exec_script(su, sql);
    int st[3] = {-1, -1, -1};
    if (!rc) {
        st[0] = metron(out[0], sizeof out[0], "schema install --pg '%s'", own_url);
        st[1] = metron(out[1], sizeof out[1], "schema roles --owner %s --apply --pg '%s'", owner,
                       su_url);
        st[2] = metron(out[2], sizeof out[2], "schema install --pg '%s'", own_url);
    }
    mt_pg_close(su);
    snprintf(cmd, sizeof cmd, "%s stop %s", PG_TMP_SH, dir);
    cr_expect_eq(system(cmd), 0, "pg_tmp.sh stop");
    cr_assert_eq(rc, MT_OK, "%s", err);
    cr_expect_eq(st[0], 1, "%s", out[0]);
    cr_expect(strstr(out[0], "role monitoring_dashboard does not exist"), "%s", out[0]);
    cr_expect(strstr(out[0], "metron schema roles"), "%s", out[0]);
    cr_expect_eq(st[1], 0, "%s", out[1]);
    cr_expect(strstr(out[1], "CREATE ROLE monitoring_dashboard NOLOGIN;"), "%s", out[1]);
    cr_expect_eq(st[2], 0, "%s", out[2]);
    char latest[32];
    snprintf(latest, sizeof latest, "version 0 -> %d", mt_schema_latest());
    cr_expect(strstr(out[2], latest), "%s", out[2]);
}
