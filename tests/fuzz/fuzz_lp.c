/*
 * fuzz_lp.c — libFuzzer target for the line-protocol parser.
 *
 * Besides memory safety, it checks one property: parsing a buffer whole
 * and feeding it in two pieces (split where the first input byte says)
 * give the same lines and errors. Small limits make the limit paths reachable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_lp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct digest {
    uint64_t h; /* FNV-1a over everything reported */
    uint64_t n; /* lines + errors */
} digest;

static void mix(digest *d, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) d->h = (d->h ^ s[i]) * 0x100000001b3ull;
}

static void mix_str(digest *d, mt_lp_str s)
{
    mix(d, &s.len, sizeof s.len);
    mix(d, s.ptr, s.len);
}

static int on_line(void *ud, const mt_lp_line *l)
{
    digest *d = ud;
    d->n++;
    mix(d, &l->lineno, sizeof l->lineno);
    mix_str(d, l->measurement);
    for (size_t i = 0; i < l->ntags; i++) {
        mix_str(d, l->tags[i].key);
        mix_str(d, l->tags[i].value);
    }
    for (size_t i = 0; i < l->nfields; i++) {
        const mt_lp_field *f = &l->fields[i];
        mix_str(d, f->key);
        mix(d, &f->type, sizeof f->type);
        if (f->type == MT_LP_STRING)
            mix_str(d, f->v.s);
        else if (f->type == MT_LP_BOOL)
            mix(d, &f->v.b, sizeof f->v.b);
        else
            mix(d, &f->v.u, sizeof f->v.u);
    }
    mix(d, &l->ts, sizeof l->ts);
    return 0;
}

static void on_error(void *ud, const mt_lp_error *e)
{
    digest *d = ud;
    d->n++;
    mix(d, &e->lineno, sizeof e->lineno);
    mix(d, &e->code, sizeof e->code);
    mix(d, &e->col, sizeof e->col);
    mix(d, e->reason, strlen(e->reason));
    mix_str(d, e->raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = data[0] % (size);
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (cut > len) cut = len;

    mt_lp_options opt = mt_lp_options_default();
    opt.limits =
        (mt_lp_limits){.max_line_len = 200, .max_tags = 4, .max_fields = 6, .max_name_len = 24};
    opt.precision = (mt_precision)(data[0] % 6);
    mt_lp_parser *p;
    if (mt_lp_parser_new(&opt, &p)) return 0;

    digest whole = {0xcbf29ce484222325ull, 0}, split = whole;
    mt_lp_handler hw = {on_line, on_error, &whole}, hs = {on_line, on_error, &split};
    mt_lp_parse(p, in, len, 7, &hw);
    mt_lp_feed(p, in, cut, 7, &hs);
    mt_lp_feed(p, in + cut, len - cut, 7, &hs);
    mt_lp_finish(p, 7, &hs);
    if (whole.h != split.h || whole.n != split.n) {
        fprintf(stderr, "fuzz_lp: whole and split parses differ (cut %zu)\n", cut);
        abort();
    }
    mt_lp_parser_free(p);
    return 0;
}
