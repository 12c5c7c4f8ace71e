/* rules.c — the local rules file (rules.h), parsed with inih. */
#include "rules.h"

#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_hash.h"
#include "mt_time.h"
#include "mt_uuid.h"

typedef struct loading {
    mt_alert_rule *rules;
    size_t n, cap;
    mt_webhook *hooks;
    size_t nh, hcap;
    bool in_hook; /* the current section is a [webhook] */
    char section[128];
    char *err;
    size_t errcap;
    int line;
} loading;

void mt_rules_id_of(const char *name, char out[37])
{
    uint64_t a = mt_hash64_seeded(name, strlen(name), 1),
             b = mt_hash64_seeded(name, strlen(name), 2);
    mt_uuid_v8(a, b, out);
}

static bool number(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return end != v && !*end && isfinite(*out);
}

static bool boolean(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1")) return *out = true, true;
    if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0")) return *out = false, true;
    return false;
}

/* 8-4-4-4-12 hex digits: a business_id goes into a selector, nothing else may. */
static bool uuid(const char *v)
{
    return mt_uuid_parse(v, strlen(v), NULL);
}

/* One key of the current rule; NULL, or why the value is wrong. */
static const char *set(mt_alert_rule *r, const char *k, const char *v)
{
    char err[128];
    size_t n;
    if (!strcmp(k, "metric_name")) {
        if (strlen(v) >= sizeof r->metric) return "too long";
        snprintf(r->metric, sizeof r->metric, "%s", v);
    } else if (!strcmp(k, "id") || !strcmp(k, "business_id")) {
        if (!uuid(v)) return "not a UUID";
        snprintf(!strcmp(k, "id") ? r->id : r->business_id, 40, "%s", v);
    } else if (!strcmp(k, "notification_channels")) { /* names of [webhook NAME] sections */
        size_t at = 0;
        for (const char *p = v; *p;) {
            p += strspn(p, ", \t");
            size_t len = strcspn(p, ", \t");
            if (!len) break;
            if (at + len + 2 > sizeof r->channels) return "too long";
            if (at) r->channels[at++] = '\n';
            memcpy(r->channels + at, p, len);
            at += len;
            r->channels[at] = '\0';
            p += len;
        }
    } else if (!strcmp(k, "condition_type")) {
        if (!mt_cond_parse(v, &r->cond)) return "threshold, trend or anomaly";
    } else if (!strcmp(k, "comparison_operator")) {
        if (!mt_cmp_parse(v, &r->op)) return "gt, lt, eq, ne, gte or lte";
    } else if (!strcmp(k, "aggregation")) {
        if (mt_agg_parse(v, &r->agg, 1, &n, err, sizeof err) || n != 1)
            return "one aggregation: avg, min, max, p95, ...";
    } else if (!strcmp(k, "evaluation_window") || !strcmp(k, "trend_period") ||
               !strcmp(k, "cooldown_period")) {
        int64_t d;
        if (!mt_duration_parse(v, &d) && strcmp(v, "0")) return "not a duration (30s, 5m, 1h)";
        if (!strcmp(v, "0")) d = 0;
        *(!strcmp(k, "evaluation_window") ? &r->window_ns
          : !strcmp(k, "trend_period")    ? &r->trend_period_ns
                                          : &r->cooldown_ns) = d;
    } else if (!strcmp(k, "warning_threshold")) {
        if (!number(v, &r->warning)) return "not a number";
        r->has_warning = true;
    } else if (!strcmp(k, "critical_threshold")) {
        if (!number(v, &r->critical)) return "not a number";
        r->has_critical = true;
    } else if (!strcmp(k, "anomaly_sensitivity")) {
        if (!number(v, &r->anomaly_sensitivity)) return "not a number";
    } else if (!strcmp(k, "business_hours_only")) {
        if (!boolean(v, &r->business_hours_only)) return "true or false";
    } else if (!strcmp(k, "no_data")) {
        if (!mt_nodata_parse(v, &r->nodata)) return "keep, ignore or alert";
    } else if (!strcmp(k, "silence")) { /* may repeat: one window a line */
        if (!mt_alert_rule_add_silence(r, v)) return "FROM/TO, two times (RFC 3339), at most 8";
    } else if (!strcmp(k, "escalation")) { /* may repeat: one level a line */
        if (!mt_alert_rule_add_escalation(r, v))
            return "AFTER: CHANNEL, CHANNEL (AFTER: 15m, 90s, or minutes), at most 8";
    } else if (strcmp(k, "rule_category") && strcmp(k, "severity")) {
        return "unknown key";
    }
    return NULL;
}

/* One key of the current webhook; NULL, or why the value is wrong. */
static const char *set_hook(mt_webhook *w, const char *k, const char *v)
{
    double d;
    mt_channel_conf *c = &w->ch;
    struct {
        const char *key;
        char *field;
        size_t cap;
    } texts[] = {{"from", c->mail_from, sizeof c->mail_from},
                 {"to", c->mail_to, sizeof c->mail_to},
                 {"username", c->username, sizeof c->username},
                 {"password", c->password, sizeof c->password},
                 {"ca_file", c->ca_file, sizeof c->ca_file},
                 {"routing_key", c->routing_key, sizeof c->routing_key},
                 {"sms_to", c->sms_to, sizeof c->sms_to},
                 {"body_template", c->body_template, sizeof c->body_template},
                 {"content_type", c->content_type, sizeof c->content_type},
                 {"auth_header", c->auth_header, sizeof c->auth_header}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!strcmp(k, texts[i].key)) {
            if (strlen(v) >= texts[i].cap) return "too long";
            snprintf(texts[i].field, texts[i].cap, "%s", v);
            return NULL;
        }
    if (!strcmp(k, "type")) {
        c->type = mt_channel_type_parse(v);
        if (c->type == MT_CHANNEL_UNSUPPORTED) return "webhook, slack, pagerduty, email or sms";
        snprintf(c->type_name, sizeof c->type_name, "%s", v);
    } else if (!strcmp(k, "starttls")) {
        if (!boolean(v, &c->starttls)) return "true or false";
    } else if (!strcmp(k, "url")) { /* its scheme is checked with the type, at the section's end */
        if (strlen(v) >= sizeof w->url) return "too long";
        snprintf(w->url, sizeof w->url, "%s", v);
    } else if (!strcmp(k, "business_id")) {
        if (!uuid(v)) return "not a UUID";
        snprintf(w->business_id, sizeof w->business_id, "%s", v);
    } else if (!strcmp(k, "event_types")) {
        char unknown[64];
        if (mt_webhook_parse_events(v, &w->events, unknown, sizeof unknown))
            return "alert.fired, alert.severity_changed, alert.reminder, alert.resolved, "
                   "warning or critical";
    } else if (!strcmp(k, "secret_token")) {
        if (strlen(v) >= sizeof w->secret) return "too long";
        snprintf(w->secret, sizeof w->secret, "%s", v);
    } else if (!strcmp(k, "retry_attempts") || !strcmp(k, "timeout_seconds") ||
               !strcmp(k, "rate_limit_per_hour") || !strcmp(k, "retry_base_ms")) {
        if (!number(v, &d) || d < 0 || d > 1e6 || d != (int)d) return "a whole number";
        *(!strcmp(k, "retry_attempts")    ? &w->retry_attempts
          : !strcmp(k, "timeout_seconds") ? &w->timeout_s
          : !strcmp(k, "retry_base_ms")   ? &w->retry_base_ms
                                          : &w->rate_limit_per_hour) = (int)d;
    } else {
        return "unknown key";
    }
    return NULL;
}

/* Close the rule being read: check it, name it. */
static int finish(loading *l)
{
    if (l->in_hook) {
        const mt_webhook *w = &l->hooks[l->nh - 1];
        const char *why = NULL;
        if (!w->url[0] && w->ch.type != MT_CHANNEL_PAGERDUTY)
            why = "url is missing";
        else
            why = mt_channel_check(&w->ch, w->url);
        if (why) {
            snprintf(l->err, l->errcap, "[%s]: %s", l->section, why);
            return -1;
        }
        return 0;
    }
    if (!l->n) return 0;
    mt_alert_rule *r = &l->rules[l->n - 1];
    if (!r->id[0]) mt_rules_id_of(r->name, r->id);
    char why[256];
    if (mt_alert_rule_check(r, why, sizeof why)) {
        snprintf(l->err, l->errcap, "[rule %s]: %s", r->name, why);
        return -1;
    }
    return 0;
}

static int on_entry(void *ud, const char *section, const char *key, const char *value)
{
    loading *l = ud;
    if (strcmp(section, l->section)) { /* a new section: a new rule */
        if (finish(l)) return 0;
        snprintf(l->section, sizeof l->section, "%s", section);
        bool channel = !strncmp(section, "channel ", 8) && section[8];
        l->in_hook = (!strncmp(section, "webhook ", 8) && section[8]) || channel;
        if (l->in_hook) {
            if (mt_grow(&l->hooks, &l->hcap, l->nh + 1, sizeof *l->hooks, 4))
                return snprintf(l->err, l->errcap, "out of memory"), 0;
            mt_webhook *w = &l->hooks[l->nh++];
            *w = mt_webhook_default();
            snprintf(w->name, sizeof w->name, "%s", section + 8);
        } else if (strncmp(section, "rule ", 5) || !section[5]) {
            snprintf(l->err, l->errcap,
                     "[%s]: sections are [rule NAME], [webhook NAME] and [channel NAME]", section);
            return 0;
        }
        if (!l->in_hook) { /* a [webhook] is no rule (it used to add an empty one) */
            if (mt_grow(&l->rules, &l->cap, l->n + 1, sizeof *l->rules, 8))
                return snprintf(l->err, l->errcap, "out of memory"), 0;
            mt_alert_rule *r = &l->rules[l->n++];
            *r = mt_alert_rule_default();
            snprintf(r->name, sizeof r->name, "%s", section + 5);
        }
    }
    const char *why = l->in_hook ? set_hook(&l->hooks[l->nh - 1], key, value)
                                 : set(&l->rules[l->n - 1], key, value);
    if (why) {
        snprintf(l->err, l->errcap, "[%s] %s: %s", section, key, why);
        return 0;
    }
    return 1;
}

int mt_rules_load(const char *path, mt_alert_rule **rules, size_t *n, mt_webhook **hooks,
                  size_t *nh, char *err, size_t errcap)
{
    loading l = {.err = err, .errcap = errcap};
    err[0] = '\0';
    int line = ini_parse(path, on_entry, &l);
    if (line == 0 && finish(&l)) line = -2;
    if (line) {
        char why[400];
        snprintf(why, sizeof why, "%s", err[0] ? err : "not INI");
        if (line == -1)
            snprintf(err, errcap, "cannot read %s", path);
        else if (line > 0)
            snprintf(err, errcap, "%s:%d: %s", path, line, why);
        else
            snprintf(err, errcap, "%s: %s", path, why);
        free(l.rules);
        free(l.hooks);
        return -1;
    }
    /* each channel a rule names (to notify, to escalate to) is a [webhook] or [channel] */
    for (size_t i = 0; !line && i < l.n; i++)
        for (size_t e = 0; e <= l.rules[i].nescalations && !line; e++) {
            const char *c = e ? l.rules[i].escalations[e - 1].channels : l.rules[i].channels;
            while (*c && !line) {
                size_t len = strcspn(c, "\n");
                bool found = false;
                for (size_t h = 0; h < l.nh && !found; h++)
                    found = strlen(l.hooks[h].name) == len && !memcmp(l.hooks[h].name, c, len);
                if (!found) {
                    snprintf(err, errcap, "%s: [rule %s] %s: no [webhook %.*s] or [channel %.*s]",
                             path, l.rules[i].name, e ? "escalation" : "notification_channels",
                             (int)len, c, (int)len, c);
                    line = -3;
                }
                c += len + (c[len] == '\n');
            }
        }
    if (line) {
        free(l.rules);
        free(l.hooks);
        return -1;
    }
    if (!hooks && l.nh) {
        snprintf(err, errcap, "%s: webhooks are not read here", path);
        free(l.rules);
        free(l.hooks);
        return -1;
    }
    *rules = l.rules;
    *n = l.n;
    if (hooks) *hooks = l.hooks, *nh = l.nh;
    return 0;
}
