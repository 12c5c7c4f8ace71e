/*
 * test_backup.c — `metron backup` and `metron restore` (engine/mt_backup.h)
 * against a real metrond that keeps writing over HTTP while the backup
 * runs: every point acknowledged before a backup began is in its restore,
 * with its value; the restored directory opens in `metron inspect` and in
 * metrond; a second backup copies only the hours whose generation changed;
 * a damaged or non-empty target is refused.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

#define HOUR_NS        (3600LL * 1000000000LL)
#define PRE_HOURS      4       /* sealed hours written before the load */
#define PRE_POINTS     200     /* per sealed hour */
#define MAX_SENT       2000000 /* points the writer may send */
#define LINES_PER_POST 20      /* of which one is late (an hour already sealed) */

typedef struct sent {
    int64_t ts;
    int64_t v;
    int64_t ack_ms; /* monotonic ms when its 204 came; 0: never acknowledged */
} sent;

typedef struct load {
    int port;
    sent *s;
    size_t n;
    int64_t next_v;
    volatile int stop;
    int64_t late_hour_ns; /* start of the sealed hour that gets late points */
    pthread_mutex_t lock;
    pthread_t thread;
    int failures;
} load;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* POST body to /write (precision ns) on a connection of its own; the status. Thread-safe (the
   harness's mth_http shares a static buffer). */
static int post(int port, const char *body, size_t len)
{
    int s = mth_connect(port);
    if (s < 0) return -1;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /write?db=metron&precision=ns HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     len);
    int status = -1;
    if (send(s, head, (size_t)n, MSG_NOSIGNAL) == n &&
        send(s, body, len, MSG_NOSIGNAL) == (ssize_t)len) {
        char resp[512];
        ssize_t r = recv(s, resp, sizeof resp - 1, 0);
        if (r > 0) {
            resp[r] = '\0';
            sscanf(resp, "HTTP/%*s %d", &status);
        }
    }
    close(s);
    return status;
}

/* Write points (ts[i], v[i]) of series bk,src=tag; record them in l (acknowledged or not). */
static void write_points(load *l, const char *tag, const int64_t *ts, size_t n)
{
    char *body = malloc(n * 96 + 1);
    size_t len = 0, first;
    pthread_mutex_lock(&l->lock);
    cr_assert_lt(l->n + n, MAX_SENT);
    first = l->n;
    for (size_t i = 0; i < n; i++) {
        int64_t v = l->next_v++;
        l->s[l->n++] = (sent){ts[i], v, 0};
        len += (size_t)sprintf(body + len, "bk,src=%s v=%" PRId64 "i %" PRId64 "\n", tag, v, ts[i]);
    }
    pthread_mutex_unlock(&l->lock);
    int st = post(l->port, body, len);
    int64_t ack = mth_now_ms();
    pthread_mutex_lock(&l->lock);
    if (st == 204)
        for (size_t i = 0; i < n; i++) l->s[first + i].ack_ms = ack;
    else
        l->failures++;
    pthread_mutex_unlock(&l->lock);
    free(body);
}

static void *writer(void *arg)
{
    load *l = arg;
    int64_t ts[LINES_PER_POST];
    for (int64_t k = 0; !l->stop; k++) {
        int64_t t = now_ns();
        for (int i = 0; i < LINES_PER_POST - 1; i++) ts[i] = t + i; /* the open hour */
        write_points(l, "live", ts, LINES_PER_POST - 1);
        /* one late point into a sealed hour, a different one every 700 ms: each goes quiet
           for late-quiet (1 s) in turn and is merged into a new generation, the old one
           unlinked, while the backups run */
        int64_t back = (mth_now_ms() / 700) % (PRE_HOURS - 1); /* 0 .. PRE_HOURS - 2 */
        int64_t late = l->late_hour_ns - back * HOUR_NS + 1000000000LL + k * 1000;
        write_points(l, "late", &late, 1);
    }
    return NULL;
}

static void load_init(load *l, int port)
{
    memset(l, 0, sizeof *l);
    l->port = port;
    l->s = calloc(MAX_SENT, sizeof *l->s);
    cr_assert_not_null(l->s);
    l->next_v = 1;
    pthread_mutex_init(&l->lock, NULL);
}

/* hour files under dir/blocks */
static int count_blk(const char *dir)
{
    char cmd[512], out[64];
    snprintf(cmd, sizeof cmd, "find %s/blocks -name '*.blk' 2>/dev/null | wc -l", dir);
    mt_test_run(out, sizeof out, cmd);
    return atoi(out);
}

/* Points of PRE_HOURS past hours, then one now: the past hours are sealed (grace 1 s). */
static void preload(load *l, const char *dir)
{
    int64_t hour0 = now_ns() / HOUR_NS * HOUR_NS;
    int64_t ts[PRE_POINTS];
    for (int h = PRE_HOURS; h >= 1; h--) {
        for (int i = 0; i < PRE_POINTS; i++) ts[i] = hour0 - h * HOUR_NS + i * 10000000000LL;
        write_points(l, "pre", ts, PRE_POINTS);
    }
    l->late_hour_ns = hour0 - 2 * HOUR_NS;
    int64_t t = now_ns();
    write_points(l, "live", &t, 1);
    cr_assert_eq(l->failures, 0);
    int64_t end = mth_now_ms() + 20000;
    while (count_blk(dir) < PRE_HOURS && mth_now_ms() < end) mth_sleep_ms(50);
    cr_assert_geq(count_blk(dir), PRE_HOURS, "the past hours were not sealed");
}

/* Run metron backup; its summary line into out; the snapshot's name into name. */
static void backup(const char *data, const char *dest, const char *extra, char *out, size_t cap,
                   char *name, size_t ncap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s backup --data %s --to %s %s 2>&1", METRON_PATH, data, dest,
             extra ? extra : "");
    cr_assert_eq(mt_test_run(out, cap, cmd), 0, "%s: %s", cmd, out);
    char want[512];
    snprintf(want, sizeof want, "backup %s/", dest);
    cr_assert(strstr(out, want) == out, "%s", out);
    const char *p = out + strlen(want);
    snprintf(name, ncap, "%.*s", (int)strcspn(p, ":"), p);
}

/* The numbers of the summary line: hours, copied (hours, bytes), linked, unchanged. */
typedef struct summary {
    unsigned long long hours, copied, copied_bytes, linked, linked_bytes, reused, reused_bytes;
} summary;

static summary parse_summary(const char *out)
{
    summary s = {0};
    const char *p = strstr(out, ": ");
    cr_assert_not_null(p, "%s", out);
    cr_assert_eq(sscanf(p,
                        ": %llu hours (%llu copied, %llu bytes; %llu linked, %llu bytes; %llu "
                        "unchanged, %llu bytes)",
                        &s.hours, &s.copied, &s.copied_bytes, &s.linked, &s.linked_bytes, &s.reused,
                        &s.reused_bytes),
                 7, "%s", out);
    return s;
}

static int by_ts(const void *a, const void *b)
{
    int64_t x = ((const sent *)a)->ts, y = ((const sent *)b)->ts;
    return (x > y) - (x < y);
}

/*
 * Export dir's points of bk and check them against l: every point acknowledged before
 * before_ms is there, every point there has the value written. The number found.
 */
static size_t check_points(const char *dir, load *l, int64_t before_ms)
{
    char cmd[1024], path[256], out[256];
    snprintf(path, sizeof path, "%s.export", dir);
    snprintf(cmd, sizeof cmd, "%s export --data %s bk > %s 2>&1", METRON_PATH, dir, path);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 0, "%s", cmd);
    /* l->s sorted by timestamp (timestamps are unique: each stream its own) */
    pthread_mutex_lock(&l->lock);
    size_t n = l->n;
    sent *s = malloc(n * sizeof *s);
    memcpy(s, l->s, n * sizeof *s);
    pthread_mutex_unlock(&l->lock);
    qsort(s, n, sizeof *s, by_ts);
    char *seen = calloc(n, 1);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[256];
    size_t found = 0;
    while (fgets(line, sizeof line, f)) {
        char tag[16];
        long long v, ts;
        cr_assert_eq(sscanf(line, "bk,src=%15[a-z] v=%lldi %lld", tag, &v, &ts), 3, "%s", line);
        sent key = {.ts = ts};
        sent *hit = bsearch(&key, s, n, sizeof *s, by_ts);
        cr_assert_not_null(hit, "%s: a point never written: %s", dir, line);
        cr_assert_eq(hit->v, v, "%s: wrong value: %s (written %" PRId64 ")", dir, line, hit->v);
        seen[hit - s] = 1;
        found++;
    }
    fclose(f);
    unlink(path);
    size_t missing = 0, acked = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].ack_ms || s[i].ack_ms >= before_ms) continue;
        acked++;
        if (!seen[i] && missing++ < 5)
            cr_log_error("%s: missing ts %" PRId64 " v %" PRId64, dir, s[i].ts, s[i].v);
    }
    cr_assert_eq(missing, 0, "%s: %zu of %zu acknowledged points missing", dir, missing, acked);
    cr_assert_gt(acked, PRE_HOURS * PRE_POINTS);
    free(seen);
    free(s);
    return found;
}

static void inspect_clean(const char *dir)
{
    char cmd[512], out[8192];
    snprintf(cmd, sizeof cmd, "%s inspect --data %s 2>&1", METRON_PATH, dir);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 0, "%s", out);
    cr_assert(!strstr(out, "damaged") && !strstr(out, "missing"), "%s", out);
}

/* metrond on an existing dir (a restore), as mth_start does; /health answers 200. */
static void start_on(mth_daemon *d, const char *dir)
{
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    d->tcp = mth_free_port();
    d->http = mth_free_port();
    snprintf(d->log, sizeof d->log, "%s.log", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "exec %s --data %s --lp-tcp off --lp-udp off --http 127.0.0.1:%d --grace 3600 "
             "--retention-interval 0 >>%s 2>&1",
             METROND_PATH, dir, d->http, d->log);
    d->pid = fork();
    cr_assert_geq(d->pid, 0);
    if (d->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(25))
        if (mth_http(d->http, "GET", "/health", NULL, NULL, 0, NULL, 0) == 200) return;
    cr_assert_fail("metrond did not open the restored %s (log %s)", dir, d->log);
}

static void restore(const char *from, const char *to)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s restore --from %s --data %s 2>&1", METRON_PATH, from, to);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 0, "%s: %s", cmd, out);
    cr_assert(strstr(out, "restored "), "%s", out);
}

static void rm_rf(const char *p)
{
    char cmd[512], out[16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.log'", p, p);
    mt_test_run(out, sizeof out, cmd);
}

Test(backup, under_load_every_acknowledged_point_is_restored, .timeout = 180)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off --grace 1");
    load l;
    load_init(&l, d.http);
    preload(&l, d.dir);

    char dest[] = "/tmp/metron-backup-XXXXXX", out[4096], snap1[64], snap2[64];
    cr_assert_not_null(mkdtemp(dest));
    pthread_create(&l.thread, NULL, writer, &l);
    mth_sleep_ms(1000);
    int64_t t1 = mth_now_ms(); /* everything acknowledged before this must be in snapshot 1 */
    backup(d.dir, dest, NULL, out, sizeof out, snap1, sizeof snap1);
    cr_log_info("%s", out);
    mth_sleep_ms(1500); /* the late hour gets a new generation meanwhile (late-quiet 1 s) */
    int64_t t2 = mth_now_ms();
    backup(d.dir, dest, NULL, out, sizeof out, snap2, sizeof snap2);
    cr_log_info("%s", out);
    summary s2 = parse_summary(out);
    l.stop = 1;
    pthread_join(l.thread, NULL);
    cr_assert_eq(l.failures, 0, "writes failed during the backups");
    cr_assert_gt(l.n, 2000, "the writer wrote too little to call it load: %zu", l.n);
    cr_expect_eq(s2.hours, PRE_HOURS, "%s", out);
    cr_expect_gt(s2.linked, 0, "no hour changed between the backups: %s", out);
    mth_stop(&d);

    /* snapshot 1 by name, snapshot 2 as DEST's LATEST */
    char r1[160], r2[160], p1[256];
    snprintf(r1, sizeof r1, "%s.r1", dest);
    snprintf(r2, sizeof r2, "%s.r2", dest);
    snprintf(p1, sizeof p1, "%s/%s", dest, snap1);
    restore(p1, r1);
    restore(dest, r2);
    size_t n1 = check_points(r1, &l, t1);
    size_t n2 = check_points(r2, &l, t2);
    cr_assert_gt(n2, n1, "snapshot 2 (%zu points) should hold more than snapshot 1 (%zu)", n2, n1);
    inspect_clean(r1);
    inspect_clean(r2);

    /* metrond opens the restore as a writer, seals, and it still holds every point */
    mth_daemon rd;
    start_on(&rd, r2);
    mth_stop(&rd);
    cr_assert_eq(check_points(r2, &l, t2), n2);
    inspect_clean(r2);
    cr_log_info("snapshot 1: %zu points, snapshot 2: %zu points, %zu sent", n1, n2, l.n);

    rm_rf(r1);
    rm_rf(r2);
    rm_rf(dest);
    mth_cleanup(&d);
    free(l.s);
}

Test(backup, incremental_copies_only_the_hours_that_changed, .timeout = 120)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off --grace 1");
    load l;
    load_init(&l, d.http);
    preload(&l, d.dir);
    char dest[] = "/tmp/metron-backup-XXXXXX", out[4096], s1[64], s2[64], s3[64];
    cr_assert_not_null(mkdtemp(dest));

    backup(d.dir, dest, "--copy", out, sizeof out, s1, sizeof s1);
    summary a = parse_summary(out);
    cr_assert_eq(a.hours, PRE_HOURS, "%s", out);
    cr_assert_eq(a.copied, PRE_HOURS, "%s", out);
    cr_assert_gt(a.copied_bytes, 0);

    /* only the open hour changed (its points are in the head log, in index.mdb) */
    int64_t t = now_ns();
    write_points(&l, "live", &t, 1);
    backup(d.dir, dest, "--copy", out, sizeof out, s2, sizeof s2);
    summary b = parse_summary(out);
    cr_assert_eq(b.copied, 0, "%s", out);
    cr_assert_eq(b.reused, PRE_HOURS, "%s", out);
    cr_assert_lt(b.copied_bytes, a.copied_bytes);

    /* unchanged hours share the inode of the previous snapshot's */
    char p[512], cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s/%s && find blocks -name '*.blk' | sort | head -1", dest, s2);
    char rel[256];
    mt_test_run(rel, sizeof rel, cmd);
    rel[strcspn(rel, "\n")] = '\0';
    snprintf(p, sizeof p, "%s/%s/%s", dest, s2, rel);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "%s", p);
    cr_expect_geq(st.st_nlink, 2, "%s is not a link of the previous snapshot's", p);

    /* a late point to one sealed hour: a new generation of it, merged after late-quiet */
    int before = count_blk(d.dir);
    char names[4096], now_names[4096];
    snprintf(cmd, sizeof cmd, "find %s/blocks -name '*.blk' | sort", d.dir);
    mt_test_run(names, sizeof names, cmd);
    int64_t late = l.late_hour_ns + 7;
    write_points(&l, "late", &late, 1);
    int64_t end = mth_now_ms() + 20000;
    do {
        mth_sleep_ms(50);
        mt_test_run(now_names, sizeof now_names, cmd);
    } while (!strcmp(names, now_names) && mth_now_ms() < end);
    cr_assert_str_neq(names, now_names, "the late point was not merged");
    cr_assert_eq(count_blk(d.dir), before);
    int64_t t3 = mth_now_ms();
    backup(d.dir, dest, "--copy", out, sizeof out, s3, sizeof s3);
    summary c = parse_summary(out);
    cr_assert_eq(c.copied, 1, "%s", out);
    cr_assert_eq(c.reused, PRE_HOURS - 1, "%s", out);
    cr_assert_lt(c.copied_bytes, a.copied_bytes, "%s", out);
    cr_log_info("full %llu bytes copied; open hour only: %llu; one hour re-sealed: %llu",
                a.copied_bytes, b.copied_bytes, c.copied_bytes);

#ifdef MT_FAULT_INJECTION
    /* an hour file the snapshot names vanished before it was linked: a fresh snapshot */
    char dest2[] = "/tmp/metron-backup-XXXXXX", s4[64];
    cr_assert_not_null(mkdtemp(dest2));
    snprintf(cmd, sizeof cmd, "MT_FAULT=backup.vanish:2 %s backup --data %s --to %s 2>&1",
             METRON_PATH, d.dir, dest2);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 0, "%s", out);
    cr_assert(strstr(out, ", 1 retries"), "%s", out);
    cr_assert_eq(parse_summary(out).hours, PRE_HOURS, "%s", out);
    snprintf(cmd, sizeof cmd, "ls -a %s", dest2); /* no partial snapshot left behind */
    mt_test_run(names, sizeof names, cmd);
    cr_assert(!strstr(names, "partial"), "%s", names);
    snprintf(s4, sizeof s4, "%s.r", dest2);
    restore(dest2, s4);
    check_points(s4, &l, t3);
    rm_rf(s4);
    rm_rf(dest2);
#endif
    mth_stop(&d);

    char r[160];
    snprintf(r, sizeof r, "%s.r", dest);
    restore(dest, r);
    check_points(r, &l, t3);
    inspect_clean(r);

    /* a target that holds anything is refused, and left as it was */
    snprintf(cmd, sizeof cmd, "%s restore --from %s --data %s 2>&1", METRON_PATH, dest, r);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 1, "%s", out);
    cr_assert(strstr(out, "not empty"), "%s", out);
    inspect_clean(r);
    rm_rf(r);

    /* a flipped byte in a snapshot's hour file: refused, naming it, nothing left behind */
    snprintf(p, sizeof p, "%s/%s/%s", dest, s3, rel);
    FILE *f = fopen(p, "r+b");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 20, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 20, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s restore --from %s --data %s 2>&1", METRON_PATH, dest, r);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 1, "%s", out);
    cr_assert(strstr(out, "checksum") && strstr(out, rel), "%s", out);
    struct stat rs;
    cr_assert_neq(stat(r, &rs), 0, "a failed restore left %s", r);

    /* --url: refused by name */
    snprintf(cmd, sizeof cmd, "%s backup --url http://127.0.0.1:1 --to %s 2>&1", METRON_PATH, dest);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 2, "%s", out);
    cr_assert(strstr(out, "--url is not supported"), "%s", out);

    rm_rf(dest);
    mth_cleanup(&d);
    free(l.s);
}
