/*
 * fuzz_sketch.c — libFuzzer target for the rollup sketch's decoder: any
 * bytes either decode into a sketch that answers every quantile within
 * [min, max] and re-encodes to the same counts, or are refused with
 * MT_ECORRUPT; nothing else (no crash, no huge allocation).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mt_sketch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_sketch: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_sketch *s, *t;
    if (mt_sketch_new(&s)) return 0;
    if (mt_sketch_new(&t)) {
        mt_sketch_free(s);
        return 0;
    }
    int rc = mt_sketch_decode_merge(s, data, size);
    check(rc == MT_OK || rc == MT_ECORRUPT || rc == -12 /* ENOMEM */, "unexpected error");
    if (rc == MT_OK && mt_sketch_count(s)) {
        double lo, hi, q;
        check(mt_sketch_quantile(s, 0, &lo) == MT_OK, "q0");
        check(mt_sketch_quantile(s, 1, &hi) == MT_OK, "q1");
        for (int i = 1; i < 10; i++) {
            check(mt_sketch_quantile(s, i / 10.0, &q) == MT_OK, "quantile");
            check(q >= lo && q <= hi, "quantile outside [min, max]");
        }
        uint8_t *buf;
        size_t len;
        if (mt_sketch_encode(s, &buf, &len) == MT_OK) {
            check(mt_sketch_decode_merge(t, buf, len) == MT_OK, "re-encoded sketch refused");
            check(mt_sketch_count(t) == mt_sketch_count(s), "count changed");
            free(buf);
        }
    }
    mt_sketch_free(s);
    mt_sketch_free(t);
    return 0;
}
