/*
 * test_promql.c — query/mt_promql.h: the parser's precedence and refusals
 * (a bad_data that names the construct), and the evaluator on an engine of
 * its own against values worked out by hand from Prometheus' definitions:
 * the lookback's inclusive edge, inclusive ranges, rate/increase
 * extrapolation with a counter reset, step alignment, by/without, bool,
 * one-to-one matching and its many-to-many error, the reader's tenant.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_promql.h"
#include "test_util.h"

#define T0S 1735689600LL /* 2025-01-01T00:00:00Z, seconds */
#define T0  (T0S * 1000) /* ms */

static char dir[256];
static mt_engine *eng;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-promql-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    cr_assert_eq(mt_engine_open(&o, &eng), MT_OK);
}

static void teardown(void)
{
    mt_engine_close(eng);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* One float point of measurement m, tags "k=v" (key order, NULL-ended), field f, at ms. */
static void put(const char *m, const char *const *tags, const char *f, int64_t ms, double v)
{
    mt_name tk[8], tv[8];
    size_t n = 0;
    for (; tags && tags[n]; n++) {
        const char *eq = strchr(tags[n], '=');
        tk[n] = (mt_name){tags[n], (size_t)(eq - tags[n])};
        tv[n] = (mt_name){eq + 1, strlen(eq + 1)};
    }
    char key[1024];
    size_t kl =
        mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, tk, tv, n, (mt_name){f, strlen(f)});
    cr_assert_gt(kl, 0);
    mt_batch *b = mt_batch_new();
    cr_assert_eq(mt_batch_add(b, key, kl, ms * 1000000, MT_VT_FLOAT, (mt_val){.f = v}, NULL),
                 MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(eng, b, &r), MT_OK);
    cr_assert_eq(r.accepted, 1);
    mt_batch_free(b);
}

typedef struct text {
    char buf[16384];
    size_t len;
} text;

static int collect(void *ud, const char *buf, size_t len)
{
    text *t = ud;
    cr_assert_lt(t->len + len, sizeof t->buf);
    memcpy(t->buf + t->len, buf, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return 0;
}

static text out;
static char err[1024];

/* Run expr at [start, end] ms with step (0: instant); the answer in out.buf or err. */
static int run(const char *expr, int64_t start, int64_t end, int64_t step, const char *tenant)
{
    out.len = 0;
    out.buf[0] = '\0';
    err[0] = '\0';
    mt_promql_spec s = {.expr = expr, .start = start, .end = end, .step = step, .tenant = tenant};
    return mt_promql_query(eng, &s, collect, &out, err, sizeof err);
}

#define EXPECT(expr, t, want)                                                                      \
    do {                                                                                           \
        int rc_ = run(expr, t, t, 0, NULL);                                                        \
        cr_assert_eq(rc_, MT_OK, "%s: %s", expr, err);                                             \
        cr_assert(strstr(out.buf, want), "%s:\n got  %s\n want %s", expr, out.buf, want);          \
    } while (0)

/* ---- the parser ------------------------------------------------------------------------------ */

static void parses_as(const char *expr, const char *want)
{
    char got[1024], e[512] = "";
    cr_assert_eq(mt_promql_format(expr, got, sizeof got, e, sizeof e), MT_OK, "%s: %s", expr, e);
    cr_assert_str_eq(got, want, "%s: got %s", expr, got);
}

static void refused(const char *expr, const char *needle)
{
    char got[1024], e[512] = "";
    cr_assert_eq(mt_promql_format(expr, got, sizeof got, e, sizeof e), MT_EPARSE, "%s taken", expr);
    cr_assert(strstr(e, needle), "%s: error '%s' does not say '%s'", expr, e, needle);
}

Test(promql_parse, precedence_and_associativity)
{
    parses_as("1 + 2 * 3", "(1 + (2 * 3))");
    parses_as("1 - 2 - 3", "((1 - 2) - 3)");
    parses_as("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))");
    parses_as("-2 ^ 2", "-(2 ^ 2)"); /* the sign binds looser than ^ */
    parses_as("-a ^ 2", "-(a ^ 2)");
    parses_as("a - -b", "(a - -b)");
    parses_as("- -5", "5");
    parses_as("a or b and c unless d", "(a or ((b and c) unless d))");
    parses_as("a > bool 1 + 2", "(a > bool (1 + 2))");
    parses_as("a / on(host) b", "(a / on(host) b)");
    parses_as("a * ignoring(x, y) b", "(a * ignoring(x, y) b)");
}

Test(promql_parse, selectors_aggregations_calls)
{
    parses_as("cpu{host=~\"a|b\"}[5m] offset 1h", "cpu{host=~\"a|b\"}[300s] offset 3600s");
    parses_as("x offset -90s", "x offset -90s");
    parses_as("sum by (host) (rate(x[1m]))", "sum by (host) (rate(x[60s]))");
    parses_as("sum(rate(x[1m])) without (code)", "sum without (code) (rate(x[60s]))");
    parses_as("topk(3, x)", "topk(3, x)");
    parses_as("quantile_over_time(0.9, x[10m])", "quantile_over_time(0.9, x[600s])");
    parses_as("round(x, 0.5)", "round(x, 0.5)");
    parses_as("  x  # a comment\n + 1", "(x + 1)");
}

Test(promql_parse, refusals_name_the_construct)
{
    refused("histogram_count(x)", "\"histogram_count\" is not supported");
    refused("histogram_sum(x)", "\"histogram_sum\" is not supported");
    refused("no_such_fn(x)", "unknown function");
    refused("rate(x)", "range vector");
    refused("sum(x[5m])", "instant vector");
    refused("1 > 2", "BOOL");
    refused("{a=~\".*\"}", "empty string");
    refused("x[5m][5m]", "ranges only allowed");
    refused("(x)[5m]", "ranges only allowed");
    refused("x +", "unexpected end");
    refused("sum(x) by", "'('");
    refused("1 and 2", "set operator");
}

/* ---- the evaluator ----------------------------------------------------------------------------
 */

TestSuite(promql, .init = setup, .fini = teardown);

Test(promql, the_mapping_and_the_lookback_edge)
{
    const char *a[] = {"host=a", NULL};
    put("cpu", a, "usage_user", T0, 7);
    EXPECT("cpu_usage_user", T0 + 300000,
           "{\"metric\":{\"__name__\":\"cpu_usage_user\",\"host\":\"a\"},\"value\":[1735689900,"
           "\"7\"]}");
    /* 5 minutes and 1 ms later the sample is out of the lookback */
    cr_assert_eq(run("cpu_usage_user", T0 + 300001, T0 + 300001, 0, NULL), MT_OK);
    cr_assert(strstr(out.buf, "\"result\":[]"), "%s", out.buf);
    /* and a sample after the evaluation time is not seen */
    cr_assert_eq(run("cpu_usage_user", T0 - 1, T0 - 1, 0, NULL), MT_OK);
    cr_assert(strstr(out.buf, "\"result\":[]"), "%s", out.buf);
}

/* Points of series m_f at times in ns (n of them, floats v): one batch. */
static void put_ns(const char *m, const int64_t *ns, const double *v, size_t n)
{
    char key[256];
    size_t kl =
        mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, NULL, NULL, 0, (mt_name){"f", 1});
    mt_batch *b = mt_batch_new();
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(mt_batch_add(b, key, kl, ns[i], MT_VT_FLOAT, (mt_val){.f = v[i]}, NULL),
                     MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(eng, b, &r), MT_OK);
    cr_assert_eq(r.accepted, n);
    mt_batch_free(b);
}

Test(promql, samples_are_milliseconds_and_the_last_of_one_ms_is_kept)
{
    const int64_t t0 = T0 * 1000000; /* ns */
    /* steps that change at every point, two points in one ms, the last ns of a ms */
    const int64_t a[] = {t0 + 100, t0 + 900, t0 + 1000001, t0 + 2999999, t0 + 3000000};
    const double av[] = {1, 2, 4, 8, 16};
    put_ns("a", a, av, 5);
    EXPECT("a_f[10ms]", T0 + 3,
           "\"values\":[[1735689600,\"2\"],[1735689600.001,\"4\"],[1735689600.002,\"8\"],"
           "[1735689600.003,\"16\"]]");
    /* one step that repeats, 1.5 ms: the ms it leaves over carries into the next point */
    int64_t b[6];
    double bv[6];
    for (int k = 0; k < 6; k++) b[k] = t0 + k * 1500000, bv[k] = k;
    put_ns("b", b, bv, 6);
    EXPECT("b_f[10ms]", T0 + 8,
           "\"values\":[[1735689600,\"0\"],[1735689600.001,\"1\"],[1735689600.003,\"2\"],"
           "[1735689600.004,\"3\"],[1735689600.006,\"4\"],[1735689600.007,\"5\"]]");
    /* times before 1970 round down to their ms, and print as Prometheus prints them */
    const int64_t c[] = {-2500000, -1000000, 500000, 2000000};
    const double cv[] = {1, 2, 3, 4};
    put_ns("c", c, cv, 4);
    EXPECT("c_f[10ms]", 2, "\"values\":[[-0.003,\"1\"],[-0.001,\"2\"],[0,\"3\"],[0.002,\"4\"]]");
}

Test(promql, rate_and_increase_extrapolate_as_prometheus)
{
    /* 10, 20, 5 at 5 s, 15 s, 25 s: rises 10 + the reset's 5 (the previous 20 added back) = 15;
       sampled 20 s, 5 s to each edge of [0, 30] (under 1.1 * 10 s): extrapolated to 30 s,
       15 * 30 / 20 = 22.5; rate = 22.5 / 30 */
    put("c", NULL, "total", T0 + 5000, 10);
    put("c", NULL, "total", T0 + 15000, 20);
    put("c", NULL, "total", T0 + 25000, 5);
    EXPECT("increase(c_total[30s])", T0 + 30000, "\"value\":[1735689630,\"22.5\"]");
    EXPECT("rate(c_total[30s])", T0 + 30000, "\"value\":[1735689630,\"0.75\"]");
    EXPECT("resets(c_total[30s])", T0 + 30000, "\"1\"]");
    /* delta does not treat the drop as a reset: -5 * 30 / 20 */
    EXPECT("delta(c_total[30s])", T0 + 30000, "\"-7.5\"]");
    /* irate: the last two, a reset: 5 / 10 s */
    EXPECT("irate(c_total[30s])", T0 + 30000, "\"0.5\"]");
    /* the range is inclusive at both ends: [5 s, 25 s] holds all three */
    EXPECT("count_over_time(c_total[20s])", T0 + 25000, "\"3\"]");
    /* one sample: no rate */
    cr_assert_eq(run("rate(c_total[5s])", T0 + 6000, T0 + 6000, 0, NULL), MT_OK);
    cr_assert(strstr(out.buf, "\"result\":[]"), "%s", out.buf);
}

/* rate/increase over the samples of [start, end] (ms) as Prometheus 2.42's extrapolatedRate
   writes it, divisions and all: what the evaluator's shortcuts must equal bit for bit */
static double ref_extrapolated(bool rate, const int64_t *t, const double *v, size_t n,
                               int64_t start, int64_t end, int64_t range)
{
    double result = v[n - 1] - v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] < v[i - 1]) result += v[i - 1];
    double to_start = (double)(t[0] - start) / 1000, to_end = (double)(end - t[n - 1]) / 1000;
    double sampled = (double)(t[n - 1] - t[0]) / 1000, avg = sampled / (double)(n - 1);
    if (result > 0 && v[0] >= 0) {
        double to_zero = sampled * (v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    double threshold = avg * 1.1, interval = sampled;
    interval += to_start < threshold ? to_start : avg / 2;
    interval += to_end < threshold ? to_end : avg / 2;
    result = result * (interval / sampled);
    return rate ? result / ((double)range / 1000) : result;
}

Test(promql, rate_equals_prometheus_formula_bit_for_bit_across_the_extrapolation_threshold)
{
    /* gaps of 3 to 15 s with ms jitter: window edges fall on both sides of 1.1 average gaps;
       counters from near zero (the extrapolation stops at zero) with resets */
    enum { N = 400 };
    int64_t t[N];
    double v[N];
    uint64_t seed = mt_test_seed();
    int64_t ms = T0;
    double c = 3;
    char key[256];
    size_t kl =
        mt_series_key(key, sizeof key, (mt_name){"r", 1}, NULL, NULL, 0, (mt_name){"total", 5});
    mt_batch *b = mt_batch_new();
    for (int i = 0; i < N; i++) {
        ms += 3000 + (int64_t)(mt_test_rand(&seed) % 12000);
        c = mt_test_rand(&seed) % 20 == 0 ? (double)(mt_test_rand(&seed) % 7)
                                          : c + (double)(mt_test_rand(&seed) % 1000) / 8;
        t[i] = ms, v[i] = c;
        cr_assert_eq(mt_batch_add(b, key, kl, ms * 1000000, MT_VT_FLOAT, (mt_val){.f = c}, NULL),
                     MT_OK);
    }
    mt_write_result wr;
    cr_assert_eq(mt_engine_write(eng, b, &wr), MT_OK);
    mt_batch_free(b);
    const int64_t range = 40000;
    size_t checked = 0, slow = 0;
    for (int64_t at = t[0]; at <= t[N - 1] + range; at += 777) {
        size_t lo = 0, hi = 0;
        while (lo < N && t[lo] < at - range) lo++;
        hi = lo;
        while (hi < N && t[hi] <= at) hi++;
        for (int rate = 0; rate < 2; rate++) {
            cr_assert_eq(
                run(rate ? "rate(r_total[40s])" : "increase(r_total[40s])", at, at, 0, NULL), MT_OK,
                "%s", err);
            if (hi - lo < 2) {
                cr_assert(strstr(out.buf, "\"result\":[]"), "at %lld: %s", (long long)at, out.buf);
                continue;
            }
            double want = ref_extrapolated(rate, t + lo, v + lo, hi - lo, at - range, at, range);
            const char *p = strstr(out.buf, "\"value\":[");
            cr_assert_not_null(p, "at %lld: %s", (long long)at, out.buf);
            p = strstr(p, ",\"");
            cr_assert_not_null(p);
            double got = strtod(p + 2, NULL);
            cr_assert(memcmp(&got, &want, 8) == 0, "at %lld, rate %d: %.17g, want %.17g",
                      (long long)at, rate, got, want);
            checked++;
            double sampled = (double)(t[hi - 1] - t[lo]) / 1000;
            slow += (double)(t[lo] - (at - range)) / 1000 >= sampled / (double)(hi - lo - 1) * 1.1;
        }
    }
    cr_assert_gt(checked, 1000);
    cr_assert_gt(slow, 50, "windows whose start lies beyond the threshold: %zu", slow);
}

Test(promql, steps_are_start_plus_k_step_up_to_end)
{
    put("g", NULL, "v", T0, 1);
    cr_assert_eq(run("g_v", T0, T0 + 100000, 30000, NULL), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"values\":[[1735689600,\"1\"],[1735689630,\"1\"],[1735689660,"
                              "\"1\"],[1735689690,\"1\"]]}"),
              "%s", out.buf);
    cr_assert_eq(run("g_v", T0, T0 + 1000LL * 11000 * 60, 60, NULL), MT_EINVAL);
    cr_assert(strstr(err, "11,000"), "%s", err);
}

Test(promql, aggregation_grouping_and_comparisons)
{
    const char *a[] = {"host=a", "region=eu", NULL}, *b[] = {"host=b", "region=eu", NULL},
               *c[] = {"host=c", "region=us", NULL};
    put("cpu", a, "u", T0, 10);
    put("cpu", b, "u", T0, 30);
    put("cpu", c, "u", T0, 50);
    EXPECT("sum(cpu_u)", T0, "{\"metric\":{},\"value\":[1735689600,\"90\"]}");
    EXPECT("sum by (region) (cpu_u)", T0,
           "{\"metric\":{\"region\":\"eu\"},\"value\":[1735689600,\"40\"]}");
    EXPECT("avg without (host) (cpu_u)", T0,
           "{\"metric\":{\"region\":\"us\"},\"value\":[1735689600,\"50\"]}");
    EXPECT("quantile(0.5, cpu_u)", T0, "\"30\"]");
    EXPECT("quantile(0.25, cpu_u)", T0, "\"20\"]");
    EXPECT("topk(1, cpu_u)", T0,
           "{\"metric\":{\"__name__\":\"cpu_u\",\"host\":\"c\",\"region\":\"us\"}");
    EXPECT("stddev(cpu_u)", T0, "\"16.32993161855452");
    /* a comparison keeps the name and filters; with bool it gives 0/1 without the name */
    EXPECT("cpu_u > 20", T0, "\"__name__\":\"cpu_u\",\"host\":\"b\"");
    cr_assert(!strstr(out.buf, "\"host\":\"a\""), "%s", out.buf);
    EXPECT("cpu_u > bool 20", T0,
           "{\"metric\":{\"host\":\"a\",\"region\":\"eu\"},\"value\":[1735689600,\"0\"]}");
    EXPECT("time()", T0 + 1500,
           "\"resultType\":\"scalar\",\"result\":[1735689601.5,\"1735689601.5\"]");
}

Test(promql, one_to_one_matching)
{
    const char *a[] = {"host=a", "region=eu", NULL}, *b[] = {"host=b", "region=eu", NULL};
    const char *ma[] = {"host=a", NULL}, *mb[] = {"host=b", NULL};
    put("cpu", a, "u", T0, 10);
    put("cpu", b, "u", T0, 30);
    put("mem", ma, "m", T0, 2);
    put("mem", mb, "m", T0, 3);
    EXPECT("cpu_u / on(host) mem_m", T0,
           "{\"metric\":{\"host\":\"b\"},\"value\":[1735689600,\"10\"]}");
    EXPECT("cpu_u / ignoring(region) mem_m", T0,
           "{\"metric\":{\"host\":\"a\"},\"value\":[1735689600,\"5\"]}");
    /* no label in common but the sets differ: no match */
    EXPECT("cpu_u / mem_m", T0, "\"result\":[]");
    /* on(region): two series on each side share eu */
    cr_assert_eq(run("cpu_u + on(region) cpu_u", T0, T0, 0, NULL), MT_EINVAL);
    cr_assert(strstr(err, "many-to-many"), "%s", err);
}

Test(promql, the_readers_tenant_only)
{
    const char *a[] = {"business_id=a", "host=x", NULL}, *b[] = {"business_id=b", "host=x", NULL};
    put("cpu", a, "u", T0, 1);
    put("cpu", b, "u", T0, 2);
    cr_assert_eq(run("sum(cpu_u)", T0, T0, 0, "a"), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"1\"]"), "%s", out.buf);
    cr_assert_eq(run("cpu_u{business_id=\"b\"}", T0, T0, 0, "a"), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"result\":[]"), "%s", out.buf);
    text t = {0};
    const char *m[] = {"{__name__=~\".+\"}"};
    cr_assert_eq(mt_promql_list_write(eng, MT_PROMQL_LABEL_VALUES, "business_id", m, 1, INT64_MIN,
                                      INT64_MAX, "b", collect, &t, err, sizeof err),
                 MT_OK, "%s", err);
    cr_assert_str_eq(t.buf, "{\"status\":\"success\",\"data\":[\"b\"]}");
}

Test(promql, listings)
{
    const char *a[] = {"host=a", NULL}, *b[] = {"host=b", NULL};
    put("cpu", a, "u", T0, 1);
    put("cpu", b, "u", T0 + 60000, 2);
    put("mem", NULL, "m", T0, 3);
    text t = {0};
    cr_assert_eq(mt_promql_list_write(eng, MT_PROMQL_LABELS, NULL, NULL, 0, INT64_MIN, INT64_MAX,
                                      NULL, collect, &t, err, sizeof err),
                 MT_OK);
    cr_assert_str_eq(t.buf, "{\"status\":\"success\",\"data\":[\"__name__\",\"host\"]}");
    t.len = 0;
    const char *m[] = {"cpu_u"};
    cr_assert_eq(mt_promql_list_write(eng, MT_PROMQL_SERIES, NULL, m, 1, T0 + 30000, T0 + 90000,
                                      NULL, collect, &t, err, sizeof err),
                 MT_OK);
    cr_assert_str_eq(t.buf,
                     "{\"status\":\"success\",\"data\":[{\"__name__\":\"cpu_u\",\"host\":\"b\"}]}");
    cr_assert_eq(mt_promql_list_write(eng, MT_PROMQL_SERIES, NULL, NULL, 0, INT64_MIN, INT64_MAX,
                                      NULL, collect, &t, err, sizeof err),
                 MT_EINVAL);
}

Test(promql_params, times_and_steps)
{
    int64_t ms;
    cr_assert_eq(mt_promql_parse_time("1735689600.123", &ms), MT_OK);
    cr_assert_eq(ms, T0 + 123);
    cr_assert_eq(mt_promql_parse_time("2025-01-01T00:00:01Z", &ms), MT_OK);
    cr_assert_eq(ms, T0 + 1000);
    cr_assert_eq(mt_promql_parse_time("yesterday", &ms), MT_EPARSE);
    cr_assert_eq(mt_promql_parse_step("15", &ms), MT_OK);
    cr_assert_eq(ms, 15000);
    cr_assert_eq(mt_promql_parse_step("1m30s", &ms), MT_OK);
    cr_assert_eq(ms, 90000);
    cr_assert_eq(mt_promql_parse_step("0", &ms), MT_EPARSE);
    cr_assert_eq(mt_promql_parse_step("-5", &ms), MT_EPARSE);
}

Test(promql, json_escapes_and_invalid_utf8)
{
    const char *a[] = {"host=w\"\\\xff\xc3\xa9", NULL};
    put("cpu", a, "u", T0, 1);
    EXPECT("cpu_u", T0, "\"host\":\"w\\\"\\\\\\ufffd\xc3\xa9\"");
}

Test(promql, far_times_and_ranges_do_not_overflow)
{
    put("g", NULL, "v", T0, 1);
    EXPECT("count_over_time(g_v[30000y])", T0, "\"1\"]");
    EXPECT("g_v offset 30000y", T0, "\"result\":[]");
    cr_assert_eq(run("g_v[30000y] offset -30000y", T0, T0, 0, NULL), MT_OK, "%s", err);
    char got[256], e[256];
    cr_assert_eq(mt_promql_format("g_v[99999999y]", got, sizeof got, e, sizeof e), MT_EPARSE);
    int64_t ms;
    cr_assert_eq(mt_promql_parse_time("1e300", &ms), MT_EPARSE);
}

Test(promql_parse, costly_regular_expressions_refused)
{
    refused("{a=~\"x+++++++++++\"}", "one after another");
    refused("{a=~\"(x{50}){500}\"}", "count over 100");
    parses_as("{a=~\"x*?y[+*]{2,5}\\\\++\"}", "{a=~\"x*?y[+*]{2,5}\\\\++\"}");
}

Test(promql_parse, at_group_and_the_new_functions)
{
    parses_as("x @ 100", "x @ 100");
    parses_as("x[5m] @ 1.5 offset 1m", "x[300s] offset 60s @ 1.5");
    parses_as("x @ start()", "x @ start()");
    parses_as("rate(x[1m] @ end())", "rate(x[60s] @ end())");
    parses_as("a * on(h) group_left(b, c) b", "(a * on(h) group_left(b, c) b)");
    parses_as("a / ignoring(x) group_right b", "(a / ignoring(x) group_right() b)");
    parses_as("count_values(\"v\", x)", "count_values(\"v\", x)");
    parses_as("group by (a) (x)", "group by (a) (x)");
    parses_as("label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")",
              "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")");
    parses_as("hour()", "hour()");
    refused("x @ 1 @ 2", "may not be set multiple times");
    refused("x @ 100 [5m]", "no @ modifiers allowed before range");
    refused("(x) @ 100", "@ modifier must be preceded");
    refused("x @ Inf", "out of bounds");
    refused("a and on(h) group_left b", "no grouping allowed for \"and\"");
    refused("a * on(h) group_left(h) b", "must not occur in ON and GROUP");
    refused("count_values(1, x)", "expected type string");
    refused("label_join(x, \"d\")", "argument");
    refused("label_join(x, \"d\", \",\", 1)", "expected type string");
    refused("exp2(x)", "unknown function");
}

#define RANGE(expr, s, e, st, want)                                                                \
    do {                                                                                           \
        int rc_ = run(expr, s, e, st, NULL);                                                       \
        cr_assert_eq(rc_, MT_OK, "%s: %s", expr, err);                                             \
        cr_assert(strstr(out.buf, want), "%s:\n got  %s\n want %s", expr, out.buf, want);          \
    } while (0)

Test(promql, at_modifier_pins_the_time)
{
    put("g", NULL, "v", T0, 1);
    put("g", NULL, "v", T0 + 60000, 2);
    put("g", NULL, "v", T0 + 120000, 3);
    /* at every step the value at T0 + 60 s; offset counts back from the @ time */
    RANGE("g_v @ 1735689660", T0, T0 + 120000, 60000,
          "\"values\":[[1735689600,\"2\"],[1735689660,\"2\"],[1735689720,\"2\"]]");
    RANGE("g_v @ 1735689660 offset 1m", T0, T0 + 120000, 60000,
          "[[1735689600,\"1\"],[1735689660,\"1\"],[1735689720,\"1\"]]");
    RANGE("g_v @ end()", T0, T0 + 120000, 60000,
          "[[1735689600,\"3\"],[1735689660,\"3\"],[1735689720,\"3\"]]");
    RANGE("g_v @ start() + g_v", T0, T0 + 120000, 60000,
          "[[1735689600,\"2\"],[1735689660,\"3\"],[1735689720,\"4\"]]");
    RANGE("sum_over_time(g_v[2m] @ end())", T0, T0 + 120000, 60000,
          "[[1735689600,\"6\"],[1735689660,\"6\"],[1735689720,\"6\"]]");
    EXPECT("g_v[1m] @ 1735689660", T0, "\"values\":[[1735689600,\"1\"],[1735689660,\"2\"]]");
    /* timestamp() of a selector with @: the sample's own time at the @ time */
    RANGE("timestamp(g_v @ 1735689659)", T0, T0 + 60000, 60000,
          "[[1735689600,\"1735689600\"],[1735689660,\"1735689600\"]]");
    EXPECT("timestamp(g_v)", T0 + 90000, "\"1735689660\"]");
    EXPECT("timestamp(g_v + 1)", T0 + 90000, "\"1735689690\"]");
}

Test(promql, absent_and_absent_over_time)
{
    put("g", NULL, "v", T0, 1);
    EXPECT("absent(g_v)", T0, "\"result\":[]");
    EXPECT("absent(nope{a=\"x\",b=~\"y\",c=\"1\",c=\"2\"})", T0,
           "{\"metric\":{\"a\":\"x\"},\"value\":[1735689600,\"1\"]}");
    RANGE("absent(g_v)", T0, T0 + 600000, 300000,
          "{\"metric\":{},\"values\":[[1735690200,\"1\"]]}");
    RANGE("absent_over_time(g_v{k=\"\"}[1m])", T0, T0 + 120000, 60000,
          "{\"metric\":{},\"values\":[[1735689720,\"1\"]]}");
}

Test(promql, label_replace_and_label_join)
{
    const char *a[] = {"dc=eu", "host=web-1", NULL};
    put("cpu", a, "u", T0, 5);
    EXPECT("label_replace(cpu_u, \"n\", \"$2:$1\", \"host\", \"([a-z]+)-([0-9]+)\")", T0,
           "{\"__name__\":\"cpu_u\",\"dc\":\"eu\",\"host\":\"web-1\",\"n\":\"1:web\"}");
    EXPECT("label_replace(cpu_u, \"n\", \"${1}x$$\", \"host\", \"(web)-.*\")", T0,
           "\"n\":\"webx$\"");
    /* no match: unchanged; an empty result deletes the label */
    EXPECT("label_replace(cpu_u, \"n\", \"$1\", \"host\", \"db-(.*)\")", T0,
           "{\"__name__\":\"cpu_u\",\"dc\":\"eu\",\"host\":\"web-1\"}");
    EXPECT("label_replace(cpu_u, \"dc\", \"\", \"host\", \".*\")", T0,
           "{\"__name__\":\"cpu_u\",\"host\":\"web-1\"}");
    cr_assert_eq(run("label_replace(cpu_u, \"n\", \"$1\", \"host\", \"(\")", T0, T0, 0, NULL),
                 MT_EINVAL);
    cr_assert(strstr(err, "invalid regular expression in label_replace()"), "%s", err);
    cr_assert_eq(run("label_replace(cpu_u, \"1n\", \"$1\", \"host\", \"(.*)\")", T0, T0, 0, NULL),
                 MT_EINVAL);
    cr_assert(strstr(err, "invalid destination label name"), "%s", err);
    EXPECT("label_join(cpu_u, \"j\", \"/\", \"dc\", \"host\", \"none\")", T0,
           "\"j\":\"eu/web-1/\"");
    /* two series made one: Prometheus' error */
    const char *b[] = {"dc=eu", "host=web-2", NULL};
    put("cpu", b, "u", T0, 6);
    cr_assert_eq(run("label_replace(cpu_u, \"host\", \"x\", \"host\", \".*\")", T0, T0, 0, NULL),
                 MT_EINVAL);
    cr_assert(strstr(err, "same labelset"), "%s", err);
}

Test(promql, count_values_group_and_sort)
{
    const char *a[] = {"host=a", "r=eu", NULL}, *b[] = {"host=b", "r=eu", NULL},
               *c[] = {"host=c", "r=us", NULL};
    put("cpu", a, "u", T0, 1.5);
    put("cpu", b, "u", T0, 1.5);
    put("cpu", c, "u", T0, 1e21);
    EXPECT("count_values(\"v\", cpu_u)", T0,
           "{\"metric\":{\"v\":\"1.5\"},\"value\":[1735689600,\"2\"]}");
    EXPECT("count_values(\"v\", cpu_u)", T0, "{\"v\":\"1000000000000000000000\"}");
    EXPECT("count_values by (r) (\"v\", cpu_u)", T0,
           "{\"r\":\"us\",\"v\":\"1000000000000000000000\"}");
    EXPECT("count_values without (host) (\"v\", cpu_u)", T0,
           "{\"metric\":{\"r\":\"eu\",\"v\":\"1.5\"},\"value\":[1735689600,\"2\"]}");
    cr_assert_eq(run("count_values(\"1x\", cpu_u)", T0, T0, 0, NULL), MT_EINVAL);
    EXPECT("group by (r) (cpu_u)", T0, "{\"metric\":{\"r\":\"eu\"},\"value\":[1735689600,\"1\"]}");
    /* sort keeps the name and answers in value order (ties by labels) */
    EXPECT("sort_desc(cpu_u)", T0,
           "\"result\":[{\"metric\":{\"__name__\":\"cpu_u\",\"host\":\"c\"");
    EXPECT("sort(-cpu_u)", T0, "\"result\":[{\"metric\":{\"host\":\"c\"");
}

Test(promql, group_left_and_group_right)
{
    const char *a[] = {"dc=eu", "host=a", NULL}, *b[] = {"dc=eu", "host=b", NULL};
    const char *i[] = {"dc=eu", "owner=ann", NULL};
    put("cpu", a, "u", T0, 10);
    put("cpu", b, "u", T0, 30);
    put("info", i, "x", T0, 2);
    EXPECT("cpu_u * on(dc) group_left(owner) info_x", T0,
           "{\"metric\":{\"dc\":\"eu\",\"host\":\"b\",\"owner\":\"ann\"},\"value\":[1735689600,"
           "\"60\"]}");
    EXPECT("info_x * on(dc) group_right cpu_u", T0,
           "{\"metric\":{\"dc\":\"eu\",\"host\":\"a\"},\"value\":[1735689600,\"20\"]}");
    /* a comparison keeps the many side's name; the value is the left operand's */
    EXPECT("info_x < on(dc) group_right cpu_u", T0,
           "{\"metric\":{\"__name__\":\"cpu_u\",\"dc\":\"eu\",\"host\":\"a\"},\"value\":["
           "1735689600,\"2\"]}");
    /* the "one" side with two series of a signature: many-to-many */
    cr_assert_eq(run("info_x * on(dc) group_left cpu_u", T0, T0, 0, NULL), MT_EINVAL);
    cr_assert(strstr(err, "found duplicate series for the match group {dc=\"eu\"} on the right"),
              "%s", err);
    /* results that collide for one signature */
    put("mem", a, "u", T0, 1);
    cr_assert_eq(run("{__name__=~\"cpu_u|mem_u\"} * on(dc) group_left info_x", T0, T0, 0, NULL),
                 MT_EINVAL);
    cr_assert(strstr(err, "multiple matches for labels"), "%s", err);
}

Test(promql, dates_and_trigonometry)
{
    put("g", NULL, "v", T0, 1709210096); /* 2024-02-29T12:34:56Z, a Thursday */
    EXPECT("day_of_month(g_v)", T0, "\"29\"]");
    EXPECT("day_of_week(g_v)", T0, "\"4\"]");
    EXPECT("day_of_year(g_v)", T0, "\"60\"]");
    EXPECT("days_in_month(g_v)", T0, "\"29\"]");
    EXPECT("hour(g_v)", T0, "\"12\"]");
    EXPECT("minute(g_v)", T0, "\"34\"]");
    EXPECT("month(g_v)", T0, "\"2\"]");
    EXPECT("year(g_v)", T0, "{\"metric\":{},\"value\":[1735689600,\"2024\"]}");
    EXPECT("year()", T0 + 1000, "\"2025\"]");
    EXPECT("day_of_week()", T0, "\"3\"]"); /* 2025-01-01 a Wednesday */
    EXPECT("pi()", T0, "\"3.141592653589793\"]");
    EXPECT("deg(vector(pi()))", T0, "\"180\"]");
    EXPECT("cos(vector(0))", T0, "\"1\"]");
    EXPECT("rad(vector(180)) - vector(pi())", T0, "\"0\"]");
    /* atan2: the precedence of * and /, and it keeps the name */
    EXPECT("g_v atan2 0", T0, "{\"__name__\":\"g_v\"}");
    parses_as("1 + a atan2 b * 2", "(1 + ((a atan2 b) * 2))");
    EXPECT("1 atan2 1", T0, "\"0.7853981633974483\"]");
}

Test(promql_parse, subqueries)
{
    parses_as("rate(x[5m:1m])", "rate((x)[300s:60s])");
    parses_as("max_over_time(sum(x)[1h:] offset 5m)",
              "max_over_time((sum(x))[3600s:] offset 300s)");
    parses_as("(a + b)[5m:30s]", "((a + b))[300s:30s]");
    parses_as("min_over_time(rate(x[1m])[10m:1m])", "min_over_time((rate(x[60s]))[600s:60s])");
    refused("x[5m][10m:1m]", "only allowed on instant vector");
    refused("(x @ 1)[5m:1m]", "inside a subquery");
    parses_as("rate(x[5m:1m] @ end() offset 1m)", "rate((x)[300s:60s] offset 60s @ end())");
    refused("(x)[5m]", "ranges only allowed");
    refused("sum(x)[5m]", "ranges only allowed");
}

Test(promql, subqueries_evaluate_at_aligned_inner_steps)
{
    /* 1, 2, ..., 10 at T0 + k * 30 s */
    for (int k = 0; k < 10; k++) put("g", NULL, "v", T0 + k * 30000LL, k + 1);
    /* inner steps: multiples of 60 s in [T0 + 270 s - 120 s, T0 + 270 s]: T0 + 180 s and + 240 s
       (T0 is a multiple of 60 s), where g_v is 7 and 9 */
    EXPECT("g_v[2m:1m]", T0 + 270000, "\"values\":[[1735689780,\"7\"],[1735689840,\"9\"]]");
    EXPECT("sum_over_time(g_v[2m:1m])", T0 + 270000, "\"16\"]");
    EXPECT("max_over_time((g_v * 2)[2m:1m] offset 1m)", T0 + 270000, "\"14\"]");
    /* the inner step defaults to 1m */
    EXPECT("count_over_time(g_v[5m:])", T0 + 270000, "\"5\"]");
    RANGE("count_over_time(g_v[1m:30s])", T0 + 60000, T0 + 120000, 60000,
          "[[1735689660,\"3\"],[1735689720,\"3\"]]");
    /* @ on a subquery: the windows of the @ time at every step */
    RANGE("sum_over_time(g_v[1m:30s] @ 1735689660)", T0, T0 + 120000, 60000,
          "[[1735689600,\"6\"],[1735689660,\"6\"],[1735689720,\"6\"]]");
    EXPECT("g_v[1m:30s] @ 1735689660", T0,
           "\"values\":[[1735689600,\"1\"],[1735689630,\"2\"],[1735689660,\"3\"]]");
    /* where Prometheus would slide the windows over the @ window's samples: refused */
    cr_assert_eq(run("predict_linear(g_v[1m:30s] @ 1735689660, 60)", T0, T0 + 120000, 60000, NULL),
                 MT_EPARSE);
    cr_assert(strstr(err, "@ modifier on a subquery"), "%s", err);
}

Test(promql, histogram_quantile_over_classic_buckets)
{
    const char *b1[] = {"job=x", "le=0.1", NULL}, *b2[] = {"job=x", "le=0.5", NULL},
               *b3[] = {"job=x", "le=+Inf", NULL}, *odd[] = {"job=x", "le=many", NULL};
    put("req", b1, "bucket", T0, 10);
    put("req", b2, "bucket", T0, 30);
    put("req", b3, "bucket", T0, 40);
    put("req", odd, "bucket", T0, 99); /* not a bound: ignored */
    /* rank 20 falls in (0.1, 0.5]: 0.1 + 0.4 * (20 - 10) / 20 */
    EXPECT("histogram_quantile(0.5, req_bucket)", T0,
           "{\"metric\":{\"job\":\"x\"},\"value\":[1735689600,\"0.30000000000000004\"]}");
    EXPECT("histogram_quantile(0.1, req_bucket)", T0, "\"0.04000000000000001\"]");
    EXPECT("histogram_quantile(0.9, req_bucket)", T0, "\"0.5\"]"); /* in +Inf: the last bound */
    EXPECT("histogram_quantile(2, req_bucket)", T0, "\"+Inf\"]");
    EXPECT("histogram_quantile(0.5, req_bucket{le!=\"+Inf\"})", T0, "\"NaN\"]");
}

Test(promql, holt_winters_smooths_each_window)
{
    put("g", NULL, "v", T0, 1);
    put("g", NULL, "v", T0 + 30000, 2);
    put("g", NULL, "v", T0 + 60000, 4);
    /* s = 1, b = 1; then s = 0.5 * 2 + 0.5 * (1 + 1) = 2; b = 0.5 * 1 + 0.5 * 1 = 1,
       s = 0.5 * 4 + 0.5 * (2 + 1) = 3.5 */
    EXPECT("holt_winters(g_v[1m], 0.5, 0.5)", T0 + 60000,
           "{\"metric\":{},\"value\":[1735689660,\"3.5\"]}");
    cr_assert_eq(run("holt_winters(g_v[1m], 1, 0.5)", T0 + 60000, T0 + 60000, 0, NULL), MT_EINVAL);
    cr_assert(strstr(err, "invalid smoothing factor"), "%s", err);
    /* no sample in the window: no error, no value */
    EXPECT("holt_winters(g_v[1m], 1, 0.5)", T0 + 600000, "\"result\":[]");
}

/* ---- threads: a pass over many series answers as one thread does ------------------------------
 */

typedef struct big {
    char *p;
    size_t len;
} big;

static int collect_big(void *ud, const char *buf, size_t len)
{
    big *b = ud;
    b->p = realloc(b->p, b->len + len + 1);
    cr_assert_not_null(b->p);
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

/* expr over [start, end] at step on `threads` threads: MT_OK and the answer, or the error. */
static int run_threads(const char *expr, int64_t start, int64_t end, int64_t step, unsigned threads,
                       uint64_t max_samples, big *b, char *e, size_t ecap)
{
    *b = (big){0};
    mt_promql_spec s = {.expr = expr,
                        .start = start,
                        .end = end,
                        .step = step,
                        .threads = threads,
                        .max_samples = max_samples};
    return mt_promql_query(eng, &s, collect_big, b, e, ecap);
}

Test(promql, threads_answer_as_one_thread)
{
    /* 60 hosts, 2,000 points each: float counters with resets, integer gauges with gaps */
    uint64_t rng = mt_test_seed();
    mt_batch *bt = mt_batch_new();
    char key[512];
    for (int h = 0; h < 60; h++) {
        char host[32], dc[32];
        snprintf(host, sizeof host, "host=h%02d", h);
        snprintf(dc, sizeof dc, "dc=d%d", h % 4);
        mt_name tk[2] = {{"dc", 2}, {"host", 4}},
                tv[2] = {{dc + 3, strlen(dc + 3)}, {host + 5, strlen(host + 5)}};
        double c = 0;
        for (int k = 0; k < 2000; k++) {
            int64_t ms = 1000000 + (int64_t)k * 15000 + (int64_t)(mt_test_rand(&rng) % 3000);
            c = mt_test_rand(&rng) % 97 == 0 ? 0 : c + (double)(mt_test_rand(&rng) % 1000) / 7;
            size_t kl = mt_series_key(key, sizeof key, (mt_name){"net", 3}, tk, tv, 2,
                                      (mt_name){"bytes", 5});
            cr_assert_eq(
                mt_batch_add(bt, key, kl, ms * 1000000, MT_VT_FLOAT, (mt_val){.f = c}, NULL),
                MT_OK);
            if (k % 7 == h % 7) continue; /* gaps */
            kl = mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2,
                               (mt_name){"user", 4});
            cr_assert_eq(mt_batch_add(bt, key, kl, ms * 1000000, MT_VT_INT,
                                      (mt_val){.i = (int64_t)(mt_test_rand(&rng) % 100)}, NULL),
                         MT_OK);
        }
    }
    mt_write_result wr;
    cr_assert_eq(mt_engine_write(eng, bt, &wr), MT_OK);
    mt_batch_free(bt);
    cr_assert_eq(mt_engine_seal(eng, true, NULL), MT_OK);
    static const char *const exprs[] = {
        "rate(net_bytes[5m])",
        "increase(net_bytes[2m]) > 100",
        "resets(net_bytes[10m])",
        "cpu_user",
        "topk(3, cpu_user)",
        "sum by (dc) (rate(net_bytes[5m]))",
        "quantile_over_time(0.9, cpu_user[7m])",
        "max_over_time(cpu_user[1m]) - min_over_time(cpu_user[1m])",
        "label_replace(cpu_user, \"host\", \"x\", \"\", \"\")", /* every series the same labels */
        "last_over_time(net_bytes[3m])",
    };
    int64_t start = 1000000, end = 1000000 + 2000 * 15000LL;
    for (size_t i = 0; i < sizeof exprs / sizeof *exprs; i++)
        for (int64_t step = 7000; step <= 60000; step += 53000) {
            big one, four;
            char e1[512] = "", e4[512] = "";
            int r1 = run_threads(exprs[i], start, end, step, 1, 0, &one, e1, sizeof e1);
            int r4 = run_threads(exprs[i], start, end, step, 4, 0, &four, e4, sizeof e4);
            cr_assert_eq(r1, r4, "%s: %d (%s) on one thread, %d (%s) on four", exprs[i], r1, e1, r4,
                         e4);
            cr_assert_str_eq(e1, e4, "%s", exprs[i]);
            cr_assert_eq(one.len, four.len, "%s at step %lld", exprs[i], (long long)step);
            cr_assert(one.len == 0 || !memcmp(one.p, four.p, one.len), "%s at step %lld", exprs[i],
                      (long long)step);
            if (i < 3) cr_assert_gt(one.len, 100000, "%s: a large answer", exprs[i]);
            free(one.p);
            free(four.p);
        }
    /* the samples limit: the same error whichever thread crosses it */
    big one, four;
    char e1[512] = "", e4[512] = "";
    cr_assert_eq(
        run_threads("rate(net_bytes[5m])", start, end, 60000, 1, 50000, &one, e1, sizeof e1),
        MT_ELIMIT);
    cr_assert_eq(
        run_threads("rate(net_bytes[5m])", start, end, 60000, 4, 50000, &four, e4, sizeof e4),
        MT_ELIMIT);
    cr_assert_str_eq(e1, e4);
    free(one.p);
    free(four.p);
}

/* ---- the catalog cache: what a shared catalog shows follows the series made and deleted -------
 */

static int run_cached(mt_promql_cache *c, const char *expr, const char *tenant)
{
    out.len = 0;
    out.buf[0] = '\0';
    err[0] = '\0';
    mt_promql_spec s = {.expr = expr, .start = T0, .end = T0, .tenant = tenant, .cache = c};
    return mt_promql_query(eng, &s, collect, &out, err, sizeof err);
}

Test(promql, cached_catalogs_follow_new_and_deleted_series)
{
    mt_promql_cache *c;
    cr_assert_eq(mt_promql_cache_new(&c), MT_OK);
    const char *a[] = {"business_id=a", "host=x", NULL}, *a2[] = {"business_id=a", "host=y", NULL},
               *b[] = {"business_id=b", "host=x", NULL};
    put("cpu", a, "u", T0, 1);
    put("cpu", b, "u", T0, 2);
    cr_assert_eq(run_cached(c, "count(cpu_u)", NULL), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"2\"]"), "%s", out.buf);
    cr_assert_eq(run_cached(c, "count(cpu_u)", "a"), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"1\"]"), "%s", out.buf);
    /* a new series: both cached catalogs (every tenant's, a's) see it */
    put("cpu", a2, "u", T0, 3);
    cr_assert_eq(run_cached(c, "count(cpu_u)", NULL), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"3\"]"), "after a new series: %s", out.buf);
    cr_assert_eq(run_cached(c, "count(cpu_u)", "a"), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"2\"]"), "after a new series: %s", out.buf);
    /* more tenants than entries: the evicted ones are built again, the same */
    for (int i = 0; i < 20; i++) {
        char bid[32];
        snprintf(bid, sizeof bid, "t%d", i % 10);
        cr_assert_eq(run_cached(c, "count(cpu_u)", bid), MT_OK, "%s", err);
        cr_assert(strstr(out.buf, "\"result\":[]"), "%s", out.buf);
    }
    /* a's series deleted: gone from every catalog */
    mt_delete_spec d = {.business_id = "a"};
    mt_delete_result dr;
    cr_assert_eq(mt_engine_delete(eng, &d, &dr), MT_OK);
    cr_assert_eq(run_cached(c, "count(cpu_u)", NULL), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"1\"]"), "after the delete: %s", out.buf);
    cr_assert_eq(run_cached(c, "cpu_u", "a"), MT_OK, "%s", err);
    cr_assert(strstr(out.buf, "\"result\":[]"), "after the delete: %s", out.buf);
    mt_promql_cache_free(c);
}
