/*
 * test_channels.c — alert delivery over every channel type, escalation
 * and the records of deliveries (alert/mt_channel.h, mt_notify.h, mt_alerting.h).
 *
 * Real receivers only: HTTP servers in this process (mth_receiver) for
 * webhooks and the Slack-, PagerDuty- and SMS-gateway-shaped channels, and
 * Debian's aiosmtpd (tests/support/smtp_sink.py) for email, one of them
 * requiring STARTTLS with certificates of tests/support/tls_ca.sh. Rules,
 * endpoints and channels live in a database of the test's own in the test
 * PostgreSQL, as the seed's users keep them. The payload builders are also
 * linked in and checked alone (JSON validity by Python's json module).
 */
#include <sys/stat.h>

#include "mt_alert.h"
#include "metrond_harness.h"

#define TA "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define TB "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Run sql (any quoting) through psql -f; the first row into out ("" on error). */
static void pg_run(const char *url, const char *sql, char *out, size_t cap)
{
    char path[] = "/tmp/channels-sql-XXXXXX";
    mt_test_file(path, sql);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "psql '%s' -qAtX -v ON_ERROR_STOP=1 -f %s 2>&1", url, path);
    FILE *p = popen(cmd, "r");
    if (!fgets(out, (int)cap, p)) out[0] = '\0';
    pclose(p);
    unlink(path);
    out[strcspn(out, "\n")] = '\0';
}

/* Poll sql (through pg_run) until it answers want (ms of deadline). */
static bool pg_wait(const char *url, const char *sql, const char *want, char *got, size_t cap,
                    int ms)
{
    for (int64_t end = mth_now_ms() + ms; mth_now_ms() < end; mth_sleep_ms(100)) {
        pg_run(url, sql, got, cap);
        if (!strcmp(got, want)) return true;
    }
    return false;
}

static bool starts(const char *s, const char *prefix)
{
    return !strncmp(s, prefix, strlen(prefix));
}

/* Whether text is one JSON document (Python's json module says). */
static bool json_valid(const char *text)
{
    char path[] = "/tmp/channels-json-XXXXXX";
    mt_test_file(path, text);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s", path);
    int rc = system(cmd);
    unlink(path);
    return rc == 0;
}

static void wait_log(mth_daemon *d, const char *needle)
{
    for (int64_t end = mth_now_ms() + 15000; mth_now_ms() < end; mth_sleep_ms(50))
        if (mth_log_lines(d, needle)) return;
    cr_assert_fail("no \"%s\" in %s", needle, d->log);
}

/* The body of rv's request k (the test's copy, "" when none). */
static void body_of(mth_receiver *rv, int k, char *out, size_t cap)
{
    pthread_mutex_lock(&rv->lock);
    snprintf(out, cap, "%s", k < rv->n && rv->got[k].body ? rv->got[k].body : "");
    pthread_mutex_unlock(&rv->lock);
}

/* An aiosmtpd on a free port writing what it receives to log; STARTTLS required with certs. */
typedef struct smtp_sink {
    pid_t pid;
    int port;
    char log[160];
} smtp_sink;

static void smtp_start(smtp_sink *s, const char *certs)
{
    s->port = mth_free_port();
    snprintf(s->log, sizeof s->log, "/tmp/channels-smtp-%d-%d.jsonl", (int)getpid(), s->port);
    unlink(s->log);
    char port[16], cert[256], key[256];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(cert, sizeof cert, "%s/server.pem", certs ? certs : "");
    snprintf(key, sizeof key, "%s/server.key", certs ? certs : "");
    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        if (certs)
            execl("/usr/bin/python3", "python3", SMTP_SINK_PY, "--port", port, "--log", s->log,
                  "--cert", cert, "--key", key, (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", SMTP_SINK_PY, "--port", port, "--log", s->log,
                  (char *)NULL);
        _exit(127);
    }
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(50)) {
        int c = mth_connect(s->port);
        if (c >= 0) {
            close(c);
            return;
        }
    }
    cr_assert_fail("the SMTP server did not come up (python3-aiosmtpd installed? tools/setup.sh)");
}

static void smtp_stop(smtp_sink *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    unlink(s->log);
}

/* Messages the server kept that contain needle (one JSON line each). */
static int smtp_count(const smtp_sink *s, const char *needle)
{
    FILE *f = fopen(s->log, "r");
    static char line[1 << 16];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

static int smtp_wait(const smtp_sink *s, int n, int ms)
{
    for (int64_t end = mth_now_ms() + ms; smtp_count(s, "\"data\"") < n && mth_now_ms() < end;)
        mth_sleep_ms(50);
    return smtp_count(s, "\"data\"");
}

/* ---- the payloads alone --------------------------------------------------------------------- */

static mt_channel_alert sample(const char *event)
{
    mt_channel_alert a = {.value = 95.5, .threshold = 90, .triggered_at = 1795520778000000000LL};
    snprintf(a.event, sizeof a.event, "%s", event);
    snprintf(a.delivery, sizeof a.delivery, "5b0e2c8d-1f3a-8c4e-9d2a-7e6f5a4b3c2d");
    snprintf(a.alert_id, sizeof a.alert_id, "3a435e11-0000-4000-8000-000000000001");
    snprintf(a.business_id, sizeof a.business_id, TA);
    snprintf(a.rule_id, sizeof a.rule_id, "1a90a1a6-0000-4000-8000-000000000001");
    /* a name with what each format must escape: quotes, <&>, a line break (no header of its own) */
    snprintf(a.rule_name, sizeof a.rule_name, "cpu \"hot\" <&>\nBcc: evil@x");
    snprintf(a.metric, sizeof a.metric, "cpu.usage");
    snprintf(a.series, sizeof a.series, "cpu,business_id=" TA ",host=a usage");
    snprintf(a.severity, sizeof a.severity, "critical");
    snprintf(a.status, sizeof a.status, "active");
    snprintf(a.link, sizeof a.link, "http://127.0.0.1:8086/api/v1/query?select=cpu.usage");
    return a;
}

Test(channels, payloads_of_each_type)
{
    mt_channel_conf c = {0};
    mt_channel_alert a = sample("fired");
    size_t len;
    /* Slack: text, blocks and an attachment; mrkdwn control characters escaped */
    c.type = MT_CHANNEL_SLACK;
    char *p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect_eq(strlen(p), len);
    cr_expect(json_valid(p), "%s", p);
    cr_expect(starts(p, "{\"text\":\"[CRITICAL] cpu \\\"hot\\\" &lt;&amp;&gt; Bcc: evil@x fired: "),
              "%s", p);
    cr_expect(strstr(p, "\"blocks\":[{\"type\":\"header\""), "%s", p);
    cr_expect(strstr(p, "\"attachments\":[{\"color\":\"#d00000\""), "%s", p);
    cr_expect(strstr(p, "\"url\":\"http://127.0.0.1:8086/api/v1/query?select=cpu.usage\""), "%s",
              p);
    free(p);
    /* PagerDuty: trigger with the alert's id as dedup_key; acknowledge and resolve bare */
    c.type = MT_CHANNEL_PAGERDUTY;
    snprintf(c.routing_key, sizeof c.routing_key, "R0UTING");
    p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect(json_valid(p), "%s", p);
    cr_expect(starts(p, "{\"routing_key\":\"R0UTING\",\"event_action\":\"trigger\",\"dedup_key\":"
                        "\"3a435e11-0000-4000-8000-000000000001\",\"payload\":{\"summary\":"),
              "%s", p);
    cr_expect(strstr(p, "\"severity\":\"critical\",\"timestamp\":\"2026-"), "%s", p);
    cr_expect(strstr(p, "\"group\":\"" TA "\""), "%s", p);
    free(p);
    const char *actions[][2] = {{"acknowledged", "acknowledge"}, {"resolved", "resolve"}};
    for (int i = 0; i < 2; i++) {
        mt_channel_alert b = sample(actions[i][0]);
        char want[256];
        snprintf(want, sizeof want,
                 "{\"routing_key\":\"R0UTING\",\"event_action\":\"%s\",\"dedup_key\":"
                 "\"3a435e11-0000-4000-8000-000000000001\"}",
                 actions[i][1]);
        p = mt_channel_payload(&c, &b, &len);
        cr_expect_str_eq(p, want);
        free(p);
    }
    /* email: headers on one line each (the rule's line break adds no Bcc), CRLF ends */
    c.type = MT_CHANNEL_EMAIL;
    snprintf(c.mail_from, sizeof c.mail_from, "metron@example.com");
    snprintf(c.mail_to, sizeof c.mail_to, "a@example.com, b@example.com");
    p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect(strstr(p, "\r\nFrom: metron@example.com\r\nTo: a@example.com, b@example.com\r\n"
                        "Subject: [CRITICAL] cpu \"hot\" <&> Bcc: evil@x fired: "),
              "%s", p);
    cr_expect(!strstr(p, "\nBcc:"), "no header from the rule's name: %s", p);
    cr_expect(strstr(p, "\r\nMessage-ID: <5b0e2c8d-1f3a-8c4e-9d2a-7e6f5a4b3c2d@metron>\r\n"), "%s",
              p);
    cr_expect(strstr(p, "\r\n\r\n[CRITICAL]"), "%s", p);
    for (const char *q = p; (q = strchr(q, '\n')); q++)
        cr_assert(q > p && q[-1] == '\r', "a bare LF at %zu", (size_t)(q - p));
    free(p);
    /* SMS: the default template; then a form template, each value escaped for its type */
    c.type = MT_CHANNEL_SMS;
    snprintf(c.sms_to, sizeof c.sms_to, "+15550100");
    p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect(json_valid(p), "%s", p);
    cr_expect(starts(p, "{\"to\":\"+15550100\",\"message\":\"[CRITICAL] cpu \\\"hot\\\""), "%s", p);
    free(p);
    snprintf(c.body_template, sizeof c.body_template, "To={{to}}&Body={{message}}&x={{nope}}");
    snprintf(c.content_type, sizeof c.content_type, "application/x-www-form-urlencoded");
    p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect(starts(p, "To=%2B15550100&Body=%5BCRITICAL%5D+cpu+%22hot%22+%3C%26%3E"), "%s", p);
    cr_expect(strstr(p, "&x={{nope}}"), "an unknown placeholder is kept: %s", p);
    free(p);
    /* {{message}} is one SMS: at most 160 bytes, cut at a character */
    snprintf(c.body_template, sizeof c.body_template, "{{message}}");
    snprintf(c.content_type, sizeof c.content_type, "text/plain");
    snprintf(a.series, sizeof a.series, "%s",
             "cpu,host=\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 usage");
    p = mt_channel_payload(&c, &a, &len);
    cr_assert_not_null(p);
    cr_expect_leq(len, MT_CHANNEL_SMS_MAX);
    cr_expect_neq((unsigned char)p[len - 1], 0xc3, "cut inside a character: %s", p);
    free(p);
    /* what each type needs */
    mt_channel_conf e = {.type = MT_CHANNEL_EMAIL};
    cr_expect_not_null(mt_channel_check(&e, "http://x"));
    snprintf(e.mail_from, sizeof e.mail_from, "a@x");
    snprintf(e.mail_to, sizeof e.mail_to, "b@x");
    cr_expect_null(mt_channel_check(&e, "smtp://127.0.0.1:25"));
    mt_channel_conf pd = {.type = MT_CHANNEL_PAGERDUTY};
    cr_expect_str_eq(mt_channel_check(&pd, ""), "routing_key is missing");
    cr_expect_eq(mt_channel_type_parse("teams"), MT_CHANNEL_UNSUPPORTED);
}

/* ---- two tenants, every channel type --------------------------------------------------------- */

/*
 * Tenants A and B each keep a webhook endpoint and a Slack, a PagerDuty,
 * an email and an SMS channel (A's email through an SMTP server that
 * requires STARTTLS); A also has a "teams" channel Metron cannot deliver.
 * One system-wide rule fires for A's and B's series: each receiver gets
 * its tenant's alert, in its shape, and nothing of the other's; each
 * delivery is recorded in the alert's notifications_sent; the teams
 * channel is logged once and counted on /metrics; the resolution resolves
 * the PagerDuty incident of the same dedup_key.
 */
Test(channels, two_tenants_reach_exactly_their_receivers, .timeout = 180)
{
    char db[64], url[512], certs[] = "/tmp/channels-certs-XXXXXX", cmd[512];
    static char sql[16384], got[4096], body[1 << 16];
    snprintf(db, sizeof db, "channels_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    cr_assert_not_null(mkdtemp(certs));
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null", TLS_CA_SH, certs);
    cr_assert_eq(system(cmd), 0, "tls_ca.sh");
    enum { HOOK, SLACK, PD, SMS, NR };
    mth_receiver rv[2][NR];
    memset(rv, 0, sizeof rv);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < NR; k++) mth_receiver_start(&rv[t][k]);
    smtp_sink mail[2];
    smtp_start(&mail[0], certs); /* A's: STARTTLS required */
    smtp_start(&mail[1], NULL);
    mth_daemon d;
    char args[1024];
    snprintf(args, sizeof args, "--postgres '%s' --alert-interval 1", url);
    mth_start(&d, NULL, args);
    cr_assert(pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                      sizeof got, 15000),
              "the sink installs the schema");
    const char *tenant[2] = {TA, TB}, *tag[2] = {"a", "b"};
    size_t at = 0;
    at += (size_t)snprintf(sql + at, sizeof sql - at,
                           "INSERT INTO monitoring.webhook_endpoints (business_id, endpoint_name,"
                           " webhook_url, secret_token) VALUES ('%s', 'hook a',"
                           " 'http://127.0.0.1:%d/hook', 's'), ('%s', 'hook b',"
                           " 'http://127.0.0.1:%d/hook', 's');\n",
                           TA, rv[0][HOOK].port, TB, rv[1][HOOK].port);
    for (int t = 0; t < 2; t++)
        at += (size_t)snprintf(
            sql + at, sizeof sql - at,
            "INSERT INTO monitoring.notification_channels (business_id, channel_name,"
            " channel_type, configuration) VALUES"
            " ('%s', 'slack %s', 'slack', '{\"url\": \"http://127.0.0.1:%d/services/T/B/X\"}'),"
            " ('%s', 'pager %s', 'pagerduty', '{\"events_url\": \"http://127.0.0.1:%d/v2/enqueue\","
            " \"routing_key\": \"rk-%s\"}'),"
            " ('%s', 'mail %s', 'email', '{\"smtp_url\": \"smtp://127.0.0.1:%d\", \"from\":"
            " \"metron@%s.example\", \"to\": [\"ops@%s.example\", \"cto@%s.example\"],"
            " \"starttls\": %s, \"ca_file\": \"%s/ca.pem\"}'),"
            " ('%s', 'sms %s', 'SMS', '{\"url\": \"http://127.0.0.1:%d/sms\", \"sms_to\":"
            " \"+1555000%d\", \"body_template\": \"{\\\"number\\\": \\\"{{to}}\\\", \\\"text\\\":"
            " \\\"{{message}}\\\", \\\"tenant\\\": \\\"{{business_id}}\\\"}\"}');\n",
            tenant[t], tag[t], rv[t][SLACK].port, tenant[t], tag[t], rv[t][PD].port, tag[t],
            tenant[t], tag[t], mail[t].port, tag[t], tag[t], tag[t], t ? "false" : "true", certs,
            tenant[t], tag[t], rv[t][SMS].port, t);
    at += (size_t)snprintf(sql + at, sizeof sql - at,
                           "INSERT INTO monitoring.notification_channels (business_id,"
                           " channel_name, channel_type, configuration) VALUES ('%s', 'teams a',"
                           " 'teams', '{\"url\": \"http://127.0.0.1:1/teams\"}');\n"
                           "INSERT INTO monitoring.alert_rules (rule_name, rule_category, severity,"
                           " metric_name, condition_type, condition_definition, evaluation_window,"
                           " critical_threshold, comparison_operator, created_by) VALUES"
                           " ('cpu hot', 'performance', 'critical', 'cpu.usage', 'threshold', '{}',"
                           " '1 minute', 90, 'gt', gen_random_uuid()) RETURNING 'ok';\n",
                           TA);
    pg_run(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "ok", "%s", sql);
    wait_log(&d, "msg=\"alert rules loaded\" rules=1");
    wait_log(&d, "msg=\"webhook endpoints loaded\" endpoints=11");
    long long now = (long long)time(NULL);
    char lines[512];
    snprintf(lines, sizeof lines,
             "cpu,host=a,business_id=" TA " usage=95 %lld\ncpu,host=b,business_id=" TB
             " usage=97 %lld\n",
             now, now);
    mth_write(&d, lines);
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < NR; k++)
            cr_assert_eq(mth_wait_received(&rv[t][k], 1, 15000), 1, "tenant %s receiver %d", tag[t],
                         k);
        cr_assert_eq(smtp_wait(&mail[t], 1, 15000), 1, "tenant %s's mail (log %s)", tag[t], d.log);
    }
    /* the ids of the two alerts, for PagerDuty's dedup_key */
    char id[2][64];
    for (int t = 0; t < 2; t++) {
        snprintf(sql, sizeof sql,
                 "SELECT id FROM monitoring.alerts WHERE business_id = '%s' AND status = 'active'",
                 tenant[t]);
        for (int64_t end = mth_now_ms() + 15000; mth_now_ms() < end; mth_sleep_ms(100)) {
            pg_run(url, sql, got, sizeof got);
            if (strlen(got) == 36) break;
        }
        cr_assert_eq(strlen(got), 36, "%s", got);
        snprintf(id[t], sizeof id[t], "%.36s", got);
    }
    for (int t = 0; t < 2; t++) {
        const char *other = tenant[1 - t];
        for (int k = 0; k < NR; k++) {
            cr_expect_eq(mth_count(&rv[t][k], tenant[t]), 1, "tenant %s receiver %d", tag[t], k);
            cr_expect_eq(mth_count(&rv[t][k], other), 0, "nothing of the other tenant's");
            cr_expect_eq(mth_count(&rv[t][k], id[1 - t]), 0);
        }
        /* the webhook: the signed JSON of today */
        cr_expect_eq(mth_count(&rv[t][HOOK], "\"event\":\"fired\",\"type\":\"alert.fired\""), 1);
        /* Slack */
        body_of(&rv[t][SLACK], 0, body, sizeof body);
        cr_expect(json_valid(body), "%s", body);
        cr_expect(starts(body, "{\"text\":\"[CRITICAL] cpu hot fired: cpu,business_id="), "%s",
                  body);
        cr_expect(strstr(body, "\"blocks\":[") && strstr(body, "\"attachments\":["), "%s", body);
        /* PagerDuty */
        body_of(&rv[t][PD], 0, body, sizeof body);
        cr_expect(json_valid(body), "%s", body);
        snprintf(sql, sizeof sql,
                 "{\"routing_key\":\"rk-%s\",\"event_action\":\"trigger\",\"dedup_key\":\"%s\","
                 "\"payload\":{",
                 tag[t], id[t]);
        cr_expect(!strncmp(body, sql, strlen(sql)), "want %s in %s", sql, body);
        cr_expect(strstr(body, "\"severity\":\"critical\""), "%s", body);
        /* SMS through its template */
        body_of(&rv[t][SMS], 0, body, sizeof body);
        cr_expect(json_valid(body), "%s", body);
        snprintf(sql, sizeof sql, "{\"number\": \"+1555000%d\", \"text\": \"[CRITICAL] cpu hot", t);
        cr_expect(!strncmp(body, sql, strlen(sql)), "want %s in %s", sql, body);
        snprintf(sql, sizeof sql, "\"tenant\": \"%s\"}", tenant[t]);
        cr_expect(strstr(body, sql), "%s", body);
        /* email: to both addresses, from the tenant's sender, over TLS for A */
        snprintf(sql, sizeof sql, "\"rcpt_tos\": [\"ops@%s.example\", \"cto@%s.example\"]", tag[t],
                 tag[t]);
        cr_expect_eq(smtp_count(&mail[t], sql), 1, "%s", sql);
        snprintf(sql, sizeof sql, "\"mail_from\": \"metron@%s.example\"", tag[t]);
        cr_expect_eq(smtp_count(&mail[t], sql), 1, "%s", sql);
        cr_expect_eq(smtp_count(&mail[t], t ? "\"tls\": false" : "\"tls\": true"), 1);
        cr_expect_eq(smtp_count(&mail[t], "Subject: [CRITICAL] cpu hot fired: "), 1);
        cr_expect_eq(smtp_count(&mail[t], tenant[t]), 1);
        cr_expect_eq(smtp_count(&mail[t], other), 0, "no mail of the other tenant's");
    }
    /* each delivery recorded with its alert; the teams channel's as undeliverable */
    const char *want[2] = {"email:mail a:sent,pagerduty:pager a:sent,slack:slack a:sent,"
                           "sms:sms a:sent,teams:teams a:undeliverable,webhook:hook a:sent",
                           "email:mail b:sent,pagerduty:pager b:sent,slack:slack b:sent,"
                           "sms:sms b:sent,webhook:hook b:sent"};
    for (int t = 0; t < 2; t++) {
        snprintf(sql, sizeof sql,
                 "SELECT string_agg((e->>'type') || ':' || (e->>'channel') || ':' ||"
                 " (e->>'outcome'), ',' ORDER BY e->>'type') FROM monitoring.alerts a,"
                 " jsonb_array_elements(a.notifications_sent) e WHERE a.id = '%s'"
                 " AND e->>'event' = 'fired'",
                 id[t]);
        cr_expect(pg_wait(url, sql, want[t], got, sizeof got, 15000), "tenant %s: %s", tag[t], got);
    }
    cr_expect_eq(mth_log_lines(&d, "notification channel Metron cannot deliver"), 1);
    cr_expect_eq(mth_log_lines(&d, "channel=\"teams a\""), 1);
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(strstr(body, "metron_notifications_total{type=\"unsupported\",outcome="
                           "\"undeliverable\"} 1\n"),
              "%s", body);
    cr_expect(strstr(body, "metron_notifications_total{type=\"email\",outcome=\"sent\"} 2\n"), "%s",
              body);
    cr_expect(strstr(body, "metron_notifications_total{type=\"pagerduty\",outcome=\"sent\"} 2\n"),
              "%s", body);

    /* the rule changes: both resolve; PagerDuty resolves the incident of the same key */
    pg_run(url,
           "UPDATE monitoring.alert_rules SET critical_threshold = 99 WHERE rule_name = 'cpu hot'"
           " RETURNING 'ok'",
           got, sizeof got);
    cr_assert_str_eq(got, "ok");
    for (int t = 0; t < 2; t++) {
        cr_assert_eq(mth_wait_received(&rv[t][PD], 2, 15000), 2);
        body_of(&rv[t][PD], 1, body, sizeof body);
        snprintf(sql, sizeof sql,
                 "{\"routing_key\":\"rk-%s\",\"event_action\":\"resolve\",\"dedup_key\":\"%s\"}",
                 tag[t], id[t]);
        cr_expect_str_eq(body, sql);
        cr_expect_eq(smtp_wait(&mail[t], 2, 15000), 2);
        cr_expect_eq(smtp_count(&mail[t], "Subject: [RESOLVED] cpu hot resolved: "), 1);
        cr_expect_eq(mth_count(&rv[t][SLACK], tenant[1 - t]), 0);
    }
    cr_expect_eq(mth_log_lines(&d, "notification channel Metron cannot deliver"), 1,
                 "logged once, however many notifications it missed");
    mth_stop(&d);
    mth_cleanup(&d);
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < NR; k++) mth_receiver_stop(&rv[t][k]);
        smtp_stop(&mail[t]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", certs);
    cr_expect_eq(system(cmd), 0);
    mth_pg_drop(db);
}

/* ---- escalation ------------------------------------------------------------------------------ */

/*
 * A rule names the channel "first" and escalates to "oncall" (PagerDuty)
 * after 0.1 minutes (6 s). Two alerts fire; a person acknowledges one at
 * once: 6 s after firing "oncall" gets the other's escalation (a PagerDuty
 * trigger), never the acknowledged one's; when that one is acknowledged
 * too, "oncall" acknowledges its incident. Each delivery is recorded.
 */
Test(channels, escalation_after_minutes_unacknowledged, .timeout = 120)
{
    char db[64], url[512];
    static char sql[8192], got[4096], body[1 << 16];
    snprintf(db, sizeof db, "channels_esc_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    mth_receiver first = {0}, oncall = {0}, other = {0};
    mth_receiver_start(&first);
    mth_receiver_start(&oncall);
    mth_receiver_start(&other);
    mth_daemon d;
    char args[1024];
    snprintf(args, sizeof args, "--postgres '%s' --alert-interval 1", url);
    mth_start(&d, NULL, args);
    cr_assert(pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                      sizeof got, 15000));
    snprintf(sql, sizeof sql,
             "INSERT INTO monitoring.notification_channels (channel_name, channel_type,"
             " configuration) VALUES ('first', 'slack', '{\"url\": \"http://127.0.0.1:%d/s\"}'),"
             " ('oncall', 'pagerduty', '{\"url\": \"http://127.0.0.1:%d/v2/enqueue\","
             " \"routing_key\": \"rk-oncall\"}');\n"
             /* a tenant's channel the level names too: the alerts are no tenant's, it hears
                of none of them */
             "INSERT INTO monitoring.notification_channels (business_id, channel_name,"
             " channel_type, configuration) VALUES ('" TB "', 'oncall b', 'pagerduty',"
             " '{\"url\": \"http://127.0.0.1:%d/v2/enqueue\", \"routing_key\": \"rk-b\"}');\n"
             "INSERT INTO monitoring.alert_rules (rule_name, rule_category, severity, metric_name,"
             " condition_type, condition_definition, evaluation_window, critical_threshold,"
             " comparison_operator, created_by, notification_channels, escalation_rules) VALUES"
             " ('disk full', 'capacity', 'critical', 'disk.used', 'threshold', '{}', '1 minute',"
             " 90, 'gt', gen_random_uuid(), '[\"first\"]',"
             " '[{\"after_minutes\": 0.1, \"channels\": [\"oncall\", \"oncall b\"]}]')"
             " RETURNING 'ok';\n",
             first.port, oncall.port, other.port);
    pg_run(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "ok", "%s", sql);
    wait_log(&d, "msg=\"alert rules loaded\" rules=1");
    wait_log(&d, "msg=\"webhook endpoints loaded\" endpoints=3");
    long long now = (long long)time(NULL);
    char lines[256];
    snprintf(lines, sizeof lines, "disk,host=x used=95 %lld\ndisk,host=y used=96 %lld\n", now, now);
    mth_write(&d, lines);
    cr_assert_eq(mth_wait_received(&first, 2, 15000), 2);
    cr_expect_eq(mth_received(&oncall), 0, "oncall hears of nothing as the alerts fire");
    /* a person acknowledges y's alert (its row mirrored first) */
    cr_assert(pg_wait(url,
                      "UPDATE monitoring.alerts SET status = 'acknowledged' WHERE alert_message"
                      " LIKE '%host=y%' RETURNING 'ok'",
                      "ok", got, sizeof got, 15000),
              "%s", got);
    wait_log(&d, "msg=\"alert acknowledged\"");
    /* oncall: x's escalation, 6 s after it fired; y, acknowledged before, is not escalated
       (it would have been in the same round) */
    cr_assert_eq(mth_wait_received(&oncall, 1, 20000), 1, "log %s", d.log);
    char ids[2][64];
    pg_run(url, "SELECT id FROM monitoring.alerts WHERE alert_message LIKE '%host=x%'", ids[0],
           sizeof ids[0]);
    pg_run(url, "SELECT id FROM monitoring.alerts WHERE alert_message LIKE '%host=y%'", ids[1],
           sizeof ids[1]);
    cr_assert_eq(strlen(ids[0]), 36);
    body_of(&oncall, 0, body, sizeof body);
    snprintf(sql, sizeof sql,
             "{\"routing_key\":\"rk-oncall\",\"event_action\":\"trigger\",\"dedup_key\":\"%s\"",
             ids[0]);
    cr_expect(starts(body, sql), "want %s in %s", sql, body);
    cr_expect(strstr(body, "escalated (level 1, after 0.1 min)"), "%s", body);
    cr_expect(strstr(body, "\"escalation_level\":1"), "%s", body);
    cr_expect_eq(mth_count(&oncall, ids[1]), 0, "the acknowledged alert is not escalated");
    cr_expect_eq(mth_received(&first), 2, "the escalation goes to its level's channels only");
    /* x acknowledged now: the incident it opened at oncall is acknowledged */
    snprintf(sql, sizeof sql,
             "UPDATE monitoring.alerts SET status = 'acknowledged' WHERE id = '%s' RETURNING 'ok'",
             ids[0]);
    pg_run(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "ok");
    cr_assert_eq(mth_wait_received(&oncall, 2, 15000), 2, "log %s", d.log);
    body_of(&oncall, 1, body, sizeof body);
    snprintf(
        sql, sizeof sql,
        "{\"routing_key\":\"rk-oncall\",\"event_action\":\"acknowledge\",\"dedup_key\":\"%s\"}",
        ids[0]);
    cr_expect_str_eq(body, sql);
    /* recorded: fired at "first", escalated at "oncall" 6 s after the alert fired (within
       a round or two more: alert_interval is 1 s), acknowledged at "oncall" */
    snprintf(sql, sizeof sql,
             "SELECT (extract(epoch from max((e->>'at')::timestamptz) FILTER (WHERE e->>'event' ="
             " 'escalated')) - extract(epoch from min(a.triggered_at)))::numeric BETWEEN 6 AND 9,"
             " string_agg((e->>'event') || ':' || (e->>'channel') || ':' || (e->>'outcome'), ','"
             " ORDER BY e->>'at') FROM monitoring.alerts a,"
             " jsonb_array_elements(a.notifications_sent) e WHERE a.id = '%s'",
             ids[0]);
    cr_expect(pg_wait(url, sql, "t|fired:first:sent,escalated:oncall:sent,acknowledged:oncall:sent",
                      got, sizeof got, 15000),
              "%s", got);
    snprintf(sql, sizeof sql,
             "SELECT string_agg((e->>'event') || ':' || (e->>'channel'), ',' ORDER BY e->>'at')"
             " FROM monitoring.alerts a, jsonb_array_elements(a.notifications_sent) e"
             " WHERE a.id = '%s'",
             ids[1]);
    cr_expect(pg_wait(url, sql, "fired:first", got, sizeof got, 15000), "%s", got);
    cr_expect_eq(mth_received(&other), 0, "another tenant's channel hears of no escalation");
    cr_expect_eq(mth_log_lines(&d, "msg=\"alert escalated\""), 1);
    mth_stop(&d);
    mth_cleanup(&d);
    mth_receiver_stop(&first);
    mth_receiver_stop(&oncall);
    mth_receiver_stop(&other);
    mth_pg_drop(db);
}

/* ---- rate limits ----------------------------------------------------------------------------- */

/*
 * A channel with rate_limit_per_hour 2 and four alerts firing at once: two
 * are sent, two counted and recorded as rate_limited, and the channel's
 * current_hour_count says 2 for this hour.
 */
Test(channels, rate_limit_per_hour_in_current_hour_count, .timeout = 120)
{
    /* the four notifications must fall in one wall-clock hour: not at its very end */
    while (time(NULL) % 3600 > 3570) mth_sleep_ms(500);
    char db[64], url[512];
    static char sql[8192], got[4096];
    snprintf(db, sizeof db, "channels_rate_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    mth_receiver slack = {0};
    mth_receiver_start(&slack);
    mth_daemon d;
    char args[1024];
    snprintf(args, sizeof args, "--postgres '%s' --alert-interval 1", url);
    mth_start(&d, NULL, args);
    cr_assert(pg_wait(url, "SELECT to_regclass('monitoring.alert_rules') IS NOT NULL", "t", got,
                      sizeof got, 15000));
    snprintf(sql, sizeof sql,
             "INSERT INTO monitoring.notification_channels (channel_name, channel_type,"
             " configuration, rate_limit_per_hour) VALUES ('slow', 'slack',"
             " '{\"url\": \"http://127.0.0.1:%d/s\"}', 2);\n"
             "INSERT INTO monitoring.alert_rules (rule_name, rule_category, severity, metric_name,"
             " condition_type, condition_definition, evaluation_window, critical_threshold,"
             " comparison_operator, created_by) VALUES ('mem', 'capacity', 'critical', 'mem.used',"
             " 'threshold', '{}', '1 minute', 90, 'gt', gen_random_uuid()) RETURNING 'ok';\n",
             slack.port);
    pg_run(url, sql, got, sizeof got);
    cr_assert_str_eq(got, "ok", "%s", sql);
    wait_log(&d, "msg=\"webhook endpoints loaded\" endpoints=1");
    wait_log(&d, "msg=\"alert rules loaded\" rules=1");
    long long now = (long long)time(NULL);
    char lines[512];
    snprintf(lines, sizeof lines,
             "mem,host=a used=95 %lld\nmem,host=b used=95 %lld\nmem,host=c used=95 %lld\n"
             "mem,host=d used=95 %lld\n",
             now, now, now, now);
    mth_write(&d, lines);
    const char *outcomes = "SELECT string_agg(e->>'outcome' || ':' || (e->>'attempts'), ','"
                           " ORDER BY e->>'outcome') FROM monitoring.alerts a,"
                           " jsonb_array_elements(a.notifications_sent) e";
    cr_expect(pg_wait(url, outcomes, "rate_limited:0,rate_limited:0,sent:1,sent:1", got, sizeof got,
                      15000),
              "%s", got);
    cr_expect_eq(mth_received(&slack), 2, "two of four sent");
    cr_expect_eq(mth_log_lines(&d, "rate limit: notification dropped"), 2);
    /* the count is written back at the next reading of the channels (a rule's change) */
    pg_run(url, "UPDATE monitoring.alert_rules SET updated_at = now() RETURNING 'ok'", got,
           sizeof got);
    cr_expect(pg_wait(url,
                      "SELECT current_hour_count || ':' || (last_reset_at = date_trunc('hour',"
                      " now())) FROM monitoring.notification_channels",
                      "2:true", got, sizeof got, 15000),
              "%s", got);
    char body[1 << 14];
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(
        strstr(body, "metron_notifications_total{type=\"slack\",outcome=\"rate_limited\"} 2\n"),
        "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
    mth_receiver_stop(&slack);
    mth_pg_drop(db);
}

/* ---- a rules file ---------------------------------------------------------------------------- */

/* [channel NAME] sections and escalation levels in a rules file: checked, and refused when bad. */
Test(channels, rules_file_channels_and_escalation)
{
    char good[] = "/tmp/channels-rules-XXXXXX", bad[] = "/tmp/channels-bad-XXXXXX", cmd[512],
         out[1024];
    mt_test_file(good, "[channel pager]\ntype = pagerduty\nrouting_key = rk\n"
                       "[channel mail]\ntype = email\nurl = smtp://127.0.0.1:25\n"
                       "from = m@x.example\nto = a@x.example, b@x.example\nstarttls = true\n"
                       "[channel text]\ntype = sms\nurl = http://127.0.0.1:9/sms\nsms_to = +1\n"
                       "[rule r]\nmetric_name = cpu.usage\ncritical_threshold = 90\n"
                       "notification_channels = mail\nescalation = 90s: text\n"
                       "escalation = 15m: pager, mail\n");
    mt_test_file(bad, "[channel t]\ntype = teams\nurl = http://x\n");
    snprintf(cmd, sizeof cmd, "%s rules check %s 2>&1", METRON_PATH, good);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_eq(WEXITSTATUS(pclose(p)), 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s rules check %s 2>&1", METRON_PATH, bad);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_neq(WEXITSTATUS(pclose(p)), 0, "%s", out);
    cr_expect(strstr(out, "[channel t] type: webhook, slack, pagerduty, email or sms"), "%s", out);
    unlink(good);
    unlink(bad);
    char esc[] = "/tmp/channels-esc-XXXXXX";
    mt_test_file(esc, "[rule r]\nmetric_name = cpu.usage\ncritical_threshold = 90\n"
                      "escalation = 15m: nobody\n");
    snprintf(cmd, sizeof cmd, "%s rules check %s 2>&1", METRON_PATH, esc);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_expect_neq(WEXITSTATUS(pclose(p)), 0, "%s", out);
    cr_expect(strstr(out, "[rule r] escalation: no [webhook nobody] or [channel nobody]"), "%s",
              out);
    unlink(esc);
}
