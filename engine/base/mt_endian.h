/*
 * mt_endian.h — loading and storing integers in a fixed byte order, whatever
 * the host's. Big-endian for LMDB keys (so that memcmp orders them as
 * numbers), little-endian for the words inside stored blocks (mt_format.h).
 * Header-only; the pointers need no alignment. Pure; thread-safe.
 */
#ifndef MT_ENDIAN_H
#define MT_ENDIAN_H

#include <stdint.h>

/* Store the low `bytes` (1..8) bytes of v at p, least significant first. */
static inline void mt_put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* Load `bytes` (1..8) bytes at p, least significant first. */
static inline uint64_t mt_get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Store the low `bytes` (1..8) bytes of v at p, most significant first. */
static inline void mt_put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (uint8_t)(v >> (8 * (bytes - 1 - k)));
}

/* Load `bytes` (1..8) bytes at p, most significant first. */
static inline uint64_t mt_get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v = v << 8 | p[k];
    return v;
}

/* The fixed widths the formats use; p may be a char or uint8_t buffer. */
static inline uint32_t mt_load_be32(const void *p)
{
    return (uint32_t)mt_get_be(p, 4);
}

static inline void mt_store_be32(void *p, uint32_t v)
{
    mt_put_be(p, v, 4);
}

static inline uint64_t mt_load_be64(const void *p)
{
    return mt_get_be(p, 8);
}

static inline void mt_store_be64(void *p, uint64_t v)
{
    mt_put_be(p, v, 8);
}

static inline uint32_t mt_load_le32(const void *p)
{
    return (uint32_t)mt_get_le(p, 4);
}

static inline void mt_store_le32(void *p, uint32_t v)
{
    mt_put_le(p, v, 4);
}

#endif
