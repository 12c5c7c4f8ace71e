/*
 * mt_time.h — time in Metron: int64 nanoseconds since the Unix epoch (UTC).
 *
 * The input precision of line protocol is a parameter (InfluxDB 1.x takes
 * n, u, ms, s, m, h on /write; 2.x takes ns, us, ms, s); a timestamp in a
 * coarser unit is multiplied into nanoseconds, with overflow reported, never
 * wrapped.
 */
#ifndef MT_TIME_H
#define MT_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mt_precision {
    MT_PREC_NS = 0, /* nanoseconds (default, like InfluxDB) */
    MT_PREC_US,     /* microseconds */
    MT_PREC_MS,     /* milliseconds */
    MT_PREC_S,      /* seconds */
    MT_PREC_M,      /* minutes (InfluxDB 1.x only) */
    MT_PREC_H,      /* hours (InfluxDB 1.x only) */
} mt_precision;

/*
 * Parse a precision name of len bytes: "ns" or "n", "us" or "u", "ms", "s",
 * "m", "h". Returns true and sets *out on success; false (out untouched) for
 * anything else, including an empty string.
 */
bool mt_precision_parse(const char *name, size_t len, mt_precision *out);

/* The canonical short name of a precision ("ns", "us", ...). Static string. */
const char *mt_precision_name(mt_precision p);

/* Nanoseconds per unit of p (1 for ns, 1000000000 for s, ...). */
int64_t mt_precision_factor(mt_precision p);

/*
 * Convert v, a count of p units, to nanoseconds in *ns. Returns false when
 * the product does not fit an int64 (out untouched).
 */
bool mt_time_to_ns(int64_t v, mt_precision p, int64_t *ns);

/*
 * Parse a point in time: RFC 3339 ("2025-01-01T00:00:00Z",
 * "2025-01-01T01:00:00.5+01:00"), a date ("2025-01-01": midnight UTC), epoch seconds ("1735689600",
 * fractions allowed), "now", or relative to now ("-24h", "now-1h", "now+5m"). now is the reference
 * in ns. Returns true and sets *out, or false.
 */
bool mt_time_parse(const char *s, int64_t now, int64_t *out);

/*
 * Parse a positive duration: a number and a unit, ns us ms s m h d w
 * ("10s", "1.5h", "500ms"); several in a row add up ("1h30m"). Returns true
 * and sets *out (ns), or false.
 */
bool mt_duration_parse(const char *s, int64_t *out);

/*
 * Format ns as RFC 3339 UTC into out (at least 36 bytes): seconds, and the
 * fraction only when it is not zero, without trailing zeros.
 */
void mt_time_format(int64_t ns, char *out, size_t cap);

/* The wall clock (CLOCK_REALTIME) in nanoseconds. */
int64_t mt_now_ns(void);

/* A monotonic clock (CLOCK_MONOTONIC) in nanoseconds, for measuring durations. */
int64_t mt_mono_ns(void);

#endif
