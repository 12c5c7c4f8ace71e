/*
 * bench_rollup — Metron's side of bench/rollup_vs_pg.sh: the devops
 * workload loaded into a fresh data directory and sealed, --repeat times;
 * per run the time of the whole seal (decode, encode, zstd, fsync, LMDB),
 * the part of it that computes and stores every hourly rollup (series and
 * group rows, sketches), and the part of that spent on the group rows
 * alone (what the seed's view computes), then the
 * bytes on disk after compaction. Optionally writes the same points as
 * COPY text for the seed's monitoring.performance_metrics.
 *
 *   bench_rollup [--hosts N] [--hours N] [--start EPOCH_S] [--repeat N] [--copy FILE]
 *
 * Prints key=value lines (medians) for the script to read.
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

typedef struct loader {
    mt_batch *b;
    mt_engine *e;
    FILE *copy; /* NULL: no COPY text */
    char tags[1024];
} loader;

/* The line's tags as a JSON object (the generator's values need no escaping but quotes). */
static void tags_json(const mt_lp_line *l, char *out, size_t cap)
{
    size_t n = 0;
    out[n++] = '{';
    for (size_t i = 0; i < l->ntags && n < cap - 8; i++) {
        if (!strncmp(l->tags[i].key.ptr, "business_id", l->tags[i].key.len)) continue;
        n += (size_t)snprintf(out + n, cap - n, "%s\"%.*s\": \"%.*s\"", n > 1 ? ", " : "",
                              (int)l->tags[i].key.len, l->tags[i].key.ptr,
                              (int)l->tags[i].value.len, l->tags[i].value.ptr);
    }
    snprintf(out + n, cap - n, "}");
}

/* One COPY row per field: business_id, metric_name, metric_category, metric_type, value, tags,
 * time. */
static void copy_rows(loader *ld, const mt_lp_line *l)
{
    mt_lp_str bid = {"\\N", 2};
    for (size_t i = 0; i < l->ntags; i++)
        if (l->tags[i].key.len == 11 && !memcmp(l->tags[i].key.ptr, "business_id", 11))
            bid = l->tags[i].value;
    tags_json(l, ld->tags, sizeof ld->tags);
    bool counter = (l->measurement.len == 4 && !memcmp(l->measurement.ptr, "disk", 4)) ||
                   (l->measurement.len == 3 && !memcmp(l->measurement.ptr, "net", 3));
    char when[48];
    mt_time_format(l->ts, when, sizeof when);
    for (size_t i = 0; i < l->nfields; i++) {
        const mt_lp_field *f = &l->fields[i];
        char v[64];
        if (f->type == MT_LP_FLOAT)
            snprintf(v, sizeof v, "%.17g", f->v.f);
        else if (f->type == MT_LP_INT)
            snprintf(v, sizeof v, "%lld", (long long)f->v.i);
        else if (f->type == MT_LP_UINT)
            snprintf(v, sizeof v, "%llu", (unsigned long long)f->v.u);
        else
            continue;
        fprintf(ld->copy, "%.*s\t%.*s\t%.*s\t%s\t%s\t%s\t%s\n", (int)bid.len, bid.ptr,
                (int)f->key.len, f->key.ptr, (int)l->measurement.len, l->measurement.ptr,
                counter ? "counter" : "gauge", v, ld->tags, when);
    }
}

static int on_line(void *ud, const mt_lp_line *l)
{
    loader *ld = ud;
    if (ld->copy) copy_rows(ld, l);
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

static uint64_t tree_bytes;
static int du_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)p, (void)f;
    if (flag == FTW_F) tree_bytes += (uint64_t)sb->st_blocks * 512;
    return 0;
}

static int count_group(void *ud, const mt_rollup *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, mt_bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int repeat = 3;
    const char *copy = NULL;
    static const struct option longopts[] = {
        {"hosts", required_argument, 0, 'H'}, {"hours", required_argument, 0, 'D'},
        {"start", required_argument, 0, 's'}, {"repeat", required_argument, 0, 'r'},
        {"copy", required_argument, 0, 'c'},  {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.start_s = strtoll(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        case 'c': copy = optarg; break;
        default:
            fprintf(stderr, "usage: bench_rollup [--hosts N] [--hours N] [--start EPOCH_S] "
                            "[--repeat N] [--copy FILE]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 3;
    double seal[MT_BENCH_MAX_RUNS], rollup[MT_BENCH_MAX_RUNS], group[MT_BENCH_MAX_RUNS];
    uint64_t bytes = 0, index_bytes = 0;
    size_t groups = 0;
    for (int run = 0; run < repeat; run++) {
        char dir[] = "/tmp/metron-bench-rollup-XXXXXX";
        if (!mkdtemp(dir)) return 1;
        mt_engine_options o = mt_engine_options_default();
        o.dir = dir;
        o.auto_seal = false; /* the seal below is what is measured */
        loader ld = {.b = mt_batch_new()};
        if (run == 0 && copy && !(ld.copy = fopen(copy, "w"))) return 1;
        if (mt_engine_open(&o, &ld.e)) return 1;
        mt_lp_handler h = {on_line, NULL, &ld};
        mt_write_result r;
        if (mt_bench_parse_workload(&opt, &h) || mt_engine_write(ld.e, ld.b, &r)) return 1;
        mt_batch_free(ld.b);
        if (ld.copy && fclose(ld.copy)) return 1;
        int64_t t0 = mt_mono_ns();
        if (mt_engine_seal(ld.e, true, NULL)) return 1;
        seal[run] = (double)(mt_mono_ns() - t0) / 1e9;
        mt_engine_stats st;
        mt_engine_stats_get(ld.e, &st);
        rollup[run] = st.rollup_seconds;
        group[run] = st.rollup_group_seconds;
        if (run == 0) {
            mt_compact_result cr;
            if (mt_engine_compact(ld.e, true, NULL, NULL, &cr)) return 1;
            index_bytes = cr.index_after;
            if (mt_engine_rollups(ld.e, INT32_MIN, INT32_MAX, true, count_group, &groups)) return 1;
        }
        mt_engine_close(ld.e);
        if (run == 0) {
            tree_bytes = 0;
            nftw(dir, du_cb, 16, FTW_PHYS);
            bytes = tree_bytes;
        }
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    uint64_t points = mt_gen_total_points(&opt);
    printf("points=%llu\n", (unsigned long long)points);
    printf("group_rollup_rows=%zu\n", groups);
    printf("metron_seal_s=%.4f\n", median(seal, repeat));
    printf("metron_rollup_s=%.4f\n", median(rollup, repeat));
    printf("metron_group_s=%.4f\n", median(group, repeat));
    printf("metron_bytes=%llu\n", (unsigned long long)bytes);
    printf("metron_index_bytes=%llu\n", (unsigned long long)index_bytes);
    return 0;
}
