/*
 * fuzz_rollup.c — libFuzzer target for the decoder of stored rollup values
 * (read_hour in engine/mt_rollup.c: LMDB's MT_DB_ROLLUPS, read by metron
 * rollup, /api/v1/rollup and the PostgreSQL mirror), with each group's
 * sketch decoded as the readers do.
 *
 * read_hour is static, so this file includes mt_rollup.c itself: the
 * production file needs no seam, and the target tests its very code (the
 * library's copy of mt_rollup.o is then never linked in: every symbol it
 * defines is defined here first).
 *
 * The first input byte: bit 0 set = group rows ('G'), clear = series
 * rows ('S'); bit 1 set = the rest is a raw value, which the target
 * zstd-compresses first (to reach the row parser); clear = a stored value;
 * with bit 1, bit 2 set = the raw value is version 2's (the target puts
 * the 0x02 byte before the frame: mt_rollcodec's compact columns), clear =
 * version 1's.
 */
#include "../../engine/mt_rollup.c"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_rollup: %s\n", what);
        abort();
    }
}

static uint32_t last_id; /* series rows come in ascending ids (searched by id) */

static int fz_row(void *ud, const mt_rollup *r)
{
    mt_sketch *sk = ud;
    if (!r->group_len) {
        fz_check(r->id > last_id || (r->id == 0 && last_id == 0), "series ids not ascending");
        last_id = r->id;
    }
    size_t sum = 0;
    for (size_t i = 0; i < r->group_len; i++) sum += ((const uint8_t *)r->group)[i];
    const mt_name *names[3] = {&r->business_id, &r->measurement, &r->field};
    for (int k = 0; k < 3; k++) {
        if (r->group_len)
            fz_check(names[k]->ptr >= (const char *)r->group &&
                         names[k]->ptr + names[k]->len <= (const char *)r->group + r->group_len,
                     "a name outside its group key");
        for (size_t i = 0; i < names[k]->len; i++) sum += (uint8_t)names[k]->ptr[i];
    }
    (void)sum;
    if (r->sketch_len) {
        mt_sketch_clear(sk);
        if (mt_sketch_decode_merge(sk, r->sketch, r->sketch_len) == MT_OK) {
            double q;
            (void)mt_sketch_quantile(sk, 0.99, &q);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_zstd_d *zd;
    static mt_sketch *sk;
    if (!zd && (mt_zstd_d_new(&zd) || mt_sketch_new(&sk))) abort();
    if (size < 1) return 0;
    bool groups = data[0] & 1;
    last_id = 0;
    if (!(data[0] & 2)) {
        read_hour(zd, data + 1, size - 1, 7, groups, fz_row, sk);
        return 0;
    }
    size_t bound = 1 + mt_zstd_bound(size - 1), zl = 0, v2 = (data[0] & 4) != 0;
    uint8_t *z = malloc(bound);
    z[0] = V2;
    fz_check(!mt_zstd_compress(NULL, z + v2, bound - v2, data + 1, size - 1, 1, &zl), "compress");
    read_hour(zd, z, zl + v2, 7, groups, fz_row, sk);
    free(z);
    return 0;
}
