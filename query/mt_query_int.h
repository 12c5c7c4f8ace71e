/* mt_query_int.h — query internals: the parsed selector (mt_selector.c). */
#ifndef MT_QUERY_INT_H
#define MT_QUERY_INT_H

#include <regex.h>

#include "mt_query.h"

#define MT_SELECTOR_MAX_MATCHERS 32

typedef enum { MT_MATCH_EQ, MT_MATCH_NE, MT_MATCH_RE, MT_MATCH_NRE } mt_match_op;

typedef struct mt_matcher {
    char key[256];
    char value[1024];
    mt_match_op op;
    regex_t re; /* =~ and !~, anchored */
    bool has_re;
} mt_matcher;

typedef struct mt_selector {
    char measurement[512];
    char field[512]; /* empty: every field */
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

#endif
