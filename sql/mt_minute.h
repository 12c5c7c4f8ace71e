/*
 * mt_minute.h — the minute mirror: per-minute summaries of the points
 * committed, kept current in PostgreSQL (monitoring.metrics_minute per
 * group, monitoring.series_minute per series; schema version 5; and
 * monitoring.metrics_minute_all per (measurement, field) over every
 * tenant's points, which only the owner's roles read; version 6), so that
 * dashboards see now, not the last sealed hour, and their "all" adds up
 * (a true p95 of all the points, not a max of the tenants' p95s).
 *
 * Nothing is aggregated incrementally, so nothing is lost to a crash and
 * every send is the same row. The engine tells the mirror, after each
 * commit, which minutes the commit touched (mt_minute_touch, the engine's
 * opt.committed hook); every flush interval the mirror's thread recomputes
 * each touched ("dirty") minute from the stored points (mt_scan over every
 * series for [minute, minute + 60 s): head and hour files alike), and
 * upserts its rows in one transaction (INSERT ... SELECT FROM unnest(...)
 * ... ON CONFLICT DO UPDATE: values as parameters). Late points make their
 * minute dirty again; its rows are replaced. Dirty minutes go oldest first,
 * a chunk (up to 15 dirty minutes of one hour) per transaction, so the cost
 * is one scan of each series per chunk: proportional to the dirty minutes
 * (times the series), and memory holds one chunk's values.
 *
 * Crash safety comes from the engine's commit floor (mt_engine_floor_get):
 * at start every minute from the floor (at most postgres_minute_retention
 * back) to now is dirty; after each flush committed, the floor is raised to
 * the oldest minute still dirty (or the current one). A commit of a point
 * below the floor lowers it in its own transaction, so a point acknowledged
 * just before a kill -9 is mirrored after the restart. PostgreSQL down:
 * the minutes stay dirty, retried with backoff; caught up oldest first.
 *
 * Retention: minutes older than retention_ns are neither computed nor sent;
 * monitoring.minute_partitions(retention) drops whole day partitions past
 * it (and creates those ahead) at connect and every 10 minutes.
 *
 * Quantiles are PERCENTILE_CONT over every value of the minute and group
 * (mt_stats.h), equal to PostgreSQL's. Numeric series only (strings have no
 * summary). Rows PostgreSQL would refuse (a business_id not a UUID, a
 * measurement over 50 bytes, a field over 100) are counted in
 * rows_skipped, not sent: the hourly sink quarantines them (mt_sink.h).
 *
 * Raw rows (opt.raw, off by default; schema version 7): every point of a
 * complete minute (its end plus 1 s passed) within raw_window_ns is also a
 * row of the seed's monitoring.performance_metrics (source_schema 'metron',
 * metric_type 'gauge', the other tags as dimensions), sent in the same
 * transaction as the minute's summaries: the minute's rows with
 * source_schema 'metron' are deleted, then the points are COPYed, streamed
 * from a second scan of the minute (memory: one COPY buffer). So the floor
 * makes them exactly once too, and a late point re-sends its minute whole.
 * A minute still open is mirrored as summaries and stays dirty (without a
 * lag) until it is complete. A minute with more points than raw_max_rate *
 * 60 gets no raw rows (its old ones are deleted): counted, logged, flagged;
 * the store keeps every point and the summaries are sent as always.
 * monitoring.raw_partitions keeps hour partitions for the window (dropped
 * whole past it) at connect and every 10 minutes.
 *
 * Security events and KPIs (schema version 8, mt_events.h): the points of
 * the measurements security_event and business_kpi in each chunk's span
 * become rows of monitoring.security_events and business_metrics, upserted
 * in the chunk's transaction, so the floor makes them exactly once too.
 *
 * Threads: mt_minute_touch on the engine's writer thread; the rest from
 * any thread; one thread and one PostgreSQL connection of its own.
 */
#ifndef MT_MINUTE_H
#define MT_MINUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_events.h"

#define MT_MINUTE_NS (60LL * 1000000000LL)

typedef struct mt_minute mt_minute;

typedef struct mt_minute_options {
    const char *conninfo;  /* libpq URL or key=value string (copied) */
    int64_t flush_ns;      /* between flushes of dirty minutes (default 10 s); a minute just
                              ended is flushed at its end plus 1 s as well */
    int64_t retention_ns;  /* minute rows kept in PostgreSQL (default 48 h) */
    int64_t retry_max_ns;  /* longest backoff after a failure (default 30 s) */
    int64_t ahead_ns;      /* at start, minutes up to now + this are dirty too: points may be
                              ahead of the clock (metrond's max_future; default 10 min) */
    bool raw;              /* raw rows into monitoring.performance_metrics (default off) */
    int64_t raw_window_ns; /* raw rows kept (default 1 h; hour partitions: up to 1 h 10 more) */
    uint64_t raw_max_rate; /* points per second a minute may hold and still get raw rows
                              (default MT_MINUTE_RAW_RATE) */
    size_t values_max;     /* values a flush holds at once (16 bytes each, twice while they are
                              sorted; default 2^21): a chunk of minutes with more is scanned a
                              second time, (measurement, field) by (measurement, field) */
    size_t rows_max;       /* rows a transaction aims at (default 200,000): the minutes of one
                              chunk are cut to fit, from the rows of the last minute computed */
    const mt_events_conf *events; /* the [kpi] sections (borrowed: outlives the mirror); NULL:
                                     none. security_event and business_kpi points are
                                     mirrored either way (mt_events.h) */
} mt_minute_options;

/* The default raw_max_rate: half of what PostgreSQL 15 took here by COPY into
   performance_metrics (about 40,000 rows/s on 2 cores, docs/postgres.md). */
#define MT_MINUTE_RAW_RATE 20000

/* The defaults above, conninfo NULL. */
mt_minute_options mt_minute_options_default(void);

typedef struct mt_minute_stats {
    bool connected;
    uint64_t flushes;          /* transactions committed */
    uint64_t minutes_mirrored; /* minutes computed and committed (a minute again: again) */
    uint64_t rows_delivered;   /* group, series and system-wide rows upserted (committed) */
    uint64_t rows_skipped;     /* rows PostgreSQL's column types refuse: not sent */
    uint64_t failures;         /* transactions that failed and were retried */
    size_t minutes_pending;    /* dirty minutes waiting */
    uint64_t rows_pending;     /* an estimate: minutes pending times the rows of the last
                                  minute computed */
    double lag_s;              /* age of the oldest commit not yet mirrored (0: none) */
    double last_flush_s;       /* wall time of the last transaction, computing included */
    double flush_s;            /* wall time of every transaction committed, computing included */
    uint64_t points_read;      /* points scanned to compute minutes (cost) */
    uint64_t spilled;          /* transactions whose values did not fit values_max: their points
                                  read twice, (measurement, field) by (measurement, field) */
    uint64_t raw_rows;         /* raw rows committed into performance_metrics */
    uint64_t raw_minutes;      /* minutes whose raw rows were committed */
    uint64_t raw_skipped;      /* minutes over raw_max_rate: no raw rows */
    double raw_rate;           /* points per second of the last complete minute computed */
    bool raw_over;             /* that minute was over raw_max_rate */
    uint64_t events_rows;      /* security_events rows committed (a re-send: again) */
    uint64_t kpi_rows;         /* business_metrics rows committed */
    uint64_t events_skipped;   /* security_event / business_kpi points that made no row */
} mt_minute_stats;

/*
 * A mirror, not yet running: make it before opening the engine, whose
 * opt.committed = mt_minute_touch, opt.committed_ud = the mirror and
 * opt.committed_step_ns = MT_MINUTE_NS. MT_OK and *out, MT_EINVAL (no
 * conninfo), -ENOMEM.
 */
int mt_minute_new(const mt_minute_options *opt, mt_minute **out);

/* The engine's commit hook: the minute of ts is dirty. Any thread; never blocks for long. */
void mt_minute_touch(void *ud, int64_t ts);

/*
 * Start the thread on engine e (opened with the hook). MT_OK, MT_EINVAL
 * (started already) or -errno. PostgreSQL being down is not an error.
 */
int mt_minute_start(mt_minute *m, mt_engine *e);

/*
 * Stop: finish the transaction in flight (commit or roll back), join the
 * thread, close the connection, free m. Before mt_engine_close. Minutes
 * not mirrored are found again at the next start (the floor). NULL is a
 * no-op; so is a mirror never started (just freed).
 */
void mt_minute_stop(mt_minute *m);

/*
 * The busiest of the `minutes` complete minutes before now_ns in e's store,
 * in points per second (every series scanned), into *pps, and its start
 * into *at_ns (0 when none has a point): metrond refuses to start with raw
 * rows when it is over raw_max_rate. MT_OK or an engine error.
 */
int mt_minute_recent_rate(mt_engine *e, int64_t now_ns, int minutes, double *pps, int64_t *at_ns);

/* Counters (any thread). */
void mt_minute_stats_get(mt_minute *m, mt_minute_stats *out);

/* Bytes mt_minute_metrics needs at most. */
#define MT_MINUTE_METRICS_MAX 5120

/* The minute mirror's lines of /metrics (metron_minute_*, metron_events_*, and with raw the
   raw rows' metron_raw_*) into buf, at most cap bytes, not terminated; the bytes written
   (a group that does not fit is left out). */
size_t mt_minute_metrics(mt_minute *m, bool raw, char *buf, size_t cap);

#endif
