/*
 * test_alert_routing.c — alerts stay in their tenant, and webhooks never
 * go out unsigned. End to end: metrond on 127.0.0.1 with real receivers
 * (and a database of its own in the test PostgreSQL): an alert carries
 * its series' business_id into monitoring.alerts, the listing and the
 * body; endpoints and channels hear of their tenant's alerts only (a
 * system-wide one of all), of the event types they asked for, and of the
 * rules that name them; one X-Metron-Delivery per notification, the same
 * on each retry; tools/examples/webhook_receiver.py accepts real
 * deliveries and refuses forgeries. The notifier itself (alert/mt_notify.c,
 * linked in): a 100 KiB body arrives whole, a body that cannot be signed
 * is never sent, and the routing rules.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "metrond_harness.h"
#include "mt_fault.h"
#include "mt_alert.h"

#define TA "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TB "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"

/* "sha256=<hex>" of "ts.body" under secret. */
static void sign(const char *secret, const char *ts, const char *body, size_t len, char out[72])
{
    size_t tl = strlen(ts);
    unsigned char *msg = malloc(tl + 1 + len), mac[32];
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    memcpy(msg + tl + 1, body, len);
    unsigned int ml = 0;
    cr_assert_not_null(
        HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + len, mac, &ml));
    free(msg);
    int w = snprintf(out, 72, "sha256=");
    for (unsigned j = 0; j < ml; j++) w += snprintf(out + w, (size_t)(72 - w), "%02x", mac[j]);
}

/* The value of "key":"..." in a JSON body ("" when absent), the first one. */
static void json_field(const char *body, const char *key, char *out, size_t cap)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":\"", key);
    const char *at = strstr(body, k);
    out[0] = '\0';
    if (!at) return;
    at += strlen(k);
    size_t n = strcspn(at, "\"");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), at);
}

static void wait_log(mth_daemon *d, const char *needle)
{
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(50))
        if (mth_log_lines(d, needle)) return;
    cr_assert_fail("no \"%s\" in %s", needle, d->log);
}

/* ---- in PostgreSQL: endpoints, channels, rules -------------------------------------------- */

/*
 * Two tenants A and B, an endpoint for each, a system-wide one, one of A's
 * for resolutions only, and a system-wide channel that one rule names: a
 * rule without a tenant fires for A's and B's series; each alert is its
 * series' tenant's, in monitoring.alerts, the body and the listing; each
 * endpoint hears of what it should, and of nothing else.
 */
Test(routing, tenants_event_types_and_channels_in_postgresql, .timeout = 120)
{
    char db[64], url[512], sql[2048], got[1024];
    snprintf(db, sizeof db, "routing_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    mth_receiver ra = {0}, rb = {0}, rsys = {0}, rres = {0}, rpager = {0};
    mth_receiver_start(&ra);
    mth_receiver_start(&rb);
    mth_receiver_start(&rsys);
    mth_receiver_start(&rres);
    mth_receiver_start(&rpager);
    mth_daemon d;
    char args[1024];
    snprintf(args, sizeof args, "--postgres '%s' --alert-interval 1", url);
    mth_start(&d, NULL, args);
    cr_assert(mth_pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                          sizeof got),
              "the sink installs the schema");
    /* endpoints in id order: the channel last, the system-wide endpoint before it (the
       notifier delivers each notification to each endpoint in that order) */
    snprintf(
        sql, sizeof sql,
        "INSERT INTO monitoring.webhook_endpoints (id, business_id, endpoint_name, webhook_url,"
        " secret_token, event_types) VALUES"
        " ('10000000-0000-4000-8000-000000000001', '" TA "', 'a', "
        "'http://127.0.0.1:%d/a', 's', NULL),"
        " ('10000000-0000-4000-8000-000000000002', '" TB "', 'b', "
        "'http://127.0.0.1:%d/b', 's', '[]'),"
        " ('10000000-0000-4000-8000-000000000003', '" TA "', 'a resolved', "
        "'http://127.0.0.1:%d/r', 's', '[\\\"alert.resolved\\\"]'),"
        " ('fffffff0-0000-4000-8000-000000000000', NULL, 'everyone', "
        "'http://127.0.0.1:%d/sys', 's', NULL) RETURNING 1",
        ra.port, rb.port, rres.port, rsys.port);
    mth_pg_value(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "1", "%s", sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO monitoring.notification_channels (id, channel_name, channel_type,"
             " configuration) VALUES ('ffffffff-0000-4000-8000-000000000000', 'pagers', 'webhook',"
             " '{\\\"url\\\": \\\"http://127.0.0.1:%d/p\\\", \\\"secret\\\": \\\"c\\\"}')"
             " RETURNING 1",
             rpager.port);
    mth_pg_value(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "1", "%s", sql);
    /* two rules without a tenant; the second narrowed to the pagers channel */
    mth_pg_value(url,
                 "INSERT INTO monitoring.alert_rules (id, rule_name, rule_category, severity,"
                 " metric_name, condition_type, condition_definition, evaluation_window,"
                 " critical_threshold, comparison_operator, created_by, notification_channels)"
                 " VALUES ('11111111-1111-4111-8111-111111111111', 'cpu hot', 'performance',"
                 " 'critical', 'cpu.usage', 'threshold', '{}', '1 minute', 90, 'gt',"
                 " gen_random_uuid(), '[]'),"
                 " ('22222222-2222-4222-8222-222222222222', 'disk full', 'capacity', 'critical',"
                 " 'disk.used', 'threshold', '{}', '1 minute', 90, 'gt', gen_random_uuid(),"
                 " '[\\\"pagers\\\"]') RETURNING 1",
                 got, sizeof got);
    cr_assert_str_eq(got, "1");
    /* the rules' trigger notifies metrond, which reads rules and endpoints again */
    wait_log(&d, "msg=\"alert rules loaded\" rules=2");
    wait_log(&d, "msg=\"webhook endpoints loaded\" endpoints=5");
    long long now = (long long)time(NULL);
    char lines[1024];
    snprintf(lines, sizeof lines,
             "cpu,host=a,business_id=" TA " usage=95 %lld\n"
             "cpu,host=b,business_id=" TB " usage=95 %lld\n"
             "disk,host=a,business_id=" TA " used=95 %lld\n"
             "disk,host=b,business_id=" TB " used=95 %lld\n",
             now, now, now, now);
    mth_write(&d, lines);
    /* monitoring.alerts: each row carries its series' tenant (the rules have none) */
    cr_expect(mth_pg_wait(url,
                          "SELECT string_agg(metric_name || ':' || coalesce(business_id::text, "
                          "'NULL'), ',' ORDER BY metric_name, business_id) FROM monitoring.alerts",
                          "cpu.usage:" TA ",cpu.usage:" TB ",disk.used:" TA ",disk.used:" TB, got,
                          sizeof got),
              "%s", got);
    mth_pg_value(url, "SELECT count(*) FROM monitoring.alert_rules WHERE business_id IS NULL", got,
                 sizeof got);
    cr_expect_str_eq(got, "2", "the rules stay system-wide");
    /* the channel is last in order and hears of the last notification (disk, B): when it has
       its four (cpu A and B: that rule names no channel; disk A and B), all were delivered */
    cr_assert_eq(mth_wait_received(&rpager, 4, 10000), 4, "a %d b %d sys %d res %d pager %d",
                 mth_received(&ra), mth_received(&rb), mth_received(&rsys), mth_received(&rres),
                 mth_received(&rpager));
    cr_expect_eq(mth_received(&ra), 1, "A: its cpu alert only");
    cr_expect_eq(mth_count(&ra, "\"business_id\":\"" TA "\""), 1);
    cr_expect_eq(mth_count(&ra, TB), 0, "nothing of B's reaches A");
    cr_expect_eq(mth_received(&rb), 1, "B: its cpu alert only");
    cr_expect_eq(mth_count(&rb, TA), 0, "nothing of A's reaches B");
    cr_expect_eq(mth_received(&rsys), 2, "the system-wide endpoint: A's and B's cpu alerts");
    cr_expect_eq(mth_count(&rsys, "\"series\":\"cpu,business_id=" TA ",host=a usage\""), 1);
    cr_expect_eq(mth_count(&rsys, "\"series\":\"cpu,business_id=" TB ",host=b usage\""), 1);
    cr_expect_eq(mth_count(&rsys, "disk"), 0, "the disk rule names the pagers only");
    cr_expect_eq(mth_count(&rpager, "\"name\":\"disk full\""), 2, "the channel the rule names");
    cr_expect_eq(mth_received(&rres), 0, "an endpoint for resolutions hears of no firing");
    cr_expect_eq(mth_count(&ra, "\"event\":\"fired\",\"type\":\"alert.fired\""), 1);
    cr_expect_eq(mth_count(&ra, "\"rule\":{\"id\":\"11111111-1111-4111-8111-111111111111\","
                                "\"name\":\"cpu hot\",\"metric_name\":\"cpu.usage\","
                                "\"business_id\":null}"),
                 1, "the rule is still system-wide");
    /* the listing: the alert's business_id, last column */
    static char body[1 << 16];
    cr_assert_eq(mth_http(d.http, "GET", "/api/v1/alerts", NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(strstr(body, "\tresolved_at\tbusiness_id\n"), "%s", body);
    cr_expect(strstr(body, "\tcpu hot\tcpu,business_id=" TA ",host=a usage\t"), "%s", body);
    cr_expect(strstr(body, "\t" TA "\n") && strstr(body, "\t" TB "\n"), "%s", body);
    /* the cpu rule changes: A's and B's alerts resolve; A's resolutions endpoint hears of A's */
    mth_pg_value(url,
                 "UPDATE monitoring.alert_rules SET critical_threshold = 99 WHERE rule_name = "
                 "'cpu hot' RETURNING 1",
                 got, sizeof got);
    cr_assert_eq(mth_wait_received(&rpager, 6, 10000), 6, "two resolutions after four firings");
    cr_expect_eq(mth_received(&rsys), 4, "two resolutions after two firings");
    cr_expect_eq(mth_received(&rres), 1, "A's resolution, not B's");
    cr_expect_eq(mth_count(&rres, "\"event\":\"resolved\""), 1);
    cr_expect_eq(mth_count(&rres, "\"business_id\":\"" TA "\""), 1);
    cr_expect_eq(mth_received(&ra), 2);
    cr_expect_eq(mth_count(&ra, TB), 0);
    cr_expect_eq(mth_received(&rb), 2);
    cr_expect_eq(mth_count(&rb, TA), 0);

    cr_expect(mth_pg_wait(url,
                          "SELECT string_agg(status || ':' || business_id, ',' ORDER BY "
                          "business_id) FROM monitoring.alerts WHERE metric_name = 'cpu.usage'",
                          "resolved:" TA ",resolved:" TB, got, sizeof got),
              "%s", got);
    mth_stop(&d);
    mth_cleanup(&d);
    mth_receiver_stop(&ra);
    mth_receiver_stop(&rb);
    mth_receiver_stop(&rsys);
    mth_receiver_stop(&rres);
    mth_receiver_stop(&rpager);
    mth_pg_drop(db);
}

/* ---- in the rules file -------------------------------------------------------------------- */

/*
 * The rules file's webhooks take a business_id and event_types, and a
 * rule's notification_channels names the [webhook]s it goes to.
 */
Test(routing, rules_file_webhooks_by_tenant_event_types_and_channels, .timeout = 120)
{
    mth_receiver ta = {0}, tb = {0}, crit = {0}, sys = {0};
    mth_receiver_start(&ta);
    mth_receiver_start(&tb);
    mth_receiver_start(&crit);
    mth_receiver_start(&sys);
    char rules[] = "/tmp/metrond-routing-XXXXXX", ini[4096];
    /* the disk rule first: the last notification (cpu, B) reaches the last webhook */
    snprintf(ini, sizeof ini,
             "[rule disk]\nmetric_name = disk.used\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\nnotification_channels = ta\n"
             "[rule cpu]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "warning_threshold = 80\ncritical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook ta]\nurl = http://127.0.0.1:%d/\nsecret_token = s\nbusiness_id = " TA "\n"
             "[webhook tb]\nurl = http://127.0.0.1:%d/\nsecret_token = s\nbusiness_id = " TB "\n"
             "[webhook crit]\nurl = http://127.0.0.1:%d/\nsecret_token = s\n"
             "event_types = alert.fired, critical\n"
             "[webhook sys]\nurl = http://127.0.0.1:%d/\nsecret_token = s\n",
             ta.port, tb.port, crit.port, sys.port);
    mt_test_file(rules, ini);
    char cmd[512], out[1024];
    snprintf(cmd, sizeof cmd, "%s rules check %s 2>&1", METRON_PATH, rules);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(pclose(p), 0, "%s", out);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1", rules);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL);
    char lines[1024];
    snprintf(lines, sizeof lines,
             "disk,host=a,business_id=" TA " used=95 %lld\n"
             "disk,host=b,business_id=" TB " used=95 %lld\n"
             "cpu,host=a,business_id=" TA " usage=95 %lld\n"
             "cpu,host=b,business_id=" TB " usage=85 %lld\n",
             now, now, now, now);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&sys, 2, 10000), 2, "cpu A (critical) and cpu B (warning)");
    cr_expect_eq(mth_count(&sys, "disk"), 0, "the disk rule names ta only");
    cr_expect_eq(mth_received(&ta), 2, "ta: A's disk and cpu alerts");
    cr_expect_eq(mth_count(&ta, TB), 0);
    cr_expect_eq(mth_received(&tb), 1, "tb: B's cpu warning (B's disk alert names ta only)");
    cr_expect_eq(mth_count(&tb, "\"severity\":\"warning\""), 1);
    cr_expect_eq(mth_count(&tb, TA), 0);
    cr_expect_eq(mth_received(&crit), 1, "fired and critical: cpu A, not B's warning");
    cr_expect_eq(mth_count(&crit, "cpu,business_id=" TA ",host=a usage"), 1);
    cr_expect_eq(mth_log_lines(&d, "alert rule skipped"), 0, "a [webhook] is no rule");
    mth_stop(&d);
    mth_cleanup(&d);
    /* a channel no [webhook] has, an event type nobody knows: named errors */
    FILE *f = fopen(rules, "w");
    fputs("[rule cpu]\nmetric_name = cpu.usage\ncritical_threshold = 90\n"
          "notification_channels = nowhere\n",
          f);
    fclose(f);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_neq(pclose(p), 0);
    cr_expect(strstr(out, "[rule cpu] notification_channels: no [webhook nowhere]"), "%s", out);
    f = fopen(rules, "w");
    fputs("[webhook x]\nurl = http://127.0.0.1:1/\nevent_types = alert.fird\n", f);
    fclose(f);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_neq(pclose(p), 0);
    cr_expect(strstr(out, "[webhook x] event_types:"), "%s", out);
    unlink(rules);
    mth_receiver_stop(&ta);
    mth_receiver_stop(&tb);
    mth_receiver_stop(&crit);
    mth_receiver_stop(&sys);
}

/* ---- delivery ids ------------------------------------------------------------------------- */

/* Two 500s, then a 200: three attempts, one X-Metron-Delivery; the resolution has its own. */
Test(webhooks, one_delivery_id_across_retries, .timeout = 120)
{
    mth_receiver rv = {.fail_first = 2};
    mth_receiver_start(&rv);
    char rules[] = "/tmp/metrond-delivery-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook ops]\nurl = http://127.0.0.1:%d/hook\nsecret_token = s3cret\n"
             "retry_attempts = 3\nretry_base_ms = 100\ntimeout_seconds = 5\n",
             rv.port);
    mt_test_file(rules, ini);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1", rules);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL);
    char lines[4096];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\n", now);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&rv, 3, 10000), 3, "two 500s, then the 200");
    char in_body[80];
    json_field(rv.got[0].body, "delivery", in_body, sizeof in_body);
    cr_expect_eq(strlen(rv.got[0].delivery), 36, "a UUID: %s", rv.got[0].delivery);
    cr_expect_str_eq(in_body, rv.got[0].delivery, "the body carries the id, signed");
    for (int k = 1; k < 3; k++)
        cr_expect_str_eq(rv.got[k].delivery, rv.got[0].delivery, "attempt %d: the same id", k);
    size_t len = 0;
    for (int i = 1; i <= 30; i++)
        len +=
            (size_t)snprintf(lines + len, sizeof lines - len, "cpu,host=a usage=1 %lld\n", now - i);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&rv, 4, 10000), 4);
    cr_expect(strstr(rv.got[3].body, "\"event\":\"resolved\""), "%s", rv.got[3].body);
    cr_expect_str_neq(rv.got[3].delivery, rv.got[0].delivery, "another notification, another id");
    json_field(rv.got[3].body, "delivery", in_body, sizeof in_body);
    cr_expect_str_eq(in_body, rv.got[3].delivery);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(rules);
    mth_receiver_stop(&rv);
}

/* A body past the old 4 KiB: a series of 900 control characters, each six in JSON. */
Test(webhooks, a_long_body_arrives_whole, .timeout = 120)
{
    mth_receiver rv = {0};
    mth_receiver_start(&rv);
    char rules[] = "/tmp/metrond-long-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook ops]\nurl = http://127.0.0.1:%d/hook\nsecret_token = s\n",
             rv.port);
    mt_test_file(rules, ini);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1", rules);
    mth_start(&d, NULL, args);
    char host[901], lines[2048];
    memset(host, 1, 900);
    host[900] = '\0';
    snprintf(lines, sizeof lines, "cpu,host=%s usage=95 %lld\n", host, (long long)time(NULL));
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&rv, 1, 10000), 1);
    mth_req *q = &rv.got[0];
    cr_expect_gt(q->len, 5400, "%zu bytes", q->len);
    int esc = 0;
    for (const char *p = q->body; (p = strstr(p, "\\u0001")); p += 6) esc++;
    cr_expect_eq(esc, 900, "the whole series, escaped");
    cr_expect(q->len > 2 && !strcmp(q->body + q->len - 2, "}}"), "the end of the JSON: %s",
              q->body + (q->len > 40 ? q->len - 40 : 0));
    char want[72];
    sign("s", q->ts, q->body, q->len, want);
    cr_expect_str_eq(q->sig, want);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(rules);
    mth_receiver_stop(&rv);
}

#ifdef MT_FAULT_INJECTION
/*
 * Signing fails (fault point webhook.sign, armed in metrond's environment):
 * nothing is sent, the log names the endpoint, failed_calls counts it;
 * the next notification is signed and sent.
 */
Test(webhooks, a_body_that_cannot_be_signed_is_never_sent, .timeout = 120)
{
    char db[64], url[512], sql[1024], got[512];
    snprintf(db, sizeof db, "unsigned_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    mth_receiver rv = {0};
    mth_receiver_start(&rv);
    mth_daemon d;
    char args[1024];
    snprintf(args, sizeof args, "--postgres '%s' --alert-interval 1", url);
    mth_start(&d, "MT_FAULT=webhook.sign:1", args);
    cr_assert(mth_pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                          sizeof got));
    snprintf(sql, sizeof sql,
             "INSERT INTO monitoring.webhook_endpoints (id, endpoint_name, webhook_url, "
             "secret_token, retry_attempts) VALUES ('55555555-5555-4555-8555-555555555555', "
             "'ops', 'http://127.0.0.1:%d/hook', 'pgsecret', 3) RETURNING 1",
             rv.port);
    mth_pg_value(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "1");
    mth_pg_value(url,
                 "INSERT INTO monitoring.alert_rules (rule_name, rule_category, severity,"
                 " metric_name, condition_type, condition_definition, evaluation_window,"
                 " critical_threshold, comparison_operator, created_by) VALUES ('cpu hot',"
                 " 'performance', 'critical', 'cpu.usage', 'threshold', '{}', '1 minute', 90, 'gt',"
                 " gen_random_uuid()) RETURNING 1",
                 got, sizeof got);
    cr_assert_str_eq(got, "1");
    wait_log(&d, "msg=\"alert rules loaded\" rules=1");
    wait_log(&d, "msg=\"webhook endpoints loaded\" endpoints=1");
    long long now = (long long)time(NULL);
    char lines[4096];
    snprintf(lines, sizeof lines, "cpu,host=a usage=95 %lld\n", now);
    mth_write(&d, lines);
    cr_expect(mth_pg_wait(url,
                          "SELECT total_calls || ' ' || failed_calls || ' ' || successful_calls || "
                          "' ' || (last_failure_at IS NOT NULL) FROM monitoring.webhook_endpoints",
                          "1 1 0 true", got, sizeof got),
              "one failed call, not retried: %s", got);
    cr_expect_eq(mth_received(&rv), 0, "nothing unsigned went out");
    cr_expect_eq(mth_log_lines(&d, "msg=\"webhook not sent: the body could not be signed\" "
                                   "endpoint=\"ops\""),
                 1);
    /* the fault was for one call: the resolution goes out, signed */
    size_t len = 0;
    for (int i = 1; i <= 30; i++)
        len +=
            (size_t)snprintf(lines + len, sizeof lines - len, "cpu,host=a usage=1 %lld\n", now - i);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&rv, 1, 10000), 1);
    cr_expect(strstr(rv.got[0].body, "\"event\":\"resolved\""), "%s", rv.got[0].body);
    char want[72];
    sign("pgsecret", rv.got[0].ts, rv.got[0].body, rv.got[0].len, want);
    cr_expect_str_eq(rv.got[0].sig, want);
    mth_stop(&d);
    mth_cleanup(&d);
    mth_receiver_stop(&rv);
    mth_pg_drop(db);
}
#endif

/* ---- the notifier, linked in -------------------------------------------------------------- */

static mt_webhook hook_to(int port, const char *secret)
{
    mt_webhook w = mt_webhook_default();
    snprintf(w.name, sizeof w.name, "test");
    snprintf(w.url, sizeof w.url, "http://127.0.0.1:%d/hook", port);
    snprintf(w.secret, sizeof w.secret, "%s", secret);
    w.retry_base_ms = 50;
    w.timeout_s = 5;
    return w;
}

/* 100 KiB of JSON (the old notifier built bodies in 4 KiB and cut them). */
Test(notify, a_100_KiB_body_arrives_whole, .timeout = 60)
{
    mth_receiver rv = {0};
    mth_receiver_start(&rv);
    mt_webhook w = hook_to(rv.port, "k");
    mt_notifier *nf;
    cr_assert_eq(mt_notifier_start(&w, 1, &nf), MT_OK);
    size_t len = 100 * 1024;
    char *body = malloc(len + 1);
    int k = snprintf(body, len, "{\"delivery\":\"d-1\",\"pad\":\"");
    for (size_t i = (size_t)k; i < len - 2; i++) body[i] = (char)('a' + i % 26);
    memcpy(body + len - 2, "\"}", 2);
    body[len] = '\0';
    mt_notice n = {.business_id = "", .event = MT_WEBHOOK_FIRED, .delivery = "d-1"};
    cr_assert_eq(mt_notifier_send(nf, body, len, &n), MT_OK);
    cr_assert_eq(mth_wait_received(&rv, 1, 10000), 1);
    mt_notifier_stop(nf);
    cr_expect_eq(rv.got[0].len, len, "%zu bytes of %zu", rv.got[0].len, len);
    cr_expect(rv.got[0].len == len && !memcmp(rv.got[0].body, body, len), "the same bytes");
    char want[72];
    sign("k", rv.got[0].ts, body, len, want);
    cr_expect_str_eq(rv.got[0].sig, want, "signed over the whole body");
    cr_expect_str_eq(rv.got[0].delivery, "d-1");
    free(body);
    mth_receiver_stop(&rv);
}

#ifdef MT_FAULT_INJECTION
Test(notify, a_body_that_cannot_be_signed_is_never_sent, .timeout = 60)
{
    mth_receiver rv = {0};
    mth_receiver_start(&rv);
    mt_webhook w = hook_to(rv.port, "k");
    mt_notifier *nf;
    char sig[72] = "x";
    mt_fault_set("webhook.sign", 1);
    cr_expect_eq(mt_webhook_sign("k", "1", "{}", 2, sig), MT_ECRYPTO);
    cr_expect_str_eq(sig, "", "no partial signature");
    cr_assert_eq(mt_notifier_start(&w, 1, &nf), MT_OK);
    mt_fault_set("webhook.sign", 1);
    mt_notice n = {.business_id = "", .event = MT_WEBHOOK_FIRED, .delivery = "d-2"};
    cr_assert_eq(mt_notifier_send(nf, "{}", 2, &n), MT_OK);
    n.delivery = "d-3";
    cr_assert_eq(mt_notifier_send(nf, "{\"second\":1}", 12, &n), MT_OK);
    cr_assert_eq(mth_wait_received(&rv, 1, 10000), 1, "the second one, signed");
    /* the receiver has the request before the sender has its answer: wait for the count */
    mt_webhook_stats st;
    for (int i = 0; i < 1000; i++) {
        mt_notifier_stats(nf, 0, &st);
        if (st.successful >= 1) break;
        usleep(10000);
    }
    mt_notifier_stop(nf);
    cr_expect_eq(mth_received(&rv), 1);
    cr_expect_str_eq(rv.got[0].delivery, "d-3", "d-2 never went out");
    cr_expect_eq(st.total, 2);
    cr_expect_eq(st.failed, 1, "the unsigned one, counted once (not retried)");
    cr_expect_eq(st.unsigned_, 1);
    cr_expect_eq(st.successful, 1);
    mth_receiver_stop(&rv);
}
#endif

Test(notify, routing_by_tenant_event_type_and_channel)
{
    mt_webhook a = mt_webhook_default(), sys = mt_webhook_default();
    snprintf(a.business_id, sizeof a.business_id, TA);
    snprintf(a.name, sizeof a.name, "ops");
    snprintf(a.id, sizeof a.id, "10000000-0000-4000-8000-000000000001");
    mt_notice fired_a = {.business_id = TA,
                         .event = MT_WEBHOOK_FIRED,
                         .severity = MT_WEBHOOK_CRITICAL},
              fired_b = {.business_id = TB,
                         .event = MT_WEBHOOK_FIRED,
                         .severity = MT_WEBHOOK_WARNING},
              none = {.business_id = "", .event = MT_WEBHOOK_RESOLVED};
    cr_expect(mt_webhook_wants(&a, &fired_a));
    cr_expect(!mt_webhook_wants(&a, &fired_b), "another tenant's");
    cr_expect(!mt_webhook_wants(&a, &none), "a series without a tenant is no tenant's");
    cr_expect(mt_webhook_wants(&sys, &fired_a) && mt_webhook_wants(&sys, &fired_b) &&
                  mt_webhook_wants(&sys, &none),
              "system-wide: every one");
    char unknown[64];
    cr_expect_eq(mt_webhook_parse_events("", &sys.events, unknown, sizeof unknown), 0);
    cr_expect_eq(sys.events, 0u, "empty: every event");
    cr_expect_eq(mt_webhook_parse_events("alert.resolved", &sys.events, unknown, sizeof unknown),
                 0);
    cr_expect(!mt_webhook_wants(&sys, &fired_a) && mt_webhook_wants(&sys, &none));
    cr_expect_eq(mt_webhook_parse_events("fired\ncritical", &sys.events, unknown, sizeof unknown),
                 0);
    cr_expect(mt_webhook_wants(&sys, &fired_a), "fired and critical");
    cr_expect(!mt_webhook_wants(&sys, &fired_b), "a warning");
    cr_expect(!mt_webhook_wants(&sys, &none), "resolved");
    cr_expect_eq(mt_webhook_parse_events("warning, critical", &sys.events, unknown, sizeof unknown),
                 0);
    cr_expect(mt_webhook_wants(&sys, &fired_a) && mt_webhook_wants(&sys, &fired_b),
              "severities alone: every change of them");
    cr_expect_eq(mt_webhook_parse_events("alert.triggered", &sys.events, unknown, sizeof unknown),
                 1);
    cr_expect_str_eq(unknown, "alert.triggered");
    cr_expect(!mt_webhook_wants(&sys, &fired_a) && !mt_webhook_wants(&sys, &none),
              "a name Metron does not know matches nothing (it never widens)");
    /* a rule's channels: by name or id */
    fired_a.channels = "pagers\nops";
    cr_expect(mt_webhook_wants(&a, &fired_a), "named");
    fired_a.channels = "10000000-0000-4000-8000-000000000001";
    cr_expect(mt_webhook_wants(&a, &fired_a), "by id");
    fired_a.channels = "pagers\nop";
    cr_expect(!mt_webhook_wants(&a, &fired_a), "not named (a prefix is not a name)");
}

/* ---- tools/examples/webhook_receiver.py --------------------------------------------------- */

typedef struct pyrecv {
    pid_t pid;
    int port;
    char log[64];
} pyrecv;

static void py_start(pyrecv *p, const char *secret)
{
    p->port = mth_free_port();
    snprintf(p->log, sizeof p->log, "/tmp/metron-pyrecv-%d.log", (int)getpid());
    unlink(p->log);
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    p->pid = fork();
    cr_assert_geq(p->pid, 0);
    if (p->pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127); /* its decisions: in the log */
        execl("/usr/bin/python3", "python3", WEBHOOK_RECEIVER_PY, "--port", port, "--secret",
              secret, "--log", p->log, (char *)NULL);
        _exit(127);
    }
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(25)) {
        int s = mth_connect(p->port);
        if (s >= 0) {
            close(s);
            return;
        }
    }
    cr_assert_fail("webhook_receiver.py did not come up");
}

static void py_stop(pyrecv *p)
{
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    unlink(p->log);
}

/* Decisions in the receiver's log that contain needle. */
static int py_decisions(const pyrecv *p, const char *needle)
{
    FILE *f = fopen(p->log, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

/* POST body to the receiver with these X-Metron headers; its status, its answer into ans. */
static int py_post(pyrecv *p, const char *ts, const char *sig, const char *delivery,
                   const char *body, char *ans, size_t cap)
{
    char h[512];
    snprintf(h, sizeof h,
             "Content-Type: application/json\r\nX-Metron-Timestamp: %s\r\nX-Metron-Signature: "
             "%s\r\nX-Metron-Delivery: %s\r\n",
             ts, sig, delivery);
    return mth_http(p->port, "POST", "/", h, body, strlen(body), ans, cap);
}

/*
 * The example receiver takes metrond's real deliveries, and refuses a
 * tampered body, a wrong signature, a stale timestamp and a replayed
 * delivery id (taken from a real delivery to a second webhook).
 */
Test(receiver, the_example_accepts_deliveries_and_refuses_forgeries, .timeout = 120)
{
    pyrecv py;
    py_start(&py, "shared");
    mth_receiver cap = {0};
    mth_receiver_start(&cap);
    char rules[] = "/tmp/metrond-pyrecv-XXXXXX", ini[1024];
    snprintf(ini, sizeof ini,
             "[rule cpu_high]\nmetric_name = cpu.usage\nevaluation_window = 1m\n"
             "critical_threshold = 90\ncomparison_operator = gt\n"
             "[webhook example]\nurl = http://127.0.0.1:%d/\nsecret_token = shared\n"
             "[webhook capture]\nurl = http://127.0.0.1:%d/\nsecret_token = shared\n",
             py.port, cap.port);
    mt_test_file(rules, ini);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1", rules);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL);
    char lines[4096];
    snprintf(lines, sizeof lines, "cpu,host=a,business_id=" TA " usage=95 %lld\n", now);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&cap, 1, 10000), 1);
    cr_expect_eq(py_decisions(&py, "\"result\": \"accepted\""), 1, "metrond's delivery");
    cr_expect_eq(py_decisions(&py, "\"business_id\": \"" TA "\""), 1);
    mth_stop(&d);
    mth_req *q = &cap.got[0];
    char ans[1024], sig[72], ts[32], body[4096];
    /* the same delivery again (a replay, or a retry after a lost answer): not processed twice */
    cr_expect_eq(py_post(&py, q->ts, q->sig, q->delivery, q->body, ans, sizeof ans), 200);
    cr_expect(strstr(ans, "\"duplicate\""), "%s", ans);
    cr_expect_eq(py_decisions(&py, "\"reason\": \"replayed delivery id\""), 1);
    /* a tampered body under the delivery's signature */
    snprintf(body, sizeof body, "%s", q->body);
    char *v = strstr(body, "\"value\":95");
    cr_assert_not_null(v, "%s", body);
    v[9] = '1';
    cr_expect_eq(py_post(&py, q->ts, q->sig, q->delivery, body, ans, sizeof ans), 401);
    cr_expect(strstr(ans, "bad signature"), "%s", ans);
    /* a new delivery id in a body signed with another secret */
    snprintf(body, sizeof body, "{\"delivery\":\"new-1\",\"event\":\"fired\"}");
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    sign("not the secret", ts, body, strlen(body), sig);
    cr_expect_eq(py_post(&py, ts, sig, "new-1", body, ans, sizeof ans), 401);
    cr_expect(strstr(ans, "bad signature"), "%s", ans);
    /* signed right, but 301 s old */
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL) - 301);
    sign("shared", ts, body, strlen(body), sig);
    cr_expect_eq(py_post(&py, ts, sig, "new-1", body, ans, sizeof ans), 400);
    cr_expect(strstr(ans, "stale timestamp"), "%s", ans);
    /* the header's id must be the signed one */
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    sign("shared", ts, body, strlen(body), sig);
    cr_expect_eq(py_post(&py, ts, sig, "new-2", body, ans, sizeof ans), 400);
    cr_expect(strstr(ans, "delivery id mismatch"), "%s", ans);
    /* and the same, right: accepted (so the refusals above were for their reasons) */
    cr_expect_eq(py_post(&py, ts, sig, "new-1", body, ans, sizeof ans), 200);
    cr_expect(strstr(ans, "\"accepted\""), "%s", ans);
    cr_expect_eq(py_decisions(&py, "\"result\": \"accepted\""), 2);
    mth_cleanup(&d);
    unlink(rules);
    mth_receiver_stop(&cap);
    py_stop(&py);
}
