/*
 * mt_pgkpi.c — [kpi.NAME] queries to business_kpi lines (mt_pgkpi.h).
 *
 * The operator's query is wrapped so that PostgreSQL itself hands over the
 * columns by name: each row as to_jsonb, from which `value`, `time` and
 * `business_id` are taken and every other column becomes a tag (key 0x1f
 * value, 0x1e between tags). libpq's column names would do as well; this
 * keeps every conversion (a timestamptz or a number for `time`, numeric to
 * float8) in one place, the server's.
 */
#include "mt_pgkpi.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_log.h"

typedef struct kpi {
    char *name, *query, *period, *industry, *category, *target, *url;
    mt_pg *pg; /* its own connection (url), opened when needed */
} kpi;

struct mt_pgkpi {
    kpi *k;
    size_t n, cap;
};

int mt_pgkpi_new(mt_pgkpi **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? MT_OK : -ENOMEM;
}

void mt_pgkpi_free(mt_pgkpi *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) {
        kpi *x = &k->k[i];
        free(x->name), free(x->query), free(x->period), free(x->industry), free(x->category),
            free(x->target), free(x->url);
        mt_pg_close(x->pg);
    }
    free(k->k);
    free(k);
}

size_t mt_pgkpi_count(const mt_pgkpi *k)
{
    return k ? k->n : 0;
}

/* A name or tag value line protocol can carry: not empty, no line break. */
static bool carriable(const char *s)
{
    return *s && !strpbrk(s, "\n\r");
}

int mt_pgkpi_set(mt_pgkpi *k, const char *name, const char *key, const char *value, char *err,
                 size_t cap)
{
    kpi *x = NULL;
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->k[i].name, name)) x = &k->k[i];
    if (!x) {
        if (!carriable(name) || strlen(name) > 100) {
            snprintf(err, cap, "[kpi.%.40s]: a KPI name is 1 to 100 bytes on one line", name);
            return MT_EINVAL;
        }
        if (mt_grow(&k->k, &k->cap, k->n + 1, sizeof *k->k, 8)) return -ENOMEM;
        x = &k->k[k->n];
        *x = (kpi){0};
        if (!(x->name = strdup(name))) return -ENOMEM;
        k->n++;
    }
    char **slot = !strcmp(key, "query")      ? &x->query
                  : !strcmp(key, "period")   ? &x->period
                  : !strcmp(key, "industry") ? &x->industry
                  : !strcmp(key, "category") ? &x->category
                  : !strcmp(key, "target")   ? &x->target
                  : !strcmp(key, "pg")       ? &x->url
                                             : NULL;
    if (!slot) {
        snprintf(err, cap,
                 "[kpi.%s] unknown setting '%s' (query, period, industry, category, target, pg)",
                 name, key);
        return MT_EINVAL;
    }
    static const char *const periods[] = {"hour", "hourly", "day",   "daily",
                                          "week", "weekly", "month", "monthly"};
    bool ok = true;
    if (slot == &x->period) {
        ok = false;
        for (size_t i = 0; i < 8; i++) ok |= !strcmp(value, periods[i]);
    } else if (slot == &x->industry) {
        ok = carriable(value) && strlen(value) <= 20;
    } else if (slot == &x->category) {
        ok = carriable(value) && strlen(value) <= 50;
    } else if (slot == &x->target) {
        char *end;
        double d = strtod(value, &end);
        ok = end != value && !*end && isfinite(d);
    } else {
        ok = *value != '\0';
    }
    if (!ok) {
        snprintf(err, cap, "[kpi.%s] %s = %s: %s", name, key, value,
                 slot == &x->period     ? "hour, day, week or month"
                 : slot == &x->industry ? "1 to 20 bytes (industry_vertical)"
                 : slot == &x->category ? "1 to 50 bytes (metric_category)"
                 : slot == &x->target   ? "a number"
                                        : "not empty");
        return MT_EINVAL;
    }
    if (slot == &x->query && *slot) { /* an indented line continues the query (inih) */
        size_t n = strlen(*slot);
        char *q = realloc(*slot, n + strlen(value) + 2);
        if (!q) return -ENOMEM;
        q[n] = '\n';
        strcpy(q + n + 1, value);
        *slot = q;
    } else {
        free(*slot);
        if (!(*slot = strdup(value))) return -ENOMEM;
    }
    if (slot == &x->query) { /* a trailing semicolon would end the wrapping statement */
        size_t n = strlen(x->query);
        while (n && strchr("; \t\r\n", x->query[n - 1])) x->query[--n] = '\0';
    }
    return MT_OK;
}

int mt_pgkpi_check(const mt_pgkpi *k, char *err, size_t cap)
{
    for (size_t i = 0; k && i < k->n; i++)
        if (!k->k[i].query || !k->k[i].query[0]) {
            snprintf(err, cap, "[kpi.%s] has no query", k->k[i].name);
            return MT_EINVAL;
        }
    return MT_OK;
}

/* ---- lines -------------------------------------------------------------------------------- */

typedef struct out {
    char **buf;
    size_t *len, *cap;
    int rc;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->rc) return;
    if (*o->len + n + 1 > *o->cap) {
        size_t cap = *o->cap ? *o->cap * 2 : 65536;
        while (cap < *o->len + n + 1) cap *= 2;
        char *b = realloc(*o->buf, cap);
        if (!b) {
            o->rc = -ENOMEM;
            return;
        }
        *o->buf = b;
        *o->cap = cap;
    }
    memcpy(*o->buf + *o->len, s, n);
    *o->len += n;
}

/* A tag key or value, escaped for line protocol (comma, space, equals sign, backslash). */
static void esc(out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ',' || s[i] == ' ' || s[i] == '=' || s[i] == '\\') put(o, "\\", 1);
        put(o, s + i, 1);
    }
}

static void tag(out *o, const char *k, const char *v, size_t vn)
{
    put(o, ",", 1);
    esc(o, k, strlen(k));
    put(o, "=", 1);
    esc(o, v, vn);
}

typedef struct row_ctx {
    const kpi *x;
    const char *business_id;
    int64_t now;
    out *o;
    size_t rows, skipped;
} row_ctx;

static int on_row(void *ud, int ncols, const char *const *v)
{
    row_ctx *c = ud;
    if (ncols != 4) return MT_EINVAL;
    double value;
    char *end;
    if (!v[0] || (value = strtod(v[0], &end), *end) || !isfinite(value)) {
        c->skipped++;
        return MT_OK;
    }
    const char *bid = v[1] && carriable(v[1]) ? v[1] : c->business_id;
    int64_t ts = c->now;
    if (v[2]) {
        double s = strtod(v[2], &end);
        if (!*end && isfinite(s) && fabs(s) < 9e9) ts = (int64_t)llround(s * 1e6) * 1000;
    }
    out *o = c->o;
    put(o, "business_kpi", 12);
    if (bid && *bid) tag(o, "business_id", bid, strlen(bid));
    if (c->x->category) tag(o, "category", c->x->category, strlen(c->x->category));
    tag(o, "industry", c->x->industry ? c->x->industry : "general",
        strlen(c->x->industry ? c->x->industry : "general"));
    tag(o, "metric_name", c->x->name, strlen(c->x->name));
    tag(o, "period", c->x->period ? c->x->period : "day",
        strlen(c->x->period ? c->x->period : "day"));
    /* the other columns: key 0x1f value, 0x1e between; reserved names left out in SQL */
    for (const char *p = v[3]; p && *p;) {
        const char *us = strchr(p, '\x1f'), *rs = strchr(p, '\x1e');
        if (!rs) rs = p + strlen(p);
        if (us && us < rs && us > p && rs > us + 1) {
            char key[256];
            size_t kn = (size_t)(us - p) < sizeof key - 1 ? (size_t)(us - p) : sizeof key - 1;
            memcpy(key, p, kn);
            key[kn] = '\0';
            size_t vn = (size_t)(rs - us - 1);
            if (!memchr(us + 1, '\n', vn) && !memchr(us + 1, '\r', vn) && !strpbrk(key, "\n\r"))
                tag(o, key, us + 1, vn);
        }
        p = *rs ? rs + 1 : rs;
    }
    char tail[96];
    int n = snprintf(tail, sizeof tail, " value=%.17g", value);
    put(o, tail, (size_t)n);
    if (c->x->target) {
        n = snprintf(tail, sizeof tail, ",target=%.17g", strtod(c->x->target, NULL));
        put(o, tail, (size_t)n);
    }
    n = snprintf(tail, sizeof tail, " %lld\n", (long long)ts);
    put(o, tail, (size_t)n);
    c->rows++;
    return o->rc;
}

int mt_pgkpi_collect(mt_pgkpi *k, mt_pg *dflt, const char *business_id, int64_t now, char **buf,
                     size_t *len, size_t *cap, size_t *failed)
{
    *failed = 0;
    out o = {buf, len, cap, 0};
    for (size_t i = 0; k && i < k->n && !o.rc; i++) {
        kpi *x = &k->k[i];
        mt_pg *pg = dflt;
        if (x->url) {
            char err[512];
            if (!x->pg && mt_pg_open(x->url, &x->pg, err, sizeof err)) {
                x->pg = NULL;
                mt_log(MT_LOG_WARN, "msg=\"kpi: cannot connect\" kpi=%s err=\"%s\"", x->name, err);
                (*failed)++;
                continue;
            }
            pg = x->pg;
        }
        if (!pg) {
            (*failed)++;
            continue;
        }
        /* the operator's query, run as written (the config file is code, as in
           sql_exporter); its rows handed over by column name */
        size_t ql = strlen(x->query) + 1024;
        char *sql = malloc(ql);
        if (!sql) return -ENOMEM;
        snprintf(
            sql, ql,
            "/* metron-pgstat kpi */ SELECT j ->> 'value', j ->> 'business_id',"
            " CASE WHEN jsonb_typeof(j -> 'time') = 'number' THEN (j ->> 'time')::float8"
            " WHEN j ? 'time' THEN extract(epoch FROM (j ->> 'time')::timestamptz)::float8 END,"
            " (SELECT string_agg(key || E'\\x1f' || value, E'\\x1e' ORDER BY key)"
            " FROM jsonb_each_text(j) WHERE value IS NOT NULL AND value <> ''"
            " AND key NOT IN ('value', 'time', 'business_id', 'metric_name', 'period',"
            " 'industry', 'category', 'target'))"
            " FROM (SELECT to_jsonb(q) AS j FROM (%s\n) q) r",
            x->query);
        row_ctx c = {x, business_id, now, &o, 0, 0};
        int rc = mt_pg_query_rows(pg, sql, 0, NULL, on_row, &c);
        free(sql);
        if (rc == -ENOMEM) return rc;
        if (rc) {
            (*failed)++;
            mt_log(MT_LOG_WARN, "msg=\"kpi query failed\" kpi=%s err=\"%s\"", x->name,
                   rc == MT_EPG ? mt_pg_errmsg(pg) : mt_strerror(rc));
            if (x->pg && !mt_pg_ok(x->pg)) mt_pg_close(x->pg), x->pg = NULL;
        } else if (c.skipped) {
            mt_log(MT_LOG_WARN, "msg=\"kpi rows without a numeric value skipped\" kpi=%s rows=%zu",
                   x->name, c.skipped);
        }
    }
    return o.rc;
}
