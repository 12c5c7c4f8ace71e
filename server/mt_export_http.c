/*
 * mt_export_http.c — GET|POST /api/v1/export: every point a selector
 * matches, streamed, for backup and migration (docs/query.md).
 *
 *   select (or match[])  the selector; {__name__=~".+"} (or *) is every series
 *   start, end (or from, to)  [start, end): RFC 3339, epoch seconds, -24h; default all
 *   format               lp (default: what POST /write and `metron import` take back
 *                        unchanged) or csv (series,time,value)
 *
 * The bytes are those of `metron export --data` (mt_query_out_*: one writer
 * for both). The answer is chunked (Transfer-Encoding: chunked) and paced
 * by the client: a chunk of about CHUNK_TARGET bytes is filled on libuv's
 * thread pool, written on the loop, and the next one is filled only when
 * libuv reports that write complete. Memory per export is one chunk, the
 * query's cursors and a label per series, whatever the size of the answer.
 * The reader's tenant is the one mt_http.c decided on the headers (a
 * tenant's token exports its tenant's series only), passed in, and named
 * in the answer's X-Metron-Tenant header.
 *
 * An error before the first byte is answered with its status and
 * {"error":"..."}, as /api/v1/query; an error after (a damaged hour file)
 * closes the connection without the last chunk, so that no client takes a
 * truncated export for a whole one, and is logged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_auth.h"
#include "mt_json.h"
#include "mt_server_int.h"
#include "mt_query.h"
#include "mt_time.h"

#define CHUNK_TARGET (256u * 1024) /* bytes of points per chunk (one row more at most) */
#define SIZE_LINE    16            /* room before a chunk's data for "<hex size>\r\n" */
#define TAIL         8             /* room after it for "\r\n" and the last "0\r\n\r\n" */

typedef struct export_job {
    uv_work_t req;
    uv_write_t w;
    mt_conn *c;
    mt_query_spec spec;
    mt_output_format f;
    char select[4096];
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the reader's; "": every tenant */
    mt_query *q;
    mt_query_out *out;
    char *buf;             /* SIZE_LINE bytes, then the chunk's data from SIZE_LINE to len */
    size_t len, cap;       /* of buf */
    char head[512];        /* the response's headers, sent with the first chunk */
    bool started, done;    /* headers sent; the query wrote its last row */
    int rc, status;        /* the first error and its HTTP status */
    uint64_t points, sent; /* rows and body bytes so far, for the log */
    char err[4608];
} export_job;

/* ---- parameters ---------------------------------------------------------------------- */

/* Percent-decode s[0..n) ('+' a space) into out (capacity cap); false when it does not fit. */
static bool decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 1 >= cap) return false;
        if (s[i] == '%' && i + 2 < n && s[i + 1] && strchr("0123456789abcdefABCDEF", s[i + 1]) &&
            s[i + 2] && strchr("0123456789abcdefABCDEF", s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            out[k++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[k] = '\0';
    return true;
}

/*
 * The value of parameter name in q ("a=b&c=d", NULL: none), decoded into out: 1, 0 when
 * absent, -1 when it does not fit, 2 when it is given twice (one selector per export).
 */
static int param(const char *q, const char *name, char *out, size_t cap)
{
    int found = 0;
    for (const char *p = q; p && *p; p += *p == '&') {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        char key[64];
        if (eq && decode(p, (size_t)(eq - p), key, sizeof key) && !strcmp(key, name)) {
            if (found) return 2;
            if (!decode(eq + 1, len - (size_t)(eq + 1 - p), out, cap)) return -1;
            found = 1;
        }
        p += len;
    }
    return found;
}

/* name from the URL's query string, else from the form body (bq, may be NULL). */
static int param2(const char *uq, const char *bq, const char *name, char *out, size_t cap)
{
    int r = param(uq, name, out, cap);
    return r ? r : param(bq, name, out, cap);
}

static void respond_json_error(mt_conn *c, int status, const char *msg)
{
    char body[10240];
    size_t k = (size_t)snprintf(body, sizeof body, "{\"error\":\"");
    k = mt_json_escape(body, sizeof body - 2, k, msg, strlen(msg));
    k += (size_t)snprintf(body + k, sizeof body - k, "\"}");
    mt_http_respond(c, status, "application/json", body, k);
}

/* ---- the stream ---------------------------------------------------------------------- */

static void job_free(export_job *x)
{
    mt_query_out_close(x->out);
    mt_query_close(x->q);
    free(x->buf);
    free(x);
}

/* The export is over (answered, failed or cut off): give the connection its job back. */
static void job_end(export_job *x)
{
    mt_conn *c = x->c;
    mt_server *srv = c->srv;
    job_free(x);
    mt_conn_job_released(c); /* may free c */
    mt_server_work_done(srv);
}

/* mt_write_fn into the chunk; it grows only for a row that alone passes CHUNK_TARGET. */
static int to_chunk(void *ud, const char *b, size_t n)
{
    export_job *x = ud;
    if (x->len + n + TAIL > x->cap) {
        size_t cap = x->cap * 2;
        while (cap < x->len + n + TAIL) cap *= 2;
        char *g = realloc(x->buf, cap);
        if (!g) return -ENOMEM;
        x->buf = g;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, b, n);
    x->len += n;
    return 0;
}

/* On the thread pool: open the query (first time), then rows until the chunk is full. */
static void fill(uv_work_t *req)
{
    export_job *x = req->data;
    x->len = SIZE_LINE;
    int rc = MT_OK;
    if (!x->q) {
        rc = mt_query_open(x->c->srv->eng, &x->spec, &x->q, x->err, sizeof x->err);
        if (!rc) rc = mt_query_out_open(&x->spec, x->f, to_chunk, x, &x->out);
        if (rc) {
            if (!x->err[0]) snprintf(x->err, sizeof x->err, "export failed: %s", mt_strerror(rc));
            x->status = rc == MT_EPARSE || rc == MT_EINVAL ? 400 : rc == MT_ELIMIT ? 422 : 500;
            x->rc = rc;
            return;
        }
    }
    mt_row row;
    while (!rc && x->len - SIZE_LINE < CHUNK_TARGET) {
        rc = mt_query_next(x->q, &row);
        if (rc == MT_ENOTFOUND) {
            rc = mt_query_out_finish(x->out);
            x->done = !rc;
            break;
        }
        if (!rc) rc = mt_query_out_row(x->out, &row);
        if (!rc) x->points++;
    }
    if (rc) {
        const char *damage = mt_query_damage(x->q);
        snprintf(x->err, sizeof x->err, "export stopped: %s%s%s", mt_strerror(rc),
                 *damage ? ": " : "", damage);
        x->status = 500;
        x->rc = rc;
    }
}

static void fill_done(uv_work_t *req, int status);

static void queue_fill(export_job *x)
{
    if (uv_queue_work(x->c->srv->loop, &x->req, fill, fill_done)) {
        mt_conn_close(x->c);
        job_end(x);
    }
}

static void written(uv_write_t *w, int status)
{
    export_job *x = w->data;
    mt_conn *c = x->c;
    if (status < 0 || c->closing || c->srv->stopping) {
        /* the client went away, or metrond stops: no last chunk, the client sees a cut */
        if (!c->closing) mt_conn_close(c);
        job_end(x);
        return;
    }
    mt_conn_touch(c);
    if (!x->done) {
        queue_fill(x);
        return;
    }
    mt_log(MT_LOG_INFO, "msg=\"export sent\" peer=%s points=%llu bytes=%llu", c->peer,
           (unsigned long long)x->points, (unsigned long long)x->sent);
    mt_http_stream_done(c); /* the next request, or the close it asked for */
    job_end(x);
}

/* On the loop: answer an early error, or send the chunk just filled. */
static void fill_done(uv_work_t *req, int status)
{
    export_job *x = req->data;
    mt_conn *c = x->c;
    if (status || c->closing) { /* cancelled, or the connection is gone */
        job_end(x);
        return;
    }
    if (x->rc && !x->started) {
        respond_json_error(c, x->status, x->err); /* mt_http.c goes on from its write */
        job_end(x);
        return;
    }
    if (x->rc) {
        mt_log(MT_LOG_WARN, "msg=\"export cut: connection closed\" peer=%s points=%llu why=\"%s\"",
               c->peer, (unsigned long long)x->points, x->err);
        mt_conn_close(c);
        job_end(x);
        return;
    }
    uv_buf_t b[2];
    unsigned nb = 0;
    if (!x->started) {
        x->started = true;
        c->srv->st.http_requests[2]++;
        /* X-Metron-Tenant: the tenant a tenant's token narrowed the export to, so that a
           client (metron repair) can refuse a token that is not the tenant it was asked for
           rather than take an empty export for an empty tenant */
        int n = snprintf(
            x->head, sizeof x->head,
            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
            "%s%s%s%s\r\n",
            x->f == MT_OUT_CSV ? "text/csv; charset=utf-8" : "text/plain; charset=utf-8",
            x->spec.tenant ? "X-Metron-Tenant: " : "", x->spec.tenant ? x->tenant : "",
            x->spec.tenant ? "\r\n" : "", mt_http_closes_after(c) ? "Connection: close\r\n" : "");
        b[nb++] = uv_buf_init(x->head, (unsigned)n);
    }
    size_t data = x->len - SIZE_LINE, start = SIZE_LINE;
    x->sent += data;
    if (data) {
        char line[SIZE_LINE];
        int n = snprintf(line, sizeof line, "%zx\r\n", data);
        start = SIZE_LINE - (size_t)n;
        memcpy(x->buf + start, line, (size_t)n);
        memcpy(x->buf + x->len, "\r\n", 2);
        x->len += 2;
    }
    if (x->done) { /* the last chunk: empty, no trailers */
        memcpy(x->buf + x->len, "0\r\n\r\n", 5);
        x->len += 5;
    }
    if (x->len > start) b[nb++] = uv_buf_init(x->buf + start, (unsigned)(x->len - start));
    x->w.data = x;
    if (uv_write(&x->w, (uv_stream_t *)&c->tcp, b, nb, written)) {
        mt_conn_close(c);
        job_end(x);
    }
}

void mt_export_http_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                           const char *tenant)
{
    const char *uq = strchr(url, '?');
    uq = uq ? uq + 1 : NULL;
    char *bq = NULL;
    if (post && blen && (bq = malloc(blen + 1))) {
        memcpy(bq, body, blen);
        bq[blen] = '\0';
    }
    export_job *x = calloc(1, sizeof *x);
    if (!x || (post && blen && !bq)) {
        free(bq);
        free(x);
        respond_json_error(c, 500, "out of memory");
        return;
    }
    char from[64], to[64], fmt[16];
    int64_t now = mt_now_ns();
    const char *bad = NULL;
    int r = param2(uq, bq, "select", x->select, sizeof x->select);
    if (!r) r = param2(uq, bq, "match[]", x->select, sizeof x->select);
    x->spec.from = INT64_MIN;
    x->spec.to = INT64_MAX;
    if (r <= 0 || r == 2)
        bad = r == 2    ? "one selector per export: select (or match[]) is given more than once"
              : r == -1 ? "select is too long"
                        : "select (or match[]) is required: a selector, {__name__=~\".+\"} "
                          "for every series";
    else if (((r = param2(uq, bq, "start", from, sizeof from)) > 0 ||
              (r = param2(uq, bq, "from", from, sizeof from)) > 0) &&
             !mt_time_parse(from, now, &x->spec.from))
        bad = "start is a time: RFC 3339, epoch seconds, now, -24h";
    else if (((r = param2(uq, bq, "end", to, sizeof to)) > 0 ||
              (r = param2(uq, bq, "to", to, sizeof to)) > 0) &&
             !mt_time_parse(to, now, &x->spec.to))
        bad = "end is a time: RFC 3339, epoch seconds, now, -24h";
    x->f = MT_OUT_LP;
    if (!bad && param2(uq, bq, "format", fmt, sizeof fmt) != 0) {
        if (!strcmp(fmt, "csv"))
            x->f = MT_OUT_CSV;
        else if (strcmp(fmt, "lp"))
            bad = "format is lp (line protocol, the default) or csv";
    }
    free(bq);
    if (bad) {
        free(x);
        respond_json_error(c, 400, bad);
        return;
    }
    x->spec.select = x->select;
    x->spec.max_series = SIZE_MAX; /* a backup takes every series; memory is a label each */
    snprintf(x->tenant, sizeof x->tenant, "%s", tenant ? tenant : "");
    x->spec.tenant = tenant ? x->tenant : NULL;
    x->cap = SIZE_LINE + CHUNK_TARGET + 4096;
    x->buf = malloc(x->cap);
    if (!x->buf) {
        free(x);
        respond_json_error(c, 500, "out of memory");
        return;
    }
    x->c = c;
    x->req.data = x;
    if (mt_server_queue_work(c, &x->req, fill, fill_done)) { /* c lives until the export ends */
        free(x->buf);
        free(x);
        respond_json_error(c, 500, "cannot run the export");
    }
}
