/*
 * test_pgstat.c — PostgreSQL's statistics as line protocol, read from the
 * test server with pg_stat_statements: the first reading is a baseline,
 * the next one holds a real workload's statements as non-negative deltas
 * with the deliberately slow one ranked first, a reset counts from zero,
 * and every line is line protocol the parser accepts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_lp.h"
#include "mt_pgstat.h"
#include "mt_schema.h"
#include "mt_time.h"
#include "test_util.h"

typedef struct seen {
    size_t lines, stmt_lines, other;
    bool activity, database;
    char rank1_queryid[32];
} seen;

static int on_line(void *ud, const mt_lp_line *l)
{
    seen *s = ud;
    s->lines++;
    if (l->measurement.len == 7 && !memcmp(l->measurement.ptr, "pg_stmt", 7)) {
        s->stmt_lines++;
        for (size_t i = 0; i < l->nfields; i++) /* deltas: never negative */
            if (l->fields[i].type == MT_LP_INT)
                cr_expect_geq(l->fields[i].v.i, 0);
            else if (l->fields[i].type == MT_LP_FLOAT)
                cr_expect_geq(l->fields[i].v.f, 0);
        for (size_t i = 0; i < l->ntags; i++)
            if (l->tags[i].key.len == 7 && !memcmp(l->tags[i].key.ptr, "queryid", 7) &&
                l->tags[i].value.len == 5 && !memcmp(l->tags[i].value.ptr, "other", 5))
                s->other++;
    }
    s->activity |= l->measurement.len == 11 && !memcmp(l->measurement.ptr, "pg_activity", 11);
    s->database |= l->measurement.len == 11 && !memcmp(l->measurement.ptr, "pg_database", 11);
    return 0;
}

static void on_error(void *ud, const mt_lp_error *e)
{
    (void)ud;
    char msg[512];
    mt_lp_error_format(e, msg, sizeof msg);
    cr_expect_fail("not line protocol: %s", msg);
}

static seen parse(const char *buf, size_t len)
{
    seen s = {0};
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    mt_lp_handler h = {on_line, on_error, &s};
    cr_assert_eq(mt_lp_parse(p, buf, len, 0, &h), MT_OK);
    mt_lp_parser_free(p);
    return s;
}

static void exec_ok(mt_pg *pg, const char *sql)
{
    cr_assert_eq(mt_pg_exec(pg, sql, 0, NULL), MT_OK, "%s: %s", sql, mt_pg_errmsg(pg));
}

Test(pgstat, statements_become_ranked_deltas, .timeout = 60)
{
    /* a database of its own: the server's other statements (other tests) stay out */
    char err[512] = "", url[512], sql[128];
    mt_pg *pg;
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    snprintf(sql, sizeof sql, "CREATE DATABASE metron_pgstat_%d", (int)getpid());
    exec_ok(pg, sql);
    mt_pg_close(pg);
    const char *base = mt_test_pg_url();
    snprintf(url, sizeof url, "%.*s/metron_pgstat_%d", (int)(strrchr(base, '/') - base), base,
             (int)getpid());
    cr_assert_eq(mt_pg_open(url, &pg, err, sizeof err), MT_OK, "%s", err);
    exec_ok(pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    mt_pgstat_options o = {.server = "test:5432", .top = 3, .this_db_only = true};
    mt_pgstat *st;
    cr_assert_eq(mt_pgstat_new(&o, &st), MT_OK);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    cr_assert_eq(mt_pgstat_collect(st, pg, mt_now_ns(), &buf, &len, &cap), MT_OK, "%s",
                 mt_pg_errmsg(pg));
    seen s = parse(buf, len);
    cr_expect_eq(s.stmt_lines, 0, "the first reading is the baseline");
    cr_expect(s.activity && s.database, "%.*s", (int)len, buf);
    /* a workload: a deliberately slow statement and many quick ones */
    exec_ok(pg, "SELECT pg_sleep(0.25)");
    exec_ok(pg, "SELECT pg_sleep(0.25)");
    for (int i = 0; i < 200; i++) exec_ok(pg, "SELECT count(*) FROM pg_class");
    for (int i = 0; i < 20; i++) exec_ok(pg, "SELECT 1 + 1");
    exec_ok(pg, "SELECT now()");
    exec_ok(pg, "SELECT current_user");
    len = 0;
    cr_assert_eq(mt_pgstat_collect(st, pg, mt_now_ns(), &buf, &len, &cap), MT_OK, "%s",
                 mt_pg_errmsg(pg));
    s = parse(buf, len);
    cr_expect_geq(s.stmt_lines, 3, "%.*s", (int)len, buf);
    cr_expect_eq(s.other, 1, "beyond the top 3: one 'other' line");
    size_t n;
    const mt_pgstat_stmt *top = mt_pgstat_top(st, &n);
    cr_assert_eq(n, 3);
    cr_expect(strstr(top[0].query, "pg_sleep"), "ranked first: %s", top[0].query);
    cr_expect_eq(top[0].calls, 2, "calls in the interval, not since the start");
    cr_expect_geq(top[0].total_ms, 500);
    cr_expect(strstr(buf, ",rank=1 calls=2i,total_exec_ms="), "%.*s", (int)len, buf);
    /* into the monitoring schema: the seed's slow_queries_dashboard shows it, health a row */
    mt_schema_result r;
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "%s", mt_pg_errmsg(pg));
    cr_assert_eq(mt_pgstat_write(st, pg, mt_now_ns()), MT_OK, "%s", mt_pg_errmsg(pg));
    char got[1200];
    cr_assert_eq(mt_pg_query_value(pg,
                                   "SELECT query_preview || '|' || execution_count || '|' ||"
                                   " performance_category || '|' || is_problematic FROM"
                                   " monitoring.slow_queries_dashboard LIMIT 1",
                                   0, NULL, got, sizeof got),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect(strstr(got, "pg_sleep") && strstr(got, "|2|poor|true"), "%s", got);
    /* which other statements join the top 3 depends on the machine's load (the collector's
       own reads are among the candidates): ask about the ones the test knows */
    cr_assert_eq(mt_pg_query_value(pg,
                                   "SELECT count(*) FROM monitoring.query_performance WHERE"
                                   " normalized_query NOT LIKE '%pg_sleep%' AND is_problematic",
                                   0, NULL, got, sizeof got),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_eq(atoi(got), 0, "the quick ones are fine, whatever their number of calls");
    cr_assert_eq(mt_pg_query_value(pg,
                                   "SELECT performance_category || '|' || is_problematic FROM"
                                   " monitoring.query_performance WHERE normalized_query LIKE"
                                   " '%pg_class%'",
                                   0, NULL, got, sizeof got),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_str_eq(got, "excellent|false", "200 quick calls: ranked, and fine");
    cr_assert_eq(mt_pg_query_value(pg,
                                   "SELECT count(*) FROM monitoring.query_performance WHERE"
                                   " normalized_query LIKE '%metron-pgstat%'",
                                   0, NULL, got, sizeof got),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_str_eq(got, "0", "the collector's own reads are not the server's workload");
    cr_assert_eq(mt_pg_query_value(pg,
                                   "SELECT health_status || '|' || (health_score >= 80) || '|' ||"
                                   " (cache_hit_ratio > 0) || '|' || (connection_count >= 1) FROM"
                                   " monitoring.system_health",
                                   0, NULL, got, sizeof got),
                 MT_OK, "%s", mt_pg_errmsg(pg));
    cr_expect_str_eq(got, "healthy|true|true|true");
    /* a reset: the counters went down, the delta counts from zero */
    exec_ok(pg, "SELECT pg_stat_statements_reset()");
    exec_ok(pg, "SELECT pg_sleep(0.25)");
    len = 0;
    cr_assert_eq(mt_pgstat_collect(st, pg, mt_now_ns(), &buf, &len, &cap), MT_OK);
    s = parse(buf, len);
    top = mt_pgstat_top(st, &n);
    cr_assert_geq(n, 1);
    cr_expect(strstr(top[0].query, "pg_sleep"), "%s", top[0].query);
    cr_expect_eq(top[0].calls, 1);
    free(buf);
    mt_pgstat_free(st);
    mt_pg_close(pg);
    cr_assert_eq(mt_pg_open(mt_test_pg_url(), &pg, err, sizeof err), MT_OK, "%s", err);
    snprintf(sql, sizeof sql, "DROP DATABASE metron_pgstat_%d WITH (FORCE)", (int)getpid());
    exec_ok(pg, sql);
    mt_pg_close(pg);
}
