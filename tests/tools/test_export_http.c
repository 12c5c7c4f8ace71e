/*
 * test_export_http.c — metrond's streamed GET|POST /api/v1/export and
 * `metron export --url` end to end, over real sockets: the bytes equal
 * `metron export --data` of the same data dir (line protocol and CSV); an
 * export imported into a second metrond exports the same bytes again; a
 * tenant's token exports its tenant only; 2 M points stream with the
 * daemon's peak RSS (VmHWM) nearly unchanged; the match-everything selector
 * in export, series and query; /api/v1/query's format=series.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

/* Every point as an export prints it: float, integer, boolean and string series. */
#define ALL_SEL "%7B__name__%3D~%22.%2B%22%7D" /* {__name__=~".+"} */

/* Post lines (precision s) in bodies of about 1 MB. */
static void write_big(mth_daemon *d, const char *auth, const char *lines, size_t len)
{
    static char body[4096];
    for (size_t at = 0; at < len;) {
        size_t n = len - at < 1000000 ? len - at : 1000000;
        while (at + n < len && lines[at + n - 1] != '\n') n--;
        int st = mth_http(d->http, "POST", "/write?db=metron&precision=s", auth, lines + at, n,
                          body, sizeof body);
        cr_assert_eq(st, 204, "write: %d %s", st, body);
        at += n;
    }
}

/* hours of points every 10 s ending an hour ago: 8 series of every value type. */
static char *dataset(int hours, size_t *len)
{
    long long end = (long long)time(NULL) / 3600 * 3600 - 3600, start = end - hours * 3600LL;
    size_t cap = (size_t)hours * 360 * 8 * 80 + 1;
    char *b = malloc(cap);
    size_t n = 0;
    for (long long t = start; t < end; t += 10) {
        long long k = (t - start) / 10;
        for (int h = 0; h < 2; h++) {
            n += (size_t)snprintf(b + n, cap - n, "cpu,host=h%d usage=%lld.%03lld %lld\n", h,
                                  k % 97, (k * 7) % 1000, t);
            n += (size_t)snprintf(b + n, cap - n, "cpu,host=h%d count=%lldi %lld\n", h, k * 3 - 50,
                                  t);
            n += (size_t)snprintf(b + n, cap - n, "mem,host=h%d ok=%s %lld\n", h,
                                  k % 3 ? "true" : "false", t);
            n += (size_t)snprintf(b + n, cap - n, "log,host=h%d msg=\"line %lld \\\"q\\\"\" %lld\n",
                                  h, k, t);
        }
    }
    *len = n;
    return b;
}

/* Run cmd (sh), its stdout into a malloc'd string (*len bytes); the exit status in *st. */
static char *run(const char *cmd, size_t *len, int *st)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 65536) b = realloc(b, cap *= 2);
    }
    b[n] = '\0';
    int s = pclose(p);
    if (st) *st = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    if (len) *len = n;
    return b;
}

/* GET an export with curl (transfer errors fail the test); the body, malloc'd. */
static char *curl_get(mth_daemon *d, const char *tok, const char *path, size_t *len)
{
    char cmd[2048], auth[128] = "";
    if (tok) snprintf(auth, sizeof auth, "-H 'Authorization: Token %s'", tok);
    snprintf(cmd, sizeof cmd, "curl -sS --fail %s 'http://127.0.0.1:%d%s'", auth, d->http, path);
    int st;
    char *b = run(cmd, len, &st);
    cr_assert_eq(st, 0, "%s: exit %d", cmd, st);
    return b;
}

static size_t lines_of(const char *b)
{
    size_t n = 0;
    for (; (b = strchr(b, '\n')); b++) n++;
    return n;
}

Test(export_http, equals_export_data_byte_for_byte, .timeout = 120)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    size_t len, hl, hc, cl;
    char *lp = dataset(4, &len);
    write_big(&d, NULL, lp, len);
    char *http_lp = curl_get(&d, NULL, "/api/v1/export?select=" ALL_SEL, &hl);
    char *http_csv = curl_get(&d, NULL, "/api/v1/export?select=*&format=csv", &hc);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s export --url http://127.0.0.1:%d '{__name__=~\".+\"}' 2>&1",
             METRON_PATH, d.http);
    int st;
    char *cli_url = run(cmd, &cl, &st);
    cr_assert_eq(st, 0, "%s", cli_url);
    mth_stop(&d);
    size_t dl, dc;
    snprintf(cmd, sizeof cmd, "%s export --data %s '{__name__=~\".+\"}'", METRON_PATH, d.dir);
    char *data_lp = run(cmd, &dl, &st);
    cr_assert_eq(st, 0);
    snprintf(cmd, sizeof cmd, "%s export --data %s '*' --format csv", METRON_PATH, d.dir);
    char *data_csv = run(cmd, &dc, &st);
    cr_assert_eq(st, 0);
    cr_assert_eq(lines_of(data_lp), 4 * 360 * 8, "%zu points", lines_of(data_lp));
    cr_assert_eq(hl, dl, "line protocol: %zu bytes over HTTP, %zu from the data dir", hl, dl);
    cr_assert(!memcmp(http_lp, data_lp, dl), "line protocol differs");
    cr_assert_eq(cl, dl);
    cr_assert(!memcmp(cli_url, data_lp, dl), "metron export --url differs");
    cr_assert_eq(hc, dc, "csv: %zu bytes over HTTP, %zu from the data dir", hc, dc);
    cr_assert(!memcmp(http_csv, data_csv, dc), "csv differs");
    /* the exact values of the input, in it: a string with quotes, an integer */
    cr_assert_not_null(strstr(http_lp, "log,host=h1 msg=\"line 5 \\\"q\\\"\" "));
    cr_assert_not_null(strstr(http_lp, "cpu,host=h0 count=-50i "));
    free(lp), free(http_lp), free(http_csv), free(cli_url), free(data_lp), free(data_csv);
    mth_cleanup(&d);
}

Test(export_http, round_trip_into_a_second_metrond, .timeout = 120)
{
    mth_daemon a, b;
    mth_start(&a, NULL, "--lp-tcp off --lp-udp off");
    mth_start(&b, NULL, "--lp-tcp off --lp-udp off");
    size_t len;
    char *lp = dataset(3, &len);
    write_big(&a, NULL, lp, len);
    char file[] = "/tmp/metron-export-XXXXXX";
    int fd = mkstemp(file);
    cr_assert_geq(fd, 0);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s export --url http://127.0.0.1:%d '*' >%s && "
             "%s import --url http://127.0.0.1:%d %s 2>&1",
             METRON_PATH, a.http, file, METRON_PATH, b.http, file);
    int st;
    char *out = run(cmd, NULL, &st);
    cr_assert_eq(st, 0, "%s", out);
    free(out);
    size_t la, lb;
    char *ea = curl_get(&a, NULL, "/api/v1/export?select=" ALL_SEL, &la);
    char *eb = curl_get(&b, NULL, "/api/v1/export?select=" ALL_SEL, &lb);
    cr_assert_eq(lines_of(ea), 3 * 360 * 8);
    cr_assert_eq(la, lb, "%zu bytes from the first, %zu from the second", la, lb);
    cr_assert(!memcmp(ea, eb, la), "the second metrond holds other points");
    /* a range: [start, end), epoch seconds and RFC 3339 alike */
    long long end = (long long)time(NULL) / 3600 * 3600 - 3600;
    char path[256];
    snprintf(path, sizeof path,
             "/api/v1/export?select=cpu%%7Bhost%%3D%%22h0%%22%%7D&start=%lld&end=%lld", end - 60,
             end - 30);
    size_t lr;
    char *r = curl_get(&b, NULL, path, &lr);
    cr_assert_eq(lines_of(r), 3 * 2, "%s", r); /* 3 points (-60, -50, -40) x usage, count */
    free(r);
    mth_stop(&a);
    mth_stop(&b);
    unlink(file);
    free(lp), free(ea), free(eb);
    mth_cleanup(&a);
    mth_cleanup(&b);
}

static char tokens[64];

static void make_tokens(void)
{
    snprintf(tokens, sizeof tokens, "/tmp/metron-exp-tokens-XXXXXX");
    int fd = mkstemp(tokens);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    static const char *const t[][2] = {
        {"tenant-a", "tok-a"}, {"tenant-b", "tok-b"}, {"*", "tok-s"}};
    for (size_t i = 0; i < 3; i++) {
        char cmd[512], hex[80] = "";
        snprintf(cmd, sizeof cmd, "printf %%s %s | %s --hash-token", t[i][1], METROND_PATH);
        FILE *p = popen(cmd, "r");
        cr_assert(p && fgets(hex, sizeof hex, p), "%s", cmd);
        pclose(p);
        fprintf(f, "%s %s", t[i][0], hex);
    }
    fclose(f);
}

Test(export_http, a_tenant_token_exports_its_tenant_only, .timeout = 60)
{
    make_tokens();
    mth_daemon d;
    char args[256];
    snprintf(args, sizeof args, "--lp-tcp off --lp-udp off --tokens-file %s", tokens);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL);
    char lp[512];
    snprintf(lp, sizeof lp, "cpu,host=a1 usage=1 %lld\nmem,host=a1 used=2 %lld\n", now, now);
    write_big(&d, "Authorization: Token tok-a\r\n", lp, strlen(lp));
    snprintf(lp, sizeof lp, "cpu,host=b1 usage=3 %lld\n", now);
    write_big(&d, "Authorization: Token tok-b\r\n", lp, strlen(lp));
    size_t n;
    char want[512];
    char *a = curl_get(&d, "tok-a", "/api/v1/export?select=" ALL_SEL, &n);
    snprintf(want, sizeof want,
             "cpu,business_id=tenant-a,host=a1 usage=1 %lld000000000\n"
             "mem,business_id=tenant-a,host=a1 used=2 %lld000000000\n",
             now, now);
    cr_assert_str_eq(a, want);
    free(a);
    /* asking for the other tenant by name gives nothing */
    a = curl_get(&d, "tok-a", "/api/v1/export?select=%7Bbusiness_id%3D%22tenant-b%22%7D", &n);
    cr_assert_eq(n, 0, "%s", a);
    free(a);
    char *b = curl_get(&d, "tok-b", "/api/v1/export?select=" ALL_SEL, &n);
    snprintf(want, sizeof want, "cpu,business_id=tenant-b,host=b1 usage=3 %lld000000000\n", now);
    cr_assert_str_eq(b, want);
    free(b);
    char *s = curl_get(&d, "tok-s", "/api/v1/export?select=" ALL_SEL, &n);
    cr_assert_eq(lines_of(s), 3, "%s", s);
    free(s);
    char body[512];
    cr_assert_eq(
        mth_http(d.http, "GET", "/api/v1/export?select=*", NULL, NULL, 0, body, sizeof body), 401,
        "%s", body);
    /* metron export --url takes METRON_TOKEN */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "METRON_TOKEN=tok-b %s export --url http://127.0.0.1:%d '*'",
             METRON_PATH, d.http);
    int st;
    b = run(cmd, &n, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(b, want);
    free(b);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(tokens);
}

static long vm_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field))) v = atol(line + strlen(field) + 1);
    if (f) fclose(f);
    return v;
}

Test(export_http, two_million_points_stream_in_bounded_memory, .timeout = 600)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    /* 200 series x 10,000 points, 1 s apart, ending an hour ago */
    long long end = (long long)time(NULL) / 3600 * 3600 - 3600, start = end - 10000;
    size_t cap = 48u << 20, n = 0;
    char *b = malloc(cap);
    for (int s = 0; s < 200; s++) {
        for (long long t = start; t < end; t++) {
            n += (size_t)snprintf(b + n, cap - n, "big,s=%d v=%lld %lld\n", s, t % 1000, t);
            if (cap - n < 256) {
                write_big(&d, NULL, b, n);
                n = 0;
            }
        }
    }
    write_big(&d, NULL, b, n);
    free(b);
    long before = vm_kb(d.pid, "VmHWM:");
    cr_assert_gt(before, 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "curl -sS --fail 'http://127.0.0.1:%d/api/v1/export?select=big' | wc -lc", d.http);
    int st;
    char *out = run(cmd, NULL, &st);
    cr_assert_eq(st, 0);
    unsigned long long lines = 0, bytes = 0;
    sscanf(out, "%llu %llu", &lines, &bytes);
    free(out);
    long after = vm_kb(d.pid, "VmHWM:");
    cr_log_info("2 M points, %llu bytes exported; VmHWM %ld kB before, %ld kB after", bytes, before,
                after);
    cr_assert_eq(lines, 2000000);
    /* the answer is over 50 MB; a buffered one would add at least that much */
    cr_assert_gt(bytes, 50000000ull);
    cr_assert_lt(after - before, 24 * 1024, "VmHWM grew %ld kB", after - before);
    mth_stop(&d);
    mth_cleanup(&d);
}

Test(export_http, match_everything_in_export_series_and_query, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    long long now = (long long)time(NULL);
    char lp[512];
    snprintf(lp, sizeof lp,
             "cpu,host=a usage=1 %lld\nmem,host=a used=2 %lld\nmem,host=b used=3 %lld\n", now, now,
             now);
    mth_write(&d, lp);
    char body[8192], t[48];
    time_t tt = (time_t)now;
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
    char want[2048];
    snprintf(
        want, sizeof want,
        "{\"columns\":[\"series\",\"time\",\"value\"],\"rows\":[[\"cpu,host=a usage\",\"%s\",1],"
        "[\"mem,host=a used\",\"%s\",2],[\"mem,host=b used\",\"%s\",3]]}\n",
        t, t, t);
    const char *sels[] = {ALL_SEL, "*", "%7B%7D" /* {} */};
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "/api/v1/query?select=%s&from=-1h&to=now%%2B1m", sels[i]);
        cr_assert_eq(mth_http(d.http, "GET", path, NULL, NULL, 0, body, sizeof body), 200, "%s",
                     body);
        cr_assert_str_eq(body, want, "%s", sels[i]);
    }
    /* a tag across measurements; __name__ is the measurement */
    cr_assert_eq(mth_http(d.http, "GET",
                          "/api/v1/query?select=%7Bhost%3D%22a%22%2C__name__%21%3D%22cpu%22%7D"
                          "&from=-1h&to=now%2B1m&format=csv",
                          NULL, NULL, 0, body, sizeof body),
                 200, "%s", body);
    snprintf(want, sizeof want, "series,time,value\n\"mem,host=a used\",%s,2\n", t);
    cr_assert_str_eq(body, want);
    /* no measurement and no braces is still an error, and says what to write */
    cr_assert_eq(mth_http(d.http, "GET", "/api/v1/query?select=&from=-1h&to=now", NULL, NULL, 0,
                          body, sizeof body),
                 400, "%s", body);
    cr_assert_not_null(strstr(body, "__name__"), "%s", body);
    /* POST form body on /api/v1/export */
    const char *form = "select=%7B__name__%3D~%22m.%2A%22%7D&format=csv";
    cr_assert_eq(mth_http(d.http, "POST", "/api/v1/export",
                          "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form),
                          body, sizeof body),
                 200, "%s", body);
    cr_assert_not_null(strstr(body, "\"mem,host=b used\""), "%s", body);
    cr_assert_null(strstr(body, "cpu"), "%s", body);
    mth_stop(&d);
    /* metron series over the data dir */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s series --data %s '{__name__=~\".+\"}' 2>/dev/null", METRON_PATH,
             d.dir);
    int st;
    char *out = run(cmd, NULL, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "cpu,host=a usage\nmem,host=a used\nmem,host=b used\n");
    free(out);
    mth_cleanup(&d);
}

Test(export_http, query_format_series_groups_each_series_once, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    long long t0 = (long long)time(NULL) / 60 * 60 - 600;
    char lp[512];
    snprintf(lp, sizeof lp,
             "cpu,host=a usage=1 %lld\ncpu,host=a usage=2.5 %lld\ncpu,host=b usage=3 %lld\n", t0,
             t0 + 10, t0);
    mth_write(&d, lp);
    char t[2][48];
    for (int i = 0; i < 2; i++) {
        time_t tt = (time_t)(t0 + 10 * i);
        strftime(t[i], sizeof t[i], "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
    }
    char body[8192], want[2048];
    cr_assert_eq(mth_http(d.http, "GET", "/api/v1/query?select=cpu&from=-1h&to=now&format=series",
                          NULL, NULL, 0, body, sizeof body),
                 200, "%s", body);
    snprintf(want, sizeof want,
             "{\"columns\":[\"time\",\"value\"],\"series\":[\n"
             "{\"series\":\"cpu,host=a usage\",\"time\":[\"%s\",\"%s\"],\"value\":[1,2.5]},\n"
             "{\"series\":\"cpu,host=b usage\",\"time\":[\"%s\"],\"value\":[3]}]}\n",
             t[0], t[1], t[0]);
    cr_assert_str_eq(body, want);
    /* grouped by a tag, with aggregations: one array per aggregation */
    cr_assert_eq(mth_http(d.http, "GET",
                          "/api/v1/query?select=cpu&from=-1h&to=now&format=series&by=host&agg=avg,"
                          "count&step=1h",
                          NULL, NULL, 0, body, sizeof body),
                 200, "%s", body);
    cr_assert_not_null(strstr(body, "{\"group\":{\"host\":\"a\"},\"time\":["), "%s", body);
    cr_assert_not_null(strstr(body, "\"avg\":[1.75],\"count\":[2]}"), "%s", body);
    /* the row format stays the default */
    cr_assert_eq(mth_http(d.http, "GET", "/api/v1/query?select=cpu&from=-1h&to=now", NULL, NULL, 0,
                          body, sizeof body),
                 200, "%s", body);
    cr_assert(!strncmp(body, "{\"columns\":[\"series\",\"time\",\"value\"],\"rows\":[[", 45), "%s",
              body);
    mth_stop(&d);
    mth_cleanup(&d);
}
