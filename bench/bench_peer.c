/*
 * bench_peer — the client side of bench/compare, the same for every system
 * so that only the servers differ:
 *
 *   bench_peer tcp HOST:PORT FILE [--conns N]
 *       send FILE (line protocol) over N TCP connections at once, as fast
 *       as the server reads: each connection takes the file's next block
 *       of about 256 KiB (whole lines) when it has sent its last, so the
 *       connections move through the file's time together; then
 *       half-close and wait for the server to close or 2 s of silence.
 *   bench_peer http URL FILE [--conns N] [--lines N]
 *       POST FILE in bodies of --lines whole lines (default 5000), handed
 *       out in order to N connections at once; every answer must be 2xx,
 *       else the body is printed and the exit code is 1.
 *   bench_peer rss PID
 *       until SIGTERM or SIGINT, every 50 ms sum the proportional set size
 *       (Pss, /proc/P/smaps_rollup) of PID and its descendants; then print
 *       the peak in bytes, or PID's own VmHWM if that is larger (an exact
 *       peak, which matters for a single-process server between samples).
 *       Pss counts a page shared by k processes as 1/k in each, so a
 *       multi-process server's shared buffers count once.
 *
 * Prints "sent BYTES bytes in SECS s" for tcp and http.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_time.h"

#define MAX_CONNS 16
#define TCP_BLOCK (256 * 1024)

/* The file, handed out in order: each connection takes the next block when it is ready for
 * one, so all of them move through time together, as many agents sending now would. */
typedef struct feed {
    pthread_mutex_t mu;
    const char *next, *end;
    size_t lines; /* http: lines per body; tcp: 0, blocks of TCP_BLOCK bytes */
} feed;

typedef struct conn {
    feed *f;
    const char *host, *port, *url; /* tcp: host and port; http: url */
    int rc;
} conn;

/* The next block, cut after a newline; false at the end. */
static bool take(feed *f, const char **p, const char **q)
{
    pthread_mutex_lock(&f->mu);
    const char *a = f->next, *b = a;
    if (f->lines) {
        for (size_t i = 0; i < f->lines && b < f->end; i++) {
            const char *nl = memchr(b, '\n', (size_t)(f->end - b));
            b = nl ? nl + 1 : f->end;
        }
    } else {
        b = (size_t)(f->end - a) > TCP_BLOCK ? a + TCP_BLOCK : f->end;
        const char *nl = b < f->end ? memchr(b, '\n', (size_t)(f->end - b)) : NULL;
        b = nl ? nl + 1 : f->end;
    }
    f->next = b;
    pthread_mutex_unlock(&f->mu);
    *p = a;
    *q = b;
    return a < b;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_peer: %s: %s\n", what, strerror(errno));
    return 1;
}

static void *send_tcp(void *arg)
{
    conn *s = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(s->host, s->port, &hints, &ai);
    if (rc) {
        fprintf(stderr, "bench_peer: %s: %s\n", s->host, gai_strerror(rc));
        s->rc = 1;
        return NULL;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        freeaddrinfo(ai);
        s->rc = die("connect");
        return NULL;
    }
    freeaddrinfo(ai);
    const char *p, *end;
    while (!s->rc && take(s->f, &p, &end)) {
        while (p < end) {
            ssize_t n = send(fd, p, (size_t)(end - p), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                s->rc = die("send");
                break;
            }
            p += n;
        }
    }
    /* The server has read everything once it closes its side, or goes quiet. */
    shutdown(fd, SHUT_WR);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
    return NULL;
}

typedef struct body {
    char text[1024];
    size_t len;
} body;

static size_t keep_body(char *ptr, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t k = size * n, room = sizeof b->text - 1 - b->len;
    memcpy(b->text + b->len, ptr, k < room ? k : room);
    b->len += k < room ? k : room;
    b->text[b->len] = 0;
    return size * n;
}

static void *send_http(void *arg)
{
    conn *s = arg;
    CURL *c = curl_easy_init();
    if (!c) {
        s->rc = 1;
        return NULL;
    }
    body b = {{0}, 0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/plain");
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip per body */
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    const char *p, *q;
    while (!s->rc && take(s->f, &p, &q)) {
        b.len = 0;
        b.text[0] = 0;
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, p);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q - p));
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK || status / 100 != 2) {
            fprintf(stderr, "bench_peer: POST %s: %s %ld %s\n", s->url,
                    cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP", status, b.text);
            s->rc = 1;
        }
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return NULL;
}

static int send_file(const char *mode, const char *target, const char *path, int conns,
                     size_t lines)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) return die(path);
    size_t size = (size_t)st.st_size;
    const char *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
    if (map == MAP_FAILED) return die("mmap");
    close(fd);

    char host[256] = "", *port = NULL;
    bool tcp = !strcmp(mode, "tcp");
    if (tcp) {
        snprintf(host, sizeof host, "%s", target);
        port = strrchr(host, ':');
        if (!port) {
            fprintf(stderr, "bench_peer: tcp wants HOST:PORT, not %s\n", target);
            return 2;
        }
        *port++ = 0;
    }
    feed f = {PTHREAD_MUTEX_INITIALIZER, map, map + size, tcp ? 0 : lines};
    conn cs[MAX_CONNS];
    for (int i = 0; i < conns; i++) cs[i] = (conn){&f, host, port, target, 0};
    int64_t t0 = mt_mono_ns();
    pthread_t th[MAX_CONNS];
    for (int i = 0; i < conns; i++)
        if (pthread_create(&th[i], NULL, tcp ? send_tcp : send_http, &cs[i])) return die("thread");
    int rc = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        rc |= cs[i].rc;
    }
    double secs = (double)(mt_mono_ns() - t0) / 1e9;
    if (size) munmap((void *)map, size);
    if (rc) return 1;
    printf("sent %zu bytes in %.3f s\n", size, secs);
    return 0;
}

/* ---- rss ------------------------------------------------------------------------------- */

/* A number after "key" in /proc/PID/<file>, in kB; 0 when absent. */
static long proc_kb(long pid, const char *file, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/%s", pid, file);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long kb = 0;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k)) {
            kb = strtol(line + k, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static long parent_of(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
    long ppid = -1;
    if (rp) sscanf(rp + 1, " %*c %ld", &ppid);
    return ppid;
}

/* Pss of root and every descendant, in kB. */
static long tree_pss(long root)
{
    long pids[4096], parents[4096];
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        char *endp;
        long pid = strtol(e->d_name, &endp, 10);
        if (*endp || pid <= 0) continue;
        pids[n] = pid;
        parents[n++] = parent_of(pid);
    }
    closedir(d);
    long total = 0;
    for (size_t i = 0; i < n; i++) {
        long p = pids[i];
        for (int depth = 0; depth < 16 && p > 1 && p != root; depth++) {
            size_t j = 0;
            while (j < n && pids[j] != p) j++;
            p = j < n ? parents[j] : -1;
        }
        if (p == root) total += proc_kb(pids[i], "smaps_rollup", "Pss:");
    }
    return total;
}

static int sample_rss(long pid)
{
    /* The signals are taken synchronously: one arriving while /proc is read is not lost. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    long peak = 0;
    for (;;) {
        long kb = tree_pss(pid), hwm = proc_kb(pid, "status", "VmHWM:");
        if (kb > peak) peak = kb;
        if (hwm > peak) peak = hwm;
        struct timespec ts = {0, 50 * 1000000};
        if (sigtimedwait(&set, NULL, &ts) >= 0) break;
    }
    printf("%ld\n", peak * 1024);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_peer tcp HOST:PORT FILE [--conns N]\n"
                    "       bench_peer http URL FILE [--conns N] [--lines N]\n"
                    "       bench_peer rss PID\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "rss")) return sample_rss(strtol(argv[2], NULL, 10));
    if (argc < 4 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "http"))) return usage();
    int conns = 1;
    size_t lines = 5000;
    for (int i = 4; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--conns"))
            conns = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--lines"))
            lines = strtoul(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (conns < 1 || conns > MAX_CONNS || lines < 1) return usage();
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return 1;
    int rc = send_file(argv[1], argv[2], argv[3], conns, lines);
    curl_global_cleanup();
    return rc;
}
