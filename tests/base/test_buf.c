/* test_buf.c — engine/base/mt_buf.h: mt_grow and the growable string. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_err.h"

Test(buf, grow_doubles_from_first_and_keeps_the_elements)
{
    uint32_t *a = NULL;
    size_t cap = 0;
    cr_assert_eq(mt_grow(&a, &cap, 1, sizeof *a, 16), MT_OK);
    cr_expect_eq(cap, 16);
    for (uint32_t i = 0; i < 16; i++) a[i] = i * 7;
    uint32_t *before = a;
    cr_assert_eq(mt_grow(&a, &cap, 16, sizeof *a, 16), MT_OK);
    cr_expect_eq(cap, 16, "room enough: nothing done");
    cr_expect_eq(a, before);
    cr_assert_eq(mt_grow(&a, &cap, 17, sizeof *a, 16), MT_OK);
    cr_expect_eq(cap, 32);
    cr_assert_eq(mt_grow(&a, &cap, 100, sizeof *a, 16), MT_OK);
    cr_expect_eq(cap, 128, "doubled until it holds the need");
    for (uint32_t i = 0; i < 16; i++) cr_expect_eq(a[i], i * 7);
    a[127] = 1; /* under ASan: the room is really there */
    free(a);
}

Test(buf, grow_fails_without_touching_the_array_when_the_size_overflows)
{
    uint64_t *a = NULL;
    size_t cap = 0;
    cr_assert_eq(mt_grow(&a, &cap, 4, sizeof *a, 4), MT_OK);
    a[3] = 42;
    uint64_t *before = a;
    cr_expect_eq(mt_grow(&a, &cap, SIZE_MAX / 4, sizeof *a, 4), -ENOMEM);
    cr_expect_eq(a, before);
    cr_expect_eq(cap, 4);
    cr_expect_eq(a[3], 42);
    free(a);
}

Test(buf, a_string_grows_stays_terminated_and_takes_long_printf)
{
    mt_sbuf b = {0};
    mt_sb_puts(&b, "abc");
    cr_expect_str_eq(b.p, "abc");
    for (int i = 0; i < 1000; i++) mt_sb_put(&b, "0123456789", 10);
    cr_expect_eq(b.len, 10003);
    cr_expect_eq(b.p[b.len], '\0');
    cr_expect_geq(b.cap, b.len + 1);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t len = b.len;
    mt_sb_printf(&b, "[%s|%d]", big, 7);
    cr_expect_eq(b.len, len + 999 + 4, "longer than the stack buffer: nothing cut");
    cr_expect_str_eq(b.p + b.len - 3, "|7]");
    cr_expect(!b.oom);
    mt_sb_free(&b);
    cr_expect_null(b.p);
    cr_expect_eq(b.len, 0);
}
