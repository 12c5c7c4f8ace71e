/*
 * mt_selector.c — selectors: parse `measurement.field{tag op "value", ...}`
 * and resolve them to sorted series ids (grammar in mt_query.h).
 *
 * Equality matchers with a value intersect posting lists; the rest (and
 * `tag=""`, which means "has no such tag") filter the candidates by their
 * keys.
 */
#include <assert.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_query_int.h"

int mt_query_perr(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && cap) vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return MT_EPARSE;
}

static const char *skip(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

void mt_selector_free(mt_selector *s)
{
    for (size_t i = 0; i < s->nm; i++)
        if (s->m[i].has_re) regfree(&s->m[i].re);
    s->nm = 0;
}

int mt_selector_parse(const char *text, const char *field, mt_selector *s, char *err, size_t cap)
{
    memset(s, 0, sizeof *s);
    const char *p = skip(text);
    const char *brace = strchr(p, '{');
    size_t nl = brace ? (size_t)(brace - p) : strlen(p);
    while (nl && (p[nl - 1] == ' ' || p[nl - 1] == '\t')) nl--;
    if ((nl == 0 && !brace) || nl >= sizeof s->measurement)
        return mt_query_perr(
            err, cap,
            "selector needs a measurement, or {...} for every measurement (every series: "
            "{__name__=~\".+\"} or *)");
    memcpy(s->measurement, p, nl);
    if (field && *field) {
        snprintf(s->field, sizeof s->field, "%s", field);
    } else {
        char *dot = strrchr(s->measurement, '.');
        if (dot && dot[1] && dot != s->measurement) {
            snprintf(s->field, sizeof s->field, "%s", dot + 1);
            *dot = '\0';
        }
    }
    /* "*" (or "*.field") is every measurement, as an empty name before '{' is */
    if (!strcmp(s->measurement, "*")) s->measurement[0] = '\0';
    if (!brace) return MT_OK;
    p = skip(brace + 1);
    while (*p != '}') {
        if (s->nm == MT_SELECTOR_MAX_MATCHERS)
            return mt_query_perr(err, cap, "too many matchers (limit %d)",
                                 MT_SELECTOR_MAX_MATCHERS);
        mt_matcher *m = &s->m[s->nm];
        size_t kl = strcspn(p, "=!~,}\" \t");
        if (kl == 0 || kl >= sizeof m->key)
            return mt_query_perr(err, cap, "matcher needs a tag name at '%.20s'", p);
        memcpy(m->key, p, kl);
        m->key[kl] = '\0';
        m->is_name = !strcmp(m->key, MT_SELECTOR_NAME);
        p = skip(p + kl);
        if (!mt_match_op_parse(&p, &m->op))
            return mt_query_perr(err, cap, "matcher '%s' needs =, !=, =~ or !~", m->key);
        p = skip(p);
        if (*p != '"')
            return mt_query_perr(err, cap, "the value of '%s' must be in double quotes", m->key);
        size_t vl = 0;
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
            if (vl + 1 >= sizeof m->value)
                return mt_query_perr(err, cap, "the value of '%s' is too long", m->key);
            m->value[vl++] = *p;
        }
        if (*p != '"') return mt_query_perr(err, cap, "unterminated value of '%s'", m->key);
        m->value[vl] = '\0';
        p = skip(p + 1);
        if (m->op == MT_MATCH_RE || m->op == MT_MATCH_NRE) {
            char why[128];
            if (mt_matcher_regcomp(m, why, sizeof why))
                return mt_query_perr(err, cap, "bad regular expression for '%s': %s", m->key, why);
        }
        s->nm++;
        if (*p == ',')
            p = skip(p + 1);
        else if (*p != '}')
            return mt_query_perr(err, cap, "expected ',' or '}' at '%.20s'", p);
    }
    if (*skip(p + 1))
        return mt_query_perr(err, cap, "unexpected text after '}': '%.20s'", skip(p + 1));
    return MT_OK;
}

int mt_selector_check(const char *text, char *err, size_t cap)
{
    mt_selector *s = malloc(sizeof *s); /* 40 KB of matchers: not on the stack */
    if (!s) return snprintf(err, cap, "out of memory"), -ENOMEM;
    int rc = mt_selector_parse(text, NULL, s, err, cap);
    mt_selector_free(s);
    free(s);
    return rc;
}

/* a ∩ b into a (both sorted); returns the new length. */
static size_t intersect(uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j])
            i++;
        else if (a[i] > b[j])
            j++;
        else
            a[k++] = a[i++], j++;
    }
    return k;
}

/* Whether a series' tags satisfy matcher m (an absent tag is ""). */
static bool matches(const mt_matcher *m, const mt_series_parts *parts)
{
    const char *val = "";
    char buf[1024];
    if (!strcmp(m->key, MT_SELECTOR_NAME)) {
        snprintf(buf, sizeof buf, "%.*s", (int)parts->measurement.len, parts->measurement.ptr);
        val = buf;
    }
    for (size_t i = 0; !*val && i < parts->ntags; i++) {
        if (parts->tag_keys[i].len == strlen(m->key) &&
            !memcmp(parts->tag_keys[i].ptr, m->key, parts->tag_keys[i].len)) {
            snprintf(buf, sizeof buf, "%.*s", (int)parts->tag_values[i].len,
                     parts->tag_values[i].ptr);
            val = buf;
            break;
        }
    }
    return mt_matcher_match(m, val);
}

static mt_name nm(const char *s)
{
    return (mt_name){s, strlen(s)};
}

int mt_selector_restrict(mt_selector *s, const char *tenant, char *err, size_t cap)
{
    assert(tenant && strlen(tenant) < sizeof s->m[0].value);
    if (s->nm == MT_SELECTOR_MAX_MATCHERS)
        return mt_query_perr(err, cap, "selector has too many matchers");
    mt_matcher *m = &s->m[s->nm++];
    memset(m, 0, sizeof *m);
    snprintf(m->key, sizeof m->key, "%s", MT_TENANT_TAG);
    snprintf(m->value, sizeof m->value, "%s", tenant);
    m->op = MT_MATCH_EQ;
    return MT_OK;
}

int mt_matcher_regcomp(mt_matcher *m, char *why, size_t cap)
{
    char anchored[sizeof m->value + 8];
    snprintf(anchored, sizeof anchored, "^(%s)$", m->value);
    int rc = regcomp(&m->re, anchored, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        regerror(rc, &m->re, why, cap);
        return rc;
    }
    m->has_re = true;
    return 0;
}

bool mt_match_op_parse(const char **p, mt_match_op *op)
{
    static const struct {
        const char *text;
        mt_match_op op;
    } ops[] = {{"=~", MT_MATCH_RE}, {"!~", MT_MATCH_NRE}, {"!=", MT_MATCH_NE}, {"=", MT_MATCH_EQ}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (!strncmp(*p, ops[i].text, n)) {
            *op = ops[i].op;
            *p += n;
            return true;
        }
    }
    return false;
}

/* Every series id: ids are dense from 1 to the series count; a tenant delete leaves gaps
   (mt_engine_delete: its ids are never given again), which are skipped, not an end. */
int mt_query_all_ids(mt_engine *e, uint32_t **out, size_t *n)
{
    size_t cap = 0, k = 0;
    uint32_t *ids = NULL;
    if (mt_grow(&ids, &cap, 1, sizeof *ids, 1024)) return -ENOMEM; /* never NULL, even empty */
    char key[1];
    size_t kl;
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    for (uint32_t id = 1; id <= st.series; id++) {
        if (mt_engine_series_key(e, id, key, 0, &kl) == MT_ENOTFOUND) continue;
        if (mt_grow(&ids, &cap, k + 1, sizeof *ids, 1024)) {
            free(ids);
            return -ENOMEM;
        }
        ids[k++] = id;
    }
    *out = ids;
    *n = k;
    return MT_OK;
}

/* The candidates of a selector without a measurement: the postings of its first equality
   matcher with a value (a tenant's, for a restricted one), else every series. */
static int no_name_candidates(mt_engine *e, const mt_selector *s, uint32_t **ids, size_t *n)
{
    for (size_t i = 0; i < s->nm; i++) {
        const mt_matcher *m = &s->m[i];
        if (m->op != MT_MATCH_EQ || !m->value[0]) continue;
        if (!strcmp(m->key, MT_SELECTOR_NAME))
            return mt_engine_postings(e, MT_TERM_MEASUREMENT, nm(m->value), (mt_name){0}, ids, n);
        return mt_engine_postings(e, MT_TERM_TAG, nm(m->key), nm(m->value), ids, n);
    }
    return mt_query_all_ids(e, ids, n);
}

int mt_selector_resolve(mt_engine *e, const mt_selector *s, uint32_t **out, size_t *n)
{
    uint32_t *ids, *more;
    size_t nids, nmore;
    int rc = s->measurement[0] ? mt_engine_postings(e, MT_TERM_MEASUREMENT, nm(s->measurement),
                                                    (mt_name){0}, &ids, &nids)
                               : no_name_candidates(e, s, &ids, &nids);
    if (!rc && s->field[0]) {
        rc = mt_engine_postings(e, MT_TERM_FIELD, nm(s->field), (mt_name){0}, &more, &nmore);
        if (!rc) nids = intersect(ids, nids, more, nmore), free(more);
    }
    for (size_t i = 0; !rc && i < s->nm; i++) {
        if (s->m[i].op != MT_MATCH_EQ || !s->m[i].value[0] || s->m[i].is_name) continue;
        rc = mt_engine_postings(e, MT_TERM_TAG, nm(s->m[i].key), nm(s->m[i].value), &more, &nmore);
        if (!rc) nids = intersect(ids, nids, more, nmore), free(more);
    }
    /* the other matchers look at each candidate's tags */
    char key[MT_SERIES_MAX_KEY];
    mt_series_parts *parts = malloc(sizeof *parts);
    if (!rc && !parts) rc = -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; !rc && i < nids; i++) {
        size_t kl;
        bool keep = true;
        bool need = false;
        for (size_t j = 0; j < s->nm; j++)
            need |= s->m[j].op != MT_MATCH_EQ || !s->m[j].value[0] || s->m[j].is_name;
        if (need) {
            if (mt_engine_series_key(e, ids[i], key, sizeof key, &kl) ||
                mt_series_parse(key, kl, parts))
                continue;
            for (size_t j = 0; j < s->nm && keep; j++) keep = matches(&s->m[j], parts);
        }
        if (keep) ids[k++] = ids[i];
    }
    free(parts);
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = k;
    return MT_OK;
}
