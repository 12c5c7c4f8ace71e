/*
 * test_remote_write.c — metrond's POST /api/v1/write end to end: a
 * tenant's remote-written series read back through /federate with the same
 * name and labels; a payload's business_id never picks the tenant (403,
 * nothing written); bad series answered 400 naming the first, the good
 * ones durable; snappy bombs 413 from the header; other encodings 415.
 * A real Prometheus remote-writing: test_prometheus_remote_write.sh.
 */
#include <criterion/criterion.h>
#include <snappy-c.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "remote.pb-c.h"
#include "tools/metrond_harness.h"

static char tokens[64];

/* A tokens file: tenant-a tok-a, tenant-b tok-b. */
static void make_tokens(void)
{
    snprintf(tokens, sizeof tokens, "/tmp/metron-rw-tokens-XXXXXX");
    int fd = mkstemp(tokens);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    static const char *const t[][2] = {{"tenant-a", "tok-a"}, {"tenant-b", "tok-b"}};
    for (size_t i = 0; i < 2; i++) {
        char cmd[512], hex[80] = "";
        snprintf(cmd, sizeof cmd, "printf %%s %s | %s --hash-token", t[i][1], METROND_PATH);
        FILE *p = popen(cmd, "r");
        cr_assert(p && fgets(hex, sizeof hex, p), "%s", cmd);
        pclose(p);
        fprintf(f, "%s %s", t[i][0], hex);
    }
    fclose(f);
}

/* One series of a request: label pairs (NULL-terminated), one sample. */
typedef struct rseries {
    const char *labels[12];
    double v;
    int64_t ms;
} rseries;

/* The snappy-compressed WriteRequest of n series (n <= 8), malloc'd. */
static char *body_of(const rseries *rs, size_t n, size_t *clen)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries ts[8], *tsp[8];
    Prometheus__Label lab[8][6], *labp[8][6];
    Prometheus__Sample smp[8], *smpp[8];
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&ts[i]);
        size_t nl = 0;
        for (; rs[i].labels[2 * nl]; nl++) {
            prometheus__label__init(&lab[i][nl]);
            lab[i][nl].name = (ProtobufCBinaryData){strlen(rs[i].labels[2 * nl]),
                                                    (uint8_t *)rs[i].labels[2 * nl]};
            lab[i][nl].value = (ProtobufCBinaryData){strlen(rs[i].labels[2 * nl + 1]),
                                                     (uint8_t *)rs[i].labels[2 * nl + 1]};
            labp[i][nl] = &lab[i][nl];
        }
        ts[i].n_labels = nl;
        ts[i].labels = labp[i];
        prometheus__sample__init(&smp[i]);
        smp[i].value = rs[i].v;
        smp[i].timestamp = rs[i].ms;
        smpp[i] = &smp[i];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        tsp[i] = &ts[i];
    }
    wr.n_timeseries = n;
    wr.timeseries = tsp;
    size_t len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *raw = malloc(len);
    prometheus__write_request__pack(&wr, raw);
    *clen = snappy_max_compressed_length(len);
    char *out = malloc(*clen);
    cr_assert_eq(snappy_compress((const char *)raw, len, out, clen), SNAPPY_OK);
    free(raw);
    return out;
}

/* POST a body to /api/v1/write as Prometheus does; the status, the answer into ans. */
static int rw_post(mth_daemon *d, const char *tok, const char *encoding, const void *body,
                   size_t len, char *ans, size_t cap)
{
    char h[512];
    snprintf(h, sizeof h,
             "%s%s%s%sContent-Type: application/x-protobuf\r\n"
             "X-Prometheus-Remote-Write-Version: 0.1.0\r\n",
             tok ? "Authorization: Bearer " : "", tok ? tok : "", tok ? "\r\n" : "",
             encoding ? encoding : "Content-Encoding: snappy\r\n");
    return mth_http(d->http, "POST", "/api/v1/write", h, body, len, ans, cap);
}

static int rw(mth_daemon *d, const char *tok, const rseries *rs, size_t n, char *ans, size_t cap)
{
    size_t len;
    char *body = body_of(rs, n, &len);
    int st = rw_post(d, tok, NULL, body, len, ans, cap);
    free(body);
    return st;
}

/* GET path with tok as a bearer token. */
static int federate(mth_daemon *d, const char *tok, const char *path, char *body, size_t cap)
{
    char h[128];
    snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", tok);
    return mth_http(d->http, "GET", path, h, NULL, 0, body, cap);
}

/* {__name__=~"up|prometheus_build_info|rw_.*"} */
#define FED "/federate?match%5B%5D=%7B__name__%3D~%22up%7Cprometheus_build_info%7Crw_.%2A%22%7D"

Test(remote_write, federate_gives_back_the_same_names_and_labels, .timeout = 60)
{
    make_tokens();
    mth_daemon d;
    char args[256], ans[4096], body[8192], want[2048];
    snprintf(args, sizeof args, "--lp-tcp off --lp-udp off --tokens-file %s", tokens);
    mth_start(&d, NULL, args);
    int64_t ms = (int64_t)time(NULL) * 1000 - 500;
    rseries a[] = {
        {{"__name__", "up", "job", "prometheus", "instance", "localhost:9090", NULL}, 1, ms},
        {{"__name__", "prometheus_build_info", "version", "2.42.0", "goversion", "go1.19.8", NULL},
         1,
         ms},
        {{"__name__", "rw_ratio:sum", NULL}, 0.25, ms},
    };
    cr_assert_eq(rw(&d, "tok-a", a, 3, ans, sizeof ans), 204, "%s", ans);
    rseries b[] = {{{"__name__", "up", "job", "other", NULL}, 0, ms}};
    cr_assert_eq(rw(&d, "tok-b", b, 1, ans, sizeof ans), 204, "%s", ans);
    /* durable before 204: read at once, no waiting */
    cr_assert_eq(federate(&d, "tok-a", FED, body, sizeof body), 200, "%s", body);
    snprintf(want, sizeof want,
             "# HELP prometheus_build_info Metron measurement prometheus_build_info, field value\n"
             "# TYPE prometheus_build_info untyped\n"
             "prometheus_build_info{business_id=\"tenant-a\",goversion=\"go1.19.8\","
             "version=\"2.42.0\"} 1 %lld\n"
             "# HELP rw_ratio:sum Metron measurement rw_ratio:sum, field value\n"
             "# TYPE rw_ratio:sum untyped\n"
             "rw_ratio:sum{business_id=\"tenant-a\"} 0.25 %lld\n"
             "# HELP up Metron measurement up, field value\n"
             "# TYPE up untyped\n"
             "up{business_id=\"tenant-a\",instance=\"localhost:9090\",job=\"prometheus\"} 1 "
             "%lld\n",
             (long long)ms, (long long)ms, (long long)ms);
    cr_expect_str_eq(body, want);
    /* and through Metron's own query: measurement up, field value */
    cr_assert_eq(federate(&d, "tok-a",
                          "/api/v1/query?select=up.value%7Bjob%3D%22prometheus%22%7D&from=now-1h"
                          "&to=now%2B1h&format=csv",
                          body, sizeof body),
                 200, "%s", body);
    cr_expect(
        strstr(body, "\"up,business_id=tenant-a,instance=localhost:9090,job=prometheus value\","),
        "%s", body);
    cr_assert_eq(federate(&d, "tok-b", FED, body, sizeof body), 200, "%s", body);
    cr_expect(strstr(body, "up{business_id=\"tenant-b\",job=\"other\"} 0 "), "%s", body);
    cr_expect_null(strstr(body, "tenant-a"), "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(tokens);
}

Test(remote_write, refusals_say_why_and_keep_what_they_must, .timeout = 60)
{
    make_tokens();
    mth_daemon d;
    char args[256], ans[4096], body[8192];
    snprintf(args, sizeof args,
             "--lp-tcp off --lp-udp off --tokens-file %s --max-body 1000000 --metrics-public true",
             tokens);
    mth_start(&d, NULL, args);
    int64_t ms = (int64_t)time(NULL) * 1000 - 500;

    /* the payload's business_id does not pick the tenant: 403, nothing of the request written */
    rseries foreign[] = {{{"__name__", "rw_x", NULL}, 1, ms},
                         {{"__name__", "rw_y", "business_id", "tenant-b", NULL}, 2, ms}};
    cr_expect_eq(rw(&d, "tok-a", foreign, 2, ans, sizeof ans), 403, "%s", ans);
    cr_expect(strstr(ans, "series rw_y{business_id=\\\"tenant-b\\\"} carries a business_id other "
                          "than the token's tenant tenant-a"),
              "%s", ans);
    /* bad data: 400 naming the first bad series and the count, the good series durable */
    rseries bad[] = {{{"__name__", "rw_good", NULL}, 3, ms},
                     {{"__name__", "rw_bad", "bad-label", "x", NULL}, 4, ms},
                     {{"job", "nameless", NULL}, 5, ms}};
    cr_expect_eq(rw(&d, "tok-a", bad, 3, ans, sizeof ans), 400, "%s", ans);
    cr_expect_str_eq(ans, "{\"error\":\"partial write: series rw_bad{bad-label=\\\"x\\\"}: invalid "
                          "label name (2 bad series) dropped=2\"}");
    cr_assert_eq(federate(&d, "tok-a", FED, body, sizeof body), 200, "%s", body);
    cr_expect(strstr(body, "rw_good{business_id=\"tenant-a\"} 3 "), "%s", body);
    cr_expect_null(strstr(body, "rw_x"), "%s", body);
    cr_expect_null(strstr(body, "rw_y"), "%s", body);

    /* a snappy bomb: its header says 2 GiB; refused from the header, the daemon unharmed */
    const unsigned char bomb[] = {0x80, 0x80, 0x80, 0x80, 0x08, 0x00, 'a', 'b'};
    cr_expect_eq(rw_post(&d, "tok-a", NULL, bomb, sizeof bomb, ans, sizeof ans), 413, "%s", ans);
    cr_expect(strstr(ans, "limit 1000000 bytes; this one inflates to 2147483648"), "%s", ans);
    /* not snappy, another encoding, no token, not POST */
    cr_expect_eq(rw_post(&d, "tok-a", NULL, "up 1\n", 5, ans, sizeof ans), 400, "%s", ans);
    cr_expect(strstr(ans, "snappy"), "%s", ans);
    cr_expect_eq(rw_post(&d, "tok-a", "Content-Encoding: gzip\r\n", "x", 1, ans, sizeof ans), 415,
                 "%s", ans);
    size_t len;
    char *ok = body_of(bad, 1, &len);
    cr_expect_eq(rw_post(&d, NULL, NULL, ok, len, ans, sizeof ans), 401, "%s", ans);
    free(ok);
    char h[64] = "Authorization: Bearer tok-a\r\n";
    cr_expect_eq(mth_http(d.http, "GET", "/api/v1/write", h, NULL, 0, ans, sizeof ans), 405);
    /* what was refused is counted in /metrics (public here) */
    cr_assert_eq(mth_http(d.http, "GET", "/metrics", NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(strstr(body, "metron_remote_write_samples_total{outcome=\"accepted\"} 1\n"), "%s",
              body);
    cr_expect(strstr(body, "metron_remote_write_samples_total{outcome=\"bad_data\"} 2\n"), "%s",
              body);
    cr_expect(strstr(body, "metron_remote_write_series_forbidden_total 1\n"), "%s", body);
    /* still writing */
    rseries after[] = {{{"__name__", "rw_after", NULL}, 6, ms}};
    cr_expect_eq(rw(&d, "tok-a", after, 1, ans, sizeof ans), 204, "%s", ans);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(tokens);
}
