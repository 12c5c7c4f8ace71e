/*
 * mt_fed.c — the Prometheus text format of stored series (contract and
 * naming rules in mt_fed.h).
 *
 * Plan: parse every selector first (a bad one writes nothing); list the
 * candidate series (the tenant's postings, a Metron selector's ids, or
 * every id); give each its Prometheus view (sanitized name, labels) and
 * keep those a selector matches; sort them by name, then by their printed
 * labels, so that every family is one run of lines under one HELP and one
 * TYPE (the text format refuses a family split in two). Run: scan each
 * series over the range and write its last sample, or all of them.
 */
#include "mt_fed.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_out.h"
#include "mt_query_int.h"

#define DEFAULT_MAX_SERIES 100000
#define NAME_LABEL         "__name__" /* Prometheus' label for the metric name */

/* ---- names ---------------------------------------------------------------------------- */

static bool name_char(unsigned char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (colon && c == ':');
}

/*
 * Append s sanitized into out at pos (writing below cap - 1 only); returns
 * the new position as if out were unbounded. A UTF-8 character becomes
 * one '_': the bytes after a lead byte add nothing.
 */
static size_t sanitize(const char *s, size_t n, bool colon, char *out, size_t cap, size_t pos)
{
    bool in_seq = false; /* the previous byte was part of a multi-byte sequence */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) == 0x80 && in_seq) continue;
        in_seq = c >= 0xC0;
        if (pos + 1 < cap) out[pos] = name_char(c, colon) ? (char)c : '_';
        pos++;
    }
    return pos;
}

static size_t finish(char *out, size_t cap, size_t pos)
{
    if (cap) out[pos < cap ? pos : cap - 1] = '\0';
    return pos;
}

size_t mt_fed_metric_name(mt_name measurement, mt_name field, char *out, size_t cap)
{
    size_t pos = 0;
    if (measurement.len && measurement.ptr[0] >= '0' && measurement.ptr[0] <= '9') {
        if (pos + 1 < cap) out[pos] = '_';
        pos++;
    }
    pos = sanitize(measurement.ptr, measurement.len, true, out, cap, pos);
    /* the field "value" is the measurement's one value (Telegraf's convention): remote write
       stores a Prometheus sample as measurement = its name, field "value" (ingest/mt_rw.h) */
    if (field.len == 5 && memcmp(field.ptr, "value", 5) == 0) return finish(out, cap, pos);
    if (pos + 1 < cap) out[pos] = '_';
    pos++;
    pos = sanitize(field.ptr, field.len, true, out, cap, pos);
    return finish(out, cap, pos);
}

size_t mt_fed_label_name(mt_name key, char *out, size_t cap)
{
    char two[3]; /* the first two characters, sanitized */
    size_t n2 = finish(two, sizeof two, sanitize(key.ptr, key.len, false, two, sizeof two, 0));
    const char *prefix = key.len && key.ptr[0] >= '0' && key.ptr[0] <= '9' ? "_"
                         : n2 >= 2 && two[0] == '_' && two[1] == '_'
                             ? "tag" /* "__" is reserved by Prometheus ("__name__", ".x") */
                             : "";
    size_t pos = 0;
    for (; prefix[pos]; pos++)
        if (pos + 1 < cap) out[pos] = prefix[pos];
    pos = sanitize(key.ptr, key.len, false, out, cap, pos);
    return finish(out, cap, pos);
}

size_t mt_query_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0; /* overlong, a surrogate, past U+10FFFF */
    return k;
}

/*
 * Append s as the text format wants a label value (help: a HELP text):
 * \\ and \n escaped, \" too in a label value; invalid UTF-8 as U+FFFD
 * (Prometheus refuses a scrape that holds it).
 */
static void put_escaped(mt_sbuf *b, const char *s, size_t n, bool help)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = u[i];
        size_t k = mt_query_utf8_seq(u + i, n - i);
        if (k > 1 || (k == 1 && c != '\\' && c != '\n' && (help || c != '"'))) {
            i += k;
            continue;
        }
        mt_sb_put(b, s + run, i - run);
        if (!k)
            mt_sb_put(b, "\xEF\xBF\xBD", 3);
        else if (c == '\n')
            mt_sb_put(b, "\\n", 2);
        else
            mt_sb_put(b, c == '\\' ? "\\\\" : "\\\"", 2);
        i += k ? k : 1;
        run = i;
    }
    mt_sb_put(b, s + run, n - run);
}

/* ---- the Prometheus view of one series -------------------------------------------------- */

typedef struct plabel {
    size_t name_off; /* into view.buf: the sanitized name, NUL-terminated */
    size_t val_off;  /* into view.buf: the value as stored, NUL-terminated */
    mt_name val;     /* the value, in the key */
} plabel;

typedef struct view {
    char key[MT_SERIES_MAX_KEY];
    size_t klen;
    mt_series_parts parts;
    mt_sbuf buf;     /* names and values, each NUL-terminated */
    size_t name_len; /* the metric name is buf.p[0 .. name_len) */
    plabel l[256];   /* as many as the series has tags, fewer after a collision */
    size_t nl;
} view;

/* Build v's name and labels from series id: MT_OK, MT_ENOTFOUND, MT_EINVAL (bad key), -ENOMEM. */
static int view_load(mt_engine *e, uint32_t id, view *v)
{
    int rc = mt_engine_series_key(e, id, v->key, sizeof v->key, &v->klen);
    if (rc) return rc;
    if (mt_series_parse(v->key, v->klen, &v->parts)) return MT_EINVAL;
    const mt_series_parts *p = &v->parts;
    v->buf.len = 0;
    v->nl = 0;
    char small[256];
    size_t need = mt_fed_metric_name(p->measurement, p->field, small, sizeof small);
    if (need < sizeof small) {
        mt_sb_put(&v->buf, small, need);
    } else {
        char *big = malloc(need + 1);
        if (!big) return -ENOMEM;
        mt_fed_metric_name(p->measurement, p->field, big, need + 1);
        mt_sb_put(&v->buf, big, need);
        free(big);
    }
    v->name_len = need;
    mt_sb_put(&v->buf, "", 1);
    /* the business_id tag first: its label is the tenant's, never another tag's that maps to
       the same name ("business.id" sorts before it and could pose as another tenant) */
    size_t tenant = p->ntags;
    for (size_t i = 0; i < p->ntags && tenant == p->ntags; i++)
        if (p->tag_keys[i].len == strlen(MT_TENANT_TAG) &&
            !memcmp(p->tag_keys[i].ptr, MT_TENANT_TAG, p->tag_keys[i].len))
            tenant = i;
    for (size_t k = 0; k < p->ntags; k++) {
        size_t i = tenant == p->ntags ? k : k == 0 ? tenant : k <= tenant ? k - 1 : k;
        size_t at = v->buf.len;
        size_t ln = mt_fed_label_name(p->tag_keys[i], small, sizeof small);
        if (ln < sizeof small) {
            mt_sb_put(&v->buf, small, ln);
        } else {
            char *big = malloc(ln + 1);
            if (!big) return -ENOMEM;
            mt_fed_label_name(p->tag_keys[i], big, ln + 1);
            mt_sb_put(&v->buf, big, ln);
            free(big);
        }
        mt_sb_put(&v->buf, "", 1);
        if (v->buf.oom) return -ENOMEM;
        bool dup = false; /* two tags with one label name: the first stays */
        for (size_t j = 0; j < v->nl && !dup; j++)
            dup = !strcmp(v->buf.p + v->l[j].name_off, v->buf.p + at);
        if (dup) {
            v->buf.len = at;
            continue;
        }
        plabel *l = &v->l[v->nl++];
        l->name_off = at;
        l->val_off = v->buf.len;
        l->val = p->tag_values[i];
        mt_sb_put(&v->buf, p->tag_values[i].ptr, p->tag_values[i].len);
        mt_sb_put(&v->buf, "", 1);
    }
    return v->buf.oom ? -ENOMEM : MT_OK;
}

/* The value of label name in v ("" when it has none; the metric name for __name__). */
static const char *view_get(const view *v, const char *name)
{
    if (!strcmp(name, NAME_LABEL)) return v->buf.p;
    for (size_t i = 0; i < v->nl; i++)
        if (!strcmp(v->buf.p + v->l[i].name_off, name)) return v->buf.p + v->l[i].val_off;
    return "";
}

/* The sample's prefix, "name{a=\"x\",b=\"y\"}" (or "name"), into out (reset first). */
static void view_ident(const view *v, mt_sbuf *out)
{
    out->len = 0;
    mt_sb_put(out, v->buf.p, v->name_len);
    for (size_t i = 0; i < v->nl; i++) {
        mt_sb_put(out, i ? "," : "{", 1);
        mt_sb_puts(out, v->buf.p + v->l[i].name_off);
        mt_sb_put(out, "=\"", 2);
        put_escaped(out, v->l[i].val.ptr, v->l[i].val.len, false);
        mt_sb_put(out, "\"", 1);
    }
    if (v->nl) mt_sb_put(out, "}", 1);
}

/* ---- Prometheus series selectors ------------------------------------------------------- */

typedef mt_psel psel;

void mt_psel_free(mt_psel *s)
{
    for (size_t i = 0; i < s->nm; i++)
        if (s->m[i].has_re) regfree(&s->m[i].re);
    s->nm = 0;
}

static const char *skip(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* The length of a name at p: [a-zA-Z_(:)][a-zA-Z0-9_(:)]* */
static size_t name_span(const char *p, bool colon)
{
    size_t n = 0;
    if (name_char((unsigned char)p[0], colon) && !(p[0] >= '0' && p[0] <= '9'))
        for (n = 1; name_char((unsigned char)p[n], colon);) n++;
    return n;
}

/* Whether m matches the empty string (a selector needs one matcher that does not). */
bool mt_matcher_match(const mt_matcher *m, const char *val)
{
    switch (m->op) {
    case MT_MATCH_EQ: return strcmp(val, m->value) == 0;
    case MT_MATCH_NE: return strcmp(val, m->value) != 0;
    case MT_MATCH_RE: return regexec(&m->re, val, 0, NULL, 0) == 0;
    case MT_MATCH_NRE: return regexec(&m->re, val, 0, NULL, 0) != 0;
    }
    return false;
}

/* A quoted value at *pp ("...", '...', `...`) into m->value; *pp moves past it. */
static int parse_value(const char **pp, mt_matcher *m, char *err, size_t cap)
{
    const char *p = *pp;
    char q = *p;
    if (q != '"' && q != '\'' && q != '`')
        return mt_query_perr(err, cap, "the value of '%s' must be quoted (\"...\", '...' or `...`)",
                             m->key);
    size_t vl = 0;
    for (p++; *p && *p != q; p++) {
        char c = *p;
        if (c == '\\' && q != '`') {
            p++;
            switch (*p) {
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            case '\'': c = '\''; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default:
                return mt_query_perr(
                    err, cap,
                    "the value of '%s' has an escape Metron does not take: '\\%.1s' "
                    "(\\\\ \\\" \\' \\n \\t \\r)",
                    m->key, p);
            }
        } else if (c == '\n' && q != '`') {
            return mt_query_perr(err, cap, "the value of '%s' holds a newline", m->key);
        }
        if (vl + 1 >= sizeof m->value)
            return mt_query_perr(err, cap, "the value of '%s' is too long (limit %zu bytes)",
                                 m->key, sizeof m->value - 1);
        m->value[vl++] = c;
    }
    if (*p != q) return mt_query_perr(err, cap, "the value of '%s' is not closed", m->key);
    m->value[vl] = '\0';
    *pp = p + 1;
    return MT_OK;
}

/*
 * Why re is refused before regcomp sees it, or NULL. glibc's regcomp
 * expands repetitions into copies of the tree: stacked operators
 * ("a+++++", found by fuzz_promql) or large counts take gigabytes. RE2,
 * which Prometheus uses, refuses stacked operators too and caps counts
 * at 1000; Metron caps them at 100.
 */
const char *mt_regex_too_costly(const char *re)
{
    bool after_rep = false, lazy_taken = false; /* the last token was a repetition operator */
    for (const char *p = re; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            after_rep = false;
            continue;
        }
        if (*p == '[') { /* a bracket expression: ']' first is a member */
            const char *q = p + 1;
            if (*q == '^') q++;
            if (*q == ']') q++;
            while (*q && *q != ']') q++;
            if (!*q) return NULL; /* unbalanced: regcomp says why */
            p = q;
            after_rep = false;
            continue;
        }
        bool rep = *p == '*' || *p == '+' || *p == '?' || *p == '{';
        if (rep && after_rep) {
            if (*p == '?' && !lazy_taken) { /* RE2's lazy x*?: one '?' is taken */
                lazy_taken = true;
                continue;
            }
            return "repetition operators one after another (such as '++' or '*{2}')";
        }
        if (*p == '{') {
            for (const char *q = p + 1; *q && *q != '}'; q++)
                if (*q >= '0' && *q <= '9' && strtol(q, NULL, 10) > 100)
                    return "a repetition count over 100";
            const char *close = strchr(p, '}');
            if (close) p = close;
        }
        after_rep = rep;
        lazy_taken = false;
    }
    return NULL;
}

static int add_regex(mt_matcher *m, char *err, size_t cap)
{
    const char *costly = mt_regex_too_costly(m->value);
    if (costly)
        return mt_query_perr(err, cap, "bad regular expression for '%s': %s is not taken", m->key,
                             costly);
    char why[128];
    if (mt_matcher_regcomp(m, why, sizeof why))
        return mt_query_perr(err, cap, "bad regular expression for '%s' (POSIX extended): %s",
                             m->key, why);
    return MT_OK;
}

int mt_psel_parse(const char *text, const char **end, mt_psel *s, char *err, size_t cap)
{
    s->nm = 0;
    const char *p = skip(text);
    size_t nl = name_span(p, true);
    if (nl) {
        mt_matcher *m = &s->m[s->nm];
        memset(m, 0, sizeof *m);
        if (nl >= sizeof m->value) return mt_query_perr(err, cap, "the metric name is too long");
        snprintf(m->key, sizeof m->key, "%s", NAME_LABEL);
        memcpy(m->value, p, nl);
        m->op = MT_MATCH_EQ;
        s->nm++;
        p = skip(p + nl);
    }
    if (*p == '{') {
        p = skip(p + 1);
        while (*p != '}') {
            if (!*p) return mt_query_perr(err, cap, "'{' is not closed");
            size_t kl = name_span(p, false);
            if (!kl) return mt_query_perr(err, cap, "expected a label name at '%.20s'", p);
            if (s->nm == MT_SELECTOR_MAX_MATCHERS)
                return mt_query_perr(err, cap, "too many matchers (limit %d)",
                                     MT_SELECTOR_MAX_MATCHERS);
            mt_matcher *m = &s->m[s->nm];
            memset(m, 0, sizeof *m);
            if (kl >= sizeof m->key) return mt_query_perr(err, cap, "a label name is too long");
            memcpy(m->key, p, kl);
            if (!strcmp(m->key, NAME_LABEL) && nl)
                return mt_query_perr(
                    err, cap, "the metric name is given twice (before '{' and as %s)", NAME_LABEL);
            p = skip(p + kl);
            if (!mt_match_op_parse(&p, &m->op))
                return mt_query_perr(err, cap, "label '%s' needs =, !=, =~ or !~", m->key);
            p = skip(p);
            int rc = parse_value(&p, m, err, cap);
            if (!rc && (m->op == MT_MATCH_RE || m->op == MT_MATCH_NRE)) rc = add_regex(m, err, cap);
            if (rc) return rc;
            s->nm++;
            p = skip(p);
            if (*p == ',')
                p = skip(p + 1);
            else if (!*p)
                return mt_query_perr(err, cap, "'{' is not closed");
            else if (*p != '}')
                return mt_query_perr(err, cap, "expected ',' or '}' at '%.20s'", p);
        }
        p = skip(p + 1);
    } else if (!nl) {
        return mt_query_perr(err, cap, "expected a metric name or '{'");
    }
    if (end)
        *end = p;
    else if (*p)
        return mt_query_perr(
            err, cap,
            "only a series selector is taken (name{label=\"v\",...}), no range, offset, @, "
            "function or operator: '%.20s'",
            p);
    bool some = false;
    for (size_t i = 0; i < s->nm && !some; i++) some = !mt_matcher_match(&s->m[i], "");
    if (!some)
        return mt_query_perr(
            err, cap, "at least one matcher must not match the empty string (as in Prometheus)");
    return MT_OK;
}

static bool psel_match(const psel *s, const view *v)
{
    for (size_t i = 0; i < s->nm; i++)
        if (!mt_matcher_match(&s->m[i], view_get(v, s->m[i].key))) return false;
    return true;
}

/* ---- the plan --------------------------------------------------------------------------- */

typedef struct entry {
    uint32_t id;
    char *ident;     /* the sample's prefix: name{labels} */
    size_t name_len; /* the metric name is ident[0 .. name_len) */
} entry;

static int by_ident(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int r = memcmp(x->ident, y->ident, n);
    if (!r) r = (x->name_len > y->name_len) - (x->name_len < y->name_len);
    if (!r) r = strcmp(x->ident + x->name_len, y->ident + y->name_len);
    return r ? r : (x->id > y->id) - (x->id < y->id);
}

typedef struct plan {
    entry *ents;
    size_t n, cap;
} plan;

static void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->ents[i].ident);
    free(p->ents);
}

/* The candidate ids (sorted, malloc'd) before the Prometheus selectors are applied. */
static int candidates(mt_engine *e, const mt_fed_spec *spec, uint32_t **ids, size_t *n, char *err,
                      size_t errcap)
{
    if (!spec->nmatch) {
        mt_selector *sel = malloc(sizeof *sel);
        if (!sel) return -ENOMEM;
        int rc = mt_selector_parse(spec->select, NULL, sel, err, errcap);
        if (!rc && spec->tenant) rc = mt_selector_restrict(sel, spec->tenant, err, errcap);
        if (!rc) rc = mt_selector_resolve(e, sel, ids, n);
        mt_selector_free(sel);
        free(sel);
        return rc;
    }
    if (spec->tenant) {
        mt_name k = {MT_TENANT_TAG, strlen(MT_TENANT_TAG)};
        return mt_engine_postings(e, MT_TERM_TAG, k, (mt_name){spec->tenant, strlen(spec->tenant)},
                                  ids, n);
    }
    return mt_query_all_ids(e, ids, n);
}

/* ---- writing ------------------------------------------------------------------------------ */

static void put_value(mt_sbuf *b, mt_vtype t, mt_val v)
{
    char num[64];
    switch (t) {
    case MT_VT_FLOAT:
        if (isnan(v.f))
            mt_sb_puts(b, "NaN");
        else if (isinf(v.f))
            mt_sb_puts(b, v.f > 0 ? "+Inf" : "-Inf");
        else
            mt_sb_put(b, num, mt_format_double(v.f, num, sizeof num));
        break;
    case MT_VT_INT:
        mt_sb_put(b, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v.i));
        break;
    case MT_VT_UINT:
        mt_sb_put(b, num, (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)v.u));
        break;
    case MT_VT_BOOL: mt_sb_puts(b, v.u ? "1" : "0"); break;
    default: mt_sb_puts(b, "NaN"); break;
    }
}

static int64_t floor_ms(int64_t ns)
{
    int64_t q = ns / 1000000;
    return ns % 1000000 < 0 ? q - 1 : q;
}

typedef struct writer {
    mt_engine *e;
    mt_out out;
    mt_sbuf line;
    view *v;
    const entry *family; /* the entry whose family's HELP and TYPE went out last */
    mt_fed_result res;
} writer;

/* HELP and TYPE of ent's family, before its first sample. */
static int family_start(writer *w, const entry *ent)
{
    if (w->family && w->family->name_len == ent->name_len &&
        !memcmp(w->family->ident, ent->ident, ent->name_len))
        return MT_OK;
    w->family = ent;
    int rc = view_load(w->e, ent->id, w->v);
    if (rc) return rc;
    const mt_series_parts *p = &w->v->parts;
    mt_sbuf *b = &w->line;
    b->len = 0;
    mt_sb_puts(b, "# HELP ");
    mt_sb_put(b, ent->ident, ent->name_len);
    mt_sb_puts(b, " Metron measurement ");
    put_escaped(b, p->measurement.ptr, p->measurement.len, true);
    mt_sb_puts(b, ", field ");
    put_escaped(b, p->field.ptr, p->field.len, true);
    mt_sb_puts(b, "\n# TYPE ");
    mt_sb_put(b, ent->ident, ent->name_len);
    mt_sb_puts(b, " untyped\n");
    if (b->oom) return -ENOMEM;
    mt_out_put(&w->out, b->p, b->len);
    return w->out.rc;
}

static int sample(writer *w, const entry *ent, int64_t ts, mt_vtype t, mt_val v)
{
    int rc = family_start(w, ent);
    if (rc) return rc;
    mt_sbuf *b = &w->line;
    b->len = 0;
    mt_sb_puts(b, ent->ident);
    mt_sb_put(b, " ", 1);
    put_value(b, t, v);
    char num[32];
    mt_sb_put(b, num, (size_t)snprintf(num, sizeof num, " %lld\n", (long long)floor_ms(ts)));
    if (b->oom) return -ENOMEM;
    mt_out_put(&w->out, b->p, b->len);
    w->res.samples++;
    return w->out.rc;
}

/* Scan ent over the range: its last sample, or every one (the last of each ms). */
static int write_series(writer *w, const mt_fed_spec *spec, const entry *ent, char *err,
                        size_t errcap)
{
    mt_scan *s;
    int rc = mt_scan_open(w->e, ent->id, spec->from, spec->to, &s);
    if (rc == MT_ENOTFOUND) return MT_OK;
    if (rc) return rc;
    bool have = false;
    int64_t ts = 0;
    mt_vtype t = MT_VT_FLOAT;
    mt_val v = {0};
    uint64_t before = w->res.samples;
    mt_points pts;
    while (!rc && (rc = mt_scan_next(s, &pts)) == MT_OK) {
        if (pts.type == MT_VT_STRING) continue;
        for (size_t i = 0; i < pts.n && !rc; i++) {
            /* the pending point goes out once the next one is in another ms */
            if (have && !spec->latest && floor_ms(pts.ts[i]) != floor_ms(ts))
                rc = sample(w, ent, ts, t, v);
            have = true;
            ts = pts.ts[i];
            t = pts.type;
            v = pts.vals[i];
        }
    }
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    if (!rc && have) rc = sample(w, ent, ts, t, v);
    if (rc == MT_ECORRUPT) {
        char where[4096];
        mt_scan_damage(s, where, sizeof where);
        snprintf(err, errcap, "export stopped: %s: %s", mt_strerror(rc), where);
    }
    mt_scan_close(s);
    if (w->res.samples > before) w->res.series++;
    return rc;
}

int mt_fed_write(mt_engine *e, const mt_fed_spec *spec, mt_write_fn fn, void *ud,
                 mt_fed_result *res, char *err, size_t errcap)
{
    if (err && errcap) err[0] = '\0';
    if (res) memset(res, 0, sizeof *res);
    if (spec->from >= spec->to) {
        snprintf(err, errcap, "the range must have from < to");
        return MT_EINVAL;
    }
    if (!spec->nmatch && !spec->select) {
        snprintf(err, errcap, "no selector: match[] is required");
        return MT_EINVAL;
    }
    int rc = MT_OK;
    psel *sels = spec->nmatch ? calloc(spec->nmatch, sizeof *sels) : NULL;
    view *v = malloc(sizeof *v);
    mt_sbuf ident = {0};
    plan pl = {0};
    uint32_t *ids = NULL;
    size_t nids = 0;
    writer w = {.e = e, .out = {fn, ud, 0}};
    if ((spec->nmatch && !sels) || !v) {
        rc = -ENOMEM;
        goto out;
    }
    v->buf = (mt_sbuf){0};
    size_t parsed = 0;
    for (; parsed < spec->nmatch; parsed++) {
        char why[512];
        if ((rc = mt_psel_parse(spec->match[parsed], NULL, &sels[parsed], why, sizeof why))) {
            mt_psel_free(&sels[parsed]);
            snprintf(err, errcap, "match[] '%.200s': %s", spec->match[parsed], why);
            goto out;
        }
    }
    if ((rc = candidates(e, spec, &ids, &nids, err, errcap))) goto out;
    size_t max = spec->max_series ? spec->max_series : DEFAULT_MAX_SERIES;
    for (size_t i = 0; i < nids; i++) {
        int r = view_load(e, ids[i], v);
        if (r == -ENOMEM) {
            rc = r;
            goto out;
        }
        if (r) continue; /* gone, or a key the index cannot parse */
        bool keep = !spec->nmatch;
        for (size_t j = 0; j < spec->nmatch && !keep; j++) keep = psel_match(&sels[j], v);
        if (!keep) continue;
        uint32_t id;
        mt_vtype t;
        if (mt_engine_series_lookup(e, v->key, v->klen, &id, &t) != MT_OK) continue;
        if (t == MT_VT_STRING) {
            w.res.strings_skipped++;
            continue;
        }
        if (pl.n == max) {
            snprintf(err, errcap, "the selectors match more than %zu series (the limit)", max);
            rc = MT_ELIMIT;
            goto out;
        }
        view_ident(v, &ident);
        if (pl.n == pl.cap) {
            size_t cap = pl.cap ? pl.cap * 2 : 256;
            entry *g = realloc(pl.ents, cap * sizeof *g);
            if (!g) {
                rc = -ENOMEM;
                goto out;
            }
            pl.ents = g;
            pl.cap = cap;
        }
        entry *en = &pl.ents[pl.n];
        en->id = ids[i];
        en->name_len = v->name_len;
        en->ident = ident.oom ? NULL : strdup(ident.p);
        if (!en->ident) {
            rc = -ENOMEM;
            goto out;
        }
        pl.n++;
    }
    if (pl.n) qsort(pl.ents, pl.n, sizeof *pl.ents, by_ident);
    w.v = v;
    for (size_t i = 0; i < pl.n && !rc; i++) {
        if (i && !strcmp(pl.ents[i].ident, pl.ents[i - 1].ident)) {
            w.res.duplicates++; /* the same name and labels: the first id was written */
            continue;
        }
        rc = write_series(&w, spec, &pl.ents[i], err, errcap);
    }
    if (!rc && w.out.rc) rc = w.out.rc;
out:
    if (rc && err && errcap && !err[0]) snprintf(err, errcap, "%s", mt_strerror(rc));
    if (res) *res = w.res;
    for (size_t j = 0; sels && j < spec->nmatch; j++) mt_psel_free(&sels[j]);
    free(sels);
    if (v) free(v->buf.p);
    free(v);
    free(w.line.p);
    free(ident.p);
    free(ids);
    plan_free(&pl);
    return rc;
}

/* ---- the catalog: every series' Prometheus view, for PromQL (mt_query_int.h) -------------- */

static int by_sident(const void *a, const void *b)
{
    const mt_fed_series *x = a, *y = b;
    int r = strcmp(x->ident, y->ident);
    return r ? r : (x->id > y->id) - (x->id < y->id);
}

void mt_fed_catalog_free(mt_fed_series *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i].ident);
        free(s[i].kv);
    }
    free(s);
}

int mt_fed_catalog(mt_engine *e, const char *tenant, size_t max, mt_fed_series **out, size_t *n,
                   char *err, size_t errcap)
{
    *out = NULL;
    *n = 0;
    mt_fed_spec spec = {.nmatch = 1, .tenant = tenant};
    uint32_t *ids = NULL;
    size_t nids = 0, k = 0, cap = 0;
    mt_fed_series *cat = NULL;
    mt_sbuf ident = {0};
    view *v = malloc(sizeof *v);
    int rc = v ? candidates(e, &spec, &ids, &nids, err, errcap) : -ENOMEM;
    if (v) v->buf = (mt_sbuf){0};
    if (!max) max = DEFAULT_MAX_SERIES;
    for (size_t i = 0; !rc && i < nids; i++) {
        int r = view_load(e, ids[i], v);
        if (r == -ENOMEM) rc = r;
        if (r) continue;
        uint32_t id;
        mt_vtype t;
        if (mt_engine_series_lookup(e, v->key, v->klen, &id, &t) != MT_OK || t == MT_VT_STRING)
            continue;
        if (k == max) {
            snprintf(err, errcap, "more than %zu series (the limit)", max);
            rc = MT_ELIMIT;
            break;
        }
        if (k == cap) {
            size_t c2 = cap ? cap * 2 : 256;
            mt_fed_series *g = realloc(cat, c2 * sizeof *g);
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            cat = g;
            cap = c2;
        }
        view_ident(v, &ident);
        mt_fed_series *s = &cat[k];
        memset(s, 0, sizeof *s);
        s->id = ids[i];
        s->nlabels = v->nl + 1;
        /* one block: the pointers, then __name__ and each label's name and value */
        size_t bytes = 2 * s->nlabels * sizeof(char *) + sizeof NAME_LABEL + v->buf.len;
        s->kv = malloc(bytes);
        s->ident = ident.oom ? NULL : strdup(ident.p);
        if (!s->kv || !s->ident) {
            free(s->kv);
            free(s->ident);
            rc = -ENOMEM;
            break;
        }
        k++;
        char *txt = (char *)(s->kv + 2 * s->nlabels);
        memcpy(txt, NAME_LABEL, sizeof NAME_LABEL);
        memcpy(txt + sizeof NAME_LABEL, v->buf.p, v->buf.len);
        char *base = txt + sizeof NAME_LABEL;
        s->kv[0] = txt;
        s->kv[1] = base;
        for (size_t j = 0; j < v->nl; j++) {
            s->kv[2 + 2 * j] = base + v->l[j].name_off;
            s->kv[3 + 2 * j] = base + v->l[j].val_off;
        }
    }
    if (!rc && k) {
        qsort(cat, k, sizeof *cat, by_sident);
        size_t w = 0;
        for (size_t i = 0; i < k; i++) {
            if (w && !strcmp(cat[w - 1].ident, cat[i].ident)) {
                free(cat[i].ident); /* the same name and labels: the first id stays */
                free(cat[i].kv);
                continue;
            }
            cat[w++] = cat[i];
        }
        k = w;
    }
    if (v) free(v->buf.p);
    free(v);
    free(ids);
    free(ident.p);
    if (rc) {
        mt_fed_catalog_free(cat, k);
        return rc;
    }
    *out = cat;
    *n = k;
    return MT_OK;
}
