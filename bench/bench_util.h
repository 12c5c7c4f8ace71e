/*
 * bench_util.h — what every bench/ program shares: medians of repeated runs,
 * peak memory, a free loopback port.
 */
#ifndef MT_BENCH_UTIL_H
#define MT_BENCH_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MT_BENCH_MAX_RUNS 64

static inline int mt_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Print "label: median M (min A, max B)" where each run's rate is
 * amount / secs[i]. Sorts secs in place.
 */
static inline void mt_bench_report(const char *label, double amount, double *secs, int runs)
{
    qsort(secs, (size_t)runs, sizeof *secs, mt_bench_cmp_double);
    double med = runs % 2 ? secs[runs / 2] : (secs[runs / 2 - 1] + secs[runs / 2]) / 2;
    printf("%-16s median %12.1f   (min %.1f, max %.1f)\n", label, amount / med,
           amount / secs[runs - 1], amount / secs[0]);
}

/* A process's peak resident set (VmHWM) in kB; -1 when it cannot be read. */
static inline long mt_bench_peak_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* A loopback port free for TCP and UDP now, below the kernel's ephemeral range (32768 on):
   one the kernel hands out could be taken by a connection before the server binds it; -1 if
   none is found. Not the same port twice in a process. */
static inline int mt_bench_free_port(void)
{
    static uint64_t x;
    static int given[64];
    static unsigned ngiven;
    if (!x) x = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL) ^ 0x9E3779B97F4A7C15ull;
    for (int tries = 0; tries < 1000; tries++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int port = 10000 + (int)(x % 22000);
        bool seen = false;
        for (unsigned i = 0; i < ngiven && i < 64; i++) seen |= given[i] == port;
        if (seen) continue;
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        bool ok = t >= 0 && u >= 0 && !bind(t, (struct sockaddr *)&a, sizeof a) &&
                  !bind(u, (struct sockaddr *)&a, sizeof a);
        if (t >= 0) close(t);
        if (u >= 0) close(u);
        if (ok) return given[ngiven++ % 64] = port;
    }
    return -1;
}

#endif
