/* mt_log.c — logging to stderr (contract in mt_log.h). */
#include "mt_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* read by every thread, changed at a reload (SIGHUP): an atomic word, relaxed (a line logged
   just before or after the change at either level is fine) */
static int min_level = MT_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void mt_log_set_level(mt_log_level level)
{
    __atomic_store_n(&min_level, (int)level, __ATOMIC_RELAXED);
}

mt_log_level mt_log_get_level(void)
{
    return (mt_log_level)__atomic_load_n(&min_level, __ATOMIC_RELAXED);
}

int mt_log_level_parse(const char *name, mt_log_level *out)
{
    for (int i = 0; i <= MT_LOG_ERROR; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (mt_log_level)i;
            return 0;
        }
    }
    return -1;
}

static void vlog(mt_log_level level, const char *fmt, va_list ap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line); /* one write per line keeps lines whole across threads */
}

void mt_log(mt_log_level level, const char *fmt, ...)
{
    if ((int)level < __atomic_load_n(&min_level, __ATOMIC_RELAXED)) return;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void mt_log_limited(mt_log_limit *lim, uint32_t burst, mt_log_level level, const char *fmt, ...)
{
    if ((int)level < __atomic_load_n(&min_level, __ATOMIC_RELAXED)) return;
    int64_t now = (int64_t)time(NULL);
    if (now != lim->window) {
        if (lim->suppressed)
            mt_log(level, "msg=\"log lines suppressed\" count=%u", lim->suppressed);
        lim->window = now;
        lim->used = 0;
        lim->suppressed = 0;
    }
    if (lim->used >= burst) {
        lim->suppressed++;
        return;
    }
    lim->used++;
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}
