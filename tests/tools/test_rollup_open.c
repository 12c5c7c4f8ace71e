/*
 * test_rollup_open.c — `metron rollup` and /api/v1/rollup on a range that
 * holds the open hour: instead of a bare header or an empty list they say
 * when its rollup appears (the hour's end plus metrond's grace): a JSON
 * member "open", a table's last line, a CSV's note on stderr.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

static void utc(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* cmd's output (as its redirections say) into out; its exit status. */
static int run(const char *cmd, char *out, size_t cap)
{
    return mt_test_run(out, cap, cmd);
}

Test(rollup_open, the_open_hour_says_when_its_rollup_appears, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off --grace 600"); /* the last --grace wins */
    int64_t now = (int64_t)time(NULL), hour = now / 3600 * 3600;
    char lp[128], path[256], body[8192], want[256], h[32], at[32], cmd[1024];
    snprintf(lp, sizeof lp, "cpu,host=a usage=1 %lld\n", (long long)now);
    mth_write(&d, lp);
    utc(hour, h, sizeof h);
    utc(hour + 3600 + 600, at, sizeof at);

    /* /api/v1/rollup: no row yet, and the open hour with when it appears */
    snprintf(path, sizeof path, "/api/v1/rollup?from=%lld&to=%lld", (long long)(now - 3600),
             (long long)(now + 60));
    cr_assert_eq(mth_http(d.http, "GET", path, NULL, NULL, 0, body, sizeof body), 200, "%s", body);
    cr_expect(strstr(body, "\"rows\":[]"), "%s", body);
    snprintf(want, sizeof want, "{\"hour\":\"%s\",\"available_at\":\"%s\"}]}\n", h, at);
    cr_expect(strstr(body, want), "want %s in %s", want, body);
    cr_expect(strstr(body, "\"open\":[{\""), "%s", body);

    /* a range of sealed (past) hours: no "open" */
    snprintf(path, sizeof path, "/api/v1/rollup?from=%lld&to=%lld", (long long)(hour - 3 * 3600),
             (long long)(hour - 2 * 3600));
    cr_assert_eq(mth_http(d.http, "GET", path, NULL, NULL, 0, body, sizeof body), 200, "%s", body);
    cr_expect(strstr(body, "\"rows\":[]}\n") && !strstr(body, "open"), "%s", body);

    /* metron rollup --url, table: the header, then the line that says when */
    snprintf(want, sizeof want,
             "-- hour %s is open: its rollup appears at %s (its end plus the grace, once its "
             "writes settle)\n",
             h, at);
    snprintf(cmd, sizeof cmd,
             "%s rollup --url http://127.0.0.1:%d --from %lld --to %lld --format table 2>&1",
             METRON_PATH, d.http, (long long)(now - 3600), (long long)(now + 60));
    cr_expect_eq(run(cmd, body, sizeof body), 0, "%s", body);
    cr_expect(strstr(body, "hour_bucket\t") == body && strstr(body, want), "want %s in %s", want,
              body);

    /* metron rollup --data, CSV: rows only on stdout, the note on stderr (the grace given) */
    snprintf(cmd, sizeof cmd,
             "%s rollup --data %s --from %lld --to %lld --format csv --grace 10m 2>/dev/null",
             METRON_PATH, d.dir, (long long)(now - 3600), (long long)(now + 60));
    cr_expect_eq(run(cmd, body, sizeof body), 0, "%s", body);
    cr_expect_str_eq(body, "hour_bucket,business_id,metric_category,metric_name,sample_count,"
                           "avg_value,min_value,max_value,median_value,p95_value,p99_value\n");
    snprintf(cmd, sizeof cmd,
             "%s rollup --data %s --from %lld --to %lld --format csv --grace 10m 2>&1 >/dev/null",
             METRON_PATH, d.dir, (long long)(now - 3600), (long long)(now + 60));
    cr_expect_eq(run(cmd, body, sizeof body), 0, "%s", body);
    snprintf(want, sizeof want, "metron: hour %s is open: its rollup appears at %s", h, at);
    cr_expect(strstr(body, want), "want %s in %s", want, body);
    mth_stop(&d);
    mth_cleanup(&d);
}
