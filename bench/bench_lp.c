/*
 * bench_lp — line-protocol parser throughput on the devops workload.
 *
 *   bench_lp [--hosts N] [--hours N] [--seed N] [--repeat N]
 *
 * Generates the workload into memory once, then parses all of it --repeat
 * times on one thread, and prints the configuration and the median, min and
 * max of MB/s, lines/s and points/s. MB = 10^6 bytes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"
#include "mt_time.h"
#include "mt_gen.h"
#include "mt_lp.h"

typedef struct sink {
    uint64_t lines, points;
    double checksum; /* keeps the values live */
} sink;

static int on_line(void *ud, const mt_lp_line *l)
{
    sink *s = ud;
    s->lines++;
    s->points += l->nfields;
    s->checksum += l->fields[0].type == MT_LP_FLOAT ? l->fields[0].v.f : (double)l->fields[0].v.i;
    return 0;
}

static void on_error(void *ud, const mt_lp_error *e)
{
    char msg[256];
    mt_lp_error_format(e, msg, sizeof msg);
    fprintf(stderr, "bench_lp: unexpected parse error: %s\n", msg);
    exit(1);
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    opt.hours = 2;
    int repeat = 7;
    static const struct option longopts[] = {{"hosts", required_argument, 0, 'H'},
                                             {"hours", required_argument, 0, 'D'},
                                             {"seed", required_argument, 0, 's'},
                                             {"repeat", required_argument, 0, 'r'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_lp [--hosts N] [--hours N] [--seed N] [--repeat N]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 7;
    char *buf;
    size_t len;
    if (mt_gen_all(&opt, &buf, &len)) {
        fprintf(stderr, "bench_lp: cannot generate the workload\n");
        return 1;
    }
    printf("bench_lp: devops workload, %u hosts x %u h, seed %llu: %.1f MB, %llu lines, %llu "
           "points; %d runs on one thread\n",
           opt.hosts, opt.hours, (unsigned long long)opt.seed, len / 1e6,
           (unsigned long long)mt_gen_total_lines(&opt),
           (unsigned long long)mt_gen_total_points(&opt), repeat);

    mt_lp_parser *p;
    if (mt_lp_parser_new(NULL, &p)) return 1;
    double secs[MT_BENCH_MAX_RUNS];
    sink s = {0};
    for (int r = 0; r < repeat; r++) {
        s = (sink){0};
        mt_lp_handler h = {on_line, on_error, &s};
        int64_t t0 = mt_mono_ns();
        if (mt_lp_parse(p, buf, len, 0, &h)) return 1;
        secs[r] = (double)(mt_mono_ns() - t0) / 1e9;
    }
    if (s.lines != mt_gen_total_lines(&opt) || s.points != mt_gen_total_points(&opt)) {
        fprintf(stderr, "bench_lp: parsed %llu lines / %llu points, expected otherwise\n",
                (unsigned long long)s.lines, (unsigned long long)s.points);
        return 1;
    }
    mt_bench_report("parse MB/s", (double)len / 1e6, secs, repeat);
    mt_bench_report("parse lines/s", (double)s.lines, secs, repeat);
    mt_bench_report("parse points/s", (double)s.points, secs, repeat);
    mt_lp_parser_free(p);
    free(buf);
    return 0;
}
