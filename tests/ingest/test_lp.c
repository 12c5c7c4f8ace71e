/*
 * test_lp.c — the line-protocol parser: one table row per rule and per
 * error class, then streaming, limits, counters and float exactness.
 *
 * Each row parses an input and compares a dump of what came out:
 *   accepted line  measurement|tag=value,...|field=<T><value>,...|<T|N><ts>
 *                  (T = float F, integer I, unsigned U, bool B, string S<..>;
 *                   T<ts> = timestamp given, N<ts> = receive time)
 *   rejected line  !label@line:col
 * joined by newlines, plus an optional substring of the error reason.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_lp.h"
#include "test_util.h"

#define NOW 42

typedef struct dump {
    char text[8192];
    size_t len;
    char reason[192]; /* reason of the first error */
    int stop_after;   /* on_line returns 7 after this many lines (0: never) */
    int lines;
} dump;

static void put(dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->text + d->len, sizeof d->text - d->len, fmt, ap);
    va_end(ap);
    if (n > 0) d->len += (size_t)n;
    if (d->len >= sizeof d->text) d->len = sizeof d->text - 1;
}

static void sep(dump *d)
{
    if (d->len) put(d, "\n");
}

static int on_line(void *ud, const mt_lp_line *l)
{
    dump *d = ud;
    sep(d);
    put(d, "%.*s|", (int)l->measurement.len, l->measurement.ptr);
    for (size_t i = 0; i < l->ntags; i++)
        put(d, "%s%.*s=%.*s", i ? "," : "", (int)l->tags[i].key.len, l->tags[i].key.ptr,
            (int)l->tags[i].value.len, l->tags[i].value.ptr);
    put(d, "|");
    for (size_t i = 0; i < l->nfields; i++) {
        const mt_lp_field *f = &l->fields[i];
        put(d, "%s%.*s=", i ? "," : "", (int)f->key.len, f->key.ptr);
        switch (f->type) {
        case MT_LP_FLOAT: put(d, "F%.17g", f->v.f); break;
        case MT_LP_INT: put(d, "I%lld", (long long)f->v.i); break;
        case MT_LP_UINT: put(d, "U%llu", (unsigned long long)f->v.u); break;
        case MT_LP_BOOL: put(d, "B%d", f->v.b); break;
        case MT_LP_STRING: put(d, "S<%.*s>", (int)f->v.s.len, f->v.s.ptr); break;
        }
    }
    put(d, "|%c%lld", l->has_ts ? 'T' : 'N', (long long)l->ts);
    d->lines++;
    return d->stop_after && d->lines >= d->stop_after ? 7 : 0;
}

static void on_error(void *ud, const mt_lp_error *e)
{
    dump *d = ud;
    sep(d);
    put(d, "!%s@%llu:%u", mt_lp_errcode_label(e->code), (unsigned long long)e->lineno, e->col);
    if (!d->reason[0]) snprintf(d->reason, sizeof d->reason, "%s", e->reason);
}

typedef struct lp_case {
    const char *in;
    size_t in_len;       /* 0: strlen(in) */
    const char *want;    /* the dump */
    const char *reason;  /* substring of the first error's reason, or NULL */
    mt_precision prec;   /* input precision */
    mt_lp_limits limits; /* zeros: defaults */
} lp_case;

static void run_case(const lp_case *c, size_t idx)
{
    mt_lp_options opt = mt_lp_options_default();
    opt.precision = c->prec;
    if (c->limits.max_line_len) opt.limits.max_line_len = c->limits.max_line_len;
    if (c->limits.max_tags) opt.limits.max_tags = c->limits.max_tags;
    if (c->limits.max_fields) opt.limits.max_fields = c->limits.max_fields;
    if (c->limits.max_name_len) opt.limits.max_name_len = c->limits.max_name_len;
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(&opt, &p), MT_OK);
    dump d = {0};
    mt_lp_handler h = {on_line, on_error, &d};
    size_t len = c->in_len ? c->in_len : strlen(c->in);
    /* The input is copied to an exact-size heap block so ASan catches any over-read. */
    char *in = malloc(len ? len : 1);
    memcpy(in, c->in, len);
    cr_assert_eq(mt_lp_parse(p, in, len, NOW, &h), MT_OK, "case %zu", idx);
    cr_expect_str_eq(d.text, c->want, "case %zu: input [%.*s]", idx, (int)len, c->in);
    if (c->reason)
        cr_expect(strstr(d.reason, c->reason) != NULL, "case %zu: reason [%s] lacks [%s]", idx,
                  d.reason, c->reason);
    free(in);
    mt_lp_parser_free(p);
}

/* ---- accepted input ---------------------------------------------------- */

static const lp_case accepted[] = {
    /* numbers */
    {"m f=1", 0, "m||f=F1|N42"},
    {"m f=1.0 123", 0, "m||f=F1|T123"},
    {"m f=-1.5e-3", 0, "m||f=F-0.0015|N42"},
    {"m f=.5", 0, "m||f=F0.5|N42"},
    {"m f=1.", 0, "m||f=F1|N42"},
    {"m f=1E5", 0, "m||f=F100000|N42"},
    {"m f=1e+2,g=2.5E-1", 0, "m||f=F100,g=F0.25|N42"},
    {"m f=-0", 0, "m||f=F-0|N42"},
    {"m f=0.1", 0, "m||f=F0.10000000000000001|N42"},
    {"m f=1.7976931348623157e308", 0, "m||f=F1.7976931348623157e+308|N42"},
    {"m f=3.14159265358979323846264338327950288", 0, "m||f=F3.1415926535897931|N42"},
    {"m f=4.9e-324", 0, "m||f=F4.9406564584124654e-324|N42"},
    {"m f=1e-400", 0, "m||f=F0|N42"},
    {"m f=000012.500", 0, "m||f=F12.5|N42"},
    {"m f=12i", 0, "m||f=I12|N42"},
    {"m f=-9223372036854775808i", 0, "m||f=I-9223372036854775808|N42"},
    {"m f=9223372036854775807i", 0, "m||f=I9223372036854775807|N42"},
    {"m f=18446744073709551615u,g=0u", 0, "m||f=U18446744073709551615,g=U0|N42"},
    /* booleans: all ten spellings */
    {"m a=t,b=T,c=true,d=True,e=TRUE", 0, "m||a=B1,b=B1,c=B1,d=B1,e=B1|N42"},
    {"m a=f,b=F,c=false,d=False,e=FALSE", 0, "m||a=B0,b=B0,c=B0,d=B0,e=B0|N42"},
    /* strings */
    {"m s=\"hello world\"", 0, "m||s=S<hello world>|N42"},
    {"m s=\"a\\\"b\\\\c\"", 0, "m||s=S<a\"b\\c>|N42"},
    {"m s=\"a\\nb\\,c\"", 0, "m||s=S<a\\nb\\,c>|N42"},
    {"m s=\"a,b c=d\",n=1i 9", 0, "m||s=S<a,b c=d>,n=I1|T9"},
    {"m s=\"\"", 0, "m||s=S<>|N42"},
    {"m s=\"\\\\\"", 0, "m||s=S<\\>|N42"},
    /* tags: sorted bytewise, escapes per element */
    {"m,b=2,a=1 f=1", 0, "m|a=1,b=2|f=F1|N42"},
    {"m,z=1,y=2,x=3,B=4 f=1", 0, "m|B=4,x=3,y=2,z=1|f=F1|N42"},
    {"m,ta\\ g=v\\,a\\=l f=1", 0, "m|ta g=v,a=l|f=F1|N42"},
    {"m,t=a\\b f=1", 0, "m|t=a\\b|f=F1|N42"},
    {"m,t=a\\\\,u=b f=1", 0, "m|t=a\\,u=b|f=F1|N42"},
    {"m,t=\"x\" f=1", 0, "m|t=\"x\"|f=F1|N42"},
    {"m,t=#a f=1", 0, "m|t=#a|f=F1|N42"},
    {"m,t=a\tb f=1", 0, "m|t=a\tb|f=F1|N42"},
    /* measurement escapes: only comma, space and backslash */
    {"my\\ meas\\,x f=1", 0, "my meas,x||f=F1|N42"},
    {"a\\b f=1", 0, "a\\b||f=F1|N42"},
    {"a\\=b f=1", 0, "a\\=b||f=F1|N42"},
    {"a\\\\ f=1", 0, "a\\||f=F1|N42"},
    {"a=b f=1", 0, "a=b||f=F1|N42"},
    /* field keys */
    {"m f\\ x\\=y\\,z=1", 0, "m||f x=y,z=F1|N42"},
    {"m f=1,f=2", 0, "m||f=F1,f=F2|N42"},
    {"m,f=a f=1", 0, "m|f=a|f=F1|N42"},
    /* timestamps and precision */
    {"m f=1 -1000", 0, "m||f=F1|T-1000"},
    {"m f=1 2", 0, "m||f=F1|T2000000000", NULL, MT_PREC_S},
    {"m f=1 2", 0, "m||f=F1|T2000000", NULL, MT_PREC_MS},
    {"m f=1 2", 0, "m||f=F1|T2000", NULL, MT_PREC_US},
    {"m f=1 2", 0, "m||f=F1|T120000000000", NULL, MT_PREC_M},
    {"m f=1 2", 0, "m||f=F1|T7200000000000", NULL, MT_PREC_H},
    {"m f=1 9223372036854775807", 0, "m||f=F1|T9223372036854775807"},
    /* lines, blanks, comments, whitespace */
    {"m f=1 5\r\n", 0, "m||f=F1|T5"},
    {"a f=1\nb f=2", 0, "a||f=F1|N42\nb||f=F2|N42"},
    {"a f=1\r\nb f=2\r\n", 0, "a||f=F1|N42\nb||f=F2|N42"},
    {"# comment\n\nm f=1\n   \n  # indented\n", 0, "m||f=F1|N42"},
    {"  m f=1 7  \t", 0, "m||f=F1|T7"},
    {"m  f=1   7", 0, "m||f=F1|T7"},
    {"", 0, ""},
    {"\n\n\n", 0, ""},
    /* UTF-8 */
    {"m\xc3\xa9,tag=\xe6\x97\xa5\xe6\x9c\xac f=\"\xf0\x9f\x9a\x80\"", 0,
     "m\xc3\xa9|tag=\xe6\x97\xa5\xe6\x9c\xac|f=S<\xf0\x9f\x9a\x80>|N42"},
};

Test(lp, accepted_table)
{
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) run_case(&accepted[i], i);
}

/* ---- rejected input ---------------------------------------------------- */

static const lp_case rejected[] = {
    {"m", 0, "!missing_fields@1:2", "missing fields"},
    {"m ", 0, "!missing_fields@1:2"},
    {",t=a f=1", 0, "!missing_measurement@1:1", "missing measurement"},
    {"m,t f=1", 0, "!missing_tag_value@1:3", "missing tag value for key \"t\""},
    {"m,=a f=1", 0, "!missing_tag_key@1:3", "missing tag key"},
    {"m,t= f=1", 0, "!missing_tag_value@1:5"},
    {"m,t=a, f=1", 0, "!missing_tag_key@1:7"},
    {"m,t=a=b f=1", 0, "!bad_tag@1:6", "unescaped '='"},
    {"m,a=1,a=2 f=1", 0, "!duplicate_tag@1:3", "duplicate tag key \"a\""},
    {"m,b=1,a=1,b=2 f=1", 0, "!duplicate_tag@1:3"},
    {"m f", 0, "!missing_field_value@1:3"},
    {"m =1", 0, "!missing_field_key@1:3", "missing field key"},
    {"m f=", 0, "!missing_field_value@1:5"},
    {"m f=1,", 0, "!missing_field_key@1:7"},
    {"m f=1,,g=2", 0, "!missing_field_key@1:7"},
    {"m f=12.5x", 0, "!bad_field_value@1:5", "invalid field value \"12.5x\""},
    {"m f=1.0i", 0, "!bad_field_value@1:5"},
    {"m f=1e", 0, "!bad_field_value@1:5"},
    {"m f=-", 0, "!bad_field_value@1:5"},
    {"m f=.", 0, "!bad_field_value@1:5"},
    {"m f=+1", 0, "!bad_field_value@1:5"},
    {"m f=1..2", 0, "!bad_field_value@1:5"},
    {"m f=1i2", 0, "!bad_field_value@1:5"},
    {"m f=-1u", 0, "!bad_field_value@1:5"},
    {"m f=yes", 0, "!bad_field_value@1:5"},
    {"m f=tru", 0, "!bad_field_value@1:5"},
    {"m f=t1", 0, "!bad_field_value@1:5"},
    {"m f=9223372036854775808i", 0, "!value_out_of_range@1:5", "integer value out of range"},
    {"m f=-9223372036854775809i", 0, "!value_out_of_range@1:5"},
    {"m f=18446744073709551616u", 0, "!value_out_of_range@1:5", "unsigned value out of range"},
    {"m f=NaN", 0, "!nan_inf@1:5", "NaN and Inf are not supported"},
    {"m f=-Inf", 0, "!nan_inf@1:5"},
    {"m f=inf", 0, "!nan_inf@1:5"},
    {"m f=+infinity", 0, "!nan_inf@1:5"},
    {"m f=1e309", 0, "!nan_inf@1:5", "out of range"},
    {"m f=\"abc", 0, "!unterminated_string@1:5", "unterminated string"},
    {"m f=\"abc\\\"", 0, "!unterminated_string@1:5"},
    {"m f=\"a\"b", 0, "!bad_field_value@1:8", "unexpected data after string"},
    {"m f=1 abc", 0, "!bad_timestamp@1:7", "invalid timestamp \"abc\""},
    {"m f=1 12.5", 0, "!bad_timestamp@1:7"},
    {"m f=1 -", 0, "!bad_timestamp@1:7"},
    {"m f=1 99999999999999999999", 0, "!bad_timestamp@1:7", "timestamp out of range"},
    {"m f=1 9223372037", 0, "!bad_timestamp@1:7", "out of range", MT_PREC_S},
    {"m f=1 1 2", 0, "!trailing_data@1:9", "unexpected data after timestamp"},
    {"m\\", 0, "!trailing_backslash@1:2", "lone backslash"},
    {"m,t=a\\", 0, "!trailing_backslash@1:6"},
    {"m f\\", 0, "!trailing_backslash@1:4"},
    {"m,t=\xff f=1", 0, "!bad_encoding@1:5", "invalid UTF-8"},
    {"m,t=a\0b f=1", 11, "!bad_encoding@1:6", "NUL byte"},
    {"m,t=\xc0\xaf f=1", 0, "!bad_encoding@1:5"},
    {"m,t=\xed\xa0\x80 f=1", 0, "!bad_encoding@1:5"},
    {"m,t=\xf4\x90\x80\x80 f=1", 0, "!bad_encoding@1:5"},
    {"m,t=\xe6\x97 f=1", 0, "!bad_encoding@1:5"},
    {"m,a=1,b=2,c=3 f=1",
     0,
     "!too_many_tags@1:11",
     "too many tags (limit 2)",
     MT_PREC_NS,
     {.max_tags = 2}},
    {"m a=1,b=2,c=3",
     0,
     "!too_many_fields@1:11",
     "too many fields (limit 2)",
     MT_PREC_NS,
     {.max_fields = 2}},
    {"measurement f=1",
     0,
     "!name_too_long@1:1",
     "name too long (11 bytes, limit 4)",
     MT_PREC_NS,
     {.max_name_len = 4}},
    {"m,t=value f=1", 0, "!name_too_long@1:5", NULL, MT_PREC_NS, {.max_name_len = 4}},
    {"m,t=v\\,v\\,v f=1", 0, "!name_too_long@1:5", NULL, MT_PREC_NS, {.max_name_len = 4}},
    {"m f=1\nm f=1234567890123456\nm f=2",
     0,
     "m||f=F1|N42\n!line_too_long@2:1\nm||f=F2|N42",
     "line too long (limit 16 bytes)",
     MT_PREC_NS,
     {.max_line_len = 16}},
    /* partial batches: good lines beside bad ones are kept, numbering goes on */
    {"a f=1\nbad\nc f=2", 0, "a||f=F1|N42\n!missing_fields@2:4\nc||f=F2|N42"},
    {"# c\n  x f=oops\ny f=1i 3", 0, "!bad_field_value@2:7\ny||f=I1|T3"},
};

Test(lp, rejected_table)
{
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) run_case(&rejected[i], i);
}

Test(lp, error_text_names_line_column_and_reason)
{
    const char *in = "cpu f=1\n\n\ncpu,host=a,region=eu usage=12.5x 1\n";
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    dump d = {0};
    mt_lp_handler h = {on_line, on_error, &d};
    cr_assert_eq(mt_lp_parse(p, in, strlen(in), NOW, &h), MT_OK);
    mt_lp_error e = {.code = MT_LP_E_BAD_FIELD_VALUE, .lineno = 4, .col = 28};
    snprintf(e.reason, sizeof e.reason, "%s", d.reason);
    char msg[256];
    mt_lp_error_format(&e, msg, sizeof msg);
    cr_expect_str_eq(d.text, "cpu||f=F1|N42\n!bad_field_value@4:28");
    cr_expect_str_eq(msg, "line 4 col 28: invalid field value \"12.5x\"");
    mt_lp_parser_free(p);
}

/* ---- streaming --------------------------------------------------------- */

static const char stream_input[] = "# header\r\n"
                                   "cpu,host=a\\ b,region=eu usage=1.5,idle=2i 1000\r\n"
                                   "mem,host=a used=\"x\\\"y\" 2000\n"
                                   "broken line here\n"
                                   "\n"
                                   "net,host=b bytes=3u,up=true\n"
                                   "disk,b=1,a=2 r=-4e2";

static void parse_whole(const char *in, size_t len, dump *d)
{
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    mt_lp_handler h = {on_line, on_error, d};
    cr_assert_eq(mt_lp_parse(p, in, len, NOW, &h), MT_OK);
    mt_lp_parser_free(p);
}

Test(lp, split_at_every_byte_boundary)
{
    size_t len = strlen(stream_input);
    dump whole = {0};
    parse_whole(stream_input, len, &whole);
    cr_assert(strstr(whole.text, "!missing_field_value@4:8") != NULL, "%s", whole.text);
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    for (size_t cut = 0; cut <= len; cut++) {
        dump d = {0};
        mt_lp_handler h = {on_line, on_error, &d};
        char *a = malloc(cut ? cut : 1), *b = malloc(len - cut ? len - cut : 1);
        memcpy(a, stream_input, cut);
        memcpy(b, stream_input + cut, len - cut);
        cr_assert_eq(mt_lp_feed(p, a, cut, NOW, &h), MT_OK);
        cr_assert_eq(mt_lp_feed(p, b, len - cut, NOW, &h), MT_OK);
        cr_assert_eq(mt_lp_finish(p, NOW, &h), MT_OK);
        cr_assert_str_eq(d.text, whole.text, "cut at %zu", cut);
        free(a);
        free(b);
    }
    mt_lp_parser_free(p);
}

Test(lp, split_into_random_pieces)
{
    uint64_t seed = mt_test_seed();
    size_t len = strlen(stream_input);
    dump whole = {0};
    parse_whole(stream_input, len, &whole);
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    for (int round = 0; round < 500; round++) {
        dump d = {0};
        mt_lp_handler h = {on_line, on_error, &d};
        size_t off = 0;
        while (off < len) {
            size_t n = 1 + mt_test_rand(&seed) % 9;
            if (n > len - off) n = len - off;
            cr_assert_eq(mt_lp_feed(p, stream_input + off, n, NOW, &h), MT_OK);
            off += n;
        }
        cr_assert_eq(mt_lp_finish(p, NOW, &h), MT_OK);
        cr_assert_str_eq(d.text, whole.text, "round %d (MT_TEST_SEED=%llu)", round,
                         (unsigned long long)mt_test_seed());
    }
    mt_lp_parser_free(p);
}

Test(lp, overlong_line_in_a_stream_is_rejected_once_and_not_buffered)
{
    mt_lp_options opt = mt_lp_options_default();
    opt.limits.max_line_len = 32;
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(&opt, &p), MT_OK);
    dump d = {0};
    mt_lp_handler h = {on_line, on_error, &d};
    cr_assert_eq(mt_lp_feed(p, "a f=1\nb f=", 10, NOW, &h), MT_OK);
    char chunk[100];
    memset(chunk, '9', sizeof chunk);
    for (int i = 0; i < 50; i++) cr_assert_eq(mt_lp_feed(p, chunk, sizeof chunk, NOW, &h), MT_OK);
    cr_assert_eq(mt_lp_feed(p, "\nc f=2\n", 7, NOW, &h), MT_OK);
    cr_assert_eq(mt_lp_finish(p, NOW, &h), MT_OK);
    cr_expect_str_eq(d.text, "a||f=F1|N42\n!line_too_long@2:1\nc||f=F2|N42");
    cr_expect(strstr(d.reason, "limit 32 bytes") != NULL, "%s", d.reason);
    /* A single feed holding the whole overlong tail is cut off the same way. */
    dump d2 = {0};
    mt_lp_handler h2 = {on_line, on_error, &d2};
    char big[200];
    memset(big, 'x', sizeof big);
    cr_assert_eq(mt_lp_feed(p, big, sizeof big, NOW, &h2), MT_OK);
    cr_assert_eq(mt_lp_feed(p, "y\nz f=3i", 8, NOW, &h2), MT_OK);
    cr_assert_eq(mt_lp_finish(p, NOW, &h2), MT_OK);
    cr_expect_str_eq(d2.text, "!line_too_long@1:1\nz||f=I3|N42");
    mt_lp_parser_free(p);
}

Test(lp, line_numbers_continue_across_feeds_and_restart_after_finish)
{
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    dump d = {0};
    mt_lp_handler h = {on_line, on_error, &d};
    cr_assert_eq(mt_lp_feed(p, "a f=1\n", 6, NOW, &h), MT_OK);
    cr_assert_eq(mt_lp_feed(p, "\nb\n", 3, NOW, &h), MT_OK);
    cr_assert_eq(mt_lp_finish(p, NOW, &h), MT_OK);
    cr_assert_eq(mt_lp_feed(p, "c\n", 2, NOW, &h), MT_OK);
    cr_expect_str_eq(d.text, "a||f=F1|N42\n!missing_fields@3:2\n!missing_fields@1:2");
    mt_lp_parser_free(p);
}

Test(lp, a_nonzero_callback_result_stops_the_parse)
{
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    dump d = {.stop_after = 2};
    mt_lp_handler h = {on_line, on_error, &d};
    const char *in = "a f=1\nb f=2\nc f=3\n";
    cr_assert_eq(mt_lp_parse(p, in, strlen(in), NOW, &h), 7);
    cr_expect_str_eq(d.text, "a||f=F1|N42\nb||f=F2|N42");
    mt_lp_parser_free(p);
}

Test(lp, counters_by_reason)
{
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    mt_lp_handler h = {NULL, NULL, NULL};
    const char *in = "a f=1,g=2\nb\nc f=x\nd f=NaN\n#c\ne f=1\n";
    cr_assert_eq(mt_lp_parse(p, in, strlen(in), NOW, &h), MT_OK);
    const mt_lp_counts *c = mt_lp_parser_counts(p);
    cr_expect_eq(c->lines, 2);
    cr_expect_eq(c->points, 3);
    cr_expect_eq(c->rejected, 3);
    cr_expect_eq(c->bytes, strlen(in));
    cr_expect_eq(c->rejected_by[MT_LP_E_MISSING_FIELDS], 1);
    cr_expect_eq(c->rejected_by[MT_LP_E_BAD_FIELD_VALUE], 1);
    cr_expect_eq(c->rejected_by[MT_LP_E_NAN_INF], 1);
    cr_expect_str_eq(mt_lp_errcode_label(MT_LP_E_NAN_INF), "nan_inf");
    cr_expect_str_eq(mt_lp_errcode_label((mt_lp_errcode)999), "unknown");
    mt_lp_parser_free(p);
}

Test(lp, unescaped_names_survive_until_the_callback_returns)
{
    /* Escaped names share the parser's scratch space; none may overwrite another. */
    const char *in = "m\\ 1,k\\ 1=v\\ 1,k\\ 2=v\\,2 f\\ 1=1,f\\=2=\"s\\\"\" 5";
    dump d = {0};
    parse_whole(in, strlen(in), &d);
    cr_expect_str_eq(d.text, "m 1|k 1=v 1,k 2=v,2|f 1=F1,f=2=S<s\">|T5");
}

Test(lp, options_are_validated)
{
    mt_lp_options opt = mt_lp_options_default();
    opt.precision = (mt_precision)99;
    mt_lp_parser *p = NULL;
    cr_expect_eq(mt_lp_parser_new(&opt, &p), MT_EINVAL);
    cr_expect_null(p);
    mt_lp_parser_free(NULL);
}

/* ---- float exactness ----------------------------------------------------- */

/* Every decimal the parser reads must equal strtod's correctly rounded result, bit for bit. */
Test(lp, floats_are_correctly_rounded)
{
    uint64_t seed = mt_test_seed();
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    char line[128], num[96];
    for (int i = 0; i < 200000; i++) {
        uint64_t r = mt_test_rand(&seed);
        int digits = 1 + (int)(r % 24), point = (int)((r >> 8) % (digits + 1));
        char *q = num;
        if ((r >> 16) & 1) *q++ = '-';
        for (int k = 0; k < digits; k++) {
            if (k == point && k) *q++ = '.';
            *q++ = (char)('0' + mt_test_rand(&seed) % 10);
        }
        if ((r >> 17) & 1) q += sprintf(q, "e%d", (int)((r >> 20) % 700) - 350);
        *q = '\0';
        double want = strtod(num, NULL);
        if (isinf(want)) continue;
        int n = snprintf(line, sizeof line, "m f=%s", num);
        dump d = {0};
        mt_lp_handler h = {on_line, on_error, &d};
        cr_assert_eq(mt_lp_parse(p, line, (size_t)n, NOW, &h), MT_OK);
        char expect[128];
        snprintf(expect, sizeof expect, "m||f=F%.17g|N42", want);
        cr_assert_str_eq(d.text, expect, "input %s (MT_TEST_SEED=%llu)", num,
                         (unsigned long long)mt_test_seed());
    }
    mt_lp_parser_free(p);
}

Test(lp, integers_round_trip)
{
    uint64_t seed = mt_test_seed();
    mt_lp_parser *p;
    cr_assert_eq(mt_lp_parser_new(NULL, &p), MT_OK);
    for (int i = 0; i < 100000; i++) {
        uint64_t u = mt_test_rand(&seed) >> (mt_test_rand(&seed) % 64);
        int64_t s = (int64_t)mt_test_rand(&seed) >> (mt_test_rand(&seed) % 64);
        char line[96], expect[128];
        int n = snprintf(line, sizeof line, "m a=%lldi,b=%lluu %lld", (long long)s,
                         (unsigned long long)u, (long long)(s / 2));
        snprintf(expect, sizeof expect, "m||a=I%lld,b=U%llu|T%lld", (long long)s,
                 (unsigned long long)u, (long long)(s / 2));
        dump d = {0};
        mt_lp_handler h = {on_line, on_error, &d};
        cr_assert_eq(mt_lp_parse(p, line, (size_t)n, NOW, &h), MT_OK);
        cr_assert_str_eq(d.text, expect);
    }
    mt_lp_parser_free(p);
}
