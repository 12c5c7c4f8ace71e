/*
 * test_version.c — every binary says what it is (`--version`: version, git
 * commit, build type, library versions), and a running metrond says it too:
 * /health names Metron's version, /metrics carries metron_build_info, while
 * the X-Influxdb-Version header keeps the InfluxDB version clients check.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

static void expect_version(const char *path, const char *prog)
{
    char cmd[1024], out[4096], want[128];
    snprintf(cmd, sizeof cmd, "%s --version 2>&1", path);
    cr_assert_eq(mt_test_run(out, sizeof out, cmd), 0, "%s", out);
    snprintf(want, sizeof want, "%s %s (commit ", prog, MT_VERSION);
    cr_expect(!strncmp(out, want, strlen(want)), "%s --version: %s", prog, out);
    cr_expect(strstr(out, " build)\n"), "the build type: %s", out);
    cr_expect(strstr(out, "\nlibraries: LMDB ") && strstr(out, ", zstd ") &&
                  strstr(out, ", libuv ") && strstr(out, ", libpq ") && strstr(out, ", libcurl "),
              "the libraries it runs with: %s", out);
}

Test(version, every_binary_says_what_it_is)
{
    expect_version(METROND_PATH, "metrond");
    expect_version(METRON_PATH, "metron");
    expect_version(METRON_PGSTAT_PATH, "metron-pgstat");
    char cmd[1024], a[4096], b[4096];
    snprintf(cmd, sizeof cmd, "%s version 2>&1", METRON_PATH);
    cr_assert_eq(mt_test_run(a, sizeof a, cmd), 0, "%s", a);
    snprintf(cmd, sizeof cmd, "%s --version 2>&1", METRON_PATH);
    cr_assert_eq(mt_test_run(b, sizeof b, cmd), 0, "%s", b);
    cr_expect_str_eq(a, b, "`metron version` is `metron --version`");
}

Test(version, a_running_metrond_names_its_version_and_keeps_influxdbs_header, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "");
    char body[65536], want[256];
    cr_assert_eq(mth_http(d.http, "GET", "/health", NULL, NULL, 0, body, sizeof body), 200);
    snprintf(want, sizeof want, "\"version\":\"%s\"", MT_VERSION);
    cr_expect(strstr(body, want), "/health: %s", body);
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
    snprintf(want, sizeof want, "\nmetron_build_info{version=\"%s\",commit=\"", MT_VERSION);
    cr_expect(strstr(body, want) && strstr(body, "# TYPE metron_build_info gauge\n"), "%s",
              strstr(body, "metron_build") ?: body);
    /* the header clients read to learn the API they speak: InfluxDB 1.x's */
    char req[256], resp[4096];
    snprintf(req, sizeof req, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int s = mth_connect(d.http);
    cr_assert_geq(s, 0);
    cr_assert_eq(write(s, req, strlen(req)), (ssize_t)strlen(req));
    ssize_t n, got = 0;
    while (got < (ssize_t)sizeof resp - 1 && (n = read(s, resp + got, sizeof resp - 1 - got)) > 0)
        got += n;
    resp[got > 0 ? got : 0] = '\0';
    close(s);
    cr_expect(strstr(resp, "X-Influxdb-Version: 1.8"), "%s", resp);
    mth_stop(&d);
    mth_cleanup(&d);
}
