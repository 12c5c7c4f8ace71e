/*
 * test_cli_ux.c — `metron` as a user expects it: pNN from p0 to p100 (and
 * p999), an unknown one refused by name; a selector that matches nothing
 * said on stderr with exit code 3; aligned table output (tsv for the old
 * tab form); flags --url cannot honour refused; subcommands that read a
 * data directory refuse --url by name. Against a live metrond, with --data
 * (beside it) and --url.
 */
#include "tools/metrond_harness.h"

static char err_path[160];

/* Run `metron ARGS`; stdout into out, stderr into err; the exit status. */
static int metron(const char *args, char *out, size_t cap, char *err, size_t ecap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", METRON_PATH, args, err_path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t got = 0, n;
    while (got + 1 < cap && (n = fread(out + got, 1, cap - 1 - got, p)) > 0) got += n;
    out[got] = '\0';
    int st = pclose(p);
    FILE *e = fopen(err_path, "r");
    size_t eg = e ? fread(err, 1, ecap - 1, e) : 0;
    err[eg] = '\0';
    if (e) fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static mth_daemon d;
static char url[64], data[200];

static void setup(void)
{
    mth_start(&d, NULL, NULL);
    snprintf(err_path, sizeof err_path, "%s.err", d.dir);
    snprintf(url, sizeof url, "--url http://127.0.0.1:%d", d.http);
    snprintf(data, sizeof data, "--data %s", d.dir);
    char lines[512];
    long long t = (long long)time(NULL) - 600;
    /* values 1..101 of one series: the p-th percentile (PERCENTILE_CONT) is 1 + p */
    size_t o = 0;
    for (int i = 0; i <= 100; i += 1) {
        char l[96];
        snprintf(l, sizeof l, "lat,host=a-rather-long-host-name ms=%d %lld\n", i + 1, t + i);
        if (o + strlen(l) >= sizeof lines) {
            mth_write(&d, lines);
            o = 0;
        }
        o += (size_t)snprintf(lines + o, sizeof lines - o, "%s", l);
    }
    if (o) mth_write(&d, lines);
    snprintf(lines, sizeof lines, "lat,host=b ms=5 %lld\n", t);
    mth_write(&d, lines);
}

static void teardown(void)
{
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(err_path);
}

TestSuite(cli_ux, .init = setup, .fini = teardown);

Test(cli_ux, percentiles_run_from_p0_to_p100_and_p999_is_99_9)
{
    char out[8192], err[4096], args[512];
    const char *where[] = {data, url};
    for (int w = 0; w < 2; w++) {
        snprintf(args, sizeof args,
                 "query %s 'lat.ms{host=\"a-rather-long-host-name\"}' --from -1h --to now --agg "
                 "p0,p100,p50,p99.5,p999,p5 --format csv",
                 where[w]);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
        /* 101 values 1..101: pq = 1 + 100 q */
        cr_expect(strstr(out, ",1,101,51,100.5,100.9,6\n"), "%s: %s", where[w], out);
        snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --agg p101", where[w]);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 2, "%s", out);
        cr_expect(strstr(err, "'p101'"), "the error names it: %s", err);
        snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --agg p1000x", where[w]);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 2, "%s", out);
        cr_expect(strstr(err, "'p1000x'"), "%s", err);
    }
}

Test(cli_ux, a_selector_that_matches_nothing_says_so_with_exit_3)
{
    char out[8192], err[4096], args[512];
    snprintf(args, sizeof args, "query %s nope.ms --from -1h --to now --format csv", data);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 3, "%s", err);
    cr_expect(strstr(err, "no series matches 'nope.ms'"), "%s", err);
    snprintf(args, sizeof args, "query %s nope.ms --from -1h --to now --format json", url);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 3, "%s", err);
    cr_expect(strstr(err, "no rows"), "%s", err);
    /* a match is exit 0 and quiet */
    snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --format csv", url);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(err, "");
}

Test(cli_ux, table_output_is_aligned_and_tsv_keeps_the_tabs)
{
    char out[65536], err[4096], args[512];
    const char *where[] = {data, url};
    for (int w = 0; w < 2; w++) {
        snprintf(args, sizeof args,
                 "query %s lat.ms --from -1h --to now --agg count,max --format table", where[w]);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
        cr_expect(!strchr(out, '\t'), "no tabs: %s", out);
        /* every line's second column starts at the same offset */
        char *l1 = out, *l2 = strchr(out, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
        cr_assert(l3 > l2 && l2 > l1, "%s", out);
        size_t c1 = strstr(l1, "  ") - l1, c2 = strstr(l2, "  ") - l2;
        while (l1[c1] == ' ') c1++;
        while (l2[c2] == ' ') c2++;
        cr_expect_eq(c1, c2, "columns line up: %s", out);
        cr_expect(strstr(out, "series  "), "%s", out);
        snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --agg count --format tsv",
                 where[w]);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
        cr_expect(!strncmp(out, "series\ttime\tcount\n", 18), "%s", out);
    }
}

Test(cli_ux, flags_and_subcommands_url_cannot_serve_are_refused)
{
    char out[8192], err[4096], args[512];
    snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --plot", url);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 2);
    cr_expect(strstr(err, "--plot draws from --data only"), "%s", err);
    /* --max-series is honoured: the daemon refuses 2 series over a limit of 1 */
    snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --max-series 1", url);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 1, "%s", out);
    cr_expect(strstr(err, "more than the limit of 1"), "%s", err);
    snprintf(args, sizeof args, "query %s lat.ms --from -1h --to now --max-series 2 --format csv",
             url);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    const char *sub[] = {"series lat.ms", "tags host", "inspect", "retention"};
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        snprintf(args, sizeof args, "%s %s", sub[i], url);
        cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 2, "%s", sub[i]);
        cr_expect(strstr(err, "--url is not supported"), "%s: %s", sub[i], err);
    }
}

Test(cli_ux, series_without_a_selector_lists_measurements)
{
    char out[8192], err[4096], args[512], line[128];
    snprintf(line, sizeof line, "disk,host=a free=1,used=2 %lld\n", (long long)time(NULL) - 60);
    mth_write(&d, line);
    snprintf(args, sizeof args, "series %s", data);
    cr_expect_eq(metron(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(out, "disk\t2\nlat\t2\n");
    cr_expect_str_eq(err, "2 measurements\n");
}
