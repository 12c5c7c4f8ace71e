/*
 * fuzz_headrec.c — libFuzzer target for the head-log record decoder
 * (mt_rec_replay), which reads LMDB's MT_DB_HEAD values at every start.
 *
 * The first input byte picks what the rest is:
 *   0: a stored record (version, raw length, checksum, zstd frame)
 *   1: a raw record body of version 1: the target compresses it and writes
 *      the header with the right checksum, so the point decoder is reached
 *   3: the same for version 2 (the version written)
 *   2, 4+: points to record with mt_rec_add: replay must give them back
 * Series types come from the id (id % MT_VT_COUNT), as the index would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_headrec: %s\n", what);
        abort();
    }
}

static mt_vtype type_of(void *ud, uint32_t id)
{
    (void)ud;
    return (mt_vtype)(id % MT_VT_COUNT);
}

/* Any point: its string must be readable. */
static int touch(void *ud, const mt_rec_point *p)
{
    size_t *sum = ud;
    if (type_of(NULL, p->id) == MT_VT_STRING)
        for (size_t i = 0; i < p->v.u; i++) *sum += (uint8_t)p->str[i];
    return 0;
}

typedef struct expect {
    const uint32_t *id;
    const int64_t *ts;
    const uint64_t *u;
    const uint8_t *strs;
    size_t n, at;
} expect;

static int same(void *ud, const mt_rec_point *p)
{
    expect *x = ud;
    check(x->at < x->n, "more points than recorded");
    size_t i = x->at++;
    check(p->id == x->id[i] && p->ts == x->ts[i], "id or timestamp changed");
    if (type_of(NULL, p->id) == MT_VT_STRING)
        check(p->v.u == x->u[i] % 8 && memcmp(p->str, x->strs, p->v.u) == 0, "string changed");
    else
        check(p->v.u == x->u[i], "value changed");
    return 0;
}

static void round_trip(const uint8_t *d, size_t n)
{
    size_t k = n / 13; /* u32 id, u8 ts step, u64 value */
    if (!k) return;
    uint32_t *id = malloc(k * sizeof *id);
    int64_t *ts = malloc(k * sizeof *ts);
    uint64_t *u = malloc(k * sizeof *u);
    mt_recbuf r = {0};
    mt_rec_reset(&r);
    int64_t t = -5;
    for (size_t i = 0; i < k; i++) {
        const uint8_t *p = d + 13 * i;
        id[i] = (uint32_t)mt_get_le(p, 4) | 1; /* never 0 */
        t += (int8_t)p[4] * (p[4] & 1 ? 1000000007LL : 1);
        ts[i] = t;
        u[i] = mt_get_le(p + 5, 8);
        mt_vtype ty = type_of(NULL, id[i]);
        if (ty == MT_VT_BOOL) u[i] &= 1;
        mt_val v = {.u = ty == MT_VT_STRING ? u[i] % 8 : u[i]};
        check(mt_rec_add(&r, id[i], ts[i], ty, v, "abcdefgh") == MT_OK, "add failed");
    }
    check(mt_rec_finish(&r) == MT_OK, "finish failed");
    expect x = {id, ts, u, (const uint8_t *)"abcdefgh", k, 0};
    check(mt_rec_replay(r.out, r.out_len, type_of, same, &x) == MT_OK && x.at == k,
          "replay of a finished record failed");
    mt_rec_free(&r);
    free(id);
    free(ts);
    free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t sum = 0;
    if (data[0] == 0) {
        mt_rec_replay(data + 1, size - 1, type_of, touch, &sum);
    } else if (data[0] == 1 || data[0] == 3) {
        size_t bound = ZSTD_compressBound(size - 1);
        uint8_t *rec = malloc(9 + bound);
        size_t zn = ZSTD_compress(rec + 9, bound, data + 1, size - 1, 1);
        check(!ZSTD_isError(zn), "compress");
        rec[0] = data[0] == 1 ? 1 : 2;
        mt_put_le(rec + 1, size - 1, 4);
        mt_put_le(rec + 5, (uint32_t)mt_hash64(rec + 9, zn), 4);
        mt_rec_replay(rec, 9 + zn, type_of, touch, &sum);
        free(rec);
    } else {
        round_trip(data + 1, size - 1);
    }
    return 0;
}
