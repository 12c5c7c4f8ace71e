/*
 * fuzz_quar.c — libFuzzer target for the quarantine record decoder
 * (mt_quar_decode: LMDB state records read by metron sink quarantine
 * list/retry). The first input byte: 0 = the rest is a stored record;
 * 1 = the rest is a record without its checksum, which the target appends
 * (XXH3-64, LE) so the field parser is reached. A record that decodes
 * must encode and decode back to the same row.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_hash.h"
#include "mt_quarantine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_quar: %s\n", what);
        abort();
    }
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void decode(const uint8_t *rec, size_t len)
{
    mt_quar_row r, back;
    if (mt_quar_decode(rec, len, &r) != MT_OK) return;
    check(r.reason && r.natural && r.nparams >= 0 && r.nparams <= MT_QUAR_MAX_PARAMS,
          "decoded row without reason, key or sane parameter count");
    (void)strlen(r.reason), (void)strlen(r.natural), (void)mt_quar_table_name(r.table);
    void *enc;
    size_t elen;
    int rc = mt_quar_encode(&r, &enc, &elen);
    if (rc == MT_EINVAL) return; /* e.g. an empty reason: stored, but never written so */
    check(rc == MT_OK, "encode of a decoded row failed");
    check(mt_quar_decode(enc, elen, &back) == MT_OK, "decode of an encoded row failed");
    check(back.table == r.table && back.hour == r.hour && back.at_ns == r.at_ns &&
              back.refusals == r.refusals && strcmp(back.sqlstate, r.sqlstate) == 0 &&
              strcmp(back.reason, r.reason) == 0 && strcmp(back.natural, r.natural) == 0 &&
              back.nparams == r.nparams,
          "the row changed through encode and decode");
    for (int i = 0; i < r.nparams; i++)
        check(same_str(back.params[i], r.params[i]), "a parameter changed");
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] == 0) {
        decode(data + 1, size - 1);
        return 0;
    }
    uint8_t *rec = malloc(size - 1 + 8);
    if (!rec) return 0;
    memcpy(rec, data + 1, size - 1);
    mt_put_le(rec + size - 1, mt_hash64(rec, size - 1), 8);
    decode(rec, size - 1 + 8);
    free(rec);
    return 0;
}
