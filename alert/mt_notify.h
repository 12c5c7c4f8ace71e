/*
 * mt_notify.h — webhooks for alert changes (alert/, through mt_alert.h):
 * a worker thread that POSTs each notification as JSON with libcurl, so
 * neither the network loop nor the alert evaluation waits on a receiver.
 *
 * Each request carries X-Metron-Timestamp (unix seconds),
 * X-Metron-Signature: sha256=<hex HMAC-SHA256 over "timestamp.body" with
 * the endpoint's secret>, and X-Metron-Delivery: the notification's id,
 * the same on every retry of one notification and different for each
 * notification (the body carries it too, as "delivery", so it is signed),
 * so a receiver can check the sender, refuse stale requests and drop
 * replays. A request that fails (no answer within the endpoint's timeout,
 * or a status outside 2xx) is tried again, retry_attempts times, after
 * 1 s, 2 s, 4 s ... (retry_base_ms). A body that cannot be signed is never
 * sent: the attempt is counted failed, logged with the endpoint's name, and
 * not retried (the failure is local, a retry would meet it again). Beyond
 * rate_limit_per_hour notifications an hour an endpoint gets no more
 * (counted, logged).
 *
 * Routing (mt_webhook_wants): an endpoint with a business_id receives
 * only the alerts of that tenant, one without receives every tenant's
 * (system-wide); its events, when set, narrow it to those changes and
 * severities; a rule's notification_channels, when set, narrow its alerts
 * to the endpoints they name (by id or name); an escalation goes to the
 * channels its level names instead (the tenant and event rules still
 * apply). An acknowledgement goes to PagerDuty channels (it acknowledges
 * the incident) and to endpoints whose event types name
 * alert.acknowledged, to no other.
 *
 * Channels (mt_channel.h): an endpoint's ch.type says what it sends: the
 * signed JSON (webhook), or Slack's, PagerDuty's, an email, an SMS. A
 * channel of a type Metron cannot deliver sends nothing; each
 * notification routed to it is counted undeliverable. Every outcome of
 * every notification at every endpoint (sent, failed, rate_limited,
 * undeliverable, unsigned) is counted per type for /metrics
 * (mt_notify_metrics) and handed to the delivery callback
 * (mt_notifier_on_delivery), which keeps it in
 * monitoring.alerts.notifications_sent.
 */
#ifndef MT_NOTIFY_H
#define MT_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_channel.h"
#include "mt_err.h"

/* Event types, as monitoring.webhook_endpoints.event_types names them (one bit each). */
#define MT_WEBHOOK_FIRED    (1u << 0) /* "alert.fired": a new alert */
#define MT_WEBHOOK_SEVERITY (1u << 1) /* "alert.severity_changed": while active */
#define MT_WEBHOOK_REMINDER (1u << 2) /* "alert.reminder": still active after the cooldown */
#define MT_WEBHOOK_RESOLVED (1u << 3) /* "alert.resolved" */
#define MT_WEBHOOK_ESCALATED                                                                       \
    (1u << 4) /* "alert.escalated": unacknowledged past a level of the rule's escalation_rules */
#define MT_WEBHOOK_ACKNOWLEDGED (1u << 5) /* "alert.acknowledged": a person acknowledged it */
#define MT_WEBHOOK_WARNING      (1u << 8) /* "warning": alerts of that severity */
#define MT_WEBHOOK_CRITICAL     (1u << 9) /* "critical" */
#define MT_WEBHOOK_FILTERED                                                                        \
    (1u << 31)                       /* a list was given (names Metron does not know match none) */
#define MT_WEBHOOK_EVENTS     0x3fu  /* the change bits */
#define MT_WEBHOOK_SEVERITIES 0x300u /* the severity bits */

typedef struct mt_webhook {
    char id[40]; /* webhook_endpoints.id or notification_channels.id; "" from a rules file */
    char name[104];
    char url[1024];
    char secret[256];
    char business_id[40];    /* the tenant whose alerts it receives; "": every tenant's */
    unsigned events;         /* MT_WEBHOOK_* it receives; 0: every change of every severity */
    int retry_attempts;      /* default 3 */
    int timeout_s;           /* default 30 */
    int rate_limit_per_hour; /* default 10 (0: no limit) */
    int retry_base_ms;       /* the first backoff, doubling (default 1000) */
    mt_channel_conf ch;      /* the type and what it needs (default: a webhook) */
    bool channel; /* read from monitoring.notification_channels (its rate-limit count is written
                     back there), not from webhook_endpoints (its call statistics are) */
    const char *unusable;   /* why ch.type was made MT_CHANNEL_UNSUPPORTED (static storage;
                               NULL: usable) */
    char unknown_event[64]; /* the first of its event types Metron does not know ("": none) */
    /* last, and not part of what makes an endpoint another (mt_webhook_same): */
    int hour_count;        /* notifications already sent in the hour starting at ... */
    int64_t hour_start_ns; /* ... this one (ns; another hour: the count starts at 0) */
} mt_webhook;

/* The defaults above. */
mt_webhook mt_webhook_default(void);

/*
 * The defaults above into *w, over zeroed memory (padding included), so
 * that two endpoints built on it from the same configuration are equal
 * byte for byte (mt_webhook_same).
 */
void mt_webhook_init(mt_webhook *w);

/*
 * Whether a and b, both built on mt_webhook_init, are the same endpoint:
 * every field but the rate limit's count (hour_count, hour_start_ns),
 * which changes at every delivery.
 */
bool mt_webhook_same(const mt_webhook *a, const mt_webhook *b);

/*
 * Make w's channel configuration usable or say why not: when
 * mt_channel_check refuses w->ch with w->url, w->ch.type becomes
 * MT_CHANNEL_UNSUPPORTED (it receives, and counts, its notifications: none
 * is skipped silently) and w->unusable says why. Returns w->unusable.
 */
const char *mt_webhook_check_channel(mt_webhook *w);

/*
 * Parse a list of event types (separated by commas, blanks or newlines:
 * "alert.fired", "alert.severity_changed", "alert.reminder",
 * "alert.resolved", each also without its "alert." prefix, and the
 * severities "warning", "critical") into *events: 0 for an empty list
 * (every event), else the bits and MT_WEBHOOK_FILTERED. Within the changes
 * and within the severities any listed one passes; a list with both needs
 * one of each. Returns the number of names it does not know (the first
 * copied into unknown, capacity cap); they match nothing, so a list of
 * unknown names alone receives nothing.
 */
int mt_webhook_parse_events(const char *list, unsigned *events, char *unknown, size_t cap);

/* What a notification is about, for routing. */
typedef struct mt_notice {
    const char *business_id;       /* the alert's tenant (its series'); "" none */
    unsigned event;                /* one MT_WEBHOOK_ change bit */
    unsigned severity;             /* MT_WEBHOOK_WARNING or _CRITICAL (0: none) */
    const char *channels;          /* the rule's notification_channels, '\n'-separated ids or names;
                                      NULL or "": every endpoint */
    const char *delivery;          /* X-Metron-Delivery (at most 63 bytes) */
    const mt_channel_alert *alert; /* what the channels other than webhooks say (may be NULL:
                                      those then get nothing, counted failed) */
} mt_notice;

/* Whether w receives a notification about n (the rules in the header comment). Pure. */
bool mt_webhook_wants(const mt_webhook *w, const mt_notice *n);

typedef struct mt_webhook_stats {
    uint64_t total, successful, failed, rate_limited;
    uint64_t unsigned_; /* attempts not sent because the body could not be signed (in failed too) */
    uint64_t undeliverable; /* notifications routed to it that its type cannot carry */
    int64_t last_success_ns, last_failure_ns;
    int hour_count;        /* notifications sent in the hour starting at hour_start_ns */
    int64_t hour_start_ns; /* 0: none sent yet */
} mt_webhook_stats;

/* The outcome of one notification at one endpoint (after its retries). */
typedef enum mt_notify_outcome {
    MT_NOTIFY_SENT,
    MT_NOTIFY_FAILED,        /* every attempt failed (or could not be signed) */
    MT_NOTIFY_RATE_LIMITED,  /* over rate_limit_per_hour: not sent */
    MT_NOTIFY_UNDELIVERABLE, /* a type (or configuration) Metron cannot deliver: not sent */
    MT_NOTIFY_NOUTCOMES
} mt_notify_outcome;

/* "sent", "failed", "rate_limited", "undeliverable". Static storage. */
const char *mt_notify_outcome_name(mt_notify_outcome o);

/* One delivery, for monitoring.alerts.notifications_sent. Strings valid during the callback. */
typedef struct mt_notify_record {
    const char *alert_id;     /* "" when the notification carried no alert */
    const char *delivery;     /* the notification's id */
    const char *event;        /* "fired", "severity", "renotify", "resolved", "escalated",
                                 "acknowledged" */
    const char *channel;      /* the endpoint's name */
    const char *channel_id;   /* its id ("": from a rules file) */
    const char *channel_type; /* as configured ("webhook", "email", ..., "teams") */
    mt_notify_outcome outcome;
    int attempts;      /* requests made (0 when not sent) */
    int64_t at_ns;     /* when the outcome was known */
    const char *error; /* the last failure ("" none) */
} mt_notify_record;

typedef struct mt_notifier mt_notifier;

/* Start the worker for these endpoints (copied). MT_OK, -ENOMEM or -errno. */
int mt_notifier_start(const mt_webhook *hooks, size_t n, mt_notifier **out);

/*
 * Queue body (JSON, len bytes, copied) for every endpoint that wants n (n's
 * strings copied); never blocks on the network. MT_OK, or -ENOMEM (logged,
 * nothing queued).
 */
int mt_notifier_send(mt_notifier *nf, const char *body, size_t len, const mt_notice *n);

/* Deliver what is queued (with retries), then stop and free. NULL is a no-op. */
void mt_notifier_stop(mt_notifier *nf);

/* Endpoint i's counters. */
void mt_notifier_stats(mt_notifier *nf, size_t i, mt_webhook_stats *out);

/*
 * fn(ud, r) on the worker thread after each notification's outcome at
 * each endpoint that wanted it; fn NULL: none. Setting waits for a call in
 * progress to return, so after mt_notifier_on_delivery(nf, NULL, NULL)
 * fn is never called again (what ud points at may then go).
 */
void mt_notifier_on_delivery(mt_notifier *nf, void (*fn)(void *ud, const mt_notify_record *r),
                             void *ud);

/*
 * The counters of every notifier of the process so far, for /metrics (the
 * Prometheus text format): metron_notifications_total{type, outcome}.
 * Written into out (capacity cap, NUL-terminated); returns the bytes
 * written (0 when cap is too small: nothing is cut mid-line).
 */
size_t mt_notify_metrics(char *out, size_t cap);

/*
 * X-Metron-Signature's value ("sha256=" and 64 hex digits) for ts and the
 * len bytes of body under secret, into out (72 bytes). MT_OK; -ENOMEM;
 * MT_ECRYPTO when OpenSSL's HMAC fails (out is then "", never a partial
 * signature). Fault point "webhook.sign" (mt_fault.h) fails it in tests.
 */
int mt_webhook_sign(const char *secret, const char *ts, const char *body, size_t len, char out[72]);

#endif
