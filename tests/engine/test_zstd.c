/* test_zstd.c — engine/mt_zstd.h: round trips, and every zstd failure mapped once. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_err.h"
#include "mt_zstd.h"

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i % 7 == 0 ? i : 'a' + i % 3);
}

Test(zstd, frames_round_trip_with_and_without_contexts)
{
    enum { N = 10000 };
    static uint8_t raw[N], back[N];
    fill(raw, N);
    size_t cap = mt_zstd_bound(N);
    uint8_t *z = malloc(cap);
    cr_assert(z);
    mt_zstd_c *c;
    mt_zstd_d *d;
    cr_assert_eq(mt_zstd_c_new(&c), MT_OK);
    cr_assert_eq(mt_zstd_d_new(&d), MT_OK);
    for (int with = 0; with < 2; with++) {
        size_t zn = 0;
        cr_assert_eq(mt_zstd_compress(with ? c : NULL, z, cap, raw, N, 3, &zn), MT_OK);
        cr_expect_lt(zn, N / 4, "repetitive bytes compress: %zu", zn);
        uint64_t size = 0;
        cr_expect_eq(mt_zstd_frame_size(z, zn, &size), MT_OK);
        cr_expect_eq(size, N, "the frame records its size");
        memset(back, 0, N);
        cr_expect_eq(mt_zstd_decompress(with ? d : NULL, back, N, z, zn), MT_OK);
        cr_expect_arr_eq(back, raw, N);
    }
    mt_zstd_c_free(c);
    mt_zstd_d_free(d);
    mt_zstd_c_free(NULL);
    mt_zstd_d_free(NULL);
    free(z);
}

Test(zstd, a_damaged_frame_or_another_size_is_corrupt)
{
    uint8_t raw[4096], back[4096], z[8192];
    fill(raw, sizeof raw);
    size_t zn = 0;
    cr_assert_eq(mt_zstd_compress(NULL, z, sizeof z, raw, sizeof raw, 1, &zn), MT_OK);
    /* fewer bytes than the frame holds, and more */
    cr_expect_eq(mt_zstd_decompress(NULL, back, sizeof raw - 1, z, zn), MT_ECORRUPT);
    uint8_t big[5000];
    cr_expect_eq(mt_zstd_decompress(NULL, big, sizeof big, z, zn), MT_ECORRUPT);
    cr_expect_eq(mt_zstd_decompress(NULL, back, sizeof raw, z, zn - 1), MT_ECORRUPT, "cut short");
    z[0] ^= 0xff; /* the magic number */
    cr_expect_eq(mt_zstd_decompress(NULL, back, sizeof raw, z, zn), MT_ECORRUPT);
    uint64_t size;
    cr_expect_eq(mt_zstd_frame_size(z, zn, &size), MT_ECORRUPT);
    cr_expect_eq(mt_zstd_frame_size("abc", 3, &size), MT_ECORRUPT);
}

Test(zstd, compressing_into_too_little_room_is_invalid_not_corrupt)
{
    uint8_t raw[4096], z[16];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 2654435761u >> 13);
    size_t zn = 12345;
    cr_expect_eq(mt_zstd_compress(NULL, z, sizeof z, raw, sizeof raw, 3, &zn), MT_EINVAL);
    cr_expect_eq(zn, 12345, "*zn untouched on failure");
    cr_expect(strlen(mt_zstd_version()) >= 5, "%s", mt_zstd_version());
}
