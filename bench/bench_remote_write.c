/*
 * bench_remote_write — Prometheus remote-write decoding (ingest/mt_rw.h):
 * samples/s for prepared bodies, the way metrond's /api/v1/write sees them.
 *
 *   bench_remote_write [--series N] [--requests N] [--repeat N] [--dir D]
 *
 * Prepares --requests snappy-compressed WriteRequests of --series series
 * (500: Prometheus 2.42's max_samples_per_send) with one sample each,
 * node-exporter-like labels, 15 s apart. Then, --repeat times: "decode"
 * inflates and decodes every body into a batch (no engine); "decode+write"
 * does the same with the series cache and commits each batch to an engine
 * in a temporary directory under --dir (nosync: the decode and the engine,
 * not the disk). Prints the medians, min and max of samples/s and of body
 * MB/s (MB = 10^6 bytes of compressed body).
 */
#include <ftw.h>
#include <getopt.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mt_time.h"
#include "mt_rw.h"
#include "remote.pb-c.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

typedef struct body {
    char *p;
    size_t len;
} body;

/* One request: series s0 .. s0+n-1 at ms; snappy-compressed, malloc'd. */
static body make_body(size_t n, int64_t ms)
{
    static const char *const modes[] = {"idle", "user", "system", "iowait", "irq", "steal"};
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *ts = calloc(n, sizeof *ts), **tsp = calloc(n, sizeof *tsp);
    Prometheus__Label *lab = calloc(n * 5, sizeof *lab), **labp = calloc(n * 5, sizeof *labp);
    Prometheus__Sample *smp = calloc(n, sizeof *smp), **smpp = calloc(n, sizeof *smpp);
    char(*val)[4][48] = calloc(n, sizeof *val);
    if (!ts || !tsp || !lab || !labp || !smp || !smpp || !val) exit(1);
    for (size_t i = 0; i < n; i++) {
        const char *kv[5][2] = {{"__name__", "node_cpu_seconds_total"},
                                {"cpu", val[i][0]},
                                {"instance", val[i][1]},
                                {"job", "node"},
                                {"mode", modes[i % 6]}};
        snprintf(val[i][0], sizeof val[i][0], "%zu", i / 6 % 16);
        snprintf(val[i][1], sizeof val[i][1], "host-%zu.example.net:9100", i / 96);
        prometheus__time_series__init(&ts[i]);
        for (size_t k = 0; k < 5; k++) {
            Prometheus__Label *l = &lab[i * 5 + k];
            prometheus__label__init(l);
            l->name = (ProtobufCBinaryData){strlen(kv[k][0]), (uint8_t *)kv[k][0]};
            l->value = (ProtobufCBinaryData){strlen(kv[k][1]), (uint8_t *)kv[k][1]};
            labp[i * 5 + k] = l;
        }
        ts[i].n_labels = 5;
        ts[i].labels = &labp[i * 5];
        prometheus__sample__init(&smp[i]);
        smp[i].value = (double)(ms / 1000 % 100000) + (double)i * 0.25;
        smp[i].timestamp = ms;
        smpp[i] = &smp[i];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        tsp[i] = &ts[i];
    }
    wr.n_timeseries = n;
    wr.timeseries = tsp;
    size_t len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *raw = malloc(len);
    if (!raw) exit(1);
    prometheus__write_request__pack(&wr, raw);
    body b = {malloc(snappy_max_compressed_length(len)), snappy_max_compressed_length(len)};
    if (!b.p || snappy_compress((const char *)raw, len, b.p, &b.len) != SNAPPY_OK) exit(1);
    free(raw), free(ts), free(tsp), free(lab), free(labp), free(smp), free(smpp), free(val);
    return b;
}

int main(int argc, char **argv)
{
    size_t nseries = 500, nreq = 200;
    int repeat = 7;
    const char *base = "/tmp";
    static const struct option longopts[] = {{"series", required_argument, 0, 'S'},
                                             {"requests", required_argument, 0, 'R'},
                                             {"repeat", required_argument, 0, 'r'},
                                             {"dir", required_argument, 0, 'd'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'S': nseries = strtoul(optarg, NULL, 10); break;
        case 'R': nreq = strtoul(optarg, NULL, 10); break;
        case 'r': repeat = atoi(optarg); break;
        case 'd': base = optarg; break;
        default:
            fprintf(stderr, "usage: bench_remote_write [--series N] [--requests N] [--repeat N] "
                            "[--dir D]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > MT_BENCH_MAX_RUNS || !nseries || !nreq) return 2;
    body *bodies = calloc(nreq, sizeof *bodies);
    if (!bodies) return 1;
    double bytes = 0;
    int64_t t0ms = (mt_now_ns() / 1000000 / 3600000 - 2) * 3600000; /* two hours ago, aligned */
    for (size_t i = 0; i < nreq; i++) {
        bodies[i] = make_body(nseries, t0ms + (int64_t)i * 15000);
        bytes += (double)bodies[i].len;
    }
    double samples = (double)nseries * (double)nreq;
    printf("bench_remote_write: %zu requests x %zu series x 1 sample, %.1f bytes/request "
           "(snappy), %.1f bytes/sample\n",
           nreq, nseries, bytes / (double)nreq, bytes / samples);

    double dec_s[MT_BENCH_MAX_RUNS], wr_s[MT_BENCH_MAX_RUNS];
    mt_rw_result res;
    char err[512];
    for (int r = 0; r < repeat; r++) {
        mt_batch *b = mt_batch_new();
        int64_t t0 = mt_mono_ns();
        for (size_t i = 0; i < nreq; i++) {
            mt_batch_reset(b);
            if (mt_rw_decode(bodies[i].p, bodies[i].len, 25000000, b, NULL, NULL, &res, err,
                             sizeof err) ||
                res.samples != nseries) {
                fprintf(stderr, "bench_remote_write: decode: %s\n", err);
                return 1;
            }
        }
        dec_s[r] = (double)(mt_mono_ns() - t0) / 1e9;
        mt_batch_free(b);

        char dir[512];
        snprintf(dir, sizeof dir, "%s/metron-bench-rw-XXXXXX", base);
        if (!mkdtemp(dir)) return 1;
        mt_engine_options o = mt_engine_options_default();
        o.dir = dir;
        o.nosync = true;
        mt_engine *e;
        mt_series_cache *cache;
        if (mt_engine_open(&o, &e) || mt_series_cache_new(e, 0, &cache)) return 1;
        t0 = mt_mono_ns();
        for (size_t i = 0; i < nreq; i++) {
            b = mt_batch_new();
            mt_write_result wres;
            if (!b ||
                mt_rw_decode(bodies[i].p, bodies[i].len, 25000000, b, cache, NULL, &res, err,
                             sizeof err) ||
                mt_engine_write(e, b, &wres) || wres.rc || wres.accepted != nseries) {
                fprintf(stderr, "bench_remote_write: decode+write of request %zu failed %s\n", i,
                        err);
                return 1;
            }
            mt_batch_free(b);
        }
        wr_s[r] = (double)(mt_mono_ns() - t0) / 1e9;
        mt_series_cache_free(cache);
        mt_engine_close(e);
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    double copy[MT_BENCH_MAX_RUNS];
    memcpy(copy, dec_s, sizeof dec_s);
    mt_bench_report("decode samples/s", samples, dec_s, repeat);
    mt_bench_report("decode MB/s", bytes / 1e6, copy, repeat);
    memcpy(copy, wr_s, sizeof wr_s);
    mt_bench_report("+write samples/s", samples, wr_s, repeat);
    mt_bench_report("+write MB/s", bytes / 1e6, copy, repeat);
    for (size_t i = 0; i < nreq; i++) free(bodies[i].p);
    free(bodies);
    return 0;
}
