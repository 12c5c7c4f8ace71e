/*
 * bench_late — late points into a sealed hour against the same points in
 * order (issue 17): 100 hosts, an hour that ended two hours ago, then 100
 * bodies of 500 lines for it, each committed durably on its own (as
 * /write bodies are), then whatever is left in the head sealed.
 *
 *   in order  the hour's first points are in the head, unsealed: the 100
 *             bodies land in an open hour, which is sealed once at the end;
 *   late      the same first points were sealed into the hour's file
 *             before: the 100 bodies are late points for a sealed hour.
 *
 * Reported per case: seconds and bytes written to disk (/proc/self/io
 * write_bytes: index.mdb and hour files, fsyncs included) from the first
 * body to the end of the final seal, and the hour's generations written;
 * also the bytes handed to write calls (wchar). The two differ: write_bytes
 * counts the page cache's pages the writes dirtied, whole (LMDB's 120-byte
 * meta write is a 4 KB page), so where LMDB places its pages moves it by
 * itself; wchar counts what the process asked to write.
 * Medians of --repeat runs, each on fresh data directories under --dir
 * (on a disk: tmpfs does not count written bytes).
 *
 *   bench_late [--hosts N] [--bodies N] [--lines N] [--repeat N] [--dir D]
 */
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "mt_time.h"
#include "mt_engine.h"
#include "mt_gen.h"
#include "mt_ingest.h"
#include "mt_lp.h"

typedef struct bodies {
    mt_batch **b;
    size_t n, cap, per, lines; /* per: lines a batch takes; lines: the most to take in all */
    size_t taken;
} bodies;

static int on_line(void *ud, const mt_lp_line *l)
{
    bodies *p = ud;
    if (p->lines && p->taken >= p->lines) return 0;
    if (p->n == 0 || p->taken % p->per == 0) {
        if (p->n == p->cap) {
            mt_batch **g = realloc(p->b, (p->cap = p->cap ? p->cap * 2 : 256) * sizeof *g);
            if (!g) return -1;
            p->b = g;
        }
        if (!(p->b[p->n++] = mt_batch_new())) return -1;
    }
    p->taken++;
    return mt_ingest_line(p->b[p->n - 1], l, NULL, NULL);
}

/* The workload of opt parsed into batches of per lines, at most lines lines (0: all). */
static int prepare(const mt_gen_options *opt, size_t per, size_t lines, bodies *out)
{
    *out = (bodies){.per = per, .lines = lines};
    mt_lp_handler h = {on_line, NULL, out};
    char *text;
    size_t len;
    mt_lp_parser *p = NULL;
    int rc = mt_gen_all(opt, &text, &len);
    if (rc) return rc;
    rc = mt_lp_parser_new(NULL, &p);
    if (!rc) rc = mt_lp_feed(p, text, len, 0, &h);
    if (!rc) rc = mt_lp_finish(p, 0, &h);
    mt_lp_parser_free(p);
    free(text);
    return rc;
}

static void release(bodies *b)
{
    for (size_t i = 0; i < b->n; i++) mt_batch_free(b->b[i]);
    free(b->b);
}

/* A counter of /proc/self/io: "write_bytes" (pages this process dirtied, as the kernel
   accounts them for the disk) or "wchar" (bytes it passed to write calls). */
static uint64_t io_counter(const char *name)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v = 0;
    size_t nl = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, nl) && line[nl] == ':' && sscanf(line + nl + 1, "%llu", &v) == 1)
            break;
    if (f) fclose(f);
    return v;
}

static int write_all(mt_engine *e, const bodies *b, uint64_t *points)
{
    for (size_t i = 0; i < b->n; i++) {
        mt_write_result r;
        int rc = mt_engine_write(e, b->b[i], &r);
        if (rc || r.rejected) {
            fprintf(stderr, "bench_late: body %zu: %s, %zu rejected\n", i, mt_strerror(rc),
                    r.rejected);
            return rc ? rc : MT_EINVAL;
        }
        if (points) *points += r.accepted;
    }
    return MT_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

typedef struct result {
    double secs, bytes, handed; /* write_bytes, wchar (io_counter) */
    uint64_t points, gens;
} result;

/* One case on a fresh directory: the base, sealed first when late, then the timed bodies. */
static int run(const char *base_dir, bool late, const bodies *base, const bodies *late_b,
               result *res)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/metron-late-XXXXXX", base_dir);
    if (!mkdtemp(dir)) return -1;
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    mt_engine *e;
    int rc = mt_engine_open(&o, &e);
    if (rc) return rc;
    rc = write_all(e, base, NULL);
    if (!rc && late) rc = mt_engine_seal(e, true, NULL);
    mt_engine_stats st0, st1;
    mt_engine_stats_get(e, &st0);
    uint64_t w0 = io_counter("write_bytes"), c0 = io_counter("wchar");
    int64_t t0 = mt_mono_ns();
    *res = (result){0};
    if (!rc) rc = write_all(e, late_b, &res->points);
    if (!rc) rc = mt_engine_seal(e, true, NULL);
    res->secs = (double)(mt_mono_ns() - t0) / 1e9;
    res->bytes = (double)(io_counter("write_bytes") - w0);
    res->handed = (double)(io_counter("wchar") - c0);
    mt_engine_stats_get(e, &st1);
    res->gens = st1.hour_files_written - st0.hour_files_written;
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int main(int argc, char **argv)
{
    int hosts = 100, nbodies = 100, lines = 500, repeat = 3;
    const char *dir = "/var/tmp";
    static const struct option longopts[] = {
        {"hosts", required_argument, 0, 'H'}, {"bodies", required_argument, 0, 'b'},
        {"lines", required_argument, 0, 'l'}, {"repeat", required_argument, 0, 'r'},
        {"dir", required_argument, 0, 'd'},   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': hosts = atoi(optarg); break;
        case 'b': nbodies = atoi(optarg); break;
        case 'l': lines = atoi(optarg); break;
        case 'r': repeat = atoi(optarg); break;
        case 'd': dir = optarg; break;
        default:
            fprintf(stderr, "usage: bench_late [--hosts N] [--bodies N] [--lines N] [--repeat N] "
                            "[--dir D]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 3;
    if (hosts < 1 || nbodies < 1 || lines < 1) return 2;
    /* the hour that ended two hours ago: sealable by the wall clock, as late data is */
    int64_t hour_s = (int64_t)time(NULL) / 3600 * 3600 - 3 * 3600;
    mt_gen_options g = mt_gen_options_default();
    g.hosts = (uint32_t)hosts;
    g.hours = 1;
    g.start_s = hour_s;
    bodies base, late;
    if (prepare(&g, 2000, 0, &base)) return 1;
    g.seed = 2;
    g.start_s = hour_s + 5; /* the same series, 5 s later: new points of the same hour */
    if (prepare(&g, (size_t)lines, (size_t)nbodies * (size_t)lines, &late)) return 1;
    printf("bench_late: %d hosts, an hour that ended 2 h ago (%zu lines already in it), then %zu "
           "bodies of %d lines, each committed durably; %d runs\n",
           hosts, base.taken, late.n, lines, repeat);
    double s[2][MT_BENCH_MAX_RUNS], by[2][MT_BENCH_MAX_RUNS], hd[2][MT_BENCH_MAX_RUNS];
    result r[2] = {{0}};
    for (int i = 0; i < repeat; i++)
        for (int k = 0; k < 2; k++) {
            if (run(dir, k == 1, &base, &late, &r[k])) {
                fprintf(stderr, "bench_late: run failed\n");
                return 1;
            }
            s[k][i] = r[k].secs;
            by[k][i] = r[k].bytes;
            hd[k][i] = r[k].handed;
        }
    static const char *name[2] = {"in order", "late"};
    double ms[2], mb[2];
    for (int k = 0; k < 2; k++) {
        qsort(s[k], (size_t)repeat, sizeof(double), mt_bench_cmp_double);
        qsort(by[k], (size_t)repeat, sizeof(double), mt_bench_cmp_double);
        qsort(hd[k], (size_t)repeat, sizeof(double), mt_bench_cmp_double);
        ms[k] = s[k][repeat / 2], mb[k] = by[k][repeat / 2];
        double mh = hd[k][repeat / 2];
        printf("%-9s median %7.3f s  %8.1f MB written  %6.1f bytes/point  %llu hour files "
               "written (%llu points); %.1f bytes/point handed to write calls\n",
               name[k], ms[k], mb[k] / 1e6, mb[k] / (double)r[k].points,
               (unsigned long long)r[k].gens, (unsigned long long)r[k].points,
               mh / (double)r[k].points);
    }
    printf("late / in order: time %.2fx, bytes written %.2fx\n", ms[1] / ms[0], mb[1] / mb[0]);
    release(&base);
    release(&late);
    return 0;
}
