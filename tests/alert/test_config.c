/*
 * test_config.c — the configuration library (tools/rules.h, tools/policy.h:
 * mt_config, linked by metrond and metron alike) in process: a rules file
 * with a rule, a webhook and a channel read into the alert module's types;
 * each error names the file and the line (or the rule) it is about; the
 * [retention] section read into a policy, its errors named the same way.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "rules.h"

#define MIN (60 * 1000000000LL)

static char path[64];

/* text into a new file; its name in path (the previous one removed) */
static void file(const char *text)
{
    if (path[0]) unlink(path);
    snprintf(path, sizeof path, "/tmp/metron-config-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static void cleanup(void)
{
    if (path[0]) unlink(path);
}

TestSuite(config, .fini = cleanup);

Test(config, a_rules_file_is_read_into_rules_webhooks_and_channels)
{
    file("; alert rules\n"
         "[rule cpu_high]\n"
         "metric_name = cpu.usage_user{host=~\"web.*\"}\n"
         "warning_threshold = 80\n"
         "critical_threshold = 90\n"
         "comparison_operator = gte\n"
         "evaluation_window = 10m\n"
         "cooldown_period = 30m\n"
         "notification_channels = ops\n"
         "escalation = 15m: mail\n"
         "\n"
         "[webhook ops]\n"
         "url = http://127.0.0.1:9/hook\n"
         "secret_token = s3cret\n"
         "retry_attempts = 5\n"
         "event_types = alert.fired, critical\n"
         "\n"
         "[channel mail]\n"
         "type = email\n"
         "url = smtp://127.0.0.1:25\n"
         "from = metron@example.com\n"
         "to = a@example.com, b@example.com\n");
    mt_alert_rule *rules = NULL;
    mt_webhook *hooks = NULL;
    size_t n = 0, nh = 0;
    char err[512];
    cr_assert_eq(mt_rules_load(path, &rules, &n, &hooks, &nh, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(nh, 2);
    const mt_alert_rule *r = &rules[0];
    cr_expect_str_eq(r->name, "cpu_high");
    cr_expect_str_eq(r->metric, "cpu.usage_user{host=~\"web.*\"}");
    cr_expect(r->has_warning && r->warning == 80 && r->has_critical && r->critical == 90);
    cr_expect_eq(r->op, MT_CMP_GTE);
    cr_expect_eq(r->window_ns, 10 * MIN);
    cr_expect_eq(r->cooldown_ns, 30 * MIN);
    cr_expect_str_eq(r->channels, "ops");
    cr_assert_eq(r->nescalations, 1);
    cr_expect_eq(r->escalations[0].after_ns, 15 * MIN);
    cr_expect_str_eq(r->escalations[0].channels, "mail");
    char id[37];
    mt_rules_id_of("cpu_high", id);
    cr_expect_str_eq(r->id, id, "a rule without an id gets its name's");

    const mt_webhook *w = &hooks[0];
    cr_expect_str_eq(w->name, "ops");
    cr_expect_str_eq(w->url, "http://127.0.0.1:9/hook");
    cr_expect_str_eq(w->secret, "s3cret");
    cr_expect_eq(w->retry_attempts, 5);
    cr_expect_eq(w->timeout_s, 30, "the default");
    cr_expect_eq(w->ch.type, MT_CHANNEL_WEBHOOK);
    cr_expect_eq(w->events, MT_WEBHOOK_FIRED | MT_WEBHOOK_CRITICAL | MT_WEBHOOK_FILTERED);
    const mt_webhook *m = &hooks[1];
    cr_expect_str_eq(m->name, "mail");
    cr_expect_eq(m->ch.type, MT_CHANNEL_EMAIL);
    cr_expect_str_eq(m->ch.mail_from, "metron@example.com");
    cr_expect_str_eq(m->ch.mail_to, "a@example.com, b@example.com");
    free(rules);
    free(hooks);
}

/* mt_rules_load's error on text (it must fail). */
static void rules_error(const char *text, char *err, size_t cap)
{
    file(text);
    mt_alert_rule *rules = NULL;
    mt_webhook *hooks = NULL;
    size_t n = 0, nh = 0;
    cr_assert_eq(mt_rules_load(path, &rules, &n, &hooks, &nh, err, cap), -1, "loaded: %s", text);
    cr_expect_null(rules);
    cr_expect_null(hooks);
}

Test(config, an_error_names_the_file_the_line_the_rule_and_the_key)
{
    char err[512], want[256];
    rules_error("[rule cpu_high]\n"
                "metric_name = cpu.usage_user\n"
                "critical_threshold = 90\n"
                "warning_threshold = eighty\n",
                err, sizeof err);
    snprintf(want, sizeof want, "%s:4: [rule cpu_high] warning_threshold: not a number", path);
    cr_expect_str_eq(err, want);

    rules_error("[rule cpu_high]\n"
                "metric_name = cpu.usage_user\n"
                "critical_threshold = 90\n"
                "colour = red\n",
                err, sizeof err);
    snprintf(want, sizeof want, "%s:4: [rule cpu_high] colour: unknown key", path);
    cr_expect_str_eq(err, want);

    rules_error("[rule cpu_high]\n"
                "metric_name = cpu.usage_user\n"
                "critical_threshold = 90\n"
                "notification_channels = nowhere\n",
                err, sizeof err);
    snprintf(want, sizeof want,
             "%s: [rule cpu_high] notification_channels: no [webhook nowhere] or [channel "
             "nowhere]",
             path);
    cr_expect_str_eq(err, want);

    rules_error("[webhook ops]\n"
                "secret_token = s\n"
                "\n"
                "[rule x]\n"
                "metric_name = cpu.usage_user\n"
                "critical_threshold = 90\n",
                err, sizeof err);
    cr_expect(!strncmp(err, path, strlen(path)) && strstr(err, "[webhook ops]: url is missing"),
              "%s", err);
}

Test(config, a_missing_file_is_named)
{
    char err[512];
    mt_alert_rule *rules = NULL;
    size_t n = 0;
    cr_assert_eq(mt_rules_load("/nonexistent/rules.ini", &rules, &n, NULL, NULL, err, sizeof err),
                 -1);
    cr_expect_str_eq(err, "cannot read /nonexistent/rules.ini");
}

Test(config, the_retention_section_is_read_and_its_errors_named)
{
    file("[server]\n"
         "listen = 127.0.0.1:8086\n"
         "[retention]\n"
         "default = 30d\n"
         "measurement.mem = 7d\n"
         "rollups = forever\n");
    mt_policy p;
    mt_policy_init(&p);
    char err[512];
    cr_assert_eq(mt_policy_load(&p, path, err, sizeof err), 0, "%s", err);
    cr_expect_eq(p.r.keep_ns, 30LL * 24 * MT_HOUR_NS);
    cr_expect_leq(p.r.rollup_keep_ns, 0, "forever");
    cr_assert_eq(p.nrules, 1);
    cr_expect_str_eq(p.rules[0].measurement, "mem");
    cr_expect_eq(p.rules[0].keep_ns, 7LL * 24 * MT_HOUR_NS);
    mt_policy_free(&p);
    unlink(path);

    file("[retention]\n"
         "default = 30d\n"
         "measurement.mem = a week\n");
    mt_policy_init(&p);
    cr_assert_eq(mt_policy_load(&p, path, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:3: ", path);
    cr_expect(!strncmp(err, want, strlen(want)) && strstr(err, "measurement.mem"), "%s", err);
    mt_policy_free(&p);
}
