/*
 * mt_server.c — listeners, connections, the completion queue and
 * back-pressure (contract in mt_ingest.h).
 *
 * Memory: mem_budget covers the batches in flight and the HTTP bodies held
 * (mt_ingest_body_take). Over it, batches pause every listener (the writer
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
#include "mt_ingest_int.h"

#define READ_BUF       (64 * 1024)
#define DRAIN_TICK_MS  100   /* at stop, how often open connections are looked at */
#define DRAIN_QUIET_MS 1000  /* ... closed once quiet this long */
#define DRAIN_MAX_MS   20000 /* ... and all closed after this long (metrond gives up at 30 s) */
#define SWEEP_MS       250   /* how often HTTP header and body deadlines are checked */

mt_ingest_config mt_ingest_config_default(void)
{
    return (mt_ingest_config){
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

const mt_ingest_stats *mt_ingest_stats_get(const mt_ingest *ing)
{
    return &ing->st;
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

void mt_ingest_bad_line(mt_ingest *ing, const char *peer, const mt_lp_error *e)
{
    ing->st.lines_rejected[e->code]++;
    char why[2 * sizeof e->reason];
    size_t o = 0;
    for (const char *p = e->reason; *p && o + 2 < sizeof why; p++) { /* logfmt quoting */
        if (*p == '"' || *p == '\\') why[o++] = '\\';
        why[o++] = *p;
    }
    why[o] = '\0';
    mt_log_limited(&ing->bad_line_log, 5, MT_LOG_WARN,
                   "msg=\"rejected line\" peer=%s line=%llu col=%u reason=\"%s\"", peer,
                   (unsigned long long)e->lineno, e->col, why);
}

/* ---- back-pressure ----------------------------------------------------------- */

static void pause_all(mt_ingest *ing)
{
    if (ing->paused) return;
    ing->paused = true;
    ing->st.pauses++;
    for (mt_conn *c = ing->conns; c; c = c->next) uv_read_stop((uv_stream_t *)&c->tcp);
    if (ing->udp_on) uv_udp_recv_stop(&ing->udp);
    mt_log(MT_LOG_WARN, "msg=\"writer behind: reading paused\" inflight_bytes=%llu",
           (unsigned long long)ing->st.inflight_bytes);
}

static void udp_resume(mt_ingest *ing);

static void resume_all(mt_ingest *ing)
{
    if (!ing->paused) return;
    ing->paused = false;
    for (mt_conn *c = ing->conns; c; c = c->next)
        if (c->reading) mt_conn_read_start(c);
    if (ing->udp_on) udp_resume(ing);
}

/* ---- completions ------------------------------------------------------------- */

/* Writer thread: queue the job and wake the loop. */
static void on_written(void *ud, const mt_write_result *res, mt_batch *b)
{
    (void)b;
    mt_job *job = ud;
    job->res = *res;
    mt_ingest *ing = job->ing;
    pthread_mutex_lock(&ing->dlock);
    job->next = NULL;
    if (ing->done_tail)
        ing->done_tail->next = job;
    else
        ing->done_head = job;
    ing->done_tail = job;
    pthread_mutex_unlock(&ing->dlock);
    uv_async_send(&ing->async);
}

static void maybe_finish_stop(mt_ingest *ing);

/* Loop: hand each completed job to its owner. */
static void on_async(uv_async_t *a)
{
    mt_ingest *ing = a->data;
    pthread_mutex_lock(&ing->dlock);
    mt_job *list = ing->done_head;
    ing->done_head = ing->done_tail = NULL;
    pthread_mutex_unlock(&ing->dlock);
    while (list) {
        mt_job *job = list;
        list = list->next;
        ing->jobs--;
        ing->st.inflight_bytes -= job->bytes;
        ing->st.points_ok += job->res.accepted;
        ing->st.points_rejected += job->res.rejected;
        if (job->res.rc) {
            ing->st.write_errors++;
            mt_log(MT_LOG_ERROR, "msg=\"write failed\" err=%s", mt_strerror(job->res.rc));
        }
        if (job->conn && job->conn->kind == LISTENER_HTTP)
            mt_http_job_done(job);
        else
            mt_tcp_job_done(job);
    }
    if (ing->paused && ing->st.inflight_bytes <= ing->cfg.mem_budget / 4 * 3) resume_all(ing);
    maybe_finish_stop(ing);
}

bool mt_ingest_body_take(mt_ingest *ing, size_t held, size_t n)
{
    if (ing->st.body_bytes > held &&
        ing->st.inflight_bytes + ing->st.body_bytes + n > ing->cfg.mem_budget)
        return false;
    ing->st.body_bytes += n;
    return true;
}

void mt_ingest_body_give(mt_ingest *ing, size_t n)
{
    ing->st.body_bytes -= n;
}

int mt_ingest_submit(mt_ingest *ing, mt_conn *conn, mt_batch *b)
{
    mt_job *job = calloc(1, sizeof *job);
    if (!job) return -ENOMEM;
    job->ing = ing;
    job->b = b;
    job->conn = conn;
    job->bytes = mt_batch_bytes(b) + sizeof *job;
    int rc = mt_engine_submit(ing->eng, b, on_written, job);
    if (rc) {
        free(job);
        return rc;
    }
    ing->jobs++;
    if (conn) conn->pending++;
    ing->st.inflight_bytes += job->bytes;
    if (ing->st.inflight_bytes > ing->cfg.mem_budget) pause_all(ing);
    return MT_OK;
}

void mt_ingest_work_begin(mt_ingest *ing)
{
    ing->jobs++;
}

void mt_ingest_work_done(mt_ingest *ing)
{
    ing->jobs--;
    maybe_finish_stop(ing);
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
    mt_ingest *ing = ((mt_conn *)h->data)->ing;
    if (!ing->readbuf_busy && ing->readbuf) {
        ing->readbuf_busy = true;
        *buf = uv_buf_init(ing->readbuf, READ_BUF);
        return;
    }
    buf->base = malloc(READ_BUF); /* not expected: a read inside a read callback */
    buf->len = buf->base ? READ_BUF : 0;
}

void mt_conn_read_done(mt_conn *c, const uv_buf_t *buf)
{
    if (buf->base == c->ing->readbuf)
        c->ing->readbuf_busy = false;
    else
        free(buf->base);
}

static void on_idle(uv_timer_t *t)
{
    mt_conn *c = t->data;
    c->ing->st.connections_idle_closed++;
    mt_log(MT_LOG_INFO, "msg=\"idle connection closed\" peer=%s", c->peer);
    mt_conn_close(c);
}

void mt_conn_touch(mt_conn *c)
{
    c->last_read = mt_mono_ns();
    if (c->ing->cfg.idle_timeout_ms && !c->closing)
        uv_timer_start(&c->idle, on_idle, c->ing->cfg.idle_timeout_ms, 0);
}

void mt_conn_read_start(mt_conn *c)
{
    c->reading = true;
    if (c->closing || c->ing->paused) return;
    uv_read_start((uv_stream_t *)&c->tcp, mt_conn_alloc,
                  c->kind == LISTENER_HTTP ? mt_http_on_read : mt_tcp_on_read);
}

void mt_conn_read_stop(mt_conn *c)
{
    c->reading = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

mt_conn *mt_conn_new(mt_ingest *ing, int kind)
{
    mt_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ing = ing;
    c->kind = kind;
    uv_tcp_init(ing->loop, &c->tcp);
    uv_timer_init(ing->loop, &c->idle);
    c->tcp.data = c;
    c->idle.data = c;
    c->handles_open = 2;
    c->next = ing->conns;
    if (ing->conns) ing->conns->prev = c;
    ing->conns = c;
    return c;
}

static void conn_free(mt_conn *c)
{
    if (c->kind == LISTENER_HTTP)
        mt_http_free(c);
    else
        mt_tcp_free(c);
    mt_lp_parser_free(c->lp);
    free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    mt_conn *c = h->data;
    if (--c->handles_open == 0 && c->pending == 0) {
        mt_ingest *ing = c->ing;
        conn_free(c);
        maybe_finish_stop(ing);
    }
}

void mt_conn_close(mt_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    mt_ingest *ing = c->ing;
    if (c->bytes)
        mt_log(MT_LOG_DEBUG,
               "msg=\"connection closed\" peer=%s listener=%s bytes=%llu lines=%llu rejected=%llu",
               c->peer, c->kind == LISTENER_HTTP ? "http" : "tcp", (unsigned long long)c->bytes,
               (unsigned long long)c->lines, (unsigned long long)c->rejected);
    if (c->prev)
        c->prev->next = c->next;
    else
        ing->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    ing->st.connections_open--;
    ing->st.connections_open_by[c->kind]--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->idle, on_conn_closed);
}

/* A job of c came back: free c if it was only waiting for that. */
void mt_conn_job_released(mt_conn *c)
{
    if (--c->pending == 0 && c->closing && c->handles_open == 0) {
        mt_ingest *ing = c->ing;
        conn_free(c);
        maybe_finish_stop(ing);
    }
}

/* What evict_stalled found. */
enum { EVICTED, ONLY_FRESH, NONE_IDLE };

/*
 * Make room for a new HTTP connection: close the one that has gone longest
 * without finishing a request — idle since its last answer, or reading a
 * request begun longest ago — never one being answered, and never one no
 * poll has read yet (accepted in this or the previous loop iteration: it
 * joins epoll only at the next poll, and the listener's burst may come
 * first in that poll).
 */
static int evict_stalled(mt_ingest *ing)
{
    mt_conn *victim = NULL;
    int64_t oldest = INT64_MAX;
    bool fresh = false;
    for (mt_conn *c = ing->conns; c; c = c->next) {
        if (c->kind != LISTENER_HTTP || c->closing || c->stage == HTTP_BUSY || c->pending) continue;
        if (c->accept_iter + 2 > ing->iter) {
            fresh = true;
            continue;
        }
        int64_t since = c->stage == HTTP_IDLE ? c->idle_since : c->req_start;
        if (since < oldest) oldest = since, victim = c;
    }
    if (!victim) return fresh ? ONLY_FRESH : NONE_IDLE;
    ing->st.connections_evicted++;
    mt_log_limited(&ing->conn_log, 5, MT_LOG_WARN,
                   "msg=\"HTTP connection limit reached: the most stalled connection closed\" "
                   "peer=%s stage=%s stalled_ms=%lld max_conns_http=%zu",
                   victim->peer,
                   victim->stage == HTTP_IDLE   ? "idle"
                   : victim->stage == HTTP_BODY ? "body"
                                                : "headers",
                   (long long)((mt_mono_ns() - oldest) / 1000000), ing->cfg.max_conns_http);
    mt_conn_close(victim);
    return EVICTED;
}

/* True when a new connection of kind finds its listener's limit (or the total) reached. */
static bool at_limit(const mt_ingest *ing, int kind)
{
    size_t lim = kind == LISTENER_HTTP ? ing->cfg.max_conns_http : ing->cfg.max_conns_tcp;
    return ing->st.connections_open_by[kind] >= lim ||
           (ing->cfg.max_conns && ing->st.connections_open >= ing->cfg.max_conns);
}

static void on_connection(uv_stream_t *server, int status)
{
    mt_ingest *ing = server->data;
    int kind = server == (uv_stream_t *)&ing->http_listener ? LISTENER_HTTP : LISTENER_TCP;
    if (status < 0 || ing->stopping) return;
    /* room is made before the accept, so the count never passes the limit */
    bool full = at_limit(ing, kind);
    if (full && kind == LISTENER_HTTP) {
        int found = evict_stalled(ing);
        if (found == ONLY_FRESH) {
            /* not accepted: libuv stops polling the listener until uv_accept (on_check) */
            ing->accept_deferred = true;
            ing->st.connections_deferred++;
            return;
        }
        if (found == EVICTED) full = at_limit(ing, kind);
    }
    mt_conn *c = mt_conn_new(ing, kind);
    if (!c) return;
    c->accept_iter = ing->iter;
    ing->st.connections_open++;
    ing->st.connections_open_by[kind]++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        mt_conn_close(c);
        return;
    }
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
        ing->st.connections_refused++;
        mt_log_limited(&ing->conn_log, 5, MT_LOG_WARN,
                       "msg=\"connection refused: limit reached\" peer=%s listener=%s "
                       "max_conns_%s=%zu max_conns=%zu",
                       c->peer, kind == LISTENER_HTTP ? "http" : "tcp",
                       kind == LISTENER_HTTP ? "http" : "tcp",
                       kind == LISTENER_HTTP ? ing->cfg.max_conns_http : ing->cfg.max_conns_tcp,
                       ing->cfg.max_conns);
        mt_conn_close(c);
        return;
    }
    ing->st.connections_total++;
    int rc = MT_OK;
    if (kind == LISTENER_HTTP) {
        rc = mt_http_init(c);
    } else {
        mt_lp_options o = mt_lp_options_default();
        o.precision = ing->cfg.lp_precision;
        if (ing->cfg.limits.max_line_len) o.limits = ing->cfg.limits;
        rc = mt_lp_parser_new(&o, &c->lp);
    }
    if (rc) {
        mt_conn_close(c);
        return;
    }
    mt_conn_touch(c);
    mt_conn_read_start(c);
}

static int listen_tcp(mt_ingest *ing, uv_tcp_t *h, const char *addr, bool *on)
{
    if (!addr || !*addr || strcmp(addr, "off") == 0) return MT_OK;
    struct sockaddr_storage sa;
    int rc = mt_parse_addr(addr, &sa);
    if (rc) {
        mt_log(MT_LOG_ERROR, "msg=\"bad listen address\" addr=%s", addr);
        return MT_EINVAL;
    }
    uv_tcp_init(ing->loop, h);
    h->data = ing;
    *on = true;
    ing->listeners_open++;
    rc = uv_tcp_bind(h, (struct sockaddr *)&sa, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)h, 511, on_connection);
    if (rc) mt_log(MT_LOG_ERROR, "msg=\"cannot listen\" addr=%s err=%s", addr, uv_strerror(rc));
    return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
    mt_ingest *ing = h->data;
    ing->listeners_open--;
    maybe_finish_stop(ing);
}

/* After each poll: count the iteration, then retry an HTTP accept that waited for room. */
static void on_check(uv_check_t *h)
{
    mt_ingest *ing = h->data;
    ing->iter++;
    if (ing->accept_deferred && ing->http_on && !ing->stopping) {
        ing->accept_deferred = false;
        on_connection((uv_stream_t *)&ing->http_listener, 0);
    }
}

/* Close HTTP connections whose headers or body are late (mt_http_check_deadline). */
static void on_sweep(uv_timer_t *t)
{
    mt_ingest *ing = t->data;
    int64_t now = mt_mono_ns(), since = ing->last_sweep ? now - ing->last_sweep : 0;
    ing->last_sweep = now;
    mt_conn *c = ing->conns;
    while (c) {
        mt_conn *next = c->next; /* c may close: its successor is still linked */
        if (c->kind != LISTENER_HTTP || c->closing) {
        } else if (ing->paused) { /* late because we are not reading: the clock stops */
            c->req_start += since;
            c->body_start += since;
        } else {
            mt_http_check_deadline(c, now);
        }
        c = next;
    }
}

static void close_listeners(mt_ingest *ing)
{
    if (ing->tcp_on) uv_close((uv_handle_t *)&ing->tcp_listener, on_listener_closed);
    if (ing->http_on) uv_close((uv_handle_t *)&ing->http_listener, on_listener_closed);
    if (ing->udp_on) uv_close((uv_handle_t *)&ing->udp, on_listener_closed);
    if (ing->sweep_on) uv_close((uv_handle_t *)&ing->sweep, on_listener_closed);
    if (ing->check_on) uv_close((uv_handle_t *)&ing->check, on_listener_closed);
    ing->tcp_on = ing->http_on = ing->udp_on = ing->sweep_on = ing->check_on = false;
}

static void on_async_closed(uv_handle_t *h)
{
    mt_ingest *ing = h->data;
    void (*cb)(void *) = ing->stop_cb;
    void *ud = ing->stop_ud;
    mt_lp_parser_free(ing->udp_lp);
    mt_series_cache_free(ing->cache);
    free(ing->readbuf);
    mt_auth_free(ing->auth);
    pthread_mutex_destroy(&ing->dlock);
    free(ing);
    if (cb) cb(ud);
}

static void maybe_finish_stop(mt_ingest *ing)
{
    if (!ing->stopping || ing->jobs || ing->conns || ing->listeners_open || !ing->async_on) return;
    ing->async_on = false;
    uv_close((uv_handle_t *)&ing->async, on_async_closed);
}

int mt_ingest_set_tokens(mt_ingest *ing, mt_ingest_tokens *t)
{
    if (!ing->auth || !t) return MT_EINVAL;
    mt_auth_free(ing->auth); /* no reader: checks run on this thread and copy what they need */
    ing->auth = t;
    return MT_OK;
}

int mt_ingest_start(uv_loop_t *loop, mt_engine *eng, const mt_ingest_config *cfg, mt_ingest **out)
{
    mt_ingest *ing = calloc(1, sizeof *ing);
    if (!ing) return -ENOMEM;
    ing->loop = loop;
    ing->eng = eng;
    ing->cfg = *cfg;
    mt_ingest_config d = mt_ingest_config_default();
    if (!ing->cfg.max_body) ing->cfg.max_body = d.max_body;
    if (!ing->cfg.default_db || !*ing->cfg.default_db) ing->cfg.default_db = d.default_db;
    if (!ing->cfg.max_conns_http) ing->cfg.max_conns_http = d.max_conns_http;
    if (!ing->cfg.max_conns_tcp) ing->cfg.max_conns_tcp = d.max_conns_tcp;
    if (!ing->cfg.body_min_rate) ing->cfg.body_min_rate = d.body_min_rate;
    if (!ing->cfg.mem_budget) ing->cfg.mem_budget = d.mem_budget;
    ing->started_ns = mt_mono_ns();
    pthread_mutex_init(&ing->dlock, NULL);
    uv_async_init(loop, &ing->async, on_async);
    ing->async.data = ing;
    ing->async_on = true;
    ing->readbuf = malloc(READ_BUF);
    int rc = ing->readbuf ? mt_series_cache_new(eng, 0, &ing->cache) : -ENOMEM;
    if (!rc && cfg->tokens_file && *cfg->tokens_file) {
        char err[512] = "";
        rc = mt_auth_load(cfg->tokens_file, &ing->auth, err, sizeof err);
        if (rc) {
            mt_log(MT_LOG_ERROR, "msg=\"cannot load tokens\" file=%s err=\"%s\"", cfg->tokens_file,
                   err[0] ? err : mt_strerror(rc));
            rc = MT_EINVAL;
        } else {
            /* raw line protocol cannot carry a token: with tokens, only HTTP writes */
            if ((ing->cfg.lp_tcp && strcmp(ing->cfg.lp_tcp, "off")) ||
                (ing->cfg.lp_udp && strcmp(ing->cfg.lp_udp, "off")))
                mt_log(MT_LOG_WARN,
                       "msg=\"tokens configured: TCP and UDP line protocol are off\" "
                       "tokens=%zu",
                       mt_auth_count(ing->auth));
            ing->cfg.lp_tcp = ing->cfg.lp_udp = "off";
            cfg = &ing->cfg;
        }
    }
    if (!rc) rc = listen_tcp(ing, &ing->tcp_listener, cfg->lp_tcp, &ing->tcp_on);
    if (!rc) rc = listen_tcp(ing, &ing->http_listener, cfg->http, &ing->http_on);
    if (!rc && ing->http_on) {
        uv_check_init(loop, &ing->check);
        ing->check.data = ing;
        ing->check_on = true;
        ing->listeners_open++;
        uv_check_start(&ing->check, on_check);
        uv_unref((uv_handle_t *)&ing->check); /* counts iterations; keeps no loop alive */
    }
    if (!rc && ing->http_on && (ing->cfg.header_timeout_ms || ing->cfg.body_timeout_ms)) {
        uv_timer_init(loop, &ing->sweep);
        ing->sweep.data = ing;
        ing->sweep_on = true;
        ing->listeners_open++;
        uv_timer_start(&ing->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    }
    if (!rc && cfg->lp_udp && *cfg->lp_udp && strcmp(cfg->lp_udp, "off") != 0) {
        struct sockaddr_storage sa;
        rc = mt_parse_addr(cfg->lp_udp, &sa) ? MT_EINVAL : MT_OK;
        if (!rc) rc = mt_udp_start(ing, (struct sockaddr *)&sa);
        if (rc) mt_log(MT_LOG_ERROR, "msg=\"cannot listen\" addr=%s (udp)", cfg->lp_udp);
    }
    if (rc) {
        mt_ingest_stop(ing, NULL, NULL);
        return rc;
    }
    *out = ing;
    return MT_OK;
}

/*
 * While stopping: a connection is closed once it has been quiet for
 * DRAIN_QUIET_MS (a sender that finished, or one that keeps the socket open
 * without sending), and every connection after DRAIN_MAX_MS.
 */
static void on_drain_tick(uv_timer_t *t)
{
    mt_ingest *ing = t->data;
    int64_t now = mt_mono_ns();
    bool all = now - ing->drain_started > (int64_t)DRAIN_MAX_MS * 1000000;
    if (ing->paused && !all) { /* quiet because we are not reading: wait for the writer */
        for (mt_conn *c = ing->conns; c; c = c->next) c->last_read = now;
        return;
    }
    mt_conn *c = ing->conns;
    while (c) {
        mt_conn *next = c->next;
        if (all || now - c->last_read > (int64_t)DRAIN_QUIET_MS * 1000000) mt_conn_close(c);
        c = next;
    }
    if (!ing->conns) {
        uv_timer_stop(&ing->drain);
        uv_close((uv_handle_t *)&ing->drain, on_listener_closed);
    }
}

void mt_ingest_stop(mt_ingest *ing, void (*done)(void *ud), void *ud)
{
    if (ing->stopping) return;
    ing->stopping = true;
    ing->stop_cb = done;
    ing->stop_ud = ud;
    close_listeners(ing);
    /* Lines already sent over TCP are still in the socket buffers: keep reading them
       (connections close at EOF) until each connection is quiet (on_drain_tick). */
    if (ing->paused) {
        ing->paused = false;
        for (mt_conn *c = ing->conns; c; c = c->next)
            if (c->reading) mt_conn_read_start(c);
    }
    uv_timer_init(ing->loop, &ing->drain);
    ing->drain.data = ing;
    ing->drain_started = mt_mono_ns();
    ing->listeners_open++;
    uv_timer_start(&ing->drain, on_drain_tick, 0, DRAIN_TICK_MS);
}

/* UDP lives here too: it is small. One datagram is one batch of lines. */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

typedef struct udp_ctx {
    mt_ingest *ing;
    mt_batch *b;
} udp_ctx;

static int udp_line(void *ud, const mt_lp_line *l)
{
    udp_ctx *x = ud;
    int rc = mt_ingest_line(x->b, l, x->ing->cache, NULL);
    if (rc == -ENOMEM) return rc;
    x->ing->st.lines_ok++;
    return 0;
}

static void udp_error(void *ud, const mt_lp_error *e)
{
    udp_ctx *x = ud;
    mt_ingest_bad_line(x->ing, "udp", e);
}

static void on_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags)
{
    (void)addr, (void)flags;
    mt_ingest *ing = u->data;
    if (n > 0 && !ing->stopping) {
        ing->st.bytes_received[LISTENER_UDP] += (uint64_t)n;
        udp_ctx x = {ing, mt_batch_new()};
        if (x.b) {
            mt_lp_handler h = {udp_line, udp_error, &x};
            mt_lp_parse(ing->udp_lp, buf->base, (size_t)n, mt_now_ns(), &h);
            if (mt_batch_len(x.b) == 0 || mt_ingest_submit(ing, NULL, x.b)) mt_batch_free(x.b);
        }
    }
    free(buf->base);
}

static void udp_resume(mt_ingest *ing)
{
    uv_udp_recv_start(&ing->udp, udp_alloc, on_udp);
}

int mt_udp_start(mt_ingest *ing, const struct sockaddr *addr)
{
    mt_lp_options o = mt_lp_options_default();
    o.precision = ing->cfg.lp_precision;
    if (ing->cfg.limits.max_line_len) o.limits = ing->cfg.limits;
    int rc = mt_lp_parser_new(&o, &ing->udp_lp);
    if (rc) return rc;
    uv_udp_init(ing->loop, &ing->udp);
    ing->udp.data = ing;
    ing->udp_on = true;
    ing->listeners_open++;
    rc = uv_udp_bind(&ing->udp, addr, 0);
    if (!rc) rc = uv_udp_recv_start(&ing->udp, udp_alloc, on_udp);
    return rc;
}
