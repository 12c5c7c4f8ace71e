/*
 * mt_backup.c — online backup and restore (mt_backup.h).
 *
 * Why the snapshot is consistent without stopping the writer:
 *
 *   1. A read transaction T1 is begun on dir's index.mdb (LMDB's reader
 *      table, shared with metrond, now holds T1).
 *   2. mt_kv_copy writes index.mdb as of a snapshot T2 >= T1, which LMDB
 *      takes inside the copy: series, hours, head log all from T2.
 *   3. The copy is opened and checked (every record's checksum) and its
 *      `hours` database read: the (hour, generation) pairs of T2.
 *   4. Each such file existed at T2. The writer unlinks a generation only
 *      once the oldest reader's snapshot is at or past the transaction that
 *      replaced or dropped it (mt_engine_bury); that transaction is after
 *      T2 >= T1, and T1 is still open, so the file is still there. It is
 *      hard-linked (or copied) into the snapshot; then T1 ends.
 *
 * Step 4's reasoning has two holes: a writer that could not allocate a grave
 * record unlinks at once, and a writer that compacted index.mdb (swapping
 * the file and its reader table) no longer sees T1. Then the link finds ENOENT and the attempt is
 * thrown away and taken again from step 1 (bounded retries).
 *
 * The head log lives in index.mdb (the `head` database), so points
 * acknowledged but not yet sealed are in the copy by construction: a
 * point's commit is either in T2 (in the copy) or after it.
 */
#include "mt_backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_endian.h"
#include "mt_engine.h"
#include "mt_engine_int.h"
#include "mt_fault.h"
#include "mt_fs.h"
#include "mt_hash.h"
#include "mt_kv.h"

#define FORMAT_MAX       MT_FORMAT_MAX /* the newest index.mdb format this build reads */
#define DEFAULT_RETRIES  3             /* fresh snapshots after a vanished file */
#define MANIFEST_VERSION 1             /* the first line of a MANIFEST: "metron-backup 1" */
#define PATH_CAP         4200          /* a directory's path plus an hour file's relative path */
#define COPY_CHUNK       (1u << 20)    /* bytes per read/write when copy_file_range cannot */

/* One hour file of a snapshot (a manifest line, or the copy's `hours` record). */
typedef struct bk_hour {
    int64_t hour;
    uint32_t gen;
    uint64_t bytes;
    uint64_t hash;
    char rel[64]; /* "blocks/YYYY/MM/DD/HH.G.blk" */
} bk_hour;

typedef struct bk_manifest {
    uint32_t format;
    uint64_t index_bytes, index_hash;
    bk_hour *h;
    size_t n, cap;
} bk_manifest;

static void why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static int push_hour(bk_manifest *m, const bk_hour *h)
{
    if (mt_grow(&m->h, &m->cap, m->n + 1, sizeof *m->h, 64)) return -ENOMEM;
    m->h[m->n++] = *h;
    return MT_OK;
}

static void hour_rel(bk_hour *h)
{
    char p[PATH_CAP];
    mt_hf_path(p, sizeof p, "", h->hour, h->gen); /* "/blocks/..." */
    snprintf(h->rel, sizeof h->rel, "%s", p + 1);
}

/* XXH3-64 of the file at path, which must be bytes long (else MT_ECORRUPT). */
static int hash_file(const char *path, uint64_t bytes, uint64_t *hash)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : MT_OK;
    if (!rc && (uint64_t)st.st_size != bytes) rc = MT_ECORRUPT;
    if (!rc && bytes == 0) *hash = mt_hash64("", 0);
    if (!rc && bytes) {
        void *p = mmap(NULL, (size_t)bytes, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = -errno;
        } else {
            *hash = mt_hash64(p, (size_t)bytes);
            munmap(p, (size_t)bytes);
        }
    }
    close(fd);
    return rc;
}

/* Copy src to dst (created, must not exist), fsync it. MT_OK or -errno (dst removed). */
static int copy_file(const char *src, const char *dst, uint64_t *bytes)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = -errno;
        close(in);
        return e;
    }
    int rc = MT_OK;
    uint64_t done = 0;
    char *buf = NULL;
    for (;;) {
        ssize_t n = buf ? -1 : copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
        if (n < 0 && !buf && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
            buf = malloc(COPY_CHUNK); /* an older kernel, or across file systems it refuses */
            if (!buf) {
                rc = -ENOMEM;
                break;
            }
        }
        if (buf) {
            n = read(in, buf, COPY_CHUNK);
            for (ssize_t w = 0, k; n > 0 && w < n; w += k)
                if ((k = write(out, buf + w, (size_t)(n - w))) < 0) {
                    n = -1;
                    break;
                }
        }
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0) break;
        done += (uint64_t)n;
    }
    free(buf);
    if (!rc && fsync(out)) rc = -errno;
    if (close(out) && !rc) rc = -errno;
    close(in);
    if (rc)
        unlink(dst);
    else if (bytes)
        *bytes = done;
    return rc;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    remove(p);
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p of path's directory. */
static int make_parent(const char *path)
{
    char d[PATH_CAP];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash) return MT_OK;
    *slash = '\0';
    return mt_fs_make_dirs(d);
}

/* ---- manifest -------------------------------------------------------------------------- */

static int manifest_write(const char *snap, const bk_manifest *m)
{
    size_t cap = 256 + m->n * 160, len = 0;
    char *s = malloc(cap);
    if (!s) return -ENOMEM;
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    len += (size_t)snprintf(s + len, cap - len,
                            "metron-backup %d\ncreated %s\nformat %u\nindex index.mdb %" PRIu64
                            " %016" PRIx64 "\n",
                            MANIFEST_VERSION, created, m->format, m->index_bytes, m->index_hash);
    for (size_t i = 0; i < m->n; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "hour %" PRId64 " %u %" PRIu64 " %016" PRIx64 " %s\n", m->h[i].hour,
                                m->h[i].gen, m->h[i].bytes, m->h[i].hash, m->h[i].rel);
    len +=
        (size_t)snprintf(s + len, cap - len, "end %zu %016" PRIx64 "\n", m->n, mt_hash64(s, len));
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", snap, MT_BACKUP_MANIFEST);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : MT_OK;
    for (size_t w = 0; !rc && w < len;) {
        ssize_t k = write(fd, s + w, len - w);
        if (k < 0)
            rc = -errno;
        else
            w += (size_t)k;
    }
    if (!rc && fsync(fd)) rc = -errno;
    if (fd >= 0 && close(fd) && !rc) rc = -errno;
    free(s);
    return rc;
}

/* Read and check snap's MANIFEST into *m. MT_OK, -ENOENT, MT_EFORMAT, MT_ECORRUPT, -errno. */
static int manifest_read(const char *snap, bk_manifest *m, char *why, size_t why_cap)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", snap, MT_BACKUP_MANIFEST);
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = -errno;
        why_set(why, why_cap, "%s: %s", path, strerror(-e));
        return e;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char buf[65536];
    size_t n;
    int rc = MT_OK;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *t = realloc(text, cap);
            if (!t) {
                rc = -ENOMEM;
                break;
            }
            text = t;
        }
        memcpy(text + len, buf, n);
        len += n;
    }
    if (!rc && ferror(f)) rc = -EIO;
    fclose(f);
    if (!rc && !text) rc = MT_ECORRUPT;
    if (rc) {
        free(text);
        why_set(why, why_cap, "%s: %s", path, rc == MT_ECORRUPT ? "empty" : mt_strerror(rc));
        return rc;
    }
    text[len] = '\0';
    int version = 0;
    if (sscanf(text, "metron-backup %d\n", &version) != 1) {
        rc = MT_ECORRUPT;
        why_set(why, why_cap, "%s: not a Metron backup manifest (line 1)", path);
    } else if (version != MANIFEST_VERSION) {
        rc = MT_EFORMAT;
        why_set(why, why_cap, "%s: manifest version %d; this build reads version %d", path, version,
                MANIFEST_VERSION);
    }
    /* the end line checks every byte before it: a torn or edited manifest is refused */
    char *end = NULL;
    for (char *p = text; !rc && (p = strstr(p, "\nend ")); p++) end = p + 1;
    size_t count = 0;
    uint64_t sum = 0;
    if (!rc && (!end || sscanf(end, "end %zu %" SCNx64, &count, &sum) != 2 ||
                mt_hash64(text, (size_t)(end - text)) != sum)) {
        rc = MT_ECORRUPT;
        why_set(why, why_cap, "%s: checksum mismatch or no end line (torn or edited)", path);
    }
    size_t lineno = 0;
    bool have_index = false;
    for (char *line = text, *nl; !rc && line < end; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        lineno++;
        bk_hour h = {0};
        char rel[128];
        unsigned fmt;
        if (!strncmp(line, "hour ", 5)) {
            if (sscanf(line, "hour %" SCNd64 " %u %" SCNu64 " %" SCNx64 " %127s", &h.hour, &h.gen,
                       &h.bytes, &h.hash, rel) != 5 ||
                h.hour < INT32_MIN || h.hour > INT32_MAX) {
                rc = MT_ECORRUPT;
            } else {
                hour_rel(&h); /* the path is derived, never taken from the file */
                if (strcmp(rel, h.rel) || (m->n && m->h[m->n - 1].hour >= h.hour))
                    rc = MT_ECORRUPT;
                else
                    rc = push_hour(m, &h);
            }
        } else if (sscanf(line, "format %u", &fmt) == 1) {
            m->format = fmt;
        } else if (!strncmp(line, "index ", 6)) {
            have_index = sscanf(line, "index index.mdb %" SCNu64 " %" SCNx64, &m->index_bytes,
                                &m->index_hash) == 2;
            if (!have_index) rc = MT_ECORRUPT;
        }
        if (rc == MT_ECORRUPT) why_set(why, why_cap, "%s: line %zu: malformed", path, lineno);
    }
    if (!rc && (!have_index || count != m->n)) {
        rc = MT_ECORRUPT;
        why_set(why, why_cap, "%s: %s", path,
                have_index ? "the end line's count differs from the hour lines" : "no index line");
    }
    free(text);
    return rc;
}

/* A snapshot's directory from a snapshot or a DEST (its LATEST) into out. MT_OK or -ENOENT. */
static int resolve_snapshot(const char *from, char *out, size_t cap)
{
    char p[PATH_CAP];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", from, MT_BACKUP_MANIFEST);
    if (!stat(p, &st)) {
        snprintf(out, cap, "%s", from);
        return MT_OK;
    }
    snprintf(p, sizeof p, "%s/%s", from, MT_BACKUP_LATEST);
    FILE *f = fopen(p, "re");
    if (!f) return -ENOENT;
    char name[64] = "";
    bool ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    if (!ok || !name[0] || strchr(name, '/') || name[0] == '.') return -ENOENT;
    snprintf(out, cap, "%s/%s", from, name);
    return MT_OK;
}

/* ---- backup ---------------------------------------------------------------------------- */

/* Open the copy at snap, check every record, read its hours and format into *m. */
static int read_copy(const char *snap, bk_manifest *m, uint64_t *head_records, char *why,
                     size_t why_cap)
{
    mt_kv_options ko = {.read_only = true, .why = why, .why_cap = why_cap};
    mt_kv *kv = NULL;
    int rc = mt_kv_open(snap, &ko, &kv);
    mt_kv_txn *t = NULL;
    if (!rc) { /* the version as stored: format 1 has no checksums (mt_engine.c, open_format) */
        mt_kv_set_checksums(kv, false);
        rc = mt_kv_begin(kv, false, &t);
        const void *v;
        size_t vl;
        uint64_t version = 0;
        if (!rc && !mt_kv_get(t, MT_DB_META, "version", 7, &v, &vl) && vl >= 8)
            memcpy(&version, v, 8);
        mt_kv_abort(t);
        t = NULL;
        if (!rc && (version < 1 || version > FORMAT_MAX)) {
            rc = MT_EFORMAT;
            why_set(why, why_cap, "index.mdb is format %" PRIu64 "; this build reads 1 to %d",
                    version, FORMAT_MAX);
        }
        m->format = (uint32_t)version;
        if (version != 1) mt_kv_set_checksums(kv, true);
    }
    if (!rc) rc = mt_kv_begin(kv, false, &t);
    for (int i = 0; !rc && m->format != 1 && i < MT_DB__COUNT; i++)
        rc = mt_kv_verify(t, (mt_kv_db)i, NULL);
    mt_kv_cursor *c = NULL;
    if (!rc) rc = mt_kv_cursor_open(t, MT_DB_HOURS, &c);
    const void *k, *v;
    size_t kl, vl;
    int crc = rc ? rc : mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
    for (; !rc && !crc; crc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        bk_hour h = {0};
        uint64_t sealed;
        if (kl != 4 || mt_engine_hour_parse(v, vl, &h.gen, &h.bytes, &sealed)) {
            rc = MT_ECORRUPT;
            break;
        }
        const uint8_t *kb = k;
        h.hour = (int64_t)mt_load_be32(kb) - 0x80000000LL;
        hour_rel(&h);
        rc = push_hour(m, &h);
    }
    if (!rc && crc != MT_ENOTFOUND) rc = crc;
    mt_kv_cursor_close(c);
    size_t nhead = 0;
    if (!rc) rc = mt_kv_count(t, MT_DB_HEAD, &nhead);
    *head_records = nhead;
    if (rc == MT_ECORRUPT && kv && why && !why[0]) mt_kv_corruption(kv, why, why_cap);
    mt_kv_abort(t);
    mt_kv_close(kv);
    char lock[PATH_CAP];
    snprintf(lock, sizeof lock, "%s/index.mdb-lock", snap);
    unlink(lock); /* the reader table of the copy: not data */
    return rc;
}

static const bk_hour *prev_find(const bk_manifest *p, const bk_hour *h)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->h[mid].hour < h->hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n && p->h[lo].hour == h->hour && p->h[lo].gen == h->gen &&
        p->h[lo].bytes == h->bytes)
        return &p->h[lo];
    return NULL;
}

/*
 * Place hour h into snap: from the previous snapshot when it holds the same generation,
 * else from dir. -ENOENT only when dir's file vanished (the caller retries).
 */
static int place_hour(const char *dir, const char *snap, const char *prev_dir,
                      const bk_manifest *prev, bk_hour *h, const mt_backup_options *opt,
                      mt_backup_stats *st, char *why, size_t why_cap)
{
    char src[PATH_CAP], dst[PATH_CAP];
    snprintf(dst, sizeof dst, "%s/%s", snap, h->rel);
    int rc = make_parent(dst);
    if (rc) {
        why_set(why, why_cap, "%s: %s", dst, mt_strerror(rc));
        return rc;
    }
    const bk_hour *p = prev ? prev_find(prev, h) : NULL;
    if (p) {
        snprintf(src, sizeof src, "%s/%s", prev_dir, h->rel);
        struct stat ps;
        if (!stat(src, &ps) && (uint64_t)ps.st_size == h->bytes &&
            (!link(src, dst) || (errno == EXDEV && !copy_file(src, dst, NULL)))) {
            h->hash = p->hash; /* checked when it was taken; restore checks it again */
            st->hours_reused++;
            st->bytes_reused += h->bytes;
            return MT_OK;
        } /* gone from the previous snapshot (pruned): from the data dir, as a new hour */
    }
    snprintf(src, sizeof src, "%s/%s", dir, h->rel);
    if (mt_fault_hit("backup.vanish")) { /* as if the writer had unlinked it already */
        why_set(why, why_cap, "%s: %s", src, mt_strerror(-ENOENT));
        return -ENOENT;
    }
    bool linked = false;
    if (!opt->copy) {
        if (!link(src, dst))
            linked = true;
        else if (errno != EXDEV && errno != EPERM && errno != EMLINK)
            rc = -errno;
    }
    if (!rc && !linked) rc = copy_file(src, dst, NULL);
    if (rc) {
        why_set(why, why_cap, "%s: %s", rc == -ENOENT ? src : dst, mt_strerror(rc));
        return rc;
    }
    rc = hash_file(dst, h->bytes, &h->hash);
    if (rc) {
        why_set(why, why_cap, "%s: %s", src,
                rc == MT_ECORRUPT ? "its size differs from what index.mdb records"
                                  : mt_strerror(rc));
        return rc;
    }
    if (linked) {
        st->hours_linked++;
        st->bytes_linked += h->bytes;
    } else {
        st->hours_copied++;
        st->bytes_copied += h->bytes;
    }
    return MT_OK;
}

/* One attempt: snapshot dir into the empty directory snap. */
static int backup_once(const char *dir, const char *snap, const char *prev_dir,
                       const bk_manifest *prev, const mt_backup_options *opt, mt_backup_stats *st,
                       char *why, size_t why_cap)
{
    bk_manifest m = {0};
    mt_kv_options ko = {.read_only = true, .why = why, .why_cap = why_cap};
    mt_kv *kv = NULL;
    mt_kv_txn *pin = NULL;
    char path[PATH_CAP];
    int rc = mt_kv_open(dir, &ko, &kv);
    if (rc && why && !why[0]) why_set(why, why_cap, "%s/index.mdb: %s", dir, mt_strerror(rc));
    if (!rc) rc = mt_kv_begin(kv, false, &pin); /* T1: keeps every generation from here on */
    if (!rc) {
        snprintf(path, sizeof path, "%s/index.mdb", snap);
        rc = mt_kv_copy(kv, path); /* T2 >= T1 */
        if (rc) why_set(why, why_cap, "copying %s/index.mdb to %s: %s", dir, path, mt_strerror(rc));
    }
    if (!rc) rc = read_copy(snap, &m, &st->head_records, why, why_cap);
    if (!rc) {
        struct stat s;
        rc = stat(path, &s) ? -errno : MT_OK;
        if (!rc) m.index_bytes = (uint64_t)s.st_size;
        if (!rc) rc = hash_file(path, m.index_bytes, &m.index_hash);
    }
    char synced[PATH_CAP] = "";
    for (size_t i = 0; !rc && i < m.n; i++) {
        rc = place_hour(dir, snap, prev_dir, prev, &m.h[i], opt, st, why, why_cap);
        /* a day's hours share a directory: its entries made durable once, when it is done */
        snprintf(path, sizeof path, "%s/%s", snap, m.h[i].rel);
        *strrchr(path, '/') = '\0';
        if (!rc && strcmp(path, synced)) {
            if (synced[0]) rc = mt_fs_sync_dir(synced);
            snprintf(synced, sizeof synced, "%s", path);
        }
    }
    if (!rc && synced[0]) rc = mt_fs_sync_dir(synced);
    mt_kv_abort(pin); /* every named file is in place: the writer may bury them */
    mt_kv_close(kv);
    st->format = m.format;
    st->index_bytes = m.index_bytes;
    st->hours = m.n;
    if (!rc) rc = manifest_write(snap, &m);
    if (!rc) rc = mt_fs_sync_dir(snap);
    if (rc && why && !why[0]) why_set(why, why_cap, "%s: %s", snap, mt_strerror(rc));
    free(m.h);
    return rc;
}

static int write_latest(const char *dest, const char *name)
{
    char tmp[PATH_CAP], path[PATH_CAP];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dest, MT_BACKUP_LATEST);
    snprintf(path, sizeof path, "%s/%s", dest, MT_BACKUP_LATEST);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    size_t len = strlen(name);
    int rc = write(fd, name, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? MT_OK : -EIO;
    if (!rc && fsync(fd)) rc = -errno;
    if (close(fd) && !rc) rc = -errno;
    if (!rc && rename(tmp, path)) rc = -errno;
    if (!rc) rc = mt_fs_sync_dir(dest);
    if (rc) unlink(tmp);
    return rc;
}

int mt_engine_backup(const char *dir, const char *dest, const mt_backup_options *opt,
                     mt_backup_stats *st)
{
    static const mt_backup_options none = {0};
    mt_backup_stats local;
    if (!opt) opt = &none;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    char *why = opt->why;
    size_t why_cap = opt->why_cap;
    if (why && why_cap) why[0] = '\0';
    if (!dir || !dest) return MT_EINVAL;
    int rc = mt_fs_make_dirs(dest);
    if (rc) {
        why_set(why, why_cap, "%s: %s", dest, mt_strerror(rc));
        return rc;
    }

    /* the previous snapshot whose unchanged hours are linked */
    bk_manifest prev = {0};
    char prev_dir[4096] = "";
    if (!opt->full) {
        const char *from = opt->incremental_from ? opt->incremental_from : dest;
        rc = resolve_snapshot(from, prev_dir, sizeof prev_dir);
        if (rc == -ENOENT && !opt->incremental_from) {
            rc = MT_OK; /* a first backup into dest */
            prev_dir[0] = '\0';
        } else if (rc) {
            why_set(why, why_cap, "%s: no backup there (no %s, no %s)", from, MT_BACKUP_MANIFEST,
                    MT_BACKUP_LATEST);
        } else {
            rc = manifest_read(prev_dir, &prev, why, why_cap);
            if (rc == -ENOENT && !opt->incremental_from) { /* LATEST's snapshot was removed */
                rc = MT_OK;
                prev_dir[0] = '\0';
                if (why && why_cap) why[0] = '\0';
            }
        }
        if (rc) {
            free(prev.h);
            return rc;
        }
    }

    /* the snapshot's name: its UTC second, with a suffix if that second has one already */
    char stamp[20], final[PATH_CAP], part[PATH_CAP];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    struct stat s;
    rc = -EEXIST;
    for (int k = 1; k < 100 && rc == -EEXIST; k++) {
        if (k == 1)
            snprintf(st->snapshot, sizeof st->snapshot, "%s", stamp);
        else
            snprintf(st->snapshot, sizeof st->snapshot, "%s-%d", stamp, k);
        snprintf(final, sizeof final, "%s/%s", dest, st->snapshot);
        if (stat(final, &s)) rc = MT_OK;
    }
    if (rc) why_set(why, why_cap, "%s: a snapshot of this second exists", final);
    snprintf(st->previous, sizeof st->previous, "%s", prev_dir);
    /* built under a name LATEST never gives, renamed once whole */
    snprintf(part, sizeof part, "%s/.%s.partial", dest, st->snapshot);
    unsigned retries = opt->retries ? opt->retries : DEFAULT_RETRIES;
    for (unsigned attempt = 0; !rc; attempt++) {
        rm_tree(part);
        if (mkdir(part, 0755)) {
            rc = -errno;
            why_set(why, why_cap, "%s: %s", part, strerror(errno));
            break;
        }
        mt_backup_stats keep = *st;
        rc = backup_once(dir, part, prev_dir[0] ? prev_dir : NULL, prev_dir[0] ? &prev : NULL, opt,
                         st, why, why_cap);
        if (rc != -ENOENT || !st->index_bytes) break; /* -ENOENT before the copy: no index */
        /* a file the snapshot named vanished before it was linked: a fresh snapshot */
        if (attempt == retries) {
            rc = -EAGAIN;
            break;
        }
        *st = keep;
        st->retries++;
        rc = MT_OK;
        if (why && why_cap) why[0] = '\0';
    }
    free(prev.h);
    if (!rc && rename(part, final)) {
        rc = -errno;
        why_set(why, why_cap, "renaming %s to %s: %s", part, final, strerror(errno));
    }
    if (!rc) rc = mt_fs_sync_dir(dest);
    if (!rc) {
        rc = write_latest(dest, st->snapshot);
        if (rc) why_set(why, why_cap, "%s/%s: %s", dest, MT_BACKUP_LATEST, mt_strerror(rc));
    }
    if (rc) rm_tree(part);
    return rc;
}

/* ---- restore --------------------------------------------------------------------------- */

/* Copy snap/rel to dir/rel and check the copy's size and checksum. */
static int restore_file(const char *snap, const char *dir, const char *rel, const char *as,
                        uint64_t bytes, uint64_t hash, char *why, size_t why_cap)
{
    char src[PATH_CAP], dst[PATH_CAP];
    snprintf(src, sizeof src, "%s/%s", snap, rel);
    snprintf(dst, sizeof dst, "%s/%s", dir, as);
    int rc = make_parent(dst);
    if (!rc) rc = copy_file(src, dst, NULL);
    if (rc) {
        why_set(why, why_cap, "%s: %s", rc == -ENOENT ? src : dst, mt_strerror(rc));
        return rc;
    }
    uint64_t h = 0;
    rc = hash_file(dst, bytes, &h);
    if (!rc && h != hash) rc = MT_ECORRUPT;
    if (rc)
        why_set(why, why_cap, "%s: %s", src,
                rc == MT_ECORRUPT ? "its size or checksum differs from the manifest's"
                                  : mt_strerror(rc));
    return rc;
}

static void count_damage(void *ud, const char *line)
{
    (void)line;
    ++*(size_t *)ud;
}

int mt_engine_restore(const char *from, const char *dir, char *why, size_t why_cap,
                      mt_restore_stats *st)
{
    mt_restore_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    if (why && why_cap) why[0] = '\0';
    if (!from || !dir) return MT_EINVAL;
    int rc = resolve_snapshot(from, st->snapshot, sizeof st->snapshot);
    if (rc) {
        why_set(why, why_cap, "%s: no backup there (no %s, no %s)", from, MT_BACKUP_MANIFEST,
                MT_BACKUP_LATEST);
        return rc;
    }
    /* the target: absent or empty (never merged into a directory that holds anything) */
    bool made = false;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while (!rc && (de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) rc = -ENOTEMPTY;
        closedir(d);
        if (rc) {
            why_set(why, why_cap, "%s is not empty: restore only into a new or empty directory",
                    dir);
            return rc;
        }
    } else if (errno == ENOENT) {
        rc = mt_fs_make_dirs(dir);
        made = !rc;
    } else {
        rc = -errno;
    }
    if (rc) {
        why_set(why, why_cap, "%s: %s", dir, mt_strerror(rc));
        return rc;
    }
    bk_manifest m = {0};
    rc = manifest_read(st->snapshot, &m, why, why_cap);
    char synced[PATH_CAP] = "", path[PATH_CAP];
    for (size_t i = 0; !rc && i < m.n; i++) {
        rc = restore_file(st->snapshot, dir, m.h[i].rel, m.h[i].rel, m.h[i].bytes, m.h[i].hash, why,
                          why_cap);
        snprintf(path, sizeof path, "%s/%s", dir, m.h[i].rel);
        *strrchr(path, '/') = '\0';
        if (!rc && strcmp(path, synced)) {
            if (synced[0]) rc = mt_fs_sync_dir(synced);
            snprintf(synced, sizeof synced, "%s", path);
        }
        st->bytes += m.h[i].bytes;
    }
    if (!rc && synced[0]) rc = mt_fs_sync_dir(synced);
    /* index.mdb last: a directory with hour files and no index is refused by metrond
       (MT_ENOINDEX), so an interrupted restore can never be taken for an empty store */
    if (!rc)
        rc = restore_file(st->snapshot, dir, "index.mdb", "index.mdb.restoring", m.index_bytes,
                          m.index_hash, why, why_cap);
    if (!rc) {
        char tmp[PATH_CAP];
        snprintf(tmp, sizeof tmp, "%s/index.mdb.restoring", dir);
        snprintf(path, sizeof path, "%s/index.mdb", dir);
        rc = rename(tmp, path) ? -errno : mt_fs_sync_dir(dir);
        st->bytes += m.index_bytes;
    }
    st->hours = m.n;
    if (!rc) { /* as metrond's reader sees it: exactly the manifest's hours, no damage */
        mt_engine_options eo = mt_engine_options_default();
        eo.dir = dir;
        eo.read_only = true;
        eo.why = why;
        eo.why_cap = why_cap;
        mt_engine *e = NULL;
        rc = mt_engine_open(&eo, &e);
        size_t damage = 0;
        if (!rc) {
            mt_engine_stats es;
            mt_engine_stats_get(e, &es);
            st->sealed_hours = es.sealed_hours;
            st->series = es.series;
            st->head_points = es.head_points;
            mt_engine_damage(e, count_damage, &damage);
            if (damage || es.sealed_hours != m.n) {
                rc = MT_ECORRUPT;
                why_set(why, why_cap,
                        "%s: the restored index names %" PRIu64
                        " hours (the manifest %zu) and reports %zu damaged",
                        dir, es.sealed_hours, m.n, damage);
            }
        } else if (why && !why[0]) {
            why_set(why, why_cap, "%s: the restored directory does not open: %s", dir,
                    mt_strerror(rc));
        }
        mt_engine_close(e);
        snprintf(path, sizeof path, "%s/index.mdb-lock", dir);
        unlink(path); /* the reader table of that check: not data */
    }
    free(m.h);
    if (rc) { /* nothing half-restored left behind */
        if (made) {
            rm_tree(dir);
        } else {
            DIR *dd = opendir(dir);
            struct dirent *de;
            while (dd && (de = readdir(dd))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                rm_tree(path);
            }
            if (dd) closedir(dd);
        }
    }
    return rc;
}
