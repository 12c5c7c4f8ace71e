/*
 * bench_codec — the chunk codec on the devops workload: bytes per point of
 * the encoded chunks (one chunk per series and hour, as sealing writes
 * them) and decode throughput of a full scan, one core.
 *
 *   bench_codec [--hosts N] [--hours N] [--seed N] [--repeat N] [--level L]
 *
 * The workload is generated, parsed with the real parser, and split into
 * series in memory (the generator's fixed line order names the series);
 * then every chunk is encoded once and the whole set decoded --repeat
 * times. Index and file overhead are not included: this is the codec alone.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_feed.h"
#include "bench_util.h"
#include "mt_time.h"
#include "mt_codec.h"
#include "mt_gen.h"
#include "mt_lp.h"

typedef struct series {
    int64_t *ts;
    mt_val *vals;
    mt_vtype type;
} series;

typedef struct loader {
    series *s;       /* lines_per_tick * MAX_FIELDS series */
    size_t per_tick; /* lines per tick */
    uint64_t line;   /* lines seen */
    size_t ticks;
} loader;

#define MAX_FIELDS 10

static int on_line(void *ud, const mt_lp_line *l)
{
    loader *ld = ud;
    size_t slot = ld->line % ld->per_tick, tick = ld->line / ld->per_tick;
    for (size_t f = 0; f < l->nfields; f++) {
        series *s = &ld->s[slot * MAX_FIELDS + f];
        s->type = l->fields[f].type == MT_LP_FLOAT ? MT_VT_FLOAT : MT_VT_INT;
        s->ts[tick] = l->ts;
        s->vals[tick].u = l->fields[f].v.u;
    }
    ld->line++;
    return 0;
}

int main(int argc, char **argv)
{
    mt_gen_options opt = mt_gen_options_default();
    int repeat = 5, level = 0;
    static const struct option longopts[] = {
        {"hosts", required_argument, 0, 'H'}, {"hours", required_argument, 0, 'D'},
        {"seed", required_argument, 0, 's'},  {"repeat", required_argument, 0, 'r'},
        {"level", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': opt.hosts = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'D': opt.hours = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': opt.seed = strtoull(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        case 'l': level = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench_codec [--hosts N] [--hours N] [--seed N] [--repeat N] "
                            "[--level L]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS) repeat = 5;
    size_t ticks = (size_t)opt.hours * 3600 / opt.interval_s, per_hour = 3600 / opt.interval_s;
    loader ld = {.per_tick = (size_t)opt.hosts * MT_GEN_LINES_PER_TICK, .ticks = ticks};
    size_t nseries = ld.per_tick * MAX_FIELDS;
    ld.s = calloc(nseries, sizeof *ld.s);
    for (size_t i = 0; i < nseries; i++) {
        ld.s[i].ts = malloc(ticks * sizeof(int64_t));
        ld.s[i].vals = malloc(ticks * sizeof(mt_val));
        ld.s[i].type = MT_VT_COUNT; /* unused slot */
    }
    mt_lp_handler h = {on_line, NULL, &ld};
    if (mt_bench_parse_workload(&opt, &h)) return 1;

    /* Encode: one chunk per series and hour, kept in one arena. */
    mt_encoder *enc;
    if (mt_encoder_new(level, &enc)) return 1;
    size_t nchunks = 0, cap = 1 << 26, used = 0;
    uint8_t *arena = malloc(cap);
    size_t *offs = malloc(nseries * opt.hours * sizeof *offs);
    uint64_t points = 0, by_meas_bytes[MT_GEN_LINES_PER_TICK] = {0},
             by_meas_points[MT_GEN_LINES_PER_TICK] = {0};
    int64_t t0 = mt_mono_ns();
    for (size_t i = 0; i < nseries; i++) {
        if (ld.s[i].type == MT_VT_COUNT) continue;
        for (size_t hr = 0; hr < opt.hours; hr++) {
            mt_points pts = {.type = ld.s[i].type,
                             .n = per_hour,
                             .ts = ld.s[i].ts + hr * per_hour,
                             .vals = ld.s[i].vals + hr * per_hour};
            const uint8_t *chunk;
            size_t len;
            if (mt_encoder_encode(enc, &pts, &chunk, &len)) return 1;
            if (used + len + 8 > cap) arena = realloc(arena, cap *= 2);
            memcpy(arena + used, &len, sizeof len);
            memcpy(arena + used + sizeof len, chunk, len);
            offs[nchunks++] = used;
            used += sizeof len + len;
            points += per_hour;
            by_meas_bytes[(i / MAX_FIELDS) % MT_GEN_LINES_PER_TICK] += len;
            by_meas_points[(i / MAX_FIELDS) % MT_GEN_LINES_PER_TICK] += per_hour;
        }
    }
    double enc_s = (double)(mt_mono_ns() - t0) / 1e9;
    size_t bytes = used - nchunks * sizeof(size_t);
    printf("bench_codec: devops workload, %u hosts x %u h, seed %llu, zstd level %d: %llu points "
           "in %zu chunks\n",
           opt.hosts, opt.hours, (unsigned long long)opt.seed, level ? level : 9,
           (unsigned long long)points, nchunks);
    printf("encoded          %zu bytes, %.3f bytes/point; encode %.1f M points/s\n", bytes,
           (double)bytes / (double)points, (double)points / enc_s / 1e6);

    static const char *const names[MT_GEN_LINES_PER_TICK] = {"cpu", "mem", "disk", "net"};
    for (int m = 0; m < MT_GEN_LINES_PER_TICK; m++)
        printf("  %-5s          %.3f bytes/point\n", names[m],
               (double)by_meas_bytes[m] / (double)by_meas_points[m]);

    mt_decoder *dec;
    if (mt_decoder_new(&dec)) return 1;
    double secs[MT_BENCH_MAX_RUNS];
    double sink = 0;
    for (int r = 0; r < repeat; r++) {
        t0 = mt_mono_ns();
        for (size_t k = 0; k < nchunks; k++) {
            size_t len;
            memcpy(&len, arena + offs[k], sizeof len);
            mt_points out;
            if (mt_decoder_decode(dec, arena + offs[k] + sizeof len, len, &out)) return 1;
            sink += (double)out.vals[out.n - 1].i + (double)out.ts[0];
        }
        secs[r] = (double)(mt_mono_ns() - t0) / 1e9;
    }
    mt_bench_report("decode points/s", (double)points, secs, repeat);
    if (sink == 0.5) printf("%f\n", sink);
    mt_encoder_free(enc);
    mt_decoder_free(dec);
    free(arena);
    free(offs);
    for (size_t i = 0; i < nseries; i++) {
        free(ld.s[i].ts);
        free(ld.s[i].vals);
    }
    free(ld.s);
    return 0;
}
