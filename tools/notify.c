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

#include "mt_log.h"
#include "mt_time.h"

typedef struct msg {
    struct msg *next;
    char *body;
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

void mt_webhook_sign(const char *secret, const char *ts, const char *body, char out[72])
{
    size_t tl = strlen(ts), bl = strlen(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    unsigned char *signed_text = malloc(tl + 1 + bl + 1);
    if (signed_text) {
        memcpy(signed_text, ts, tl);
        signed_text[tl] = '.';
        memcpy(signed_text + tl + 1, body, bl);
        if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), signed_text, tl + 1 + bl, mac, &len))
            len = 0;
        free(signed_text);
    }
    int k = snprintf(out, 72, "sha256=");
    for (unsigned i = 0; i < len && k < 71; i++)
        k += snprintf(out + k, (size_t)(72 - k), "%02x", mac[i]);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* One POST: true on a 2xx answer. */
static bool post(const endpoint *ep, const char *body, long *status, char *why, size_t cap)
{
    CURL *c = curl_easy_init();
    if (!c) return snprintf(why, cap, "curl_easy_init failed"), false;
    char ts[24], sig[72], h1[64], h2[96];
    snprintf(ts, sizeof ts, "%lld", (long long)(mt_now_ns() / 1000000000));
    mt_webhook_sign(ep->cfg.secret, ts, body, sig);
    snprintf(h1, sizeof h1, "X-Metron-Timestamp: %s", ts);
    snprintf(h2, sizeof h2, "X-Metron-Signature: %s", sig);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, h1);
    hdr = curl_slist_append(hdr, h2);
    curl_easy_setopt(c, CURLOPT_URL, ep->cfg.url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ep->cfg.timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(c);
    *status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        snprintf(why, cap, "%s", curl_easy_strerror(cc));
    else if (*status < 200 || *status > 299)
        snprintf(why, cap, "answered %ld", *status);
    return cc == CURLE_OK && *status >= 200 && *status <= 299;
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

static void deliver(mt_notifier *nf, endpoint *ep, const char *body)
{
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
        mt_log(MT_LOG_WARN, "msg=\"webhook rate limit: notification dropped\" endpoint=\"%s\"",
               ep->cfg.name);
        return;
    }
    char why[256] = "";
    long status;
    bool ok = false;
    int delay = ep->cfg.retry_base_ms;
    for (int attempt = 0; attempt <= ep->cfg.retry_attempts && !ok; attempt++) {
        if (attempt) {
            pause_ms(nf, delay);
            delay *= 2;
        }
        ok = post(ep, body, &status, why, sizeof why);
        pthread_mutex_lock(&nf->lock);
        ep->st.total++;
        if (ok)
            ep->st.successful++, ep->st.last_success_ns = mt_now_ns();
        else
            ep->st.failed++, ep->st.last_failure_ns = mt_now_ns();
        pthread_mutex_unlock(&nf->lock);
    }
    if (!ok)
        mt_log(MT_LOG_WARN, "msg=\"webhook failed after retries\" endpoint=\"%s\" err=\"%s\"",
               ep->cfg.name, why);
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
        for (size_t i = 0; i < nf->n; i++) deliver(nf, &nf->ep[i], m->body);
        free(m->body);
        free(m);
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

void mt_notifier_send(mt_notifier *nf, const char *body)
{
    msg *m = malloc(sizeof *m);
    if (!m || !(m->body = strdup(body))) {
        free(m);
        mt_log(MT_LOG_ERROR, "msg=\"webhook notification dropped: out of memory\"");
        return;
    }
    m->next = NULL;
    pthread_mutex_lock(&nf->lock);
    if (nf->tail)
        nf->tail->next = m;
    else
        nf->head = m;
    nf->tail = m;
    pthread_cond_signal(&nf->wake);
    pthread_mutex_unlock(&nf->lock);
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
