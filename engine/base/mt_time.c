/* mt_time.c — precision names and conversions, clocks. */
#include "mt_time.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

static const struct {
    const char *unit;
    int64_t ns;
} units[] = {
    {"ns", 1},          {"us", 1000},         {"ms", 1000000},       {"s", 1000000000},
    {"m", 60000000000}, {"h", 3600000000000}, {"d", 86400000000000}, {"w", 604800000000000}};

bool mt_duration_parse(const char *s, int64_t *out)
{
    double total = 0;
    const char *p = s;
    if (!*p) return false;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) return false;
        size_t ul = strspn(end, "abcdefghijklmnopqrstuvwxyz");
        size_t i = 0, nu = sizeof units / sizeof units[0];
        while (i < nu && (strlen(units[i].unit) != ul || strncmp(end, units[i].unit, ul))) i++;
        if (i == nu) return false;
        total += v * (double)units[i].ns;
        p = end + ul;
    }
    if (!(total >= 1) || total > 9.2e18) return false;
    *out = (int64_t)llround(total);
    return true;
}

bool mt_time_parse(const char *s, int64_t now, int64_t *out)
{
    int64_t d;
    if (!strcmp(s, "now")) {
        *out = now;
        return true;
    }
    if (!strncmp(s, "now", 3) && (s[3] == '-' || s[3] == '+') && mt_duration_parse(s + 4, &d)) {
        *out = s[3] == '-' ? now - d : now + d;
        return true;
    }
    if (s[0] == '-' && mt_duration_parse(s + 1, &d)) {
        *out = now - d;
        return true;
    }
    int y, mo, da, h, mi, n = 0;
    double sec;
    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &da, &n) == 3 && n == 10) {
        /* a date: its midnight, UTC */
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da};
        *out = (int64_t)timegm(&tm) * 1000000000;
        return mo >= 1 && mo <= 12 && da >= 1 && da <= 31;
    }
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &da, &h, &mi, &sec, &n) == 6) {
        const char *z = s + n;
        int64_t offset = 0;
        if (*z == 'Z' && !z[1]) {
            offset = 0;
        } else if ((*z == '+' || *z == '-') && strlen(z) == 6 && z[3] == ':') {
            int oh = atoi(z + 1), om = atoi(z + 4);
            offset = (int64_t)(oh * 60 + om) * 60 * (*z == '-' ? -1 : 1);
        } else {
            return false;
        }
        struct tm tm = {
            .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da, .tm_hour = h, .tm_min = mi};
        int64_t whole = (int64_t)timegm(&tm) - offset;
        *out = whole * 1000000000 + (int64_t)llround(sec * 1e9);
        return sec >= 0 && sec < 61;
    }
    /* epoch seconds, with up to nine fraction digits, kept exact (a double would round) */
    const char *p = s;
    bool neg = *p == '-';
    if (neg) p++;
    size_t il = strspn(p, "0123456789");
    if (il == 0 || il > 10) return false;
    int64_t secs = strtoll(p, NULL, 10), frac = 0;
    p += il;
    if (*p == '.') {
        size_t fl = strspn(++p, "0123456789");
        if (fl == 0 || fl > 9 || p[fl]) return false;
        for (size_t i = 0; i < 9; i++) frac = frac * 10 + (i < fl ? p[i] - '0' : 0);
        p += fl;
    }
    if (*p) return false;
    int64_t v = secs * 1000000000 + frac;
    *out = neg ? -v : v;
    return true;
}

/* Two digits of v at p. */
static char *put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/*
 * Years 0 to 9999 without gmtime_r and snprintf (a query prints a time per
 * row): days to a civil date as in Howard Hinnant's "chrono-compatible
 * low-level date algorithms" (civil_from_days). Returns false otherwise.
 */
static bool format_fast(int64_t secs, int64_t frac, char *out, size_t cap)
{
    if (cap < 31 || secs < -62167219200 || secs >= 253402300800) return false;
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) sod += 86400, days--;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    unsigned y = (unsigned)(yoe + era * 400 + (m <= 2));
    char *p = put2(put2(out, y / 100), y % 100);
    *p++ = '-';
    p = put2(p, m);
    *p++ = '-';
    p = put2(p, d);
    *p++ = 'T';
    p = put2(p, (unsigned)(sod / 3600));
    *p++ = ':';
    p = put2(p, (unsigned)(sod / 60 % 60));
    *p++ = ':';
    p = put2(p, (unsigned)(sod % 60));
    if (frac) {
        *p++ = '.';
        int digits = 9;
        while (frac % 10 == 0) frac /= 10, digits--;
        for (int i = digits - 1; i >= 0; i--, frac /= 10) p[i] = (char)('0' + frac % 10);
        p += digits;
    }
    *p++ = 'Z';
    *p = 0;
    return true;
}

void mt_time_format(int64_t ns, char *out, size_t cap)
{
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) secs--, frac += 1000000000;
    if (format_fast(secs, frac, out, cap)) return;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac && n > 0 && (size_t)n < cap) {
        char f[16];
        snprintf(f, sizeof f, ".%09lld", (long long)frac);
        size_t fl = strlen(f);
        while (f[fl - 1] == '0') f[--fl] = '\0';
        n += snprintf(out + n, cap - (size_t)n, "%s", f);
    }
    if (n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, "Z");
}
