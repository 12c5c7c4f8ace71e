/* notify.c — signed webhooks with retries (notify.h). */
#include "notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_err.h"
#include "mt_fault.h"
#include "mt_log.h"
#include "mt_time.h"

typedef struct msg {
    struct msg *next;
    char *body;     /* the JSON, NUL-terminated */
    size_t len;     /* its bytes */
    char *tenant;   /* the alert's business_id ("" none) */
    char *channels; /* the rule's notification_channels ("" every endpoint) */
    unsigned event, severity;
    char delivery[64]; /* X-Metron-Delivery: one id for every attempt of this notification */
} msg;

typedef struct endpoint {
    mt_webhook cfg;
    mt_webhook_stats st;
    int64_t hour;  /* the wall-clock hour the count below is for */
    int this_hour; /* notifications sent in it */
} endpoint;

struct mt_notifier {
    endpoint *ep;
    size_t n;
    pthread_t thread;
    pthread_mutex_t lock; /* guards the queue, stop and the stats */
    pthread_cond_t wake;
    msg *head, *tail;
    bool stop;
};

mt_webhook mt_webhook_default(void)
{
    mt_webhook w;
    memset(&w, 0, sizeof w);
    w.retry_attempts = 3;
    w.timeout_s = 30;
    w.rate_limit_per_hour = 10;
    w.retry_base_ms = 1000;
    return w;
}

/* One event type's bit, 0 when unknown. */
static unsigned event_bit(const char *name, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"fired", MT_WEBHOOK_FIRED},       {"severity_changed", MT_WEBHOOK_SEVERITY},
                 {"reminder", MT_WEBHOOK_REMINDER}, {"resolved", MT_WEBHOOK_RESOLVED},
                 {"warning", MT_WEBHOOK_WARNING},   {"critical", MT_WEBHOOK_CRITICAL}};
    if (len > 6 && !memcmp(name, "alert.", 6)) name += 6, len -= 6;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && !memcmp(names[i].name, name, len)) return names[i].bit;
    return 0;
}

int mt_webhook_parse_events(const char *list, unsigned *events, char *unknown, size_t cap)
{
    static const char sep[] = ", \t\r\n";
    int bad = 0;
    *events = 0;
    if (cap) unknown[0] = '\0';
    for (const char *p = list ? list : ""; *p;) {
        p += strspn(p, sep);
        size_t len = strcspn(p, sep);
        if (!len) break;
        unsigned bit = event_bit(p, len);
        *events |= bit | MT_WEBHOOK_FILTERED;
        if (!bit && !bad++ && cap) snprintf(unknown, cap, "%.*s", (int)len, p);
        p += len;
    }
    return bad;
}

/* Whether list ('\n'-separated) holds s. */
static bool listed(const char *list, const char *s)
{
    size_t n = strlen(s);
    if (!n) return false;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, "\n");
        if (len == n && !memcmp(p, s, n)) return true;
        p += len + (p[len] == '\n');
    }
    return false;
}

bool mt_webhook_wants(const mt_webhook *w, const mt_notice *n)
{
    /* a tenant's endpoint hears of its tenant's alerts only; a system-wide one of all */
    if (w->business_id[0] && strcmp(w->business_id, n->business_id ? n->business_id : ""))
        return false;
    if (w->events) {
        unsigned ev = w->events & MT_WEBHOOK_EVENTS, sev = w->events & MT_WEBHOOK_SEVERITIES;
        if (!ev && !sev) return false; /* only names Metron does not know: nothing */
        if (ev && !(ev & n->event)) return false;
        if (sev && !(sev & n->severity)) return false;
    }
    if (n->channels && n->channels[0] && !listed(n->channels, w->id) &&
        !listed(n->channels, w->name))
        return false;
    return true;
}

int mt_webhook_sign(const char *secret, const char *ts, const char *body, size_t len, char out[72])
{
    out[0] = '\0';
    size_t tl = strlen(ts);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    unsigned char *text = malloc(tl + 1 + len + 1);
    if (!text) return -ENOMEM;
    memcpy(text, ts, tl);
    text[tl] = '.';
    memcpy(text + tl + 1, body, len);
    /* "webhook.sign": as if OpenSSL failed (tests prove nothing unsigned goes out) */
    bool ok = !mt_fault_hit("webhook.sign") &&
              HMAC(EVP_sha256(), secret, (int)strlen(secret), text, tl + 1 + len, mac, &ml) &&
              ml == 32;
    free(text);
    if (!ok) return MT_ECRYPTO;
    int k = snprintf(out, 72, "sha256=");
    for (unsigned i = 0; i < ml; i++) k += snprintf(out + k, (size_t)(72 - k), "%02x", mac[i]);
    return MT_OK;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

typedef enum outcome { SENT, FAILED, UNSIGNED } outcome;

/* One POST of m: SENT on a 2xx answer; UNSIGNED when it could not be signed (nothing sent). */
static outcome post(const endpoint *ep, const msg *m, char *why, size_t cap)
{
    char ts[24], sig[72], h1[64], h2[96], h3[96];
    snprintf(ts, sizeof ts, "%lld", (long long)(mt_now_ns() / 1000000000));
    int rc = mt_webhook_sign(ep->cfg.secret, ts, m->body, m->len, sig);
    if (rc) return snprintf(why, cap, "cannot sign: %s", mt_strerror(rc)), UNSIGNED;
    CURL *c = curl_easy_init();
    if (!c) return snprintf(why, cap, "curl_easy_init failed"), FAILED;
    snprintf(h1, sizeof h1, "X-Metron-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "X-Metron-Signature: %s", sig);
    snprintf(h3, sizeof h3, "X-Metron-Delivery: %s", m->delivery);
    struct curl_slist *hdr = NULL, *h;
    /* "Expect:" (empty) turns off libcurl's 100-continue wait: receivers seldom answer it */
    const char *lines[] = {"Content-Type: application/json", "Expect:", h1, h2, h3};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!(h = curl_slist_append(hdr, lines[i]))) {
            curl_slist_free_all(hdr);
            curl_easy_cleanup(c);
            return snprintf(why, cap, "out of memory"), FAILED;
        }
        hdr = h;
    }
    CURLcode cc = CURLE_OK;
    /* every option checked: a request without its headers must not go out */
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_URL, ep->cfg.url);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->body);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ep->cfg.timeout_s);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK) cc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (cc == CURLE_OK) cc = curl_easy_perform(c);
    long status = 0;
    if (cc == CURLE_OK) cc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        snprintf(why, cap, "%s", curl_easy_strerror(cc));
    else if (status < 200 || status > 299)
        snprintf(why, cap, "answered %ld", status);
    return cc == CURLE_OK && status >= 200 && status <= 299 ? SENT : FAILED;
}

/* Sleep ms unless stopping (a stop still lets the retries of the queue run: no wait then). */
static void pause_ms(mt_notifier *nf, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t at = ts.tv_nsec + (int64_t)ms * 1000000;
    ts.tv_sec += at / 1000000000;
    ts.tv_nsec = at % 1000000000;
    pthread_mutex_lock(&nf->lock);
    if (!nf->stop) pthread_cond_timedwait(&nf->wake, &nf->lock, &ts);
    pthread_mutex_unlock(&nf->lock);
}

static void deliver(mt_notifier *nf, endpoint *ep, const msg *m)
{
    mt_notice n = {.business_id = m->tenant,
                   .event = m->event,
                   .severity = m->severity,
                   .channels = m->channels,
                   .delivery = m->delivery};
    if (!mt_webhook_wants(&ep->cfg, &n)) return; /* another tenant's, or not its events */
    int64_t hour = mt_now_ns() / (3600 * 1000000000LL);
    pthread_mutex_lock(&nf->lock);
    if (ep->hour != hour) ep->hour = hour, ep->this_hour = 0;
    bool limited = ep->cfg.rate_limit_per_hour && ep->this_hour >= ep->cfg.rate_limit_per_hour;
    if (limited)
        ep->st.rate_limited++;
    else
        ep->this_hour++;
    pthread_mutex_unlock(&nf->lock);
    if (limited) {
        mt_log(MT_LOG_WARN,
               "msg=\"webhook rate limit: notification dropped\" endpoint=\"%s\" delivery=%s",
               ep->cfg.name, m->delivery);
        return;
    }
    char why[256] = "";
    outcome o = FAILED;
    int delay = ep->cfg.retry_base_ms;
    for (int attempt = 0; attempt <= ep->cfg.retry_attempts && o == FAILED; attempt++) {
        if (attempt) {
            pause_ms(nf, delay);
            delay *= 2;
        }
        o = post(ep, m, why, sizeof why);
        pthread_mutex_lock(&nf->lock);
        ep->st.total++;
        if (o == SENT)
            ep->st.successful++, ep->st.last_success_ns = mt_now_ns();
        else
            ep->st.failed++, ep->st.last_failure_ns = mt_now_ns();
        if (o == UNSIGNED) ep->st.unsigned_++;
        pthread_mutex_unlock(&nf->lock);
    }
    if (o == UNSIGNED)
        mt_log(MT_LOG_ERROR,
               "msg=\"webhook not sent: the body could not be signed\" endpoint=\"%s\" "
               "delivery=%s err=\"%s\"",
               ep->cfg.name, m->delivery, why);
    else if (o == FAILED)
        mt_log(MT_LOG_WARN,
               "msg=\"webhook failed after retries\" endpoint=\"%s\" delivery=%s err=\"%s\"",
               ep->cfg.name, m->delivery, why);
}

static void msg_free(msg *m)
{
    if (!m) return;
    free(m->body);
    free(m->tenant);
    free(m->channels);
    free(m);
}

static void *worker(void *arg)
{
    mt_notifier *nf = arg;
    for (;;) {
        pthread_mutex_lock(&nf->lock);
        while (!nf->head && !nf->stop) pthread_cond_wait(&nf->wake, &nf->lock);
        msg *m = nf->head;
        if (m) {
            nf->head = m->next;
            if (!nf->head) nf->tail = NULL;
        }
        pthread_mutex_unlock(&nf->lock);
        if (!m) break; /* stopping, and nothing queued */
        for (size_t i = 0; i < nf->n; i++) deliver(nf, &nf->ep[i], m);
        msg_free(m);
    }
    return NULL;
}

int mt_notifier_start(const mt_webhook *hooks, size_t n, mt_notifier **out)
{
    mt_notifier *nf = calloc(1, sizeof *nf);
    if (!nf || (n && !(nf->ep = calloc(n, sizeof *nf->ep)))) {
        free(nf);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) nf->ep[i].cfg = hooks[i];
    nf->n = n;
    pthread_mutex_init(&nf->lock, NULL);
    pthread_cond_init(&nf->wake, NULL);
    int rc = pthread_create(&nf->thread, NULL, worker, nf);
    if (rc) {
        free(nf->ep);
        free(nf);
        return -rc;
    }
    *out = nf;
    return 0;
}

int mt_notifier_send(mt_notifier *nf, const char *body, size_t len, const mt_notice *n)
{
    msg *m = calloc(1, sizeof *m);
    if (m && (m->body = malloc(len + 1))) {
        memcpy(m->body, body, len);
        m->body[len] = '\0';
    }
    if (!m || !m->body || !(m->tenant = strdup(n->business_id ? n->business_id : "")) ||
        !(m->channels = strdup(n->channels ? n->channels : ""))) {
        msg_free(m);
        mt_log(MT_LOG_ERROR, "msg=\"webhook notification dropped: out of memory\" delivery=%s",
               n->delivery ? n->delivery : "");
        return -ENOMEM;
    }
    m->len = len;
    m->event = n->event;
    m->severity = n->severity;
    snprintf(m->delivery, sizeof m->delivery, "%s", n->delivery ? n->delivery : "");
    pthread_mutex_lock(&nf->lock);
    if (nf->tail)
        nf->tail->next = m;
    else
        nf->head = m;
    nf->tail = m;
    pthread_cond_signal(&nf->wake);
    pthread_mutex_unlock(&nf->lock);
    return MT_OK;
}

void mt_notifier_stop(mt_notifier *nf)
{
    if (!nf) return;
    pthread_mutex_lock(&nf->lock);
    nf->stop = true;
    pthread_cond_signal(&nf->wake);
    pthread_mutex_unlock(&nf->lock);
    pthread_join(nf->thread, NULL);
    pthread_mutex_destroy(&nf->lock);
    pthread_cond_destroy(&nf->wake);
    free(nf->ep);
    free(nf);
}

void mt_notifier_stats(mt_notifier *nf, size_t i, mt_webhook_stats *out)
{
    pthread_mutex_lock(&nf->lock);
    *out = nf->ep[i].st;
    pthread_mutex_unlock(&nf->lock);
}
