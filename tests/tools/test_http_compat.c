/*
 * test_http_compat.c — what existing clients rely on from metrond's HTTP API:
 * curl's Expect: 100-continue (answered before the body, refused early with
 * 413), InfluxDB 1.x's /query setup statements and /ping?verbose=true (raw
 * requests and Debian's python3-influxdb), db= and bucket= that never share
 * a series, and /metrics that promtool accepts.
 */
#include <poll.h>
#include <sys/stat.h>

#include "tools/metrond_harness.h"

/* Run cmd through the shell; its stdout into out; the exit status (or -1). */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t got = 0, n;
    while (got + 1 < cap && (n = fread(out + got, 1, cap - 1 - got, p)) > 0) got += n;
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A file of n lines of line protocol (each ~60 bytes, times within the last hour). */
static void write_lp_file(const char *path, int n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    long long now = (long long)time(NULL) - 3000;
    for (int i = 0; i < n; i++)
        fprintf(f, "big,host=h%03d,region=eu-west usage_user=%d.25 %lld\n", i % 100, i,
                now + i / 100);
    fclose(f);
}

static char big_path[160];

static void big_cleanup(void)
{
    unlink(big_path);
}

Test(http_compat, curl_sends_a_1mb_body_without_waiting_for_100_continue, .fini = big_cleanup)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    snprintf(big_path, sizeof big_path, "%s.lp", d.dir);
    write_lp_file(big_path, 30000);
    struct stat sb;
    cr_assert_eq(stat(big_path, &sb), 0);
    cr_assert_gt(sb.st_size, 1 << 20, "over 1 MB: curl sends Expect: 100-continue");
    char cmd[512], out[256];
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code} %%{time_total}' -XPOST "
             "'http://127.0.0.1:%d/write?db=metron&precision=s' --data-binary @%s",
             d.http, big_path);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    int code = 0;
    double secs = 9;
    sscanf(out, "%d %lf", &code, &secs);
    cr_expect_eq(code, 204, "%s", out);
    /* without an answer to Expect, curl waits 1 s before sending the body */
    cr_expect_lt(secs, 0.9, "the write took %.3f s (curl's Expect wait is 1 s)", secs);
    /* over max_body: refused on the headers, before the body, at once */
    mth_stop(&d);
    mth_cleanup(&d);
    mth_start(&d, NULL, "--max-body 100000");
    code = 0, secs = 9;
    /* the port changed with the restart */
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code} %%{time_total}' -XPOST "
             "'http://127.0.0.1:%d/write?db=metron&precision=s' --data-binary @%s",
             d.http, big_path);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    sscanf(out, "%d %lf", &code, &secs);
    cr_expect_eq(code, 413, "%s", out);
    cr_expect_lt(secs, 0.9, "the refusal took %.3f s", secs);
    mth_stop(&d);
    mth_cleanup(&d);
}

/* Read from s until "\r\n\r\n" (or 2 s); the bytes into buf. */
static size_t read_head(int s, char *buf, size_t cap)
{
    size_t got = 0;
    struct pollfd pf = {s, POLLIN, 0};
    while (got + 1 < cap && !strstr(buf, "\r\n\r\n") && poll(&pf, 1, 2000) == 1) {
        ssize_t r = recv(s, buf + got, cap - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = '\0';
    }
    return got;
}

Test(http_compat, continue_comes_before_the_body_and_413_instead_of_it)
{
    mth_daemon d;
    mth_start(&d, NULL, "--max-body 100000");
    char line[128], resp[4096] = "";
    long long now = (long long)time(NULL) - 60;
    int n = snprintf(line, sizeof line, "cont,host=a v=7 %lld\n", now);
    int s = mth_connect(d.http);
    cr_assert_geq(s, 0);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /write?db=metron&precision=s HTTP/1.1\r\nHost: x\r\nExpect: "
                      "100-continue\r\nContent-Length: %d\r\n\r\n",
                      n);
    mth_send_all(s, head, (size_t)hn);
    /* nothing of the body sent yet: the interim answer must come first, and soon */
    int64_t t0 = mth_now_ms();
    read_head(s, resp, sizeof resp);
    cr_expect(!strncmp(resp, "HTTP/1.1 100 Continue\r\n\r\n", 25), "before the body: %s", resp);
    cr_expect_lt(mth_now_ms() - t0, 500);
    mth_send_all(s, line, (size_t)n);
    memset(resp, 0, sizeof resp);
    read_head(s, resp, sizeof resp);
    cr_expect(!strncmp(resp, "HTTP/1.1 204", 12), "after the body: %s", resp);
    close(s);
    /* over max_body: 413 on the headers, and no 100 Continue (the body is never sent) */
    s = mth_connect(d.http);
    cr_assert_geq(s, 0);
    hn = snprintf(head, sizeof head,
                  "POST /write?db=metron HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  "Content-Length: 5000000\r\n\r\n");
    mth_send_all(s, head, (size_t)hn);
    memset(resp, 0, sizeof resp);
    read_head(s, resp, sizeof resp);
    cr_expect(!strncmp(resp, "HTTP/1.1 413", 12), "%s", resp);
    close(s);
    mth_stop(&d);
    mth_cleanup(&d);
}

/* GET /query?q=<q>[&db=<db>] with q percent-encoded; the status, the body into out. */
static int influxql(int port, const char *q, const char *db, char *out, size_t cap)
{
    char path[2048];
    size_t o = (size_t)snprintf(path, sizeof path, "/query?q=");
    for (const char *p = q; *p && o + 4 < sizeof path; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            path[o++] = (char)c;
        else
            o += (size_t)snprintf(path + o, sizeof path - o, "%%%02X", c);
    }
    path[o] = '\0';
    if (db) snprintf(path + o, sizeof path - o, "&db=%s", db);
    return mth_http(port, "GET", path, NULL, NULL, 0, out, cap);
}

Test(http_compat, query_answers_influxdb_setup_statements_as_influxdb_1_8)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char lines[256], body[8192];
    long long now = (long long)time(NULL) - 60;
    snprintf(lines, sizeof lines, "cpu,host=a,region=eu usage=1 %lld\nmem,host=a used=5i %lld\n",
             now, now);
    mth_write(&d, lines);
    cr_expect_eq(mth_http(d.http, "POST", "/write?db=tele&precision=s", NULL, lines, strlen(lines),
                          body, sizeof body),
                 204, "%s", body);
    /* Telegraf's first request */
    cr_expect_eq(mth_http(d.http, "POST", "/query?q=CREATE+DATABASE+%22telegraf%22", NULL, NULL, 0,
                          body, sizeof body),
                 200);
    cr_expect_str_eq(body, "{\"results\":[{\"statement_id\":0}]}");
    cr_expect_eq(influxql(d.http, "SHOW DATABASES", NULL, body, sizeof body), 200);
    cr_expect_str_eq(body, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"databases\","
                           "\"columns\":[\"name\"],\"values\":[[\"metron\"],[\"tele\"]]}]}]}");
    cr_expect_eq(influxql(d.http, "SHOW MEASUREMENTS", "metron", body, sizeof body), 200);
    cr_expect_str_eq(body, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":"
                           "\"measurements\",\"columns\":[\"name\"],\"values\":[[\"cpu\"],[\"mem\"]"
                           "]}]}]}");
    /* another database's db tag is how it is kept, not one of its tag keys */
    cr_expect_eq(influxql(d.http, "SHOW TAG KEYS FROM cpu", "tele", body, sizeof body), 200);
    cr_expect_str_eq(body, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\","
                           "\"columns\":[\"tagKey\"],\"values\":[[\"host\"],[\"region\"]]}]}]}");
    cr_expect_eq(influxql(d.http, "SHOW TAG VALUES WITH KEY IN (\"host\", region)", "metron", body,
                          sizeof body),
                 200);
    cr_expect(strstr(body,
                     "{\"name\":\"cpu\",\"columns\":[\"key\",\"value\"],\"values\":[[\"host\","
                     "\"a\"],[\"region\",\"eu\"]]}"),
              "%s", body);
    cr_expect_eq(influxql(d.http, "SHOW FIELD KEYS; SHOW MEASUREMENTS ON nowhere", "metron", body,
                          sizeof body),
                 200);
    cr_expect_str_eq(body,
                     "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"cpu\",\"columns\":"
                     "[\"fieldKey\",\"fieldType\"],\"values\":[[\"usage\",\"float\"]]},{\"name\":"
                     "\"mem\",\"columns\":[\"fieldKey\",\"fieldType\"],\"values\":[[\"used\","
                     "\"integer\"]]}]},{\"statement_id\":1}]}");
    /* InfluxDB's per-statement error, and its parse-error shape for the rest */
    cr_expect_eq(influxql(d.http, "SHOW MEASUREMENTS", NULL, body, sizeof body), 200);
    cr_expect_str_eq(body,
                     "{\"results\":[{\"statement_id\":0,\"error\":\"database name required\"}]}");
    cr_expect_eq(influxql(d.http, "SELECT usage FROM cpu", "metron", body, sizeof body), 400);
    cr_expect(!strncmp(body, "{\"error\":\"error parsing query: found SELECT", 43), "%s", body);
    cr_expect_eq(influxql(d.http, "SHOW TAG VALUES WITH KEY =~ /h/", "metron", body, sizeof body),
                 400);
    cr_expect(strstr(body, "no regex"), "%s", body);
    /* the influx shell and the Go client POST a form */
    const char *form = "q=SHOW+DATABASES&db=metron";
    cr_expect_eq(mth_http(d.http, "POST", "/query",
                          "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form),
                          body, sizeof body),
                 200);
    cr_expect(strstr(body, "[[\"metron\"],[\"tele\"]]"), "%s", body);
    cr_expect_eq(mth_http(d.http, "GET", "/query", NULL, NULL, 0, body, sizeof body), 400);
    cr_expect(strstr(body, "missing required parameter"), "%s", body);
    /* /ping: 204, and with verbose=true InfluxDB 1.8's 200 and version */
    cr_expect_eq(mth_http(d.http, "GET", "/ping", NULL, NULL, 0, body, sizeof body), 204);
    cr_expect_eq(mth_http(d.http, "GET", "/ping?verbose=true", NULL, NULL, 0, body, sizeof body),
                 200);
    cr_expect_str_eq(body, "{\"version\":\"1.8.10\"}");
    mth_stop(&d);
    mth_cleanup(&d);
}

Test(http_compat, two_databases_keep_the_same_series_and_time_apart)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char line[128], body[8192], path[512];
    long long t = (long long)time(NULL) - 120;
    const char *dbs[] = {"/write?db=a&precision=s", "/write?db=b&precision=s",
                         "/api/v2/write?org=o&bucket=c&precision=s",
                         "/write?db=metron&precision=s"};
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof line, "twin,host=h v=%d %lld\n", i + 1, t);
        cr_expect_eq(mth_http(d.http, "POST", dbs[i], NULL, line, strlen(line), body, sizeof body),
                     204, "%s: %s", dbs[i], body);
    }
    const char *sel[] = {"twin.v%7Bdb%3D%22a%22%7D", "twin.v%7Bdb%3D%22b%22%7D",
                         "twin.v%7Bdb%3D%22c%22%7D"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/api/v1/query?select=%s&from=%lld&to=%lld&format=csv", sel[i],
                 t - 1, t + 1);
        cr_expect_eq(mth_http(d.http, "GET", path, NULL, NULL, 0, body, sizeof body), 200);
        char want[64];
        snprintf(want, sizeof want, ",%d\n", i + 1);
        cr_expect(strstr(body, want), "db %c keeps its own point (%s): %s", 'a' + i, want, body);
    }
    /* the default database is written as the lines say: four series, none overwritten */
    snprintf(path, sizeof path, "/api/v1/query?select=twin.v&from=%lld&to=%lld&format=csv", t - 1,
             t + 1);
    cr_expect_eq(mth_http(d.http, "GET", path, NULL, NULL, 0, body, sizeof body), 200);
    int rows = 0;
    for (const char *p = body; (p = strchr(p, '\n')); p++) rows++;
    cr_expect_eq(rows, 5, "a header and four points: %s", body);
    cr_expect(strstr(body, "\"twin,host=h v\""), "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
}

Test(http_compat, python_influxdb_sets_up_lists_and_queries)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 127.0.0.1 %d 2>&1", INFLUX_SETUP_PY, d.http);
    cr_expect_eq(run(cmd, out, sizeof out), 0, "%s", out);
    mth_stop(&d);
    mth_cleanup(&d);
}

Test(http_compat, promtool_accepts_metrics)
{
    mth_daemon d;
    mth_start(&d, NULL, NULL);
    char lines[128], cmd[512], out[8192];
    snprintf(lines, sizeof lines, "m,host=a v=1 %lld\n", (long long)time(NULL) - 60);
    mth_write(&d, lines);
    snprintf(cmd, sizeof cmd,
             "curl -sf http://127.0.0.1:%d/metrics | promtool check metrics 2>&1; echo rc=$?",
             d.http);
    run(cmd, out, sizeof out);
    cr_expect(strstr(out, "rc=0"), "promtool check metrics: %s", out);
    cr_expect(!strstr(out, "base unit"), "%s", out);
    mth_stop(&d);
    mth_cleanup(&d);
}
