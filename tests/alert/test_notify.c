/*
 * test_notify.c — alert delivery (alert/mt_notify.h) in process, to a real
 * HTTP receiver: a listening socket served by a thread of this test. A
 * webhook arrives with the headers docs/alerts.md tells receivers to check
 * (X-Metron-Timestamp, X-Metron-Signature: sha256= and the HMAC-SHA256 of
 * "timestamp.body" under the secret, computed here with OpenSSL, and
 * X-Metron-Delivery), and is tried again after the receiver fails once.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mt_alert.h"

#define MAXREQ 8

/* What the receiver got: each request's headers and body. */
typedef struct receiver {
    int fd, port;
    int fail_first; /* answer 500 to this many requests, then 200 */
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    int n;
    char head[MAXREQ][4096];
    char body[MAXREQ][8192];
} receiver;

static void read_request(receiver *r, int c)
{
    char buf[16384];
    size_t have = 0;
    char *end = NULL;
    long clen = -1;
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) return; /* a client that stalls: dropped */
        ssize_t k = read(c, buf + have, sizeof buf - 1 - have);
        if (k <= 0) return;
        have += (size_t)k;
        buf[have] = 0;
        if (!end && (end = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl ? strtol(cl + 17, NULL, 10) : 0;
        }
        if (end && (long)(have - (size_t)(end + 4 - buf)) >= clen) break;
        if (have == sizeof buf - 1) return;
    }
    pthread_mutex_lock(&r->lock);
    int i = r->n < MAXREQ ? r->n++ : -1;
    if (i >= 0) {
        snprintf(r->head[i], sizeof r->head[i], "%.*s", (int)(end - buf), buf);
        snprintf(r->body[i], sizeof r->body[i], "%.*s", (int)clen, end + 4);
    }
    pthread_mutex_unlock(&r->lock);
    const char *ans = i >= 0 && i < r->fail_first
                          ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n"
                          : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    if (write(c, ans, strlen(ans)) < 0) return;
}

static void *serve(void *ud)
{
    receiver *r = ud;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0) continue;
        read_request(r, c);
        close(c);
    }
    return NULL;
}

static void receiver_start(receiver *r, int fail_first)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->fail_first = fail_first;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(r->fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(r->fd, 16), 0);
    cr_assert_eq(getsockname(r->fd, (struct sockaddr *)&a, &al), 0);
    r->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&r->thread, NULL, serve, r), 0);
}

static void receiver_stop(receiver *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
    pthread_mutex_destroy(&r->lock);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deliveries settled (the notifier's callback), for the test to wait on. */
typedef struct settled {
    pthread_mutex_t lock;
    int n;
    mt_notify_outcome outcome;
    int attempts;
    char delivery[64], error[256];
} settled;

static void on_delivery(void *ud, const mt_notify_record *rec)
{
    settled *s = ud;
    pthread_mutex_lock(&s->lock);
    s->n++;
    s->outcome = rec->outcome;
    s->attempts = rec->attempts;
    snprintf(s->delivery, sizeof s->delivery, "%s", rec->delivery);
    snprintf(s->error, sizeof s->error, "%s", rec->error);
    pthread_mutex_unlock(&s->lock);
}

/* Wait (at most 10 s) until fn(ud) holds. */
static bool wait_for(bool (*fn)(void *), void *ud)
{
    for (int64_t end = mono_ms() + 10000; mono_ms() < end;) {
        if (fn(ud)) return true;
        usleep(10000);
    }
    return fn(ud);
}

static bool one_settled(void *ud)
{
    settled *s = ud;
    pthread_mutex_lock(&s->lock);
    bool done = s->n >= 1;
    pthread_mutex_unlock(&s->lock);
    return done;
}

/* The value of header name in head ("" when absent), into out. */
static void header(const char *head, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *h = strcasestr(head, key);
    out[0] = 0;
    if (!h) return;
    h += strlen(key);
    while (*h == ' ') h++;
    size_t n = strcspn(h, "\r\n");
    snprintf(out, cap, "%.*s", (int)n, h);
}

/* What a receiver computes, as docs/alerts.md says: sha256= hex HMAC-SHA256("ts.body"). */
static void expected_signature(const char *secret, const char *ts, const char *body, char *out)
{
    char msg[16384];
    int ml = snprintf(msg, sizeof msg, "%s.%s", ts, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg,
                            (size_t)ml, mac, &maclen));
    int at = sprintf(out, "sha256=");
    for (unsigned i = 0; i < maclen; i++) at += sprintf(out + at, "%02x", mac[i]);
}

static mt_webhook endpoint(int port)
{
    mt_webhook w = mt_webhook_default();
    snprintf(w.name, sizeof w.name, "ops");
    snprintf(w.url, sizeof w.url, "http://127.0.0.1:%d/hook", port);
    snprintf(w.secret, sizeof w.secret, "s3cret");
    w.retry_attempts = 2;
    w.retry_base_ms = 20; /* the test's backoff: 20 ms, 40 ms */
    w.timeout_s = 5;
    return w;
}

static const char body[] =
    "{\"delivery\":\"6f1d2c3b-0000-4000-8000-00000000d001\",\"event\":\"fired\","
    "\"alert\":{\"id\":\"a1\",\"severity\":\"critical\"}}";

static const mt_notice notice = {.business_id = "",
                                 .event = MT_WEBHOOK_FIRED,
                                 .severity = MT_WEBHOOK_CRITICAL,
                                 .delivery = "6f1d2c3b-0000-4000-8000-00000000d001"};

Test(notify, a_webhook_is_signed_and_tried_again_after_the_receiver_fails_once, .timeout = 20)
{
    receiver r;
    receiver_start(&r, 1);
    mt_webhook w = endpoint(r.port);
    mt_notifier *nf;
    cr_assert_eq(mt_notifier_start(&w, 1, &nf), MT_OK);
    settled s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    mt_notifier_on_delivery(nf, on_delivery, &s);
    int64_t sent_at = (int64_t)time(NULL);
    cr_assert_eq(mt_notifier_send(nf, body, strlen(body), &notice), MT_OK);
    cr_assert(wait_for(one_settled, &s), "no outcome within 10 s");
    cr_expect_eq(s.outcome, MT_NOTIFY_SENT, "outcome %s: %s", mt_notify_outcome_name(s.outcome),
                 s.error);
    cr_expect_eq(s.attempts, 2, "the failure, then the retry");
    cr_expect_str_eq(s.delivery, notice.delivery);
    mt_webhook_stats st;
    mt_notifier_stats(nf, 0, &st);
    cr_expect_eq(st.total, 2);
    cr_expect_eq(st.successful, 1);
    cr_expect_eq(st.failed, 1);
    mt_notifier_on_delivery(nf, NULL, NULL);
    mt_notifier_stop(nf);
    receiver_stop(&r);

    cr_assert_eq(r.n, 2, "two requests: %d", r.n);
    for (int i = 0; i < 2; i++) {
        char ts[32], sig[128], dl[80], want[128];
        cr_expect(!strncmp(r.head[i], "POST /hook ", 11), "%s", r.head[i]);
        cr_expect_str_eq(r.body[i], body, "the body as sent");
        header(r.head[i], "X-Metron-Timestamp", ts, sizeof ts);
        header(r.head[i], "X-Metron-Signature", sig, sizeof sig);
        header(r.head[i], "X-Metron-Delivery", dl, sizeof dl);
        long t = strtol(ts, NULL, 10);
        cr_expect(t >= sent_at - 1 && t <= sent_at + 10, "timestamp '%s' (sent at %lld)", ts,
                  (long long)sent_at);
        expected_signature("s3cret", ts, r.body[i], want);
        cr_expect_str_eq(sig, want, "request %d's signature", i);
        cr_expect_str_eq(dl, notice.delivery, "the same delivery id on the retry");
        char ct[64];
        header(r.head[i], "Content-Type", ct, sizeof ct);
        cr_expect_str_eq(ct, "application/json");
    }
}

Test(notify, a_receiver_that_keeps_failing_gets_every_retry_then_failed, .timeout = 20)
{
    receiver r;
    receiver_start(&r, MAXREQ);
    mt_webhook w = endpoint(r.port);
    mt_notifier *nf;
    cr_assert_eq(mt_notifier_start(&w, 1, &nf), MT_OK);
    settled s = {.lock = PTHREAD_MUTEX_INITIALIZER};
    mt_notifier_on_delivery(nf, on_delivery, &s);
    cr_assert_eq(mt_notifier_send(nf, body, strlen(body), &notice), MT_OK);
    cr_assert(wait_for(one_settled, &s), "no outcome within 10 s");
    cr_expect_eq(s.outcome, MT_NOTIFY_FAILED);
    cr_expect_eq(s.attempts, 3, "the first attempt and retry_attempts (2) more");
    cr_expect(strstr(s.error, "500"), "the last failure is named: '%s'", s.error);
    mt_notifier_on_delivery(nf, NULL, NULL);
    mt_notifier_stop(nf);
    receiver_stop(&r);
    cr_expect_eq(r.n, 3);
}

Test(notify, a_wrong_secret_gives_a_signature_the_receiver_refuses, .timeout = 20)
{
    /* the check above can fail: another secret signs otherwise */
    receiver r;
    receiver_start(&r, 0);
    mt_webhook w = endpoint(r.port);
    snprintf(w.secret, sizeof w.secret, "other");
    mt_notifier *nf;
    cr_assert_eq(mt_notifier_start(&w, 1, &nf), MT_OK);
    cr_assert_eq(mt_notifier_send(nf, body, strlen(body), &notice), MT_OK);
    mt_notifier_stop(nf); /* delivers what is queued first */
    receiver_stop(&r);
    cr_assert_eq(r.n, 1);
    char ts[32], sig[128], want[128];
    header(r.head[0], "X-Metron-Timestamp", ts, sizeof ts);
    header(r.head[0], "X-Metron-Signature", sig, sizeof sig);
    expected_signature("s3cret", ts, r.body[0], want);
    cr_expect_str_neq(sig, want);
    expected_signature("other", ts, r.body[0], want);
    cr_expect_str_eq(sig, want);
}
