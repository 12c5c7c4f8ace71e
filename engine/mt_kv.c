/* mt_kv.c — LMDB wrapper (contract in mt_kv.h). */
#include "mt_kv.h"

#include "mt_fault.h"
#include "mt_fs.h"
#include "mt_log.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)64 << 30)

static const struct {
    const char *name;
    unsigned flags;
} dbs[MT_DB__COUNT] = {
    [MT_DB_META] = {"meta", 0},
    [MT_DB_SERIES] = {"series", 0},
    [MT_DB_SERIES_BY_ID] = {"series_by_id", 0},
    [MT_DB_POSTINGS] = {"postings", MDB_DUPSORT | MDB_DUPFIXED},
    [MT_DB_HOURS] = {"hours", 0},
    [MT_DB_HEAD] = {"head", 0},
    [MT_DB_ROLLUPS] = {"rollups", 0},
    [MT_DB_OUTBOX] = {"outbox", 0},
    [MT_DB_STATE] = {"state", 0},
};

struct mt_kv {
    MDB_env *env;
    MDB_dbi dbi[MT_DB__COUNT];
    size_t map_size;
    bool read_only, nosync;
    char path[4096]; /* DIR/index.mdb */
    /* every transaction holds it shared; mt_kv_compact swaps the file holding it exclusive */
    pthread_rwlock_t swap;
};

struct mt_kv_txn {
    mt_kv *kv;
    MDB_txn *txn;
};

struct mt_kv_cursor {
    MDB_cursor *cur;
};

static int map_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return MT_OK;
    case MDB_NOTFOUND: return MT_ENOTFOUND;
    case MDB_MAP_FULL: return MT_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return MT_ECORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return MT_EFORMAT;
    default: return rc > 0 ? -rc : MT_EINVAL;
    }
}

/* Open kv->path and its databases into kv->env and kv->dbi. */
/*
 * LMDB maps index.mdb and reads its pages in place: a page past the end of a
 * truncated file is a SIGBUS in whatever reads it, not an error. So before
 * mapping, read the two meta pages the way mdb_env_read_header does (page 0
 * gives the page size, the meta with the higher txnid is the current one)
 * and refuse a file shorter than the last page that meta claims. The meta
 * is read before the size is taken: a writer in another process writes its
 * pages before the meta that names them, so a live file always passes.
 * Offsets (lmdb.h 0.9, 64-bit): a page header of 16 bytes, then mm_magic
 * (u32), mm_version, mm_address, mm_mapsize, mm_dbs[0] whose first u32 is
 * mm_psize (at 40), mm_dbs[1], mm_last_pg (at 136), mm_txnid (at 144).
 * A missing or empty file is left to LMDB (a new environment), and a file
 * without LMDB's magic to mdb_env_open (MDB_INVALID).
 */
#define KV_META_MAGIC 0xBEEFC0DEu

static int check_size(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? MT_OK : -errno;
    uint8_t m[2][152];
    uint64_t psize = 0, last = 0, txnid = 0;
    bool seen = false;
    int rc = MT_OK;
    for (int i = 0; i < 2 && !rc; i++) {
        ssize_t n = pread(fd, m[i], sizeof m[i], (off_t)(i * psize));
        if (n < 0) {
            rc = -errno;
            break;
        }
        uint32_t magic, ps;
        memcpy(&magic, m[i] + 16, 4);
        memcpy(&ps, m[i] + 40, 4);
        if (n < (ssize_t)sizeof m[i] || magic != KV_META_MAGIC) {
            if (i == 0) break; /* empty, or not LMDB's: mdb_env_open decides */
            rc = MT_ECORRUPT;  /* meta page 1 short or damaged while page 0 is fine */
            break;
        }
        if (i == 0) {
            if (ps < 512 || ps > 65536 || (ps & (ps - 1))) {
                rc = MT_ECORRUPT;
                break;
            }
            psize = ps;
        }
        uint64_t lp, tx;
        memcpy(&lp, m[i] + 136, 8);
        memcpy(&tx, m[i] + 144, 8);
        if (!seen || tx > txnid) last = lp, txnid = tx, seen = true;
    }
    struct stat st;
    if (!rc && seen && fstat(fd, &st)) rc = -errno;
    if (!rc && seen &&
        (last > UINT64_MAX / psize - 1 || (uint64_t)st.st_size < (last + 1) * psize)) {
        mt_log(MT_LOG_ERROR,
               "msg=\"index.mdb is shorter than the pages its meta page names: truncated\" "
               "file=\"%s\" bytes=%lld needs=%llu",
               path, (long long)st.st_size,
               last > UINT64_MAX / psize - 1 ? UINT64_MAX
                                             : (unsigned long long)((last + 1) * psize));
        rc = MT_ECORRUPT;
    } else if (rc == MT_ECORRUPT) {
        mt_log(MT_LOG_ERROR, "msg=\"index.mdb has a damaged meta page\" file=\"%s\"", path);
    }
    close(fd);
    return rc;
}

static int env_open(mt_kv *kv)
{
    int crc = check_size(kv->path);
    if (crc) return crc;
    unsigned flags =
        MDB_NOSUBDIR | MDB_NOTLS | (kv->nosync ? MDB_NOSYNC : 0) | (kv->read_only ? MDB_RDONLY : 0);
    int rc = mdb_env_create(&kv->env);
    if (!rc) rc = mdb_env_set_maxdbs(kv->env, MT_DB__COUNT);
    if (!rc) rc = mdb_env_set_mapsize(kv->env, kv->map_size);
    if (!rc) rc = mdb_env_set_maxreaders(kv->env, 256);
    if (!rc) rc = mdb_env_open(kv->env, kv->path, flags, 0644);
    MDB_txn *txn = NULL;
    if (!rc) rc = mdb_txn_begin(kv->env, NULL, kv->read_only ? MDB_RDONLY : 0, &txn);
    for (int i = 0; !rc && i < MT_DB__COUNT; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, (kv->read_only ? 0 : MDB_CREATE) | dbs[i].flags,
                          &kv->dbi[i]);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc && kv->env) {
        mdb_env_close(kv->env);
        kv->env = NULL;
    }
    return map_err(rc);
}

int mt_kv_open(const char *dir, const mt_kv_options *opt, mt_kv **out)
{
    mt_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return -ENOMEM;
    kv->map_size = opt && opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE;
    kv->read_only = opt && opt->read_only;
    kv->nosync = opt && opt->nosync;
    snprintf(kv->path, sizeof kv->path, "%s/index.mdb", dir);
    pthread_rwlock_init(&kv->swap, NULL);
    if (!kv->read_only) { /* a compaction that a crash interrupted: its copy is garbage */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.compact", kv->path);
        unlink(tmp);
    }
    int rc = env_open(kv);
    if (rc) {
        mt_kv_close(kv);
        return rc;
    }
    *out = kv;
    return MT_OK;
}

void mt_kv_close(mt_kv *kv)
{
    if (!kv) return;
    if (kv->env) mdb_env_close(kv->env);
    pthread_rwlock_destroy(&kv->swap);
    free(kv);
}

int mt_kv_grow(mt_kv *kv)
{
    int rc = mdb_env_set_mapsize(kv->env, kv->map_size * 2);
    if (rc == MDB_SUCCESS) kv->map_size *= 2;
    return map_err(rc);
}

int mt_kv_sync(mt_kv *kv)
{
    return map_err(mdb_env_sync(kv->env, 1));
}

uint64_t mt_kv_used_bytes(mt_kv *kv)
{
    MDB_envinfo info;
    MDB_stat st;
    pthread_rwlock_rdlock(&kv->swap);
    int rc = !kv->env || mdb_env_info(kv->env, &info) || mdb_env_stat(kv->env, &st);
    pthread_rwlock_unlock(&kv->swap);
    return rc ? 0 : ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

uint64_t mt_kv_live_bytes(mt_kv *kv)
{
    mt_kv_txn *t;
    MDB_stat st;
    if (mt_kv_begin(kv, false, &t)) return 0;
    MDB_txn *txn = t->txn;
    uint64_t pages = 2;             /* the two meta pages */
    if (mdb_stat(txn, 1, &st) == 0) /* the main database, which names the others */
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    for (int i = 0; i < MT_DB__COUNT; i++)
        if (mdb_stat(txn, kv->dbi[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    uint64_t psize = st.ms_psize;
    mt_kv_abort(t);
    return pages * psize;
}

int mt_kv_begin(mt_kv *kv, bool write, mt_kv_txn **out)
{
    mt_kv_txn *t = malloc(sizeof *t);
    if (!t) return -ENOMEM;
    t->kv = kv;
    pthread_rwlock_rdlock(&kv->swap);
    int rc = kv->env ? mdb_txn_begin(kv->env, NULL, write ? 0 : MDB_RDONLY, &t->txn) : EIO;
    if (rc) {
        pthread_rwlock_unlock(&kv->swap);
        free(t);
        return map_err(rc);
    }
    *out = t;
    return MT_OK;
}

int mt_kv_commit(mt_kv_txn *txn)
{
    mt_kv *kv = txn->kv;
    int rc;
    if (mt_fault_hit("kv.commit")) { /* as if the disk failed the commit's write or fsync */
        mdb_txn_abort(txn->txn);
        rc = EIO;
    } else {
        rc = mdb_txn_commit(txn->txn);
    }
    pthread_rwlock_unlock(&kv->swap);
    free(txn);
    return map_err(rc);
}

void mt_kv_abort(mt_kv_txn *txn)
{
    if (!txn) return;
    mdb_txn_abort(txn->txn);
    pthread_rwlock_unlock(&txn->kv->swap);
    free(txn);
}

int mt_kv_get(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void **val,
              size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn->txn, txn->kv->dbi[db], &k, &v);
    if (rc) return map_err(rc);
    *val = v.mv_data;
    *vlen = v.mv_size;
    return MT_OK;
}

int mt_kv_put(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
              size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    return map_err(mdb_put(txn->txn, txn->kv->dbi[db], &k, &v, 0));
}

int mt_kv_del(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    return map_err(mdb_del(txn->txn, txn->kv->dbi[db], &k, NULL));
}

int mt_kv_drop_all(mt_kv_txn *txn, mt_kv_db db)
{
    return map_err(mdb_drop(txn->txn, txn->kv->dbi[db], 0));
}

int mt_kv_cursor_open(mt_kv_txn *txn, mt_kv_db db, mt_kv_cursor **out)
{
    mt_kv_cursor *c = malloc(sizeof *c);
    if (!c) return -ENOMEM;
    int rc = mdb_cursor_open(txn->txn, txn->kv->dbi[db], &c->cur);
    if (rc) {
        free(c);
        return map_err(rc);
    }
    *out = c;
    return MT_OK;
}

void mt_kv_cursor_close(mt_kv_cursor *c)
{
    if (!c) return;
    mdb_cursor_close(c->cur);
    free(c);
}

static int cursor_get(mt_kv_cursor *c, MDB_val *k, MDB_cursor_op op, const void **kp, size_t *kl,
                      const void **vp, size_t *vl)
{
    MDB_val v;
    int rc = mdb_cursor_get(c->cur, k, &v, op);
    if (rc) return map_err(rc);
    *kp = k->mv_data;
    *kl = k->mv_size;
    *vp = v.mv_data;
    *vl = v.mv_size;
    return MT_OK;
}

int mt_kv_cursor_seek(mt_kv_cursor *c, const void *key, size_t klen, const void **k, size_t *kl,
                      const void **v, size_t *vl)
{
    MDB_val kk = {klen, (void *)key};
    return cursor_get(c, &kk, klen ? MDB_SET_RANGE : MDB_FIRST, k, kl, v, vl);
}

int mt_kv_cursor_next(mt_kv_cursor *c, const void **k, size_t *kl, const void **v, size_t *vl)
{
    MDB_val kk;
    return cursor_get(c, &kk, MDB_NEXT, k, kl, v, vl);
}

int mt_kv_compact(mt_kv *kv, uint64_t *before, uint64_t *after)
{
    if (kv->read_only) return MT_EINVAL;
    char tmp[4200], lock[4200];
    snprintf(tmp, sizeof tmp, "%s.compact", kv->path);
    snprintf(lock, sizeof lock, "%s-lock", kv->path);
    pthread_rwlock_wrlock(&kv->swap); /* no transaction of this process is open past here */
    struct stat st;
    if (before) *before = stat(kv->path, &st) ? 0 : (uint64_t)st.st_size;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? errno : mdb_env_copyfd2(kv->env, fd, MDB_CP_COMPACT);
    if (!rc && fsync(fd)) rc = errno;
    if (fd >= 0 && close(fd) && !rc) rc = errno;
    if (rc) { /* nothing changed: the old file stays */
        unlink(tmp);
        pthread_rwlock_unlock(&kv->swap);
        return map_err(rc);
    }
    /*
     * Swap: the copy takes the file's name; the lock file goes too, so a
     * reader process still on the old file keeps its own consistent pair
     * (old data, old lock) and new openers get the new pair.
     */
    mdb_env_close(kv->env);
    kv->env = NULL;
    if (rename(tmp, kv->path)) rc = errno;
    if (!rc) {
        int src = mt_fs_sync_parent(kv->path); /* the rename made durable */
        if (src) rc = -src;                    /* this function's rc is a positive errno */
        unlink(lock);
    }
    int orc = env_open(kv); /* the old file if the rename failed, else the copy */
    pthread_rwlock_unlock(&kv->swap);
    if (orc) return MT_ECLOSED; /* kv unusable: every later transaction fails with -EIO */
    if (after) *after = stat(kv->path, &st) ? 0 : (uint64_t)st.st_size;
    return map_err(rc);
}

int mt_kv_cursor_last(mt_kv_cursor *c, const void **k, size_t *kl, const void **v, size_t *vl)
{
    MDB_val kk;
    return cursor_get(c, &kk, MDB_LAST, k, kl, v, vl);
}

int mt_kv_count(mt_kv_txn *txn, mt_kv_db db, size_t *n)
{
    MDB_stat st;
    int rc = mdb_stat(txn->txn, txn->kv->dbi[db], &st);
    if (!rc) *n = st.ms_entries;
    return map_err(rc);
}
