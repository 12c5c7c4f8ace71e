/*
 * mt_promapi.c — Prometheus' HTTP query API under /prometheus/api/v1/
 * (so http://host:8086/prometheus is a Grafana Prometheus data source):
 *
 *   query        query, time                    instant query (query/mt_promql.h)
 *   query_range  query, start, end, step        range query
 *   series       match[] (required), start, end
 *   labels       match[], start, end
 *   label/<name>/values  match[], start, end
 *   metadata, query_exemplars   empty answers (Metron keeps no metric types or exemplars)
 *   status/buildinfo            the Prometheus API version Metron answers as
 *
 * Parameters come from the URL and, for POST, from an
 * application/x-www-form-urlencoded body, as Prometheus takes them. Answers
 * are Prometheus' envelopes: {"status":"success","data":...}, or
 * {"status":"error","errorType":"bad_data|execution|internal|not_found",
 * "error":"..."} with 400, 422, 500 or 404. The reader's tenant is the one
 * mt_http.c decided on the request's headers (RELIABILITY 12), passed in.
 * Queries run on libuv's thread pool; the answer is written on the loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_auth.h"
#include "mt_buf.h"
#include "mt_json.h"
#include "mt_server_int.h"
#include "mt_promql.h"
#include "mt_time.h"

#define PREFIX      "/prometheus/api/v1/"
#define MAX_PARAMS  256
#define API_VERSION "2.42.0" /* the Prometheus HTTP API Metron answers as (buildinfo) */

typedef enum route { R_QUERY, R_RANGE, R_SERIES, R_LABELS, R_VALUES } route;

typedef struct param {
    char *name, *value; /* percent-decoded, malloc'd */
} param;

typedef struct promapi_work {
    uv_work_t req;
    mt_conn *c;
    route r;
    param p[MAX_PARAMS];
    size_t np;
    char label[256]; /* R_VALUES */
    const char *match[MAX_PARAMS];
    size_t nmatch;
    mt_promql_spec spec;
    int64_t start, end;
    char tenant[MT_AUTH_TENANT_MAX + 1]; /* the reader's; "": every tenant */
    bool has_tenant;
    mt_sbuf body; /* the answer */
    int status;
    const char *etype;
    char err[4608];
} promapi_work;

static void work_free(promapi_work *w)
{
    for (size_t i = 0; i < w->np; i++) free(w->p[i].name), free(w->p[i].value);
    mt_sb_free(&w->body);
    free(w);
}

/* Percent-decode s[0..n) ('+' is a space) into a new string. */
static char *decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && s[i + 1] && strchr("0123456789abcdefABCDEF", s[i + 1]) &&
            s[i + 2] && strchr("0123456789abcdefABCDEF", s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            o[k++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            o[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    o[k] = '\0';
    return o;
}

/* Split a query string or form body into w's parameters: false when out of memory or too many. */
static bool add_params(promapi_work *w, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '&') j++;
        if (j > i) {
            if (w->np == MAX_PARAMS) return false;
            const char *eq = memchr(s + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (s + i)) : j - i;
            param *p = &w->p[w->np];
            p->name = decode(s + i, kl);
            p->value = eq ? decode(eq + 1, (size_t)(s + j - eq - 1)) : decode("", 0);
            if (!p->name || !p->value) {
                free(p->name), free(p->value);
                return false;
            }
            w->np++;
        }
        i = j + 1;
    }
    return true;
}

static const char *get(const promapi_work *w, const char *name)
{
    for (size_t i = 0; i < w->np; i++)
        if (!strcmp(w->p[i].name, name)) return w->p[i].value;
    return NULL;
}

static void respond_json(mt_conn *c, int status, const char *body, size_t len)
{
    mt_http_respond(c, status, "application/json", body, len);
}

/* Prometheus' error envelope. */
static void respond_perr(mt_conn *c, int status, const char *etype, const char *msg)
{
    size_t n = strlen(msg), cap = 96 + 6 * n;
    char *b = malloc(cap);
    if (!b) {
        mt_http_respond(c, 500, "application/json", "{\"status\":\"error\"}", 18);
        return;
    }
    size_t pos =
        (size_t)snprintf(b, cap, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"", etype);
    pos = mt_json_escape(b, cap - 2, pos, msg, n); /* all of it: cap has room for 6 a byte */
    pos += (size_t)snprintf(b + pos, cap - pos, "\"}");
    respond_json(c, status, b, pos);
    free(b);
}

static int to_body(void *ud, const char *buf, size_t len)
{
    promapi_work *w = ud;
    if (!w->body.cap && len > 65536) {
        /* mt_promql_query writes its answer in one call: then one allocation of its size */
        if (!(w->body.p = malloc(len + 1))) return -ENOMEM;
        w->body.cap = len + 1;
    }
    return mt_sb_write(&w->body, buf, len);
}

static void run(uv_work_t *req)
{
    promapi_work *w = req->data;
    mt_engine *e = w->c->srv->eng;
    const char *t = w->has_tenant ? w->tenant : NULL;
    int rc;
    if (w->r == R_QUERY || w->r == R_RANGE) {
        w->spec.tenant = t;
        w->spec.cache = w->c->srv->catalogs;
        rc = mt_promql_query(e, &w->spec, to_body, w, w->err, sizeof w->err);
    } else {
        mt_promql_list what = w->r == R_SERIES   ? MT_PROMQL_SERIES
                              : w->r == R_LABELS ? MT_PROMQL_LABELS
                                                 : MT_PROMQL_LABEL_VALUES;
        rc = mt_promql_list_write(e, what, w->label, w->match, w->nmatch, w->start, w->end, t,
                                  to_body, w, w->err, sizeof w->err);
    }
    w->status = rc == MT_OK       ? 200
                : rc == MT_EPARSE ? 400
                : rc == MT_EINVAL ? (w->r == R_QUERY || w->r == R_RANGE ? 422 : 400)
                : rc == MT_ELIMIT ? 422
                                  : 500;
    w->etype = w->status == 400 ? "bad_data" : w->status == 422 ? "execution" : "internal";
}

static void done(uv_work_t *req, int status)
{
    (void)status;
    promapi_work *w = req->data;
    mt_conn *c = w->c;
    if (!c->closing) {
        if (w->status == 200) { /* the answer's bytes go to the socket as they are, not copied */
            mt_http_respond_take(c, 200, "application/json", w->body.p, w->body.len);
            w->body = (mt_sbuf){0};
        } else
            respond_perr(c, w->status, w->etype, w->err);
    }
    work_free(w);
    mt_server *srv = c->srv;
    mt_conn_job_released(c); /* may free c */
    mt_server_work_done(srv);
}

/* A time parameter, or dflt when absent: false (an error answered) when it does not parse. */
static bool time_param(mt_conn *c, promapi_work *w, const char *name, int64_t dflt, int64_t *out)
{
    const char *s = get(w, name);
    if (!s) {
        *out = dflt;
        return true;
    }
    if (mt_promql_parse_time(s, out)) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "invalid parameter \"%s\": cannot parse \"%.200s\" to a valid timestamp", name, s);
        respond_perr(c, 400, "bad_data", msg);
        return false;
    }
    return true;
}

void mt_promapi_handle(mt_conn *c, const char *url, bool post, const char *body, size_t blen,
                       const char *tenant)
{
    size_t plen = strcspn(url, "?");
    const char *path = url + strlen(PREFIX);
    size_t rl =
        plen >= strlen(PREFIX) && !strncmp(url, PREFIX, strlen(PREFIX)) ? plen - strlen(PREFIX) : 0;
#define IS(s) (rl == sizeof(s) - 1 && !memcmp(path, s, rl))
    if (!rl) {
        respond_perr(c, 404, "not_found",
                     "not found: the Prometheus API is under /prometheus/api/v1/");
        return;
    }
    if (IS("status/buildinfo")) {
        static const char b[] = "{\"status\":\"success\",\"data\":{\"version\":\"" API_VERSION
                                "\",\"revision\":\"metron\",\"branch\":\"\",\"buildUser\":\"\","
                                "\"buildDate\":\"\",\"goVersion\":\"\"}}";
        respond_json(c, 200, b, sizeof b - 1);
        return;
    }
    if (IS("metadata")) {
        static const char b[] = "{\"status\":\"success\",\"data\":{}}";
        respond_json(c, 200, b, sizeof b - 1);
        return;
    }
    if (IS("query_exemplars")) {
        static const char b[] = "{\"status\":\"success\",\"data\":[]}";
        respond_json(c, 200, b, sizeof b - 1);
        return;
    }
    promapi_work *w = calloc(1, sizeof *w);
    if (!w) {
        respond_perr(c, 500, "internal", "out of memory");
        return;
    }
    const char *vals = "/values";
    size_t vl = strlen(vals);
    if (IS("query"))
        w->r = R_QUERY;
    else if (IS("query_range"))
        w->r = R_RANGE;
    else if (IS("series"))
        w->r = R_SERIES;
    else if (IS("labels"))
        w->r = R_LABELS;
    else if (rl > 6 + vl && !memcmp(path, "label/", 6) && !memcmp(path + rl - vl, vals, vl) &&
             rl - 6 - vl < sizeof w->label) {
        w->r = R_VALUES;
        char *name = decode(path + 6, rl - 6 - vl);
        if (!name) {
            free(w);
            respond_perr(c, 500, "internal", "out of memory");
            return;
        }
        snprintf(w->label, sizeof w->label, "%s", name);
        free(name);
    } else {
        free(w);
        char msg[400];
        snprintf(msg, sizeof msg,
                 "not found: %.*s (Metron answers query, query_range, series, "
                 "labels, label/<name>/values, metadata, status/buildinfo)",
                 (int)(rl < 200 ? rl : 200), path);
        respond_perr(c, 404, "not_found", msg);
        return;
    }
#undef IS
    if (!add_params(w, url + plen + (url[plen] ? 1 : 0),
                    strlen(url + plen + (url[plen] ? 1 : 0))) ||
        (post && body && !add_params(w, body, blen))) {
        work_free(w);
        respond_perr(c, 400, "bad_data", "too many parameters (or out of memory)");
        return;
    }
    for (size_t i = 0; i < w->np; i++)
        if (!strcmp(w->p[i].name, "match[]")) w->match[w->nmatch++] = w->p[i].value;
    int64_t now = mt_now_ns() / 1000000;
    const char *bad = NULL;
    char msg[512];
    if (w->r == R_QUERY || w->r == R_RANGE) {
        w->spec.expr = get(w, "query");
        if (!w->spec.expr) bad = "invalid parameter \"query\": missing";
    }
    if (!bad && w->r == R_QUERY) {
        if (!time_param(c, w, "time", now, &w->spec.start)) goto refused;
        w->spec.end = w->spec.start;
    } else if (!bad && w->r == R_RANGE) {
        const char *st = get(w, "step");
        if (!get(w, "start"))
            bad = "invalid parameter \"start\": missing";
        else if (!get(w, "end"))
            bad = "invalid parameter \"end\": missing";
        else if (!st)
            bad = "invalid parameter \"step\": missing";
        else if (!time_param(c, w, "start", 0, &w->spec.start) ||
                 !time_param(c, w, "end", 0, &w->spec.end))
            goto refused;
        else if (mt_promql_parse_step(st, &w->spec.step))
            bad = "invalid parameter \"step\": zero or negative query resolution step widths are "
                  "not accepted. Try a positive integer";
        else if (w->spec.end < w->spec.start)
            bad = "invalid parameter \"end\": end timestamp must not be before start time";
        else if ((w->spec.end - w->spec.start) / w->spec.step >= MT_PROMQL_MAX_STEPS)
            bad = "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                  "the query resolution (?step=XX)";
    } else if (!bad) {
        if (!time_param(c, w, "start", INT64_MIN, &w->start) ||
            !time_param(c, w, "end", INT64_MAX, &w->end))
            goto refused;
        if (w->r == R_SERIES && !w->nmatch) bad = "no match[] parameter provided";
    }
    if (bad) {
        snprintf(msg, sizeof msg, "%s", bad);
        respond_perr(c, 400, "bad_data", msg);
        goto refused;
    }
    snprintf(w->tenant, sizeof w->tenant, "%s", tenant ? tenant : "");
    w->has_tenant = tenant != NULL;
    w->c = c;
    w->req.data = w;
    if (mt_server_queue_work(c, &w->req, run, done)) {
        respond_perr(c, 500, "internal", "cannot run the query");
        goto refused;
    }
    return;
refused:
    work_free(w);
}
