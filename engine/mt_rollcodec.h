/*
 * mt_rollcodec.h — the values of rollup rows in and out of bytes, in the
 * compact form of stored rollups version 2 (layout at the top of
 * mt_rollcodec.c; the whole stored value in mt_rollup.c and
 * docs/format.md). Pure functions: no I/O, no global state; thread-safe.
 *
 * Lossless by construction: a row goes in its compact form only when
 * decoding that form gives back every double bit for bit (checked at
 * encode), else it keeps its raw doubles; so the reader sees what the
 * version-1 form gave. Decoding corrupt or hostile bytes returns
 * MT_ECORRUPT and never reads or writes out of bounds.
 */
#ifndef MT_ROLLCODEC_H
#define MT_ROLLCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_buf.h"
#include "mt_err.h"

/* The fractions of every rollup row: p50, p95, p99. */
#define MT_ROLL_NQ 3
extern const double mt_roll_fractions[MT_ROLL_NQ];

/* One row's values. */
typedef struct mt_rollrow {
    uint64_t count;               /* values of the hour (>= 1 for a row from mt_describe) */
    double sum, min, max;         /* as mt_describe returned them */
    double q[MT_ROLL_NQ];         /* PERCENTILE_CONT at mt_roll_fractions */
    double ranks[2 * MT_ROLL_NQ]; /* encode: the order statistics each q interpolates
                                     (mt_describe_ranks); not set by decode */
    const uint8_t *sketch;        /* group rows: mt_sketch_encode's bytes; NULL for series */
    size_t sketch_len;            /* bytes at sketch */
} mt_rollrow;

/* An append-only byte buffer; rc is the first error (then the buffer is left as it was). */
typedef struct mt_rollbuf {
    uint8_t *p; /* malloc'd, owned by whoever made the buffer */
    size_t len, cap;
    int rc; /* MT_OK or -ENOMEM */
} mt_rollbuf;

/* Append n bytes / an uvarint to b (on failure b->rc = -ENOMEM). */
void mt_rollbuf_put(mt_rollbuf *b, const void *src, size_t n);
void mt_rollbuf_uv(mt_rollbuf *b, uint64_t v);

/*
 * Append the values of rows[order[0]], .., rows[order[n-1]] (order NULL:
 * rows 0..n-1) to b, by column; with sketches, each row's sketch too
 * (every row then has one). Returns b->rc.
 */
int mt_rollcodec_put(mt_rollbuf *b, const mt_rollrow *rows, const size_t *order, size_t n,
                     bool sketches);

/*
 * Read n rows' values from rd (what mt_rollcodec_put wrote) into
 * rows[0..n). With sketches, every sketch is rebuilt into *sk (malloc'd,
 * owned by the caller, who frees it even on an error; NULL when none) and
 * rows[i].sketch points into it. Returns MT_OK, MT_ECORRUPT, -ENOMEM.
 */
int mt_rollcodec_get(mt_rd *rd, size_t n, bool sketches, mt_rollrow *rows, uint8_t **sk);

#endif
