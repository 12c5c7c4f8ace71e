/*
 * rules.h — alert rules from a local file (tools/ only), for a Metron
 * without PostgreSQL. INI (inih), one section per rule, the keys the
 * columns of the seed's monitoring.alert_rules:
 *
 *   [rule cpu_high]
 *   metric_name = cpu.usage_user{host=~"web.*"}
 *   condition_type = threshold        ; threshold, trend, anomaly
 *   aggregation = avg                 ; over the window: avg, min, max, p95, ...
 *   evaluation_window = 5m
 *   warning_threshold = 80
 *   critical_threshold = 90
 *   comparison_operator = gt          ; gt lt eq ne gte lte
 *   cooldown_period = 15m
 *   business_id = <uuid>              ; optional: the tenant it watches
 *   trend_period = 1h                 ; trend
 *   anomaly_sensitivity = 0.8         ; anomaly, 0..1
 *   business_hours_only = false
 *   no_data = keep                    ; keep, ignore, alert
 *   silence = FROM/TO                 ; a silence window, RFC 3339; repeatable
 *   notification_channels = ops, pager ; optional: only these [webhook]s/[channel]s hear of it
 *   escalation = 15m: oncall-pd, boss ; repeatable: still active (unacknowledged) 15 min
 *                                     ; after firing, also to these; AFTER a duration or minutes
 *   id = <uuid>                       ; optional: default, derived from the name
 *
 * and the endpoints that hear of every alert change (mt_notify.h):
 *
 *   [webhook ops]
 *   url = https://hooks.example.com/metron
 *   secret_token = <shared secret for X-Metron-Signature>
 *   retry_attempts = 3
 *   timeout_seconds = 30
 *   rate_limit_per_hour = 10
 *   business_id = <uuid>              ; optional: that tenant's alerts only (else every one)
 *   event_types = alert.fired, alert.resolved ; optional: these only (mt_notify.h)
 *
 * and channels of the other types (mt_channel.h), the same keys plus:
 *
 *   [channel oncall-pd]
 *   type = pagerduty                  ; webhook, slack, pagerduty, email, sms
 *   routing_key = <integration key>   ; pagerduty (url: default PagerDuty's events URL)
 *   url = smtp://mail:587             ; email: smtp:// or smtps://; others: http(s)
 *   from = metron@example.com         ; email
 *   to = a@example.com, b@example.com ; email
 *   starttls = true                   ; email: require STARTTLS
 *   username = / password =           ; email: SMTP login
 *   ca_file = /etc/ssl/ca.pem         ; any TLS
 *   sms_to = +15550100                ; sms: {{to}}
 *   body_template = {"to":"{{to}}","text":"{{message}}"} ; sms
 *   content_type = application/json   ; sms
 *   auth_header = Authorization: Basic ... ; sms
 *
 * Unknown keys, bad values and rules that mt_alert_rule_check refuses are
 * errors that name the section and the key.
 */
#ifndef MT_RULES_H
#define MT_RULES_H

#include <stddef.h>

#include "mt_alert.h"

/*
 * Read every rule of path into *rules (malloc'd, *n of them) and every
 * webhook into *hooks (malloc'd, *nh; hooks may be NULL to refuse none). 0,
 * or -1 with the reason in err ("rules.ini:12: [rule cpu_high]
 * warning_threshold: not a number").
 */
int mt_rules_load(const char *path, mt_alert_rule **rules, size_t *n, mt_webhook **hooks,
                  size_t *nh, char *err, size_t errcap);

/* A stable UUID for a rule without one: from the hash of its name. */
void mt_rules_id_of(const char *name, char out[37]);

#endif
