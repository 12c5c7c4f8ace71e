/*
 * test_metron_cli.c — the real metron binary on a data directory the test
 * writes through the engine: output in each format, usage errors and exit
 * codes, and reading beside a writer that holds the directory.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
             "--agg count,stddev --by none --format table",
             dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "time\tcount\tstddev\n2025-01-01T00:00:00Z\t8\t5.477225575051661\n");
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
