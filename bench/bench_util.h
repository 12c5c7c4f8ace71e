/*
 * bench_util.h — what every bench/ program shares: medians of repeated runs.
 */
#ifndef MT_BENCH_UTIL_H
#define MT_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "mt_time.h"

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

#endif
