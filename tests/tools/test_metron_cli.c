/*
 * test_metron_cli.c — the real metron binary on a data directory the test
 * writes through the engine: output in each format, usage errors and exit
 * codes, and reading beside a writer that holds the directory.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "mt_engine.h"
#include "test_util.h"

#define T0 (1735689600LL * 1000000000LL)
#define S  1000000000LL

static char dir[128];
static mt_engine *writer; /* stays open: metron must read beside it */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/metron-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    mt_engine_options o = mt_engine_options_default();
    o.settle_records = 0; /* hours seal as soon as the watermark passes them */
    o.dir = dir;
    o.auto_seal = false;
    cr_assert_eq(mt_engine_open(&o, &writer), MT_OK);
    mt_batch *b = mt_batch_new();
    const char *hosts[] = {"a", "b,c"}; /* a comma: CSV must quote the series */
    for (int h = 0; h < 2; h++) {
        char key[256];
        mt_name tk[2] = {{"host", 4}, {"region", 6}},
                tv[2] = {{hosts[h], strlen(hosts[h])}, {h ? "eu" : "us", 2}};
        size_t kl =
            mt_series_key(key, sizeof key, (mt_name){"cpu", 3}, tk, tv, 2, (mt_name){"usage", 5});
        for (int i = 0; i < 4; i++)
            mt_batch_add(b, key, kl, T0 + i * 1800 * S, MT_VT_FLOAT,
                         (mt_val){.f = h * 10 + i + 0.5}, NULL);
    }
    mt_write_result r;
    cr_assert_eq(mt_engine_write(writer, b, &r), MT_OK);
    mt_batch_free(b);
    cr_assert_eq(mt_engine_seal(writer, false, NULL), MT_OK);
}

static void teardown(void)
{
    mt_engine_close(writer);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(cli, .init = setup, .fini = teardown);

/* Run metron with args; stdout into out; returns the exit status. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", METRON_PATH, args);
    return mt_test_run(out, cap, cmd);
}

Test(cli, raw_csv_quotes_series_and_prints_rfc3339)
{
    char out[8192], args[512];
    snprintf(args, sizeof args,
             "query --data %s 'cpu.usage{host=\"b,c\"}' --from 2025-01-01T00:00:00Z --to "
             "2025-01-01T01:00:00Z --format csv",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "series,time,value\n"
                          "\"cpu,host=b\\,c,region=eu usage\",2025-01-01T00:00:00Z,10.5\n"
                          "\"cpu,host=b\\,c,region=eu usage\",2025-01-01T00:30:00Z,11.5\n");
}

Test(cli, aggregated_by_tag_in_json_and_table)
{
    char out[8192], args[512];
    snprintf(args, sizeof args,
             "query --data %s cpu.usage --from 1735689600 --to 2025-01-01T02:00:00Z --step 1h "
             "--agg count,avg,p50,max --by region --format json",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "{\"columns\":[\"region\",\"time\",\"count\",\"avg\",\"p50\",\"max\"],"
                          "\"rows\":[[\"eu\",\"2025-01-01T00:00:00Z\",2,11,11,11.5],"
                          "[\"eu\",\"2025-01-01T01:00:00Z\",2,13,13,13.5],"
                          "[\"us\",\"2025-01-01T00:00:00Z\",2,1,1,1.5],"
                          "[\"us\",\"2025-01-01T01:00:00Z\",2,3,3,3.5]]}\n");
    snprintf(args, sizeof args,
             "query --data %s cpu.usage --from 1735689600 --to 2025-01-01T02:00:00Z "
             "--agg count,stddev --by none --format tsv",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "time\tcount\tstddev\n2025-01-01T00:00:00Z\t8\t5.477225575051661\n");
    /* table: the same columns, aligned */
    snprintf(args, sizeof args,
             "query --data %s cpu.usage --from 1735689600 --to 2025-01-01T02:00:00Z "
             "--agg count,stddev --by none --format table",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "time                  count  stddev\n"
                          "2025-01-01T00:00:00Z  8      5.477225575051661\n");
}

Test(cli, errors_name_what_was_wrong_with_the_right_exit_code)
{
    char out[8192], args[512];
    snprintf(args, sizeof args, "query --data %s 'cpu.usage{host=a}' --from -1h --to now", dir);
    cr_expect_eq(run(args, out, sizeof out), 2);
    cr_expect(strstr(out, "the value of 'host' must be in double quotes"), "%s", out);
    snprintf(args, sizeof args, "query --data %s cpu.usage --from yesterday --to now", dir);
    cr_expect_eq(run(args, out, sizeof out), 2);
    cr_expect(strstr(out, "--from is not a time"), "%s", out);
    snprintf(args, sizeof args, "query --data %s cpu.usage --from -1h --to now --agg median", dir);
    cr_expect_eq(run(args, out, sizeof out), 2);
    cr_expect_eq(
        run("query --data /tmp/metron-nothing-here x --from -1h --to now", out, sizeof out), 1);
    cr_expect(strstr(out, "no Metron data there"), "%s", out);
    cr_expect_eq(run("frobnicate", out, sizeof out), 2);
    cr_expect_eq(run("help query", out, sizeof out), 0);
    cr_expect(strstr(out, "usage: metron query"), "%s", out);
}

Test(cli, series_and_tags)
{
    char out[8192], args[512];
    snprintf(args, sizeof args, "series --data %s 'cpu.usage{region=\"eu\"}'", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "cpu,host=b\\,c,region=eu usage\n1 series\n");
    snprintf(args, sizeof args, "tags --data %s region", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "eu\t1\nus\t1\n");
    snprintf(args, sizeof args, "tags --data %s region 'cpu.usage{host!=\"a\"}'", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "eu\t1\n");
}

/* import, export, import the export elsewhere, export again: the same bytes */
Test(cli, import_export_round_trip_with_partial_writes)
{
    char in[] = "/tmp/metron-cli-in-XXXXXX", d1[] = "/tmp/metron-cli-d1-XXXXXX",
         d2[] = "/tmp/metron-cli-d2-XXXXXX";
    int fd = mkstemp(in);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# a comment\n"
               "w,host=a\\ b temp=21.5,ok=true,n=-3i,u=4u,s=\"x \\\"y\\\" \\\\ z\" 1735689600\n"
               "w,host=a\\ b temp=0.1 1735689610\n"
               "w,host=c temp=oops 1735689620\n"
               "w,host=c temp=-0.0000001 1735689630\n");
    fclose(f);
    cr_assert_not_null(mkdtemp(d1));
    cr_assert_not_null(mkdtemp(d2));
    char out[8192], args[1024], first[8192];
    snprintf(args, sizeof args, "import --data %s --precision s %s", d1, in);
    cr_expect_eq(run(args, out, sizeof out), 1, "a rejected line makes the exit code 1");
    cr_expect(strstr(out, "line 4 col 15: invalid field value \"oops\""), "%s", out);
    cr_expect(strstr(out, "imported 7 points from 3 lines; 1 rejected"), "%s", out);
    snprintf(args, sizeof args, "export --data %s w", d1);
    cr_assert_eq(run(args, first, sizeof first), 0, "%s", first);
    cr_expect_str_eq(first, "w,host=a\\ b temp=21.5 1735689600000000000\n"
                            "w,host=a\\ b temp=0.1 1735689610000000000\n"
                            "w,host=a\\ b ok=true 1735689600000000000\n"
                            "w,host=a\\ b n=-3i 1735689600000000000\n"
                            "w,host=a\\ b u=4u 1735689600000000000\n"
                            "w,host=a\\ b s=\"x \\\"y\\\" \\\\ z\" 1735689600000000000\n"
                            "w,host=c temp=-1e-07 1735689630000000000\n");
    snprintf(args, sizeof args, "export --data %s w > %s.lp && %s import --data %s %s.lp", d1, in,
             METRON_PATH, d2, in);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    snprintf(args, sizeof args, "export --data %s w", d2);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, first);
    snprintf(args, sizeof args, "rm -rf %s %s %s %s.lp", d1, d2, in, in);
    cr_expect_eq(system(args), 0);
}

Test(cli, inspect_reports_series_points_and_bytes)
{
    char out[8192], args[512];
    snprintf(args, sizeof args, "inspect --data %s --format json", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "\"series\":2,"), "%s", out);
    /* the on-disk format of this directory and the newest this build reads (issue 22) */
    cr_expect(strstr(out, "\"format\":6,\"format_max\":6,\"schema_version\":"), "%s", out);
    /* the first hour is sealed (the data passed it), the second is in the head */
    cr_expect(strstr(out, "\"sealed_hours\":1,"), "%s", out);
    cr_expect(strstr(out, "\"points_sealed\":4,\"points_head\":4,"), "%s", out);
    cr_expect(strstr(out, "\"measurements\":[{\"name\":\"cpu\",\"series\":2,"), "%s", out);
    mt_engine_seal(writer, true, NULL);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "\"sealed_hours\":2,"), "%s", out);
    cr_expect(strstr(out, "\"points_sealed\":8,\"points_head\":0,"), "%s", out);
    cr_expect(
        strstr(out, "\"oldest\":\"2025-01-01T00:00:00Z\",\"newest\":\"2025-01-01T01:30:00Z\""),
        "%s", out);
}

Test(cli, plot_draws_each_series)
{
    char out[8192], args[512];
    snprintf(args, sizeof args,
             "query --data %s cpu.usage --from 1735689600 --to 2025-01-01T02:00:00Z --plot", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "cpu,host=a,region=us usage\n  ▁▃▆█  min 0.5  max 3.5  (4 values)\n"),
              "%s", out);
    cr_expect(strstr(out, "cpu,host=b\\,c,region=eu usage\n"), "%s", out);
}

Test(cli, rollup_groups_series_and_days)
{
    char out[8192], args[512];
    mt_engine_seal(writer, true, NULL);
    /* per group, the seed's columns; the system-wide tenant has no business_id */
    snprintf(args, sizeof args,
             "rollup --data %s --from 2025-01-01T00:00:00Z --to 2025-01-01T02:00:00Z --format csv",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "hour_bucket,business_id,metric_category,metric_name,sample_count,"
                          "avg_value,min_value,max_value,median_value,p95_value,p99_value\n"
                          "2025-01-01T00:00:00Z,,cpu,usage,4,6,0.5,11.5,6,11.35,"
                          "11.469999999999999\n"
                          "2025-01-01T01:00:00Z,,cpu,usage,4,8,2.5,13.5,8,13.35,"
                          "13.469999999999999\n");
    /* per series, filtered by a selector */
    snprintf(
        args, sizeof args,
        "rollup --data %s --from 1735689600 --to 1735696800 --series 'cpu.usage{host=\"b,c\"}'",
        dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "hour_bucket,series,sample_count,avg_value,min_value,max_value,"
                          "median_value,p95_value,p99_value\n"
                          "2025-01-01T00:00:00Z,\"cpu,host=b\\,c,region=eu usage\",2,11,10.5,11.5,"
                          "11,11.45,11.49\n"
                          "2025-01-01T01:00:00Z,\"cpu,host=b\\,c,region=eu usage\",2,13,12.5,13.5,"
                          "13,13.45,13.49\n");
    /* a day: exact count/avg/min/max; --exact quantiles equal PERCENTILE_CONT of all 8 */
    snprintf(args, sizeof args,
             "rollup --data %s --from 2025-01-01 --to 2025-01-02 --step 1d --exact --format json",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "[[\"2025-01-01T00:00:00Z\",null,\"cpu\",\"usage\",8,7,0.5,13.5,7,"
                          "13.149999999999999,13.43]]"),
              "%s", out);
    /* from the sketches: within 1% of those */
    snprintf(args, sizeof args,
             "rollup --data %s --from 2025-01-01 --to 2025-01-02 --step 1d --format csv", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    double v[7];
    const char *row = strstr(out, "2025-01-01T00:00:00Z,,cpu,usage,");
    cr_assert_not_null(row, "%s", out);
    cr_assert_eq(sscanf(row + 32, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                        &v[5], &v[6]),
                 7, "%s", row);
    cr_expect(v[0] == 8 && v[1] == 7 && v[2] == 0.5 && v[3] == 13.5, "%s", row);
    const double exact[3] = {7, 13.15, 13.43};
    for (int i = 0; i < 3; i++) cr_expect(fabs(v[4 + i] - exact[i]) <= 0.01 * exact[i], "%s", row);
    /* errors name what was wrong */
    snprintf(args, sizeof args, "rollup --data %s --from 1735689600 --to 1735696800 --step 90m",
             dir);
    cr_expect_eq(run(args, out, sizeof out), 2);
    cr_expect(strstr(out, "whole number of hours"), "%s", out);
}

Test(cli, retention_and_compact_by_hand)
{
    char out[8192], args[1024];
    mt_engine_seal(writer, true, NULL);
    snprintf(args, sizeof args, "retention show --data %s --now 2025-06-01", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "raw points     90d  (default)\nhourly rollups 400d\n"), "%s", out);
    cr_expect(strstr(out, "would remove: 2 whole hours, 0 hours rewritten, 4 series-hours"), "%s",
              out);
    /* the writer holds the directory, as metrond would: both refuse, saying why */
    snprintf(args, sizeof args, "retention apply --data %s", dir);
    cr_expect_eq(run(args, out, sizeof out), 1);
    cr_expect(strstr(out, "in use by a running metrond"), "%s", out);
    snprintf(args, sizeof args, "compact --data %s", dir);
    cr_expect_eq(run(args, out, sizeof out), 1);
    cr_expect(strstr(out, "in use by a running metrond"), "%s", out);
    mt_engine_close(writer);
    writer = NULL;
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "compacted: 0 hours merged with their late points; index.mdb "), "%s",
              out);
    /* raw points a day, rollups for ever: the points go, the rollups stay */
    char conf[] = "/tmp/metron-cli-retention-XXXXXX";
    mt_test_file(conf, "[retention]\ndefault = 1d\nrollups = forever\n");
    snprintf(args, sizeof args, "retention apply --data %s --config %s --dry-run", dir, conf);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "would remove: 2 whole hours"), "%s", out);
    snprintf(args, sizeof args, "retention apply --data %s --config %s", dir, conf);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "removed: 2 whole hours, 0 hours rewritten, 4 series-hours (8 points), "
                          "rollups of 0 hours"),
              "%s", out);
    snprintf(args, sizeof args,
             "query --data %s cpu.usage --from 2025-01-01 --to 2025-01-02 --format csv", dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "series,time,value\n");
    snprintf(args, sizeof args, "rollup --data %s --from 2025-01-01 --to 2025-01-02 --format csv",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "2025-01-01T01:00:00Z,,cpu,usage,4,8,"), "rollups outlive: %s", out);
    /* a bad policy is named */
    int fd = open(conf, O_WRONLY | O_TRUNC);
    const char *bad = "[retention]\ndefault = soon\n";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    cr_expect_eq(run(args, out, sizeof out), 0);
    snprintf(args, sizeof args, "retention show --data %s --config %s", dir, conf);
    cr_expect_eq(run(args, out, sizeof out), 2);
    cr_expect(strstr(out, ":2: default: 'soon' is not a duration"), "%s", out);
    unlink(conf);
}

Test(cli, rules_check_and_eval)
{
    char out[8192], args[1024], path[] = "/tmp/metron-cli-rules-XXXXXX";
    mt_test_file(path,
                 "[rule hot]\nmetric_name = cpu.usage\nevaluation_window = 2h\n"
                 "warning_threshold = 5\ncritical_threshold = 12\ncomparison_operator = gt\n");
    snprintf(args, sizeof args, "rules check %s", path);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "1 rules, 0 webhooks, all valid"), "%s", out);
    /* host a averages 2 over the two hours (below 5), host b 12 (not above 12: a warning) */
    snprintf(args, sizeof args, "rules eval --data %s %s --at 2025-01-01T02:00:00Z", dir, path);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "hot\tcpu,host=a,region=us usage\tnone\t2\n"), "%s", out);
    cr_expect(strstr(out, "hot\tcpu,host=b\\,c,region=eu usage\twarning\t12\tgt 5\n"), "%s", out);
    int fd = open(path, O_WRONLY | O_TRUNC);
    const char *bad = "[rule hot]\nmetric_name = cpu.usage\ncomparison_operator = GT\n";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    snprintf(args, sizeof args, "rules check %s", path);
    cr_expect_eq(run(args, out, sizeof out), 1);
    cr_expect(strstr(out, ":3: [rule hot] comparison_operator: gt, lt, eq, ne, gte or lte"), "%s",
              out);
    unlink(path);
}
