/*
 * mt_pgretain.h — how long the PostgreSQL mirror keeps each table, and one
 * pass that applies it (schema version 9, monitoring.retain).
 *
 * Tables and their defaults (docs/operations.md, "PostgreSQL retention"):
 *
 *   performance_metrics     90d   month partitions (the seed's 'standard' policy; Metron's
 *                                 raw rows keep only postgres_raw_window, in hour partitions)
 *   query_performance       30d   month partitions
 *   system_health           30d   month partitions
 *   security_events         90d   month partitions
 *   hourly_metrics_summary 400d   month partitions (as the store's rollups)
 *   series_hourly_summary  400d   month partitions
 *   alerts                  90d   resolved alerts only, deleted (the table is not partitioned)
 *
 * A partitioned table loses whole partitions, never rows: a partition is
 * dropped once its upper bound is at or before now() - keep, so none that
 * may still hold a row inside the window ever goes, and a table keeps up to
 * a month more than its keep. The minute tables follow
 * postgres_minute_retention (mt_minute.h), not this.
 */
#ifndef MT_PGRETAIN_H
#define MT_PGRETAIN_H

#include <stdint.h>

#include "mt_pg.h"

typedef enum mt_pgretain_table {
    MT_PGR_PERFORMANCE_METRICS,
    MT_PGR_QUERY_PERFORMANCE,
    MT_PGR_SYSTEM_HEALTH,
    MT_PGR_SECURITY_EVENTS,
    MT_PGR_HOURLY_SUMMARY,
    MT_PGR_SERIES_SUMMARY,
    MT_PGR_ALERTS,
    MT_PGR_NTABLES
} mt_pgretain_table;

typedef struct mt_pgretain {
    int64_t keep_s[MT_PGR_NTABLES]; /* seconds kept, per table; 0: for ever */
} mt_pgretain;

/* The defaults above. */
void mt_pgretain_default(mt_pgretain *p);

/* The table's name in schema monitoring ("query_performance"); NULL past the last. */
const char *mt_pgretain_name(int table);

/*
 * Set one table's keep, by its name (as mt_pgretain_name gives it); keep_s
 * 0 keeps for ever. MT_OK, or MT_ENOTFOUND for a name that is no table here.
 */
int mt_pgretain_set(mt_pgretain *p, const char *name, int64_t keep_s);

typedef struct mt_pgretain_result {
    int64_t removed[MT_PGR_NTABLES]; /* partitions dropped; for alerts, rows deleted; -1: the
                                        table failed (its error was logged) */
    int failed;                      /* tables that failed */
} mt_pgretain_result;

/*
 * One pass over every table with a keep, each in its own statement (one
 * table's failure, a lock wait past 10 s say, changes nothing of it and
 * does not stop the others; each failure is logged with the table). MT_OK
 * when every table passed, else MT_EPG (the last error in mt_pg_errmsg) or
 * the connection's loss. Blocking; pg is the caller's thread's.
 */
int mt_pgretain_apply(mt_pg *pg, const mt_pgretain *p, mt_pgretain_result *res);

#endif
