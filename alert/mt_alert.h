/*
 * mt_alert.h — the alert module's contract: the one header code outside
 * alert/ includes. Alerts are rules evaluated against the store, alert
 * instances stepped through their lifecycle and kept on disk, and the
 * notifications their changes send. The module sits below sql/ and the
 * server (they use its types: sql/ reads endpoints into mt_webhook) and
 * above query/ (it evaluates through mt_query.h); it is the only user of
 * libcurl and OpenSSL's HMAC among the libraries.
 *
 * Its parts, each declared in its own header below (read them for the
 * contract of each function; they include each other, never this one):
 *
 *   mt_alert_rule.h  rules, their evaluation at a given time, the lifecycle
 *                    of one alert (mt_alert_step), the stored record. Pure:
 *                    nothing is sent or written. Prefixes mt_alert_, and the
 *                    enum parsers mt_cmp_, mt_cond_, mt_nodata_, mt_severity_.
 *   mt_alerting.h    the alert loop: rounds of evaluation, every change kept
 *                    in the data directory (mt_engine_state_put) and queued
 *                    for the sink, reloaded at open; escalation. mt_alerting_.
 *   mt_notify.h      delivery: endpoints (mt_webhook_), routing, signing
 *                    (X-Metron-Signature), retries, rate limits, a worker
 *                    thread (mt_notifier_), counters for /metrics (mt_notify_).
 *   mt_channel.h     what each channel type sends and how: signed webhook,
 *                    Slack, PagerDuty, email over SMTP, SMS gateway
 *                    (mt_channel_), and the JSON they are written in
 *                    (mt_channel_json, mt_channel_num, into an mt_sbuf).
 *
 * Reading rules and endpoints from a file is the configuration library's
 * (tools/rules.h); from PostgreSQL, sql/mt_pgrules.h's.
 */
#ifndef MT_ALERT_H
#define MT_ALERT_H

#include "mt_alert_rule.h"
#include "mt_alerting.h"
#include "mt_channel.h"
#include "mt_notify.h"

#endif
