/*
 * metrond_harness.h — what an end-to-end test of metrond needs: a daemon
 * on free ports of 127.0.0.1 with a temporary data directory, an HTTP
 * client, a database of its own in the test PostgreSQL, and a webhook
 * receiver that keeps whole requests (any size). Header-only (static
 * functions), for tests/tools/test_*.c. Every wait polls with a deadline.
 */
#ifndef MT_METROND_HARNESS_H
#define MT_METROND_HARNESS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

typedef struct mth_daemon {
    pid_t pid;
    char dir[128];
    int tcp, http; /* ports; UDP shares the TCP port number */
    char log[160];
} mth_daemon;

static inline void mth_sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static inline int64_t mth_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static inline int mth_free_port(void)
{
    return mt_test_free_port();
}

static inline int mth_connect(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        close(s);
        return -1;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

static inline void mth_send_all(int s, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(s, p, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* One HTTP request (headers: complete lines, or NULL); the status, the body into body. */
static inline int mth_http(int port, const char *method, const char *path, const char *headers,
                           const void *data, size_t len, char *body, size_t cap)
{
    int s = mth_connect(port);
    if (s < 0) return -1;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: "
                     "%zu\r\n\r\n",
                     method, path, headers ? headers : "", len);
    mth_send_all(s, req, (size_t)n);
    if (len) mth_send_all(s, data, len);
    static char resp[1 << 20];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = recv(s, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(s);
    int status = 0;
    sscanf(resp, "HTTP/%*s %d", &status);
    char *b = strstr(resp, "\r\n\r\n");
    if (body) snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

/* Start metrond; env: assignments put before it ("MT_FAULT=x:1 "), or NULL. Waits for /health. */
static inline void mth_start(mth_daemon *d, const char *env, const char *args)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/metrond-routing-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
    snprintf(d->log, sizeof d->log, "%s.log", d->dir);
    /* A port found free may be taken before metrond binds it (another test's daemon or
       client): when metrond exits at start, new ports, a few times. */
    for (int attempt = 0; attempt < 4; attempt++) {
        d->tcp = mth_free_port();
        d->http = mth_free_port();
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "%s exec %s --data %s --lp-tcp 127.0.0.1:%d --lp-udp 127.0.0.1:%d --http "
                 "127.0.0.1:%d --grace 3600 --late-quiet 1 --seal-settle 0 --retention-interval 0 "
                 "%s >>%s 2>&1",
                 env ? env : "", METROND_PATH, d->dir, d->tcp, d->tcp, d->http, args ? args : "",
                 d->log);
        d->pid = fork();
        cr_assert_geq(d->pid, 0);
        if (d->pid == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        bool exited = false;
        for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end && !exited; mth_sleep_ms(25)) {
            if (mth_http(d->http, "GET", "/health", NULL, NULL, 0, NULL, 0) == 200) return;
            exited = waitpid(d->pid, NULL, WNOHANG) == d->pid;
        }
        if (!exited) break;
    }
    cr_assert_fail("metrond did not come up (log: %s)", d->log);
}

/* SIGTERM and wait; the exit status must be 0. */
static inline void mth_stop(mth_daemon *d)
{
    kill(d->pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(d->pid, &st, 0), d->pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "metrond exited with status %d (log %s)", st,
              d->log);
}

/* Lines of the daemon's log that contain needle. */
static inline int mth_log_lines(const mth_daemon *d, const char *needle)
{
    FILE *log = fopen(d->log, "r");
    char line[4096];
    int n = 0;
    while (log && fgets(line, sizeof line, log)) n += strstr(line, needle) != NULL;
    if (log) fclose(log);
    return n;
}

static inline int mth_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static inline void mth_cleanup(mth_daemon *d)
{
    nftw(d->dir, mth_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    unlink(d->log);
}

/* Write line protocol (precision s) through /write: 204 or the test fails. */
static inline void mth_write(mth_daemon *d, const char *lines)
{
    char body[512];
    cr_assert_eq(mth_http(d->http, "POST", "/write?db=metron&precision=s", NULL, lines,
                          strlen(lines), body, sizeof body),
                 204, "%s", body);
}

/* ---- a database of its own in the test PostgreSQL ----------------------------------------- */

/* Run one statement through psql; its first row into out ("" on error). */
static inline void mth_pg_value(const char *url, const char *sql, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "psql '%s' -qAtX -c \"%s\" 2>/dev/null", url, sql);
    FILE *p = popen(cmd, "r");
    if (!fgets(out, (int)cap, p)) out[0] = '\0';
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

/* Poll sql until it answers want (10 s). */
static inline bool mth_pg_wait(const char *url, const char *sql, const char *want, char *got,
                               size_t cap)
{
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(50)) {
        mth_pg_value(url, sql, got, cap);
        if (!strcmp(got, want)) return true;
    }
    return false;
}

/* A fresh database "name" in the test PostgreSQL; its URL into url. */
static inline void mth_pg_create(const char *name, char *url, size_t cap)
{
    const char *base = mt_test_pg_url();
    const char *slash = strrchr(base, '/');
    cr_assert_not_null(slash, "%s", base);
    char sql[256], got[64];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
    mth_pg_value(base, sql, got, sizeof got);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    mth_pg_value(base, sql, got, sizeof got);
    snprintf(url, cap, "%.*s/%s", (int)(slash - base), base, name);
    mth_pg_value(url, "SELECT 1", got, sizeof got);
    cr_assert_str_eq(got, "1", "cannot create the database %s", name);
}

static inline void mth_pg_drop(const char *name)
{
    char sql[256], got[64];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    mth_pg_value(mt_test_pg_url(), sql, got, sizeof got);
}

/* ---- a webhook receiver on 127.0.0.1 that keeps whole requests ---------------------------- */

#define MTH_MAX_REQS 32

typedef struct mth_req {
    char ts[32], sig[80], delivery[80];
    char *body; /* malloc'd, NUL-terminated */
    size_t len; /* its bytes (Content-Length) */
} mth_req;

typedef struct mth_receiver {
    int fd, port;
    int fail_first; /* answer 500 to the first this many */
    mth_req got[MTH_MAX_REQS];
    int n;
    pthread_mutex_t lock;
    pthread_t thread;
} mth_receiver;

static inline void mth_header(const char *head, const char *name, char *out, size_t cap)
{
    const char *at = strcasestr(head, name);
    out[0] = '\0';
    if (!at) return;
    at += strlen(name);
    while (*at == ' ') at++;
    size_t n = strcspn(at, "\r\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
}

static inline void *mth_receive(void *arg)
{
    mth_receiver *rv = arg;
    for (;;) {
        int c = accept(rv->fd, NULL, NULL);
        if (c < 0) return NULL;
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap), *end = NULL;
        buf[0] = '\0';
        while (!(end = strstr(buf, "\r\n\r\n")) && len < cap - 1) {
            ssize_t r = read(c, buf + len, cap - 1 - len);
            if (r <= 0) break;
            len += (size_t)r;
            buf[len] = '\0';
        }
        mth_req q = {.body = NULL};
        if (end) {
            size_t head = (size_t)(end + 4 - buf);
            char cl[24], expect[32];
            mth_header(buf, "Content-Length:", cl, sizeof cl);
            mth_header(buf, "Expect:", expect, sizeof expect);
            mth_header(buf, "X-Metron-Timestamp:", q.ts, sizeof q.ts);
            mth_header(buf, "X-Metron-Signature:", q.sig, sizeof q.sig);
            mth_header(buf, "X-Metron-Delivery:", q.delivery, sizeof q.delivery);
            if (strcasestr(expect, "100-continue") &&
                write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) {
            }
            size_t want = (size_t)atol(cl);
            q.body = malloc(want + 1);
            size_t have = len - head < want ? len - head : want;
            memcpy(q.body, end + 4, have);
            while (have < want) {
                ssize_t r = read(c, q.body + have, want - have);
                if (r <= 0) break;
                have += (size_t)r;
            }
            q.body[have] = '\0';
            q.len = have;
        }
        free(buf);
        pthread_mutex_lock(&rv->lock);
        int k = rv->n;
        if (rv->n < MTH_MAX_REQS)
            rv->got[rv->n++] = q;
        else
            free(q.body);
        pthread_mutex_unlock(&rv->lock);
        const char *ans = k < rv->fail_first
                              ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                              : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if (write(c, ans, strlen(ans)) < 0) {
        }
        close(c);
    }
}

static inline void mth_receiver_start(mth_receiver *rv)
{
    pthread_mutex_init(&rv->lock, NULL);
    rv->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(rv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(rv->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(rv->fd, (struct sockaddr *)&a, &l);
    rv->port = ntohs(a.sin_port);
    cr_assert_eq(listen(rv->fd, 16), 0);
    pthread_create(&rv->thread, NULL, mth_receive, rv);
}

static inline void mth_receiver_stop(mth_receiver *rv)
{
    shutdown(rv->fd, SHUT_RDWR);
    close(rv->fd);
    pthread_join(rv->thread, NULL);
    for (int i = 0; i < rv->n; i++) free(rv->got[i].body);
}

static inline int mth_received(mth_receiver *rv)
{
    pthread_mutex_lock(&rv->lock);
    int n = rv->n;
    pthread_mutex_unlock(&rv->lock);
    return n;
}

/* Poll until rv holds at least n requests (ms of deadline); the count it holds. */
static inline int mth_wait_received(mth_receiver *rv, int n, int ms)
{
    for (int64_t end = mth_now_ms() + ms; mth_received(rv) < n && mth_now_ms() < end;)
        mth_sleep_ms(25);
    return mth_received(rv);
}

/* Requests of rv whose body contains needle. */
static inline int mth_count(mth_receiver *rv, const char *needle)
{
    pthread_mutex_lock(&rv->lock);
    int k = 0;
    for (int i = 0; i < rv->n; i++) k += rv->got[i].body && strstr(rv->got[i].body, needle);
    pthread_mutex_unlock(&rv->lock);
    return k;
}

#endif
