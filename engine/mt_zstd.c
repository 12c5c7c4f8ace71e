/* mt_zstd.c — zstd behind one error mapping (mt_zstd.h). */
#include "mt_zstd.h"

#include <errno.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "mt_err.h"

/* The contexts are zstd's own, under a name of ours: no wrapper to allocate. */
int mt_zstd_c_new(mt_zstd_c **out)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    *out = (mt_zstd_c *)c;
    return c ? MT_OK : -ENOMEM;
}

void mt_zstd_c_free(mt_zstd_c *c)
{
    ZSTD_freeCCtx((ZSTD_CCtx *)c);
}

int mt_zstd_d_new(mt_zstd_d **out)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    *out = (mt_zstd_d *)d;
    return d ? MT_OK : -ENOMEM;
}

void mt_zstd_d_free(mt_zstd_d *d)
{
    ZSTD_freeDCtx((ZSTD_DCtx *)d);
}

size_t mt_zstd_bound(size_t n)
{
    return ZSTD_compressBound(n);
}

/* A zstd result as an error of ours: failure is what the operation's failures mean. */
static int mapped(size_t r, int failure)
{
    if (!ZSTD_isError(r)) return MT_OK;
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : failure;
}

int mt_zstd_compress(mt_zstd_c *c, void *dst, size_t cap, const void *src, size_t n, int level,
                     size_t *zn)
{
    size_t r = c ? ZSTD_compressCCtx((ZSTD_CCtx *)c, dst, cap, src, n, level)
                 : ZSTD_compress(dst, cap, src, n, level);
    int rc = mapped(r, MT_EINVAL);
    if (!rc) *zn = r;
    return rc;
}

int mt_zstd_decompress(mt_zstd_d *d, void *dst, size_t raw_len, const void *src, size_t zn)
{
    size_t got = d ? ZSTD_decompressDCtx((ZSTD_DCtx *)d, dst, raw_len, src, zn)
                   : ZSTD_decompress(dst, raw_len, src, zn);
    int rc = mapped(got, MT_ECORRUPT);
    return rc ? rc : got == raw_len ? MT_OK : MT_ECORRUPT;
}

int mt_zstd_frame_size(const void *src, size_t zn, uint64_t *raw_len)
{
    unsigned long long n = ZSTD_getFrameContentSize(src, zn);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN) return MT_ECORRUPT;
    *raw_len = n;
    return MT_OK;
}

const char *mt_zstd_version(void)
{
    return ZSTD_versionString();
}
