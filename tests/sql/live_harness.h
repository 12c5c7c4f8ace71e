/*
 * tests/sql/live_harness.h — a real metrond writing into a database of its
 * own, for the tests of what it mirrors live (test_minute_sink.c,
 * test_raw_rows.c): the metrond started and killed (also by the suite's
 * fini when a test fails: TestSuite(..., .fini = kill_live)), psql, the
 * random values (MT_TEST_SEED, printed), and a feed that writes each point
 * through /write and into a plain table `pts` the test compares against.
 * One test file includes it (its state is static).
 */
#ifndef MT_LIVE_HARNESS_H
#define MT_LIVE_HARNESS_H

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

#define MT_LIVE_FN __attribute__((unused))

#define A "aaaaaaaa-0000-4000-8000-000000000001"
#define B "bbbbbbbb-0000-4000-8000-000000000002"

static uint64_t rng;

MT_LIVE_FN static uint64_t next_rand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 33;
}

MT_LIVE_FN static void seed_rng(void)
{
    const char *s = getenv("MT_TEST_SEED");
    rng = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    fprintf(stderr, "MT_TEST_SEED=%llu\n", (unsigned long long)rng);
}

/* Run a script through psql -f; the last line of its output into out (may be NULL). */
MT_LIVE_FN static bool psql_try(const char *url, const char *sql, char *out, size_t cap)
{
    return mt_test_psql(NULL, url, sql, out, cap);
}

MT_LIVE_FN static void psql_file(const char *url, const char *sql, char *out, size_t cap)
{
    char got[4096];
    cr_assert(psql_try(url, sql, got, sizeof got), "psql failed: %s", got);
    if (out) snprintf(out, cap, "%s", got);
}

static pid_t live;       /* the metrond running, killed by the suite's fini when a test fails */
static char own_pg[128]; /* a test's own PostgreSQL (pg_tmp.sh's directory), stopped there too */

MT_LIVE_FN static void kill_live(void)
{
    if (live > 0) {
        kill(live, SIGKILL);
        waitpid(live, NULL, 0);
    }
    if (own_pg[0]) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s stop %s >/dev/null 2>&1", PG_TMP_SH, own_pg);
        if (system(cmd)) fprintf(stderr, "could not stop the PostgreSQL in %s\n", own_pg);
    }
}

/* metrond in d->dir (made when fresh) with args; false when it exited before /health. */
MT_LIVE_FN static bool try_start(mth_daemon *d, bool fresh, const char *args, int *status)
{
    if (fresh) {
        snprintf(d->dir, sizeof d->dir, "/tmp/metrond-live-XXXXXX");
        cr_assert_not_null(mkdtemp(d->dir));
        snprintf(d->log, sizeof d->log, "%s.log", d->dir);
    }
    d->tcp = mth_free_port();
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
    for (int64_t end = mth_now_ms() + 20000; mth_now_ms() < end; mth_sleep_ms(25)) {
        if (waitpid(d->pid, status, WNOHANG) == d->pid) {
            live = 0;
            return false;
        }
        if (mth_http(d->http, "GET", "/health", NULL, NULL, 0, NULL, 0) == 200) return true;
    }
    cr_assert_fail("metrond did not come up (log: %s)", d->log);
    return false;
}

MT_LIVE_FN static void start_in(mth_daemon *d, bool fresh, const char *args)
{
    int st;
    cr_assert(try_start(d, fresh, args, &st), "metrond exited with status %d (log: %s)", st,
              d->log);
}

MT_LIVE_FN static void kill9(mth_daemon *d)
{
    kill(d->pid, SIGKILL);
    int st;
    cr_assert_eq(waitpid(d->pid, &st, 0), d->pid);
}

/* Points written through /write and into pts, batched. */
typedef struct feed {
    char lp[65536], sql[262144];
    size_t nlp, nsql, n;
} feed;

MT_LIVE_FN static void feed_flush(mth_daemon *d, const char *url, feed *f)
{
    if (!f->n) return;
    mth_write(d, f->lp);
    f->nsql += (size_t)snprintf(f->sql + f->nsql, sizeof f->sql - f->nsql, ";\n");
    psql_file(url, f->sql, NULL, 0);
    f->nlp = f->nsql = f->n = 0;
}

#endif
