/*
 * test_crash.c — kill -9 at random moments, sealing included.
 *
 * A child process writes batches through the engine and, after each one
 * is durable (mt_engine_write returned), reports its number on a pipe. It
 * seals every few batches (with all = true, so it keeps rewriting the
 * current hour copy-on-write) and auto-seals in between. The parent
 * SIGKILLs it after a random number of reports plus a random delay,
 * reopens the data directory and checks: every batch reported durable is
 * present exactly once (all its points, with its values), and any other
 * batch is either entirely present or entirely absent (a commit is
 * atomic), and after sealing everything, that every series-hour rollup
 * equals a recomputation from its points. Then it starts the next child on
 * the same directory.
 *
 * Batch j writes POINTS points with timestamps j*POINTS .. j*POINTS +
 * POINTS - 1 seconds after T0, over SERIES series, each with value j.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mt_engine.h"
#include "test_util.h"

#define T0          (1735689600LL * 1000000000LL)
#define S           1000000000LL
#define POINTS      120 /* per batch: 2 minutes of one point a second */
#define SERIES      4
#define KILLS       60
#define MAX_BATCHES 4096
#define SEAL_BEGIN  (1ull << 62) /* pipe messages: a batch number, or a seal starting / ending */
#define SEAL_END    (1ull << 61)

static char dir[256];

static size_t series_key(char *out, int s)
{
    char host[16];
    snprintf(host, sizeof host, "h%d", s);
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{host, strlen(host)}};
    return mt_series_key(out, 256, (mt_name){"crash", 5}, tk, tv, 1, (mt_name){"v", 1});
}

static mt_engine *open_dir(void)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.grace_ns = 60 * S;
    mt_engine *e = NULL;
    int rc = mt_engine_open(&o, &e);
    if (rc) {
        fprintf(stderr, "open failed: %s\n", mt_strerror(rc));
        return NULL;
    }
    return e;
}

/* The child: write batches from `first` on, report each durable one. Never returns. */
static void child(int fd, uint64_t first, uint64_t seed)
{
    mt_engine *e = open_dir();
    if (!e) _exit(2);
    mt_batch *b = mt_batch_new();
    char keys[SERIES][256];
    size_t kl[SERIES];
    for (int s = 0; s < SERIES; s++) kl[s] = series_key(keys[s], s);
    for (uint64_t j = first; j < MAX_BATCHES; j++) {
        mt_batch_reset(b);
        for (int i = 0; i < POINTS; i++) {
            int64_t ts = T0 + (int64_t)(j * POINTS + (uint64_t)i) * S;
            mt_batch_add(b, keys[i % SERIES], kl[i % SERIES], ts, MT_VT_FLOAT,
                         (mt_val){.f = (double)j}, NULL);
        }
        mt_write_result r;
        if (mt_engine_write(e, b, &r) != MT_OK || r.accepted != POINTS) _exit(3);
        if (write(fd, &j, sizeof j) != sizeof j) _exit(4);
        if (mt_test_rand(&seed) % 4 == 0) {
            uint64_t m = SEAL_BEGIN;
            if (write(fd, &m, sizeof m) != sizeof m) _exit(4);
            if (mt_engine_seal(e, true, NULL) != MT_OK) _exit(5);
            m = SEAL_END;
            if (write(fd, &m, sizeof m) != sizeof m) _exit(4);
        }
    }
    mt_engine_close(e);
    _exit(0);
}

#define HOURS ((MAX_BATCHES * POINTS + 3599) / 3600)

/* A series-hour recomputed from its points, for its rollup to be compared with. */
typedef struct recount {
    uint64_t n;
    double sum, min, max;
} recount;

static recount by_hour[SERIES + 1][HOURS];
static uint32_t id_series[64]; /* series id -> its index + 1 */

static int check_rollup(void *ud, const mt_rollup *r)
{
    int *checked = ud;
    int64_t h = r->hour - T0 / (3600 * S);
    cr_assert(r->id < 64 && id_series[r->id] && h >= 0 && h < HOURS, "rollup of id %u hour %lld",
              r->id, (long long)r->hour);
    const recount *c = &by_hour[id_series[r->id] - 1][h];
    cr_expect_eq(r->count, c->n, "series %u hour %lld: rollup count %llu, points %llu", r->id,
                 (long long)h, (unsigned long long)r->count, (unsigned long long)c->n);
    cr_expect_eq(r->sum, c->sum, "series %u hour %lld: sum", r->id, (long long)h);
    cr_expect_eq(r->min, c->min, "series %u hour %lld: min", r->id, (long long)h);
    cr_expect_eq(r->max, c->max, "series %u hour %lld: max", r->id, (long long)h);
    (*checked)++;
    return 0;
}

/*
 * Count every batch's points in the directory. Then seal everything (the
 * late points a killed child left in the head are merged) and compare each
 * series-hour's stored rollup with the hour's points recomputed: a crash
 * in or around a merge must never leave a rollup counting a point twice or
 * missing one.
 */
static void census(uint32_t *count, size_t *total)
{
    mt_engine *e = open_dir();
    cr_assert_not_null(e, "reopen after kill failed");
    memset(count, 0, MAX_BATCHES * sizeof *count);
    memset(by_hour, 0, sizeof by_hour);
    memset(id_series, 0, sizeof id_series);
    *total = 0;
    cr_assert_eq(mt_engine_seal(e, true, NULL), MT_OK);
    for (int s = 0; s < SERIES; s++) {
        char k[256];
        size_t kl = series_key(k, s);
        uint32_t id;
        mt_vtype t;
        if (mt_engine_series_lookup(e, k, kl, &id, &t) != MT_OK) continue;
        cr_assert_lt(id, 64);
        id_series[id] = (uint32_t)s + 1;
        mt_scan *sc;
        cr_assert_eq(mt_scan_open(e, id, T0, T0 + (int64_t)MAX_BATCHES * POINTS * S, &sc), MT_OK);
        mt_points p;
        int rc;
        while ((rc = mt_scan_next(sc, &p)) == MT_OK) {
            for (size_t i = 0; i < p.n; i++) {
                uint64_t j = (uint64_t)((p.ts[i] - T0) / S) / POINTS;
                cr_assert_lt(j, MAX_BATCHES);
                cr_assert_eq(p.vals[i].f, (double)j, "a point of batch %llu has another value",
                             (unsigned long long)j);
                count[j]++;
                (*total)++;
                recount *c = &by_hour[s][(p.ts[i] - T0) / (3600 * S)];
                double v = p.vals[i].f;
                if (!c->n || v < c->min) c->min = v;
                if (!c->n || v > c->max) c->max = v;
                c->sum += v;
                c->n++;
            }
        }
        cr_assert_eq(rc, MT_ENOTFOUND, "scan: %s", mt_strerror(rc));
        mt_scan_close(sc);
    }
    int checked = 0;
    cr_assert_eq(mt_engine_rollups(e, INT32_MIN, INT32_MAX, false, check_rollup, &checked), MT_OK);
    int want = 0;
    for (int s = 0; s < SERIES; s++)
        for (int h = 0; h < HOURS; h++) want += by_hour[s][h].n > 0;
    cr_expect_eq(checked, want, "a rollup for every series-hour with points");
    mt_engine_close(e);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

Test(crash, kill_9_at_random_moments_loses_nothing_acknowledged, .timeout = 600)
{
    snprintf(dir, sizeof dir, "/tmp/metron-crash-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    uint64_t seed = mt_test_seed();
    static uint32_t count[MAX_BATCHES];
    static bool acked[MAX_BATCHES];
    uint64_t next = 0;
    int kills = 0, rounds = 0, in_seal = 0;
    size_t total = 0;
    while (kills < KILLS && next + 64 < MAX_BATCHES) {
        rounds++;
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        uint64_t child_seed = mt_test_rand(&seed);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            child(pfd[1], next, child_seed);
        }
        close(pfd[1]);
        unsigned want = 1 + (unsigned)(mt_test_rand(&seed) % 24);
        uint64_t j, last = 0;
        unsigned got = 0;
        while (got < want && read(pfd[0], &j, sizeof j) == sizeof j) {
            last = j;
            if (j & (SEAL_BEGIN | SEAL_END)) continue;
            acked[j] = true;
            got++;
        }
        struct timespec d = {0, (long)(mt_test_rand(&seed) % 3000000)};
        nanosleep(&d, NULL);
        if (kill(pid, SIGKILL) == 0) kills++;
        while (read(pfd[0], &j, sizeof j) == sizeof j) { /* reports in flight */
            last = j;
            if (!(j & (SEAL_BEGIN | SEAL_END))) acked[j] = true;
        }
        if (last == SEAL_BEGIN) in_seal++; /* killed between the start and the end of a seal */
        close(pfd[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "child failed with status %d", status);

        census(count, &total);
        uint64_t highest = 0;
        for (uint64_t b = 0; b < MAX_BATCHES; b++) {
            if (acked[b])
                cr_assert_eq(count[b], POINTS,
                             "batch %llu was acknowledged but has %u of %d points "
                             "(round %d, MT_TEST_SEED=%llu)",
                             (unsigned long long)b, count[b], POINTS, rounds,
                             (unsigned long long)mt_test_seed());
            else
                cr_assert(count[b] == 0 || count[b] == POINTS,
                          "batch %llu is half there: %u points", (unsigned long long)b, count[b]);
            if (count[b]) highest = b + 1;
        }
        next = highest > next ? highest : next;
    }
    printf("crash test: survived %d kill -9s (%d during a seal) in %d rounds; %zu points present, "
           "every acknowledged batch exactly once\n",
           kills, in_seal, rounds, total);
    cr_expect_geq(kills, KILLS);
    cr_expect_gt(in_seal, 0, "no kill landed inside a seal (MT_TEST_SEED=%llu)",
                 (unsigned long long)mt_test_seed());
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
