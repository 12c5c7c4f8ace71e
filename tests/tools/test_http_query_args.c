/*
 * test_http_query_args.c — GET /api/v1/query and metron query take a
 * query's strings through one parser (query/mt_qparse.h): the same input is
 * refused with the same reason, the argument named as each spells it.
 */
#include <criterion/criterion.h>

#include "metrond_harness.h"
#include "mt_qparse.h"

#define NINE_TAGS "a,b,c,d,e,f,g,h,i"

/* The reason of a refused response body {"error":"..."} into out. */
static void error_of(const char *body, char *out, size_t cap)
{
    const char *p = strstr(body, "{\"error\":\"");
    cr_assert_not_null(p, "not an error body: %s", body);
    p += strlen("{\"error\":\"");
    const char *q = strstr(p, "\"}");
    cr_assert_not_null(q, "not an error body: %s", body);
    snprintf(out, cap, "%.*s", (int)(q - p), p);
}

/* metron query's stderr and exit status, on dir with args. */
static int cli_query(const char *dir, const char *args, char *out, size_t cap)
{
    char cmd[2048], path[600];
    snprintf(path, sizeof path, "%s.cli", dir);
    snprintf(cmd, sizeof cmd, "%s query --data %s %s >/dev/null 2>%s", METRON_PATH, dir, args,
             path);
    int st = system(cmd);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f) fclose(f);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* HTTP used to keep the first 8 tags and drop the rest without a word. */
Test(http_query_args, nine_by_tags_are_refused_as_the_cli_refuses_them, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char line[128], body[4096], reason[1024];
    snprintf(line, sizeof line, "cpu,host=a usage=1 %lld\n", (long long)time(NULL));
    mth_write(&d, line);
    int st = mth_http(d.http, "GET",
                      "/api/v1/query?select=cpu.usage&from=-1h&to=now&agg=count&by=" NINE_TAGS,
                      NULL, NULL, 0, body, sizeof body);
    cr_expect_eq(st, 400, "status %d: %s", st, body);
    error_of(body, reason, sizeof reason);

    /* the reason is the parser's, word for word */
    mt_query_args a = {
        .select = "cpu.usage", .from = "-1h", .to = "now", .agg = "count", .by = NINE_TAGS};
    mt_query_parsed p;
    char err[512] = "";
    cr_assert_eq(mt_query_args_parse(&a, MT_QPARSE_HTTP, 0, &p, err, sizeof err), MT_EINVAL);
    cr_expect_str_eq(reason, err);
    cr_expect_str_eq(reason, "too many by tags (at most 8)");

    /* eight are taken */
    st = mth_http(d.http, "GET",
                  "/api/v1/query?select=cpu.usage&from=-1h&to=now&agg=count&by=a,b,c,d,e,f,g,h",
                  NULL, NULL, 0, body, sizeof body);
    cr_expect_eq(st, 200, "status %d: %s", st, body);
    mth_stop(&d);

    /* metron query on the same data: the same reason, the flag spelt --by */
    char out[4096];
    st = cli_query(d.dir, "cpu.usage --from -1h --to now --agg count --by " NINE_TAGS, out,
                   sizeof out);
    cr_expect_neq(st, 0, "metron query took nine tags: %s", out);
    cr_expect(strstr(out, "too many --by tags (at most 8)"), "%s", out);
    mth_cleanup(&d);
}

Test(http_query_args, bad_max_series_and_times_are_refused_by_name, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char body[4096];
    int st = mth_http(d.http, "GET", "/api/v1/query?select=cpu.usage&from=-1h&to=now&max_series=x",
                      NULL, NULL, 0, body, sizeof body);
    cr_expect_eq(st, 400, "status %d: %s", st, body);
    cr_expect(strstr(body, "max_series is a number of series"), "%s", body);
    st = mth_http(d.http, "GET", "/api/v1/query?select=cpu.usage&from=yesterday&to=now", NULL, NULL,
                  0, body, sizeof body);
    cr_expect_eq(st, 400, "status %d: %s", st, body);
    cr_expect(strstr(body, "from is not a time: RFC 3339"), "%s", body);
    st = mth_http(d.http, "GET", "/api/v1/query?select=cpu.usage&to=now", NULL, NULL, 0, body,
                  sizeof body);
    cr_expect_eq(st, 400, "status %d: %s", st, body);
    cr_expect(strstr(body, "from is required: RFC 3339"), "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
}
