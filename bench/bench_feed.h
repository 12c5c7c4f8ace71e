/*
 * bench_feed.h — the workload, generated and parsed straight into a
 * handler, a few MB at a time (benchmarks that need points, not text).
 */
#ifndef MT_BENCH_FEED_H
#define MT_BENCH_FEED_H

#include <stdlib.h>

#include "mt_gen.h"
#include "mt_lp.h"

/* Generate the workload of opt and parse all of it into h. 0, or -1 on failure. */
static inline int mt_bench_parse_workload(const mt_gen_options *opt, const mt_lp_handler *h)
{
    const size_t cap = 1 << 22;
    mt_gen *g = NULL;
    mt_lp_parser *p = NULL;
    char *buf = malloc(cap);
    int rc = buf && !mt_gen_new(opt, &g) && !mt_lp_parser_new(NULL, &p) ? 0 : -1;
    size_t n;
    while (!rc && (n = mt_gen_next(g, buf, cap)) > 0)
        if (mt_lp_feed(p, buf, n, 0, h)) rc = -1;
    if (!rc && mt_lp_finish(p, 0, h)) rc = -1;
    mt_gen_free(g);
    mt_lp_parser_free(p);
    free(buf);
    return rc;
}

#endif
