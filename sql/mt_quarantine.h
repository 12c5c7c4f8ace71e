/*
 * mt_quarantine.h — rows PostgreSQL never takes, held in the data directory
 * instead of being lost or retried for ever (RELIABILITY.md promise 8).
 *
 * The sink (mt_sink.h) quarantines a row when PostgreSQL refuses that row
 * with a permanent error (mt_quar_permanent: SQLSTATE class 22 data
 * exception, class 23 integrity constraint violation, 54000 program limit,
 * e.g. an index row too large) or when its own checks know PostgreSQL would
 * (a business_id that is not a UUID, a measurement over 50 or a field over
 * 100 bytes). The rest of the batch lands in the same transaction.
 *
 * Where: engine state records (mt_engine_state_*), in the same LMDB
 * environment and transaction as the outbox acknowledgement, one per row:
 *
 *   key    'Q', table (1 byte: MT_QUAR_*), hour (i64 BE; 0 for alerts),
 *          XXH3-64 of the natural key text (BE)                 18 bytes
 *   value  u8 version (1), u8 table, i64 LE hour, i64 LE time refused,
 *          u32 LE refusals, 5 bytes SQLSTATE (NUL-padded; zeros: the
 *          sink's own check), u8 nparams, then the reason, the natural key
 *          and each parameter as u32 LE length (0xffffffff: SQL NULL),
 *          the bytes and a NUL; last, XXH3-64 (LE) of everything before.
 *
 * The record keeps the row itself: the parameters of the very upsert the
 * sink runs, with one-element arrays for the rollup tables. Sending it
 * again (mt_quar_send) is the same idempotent upsert on the same natural
 * key, so a retry can never duplicate a row. A row refused again replaces
 * its record (same key: refusals + 1, the new reason); a row of the same
 * natural key that lands later (the hour re-sent after backfill, the alert
 * changed) removes it, so a retry never brings back older values.
 *
 * Threading: as the engine (any thread) for the mt_engine functions; an
 * mt_pg is used by one thread at a time.
 */
#ifndef MT_QUARANTINE_H
#define MT_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_pg.h"

/* The table a row was meant for. */
typedef enum mt_quar_table {
    MT_QUAR_GROUPS = 'g', /* monitoring.hourly_metrics_summary */
    MT_QUAR_SERIES = 's', /* monitoring.series_hourly_summary */
    MT_QUAR_ALERTS = 'a', /* monitoring.alerts (with its rule in monitoring.alert_rules) */
} mt_quar_table;

#define MT_QUAR_KEY_LEN    18 /* bytes of a record's key */
#define MT_QUAR_MAX_PARAMS 21 /* parameters of the widest upsert (alerts) */

/* One quarantined row. Decoded, every pointer points into the record's bytes. */
typedef struct mt_quar_row {
    uint8_t table;       /* MT_QUAR_* */
    int64_t hour;        /* rollup tables: the hour index (start / 1 h); alerts: 0 */
    int64_t at_ns;       /* when it was last refused (wall clock) */
    uint32_t refusals;   /* times it was refused (1 the first time) */
    char sqlstate[6];    /* PostgreSQL's SQLSTATE; "" when the sink's own check refused it */
    const char *reason;  /* PostgreSQL's message, or the check's; NUL-terminated */
    const char *natural; /* the natural key, printable: "hour=... business_id=... ..." */
    int nparams;
    const char *params[MT_QUAR_MAX_PARAMS]; /* the upsert's parameters; NULL: SQL NULL */
} mt_quar_row;

/* The table's name ("monitoring.hourly_metrics_summary"); "?" for an unknown one. */
const char *mt_quar_table_name(uint8_t table);

/* Whether an error with this SQLSTATE is the row's own and permanent (see above). */
bool mt_quar_permanent(const char *sqlstate);

/* The record key of a row: out gets MT_QUAR_KEY_LEN bytes. */
void mt_quar_key(uint8_t table, int64_t hour, const char *natural, uint8_t out[MT_QUAR_KEY_LEN]);

/*
 * The record of r: *out malloc'd (the caller frees), *len its size. MT_OK,
 * MT_EINVAL (nparams out of range, no reason or natural key), -ENOMEM.
 */
int mt_quar_encode(const mt_quar_row *r, void **out, size_t *len);

/*
 * Read a record: r's pointers point into val (valid while val is).
 * MT_OK, or MT_ECORRUPT (a checksum, length or version that does not fit:
 * never half-read).
 */
int mt_quar_decode(const void *val, size_t len, mt_quar_row *r);

/*
 * Run r's upsert on pg, in whatever transaction pg is in. MT_OK, MT_EPG
 * (mt_pg_errmsg and mt_pg_sqlstate say why), MT_EINVAL (unknown table).
 */
int mt_quar_send(mt_pg *pg, const mt_quar_row *r);

/*
 * Call fn(ud, key, row) for every record, in key order (table, hour), from
 * one snapshot; works on a read-only engine beside a running metrond. A
 * record that does not decode is passed with row NULL (it is reported,
 * never sent). fn returns 0 to go on; anything else stops and is returned.
 */
int mt_quar_list(mt_engine *e,
                 int (*fn)(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row),
                 void *ud);

/* The number of records held. MT_OK or an engine error. */
int mt_quar_count(mt_engine *e, size_t *n);

/*
 * Queue every record for the sink again (outbox kind MT_OUTBOX_QUARANTINE,
 * in one transaction): the next sink that drains e's outbox sends each row
 * again; those that land leave the quarantine, those refused again stay
 * with the new reason. e must be opened for writing with opt.outbox (the
 * engine queues nothing otherwise). *queued gets the number of rows. MT_OK
 * or an engine error (nothing queued).
 */
int mt_quar_requeue(mt_engine *e, size_t *queued);

typedef struct mt_quar_result {
    size_t landed;  /* committed into PostgreSQL, removed from the quarantine */
    size_t refused; /* refused again (permanent): kept with the new reason */
} mt_quar_result;

/*
 * Send every record straight to PostgreSQL at conninfo, one transaction per
 * row: a row that lands leaves the quarantine, one refused for good stays
 * with the new reason (and refusals + 1); both recorded in one engine
 * transaction at the end. A transient failure (connection lost, SQLSTATE
 * outside mt_quar_permanent) stops the run: what was decided up to then is
 * still recorded, and MT_EPG returned with the reason in err (capacity
 * cap). A crash between a row's COMMIT and the record's removal leaves the
 * row held: sending it again is the same upsert. e must be opened for
 * writing. MT_OK, MT_EPG, or an engine error.
 */
int mt_quar_retry(mt_engine *e, const char *conninfo, mt_quar_result *res, char *err, size_t cap);

#endif
