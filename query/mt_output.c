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

#include "mt_out.h"
#include "mt_query.h"
#include "mt_time.h"

void mt_format_double(double v, char *buf, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

int mt_query_write(mt_query *q, const mt_query_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows)
{
    mt_out o = {fn, ud, 0};
    bool per_series = !spec->by_none && !spec->nby;
    /* header */
    if (f == MT_OUT_JSON) mt_out_puts(&o, "{\"columns\":[");
    bool first = true;
    if (per_series) mt_out_cell(&o, f, first, "series", 6, true), first = false;
    for (size_t i = 0; i < spec->nby; i++)
        mt_out_cell(&o, f, first, spec->by[i], strlen(spec->by[i]), true), first = false;
    mt_out_cell(&o, f, first, "time", 4, true);
    if (!spec->naggs) mt_out_cell(&o, f, false, "value", 5, true);
    for (size_t i = 0; i < spec->naggs; i++)
        mt_out_cell(&o, f, false, spec->aggs[i].name, strlen(spec->aggs[i].name), true);
    mt_out_puts(&o, f == MT_OUT_JSON ? "],\"rows\":[" : "\n");

    mt_row row;
    int rc = MT_ENOTFOUND;
    size_t n = 0;
    while (!o.rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        char t[48], v[64];
        mt_time_format(row.time, t, sizeof t);
        if (f == MT_OUT_JSON) mt_out_puts(&o, n ? ",[" : "[");
        first = true;
        if (per_series) {
            mt_out_cell(&o, f, first, row.group, strlen(row.group), true);
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
                mt_out_cell(&o, f, first, eq ? eq + 1 : "", eq ? (size_t)(end - eq - 1) : 0, true);
                first = false;
                g = *end ? end + 1 : end;
            }
        }
        mt_out_cell(&o, f, first, t, strlen(t), true);
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
            mt_out_cell(&o, f, false, s, sl, row.type == MT_VT_STRING);
        }
        for (size_t i = 0; i < row.nvalues; i++) {
            bool none = isnan(row.values[i]) || isinf(row.values[i]);
            if (!none) mt_format_double(row.values[i], v, sizeof v);
            const char *s = none ? (f == MT_OUT_JSON ? "null" : "") : v;
            mt_out_cell(&o, f, false, s, strlen(s), false);
        }
        mt_out_puts(&o, f == MT_OUT_JSON ? "]" : "\n");
        n++;
    }
    if (f == MT_OUT_JSON) mt_out_puts(&o, "]}\n");
    if (rows) *rows = n;
    if (o.rc) return o.rc;
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}
