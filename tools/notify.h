/*
 * notify.h — webhooks for alert changes (tools/ only): a worker thread
 * that POSTs each notification as JSON with libcurl, so neither the
 * network loop nor the alert evaluation waits on a receiver.
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
 * to the endpoints they name (by id or name).
 */
#ifndef MT_NOTIFY_H
#define MT_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* Event types, as monitoring.webhook_endpoints.event_types names them (one bit each). */
#define MT_WEBHOOK_FIRED    (1u << 0) /* "alert.fired": a new alert */
#define MT_WEBHOOK_SEVERITY (1u << 1) /* "alert.severity_changed": while active */
#define MT_WEBHOOK_REMINDER (1u << 2) /* "alert.reminder": still active after the cooldown */
#define MT_WEBHOOK_RESOLVED (1u << 3) /* "alert.resolved" */
#define MT_WEBHOOK_WARNING  (1u << 8) /* "warning": alerts of that severity */
#define MT_WEBHOOK_CRITICAL (1u << 9) /* "critical" */
#define MT_WEBHOOK_FILTERED                                                                        \
    (1u << 31)                       /* a list was given (names Metron does not know match none) */
#define MT_WEBHOOK_EVENTS     0x0fu  /* the change bits */
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
} mt_webhook;

/* The defaults above. */
mt_webhook mt_webhook_default(void);

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
    const char *business_id; /* the alert's tenant (its series'); "" none */
    unsigned event;          /* one MT_WEBHOOK_ change bit */
    unsigned severity;       /* MT_WEBHOOK_WARNING or _CRITICAL (0: none) */
    const char *channels;    /* the rule's notification_channels, '\n'-separated ids or names;
                                NULL or "": every endpoint */
    const char *delivery;    /* X-Metron-Delivery (at most 63 bytes) */
} mt_notice;

/* Whether w receives a notification about n (the rules in the header comment). Pure. */
bool mt_webhook_wants(const mt_webhook *w, const mt_notice *n);

typedef struct mt_webhook_stats {
    uint64_t total, successful, failed, rate_limited;
    uint64_t unsigned_; /* attempts not sent because the body could not be signed (in failed too) */
    int64_t last_success_ns, last_failure_ns;
} mt_webhook_stats;

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
 * X-Metron-Signature's value ("sha256=" and 64 hex digits) for ts and the
 * len bytes of body under secret, into out (72 bytes). MT_OK; -ENOMEM;
 * MT_ECRYPTO when OpenSSL's HMAC fails (out is then "", never a partial
 * signature). Fault point "webhook.sign" (mt_fault.h) fails it in tests.
 */
int mt_webhook_sign(const char *secret, const char *ts, const char *body, size_t len, char out[72]);

#endif
