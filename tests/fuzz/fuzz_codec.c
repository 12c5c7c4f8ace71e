/*
 * fuzz_codec.c — libFuzzer target for the chunk codec.
 *
 * The first input byte picks what the rest is:
 *   0: a whole chunk for mt_decoder_decode (header, checksum, zstd)
 *   1: a chunk body for mt_decoder_decode_body (no checksum to hide behind)
 *   2+: points to encode: the decoded result must equal them bit for bit
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_codec: %s\n", what);
        abort();
    }
}

static void round_trip(mt_encoder *enc, mt_decoder *dec, const uint8_t *data, size_t size)
{
    if (size < 2) return;
    mt_vtype type = (mt_vtype)(data[0] % MT_VT_COUNT);
    data++, size--;
    size_t n = size / 9;
    if (n == 0) return;
    int64_t *ts = malloc(n * sizeof *ts);
    mt_val *vals = malloc(n * sizeof *vals);
    int64_t t = -1000;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + i * 9;
        t += 1 + (p[0] & 0x7F) * (p[0] & 0x80 ? 1000000 : 1);
        ts[i] = t;
        memcpy(&vals[i].u, p + 1, 8);
        if (type == MT_VT_BOOL) vals[i].u &= 1;
        if (type == MT_VT_STRING) vals[i].u = MT_VAL_STR(p[1] % 8, p[2] % 8);
    }
    mt_points in = {
        .type = type, .n = n, .ts = ts, .vals = vals, .strs = "abcdefghijklmnop", .strs_len = 16};
    const uint8_t *chunk;
    size_t len;
    check(mt_encoder_encode(enc, &in, &chunk, &len) == MT_OK, "encode failed");
    mt_points out;
    check(mt_decoder_decode(dec, chunk, len, &out) == MT_OK, "decode of an encoded chunk failed");
    check(out.n == n && out.type == type, "count or type changed");
    for (size_t i = 0; i < n; i++) {
        check(out.ts[i] == ts[i], "timestamp changed");
        if (type == MT_VT_STRING) {
            size_t l = MT_VAL_STR_LEN(vals[i]);
            check(MT_VAL_STR_LEN(out.vals[i]) == l &&
                      memcmp(out.strs + MT_VAL_STR_OFF(out.vals[i]),
                             in.strs + MT_VAL_STR_OFF(vals[i]), l) == 0,
                  "string changed");
        } else {
            check(out.vals[i].u == vals[i].u, "value bits changed");
        }
    }
    free(ts);
    free(vals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_encoder *enc;
    static mt_decoder *dec;
    if (!enc && (mt_encoder_new(1, &enc) || mt_decoder_new(&dec))) abort();
    if (size < 1) return 0;
    mt_points out;
    switch (data[0]) {
    case 0: mt_decoder_decode(dec, data + 1, size - 1, &out); break;
    case 1: mt_decoder_decode_body(dec, data + 1, size - 1, &out); break;
    default: round_trip(enc, dec, data + 1, size - 1); break;
    }
    return 0;
}
