/*
 * test_fed.c — query/mt_fed.h on an engine of its own: names and labels
 * sanitized, values and escapes the line protocol cannot carry (NaN, ±Inf,
 * invalid UTF-8, a newline in a name), families never split, duplicates,
 * selectors ORed, bad selectors refused before anything is written,
 * the last sample only or every one (the last of each ms).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_fed.h"
#include "test_util.h"

#define T0 (1735689600LL * 1000000000LL) /* 2025-01-01T00:00:00Z */
#define MS 1000000LL

static char dir[256];
static mt_engine *eng;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-fed-XXXXXX");
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

TestSuite(fed, .init = setup, .fini = teardown);

/* Add one point of (measurement, "k=v" tags in key order or NULL, field) and commit it. */
static void put(const char *m, const char *const *tags, const char *field, int64_t ts, mt_vtype t,
                mt_val v)
{
    mt_name tk[8], tv[8];
    size_t n = 0;
    for (; tags && tags[n]; n++) {
        const char *eq = strchr(tags[n], '=');
        tk[n] = (mt_name){tags[n], (size_t)(eq - tags[n])};
        tv[n] = (mt_name){eq + 1, strlen(eq + 1)};
    }
    char key[1024];
    size_t kl = mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, tk, tv, n,
                              (mt_name){field, strlen(field)});
    cr_assert_gt(kl, 0, "key of %s %s", m, field);
    mt_batch *b = mt_batch_new();
    const char *str = t == MT_VT_STRING ? "text" : NULL;
    if (str) v.u = 4; /* strings: the length */
    cr_assert_eq(mt_batch_add(b, key, kl, ts, t, v, str), MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(eng, b, &r), MT_OK);
    cr_assert_eq(r.accepted, 1, "%s %s refused: %s", m, field, mt_strerror(r.first_reason));
    mt_batch_free(b);
}

static void putf(const char *m, const char *const *tags, const char *field, int64_t ts, double f)
{
    put(m, tags, field, ts, MT_VT_FLOAT, (mt_val){.f = f});
}

typedef struct text {
    char buf[8192];
    size_t len;
} text;

static int to_text(void *ud, const char *b, size_t n)
{
    text *t = ud;
    cr_assert_lt(t->len + n, sizeof t->buf);
    memcpy(t->buf + t->len, b, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 0;
}

/* Run mt_fed_write with these selectors over [from, to); its result code, the text into out. */
static int run(const char *const *match, size_t n, int64_t from, int64_t to, bool latest, text *out,
               mt_fed_result *res, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    mt_fed_spec spec = {.match = match, .nmatch = n, .from = from, .to = to, .latest = latest};
    return mt_fed_write(eng, &spec, to_text, out, res, err, cap);
}

Test(fed, names_and_label_names_are_sanitized)
{
    static const struct {
        const char *m, *f, *want;
    } metrics[] = {
        {"cpu", "usage_idle", "cpu_usage_idle"},
        {"net.io", "bytes-sent", "net_io_bytes_sent"},
        {"9lives", "x", "_9lives_x"},
        {"a:b", "c", "a:b_c"},
        {"temp\xc3\xa9", "\xe2\x82\xac", "temp___"},
        {"sp ace", "f", "sp_ace_f"},
        {"up", "value", "up"},
        {"net.io", "value", "net_io"},
        {"cpu", "values", "cpu_values"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        size_t n =
            mt_fed_metric_name((mt_name){metrics[i].m, strlen(metrics[i].m)},
                               (mt_name){metrics[i].f, strlen(metrics[i].f)}, out, sizeof out);
        cr_expect_str_eq(out, metrics[i].want, "%s + %s", metrics[i].m, metrics[i].f);
        cr_expect_eq(n, strlen(metrics[i].want));
    }
    static const struct {
        const char *k, *want;
    } labels[] = {
        {"host", "host"},    {"dev.name", "dev_name"},
        {"1rack", "_1rack"}, {"__name__", "tag__name__"},
        {".x", "_x"},        {"..x", "tag__x"},
        {"a:b", "a_b"},      {"_", "_"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        mt_fed_label_name((mt_name){labels[i].k, strlen(labels[i].k)}, out, sizeof out);
        cr_expect_str_eq(out, labels[i].want, "tag key %s", labels[i].k);
    }
    /* a short buffer: the length needed, the text cut and terminated */
    cr_expect_eq(mt_fed_metric_name((mt_name){"abcdef", 6}, (mt_name){"g", 1}, out, 4), 8);
    cr_expect_str_eq(out, "abc");
}

Test(fed, values_and_escapes_line_protocol_cannot_carry)
{
    const char *q[] = {"host=a\"b\\c", NULL};
    const char *bad[] = {"host=x\xff"
                         "y\xc3",
                         NULL}; /* a stray byte, a cut sequence */
    const char *ok[] = {"host=\xc3\xa9t\xc3\xa9", NULL};
    putf("m", q, "nan", T0, NAN);
    putf("m", q, "pinf", T0, INFINITY);
    putf("m", q, "ninf", T0, -INFINITY);
    putf("m", bad, "v", T0, 0.1);
    putf("m", ok, "v", T0, 1e21);
    put("m", q, "i", T0, MT_VT_INT, (mt_val){.i = INT64_MIN});
    put("m", q, "u", T0, MT_VT_UINT, (mt_val){.u = UINT64_MAX});
    put("m", q, "b", T0, MT_VT_BOOL, (mt_val){.u = 0});
    put("m", q, "s", T0, MT_VT_STRING, (mt_val){0});
    putf("new\nline\\", NULL, "f", T0 - 1, 2.5); /* ts -1 ns: the ms is the floor */
    const char *all[] = {"{__name__=~\".+\"}"};
    text t;
    mt_fed_result res;
    char err[512];
    cr_assert_eq(run(all, 1, T0 - MS, T0 + MS, true, &t, &res, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP m_b Metron measurement m, field b\n"
                            "# TYPE m_b untyped\n"
                            "m_b{host=\"a\\\"b\\\\c\"} 0 1735689600000\n"
                            "# HELP m_i Metron measurement m, field i\n"
                            "# TYPE m_i untyped\n"
                            "m_i{host=\"a\\\"b\\\\c\"} -9223372036854775808 1735689600000\n"
                            "# HELP m_nan Metron measurement m, field nan\n"
                            "# TYPE m_nan untyped\n"
                            "m_nan{host=\"a\\\"b\\\\c\"} NaN 1735689600000\n"
                            "# HELP m_ninf Metron measurement m, field ninf\n"
                            "# TYPE m_ninf untyped\n"
                            "m_ninf{host=\"a\\\"b\\\\c\"} -Inf 1735689600000\n"
                            "# HELP m_pinf Metron measurement m, field pinf\n"
                            "# TYPE m_pinf untyped\n"
                            "m_pinf{host=\"a\\\"b\\\\c\"} +Inf 1735689600000\n"
                            "# HELP m_u Metron measurement m, field u\n"
                            "# TYPE m_u untyped\n"
                            "m_u{host=\"a\\\"b\\\\c\"} 18446744073709551615 1735689600000\n"
                            "# HELP m_v Metron measurement m, field v\n"
                            "# TYPE m_v untyped\n"
                            "m_v{host=\"x\xEF\xBF\xBDy\xEF\xBF\xBD\"} 0.1 1735689600000\n"
                            "m_v{host=\"\xc3\xa9t\xc3\xa9\"} 1e+21 1735689600000\n"
                            "# HELP new_line__f Metron measurement new\\nline\\\\, field f\n"
                            "# TYPE new_line__f untyped\n"
                            "new_line__f 2.5 1735689599999\n");
    cr_expect_eq(res.series, 9);
    cr_expect_eq(res.samples, 9);
    cr_expect_eq(res.strings_skipped, 1);
    cr_expect_eq(res.duplicates, 0);
}

Test(fed, a_family_is_never_split_and_duplicates_are_left_out)
{
    const char *a[] = {"h=a", NULL};
    /* by the whole printed prefix, exp_x_y{...} would sort between exp_x and exp_x{...} */
    putf("exp", NULL, "x", T0, 3);
    putf("exp", a, "x_y", T0, 2);
    putf("exp", a, "x", T0, 1);
    /* two series, one name and label set: cpu + usage_idle, cpu_usage + idle; a tag collision */
    putf("cpu", a, "usage_idle", T0, 10);
    putf("cpu_usage", a, "idle", T0, 20);
    /* a tag that maps onto business_id never stands in for the tenant's own */
    const char *spoof[] = {"business.id=B", "business_id=A", NULL};
    putf("sp", spoof, "v", T0, 7);
    const char *c1[] = {"a.b=1", "a_b=2", NULL}, *c2[] = {"a.b=1", "a_b=3", NULL};
    putf("coll", c1, "v", T0, 1);
    putf("coll", c2, "v", T0, 2);
    const char *all[] = {"{__name__!=\"\"}"};
    text t;
    mt_fed_result res;
    char err[512];
    cr_assert_eq(run(all, 1, T0, T0 + 1, true, &t, &res, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP coll_v Metron measurement coll, field v\n"
                            "# TYPE coll_v untyped\n"
                            "coll_v{a_b=\"1\"} 1 1735689600000\n"
                            "# HELP cpu_usage_idle Metron measurement cpu, field usage_idle\n"
                            "# TYPE cpu_usage_idle untyped\n"
                            "cpu_usage_idle{h=\"a\"} 10 1735689600000\n"
                            "# HELP exp_x Metron measurement exp, field x\n"
                            "# TYPE exp_x untyped\n"
                            "exp_x 3 1735689600000\n"
                            "exp_x{h=\"a\"} 1 1735689600000\n"
                            "# HELP exp_x_y Metron measurement exp, field x_y\n"
                            "# TYPE exp_x_y untyped\n"
                            "exp_x_y{h=\"a\"} 2 1735689600000\n"
                            "# HELP sp_v Metron measurement sp, field v\n"
                            "# TYPE sp_v untyped\n"
                            "sp_v{business_id=\"A\"} 7 1735689600000\n");
    cr_expect_eq(res.duplicates, 2);
    cr_expect_eq(res.series, 6);
}

Test(fed, selectors_are_ored_and_match_the_prometheus_view)
{
    const char *a[] = {"dev.name=sda", "host=a", NULL}, *b[] = {"dev.name=sdb", "host=b", NULL};
    putf("disk.io", a, "read", T0, 1);
    putf("disk.io", b, "read", T0, 2);
    putf("disk.io", a, "write", T0, 3);
    putf("mem", a, "used", T0, 4);
    text t;
    char err[512];
    /* both select disk_io_read{host="a"}: it comes once */
    const char *two[] = {"disk_io_read{dev_name=\"sda\"}", "{__name__=~'disk_io_.*',host=`a`}"};
    cr_assert_eq(run(two, 2, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP disk_io_read Metron measurement disk.io, field read\n"
                            "# TYPE disk_io_read untyped\n"
                            "disk_io_read{dev_name=\"sda\",host=\"a\"} 1 1735689600000\n"
                            "# HELP disk_io_write Metron measurement disk.io, field write\n"
                            "# TYPE disk_io_write untyped\n"
                            "disk_io_write{dev_name=\"sda\",host=\"a\"} 3 1735689600000\n");
    /* != and !~, a label no series has (""), a name regex */
    const char *ne[] = {"{__name__=~\"disk.*|mem_used\", host!=\"a\", nope=\"\", dev_name!~\"x\"}"};
    cr_assert_eq(run(ne, 1, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP disk_io_read Metron measurement disk.io, field read\n"
                            "# TYPE disk_io_read untyped\n"
                            "disk_io_read{dev_name=\"sdb\",host=\"b\"} 2 1735689600000\n");
    /* the raw names are not the Prometheus view */
    const char *raw[] = {"{__name__=\"disk.io_read\"}", "mem_used{host=\"b\"}"};
    cr_assert_eq(run(raw, 2, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "");
}

Test(fed, a_bad_selector_is_refused_by_its_text_and_writes_nothing)
{
    putf("cpu", NULL, "v", T0, 1);
    static const struct {
        const char *sel, *why;
    } bad[] = {
        {"cpu_v[5m]", "no range, offset, @, function or operator: '[5m]'"},
        {"rate(cpu_v[5m])", "no range"},
        {"cpu_v offset 5m", "'offset 5m'"},
        {"sum(cpu_v)", "'(cpu_v)'"},
        {"{host=~\".*\"}", "at least one matcher must not match the empty string"},
        {"{host=\"\"}", "at least one matcher must not match the empty string"},
        {"cpu_v{host=a}", "the value of 'host' must be quoted"},
        {"cpu_v{host=\"a\"", "'{' is not closed"},
        {"cpu_v{host=\"a", "the value of 'host' is not closed"},
        {"cpu_v{host~\"a\"}", "label 'host' needs =, !=, =~ or !~"},
        {"cpu_v{host=~\"(\"}", "bad regular expression for 'host'"},
        {"cpu_v{__name__=\"x\"}", "the metric name is given twice"},
        {"cpu_v{host=\"\\x41\"}", "an escape Metron does not take: '\\x'"},
        {"cpu_v{1x=\"a\"}", "expected a label name at '1x"},
        {"", "expected a metric name or '{'"},
        {"9cpu", "expected a metric name or '{'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *two[] = {"cpu_v", bad[i].sel};
        text t;
        char err[512] = "", want[256];
        cr_expect_eq(run(two, 2, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_EPARSE, "%s",
                     bad[i].sel);
        snprintf(want, sizeof want, "match[] '%s': ", bad[i].sel);
        cr_expect(strstr(err, want) == err, "%s: %s", bad[i].sel, err);
        cr_expect(strstr(err, bad[i].why), "%s: want '%s' in %s", bad[i].sel, bad[i].why, err);
        cr_expect_eq(t.len, 0, "%s wrote %s", bad[i].sel, t.buf);
    }
    /* trailing comma and spaces are Prometheus syntax too */
    const char *good[] = {" cpu_v { __name__ != \"x\" , } "};
    text t;
    char err[512];
    cr_expect_eq(run(good, 1, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_EPARSE, "%s", err);
    const char *good2[] = {" cpu_v { host != \"x\" , } "};
    cr_expect_eq(run(good2, 1, T0, T0 + 1, true, &t, NULL, err, sizeof err), MT_OK, "%s", err);
    cr_expect(strstr(t.buf, "\ncpu_v 1 1735689600000\n"), "%s", t.buf);
}

Test(fed, the_last_sample_or_every_one_last_of_each_ms)
{
    const char *h[] = {"h=a", NULL};
    putf("lb", h, "v", T0 - 600000 * MS, 1); /* outside the range below */
    putf("lb", h, "v", T0 - 120000 * MS, 2);
    putf("lb", h, "v", T0 - 60000 * MS, 3);
    putf("lb", h, "v", T0 - 60000 * MS + 400000, 4); /* the same ms: the last of it counts */
    putf("lb", h, "v", T0 + MS, 5);                  /* after the range */
    const char *old[] = {"h=old", NULL};
    putf("lb", old, "v", T0 - 600000 * MS, 9); /* no sample in the range: no line */
    const char *sel[] = {"lb_v"};
    text t;
    char err[512];
    cr_assert_eq(run(sel, 1, T0 - MT_FED_LOOKBACK_NS, T0 + 1, true, &t, NULL, err, sizeof err),
                 MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP lb_v Metron measurement lb, field v\n"
                            "# TYPE lb_v untyped\n"
                            "lb_v{h=\"a\"} 4 1735689540000\n");
    cr_assert_eq(run(sel, 1, INT64_MIN, INT64_MAX, false, &t, NULL, err, sizeof err), MT_OK, "%s",
                 err);
    cr_expect_str_eq(t.buf, "# HELP lb_v Metron measurement lb, field v\n"
                            "# TYPE lb_v untyped\n"
                            "lb_v{h=\"a\"} 1 1735689000000\n"
                            "lb_v{h=\"a\"} 2 1735689480000\n"
                            "lb_v{h=\"a\"} 4 1735689540000\n"
                            "lb_v{h=\"a\"} 5 1735689600001\n"
                            "lb_v{h=\"old\"} 9 1735689000000\n");
    /* a tenant sees its business_id only, whatever the selector asks */
    const char *ta[] = {"business_id=A", "h=a", NULL}, *tb[] = {"business_id=B", "h=b", NULL};
    putf("tn", ta, "v", T0, 1);
    putf("tn", tb, "v", T0, 2);
    const char *other[] = {"tn_v{business_id=\"B\"}", "{__name__=~\"lb_v|tn_v\"}"};
    mt_fed_spec spec = {
        .match = other, .nmatch = 2, .from = T0, .to = T0 + 1, .latest = true, .tenant = "A"};
    memset(&t, 0, sizeof t);
    cr_assert_eq(mt_fed_write(eng, &spec, to_text, &t, NULL, err, sizeof err), MT_OK, "%s", err);
    cr_expect_str_eq(t.buf, "# HELP tn_v Metron measurement tn, field v\n"
                            "# TYPE tn_v untyped\n"
                            "tn_v{business_id=\"A\",h=\"a\"} 1 1735689600000\n");
    /* max_series */
    spec = (mt_fed_spec){
        .match = sel, .nmatch = 1, .from = INT64_MIN, .to = INT64_MAX, .max_series = 1};
    cr_expect_eq(mt_fed_write(eng, &spec, to_text, &t, NULL, err, sizeof err), MT_ELIMIT);
    cr_expect(strstr(err, "more than 1 series"), "%s", err);
}
