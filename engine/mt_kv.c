/* mt_kv.c — LMDB wrapper (contract in mt_kv.h). */
#include "mt_kv.h"

#include "mt_endian.h"
#include "mt_fault.h"
#include "mt_fs.h"
#include "mt_hash.h"
#include "mt_time.h"
#include "mt_log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE ((size_t)64 << 30)
#define SUM_LEN          4                     /* the checksum trailer on every value */
#define SUM_SEED         0x4d54524f4e4b5653ULL /* "MTRONKVS": 0 would collide with plain XXH3 */

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
    MDB_env *map_env;        /* the environment map_base was found for */
    const uint8_t *map_base; /* where LMDB mapped index.mdb (NULL: unknown, no bound checked) */
    bool plain; /* values carry no trailer (a format-1 index read as it is: mt_kv_set_checksums) */
    pthread_mutex_t dmg_lock; /* guards the three below and map_env, map_base */
    uint64_t ndmg;            /* corrupt records met since open */
    char dmg[1024];           /* the last one, for people */
};

struct mt_kv_txn {
    mt_kv *kv;
    MDB_txn *txn;
    /* the map, and the end of the file in it as of begin: a damaged size in a page must not
       send a read past the end of the file (SIGBUS) */
    const uint8_t *map, *map_end, *file_end;
    bool faulted; /* a read of the map faulted inside it: it can only be aborted */
};

struct mt_kv_cursor {
    MDB_cursor *cur;
    mt_kv *kv;
    mt_kv_txn *txn;
    mt_kv_db db;
    /* the previous step's key (and duplicate): each next one must sort after it */
    bool have_prev;
    size_t prev_kl, prev_vl;
    uint8_t prev_k[512], prev_v[512];
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

static int check_size(const char *path, char *why, size_t cap)
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
        snprintf(why, cap, "%s: %lld bytes, shorter than the %llu its meta page names (truncated)",
                 path, (long long)st.st_size,
                 last > UINT64_MAX / psize - 1 ? UINT64_MAX
                                               : (unsigned long long)((last + 1) * psize));
        rc = MT_ECORRUPT;
    } else if (rc == MT_ECORRUPT) {
        snprintf(why, cap, "%s: a meta page is damaged", path);
    }
    close(fd);
    return rc;
}

static const uint8_t *find_map(MDB_env *env);
static void remember(mt_kv *kv, const char *text);
static int read_err(mt_kv *kv, mt_kv_db db, int rc);
static int stat_guarded(mt_kv_txn *txn, mt_kv_db db, MDB_dbi dbi, MDB_stat *st);

/* ---- faults in the map ---------------------------------------------------------- */

/*
 * LMDB reads its pages in place, trusting the page numbers, offsets and
 * sizes in them. Damage that sends one past the end of the file is a
 * SIGBUS (SIGSEGV past the map) inside LMDB, before any check of ours can
 * run, and so is a disk's read error on a mapped page; a page number far
 * past the file makes LMDB read outside the map. So every call into LMDB
 * that reads pages runs under a guard: a per-thread jump buffer, set only
 * around LMDB's calls and the checks of what they return. The SIGBUS/
 * SIGSEGV handler jumps back when the faulting thread is inside a guard,
 * and otherwise puts back the handler it replaced and returns, so that the
 * fault repeats into it: a fault anywhere else still crashes, and
 * sanitizers still see their own.
 * The transaction a fault interrupted is marked: every later call on it
 * is MT_ECORRUPT and commit aborts it, so half of a write is never
 * committed. A read transaction holds no lock inside LMDB; a write
 * transaction's writer lock is released by that abort. LMDB's assertions
 * (mdb_env_set_assert) jump back the same way instead of abort().
 */
typedef struct fault_guard {
    sigjmp_buf *jb;      /* where a fault returns (NULL: no guard on this thread) */
    const uint8_t *addr; /* the faulting address */
    int sig;             /* SIGBUS, SIGSEGV, or 0 for an assertion */
    char what[160];      /* the assertion's text */
} fault_guard;

static _Thread_local fault_guard guard;
static struct sigaction prev_bus, prev_segv;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    const uint8_t *a = si->si_addr;
    if (guard.jb && si->si_code > 0) {
        guard.addr = a;
        guard.sig = sig;
        siglongjmp(*guard.jb, 1);
    }
    /* not a read of the map: the handler this one replaced gets the fault when it repeats */
    sigaction(sig, sig == SIGBUS ? &prev_bus : &prev_segv, NULL);
    if (si->si_code <= 0) raise(sig); /* sent, not a fault: it would not repeat */
}

static void install_guard(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    /* NODEFER: a jump out of the handler leaves the signal mask as it was, so sigsetjmp need not
       save it (a system call per guarded call otherwise) */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev_bus);
    sigaction(SIGSEGV, &sa, &prev_segv);
}

static void on_assert(MDB_env *env, const char *msg)
{
    (void)env;
    if (!guard.jb) return; /* LMDB aborts after this returns */
    guard.sig = 0;
    snprintf(guard.what, sizeof guard.what, "%s", msg);
    siglongjmp(*guard.jb, 1);
}

/* What the last fault on this thread was, for people. */
static void fault_text(char *out, size_t cap, const mt_kv_txn *t, size_t psize)
{
    if (!guard.sig) {
        snprintf(out, cap, "LMDB page structure damaged (LMDB's assertion failed: %s)", guard.what);
        return;
    }
    if (guard.addr < t->map || guard.addr >= t->map_end) {
        snprintf(out, cap,
                 "LMDB page structure damaged (a page number points outside the map: a read "
                 "faulted, %s)",
                 guard.sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
        return;
    }
    size_t page = psize ? (size_t)(guard.addr - t->map) / psize : 0;
    int fd;
    struct stat st;
    if (!mdb_env_get_fd(t->kv->env, &fd) && !fstat(fd, &st) &&
        (uint64_t)(guard.addr - t->map) >= (uint64_t)st.st_size)
        snprintf(out, cap,
                 "page %zu is past the end of the file, which has %lld bytes now (truncated "
                 "under the reader, or a page number or size damaged: %s)",
                 page, (long long)st.st_size, guard.sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
    else if (guard.addr >= t->file_end)
        snprintf(out, cap,
                 "LMDB page structure damaged (a page number or size points past the end of the "
                 "file: a read of page %zu faulted, %s)",
                 page, guard.sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
    else
        snprintf(out, cap, "an I/O error reading page %zu of the file (%s on a mapped read)", page,
                 guard.sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
}

static int faulted(mt_kv_txn *t, mt_kv_db db);

/*
 * The body of a function: return call run under t's guard, or MT_ECORRUPT
 * (remembered, naming db) when a read of the map faulted in it. Calls
 * nested in a guarded one run under the outer guard.
 */
#define GUARDED(t, db, call)                                                                       \
    do {                                                                                           \
        if ((t)->faulted) return MT_ECORRUPT;                                                      \
        if (guard.jb || !(t)->map) return (call);                                                  \
        sigjmp_buf jb_;                                                                            \
        if (sigsetjmp(jb_, 0)) return faulted((t), (db));                                          \
        guard.jb = &jb_;                                                                           \
        int rc_ = (call);                                                                          \
        guard.jb = NULL;                                                                           \
        return rc_;                                                                                \
    } while (0)

/* Where LMDB mapped index.mdb, found once per environment (NULL: unknown). */
static const uint8_t *map_base(mt_kv *kv)
{
    pthread_mutex_lock(&kv->dmg_lock);
    if (kv->map_env != kv->env) { /* first use of this environment (open, or after compact) */
        kv->map_base = find_map(kv->env);
        kv->map_env = kv->env;
    }
    const uint8_t *base = kv->map_base;
    pthread_mutex_unlock(&kv->dmg_lock);
    return base;
}

/* Set t's bounds from the environment: the map (found once per environment) and the file. */
static void set_bounds(mt_kv *kv, mt_kv_txn *t)
{
    MDB_envinfo info;
    MDB_stat st;
    const uint8_t *base = map_base(kv);
    if (base && mdb_env_info(kv->env, &info) == 0 && mdb_env_stat(kv->env, &st) == 0) {
        t->map = base;
        t->map_end = t->map + info.me_mapsize;
        t->file_end = t->map + ((size_t)info.me_last_pgno + 1) * st.ms_psize;
    } else {
        t->map = t->map_end = t->file_end = NULL; /* no bound known: none checked, no guard */
    }
}

/* ---- open ------------------------------------------------------------------------ */

/* Begin t->txn, open every database into kv->dbi, commit. */
static int open_dbs(mt_kv_txn *t)
{
    mt_kv *kv = t->kv;
    int rc = mdb_txn_begin(kv->env, NULL, kv->read_only ? MDB_RDONLY : 0, &t->txn);
    for (int i = 0; !rc && i < MT_DB__COUNT; i++)
        rc = mdb_dbi_open(t->txn, dbs[i].name, (kv->read_only ? 0 : MDB_CREATE) | dbs[i].flags,
                          &kv->dbi[i]);
    if (!rc) {
        rc = mdb_txn_commit(t->txn);
        t->txn = NULL; /* freed, committed or not */
    }
    return rc ? read_err(kv, MT_DB__COUNT, rc) : MT_OK;
}

static int open_dbs_guarded(mt_kv_txn *t)
{
    GUARDED(t, MT_DB__COUNT, open_dbs(t));
}

/* Open kv->path and its databases into kv->env and kv->dbi. */
static int env_open(mt_kv *kv)
{
    char why[600] = "";
    struct stat st;
    /* A writer that stopped before its first commit leaves index.mdb empty (LMDB writes its
       meta pages unsynced at creation). For a reader that is no index at all, as a missing
       file is; LMDB would try to create the meta pages through its read-only descriptor. */
    if (kv->read_only && (stat(kv->path, &st) ? errno == ENOENT : st.st_size == 0)) return -ENOENT;
    int rc = check_size(kv->path, why, sizeof why);
    if (rc) {
        if (*why) remember(kv, why);
        return rc;
    }
    pthread_once(&guard_once, install_guard);
    unsigned flags =
        MDB_NOSUBDIR | MDB_NOTLS | (kv->nosync ? MDB_NOSYNC : 0) | (kv->read_only ? MDB_RDONLY : 0);
    int lrc = mdb_env_create(&kv->env);
    if (!lrc) lrc = mdb_env_set_maxdbs(kv->env, MT_DB__COUNT);
    if (!lrc) lrc = mdb_env_set_mapsize(kv->env, kv->map_size);
    if (!lrc) lrc = mdb_env_set_maxreaders(kv->env, 256);
    if (!lrc) lrc = mdb_env_set_assert(kv->env, on_assert);
    if (!lrc) lrc = mdb_env_open(kv->env, kv->path, flags, 0644);
    rc = map_err(lrc);
    if (!rc) {
        mt_kv_txn t = {.kv = kv};
        set_bounds(kv, &t);
        rc = open_dbs_guarded(&t);
        if (t.txn) mdb_txn_abort(t.txn);
    }
    if (rc && kv->env) {
        mdb_env_close(kv->env);
        kv->env = NULL;
    }
    return rc;
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
    pthread_mutex_init(&kv->dmg_lock, NULL);
    if (!kv->read_only) { /* a compaction that a crash interrupted: its copy is garbage */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.compact", kv->path);
        unlink(tmp);
    }
    int rc = env_open(kv);
    if (rc) {
        if (opt && opt->why_cap) mt_kv_corruption(kv, opt->why, opt->why_cap);
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
    pthread_mutex_destroy(&kv->dmg_lock);
    free(kv);
}

int mt_kv_grow(mt_kv *kv)
{
    /* LMDB remaps: no transaction of this process may be open (readers on other threads hold
       the swap lock shared while theirs is) */
    pthread_rwlock_wrlock(&kv->swap);
    int rc = mdb_env_set_mapsize(kv->env, kv->map_size * 2);
    if (rc == MDB_SUCCESS) kv->map_size *= 2;
    pthread_mutex_lock(&kv->dmg_lock);
    kv->map_env = NULL; /* the map may have moved: find it again */
    pthread_mutex_unlock(&kv->dmg_lock);
    pthread_rwlock_unlock(&kv->swap);
    return map_err(rc);
}

int mt_kv_sync(mt_kv *kv)
{
    return map_err(mdb_env_sync(kv->env, 1));
}

void mt_kv_unmap_pages(mt_kv *kv)
{
    MDB_envinfo info;
    MDB_stat st;
    pthread_rwlock_rdlock(&kv->swap); /* no remap while the range is in use */
    const uint8_t *base = kv->env ? map_base(kv) : NULL;
    if (base && !mdb_env_info(kv->env, &info) && !mdb_env_stat(kv->env, &st)) {
        size_t len = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
        /* A shared, read-only file mapping: dropping its page table entries loses nothing (the
           pages stay in the page cache, and a reader touching one maps it again). Failure only
           leaves the pages mapped. */
        (void)madvise((void *)(uintptr_t)base, len, MADV_DONTNEED);
    }
    pthread_rwlock_unlock(&kv->swap);
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
    st.ms_psize = 0;
    uint64_t pages = 2;                             /* the two meta pages */
    if (stat_guarded(t, MT_DB__COUNT, 1, &st) == 0) /* the main database, which names the others */
        pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    for (int i = 0; i < MT_DB__COUNT; i++)
        if (stat_guarded(t, (mt_kv_db)i, kv->dbi[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    uint64_t psize = st.ms_psize;
    mt_kv_abort(t);
    return pages * psize;
}

/*
 * Where LMDB mapped the environment's data file: LMDB says it only for
 * MDB_FIXEDMAP, so it is looked up in /proc/self/maps by the file's device
 * and inode. NULL when not found (no bound is checked then).
 */
static const uint8_t *find_map(MDB_env *env)
{
    int fd;
    struct stat st;
    if (mdb_env_get_fd(env, &fd) || fstat(fd, &st)) return NULL;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    char line[4400];
    const uint8_t *base = NULL;
    while (!base && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        unsigned maj, min;
        if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &lo, &hi, &off, &maj, &min, &ino) == 6 &&
            off == 0 && ino == (unsigned long)st.st_ino && makedev(maj, min) == st.st_dev)
            base = (const uint8_t *)lo;
    }
    fclose(f);
    return base;
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
    t->faulted = false;
    set_bounds(kv, t);
    *out = t;
    return MT_OK;
}

uint64_t mt_kv_txn_id(mt_kv_txn *txn)
{
    return mdb_txn_id(txn->txn);
}

/* mdb_reader_list's lines: a header, then "pid thread txnid" per slot ("-": no snapshot). */
static int oldest_line(const char *msg, void *ctx)
{
    uint64_t *oldest = ctx;
    int pid;
    size_t tid;
    unsigned long long txnid;
    if (sscanf(msg, "%d %zx %llu", &pid, &tid, &txnid) == 3 && txnid < *oldest) *oldest = txnid;
    return 0;
}

int mt_kv_oldest_reader(mt_kv *kv, uint64_t *txnid)
{
    *txnid = UINT64_MAX;
    int dead = 0;
    pthread_rwlock_rdlock(&kv->swap); /* a compaction may be switching the environment */
    int rc = mdb_reader_check(kv->env, &dead);
    if (rc == MDB_SUCCESS) rc = mdb_reader_list(kv->env, oldest_line, txnid) < 0 ? EINVAL : 0;
    pthread_rwlock_unlock(&kv->swap);
    return map_err(rc);
}

static int commit_txn(mt_kv_txn *t)
{
    int rc = mdb_txn_commit(t->txn);
    t->txn = NULL; /* freed, committed or not */
    return map_err(rc);
}

static int commit_guarded(mt_kv_txn *t)
{
    GUARDED(t, MT_DB__COUNT, commit_txn(t));
}

int mt_kv_commit(mt_kv_txn *txn)
{
    mt_kv *kv = txn->kv;
    int rc;
    if (txn->faulted) {
        rc = MT_ECORRUPT;                   /* a read in it faulted: never half a write */
    } else if (mt_fault_hit("kv.commit")) { /* as if the disk failed the commit's write or fsync */
        rc = -EIO;
    } else {
        rc = commit_guarded(txn);
    }
    if (txn->txn) mdb_txn_abort(txn->txn);
    pthread_rwlock_unlock(&kv->swap);
    free(txn);
    return rc;
}

void mt_kv_abort(mt_kv_txn *txn)
{
    if (!txn) return;
    if (txn->txn) mdb_txn_abort(txn->txn);
    pthread_rwlock_unlock(&txn->kv->swap);
    free(txn);
}

/* ---- checksums ------------------------------------------------------------ */

/* XXH3-64 over the database number, the key and the value, truncated to 32 bits. */
static uint32_t kv_sum(mt_kv_db db, const void *k, size_t kl, const void *v, size_t vl)
{
    uint64_t h = mt_hash64_seeded(k, kl, SUM_SEED + (uint64_t)db);
    return (uint32_t)mt_hash64_seeded(v, vl, h);
}

/* Bytes in single quotes (\xNN for the unprintable and quotes), cut at cap. */
static void quoted(char *out, size_t cap, const uint8_t *p, size_t n)
{
    size_t o = 0;
    if (cap < 8) return;
    out[o++] = '\'';
    for (size_t i = 0; i < n && o + 6 < cap; i++) { /* no '"': the text goes into logfmt values */
        if (isprint(p[i]) && p[i] != '"' && p[i] != '\'' && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void hour_text(char *out, size_t cap, const uint8_t *k4)
{
    int64_t hour = (int64_t)mt_load_be32(k4) - 0x80000000LL;
    mt_time_format(hour * 3600LL * 1000000000LL, out, cap);
}

/* What key k of db is, for people: its decoded meaning and what it belongs to. */
static void describe(char *out, size_t cap, mt_kv_db db, const uint8_t *k, size_t kl)
{
    char q[600], t[48];
    quoted(q, sizeof q, k, kl);
    switch (db) {
    case MT_DB_SERIES: snprintf(out, cap, "key %s (a series key: its id and type)", q); return;
    case MT_DB_SERIES_BY_ID:
        if (kl == 4) {
            snprintf(out, cap, "key series id %u (the series' key and type)", mt_load_be32(k));
            return;
        }
        break;
    case MT_DB_POSTINGS:
        snprintf(out, cap, "key %s (a posting term: the ids of its series)", q);
        return;
    case MT_DB_HOURS:
        if (kl == 4) {
            hour_text(t, sizeof t, k);
            snprintf(out, cap, "key hour %s (the sealed hour's file generation and size)", t);
            return;
        }
        break;
    case MT_DB_HEAD:
        if (kl == 8) {
            snprintf(out, cap, "key sequence %llu (a head record: points not yet sealed)",
                     (unsigned long long)mt_load_be64(k));
            return;
        }
        break;
    case MT_DB_ROLLUPS:
        if (kl == 5) {
            hour_text(t, sizeof t, k + 1);
            snprintf(out, cap, "key '%c' hour %s (the hour's %s rollups)",
                     isprint(k[0]) ? k[0] : '?', t, k[0] == 'G' ? "group" : "series");
            return;
        }
        break;
    case MT_DB_OUTBOX:
        if (kl == 8) {
            snprintf(out, cap, "key sequence %llu (an entry the SQL sink must mirror)",
                     (unsigned long long)mt_load_be64(k));
            return;
        }
        break;
    case MT_DB_STATE:
        snprintf(out, cap, "key %s (%s)", q,
                 kl && k[0] == 'A'   ? "an alert's state"
                 : kl && k[0] == 'Q' ? "a row the SQL sink holds back"
                                     : "a state record");
        return;
    default: break;
    }
    snprintf(out, cap, "key %s", q);
}

/* Count a damage met and keep its description (the last one's) for mt_kv_corruption. */
static void remember(mt_kv *kv, const char *text)
{
    pthread_mutex_lock(&kv->dmg_lock);
    kv->ndmg++;
    int w = snprintf(kv->dmg, sizeof kv->dmg, "%s", text);
    if (w >= (int)sizeof kv->dmg) memcpy(kv->dmg + sizeof kv->dmg - 4, "...", 4); /* cut */
    pthread_mutex_unlock(&kv->dmg_lock);
}

/*
 * Remember a corrupt record of db (k may be NULL: LMDB's own structure; db
 * MT_DB__COUNT: the main database, which names the others) and return
 * MT_ECORRUPT.
 */
static int corrupt(mt_kv *kv, mt_kv_db db, const void *k, size_t kl, const char *what)
{
    char key[900] = "", text[sizeof kv->dmg + 64];
    if (k) describe(key, sizeof key, db, k, kl);
    int w =
        snprintf(text, sizeof text, "%s: %s%s%s%s: %s", kv->path,
                 db < MT_DB__COUNT ? "database " : "the main database (the names of the others)",
                 db < MT_DB__COUNT ? dbs[db].name : "", k ? ", " : "", key, what);
    if (w >= (int)sizeof text) memcpy(text + sizeof text - 4, "...", 4); /* cut */
    remember(kv, text);
    return MT_ECORRUPT;
}

/* The guard of t caught a fault (GUARDED): t is marked, the damage remembered. */
static int faulted(mt_kv_txn *t, mt_kv_db db)
{
    guard.jb = NULL;
    t->faulted = true;
    MDB_stat st;
    char what[300];
    fault_text(what, sizeof what, t, mdb_env_stat(t->kv->env, &st) ? 0 : st.ms_psize);
    return corrupt(t->kv, db, NULL, 0, what);
}

/* map_err, naming db when LMDB found its own pages damaged. */
static int read_err(mt_kv *kv, mt_kv_db db, int rc)
{
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return corrupt(kv, db, NULL, 0,
                       rc == MDB_CORRUPTED ? "LMDB page structure damaged (MDB_CORRUPTED)"
                                           : "LMDB page missing (MDB_PAGE_NOTFOUND)");
    /* LMDB marks a transaction failed when a page number is past the file, and where it looks
       a database's root up to open a cursor it does not return the error: the next call says
       MDB_BAD_TXN. Metron ends every transaction at its first error, so this is that page. */
    if (rc == MDB_BAD_TXN)
        return corrupt(kv, db, NULL, 0,
                       "LMDB page missing (a page number past the end of the file: MDB_BAD_TXN)");
    return map_err(rc);
}

/*
 * Whether [p, p+n) runs past the end of the file in the map. LMDB trusts the
 * sizes in its pages; a damaged one would make the checksum (or a caller)
 * read past the end of the file, which is SIGBUS. Pages a write transaction
 * made dirty live outside the map and are not checked.
 */
static bool past_file(const mt_kv_txn *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (!t->map || b < t->map || b >= t->map_end) return false;
    return b >= t->file_end || n > (size_t)(t->file_end - b);
}

/* Check v's trailer and strip it from v; MT_ECORRUPT (remembered) on a mismatch. */
static int verify(mt_kv_txn *t, mt_kv_db db, const MDB_val *k, MDB_val *v)
{
    mt_kv *kv = t->kv;
    if (past_file(t, k->mv_data, k->mv_size))
        return corrupt(kv, db, NULL, 0, "a key's size points past the end of the file");
    if (past_file(t, v->mv_data, v->mv_size))
        return corrupt(kv, db, k->mv_data, k->mv_size,
                       "the value's size points past the end of the file");
    if (kv->plain) return MT_OK;
    if (v->mv_size < SUM_LEN)
        return corrupt(kv, db, k->mv_data, k->mv_size, "value shorter than its checksum");
    size_t n = v->mv_size - SUM_LEN;
    if (kv_sum(db, k->mv_data, k->mv_size, v->mv_data, n) !=
        mt_load_le32((const uint8_t *)v->mv_data + n))
        return corrupt(kv, db, k->mv_data, k->mv_size,
                       "checksum mismatch (key or value damaged): not served");
    v->mv_size = n;
    return MT_OK;
}

uint64_t mt_kv_corruption(mt_kv *kv, char *out, size_t cap)
{
    pthread_mutex_lock(&kv->dmg_lock);
    uint64_t n = kv->ndmg;
    if (cap) snprintf(out, cap, "%s", n ? kv->dmg : "");
    pthread_mutex_unlock(&kv->dmg_lock);
    return n;
}

void mt_kv_set_checksums(mt_kv *kv, bool on)
{
    kv->plain = !on;
}

/* read_err for the calls of a write (MDB_MAP_FULL stays MT_EFULL, MDB_NOTFOUND MT_ENOTFOUND) */
static int write_err(mt_kv_txn *txn, mt_kv_db db, int rc)
{
    return rc ? read_err(txn->kv, db, rc) : MT_OK;
}

/* ---- values ---------------------------------------------------------------- */

static int get(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void **val,
               size_t *vlen)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn->txn, txn->kv->dbi[db], &k, &v);
    if (rc) return read_err(txn->kv, db, rc);
    if ((rc = verify(txn, db, &k, &v))) return rc;
    *val = v.mv_data;
    *vlen = v.mv_size;
    return MT_OK;
}

int mt_kv_get(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void **val,
              size_t *vlen)
{
    GUARDED(txn, db, get(txn, db, key, klen, val, vlen));
}

static int put(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
               size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    if (txn->kv->plain) return write_err(txn, db, mdb_put(txn->txn, txn->kv->dbi[db], &k, &v, 0));
    uint32_t sum = kv_sum(db, key, klen, val, vlen);
    if (dbs[db].flags & MDB_DUPSORT) {
        /* a duplicate is compared as bytes: value first, then its trailer, which is a function
           of (db, key, value), so the order of the values is unchanged and one value has one
           stored form (a put again is still a no-op; deleting it names the same bytes) */
        uint8_t buf[512];
        if (vlen + SUM_LEN > sizeof buf) return MT_EINVAL; /* LMDB's limit for duplicates */
        memcpy(buf, val, vlen);
        mt_store_le32(buf + vlen, sum);
        v = (MDB_val){vlen + SUM_LEN, buf};
        return write_err(txn, db, mdb_put(txn->txn, txn->kv->dbi[db], &k, &v, 0));
    }
    /* the value is written into its place in the page, then its trailer after it */
    v.mv_size = vlen + SUM_LEN;
    int rc = mdb_put(txn->txn, txn->kv->dbi[db], &k, &v, MDB_RESERVE);
    if (rc) return write_err(txn, db, rc);
    memcpy(v.mv_data, val, vlen);
    mt_store_le32((uint8_t *)v.mv_data + vlen, sum);
    return MT_OK;
}

int mt_kv_put(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
              size_t vlen)
{
    GUARDED(txn, db, put(txn, db, key, klen, val, vlen));
}

static int del(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    return write_err(txn, db, mdb_del(txn->txn, txn->kv->dbi[db], &k, NULL));
}

int mt_kv_del(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen)
{
    GUARDED(txn, db, del(txn, db, key, klen));
}

/* One duplicate of a DUPSORT database, named by its stored form (the value and its trailer). */
static int del_dup(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    uint8_t buf[512];
    if (!txn->kv->plain) {
        if (vlen + SUM_LEN > sizeof buf) return MT_EINVAL;
        memcpy(buf, val, vlen);
        mt_store_le32(buf + vlen, kv_sum(db, key, klen, val, vlen));
        v = (MDB_val){vlen + SUM_LEN, buf};
    }
    return write_err(txn, db, mdb_del(txn->txn, txn->kv->dbi[db], &k, &v));
}

int mt_kv_del_dup(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    GUARDED(txn, db, del_dup(txn, db, key, klen, val, vlen));
}

static int drop_all(mt_kv_txn *txn, mt_kv_db db)
{
    return write_err(txn, db, mdb_drop(txn->txn, txn->kv->dbi[db], 0));
}

int mt_kv_drop_all(mt_kv_txn *txn, mt_kv_db db)
{
    GUARDED(txn, db, drop_all(txn, db));
}

/* Delete from the first key while keys sort before key. */
static int del_below(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, size_t *deleted)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn->txn, txn->kv->dbi[db], &c);
    if (rc) return write_err(txn, db, rc);
    MDB_val k, v, lim = {klen, (void *)key};
    /* MDB_FIRST again after each delete: what a deleted cursor points at is LMDB's detail */
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) {
        if (mdb_cmp(txn->txn, txn->kv->dbi[db], &k, &lim) >= 0) break;
        if ((rc = mdb_cursor_del(c, 0))) break;
        (*deleted)++;
    }
    mdb_cursor_close(c);
    return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? MT_OK : write_err(txn, db, rc);
}

int mt_kv_del_below(mt_kv_txn *txn, mt_kv_db db, const void *key, size_t klen, size_t *deleted)
{
    *deleted = 0;
    GUARDED(txn, db, del_below(txn, db, key, klen, deleted));
}

int mt_kv_cursor_open(mt_kv_txn *txn, mt_kv_db db, mt_kv_cursor **out)
{
    /* mdb_cursor_open reads the database's record from the main database when the transaction
       has not yet: read first by mdb_stat, whose cursor is on the stack, so that a fault there
       leaks nothing and mdb_cursor_open reads no page */
    MDB_stat st;
    int rc = stat_guarded(txn, db, txn->kv->dbi[db], &st);
    if (rc) return rc;
    mt_kv_cursor *c = malloc(sizeof *c);
    if (!c) return -ENOMEM;
    rc = mdb_cursor_open(txn->txn, txn->kv->dbi[db], &c->cur);
    if (rc) rc = read_err(txn->kv, db, rc);
    if (rc) {
        free(c);
        return rc;
    }
    c->kv = txn->kv;
    c->txn = txn;
    c->db = db;
    c->have_prev = false;
    *out = c;
    return MT_OK;
}

void mt_kv_cursor_close(mt_kv_cursor *c)
{
    if (!c) return;
    mdb_cursor_close(c->cur);
    free(c);
}

/* LMDB's default order: bytes, then the shorter first. */
static int cmp_memn(const void *a, size_t al, const void *b, size_t bl)
{
    int d = memcmp(a, b, al < bl ? al : bl);
    return d ? d : (al > bl) - (al < bl);
}

/*
 * A step forward must land after the previous one: a damaged node pointer
 * or page link that shows one record twice (or another in place of the
 * one it hides) is out of order, though each record's own checksum holds.
 */
static int in_order(mt_kv_cursor *c, MDB_cursor_op op, const MDB_val *k, const MDB_val *v)
{
    bool dup = dbs[c->db].flags & MDB_DUPSORT;
    if (op == MDB_NEXT && c->have_prev) {
        int d = cmp_memn(c->prev_k, c->prev_kl, k->mv_data, k->mv_size);
        if (d == 0 && dup) d = cmp_memn(c->prev_v, c->prev_vl, v->mv_data, v->mv_size);
        if (d >= 0) {
            c->have_prev = false;
            return corrupt(c->kv, c->db, k->mv_data, k->mv_size,
                           "out of order after the previous record: a page of the database is "
                           "damaged");
        }
    }
    c->have_prev = k->mv_size <= sizeof c->prev_k && (!dup || v->mv_size <= sizeof c->prev_v);
    if (c->have_prev) {
        memcpy(c->prev_k, k->mv_data, k->mv_size);
        c->prev_kl = k->mv_size;
        if (dup) memcpy(c->prev_v, v->mv_data, c->prev_vl = v->mv_size);
    }
    return MT_OK;
}

static int cursor_get_(mt_kv_cursor *c, MDB_val *k, MDB_cursor_op op, const void **kp, size_t *kl,
                       const void **vp, size_t *vl)
{
    MDB_val v;
    int rc = mdb_cursor_get(c->cur, k, &v, op);
    if (rc) return read_err(c->kv, c->db, rc);
    /* the key is handed out even for a damaged record, so a caller can name it and step on */
    *kp = k->mv_data;
    *kl = k->mv_size;
    if ((rc = verify(c->txn, c->db, k, &v))) return rc;
    if ((rc = in_order(c, op, k, &v))) return rc;
    *vp = v.mv_data;
    *vl = v.mv_size;
    return MT_OK;
}

static int cursor_get(mt_kv_cursor *c, MDB_val *k, MDB_cursor_op op, const void **kp, size_t *kl,
                      const void **vp, size_t *vl)
{
    *kp = NULL; /* a fault leaves no key: the cursor cannot step on (mt_kv.h) */
    *kl = 0;
    GUARDED(c->txn, c->db, cursor_get_(c, k, op, kp, kl, vp, vl));
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
    /* mdb_env_copyfd2 walks every page in place, outside any guard, and would copy damage into
       the new file: every record is verified first (the copy reads as much) */
    mt_kv_txn *vt = NULL;
    int vrc = mt_kv_begin(kv, false, &vt);
    for (int i = 0; !vrc && i < MT_DB__COUNT; i++) vrc = mt_kv_verify(vt, (mt_kv_db)i, NULL);
    if (vt) mt_kv_abort(vt);
    if (vrc) return vrc;
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

int mt_kv_copy(mt_kv *kv, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    pthread_rwlock_rdlock(&kv->swap); /* a compaction may be switching the environment */
    int rc = kv->env ? mdb_env_copyfd2(kv->env, fd, MDB_CP_COMPACT) : EIO;
    pthread_rwlock_unlock(&kv->swap);
    if (!rc && fsync(fd)) rc = errno;
    if (close(fd) && !rc) rc = errno;
    if (rc) unlink(path);
    return map_err(rc);
}

int mt_kv_cursor_last(mt_kv_cursor *c, const void **k, size_t *kl, const void **v, size_t *vl)
{
    MDB_val kk;
    return cursor_get(c, &kk, MDB_LAST, k, kl, v, vl);
}

/* mdb_stat reads the database's record from the main database when it is stale */
static int stat_db(mt_kv_txn *txn, mt_kv_db db, MDB_dbi dbi, MDB_stat *st)
{
    int rc = mdb_stat(txn->txn, dbi, st);
    return rc ? read_err(txn->kv, db, rc) : MT_OK;
}

static int stat_guarded(mt_kv_txn *txn, mt_kv_db db, MDB_dbi dbi, MDB_stat *st)
{
    GUARDED(txn, db, stat_db(txn, db, dbi, st));
}

int mt_kv_count(mt_kv_txn *txn, mt_kv_db db, size_t *n)
{
    MDB_stat st;
    int rc = stat_guarded(txn, db, txn->kv->dbi[db], &st);
    if (!rc) *n = st.ms_entries;
    return rc;
}

int mt_kv_verify(mt_kv_txn *txn, mt_kv_db db, size_t *records)
{
    mt_kv_cursor *c;
    int rc = mt_kv_cursor_open(txn, db, &c);
    if (rc) return rc;
    const void *k, *v;
    size_t kl, vl, n = 0, want = 0;
    for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); rc == MT_OK;
         rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl))
        n++;
    mt_kv_cursor_close(c);
    if (rc != MT_ENOTFOUND) return rc;
    if (records) *records = n;
    /* a damaged page header can hide records from a walk: LMDB's own count must agree */
    if ((rc = mt_kv_count(txn, db, &want))) return rc;
    if (n == want) return MT_OK;
    char what[160];
    snprintf(what, sizeof what, "a walk found %zu records where the database counts %zu", n, want);
    return corrupt(txn->kv, db, NULL, 0, what);
}

/* ---- format 1 -> 2 ------------------------------------------------------------ */

typedef struct raw_rec {
    uint8_t *k, *v;
    size_t kl, vl;
} raw_rec;

typedef struct raw_batch {
    raw_rec *r;
    size_t n, cap;
    bool end; /* the database has no record after the batch */
} raw_batch;

#define MIGRATE_BATCH 4096 /* keys read, then rewritten, at a time (bounded memory) */

static int raw_add(raw_batch *b, const MDB_val *k, const MDB_val *v)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : MIGRATE_BATCH;
        raw_rec *g = realloc(b->r, cap * sizeof *g);
        if (!g) return -ENOMEM;
        b->r = g;
        b->cap = cap;
    }
    raw_rec *x = &b->r[b->n++];
    x->k = malloc(k->mv_size ? k->mv_size : 1);
    x->v = malloc(v->mv_size ? v->mv_size : 1);
    x->kl = k->mv_size;
    x->vl = v->mv_size;
    if (!x->k || !x->v) return -ENOMEM;
    memcpy(x->k, k->mv_data, k->mv_size);
    memcpy(x->v, v->mv_data, v->mv_size);
    return MT_OK;
}

static void raw_clear(raw_batch *b)
{
    for (size_t i = 0; i < b->n; i++) free(b->r[i].k), free(b->r[i].v);
    b->n = 0;
}

/* Read the records of up to MIGRATE_BATCH keys after key last (NULL: from the first) into b. */
static int raw_read_(mt_kv_txn *txn, mt_kv_db db, const raw_rec *last, raw_batch *b)
{
    bool dup = dbs[db].flags & MDB_DUPSORT;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn->txn, txn->kv->dbi[db], &cur);
    if (rc) return read_err(txn->kv, db, rc);
    MDB_val k = {0, NULL}, v;
    if (!last) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else {
        k = (MDB_val){last->kl, last->k};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (!rc && k.mv_size == last->kl && !memcmp(k.mv_data, last->k, last->kl))
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
    }
    int arc = MT_OK;
    for (size_t keys = 0; !rc && !arc && keys < MIGRATE_BATCH; keys++) {
        /* a key's duplicates go in one batch: the key is deleted and written again whole */
        arc = raw_add(b, &k, &v);
        MDB_val k2;
        while (dup && !arc && !(rc = mdb_cursor_get(cur, &k2, &v, MDB_NEXT_DUP)))
            arc = raw_add(b, &k, &v);
        if (dup && rc == MDB_NOTFOUND) rc = 0;
        if (!rc && !arc) rc = mdb_cursor_get(cur, &k, &v, dup ? MDB_NEXT_NODUP : MDB_NEXT);
    }
    mdb_cursor_close(cur);
    b->end = rc == MDB_NOTFOUND;
    if (arc) return arc;
    return rc == MDB_NOTFOUND ? MT_OK : rc ? read_err(txn->kv, db, rc) : MT_OK;
}

static int raw_read(mt_kv_txn *txn, mt_kv_db db, const raw_rec *last, raw_batch *b)
{
    GUARDED(txn, db, raw_read_(txn, db, last, b));
}

int mt_kv_add_checksums(mt_kv_txn *txn, uint64_t *records)
{
    if (txn->kv->plain || txn->kv->read_only) return MT_EINVAL;
    raw_batch b = {0};
    raw_rec last = {0};
    int rc = MT_OK;
    uint64_t total = 0;
    for (int db = 0; db < MT_DB__COUNT && !rc; db++) {
        bool dup = dbs[db].flags & MDB_DUPSORT, first = true;
        for (;;) {
            rc = raw_read(txn, (mt_kv_db)db, first ? NULL : &last, &b);
            const raw_rec *r = b.r;
            for (size_t i = 0; !rc && i < b.n; i++) {
                bool new_key =
                    i == 0 || r[i].kl != r[i - 1].kl || memcmp(r[i].k, r[i - 1].k, r[i].kl);
                if (dup && new_key) { /* its old duplicates go; each comes back with a trailer */
                    rc = mt_kv_del(txn, (mt_kv_db)db, r[i].k, r[i].kl);
                }
                if (!rc) rc = mt_kv_put(txn, (mt_kv_db)db, r[i].k, r[i].kl, r[i].v, r[i].vl);
            }
            total += b.n;
            if (!rc && b.n) { /* the batch's last key is where the next one starts */
                free(last.k);
                last = (raw_rec){.k = b.r[b.n - 1].k, .kl = b.r[b.n - 1].kl};
                b.r[b.n - 1].k = NULL;
            }
            bool end = b.end || !b.n;
            raw_clear(&b);
            if (rc || end) break;
            first = false;
        }
        free(last.k);
        last = (raw_rec){0};
    }
    free(b.r);
    if (records) *records = total;
    return rc;
}

void mt_kv_lib_version(int *major, int *minor, int *patch)
{
    (void)mdb_version(major, minor, patch);
}
