/*
 * mt_alert.c — rule evaluation and the alert lifecycle (mt_alert_rule.h).
 */
#include "mt_alert_rule.h"

#include "mt_buf.h"
#include "mt_hash.h"
#include "mt_series.h"
#include "mt_time.h"
#include "mt_uuid.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_NS  (60LL * 1000000000LL)
#define HOUR_NS MT_HOUR_NS

mt_alert_rule mt_alert_rule_default(void)
{
    mt_alert_rule r;
    memset(&r, 0, sizeof r);
    r.cond = MT_COND_THRESHOLD;
    r.agg = (mt_agg){.kind = MT_AGG_AVG, .name = "avg"};
    r.window_ns = 5 * MIN_NS;
    r.op = MT_CMP_GT;
    r.trend_period_ns = HOUR_NS;
    r.anomaly_sensitivity = 1;
    r.cooldown_ns = 15 * MIN_NS;
    r.nodata = MT_NODATA_KEEP;
    return r;
}

/* The index of s in names[0..n), the enum's value of that name; -1 when none. */
static int name_index(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return (int)i;
    return -1;
}

#define NNAMES(a) (sizeof(a) / sizeof((a)[0]))

static const char *const cmp_names[] = {"gt", "lt", "eq", "ne", "gte", "lte"};
static const char *const cond_names[] = {"threshold", "trend", "anomaly"}; /* mt_cond's order */
static const char *const nodata_names[] = {"keep", "ignore", "alert"};     /* mt_nodata's */

bool mt_cmp_parse(const char *s, mt_cmp *out)
{
    int i = name_index(s, cmp_names, NNAMES(cmp_names));
    if (i >= 0) *out = (mt_cmp)i;
    return i >= 0;
}

const char *mt_cmp_name(mt_cmp c)
{
    return cmp_names[c];
}

bool mt_cond_parse(const char *s, mt_cond *out)
{
    int i = name_index(s, cond_names, NNAMES(cond_names));
    if (i >= 0) *out = (mt_cond)i;
    return i >= 0;
}

bool mt_nodata_parse(const char *s, mt_nodata *out)
{
    int i = name_index(s, nodata_names, NNAMES(nodata_names));
    if (i >= 0) *out = (mt_nodata)i;
    return i >= 0;
}

const char *mt_severity_name(mt_severity s)
{
    return s == MT_SEV_CRITICAL ? "critical" : s == MT_SEV_WARNING ? "warning" : "none";
}

bool mt_alert_rule_add_silence(mt_alert_rule *r, const char *text)
{
    const char *slash = strchr(text, '/');
    char from[64];
    int64_t now = 0, a, b;
    if (!slash || (size_t)(slash - text) >= sizeof from || r->nsilences == MT_ALERT_MAX_SILENCES)
        return false;
    snprintf(from, sizeof from, "%.*s", (int)(slash - text), text);
    if (!mt_time_parse(from, now, &a) || !mt_time_parse(slash + 1, now, &b) || b <= a) return false;
    r->silence_from[r->nsilences] = a;
    r->silence_to[r->nsilences++] = b;
    return true;
}

bool mt_alert_rule_add_escalation(mt_alert_rule *r, const char *text)
{
    const char *colon = strchr(text, ':');
    char after[64], *end;
    if (!colon || (size_t)(colon - text) >= sizeof after ||
        r->nescalations == MT_ALERT_MAX_ESCALATIONS)
        return false;
    snprintf(after, sizeof after, "%.*s", (int)(colon - text), text);
    char *a = after + strspn(after, " \t");
    for (size_t n = strlen(a); n && (a[n - 1] == ' ' || a[n - 1] == '\t'); n--) a[n - 1] = '\0';
    mt_alert_escalation e = {0};
    double minutes = strtod(a, &end);
    if (end != a && !*end && isfinite(minutes) && minutes >= 0 && minutes < 1e7)
        e.after_ns = (int64_t)llround(minutes * 60e9);
    else if (!mt_duration_parse(a, &e.after_ns) || e.after_ns < 0)
        return false;
    size_t at = 0;
    for (const char *p = colon + 1; *p;) {
        p += strspn(p, ", \t\r\n");
        size_t len = strcspn(p, ",\r\n");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (!len) break;
        if (at + len + 2 > sizeof e.channels) return false;
        if (at) e.channels[at++] = '\n';
        memcpy(e.channels + at, p, len);
        at += len;
        e.channels[at] = '\0';
        p += len;
        p += strcspn(p, ",\r\n");
    }
    if (!at) return false;
    size_t i = r->nescalations++;
    for (; i && r->escalations[i - 1].after_ns > e.after_ns; i--)
        r->escalations[i] = r->escalations[i - 1];
    r->escalations[i] = e;
    return true;
}

static bool silenced(const mt_alert_rule *r, int64_t now)
{
    for (size_t i = 0; i < r->nsilences; i++)
        if (now >= r->silence_from[i] && now < r->silence_to[i]) return true;
    return false;
}

/* The rule's selector, scoped to its tenant. */
static int scoped(const mt_alert_rule *r, char *out, size_t cap)
{
    if (!r->business_id[0])
        return snprintf(out, cap, "%s", r->metric) < (int)cap ? MT_OK : MT_ELIMIT;
    const char *brace = strchr(r->metric, '{');
    int n = brace ? snprintf(out, cap, "%.*s{business_id=\"%s\",%s", (int)(brace - r->metric),
                             r->metric, r->business_id, brace + 1)
                  : snprintf(out, cap, "%s{business_id=\"%s\"}", r->metric, r->business_id);
    return n < (int)cap ? MT_OK : MT_ELIMIT;
}

int mt_alert_rule_check(const mt_alert_rule *r, char *err, size_t errcap)
{
    if (!r->metric[0]) return snprintf(err, errcap, "metric_name is empty"), MT_EINVAL;
    if (r->window_ns <= 0)
        return snprintf(err, errcap, "evaluation_window must be positive"), MT_EINVAL;
    if (r->cond != MT_COND_ANOMALY && !r->has_warning && !r->has_critical)
        return snprintf(err, errcap, "a %s rule needs warning_threshold or critical_threshold",
                        r->cond == MT_COND_TREND ? "trend" : "threshold"),
               MT_EINVAL;
    if (r->cond == MT_COND_TREND && r->trend_period_ns <= 0)
        return snprintf(err, errcap, "trend_period must be positive"), MT_EINVAL;
    if (r->cond == MT_COND_ANOMALY && !(r->anomaly_sensitivity >= 0 && r->anomaly_sensitivity <= 1))
        return snprintf(err, errcap, "anomaly_sensitivity is between 0 and 1"), MT_EINVAL;
    if (r->cooldown_ns < 0) return snprintf(err, errcap, "cooldown_period is negative"), MT_EINVAL;
    /* the selector evaluation parses: a rule that passes here never fails there on its text
       (`metron rules check` and `rules eval` agree; metrond refuses it at load, not at every
       evaluation) */
    char sel[1024], why[256];
    if (scoped(r, sel, sizeof sel))
        return snprintf(err, errcap, "metric_name is too long"), MT_EINVAL;
    int rc = mt_selector_check(sel, why, sizeof why);
    if (rc == -ENOMEM) return snprintf(err, errcap, "out of memory"), -ENOMEM;
    if (rc) return snprintf(err, errcap, "metric_name '%s': %s", r->metric, why), MT_EINVAL;
    return MT_OK;
}

bool mt_alert_business_hours(int64_t now)
{
    time_t t = (time_t)(now / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_wday >= 1 && tm.tm_wday <= 5 && tm.tm_hour >= 9 && tm.tm_hour < 17;
}

/* ---- aggregates per series over one window ------------------------------------------------ */

typedef struct sval {
    char *name;
    double v;
} sval;

typedef struct window {
    sval *v;
    size_t n;
} window;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sval *)a)->name, ((const sval *)b)->name);
}

static void window_free(window *w)
{
    for (size_t i = 0; i < w->n; i++) free(w->v[i].name);
    free(w->v);
    w->v = NULL;
    w->n = 0;
}

/* The aggregate of each series with points in [from, to); sorted by name. */
static int window_of(mt_engine *e, const char *sel, const mt_agg *agg, int64_t from, int64_t to,
                     window *out, char *err, size_t errcap)
{
    mt_query_spec qs = {.select = sel, .from = from, .to = to, .aggs = agg, .naggs = 1};
    mt_query *q;
    int rc = mt_query_open(e, &qs, &q, err, errcap);
    if (rc) return rc;
    size_t cap = 0;
    mt_row row;
    while (!rc && (rc = mt_query_next(q, &row)) == MT_OK) {
        if (!row.nvalues || isnan(row.values[0])) continue;
        if ((rc = mt_grow(&out->v, &cap, out->n + 1, sizeof *out->v, 16))) break;
        if (!(out->v[out->n].name = strdup(row.group))) {
            rc = -ENOMEM;
            break;
        }
        out->v[out->n++].v = row.values[0];
    }
    mt_query_close(q);
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    if (!rc && out->n) qsort(out->v, out->n, sizeof *out->v, by_name);
    return rc;
}

static bool lookup(const window *w, const char *name, double *v)
{
    sval key = {.name = (char *)name};
    const sval *at = w->n ? bsearch(&key, w->v, w->n, sizeof key, by_name) : NULL;
    if (at) *v = at->v;
    return at != NULL;
}

static bool breached(mt_cmp op, double v, double t)
{
    switch (op) {
    case MT_CMP_GT: return v > t;
    case MT_CMP_LT: return v < t;
    case MT_CMP_EQ: return v == t;
    case MT_CMP_NE: return v != t;
    case MT_CMP_GTE: return v >= t;
    case MT_CMP_LTE: return v <= t;
    }
    return false;
}

/* Critical first: the first threshold breached names the severity. */
static void judge(const mt_alert_rule *r, double v, double scale, mt_cmp op, mt_alert_eval *ev)
{
    bool hw = r->has_warning, hc = r->has_critical;
    double w = r->warning, c = r->critical;
    if (r->cond == MT_COND_ANOMALY && !hw && !hc) hw = hc = true, w = 2, c = 3;
    ev->severity = MT_SEV_NONE;
    ev->threshold = NAN;
    if (hc && breached(op, v, c * scale))
        ev->severity = MT_SEV_CRITICAL, ev->threshold = c * scale;
    else if (hw && breached(op, v, w * scale))
        ev->severity = MT_SEV_WARNING, ev->threshold = w * scale;
}

/* The tenant of a series: its business_id tag. The buffers are big: one per evaluation. */
typedef struct tenant_of {
    char key[MT_SERIES_MAX_KEY];
    mt_series_parts parts;
    char business_id[MT_SERIES_MAX_KEY + 1]; /* "" when the series has no business_id tag */
} tenant_of;

static int series_tenant(mt_engine *e, uint32_t id, tenant_of *t)
{
    size_t kl;
    int rc = mt_engine_series_key(e, id, t->key, sizeof t->key, &kl);
    if (!rc) rc = mt_series_parse(t->key, kl, &t->parts);
    if (rc) return rc;
    t->business_id[0] = '\0';
    for (size_t k = 0; k < t->parts.ntags; k++) {
        const mt_name *tk = &t->parts.tag_keys[k], *tv = &t->parts.tag_values[k];
        if (tk->len == 11 && !memcmp(tk->ptr, "business_id", 11)) {
            memcpy(t->business_id, tv->ptr, tv->len);
            t->business_id[tv->len] = '\0';
        }
    }
    return MT_OK;
}

int mt_alert_evaluate(mt_engine *e, const mt_alert_rule *r, int64_t now,
                      int (*fn)(void *ud, const mt_alert_eval *ev), void *ud, char *err,
                      size_t errcap)
{
    if (r->business_hours_only && !mt_alert_business_hours(now)) return MT_OK;
    char sel[1024];
    int rc = scoped(r, sel, sizeof sel);
    if (rc) return snprintf(err, errcap, "metric_name is too long"), rc;
    /* the windows: the current one, and what the condition compares it with */
    size_t nw = r->cond == MT_COND_THRESHOLD ? 1
                : r->cond == MT_COND_TREND   ? 2
                                             : 1 + MT_ALERT_BASELINE_WINDOWS;
    window w[1 + MT_ALERT_BASELINE_WINDOWS];
    memset(w, 0, sizeof w);
    for (size_t k = 0; !rc && k < nw; k++) {
        int64_t end = r->cond == MT_COND_TREND && k == 1 ? now - r->trend_period_ns
                                                         : now - (int64_t)k * r->window_ns;
        rc = window_of(e, sel, &r->agg, end - r->window_ns, end, &w[k], err, errcap);
    }
    /* every series the selector matches, data or not */
    mt_query_spec qs = {.select = sel, .from = now - r->window_ns, .to = now};
    mt_query *q = NULL;
    tenant_of *t = NULL;
    if (!rc && !(t = malloc(sizeof *t))) rc = -ENOMEM;
    if (!rc) rc = mt_query_open(e, &qs, &q, err, errcap);
    for (size_t i = 0; !rc && i < (q ? mt_query_series(q) : 0); i++) {
        const char *name = mt_query_series_name(q, i);
        rc = series_tenant(e, mt_query_series_id(q, i), t);
        if (rc) {
            snprintf(err, errcap, "series %s: cannot read its key", name);
            break;
        }
        /* the scoped selector holds a rule to its tenant; checked here again, as the
           alert is that series' tenant's */
        if (r->business_id[0] && strcmp(t->business_id, r->business_id)) continue;
        mt_alert_eval ev = {.series = name, .business_id = t->business_id, .threshold = NAN};
        double cur;
        if (!lookup(&w[0], name, &cur)) {
            ev.nodata = true;
        } else if (r->cond == MT_COND_THRESHOLD) {
            ev.value = cur;
            judge(r, cur, 1, r->op, &ev);
        } else if (r->cond == MT_COND_TREND) {
            double before;
            if (!lookup(&w[1], name, &before)) {
                ev.nodata = true;
            } else {
                ev.value = (cur - before) / ((double)r->trend_period_ns / (double)HOUR_NS);
                judge(r, ev.value, 1, r->op, &ev);
            }
        } else {
            double base[MT_ALERT_BASELINE_WINDOWS], mean = 0, m2 = 0;
            size_t nb = 0;
            for (size_t k = 1; k < nw; k++)
                if (lookup(&w[k], name, &base[nb])) nb++;
            if (nb < 2) {
                ev.nodata = true; /* no baseline yet */
            } else {
                for (size_t k = 0; k < nb; k++) mean += base[k];
                mean /= (double)nb;
                for (size_t k = 0; k < nb; k++) m2 += (base[k] - mean) * (base[k] - mean);
                double sd = sqrt(m2 / (double)(nb - 1));
                ev.value = sd > 0 ? fabs(cur - mean) / sd : cur == mean ? 0 : INFINITY;
                judge(r, ev.value, 2 - r->anomaly_sensitivity, MT_CMP_GTE, &ev);
            }
        }
        rc = fn(ud, &ev);
    }
    mt_query_close(q);
    free(t);
    for (size_t k = 0; k < nw; k++) window_free(&w[k]);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

mt_alert_change mt_alert_step(const mt_alert_rule *r, mt_alert_state *s, const mt_alert_eval *ev,
                              int64_t now)
{
    bool open = s->status == MT_ALERT_ACTIVE || s->status == MT_ALERT_ACKNOWLEDGED;
    mt_severity sev = ev->severity;
    if (ev->nodata) {
        if (r->nodata != MT_NODATA_ALERT) return MT_CHANGE_NONE; /* keep or ignore: as it is */
        sev = MT_SEV_CRITICAL;
    }
    if (sev == MT_SEV_NONE) {
        if (s->status == MT_ALERT_SUPPRESSED) { /* it cleared inside the silence: quietly */
            s->status = MT_ALERT_RESOLVED;
            s->resolved_at = now;
            s->value = ev->value;
            return MT_CHANGE_UPDATED;
        }
        if (!open) return MT_CHANGE_NONE;
        s->status = MT_ALERT_RESOLVED;
        s->resolved_at = now;
        s->value = ev->value;
        return MT_CHANGE_RESOLVED;
    }
    double value = ev->nodata ? NAN : ev->value;
    if (!open && silenced(r, now)) {
        if (s->status != MT_ALERT_SUPPRESSED)
            *s = (mt_alert_state){.status = MT_ALERT_SUPPRESSED, .triggered_at = now};
        s->severity = sev;
        s->value = value;
        s->threshold = ev->threshold;
        return MT_CHANGE_SUPPRESSED;
    }
    if (!open) { /* a new alert instance (or a suppressed one whose silence ended) */
        *s = (mt_alert_state){.status = MT_ALERT_ACTIVE,
                              .severity = sev,
                              .triggered_at = now,
                              .notified_at = now,
                              .value = value,
                              .threshold = ev->threshold,
                              .notifications = 1};
        return MT_CHANGE_FIRED;
    }
    s->value = value;
    s->threshold = ev->threshold;
    if (sev != s->severity) {
        s->severity = sev;
        s->notified_at = now;
        s->notifications++;
        return MT_CHANGE_SEVERITY;
    }
    if (s->status == MT_ALERT_ACTIVE && now - s->notified_at >= r->cooldown_ns) {
        s->notified_at = now;
        s->notifications++;
        return MT_CHANGE_RENOTIFY;
    }
    return MT_CHANGE_UPDATED;
}

/* ---- the record ------------------------------------------------------------------------------ */

/* 2 adds the alert's own business_id (its series' tenant) at the end. */
#define RECORD_VERSION 2

int mt_alert_record_key(const char *rule_id, const char *series, char *out, size_t cap, size_t *len)
{
    size_t a = strlen(rule_id), b = strlen(series);
    char hashed[40];
    if (2 + a + b > MT_ALERT_KEY_MAX) { /* LMDB refuses longer keys: the series' hash instead */
        b = (size_t)snprintf(hashed, sizeof hashed, "#%016llx%016llx",
                             (unsigned long long)mt_hash64_seeded(series, b, 21),
                             (unsigned long long)mt_hash64_seeded(series, b, 22));
        series = hashed;
    }
    if (2 + a + b > cap) return MT_ELIMIT;
    out[0] = 'A';
    memcpy(out + 1, rule_id, a);
    out[1 + a] = '\0';
    memcpy(out + 2 + a, series, b);
    *len = 2 + a + b;
    return MT_OK;
}

void mt_alert_id(const char *rule_id, const char *series, int64_t triggered_at, char out[37])
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%s|%s|%lld", rule_id, series, (long long)triggered_at);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    uint64_t a = mt_hash64_seeded(buf, len, 11), b = mt_hash64_seeded(buf, len, 12);
    mt_uuid_v8(a, b, out);
}

/* The record is bytes, built in a growable string (whose NUL after them nothing reads). */
static void wput(mt_sbuf *w, const void *src, size_t n)
{
    mt_sb_put(w, src, n);
}

static void wstr(mt_sbuf *w, const char *s)
{
    uint8_t v[MT_UVARINT_MAX];
    size_t n = strlen(s);
    wput(w, v, mt_put_uvarint(v, n));
    wput(w, s, n);
}

static void wu64(mt_sbuf *w, uint64_t x)
{
    uint8_t b[8];
    mt_put_le(b, x, 8);
    wput(w, b, 8);
}

static void wf64(mt_sbuf *w, double d)
{
    uint64_t x;
    memcpy(&x, &d, 8);
    wu64(w, x);
}

int mt_alert_record_encode(const mt_alert_record *r, uint8_t **buf, size_t *len)
{
    mt_sbuf w = {0};
    uint8_t head[4] = {RECORD_VERSION, (uint8_t)r->rule.cond, (uint8_t)r->rule.op,
                       (uint8_t)((r->rule.has_warning ? 1 : 0) | (r->rule.has_critical ? 2 : 0))};
    wput(&w, head, 4);
    wstr(&w, r->alert_id);
    wstr(&w, r->rule.id);
    wstr(&w, r->rule.business_id);
    wstr(&w, r->rule.name);
    wstr(&w, r->rule.metric);
    wstr(&w, r->series);
    wf64(&w, r->rule.warning);
    wf64(&w, r->rule.critical);
    uint8_t st[2] = {(uint8_t)r->st.status, (uint8_t)r->st.severity};
    wput(&w, st, 2);
    wu64(&w, (uint64_t)r->st.triggered_at);
    wu64(&w, (uint64_t)r->st.resolved_at);
    wu64(&w, (uint64_t)r->st.notified_at);
    wf64(&w, r->st.value);
    wf64(&w, r->st.threshold);
    wu64(&w, r->st.notifications);
    wstr(&w, r->business_id);
    if (w.oom) {
        mt_sb_free(&w);
        return -ENOMEM;
    }
    *buf = (uint8_t *)w.p;
    *len = w.len;
    return MT_OK;
}

static int rstr(mt_rd *r, char *out, size_t cap)
{
    uint64_t n;
    /* a NUL inside is no string the encoder wrote (it writes strlen bytes): corrupt, not cut */
    if (mt_rd_uvarint(r, &n) || n >= cap || n > mt_rd_left(r) || memchr(r->p, 0, n))
        return MT_ECORRUPT;
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
    return MT_OK;
}

static int rf64(mt_rd *r, double *d)
{
    uint64_t x;
    int rc = mt_rd_u64le(r, &x);
    if (!rc) memcpy(d, &x, 8);
    return rc;
}

int mt_alert_record_decode(const void *buf, size_t len, mt_alert_record *r)
{
    mt_rd rd = {buf, (const uint8_t *)buf + len};
    memset(r, 0, sizeof *r);
    r->rule = mt_alert_rule_default();
    uint8_t head[4], st[2];
    int rc = MT_OK;
    for (int i = 0; i < 4 && !rc; i++) rc = mt_rd_u8(&rd, &head[i]);
    if (!rc && ((head[0] != 1 && head[0] != RECORD_VERSION) || head[1] > MT_COND_ANOMALY ||
                head[2] > MT_CMP_LTE))
        rc = MT_ECORRUPT;
    if (!rc) {
        r->rule.cond = (mt_cond)head[1];
        r->rule.op = (mt_cmp)head[2];
        r->rule.has_warning = head[3] & 1;
        r->rule.has_critical = head[3] & 2;
    }
    if (!rc) rc = rstr(&rd, r->alert_id, sizeof r->alert_id);
    if (!rc) rc = rstr(&rd, r->rule.id, sizeof r->rule.id);
    if (!rc) rc = rstr(&rd, r->rule.business_id, sizeof r->rule.business_id);
    if (!rc) rc = rstr(&rd, r->rule.name, sizeof r->rule.name);
    if (!rc) rc = rstr(&rd, r->rule.metric, sizeof r->rule.metric);
    if (!rc) rc = rstr(&rd, r->series, sizeof r->series);
    if (!rc) rc = rf64(&rd, &r->rule.warning);
    if (!rc) rc = rf64(&rd, &r->rule.critical);
    for (int i = 0; i < 2 && !rc; i++) rc = mt_rd_u8(&rd, &st[i]);
    if (!rc && (st[0] > MT_ALERT_SUPPRESSED || st[1] > MT_SEV_CRITICAL)) rc = MT_ECORRUPT;
    uint64_t x[4];
    for (int i = 0; i < 3 && !rc; i++) rc = mt_rd_u64le(&rd, &x[i]);
    if (!rc) rc = rf64(&rd, &r->st.value);
    if (!rc) rc = rf64(&rd, &r->st.threshold);
    if (!rc) rc = mt_rd_u64le(&rd, &x[3]);
    if (!rc && head[0] >= 2)
        rc = rstr(&rd, r->business_id, sizeof r->business_id);
    else if (!rc) /* version 1: the rule's tenant until the next evaluation says the series' */
        memcpy(r->business_id, r->rule.business_id, sizeof r->business_id);
    if (!rc && (mt_rd_left(&rd) || x[3] > UINT32_MAX)) rc = MT_ECORRUPT;
    if (rc) return rc;
    r->st.status = (mt_alert_status)st[0];
    r->st.severity = (mt_severity)st[1];
    r->st.triggered_at = (int64_t)x[0];
    r->st.resolved_at = (int64_t)x[1];
    r->st.notified_at = (int64_t)x[2];
    r->st.notifications = (uint32_t)x[3];
    return MT_OK;
}

const char *mt_alert_listing_header(void)
{
    return "id\tstatus\tseverity\trule\tseries\tvalue\tthreshold\ttriggered_at\tresolved_at\t"
           "business_id\n";
}

void mt_alert_record_row(const mt_alert_record *r, char *out, size_t cap)
{
    static const char *const statuses[] = {"none", "active", "acknowledged", "resolved",
                                           "suppressed"};
    char trig[48] = "", res[48] = "", thr[32] = "";
    if (r->st.triggered_at) mt_time_format(r->st.triggered_at, trig, sizeof trig);
    if (r->st.resolved_at) mt_time_format(r->st.resolved_at, res, sizeof res);
    if (!isnan(r->st.threshold)) snprintf(thr, sizeof thr, "%.17g", r->st.threshold);
    snprintf(out, cap, "%s\t%s\t%s\t%s\t%s\t%.17g\t%s\t%s\t%s\t%s\n", r->alert_id,
             statuses[r->st.status], mt_severity_name(r->st.severity), r->rule.name, r->series,
             r->st.value, thr, trig, res, r->business_id);
}
