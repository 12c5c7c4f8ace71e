/*
 * mt_engine.h — the storage engine: Metron's façade over series index,
 * durable head, hour files and sealing. It knows nothing of sockets, SQL or
 * command-line flags.
 *
 * Data model: a point is (series, timestamp in ns, typed value). A series
 * is a canonical key (mt_series.h) with a compact id and one value type for
 * life; a point of another type is rejected (the rest of the batch is
 * kept). A repeated (series, timestamp) keeps the last value written.
 *
 * Layout of a data directory:
 *   index.mdb                    LMDB: series, postings, sealed hours, head log
 *   blocks/YYYY/MM/DD/HH.G.blk   one immutable file per sealed hour (generation G)
 *
 * Durability: mt_engine_submit hands a batch to the engine's writer thread,
 * which commits many batches in one LMDB transaction (group commit) and
 * calls each batch's callback after the commit returned. With the default
 * sync mode the commit is on disk (fsync) before the callback runs: a
 * caller that acknowledges only then loses nothing to kill -9 or power
 * loss. An I/O failure at commit is fatal: the engine refuses every later
 * write (MT_ECLOSED) instead of acknowledging data it may not have.
 *
 * Sealing: an hour is sealed once the newest timestamp seen is past its end
 * plus the grace period and settle_records head records, or settle_points
 * points, went by without a point of it, or the wall clock is past and
 * nothing was written to it for the grace period. Its points become one
 * hour file (temp file, fsync, rename, fsync of the directory), then one
 * LMDB transaction records the file with the last head record it holds
 * (sealed_seq: replay skips those points) and deletes the head log's
 * records no unsealed point needs. Points for an already sealed hour wait
 * in the head (read beside the file) and are merged once into a new
 * generation of that hour's file (copy-on-write): when none came for
 * late_quiet_ns, when they are as many as the file holds, or when all late
 * points together pass the head's late budget (mt_seal.c, docs/storage.md
 * "Late points").
 *
 * Crash recovery happens in mt_engine_open: files that no committed
 * transaction references (a temp file, a generation written but not yet
 * recorded, or replaced and not yet unlinked: once no reader's snapshot
 * names it) are removed, and the head log is replayed.
 *
 * Threads: every function may be called from any thread. Readers
 * (mt_scan_*, lookups) run concurrently with the writer: they take a short
 * shared lock on the in-memory head while they snapshot what they need,
 * and read hour files without locks (a file replaced by a later seal stays
 * mapped until the last scan reading it is done).
 */
#ifndef MT_ENGINE_H
#define MT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_codec.h"
#include "mt_err.h"
#include "mt_series.h"

#define MT_HOUR_NS (3600LL * 1000000000LL)

typedef struct mt_engine mt_engine;

typedef struct mt_engine_options {
    const char *dir;            /* data directory, created if missing (required) */
    int64_t grace_ns;           /* late-point grace after an hour ends (default 5 min) */
    int64_t late_quiet_ns;      /* points for an hour that has a file are merged into it once
                                   no such point came for this long (default 60 s; or sooner:
                                   mt_seal.c, "Late points") */
    uint32_t settle_records;    /* an hour the watermark (newest timestamp) passed by its end
                                   and the grace is sealed once this many head records went by
                                   without a point of it: a stream still writing it keeps it
                                   open, for at most the grace of wall clock (default 16; 0:
                                   at once) */
    uint64_t settle_points;     /* ... or once this many points of any hour went by without
                                   one of it, whichever comes first: records of full group
                                   commits would otherwise keep several hours of several
                                   streams in memory (default 262,144; 0: at once) */
    int64_t commit_interval_ns; /* extra wait to gather a group commit (default 0) */
    bool nosync;                /* true: commits skip fsync (loses recent commits on power loss) */
    size_t map_size;            /* LMDB map size in bytes (default 64 GiB, sparse) */
    uint64_t footer_cache;      /* bytes of parsed hour footers kept in memory; past it the
                                   least recently read are dropped with their files' mappings
                                   by the writer thread, and mapped and parsed again when read
                                   (default 256 MiB; 0: the default) */
    int zstd_level;             /* hour-file chunks (default 9) */
    bool auto_seal;             /* seal due hours on the writer thread (default true) */
    bool read_only;             /* a snapshot for reading, beside a metrond that writes:
                                   no lock, no writer, no recovery; writes and seals
                                   answer MT_ECLOSED */
    uint64_t max_series;        /* series in all (0: no limit) */
    uint32_t max_new_series_per_hour; /* new series per tenant (business_id) per wall-clock
                                         hour (0: no limit) */
    bool outbox; /* queue every sealed hour for a sink (mt_engine_outbox_*): only when one
                    will drain it (default false) */
    int64_t (*clock_ns)(void *); /* wall clock for sealing (default mt_now_ns) */
    void *clock_ud;
    int64_t max_future_ns; /* points more than this ahead of clock_ns are refused (MT_ETIME;
                              0: no window, only the representable range) */
    bool rebuild_index;    /* a new index.mdb beside hour files: rebuild it from them (series,
                              postings, hours, rollups) instead of refusing with MT_ENOINDEX;
                              the lost head log's points cannot come back (metron repair) */
    void (*report)(void *ud, const char *line); /* what a rebuild did and could not do */
    void *report_ud;
    /* Told what was committed, for a mirror that keeps summaries of recent data (the minute
       mirror of sql/mt_minute.h): committed(committed_ud, ts) runs on the writer thread after
       each group commit, before the batches' callbacks (so before any client hears of it),
       once for each run of accepted points of a batch whose timestamps fall in the same
       committed_step_ns window (0: once per point). Keep it short: the next commit waits.
       NULL: not called. The durable side of the same bookkeeping is the commit floor
       (mt_engine_floor_get), kept whether or not this is set. */
    void (*committed)(void *ud, int64_t ts);
    void *committed_ud;
    int64_t committed_step_ns;
    char *why; /* if not NULL: when open fails, the reason for people (the damaged record of
                  index.mdb and the way out, a format version), why_cap bytes; untouched when
                  there is nothing to add to the code */
    size_t why_cap;
} mt_engine_options;

/* The defaults above, with dir NULL. */
mt_engine_options mt_engine_options_default(void);

/*
 * Open (or create) a data directory, recover it and start the writer. With
 * read_only, take a snapshot instead: the index, the sealed hours and the
 * head as committed at that moment (MT_ENOTFOUND when the directory holds
 * no data yet). The snapshot's LMDB read transaction stays open until
 * close, so the writer (another process) keeps every hour file it names;
 * they are mapped on first use, and open reads no hour file at all.
 * Returns MT_OK and *out, MT_EINVAL, MT_EFORMAT (a newer format),
 * MT_ECORRUPT, MT_ENOINDEX (hour files under blocks/ but index.mdb is new:
 * missing, emptied or replaced; nothing is changed, nothing removed), -EBUSY
 * when another engine (in any process) has the directory open, or -errno.
 * Recovery removes only files it can prove are its own leftovers (and those
 * a committed delete listed as no longer named: mt_engine_delete); the rest
 * goes to DIR/lost+found/ (mt_engine_stats.files_set_aside). Damage found
 * at open does not stop it: mt_engine_damage lists it.
 *
 * index.mdb's records carry checksums (format 2, mt_kv.h; a format-1 index
 * is migrated in place by a writer, read as it is by a reader). Open reads
 * meta, series, series_by_id, postings, hours and head whole: a damaged
 * record of the first five refuses the open (MT_ECORRUPT; opt->why names
 * the database and key and the way out: restore index.mdb or rebuild it);
 * a damaged head record is skipped, counted in head_records_skipped and
 * named by mt_engine_damage. A damaged rollups, outbox or state record
 * fails the read that meets it with MT_ECORRUPT (docs/storage.md, "Damage").
 */
int mt_engine_open(const mt_engine_options *opt, mt_engine **out);

/*
 * Stop accepting writes, commit what was submitted (callbacks run), stop
 * the writer and free everything. Does not seal. NULL is a no-op.
 */
void mt_engine_close(mt_engine *e);

/* ---- writing ------------------------------------------------------------ */

typedef struct mt_batch mt_batch;

/* A new empty batch, or NULL when out of memory. */
mt_batch *mt_batch_new(void);

/* Free a batch. NULL is a no-op. */
void mt_batch_free(mt_batch *b);

/* Empty a batch for reuse (keeps its memory). */
void mt_batch_reset(mt_batch *b);

/*
 * Add one point: canonical key key[0..klen), timestamp ts (ns), value v of
 * type t. For MT_VT_STRING, v.u is the length and str the bytes; str is
 * ignored otherwise. Everything is copied. Returns MT_OK or -ENOMEM.
 */
int mt_batch_add(mt_batch *b, const void *key, size_t klen, int64_t ts, mt_vtype t, mt_val v,
                 const char *str);

/*
 * Add one point of a known series: id as mt_engine_series_lookup gave it
 * (ids are never reused). The writer checks the id and the type as for
 * mt_batch_add. Saves carrying the key. MT_OK, MT_EINVAL or -ENOMEM.
 */
int mt_batch_add_id(mt_batch *b, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str);

/*
 * The points added next come from input line lineno (1-based; 0: none), so
 * a refusal can name it (mt_batch_point). Lines past 268,435,455 (2^28 - 1:
 * a body of more than 1.6 GB) are named 268,435,455.
 */
void mt_batch_line(mt_batch *b, uint64_t lineno);

/* Points in the batch. */
size_t mt_batch_len(const mt_batch *b);

/* Bytes the batch holds allocated (for memory budgets). */
size_t mt_batch_bytes(const mt_batch *b);

/*
 * Give back the spare room of a batch's points and keys, for a batch about
 * to wait in a queue: a read of 1,400 points would otherwise hold room for
 * 2,048, and a memory budget over batches in flight would count the room.
 * The batch stays usable. Cannot fail: where the allocator declines, the
 * batch keeps its memory.
 */
void mt_batch_fit(mt_batch *b);

/* One point of a batch, as mt_batch_point describes it. */
typedef struct mt_batch_pt {
    const void
        *key; /* added by key: into the batch (valid until it is reset or freed); by id: NULL */
    size_t klen;
    uint32_t id; /* added by id: the id; by key: 0 */
    mt_vtype type;
    int64_t ts;
    uint64_t line; /* its input line (mt_batch_line), 0: none */
} mt_batch_pt;

/* Point i of b, to explain a refusal. MT_OK, or MT_EINVAL when i is out of range. */
int mt_batch_point(const mt_batch *b, size_t i, mt_batch_pt *out);

/* The outcome of one submitted batch. */
/*
 * Timestamps a point may have: an hour's end must be representable, so the
 * first and last two hours of the int64 range are refused (MT_ETIME), never
 * accepted and then lost to arithmetic.
 */
#define MT_TS_MIN (INT64_MIN + 2 * MT_HOUR_NS)
#define MT_TS_MAX (INT64_MAX - 2 * MT_HOUR_NS)

typedef struct mt_write_result {
    int rc;                /* MT_OK: accepted points are durable; else nothing was written */
    uint64_t seq;          /* the commit that holds the batch */
    size_t accepted;       /* points written */
    size_t rejected;       /* points refused (type conflict, invalid key, series limit) */
    size_t first_rejected; /* index of the first refused point */
    int first_reason;      /* MT_ECONFLICT, MT_EINVAL, MT_ELIMIT (a cardinality limit),
                              MT_ETIME (outside MT_TS_MIN..MT_TS_MAX or max_future_ns) or
                              MT_EOLD (older than its series' keep: mt_engine_set_age_policy) */
    int64_t first_bound;   /* MT_EOLD: the oldest timestamp its series accepted then; MT_ETIME:
                              the newest any series did; else 0 */
} mt_write_result;

/*
 * Called on the writer thread once the batch's commit returned (or failed).
 * The batch comes back to the caller, who frees or reuses it. Keep it short:
 * the next commit waits for it.
 */
typedef void (*mt_write_cb)(void *ud, const mt_write_result *res, mt_batch *b);

/*
 * Hand b to the writer. On MT_OK the engine owns b until cb returns it.
 * Returns MT_ECLOSED after close or a fatal I/O error (b stays the
 * caller's, cb never runs).
 */
int mt_engine_submit(mt_engine *e, mt_batch *b, mt_write_cb cb, void *ud);

/* Submit and wait until the batch is durable. res gets the outcome. */
int mt_engine_write(mt_engine *e, mt_batch *b, mt_write_result *res);

/*
 * Seal now, waiting for it: every due hour, or with all, every hour that
 * has points in the head (late points then make a new generation later).
 * *hours gets the number of hour files written (may be NULL).
 */
int mt_engine_seal(mt_engine *e, bool all, size_t *hours);

/* ---- reading ------------------------------------------------------------ */

/* Look a series up by key. MT_OK with *id and *type, or MT_ENOTFOUND. */
int mt_engine_series_lookup(mt_engine *e, const void *key, size_t klen, uint32_t *id,
                            mt_vtype *type);

/*
 * Copy the key of series id into out (capacity cap); *klen gets its length.
 * MT_OK, MT_ENOTFOUND, or MT_ELIMIT when cap is too small.
 */
int mt_engine_series_key(mt_engine *e, uint32_t id, void *out, size_t cap, size_t *klen);

/* Posting terms: which series carry a measurement, a field, or tag=value. */
typedef enum mt_term_kind {
    MT_TERM_MEASUREMENT = 1,
    MT_TERM_FIELD = 2,
    MT_TERM_TAG = 3,
} mt_term_kind;

/*
 * A number that changes whenever the committed set of series does (a
 * series made, a tenant's series deleted), and only grows. What was read
 * of the series after reading it stays right while it does not change:
 * caches of the series (query/mt_fed.h's catalogs) key on it.
 */
uint64_t mt_engine_series_epoch(mt_engine *e);

/*
 * The sorted ids of the series with the term (value is used for MT_TERM_TAG
 * only). *ids is malloc'd (caller frees; NULL when *n is 0). MT_OK or -ENOMEM.
 */
int mt_engine_postings(mt_engine *e, mt_term_kind kind, mt_name name, mt_name value, uint32_t **ids,
                       size_t *n);

/*
 * Call fn(ud, value, series) for each value of tag key `key`, in byte order,
 * with the number of series that carry it. fn returns 0 to go on, anything
 * else to stop (and mt_engine_tag_values returns it). MT_OK or an error.
 */
int mt_engine_tag_values(mt_engine *e, mt_name key,
                         int (*fn)(void *ud, mt_name value, size_t series), void *ud);

/* One sealed chunk: a series' points of one hour, as its hour file's index describes it. */
typedef struct mt_chunk_info {
    int64_t hour; /* hour index: start / 1 h */
    uint32_t id;  /* series */
    mt_vtype type;
    uint32_t count; /* points */
    uint32_t bytes; /* encoded size */
    int64_t min_ts, max_ts;
    double sum, min, max, first, last; /* exact summary (numeric types) */
} mt_chunk_info;

/*
 * Call fn(ud, chunk) for every sealed chunk, hour by hour, series by series,
 * from the hour files' indexes (nothing is decoded). Runs under the shared
 * lock: fn must not call back into the engine. fn returns 0 to go on; its
 * other results stop the walk and are returned. An hour whose file cannot
 * be read is skipped and counted in *unreadable (may be NULL).
 */
int mt_engine_chunks(mt_engine *e, int (*fn)(void *ud, const mt_chunk_info *c), void *ud,
                     size_t *unreadable);

/*
 * An hourly rollup, computed at sealing from every value of the hour:
 * per series, and per group (business_id, measurement, field) as the
 * seed's hourly_metrics_summary groups them. Quantiles are
 * PERCENTILE_CONT, exact. Numeric series only.
 */
typedef struct mt_rollup {
    int64_t hour;        /* hour index: start / 1 h */
    uint32_t id;         /* series rollups: the series; 0 for a group */
    mt_name business_id; /* groups: the tenant (len 0: none, the system-wide NULL) */
    mt_name measurement; /* groups */
    mt_name field;       /* groups */
    uint64_t count;
    double sum, min, max, p50, p95, p99;
    const void *group; /* groups: the key, business_id 0 measurement 0 field */
    size_t group_len;
    const void *sketch; /* groups: the hour's DDSketch (mt_sketch_decode_merge); len 0: none */
    size_t sketch_len;
} mt_rollup;

/*
 * Call fn(ud, r) for each rollup of the hours [from_hour, to_hour), groups
 * (groups true) or series, in key order, from one read snapshot; the names
 * in r live during the call. fn returns 0 to go on; anything else stops and
 * is returned.
 */
int mt_engine_rollups(mt_engine *e, int64_t from_hour, int64_t to_hour, bool groups,
                      int (*fn)(void *ud, const mt_rollup *r), void *ud);

/*
 * The engine's grace (opt.grace_ns as opened, never negative): an hour is
 * sealed, and its rollups exist, once its end plus this has passed and its
 * writes settled (see Sealing above). Any thread.
 */
int64_t mt_engine_grace_ns(const mt_engine *e);

/*
 * The rollup group of series id, as mt_rollup.group spells it, into out
 * (capacity cap), *len set. MT_OK, MT_ENOTFOUND (no such id), MT_ELIMIT
 * (cap too small).
 */
int mt_engine_series_group(mt_engine *e, uint32_t id, char *out, size_t cap, size_t *len);

/*
 * Retention. Raw points of a series are kept while their hour ends within
 * keep_ns of now; the rule for a series is the most specific that matches
 * it: tenant and measurement, then tenant, then measurement, then the
 * default. An hour whose every series expired is dropped whole (its index
 * entry deleted, its file unlinked: the space comes back at once); an hour
 * where only some did is rewritten without them (a new generation, as a
 * seal writes). Hourly rollups follow their own keep, so they may outlive
 * the raw points they summarize.
 */
typedef struct mt_retention_rule {
    const char *measurement; /* NULL: every measurement */
    const char *business_id; /* NULL: every tenant; "": the system-wide one (no tag) */
    int64_t keep_ns;         /* <= 0: forever */
} mt_retention_rule;

typedef struct mt_retention {
    int64_t keep_ns; /* the default for raw points (<= 0: forever) */
    const mt_retention_rule *rules;
    size_t nrules;
    int64_t rollup_keep_ns; /* hourly rollups, groups and series (<= 0: forever) */
} mt_retention;

typedef struct mt_retention_result {
    size_t hours_dropped;        /* hour files removed whole */
    size_t hours_rewritten;      /* hour files rewritten without their expired series */
    uint64_t chunks_dropped;     /* series-hours removed */
    uint64_t points_dropped;     /* points in them */
    uint64_t bytes_freed;        /* hour-file bytes given back (dry run: by whole hours) */
    size_t rollup_hours_dropped; /* hours whose rollups were deleted */
} mt_retention_result;

/*
 * Apply policy p as of time now (ns), on the writer thread, waiting for it;
 * *res says what was (dry_run: would be) removed. A read-only engine can
 * only dry-run (MT_EINVAL otherwise). MT_OK or an error, the store
 * unchanged on error (MT_EFULL: LMDB map full, MT_ECLOSED ...).
 */
int mt_engine_retention(mt_engine *e, const mt_retention *p, int64_t now, bool dry_run,
                        mt_retention_result *res);

/*
 * Refuse the points retention policy p would remove at its next run: a
 * point older than its own series' raw keep (the rule mt_engine_retention
 * applies: tenant and measurement, tenant, measurement, then the default)
 * behind clock_ns is refused with MT_EOLD, instead of being acknowledged
 * and then dropped. p is copied; NULL refuses no point for its age (the
 * default at open). Batches the writer takes after the call follow it (one
 * in the writer's hands keeps the old policy). Any thread. MT_OK, or
 * -ENOMEM with the old policy kept.
 */
int mt_engine_set_age_policy(mt_engine *e, const mt_retention *p);

/* Progress of a long job: phase ("hours", "index"), done of total. */
typedef void (*mt_progress_fn)(void *ud, const char *phase, uint64_t done, uint64_t total);

typedef struct mt_compact_result {
    size_t hours_rewritten; /* sealed hours merged with their late points */
    uint64_t index_before;  /* bytes of index.mdb before and after (0: not compacted) */
    uint64_t index_after;
} mt_compact_result;

/*
 * Compact, on the writer thread, waiting for it: every sealed hour with
 * late points in the head (backfill) becomes one new clean file; then,
 * with index, index.mdb is rewritten without its free pages (LMDB's file
 * never shrinks on its own) and swapped in atomically. Writes queue while
 * it runs; this process's reads wait only for the swap; other processes
 * reading the directory keep their snapshot. progress (may be NULL) is
 * called on the writer thread. MT_OK, MT_ECLOSED (read-only engine), or an
 * error (an index that cannot be reopened fails the engine: MT_ECLOSED
 * after).
 */
int mt_engine_compact(mt_engine *e, bool index, mt_progress_fn progress, void *ud,
                      mt_compact_result *res);

/*
 * Deletion, on the writer thread, waiting for it (one job at a time, between
 * group commits: it serializes with every write, seal and maintenance job).
 *
 * With business_id: every series whose business_id tag is that one, all its
 * points of all time, and the series themselves: their keys and postings
 * leave the index (their ids are never given again; a later point of the
 * same key makes a new series). Else: the points in [from, to) of the
 * series ids[0..nids) (ids as mt_engine_series_lookup or mt_query_series_id
 * give them; unknown ids are ignored); the series stay known.
 *
 * Head points concerned are sealed first (every head hour is sealed, as
 * mt_engine_seal(all) does; later points of those hours merge as late
 * points). Each hour file holding points to delete is written again as a
 * new generation without them and with its rollups recomputed from what it
 * keeps, or dropped (file and rollups) when nothing is left; the head log is
 * written again without them; with opt.outbox, the SQL sink is told in the
 * same transaction (MT_OUTBOX_DELETE: a tenant's rows deleted, or each
 * rewritten hour's rows replaced). One transaction publishes it all: a crash
 * leaves every hour as it was or as it is after, never half (mt_delete.c).
 * Replaced files are unlinked once no reader's snapshot names them (the
 * transaction lists them: after a crash, the next open unlinks them rather
 * than set them aside in lost+found/); free pages of index.mdb keep old
 * bytes until reused (mt_engine_compact with index rewrites the file
 * without them).
 *
 * *res (may be NULL) says what went. MT_OK; MT_EINVAL (empty business_id,
 * from >= to); MT_ECLOSED (read-only or failed engine); MT_ECORRUPT (an hour
 * file concerned cannot be read: nothing was deleted); MT_EFULL or another
 * error of the commit (nothing was deleted).
 */
typedef struct mt_delete_spec {
    const char *business_id; /* not NULL: the tenant, whole (ids, from and to unused) */
    bool keep_mirror;        /* tenant: leave its PostgreSQL rows alone (the tenant moved to
                                other nodes that mirror the same rows: docs/cluster.md) */
    const uint32_t *ids;     /* else these series ... */
    size_t nids;
    int64_t from, to; /* ... and their points in [from, to) ns */
} mt_delete_spec;

typedef struct mt_delete_result {
    size_t series;           /* series concerned */
    size_t series_forgotten; /* series whose keys and postings went (tenant) */
    size_t hours_sealed;     /* head hours sealed first */
    size_t hours_rewritten;  /* hour files written again without the points */
    size_t hours_dropped;    /* hour files removed (nothing else in them) */
    uint64_t points_deleted; /* points of the series in the range */
} mt_delete_result;

int mt_engine_delete(mt_engine *e, const mt_delete_spec *spec, mt_delete_result *res);

/*
 * The outbox: what a sink must still mirror elsewhere (PostgreSQL), queued
 * in the same LMDB transaction that produced it, removed only when the
 * sink acknowledges it. With opt.outbox, every seal queues each hour it
 * wrote (again after backfill): the sink then reads that hour's rollups.
 */
enum {
    MT_OUTBOX_HOUR = 'H',       /* data: the hour index, i64 LE */
    MT_OUTBOX_ALERT = 'A',      /* data: the key of an alert's state record (mt_engine_state_put) */
    MT_OUTBOX_QUARANTINE = 'Q', /* data: the key of a state record holding a row the sink
                                   quarantined, queued again to be sent again (mt_quarantine.h) */
    MT_OUTBOX_NOTIFICATION = 'N', /* data: 'N', an alert's id (36 bytes) and one delivery of it
                                     as JSON, queued with no state record (alert/mt_alerting.h) */
    MT_OUTBOX_DELETE = 'D',       /* data: MT_DELETE_TENANT and the business_id's 16 bytes (a UUID:
                                     every row of that tenant goes); or MT_DELETE_HOUR_OF, the hour
                                     index (i64 LE), u8 1 when rows without a business_id are
                                     concerned, then the 16 bytes of each tenant concerned: those
                                     rows of the hour are replaced by its rollups as they are now
                                     (mt_engine_delete), other nodes' tenants' rows stay; or
                                     MT_DELETE_HOUR and the hour (written before: every row of the
                                     hour is replaced) */
};
enum { MT_DELETE_TENANT = 'T', MT_DELETE_HOUR = 'h', MT_DELETE_HOUR_OF = 'o' };

typedef struct mt_outbox_entry {
    uint64_t seq;      /* ascending */
    uint8_t kind;      /* MT_OUTBOX_* */
    int64_t queued_ns; /* wall clock when queued */
    const void *data;  /* valid during the callback */
    size_t len;
} mt_outbox_entry;

/*
 * Call fn(ud, en) for the first max entries, oldest first, from one read
 * snapshot; fn returns 0 to go on, anything else stops and is returned.
 */
int mt_engine_outbox_peek(mt_engine *e, size_t max, int (*fn)(void *ud, const mt_outbox_entry *en),
                          void *ud);

/* Remove every entry up to seq (after the sink committed them); *removed may be NULL. */
int mt_engine_outbox_ack(mt_engine *e, uint64_t upto, size_t *removed);

/* Entries waiting, and when the oldest was queued (0: none). */
int mt_engine_outbox_stats(mt_engine *e, size_t *depth, int64_t *oldest_ns);

/*
 * Small records other parts of Metron keep in the data directory (alert
 * states), durable like points. put stores val under key (val NULL:
 * deletes it) and, with outbox_kind not 0 and opt.outbox, queues (kind,
 * key) for the sink in the same transaction; it runs on the writer thread
 * and waits. Keys are 1-500 bytes. get copies the value (*val malloc'd,
 * the caller frees): MT_OK or MT_ENOTFOUND. scan calls fn for every key
 * starting with prefix, in key order, from one snapshot.
 */
int mt_engine_state_put(mt_engine *e, const void *key, size_t klen, const void *val, size_t vlen,
                        uint8_t outbox_kind);
int mt_engine_state_get(mt_engine *e, const void *key, size_t klen, void **val, size_t *vlen);
int mt_engine_state_scan(mt_engine *e, const void *prefix, size_t plen,
                         int (*fn)(void *ud, const void *key, size_t klen, const void *val,
                                   size_t vlen),
                         void *ud);

/*
 * One change of mt_engine_state_apply. The pointers are the caller's, only
 * read during the call.
 */
typedef struct mt_state_op {
    const void *key;     /* the record's key */
    size_t klen;         /* 1-500 bytes */
    const void *val;     /* the new value; NULL deletes the record (absent: no error) */
    size_t vlen;         /* bytes of val */
    uint8_t outbox_kind; /* not 0 (and opt.outbox): queue (kind, key) for the sink too */
} mt_state_op;

/*
 * Apply ops in order (a later op on the same key wins) and, when ack_upto
 * is not 0, remove every outbox entry up to ack_upto, all in ONE
 * transaction on the writer thread, waiting for it: a sink records what
 * its PostgreSQL COMMIT decided (rows held back, rows released) together
 * with the acknowledgement, so a crash leaves both or neither. *acked (may
 * be NULL) gets the entries removed. MT_OK, MT_EINVAL (a key of 0 or more
 * than 500 bytes; nothing done), MT_ECLOSED, MT_EFULL, or an LMDB error
 * (nothing done).
 */
int mt_engine_state_apply(mt_engine *e, const mt_state_op *ops, size_t n, uint64_t ack_upto,
                          size_t *acked);

/*
 * The commit floor: a timestamp F, durable in index.mdb, below which no
 * point was committed since F was last raised. Each commit whose accepted
 * points go below F lowers F to the lowest of them in the same
 * transaction (so a crash after the client's 204 cannot lose that fact;
 * it costs a write only then: late points). A mirror that recomputes
 * summaries from the stored points (sql/mt_minute.h) reads F at start
 * (everything from F on may be unmirrored), and raises it after its
 * upserts committed elsewhere.
 *
 * get returns F (MT_TS_MIN in a directory that never had one) and starts
 * the watch of raise: raise(to) sets F to the lowest of `to` and every
 * timestamp committed since the last get, when that is above F (never
 * lowers it). So a point committed while the mirror was computing keeps F
 * at or below it. Both run on the writer thread and wait; one mirror per
 * engine. lower(ts) sets F to ts when ts is below it, and counts as a
 * commit at ts for the watch: for a change to the stored points that is
 * no commit of points (a range delete whose summaries must be computed
 * again). MT_OK, MT_ECLOSED (read-only or closed engine), or an LMDB
 * error (F unchanged).
 */
int mt_engine_floor_get(mt_engine *e, int64_t *floor);
int mt_engine_floor_raise(mt_engine *e, int64_t to);
int mt_engine_floor_lower(mt_engine *e, int64_t ts);

typedef struct mt_scan mt_scan;

/*
 * Iterate series id over [from, to) in time order, merging sealed hours and
 * the head (the head's later writes win). MT_OK and *out, MT_ENOTFOUND for
 * an unknown id, or an error.
 */
int mt_scan_open(mt_engine *e, uint32_t id, int64_t from, int64_t to, mt_scan **out);

/*
 * The next block of points (one hour at most). MT_OK with out->n > 0; the
 * arrays are valid until the next call or mt_scan_close. MT_ENOTFOUND at
 * the end; MT_ECORRUPT when a chunk fails its checksum (never served).
 */
int mt_scan_next(mt_scan *s, mt_points *out);

/*
 * As mt_scan_next, but a sealed hour that lies wholly inside the range and
 * has no late points in the head comes back as its stored summary (*sum,
 * with out->n == 0) instead of decoded points. Lets count, sum, avg, min,
 * max, first and last over whole hours skip decoding. sum->count is 0 when
 * points are returned.
 */
int mt_scan_next_or_summary(mt_scan *s, mt_points *out, mt_chunk_info *sum);

/*
 * As mt_scan_next, for arithmetic on a coarser clock (PromQL's ms and
 * doubles): each block in the form of mt_decoder_decode_f64 (mt_codec.h),
 * stamps floor(ts / 10^unit_e) and values doubles in vals[i].f, out->type
 * MT_VT_FLOAT. *repeats false promises stamps that increase strictly; true: two
 * may share a unit (it is said of a whole chunk the range cuts). A
 * sealed chunk with nothing to merge is decoded and converted in one pass
 * when from and to are whole units. MT_EINVAL for a string series or a
 * unit_e beyond MT_F64_MAX_UNIT_E; otherwise as mt_scan_next.
 */
int mt_scan_next_f64(mt_scan *s, int unit_e, mt_points *out, bool *repeats);

/*
 * After mt_scan_next returned MT_ECORRUPT: which sealed hour and which file
 * failed ("hour 2025-01-01T01:00:00Z, file DIR/blocks/2025/01/01/01.2.blk")
 * into out (capacity cap, NUL-terminated); returns its length, 0 when the
 * scan met no damage.
 */
size_t mt_scan_damage(const mt_scan *s, char *out, size_t cap);

/* Close a scan. NULL is a no-op. */
void mt_scan_close(mt_scan *s);

/* Upper bounds (seconds) of the commit-latency histogram buckets; the last is +Inf. */
#define MT_COMMIT_BUCKETS 12
extern const double mt_commit_bucket_le[MT_COMMIT_BUCKETS];

/* Counters of an engine. */
typedef struct mt_engine_stats {
    uint64_t format;               /* the data directory's on-disk format (index.mdb's meta
                                      "version"; docs/format.md) */
    uint64_t format_max;           /* the newest format this build reads and writes */
    uint64_t series;               /* series known */
    uint64_t head_points;          /* points in the head (not yet sealed) */
    uint64_t head_bytes;           /* bytes the head holds in memory (arrays and strings) */
    uint64_t sealed_hours;         /* hours with a file */
    uint64_t hour_files_written;   /* hour file generations written since open (first seals and
                                      merges of late points) */
    uint64_t footers_loaded;       /* hour footers parsed and held in memory (on first use) */
    uint64_t footer_bytes;         /* their bytes (bounded by opt.footer_cache) */
    uint64_t late_points;          /* points in the head for hours that have a file (waiting to
                                      be merged: mt_seal.c, "Late points") */
    uint64_t log_points;           /* points in the head log's records, sealed ones not yet
                                      trimmed included (an estimate) */
    uint64_t log_rewrites;         /* seals that wrote the head log again instead of trimming
                                      it (since open) */
    uint64_t commits;              /* LMDB write transactions committed */
    uint64_t points_written;       /* points accepted since open */
    uint64_t last_seq;             /* sequence of the last commit */
    uint64_t index_bytes;          /* size of index.mdb, free pages the head log reuses included */
    uint64_t index_live_bytes;     /* pages of index.mdb that hold live data */
    uint64_t block_bytes;          /* bytes of the current hour files */
    uint64_t head_records_skipped; /* head records that failed their checksum at open: their
                                      points are missing (mt_engine_damage names the count) */
    uint64_t hours_unreadable;     /* sealed hour files the index names that could not be
                                      read at open (missing or damaged: mt_engine_damage) */
    uint64_t files_set_aside;      /* hour files open could not account for, moved to
                                      DIR/lost+found/ (never deleted) */
    uint64_t points_over_series_limit;          /* points refused by a cardinality limit */
    uint64_t points_out_of_time;                /* points refused by MT_TS_MIN/MAX, max_future */
    uint64_t commit_buckets[MT_COMMIT_BUCKETS]; /* commits taking <= mt_commit_bucket_le[i] s */
    double commit_seconds;                      /* total time spent committing */
    double rollup_seconds;       /* time sealing spent computing and storing hourly rollups */
    double rollup_group_seconds; /* ... of it, on the group rows alone (what the seed's view
                                    computes: count to p99; no sketch, no series rows) */
} mt_engine_stats;

void mt_engine_stats_get(mt_engine *e, mt_engine_stats *st);

/* Free bytes on the data directory's disk that mt_engine_health takes for room again. */
#define MT_HEALTH_ROOM (64u << 20)

/*
 * Whether the engine takes writes now. MT_OK; MT_ECLOSED after a commit
 * failed with an I/O error (fail-stop: every later write is refused until
 * restart); -ENOSPC while the last commit found the disk full and it still
 * has less than MT_HEALTH_ROOM free (not fatal: nothing was committed, and
 * writes resume by themselves once there is space). The reason, for people,
 * goes into why (capacity cap). Any thread.
 */
int mt_engine_health(mt_engine *e, char *why, size_t cap);

/* The storage libraries this process runs with, for people ("LMDB 0.9.24, zstd 1.5.4"), into
   out (cap bytes, NUL-terminated, cut if short). */
void mt_engine_lib_versions(char *out, size_t cap);

/*
 * What open found damaged, one line each through fn: every sealed hour whose
 * file could not be read (a read-only engine looks at every file now: its
 * open looked at none) ("hour 2025-01-01T01:00:00Z, file DIR/blocks/...:
 * missing or damaged"; scans of that hour answer MT_ECORRUPT, never data),
 * and the head records skipped ("N head records failed their checksum at
 * open and were skipped: their points are lost (the first: DIR/index.mdb:
 * database head, key sequence S ...)"), and the damaged records of
 * index.mdb that reads met since open ("N damaged records of index.mdb met
 * by reads (not served); the last: ..."). Returns the number of lines. Any
 * thread.
 */
size_t mt_engine_damage(mt_engine *e, void (*fn)(void *ud, const char *line), void *ud);

#endif
