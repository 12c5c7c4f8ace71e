/* mt_time.c — precision names and conversions, clocks. */
#include "mt_time.h"

#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    const char *alias;
    int64_t factor;
} precisions[] = {
    [MT_PREC_NS] = {"ns", "n", 1},
    [MT_PREC_US] = {"us", "u", 1000},
    [MT_PREC_MS] = {"ms", NULL, 1000000},
    [MT_PREC_S] = {"s", NULL, 1000000000},
    [MT_PREC_M] = {"m", NULL, 60LL * 1000000000},
    [MT_PREC_H] = {"h", NULL, 3600LL * 1000000000},
};

static bool name_eq(const char *a, size_t len, const char *b)
{
    return b && strlen(b) == len && memcmp(a, b, len) == 0;
}

bool mt_precision_parse(const char *name, size_t len, mt_precision *out)
{
    for (size_t i = 0; i < sizeof precisions / sizeof precisions[0]; i++) {
        if (name_eq(name, len, precisions[i].name) || name_eq(name, len, precisions[i].alias)) {
            *out = (mt_precision)i;
            return true;
        }
    }
    return false;
}

const char *mt_precision_name(mt_precision p)
{
    return precisions[p].name;
}

int64_t mt_precision_factor(mt_precision p)
{
    return precisions[p].factor;
}

bool mt_time_to_ns(int64_t v, mt_precision p, int64_t *ns)
{
    int64_t r;
    if (__builtin_mul_overflow(v, precisions[p].factor, &r)) return false;
    *ns = r;
    return true;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mt_now_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t mt_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
