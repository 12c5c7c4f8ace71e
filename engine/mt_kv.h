/*
 * mt_kv.h — Metron's thin LMDB layer (private to engine/); mt_kv.c is the
 * only file that includes <lmdb.h>.
 *
 * One environment, index.mdb in the data directory, with the named
 * databases of mt_kv_db. Write transactions come from one thread at a time
 * (LMDB allows one writer); read transactions are lock-free and may run on
 * any thread, one per thread at a time, and should stay short.
 *
 * LMDB codes are mapped here: MDB_NOTFOUND -> MT_ENOTFOUND, MDB_MAP_FULL ->
 * MT_EFULL (the caller aborts, calls mt_kv_grow, and retries),
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND -> MT_ECORRUPT, MDB_VERSION_MISMATCH /
 * MDB_INVALID -> MT_EFORMAT, other MDB_* codes -> MT_EINVAL, errno values
 * -> -errno.
 *
 * Pointers returned by get and the cursor point into the map and are valid
 * until the end of the transaction (or the next write in it).
 *
 * Checksums (format 2): every value stored carries a 4-byte trailer, the
 * low 32 bits of XXH3-64 chained over the database, the key and the value:
 *   h = XXH3_64_withSeed(key, klen, 0x4d54524f4e4b5653 + db);
 *   trailer = (uint32_t)XXH3_64_withSeed(value, vlen, h), little-endian,
 * so a flipped bit in a key (a series "renamed"), in a value, or a record
 * moved to another database fails the check. put appends it; get and every
 * cursor step verify and strip it, so callers see their own bytes and none
 * can forget. A mismatch is MT_ECORRUPT, never data; the record's
 * description (file, database, key decoded: series id, hour, sequence, and
 * what it belongs to) is kept for mt_kv_corruption. A cursor that met a
 * damaged record still returns its key and stays on it, so
 * mt_kv_cursor_next steps past it. Duplicates (MT_DB_POSTINGS) carry the
 * trailer too: it follows the value and is a function of (db, key, value),
 * so duplicates keep their value order and a value has exactly one stored
 * form. LMDB's own page damage (MDB_CORRUPTED, MDB_PAGE_NOTFOUND) is
 * remembered the same way, naming the database; so are two defences
 * against damaged page structure that record checksums cannot see: a key
 * or value whose size would reach past the end of the file (a read there
 * would be SIGBUS), and a cursor step that does not land after the
 * previous key (a damaged node pointer showing one record twice).
 *
 * Faults: LMDB reads its pages in place, so a page number, offset or size
 * that damage sends past the end of the file (or a disk's read error on a
 * mapped page) is a SIGBUS or SIGSEGV inside LMDB. Every call here that
 * reads pages runs under a per-thread guard: the first mt_kv_open installs
 * a SIGBUS/SIGSEGV handler that returns into the guarded call when the
 * faulting thread is inside one, and otherwise hands the fault to the
 * handler it replaced (a fault anywhere else still crashes). The call
 * returns MT_ECORRUPT, described for mt_kv_corruption (the page, and
 * whether it lies past the end of the file); its transaction is marked and
 * can only end: every later call on it is MT_ECORRUPT and commit aborts it.
 * LMDB's assertions on damaged pages are caught the same way.
 */
#ifndef MT_KV_H
#define MT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef enum mt_kv_db {
    MT_DB_META = 0,     /* name -> value: format version, sequence, ... */
    MT_DB_SERIES,       /* canonical key -> u32 id BE, u8 type */
    MT_DB_SERIES_BY_ID, /* u32 id BE -> canonical key */
    MT_DB_POSTINGS,     /* term -> u32 ids BE (sorted duplicates) */
    MT_DB_HOURS,        /* u32 hour BE -> sealed hour file descriptor */
    MT_DB_HEAD,         /* u64 sequence BE -> head record (write-ahead log) */
    MT_DB_ROLLUPS,      /* 'G' | 'S' hour -> the hour's rollups (mt_rollup.c) */
    MT_DB_OUTBOX,       /* u64 sequence BE -> an entry to mirror (mt_outbox.c) */
    MT_DB_STATE,        /* key -> a small record of another part, e.g. an alert (mt_state.c) */
    MT_DB__COUNT
} mt_kv_db;

typedef struct mt_kv mt_kv;
typedef struct mt_kv_txn mt_kv_txn;
typedef struct mt_kv_cursor mt_kv_cursor;

typedef struct mt_kv_options {
    size_t map_size; /* bytes of address space (sparse); default 64 GiB */
    bool nosync;     /* true: commits do not fsync (loses the last commits on power loss) */
    bool read_only;  /* open for reading only, beside a writer in another process; the
                        databases must exist (MT_ENOTFOUND otherwise); a missing or empty
                        index.mdb (a writer stopped before its first commit) is -ENOENT */
    char *why;       /* when open fails on damage (MT_ECORRUPT): what and where, for people */
    size_t why_cap;  /* bytes of why (0: not wanted) */
} mt_kv_options;

/* Open (creating if needed) index.mdb in dir. MT_OK and *out, or an error. */
int mt_kv_open(const char *dir, const mt_kv_options *opt, mt_kv **out);

/* Close the environment. No transaction may be open. NULL is a no-op. */
void mt_kv_close(mt_kv *kv);

/* Double the map size (after MT_EFULL, with no transaction open). */
int mt_kv_grow(mt_kv *kv);

/* Flush to disk (for nosync environments). */
int mt_kv_sync(mt_kv *kv);

/*
 * Drop this process's mapping of index.mdb's pages (not the pages: they stay
 * in the page cache, and the next read maps them again). LMDB reads through
 * its map, and the kernel maps the cached pages around each page read, so
 * a writer that walks the head log to trim it ends up with the whole file
 * in its resident set; called after a seal, this keeps the process's RSS
 * about the pages it is using. Any thread; a no-op on failure.
 */
void mt_kv_unmap_pages(mt_kv *kv);

/* Bytes of index.mdb up to its last used page (its size on disk, free pages included). */
uint64_t mt_kv_used_bytes(mt_kv *kv);

/* Bytes of the pages that hold live data in every database (free pages excluded). */
uint64_t mt_kv_live_bytes(mt_kv *kv);

/*
 * Rewrite index.mdb without its free pages (LMDB's file never shrinks on
 * its own): mdb_env_copyfd2(MDB_CP_COMPACT) into index.mdb.compact, fsync,
 * rename over index.mdb, fsync the directory, drop the old lock file,
 * reopen. Waits for this process's open transactions and holds new ones
 * until done; reader processes keep their snapshot of the old file. A
 * crash leaves either file whole (a stray .compact is removed at open).
 * *before and *after (may be NULL) get the file's bytes. MT_OK; MT_EINVAL
 * read-only; MT_ECLOSED when the file could not be reopened (every later
 * transaction fails with -EIO); another error: the old file is kept.
 * Every record is verified first (mt_kv_verify): a damaged index is not
 * compacted (MT_ECORRUPT, described for mt_kv_corruption), since the copy
 * would carry the damage on and reads pages outside the fault guard.
 */
int mt_kv_compact(mt_kv *kv, uint64_t *before, uint64_t *after);

/*
 * Write a consistent copy of index.mdb, as of a read snapshot LMDB takes
 * when the copy starts, to path (created; it must not exist), without free
 * pages (mdb_env_copyfd2, MDB_CP_COMPACT), and fsync it; the directory
 * entry is the caller's to make durable. Works on a read-only kv beside a
 * writer in another process, which keeps writing meanwhile. The copy walks
 * pages outside the fault guard: the caller verifies it (open it, then
 * mt_kv_verify). MT_OK, or -errno / an LMDB error (path removed).
 */
int mt_kv_copy(mt_kv *kv, const char *path);

/* Begin a transaction. write: the single writer; else a read snapshot. */
int mt_kv_begin(mt_kv *kv, bool write, mt_kv_txn **out);

/* Commit (write) or end (read) a transaction; it is freed either way. */
int mt_kv_commit(mt_kv_txn *txn);

/* Abandon a transaction and free it. NULL is a no-op. */
void mt_kv_abort(mt_kv_txn *txn);

/* Look a key up. MT_OK with val and vlen set, or MT_ENOTFOUND. */
int mt_kv_get(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void **val,
              size_t *vlen);

/*
 * Store key -> val (for MT_DB_POSTINGS: add a duplicate), with its checksum.
 * val must not point into the map (a value this write transaction got):
 * it is copied into the page LMDB reserves for it.
 */
int mt_kv_put(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
              size_t vlen);

/* The id of txn's snapshot; of a write transaction, the id it commits as. */
uint64_t mt_kv_txn_id(mt_kv_txn *txn);

/* The oldest snapshot that an open read transaction of any process holds on kv's file
   (UINT64_MAX: none), after clearing the slots of processes that died. A file that only older
   snapshots name can be removed once this passes the transaction that replaced it. */
int mt_kv_oldest_reader(mt_kv *kv, uint64_t *txnid);

/* Delete key (every duplicate). MT_OK or MT_ENOTFOUND. */
int mt_kv_del(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen);

/* Delete one duplicate val of key in a DUPSORT database (postings), the others stay. MT_OK or
   MT_ENOTFOUND. */
int mt_kv_del_dup(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
                  size_t vlen);

/* Delete every entry of db. */
int mt_kv_drop_all(mt_kv_txn *txn, mt_kv_db db);

/* Delete every entry of db whose key sorts before key (a prefix of the database, in key order);
 *deleted counts them. MT_OK, or an error of the write (the transaction must then abort). */
int mt_kv_del_below(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, size_t *deleted);

/* A cursor over db, freed by mt_kv_cursor_close (before the transaction ends). */
int mt_kv_cursor_open(mt_kv_txn *txn, mt_kv_db db, mt_kv_cursor **out);
void mt_kv_cursor_close(mt_kv_cursor *c);

/*
 * Position at the first entry with key >= key (klen 0: the first entry) and
 * return it; then mt_kv_cursor_next returns the following entries in key
 * order (duplicates in order). MT_OK or MT_ENOTFOUND at the end.
 */
int mt_kv_cursor_seek(mt_kv_cursor *c, const void *key, size_t klen, const void **k, size_t *kl,
                      const void **v, size_t *vl);
int mt_kv_cursor_next(mt_kv_cursor *c, const void **k, size_t *kl, const void **v, size_t *vl);

/* The last entry of the cursor's database: MT_OK or MT_ENOTFOUND (empty). */
int mt_kv_cursor_last(mt_kv_cursor *c, const void **k, size_t *kl, const void **v, size_t *vl);

/*
 * Corrupt records met since open on any transaction of kv (0: none); the
 * last one's description ("DIR/index.mdb: database series_by_id, key series
 * id 7 (...): checksum mismatch ...") is copied into out (cap bytes,
 * truncated, "" when none). Any thread.
 */
uint64_t mt_kv_corruption(mt_kv *kv, char *out, size_t cap);

/*
 * on false: values are stored and read as they are, without a trailer (a
 * format-1 index read as it is, or before mt_kv_add_checksums). Default
 * true. Set it with no transaction open.
 */
void mt_kv_set_checksums(mt_kv *kv, bool on);

/*
 * Format 1 -> 2, in the write transaction txn: rewrite every record of every
 * database with its trailer (duplicates: each key's are deleted and written
 * again), a batch of keys at a time. *records (may be NULL) gets the count.
 * MT_EINVAL when checksums are off or kv is read-only; MT_EFULL (abort,
 * mt_kv_grow, begin again); -ENOMEM.
 */
int mt_kv_add_checksums(mt_kv_txn *txn, uint64_t *records);

/*
 * Read every record of db in order: each verifies its checksum, each key
 * (and duplicate) sorts after the one before, and their number is LMDB's
 * count of the database. MT_OK (*records, may be NULL), or MT_ECORRUPT
 * (described for mt_kv_corruption).
 */
int mt_kv_verify(mt_kv_txn *txn, mt_kv_db db, size_t *records);

/* The number of entries of db. */
int mt_kv_count(mt_kv_txn *txn, mt_kv_db db, size_t *n);

/* The version of the LMDB this process runs with. */
void mt_kv_lib_version(int *major, int *minor, int *patch);

#endif
