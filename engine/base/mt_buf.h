/*
 * mt_buf.h — the byte-level encodings every format of Metron uses: LEB128
 * varints, zigzag, little-endian words (mt_endian.h), and a bounds-checked reader that
 * fails with MT_ECORRUPT instead of reading past its end (inline: the codec's inner
 * loops use them). And the memory that output is built in: mt_grow, for any array
 * that grows by doubling, and mt_sbuf, a growable string. Pure; each buffer is used
 * by one thread at a time.
 */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_endian.h"
#include "mt_err.h"

#define MT_UVARINT_MAX 10 /* bytes of the longest uvarint */

static inline uint64_t mt_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t mt_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Write v as a uvarint at p (room for MT_UVARINT_MAX bytes); returns the bytes written. */
static inline size_t mt_put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Bytes the uvarint of v takes. */
static inline size_t mt_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* A reader over [p, end). Every get returns MT_OK or MT_ECORRUPT (nothing read then). */
typedef struct mt_rd {
    const uint8_t *p, *end;
} mt_rd;

static inline size_t mt_rd_left(const mt_rd *r)
{
    return (size_t)(r->end - r->p);
}

static inline int mt_rd_u8(mt_rd *r, uint8_t *v)
{
    if (r->p >= r->end) return MT_ECORRUPT;
    *v = *r->p++;
    return MT_OK;
}

static inline int mt_rd_uvarint(mt_rd *r, uint64_t *v)
{
    uint64_t x = 0;
    const uint8_t *p = r->p;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= r->end) return MT_ECORRUPT;
        uint8_t c = *p++;
        if (shift == 63 && c > 1) return MT_ECORRUPT; /* more than 64 bits */
        x |= (uint64_t)(c & 0x7F) << shift;
        if (c < 0x80) {
            r->p = p;
            *v = x;
            return MT_OK;
        }
    }
    return MT_ECORRUPT;
}

static inline int mt_rd_svarint(mt_rd *r, int64_t *v)
{
    uint64_t u;
    int rc = mt_rd_uvarint(r, &u);
    if (rc == MT_OK) *v = mt_unzigzag(u);
    return rc;
}

static inline int mt_rd_u32le(mt_rd *r, uint32_t *v)
{
    if (mt_rd_left(r) < 4) return MT_ECORRUPT;
    *v = (uint32_t)mt_get_le(r->p, 4);
    r->p += 4;
    return MT_OK;
}

static inline int mt_rd_u64le(mt_rd *r, uint64_t *v)
{
    if (mt_rd_left(r) < 8) return MT_ECORRUPT;
    *v = mt_get_le(r->p, 8);
    r->p += 8;
    return MT_OK;
}

/*
 * Make room for at least need elements of size bytes in the array whose
 * pointer is at pp (any T **; the array malloc'd, or NULL) and whose capacity
 * in elements is *cap: the capacity doubles, from first when it is 0, until
 * it holds need. MT_OK (nothing done when it already does), or -ENOMEM with
 * the array and *cap as they were.
 */
int mt_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first);

/*
 * A growable string: zero it to start ({0}); p is malloc'd, NUL-terminated
 * once anything was put, and owned by the buffer until mt_sb_free (or the
 * caller takes it). oom: an allocation failed; every later put does nothing,
 * so a caller checks once, at the end.
 */
typedef struct mt_sbuf {
    char *p;
    size_t len, cap; /* bytes used (without the NUL), bytes allocated */
    bool oom;
} mt_sbuf;

/*
 * Room for n more bytes and the NUL after them: where to write them (p + len), or NULL once oom.
 * The caller writes at most n bytes there, then mt_sb_wrote: a writer of many small pieces
 * reserves once for several (a capacity check, not one a piece).
 */
static inline char *mt_sb_reserve(mt_sbuf *b, size_t n)
{
    if (b->oom) return NULL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return NULL;
        }
        b->p = q;
        b->cap = cap;
    }
    return b->p + b->len;
}

/* n bytes were written where mt_sb_reserve said (n at most what it reserved). */
static inline void mt_sb_wrote(mt_sbuf *b, size_t n)
{
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void mt_sb_put(mt_sbuf *b, const char *s, size_t n)
{
    char *at = mt_sb_reserve(b, n);
    if (!at) return;
    memcpy(at, s, n);
    mt_sb_wrote(b, n);
}

static inline void mt_sb_puts(mt_sbuf *b, const char *s)
{
    mt_sb_put(b, s, strlen(s));
}

/* mt_sb_put as a writer (query's mt_write_fn): ud is the mt_sbuf; 0, or -ENOMEM once oom. */
static inline int mt_sb_write(void *ud, const char *s, size_t n)
{
    mt_sbuf *b = ud;
    mt_sb_put(b, s, n);
    return b->oom ? -ENOMEM : 0;
}

/* Put the formatted text, however long. */
__attribute__((format(printf, 2, 3))) void mt_sb_printf(mt_sbuf *b, const char *fmt, ...);

/* Free p; b is zeroed. */
void mt_sb_free(mt_sbuf *b);

/* 10^0 .. 10^19: every power of ten a uint64 holds. */
#define MT_POW10_MAX 19
extern const uint64_t mt_pow10[MT_POW10_MAX + 1];

#endif
