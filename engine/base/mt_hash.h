/*
 * mt_hash.h — checksums and hashes (xxhash's XXH3, from Debian's libxxhash).
 * XXH3 is fast (tens of GB/s) and detects torn and flipped bytes; it is not
 * a cryptographic hash and is never used as one.
 */
#ifndef MT_HASH_H
#define MT_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of data[0..len). */
uint64_t mt_hash64(const void *data, size_t len);

/* XXH3-64 of data[0..len) with a seed (chain two pieces: seed one with the other's hash). */
uint64_t mt_hash64_seeded(const void *data, size_t len, uint64_t seed);

#endif
