/* test_json.c — engine/base/mt_json.h: the one JSON string escaper. */
#include <criterion/criterion.h>
#include <string.h>

#include "mt_json.h"

typedef struct sink {
    char s[256];
    size_t len;
    int calls;
} sink;

static void put(void *ud, const char *s, size_t n)
{
    sink *k = ud;
    cr_assert_lt(k->len + n, sizeof k->s);
    memcpy(k->s + k->len, s, n);
    k->len += n;
    k->s[k->len] = '\0';
    k->calls++;
}

Test(json, quotes_backslashes_and_control_bytes_are_escaped_the_rest_kept)
{
    sink k = {0};
    const char in[] = "a\"b\\c\n\x01\x1f\x7f h\xc3\xa9\xff";
    mt_json_str(in, sizeof in - 1, put, &k);
    cr_expect_str_eq(k.s, "\"a\\\"b\\\\c\\u000a\\u0001\\u001f\x7f h\xc3\xa9\xff\"");
}

Test(json, a_nul_inside_the_length_is_escaped_not_an_end)
{
    sink k = {0};
    mt_json_str("a\0b", 3, put, &k);
    cr_expect_str_eq(k.s, "\"a\\u0000b\"");
    k = (sink){0};
    mt_json_body("x\"", 2, put, &k);
    cr_expect_str_eq(k.s, "x\\\"", "the body has no quotes of its own");
}

Test(json, plain_runs_go_out_in_one_call)
{
    sink k = {0};
    mt_json_str("hello world", 11, put, &k);
    cr_expect_str_eq(k.s, "\"hello world\"");
    cr_expect_eq(k.calls, 3, "quote, the run, quote: %d calls", k.calls);
    k = (sink){0};
    mt_json_str("", 0, put, &k);
    cr_expect_str_eq(k.s, "\"\"");
}

Test(json, escape_into_a_buffer_stops_before_an_escape_that_does_not_fit)
{
    char out[16];
    size_t pos = mt_json_escape(out, sizeof out, 0, "ab\"c", 4);
    cr_expect_str_eq(out, "ab\\\"c");
    cr_expect_eq(pos, 5);
    pos = mt_json_escape(out, sizeof out, pos, "\x01\x02", 2);
    cr_expect_str_eq(out, "ab\\\"c\\u0001", "the second \\u0002 needs 6 more bytes, 4 are left");
    cr_expect_eq(pos, 11);
    pos = mt_json_escape(out, sizeof out, pos, "xyzwvu", 6);
    cr_expect_eq(pos, 15, "filled to the NUL");
    cr_expect_str_eq(out, "ab\\\"c\\u0001xyzw");
}
