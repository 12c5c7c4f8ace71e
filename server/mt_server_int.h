/*
 * mt_ingest_int.h — ingest internals shared by mt_server.c (listeners,
 * completions, back-pressure), mt_tcp.c, mt_udp.c, mt_http.c, mt_prom.c.
 */
#ifndef MT_INGEST_INT_H
#define MT_INGEST_INT_H

#include <pthread.h>

#include "mt_ingest.h"
#include "mt_log.h"

enum { LISTENER_TCP = 0, LISTENER_UDP = 1, LISTENER_HTTP = 2 };

typedef struct mt_conn mt_conn;

/* Where an HTTP connection is in its request (deadlines, and whom to close at the limit). */
enum {
    HTTP_IDLE = 0, /* between requests (keep-alive): idle_timeout applies */
    HTTP_HEADERS,  /* reading a request's headers: header_timeout_ms from req_start */
    HTTP_BODY, /* reading its body: body_timeout_ms + body_got / body_min_rate from body_start */
    HTTP_BUSY, /* being answered: never closed to make room */
};

/* A batch on its way through the engine, and whom to tell. */
typedef struct mt_job {
    mt_ingest *ing;
    mt_batch *b;
    size_t bytes;  /* counted in inflight_bytes */
    mt_conn *conn; /* NULL for UDP */
    mt_write_result res;
    struct mt_job *next;
} mt_job;

struct mt_conn {
    uv_tcp_t tcp; /* first: the handle's data is the conn */
    mt_ingest *ing;
    int kind; /* LISTENER_TCP or LISTENER_HTTP */
    uv_timer_t idle;
    int handles_open; /* tcp + idle timer, closed asynchronously */
    int pending;      /* jobs in flight */
    bool closing;
    bool reading;
    struct mt_conn *prev, *next; /* every open connection, for pausing and stop */
    mt_lp_parser *lp;
    mt_batch *batch; /* TCP: the batch being filled */
    void *http;      /* mt_http.c's state */
    uint64_t bytes, lines, rejected;
    int64_t last_read; /* monotonic ns of the last bytes read */
    char peer[64];
    /* HTTP, set by mt_http.c; read by the deadline sweep and the limit (mt_server.c) */
    int stage;            /* HTTP_IDLE ... HTTP_BUSY */
    int64_t req_start;    /* monotonic ns: the request's first byte (the accept, for the first) */
    int64_t body_start;   /* monotonic ns: its headers were complete */
    int64_t idle_since;   /* monotonic ns: the last answer went out (HTTP_IDLE) */
    uint64_t body_got;    /* body bytes received of the request */
    uint64_t accept_iter; /* mt_ingest.iter at the accept: not evicted before a poll read it */
};

struct mt_ingest {
    uv_loop_t *loop;
    mt_engine *eng;
    mt_ingest_config cfg;
    uv_tcp_t tcp_listener, http_listener;
    uv_udp_t udp;
    bool tcp_on, http_on, udp_on;
    int listeners_open; /* closed asynchronously at stop */
    uv_async_t async;
    bool async_on;
    uv_timer_t drain;      /* at stop: closes connections as they go quiet */
    int64_t drain_started; /* monotonic ns */
    pthread_mutex_t dlock; /* the completion queue, filled on the writer thread */
    mt_job *done_head, *done_tail;
    mt_conn *conns;
    bool paused, stopping;
    int jobs; /* in flight */
    void (*stop_cb)(void *);
    void *stop_ud;
    mt_lp_parser *udp_lp;
    mt_series_cache *cache; /* key -> series id, for every listener (loop thread) */
    struct mt_auth *auth;   /* API tokens; NULL: writes need none */
    mt_ingest_stats st;
    mt_log_limit bad_line_log;
    mt_log_limit conn_log; /* refused, evicted and too slow connections */
    uv_timer_t sweep;      /* HTTP header and body deadlines, checked every SWEEP_MS */
    bool sweep_on;
    char *readbuf;      /* every TCP and HTTP read (mt_conn_alloc) */
    bool readbuf_busy;  /* between an allocation and the end of its read callback */
    int64_t last_sweep; /* monotonic ns */
    uv_check_t check;   /* counts loop iterations (iter); retries a deferred HTTP accept */
    bool check_on;
    uint64_t iter;
    bool accept_deferred; /* an HTTP connection waits in the listener until room is made */
    int64_t started_ns;
};

/* Submit b for conn (NULL for UDP); b is the engine's until the completion. */
int mt_ingest_submit(mt_ingest *ing, mt_conn *conn, mt_batch *b);
/* Called on the loop for each completed job, by kind (mt_tcp.c, mt_http.c). */
void mt_tcp_job_done(mt_job *job);
void mt_http_job_done(mt_job *job);

/* Work on the thread pool (queries) counts as a job: stop waits for it. */
void mt_ingest_work_begin(mt_ingest *ing);
void mt_ingest_work_done(mt_ingest *ing);

/* Connections. */
void mt_conn_job_released(mt_conn *c); /* a job of c came back */
mt_conn *mt_conn_new(mt_ingest *ing, int kind);
void mt_conn_close(mt_conn *c);
void mt_conn_touch(mt_conn *c); /* restart the idle timer */
void mt_conn_read_start(mt_conn *c);
void mt_conn_read_stop(mt_conn *c);
void mt_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf); /* the loop's buffer */
void mt_conn_read_done(mt_conn *c, const uv_buf_t *buf); /* at the end of each read callback */

/*
 * HTTP bodies in mem_budget: take n more bytes for a request that already
 * holds held (true), or false when they do not fit beside the batches in
 * flight and the other bodies. A request is always let in when no other
 * holds any, so a max_body over mem_budget still makes progress. Give the
 * bytes back when the body is freed.
 */
bool mt_ingest_body_take(mt_ingest *ing, size_t held, size_t n);
void mt_ingest_body_give(mt_ingest *ing, size_t n);

/* Per kind. */
void mt_tcp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
void mt_tcp_free(mt_conn *c);
int mt_http_init(mt_conn *c);
void mt_http_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
void mt_http_free(mt_conn *c);
/* Write an answer on c (mt_http.c's, with its headers and counters); body is copied. */
void mt_http_respond(mt_conn *c, int status, const char *ctype, const char *body, size_t blen);
/* The same with body malloc'd and given: freed once written (or at once if c closes). */
void mt_http_respond_take(mt_conn *c, int status, const char *ctype, char *body, size_t blen);
/*
 * mt_promapi.c: answer url (a path under /prometheus/) on c; post: body
 * (blen bytes, may be NULL) is a form with more parameters. tenant: the
 * reader's business_id, NULL for every tenant (decided by mt_http.c).
 */
void mt_promapi_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                       const char *tenant);
/*
 * mt_export_http.c: answer /api/v1/export on c, streamed (arguments as mt_promapi_handle's).
 * It holds a job of c (c->pending) until the last chunk is written or the stream is cut.
 */
void mt_export_http_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                           const char *tenant);
/* For an answer written outside mt_http_respond (a stream): whether c closes after it
   (HTTP/1.0, "Connection: close"), and the call once its last byte is written (the next
   pipelined request, reading again, or the close). */
bool mt_http_closes_after(const mt_conn *c);
void mt_http_stream_done(mt_conn *c);
/*
 * mt_admin.c: POST or DELETE /api/v1/admin/delete on c (post: the method is one of those; body,
 * blen bytes, may be NULL, a form with more parameters). tenant: the caller's business_id,
 * NULL for a system token or no tokens (decided by mt_http.c). Answers, now or from a worker.
 */
void mt_admin_delete_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                            const char *tenant);
/* Answer 408 and close c if its headers or body missed their deadline (now: monotonic ns). */
void mt_http_check_deadline(mt_conn *c, int64_t now);
int mt_udp_start(mt_ingest *ing, const struct sockaddr *addr);

/* Log a rejected line (rate-limited) and count it. */
void mt_ingest_bad_line(mt_ingest *ing, const char *peer, const mt_lp_error *e);

/* Prometheus text of ingest + engine + process counters, malloc'd. */
char *mt_prom_render(mt_ingest *ing, size_t *len);

/* Parse "host:port" (IPv4, or [IPv6]:port). 0 or a negative libuv code. */
int mt_parse_addr(const char *s, struct sockaddr_storage *out);

#endif
