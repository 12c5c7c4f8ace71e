/*
 * bench_minute.c — freshness of the minute mirror (sql/mt_minute.h): the
 * time from a point's 204 to its minute row in PostgreSQL, with a devops
 * stream live (hosts x 10 cpu fields every interval, current timestamps)
 * into a fresh metrond; and the mirror's cost as metrond reports it.
 *
 *   bench_minute --pg URL [--hosts 100] [--interval 10] [--minutes 10]
 *                [--flush 10] [--metrond PATH]
 *
 * Each host writes once per interval, the hosts spread over its seconds;
 * each second's write carries a probe point (probe,host=bench seq=K); K
 * rises by one per write, so the probe's minute row has max_value >= K exactly once
 * the flush that read point K committed (a later point of the same minute
 * is committed after K). PostgreSQL is polled every 50 ms. Prints the
 * median and p99 of the freshness, metrond's CPU seconds, and the
 * mirror's flush time and points read (from /metrics). --flush 0 runs
 * metrond without the mirror (the cost baseline; no freshness then).
 *
 *   bench_minute --pg URL --flood SECONDS [--hosts 1000] [--flush 10] [--raw]
 *
 * The ingest rate with CURRENT timestamps, so that the mirror recomputes
 * every minute written while the writes go on: for SECONDS, one connection
 * writes batches of every host (10 fields each) stamped with the wall clock
 * in nanoseconds (each batch a new time), as fast as metrond answers 204.
 * Prints points/s, metrond's CPU and the mirror's counters; run it with
 * --flush 10 and --flush 0 to compare. --raw turns raw rows on too.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mt_pg.h"
#include "mt_time.h"

/* One HTTP request; the status, the body into out (cap). */
static int http(int port, const char *method, const char *path, const char *data, size_t len,
                char *out, size_t cap)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        close(s);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, len);
    if (send(s, req, (size_t)n, MSG_NOSIGNAL) != n ||
        (len && send(s, data, len, MSG_NOSIGNAL) != (ssize_t)len)) {
        close(s);
        return -1;
    }
    static char resp[1 << 16];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = recv(s, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(s);
    int status = 0;
    sscanf(resp, "HTTP/%*s %d", &status);
    char *b = strstr(resp, "\r\n\r\n");
    if (out) snprintf(out, cap, "%s", b ? b + 4 : "");
    return status;
}

static double metric(const char *text, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(text, pat);
    return p ? atof(p + strlen(pat)) : -1;
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof buf, f)) {
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the name: state ppid ... utime (14th) stime (15th) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* --flood: writes as fast as metrond takes them, current timestamps; figures printed. */
static int run_flood(int port, pid_t pid, const char *pg_url, int hosts, int seconds, int flush,
                     char *body, size_t cap)
{
    (void)pg_url;
    static const char *fields[10] = {
        "usage_user", "usage_system", "usage_idle",  "usage_nice",    "usage_iowait",
        "usage_irq",  "usage_steal",  "usage_guest", "usage_softirq", "usage_guest_nice"};
    /* each host's line up to its timestamp, made once: the client formats one number a line */
    char **pre = calloc((size_t)hosts, sizeof *pre);
    size_t *plen = calloc((size_t)hosts, sizeof *plen);
    int64_t seed = 42;
    for (int h = 0; h < hosts; h++) {
        char line[512];
        size_t n = (size_t)snprintf(line, sizeof line, "cpu,host=host_%d ", h);
        for (int f = 0; f < 10; f++) {
            seed = seed * 6364136223846793005LL + 1442695040888963407LL;
            n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%.2f", f ? "," : "", fields[f],
                                  (double)(((uint64_t)seed >> 33) % 10000) / 100.0);
        }
        line[n++] = ' ';
        pre[h] = malloc(n);
        memcpy(pre[h], line, n);
        plen[h] = n;
    }
    double cpu0 = cpu_seconds(pid);
    int64_t start = mt_now_ns(), end = start + (int64_t)seconds * 1000000000LL, last = 0;
    uint64_t points = 0, batches = 0;
    while (mt_now_ns() < end) {
        int64_t ts = mt_now_ns();
        if (ts <= last) ts = last + 1;
        last = ts;
        size_t n = 0;
        for (int h = 0; h < hosts && n + plen[h] + 24 < cap; h++) {
            memcpy(body + n, pre[h], plen[h]);
            n += plen[h];
            n += (size_t)snprintf(body + n, cap - n, "%lld\n", (long long)ts);
        }
        int st = http(port, "POST", "/write?db=metron&precision=ns", body, n, NULL, 0);
        if (st != 204) {
            fprintf(stderr, "bench_minute: write answered %d\n", st);
            return 1;
        }
        points += (uint64_t)hosts * 10;
        batches++;
    }
    double wall = (double)(mt_now_ns() - start) / 1e9, cpu = cpu_seconds(pid) - cpu0;
    static char m[16384];
    http(port, "GET", "/metrics", NULL, 0, m, sizeof m);
    printf("flood: %llu points in %llu batches of %d hosts x 10 fields over %.1f s: %.0f "
           "points/s\n",
           (unsigned long long)points, (unsigned long long)batches, hosts, wall,
           (double)points / wall);
    printf("metrond cpu: %.2f s over %.1f s wall (%.0f%% of a core); peak RSS %.1f MB\n", cpu, wall,
           100 * cpu / wall, (double)mt_bench_peak_rss_kb(pid) / 1024);
    if (flush) {
        double fs = metric(m, "metron_minute_flush_seconds_total"),
               mins = metric(m, "metron_minute_minutes_total"),
               pts = metric(m, "metron_minute_points_read_total"),
               rows = metric(m, "metron_minute_rows_delivered_total"),
               raws = metric(m, "metron_raw_rows_total");
        printf("minute mirror: %.0f minutes computed, %.0f rows upserted (%.0f/s), %.0f points "
               "read, %.2f s computing and upserting; raw rows %.0f; %.0f transactions read "
               "their points twice (postgres_minute_values)\n",
               mins, rows, rows / wall, pts, fs, raws, metric(m, "metron_minute_spilled_total"));
    }
    for (int h = 0; h < hosts; h++) free(pre[h]);
    free(pre);
    free(plen);
    return 0;
}

typedef struct probe {
    int64_t k, minute_s, sent_ns;
} probe;

int main(int argc, char **argv)
{
    const char *pg_url = NULL, *metrond = "build/release/tools/metrond";
    int hosts = 100, interval = 10, minutes = 10, flush = 10, flood = 0, raw = 0;
    static struct option lo[] = {{"pg", required_argument, 0, 'p'},
                                 {"hosts", required_argument, 0, 'h'},
                                 {"interval", required_argument, 0, 'i'},
                                 {"minutes", required_argument, 0, 'm'},
                                 {"flush", required_argument, 0, 'f'},
                                 {"metrond", required_argument, 0, 'd'},
                                 {"flood", required_argument, 0, 'F'},
                                 {"raw", no_argument, 0, 'r'},
                                 {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) switch (c) {
        case 'p': pg_url = optarg; break;
        case 'h': hosts = atoi(optarg); break;
        case 'i': interval = atoi(optarg); break;
        case 'm': minutes = atoi(optarg); break;
        case 'f': flush = atoi(optarg); break;
        case 'd': metrond = optarg; break;
        case 'F': flood = atoi(optarg); break;
        case 'r': raw = 1; break;
        default:
            fprintf(stderr, "usage: bench_minute --pg URL [--hosts N] [--interval S] [--minutes N] "
                            "[--flush S] [--metrond PATH]\n");
            return 2;
        }
    if (!pg_url || hosts < 1 || interval < 1 || minutes < 1 || flush < 0) {
        fprintf(stderr, "bench_minute: --pg URL is required (a database of its own)\n");
        return 2;
    }
    printf("bench_minute: hosts=%d fields=10 interval=%ds minutes=%d flush=%ds metrond=%s\n", hosts,
           interval, minutes, flush, metrond);
    char dir[] = "/tmp/bench-minute-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    int port = mt_bench_free_port();
    char addr[32], fl[16];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(fl, sizeof fl, "%d", flush);
    pid_t pid = fork();
    if (pid == 0) {
        execl(metrond, "metrond", "--data", dir, "--lp-tcp", "off", "--lp-udp", "off", "--http",
              addr, "--postgres", pg_url, "--postgres-flush-interval", fl, "--log-level", "warn",
              "--postgres-raw-rows", raw ? "true" : "false", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && http(port, "GET", "/health", NULL, 0, NULL, 0) != 200; i++)
        usleep(50000);
    mt_pg *pg;
    char err[256];
    if (mt_pg_open(pg_url, &pg, err, sizeof err)) {
        fprintf(stderr, "bench_minute: %s\n", err);
        kill(pid, SIGKILL);
        return 1;
    }
    static const char *fields[10] = {
        "usage_user", "usage_system", "usage_idle",  "usage_nice",    "usage_iowait",
        "usage_irq",  "usage_steal",  "usage_guest", "usage_softirq", "usage_guest_nice"};
    size_t cap = (size_t)hosts * 400 + 256;
    char *body = malloc(cap);
    if (flood) {
        int rc = run_flood(port, pid, pg_url, hosts, flood, flush, body, cap);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        mt_pg_close(pg);
        free(body);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) fprintf(stderr, "bench_minute: cannot remove %s\n", dir);
        return rc;
    }
    int nprobes = minutes * 60;
    probe *pending = calloc((size_t)nprobes + 1, sizeof *pending);
    double *lat = calloc((size_t)nprobes + 1, sizeof *lat);
    int npend = 0, nlat = 0, late = 0;
    double cpu0 = cpu_seconds(pid);
    int64_t start = mt_now_ns(), seed = 42;
    for (int k = 1; k <= nprobes; k++) {
        /* each second the hosts of that phase of the interval, and a probe: probes meet the
           flushes at every phase */
        int64_t tick = start + (int64_t)(k - 1) * 1000000000LL;
        /* poll the probes waiting until this tick */
        do {
            for (int i = 0; i < npend;) {
                char v[64], m[24], ks[24];
                snprintf(m, sizeof m, "%lld", (long long)pending[i].minute_s);
                snprintf(ks, sizeof ks, "%lld", (long long)pending[i].k);
                const char *p[] = {m, ks};
                int rc =
                    flush
                        ? mt_pg_query_value(pg,
                                            "SELECT count(*) FROM monitoring.metrics_minute WHERE "
                                            "metric_category = 'probe' AND minute_bucket = "
                                            "to_timestamp($1::bigint) AND max_value >= $2::float8",
                                            2, p, v, sizeof v)
                        : MT_ENOTFOUND;
                if (!rc && atoi(v) > 0) {
                    lat[nlat++] = (double)(mt_now_ns() - pending[i].sent_ns) / 1e9;
                    pending[i] = pending[--npend];
                } else {
                    i++;
                }
            }
            if (mt_now_ns() < tick) usleep(50000);
        } while (mt_now_ns() < tick);
        int64_t now_s = mt_now_ns() / 1000000000;
        size_t n = 0;
        for (int h = 0; h < hosts; h++) {
            if (h % interval != (k - 1) % interval) continue;
            n += (size_t)snprintf(body + n, cap - n, "cpu,host=host_%d ", h);
            for (int f = 0; f < 10; f++) {
                seed = seed * 6364136223846793005LL + 1442695040888963407LL;
                n += (size_t)snprintf(body + n, cap - n, "%s%s=%.2f", f ? "," : "", fields[f],
                                      (double)(((uint64_t)seed >> 33) % 10000) / 100.0);
            }
            n += (size_t)snprintf(body + n, cap - n, " %lld\n", (long long)now_s);
        }
        n += (size_t)snprintf(body + n, cap - n, "probe,host=bench seq=%d %lld\n", k,
                              (long long)now_s);
        int st = http(port, "POST", "/write?db=metron&precision=s", body, n, NULL, 0);
        if (st != 204) {
            fprintf(stderr, "bench_minute: write answered %d\n", st);
            break;
        }
        pending[npend++] = (probe){k, now_s / 60 * 60, mt_now_ns()};
    }
    /* the last probes: up to a minute more */
    for (int64_t end = mt_now_ns() + 60000000000LL; flush && npend && mt_now_ns() < end;) {
        for (int i = 0; i < npend;) {
            char v[64], m[24], ks[24];
            snprintf(m, sizeof m, "%lld", (long long)pending[i].minute_s);
            snprintf(ks, sizeof ks, "%lld", (long long)pending[i].k);
            const char *p[] = {m, ks};
            if (!mt_pg_query_value(pg,
                                   "SELECT count(*) FROM monitoring.metrics_minute WHERE "
                                   "metric_category = 'probe' AND minute_bucket = "
                                   "to_timestamp($1::bigint) AND max_value >= $2::float8",
                                   2, p, v, sizeof v) &&
                atoi(v) > 0) {
                lat[nlat++] = (double)(mt_now_ns() - pending[i].sent_ns) / 1e9;
                pending[i] = pending[--npend];
            } else {
                i++;
            }
        }
        usleep(50000);
    }
    late = npend;
    double cpu = cpu_seconds(pid) - cpu0, wall = (double)(mt_now_ns() - start) / 1e9;
    static char m[16384];
    http(port, "GET", "/metrics", NULL, 0, m, sizeof m);
    long peak_kb = mt_bench_peak_rss_kb(pid);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    mt_pg_close(pg);
    qsort(lat, (size_t)nlat, sizeof *lat, mt_bench_cmp_double);
    if (nlat)
        printf("freshness (204 -> minute row): median %.2f s, p99 %.2f s, max %.2f s (%d probes, "
               "%d never seen)\n",
               lat[nlat / 2], lat[(size_t)((nlat - 1) * 0.99)], lat[nlat - 1], nlat, late);
    double fs = metric(m, "metron_minute_flush_seconds_total"),
           mins = metric(m, "metron_minute_minutes_total"),
           pts = metric(m, "metron_minute_points_read_total"),
           rows = metric(m, "metron_minute_rows_delivered_total");
    printf("metrond cpu: %.2f s over %.0f s wall (%.1f%% of a core); peak RSS %.1f MB\n", cpu, wall,
           100 * cpu / wall, (double)peak_kb / 1024);
    if (flush)
        printf("minute mirror: %.0f minutes computed, %.0f rows upserted, %.0f points read, "
               "%.3f s computing and upserting (%.1f ms per minute)\n",
               mins, rows, pts, fs, mins > 0 ? 1000 * fs / mins : 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "bench_minute: cannot remove %s\n", dir);
    free(body);
    free(pending);
    free(lat);
    return 0;
}
