/*
 * mt_rice.h — Golomb-Rice coding of unsigned 64-bit values (private to
 * engine/: the codec's entropy stage).
 *
 * A block is one byte k (0..63) and a bit stream, least significant bit
 * first: per value z, q = z >> k in unary (q ones, then a zero) and the k
 * low bits of z; when q >= 31 the value is escaped as 31 ones and its 64
 * raw bits. For residuals of a random walk (near-normal), the best k costs
 * within about a quarter of a bit of the entropy per value, and decoding is
 * a count-trailing-zeros and two shifts.
 */
#ifndef MT_RICE_H
#define MT_RICE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that mt_rice_encode may write for n values. */
size_t mt_rice_bound(size_t n);

/* Bits the best k would spend on z[0..n) (the block's byte k excluded). */
uint64_t mt_rice_cost(const uint64_t *z, size_t n);

/* Encode z[0..n) at the best k into out (capacity mt_rice_bound(n)); returns bytes written. */
size_t mt_rice_encode(const uint64_t *z, size_t n, uint8_t *out);

/*
 * Decode n values from in[0..len) into z. On success returns 0 and sets
 * *used to the bytes the block took; returns -1 when the block is corrupt
 * or shorter than its n values need. Never reads outside in[0..len).
 */
int mt_rice_decode(const uint8_t *in, size_t len, uint64_t *z, size_t n, size_t *used);

#endif
