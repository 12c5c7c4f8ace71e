/*
 * mt_engine.c — open, recovery, the writer thread (group commit) and
 * shutdown. Sealing is in mt_seal.c, reading in mt_scan.c.
 *
 * The writer thread is the only LMDB writer and the only mutator of the
 * in-memory index, head and hour list; it takes e->lock exclusively only
 * for the moments it changes them, so readers (shared lock) see either the
 * state before a commit or after it, never half of one.
 *
 * States (e->state, mt_engine_state; changed only by set_state, under
 * e->qlock; read under it, or atomically where a stale value is harmless):
 *
 *   OPEN ------------> FAILED -----> CLOSING
 *     |   a commit or     (fail-stop:     ^
 *     |   fsync failed    reads go on)    |
 *     +-----------------------------------+  mt_engine_close
 *   READ_ONLY  (set by open; no writer thread, so never left)
 *
 *   OPEN       submit, jobs and seals run on the writer thread;
 *   READ_ONLY  an engine opened read-only: they are MT_ECLOSED;
 *   FAILED     an I/O failure at commit (mt_engine_after_commit): they are
 *              MT_ECLOSED from then on, nothing unacknowledged is kept,
 *              and /health says why;
 *   CLOSING    mt_engine_close: new submissions and jobs are MT_ECLOSED,
 *              the writer commits what is queued and stops.
 *
 * A full disk is not a state: e->nospace only makes /health answer 507
 * until a commit succeeds again. Debug builds assert that set_state runs
 * under qlock and that each transition is one of the above.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_hash.h"
#include "mt_worker.h"
#include "mt_fs.h"
#include "mt_time.h"
#include "mt_zstd.h"

/* ---- the queue lock and the state --------------------------------------------- */

static void qlock_take(mt_engine *e)
{
    pthread_mutex_lock(&e->qlock);
#ifndef NDEBUG
    e->qlock_owner = pthread_self();
    e->qlock_held = true;
#endif
}

static void qlock_give(mt_engine *e)
{
#ifndef NDEBUG
    assert(e->qlock_held && pthread_equal(e->qlock_owner, pthread_self()));
    e->qlock_held = false;
#endif
    pthread_mutex_unlock(&e->qlock);
}

/* Wait on c, which gives qlock up meanwhile (ts NULL: no deadline). ETIMEDOUT or 0. */
static int qwait(mt_engine *e, pthread_cond_t *c, const struct timespec *ts)
{
#ifndef NDEBUG
    e->qlock_held = false;
#endif
    int rc = ts ? pthread_cond_timedwait(c, &e->qlock, ts) : pthread_cond_wait(c, &e->qlock);
#ifndef NDEBUG
    e->qlock_owner = pthread_self();
    e->qlock_held = true;
#endif
    return rc;
}

static void set_state(mt_engine *e, mt_engine_state to)
{
#ifndef NDEBUG
    assert(e->qlock_held && pthread_equal(e->qlock_owner, pthread_self()));
#endif
    mt_engine_state from = e->state;
    assert((from == MT_ENGINE_OPEN && to != MT_ENGINE_OPEN) ||
           (from == MT_ENGINE_FAILED && to == MT_ENGINE_CLOSING));
    (void)from;
    __atomic_store_n(&e->state, to, __ATOMIC_RELEASE);
}

static mt_engine_state state_now(mt_engine *e)
{
    return __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
}

/* 2: every LMDB value carries a checksum (mt_kv.h); 1 is migrated. 3: an hours value may carry
   its sealed_seq (the head log is trimmed, not rewritten); 2 is 3 without one, marked 3 by a
   writer. 4: series_by_id may hold a deleted series' tombstone (mt_engine_int.h); only
   mt_engine_delete writes it, a new index is 3. */
#define FORMAT_VERSION        MT_FORMAT_MAX
#define SEAL_CHECK_NS         1000000000LL /* the writer looks for due hours at least this often */
#define DEFAULT_GRACE_NS      (300LL * 1000000000LL)
#define DEFAULT_LATE_QUIET_NS (60LL * 1000000000LL)
#define DEFAULT_SETTLE        16
#define DEFAULT_FOOTER_CACHE  ((uint64_t)256 << 20)
#define GROUP_POINTS          ((size_t)1 << 18) /* a group commit takes batches up to this many */

const double mt_commit_bucket_le[MT_COMMIT_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.0 / 0.0};

mt_engine_options mt_engine_options_default(void)
{
    return (mt_engine_options){.grace_ns = DEFAULT_GRACE_NS,
                               .late_quiet_ns = DEFAULT_LATE_QUIET_NS,
                               .settle_records = DEFAULT_SETTLE,
                               .settle_points = GROUP_POINTS,
                               .auto_seal = true};
}

static int64_t default_clock(void *ud)
{
    (void)ud;
    return mt_now_ns();
}

/* ---- hours ------------------------------------------------------------------ */

mt_hour_desc *mt_engine_hour(mt_engine *e, int64_t hour)
{
    size_t lo = 0, hi = e->nhours;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->hours[mid].hour < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->nhours && e->hours[lo].hour == hour ? &e->hours[lo] : NULL;
}

/* Map the hour's current file and check its size against the index's: no byte read. */
static int hour_map(mt_engine *e, const mt_hour_desc *d, mt_hfmap **map)
{
    char path[4096];
    mt_hf_path(path, sizeof path, e->dir, d->hour, d->gen);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? MT_ECORRUPT : -errno;
    int rc = mt_hfmap_open(fd, map);
    close(fd);                                             /* the mapping keeps the file */
    if (!rc && (*map)->size != d->bytes) rc = MT_ECORRUPT; /* truncated or replaced by another */
    if (rc) {
        mt_hfmap_release(*map);
        *map = NULL;
    }
    return rc;
}

/* The hour's live part, made when missing (under e->hload, or the exclusive lock with no
   writer thread); NULL short of memory. */
static mt_hour_live *hour_live(mt_hour_desc *d)
{
    mt_hour_live *l = d->live;
    if (l) return l;
    l = calloc(1, sizeof *l);
    if (l) __atomic_store_n(&d->live, l, __ATOMIC_RELEASE);
    return l;
}

/* Record why the hour's file cannot be read (nothing short of memory: its next read finds it
   again). */
static void hour_bad(mt_hour_desc *d, int rc)
{
    mt_hour_live *l = hour_live(d);
    if (l) __atomic_store_n(&l->bad, rc, __ATOMIC_RELAXED);
}

static int hour_bad_now(const mt_hour_desc *d)
{
    const mt_hour_live *l = __atomic_load_n(&d->live, __ATOMIC_ACQUIRE);
    return l ? __atomic_load_n(&l->bad, __ATOMIC_RELAXED) : MT_OK;
}

/*
 * Check the hour's current file without mapping it: a missing or truncated
 * file is known at once. Both map it on first use. A reader process does
 * not even look at open: its snapshot stays open until close, and the
 * writer unlinks a replaced generation only once no snapshot older than the
 * replacement is open (mt_engine_bury); a damaged file is found by the scan
 * that needs it.
 */
static int hour_stat(mt_engine *e, const mt_hour_desc *d)
{
    char path[4096];
    struct stat st;
    mt_hf_path(path, sizeof path, e->dir, d->hour, d->gen);
    if (stat(path, &st)) return errno == ENOENT ? MT_ECORRUPT : -errno;
    return (uint64_t)st.st_size == d->bytes ? MT_OK : MT_ECORRUPT;
}

static int hour_check(mt_engine *e, mt_hour_desc *d)
{
    return e->opt.read_only ? MT_OK : hour_stat(e, d); /* a reader: at first use, or asked */
}

static uint64_t footer_size(const mt_hf_index *ix)
{
    return sizeof *ix + ix->n * sizeof *ix->e;
}

int mt_engine_hour_index(mt_engine *e, mt_hour_desc *d)
{
    uint64_t now = __atomic_add_fetch(&e->clock, 1, __ATOMIC_RELAXED);
    mt_hour_live *l = __atomic_load_n(&d->live, __ATOMIC_ACQUIRE);
    if (l) {
        __atomic_store_n(&l->used, now, __ATOMIC_RELAXED);
        if (__atomic_load_n(&l->idx, __ATOMIC_ACQUIRE)) return MT_OK;
    }
    pthread_mutex_lock(&e->hload);
    int rc = (l = hour_live(d)) ? l->bad : -ENOMEM;
    if (l) __atomic_store_n(&l->used, now, __ATOMIC_RELAXED);
    if (!rc && !l->map) { /* mapped on first use (hour_check) */
        rc = hour_map(e, d, &l->map);
        if (rc && rc != -ENOMEM) __atomic_store_n(&l->bad, rc, __ATOMIC_RELAXED);
    }
    if (!rc && !l->idx) {
        mt_hf_index *ix = calloc(1, sizeof *ix);
        rc = ix ? mt_hf_read_index_map(l->map, d->hour, ix) : -ENOMEM;
        if (rc) {
            free(ix);
            if (rc != -ENOMEM) {
                __atomic_store_n(&l->bad, rc, __ATOMIC_RELAXED);
                __atomic_add_fetch(&e->st.hours_unreadable, 1, __ATOMIC_RELAXED);
            }
        } else {
            __atomic_store_n(&l->idx, ix, __ATOMIC_RELEASE);
            __atomic_add_fetch(&e->footers, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&e->footer_bytes, footer_size(ix), __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&e->hload);
    return rc;
}

/* Free the hour's live part: its footer, its mapping (a scan holding it keeps its own
   reference) and what was known of it (exclusive lock, or close). */
static void hour_release(mt_engine *e, mt_hour_desc *d)
{
    mt_hour_live *l = d->live;
    if (!l) return;
    if (l->idx) {
        __atomic_sub_fetch(&e->footers, 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&e->footer_bytes, footer_size(l->idx), __ATOMIC_RELAXED);
    }
    mt_hfmap_release(l->map);
    mt_hf_index_free(l->idx);
    free(l->idx);
    free(l);
    d->live = NULL;
}

/* Insert or replace an hour (writer, under the exclusive lock). */
void mt_engine_hour_val(uint8_t v[MT_HOUR_VAL], uint32_t gen, uint64_t bytes, uint64_t sealed_seq)
{
    mt_put_le(v, gen, 4);
    mt_put_le(v + 4, bytes, 8);
    mt_put_le(v + 12, sealed_seq, 8);
}

int mt_engine_hour_parse(const void *v, size_t vl, uint32_t *gen, uint64_t *bytes,
                         uint64_t *sealed_seq)
{
    if (vl != 12 && vl != MT_HOUR_VAL) return MT_ECORRUPT;
    *gen = (uint32_t)mt_get_le(v, 4);
    *bytes = mt_get_le((const uint8_t *)v + 4, 8);
    *sealed_seq = vl == MT_HOUR_VAL ? mt_get_le((const uint8_t *)v + 12, 8) : 0;
    return MT_OK;
}

int mt_engine_hour_set(mt_engine *e, int64_t hour, uint32_t gen, uint64_t bytes)
{
    assert(hour >= INT32_MIN && hour <= INT32_MAX); /* from a timestamp, or a 32-bit key */
    mt_hour_desc *d = mt_engine_hour(e, hour);
    if (d) {
        e->st.block_bytes -= d->bytes;
        hour_release(e, d);
    } else {
        if (mt_grow(&e->hours, &e->hours_cap, e->nhours + 1, sizeof *e->hours, 64)) return -ENOMEM;
        size_t at = e->nhours, lo = 0; /* open loads them ascending: an append */
        if (at && e->hours[at - 1].hour > hour) {
            for (size_t hi = at; lo < hi;) {
                size_t mid = lo + (hi - lo) / 2;
                if (e->hours[mid].hour < hour)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            at = lo;
        }
        memmove(&e->hours[at + 1], &e->hours[at], (e->nhours - at) * sizeof *e->hours);
        e->nhours++;
        d = &e->hours[at];
    }
    *d = (mt_hour_desc){.hour = (int32_t)hour, .gen = gen, .bytes = bytes};
    e->st.block_bytes += bytes;
    e->st.sealed_hours = e->nhours;
    int rc = hour_check(e, d);
    if (rc && rc != -ENOMEM) hour_bad(d, rc);
    return rc;
}

void mt_engine_hour_remove(mt_engine *e, int64_t hour)
{
    mt_hour_desc *d = mt_engine_hour(e, hour);
    if (!d) return;
    e->st.block_bytes -= d->bytes;
    hour_release(e, d);
    size_t at = (size_t)(d - e->hours);
    memmove(d, d + 1, (e->nhours - at - 1) * sizeof *d);
    e->nhours--;
    e->st.sealed_hours = e->nhours;
}

/*
 * Another process (metron query --data) reads the generations its LMDB
 * snapshot names and maps each on first use, so a replaced file is unlinked
 * only once no open read transaction is older than the one that replaced it
 * (LMDB's reader table says). Within this process a generation is mapped and
 * reference-counted before the exclusive lock lets it go.
 */
static void grave_add(mt_engine *e, const char *path, uint64_t txnid)
{
    (void)mt_grow(&e->graves, &e->graves_cap, e->ngraves + 1, sizeof *e->graves, 16);
    char *copy = e->ngraves < e->graves_cap ? strdup(path) : NULL;
    if (!copy) { /* no memory to remember it: gone now, as before readers mapped lazily */
        unlink(path);
        return;
    }
    e->graves[e->ngraves++] = (mt_grave){copy, txnid};
}

void mt_engine_bury(mt_engine *e)
{
    uint64_t oldest;
    if (!e->ngraves || mt_kv_oldest_reader(e->kv, &oldest)) return; /* tried again later */
    size_t keep = 0;
    for (size_t i = 0; i < e->ngraves; i++) {
        if (e->graves[i].txnid <= oldest) {
            unlink(e->graves[i].path);
            free(e->graves[i].path);
        } else {
            e->graves[keep++] = e->graves[i];
        }
    }
    e->ngraves = keep;
}

int mt_engine_publish(mt_engine *e, const mt_publish *p, size_t n,
                      void (*also)(mt_engine *e, void *ud), void *ud)
{
    int rc = MT_OK;
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        if (p[i].drop)
            mt_engine_hour_remove(e, p[i].hour);
        else if (mt_engine_hour_set(e, p[i].hour, p[i].gen, p[i].bytes) == -ENOMEM)
            rc = -ENOMEM;
        else
            e->st.hour_files_written++;
    }
    if (also) also(e, ud);
    pthread_rwlock_unlock(&e->lock);
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        if (!p[i].had_old) continue;
        mt_hf_path(path, sizeof path, e->dir, p[i].hour, p[i].old_gen);
        grave_add(e, path, e->last_txnid);
    }
    mt_engine_bury(e);
    return rc;
}

static int by_use(const void *a, const void *b)
{
    uint64_t x = (*(mt_hour_desc *const *)a)->live->used;
    uint64_t y = (*(mt_hour_desc *const *)b)->live->used;
    return (x > y) - (x < y);
}

void mt_engine_trim_footers(mt_engine *e)
{
    uint64_t cap = e->opt.footer_cache ? e->opt.footer_cache : DEFAULT_FOOTER_CACHE;
    if (__atomic_load_n(&e->footer_bytes, __ATOMIC_RELAXED) <= cap) return;
    pthread_rwlock_wrlock(&e->lock);
    mt_hour_desc **v = malloc(e->nhours * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; v && i < e->nhours; i++)
        if (e->hours[i].live && e->hours[i].live->idx) v[n++] = &e->hours[i];
    if (v) qsort(v, n, sizeof *v, by_use); /* least recently used first */
    /* the footer goes with the mapping and the rest of the live part: mapped and parsed again
       when read, the hour costs its descriptor alone meanwhile */
    for (size_t i = 0; i < n && e->footer_bytes > cap; i++) hour_release(e, v[i]);
    free(v);
    pthread_rwlock_unlock(&e->lock);
}

void mt_engine_discard(mt_engine *e, const mt_publish *p, size_t n)
{
    char path[4096];
    for (size_t i = 0; i < n; i++) {
        if (p[i].drop) continue;
        mt_hf_path(path, sizeof path, e->dir, p[i].hour, p[i].gen);
        unlink(path);
    }
}

/* ---- meta ----------------------------------------------------------------- */

static int meta_get_u64(mt_kv_txn *t, const char *name, uint64_t *v)
{
    const void *p;
    size_t n;
    int rc = mt_kv_get(t, MT_DB_META, name, strlen(name), &p, &n);
    if (rc) return rc;
    if (n != 8) return MT_ECORRUPT;
    memcpy(v, p, 8);
    return MT_OK;
}

int mt_engine_meta_put(mt_kv_txn *t, const char *name, uint64_t v)
{
    return mt_kv_put(t, MT_DB_META, name, strlen(name), &v, 8);
}

void mt_engine_hour_key(uint8_t key[4], int64_t hour)
{
    uint32_t k = (uint32_t)(hour + 0x80000000LL);
    mt_store_be32(key, k);
}

/* ---- recovery -------------------------------------------------------------- */

static mt_engine *walk_engine; /* nftw has no user pointer; open is serialised by walk_lock */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The recovery sweep removes only what it can prove is its own leftover: a
 * temporary name (a seal or merge that never renamed it), a generation the
 * index supersedes for its hour, or a generation at or past the committed
 * counter (renamed, never committed: gen is committed with the hour's
 * record), or a file a committed delete listed in meta "unref:" with that
 * size (the delete died before unlinking it: mt_delete.c). Anything else it
 * cannot account for (an hour the index does not name, e.g. one whose
 * retention crashed between commit and unlink) is moved to DIR/lost+found/,
 * never deleted, and counted.
 */
static int sweep_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F) return 0;
    int64_t hour;
    uint32_t gen;
    bool temp;
    if (!mt_hf_parse_path(path, &hour, &gen, &temp)) return 0; /* not ours: leave it */
    mt_engine *e = walk_engine;
    mt_hour_desc *desc = mt_engine_hour(e, hour);
    if (desc && desc->gen == gen && !temp) return 0; /* the live generation */
    if (temp || gen >= e->next_gen) {                /* never named by a committed transaction */
        unlink(path);
        return 0;
    }
    if (desc && gen < desc->gen) { /* replaced: a reader's older snapshot may name it */
        grave_add(e, path, e->last_txnid);
        return 0;
    }
    /* dropped by a delete that committed and died before unlinking it: its record says so (a
       deleted tenant's points must not survive in lost+found) */
    if (mt_engine_unref_listed(e, hour, gen, (uint64_t)sb->st_size)) {
        grave_add(e, path, e->last_txnid);
        return 0;
    }
    char aside[4400], dir[4200], when[48];
    mt_time_format(hour * MT_HOUR_NS, when, sizeof when);
    snprintf(dir, sizeof dir, "%s/lost+found", e->dir);
    snprintf(aside, sizeof aside, "%s/%.13s.%u.blk", dir, when, gen); /* 2025-01-01T05.1.blk */
    if ((mkdir(dir, 0755) == 0 || errno == EEXIST) && rename(path, aside) == 0)
        e->st.files_set_aside++;
    return 0;
}

/* Whether DIR/blocks holds any hour file (a fresh index beside them is not theirs). */
static int any_hour_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    return flag == FTW_F && strstr(path, ".blk") != NULL;
}

static mt_vtype replay_type(void *ud, uint32_t id)
{
    mt_engine *e = ud;
    return id >= 1 && id <= e->index.n ? (mt_vtype)e->index.ents[id].type : MT_VT_COUNT;
}

/* The sealed_seq of an hour among e->replay_sealed (ascending), 0 when not there. */
static uint64_t replay_sealed_seq(const mt_engine *e, int64_t hour)
{
    size_t lo = 0, hi = e->nreplay_sealed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->replay_sealed[mid].hour < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->nreplay_sealed && e->replay_sealed[lo].hour == hour
               ? e->replay_sealed[lo].sealed_seq
               : 0;
}

uint64_t mt_engine_series_epoch(mt_engine *e)
{
    pthread_rwlock_rdlock(&e->lock);
    uint64_t epoch = e->committed_n + e->series_forgotten;
    pthread_rwlock_unlock(&e->lock);
    return epoch;
}

/* Note an hour's sealed_seq for the replay (open reads the hours ascending). */
static int replay_sealed_add(mt_engine *e, int64_t hour, uint64_t sealed_seq)
{
    if (mt_grow(&e->replay_sealed, &e->replay_sealed_cap, e->nreplay_sealed + 1,
                sizeof *e->replay_sealed, 16))
        return -ENOMEM;
    e->replay_sealed[e->nreplay_sealed++] = (mt_replay_hour){hour, sealed_seq};
    return MT_OK;
}

/*
 * A point of record e->replay_seq: back into the head unless its hour's file holds it. An hour
 * with a file whose sealed_seq is before the log's first record holds none of the log's points
 * (they came later): only the others are looked up.
 */
static int replay_point(void *ud, const mt_rec_point *p)
{
    mt_engine *e = ud;
    e->replay_points++;
    if (replay_sealed_seq(e, mt_hour_of(p->ts)) >= e->replay_seq) return MT_OK;
    return mt_head_append(&e->head, p->id, p->ts, (mt_vtype)e->index.ents[p->id].type, p->v, p->str,
                          e->replay_seq, e->opt.clock_ns(e->opt.clock_ud));
}

static bool has_hour_files(const char *dir)
{
    char blocks[4200];
    snprintf(blocks, sizeof blocks, "%s/blocks", dir);
    return nftw(blocks, any_hour_file, 16, FTW_PHYS) > 0;
}

/* Read every record of db: each verifies its checksum and order, and the count agrees. */
static int verify_db(mt_kv_txn *t, mt_kv_db db)
{
    return mt_kv_verify(t, db, NULL);
}

static uint64_t seq_of(const void *k, size_t kl)
{
    uint64_t s = 0;
    for (size_t i = 0; k && i < kl && i < 8; i++) s = s << 8 | ((const uint8_t *)k)[i];
    return s;
}

/*
 * The format of index.mdb, before recovery reads it: format 1 (values
 * without checksums) is migrated to FORMAT_VERSION in place, in one write
 * transaction (the hour files do not change); a reader reads it as it is
 * (e->plain_kv). A version this build does not know stays MT_EFORMAT (in
 * recover).
 */
static int migrate_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    (void)ud;
    uint64_t records = 0;
    int rc = mt_kv_add_checksums(t, &records);
    if (!rc) rc = mt_engine_meta_put(t, "version", MT_FORMAT_NEW);
    if (!rc) e->migrated_records = records;
    return rc;
}

static int open_format(mt_engine *e)
{
    mt_kv_set_checksums(e->kv, false); /* the version record as it is stored */
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    const void *p;
    size_t n;
    uint64_t v = 0;
    rc = mt_kv_get(t, MT_DB_META, "version", 7, &p, &n);
    if (!rc && n == 8) memcpy(&v, p, 8);
    mt_kv_abort(t);
    mt_kv_set_checksums(e->kv, true);
    if (rc == MT_ENOTFOUND) return MT_OK; /* a new index, or a reader's empty one */
    if (rc) return rc;
    if (n != 8) return MT_OK; /* checked with its checksum by recover */
    e->format = v;
    if (v != 1) return MT_EFORMAT;
    if (e->opt.read_only) {
        mt_kv_set_checksums(e->kv, false);
        e->plain_kv = true;
        return MT_OK;
    }
    return mt_engine_write_txn(e, migrate_body, NULL, NULL);
}

static int recover(mt_engine *e)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, !e->opt.read_only, &t);
    if (rc) return rc;
    uint64_t version = 0, gen = 1;
    bool rebuild = false;
    rc = meta_get_u64(t, "version", &version);
    if (rc == MT_ENOTFOUND && !e->opt.read_only) {
        /* a new index: refuse it beside hour files, which only their own index can account for
           (the sweep below would otherwise take every one of them for a leftover) */
        if (has_hour_files(e->dir)) {
            if (!e->opt.rebuild_index) {
                mt_kv_abort(t);
                return MT_ENOINDEX;
            }
            rebuild = true;
        }
        version = MT_FORMAT_NEW;
        rc = mt_engine_meta_put(t, "version", version);
        /* a new directory has nothing unmirrored: its floor starts above every point and its
           first commit lowers it (a mirror's first start then catches up nothing it never had;
           a rebuilt index keeps the lowest: its hours may be anywhere) */
        if (!rc && !rebuild) rc = mt_engine_meta_put(t, "floor", (uint64_t)MT_TS_MAX);
    }
    /* a writer raises formats 2 to 5: the files and records it writes from now on are of the
       newest kind */
    if (!rc && version >= 2 && version < MT_FORMAT_NEW && !e->opt.read_only) {
        version = MT_FORMAT_NEW;
        rc = mt_engine_meta_put(t, "version", version);
    }
    if (!rc && (version < 2 || version > FORMAT_VERSION) && !(e->plain_kv && version == 1))
        rc = MT_EFORMAT;
    e->format = version;
    if (!rc && (rc = meta_get_u64(t, "seq", &e->seq)) == MT_ENOTFOUND) rc = MT_OK;
    if (!rc && (rc = meta_get_u64(t, "gen", &gen)) == MT_ENOTFOUND) rc = MT_OK;
    uint64_t floor = (uint64_t)MT_TS_MIN;
    if (!rc && (rc = meta_get_u64(t, "floor", &floor)) == MT_ENOTFOUND) rc = MT_OK;
    e->floor = (int64_t)floor;
    e->floor_low = INT64_MAX;
    e->next_gen = (uint32_t)gen;
    if (!rc && rebuild) rc = mt_repair_rebuild_index(e, t); /* from the hour files alone */
    if (!rc) rc = mt_index_load(&e->index, t);
    /* the rest of the index is read whole too: a damaged record refuses the open */
    if (!rc) rc = verify_db(t, MT_DB_META);
    if (!rc) rc = verify_db(t, MT_DB_SERIES);
    if (!rc) rc = verify_db(t, MT_DB_POSTINGS);
    /* the head log's first record: the hours sealed before it need no sealed_seq at replay */
    mt_kv_cursor *c = NULL;
    const void *k, *v;
    size_t kl, vl;
    uint64_t first_seq = UINT64_MAX;
    if (!rc) rc = mt_kv_cursor_open(t, MT_DB_HEAD, &c);
    if (!rc) {
        k = NULL;
        int fr = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
        if (fr == MT_OK || (fr == MT_ECORRUPT && k)) first_seq = seq_of(k, kl);
        if (fr == MT_ECORRUPT && !k) first_seq = 0; /* replay meets it: every hour noted */
        if (fr && fr != MT_ENOTFOUND && fr != MT_ECORRUPT) rc = fr;
    }
    mt_kv_cursor_close(c);
    c = NULL;
    /* sealed hours, into an array of their number: grown by doubling, a year's would leave the
       smaller copies behind in the heap */
    size_t nh = 0;
    if (!rc) rc = mt_kv_count(t, MT_DB_HOURS, &nh);
    if (!rc && nh > e->hours_cap) {
        mt_hour_desc *hs = realloc(e->hours, nh * sizeof *hs);
        if (hs) e->hours = hs, e->hours_cap = nh; /* else grown one by one below */
    }
    if (!rc) rc = mt_kv_cursor_open(t, MT_DB_HOURS, &c);
    int r = rc;
    for (r = rc ? rc : mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); !rc && r == MT_OK;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        const uint8_t *kb = k;
        uint32_t g;
        uint64_t bytes, sealed;
        if (kl != 4 || mt_engine_hour_parse(v, vl, &g, &bytes, &sealed)) {
            rc = MT_ECORRUPT;
            break;
        }
        int64_t hour = (int64_t)mt_load_be32(kb) - 0x80000000LL;
        /* a missing or damaged file is reported by the scans that need it */
        int hr = mt_engine_hour_set(e, hour, g, bytes);
        if (hr == -ENOMEM) rc = hr;
        if (hr && hr != -ENOMEM) e->st.hours_unreadable++;
        if (!rc && sealed && sealed >= first_seq) rc = replay_sealed_add(e, hour, sealed);
    }
    if (!rc && r != MT_ENOTFOUND) rc = r; /* a damaged hours record: not "no more hours" */
    mt_kv_cursor_close(c);
    c = NULL; /* closed once, whatever follows */
    /* the head log: a damaged record is skipped and reported (its points are lost), the rest is
       replayed (docs/storage.md, "Damage") */
    if (!rc) rc = mt_kv_cursor_open(t, MT_DB_HEAD, &c);
    k = NULL;
    for (r = rc ? rc : mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); !rc;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        e->replay_seq = r == MT_OK ? seq_of(k, kl) : 0;
        e->replay_points = 0;
        int pr = r == MT_OK ? mt_rec_replay(v, vl, replay_type, replay_point, e) : r;
        if (r == MT_ENOTFOUND) break;
        /* the records on disk, damaged ones too (a seal's trim or rewrite removes them) */
        if (r == MT_OK) mt_head_log_add(&e->head, e->replay_seq, e->replay_points);
        if (r == MT_ECORRUPT && !k) { /* LMDB's own pages: the cursor cannot step on */
            rc = r;
            break;
        }
        if (pr == -ENOMEM || (r && r != MT_ECORRUPT)) {
            rc = pr;
            break;
        }
        if (pr) {
            e->st.head_records_skipped++;
            if (!e->head_damage[0]) {
                if (r == MT_ECORRUPT)
                    mt_kv_corruption(e->kv, e->head_damage, sizeof e->head_damage);
                else
                    snprintf(e->head_damage, sizeof e->head_damage,
                             "%s/index.mdb: database head, key sequence %llu: the record does "
                             "not decode (%s)",
                             e->dir, (unsigned long long)seq_of(k, kl), mt_strerror(pr));
            }
        }
        k = NULL; /* set again by a step that reached a record */
    }
    mt_kv_cursor_close(c);
    free(e->replay_sealed); /* replayed */
    e->replay_sealed = NULL;
    e->nreplay_sealed = e->replay_sealed_cap = 0;
    if (!rc && !e->opt.read_only) rc = mt_engine_unref_load(e, t); /* for the sweep below */
    e->last_txnid = mt_kv_txn_id(t);
    if (rc)
        mt_kv_abort(t);
    else if (e->opt.read_only)
        e->snap = t; /* held until close: the writer keeps every file this snapshot names */
    else
        rc = mt_kv_commit(t);
    if (rc || e->opt.read_only) return rc; /* a reader removes nothing */
    pthread_mutex_lock(&walk_lock);
    walk_engine = e;
    char blocks[4200];
    snprintf(blocks, sizeof blocks, "%s/blocks", e->dir);
    nftw(blocks, sweep_file, 16, FTW_PHYS);
    pthread_mutex_unlock(&walk_lock);
    if (e->nunref) mt_engine_bury(e); /* a deleted file goes now, unless a reader holds it */
    /* a write that fails here would fail the first commit too (as open_format's migration) */
    return e->nunref ? mt_engine_unref_settle(e) : MT_OK;
}

/* ---- writer ---------------------------------------------------------------- */

#define LIMITED (UINT32_MAX - 1) /* gid of a key refused by a cardinality limit */

/*
 * Cardinality guard, checked when a series would be created: the total
 * (max_series) and the new series of one tenant (business_id tag; none is
 * the system tenant) in the current wall-clock hour.
 */
static bool cardinality_allows(mt_engine *e, const mt_series_parts *parts)
{
    if (e->opt.max_series && e->index.n >= e->opt.max_series) return false;
    if (!e->opt.max_new_series_per_hour) return true;
    int64_t hour = mt_hour_of(e->opt.clock_ns(e->opt.clock_ud));
    if (hour != e->card_hour) {
        e->card_hour = hour;
        e->card_n = 0;
    }
    mt_name tenant = {"", 0};
    for (size_t i = 0; i < parts->ntags; i++)
        if (parts->tag_keys[i].len == 11 && !memcmp(parts->tag_keys[i].ptr, "business_id", 11))
            tenant = parts->tag_values[i];
    uint64_t h = mt_hash64(tenant.ptr, tenant.len);
    size_t i = 0;
    while (i < e->card_n && e->card[i].hash != h) i++;
    if (i == e->card_n) {
        if (e->card_n == MT_CARD_TENANTS) return false; /* more tenants in an hour than tracked */
        e->card[e->card_n++] = (mt_card){h, 0};
    }
    if (e->card[i].created >= e->opt.max_new_series_per_hour) return false;
    e->card[i].created++;
    return true;
}

/* The series of point p: the caller's id while it names a series, else its key's. */
static uint32_t point_id(const mt_engine *e, const mt_batch *b, const mt_bpoint *p)
{
    if (!mt_bp_id(p)) return b->gid[p->ref];
    return p->ref <= e->index.n && e->index.ents[p->ref].len ? p->ref : 0;
}

/*
 * The oldest timestamp a series keeps under the age policy (resolve's view
 * of it for one batch). Most points are younger than the shortest keep and
 * never look their series up; an older one takes the policy's lock once
 * for the batch and the rule of its series, remembered by the address of
 * its key (the batch's or the index's, both fixed while the batch is
 * judged) so that a backfill parses each series' key about once.
 */
#define AGE_MEMO 256
typedef struct age_view {
    int64_t wall, fast; /* a point at or after fast is young enough for every series */
    bool locked;
    struct {
        const char *key;
        int64_t earliest; /* its oldest timestamp kept */
    } memo[AGE_MEMO];     /* direct-mapped by the key's address */
} age_view;

static int64_t age_earliest(mt_engine *e, age_view *a, const char *key, size_t klen)
{
    size_t slot = ((uintptr_t)key >> 3) % AGE_MEMO;
    if (a->memo[slot].key == key) return a->memo[slot].earliest;
    if (!a->locked) pthread_mutex_lock(&e->age_lock), a->locked = true;
    int64_t keep = e->age ? mt_retention_keep_of(e->age, key, klen) : 0;
    a->memo[slot].key = key;
    a->memo[slot].earliest = keep > 0 && a->wall > MT_TS_MIN + keep ? a->wall - keep : MT_TS_MIN;
    return a->memo[slot].earliest;
}

/*
 * MT_ETIME (outside the representable range or past latest) or MT_EOLD
 * (older than its series keeps) for point p, else MT_OK; *bound is the
 * limit it broke. Its series is its key in the batch or, added by id, the
 * index's key of id (a point whose id names no series is left to the
 * series checks).
 */
static int time_verdict(mt_engine *e, age_view *a, int64_t latest, const mt_batch *b,
                        const mt_bpoint *p, uint32_t id, int64_t *bound)
{
    if (p->ts < MT_TS_MIN || p->ts > latest) return *bound = latest, MT_ETIME;
    if (p->ts >= a->fast) return MT_OK;
    const char *key;
    size_t klen;
    if (!mt_bp_id(p))
        key = b->keys + b->k[p->ref].off, klen = b->k[p->ref].len;
    else if (id)
        key = e->index.arena + e->index.ents[id].off, klen = e->index.ents[id].len;
    else
        return MT_OK;
    *bound = age_earliest(e, a, key, klen);
    return p->ts < *bound ? MT_EOLD : MT_OK;
}

/*
 * Resolve keys to series and decide, once, each point's fate (b->why): its
 * time (the representable range, max_future_ns, its series' keep), then its
 * series (invalid key, cardinality limit, type). Only a point whose time is
 * accepted may create a series. Returns an error only for failures of the
 * whole group.
 */
static int resolve(mt_engine *e, mt_kv_txn *t, mt_batch *b)
{
    if (b->gid_cap < b->nk) {
        uint32_t *g = realloc(b->gid, b->nk * sizeof *g);
        if (!g) return -ENOMEM;
        b->gid = g;
        b->gid_cap = b->nk;
    }
    if (b->why_cap < b->np) {
        int16_t *w = realloc(b->why, b->np * sizeof *w);
        if (!w) return -ENOMEM;
        b->why = w;
        b->why_cap = b->np;
    }
    /* one far-future point must not hold every later hour open (seals wait for max_ts) */
    int64_t wall = e->opt.clock_ns(e->opt.clock_ud);
    const int64_t latest = e->opt.max_future_ns > 0 && e->opt.max_future_ns < MT_TS_MAX - wall
                               ? wall + e->opt.max_future_ns
                               : MT_TS_MAX;
    /* a point the retention would remove at its next run is refused, not acknowledged and lost */
    int64_t shortest = __atomic_load_n(&e->age_min, __ATOMIC_ACQUIRE); /* reloadable */
    age_view age = {.wall = wall,
                    .fast =
                        shortest > 0 && wall > MT_TS_MIN + shortest ? wall - shortest : MT_TS_MIN};
    /* The first point of a key whose time is accepted decides the type of a new series. */
    for (uint32_t i = 0; i < b->nk; i++) b->gid[i] = UINT32_MAX;
    int rc = MT_OK;
    for (size_t i = 0; i < b->np && !rc; i++) {
        const mt_bpoint *p = &b->p[i];
        if (mt_bp_id(p) || b->gid[p->ref] != UINT32_MAX) continue;
        const mt_bkey *k = &b->k[p->ref];
        const char *key = b->keys + k->off;
        int64_t bound;
        if (time_verdict(e, &age, latest, b, p, 0, &bound)) continue;
        uint32_t id = mt_index_find(&e->index, key, k->len, k->hash);
        if (!id) {
            mt_series_parts parts;
            if (mt_series_parse(key, k->len, &parts) != MT_OK) {
                b->gid[p->ref] = 0;
                continue;
            }
            if (!cardinality_allows(e, &parts)) {
                b->gid[p->ref] = LIMITED;
                continue;
            }
            pthread_rwlock_wrlock(&e->lock);
            id = mt_index_add(&e->index, key, k->len, k->hash, mt_bp_type(p));
            pthread_rwlock_unlock(&e->lock);
            if (!id) rc = -ENOMEM;
            if (!rc) rc = mt_index_store(t, id, key, k->len, mt_bp_type(p));
        }
        b->gid[p->ref] = id;
    }
    b->res = (mt_write_result){.rc = MT_OK};
    for (size_t i = 0; i < b->np && !rc; i++) {
        const mt_bpoint *p = &b->p[i];
        uint32_t id = point_id(e, b, p);
        int64_t bound = 0;
        int why = time_verdict(e, &age, latest, b, p, mt_bp_id(p) ? id : 0, &bound);
        if (!why)
            why = id == LIMITED                             ? MT_ELIMIT
                  : !id || id == UINT32_MAX                 ? MT_EINVAL
                  : e->index.ents[id].type != mt_bp_type(p) ? MT_ECONFLICT
                                                            : MT_OK;
        assert(why >= INT16_MIN && why <= INT16_MAX);
        b->why[i] = (int16_t)why;
        if (why == MT_ELIMIT) e->st.points_over_series_limit++;
        if (why == MT_ETIME || why == MT_EOLD) e->st.points_out_of_time++;
        if (why) {
            if (!b->res.rejected)
                b->res.first_rejected = i, b->res.first_reason = why, b->res.first_bound = bound;
            b->res.rejected++;
            continue;
        }
        const char *str = mt_bp_type(p) == MT_VT_STRING ? b->strs + MT_VAL_STR_OFF(p->v) : NULL;
        mt_val v = p->v;
        if (mt_bp_type(p) == MT_VT_STRING) v.u = MT_VAL_STR_LEN(p->v);
        rc = mt_rec_add(&e->rec, id, p->ts, mt_bp_type(p), v, str);
        if (rc) break;
        b->res.accepted++;
        if (p->ts < e->floor_group) e->floor_group = p->ts;
    }
    if (age.locked) pthread_mutex_unlock(&e->age_lock);
    return rc;
}

/* Write one head record (e->rec) at the next sequence. */
int mt_engine_put_record(mt_engine *e, mt_kv_txn *t)
{
    int rc = mt_rec_finish(&e->rec);
    if (rc) return rc;
    uint8_t k[8];
    mt_put_be(k, ++e->seq, 8);
    rc = mt_kv_put(t, MT_DB_HEAD, k, 8, e->rec.out, e->rec.out_len);
    if (!rc) rc = mt_engine_meta_put(t, "seq", e->seq);
    return rc;
}

/* opt.committed: each run of a batch's accepted points in one committed_step_ns window. */
static void tell_committed(mt_engine *e, mt_batch *list)
{
    int64_t step = e->opt.committed_step_ns;
    for (mt_batch *b = list; b; b = b->next) {
        int64_t last = 0;
        bool any = false;
        for (size_t i = 0; i < b->np; i++) {
            const mt_bpoint *p = &b->p[i];
            if (b->why[i]) continue;
            int64_t w = step > 0 ? p->ts / step - (p->ts % step < 0) : p->ts;
            if (any && w == last) continue;
            any = true;
            last = w;
            e->opt.committed(e->opt.committed_ud, p->ts);
        }
    }
}

#define HEAD_AHEAD 8 /* points between the prefetch stages of finish_group */

/* Apply committed batches to the head, then hand them back. */
static void finish_group(mt_engine *e, mt_batch *list, int rc)
{
    if (rc == MT_OK) {
        int64_t wall = e->opt.clock_ns(e->opt.clock_ud);
        pthread_rwlock_wrlock(&e->lock);
        e->st.commits++;
        for (mt_batch *b = list; b; b = b->next) {
            for (size_t i = 0; i < b->np && !rc; i++) {
                /* The series, buckets and bytes of a point lie anywhere in the head: asked for
                   points ahead, the misses of one point overlap those of the next ones. */
                if (i + 4 * HEAD_AHEAD < b->np && mt_bp_id(&b->p[i + 4 * HEAD_AHEAD]))
                    __builtin_prefetch(&e->index.ents[b->p[i + 4 * HEAD_AHEAD].ref]);
                for (int st = 0; st < 3; st++) { /* the series 3 ahead, ..., the bytes 1 ahead */
                    size_t j = i + (size_t)(3 - st) * HEAD_AHEAD;
                    if (j < b->np)
                        mt_head_prefetch(&e->head, point_id(e, b, &b->p[j]), b->p[j].ts, st);
                }
                const mt_bpoint *p = &b->p[i];
                if (b->why[i]) continue;
                uint32_t id = point_id(e, b, p);
                mt_val v = p->v;
                const char *str = NULL;
                if (mt_bp_type(p) == MT_VT_STRING) {
                    str = b->strs + MT_VAL_STR_OFF(p->v);
                    v.u = MT_VAL_STR_LEN(p->v);
                }
                rc = mt_head_append(&e->head, id, p->ts, mt_bp_type(p), v, str, e->seq, wall);
            }
            e->st.points_written += b->res.accepted;
        }
        pthread_rwlock_unlock(&e->lock);
        /* Durable but not in memory: reads would miss it until a restart. Refuse more. */
        if (rc) mt_engine_after_commit(e, rc == -ENOSPC ? -ENOMEM : rc);
        if (e->floor_group < e->floor) e->floor = e->floor_group;
        if (e->floor_group < e->floor_low) e->floor_low = e->floor_group;
        if (!rc && e->opt.committed) tell_committed(e, list);
    }
    while (list) {
        mt_batch *next = list->next;
        list->next = NULL;
        list->res.seq = e->seq;
        if (rc) list->res = (mt_write_result){.rc = rc};
        list->cb(list->ud, &list->res, list);
        list = next;
    }
}

typedef struct group_job {
    mt_batch *list;
    uint32_t n_before; /* series known before the group: new ones go if it fails */
    uint64_t seq_before;
} group_job;

static int group_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    group_job *g = ud;
    int rc = MT_OK;
    mt_rec_reset(&e->rec);
    e->floor_group = INT64_MAX;
    for (mt_batch *b = g->list; b && !rc; b = b->next) rc = resolve(e, t, b);
    if (!rc && e->rec.npoints) rc = mt_engine_put_record(e, t);
    /* late points: the floor goes down in the transaction that holds them */
    if (!rc && e->floor_group < e->floor)
        rc = mt_engine_meta_put(t, "floor", (uint64_t)e->floor_group);
    return rc;
}

static void group_undo(mt_engine *e, void *ud)
{
    group_job *g = ud;
    pthread_rwlock_wrlock(&e->lock);
    mt_index_truncate(&e->index, g->n_before);
    pthread_rwlock_unlock(&e->lock);
    e->seq = g->seq_before;
}

static void commit_group(mt_engine *e, mt_batch *list)
{
    group_job g = {.list = list, .n_before = e->index.n, .seq_before = e->seq};
    int64_t t0 = mt_mono_ns();
    int rc = mt_engine_write_txn(e, group_body, group_undo, &g);
    double secs = (double)(mt_mono_ns() - t0) / 1e9;
    int k = 0;
    while (k < MT_COMMIT_BUCKETS - 1 && secs > mt_commit_bucket_le[k]) k++;
    pthread_rwlock_wrlock(&e->lock);
    if (rc == MT_OK) e->committed_n = e->index.n;
    if (rc == MT_OK && e->seq != g.seq_before) mt_head_log_add(&e->head, e->seq, e->rec.npoints);
    e->st.commit_buckets[k]++;
    e->st.commit_seconds += secs;
    pthread_rwlock_unlock(&e->lock);
    finish_group(e, list, rc);
}

static void *writer_main(void *arg)
{
    mt_engine *e = arg;
    qlock_take(e);
    for (;;) {
        while (!e->qhead && e->state != MT_ENGINE_CLOSING && !e->job) {
            struct timespec ts = mt_deadline_after(1000000000);
            if (qwait(e, &e->qcond, &ts) == ETIMEDOUT && e->opt.auto_seal) break;
        }
        if (e->qhead && e->opt.commit_interval_ns > 0 && e->state != MT_ENGINE_CLOSING) {
            struct timespec ts = mt_deadline_after(e->opt.commit_interval_ns);
            qwait(e, &e->qcond, &ts);
        }
        /* A group takes the queue up to GROUP_POINTS: the head record, its buffers and the
           commit's latency stay bounded when many streams fill the queue at once */
        mt_batch *list = e->qhead, *last = list;
        size_t pts = last ? last->np : 0;
        while (last && last->next && pts < GROUP_POINTS) {
            last = last->next;
            pts += last->np;
        }
        if (last) {
            e->qhead = last->next;
            if (!e->qhead) e->qtail = NULL;
            last->next = NULL;
        }
        int (*job)(mt_engine *, void *) = e->job;
        bool stop = e->state == MT_ENGINE_CLOSING;
        qlock_give(e);

        if (list) {
            if (state_now(e) == MT_ENGINE_FAILED)
                finish_group(e, list, MT_ECLOSED);
            else
                commit_group(e, list);
        }
        size_t hours = 0;
        int jrc = MT_OK;
        if (state_now(e) == MT_ENGINE_FAILED)
            jrc = MT_ECLOSED;
        else if (job)
            jrc = job(e, e->job_ud);
        mt_engine_trim_footers(e);
        /* also after a job: a commit's due hours must not wait for the next write */
        if (state_now(e) == MT_ENGINE_OPEN && e->opt.auto_seal && !stop)
            mt_seal_run(e, MT_SEAL_DUE, &hours); /* a failure is kept for the next try */
        mt_engine_bury(e);                       /* replaced files whose last reader finished */

        qlock_take(e);
        if (job) {
            e->job = NULL;
            e->job_rc = jrc;
            e->job_gen++;
            pthread_cond_broadcast(&e->dcond);
        }
        if (stop && !e->qhead) break;
    }
    qlock_give(e);
    return NULL;
}

/* ---- public API -------------------------------------------------------------- */

/*
 * One engine per directory: recovery removes files that no committed
 * transaction names, which would destroy a file another process is about
 * to commit. The lock is released by close, or by the kernel at exit.
 */
static int lock_dir(mt_engine *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/LOCK", e->dir);
    e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (e->lock_fd < 0) return -errno;
    if (flock(e->lock_fd, LOCK_EX | LOCK_NB)) return errno == EWOULDBLOCK ? -EBUSY : -errno;
    return MT_OK;
}

/*
 * A rebuild starts from an empty index: the present index.mdb (damaged, or
 * not this directory's) is renamed aside, never deleted, with its lock file.
 * Under the directory's lock: no metrond is using it.
 */
static int set_index_aside(mt_engine *e)
{
    char idx[4200], aside[4300], lock[4300];
    snprintf(idx, sizeof idx, "%s/index.mdb", e->dir);
    snprintf(lock, sizeof lock, "%s-lock", idx);
    snprintf(aside, sizeof aside, "%s.replaced-%lld", idx, (long long)(mt_now_ns() / 1000000000));
    if (rename(idx, aside) == 0) {
        char line[4400];
        snprintf(line, sizeof line, "the index present was moved aside to %s", aside);
        if (e->opt.report) e->opt.report(e->opt.report_ud, line);
    } else if (errno != ENOENT) {
        return -errno;
    }
    unlink(lock); /* LMDB's reader table: rebuilt on open */
    return mt_fs_sync_dir(e->dir);
}

/* Why open failed, for people, when there is more to say than the code. */
static void open_why(mt_engine *e, int rc, const char *kv_why, char *why, size_t cap)
{
    char d[1100] = "";
    if (rc == MT_ECORRUPT && e->kv) mt_kv_corruption(e->kv, d, sizeof d);
    if (rc == MT_ECORRUPT && !*d) snprintf(d, sizeof d, "%s", kv_why); /* mt_kv_open failed */
    if (rc == MT_ECORRUPT && *d)
        snprintf(why, cap,
                 "%s; the index cannot be trusted, nothing was changed: restore index.mdb from a "
                 "backup (or rebuild it from the hour files: metron repair --rebuild-index)",
                 d);
    else if (rc == MT_EFORMAT)
        snprintf(why, cap, "%s/index.mdb is format %llu; this build reads formats 1 to %d", e->dir,
                 (unsigned long long)e->format, FORMAT_VERSION);
}

int mt_engine_open(const mt_engine_options *opt, mt_engine **out)
{
    if (!opt || !opt->dir || !*opt->dir) return MT_EINVAL;
    if (!opt->read_only) {
        int mrc = mt_fs_make_dirs(opt->dir); /* a new data dir's entry made durable */
        if (mrc) return mrc;
    }
    mt_engine *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->opt = *opt;
    if (!e->opt.clock_ns) e->opt.clock_ns = default_clock;
    if (e->opt.grace_ns < 0) e->opt.grace_ns = 0;
    if (e->opt.late_quiet_ns < 0) e->opt.late_quiet_ns = 0;
    e->dir = strdup(opt->dir);
    e->lock_fd = -1;
    pthread_rwlock_init(&e->lock, NULL);
    pthread_mutex_init(&e->hload, NULL);
    pthread_mutex_init(&e->age_lock, NULL);
    pthread_mutex_init(&e->qlock, NULL);
    int crc = mt_cond_init_monotonic(&e->qcond); /* the writer's deadlines: monotonic */
    pthread_cond_init(&e->dcond, NULL);
    char kv_why[1100] = "";
    mt_kv_options ko = {.map_size = opt->map_size,
                        .nosync = opt->nosync,
                        .read_only = opt->read_only,
                        .why = kv_why,
                        .why_cap = sizeof kv_why};
    int rc = crc ? crc : e->dir ? mt_index_init(&e->index) : -ENOMEM;
    if (!rc && !opt->read_only) rc = lock_dir(e);
    if (!rc && opt->rebuild_index && !opt->read_only) rc = set_index_aside(e);
    if (!rc) rc = mt_kv_open(e->dir, &ko, &e->kv);
    if (rc == -ENOENT && opt->read_only) rc = has_hour_files(e->dir) ? MT_ENOINDEX : MT_ENOTFOUND;
    if (!rc) rc = mt_encoder_new(opt->zstd_level, &e->enc);
    if (!rc) rc = mt_decoder_new(&e->dec);
    if (!rc) rc = open_format(e);
    if (!rc) rc = recover(e);
    if (rc && opt->why && opt->why_cap) open_why(e, rc, kv_why, opt->why, opt->why_cap);
    if (!rc) e->kv_damage_at_open = mt_kv_corruption(e->kv, NULL, 0);
    /* index.mdb (and its lock file) may be new: their entries made durable before any commit
       is acknowledged */
    if (!rc && !opt->read_only) rc = mt_fs_sync_dir(e->dir);
    e->committed_n = e->index.n;
    if (opt->read_only) {
        qlock_take(e);
        set_state(e, MT_ENGINE_READ_ONLY); /* refuses writes and seals with MT_ECLOSED */
        qlock_give(e);
        if (rc) {
            mt_engine_close(e);
            return rc;
        }
        *out = e;
        return MT_OK;
    }
    if (!rc) {
        e->st.series = e->index.n;
        rc = -pthread_create(&e->writer, NULL, writer_main, e);
        e->writer_started = rc == 0;
    }
    if (rc) {
        mt_engine_close(e);
        return rc;
    }
    *out = e;
    return MT_OK;
}

void mt_engine_close(mt_engine *e)
{
    if (!e) return;
    if (e->writer_started) {
        qlock_take(e);
        set_state(e, MT_ENGINE_CLOSING);
        pthread_cond_signal(&e->qcond);
        qlock_give(e);
        pthread_join(e->writer, NULL);
    }
    if (!e->opt.read_only && e->kv) mt_engine_bury(e);
    for (size_t i = 0; i < e->ngraves; i++) free(e->graves[i].path); /* left to the next sweep */
    free(e->unref);
    free(e->graves);
    mt_kv_abort(e->snap);
    for (size_t i = 0; i < e->nhours; i++) hour_release(e, &e->hours[i]);
    free(e->hours);
    mt_head_free(&e->head);
    mt_index_free(&e->index);
    mt_rec_free(&e->rec);
    mt_encoder_free(e->enc);
    mt_decoder_free(e->dec);
    mt_kv_close(e->kv);
    pthread_rwlock_destroy(&e->lock);
    pthread_mutex_destroy(&e->hload);
    pthread_mutex_destroy(&e->age_lock);
    free(e->age);
    pthread_mutex_destroy(&e->qlock);
    pthread_cond_destroy(&e->qcond);
    pthread_cond_destroy(&e->dcond);
    if (e->lock_fd >= 0) close(e->lock_fd);
    free(e->dir);
    free(e);
}

int mt_engine_submit(mt_engine *e, mt_batch *b, mt_write_cb cb, void *ud)
{
    qlock_take(e);
    if (e->state != MT_ENGINE_OPEN) {
        qlock_give(e);
        return MT_ECLOSED;
    }
    b->cb = cb;
    b->ud = ud;
    b->next = NULL;
    if (e->qtail)
        e->qtail->next = b;
    else
        e->qhead = b;
    e->qtail = b;
    pthread_cond_signal(&e->qcond);
    qlock_give(e);
    return MT_OK;
}

typedef struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    mt_write_result res;
} waiter;

static void wake(void *ud, const mt_write_result *res, mt_batch *b)
{
    (void)b;
    waiter *w = ud;
    pthread_mutex_lock(&w->m);
    w->res = *res;
    w->done = true;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

int mt_engine_write(mt_engine *e, mt_batch *b, mt_write_result *res)
{
    waiter w = {.done = false};
    pthread_mutex_init(&w.m, NULL);
    pthread_cond_init(&w.c, NULL);
    int rc = mt_engine_submit(e, b, wake, &w);
    if (!rc) {
        pthread_mutex_lock(&w.m);
        while (!w.done) pthread_cond_wait(&w.c, &w.m);
        pthread_mutex_unlock(&w.m);
        rc = w.res.rc;
        if (res) *res = w.res;
    }
    pthread_mutex_destroy(&w.m);
    pthread_cond_destroy(&w.c);
    return rc;
}

int mt_engine_run_job(mt_engine *e, int (*fn)(mt_engine *e, void *ud), void *ud)
{
    if (e->opt.read_only) return MT_ECLOSED; /* no writer thread */
    qlock_take(e);
    while (e->job &&
           e->state != MT_ENGINE_CLOSING) /* one request at a time: wait for the one in flight */
        qwait(e, &e->dcond, NULL);
    if (e->state != MT_ENGINE_OPEN) {
        qlock_give(e);
        return MT_ECLOSED;
    }
    uint64_t gen = e->job_gen;
    e->job = fn;
    e->job_ud = ud;
    pthread_cond_signal(&e->qcond);
    while (e->job_gen == gen) qwait(e, &e->dcond, NULL);
    int rc = e->job_rc;
    qlock_give(e);
    return rc;
}

typedef struct seal_job {
    bool all;
    size_t hours;
} seal_job;

static int seal_job_run(mt_engine *e, void *ud)
{
    seal_job *j = ud;
    return mt_seal_run(e, j->all ? MT_SEAL_ALL : MT_SEAL_DUE, &j->hours);
}

int mt_engine_seal(mt_engine *e, bool all, size_t *hours)
{
    seal_job j = {.all = all};
    int rc = mt_engine_run_job(e, seal_job_run, &j);
    if (hours) *hours = j.hours;
    return rc;
}

int mt_engine_series_lookup(mt_engine *e, const void *key, size_t klen, uint32_t *id,
                            mt_vtype *type)
{
    pthread_rwlock_rdlock(&e->lock);
    uint32_t i = mt_index_find(&e->index, key, klen, mt_hash64(key, klen));
    /* a series the writer is creating in a commit that may still fail (and be undone) is not
       handed out: a caller that kept its id would later name another series with it */
    if (i > e->committed_n) i = 0;
    if (i) {
        *id = i;
        *type = (mt_vtype)e->index.ents[i].type;
    }
    pthread_rwlock_unlock(&e->lock);
    return i ? MT_OK : MT_ENOTFOUND;
}

int mt_engine_series_key(mt_engine *e, uint32_t id, void *out, size_t cap, size_t *klen)
{
    int rc = MT_OK;
    pthread_rwlock_rdlock(&e->lock);
    if (id == 0 || id > e->index.n || !e->index.ents[id].len) {
        rc = MT_ENOTFOUND; /* never given, or deleted (mt_engine_delete) */
    } else {
        const mt_series_ent *s = &e->index.ents[id];
        *klen = s->len;
        if (s->len > cap)
            rc = MT_ELIMIT;
        else
            memcpy(out, e->index.arena + s->off, s->len);
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

#define WALK_DONE INT_MIN /* a visitor's "stop here", not an error (no caller returns it) */

/*
 * Call visit(ud, term, tl, id) for each posting whose term starts with
 * prefix, in key order (a term's ids ascending), in one read snapshot.
 * visit returns 0 to go on; WALK_DONE stops quietly, anything else is
 * returned.
 */
static int walk_postings(mt_engine *e, const char *prefix, size_t pl,
                         int (*visit)(void *ud, const char *term, size_t tl, uint32_t id), void *ud)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    mt_kv_cursor *c;
    if ((rc = mt_kv_cursor_open(t, MT_DB_POSTINGS, &c))) {
        mt_kv_abort(t);
        return rc;
    }
    const void *k, *v;
    size_t kl, vl;
    int r;
    for (r = mt_kv_cursor_seek(c, prefix, pl, &k, &kl, &v, &vl); r == MT_OK && !rc;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        if (kl < pl || memcmp(k, prefix, pl) || vl != 4) break;
        rc = visit(ud, k, kl, mt_load_be32(v));
    }
    if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r; /* a damaged posting: not the end */
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    return rc == WALK_DONE ? MT_OK : rc;
}

typedef struct id_list {
    size_t tl; /* the exact term */
    uint32_t *ids;
    size_t n, cap;
} id_list;

static int collect_id(void *ud, const char *term, size_t tl, uint32_t id)
{
    (void)term;
    id_list *l = ud;
    if (tl != l->tl) return WALK_DONE; /* a longer term that shares the prefix */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        uint32_t *g = realloc(l->ids, cap * sizeof *g);
        if (!g) return -ENOMEM;
        l->ids = g;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

int mt_engine_postings(mt_engine *e, mt_term_kind kind, mt_name name, mt_name value, uint32_t **ids,
                       size_t *n)
{
    *ids = NULL;
    *n = 0;
    char term[512];
    size_t tl = mt_index_term(term, sizeof term, kind, name, value);
    if (!tl) return MT_OK;
    id_list l = {.tl = tl};
    int rc = walk_postings(e, term, tl, collect_id, &l);
    if (rc) {
        free(l.ids);
        return rc;
    }
    *ids = l.ids;
    *n = l.n;
    return MT_OK;
}

typedef struct value_count {
    size_t pl; /* prefix length: the value follows it */
    char cur[512];
    size_t cur_len, series;
    int (*fn)(void *ud, mt_name value, size_t series);
    void *ud;
} value_count;

/* Duplicates of one term come one after another: count them, report at each new term. */
static int count_value(void *ud, const char *term, size_t tl, uint32_t id)
{
    (void)id;
    value_count *vc = ud;
    int rc = 0;
    if (vc->series && (tl != vc->cur_len || memcmp(term, vc->cur, tl))) {
        rc = vc->fn(vc->ud, (mt_name){vc->cur + vc->pl, vc->cur_len - vc->pl}, vc->series);
        vc->series = 0;
    }
    memcpy(vc->cur, term, tl);
    vc->cur_len = tl;
    vc->series++;
    return rc;
}

int mt_engine_tag_values(mt_engine *e, mt_name key,
                         int (*fn)(void *ud, mt_name value, size_t series), void *ud)
{
    char prefix[512];
    size_t pl = mt_index_term(prefix, sizeof prefix, MT_TERM_TAG, key, (mt_name){"", 0});
    if (!pl) return MT_OK;
    value_count vc = {.pl = pl, .fn = fn, .ud = ud};
    int rc = walk_postings(e, prefix, pl, count_value, &vc);
    if (!rc && vc.series) rc = fn(ud, (mt_name){vc.cur + pl, vc.cur_len - pl}, vc.series);
    return rc;
}

int mt_engine_chunks(mt_engine *e, int (*fn)(void *ud, const mt_chunk_info *c), void *ud,
                     size_t *unreadable)
{
    int rc = MT_OK;
    size_t bad = 0;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t h = 0; h < e->nhours && !rc; h++) {
        if (mt_engine_hour_index(e, &e->hours[h])) {
            bad++;
            continue;
        }
        const mt_hf_index *ix = e->hours[h].live->idx;
        for (size_t i = 0; i < ix->n && !rc; i++) {
            mt_chunk_info c = mt_hf_entry_info(e->hours[h].hour, &ix->e[i]);
            rc = fn(ud, &c);
        }
    }
    pthread_rwlock_unlock(&e->lock);
    if (unreadable) *unreadable = bad;
    return rc;
}

void mt_engine_stats_get(mt_engine *e, mt_engine_stats *st)
{
    pthread_rwlock_rdlock(&e->lock);
    *st = e->st;
    st->format = __atomic_load_n(&e->format, __ATOMIC_RELAXED); /* a delete may raise it */
    st->format_max = FORMAT_VERSION;
    st->series = e->index.n;
    st->head_points = e->head.points;
    st->head_bytes = e->head.bytes;
    st->sealed_hours = e->nhours;
    st->footers_loaded = __atomic_load_n(&e->footers, __ATOMIC_RELAXED);
    st->footer_bytes = __atomic_load_n(&e->footer_bytes, __ATOMIC_RELAXED);
    st->log_points = e->head.log_points;
    st->late_points = 0;
    for (size_t i = 0; i < e->head.nhours; i++)
        if (mt_engine_hour(e, e->head.hours[i].hour)) st->late_points += e->head.hours[i].points;
    st->last_seq = e->seq;
    pthread_rwlock_unlock(&e->lock);
    st->index_bytes = mt_kv_used_bytes(e->kv);
    st->index_live_bytes = mt_kv_live_bytes(e->kv);
}

size_t mt_engine_damage(mt_engine *e, void (*fn)(void *ud, const char *line), void *ud)
{
    size_t n = 0;
    char line[4400], path[4096], when[48];
    if (e->opt.read_only) { /* a reader's open looked at no file: asked, it looks at every one */
        pthread_rwlock_wrlock(&e->lock);
        for (size_t i = 0; i < e->nhours; i++) {
            mt_hour_desc *d = &e->hours[i];
            const mt_hour_live *l = d->live;
            int bad = l && (l->map || l->bad) ? MT_OK : hour_stat(e, d);
            if (bad && bad != -ENOMEM) hour_bad(d, bad);
            if (bad && bad != -ENOMEM) e->st.hours_unreadable++;
        }
        pthread_rwlock_unlock(&e->lock);
    }
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->nhours; i++) {
        const mt_hour_desc *d = &e->hours[i];
        if (!hour_bad_now(d)) continue; /* readable, or not read yet */
        mt_hf_path(path, sizeof path, e->dir, d->hour, d->gen);
        mt_time_format(d->hour * MT_HOUR_NS, when, sizeof when);
        snprintf(line, sizeof line, "hour %s, file %s: %s", when, path,
                 access(path, F_OK) ? "missing" : "damaged (footer or index unreadable)");
        fn(ud, line);
        n++;
    }
    if (e->st.head_records_skipped) {
        snprintf(line, sizeof line,
                 "%llu head records failed their checksum at open and were skipped: their points "
                 "are lost (the first: %s)",
                 (unsigned long long)e->st.head_records_skipped, e->head_damage);
        fn(ud, line);
        n++;
    }
    pthread_rwlock_unlock(&e->lock);
    char d[1100];
    uint64_t nk = mt_kv_corruption(e->kv, d, sizeof d);
    if (nk > e->kv_damage_at_open) { /* met by a read since open (rollups, outbox, state) */
        snprintf(line, sizeof line,
                 "%llu damaged records of index.mdb met by reads (not served); the last: %s",
                 (unsigned long long)(nk - e->kv_damage_at_open), d);
        fn(ud, line);
        n++;
    }
    return n;
}

int mt_engine_after_commit(mt_engine *e, int rc)
{
    qlock_take(e);
    if (rc == MT_OK) {
        e->nospace = false;
    } else if (rc == -ENOSPC) {
        e->nospace = true;
    } else if (rc != MT_EFULL && e->state == MT_ENGINE_OPEN) {
        set_state(e, MT_ENGINE_FAILED);
        e->fail_rc = rc;
    }
    qlock_give(e);
    return rc;
}

#define GROW_ATTEMPTS 8 /* doublings of the map one commit may ask for */

int mt_engine_write_txn(mt_engine *e, mt_txn_body body, void (*undo)(mt_engine *e, void *ud),
                        void *ud)
{
    for (int attempt = 0;; attempt++) {
        mt_kv_txn *t = NULL;
        int rc = mt_kv_begin(e->kv, true, &t);
        if (rc) return rc;
        rc = body(e, t, ud);
        uint64_t id = mt_kv_txn_id(t);
        if (!rc)
            rc = mt_engine_after_commit(e, mt_kv_commit(t)); /* t is freed either way */
        else
            mt_kv_abort(t);
        if (!rc) e->last_txnid = id;
        if (rc && undo) undo(e, ud);
        if (rc != MT_EFULL || attempt == GROW_ATTEMPTS) return rc;
        if ((rc = mt_kv_grow(e->kv))) return rc;
    }
}

int mt_engine_health(mt_engine *e, char *why, size_t cap)
{
    qlock_take(e);
    bool failed = e->state == MT_ENGINE_FAILED, nospace = e->nospace;
    int fail_rc = e->fail_rc;
    qlock_give(e);
    if (failed) {
        snprintf(why, cap,
                 "writes are refused after a failed commit (%s): fail-stop, nothing "
                 "unacknowledged was kept; restart once the storage is fixed",
                 mt_strerror(fail_rc));
        return MT_ECLOSED;
    }
    if (nospace) {
        /* the next commit will tell for sure; until then, say whether there is room again */
        struct statvfs fs;
        if (statvfs(e->dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize >= MT_HEALTH_ROOM)
            return MT_OK;
        snprintf(why, cap, "the disk of %s is full: writes are refused until space is freed",
                 e->dir);
        return -ENOSPC;
    }
    return MT_OK;
}

int64_t mt_engine_grace_ns(const mt_engine *e)
{
    return e->opt.grace_ns; /* set at open, never written again */
}

int mt_engine_set_age_policy(mt_engine *e, const mt_retention *p)
{
    mt_retention *c = NULL;
    if (p && !(c = mt_retention_copy(p))) return -ENOMEM;
    pthread_mutex_lock(&e->age_lock);
    mt_retention *old = e->age;
    e->age = c;
    /* the writer reads the shortest keep without the lock, and takes the lock (to look a
       series' rule up) only for a point older than it */
    __atomic_store_n(&e->age_min, c ? mt_retention_shortest_keep(c) : 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&e->age_lock);
    free(old);
    return MT_OK;
}

void mt_engine_lib_versions(char *out, size_t cap)
{
    int major, minor, patch;
    mt_kv_lib_version(&major, &minor, &patch);
    snprintf(out, cap, "LMDB %d.%d.%d, zstd %s", major, minor, patch, mt_zstd_version());
}
