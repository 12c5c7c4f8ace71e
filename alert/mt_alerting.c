/* mt_alerting.c — the alert loop of metrond (mt_alerting.h). */
#include "mt_alerting.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_series.h"
#include "mt_time.h"

typedef struct instance {
    char key[1200];
    size_t klen;
    mt_alert_record rec;
    uint8_t escalated; /* bit l: escalation level l+1 sent (kept under 'E' and the alert's id) */
} instance;

/* The state key of an alert's escalation levels sent: 'E' and its id. */
static size_t escalation_key(const char *alert_id, char out[48])
{
    return (size_t)snprintf(out, 48, "E%s", alert_id);
}

struct mt_alerting {
    pthread_mutex_t lock; /* a round, a new rule set and an acknowledgement exclude each other */
    mt_engine *e;
    mt_alert_rule *rules;
    size_t nrules;
    bool mirror;
    mt_notifier *nf;
    char link_base[256];
    instance *in;
    size_t n, cap;
    /* the round in progress */
    const mt_alert_rule *rule;
    int64_t now;
    size_t changes;
};

static instance *find(mt_alerting *a, const char *key, size_t klen)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->in[i].klen == klen && !memcmp(a->in[i].key, key, klen)) return &a->in[i];
    return NULL;
}

static instance *add(mt_alerting *a, const char *key, size_t klen)
{
    if (mt_grow(&a->in, &a->cap, a->n + 1, sizeof *a->in, 16)) return NULL;
    instance *i = &a->in[a->n++];
    memset(i, 0, sizeof *i);
    memcpy(i->key, key, klen);
    i->klen = klen;
    return i;
}

static int on_state(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    mt_alerting *a = ud;
    if (klen > sizeof a->in->key) return MT_OK;
    instance *i = add(a, key, klen);
    if (!i) return -ENOMEM;
    if (mt_alert_record_decode(val, vlen, &i->rec)) a->n--; /* unreadable: start afresh */
    return MT_OK;
}

/* An alert's escalation levels sent, read at start. */
static int on_escalated(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    mt_alerting *a = ud;
    if (vlen != 1 || klen < 2) return MT_OK;
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->in[i].rec.alert_id) == klen - 1 &&
            !memcmp(a->in[i].rec.alert_id, (const char *)key + 1, klen - 1))
            a->in[i].escalated = *(const uint8_t *)val;
    return MT_OK;
}

int mt_alerting_new(mt_engine *e, const mt_alert_rule *rules, size_t n, bool mirror,
                    mt_notifier *nf, mt_alerting **out)
{
    mt_alerting *a = calloc(1, sizeof *a);
    if (!a || (n && !(a->rules = malloc(n * sizeof *rules)))) {
        free(a);
        return -ENOMEM;
    }
    if (n) memcpy(a->rules, rules, n * sizeof *rules);
    a->nrules = n;
    a->e = e;
    a->mirror = mirror;
    a->nf = nf;
    pthread_mutex_init(&a->lock, NULL);
    int rc = mt_engine_state_scan(e, "A", 1, on_state, a);
    if (!rc) rc = mt_engine_state_scan(e, "E", 1, on_escalated, a);
    if (rc) {
        mt_alerting_free(a);
        return rc;
    }
    *out = a;
    return MT_OK;
}

void mt_alerting_free(mt_alerting *a)
{
    if (!a) return;
    pthread_mutex_destroy(&a->lock);
    free(a->rules);
    free(a->in);
    free(a);
}

static const char *const change_names[] = {"none",     "fired",   "severity",  "renotify",
                                           "resolved", "updated", "suppressed"};

/* The JSON texts (webhook bodies, delivery records) grow in an mt_sbuf: no size is fixed,
   nothing is cut. Strings are escaped as everywhere (mt_json.h): a newline is \u000a here,
   where the channels' payloads write \n (mt_channel_json). */
static void sb_put(void *ud, const char *s, size_t n)
{
    mt_sb_put(ud, s, n);
}

/* A JSON string (quotes included). */
static void jstr(mt_sbuf *j, const char *s)
{
    mt_json_str(s, strlen(s), sb_put, j);
}

/* A string, or null when empty. */
static void jstr_or_null(mt_sbuf *j, const char *s)
{
    if (s[0])
        jstr(j, s);
    else
        mt_sb_puts(j, "null");
}

static void jtime(mt_sbuf *j, int64_t ns)
{
    char t[48];
    if (!ns) {
        mt_sb_puts(j, "null");
        return;
    }
    mt_time_format(ns, t, sizeof t);
    jstr(j, t);
}

/* What a notification is about: a change of the alert, an escalation, an acknowledgement. */
typedef struct event {
    const char *name;     /* the body's "event" */
    const char *type;     /* its event type (webhook_endpoints.event_types) */
    unsigned bit;         /* MT_WEBHOOK_* */
    const char *channels; /* who hears of it: NULL, the rule's notification_channels */
    int level;            /* an escalation's level (1 = the first), else 0 */
    int64_t after_ns;     /* its time after firing */
} event;

/* The event of a change worth a notification (mt_notify.h's event types). */
static event event_of(mt_alert_change ch)
{
    switch (ch) {
    case MT_CHANGE_FIRED: return (event){"fired", "alert.fired", MT_WEBHOOK_FIRED, NULL, 0, 0};
    case MT_CHANGE_SEVERITY:
        return (event){"severity", "alert.severity_changed", MT_WEBHOOK_SEVERITY, NULL, 0, 0};
    case MT_CHANGE_RENOTIFY:
        return (event){"renotify", "alert.reminder", MT_WEBHOOK_REMINDER, NULL, 0, 0};
    default: return (event){"resolved", "alert.resolved", MT_WEBHOOK_RESOLVED, NULL, 0, 0};
    }
}

/*
 * The webhook's JSON (the event, the alert, its rule) and what the other
 * channel types say, routed by the alert's tenant; at now.
 */
static void notify(mt_alerting *a, const instance *i, const event *ev, int64_t now)
{
    static const char *const statuses[] = {"none", "active", "acknowledged", "resolved",
                                           "suppressed"};
    const mt_alert_record *r = &i->rec;
    /* one id per notification, the same on each retry: the alert, the event, its count */
    char what[48], delivery[37];
    if (ev->level)
        snprintf(what, sizeof what, "%s#%d", ev->name, ev->level);
    else
        snprintf(what, sizeof what, "%s#%u", ev->name, r->st.notifications);
    mt_alert_id(r->alert_id, what, now, delivery);
    mt_sbuf j = {0};
    mt_sb_puts(&j, "{\"delivery\":");
    jstr(&j, delivery);
    mt_sb_puts(&j, ",\"event\":");
    jstr(&j, ev->name);
    mt_sb_puts(&j, ",\"type\":");
    jstr(&j, ev->type);
    mt_sb_puts(&j, ",\"alert\":{\"id\":");
    jstr(&j, r->alert_id);
    mt_sb_puts(&j, ",\"business_id\":");
    jstr_or_null(&j, r->business_id);
    mt_sb_puts(&j, ",\"status\":");
    jstr(&j, statuses[r->st.status]);
    mt_sb_puts(&j, ",\"severity\":");
    jstr(&j, mt_severity_name(r->st.severity));
    mt_sb_puts(&j, ",\"series\":");
    jstr(&j, r->series);
    mt_sb_puts(&j, ",\"value\":");
    mt_channel_num(&j, r->st.value);
    mt_sb_puts(&j, ",\"threshold\":");
    mt_channel_num(&j, r->st.threshold);
    mt_sb_puts(&j, ",\"triggered_at\":");
    jtime(&j, r->st.triggered_at);
    mt_sb_puts(&j, ",\"resolved_at\":");
    jtime(&j, r->st.resolved_at);
    mt_sb_puts(&j, "},\"rule\":{\"id\":");
    jstr(&j, r->rule.id);
    mt_sb_puts(&j, ",\"name\":");
    jstr(&j, r->rule.name);
    mt_sb_puts(&j, ",\"metric_name\":");
    jstr(&j, r->rule.metric);
    mt_sb_puts(&j, ",\"business_id\":");
    jstr_or_null(&j, r->rule.business_id);
    mt_sb_puts(&j, "}");
    if (ev->level) {
        char lv[64];
        snprintf(lv, sizeof lv, ",\"escalation\":{\"level\":%d,\"after_minutes\":", ev->level);
        mt_sb_puts(&j, lv);
        mt_channel_num(&j, (double)ev->after_ns / 60e9);
        mt_sb_puts(&j, "}");
    }
    mt_channel_alert ca = {.value = r->st.value,
                           .threshold = r->st.threshold,
                           .triggered_at = r->st.triggered_at,
                           .resolved_at = r->st.resolved_at,
                           .at = now,
                           .escalation = ev->level,
                           .escalation_after_minutes = (double)ev->after_ns / 60e9};
    snprintf(ca.event, sizeof ca.event, "%s", ev->name);
    snprintf(ca.delivery, sizeof ca.delivery, "%s", delivery);
    snprintf(ca.alert_id, sizeof ca.alert_id, "%s", r->alert_id);
    snprintf(ca.business_id, sizeof ca.business_id, "%s", r->business_id);
    snprintf(ca.rule_id, sizeof ca.rule_id, "%s", r->rule.id);
    snprintf(ca.rule_name, sizeof ca.rule_name, "%s", r->rule.name);
    snprintf(ca.metric, sizeof ca.metric, "%s", r->rule.metric);
    snprintf(ca.series, sizeof ca.series, "%s", r->series);
    snprintf(ca.severity, sizeof ca.severity, "%s", mt_severity_name(r->st.severity));
    snprintf(ca.status, sizeof ca.status, "%s", statuses[r->st.status]);
    if (a->link_base[0]) { /* the rule's data around the alert, through the query API */
        mt_sbuf q = {0};
        char from[32];
        mt_sb_puts(&q, a->link_base);
        mt_sb_puts(&q, "/api/v1/query?select=");
        for (const char *c = r->rule.metric; *c; c++) {
            unsigned char u = (unsigned char)*c;
            char pct[4];
            if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                u == '.' || u == '_' || u == '-')
                mt_sb_put(&q, c, 1);
            else
                snprintf(pct, sizeof pct, "%%%02X", u), mt_sb_puts(&q, pct);
        }
        snprintf(from, sizeof from, "%lld",
                 (long long)((r->st.triggered_at - r->rule.window_ns) / 1000000000));
        mt_sb_puts(&q, "&from=");
        mt_sb_puts(&q, from);
        mt_sb_puts(&q, "&to=now&step=1m&agg=");
        mt_sb_puts(&q, r->rule.agg.name);
        mt_sb_puts(&j, ",\"links\":{\"query\":");
        if (q.oom)
            j.oom = true;
        else
            jstr(&j, q.p), snprintf(ca.link, sizeof ca.link, "%s", q.p);
        mt_sb_puts(&j, "}");
        mt_sb_free(&q);
    }
    mt_sb_puts(&j, "}");
    mt_notice n = {.business_id = r->business_id,
                   .event = ev->bit,
                   .severity = r->st.severity == MT_SEV_CRITICAL  ? MT_WEBHOOK_CRITICAL
                               : r->st.severity == MT_SEV_WARNING ? MT_WEBHOOK_WARNING
                                                                  : 0,
                   .channels = ev->channels ? ev->channels : r->rule.channels,
                   .delivery = delivery,
                   .alert = &ca};
    if (j.oom)
        mt_log(MT_LOG_ERROR,
               "msg=\"webhook notification dropped: out of memory\" alert_id=%s delivery=%s",
               r->alert_id, delivery);
    else
        mt_notifier_send(a->nf, j.p, j.len, &n); /* logs its own failure */
    mt_sb_free(&j);
}

static int on_eval(void *ud, const mt_alert_eval *ev)
{
    mt_alerting *a = ud;
    const mt_alert_rule *r = a->rule;
    char key[1200];
    size_t klen;
    if (mt_alert_record_key(r->id, ev->series, key, sizeof key, &klen)) return MT_OK;
    instance *i = find(a, key, klen);
    if (!i) {
        if (ev->severity == MT_SEV_NONE && !(ev->nodata && r->nodata == MT_NODATA_ALERT))
            return MT_OK; /* nothing to keep for a quiet series */
        if (strlen(ev->business_id) >= sizeof i->rec.business_id) {
            mt_log(MT_LOG_WARN,
                   "msg=\"alert skipped: the series' business_id is not a UUID\" rule=\"%s\" "
                   "series=\"%s\"",
                   r->name, ev->series);
            return MT_OK;
        }
        if (!(i = add(a, key, klen))) return -ENOMEM;
        snprintf(i->rec.series, sizeof i->rec.series, "%s", ev->series);
    }
    i->rec.rule = *r; /* the rule as it is now */
    /* the alert is its series' tenant's (a record of version 1 had the rule's) */
    snprintf(i->rec.business_id, sizeof i->rec.business_id, "%s", ev->business_id);
    mt_alert_change ch = mt_alert_step(r, &i->rec.st, ev, a->now);
    if (ch == MT_CHANGE_NONE) return MT_OK;
    /* a new instance gets its id: fired, or first seen inside a silence */
    if (ch == MT_CHANGE_FIRED || (ch == MT_CHANGE_SUPPRESSED && i->rec.st.triggered_at == a->now))
        mt_alert_id(r->id, ev->series, i->rec.st.triggered_at, i->rec.alert_id);
    if (ch == MT_CHANGE_FIRED) i->escalated = 0; /* a new alert: its own levels */
    uint8_t *buf;
    size_t len;
    int rc = mt_alert_record_encode(&i->rec, &buf, &len);
    if (rc) return rc;
    rc = mt_engine_state_put(a->e, key, klen, buf, len, a->mirror ? MT_OUTBOX_ALERT : 0);
    free(buf);
    if (rc) return rc;
    a->changes++;
    bool quiet = ch == MT_CHANGE_UPDATED || ch == MT_CHANGE_SUPPRESSED;
    if (!quiet && a->nf) {
        event e = event_of(ch);
        notify(a, i, &e, a->now);
    }
    if (ch == MT_CHANGE_RESOLVED && i->escalated) { /* over: its levels are kept no longer */
        char ek[48];
        size_t el = escalation_key(i->rec.alert_id, ek);
        if (mt_engine_state_put(a->e, ek, el, NULL, 0, 0))
            mt_log(MT_LOG_WARN, "msg=\"cannot forget an alert's escalations\" alert_id=%s",
                   i->rec.alert_id);
        i->escalated = 0;
    }
    if (ch != MT_CHANGE_UPDATED)
        mt_log(MT_LOG_INFO,
               "msg=\"alert %s\" rule=\"%s\" series=\"%s\" business_id=%s severity=%s "
               "value=%.6g alert_id=%s",
               change_names[ch], r->name, ev->series,
               i->rec.business_id[0] ? i->rec.business_id : "-",
               mt_severity_name(i->rec.st.severity), i->rec.st.value, i->rec.alert_id);
    return MT_OK;
}

/*
 * Each active (unacknowledged) alert past a level of its rule's
 * escalation_rules is sent to that level's channels, once per level; the
 * levels sent are kept, so a restart sends none twice. The caller holds
 * a->lock, a->now set.
 */
static void escalate(mt_alerting *a)
{
    if (!a->nf) return; /* nobody to tell: the levels stay due until there is */
    for (size_t k = 0; k < a->n; k++) {
        instance *i = &a->in[k];
        const mt_alert_rule *r = &i->rec.rule;
        if (i->rec.st.status != MT_ALERT_ACTIVE || !r->nescalations || !i->rec.alert_id[0])
            continue;
        uint8_t was = i->escalated;
        for (size_t l = 0; l < r->nescalations; l++) {
            if ((i->escalated & (1u << l)) ||
                a->now - i->rec.st.triggered_at < r->escalations[l].after_ns)
                continue;
            event e = {"escalated",          "alert.escalated",
                       MT_WEBHOOK_ESCALATED, r->escalations[l].channels,
                       (int)l + 1,           r->escalations[l].after_ns};
            notify(a, i, &e, a->now);
            i->escalated |= (uint8_t)(1u << l);
            mt_log(MT_LOG_INFO,
                   "msg=\"alert escalated\" rule=\"%s\" series=\"%s\" alert_id=%s level=%zu "
                   "after_minutes=%g",
                   r->name, i->rec.series, i->rec.alert_id, l + 1,
                   (double)r->escalations[l].after_ns / 60e9);
        }
        if (i->escalated == was) continue;
        char ek[48];
        size_t el = escalation_key(i->rec.alert_id, ek);
        int rc = mt_engine_state_put(a->e, ek, el, &i->escalated, 1, 0);
        if (rc)
            mt_log(MT_LOG_WARN,
                   "msg=\"cannot keep an alert's escalations (a restart may send them again)\" "
                   "alert_id=%s err=\"%s\"",
                   i->rec.alert_id, mt_strerror(rc));
    }
}

int mt_alerting_set_rules(mt_alerting *a, const mt_alert_rule *rules, size_t n)
{
    mt_alert_rule *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (n && !copy) return -ENOMEM;
    if (n) memcpy(copy, rules, n * sizeof *copy);
    pthread_mutex_lock(&a->lock);
    bool changed = n != a->nrules || (n && memcmp(copy, a->rules, n * sizeof *copy));
    free(a->rules);
    a->rules = copy;
    a->nrules = n;
    pthread_mutex_unlock(&a->lock);
    if (changed) mt_log(MT_LOG_INFO, "msg=\"alert rules loaded\" rules=%zu", n);
    return MT_OK;
}

static int by_triggered_desc(const void *x, const void *y)
{
    int64_t a = (*(const instance *const *)x)->rec.st.triggered_at,
            b = (*(const instance *const *)y)->rec.st.triggered_at;
    return (a < b) - (a > b);
}

char *mt_alerting_list(mt_alerting *a, bool all, const char *tenant, size_t *len)
{
    pthread_mutex_lock(&a->lock);
    const instance **v = malloc((a->n ? a->n : 1) * sizeof *v);
    size_t n = 0, cap = 4096 + a->n * 2048;
    char *out = malloc(cap);
    if (!v || !out) {
        pthread_mutex_unlock(&a->lock);
        free(v);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < a->n; i++) {
        mt_alert_status st = a->in[i].rec.st.status;
        if (tenant && strcmp(a->in[i].rec.business_id, tenant) != 0) continue;
        if (st == MT_ALERT_ACTIVE || st == MT_ALERT_ACKNOWLEDGED || st == MT_ALERT_SUPPRESSED ||
            (all && st == MT_ALERT_RESOLVED))
            v[n++] = &a->in[i];
    }
    qsort(v, n, sizeof *v, by_triggered_desc);
    size_t at = (size_t)snprintf(out, cap, "%s", mt_alert_listing_header());
    for (size_t i = 0; i < n; i++) {
        mt_alert_record_row(&v[i]->rec, out + at, cap - at);
        at += strlen(out + at);
    }
    pthread_mutex_unlock(&a->lock);
    free(v);
    *len = at;
    return out;
}

void mt_alerting_set_link_base(mt_alerting *a, const char *base)
{
    snprintf(a->link_base, sizeof a->link_base, "%s", base ? base : "");
}

mt_notifier *mt_alerting_set_notifier(mt_alerting *a, mt_notifier *nf)
{
    pthread_mutex_lock(&a->lock);
    mt_notifier *old = a->nf;
    a->nf = nf;
    pthread_mutex_unlock(&a->lock);
    return old;
}

void mt_alerting_acknowledge(mt_alerting *a, const char *alert_id)
{
    pthread_mutex_lock(&a->lock);
    for (size_t k = 0; k < a->n; k++) {
        instance *i = &a->in[k];
        if (strcmp(i->rec.alert_id, alert_id) || i->rec.st.status != MT_ALERT_ACTIVE) continue;
        i->rec.st.status = MT_ALERT_ACKNOWLEDGED;
        uint8_t *buf;
        size_t len;
        if (!mt_alert_record_encode(&i->rec, &buf, &len)) {
            /* PostgreSQL has it already: kept here, not queued again */
            if (mt_engine_state_put(a->e, i->key, i->klen, buf, len, 0))
                mt_log(MT_LOG_ERROR, "msg=\"cannot keep an acknowledgement\" alert_id=%s",
                       alert_id);
            free(buf);
        }
        mt_log(MT_LOG_INFO, "msg=\"alert acknowledged\" rule=\"%s\" series=\"%s\" alert_id=%s",
               i->rec.rule.name, i->rec.series, alert_id);
        if (a->nf) { /* PagerDuty acknowledges its incident (mt_notify.h: who hears of it) */
            /* those told of the alert: the rule's channels and those of the levels sent */
            char told[sizeof i->rec.rule.channels +
                      MT_ALERT_MAX_ESCALATIONS * sizeof i->rec.rule.escalations[0].channels];
            size_t at = (size_t)snprintf(told, sizeof told, "%s", i->rec.rule.channels);
            for (size_t l = 0; at && l < i->rec.rule.nescalations; l++)
                if (i->escalated & (1u << l))
                    at += (size_t)snprintf(told + at, sizeof told - at, "\n%s",
                                           i->rec.rule.escalations[l].channels);
            event e = {"acknowledged", "alert.acknowledged", MT_WEBHOOK_ACKNOWLEDGED, told, 0, 0};
            notify(a, i, &e, mt_now_ns());
        }
    }
    pthread_mutex_unlock(&a->lock);
}

int mt_alerting_run(mt_alerting *a, int64_t now, size_t *changes)
{
    pthread_mutex_lock(&a->lock);
    a->now = now;
    a->changes = 0;
    int rc = MT_OK;
    for (size_t k = 0; k < a->nrules && !rc; k++) {
        char err[256];
        a->rule = &a->rules[k];
        rc = mt_alert_evaluate(a->e, a->rule, now, on_eval, a, err, sizeof err);
        if (rc == MT_EPARSE) { /* a bad rule does not stop the others (the seed's did) */
            mt_log(MT_LOG_ERROR, "msg=\"alert rule skipped\" rule=\"%s\" err=\"%s\"", a->rule->name,
                   err);
            rc = MT_OK;
        }
    }
    if (!rc) escalate(a);
    if (changes) *changes = a->changes;
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void mt_alerting_delivered(mt_alerting *a, const mt_notify_record *r)
{
    if (!a || !a->mirror || strlen(r->alert_id) != 36) return;
    char at[48];
    mt_time_format(r->at_ns, at, sizeof at);
    /* the whole record travels in the outbox entry: 'N', the alert's id, the JSON; without
       the error when that would pass an entry's 500 bytes */
    for (int with_error = r->error[0] ? 1 : 0; with_error >= 0; with_error--) {
        mt_sbuf j = {0};
        char n[64];
        mt_sb_puts(&j, "N");
        mt_sb_puts(&j, r->alert_id);
        mt_sb_puts(&j, "{\"channel\":");
        jstr(&j, r->channel);
        mt_sb_puts(&j, ",\"channel_id\":");
        jstr_or_null(&j, r->channel_id);
        mt_sb_puts(&j, ",\"type\":");
        jstr(&j, r->channel_type);
        mt_sb_puts(&j, ",\"event\":");
        jstr(&j, r->event);
        mt_sb_puts(&j, ",\"delivery\":");
        jstr(&j, r->delivery);
        mt_sb_puts(&j, ",\"at\":");
        jstr(&j, at);
        mt_sb_puts(&j, ",\"outcome\":");
        jstr(&j, mt_notify_outcome_name(r->outcome));
        snprintf(n, sizeof n, ",\"attempts\":%d", r->attempts);
        mt_sb_puts(&j, n);
        if (with_error) {
            mt_sb_puts(&j, ",\"error\":");
            jstr(&j, r->error);
        }
        mt_sb_puts(&j, "}");
        bool fits = !j.oom && j.len <= 500;
        int rc =
            fits ? mt_engine_state_put(a->e, j.p, j.len, NULL, 0, MT_OUTBOX_NOTIFICATION) : MT_OK;
        mt_sb_free(&j);
        if (fits && rc)
            mt_log(MT_LOG_WARN,
                   "msg=\"cannot keep a delivery record\" alert_id=%s channel=\"%s\" err=\"%s\"",
                   r->alert_id, r->channel, mt_strerror(rc));
        if (fits) return;
    }
    mt_log(MT_LOG_WARN, "msg=\"delivery record too long: not kept\" alert_id=%s channel=\"%s\"",
           r->alert_id, r->channel);
}
