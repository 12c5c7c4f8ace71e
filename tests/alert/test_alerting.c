/*
 * test_alerting.c — the alert loop (alert/mt_alerting.h) in process, on a
 * real data directory with a fixed clock: an alert fires, repeats past its
 * cooldown, is kept on disk (the record read back with mt_engine_state_get),
 * survives closing and reopening the engine without firing again, and
 * resolves when the series comes back under its threshold.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_alert.h"
#include "mt_series.h"

#define S   1000000000LL
#define MIN (60 * S)
#define NOW (1736164800LL * S) /* Monday 2025-01-06 12:00 UTC */

static char dir[128];
static mt_engine *e;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void open_engine(void)
{
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0;
    o.dir = dir;
    o.auto_seal = false;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK, "open %s", dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-alerting-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    open_engine();
}

static void teardown(void)
{
    mt_engine_close(e);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(alerting, .init = setup, .fini = teardown);

/* cpu,host=web1 usage = v every minute of [from, to) */
static void points(int64_t from, int64_t to, double v)
{
    char key[256];
    mt_name tk = {"host", 4}, tv = {"web1", 4};
    size_t kl =
        mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, &tk, &tv, 1, (mt_name){"usage", 5});
    mt_batch *b = mt_batch_new();
    cr_assert_not_null(b);
    for (int64_t t = from; t < to; t += MIN)
        cr_assert_eq(mt_batch_add(b, key, kl, t, MT_VT_FLOAT, (mt_val){.f = v}, NULL), MT_OK);
    mt_write_result r;
    cr_assert_eq(mt_engine_write(e, b, &r), MT_OK);
    mt_batch_free(b);
}

static mt_alert_rule cpu_rule(void)
{
    mt_alert_rule r = mt_alert_rule_default();
    snprintf(r.id, sizeof r.id, "11111111-2222-4333-8444-555555555555");
    snprintf(r.name, sizeof r.name, "cpu_high");
    snprintf(r.metric, sizeof r.metric, "cpu.usage");
    r.has_warning = r.has_critical = true;
    r.warning = 80, r.critical = 90;
    r.op = MT_CMP_GT;
    r.cooldown_ns = 15 * MIN;
    return r;
}

/* The record metrond keeps for the rule's one series, read from the data directory. */
static mt_alert_record stored(const mt_alert_rule *r)
{
    char key[1200];
    size_t klen;
    cr_assert_eq(mt_alert_record_key(r->id, "cpu,host=web1 usage", key, sizeof key, &klen), MT_OK);
    void *val = NULL;
    size_t vlen = 0;
    cr_assert_eq(mt_engine_state_get(e, key, klen, &val, &vlen), MT_OK, "no record on disk");
    mt_alert_record rec;
    cr_assert_eq(mt_alert_record_decode(val, vlen, &rec), MT_OK);
    free(val);
    return rec;
}

static size_t run(mt_alerting *a, int64_t now)
{
    size_t changes = 99;
    cr_assert_eq(mt_alerting_run(a, now, &changes), MT_OK);
    return changes;
}

Test(alerting, fires_repeats_survives_a_reopen_and_resolves)
{
    mt_alert_rule r = cpu_rule();
    points(NOW - 10 * MIN, NOW + 25 * MIN, 95); /* critical for 35 minutes */
    points(NOW + 25 * MIN, NOW + 40 * MIN, 10); /* then quiet */

    mt_alerting *a;
    cr_assert_eq(mt_alerting_new(e, &r, 1, false, NULL, &a), MT_OK);
    cr_expect_eq(run(a, NOW), 1, "the alert fires");
    mt_alert_record rec = stored(&r);
    cr_expect_eq(rec.st.status, MT_ALERT_ACTIVE);
    cr_expect_eq(rec.st.severity, MT_SEV_CRITICAL);
    cr_expect_eq(rec.st.triggered_at, NOW);
    cr_expect_eq(rec.st.notifications, 1);
    cr_expect_eq(rec.st.value, 95);
    char id[40];
    snprintf(id, sizeof id, "%s", rec.alert_id);
    cr_expect_eq(strlen(id), 36, "alert id '%s'", id);

    run(a, NOW + 5 * MIN); /* inside the cooldown: no reminder */
    rec = stored(&r);
    cr_expect_eq(rec.st.notifications, 1);
    cr_expect_eq(rec.st.notified_at, NOW);
    run(a, NOW + 16 * MIN); /* past the 15 min cooldown: a reminder */
    rec = stored(&r);
    cr_expect_eq(rec.st.notifications, 2, "the reminder is counted on disk");
    cr_expect_eq(rec.st.notified_at, NOW + 16 * MIN);

    size_t len;
    char *list = mt_alerting_list(a, false, NULL, &len);
    cr_assert_not_null(list);
    cr_expect(strstr(list, id) && strstr(list, "critical"), "%s", list);
    free(list);
    mt_alerting_free(a);

    /* a restart: the engine closed and opened again, the states loaded from it */
    mt_engine_close(e);
    e = NULL;
    open_engine();
    cr_assert_eq(mt_alerting_new(e, &r, 1, false, NULL, &a), MT_OK);
    list = mt_alerting_list(a, false, NULL, &len);
    cr_assert_not_null(list);
    cr_expect(strstr(list, id), "the open alert is known after the reopen:\n%s", list);
    free(list);
    run(a, NOW + 20 * MIN); /* still breached after the reopen: not fired again */
    rec = stored(&r);
    cr_expect_str_eq(rec.alert_id, id, "the same alert");
    cr_expect_eq(rec.st.status, MT_ALERT_ACTIVE);
    cr_expect_eq(rec.st.triggered_at, NOW);
    cr_expect_eq(rec.st.notifications, 2);
    cr_expect_eq(rec.st.notified_at, NOW + 16 * MIN);

    cr_expect_eq(run(a, NOW + 35 * MIN), 1, "the window is quiet: resolved");
    rec = stored(&r);
    cr_expect_eq(rec.st.status, MT_ALERT_RESOLVED);
    cr_expect_eq(rec.st.resolved_at, NOW + 35 * MIN);
    list = mt_alerting_list(a, false, NULL, &len);
    cr_assert_not_null(list);
    cr_expect(!strstr(list, id), "a resolved alert is no open one:\n%s", list);
    free(list);
    list = mt_alerting_list(a, true, NULL, &len);
    cr_assert_not_null(list);
    cr_expect(strstr(list, id) && strstr(list, "resolved"), "%s", list);
    free(list);
    mt_alerting_free(a);
}

Test(alerting, an_acknowledgement_is_kept_across_a_reopen)
{
    mt_alert_rule r = cpu_rule();
    points(NOW - 10 * MIN, NOW + 30 * MIN, 95);
    mt_alerting *a;
    cr_assert_eq(mt_alerting_new(e, &r, 1, false, NULL, &a), MT_OK);
    cr_expect_eq(run(a, NOW), 1);
    mt_alert_record rec = stored(&r);
    mt_alerting_acknowledge(a, rec.alert_id);
    cr_expect_eq(stored(&r).st.status, MT_ALERT_ACKNOWLEDGED);
    mt_alerting_free(a);

    mt_engine_close(e);
    e = NULL;
    open_engine();
    cr_assert_eq(mt_alerting_new(e, &r, 1, false, NULL, &a), MT_OK);
    run(a, NOW + 20 * MIN); /* past the cooldown: an acknowledged alert is not reminded of */
    rec = stored(&r);
    cr_expect_eq(rec.st.status, MT_ALERT_ACKNOWLEDGED);
    cr_expect_eq(rec.st.notifications, 1);
    mt_alerting_free(a);
}
