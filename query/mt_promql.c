/*
 * mt_promql.c — PromQL: a recursive-descent parser to an AST, and an
 * evaluator over all steps at once (contract and subset in mt_promql.h).
 *
 * Semantics follow Prometheus 2.42 (promql/engine.go, promql/functions.go),
 * read, not copied:
 *   - evaluation times are start + k * step <= end (ms);
 *   - an instant selector at t takes the last sample with
 *     t - offset - 5m <= ts <= t - offset; a range selector [d] the
 *     samples with t - offset - d <= ts <= t - offset;
 *   - rate/increase/delta extrapolate as extrapolatedRate does: the
 *     counter's rises (a drop is a reset, the previous value is added back),
 *     extrapolated to the range's ends when the first/last sample is within
 *     1.1 average intervals of them, else by half an interval; a counter is
 *     not extrapolated below zero;
 *   - quantiles interpolate at rank q * (n - 1); q < 0 is -Inf, q > 1 +Inf;
 *   - functions and arithmetic drop __name__ (last_over_time keeps it,
 *     comparisons without bool keep the left side's).
 *
 * Memory: one arena per query holds the AST, labels and step values; it is
 * freed whole at the end. A value is a set of series, each with one slot per
 * step (a presence byte and a double); a scalar is one double per step.
 * Labels never change between steps, so grouping and matching signatures
 * are computed once per node, not per step.
 */
#include "mt_promql.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mt_query_int.h"
#include "mt_time.h"

#define NAME_LABEL          "__name__"
#define DEFAULT_MAX_SERIES  100000
#define DEFAULT_MAX_SAMPLES 50000000ULL
#define MAX_DEPTH           200 /* nesting of the expression */
#define MAX_ARGS            16  /* label_join's source labels: at most 13 */
#define MAX_GROUPING        32

/* ---- arena ------------------------------------------------------------------------------ */

typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} ablock;

typedef struct selref {
    mt_psel *sel;
    struct selref *next;
} selref;

typedef struct arena {
    ablock *head;
    selref *sels; /* the parsed selectors: their regular expressions are freed with the arena */
    bool oom;
} arena;

static void *ar_alloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        ablock *b = malloc(sizeof *b + cap);
        if (!b) {
            a->oom = true;
            return NULL;
        }
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static void *ar_zalloc(arena *a, size_t n)
{
    void *p = ar_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

static char *ar_strndup(arena *a, const char *s, size_t n)
{
    char *p = ar_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void ar_free(arena *a)
{
    for (selref *r = a->sels; r; r = r->next) mt_psel_free(r->sel);
    a->sels = NULL;
    for (ablock *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
}

/* s as a JSON string, quotes included; invalid UTF-8 (a label value may hold any bytes) as
   U+FFFD, as the Prometheus export writes it (mt_fed.h). */
static void sb_json(mt_sbuf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    mt_sb_put(b, "\"", 1);
    size_t run = 0, i = 0, n = strlen(s);
    while (u[i]) {
        unsigned char c = u[i];
        size_t k = mt_query_utf8_seq(u + i, n - i);
        if (k > 1 || (k == 1 && c >= 0x20 && c != '"' && c != '\\')) {
            i += k;
            continue;
        }
        mt_sb_put(b, s + run, i - run);
        char esc[8];
        if (!k)
            snprintf(esc, sizeof esc, "\\ufffd");
        else if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        mt_sb_puts(b, esc);
        i++;
        run = i;
    }
    mt_sb_put(b, s + run, i - run);
    mt_sb_put(b, "\"", 1);
}

/* ---- labels ------------------------------------------------------------------------------ */

/* A label set: n pairs, sorted by name; strings in the arena. */
typedef struct lset {
    size_t n;
    const char **kv; /* name, value, ... */
} lset;

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A copy of l without __name__ (drop) and keeping (keep) or dropping (!keep) names. */
static bool in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

static lset lset_filter(arena *a, const lset *l, bool drop_name, const char *const *names,
                        size_t nn, bool keep)
{
    lset o = {0, ar_alloc(a, (2 * l->n + 1) * sizeof(char *))};
    if (!o.kv) return o;
    for (size_t i = 0; i < l->n; i++) {
        const char *k = l->kv[2 * i];
        if (drop_name && !strcmp(k, NAME_LABEL)) continue;
        if (names && in_list(k, names, nn) != keep) continue;
        o.kv[2 * o.n] = k;
        o.kv[2 * o.n + 1] = l->kv[2 * i + 1];
        o.n++;
    }
    return o;
}

/* The identity of l as a string ("name\xffvalue\xfe..."), in the arena. */
static const char *lset_sig(arena *a, const lset *l)
{
    size_t n = 1;
    for (size_t i = 0; i < 2 * l->n; i++) n += strlen(l->kv[i]) + 1;
    char *s = ar_alloc(a, n), *p = s;
    if (!s) return "";
    for (size_t i = 0; i < l->n; i++) {
        p += sprintf(p, "%s\xff%s\xfe", l->kv[2 * i], l->kv[2 * i + 1]);
    }
    *p = '\0';
    return s;
}

/* ---- a string -> index map ---------------------------------------------------------------- */

typedef struct smap {
    const char **keys;
    size_t *vals;
    size_t cap, n;
} smap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bool smap_init(arena *a, smap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 2) m->cap *= 2;
    m->n = 0;
    m->keys = ar_zalloc(a, m->cap * sizeof *m->keys);
    m->vals = ar_alloc(a, m->cap * sizeof *m->vals);
    return m->keys && m->vals;
}

/* The index of key, or insert it with val: returns the stored value; *added says which. */
static size_t smap_put(smap *m, const char *key, size_t val, bool *added)
{
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) {
            if (added) *added = false;
            return m->vals[i];
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    if (added) *added = true;
    return val;
}

/* ---- the AST ------------------------------------------------------------------------------ */

typedef enum vtype { T_SCALAR, T_VECTOR, T_MATRIX, T_STRING } vtype;
static const char *const type_names[] = {"scalar", "instant vector", "range vector", "string"};

typedef enum nkind { N_NUM, N_STR, N_SEL, N_CALL, N_AGG, N_BIN, N_NEG, N_SUBQ } nkind;

typedef enum binop {
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_MOD,
    B_POW,
    B_ATAN2,
    B_EQ,
    B_NE,
    B_GT,
    B_LT,
    B_GE,
    B_LE,
    B_AND,
    B_OR,
    B_UNLESS,
} binop;
static const char *const binop_names[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless"};

typedef enum aggop {
    A_SUM,
    A_AVG,
    A_MIN,
    A_MAX,
    A_COUNT,
    A_STDDEV,
    A_STDVAR,
    A_TOPK,
    A_BOTTOMK,
    A_QUANTILE,
    A_GROUP,
    A_COUNT_VALUES
} aggop;
static const char *const agg_names[] = {"sum",     "avg",      "min",    "max",
                                        "count",   "stddev",   "stdvar", "topk",
                                        "bottomk", "quantile", "group",  "count_values"};

typedef struct node node;
struct node {
    nkind kind;
    vtype type;
    double num;      /* N_NUM */
    const char *str; /* N_STR; N_CALL: the function's name */
    /* N_SEL */
    mt_psel *sel;
    const char *sel_text; /* as written, for messages */
    int64_t range;        /* ms; > 0: a range selector */
    int64_t offset;       /* ms */
    /* N_CALL, N_AGG, N_BIN, N_NEG */
    int fn;               /* N_CALL: index into funcs */
    node *args[MAX_ARGS]; /* N_CALL; N_AGG: args[0] the vector, args[1] the parameter */
    size_t nargs;
    aggop agg;                        /* N_AGG */
    binop op;                         /* N_BIN: args[0] op args[1] */
    bool ret_bool;                    /* N_BIN: bool */
    bool on, ignoring;                /* N_BIN: matching; N_AGG: on = by, ignoring = without */
    const char *labels[MAX_GROUPING]; /* N_BIN on/ignoring, N_AGG by/without */
    size_t nlabels;
    /* N_SEL: the @ modifier; at in ms once resolved (start() and end() at evaluation) */
    enum { AT_NONE, AT_TIME, AT_START, AT_END } at_kind;
    int64_t at;
    bool wrap; /* step invariant: evaluated once, at the first step (see prep_invariant) */
    /* N_BIN: group_left/group_right and the labels they copy from the "one" side */
    enum { CARD_ONE_TO_ONE, CARD_GROUP_LEFT, CARD_GROUP_RIGHT } card;
    const char *include[MAX_GROUPING];
    size_t ninclude;
    /* N_SUBQ: args[0][range:step] offset; step 0 is the default, 1m (Prometheus' default
       evaluation_interval) */
    int64_t step;
};

/* The functions: argument types, and whether the first range argument decides. */
typedef enum fkind {
    F_RATE,
    F_IRATE,
    F_INCREASE,
    F_DELTA,
    F_IDELTA,
    F_DERIV,
    F_PREDICT_LINEAR,
    F_RESETS,
    F_CHANGES,
    F_AVG_OT,
    F_SUM_OT,
    F_MIN_OT,
    F_MAX_OT,
    F_COUNT_OT,
    F_LAST_OT,
    F_PRESENT_OT,
    F_STDDEV_OT,
    F_STDVAR_OT,
    F_QUANTILE_OT,
    F_ABS,
    F_CEIL,
    F_FLOOR,
    F_ROUND,
    F_SQRT,
    F_LN,
    F_LOG2,
    F_LOG10,
    F_EXP,
    F_SGN,
    F_CLAMP,
    F_CLAMP_MIN,
    F_CLAMP_MAX,
    F_TIME,
    F_VECTOR,
    F_SCALAR,
    /* evaluated by eval_call_more */
    F_ABSENT,
    F_ABSENT_OT,
    F_LABEL_REPLACE,
    F_LABEL_JOIN,
    F_SORT,
    F_SORT_DESC,
    F_TIMESTAMP,
    F_HISTOGRAM_QUANTILE,
    F_HOLT_WINTERS,
    F_PI,
    F_DAYS_IN_MONTH,
    F_DAY_OF_MONTH,
    F_DAY_OF_WEEK,
    F_DAY_OF_YEAR,
    F_HOUR,
    F_MINUTE,
    F_MONTH,
    F_YEAR,
    /* one value in, one out: eval_call's loop, through simple_fn */
    F_ACOS,
    F_ASIN,
    F_ATAN,
    F_COS,
    F_SIN,
    F_TAN,
    F_ACOSH,
    F_ASINH,
    F_ATANH,
    F_COSH,
    F_SINH,
    F_TANH,
    F_DEG,
    F_RAD,
} fkind;

typedef struct func {
    const char *name;
    fkind kind;
    vtype args[MAX_ARGS];
    size_t nargs, optional; /* the last `optional` arguments may be left out */
    vtype ret;
} func;

#define V T_VECTOR
#define M T_MATRIX
#define S T_SCALAR
#define T T_STRING
static const func funcs[] = {
    {"rate", F_RATE, {M}, 1, 0, V},
    {"irate", F_IRATE, {M}, 1, 0, V},
    {"increase", F_INCREASE, {M}, 1, 0, V},
    {"delta", F_DELTA, {M}, 1, 0, V},
    {"idelta", F_IDELTA, {M}, 1, 0, V},
    {"deriv", F_DERIV, {M}, 1, 0, V},
    {"predict_linear", F_PREDICT_LINEAR, {M, S}, 2, 0, V},
    {"resets", F_RESETS, {M}, 1, 0, V},
    {"changes", F_CHANGES, {M}, 1, 0, V},
    {"avg_over_time", F_AVG_OT, {M}, 1, 0, V},
    {"sum_over_time", F_SUM_OT, {M}, 1, 0, V},
    {"min_over_time", F_MIN_OT, {M}, 1, 0, V},
    {"max_over_time", F_MAX_OT, {M}, 1, 0, V},
    {"count_over_time", F_COUNT_OT, {M}, 1, 0, V},
    {"last_over_time", F_LAST_OT, {M}, 1, 0, V},
    {"present_over_time", F_PRESENT_OT, {M}, 1, 0, V},
    {"stddev_over_time", F_STDDEV_OT, {M}, 1, 0, V},
    {"stdvar_over_time", F_STDVAR_OT, {M}, 1, 0, V},
    {"quantile_over_time", F_QUANTILE_OT, {S, M}, 2, 0, V},
    {"abs", F_ABS, {V}, 1, 0, V},
    {"ceil", F_CEIL, {V}, 1, 0, V},
    {"floor", F_FLOOR, {V}, 1, 0, V},
    {"round", F_ROUND, {V, S}, 2, 1, V},
    {"sqrt", F_SQRT, {V}, 1, 0, V},
    {"ln", F_LN, {V}, 1, 0, V},
    {"log2", F_LOG2, {V}, 1, 0, V},
    {"log10", F_LOG10, {V}, 1, 0, V},
    {"exp", F_EXP, {V}, 1, 0, V},
    {"sgn", F_SGN, {V}, 1, 0, V},
    {"clamp", F_CLAMP, {V, S, S}, 3, 0, V},
    {"clamp_min", F_CLAMP_MIN, {V, S}, 2, 0, V},
    {"clamp_max", F_CLAMP_MAX, {V, S}, 2, 0, V},
    {"time", F_TIME, {0}, 0, 0, S},
    {"vector", F_VECTOR, {S}, 1, 0, V},
    {"scalar", F_SCALAR, {V}, 1, 0, S},
    {"absent", F_ABSENT, {V}, 1, 0, V},
    {"absent_over_time", F_ABSENT_OT, {M}, 1, 0, V},
    {"label_replace", F_LABEL_REPLACE, {V, T, T, T, T}, 5, 0, V},
    {"label_join", F_LABEL_JOIN, {V, T, T, T}, 4, 1, V}, /* and more sources */
    {"sort", F_SORT, {V}, 1, 0, V},
    {"sort_desc", F_SORT_DESC, {V}, 1, 0, V},
    {"timestamp", F_TIMESTAMP, {V}, 1, 0, V},
    {"pi", F_PI, {0}, 0, 0, S},
    {"holt_winters", F_HOLT_WINTERS, {M, S, S}, 3, 0, V},
    {"histogram_quantile", F_HISTOGRAM_QUANTILE, {S, V}, 2, 0, V},
    {"days_in_month", F_DAYS_IN_MONTH, {V}, 1, 1, V},
    {"day_of_month", F_DAY_OF_MONTH, {V}, 1, 1, V},
    {"day_of_week", F_DAY_OF_WEEK, {V}, 1, 1, V},
    {"day_of_year", F_DAY_OF_YEAR, {V}, 1, 1, V},
    {"hour", F_HOUR, {V}, 1, 1, V},
    {"minute", F_MINUTE, {V}, 1, 1, V},
    {"month", F_MONTH, {V}, 1, 1, V},
    {"year", F_YEAR, {V}, 1, 1, V},
    {"acos", F_ACOS, {V}, 1, 0, V},
    {"asin", F_ASIN, {V}, 1, 0, V},
    {"atan", F_ATAN, {V}, 1, 0, V},
    {"cos", F_COS, {V}, 1, 0, V},
    {"sin", F_SIN, {V}, 1, 0, V},
    {"tan", F_TAN, {V}, 1, 0, V},
    {"acosh", F_ACOSH, {V}, 1, 0, V},
    {"asinh", F_ASINH, {V}, 1, 0, V},
    {"atanh", F_ATANH, {V}, 1, 0, V},
    {"cosh", F_COSH, {V}, 1, 0, V},
    {"sinh", F_SINH, {V}, 1, 0, V},
    {"tanh", F_TANH, {V}, 1, 0, V},
    {"deg", F_DEG, {V}, 1, 0, V},
    {"rad", F_RAD, {V}, 1, 0, V},
};
#undef V
#undef M
#undef S
#undef T

/* Prometheus functions Metron knows of but does not evaluate (a bad_data naming them). */
static const char *const unsupported_funcs[] = {
    "histogram_count", "histogram_sum", "histogram_fraction", "mad_over_time", "limitk",
};

/* ---- the parser ----------------------------------------------------------------------------- */

typedef struct parser {
    arena *a;
    const char *src, *p;
    char *err;
    size_t errcap;
    int depth;
    bool failed;
} parser;

__attribute__((format(printf, 2, 3))) static node *fail(parser *ps, const char *fmt, ...)
{
    if (ps->failed) return NULL;
    ps->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ps->err && ps->errcap)
        snprintf(ps->err, ps->errcap, "1:%d: parse error: %s", (int)(ps->p - ps->src) + 1, msg);
    return NULL;
}

static void ws(parser *ps)
{
    for (;;) {
        while (isspace((unsigned char)*ps->p)) ps->p++;
        if (*ps->p != '#') return;
        while (*ps->p && *ps->p != '\n') ps->p++; /* a comment */
    }
}

static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* The identifier at p (length), without moving. */
static size_t ident_len(const char *p)
{
    if (!ident_start(*p)) return 0;
    size_t n = 1;
    while (ident_char(p[n])) n++;
    return n;
}

static bool word_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && !strncasecmp(p, w, n);
}

/* Consume keyword w (case-insensitive, whole word) if it is next. */
static bool keyword(parser *ps, const char *w)
{
    ws(ps);
    size_t n = ident_len(ps->p);
    if (n && word_is(ps->p, n, w)) {
        ps->p += n;
        return true;
    }
    return false;
}

static bool punct(parser *ps, char c)
{
    ws(ps);
    if (*ps->p != c) return false;
    ps->p++;
    return true;
}

/* A PromQL duration ("1h30m", "500ms"): ms into *out; false when there is none. */
static bool parse_duration_at(const char **pp, int64_t *out)
{
    const char *p = *pp;
    int64_t total = 0;
    bool any = false;
    while (isdigit((unsigned char)*p)) {
        char *e;
        long long v = strtoll(p, &e, 10);
        int64_t unit;
        if (!strncmp(e, "ms", 2))
            unit = 1, e += 2;
        else if (*e == 's')
            unit = 1000, e++;
        else if (*e == 'm')
            unit = 60000, e++;
        else if (*e == 'h')
            unit = 3600000, e++;
        else if (*e == 'd')
            unit = 86400000, e++;
        else if (*e == 'w')
            unit = 7 * 86400000LL, e++;
        else if (*e == 'y')
            unit = 365 * 86400000LL, e++;
        else
            return false;
        /* at most 2^50 ms (35,000 years): times, offsets and ranges then add up without
           overflow */
        if (v < 0 || v > (1LL << 50) / unit) return false;
        total += v * unit;
        if (total > (1LL << 50)) return false;
        any = true;
        p = e;
    }
    if (!any || isalnum((unsigned char)*p) || *p == '_') return false;
    *pp = p;
    *out = total;
    return true;
}

static node *new_node(parser *ps, nkind k, vtype t)
{
    node *n = ar_zalloc(ps->a, sizeof *n);
    if (!n) return fail(ps, "out of memory");
    n->kind = k;
    n->type = t;
    return n;
}

static node *parse_expr(parser *ps, int min_prec);

/* (label, label, ...) into labels */
static bool parse_label_list(parser *ps, const char **labels, size_t *n)
{
    *n = 0;
    if (!punct(ps, '(')) return fail(ps, "expected '(' before a list of labels"), false;
    if (punct(ps, ')')) return true;
    for (;;) {
        ws(ps);
        size_t l = ident_len(ps->p);
        if (!l || memchr(ps->p, ':', l))
            return fail(ps, "expected a label name at '%.20s'", ps->p), false;
        if (*n == MAX_GROUPING) return fail(ps, "more than %d labels", MAX_GROUPING), false;
        labels[(*n)++] = ar_strndup(ps->a, ps->p, l);
        ps->p += l;
        if (punct(ps, ')')) return true;
        if (!punct(ps, ',')) return fail(ps, "expected ',' or ')' in a list of labels"), false;
        if (punct(ps, ')')) return true;
    }
}

/* Arguments "(a, b)" after a function or aggregation name. */
static bool parse_args(parser *ps, node *n)
{
    if (!punct(ps, '(')) return fail(ps, "expected '('"), false;
    if (punct(ps, ')')) return true;
    for (;;) {
        if (n->nargs == MAX_ARGS) return fail(ps, "too many arguments"), false;
        node *a = parse_expr(ps, 0);
        if (!a) return false;
        n->args[n->nargs++] = a;
        if (punct(ps, ')')) return true;
        if (!punct(ps, ',')) return fail(ps, "expected ',' or ')' in the arguments"), false;
    }
}

static node *parse_agg(parser *ps, aggop op)
{
    node *n = new_node(ps, N_AGG, T_VECTOR);
    if (!n) return NULL;
    n->agg = op;
    bool grouping = false;
    if (keyword(ps, "by") || (keyword(ps, "without") && (n->ignoring = true))) {
        n->on = !n->ignoring;
        grouping = true;
        if (!parse_label_list(ps, n->labels, &n->nlabels)) return NULL;
    }
    if (!parse_args(ps, n)) return NULL;
    if (!grouping && (keyword(ps, "by") || (keyword(ps, "without") && (n->ignoring = true)))) {
        n->on = !n->ignoring;
        if (!parse_label_list(ps, n->labels, &n->nlabels)) return NULL;
    }
    bool param = op == A_TOPK || op == A_BOTTOMK || op == A_QUANTILE || op == A_COUNT_VALUES;
    if (n->nargs != (param ? 2u : 1u))
        return fail(ps,
                    "wrong number of arguments for aggregate expression provided, expected %d, "
                    "got %zu",
                    param ? 2 : 1, n->nargs);
    if (param) {
        node *t = n->args[0];
        n->args[0] = n->args[1];
        n->args[1] = t;
        vtype want = op == A_COUNT_VALUES ? T_STRING : T_SCALAR;
        if (n->args[1]->type != want)
            return fail(ps, "expected type %s in aggregation parameter, got %s", type_names[want],
                        type_names[n->args[1]->type]);
    }
    if (n->args[0]->type != T_VECTOR)
        return fail(ps, "expected type instant vector in aggregation expression, got %s",
                    type_names[n->args[0]->type]);
    return n;
}

static node *parse_call(parser *ps, const char *name, size_t nl)
{
    for (size_t i = 0; i < sizeof funcs / sizeof *funcs; i++) {
        if (strlen(funcs[i].name) != nl || strncmp(funcs[i].name, name, nl)) continue;
        const func *f = &funcs[i];
        node *n = new_node(ps, N_CALL, f->ret);
        if (!n) return NULL;
        n->fn = (int)i;
        n->str = f->name;
        if (!parse_args(ps, n)) return NULL;
        bool variadic = f->kind == F_LABEL_JOIN; /* more arguments of the last type */
        if ((n->nargs > f->nargs && !variadic) || n->nargs < f->nargs - f->optional)
            return fail(ps, "expected %zu argument(s) in call to \"%s\", got %zu", f->nargs,
                        f->name, n->nargs);
        for (size_t k = 0; k < n->nargs; k++) {
            vtype want = f->args[k < f->nargs ? k : f->nargs - 1];
            if (n->args[k]->type != want)
                return fail(ps, "expected type %s in call to function \"%s\", got %s",
                            type_names[want], f->name, type_names[n->args[k]->type]);
        }
        return n;
    }
    for (size_t i = 0; i < sizeof unsupported_funcs / sizeof *unsupported_funcs; i++)
        if (strlen(unsupported_funcs[i]) == nl && !strncmp(unsupported_funcs[i], name, nl))
            return fail(ps, "function \"%s\" is not supported by Metron yet", unsupported_funcs[i]);
    return fail(ps, "unknown function with name \"%.*s\"", (int)nl, name);
}

static node *parse_selector(parser *ps)
{
    node *n = new_node(ps, N_SEL, T_VECTOR);
    if (!n) return NULL;
    n->sel = ar_zalloc(ps->a, sizeof *n->sel);
    if (!n->sel) return fail(ps, "out of memory");
    const char *start = ps->p, *end;
    char why[512];
    selref *ref = ar_alloc(ps->a, sizeof *ref);
    if (!ref) return fail(ps, "out of memory");
    if (mt_psel_parse(ps->p, &end, n->sel, why, sizeof why)) {
        mt_psel_free(n->sel);
        return fail(ps, "%s", why);
    }
    /* owned by the arena from here, whatever happens to the rest of the parse */
    ref->sel = n->sel;
    ref->next = ps->a->sels;
    ps->a->sels = ref;
    size_t tl = (size_t)(end - start);
    while (tl && isspace((unsigned char)start[tl - 1])) tl--;
    n->sel_text = ar_strndup(ps->a, start, tl);
    ps->p = end;
    return n;
}

/*
 * The @ modifier after '@': a number of seconds (signed) or start() / end(),
 * kept in n (a selector) for prep_at to resolve.
 */
static bool parse_at(parser *ps, node *n)
{
    if (n->at_kind != AT_NONE)
        return fail(ps, "@ <timestamp> may not be set multiple times"), false;
    ws(ps);
    size_t il = ident_len(ps->p);
    if (il && (word_is(ps->p, il, "start") || word_is(ps->p, il, "end"))) {
        bool start = word_is(ps->p, il, "start");
        ps->p += il;
        if (!punct(ps, '(') || !punct(ps, ')'))
            return fail(ps, "expected '()' after the @ modifier's %s", start ? "start" : "end"),
                   false;
        n->at_kind = start ? AT_START : AT_END;
        return true;
    }
    const char *p = ps->p;
    bool neg = *p == '-';
    if (*p == '-' || *p == '+') p++;
    char *e;
    double v = strtod(p, &e);
    if (e == p || ident_char(*e))
        return fail(ps, "expected a timestamp or start() / end() after the @ modifier"), false;
    if (neg) v = -v;
    /* Prometheus: ±Inf, NaN and what does not fit int64 ms are out of bounds; Metron bounds
       it as the API's times (±290,000 years), so that offsets and ranges add up without
       overflow */
    if (!isfinite(v) || v >= 9.2e12 || v <= -9.2e12)
        return fail(ps, "timestamp out of bounds for @ modifier: %f", v), false;
    ps->p = e;
    n->at_kind = AT_TIME;
    n->at = (int64_t)round(v * 1000); /* timestamp.FromFloatSeconds */
    return true;
}

static bool has_at(const node *n)
{
    if (n->kind == N_SEL && n->at_kind != AT_NONE) return true;
    for (size_t i = 0; i < n->nargs; i++)
        if (has_at(n->args[i])) return true;
    return false;
}

/* inner[range:step] after the ':' (range read already). */
static node *parse_subquery(parser *ps, node *inner, int64_t range)
{
    ws(ps);
    int64_t step = 0;
    if (*ps->p != ']' && !parse_duration_at(&ps->p, &step))
        return fail(ps, "expected a duration or ']' after ':' in a subquery");
    ws(ps);
    if (*ps->p != ']') return fail(ps, "expected ']' after the subquery's step");
    ps->p++;
    if (inner->type != T_VECTOR)
        return fail(ps, "subquery is only allowed on instant vector, got %s",
                    type_names[inner->type]);
    if (range <= 0 || (step <= 0 && step != 0)) return fail(ps, "a range must be positive");
    if (has_at(inner))
        return fail(ps, "the @ modifier inside a subquery is not supported by Metron yet");
    node *n = new_node(ps, N_SUBQ, T_MATRIX);
    if (!n) return NULL;
    n->args[0] = inner;
    n->nargs = 1;
    n->range = range;
    n->step = step;
    return n;
}

static node *parse_postfix(parser *ps, node *n);

/* After a parenthesised expression, a call or an aggregation: only a subquery may follow. */
static node *parse_subquery_after(parser *ps, node *n)
{
    if (!n) return NULL;
    ws(ps);
    if (*ps->p != '[') return n;
    const char *q = ps->p + 1;
    int64_t d;
    while (isspace((unsigned char)*q)) q++;
    if (parse_duration_at(&q, &d)) {
        while (isspace((unsigned char)*q)) q++;
        if (*q == ':') return parse_postfix(ps, n);
    }
    return fail(ps, "ranges only allowed for vector selectors");
}

/* [range], offset, @ and subqueries after a selector or a parenthesised expression. */
static node *parse_postfix(parser *ps, node *n)
{
    for (;;) {
        ws(ps);
        if (*ps->p == '[') {
            ps->p++;
            ws(ps);
            int64_t d;
            if (!parse_duration_at(&ps->p, &d)) return fail(ps, "expected a duration in '[...]'");
            ws(ps);
            if (*ps->p == ':') {
                ps->p++;
                if (!(n = parse_subquery(ps, n, d))) return NULL;
                continue;
            }
            if (*ps->p != ']') return fail(ps, "expected ']' after the range");
            ps->p++;
            if (n->kind != N_SEL || n->range || n->offset)
                return fail(ps, "ranges only allowed for vector selectors");
            if (n->at_kind != AT_NONE) return fail(ps, "no @ modifiers allowed before range");
            if (d <= 0) return fail(ps, "a range must be positive");
            n->range = d;
            n->type = T_MATRIX;
            continue;
        }
        if (keyword(ps, "offset")) {
            ws(ps);
            bool neg = *ps->p == '-';
            if (neg) ps->p++;
            int64_t d;
            if (!parse_duration_at(&ps->p, &d)) return fail(ps, "expected a duration after offset");
            if (n->kind != N_SEL && n->kind != N_SUBQ)
                return fail(ps, "offset modifier must be preceded by a selector");
            if (n->offset) return fail(ps, "offset may not be set multiple times");
            n->offset = neg ? -d : d;
            continue;
        }
        if (*ps->p == '@') {
            ps->p++;
            if (!parse_at(ps, n)) return NULL;
            continue;
        }
        return n;
    }
}

static const char *const agg_unsupported[] = {"limitk", "limit_ratio"};

static node *parse_primary(parser *ps)
{
    ws(ps);
    const char *p = ps->p;
    if (!*p) return fail(ps, "unexpected end of input");
    if (*p == '(') {
        ps->p++;
        node *n = parse_expr(ps, 0);
        if (!n) return NULL;
        if (!punct(ps, ')')) return fail(ps, "expected ')'");
        ws(ps);
        if (*ps->p == '[') return parse_subquery_after(ps, n);
        if (keyword(ps, "offset"))
            return fail(ps, "offset modifier must be preceded by a selector");
        if (*ps->p == '@')
            return fail(ps, "@ modifier must be preceded by an instant vector selector or range "
                            "vector selector or a subquery");
        return n;
    }
    if (*p == '"' || *p == '\'' || *p == '`') {
        char q = *p, buf[1024];
        size_t n = 0;
        for (p++; *p && *p != q; p++) {
            char c = *p;
            if (c == '\\' && q != '`') {
                p++;
                c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                if (!c) break;
            }
            if (n + 1 >= sizeof buf)
                return fail(ps, "a string longer than %zu bytes", sizeof buf - 1);
            buf[n++] = c;
        }
        if (*p != q) return fail(ps, "unterminated quoted string");
        ps->p = p + 1;
        node *s = new_node(ps, N_STR, T_STRING);
        if (s) s->str = ar_strndup(ps->a, buf, n);
        return s;
    }
    size_t il = ident_len(p);
    if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1])) ||
        (il && (word_is(p, il, "inf") || word_is(p, il, "nan")))) {
        char *e;
        double v = strtod(p, &e);
        if (e == p || ident_char(*e) || *e == '.') {
            const char *q = p;
            int64_t d;
            if (parse_duration_at(&q, &d))
                return fail(ps, "a duration is not a number here: '%.*s'", (int)(q - p), p);
            return fail(ps, "bad number or duration syntax: '%.20s'", p);
        }
        ps->p = e;
        node *n = new_node(ps, N_NUM, T_SCALAR);
        if (n) n->num = v;
        return n;
    }
    if (*p == '{') return parse_postfix(ps, parse_selector(ps));
    if (!il) return fail(ps, "unexpected character: '%c'", *p);
    for (size_t i = 0; i < sizeof agg_names / sizeof *agg_names; i++)
        if (word_is(p, il, agg_names[i])) {
            const char *q = p + il;
            while (isspace((unsigned char)*q)) q++;
            if (*q == '(' || ident_start(*q)) {
                ps->p = p + il;
                return parse_subquery_after(ps, parse_agg(ps, (aggop)i));
            }
        }
    for (size_t i = 0; i < sizeof agg_unsupported / sizeof *agg_unsupported; i++)
        if (word_is(p, il, agg_unsupported[i]))
            return fail(ps, "aggregation \"%s\" is not supported by Metron yet",
                        agg_unsupported[i]);
    const char *q = p + il;
    while (isspace((unsigned char)*q)) q++;
    if (*q == '(' && !memchr(p, ':', il)) {
        ps->p = q;
        return parse_subquery_after(ps, parse_call(ps, p, il));
    }
    static const char *const reserved[] = {"by",   "without", "on",         "ignoring",
                                           "bool", "offset",  "group_left", "group_right",
                                           "and",  "or",      "unless"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (word_is(p, il, reserved[i])) return fail(ps, "unexpected keyword \"%s\"", reserved[i]);
    return parse_postfix(ps, parse_selector(ps));
}

/* Binary operators by precedence (Prometheus: or < and unless < comparisons < + - < * / % < ^). */
static int op_at(parser *ps, binop *op, size_t *len)
{
    ws(ps);
    const char *p = ps->p;
    static const struct {
        const char *s;
        binop op;
        int prec;
    } ops[] = {
        {"==", B_EQ, 3}, {"!=", B_NE, 3}, {">=", B_GE, 3}, {"<=", B_LE, 3},
        {">", B_GT, 3},  {"<", B_LT, 3},  {"+", B_ADD, 4}, {"-", B_SUB, 4},
        {"*", B_MUL, 5}, {"/", B_DIV, 5}, {"%", B_MOD, 5}, {"^", B_POW, 6},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        size_t l = strlen(ops[i].s);
        if (!strncmp(p, ops[i].s, l)) {
            *op = ops[i].op;
            *len = l;
            return ops[i].prec;
        }
    }
    size_t il = ident_len(p);
    if (word_is(p, il, "and")) return *op = B_AND, *len = il, 2;
    if (word_is(p, il, "unless")) return *op = B_UNLESS, *len = il, 2;
    if (word_is(p, il, "or")) return *op = B_OR, *len = il, 1;
    if (word_is(p, il, "atan2")) return *op = B_ATAN2, *len = il, 5;
    return 0;
}

static bool is_comparison(binop op)
{
    return op >= B_EQ && op <= B_LE;
}

static bool is_set(binop op)
{
    return op >= B_AND;
}

static node *parse_unary(parser *ps)
{
    ws(ps);
    if (*ps->p == '-' || *ps->p == '+') {
        bool neg = *ps->p == '-';
        ps->p++;
        node *x = parse_expr(ps, 6); /* binds looser than ^ only: -2^2 is -4 */
        if (!x) return NULL;
        if (x->type != T_SCALAR && x->type != T_VECTOR)
            return fail(ps,
                        "unary expression only allowed on expressions of type scalar or "
                        "instant vector, got %s",
                        type_names[x->type]);
        if (!neg) return x;
        if (x->kind == N_NUM) {
            x->num = -x->num;
            return x;
        }
        node *n = new_node(ps, N_NEG, x->type);
        if (n) n->args[0] = x, n->nargs = 1;
        return n;
    }
    return parse_primary(ps);
}

/* group_left / group_right and their optional label list, after on(...) / ignoring(...). */
static bool parse_group_modifier(parser *ps, node *n)
{
    if (keyword(ps, "group_left"))
        n->card = CARD_GROUP_LEFT;
    else if (keyword(ps, "group_right"))
        n->card = CARD_GROUP_RIGHT;
    else
        return true;
    const char *side = n->card == CARD_GROUP_LEFT ? "group_left" : "group_right";
    if (is_set(n->op))
        return fail(ps, "no grouping allowed for \"%s\" operation", binop_names[n->op]), false;
    ws(ps);
    if (*ps->p == '(' && !parse_label_list(ps, n->include, &n->ninclude)) return false;
    for (size_t i = 0; n->on && i < n->nlabels; i++)
        if (in_list(n->labels[i], n->include, n->ninclude))
            return fail(ps, "label \"%s\" must not occur in ON and GROUP clause at once (%s)",
                        n->labels[i], side),
                   false;
    return true;
}

static node *parse_expr(parser *ps, int min_prec)
{
    if (++ps->depth > MAX_DEPTH) return fail(ps, "the expression nests too deeply");
    node *lhs = parse_unary(ps);
    while (lhs) {
        binop op;
        size_t len;
        int prec = op_at(ps, &op, &len);
        if (prec < 0) return NULL;
        if (prec == 0 || prec < min_prec) break;
        ps->p += len;
        node *n = new_node(ps, N_BIN, T_VECTOR);
        if (!n) return NULL;
        n->op = op;
        if (keyword(ps, "bool")) {
            if (!is_comparison(op))
                return fail(ps, "bool modifier can only be used on comparison operators");
            n->ret_bool = true;
        }
        if (keyword(ps, "on") || (keyword(ps, "ignoring") && (n->ignoring = true))) {
            n->on = !n->ignoring;
            if (!parse_label_list(ps, n->labels, &n->nlabels)) return NULL;
            if (!parse_group_modifier(ps, n)) return NULL;
        }
        node *rhs = parse_expr(ps, op == B_POW ? prec : prec + 1);
        if (!rhs) return NULL;
        n->args[0] = lhs;
        n->args[1] = rhs;
        n->nargs = 2;
        for (int k = 0; k < 2; k++)
            if (n->args[k]->type != T_SCALAR && n->args[k]->type != T_VECTOR)
                return fail(ps, "binary expression must contain only scalar and instant vector "
                                "types");
        bool scalars = lhs->type == T_SCALAR && rhs->type == T_SCALAR;
        if (is_set(op) && (lhs->type == T_SCALAR || rhs->type == T_SCALAR))
            return fail(ps, "set operator \"%s\" not allowed in binary scalar expression",
                        binop_names[op]);
        if (is_comparison(op) && scalars && !n->ret_bool)
            return fail(ps, "comparisons between scalars must use BOOL modifier");
        if ((n->on || n->ignoring) && (lhs->type == T_SCALAR || rhs->type == T_SCALAR))
            return fail(ps, "vector matching only allowed between instant vectors");
        n->type = scalars ? T_SCALAR : T_VECTOR;
        lhs = n;
    }
    ps->depth--;
    return lhs;
}

static node *parse(arena *a, const char *expr, char *err, size_t errcap)
{
    parser ps = {.a = a, .src = expr, .p = expr, .err = err, .errcap = errcap};
    node *n = parse_expr(&ps, 0);
    if (n) {
        ws(&ps);
        if (*ps.p) n = fail(&ps, "unexpected %.20s", ps.p);
    }
    if (!n && !ps.failed) fail(&ps, "out of memory");
    return n;
}

static void fmt_dur(mt_sbuf *b, int64_t ms)
{
    if (ms % 1000)
        mt_sb_printf(b, "%lldms", (long long)ms);
    else
        mt_sb_printf(b, "%llds", (long long)(ms / 1000));
}

static void format_node(const node *n, mt_sbuf *b)
{
    switch (n->kind) {
    case N_NUM: {
        char num[32];
        mt_format_double(n->num, num, sizeof num);
        mt_sb_puts(b, num);
        break;
    }
    case N_STR: /* as the parser reads it back: \\ \" \n \t escaped, other bytes as they are */
        mt_sb_put(b, "\"", 1);
        for (const char *c = n->str; *c; c++) {
            if (*c == '"' || *c == '\\')
                mt_sb_put(b, "\\", 1), mt_sb_put(b, c, 1);
            else if (*c == '\n' || *c == '\t')
                mt_sb_puts(b, *c == '\n' ? "\\n" : "\\t");
            else
                mt_sb_put(b, c, 1);
        }
        mt_sb_put(b, "\"", 1);
        break;
    case N_SEL:
        mt_sb_puts(b, n->sel_text);
        if (n->range) mt_sb_puts(b, "["), fmt_dur(b, n->range), mt_sb_puts(b, "]");
        if (n->offset) mt_sb_puts(b, " offset "), fmt_dur(b, n->offset);
        if (n->at_kind == AT_START || n->at_kind == AT_END)
            mt_sb_puts(b, n->at_kind == AT_START ? " @ start()" : " @ end()");
        if (n->at_kind == AT_TIME) {
            char num[40];
            mt_format_double((double)n->at / 1000, num, sizeof num);
            mt_sb_puts(b, " @ "), mt_sb_puts(b, num);
        }
        break;
    case N_SUBQ:
        mt_sb_puts(b, "(");
        format_node(n->args[0], b);
        mt_sb_puts(b, ")["), fmt_dur(b, n->range), mt_sb_puts(b, ":");
        if (n->step) fmt_dur(b, n->step);
        mt_sb_puts(b, "]");
        if (n->offset) mt_sb_puts(b, " offset "), fmt_dur(b, n->offset);
        if (n->at_kind == AT_START || n->at_kind == AT_END)
            mt_sb_puts(b, n->at_kind == AT_START ? " @ start()" : " @ end()");
        if (n->at_kind == AT_TIME) {
            char num[40];
            mt_format_double((double)n->at / 1000, num, sizeof num);
            mt_sb_puts(b, " @ "), mt_sb_puts(b, num);
        }
        break;
    case N_NEG: /* the operand is atomic or in its own parentheses */
        mt_sb_puts(b, "-");
        format_node(n->args[0], b);
        break;
    case N_CALL:
    case N_AGG:
        mt_sb_puts(b, n->kind == N_CALL ? n->str : agg_names[n->agg]);
        if (n->kind == N_AGG && (n->on || n->ignoring)) {
            mt_sb_puts(b, n->on ? " by (" : " without (");
            for (size_t i = 0; i < n->nlabels; i++)
                mt_sb_puts(b, i ? ", " : ""), mt_sb_puts(b, n->labels[i]);
            mt_sb_puts(b, ") ");
        }
        mt_sb_puts(b, "(");
        if (n->kind == N_AGG && n->nargs == 2) format_node(n->args[1], b), mt_sb_puts(b, ", ");
        for (size_t i = 0; i < (n->kind == N_AGG ? 1 : n->nargs); i++) {
            if (i) mt_sb_puts(b, ", ");
            format_node(n->args[i], b);
        }
        mt_sb_puts(b, ")");
        break;
    case N_BIN:
        mt_sb_puts(b, "(");
        format_node(n->args[0], b);
        mt_sb_printf(b, " %s ", binop_names[n->op]);
        if (n->ret_bool) mt_sb_puts(b, "bool ");
        if (n->on || n->ignoring) {
            mt_sb_puts(b, n->on ? "on(" : "ignoring(");
            for (size_t i = 0; i < n->nlabels; i++)
                mt_sb_puts(b, i ? ", " : ""), mt_sb_puts(b, n->labels[i]);
            mt_sb_puts(b, ") ");
        }
        if (n->card != CARD_ONE_TO_ONE) {
            mt_sb_puts(b, n->card == CARD_GROUP_LEFT ? "group_left(" : "group_right(");
            for (size_t i = 0; i < n->ninclude; i++)
                mt_sb_puts(b, i ? ", " : ""), mt_sb_puts(b, n->include[i]);
            mt_sb_puts(b, ") ");
        }
        format_node(n->args[1], b);
        mt_sb_puts(b, ")");
        break;
    }
}

int mt_promql_format(const char *expr, char *out, size_t cap, char *err, size_t errcap)
{
    arena a = {0};
    node *n = parse(&a, expr, err, errcap);
    int rc = n ? MT_OK : MT_EPARSE;
    if (n) {
        mt_sbuf b = {0};
        format_node(n, &b);
        snprintf(out, cap, "%s", b.p ? b.p : "");
        if (b.oom) rc = -ENOMEM;
        free(b.p);
    }
    ar_free(&a);
    return rc;
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* One series of a value: its labels and one slot per step. */
typedef struct ser {
    lset l;
    const char *sig; /* lset_sig(l) */
    double *v;
    unsigned char *ok;
} ser;

/* Raw samples of one stored series (a range selector's answer). */
typedef struct rser {
    lset l;
    size_t n;
    int64_t *t; /* ms, increasing */
    double *v;
} rser;

typedef struct val {
    vtype type;
    double *sc; /* T_SCALAR: one per step */
    ser *s;     /* T_VECTOR */
    size_t n;
    rser *raw; /* T_MATRIX (an instant query's range selector): n of them */
    const char *str;
    bool ordered; /* sort()/sort_desc() of an instant query: s in the order to answer */
} val;

typedef struct evaluator {
    mt_engine *e;
    const mt_promql_spec *spec;
    arena a;
    int64_t *ts; /* the steps, ms */
    size_t nsteps;
    const mt_fed_series *cat; /* catref's: read only, maybe shared with other queries */
    size_t ncat;
    struct catalog *catref;
    bool cat_loaded;
    uint64_t samples, max_samples;
    size_t max_series;
    int rc;
    char *err;
    size_t errcap;
} evaluator;

__attribute__((format(printf, 3, 4))) static void efail(evaluator *ev, int rc, const char *fmt, ...)
{
    if (ev->rc) return;
    ev->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    if (ev->err && ev->errcap) vsnprintf(ev->err, ev->errcap, fmt, ap);
    va_end(ap);
}

static bool oom(evaluator *ev)
{
    if (ev->a.oom && !ev->rc) efail(ev, -ENOMEM, "out of memory");
    return ev->rc != 0;
}

/* A new vector value of n series, their slots cleared. */
static ser *new_series(evaluator *ev, size_t n)
{
    ser *s = ar_zalloc(&ev->a, (n ? n : 1) * sizeof *s);
    for (size_t i = 0; s && i < n; i++) {
        s[i].v = ar_alloc(&ev->a, ev->nsteps * sizeof(double));
        s[i].ok = ar_zalloc(&ev->a, ev->nsteps);
    }
    return s;
}

/* ---- the catalog, shared between queries --------------------------------------------------- */

/*
 * Building the catalog reads every series the reader may see: for a query of a few series
 * among thousands, more than the query itself. A cache keeps the last CACHE_ENTRIES catalogs
 * (one per engine, tenant and limit), each valid while the engine's series epoch is the one
 * read before it was built (mt_engine_series_epoch: a series made or deleted changes it). An
 * entry in use is reference-counted: one replaced or evicted meanwhile is freed by its last
 * reader.
 */
#define CACHE_ENTRIES 8

typedef struct catalog {
    mt_engine *e;
    char *tenant; /* NULL: every series */
    size_t max;
    uint64_t epoch;
    mt_fed_series *cat;
    size_t n;
    unsigned refs;
    bool cached; /* in a slot of the cache; else freed at the last release */
    uint64_t used;
} catalog;

struct mt_promql_cache {
    pthread_mutex_t lock;
    catalog *slot[CACHE_ENTRIES];
    uint64_t tick;
};

int mt_promql_cache_new(mt_promql_cache **out)
{
    mt_promql_cache *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    int rc = pthread_mutex_init(&c->lock, NULL);
    if (rc) {
        free(c);
        return -rc;
    }
    *out = c;
    return MT_OK;
}

static void catalog_free(catalog *k)
{
    mt_fed_catalog_free(k->cat, k->n);
    free(k->tenant);
    free(k);
}

void mt_promql_cache_free(mt_promql_cache *c)
{
    if (!c) return;
    for (int i = 0; i < CACHE_ENTRIES; i++)
        if (c->slot[i]) {
            assert(!c->slot[i]->refs); /* no query runs on a cache being freed */
            catalog_free(c->slot[i]);
        }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static bool same_tenant(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* A cached catalog of (e, tenant, max) at epoch, its reference taken; NULL when none. */
static catalog *cache_get(mt_promql_cache *c, mt_engine *e, const char *tenant, size_t max,
                          uint64_t epoch)
{
    catalog *k = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CACHE_ENTRIES && !k; i++) {
        catalog *s = c->slot[i];
        if (s && s->e == e && s->max == max && s->epoch == epoch && same_tenant(s->tenant, tenant))
            k = s;
    }
    if (k) {
        k->refs++;
        k->used = ++c->tick;
    }
    pthread_mutex_unlock(&c->lock);
    return k;
}

/* Put k (its reference held by the caller) in c: in place of an entry of the same key, else a
   free slot, else the least recently used entry. */
static void cache_put(mt_promql_cache *c, catalog *k)
{
    pthread_mutex_lock(&c->lock);
    int at = -1;
    for (int i = 0; i < CACHE_ENTRIES && at < 0; i++) {
        catalog *s = c->slot[i];
        if (s && s->e == k->e && s->max == k->max && same_tenant(s->tenant, k->tenant)) at = i;
    }
    for (int i = 0; i < CACHE_ENTRIES && at < 0; i++)
        if (!c->slot[i]) at = i;
    if (at < 0) {
        at = 0;
        for (int i = 1; i < CACHE_ENTRIES; i++)
            if (c->slot[i]->used < c->slot[at]->used) at = i;
    }
    catalog *old = c->slot[at];
    if (old) {
        old->cached = false;
        if (!old->refs) catalog_free(old);
    }
    k->cached = true;
    k->used = ++c->tick;
    c->slot[at] = k;
    pthread_mutex_unlock(&c->lock);
}

static void cache_release(mt_promql_cache *c, catalog *k)
{
    pthread_mutex_lock(&c->lock);
    assert(k->refs > 0);
    bool gone = --k->refs == 0 && !k->cached;
    pthread_mutex_unlock(&c->lock);
    if (gone) catalog_free(k);
}

static bool load_catalog(evaluator *ev)
{
    if (ev->cat_loaded) return true;
    mt_promql_cache *c = ev->spec->cache;
    const char *tenant = ev->spec->tenant;
    uint64_t epoch = c ? mt_engine_series_epoch(ev->e) : 0; /* before the series are read */
    catalog *k = c ? cache_get(c, ev->e, tenant, ev->max_series, epoch) : NULL;
    if (!k) {
        mt_fed_series *cat;
        size_t n;
        int rc = mt_fed_catalog(ev->e, tenant, ev->max_series, &cat, &n, ev->err, ev->errcap);
        if (rc) {
            ev->rc = rc;
            return false;
        }
        k = calloc(1, sizeof *k);
        if (!k || (tenant && !(k->tenant = strdup(tenant)))) {
            free(k);
            mt_fed_catalog_free(cat, n);
            efail(ev, -ENOMEM, "out of memory");
            return false;
        }
        *k = (catalog){.e = ev->e,
                       .tenant = k->tenant,
                       .max = ev->max_series,
                       .epoch = epoch,
                       .cat = cat,
                       .n = n,
                       .refs = 1};
        if (c) cache_put(c, k);
    }
    ev->catref = k;
    ev->cat = k->cat;
    ev->ncat = k->n;
    ev->cat_loaded = true;
    return true;
}

/* The end of a query's use of its catalog. */
static void unload_catalog(evaluator *ev)
{
    catalog *k = ev->catref;
    if (!k) return;
    if (ev->spec->cache)
        cache_release(ev->spec->cache, k);
    else
        catalog_free(k);
    ev->catref = NULL;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ms as ns, saturated at the ends of int64 (a time or range far out of any data). */
static int64_t ms_to_ns(int64_t ms)
{
    if (ms <= INT64_MIN / 1000000) return INT64_MIN;
    if (ms >= INT64_MAX / 1000000) return INT64_MAX;
    return ms * 1000000;
}

/*
 * The series a selector matches, read one at a time into buffers reused from one series to the
 * next (a range function needs one series' samples at once, not every series': the memory of a
 * query stays that of its largest series, not of all it reads). fetch_open, then fetch_next
 * until it returns false (ev->rc says whether it ended on an error), then fetch_close.
 */
typedef struct samples {
    int64_t *t; /* ms */
    double *v;
    size_t cap;
} samples;

typedef struct fetcher {
    size_t *idx; /* the catalog entries sel matches, in catalog order */
    size_t n, next;
    int64_t mint, maxt; /* ms, both included */
    samples b;
} fetcher;

static bool fetch_open(evaluator *ev, const node *sel, int64_t mint, int64_t maxt, fetcher *f)
{
    *f = (fetcher){.mint = mint, .maxt = maxt};
    if (!load_catalog(ev)) return false;
    f->idx = ar_alloc(&ev->a, (ev->ncat ? ev->ncat : 1) * sizeof *f->idx);
    if (!f->idx) return oom(ev), false;
    for (size_t i = 0; i < ev->ncat; i++) {
        const mt_fed_series *c = &ev->cat[i];
        bool keep = true;
        for (size_t j = 0; j < sel->sel->nm && keep; j++) {
            const mt_matcher *m = &sel->sel->m[j];
            const char *v = "";
            for (size_t k = 0; k < c->nlabels; k++)
                if (!strcmp(c->kv[2 * k], m->key)) v = c->kv[2 * k + 1];
            keep = mt_matcher_match(m, v);
        }
        if (keep) f->idx[f->n++] = i;
    }
    return true;
}

static void samples_free(samples *b)
{
    free(b->t);
    free(b->v);
    *b = (samples){0};
}

static void fetch_close(fetcher *f)
{
    samples_free(&f->b);
}

_Static_assert(sizeof(mt_val) == sizeof(double), "mt_val holds a double in its 8 bytes");

/* Of the samples t[from..end) that share a ms, keep the last; the count of samples now in t. */
static size_t keep_last_per_ms(int64_t *t, double *v, size_t from, size_t end)
{
    size_t n = from + 1;
    for (size_t j = from + 1; j < end; j++) {
        if (t[n - 1] == t[j]) {
            v[n - 1] = v[j];
            continue;
        }
        t[n] = t[j];
        v[n++] = v[j];
    }
    return n;
}

/*
 * The samples of series c with from <= t < to (ns) into b (grown as needed), as ms; of several
 * samples in one ms the last is kept. *k of them. MT_OK; else the error, described in err.
 * Touches nothing but b: the threads of a pass (below) call it at once.
 */
static int load_samples(mt_engine *e, const mt_fed_series *c, int64_t from, int64_t to, samples *b,
                        size_t *k, char *err, size_t errcap)
{
    *k = 0;
    mt_scan *sc;
    int rc = mt_scan_open(e, c->id, from, to, &sc);
    if (rc == MT_ENOTFOUND) return MT_OK;
    if (rc) {
        snprintf(err, errcap, "reading %s: %s", c->ident, mt_strerror(rc));
        return rc;
    }
    size_t n = 0;
    mt_points pts;
    bool repeats;
    /* ms and doubles, converted as the chunks decode (MT_EINVAL: a string series, no samples) */
    while ((rc = mt_scan_next_f64(sc, 6, &pts, &repeats)) == MT_OK) {
        if (!pts.n) continue;
        if (n + pts.n > b->cap) {
            size_t c2 = b->cap ? b->cap * 2 : 1024;
            while (c2 < n + pts.n) c2 *= 2;
            double *nv = realloc(b->v, c2 * sizeof *nv);
            if (nv) b->v = nv;
            int64_t *nt = nv ? realloc(b->t, c2 * sizeof *nt) : NULL;
            if (!nt) {
                rc = -ENOMEM;
                break;
            }
            b->t = nt;
            b->cap = c2;
        }
        memcpy(b->t + n, pts.ts, pts.n * sizeof *b->t);
        memcpy(b->v + n, pts.vals, pts.n * sizeof *b->v); /* the doubles' bytes */
        if (repeats || (n && b->t[n - 1] == b->t[n])) {
            n = keep_last_per_ms(b->t, b->v, n ? n - 1 : 0, n + pts.n);
        } else {
            n += pts.n;
        }
    }
    if (rc == MT_ECORRUPT) {
        char where[4096];
        mt_scan_damage(sc, where, sizeof where);
        snprintf(err, errcap, "query stopped: %s: %s", mt_strerror(rc), where);
    } else if (rc && rc != MT_ENOTFOUND && rc != MT_EINVAL) {
        snprintf(err, errcap, "reading %s: %s", c->ident, mt_strerror(rc));
    } else {
        rc = MT_OK;
    }
    mt_scan_close(sc);
    *k = n;
    return rc;
}

/* The labels of catalog entry c into *l, sorted by name, in the arena; false when out of memory. */
static bool cat_labels(evaluator *ev, const mt_fed_series *c, lset *l)
{
    l->n = c->nlabels;
    l->kv = ar_alloc(&ev->a, 2 * c->nlabels * sizeof(char *));
    if (oom(ev)) return false;
    memcpy(l->kv, c->kv, 2 * c->nlabels * sizeof(char *));
    qsort(l->kv, c->nlabels, 2 * sizeof(char *), by_name);
    return true;
}

/* The samples window of f in ns, [from, to); false when it lies wholly beyond int64 ns. */
static bool fetch_window(const fetcher *f, int64_t *from, int64_t *to)
{
    *from = ms_to_ns(f->mint);
    *to = ms_to_ns(f->maxt + 1);
    return *from < *to;
}

/*
 * The next matched series with samples in [mint, maxt] (ms) as *r: its labels (sorted, in the
 * arena) and its samples, r->t and r->v in f's buffers, valid until the next call. false at the
 * end or on an error.
 */
static bool fetch_next(evaluator *ev, fetcher *f, rser *r)
{
    int64_t from, to;
    if (!fetch_window(f, &from, &to)) return false;
    while (f->next < f->n && !ev->rc) {
        const mt_fed_series *c = &ev->cat[f->idx[f->next++]];
        size_t k;
        char why[4200];
        int rc = load_samples(ev->e, c, from, to, &f->b, &k, why, sizeof why);
        if (rc) {
            efail(ev, rc, "%s", why);
            break;
        }
        ev->samples += k;
        if (ev->samples > ev->max_samples) {
            efail(ev, MT_ELIMIT, "the query loads more than %llu samples (the limit)",
                  (unsigned long long)ev->max_samples);
            break;
        }
        if (!k) continue;
        if (!cat_labels(ev, c, &r->l)) break;
        r->t = f->b.t;
        r->v = f->b.v;
        r->n = k;
        return true;
    }
    return false;
}

/* ---- a pass: every matched series through one function, on several threads ---------------- */

/*
 * The series a selector matches are independent until their values meet in the output set,
 * so a pass reads and computes them on up to spec->threads threads, each taking the next
 * series (an atomic counter), into slots made beforehand: v and ok per series (nsteps each).
 * The threads touch only their lane (sample buffers, scratch), their series' slots and the
 * counters; the arena, the output set and labels stay with the calling thread, which puts the
 * slots together in catalog order afterwards: the answer is that of one thread.
 */
typedef struct lane lane;
typedef struct pass pass;
/* One series' samples r to a value or none at each step (v, ok); false: out of memory. */
typedef bool (*pass_fn)(const pass *p, lane *ln, const rser *r, double *v, unsigned char *ok);

struct pass {
    evaluator *ev;
    const node *sel; /* the selector; its offset and range */
    fkind f;
    const double *param; /* the scalar argument at each step, or NULL */
    pass_fn fn;
    fetcher fe;
    double **v;         /* per matched series: a value at each step */
    unsigned char **ok; /* ... whether there is one */
    unsigned char *had; /* 1: samples in the window; 2: a value at some step */
    _Atomic size_t next;
    _Atomic uint64_t samples;
    _Atomic bool stop;
};

struct lane {
    pass *p;
    arena a; /* the slots of its series; joined to the evaluator's at the end */
    samples b;
    double *scratch; /* quantile_over_time's copy of a window */
    uint32_t *drops; /* counter resets so far, beside the samples */
    size_t scap, dcap;
    int rc;
    size_t at; /* the series it failed on */
    char err[4200];
};

static bool lane_grow(void **buf, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap) return true;
    void *g = realloc(*buf, n * size);
    if (!g) return false;
    *buf = g;
    *cap = n;
    return true;
}

static void *lane_main(void *arg)
{
    lane *ln = arg;
    pass *p = ln->p;
    evaluator *ev = p->ev;
    int64_t from, to;
    if (!fetch_window(&p->fe, &from, &to)) return NULL;
    while (!atomic_load(&p->stop)) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->fe.n) break;
        const mt_fed_series *c = &ev->cat[p->fe.idx[i]];
        size_t k;
        int rc = load_samples(ev->e, c, from, to, &ln->b, &k, ln->err, sizeof ln->err);
        if (!rc && atomic_fetch_add(&p->samples, k) + k > ev->max_samples) {
            rc = MT_ELIMIT;
            snprintf(ln->err, sizeof ln->err, "the query loads more than %llu samples (the limit)",
                     (unsigned long long)ev->max_samples);
        }
        rser r = {.n = k, .t = ln->b.t, .v = ln->b.v};
        if (!rc && k) { /* slots only for series with samples: most may have none here */
            p->v[i] = ar_alloc(&ln->a, ev->nsteps * sizeof(double));
            p->ok[i] = ar_zalloc(&ln->a, ev->nsteps);
        }
        if (!rc && k && (ln->a.oom || !p->fn(p, ln, &r, p->v[i], p->ok[i]))) {
            rc = -ENOMEM;
            snprintf(ln->err, sizeof ln->err, "out of memory");
        }
        if (rc) {
            ln->rc = rc;
            ln->at = i;
            atomic_store(&p->stop, true);
            break;
        }
        if (!k) continue;
        p->had[i] = 1;
        for (size_t s = 0; s < ev->nsteps; s++)
            if (p->ok[i][s]) {
                p->had[i] = 2;
                break;
            }
    }
    return NULL;
}

#define PASS_MAX_THREADS 8
#define PASS_MIN_WORK    20000 /* series x steps below which one thread does it all */

/* The threads a pass of n series uses: spec->threads (0: the CPUs online, at most 4). */
static size_t pass_threads(const evaluator *ev, size_t n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = ev->spec->threads ? ev->spec->threads : cpus > 4 ? 4 : cpus > 0 ? (size_t)cpus : 1;
    if (t > PASS_MAX_THREADS) t = PASS_MAX_THREADS;
    if (t > n) t = n;
    if (n * ev->nsteps < PASS_MIN_WORK) t = 1;
    return t ? t : 1;
}

/* Run p (fn, sel, f, param set; fe open) over every matched series; false on an error (ev->rc). */
static bool pass_run(pass *p)
{
    evaluator *ev = p->ev;
    size_t n = p->fe.n;
    p->v = ar_zalloc(&ev->a, (n ? n : 1) * sizeof *p->v);
    p->ok = ar_zalloc(&ev->a, (n ? n : 1) * sizeof *p->ok);
    p->had = ar_zalloc(&ev->a, n ? n : 1);
    if (oom(ev)) return false;
    atomic_init(&p->next, 0);
    atomic_init(&p->samples, ev->samples);
    atomic_init(&p->stop, false);
    size_t nt = pass_threads(ev, n);
    lane lanes[PASS_MAX_THREADS];
    pthread_t th[PASS_MAX_THREADS];
    bool started[PASS_MAX_THREADS] = {false};
    for (size_t t = 0; t < nt; t++) lanes[t] = (lane){.p = p};
    /* the calling thread is lane 0; a thread that cannot start leaves its share to the rest */
    for (size_t t = 1; t < nt; t++)
        started[t] = !pthread_create(&th[t], NULL, lane_main, &lanes[t]);
    lane_main(&lanes[0]);
    for (size_t t = 1; t < nt; t++)
        if (started[t]) pthread_join(th[t], NULL);
    ev->samples = atomic_load(&p->samples);
    lane *bad = NULL;
    for (size_t t = 0; t < nt; t++) {
        if (lanes[t].rc && (!bad || lanes[t].at < bad->at)) bad = &lanes[t];
        samples_free(&lanes[t].b);
        free(lanes[t].scratch);
        free(lanes[t].drops);
        ablock *last = lanes[t].a.head; /* its blocks go to the evaluator's arena */
        while (last && last->next) last = last->next;
        if (last) {
            last->next = ev->a.head;
            ev->a.head = lanes[t].a.head;
        }
    }
    if (bad) efail(ev, bad->rc, "%s", bad->err);
    return !ev->rc;
}

/*
 * The samples of every series sel matches with mint <= t <= maxt (ms), as
 * rser (*n of them), copied into the arena.
 */
static rser *fetch(evaluator *ev, const node *sel, int64_t mint, int64_t maxt, size_t *n)
{
    *n = 0;
    fetcher f;
    if (!fetch_open(ev, sel, mint, maxt, &f)) return NULL;
    rser *out = ar_zalloc(&ev->a, (f.n ? f.n : 1) * sizeof *out);
    if (!out) return oom(ev), NULL;
    rser r;
    while (fetch_next(ev, &f, &r)) {
        r.t = ar_alloc(&ev->a, r.n * sizeof *r.t);
        r.v = ar_alloc(&ev->a, r.n * sizeof *r.v);
        if (oom(ev)) break;
        memcpy(r.t, f.b.t, r.n * sizeof *r.t);
        memcpy(r.v, f.b.v, r.n * sizeof *r.v);
        out[(*n)++] = r;
    }
    fetch_close(&f);
    return ev->rc ? NULL : out;
}

/* The output series of a node: one per distinct label set (a second one at a step is an error). */
typedef struct outset {
    smap m;
    ser *s;
    size_t n, cap;
} outset;

static bool outset_init(evaluator *ev, outset *o, size_t cap)
{
    o->n = 0;
    o->cap = cap ? cap : 1;
    o->s = ar_zalloc(&ev->a, o->cap * sizeof *o->s);
    return o->s && smap_init(&ev->a, &o->m, o->cap);
}

/*
 * The series of o with labels l, created on first use with the slots v and ok when given
 * (*fresh: true; the series owns them then), else new ones. NULL on an error.
 */
static ser *outset_take(evaluator *ev, outset *o, lset l, double *v, unsigned char *ok, bool *fresh)
{
    const char *sig = lset_sig(&ev->a, &l);
    bool added;
    size_t i = smap_put(&o->m, sig, o->n, &added);
    *fresh = added;
    if (!added) return &o->s[i];
    if (o->n == o->cap) {
        efail(ev, MT_EINVAL, "internal: output set full");
        return NULL;
    }
    ser *s = &o->s[o->n++];
    s->l = l;
    s->sig = sig;
    s->v = v ? v : ar_alloc(&ev->a, ev->nsteps * sizeof(double));
    s->ok = ok ? ok : ar_zalloc(&ev->a, ev->nsteps);
    if (oom(ev)) return NULL;
    return s;
}

/* The series of o with labels l (created on first use); NULL on an error. */
static ser *outset_get(evaluator *ev, outset *o, lset l)
{
    bool fresh;
    return outset_take(ev, o, l, NULL, NULL, &fresh);
}

static void outset_set(evaluator *ev, ser *s, size_t k, double v)
{
    if (s->ok[k]) {
        efail(ev, MT_EINVAL, "vector cannot contain metrics with the same labelset");
        return;
    }
    s->ok[k] = 1;
    s->v[k] = v;
}

static val eval(evaluator *ev, const node *n);
static val eval_call_more(evaluator *ev, const node *n);
static val eval_count_values(evaluator *ev, const node *n);
static val eval_group(evaluator *ev, const node *n, val l, val r);
static val eval_invariant(evaluator *ev, const node *n);
static val eval_selector_at(evaluator *ev, const node *n);
static val eval_range_call_at(evaluator *ev, const node *n, fkind f);
static rser *subq_rser(evaluator *ev, const node *sq, int64_t first, int64_t last, size_t *nr);
static double simple_fn(fkind f, double x);
static int cmp_lset(const lset *a, const lset *b);

static val vector_of(outset *o)
{
    return (val){.type = T_VECTOR, .s = o->s, .n = o->n};
}

/* An instant selector's series: the latest sample within the lookback at each step. */
static bool selector_steps(const pass *p, lane *ln, const rser *r, double *v, unsigned char *ok)
{
    (void)ln;
    const evaluator *ev = p->ev;
    int64_t lb = MT_PROMQL_LOOKBACK_MS;
    size_t j = 0; /* the first sample after the step's reference time */
    for (size_t k = 0; k < ev->nsteps; k++) {
        int64_t ref = ev->ts[k] - p->sel->offset;
        while (j < r->n && r->t[j] <= ref) j++;
        if (j && r->t[j - 1] >= ref - lb) {
            ok[k] = 1;
            v[k] = r->v[j - 1];
        }
    }
    return true;
}

/* Instant selector: the latest sample within the lookback at each step. */
static val eval_selector(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    pass p = {.ev = ev, .sel = n, .fn = selector_steps};
    if (!fetch_open(ev, n, ev->ts[0] - n->offset - MT_PROMQL_LOOKBACK_MS,
                    ev->ts[ev->nsteps - 1] - n->offset, &p.fe))
        return out;
    bool ok = pass_run(&p);
    size_t had = 0;
    for (size_t i = 0; ok && i < p.fe.n; i++) had += p.had[i] != 0;
    if (ok && !(out.s = ar_zalloc(&ev->a, (had ? had : 1) * sizeof *out.s))) ok = !oom(ev);
    for (size_t i = 0; ok && i < p.fe.n; i++) {
        if (!p.had[i]) continue;
        ser *s = &out.s[out.n];
        if (!(ok = cat_labels(ev, &ev->cat[p.fe.idx[i]], &s->l))) break;
        s->v = p.v[i];
        s->ok = p.ok[i];
        out.n++;
    }
    fetch_close(&p.fe);
    if (ev->rc) out.n = 0;
    return out;
}

/* ---- range functions ------------------------------------------------------------------------ */

static double kahan_add(double v, double *sum, double *c)
{
    double t = *sum + v;
    if (fabs(*sum) >= fabs(v))
        *c += (*sum - t) + v;
    else
        *c += (v - t) + *sum;
    *sum = t;
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    /* NaN sorts first, as Go's sort.Float64s */
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return (x > y) - (x < y);
}

#define SWAP_D(a, b)                                                                               \
    do {                                                                                           \
        double t_ = (a);                                                                           \
        (a) = (b);                                                                                 \
        (b) = t_;                                                                                  \
    } while (0)

/* x before y in cmp_double's order (NaN first); static, so inlined into select_kth. */
static inline bool before(double x, double y)
{
    return cmp_double(&x, &y) < 0;
}

/*
 * Reorder v[0..n) so that v[k] holds the value a sort by cmp_double would put there, none before
 * it after it in that order and none after it before (Hoare's selection, median of three): O(n)
 * where a sort is O(n log n), and quantile_over_time runs it at every step of every series.
 */
static void select_kth(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (hi > lo) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (before(v[mid], v[lo])) SWAP_D(v[mid], v[lo]);
        if (before(v[hi], v[lo])) SWAP_D(v[hi], v[lo]);
        if (before(v[hi], v[mid])) SWAP_D(v[hi], v[mid]);
        double pivot = v[mid]; /* v[lo] <= pivot <= v[hi]: the scans below stop in range */
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (before(v[i], pivot)) i++;
            while (before(pivot, v[j])) j--;
            if (i <= j) {
                SWAP_D(v[i], v[j]);
                i++;
                j--;
            }
        }
        /* v[lo..j] are not after the pivot, v[i..hi] not before it, v(j..i) equal it */
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            return;
    }
}

/* Prometheus' quantile over v (n values, reordered here in place). */
static double quantile(double q, double *v, size_t n)
{
    if (!n || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    double rank = q * (double)(n - 1);
    double lo = floor(rank);
    if (lo < 0) lo = 0;
    double hi = lo + 1 > (double)(n - 1) ? (double)(n - 1) : lo + 1;
    double w = rank - floor(rank);
    /* the two order statistics around the rank: v[lo] by selection, then the least after it */
    size_t l = (size_t)lo, h = (size_t)hi;
    select_kth(v, n, l);
    double vh = v[l];
    if (h > l) {
        vh = v[h];
        for (size_t i = h + 1; i < n; i++)
            if (before(v[i], vh)) vh = v[i];
    }
    return v[l] * (1 - w) + vh * w;
}

/* Least squares over (t - intercept_t seconds, v): slope and intercept, as linearRegression. */
static void linear_regression(const int64_t *t, const double *v, size_t n, int64_t icept,
                              double *slope, double *intercept)
{
    double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    bool const_y = true;
    for (size_t i = 0; i < n; i++) {
        if (const_y && i > 0 && v[i] != v[0]) const_y = false;
        double x = (double)(t[i] - icept) / 1e3;
        kahan_add(x, &sx, &cx);
        kahan_add(v[i], &sy, &cy);
        kahan_add(x * v[i], &sxy, &cxy);
        kahan_add(x * x, &sx2, &cx2);
    }
    if (const_y) {
        if (isinf(v[0])) {
            *slope = *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = v[0];
        }
        return;
    }
    double fn = (double)n;
    sx += cx, sy += cy, sxy += cxy, sx2 += cx2;
    double cov = sxy - sx * sy / fn, var = sx2 - sx * sx / fn;
    *slope = cov / var;
    *intercept = sy / fn - *slope * sx / fn;
}

/*
 * d ms in seconds, as Prometheus has it: float64(d) / 1000. A whole number of seconds (the
 * usual distance between scrapes of second precision) is that quotient exactly, and an integer
 * division by a constant costs a multiplication where the float division costs a dozen cycles.
 * (Below 2^53 ms, float64(d) is d itself, so both ways give q.)
 */
static inline double ms_to_s(int64_t d)
{
    int64_t q = d / 1000;
    if (q * 1000 == d && q > -(INT64_C(1) << 43) && q < (INT64_C(1) << 43)) return (double)q;
    return (double)d / 1000;
}

/*
 * Prometheus' extrapolatedRate for rate, increase or delta (f) over the samples t[0..n), n >= 2,
 * of a window (range_start, range_end] (ms), up to its last two operations: the change over the
 * window (*num) and the interval it is extrapolated to (*interval) over the one sampled
 * (*sampled). The value is num * (interval / sampled), then / range_s for a rate (extrapolated(),
 * or two steps at a time in range_steps). walk: a counter's window that holds a reset (its
 * resets are added back); a window without one skips the walk. The same operations in the same
 * order as Prometheus, or ones proven to give the same bits: the same result.
 */
static inline __attribute__((always_inline)) void
extrapolation(fkind f, const int64_t *t, const double *v, size_t n, int64_t range_start,
              int64_t range_end, bool walk, double *num, double *interval, double *sampled_out)
{
    assert(n >= 2 && (f == F_RATE || f == F_INCREASE || f == F_DELTA));
    bool counter = f != F_DELTA;
    double result = v[n - 1] - v[0];
    if (walk)
        for (size_t i = 1; i < n; i++)
            if (v[i] < v[i - 1]) result += v[i - 1];
    double to_start = ms_to_s(t[0] - range_start);
    double to_end = ms_to_s(range_end - t[n - 1]);
    double sampled = ms_to_s(t[n - 1] - t[0]);
    /* to_zero >= sampled >= to_start when v[0] >= result (rounding is monotonic): the
       division below could change nothing, and a counter's first value is most often the
       larger */
    if (counter && result > 0 && v[0] >= 0 && !(v[0] >= result && sampled >= to_start)) {
        double to_zero = sampled * (v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    /* Each end is extrapolated up to 1.1 average gaps, else by half of one. Ends well inside
       the threshold (the usual: a window's first and last scrape within a gap of its edges)
       need no average: to_start * (n - 1) below sampled * 1.1 by far more than the rounding of
       either side (a few units of 2^-53) means to_start < avg * 1.1, whatever that rounds to. */
    double dn = (double)(n - 1), lim = sampled * 1.1 * (1 - 1e-9), iv = sampled;
    if (to_start * dn < lim && to_end * dn < lim) {
        iv += to_start;
        iv += to_end;
    } else {
        double avg = sampled / dn, threshold = avg * 1.1;
        iv += to_start < threshold ? to_start : avg / 2;
        iv += to_end < threshold ? to_end : avg / 2;
    }
    *num = result;
    *interval = iv;
    *sampled_out = sampled;
}

static double extrapolated(fkind f, const int64_t *t, const double *v, size_t n,
                           int64_t range_start, int64_t range_end, double range_s, bool walk)
{
    double num, interval, sampled;
    extrapolation(f, t, v, n, range_start, range_end, walk, &num, &interval, &sampled);
    double result = num * (interval / sampled);
    return f == F_RATE ? result / range_s : result;
}

/* Whether a counter drops anywhere in v[0..n): most never do, and skip counting resets. */
static bool any_drop(const double *v, size_t n)
{
    size_t i = 1;
#if defined(__SSE2__)
    __m128d acc = _mm_setzero_pd();
    for (; i + 2 <= n; i += 2)
        acc = _mm_or_pd(acc, _mm_cmplt_pd(_mm_loadu_pd(v + i), _mm_loadu_pd(v + i - 1)));
    if (_mm_movemask_pd(acc)) return true;
#endif
    for (; i < n; i++)
        if (v[i] < v[i - 1]) return true;
    return false;
}

/*
 * The last two operations of extrapolated() over steps [0, nsteps): v[k] = num[k] * (iv[k] /
 * sp[k]), then / range_s (rate), for the steps with ok[k]; two at a time, as divpd rounds
 * each lane as divsd does (the same bits), at about the cost of one.
 */
static void scale_steps(double *v, const double *iv, const double *sp, const unsigned char *ok,
                        size_t nsteps, bool rate, double range_s)
{
    size_t k = 0;
#if defined(__SSE2__)
    const __m128d rs = _mm_set1_pd(range_s);
    for (; k + 2 <= nsteps; k += 2) {
        __m128d x =
            _mm_mul_pd(_mm_loadu_pd(v + k), _mm_div_pd(_mm_loadu_pd(iv + k), _mm_loadu_pd(sp + k)));
        if (rate) x = _mm_div_pd(x, rs);
        double two[2];
        _mm_storeu_pd(two, x);
        if (ok[k]) v[k] = two[0];
        if (ok[k + 1]) v[k + 1] = two[1];
    }
#endif
    for (; k < nsteps; k++)
        if (ok[k]) v[k] = rate ? v[k] * (iv[k] / sp[k]) / range_s : v[k] * (iv[k] / sp[k]);
}

/*
 * f over the samples t[0..n) of a window (range_start, range_end] (ms);
 * param is the scalar argument at this step. drops (or NULL) runs beside v:
 * drops[i] counts the j <= i of the whole series with v[j] < v[j - 1], so a
 * window's counter resets are drops[n - 1] - drops[0] without a walk.
 * Returns false for no value.
 */
static bool range_fn(fkind f, const int64_t *t, const double *v, size_t n, int64_t range_start,
                     int64_t range_end, int64_t range, double param, int64_t step_t, double *out,
                     double *scratch, const uint32_t *drops)
{
    if (!n) return false;
    switch (f) {
    case F_RATE:
    case F_INCREASE:
    case F_DELTA:
        if (n < 2) return false;
        *out = extrapolated(f, t, v, n, range_start, range_end, (double)range / 1000,
                            f != F_DELTA && (!drops || drops[n - 1] != drops[0]));
        return true;
    case F_IRATE:
    case F_IDELTA: {
        if (n < 2) return false;
        double last = v[n - 1], prev = v[n - 2];
        double r = f == F_IRATE && last < prev ? last : last - prev;
        int64_t dt = t[n - 1] - t[n - 2];
        if (dt == 0) return false;
        if (f == F_IRATE) r /= (double)dt / 1000;
        *out = r;
        return true;
    }
    case F_DERIV:
    case F_PREDICT_LINEAR: {
        if (n < 2) return false;
        double slope, icept;
        linear_regression(t, v, n, f == F_DERIV ? t[0] : step_t, &slope, &icept);
        *out = f == F_DERIV ? slope : slope * param + icept;
        return true;
    }
    case F_RESETS:
    case F_CHANGES: {
        if (f == F_RESETS && drops) {
            *out = (double)(drops[n - 1] - drops[0]);
            return true;
        }
        double c = 0;
        for (size_t i = 1; i < n; i++)
            if (f == F_RESETS ? v[i] < v[i - 1]
                              : !(v[i] == v[i - 1] || (isnan(v[i]) && isnan(v[i - 1]))))
                c++;
        *out = c;
        return true;
    }
    case F_AVG_OT: {
        double mean = 0, c = 0, count = 0;
        for (size_t i = 0; i < n; i++) {
            count++;
            if (isinf(mean)) {
                if (isinf(v[i]) && (mean > 0) == (v[i] > 0)) continue;
                if (!isinf(v[i]) && !isnan(v[i])) continue;
            }
            kahan_add(v[i] / count - mean / count, &mean, &c);
        }
        *out = isinf(mean) ? mean : mean + c;
        return true;
    }
    case F_SUM_OT: {
        double s = 0, c = 0;
        for (size_t i = 0; i < n; i++) kahan_add(v[i], &s, &c);
        *out = isinf(s) ? s : s + c;
        return true;
    }
    case F_MIN_OT:
    case F_MAX_OT: {
        double m = v[0];
        for (size_t i = 0; i < n; i++)
            if ((f == F_MIN_OT ? v[i] < m : v[i] > m) || isnan(m)) m = v[i];
        *out = m;
        return true;
    }
    case F_COUNT_OT: *out = (double)n; return true;
    case F_LAST_OT: *out = v[n - 1]; return true;
    case F_PRESENT_OT: *out = 1; return true;
    case F_STDDEV_OT:
    case F_STDVAR_OT: {
        double count = 0, mean = 0, cm = 0, aux = 0, ca = 0;
        for (size_t i = 0; i < n; i++) {
            count++;
            double delta = v[i] - (mean + cm);
            kahan_add(delta / count, &mean, &cm);
            kahan_add(delta * (v[i] - (mean + cm)), &aux, &ca);
        }
        double var = (aux + ca) / count;
        *out = f == F_STDDEV_OT ? sqrt(var) : var;
        return true;
    }
    case F_QUANTILE_OT:
        memcpy(scratch, v, n * sizeof *v);
        *out = quantile(param, scratch, n);
        return true;
    default: return false;
    }
}

/* The scalar argument k of a call at every step (NULL when absent). */
static double *scalar_arg(evaluator *ev, const node *n, size_t k)
{
    if (k >= n->nargs) return NULL;
    val v = eval(ev, n->args[k]);
    return ev->rc ? NULL : v.sc;
}

/* A range function's series: f over the window (t - range, t] at each step t. */
static bool range_steps(const pass *p, lane *ln, const rser *r, double *v, unsigned char *ok)
{
    const evaluator *ev = p->ev;
    const node *ms = p->sel;
    fkind f = p->f;
    if (f == F_QUANTILE_OT && !lane_grow((void **)&ln->scratch, &ln->scap, r->n, sizeof(double)))
        return false;
    const uint32_t *drops = NULL;
    /* a counter that never drops (the usual one) needs no count: its windows skip the walk */
    if (((f == F_RATE || f == F_INCREASE) && any_drop(r->v, r->n)) || f == F_RESETS) {
        if (!lane_grow((void **)&ln->drops, &ln->dcap, r->n, sizeof(uint32_t))) return false;
        uint32_t c = 0;
        ln->drops[0] = 0;
        for (size_t i = 1; i < r->n; i++) ln->drops[i] = c += r->v[i] < r->v[i - 1];
        drops = ln->drops;
    }
    size_t lo = 0, hi = 0;
    if (f == F_RATE || f == F_INCREASE || f == F_DELTA) {
        /* the dashboard's usual functions: range_fn's case, inlined into the walk of the steps
           and with the range in seconds divided once */
        const double range_s = (double)ms->range / 1000;
        if (!lane_grow((void **)&ln->scratch, &ln->scap, 2 * ev->nsteps, sizeof(double)))
            return false;
        double *iv = ln->scratch, *sp = ln->scratch + ev->nsteps;
        for (size_t k = 0; k < ev->nsteps; k++) {
            int64_t end = ev->ts[k] - ms->offset, start = end - ms->range;
            while (lo < r->n && r->t[lo] < start) lo++;
            if (hi < lo) hi = lo;
            while (hi < r->n && r->t[hi] <= end) hi++;
            if (!(ok[k] = hi - lo >= 2)) {
                v[k] = 0, iv[k] = sp[k] = 1; /* scale_steps divides every step */
                continue;
            }
            extrapolation(f, r->t + lo, r->v + lo, hi - lo, start, end,
                          drops && drops[hi - 1] != drops[lo], /* NULL: none at all */
                          &v[k], &iv[k], &sp[k]);
        }
        scale_steps(v, iv, sp, ok, ev->nsteps, f == F_RATE, range_s);
        return true;
    }
    for (size_t k = 0; k < ev->nsteps; k++) {
        int64_t end = ev->ts[k] - ms->offset, start = end - ms->range;
        while (lo < r->n && r->t[lo] < start) lo++;
        if (hi < lo) hi = lo;
        while (hi < r->n && r->t[hi] <= end) hi++;
        ok[k] = range_fn(f, r->t + lo, r->v + lo, hi - lo, start, end, ms->range,
                         p->param ? p->param[k] : 0, ev->ts[k], &v[k], ln->scratch,
                         drops ? drops + lo : NULL);
    }
    return true;
}

static val eval_range_call(evaluator *ev, const node *n, fkind f)
{
    val out = {.type = T_VECTOR};
    size_t mi = f == F_QUANTILE_OT ? 1 : 0;
    const node *ms = n->args[mi];
    double *param = scalar_arg(ev, n, f == F_QUANTILE_OT ? 0 : 1);
    if (ev->rc) return out;
    pass p = {.ev = ev, .sel = ms, .f = f, .param = param, .fn = range_steps};
    if (!fetch_open(ev, ms, ev->ts[0] - ms->offset - ms->range, ev->ts[ev->nsteps - 1] - ms->offset,
                    &p.fe))
        return out;
    outset o;
    bool ok = pass_run(&p);
    if (ok && !outset_init(ev, &o, p.fe.n)) ok = !oom(ev);
    /* in catalog order, as one thread would: the same answer, the same error */
    for (size_t i = 0; ok && i < p.fe.n; i++) {
        if (p.had[i] != 2) continue;
        lset l;
        if (!(ok = cat_labels(ev, &ev->cat[p.fe.idx[i]], &l))) break;
        if (f != F_LAST_OT) l = lset_filter(&ev->a, &l, true, NULL, 0, false);
        bool fresh;
        ser *s = outset_take(ev, &o, l, p.v[i], p.ok[i], &fresh);
        if (!s) break;
        for (size_t k = 0; !fresh && k < ev->nsteps && !ev->rc; k++)
            if (p.ok[i][k]) outset_set(ev, s, k, p.v[i][k]);
        ok = !ev->rc;
    }
    fetch_close(&p.fe);
    return ok ? vector_of(&o) : out;
}

static double round_to(double v, double to)
{
    double inv = 1.0 / to;
    return floor(v * inv + 0.5) / inv;
}

/*
 * Each value of vector a through fn (false from fn: no value at that step),
 * the metric name dropped as functions and negation do; series that keep no
 * value are left out.
 */
static val map_values(evaluator *ev, const val *a,
                      bool (*fn)(void *ud, size_t k, double x, double *y), void *ud)
{
    val out = {.type = T_VECTOR};
    outset o;
    if (!outset_init(ev, &o, a->n)) return oom(ev), out;
    for (size_t i = 0; i < a->n && !ev->rc; i++) {
        ser *s = NULL;
        for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
            double y;
            if (!a->s[i].ok[k] || !fn(ud, k, a->s[i].v[k], &y)) continue;
            if (!s &&
                !(s = outset_get(ev, &o, lset_filter(&ev->a, &a->s[i].l, true, NULL, 0, false))))
                break;
            outset_set(ev, s, k, y);
        }
    }
    return vector_of(&o);
}

/* One function's value at step k of x (f->kind: abs ... clamp); false: no result there. */
typedef struct simple_ctx {
    const func *f;
    const double *p1, *p2; /* the scalar arguments, per step (NULL: absent) */
} simple_ctx;

static bool simple_value(void *ud, size_t k, double x, double *out)
{
    const simple_ctx *c = ud;
    const func *f = c->f;
    const double *p1 = c->p1, *p2 = c->p2;
    double y;
    switch (f->kind) {
    case F_ABS: y = fabs(x); break;
    case F_CEIL: y = ceil(x); break;
    case F_FLOOR: y = floor(x); break;
    case F_ROUND: y = round_to(x, p1 ? p1[k] : 1); break;
    case F_SQRT: y = sqrt(x); break;
    case F_LN: y = log(x); break;
    case F_LOG2: y = log2(x); break;
    case F_LOG10: y = log10(x); break;
    case F_EXP: y = exp(x); break;
    case F_SGN: y = x > 0 ? 1 : x < 0 ? -1 : x; break;
    case F_CLAMP_MIN: y = fmax(p1[k], x); break;
    case F_CLAMP_MAX: y = fmin(p1[k], x); break;
    case F_CLAMP:
        if (p2[k] < p1[k]) return false; /* max < min: no result */
        y = fmax(p1[k], fmin(p2[k], x));
        break;
    default: y = simple_fn(f->kind, x); break;
    }
    if (f->kind == F_CLAMP_MIN || f->kind == F_CLAMP_MAX || f->kind == F_CLAMP) {
        /* Go's math.Max/Min: NaN in, NaN out */
        if (isnan(x) || isnan(p1[k]) || (f->kind == F_CLAMP && isnan(p2[k]))) y = NAN;
    }
    *out = y;
    return true;
}

static val eval_call(evaluator *ev, const node *n)
{
    const func *f = &funcs[n->fn];
    val out = {.type = f->ret};
    if (f->kind >= F_ABSENT && f->kind <= F_YEAR) return eval_call_more(ev, n);
    if (f->args[0] == T_MATRIX || (f->nargs > 1 && f->args[1] == T_MATRIX)) {
        const node *ma = n->args[f->args[0] == T_MATRIX ? 0 : 1];
        if (ma->kind == N_SUBQ || ma->at_kind != AT_NONE) return eval_range_call_at(ev, n, f->kind);
        return eval_range_call(ev, n, f->kind);
    }
    if (f->kind == F_TIME || f->kind == F_SCALAR) {
        out.sc = ar_alloc(&ev->a, ev->nsteps * sizeof(double));
        if (oom(ev)) return out;
        val a = f->kind == F_SCALAR ? eval(ev, n->args[0]) : (val){0};
        if (ev->rc) return out;
        for (size_t k = 0; k < ev->nsteps; k++) {
            if (f->kind == F_TIME) {
                out.sc[k] = (double)ev->ts[k] / 1000;
                continue;
            }
            size_t found = 0;
            double v = NAN;
            for (size_t i = 0; i < a.n; i++)
                if (a.s[i].ok[k]) found++, v = a.s[i].v[k];
            out.sc[k] = found == 1 ? v : NAN;
        }
        return out;
    }
    if (f->kind == F_VECTOR) {
        val a = eval(ev, n->args[0]);
        if (ev->rc) return out;
        out.s = new_series(ev, 1);
        if (oom(ev)) return out;
        out.n = 1;
        out.s[0].l = (lset){0, NULL};
        for (size_t k = 0; k < ev->nsteps; k++) out.s[0].ok[k] = 1, out.s[0].v[k] = a.sc[k];
        return out;
    }
    val a = eval(ev, n->args[0]);
    simple_ctx c = {f, scalar_arg(ev, n, 1), scalar_arg(ev, n, 2)};
    if (ev->rc) return out;
    return map_values(ev, &a, simple_value, &c);
}

/* ---- aggregations -----------------------------------------------------------------------------
 */

typedef struct ranked {
    double v;
    size_t i;
} ranked;

static int by_top(const void *a, const void *b)
{
    const ranked *x = a, *y = b; /* larger first, NaN last; ties by index */
    if (isnan(x->v) != isnan(y->v)) return isnan(x->v) ? 1 : -1;
    if (x->v != y->v && !isnan(x->v)) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int by_bottom(const void *a, const void *b)
{
    const ranked *x = a, *y = b; /* smaller first, NaN last */
    if (isnan(x->v) != isnan(y->v)) return isnan(x->v) ? 1 : -1;
    if (x->v != y->v && !isnan(x->v)) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* A group's place in the order the step loop of eval_agg makes the output series. */
typedef struct gorder {
    size_t k, g; /* its first step with a value, the group */
} gorder;

static int by_gorder(const void *a, const void *b)
{
    const gorder *x = a, *y = b;
    return x->k != y->k ? (x->k > y->k) - (x->k < y->k) : (x->g > y->g) - (x->g < y->g);
}

/*
 * sum, count, group, min and max of eval_agg, a member at a time: each member's steps in one
 * pass (one array after another) instead of an element of every member at each step, which
 * for many series reads as many arrays at once as there are members. For each group and step
 * the members come in the same order, so the operations and the values are the same; the
 * output series are made in the order the step loop makes them (by first step, then group).
 */
static void agg_by_member(evaluator *ev, aggop agg, const val *a, size_t ng, const size_t *first,
                          const size_t *members, const lset *glab, outset *o, ser **gs)
{
    size_t ns = ev->nsteps;
    gorder *ord = ar_alloc(&ev->a, (ng + 1) * sizeof *ord);
    double *acc = malloc(ns * sizeof *acc);
    uint32_t *cnt = malloc(ns * sizeof *cnt);
    if (!ord || !acc || !cnt) {
        free(acc);
        free(cnt);
        oom(ev);
        return;
    }
    for (size_t g = 0; g < ng; g++) {
        ord[g] = (gorder){ns, g};
        for (size_t j = first[g]; j < first[g + 1]; j++) {
            const ser *s = &a->s[members[j]];
            for (size_t k = 0; k < ord[g].k; k++)
                if (s->ok[k]) {
                    ord[g].k = k;
                    break;
                }
        }
    }
    qsort(ord, ng, sizeof *ord, by_gorder);
    for (size_t i = 0; i < ng && ord[i].k < ns && !ev->rc; i++)
        if (!(gs[ord[i].g] = outset_get(ev, o, glab[ord[i].g]))) break;
    for (size_t g = 0; g < ng && !ev->rc; g++) {
        if (!gs[g]) continue; /* no value at any step */
        memset(cnt, 0, ns * sizeof *cnt);
        for (size_t j = first[g]; j < first[g + 1]; j++) {
            const ser *s = &a->s[members[j]];
            for (size_t k = 0; k < ns; k++) {
                if (!s->ok[k]) continue;
                double v = s->v[k];
                uint32_t c = ++cnt[k];
                if (agg == A_SUM)
                    acc[k] = c == 1 ? 0 + v : acc[k] + v;
                else if (agg == A_MIN && (c == 1 || acc[k] > v || isnan(acc[k])))
                    acc[k] = v;
                else if (agg == A_MAX && (c == 1 || acc[k] < v || isnan(acc[k])))
                    acc[k] = v;
            }
        }
        for (size_t k = 0; k < ns && !ev->rc; k++) {
            if (!cnt[k]) continue;
            double r = agg == A_COUNT ? (double)cnt[k] : agg == A_GROUP ? 1 : acc[k];
            outset_set(ev, gs[g], k, r);
        }
    }
    free(acc);
    free(cnt);
}

static val eval_agg(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    val a = eval(ev, n->args[0]);
    double *param = n->nargs > 1 ? eval(ev, n->args[1]).sc : NULL;
    if (ev->rc) return out;
    /* groups: computed once, labels do not change between steps */
    size_t *gid = ar_alloc(&ev->a, (a.n + 1) * sizeof *gid);
    lset *glab = ar_alloc(&ev->a, (a.n + 1) * sizeof *glab);
    size_t *members = ar_alloc(&ev->a, (a.n + 1) * sizeof *members); /* series by group */
    size_t *first =
        ar_zalloc(&ev->a, (a.n + 2) * sizeof *first); /* group g: [first[g], first[g+1]) */
    ranked *rk = ar_alloc(&ev->a, (a.n + 1) * sizeof *rk);
    double *vals = ar_alloc(&ev->a, (a.n + 1) * sizeof *vals);
    smap m;
    if (!gid || !glab || !members || !first || !rk || !vals || !smap_init(&ev->a, &m, a.n))
        return oom(ev), out;
    size_t ng = 0;
    for (size_t i = 0; i < a.n; i++) {
        /* by (...) keeps those labels, no clause is by (), without (...) drops those and the name
         */
        lset g = !n->ignoring ? lset_filter(&ev->a, &a.s[i].l, false, n->labels, n->nlabels, true)
                              : lset_filter(&ev->a, &a.s[i].l, true, n->labels, n->nlabels, false);
        if (oom(ev)) return out;
        bool added;
        gid[i] = smap_put(&m, lset_sig(&ev->a, &g), ng, &added);
        if (added) glab[ng++] = g;
    }
    for (size_t i = 0; i < a.n; i++) first[gid[i] + 2]++;
    for (size_t g = 0; g < ng; g++) first[g + 2] += first[g + 1];
    for (size_t i = 0; i < a.n; i++) members[first[gid[i] + 1]++] = i;
    /* now group g's members are members[first[g] .. first[g + 1]) */
    bool top = n->agg == A_TOPK || n->agg == A_BOTTOMK;
    outset o;
    if (!outset_init(ev, &o, top ? a.n : ng)) return oom(ev), out;
    ser **gs = ar_zalloc(&ev->a, (ng + 1) * sizeof *gs);
    ser **tops = top ? ar_zalloc(&ev->a, (a.n + 1) * sizeof *tops) : NULL;
    if (!gs || (top && !tops)) return oom(ev), out;
    if (n->agg == A_SUM || n->agg == A_COUNT || n->agg == A_GROUP || n->agg == A_MIN ||
        n->agg == A_MAX) {
        agg_by_member(ev, n->agg, &a, ng, first, members, glab, &o, gs);
        return vector_of(&o);
    }
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        for (size_t g = 0; g < ng && !ev->rc; g++) {
            size_t cnt = 0;
            double acc = 0, mean = 0;
            for (size_t j = first[g]; j < first[g + 1]; j++) {
                const ser *s = &a.s[members[j]];
                if (!s->ok[k]) continue;
                double v = s->v[k];
                cnt++;
                switch (n->agg) {
                case A_SUM: acc += v; break;
                case A_COUNT:
                case A_GROUP:
                case A_COUNT_VALUES: break;
                case A_MIN:
                    if (cnt == 1 || acc > v || isnan(acc)) acc = v;
                    break;
                case A_MAX:
                    if (cnt == 1 || acc < v || isnan(acc)) acc = v;
                    break;
                case A_AVG:
                    if (cnt == 1) {
                        mean = v;
                        break;
                    }
                    if (isinf(mean)) {
                        if (isinf(v) && (mean > 0) == (v > 0)) break;
                        if (!isinf(v) && !isnan(v)) break;
                    }
                    mean += v / (double)cnt - mean / (double)cnt;
                    break;
                case A_STDDEV:
                case A_STDVAR: {
                    if (cnt == 1) {
                        mean = v;
                        acc = 0;
                        break;
                    }
                    double delta = v - mean;
                    mean += delta / (double)cnt;
                    acc += delta * (v - mean);
                    break;
                }
                case A_QUANTILE: vals[cnt - 1] = v; break;
                case A_TOPK:
                case A_BOTTOMK: rk[cnt - 1] = (ranked){v, members[j]}; break;
                }
            }
            if (!cnt) continue;
            if (top) {
                double pk = param[k];
                if (!(pk < 9.2e18 && pk > -9.2e18)) { /* NaN too, as convertibleToInt64 */
                    efail(ev, MT_EINVAL, "Scalar value %g overflows int64", pk);
                    break;
                }
                if (isnan(pk) || pk < 1) continue;
                size_t kk = pk > (double)cnt ? cnt : (size_t)pk;
                /* a small k: the first kk in the order, not a sort of all: rk[0..nk) holds the
                   first nk of rk[0..j) by insertion (the order is total: the index breaks ties) */
                int (*cmp)(const void *, const void *) = n->agg == A_TOPK ? by_top : by_bottom;
                size_t nk = 0;
                if (kk > 32) qsort(rk, cnt, sizeof *rk, cmp);
                for (size_t j = 0; kk <= 32 && j < cnt; j++) {
                    ranked x = rk[j];
                    if (nk == kk && cmp(&x, &rk[nk - 1]) >= 0) continue;
                    size_t p = nk < kk ? nk++ : nk - 1;
                    for (; p > 0 && cmp(&x, &rk[p - 1]) < 0; p--) rk[p] = rk[p - 1];
                    rk[p] = x;
                }
                for (size_t j = 0; j < kk && !ev->rc; j++) {
                    /* an input series' output series, found once (its signature is costly) */
                    ser **s = &tops[rk[j].i];
                    if (!*s) *s = outset_get(ev, &o, a.s[rk[j].i].l);
                    if (*s) outset_set(ev, *s, k, rk[j].v);
                }
                continue;
            }
            double r = n->agg == A_SUM || n->agg == A_MIN || n->agg == A_MAX ? acc
                       : n->agg == A_COUNT                                   ? (double)cnt
                       : n->agg == A_GROUP                                   ? 1
                       : n->agg == A_AVG                                     ? mean
                       : n->agg == A_STDVAR                                  ? acc / (double)cnt
                       : n->agg == A_STDDEV ? sqrt(acc / (double)cnt)
                                            : quantile(param[k], vals, cnt);
            if (!gs[g] && !(gs[g] = outset_get(ev, &o, glab[g]))) break;
            outset_set(ev, gs[g], k, r);
        }
    }
    return vector_of(&o);
}

/* ---- binary operators ------------------------------------------------------------------------ */

/* lhs op rhs: the value, and whether a comparison holds (*keep). */
static double binop_apply(binop op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case B_ADD: return l + r;
    case B_SUB: return l - r;
    case B_MUL: return l * r;
    case B_DIV: return l / r;
    case B_MOD: return fmod(l, r);
    case B_POW: return pow(l, r);
    case B_ATAN2: return atan2(l, r);
    case B_EQ: *keep = l == r; return l;
    case B_NE: *keep = l != r; return l;
    case B_GT: *keep = l > r; return l;
    case B_LT: *keep = l < r; return l;
    case B_GE: *keep = l >= r; return l;
    case B_LE: *keep = l <= r; return l;
    default: return NAN;
    }
}

/* The matching signature of l for n's on()/ignoring(). */
static const char *match_sig(evaluator *ev, const node *n, const lset *l)
{
    lset s = n->on ? lset_filter(&ev->a, l, false, n->labels, n->nlabels, true)
                   : lset_filter(&ev->a, l, true, n->labels, n->nlabels, false);
    return lset_sig(&ev->a, &s);
}

static val eval_setop(evaluator *ev, const node *n, val l, val r)
{
    val out = {.type = T_VECTOR};
    smap m;
    size_t *lg = ar_alloc(&ev->a, (l.n + 1) * sizeof *lg),
           *rg = ar_alloc(&ev->a, (r.n + 1) * sizeof *rg);
    if (!lg || !rg || !smap_init(&ev->a, &m, l.n + r.n)) return oom(ev), out;
    size_t ng = 0;
    bool added;
    for (size_t i = 0; i < l.n; i++) {
        lg[i] = smap_put(&m, match_sig(ev, n, &l.s[i].l), ng, &added);
        ng += added;
    }
    for (size_t i = 0; i < r.n; i++) {
        rg[i] = smap_put(&m, match_sig(ev, n, &r.s[i].l), ng, &added);
        ng += added;
    }
    unsigned char *mark = ar_alloc(&ev->a, ng + 1);
    outset o;
    if (!mark || !outset_init(ev, &o, l.n + r.n)) return oom(ev), out;
    ser **ls = ar_zalloc(&ev->a, (l.n + 1) * sizeof *ls),
        **rs = ar_zalloc(&ev->a, (r.n + 1) * sizeof *rs);
    if (!ls || !rs) return oom(ev), out;
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        memset(mark, 0, ng + 1);
        const val *marker = n->op == B_OR ? &l : &r;
        const size_t *mg = n->op == B_OR ? lg : rg;
        for (size_t i = 0; i < marker->n; i++)
            if (marker->s[i].ok[k]) mark[mg[i]] = 1;
        for (size_t i = 0; i < l.n && !ev->rc; i++) {
            if (!l.s[i].ok[k]) continue;
            if (n->op == B_AND && !mark[lg[i]]) continue;
            if (n->op == B_UNLESS && mark[lg[i]]) continue;
            if (!ls[i] && !(ls[i] = outset_get(ev, &o, l.s[i].l))) break;
            outset_set(ev, ls[i], k, l.s[i].v[k]);
        }
        for (size_t i = 0; n->op == B_OR && i < r.n && !ev->rc; i++) {
            if (!r.s[i].ok[k] || mark[rg[i]]) continue;
            if (!rs[i] && !(rs[i] = outset_get(ev, &o, r.s[i].l))) break;
            outset_set(ev, rs[i], k, r.s[i].v[k]);
        }
    }
    return vector_of(&o);
}

static val eval_binary(evaluator *ev, const node *n)
{
    val out = {.type = n->type};
    val l = eval(ev, n->args[0]);
    if (ev->rc) return out;
    val r = eval(ev, n->args[1]);
    if (ev->rc) return out;
    bool keep;
    if (l.type == T_SCALAR && r.type == T_SCALAR) {
        out.sc = ar_alloc(&ev->a, ev->nsteps * sizeof(double));
        if (oom(ev)) return out;
        for (size_t k = 0; k < ev->nsteps; k++) {
            double v = binop_apply(n->op, l.sc[k], r.sc[k], &keep);
            out.sc[k] = is_comparison(n->op) ? (keep ? 1 : 0) : v;
        }
        return out;
    }
    if (is_set(n->op)) return eval_setop(ev, n, l, r);
    bool drop = (!is_comparison(n->op) && n->op != B_ATAN2) || n->ret_bool;
    if (l.type == T_SCALAR || r.type == T_SCALAR) {
        bool swap = l.type == T_SCALAR;
        const val *vec = swap ? &r : &l;
        const double *sc = swap ? l.sc : r.sc;
        outset o;
        if (!outset_init(ev, &o, vec->n)) return oom(ev), out;
        for (size_t i = 0; i < vec->n && !ev->rc; i++) {
            ser *s = NULL;
            for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
                if (!vec->s[i].ok[k]) continue;
                double lv = swap ? sc[k] : vec->s[i].v[k], rv = swap ? vec->s[i].v[k] : sc[k];
                double v = binop_apply(n->op, lv, rv, &keep);
                if (is_comparison(n->op) && swap) v = rv;
                if (n->ret_bool) v = keep ? 1 : 0, keep = true;
                if (!keep) continue;
                if (!s) {
                    lset lab = drop ? lset_filter(&ev->a, &vec->s[i].l, true, NULL, 0, false)
                                    : vec->s[i].l;
                    if (!(s = outset_get(ev, &o, lab))) break;
                }
                outset_set(ev, s, k, v);
            }
        }
        return vector_of(&o);
    }
    if (n->card != CARD_ONE_TO_ONE) return eval_group(ev, n, l, r);
    /* vector op vector, one-to-one */
    smap m;
    size_t *lg = ar_alloc(&ev->a, (l.n + 1) * sizeof *lg),
           *rg = ar_alloc(&ev->a, (r.n + 1) * sizeof *rg);
    const char **rsig = ar_alloc(&ev->a, (r.n + 1) * sizeof *rsig);
    if (!lg || !rg || !rsig || !smap_init(&ev->a, &m, l.n + r.n)) return oom(ev), out;
    size_t ng = 0;
    bool added;
    for (size_t i = 0; i < r.n; i++) {
        rsig[i] = match_sig(ev, n, &r.s[i].l);
        rg[i] = smap_put(&m, rsig[i], ng, &added);
        ng += added;
    }
    size_t nrg = ng;
    for (size_t i = 0; i < l.n; i++) {
        lg[i] = smap_put(&m, match_sig(ev, n, &l.s[i].l), ng, &added);
        ng += added;
    }
    size_t *at = ar_alloc(&ev->a, (nrg + 1) * sizeof *at);
    unsigned char *used = ar_alloc(&ev->a, nrg + 1);
    ser **ls = ar_zalloc(&ev->a, (l.n + 1) * sizeof *ls);
    outset o;
    if (!at || !used || !ls || !outset_init(ev, &o, l.n)) return oom(ev), out;
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        for (size_t g = 0; g < nrg; g++) at[g] = SIZE_MAX;
        memset(used, 0, nrg + 1);
        for (size_t i = 0; i < r.n; i++) {
            if (!r.s[i].ok[k]) continue;
            if (at[rg[i]] != SIZE_MAX) {
                efail(ev, MT_EINVAL,
                      "found duplicate series for the match group on the right hand-side of the "
                      "operation: many-to-many matching not allowed: matching labels must be "
                      "unique on one side");
                break;
            }
            at[rg[i]] = i;
        }
        for (size_t i = 0; i < l.n && !ev->rc; i++) {
            if (!l.s[i].ok[k] || lg[i] >= nrg || at[lg[i]] == SIZE_MAX) continue;
            if (used[lg[i]]) {
                efail(ev, MT_EINVAL,
                      "multiple matches for labels: many-to-one matching must be explicit "
                      "(group_left/group_right), which Metron does not support yet");
                break;
            }
            used[lg[i]] = 1;
            double v = binop_apply(n->op, l.s[i].v[k], r.s[at[lg[i]]].v[k], &keep);
            if (n->ret_bool) v = keep ? 1 : 0, keep = true;
            if (!keep) continue;
            if (!ls[i]) {
                lset lab = n->on
                               ? lset_filter(&ev->a, &l.s[i].l, false, n->labels, n->nlabels, true)
                               : lset_filter(&ev->a, &l.s[i].l, drop, n->labels, n->nlabels, false);
                if (!(ls[i] = outset_get(ev, &o, lab))) break;
            }
            outset_set(ev, ls[i], k, v);
        }
    }
    return vector_of(&o);
}

/* ---- @, step invariance, and the functions, aggregations and matching of eval_call_more ------ */

/* The functions whose value changes with the step even when their arguments do not. */
static bool at_unsafe(fkind f)
{
    return f == F_PREDICT_LINEAR || f == F_TIME || f == F_TIMESTAMP ||
           (f >= F_DAYS_IN_MONTH && f <= F_YEAR);
}

/*
 * Resolve the @ modifiers under n and mark its step-invariant parts, as
 * Prometheus' PreprocessExpr and setOffsetForAtModifier do: a selector with
 * @ t gets the offset that makes "first step - offset" equal t - offset as
 * written; a step-invariant subtree (selectors with @, literals, and
 * calls, aggregations, operators over nothing else) is evaluated once at
 * the first step and copied to every step (n->wrap). What Prometheus does
 * not evaluate once (predict_linear's and timestamp's argument, an
 * aggregation's parameter) reads each step at step - that offset, as there.
 * Returns whether n is step invariant.
 */
static bool prep_invariant(node *n, int64_t start, int64_t end)
{
    switch (n->kind) {
    case N_NUM:
    case N_STR: return true;
    case N_SEL:
        if (n->at_kind == AT_NONE) return false;
        if (n->at_kind != AT_TIME) n->at = n->at_kind == AT_START ? start : end;
        n->offset += start - n->at;
        return true;
    case N_NEG: return prep_invariant(n->args[0], start, end);
    case N_SUBQ: /* no @ inside a subquery: the inner part is invariant only if constant */
        n->args[0]->wrap = prep_invariant(n->args[0], start, end);
        if (n->at_kind == AT_NONE) return false;
        if (n->at_kind != AT_TIME) n->at = n->at_kind == AT_START ? start : end;
        n->offset += start - n->at;
        return true;
    case N_AGG:
        if (n->nargs > 1) (void)prep_invariant(n->args[1], start, end); /* never wrapped there */
        return prep_invariant(n->args[0], start, end);
    case N_BIN: {
        bool l = prep_invariant(n->args[0], start, end), r = prep_invariant(n->args[1], start, end);
        if (l && r) return true;
        n->args[0]->wrap = l;
        n->args[1]->wrap = r;
        return false;
    }
    case N_CALL: {
        bool inv = !at_unsafe(funcs[n->fn].kind), sub[MAX_ARGS];
        for (size_t i = 0; i < n->nargs; i++) {
            sub[i] = prep_invariant(n->args[i], start, end);
            inv = inv && sub[i];
        }
        if (inv) return true;
        for (size_t i = 0; i < n->nargs; i++) n->args[i]->wrap = sub[i];
        return false;
    }
    }
    return false;
}

/* A step-invariant n of a query of several steps: evaluated at the first, copied to all. */
static val eval_invariant(evaluator *ev, const node *n)
{
    size_t nsteps = ev->nsteps;
    ev->nsteps = 1;
    val v = eval(ev, n);
    ev->nsteps = nsteps;
    if (ev->rc || (v.type != T_SCALAR && v.type != T_VECTOR)) return v;
    val out = v;
    if (v.type == T_SCALAR) {
        out.sc = ar_alloc(&ev->a, nsteps * sizeof(double));
        if (oom(ev)) return out;
        for (size_t k = 0; k < nsteps; k++) out.sc[k] = v.sc[0];
        return out;
    }
    out.s = new_series(ev, v.n);
    out.ordered = false;
    if (oom(ev)) return out;
    for (size_t i = 0; i < v.n; i++) {
        out.s[i].l = v.s[i].l;
        out.s[i].sig = v.s[i].sig;
        for (size_t k = 0; k < nsteps && v.s[i].ok[0]; k++)
            out.s[i].ok[k] = 1, out.s[i].v[k] = v.s[i].v[0];
    }
    return out;
}

/*
 * A selector with @ that is not step invariant where it stands (the
 * argument of predict_linear, an aggregation's parameter): Prometheus
 * selects only the samples of its @ window, [first step - offset - range
 * (or the lookback), first step - offset] (the offset being prep_invariant's),
 * and each step's window slides over those. An instant selector:
 */
static val eval_selector_at(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    int64_t lb = MT_PROMQL_LOOKBACK_MS, last = ev->ts[0] - n->offset;
    size_t nr;
    rser *r = fetch(ev, n, last - lb, last, &nr);
    if (!r) return out;
    out.s = new_series(ev, nr);
    if (oom(ev)) return out;
    out.n = nr;
    for (size_t i = 0; i < nr; i++) {
        out.s[i].l = r[i].l;
        for (size_t k = 0; k < ev->nsteps && r[i].n; k++) {
            int64_t ref = ev->ts[k] - n->offset, t = r[i].t[r[i].n - 1];
            if (t >= ref - lb) out.s[i].ok[k] = 1, out.s[i].v[k] = r[i].v[r[i].n - 1];
        }
    }
    return out;
}

/*
 * A subquery's samples for outer steps first..last (ms): the inner
 * expression evaluated at the multiples of its step in
 * [first - offset - range, last - offset] (evalSubquery's alignment), as
 * raw series (*nr of them; each step's window is then cut from them).
 */
static rser *subq_rser(evaluator *ev, const node *sq, int64_t first, int64_t last, size_t *nr)
{
    *nr = 0;
    if (sq->at_kind != AT_NONE && first != last) {
        /* Prometheus evaluates it once over the query but selects the inner samples of the @
           window only; Metron evaluates a subquery with @ where it is step invariant */
        efail(ev, MT_EPARSE,
              "the @ modifier on a subquery under a function that depends on the step (such as "
              "predict_linear) is not supported by Metron yet");
        return NULL;
    }
    int64_t st = sq->step ? sq->step : 60000, lo = first - sq->offset - sq->range;
    int64_t hi = last - sq->offset, t0 = st * (lo / st); /* Go's division truncates too */
    if (t0 < lo) t0 += st;
    rser *out = ar_zalloc(&ev->a, sizeof *out);
    if (!out) return oom(ev), NULL;
    if (t0 > hi) return out;
    if ((hi - t0) / st >= 1000000) {
        efail(ev, MT_ELIMIT, "a subquery of more than 1,000,000 steps (the limit)");
        return NULL;
    }
    size_t n = (size_t)((hi - t0) / st) + 1;
    int64_t *ts = ar_alloc(&ev->a, n * sizeof *ts);
    if (!ts) return oom(ev), NULL;
    for (size_t k = 0; k < n; k++) ts[k] = t0 + (int64_t)k * st;
    int64_t *outer_ts = ev->ts;
    size_t outer_n = ev->nsteps;
    ev->ts = ts;
    ev->nsteps = n;
    val v = eval(ev, sq->args[0]);
    ev->ts = outer_ts;
    ev->nsteps = outer_n;
    if (ev->rc) return NULL;
    out = ar_zalloc(&ev->a, (v.n + 1) * sizeof *out);
    if (!out) return oom(ev), NULL;
    for (size_t i = 0; i < v.n; i++) {
        size_t c = 0;
        for (size_t k = 0; k < n; k++) c += v.s[i].ok[k];
        if (!c) continue;
        rser *r = &out[(*nr)++];
        r->l = v.s[i].l;
        r->t = ar_alloc(&ev->a, c * sizeof *r->t);
        r->v = ar_alloc(&ev->a, c * sizeof *r->v);
        if (oom(ev)) return NULL;
        for (size_t k = 0; k < n; k++)
            if (v.s[i].ok[k]) r->t[r->n] = ts[k], r->v[r->n++] = v.s[i].v[k];
    }
    return out;
}

/* ... and a range function's range selector (as eval_range_call over the @ window's samples). */
static val eval_range_call_at(evaluator *ev, const node *n, fkind f)
{
    val out = {.type = T_VECTOR};
    const node *ms = n->args[f == F_QUANTILE_OT ? 1 : 0];
    double *param = scalar_arg(ev, n, f == F_QUANTILE_OT ? 0 : 1);
    if (ev->rc) return out;
    size_t nr;
    int64_t last = ev->ts[0] - ms->offset;
    rser *r = ms->kind == N_SUBQ ? subq_rser(ev, ms, ev->ts[0], ev->ts[ev->nsteps - 1], &nr)
                                 : fetch(ev, ms, last - ms->range, last, &nr);
    if (!r) return out;
    outset o;
    if (!outset_init(ev, &o, nr)) return oom(ev), out;
    size_t most = 1;
    for (size_t i = 0; i < nr; i++) most = r[i].n > most ? r[i].n : most;
    double *scratch = malloc(most * sizeof *scratch);
    if (!scratch) return efail(ev, -ENOMEM, "out of memory"), out;
    for (size_t i = 0; i < nr && !ev->rc; i++) {
        ser *s = NULL;
        size_t lo = 0, hi = 0;
        for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
            int64_t end = ev->ts[k] - ms->offset, start = end - ms->range;
            while (lo < r[i].n && r[i].t[lo] < start) lo++;
            if (hi < lo) hi = lo;
            while (hi < r[i].n && r[i].t[hi] <= end) hi++;
            double v;
            if (!range_fn(f, r[i].t + lo, r[i].v + lo, hi - lo, start, end, ms->range,
                          param ? param[k] : 0, ev->ts[k], &v, scratch, NULL))
                continue;
            if (!s) {
                lset l =
                    f == F_LAST_OT ? r[i].l : lset_filter(&ev->a, &r[i].l, true, NULL, 0, false);
                if (!(s = outset_get(ev, &o, l))) break;
            }
            outset_set(ev, s, k, v);
        }
    }
    free(scratch);
    return vector_of(&o);
}

/* The value of label name in l, or NULL. */
static const char *lset_get(const lset *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->kv[2 * i], name)) return l->kv[2 * i + 1];
    return NULL;
}

/* A copy of l with name set to v; v NULL or empty: without name (Prometheus' labels.Builder). */
static lset lset_set(arena *a, const lset *l, const char *name, const char *v)
{
    lset o = {0, ar_alloc(a, (2 * l->n + 2) * sizeof(char *))};
    if (!o.kv) return o;
    bool put = !v || !*v;
    for (size_t i = 0; i <= l->n; i++) {
        int c = i < l->n ? strcmp(l->kv[2 * i], name) : 1;
        if (c > 0 && !put) {
            o.kv[2 * o.n] = name;
            o.kv[2 * o.n + 1] = v;
            o.n++;
            put = true;
        }
        if (i == l->n || c == 0) continue;
        o.kv[2 * o.n] = l->kv[2 * i];
        o.kv[2 * o.n + 1] = l->kv[2 * i + 1];
        o.n++;
    }
    return o;
}

/* l as Prometheus prints labels in errors: {a="x", b="y"} (in the arena). */
static const char *lset_str(arena *a, const lset *l)
{
    mt_sbuf b = {0};
    mt_sb_puts(&b, "{");
    for (size_t i = 0; i < l->n; i++) {
        if (i) mt_sb_puts(&b, ", ");
        mt_sb_puts(&b, l->kv[2 * i]);
        mt_sb_puts(&b, "=");
        sb_json(&b, l->kv[2 * i + 1]);
    }
    mt_sb_puts(&b, "}");
    const char *s = b.p && !b.oom ? ar_strndup(a, b.p, b.len) : "{}";
    free(b.p);
    return s ? s : "{}";
}

/* A valid label name: [a-zA-Z_][a-zA-Z0-9_]* */
static bool label_name_ok(const char *s)
{
    if (!*s || isdigit((unsigned char)*s)) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

/* absent()'s labels: the equality matchers of a selector argument, but for __name__ and names
   matched more than once (createLabelsForAbsentFunction). */
static lset absent_labels(evaluator *ev, const node *a)
{
    lset l = {0, NULL};
    if (a->kind != N_SEL) return l;
    l.kv = ar_alloc(&ev->a, (2 * a->sel->nm + 1) * sizeof(char *));
    bool *gone = ar_zalloc(&ev->a, a->sel->nm + 1);
    if (!l.kv || !gone) return (lset){0, NULL};
    for (size_t i = 0; i < a->sel->nm; i++) {
        const mt_matcher *m = &a->sel->m[i];
        if (!strcmp(m->key, NAME_LABEL)) continue;
        size_t j = 0;
        while (j < l.n && strcmp(l.kv[2 * j], m->key)) j++;
        if (j == l.n && m->op == MT_MATCH_EQ) {
            l.kv[2 * l.n] = m->key;
            l.kv[2 * l.n + 1] = m->value;
            gone[l.n++] = false;
        } else if (j < l.n) {
            gone[j] = true;
        }
    }
    lset o = {0, l.kv};
    for (size_t i = 0; i < l.n; i++)
        if (!gone[i] && *l.kv[2 * i + 1]) {
            o.kv[2 * o.n] = l.kv[2 * i];
            o.kv[2 * o.n + 1] = l.kv[2 * i + 1];
            o.n++;
        }
    qsort(o.kv, o.n, 2 * sizeof(char *), by_name);
    return o;
}

/* absent(v) and absent_over_time(v[d]): 1 at the steps where the argument has nothing. */
static val eval_absent(evaluator *ev, const node *n, bool over_time)
{
    val out = {.type = T_VECTOR};
    unsigned char *seen = ar_zalloc(&ev->a, ev->nsteps);
    if (!seen) return oom(ev), out;
    const node *arg = n->args[0];
    if (!over_time) {
        val a = eval(ev, arg);
        if (ev->rc) return out;
        for (size_t i = 0; i < a.n; i++)
            for (size_t k = 0; k < ev->nsteps; k++) seen[k] |= a.s[i].ok[k];
    } else {
        size_t nr;
        rser *r = arg->kind == N_SUBQ ? subq_rser(ev, arg, ev->ts[0], ev->ts[ev->nsteps - 1], &nr)
                                      : fetch(ev, arg, ev->ts[0] - arg->offset - arg->range,
                                              ev->ts[ev->nsteps - 1] - arg->offset, &nr);
        if (!r) return out;
        for (size_t i = 0; i < nr; i++) {
            size_t lo = 0;
            for (size_t k = 0; k < ev->nsteps; k++) {
                int64_t end = ev->ts[k] - arg->offset;
                while (lo < r[i].n && r[i].t[lo] < end - arg->range) lo++;
                if (lo < r[i].n && r[i].t[lo] <= end) seen[k] = 1;
            }
        }
    }
    out.s = new_series(ev, 1);
    if (oom(ev)) return out;
    out.n = 1;
    out.s[0].l = absent_labels(ev, arg);
    for (size_t k = 0; k < ev->nsteps; k++)
        if (!seen[k]) out.s[0].ok[k] = 1, out.s[0].v[k] = 1;
    return out;
}

/* Go's Regexp.Expand of repl for a match pm of src: $1, ${1}, $$; a name POSIX cannot have
   (named groups) expands to nothing. pm[0] is the whole match, pm[g + 1] group g (the
   anchoring wraps the expression in a group of its own). */
static void expand(mt_sbuf *b, const char *repl, const char *src, const regmatch_t *pm,
                   size_t ngroups)
{
    for (const char *p = repl; *p;) {
        if (*p != '$') {
            mt_sb_put(b, p++, 1);
            continue;
        }
        p++;
        if (*p == '$') {
            mt_sb_put(b, p++, 1);
            continue;
        }
        bool brace = *p == '{';
        const char *q = p + brace, *name = q;
        while (isalnum((unsigned char)*q) || *q == '_') q++;
        if (q == name || (brace && *q != '}')) {
            mt_sb_put(b, "$", 1); /* malformed: the $ as text */
            continue;
        }
        size_t nl = (size_t)(q - name);
        p = q + brace;
        long g = 0;
        for (size_t i = 0; i < nl && g >= 0; i++)
            g = isdigit((unsigned char)name[i]) && g < 100000000 ? g * 10 + (name[i] - '0') : -1;
        if (g < 0 || (size_t)g > ngroups) continue;
        const regmatch_t *m = &pm[g ? g + 1 : 0];
        if (m->rm_so >= 0) mt_sb_put(b, src + m->rm_so, (size_t)(m->rm_eo - m->rm_so));
    }
}

/* label_replace(v, dst, replacement, src, regex) and label_join(v, dst, sep, src...): new
   labels per series, computed once (labels do not change between steps); the name is kept. */
static val eval_label_fn(evaluator *ev, const node *n, bool join)
{
    val out = {.type = T_VECTOR};
    const char *fname = join ? "label_join" : "label_replace", *dst = n->args[1]->str;
    regex_t re;
    size_t ngroups = 0;
    if (!join) {
        const char *src_re = n->args[4]->str, *costly = mt_regex_too_costly(src_re);
        char *anchored = ar_alloc(&ev->a, strlen(src_re) + 8);
        if (!anchored) return oom(ev), out;
        sprintf(anchored, "^(%s)$", src_re);
        if (costly || regcomp(&re, anchored, REG_EXTENDED)) {
            efail(ev, MT_EINVAL, "invalid regular expression in label_replace(): %s%s%s%s", src_re,
                  costly ? " (" : "", costly ? costly : "", costly ? ")" : "");
            return out;
        }
        ngroups = re.re_nsub ? re.re_nsub - 1 : 0;
    } else {
        for (size_t i = 3; i < n->nargs; i++)
            if (!label_name_ok(n->args[i]->str)) {
                efail(ev, MT_EINVAL, "invalid source label name in label_join(): %s",
                      n->args[i]->str);
                return out;
            }
    }
    if (!label_name_ok(dst)) {
        efail(ev, MT_EINVAL, "invalid destination label name in %s(): %s", fname, dst);
        if (!join) regfree(&re);
        return out;
    }
    val a = eval(ev, n->args[0]);
    regmatch_t *pm = join ? NULL : malloc((ngroups + 2) * sizeof *pm);
    outset o;
    if (ev->rc || (!join && !pm) || !outset_init(ev, &o, a.n)) {
        if (!ev->rc) efail(ev, -ENOMEM, "out of memory");
        free(pm);
        if (!join) regfree(&re);
        return out;
    }
    for (size_t i = 0; i < a.n && !ev->rc; i++) {
        mt_sbuf b = {0};
        lset l = a.s[i].l;
        if (join) {
            for (size_t j = 3; j < n->nargs; j++) {
                if (j > 3) mt_sb_puts(&b, n->args[2]->str);
                const char *v = lset_get(&l, n->args[j]->str);
                mt_sb_puts(&b, v ? v : "");
            }
            l = lset_set(&ev->a, &l, dst, b.p ? ar_strndup(&ev->a, b.p, b.len) : "");
        } else {
            const char *src = lset_get(&l, n->args[3]->str);
            if (!src) src = "";
            if (!regexec(&re, src, ngroups + 2, pm, 0)) {
                expand(&b, n->args[2]->str, src, pm, ngroups);
                l = lset_set(&ev->a, &l, dst, b.p ? ar_strndup(&ev->a, b.p, b.len) : "");
            }
        }
        if (b.oom) efail(ev, -ENOMEM, "out of memory");
        free(b.p);
        if (oom(ev)) break;
        ser *s = NULL;
        for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
            if (!a.s[i].ok[k]) continue;
            if (!s && !(s = outset_get(ev, &o, l))) break;
            outset_set(ev, s, k, a.s[i].v[k]);
        }
    }
    free(pm);
    if (!join) regfree(&re);
    return vector_of(&o);
}

static int by_value_asc(const void *a, const void *b)
{
    const ser *x = a, *y = b; /* NaN last; ties by labels */
    double u = x->ok[0] ? x->v[0] : NAN, w = y->ok[0] ? y->v[0] : NAN;
    if (isnan(u) != isnan(w)) return isnan(u) ? 1 : -1;
    if (u != w && !isnan(u)) return u < w ? -1 : 1;
    return cmp_lset(&x->l, &y->l);
}

static int by_value_desc(const void *a, const void *b)
{
    const ser *x = a, *y = b;
    double u = x->ok[0] ? x->v[0] : NAN, w = y->ok[0] ? y->v[0] : NAN;
    if (isnan(u) != isnan(w)) return isnan(u) ? 1 : -1;
    if (u != w && !isnan(u)) return u > w ? -1 : 1;
    return cmp_lset(&x->l, &y->l);
}

/* timestamp(v): of a selector, each sample's own time (with @: the sample at the @ time, the
   offset ignored, as Prometheus 2.42 does); of any other expression, the step's. */
static val eval_timestamp(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    const node *a = n->args[0];
    outset o;
    if (a->kind != N_SEL) {
        val v = eval(ev, a);
        if (ev->rc || !outset_init(ev, &o, v.n)) return oom(ev), out;
        for (size_t i = 0; i < v.n && !ev->rc; i++) {
            ser *s = NULL;
            for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
                if (!v.s[i].ok[k]) continue;
                if (!s &&
                    !(s = outset_get(ev, &o, lset_filter(&ev->a, &v.s[i].l, true, NULL, 0, false))))
                    break;
                outset_set(ev, s, k, (double)ev->ts[k] / 1000);
            }
        }
        return vector_of(&o);
    }
    int64_t lb = MT_PROMQL_LOOKBACK_MS, lo = INT64_MAX, hi = INT64_MIN;
    int64_t *ref = ar_alloc(&ev->a, ev->nsteps * sizeof *ref);
    if (!ref) return oom(ev), out;
    for (size_t k = 0; k < ev->nsteps; k++) {
        ref[k] = a->at_kind != AT_NONE ? a->at : ev->ts[k] - a->offset;
        lo = ref[k] < lo ? ref[k] : lo;
        hi = ref[k] > hi ? ref[k] : hi;
    }
    if (a->at_kind != AT_NONE) /* only the samples of the @ window, offset as written */
        lo = hi = ev->ts[0] - a->offset;
    size_t nr;
    rser *r = fetch(ev, a, lo - lb, hi, &nr);
    if (!r || !outset_init(ev, &o, nr)) return oom(ev), out;
    for (size_t i = 0; i < nr && !ev->rc; i++) {
        ser *s = NULL;
        for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
            size_t l = 0, h = r[i].n; /* the first sample after ref[k] */
            while (l < h) {
                size_t m = l + (h - l) / 2;
                if (r[i].t[m] <= ref[k])
                    l = m + 1;
                else
                    h = m;
            }
            if (!l || r[i].t[l - 1] < ref[k] - lb) continue;
            if (!s && !(s = outset_get(ev, &o, lset_filter(&ev->a, &r[i].l, true, NULL, 0, false))))
                break;
            outset_set(ev, s, k, (double)r[i].t[l - 1] / 1000);
        }
    }
    return vector_of(&o);
}

/* The date functions of a time in seconds, UTC (civil-from-days, proleptic Gregorian). */
static double date_fn(fkind f, int64_t secs)
{
    int64_t days = floor_div(secs, 86400), rem = secs - days * 86400;
    int64_t z = days + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    switch (f) {
    case F_DAYS_IN_MONTH: return mdays[m - 1] + (m == 2 && leap);
    case F_DAY_OF_MONTH: return (double)d;
    case F_DAY_OF_WEEK: return (double)(days - 7 * floor_div(days + 4, 7) + 4); /* 0: Sunday */
    case F_DAY_OF_YEAR: return before[m - 1] + (m > 2 && leap) + (double)d;
    case F_HOUR: return (double)(rem / 3600);
    case F_MINUTE: return (double)(rem % 3600 / 60);
    case F_MONTH: return (double)m;
    case F_YEAR: return (double)y;
    default: return NAN;
    }
}

/* date_fn of a value taken as Unix seconds. */
static bool date_value(void *ud, size_t k, double x, double *y)
{
    (void)k;
    /* Go's int64(x) of NaN, ±Inf or beyond ±2^63 is not defined: NaN here */
    *y = isfinite(x) && fabs(x) < 1e15 ? date_fn(*(const fkind *)ud, (int64_t)x) : NAN;
    return true;
}

/* hour(), day_of_week(v), ...: of the step's time without an argument, else of each value. */
static val eval_date(evaluator *ev, const node *n, fkind f)
{
    val out = {.type = T_VECTOR};
    if (!n->nargs) {
        out.s = new_series(ev, 1);
        if (oom(ev)) return out;
        out.n = 1;
        for (size_t k = 0; k < ev->nsteps; k++)
            out.s[0].ok[k] = 1, out.s[0].v[k] = date_fn(f, ev->ts[k] / 1000);
        return out;
    }
    val a = eval(ev, n->args[0]);
    if (ev->rc) return out;
    return map_values(ev, &a, date_value, &f);
}

typedef struct bucket {
    double le, count;
} bucket;

static int by_le(const void *a, const void *b)
{
    double x = ((const bucket *)a)->le, y = ((const bucket *)b)->le;
    return (x > y) - (x < y);
}

/* Prometheus' bucketQuantile over n classic buckets (sorted, merged and made monotonic here). */
static double bucket_quantile(double q, bucket *b, size_t n)
{
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(b, n, sizeof *b, by_le);
    if (!(isinf(b[n - 1].le) && b[n - 1].le > 0)) return NAN;
    size_t m = 0; /* equal bounds are one bucket */
    for (size_t i = 1; i < n; i++) {
        if (b[i].le == b[m].le)
            b[m].count += b[i].count;
        else
            b[++m] = b[i];
    }
    n = m + 1;
    for (size_t i = 1; i < n; i++)
        if (b[i].count < b[i - 1].count) b[i].count = b[i - 1].count;
    if (n < 2) return NAN;
    double obs = b[n - 1].count, rank = q * obs;
    if (obs == 0) return NAN;
    size_t k = 0; /* the first bucket with count >= rank, among the first n - 1 */
    while (k < n - 1 && !(b[k].count >= rank)) k++;
    if (k == n - 1) return b[n - 2].le;
    if (k == 0 && b[0].le <= 0) return b[0].le;
    double start = 0, end = b[k].le, count = b[k].count;
    if (k > 0) {
        start = b[k - 1].le;
        count -= b[k - 1].count;
        rank -= b[k - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* histogram_quantile(q, v) over classic buckets: v's series grouped by their labels but `le`
   (the name included), each group's buckets at a step give one value, without name and le. */
static val eval_histogram_quantile(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    double *q = scalar_arg(ev, n, 0);
    val a = eval(ev, n->args[1]);
    if (ev->rc) return out;
    size_t *gid = ar_alloc(&ev->a, (a.n + 1) * sizeof *gid);
    double *le = ar_alloc(&ev->a, (a.n + 1) * sizeof *le);
    lset *glab = ar_alloc(&ev->a, (a.n + 1) * sizeof *glab);
    bucket *bk = ar_alloc(&ev->a, (a.n + 1) * sizeof *bk);
    size_t *fill = ar_alloc(&ev->a, (a.n + 1) * sizeof *fill);
    ser **gs = ar_zalloc(&ev->a, (a.n + 1) * sizeof *gs);
    smap m;
    outset o;
    if (!gid || !le || !glab || !bk || !fill || !gs || !smap_init(&ev->a, &m, a.n) ||
        !outset_init(ev, &o, a.n))
        return oom(ev), out;
    const char *le_name[] = {"le"};
    size_t ng = 0;
    for (size_t i = 0; i < a.n; i++) {
        const char *s = lset_get(&a.s[i].l, "le");
        char *e;
        gid[i] = SIZE_MAX;
        if (!s || !*s || isspace((unsigned char)*s)) continue; /* not a bucket: ignored */
        le[i] = strtod(s, &e);
        if (*e) continue;
        lset g = lset_filter(&ev->a, &a.s[i].l, false, le_name, 1, false);
        bool added;
        gid[i] = smap_put(&m, lset_sig(&ev->a, &g), ng, &added);
        if (added) glab[ng++] = lset_filter(&ev->a, &g, true, NULL, 0, false);
        if (oom(ev)) return out;
    }
    /* the buckets of group g at a step: bk[fill[g] ...], laid out by a first count */
    size_t *first = ar_zalloc(&ev->a, (ng + 2) * sizeof *first);
    if (!first) return oom(ev), out;
    for (size_t i = 0; i < a.n; i++)
        if (gid[i] != SIZE_MAX) first[gid[i] + 1]++;
    for (size_t g = 0; g < ng; g++) first[g + 1] += first[g];
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        for (size_t g = 0; g < ng; g++) fill[g] = first[g];
        for (size_t i = 0; i < a.n; i++)
            if (gid[i] != SIZE_MAX && a.s[i].ok[k])
                bk[fill[gid[i]]++] = (bucket){le[i], a.s[i].v[k]};
        for (size_t g = 0; g < ng && !ev->rc; g++) {
            size_t nb = fill[g] - first[g];
            if (!nb) continue;
            double v = bucket_quantile(q[k], bk + first[g], nb);
            if (!gs[g] && !(gs[g] = outset_get(ev, &o, glab[g]))) break;
            outset_set(ev, gs[g], k, v);
        }
    }
    return vector_of(&o);
}

/* holt_winters(v[d], sf, tf): double exponential smoothing of each window (funcHoltWinters);
   a factor outside (0, 1) is an error at the first window with samples, as there. */
static val eval_holt_winters(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    const node *ms = n->args[0];
    double *sf = scalar_arg(ev, n, 1), *tf = scalar_arg(ev, n, 2);
    if (ev->rc) return out;
    size_t nr;
    int64_t last = ev->ts[0] - ms->offset;
    rser *r = ms->kind == N_SUBQ ? subq_rser(ev, ms, ev->ts[0], ev->ts[ev->nsteps - 1], &nr)
              : ms->at_kind != AT_NONE
                  ? fetch(ev, ms, last - ms->range, last, &nr)
                  : fetch(ev, ms, last - ms->range, ev->ts[ev->nsteps - 1] - ms->offset, &nr);
    outset o;
    if (!r || !outset_init(ev, &o, nr)) return oom(ev), out;
    for (size_t i = 0; i < nr && !ev->rc; i++) {
        ser *s = NULL;
        size_t lo = 0, hi = 0;
        for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
            int64_t end = ev->ts[k] - ms->offset, start = end - ms->range;
            while (lo < r[i].n && r[i].t[lo] < start) lo++;
            if (hi < lo) hi = lo;
            while (hi < r[i].n && r[i].t[hi] <= end) hi++;
            if (hi == lo) continue;
            if (!(sf[k] > 0 && sf[k] < 1)) {
                efail(ev, MT_EINVAL, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f",
                      sf[k]);
                break;
            }
            if (!(tf[k] > 0 && tf[k] < 1)) {
                efail(ev, MT_EINVAL, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf[k]);
                break;
            }
            if (hi - lo < 2) continue;
            const double *v = r[i].v + lo;
            double s0 = 0, s1 = v[0], b = v[1] - v[0];
            for (size_t j = 1; j < hi - lo; j++) {
                if (j > 1) b = tf[k] * (s1 - s0) + (1 - tf[k]) * b;
                double x = sf[k] * v[j], y = (1 - sf[k]) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            if (!s && !(s = outset_get(ev, &o, lset_filter(&ev->a, &r[i].l, true, NULL, 0, false))))
                break;
            outset_set(ev, s, k, s1);
        }
    }
    return vector_of(&o);
}

/* The functions of issue 20's second round (eval_call hands them over). */
static val eval_call_more(evaluator *ev, const node *n)
{
    fkind f = funcs[n->fn].kind;
    val out = {.type = funcs[n->fn].ret};
    switch (f) {
    case F_ABSENT:
    case F_ABSENT_OT: return eval_absent(ev, n, f == F_ABSENT_OT);
    case F_LABEL_REPLACE:
    case F_LABEL_JOIN: return eval_label_fn(ev, n, f == F_LABEL_JOIN);
    case F_TIMESTAMP: return eval_timestamp(ev, n);
    case F_HISTOGRAM_QUANTILE: return eval_histogram_quantile(ev, n);
    case F_HOLT_WINTERS: return eval_holt_winters(ev, n);
    case F_PI:
        out.sc = ar_alloc(&ev->a, ev->nsteps * sizeof(double));
        if (oom(ev)) return out;
        for (size_t k = 0; k < ev->nsteps; k++) out.sc[k] = 3.14159265358979323846;
        return out;
    case F_SORT:
    case F_SORT_DESC: {
        /* the order only shows in an instant query's vector; the name is kept */
        val a = eval(ev, n->args[0]);
        if (ev->rc) return out;
        if (ev->nsteps == 1 && a.n) {
            qsort(a.s, a.n, sizeof *a.s, f == F_SORT ? by_value_asc : by_value_desc);
            a.ordered = true;
        }
        return a;
    }
    default: return eval_date(ev, n, f);
    }
}

/* One value in, one out (eval_call's loop). */
static double simple_fn(fkind f, double x)
{
    switch (f) {
    case F_ACOS: return acos(x);
    case F_ASIN: return asin(x);
    case F_ATAN: return atan(x);
    case F_COS: return cos(x);
    case F_SIN: return sin(x);
    case F_TAN: return tan(x);
    case F_ACOSH: return acosh(x);
    case F_ASINH: return asinh(x);
    case F_ATANH: return atanh(x);
    case F_COSH: return cosh(x);
    case F_SINH: return sinh(x);
    case F_TANH: return tanh(x);
    case F_DEG: return x * 180 / 3.14159265358979323846;
    case F_RAD: return x * 3.14159265358979323846 / 180;
    default: return NAN;
    }
}

/* v as Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back as v,
   never an exponent (count_values' label). */
static void format_go_f(double v, char *out, size_t cap)
{
    if (isnan(v) || isinf(v)) {
        snprintf(out, cap, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[40];
    for (int p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, v);
        if (strtod(e, NULL) == v) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *c = e;
    bool neg = *c == '-';
    if (neg) c++;
    for (; *c && *c != 'e'; c++)
        if (isdigit((unsigned char)*c)) digits[nd++] = *c;
    int x = *c == 'e' ? atoi(c + 1) : 0;
    mt_sbuf b = {0};
    if (neg) mt_sb_puts(&b, "-");
    if (x >= 0) {
        for (int i = 0; i <= x; i++) mt_sb_put(&b, (size_t)i < nd ? &digits[i] : "0", 1);
        if ((size_t)x + 1 < nd) mt_sb_puts(&b, "."), mt_sb_put(&b, digits + x + 1, nd - x - 1);
    } else {
        mt_sb_puts(&b, "0.");
        for (int i = 0; i < -x - 1; i++) mt_sb_puts(&b, "0");
        mt_sb_put(&b, digits, nd);
    }
    snprintf(out, cap, "%s", b.p && !b.oom ? b.p : "NaN");
    free(b.p);
}

/* count_values("label", v): per group and distinct value (as its label), how many series. */
static val eval_count_values(evaluator *ev, const node *n)
{
    val out = {.type = T_VECTOR};
    const char *label = n->args[1]->str;
    if (!label_name_ok(label)) {
        efail(ev, MT_EINVAL, "invalid label name \"%s\"", label);
        return out;
    }
    val a = eval(ev, n->args[0]);
    if (ev->rc) return out;
    const char *by[MAX_GROUPING + 1];
    size_t nby = n->nlabels;
    memcpy(by, n->labels, n->nlabels * sizeof *by);
    if (!n->ignoring) by[nby++] = label;
    size_t cap = a.n * ev->nsteps > ev->max_series ? ev->max_series + 1 : a.n * ev->nsteps;
    outset o;
    ser **last = ar_zalloc(&ev->a, (a.n + 1) * sizeof *last);
    double *lastv = ar_alloc(&ev->a, (a.n + 1) * sizeof *lastv);
    if (!last || !lastv || !outset_init(ev, &o, cap)) return oom(ev), out;
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        for (size_t i = 0; i < a.n && !ev->rc; i++) {
            if (!a.s[i].ok[k]) continue;
            double v = a.s[i].v[k];
            ser *s = last[i];
            if (!s || !(lastv[i] == v || (isnan(v) && isnan(lastv[i])))) {
                char num[64];
                format_go_f(v, num, sizeof num);
                lset l = lset_set(&ev->a, &a.s[i].l, label, ar_strndup(&ev->a, num, strlen(num)));
                lset g = !n->ignoring ? lset_filter(&ev->a, &l, false, by, nby, true)
                                      : lset_filter(&ev->a, &l, true, by, nby, false);
                if (oom(ev)) break;
                if (o.n == o.cap) {
                    efail(ev, MT_ELIMIT, "the result has more than %zu series (the limit)",
                          ev->max_series);
                    break;
                }
                if (!(s = outset_get(ev, &o, g))) break;
                last[i] = s, lastv[i] = v;
            }
            if (s->ok[k])
                s->v[k]++;
            else
                s->ok[k] = 1, s->v[k] = 1;
        }
    }
    return vector_of(&o);
}

/*
 * Vector matching with group_left / group_right (VectorBinop, many-to-one):
 * each series of the "many" side takes the one series of the other side
 * with its signature; two there at one step are an error, as is one result
 * labelset twice for a signature. The result has the many side's labels (no
 * name for arithmetic or bool) and the include labels of the one side.
 */
static val eval_group(evaluator *ev, const node *n, val l, val r)
{
    val out = {.type = T_VECTOR};
    bool left = n->card == CARD_GROUP_LEFT;
    const val *many = left ? &l : &r, *one = left ? &r : &l;
    bool drop = (!is_comparison(n->op) && n->op != B_ATAN2) || n->ret_bool;
    smap m;
    size_t *mg = ar_alloc(&ev->a, (many->n + 1) * sizeof *mg),
           *og = ar_alloc(&ev->a, (one->n + 1) * sizeof *og);
    if (!mg || !og || !smap_init(&ev->a, &m, many->n + one->n)) return oom(ev), out;
    size_t ng = 0;
    bool added;
    for (size_t i = 0; i < one->n; i++) {
        og[i] = smap_put(&m, match_sig(ev, n, &one->s[i].l), ng, &added);
        ng += added;
    }
    size_t nog = ng;
    for (size_t i = 0; i < many->n; i++) {
        mg[i] = smap_put(&m, match_sig(ev, n, &many->s[i].l), ng, &added);
        ng += added;
    }
    size_t cap = many->n * (one->n ? one->n : 1);
    if (cap > ev->max_series) cap = ev->max_series + 1;
    size_t *at = ar_alloc(&ev->a, (nog + 1) * sizeof *at);
    size_t *cache_one = ar_alloc(&ev->a, (many->n + 1) * sizeof *cache_one);
    ser **cache = ar_zalloc(&ev->a, (many->n + 1) * sizeof *cache);
    outset o;
    if (!at || !cache_one || !cache || !outset_init(ev, &o, cap)) return oom(ev), out;
    size_t *setby = ar_alloc(&ev->a, o.cap * sizeof *setby); /* the signature that set a slot */
    if (!setby) return oom(ev), out;
    for (size_t k = 0; k < ev->nsteps && !ev->rc; k++) {
        for (size_t g = 0; g < nog; g++) at[g] = SIZE_MAX;
        for (size_t i = 0; i < one->n; i++) {
            if (!one->s[i].ok[k]) continue;
            if (at[og[i]] != SIZE_MAX) {
                lset ml =
                    n->on ? lset_filter(&ev->a, &one->s[i].l, false, n->labels, n->nlabels, true)
                          : lset_filter(&ev->a, &one->s[i].l, true, n->labels, n->nlabels, false);
                efail(ev, MT_EINVAL,
                      "found duplicate series for the match group %s on the %s hand-side of the "
                      "operation: [%s, %s];many-to-many matching not allowed: matching labels "
                      "must be unique on one side",
                      lset_str(&ev->a, &ml), left ? "right" : "left",
                      lset_str(&ev->a, &one->s[i].l), lset_str(&ev->a, &one->s[at[og[i]]].l));
                break;
            }
            at[og[i]] = i;
        }
        for (size_t i = 0; i < many->n && !ev->rc; i++) {
            if (!many->s[i].ok[k] || mg[i] >= nog || at[mg[i]] == SIZE_MAX) continue;
            size_t j = at[mg[i]];
            double mv = many->s[i].v[k], ov = one->s[j].v[k];
            bool keep;
            double v = binop_apply(n->op, left ? mv : ov, left ? ov : mv, &keep);
            if (n->ret_bool) v = keep ? 1 : 0, keep = true;
            if (!keep) continue;
            if (!cache[i] || cache_one[i] != j) {
                lset lab =
                    drop ? lset_filter(&ev->a, &many->s[i].l, true, NULL, 0, false) : many->s[i].l;
                for (size_t x = 0; x < n->ninclude; x++)
                    lab = lset_set(&ev->a, &lab, n->include[x],
                                   lset_get(&one->s[j].l, n->include[x]));
                if (oom(ev)) break;
                if (o.n == o.cap) {
                    efail(ev, MT_ELIMIT, "the result has more than %zu series (the limit)",
                          ev->max_series);
                    break;
                }
                if (!(cache[i] = outset_get(ev, &o, lab))) break;
                cache_one[i] = j;
            }
            ser *s = cache[i];
            size_t si = (size_t)(s - o.s);
            if (s->ok[k] && setby[si] == mg[i]) {
                efail(ev, MT_EINVAL,
                      "multiple matches for labels: grouping labels must ensure unique matches");
                break;
            }
            setby[si] = mg[i];
            outset_set(ev, s, k, v);
        }
    }
    return vector_of(&o);
}

static bool negated(void *ud, size_t k, double x, double *y)
{
    (void)ud, (void)k;
    *y = -x;
    return true;
}

static val eval(evaluator *ev, const node *n)
{
    val out = {.type = n->type};
    if (ev->rc) return out;
    if (n->wrap && ev->nsteps > 1 && n->kind != N_NUM && n->kind != N_STR)
        return eval_invariant(ev, n);
    switch (n->kind) {
    case N_NUM:
        out.sc = ar_alloc(&ev->a, ev->nsteps * sizeof(double));
        if (oom(ev)) return out;
        for (size_t k = 0; k < ev->nsteps; k++) out.sc[k] = n->num;
        return out;
    case N_STR: out.str = n->str; return out;
    case N_SEL:
        if (n->range) {
            /* an instant query's range selector: the raw samples */
            int64_t end = ev->ts[0] - n->offset;
            out.raw = fetch(ev, n, end - n->range, end, &out.n);
            return out;
        }
        if (n->at_kind != AT_NONE && ev->nsteps > 1) return eval_selector_at(ev, n);
        return eval_selector(ev, n);
    case N_CALL: return eval_call(ev, n);
    case N_SUBQ: out.raw = subq_rser(ev, n, ev->ts[0], ev->ts[0], &out.n); return out;
    case N_AGG: return n->agg == A_COUNT_VALUES ? eval_count_values(ev, n) : eval_agg(ev, n);
    case N_BIN: return eval_binary(ev, n);
    case N_NEG: {
        val a = eval(ev, n->args[0]);
        if (ev->rc) return out;
        if (a.type == T_SCALAR) {
            for (size_t k = 0; k < ev->nsteps; k++) a.sc[k] = -a.sc[k];
            return a;
        }
        return map_values(ev, &a, negated, NULL);
    }
    }
    return out;
}

/* ---- answers ------------------------------------------------------------------------------------
 */

static int cmp_lset(const lset *a, const lset *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int r = strcmp(a->kv[2 * i], b->kv[2 * i]);
        if (!r) r = strcmp(a->kv[2 * i + 1], b->kv[2 * i + 1]);
        if (r) return r;
    }
    return (a->n > b->n) - (a->n < b->n);
}

static int by_ser(const void *a, const void *b)
{
    return cmp_lset(&((const ser *)a)->l, &((const ser *)b)->l);
}

static int by_rser(const void *a, const void *b)
{
    return cmp_lset(&((const rser *)a)->l, &((const rser *)b)->l);
}

static void put_metric(mt_sbuf *b, const lset *l)
{
    mt_sb_puts(b, "{\"metric\":{");
    for (size_t i = 0; i < l->n; i++) {
        if (i) mt_sb_puts(b, ",");
        sb_json(b, l->kv[2 * i]);
        mt_sb_puts(b, ":");
        sb_json(b, l->kv[2 * i + 1]);
    }
    mt_sb_puts(b, "}");
}

/* `[t,"` for a time t (ms) into out (32 bytes): t in seconds, the ms as decimals; its length. */
static size_t time_prefix(int64_t t, char *out)
{
    /* |t|'s seconds and ms, then the sign: -3 ms is -0.003 s, as Prometheus prints it */
    uint64_t a = t < 0 ? 0 - (uint64_t)t : (uint64_t)t, u = a / 1000, ms = a % 1000;
    char num[32], *p = num + 24, *q = p;
    do *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (t < 0) *--p = '-';
    *--p = '[';
    if (ms) {
        *q++ = '.';
        *q++ = (char)('0' + ms / 100);
        if (ms % 100) *q++ = (char)('0' + ms / 10 % 10);
        if (ms % 10) *q++ = (char)('0' + ms % 10);
    }
    *q++ = ',';
    *q++ = '"';
    size_t n = (size_t)(q - p);
    assert(n <= 32);
    memcpy(out, p, n);
    return n;
}

/* Room a value and `"]` take after time_prefix: mt_format_double's 40 bytes, and 2. */
#define VALUE_ROOM 42

/* v as Prometheus spells it, then `"]`, into out (VALUE_ROOM bytes); its length. */
static size_t value_suffix(double v, char *out)
{
    size_t n;
    if (isnan(v))
        memcpy(out, "NaN", n = 3);
    else if (isinf(v))
        memcpy(out, v > 0 ? "+Inf" : "-Inf", n = 4);
    else
        n = mt_format_double(v, out, VALUE_ROOM - 2);
    out[n] = '"';
    out[n + 1] = ']';
    return n + 2;
}

/* [t,"v"]: by hand, not snprintf: a range answer writes this for each of its (many) points. */
static void put_point(mt_sbuf *b, int64_t t, double v)
{
    char *at = mt_sb_reserve(b, 32 + VALUE_ROOM);
    if (!at) return;
    size_t n = time_prefix(t, at);
    mt_sb_wrote(b, n + value_suffix(v, at + n));
}

/* time_prefix of each step of a range answer, made once for all its series. */
typedef struct step_text {
    char s[32];
    size_t n;
} step_text;

/* Part of a range answer: series [from, to) of s with a value, comma-separated, into b. */
typedef struct range_part {
    const evaluator *ev;
    const step_text *steps;
    const ser *s;
    size_t from, to;
    size_t guess; /* bytes it will take, about */
    mt_sbuf b;
} range_part;

static void *write_range_part(void *arg)
{
    range_part *rp = arg;
    const evaluator *ev = rp->ev;
    mt_sbuf *b = &rp->b;
    if (!mt_sb_reserve(b, rp->guess)) return NULL; /* no copies as it grows, in the usual case */
    bool first = true;
    for (size_t i = rp->from; i < rp->to; i++) {
        const ser *s = &rp->s[i];
        bool any = false;
        for (size_t k = 0; k < ev->nsteps; k++) {
            if (!s->ok[k]) continue;
            if (!any) {
                mt_sb_puts(b, first ? "" : ",");
                first = false;
                put_metric(b, &s->l);
                mt_sb_puts(b, ",\"values\":[");
            }
            char *at = mt_sb_reserve(b, 1 + sizeof rp->steps[k].s + VALUE_ROOM);
            if (!at) return NULL;
            size_t n = any;
            at[0] = ','; /* overwritten when it is the first */
            memcpy(at + n, rp->steps[k].s, sizeof rp->steps[k].s); /* a fixed size: one move */
            n += rp->steps[k].n;
            mt_sb_wrote(b, n + value_suffix(s->v[k], at + n));
            any = true;
        }
        if (any) mt_sb_puts(b, "]}");
    }
    return NULL;
}

/*
 * The series of a range answer, comma-separated, into b. Formatting the values is most of a
 * large answer's cost: parts of about as many values each are written on the pass' threads,
 * then joined in order.
 */
static void write_range_series(const evaluator *ev, const ser *s, size_t n, mt_sbuf *b)
{
    size_t nt = pass_threads(ev, n);
    range_part parts[PASS_MAX_THREADS];
    pthread_t th[PASS_MAX_THREADS];
    bool started[PASS_MAX_THREADS] = {false};
    step_text *steps = malloc(ev->nsteps * sizeof *steps);
    if (!steps) {
        b->oom = true;
        return;
    }
    size_t step_bytes = 0;
    for (size_t k = 0; k < ev->nsteps; k++)
        step_bytes += steps[k].n = time_prefix(ev->ts[k], steps[k].s);
    /* a series weighs its values, and one for its labels */
    size_t total = 0, acc = 0, at = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k <= ev->nsteps; k++) total += k == ev->nsteps || s[i].ok[k];
    for (size_t t = 0; t < nt; t++) {
        size_t from = at, want = total / nt * (t + 1), before = acc;
        while (at < n && (t == nt - 1 || acc < want)) {
            for (size_t k = 0; k <= ev->nsteps; k++) acc += k == ev->nsteps || s[at].ok[k];
            at++;
        }
        /* a point takes its step's text (the mean), about 20 bytes of value and a comma; the
           labels of a series about 256 */
        size_t per_point = step_bytes / (ev->nsteps ? ev->nsteps : 1) + 24;
        parts[t] = (range_part){.ev = ev,
                                .steps = steps,
                                .s = s,
                                .from = from,
                                .to = at,
                                .guess = (acc - before) * per_point + (at - from) * 256};
    }
    for (size_t t = 1; t < nt; t++)
        started[t] = !pthread_create(&th[t], NULL, write_range_part, &parts[t]);
    write_range_part(&parts[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            write_range_part(&parts[t]); /* no thread: this one writes it */
    }
    free(steps);
    size_t joined = nt;
    for (size_t t = 0; t < nt; t++) joined += parts[t].b.len;
    mt_sb_reserve(b, joined + 64); /* the parts and the answer's end, without a copy on the way */
    bool any = false;
    for (size_t t = 0; t < nt; t++) {
        if (parts[t].b.oom) b->oom = true;
        if (parts[t].b.len) {
            if (any) mt_sb_puts(b, ",");
            mt_sb_put(b, parts[t].b.p, parts[t].b.len);
            any = true;
        }
        free(parts[t].b.p);
    }
}

/* Write the answer of r (a range query: always a matrix). */
static void write_result(evaluator *ev, val *r, bool range, mt_sbuf *b)
{
    const char *type = range                 ? "matrix"
                       : r->type == T_SCALAR ? "scalar"
                       : r->type == T_STRING ? "string"
                       : r->type == T_MATRIX ? "matrix"
                                             : "vector";
    mt_sb_printf(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"%s\",\"result\":", type);
    if (r->type == T_STRING) {
        put_point(b, ev->ts[0], 0); /* replaced below: a string's value is the string */
        b->len -= 4;                /* drop `"0"]` */
        b->p[b->len] = '\0';
        sb_json(b, r->str);
        mt_sb_puts(b, "]}}");
        return;
    }
    if (r->type == T_SCALAR && !range) {
        put_point(b, ev->ts[0], r->sc[0]);
        mt_sb_puts(b, "}}");
        return;
    }
    mt_sb_puts(b, "[");
    if (r->type == T_SCALAR) {
        mt_sb_puts(b, "{\"metric\":{},\"values\":[");
        for (size_t k = 0; k < ev->nsteps; k++) {
            if (k) mt_sb_puts(b, ",");
            put_point(b, ev->ts[k], r->sc[k]);
        }
        mt_sb_puts(b, "]}]}}");
        return;
    }
    if (r->type == T_MATRIX) {
        if (r->n) qsort(r->raw, r->n, sizeof *r->raw, by_rser);
        for (size_t i = 0; i < r->n; i++) {
            if (i) mt_sb_puts(b, ",");
            put_metric(b, &r->raw[i].l);
            mt_sb_puts(b, ",\"values\":[");
            for (size_t j = 0; j < r->raw[i].n; j++) {
                if (j) mt_sb_puts(b, ",");
                put_point(b, r->raw[i].t[j], r->raw[i].v[j]);
            }
            mt_sb_puts(b, "]}");
        }
        mt_sb_puts(b, "]}}");
        return;
    }
    if (r->n && !(r->ordered && !range)) qsort(r->s, r->n, sizeof *r->s, by_ser);
    if (!range) {
        bool first = true;
        for (size_t i = 0; i < r->n; i++) {
            const ser *s = &r->s[i];
            if (!s->ok[0]) continue;
            mt_sb_puts(b, first ? "" : ",");
            first = false;
            put_metric(b, &s->l);
            mt_sb_puts(b, ",\"value\":");
            put_point(b, ev->ts[0], s->v[0]);
            mt_sb_puts(b, "}");
        }
        mt_sb_puts(b, "]}}");
        return;
    }
    write_range_series(ev, r->s, r->n, b);
    mt_sb_puts(b, "]}}");
}

int mt_promql_query(mt_engine *e, const mt_promql_spec *spec, mt_write_fn fn, void *ud, char *err,
                    size_t errcap)
{
    if (err && errcap) err[0] = '\0';
    bool range = spec->step > 0;
    if (spec->end < spec->start) {
        snprintf(err, errcap, "end timestamp must not be before start time");
        return MT_EINVAL;
    }
    if (range && (spec->end - spec->start) / spec->step >= MT_PROMQL_MAX_STEPS) {
        snprintf(err, errcap,
                 "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
                 "query resolution (?step=XX)");
        return MT_EINVAL;
    }
    if (!range && spec->start != spec->end) {
        snprintf(err, errcap, "an instant query has start == end");
        return MT_EINVAL;
    }
    evaluator ev = {.e = e, .spec = spec, .err = err, .errcap = errcap};
    ev.max_samples = spec->max_samples ? spec->max_samples : DEFAULT_MAX_SAMPLES;
    ev.max_series = spec->max_series ? spec->max_series : DEFAULT_MAX_SERIES;
    node *root = parse(&ev.a, spec->expr, err, errcap);
    mt_sbuf b = {0};
    int rc = MT_OK;
    if (!root) {
        rc = ev.a.oom ? -ENOMEM : MT_EPARSE;
        goto out;
    }
    if (range && root->type != T_SCALAR && root->type != T_VECTOR) {
        snprintf(err, errcap,
                 "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                 type_names[root->type]);
        rc = MT_EINVAL;
        goto out;
    }
    ev.nsteps = range ? (size_t)((spec->end - spec->start) / spec->step) + 1 : 1;
    ev.ts = ar_alloc(&ev.a, ev.nsteps * sizeof *ev.ts);
    if (!ev.ts) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t k = 0; k < ev.nsteps; k++)
        ev.ts[k] = spec->start + (int64_t)k * (range ? spec->step : 0);
    if (prep_invariant(root, spec->start, spec->end)) root->wrap = true;
    val r = eval(&ev, root);
    if ((rc = ev.rc)) goto out;
    if (r.type == T_VECTOR && r.n > ev.max_series) {
        snprintf(err, errcap, "the result has more than %zu series (the limit)", ev.max_series);
        rc = MT_ELIMIT;
        goto out;
    }
    write_result(&ev, &r, range, &b);
    if (b.oom) {
        rc = -ENOMEM;
        goto out;
    }
    rc = fn(ud, b.p, b.len);
out:
    if (rc && err && errcap && !err[0]) snprintf(err, errcap, "%s", mt_strerror(rc));
    free(b.p);
    unload_catalog(&ev);
    ar_free(&ev.a);
    return rc;
}

/* ---- listings
 * ------------------------------------------------------------------------------------ */

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether series id has a sample in [start, end] (ms). */
static int has_sample(mt_engine *e, uint32_t id, int64_t start, int64_t end, bool *yes)
{
    *yes = false;
    if (start == INT64_MIN && end == INT64_MAX) return *yes = true, MT_OK;
    int64_t from = ms_to_ns(start), to = end == INT64_MAX ? INT64_MAX : ms_to_ns(end + 1);
    if (from >= to) return MT_OK;
    mt_scan *s;
    int rc = mt_scan_open(e, id, from, to, &s);
    if (rc == MT_ENOTFOUND) return MT_OK;
    if (rc) return rc;
    mt_points p;
    rc = mt_scan_next(s, &p);
    *yes = rc == MT_OK;
    mt_scan_close(s);
    return rc == MT_OK || rc == MT_ENOTFOUND ? MT_OK : rc;
}

int mt_promql_list_write(mt_engine *e, mt_promql_list what, const char *label,
                         const char *const *match, size_t nmatch, int64_t start, int64_t end,
                         const char *tenant, mt_write_fn fn, void *ud, char *err, size_t errcap)
{
    if (err && errcap) err[0] = '\0';
    if (what == MT_PROMQL_SERIES && !nmatch) {
        snprintf(err, errcap, "no match[] parameter provided");
        return MT_EINVAL;
    }
    if (start > end) {
        snprintf(err, errcap, "end timestamp must not be before start time");
        return MT_EINVAL;
    }
    int rc = MT_OK;
    mt_psel *sels = calloc(nmatch ? nmatch : 1, sizeof *sels);
    mt_fed_series *cat = NULL;
    size_t ncat = 0, nout = 0, parsed = 0;
    const char **out = NULL; /* label names or values; series idents */
    const mt_fed_series **outs = NULL;
    mt_sbuf b = {0};
    if (!sels) return -ENOMEM;
    for (; parsed < nmatch; parsed++) {
        char why[512];
        if ((rc = mt_psel_parse(match[parsed], NULL, &sels[parsed], why, sizeof why))) {
            mt_psel_free(&sels[parsed]);
            snprintf(err, errcap, "invalid parameter \"match[]\": 1:1: parse error: %s", why);
            goto out;
        }
    }
    if ((rc = mt_fed_catalog(e, tenant, 0, &cat, &ncat, err, errcap))) goto out;
    size_t cap = 16 + ncat * (what == MT_PROMQL_LABELS ? 8 : 1);
    out = malloc(cap * sizeof *out);
    outs = malloc((ncat + 1) * sizeof *outs);
    if (!out || !outs) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ncat; i++) {
        const mt_fed_series *c = &cat[i];
        bool keep = !nmatch;
        for (size_t j = 0; j < nmatch && !keep; j++) {
            keep = true;
            for (size_t m = 0; m < sels[j].nm && keep; m++) {
                const char *v = "";
                for (size_t k = 0; k < c->nlabels; k++)
                    if (!strcmp(c->kv[2 * k], sels[j].m[m].key)) v = c->kv[2 * k + 1];
                keep = mt_matcher_match(&sels[j].m[m], v);
            }
        }
        if (!keep) continue;
        bool yes;
        if ((rc = has_sample(e, c->id, start, end, &yes))) goto out;
        if (!yes) continue;
        if (what == MT_PROMQL_SERIES) {
            outs[nout++] = c;
            continue;
        }
        for (size_t k = 0; k < c->nlabels; k++) {
            const char *s = what == MT_PROMQL_LABELS       ? c->kv[2 * k]
                            : !strcmp(c->kv[2 * k], label) ? c->kv[2 * k + 1]
                                                           : NULL;
            if (!s) continue;
            if (nout == cap) {
                const char **g = realloc(out, (cap *= 2) * sizeof *out);
                if (!g) {
                    rc = -ENOMEM;
                    goto out;
                }
                out = g;
            }
            out[nout++] = s;
        }
    }
    mt_sb_puts(&b, "{\"status\":\"success\",\"data\":[");
    if (what == MT_PROMQL_SERIES) {
        /* catalog order is by ident; Prometheus sorts by labels */
        lset *ls = malloc((nout + 1) * sizeof *ls);
        const char **kvs = malloc((nout + 1) * sizeof *kvs * 2 * 257);
        if (!ls || !kvs) {
            free(ls);
            free(kvs);
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < nout; i++) {
            ls[i].n = outs[i]->nlabels;
            ls[i].kv = kvs + i * 2 * 257;
            memcpy(ls[i].kv, outs[i]->kv, 2 * outs[i]->nlabels * sizeof(char *));
            qsort(ls[i].kv, ls[i].n, 2 * sizeof(char *), by_name);
        }
        qsort(ls, nout, sizeof *ls, (int (*)(const void *, const void *))cmp_lset);
        for (size_t i = 0; i < nout; i++) {
            mt_sb_puts(&b, i ? ",{" : "{");
            for (size_t k = 0; k < ls[i].n; k++) {
                if (k) mt_sb_puts(&b, ",");
                sb_json(&b, ls[i].kv[2 * k]);
                mt_sb_puts(&b, ":");
                sb_json(&b, ls[i].kv[2 * k + 1]);
            }
            mt_sb_puts(&b, "}");
        }
        free(ls);
        free(kvs);
    } else {
        if (nout) qsort(out, nout, sizeof *out, by_str);
        for (size_t i = 0, w = 0; i < nout; i++) {
            if (i && !strcmp(out[i], out[i - 1])) continue;
            mt_sb_puts(&b, w++ ? "," : "");
            sb_json(&b, out[i]);
        }
    }
    mt_sb_puts(&b, "]}");
    rc = b.oom ? -ENOMEM : fn(ud, b.p, b.len);
out:
    if (rc && err && errcap && !err[0]) snprintf(err, errcap, "%s", mt_strerror(rc));
    for (size_t j = 0; j < parsed; j++) mt_psel_free(&sels[j]);
    free(sels);
    free(out);
    free(outs);
    free(b.p);
    mt_fed_catalog_free(cat, ncat);
    return rc;
}

/* ---- API parameters
 * --------------------------------------------------------------------------------- */

int mt_promql_parse_time(const char *s, int64_t *ms)
{
    char *e;
    double v = strtod(s, &e);
    if (*s && e != s && !*e && isfinite(v)) {
        if (v > 9.2e12 || v < -9.2e12) return MT_EPARSE; /* ±290,000 years: ms with room */
        *ms = (int64_t)llround(v * 1000);
        return MT_OK;
    }
    int64_t ns;
    if (!mt_time_parse(s, mt_now_ns(), &ns)) return MT_EPARSE;
    *ms = floor_div(ns, 1000000);
    return MT_OK;
}

int mt_promql_parse_step(const char *s, int64_t *ms)
{
    char *e;
    double v = strtod(s, &e);
    if (*s && e != s && !*e) {
        if (!(v > 0) || v > 9.2e12) return MT_EPARSE;
        *ms = (int64_t)llround(v * 1000);
        return *ms > 0 ? MT_OK : MT_EPARSE;
    }
    const char *p = s;
    int64_t d;
    if (!parse_duration_at(&p, &d) || *p || d <= 0) return MT_EPARSE;
    *ms = d;
    return MT_OK;
}
