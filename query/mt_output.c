/*
 * mt_output.c — query results as CSV, a tab-separated table, or JSON (the
 * stable shapes of docs/query.md), written through a callback so the CLI
 * (stdout) and metrond's HTTP API (a response body) print the same bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_out.h"
#include "mt_query.h"
#include "mt_query_int.h"
#include "mt_time.h"

struct mt_query_out {
    mt_out o;
    const mt_query_spec *spec;
    mt_output_format f;
    bool per_series; /* the first column is the series (neither --by nor by none) */
    size_t rows;
    /* MT_OUT_SERIES: the group being collected, its time column and value columns */
    char *group;                        /* malloc'd; NULL before the first row */
    mt_sbuf col[1 + MT_QUERY_MAX_AGGS]; /* "time", then "value" or one per aggregation */
    size_t ncol;
};

/* "tag=v,tag2=w" (a group of --by, in its order) as one value per tag: the i-th into *v, *n. */
static const char *by_value(const mt_query_spec *spec, const char **g, size_t i, size_t *n)
{
    const char *eq = strchr(*g, '='), *end = eq ? strchr(eq, ',') : NULL;
    /* values may hold commas: the next value starts at ",<next tag>=" */
    if (eq && i + 1 < spec->nby) {
        char next[300];
        snprintf(next, sizeof next, ",%s=", spec->by[i + 1]);
        end = strstr(eq, next);
    }
    if (!end) end = eq ? eq + strlen(eq) : *g;
    const char *v = eq ? eq + 1 : "";
    *n = eq ? (size_t)(end - eq - 1) : 0;
    *g = *end ? end + 1 : end;
    return v;
}

/* A raw value as text into v (capacity 64) or, for strings, a pointer into the row. */
static const char *raw_value(const mt_row *row, char *v, size_t *len)
{
    switch (row->type) {
    case MT_VT_FLOAT: mt_format_double(row->raw.f, v, 64); break;
    case MT_VT_INT: snprintf(v, 64, "%lld", (long long)row->raw.i); break;
    case MT_VT_UINT: snprintf(v, 64, "%llu", (unsigned long long)row->raw.u); break;
    case MT_VT_BOOL: snprintf(v, 64, "%s", row->raw.u ? "true" : "false"); break;
    case MT_VT_STRING: *len = MT_VAL_STR_LEN(row->raw); return row->str + MT_VAL_STR_OFF(row->raw);
    }
    *len = strlen(v);
    return v;
}

static int sb_write(void *ud, const char *buf, size_t len)
{
    mt_sbuf *b = ud;
    mt_sb_put(b, buf, len);
    return b->oom ? -ENOMEM : 0;
}

/* MT_OUT_SERIES: write the group collected so far, and empty its columns. */
static void series_flush(mt_query_out *w)
{
    mt_out *o = &w->o;
    if (!w->group) return;
    mt_out_puts(o, w->rows ? ",\n{" : "{");
    if (w->per_series) {
        mt_out_puts(o, "\"series\":");
        mt_out_cell(o, MT_OUT_JSON, true, w->group, strlen(w->group), true);
        mt_out_puts(o, ",");
    } else if (w->spec->nby) {
        mt_out_puts(o, "\"group\":{");
        const char *g = w->group;
        for (size_t i = 0; i < w->spec->nby; i++) {
            size_t n;
            const char *v = by_value(w->spec, &g, i, &n);
            mt_out_cell(o, MT_OUT_JSON, i == 0, w->spec->by[i], strlen(w->spec->by[i]), true);
            mt_out_puts(o, ":");
            mt_out_cell(o, MT_OUT_JSON, true, v, n, true);
        }
        mt_out_puts(o, "},");
    }
    for (size_t c = 0; c < w->ncol; c++) {
        const char *name = c == 0 ? "time" : w->spec->naggs ? w->spec->aggs[c - 1].name : "value";
        if (c) mt_out_puts(o, ",");
        mt_out_cell(o, MT_OUT_JSON, true, name, strlen(name), true);
        mt_out_puts(o, ":[");
        mt_out_put(o, w->col[c].p ? w->col[c].p : "", w->col[c].len);
        mt_out_puts(o, "]");
        w->col[c].len = 0;
    }
    mt_out_puts(o, "}");
    w->rows++;
    free(w->group);
    w->group = NULL;
}

static int series_row(mt_query_out *w, const mt_row *row)
{
    if (w->group && strcmp(w->group, row->group)) series_flush(w);
    if (!w->group && !(w->group = strdup(row->group))) return -ENOMEM;
    bool first = w->col[0].len == 0;
    char t[48], v[64];
    mt_time_format(row->time, t, sizeof t);
    mt_out c = {sb_write, &w->col[0], 0};
    mt_out_cell(&c, MT_OUT_JSON, first, t, strlen(t), true);
    if (!w->spec->naggs) {
        size_t n;
        const char *s = raw_value(row, v, &n);
        c.ud = &w->col[1];
        mt_out_cell(&c, MT_OUT_JSON, first, s, n, row->type == MT_VT_STRING);
    }
    for (size_t i = 0; i < row->nvalues && i + 1 < w->ncol; i++) {
        bool none = isnan(row->values[i]) || isinf(row->values[i]);
        if (!none) mt_format_double(row->values[i], v, sizeof v);
        c.ud = &w->col[i + 1];
        mt_out_cell(&c, MT_OUT_JSON, first, none ? "null" : v, strlen(none ? "null" : v), false);
    }
    return c.rc;
}

/* One point as a line of line protocol: "<measurement,tags> <field>=<value> <ns>". */
static void lp_row(mt_out *o, const mt_row *row)
{
    /* the label is "measurement,tags field": the field follows the last unescaped space */
    const char *label = row->group, *sp = NULL;
    for (const char *p = label; *p; p++)
        if (*p == ' ' && (p == label || p[-1] != '\\')) sp = p;
    if (!sp) return;
    char v[64];
    mt_out_put(o, label, (size_t)(sp - label));
    mt_out_put(o, " ", 1);
    mt_out_puts(o, sp + 1);
    mt_out_put(o, "=", 1);
    switch (row->type) {
    case MT_VT_FLOAT: mt_out_put(o, v, mt_format_double(row->raw.f, v, sizeof v)); break;
    case MT_VT_INT: mt_out_printf(o, "%lldi", (long long)row->raw.i); break;
    case MT_VT_UINT: mt_out_printf(o, "%lluu", (unsigned long long)row->raw.u); break;
    case MT_VT_BOOL: mt_out_puts(o, row->raw.u ? "true" : "false"); break;
    case MT_VT_STRING: {
        const char *s = row->str + MT_VAL_STR_OFF(row->raw);
        size_t n = MT_VAL_STR_LEN(row->raw), run = 0;
        mt_out_put(o, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '"' && s[i] != '\\') continue;
            mt_out_put(o, s + run, i - run);
            mt_out_put(o, "\\", 1);
            run = i; /* the quote or backslash itself goes with the next run */
        }
        mt_out_put(o, s + run, n - run);
        mt_out_put(o, "\"", 1);
        break;
    }
    }
    mt_out_printf(o, " %lld\n", (long long)row->time);
}

int mt_query_out_open(const mt_query_spec *spec, mt_output_format f, mt_write_fn fn, void *ud,
                      mt_query_out **out)
{
    *out = NULL;
    if (f == MT_OUT_LP && spec->naggs) return MT_EINVAL;
    mt_query_out *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    w->o = (mt_out){fn, ud, 0};
    w->spec = spec;
    w->f = f;
    w->per_series = !spec->by_none && !spec->nby;
    w->ncol = 1 + (spec->naggs ? spec->naggs : 1);
    mt_out *o = &w->o;
    *out = w;
    if (f == MT_OUT_LP) return MT_OK;
    mt_output_format hf = f == MT_OUT_SERIES ? MT_OUT_JSON : f;
    if (hf == MT_OUT_JSON) mt_out_puts(o, "{\"columns\":[");
    bool first = true;
    if (f != MT_OUT_SERIES) {
        if (w->per_series) mt_out_cell(o, hf, first, "series", 6, true), first = false;
        for (size_t i = 0; i < spec->nby; i++)
            mt_out_cell(o, hf, first, spec->by[i], strlen(spec->by[i]), true), first = false;
    }
    mt_out_cell(o, hf, first, "time", 4, true);
    if (!spec->naggs) mt_out_cell(o, hf, false, "value", 5, true);
    for (size_t i = 0; i < spec->naggs; i++)
        mt_out_cell(o, hf, false, spec->aggs[i].name, strlen(spec->aggs[i].name), true);
    mt_out_puts(o, f == MT_OUT_SERIES ? "],\"series\":[\n"
                   : f == MT_OUT_JSON ? "],\"rows\":["
                                      : "\n");
    return o->rc;
}

int mt_query_out_row(mt_query_out *w, const mt_row *row)
{
    mt_out *o = &w->o;
    mt_output_format f = w->f;
    const mt_query_spec *spec = w->spec;
    if (o->rc) return o->rc;
    if (f == MT_OUT_LP) {
        lp_row(o, row);
        w->rows++;
        return o->rc;
    }
    if (f == MT_OUT_SERIES) {
        int rc = series_row(w, row);
        return rc ? rc : o->rc;
    }
    char t[48], v[64];
    mt_time_format(row->time, t, sizeof t);
    if (f == MT_OUT_JSON) mt_out_puts(o, w->rows ? ",[" : "[");
    bool first = true;
    if (w->per_series) {
        mt_out_cell(o, f, first, row->group, strlen(row->group), true);
        first = false;
    } else {
        /* one cell per value of --by */
        const char *g = row->group;
        for (size_t i = 0; i < spec->nby; i++) {
            size_t n;
            const char *val = by_value(spec, &g, i, &n);
            mt_out_cell(o, f, first, val, n, true);
            first = false;
        }
    }
    mt_out_cell(o, f, first, t, strlen(t), true);
    if (!spec->naggs) {
        size_t n;
        const char *s = raw_value(row, v, &n);
        mt_out_cell(o, f, false, s, n, row->type == MT_VT_STRING);
    }
    for (size_t i = 0; i < row->nvalues; i++) {
        bool none = isnan(row->values[i]) || isinf(row->values[i]);
        if (!none) mt_format_double(row->values[i], v, sizeof v);
        const char *s = none ? (f == MT_OUT_JSON ? "null" : "") : v;
        mt_out_cell(o, f, false, s, strlen(s), false);
    }
    mt_out_puts(o, f == MT_OUT_JSON ? "]" : "\n");
    w->rows++;
    return o->rc;
}

int mt_query_out_finish(mt_query_out *w)
{
    if (w->f == MT_OUT_SERIES) {
        series_flush(w);
        mt_out_puts(&w->o, "]}\n");
    } else if (w->f == MT_OUT_JSON) {
        mt_out_puts(&w->o, "]}\n");
    }
    return w->o.rc;
}

void mt_query_out_close(mt_query_out *w)
{
    if (!w) return;
    for (size_t i = 0; i < sizeof w->col / sizeof w->col[0]; i++) free(w->col[i].p);
    free(w->group);
    free(w);
}

int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows)
{
    mt_query_out *w;
    int rc = mt_query_out_open(spec, f, fn, ud, &w);
    size_t n = 0;
    mt_row row;
    while (!rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        rc = mt_query_out_row(w, &row);
        n++;
    }
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    int frc = w ? mt_query_out_finish(w) : MT_OK; /* JSON stays whole after a query's error */
    mt_query_out_close(w);
    if (rows) *rows = n;
    return rc ? rc : frc;
}
