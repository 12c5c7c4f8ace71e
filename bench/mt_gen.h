/*
 * mt_gen.h — deterministic "devops" workload in line protocol, in the
 * manner of the TSBS devops use case.
 *
 * H hosts report every interval (10 s) for D hours. Each host has the tags
 * business_id (one of a fixed set of tenant UUIDs), datacenter, hostname,
 * os, rack and region, written sorted by key as Telegraf does, and four
 * measurements per tick:
 *
 *   cpu   10 float fields (usage_user ... usage_guest_nice), percentages
 *         with two decimals, each a bounded random walk in [0, 100]
 *   mem   5 integer gauges in bytes (used, free, cached, buffered,
 *         available), page-granular random walks under the host's total
 *   disk  4 integer counters (reads, writes, read_bytes, write_bytes)
 *   net   4 integer counters (bytes_recv, bytes_sent, packets_recv,
 *         packets_sent)
 *
 * 23 points per host and tick: 100 hosts x 24 h = 19,872,000 points.
 * Counters only grow, by a rate that itself walks; no value is constant
 * and none is white noise. The same options always give the same bytes.
 */
#ifndef MT_GEN_H
#define MT_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "mt_time.h"

#define MT_GEN_FIELDS_PER_TICK 23   /* points per host per tick */
#define MT_GEN_LINES_PER_TICK  4    /* lines per host per tick */
#define MT_GEN_MAX_LINE        1024 /* no generated line is longer */

typedef struct mt_gen_options {
    uint32_t hosts;         /* number of hosts (default 100) */
    uint32_t hours;         /* hours of data (default 24) */
    int64_t start_s;        /* first timestamp, epoch seconds (default 2025-01-01T00:00:00Z) */
    uint32_t interval_s;    /* seconds between reports (default 10) */
    uint64_t seed;          /* PRNG seed (default 1) */
    mt_precision precision; /* unit of the printed timestamps (default ns) */
} mt_gen_options;

/* The defaults above. */
mt_gen_options mt_gen_options_default(void);

/* Points (one per field) and lines the options produce in total. */
uint64_t mt_gen_total_points(const mt_gen_options *opt);
uint64_t mt_gen_total_lines(const mt_gen_options *opt);

typedef struct mt_gen mt_gen;

/* Create a generator positioned at the first line. MT_OK, MT_EINVAL or -ENOMEM. */
int mt_gen_new(const mt_gen_options *opt, mt_gen **out);

/* Free a generator. NULL is a no-op. */
void mt_gen_free(mt_gen *g);

/*
 * Write as many whole lines as fit into buf (capacity cap, at least
 * MT_GEN_MAX_LINE), each ending in '\n'. Returns the bytes written; 0 once
 * every line has been produced.
 */
size_t mt_gen_next(mt_gen *g, char *buf, size_t cap);

/*
 * Generate the whole workload into one malloc'd buffer (*out, *len); the
 * caller frees *out. MT_OK, MT_EINVAL or -ENOMEM.
 */
int mt_gen_all(const mt_gen_options *opt, char **out, size_t *len);

#endif
