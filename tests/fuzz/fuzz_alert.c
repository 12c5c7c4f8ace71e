/*
 * fuzz_alert.c — libFuzzer target for the alert record decoder
 * (mt_alert_record_decode: LMDB state records read by metrond at start,
 * by metron alerts and by the mirror). Any bytes are refused with
 * MT_ECORRUPT or decode into a record that encodes and decodes back to the
 * same record; the listing row of a decoded record is built too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_alert: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_alert_record r, back;
    if (mt_alert_record_decode(data, size, &r) != MT_OK) return 0;
    char row[4096];
    mt_alert_record_row(&r, row, sizeof row);
    uint8_t *buf;
    size_t len;
    check(mt_alert_record_encode(&r, &buf, &len) == MT_OK, "encode of a decoded record failed");
    check(mt_alert_record_decode(buf, len, &back) == MT_OK, "decode of an encoded record failed");
    check(memcmp(&r, &back, sizeof r) == 0, "the record changed through encode and decode");
    free(buf);
    return 0;
}
