/*
 * mt_events.h — security events and business KPIs: points of the
 * measurements `security_event` and `business_kpi`, as any agent writes
 * them to metrond (the tenant from its token, as every point), mirrored as
 * rows of monitoring.security_events and monitoring.business_metrics
 * (schema version 8; docs/postgres.md, "Security events and KPIs").
 *
 * The minute mirror (mt_minute.h) calls mt_events_send for the span of
 * each chunk of dirty minutes, inside the chunk's transaction, so these
 * rows ride its exactly-once machinery: the engine's commit floor makes a
 * crash of metrond re-send the minutes, a failed transaction leaves them
 * dirty, and each row's id is md5 of its natural key, so a re-send is an
 * upsert of the same row (ON CONFLICT (id) DO UPDATE).
 *
 * security_event — one row per point (measurement, tags, timestamp; its
 * fields are one event):
 *   tags    business_id (required: the column is NOT NULL; from the token),
 *           event_type (required), event_category (default 'other'),
 *           severity (default 'medium'), source (event_source; default the
 *           host tag, else 'unknown'), source_ip (ip_address), user
 *           (user_id), session (session_id), detection_method,
 *           response_action; any other tag goes into event_data
 *   fields  description (string; default the event_type), user_agent
 *           (string), risk_score (integer 0..100), blocked (is_blocked),
 *           requires_notification (booleans); any other field goes into
 *           event_data
 *   A value the column cannot take (a user or session that is not a UUID,
 *   a source_ip that is no IPv4/IPv6 address, a risk_score out of 0..100)
 *   goes into event_data under its own name instead; texts longer than
 *   their VARCHAR are cut (left(), by characters). A person's
 *   investigation_status and notification_sent are never overwritten.
 *
 * business_kpi — one row per series and period:
 *   tags    business_id (required), metric_name (required), period
 *           (hour|hourly, day|daily, week|weekly, month|monthly; default
 *           daily; stored as the seed's hourly/daily/weekly/monthly),
 *           industry (industry_vertical; default 'general'), category
 *           (metric_category; default the [kpi] section's, else 'kpi'); any
 *           other tag is a dimension (one series, one metric)
 *   fields  value (required), target (optional: target_value for the
 *           period, overriding the configuration)
 *   Periods are UTC: hours, days, ISO weeks (from Monday), calendar months.
 *   current_value is the period's last value (by timestamp), previous_value
 *   the previous period's last value of the same series; percentage_change
 *   = (current - previous) / |previous| * 100 (NULL when previous is 0 or
 *   absent, or past the column's NUMERIC(8,4)); trend_direction 'up' or
 *   'down' past stable_percent (default 0) either way, else 'stable'; NULL
 *   without a previous period. A point in period P rewrites P's row and
 *   P+1's when it has one (its previous changed). Values outside
 *   NUMERIC(15,4) skip their row (counted).
 *
 * Rows that cannot be formed (no business_id, not a UUID, no event_type or
 * metric_name, an unknown period) are skipped, counted and logged
 * (rate-limited): the mirror never stops on them.
 *
 * Configuration, metrond's config file, one section per KPI name
 * ([kpi orders_per_day] or [kpi.orders_per_day]): target, is_kpi (default
 * true: a business_kpi point is a KPI unless said otherwise),
 * alert_threshold, category, stable_percent.
 */
#ifndef MT_EVENTS_H
#define MT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_pg.h"

#define MT_EVENTS_MEASUREMENT "security_event"
#define MT_KPI_MEASUREMENT    "business_kpi"

/* The [kpi NAME] sections of a config file. */
typedef struct mt_events_conf mt_events_conf;

/* An empty configuration. MT_OK and *out, or -ENOMEM. */
int mt_events_conf_new(mt_events_conf **out);

/* Free c. NULL is a no-op. */
void mt_events_conf_free(mt_events_conf *c);

/*
 * Whether an INI section names a KPI: "kpi NAME" or "kpi.NAME"; *name
 * points into section (NUL-terminated).
 */
bool mt_events_kpi_section(const char *section, const char **name);

/*
 * Set key = value of KPI name (target, is_kpi, alert_threshold, category,
 * stable_percent). MT_OK, MT_EINVAL (unknown key, a bad value, a name or
 * category too long for the columns: the reason in err, capacity cap), or
 * -ENOMEM.
 */
int mt_events_conf_set(mt_events_conf *c, const char *name, const char *key, const char *value,
                       char *err, size_t cap);

/* Number of KPIs configured. */
size_t mt_events_conf_count(const mt_events_conf *c);

typedef struct mt_events_counts {
    uint64_t events;  /* security_events rows upserted */
    uint64_t kpis;    /* business_metrics rows upserted */
    uint64_t skipped; /* points or periods that made no row (see above) */
} mt_events_counts;

/*
 * Upsert the rows of the points of e in [from, to) (ns) on pg, inside the
 * caller's open transaction (nothing is committed here). conf may be NULL
 * (no [kpi] section). *out is added to. MT_OK, MT_EPG (the transaction
 * must be rolled back), MT_ECORRUPT (a damaged hour), -ENOMEM.
 * Threads: the caller's (the mirror's thread).
 */
int mt_events_send(mt_pg *pg, mt_engine *e, const mt_events_conf *conf, int64_t from, int64_t to,
                   mt_events_counts *out);

#endif
