/*
 * test_alert.c — alert rules on real data in a real data directory, with
 * a fixed clock: each operator, warning against critical, per-series
 * instances and tenant scoping, no data, trend, anomaly, business hours;
 * and the lifecycle: fire, severity change, cooldown, acknowledge,
 * resolve.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_alert.h"
#include "mt_series.h"
#include "test_util.h"

#define S   1000000000LL
#define MIN (60 * S)
/* Monday 2025-01-06 12:00 UTC: inside business hours */
#define NOW (1736164800LL * S)

static char dir[128];
static mt_engine *e;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-alert-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0; /* hours seal as soon as the watermark passes them */
    o.dir = dir;
    o.auto_seal = false;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
}

static void teardown(void)
{
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(alert, .init = setup, .fini = teardown);

/* cpu,host=H[,business_id=T] usage = v(i) every minute for the minutes before NOW */
static void series(const char *host, const char *tenant, int minutes, double (*v)(int))
{
    char key[256];
    mt_name tk[2] = {{"business_id", 11}, {"host", 4}},
            tv[2] = {{tenant ? tenant : "", tenant ? strlen(tenant) : 0}, {host, strlen(host)}};
    size_t kl = tenant ? mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2,
                                       (mt_name){"usage", 5})
                       : mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk + 1, tv + 1, 1,
                                       (mt_name){"usage", 5});
    mt_batch *b = mt_batch_new();
    for (int i = 1; i <= minutes; i++)
        mt_batch_add(b, key, kl, NOW - i * MIN, MT_VT_FLOAT, (mt_val){.f = v(i)}, NULL);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    mt_batch_free(b);
}

static double at85(int i)
{
    (void)i;
    return 85;
}
static double at95(int i)
{
    (void)i;
    return 95;
}
static double rising(int i) /* 10 per hour, 50 now */
{
    return 50 - (double)i / 6;
}
static double steady_then_spike(int i) /* ~50 +- 1, the last 5 minutes at 80 */
{
    return i <= 5 ? 80 : 50 + (i % 3) - 1;
}

typedef struct evals {
    char series[8][128];
    char tenant[8][48];
    mt_alert_eval ev[8];
    size_t n;
} evals;

static int keep(void *ud, const mt_alert_eval *ev)
{
    evals *x = ud;
    if (x->n < 8) {
        snprintf(x->series[x->n], 128, "%s", ev->series);
        snprintf(x->tenant[x->n], 48, "%s", ev->business_id);
        x->ev[x->n++] = *ev;
    }
    return 0;
}

static evals run(const mt_alert_rule *r, int64_t now)
{
    evals x = {.n = 0};
    char err[256] = "";
    cr_assert_eq(mt_alert_rule_check(r, err, sizeof err), MT_OK, "%s", err);
    cr_assert_eq(mt_alert_evaluate(e, r, now, keep, &x, err, sizeof err), MT_OK, "%s", err);
    return x;
}

static mt_alert_rule rule(const char *metric, double warning, double critical, mt_cmp op)
{
    mt_alert_rule r = mt_alert_rule_default();
    snprintf(r.metric, sizeof r.metric, "%s", metric);
    r.has_warning = !isnan(warning);
    r.warning = warning;
    r.has_critical = !isnan(critical);
    r.critical = critical;
    r.op = op;
    return r;
}

Test(alert, each_operator_against_the_window_average)
{
    series("a", NULL, 10, at85);
    static const struct {
        mt_cmp op;
        double t;
        bool fires;
    } cases[] = {{MT_CMP_GT, 80, true},  {MT_CMP_GT, 85, false},  {MT_CMP_GTE, 85, true},
                 {MT_CMP_LT, 90, true},  {MT_CMP_LT, 85, false},  {MT_CMP_LTE, 85, true},
                 {MT_CMP_EQ, 85, true},  {MT_CMP_EQ, 84, false},  {MT_CMP_NE, 84, true},
                 {MT_CMP_NE, 85, false}, {MT_CMP_GTE, 86, false}, {MT_CMP_LTE, 84, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mt_alert_rule r = rule("cpu.usage", NAN, cases[i].t, cases[i].op);
        evals x = run(&r, NOW);
        cr_assert_eq(x.n, 1);
        cr_expect_eq(x.ev[0].value, 85);
        cr_expect_eq(x.ev[0].severity, cases[i].fires ? MT_SEV_CRITICAL : MT_SEV_NONE, "85 %s %g",
                     mt_cmp_name(cases[i].op), cases[i].t);
    }
}

Test(alert, warning_below_critical_and_one_instance_per_series)
{
    series("a", NULL, 10, at85);
    series("b", NULL, 10, at95);
    mt_alert_rule r = rule("cpu.usage", 80, 90, MT_CMP_GT);
    evals x = run(&r, NOW);
    cr_assert_eq(x.n, 2, "each series its own instance");
    cr_expect_str_eq(x.series[0], "cpu,host=a usage");
    cr_expect_eq(x.ev[0].severity, MT_SEV_WARNING);
    cr_expect_eq(x.ev[0].threshold, 80);
    cr_expect_eq(x.ev[1].severity, MT_SEV_CRITICAL);
    cr_expect_eq(x.ev[1].threshold, 90);
    /* an aggregation other than avg, and a tag matcher */
    r.agg = (mt_agg){.kind = MT_AGG_MAX, .name = "max"};
    snprintf(r.metric, sizeof r.metric, "cpu.usage{host=\"b\"}");
    x = run(&r, NOW);
    cr_assert_eq(x.n, 1);
    cr_expect_eq(x.ev[0].value, 95);
}

Test(alert, a_tenant_rule_sees_its_tenant_only)
{
    series("a", "t1", 10, at95);
    series("b", "t2", 10, at95);
    series("c", NULL, 10, at95);
    mt_alert_rule r = rule("cpu.usage", NAN, 90, MT_CMP_GT);
    snprintf(r.business_id, sizeof r.business_id, "t2");
    evals x = run(&r, NOW);
    cr_assert_eq(x.n, 1);
    cr_expect_str_eq(x.series[0], "cpu,business_id=t2,host=b usage");
    cr_expect_str_eq(x.tenant[0], "t2");
    /* a selector that names another tenant does not widen it */
    snprintf(r.metric, sizeof r.metric, "cpu.usage{business_id=\"t1\"}");
    x = run(&r, NOW);
    cr_expect_eq(x.n, 0, "a t2 rule never sees t1's series");
    snprintf(r.metric, sizeof r.metric, "cpu.usage{business_id=~\".*\"}");
    x = run(&r, NOW);
    cr_assert_eq(x.n, 1);
    cr_expect_str_eq(x.tenant[0], "t2");
    snprintf(r.metric, sizeof r.metric, "cpu.usage");
    r.business_id[0] = '\0'; /* system-wide: every series, each its own */
    x = run(&r, NOW);
    cr_expect_eq(x.n, 3);
}

/* A rule without a tenant: each series' alert is that series' tenant's. */
Test(alert, a_system_wide_rule_gives_each_alert_its_series_tenant)
{
    series("a", "t1", 10, at95);
    series("b", "t2", 10, at95);
    series("c", NULL, 10, at95);
    mt_alert_rule r = rule("cpu.usage", NAN, 90, MT_CMP_GT);
    evals x = run(&r, NOW);
    cr_assert_eq(x.n, 3);
    cr_expect_str_eq(x.series[0], "cpu,business_id=t1,host=a usage");
    cr_expect_str_eq(x.tenant[0], "t1");
    cr_expect_str_eq(x.series[1], "cpu,business_id=t2,host=b usage");
    cr_expect_str_eq(x.tenant[1], "t2");
    cr_expect_str_eq(x.series[2], "cpu,host=c usage");
    cr_expect_str_eq(x.tenant[2], "", "no business_id tag: no tenant");
}

Test(alert, no_data_is_explicit)
{
    series("a", NULL, 10, at95);
    mt_alert_rule r = rule("cpu.usage", NAN, 90, MT_CMP_GT);
    evals x = run(&r, NOW + 30 * MIN); /* nothing in the last 5 minutes */
    cr_assert_eq(x.n, 1);
    cr_expect(x.ev[0].nodata);
    mt_alert_state s = {0};
    r.nodata = MT_NODATA_KEEP;
    cr_expect_eq(mt_alert_step(&r, &s, &x.ev[0], NOW), MT_CHANGE_NONE);
    r.nodata = MT_NODATA_ALERT;
    cr_expect_eq(mt_alert_step(&r, &s, &x.ev[0], NOW), MT_CHANGE_FIRED);
    cr_expect_eq(s.severity, MT_SEV_CRITICAL);
    /* an open alert stays open through a gap under keep */
    r.nodata = MT_NODATA_KEEP;
    cr_expect_eq(mt_alert_step(&r, &s, &x.ev[0], NOW + MIN), MT_CHANGE_NONE);
    cr_expect_eq(s.status, MT_ALERT_ACTIVE);
}

Test(alert, trend_is_the_change_per_hour)
{
    series("a", NULL, 180, rising);
    mt_alert_rule r = rule("cpu.usage", 5, 20, MT_CMP_GT);
    r.cond = MT_COND_TREND;
    r.trend_period_ns = 2 * 60 * MIN;
    evals x = run(&r, NOW);
    cr_assert_eq(x.n, 1);
    cr_expect(fabs(x.ev[0].value - 10) < 1e-9, "%.17g per hour", x.ev[0].value);
    cr_expect_eq(x.ev[0].severity, MT_SEV_WARNING);
}

Test(alert, anomaly_is_a_z_score_against_earlier_windows)
{
    series("a", NULL, 5 * 13, steady_then_spike);
    mt_alert_rule r = mt_alert_rule_default();
    snprintf(r.metric, sizeof r.metric, "cpu.usage");
    r.cond = MT_COND_ANOMALY;
    evals x = run(&r, NOW);
    cr_assert_eq(x.n, 1);
    cr_expect_gt(x.ev[0].value, 3);
    cr_expect_eq(x.ev[0].severity, MT_SEV_CRITICAL);
    /* ten minutes earlier the window was ordinary */
    x = run(&r, NOW - 10 * MIN);
    cr_expect_eq(x.ev[0].severity, MT_SEV_NONE, "z %g", x.ev[0].value);
    /* a deaf rule (sensitivity 0) needs twice the deviations */
    r.anomaly_sensitivity = 0;
    r.has_critical = true;
    r.critical = x.ev[0].value; /* critical at the spike's z would need 2x */
    x = run(&r, NOW);
    cr_expect_eq(x.ev[0].threshold, 2 * r.critical);
}

Test(alert, business_hours_only)
{
    series("a", NULL, 10, at95);
    mt_alert_rule r = rule("cpu.usage", NAN, 90, MT_CMP_GT);
    r.business_hours_only = true;
    cr_expect_eq(run(&r, NOW).n, 1, "Monday noon");
    cr_expect(mt_alert_business_hours(NOW - 5 * 24 * 60 * MIN), "Wednesday noon");
    cr_expect(!mt_alert_business_hours(NOW - 4 * 60 * MIN), "08:00");
    int64_t saturday = NOW + 5 * 24 * 60 * MIN;
    cr_expect(!mt_alert_business_hours(saturday));
    cr_expect(!mt_alert_business_hours(NOW + 6 * 60 * MIN), "18:00");
    cr_expect_eq(run(&r, saturday).n, 0, "not evaluated on Saturday");
}

Test(alert, lifecycle_fire_escalate_cooldown_acknowledge_resolve)
{
    mt_alert_rule r = rule("cpu.usage", 80, 90, MT_CMP_GT);
    r.cooldown_ns = 15 * MIN;
    mt_alert_state s = {0};
    mt_alert_eval warn = {.value = 85, .severity = MT_SEV_WARNING, .threshold = 80},
                  crit = {.value = 95, .severity = MT_SEV_CRITICAL, .threshold = 90},
                  ok = {.value = 50, .severity = MT_SEV_NONE, .threshold = NAN};
    cr_expect_eq(mt_alert_step(&r, &s, &ok, NOW), MT_CHANGE_NONE);
    cr_expect_eq(mt_alert_step(&r, &s, &warn, NOW), MT_CHANGE_FIRED);
    cr_expect_eq(s.triggered_at, NOW);
    cr_expect_eq(mt_alert_step(&r, &s, &warn, NOW + 5 * MIN), MT_CHANGE_UPDATED, "in cooldown");
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 6 * MIN), MT_CHANGE_SEVERITY);
    cr_expect_eq(s.severity, MT_SEV_CRITICAL);
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 20 * MIN), MT_CHANGE_UPDATED);
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 21 * MIN), MT_CHANGE_RENOTIFY,
                 "15 minutes after the last notification");
    cr_expect_eq(s.notifications, 3);
    s.status = MT_ALERT_ACKNOWLEDGED; /* a person, in PostgreSQL */
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 60 * MIN), MT_CHANGE_UPDATED,
                 "acknowledged: no more reminders");
    cr_expect_eq(mt_alert_step(&r, &s, &ok, NOW + 61 * MIN), MT_CHANGE_RESOLVED);
    cr_expect_eq(s.status, MT_ALERT_RESOLVED);
    cr_expect_eq(s.resolved_at, NOW + 61 * MIN);
    cr_expect_eq(mt_alert_step(&r, &s, &warn, NOW + 62 * MIN), MT_CHANGE_FIRED, "a new instance");
    cr_expect_eq(s.triggered_at, NOW + 62 * MIN);
}

Test(alert, bad_rules_are_named)
{
    char err[256];
    mt_alert_rule r = rule("cpu.usage", NAN, NAN, MT_CMP_GT);
    cr_expect_eq(mt_alert_rule_check(&r, err, sizeof err), MT_EINVAL);
    cr_expect(strstr(err, "needs warning_threshold or critical_threshold"), "%s", err);
    r = rule("cpu.usage{host=a}", NAN, 1, MT_CMP_GT);
    evals x = {.n = 0};
    cr_expect_eq(mt_alert_evaluate(e, &r, NOW, keep, &x, err, sizeof err), MT_EPARSE);
    mt_cmp op;
    cr_expect(!mt_cmp_parse("GT", &op), "upper case is not an operator (the schema checks it)");
    cr_expect(mt_cmp_parse("lte", &op) && op == MT_CMP_LTE);
}

Test(alert, the_record_round_trips_and_refuses_garbage)
{
    mt_alert_record r = {.rule = rule("cpu.usage{host=\"a\"}", 80, 90, MT_CMP_GTE)};
    snprintf(r.rule.id, sizeof r.rule.id, "1a90a1a6-58b5-8d4b-81c1-45b6d8cb8d08");
    snprintf(r.series, sizeof r.series, "cpu,host=a usage");
    r.st = (mt_alert_state){.status = MT_ALERT_ACTIVE,
                            .severity = MT_SEV_WARNING,
                            .triggered_at = NOW,
                            .notified_at = NOW,
                            .value = 85.5,
                            .threshold = 80,
                            .notifications = 2};
    mt_alert_id(r.rule.id, r.series, NOW, r.alert_id);
    char other[37];
    mt_alert_id(r.rule.id, r.series, NOW + 1, other);
    cr_expect_str_neq(r.alert_id, other, "a new firing is a new alert");
    uint8_t *buf;
    size_t len;
    cr_assert_eq(mt_alert_record_encode(&r, &buf, &len), MT_OK);
    mt_alert_record back;
    cr_assert_eq(mt_alert_record_decode(buf, len, &back), MT_OK);
    cr_expect_str_eq(back.alert_id, r.alert_id);
    cr_expect_str_eq(back.rule.metric, r.rule.metric);
    cr_expect_str_eq(back.series, r.series);
    cr_expect_eq(back.rule.op, MT_CMP_GTE);
    cr_expect_eq(back.st.value, 85.5);
    cr_expect_eq(back.st.notifications, 2);
    cr_expect_str_eq(back.business_id, "", "no tenant");
    for (size_t cut = 0; cut < len; cut++)
        cr_expect_eq(mt_alert_record_decode(buf, cut, &back), MT_ECORRUPT, "cut %zu", cut);
    free(buf);
    /* the alert's own tenant round-trips, apart from the rule's (a system-wide rule) */
    snprintf(r.business_id, sizeof r.business_id, "7f3c2a10-0000-4000-8000-000000000001");
    cr_assert_eq(mt_alert_record_encode(&r, &buf, &len), MT_OK);
    cr_assert_eq(mt_alert_record_decode(buf, len, &back), MT_OK);
    cr_expect_str_eq(back.business_id, r.business_id);
    cr_expect_str_eq(back.rule.business_id, "");
    char row[2048];
    mt_alert_record_row(&back, row, sizeof row);
    cr_expect(strstr(row, "\t7f3c2a10-0000-4000-8000-000000000001\n"),
              "the listing's last column: %s", row);
    free(buf);
    /* a record of version 1 (no tenant of its own) reads back with the rule's */
    snprintf(r.rule.business_id, sizeof r.rule.business_id, "%s", r.business_id);
    snprintf(r.business_id, sizeof r.business_id, "ffffffff-0000-4000-8000-000000000002");
    cr_assert_eq(mt_alert_record_encode(&r, &buf, &len), MT_OK);
    buf[0] = 1; /* the version, and the business_id string at the end cut off */
    cr_assert_eq(mt_alert_record_decode(buf, len - 1 - strlen(r.business_id), &back), MT_OK);
    cr_expect_str_eq(back.business_id, "7f3c2a10-0000-4000-8000-000000000001");
    free(buf);
}

Test(alert, a_silence_suppresses_then_the_alert_fires_when_it_ends)
{
    mt_alert_rule r = rule("cpu.usage", NAN, 90, MT_CMP_GT);
    cr_assert(mt_alert_rule_add_silence(&r, "2025-01-06T11:00:00Z/2025-01-06T13:00:00Z"));
    cr_expect(!mt_alert_rule_add_silence(&r, "2025-01-06T13:00:00Z/2025-01-06T11:00:00Z"));
    cr_expect(!mt_alert_rule_add_silence(&r, "yesterday"));
    mt_alert_state s = {0};
    mt_alert_eval crit = {.value = 95, .severity = MT_SEV_CRITICAL, .threshold = 90},
                  ok = {.value = 50, .severity = MT_SEV_NONE, .threshold = NAN};
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW), MT_CHANGE_SUPPRESSED, "12:00, silenced");
    cr_expect_eq(s.status, MT_ALERT_SUPPRESSED);
    cr_expect_eq(s.notifications, 0);
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 30 * MIN), MT_CHANGE_SUPPRESSED);
    cr_expect_eq(s.triggered_at, NOW, "the same instance");
    cr_expect_eq(mt_alert_step(&r, &s, &crit, NOW + 60 * MIN), MT_CHANGE_FIRED, "13:00: it ends");
    cr_expect_eq(s.status, MT_ALERT_ACTIVE);
    /* cleared inside a silence: resolved without a notification */
    mt_alert_state t = {0};
    cr_expect_eq(mt_alert_step(&r, &t, &crit, NOW), MT_CHANGE_SUPPRESSED);
    cr_expect_eq(mt_alert_step(&r, &t, &ok, NOW + MIN), MT_CHANGE_UPDATED);
    cr_expect_eq(t.status, MT_ALERT_RESOLVED);
}
