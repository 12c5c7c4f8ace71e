/*
 * mt_log.h — levelled logging to stderr, one logfmt-style line per event:
 *
 *   ts=2026-11-24T07:56:02.123Z level=info msg="listening" addr=127.0.0.1:8089
 *
 * Callers pass the key=value rest already formatted. A rate-limited form
 * keeps floods (bad lines from one client) to a few lines per second and
 * says how many were suppressed. Thread-safe.
 */
#ifndef MT_LOG_H
#define MT_LOG_H

#include <stdint.h>

typedef enum mt_log_level {
    MT_LOG_DEBUG = 0,
    MT_LOG_INFO,
    MT_LOG_WARN,
    MT_LOG_ERROR,
} mt_log_level;

/* Lines below level are dropped (default MT_LOG_INFO). Any thread, at any time. */
void mt_log_set_level(mt_log_level level);

/* The level set. Any thread. */
mt_log_level mt_log_get_level(void);

/* Parse "debug", "info", "warn", "error". Returns 0 and sets *out, or -1. */
int mt_log_level_parse(const char *name, mt_log_level *out);

/* Log msg (printf format) at level. */
__attribute__((format(printf, 2, 3))) void mt_log(mt_log_level level, const char *fmt, ...);

/* A limiter: at most `burst` lines per second; the next line that passes reports the rest. */
typedef struct mt_log_limit {
    int64_t window; /* current second */
    uint32_t used, suppressed;
} mt_log_limit;

__attribute__((format(printf, 4, 5))) void mt_log_limited(mt_log_limit *lim, uint32_t burst,
                                                          mt_log_level level, const char *fmt, ...);

#endif
