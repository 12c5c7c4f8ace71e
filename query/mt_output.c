/*
 * mt_output.c — query results as CSV, a tab-separated table, or JSON (the
 * stable shapes of docs/query.md), written through a callback so the CLI
 * (stdout) and metrond's HTTP API (a response body) print the same bytes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_query.h"
#include "mt_time.h"

typedef struct out {
    mt_write_fn fn;
    void *ud;
    int rc;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (!o->rc && n) o->rc = o->fn(o->ud, s, n);
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A CSV field: quoted when it holds a comma, quote or newline (RFC 4180). */
static void csv_field(out *o, const char *s, size_t n)
{
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n)) {
        put(o, s, n);
        return;
    }
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') put(o, "\"", 1);
        put(o, s + i, 1);
    }
    put(o, "\"", 1);
}

static void json_string(out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            putf(o, "\\%c", c);
        else if (c < 0x20)
            putf(o, "\\u%04x", c);
        else
            put(o, s + i, 1);
    }
    put(o, "\"", 1);
}

void mt_format_double(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* A cell: the right quoting for the format, a separator before all but the first. */
static void cell(out *o, mt_output_format f, bool first, const char *s, size_t n, bool text)
{
    if (!first) put(o, f == MT_OUT_TABLE ? "\t" : ",", 1);
    if (f == MT_OUT_CSV)
        csv_field(o, s, n);
    else if (f == MT_OUT_JSON && text)
        json_string(o, s, n);
    else
        put(o, s, n);
}

int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows)
{
    out o = {fn, ud, 0};
    bool per_series = !spec->by_none && !spec->nby;
    /* header */
    if (f == MT_OUT_JSON) puts_(&o, "{\"columns\":[");
    bool first = true;
    if (per_series) cell(&o, f, first, "series", 6, true), first = false;
    for (size_t i = 0; i < spec->nby; i++)
        cell(&o, f, first, spec->by[i], strlen(spec->by[i]), true), first = false;
    cell(&o, f, first, "time", 4, true);
    if (!spec->naggs) cell(&o, f, false, "value", 5, true);
    for (size_t i = 0; i < spec->naggs; i++)
        cell(&o, f, false, spec->aggs[i].name, strlen(spec->aggs[i].name), true);
    puts_(&o, f == MT_OUT_JSON ? "],\"rows\":[" : "\n");

    mt_row row;
    int rc = MT_ENOTFOUND;
    size_t n = 0;
    while (!o.rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        char t[48], v[64];
        mt_time_format(row.time, t, sizeof t);
        if (f == MT_OUT_JSON) puts_(&o, n ? ",[" : "[");
        first = true;
        if (per_series) {
            cell(&o, f, first, row.group, strlen(row.group), true);
            first = false;
        } else {
            /* "tag=v,tag2=w" in the order of --by: one cell per value */
            const char *g = row.group;
            for (size_t i = 0; i < spec->nby; i++) {
                const char *eq = strchr(g, '='), *end = eq ? strchr(eq, ',') : NULL;
                /* values may hold commas: the next cell starts at ",<next tag>=" */
                if (eq && i + 1 < spec->nby) {
                    char next[300];
                    snprintf(next, sizeof next, ",%s=", spec->by[i + 1]);
                    end = strstr(eq, next);
                }
                if (!end) end = eq ? eq + strlen(eq) : g;
                cell(&o, f, first, eq ? eq + 1 : "", eq ? (size_t)(end - eq - 1) : 0, true);
                first = false;
                g = *end ? end + 1 : end;
            }
        }
        cell(&o, f, first, t, strlen(t), true);
        if (!spec->naggs) {
            const char *s = v;
            size_t sl;
            switch (row.type) {
            case MT_VT_FLOAT: mt_format_double(row.raw.f, v, sizeof v); break;
            case MT_VT_INT: snprintf(v, sizeof v, "%lld", (long long)row.raw.i); break;
            case MT_VT_UINT: snprintf(v, sizeof v, "%llu", (unsigned long long)row.raw.u); break;
            case MT_VT_BOOL: snprintf(v, sizeof v, "%s", row.raw.u ? "true" : "false"); break;
            case MT_VT_STRING: s = row.str + MT_VAL_STR_OFF(row.raw); break;
            }
            sl = row.type == MT_VT_STRING ? MT_VAL_STR_LEN(row.raw) : strlen(v);
            cell(&o, f, false, s, sl, row.type == MT_VT_STRING);
        }
        for (size_t i = 0; i < row.nvalues; i++) {
            bool none = isnan(row.values[i]) || isinf(row.values[i]);
            if (!none) mt_format_double(row.values[i], v, sizeof v);
            const char *s = none ? (f == MT_OUT_JSON ? "null" : "") : v;
            cell(&o, f, false, s, strlen(s), false);
        }
        puts_(&o, f == MT_OUT_JSON ? "]" : "\n");
        n++;
    }
    if (f == MT_OUT_JSON) puts_(&o, "]}\n");
    if (rows) *rows = n;
    if (o.rc) return o.rc;
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}
