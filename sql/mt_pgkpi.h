/*
 * mt_pgkpi.h — business KPIs computed by user-defined SQL on the
 * application's own tables: what metron-pgstat runs every interval for
 * each [kpi.NAME] section of its config (the seed's
 * collect_business_metrics(), whose SQL depended on tables of one
 * application, as configuration; the sql_exporter convention: a query per
 * metric, named columns).
 *
 *   [kpi.orders_today]
 *   query    = SELECT count(*) AS value FROM orders
 *              WHERE created_at >= date_trunc('day', now())   ; indented: the query goes on
 *   period   = day          ; hour, day, week, month (default day)
 *   industry = retail       ; industry_vertical (default general)
 *   category = sales        ; metric_category (optional: metrond's [kpi NAME] or 'kpi')
 *   target   = 150          ; optional: sent as the point's target field
 *   pg       = postgresql://monitor@db1/app   ; optional: where to run it (default: the first --pg)
 *
 * The query's columns, by name: `value` (required: a number; a row whose
 * value is NULL or not finite is skipped), `time` (optional: a timestamptz,
 * or epoch seconds, that stamps the point, so one query may answer several
 * periods; default the collection time), `business_id` (optional: the row's
 * tenant; default metron-pgstat's --business-id), and any other column
 * becomes a tag (a dimension of the KPI: one series per value). Each row is
 * one line:
 *
 *   business_kpi,business_id=..,category=..,industry=..,metric_name=NAME,period=..[,col=..]
 *     value=V[,target=T] TIME
 *
 * which metrond mirrors into monitoring.business_metrics (mt_events.h).
 * The query text is the operator's SQL, run as written inside
 * SELECT ... FROM (query) q (a trailing semicolon is dropped); give the
 * role that runs it SELECT on those tables only.
 *
 * A query that fails is logged with the KPI's name and the server's text,
 * and the other KPIs go on.
 */
#ifndef MT_PGKPI_H
#define MT_PGKPI_H

#include <stddef.h>
#include <stdint.h>

#include "mt_pg.h"

typedef struct mt_pgkpi mt_pgkpi;

/* No KPIs yet. MT_OK and *out, or -ENOMEM. */
int mt_pgkpi_new(mt_pgkpi **out);

/* Free k and close the connections of its KPIs. NULL is a no-op. */
void mt_pgkpi_free(mt_pgkpi *k);

/*
 * Set key = value of KPI name (query, period, industry, category, target,
 * pg). A second `query` of the same KPI continues the first on a new line
 * (inih hands an indented continuation line over so; its lines are at
 * most 200 bytes). MT_OK, MT_EINVAL (unknown key or bad value; the reason in err,
 * capacity cap) or -ENOMEM.
 */
int mt_pgkpi_set(mt_pgkpi *k, const char *name, const char *key, const char *value, char *err,
                 size_t cap);

/*
 * Check that every KPI has a query. MT_OK, or MT_EINVAL with the name of
 * the first that lacks one in err.
 */
int mt_pgkpi_check(const mt_pgkpi *k, char *err, size_t cap);

/* Number of KPIs. */
size_t mt_pgkpi_count(const mt_pgkpi *k);

/*
 * Run every KPI's query (on dflt, or on its own pg, connected when needed)
 * and append its lines to *buf (malloc'd, grown; *len, *cap updated).
 * business_id: the tenant of rows without a business_id column (NULL:
 * none). now: the time of rows without a time column (ns). *failed gets
 * the number of KPIs whose query failed (logged). MT_OK or -ENOMEM.
 */
int mt_pgkpi_collect(mt_pgkpi *k, mt_pg *dflt, const char *business_id, int64_t now, char **buf,
                     size_t *len, size_t *cap, size_t *failed);

#endif
