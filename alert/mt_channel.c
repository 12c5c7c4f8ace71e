/*
 * mt_channel.c — payloads and sends of each channel type (mt_channel.h).
 *
 * Payloads are written, never parsed: Slack's (text for notifications and
 * clients without blocks, blocks for the message, an attachment for the
 * severity colour), PagerDuty's Events API v2 (payload only on trigger:
 * acknowledge and resolve need routing_key, event_action and dedup_key
 * alone), an RFC 5322 message for email (header values on one line: a
 * rule name cannot add a header), and the SMS gateway's template.
 */
#include "mt_channel.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_err.h"
#include "mt_json.h"
#include "mt_time.h"

static const char *const type_names[MT_CHANNEL_NTYPES] = {"webhook", "slack", "pagerduty",
                                                          "email",   "sms",   "unsupported"};

mt_channel_type mt_channel_type_parse(const char *name)
{
    for (int t = 0; t < MT_CHANNEL_UNSUPPORTED; t++)
        if (!strcmp(name, type_names[t])) return (mt_channel_type)t;
    return MT_CHANNEL_UNSUPPORTED;
}

const char *mt_channel_type_name(mt_channel_type t)
{
    return t >= 0 && t < MT_CHANNEL_NTYPES ? type_names[t] : "unsupported";
}

/* ---- JSON into the text buffer ------------------------------------------------------------- */

static void sb_put(void *ud, const char *s, size_t n)
{
    mt_sb_put(ud, s, n);
}

/* The contents of a JSON string (no quotes): mt_json.h's escapes, but a newline as \n, not
   \u000a. The payloads have always written it so (Slack's fields are "*name*\nvalue"), and
   people read them in chat and paging tools: kept byte for byte. */
static void json_chars(mt_sbuf *b, const char *s)
{
    for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        mt_json_body(s, (size_t)(nl - s), sb_put, b);
        mt_sb_put(b, "\\n", 2);
    }
    mt_json_body(s, strlen(s), sb_put, b);
}

void mt_channel_json(mt_sbuf *b, const char *s, bool null_if_empty)
{
    if (!s || (null_if_empty && !s[0])) {
        mt_sb_puts(b, "null");
        return;
    }
    mt_sb_put(b, "\"", 1);
    json_chars(b, s);
    mt_sb_put(b, "\"", 1);
}

void mt_channel_num(mt_sbuf *b, double v)
{
    char t[32];
    if (isfinite(v))
        snprintf(t, sizeof t, "%.17g", v);
    else
        snprintf(t, sizeof t, "null");
    mt_sb_puts(b, t);
}

/* ---- what every type says ------------------------------------------------------------------- */

static void num_text(double v, char *out, size_t cap)
{
    if (isfinite(v))
        snprintf(out, cap, "%.6g", v);
    else
        snprintf(out, cap, "-");
}

static void time_text(int64_t ns, char *out, size_t cap)
{
    if (ns)
        mt_time_format(ns, out, cap);
    else
        snprintf(out, cap, "-");
}

static const char *what_of(const char *event)
{
    return !strcmp(event, "severity")       ? "severity changed"
           : !strcmp(event, "renotify")     ? "still active"
           : !strcmp(event, "acknowledged") ? "acknowledged"
           : !strcmp(event, "resolved")     ? "resolved"
           : !strcmp(event, "escalated")    ? "escalated"
                                            : "fired";
}

/* "[CRITICAL] cpu hot fired: cpu,host=a usage = 95 (threshold 90)", on one line. */
static void summary(const mt_channel_alert *a, char *out, size_t cap)
{
    char tag[16], v[32], t[32], esc[64] = "";
    bool res = !strcmp(a->event, "resolved"), ack = !strcmp(a->event, "acknowledged");
    snprintf(tag, sizeof tag, "%s", res ? "RESOLVED" : ack ? "ACKNOWLEDGED" : a->severity);
    for (char *p = tag; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    num_text(a->value, v, sizeof v);
    num_text(a->threshold, t, sizeof t);
    if (a->escalation)
        snprintf(esc, sizeof esc, " (level %d, after %g min)", a->escalation,
                 a->escalation_after_minutes);
    snprintf(out, cap, "[%s] %s %s%s: %s = %s (threshold %s)", tag, a->rule_name, what_of(a->event),
             esc, a->series, v, t);
    for (char *p = out; *p; p++) /* one line: a name with a line break stays in its field */
        if (*p == '\r' || *p == '\n') *p = ' ';
}

/* ---- Slack ---------------------------------------------------------------------------------- */

/* Text for Slack's mrkdwn: &, < and > are its control characters. */
static void slack_text(mt_sbuf *b, const char *s)
{
    mt_sbuf t = {0};
    for (; *s; s++) {
        if (*s == '&')
            mt_sb_puts(&t, "&amp;");
        else if (*s == '<')
            mt_sb_puts(&t, "&lt;");
        else if (*s == '>')
            mt_sb_puts(&t, "&gt;");
        else
            mt_sb_put(&t, s, 1);
    }
    if (t.oom) b->oom = true;
    mt_channel_json(b, t.p ? t.p : "", false);
    mt_sb_free(&t);
}

static void slack_field(mt_sbuf *b, bool first, const char *name, const char *value)
{
    char label[64];
    snprintf(label, sizeof label, "%s{\"type\":\"mrkdwn\",\"text\":", first ? "" : ",");
    mt_sb_puts(b, label);
    mt_sbuf t = {0};
    mt_sb_puts(&t, "*");
    mt_sb_puts(&t, name);
    mt_sb_puts(&t, "*\n");
    mt_sb_puts(&t, value);
    if (t.oom) b->oom = true;
    slack_text(b, t.p ? t.p : "");
    mt_sb_free(&t);
    mt_sb_puts(b, "}");
}

static char *slack_payload(const mt_channel_alert *a, size_t *len)
{
    char sum[1600], v[32], t[32], trig[48], head[160];
    summary(a, sum, sizeof sum);
    num_text(a->value, v, sizeof v);
    num_text(a->threshold, t, sizeof t);
    time_text(a->triggered_at, trig, sizeof trig);
    /* a header block holds 150 characters of plain text */
    snprintf(head, sizeof head, "%.140s", sum);
    const char *color = !strcmp(a->event, "resolved")      ? "#2eb886"
                        : !strcmp(a->severity, "critical") ? "#d00000"
                                                           : "#daa038";
    mt_sbuf b = {0};
    mt_sb_puts(&b, "{\"text\":");
    slack_text(&b, sum);
    mt_sb_puts(&b, ",\"blocks\":[{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":");
    mt_channel_json(&b, head, false);
    mt_sb_puts(&b, "}},{\"type\":\"section\",\"fields\":[");
    slack_field(&b, true, "Severity", a->severity);
    slack_field(&b, false, "Status", a->status);
    slack_field(&b, false, "Value", v);
    slack_field(&b, false, "Threshold", t);
    slack_field(&b, false, "Rule", a->rule_name);
    slack_field(&b, false, "Tenant", a->business_id[0] ? a->business_id : "system-wide");
    mt_sb_puts(&b, "]},{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
    {
        mt_sbuf s = {0};
        mt_sb_puts(&s, "Series: ");
        mt_sb_puts(&s, a->series);
        if (s.oom) b.oom = true;
        slack_text(&b, s.p ? s.p : "");
        mt_sb_free(&s);
    }
    mt_sb_puts(&b, "}},{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":");
    {
        mt_sbuf s = {0};
        mt_sb_puts(&s, "alert ");
        mt_sb_puts(&s, a->alert_id);
        mt_sb_puts(&s, ", triggered ");
        mt_sb_puts(&s, trig);
        if (s.oom) b.oom = true;
        slack_text(&b, s.p ? s.p : "");
        mt_sb_free(&s);
    }
    mt_sb_puts(&b, "}]}");
    if (a->link[0]) { /* a button to the data; Slack only checks the URL's form */
        mt_sb_puts(&b, ",{\"type\":\"actions\",\"elements\":[{\"type\":\"button\",\"text\":"
                       "{\"type\":\"plain_text\",\"text\":\"Query the data\"},\"url\":");
        mt_channel_json(&b, a->link, false);
        mt_sb_puts(&b, "}]}");
    }
    mt_sb_puts(&b, "],\"attachments\":[{\"color\":");
    mt_channel_json(&b, color, false);
    mt_sb_puts(&b, ",\"fallback\":");
    slack_text(&b, sum);
    mt_sb_puts(&b, "}]}");
    if (b.oom) {
        mt_sb_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- PagerDuty ------------------------------------------------------------------------------ */

static char *pagerduty_payload(const mt_channel_conf *c, const mt_channel_alert *a, size_t *len)
{
    const char *action = !strcmp(a->event, "resolved")       ? "resolve"
                         : !strcmp(a->event, "acknowledged") ? "acknowledge"
                                                             : "trigger";
    mt_sbuf b = {0};
    mt_sb_puts(&b, "{\"routing_key\":");
    mt_channel_json(&b, c->routing_key, false);
    mt_sb_puts(&b, ",\"event_action\":");
    mt_channel_json(&b, action, false);
    mt_sb_puts(&b, ",\"dedup_key\":");
    mt_channel_json(&b, a->alert_id, false);
    if (!strcmp(action, "trigger")) {
        char sum[1024], trig[48];
        summary(a, sum, sizeof sum); /* PagerDuty takes 1024 characters of summary */
        time_text(a->triggered_at ? a->triggered_at : a->at, trig, sizeof trig);
        mt_sb_puts(&b, ",\"payload\":{\"summary\":");
        mt_channel_json(&b, sum, false);
        mt_sb_puts(&b, ",\"source\":");
        mt_channel_json(&b, a->series, false);
        mt_sb_puts(&b, ",\"severity\":");
        mt_channel_json(&b,
                        !strcmp(a->severity, "critical")  ? "critical"
                        : !strcmp(a->severity, "warning") ? "warning"
                                                          : "info",
                        false);
        mt_sb_puts(&b, ",\"timestamp\":");
        mt_channel_json(&b, trig, false);
        mt_sb_puts(&b, ",\"component\":");
        mt_channel_json(&b, a->metric, false);
        mt_sb_puts(&b, ",\"group\":");
        mt_channel_json(&b, a->business_id[0] ? a->business_id : "system-wide", false);
        mt_sb_puts(&b, ",\"class\":");
        mt_channel_json(&b, a->rule_name, false);
        mt_sb_puts(&b, ",\"custom_details\":{\"event\":");
        mt_channel_json(&b, a->event, false);
        mt_sb_puts(&b, ",\"alert_id\":");
        mt_channel_json(&b, a->alert_id, false);
        mt_sb_puts(&b, ",\"rule_id\":");
        mt_channel_json(&b, a->rule_id, false);
        mt_sb_puts(&b, ",\"business_id\":");
        mt_channel_json(&b, a->business_id, true);
        mt_sb_puts(&b, ",\"value\":");
        mt_channel_num(&b, a->value);
        mt_sb_puts(&b, ",\"threshold\":");
        mt_channel_num(&b, a->threshold);
        if (a->escalation) {
            char lv[16];
            snprintf(lv, sizeof lv, "%d", a->escalation);
            mt_sb_puts(&b, ",\"escalation_level\":");
            mt_sb_puts(&b, lv);
        }
        mt_sb_puts(&b, "}}");
        mt_sb_puts(&b, ",\"client\":\"Metron\"");
        if (a->link[0]) {
            mt_sb_puts(&b, ",\"client_url\":");
            mt_channel_json(&b, a->link, false);
            mt_sb_puts(&b, ",\"links\":[{\"href\":");
            mt_channel_json(&b, a->link, false);
            mt_sb_puts(&b, ",\"text\":\"Query the data\"}]");
        }
    }
    mt_sb_puts(&b, "}");
    if (b.oom) {
        mt_sb_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- email ---------------------------------------------------------------------------------- */

/* A header value on one line: CR and LF (a header of the sender's own) become spaces. */
static void header_value(mt_sbuf *b, const char *s)
{
    for (; *s; s++) mt_sb_put(b, *s == '\r' || *s == '\n' ? " " : s, 1);
}

static char *email_payload(const mt_channel_conf *c, const mt_channel_alert *a, size_t *len)
{
    char sum[1600], date[64], v[32], t[32], trig[48], res[48];
    summary(a, sum, sizeof sum);
    time_t now = (time_t)((a->at ? a->at : mt_now_ns()) / 1000000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* RFC 5322 dates are English whatever the locale */
    snprintf(date, sizeof date, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    num_text(a->value, v, sizeof v);
    num_text(a->threshold, t, sizeof t);
    time_text(a->triggered_at, trig, sizeof trig);
    time_text(a->resolved_at, res, sizeof res);
    mt_sbuf b = {0};
    mt_sb_puts(&b, "Date: ");
    mt_sb_puts(&b, date);
    mt_sb_puts(&b, "\r\nFrom: ");
    header_value(&b, c->mail_from);
    mt_sb_puts(&b, "\r\nTo: ");
    header_value(&b, c->mail_to);
    mt_sb_puts(&b, "\r\nSubject: ");
    header_value(&b, sum);
    mt_sb_puts(&b, "\r\nMessage-ID: <");
    header_value(&b, a->delivery);
    mt_sb_puts(&b, "@metron>\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\nX-Metron-Alert: ");
    header_value(&b, a->alert_id);
    mt_sb_puts(&b, "\r\nX-Metron-Delivery: ");
    header_value(&b, a->delivery);
    mt_sb_puts(&b, "\r\n\r\n");
    struct {
        const char *k, *v;
    } lines[] = {{"", sum},
                 {"", ""},
                 {"Event:      ", what_of(a->event)},
                 {"Rule:       ", a->rule_name},
                 {"Metric:     ", a->metric},
                 {"Series:     ", a->series},
                 {"Severity:   ", a->severity},
                 {"Status:     ", a->status},
                 {"Value:      ", v},
                 {"Threshold:  ", t},
                 {"Triggered:  ", trig},
                 {"Resolved:   ", res},
                 {"Tenant:     ", a->business_id[0] ? a->business_id : "system-wide"},
                 {"Alert id:   ", a->alert_id},
                 {"Data:       ", a->link[0] ? a->link : "-"}};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        mt_sb_puts(&b, lines[i].k);
        header_value(&b, lines[i].v); /* one line each: CRLF line ends are SMTP's */
        mt_sb_puts(&b, "\r\n");
    }
    if (b.oom) {
        mt_sb_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- SMS ------------------------------------------------------------------------------------ */

/* s cut at max bytes, at the start of a UTF-8 character. */
static void cut_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) return;
    while (max && ((unsigned char)s[max] & 0xc0) == 0x80) max--;
    s[max] = '\0';
}

static void put_escaped(mt_sbuf *b, const char *v, int how)
{
    if (how == 1) { /* JSON string contents */
        json_chars(b, v);
        return;
    }
    if (how == 2) { /* application/x-www-form-urlencoded */
        for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
            char e[4];
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == '.' || *p == '~')
                mt_sb_put(b, (const char *)p, 1);
            else if (*p == ' ')
                mt_sb_put(b, "+", 1);
            else
                snprintf(e, sizeof e, "%%%02X", *p), mt_sb_put(b, e, 3);
        }
        return;
    }
    mt_sb_puts(b, v);
}

char *mt_channel_render(const char *tmpl, const char *content_type, const mt_channel_conf *c,
                        const mt_channel_alert *a, size_t *len)
{
    char msg[MT_CHANNEL_SMS_MAX + 1600], v[32], t[32];
    summary(a, msg, sizeof msg);
    cut_utf8(msg, MT_CHANNEL_SMS_MAX);
    num_text(a->value, v, sizeof v);
    num_text(a->threshold, t, sizeof t);
    int how = strstr(content_type, "json") ? 1 : strstr(content_type, "form-urlencoded") ? 2 : 0;
    const struct {
        const char *name, *value;
    } vars[] = {{"message", msg},
                {"to", c->sms_to},
                {"alert_id", a->alert_id},
                {"event", a->event},
                {"severity", a->severity},
                {"status", a->status},
                {"rule", a->rule_name},
                {"series", a->series},
                {"value", v},
                {"threshold", t},
                {"business_id", a->business_id},
                {"link", a->link}};
    mt_sbuf b = {0};
    mt_sb_put(&b, "", 0);
    for (const char *p = tmpl; *p;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            mt_sb_puts(&b, p);
            break;
        }
        mt_sb_put(&b, p, (size_t)(open - p));
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            mt_sb_puts(&b, open);
            break;
        }
        size_t n = (size_t)(close - open - 2);
        bool found = false;
        for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !found; i++)
            if (strlen(vars[i].name) == n && !memcmp(vars[i].name, open + 2, n)) {
                put_escaped(&b, vars[i].value, how);
                found = true;
            }
        if (!found) mt_sb_put(&b, open, n + 4); /* kept as written */
        p = close + 2;
    }
    if (b.oom) {
        mt_sb_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

static const char *sms_type(const mt_channel_conf *c)
{
    return c->content_type[0] ? c->content_type : "application/json";
}

char *mt_channel_payload(const mt_channel_conf *c, const mt_channel_alert *a, size_t *len)
{
    switch (c->type) {
    case MT_CHANNEL_SLACK: return slack_payload(a, len);
    case MT_CHANNEL_PAGERDUTY: return pagerduty_payload(c, a, len);
    case MT_CHANNEL_EMAIL: return email_payload(c, a, len);
    case MT_CHANNEL_SMS:
        return mt_channel_render(c->body_template[0]
                                     ? c->body_template
                                     : "{\"to\":\"{{to}}\",\"message\":\"{{message}}\"}",
                                 sms_type(c), c, a, len);
    default: return NULL;
    }
}

/* ---- sending -------------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

typedef struct reader {
    const char *p;
    size_t left;
} reader;

static size_t read_msg(char *out, size_t size, size_t n, void *ud)
{
    reader *r = ud;
    size_t k = size * n < r->left ? size * n : r->left;
    memcpy(out, r->p, k);
    r->p += k;
    r->left -= k;
    return k;
}

/* The recipients of "a@x, b@y" as "<a@x>" list entries; NULL with *oom when memory ran out. */
static struct curl_slist *recipients(const char *to, bool *oom)
{
    struct curl_slist *list = NULL, *l;
    for (const char *p = to; *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (!n) break;
        char addr[300];
        snprintf(addr, sizeof addr, "<%.*s>", (int)(n < 290 ? n : 290), p);
        if (!(l = curl_slist_append(list, addr))) {
            curl_slist_free_all(list);
            *oom = true;
            return NULL;
        }
        list = l;
        p += strcspn(p, ",");
    }
    return list;
}

int mt_channel_send(const mt_channel_conf *c, const char *url, int timeout_s,
                    const mt_channel_alert *a, char *why, size_t cap)
{
    if (c->type == MT_CHANNEL_WEBHOOK || c->type >= MT_CHANNEL_UNSUPPORTED) {
        snprintf(why, cap, "not a channel type sent here: %s", c->type_name);
        return MT_EINVAL;
    }
    size_t len = 0;
    char *body = mt_channel_payload(c, a, &len);
    if (!body) return snprintf(why, cap, "out of memory"), -ENOMEM;
    bool email = c->type == MT_CHANNEL_EMAIL, oom = false;
    char from[300], ctype[100];
    struct curl_slist *hdr = NULL, *rcpt = NULL, *h;
    CURL *cu = curl_easy_init();
    if (!cu) {
        free(body);
        return snprintf(why, cap, "curl_easy_init failed"), -EIO;
    }
    if (email) {
        snprintf(from, sizeof from, "<%s>", c->mail_from);
        rcpt = recipients(c->mail_to, &oom);
    } else {
        snprintf(ctype, sizeof ctype, "Content-Type: %s",
                 c->type == MT_CHANNEL_SMS ? sms_type(c) : "application/json");
        /* "Expect:" (empty) turns off libcurl's 100-continue wait: receivers seldom answer it */
        const char *lines[] = {
            ctype,
            "Expect:", c->type == MT_CHANNEL_SMS && c->auth_header[0] ? c->auth_header : NULL};
        for (size_t i = 0; i < 3 && lines[i]; i++) {
            if (!(h = curl_slist_append(hdr, lines[i]))) {
                oom = true;
                break;
            }
            hdr = h;
        }
    }
    reader rd = {body, len};
    const char *target = url[0]                            ? url
                         : c->type == MT_CHANNEL_PAGERDUTY ? MT_CHANNEL_PAGERDUTY_URL
                                                           : "";
    CURLcode cc = oom ? CURLE_OUT_OF_MEMORY : CURLE_OK;
    /* every option checked: a request without its headers or its TLS must not go out */
    if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_URL, target);
    if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_TIMEOUT, (long)timeout_s);
    if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
    if (cc == CURLE_OK && c->ca_file[0]) cc = curl_easy_setopt(cu, CURLOPT_CAINFO, c->ca_file);
    if (email) {
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_MAIL_FROM, from);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_MAIL_RCPT, rcpt);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_READFUNCTION, read_msg);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_READDATA, &rd);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_UPLOAD, 1L);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
        if (cc == CURLE_OK && c->starttls)
            cc = curl_easy_setopt(cu, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (cc == CURLE_OK && c->username[0])
            cc = curl_easy_setopt(cu, CURLOPT_USERNAME, c->username);
        if (cc == CURLE_OK && c->username[0])
            cc = curl_easy_setopt(cu, CURLOPT_PASSWORD, c->password);
    } else {
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdr);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (cc == CURLE_OK) cc = curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    }
    if (cc == CURLE_OK) cc = curl_easy_perform(cu);
    long status = 0;
    if (cc == CURLE_OK && !email) cc = curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(cu);
    free(body);
    if (cc == CURLE_OUT_OF_MEMORY) return snprintf(why, cap, "out of memory"), -ENOMEM;
    if (cc != CURLE_OK) return snprintf(why, cap, "%s", curl_easy_strerror(cc)), -EIO;
    if (!email && (status < 200 || status > 299))
        return snprintf(why, cap, "answered %ld", status), -EIO;
    return MT_OK;
}

const char *mt_channel_check(const mt_channel_conf *c, const char *url)
{
    bool http = !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
    switch (c->type) {
    case MT_CHANNEL_WEBHOOK:
    case MT_CHANNEL_SLACK:
    case MT_CHANNEL_SMS: return http ? NULL : "url: an http:// or https:// URL";
    case MT_CHANNEL_PAGERDUTY:
        if (url[0] && !http) return "url: an http:// or https:// URL (or none: PagerDuty's)";
        return c->routing_key[0] ? NULL : "routing_key is missing";
    case MT_CHANNEL_EMAIL:
        if (strncmp(url, "smtp://", 7) && strncmp(url, "smtps://", 8))
            return "url: an smtp:// or smtps:// URL";
        if (!c->mail_from[0]) return "from is missing";
        if (!c->mail_to[0]) return "to is missing";
        return NULL;
    default: return "a channel type Metron cannot deliver";
    }
}
