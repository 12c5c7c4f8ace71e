/*
 * mt_server_int.h — server internals shared by mt_server.c (listeners,
 * connections, completions, back-pressure), the connection kinds (mt_tcp.c,
 * mt_http.c) and what answers HTTP requests (mt_promapi.c,
 * mt_export_http.c, mt_admin.c, mt_prom.c).
 *
 * mt_server.c accepts, counts, limits, times out and frees connections
 * without knowing any kind: it calls a connection's kind only through its
 * table of operations (mt_conn_ops), and mt_kinds.c says which listener
 * serves which kind. The kinds call down into mt_conn_* and mt_server_*;
 * nothing calls back up by name.
 */
#ifndef MT_SERVER_INT_H
#define MT_SERVER_INT_H

#include <pthread.h>

#include "mt_ingest.h"
#include "mt_log.h"
#include "mt_promql.h"
#include "mt_server.h"

enum { LISTENER_TCP = 0, LISTENER_UDP = 1, LISTENER_HTTP = 2, LISTENER__COUNT };

typedef struct mt_conn mt_conn;
typedef struct mt_job mt_job;

/*
 * A kind of connection (raw line protocol, HTTP): what mt_server.c calls
 * on a connection of that kind. Every operation runs on the loop thread.
 */
typedef struct mt_conn_ops {
    const char *name; /* "tcp", "http": logs, and the max_conns_NAME setting */
    /* After the accept, before the first read: the kind's state. MT_OK, or an error (the
       connection is then closed). */
    int (*init)(mt_conn *c);
    /* Reading (uv_read_start's callback; the buffer comes from mt_conn_alloc, and each call
       ends with mt_conn_read_done). */
    uv_read_cb on_read;
    /* A batch c submitted came back (its counters already taken): free the job and its batch,
       answer if the kind does, and end with mt_conn_job_released(c). */
    void (*job_done)(mt_job *job);
    /* Free the kind's state: c is closed and has no job left. */
    void (*free)(mt_conn *c);
    /* Deadlines (NULL: the kind has none): the sweep calls check_deadline(c, now), which may
       close c when it is late (now: monotonic ns); while reading is paused it calls
       hold_deadline(c, ns) instead, ns being the time since the last sweep: a request is not
       late because we did not read it. */
    void (*check_deadline)(mt_conn *c, int64_t now);
    void (*hold_deadline)(mt_conn *c, int64_t ns);
    /* At the listener's limit (NULL: a new connection is refused): false when c may not be
       closed to make room (being answered); else true, since when c has gone without
       finishing a request (monotonic ns) and at what stage it is ("idle", "headers", ...). */
    bool (*stalled)(const mt_conn *c, int64_t *since, const char **stage);
} mt_conn_ops;

/* The kinds (mt_tcp.c, mt_http.c), and the one each listener serves, by LISTENER_* (mt_kinds.c;
   NULL for UDP, which has no connections). */
extern const mt_conn_ops mt_tcp_ops, mt_http_ops;
extern const mt_conn_ops *const mt_listener_kinds[LISTENER__COUNT];

/* A batch on its way through the engine, and whom to tell. */
struct mt_job {
    mt_server *srv;
    mt_batch *b;
    size_t bytes;  /* counted in inflight_bytes */
    mt_conn *conn; /* NULL for UDP */
    mt_write_result res;
    struct mt_job *next;
};

struct mt_conn {
    uv_tcp_t tcp; /* first: the handle's data is the conn */
    mt_server *srv;
    int kind;               /* LISTENER_TCP or LISTENER_HTTP: its limits and counters */
    const mt_conn_ops *ops; /* what the kind does */
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
    uint64_t accept_iter; /* mt_server.iter at the accept: not evicted before a poll read it */
};

struct mt_server {
    uv_loop_t *loop;
    mt_engine *eng;
    mt_server_config cfg;
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
    mt_series_cache *cache;    /* key -> series id, for every listener (loop thread) */
    mt_promql_cache *catalogs; /* PromQL's catalogs, shared by its queries (any thread) */
    struct mt_auth *auth;      /* API tokens; NULL: writes need none */
    mt_server_stats st;
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
int mt_server_submit(mt_server *srv, mt_conn *conn, mt_batch *b);
/*
 * l into c's batch (made when c has none) for tenant and db, as
 * mt_ingest_line_db; a line taken is counted (lines_ok). Returns as it does.
 */
int mt_server_take_line(mt_conn *c, const mt_lp_line *l, const char *tenant, const char *db);
/* Work on the thread pool (queries) counts as a job: stop waits for it. */
void mt_server_work_begin(mt_server *srv);
void mt_server_work_done(mt_server *srv);
/*
 * Run work on libuv's thread pool for c, after on the loop: c (pending) and the
 * server (a job) live until after has run. 0, or uv_queue_work's error with both
 * counts as they were (the caller answers the refusal on c).
 */
int mt_server_queue_work(mt_conn *c, uv_work_t *req, uv_work_cb work, uv_after_work_cb after);

/* Connections. */
void mt_conn_job_released(mt_conn *c); /* a job of c came back */
mt_conn *mt_conn_new(mt_server *srv, int kind);
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
bool mt_server_body_take(mt_server *srv, size_t held, size_t n);
void mt_server_body_give(mt_server *srv, size_t n);

/* HTTP (mt_http.c), for the handlers of other files. */
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

/* Log a rejected line (rate-limited) and count it. */
void mt_server_bad_line(mt_server *srv, const char *peer, const mt_lp_error *e);

/* /metrics: the Prometheus text of ingest's, the server's, the engine's and the process's
   counters, then the daemon's (more_metrics); malloc'd, NULL when out of memory. */
char *mt_prom_render(mt_server *srv, size_t *len);

/* Parse "host:port" (IPv4, or [IPv6]:port). 0 or a negative libuv code. */
int mt_parse_addr(const char *s, struct sockaddr_storage *out);

#endif
