/*
 * bench_ingest — end-to-end ingest: the devops workload pushed over TCP
 * loopback by several connections to a fresh metrond (durable default),
 * timed until every point is committed (metron_points_accepted_total on
 * /metrics reaches the total, so the points are durable and queryable),
 * and the daemon's peak RSS (VmHWM). Medians of --repeat runs, each on a
 * fresh data directory.
 *
 *   bench_ingest [--hosts N] [--hours N] [--conns N] [--repeat N] [--metrond PATH]
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mt_time.h"
#include "mt_gen.h"

typedef struct part {
    const char *data;
    size_t len;
    int port;
} part;

static int connect_port(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) {
        close(s);
        return -1;
    }
    return s;
}

static void *pusher(void *arg)
{
    part *p = arg;
    int s = connect_port(p->port);
    if (s < 0) abort();
    size_t off = 0;
    while (off < p->len) {
        ssize_t n = send(s, p->data + off, p->len - off, MSG_NOSIGNAL);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    close(s);
    return NULL;
}

/* metron_points_accepted_total from /metrics, or -1. */
static double accepted(int port)
{
    int s = connect_port(port);
    if (s < 0) return -1;
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(s, req, strlen(req), MSG_NOSIGNAL) < 0) {
        close(s);
        return -1;
    }
    static char buf[1 << 16];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = recv(s, buf + got, sizeof buf - 1 - got, 0)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(s);
    const char *m = strstr(buf, "\nmetron_points_accepted_total ");
    return m ? atof(m + 30) : -1;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int conns = 4, repeat = 3;
    const char *metrond = "build/release/tools/metrond";
    static const struct option longopts[] = {
        {"hosts", required_argument, 0, 'H'},   {"hours", required_argument, 0, 'D'},
        {"conns", required_argument, 0, 'c'},   {"repeat", required_argument, 0, 'r'},
        {"metrond", required_argument, 0, 'm'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'c': conns = atoi(optarg); break;
        case 'r': repeat = atoi(optarg); break;
        case 'm': metrond = optarg; break;
        default:
            fprintf(stderr, "usage: bench_ingest [--hosts N] [--hours N] [--conns N] [--repeat N] "
                            "[--metrond PATH]\n");
            return 2;
        }
    }
    if (conns < 1 || conns > 64) conns = 4;
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 3;
    char *data;
    size_t len;
    if (mt_gen_all(&opt, &data, &len)) return 1;
    double total = (double)mt_gen_total_points(&opt);
    printf("bench_ingest: devops workload, %u hosts x %u h: %.0f points, %.1f MB over %d TCP "
           "connections to %s (durable); %d runs\n",
           opt.hosts, opt.hours, total, len / 1e6, conns, metrond, repeat);
    /* split on line boundaries */
    part parts[64];
    size_t off = 0;
    for (int i = 0; i < conns; i++) {
        size_t end = i == conns - 1 ? len : (len / (size_t)conns) * (size_t)(i + 1);
        while (end < len && data[end - 1] != '\n') end++;
        parts[i] = (part){data + off, end - off, 0};
        off = end;
    }
    double secs[MT_BENCH_MAX_RUNS], rss[MT_BENCH_MAX_RUNS];
    for (int r = 0; r < repeat; r++) {
        char dir[] = "/tmp/metron-ingest-XXXXXX";
        if (!mkdtemp(dir)) return 1;
        int tcp = mt_bench_free_port(), http = mt_bench_free_port();
        char a1[64], a2[64];
        snprintf(a1, sizeof a1, "127.0.0.1:%d", tcp);
        snprintf(a2, sizeof a2, "127.0.0.1:%d", http);
        pid_t pid = fork();
        if (pid == 0) {
            execl(metrond, "metrond", "--data", dir, "--lp-tcp", a1, "--lp-udp", "off", "--http",
                  a2, "--retention-interval", "0", "--log-level", "warn", (char *)NULL);
            _exit(127);
        }
        while (accepted(http) < 0) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                fprintf(stderr, "bench_ingest: %s exited at start (status %d)\n", metrond, st);
                return 1;
            }
            sleep_ms(20);
        }
        int64_t t0 = mt_mono_ns();
        pthread_t th[64];
        for (int i = 0; i < conns; i++) {
            parts[i].port = tcp;
            pthread_create(&th[i], NULL, pusher, &parts[i]);
        }
        for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
        while (accepted(http) < total) sleep_ms(5);
        secs[r] = (double)(mt_mono_ns() - t0) / 1e9;
        rss[r] = (double)mt_bench_peak_rss_kb(pid) * 1024;
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) return 1;
    }
    mt_bench_report("points/s", total, secs, repeat);
    qsort(rss, (size_t)repeat, sizeof *rss, mt_bench_cmp_double);
    printf("%-16s median %12.1f MB (min %.1f, max %.1f)\n", "peak RSS", rss[repeat / 2] / 1e6,
           rss[0] / 1e6, rss[repeat - 1] / 1e6);
    free(data);
    return 0;
}
