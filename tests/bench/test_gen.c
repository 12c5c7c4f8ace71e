/* test_gen.c — the workload generator: deterministic, parseable, realistic. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_gen.h"
#include "mt_lp.h"

typedef struct stats {
    uint64_t lines, points, errors;
    int64_t first_ts, last_ts;
    double cpu_min, cpu_max;
    uint64_t last_reads[4]; /* disk reads of hosts 0..3, to check growth */
    uint64_t counter_drops; /* times a counter went down */
    uint64_t cpu_repeats;   /* usage_user equal to the previous tick's */
    double last_cpu[4];
    int with_business_id;
} stats;

static int host_of(const mt_lp_line *l)
{
    for (size_t i = 0; i < l->ntags; i++)
        if (l->tags[i].key.len == 8 && memcmp(l->tags[i].key.ptr, "hostname", 8) == 0)
            return atoi(l->tags[i].value.ptr + 5);
    return -1;
}

static int on_line(void *ud, const mt_lp_line *l)
{
    stats *s = ud;
    if (!s->lines) s->first_ts = l->ts;
    s->last_ts = l->ts;
    s->lines++;
    s->points += l->nfields;
    cr_assert(l->has_ts);
    cr_assert_eq(l->ntags, 6);
    if (l->tags[0].key.len == 11 && memcmp(l->tags[0].key.ptr, "business_id", 11) == 0)
        s->with_business_id++;
    int h = host_of(l);
    if (l->measurement.len == 3 && memcmp(l->measurement.ptr, "cpu", 3) == 0) {
        cr_assert_eq(l->nfields, 10);
        for (size_t i = 0; i < l->nfields; i++) {
            cr_assert_eq(l->fields[i].type, MT_LP_FLOAT);
            double v = l->fields[i].v.f;
            if (v < s->cpu_min) s->cpu_min = v;
            if (v > s->cpu_max) s->cpu_max = v;
        }
        if (h >= 0 && h < 4) {
            if (l->fields[0].v.f == s->last_cpu[h]) s->cpu_repeats++;
            s->last_cpu[h] = l->fields[0].v.f;
        }
    } else if (l->measurement.len == 4 && memcmp(l->measurement.ptr, "disk", 4) == 0) {
        cr_assert_eq(l->fields[0].type, MT_LP_INT);
        if (h >= 0 && h < 4) {
            uint64_t r = (uint64_t)l->fields[0].v.i;
            if (r < s->last_reads[h]) s->counter_drops++;
            s->last_reads[h] = r;
        }
    }
    return 0;
}

static void on_error(void *ud, const mt_lp_error *e)
{
    ((stats *)ud)->errors++;
    cr_log_error("line %llu: %s", (unsigned long long)e->lineno, e->reason);
}

static stats parse_all(const mt_gen_options *opt, char **buf, size_t *len)
{
    cr_assert_eq(mt_gen_all(opt, buf, len), MT_OK);
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    stats s = {.cpu_min = 1e9, .cpu_max = -1e9};
    mt_lp_handler h = {on_line, on_error, &s};
    cr_assert_eq(mt_lp_parse(p, *buf, *len, 0, &h), MT_OK);
    mt_lp_parser_free(p);
    return s;
}

Test(gen, every_line_parses_and_counts_match)
{
    mt_gen_options opt = mt_gen_options_default();
    opt.hosts = 10;
    opt.hours = 1;
    char *buf;
    size_t len;
    stats s = parse_all(&opt, &buf, &len);
    cr_expect_eq(s.errors, 0);
    cr_expect_eq(s.lines, mt_gen_total_lines(&opt));
    cr_expect_eq(s.points, mt_gen_total_points(&opt));
    cr_expect_eq(s.points, 10ull * 360 * MT_GEN_FIELDS_PER_TICK);
    cr_expect_eq(s.first_ts, opt.start_s * 1000000000);
    cr_expect_eq(s.last_ts, (opt.start_s + 3600 - 10) * 1000000000);
    cr_expect_eq(s.with_business_id, s.lines);
    /* bounded random walks: within [0, 100], moving, counters never fall */
    cr_expect_geq(s.cpu_min, 0.0);
    cr_expect_leq(s.cpu_max, 100.0);
    cr_expect_lt(s.cpu_repeats, 360 * 4 / 5, "cpu values barely move: %llu repeats",
                 (unsigned long long)s.cpu_repeats);
    cr_expect_eq(s.counter_drops, 0);
    free(buf);
}

Test(gen, same_options_same_bytes_other_seed_other_bytes)
{
    mt_gen_options opt = mt_gen_options_default();
    opt.hosts = 3;
    opt.hours = 1;
    char *a, *b, *c;
    size_t la, lb, lc;
    cr_assert_eq(mt_gen_all(&opt, &a, &la), MT_OK);
    cr_assert_eq(mt_gen_all(&opt, &b, &lb), MT_OK);
    opt.seed = 2;
    cr_assert_eq(mt_gen_all(&opt, &c, &lc), MT_OK);
    cr_expect(la == lb && memcmp(a, b, la) == 0);
    cr_expect(la != lc || memcmp(a, c, la) != 0);
    free(a);
    free(b);
    free(c);
}

Test(gen, precision_scales_timestamps)
{
    mt_gen_options opt = mt_gen_options_default();
    opt.hosts = 1;
    opt.hours = 1;
    opt.precision = MT_PREC_S;
    char *buf;
    size_t len;
    cr_assert_eq(mt_gen_all(&opt, &buf, &len), MT_OK);
    char first[64];
    snprintf(first, sizeof first, " %lld\n", (long long)opt.start_s);
    cr_expect(strstr(buf, first) != NULL);
    free(buf);
}

Test(gen, rejects_bad_options)
{
    mt_gen_options opt = mt_gen_options_default();
    mt_gen *g = NULL;
    opt.hosts = 0;
    cr_expect_eq(mt_gen_new(&opt, &g), MT_EINVAL);
    opt.hosts = 1;
    opt.precision = MT_PREC_H;
    cr_expect_eq(mt_gen_new(&opt, &g), MT_EINVAL);
    cr_expect_null(g);
}
