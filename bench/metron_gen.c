/*
 * metron-gen — print the devops workload (mt_gen.h) as line protocol.
 *
 *   metron-gen [--hosts N] [--hours N] [--start EPOCH_S] [--interval S]
 *              [--seed N] [--precision ns|us|ms|s] [--count]
 *
 * Without --start the workload ends where the current hour begins: data a user
 * imports today lies inside any retention and is never in the future. The
 * benchmarks pass --start (or use mt_gen's fixed default) so that their bytes
 * are the same on every run.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_gen.h"

/* The first timestamp that makes `hours` whole hours end at the start of the current hour. */
static int64_t start_ending_now(uint32_t hours)
{
    int64_t now = (int64_t)time(NULL);
    return now - now % 3600 - (int64_t)hours * 3600;
}

static void usage(FILE *f)
{
    mt_gen_options d = mt_gen_options_default();
    fprintf(f,
            "usage: metron-gen [options] > workload.lp\n"
            "  --hosts N          hosts (default %u)\n"
            "  --hours N          hours of data (default %u)\n"
            "  --start EPOCH_S    first timestamp in epoch seconds (default: the hours end\n"
            "                     where the current hour begins, now %lld)\n"
            "  --interval S       seconds between reports (default %u)\n"
            "  --seed N           PRNG seed (default %llu)\n"
            "  --precision P      ns|us|ms|s for printed timestamps (default ns)\n"
            "  --count            print the number of lines and points, not the data\n",
            d.hosts, d.hours, (long long)start_ending_now(d.hours), d.interval_s,
            (unsigned long long)d.seed);
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int count_only = 0, start_given = 0;
    static const struct option longopts[] = {{"hosts", required_argument, 0, 'H'},
                                             {"hours", required_argument, 0, 'D'},
                                             {"start", required_argument, 0, 'S'},
                                             {"interval", required_argument, 0, 'I'},
                                             {"seed", required_argument, 0, 's'},
                                             {"precision", required_argument, 0, 'p'},
                                             {"count", no_argument, 0, 'c'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S':
            opt.start_s = strtoll(optarg, NULL, 10);
            start_given = 1;
            break;
        case 'I': opt.interval_s = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'p':
            if (!mt_precision_parse(optarg, strlen(optarg), &opt.precision) ||
                opt.precision > MT_PREC_S) {
                fprintf(stderr, "metron-gen: precision must be ns, us, ms or s\n");
                return 2;
            }
            break;
        case 'c': count_only = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!start_given) opt.start_s = start_ending_now(opt.hours);
    if (count_only) {
        printf("lines %llu points %llu\n", (unsigned long long)mt_gen_total_lines(&opt),
               (unsigned long long)mt_gen_total_points(&opt));
        return 0;
    }
    mt_gen *g;
    if (mt_gen_new(&opt, &g)) {
        fprintf(stderr, "metron-gen: invalid options\n");
        return 2;
    }
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf) return 1;
    size_t n;
    while ((n = mt_gen_next(g, buf, cap)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) {
            perror("metron-gen: write");
            return 1;
        }
    }
    free(buf);
    mt_gen_free(g);
    return fflush(stdout) ? 1 : 0;
}
