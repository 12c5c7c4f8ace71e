/*
 * fuzz_hourfile.c — libFuzzer target for the hour-file footer reader
 * (mt_hf_read_index) and the chunks it points to, fed through a memfd as
 * the engine reads a file from disk.
 *
 * The first input byte picks what the rest is:
 *   even: a whole hour file (header, chunks, footer, trailer) as stored
 *   odd:  u16 LE chunk-region length, u32 LE chunk count, then a raw footer:
 *         the target zstd-compresses it and writes a header (of version 1,
 *         2 or 3 as (first byte >> 1) % 3 says) and a trailer
 *         with the right checksum, so the entry parser is reached without
 *         the fuzzer having to forge XXH3
 * A footer that reads back must describe chunks inside the file; each is
 * then decoded (as a scan would) and must not crash either.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "mt_buf.h"
#include "mt_codec.h"
#include "mt_engine_int.h"
#include "mt_hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_hourfile: %s\n", what);
        abort();
    }
}

/* The footer wrapped into a well-formed file: *len bytes, malloc'd. */
static uint8_t *wrap(const uint8_t *d, size_t n, int version, size_t *len)
{
    if (n < 6) return NULL;
    size_t region = mt_get_le(d, 2);
    uint32_t count = (uint32_t)mt_get_le(d + 2, 4);
    d += 6, n -= 6;
    size_t bound = ZSTD_compressBound(n);
    uint8_t *f = calloc(1, 16 + region + bound + 32);
    if (!f) return NULL;
    memcpy(f, "MTHF", 4);
    f[4] = (uint8_t)version;
    mt_put_le(f + 8, 7, 8); /* hour 7 */
    size_t zn = ZSTD_compress(f + 16 + region, bound, d, n, 1);
    if (ZSTD_isError(zn)) {
        free(f);
        return NULL;
    }
    uint8_t *t = f + 16 + region + zn;
    mt_put_le(t, 16 + region, 8);
    mt_put_le(t + 8, zn, 4);
    mt_put_le(t + 12, n, 4);
    mt_put_le(t + 16, count, 4);
    mt_put_le(t + 20, (uint32_t)mt_hash64(f + 16 + region, zn), 4);
    memcpy(t + 28, "MTHE", 4);
    *len = 16 + region + zn + 32;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_decoder *dec;
    static int fd = -1;
    if (!dec && mt_decoder_new(&dec)) abort();
    if (fd < 0 && (fd = memfd_create("hourfile", 0)) < 0) abort();
    if (size < 1) return 0;
    const uint8_t *file = data + 1;
    size_t flen = size - 1;
    uint8_t *own = NULL;
    if (data[0] & 1) {
        if (!(own = wrap(data + 1, size - 1, 1 + (data[0] >> 1) % 3, &flen))) return 0;
        file = own;
    }
    check(ftruncate(fd, 0) == 0 && pwrite(fd, file, flen, 0) == (ssize_t)flen, "memfd write");
    /* the file's own hour, when it is one the engine can have (an hour key's range) */
    int64_t hour = flen >= 16 ? (int64_t)mt_get_le(file + 8, 8) : 0;
    if (hour < -2000000 || hour > 2000000) hour = 7;
    mt_hf_index ix;
    if (mt_hf_read_index(fd, hour, &ix) == MT_OK) {
        uint64_t end = 16;
        for (size_t i = 0; i < ix.n; i++) {
            const mt_hf_entry *e = &ix.e[i];
            check(e->off == end && e->off + e->len <= flen, "entry outside the chunk region");
            check(i == 0 || e->id > ix.e[i - 1].id, "ids not ascending");
            check(e->min_ts <= e->max_ts && e->min_ts >= hour * MT_HOUR_NS &&
                      e->max_ts < (hour + 1) * MT_HOUR_NS,
                  "times outside the hour");
            end = e->off + e->len;
            mt_points out;
            if (mt_decoder_decode(dec, file + e->off, e->len, &out) == MT_OK)
                for (size_t k = 0; k < out.n; k++) (void)out.ts[k];
        }
        mt_hf_index_free(&ix);
    }
    free(own);
    return 0;
}
