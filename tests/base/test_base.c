/* test_base.c — engine/base: the error table and time helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

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

Test(time, clocks_move_forward)
{
    int64_t a = mt_mono_ns(), w = mt_now_ns();
    cr_expect_gt(w, 1700000000000000000);
    cr_expect_geq(mt_mono_ns(), a);
}
