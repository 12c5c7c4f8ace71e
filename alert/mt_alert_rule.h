/*
 * mt_alert_rule.h — alert rules evaluated against the store, and the lifecycle
 * of the alerts they raise. Pure: the clock is an argument, nothing is
 * sent or stored here (metrond mirrors and notifies).
 *
 * A rule has the columns of the seed's monitoring.alert_rules. Its
 * metric_name is a selector (mt_query.h): "cpu.usage_idle" or
 * "cpu.usage_idle{host=~\"web.*\"}"; a rule with a business_id only sees
 * that tenant's series. Every series the selector matches is its own alert
 * instance (a system-wide rule no longer averages all tenants together),
 * and belongs to its series' tenant (the series' business_id tag), not to
 * the rule's: a rule without a tenant applies to each tenant's series, and
 * each of its alerts is that series' tenant's.
 *
 * Each evaluation at time now aggregates each series over
 * [now - evaluation_window, now) (avg unless the rule says otherwise) and:
 *   threshold  compares the aggregate with critical_threshold, then
 *              warning_threshold, by comparison_operator (gt lt eq ne gte
 *              lte): the first breached names the severity;
 *   trend      compares the change per hour of the aggregate, between the
 *              window ending trend_period ago and the current one;
 *   anomaly    compares |z|, the current aggregate against the baseline of
 *              the 12 windows before it (mean and standard deviation), with
 *              the thresholds (default warning 2, critical 3 standard
 *              deviations) scaled by (2 - anomaly_sensitivity): a rule of
 *              sensitivity 1 fires at the thresholds, of 0 at twice them.
 * A series without points in the window has no data: the rule's no-data
 * policy says whether that is ignored (the alert stays as it is), raises a
 * critical alert, or keeps the state (the default, as ignore, but named).
 * business_hours_only rules are evaluated Monday to Friday, 09:00-17:00
 * UTC only.
 *
 * The lifecycle (mt_alert_step): none -> active (fired) -> resolved when
 * the condition clears; an active alert's severity follows the breaches;
 * acknowledged (set by a person in PostgreSQL) stops the repeated
 * notifications but resolves like an active one; a notification repeats
 * at most every cooldown_period while the alert stays active. Inside one
 * of the rule's silence windows a breach is recorded as suppressed and
 * notifies nobody; breached still when the window ends, it fires.
 */
#ifndef MT_ALERT_RULE_H
#define MT_ALERT_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_query.h"

typedef enum mt_cmp { MT_CMP_GT, MT_CMP_LT, MT_CMP_EQ, MT_CMP_NE, MT_CMP_GTE, MT_CMP_LTE } mt_cmp;
typedef enum mt_cond { MT_COND_THRESHOLD, MT_COND_TREND, MT_COND_ANOMALY } mt_cond;
typedef enum mt_nodata { MT_NODATA_KEEP, MT_NODATA_IGNORE, MT_NODATA_ALERT } mt_nodata;
typedef enum mt_severity { MT_SEV_NONE, MT_SEV_WARNING, MT_SEV_CRITICAL } mt_severity;

#define MT_ALERT_BASELINE_WINDOWS 12
#define MT_ALERT_MAX_SILENCES     8
#define MT_ALERT_MAX_ESCALATIONS  8

/* One level of a rule's escalation_rules: still active (unacknowledged) after_ns after it
   fired, an alert is also sent to these channels. */
typedef struct mt_alert_escalation {
    int64_t after_ns;   /* since triggered_at */
    char channels[256]; /* ids or names of channels or endpoints, '\n'-separated */
} mt_alert_escalation;

typedef struct mt_alert_rule {
    char id[40];          /* alert_rules.id */
    char business_id[40]; /* "": system-wide */
    char name[104];       /* rule_name */
    char metric[512];     /* metric_name: a selector */
    char channels[512];   /* notification_channels: ids or names, comma-separated; "": every one */
    mt_cond cond;
    mt_agg agg;        /* over the window (default avg) */
    int64_t window_ns; /* evaluation_window (default 5 min) */
    bool has_warning, has_critical;
    double warning, critical;
    mt_cmp op;
    int64_t trend_period_ns;    /* trend: how far back the earlier window ends (default 1 h) */
    double anomaly_sensitivity; /* anomaly: 0..1 (default 1) */
    int64_t cooldown_ns;        /* cooldown_period (default 15 min) */
    bool business_hours_only;
    mt_nodata nodata;
    int64_t silence_from[MT_ALERT_MAX_SILENCES], silence_to[MT_ALERT_MAX_SILENCES]; /* [from, to) */
    size_t nsilences;
    mt_alert_escalation escalations[MT_ALERT_MAX_ESCALATIONS]; /* ascending after_ns */
    size_t nescalations;
} mt_alert_rule;

/*
 * Add an escalation level "AFTER: CHANNEL, CHANNEL" (channels separated by
 * commas or line breaks). AFTER is a duration ("90s", "15m", "1h") or a
 * number of minutes, fractions allowed ("0.05" is 3 s). Levels are kept in
 * ascending order of AFTER (level 1 the earliest). false when bad (no
 * channel, a negative time, names past 255 bytes) or full.
 */
bool mt_alert_rule_add_escalation(mt_alert_rule *r, const char *text);

/* Add a silence window "FROM/TO" (RFC 3339 or epoch seconds). false when bad or full. */
bool mt_alert_rule_add_silence(mt_alert_rule *r, const char *text);

/* A rule with the seed's defaults: threshold, avg, 5 min window, 15 min cooldown. */
mt_alert_rule mt_alert_rule_default(void);

/* Parse the seed's names ("gt", "threshold", "ignore" ...), lower case. true on success. */
bool mt_cmp_parse(const char *s, mt_cmp *out);
bool mt_cond_parse(const char *s, mt_cond *out);
bool mt_nodata_parse(const char *s, mt_nodata *out);
const char *mt_cmp_name(mt_cmp c);
const char *mt_severity_name(mt_severity s);

/*
 * Check a rule: a valid selector (metric_name, scoped to business_id, parses
 * as mt_alert_evaluate parses it), thresholds the condition needs, an
 * operator for threshold and trend, positive window. MT_OK, MT_EINVAL with
 * the reason in err, or -ENOMEM.
 */
int mt_alert_rule_check(const mt_alert_rule *r, char *err, size_t errcap);

/* One series' evaluation. */
typedef struct mt_alert_eval {
    const char *series;      /* as line protocol; valid during the callback */
    const char *business_id; /* the series' tenant (its business_id tag), "" when it has none;
                                valid during the callback */
    bool nodata;             /* no point in the window (value, severity meaningless) */
    double value;            /* the aggregate, the change per hour, or |z| */
    mt_severity severity;
    double threshold; /* the threshold breached (NaN when none) */
} mt_alert_eval;

/*
 * Evaluate r at now: fn(ud, ev) for each matched series (in series order).
 * A rule with a business_id is called for that tenant's series only (its
 * selector is scoped, and each series' tenant checked again). Returns MT_OK; MT_EPARSE (selector)
 * with the reason in err; an engine error; or fn's non-zero result. A rule outside business hours
 * calls fn for nothing.
 */
int mt_alert_evaluate(mt_engine *e, const mt_alert_rule *r, int64_t now,
                      int (*fn)(void *ud, const mt_alert_eval *ev), void *ud, char *err,
                      size_t errcap);

/* True when now is in business hours (Monday-Friday 09:00-17:00 UTC). */
bool mt_alert_business_hours(int64_t now);

typedef enum mt_alert_status {
    MT_ALERT_NONE,
    MT_ALERT_ACTIVE,
    MT_ALERT_ACKNOWLEDGED,
    MT_ALERT_RESOLVED,
    MT_ALERT_SUPPRESSED, /* breached inside a silence window: kept, not notified */
} mt_alert_status;

/* One alert instance: a rule and a series. */
typedef struct mt_alert_state {
    mt_alert_status status;
    mt_severity severity;
    int64_t triggered_at, resolved_at, notified_at; /* ns; 0: never */
    double value, threshold;                        /* at the last evaluation that breached */
    uint32_t notifications;
} mt_alert_state;

typedef enum mt_alert_change {
    MT_CHANGE_NONE,
    MT_CHANGE_FIRED,      /* a new alert: notify */
    MT_CHANGE_SEVERITY,   /* severity changed while active: notify */
    MT_CHANGE_RENOTIFY,   /* still active past the cooldown: notify again */
    MT_CHANGE_RESOLVED,   /* the condition cleared: notify */
    MT_CHANGE_UPDATED,    /* value changed, no notification */
    MT_CHANGE_SUPPRESSED, /* breached inside a silence: recorded, no notification */
} mt_alert_change;

/* Apply one evaluation to an alert's state at now; says what changed. */
mt_alert_change mt_alert_step(const mt_alert_rule *r, mt_alert_state *s, const mt_alert_eval *ev,
                              int64_t now);

/*
 * An alert instance as metrond keeps it (mt_engine_state_put) and the sink
 * mirrors it: the rule's fields monitoring.alert_rules needs, the series,
 * the state, and a stable id (the same alert re-mirrored is the same row).
 */
typedef struct mt_alert_record {
    char alert_id[40];
    mt_alert_rule rule;
    char series[1024];
    char business_id[40]; /* the series' tenant ("": none), which the alert belongs to */
    mt_alert_state st;
} mt_alert_record;

/*
 * Its state key: 'A', the rule id, 0, the series; past MT_ALERT_KEY_MAX
 * bytes (LMDB's longest key), '#' and 32 hex digits of the series' hash in
 * place of the series (no series starts with '#'). *len set; MT_ELIMIT
 * when cap is short.
 */
#define MT_ALERT_KEY_MAX 511
int mt_alert_record_key(const char *rule_id, const char *series, char *out, size_t cap,
                        size_t *len);

/* A UUID for an alert instance, from its rule, series and time of firing. */
void mt_alert_id(const char *rule_id, const char *series, int64_t triggered_at, char out[37]);

/*
 * The header and one row of the alert listing (tab-separated, for metron
 * alerts), into out; the alert's business_id is the last column.
 */
const char *mt_alert_listing_header(void);
void mt_alert_record_row(const mt_alert_record *r, char *out, size_t cap);

/*
 * Serialize (*buf malloc'd, the caller frees) and read back: MT_OK, -ENOMEM,
 * MT_ECORRUPT. Records of version 1 (before the alert had a tenant of its
 * own) read back with the rule's business_id; metrond sets the series'
 * at the next evaluation.
 */
int mt_alert_record_encode(const mt_alert_record *r, uint8_t **buf, size_t *len);
int mt_alert_record_decode(const void *buf, size_t len, mt_alert_record *r);

#endif
