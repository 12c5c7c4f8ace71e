/* test_uuid.c — engine/base/mt_uuid.h: the derived ids' text, and reading UUIDs. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "mt_uuid.h"

Test(uuid, a_v8_uuid_carries_its_version_and_variant_and_the_bits_given)
{
    char s[MT_UUID_LEN + 1];
    mt_uuid_v8(0x0123456789abcdefull, 0xfedcba9876543210ull, s);
    /* the rules' and alerts' ids are stored: these exact bytes must not change */
    cr_expect_str_eq(s, "01234567-89ab-8def-bedc-ba9876543210");
    mt_uuid_v8(UINT64_MAX, UINT64_MAX, s);
    cr_expect_str_eq(s, "ffffffff-ffff-8fff-bfff-ffffffffffff");
    mt_uuid_v8(0, 0, s);
    cr_expect_str_eq(s, "00000000-0000-8000-8000-000000000000");
    cr_expect(mt_uuid_parse(s, strlen(s), NULL));
}

Test(uuid, parse_reads_the_sixteen_bytes_in_either_case)
{
    uint8_t b[16];
    const char *s = "01234567-89AB-cdef-0011-2233445566ff";
    cr_assert(mt_uuid_parse(s, strlen(s), b));
    cr_expect_arr_eq(b,
                     ((uint8_t[]){0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0x11, 0x22,
                                  0x33, 0x44, 0x55, 0x66, 0xff}),
                     16);
}

Test(uuid, parse_refuses_anything_but_8_4_4_4_12_hex_digits)
{
    const char *bad[] = {
        "",
        "01234567-89ab-cdef-0011-2233445566f",   /* short */
        "01234567-89ab-cdef-0011-2233445566ff0", /* long */
        "0123456789ab-cdef-0011-2233445566ff-",  /* dashes elsewhere */
        "01234567-89ab-cdef-0011-2233445566fg",  /* not hex */
        "01234567+89ab-cdef-0011-2233445566ff",
        "{1234567-89ab-cdef-0011-2233445566ff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect(!mt_uuid_parse(bad[i], strlen(bad[i]), NULL), "'%s'", bad[i]);
    /* the length given counts, not the NUL */
    const char *s = "01234567-89ab-cdef-0011-2233445566ffXX";
    cr_expect(mt_uuid_parse(s, 36, NULL));
    cr_expect(!mt_uuid_parse(s, 35, NULL));
}
