/*
 * mt_zstd.h — the one place engine/ calls zstd (engine-internal: chunks,
 * head records, hour-file keys and footers, rollups). Every zstd failure is
 * mapped here, once:
 *   - out of memory                         -> -ENOMEM
 *   - compressing anything else (a level     -> MT_EINVAL
 *     out of range, a too small dst)
 *   - decompressing anything else, or a      -> MT_ECORRUPT (the stored bytes
 *     frame that does not hold exactly the      are damaged)
 *     size its caller expects
 * Contexts save the allocations of one-off calls on hot paths; each is used
 * by one thread at a time. Functions without a context are thread-safe.
 */
#ifndef MT_ZSTD_H
#define MT_ZSTD_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_zstd_c mt_zstd_c; /* a compression context */
typedef struct mt_zstd_d mt_zstd_d; /* a decompression context */

/* A new context into *out: MT_OK or -ENOMEM. Free with the matching _free (NULL: no-op). */
int mt_zstd_c_new(mt_zstd_c **out);
void mt_zstd_c_free(mt_zstd_c *c);
int mt_zstd_d_new(mt_zstd_d **out);
void mt_zstd_d_free(mt_zstd_d *d);

/* The largest compressed size of n bytes: a dst of this capacity never fails for room. */
size_t mt_zstd_bound(size_t n);

/*
 * Compress src[0..n) at level into dst (capacity cap) as one frame that
 * records its content size; *zn its size. c NULL: a context for this call.
 * MT_OK, MT_EINVAL or -ENOMEM (then *zn is unset).
 */
int mt_zstd_compress(mt_zstd_c *c, void *dst, size_t cap, const void *src, size_t n, int level,
                     size_t *zn);

/*
 * Decompress the frame src[0..zn) into dst, which must come out exactly
 * raw_len bytes long. d NULL: a context for this call. MT_OK, MT_ECORRUPT
 * (a damaged frame, or another size) or -ENOMEM; dst's bytes are unspecified
 * after a failure.
 */
int mt_zstd_decompress(mt_zstd_d *d, void *dst, size_t raw_len, const void *src, size_t zn);

/* The content size the frame src[0..zn) records into *raw_len: MT_OK, or MT_ECORRUPT when
   it records none or is not a frame. */
int mt_zstd_frame_size(const void *src, size_t zn, uint64_t *raw_len);

/* The zstd library's version ("1.5.5"); static. */
const char *mt_zstd_version(void);

#endif
