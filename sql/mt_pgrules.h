/*
 * mt_pgrules.h — alert rules followed in monitoring.alert_rules, and
 * acknowledgements read back from monitoring.alerts: a thread with its own
 * connection that LISTENs on metron_alert_rules and metron_alerts (the
 * schema's triggers notify them) and reads again at every notification,
 * and every poll interval as a safety net (a notification sent while
 * disconnected is lost).
 *
 * condition_definition may carry {"aggregation": "p95", "no_data":
 * "alert", "silences": [{"from": T, "to": T}]} (times RFC 3339).
 * A rule's notification_channels (a JSON array of channel or endpoint
 * ids or names: strings, or objects with "id" or "name") become its
 * channels. It also reads the active webhook endpoints and every active
 * notification channel as endpoints of the alert module's notifier
 * (mt_webhook, mt_notify.h: a channel it cannot deliver carries why in
 * unusable, an event type it does not know in unknown_event, for the
 * caller to say once), each with its business_id and event_types (a
 * channel's in configuration->'event_types'), and writes back the
 * endpoints' call statistics (total, successful, failed calls, last
 * success and failure) and the channels' current_hour_count and
 * last_reset_at.
 * escalation_rules (a JSON array of {"after_minutes": N, "channels":
 * [ids or names]}) become the rule's escalation levels; a level it cannot
 * read skips the rule, with a log line.
 * Rules of category 'metron' are the sink's copies of a local file's
 * rules and are not followed. A rule Metron cannot evaluate (a 'pattern'
 * rule, a threshold rule without an operator, a bad selector) is skipped
 * with a log line; the others still run (the seed's evaluation stopped at
 * the first bad rule).
 */
#ifndef MT_PGRULES_H
#define MT_PGRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_alert.h"

typedef struct mt_pgrules mt_pgrules;

/* Calls made since the last write-back, and the times of the last outcomes (0: none). */
typedef struct mt_pg_endpoint_delta {
    uint64_t total, successful, failed;
    int64_t last_success_ns, last_failure_ns;
} mt_pg_endpoint_delta;

typedef struct mt_pgrules_callbacks {
    void (*rules)(void *ud, const mt_alert_rule *rules, size_t n); /* the whole set, each read */
    void (*acknowledged)(void *ud, const char *alert_id);          /* an acknowledged alert */
    void (*endpoints)(void *ud, const mt_webhook *e, size_t n);    /* the active set, each read */
    /* what to add to the statistics of webhook endpoint id (false: nothing) */
    bool (*endpoint_delta)(void *ud, const char *id, mt_pg_endpoint_delta *out);
    /* notification channel id's rate-limit count: *count sent in the hour starting at
     *hour_start_ns (false: nothing to write; NULL callback: never written) */
    bool (*channel_count)(void *ud, const char *id, int *count, int64_t *hour_start_ns);
    void *ud;
} mt_pgrules_callbacks;

/* Start following (conninfo copied; poll_ns 0: 60 s). MT_OK, MT_EINVAL, -ENOMEM, -errno. */
int mt_pgrules_start(const char *conninfo, int64_t poll_ns, const mt_pgrules_callbacks *cb,
                     mt_pgrules **out);

/* Stop and free (the callbacks are not called after). NULL is a no-op. */
void mt_pgrules_stop(mt_pgrules *p);

#endif
