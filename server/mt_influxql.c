/*
 * mt_influxql.c — InfluxDB 1.x's setup statements on /query (mt_influxql.h).
 * A small hand lexer: the statements are a handful of fixed shapes, and
 * anything past them is refused by name rather than guessed at.
 */
#include "mt_influxql.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mt_buf.h"
#include "mt_json.h"
#include "mt_series.h"

#define TOK_MAX  256
#define MAX_KEYS 32

/* ---- output -------------------------------------------------------------------------- */

/* mt_json's sink into the answer */
static void put_cb(void *ud, const char *b, size_t n)
{
    mt_sb_put(ud, b, n);
}

/* a JSON string, quoted and escaped */
static void put_str(mt_sbuf *s, const char *b, size_t n)
{
    mt_json_str(b, n, put_cb, s);
}

/* ---- lexing ---------------------------------------------------------------------------- */

enum { T_END, T_WORD, T_QUOTED, T_PUNCT, T_OTHER };

typedef struct lexer {
    const char *start, *p;
    int kind;
    char tok[TOK_MAX];
    size_t at; /* the token's offset, 0-based */
} lexer;

static void next(lexer *l)
{
    while (isspace((unsigned char)*l->p)) l->p++;
    l->at = (size_t)(l->p - l->start);
    size_t n = 0;
    char c = *l->p;
    if (!c || c == ';') {
        l->kind = T_END;
        l->tok[0] = '\0';
        return;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        while (isalnum((unsigned char)*l->p) || *l->p == '_') {
            if (n + 1 < TOK_MAX) l->tok[n++] = *l->p;
            l->p++;
        }
        l->kind = T_WORD;
    } else if (c == '"' || c == '\'') {
        l->p++;
        while (*l->p && *l->p != c) {
            if (*l->p == '\\' && l->p[1]) l->p++;
            if (n + 1 < TOK_MAX) l->tok[n++] = *l->p;
            l->p++;
        }
        if (*l->p == c) l->p++;
        l->kind = T_QUOTED;
    } else if (c == '=' && (l->p[1] == '~' || l->p[1] == '=')) {
        l->tok[n++] = *l->p++;
        l->tok[n++] = *l->p++;
        l->kind = T_OTHER; /* =~ (a regex follows) */
    } else if (c == '=' || c == '(' || c == ')' || c == ',') {
        l->tok[n++] = c;
        l->p++;
        l->kind = T_PUNCT;
    } else {
        /* a regex, an operator, a number: nothing the supported statements take */
        while (*l->p && !isspace((unsigned char)*l->p) && *l->p != ';') {
            if (n + 1 < TOK_MAX) l->tok[n++] = *l->p;
            l->p++;
        }
        l->kind = T_OTHER;
    }
    l->tok[n] = '\0';
}

static bool is_kw(const lexer *l, const char *kw)
{
    return l->kind == T_WORD && !strcasecmp(l->tok, kw);
}

static bool is_name(const lexer *l)
{
    return l->kind == T_WORD || l->kind == T_QUOTED;
}

/* ---- statements ------------------------------------------------------------------------- */

enum { S_CREATE_DB, S_SHOW_DBS, S_SHOW_MEAS, S_TAG_KEYS, S_TAG_VALUES, S_FIELD_KEYS };

typedef struct stmt {
    int kind;
    char on[TOK_MAX], from[TOK_MAX];
    bool has_on, has_from;
    char keys[MAX_KEYS][TOK_MAX];
    size_t nkeys;
} stmt;

#define SUPPORTED                                                                                  \
    "CREATE DATABASE, SHOW DATABASES, SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG VALUES WITH KEY " \
    "and SHOW FIELD KEYS (queries: /api/v1/query, docs/query.md)"

/* the error text for the token at l, as InfluxDB words its parse errors */
static void unexpected(const lexer *l, const char *expected, char *err, size_t cap)
{
    snprintf(err, cap, "error parsing query: found %s, expected %s at line 1, char %zu",
             l->kind == T_END ? "EOF" : l->tok, expected, l->at + 1);
}

/* [ON db] [FROM m] in either order, as InfluxQL takes them. False with err set. */
static bool on_from(lexer *l, stmt *s, bool from_ok, char *err, size_t cap)
{
    for (;;) {
        if (is_kw(l, "ON") && !s->has_on) {
            next(l);
            if (!is_name(l)) return unexpected(l, "identifier", err, cap), false;
            snprintf(s->on, sizeof s->on, "%s", l->tok);
            s->has_on = true;
            next(l);
        } else if (from_ok && is_kw(l, "FROM") && !s->has_from) {
            next(l);
            if (!is_name(l))
                return unexpected(l, "identifier (a measurement; no regex)", err, cap), false;
            snprintf(s->from, sizeof s->from, "%s", l->tok);
            s->has_from = true;
            next(l);
        } else {
            return true;
        }
    }
}

/* One statement from l; false with err set. */
static bool parse_stmt(lexer *l, stmt *s, char *err, size_t cap)
{
    memset(s, 0, sizeof *s);
    if (is_kw(l, "CREATE")) {
        next(l);
        if (!is_kw(l, "DATABASE")) return unexpected(l, "DATABASE", err, cap), false;
        next(l);
        if (!is_name(l)) return unexpected(l, "identifier", err, cap), false;
        s->kind = S_CREATE_DB;
        /* WITH DURATION ... and the like: accepted, as retention is metrond's [retention] */
        while (l->kind != T_END) next(l);
        return true;
    }
    if (!is_kw(l, "SHOW")) {
        snprintf(err, cap,
                 "error parsing query: found %s at line 1, char %zu: metron answers " SUPPORTED,
                 l->kind == T_END ? "EOF" : l->tok, l->at + 1);
        return false;
    }
    next(l);
    if (is_kw(l, "DATABASES")) {
        s->kind = S_SHOW_DBS;
        next(l);
    } else if (is_kw(l, "MEASUREMENTS")) {
        s->kind = S_SHOW_MEAS;
        next(l);
        if (!on_from(l, s, false, err, cap)) return false;
    } else if (is_kw(l, "FIELD")) {
        next(l);
        if (!is_kw(l, "KEYS")) return unexpected(l, "KEYS", err, cap), false;
        next(l);
        s->kind = S_FIELD_KEYS;
        if (!on_from(l, s, true, err, cap)) return false;
    } else if (is_kw(l, "TAG")) {
        next(l);
        if (is_kw(l, "KEYS")) {
            next(l);
            s->kind = S_TAG_KEYS;
            if (!on_from(l, s, true, err, cap)) return false;
        } else if (is_kw(l, "VALUES")) {
            next(l);
            s->kind = S_TAG_VALUES;
            if (!on_from(l, s, true, err, cap)) return false;
            if (!is_kw(l, "WITH")) return unexpected(l, "WITH", err, cap), false;
            next(l);
            if (!is_kw(l, "KEY")) return unexpected(l, "KEY", err, cap), false;
            next(l);
            if (l->kind == T_PUNCT && l->tok[0] == '=') {
                next(l);
                if (!is_name(l)) return unexpected(l, "identifier", err, cap), false;
                snprintf(s->keys[s->nkeys++], TOK_MAX, "%s", l->tok);
                next(l);
            } else if (is_kw(l, "IN")) {
                next(l);
                if (l->kind != T_PUNCT || l->tok[0] != '(')
                    return unexpected(l, "(", err, cap), false;
                do {
                    next(l);
                    if (!is_name(l)) return unexpected(l, "identifier", err, cap), false;
                    if (s->nkeys == MAX_KEYS)
                        return unexpected(l, "at most 32 keys", err, cap), false;
                    snprintf(s->keys[s->nkeys++], TOK_MAX, "%s", l->tok);
                    next(l);
                } while (l->kind == T_PUNCT && l->tok[0] == ',');
                if (l->kind != T_PUNCT || l->tok[0] != ')')
                    return unexpected(l, ")", err, cap), false;
                next(l);
            } else {
                return unexpected(l, "= or IN (metron takes no regex here)", err, cap), false;
            }
        } else {
            return unexpected(l, "KEYS, VALUES", err, cap), false;
        }
    } else {
        snprintf(err, cap,
                 "error parsing query: found %s at line 1, char %zu: metron answers " SUPPORTED,
                 l->kind == T_END ? "EOF" : l->tok, l->at + 1);
        return false;
    }
    if (l->kind != T_END) {
        snprintf(err, cap,
                 "error parsing query: found %s at line 1, char %zu: metron does not take "
                 "WHERE, LIMIT, OFFSET or WITH MEASUREMENT here",
                 l->tok, l->at + 1);
        return false;
    }
    return true;
}

/* ---- listing ------------------------------------------------------------------------------ */

/* rows of up to three strings, kept joined by \x01 for sorting and deduplication */
typedef struct rows {
    char **r;
    size_t n, cap;
    bool oom;
} rows;

static void row_add(rows *rs, mt_name a, mt_name b, mt_name c)
{
    if (rs->oom) return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        char **r = realloc(rs->r, cap * sizeof *r);
        if (!r) {
            rs->oom = true;
            return;
        }
        rs->r = r;
        rs->cap = cap;
    }
    char *s = malloc(a.len + b.len + c.len + 3);
    if (!s) {
        rs->oom = true;
        return;
    }
    memcpy(s, a.ptr, a.len);
    s[a.len] = '\x01';
    memcpy(s + a.len + 1, b.ptr, b.len);
    s[a.len + 1 + b.len] = '\x01';
    memcpy(s + a.len + 2 + b.len, c.ptr, c.len);
    s[a.len + b.len + c.len + 2] = '\0';
    rs->r[rs->n++] = s;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rows_sort_unique(rows *rs)
{
    if (!rs->n) return;
    qsort(rs->r, rs->n, sizeof *rs->r, by_str);
    size_t o = 1;
    for (size_t i = 1; i < rs->n; i++) {
        if (strcmp(rs->r[i], rs->r[o - 1]))
            rs->r[o++] = rs->r[i];
        else
            free(rs->r[i]);
    }
    rs->n = o;
}

static void rows_free(rows *rs)
{
    for (size_t i = 0; i < rs->n; i++) free(rs->r[i]);
    free(rs->r);
}

/* part i (0..2) of a row */
static mt_name part(const char *row, int i)
{
    const char *p = row;
    for (; i > 0; i--) p = strchr(p, '\x01') + 1;
    const char *e = strchr(p, '\x01');
    return (mt_name){p, e ? (size_t)(e - p) : strlen(p)};
}

static bool name_is(mt_name n, const char *z)
{
    return n.len == strlen(z) && !memcmp(n.ptr, z, n.len);
}

/* the value of tag key in parts, or {NULL, 0} */
static mt_name tag_of(const mt_series_parts *sp, const char *key)
{
    for (size_t t = 0; t < sp->ntags; t++)
        if (name_is(sp->tag_keys[t], key)) return sp->tag_values[t];
    return (mt_name){NULL, 0};
}

/*
 * The rows s asks for, from every series of tenant in database db. A
 * database other than default_db is the series with its db tag, which is
 * then not one of their tag keys.
 */
static int collect(mt_engine *e, const stmt *s, const char *db, const char *default_db,
                   const char *tenant, rows *rs)
{
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    mt_series_parts *sp = malloc(sizeof *sp);
    if (!sp) return -ENOMEM;
    bool scoped = db && strcmp(db, default_db) != 0;
    static const mt_name none = {"", 0};
    char key[MT_SERIES_MAX_KEY];
    for (uint64_t id = 1; id <= st.series && !rs->oom; id++) {
        size_t kl;
        if (mt_engine_series_key(e, (uint32_t)id, key, sizeof key, &kl) ||
            mt_series_parse(key, kl, sp))
            continue; /* gone (retention) or not a key: nothing to list */
        if (tenant) {
            mt_name b = tag_of(sp, "business_id");
            if (!b.ptr || !name_is(b, tenant)) continue;
        }
        mt_name dbv = tag_of(sp, "db");
        if (s->kind == S_SHOW_DBS) {
            if (dbv.ptr) row_add(rs, dbv, none, none);
            continue;
        }
        if (scoped && (!dbv.ptr || !name_is(dbv, db))) continue;
        if (s->has_from && !name_is(sp->measurement, s->from)) continue;
        switch (s->kind) {
        case S_SHOW_MEAS: row_add(rs, sp->measurement, none, none); break;
        case S_TAG_KEYS:
            for (size_t t = 0; t < sp->ntags; t++)
                if (!scoped || !name_is(sp->tag_keys[t], "db"))
                    row_add(rs, sp->measurement, sp->tag_keys[t], none);
            break;
        case S_TAG_VALUES:
            for (size_t k = 0; k < s->nkeys; k++) {
                mt_name v = tag_of(sp, s->keys[k]);
                if (v.ptr && !(scoped && !strcmp(s->keys[k], "db")))
                    row_add(rs, sp->measurement, (mt_name){s->keys[k], strlen(s->keys[k])}, v);
            }
            break;
        case S_FIELD_KEYS: {
            uint32_t sid;
            mt_vtype t = MT_VT_FLOAT;
            if (mt_engine_series_lookup(e, key, kl, &sid, &t)) continue;
            const char *tn = mt_vtype_name(t);
            row_add(rs, sp->measurement, sp->field, (mt_name){tn, strlen(tn)});
            break;
        }
        }
    }
    free(sp);
    if (s->kind == S_SHOW_DBS) row_add(rs, (mt_name){default_db, strlen(default_db)}, none, none);
    rows_sort_unique(rs);
    return rs->oom ? -ENOMEM : MT_OK;
}

/* ---- answering ----------------------------------------------------------------------------- */

/* "series":[...] of rows grouped by their first part (a measurement), columns cols */
static void put_grouped(mt_sbuf *o, const rows *rs, const char *cols, int nvals)
{
    mt_sb_puts(o, ",\"series\":[");
    for (size_t i = 0; i < rs->n;) {
        mt_name m = part(rs->r[i], 0);
        if (i) mt_sb_puts(o, ",");
        mt_sb_puts(o, "{\"name\":");
        put_str(o, m.ptr, m.len);
        mt_sb_printf(o, ",\"columns\":[%s],\"values\":[", cols);
        size_t first = i;
        for (size_t j = first; j < rs->n; j++) {
            mt_name mj = part(rs->r[j], 0);
            if (mj.len != m.len || memcmp(mj.ptr, m.ptr, m.len)) break;
            if (j > first) mt_sb_puts(o, ",");
            mt_sb_puts(o, "[");
            for (int v = 1; v <= nvals; v++) {
                mt_name pv = part(rs->r[j], v);
                if (v > 1) mt_sb_puts(o, ",");
                put_str(o, pv.ptr, pv.len);
            }
            mt_sb_puts(o, "]");
            i = j + 1;
        }
        mt_sb_puts(o, "]}");
    }
    mt_sb_puts(o, "]");
}

/* one statement's result object, without its closing brace */
static int answer(mt_engine *e, const stmt *s, const char *db, const char *default_db,
                  const char *tenant, mt_sbuf *o)
{
    if (s->has_on) db = s->on;
    if (s->kind == S_CREATE_DB) return MT_OK;
    if (s->kind != S_SHOW_DBS && (!db || !*db)) {
        mt_sb_puts(o, ",\"error\":\"database name required\"");
        return MT_OK;
    }
    rows rs = {0};
    int rc = collect(e, s, db, default_db, tenant, &rs);
    if (rc == MT_OK && rs.n) {
        if (s->kind == S_SHOW_DBS || s->kind == S_SHOW_MEAS) {
            mt_sb_printf(o, ",\"series\":[{\"name\":\"%s\",\"columns\":[\"name\"],\"values\":[",
                         s->kind == S_SHOW_DBS ? "databases" : "measurements");
            for (size_t i = 0; i < rs.n; i++) {
                mt_name n = part(rs.r[i], 0);
                mt_sb_puts(o, i ? ",[" : "[");
                put_str(o, n.ptr, n.len);
                mt_sb_puts(o, "]");
            }
            mt_sb_puts(o, "]}]");
        } else if (s->kind == S_TAG_KEYS) {
            put_grouped(o, &rs, "\"tagKey\"", 1);
        } else if (s->kind == S_TAG_VALUES) {
            put_grouped(o, &rs, "\"key\",\"value\"", 2);
        } else {
            put_grouped(o, &rs, "\"fieldKey\",\"fieldType\"", 2);
        }
    }
    rows_free(&rs);
    return rc;
}

int mt_influxql_run(mt_engine *e, const char *q, const char *db, const char *default_db,
                    const char *tenant, mt_write_fn fn, void *ud, int *status)
{
    mt_sbuf o = {0};
    char err[1024] = "";
    lexer l = {q, q, T_END, "", 0};
    stmt *s = malloc(sizeof *s);
    int rc = s ? MT_OK : -ENOMEM;
    mt_sb_puts(&o, "{\"results\":[");
    int n = 0;
    /* every statement is parsed before any is answered, as InfluxDB does */
    for (int pass = 0; pass < 2 && rc == MT_OK && !err[0]; pass++) {
        l.p = q;
        n = 0;
        for (;;) {
            next(&l);
            if (l.kind == T_END) {
                if (!*l.p) break;
                l.p++; /* an empty statement between two ';' */
                continue;
            }
            if (!parse_stmt(&l, s, err, sizeof err)) break;
            if (pass == 1) {
                mt_sb_printf(&o, "%s{\"statement_id\":%d", n ? "," : "", n);
                if ((rc = answer(e, s, db, default_db, tenant, &o))) break;
                mt_sb_puts(&o, "}");
            }
            n++;
            if (*l.p == ';') l.p++;
        }
        if (pass == 0 && !n && !err[0])
            snprintf(err, sizeof err, "error parsing query: empty query");
    }
    free(s);
    if (rc == MT_OK && err[0]) {
        o.len = 0;
        mt_sb_puts(&o, "{\"error\":");
        put_str(&o, err, strlen(err));
        mt_sb_puts(&o, "}");
        *status = 400;
    } else {
        mt_sb_puts(&o, "]}");
        *status = 200;
    }
    if (rc == MT_OK && o.oom) rc = -ENOMEM;
    if (rc == MT_OK) rc = fn(ud, o.p, o.len);
    free(o.p);
    return rc;
}
