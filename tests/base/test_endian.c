/* test_endian.c — engine/base/mt_endian.h: byte order on any host, round trips. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "mt_endian.h"

Test(endian, big_endian_stores_the_most_significant_byte_first)
{
    uint8_t b[8];
    mt_store_be32(b, 0x01020304u);
    cr_expect_arr_eq(b, ((uint8_t[]){1, 2, 3, 4}), 4);
    mt_store_be64(b, 0x0102030405060708ull);
    cr_expect_arr_eq(b, ((uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}), 8);
    cr_expect_eq(mt_load_be32((uint8_t[]){0xde, 0xad, 0xbe, 0xef}), 0xdeadbeefu);
    cr_expect_eq(mt_load_be64(b), 0x0102030405060708ull);
}

Test(endian, little_endian_stores_the_least_significant_byte_first)
{
    uint8_t b[4];
    mt_store_le32(b, 0x01020304u);
    cr_expect_arr_eq(b, ((uint8_t[]){4, 3, 2, 1}), 4);
    cr_expect_eq(mt_load_le32((uint8_t[]){0xef, 0xbe, 0xad, 0xde}), 0xdeadbeefu);
    mt_put_le(b, 0xaabbcc, 3);
    cr_expect_arr_eq(b, ((uint8_t[]){0xcc, 0xbb, 0xaa}), 3);
    cr_expect_eq(mt_get_le(b, 3), 0xaabbccu);
}

Test(endian, big_endian_keys_sort_as_their_numbers)
{
    /* LMDB compares keys with memcmp: the order of the bytes must be the order of the values */
    uint32_t v[] = {0, 1, 255, 256, 65535, 65536, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i + 1 < sizeof v / sizeof *v; i++) {
        uint8_t a[4], b[4];
        mt_store_be32(a, v[i]);
        mt_store_be32(b, v[i + 1]);
        cr_expect_lt(memcmp(a, b, 4), 0, "%u before %u", v[i], v[i + 1]);
        cr_expect_eq(mt_load_be32(a), v[i]);
    }
}

Test(endian, any_width_round_trips_unaligned)
{
    uint8_t buf[16];
    for (int bytes = 1; bytes <= 8; bytes++) {
        uint64_t max = bytes == 8 ? UINT64_MAX : (1ull << (8 * bytes)) - 1;
        uint64_t v = 0x8877665544332211ull & max;
        mt_put_be(buf + 1, v, bytes);
        cr_expect_eq(mt_get_be(buf + 1, bytes), v, "%d bytes", bytes);
        cr_expect_eq(buf[1], (uint8_t)(v >> (8 * (bytes - 1))), "%d bytes", bytes);
        mt_put_le(buf + 3, v, bytes);
        cr_expect_eq(mt_get_le(buf + 3, bytes), v, "%d bytes", bytes);
        cr_expect_eq(buf[3], (uint8_t)v, "%d bytes", bytes);
    }
}
