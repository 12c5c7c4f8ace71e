/*
 * mt_codec.h — the chunk codec: one series' points of one hour, in and out
 * of bytes. Pure functions (no I/O, no global state); thread-safe.
 *
 * Lossless: every timestamp and every value comes back bit for bit,
 * including -0.0, subnormals, +-Inf and NaN payloads (ingest rejects NaN and
 * Inf, but the codec does not depend on that). Decoding corrupt, truncated
 * or hostile input returns MT_ECORRUPT (or MT_EFORMAT for an unknown format
 * version) and never reads or writes out of bounds.
 *
 * The layout of an encoded chunk is in mt_format.h; the encoding itself is
 * described at the top of mt_codec.c.
 */
#ifndef MT_CODEC_H
#define MT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* Value types; stored in the series index and in each chunk. Never renumber. */
typedef enum mt_vtype {
    MT_VT_FLOAT = 0,  /* float64 */
    MT_VT_INT = 1,    /* int64 */
    MT_VT_UINT = 2,   /* uint64 */
    MT_VT_BOOL = 3,   /* 0 or 1 */
    MT_VT_STRING = 4, /* bytes, see mt_val */
} mt_vtype;

#define MT_VT_COUNT 5

/* The name of a type ("float", "integer", "unsigned", "boolean", "string"). */
const char *mt_vtype_name(mt_vtype t);

/*
 * One value, 8 bytes. Booleans are u = 0 or 1. Strings are a reference into
 * a separate byte buffer: u = (offset << 32) | length.
 */
typedef union mt_val {
    double f;
    int64_t i;
    uint64_t u;
} mt_val;

#define MT_VAL_STR(off, len) ((uint64_t)(off) << 32 | (uint32_t)(len))
#define MT_VAL_STR_OFF(v)    ((size_t)((v).u >> 32))
#define MT_VAL_STR_LEN(v)    ((size_t)((v).u & 0xFFFFFFFFu))

/*
 * Decimal scaling, shared with the head's buckets: mt_decimal_at is true
 * (and sets *m) when v is bit for bit mt_decimal_value(*m, e), that is
 * *m / 10^e, with |*m| < 2^53; e is 0..MT_DECIMAL_MAX_E. NaN and the
 * infinities never are.
 */
#define MT_DECIMAL_MAX_E 15 /* 10^15 keeps m below 2^53 for values up to ~9 */
bool mt_decimal_at(double v, int e, int64_t *m);
double mt_decimal_value(int64_t m, int e);

/*
 * Near-decimal coding of a double, for summaries (sums, averages) that are
 * decimals but for rounding: v is mt_decimal_value(*m, e) moved by *c steps
 * of the ordered bit patterns (*c is 0 when v is that decimal exactly, and
 * a few units for a sum rounded along the way). Any bit pattern accepted
 * comes back exactly from mt_decimal_near_value. False (nothing set) for
 * NaN, the infinities, |v| * 10^e at or beyond 2^62, or |*c| beyond 2^32
 * (the decimal is no help: store the 8 bytes). e is 0..MT_DECIMAL_MAX_E.
 */
bool mt_decimal_near(double v, int e, int64_t *m, int64_t *c);
/* The inverse: any m, e in 0..MT_DECIMAL_MAX_E and any c give some double. */
double mt_decimal_near_value(int64_t m, int e, int64_t c);

#define MT_CODEC_MAX_POINTS (1u << 24) /* points per chunk; an hour at 4.6 kHz */

/* Points of one chunk, as arrays. */
typedef struct mt_points {
    mt_vtype type;
    size_t n;           /* number of points */
    const int64_t *ts;  /* n timestamps, strictly increasing */
    const mt_val *vals; /* n values */
    const char *strs;   /* MT_VT_STRING: the bytes the values refer to */
    size_t strs_len;    /* bytes in strs */
} mt_points;

typedef struct mt_encoder mt_encoder;

/*
 * Create an encoder (it keeps its zstd context and output buffer between
 * calls). level is the zstd level, 1..19; 0 takes the default (9).
 * Returns MT_OK, MT_EINVAL or -ENOMEM.
 */
int mt_encoder_new(int level, mt_encoder **out);

/* Free an encoder. NULL is a no-op. */
void mt_encoder_free(mt_encoder *e);

/*
 * Encode pts into one chunk. On MT_OK, *chunk and *len describe the bytes,
 * owned by the encoder and valid until its next encode or free. Returns
 * MT_EINVAL (n is 0 or above MT_CODEC_MAX_POINTS, timestamps not strictly
 * increasing, a type out of range, a string reference outside strs),
 * -ENOMEM, or MT_ECORRUPT if zstd fails.
 */
int mt_encoder_encode(mt_encoder *e, const mt_points *pts, const uint8_t **chunk, size_t *len);

typedef struct mt_decoder mt_decoder;

/* Create a decoder (it keeps its zstd context and arrays). MT_OK or -ENOMEM. */
int mt_decoder_new(mt_decoder **out);

/* Free a decoder. NULL is a no-op. */
void mt_decoder_free(mt_decoder *d);

/*
 * Decode the chunk chunk[0..len) into *out. Magic, version and checksum are
 * verified first. The arrays out points to belong to the decoder and are
 * valid until its next decode or free. Returns MT_OK, MT_ECORRUPT,
 * MT_EFORMAT or -ENOMEM; on an error *out is zeroed.
 */
int mt_decoder_decode(mt_decoder *d, const void *chunk, size_t len, mt_points *out);

/*
 * For tests and the fuzzer: decode an uncompressed, unchecked chunk body
 * (what zstd wraps inside a chunk), with the same results and guarantees.
 */
int mt_decoder_decode_body(mt_decoder *d, const void *body, size_t len, mt_points *out);

/*
 * For arithmetic on a coarser clock (PromQL computes on ms and doubles): as
 * mt_decoder_decode, but each stamp comes out as floor(ts / 10^unit_e)
 * (unit_e 0..MT_F64_MAX_UNIT_E) and each value as a double in vals[i].f
 * (integers as C converts them, booleans 0 and 1); out->type is
 * MT_VT_FLOAT. The stamps do not decrease; *repeats is false when they
 * increase strictly (always so when unit_e is no coarser than the chunk's
 * own clock). Conversion and decoding are one pass. MT_EINVAL for a string
 * chunk or a unit_e out of range; otherwise as mt_decoder_decode.
 */
#define MT_F64_MAX_UNIT_E 9
int mt_decoder_decode_f64(mt_decoder *d, const void *chunk, size_t len, int unit_e, mt_points *out,
                          bool *repeats);

/* For tests and the fuzzer: mt_decoder_decode_body in the f64 form. */
int mt_decoder_decode_body_f64(mt_decoder *d, const void *body, size_t len, int unit_e,
                               mt_points *out, bool *repeats);

/*
 * The same conversion for points at hand: in (numeric) into t and v (in->n
 * entries each, the caller's; they may be in->ts and in->vals themselves).
 * Returns whether two stamps now repeat.
 */
bool mt_points_to_f64(const mt_points *in, int unit_e, int64_t *t, mt_val *v);

/*
 * Read only a chunk's header: its point count and type, without
 * decompressing or verifying the checksum. MT_OK, MT_ECORRUPT or MT_EFORMAT.
 */
int mt_codec_peek(const void *chunk, size_t len, size_t *n, mt_vtype *type);

#endif
