/* mt_buf.c — the growable memory of mt_buf.h. */
#include "mt_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

const uint64_t mt_pow10[MT_POW10_MAX + 1] = {1ull,
                                             10ull,
                                             100ull,
                                             1000ull,
                                             10000ull,
                                             100000ull,
                                             1000000ull,
                                             10000000ull,
                                             100000000ull,
                                             1000000000ull,
                                             10000000000ull,
                                             100000000000ull,
                                             1000000000000ull,
                                             10000000000000ull,
                                             100000000000000ull,
                                             1000000000000000ull,
                                             10000000000000000ull,
                                             100000000000000000ull,
                                             1000000000000000000ull,
                                             10000000000000000000ull};

int mt_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap) return MT_OK;
    size_t c = *cap ? *cap : first ? first : 1;
    while (c < need) {
        if (c > SIZE_MAX / 2) return -ENOMEM;
        c *= 2;
    }
    if (c > SIZE_MAX / size) return -ENOMEM;
    void *p;
    memcpy(&p, pp, sizeof p); /* pp is a T **: its pointer read and written as bytes */
    p = realloc(p, c * size);
    if (!p) return -ENOMEM;
    memcpy(pp, &p, sizeof p);
    *cap = c;
    return MT_OK;
}

void mt_sb_printf(mt_sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        mt_sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mt_sb_put(b, big, (size_t)n);
    free(big);
}

void mt_sb_free(mt_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
