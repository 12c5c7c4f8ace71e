/*
 * mt_sink.h — the durable SQL sink: a thread that drains the engine's
 * outbox (mt_engine.h) into PostgreSQL's monitoring schema.
 *
 * For each outbox entry (a sealed hour) it reads the hour's rollups as
 * they are now and upserts them — group rows into
 * monitoring.hourly_metrics_summary, series rows into
 * monitoring.series_hourly_summary — a batch of entries per transaction
 * (INSERT ... SELECT FROM unnest($arrays) ... ON CONFLICT DO UPDATE: values
 * travel as parameters, never in the SQL text). Entries are removed from
 * the outbox only after COMMIT returned. So the effect is exactly once:
 * a crash or a lost connection before the COMMIT leaves the entries to be
 * sent again, and sending again upserts the same rows to the same values;
 * an hour re-sealed after backfill is queued again and its rows replaced.
 *
 * PostgreSQL down, restarting or refusing: the batch is rolled back and
 * retried after an exponential backoff with jitter (0.25 s doubling to
 * 30 s); one log line per change of state (connected, lost, refused),
 * not one per try. A connection that is gone, or whose server no longer
 * takes writes (25xxx such as 25006 read-only, 57P01-57P03, 08xxx:
 * mt_pg_stale), is replaced before the retry, so that a URL listing every
 * host of a Patroni cluster with target_session_attrs=read-write follows a
 * switchover: the same batch lands on the new primary. The outbox
 * meanwhile keeps everything (its entries are references to hours: a few
 * dozen bytes each, one per sealed hour and per re-seal, so even a
 * PostgreSQL gone for a year holds it at ~9,000); past 90% of its budget
 * the sink says so, once, and nothing is dropped.
 *
 * Rows PostgreSQL never takes are quarantined, never lost and never
 * retried for ever (mt_quarantine.h): a row PostgreSQL refuses with a
 * permanent error (SQLSTATE class 22 or 23, or 54000: a check or not-null
 * constraint, a value out of range, an invalid encoding, an index row too
 * large) is found by sending the batch again with a savepoint per statement
 * and bisecting the statement refused, and is held in the data directory
 * with PostgreSQL's SQLSTATE and message while the rest of the batch
 * commits; so is a row the sink's own checks know PostgreSQL would refuse
 * (a business_id that is not a UUID, a measurement longer than 50 bytes or
 * a field longer than 100: the schema's column sizes). One log line per row
 * held (rate-limited). Other errors (connection lost, 40001/40P01, 53xxx,
 * 57xxx, 08xxx, a schema or privilege problem: 42xxx) keep the whole batch
 * waiting, retried with backoff. `metron sink quarantine list|retry` shows
 * and resends the rows held.
 *
 * At connect it installs or upgrades the schema (mt_schema_install) and
 * creates partitions ahead, and again every 24 h. With a retention
 * (opt.retain) it applies it right after connecting and then every
 * opt.retain_every_ns (mt_pgretain.h): whole partitions dropped, resolved
 * alerts deleted; one log line per pass that removed something.
 */
#ifndef MT_SINK_H
#define MT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_pgretain.h"

typedef struct mt_sink mt_sink;

typedef struct mt_sink_options {
    const char *conninfo;      /* libpq URL or key=value string (copied) */
    size_t batch_hours;        /* outbox entries per transaction (default 24) */
    int64_t idle_ns;           /* how often an empty outbox is looked at (default 200 ms) */
    int64_t retry_max_ns;      /* the longest backoff (default 30 s) */
    size_t outbox_budget;      /* entries: a warning when the outbox passes 90% of it, and when it
                                  is back under (default 100000: 11 years of hours) */
    const mt_pgretain *retain; /* how long PostgreSQL keeps each table (copied); NULL: for ever */
    int64_t retain_every_ns;   /* between two retention passes (0: never) */
    /* The minute mirror's hook (mt_minute_touch), or NULL. A range delete's hour has its
       minute rows deleted with its hourly ones (of the tenants its series belong to); after
       the COMMIT, and before the entry is acknowledged, the sink lowers the engine's commit
       floor to the hour (mt_engine_floor_lower: a crash still recomputes it) and touches each
       of its minutes, so the series the delete left get their minute rows back. */
    void (*touch)(void *ud, int64_t ts);
    void *touch_ud;
} mt_sink_options;

/* The defaults above, conninfo NULL. */
mt_sink_options mt_sink_options_default(void);

typedef struct mt_sink_stats {
    bool connected;
    uint64_t connects;         /* sessions opened (each reconnection after a lost connection,
                                  a switchover or a read-only server counts one) */
    uint64_t rows_delivered;   /* group and series rows upserted (committed) */
    uint64_t hours_delivered;  /* outbox entries acknowledged */
    uint64_t failures;         /* batches that failed (connection or server error) */
    uint64_t rows_skipped;     /* rows that could not even be formed: a series key or an alert
                                  record that does not decode (the engine reports the damage) */
    uint64_t rows_quarantined; /* rows held back (a row refused again on retry counts again) */
    size_t quarantine_held;    /* rows in the quarantine now */
    size_t outbox_depth;       /* entries waiting */
    double oldest_age_s;       /* age of the oldest entry waiting (0: none) */
} mt_sink_stats;

/*
 * Start the sink thread on engine e (opened with opt.outbox). MT_OK and
 * *out, MT_EINVAL (no conninfo), -ENOMEM, or -errno (thread).
 * PostgreSQL being down is not an error here: the sink retries.
 */
int mt_sink_start(mt_engine *e, const mt_sink_options *opt, mt_sink **out);

/*
 * Stop: finish (commit or roll back) the batch in flight, join the thread,
 * close the connection, free s. Entries not yet acknowledged stay in the
 * outbox for the next start. NULL is a no-op.
 */
void mt_sink_stop(mt_sink *s);

/* Counters (any thread). */
void mt_sink_stats_get(mt_sink *s, mt_sink_stats *out);

/* Bytes mt_sink_metrics needs at most. */
#define MT_SINK_METRICS_MAX 3072

/* The sink's lines of /metrics (Prometheus text: metron_sink_*) into buf, at most cap bytes,
   not terminated; the bytes written (0 when they do not fit). */
size_t mt_sink_metrics(mt_sink *s, char *buf, size_t cap);

/*
 * Replace opt.retain (copied; NULL: keep every table for ever) from the
 * next retention pass on, e.g. when metrond reloads its policy. A pass in
 * progress finishes with the old one. Any thread.
 */
void mt_sink_set_retain(mt_sink *s, const mt_pgretain *retain);

#endif
