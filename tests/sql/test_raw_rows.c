/*
 * test_raw_rows.c — raw rows (postgres_raw_rows, sql/mt_minute.h, schema
 * version 7) end to end: a real metrond writing into a database of its own
 * in the test PostgreSQL. Every point written through /write is also
 * inserted into a plain table `pts`; the rows metrond puts in
 * monitoring.performance_metrics must be exactly those points (each once,
 * the same value), minute by minute once a minute is complete. Random
 * values take MT_TEST_SEED (printed on failure).
 */
#include "sql/live_harness.h"

/* One point: tenant (NULL: none), measurement, host, field, time (s), value. */
static void point(mth_daemon *d, const char *url, feed *f, const char *bid, const char *meas,
                  int host, const char *field, int64_t ts, double v)
{
    char tags[128];
    if (bid)
        snprintf(tags, sizeof tags, ",business_id=%s,host=h%d", bid, host);
    else
        snprintf(tags, sizeof tags, ",host=h%d", host);
    f->nlp += (size_t)snprintf(f->lp + f->nlp, sizeof f->lp - f->nlp, "%s%s %s=%.3f %lld\n", meas,
                               tags, field, v, (long long)ts);
    f->nsql +=
        (size_t)snprintf(f->sql + f->nsql, sizeof f->sql - f->nsql,
                         "%s (to_timestamp(%lld), %s%s%s, '%s', '%s', 'h%d', %.3f)",
                         f->n ? ",\n" : "INSERT INTO pts VALUES", (long long)ts, bid ? "'" : "",
                         bid ? bid : "NULL", bid ? "'" : "", meas, field, host, v);
    if (++f->n == 200) feed_flush(d, url, f);
}

/* Points every 10 s over [from, to) (s): 3 tenants, 2 measurements, 3 hosts. */
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

static const char pts_sql[] = "CREATE TABLE pts (ts timestamptz, bid uuid, meas text, field text,"
                              " host text, v float8)";

/* Points (of complete minutes) and raw rows that differ: either side missing, or the value;
   plus raw rows that are there more than once. */
static const char diff_raw[] =
    "WITH e AS (SELECT * FROM pts WHERE ts < date_trunc('minute', now()) - interval '1 minute'),"
    " r AS (SELECT * FROM monitoring.performance_metrics WHERE source_schema = 'metron'"
    " AND collected_at < date_trunc('minute', now()) - interval '1 minute')"
    " SELECT (SELECT count(*) FROM e FULL JOIN r ON r.collected_at = e.ts"
    " AND r.business_id IS NOT DISTINCT FROM e.bid AND r.metric_category = e.meas"
    " AND r.metric_name = e.field AND r.dimensions->>'host' = e.host"
    " WHERE e.ts IS NULL OR r.collected_at IS NULL OR r.metric_value <> e.v)"
    " + (SELECT count(*) - count(DISTINCT (collected_at, business_id, metric_category,"
    " metric_name, dimensions)) FROM r);";

static bool wait_for(const char *url, const char *sql, const char *want, int ms, char *got,
                     size_t cap)
{
    for (int64_t end = mth_now_ms() + ms; mth_now_ms() < end; mth_sleep_ms(200)) {
        if (psql_try(url, sql, got, cap) && !strcmp(got, want)) return true;
    }
    return false;
}

static void expect_raw(const char *url, const char *when)
{
    char got[256];
    cr_assert(wait_for(url, diff_raw, "0", 30000, got, sizeof got),
              "%s: %s raw rows differ from the points written (missing, extra, other value or "
              "twice)",
              when, got);
    psql_file(url,
              "SELECT count(*) > 0 FROM monitoring.performance_metrics WHERE source_schema ="
              " 'metron'",
              got, sizeof got);
    cr_assert_str_eq(got, "t", "%s: raw rows are there at all", when);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

TestSuite(raw_rows, .fini = kill_live, .timeout = 300);

Test(raw_rows, rows_equal_the_points_and_a_tenant_reads_only_its_own)
{
    seed_rng();
    char url[512], args[700], got[256];
    mth_pg_drop("raw_equal");
    mth_pg_create("raw_equal", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    mth_daemon d;
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-raw-rows true", url);
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 240;
    spread(&d, url, &f, base, now_s() + 1);
    expect_raw(url, "after the writes");

    /* an hour partition per hour of the window, the month partitioned again */
    psql_file(url,
              "SELECT count(*) >= 2 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
              " WHERE i.inhparent IN (SELECT inhrelid FROM pg_inherits WHERE inhparent ="
              " 'monitoring.performance_metrics'::regclass)"
              " AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES%'",
              got, sizeof got);
    cr_expect_str_eq(got, "t", "hour partitions");

    /* the minute being written appears once complete, each point once */
    psql_file(url, "SELECT count(*) FROM pts", got, sizeof got);
    long written = atol(got);
    int64_t cur = now_s();
    while ((cur - base) % 10 < 2) cur++; /* a second spread wrote nothing at: these 3 alone */
    for (int h = 0; h < 3; h++) point(&d, url, &f, A, "cpu", h, "usage", cur, 50.5 + h);
    feed_flush(&d, url, &f);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM monitoring.performance_metrics WHERE source_schema = 'metron'"
             " AND collected_at = to_timestamp(%lld)",
             (long long)cur);
    cr_expect(wait_for(url, sql, "3", 90000, got, sizeof got),
              "the current minute's points once it is complete: %s", got);
    /* a late point re-sends its minute: one more row, none twice */
    point(&d, url, &f, B, "mem", 2, "used", base + 3, 123.25);
    feed_flush(&d, url, &f);
    expect_raw(url, "after a late point");
    psql_file(url,
              "SELECT count(*) FROM monitoring.performance_metrics WHERE source_schema = 'metron'",
              got, sizeof got);
    cr_expect_eq(atol(got), written + 4, "one row per point written (%s)", got);

    /* tenants: a reader of A sees A's rows and the system-wide ones, never B's; an hour
       partition read directly answers nothing to it */
    char want[128], part[128];
    psql_file(url,
              "SELECT (SELECT count(*) FROM pts WHERE bid = '" A "') || ' ' ||"
              " (SELECT count(*) FROM pts WHERE bid IS NULL)",
              want, sizeof want);
    psql_file(url,
              "SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
              " WHERE i.inhparent IN (SELECT inhrelid FROM pg_inherits WHERE inhparent ="
              " 'monitoring.performance_metrics'::regclass)"
              " AND pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES%' ORDER BY 1 LIMIT 1",
              part, sizeof part);
    psql_file(url,
              "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'raw_reader_a')"
              " THEN CREATE ROLE raw_reader_a NOLOGIN IN ROLE monitoring_dashboard; END IF; END $$;"
              "INSERT INTO monitoring.tenant_readers VALUES ('raw_reader_a', '" A "');",
              NULL, 0);
    psql_file(url,
              "SET ROLE raw_reader_a;"
              "SELECT (SELECT count(*) FROM monitoring.performance_metrics WHERE business_id = '" B
              "') || ' ' || (SELECT count(*) FROM monitoring.performance_metrics WHERE business_id"
              " = '" A "') || ' ' || (SELECT count(*) FROM monitoring.performance_metrics WHERE"
              " business_id IS NULL);",
              got, sizeof got);
    char both[160];
    snprintf(both, sizeof both, "0 %s", want);
    cr_expect_str_eq(got, both, "reader of A: B's rows, A's rows, system-wide rows");
    char direct[256];
    snprintf(direct, sizeof direct, "SET ROLE raw_reader_a; SELECT count(*) FROM %s;", part);
    bool ok = psql_try(url, direct, got, sizeof got);
    cr_expect(!ok || !strcmp(got, "0"), "an hour partition read directly by a reader: %s", got);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("raw_equal");
}

Test(raw_rows, kill9_mid_flush_then_restart_gives_each_point_once)
{
    seed_rng();
    char url[512], args[700], got[256];
    mth_pg_drop("raw_crash");
    mth_pg_create("raw_crash", url, sizeof url);
    psql_file(url, pts_sql, NULL, 0);
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-raw-rows true", url);
    mth_daemon d;
    start_in(&d, true, args);
    static feed f;
    int64_t base = now_s() / 60 * 60 - 300;
    spread(&d, url, &f, base, now_s() / 60 * 60 - 60);
    expect_raw(url, "before any crash");

    /* kill -9 at random moments of the flushes (the start's catch-up recomputes every minute
       from the floor: deletes and copies run again), with late points each round that re-send
       their minutes */
    for (int round = 0; round < 6; round++) {
        for (int h = 0; h < 3; h++)
            point(&d, url, &f, h == 0 ? A : NULL, "cpu", h, "usage", base + 11 + round * 40,
                  (double)(next_rand() % 100));
        feed_flush(&d, url, &f);
        mth_sleep_ms((int)(next_rand() % 1500));
        kill9(&d);
        start_in(&d, false, args);
    }
    expect_raw(url, "after kill -9 mid-flush, six times");
    psql_file(url,
              "SELECT count(*) || ' ' || (SELECT count(*) FROM pts) FROM"
              " monitoring.performance_metrics WHERE source_schema = 'metron'",
              got, sizeof got);
    char want[64];
    psql_file(url, "SELECT (SELECT count(*) FROM pts) || ' ' || (SELECT count(*) FROM pts)", want,
              sizeof want);
    cr_expect_str_eq(got, want, "one row per point (rows, points): %s, want %s", got, want);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("raw_crash");
}

Test(raw_rows, over_the_budget_it_refuses_to_start_and_a_running_one_skips_the_minute)
{
    char url[512], args[800], got[256];
    mth_pg_drop("raw_budget");
    mth_pg_create("raw_budget", url, sizeof url);
    mth_daemon d;
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-raw-rows true "
             "--postgres-raw-max-rate 5",
             url);
    start_in(&d, true, args);
    /* 600 points in the last complete minute: 10 a second */
    int64_t minute = now_s() / 60 * 60 - 60;
    static char lp[65536];
    size_t n = 0;
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(lp + n, sizeof lp - n, "cpu,host=h%d usage=%d %lld\n", i % 20, i,
                              (long long)(minute + i / 20 * 2));
    mth_write(&d, lp);
    /* running: the minute gets summaries, no raw rows; counted and flagged */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT sum(sample_count) FROM monitoring.metrics_minute WHERE minute_bucket ="
             " to_timestamp(%lld)",
             (long long)minute);
    cr_assert(wait_for(url, sql, "600", 20000, got, sizeof got), "the minute's summaries: %s", got);
    char body[16384];
    bool seen = false;
    for (int64_t end = mth_now_ms() + 10000; !seen && mth_now_ms() < end; mth_sleep_ms(100)) {
        cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
        /* the gauge is the last complete minute's: once the clock turned a minute it is the
           next one's (empty), and only the counter still speaks of this one */
        seen = strstr(body, "\nmetron_raw_minutes_skipped_total 1\n") &&
               (strstr(body, "\nmetron_raw_over_budget 1\n") || now_s() / 60 * 60 - 60 != minute);
    }
    cr_expect(seen, "/metrics says the minute was over: %s", strstr(body, "metron_raw") ?: body);
    cr_expect_geq(mth_log_lines(&d, "postgres_raw_max_rate=5"), 1, "the log says so (%s)", d.log);
    psql_file(url,
              "SELECT count(*) FROM monitoring.performance_metrics WHERE source_schema = 'metron'",
              got, sizeof got);
    cr_expect_str_eq(got, "0", "no raw rows for a minute over the budget");
    mth_stop(&d);

    /* restarted with the same budget: refused, with a message naming the setting */
    int st;
    bool up = try_start(&d, false, args, &st);
    if (up) kill9(&d);
    cr_assert(!up, "metrond started above postgres_raw_max_rate");
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
    cr_expect_geq(mth_log_lines(&d, "refusing to start"), 1, "(%s)", d.log);
    cr_expect_geq(mth_log_lines(&d, "over postgres_raw_max_rate"), 1, "(%s)", d.log);
    /* within the budget: starts, and a late point re-sends the minute, with its rows now */
    snprintf(args, sizeof args,
             "--postgres '%s' --postgres-flush-interval 1 --postgres-raw-rows true "
             "--postgres-raw-max-rate 20",
             url);
    start_in(&d, false, args);
    snprintf(lp, sizeof lp, "cpu,host=h0 usage=1 %lld\n", (long long)minute + 59);
    mth_write(&d, lp);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM monitoring.performance_metrics WHERE source_schema = 'metron'"
             " AND collected_at >= to_timestamp(%lld) AND collected_at < to_timestamp(%lld)",
             (long long)minute, (long long)minute + 60);
    cr_expect(wait_for(url, sql, "601", 20000, got, sizeof got), "the minute's raw rows: %s", got);
    mth_stop(&d);
    live = 0;
    mth_cleanup(&d);
    mth_pg_drop("raw_budget");
}
