/*
 * test_quarantine.c — rows PostgreSQL never takes are held in the data
 * directory, not lost and not retried for ever (mt_quarantine.h), and the
 * rest of their batch lands. Each test has a database of its own in the
 * test PostgreSQL (it adds constraints and renames tables), an engine with
 * an outbox, and the sink thread; the CLI is the real `metron` binary.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mt_alert.h"
#include "mt_engine.h"
#include "mt_pg.h"
#include "mt_quarantine.h"
#include "mt_schema.h"
#include "mt_sink.h"
#include "mt_time.h"
#include "test_util.h"

#define HOUR     (1735689600LL / 3600 + 5) /* 2025-01-01T05:00:00Z, as an hour index */
#define DEADLINE (30 * 1000000000LL)

static char dir[256], url[640], db[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static mt_pg *connect_to(const char *u)
{
    mt_pg *pg = NULL;
    char err[512];
    cr_assert_eq(mt_pg_open(u, &pg, err, sizeof err), MT_OK, "connect %s: %s", u, err);
    return pg;
}

static void exec_ok(mt_pg *pg, const char *sql)
{
    cr_assert_eq(mt_pg_exec(pg, sql, 0, NULL), MT_OK, "%s: %s", sql, mt_pg_errmsg(pg));
}

/* A database of this test's own, with the monitoring schema installed. */
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-quar-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    const char *base = mt_test_pg_url();
    snprintf(db, sizeof db, "metron_quar_%d_%lld", (int)getpid(),
             (long long)(mt_now_ns() / 1000 % 1000000000));
    mt_pg *pg = connect_to(base);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db); /* a name of our own: no input */
    exec_ok(pg, sql);
    mt_pg_close(pg);
    const char *slash = strrchr(base, '/'), *query = strchr(slash, '?');
    snprintf(url, sizeof url, "%.*s/%s%s", (int)(slash - base), base, db, query ? query : "");
    pg = connect_to(url);
    mt_schema_result r;
    cr_assert_eq(mt_schema_install(pg, &r), MT_OK, "install: %s", mt_pg_errmsg(pg));
    mt_pg_close(pg);
}

static void teardown(void)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    mt_pg *pg = NULL;
    if (mt_pg_open(mt_test_pg_url(), &pg, NULL, 0) == MT_OK) {
        char sql[160];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        mt_pg_exec(pg, sql, 0, NULL);
        mt_pg_close(pg);
    }
}

TestSuite(quarantine, .init = setup, .fini = teardown, .timeout = 120);

static mt_engine *open_engine(void)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    o.outbox = true;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    cr_assert_eq(rc, MT_OK, "open %s: %s", dir, mt_strerror(rc));
    return e;
}

/*
 * Ten points a minute apart in HOUR for disk,host=h1[,business_id=bid] and
 * each field of fields (max value = base + 9 + bump; the field "big" gets
 * 2,000,000 and up), then the hour sealed (queued for the sink).
 */
static void write_hour(mt_engine *e, const char *bid, const char *const *fields, size_t nf,
                       double bump)
{
    mt_batch *b = mt_batch_new();
    for (size_t f = 0; f < nf; f++) {
        mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
                tv[2] = {{bid, bid ? strlen(bid) : 0}, {"h1", 2}};
        char key[512];
        size_t kl =
            mt_series_key(key, sizeof key, (mt_name){"disk", 4}, bid ? tk : tk + 1,
                          bid ? tv : tv + 1, bid ? 2 : 1, (mt_name){fields[f], strlen(fields[f])});
        cr_assert_gt(kl, 0);
        double base = strcmp(fields[f], "big") ? 10.0 * (double)f : 2e6;
        for (int m = 0; m < 10; m++)
            cr_assert_eq(mt_batch_add(b, key, kl, (HOUR * 3600 + m * 60) * 1000000000LL,
                                      MT_VT_FLOAT, (mt_val){.f = base + m + bump}, NULL),
                         MT_OK);
    }
    mt_write_result res;
    cr_assert_eq(mt_engine_write(e, b, &res), MT_OK);
    cr_assert_eq(res.accepted, nf * 10);
    mt_batch_free(b);
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
}

static const char *const fields5[] = {"a", "b", "big", "d", "e"};

static mt_sink *start_sink(mt_engine *e)
{
    mt_sink_options o = mt_sink_options_default();
    o.conninfo = url;
    o.idle_ns = 20 * 1000000LL;
    o.retry_max_ns = 200 * 1000000LL;
    mt_sink *s = NULL;
    cr_assert_eq(mt_sink_start(e, &o, &s), MT_OK);
    return s;
}

/*
 * Wait (with a deadline) until the sink sent or held something, the outbox
 * is empty and `held` rows are held; stats in *st.
 */
static void wait_settled(mt_sink *s, size_t held, mt_sink_stats *st)
{
    int64_t until = mt_mono_ns() + DEADLINE;
    do {
        mt_sink_stats_get(s, st);
        bool worked = st->rows_delivered + st->rows_quarantined > 0;
        if (st->outbox_depth == 0 && st->quarantine_held == held && worked) return;
        usleep(20000);
    } while (mt_mono_ns() < until);
    cr_assert_fail("the sink did not settle: outbox %zu, held %zu (want 0 and %zu), delivered %llu "
                   "hours, %llu failures",
                   st->outbox_depth, st->quarantine_held, held,
                   (unsigned long long)st->hours_delivered, (unsigned long long)st->failures);
}

static long long count(mt_pg *pg, const char *sql)
{
    char v[32];
    cr_assert_eq(mt_pg_query_value(pg, sql, 0, NULL, v, sizeof v), MT_OK, "%s: %s", sql,
                 mt_pg_errmsg(pg));
    return atoll(v);
}

/* Group rows of HOUR, and of them the distinct natural keys (a duplicate would differ). */
static const char groups_sql[] =
    "SELECT count(*) FROM monitoring.hourly_metrics_summary WHERE hour_bucket = "
    "'2025-01-01T05:00:00Z'";
static const char distinct_sql[] =
    "SELECT count(DISTINCT (business_id, metric_category, metric_name)) FROM "
    "monitoring.hourly_metrics_summary WHERE hour_bucket = '2025-01-01T05:00:00Z'";
static const char series_sql[] =
    "SELECT count(*) FROM monitoring.series_hourly_summary WHERE hour_bucket = "
    "'2025-01-01T05:00:00Z'";

typedef struct held {
    size_t n;
    mt_quar_row r; /* the first (pointers valid in the callback only: copied below) */
    char reason[600], natural[600];
} held;

static int on_held(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row)
{
    (void)key;
    held *h = ud;
    cr_assert_not_null(row, "every record decodes");
    if (h->n++ == 0) {
        h->r = *row;
        snprintf(h->reason, sizeof h->reason, "%s", row->reason);
        snprintf(h->natural, sizeof h->natural, "%s", row->natural);
    }
    return 0;
}

/* Run the metron CLI; its stdout in out, the exit code returned. */
static int metron(char *out, size_t cap, const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", METRON_PATH, args);
    return mt_test_run(out, cap, cmd);
}

/*
 * A check constraint refuses one group row of a sealed hour: the other
 * rows of the batch are in PostgreSQL, the refused one is held with the
 * constraint's name, counted, the outbox drains; `list` shows it; after
 * the constraint is dropped `retry --pg` lands it and the quarantine is
 * empty; no row is there twice. (Today's sink retries the batch for ever:
 * the outbox never drains and none of the rows land.)
 */
Test(quarantine, a_refused_row_is_held_and_the_rest_of_its_batch_lands)
{
    mt_pg *pg = connect_to(url);
    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary ADD CONSTRAINT quar_small "
                "CHECK (max_value < 1e6)");
    mt_engine *e = open_engine();
    write_hour(e, NULL, fields5, 5, 0);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    wait_settled(s, 1, &st);
    cr_expect_eq(st.rows_quarantined, 1);
    cr_expect_eq(st.rows_delivered, 9, "4 group rows and 5 series rows");
    mt_sink_stop(s);
    cr_expect_eq(count(pg, groups_sql), 4, "the rest of the batch landed");
    cr_expect_eq(count(pg, series_sql), 5);
    held h = {0};
    cr_assert_eq(mt_quar_list(e, on_held, &h), MT_OK);
    cr_assert_eq(h.n, 1);
    cr_expect_eq(h.r.table, MT_QUAR_GROUPS);
    cr_expect_eq(h.r.hour, HOUR);
    cr_expect_str_eq(h.r.sqlstate, "23514");
    cr_expect_not_null(strstr(h.reason, "quar_small"), "the reason names the constraint: %s",
                       h.reason);
    cr_expect_not_null(strstr(h.natural, "metric_name=big"), "%s", h.natural);
    mt_engine_close(e);

    char out[8192];
    char args[1024];
    snprintf(args, sizeof args, "sink quarantine list --data %s", dir);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_not_null(strstr(out, "monitoring.hourly_metrics_summary\thour=2025-01-01T05:00:00Z "
                                   "business_id= metric_category=disk metric_name=big\t23514\t"),
                       "%s", out);
    cr_expect_not_null(strstr(out, "quar_small"), "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);

    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary DROP CONSTRAINT quar_small");
    snprintf(args, sizeof args, "sink quarantine retry --data %s --pg '%s'", dir, url);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_not_null(strstr(out, "landed 1 rows, 0 refused again"), "%s", out);
    snprintf(args, sizeof args, "sink quarantine list --data %s", dir);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_str_eq(out, "", "the quarantine is empty");
    cr_expect_eq(count(pg, groups_sql), 5);
    cr_expect_eq(count(pg, distinct_sql), 5, "no row twice");
    cr_expect_eq(count(pg, "SELECT max_value FROM monitoring.hourly_metrics_summary WHERE "
                           "metric_name = 'big'"),
                 2000009);
    mt_pg_close(pg);
}

/*
 * `retry` without --pg queues the rows for the sink: refused again they
 * stay (refusals 2, the new reason); once the cause is gone they land and
 * leave the quarantine.
 */
Test(quarantine, retry_queues_the_rows_for_the_sink_again)
{
    mt_pg *pg = connect_to(url);
    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary ADD CONSTRAINT quar_small "
                "CHECK (max_value < 1e6)");
    mt_engine *e = open_engine();
    write_hour(e, NULL, fields5, 5, 0);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    wait_settled(s, 1, &st);
    mt_sink_stop(s);
    mt_engine_close(e);

    char out[4096], args[1024];
    snprintf(args, sizeof args, "sink quarantine retry --data %s", dir);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_not_null(strstr(out, "queued 1 rows"), "%s", out);
    e = open_engine();
    s = start_sink(e);
    wait_settled(s, 1, &st);
    cr_expect_eq(st.rows_quarantined, 1, "refused again, held again");
    mt_sink_stop(s);
    held h = {0};
    cr_assert_eq(mt_quar_list(e, on_held, &h), MT_OK);
    cr_assert_eq(h.n, 1);
    cr_expect_eq(h.r.refusals, 2);
    cr_expect_str_eq(h.r.sqlstate, "23514");
    mt_engine_close(e);

    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary DROP CONSTRAINT quar_small");
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    e = open_engine();
    s = start_sink(e);
    wait_settled(s, 0, &st);
    cr_expect_eq(st.rows_quarantined, 0);
    cr_expect_eq(st.rows_delivered, 1, "the held row, alone");
    mt_sink_stop(s);
    mt_engine_close(e);
    cr_expect_eq(count(pg, groups_sql), 5);
    cr_expect_eq(count(pg, distinct_sql), 5, "no row twice");
    mt_pg_close(pg);
}

/*
 * The hour re-sealed after backfill is sent again with its current rows:
 * the row that now lands takes its record out of the quarantine, so a
 * later retry cannot bring older values back.
 */
Test(quarantine, a_row_landed_again_from_its_hour_leaves_the_quarantine)
{
    mt_pg *pg = connect_to(url);
    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary ADD CONSTRAINT quar_small "
                "CHECK (max_value < 1e6)");
    mt_engine *e = open_engine();
    write_hour(e, NULL, fields5, 5, 0);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    wait_settled(s, 1, &st);
    exec_ok(pg, "ALTER TABLE monitoring.hourly_metrics_summary DROP CONSTRAINT quar_small");
    write_hour(e, NULL, fields5, 5, 0.5); /* backfill: the hour sealed again, queued again */
    wait_settled(s, 0, &st);
    mt_sink_stop(s);
    size_t n = 99;
    cr_assert_eq(mt_quar_count(e, &n), MT_OK);
    cr_expect_eq(n, 0);
    mt_engine_close(e);
    cr_expect_eq(count(pg, groups_sql), 5);
    cr_expect_eq(count(pg, distinct_sql), 5);
    cr_expect_eq(count(pg, "SELECT (max_value * 10)::bigint FROM monitoring.hourly_metrics_summary"
                           " WHERE metric_name = 'big'"),
                 20000095, "the new values");
    mt_pg_close(pg);
}

/*
 * An error that is not the row's (a table missing: 42P01) holds nothing:
 * the batch waits in the outbox and is retried until the cause is gone.
 */
Test(quarantine, an_error_of_every_row_keeps_the_batch_waiting)
{
    mt_pg *pg = connect_to(url);
    exec_ok(pg, "ALTER TABLE monitoring.series_hourly_summary RENAME TO series_away");
    mt_engine *e = open_engine();
    write_hour(e, NULL, fields5, 5, 0);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    int64_t until = mt_mono_ns() + DEADLINE;
    do {
        mt_sink_stats_get(s, &st);
        usleep(20000);
    } while (st.failures < 3 && mt_mono_ns() < until);
    cr_assert_geq(st.failures, 3, "retried");
    cr_expect_eq(st.outbox_depth, 1, "kept");
    cr_expect_eq(st.quarantine_held, 0);
    cr_expect_eq(st.rows_quarantined, 0);
    exec_ok(pg, "ALTER TABLE monitoring.series_away RENAME TO series_hourly_summary");
    wait_settled(s, 0, &st);
    mt_sink_stop(s);
    mt_engine_close(e);
    cr_expect_eq(count(pg, groups_sql), 5);
    cr_expect_eq(count(pg, series_sql), 5);
    mt_pg_close(pg);
}

/*
 * A row the sink's own checks know PostgreSQL refuses (a business_id that
 * is not a UUID) is held too, with the check's reason, and `retry --pg`
 * keeps it with PostgreSQL's (22P02) and exits 3.
 */
Test(quarantine, rows_the_sinks_checks_refuse_are_held_too)
{
    mt_engine *e = open_engine();
    write_hour(e, "not-a-uuid", fields5, 1, 0);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    wait_settled(s, 2, &st); /* its group row and its series row */
    cr_expect_eq(st.rows_quarantined, 2);
    mt_sink_stop(s);
    held h = {0};
    cr_assert_eq(mt_quar_list(e, on_held, &h), MT_OK);
    cr_expect_str_eq(h.r.sqlstate, "");
    cr_expect_str_eq(h.reason, "metron: business_id is not a UUID");
    mt_engine_close(e);
    char out[4096], args[1024];
    snprintf(args, sizeof args, "sink quarantine retry --data %s --pg '%s'", dir, url);
    cr_assert_eq(metron(out, sizeof out, args), 3, "%s", out);
    cr_expect_not_null(strstr(out, "landed 0 rows, 2 refused again"), "%s", out);
    snprintf(args, sizeof args, "sink quarantine list --data %s", dir);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_not_null(strstr(out, "\t22P02\t"), "%s", out);
}

/* An active alert of one rule on series, with value v, stored and queued for the sink. */
static void put_alert(mt_engine *e, const char *series, double v)
{
    mt_alert_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.rule.id, sizeof r.rule.id, "5b1c0a6e-0000-4000-8000-00000000000a");
    snprintf(r.rule.name, sizeof r.rule.name, "disk too full");
    snprintf(r.rule.metric, sizeof r.rule.metric, "disk");
    r.rule.cond = MT_COND_THRESHOLD;
    r.rule.has_critical = true;
    r.rule.critical = 1;
    r.rule.op = MT_CMP_GT;
    snprintf(r.series, sizeof r.series, "%s", series);
    r.st.status = MT_ALERT_ACTIVE;
    r.st.severity = MT_SEV_CRITICAL;
    r.st.triggered_at = mt_now_ns();
    r.st.value = v;
    r.st.threshold = 1;
    r.st.notifications = 1;
    mt_alert_id(r.rule.id, r.series, r.st.triggered_at, r.alert_id);
    char key[1200];
    size_t klen;
    cr_assert_eq(mt_alert_record_key(r.rule.id, r.series, key, sizeof key, &klen), MT_OK);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(mt_alert_record_encode(&r, &buf, &len), MT_OK);
    cr_assert_eq(mt_engine_state_put(e, key, klen, buf, len, MT_OUTBOX_ALERT), MT_OK);
    free(buf);
}

/*
 * Alerts go the same way: one PostgreSQL refuses (a check constraint on
 * monitoring.alerts) is held, the other of the batch lands, and `retry
 * --pg` lands it once the constraint is gone.
 */
Test(quarantine, an_alert_postgresql_refuses_is_held_and_the_other_lands)
{
    mt_pg *pg = connect_to(url);
    exec_ok(pg, "ALTER TABLE monitoring.alerts ADD CONSTRAINT quar_alert "
                "CHECK (trigger_value < 1e6)");
    mt_engine *e = open_engine();
    put_alert(e, "disk,host=h1 used", 5);
    put_alert(e, "disk,host=h2 used", 5e6);
    mt_sink *s = start_sink(e);
    mt_sink_stats st;
    wait_settled(s, 1, &st);
    mt_sink_stop(s);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.alerts"), 1);
    held h = {0};
    cr_assert_eq(mt_quar_list(e, on_held, &h), MT_OK);
    cr_assert_eq(h.n, 1);
    cr_expect_eq(h.r.table, MT_QUAR_ALERTS);
    cr_expect_str_eq(h.r.sqlstate, "23514");
    cr_expect_not_null(strstr(h.reason, "quar_alert"), "%s", h.reason);
    cr_expect_not_null(strstr(h.natural, "series=disk,host=h2 used"), "%s", h.natural);
    mt_engine_close(e);
    exec_ok(pg, "ALTER TABLE monitoring.alerts DROP CONSTRAINT quar_alert");
    char out[4096], args[1024];
    snprintf(args, sizeof args, "sink quarantine retry --data %s --pg '%s'", dir, url);
    cr_assert_eq(metron(out, sizeof out, args), 0, "%s", out);
    cr_expect_not_null(strstr(out, "landed 1 rows, 0 refused again"), "%s", out);
    cr_expect_eq(count(pg, "SELECT count(*) FROM monitoring.alerts"), 2);
    cr_expect_eq(count(pg, "SELECT count(DISTINCT id) FROM monitoring.alerts"), 2);
    mt_pg_close(pg);
}
