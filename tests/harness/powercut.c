/*
 * powercut.c — an LD_PRELOAD shim that keeps, beside a data directory, what
 * a power cut would leave of it, and cuts the power on demand.
 *
 * Environment (the shim does nothing without POWERCUT_DIR):
 *   POWERCUT_DIR    the data directory (absolute, existing); only files and
 *                   directories under it are followed.
 *   POWERCUT_STORE  a side directory outside it (created): the durable bytes
 *                   of every file, one file per file identity (fid).
 *   POWERCUT_OUT    where the post-power-loss directory is written at the cut
 *                   (must not exist); then POWERCUT_OUT.done is created.
 *   POWERCUT_MODEL  "ordered" (default) or "strict".
 *   POWERCUT_AFTER  cut just before the N-th followed call (1-based), or
 *   POWERCUT_AT_MS  cut N milliseconds after the first followed call.
 * At the cut the shim writes POWERCUT_OUT and leaves with _exit(42) at once:
 * no atexit handler, no flush, no further system call of the process runs.
 *
 * The model. The directory as found at the first followed call is durable
 * (the harness starts every run from the output of the previous cut, or
 * from a fresh directory). From then on:
 *   - File contents: a file's bytes and size are durable as of its last
 *     successful fsync or fdatasync (on any descriptor of it); a write
 *     through a descriptor opened with O_DSYNC or O_SYNC is durable for the
 *     bytes it wrote when it returns. Nothing else (close, ftruncate,
 *     rename, msync of a read-only map) makes bytes durable. A file created
 *     and never synced is empty after the cut.
 *   - ordered: every namespace operation (create, mkdir, rename, unlink,
 *     rmdir) is durable, in order, when it returns: after the cut the
 *     namespace is the real one at the cut (ext4 data=ordered without its
 *     rename heuristics: data still only up to the last fsync).
 *   - strict (POSIX): a directory's entries are durable as of its last
 *     successful fsync; a directory never fsynced keeps its entries as they
 *     were at the start (none, if it was created since). A file or a
 *     directory reachable only through entries that were never made durable
 *     is gone; a file renamed between two directories may appear in both.
 * File identity is the inode, renewed at each creation (O_CREAT of a name
 * that did not exist, mkdir), so an inode number reused after an unlink is a
 * new file. Every followed call takes one lock around the real call and the
 * bookkeeping, so a cut never sees half of either.
 *
 * Followed calls: open/open64/openat/openat64/creat (creations), write,
 * pwrite, pwrite64, writev, pwritev (O_DSYNC writes), fsync, fdatasync,
 * rename, renameat, renameat2, unlink, unlinkat, mkdir, mkdirat, rmdir,
 * ftruncate (counted only). Library calls that reach the kernel without
 * passing through these symbols (stdio inside glibc) are not seen, nor are
 * stores through a writable shared mapping (LMDB's MDB_WRITEMAP, msync);
 * Metron's engine and LMDB (without MDB_WRITEMAP) use these calls directly.
 * LMDB writes pages with pwrite/writev and fdatasync, and its meta page
 * through a second descriptor opened O_DSYNC: both are followed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PC_EXIT 42

typedef struct pc_entry {
    char *name;
    uint32_t fid;
} pc_entry;

typedef struct pc_file {
    ino_t ino;
    bool is_dir, live; /* live: the inode currently maps to this fid */
    pc_entry *ents;    /* durable entries (strict model), directories only */
    size_t nents;
} pc_file;

static struct {
    bool on, strict;
    char dir[PATH_MAX], store[PATH_MAX], out[PATH_MAX];
    uint64_t calls, cut_after;
    long cut_ms;
    pc_file *files; /* indexed by fid */
    size_t nfiles, cap;
} pc;

static pthread_mutex_t pc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pc_once = PTHREAD_ONCE_INIT;

/* ---- the real functions ---- */

static int (*r_open)(const char *, int, ...);
static int (*r_openat)(int, const char *, int, ...);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_rename)(const char *, const char *);
static int (*r_renameat)(int, const char *, int, const char *);
static int (*r_renameat2)(int, const char *, int, const char *, unsigned);
static int (*r_unlink)(const char *);
static int (*r_unlinkat)(int, const char *, int);
static int (*r_mkdir)(const char *, mode_t);
static int (*r_mkdirat)(int, const char *, mode_t);
static int (*r_rmdir)(const char *);
static int (*r_ftruncate)(int, off_t);

static void *sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "powercut: no next symbol '%s'\n", name);
        _exit(70);
    }
    return p;
}

static void resolve(void)
{
    if (r_ftruncate) return;
    r_open = sym("open");
    r_openat = sym("openat");
    r_write = sym("write");
    r_pwrite = sym("pwrite");
    r_writev = sym("writev");
    r_pwritev = sym("pwritev");
    r_fsync = sym("fsync");
    r_fdatasync = sym("fdatasync");
    r_rename = sym("rename");
    r_renameat = sym("renameat");
    r_renameat2 = sym("renameat2");
    r_unlink = sym("unlink");
    r_unlinkat = sym("unlinkat");
    r_mkdir = sym("mkdir");
    r_mkdirat = sym("mkdirat");
    r_rmdir = sym("rmdir");
    r_ftruncate = sym("ftruncate");
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "powercut: %s %s: %s\n", what, path, strerror(errno));
    _exit(71);
}

/* ---- file identities ---- */

static uint32_t fid_new(ino_t ino, bool is_dir)
{
    for (size_t i = 0; i < pc.nfiles; i++)
        if (pc.files[i].live && pc.files[i].ino == ino) pc.files[i].live = false;
    if (pc.nfiles == pc.cap) {
        pc.cap = pc.cap ? pc.cap * 2 : 256;
        pc.files = realloc(pc.files, pc.cap * sizeof *pc.files);
        if (!pc.files) die("out of memory for", "file table");
    }
    pc.files[pc.nfiles] = (pc_file){.ino = ino, .is_dir = is_dir, .live = true};
    return (uint32_t)pc.nfiles++;
}

static uint32_t fid_of(ino_t ino, bool is_dir)
{
    for (size_t i = pc.nfiles; i-- > 0;)
        if (pc.files[i].live && pc.files[i].ino == ino) return (uint32_t)i;
    return fid_new(ino, is_dir); /* made by something the shim did not see: no durable bytes */
}

static void store_path(uint32_t fid, char *buf)
{
    snprintf(buf, PATH_MAX, "%s/%u", pc.store, fid);
}

/* Copies the whole of fd (any access mode) to the file at path. */
static void copy_fd(int fd, const char *path)
{
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int in = r_open(self, O_RDONLY | O_CLOEXEC);
    if (in < 0) die("cannot reopen", self);
    int out = r_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) die("cannot write", path);
    static char buf[1 << 20];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("cannot read", self);
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = r_write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) die("cannot write", path);
            off += w;
        }
    }
    close(in);
    close(out);
}

static void copy_file(const char *from, const char *to)
{
    int fd = r_open(from, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) die("cannot read", from);
        fd = r_open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); /* never synced */
        if (fd < 0) die("cannot write", to);
        close(fd);
        return;
    }
    copy_fd(fd, to);
    close(fd);
}

/* The entries of the directory at path, each given the identity of its inode now. */
static void snapshot_dir(uint32_t fid, const char *path)
{
    pc_file *d = &pc.files[fid];
    for (size_t i = 0; i < d->nents; i++) free(d->ents[i].name);
    free(d->ents);
    d->ents = NULL;
    d->nents = 0;
    DIR *dir = opendir(path);
    if (!dir) die("cannot list", path);
    size_t cap = 0;
    pc_entry *ents = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            ents = realloc(ents, cap * sizeof *ents);
            if (!ents) die("out of memory listing", path);
        }
        ents[n].name = strdup(de->d_name);
        ents[n].fid = fid_of(st.st_ino, S_ISDIR(st.st_mode));
        n++;
    }
    closedir(dir);
    pc.files[fid].ents = ents; /* fid_of may have moved pc.files */
    pc.files[fid].nents = n;
}

/* The starting state: every file's bytes and every directory's entries are durable. */
static void adopt_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st)) die("cannot stat", path);
    uint32_t fid = fid_new(st.st_ino, S_ISDIR(st.st_mode));
    char sp[PATH_MAX];
    if (!S_ISDIR(st.st_mode)) {
        store_path(fid, sp);
        copy_file(path, sp);
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) die("cannot list", path);
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        adopt_tree(child);
    }
    closedir(dir);
    snapshot_dir(fid, path);
}

/* ---- the cut ---- */

static void out_file(uint32_t fid, const char *to)
{
    char sp[PATH_MAX];
    store_path(fid, sp);
    copy_file(sp, to);
}

/* strict: what the durable entries reach, from the directory fid. */
static void out_durable(uint32_t fid, const char *to, int depth)
{
    if (r_mkdir(to, 0755) && errno != EEXIST) die("cannot create", to);
    if (depth > 64) return;
    pc_file *d = &pc.files[fid];
    for (size_t i = 0; i < d->nents; i++) {
        char child[PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", to, d->ents[i].name);
        uint32_t c = d->ents[i].fid;
        if (pc.files[c].is_dir)
            out_durable(c, child, depth + 1);
        else
            out_file(c, child);
    }
}

/* ordered: the namespace as it is now, each file with its durable bytes. */
static void out_ordered(const char *from, const char *to)
{
    if (r_mkdir(to, 0755) && errno != EEXIST) die("cannot create", to);
    DIR *dir = opendir(from);
    if (!dir) die("cannot list", from);
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char f[PATH_MAX], t[PATH_MAX];
        snprintf(f, sizeof f, "%s/%s", from, de->d_name);
        snprintf(t, sizeof t, "%s/%s", to, de->d_name);
        struct stat st;
        if (lstat(f, &st)) continue;
        if (S_ISDIR(st.st_mode))
            out_ordered(f, t);
        else if (S_ISREG(st.st_mode))
            out_file(fid_of(st.st_ino, false), t);
    }
    closedir(dir);
}

/* Called with pc_lock held; never returns. */
static void cut(const char *why)
{
    if (pc.strict) {
        struct stat st;
        if (lstat(pc.dir, &st)) die("cannot stat", pc.dir);
        out_durable(fid_of(st.st_ino, true), pc.out, 0);
    } else {
        out_ordered(pc.dir, pc.out);
    }
    char done[PATH_MAX + 8];
    snprintf(done, sizeof done, "%s.done", pc.out);
    int fd = r_open(done, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        char line[128];
        int n =
            snprintf(line, sizeof line, "%s after %llu calls\n", why, (unsigned long long)pc.calls);
        if (r_write(fd, line, (size_t)n) < 0) _exit(72);
        close(fd);
    }
    _exit(PC_EXIT);
}

static void *timer_main(void *arg)
{
    (void)arg;
    struct timespec t = {pc.cut_ms / 1000, (pc.cut_ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) {
    }
    pthread_mutex_lock(&pc_lock);
    cut("timer");
    return NULL;
}

static void init(void)
{
    resolve();
    const char *d = getenv("POWERCUT_DIR"), *s = getenv("POWERCUT_STORE"),
               *o = getenv("POWERCUT_OUT"), *m = getenv("POWERCUT_MODEL");
    if (!d || !*d) return;
    if (!s || !o) {
        fprintf(stderr, "powercut: POWERCUT_DIR needs POWERCUT_STORE and POWERCUT_OUT\n");
        _exit(70);
    }
    if (!realpath(d, pc.dir)) die("cannot resolve", d);
    snprintf(pc.store, sizeof pc.store, "%s", s);
    snprintf(pc.out, sizeof pc.out, "%s", o);
    pc.strict = m && !strcmp(m, "strict");
    const char *a = getenv("POWERCUT_AFTER"), *t = getenv("POWERCUT_AT_MS");
    pc.cut_after = a ? strtoull(a, NULL, 10) : 0;
    pc.cut_ms = t ? strtol(t, NULL, 10) : 0;
    if (r_mkdir(pc.store, 0755) && errno != EEXIST) die("cannot create", pc.store);
    adopt_tree(pc.dir);
    pc.on = true;
    if (pc.cut_ms > 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, timer_main, NULL)) die("cannot start the timer for", pc.dir);
        pthread_detach(th);
    }
}

static bool enabled(void)
{
    pthread_once(&pc_once, init);
    return pc.on;
}

/* ---- which calls are about the data directory ---- */

static bool under(const char *abs)
{
    size_t n = strlen(pc.dir);
    return !strncmp(abs, pc.dir, n) && (abs[n] == '/' || abs[n] == '\0');
}

/* The absolute, lexically normalised form of path (relative to dirfd). */
static bool absolute(int dirfd, const char *path, char *out)
{
    char raw[2 * PATH_MAX];
    if (path[0] == '/') {
        snprintf(raw, sizeof raw, "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) return false;
        } else {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(self, base, sizeof base - 1);
            if (n < 0) return false;
            base[n] = '\0';
        }
        snprintf(raw, sizeof raw, "%s/%s", base, path);
    }
    /* drop "." and empty components, fold ".." */
    size_t o = 0;
    for (char *p = raw; *p;) {
        while (*p == '/') p++;
        if (!*p) break;
        char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 1 && p[0] == '.') {
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else {
            if (o + len + 2 >= PATH_MAX) return false;
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    return true;
}

static bool path_followed(int dirfd, const char *path, char *abs)
{
    char tmp[PATH_MAX];
    if (!abs) abs = tmp;
    return path && enabled() && absolute(dirfd, path, abs) && under(abs);
}

static bool fd_followed(int fd, char *abs)
{
    if (fd < 0 || !enabled()) return false;
    char self[64], tmp[PATH_MAX];
    if (!abs) abs = tmp;
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self, abs, PATH_MAX - 1);
    if (n < 0) return false;
    abs[n] = '\0';
    return under(abs);
}

/* Takes the lock and counts a followed call; cuts instead of the N-th. */
static void enter(void)
{
    pthread_mutex_lock(&pc_lock);
    pc.calls++;
    if (pc.cut_after && pc.calls >= pc.cut_after) cut("count");
}

static void leave(void)
{
    pthread_mutex_unlock(&pc_lock);
}

/* ---- the wrappers ---- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
    resolve();
    char abs[PATH_MAX];
    if (!(flags & O_CREAT) || !path_followed(dirfd, path, abs))
        return dirfd == AT_FDCWD ? r_open(path, flags, mode) : r_openat(dirfd, path, flags, mode);
    enter();
    struct stat st;
    bool existed = lstat(abs, &st) == 0;
    int fd = r_openat(dirfd, path, flags, mode);
    if (fd >= 0 && !existed && fstat(fd, &st) == 0) fid_new(st.st_ino, false);
    int e = errno;
    leave();
    errno = e;
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return do_open(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

/* After a write of n bytes at off through fd: durable now if fd is O_DSYNC. */
static void dsync_range(int fd, off_t off, size_t n)
{
    struct stat st;
    if (n == 0 || fstat(fd, &st)) return;
    char sp[PATH_MAX], self[64];
    store_path(fid_of(st.st_ino, false), sp);
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int in = r_open(self, O_RDONLY | O_CLOEXEC);
    int out = r_open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) die("cannot copy a synchronous write to", sp);
    char *buf = malloc(n);
    if (!buf) die("out of memory for", sp);
    ssize_t got = pread(in, buf, n, off);
    if (got > 0 && r_pwrite(out, buf, (size_t)got, off) != got) die("cannot write", sp);
    free(buf);
    close(in);
    close(out);
}

static bool is_dsync(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_DSYNC);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    resolve();
    if (!fd_followed(fd, NULL)) return r_write(fd, buf, n);
    enter();
    ssize_t r = r_write(fd, buf, n);
    int e = errno;
    if (r > 0 && is_dsync(fd)) dsync_range(fd, lseek(fd, 0, SEEK_CUR) - r, (size_t)r);
    leave();
    errno = e;
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    resolve();
    if (!fd_followed(fd, NULL)) return r_pwrite(fd, buf, n, off);
    enter();
    ssize_t r = r_pwrite(fd, buf, n, off);
    int e = errno;
    if (r > 0 && is_dsync(fd)) dsync_range(fd, off, (size_t)r);
    leave();
    errno = e;
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    resolve();
    if (!fd_followed(fd, NULL)) return r_writev(fd, iov, cnt);
    enter();
    ssize_t r = r_writev(fd, iov, cnt);
    int e = errno;
    if (r > 0 && is_dsync(fd)) dsync_range(fd, lseek(fd, 0, SEEK_CUR) - r, (size_t)r);
    leave();
    errno = e;
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    resolve();
    if (!fd_followed(fd, NULL)) return r_pwritev(fd, iov, cnt, off);
    enter();
    ssize_t r = r_pwritev(fd, iov, cnt, off);
    int e = errno;
    if (r > 0 && is_dsync(fd)) dsync_range(fd, off, (size_t)r);
    leave();
    errno = e;
    return r;
}

/* A successful sync of fd: its bytes (a file) or its entries (a directory) are durable. */
static int do_sync(int fd, int (*real)(int))
{
    resolve();
    char abs[PATH_MAX];
    if (!fd_followed(fd, abs)) return real(fd);
    enter();
    int r = real(fd);
    int e = errno;
    struct stat st;
    if (r == 0 && fstat(fd, &st) == 0) {
        uint32_t fid = fid_of(st.st_ino, S_ISDIR(st.st_mode));
        if (S_ISDIR(st.st_mode)) {
            snapshot_dir(fid, abs);
        } else {
            char sp[PATH_MAX];
            store_path(fid, sp);
            copy_fd(fd, sp);
        }
    }
    leave();
    errno = e;
    return r;
}

int fsync(int fd)
{
    return do_sync(fd, r_fsync ? r_fsync : (resolve(), r_fsync));
}

int fdatasync(int fd)
{
    return do_sync(fd, r_fdatasync ? r_fdatasync : (resolve(), r_fdatasync));
}

int ftruncate(int fd, off_t len)
{
    resolve();
    if (!fd_followed(fd, NULL)) return r_ftruncate(fd, len);
    enter();
    int r = r_ftruncate(fd, len);
    int e = errno;
    leave();
    errno = e;
    return r;
}

/* Namespace calls: counted and serialised; their durability is decided at the cut. */
#define NS_CALL(followed, call)                                                                    \
    do {                                                                                           \
        resolve();                                                                                 \
        if (!(followed)) return call;                                                              \
        enter();                                                                                   \
        int r_ = call;                                                                             \
        int e_ = errno;                                                                            \
        leave();                                                                                   \
        errno = e_;                                                                                \
        return r_;                                                                                 \
    } while (0)

int rename(const char *a, const char *b)
{
    NS_CALL(path_followed(AT_FDCWD, a, NULL) || path_followed(AT_FDCWD, b, NULL), r_rename(a, b));
}

int renameat(int da, const char *a, int db, const char *b)
{
    NS_CALL(path_followed(da, a, NULL) || path_followed(db, b, NULL), r_renameat(da, a, db, b));
}

int renameat2(int da, const char *a, int db, const char *b, unsigned fl)
{
    NS_CALL(path_followed(da, a, NULL) || path_followed(db, b, NULL),
            r_renameat2(da, a, db, b, fl));
}

int unlink(const char *p)
{
    NS_CALL(path_followed(AT_FDCWD, p, NULL), r_unlink(p));
}

int unlinkat(int d, const char *p, int fl)
{
    NS_CALL(path_followed(d, p, NULL), r_unlinkat(d, p, fl));
}

int rmdir(const char *p)
{
    NS_CALL(path_followed(AT_FDCWD, p, NULL), r_rmdir(p));
}

static int do_mkdir(int d, const char *p, mode_t mode)
{
    resolve();
    char abs[PATH_MAX];
    if (!path_followed(d, p, abs)) return r_mkdirat(d, p, mode);
    enter();
    int r = r_mkdirat(d, p, mode);
    int e = errno;
    struct stat st;
    if (r == 0 && lstat(abs, &st) == 0) fid_new(st.st_ino, true);
    leave();
    errno = e;
    return r;
}

int mkdir(const char *p, mode_t mode)
{
    return do_mkdir(AT_FDCWD, p, mode);
}

int mkdirat(int d, const char *p, mode_t mode)
{
    return do_mkdir(d, p, mode);
}
