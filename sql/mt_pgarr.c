/* mt_pgarr.c — PostgreSQL array literals (mt_pgarr.h). */
#include "mt_pgarr.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"

void mt_pgarr_put(mt_pgarr *a, const char *s, size_t n)
{
    if (a->rc) return;
    if (a->len + n + 2 > a->cap) { /* room for finish's "}" and NUL as well */
        size_t cap = a->cap ? a->cap * 2 : 4096;
        while (cap < a->len + n + 2) cap *= 2;
        char *p = realloc(a->p, cap);
        if (!p) {
            a->rc = -ENOMEM;
            return;
        }
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, s, n);
    a->len += n;
}

void mt_pgarr_sep(mt_pgarr *a)
{
    mt_pgarr_put(a, a->len ? "," : "{", 1);
}

void mt_pgarr_text(mt_pgarr *a, const char *s, size_t n)
{
    mt_pgarr_sep(a);
    mt_pgarr_put(a, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') mt_pgarr_put(a, "\\", 1);
        mt_pgarr_put(a, s + i, 1);
    }
    mt_pgarr_put(a, "\"", 1);
}

void mt_pgarr_null(mt_pgarr *a)
{
    mt_pgarr_sep(a);
    mt_pgarr_put(a, "NULL", 4);
}

void mt_pgarr_double(mt_pgarr *a, double v)
{
    char b[40];
    int n = isnan(v)   ? snprintf(b, sizeof b, "NaN")
            : isinf(v) ? snprintf(b, sizeof b, v > 0 ? "Infinity" : "-Infinity")
                       : snprintf(b, sizeof b, "%.17g", v);
    mt_pgarr_sep(a);
    mt_pgarr_put(a, b, (size_t)n);
}

void mt_pgarr_i64(mt_pgarr *a, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    mt_pgarr_sep(a);
    mt_pgarr_put(a, b, (size_t)n);
}

void mt_pgarr_u64(mt_pgarr *a, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    mt_pgarr_sep(a);
    mt_pgarr_put(a, b, (size_t)n);
}

const char *mt_pgarr_finish(mt_pgarr *a)
{
    if (!a->len) mt_pgarr_put(a, "{", 1);
    mt_pgarr_put(a, "}", 1);
    if (a->rc) return NULL;
    a->p[a->len] = '\0';
    return a->p;
}

static void json_put(void *a, const char *s, size_t n)
{
    mt_pgarr_put(a, s, n);
}

void mt_pgarr_json(mt_pgarr *a, const char *s, size_t n)
{
    mt_json_body(s, n, json_put, a);
}

void mt_pgarr_reset(mt_pgarr *a)
{
    a->len = 0;
    a->rc = 0;
}

void mt_pgarr_free(mt_pgarr *a)
{
    free(a->p);
    memset(a, 0, sizeof *a);
}
