/*
 * test_federate.c — metrond's GET /federate end to end (two tenants and a
 * system token; the latest sample within the lookback; match[] as clients
 * encode it, ORed; bad selectors answered 400 naming them) and `metron
 * export --format prometheus` (every sample, families whole, strings left
 * out and said). promtool and a real Prometheus: test_prometheus_scrape.sh.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#include "tools/metrond_harness.h"

static char tokens[64];

/* A tokens file: tenant-a tok-a, tenant-b tok-b, and the system token tok-s. */
static void make_tokens(void)
{
    snprintf(tokens, sizeof tokens, "/tmp/metron-fed-tokens-XXXXXX");
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

/* GET path with "Authorization: Bearer tok" (tok NULL: none); the status, the body into body. */
static int get(mth_daemon *d, const char *tok, const char *path, char *body, size_t cap)
{
    char h[128] = "";
    if (tok) snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", tok);
    return mth_http(d->http, "GET", path, tok ? h : NULL, NULL, 0, body, cap);
}

static void write_as(mth_daemon *d, const char *tok, const char *lines)
{
    char h[128], body[512];
    snprintf(h, sizeof h, "Authorization: Token %s\r\n", tok);
    cr_assert_eq(mth_http(d->http, "POST", "/write?db=metron&precision=s", h, lines, strlen(lines),
                          body, sizeof body),
                 204, "%s", body);
}

#define ALL "/federate?match%5B%5D=%7B__name__%3D~%22fed_.%2A%22%7D" /* {__name__=~"fed_.*"} */

Test(federate, each_token_sees_its_tenant_only, .timeout = 60)
{
    make_tokens();
    mth_daemon d;
    char args[256];
    snprintf(args, sizeof args, "--lp-tcp off --lp-udp off --tokens-file %s", tokens);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL), ms = now * 1000;
    char lp[512], want[2048], body[8192];
    snprintf(lp, sizeof lp, "fed,host=a1 idle=11 %lld\nfed,host=a2 idle=12 %lld\n", now, now);
    write_as(&d, "tok-a", lp);
    snprintf(lp, sizeof lp, "fed,host=b1 idle=21 %lld\n", now);
    write_as(&d, "tok-b", lp);
    /* the system token writes a system-wide series (no business_id) */
    snprintf(lp, sizeof lp, "fed,host=s1 idle=31 %lld\n", now);
    write_as(&d, "tok-s", lp);

    const char *help = "# HELP fed_idle Metron measurement fed, field idle\n"
                       "# TYPE fed_idle untyped\n";
    cr_assert_eq(get(&d, "tok-a", ALL, body, sizeof body), 200, "%s", body);
    snprintf(want, sizeof want,
             "%sfed_idle{business_id=\"tenant-a\",host=\"a1\"} 11 %lld\n"
             "fed_idle{business_id=\"tenant-a\",host=\"a2\"} 12 %lld\n",
             help, ms, ms);
    cr_expect_str_eq(body, want);
    cr_assert_eq(get(&d, "tok-b", ALL, body, sizeof body), 200, "%s", body);
    snprintf(want, sizeof want, "%sfed_idle{business_id=\"tenant-b\",host=\"b1\"} 21 %lld\n", help,
             ms);
    cr_expect_str_eq(body, want);
    cr_assert_eq(get(&d, "tok-s", ALL, body, sizeof body), 200, "%s", body);
    snprintf(want, sizeof want,
             "%sfed_idle{business_id=\"tenant-a\",host=\"a1\"} 11 %lld\n"
             "fed_idle{business_id=\"tenant-a\",host=\"a2\"} 12 %lld\n"
             "fed_idle{business_id=\"tenant-b\",host=\"b1\"} 21 %lld\n"
             "fed_idle{host=\"s1\"} 31 %lld\n",
             help, ms, ms, ms, ms);
    cr_expect_str_eq(body, want);

    /* naming the other tenant, or its host, or everything: still A's only, or nothing */
    cr_assert_eq(
        get(&d, "tok-a", "/federate?match[]={business_id=\"tenant-b\"}", body, sizeof body), 200,
        "%s", body);
    cr_expect_str_eq(body, "");
    cr_assert_eq(get(&d, "tok-a", "/federate?match[]=fed_idle{host=~\"b1|s1\"}", body, sizeof body),
                 200, "%s", body);
    cr_expect_str_eq(body, "");
    cr_assert_eq(get(&d, "tok-a", "/federate?match[]={__name__=~\".%2B\"}", body, sizeof body), 200,
                 "%s", body);
    cr_expect(!strstr(body, "tenant-b") && !strstr(body, "s1") && strstr(body, "a2"), "%s", body);

    /* no token, an unknown one: 401, before anything is read */
    cr_expect_eq(get(&d, NULL, ALL, body, sizeof body), 401, "%s", body);
    cr_expect_eq(get(&d, "tok-x", ALL, body, sizeof body), 401, "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(tokens);
}

Test(federate, the_latest_sample_within_five_minutes, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    long long now = (long long)time(NULL);
    char lp[512], want[1024], body[8192];
    /* 10 min ago (outside the lookback), 2 and 1 min ago, 5 min ahead (after now) */
    snprintf(lp, sizeof lp,
             "fed,h=x v=1 %lld\nfed,h=x v=2 %lld\nfed,h=x v=3 %lld\nfed,h=x v=4 %lld\n"
             "fed,h=old v=9 %lld\n",
             now - 600, now - 120, now - 60, now + 300, now - 600);
    mth_write(&d, lp);
    cr_assert_eq(get(&d, NULL, "/federate?match[]=fed_v", body, sizeof body), 200, "%s", body);
    snprintf(want, sizeof want,
             "# HELP fed_v Metron measurement fed, field v\n"
             "# TYPE fed_v untyped\n"
             "fed_v{h=\"x\"} 3 %lld\n",
             (now - 60) * 1000);
    cr_expect_str_eq(body, want);
    mth_stop(&d);
    mth_cleanup(&d);
}

Test(federate, bad_match_is_400_naming_it, .timeout = 60)
{
    mth_daemon d;
    mth_start(&d, NULL, "--lp-tcp off --lp-udp off");
    long long now = (long long)time(NULL);
    char lp[512], body[8192];
    snprintf(lp, sizeof lp, "fed,h=x v=1,w=2 %lld\n", now);
    mth_write(&d, lp);
    static const struct {
        const char *query, *want;
    } bad[] = {
        {"match[]=fed_v%5B5m%5D", "match[] 'fed_v[5m]': only a series selector is taken"},
        {"match[]=fed_v&match%5B%5D=rate(fed_v)", "match[] 'rate(fed_v)': only a series selector"},
        {"match[]=%7Bh%3D~%22.*%22%7D",
         "match[] '{h=~\\\".*\\\"}': at least one matcher must not match the empty string"},
        {"match[]=fed_v%7Bh%3Dx%7D", "match[] 'fed_v{h=x}': the value of 'h' must be quoted"},
        {"match[]=", "match[] '': expected a metric name or '{'"},
        {"select=fed.v", "match[] is required"},
        {"", "match[] is required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "/federate?%s", bad[i].query);
        cr_expect_eq(get(&d, NULL, path, body, sizeof body), 400, "%s: %s", path, body);
        cr_expect(strstr(body, bad[i].want), "%s: want %s in %s", path, bad[i].want, body);
    }
    /* match[] twice (encoded as clients send it, then not): ORed, each series once */
    cr_assert_eq(get(&d, NULL, "/federate?match%5B%5D=fed_v&match[]={h=\"x\"}&match[]=fed_v", body,
                     sizeof body),
                 200, "%s", body);
    char want[1024];
    snprintf(want, sizeof want,
             "# HELP fed_v Metron measurement fed, field v\n# TYPE fed_v untyped\n"
             "fed_v{h=\"x\"} 1 %lld\n"
             "# HELP fed_w Metron measurement fed, field w\n# TYPE fed_w untyped\n"
             "fed_w{h=\"x\"} 2 %lld\n",
             now * 1000, now * 1000);
    cr_expect_str_eq(body, want);
    /* the answer's type is the text format's */
    char head[2048];
    int s = mth_connect(d.http);
    const char *req =
        "GET /federate?match[]=fed_v HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    mth_send_all(s, req, strlen(req));
    ssize_t n = recv(s, head, sizeof head - 1, MSG_WAITALL);
    close(s);
    head[n > 0 ? n : 0] = '\0';
    cr_expect(strstr(head, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "%s",
              head);
    mth_stop(&d);
    mth_cleanup(&d);
}

/* cmd's stdout (as its redirections say) into out; its exit code. */
static int run(const char *cmd, char *out, size_t cap)
{
    return mt_test_run(out, cap, cmd);
}

Test(export_prom, every_sample_families_whole, .timeout = 60)
{
    char dir[] = "/tmp/metron-fedexp-XXXXXX", cmd[2048], out[8192];
    cr_assert_not_null(mkdtemp(dir));
    /* ns timestamps: two points in one ms (the later is kept), one before the epoch */
    char lp[256];
    snprintf(lp, sizeof lp, "%s/in.lp", dir);
    FILE *f = fopen(lp, "w");
    fputs("exp,h=a x=1 1000000000000\n"
          "exp,h=a x=2 1000000999999\n"
          "exp,h=a x=3 1000001000000\n"
          "exp,h=neg x=1 -1500000\n"
          "exp x=3 1000000000000\n"
          "exp,h=a x_y=2i 1000000000000\n"
          "exp,h=a s=\"str\" 1000000000000\n"
          "exp,h=q\\\\\\ \\\"z x=1 1000000000000\n"
          "other,h=a x=5 1000000000000\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s import --data %s/data %s 2>&1", METRON_PATH, dir, lp);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(cmd, sizeof cmd, "%s export --data %s/data exp --format prometheus 2>%s/err",
             METRON_PATH, dir, dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "# HELP exp_x Metron measurement exp, field x\n"
                          "# TYPE exp_x untyped\n"
                          "exp_x 3 1000000\n"
                          "exp_x{h=\"a\"} 2 1000000\n"
                          "exp_x{h=\"a\"} 3 1000001\n"
                          "exp_x{h=\"neg\"} 1 -2\n"
                          "exp_x{h=\"q\\\\ \\\\\\\"z\"} 1 1000000\n"
                          "# HELP exp_x_y Metron measurement exp, field x_y\n"
                          "# TYPE exp_x_y untyped\n"
                          "exp_x_y{h=\"a\"} 2 1000000\n");
    snprintf(cmd, sizeof cmd, "cat %s/err", dir);
    run(cmd, out, sizeof out);
    cr_expect(strstr(out, "left out 1 string series (no Prometheus value)"), "%s", out);
    /* --from/--to bound it; a Metron selector with matchers */
    snprintf(cmd, sizeof cmd,
             "%s export --data %s/data 'exp.x{h=\"a\"}' --from 1000.0005 --to 1000.0015 "
             "--format prometheus 2>&1",
             METRON_PATH, dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect_str_eq(out, "# HELP exp_x Metron measurement exp, field x\n"
                          "# TYPE exp_x untyped\n"
                          "exp_x{h=\"a\"} 2 1000000\n"
                          "exp_x{h=\"a\"} 3 1000001\n");
    /* a bad selector: exit 2, said */
    snprintf(cmd, sizeof cmd, "%s export --data %s/data 'exp{h=a}' --format prometheus 2>&1",
             METRON_PATH, dir);
    int st = run(cmd, out, sizeof out);
    cr_expect_eq(st, 2, "%d: %s", st, out);
    cr_expect(strstr(out, "must be in double quotes"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s export --data %s/data exp --format prom 2>&1", METRON_PATH, dir);
    st = run(cmd, out, sizeof out);
    cr_expect(st == 2 && strstr(out, "lp, csv or prometheus"), "%s", out);
    nftw(dir, mth_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
