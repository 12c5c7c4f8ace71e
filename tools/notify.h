/*
 * notify.h — webhooks for alert changes (tools/ only): a worker thread
 * that POSTs each notification as JSON with libcurl, so neither the
 * network loop nor the alert evaluation waits on a receiver.
 *
 * Each request carries X-Metron-Timestamp (unix seconds) and
 * X-Metron-Signature: sha256=<hex HMAC-SHA256 over "timestamp.body" with
 * the endpoint's secret>, so a receiver can check the sender and refuse
 * replays. A request that fails (no answer within the endpoint's timeout,
 * or a status outside 2xx) is tried again, retry_attempts times, after
 * 1 s, 2 s, 4 s ... (retry_base_ms). Beyond rate_limit_per_hour
 * notifications an hour an endpoint gets no more (counted, logged).
 */
#ifndef MT_NOTIFY_H
#define MT_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mt_webhook {
    char name[104];
    char url[1024];
    char secret[256];
    int retry_attempts;      /* default 3 */
    int timeout_s;           /* default 30 */
    int rate_limit_per_hour; /* default 10 (0: no limit) */
    int retry_base_ms;       /* the first backoff, doubling (default 1000) */
} mt_webhook;

/* The defaults above. */
mt_webhook mt_webhook_default(void);

typedef struct mt_webhook_stats {
    uint64_t total, successful, failed, rate_limited;
    int64_t last_success_ns, last_failure_ns;
} mt_webhook_stats;

typedef struct mt_notifier mt_notifier;

/* Start the worker for these endpoints (copied). MT_OK, -ENOMEM or -errno. */
int mt_notifier_start(const mt_webhook *hooks, size_t n, mt_notifier **out);

/* Queue body (JSON, copied) for every endpoint; never blocks on the network. */
void mt_notifier_send(mt_notifier *nf, const char *body);

/* Deliver what is queued (with retries), then stop and free. NULL is a no-op. */
void mt_notifier_stop(mt_notifier *nf);

/* Endpoint i's counters. */
void mt_notifier_stats(mt_notifier *nf, size_t i, mt_webhook_stats *out);

/* X-Metron-Signature's value for ts and body under secret, into out (72 bytes). */
void mt_webhook_sign(const char *secret, const char *ts, const char *body, char out[72]);

#endif
