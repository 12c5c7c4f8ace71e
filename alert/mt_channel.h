/*
 * mt_channel.h — the notification channels of alert delivery (alert/,
 * through mt_alert.h): what each type sends, and how. The notifier
 * (mt_notify.h) decides who hears of what
 * (tenant, event types, a rule's channels, rate limits, retries); this
 * module turns one notification into one delivery of one type:
 *
 *   webhook    the signed JSON of mt_notify.h (X-Metron-Signature), POSTed to url
 *   slack      an incoming-webhook payload {"text", "blocks", "attachments"}
 *              POSTed to url (https://hooks.slack.com/services/...)
 *   pagerduty  a PagerDuty Events API v2 event POSTed to url (default
 *              MT_CHANNEL_PAGERDUTY_URL): event_action trigger (fired,
 *              severity, reminder, escalated), acknowledge, resolve; the
 *              dedup_key is the alert's id, so every event of one alert is one
 *              PagerDuty incident; routing_key from the channel
 *   email      a text/plain message over SMTP (libcurl) to url (smtp://host:port
 *              or smtps://), from, to (comma-separated); starttls requires
 *              STARTTLS on smtp:// (the delivery fails without it); username
 *              and password when the server wants a login
 *   sms        a generic HTTP gateway: body_template with {{placeholders}}
 *              (mt_channel_render) POSTed to url with content_type (default
 *              application/json) and an optional auth_header line
 *
 * A type Metron does not know ("teams") is MT_CHANNEL_UNSUPPORTED: it is
 * loaded (so it is seen), logged once by whoever loads it, and every
 * notification routed to it is counted undeliverable (mt_notify.h), never
 * silently skipped.
 *
 * All sends are blocking libcurl calls with the channel's timeout: the
 * notifier's worker thread calls them, never the network loop.
 */
#ifndef MT_CHANNEL_H
#define MT_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_buf.h"

#define MT_CHANNEL_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"
#define MT_CHANNEL_SMS_MAX       160 /* bytes of {{message}}: one SMS, cut at a character */

typedef enum mt_channel_type {
    MT_CHANNEL_WEBHOOK,
    MT_CHANNEL_SLACK,
    MT_CHANNEL_PAGERDUTY,
    MT_CHANNEL_EMAIL,
    MT_CHANNEL_SMS,
    MT_CHANNEL_UNSUPPORTED, /* a type Metron cannot deliver, or a configuration it cannot use */
    MT_CHANNEL_NTYPES
} mt_channel_type;

/* "webhook", "slack", "pagerduty", "email", "sms"; anything else UNSUPPORTED. */
mt_channel_type mt_channel_type_parse(const char *name);
/* The name of t ("unsupported" for UNSUPPORTED). Static storage. */
const char *mt_channel_type_name(mt_channel_type t);

/* What a channel of each type needs beyond a webhook's url and timeout (all "" when unused). */
typedef struct mt_channel_conf {
    mt_channel_type type;
    char type_name[32];       /* as configured (the log names an unsupported one by it) */
    char ca_file[512];        /* PEM CA bundle for TLS (https, smtps, STARTTLS); "": the system's */
    char mail_from[256];      /* email: the sender address */
    char mail_to[1024];       /* email: recipient addresses, comma-separated */
    char username[128];       /* email: SMTP login ("": none) */
    char password[256];       /* email */
    bool starttls;            /* email: STARTTLS required on smtp:// */
    char routing_key[128];    /* pagerduty: the integration's routing key */
    char sms_to[64];          /* sms: the number, {{to}} */
    char body_template[1024]; /* sms: "" -> {"to":"{{to}}","message":"{{message}}"} */
    char content_type[64];    /* sms: "" -> application/json */
    char auth_header[512];    /* sms: one header line sent as is ("Authorization: Basic ...") */
} mt_channel_conf;

/* What a notification is about: one alert, one event, as every channel type shows it. */
typedef struct mt_channel_alert {
    char event[16];       /* fired, severity, renotify, resolved, escalated, acknowledged */
    char delivery[64];    /* the notification's id (mt_notify.h) */
    char alert_id[40];    /* PagerDuty's dedup_key */
    char business_id[40]; /* the alert's tenant ("": none) */
    char rule_id[40];
    char rule_name[104];
    char metric[512];                      /* the rule's selector */
    char series[1024];                     /* the alert's series, as line protocol */
    char severity[16];                     /* warning, critical */
    char status[16];                       /* active, acknowledged, resolved */
    double value;                          /* NaN: none */
    double threshold;                      /* NaN: none */
    int64_t triggered_at, resolved_at, at; /* ns; 0: none; at: when the event happened */
    int escalation;                        /* escalated: the level (1 = the first), else 0 */
    double escalation_after_minutes;
    char link[1024]; /* the alert's data through the query API ("": none) */
} mt_channel_alert;

/*
 * The payload a channel of type t sends for a (Slack's and PagerDuty's
 * JSON, the SMS body, the email message with its headers and CRLF line
 * ends). malloc'd, NUL-terminated, *len its bytes; NULL when memory ran
 * out, or for WEBHOOK and UNSUPPORTED (their body is not made here).
 */
char *mt_channel_payload(const mt_channel_conf *c, const mt_channel_alert *a, size_t *len);

/*
 * tmpl with each {{name}} replaced by a's field: message (a one-line
 * summary, at most MT_CHANNEL_SMS_MAX bytes), to, alert_id, event,
 * severity, status, rule, series, value, threshold, business_id, link.
 * Values are escaped for content_type: JSON string contents for a JSON
 * type (the template writes the quotes), %-encoding for
 * application/x-www-form-urlencoded, as they are otherwise. An unknown
 * {{name}} is kept as written. malloc'd (NULL: out of memory).
 */
char *mt_channel_render(const char *tmpl, const char *content_type, const mt_channel_conf *c,
                        const mt_channel_alert *a, size_t *len);

/*
 * Send a's notification over channel c (SLACK, PAGERDUTY, EMAIL, SMS) to
 * url (PAGERDUTY: "" is MT_CHANNEL_PAGERDUTY_URL), waiting at most
 * timeout_s. MT_OK when the receiver took it (HTTP 2xx; SMTP: the server
 * accepted the message for every recipient); else -EIO with the reason in
 * why (capacity cap: "answered 500", libcurl's text for a timeout, a
 * refused STARTTLS or recipient ...); -ENOMEM; MT_EINVAL for WEBHOOK and
 * UNSUPPORTED (not sent here). Thread-safe.
 */
int mt_channel_send(const mt_channel_conf *c, const char *url, int timeout_s,
                    const mt_channel_alert *a, char *why, size_t cap);

/*
 * Whether c can be used with url: the scheme the type needs (http(s) for
 * webhook, slack, sms; smtp/smtps for email; http(s) or "" for
 * pagerduty), and the keys it needs (email: from and to; pagerduty:
 * routing_key). NULL when usable, else why not (static storage).
 */
const char *mt_channel_check(const mt_channel_conf *c, const char *url);

/* ---- JSON into a growable string (mt_buf.h's mt_sbuf), for payloads and records ---------- */

/* s as a JSON string, quotes included, escaped as mt_json.h does but for a newline, written
   \n as the payloads always had it; NULL, or "" with null_if_empty: null. */
void mt_channel_json(mt_sbuf *b, const char *s, bool null_if_empty);
/* A number as JSON, %.17g (NaN and infinities: null). */
void mt_channel_num(mt_sbuf *b, double v);

#endif
