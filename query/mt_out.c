/*
 * mt_out.c — the cells of CSV, table and JSON output (mt_out.h).
 */
#include "mt_out.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mt_json.h"

void mt_out_put(mt_out *o, const char *s, size_t n)
{
    if (!o->rc && n) o->rc = o->fn(o->ud, s, n);
}

void mt_out_puts(mt_out *o, const char *s)
{
    mt_out_put(o, s, strlen(s));
}

void mt_out_printf(mt_out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) mt_out_put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A CSV field: quoted when it holds a comma, quote or newline (RFC 4180). */
static void csv_field(mt_out *o, const char *s, size_t n)
{
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n)) {
        mt_out_put(o, s, n);
        return;
    }
    mt_out_put(o, "\"", 1);
    for (const char *end = s + n, *q; s < end; s = q + 1) {
        q = memchr(s, '"', (size_t)(end - s));
        if (!q) {
            mt_out_put(o, s, (size_t)(end - s));
            break;
        }
        mt_out_put(o, s, (size_t)(q - s + 1)); /* up to the quote, then the quote again */
        mt_out_put(o, "\"", 1);
    }
    mt_out_put(o, "\"", 1);
}

static void json_put(void *o, const char *s, size_t n)
{
    mt_out_put(o, s, n);
}

/* A cell: the right quoting for the format, a separator before all but the first. */
void mt_out_cell(mt_out *o, mt_output_format f, bool first, const char *s, size_t n, bool text)
{
    if (!first) mt_out_put(o, f == MT_OUT_TABLE ? "\t" : ",", 1);
    if (f == MT_OUT_CSV)
        csv_field(o, s, n);
    else if (f == MT_OUT_JSON && text)
        mt_json_str(s, n, json_put, o);
    else
        mt_out_put(o, s, n);
}
