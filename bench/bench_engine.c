/*
 * bench_engine — the storage engine on the devops workload:
 *   write   points/s through mt_engine_submit (group commit, durable:
 *           fsync per commit), batches prepared beforehand; hours seal
 *           on the writer thread as the data moves past them, as in use;
 *   bytes   bytes per point on disk after sealing: index.mdb (used pages)
 *           plus the hour files, divided by the points;
 *   scan    points/s of a full scan of every series through mt_scan.
 * Each run uses a fresh data directory; medians over --repeat runs.
 *
 *   bench_engine [--hosts N] [--hours N] [--seed N] [--repeat N] [--dir D] [--nosync] [--keep]
 */
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_feed.h"
#include "bench_util.h"
#include "mt_time.h"
#include "mt_engine.h"
#include "mt_gen.h"
#include "mt_ingest.h"
#include "mt_lp.h"

#define BATCH_LINES 2000
#define IN_FLIGHT   64

typedef struct prep {
    mt_batch **b;
    size_t n, cap;
} prep;

static int on_line(void *ud, const mt_lp_line *l)
{
    prep *p = ud;
    if (p->n == 0 || mt_batch_len(p->b[p->n - 1]) >= BATCH_LINES * 6) {
        if (p->n == p->cap)
            p->b = realloc(p->b, (p->cap = p->cap ? p->cap * 2 : 1024) * sizeof *p->b);
        p->b[p->n++] = mt_batch_new();
    }
    return mt_ingest_line(p->b[p->n - 1], l, NULL, NULL);
}

typedef struct flight {
    pthread_mutex_t m;
    pthread_cond_t c;
    size_t pending, failed;
} flight;

static void done(void *ud, const mt_write_result *r, mt_batch *b)
{
    (void)b;
    flight *f = ud;
    pthread_mutex_lock(&f->m);
    f->pending--;
    if (r->rc || r->rejected) f->failed++;
    pthread_cond_signal(&f->c);
    pthread_mutex_unlock(&f->m);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int repeat = 3, nosync = 0, keep = 0;
    const char *base = "/tmp";
    static const struct option longopts[] = {
        {"hosts", required_argument, 0, 'H'}, {"hours", required_argument, 0, 'D'},
        {"seed", required_argument, 0, 's'},  {"repeat", required_argument, 0, 'r'},
        {"dir", required_argument, 0, 'd'},   {"nosync", no_argument, 0, 'n'},
        {"keep", no_argument, 0, 'k'},        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        case 'd': base = optarg; break;
        case 'n': nosync = 1; break;
        case 'k': keep = 1; break;
        default:
            fprintf(stderr, "usage: bench_engine [--hosts N] [--hours N] [--seed N] [--repeat N] "
                            "[--dir D] [--nosync] [--keep]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 3;
    uint64_t points = mt_gen_total_points(&opt);
    printf("bench_engine: devops workload, %u hosts x %u h, seed %llu: %llu points; %s commits; "
           "%d runs\n",
           opt.hosts, opt.hours, (unsigned long long)opt.seed, (unsigned long long)points,
           nosync ? "nosync" : "durable (fsync)", repeat);
    double w_s[MT_BENCH_MAX_RUNS], scan_s[MT_BENCH_MAX_RUNS];
    double bpp[MT_BENCH_MAX_RUNS], disk_bpp[MT_BENCH_MAX_RUNS], idx_b = 0, live_b = 0, blk_b = 0;
    for (int r = 0; r < repeat; r++) {
        /* prepare the batches: generate, parse, build keys (not timed) */
        prep p = {0};
        mt_lp_handler h = {on_line, NULL, &p};
        if (mt_bench_parse_workload(&opt, &h)) return 1;

        char dir[512];
        snprintf(dir, sizeof dir, "%s/metron-bench-XXXXXX", base);
        if (!mkdtemp(dir)) return 1;
        mt_engine_options o = mt_engine_options_default();
        o.dir = dir;
        o.nosync = nosync;
        mt_engine *e;
        if (mt_engine_open(&o, &e)) return 1;
        flight f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
        int64_t t0 = mt_mono_ns();
        for (size_t i = 0; i < p.n; i++) {
            pthread_mutex_lock(&f.m);
            while (f.pending >= IN_FLIGHT) pthread_cond_wait(&f.c, &f.m);
            f.pending++;
            pthread_mutex_unlock(&f.m);
            if (mt_engine_submit(e, p.b[i], done, &f)) return 1;
        }
        pthread_mutex_lock(&f.m);
        while (f.pending) pthread_cond_wait(&f.c, &f.m);
        pthread_mutex_unlock(&f.m);
        w_s[r] = (double)(mt_mono_ns() - t0) / 1e9;
        if (f.failed) {
            fprintf(stderr, "bench_engine: %zu batches failed\n", f.failed);
            return 1;
        }
        if (mt_engine_seal(e, true, NULL)) return 1; /* what the last hour left in the head */
        mt_engine_stats st;
        mt_engine_stats_get(e, &st);
        idx_b = (double)st.index_bytes, live_b = (double)st.index_live_bytes;
        blk_b = (double)st.block_bytes;
        bpp[r] = (live_b + blk_b) / (double)points;
        disk_bpp[r] = (idx_b + blk_b) / (double)points;

        uint64_t seen = 0;
        t0 = mt_mono_ns();
        for (uint32_t id = 1; id <= st.series; id++) {
            mt_scan *s;
            if (mt_scan_open(e, id, INT64_MIN, INT64_MAX, &s)) return 1;
            mt_points pts;
            while (mt_scan_next(s, &pts) == MT_OK) seen += pts.n;
            mt_scan_close(s);
        }
        scan_s[r] = (double)(mt_mono_ns() - t0) / 1e9;
        if (seen != points) {
            fprintf(stderr, "bench_engine: scanned %llu points, wrote %llu\n",
                    (unsigned long long)seen, (unsigned long long)points);
            return 1;
        }
        mt_engine_close(e);
        if (keep)
            printf("data kept in %s\n", dir);
        else
            nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        for (size_t i = 0; i < p.n; i++) mt_batch_free(p.b[i]);
        free(p.b);
    }
    mt_bench_report("write points/s", (double)points, w_s, repeat);
    mt_bench_report("scan points/s", (double)points, scan_s, repeat);
    qsort(bpp, (size_t)repeat, sizeof *bpp, mt_bench_cmp_double);
    qsort(disk_bpp, (size_t)repeat, sizeof *disk_bpp, mt_bench_cmp_double);
    printf("%-16s median %12.3f   (hour files %.2f MB + live index pages %.2f MB, last run)\n",
           "bytes/point", bpp[repeat / 2], blk_b / 1e6, live_b / 1e6);
    printf("%-16s median %12.3f   (index.mdb %.2f MB on disk: its free pages are the head log's "
           "reusable area)\n",
           "disk bytes/point", disk_bpp[repeat / 2], idx_b / 1e6);
    return 0;
}
