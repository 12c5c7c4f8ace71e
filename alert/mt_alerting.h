/*
 * mt_alerting.h — metrond's alert loop (alert/, public through mt_alert.h):
 * every alert_interval metrond calls it to evaluate the rules
 * (mt_alert_rule.h) at the wall clock, steps each
 * alert instance, and keeps every change in the data directory
 * (mt_engine_state_put), queued for the SQL sink when there is one, in the
 * same transaction. States are loaded at start, so a restart neither
 * forgets an open alert nor fires it twice.
 *
 * Escalation: after each round, an active (not acknowledged, not
 * resolved) alert that fired at least a level's after_ns ago is sent to
 * that level's channels (the rule's escalation_rules), once per level,
 * kept in the data directory so a restart sends none again. Levels are
 * checked at each round: one fires within alert_interval of its time.
 */
#ifndef MT_ALERTING_H
#define MT_ALERTING_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_alert_rule.h"
#include "mt_engine.h"
#include "mt_notify.h"

typedef struct mt_alerting mt_alerting;

/*
 * Take a copy of the rules; load the alert states of e. mirror: queue
 * changes for the sink. nf (may be NULL): the webhooks told of every
 * change worth a notification (fired, severity, reminder, resolved).
 */
int mt_alerting_new(mt_engine *e, const mt_alert_rule *rules, size_t n, bool mirror,
                    mt_notifier *nf, mt_alerting **out);

/* One round at now (a thread of the pool: it waits for the engine's writer). *changes may be NULL.
 */
int mt_alerting_run(mt_alerting *a, int64_t now, size_t *changes);

/* Replace the rules (copied), e.g. when they changed in PostgreSQL. Any thread. */
int mt_alerting_set_rules(mt_alerting *a, const mt_alert_rule *rules, size_t n);

/* Links in notifications point at base ("http://host:8086"): the alert's data as a query. */
void mt_alerting_set_link_base(mt_alerting *a, const char *base);

/* Tell nf (may be NULL) of the next changes instead; returns the one told before. Any thread. */
mt_notifier *mt_alerting_set_notifier(mt_alerting *a, mt_notifier *nf);

/*
 * The listing of metron alerts (open ones, or all), newest first: malloc'd
 * text, *len set. tenant: only the alerts of that business_id's series
 * (NULL: every tenant's, the system-wide ones included).
 */
char *mt_alerting_list(mt_alerting *a, bool all, const char *tenant, size_t *len);

/* A person acknowledged alert_id (in PostgreSQL): keep it so, without reminders. Any thread. */
void mt_alerting_acknowledge(mt_alerting *a, const char *alert_id);

/*
 * Keep one delivery (mt_notify.h) in monitoring.alerts.notifications_sent:
 * with mirroring on, it is queued in the outbox (MT_OUTBOX_NOTIFICATION)
 * and the sink appends it to the alert's row, once however often it is
 * replayed. Without mirroring, or for a notification without an alert,
 * nothing. The record is written as JSON {"channel", "channel_id",
 * "type", "event", "delivery", "at", "outcome", "attempts", "error"}
 * (docs/alerts.md). Any thread (the notifier's); a NULL a is a no-op.
 */
void mt_alerting_delivered(mt_alerting *a, const mt_notify_record *r);

void mt_alerting_free(mt_alerting *a);

#endif
