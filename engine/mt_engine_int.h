/*
 * mt_engine_int.h — the engine's internal structures, shared by its files
 * (mt_engine.c, mt_batch.c, mt_index.c, mt_head.c, mt_hourfile.c,
 * mt_scan.c). Not part of any public contract.
 */
#ifndef MT_ENGINE_INT_H
#define MT_ENGINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mt_engine.h"
#include "mt_kv.h"

/* ---- batches ------------------------------------------------------------- */

typedef struct mt_bkey {
    uint32_t off, len; /* key bytes in mt_batch.keys */
    uint64_t hash;     /* mt_hash64 of the key */
} mt_bkey;

/* A point of a batch. 24 bytes: batches wait in the writer's queue under a
   memory budget, and the writer reads each point twice. */
typedef struct mt_bpoint {
    uint32_t ref;  /* the series id (MT_BP_ID set), else an index into mt_batch.k */
    uint32_t meta; /* MT_BP_ID | type << MT_BP_TYPE_SHIFT | input line (0: none) */
    int64_t ts;    /* ns */
    mt_val v;      /* strings: MT_VAL_STR into mt_batch.strs */
} mt_bpoint;

#define MT_BP_ID         (1u << 31) /* ref is a series id given by the caller (mt_batch_add_id) */
#define MT_BP_TYPE_SHIFT 28
#define MT_BP_LINE_MAX   ((1u << MT_BP_TYPE_SHIFT) - 1) /* later lines are named this one */
_Static_assert(MT_VT_COUNT <= 8, "a batch point keeps its type in 3 bits");
_Static_assert(sizeof(mt_bpoint) == 24, "a batch point is 24 bytes");

/* The caller's series id of p, or 0 when it was added by key. */
static inline uint32_t mt_bp_id(const mt_bpoint *p)
{
    return p->meta & MT_BP_ID ? p->ref : 0;
}

static inline mt_vtype mt_bp_type(const mt_bpoint *p)
{
    return (mt_vtype)(p->meta >> MT_BP_TYPE_SHIFT & 7);
}

/* The input line p came from (mt_batch_line), 0: none. */
static inline uint32_t mt_bp_line(const mt_bpoint *p)
{
    return p->meta & MT_BP_LINE_MAX;
}

struct mt_batch {
    char *keys; /* distinct keys, back to back */
    size_t keys_len, keys_cap;
    mt_bkey *k; /* distinct keys */
    uint32_t nk, kcap;
    uint32_t *table; /* open addressing: key index + 1, 0 = empty */
    uint32_t tcap;   /* power of two */
    mt_bpoint *p;
    size_t np, pcap;
    char *strs; /* string values */
    size_t strs_len, strs_cap;
    uint32_t line; /* the line of the points added next (mt_batch_line) */
    /* set by the writer */
    uint32_t *gid; /* per distinct key: series id, 0 = rejected */
    size_t gid_cap;
    int16_t *why; /* per point: 0 written, else the reason it is refused (resolve decides it once:
                    the head record and the head both follow it) */
    size_t why_cap;
    mt_write_cb cb;
    void *ud;
    mt_write_result res;
    struct mt_batch *next; /* submission queue */
};

/* ---- series index (in memory, loaded from LMDB at open) ------------------ */

typedef struct mt_series_ent {
    uint32_t off, len; /* key in the index arena */
    uint8_t type;      /* mt_vtype */
} mt_series_ent;

/* The canonical key of series id (in the index arena, not NUL-terminated). */
#define MT_INDEX_KEY(ix, id)    ((ix)->arena + (ix)->ents[id].off)
#define MT_INDEX_KEYLEN(ix, id) ((size_t)(ix)->ents[id].len)

typedef struct mt_index {
    char *arena; /* every key, back to back */
    size_t arena_len, arena_cap;
    mt_series_ent *ents; /* by id; id 0 is unused */
    uint32_t n;          /* ids in use are 1..n */
    uint32_t ents_cap;
    uint32_t *table; /* open addressing on key hash: id, 0 = empty */
    uint32_t tcap;   /* power of two, kept at most half full */
} mt_index;

int mt_index_init(mt_index *ix);
void mt_index_free(mt_index *ix);
/* Look a key up; 0 when absent. */
uint32_t mt_index_find(const mt_index *ix, const void *key, size_t klen, uint64_t hash);
/* Add a key (known absent) as id ix->n + 1; returns the id or 0 on ENOMEM. */
uint32_t mt_index_add(mt_index *ix, const void *key, size_t klen, uint64_t hash, mt_vtype t);
/* Forget ids above n (after a failed transaction created them). */
int mt_index_truncate(mt_index *ix, uint32_t n);
/* Load every series from LMDB. */
int mt_index_load(mt_index *ix, mt_kv_txn *txn);
/* Persist a new series: series, series_by_id and its postings. */
int mt_index_store(mt_kv_txn *txn, uint32_t id, const void *key, size_t klen, mt_vtype t);
/* Forget ids[0..n) in memory (after the transaction that unstored them committed): their keys
   are found no more, their ids never given again (ents[id].len 0). */
void mt_index_forget(mt_index *ix, const uint32_t *ids, size_t n);
/* Remove a series from LMDB: its key, its postings, and its key from series_by_id, which keeps
   the type alone (a 1-byte value: ids stay dense; mt_index_load takes it for a forgotten id). */
int mt_index_unstore(mt_kv_txn *txn, uint32_t id, const void *key, size_t klen, mt_vtype t);
/* Build a posting term into out (capacity cap); returns its length or 0. */
size_t mt_index_term(char *out, size_t cap, mt_term_kind kind, mt_name name, mt_name value);

/* ---- head (in memory, mirrored by the LMDB head log) --------------------- */

/*
 * One hour of one series in the head: its points in arrival order, encoded
 * as they come (mt_head.c, "Buckets": about 3 bytes a point where plain
 * arrays took 16), so that the head's memory follows the points it holds,
 * however many hours are open at once.
 */
typedef struct mt_head_bucket {
    int64_t hour;
    uint8_t *buf; /* the encoded points */
    uint32_t len, cap;
    uint32_t n;                /* points */
    int32_t scale;             /* floats: decimal exponent of the deltas (-1: none yet) */
    uint64_t last_ts, last_dt; /* encoder state: the previous stamp and its delta */
    uint64_t last_v;           /* the previous value (scaled for floats) */
} mt_head_bucket;

typedef struct mt_head_series {
    mt_head_bucket *b; /* ascending by hour */
    uint32_t nb, bcap;
} mt_head_series;

/* Reads one bucket's points back in arrival order. */
typedef struct mt_head_cursor {
    const uint8_t *p, *end;
    mt_vtype type;
    int32_t scale;
    uint64_t ts, dt, v;
} mt_head_cursor;

void mt_head_cursor_init(mt_head_cursor *c, const mt_head_bucket *b, mt_vtype type);
/* The next point: false at the end. Strings: v->u is the length, *str the bytes (in the
   bucket, valid until the head changes); *str is NULL for the other types. */
bool mt_head_cursor_next(mt_head_cursor *c, int64_t *ts, mt_val *v, const char **str);

typedef struct mt_head_hour {
    int64_t hour;             /* hour index: floor(ts / 1 h) */
    uint64_t points;          /* points of the hour in the head */
    int64_t last_write_wall;  /* wall clock of the last write into it */
    uint64_t first_seq;       /* no log record before this one holds a point of it still here */
    uint64_t last_seq;        /* the last record that brought a point of it */
    int64_t first_write_wall; /* wall clock of the first write since it entered the head */
    uint64_t last_mark;       /* the head's appended count after its last point */
} mt_head_hour;

/* Log records on disk, in runs of consecutive sequences (their point count, for the seal). */
typedef struct mt_logrun {
    uint64_t first_seq, last_seq, points;
} mt_logrun;

typedef struct mt_head {
    mt_head_series *s; /* by series id */
    uint32_t cap;
    uint64_t points;
    uint64_t bytes;    /* memory the series and their buckets hold */
    int64_t max_ts;    /* newest timestamp ever seen (event-time watermark) */
    uint64_t appended; /* points appended since open (the seal's settle clock, in points) */
    mt_head_hour *hours;
    size_t nhours, hours_cap;
    mt_logrun *log; /* the head log's records, ascending (writer thread) */
    size_t nlog, log_cap;
    uint64_t log_points; /* points in them, sealed ones included */
} mt_head;

void mt_head_free(mt_head *h);
/* Append one point (ids must be < 2^31) of the log record seq. */
int mt_head_append(mt_head *h, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str,
                   uint64_t seq, int64_t wall);
/*
 * Ask for the memory mt_head_append(h, id, ts, ...) will touch, points ahead of it, in three
 * stages each a few points after the one before (each reads what the one before fetched):
 * 0 the series, 1 its buckets, 2 the end of the bucket of ts's hour. Changes nothing.
 */
void mt_head_prefetch(const mt_head *h, uint32_t id, int64_t ts, int stage);
/* The log gained record seq (above every one before) of points points. The runs are an
   estimate for the seal (mt_seal.c): short of memory, a run grows longer instead. */
void mt_head_log_add(mt_head *h, uint64_t seq, uint64_t points);
/* The log lost every record before seq. */
void mt_head_log_trim(mt_head *h, uint64_t seq);
/* Points of the log's records from seq on (a bound: a run cut by a trim counts whole). */
uint64_t mt_head_log_points_from(const mt_head *h, uint64_t seq);
/* The oldest record whose points are still needed: the least first_seq of the hours not in
   hours[0..n) (ascending), or next when every hour is among them. */
uint64_t mt_head_log_floor(const mt_head *h, const int64_t *hours, size_t n, uint64_t next);
/* Remove every point of the hours in hours[0..n) (ascending hour indexes). */
void mt_head_drop(mt_head *h, const int64_t *hours, size_t n);
/* Whether hour is one of hours[0..n) (ascending). */
bool mt_head_hour_in(const int64_t *hours, size_t n, int64_t hour);
/* The points of series id with ts in [from, to), sorted, last write winning. */
int mt_head_collect(const mt_head *h, uint32_t id, int64_t from, int64_t to, mt_vtype type,
                    int64_t **ts, mt_val **v, char **strs, size_t *strs_len, size_t *n);

/* Owned point arrays (head collections, merges). */
typedef struct mt_pts {
    int64_t *ts;
    mt_val *v; /* strings: MT_VAL_STR into strs */
    char *strs;
    size_t strs_len, n;
} mt_pts;

void mt_pts_free(mt_pts *p);
/* Merge a sealed chunk's points with newer head points; equal timestamps take the head's. */
int mt_pts_merge(mt_vtype t, const mt_points *old, const mt_pts *h, mt_pts *out);

/* Head log records: encode points (id, ts, typed value) for LMDB, decode back. */
typedef struct mt_rec_point {
    uint32_t id;
    int64_t ts;
    mt_val v; /* strings: v.u = length, bytes at str */
    const char *str;
} mt_rec_point;

typedef struct mt_recbuf {
    uint8_t *raw; /* uncompressed record */
    size_t raw_len, raw_cap;
    uint8_t *out; /* compressed record, ready for LMDB */
    size_t out_len, out_cap;
    uint64_t npoints;
    int64_t last_ts;
    uint32_t last_id;
    int last_e;           /* the exponent of the last decimal float: tried first */
    struct mt_zstd_c *zc; /* mt_zstd.h; made on the first record */
} mt_recbuf;

void mt_rec_reset(mt_recbuf *r);
int mt_rec_add(mt_recbuf *r, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str);
/* Compress the record into r->out. */
int mt_rec_finish(mt_recbuf *r);
void mt_rec_free(mt_recbuf *r);
/* Decode a stored record and call fn for each point; type_of gives each id's type. */
int mt_rec_replay(const void *rec, size_t len, mt_vtype (*type_of)(void *, uint32_t),
                  int (*fn)(void *, const mt_rec_point *), void *ud);

/* ---- hour files ----------------------------------------------------------- */

typedef struct mt_hf_entry {
    uint32_t id;
    uint8_t type;
    uint64_t off; /* of the chunk in the file */
    uint32_t len; /* bytes of the chunk */
    uint32_t count;
    int64_t min_ts, max_ts;
    double sum, min, max, first, last; /* numeric types; 0 otherwise */
} mt_hf_entry;

typedef struct mt_hf_index {
    int64_t hour;
    mt_hf_entry *e; /* ascending by id */
    size_t n;
    uint64_t keys_off; /* the keys frame (version 2); keys_len 0: a version 1 file */
    uint32_t keys_len, keys_raw, keys_sum;
} mt_hf_index;

/* Path of an hour file generation: DIR/blocks/YYYY/MM/DD/HH.G.blk */
void mt_hf_path(char *out, size_t cap, const char *dir, int64_t hour, uint32_t gen);
/*
 * The reverse: the hour and generation of a path under blocks/ (*temp: a
 * temporary name, "HH.G.blk.tmp"). False for a path that is not an hour file.
 */
bool mt_hf_parse_path(const char *path, int64_t *hour, uint32_t *gen, bool *temp);

typedef struct mt_hf_writer mt_hf_writer;
/* Start writing generation gen of an hour (to a temp name). */
int mt_hf_begin(const char *dir, int64_t hour, uint32_t gen, mt_hf_writer **out);
/*
 * Append one encoded chunk with its summary and the series' canonical key
 * (kept in the file's keys frame, for rebuilding the index). MT_EINVAL when
 * ids do not ascend, the chunk is empty (a reader takes that for damage) or
 * the key is empty or too long.
 */
int mt_hf_add(mt_hf_writer *w, const mt_hf_entry *e, const void *chunk, size_t len, const void *key,
              size_t klen);
/* Write the footer, fsync, rename into place, fsync the directory. *bytes gets the size. */
int mt_hf_commit(mt_hf_writer *w, uint64_t *bytes);
/* Abandon (removes the temp file). NULL is a no-op. */
void mt_hf_abort(mt_hf_writer *w);
/* Read and verify an hour file's footer. */
int mt_hf_read_index(int fd, int64_t hour, mt_hf_index *out);
/*
 * Read and verify the keys frame of a file whose footer ix was read from
 * fd: fn(ud, i, key, klen) for the i-th entry's series key (valid during the
 * call). MT_EFORMAT for a version 1 file (no keys), MT_ECORRUPT, fn's result.
 */
int mt_hf_read_keys(int fd, const mt_hf_index *ix,
                    int (*fn)(void *ud, size_t i, const void *key, size_t klen), void *ud);
void mt_hf_index_free(mt_hf_index *ix);
/*
 * A read-only mapping of an hour file, shared by its hour descriptor and
 * the scans reading it. Acquire before leaving the engine's lock; the last
 * release unmaps, so a file replaced by a later seal stays readable until
 * every scan of it is done.
 */
typedef struct mt_hfmap {
    const uint8_t *base;
    size_t size;
    int refs; /* atomic */
} mt_hfmap;

int mt_hfmap_open(int fd, mt_hfmap **out);
void mt_hfmap_acquire(mt_hfmap *m);
void mt_hfmap_release(mt_hfmap *m);
/* mt_hf_read_index from a mapping of the file (a file replaced since it was mapped reads on). */
int mt_hf_read_index_map(const mt_hfmap *m, int64_t hour, mt_hf_index *out);
/* The public description of an index entry of hour `hour`. */
mt_chunk_info mt_hf_entry_info(int64_t hour, const mt_hf_entry *en);
/* Binary search; NULL when the series has no chunk in the hour. */
const mt_hf_entry *mt_hf_find(const mt_hf_index *ix, uint32_t id);

/* ---- the engine ------------------------------------------------------------ */

/* What an engine does with writes; the transitions are at the top of mt_engine.c. */
typedef enum mt_engine_state {
    MT_ENGINE_OPEN = 0,  /* writes, seals and jobs run on the writer thread */
    MT_ENGINE_READ_ONLY, /* opened read-only (no writer thread): all of them MT_ECLOSED */
    MT_ENGINE_FAILED,    /* fail-stop after an I/O failure: all of them MT_ECLOSED; reads go on */
    MT_ENGINE_CLOSING    /* mt_engine_close: the writer finishes its queue and stops */
} mt_engine_state;

#define MT_CARD_TENANTS 4096 /* tenants tracked per hour by the cardinality guard */

typedef struct mt_card {
    uint64_t hash;    /* of the tenant (business_id) */
    uint32_t created; /* series created this hour */
} mt_card;

/*
 * What a sealed hour holds while it is being read: made on first use
 * (mt_engine_hour_index, under e->hload) and published atomically in its
 * descriptor; freed only by the writer under the exclusive lock, when the
 * footer cache lets the footer go (mt_engine_trim_footers) or the hour
 * goes, so a reader holding the shared lock may use it. idx is published
 * atomically after map.
 */
typedef struct mt_hour_live {
    mt_hfmap *map;    /* the current generation, mapped; NULL until read, or unreadable */
    mt_hf_index *idx; /* parsed footer, NULL until needed (atomic: readers load it) */
    uint64_t used;    /* e->clock when idx was last asked for (atomic): the cache's order */
    int bad;          /* why the file cannot be read (0: not known to be unreadable) */
} mt_hour_live;

/*
 * A sealed hour: 24 bytes while it is only kept, so that memory does not
 * grow with the history kept but with what is read (docs/storage.md,
 * "Known gaps"). Opening the data dir checks each current file's size
 * against the index's (metrond; a reader process looks at none: its
 * snapshot keeps a replaced file, mt_engine_bury); the file is mapped and
 * its footer parsed on first use (mt_engine_hour_index). The hour's
 * sealed_seq is not kept: open's replay holds it for the hours the head log
 * may still name (e->replay_sealed), retention reads it from the hours
 * record it rewrites.
 */
typedef struct mt_hour_desc {
    int32_t hour;       /* hour index: the hours record's key holds 32 bits too */
    uint32_t gen;       /* the current generation */
    uint64_t bytes;     /* its file's size */
    mt_hour_live *live; /* NULL until first read (atomic: readers load it) */
} mt_hour_desc;
_Static_assert(sizeof(mt_hour_desc) == 24, "an hour kept costs 24 bytes (bench/history.sh)");

/* A sealed hour whose sealed_seq is at or after the head log's first record at open. */
typedef struct mt_replay_hour {
    int64_t hour;
    uint64_t sealed_seq; /* replay skips its points of records up to this one */
} mt_replay_hour;

/* A replaced generation's file, kept while another process's snapshot may still name it. */
typedef struct mt_grave {
    char *path;
    uint64_t txnid; /* the transaction that stopped naming it */
} mt_grave;

/* A file a committed delete stopped naming (meta "unref:HOUR.GEN", docs/format.md). */
typedef struct mt_unref {
    int64_t hour;
    uint32_t gen;
    uint64_t bytes; /* its size as the hours record gave it */
} mt_unref;

struct mt_engine {
    mt_engine_options opt;
    char *dir;
    int lock_fd; /* flock on DIR/LOCK: one engine per directory */
    mt_kv *kv;
    mt_encoder *enc;
    mt_decoder *dec; /* writer thread only */

    pthread_rwlock_t lock;    /* guards index, head, hours for readers vs the writer */
    pthread_mutex_t hload;    /* one parse of an hour's footer at a time (mt_engine_hour_index) */
    pthread_mutex_t age_lock; /* guards age (mt_engine_set_age_policy vs the writer) */
    mt_retention *age;        /* the raw keeps that refuse old points (owned; NULL: none) */
    int64_t age_min;          /* the shortest of them (atomic; 0: no point is too old) */
    uint64_t footers;         /* footers parsed and held (atomic) */
    uint64_t footer_bytes;    /* their bytes (atomic; mt_engine_trim_footers keeps it bounded) */
    uint64_t clock;           /* ticks on every footer use (atomic) */
    mt_index index;
    mt_head head;
    mt_hour_desc *hours; /* sealed hours, ascending */
    size_t nhours, hours_cap;

    pthread_mutex_t qlock; /* guards the queue, the state and the flags below */
#ifndef NDEBUG
    pthread_t qlock_owner; /* debug builds: who holds qlock (qlock_take), for the asserts */
    bool qlock_held;
#endif
    pthread_cond_t qcond; /* writer waits for work */
    pthread_cond_t dcond; /* API threads wait for seal requests */
    mt_batch *qhead, *qtail;
    mt_engine_state state;     /* mt_engine.c, "States": changed by set_state under qlock */
    uint32_t committed_n;      /* series ids <= this are committed (guarded by lock) */
    uint64_t series_forgotten; /* deletes that took series out of the index (guarded by lock) */
    bool nospace; /* the last commit found the disk full (not fatal: mt_engine_after_commit) */
    int fail_rc;  /* what made the engine fail (mt_engine_health says it) */
    int (*job)(mt_engine *e, void *ud); /* a request for the writer thread (one at a time) */
    void *job_ud;
    uint64_t job_gen; /* bumps when a requested job finishes */
    int job_rc;
    pthread_t writer;
    bool writer_started;

    int64_t card_hour;             /* wall-clock hour the counts below are for */
    mt_card card[MT_CARD_TENANTS]; /* new series per tenant in card_hour */
    size_t card_n;
    uint64_t seq;        /* last committed sequence */
    uint64_t last_txnid; /* the LMDB id of the last write transaction committed */
    mt_grave *graves;    /* files to unlink once no reader is older (writer thread) */
    size_t ngraves, graves_cap;
    mt_unref *unref; /* open: the files meta "unref:" lists, for the sweep (mt_delete.c) */
    size_t nunref;
    mt_kv_txn *snap;                    /* a read-only engine's snapshot, open until close */
    uint64_t replay_seq, replay_points; /* open: the head record being replayed */
    mt_replay_hour *replay_sealed;      /* open: the hours the log may hold sealed points of */
    size_t nreplay_sealed, replay_sealed_cap;
    uint32_t next_gen;
    mt_recbuf rec;
    mt_engine_stats st;
    uint64_t format;            /* index.mdb's format version (as open found it, or made it:
                                   a writer's is MT_FORMAT_NEW) */
    bool plain_kv;              /* a reader of a format-1 index: values without checksums */
    uint64_t migrated_records;  /* records open rewrote with their checksum (format 1 -> 2) */
    char head_damage[1100];     /* the first head record skipped at open, for people */
    uint64_t kv_damage_at_open; /* mt_kv_corruption's count once open was done */
    /* the commit floor (mt_engine_floor_get; writer thread) */
    int64_t floor;       /* as in meta "floor" (MT_TS_MIN when absent) */
    int64_t floor_group; /* the lowest accepted timestamp of the group being committed */
    int64_t floor_low;   /* the lowest committed since the last mt_engine_floor_get */
};

/* Hour index of a timestamp (floor division). */
static inline int64_t mt_hour_of(int64_t ts)
{
    return ts >= 0 ? ts / MT_HOUR_NS : -((-(ts + 1)) / MT_HOUR_NS) - 1;
}

/* Find a sealed hour (under e->lock). */
mt_hour_desc *mt_engine_hour(mt_engine *e, int64_t hour);
/*
 * The hour's footer, parsed on first use from its mapping (under e->lock,
 * shared or exclusive, or on the writer thread): MT_OK with d->live->map
 * and d->live->idx set (valid while the lock is held, or on the writer
 * thread until it trims or publishes), or why the file cannot be read (kept
 * in d->live->bad: later calls say it again), or -ENOMEM.
 */
int mt_engine_hour_index(mt_engine *e, mt_hour_desc *d);

/*
 * The one way a new generation of an hour becomes visible (seal, merge of
 * late points, retention), once the transaction that names it committed:
 * under the exclusive lock the hour list switches to the new generations
 * (or drops hours), and then also(e, ud) runs (may be NULL: a seal drops
 * the sealed points from the head there, so that a reader finds each point
 * in the file or in the head, never both, never neither); after the lock,
 * the files they replaced are unlinked (a scan still reading one keeps its
 * mapping). -ENOMEM when an hour could not be recorded in memory (its file
 * is committed: the next open maps it), else MT_OK. Writer thread.
 * mt_engine_discard unlinks the new files of a publication that did not
 * commit.
 */
typedef struct mt_publish {
    int64_t hour;
    uint32_t gen;     /* the new generation (unused when drop) */
    uint64_t bytes;   /* its size */
    bool drop;        /* the hour goes whole */
    bool had_old;     /* a generation is replaced: old_gen */
    uint32_t old_gen; /* unlinked after the switch */
} mt_publish;
int mt_engine_publish(mt_engine *e, const mt_publish *p, size_t n,
                      void (*also)(mt_engine *e, void *ud), void *ud);
void mt_engine_discard(mt_engine *e, const mt_publish *p, size_t n);
/* Unlink the replaced files that no open snapshot of any process names any more (writer
   thread; a file not yet free stays for a later call, or for the next open's sweep). */
void mt_engine_bury(mt_engine *e);

/*
 * Files a delete made unreferenced (mt_delete.c): its transaction lists each
 * one in meta under "unref:HOUR.GEN" (value: the file's size), so that a
 * crash before they are unlinked does not leave the deleted points on disk.
 * mt_engine_unref_load (open, in recover's transaction) reads the list into
 * e->unref; mt_engine_unref_listed tells the sweep whether a file the index
 * does not name is one of them (the sweep unlinks it instead of setting it
 * aside); mt_engine_unref_settle (writer thread, or open after the sweep,
 * after mt_engine_bury) removes, in a committed transaction, every entry
 * whose file is gone or is named by the index again (never unlinked then),
 * keeping those a reader's snapshot still holds, and frees e->unref.
 * An entry whose key or value does not parse lists nothing: it is left as
 * it is. MT_OK, -ENOMEM, or an error of LMDB.
 */
int mt_engine_unref_put(mt_kv_txn *t, int64_t hour, uint32_t gen, uint64_t bytes);
int mt_engine_unref_load(mt_engine *e, mt_kv_txn *t);
bool mt_engine_unref_listed(const mt_engine *e, int64_t hour, uint32_t gen, uint64_t size);
int mt_engine_unref_settle(mt_engine *e);

/*
 * Drop the least recently used parsed footers, each with its hour's live
 * part (mapping included: a scan holds its own reference), until their
 * bytes are within opt.footer_cache (writer thread; takes the exclusive
 * lock only when over: no reader holds a footer across it, scans copy what
 * they need under the shared lock).
 */
void mt_engine_trim_footers(mt_engine *e);

/* Forget a sealed hour and unmap its file (writer, exclusive lock); its file stays. */
void mt_engine_hour_remove(mt_engine *e, int64_t hour);
/*
 * Insert or replace a sealed hour (writer, exclusive lock; or open): metrond
 * checks its file's size. -ENOMEM when it could not be recorded, else MT_OK
 * or why its file cannot be read (the hour is recorded all the same).
 */
int mt_engine_hour_set(mt_engine *e, int64_t hour, uint32_t gen, uint64_t bytes);
/* index.mdb's format (meta "version"; docs/format.md). A new index is written as
   MT_FORMAT_NEW, and a writer's open raises formats 2 to 5 to it in place (changing nothing
   else): from format 5 on, the hour files it names may be of version 3 (near-decimal footer
   summaries) with chunks of version 2 (mt_format.h), which builds reading up to 4 could only
   report as damage; they refuse the directory instead ("format 5"). From format 6 on, the
   head log may hold records of version 2 (mt_head.c), which builds reading up to 5 would skip
   at replay, losing their points; they refuse it ("format 6"). Format 4 was format 3 whose
   series_by_id may hold a tombstone (a deleted series' id with its type alone); 5 and 6 may
   hold them too. */
#define MT_FORMAT_TOMBSTONES 4
#define MT_FORMAT_NEW        6
#define MT_FORMAT_MAX        6 /* the newest this build reads */

/* An hours record's value (docs/format.md): u32 LE generation, u64 LE file bytes, u64 LE
   sealed_seq; format 2 wrote the first 12 bytes only (sealed_seq 0: the log then held no
   point of a sealed generation). */
#define MT_HOUR_VAL 20
void mt_engine_hour_val(uint8_t v[MT_HOUR_VAL], uint32_t gen, uint64_t bytes, uint64_t sealed_seq);
/* Parse one: MT_OK, or MT_ECORRUPT when it is neither 12 nor 20 bytes. */
int mt_engine_hour_parse(const void *v, size_t vl, uint32_t *gen, uint64_t *bytes,
                         uint64_t *sealed_seq);
/* The MT_DB_HOURS key of an hour. */
void mt_engine_hour_key(uint8_t key[4], int64_t hour);
/* Store a u64 under a name in MT_DB_META. */
int mt_engine_meta_put(mt_kv_txn *t, const char *name, uint64_t v);
/* Finish e->rec and store it as the next head record (and the sequence in meta). */
int mt_engine_put_record(mt_engine *e, mt_kv_txn *t);

/* Hourly rollups being gathered while an hour is sealed (mt_rollup.c). */
typedef struct mt_rollups mt_rollups;
int mt_rollups_new(int64_t hour, mt_rollups **out);
void mt_rollups_free(mt_rollups *r);
/* Add every value of one series for the hour (its own rollup, and its group's values). */
int mt_rollups_add(mt_rollups *r, const mt_index *ix, uint32_t id, mt_vtype t, const mt_val *v,
                   size_t n);
/* Seconds spent on the group rows alone (values gathered, count to p99; no sketch, no store). */
double mt_rollups_group_seconds(const mt_rollups *r);
/* Compute every row and pack them (compressed), freeing the values gathered: a seal of
   several hours holds one hour's values at a time. Adding after it is a bug. */
int mt_rollups_finish(mt_rollups *r);
/* Store the rows in t (finishing first when that was not done); may run again in a later
   transaction when t aborts. */
int mt_rollups_store(mt_rollups *r, mt_kv_txn *t);
/* Delete (dry_run: count) the rollups of the hours before `before`; *hours += those hours. */
int mt_rollups_drop(mt_kv_txn *t, int64_t before, bool dry_run, size_t *hours);

/*
 * Run fn(e, ud) on the writer thread, between group commits (so it may
 * use e->dec, write files and commit LMDB transactions like a seal), and
 * return its result. One job at a time; callers wait their turn.
 * MT_ECLOSED when the engine is not MT_ENGINE_OPEN (read-only, failed or closing).
 */
int mt_engine_run_job(mt_engine *e, int (*fn)(mt_engine *e, void *ud), void *ud);

/* Queue an outbox entry in t (writer thread; a no-op unless opt.outbox). */
int mt_outbox_put(mt_engine *e, mt_kv_txn *t, uint8_t kind, const void *data, size_t len);
/* Remove every outbox entry up to upto in t; *removed is incremented per entry. */
int mt_outbox_ack_txn(mt_kv_txn *t, uint64_t upto, size_t *removed);

/* Seal hours (writer thread). */
typedef enum mt_seal_mode {
    MT_SEAL_DUE,      /* the hours due (mt_engine.h: Sealing) */
    MT_SEAL_ALL,      /* every hour with points in the head */
    MT_SEAL_BACKFILL, /* the sealed hours with late points in the head */
} mt_seal_mode;
int mt_seal_run(mt_engine *e, mt_seal_mode mode, size_t *hours);
/* In the writer's transaction t: write the head log again with every head point outside
   hours[0..n) (ascending), numbering records from e->seq + 1; *points counts them. A caller
   whose transaction fails sets e->seq back. */
int mt_seal_log_rewrite(mt_engine *e, mt_kv_txn *t, const int64_t *hours, size_t n,
                        uint64_t *points);
/* In t: the sequence number of the head log's first record (0: the log is empty). */
int mt_seal_log_first_seq(mt_kv_txn *t, uint64_t *seq);
/* After that transaction committed (exclusive lock): the log's bookkeeping, from seq_before. */
void mt_seal_log_rewritten(mt_engine *e, uint64_t seq_before, uint64_t points);

/* mt_retention.c: the raw keep of the series key[0..klen) under p, the most specific rule that
   matches (<= 0: forever); a key that does not parse gets the default. */
int64_t mt_retention_keep_of(const mt_retention *p, const char *key, size_t klen);
/* One allocation holding a copy of p, its rules and their names (free() it); NULL: ENOMEM. */
mt_retention *mt_retention_copy(const mt_retention *p);
/* The shortest raw keep of p, the default's and every rule's (0: every point is kept forever). */
int64_t mt_retention_shortest_keep(const mt_retention *p);

/*
 * Every commit's outcome goes through here (writer thread; takes qlock): an
 * I/O failure makes the engine refuse all writes from now on (fail-stop:
 * nothing unacknowledged is lost, nothing is retried and then acknowledged);
 * a full map (MT_EFULL) or a full disk (-ENOSPC: nothing was committed, the
 * index is as before) only fails this commit, and the next may succeed.
 * Returns rc.
 */
int mt_engine_after_commit(mt_engine *e, int rc);

/*
 * The one commit path of every write transaction: begin, run body, commit,
 * the outcome through mt_engine_after_commit. When the body or the commit
 * says MT_EFULL (LMDB's map is full) the transaction is aborted, undo runs,
 * the map is doubled (mt_kv_grow) and body runs again, up to 8 times; any
 * other failure aborts, runs undo and is returned. body must put memory
 * back as it found it when it fails, or leave that to undo (may be NULL),
 * so that running it again is safe. Writer thread (or open).
 */
typedef int (*mt_txn_body)(mt_engine *e, mt_kv_txn *t, void *ud);
int mt_engine_write_txn(mt_engine *e, mt_txn_body body, void (*undo)(mt_engine *e, void *ud),
                        void *ud);

/*
 * Rebuild a lost index from the hour files (mt_repair.c), in recovery's
 * write transaction t on an empty index: series, postings, hours and
 * rollups; new generations of the files. Reports through opt.report.
 */
int mt_repair_rebuild_index(mt_engine *e, mt_kv_txn *t);

#endif
