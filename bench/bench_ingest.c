/*
 * bench_ingest — end-to-end ingest: the devops workload pushed over TCP
 * loopback by several connections to a fresh metrond (durable default),
 * timed until every point is committed (metron_points_accepted_total on
 * /metrics reaches the total, so the points are durable and queryable),
 * and the daemon's peak RSS (VmHWM). Medians of --repeat runs, each on a
 * fresh data directory.
 *
 * --split hosts (the default) gives each connection its own hosts, every
 * one of them for the whole day, in time order: agents or relays, each
 * with its hosts. --split time gives each connection a quarter (1/N) of
 * the day for every host, so all but the last stream write hours behind
 * the newest point: a backlog replayed beside live data.
 *
 * --against N runs N connections before each run, on the same split, and
 * prints each round's ratios of rate and peak RSS and their medians: on a
 * shared machine a ratio within one round is steadier than two medians.
 *
 * --metrond-arg ARG (repeatable) is passed on to metrond, e.g. --sync false
 * or --mem-budget BYTES. Each run also reports how often metrond paused
 * reading (metron_ingest_pauses_total: batches in flight reached
 * mem_budget).
 *
 *   bench_ingest [--hosts N] [--hours N] [--conns N] [--split hosts|time] [--against N]
 *                [--repeat N] [--metrond PATH] [--metrond-arg ARG]...
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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
    char *data;
    size_t len;
    int port;
} part;

/* Connection i's share of data (len bytes of whole lines): the hosts
   h with h % conns == i, or the i-th 1/conns of the bytes (whole lines).
   The generator writes MT_GEN_LINES_PER_TICK lines per host, hosts in
   order, tick after tick. Returns 0, or -1 if out of memory. */
static int split(const char *data, size_t len, uint32_t hosts, int conns, bool by_host, part *parts)
{
    if (!by_host) {
        size_t off = 0;
        for (int i = 0; i < conns; i++) {
            size_t end = i == conns - 1 ? len : (len / (size_t)conns) * (size_t)(i + 1);
            while (end < len && data[end - 1] != '\n') end++;
            parts[i] = (part){malloc(end - off + 1), end - off, 0};
            if (!parts[i].data) return -1;
            memcpy(parts[i].data, data + off, end - off);
            off = end;
        }
        return 0;
    }
    /* two passes: the sizes, then the copies */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t line = 0;
        for (size_t off = 0; off < len; line++) {
            const char *nl = memchr(data + off, '\n', len - off);
            size_t end = nl ? (size_t)(nl - data) + 1 : len;
            uint32_t host = (uint32_t)((line / MT_GEN_LINES_PER_TICK) % hosts);
            const char *tag = memmem(data + off, end - off, ",hostname=host_", 15);
            if (!tag || strtoul(tag + 15, NULL, 10) != host) {
                fprintf(stderr, "bench_ingest: line %llu is not host %u's\n",
                        (unsigned long long)line + 1, host);
                return -1;
            }
            part *p = &parts[host % (uint32_t)conns];
            if (pass) memcpy(p->data + p->len, data + off, end - off);
            p->len += end - off;
            off = end;
        }
        for (int i = 0; i < conns && !pass; i++) {
            parts[i].data = malloc(parts[i].len + 1);
            if (!parts[i].data) return -1;
            parts[i].len = 0;
        }
    }
    return 0;
}

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

/* The value of counter name (without labels) from /metrics, or -1. */
static double metric(int port, const char *name)
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
    char line[128];
    snprintf(line, sizeof line, "\n%s ", name);
    const char *m = strstr(buf, line);
    return m ? atof(m + strlen(line)) : -1;
}

static double accepted(int port)
{
    return metric(port, "metron_points_accepted_total");
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

/* One run on a fresh data directory: metrond started, the parts pushed over
   their connections, timed until every point is committed. 0 or -1. */
static int run_once(const char *metrond, const char *const *extra, int nextra, part *parts,
                    int conns, double total, double *secs, double *rss, double *pauses)
{
    char dir[] = "/tmp/metron-ingest-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    int tcp = mt_bench_free_port(), http = mt_bench_free_port();
    char a1[64], a2[64];
    snprintf(a1, sizeof a1, "127.0.0.1:%d", tcp);
    snprintf(a2, sizeof a2, "127.0.0.1:%d", http);
    pid_t pid = fork();
    if (pid == 0) {
        const char *argv[64] = {
            "metrond",  "--data",      dir,      "--lp-tcp", a1,
            "--lp-udp", "off",         "--http", a2,         "--retention-interval",
            "0",        "--log-level", "warn"};
        int n = 13;
        for (int i = 0; i < nextra; i++) argv[n++] = extra[i];
        argv[n] = NULL;
        execv(metrond, (char *const *)argv);
        _exit(127);
    }
    while (accepted(http) < 0) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "bench_ingest: %s exited at start (status %d)\n", metrond, st);
            return -1;
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
    *secs = (double)(mt_mono_ns() - t0) / 1e9;
    *rss = (double)mt_bench_peak_rss_kb(pid) * 1024;
    *pauses = metric(http, "metron_ingest_pauses_total");
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? -1 : 0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, mt_bench_cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int conns = 4, repeat = 3, against = 0, nextra = 0;
    const char *extra[48];
    bool by_host = true;
    const char *metrond = "build/release/tools/metrond";
    static const struct option longopts[] = {{"hosts", required_argument, 0, 'H'},
                                             {"hours", required_argument, 0, 'D'},
                                             {"conns", required_argument, 0, 'c'},
                                             {"repeat", required_argument, 0, 'r'},
                                             {"metrond", required_argument, 0, 'm'},
                                             {"split", required_argument, 0, 's'},
                                             {"against", required_argument, 0, 'a'},
                                             {"metrond-arg", required_argument, 0, 'x'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'c': conns = atoi(optarg); break;
        case 'r': repeat = atoi(optarg); break;
        case 'm': metrond = optarg; break;
        case 'a': against = atoi(optarg); break;
        case 'x':
            if (nextra == (int)(sizeof extra / sizeof *extra)) goto usage;
            extra[nextra++] = optarg;
            break;
        case 's':
            if (strcmp(optarg, "hosts") && strcmp(optarg, "time")) goto usage;
            by_host = !strcmp(optarg, "hosts");
            break;
        default:
        usage:
            fprintf(stderr, "usage: bench_ingest [--hosts N] [--hours N] [--conns N] "
                            "[--split hosts|time] [--against N] [--repeat N] "
                            "[--metrond PATH] [--metrond-arg ARG]...\n");
            return 2;
        }
    }
    if (conns < 1 || conns > 64) conns = 4;
    if (against < 0 || against > 64) against = 0;
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 3;
    char *data;
    size_t len;
    if (mt_gen_all(&opt, &data, &len)) return 1;
    double total = (double)mt_gen_total_points(&opt);
    printf("bench_ingest: devops workload, %u hosts x %u h: %.0f points, %.1f MB over %d TCP "
           "connections (%s split) to %s",
           opt.hosts, opt.hours, total, len / 1e6, conns, by_host ? "hosts" : "time", metrond);
    for (int i = 0; i < nextra; i++) printf(" %s", extra[i]);
    printf(" (durable unless the arguments say otherwise); %d runs\n", repeat);
    part parts[64] = {{0}};
    if (split(data, len, opt.hosts, conns, by_host, parts)) return 1;
    double secs[MT_BENCH_MAX_RUNS], rss[MT_BENCH_MAX_RUNS];
    double rate_x[MT_BENCH_MAX_RUNS], rss_x[MT_BENCH_MAX_RUNS], pauses[MT_BENCH_MAX_RUNS];
    part base[64] = {{0}};
    if (against && split(data, len, opt.hosts, against, by_host, base)) return 1;
    for (int r = 0; r < repeat; r++) {
        /* the baseline first in every round: a ratio from one round shares its machine */
        double bs = 0, br = 0, bp = 0;
        if (against && run_once(metrond, extra, nextra, base, against, total, &bs, &br, &bp))
            return 1;
        if (run_once(metrond, extra, nextra, parts, conns, total, &secs[r], &rss[r], &pauses[r]))
            return 1;
        if (against) {
            rate_x[r] = bs / secs[r];
            rss_x[r] = rss[r] / br;
            printf("round %d: %d conns %.2f M points/s %.1f MB %.0f pauses, %d conns %.2f M "
                   "%.1f MB %.0f pauses: %.2fx the rate, %.2fx the peak RSS\n",
                   r + 1, against, total / bs / 1e6, br / 1e6, bp, conns, total / secs[r] / 1e6,
                   rss[r] / 1e6, pauses[r], rate_x[r], rss_x[r]);
        }
    }
    free(data);
    mt_bench_report("points/s", total, secs, repeat);
    qsort(rss, (size_t)repeat, sizeof *rss, mt_bench_cmp_double);
    printf("%-16s median %12.1f MB (min %.1f, max %.1f)\n", "peak RSS", rss[repeat / 2] / 1e6,
           rss[0] / 1e6, rss[repeat - 1] / 1e6);
    /* reading paused because the batches in flight reached mem_budget (the writer behind) */
    double mp = median(pauses, repeat);
    printf("%-16s median %12.0f per run (min %.0f, max %.0f)\n", "reading paused", mp, pauses[0],
           pauses[repeat - 1]);
    if (against) {
        double mr = median(rate_x, repeat), mm = median(rss_x, repeat); /* sorted now */
        printf("%d conns against %d, round by round: rate median %.2fx (%.2f-%.2f), peak RSS "
               "median %.2fx (%.2f-%.2f)\n",
               conns, against, mr, rate_x[0], rate_x[repeat - 1], mm, rss_x[0], rss_x[repeat - 1]);
    }
    for (int i = 0; i < conns; i++) free(parts[i].data);
    for (int i = 0; i < against; i++) free(base[i].data);
    return 0;
}
