/*
 * mt_server.c — listeners, connections, the completion queue and
 * back-pressure (contract in mt_server.h). A connection's kind (raw line
 * protocol, HTTP) is reached only through its operations (c->ops,
 * mt_server_int.h): accepting, limits, deadlines and freeing are the same
 * code for every kind.
 *
 * Memory: mem_budget covers the batches in flight and the HTTP bodies held
 * (mt_server_body_take). Over it, batches pause every listener (the writer
 * will drain them); bodies are refused with 503 and Retry-After instead,
 * because a paused body holds its bytes until more of its own bytes arrive:
 * pausing bodies could leave every connection waiting on every other.
 *
 * Connections: each listener has its own limit. At the HTTP limit, the HTTP
 * connection that has gone longest without finishing a request is closed
 * to make room (evict_stalled): a flood of slow or idle connections then
 * churns among itself, and a quick request (a /ping) always gets in. A
 * connection is not "stalled" before a poll has had the chance to read it:
 * one accept burst may hold more connections than the limit, and the /ping
 * among them has its request in the socket, unread. When only such fresh
 * connections could make room, the new one waits in the listener's queue
 * until the next loop iteration (the check handle retries it). The sweep
 * timer closes HTTP connections whose headers or body are late.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_auth.h"
#include "mt_server_int.h"

#define READ_BUF       (64 * 1024)
#define DRAIN_TICK_MS  100   /* at stop, how often open connections are looked at */
#define DRAIN_QUIET_MS 1000  /* ... closed once quiet this long */
#define DRAIN_MAX_MS   20000 /* ... and all closed after this long (metrond gives up at 30 s) */
#define SWEEP_MS       250   /* how often HTTP header and body deadlines are checked */

mt_server_config mt_server_config_default(void)
{
    return (mt_server_config){
        .lp_tcp = "127.0.0.1:8089",
        .lp_udp = "127.0.0.1:8089",
        .http = "127.0.0.1:8086",
        .lp_precision = MT_PREC_NS,
        .max_body = 25 * 1000 * 1000,
        .default_db = "metron",
        .max_conns_http = 1024,
        .max_conns_tcp = 1024,
        .max_conns = 0,
        .idle_timeout_ms = 300000,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 10000,
        .body_min_rate = 4096,
        .mem_budget = 24u << 20,
    };
}

const mt_server_stats *mt_server_stats_get(const mt_server *srv)
{
    return &srv->st;
}

int mt_parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host) return UV_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return UV_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (host[0] == '[') {
        size_t l = strlen(host);
        if (host[l - 1] != ']') return UV_EINVAL;
        host[l - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out);
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
}

void mt_server_bad_line(mt_server *srv, const char *peer, const mt_lp_error *e)
{
    srv->st.ingest.lines_rejected[e->code]++;
    char why[2 * sizeof e->reason];
    size_t o = 0;
    for (const char *p = e->reason; *p && o + 2 < sizeof why; p++) { /* logfmt quoting */
        if (*p == '"' || *p == '\\') why[o++] = '\\';
        why[o++] = *p;
    }
    why[o] = '\0';
    mt_log_limited(&srv->bad_line_log, 5, MT_LOG_WARN,
                   "msg=\"rejected line\" peer=%s line=%llu col=%u reason=\"%s\"", peer,
                   (unsigned long long)e->lineno, e->col, why);
}

/* ---- back-pressure ----------------------------------------------------------- */

static void pause_all(mt_server *srv)
{
    if (srv->paused) return;
    srv->paused = true;
    srv->st.pauses++;
    for (mt_conn *c = srv->conns; c; c = c->next) uv_read_stop((uv_stream_t *)&c->tcp);
    if (srv->udp_on) uv_udp_recv_stop(&srv->udp);
    mt_log(MT_LOG_WARN, "msg=\"writer behind: reading paused\" inflight_bytes=%llu",
           (unsigned long long)srv->st.inflight_bytes);
}

static void udp_resume(mt_server *srv);
static int udp_start(mt_server *srv, const struct sockaddr *addr);

static void resume_all(mt_server *srv)
{
    if (!srv->paused) return;
    srv->paused = false;
    for (mt_conn *c = srv->conns; c; c = c->next)
        if (c->reading) mt_conn_read_start(c);
    if (srv->udp_on) udp_resume(srv);
}

/* ---- completions ------------------------------------------------------------- */

/* Writer thread: queue the job and wake the loop. */
static void on_written(void *ud, const mt_write_result *res, mt_batch *b)
{
    (void)b;
    mt_job *job = ud;
    job->res = *res;
    mt_server *srv = job->srv;
    pthread_mutex_lock(&srv->dlock);
    job->next = NULL;
    if (srv->done_tail)
        srv->done_tail->next = job;
    else
        srv->done_head = job;
    srv->done_tail = job;
    pthread_mutex_unlock(&srv->dlock);
    uv_async_send(&srv->async);
}

static void maybe_finish_stop(mt_server *srv);

/* Loop: hand each completed job to its owner. */
static void on_async(uv_async_t *a)
{
    mt_server *srv = a->data;
    pthread_mutex_lock(&srv->dlock);
    mt_job *list = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    pthread_mutex_unlock(&srv->dlock);
    while (list) {
        mt_job *job = list;
        list = list->next;
        srv->jobs--;
        srv->st.inflight_bytes -= job->bytes;
        srv->st.ingest.points_ok += job->res.accepted;
        srv->st.ingest.points_rejected += job->res.rejected;
        if (job->res.rc) {
            srv->st.write_errors++;
            mt_log(MT_LOG_ERROR, "msg=\"write failed\" err=%s", mt_strerror(job->res.rc));
        }
        if (job->conn) {
            job->conn->ops->job_done(job);
        } else { /* UDP: nobody to answer */
            mt_batch_free(job->b);
            free(job);
        }
    }
    if (srv->paused && srv->st.inflight_bytes <= srv->cfg.mem_budget / 4 * 3) resume_all(srv);
    maybe_finish_stop(srv);
}

bool mt_server_body_take(mt_server *srv, size_t held, size_t n)
{
    if (srv->st.body_bytes > held &&
        srv->st.inflight_bytes + srv->st.body_bytes + n > srv->cfg.mem_budget)
        return false;
    srv->st.body_bytes += n;
    return true;
}

void mt_server_body_give(mt_server *srv, size_t n)
{
    srv->st.body_bytes -= n;
}

int mt_server_submit(mt_server *srv, mt_conn *conn, mt_batch *b)
{
    mt_job *job = calloc(1, sizeof *job);
    if (!job) return -ENOMEM;
    job->srv = srv;
    job->b = b;
    job->conn = conn;
    mt_batch_fit(b);
    job->bytes = mt_batch_bytes(b) + sizeof *job;
    int rc = mt_engine_submit(srv->eng, b, on_written, job);
    if (rc) {
        free(job);
        return rc;
    }
    srv->jobs++;
    if (conn) conn->pending++;
    srv->st.inflight_bytes += job->bytes;
    if (srv->st.inflight_bytes > srv->cfg.mem_budget) pause_all(srv);
    return MT_OK;
}

int mt_server_take_line(mt_conn *c, const mt_lp_line *l, const char *tenant, const char *db)
{
    if (!c->batch && !(c->batch = mt_batch_new())) return -ENOMEM;
    int rc = mt_ingest_line_db(c->batch, l, c->srv->cache, tenant, db);
    if (rc == MT_OK) c->srv->st.ingest.lines_ok++;
    return rc;
}

void mt_server_work_begin(mt_server *srv)
{
    srv->jobs++;
}

void mt_server_work_done(mt_server *srv)
{
    srv->jobs--;
    maybe_finish_stop(srv);
}

int mt_server_queue_work(mt_conn *c, uv_work_t *req, uv_work_cb work, uv_after_work_cb after)
{
    c->pending++;
    mt_server_work_begin(c->srv);
    int rc = uv_queue_work(c->srv->loop, req, work, after);
    if (rc) {
        /* the counts back as they were, no stop finished under the caller's refusal */
        c->pending--;
        c->srv->jobs--;
    }
    return rc;
}

/* ---- connections ------------------------------------------------------------- */

/*
 * Every TCP and HTTP read lands in one buffer of the loop: libuv calls the
 * read callback right after each allocation, and the callbacks copy what
 * they keep (the line parser its unfinished tail, HTTP the pieces of a
 * request), so reads cost no allocation — a flood of 1-byte reads from
 * a thousand connections used to malloc and free 64 KiB each.
 */
void mt_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    mt_server *srv = ((mt_conn *)h->data)->srv;
    if (!srv->readbuf_busy && srv->readbuf) {
        srv->readbuf_busy = true;
        *buf = uv_buf_init(srv->readbuf, READ_BUF);
        return;
    }
    buf->base = malloc(READ_BUF); /* not expected: a read inside a read callback */
    buf->len = buf->base ? READ_BUF : 0;
}

void mt_conn_read_done(mt_conn *c, const uv_buf_t *buf)
{
    if (buf->base == c->srv->readbuf)
        c->srv->readbuf_busy = false;
    else
        free(buf->base);
}

static void on_idle(uv_timer_t *t)
{
    mt_conn *c = t->data;
    c->srv->st.connections_idle_closed++;
    mt_log(MT_LOG_INFO, "msg=\"idle connection closed\" peer=%s", c->peer);
    mt_conn_close(c);
}

void mt_conn_touch(mt_conn *c)
{
    c->last_read = mt_mono_ns();
    if (c->srv->cfg.idle_timeout_ms && !c->closing)
        uv_timer_start(&c->idle, on_idle, c->srv->cfg.idle_timeout_ms, 0);
}

void mt_conn_read_start(mt_conn *c)
{
    c->reading = true;
    if (c->closing || c->srv->paused) return;
    uv_read_start((uv_stream_t *)&c->tcp, mt_conn_alloc, c->ops->on_read);
}

void mt_conn_read_stop(mt_conn *c)
{
    c->reading = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

mt_conn *mt_conn_new(mt_server *srv, int kind)
{
    mt_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = srv;
    c->kind = kind;
    c->ops = mt_listener_kinds[kind];
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->idle);
    c->tcp.data = c;
    c->idle.data = c;
    c->handles_open = 2;
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    return c;
}

static void conn_free(mt_conn *c)
{
    c->ops->free(c);
    mt_lp_parser_free(c->lp);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    mt_conn *c = h->data;
    if (--c->handles_open == 0 && c->pending == 0) {
        mt_server *srv = c->srv;
        conn_free(c);
        maybe_finish_stop(srv);
    }
}

void mt_conn_close(mt_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    mt_server *srv = c->srv;
    if (c->bytes)
        mt_log(MT_LOG_DEBUG,
               "msg=\"connection closed\" peer=%s listener=%s bytes=%llu lines=%llu rejected=%llu",
               c->peer, c->ops->name, (unsigned long long)c->bytes, (unsigned long long)c->lines,
               (unsigned long long)c->rejected);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->st.connections_open--;
    srv->st.connections_open_by[c->kind]--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_closed);
}

/* A job of c came back: free c if it was only waiting for that. */
void mt_conn_job_released(mt_conn *c)
{
    if (--c->pending == 0 && c->closing && c->handles_open == 0) {
        mt_server *srv = c->srv;
        conn_free(c);
        maybe_finish_stop(srv);
    }
}

/* What evict_stalled found. */
enum { EVICTED, ONLY_FRESH, NONE_IDLE };

/*
 * Make room for a new connection of kind (one whose ops have stalled: HTTP):
 * close the one that has gone longest without finishing a request — idle
 * since its last answer, or reading a request begun longest ago — never
 * one being answered, and never one no poll has read yet (accepted in this or the previous loop
 * iteration: it joins epoll only at the next poll, and the listener's burst may come first in that
 * poll).
 */
static int evict_stalled(mt_server *srv, int kind)
{
    mt_conn *victim = NULL;
    int64_t oldest = INT64_MAX;
    const char *stage = NULL;
    bool fresh = false;
    for (mt_conn *c = srv->conns; c; c = c->next) {
        int64_t since;
        const char *st;
        if (c->kind != kind || c->closing || !c->ops->stalled(c, &since, &st) || c->pending)
            continue;
        if (c->accept_iter + 2 > srv->iter) {
            fresh = true;
            continue;
        }
        if (since < oldest) oldest = since, victim = c, stage = st;
    }
    if (!victim) return fresh ? ONLY_FRESH : NONE_IDLE;
    srv->st.connections_evicted++;
    mt_log_limited(&srv->conn_log, 5, MT_LOG_WARN,
                   "msg=\"HTTP connection limit reached: the most stalled connection closed\" "
                   "peer=%s stage=%s stalled_ms=%lld max_conns_http=%zu",
                   victim->peer, stage, (long long)((mt_mono_ns() - oldest) / 1000000),
                   srv->cfg.max_conns_http);
    mt_conn_close(victim);
    return EVICTED;
}

/* True when a new connection of kind finds its listener's limit (or the total) reached. */
static bool at_limit(const mt_server *srv, int kind)
{
    size_t lim = kind == LISTENER_HTTP ? srv->cfg.max_conns_http : srv->cfg.max_conns_tcp;
    return srv->st.connections_open_by[kind] >= lim ||
           (srv->cfg.max_conns && srv->st.connections_open >= srv->cfg.max_conns);
}

static void on_connection(uv_stream_t *server, int status)
{
    mt_server *srv = server->data;
    int kind = server == (uv_stream_t *)&srv->http_listener ? LISTENER_HTTP : LISTENER_TCP;
    if (status < 0 || srv->stopping) return;
    /* room is made before the accept, so the count never passes the limit */
    bool full = at_limit(srv, kind);
    if (full && mt_listener_kinds[kind]->stalled) {
        int found = evict_stalled(srv, kind);
        if (found == ONLY_FRESH) {
            /* not accepted: libuv stops polling the listener until uv_accept (on_check) */
            srv->accept_deferred = true;
            srv->st.connections_deferred++;
            return;
        }
        if (found == EVICTED) full = at_limit(srv, kind);
    }
    mt_conn *c = mt_conn_new(srv, kind);
    if (!c) return;
    c->accept_iter = srv->iter;
    srv->st.connections_open++;
    srv->st.connections_open_by[kind]++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        mt_conn_close(c);
        return;
    }
    /* An answer goes out in several writes (headers, then the body as it is made): with
       Nagle's algorithm the last one waits for the client's delayed ACK, 40 ms on Linux, when
       the client (a proxy above all) sends nothing meanwhile. A failure only costs that. */
    if (uv_tcp_nodelay(&c->tcp, 1))
        mt_log(MT_LOG_DEBUG, "msg=\"cannot set TCP_NODELAY on a connection\"");
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (sa.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
        snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    }
    if (full) {
        srv->st.connections_refused++;
        mt_log_limited(&srv->conn_log, 5, MT_LOG_WARN,
                       "msg=\"connection refused: limit reached\" peer=%s listener=%s "
                       "max_conns_%s=%zu max_conns=%zu",
                       c->peer, c->ops->name, c->ops->name,
                       kind == LISTENER_HTTP ? srv->cfg.max_conns_http : srv->cfg.max_conns_tcp,
                       srv->cfg.max_conns);
        mt_conn_close(c);
        return;
    }
    srv->st.connections_total++;
    if (c->ops->init(c)) {
        mt_conn_close(c);
        return;
    }
    mt_conn_touch(c);
    mt_conn_read_start(c);
}

static int listen_tcp(mt_server *srv, uv_tcp_t *h, const char *addr, bool *on)
{
    if (!addr || !*addr || strcmp(addr, "off") == 0) return MT_OK;
    struct sockaddr_storage sa;
    int rc = mt_parse_addr(addr, &sa);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"bad listen address\" addr=%s", addr);
        return MT_EINVAL;
    }
    uv_tcp_init(srv->loop, h);
    h->data = srv;
    *on = true;
    srv->listeners_open++;
    rc = uv_tcp_bind(h, (struct sockaddr *)&sa, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)h, 511, on_connection);
    if (rc) mt_log(MT_LOG_ERROR, "msg=\"cannot listen\" addr=%s err=%s", addr, uv_strerror(rc));
    return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
    mt_server *srv = h->data;
    srv->listeners_open--;
    maybe_finish_stop(srv);
}

/* After each poll: count the iteration, then retry an HTTP accept that waited for room. */
static void on_check(uv_check_t *h)
{
    mt_server *srv = h->data;
    srv->iter++;
    if (srv->accept_deferred && srv->http_on && !srv->stopping) {
        srv->accept_deferred = false;
        on_connection((uv_stream_t *)&srv->http_listener, 0);
    }
}

/* Close connections whose request is late (their kind's check_deadline: HTTP headers, body). */
static void on_sweep(uv_timer_t *t)
{
    mt_server *srv = t->data;
    int64_t now = mt_mono_ns(), since = srv->last_sweep ? now - srv->last_sweep : 0;
    srv->last_sweep = now;
    mt_conn *c = srv->conns;
    while (c) {
        mt_conn *next = c->next; /* c may close: its successor is still linked */
        if (!c->ops->check_deadline || c->closing) {
        } else if (srv->paused) { /* late because we are not reading: the clock stops */
            c->ops->hold_deadline(c, since);
        } else {
            c->ops->check_deadline(c, now);
        }
        c = next;
    }
}

static void close_listeners(mt_server *srv)
{
    if (srv->tcp_on) uv_close((uv_handle_t *)&srv->tcp_listener, on_listener_closed);
    if (srv->http_on) uv_close((uv_handle_t *)&srv->http_listener, on_listener_closed);
    if (srv->udp_on) uv_close((uv_handle_t *)&srv->udp, on_listener_closed);
    if (srv->sweep_on) uv_close((uv_handle_t *)&srv->sweep, on_listener_closed);
    if (srv->check_on) uv_close((uv_handle_t *)&srv->check, on_listener_closed);
    srv->tcp_on = srv->http_on = srv->udp_on = srv->sweep_on = srv->check_on = false;
}

static void on_async_closed(uv_handle_t *h)
{
    mt_server *srv = h->data;
    void (*cb)(void *) = srv->stop_cb;
    void *ud = srv->stop_ud;
    mt_lp_parser_free(srv->udp_lp);
    mt_series_cache_free(srv->cache);
    mt_promql_cache_free(srv->catalogs); /* no query runs now: jobs is 0 */
    free(srv->readbuf);
    mt_auth_free(srv->auth);
    pthread_mutex_destroy(&srv->dlock);
    free(srv);
    if (cb) cb(ud);
}

static void maybe_finish_stop(mt_server *srv)
{
    if (!srv->stopping || srv->jobs || srv->conns || srv->listeners_open || !srv->async_on) return;
    srv->async_on = false;
    uv_close((uv_handle_t *)&srv->async, on_async_closed);
}

int mt_server_set_tokens(mt_server *srv, mt_ingest_tokens *t)
{
    if (!srv->auth || !t) return MT_EINVAL;
    mt_auth_free(srv->auth); /* no reader: checks run on this thread and copy what they need */
    srv->auth = t;
    return MT_OK;
}

int mt_server_start(uv_loop_t *loop, mt_engine *eng, const mt_server_config *cfg, mt_server **out)
{
    mt_server *srv = calloc(1, sizeof *srv);
    if (!srv) return -ENOMEM;
    srv->loop = loop;
    srv->eng = eng;
    srv->cfg = *cfg;
    mt_server_config d = mt_server_config_default();
    if (!srv->cfg.max_body) srv->cfg.max_body = d.max_body;
    if (!srv->cfg.default_db || !*srv->cfg.default_db) srv->cfg.default_db = d.default_db;
    if (!srv->cfg.max_conns_http) srv->cfg.max_conns_http = d.max_conns_http;
    if (!srv->cfg.max_conns_tcp) srv->cfg.max_conns_tcp = d.max_conns_tcp;
    if (!srv->cfg.body_min_rate) srv->cfg.body_min_rate = d.body_min_rate;
    if (!srv->cfg.mem_budget) srv->cfg.mem_budget = d.mem_budget;
    srv->started_ns = mt_mono_ns();
    pthread_mutex_init(&srv->dlock, NULL);
    uv_async_init(loop, &srv->async, on_async);
    srv->async.data = srv;
    srv->async_on = true;
    srv->readbuf = malloc(READ_BUF);
    int rc = srv->readbuf ? mt_series_cache_new(eng, 0, &srv->cache) : -ENOMEM;
    if (!rc) rc = mt_promql_cache_new(&srv->catalogs);
    if (!rc && cfg->tokens_file && *cfg->tokens_file) {
        char err[512] = "";
        rc = mt_auth_load(cfg->tokens_file, &srv->auth, err, sizeof err);
        if (rc) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot load tokens\" file=%s err=\"%s\"", cfg->tokens_file,
                   err[0] ? err : mt_strerror(rc));
            rc = MT_EINVAL;
        } else {
            /* raw line protocol cannot carry a token: with tokens, only HTTP writes */
            if ((srv->cfg.lp_tcp && strcmp(srv->cfg.lp_tcp, "off")) ||
                (srv->cfg.lp_udp && strcmp(srv->cfg.lp_udp, "off")))
                mt_log(MT_LOG_WARN,
                       "msg=\"tokens configured: TCP and UDP line protocol are off\" "
                       "tokens=%zu",
                       mt_auth_count(srv->auth));
            srv->cfg.lp_tcp = srv->cfg.lp_udp = "off";
            cfg = &srv->cfg;
        }
    }
    if (!rc) rc = listen_tcp(srv, &srv->tcp_listener, cfg->lp_tcp, &srv->tcp_on);
    if (!rc) rc = listen_tcp(srv, &srv->http_listener, cfg->http, &srv->http_on);
    if (!rc && srv->http_on) {
        uv_check_init(loop, &srv->check);
        srv->check.data = srv;
        srv->check_on = true;
        srv->listeners_open++;
        uv_check_start(&srv->check, on_check);
        uv_unref((uv_handle_t *)&srv->check); /* counts iterations; keeps no loop alive */
    }
    if (!rc && srv->http_on && (srv->cfg.header_timeout_ms || srv->cfg.body_timeout_ms)) {
        uv_timer_init(loop, &srv->sweep);
        srv->sweep.data = srv;
        srv->sweep_on = true;
        srv->listeners_open++;
        uv_timer_start(&srv->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    }
    if (!rc && cfg->lp_udp && *cfg->lp_udp && strcmp(cfg->lp_udp, "off") != 0) {
        struct sockaddr_storage sa;
        rc = mt_parse_addr(cfg->lp_udp, &sa) ? MT_EINVAL : MT_OK;
        if (!rc) rc = udp_start(srv, (struct sockaddr *)&sa);
        if (rc) mt_log(MT_LOG_ERROR, "msg=\"cannot listen\" addr=%s (udp)", cfg->lp_udp);
    }
    if (rc) {
        mt_server_stop(srv, NULL, NULL);
        return rc;
    }
    *out = srv;
    return MT_OK;
}

/*
 * While stopping: a connection is closed once it has been quiet for
 * DRAIN_QUIET_MS (a sender that finished, or one that keeps the socket open
 * without sending), and every connection after DRAIN_MAX_MS.
 */
static void on_drain_tick(uv_timer_t *t)
{
    mt_server *srv = t->data;
    int64_t now = mt_mono_ns();
    bool all = now - srv->drain_started > (int64_t)DRAIN_MAX_MS * 1000000;
    if (srv->paused && !all) { /* quiet because we are not reading: wait for the writer */
        for (mt_conn *c = srv->conns; c; c = c->next) c->last_read = now;
        return;
    }
    mt_conn *c = srv->conns;
    while (c) {
        mt_conn *next = c->next;
        if (all || now - c->last_read > (int64_t)DRAIN_QUIET_MS * 1000000) mt_conn_close(c);
        c = next;
    }
    if (!srv->conns) {
        uv_timer_stop(&srv->drain);
        uv_close((uv_handle_t *)&srv->drain, on_listener_closed);
    }
}

void mt_server_stop(mt_server *srv, void (*done)(void *ud), void *ud)
{
    if (srv->stopping) return;
    srv->stopping = true;
    srv->stop_cb = done;
    srv->stop_ud = ud;
    close_listeners(srv);
    /* Lines already sent over TCP are still in the socket buffers: keep reading them
       (connections close at EOF) until each connection is quiet (on_drain_tick). */
    if (srv->paused) {
        srv->paused = false;
        for (mt_conn *c = srv->conns; c; c = c->next)
            if (c->reading) mt_conn_read_start(c);
    }
    uv_timer_init(srv->loop, &srv->drain);
    srv->drain.data = srv;
    srv->drain_started = mt_mono_ns();
    srv->listeners_open++;
    uv_timer_start(&srv->drain, on_drain_tick, 0, DRAIN_TICK_MS);
}

/* UDP lives here too: it is small. One datagram is one batch of lines. */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

typedef struct udp_ctx {
    mt_server *srv;
    mt_batch *b;
} udp_ctx;

static int udp_line(void *ud, const mt_lp_line *l)
{
    udp_ctx *x = ud;
    int rc = mt_ingest_line(x->b, l, x->srv->cache, NULL);
    if (rc == -ENOMEM) return rc;
    x->srv->st.ingest.lines_ok++;
    return 0;
}

static void udp_error(void *ud, const mt_lp_error *e)
{
    udp_ctx *x = ud;
    mt_server_bad_line(x->srv, "udp", e);
}

static void on_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags)
{
    (void)addr, (void)flags;
    mt_server *srv = u->data;
    if (n > 0 && !srv->stopping) {
        srv->st.bytes_received[LISTENER_UDP] += (uint64_t)n;
        udp_ctx x = {srv, mt_batch_new()};
        if (x.b) {
            mt_lp_handler h = {udp_line, udp_error, &x};
            mt_lp_parse(srv->udp_lp, buf->base, (size_t)n, mt_now_ns(), &h);
            if (mt_batch_len(x.b) == 0 || mt_server_submit(srv, NULL, x.b)) mt_batch_free(x.b);
        }
    }
    free(buf->base);
}

static void udp_resume(mt_server *srv)
{
    uv_udp_recv_start(&srv->udp, udp_alloc, on_udp);
}

static int udp_start(mt_server *srv, const struct sockaddr *addr)
{
    mt_lp_options o = mt_lp_options_default();
    o.precision = srv->cfg.lp_precision;
    if (srv->cfg.limits.max_line_len) o.limits = srv->cfg.limits;
    int rc = mt_lp_parser_new(&o, &srv->udp_lp);
    if (rc) return rc;
    uv_udp_init(srv->loop, &srv->udp);
    srv->udp.data = srv;
    srv->udp_on = true;
    srv->listeners_open++;
    rc = uv_udp_bind(&srv->udp, addr, 0);
    if (!rc) rc = uv_udp_recv_start(&srv->udp, udp_alloc, on_udp);
    return rc;
}
