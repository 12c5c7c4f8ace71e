/*
 * fuzz_codec.c — libFuzzer target for the chunk codec.
 *
 * The first input byte picks what the rest is:
 *   0: a whole chunk for mt_decoder_decode (header, checksum, zstd)
 *   1: a chunk body for mt_decoder_decode_body (no checksum to hide behind)
 *   2+: points to encode: the decoded result must equal them bit for bit
 * Each decode is done twice, as stored and in the f64 form (ms and doubles for PromQL, a unit
 * picked by the input's length): both fail or both give the same points.
 */
#include <stdbool.h>
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

/*
 * The f64 form (rc_f, f) of what decoded as stored (rc, p): the same outcome, and on success
 * the same points floored to 10^unit_e and converted to doubles.
 */
static void same_f64(int rc, const mt_points *p, int rc_f, const mt_points *f, bool repeats,
                     int unit_e)
{
    if (rc != MT_OK) {
        check(rc_f != MT_OK, "the f64 form decoded what the stored form refused");
        return;
    }
    if (p->type == MT_VT_STRING) {
        check(rc_f == MT_EINVAL, "the f64 form of strings is not refused");
        return;
    }
    check(rc_f == MT_OK, "the f64 form refused what the stored form decoded");
    check(f->n == p->n && f->type == MT_VT_FLOAT, "f64 count or type");
    int64_t u = 1;
    for (int k = 0; k < unit_e; k++) u *= 10;
    bool rep = false;
    for (size_t i = 0; i < p->n; i++) {
        int64_t q = p->ts[i] / u - (p->ts[i] % u < 0);
        check(f->ts[i] == q, "f64 stamp");
        rep |= i && f->ts[i - 1] == q;
        mt_val x = p->vals[i];
        double v = p->type == MT_VT_FLOAT  ? x.f
                   : p->type == MT_VT_INT  ? (double)x.i
                   : p->type == MT_VT_UINT ? (double)x.u
                                           : (x.u ? 1.0 : 0.0);
        check(memcmp(&f->vals[i].f, &v, 8) == 0, "f64 value");
    }
    check(rep == repeats, "f64 repeats");
}

static void round_trip(mt_encoder *enc, mt_decoder *dec, mt_decoder *dec2, const uint8_t *data,
                       size_t size)
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
    mt_points f;
    bool rep;
    int unit_e = (int)(size % (MT_F64_MAX_UNIT_E + 1));
    int rc_f = mt_decoder_decode_f64(dec2, chunk, len, unit_e, &f, &rep);
    same_f64(MT_OK, &out, rc_f, &f, rep, unit_e);
    free(ts);
    free(vals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_encoder *enc;
    static mt_decoder *dec, *dec2; /* the stored form, the f64 form */
    if (!enc && (mt_encoder_new(1, &enc) || mt_decoder_new(&dec) || mt_decoder_new(&dec2))) abort();
    if (size < 1) return 0;
    mt_points out, f;
    bool rep;
    int unit_e = (int)(size % (MT_F64_MAX_UNIT_E + 1)), rc, rc_f;
    switch (data[0]) {
    case 0:
        rc = mt_decoder_decode(dec, data + 1, size - 1, &out);
        rc_f = mt_decoder_decode_f64(dec2, data + 1, size - 1, unit_e, &f, &rep);
        same_f64(rc, &out, rc_f, &f, rep, unit_e);
        break;
    case 1:
        rc = mt_decoder_decode_body(dec, data + 1, size - 1, &out);
        rc_f = mt_decoder_decode_body_f64(dec2, data + 1, size - 1, unit_e, &f, &rep);
        same_f64(rc, &out, rc_f, &f, rep, unit_e);
        break;
    default: round_trip(enc, dec, dec2, data + 1, size - 1); break;
    }
    return 0;
}
