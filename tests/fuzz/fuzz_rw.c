/*
 * fuzz_rw.c — libFuzzer target for the remote-write decoder (ingest/mt_rw.h).
 *
 * The first byte picks the path: bit 0 set, the rest is the body as sent
 * (a snappy block: headers, bombs, broken copies); clear, the rest is the
 * protobuf, snappy-compressed here so that the WriteRequest decoding is
 * what gets explored. Bit 1 decodes as a tenant. Besides memory safety it
 * checks: the batch holds exactly the samples reported added, and nothing
 * at all after an error. A small inflated limit makes the limit path
 * reachable.
 */
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_rw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    char *packed = NULL;
    if (!(mode & 1)) {
        size_t clen = snappy_max_compressed_length(len);
        packed = malloc(clen ? clen : 1);
        if (!packed || snappy_compress(in, len, packed, &clen) != SNAPPY_OK) abort();
        in = packed;
        len = clen;
    }
    mt_batch *b = mt_batch_new();
    if (!b) abort();
    mt_rw_result res;
    char err[512];
    int rc = mt_rw_decode(in, len, 1u << 16, b, NULL, (mode & 2) ? "tenant-x" : NULL, &res, err,
                          sizeof err);
    if (rc == -12) {
        /* out of memory: nothing to check */
    } else if (rc != MT_OK) {
        if (mt_batch_len(b) != 0 || !err[0]) abort();
    } else if (mt_batch_len(b) != res.samples) {
        fprintf(stderr, "batch %zu points, %llu samples reported\n", mt_batch_len(b),
                (unsigned long long)res.samples);
        abort();
    }
    mt_batch_free(b);
    free(packed);
    return 0;
}
