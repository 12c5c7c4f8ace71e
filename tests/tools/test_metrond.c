/*
 * test_metrond.c — the daemon over real sockets on 127.0.0.1: a metrond
 * process per test (free ports, a temporary data directory), clients
 * written here, and the data checked by opening the directory with the
 * engine after the daemon stopped.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include "mt_engine.h"
#include "test_util.h"

#define T0 1735689600LL /* seconds */

typedef struct daemon {
    pid_t pid;
    char dir[128];
    int tcp, http; /* ports; UDP shares the TCP port number */
    char log[160];
} daemon_t;

static int connect_tcp(int port)
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

static void send_all(int s, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(s, p, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

/* One HTTP request; returns the status, the body into body (capacity cap). */
static int http(int port, const char *method, const char *path, const char *headers,
                const void *data, size_t len, char *body, size_t cap, char *head, size_t hcap)
{
    int s = connect_tcp(port);
    if (s < 0) return -1;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%sContent-Length: "
                     "%zu\r\n\r\n",
                     method, path, headers ? headers : "", len);
    send_all(s, req, (size_t)n);
    if (len) send_all(s, data, len);
    char resp[65536];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = recv(s, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(s);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    char *b = strstr(resp, "\r\n\r\n");
    if (head) snprintf(head, hcap, "%.*s", b ? (int)(b - resp) : 0, resp);
    if (body) snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

static void start_at(daemon_t *d, const char *extra, ...)
{
    char args[1024];
    va_list ap;
    va_start(ap, extra);
    vsnprintf(args, sizeof args, extra ? extra : "", ap);
    va_end(ap);
    snprintf(d->log, sizeof d->log, "%s.log", d->dir);
    /* A port found free may be taken before metrond binds it (another test's daemon or
       client): when metrond exits at start, new ports, a few times. */
    for (int attempt = 0; attempt < 4; attempt++) {
        if (attempt) d->tcp = mt_test_free_port(), d->http = mt_test_free_port();
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "exec %s --data %s --lp-tcp 127.0.0.1:%d --lp-udp 127.0.0.1:%d --http "
                 "127.0.0.1:%d --grace 3600 --late-quiet 1 --seal-settle 0 --retention-interval 0 "
                 "%s >>%s 2>&1",
                 METROND_PATH, d->dir, d->tcp, d->tcp, d->http, args, d->log);
        d->pid = fork();
        cr_assert_geq(d->pid, 0);
        if (d->pid == 0) {
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        bool exited = false;
        for (int i = 0; i < 200 && !exited; i++) { /* until /health answers 200 */
            char body[256];
            if (http(d->http, "GET", "/health", NULL, NULL, 0, body, sizeof body, NULL, 0) == 200)
                return;
            exited = waitpid(d->pid, NULL, WNOHANG) == d->pid;
            struct timespec t = {0, 25000000};
            nanosleep(&t, NULL);
        }
        if (!exited) break;
    }
    cr_assert_fail("metrond did not come up (log: %s)", d->log);
}

static void start(daemon_t *d, const char *extra)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/metrond-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
    d->tcp = mt_test_free_port();
    d->http = mt_test_free_port();
    start_at(d, "%s", extra ? extra : "");
}

/* SIGTERM and wait; the exit status must be 0. */
static void stop(daemon_t *d)
{
    kill(d->pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(d->pid, &st, 0), d->pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "metrond exited with status %d (log %s)", st,
              d->log);
}

/* Lines of the daemon's log that contain needle. */
static int log_lines(const daemon_t *d, const char *needle)
{
    FILE *log = fopen(d->log, "r");
    char line[1024];
    int n = 0;
    while (log && fgets(line, sizeof line, log)) n += strstr(line, needle) != NULL;
    if (log) fclose(log);
    return n;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void cleanup(daemon_t *d)
{
    nftw(d->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    unlink(d->log);
}

/* Points of measurement m, field f, tag host=h in the directory (the daemon stopped). */
static size_t count_points(const char *dir, const char *m, const char *host, const char *field,
                           double *sum)
{
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    char key[512];
    mt_name tk[1] = {{"host", 4}}, tv[1] = {{host, strlen(host)}};
    size_t kl = mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, tk, tv, 1,
                              (mt_name){field, strlen(field)});
    uint32_t id;
    mt_vtype t;
    size_t n = 0;
    if (sum) *sum = 0;
    if (mt_engine_series_lookup(e, key, kl, &id, &t) == MT_OK) {
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, INT64_MIN, INT64_MAX, &s), MT_OK);
        mt_points p;
        while (mt_scan_next(s, &p) == MT_OK) {
            n += p.n;
            for (size_t i = 0; sum && i < p.n; i++)
                *sum += t == MT_VT_FLOAT ? p.vals[i].f : (double)p.vals[i].i;
        }
        mt_scan_close(s);
    }
    mt_engine_close(e);
    return n;
}

/* ---- TCP ------------------------------------------------------------------------------ */

typedef struct client_arg {
    int port, id, lines;
} client_arg;

static void *tcp_client(void *p)
{
    client_arg *a = p;
    int s = connect_tcp(a->port);
    if (s < 0) abort();
    size_t cap = (size_t)a->lines * 64, len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < a->lines; i++)
        len += (size_t)snprintf(buf + len, cap - len, "tcp,host=c%d v=%di %lld000000000\n", a->id,
                                i, T0 + i);
    /* write in uneven pieces so lines split across reads */
    size_t off = 0, piece = 1;
    while (off < len) {
        size_t n = piece < len - off ? piece : len - off;
        if (send(s, buf + off, n, MSG_NOSIGNAL) != (ssize_t)n) abort();
        off += n;
        piece = piece * 7 % 997 + 1;
    }
    close(s);
    free(buf);
    return NULL;
}

Test(metrond, many_concurrent_tcp_clients, .timeout = 120)
{
    daemon_t d;
    start(&d, NULL);
    enum { CLIENTS = 8, LINES = 2000 };
    pthread_t th[CLIENTS];
    client_arg a[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        a[i] = (client_arg){d.tcp, i, LINES};
        pthread_create(&th[i], NULL, tcp_client, &a[i]);
    }
    for (int i = 0; i < CLIENTS; i++) pthread_join(th[i], NULL);
    stop(&d); /* stop drains: everything received is committed before exit */
    for (int i = 0; i < CLIENTS; i++) {
        char host[16];
        snprintf(host, sizeof host, "c%d", i);
        double sum;
        cr_expect_eq(count_points(d.dir, "tcp", host, "v", &sum), LINES, "client %d", i);
        cr_expect_eq(sum, (double)LINES * (LINES - 1) / 2);
    }
    cleanup(&d);
}

Test(metrond, a_slow_writer_pauses_reading_and_loses_nothing, .timeout = 120)
{
    daemon_t d;
    /* a budget smaller than one read's batch: every read pauses the listeners */
    start(&d, "--mem-budget 4096");
    enum { CLIENTS = 4, LINES = 5000 };
    pthread_t th[CLIENTS];
    client_arg a[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        a[i] = (client_arg){d.tcp, i, LINES};
        pthread_create(&th[i], NULL, tcp_client, &a[i]);
    }
    for (int i = 0; i < CLIENTS; i++) pthread_join(th[i], NULL);
    char body[65536];
    cr_assert_eq(http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    const char *p = strstr(body, "\nmetron_ingest_pauses_total ");
    cr_assert_not_null(p);
    cr_expect_gt(atof(p + 28), 0, "reading never paused");
    stop(&d);
    for (int i = 0; i < CLIENTS; i++) {
        char host[16];
        snprintf(host, sizeof host, "c%d", i);
        cr_expect_eq(count_points(d.dir, "tcp", host, "v", NULL), LINES, "client %d", i);
    }
    cleanup(&d);
}

Test(metrond, tcp_lines_split_at_every_byte_and_bad_lines_do_not_close_the_stream, .timeout = 120)
{
    daemon_t d;
    start(&d, NULL);
    const char *payload = "split,host=a v=1.5 1735689600000000000\r\n"
                          "this is not line protocol\n"
                          "split,host=a v=2.5 1735689610000000000\n"
                          "split,host=a\\ b v=3.5,w=\"x\\\"y\" 1735689620000000000";
    int s = connect_tcp(d.tcp);
    for (size_t i = 0; payload[i]; i++) {
        send_all(s, payload + i, 1);
        if (i % 16 == 0) {
            struct timespec t = {0, 1000000};
            nanosleep(&t, NULL);
        }
    }
    close(s);
    struct timespec t = {0, 200000000};
    nanosleep(&t, NULL);
    char body[65536];
    cr_assert_eq(http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect(strstr(body, "metron_lines_rejected_total{reason=\"missing_field_value\"} 1"), "%s",
              body);
    stop(&d);
    double sum;
    cr_expect_eq(count_points(d.dir, "split", "a", "v", &sum), 2);
    cr_expect_eq(sum, 4.0);
    cr_expect_eq(count_points(d.dir, "split", "a b", "v", &sum), 1, "last line, no newline");
    cleanup(&d);
}

/* ---- UDP -------------------------------------------------------------------------------- */

Test(metrond, udp_datagrams_are_batches, .timeout = 60)
{
    daemon_t d;
    start(&d, "--lp-precision s");
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)d.tcp),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < 50; i++) {
        char dg[256];
        int n = snprintf(dg, sizeof dg, "udp,host=u v=%d %lld\nudp,host=u v=%d %lld\n", i,
                         T0 + 2 * i, i, T0 + 2 * i + 1);
        cr_assert_eq(sendto(s, dg, (size_t)n, 0, (struct sockaddr *)&a, sizeof a), n);
        struct timespec t = {0, 2000000};
        nanosleep(&t, NULL);
    }
    close(s);
    struct timespec t = {0, 300000000};
    nanosleep(&t, NULL);
    stop(&d);
    cr_expect_eq(count_points(d.dir, "udp", "u", "v", NULL), 100);
    cleanup(&d);
}

/* ---- HTTP ----------------------------------------------------------------------------- */

Test(metrond, http_write_ping_health_and_errors, .timeout = 60)
{
    daemon_t d;
    start(&d, "--max-body 4096");
    char body[65536], head[4096];
    cr_expect_eq(http(d.http, "GET", "/ping", NULL, NULL, 0, body, sizeof body, head, sizeof head),
                 204);
    cr_expect(strstr(head, "X-Influxdb-Version: "), "%s", head);
    cr_expect_eq(http(d.http, "HEAD", "/ping", NULL, NULL, 0, body, sizeof body, NULL, 0), 204);
    cr_expect_eq(http(d.http, "GET", "/health", NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect(strstr(body, "\"status\":\"pass\""), "%s", body);

    const char *good = "web,host=h v=1 1735689600\nweb,host=h v=2 1735689601\n";
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, good, strlen(good),
                      body, sizeof body, NULL, 0),
                 204, "%s", body);
    const char *partial = "web,host=h v=3 1735689602\nweb,host=h v=oops 1735689603\n"
                          "web,host=h v=4 1735689604\nweb,host=h v=5,v= 1735689605\n";
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, partial,
                      strlen(partial), body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "{\"error\":\"partial write: unable to parse 'web,host=h v=oops "
                           "1735689603': invalid field value \\\"oops\\\""),
              "%s", body);
    cr_expect(strstr(body, "dropped=2\"}"), "%s", body);
    cr_expect_eq(http(d.http, "POST", "/api/v2/write?org=o&bucket=metron&precision=s", NULL,
                      partial, strlen(partial), body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "{\"code\":\"invalid\",\"message\":\"unable to parse"), "%s", body);
    /* a type conflict: the series is float */
    const char *conflict = "web,host=h v=7i 1735689606\nweb,host=h v=8 1735689607\n";
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, conflict,
                      strlen(conflict), body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "partial write: field type conflict"), "%s", body);
    cr_expect(strstr(body, "dropped=1"), "%s", body);
    /* gzip */
    const char *plain = "web,host=g v=1 1735689600\nweb,host=g v=2 1735689601\n";
    unsigned char gz[256];
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)plain;
    z.avail_in = (uInt)strlen(plain);
    z.next_out = gz;
    z.avail_out = sizeof gz;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gzlen = sizeof gz - z.avail_out;
    deflateEnd(&z);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", "Content-Encoding: gzip\r\n",
                      gz, gzlen, body, sizeof body, NULL, 0),
                 204, "%s", body);
    /* limits and mistakes */
    char big[8192];
    memset(big, 'x', sizeof big);
    cr_expect_eq(
        http(d.http, "POST", "/write?db=metron", NULL, big, sizeof big, body, sizeof body, NULL, 0),
        413);
    cr_expect_eq(
        http(d.http, "POST", "/write", NULL, good, strlen(good), body, sizeof body, NULL, 0), 400);
    cr_expect(strstr(body, "database is required"), "%s", body);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=fortnight", NULL, good,
                      strlen(good), body, sizeof body, NULL, 0),
                 400);
    cr_expect_eq(http(d.http, "GET", "/nope", NULL, NULL, 0, body, sizeof body, NULL, 0), 404);
    cr_expect_eq(http(d.http, "GET", "/write?db=metron", NULL, NULL, 0, body, sizeof body, NULL, 0),
                 405);
    stop(&d);
    double sum;
    cr_expect_eq(count_points(d.dir, "web", "h", "v", &sum), 5);
    cr_expect_eq(sum, 1 + 2 + 3 + 4 + 8.0);
    cr_expect_eq(count_points(d.dir, "web", "g", "v", NULL), 2);
    cleanup(&d);
}

Test(metrond, the_series_limit_refuses_new_series_only, .timeout = 60)
{
    daemon_t d;
    start(&d, "--max-series 2");
    char body[65536]; /* all of /metrics */
    const char *lines = "lim,host=a v=1 1735689600\nlim,host=b v=1 1735689600\n"
                        "lim,host=c v=1 1735689600\nlim,host=a v=2 1735689601\n";
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "partial write: max series limit exceeded: series 'lim,host=c v'"), "%s",
              body);
    cr_expect(strstr(body, "dropped=1"), "%s", body);
    cr_assert_eq(http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect(strstr(body, "\nmetron_points_over_series_limit_total 1\n"), "%s", body);
    stop(&d);
    cr_expect_eq(count_points(d.dir, "lim", "a", "v", NULL), 2);
    cr_expect_eq(count_points(d.dir, "lim", "c", "v", NULL), 0);
    cleanup(&d);
}

Test(metrond, a_point_far_in_the_future_is_refused_per_line, .timeout = 60)
{
    daemon_t d;
    start(&d, NULL); /* max_future defaults to 600 s */
    char body[4096], lines[512];
    long long now = (long long)time(NULL);
    snprintf(lines, sizeof lines,
             "fut,host=a v=1 %lld\nfut,host=a v=2 %lld\nfut,host=a v=3 9223372036\n", now,
             now + 86400);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "timestamp out of range") && strstr(body, "dropped=2"), "%s", body);
    /* a window of 2 days takes the second; the int64 edge is refused whatever the window */
    stop(&d);
    start_at(&d, "--max-future 172800");
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "dropped=1"), "%s", body);
    stop(&d);
    cr_expect_eq(count_points(d.dir, "fut", "a", "v", NULL), 2, "the good line, and the second");
    /* with retention running (90 days by default), a point it would remove is refused per line */
    start_at(&d, "--retention-interval 3600");
    snprintf(lines, sizeof lines, "old,host=a v=1 %lld\nold,host=a v=2 %lld\n", now - 91 * 86400,
             now - 89 * 86400);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "older than the [retention] policy keeps for it") &&
                  strstr(body, "(line 1)") && strstr(body, "dropped=1"),
              "%s", body);
    stop(&d);
    cr_expect_eq(count_points(d.dir, "old", "a", "v", NULL), 1, "the 89-day-old point is kept");
    cleanup(&d);
}

Test(metrond, the_query_api_answers_json_and_csv, .timeout = 60)
{
    daemon_t d;
    start(&d, NULL);
    char body[65536];
    const char *lines =
        "q,host=a v=1 1735689600\nq,host=a v=3 1735689610\nq,host=b v=10 1735689620\n"
        "q,host=c v=7 1735700000\n"; /* three hours later: the first hour is sealed */
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    cr_assert_eq(http(d.http, "GET",
                      "/api/v1/query?select=q.v&from=1735689600&to=1735689660&agg=count,avg,p50"
                      "&by=none",
                      NULL, NULL, 0, body, sizeof body, NULL, 0),
                 200, "%s", body);
    cr_expect_str_eq(body, "{\"columns\":[\"time\",\"count\",\"avg\",\"p50\"],"
                           "\"rows\":[[\"2025-01-01T00:00:00Z\",3,4.666666666666667,3]]}\n");
    cr_assert_eq(http(d.http, "GET",
                      "/api/v1/query?select=q.v%7Bhost%3D%22a%22%7D&from=2025-01-01T00:00:00Z"
                      "&to=2025-01-01T00:01:00Z&format=csv",
                      NULL, NULL, 0, body, sizeof body, NULL, 0),
                 200, "%s", body);
    cr_expect_str_eq(body, "series,time,value\n\"q,host=a v\",2025-01-01T00:00:00Z,1\n"
                           "\"q,host=a v\",2025-01-01T00:00:10Z,3\n");
    cr_expect_eq(http(d.http, "GET", "/api/v1/query?select=q.v%7Bhost%3Da%7D&from=-1h&to=now", NULL,
                      NULL, 0, body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "double quotes"), "%s", body);
    cr_expect_eq(
        http(d.http, "GET", "/api/v1/query?select=q.v", NULL, NULL, 0, body, sizeof body, NULL, 0),
        400);
    cr_expect(strstr(body, "from is required"), "%s", body);
    /* the CLI's --url mode goes through this API */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s query --url http://127.0.0.1:%d 'q.v' --from 1735689600 --to 1735689660 "
             "--agg count,max --by host --format csv",
             METRON_PATH, d.http);
    FILE *p = popen(cmd, "r");
    size_t n = fread(body, 1, sizeof body - 1, p);
    body[n] = '\0';
    cr_expect_eq(pclose(p), 0);
    cr_expect_str_eq(body, "host,time,count,max\na,2025-01-01T00:00:00Z,2,3\n"
                           "b,2025-01-01T00:00:00Z,1,10\n");
    /* the sealed hour's rollup, from /api/v1/rollup and from metron rollup --url */
    const char *want =
        "hour_bucket,business_id,metric_category,metric_name,sample_count,"
        "avg_value,min_value,max_value,median_value,p95_value,p99_value\n"
        "2025-01-01T00:00:00Z,,q,v,3,4.666666666666667,1,10,3,9.299999999999999,9.86\n";
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(http(d.http, "GET",
                          "/api/v1/rollup?from=2025-01-01T00:00:00Z&to=2025-01-01T01:00:00Z"
                          "&format=csv",
                          NULL, NULL, 0, body, sizeof body, NULL, 0),
                     200, "%s", body);
        if (strchr(strchr(body, '\n') + 1, '\n')) break; /* sealed: a row */
        usleep(50000);
    }
    cr_expect_str_eq(body, want);
    snprintf(cmd, sizeof cmd,
             "%s rollup --url http://127.0.0.1:%d --from 2025-01-01T00:00:00Z --to "
             "2025-01-01T01:00:00Z --format csv 'q.v{host=\"b\"}'",
             METRON_PATH, d.http);
    p = popen(cmd, "r");
    n = fread(body, 1, sizeof body - 1, p);
    body[n] = '\0';
    cr_expect_eq(pclose(p), 0);
    cr_expect_str_eq(body, want);
    cr_expect_eq(http(d.http, "GET", "/api/v1/rollup?from=1735689600&to=1735693200&step=90m", NULL,
                      NULL, 0, body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "whole number of hours"), "%s", body);
    stop(&d);
    cleanup(&d);
}

/* The [retention] policy of the config file, applied on the daemon's own schedule. */
Test(metrond, retention_runs_on_its_interval_with_the_config_policy, .timeout = 60)
{
    daemon_t d;
    char conf[] = "/tmp/metrond-retention-XXXXXX.ini";
    int fd = mkstemps(conf, 4);
    cr_assert_geq(fd, 0);
    const char *ini = "[metrond]\nretention_interval = 1\n[retention]\ndefault = 2d\n"
                      "measurement.keep = forever\nrollups = 400d\n";
    cr_assert_eq(write(fd, ini, strlen(ini)), (ssize_t)strlen(ini));
    close(fd);
    char extra[256]; /* the flag: the harness turns retention off with one */
    snprintf(extra, sizeof extra, "--config %s --retention-interval 1", conf);
    /* the 3-day-old points are written while no policy runs (the 2d one would refuse them) */
    start(&d, NULL);
    long long now = (long long)time(NULL), old = now - 3 * 86400;
    char lines[512], body[4096];
    snprintf(lines, sizeof lines, "gone v=1 %lld\nkeep v=2 %lld\nrecent v=3 %lld\n", old, old, now);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    stop(&d);
    start_at(&d, "%s", extra);
    /* and with it, a new point of gone as old is refused, one of keep (kept forever) is not */
    snprintf(lines, sizeof lines, "gone v=4 %lld\nkeep v=5 %lld\n", old + 1, old + 1);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 400);
    cr_expect(strstr(body, "series 'gone v'") && strstr(body, "(line 1)") &&
                  strstr(body, "dropped=1"),
              "%s", body);
    char q[256];
    snprintf(q, sizeof q, "/api/v1/query?select=gone.v&from=%lld&to=%lld&format=csv", old - 1,
             now + 1);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        cr_assert_eq(http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
        gone = !strchr(strchr(body, '\n') + 1, '\n'); /* the header alone */
        if (!gone) usleep(50000);
    }
    cr_expect(gone, "3-day-old points outlived a 2d policy: %s", body);
    snprintf(q, sizeof q, "/api/v1/query?select=keep.v&from=%lld&to=%lld&format=csv", old - 1,
             now + 1);
    cr_assert_eq(http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect(strstr(body, ",2\n") && strstr(body, ",5\n"), "measurement.keep = forever: %s", body);
    snprintf(q, sizeof q, "/api/v1/query?select=recent.v&from=%lld&to=%lld&format=csv", old - 1,
             now + 1);
    cr_assert_eq(http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect(strstr(body, ",3\n"), "%s", body);
    stop(&d);
    cr_expect_geq(log_lines(&d, "retention applied"), 1, "the log says what retention removed (%s)",
                  d.log);
    cleanup(&d);
    unlink(conf);
}

Test(metrond, metrics_are_prometheus_text, .timeout = 60)
{
    daemon_t d;
    start(&d, NULL);
    char body[65536], head[4096];
    cr_assert_eq(
        http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body, head, sizeof head), 200);
    cr_expect(strstr(head, "Content-Type: text/plain; version=0.0.4"), "%s", head);
    /* every sample's family has one HELP and one TYPE before it */
    char *save, *line = strtok_r(body, "\n", &save);
    char family[128] = "";
    int samples = 0;
    for (; line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%127s", family);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) continue;
        cr_expect(strncmp(line, family, strlen(family)) == 0, "sample %s outside %s", line, family);
        samples++;
    }
    cr_expect_gt(samples, 20);
    stop(&d);
    cleanup(&d);
}

Test(metrond, idle_connections_close_and_the_connection_limit_holds, .timeout = 60)
{
    daemon_t d;
    start(&d, "--idle-timeout 1 --max-conns 3");
    int a = connect_tcp(d.tcp), b = connect_tcp(d.tcp), c = connect_tcp(d.tcp);
    cr_assert(a >= 0 && b >= 0 && c >= 0);
    /* the third TCP connection plus the health check's leave no room: c is closed */
    struct pollfd p = {.fd = c, .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 3000), 1);
    char x;
    cr_expect_eq(recv(c, &x, 1, 0), 0, "closed by the server");
    p.fd = a;
    cr_expect_eq(poll(&p, 1, 4000), 1, "idle connection closed after 1 s");
    close(a), close(b), close(c);
    stop(&d);
    cleanup(&d);
}

/* ---- kill -9 ---------------------------------------------------------------------------- */

Test(metrond, kill_9_loses_no_acknowledged_write, .timeout = 180)
{
    daemon_t d;
    start(&d, NULL);
    uint64_t seed = mt_test_seed();
    int acked = 0, sent = 0;
    for (int round = 0; round < 3; round++) {
        int stop_after = acked + 50 + (int)(mt_test_rand(&seed) % 100);
        for (; acked < stop_after; sent++) {
            char line[128];
            int n = snprintf(line, sizeof line, "ack,host=k v=%d %lld\n", sent, T0 + sent);
            char q[64];
            snprintf(q, sizeof q, "/write?db=metron&precision=s");
            if (http(d.http, "POST", q, NULL, line, (size_t)n, NULL, 0, NULL, 0) != 204) break;
            acked = sent + 1;
        }
        kill(d.pid, SIGKILL);
        waitpid(d.pid, NULL, 0);
        start_at(&d, NULL); /* same directory, same ports */
    }
    stop(&d);
    double sum;
    size_t n = count_points(d.dir, "ack", "k", "v", &sum);
    cr_expect_eq(n, (size_t)acked, "%d acknowledged, %zu present", acked, n);
    cr_expect_eq(sum, (double)acked * (acked - 1) / 2);
    cleanup(&d);
}

/* ---- tenants ---------------------------------------------------------------------------- */

/* Points of series `measurement,<tags> field` (tags already in key order: "k=v,k=v"). */
static size_t count_series(const char *dir, const char *m, const char *tags, const char *field)
{
    mt_name tk[8], tv[8];
    size_t nt = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", tags);
    for (char *save, *t = strtok_r(buf, ",", &save); t && nt < 8; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        tk[nt] = (mt_name){t, (size_t)(eq - t)};
        tv[nt++] = (mt_name){eq + 1, strlen(eq + 1)};
    }
    char key[512];
    size_t kl = mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, tk, tv, nt,
                              (mt_name){field, strlen(field)});
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    uint32_t id;
    mt_vtype t;
    size_t n = 0;
    if (mt_engine_series_lookup(e, key, kl, &id, &t) == MT_OK) {
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, INT64_MIN, INT64_MAX, &s), MT_OK);
        mt_points p;
        while (mt_scan_next(s, &p) == MT_OK) n += p.n;
        mt_scan_close(s);
    }
    mt_engine_close(e);
    return n;
}

Test(metrond, tokens_bind_each_write_to_its_tenant, .timeout = 60)
{
    char tokens[] = "/tmp/metrond-tokens-XXXXXX";
    close(mkstemp(tokens));
    /* the hashes come from metrond itself, as an operator would make them */
    char cmd[512], hex[2][80];
    const char *toks[2] = {"secret-a", "root-token"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "printf %%s %s | %s --hash-token", toks[i], METROND_PATH);
        FILE *p = popen(cmd, "r");
        cr_assert(fgets(hex[i], sizeof hex[i], p));
        pclose(p);
        hex[i][strcspn(hex[i], "\n")] = '\0';
        cr_assert_eq(strlen(hex[i]), 64);
    }
    FILE *f = fopen(tokens, "w");
    fprintf(f, "# business_id  sha256(token)\ntenant-a %s\n* %s\n", hex[0], hex[1]);
    fclose(f);
    daemon_t d;
    char extra[256];
    snprintf(extra, sizeof extra, "--tokens-file %s", tokens);
    start(&d, extra);
    char body[4096];
    const char *line = "tenant,host=h v=1 1735689600\n";
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, line, strlen(line),
                      body, sizeof body, NULL, 0),
                 401);
    cr_expect(strstr(body, "unable to parse authentication credentials"), "%s", body);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s",
                      "Authorization: Token nope\r\n", line, strlen(line), body, sizeof body, NULL,
                      0),
                 401);
    cr_expect(strstr(body, "authorization failed"), "%s", body);
    /* stamped with the token's tenant */
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s",
                      "Authorization: Token secret-a\r\n", line, strlen(line), body, sizeof body,
                      NULL, 0),
                 204, "%s", body);
    /* another tenant's line: nothing of the request is written */
    const char *foreign = "tenant,host=h v=2 1735689601\ntenant,host=h,business_id=tenant-b v=3 "
                          "1735689602\n";
    cr_expect_eq(http(d.http, "POST", "/api/v2/write?org=o&bucket=b&precision=s",
                      "Authorization: Bearer secret-a\r\n", foreign, strlen(foreign), body,
                      sizeof body, NULL, 0),
                 403);
    cr_expect(strstr(body, "\"code\":\"forbidden\""), "%s", body);
    /* the 1.x password parameter, and a system token that may write any tenant */
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s&u=me&p=secret-a", NULL, line,
                      strlen(line), body, sizeof body, NULL, 0),
                 204);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s",
                      "Authorization: Token root-token\r\n", foreign, strlen(foreign), body,
                      sizeof body, NULL, 0),
                 204, "%s", body);
    cr_expect_lt(connect_tcp(d.tcp), 0, "raw TCP is off when tokens are configured");
    stop(&d);
    cr_expect_eq(count_series(d.dir, "tenant", "business_id=tenant-a,host=h", "v"), 1,
                 "two writes of the same point");
    cr_expect_eq(count_series(d.dir, "tenant", "business_id=tenant-b,host=h", "v"), 1);
    cr_expect_eq(count_series(d.dir, "tenant", "host=h", "v"), 1, "the system token's own line");
    unlink(tokens);
    cleanup(&d);
}

/* The tokens file of the read tests: tenant-a, tenant-b and a system token. */
static void tokens_file(char *path)
{
    char cmd[512], hex[3][80], text[1024];
    const char *toks[3] = {"token-a", "token-b", "token-root"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "printf %%s %s | %s --hash-token", toks[i], METROND_PATH);
        FILE *p = popen(cmd, "r");
        cr_assert(fgets(hex[i], sizeof hex[i], p));
        pclose(p);
        hex[i][strcspn(hex[i], "\n")] = '\0';
    }
    snprintf(text, sizeof text, "tenant-a %s\ntenant-b %s\n* %s\n", hex[0], hex[1], hex[2]);
    mt_test_file(path, text);
}

/* GET path with a token (NULL: none); the status, the body into body. */
static int get_as(const daemon_t *d, const char *token, const char *path, char *body, size_t cap)
{
    char h[128];
    snprintf(h, sizeof h, "Authorization: Token %s\r\n", token ? token : "");
    return http(d->http, "GET", path, token ? h : NULL, NULL, 0, body, cap, NULL, 0);
}

Test(metrond, every_read_needs_a_token_and_sees_only_its_tenant, .timeout = 90)
{
    char tokens[] = "/tmp/metrond-tokens-XXXXXX", rules[] = "/tmp/metrond-rules-XXXXXX";
    tokens_file(tokens);
    mt_test_file(rules, "[rule hot]\nmetric_name = temp.c\nevaluation_window = 10m\n"
                        "critical_threshold = 50\ncomparison_operator = gt\n");
    daemon_t d;
    char extra[512];
    snprintf(extra, sizeof extra, "--tokens-file %s --rules-file %s --alert-interval 1", tokens,
             rules);
    start(&d, extra);
    char body[65536], lines[1024];
    long long now = (long long)time(NULL);
    /* each tenant writes with its own token; the hour after T0 is sealed by the last line */
    snprintf(lines, sizeof lines,
             "q,host=a v=1 %lld\nq,host=a v=3 %lld\ntemp,host=a c=90 %lld\nq,host=a v=5 %lld\n", T0,
             T0 + 10, now, T0 + 3 * 3600);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s",
                      "Authorization: Token token-a\r\n", lines, strlen(lines), body, sizeof body,
                      NULL, 0),
                 204, "%s", body);
    snprintf(lines, sizeof lines, "q,host=b v=100 %lld\ntemp,host=b c=95 %lld\nq,host=b v=7 %lld\n",
             T0 + 20, now, T0 + 3 * 3600);
    /* HTTP Basic with the token as the password, as InfluxDB 1.x clients send it */
    unsigned char basic[64];
    EVP_EncodeBlock(basic, (const unsigned char *)"someone:token-b", 15);
    char h[128];
    snprintf(h, sizeof h, "Authorization: Basic %s\r\n", basic);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", h, lines, strlen(lines), body,
                      sizeof body, NULL, 0),
                 204, "%s", body);
    EVP_EncodeBlock(basic, (const unsigned char *)"someone:token-x", 15);
    snprintf(h, sizeof h, "Authorization: Basic %s\r\n", basic);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", h, lines, strlen(lines), body,
                      sizeof body, NULL, 0),
                 401, "a wrong password");
    const char *hostile[] = {"Basic ====\r\n",       "Basic ========\r\n", "Basic AA==\r\n",
                             "Basic dG9rZW4tYg\r\n", "Bearer \r\n",        "Token  \r\n"};
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        snprintf(h, sizeof h, "Authorization: %s", hostile[i]);
        cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", h, lines, strlen(lines),
                          body, sizeof body, NULL, 0),
                     401, "%s", hostile[i]);
    }

    /* no token: every path but /ping, /health and /ready is refused, unknown ones included */
    const char *reads[] = {"/api/v1/query?select=q.v&from=0&to=now", "/api/v1/rollup?from=0&to=now",
                           "/api/v1/alerts", "/metrics", "/no/such/path"};
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++) {
        cr_expect_eq(get_as(&d, NULL, reads[i], body, sizeof body), 401, "%s", reads[i]);
        cr_expect_eq(get_as(&d, "wrong", reads[i], body, sizeof body), 401, "%s", reads[i]);
    }
    cr_expect_eq(http(d.http, "GET", "/ping", NULL, NULL, 0, body, sizeof body, NULL, 0), 204);
    cr_expect_eq(http(d.http, "GET", "/ready", NULL, NULL, 0, body, sizeof body, NULL, 0), 200);
    cr_expect_eq(get_as(&d, "token-a", "/metrics", body, sizeof body), 403,
                 "a tenant's token does not read the daemon's counters");
    cr_expect_eq(get_as(&d, "token-root", "/metrics", body, sizeof body), 200);
    cr_expect(strstr(body, "metron_http_unauthorized_total 1"), "counted: %.300s", body);

    /* tenant A asks for B's series by name, by regex, and for everything: only A's come back */
    const char *selects[] = {"q.v", "q.v%7Bbusiness_id%3D%22tenant-b%22%7D",
                             "q.v%7Bbusiness_id%3D~%22.%2A%22%7D", "q.v%7Bhost%3D%22b%22%7D"};
    for (size_t i = 0; i < sizeof selects / sizeof *selects; i++) {
        char path[512];
        snprintf(path, sizeof path, "/api/v1/query?select=%s&from=0&to=now&format=csv", selects[i]);
        cr_assert_eq(get_as(&d, "token-a", path, body, sizeof body), 200, "%s", body);
        cr_expect_null(strstr(body, "tenant-b"), "%s: %s", selects[i], body);
        cr_expect_null(strstr(body, "host=b"), "%s: %s", selects[i], body);
        if (i == 0) cr_expect(strstr(body, "business_id=tenant-a,host=a v"), "%s", body);
        cr_assert_eq(get_as(&d, "token-root", path, body, sizeof body), 200);
        if (i < 3) cr_expect(strstr(body, "tenant-b"), "the system token sees B: %s", body);
    }
    /* query parameters u and p, as InfluxDB 1.x */
    cr_expect_eq(http(d.http, "GET", "/api/v1/query?select=q.v&from=0&to=now&u=x&p=token-b", NULL,
                      NULL, 0, body, sizeof body, NULL, 0),
                 200);
    cr_expect(strstr(body, "tenant-b") && !strstr(body, "tenant-a"), "%s", body);

    /* rollups: groups and series of the sealed hour, with and without a selector */
    const char *rollups[] = {"/api/v1/rollup?from=0&to=now&format=csv",
                             "/api/v1/rollup?from=0&to=now&format=csv&series=1",
                             "/api/v1/rollup?select=q.v&from=0&to=now&format=csv",
                             "/api/v1/rollup?select=q.v%7Bbusiness_id%3D%22tenant-b%22%7D"
                             "&from=0&to=now&format=csv&series=1"};
    /* B's point of the sealed first hour is a backfill: its re-seal follows the 204 */
    for (int i = 0; i < 400; i++) {
        get_as(&d, "token-root", rollups[0], body, sizeof body);
        if (strstr(body, "tenant-b")) break;
        usleep(25000);
    }
    for (size_t i = 0; i < sizeof rollups / sizeof *rollups; i++) {
        cr_assert_eq(get_as(&d, "token-a", rollups[i], body, sizeof body), 200, "%s", body);
        cr_expect_null(strstr(body, "tenant-b"), "%s: %s", rollups[i], body);
        if (i < 3) cr_expect(strstr(body, "tenant-a"), "%s: %s", rollups[i], body);
        cr_assert_eq(get_as(&d, "token-root", rollups[i], body, sizeof body), 200);
        cr_expect(strstr(body, "tenant-b"), "the system token: %s: %s", rollups[i], body);
    }

    /* alerts: one rule without a tenant fires for both; each token lists its own */
    bool both = false;
    for (int i = 0; i < 200 && !both; i++) {
        get_as(&d, "token-root", "/api/v1/alerts", body, sizeof body);
        both = strstr(body, "tenant-a") && strstr(body, "tenant-b");
        if (!both) usleep(50000);
    }
    cr_assert(both, "both tenants' alerts fire: %s", body);
    cr_assert_eq(get_as(&d, "token-a", "/api/v1/alerts?all=1", body, sizeof body), 200);
    cr_expect(strstr(body, "tenant-a") && !strstr(body, "tenant-b"), "%s", body);
    cr_assert_eq(get_as(&d, "token-b", "/api/v1/alerts", body, sizeof body), 200);
    cr_expect(strstr(body, "tenant-b") && !strstr(body, "tenant-a"), "%s", body);

    /* the CLI's --url carries METRON_TOKEN */
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "METRON_TOKEN=token-b %s query --url http://127.0.0.1:%d q.v --from 0 --to now "
             "--format csv 2>&1",
             METRON_PATH, d.http);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0, "%s", out);
    cr_expect(strstr(out, "tenant-b") && !strstr(out, "tenant-a"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s rollup --url http://127.0.0.1:%d --from 0 --to now 2>&1",
             METRON_PATH, d.http);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_neq(pclose(p), 0, "no METRON_TOKEN: refused");
    cr_expect(strstr(out, "401"), "%s", out);
    stop(&d);
    cr_expect_eq(log_lines(&d, "token-a"), 0, "tokens never appear in the log");
    cr_expect_eq(log_lines(&d, "token-root"), 0);
    unlink(tokens);
    unlink(rules);
    cleanup(&d);
}

Test(metrond, the_token_is_checked_before_the_body_is_read, .timeout = 60)
{
    char tokens[] = "/tmp/metrond-tokens-XXXXXX";
    tokens_file(tokens);
    daemon_t d;
    char extra[256];
    snprintf(extra, sizeof extra, "--tokens-file %s", tokens);
    start(&d, extra);
    /* headers announce 20 MB and no byte of it is sent: the answer must come anyway */
    const char *heads[] = {"", "Authorization: Token wrong\r\n"};
    for (int i = 0; i < 2; i++) {
        int s = connect_tcp(d.http);
        cr_assert_geq(s, 0);
        char req[512];
        int len =
            snprintf(req, sizeof req,
                     "POST /write?db=metron HTTP/1.1\r\nHost: x\r\n%sContent-Length: 20000000\r\n"
                     "\r\nm v=1\n",
                     heads[i]);
        send_all(s, req, (size_t)len);
        struct pollfd pf = {.fd = s, .events = POLLIN};
        cr_assert_eq(poll(&pf, 1, 5000), 1, "answered without waiting for the body");
        char resp[512] = "";
        ssize_t r = recv(s, resp, sizeof resp - 1, 0);
        cr_assert_gt(r, 0);
        resp[r] = '\0';
        cr_expect(!strncmp(resp, "HTTP/1.1 401", 12), "%s", resp);
        cr_expect(strstr(resp, "Connection: close"), "%s", resp);
        close(s);
    }
    /* with a good token, Expect: 100-continue gets leave at once, then the write its 204 */
    int s = connect_tcp(d.http);
    cr_assert_geq(s, 0);
    const char *body = "m v=1 1735689600\n";
    char req[512];
    int len =
        snprintf(req, sizeof req,
                 "POST /write?db=metron HTTP/1.1\r\nHost: x\r\nAuthorization: Token token-a\r\n"
                 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
    send_all(s, req, (size_t)len);
    struct pollfd pf = {.fd = s, .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, 500), 1, "100 Continue well before curl's 1 s wait");
    char resp[512] = "";
    ssize_t r = recv(s, resp, sizeof resp - 1, 0);
    cr_assert_gt(r, 0);
    resp[r] = '\0';
    cr_expect(!strncmp(resp, "HTTP/1.1 100 Continue\r\n\r\n", 25), "%s", resp);
    send_all(s, body, strlen(body));
    size_t got = (size_t)r;
    while (!strstr(resp + 25, "\r\n\r\n") && got < sizeof resp - 1 && poll(&pf, 1, 5000) == 1 &&
           (r = recv(s, resp + got, sizeof resp - 1 - got, 0)) > 0)
        resp[got += (size_t)r] = '\0';
    cr_expect(strstr(resp + 25, "HTTP/1.1 204"), "%s", resp);
    close(s);
    stop(&d);
    unlink(tokens);
    cleanup(&d);
}

Test(metrond, python_influxdb_client_writes, .timeout = 120)
{
    daemon_t d;
    start(&d, NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 127.0.0.1 %d >>%s 2>&1", INFLUX_CLIENT_PY,
             d.http, d.log);
    int rc = system(cmd);
    cr_expect_eq(rc, 0, "python3-influxdb client failed (log %s)", d.log);
    stop(&d);
    double sum;
    cr_expect_eq(count_points(d.dir, "py", "p", "load", &sum), 100);
    cr_expect_eq(sum, 4950.0 / 4);
    cleanup(&d);
}

Test(metrond, python_influxdb_client_with_credentials_writes_to_its_tenant, .timeout = 120)
{
    char tokens[] = "/tmp/metrond-tokens-XXXXXX";
    tokens_file(tokens);
    daemon_t d;
    char extra[256], cmd[1024];
    snprintf(extra, sizeof extra, "--tokens-file %s", tokens);
    start(&d, extra);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s 127.0.0.1 %d --user grafana --password token-a >>%s 2>&1",
             INFLUX_CLIENT_PY, d.http, d.log);
    cr_expect_eq(system(cmd), 0, "python3-influxdb with a username and password (log %s)", d.log);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s 127.0.0.1 %d --user grafana --password wrong >>%s 2>&1",
             INFLUX_CLIENT_PY, d.http, d.log);
    cr_expect_neq(system(cmd), 0, "a wrong password is refused");
    stop(&d);
    double sum;
    cr_expect_eq(count_series(d.dir, "py", "business_id=tenant-a,host=p", "load"), 100);
    cr_expect_eq(count_points(d.dir, "py", "p", "load", &sum), 0, "nothing without the tenant");
    unlink(tokens);
    cleanup(&d);
}

Test(metrond, a_full_disk_refuses_writes_with_507_and_resumes_by_itself, .timeout = 120)
{
    /* a real full disk: the data directory is a tmpfs of its own */
    char top[] = "/tmp/metrond-full-XXXXXX";
    cr_assert_not_null(mkdtemp(top));
    daemon_t d;
    snprintf(d.dir, sizeof d.dir, "%s/data", top);
    cr_assert_eq(mkdir(d.dir, 0755), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=128m metron-test %s", d.dir);
    cr_assert_eq(system(cmd), 0, "this test mounts a tmpfs (needs root, as tools/test.sh runs)");
    d.tcp = mt_test_free_port();
    d.http = mt_test_free_port();
    start_at(&d, NULL);
    char body[4096], lines[65536];
    long long now = (long long)time(NULL);
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(lines + len, sizeof lines - len, "disk,host=h%d v=%d %lld\n", i, i,
                                now);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                      sizeof body, NULL, 0),
                 204, "%s", body);
    /* fill the disk to the last byte */
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of=%s/filler bs=1M >/dev/null 2>&1", d.dir);
    cr_assert_neq(system(cmd), 0, "dd stops at a full disk");
    /* new series need new pages: the commit fails, nothing of it is acknowledged */
    len = 0;
    for (int i = 0; i < 600; i++)
        len += (size_t)snprintf(lines + len, sizeof lines - len,
                                "full,host=a-rather-long-host-name-%d,rack=r%d v=%d %lld\n", i, i,
                                i, now);
    int st = 0;
    for (int i = 0; i < 20 && st != 507; i++)
        st = http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                  sizeof body, NULL, 0);
    cr_assert_eq(st, 507, "%s", body);
    cr_expect(strstr(body, "full"), "the reason: %s", body);
    cr_expect_eq(http(d.http, "GET", "/health", NULL, NULL, 0, body, sizeof body, NULL, 0), 503);
    cr_expect(strstr(body, "\"status\":\"fail\"") && strstr(body, "full"), "%s", body);
    cr_expect_eq(http(d.http, "GET", "/ready", NULL, NULL, 0, body, sizeof body, NULL, 0), 503);
    /* room again: healthy, and writes resume without a restart */
    snprintf(cmd, sizeof cmd, "%s/filler", d.dir);
    cr_assert_eq(unlink(cmd), 0);
    cr_expect_eq(http(d.http, "GET", "/health", NULL, NULL, 0, body, sizeof body, NULL, 0), 200,
                 "%s", body);
    cr_expect_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                      sizeof body, NULL, 0),
                 204, "%s", body);
    stop(&d);
    cr_expect_eq(count_series(d.dir, "disk", "host=h7", "v"), 1, "the first write");
    cr_expect_eq(count_series(d.dir, "full", "host=a-rather-long-host-name-599,rack=r599", "v"), 1,
                 "the write after the disk had room again, once");
    snprintf(cmd, sizeof cmd, "umount %s", d.dir);
    cr_expect_eq(system(cmd), 0);
    cleanup(&d);
    rmdir(top);
}

Test(metrond, settings_come_from_file_then_environment_then_flags, .timeout = 60)
{
    daemon_t d;
    snprintf(d.dir, sizeof d.dir, "/tmp/metrond-test-XXXXXX");
    cr_assert_not_null(mkdtemp(d.dir));
    d.tcp = mt_test_free_port();
    d.http = mt_test_free_port();
    int wrong = mt_test_free_port();
    char ini[200];
    snprintf(ini, sizeof ini, "%s.ini", d.dir);
    FILE *f = fopen(ini, "w");
    fprintf(f,
            "; metrond settings\n[metrond]\ndata = %s\nhttp = 127.0.0.1:%d\nlp_tcp = "
            "127.0.0.1:%d\nlp_udp = off\n",
            d.dir, wrong, d.tcp);
    fclose(f);
    /* the environment overrides the file's http; the flag overrides nothing here */
    char env[64];
    snprintf(env, sizeof env, "127.0.0.1:%d", d.http);
    setenv("METROND_HTTP", env, 1);
    snprintf(d.log, sizeof d.log, "%s.log", d.dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "exec %s --config %s --log-level warn >>%s 2>&1", METROND_PATH, ini,
             d.log);
    d.pid = fork();
    if (d.pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    unsetenv("METROND_HTTP");
    int status = 0;
    for (int i = 0; i < 200 && status != 200; i++) {
        status = http(d.http, "GET", "/health", NULL, NULL, 0, NULL, 0, NULL, 0);
        struct timespec t = {0, 25000000};
        nanosleep(&t, NULL);
    }
    cr_expect_eq(status, 200, "HTTP from the environment");
    int s = connect_tcp(d.tcp);
    cr_expect_geq(s, 0, "TCP from the file");
    if (s >= 0) close(s);
    stop(&d);
    FILE *lg = fopen(d.log, "r");
    char line[512];
    int info_lines = 0;
    while (fgets(line, sizeof line, lg)) info_lines += strstr(line, "level=info") != NULL;
    fclose(lg);
    cr_expect_eq(info_lines, 0, "--log-level warn");
    unlink(ini);
    cleanup(&d);
}

/* ---- a real client ---------------------------------------------------------------------- */

/* ---- the SQL sink, against a PostgreSQL of its own (it is crashed on purpose) ---------- */

static char pg_dir[128];

/* Start a private PostgreSQL (tests/support/pg_tmp.sh); returns its URL in url. */
static void pg_private(char *url, size_t cap)
{
    snprintf(pg_dir, sizeof pg_dir, "/tmp/metron-sink-pg-%d", (int)getpid());
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s start %s", PG_TMP_SH, pg_dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(fgets(url, (int)cap, p), "pg_tmp.sh start failed");
    cr_assert_eq(pclose(p), 0);
    url[strcspn(url, "\n")] = '\0';
}

static void pg_do(const char *what)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s %s", PG_TMP_SH, what, pg_dir);
    cr_assert_eq(system(cmd), 0, "pg_tmp.sh %s", what);
}

/* 12 hours of one minute points for 3 hosts: two tenants and the system-wide one. */
static void write_hours(daemon_t *d, int first, int hours, double bump)
{
    static const char *const tags[3] = {"host=a,business_id=11111111-1111-4111-8111-111111111111",
                                        "host=b,business_id=22222222-2222-4222-8222-222222222222",
                                        "host=c"};
    size_t cap = 1 << 20, len = 0;
    char *lines = malloc(cap), body[512];
    for (int h = first; h < first + hours; h++)
        for (int m = 0; m < 60; m++)
            for (int k = 0; k < 3; k++)
                len += (size_t)snprintf(lines + len, cap - len, "sink,%s v=%g %lld\n", tags[k],
                                        (double)((h * 7 + m * 13 + k * 5) % 101) + bump,
                                        1735689600LL + h * 3600LL + m * 60LL);
    cr_assert_eq(http(d->http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                      sizeof body, NULL, 0),
                 204, "%s", body);
    free(lines);
}

/* A Prometheus sample's value from /metrics. */
static double metric(daemon_t *d, const char *name)
{
    static char body[65536];
    if (http(d->http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body, NULL, 0) != 200)
        return -1;
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *at = strstr(body, want);
    return at ? strtod(at + strlen(want), NULL) : -1;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run cmd; its output split into sorted lines (header dropped when skip). */
static size_t sorted_lines(const char *cmd, bool skip, char *buf, size_t cap, char **out,
                           size_t max)
{
    FILE *p = popen(cmd, "r");
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s: %s", cmd, buf);
    size_t k = 0;
    for (char *save, *l = strtok_r(buf, "\n", &save); l && k < max; l = strtok_r(NULL, "\n", &save))
        if (!skip || k || strncmp(l, "hour_bucket", 11)) out[k++] = l;
    if (skip && k && !strncmp(out[0], "hour_bucket", 11)) memmove(out, out + 1, --k * sizeof *out);
    qsort(out, k, sizeof *out, cmp_line);
    return k;
}

/*
 * 48 hours mirrored while PostgreSQL is crashed and restarted and metrond
 * is killed with -9, then an hour backfilled: in the end every (hour,
 * group) row is in PostgreSQL once and equals Metron's rollup, and the
 * backfilled hour's row was replaced.
 */
Test(metrond, the_sink_mirrors_every_hour_once_through_crashes, .timeout = 300)
{
    char url[512];
    pg_private(url, sizeof url);
    daemon_t d;
    char extra[768];
    /* hours of 2025: past the default retention of the summaries in PostgreSQL, which would drop
       their partitions (docs/operations.md, "PostgreSQL retention") */
    snprintf(extra, sizeof extra,
             "--postgres '%s' --grace 60 --postgres-outbox-budget 10 "
             "--postgres-retention-interval 0",
             url);
    start(&d, extra);
    write_hours(&d, 0, 12, 0);
    for (int i = 0; i < 200 && metric(&d, "metron_sink_rows_delivered_total") <= 0; i++)
        usleep(50000);
    cr_assert_gt(metric(&d, "metron_sink_rows_delivered_total"), 0, "the sink delivers");
    /* PostgreSQL crashes: hours seal meanwhile and wait in the outbox */
    pg_do("crash");
    write_hours(&d, 12, 12, 0);
    for (int i = 0; i < 100 && metric(&d, "metron_sink_failures_total") < 1; i++) usleep(50000);
    cr_expect_geq(metric(&d, "metron_sink_failures_total"), 1);
    cr_expect_gt(metric(&d, "metron_sink_outbox_depth"), 0, "kept while PostgreSQL is away");
    cr_expect_eq(metric(&d, "metron_sink_connected"), 0);
    pg_do("restart");
    /* metrond killed while the sink works through the backlog */
    write_hours(&d, 24, 12, 0);
    usleep(300000);
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    start_at(&d, "%s", extra);
    write_hours(&d, 36, 12, 0);
    write_hours(&d, 50, 1, 0); /* past every hour's grace: all 48 seal */
    /* backfill: one hour changes, its row must be replaced */
    char body[512];
    const char *late = "sink,host=c v=100000 1735707630\n"; /* hour 5 */
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, late, strlen(late),
                      body, sizeof body, NULL, 0),
                 204);
    char cmd[2048], n[32] = "";
    snprintf(cmd, sizeof cmd,
             "psql '%s' -qAtX -c \"SELECT count(*) FROM monitoring.hourly_metrics_summary WHERE "
             "max_value = 100000\"",
             url);
    for (int i = 0; i < 200 && strcmp(n, "1\n"); i++) { /* until the re-sealed hour arrives */
        FILE *p = popen(cmd, "r");
        if (!fgets(n, sizeof n, p)) n[0] = '\0';
        pclose(p);
        if (strcmp(n, "1\n")) usleep(50000);
    }
    cr_expect_str_eq(n, "1\n", "the backfilled hour reaches PostgreSQL");
    for (int i = 0; i < 200 && metric(&d, "metron_sink_outbox_depth") != 0; i++) usleep(50000);
    cr_assert_eq(metric(&d, "metron_sink_outbox_depth"), 0, "the outbox drains");
    /* PostgreSQL's rows against Metron's, line by line */
    static char mine_buf[1 << 20], theirs_buf[1 << 20];
    static char *mine[4096], *theirs[4096];
    snprintf(cmd, sizeof cmd,
             "%s rollup --data %s --from 2025-01-01T00:00:00Z --to 2025-01-03T00:00:00Z "
             "--format csv",
             METRON_PATH, d.dir);
    size_t nm = sorted_lines(cmd, true, mine_buf, sizeof mine_buf, mine, 4096);
    snprintf(cmd, sizeof cmd,
             "psql '%s' -qAtX -F, -c \"SELECT to_char(hour_bucket AT TIME ZONE 'UTC', "
             "'YYYY-MM-DD\\\"T\\\"HH24:MI:SS\\\"Z\\\"'), coalesce(business_id::text, ''), "
             "metric_category, metric_name, sample_count, avg_value, min_value, max_value, "
             "median_value, p95_value, p99_value FROM monitoring.hourly_metrics_summary\"",
             url);
    size_t nt = sorted_lines(cmd, false, theirs_buf, sizeof theirs_buf, theirs, 4096);
    cr_expect_eq(nm, 48 * 3, "Metron: 48 hours x 3 tenants");
    cr_expect_eq(nt, nm, "PostgreSQL has %zu rows, Metron %zu", nt, nm);
    for (size_t i = 0; i < nm && i < nt; i++) {
        /* the same key, then the same numbers (text forms of a double may differ) */
        char *a = mine[i], *b = theirs[i];
        for (int col = 0; col < 11; col++) {
            char *ae = strchr(a, ','), *be = strchr(b, ',');
            size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
            if (col < 4)
                cr_assert(al == bl && !memcmp(a, b, al), "row %zu col %d: metron %s, pg %s", i, col,
                          mine[i], theirs[i]);
            else
                cr_assert_eq(strtod(a, NULL), strtod(b, NULL), "row %zu col %d: %s vs %s", i, col,
                             mine[i], theirs[i]);
            a = ae ? ae + 1 : a + al;
            b = be ? be + 1 : b + bl;
        }
    }
    /* the backfilled hour's row was replaced, not added */
    bool replaced = false;
    for (size_t i = 0; i < nt; i++)
        replaced |= !strncmp(theirs[i], "2025-01-01T05:00:00Z,,sink,v,61,", 32) &&
                    strstr(theirs[i], ",100000,");
    cr_expect(replaced, "hour 5 of the system-wide tenant holds the late point");
    stop(&d);
    /* the outage passed 90% of the (small) budget: said, and said again when it drained, by
     * each process but the one killed with -9, which may die before the backlog drains */
    int near = log_lines(&d, "the outbox is near its budget");
    int back = log_lines(&d, "the outbox is back under its budget");
    cr_expect_geq(near, 1);
    cr_expect_geq(back, near - 1, "near its budget %d times, back under it %d times", near, back);
    cleanup(&d);
    pg_do("stop");
}

/* One psql value from the private PostgreSQL ("" on error). */
static void pg_value(const char *url, const char *sql, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "psql '%s' -qAtX -c \"%s\" 2>/dev/null", url, sql);
    FILE *p = popen(cmd, "r");
    if (!fgets(out, (int)cap, p)) out[0] = '\0';
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

static bool pg_wait(const char *url, const char *sql, const char *want, char *got, size_t cap)
{
    for (int i = 0; i < 200; i++) {
        pg_value(url, sql, got, cap);
        if (!strcmp(got, want)) return true;
        usleep(50000);
    }
    return false;
}

/*
 * A rule from the local file fires an alert that appears in
 * monitoring.alerts, survives kill -9 without firing twice, stays
 * acknowledged when a person acknowledges it in PostgreSQL, and resolves
 * when the condition clears — while PostgreSQL is down, so the resolution
 * reaches it after its restart.
 */
Test(metrond, alerts_fire_mirror_and_resolve, .timeout = 120)
{
    char url[512], rules[] = "/tmp/metrond-rules-XXXXXX", got[512];
    pg_private(url, sizeof url);
    const char *ini = "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
                      "warning_threshold = 80\ncritical_threshold = 90\ncomparison_operator = gt\n";
    mt_test_file(rules, ini);
    daemon_t d;
    char extra[1024];
    snprintf(extra, sizeof extra, "--postgres '%s' --rules-file %s --alert-interval 1", url, rules);
    start(&d, extra);
    long long now = (long long)time(NULL);
    char lines[4096], body[512];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\ncpu,host=b usage=10 %lld\n", now, now);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    const char *q = "SELECT status || ' ' || severity || ' ' || trigger_value || ' ' || "
                    "threshold_value FROM monitoring.alerts";
    cr_expect(pg_wait(url, q, "active critical 95 90", got, sizeof got), "%s", got);
    pg_value(url, "SELECT rule_name || ' ' || metric_name FROM monitoring.alert_rules", got,
             sizeof got);
    cr_expect_str_eq(got, "cpu_high cpu.usage");
    /* kill -9: the alert's state is in the data directory, it does not fire again */
    kill(d.pid, SIGKILL);
    waitpid(d.pid, NULL, 0);
    char mark[64], sql[256];
    pg_value(url, "SELECT clock_timestamp()", mark, sizeof mark);
    start_at(&d, "%s", extra);
    /* each evaluation of an open alert is mirrored (updated_at): wait for one after the restart */
    snprintf(sql, sizeof sql, "SELECT bool_or(updated_at > '%s') FROM monitoring.alerts", mark);
    cr_expect(pg_wait(url, sql, "t", got, sizeof got), "an evaluation after the restart");
    pg_value(url, "SELECT count(*) FROM monitoring.alerts", got, sizeof got);
    cr_expect_str_eq(got, "1", "one alert, not a second after the restart");
    /* a person acknowledges it in PostgreSQL: Metron's updates keep that */
    pg_value(url, "UPDATE monitoring.alerts SET status = 'acknowledged' RETURNING status", got,
             sizeof got);
    pg_value(url, "SELECT clock_timestamp()", mark, sizeof mark);
    snprintf(sql, sizeof sql, "SELECT bool_or(updated_at > '%s') FROM monitoring.alerts", mark);
    cr_expect(pg_wait(url, sql, "t", got, sizeof got), "mirrored again after the acknowledgement");
    pg_value(url, "SELECT status FROM monitoring.alerts", got, sizeof got);
    cr_expect_str_eq(got, "acknowledged");
    /* the condition clears while PostgreSQL is down: resolved in metrond, mirrored after */
    pg_do("crash");
    size_t len = 0;
    for (int i = 1; i <= 30; i++)
        len +=
            (size_t)snprintf(lines + len, sizeof lines - len, "cpu,host=a usage=1 %lld\n", now - i);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                      sizeof body, NULL, 0),
                 204);
    char cmd[512], out[2048] = "";
    snprintf(cmd, sizeof cmd, "%s alerts --data %s --all", METRON_PATH, d.dir);
    for (int i = 0; i < 200 && !strstr(out, "\tresolved\t"); i++) { /* until it resolves */
        FILE *p = popen(cmd, "r");
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        pclose(p);
        if (!strstr(out, "\tresolved\t")) usleep(50000);
    }
    cr_expect(strstr(out, "\tresolved\tcritical\tcpu_high\t"), "%s", out);
    pg_do("restart");
    cr_expect(pg_wait(url,
                      "SELECT status || ' ' || (resolved_at IS NOT NULL) FROM monitoring.alerts",
                      "resolved true", got, sizeof got),
              "%s", got);
    stop(&d);
    cr_expect_eq(log_lines(&d, "msg=\"alert fired\""), 1);
    cr_expect_eq(log_lines(&d, "msg=\"alert resolved\""), 1);
    cleanup(&d);
    unlink(rules);
    pg_do("stop");
}

/* ---- webhooks: a real receiver on 127.0.0.1 ------------------------------------------------ */

typedef struct hook_req {
    char ts[32], sig[80], body[4096];
} hook_req;

typedef struct receiver {
    int fd, port;
    int fail_first; /* answer 500 to the first this many */
    int hang_first; /* never answer the first this many (the sender must time out) */
    int hung[8], nhung;
    hook_req got[16];
    int n;
    pthread_mutex_t lock;
    pthread_t thread;
} receiver;

static void header_value(const char *head, const char *name, char *out, size_t cap)
{
    const char *at = strcasestr(head, name);
    out[0] = '\0';
    if (!at) return;
    at += strlen(name);
    while (*at == ' ') at++;
    size_t n = strcspn(at, "\r\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
}

static void *receive(void *arg)
{
    receiver *rv = arg;
    for (;;) {
        int c = accept(rv->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[8192];
        size_t len = 0;
        char *end = NULL;
        buf[0] = '\0';
        while (len < sizeof buf - 1 && !(end = strstr(buf, "\r\n\r\n"))) {
            ssize_t r = read(c, buf + len, sizeof buf - 1 - len);
            if (r <= 0) break;
            len += (size_t)r;
            buf[len] = '\0';
        }
        hook_req q = {{0}};
        if (end) {
            char cl[16];
            header_value(buf, "Content-Length:", cl, sizeof cl);
            size_t want = (size_t)atol(cl), have = len - (size_t)(end + 4 - buf);
            while (have < want && len < sizeof buf - 1) {
                ssize_t r = read(c, buf + len, sizeof buf - 1 - len);
                if (r <= 0) break;
                len += (size_t)r;
                have += (size_t)r;
            }
            buf[len] = '\0';
            header_value(buf, "X-Metron-Timestamp:", q.ts, sizeof q.ts);
            header_value(buf, "X-Metron-Signature:", q.sig, sizeof q.sig);
            snprintf(q.body, sizeof q.body, "%s", end + 4);
        }
        pthread_mutex_lock(&rv->lock);
        int k = rv->n;
        if (rv->n < 16) rv->got[rv->n++] = q;
        pthread_mutex_unlock(&rv->lock);
        if (k < rv->hang_first && rv->nhung < 8) { /* keep it open, unanswered */
            rv->hung[rv->nhung++] = c;
            continue;
        }
        const char *ans = k < rv->fail_first
                              ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                              : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if (write(c, ans, strlen(ans)) < 0) {
        }
        close(c);
    }
}

static int received(receiver *rv)
{
    pthread_mutex_lock(&rv->lock);
    int n = rv->n;
    pthread_mutex_unlock(&rv->lock);
    return n;
}

/*
 * An alert's webhook: signed (HMAC-SHA256 over "timestamp.body"), retried
 * after two 500s, then the resolution sent too.
 */
static void receiver_start(receiver *rv)
{
    pthread_mutex_init(&rv->lock, NULL);
    rv->port = mt_test_free_port();
    rv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rv->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(rv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(rv->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(rv->fd, 16), 0);
    pthread_create(&rv->thread, NULL, receive, rv);
}

static void receiver_stop(receiver *rv)
{
    shutdown(rv->fd, SHUT_RDWR);
    close(rv->fd);
    pthread_join(rv->thread, NULL);
    for (int i = 0; i < rv->nhung; i++) close(rv->hung[i]);
}

Test(metrond, webhooks_are_signed_and_retried, .timeout = 120)
{
    receiver rv = {.fail_first = 2};
    receiver_start(&rv);

    char rules[] = "/tmp/metrond-hooks-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook ops]\nurl = http://127.0.0.1:%d/hook\nsecret_token = s3cret\n"
             "retry_attempts = 3\nretry_base_ms = 100\ntimeout_seconds = 5\n",
             rv.port);
    mt_test_file(rules, ini);
    daemon_t d;
    char extra[512];
    snprintf(extra, sizeof extra, "--rules-file %s --alert-interval 1", rules);
    start(&d, extra);
    long long now = (long long)time(NULL);
    char lines[4096], body[512];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\n", now);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    for (int i = 0; i < 200 && received(&rv) < 3; i++) usleep(50000);
    cr_assert_eq(received(&rv), 3, "two 500s, then the 200");
    for (int k = 0; k < 3; k++) {
        hook_req *q = &rv.got[k];
        char want[72];
        unsigned char mac[32];
        unsigned int ml = 0;
        char msg[4200];
        snprintf(msg, sizeof msg, "%s.%s", q->ts, q->body);
        HMAC(EVP_sha256(), "s3cret", 6, (unsigned char *)msg, strlen(msg), mac, &ml);
        int w = snprintf(want, sizeof want, "sha256=");
        for (unsigned j = 0; j < ml; j++)
            w += snprintf(want + w, sizeof want - (size_t)w, "%02x", mac[j]);
        cr_expect_str_eq(q->sig, want, "the signature of attempt %d", k);
        cr_expect(llabs(atoll(q->ts) - now) < 60, "a timestamp of now: %s", q->ts);
        cr_expect(strstr(q->body, "\"event\":\"fired\""), "%s", q->body);
        cr_expect(strstr(q->body, "\"severity\":\"critical\""), "%s", q->body);
        cr_expect(strstr(q->body, "\"series\":\"cpu,host=a usage\""), "%s", q->body);
        cr_expect(strstr(q->body, "\"name\":\"cpu_high\""), "%s", q->body);
        cr_expect(strstr(q->body, "\"links\":{\"query\":\"http://127.0.0.1:"), "%s", q->body);
    }
    cr_expect_str_eq(rv.got[0].body, rv.got[2].body, "the same notification, retried");
    /* the condition clears: the resolution is sent */
    size_t len = 0;
    for (int i = 1; i <= 30; i++)
        len +=
            (size_t)snprintf(lines + len, sizeof lines - len, "cpu,host=a usage=1 %lld\n", now - i);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, len, body,
                      sizeof body, NULL, 0),
                 204);
    for (int i = 0; i < 200 && received(&rv) < 4; i++) usleep(50000);
    cr_assert_eq(received(&rv), 4);
    cr_expect(strstr(rv.got[3].body, "\"event\":\"resolved\""), "%s", rv.got[3].body);
    cr_expect(strstr(rv.got[3].body, "\"status\":\"resolved\""), "%s", rv.got[3].body);
    /* metron alerts, beside the daemon: nothing open; --all shows the resolved one */
    char cmd[512], out[2048];
    snprintf(cmd, sizeof cmd, "%s alerts --data %s; %s alerts --url http://127.0.0.1:%d --all",
             METRON_PATH, d.dir, METRON_PATH, d.http);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0);
    const char *second = strstr(out + 1, "id\tstatus");
    cr_assert_not_null(second, "%s", out);
    cr_expect(!strstr(out, "\tactive\t"), "%s", out);
    cr_expect(strstr(second, "\tresolved\tcritical\tcpu_high\tcpu,host=a usage\t"), "%s", out);
    stop(&d);
    cleanup(&d);
    unlink(rules);
    receiver_stop(&rv);
}

/* A receiver that never answers: the request times out and is tried again. */
Test(metrond, a_hanging_webhook_times_out_and_is_retried, .timeout = 120)
{
    receiver rv = {.hang_first = 1};
    receiver_start(&rv);
    char rules[] = "/tmp/metrond-hang-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook slow]\nurl = http://127.0.0.1:%d/hook\nsecret_token = x\n"
             "retry_attempts = 2\nretry_base_ms = 100\ntimeout_seconds = 1\n",
             rv.port);
    mt_test_file(rules, ini);
    daemon_t d;
    char extra[512];
    snprintf(extra, sizeof extra, "--rules-file %s --alert-interval 1", rules);
    start(&d, extra);
    char lines[128], body[512];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\n", (long long)time(NULL));
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    for (int i = 0; i < 200 && received(&rv) < 2; i++) usleep(50000);
    cr_assert_eq(received(&rv), 2, "the unanswered request, then its retry");
    cr_expect_str_eq(rv.got[0].body, rv.got[1].body);
    /* metrond answered writes all along: the receiver never held the loop */
    cr_expect_eq(http(d.http, "GET", "/ping", NULL, NULL, 0, body, sizeof body, NULL, 0), 204);
    stop(&d);
    cleanup(&d);
    unlink(rules);
    receiver_stop(&rv);
}

/*
 * Rules in monitoring.alert_rules, followed without a restart: a rule
 * inserted fires, an acknowledgement made in PostgreSQL reaches metrond,
 * and a rule changed (a higher threshold) resolves the alert.
 */
Test(metrond, rules_are_followed_in_postgresql, .timeout = 120)
{
    char url[512], got[512], sql[512];
    pg_private(url, sizeof url);
    receiver rv = {.fail_first = 0};
    receiver_start(&rv);
    daemon_t d;
    char extra[768];
    snprintf(extra, sizeof extra, "--postgres '%s' --alert-interval 1", url);
    start(&d, extra);
    cr_assert(pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                      sizeof got),
              "the sink installs the schema");
    /* a webhook endpoint kept in PostgreSQL too */
    snprintf(sql, sizeof sql,
             "INSERT INTO monitoring.webhook_endpoints (id, endpoint_name, webhook_url, "
             "secret_token) VALUES ('55555555-5555-4555-8555-555555555555', 'ops', "
             "'http://127.0.0.1:%d/hook', 'pgsecret') RETURNING endpoint_name",
             rv.port);
    pg_value(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "ops");
    pg_value(
        url,
        "INSERT INTO monitoring.alert_rules (id, rule_name, rule_category, severity, "
        "metric_name, condition_type, condition_definition, evaluation_window, "
        "critical_threshold, comparison_operator, created_by) VALUES "
        "('44444444-4444-4444-8444-444444444444', 'cpu hot', 'performance', 'critical', "
        "'cpu.usage', 'threshold', '{\\\"aggregation\\\": \\\"max\\\"}', '1 minute', 90, 'gt', "
        "gen_random_uuid()) RETURNING rule_name",
        got, sizeof got);
    cr_assert_str_eq(got, "cpu hot");
    long long now = (long long)time(NULL);
    char lines[256], body[512];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\n", now);
    cr_assert_eq(http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines, strlen(lines),
                      body, sizeof body, NULL, 0),
                 204);
    cr_expect(pg_wait(url, "SELECT status || ' ' || alert_rule_id FROM monitoring.alerts",
                      "active 44444444-4444-4444-8444-444444444444", got, sizeof got),
              "%s", got);
    /* acknowledged by a person: metrond's own record says so too */
    pg_value(url, "UPDATE monitoring.alerts SET status = 'acknowledged' RETURNING status", got,
             sizeof got);
    char cmd[512], out[2048] = "";
    snprintf(cmd, sizeof cmd, "%s alerts --data %s", METRON_PATH, d.dir);
    for (int i = 0; i < 100 && !strstr(out, "\tacknowledged\t"); i++) {
        FILE *p = popen(cmd, "r");
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        pclose(p);
        if (!strstr(out, "\tacknowledged\t")) usleep(100000);
    }
    cr_expect(strstr(out, "\tacknowledged\tcritical\tcpu hot\t"), "%s", out);
    /* the endpoint heard of it, signed with its secret, and its statistics were written back */
    for (int i = 0; i < 200 && received(&rv) < 1; i++) usleep(50000); /* delivery: a thread */
    cr_assert_geq(received(&rv), 1);
    cr_expect(strstr(rv.got[0].body, "\"name\":\"cpu hot\""), "%s", rv.got[0].body);
    char msg[4200], want[72];
    unsigned char mac[32];
    unsigned int ml = 0;
    snprintf(msg, sizeof msg, "%s.%s", rv.got[0].ts, rv.got[0].body);
    HMAC(EVP_sha256(), "pgsecret", 8, (unsigned char *)msg, strlen(msg), mac, &ml);
    int w = snprintf(want, sizeof want, "sha256=");
    for (unsigned j = 0; j < ml; j++)
        w += snprintf(want + w, sizeof want - (size_t)w, "%02x", mac[j]);
    cr_expect_str_eq(rv.got[0].sig, want);
    cr_expect(pg_wait(url,
                      "SELECT total_calls || ' ' || successful_calls || ' ' || "
                      "(last_success_at IS NOT NULL) FROM monitoring.webhook_endpoints",
                      "1 1 true", got, sizeof got),
              "%s", got);
    /* the rule changes in PostgreSQL: 95 is no longer above it */
    pg_value(url, "UPDATE monitoring.alert_rules SET critical_threshold = 99 RETURNING 1", got,
             sizeof got);
    cr_expect(pg_wait(url, "SELECT status FROM monitoring.alerts", "resolved", got, sizeof got),
              "%s", got);
    stop(&d);
    cleanup(&d);
    pg_do("stop");
    receiver_stop(&rv);
}

/*
 * metron-pgstat against the test PostgreSQL, pushing into metrond: its
 * metrics are queryable; pushed while metrond is away, they wait in the
 * spool and arrive with the next push.
 */
Test(metrond, pgstat_pushes_and_spools, .timeout = 120)
{
    char spool[] = "/tmp/metron-pgstat-spool-XXXXXX";
    cr_assert_not_null(mkdtemp(spool));
    daemon_t d;
    start(&d, NULL);
    char cmd[2048], body[65536];
    snprintf(cmd, sizeof cmd,
             "%s --pg '%s' --sink-pg '%s' --url http://127.0.0.1:%d --once --interval 1s "
             "--spool %s 2>&1",
             METRON_PGSTAT_PATH, mt_test_pg_url(), mt_test_pg_url(), d.http, spool);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(http(d.http, "GET",
                      "/api/v1/query?select=pg_database.size_bytes&from=-5m&to=now&agg=count&"
                      "format=csv&by=none",
                      NULL, NULL, 0, body, sizeof body, NULL, 0),
                 200, "%s", body);
    cr_expect(strstr(body, "time,count\n") && strstr(body, "Z,"), "%s", body);
    /* and the rows of system_health in the sink PostgreSQL (here the one it watched) */
    snprintf(cmd, sizeof cmd,
             "psql '%s' -qAtX -c \"SELECT count(*) > 0 FROM monitoring.system_health WHERE "
             "component_type = 'database'\"",
             mt_test_pg_url());
    FILE *q = popen(cmd, "r");
    char yes[8] = "";
    if (!fgets(yes, sizeof yes, q)) yes[0] = '\0';
    pclose(q);
    cr_expect_str_eq(yes, "t\n");
    /* metrond away: the readings are spooled, then sent first at the next push */
    stop(&d);
    snprintf(cmd, sizeof cmd,
             "%s --pg '%s' --sink-pg '%s' --url http://127.0.0.1:%d --once --interval 1s "
             "--spool %s 2>&1",
             METRON_PGSTAT_PATH, mt_test_pg_url(), mt_test_pg_url(), d.http, spool);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.lp$'", spool);
    FILE *p = popen(cmd, "r");
    int spooled = 0;
    cr_assert_eq(fscanf(p, "%d", &spooled), 1);
    pclose(p);
    cr_expect_eq(spooled, 2, "two pushes waiting");
    start_at(&d, NULL);
    char conf[] = "/tmp/metron-pgstat-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[pgstat]\npg = %s\nurl = http://127.0.0.1:%d\ninterval = 1s\nsink_pg = %s\n",
             mt_test_pg_url(), d.http, mt_test_pg_url());
    mt_test_file(conf, ini);
    snprintf(cmd, sizeof cmd, "%s --config %s --once --spool %s 2>&1", METRON_PGSTAT_PATH, conf,
             spool);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.lp$'", spool);
    p = popen(cmd, "r");
    cr_assert_eq(fscanf(p, "%d", &spooled), 1);
    pclose(p);
    cr_expect_eq(spooled, 0, "the spool drained");
    cr_assert_eq(http(d.http, "GET",
                      "/api/v1/query?select=pg_locks.waiting&from=-5m&to=now&agg=count&"
                      "format=csv&by=none",
                      NULL, NULL, 0, body, sizeof body, NULL, 0),
                 200);
    long count = 0;
    const char *row = strchr(body, '\n');
    if (row && strchr(row, ',')) count = atol(strchr(row, ',') + 1);
    cr_expect_eq(count, 6, "3 runs x 2 readings, none lost: %s", body);
    stop(&d);
    cleanup(&d);
    snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
    cr_expect_eq(system(cmd), 0);
    unlink(conf);
}
