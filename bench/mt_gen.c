/*
 * mt_gen.c — the devops workload generator (see mt_gen.h).
 *
 * Values are kept as integers (hundredths of a percent, memory pages,
 * counters) and printed with hand-written digit loops: the generator must
 * outrun the systems it feeds, several million lines per second. Random
 * steps are near-normal (the sum of four uniforms, scaled to a standard
 * deviation of one) from splitmix64, seeded per host so that every host's
 * series is the same whatever the number of hosts.
 */
#include "mt_gen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mt_err.h"

#define CPU_FIELDS 10
#define PAGE       4096

static const char *const cpu_names[CPU_FIELDS] = {
    "usage_user", "usage_system",  "usage_idle",  "usage_nice",  "usage_iowait",
    "usage_irq",  "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"};
static const char *const regions[] = {"us-east-1",      "us-west-1",      "us-west-2",
                                      "eu-west-1",      "eu-central-1",   "ap-southeast-1",
                                      "ap-southeast-2", "ap-northeast-1", "sa-east-1"};
static const char *const oses[] = {"Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"};
static const char *const tenants[] = {
    "0b7c6a52-8f3e-4d21-9a57-3c1e2f4d5a01", "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
    "2f9a8b7c-6d5e-4f30-a1b2-c3d4e5f60718", "3a4b5c6d-7e8f-4901-b2c3-d4e5f6071829",
    "4c5d6e7f-8091-4a2b-83c4-d5e6f708192a", "5e6f7081-92a3-4b4c-95d6-e7f8091a2b3c",
    "6f708192-a3b4-4c5d-a6e7-f8091a2b3c4d", "7f8a9b0c-1d2e-4f3a-b4c5-d6e7f8091a2b"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct host {
    char tags[256];                             /* ",business_id=...,region=..." */
    size_t tags_len;                            /* bytes in tags */
    uint64_t rng;                               /* this host's splitmix64 state */
    int32_t cpu[CPU_FIELDS];                    /* hundredths of a percent, [0, 10000] */
    int64_t mem_total;                          /* pages */
    int64_t mem_used, mem_cached, mem_buffered; /* pages */
    int64_t disk_rate_r, disk_rate_w;           /* ops per interval */
    int64_t op_sectors_r, op_sectors_w;         /* mean 512-byte sectors per op */
    uint64_t reads, writes, read_bytes, write_bytes;
    int64_t net_rate_rx, net_rate_tx; /* packets per interval */
    int64_t pkt_size_rx, pkt_size_tx; /* mean bytes per packet */
    uint64_t bytes_recv, bytes_sent, packets_recv, packets_sent;
} host;

struct mt_gen {
    mt_gen_options opt;
    host *hosts;
    uint64_t ticks;     /* total reports per host */
    uint64_t tick;      /* current tick */
    uint32_t next_host; /* next host to write in the current tick */
    char ts[24];        /* the current tick's timestamp, printed */
    size_t ts_len;
};

mt_gen_options mt_gen_options_default(void)
{
    return (mt_gen_options){.hosts = 100,
                            .hours = 24,
                            .start_s = 1735689600,
                            .interval_s = 10,
                            .seed = 1,
                            .precision = MT_PREC_NS};
}

static uint64_t ticks_of(const mt_gen_options *opt)
{
    return (uint64_t)opt->hours * 3600 / opt->interval_s;
}

uint64_t mt_gen_total_points(const mt_gen_options *opt)
{
    return ticks_of(opt) * opt->hosts * MT_GEN_FIELDS_PER_TICK;
}

uint64_t mt_gen_total_lines(const mt_gen_options *opt)
{
    return ticks_of(opt) * opt->hosts * MT_GEN_LINES_PER_TICK;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Near-normal step with standard deviation sd, rounded to an integer. */
static int64_t step(host *h, double sd)
{
    uint64_t r = splitmix64(&h->rng);
    double u = 0;
    for (int k = 0; k < 4; k++, r >>= 16) u += (double)(r & 0xFFFF) / 65536.0;
    double z = (u - 2.0) * 1.7320508075688772; /* variance 4/12 scaled to 1 */
    double v = z * sd;
    return (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
}

/* Walk v by a step, reflecting at the bounds. */
static int64_t walk(host *h, int64_t v, double sd, int64_t lo, int64_t hi)
{
    v += step(h, sd);
    if (v < lo) v = lo + (lo - v);
    if (v > hi) v = hi - (v - hi);
    if (v < lo) v = lo;
    return v;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

/* Hundredths as the shortest decimal: 5810 -> "58.1", 5800 -> "58". */
static char *put_hundredths(char *p, int32_t v)
{
    p = put_u64(p, (uint64_t)(v / 100));
    int f = v % 100;
    if (f) {
        *p++ = '.';
        *p++ = (char)('0' + f / 10);
        if (f % 10) *p++ = (char)('0' + f % 10);
    }
    return p;
}

static void host_init(host *h, uint32_t i, uint64_t seed)
{
    h->rng = seed * 0x100000001B3ull ^ (i + 1) * 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 3; k++) splitmix64(&h->rng);
    const char *region = regions[splitmix64(&h->rng) % NELEM(regions)];
    char *p = h->tags;
    p = put_str(p, ",business_id=");
    p = put_str(p, tenants[i % NELEM(tenants)]);
    p = put_str(p, ",datacenter=");
    p = put_str(p, region);
    *p++ = (char)('a' + splitmix64(&h->rng) % 3);
    p = put_str(p, ",hostname=host_");
    p = put_u64(p, i);
    p = put_str(p, ",os=");
    p = put_str(p, oses[splitmix64(&h->rng) % NELEM(oses)]);
    p = put_str(p, ",rack=");
    p = put_u64(p, splitmix64(&h->rng) % 100);
    p = put_str(p, ",region=");
    p = put_str(p, region);
    h->tags_len = (size_t)(p - h->tags);

    for (int k = 0; k < CPU_FIELDS; k++) h->cpu[k] = (int32_t)(splitmix64(&h->rng) % 10001);
    h->mem_total = (int64_t)(8ull << (splitmix64(&h->rng) % 4)) * (1 << 30) / PAGE;
    h->mem_used = h->mem_total / 4 + (int64_t)(splitmix64(&h->rng) % (uint64_t)(h->mem_total / 4));
    h->mem_cached = h->mem_total / 8;
    h->mem_buffered = h->mem_total / 64;
    h->disk_rate_r = (int64_t)(splitmix64(&h->rng) % 2000);
    h->disk_rate_w = (int64_t)(splitmix64(&h->rng) % 2000);
    h->reads = splitmix64(&h->rng) % 100000000;
    h->writes = splitmix64(&h->rng) % 100000000;
    h->op_sectors_r = 8 + (int64_t)(splitmix64(&h->rng) % 120);
    h->op_sectors_w = 8 + (int64_t)(splitmix64(&h->rng) % 120);
    h->read_bytes = h->reads * (uint64_t)h->op_sectors_r * 512;
    h->write_bytes = h->writes * (uint64_t)h->op_sectors_w * 512;
    h->net_rate_rx = (int64_t)(splitmix64(&h->rng) % 50000);
    h->net_rate_tx = (int64_t)(splitmix64(&h->rng) % 50000);
    h->pkt_size_rx = 64 + (int64_t)(splitmix64(&h->rng) % 1400);
    h->pkt_size_tx = 64 + (int64_t)(splitmix64(&h->rng) % 1400);
    h->packets_recv = splitmix64(&h->rng) % 1000000000;
    h->packets_sent = splitmix64(&h->rng) % 1000000000;
    h->bytes_recv = h->packets_recv * (uint64_t)h->pkt_size_rx;
    h->bytes_sent = h->packets_sent * (uint64_t)h->pkt_size_tx;
}

/* Advance one host by one tick. */
static void host_step(host *h)
{
    for (int k = 0; k < CPU_FIELDS; k++) h->cpu[k] = (int32_t)walk(h, h->cpu[k], 100.0, 0, 10000);
    int64_t t = h->mem_total;
    h->mem_used = walk(h, h->mem_used, 2048.0, t / 10, t * 7 / 10);
    h->mem_cached = walk(h, h->mem_cached, 512.0, 0, t / 4);
    h->mem_buffered = walk(h, h->mem_buffered, 64.0, 0, t / 32);
    h->disk_rate_r = walk(h, h->disk_rate_r, 40.0, 0, 5000);
    h->disk_rate_w = walk(h, h->disk_rate_w, 40.0, 0, 5000);
    h->reads += (uint64_t)h->disk_rate_r;
    h->writes += (uint64_t)h->disk_rate_w;
    h->op_sectors_r = walk(h, h->op_sectors_r, 2.0, 1, 256);
    h->op_sectors_w = walk(h, h->op_sectors_w, 2.0, 1, 256);
    h->read_bytes += (uint64_t)(h->disk_rate_r * h->op_sectors_r * 512);
    h->write_bytes += (uint64_t)(h->disk_rate_w * h->op_sectors_w * 512);
    h->net_rate_rx = walk(h, h->net_rate_rx, 500.0, 0, 100000);
    h->net_rate_tx = walk(h, h->net_rate_tx, 500.0, 0, 100000);
    h->pkt_size_rx = walk(h, h->pkt_size_rx, 8.0, 64, 1500);
    h->pkt_size_tx = walk(h, h->pkt_size_tx, 8.0, 64, 1500);
    h->packets_recv += (uint64_t)h->net_rate_rx;
    h->packets_sent += (uint64_t)h->net_rate_tx;
    h->bytes_recv += (uint64_t)(h->net_rate_rx * h->pkt_size_rx);
    h->bytes_sent += (uint64_t)(h->net_rate_tx * h->pkt_size_tx);
}

/* Start a line: measurement, the host's tags, a space. */
static char *line_start(char *p, const char *measurement, const host *h)
{
    p = put_str(p, measurement);
    memcpy(p, h->tags, h->tags_len);
    p += h->tags_len;
    *p++ = ' ';
    return p;
}

static char *put_int_field(char *p, bool first, const char *key, uint64_t v)
{
    if (!first) *p++ = ',';
    p = put_str(p, key);
    *p++ = '=';
    p = put_u64(p, v);
    *p++ = 'i';
    return p;
}

static char *line_end(char *p, const mt_gen *g)
{
    *p++ = ' ';
    memcpy(p, g->ts, g->ts_len);
    p += g->ts_len;
    *p++ = '\n';
    return p;
}

/* Write the four lines of host h for the current tick. */
static char *host_lines(const mt_gen *g, const host *h, char *p)
{
    p = line_start(p, "cpu", h);
    for (int k = 0; k < CPU_FIELDS; k++) {
        if (k) *p++ = ',';
        p = put_str(p, cpu_names[k]);
        *p++ = '=';
        p = put_hundredths(p, h->cpu[k]);
    }
    p = line_end(p, g);

    int64_t free_pages = h->mem_total - h->mem_used - h->mem_cached - h->mem_buffered;
    p = line_start(p, "mem", h);
    p = put_int_field(p, true, "used", (uint64_t)h->mem_used * PAGE);
    p = put_int_field(p, false, "free", (uint64_t)free_pages * PAGE);
    p = put_int_field(p, false, "cached", (uint64_t)h->mem_cached * PAGE);
    p = put_int_field(p, false, "buffered", (uint64_t)h->mem_buffered * PAGE);
    p = put_int_field(p, false, "available",
                      (uint64_t)(free_pages + h->mem_cached + h->mem_buffered) * PAGE);
    p = line_end(p, g);

    p = line_start(p, "disk", h);
    p = put_int_field(p, true, "reads", h->reads);
    p = put_int_field(p, false, "writes", h->writes);
    p = put_int_field(p, false, "read_bytes", h->read_bytes);
    p = put_int_field(p, false, "write_bytes", h->write_bytes);
    p = line_end(p, g);

    p = line_start(p, "net", h);
    p = put_int_field(p, true, "bytes_recv", h->bytes_recv);
    p = put_int_field(p, false, "bytes_sent", h->bytes_sent);
    p = put_int_field(p, false, "packets_recv", h->packets_recv);
    p = put_int_field(p, false, "packets_sent", h->packets_sent);
    return line_end(p, g);
}

static void set_tick_ts(mt_gen *g)
{
    int64_t s = g->opt.start_s + (int64_t)(g->tick * g->opt.interval_s);
    int64_t v = s * (1000000000 / mt_precision_factor(g->opt.precision));
    char *p = g->ts;
    if (v < 0) *p++ = '-', v = -v;
    p = put_u64(p, (uint64_t)v);
    g->ts_len = (size_t)(p - g->ts);
}

int mt_gen_new(const mt_gen_options *opt, mt_gen **out)
{
    if (!opt->hosts || !opt->interval_s || opt->precision > MT_PREC_S) return MT_EINVAL;
    mt_gen *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    g->opt = *opt;
    g->hosts = calloc(opt->hosts, sizeof *g->hosts);
    if (!g->hosts) {
        free(g);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < opt->hosts; i++) host_init(&g->hosts[i], i, opt->seed);
    g->ticks = ticks_of(opt);
    set_tick_ts(g);
    *out = g;
    return MT_OK;
}

void mt_gen_free(mt_gen *g)
{
    if (!g) return;
    free(g->hosts);
    free(g);
}

size_t mt_gen_next(mt_gen *g, char *buf, size_t cap)
{
    char *p = buf, *end = buf + cap;
    while (g->tick < g->ticks && (size_t)(end - p) >= MT_GEN_LINES_PER_TICK * MT_GEN_MAX_LINE) {
        host *h = &g->hosts[g->next_host];
        host_step(h);
        p = host_lines(g, h, p);
        if (++g->next_host == g->opt.hosts) {
            g->next_host = 0;
            g->tick++;
            set_tick_ts(g);
        }
    }
    return (size_t)(p - buf);
}

int mt_gen_all(const mt_gen_options *opt, char **out, size_t *len)
{
    mt_gen *g;
    int rc = mt_gen_new(opt, &g);
    if (rc) return rc;
    size_t cap = 1 << 20, used = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            mt_gen_free(g);
            return -ENOMEM;
        }
        if (cap - used < MT_GEN_LINES_PER_TICK * MT_GEN_MAX_LINE * 16) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
            continue;
        }
        size_t n = mt_gen_next(g, buf + used, cap - used);
        if (!n) break;
        used += n;
    }
    mt_gen_free(g);
    *out = buf;
    *len = used;
    return MT_OK;
}
