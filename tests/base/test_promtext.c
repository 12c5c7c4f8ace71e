/* test_promtext.c — engine/base/mt_promtext.h: /metrics lines as Prometheus reads them. */
#include <criterion/criterion.h>
#include <string.h>

#include "mt_promtext.h"

Test(promtext, a_family_has_help_then_type_and_one_its_sample)
{
    mt_sbuf b = {0};
    mt_promtext_family(&b, "metron_lines_rejected_total", "counter", "Lines rejected, by reason.");
    mt_sb_printf(&b, "metron_lines_rejected_total{reason=\"%s\"} %llu\n", "bad", 3ULL);
    mt_promtext_one(&b, "metron_series", "gauge", "Series known.", 12345678901234.0);
    mt_promtext_one(&b, "metron_ratio", "gauge", "A fraction.", 0.1);
    cr_assert(!b.oom);
    cr_expect_str_eq(b.p, "# HELP metron_lines_rejected_total Lines rejected, by reason.\n"
                          "# TYPE metron_lines_rejected_total counter\n"
                          "metron_lines_rejected_total{reason=\"bad\"} 3\n"
                          "# HELP metron_series Series known.\n"
                          "# TYPE metron_series gauge\n"
                          "metron_series 12345678901234\n"
                          "# HELP metron_ratio A fraction.\n"
                          "# TYPE metron_ratio gauge\n"
                          "metron_ratio 0.10000000000000001\n");
    cr_expect_eq(b.len, strlen(b.p));
    mt_sb_free(&b);
}

Test(promtext, a_help_longer_than_any_fixed_buffer_is_kept_whole)
{
    char help[2000];
    memset(help, 'h', sizeof help - 1);
    help[sizeof help - 1] = '\0';
    mt_sbuf b = {0};
    mt_promtext_one(&b, "m", "counter", help, 1);
    cr_assert(!b.oom);
    cr_expect_eq(b.len, strlen("# HELP m \n# TYPE m counter\nm 1\n") + strlen(help));
    cr_expect(strstr(b.p, help));
    mt_sb_free(&b);
}
