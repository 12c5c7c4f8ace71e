/*
 * test_query.c — selectors, raw ranges and every aggregation and grouping
 * against a brute-force computation over the same points, kept here in
 * memory: random data (some hours sealed, some in the head), random ranges
 * and steps, bucket edges, counter resets.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_query.h"
#include "test_util.h"

#define T0     (1735689600LL * 1000000000LL)
#define S      1000000000LL
#define HOSTS  5
#define NPTS   600 /* per series */
#define FIELDS 2   /* v: a float walk; c: an int counter with resets */

typedef struct series {
    int host;
    int field;
    int64_t ts[NPTS];
    double v[NPTS];
} series;

static char dir[256];
static series data[HOSTS * FIELDS];
static mt_engine *eng;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static size_t key_of(char *out, int host, int field)
{
    char h[8], r[8];
    snprintf(h, sizeof h, "h%d", host);
    snprintf(r, sizeof r, "r%d", host % 2);
    mt_name tk[2] = {{"host", 4}, {"region", 6}}, tv[2] = {{h, strlen(h)}, {r, 2}};
    return mt_series_key(out, 256, (mt_name){"m", 1}, tk, tv, 2,
                         field ? (mt_name){"c", 1} : (mt_name){"v", 1});
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-query-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0; /* hours seal as soon as the watermark passes them */
    o.dir = dir;
    o.auto_seal = false;
    cr_assert_eq(mt_engine_open(&o, &eng), MT_OK);
    uint64_t seed = mt_test_seed();
    mt_batch *b = mt_batch_new();
    for (int h = 0; h < HOSTS; h++) {
        for (int f = 0; f < FIELDS; f++) {
            series *s = &data[h * FIELDS + f];
            s->host = h;
            s->field = f;
            char key[256];
            size_t kl = key_of(key, h, f);
            int64_t t = T0 + (int64_t)(mt_test_rand(&seed) % 30) * S;
            double x = 100, c = 0;
            for (int i = 0; i < NPTS; i++) {
                t += (int64_t)(1 + mt_test_rand(&seed) % 30) * S; /* irregular: ~2.5 h in all */
                x += (double)((int64_t)(mt_test_rand(&seed) % 201) - 100) / 100;
                c = mt_test_rand(&seed) % 97 == 0 ? 0 : c + (double)(mt_test_rand(&seed) % 50);
                s->ts[i] = t;
                s->v[i] = f ? c : x;
                mt_val v = f ? (mt_val){.i = (int64_t)c} : (mt_val){.f = x};
                cr_assert_eq(mt_batch_add(b, key, kl, t, f ? MT_VT_INT : MT_VT_FLOAT, v, NULL),
                             MT_OK);
            }
        }
    }
    mt_write_result r;
    cr_assert_eq(mt_engine_write(eng, b, &r), MT_OK);
    cr_assert_eq(r.accepted, (size_t)HOSTS * FIELDS * NPTS);
    mt_batch_free(b);
    /* the first hour sealed, the rest in the head */
    cr_assert_eq(mt_engine_seal(eng, false, NULL), MT_OK);
}

static void teardown(void)
{
    mt_engine_close(eng);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(query, .init = setup, .fini = teardown);

/* Series the selector matched. */
static size_t matched(const char *sel, int *rc)
{
    mt_query_spec spec = {.select = sel, .from = T0, .to = T0 + 10 * MT_HOUR_NS};
    mt_query *q;
    char err[256] = "";
    *rc = mt_query_open(eng, &spec, &q, err, sizeof err);
    if (*rc) return 0;
    size_t n = mt_query_series(q);
    mt_query_close(q);
    return n;
}

Test(query, selectors)
{
    int rc;
    cr_expect_eq(matched("m.v", &rc), HOSTS);
    cr_expect_eq(matched("m", &rc), HOSTS * FIELDS, "every field");
    cr_expect_eq(matched("m.v{host=\"h1\"}", &rc), 1);
    cr_expect_eq(matched("m.v{host!=\"h1\"}", &rc), HOSTS - 1);
    cr_expect_eq(matched("m.v{host=~\"h[12]\"}", &rc), 2);
    cr_expect_eq(matched("m.v{host=~\"h\"}", &rc), 0, "anchored");
    cr_expect_eq(matched("m.v{host!~\"h.*\"}", &rc), 0);
    cr_expect_eq(matched("m{region=\"r0\", host!=\"h0\"}", &rc), 2 * FIELDS);
    cr_expect_eq(matched(" m.c { region = \"r1\" } ", &rc), 2);
    cr_expect_eq(matched("m.v{nope=\"\"}", &rc), HOSTS, "an absent tag is the empty string");
    cr_expect_eq(matched("m.v{host=\"\"}", &rc), 0);
    cr_expect_eq(matched("other.v", &rc), 0);
    cr_expect_eq(rc, MT_OK, "matching nothing is no error");
    /* every measurement: {...} without a name, "*", and __name__ matching the measurement */
    cr_expect_eq(matched("{host=\"h1\"}", &rc), FIELDS);
    cr_expect_eq(matched("{__name__=~\".+\"}", &rc), HOSTS * FIELDS);
    cr_expect_eq(matched("*", &rc), HOSTS * FIELDS);
    cr_expect_eq(matched("{}", &rc), HOSTS * FIELDS);
    cr_expect_eq(matched("*.v", &rc), HOSTS);
    cr_expect_eq(matched("{__name__=\"m\", host=~\"h[12]\"}", &rc), 2 * FIELDS);
    cr_expect_eq(matched("{__name__!=\"m\"}", &rc), 0);
    cr_expect_eq(matched("m{__name__=\"other\"}", &rc), 0);
    const char *bad[] = {
        "m.v{host=\"h1\"",       "m.v{host~\"x\"}", "m.v{host=~\"(\"}", "m.v{host=h1}", "",
        "m.v{host=\"h1\"} extra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        matched(bad[i], &rc);
        cr_expect_eq(rc, MT_EPARSE, "%s", bad[i]);
    }
}

Test(query, aggregation_names)
{
    mt_agg a[MT_QUERY_MAX_AGGS];
    size_t n;
    char err[256];
    cr_assert_eq(mt_agg_parse("count,avg,p50,p95,p99,p999,p5,quantile(0.25),rate", a,
                              MT_QUERY_MAX_AGGS, &n, err, sizeof err),
                 MT_OK, "%s", err);
    cr_expect_eq(n, 9);
    cr_expect_eq(a[2].q, 0.5);
    cr_expect_eq(a[3].q, 0.95);
    cr_expect_eq(a[5].q, 0.999);
    cr_expect_eq(a[6].q, 0.05);
    cr_expect_eq(a[7].q, 0.25);
    cr_expect_str_eq(a[3].name, "p95");
    cr_expect_eq(mt_agg_parse("avg,median", a, MT_QUERY_MAX_AGGS, &n, err, sizeof err), MT_EPARSE);
    cr_expect(strstr(err, "unknown aggregation 'median'"), "%s", err);
    cr_expect_eq(mt_agg_parse("quantile(1.5)", a, MT_QUERY_MAX_AGGS, &n, err, sizeof err),
                 MT_EPARSE);
}

Test(query, raw_points_equal_what_was_written)
{
    uint64_t seed = mt_test_seed();
    for (int round = 0; round < 20; round++) {
        int h = (int)(mt_test_rand(&seed) % HOSTS);
        const series *s = &data[h * FIELDS];
        int64_t from = T0 + (int64_t)(mt_test_rand(&seed) % 9000) * S;
        int64_t to = from + (int64_t)(1 + mt_test_rand(&seed) % 9000) * S;
        char sel[64];
        snprintf(sel, sizeof sel, "m.v{host=\"h%d\"}", h);
        mt_query_spec spec = {.select = sel, .from = from, .to = to};
        mt_query *q;
        char err[256];
        cr_assert_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_OK, "%s", err);
        mt_row row;
        int i = 0;
        while (i < NPTS && s->ts[i] < from) i++;
        while (mt_query_next(q, &row) == MT_OK) {
            cr_assert_lt(i, NPTS);
            cr_assert_eq(row.time, s->ts[i]);
            cr_assert_eq(row.raw.f, s->v[i]);
            char label[64];
            snprintf(label, sizeof label, "m,host=h%d,region=r%d v", h, h % 2);
            cr_assert_str_eq(row.group, label);
            i++;
        }
        cr_expect(i == NPTS || s->ts[i] >= to, "missing points after %d", i);
        mt_query_close(q);
    }
}

/* ---- aggregations against brute force -------------------------------------------------- */

typedef struct bucket {
    char group[64];
    int64_t start;
    double *vals; /* in the order the engine adds them: series by series, in time */
    int64_t *ts;
    size_t n, cap;
    double increase;
    bool any_increase;
} bucket;

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double ref_quantile(const bucket *b, double q)
{
    double *v = malloc(b->n * sizeof *v);
    memcpy(v, b->vals, b->n * sizeof *v);
    qsort(v, b->n, sizeof *v, dcmp);
    double pos = q * (double)(b->n - 1);
    size_t lo = (size_t)floor(pos), hi = (size_t)ceil(pos);
    double r = hi > lo ? v[lo] + (pos - (double)lo) * (v[hi] - v[lo]) : v[lo];
    free(v);
    return r;
}

static bucket *find_bucket(bucket **bs, size_t *nb, const char *group, int64_t start)
{
    for (size_t i = 0; i < *nb; i++)
        if ((*bs)[i].start == start && !strcmp((*bs)[i].group, group)) return &(*bs)[i];
    *bs = realloc(*bs, (*nb + 1) * sizeof **bs);
    bucket *b = &(*bs)[(*nb)++];
    memset(b, 0, sizeof *b);
    snprintf(b->group, sizeof b->group, "%s", group);
    b->start = start;
    return b;
}

static int bucket_order(const void *a, const void *b)
{
    const bucket *x = a, *y = b;
    int r = strcmp(x->group, y->group);
    return r ? r : (x->start > y->start) - (x->start < y->start);
}

static void close_enough(double got, double want, const char *what)
{
    if (isnan(want)) {
        cr_assert(isnan(got), "%s: %.17g, expected NaN", what, got);
        return;
    }
    cr_assert(fabs(got - want) <= 1e-9 * fmax(1, fabs(want)), "%s: %.17g, expected %.17g", what,
              got, want);
}

Test(query, every_aggregation_and_grouping_equals_brute_force, .timeout = 120)
{
    uint64_t seed = mt_test_seed();
    mt_agg aggs[MT_QUERY_MAX_AGGS];
    size_t naggs;
    char err[256];
    cr_assert_eq(mt_agg_parse("count,sum,avg,min,max,first,last,stddev,increase,rate,p50,p95,p99,"
                              "quantile(0.333)",
                              aggs, MT_QUERY_MAX_AGGS, &naggs, err, sizeof err),
                 MT_OK);
    const int64_t steps[] = {0, 10 * S, 60 * S, 300 * S, 3600 * S, 7 * S, 7200 * S};
    for (int round = 0; round < 40; round++) {
        int field = round % 2, mode = (round / 2) % 3; /* 0 series, 1 by region, 2 none */
        int64_t step = steps[mt_test_rand(&seed) % (sizeof steps / sizeof steps[0])];
        int64_t from = T0 + (int64_t)(mt_test_rand(&seed) % 6000) * S;
        int64_t to = from + (int64_t)(1 + mt_test_rand(&seed) % 9000) * S;
        if (round == 0) from = T0, to = T0 + 4 * MT_HOUR_NS, step = MT_HOUR_NS; /* edges */
        /* brute force */
        bucket *bs = NULL;
        size_t nb = 0;
        for (int h = 0; h < HOSTS; h++) {
            const series *s = &data[h * FIELDS + field];
            char group[64];
            if (mode == 0)
                snprintf(group, sizeof group, "m,host=h%d,region=r%d %s", h, h % 2,
                         field ? "c" : "v");
            else if (mode == 1)
                snprintf(group, sizeof group, "region=r%d", h % 2);
            else
                group[0] = '\0';
            bool has_prev = false;
            double prev = 0;
            for (int i = 0; i < NPTS; i++) {
                if (s->ts[i] < from || s->ts[i] >= to) continue;
                int64_t start = step ? s->ts[i] / step * step : from;
                bucket *b = find_bucket(&bs, &nb, group, start);
                if (b->n == b->cap) {
                    b->cap = b->cap ? b->cap * 2 : 64;
                    b->vals = realloc(b->vals, b->cap * sizeof *b->vals);
                    b->ts = realloc(b->ts, b->cap * sizeof *b->ts);
                }
                b->vals[b->n] = s->v[i];
                b->ts[b->n++] = s->ts[i];
                if (has_prev) {
                    b->increase += s->v[i] >= prev ? s->v[i] - prev : s->v[i];
                    b->any_increase = true;
                }
                prev = s->v[i];
                has_prev = true;
            }
        }
        /* the engine's order: groups by label (per-series labels sort like their ids here),
           buckets in time */
        if (nb) qsort(bs, nb, sizeof *bs, bucket_order);
        /* the query */
        mt_query_spec spec = {.select = field ? "m.c" : "m.v",
                              .from = from,
                              .to = to,
                              .step = step,
                              .aggs = aggs,
                              .naggs = naggs,
                              .by_none = mode == 2};
        if (mode == 1) spec.by[0] = "region", spec.nby = 1;
        mt_query *q;
        cr_assert_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_OK, "%s", err);
        mt_row row;
        size_t k = 0;
        while (mt_query_next(q, &row) == MT_OK) {
            cr_assert_lt(k, nb, "more rows than buckets (round %d)", round);
            const bucket *b = &bs[k++];
            cr_assert_str_eq(row.group, b->group, "round %d", round);
            cr_assert_eq(row.time, b->start, "round %d group %s", round, b->group);
            double mn = INFINITY, mx = -INFINITY, sum = 0, first = 0, last = 0;
            int64_t fts = INT64_MAX, lts = INT64_MIN;
            for (size_t i = 0; i < b->n; i++) {
                mn = fmin(mn, b->vals[i]);
                mx = fmax(mx, b->vals[i]);
                sum += b->vals[i];
                if (b->ts[i] < fts) fts = b->ts[i], first = b->vals[i];
                if (b->ts[i] >= lts) lts = b->ts[i], last = b->vals[i];
            }
            double avg = sum / (double)b->n, ss = 0;
            for (size_t i = 0; i < b->n; i++) ss += (b->vals[i] - avg) * (b->vals[i] - avg);
            double secs = (double)(step ? step : to - from) / 1e9;
            cr_assert_eq(row.values[0], (double)b->n, "count");
            close_enough(row.values[1], sum, "sum");
            close_enough(row.values[2], avg, "avg");
            cr_assert_eq(row.values[3], mn, "min");
            cr_assert_eq(row.values[4], mx, "max");
            cr_assert_eq(row.values[5], first, "first");
            cr_assert_eq(row.values[6], last, "last");
            close_enough(row.values[7], b->n > 1 ? sqrt(ss / (double)(b->n - 1)) : NAN, "stddev");
            close_enough(row.values[8], b->any_increase ? b->increase : NAN, "increase");
            close_enough(row.values[9], b->any_increase ? b->increase / secs : NAN, "rate");
            cr_assert_eq(row.values[10], ref_quantile(b, 0.5), "p50");
            cr_assert_eq(row.values[11], ref_quantile(b, 0.95), "p95");
            cr_assert_eq(row.values[12], ref_quantile(b, 0.99), "p99");
            cr_assert_eq(row.values[13], ref_quantile(b, 0.333), "quantile(0.333)");
        }
        cr_assert_eq(k, nb, "round %d: %zu rows for %zu buckets (MT_TEST_SEED=%llu)", round, k, nb,
                     (unsigned long long)mt_test_seed());
        mt_query_close(q);
        for (size_t i = 0; i < nb; i++) free(bs[i].vals), free(bs[i].ts);
        free(bs);
    }
}

Test(query, limits_are_clear_errors)
{
    mt_query_spec spec = {.select = "m", .from = T0, .to = T0 + 10 * MT_HOUR_NS, .max_series = 3};
    mt_query *q = NULL;
    char err[256] = "";
    cr_expect_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_ELIMIT);
    cr_expect(strstr(err, "matches 10 series, more than the limit of 3"), "%s", err);
    spec.max_series = 0;
    spec.max_points = 100;
    cr_assert_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_OK);
    mt_row row;
    int n = 0, rc;
    while ((rc = mt_query_next(q, &row)) == MT_OK) n++;
    cr_expect_eq(rc, MT_ELIMIT);
    cr_expect_eq(n, 100);
    mt_query_close(q);
    spec.to = spec.from;
    cr_expect_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_EINVAL);
}

/* count/sum/avg/min/max/first/last over whole sealed hours come from the stored summaries */
Test(query, whole_sealed_hours_are_answered_from_summaries)
{
    /* a late write over a sealed point of host 0: that hour must be decoded, and the late
       value wins (last write wins) */
    char key[256];
    size_t kl = key_of(key, 0, 0);
    mt_batch *b = mt_batch_new();
    int64_t late = data[0].ts[0];
    mt_batch_add(b, key, kl, late, MT_VT_FLOAT, (mt_val){.f = 1000}, NULL);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(eng, b, &r), MT_OK);
    mt_batch_free(b);
    mt_agg aggs[MT_QUERY_MAX_AGGS];
    size_t naggs;
    char err[256];
    cr_assert_eq(mt_agg_parse("count,sum,avg,min,max,first,last", aggs, MT_QUERY_MAX_AGGS, &naggs,
                              err, sizeof err),
                 MT_OK);
    const int64_t from = T0, to = T0 + 3 * MT_HOUR_NS;
    for (int mode = 0; mode < 2; mode++) {
        mt_query_spec spec = {.select = "m.v",
                              .from = from,
                              .to = to,
                              .step = MT_HOUR_NS,
                              .aggs = aggs,
                              .naggs = naggs,
                              .by_none = mode == 1};
        mt_query *q;
        cr_assert_eq(mt_query_open(eng, &spec, &q, err, sizeof err), MT_OK, "%s", err);
        mt_row row;
        int rows = 0;
        while (mt_query_next(q, &row) == MT_OK) {
            /* brute force for this row's group and hour */
            double cnt = 0, sum = 0, mn = INFINITY, mx = -INFINITY, first = 0, last = 0;
            int64_t fts = INT64_MAX, lts = INT64_MIN;
            for (int h = 0; h < HOSTS; h++) {
                char label[64];
                snprintf(label, sizeof label, "m,host=h%d,region=r%d v", h, h % 2);
                if (mode == 0 && strcmp(row.group, label)) continue;
                const series *s = &data[h * FIELDS];
                for (int i = 0; i < NPTS; i++) {
                    int64_t ts = s->ts[i];
                    double v = h == 0 && i == 0 ? 1000 : s->v[i];
                    if (ts < row.time || ts >= row.time + MT_HOUR_NS || ts >= to) continue;
                    cnt++, sum += v, mn = fmin(mn, v), mx = fmax(mx, v);
                    if (ts < fts) fts = ts, first = v;
                    if (ts >= lts) lts = ts, last = v;
                }
            }
            cr_assert_eq(row.values[0], cnt, "%s %lld", row.group, (long long)row.time);
            close_enough(row.values[1], sum, "sum");
            close_enough(row.values[2], sum / cnt, "avg");
            cr_assert_eq(row.values[3], mn, "min");
            cr_assert_eq(row.values[4], mx, "max");
            cr_assert_eq(row.values[5], first, "first");
            cr_assert_eq(row.values[6], last, "last");
            rows++;
        }
        cr_expect_gt(rows, 0);
        cr_expect_gt(mt_query_summaries_used(q), 0, "no sealed hour came from its summary");
        mt_query_close(q);
    }
}

/* What mt_format_double prints, by printf: the first of %.15g, %.16g, %.17g that reads back
 * the same (mt_dtoa.c finds it without printf). */
static void reference_double(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void same_as_reference(double v)
{
    char got[64], want[64];
    mt_format_double(v, got, sizeof got);
    reference_double(v, want, sizeof want);
    cr_assert_str_eq(got, want, "%a", v);
    cr_assert_eq(strtod(got, NULL), v, "%s does not read back as %a", got, v);
}

Test(format, doubles_print_as_before_and_read_back)
{
    static const double edges[] = {0.0,
                                   -0.0,
                                   1e-4,
                                   9.9999e-5,
                                   1e15,
                                   999999999999999.0,
                                   1e15 - 0.5,
                                   0.1 + 0.2,
                                   1.0 / 3,
                                   2.5e-4,
                                   123456789012345.0,
                                   12345678901234.5,
                                   9007199254740993.0,
                                   5e-324,
                                   1.7976931348623157e308,
                                   INFINITY,
                                   -INFINITY,
                                   100,
                                   0.3,
                                   15.46,
                                   -72.47,
                                   1e-5,
                                   65.055};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) same_as_reference(edges[i]);
    /* every binary exponent: its power of two (where the interval is lopsided and printf
       decides a 16-digit case), the doubles beside it, and the largest mantissa */
    for (uint64_t be = 1; be < 0x7ff; be++) {
        uint64_t bits[] = {be << 52, be << 52 | 1, be << 52 | ((1ull << 52) - 1)};
        for (size_t j = 0; j < 3; j++) {
            double v;
            memcpy(&v, &bits[j], sizeof v);
            same_as_reference(v);
            same_as_reference(-v);
            same_as_reference(nextafter(v, 0));
        }
    }
    srand(11);
    for (int i = 0; i < 300000; i++) {
        /* decimals as agents send them: up to 15 digits, 0 to 12 after the point */
        long long n = ((long long)rand() << 20 ^ rand()) % 1000000000000000LL;
        double v = (double)n / pow(10, rand() % 13);
        same_as_reference(i % 2 ? -v : v);
        /* arbitrary doubles: every exponent, every mantissa */
        uint64_t bits = (uint64_t)rand() << 62 ^ (uint64_t)rand() << 31 ^ (uint64_t)rand();
        double w;
        memcpy(&w, &bits, sizeof w);
        if (!isnan(w)) same_as_reference(w);
        same_as_reference(v * (1 + DBL_EPSILON)); /* one ulp off a short decimal */
        /* doubles of every mantissa between 1e-4 and 1e15, where printf is not called */
        double u = ldexp((double)(bits >> 11) / 9007199254740992.0 + 0.5, rand() % 64 - 14);
        same_as_reference(u);
        same_as_reference((double)n / (rand() % 1000 + 1)); /* averages */
        same_as_reference(nextafter(pow(10, rand() % 19 - 4), i % 2 ? 0 : INFINITY));
    }
}
