/* test_qparse.c — query/mt_qparse.h: one parser of a query's strings for the CLI and HTTP. */
#include <criterion/criterion.h>
#include <string.h>

#include "mt_err.h"
#include "mt_qparse.h"

#define NOW 1735689600000000000LL /* 2025-01-01T00:00:00Z */

Test(qparse, every_argument_lands_in_the_spec)
{
    mt_query_args a = {.select = "cpu.usage{host=\"a\"}",
                       .from = "-1h",
                       .to = "now",
                       .step = "5m",
                       .agg = "count,p95",
                       .by = "host,,dc",
                       .field = "usage",
                       .max_series = "12"};
    mt_query_parsed p;
    char err[256] = "";
    cr_assert_eq(mt_query_args_parse(&a, MT_QPARSE_HTTP, NOW, &p, err, sizeof err), MT_OK, "%s",
                 err);
    cr_expect_str_eq(p.spec.select, a.select);
    cr_expect_str_eq(p.spec.field, "usage");
    cr_expect_eq(p.spec.from, NOW - 3600000000000LL);
    cr_expect_eq(p.spec.to, NOW);
    cr_expect_eq(p.spec.step, 300000000000LL);
    cr_expect_eq(p.spec.naggs, 2);
    cr_expect_eq(p.spec.aggs, p.aggs);
    cr_expect_str_eq(p.aggs[1].name, "p95");
    cr_expect_eq(p.spec.nby, 2, "empty tag names are skipped");
    cr_expect_str_eq(p.spec.by[0], "host");
    cr_expect_str_eq(p.spec.by[1], "dc");
    cr_expect(!p.spec.by_none);
    cr_expect_eq(p.spec.max_series, 12);
    cr_expect_str_eq(a.by, "host,,dc", "the caller's string is not cut");
}

Test(qparse, by_none_and_the_optional_arguments_left_out)
{
    mt_query_args a = {.select = "m", .from = "0", .to = "60", .by = "none"};
    mt_query_parsed p;
    char err[256] = "";
    cr_assert_eq(mt_query_args_parse(&a, MT_QPARSE_CLI, NOW, &p, err, sizeof err), MT_OK, "%s",
                 err);
    cr_expect(p.spec.by_none);
    cr_expect_eq(p.spec.nby, 0);
    cr_expect_eq(p.spec.step, 0);
    cr_expect_null(p.spec.aggs);
    cr_expect_null(p.spec.field);
    cr_expect_eq(p.spec.max_series, 0);
    cr_expect_eq(p.spec.to, 60000000000LL);
}

/* The same input is refused by both, with the same reason; only the argument's name differs. */
Test(qparse, the_cli_and_http_refuse_the_same_input_with_the_same_reason)
{
    static const struct {
        mt_query_args a;
        const char *http, *cli;
    } cases[] = {
        {{.from = "0", .to = "1"}, "select is required", "SELECTOR is required"},
        {{.select = "m", .to = "1"},
         "from is required: RFC 3339, epoch seconds, now, -24h",
         "--from is required: RFC 3339, epoch seconds, now, -24h"},
        {{.select = "m", .from = "yesterday", .to = "1"},
         "from is not a time: RFC 3339, epoch seconds, now, -24h",
         "--from is not a time: RFC 3339, epoch seconds, now, -24h"},
        {{.select = "m", .from = "0", .to = "later"},
         "to is not a time: RFC 3339, epoch seconds, now, -24h",
         "--to is not a time: RFC 3339, epoch seconds, now, -24h"},
        {{.select = "m", .from = "0", .to = "1", .step = "often"},
         "step is not a duration (10s, 5m, 1h, 1d)",
         "--step is not a duration (10s, 5m, 1h, 1d)"},
        /* HTTP kept the first 8 of these and dropped the ninth without a word */
        {{.select = "m", .from = "0", .to = "1", .by = "a,b,c,d,e,f,g,h,i"},
         "too many by tags (at most 8)",
         "too many --by tags (at most 8)"},
        {{.select = "m", .from = "0", .to = "1", .max_series = "-1"},
         "max_series is a number of series",
         "--max-series is a number of series"},
        {{.select = "m", .from = "0", .to = "1", .max_series = "10x"},
         "max_series is a number of series",
         "--max-series is a number of series"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mt_query_parsed p;
        char err[256] = "";
        cr_expect_eq(mt_query_args_parse(&cases[i].a, MT_QPARSE_HTTP, NOW, &p, err, sizeof err),
                     MT_EINVAL, "case %zu", i);
        cr_expect_str_eq(err, cases[i].http, "case %zu", i);
        cr_expect_eq(mt_query_args_parse(&cases[i].a, MT_QPARSE_CLI, NOW, &p, err, sizeof err),
                     MT_EINVAL, "case %zu", i);
        cr_expect_str_eq(err, cases[i].cli, "case %zu", i);
    }
}

Test(qparse, an_aggregation_or_a_by_too_long_is_refused)
{
    mt_query_parsed p;
    char err[256] = "", by[600];
    mt_query_args a = {.select = "m", .from = "0", .to = "1", .agg = "median"};
    cr_expect_eq(mt_query_args_parse(&a, MT_QPARSE_HTTP, NOW, &p, err, sizeof err), MT_EINVAL);
    cr_expect(strstr(err, "median"), "%s", err);
    memset(by, 'x', sizeof by - 1);
    by[sizeof by - 1] = '\0';
    a = (mt_query_args){.select = "m", .from = "0", .to = "1", .by = by};
    cr_expect_eq(mt_query_args_parse(&a, MT_QPARSE_CLI, NOW, &p, err, sizeof err), MT_EINVAL);
    cr_expect_str_eq(err, "--by is longer than 511 bytes");
    by[MT_QPARSE_MAX_BY_LEN] = '\0';
    cr_expect_eq(mt_query_args_parse(&a, MT_QPARSE_CLI, NOW, &p, err, sizeof err), MT_OK, "%s",
                 err);
    cr_expect_eq(strlen(p.spec.by[0]), MT_QPARSE_MAX_BY_LEN);
}

Test(qparse, format_names_are_one_list)
{
    static const struct {
        const char *name;
        mt_output_format f;
    } ok[] = {{"table", MT_OUT_TABLE},
              {"tsv", MT_OUT_TABLE},
              {"csv", MT_OUT_CSV},
              {"json", MT_OUT_JSON},
              {"series", MT_OUT_SERIES}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        mt_output_format f = MT_OUT_LP;
        cr_expect(mt_output_format_parse(ok[i].name, &f), "%s", ok[i].name);
        cr_expect_eq(f, ok[i].f, "%s", ok[i].name);
        cr_expect(strstr(MT_OUTPUT_FORMAT_NAMES, ok[i].name), "%s is in the names", ok[i].name);
    }
    const char *bad[] = {"JSON", "", "lp", "xml", "tabl", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        mt_output_format f = MT_OUT_LP;
        cr_expect(!mt_output_format_parse(bad[i], &f), "%s", bad[i] ? bad[i] : "NULL");
        cr_expect_eq(f, MT_OUT_LP, "untouched");
    }
    mt_output_format every[] = {MT_OUT_CSV, MT_OUT_TABLE, MT_OUT_JSON, MT_OUT_SERIES};
    for (size_t i = 0; i < sizeof every / sizeof *every; i++) {
        mt_output_format back;
        cr_expect(mt_output_format_parse(mt_output_format_name(every[i]), &back));
        cr_expect_eq(back, every[i], "the name of %d reads back", (int)every[i]);
    }
    cr_expect_str_eq(mt_output_format_name(MT_OUT_LP), "lp");
}
