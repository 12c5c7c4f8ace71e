/*
 * test_reload.c — SIGHUP reloads metrond without a restart (tools/reload.h).
 * End to end: a real metrond on 127.0.0.1, its files rewritten between
 * signals. Tokens added work and removed ones get 401 while a keep-alive
 * HTTP stream and a raw TCP stream opened before keep writing, every
 * acknowledged point stored; a broken tokens, rules or config file is
 * refused whole (the old configuration keeps working, the log names the
 * file and the line, the failure counter rises); a changed rules file
 * changes what fires (and who hears of it); a changed retention policy is
 * applied (old points dropped, old writes refused, the PostgreSQL keeps of
 * the sink: a database of its own in the test PostgreSQL); the log level
 * changes, unless a flag set it. Every wait polls with a deadline.
 */
#include <poll.h>

#include "metrond_harness.h"
#include "mt_engine.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* The hash a tokens file holds for token, from metrond itself (as an operator makes it). */
static void token_hash(const char *token, char hex[80])
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "printf %%s %s | %s --hash-token", token, METROND_PATH);
    FILE *p = popen(cmd, "r");
    cr_assert(fgets(hex, 80, p));
    pclose(p);
    hex[strcspn(hex, "\n")] = '\0';
    cr_assert_eq(strlen(hex), 64);
}

/* Replace path's content (a reload reads it whole: write a temp file, rename over it). */
static void rewrite(const char *path, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f, "%s", tmp);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}

/* GET path with "Authorization: Token token" (NULL: none); the status, the body into body. */
static int get_as(const mth_daemon *d, const char *token, const char *path, char *body, size_t cap)
{
    char h[128];
    snprintf(h, sizeof h, "Authorization: Token %s\r\n", token ? token : "");
    return mth_http(d->http, "GET", path, token ? h : NULL, NULL, 0, body, cap);
}

/* POST lines (precision s) with a token (NULL: none); the status. */
static int write_as(const mth_daemon *d, const char *token, const char *lines, char *body,
                    size_t cap)
{
    char h[128];
    snprintf(h, sizeof h, "Authorization: Token %s\r\n", token ? token : "");
    return mth_http(d->http, "POST", "/write?db=metron&precision=s", token ? h : NULL, lines,
                    strlen(lines), body, cap);
}

/* A sample of /metrics (the line that starts with name, labels included); -1 when absent. */
static double metric(const mth_daemon *d, const char *token, const char *name)
{
    static char body[1 << 18];
    if (get_as(d, token, "/metrics", body, sizeof body) != 200) return -1;
    size_t nl = strlen(name);
    for (char *l = body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, name, nl) && l[nl] == ' ') return atof(l + nl + 1);
    return -1;
}

#define RELOADS_OK     "metron_reloads_total{result=\"ok\"}"
#define RELOADS_FAILED "metron_reloads_total{result=\"failed\"}"

/* SIGHUP, then poll /metrics until the reload's outcome is counted (ok or failed, as want). */
static void reload(const mth_daemon *d, const char *token, bool want_ok)
{
    double ok = metric(d, token, RELOADS_OK), failed = metric(d, token, RELOADS_FAILED);
    cr_assert_geq(ok, 0, "no reload counters in /metrics (log %s)", d->log);
    cr_assert_eq(kill(d->pid, SIGHUP), 0);
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(25)) {
        double ok2 = metric(d, token, RELOADS_OK), failed2 = metric(d, token, RELOADS_FAILED);
        if (ok2 > ok || failed2 > failed) {
            cr_assert(want_ok ? ok2 == ok + 1 && failed2 == failed
                              : failed2 == failed + 1 && ok2 == ok,
                      "the reload %s (ok %g -> %g, failed %g -> %g; log %s)",
                      want_ok ? "failed" : "succeeded", ok, ok2, failed, failed2, d->log);
            return;
        }
    }
    cr_assert_fail("the reload was never counted (log %s)", d->log);
}

static void wait_log(const mth_daemon *d, const char *needle)
{
    for (int64_t end = mth_now_ms() + 10000; mth_now_ms() < end; mth_sleep_ms(25))
        if (mth_log_lines(d, needle)) return;
    cr_assert_fail("no \"%s\" in %s", needle, d->log);
}

/* Points stored for measurement m, tags "k=v,k=v" (sorted), field f (metrond stopped). */
static size_t count_points(const char *dir, const char *m, const char *tags, const char *field)
{
    mt_name tk[8], tv[8];
    size_t nt = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", tags);
    for (char *save, *t = strtok_r(buf, ",", &save); t && nt < 8; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        tk[nt] = (mt_name){t, (size_t)(eq - t)};
        tv[nt++] = (mt_name){eq + 1, strlen(eq + 1)};
    }
    char key[512];
    size_t kl = mt_series_key(key, sizeof key, (mt_name){m, strlen(m)}, tk, tv, nt,
                              (mt_name){field, strlen(field)});
    mt_engine_options o = mt_engine_options_default();
    o.dir = dir;
    o.auto_seal = false;
    mt_engine *e;
    cr_assert_eq(mt_engine_open(&o, &e), MT_OK);
    uint32_t id;
    mt_vtype t;
    size_t n = 0;
    if (mt_engine_series_lookup(e, key, kl, &id, &t) == MT_OK) {
        mt_scan *s;
        cr_assert_eq(mt_scan_open(e, id, INT64_MIN, INT64_MAX, &s), MT_OK);
        mt_points p;
        while (mt_scan_next(s, &p) == MT_OK) n += p.n;
        mt_scan_close(s);
    }
    mt_engine_close(e);
    return n;
}

/* ---- a writer on one connection, opened before the reloads --------------------------------- */

typedef struct stream {
    int port;
    const char *token; /* HTTP keep-alive with this token; NULL: raw TCP line protocol */
    int64_t t0;        /* the first point's timestamp (s); one point per millisecond after it */
    int fd;
    pthread_t thread;
    pthread_mutex_t lock;
    bool stop;
    int sent;   /* points sent (TCP) */
    int acked;  /* points answered 204 (HTTP) */
    int errors; /* anything but 204, or the connection lost */
    char why[256];
} stream;

static int stream_count(stream *s, int *field)
{
    pthread_mutex_lock(&s->lock);
    int n = *field;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* One keep-alive answer on fd: its status, or -1 when the connection is gone. */
static int read_answer(int fd)
{
    char buf[4096];
    size_t got = 0;
    char *end = NULL;
    while (!end) {
        if (got == sizeof buf - 1) return -1;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t want = cl && cl < end ? (size_t)atol(cl + 15) : 0, have = got - (size_t)(end + 4 - buf);
    while (have < want) { /* the body (an error's JSON): read and dropped */
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return status;
}

static void *stream_main(void *arg)
{
    stream *s = arg;
    for (int i = 0;; i++) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        char line[128], req[512];
        int n = snprintf(line, sizeof line, "stream,host=h v=%d %lld\n", i,
                         (long long)(s->t0 * 1000000000 + (int64_t)i * 1000000)); /* ns */
        if (!s->token) {
            if (send(s->fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
                pthread_mutex_lock(&s->lock);
                s->errors++;
                snprintf(s->why, sizeof s->why, "TCP send failed: %s", strerror(errno));
                pthread_mutex_unlock(&s->lock);
                break;
            }
            pthread_mutex_lock(&s->lock);
            s->sent++;
            pthread_mutex_unlock(&s->lock);
            mth_sleep_ms(2); /* a steady stream, not a flood */
            continue;
        }
        int h = snprintf(req, sizeof req,
                         "POST /write?db=metron HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Authorization: Token %s\r\nContent-Length: %d\r\n\r\n%s",
                         s->token, n, line);
        int status = send(s->fd, req, (size_t)h, MSG_NOSIGNAL) == h ? read_answer(s->fd) : -1;
        pthread_mutex_lock(&s->lock);
        if (status == 204) {
            s->acked++;
        } else {
            s->errors++;
            snprintf(s->why, sizeof s->why, "request %d answered %d", i, status);
        }
        pthread_mutex_unlock(&s->lock);
        if (status != 204) break;
        mth_sleep_ms(1);
    }
    return NULL;
}

static void stream_start(stream *s, int port, const char *token, int64_t t0)
{
    *s = (stream){.port = port, .token = token, .t0 = t0};
    pthread_mutex_init(&s->lock, NULL);
    s->fd = mth_connect(port);
    cr_assert_geq(s->fd, 0, "connect to %d", port);
    cr_assert_eq(pthread_create(&s->thread, NULL, stream_main, s), 0);
}

/* Poll until the stream has counted at least n more (of sent or acked), 20 s. */
static void stream_wait(stream *s, int *field, int n)
{
    int from = stream_count(s, field);
    for (int64_t end = mth_now_ms() + 20000; mth_now_ms() < end; mth_sleep_ms(10)) {
        if (stream_count(s, field) >= from + n) return;
        if (stream_count(s, &s->errors)) break;
    }
    cr_assert_fail("the stream stalled at %d (errors %d: %s)", stream_count(s, field),
                   stream_count(s, &s->errors), s->why);
}

static void stream_stop(stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
}

/* ---- (a) tokens ----------------------------------------------------------------------------- */

/*
 * A token added to the tokens file works after SIGHUP, a removed one gets
 * 401; a keep-alive connection opened before writes through every reload,
 * each of its writes answered 204 and every acknowledged point stored.
 */
Test(reload, tokens_change_while_a_keep_alive_stream_writes, .timeout = 120)
{
    char tokens[] = "/tmp/metrond-reload-tokens-XXXXXX", text[1024], ha[80], hb[80], hc[80],
         hroot[80];
    token_hash("tok-a", ha);
    token_hash("tok-b", hb);
    token_hash("tok-c", hc);
    token_hash("tok-root", hroot);
    snprintf(text, sizeof text, "tenant-a %s\ntenant-b %s\n* %s\n", ha, hb, hroot);
    mt_test_file(tokens, text);
    mth_daemon d;
    char args[512], body[4096];
    snprintf(args, sizeof args, "--tokens-file %s", tokens);
    mth_start(&d, NULL, args);
    cr_assert_eq(metric(&d, "tok-root", RELOADS_OK), 0);
    cr_assert_eq(metric(&d, "tok-root", RELOADS_FAILED), 0);
    double loaded = metric(&d, "tok-root", "metron_config_load_timestamp_seconds");
    cr_assert_gt(loaded, 1.7e9, "the start's load time");

    int64_t now = (int64_t)time(NULL) - 600;
    stream s;
    stream_start(&s, d.http, "tok-a", now);
    stream_wait(&s, &s.acked, 20);
    const char *line = "other,host=h v=1 1735689600\n";
    cr_assert_eq(write_as(&d, "tok-b", line, body, sizeof body), 204, "%s", body);
    cr_assert_eq(write_as(&d, "tok-c", line, body, sizeof body), 401, "not a token yet");

    /* c added, b removed */
    snprintf(text, sizeof text, "tenant-a %s\n# b left\ntenant-c %s\n* %s\n", ha, hc, hroot);
    rewrite(tokens, text);
    reload(&d, "tok-root", true);
    cr_expect_eq(write_as(&d, "tok-c", line, body, sizeof body), 204, "the added token: %s", body);
    cr_expect_eq(write_as(&d, "tok-b", line, body, sizeof body), 401, "the removed token");
    cr_expect(strstr(body, "authorization failed"), "%s", body);
    cr_expect_gt(metric(&d, "tok-root", "metron_config_load_timestamp_seconds"), loaded,
                 "the reload's load time (ms)");
    cr_expect_eq(metric(&d, "tok-root", "metron_config_last_reload_successful"), 1);
    wait_log(&d, "msg=\"configuration reloaded\" tokens=3");
    /* more reloads under the stream: it never misses a beat */
    for (int i = 0; i < 3; i++) {
        stream_wait(&s, &s.acked, 10);
        reload(&d, "tok-root", true);
    }
    stream_wait(&s, &s.acked, 20);
    stream_stop(&s);
    cr_assert_eq(s.errors, 0, "%s", s.why);
    int acked = s.acked;
    cr_log_info("keep-alive stream: %d writes acknowledged across 4 reloads", acked);
    mth_stop(&d);
    cr_expect_eq(count_points(d.dir, "stream", "business_id=tenant-a,host=h", "v"), (size_t)acked,
                 "every acknowledged point of the stream is stored");
    cr_expect_eq(count_points(d.dir, "other", "business_id=tenant-c,host=h", "v"), 1);
    mth_cleanup(&d);
    unlink(tokens);
}

/* ---- (b) broken files --------------------------------------------------------------------- */

/*
 * A broken tokens file, then a broken rules file (beside a good tokens
 * file): each reload is refused whole, the log names the file and the
 * line, the failure counter rises, and the old tokens keep working (the
 * good new tokens file of the second try is not applied either). Fixed,
 * the next reload applies both.
 */
Test(reload, a_broken_tokens_or_rules_file_is_refused_whole, .timeout = 90)
{
    char tokens[] = "/tmp/metrond-reload-tokens-XXXXXX",
         rules[] = "/tmp/metrond-reload-rules-XXXXXX";
    char text[1024], ha[80], hc[80], hroot[80], needle[512], body[4096];
    token_hash("tok-a", ha);
    token_hash("tok-c", hc);
    token_hash("tok-root", hroot);
    snprintf(text, sizeof text, "tenant-a %s\n* %s\n", ha, hroot);
    mt_test_file(tokens, text);
    const char *good_rules = "[rule hot]\nmetric_name = temp.c\nevaluation_window = 10m\n"
                             "critical_threshold = 50\ncomparison_operator = gt\n";
    mt_test_file(rules, good_rules);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--tokens-file %s --rules-file %s --alert-interval 1", tokens,
             rules);
    mth_start(&d, NULL, args);
    const char *line = "t,host=h v=1 1735689600\n";

    /* line 3 is no token */
    snprintf(text, sizeof text, "tenant-a %s\n* %s\ntenant-c not-a-hash\n", ha, hroot);
    rewrite(tokens, text);
    reload(&d, "tok-root", false);
    snprintf(needle, sizeof needle, "file=%s err=\"%s line 3:", tokens, tokens);
    wait_log(&d, needle);
    cr_expect_eq(mth_log_lines(&d, "msg=\"reload refused: nothing changed"), 1);
    cr_expect_eq(metric(&d, "tok-root", "metron_config_last_reload_successful"), 0);
    cr_expect_eq(write_as(&d, "tok-a", line, body, sizeof body), 204, "the old token: %s", body);

    /* the tokens fixed (c added), the rules broken on line 4 */
    snprintf(text, sizeof text, "tenant-a %s\n* %s\ntenant-c %s\n", ha, hroot, hc);
    rewrite(tokens, text);
    rewrite(rules, "[rule hot]\nmetric_name = temp.c\nevaluation_window = 10m\n"
                   "critical_threshold = lots\ncomparison_operator = gt\n");
    reload(&d, "tok-root", false);
    snprintf(needle, sizeof needle, "file=%s err=\"%s:4: [rule hot] critical_threshold", rules,
             rules);
    wait_log(&d, needle);
    cr_expect_eq(metric(&d, "tok-root", RELOADS_FAILED), 2);
    cr_expect_eq(write_as(&d, "tok-c", line, body, sizeof body), 401,
                 "all or nothing: the good tokens file waits for the rules");
    cr_expect_eq(write_as(&d, "tok-a", line, body, sizeof body), 204, "%s", body);
    /* the old rules still run */
    char lines[256];
    snprintf(lines, sizeof lines, "temp,host=x c=90 %lld\n", (long long)time(NULL));
    cr_assert_eq(write_as(&d, "tok-a", lines, body, sizeof body), 204, "%s", body);
    bool fired = false;
    for (int64_t end = mth_now_ms() + 10000; !fired && mth_now_ms() < end; mth_sleep_ms(50)) {
        cr_assert_eq(get_as(&d, "tok-root", "/api/v1/alerts", body, sizeof body), 200);
        fired = strstr(body, "\thot\t") != NULL;
    }
    cr_expect(fired, "the rules in force before the refused reload still fire: %s", body);

    /* fixed: both files applied */
    rewrite(rules, good_rules);
    reload(&d, "tok-root", true);
    cr_expect_eq(write_as(&d, "tok-c", line, body, sizeof body), 204, "%s", body);
    cr_expect_eq(metric(&d, "tok-root", "metron_config_last_reload_successful"), 1);
    cr_expect_eq(metric(&d, "tok-root", RELOADS_OK), 1);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(tokens);
    unlink(rules);
}

/* ---- (c) rules ------------------------------------------------------------------------------ */

/*
 * The rules file changed: a threshold lowered makes an alert fire that did
 * not, and a [webhook] added hears of it (a new notifier). A raw TCP
 * stream opened before writes through the reload; every point it sent is
 * stored.
 */
Test(reload, a_changed_rules_file_changes_what_fires, .timeout = 90)
{
    mth_receiver rv = {0};
    mth_receiver_start(&rv);
    char rules[] = "/tmp/metrond-reload-rules-XXXXXX", text[2048], body[65536];
    /* cold fires at once for 40: it shows the rounds run; hot does not, 40 < 50 */
    const char *both = "[rule hot]\nmetric_name = temp.c\nevaluation_window = 10m\n"
                       "critical_threshold = %d\ncomparison_operator = gt\n"
                       "[rule cold]\nmetric_name = temp.c\nevaluation_window = 10m\n"
                       "critical_threshold = 45\ncomparison_operator = lt\n";
    snprintf(text, sizeof text, both, 50);
    mt_test_file(rules, text);
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--rules-file %s --alert-interval 1", rules);
    mth_start(&d, NULL, args);
    stream s;
    stream_start(&s, d.tcp, NULL, (int64_t)time(NULL) - 600);
    stream_wait(&s, &s.sent, 50);
    char lines[256];
    snprintf(lines, sizeof lines, "temp,host=x c=40 %lld\n", (long long)time(NULL));
    mth_write(&d, lines);
    bool cold = false;
    for (int64_t end = mth_now_ms() + 10000; !cold && mth_now_ms() < end; mth_sleep_ms(50)) {
        cr_assert_eq(mth_http(d.http, "GET", "/api/v1/alerts", NULL, NULL, 0, body, sizeof body),
                     200);
        cold = strstr(body, "\tcold\t") != NULL;
    }
    cr_assert(cold, "%s", body);
    cr_expect(!strstr(body, "\thot\t"), "40 is not above 50: %s", body);

    /* hot at 30, and a webhook for every alert */
    snprintf(text, sizeof text, both, 30);
    size_t n = strlen(text);
    snprintf(text + n, sizeof text - n,
             "[webhook ops]\nurl = http://127.0.0.1:%d/hook\nsecret_token = s\n"
             "timeout_seconds = 5\n",
             rv.port);
    rewrite(rules, text);
    reload(&d, NULL, true);
    wait_log(&d, "rules=2 webhooks=1 webhooks_changed=true");
    stream_wait(&s, &s.sent, 50);
    bool hot = false;
    for (int64_t end = mth_now_ms() + 10000; !hot && mth_now_ms() < end; mth_sleep_ms(50)) {
        cr_assert_eq(mth_http(d.http, "GET", "/api/v1/alerts", NULL, NULL, 0, body, sizeof body),
                     200);
        hot = strstr(body, "\thot\t") != NULL;
    }
    cr_expect(hot, "40 is above the reloaded 30: %s", body);
    mth_wait_received(&rv, 1, 10000);
    cr_expect_geq(mth_count(&rv, "\"name\":\"hot\""), 1, "the added webhook hears of it");
    /* the same rules again: nothing changes, the notifier stays */
    reload(&d, NULL, true);
    wait_log(&d, "rules=2 webhooks=1\n");
    /* another secret: a new notifier, the old one retired on a thread of its own */
    char *secret = strstr(text, "secret_token = s\n");
    cr_assert_not_null(secret);
    memcpy(secret, "secret_token = t\n", 17);
    rewrite(rules, text);
    reload(&d, NULL, true);
    for (int64_t end = mth_now_ms() + 10000;
         mth_log_lines(&d, "webhooks_changed=true") < 2 && mth_now_ms() < end;)
        mth_sleep_ms(25);
    cr_expect_eq(mth_log_lines(&d, "webhooks_changed=true"), 2);
    stream_wait(&s, &s.sent, 50);
    stream_stop(&s);
    cr_assert_eq(s.errors, 0, "%s", s.why);
    int sent = s.sent;
    cr_log_info("TCP stream: %d lines sent across 3 reloads", sent);
    /* TCP has no acknowledgement: every point sent is there once the server has read them */
    char q[256];
    snprintf(q, sizeof q,
             "/api/v1/query?select=stream.v&from=%lld&to=%lld&agg=count&by=none"
             "&format=csv",
             (long long)s.t0 - 1, (long long)time(NULL) + 3600);
    long stored = -1;
    for (int64_t end = mth_now_ms() + 10000; stored != sent && mth_now_ms() < end;
         mth_sleep_ms(50)) {
        cr_assert_eq(mth_http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body), 200, "%s", body);
        const char *comma = strrchr(body, ',');
        stored = comma ? atol(comma + 1) : -1;
    }
    cr_expect_eq(stored, sent, "the points the TCP stream sent, through the reloads: %s", body);
    mth_stop(&d);
    cr_expect_eq(count_points(d.dir, "stream", "host=h", "v"), (size_t)sent,
                 "every point the TCP stream sent is stored");
    mth_cleanup(&d);
    unlink(rules);
    mth_receiver_stop(&rv);
}

/* ---- (d) retention --------------------------------------------------------------------------- */

/*
 * The [retention] policy of the config file, changed from 30 days to 2:
 * the next retention run drops the 3-day-old points, and a write of one is
 * refused per line. A broken policy before it is refused (the log names
 * the config file and its line), and the 30 days stay.
 */
Test(reload, a_changed_retention_policy_applies, .timeout = 90)
{
    char conf[] = "/tmp/metrond-reload-conf-XXXXXX", body[4096], q[256];
    mt_test_file(conf, "[metrond]\nlog_level = info\n[retention]\ndefault = 30d\n");
    mth_daemon d;
    char args[512]; /* the flag: the harness turns retention off with one */
    snprintf(args, sizeof args, "--config %s --retention-interval 1", conf);
    mth_start(&d, NULL, args);
    long long now = (long long)time(NULL), old = now - 3 * 86400;
    char lines[256];
    snprintf(lines, sizeof lines, "gone v=1 %lld\nrecent v=3 %lld\n", old, now);
    mth_write(&d, lines);

    /* line 4: no duration */
    rewrite(conf, "[metrond]\nlog_level = info\n[retention]\ndefault = soon\n");
    reload(&d, NULL, false);
    char needle[512];
    snprintf(needle, sizeof needle, "file=%s err=\"%s:4: [retention] default: 'soon'", conf, conf);
    wait_log(&d, needle);
    snprintf(lines, sizeof lines, "gone v=2 %lld\n", old + 1);
    mth_write(&d, lines); /* 30 days still */

    rewrite(conf, "[metrond]\nlog_level = info\n[retention]\ndefault = 2d\n");
    reload(&d, NULL, true);
    wait_log(&d, "retention_default_s=172800");
    snprintf(lines, sizeof lines, "gone v=3 %lld\n", old + 2);
    cr_expect_eq(mth_http(d.http, "POST", "/write?db=metron&precision=s", NULL, lines,
                          strlen(lines), body, sizeof body),
                 400, "older than the reloaded 2 days");
    cr_expect(strstr(body, "older than the [retention] policy keeps for it") &&
                  strstr(body, "(line 1)"),
              "%s", body);
    snprintf(q, sizeof q, "/api/v1/query?select=gone.v&from=%lld&to=%lld&format=csv", old - 1,
             now + 1);
    bool gone = false;
    for (int64_t end = mth_now_ms() + 20000; !gone && mth_now_ms() < end; mth_sleep_ms(50)) {
        cr_assert_eq(mth_http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body), 200);
        gone = !strchr(strchr(body, '\n') + 1, '\n'); /* the header alone */
    }
    cr_expect(gone, "3-day-old points outlived the reloaded 2d policy: %s", body);
    snprintf(q, sizeof q, "/api/v1/query?select=recent.v&from=%lld&to=%lld&format=csv", old - 1,
             now + 1);
    cr_assert_eq(mth_http(d.http, "GET", q, NULL, NULL, 0, body, sizeof body), 200);
    cr_expect(strstr(body, ",3\n"), "%s", body);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(conf);
}

/*
 * The sink's keeps (postgres.TABLE) follow a reload: resolved alerts 100
 * and 30 days old under postgres.alerts = 90d; the first goes at a pass,
 * the second stays; reloaded with 7d, the second goes too.
 */
Test(reload, the_postgresql_keeps_follow_a_reload, .timeout = 90)
{
    char db[64], url[512], got[256], args[1024];
    snprintf(db, sizeof db, "reload_%d", (int)getpid());
    mth_pg_create(db, url, sizeof url);
    char conf[] = "/tmp/metrond-reload-conf-XXXXXX";
    mt_test_file(conf, "[retention]\npostgres.alerts = 90d\n");
    mth_daemon d;
    snprintf(args, sizeof args,
             "--config %s --postgres '%s' --postgres-flush-interval 0 "
             "--postgres-retention-interval 1",
             conf, url);
    mth_start(&d, NULL, args);
    cr_assert(mth_pg_wait(url, "SELECT to_regclass('monitoring.alerts') IS NOT NULL", "t", got,
                          sizeof got),
              "the sink installs the schema (log %s)", d.log);
    mth_pg_value(url,
                 "INSERT INTO monitoring.alert_rules (id, rule_name, rule_category, severity,"
                 " metric_name, condition_type, condition_definition, created_by) VALUES"
                 " ('00000000-0000-4000-8000-0000000000aa', 'r', 'c', 'warning', 'x', 'threshold',"
                 " '{}', '00000000-0000-0000-0000-000000000000') RETURNING 1",
                 got, sizeof got);
    cr_assert_str_eq(got, "1");
    mth_pg_value(url,
                 "INSERT INTO monitoring.alerts (alert_rule_id, alert_title, alert_message,"
                 " severity, status, metric_name, trigger_value, triggered_at, resolved_at,"
                 " updated_at) SELECT '00000000-0000-4000-8000-0000000000aa', t, t, 'warning',"
                 " 'resolved', 'x', 1, now() - interval '200 days', r, r FROM (VALUES"
                 " ('old', now() - interval '100 days'), ('month', now() - interval '30 days'))"
                 " v(t, r) RETURNING 1",
                 got, sizeof got);
    cr_assert_str_eq(got, "1");
    const char *left = "SELECT string_agg(alert_title, ' ' ORDER BY alert_title) FROM "
                       "monitoring.alerts";
    cr_expect(mth_pg_wait(url, left, "month", got, sizeof got), "90d: %s (log %s)", got, d.log);
    rewrite(conf, "[retention]\npostgres.alerts = 7d\n");
    reload(&d, NULL, true);
    cr_expect(mth_pg_wait(url, left, "", got, sizeof got), "7d: %s (log %s)", got, d.log);
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(conf);
    mth_pg_drop(db);
}

/* ---- (e) the log level ----------------------------------------------------------------------- */

/* A --log-level flag wins over the file, at a reload as at start: said, not applied. */
Test(reload, a_log_level_flag_wins_over_the_file, .timeout = 60)
{
    char conf[] = "/tmp/metrond-reload-conf-XXXXXX";
    mt_test_file(conf, "[metrond]\nlog_level = info\n");
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--config %s --log-level info", conf);
    mth_start(&d, NULL, args);
    rewrite(conf, "[metrond]\nlog_level = debug\n");
    reload(&d, NULL, true);
    wait_log(&d, "msg=\"log_level of the config file not applied: a flag or METROND_LOG_LEVEL");
    mth_write(&d, "lvl v=1 1735689600\n");
    cr_expect_eq(mth_log_lines(&d, "level=debug"), 0, "the flag's info still holds");
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(conf);
}

/* info, then debug (a connection's close is logged), then warn (a reload's own line is not). */
Test(reload, the_log_level_changes, .timeout = 60)
{
    char conf[] = "/tmp/metrond-reload-conf-XXXXXX";
    mt_test_file(conf, "[metrond]\nlog_level = info\n");
    mth_daemon d;
    char args[512];
    snprintf(args, sizeof args, "--config %s", conf);
    mth_start(&d, NULL, args);
    mth_write(&d, "lvl v=1 1735689600\n");
    cr_expect_eq(mth_log_lines(&d, "level=debug"), 0);

    rewrite(conf, "[metrond]\nlog_level = debug\ngrace = 60\n");
    reload(&d, NULL, true);
    wait_log(&d, "log_level=debug");
    /* grace is no reloadable setting: said, not applied */
    wait_log(&d, "a restart applies it, a reload does not\" file=");
    cr_expect_eq(mth_log_lines(&d, "key=grace"), 1);
    mth_write(&d, "lvl v=2 1735689601\n");
    wait_log(&d, "level=debug msg=\"connection closed\"");

    rewrite(conf, "[metrond]\nlog_level = warn\n");
    reload(&d, NULL, true);
    int reloading = mth_log_lines(&d, "msg=\"reloading\"");
    int debug = mth_log_lines(&d, "level=debug");
    reload(&d, NULL, true); /* counted, not logged: "reloading" is info */
    mth_write(&d, "lvl v=3 1735689602\n");
    cr_expect_eq(mth_log_lines(&d, "msg=\"reloading\""), reloading, "info lines are dropped");
    cr_expect_eq(mth_log_lines(&d, "level=debug"), debug, "debug lines are dropped");
    mth_stop(&d);
    mth_cleanup(&d);
    unlink(conf);
}
