/*
 * make_codec_corpus — writes the seed corpus of fuzz_codec: real chunks
 * (selector byte 0), their bodies (1) and point sets to round-trip (2+),
 * for each value type.
 *
 *   make_codec_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "mt_buf.h"
#include "mt_codec.h"

static void write_seed(const char *dir, const char *name, int sel, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputc(sel, f);
    fwrite(p, 1, n, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    mt_encoder *enc;
    if (mt_encoder_new(0, &enc)) return 1;
    int64_t ts[64];
    mt_val v[64];
    for (int type = 0; type < MT_VT_COUNT; type++) {
        for (int i = 0; i < 64; i++) {
            ts[i] = 1735689600000000000 + (int64_t)i * 10000000000 + (type == 2 ? i * i : 0);
            v[i].u = type == MT_VT_FLOAT    ? 0
                     : type == MT_VT_BOOL   ? (uint64_t)(i % 3 == 0)
                     : type == MT_VT_STRING ? MT_VAL_STR(i % 4, i % 5)
                                            : (uint64_t)(1000 + i * 7 + (i % 5));
            if (type == MT_VT_FLOAT) v[i].f = (double)(5000 + (i * 37) % 200) / 100.0;
        }
        mt_points p = {.type = (mt_vtype)type,
                       .n = 64,
                       .ts = ts,
                       .vals = v,
                       .strs = "abcdefgh",
                       .strs_len = 8};
        const uint8_t *chunk;
        size_t len;
        if (mt_encoder_encode(enc, &p, &chunk, &len)) return 1;
        char name[64];
        snprintf(name, sizeof name, "chunk-%d", type);
        write_seed(argv[1], name, 0, chunk, len);
        /* the header of version 2 (mt_format.h): n, the body length if packed, the checksum */
        uint8_t body[8192];
        mt_rd r = {chunk + 4, chunk + len};
        uint64_t n, blen = 0;
        if (mt_rd_uvarint(&r, &n) || ((chunk[3] & 0x80) && mt_rd_uvarint(&r, &blen))) return 1;
        const uint8_t *payload = r.p + 4;
        size_t plen = len - (size_t)(payload - chunk);
        if (chunk[3] & 0x80) {
            if (ZSTD_decompress(body, sizeof body, payload, plen) != blen) return 1;
        } else {
            if (plen > sizeof body) return 1;
            memcpy(body, payload, plen);
            blen = plen;
        }
        snprintf(name, sizeof name, "body-%d", type);
        write_seed(argv[1], name, 1, body, blen);
        uint8_t raw[1 + 64 * 9];
        raw[0] = (uint8_t)type;
        for (int i = 0; i < 64; i++) {
            raw[1 + i * 9] = (uint8_t)(i % 3 ? 10 : 0x81);
            memcpy(raw + 2 + i * 9, &v[i].u, 8);
        }
        snprintf(name, sizeof name, "points-%d", type);
        write_seed(argv[1], name, 2, raw, sizeof raw);
    }
    mt_encoder_free(enc);
    return 0;
}
