/*
 * mt_events.c — security_event and business_kpi points to rows
 * (mt_events.h).
 *
 * Both measurements are found through the engine's postings (only their
 * series are read, not every series of the store), scanned over the span
 * the minute mirror hands over, and upserted with one statement per table
 * (INSERT ... SELECT FROM unnest($arrays) ... ON CONFLICT (id) DO UPDATE:
 * values as parameters, never in the SQL text).
 *
 * Events: a point of n fields is n series sharing everything but the
 * field, so the series are grouped by their key without the field (the
 * key's layout ends with the field: mt_series.h), their points gathered,
 * and sorted by (group, timestamp): each run is one event. Its id is
 * md5(the series as line protocol with the field "event", and the
 * timestamp in ns): independent of which fields a re-send happens to see.
 *
 * KPIs: for each `value` series with a point in the span, the periods the
 * points fall in; for each such period P (and P+1 when it has a point), the
 * last value of P and of P-1 (mt_scan_next_or_summary: a sealed hour wholly
 * inside the range is read as its stored summary, whose `last` is the
 * hour's last value, so a month of points is about 720 summaries, not 10^5
 * decoded points), and of the `target` series of the same tags.
 */
#include "mt_events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_log.h"
#include "mt_pgarr.h"
#include "mt_tenant.h"
#include "mt_series.h"
#include "mt_time.h"

#define MAX_KPI_NAME     100  /* business_metrics.metric_name VARCHAR(100) */
#define MAX_KPI_CATEGORY 50   /* metric_category VARCHAR(50) */
#define NUMERIC_LIMIT    1e11 /* NUMERIC(15,4): below 10^11 */
#define PCT_LIMIT        1e4  /* percentage_change NUMERIC(8,4): below 10^4 */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* ---- configuration ------------------------------------------------------------------------ */

typedef struct kpi {
    char name[MAX_KPI_NAME + 1];
    char category[MAX_KPI_CATEGORY + 1]; /* "": the point's tag, else "kpi" */
    bool has_target, has_alert, is_kpi;
    double target, alert, stable; /* stable: percent either way that is still "stable" */
} kpi;

struct mt_events_conf {
    kpi *k;
    size_t n, cap;
};

int mt_events_conf_new(mt_events_conf **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? MT_OK : -ENOMEM;
}

void mt_events_conf_free(mt_events_conf *c)
{
    if (!c) return;
    free(c->k);
    free(c);
}

size_t mt_events_conf_count(const mt_events_conf *c)
{
    return c ? c->n : 0;
}

bool mt_events_kpi_section(const char *section, const char **name)
{
    if (strncmp(section, "kpi", 3) || (section[3] != ' ' && section[3] != '.')) return false;
    const char *p = section + 4;
    while (*p == ' ') p++;
    if (!*p) return false;
    *name = p;
    return true;
}

static const kpi *kpi_find(const mt_events_conf *c, const char *name, size_t len)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (strlen(c->k[i].name) == len && !memcmp(c->k[i].name, name, len)) return &c->k[i];
    return NULL;
}

static bool parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(v, &end);
    return end != v && !*end && !errno && isfinite(*out);
}

int mt_events_conf_set(mt_events_conf *c, const char *name, const char *key, const char *value,
                       char *err, size_t cap)
{
    if (strlen(name) > MAX_KPI_NAME) {
        snprintf(err, cap, "[kpi %.40s...]: a KPI name is at most %d bytes (metric_name)", name,
                 MAX_KPI_NAME);
        return MT_EINVAL;
    }
    kpi *k = (kpi *)kpi_find(c, name, strlen(name));
    if (!k) {
        if (mt_grow(&c->k, &c->cap, c->n + 1, sizeof *c->k, 8)) return -ENOMEM;
        k = &c->k[c->n++];
        *k = (kpi){.is_kpi = true};
        snprintf(k->name, sizeof k->name, "%s", name);
    }
    double d;
    if (!strcmp(key, "target") || !strcmp(key, "alert_threshold") ||
        !strcmp(key, "stable_percent")) {
        if (!parse_double(value, &d) || fabs(d) >= NUMERIC_LIMIT || (key[0] == 's' && d < 0)) {
            snprintf(err, cap, "[kpi %s] %s = %s: a number%s", name, key, value,
                     key[0] == 's' ? " from 0" : " under 10^11 (NUMERIC(15,4))");
            return MT_EINVAL;
        }
        if (key[0] == 't') k->target = d, k->has_target = true;
        if (key[0] == 'a') k->alert = d, k->has_alert = true;
        if (key[0] == 's') k->stable = d;
        return MT_OK;
    }
    if (!strcmp(key, "is_kpi")) {
        if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
            k->is_kpi = true;
        else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
            k->is_kpi = false;
        else {
            snprintf(err, cap, "[kpi %s] is_kpi = %s: true or false", name, value);
            return MT_EINVAL;
        }
        return MT_OK;
    }
    if (!strcmp(key, "category")) {
        if (!*value || strlen(value) > MAX_KPI_CATEGORY) {
            snprintf(err, cap, "[kpi %s] category: 1 to %d bytes (metric_category)", name,
                     MAX_KPI_CATEGORY);
            return MT_EINVAL;
        }
        snprintf(k->category, sizeof k->category, "%s", value);
        return MT_OK;
    }
    snprintf(err, cap,
             "[kpi %s] unknown setting '%s' (target, is_kpi, alert_threshold, category, "
             "stable_percent)",
             name, key);
    return MT_EINVAL;
}

/* ---- text builders: JSON (array literals: mt_pgarr.h) ------------------------------------- */

static void puts_(mt_pgarr *a, const char *s)
{
    mt_pgarr_put(a, s, strlen(s));
}

static void add_cstr(mt_pgarr *a, const char *s)
{
    if (s)
        mt_pgarr_text(a, s, strlen(s));
    else {
        mt_pgarr_sep(a);
        mt_pgarr_put(a, "NULL", 4);
    }
}

static void add_name(mt_pgarr *a, mt_name n)
{
    if (n.ptr)
        mt_pgarr_text(a, n.ptr, n.len);
    else
        add_cstr(a, NULL);
}

static void add_fmt(mt_pgarr *a, const char *fmt, double v)
{
    char b[64];
    int n = snprintf(b, sizeof b, fmt, v);
    mt_pgarr_sep(a);
    mt_pgarr_put(a, b, (size_t)n);
}

/* JSON string (with quotes). */
static void json_str(mt_pgarr *a, const char *s, size_t n)
{
    mt_pgarr_put(a, "\"", 1);
    mt_pgarr_json(a, s, n);
    mt_pgarr_put(a, "\"", 1);
}

/* "key": opening a member of a JSON object being built in a ("{" already there). */
static void json_key(mt_pgarr *a, const char *k, size_t n)
{
    if (a->len > 1) mt_pgarr_put(a, ",", 1);
    json_str(a, k, n);
    mt_pgarr_put(a, ":", 1);
}

static bool name_is(mt_name n, const char *s)
{
    return n.len == strlen(s) && !memcmp(n.ptr, s, n.len);
}

static bool is_ip(const char *s, size_t n)
{
    char b[64];
    unsigned char addr[16];
    if (n >= sizeof b) return false;
    memcpy(b, s, n);
    b[n] = '\0';
    return inet_pton(AF_INET, b, addr) == 1 || inet_pton(AF_INET6, b, addr) == 1;
}

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    default: return (double)v.u;
    }
}

/* ---- security events ------------------------------------------------------------------------ */

typedef struct ev_series {
    char *key;         /* malloc'd */
    size_t klen, plen; /* plen: the key without its field */
    uint32_t group;
} ev_series;

typedef struct ev_rec {
    uint32_t s; /* index into the series (sorted) */
    int64_t ts;
    mt_vtype type;
    mt_val v; /* strings: offset and length into strs */
} ev_rec;

typedef struct evs {
    ev_series *s;
    size_t ns, scap;
    ev_rec *r;
    size_t nr, rcap;
    mt_pgarr strs; /* string values */
    int rc;
} evs;

static int by_prefix(const void *a, const void *b)
{
    const ev_series *x = a, *y = b;
    size_t n = x->plen < y->plen ? x->plen : y->plen;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    if (x->plen != y->plen) return x->plen < y->plen ? -1 : 1;
    return x->klen < y->klen ? -1 : x->klen > y->klen; /* then by field: stable order */
}

static int by_group_ts(const void *a, const void *b, void *ud)
{
    const evs *v = ud;
    const ev_rec *x = a, *y = b;
    uint32_t gx = v->s[x->s].group, gy = v->s[y->s].group;
    if (gx != gy) return gx < gy ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* The series of measurement m, their keys loaded. */
static int load_series(mt_engine *e, const char *m, evs *v)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = mt_engine_postings(e, MT_TERM_MEASUREMENT, (mt_name){m, strlen(m)}, (mt_name){"", 0},
                                &ids, &n);
    if (rc || !n) return rc;
    v->s = calloc(n, sizeof *v->s);
    char *key = malloc(MT_SERIES_MAX_KEY);
    if (!v->s || !key) rc = -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t kl;
        mt_series_parts parts;
        if (mt_engine_series_key(e, ids[i], key, MT_SERIES_MAX_KEY, &kl) ||
            mt_series_parse(key, kl, &parts))
            continue; /* no key: the engine's damage, reported there */
        ev_series *s = &v->s[v->ns];
        if (!(s->key = malloc(kl + sizeof ids[i]))) {
            rc = -ENOMEM;
            break;
        }
        memcpy(s->key, key, kl);
        memcpy(s->key + kl, &ids[i], sizeof ids[i]); /* the id travels after the key */
        s->klen = kl;
        s->plen = kl - 2 - parts.field.len;
        v->ns++;
    }
    free(key);
    free(ids);
    return rc;
}

static uint32_t series_id(const ev_series *s)
{
    uint32_t id;
    memcpy(&id, s->key + s->klen, sizeof id);
    return id;
}

static void evs_free(evs *v)
{
    for (size_t i = 0; i < v->ns; i++) free(v->s[i].key);
    free(v->s);
    free(v->r);
    free(v->strs.p);
}

/* Every point of the series in [from, to) into v->r. */
static int gather(mt_engine *e, evs *v, int64_t from, int64_t to)
{
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < v->ns; i++) {
        mt_scan *sc;
        rc = mt_scan_open(e, series_id(&v->s[i]), from, to, &sc);
        if (rc == MT_ENOTFOUND) {
            rc = MT_OK;
            continue;
        }
        if (rc) break;
        mt_points p;
        int r;
        while (!rc && (r = mt_scan_next(sc, &p)) == MT_OK)
            for (size_t k = 0; !rc && k < p.n; k++) {
                if (v->nr == v->rcap) {
                    size_t cap = v->rcap ? v->rcap * 2 : 256;
                    ev_rec *nr = realloc(v->r, cap * sizeof *nr);
                    if (!nr) {
                        rc = -ENOMEM;
                        break;
                    }
                    v->r = nr;
                    v->rcap = cap;
                }
                ev_rec *x = &v->r[v->nr++];
                *x = (ev_rec){(uint32_t)i, p.ts[k], p.type, p.vals[k]};
                if (p.type == MT_VT_STRING) {
                    size_t off = v->strs.len, len = MT_VAL_STR_LEN(p.vals[k]);
                    mt_pgarr_put(&v->strs, p.strs + MT_VAL_STR_OFF(p.vals[k]), len);
                    if ((rc = v->strs.rc)) break;
                    x->v.u = MT_VAL_STR(off, len);
                }
            }
        if (!rc && r != MT_ENOTFOUND) rc = r; /* MT_ECORRUPT: never served */
        mt_scan_close(sc);
    }
    return rc;
}

enum {
    E_KEY,
    E_BID,
    E_TYPE,
    E_CAT,
    E_SEV,
    E_SRC,
    E_USER,
    E_SESS,
    E_IP,
    E_UA,
    E_DESC,
    E_DATA,
    E_RISK,
    E_DET,
    E_BLOCK,
    E_RESP,
    E_NOTIF,
    E_US,
    NE
};

static const char upsert_events[] =
    "INSERT INTO monitoring.security_events AS s (id, business_id, event_type, event_category,"
    " severity, event_source, user_id, session_id, ip_address, user_agent, event_description,"
    " event_data, risk_score, detection_method, is_blocked, response_action,"
    " requires_notification, occurred_at, updated_at)"
    " SELECT md5(k)::uuid, b, left(t, 50), left(c, 30), left(sv, 20), left(sr, 50), usr, se, ip,"
    " ua, de, d::jsonb, r, left(dm, 50), coalesce(bl, false), left(ra, 50), coalesce(rn, false),"
    " timestamptz 'epoch' + us * interval '1 microsecond', now()"
    " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::uuid[], $8::uuid[], $9::inet[], $10::text[], $11::text[], $12::text[], $13::int[],"
    " $14::text[], $15::bool[], $16::text[], $17::bool[], $18::bigint[])"
    " AS u(k, b, t, c, sv, sr, usr, se, ip, ua, de, d, r, dm, bl, ra, rn, us)"
    /* a person's investigation_status and notification_sent stay theirs */
    " ON CONFLICT (id, occurred_at) DO UPDATE SET business_id = EXCLUDED.business_id,"
    " event_type = EXCLUDED.event_type, event_category = EXCLUDED.event_category,"
    " severity = EXCLUDED.severity, event_source = EXCLUDED.event_source,"
    " user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id,"
    " ip_address = EXCLUDED.ip_address, user_agent = EXCLUDED.user_agent,"
    " event_description = EXCLUDED.event_description, event_data = EXCLUDED.event_data,"
    " risk_score = EXCLUDED.risk_score, detection_method = EXCLUDED.detection_method,"
    " is_blocked = EXCLUDED.is_blocked, response_action = EXCLUDED.response_action,"
    " requires_notification = EXCLUDED.requires_notification, updated_at = now()";

static mt_log_limit skip_log;

static void skipped(mt_events_counts *out, const char *what, const char *series)
{
    out->skipped++;
    mt_log_limited(&skip_log, 5, MT_LOG_WARN, "msg=\"%s: no row\" series=\"%.300s\"", what, series);
}

/* The value of a field as JSON into j. */
static void json_value(mt_pgarr *j, const evs *v, const ev_rec *x)
{
    char b[40];
    switch (x->type) {
    case MT_VT_STRING: json_str(j, v->strs.p + MT_VAL_STR_OFF(x->v), MT_VAL_STR_LEN(x->v)); break;
    case MT_VT_BOOL: puts_(j, x->v.u ? "true" : "false"); break;
    case MT_VT_INT:
        mt_pgarr_put(j, b, (size_t)snprintf(b, sizeof b, "%lld", (long long)x->v.i));
        break;
    case MT_VT_UINT:
        mt_pgarr_put(j, b, (size_t)snprintf(b, sizeof b, "%llu", (unsigned long long)x->v.u));
        break;
    default: mt_pgarr_put(j, b, (size_t)snprintf(b, sizeof b, "%.17g", x->v.f)); break;
    }
}

/*
 * One event: the records [lo, hi) (one group, one timestamp) into the
 * columns (*made), or skipped and counted. The tags come from the group's
 * first series (they all carry the same). MT_OK or -ENOMEM.
 */
static int event_row(const evs *v, size_t lo, size_t hi, mt_pgarr *col, char *text, size_t cap,
                     mt_events_counts *out, bool *made)
{
    *made = false;
    const ev_series *g = &v->s[v->r[lo].s];
    mt_series_parts parts;
    if (mt_series_parse(g->key, g->klen, &parts)) return MT_OK;
    /* the event's name: the series as line protocol with the field "event" */
    char *key = malloc(MT_SERIES_MAX_KEY);
    if (!key) return -ENOMEM;
    size_t kl = mt_series_key(key, MT_SERIES_MAX_KEY, parts.measurement, parts.tag_keys,
                              parts.tag_values, parts.ntags, (mt_name){"event", 5});
    int tl = kl ? mt_series_format(key, kl, text, cap) : -1;
    free(key);
    if (tl < 0 || (size_t)tl >= cap) {
        skipped(out, "security_event: the series is too long to name", "");
        return MT_OK;
    }
    mt_name bid = {0}, type = {0}, cat = {0}, sev = {0}, src = {0}, host = {0}, user = {0},
            sess = {0}, ip = {0}, det = {0}, resp = {0};
    mt_pgarr data = {0};
    mt_pgarr_put(&data, "{", 1);
    for (size_t k = 0; k < parts.ntags; k++) {
        mt_name tk = parts.tag_keys[k], tv = parts.tag_values[k];
        mt_name *slot = name_is(tk, MT_TENANT_TAG)        ? &bid
                        : name_is(tk, "event_type")       ? &type
                        : name_is(tk, "event_category")   ? &cat
                        : name_is(tk, "severity")         ? &sev
                        : name_is(tk, "source")           ? &src
                        : name_is(tk, "source_ip")        ? &ip
                        : name_is(tk, "user")             ? &user
                        : name_is(tk, "session")          ? &sess
                        : name_is(tk, "detection_method") ? &det
                        : name_is(tk, "response_action")  ? &resp
                                                          : NULL;
        if (name_is(tk, "host")) host = tv;
        bool fits = slot && (slot == &user || slot == &sess ? mt_tenant_uuid_valid_n(tv.ptr, tv.len)
                             : slot == &ip                  ? is_ip(tv.ptr, tv.len)
                                                            : true);
        if (fits) {
            *slot = tv;
        } else { /* another tag, or a value its column cannot take: kept in event_data */
            json_key(&data, tk.ptr, tk.len);
            json_str(&data, tv.ptr, tv.len);
        }
    }
    if (!bid.ptr || !mt_tenant_uuid_valid_n(bid.ptr, bid.len) || !type.ptr) {
        free(data.p);
        skipped(out,
                !bid.ptr    ? "security_event without a tenant (business_id: security_events "
                              "requires one; write with a tenant's token)"
                : !type.ptr ? "security_event without an event_type tag"
                            : "security_event whose business_id is not a UUID",
                text);
        return MT_OK;
    }
    const ev_rec *desc = NULL, *ua = NULL, *risk = NULL, *blocked = NULL, *notif = NULL;
    for (size_t i = lo; i < hi; i++) {
        const ev_rec *x = &v->r[i];
        const ev_series *s = &v->s[x->s];
        /* the field: after the prefix, u16 length then bytes */
        mt_name f = {s->key + s->plen + 2, s->klen - s->plen - 2};
        bool num = x->type != MT_VT_STRING && x->type != MT_VT_BOOL;
        double d = num ? as_double(x->type, x->v) : 0;
        if (name_is(f, "description") && x->type == MT_VT_STRING)
            desc = x;
        else if (name_is(f, "user_agent") && x->type == MT_VT_STRING)
            ua = x;
        else if (name_is(f, "risk_score") && num && d >= 0 && d <= 100 && d == floor(d))
            risk = x;
        else if (name_is(f, "blocked") && (x->type == MT_VT_BOOL || (num && (d == 0 || d == 1))))
            blocked = x;
        else if (name_is(f, "requires_notification") &&
                 (x->type == MT_VT_BOOL || (num && (d == 0 || d == 1))))
            notif = x;
        else {
            json_key(&data, f.ptr, f.len);
            json_value(&data, v, x);
        }
    }
    mt_pgarr_put(&data, "}", 1);
    if (data.rc) return data.rc;
    mt_pgarr_text(&col[E_KEY], text, (size_t)tl);
    char ts[24];
    int n = snprintf(ts, sizeof ts, " %lld", (long long)v->r[lo].ts);
    col[E_KEY].len--; /* the element's closing quote: the timestamp goes inside it */
    mt_pgarr_put(&col[E_KEY], ts, (size_t)n);
    mt_pgarr_put(&col[E_KEY], "\"", 1);
    add_name(&col[E_BID], bid);
    add_name(&col[E_TYPE], type);
    add_name(&col[E_CAT], cat.ptr ? cat : (mt_name){"other", 5});
    add_name(&col[E_SEV], sev.ptr ? sev : (mt_name){"medium", 6});
    add_name(&col[E_SRC], src.ptr ? src : host.ptr ? host : (mt_name){"unknown", 7});
    add_name(&col[E_USER], user);
    add_name(&col[E_SESS], sess);
    add_name(&col[E_IP], ip);
    if (ua)
        mt_pgarr_text(&col[E_UA], v->strs.p + MT_VAL_STR_OFF(ua->v), MT_VAL_STR_LEN(ua->v));
    else
        add_cstr(&col[E_UA], NULL);
    if (desc)
        mt_pgarr_text(&col[E_DESC], v->strs.p + MT_VAL_STR_OFF(desc->v), MT_VAL_STR_LEN(desc->v));
    else
        add_name(&col[E_DESC], type);
    mt_pgarr_text(&col[E_DATA], data.p, data.len);
    free(data.p);
    if (risk)
        mt_pgarr_i64(&col[E_RISK], (int64_t)as_double(risk->type, risk->v));
    else
        add_cstr(&col[E_RISK], NULL);
    add_name(&col[E_DET], det);
    if (blocked)
        add_cstr(&col[E_BLOCK],
                 (blocked->type == MT_VT_BOOL ? blocked->v.u != 0
                                              : as_double(blocked->type, blocked->v) != 0)
                     ? "true"
                     : "false");
    else
        add_cstr(&col[E_BLOCK], NULL);
    add_name(&col[E_RESP], resp);
    if (notif)
        add_cstr(&col[E_NOTIF], (notif->type == MT_VT_BOOL ? notif->v.u != 0
                                                           : as_double(notif->type, notif->v) != 0)
                                    ? "true"
                                    : "false");
    else
        add_cstr(&col[E_NOTIF], NULL);
    mt_pgarr_i64(&col[E_US], floor_div(v->r[lo].ts, 1000));
    *made = true;
    return MT_OK;
}

/* The month of ts (ns), as year * 12 + month - 1, UTC. */
static int64_t month_of(int64_t ts);

static int send_events(mt_pg *pg, mt_engine *e, int64_t from, int64_t to, mt_events_counts *out)
{
    evs v = {0};
    mt_pgarr col[NE] = {{0}};
    char *text = malloc(MT_SERIES_MAX_KEY * 2);
    int rc = text ? load_series(e, MT_EVENTS_MEASUREMENT, &v) : -ENOMEM;
    if (!rc && v.ns) {
        qsort(v.s, v.ns, sizeof *v.s, by_prefix);
        for (size_t i = 0; i < v.ns; i++)
            v.s[i].group = i && v.s[i].plen == v.s[i - 1].plen &&
                                   !memcmp(v.s[i].key, v.s[i - 1].key, v.s[i].plen)
                               ? v.s[i - 1].group
                               : (uint32_t)i;
        rc = gather(e, &v, from, to);
    }
    size_t rows = 0;
    int64_t oldest = INT64_MAX;
    if (!rc && v.nr) {
        qsort_r(v.r, v.nr, sizeof *v.r, by_group_ts, &v);
        for (size_t i = 0; !rc && i < v.nr;) {
            size_t j = i;
            while (j < v.nr && v.s[v.r[j].s].group == v.s[v.r[i].s].group && v.r[j].ts == v.r[i].ts)
                j++;
            bool made;
            rc = event_row(&v, i, j, col, text, MT_SERIES_MAX_KEY * 2, out, &made);
            if (made) {
                rows++;
                if (v.r[i].ts < oldest) oldest = v.r[i].ts;
            }
            i = j;
        }
    }
    const char *params[NE];
    for (int c = 0; !rc && c < NE; c++)
        if (!(params[c] = mt_pgarr_finish(&col[c]))) rc = -ENOMEM;
    /* create_partitions keeps a month back ready; an older event needs its month made */
    int64_t back = rows ? month_of(mt_now_ns()) - month_of(oldest) : 0;
    if (!rc && back > 1) {
        char b[24];
        snprintf(b, sizeof b, "%lld", (long long)back);
        const char *p[] = {b};
        rc = mt_pg_exec(pg, "SELECT monitoring.create_partitions($1::int, 3)", 1, p);
    }
    if (!rc && rows) rc = mt_pg_exec(pg, upsert_events, NE, params);
    if (!rc) out->events += rows;
    for (int c = 0; c < NE; c++) free(col[c].p);
    free(text);
    evs_free(&v);
    return rc;
}

/* ---- KPIs --------------------------------------------------------------------------------- */

enum { P_HOUR, P_DAY, P_WEEK, P_MONTH };
static const char *const period_names[] = {"hourly", "daily", "weekly", "monthly"};

/* Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400), yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t month_of(int64_t ts)
{
    int64_t z = floor_div(floor_div(ts, 1000000000LL), 86400) + 719468;
    int64_t era = floor_div(z, 146097), doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
    return y * 12 + m - 1;
}

/* The period of ts (ns) as an index of its kind. */
static int64_t period_of(int kind, int64_t ts)
{
    int64_t s = floor_div(ts, 1000000000LL);
    switch (kind) {
    case P_HOUR: return floor_div(s, 3600);
    case P_DAY: return floor_div(s, 86400);
    case P_WEEK: return floor_div(floor_div(s, 86400) + 3, 7); /* 1970-01-01 was a Thursday */
    default: return month_of(ts);
    }
}

/* The start (s) of period idx. */
static int64_t period_start(int kind, int64_t idx)
{
    switch (kind) {
    case P_HOUR: return idx * 3600;
    case P_DAY: return idx * 86400;
    case P_WEEK: return (idx * 7 - 3) * 86400;
    default:
        return days_from_civil(floor_div(idx, 12), idx - floor_div(idx, 12) * 12 + 1, 1) * 86400;
    }
}

static int period_kind(mt_name p)
{
    static const char *const names[][2] = {
        {"hour", "hourly"}, {"day", "daily"}, {"week", "weekly"}, {"month", "monthly"}};
    if (!p.ptr) return P_DAY;
    for (int k = 0; k < 4; k++)
        if (name_is(p, names[k][0]) || name_is(p, names[k][1])) return k;
    return -1;
}

/* The last value of series id in [from, to) (s) into *v; *found says whether there is one. */
static int last_in(mt_engine *e, uint32_t id, int64_t from, int64_t to, double *v, bool *found)
{
    *found = false;
    mt_scan *sc;
    int rc = mt_scan_open(e, id, from * 1000000000LL, to * 1000000000LL, &sc);
    if (rc == MT_ENOTFOUND) return MT_OK;
    if (rc) return rc;
    mt_points p;
    mt_chunk_info sum;
    int r;
    while ((r = mt_scan_next_or_summary(sc, &p, &sum)) == MT_OK) {
        if (p.type == MT_VT_STRING) break;
        if (sum.count) {
            *v = sum.last;
            *found = true;
        } else if (p.n) {
            *v = as_double(p.type, p.vals[p.n - 1]);
            *found = true;
        }
    }
    mt_scan_close(sc);
    return r == MT_OK || r == MT_ENOTFOUND ? MT_OK : r;
}

enum {
    K_KEY,
    K_BID,
    K_NAME,
    K_CAT,
    K_IND,
    K_CUR,
    K_PREV,
    K_TGT,
    K_PER,
    K_START,
    K_END,
    K_TREND,
    K_PCT,
    K_ISKPI,
    K_ALERT,
    K_SRC,
    K_DIMS,
    NK
};

static const char upsert_kpis[] =
    "INSERT INTO monitoring.business_metrics AS m (id, business_id, metric_name, metric_category,"
    " industry_vertical, current_value, previous_value, target_value, time_period, period_start,"
    " period_end, trend_direction, percentage_change, is_kpi, alert_threshold,"
    " calculation_method, data_sources, dimensions, updated_at)"
    " SELECT md5(k)::uuid, b, left(n, 100), left(c, 50), left(i, 20), cur, prev, tg, p,"
    " to_timestamp(ps), to_timestamp(pe), tr, pc, ik, al,"
    " 'metron: the last value of the period (business_kpi)', jsonb_build_array(src), d::jsonb,"
    " now()"
    " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::numeric[],"
    " $7::numeric[], $8::numeric[], $9::text[], $10::bigint[], $11::bigint[], $12::text[],"
    " $13::numeric[], $14::bool[], $15::numeric[], $16::text[], $17::text[])"
    " AS u(k, b, n, c, i, cur, prev, tg, p, ps, pe, tr, pc, ik, al, src, d)"
    " ON CONFLICT (id) DO UPDATE SET business_id = EXCLUDED.business_id,"
    " metric_name = EXCLUDED.metric_name, metric_category = EXCLUDED.metric_category,"
    " industry_vertical = EXCLUDED.industry_vertical, current_value = EXCLUDED.current_value,"
    " previous_value = EXCLUDED.previous_value, target_value = EXCLUDED.target_value,"
    " time_period = EXCLUDED.time_period, period_start = EXCLUDED.period_start,"
    " period_end = EXCLUDED.period_end, trend_direction = EXCLUDED.trend_direction,"
    " percentage_change = EXCLUDED.percentage_change, is_kpi = EXCLUDED.is_kpi,"
    " alert_threshold = EXCLUDED.alert_threshold, data_sources = EXCLUDED.data_sources,"
    " dimensions = EXCLUDED.dimensions, updated_at = now()";

typedef struct kpi_series {
    uint32_t id, target; /* target: the `target` series of the same tags, 0: none */
    mt_name bid, name, cat, ind, per;
    int kind;
    const kpi *conf;
    char *text;    /* the series as line protocol */
    mt_pgarr dims; /* JSON of the other tags */
} kpi_series;

/* The row of period idx of series k, when it has a value there. */
static int kpi_row(mt_engine *e, const kpi_series *k, int64_t idx, mt_pgarr *col,
                   mt_events_counts *out, bool *made)
{
    *made = false;
    int64_t ps = period_start(k->kind, idx), pe = period_start(k->kind, idx + 1),
            pp = period_start(k->kind, idx - 1);
    double cur, prev = 0, tgt = 0;
    bool has_cur = false, has_prev = false, has_tgt = false;
    int rc = last_in(e, k->id, ps, pe, &cur, &has_cur);
    if (!rc && has_cur) rc = last_in(e, k->id, pp, ps, &prev, &has_prev);
    if (!rc && has_cur && k->target) rc = last_in(e, k->target, ps, pe, &tgt, &has_tgt);
    if (rc || !has_cur) return rc;
    if (!(fabs(cur) < NUMERIC_LIMIT)) {
        skipped(out, "business_kpi value outside NUMERIC(15,4)", k->text);
        return MT_OK;
    }
    if (has_prev && !(fabs(prev) < NUMERIC_LIMIT)) has_prev = false;
    if (!has_tgt && k->conf && k->conf->has_target) tgt = k->conf->target, has_tgt = true;
    if (has_tgt && !(fabs(tgt) < NUMERIC_LIMIT)) has_tgt = false;
    /* compared as stored: rounded to the columns' 4 decimals */
    double rc4 = round(cur * 1e4) / 1e4, rp4 = round(prev * 1e4) / 1e4;
    double pct = NAN;
    if (has_prev && rp4 != 0) pct = (rc4 - rp4) / fabs(rp4) * 100;
    double band = k->conf ? k->conf->stable : 0;
    const char *trend = NULL;
    if (has_prev) {
        if (rp4 != 0 && !isnan(pct))
            trend = pct > band ? "up" : pct < -band ? "down" : "stable";
        else
            trend = rc4 > rp4 ? "up" : rc4 < rp4 ? "down" : "stable";
    }
    char key[64];
    snprintf(key, sizeof key, " %s %lld", period_names[k->kind], (long long)ps);
    add_cstr(&col[K_KEY], k->text);
    col[K_KEY].len--; /* the period goes inside the element */
    puts_(&col[K_KEY], key);
    mt_pgarr_put(&col[K_KEY], "\"", 1);
    add_name(&col[K_BID], k->bid);
    add_name(&col[K_NAME], k->name);
    if (k->conf && k->conf->category[0])
        add_cstr(&col[K_CAT], k->conf->category);
    else
        add_name(&col[K_CAT], k->cat.ptr ? k->cat : (mt_name){"kpi", 3});
    add_name(&col[K_IND], k->ind.ptr ? k->ind : (mt_name){"general", 7});
    add_fmt(&col[K_CUR], "%.17g", cur);
    if (has_prev)
        add_fmt(&col[K_PREV], "%.17g", prev);
    else
        add_cstr(&col[K_PREV], NULL);
    if (has_tgt)
        add_fmt(&col[K_TGT], "%.17g", tgt);
    else
        add_cstr(&col[K_TGT], NULL);
    add_cstr(&col[K_PER], period_names[k->kind]);
    mt_pgarr_i64(&col[K_START], ps);
    mt_pgarr_i64(&col[K_END], pe);
    add_cstr(&col[K_TREND], trend);
    if (!isnan(pct) && fabs(pct) < PCT_LIMIT)
        add_fmt(&col[K_PCT], "%.4f", pct);
    else
        add_cstr(&col[K_PCT], NULL);
    add_cstr(&col[K_ISKPI], !k->conf || k->conf->is_kpi ? "true" : "false");
    if (k->conf && k->conf->has_alert)
        add_fmt(&col[K_ALERT], "%.17g", k->conf->alert);
    else
        add_cstr(&col[K_ALERT], NULL);
    add_cstr(&col[K_SRC], k->text);
    mt_pgarr_text(&col[K_DIMS], k->dims.p, k->dims.len);
    *made = true;
    return MT_OK;
}

/* Load the KPI series s into k: *ok false when it is no `value` series or makes no rows. */
static int kpi_load(mt_engine *e, const mt_events_conf *conf, const ev_series *s, kpi_series *k,
                    mt_series_parts *parts, mt_events_counts *out, bool *ok)
{
    *ok = false;
    if (mt_series_parse(s->key, s->klen, parts) || !name_is(parts->field, "value")) return MT_OK;
    int tl = mt_series_format(s->key, s->klen, NULL, 0);
    if (tl < 0 || !(k->text = malloc((size_t)tl + 1))) return tl < 0 ? MT_OK : -ENOMEM;
    mt_series_format(s->key, s->klen, k->text, (size_t)tl + 1);
    k->id = series_id(s);
    mt_pgarr_put(&k->dims, "{", 1);
    for (size_t t = 0; t < parts->ntags; t++) {
        mt_name tk = parts->tag_keys[t], tv = parts->tag_values[t];
        if (name_is(tk, MT_TENANT_TAG))
            k->bid = tv;
        else if (name_is(tk, "metric_name"))
            k->name = tv;
        else if (name_is(tk, "category"))
            k->cat = tv;
        else if (name_is(tk, "industry"))
            k->ind = tv;
        else if (name_is(tk, "period"))
            k->per = tv;
        else {
            json_key(&k->dims, tk.ptr, tk.len);
            json_str(&k->dims, tv.ptr, tv.len);
        }
    }
    mt_pgarr_put(&k->dims, "}", 1);
    if (k->dims.rc) return k->dims.rc;
    k->kind = period_kind(k->per);
    if (!k->bid.ptr || !mt_tenant_uuid_valid_n(k->bid.ptr, k->bid.len) || !k->name.ptr ||
        k->kind < 0) {
        skipped(out,
                !k->bid.ptr    ? "business_kpi without a tenant (business_id: business_metrics "
                                 "requires one; write with a tenant's token)"
                : !k->name.ptr ? "business_kpi without a metric_name tag"
                : k->kind < 0  ? "business_kpi with an unknown period (hour, day, week, month)"
                               : "business_kpi whose business_id is not a UUID",
                k->text);
        return MT_OK;
    }
    k->conf = kpi_find(conf, k->name.ptr, k->name.len);
    /* the target series: the same key with the field "target" */
    char *tkey = malloc(s->plen + 8);
    if (!tkey) return -ENOMEM;
    memcpy(tkey, s->key, s->plen);
    memcpy(tkey + s->plen, "\0\6target", 8);
    mt_vtype type;
    if (mt_engine_series_lookup(e, tkey, s->plen + 8, &k->target, &type) || type == MT_VT_STRING)
        k->target = 0;
    free(tkey);
    *ok = true;
    return MT_OK;
}

static int send_kpis(mt_pg *pg, mt_engine *e, const mt_events_conf *conf, int64_t from, int64_t to,
                     mt_events_counts *out)
{
    evs v = {0};
    mt_pgarr col[NK] = {{0}};
    mt_series_parts *parts = malloc(sizeof *parts);
    int rc = parts ? load_series(e, MT_KPI_MEASUREMENT, &v) : -ENOMEM;
    size_t rows = 0;
    for (size_t i = 0; !rc && i < v.ns; i++) {
        kpi_series k = {0};
        bool ok;
        rc = kpi_load(e, conf, &v.s[i], &k, parts, out, &ok);
        /* the periods the span's points fall in (a chunk spans one hour: a period or two) */
        int64_t per[8];
        size_t np = 0;
        mt_scan *sc = NULL;
        if (!rc && ok) {
            rc = mt_scan_open(e, k.id, from, to, &sc);
            if (rc == MT_ENOTFOUND) rc = MT_OK;
        }
        mt_points p;
        int r = MT_ENOTFOUND;
        while (!rc && sc && (r = mt_scan_next(sc, &p)) == MT_OK)
            for (size_t j = 0; j < p.n; j++) {
                int64_t x = period_of(k.kind, p.ts[j]);
                bool seen = false;
                for (size_t q = 0; q < np; q++) seen |= per[q] == x;
                if (!seen && np < 8) per[np++] = x;
            }
        if (!rc && r != MT_ENOTFOUND && r != MT_OK) rc = r;
        mt_scan_close(sc);
        /* each period, and the next: its previous value may have changed */
        for (size_t q = 0, nq = np; !rc && q < nq; q++) {
            bool next_seen = false;
            for (size_t t = 0; t < np; t++) next_seen |= per[t] == per[q] + 1;
            if (!next_seen && np < 8) per[np++] = per[q] + 1;
        }
        for (size_t q = 0; !rc && q < np; q++) {
            bool made;
            rc = kpi_row(e, &k, per[q], col, out, &made);
            rows += made;
        }
        free(k.text);
        free(k.dims.p);
    }
    const char *params[NK];
    for (int c = 0; !rc && c < NK; c++)
        if (!(params[c] = mt_pgarr_finish(&col[c]))) rc = -ENOMEM;
    if (!rc && rows) rc = mt_pg_exec(pg, upsert_kpis, NK, params);
    if (!rc) out->kpis += rows;
    for (int c = 0; c < NK; c++) free(col[c].p);
    free(parts);
    evs_free(&v);
    return rc;
}

int mt_events_send(mt_pg *pg, mt_engine *e, const mt_events_conf *conf, int64_t from, int64_t to,
                   mt_events_counts *out)
{
    int rc = send_events(pg, e, from, to, out);
    if (!rc) rc = send_kpis(pg, e, conf, from, to, out);
    return rc;
}
