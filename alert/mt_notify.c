/* mt_notify.c — signed webhooks with retries (mt_notify.h). */
#include "mt_notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_err.h"
#include "mt_fault.h"
#include "mt_log.h"
#include "mt_time.h"
#include "mt_worker.h"

typedef struct msg {
    struct msg *next;
    char *body;     /* the JSON, NUL-terminated */
    size_t len;     /* its bytes */
    char *tenant;   /* the alert's business_id ("" none) */
    char *channels; /* the rule's notification_channels ("" every endpoint) */
    unsigned event, severity;
    char delivery[64];       /* X-Metron-Delivery: one id for every attempt of this notification */
    mt_channel_alert *alert; /* malloc'd copy, or NULL: none given */
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
    mt_worker w; /* the delivery thread; w.lock guards the queue and the stats too */
    msg *head, *tail;
    pthread_mutex_t rec_lock; /* held while the delivery callback runs, and to change it */
    void (*rec)(void *ud, const mt_notify_record *r);
    void *rec_ud;
};

/* Outcomes of every notifier of the process, by channel type, for /metrics. */
static _Atomic uint64_t outcomes[MT_CHANNEL_NTYPES][MT_NOTIFY_NOUTCOMES];

static const char *const outcome_names[MT_NOTIFY_NOUTCOMES] = {"sent", "failed", "rate_limited",
                                                               "undeliverable"};

const char *mt_notify_outcome_name(mt_notify_outcome o)
{
    return o >= 0 && o < MT_NOTIFY_NOUTCOMES ? outcome_names[o] : "unknown";
}

size_t mt_notify_metrics(char *out, size_t cap)
{
    size_t at = 0;
    int n = snprintf(out, cap,
                     "# HELP metron_notifications_total Alert notifications by channel type and "
                     "outcome (undeliverable: a channel type Metron cannot deliver).\n"
                     "# TYPE metron_notifications_total counter\n");
    if (n < 0 || (size_t)n >= cap) return cap ? (out[0] = '\0', 0) : 0;
    at = (size_t)n;
    for (int t = 0; t < MT_CHANNEL_NTYPES; t++)
        for (int o = 0; o < MT_NOTIFY_NOUTCOMES; o++) {
            n = snprintf(out + at, cap - at,
                         "metron_notifications_total{type=\"%s\",outcome=\"%s\"} %llu\n",
                         mt_channel_type_name((mt_channel_type)t), outcome_names[o],
                         (unsigned long long)atomic_load(&outcomes[t][o]));
            if (n < 0 || (size_t)n >= cap - at) return out[0] = '\0', 0;
            at += (size_t)n;
        }
    return at;
}

void mt_webhook_init(mt_webhook *w)
{
    memset(w, 0, sizeof *w);
    w->retry_attempts = 3;
    w->timeout_s = 30;
    w->rate_limit_per_hour = 10;
    w->retry_base_ms = 1000;
    w->ch.type = MT_CHANNEL_WEBHOOK;
    snprintf(w->ch.type_name, sizeof w->ch.type_name, "webhook");
}

mt_webhook mt_webhook_default(void)
{
    mt_webhook w;
    mt_webhook_init(&w);
    return w;
}

bool mt_webhook_same(const mt_webhook *a, const mt_webhook *b)
{
    return !memcmp(a, b, offsetof(mt_webhook, hour_count));
}

const char *mt_webhook_check_channel(mt_webhook *w)
{
    w->unusable = mt_channel_check(&w->ch, w->url);
    if (w->unusable) w->ch.type = MT_CHANNEL_UNSUPPORTED; /* counted at each notification */
    return w->unusable;
}

/* One event type's bit, 0 when unknown. */
static unsigned event_bit(const char *name, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"fired", MT_WEBHOOK_FIRED},         {"severity_changed", MT_WEBHOOK_SEVERITY},
                 {"reminder", MT_WEBHOOK_REMINDER},   {"resolved", MT_WEBHOOK_RESOLVED},
                 {"escalated", MT_WEBHOOK_ESCALATED}, {"acknowledged", MT_WEBHOOK_ACKNOWLEDGED},
                 {"warning", MT_WEBHOOK_WARNING},     {"critical", MT_WEBHOOK_CRITICAL}};
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
    /* an acknowledgement closes a PagerDuty incident's page; others hear of it when they ask */
    if (n->event == MT_WEBHOOK_ACKNOWLEDGED && w->ch.type != MT_CHANNEL_PAGERDUTY &&
        !(w->events & MT_WEBHOOK_ACKNOWLEDGED))
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
    if (cc == CURLE_OK && ep->cfg.ch.ca_file[0])
        cc = curl_easy_setopt(c, CURLOPT_CAINFO, ep->cfg.ch.ca_file);
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

/* The outcome, counted and handed to the delivery callback. */
static void settle(mt_notifier *nf, const endpoint *ep, const msg *m, mt_notify_outcome o,
                   int attempts, const char *why)
{
    mt_channel_type t =
        ep->cfg.ch.type < MT_CHANNEL_NTYPES ? ep->cfg.ch.type : MT_CHANNEL_UNSUPPORTED;
    atomic_fetch_add(&outcomes[t][o], 1);
    const char *event = m->alert ? m->alert->event : "";
    mt_notify_record r = {.alert_id = m->alert ? m->alert->alert_id : "",
                          .delivery = m->delivery,
                          .event = event,
                          .channel = ep->cfg.name,
                          .channel_id = ep->cfg.id,
                          .channel_type = ep->cfg.ch.type_name[0] ? ep->cfg.ch.type_name
                                                                  : mt_channel_type_name(t),
                          .outcome = o,
                          .attempts = attempts,
                          .at_ns = mt_now_ns(),
                          .error = why ? why : ""};
    pthread_mutex_lock(&nf->rec_lock);
    if (nf->rec) nf->rec(nf->rec_ud, &r);
    pthread_mutex_unlock(&nf->rec_lock);
}

static void deliver(mt_notifier *nf, endpoint *ep, const msg *m)
{
    mt_notice n = {.business_id = m->tenant,
                   .event = m->event,
                   .severity = m->severity,
                   .channels = m->channels,
                   .delivery = m->delivery};
    if (!mt_webhook_wants(&ep->cfg, &n)) return; /* another tenant's, or not its events */
    if (ep->cfg.ch.type >= MT_CHANNEL_UNSUPPORTED) {
        /* logged once where it was loaded; each notification it misses is counted */
        pthread_mutex_lock(&nf->w.lock);
        ep->st.undeliverable++;
        pthread_mutex_unlock(&nf->w.lock);
        settle(nf, ep, m, MT_NOTIFY_UNDELIVERABLE, 0, "a channel type Metron cannot deliver");
        return;
    }
    int64_t now = mt_now_ns(), hour = now / (3600 * 1000000000LL);
    pthread_mutex_lock(&nf->w.lock);
    if (ep->hour != hour) ep->hour = hour, ep->this_hour = 0;
    bool limited = ep->cfg.rate_limit_per_hour && ep->this_hour >= ep->cfg.rate_limit_per_hour;
    if (limited)
        ep->st.rate_limited++;
    else
        ep->this_hour++;
    ep->st.hour_count = ep->this_hour;
    ep->st.hour_start_ns = hour * 3600 * 1000000000LL;
    pthread_mutex_unlock(&nf->w.lock);
    if (limited) {
        mt_log(MT_LOG_WARN,
               "msg=\"webhook rate limit: notification dropped\" endpoint=\"%s\" type=%s "
               "delivery=%s rate_limit_per_hour=%d",
               ep->cfg.name, mt_channel_type_name(ep->cfg.ch.type), m->delivery,
               ep->cfg.rate_limit_per_hour);
        settle(nf, ep, m, MT_NOTIFY_RATE_LIMITED, 0, "");
        return;
    }
    char why[256] = "";
    outcome o = FAILED;
    int delay = ep->cfg.retry_base_ms, attempts = 0;
    bool webhook = ep->cfg.ch.type == MT_CHANNEL_WEBHOOK;
    for (int attempt = 0; attempt <= ep->cfg.retry_attempts && o == FAILED; attempt++) {
        if (attempt) {
            /* a stop still lets the retries of the queue run: no wait then */
            mt_worker_nap(&nf->w, (int64_t)delay * 1000000);
            delay *= 2;
        }
        attempts++;
        if (webhook)
            o = post(ep, m, why, sizeof why);
        else if (!m->alert)
            o = FAILED, snprintf(why, sizeof why, "the notification carries no alert");
        else
            o = mt_channel_send(&ep->cfg.ch, ep->cfg.url, ep->cfg.timeout_s, m->alert, why,
                                sizeof why)
                    ? FAILED
                    : SENT;
        pthread_mutex_lock(&nf->w.lock);
        ep->st.total++;
        if (o == SENT)
            ep->st.successful++, ep->st.last_success_ns = mt_now_ns();
        else
            ep->st.failed++, ep->st.last_failure_ns = mt_now_ns();
        if (o == UNSIGNED) ep->st.unsigned_++;
        pthread_mutex_unlock(&nf->w.lock);
        if (!m->alert && !webhook) break; /* nothing to send: a retry would not change it */
    }
    if (o == UNSIGNED)
        mt_log(MT_LOG_ERROR,
               "msg=\"webhook not sent: the body could not be signed\" endpoint=\"%s\" "
               "delivery=%s err=\"%s\"",
               ep->cfg.name, m->delivery, why);
    else if (o == FAILED)
        mt_log(MT_LOG_WARN,
               "msg=\"webhook failed after retries\" endpoint=\"%s\" type=%s delivery=%s "
               "err=\"%s\"",
               ep->cfg.name, mt_channel_type_name(ep->cfg.ch.type), m->delivery, why);
    settle(nf, ep, m, o == SENT ? MT_NOTIFY_SENT : MT_NOTIFY_FAILED, attempts,
           o == SENT ? "" : why);
}

static void msg_free(msg *m)
{
    if (!m) return;
    free(m->body);
    free(m->tenant);
    free(m->channels);
    free(m->alert);
    free(m);
}

static void *worker(void *arg)
{
    mt_notifier *nf = arg;
    for (;;) {
        pthread_mutex_lock(&nf->w.lock);
        while (!nf->head && !nf->w.stop) pthread_cond_wait(&nf->w.wake, &nf->w.lock);
        msg *m = nf->head;
        if (m) {
            nf->head = m->next;
            if (!nf->head) nf->tail = NULL;
        }
        pthread_mutex_unlock(&nf->w.lock);
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
    for (size_t i = 0; i < n; i++) {
        endpoint *ep = &nf->ep[i];
        ep->cfg = hooks[i];
        /* the count already spent this hour (read from PostgreSQL, or the last notifier's) */
        if (hooks[i].hour_start_ns > 0 && hooks[i].hour_count > 0) {
            ep->hour = hooks[i].hour_start_ns / (3600 * 1000000000LL);
            ep->this_hour = hooks[i].hour_count;
            ep->st.hour_count = ep->this_hour;
            ep->st.hour_start_ns = ep->hour * 3600 * 1000000000LL;
        }
    }
    nf->n = n;
    int rc = mt_worker_init(&nf->w);
    if (rc) {
        free(nf->ep);
        free(nf);
        return rc;
    }
    pthread_mutex_init(&nf->rec_lock, NULL);
    rc = mt_worker_start(&nf->w, worker, nf);
    if (rc) {
        mt_worker_destroy(&nf->w);
        pthread_mutex_destroy(&nf->rec_lock);
        free(nf->ep);
        free(nf);
        return rc;
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
    if (m && n->alert && (m->alert = malloc(sizeof *m->alert))) *m->alert = *n->alert;
    if (!m || !m->body || !(m->tenant = strdup(n->business_id ? n->business_id : "")) ||
        !(m->channels = strdup(n->channels ? n->channels : "")) || (n->alert && !m->alert)) {
        msg_free(m);
        mt_log(MT_LOG_ERROR, "msg=\"webhook notification dropped: out of memory\" delivery=%s",
               n->delivery ? n->delivery : "");
        return -ENOMEM;
    }
    m->len = len;
    m->event = n->event;
    m->severity = n->severity;
    snprintf(m->delivery, sizeof m->delivery, "%s", n->delivery ? n->delivery : "");
    pthread_mutex_lock(&nf->w.lock);
    if (nf->tail)
        nf->tail->next = m;
    else
        nf->head = m;
    nf->tail = m;
    pthread_cond_signal(&nf->w.wake);
    pthread_mutex_unlock(&nf->w.lock);
    return MT_OK;
}

void mt_notifier_stop(mt_notifier *nf)
{
    if (!nf) return;
    mt_worker_stop(&nf->w);
    mt_worker_destroy(&nf->w);
    pthread_mutex_destroy(&nf->rec_lock);
    free(nf->ep);
    free(nf);
}

void mt_notifier_on_delivery(mt_notifier *nf, void (*fn)(void *ud, const mt_notify_record *r),
                             void *ud)
{
    if (!nf) return;
    pthread_mutex_lock(&nf->rec_lock);
    nf->rec = fn;
    nf->rec_ud = ud;
    pthread_mutex_unlock(&nf->rec_lock);
}

void mt_notifier_stats(mt_notifier *nf, size_t i, mt_webhook_stats *out)
{
    pthread_mutex_lock(&nf->w.lock);
    *out = nf->ep[i].st;
    pthread_mutex_unlock(&nf->w.lock);
}
