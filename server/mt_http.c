/*
 * mt_http.c — the InfluxDB-compatible HTTP API, on libuv with Debian's
 * http-parser (libhttp-parser-dev: a small, well-kept request parser that
 * fits any event loop; no hand-written HTTP parsing here).
 *
 *   POST /write?db=&precision=n|u|ms|s|m|h        InfluxDB 1.x
 *   POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s   InfluxDB 2.x
 *   GET|HEAD /ping     204 with the version headers clients look for
 *   GET /health        JSON; 200 while writes are taken, else 503 with the reason (/ready: the
 * same) GET /metrics       Prometheus text format 0.0.4 GET /api/v1/query  select, from, to, step,
 * agg, by, field, format: docs/query.md GET /api/v1/rollup select, from, to, step, series, exact,
 * format: docs/query.md GET /api/v1/alerts all: docs/alerts.md
 *   GET|POST /api/v1/export  select, start, end, format=lp|csv: every point, streamed
 *                      (mt_export_http.c, docs/query.md)
 *   GET /federate      match[] (repeated), max_series: the latest sample of each matched series
 *                      in the Prometheus text format (query/mt_fed.h, docs/query.md)
 *   POST /api/v1/write Prometheus remote write 1.0: snappy + protobuf (mt_rw.h, docs/query.md)
 *   GET|POST /prometheus/api/v1/...  Prometheus' query API (mt_promapi.c)
 *
 * A write is answered 204 only after the engine committed its points
 * (DESIGN §4). Bad lines do not stop the good ones: the answer is then 400
 * with InfluxDB's JSON error text naming the first bad line and the number
 * dropped (clients match these strings to decide not to retry). Bodies may
 * be gzip-compressed; the limit applies after inflating. One request is
 * handled at a time per connection: reading stops until it is answered.
 * Every request is authorized on its headers (authorize_request), before
 * any of its body is read; "Expect: 100-continue" is answered then too.
 *
 * Memory, bounded before and after authorization: headers are never kept
 * (only the URL, MAX_URL, and the few header values read, each capped);
 * the parser refuses a header block over MAX_HEADER_BYTES (400). A body's
 * bytes count in mem_budget (mt_server_body_take): a known Content-Length
 * is taken whole once the headers are authorized, so the request is
 * refused before its body travels — 413 over max_body, 503 with
 * "Retry-After: 1" when the budget has no room — and a chunked body or a
 * gzip body's inflated bytes are taken as the buffer grows (503 the moment
 * one does not fit). We refuse rather than pause: a body holds its memory
 * until its last byte, so pausing bodies to save memory could stall them
 * all. A body is freed, and its bytes given back, as soon as its request
 * is parsed (a write's points then count as the batch in flight).
 *
 * Deadlines (the sweep in mt_server.c calls http_check_deadline, through
 * mt_http_ops):
 * headers within header_timeout_ms of the request's first byte (of the
 * accept, for a connection's first request); the body within
 * body_timeout_ms of the headers plus 1 s per body_min_rate bytes received.
 * A late request is answered 408 and its connection closed; a connection
 * that never sent a byte is just closed. A trickle of bytes no longer keeps
 * a connection forever; idle_timeout stays the limit for a keep-alive
 * connection silent between requests.
 */
#include <assert.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <strings.h>

#include "mt_auth.h"
#include "mt_buf.h"
#include "mt_fed.h"
#include "mt_influxql.h"
#include "mt_json.h"
#include "mt_qparse.h"
#include "mt_server_int.h"
#include "mt_query.h"
#include "mt_rollq.h"
#include "mt_rw.h"
#include "mt_time.h"

#define MAX_URL 8192
#define MAX_HEADER_BYTES                                                                           \
    (32 * 1024) /* request line and headers (http-parser's default: 80 KiB)                        \
                 */
#define MAX_HEADER_VAL 1024
#define VERSION        "1.8.10" /* the InfluxDB API version Metron answers as */

enum { H_NONE, H_ENCODING, H_AUTH, H_EXPECT };

/* Where a connection is in its request (deadlines, and whom to close at the limit). */
enum {
    HTTP_IDLE = 0, /* between requests (keep-alive): idle_timeout applies */
    HTTP_HEADERS,  /* reading a request's headers: header_timeout_ms from req_start */
    HTTP_BODY, /* reading its body: body_timeout_ms + body_got / body_min_rate from body_start */
    HTTP_BUSY, /* being answered: never closed to make room */
};

typedef struct http_state {
    http_parser parser;
    mt_conn *conn;
    int stage;          /* HTTP_IDLE ... HTTP_BUSY */
    int64_t req_start;  /* monotonic ns: the request's first byte (the accept, for the first) */
    int64_t body_start; /* monotonic ns: its headers were complete */
    int64_t idle_since; /* monotonic ns: the last answer went out (HTTP_IDLE) */
    uint64_t body_got;  /* body bytes received of the request */
    char url[MAX_URL];
    size_t url_len;
    int header;     /* which header the value being read belongs to */
    char field[32]; /* name of the header being read (truncated) */
    size_t field_len;
    bool field_done;
    char encoding[64];
    char auth[512];  /* the Authorization header */
    char expect[32]; /* the Expect header: "100-continue" asks leave to send the body */
    /* decided on the headers, before any body is read (authorize_request) */
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the credential's business_id, "*", or "" (no tokens) */
    int denied; /* 400, 401 or 403: answered on the headers, without reading the body */
    const char *denied_msg;
    char denied_buf[128]; /* denied_msg when it names a number */
    bool retry_after;     /* the answer says "Retry-After: 1" (503: no room for the body) */
    bool begun;           /* a byte of the current request arrived */
    char *body;
    size_t body_len, body_cap;
    size_t held;     /* bytes of this request's body counted in mem_budget (body, inflated) */
    size_t max_body; /* bytes of body kept (compressed bodies too) */
    bool too_large, over_budget, url_too_long, complete, close_after;
    char *rest; /* bytes read past a complete request (pipelining) */
    size_t rest_len;
    /* the write in flight */
    bool v2;
    uint64_t dropped;
    char first_error[1024]; /* "unable to parse '<line>': <reason>" */
} http_state;

static http_parser_settings settings;

/* ---- responses ------------------------------------------------------------------ */

typedef struct out_req {
    uv_write_t w;
    mt_conn *c;
    char *buf;  /* the headers, and the body unless it was given (owned) */
    char *body; /* a body given to respond_take (owned), or NULL */
} out_req;

static void after_response(mt_conn *c);

static void on_written(uv_write_t *w, int status)
{
    out_req *o = (out_req *)w;
    (void)status;
    mt_conn *c = o->c;
    free(o->buf);
    free(o->body);
    free(o);
    if (!c->closing) after_response(c);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

/*
 * Write status, headers and body. owned: body is malloc'd and the write frees it once sent, so a
 * large answer (a PromQL range) is not copied behind its headers; else body is copied.
 */
static void respond_any(mt_conn *c, int status, const char *ctype, const char *body, char *owned,
                        size_t blen)
{
    http_state *hs = c->http;
    mt_server *srv = c->srv;
    srv->st.http_requests[status / 100 < 6 ? status / 100 : 5]++;
    bool head = hs->parser.method == HTTP_HEAD;
    out_req *o = malloc(sizeof *o);
    char *buf = malloc(512 + (owned ? 0 : blen));
    if (!o || !buf) {
        free(o);
        free(buf);
        free(owned);
        mt_conn_close(c);
        return;
    }
    int n = snprintf(buf, 512,
                     "HTTP/1.1 %d %s\r\nX-Influxdb-Version: %s\r\nX-Influxdb-Build: OSS\r\n"
                     "Content-Length: %zu\r\n%s%s%s%s%s\r\n",
                     status, reason(status), VERSION, blen, ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "",
                     hs->close_after ? "Connection: close\r\n" : "",
                     hs->retry_after ? "Retry-After: 1\r\n" : "");
    assert(n > 0 && n < 512);
    if (blen && !head && !owned) memcpy(buf + n, body, blen);
    o->c = c;
    o->buf = buf;
    o->body = owned;
    uv_buf_t b[2] = {uv_buf_init(buf, (unsigned)(n + (head || owned ? 0 : (int)blen))),
                     uv_buf_init(owned, (unsigned)blen)};
    if (uv_write(&o->w, (uv_stream_t *)&c->tcp, b, owned && !head && blen ? 2 : 1, on_written)) {
        free(buf);
        free(owned);
        free(o);
        mt_conn_close(c);
    }
}

static void respond(mt_conn *c, int status, const char *ctype, const char *body, size_t blen)
{
    respond_any(c, status, ctype, body, NULL, blen);
}

void mt_http_respond_take(mt_conn *c, int status, const char *ctype, char *body, size_t blen)
{
    respond_any(c, status, ctype, NULL, body, blen);
}

void mt_http_respond(mt_conn *c, int status, const char *ctype, const char *body, size_t blen)
{
    respond(c, status, ctype, body, blen);
}

bool mt_http_closes_after(const mt_conn *c)
{
    return ((const http_state *)c->http)->close_after;
}

void mt_http_stream_done(mt_conn *c)
{
    if (!c->closing) after_response(c);
}

static void respond_error(mt_conn *c, int status, const char *msg)
{
    http_state *hs = c->http;
    char body[12288]; /* a message of 4 KiB, every byte escaped */
    size_t pos;
    if (hs->v2) {
        const char *code = status == 413   ? "request too large"
                           : status == 401 ? "unauthorized"
                           : status == 403 ? "forbidden"
                           : status == 503 ? "unavailable"
                           : status >= 500 ? "internal error"
                                           : "invalid";
        pos = (size_t)snprintf(body, sizeof body, "{\"code\":\"%s\",\"message\":\"", code);
    } else {
        pos = (size_t)snprintf(body, sizeof body, "{\"error\":\"");
    }
    pos = mt_json_escape(body, sizeof body - 3, pos, msg, strlen(msg));
    pos += (size_t)snprintf(body + pos, sizeof body - pos, "\"}");
    respond(c, status, "application/json", body, pos);
}

/* ---- request parsing ---------------------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_state *hs = p->data;
    if (hs->url_len + len >= MAX_URL) {
        hs->url_too_long = true;
        return 0;
    }
    memcpy(hs->url + hs->url_len, at, len);
    hs->url_len += len;
    hs->url[hs->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_state *hs = p->data;
    if (hs->field_done) hs->field_len = 0, hs->field_done = false;
    for (size_t i = 0; i < len && hs->field_len + 1 < sizeof hs->field; i++)
        hs->field[hs->field_len++] = (char)(at[i] | 0x20); /* lower case */
    hs->field[hs->field_len] = '\0';
    hs->header = H_NONE;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_state *hs = p->data;
    if (!hs->field_done) {
        hs->field_done = true;
        hs->header = strcmp(hs->field, "content-encoding") == 0 ? H_ENCODING
                     : strcmp(hs->field, "authorization") == 0  ? H_AUTH
                     : strcmp(hs->field, "expect") == 0         ? H_EXPECT
                                                                : H_NONE;
    }
    char *dst = hs->header == H_ENCODING ? hs->encoding
                : hs->header == H_AUTH   ? hs->auth
                : hs->header == H_EXPECT ? hs->expect
                                         : NULL;
    size_t cap = hs->header == H_ENCODING ? sizeof hs->encoding
                 : hs->header == H_AUTH   ? sizeof hs->auth
                                          : sizeof hs->expect;
    if (dst) {
        size_t cur = strlen(dst);
        size_t take = len < cap - 1 - cur ? len : cap - 1 - cur;
        memcpy(dst + cur, at, take);
        dst[cur + take] = '\0';
    }
    return 0;
}

/* Free the request's body and give its bytes back to mem_budget. */
static void body_release(mt_conn *c)
{
    http_state *hs = c->http;
    free(hs->body);
    hs->body = NULL;
    hs->body_len = hs->body_cap = 0;
    mt_server_body_give(c->srv, hs->held);
    hs->held = 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_state *hs = p->data;
    hs->body_got += len;
    if (hs->too_large || hs->over_budget || hs->body_len + len > hs->max_body) {
        hs->too_large = !hs->over_budget; /* keep parsing to the end of the request, keep nothing */
        return 0;
    }
    if (hs->body_len + len > hs->body_cap) {
        /* chunked (a Content-Length body was taken whole on its headers) */
        size_t cap = hs->body_cap ? hs->body_cap : 65536;
        while (cap < hs->body_len + len) cap *= 2;
        if (cap > hs->max_body) cap = hs->max_body; /* >= body_len + len, checked above */
        if (!mt_server_body_take(hs->conn->srv, hs->held, cap - hs->body_cap)) {
            hs->over_budget = true;
            return 0;
        }
        hs->held += cap - hs->body_cap;
        char *b = realloc(hs->body, cap);
        if (!b) {
            hs->too_large = true;
            return 0;
        }
        hs->body = b;
        hs->body_cap = cap;
    }
    memcpy(hs->body + hs->body_len, at, len);
    hs->body_len += len;
    return 0;
}

/* ---- authorization: one point for every request, on its headers ---------------------- */

static const char *query_param(const char *url, const char *name, char *out, size_t cap);

/* Who may ask for a path once tokens are configured. */
typedef enum need { NEED_NOTHING, NEED_TOKEN, NEED_SYSTEM_TOKEN } need;

static need path_need(const mt_server *srv, const char *url)
{
    size_t n = strcspn(url, "?");
#define IS(p) (n == sizeof(p) - 1 && memcmp(url, p, n) == 0)
    if (IS("/ping") || IS("/health") || IS("/ready")) return NEED_NOTHING;
    /* the daemon's own counters span every tenant */
    if (IS("/metrics")) return srv->cfg.metrics_public ? NEED_NOTHING : NEED_SYSTEM_TOKEN;
#undef IS
    return NEED_TOKEN; /* every other path, those added later and unknown ones included */
}

/*
 * The token a request presents, into tok (capacity cap), as InfluxDB takes
 * it: "Authorization: Token T" (2.x), "Bearer T", "Basic base64(user:T)"
 * (2.x's 1.x compatibility and 1.x clients given a username and password:
 * the password is the token), or the 1.x query parameters u=&p=T. False
 * when the request carries none that can be read.
 */
static bool presented_token(const http_state *hs, char *tok, size_t cap)
{
    const char *a = hs->auth;
    while (*a == ' ') a++;
    const char *t = NULL;
    if (!strncasecmp(a, "Token ", 6))
        t = a + 6;
    else if (!strncasecmp(a, "Bearer ", 7))
        t = a + 7;
    if (t) {
        while (*t == ' ') t++;
        size_t n = strcspn(t, " \t\r\n");
        if (!n || n >= cap) return false;
        memcpy(tok, t, n);
        tok[n] = '\0';
        return true;
    }
    if (!strncasecmp(a, "Basic ", 6)) {
        const char *b = a + 6;
        while (*b == ' ') b++;
        size_t n = strcspn(b, " \t\r\n");
        unsigned char plain[sizeof hs->auth];
        if (!n || n % 4 || n / 4 * 3 >= sizeof plain) return false;
        /* padding only at the end, at most two: DecodeBlock counts padded bytes as data */
        size_t pad = b[n - 1] == '=' ? (b[n - 2] == '=' ? 2 : 1) : 0;
        if (memchr(b, '=', n - pad)) return false;
        int len = EVP_DecodeBlock(plain, (const unsigned char *)b, (int)n);
        if (len < (int)pad) return false;
        len -= (int)pad;
        const unsigned char *colon = memchr(plain, ':', (size_t)len);
        if (!colon) return false;
        size_t pl = (size_t)len - (size_t)(colon + 1 - plain);
        if (!pl || pl >= cap || memchr(colon + 1, '\0', pl)) return false;
        memcpy(tok, colon + 1, pl);
        tok[pl] = '\0';
        OPENSSL_cleanse(plain, sizeof plain);
        return true;
    }
    return query_param(hs->url, "p", tok, cap) && *tok;
}

/*
 * Decide a request on its headers, before its body is read: sets
 * hs->tenant, or hs->denied (401: no or unknown token; 403: a tenant's
 * token on a path for system tokens) with the reason. Without a tokens
 * file every request is allowed and hs->tenant stays "".
 */
static void authorize_request(mt_conn *c)
{
    http_state *hs = c->http;
    mt_server *srv = c->srv;
    hs->tenant[0] = '\0';
    if (!srv->auth) return;
    need want = path_need(srv, hs->url);
    if (want == NEED_NOTHING) return;
    char tok[512];
    if (!presented_token(hs, tok, sizeof tok)) {
        hs->denied = 401;
        hs->denied_msg = "unable to parse authentication credentials";
    } else if (!mt_auth_check(srv->auth, tok, strlen(tok), hs->tenant)) {
        hs->denied = 401;
        hs->denied_msg = "authorization failed";
    } else if (want == NEED_SYSTEM_TOKEN && strcmp(hs->tenant, "*") != 0) {
        hs->denied = 403;
        hs->denied_msg = "forbidden: this path needs a system token";
    }
    OPENSSL_cleanse(tok, sizeof tok);
    if (hs->denied) {
        hs->tenant[0] = '\0';
        srv->st.http_unauthorized++;
    }
    assert(hs->denied || hs->tenant[0]); /* with tokens, an allowed request has its tenant */
}

/* The tenant a read is narrowed to: NULL for every tenant (no tokens, or a system token). */
static const char *read_tenant(const http_state *hs)
{
    return hs->tenant[0] && strcmp(hs->tenant, "*") != 0 ? hs->tenant : NULL;
}

static void on_continue_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows on the connection's next read or write */
    free(w);
}

static int on_headers_complete(http_parser *p)
{
    http_state *hs = p->data;
    mt_conn *c = hs->conn;
    mt_server *srv = c->srv;
    hs->stage = HTTP_BODY;
    hs->body_start = mt_mono_ns();
    if (hs->url_too_long) {
        hs->denied = 400; /* nothing to authorize it by: refused before its body */
        hs->denied_msg = "request URL too long";
    } else {
        authorize_request(c);
    }
    bool sized = p->content_length != ULLONG_MAX && !(p->flags & F_CHUNKED);
    if (!hs->denied && sized && p->content_length > hs->max_body) {
        srv->st.http_bodies_too_large++;
        hs->denied = 413;
        snprintf(hs->denied_buf, sizeof hs->denied_buf,
                 "request body is too large (limit %zu bytes)", hs->max_body);
        hs->denied_msg = hs->denied_buf;
    } else if (!hs->denied && sized && p->content_length > 0) {
        /* the whole body is taken now: admitted bodies always finish, and a refused one is
           refused before it travels (curl's Expect: 100-continue never sends it) */
        size_t want = (size_t)p->content_length;
        if (mt_server_body_take(srv, 0, want)) {
            hs->held = want;
            /* exact size: pages are touched only as bytes arrive */
            if ((hs->body = malloc(want))) hs->body_cap = want;
        }
        if (!hs->body) {
            srv->st.http_bodies_refused++;
            hs->denied = 503;
            hs->retry_after = true;
            snprintf(hs->denied_buf, sizeof hs->denied_buf,
                     "server busy: request bodies are at mem_budget (%zu bytes); retry later",
                     srv->cfg.mem_budget);
            hs->denied_msg = hs->denied_buf;
        }
    }
    if (hs->denied) {
        http_parser_pause(p, 1); /* the body is never read */
    } else if (!strcasecmp(hs->expect, "100-continue") && p->content_length > 0 &&
               p->content_length != ULLONG_MAX) {
        /* curl and libcurl ask before sending bodies over 1 MB and wait 1 s for leave */
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_write_t *w = malloc(sizeof *w);
        uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
        if (w && uv_write(w, (uv_stream_t *)&hs->conn->tcp, &b, 1, on_continue_written)) free(w);
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_state *hs = p->data;
    hs->complete = true;
    hs->stage = HTTP_BUSY;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_state *hs = p->data;
    if (hs->stage == HTTP_IDLE) hs->req_start = mt_mono_ns(); /* else the accept: first request */
    hs->stage = HTTP_HEADERS;
    hs->body_got = 0;
    hs->begun = true;
    hs->retry_after = false;
    hs->url_len = 0;
    hs->url[0] = '\0';
    hs->encoding[0] = '\0';
    hs->auth[0] = '\0';
    hs->expect[0] = '\0';
    hs->field_len = 0;
    hs->field_done = false;
    hs->body_len = 0;
    hs->too_large = hs->over_budget = hs->url_too_long = hs->complete = false;
    hs->v2 = false;
    hs->tenant[0] = '\0';
    hs->denied = 0;
    hs->denied_msg = NULL;
    hs->dropped = 0;
    hs->first_error[0] = '\0';
    return 0;
}

static int http_init(mt_conn *c)
{
    http_state *hs = calloc(1, sizeof *hs);
    if (!hs) return -ENOMEM;
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    http_parser_set_max_header_size(MAX_HEADER_BYTES); /* process-wide: the same for all */
    http_parser_init(&hs->parser, HTTP_REQUEST);
    hs->parser.data = hs;
    hs->conn = c;
    hs->max_body = c->srv->cfg.max_body;
    c->http = hs;
    hs->stage = HTTP_HEADERS; /* the first request's header deadline runs from the accept */
    hs->req_start = mt_mono_ns();
    return MT_OK;
}

/* Answer 408 and close c if its headers or body missed their deadline. */
static void http_check_deadline(mt_conn *c, int64_t now)
{
    http_state *hs = c->http;
    mt_server *srv = c->srv;
    const mt_server_config *cfg = &srv->cfg;
    const char *what = NULL;
    int64_t took = 0;
    if (hs->stage == HTTP_HEADERS && cfg->header_timeout_ms &&
        (took = now - hs->req_start) > (int64_t)cfg->header_timeout_ms * 1000000) {
        what = "headers";
        srv->st.http_header_timeouts++;
    } else if (hs->stage == HTTP_BODY && cfg->body_timeout_ms &&
               (took = now - hs->body_start) >
                   (int64_t)cfg->body_timeout_ms * 1000000 +
                       (int64_t)(hs->body_got * 1000000000.0 / (double)cfg->body_min_rate)) {
        what = "body";
        srv->st.http_body_timeouts++;
    }
    if (!what) return;
    mt_log_limited(&srv->conn_log, 5, MT_LOG_WARN,
                   "msg=\"request too slow: connection closed\" peer=%s stage=%s took_ms=%lld "
                   "body_bytes=%llu",
                   c->peer, what, (long long)(took / 1000000), (unsigned long long)hs->body_got);
    mt_conn_read_stop(c);
    hs->stage = HTTP_BUSY;
    body_release(c);
    if (!hs->begun) { /* not a byte of a request: nobody to answer */
        mt_conn_close(c);
        return;
    }
    hs->close_after = true;
    hs->v2 = strncmp(hs->url, "/api/v2/", 8) == 0;
    char msg[160];
    if (*what == 'h')
        snprintf(msg, sizeof msg, "request headers too slow (limit %llu ms)",
                 (unsigned long long)cfg->header_timeout_ms);
    else
        snprintf(msg, sizeof msg, "request body too slow (limit %llu ms plus 1 s per %llu bytes)",
                 (unsigned long long)cfg->body_timeout_ms, (unsigned long long)cfg->body_min_rate);
    respond_error(c, 408, msg);
}

static void http_free(mt_conn *c)
{
    http_state *hs = c->http;
    if (!hs) return;
    body_release(c);
    free(hs->rest);
    free(hs);
    c->http = NULL;
    mt_batch_free(c->batch);
}

/* ---- handlers -------------------------------------------------------------------------- */

/* The value of query parameter name in the URL, percent-decoded, or NULL. */
static const char *query_param(const char *url, const char *name, char *out, size_t cap)
{
    const char *q = strchr(url, '?');
    size_t nl = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&')) {
        p++;
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t o = 0;
            while (*v && *v != '&' && o + 1 < cap) {
                if (*v == '%' && v[1] && v[2]) {
                    char hex[3] = {v[1], v[2], 0};
                    out[o++] = (char)strtol(hex, NULL, 16);
                    v += 3;
                } else {
                    out[o++] = *v == '+' ? ' ' : *v;
                    v++;
                }
            }
            out[o] = '\0';
            return out;
        }
    }
    return NULL;
}

/*
 * Inflate a gzip body in place of hs->body, its output counted in mem_budget
 * as it grows: 0, 1 when over max (too_large set), 2 when the budget has no
 * room (over_budget set), -1 when broken.
 */
static int gunzip(mt_conn *c, http_state *hs, size_t max)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return -1;
    size_t cap = hs->body_len * 4 + 4096, len = 0;
    if (cap > max + 1) cap = max + 1;
    size_t taken = 0; /* of mem_budget, for out */
    char *out = NULL;
    if (mt_server_body_take(c->srv, hs->held, cap))
        taken = cap, out = malloc(cap);
    else
        hs->over_budget = true;
    int rc = out ? Z_OK : Z_MEM_ERROR;
    z.next_in = (Bytef *)hs->body;
    z.avail_in = (uInt)hs->body_len;
    while (rc == Z_OK) {
        if (len == cap) {
            if (cap > max) {
                hs->too_large = true;
                break;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            if (!mt_server_body_take(c->srv, hs->held + taken, ncap - cap)) {
                hs->over_budget = true;
                break;
            }
            taken += ncap - cap;
            char *n = realloc(out, ncap);
            if (!n) {
                rc = Z_MEM_ERROR;
                break;
            }
            out = n;
            cap = ncap;
        }
        z.next_out = (Bytef *)out + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    }
    inflateEnd(&z);
    if (len > max) hs->too_large = true;
    if (hs->too_large || hs->over_budget || rc != Z_STREAM_END) {
        free(out);
        mt_server_body_give(c->srv, taken);
        return hs->too_large ? 1 : hs->over_budget ? 2 : -1;
    }
    body_release(c); /* the compressed bytes */
    hs->body = out;
    hs->body_len = len;
    hs->body_cap = cap;
    hs->held = taken;
    return 0;
}

typedef struct write_ctx {
    mt_conn *c;
    http_state *hs;
    int64_t lines;
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the token's business_id; empty: no tokens */
    uint64_t forbidden_line;             /* first line written for another tenant, or 0 */
    const char *db;                      /* the db tag its points get; NULL: the default db */
} write_ctx;

static int write_line(void *ud, const mt_lp_line *l)
{
    write_ctx *w = ud;
    mt_conn *c = w->c;
    int rc = mt_server_take_line(c, l, w->tenant[0] ? w->tenant : NULL, w->db);
    if (rc == -ENOMEM) return rc;
    if (rc == MT_ECONFLICT) {
        if (!w->forbidden_line) w->forbidden_line = l->lineno;
        return 0;
    }
    if (rc) {
        if (!w->hs->dropped++)
            snprintf(w->hs->first_error, sizeof w->hs->first_error,
                     "unable to parse '%.*s': series key too long",
                     (int)(l->raw.len > 512 ? 512 : l->raw.len), l->raw.ptr);
        return 0;
    }
    w->lines++;
    return 0;
}

static void write_error(void *ud, const mt_lp_error *e)
{
    write_ctx *w = ud;
    mt_server_bad_line(w->c->srv, w->c->peer, e);
    if (!w->hs->dropped++)
        snprintf(w->hs->first_error, sizeof w->hs->first_error,
                 "unable to parse '%.*s': %s (line %llu col %u)",
                 (int)(e->raw.len > 512 ? 512 : e->raw.len), e->raw.ptr, e->reason,
                 (unsigned long long)e->lineno, e->col);
}

/* Answer a write whose points are all settled. */
static void finish_write(mt_conn *c, const mt_write_result *res)
{
    http_state *hs = c->http;
    char msg[1600];
    if (res && res->rc) {
        /* a full disk is the client's to retry later (nothing was written); a failed engine is
           for the operator (fail-stop); both say why, as /health does */
        char why[1024];
        if (mt_engine_health(c->srv->eng, why, sizeof why) == MT_OK)
            snprintf(why, sizeof why, "%s", mt_strerror(res->rc));
        snprintf(msg, sizeof msg, "write failed: %s", why);
        respond_error(c, res->rc == -ENOSPC ? 507 : res->rc == MT_ECLOSED ? 503 : 500, msg);
        return;
    }
    if (hs->dropped) {
        if (hs->v2)
            snprintf(msg, sizeof msg, "%s dropped=%llu", hs->first_error,
                     (unsigned long long)hs->dropped);
        else
            snprintf(msg, sizeof msg, "partial write: %s dropped=%llu", hs->first_error,
                     (unsigned long long)hs->dropped);
        respond_error(c, 400, msg);
        return;
    }
    respond(c, 204, NULL, NULL, 0);
}

/* Hand the connection's batch to the engine (answered when its job is back), or answer now. */
static void submit_batch(mt_conn *c)
{
    if (!c->batch || mt_batch_len(c->batch) == 0) {
        finish_write(c, NULL);
        return;
    }
    int rc = mt_server_submit(c->srv, c, c->batch);
    if (rc) {
        mt_write_result r = {.rc = rc};
        mt_batch_reset(c->batch);
        finish_write(c, &r);
        return;
    }
    c->batch = NULL; /* the engine's until the job comes back */
}

static void handle_write(mt_conn *c, bool v2)
{
    http_state *hs = c->http;
    mt_server *srv = c->srv;
    hs->v2 = v2;
    if (hs->parser.method != HTTP_POST) {
        respond_error(c, 405, "write needs POST");
        return;
    }
    char prec[16], db[256];
    mt_precision precision = MT_PREC_NS;
    if (query_param(hs->url, "precision", prec, sizeof prec)) {
        bool ok = mt_precision_parse(prec, strlen(prec), &precision);
        if (ok && v2 && (precision == MT_PREC_M || precision == MT_PREC_H)) ok = false;
        if (!ok) {
            respond_error(c, 400, "invalid precision");
            return;
        }
    }
    if (!query_param(hs->url, v2 ? "bucket" : "db", db, sizeof db) || !db[0]) {
        respond_error(c, 400, v2 ? "bucket is required" : "database is required");
        return;
    }
    if (strstr(hs->encoding, "gzip")) {
        int z = gunzip(c, hs, srv->cfg.max_body);
        if (z < 0) {
            respond_error(c, 400, "unable to decode gzip body");
            return;
        }
        if (z == 2) {
            srv->st.http_bodies_refused++;
            hs->retry_after = true;
            char msg[128];
            snprintf(msg, sizeof msg,
                     "server busy: request bodies are at mem_budget (%zu bytes); retry later",
                     srv->cfg.mem_budget);
            respond_error(c, 503, msg);
            return;
        }
    }
    if (hs->too_large || hs->body_len > srv->cfg.max_body) {
        srv->st.http_bodies_too_large++;
        char msg[128];
        snprintf(msg, sizeof msg, "request body is too large (limit %zu bytes)", srv->cfg.max_body);
        respond_error(c, 413, msg);
        return;
    }
    mt_lp_options o = mt_lp_options_default();
    o.precision = precision;
    if (srv->cfg.limits.max_line_len) o.limits = srv->cfg.limits;
    if (!c->lp && mt_lp_parser_new(&o, &c->lp)) {
        respond_error(c, 500, "out of memory");
        return;
    }
    mt_lp_parser_set_precision(c->lp, precision);
    write_ctx w = {c, hs, 0, "", 0, strcmp(db, srv->cfg.default_db) ? db : NULL};
    memcpy(w.tenant, hs->tenant, sizeof w.tenant);
    mt_lp_handler h = {write_line, write_error, &w};
    if (mt_lp_parse(c->lp, hs->body, hs->body_len, mt_now_ns(), &h)) {
        respond_error(c, 500, "out of memory");
        return;
    }
    if (w.forbidden_line) {
        /* an authorization failure: nothing of the request is written */
        if (c->batch) mt_batch_reset(c->batch);
        char msg[256];
        snprintf(msg, sizeof msg,
                 "forbidden: line %llu carries a business_id other than the token's tenant %s",
                 (unsigned long long)w.forbidden_line, w.tenant);
        respond_error(c, 403, msg);
        return;
    }
    submit_batch(c);
}

/*
 * POST /api/v1/write: Prometheus remote write 1.0 (mt_rw.h). Answered as
 * /write is: 204 once durable; 400 for bad data (the good series are kept,
 * the first bad one named), which Prometheus does not retry; 5xx only for
 * what a retry can fix. The inflated size is read from the snappy header
 * and checked against max_body and mem_budget before it is allocated.
 */
static void handle_remote_write(mt_conn *c)
{
    http_state *hs = c->http;
    mt_server *srv = c->srv;
    char msg[1600];
    if (hs->parser.method != HTTP_POST) {
        respond_error(c, 405, "remote write needs POST");
        return;
    }
    if (hs->encoding[0] && strcasecmp(hs->encoding, "snappy") != 0) {
        snprintf(msg, sizeof msg,
                 "unsupported Content-Encoding '%s': remote write bodies are snappy blocks",
                 hs->encoding);
        respond_error(c, 415, msg);
        return;
    }
    size_t n = 0;
    if (hs->too_large || mt_rw_inflated_len(hs->body, hs->body_len, &n) == MT_OK) {
        if (hs->too_large || n > srv->cfg.max_body) {
            srv->st.http_bodies_too_large++;
            snprintf(msg, sizeof msg,
                     "request body is too large (limit %zu bytes; this one inflates to %zu)",
                     srv->cfg.max_body, n);
            respond_error(c, 413, msg);
            return;
        }
        if (!mt_server_body_take(srv, hs->held, n)) {
            srv->st.http_bodies_refused++;
            hs->retry_after = true;
            snprintf(msg, sizeof msg,
                     "server busy: request bodies are at mem_budget (%zu bytes); retry later",
                     srv->cfg.mem_budget);
            respond_error(c, 503, msg);
            return;
        }
    }
    if (!c->batch && !(c->batch = mt_batch_new())) {
        mt_server_body_give(srv, n);
        respond_error(c, 500, "out of memory");
        return;
    }
    mt_rw_result res;
    char err[512];
    int rc = mt_rw_decode(hs->body, hs->body_len, srv->cfg.max_body, c->batch, srv->cache,
                          hs->tenant[0] ? hs->tenant : NULL, &res, err, sizeof err);
    mt_server_body_give(srv, n);
    if (rc == MT_OK) {
        srv->st.ingest.rw_stale += res.stale;
        srv->st.ingest.rw_bad_samples += res.bad_samples;
        if (res.forbidden)
            srv->st.ingest.rw_forbidden += res.forbidden;
        else
            srv->st.ingest.rw_samples += res.samples;
    }
    if (rc || res.forbidden) {
        mt_batch_reset(c->batch);
        if (rc == MT_ELIMIT)
            respond_error(c, 413, err);
        else if (rc == MT_EPARSE)
            respond_error(c, 400, err);
        else if (rc)
            respond_error(c, 500, "out of memory");
        else {
            /* an authorization failure, as /write: nothing of the request is written */
            snprintf(msg, sizeof msg,
                     "forbidden: series %s carries a business_id other than the token's tenant %s "
                     "(%llu such series)",
                     res.first_forbidden, hs->tenant, (unsigned long long)res.forbidden);
            respond_error(c, 403, msg);
        }
        return;
    }
    if (res.bad_series) {
        hs->dropped = res.bad_samples;
        snprintf(hs->first_error, sizeof hs->first_error, "%.900s (%llu bad series)", res.first_bad,
                 (unsigned long long)res.bad_series);
    }
    submit_batch(c);
}

/* A write's points are committed (or failed): explain type conflicts, then answer. */
static void http_job_done(mt_job *job)
{
    mt_conn *c = job->conn;
    if (!c->closing) {
        http_state *hs = c->http;
        if (job->res.rc == MT_OK && job->res.rejected) {
            mt_batch_pt pt = {0};
            mt_vtype have = MT_VT_FLOAT;
            uint32_t id;
            char name[512], ts[40], bound[40], line[32] = "";
            char kbuf[MT_SERIES_MAX_KEY];
            (void)mt_batch_point(job->b, job->res.first_rejected, &pt); /* the engine's index */
            if (!pt.key &&
                mt_engine_series_key(c->srv->eng, pt.id, kbuf, sizeof kbuf, &pt.klen) == MT_OK)
                pt.key = kbuf;
            mt_series_format(pt.key, pt.klen, name, sizeof name);
            bool known = pt.key &&
                         mt_engine_series_lookup(c->srv->eng, pt.key, pt.klen, &id, &have) == MT_OK;
            if (pt.line) snprintf(line, sizeof line, " (line %llu)", (unsigned long long)pt.line);
            mt_time_format(pt.ts, ts, sizeof ts);
            mt_time_format(job->res.first_bound, bound, sizeof bound);
            if (hs->dropped) {
                /* the parser's first error stays the one named */
            } else if (job->res.first_reason == MT_ETIME) {
                snprintf(hs->first_error, sizeof hs->first_error,
                         "timestamp out of range: %s of series '%s' is further in the future "
                         "than max_future allows (points after %s are refused), or outside the "
                         "representable range%s",
                         ts, name, bound, line);
            } else if (job->res.first_reason == MT_EOLD) {
                snprintf(hs->first_error, sizeof hs->first_error,
                         "timestamp out of range: %s of series '%s' is older than the "
                         "[retention] policy keeps for it (points before %s are refused)%s",
                         ts, name, bound, line);
            } else if (job->res.first_reason == MT_ELIMIT) {
                snprintf(hs->first_error, sizeof hs->first_error,
                         "max series limit exceeded: series '%s' was not created%s", name, line);
            } else {
                snprintf(hs->first_error, sizeof hs->first_error,
                         known ? "field type conflict: input field '%s' is type %s, already "
                                 "exists as type %s%s"
                               : "invalid series '%s' of type %s%s%s",
                         name, mt_vtype_name(pt.type), known ? mt_vtype_name(have) : "", line);
            }
            hs->dropped += job->res.rejected;
        }
        finish_write(c, &job->res);
    }
    mt_batch_free(job->b);
    mt_conn_job_released(c);
    free(job);
}

/* ---- /api/v1/query: run on libuv's thread pool, answered on the loop ---------------- */

typedef struct query_work {
    uv_work_t req;
    mt_conn *c;
    bool rollup;    /* /api/v1/rollup: rspec */
    bool federate;  /* /federate: fspec; else spec */
    char *influxql; /* /query: the InfluxQL text (malloc'd); else NULL */
    char db[256];   /* /query: its db parameter; "": none */
    mt_rollq_spec rspec;
    mt_fed_spec fspec;
    char *matches;                 /* fspec's match[] values, each NUL-terminated (malloc'd) */
    const char **match;            /* pointers into matches (malloc'd) */
    mt_query_parsed parsed;        /* /api/v1/query: its spec points into it (w does not move) */
    char select[2048], field[256]; /* the strings spec.select and spec.field point at */
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the reader's; "": every tenant */
    mt_output_format format;
    mt_sbuf body; /* the answer */
    int status;
    char err[4608]; /* room for a damaged file's path */
} query_work;

static void query_run(uv_work_t *req)
{
    query_work *w = req->data;
    mt_query *q;
    int rc;
    if (w->influxql) {
        rc = mt_influxql_run(w->c->srv->eng, w->influxql, w->db[0] ? w->db : NULL,
                             w->c->srv->cfg.default_db, w->tenant[0] ? w->tenant : NULL,
                             mt_sb_write, &w->body, &w->status);
        if (rc) {
            w->status = 500;
            snprintf(w->err, sizeof w->err, "query failed: %s", mt_strerror(rc));
        }
        return;
    }
    if (w->federate)
        rc = mt_fed_write(w->c->srv->eng, &w->fspec, mt_sb_write, &w->body, NULL, w->err,
                          sizeof w->err);
    else if (w->rollup)
        rc = mt_rollq_write(w->c->srv->eng, &w->rspec, w->format, mt_sb_write, &w->body, NULL,
                            w->err, sizeof w->err);
    else if (!(rc = mt_query_open(w->c->srv->eng, &w->parsed.spec, &q, w->err, sizeof w->err))) {
        rc = mt_query_write(q, &w->parsed.spec, w->format, mt_sb_write, &w->body, NULL);
        const char *damage = mt_query_damage(q);
        if (rc)
            snprintf(w->err, sizeof w->err, "query stopped: %s%s%s", mt_strerror(rc),
                     *damage ? ": " : "", damage);
        mt_query_close(q);
    }
    w->status = rc == MT_OK                          ? 200
                : rc == MT_EPARSE || rc == MT_EINVAL ? 400
                : rc == MT_ELIMIT                    ? 422
                                                     : 500;
}

static void query_done(uv_work_t *req, int status)
{
    (void)status;
    query_work *w = req->data;
    mt_conn *c = w->c;
    if (!c->closing) {
        if (w->influxql && w->status != 500)
            respond(c, w->status, "application/json", w->body.p, w->body.len);
        else if (w->status == 200)
            respond(c, 200,
                    w->federate ? "text/plain; version=0.0.4; charset=utf-8"
                    : w->format == MT_OUT_JSON || w->format == MT_OUT_SERIES ? "application/json"
                    : w->format == MT_OUT_CSV ? "text/csv; charset=utf-8"
                                              : "text/plain; charset=utf-8",
                    w->body.p, w->body.len);
        else
            respond_error(c, w->status, w->err);
    }
    mt_sb_free(&w->body);
    free(w->matches);
    free(w->match);
    free(w->influxql);
    free(w);
    mt_server *srv = c->srv;
    mt_conn_job_released(c); /* may free c */
    mt_server_work_done(srv);
}

static void queue_query(mt_conn *c, query_work *w);

/* The format parameter into w->format (json by default); false for an unknown one. */
static bool format_param(http_state *hs, query_work *w)
{
    char fmt[16];
    mt_output_format f = MT_OUT_JSON;
    if (query_param(hs->url, "format", fmt, sizeof fmt) &&
        (!mt_output_format_parse(fmt, &f) || (f == MT_OUT_SERIES && w->rollup)))
        return false; /* series (grouped JSON: labels once, then arrays) is not a rollup's */
    w->format = f;
    return true;
}

static void handle_rollup(mt_conn *c)
{
    http_state *hs = c->http;
    query_work *w = calloc(1, sizeof *w);
    if (!w) {
        respond_error(c, 500, "out of memory");
        return;
    }
    char from[64], to[64], step[32], flag[8];
    int64_t now = mt_now_ns();
    const char *bad = NULL;
    w->rollup = true;
    w->rspec.select = query_param(hs->url, "select", w->select, sizeof w->select);
    if (!query_param(hs->url, "from", from, sizeof from) ||
        !mt_time_parse(from, now, &w->rspec.from))
        bad = "from is required: RFC 3339, epoch seconds, now, -24h";
    else if (!query_param(hs->url, "to", to, sizeof to) || !mt_time_parse(to, now, &w->rspec.to))
        bad = "to is required: RFC 3339, epoch seconds, now, -24h";
    else if (query_param(hs->url, "step", step, sizeof step) &&
             !mt_duration_parse(step, &w->rspec.step))
        bad = "step is not a duration (1h, 1d, 30d)";
    else if (!format_param(hs, w))
        bad = "format is json, csv or table";
    w->rspec.series = query_param(hs->url, "series", flag, sizeof flag) && strcmp(flag, "0");
    w->rspec.exact = query_param(hs->url, "exact", flag, sizeof flag) && strcmp(flag, "0");
    if (bad) {
        free(w);
        respond_error(c, 400, bad);
        return;
    }
    queue_query(c, w);
}

/* The query's URL parameters (docs/query.md), parsed as metron query parses its flags. */
static void handle_query(mt_conn *c)
{
    http_state *hs = c->http;
    query_work *w = calloc(1, sizeof *w);
    if (!w) {
        respond_error(c, 500, "out of memory");
        return;
    }
    char from[64], to[64], step[32], agg[256], by[MT_QPARSE_MAX_BY_LEN + 1], max[24];
    mt_query_args a = {
        .select = query_param(hs->url, "select", w->select, sizeof w->select),
        .from = query_param(hs->url, "from", from, sizeof from),
        .to = query_param(hs->url, "to", to, sizeof to),
        .step = query_param(hs->url, "step", step, sizeof step),
        .agg = query_param(hs->url, "agg", agg, sizeof agg),
        .by = query_param(hs->url, "by", by, sizeof by),
        .field = query_param(hs->url, "field", w->field, sizeof w->field),
        .max_series = query_param(hs->url, "max_series", max, sizeof max),
    };
    const char *bad = NULL;
    if (mt_query_args_parse(&a, MT_QPARSE_HTTP, mt_now_ns(), &w->parsed, w->err, sizeof w->err))
        bad = w->err;
    else if (!format_param(hs, w))
        bad = "format is json, series, csv or table";
    if (bad) {
        char msg[sizeof w->err];
        snprintf(msg, sizeof msg, "%s", bad);
        free(w);
        respond_error(c, 400, msg);
        return;
    }
    queue_query(c, w);
}

/*
 * Every value of query parameter name (its name percent-decoded too: clients send
 * "match%5B%5D"), decoded, each NUL-terminated, into w->matches; w->match points at them.
 * The count, or -1 when memory is short.
 */
static long query_params_all(const char *url, const char *name, query_work *w)
{
    const char *q = strchr(url, '?');
    size_t nparams = 1;
    for (const char *p = q; p && *p; p++) nparams += *p == '&';
    w->matches = malloc(strlen(url) + 1);
    w->match = malloc(nparams * sizeof *w->match);
    if (!w->matches || !w->match) return -1;
    long n = 0;
    size_t o = 0;
    for (const char *p = q; p && *p;) {
        p++;
        size_t len = strcspn(p, "&");
        char *start = w->matches + o; /* the name, then (when it is name) the value */
        size_t at = o;
        bool in_value = false;
        for (const char *v = p; v < p + len; v++) {
            if (!in_value && *v == '=') {
                w->matches[o] = '\0';
                if (strcmp(start, name)) break;
                in_value = true;
                o = at;
                continue;
            }
            if (*v == '%' && v + 2 < p + len) {
                char hex[3] = {v[1], v[2], 0};
                w->matches[o++] = (char)strtol(hex, NULL, 16);
                v += 2;
            } else {
                w->matches[o++] = *v == '+' ? ' ' : *v;
            }
        }
        if (in_value) {
            w->matches[o++] = '\0';
            w->match[n++] = start;
        } else {
            o = at;
        }
        p += len;
    }
    return n;
}

static void handle_federate(mt_conn *c)
{
    http_state *hs = c->http;
    query_work *w = calloc(1, sizeof *w);
    if (!w) {
        respond_error(c, 500, "out of memory");
        return;
    }
    long n = query_params_all(hs->url, "match[]", w);
    char max[24];
    const char *bad =
        n < 0    ? "out of memory"
        : n == 0 ? "match[] is required: a series selector, e.g. match[]={__name__=~\"cpu_.*\"}"
                 : NULL;
    if (query_param(hs->url, "max_series", max, sizeof max))
        w->fspec.max_series = strtoull(max, 0, 10);
    if (bad) {
        free(w->matches);
        free(w->match);
        free(w);
        respond_error(c, n < 0 ? 500 : 400, bad);
        return;
    }
    /* the latest sample as Prometheus' federation takes it: within the lookback, not after now */
    int64_t now = mt_now_ns();
    w->federate = true;
    w->fspec.match = w->match;
    w->fspec.nmatch = (size_t)n;
    w->fspec.from = now - MT_FED_LOOKBACK_NS;
    w->fspec.to = now + 1;
    w->fspec.latest = true;
    queue_query(c, w);
}

/* Run w on libuv's thread pool; the answer goes out on the loop (query_done). */
static void queue_query(mt_conn *c, query_work *w)
{
    const char *t = read_tenant(c->http);
    snprintf(w->tenant, sizeof w->tenant, "%s", t ? t : "");
    w->parsed.spec.tenant = w->rspec.tenant = w->fspec.tenant = t ? w->tenant : NULL;
    w->c = c;
    w->req.data = w;
    if (mt_server_queue_work(c, &w->req, query_run, query_done)) {
        free(w->matches);
        free(w->match);
        free(w->influxql);
        free(w);
        respond_error(c, 500, "cannot run the query");
    }
}

/*
 * /query: InfluxDB 1.x's setup statements (mt_influxql.h). q and db come in the URL or, POSTed,
 * in an application/x-www-form-urlencoded body, as InfluxDB takes them.
 */
static void handle_influxql(mt_conn *c)
{
    http_state *hs = c->http;
    query_work *w = calloc(1, sizeof *w);
    char *form = NULL;
    if (w && hs->body_len) { /* the body as a URL's query string, for query_param */
        if ((form = malloc(hs->body_len + 2))) {
            form[0] = '?';
            memcpy(form + 1, hs->body, hs->body_len);
            form[hs->body_len + 1] = '\0';
        }
    }
    size_t cap = strlen(hs->url) + hs->body_len + 1;
    if (w) w->influxql = malloc(cap);
    if (!w || !w->influxql || (hs->body_len && !form)) {
        if (w) free(w->influxql);
        free(w);
        free(form);
        respond_error(c, 500, "out of memory");
        return;
    }
    bool has_q = query_param(hs->url, "q", w->influxql, cap) ||
                 (form && query_param(form, "q", w->influxql, cap));
    if (!query_param(hs->url, "db", w->db, sizeof w->db) && form)
        query_param(form, "db", w->db, sizeof w->db);
    free(form);
    if (!has_q) {
        free(w->influxql);
        free(w);
        respond_error(c, 400, "missing required parameter \"q\"");
        return;
    }
    queue_query(c, w);
}

/* /health and /ready: 200 while writes are taken, else 503 and why (InfluxDB's fields). */
static void handle_health(mt_conn *c)
{
    mt_server *srv = c->srv;
    char why[1024] = "ready for queries and writes", body[4096];
    int h = srv->stopping ? MT_ECLOSED : mt_engine_health(srv->eng, why, sizeof why);
    if (srv->stopping) snprintf(why, sizeof why, "stopping: writes are no longer taken");
    size_t pos = (size_t)snprintf(body, sizeof body,
                                  "{\"name\":\"metrond\",\"status\":\"%s\",\"message\":\"",
                                  h ? "fail" : "pass");
    pos = mt_json_escape(body, sizeof body - 128, pos, why, strlen(why));
    pos += (size_t)snprintf(body + pos, sizeof body - pos,
                            "\",\"version\":\"%s\",\"uptime_seconds\":%.0f}", MT_VERSION,
                            (double)(mt_mono_ns() - srv->started_ns) / 1e9);
    respond(c, h ? 503 : 200, "application/json", body, pos);
}

static void handle_metrics(mt_conn *c)
{
    size_t len;
    char *text = mt_prom_render(c->srv, &len);
    if (!text) {
        respond_error(c, 500, "out of memory");
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void handle_alerts(mt_conn *c)
{
    const mt_server_config *cfg = &c->srv->cfg;
    if (!cfg->alerts) {
        respond_error(c, 404, "alerting is off (no rules_file, no postgres)");
        return;
    }
    http_state *hs = c->http;
    char all[8];
    size_t len;
    bool every = query_param(hs->url, "all", all, sizeof all) && strcmp(all, "0");
    char *text = cfg->alerts(cfg->alerts_ud, every, read_tenant(hs), &len);
    if (!text) {
        respond_error(c, 500, "out of memory");
        return;
    }
    respond(c, 200, "text/tab-separated-values; charset=utf-8", text, len);
    free(text);
}

/* /ping: 204; with verbose=true (and not false or 0), 200 and the version as InfluxDB 1.8 */
static void handle_ping(mt_conn *c)
{
    char v[16];
    if (query_param(((http_state *)c->http)->url, "verbose", v, sizeof v) && strcmp(v, "false") &&
        strcmp(v, "0")) {
        static const char body[] = "{\"version\":\"" VERSION "\"}";
        respond(c, 200, "application/json", body, sizeof body - 1);
    } else {
        respond(c, 204, NULL, NULL, 0);
    }
}

static void handle(mt_conn *c)
{
    http_state *hs = c->http;
    if (hs->url_too_long) {
        respond_error(c, 400, "request URL too long");
        return;
    }
    size_t plen = strcspn(hs->url, "?");
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(plen < 255 ? plen : 255), hs->url);
    if (strcmp(path, "/write") == 0)
        handle_write(c, false);
    else if (strcmp(path, "/api/v2/write") == 0)
        handle_write(c, true);
    else if (strcmp(path, "/api/v1/write") == 0)
        handle_remote_write(c);
    else if (strcmp(path, "/ping") == 0)
        handle_ping(c);
    else if (strcmp(path, "/query") == 0)
        handle_influxql(c);
    else if (strcmp(path, "/health") == 0 || strcmp(path, "/ready") == 0)
        handle_health(c);
    else if (strcmp(path, "/metrics") == 0)
        handle_metrics(c);
    else if (strcmp(path, "/api/v1/query") == 0)
        handle_query(c);
    else if (strcmp(path, "/api/v1/rollup") == 0)
        handle_rollup(c);
    else if (strcmp(path, "/api/v1/alerts") == 0)
        handle_alerts(c);
    else if (strcmp(path, "/api/v1/admin/delete") == 0)
        mt_admin_delete_handle(c, hs->url,
                               hs->parser.method == HTTP_POST || hs->parser.method == HTTP_DELETE,
                               hs->body, hs->body_len, read_tenant(hs));
    else if (strcmp(path, "/federate") == 0)
        handle_federate(c);
    else if (strcmp(path, "/api/v1/export") == 0)
        mt_export_http_handle(c, hs->url, hs->parser.method == HTTP_POST, hs->body, hs->body_len,
                              read_tenant(hs));
    else if (strncmp(hs->url, "/prometheus/", 12) == 0)
        mt_promapi_handle(c, hs->url, hs->parser.method == HTTP_POST, hs->body, hs->body_len,
                          read_tenant(hs));
    else
        respond_error(c, 404, "not found");
}

/* Feed bytes to the request parser; handle a complete request and keep the rest.
   Returns true when a request was answered or is being answered. */
static bool feed(mt_conn *c, const char *data, size_t len)
{
    http_state *hs = c->http;
    size_t used = http_parser_execute(&hs->parser, &settings, data, len);
    enum http_errno err = HTTP_PARSER_ERRNO(&hs->parser);
    if (hs->denied) {
        /* refused on its headers: the body is not read, the connection not reused */
        hs->close_after = true;
        hs->v2 = strncmp(hs->url, "/api/v2/", 8) == 0;
        mt_conn_read_stop(c);
        hs->stage = HTTP_BUSY;
        body_release(c);
        respond_error(c, hs->denied, hs->denied_msg);
        return true;
    }
    if (err == HPE_PAUSED) {
        http_parser_pause(&hs->parser, 0);
        if (used < len) {
            char *r = malloc(len - used);
            if (!r) {
                mt_conn_close(c);
                return true;
            }
            memcpy(r, data + used, len - used);
            free(hs->rest);
            hs->rest = r;
            hs->rest_len = len - used;
        }
    } else if (err != HPE_OK) {
        hs->close_after = true;
        mt_conn_read_stop(c);
        hs->stage = HTTP_BUSY;
        body_release(c);
        respond_error(c, 400, http_errno_description(err));
        return true;
    }
    if (hs->over_budget) {
        /* a chunked body that outgrew the room left in mem_budget */
        hs->close_after = true;
        hs->retry_after = true;
        hs->v2 = strncmp(hs->url, "/api/v2/", 8) == 0;
        mt_conn_read_stop(c);
        hs->stage = HTTP_BUSY;
        body_release(c);
        c->srv->st.http_bodies_refused++;
        char msg[128];
        snprintf(msg, sizeof msg,
                 "server busy: request bodies are at mem_budget (%zu bytes); retry later",
                 c->srv->cfg.mem_budget);
        respond_error(c, 503, msg);
        return true;
    }
    if (hs->too_large && !hs->complete) {
        /* answer now: the rest of an oversized body is not worth reading */
        hs->close_after = true;
        hs->v2 = strncmp(hs->url, "/api/v2/", 8) == 0;
        mt_conn_read_stop(c);
        hs->stage = HTTP_BUSY;
        body_release(c);
        c->srv->st.http_bodies_too_large++;
        char msg[128];
        snprintf(msg, sizeof msg, "request body is too large (limit %zu bytes)", hs->max_body);
        respond_error(c, 413, msg);
        return true;
    }
    if (!hs->complete) return false;
    hs->complete = false;
    hs->close_after = !http_should_keep_alive(&hs->parser);
    mt_conn_read_stop(c);
    hs->stage = HTTP_BUSY;
    handle(c);
    body_release(c); /* parsed (a write's points are the batch in flight now) */
    return true;
}

static void after_response(mt_conn *c)
{
    http_state *hs = c->http;
    if (hs->close_after) {
        mt_conn_close(c);
        return;
    }
    mt_conn_touch(c);
    hs->stage = HTTP_IDLE;
    hs->idle_since = mt_mono_ns();
    hs->begun = false;
    char *r = hs->rest;
    size_t n = hs->rest_len;
    hs->rest = NULL;
    hs->rest_len = 0;
    bool handled = n && feed(c, r, n);
    free(r);
    if (!handled && !c->closing) mt_conn_read_start(c);
}

static void http_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    mt_conn *c = s->data;
    if (n > 0) {
        c->bytes += (uint64_t)n;
        c->srv->st.bytes_received[LISTENER_HTTP] += (uint64_t)n;
        mt_conn_touch(c);
        feed(c, buf->base, (size_t)n);
    } else if (n < 0) {
        mt_conn_close(c);
    }
    mt_conn_read_done(c, buf);
}

/* Reading was paused for ns: the request's clocks stop with it. */
static void http_hold_deadline(mt_conn *c, int64_t ns)
{
    http_state *hs = c->http;
    hs->req_start += ns;
    hs->body_start += ns;
}

/* At max_conns_http: how long c has gone without finishing a request (never one answered). */
static bool http_stalled(const mt_conn *c, int64_t *since, const char **stage)
{
    const http_state *hs = c->http;
    if (hs->stage == HTTP_BUSY) return false;
    *since = hs->stage == HTTP_IDLE ? hs->idle_since : hs->req_start;
    *stage = hs->stage == HTTP_IDLE ? "idle" : hs->stage == HTTP_BODY ? "body" : "headers";
    return true;
}

const mt_conn_ops mt_http_ops = {
    .name = "http",
    .init = http_init,
    .on_read = http_on_read,
    .job_done = http_job_done,
    .free = http_free,
    .check_deadline = http_check_deadline,
    .hold_deadline = http_hold_deadline,
    .stalled = http_stalled,
};
