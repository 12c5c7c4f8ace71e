/*
 * mt_admin.c — POST (or DELETE) /api/v1/admin/delete: deletion through the
 * daemon that holds the data directory (mt_engine_delete).
 *
 * Parameters, in the query string or a form body:
 *   tenant=BID            every series of that business_id, and its
 *                         PostgreSQL rows (through the sink's outbox); then
 *                         index.mdb is compacted so that no free page keeps
 *                         the tenant's keys. Only without a tenant's token
 *                         (a system token "*", or no tokens_file): a
 *                         tenant's token gets 403. keep_mirror=true leaves
 *                         its PostgreSQL rows (the tenant moved to other
 *                         nodes, which mirror the same rows: docs/cluster.md).
 *   match=SELECTOR&start=T&end=T
 *                         the points in [start, end) of the series the
 *                         selector (mt_query.h) matches; T is RFC 3339 or
 *                         seconds since the epoch, as /prometheus/ takes it.
 *                         A tenant's token deletes only its own series (the
 *                         selector is narrowed to its business_id, as reads are).
 * The engine job runs on a libuv worker (it waits for the writer); the
 * answer is JSON: {"status":"success","data":{"series":N,...}}, or
 * {"status":"error","error":"..."} with 400, 403, 405 or 500.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_auth.h"
#include "mt_server_int.h"
#include "mt_promql.h"
#include "mt_query.h"

#define MAX_PARAM 4096

typedef struct admin_work {
    uv_work_t req;
    mt_conn *c;
    mt_engine *e;
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the caller's; "": every tenant */
    char bid[MAX_PARAM];                 /* tenant= */
    bool keep_mirror;                    /* keep_mirror=true */
    char match[MAX_PARAM];               /* match= */
    int64_t from, to;
    int status;
    char body[1024];
} admin_work;

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The value of name in an urlencoded list s[0..n), decoded into out (cap): false if absent. */
static bool param(const char *s, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && s[end] != '&') end++;
        if (end - i > nl && s[i + nl] == '=' && !memcmp(s + i, name, nl)) {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < end && o + 1 < cap; k++) {
                int h, l;
                if (s[k] == '+')
                    out[o++] = ' ';
                else if (s[k] == '%' && k + 2 < end + 1 && (h = hexval(s[k + 1])) >= 0 &&
                         (l = hexval(s[k + 2])) >= 0)
                    out[o++] = (char)(h * 16 + l), k += 2;
                else
                    out[o++] = s[k];
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

static bool get(const char *url, const char *body, size_t blen, const char *name, char *out,
                size_t cap)
{
    const char *q = strchr(url, '?');
    return (q && param(q + 1, strlen(q + 1), name, out, cap)) ||
           (body && param(body, blen, name, out, cap));
}

static void json_error(admin_work *w, int status, const char *msg)
{
    w->status = status;
    char esc[512];
    size_t o = 0;
    for (const char *p = msg; *p && o + 3 < sizeof esc; p++) {
        if (*p == '"' || *p == '\\') esc[o++] = '\\';
        esc[o++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    }
    esc[o] = '\0';
    snprintf(w->body, sizeof w->body, "{\"status\":\"error\",\"error\":\"%s\"}", esc);
}

static void run(uv_work_t *req)
{
    admin_work *w = req->data;
    mt_delete_result r;
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc;
    char err[512] = "";
    if (w->bid[0]) {
        mt_delete_spec sp = {.business_id = w->bid, .keep_mirror = w->keep_mirror};
        rc = mt_engine_delete(w->e, &sp, &r);
        /* free pages of index.mdb still hold the tenant's keys: rewritten without them */
        if (!rc) rc = mt_engine_compact(w->e, true, NULL, NULL, &(mt_compact_result){0});
    } else {
        mt_query_spec qs = {.select = w->match,
                            .from = w->from,
                            .to = w->to,
                            .max_series = 10000000,
                            .tenant = w->tenant[0] ? w->tenant : NULL};
        mt_query *q = NULL;
        rc = mt_query_open(w->e, &qs, &q, err, sizeof err);
        if (rc) {
            json_error(w, 400, err[0] ? err : mt_strerror(rc));
            return;
        }
        n = mt_query_series(q);
        ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids) rc = -ENOMEM;
        for (size_t i = 0; !rc && i < n; i++) ids[i] = mt_query_series_id(q, i);
        mt_query_close(q);
        mt_delete_spec sp = {.ids = ids, .nids = n, .from = w->from, .to = w->to};
        if (!rc) rc = mt_engine_delete(w->e, &sp, &r);
        free(ids);
    }
    if (rc) {
        snprintf(err, sizeof err, "delete failed: %s", mt_strerror(rc));
        json_error(w, 500, err);
        return;
    }
    w->status = 200;
    snprintf(w->body, sizeof w->body,
             "{\"status\":\"success\",\"data\":{\"series\":%zu,\"series_forgotten\":%zu,"
             "\"hours_sealed\":%zu,\"hours_rewritten\":%zu,\"hours_dropped\":%zu,"
             "\"points_deleted\":%llu}}",
             r.series, r.series_forgotten, r.hours_sealed, r.hours_rewritten, r.hours_dropped,
             (unsigned long long)r.points_deleted);
}

static void done(uv_work_t *req, int status)
{
    (void)status;
    admin_work *w = req->data;
    mt_conn *c = w->c;
    if (!c->closing) mt_http_respond(c, w->status, "application/json", w->body, strlen(w->body));
    free(w);
    mt_server *srv = c->srv;
    mt_conn_job_released(c); /* may free c */
    mt_server_work_done(srv);
}

void mt_admin_delete_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                            const char *tenant)
{
    admin_work *w = calloc(1, sizeof *w);
    if (!w) {
        static const char oom[] = "{\"status\":\"error\",\"error\":\"out of memory\"}";
        mt_http_respond(c, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    char t0[64] = "", t1[64] = "", keep[16] = "";
    bool has_bid = get(url, body, blen, "tenant", w->bid, sizeof w->bid);
    bool has_match = get(url, body, blen, "match", w->match, sizeof w->match);
    bool has_start = get(url, body, blen, "start", t0, sizeof t0);
    bool has_end = get(url, body, blen, "end", t1, sizeof t1);
    bool has_keep = get(url, body, blen, "keep_mirror", keep, sizeof keep);
    w->keep_mirror = has_keep && (!strcmp(keep, "true") || !strcmp(keep, "1"));
    int64_t ms0 = 0, ms1 = 0;
    if (!post)
        json_error(w, 405, "use POST or DELETE");
    else if (has_bid && tenant)
        json_error(w, 403, "deleting a tenant needs a system token");
    else if (has_bid == has_match)
        json_error(w, 400, "give either tenant=BID or match=SELECTOR with start= and end=");
    else if (has_bid && !w->bid[0])
        json_error(w, 400, "tenant= is empty");
    else if (has_keep && strcmp(keep, "true") && strcmp(keep, "1") && strcmp(keep, "false") &&
             strcmp(keep, "0"))
        json_error(w, 400, "keep_mirror= is true or false");
    else if (has_keep && !has_bid)
        json_error(w, 400, "keep_mirror= goes with tenant=");
    else if (has_match && (!has_start || !has_end))
        json_error(w, 400, "match= needs start= and end=");
    else if (has_match &&
             (mt_promql_parse_time(t0, &ms0) || mt_promql_parse_time(t1, &ms1) || ms0 >= ms1))
        json_error(w, 400, "start and end must be times (RFC 3339 or seconds), start before end");
    if (w->status) {
        mt_http_respond(c, w->status, "application/json", w->body, strlen(w->body));
        free(w);
        return;
    }
    w->from = ms0 * 1000000, w->to = ms1 * 1000000;
    snprintf(w->tenant, sizeof w->tenant, "%s", tenant ? tenant : "");
    w->c = c;
    w->e = c->srv->eng;
    w->req.data = w;
    if (mt_server_queue_work(c, &w->req, run, done)) {
        static const char busy[] = "{\"status\":\"error\",\"error\":\"cannot run the delete\"}";
        mt_http_respond(c, 500, "application/json", busy, sizeof busy - 1);
        free(w);
    }
}
