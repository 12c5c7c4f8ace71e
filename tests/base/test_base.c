/* test_base.c — engine/base: the error table and time helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_err.h"
#include "mt_time.h"

Test(err, every_code_has_a_name_and_a_message)
{
#define CHECK(name, value, msg)                                                                    \
    cr_expect_str_eq(mt_err_name(name), #name);                                                    \
    cr_expect_str_eq(mt_strerror(name), msg);
    MT_ERR_MAP(CHECK)
#undef CHECK
    cr_expect_str_eq(mt_err_name(MT_OK), "MT_OK");
    cr_expect_str_eq(mt_strerror(MT_OK), "success");
}

Test(err, errno_values_pass_through)
{
    cr_expect_str_eq(mt_err_name(-ENOENT), "ENOENT");
    cr_expect_str_eq(mt_strerror(-ENOENT), strerror(ENOENT));
    cr_expect_str_eq(mt_err_name(12345), "UNKNOWN");
    errno = EACCES;
    cr_expect_eq(mt_err_from_errno(), -EACCES);
    errno = 0;
    cr_expect_eq(mt_err_from_errno(), -EIO);
}

Test(err, codes_stay_clear_of_errno)
{
#define RANGE(name, value, msg) cr_expect(name <= -30900 && name > -31000, #name);
    MT_ERR_MAP(RANGE)
#undef RANGE
}

Test(time, precision_names)
{
    static const struct {
        const char *name;
        mt_precision p;
        int64_t factor;
    } rows[] = {{"ns", MT_PREC_NS, 1},         {"n", MT_PREC_NS, 1},
                {"us", MT_PREC_US, 1000},      {"u", MT_PREC_US, 1000},
                {"ms", MT_PREC_MS, 1000000},   {"s", MT_PREC_S, 1000000000},
                {"m", MT_PREC_M, 60000000000}, {"h", MT_PREC_H, 3600000000000}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        mt_precision p = (mt_precision)-1;
        cr_assert(mt_precision_parse(rows[i].name, strlen(rows[i].name), &p), "%s", rows[i].name);
        cr_expect_eq(p, rows[i].p);
        cr_expect_eq(mt_precision_factor(p), rows[i].factor);
    }
    mt_precision p = MT_PREC_MS;
    cr_expect_not(mt_precision_parse("", 0, &p));
    cr_expect_not(mt_precision_parse("sec", 3, &p));
    cr_expect_not(mt_precision_parse("nsx", 2 + 1, &p));
    cr_expect_eq(p, MT_PREC_MS);
    cr_expect_str_eq(mt_precision_name(MT_PREC_US), "us");
}

Test(time, conversion_reports_overflow)
{
    int64_t ns = 0;
    cr_expect(mt_time_to_ns(1732420800, MT_PREC_S, &ns));
    cr_expect_eq(ns, 1732420800000000000);
    cr_expect(mt_time_to_ns(-5, MT_PREC_MS, &ns));
    cr_expect_eq(ns, -5000000);
    ns = 7;
    cr_expect_not(mt_time_to_ns(9223372037, MT_PREC_S, &ns));
    cr_expect_not(mt_time_to_ns(INT64_MIN, MT_PREC_US, &ns));
    cr_expect_eq(ns, 7);
}

Test(time, points_in_time_and_durations)
{
    const int64_t now = 1735689600LL * 1000000000, S = 1000000000;
    int64_t t = 0;
    cr_expect(mt_time_parse("2025-01-01T00:00:00Z", now, &t) && t == now);
    cr_expect(mt_time_parse("2025-01-01T01:00:00.5+01:00", now, &t) && t == now + S / 2);
    cr_expect(mt_time_parse("1735689600", now, &t) && t == now);
    cr_expect(mt_time_parse("2025-01-01", now, &t) && t == now);
    cr_expect(mt_time_parse("2025-01-02", now, &t) && t == now + 86400 * S);
    cr_expect(!mt_time_parse("2025-13-01", now, &t));
    cr_expect(mt_time_parse("1735689600.25", now, &t) && t == now + S / 4);
    cr_expect(mt_time_parse("now", now, &t) && t == now);
    cr_expect(mt_time_parse("-24h", now, &t) && t == now - 86400 * S);
    cr_expect(mt_time_parse("now-1h30m", now, &t) && t == now - 5400 * S);
    cr_expect(mt_time_parse("now+5m", now, &t) && t == now + 300 * S);
    cr_expect_not(mt_time_parse("yesterday", now, &t));
    cr_expect_not(mt_time_parse("2025-01-01T00:00:00", now, &t), "needs a zone");
    cr_expect_not(mt_time_parse("-24x", now, &t));
    int64_t d = 0;
    cr_expect(mt_duration_parse("10s", &d) && d == 10 * S);
    cr_expect(mt_duration_parse("1.5h", &d) && d == 5400 * S);
    cr_expect(mt_duration_parse("500ms", &d) && d == S / 2);
    cr_expect(mt_duration_parse("1d", &d) && d == 86400 * S);
    cr_expect_not(mt_duration_parse("", &d));
    cr_expect_not(mt_duration_parse("10", &d));
    cr_expect_not(mt_duration_parse("-5s", &d));
    char buf[40];
    mt_time_format(now, buf, sizeof buf);
    cr_expect_str_eq(buf, "2025-01-01T00:00:00Z");
    mt_time_format(now + 250000000, buf, sizeof buf);
    cr_expect_str_eq(buf, "2025-01-01T00:00:00.25Z");
    mt_time_format(-1, buf, sizeof buf);
    cr_expect_str_eq(buf, "1969-12-31T23:59:59.999999999Z");
}

/* What mt_time_format printed before its fast path: gmtime_r and snprintf. */
static void reference_format(int64_t ns, char *out, size_t cap)
{
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) secs--, frac += 1000000000;
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac) {
        n += snprintf(out + n, cap - (size_t)n, ".%09lld", (long long)frac);
        while (out[n - 1] == '0') out[--n] = 0;
    }
    snprintf(out + n, cap - (size_t)n, "Z");
}

Test(time, format_agrees_with_gmtime_everywhere)
{
    /* every day boundary, leap days and century rules included, 1900 to 2100 */
    char got[48], want[48];
    for (int64_t day = -25567; day < 47482; day++) {
        int64_t edges[] = {day * 86400, day * 86400 + 86399, day * 86400 + 43210};
        for (int i = 0; i < 3; i++) {
            int64_t ns = edges[i] * 1000000000;
            mt_time_format(ns, got, sizeof got);
            reference_format(ns, want, sizeof want);
            cr_assert_str_eq(got, want, "%lld s", (long long)edges[i]);
        }
    }
    /* random nanoseconds over the whole int64 range, fractions of every length */
    srand(7);
    for (int i = 0; i < 200000; i++) {
        int64_t ns =
            (int64_t)(((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand());
        if (i % 3 == 0) ns -= ns % 1000000; /* milliseconds */
        if (i % 2) ns = -ns;
        mt_time_format(ns, got, sizeof got);
        reference_format(ns, want, sizeof want);
        cr_assert_str_eq(got, want, "%lld ns", (long long)ns);
    }
    mt_time_format(INT64_MIN, got, sizeof got);
    reference_format(INT64_MIN, want, sizeof want);
    cr_expect_str_eq(got, want);
}

Test(time, clocks_move_forward)
{
    int64_t a = mt_mono_ns(), w = mt_now_ns();
    cr_expect_gt(w, 1700000000000000000);
    cr_expect_geq(mt_mono_ns(), a);
}
