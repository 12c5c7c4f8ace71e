/* mt_query_int.h — query internals: the parsed selector (mt_selector.c). */
#ifndef MT_QUERY_INT_H
#define MT_QUERY_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_query.h"

#define MT_SELECTOR_MAX_MATCHERS 32
#define MT_SELECTOR_NAME         "__name__" /* a matcher on the measurement, as PromQL's */

typedef enum { MT_MATCH_EQ, MT_MATCH_NE, MT_MATCH_RE, MT_MATCH_NRE } mt_match_op;

typedef struct mt_matcher {
    char key[256];
    char value[1024];
    mt_match_op op;
    regex_t re; /* =~ and !~, anchored */
    bool has_re;
    bool is_name; /* the key is MT_SELECTOR_NAME: the matcher looks at the measurement */
} mt_matcher;

typedef struct mt_selector {
    char measurement[512]; /* empty: every measurement ("{...}" or "*") */
    char field[512];       /* empty: every field */
    mt_matcher m[MT_SELECTOR_MAX_MATCHERS];
    size_t nm;
} mt_selector;

/* Parse text (field, when given, overrides a '.field' suffix). MT_OK or MT_EPARSE with err. */
int mt_selector_parse(const char *text, const char *field, mt_selector *s, char *err, size_t cap);
void mt_selector_free(mt_selector *s);
/*
 * Narrow s to one tenant: the series whose business_id tag is tenant, whatever
 * else the selector says (an equality matcher ANDed with the others). MT_OK,
 * or MT_EPARSE with err when s already has MT_SELECTOR_MAX_MATCHERS matchers.
 */
int mt_selector_restrict(mt_selector *s, const char *tenant, char *err, size_t cap);
/* The sorted ids of the matching series; *ids malloc'd (caller frees). */
int mt_selector_resolve(mt_engine *e, const mt_selector *s, uint32_t **ids, size_t *n);
/* Write the reason into err (cap bytes; err may be NULL) and return MT_EPARSE: the parsers'
   one way to fail. */
__attribute__((format(printf, 3, 4))) int mt_query_perr(char *err, size_t cap, const char *fmt,
                                                        ...);
/* Compile m->value as a POSIX extended regular expression anchored at both ends into m->re
   (m->has_re set). 0, or regcomp's error with its text in why (cap bytes). */
int mt_matcher_regcomp(mt_matcher *m, char *why, size_t cap);
/* The match operator at *p (=~ !~ != =), *p moved past it; false when there is none. */
bool mt_match_op_parse(const char **p, mt_match_op *op);
/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one (overlong, a
   surrogate, past U+10FFFF, cut short): the exposition format and PromQL's JSON replace it. */
size_t mt_query_utf8_seq(const unsigned char *s, size_t n);
/* Every series id the engine knows, ascending (*out malloc'd, the caller frees). MT_OK or
   -ENOMEM. */
int mt_query_all_ids(mt_engine *e, uint32_t **out, size_t *n);

/* Whether m takes val (an absent label is ""). */
bool mt_matcher_match(const mt_matcher *m, const char *val);

/*
 * Why the regular expression re would cost glibc's regcomp too much (stacked
 * repetition operators, counts over 100), or NULL when it may be compiled
 * (mt_fed.c; label_replace's expressions go through it too).
 */
const char *mt_regex_too_costly(const char *re);

/* A Prometheus series selector (mt_fed.c): the metric name is an __name__ matcher. */
typedef struct mt_psel {
    mt_matcher m[MT_SELECTOR_MAX_MATCHERS];
    size_t nm;
} mt_psel;

/*
 * Parse the selector at text (grammar in mt_fed.h). end NULL: nothing may
 * follow it; else *end is set past it (a range, offset or operator may
 * follow, for the caller to read). MT_OK, or MT_EPARSE with err; free with
 * mt_psel_free either way.
 */
int mt_psel_parse(const char *text, const char **end, mt_psel *s, char *err, size_t cap);
void mt_psel_free(mt_psel *s);

/* One series as Prometheus sees it (mt_fed.h's mapping). */
typedef struct mt_fed_series {
    uint32_t id;
    size_t nlabels; /* pairs in kv: __name__ first, then the labels in the series key's order */
    char **kv;      /* name, value, name, value... (one malloc'd block with the text) */
    char *ident;    /* name{a="x",...} as /federate writes it (malloc'd) */
} mt_fed_series;

/*
 * Every non-string series the reader may see (tenant NULL: all), one per
 * distinct name and labels (the first by id), sorted by ident: *out
 * malloc'd, freed with mt_fed_catalog_free. MT_OK; MT_ELIMIT over max
 * (0: 100000) with err; -ENOMEM. O(series).
 */
int mt_fed_catalog(mt_engine *e, const char *tenant, size_t max, mt_fed_series **out, size_t *n,
                   char *err, size_t errcap);
void mt_fed_catalog_free(mt_fed_series *s, size_t n);

/* mt_sbuf, the growable string of mt_fed.c and mt_promql.c, is mt_buf.h's. */

#endif
