/*
 * test_util.h — helpers shared by Metron's criterion tests.
 *
 * Random tests draw from mt_test_rand seeded by mt_test_seed(): the value of
 * MT_TEST_SEED when set, otherwise one derived from the clock; failing
 * assertions print it so a failure can be replayed exactly.
 */
#ifndef MT_TEST_UTIL_H
#define MT_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../bench/bench_util.h" /* mt_bench_free_port */

/* The seed of this test process (stable across calls). */
static inline uint64_t mt_test_seed(void)
{
    static uint64_t seed;
    if (!seed) {
        const char *env = getenv("MT_TEST_SEED");
        seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) * 2654435761u + 1;
        if (!seed) seed = 1;
    }
    return seed;
}

/* splitmix64: the next pseudo-random value from *state. */
static inline uint64_t mt_test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A loopback port free for TCP and UDP now, below the kernel's ephemeral range: a port the
   kernel hands out (bind to 0) may be taken meanwhile by any outgoing connection, a test's own
   thousand clients included (mt_bench_free_port, shared with bench/). */
static inline int mt_test_free_port(void)
{
    int port = mt_bench_free_port();
    cr_assert_geq(port, 0, "no free loopback port in [10000, 32000)");
    return port;
}

/*
 * The URL of the test PostgreSQL that tools/test.sh starts. A test that
 * needs PostgreSQL fails, loudly, when it is not there: it is never skipped.
 */
static inline const char *mt_test_pg_url(void)
{
    const char *url = getenv("METRON_TEST_PG");
    if (!url || !*url)
        cr_assert_fail("METRON_TEST_PG is not set: this test needs the PostgreSQL that "
                       "tools/test.sh starts (run the suite through tools/test.sh)");
    return url;
}

/* Write text to a new file named from tmpl (mkstemp's XXXXXX, replaced in place). */
static inline void mt_test_file(char *tmpl, const char *text)
{
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0, "mkstemp %s", tmpl);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Run cmd through the shell: its standard output into out (cap bytes at most, NUL-terminated;
   redirect 2>&1 in cmd for the errors too); the exit status, -1 when it did not exit. */
static inline int mt_test_run(char *out, size_t cap, const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run a SQL script with psql -f (stopping at the first error), env (NULL: none) put before the
   command, e.g. "PGTZ=UTC"; the last line of its output into out (may be NULL). True when
   psql exited 0. */
static inline bool mt_test_psql(const char *env, const char *url, const char *sql, char *out,
                                size_t cap)
{
    char path[] = "/tmp/metron-sql-XXXXXX";
    mt_test_file(path, sql);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s psql '%s' -qAtX -v ON_ERROR_STOP=1 -f %s 2>&1", env ? env : "",
             url, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    char line[4096], last[4096] = "";
    while (fgets(line, sizeof line, p)) snprintf(last, sizeof last, "%s", line);
    int st = pclose(p);
    unlink(path);
    last[strcspn(last, "\n")] = '\0';
    if (out) snprintf(out, cap, "%s", last);
    return st == 0;
}

#endif
