/*
 * mt_pgstat.h — PostgreSQL's own statistics as line protocol: what
 * metron-pgstat reads every interval from each server it watches.
 *
 * Measurements (tags server, db, and business_id when one is given):
 *   pg_stmt       per pg_stat_statements entry of the top N by execution
 *                 time in the interval (tag queryid, rank), and one
 *                 queryid=other for the rest: calls, total_exec_ms,
 *                 rows, shared/local/temp blocks, block read/write ms as
 *                 deltas of the interval; mean_exec_ms of the interval;
 *                 max_exec_ms, stddev_exec_ms as the view reports them
 *   pg_activity   connections by state (tag state); longest transaction
 *                 and query age (s), sessions waiting on a lock
 *   pg_locks      locks not granted
 *   pg_database   cache hit ratio, and commits, rollbacks, temp bytes,
 *                 tuples, deadlocks, conflicts (deltas); size_bytes
 *   pg_bgwriter / pg_checkpointer, pg_wal (what the server version has)
 *   pg_replication per standby (tag client): lag_bytes, replay_lag_s;
 *                 on a standby: replay_delay_s
 *
 * Counters become deltas against the previous collection on the same
 * state: a counter that went down (pg_stat_statements_reset, an evicted
 * and re-added entry, a server restart) counts from zero, never negative.
 * The first collection only takes the baseline of the counters.
 */
#ifndef MT_PGSTAT_H
#define MT_PGSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_pg.h"

typedef struct mt_pgstat mt_pgstat;

typedef struct mt_pgstat_options {
    const char *server;      /* the server tag ("db1:5432") */
    const char *business_id; /* NULL: no tag */
    size_t top;              /* statements kept apart (default 20); the rest is "other" */
    bool this_db_only;       /* statements of the connected database only (default: all) */
    const char *host;        /* the database host's name as host agents tag it (Telegraf's
                                host tag), for system_health's cpu, memory and disk; NULL:
                                the host part of server */
} mt_pgstat_options;

/* The state of one server's counters. MT_OK or -ENOMEM. */
int mt_pgstat_new(const mt_pgstat_options *opt, mt_pgstat **out);
void mt_pgstat_free(mt_pgstat *s);

/*
 * Read the statistics of pg at time now (ns) and append line protocol to
 * *buf (malloc'd, grown; *len, *cap updated). Views the server lacks (an
 * older version, pg_stat_statements not installed) are left out. MT_OK,
 * MT_EPG (a query that should work failed), -ENOMEM.
 */
int mt_pgstat_collect(mt_pgstat *s, mt_pg *pg, int64_t now, char **buf, size_t *len, size_t *cap);

/* One top statement of the last collection (for query_performance): rank 1 first. */
typedef struct mt_pgstat_stmt {
    int64_t queryid;
    char query[1024];
    uint64_t calls;
    double total_ms, mean_ms, max_ms, stddev_ms;
    uint64_t rows, shared_hit, shared_read, shared_dirtied, shared_written;
} mt_pgstat_stmt;

/* The top statements of the last collection; valid until the next one. */
const mt_pgstat_stmt *mt_pgstat_top(const mt_pgstat *s, size_t *n);

/*
 * The server's health at the last collection, as monitoring.system_health
 * takes it. health_score starts at 100 and loses: 20 for a cache hit ratio
 * under 0.90 (10 under 0.99), 5 per session waiting on a lock (at most
 * 20), 10 when deadlocks happened since the previous collection, 20 for a
 * replication lag over 30 s (10 over 5 s), 10 when connections pass 80%
 * of max_connections. status: healthy from 80, warning from 50, critical
 * below.
 */
typedef struct mt_pgstat_health {
    int connections, active, idle, max_connections, locks_waiting;
    int64_t deadlocks; /* cumulative, of the connected database */
    double cache_hit_ratio, index_hit_ratio, replication_lag_s; /* NaN: unknown */
    int score;
    const char *status;
} mt_pgstat_health;

const mt_pgstat_health *mt_pgstat_last_health(const mt_pgstat *s);

/*
 * Write the last collection into sink's monitoring schema: the top
 * statements into query_performance (performance_category by mean time:
 * excellent < 10 ms, good < 50, acceptable < 200, poor < 1000, else
 * critical; is_problematic when the mean passes 200 ms — not, as the seed
 * had it, whenever a statement ran fewer than 5 times) and one row into
 * system_health, whose cpu_usage_percent, memory_usage_percent,
 * disk_usage_percent, alerts_active and last_alert_at come from
 * monitoring.host_health(host, business_id, server) (schema version 8: the
 * host's cpu/mem/disk minute rows, Metron's alerts on its series). One
 * transaction. MT_OK or MT_EPG.
 */
int mt_pgstat_write(const mt_pgstat *s, mt_pg *sink, int64_t now);

#endif
