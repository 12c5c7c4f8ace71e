/*
 * bench_query — the four reference queries on the devops workload (100
 * hosts x 24 h) after sealing, through the query library, each the median
 * of --repeat runs:
 *   Q1  every cpu series, all 10 fields: hourly count/avg/min/max/p50/p95/p99, 24 h
 *   Q2  one field of one host: every raw point, 24 h
 *   Q3  the last value of every series of one measurement (cpu)
 *   Q4  cpu.usage_user by region: hourly p95, 24 h
 * and P1-P4, the PromQL of bench/compare (query_range over the day, a step of
 * 60 s), on one thread and on the default threads (mt_promql_spec.threads),
 * with a catalog cache as metrond's.
 *
 *   bench_query [--hosts N] [--hours N] [--repeat N]
 */
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_feed.h"
#include "bench_util.h"
#include "mt_time.h"
#include "mt_ingest.h"
#include "mt_promql.h"
#include "mt_query.h"

typedef struct loader {
    mt_batch *b;
    mt_engine *e;
} loader;

static int on_line(void *ud, const mt_lp_line *l)
{
    loader *ld = ud;
    int rc = mt_ingest_line(ld->b, l, NULL, NULL);
    if (!rc && mt_batch_len(ld->b) >= 100000) {
        mt_write_result r;
        rc = mt_engine_write(ld->e, ld->b, &r);
        mt_batch_reset(ld->b);
    }
    return rc;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

/* Run one query to the end; returns rows, or -1. */
static long run(mt_engine *e, const mt_query_spec *spec)
{
    mt_query *q;
    char err[256];
    if (mt_query_open(e, spec, &q, err, sizeof err)) {
        fprintf(stderr, "bench_query: %s\n", err);
        return -1;
    }
    mt_row row;
    long rows = 0;
    while (mt_query_next(q, &row) == MT_OK) rows++;
    mt_query_close(q);
    return rows;
}

static int count_bytes(void *ud, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)ud += len;
    return 0;
}

/* The median of repeat runs of a PromQL range query on `threads` (ms); -1 on an error. */
static double promql_ms(mt_engine *e, mt_promql_cache *cache, const char *expr, int64_t from,
                        int64_t to, unsigned threads, int repeat, size_t *bytes)
{
    double secs[MT_BENCH_MAX_RUNS];
    for (int i = 0; i < repeat; i++) {
        mt_promql_spec s = {.expr = expr,
                            .start = from / 1000000,
                            .end = to / 1000000,
                            .step = 60000,
                            .threads = threads,
                            .cache = cache};
        char err[256];
        *bytes = 0;
        int64_t t0 = mt_mono_ns();
        if (mt_promql_query(e, &s, count_bytes, bytes, err, sizeof err)) {
            fprintf(stderr, "bench_query: %s: %s\n", expr, err);
            return -1;
        }
        secs[i] = (double)(mt_mono_ns() - t0) / 1e9;
    }
    qsort(secs, (size_t)repeat, sizeof *secs, mt_bench_cmp_double);
    return (repeat % 2 ? secs[repeat / 2] : (secs[repeat / 2 - 1] + secs[repeat / 2]) / 2) * 1e3;
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int repeat = 5;
    static const struct option longopts[] = {{"hosts", required_argument, 0, 'H'},
                                             {"hours", required_argument, 0, 'D'},
                                             {"repeat", required_argument, 0, 'r'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_query [--hosts N] [--hours N] [--repeat N]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 5;
    char dir[] = "/tmp/metron-bench-query-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.nosync = true; /* loading is not what is measured */
    loader ld = {mt_batch_new(), NULL};
    if (mt_engine_open(&o, &ld.e)) return 1;
    mt_lp_handler h = {on_line, NULL, &ld};
    mt_write_result r;
    if (mt_bench_parse_workload(&opt, &h) || mt_engine_write(ld.e, ld.b, &r) ||
        mt_engine_seal(ld.e, true, NULL))
        return 1;
    mt_batch_free(ld.b);
    int64_t from = opt.start_s * 1000000000, to = from + (int64_t)opt.hours * MT_HOUR_NS;
    printf("bench_query: devops workload, %u hosts x %u h, sealed; %d runs each\n", opt.hosts,
           opt.hours, repeat);

    mt_agg q1aggs[MT_QUERY_MAX_AGGS], p95[1];
    size_t n1, np;
    char err[128];
    mt_agg_parse("count,avg,min,max,p50,p95,p99", q1aggs, MT_QUERY_MAX_AGGS, &n1, err, sizeof err);
    mt_agg_parse("p95", p95, 1, &np, err, sizeof err);
    mt_agg last[1];
    size_t nl;
    mt_agg_parse("last", last, 1, &nl, err, sizeof err);
    struct {
        const char *name;
        mt_query_spec spec;
    } qs[4] = {
        {"Q1 cpu, 10 fields, hourly count/avg/min/max/p50/p95/p99",
         {.select = "cpu",
          .from = from,
          .to = to,
          .step = MT_HOUR_NS,
          .aggs = q1aggs,
          .naggs = n1}},
        {"Q2 one field of one host, raw",
         {.select = "cpu.usage_user{hostname=\"host_7\"}", .from = from, .to = to}},
        {"Q3 last value of every cpu series",
         {.select = "cpu", .from = to - MT_HOUR_NS, .to = to, .aggs = last, .naggs = nl}},
        {"Q4 cpu.usage_user by region, hourly p95",
         {.select = "cpu.usage_user",
          .from = from,
          .to = to,
          .step = MT_HOUR_NS,
          .aggs = p95,
          .naggs = np,
          .by = {"region"},
          .nby = 1}},
    };
    printf("%-58s %10s %10s %8s\n", "query", "median ms", "min ms", "rows");
    for (int k = 0; k < 4; k++) {
        double secs[MT_BENCH_MAX_RUNS];
        long rows = 0;
        for (int i = 0; i < repeat; i++) {
            int64_t t0 = mt_mono_ns();
            rows = run(ld.e, &qs[k].spec);
            secs[i] = (double)(mt_mono_ns() - t0) / 1e9;
            if (rows < 0) return 1;
        }
        qsort(secs, (size_t)repeat, sizeof *secs, mt_bench_cmp_double);
        double med = repeat % 2 ? secs[repeat / 2] : (secs[repeat / 2 - 1] + secs[repeat / 2]) / 2;
        printf("%-58s %10.1f %10.1f %8ld\n", qs[k].name, med * 1e3, secs[0] * 1e3, rows);
    }
    static const char *const promql[][2] = {
        {"P1", "rate(net_bytes_recv[5m])"},
        {"P2", "topk(5, cpu_usage_user)"},
        {"P3", "quantile_over_time(0.95, cpu_usage_user[1h])"},
        {"P4", "sum by (region) (rate(net_bytes_recv[5m]))"},
    };
    printf("\n%-58s %10s %10s %10s\n", "PromQL query_range, step 60 s", "1 thread", "default",
           "bytes");
    mt_promql_cache *cache; /* as metrond's queries share one */
    if (mt_promql_cache_new(&cache)) return 1;
    for (int k = 0; k < 4; k++) {
        size_t bytes;
        double one = promql_ms(ld.e, cache, promql[k][1], from, to, 1, repeat, &bytes);
        double dflt = promql_ms(ld.e, cache, promql[k][1], from, to, 0, repeat, &bytes);
        if (one < 0 || dflt < 0) return 1;
        char name[80];
        snprintf(name, sizeof name, "%s %s", promql[k][0], promql[k][1]);
        printf("%-58s %10.1f %10.1f %10zu\n", name, one, dflt, bytes);
    }
    mt_promql_cache_free(cache);
    mt_engine_close(ld.e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
