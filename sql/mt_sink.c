/*
 * mt_sink.c — the SQL sink (mt_sink.h): outbox entries to upserts, one
 * thread, one connection.
 */
#include "mt_sink.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_alert.h"
#include "mt_log.h"
#include "mt_pg.h"
#include "mt_schema.h"
#include "mt_series.h"
#include "mt_time.h"

#define MAX_CATEGORY 50  /* monitoring.*.metric_category VARCHAR(50) */
#define MAX_NAME     100 /* metric_name VARCHAR(100) */
#define MAINTAIN_NS  (24 * MT_HOUR_NS)

struct mt_sink {
    mt_engine *e;
    mt_sink_options opt;
    char *conninfo;
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop and st */
    pthread_cond_t wake;
    bool stop;
    mt_sink_stats st;
    mt_pg *pg;
    int64_t maintained_ns; /* when partitions were last made */
    int state;             /* last logged: 0 none, 1 connected, 2 cannot connect, 3 refused */
    bool near_full;        /* the outbox passed 90% of its budget (logged) */
};

mt_sink_options mt_sink_options_default(void)
{
    return (mt_sink_options){.batch_hours = 24,
                             .idle_ns = 200 * 1000000LL,
                             .retry_max_ns = 30 * 1000000000LL,
                             .outbox_budget = 100000};
}

/* ---- PostgreSQL array literals: every value a parameter ----------------------------- */

typedef struct arr {
    char *p;
    size_t len, cap;
    int rc;
} arr;

static void put(arr *a, const char *s, size_t n)
{
    if (a->rc) return;
    if (a->len + n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        while (cap < a->len + n + 2) cap *= 2;
        char *p = realloc(a->p, cap);
        if (!p) {
            a->rc = -ENOMEM;
            return;
        }
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, s, n);
    a->len += n;
}

static void sep(arr *a)
{
    put(a, a->len ? "," : "{", 1);
}

/* A quoted element: backslash before " and \ (array literal syntax). */
static void add_text(arr *a, const char *s, size_t n)
{
    sep(a);
    put(a, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') put(a, "\\", 1);
        put(a, s + i, 1);
    }
    put(a, "\"", 1);
}

static void add_null(arr *a)
{
    sep(a);
    put(a, "NULL", 4);
}

static void add_double(arr *a, double v)
{
    char b[40];
    int n = isnan(v)   ? snprintf(b, sizeof b, "NaN")
            : isinf(v) ? snprintf(b, sizeof b, v > 0 ? "Infinity" : "-Infinity")
                       : snprintf(b, sizeof b, "%.17g", v);
    sep(a);
    put(a, b, (size_t)n);
}

static void add_u64(arr *a, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    sep(a);
    put(a, b, (size_t)n);
}

/* The literal, closed ("{}" when empty); NULL when out of memory. */
static const char *finish(arr *a)
{
    if (!a->len) put(a, "{", 1);
    put(a, "}", 1);
    if (a->rc) return NULL;
    a->p[a->len] = '\0';
    return a->p;
}

static void reset(arr *a)
{
    a->len = 0;
    a->rc = 0;
}

/* Canonical text form only: 8-4-4-4-12 hex digits. */
static bool is_uuid(const char *s, size_t n)
{
    if (n != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* ---- one hour to rows ------------------------------------------------------------------ */

enum {
    C_BID,
    C_CAT,
    C_NAME,
    C_COUNT,
    C_AVG,
    C_MIN,
    C_MAX,
    C_P50,
    C_P95,
    C_P99,
    C_SERIES,
    C_DIMS,
    NCOLS
};

typedef struct rows {
    mt_sink *s;
    arr col[NCOLS];
    size_t n, skipped;
} rows;

static void add_values(rows *r, const mt_rollup *ro)
{
    add_u64(&r->col[C_COUNT], ro->count);
    add_double(&r->col[C_AVG], ro->sum / (double)ro->count);
    add_double(&r->col[C_MIN], ro->min);
    add_double(&r->col[C_MAX], ro->max);
    add_double(&r->col[C_P50], ro->p50);
    add_double(&r->col[C_P95], ro->p95);
    add_double(&r->col[C_P99], ro->p99);
    r->n++;
}

/* The tenant, category and name columns; false when PostgreSQL could not take them. */
static bool add_keys(rows *r, mt_name bid, mt_name cat, mt_name name)
{
    if ((bid.len && !is_uuid(bid.ptr, bid.len)) || cat.len > MAX_CATEGORY || name.len > MAX_NAME) {
        r->skipped++;
        return false;
    }
    if (bid.len)
        add_text(&r->col[C_BID], bid.ptr, bid.len);
    else
        add_null(&r->col[C_BID]); /* the system-wide tenant */
    add_text(&r->col[C_CAT], cat.ptr, cat.len);
    add_text(&r->col[C_NAME], name.ptr, name.len);
    return true;
}

static int on_group(void *ud, const mt_rollup *ro)
{
    rows *r = ud;
    if (add_keys(r, ro->business_id, ro->measurement, ro->field)) add_values(r, ro);
    return MT_OK;
}

/* JSON string body (no quotes) with the escapes JSON needs. */
static void json_text(arr *a, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char b[8];
        if (c == '"' || c == '\\')
            put(a, "\\", 1), put(a, s + i, 1);
        else if (c < 0x20)
            put(a, b, (size_t)snprintf(b, sizeof b, "\\u%04x", c));
        else
            put(a, s + i, 1);
    }
}

static int on_series(void *ud, const mt_rollup *ro)
{
    rows *r = ud;
    char key[MT_SERIES_MAX_KEY], text[4096];
    size_t kl;
    mt_series_parts parts;
    if (mt_engine_series_key(r->s->e, ro->id, key, sizeof key, &kl) ||
        mt_series_parse(key, kl, &parts)) {
        r->skipped++;
        return MT_OK;
    }
    int tl = mt_series_format(key, kl, text, sizeof text);
    if (tl < 0 || (size_t)tl >= sizeof text) {
        r->skipped++;
        return MT_OK;
    }
    mt_name bid = {"", 0};
    arr dims = {0};
    put(&dims, "{", 1);
    for (size_t k = 0; k < parts.ntags; k++) {
        if (parts.tag_keys[k].len == 11 && !memcmp(parts.tag_keys[k].ptr, "business_id", 11)) {
            bid = parts.tag_values[k];
            continue;
        }
        put(&dims, dims.len > 1 ? ",\"" : "\"", dims.len > 1 ? 2 : 1);
        json_text(&dims, parts.tag_keys[k].ptr, parts.tag_keys[k].len);
        put(&dims, "\":\"", 3);
        json_text(&dims, parts.tag_values[k].ptr, parts.tag_values[k].len);
        put(&dims, "\"", 1);
    }
    put(&dims, "}", 1);
    if (!dims.rc && add_keys(r, bid, parts.measurement, parts.field)) {
        add_text(&r->col[C_SERIES], text, (size_t)tl);
        add_text(&r->col[C_DIMS], dims.p, dims.len);
        add_values(r, ro);
    }
    int rc = dims.rc;
    free(dims.p);
    return rc;
}

static const char upsert_groups[] =
    "INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, metric_category,"
    " metric_name, sample_count, avg_value, min_value, max_value, median_value, p95_value,"
    " p99_value, updated_at)"
    " SELECT to_timestamp($1::bigint * 3600), b, c, n, cnt, av, mn, mx, p50, p95, p99, now()"
    " FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::float8[], $7::float8[],"
    " $8::float8[], $9::float8[], $10::float8[], $11::float8[])"
    " AS u(b, c, n, cnt, av, mn, mx, p50, p95, p99)"
    " ON CONFLICT ON CONSTRAINT hourly_metrics_summary_key DO UPDATE SET"
    " sample_count = EXCLUDED.sample_count, avg_value = EXCLUDED.avg_value,"
    " min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,"
    " median_value = EXCLUDED.median_value, p95_value = EXCLUDED.p95_value,"
    " p99_value = EXCLUDED.p99_value, updated_at = now()";

static const char upsert_series[] =
    "INSERT INTO monitoring.series_hourly_summary (hour_bucket, series, business_id,"
    " metric_category, metric_name, dimensions, sample_count, avg_value, min_value, max_value,"
    " median_value, p95_value, p99_value, updated_at)"
    " SELECT to_timestamp($1::bigint * 3600), s, b, c, n, d::jsonb, cnt, av, mn, mx, p50, p95,"
    " p99, now()"
    " FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::float8[], $7::float8[],"
    " $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::text[], $13::text[])"
    " AS u(b, c, n, cnt, av, mn, mx, p50, p95, p99, s, d)"
    " ON CONFLICT ON CONSTRAINT series_hourly_summary_key DO UPDATE SET"
    " business_id = EXCLUDED.business_id, metric_category = EXCLUDED.metric_category,"
    " metric_name = EXCLUDED.metric_name, dimensions = EXCLUDED.dimensions,"
    " sample_count = EXCLUDED.sample_count, avg_value = EXCLUDED.avg_value,"
    " min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,"
    " median_value = EXCLUDED.median_value, p95_value = EXCLUDED.p95_value,"
    " p99_value = EXCLUDED.p99_value, updated_at = now()";

/* Upsert one hour's rows (inside the caller's transaction); *n gets the rows sent. */
static int deliver_hour(mt_sink *s, int64_t hour, uint64_t *n, uint64_t *skipped)
{
    rows r = {.s = s};
    int rc = MT_OK;
    for (int kind = 0; kind < 2 && !rc; kind++) {
        bool groups = kind == 0;
        for (int c = 0; c < NCOLS; c++) reset(&r.col[c]);
        r.n = 0;
        rc = mt_engine_rollups(s->e, hour, hour + 1, groups, groups ? on_group : on_series, &r);
        if (rc || !r.n) continue;
        char h[24];
        snprintf(h, sizeof h, "%lld", (long long)hour);
        const char *params[13] = {h};
        for (int c = 0; c < (groups ? C_SERIES : NCOLS); c++)
            if (!(params[1 + c] = finish(&r.col[c]))) rc = -ENOMEM;
        if (!rc)
            rc =
                mt_pg_exec(s->pg, groups ? upsert_groups : upsert_series, groups ? 11 : 13, params);
        if (!rc) *n += r.n;
    }
    *skipped += r.skipped;
    for (int c = 0; c < NCOLS; c++) free(r.col[c].p);
    return rc;
}

/* ---- alerts --------------------------------------------------------------------------------- */

/*
 * The rule first (a rule from a local file has no row yet; one from
 * PostgreSQL has), then the alert, by its stable id: an alert a person
 * acknowledged in PostgreSQL stays acknowledged while Metron sees it active.
 * The rule's row has the rule's business_id ($2), the alert's the alert's
 * ($21: its series' tenant, set when a system-wide rule fires for it).
 */
static const char upsert_alert[] =
    "WITH rule AS (INSERT INTO monitoring.alert_rules (id, business_id, rule_name, rule_category,"
    " severity, metric_name, condition_type, condition_definition, warning_threshold,"
    " critical_threshold, comparison_operator, created_by)"
    " VALUES ($1::uuid, $2::uuid, left($3, 100), 'metron', $4, left($5, 100), $6,"
    " '{\"source\": \"metron rules file\"}', $7::float8, $8::float8, $9,"
    " '00000000-0000-0000-0000-000000000000') ON CONFLICT DO NOTHING RETURNING id)"
    " INSERT INTO monitoring.alerts AS a (id, business_id, alert_rule_id, alert_title,"
    " alert_message, severity, status, metric_name, trigger_value, threshold_value,"
    " affected_components, resolved_at, last_notification_at, notification_count, triggered_at,"
    " updated_at)"
    " VALUES ($10::uuid, $21::uuid, coalesce((SELECT id FROM rule), (SELECT id FROM"
    " monitoring.alert_rules WHERE id = $1::uuid OR (business_id IS NOT DISTINCT FROM $2::uuid"
    " AND rule_name = left($3, 100)) ORDER BY (id = $1::uuid) DESC LIMIT 1)), left($3, 200), $11,"
    " $12, $13, left($5, 100), $14::float8, $15::float8, jsonb_build_array($16::text),"
    " to_timestamp($17::float8), to_timestamp($18::float8), $19::int, to_timestamp($20::float8),"
    " now())"
    " ON CONFLICT (id) DO UPDATE SET business_id = EXCLUDED.business_id,"
    " severity = EXCLUDED.severity,"
    " status = CASE WHEN a.status = 'acknowledged' AND EXCLUDED.status = 'active'"
    " THEN 'acknowledged' ELSE EXCLUDED.status END,"
    " alert_message = EXCLUDED.alert_message, trigger_value = EXCLUDED.trigger_value,"
    " threshold_value = EXCLUDED.threshold_value, resolved_at = EXCLUDED.resolved_at,"
    " last_notification_at = EXCLUDED.last_notification_at,"
    " notification_count = EXCLUDED.notification_count, updated_at = now()";

static void num(char *out, size_t cap, double v)
{
    snprintf(out, cap, isnan(v) ? "NaN" : "%.17g", v);
}

static int deliver_alert(mt_sink *s, const char *key, size_t klen, uint64_t *n, uint64_t *skipped)
{
    void *val;
    size_t vlen;
    int rc = mt_engine_state_get(s->e, key, klen, &val, &vlen);
    if (rc == MT_ENOTFOUND) return MT_OK; /* gone since: nothing to mirror */
    if (rc) return rc;
    mt_alert_record *r = malloc(sizeof *r);
    if (!r) {
        free(val);
        return -ENOMEM;
    }
    rc = mt_alert_record_decode(val, vlen, r);
    free(val);
    const mt_alert_rule *ru = &r->rule;
    if (!rc && (!is_uuid(ru->id, strlen(ru->id)) || !r->alert_id[0] ||
                (ru->business_id[0] && !is_uuid(ru->business_id, strlen(ru->business_id))) ||
                (r->business_id[0] && !is_uuid(r->business_id, strlen(r->business_id))))) {
        (*skipped)++;
        free(r);
        return MT_OK;
    }
    if (rc) {
        (*skipped)++; /* an unreadable record is not retried for ever */
        free(r);
        return MT_OK;
    }
    static const char *const conds[] = {"threshold", "trend", "anomaly"};
    static const char *const statuses[] = {"active", "active", "acknowledged", "resolved",
                                           "suppressed"};
    char warn[32], crit[32], value[32], thr[32], resolved[32], notified[32], count[16], trig[32],
        msg[1700];
    num(warn, sizeof warn, ru->warning);
    num(crit, sizeof crit, ru->critical);
    num(value, sizeof value, r->st.value);
    num(thr, sizeof thr, r->st.threshold);
    snprintf(resolved, sizeof resolved, "%.9f", (double)r->st.resolved_at / 1e9);
    snprintf(notified, sizeof notified, "%.9f", (double)r->st.notified_at / 1e9);
    snprintf(trig, sizeof trig, "%.9f", (double)r->st.triggered_at / 1e9);
    snprintf(count, sizeof count, "%u", r->st.notifications);
    snprintf(msg, sizeof msg, "%s on %s: %s %s %s (%s)", ru->metric, r->series, value,
             mt_cmp_name(ru->op), isnan(r->st.threshold) ? "-" : thr,
             mt_severity_name(r->st.severity));
    const char *params[21] = {
        ru->id,
        ru->business_id[0] ? ru->business_id : NULL,
        ru->name,
        ru->has_critical ? "critical" : "warning",
        ru->metric,
        conds[ru->cond],
        ru->has_warning ? warn : NULL,
        ru->has_critical ? crit : NULL,
        mt_cmp_name(ru->op),
        r->alert_id,
        msg,
        mt_severity_name(r->st.severity),
        statuses[r->st.status],
        value,
        isnan(r->st.threshold) ? NULL : thr,
        r->series,
        r->st.resolved_at ? resolved : NULL,
        r->st.notified_at ? notified : NULL,
        count,
        trig,
        r->business_id[0] ? r->business_id : NULL, /* the alert's: its series' tenant */
    };
    rc = mt_pg_exec(s->pg, upsert_alert, 21, params);
    if (!rc) (*n)++;
    free(r);
    return rc;
}

/* ---- the loop --------------------------------------------------------------------------- */

typedef struct batch {
    uint64_t last_seq;
    int64_t hours[256];
    size_t n;
    char *alerts[256]; /* state keys of alerts (malloc'd), each once */
    size_t alen[256], na;
} batch;

static int on_entry(void *ud, const mt_outbox_entry *en)
{
    batch *b = ud;
    b->last_seq = en->seq;
    if (en->kind == MT_OUTBOX_ALERT) {
        for (size_t i = 0; i < b->na; i++)
            if (b->alen[i] == en->len && !memcmp(b->alerts[i], en->data, en->len)) return MT_OK;
        if (!(b->alerts[b->na] = malloc(en->len ? en->len : 1))) return -ENOMEM;
        memcpy(b->alerts[b->na], en->data, en->len);
        b->alen[b->na++] = en->len;
        return MT_OK;
    }
    if (en->kind != MT_OUTBOX_HOUR || en->len != 8) return MT_OK; /* not ours: acknowledged */
    int64_t hour;
    memcpy(&hour, en->data, 8);
    for (size_t i = 0; i < b->n; i++)
        if (b->hours[i] == hour) return MT_OK; /* queued twice: once is the same */
    b->hours[b->n++] = hour;
    return MT_OK;
}

/* Log on a change of state only: a PostgreSQL down for an hour is one line, not thousands. */
static void state(mt_sink *s, int to, const char *what)
{
    if (s->state == to) return;
    s->state = to;
    if (to == 1)
        mt_log(MT_LOG_INFO, "msg=\"sink connected to PostgreSQL\"");
    else
        mt_log(MT_LOG_WARN,
               "msg=\"%s; the outbox keeps every row, retrying with backoff\" err=\"%s\"",
               to == 2 ? "sink cannot reach PostgreSQL" : "PostgreSQL refused a sink batch", what);
}

/* Sleep ns unless stopped; true when stopping. */
static bool nap(mt_sink *s, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t at = ts.tv_nsec + ns % 1000000000;
    ts.tv_sec += ns / 1000000000 + at / 1000000000;
    ts.tv_nsec = at % 1000000000;
    pthread_mutex_lock(&s->lock);
    if (!s->stop) pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

static bool connect_pg(mt_sink *s)
{
    char err[512];
    if (mt_pg_open(s->conninfo, &s->pg, err, sizeof err)) {
        state(s, 2, err);
        return false;
    }
    mt_schema_result r;
    if (mt_schema_install(s->pg, &r)) {
        state(s, 3, mt_pg_errmsg(s->pg));
        mt_pg_close(s->pg);
        s->pg = NULL;
        return false;
    }
    if (r.from_version != r.to_version)
        mt_log(MT_LOG_INFO, "msg=\"monitoring schema installed\" from=%d to=%d", r.from_version,
               r.to_version);
    s->maintained_ns = mt_now_ns();
    state(s, 1, "");
    return true;
}

static void *sink_main(void *arg)
{
    mt_sink *s = arg;
    int64_t backoff = 0;
    uint64_t seed = (uint64_t)mt_now_ns();
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        int rc = MT_OK;
        bool idle = false;
        if (!s->pg && !connect_pg(s)) {
            rc = MT_EPG;
        } else {
            if (mt_now_ns() - s->maintained_ns > MAINTAIN_NS) {
                mt_schema_maintain(s->pg, NULL); /* a failure shows in the next batch */
                s->maintained_ns = mt_now_ns();
            }
            batch b = {0};
            size_t max = s->opt.batch_hours < 256 ? s->opt.batch_hours : 256;
            rc = mt_engine_outbox_peek(s->e, max, on_entry, &b);
            idle = !rc && !b.last_seq;
            uint64_t sent = 0, skipped = 0;
            if (!rc && !idle) {
                rc = mt_pg_exec(s->pg, "BEGIN", 0, NULL);
                for (size_t i = 0; !rc && i < b.n; i++)
                    rc = deliver_hour(s, b.hours[i], &sent, &skipped);
                for (size_t i = 0; !rc && i < b.na; i++)
                    rc = deliver_alert(s, b.alerts[i], b.alen[i], &sent, &skipped);
                if (!rc) rc = mt_pg_exec(s->pg, "COMMIT", 0, NULL);
                if (rc == MT_EPG) state(s, mt_pg_ok(s->pg) ? 3 : 2, mt_pg_errmsg(s->pg));
                if (rc) mt_pg_abort(s->pg);
            }
            /* committed: now, and only now, the entries may go */
            if (!rc && !idle) rc = mt_engine_outbox_ack(s->e, b.last_seq, NULL);
            for (size_t i = 0; i < b.na; i++) free(b.alerts[i]);
            pthread_mutex_lock(&s->lock);
            if (!rc && !idle) {
                s->st.rows_delivered += sent;
                s->st.hours_delivered += b.n;
                s->st.rows_skipped += skipped;
            }
            pthread_mutex_unlock(&s->lock);
            if (!rc && !idle) state(s, 1, "");
            if (rc && s->pg && !mt_pg_ok(s->pg)) { /* the connection is gone: open a new one */
                mt_pg_close(s->pg);
                s->pg = NULL;
            }
        }
        pthread_mutex_lock(&s->lock);
        s->st.connected = s->pg != NULL && rc != MT_EPG;
        pthread_mutex_unlock(&s->lock);
        size_t depth;
        int64_t oldest;
        if (mt_engine_outbox_stats(s->e, &depth, &oldest) == MT_OK) {
            bool near = depth * 10 >= s->opt.outbox_budget * 9;
            if (near != s->near_full)
                mt_log(near ? MT_LOG_WARN : MT_LOG_INFO,
                       near ? "msg=\"the outbox is near its budget: PostgreSQL is behind; nothing "
                              "is dropped\" depth=%zu budget=%zu"
                            : "msg=\"the outbox is back under its budget\" depth=%zu budget=%zu",
                       depth, s->opt.outbox_budget);
            s->near_full = near;
        }
        if (rc) {
            pthread_mutex_lock(&s->lock);
            s->st.failures++;
            pthread_mutex_unlock(&s->lock);
            /* exponential backoff with full jitter */
            backoff = backoff ? backoff * 2 : 250 * 1000000LL;
            if (backoff > s->opt.retry_max_ns) backoff = s->opt.retry_max_ns;
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            if (nap(s, backoff / 2 + (int64_t)((seed >> 33) % (uint64_t)(backoff / 2 + 1)))) break;
        } else {
            backoff = 0;
            if (idle && nap(s, s->opt.idle_ns)) break;
        }
    }
    return NULL;
}

int mt_sink_start(mt_engine *e, const mt_sink_options *opt, mt_sink **out)
{
    if (!opt || !opt->conninfo || !*opt->conninfo) return MT_EINVAL;
    mt_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(opt->conninfo))) {
        free(s);
        return -ENOMEM;
    }
    s->e = e;
    s->opt = *opt;
    mt_sink_options d = mt_sink_options_default();
    if (!s->opt.batch_hours) s->opt.batch_hours = d.batch_hours;
    if (!s->opt.idle_ns) s->opt.idle_ns = d.idle_ns;
    if (!s->opt.retry_max_ns) s->opt.retry_max_ns = d.retry_max_ns;
    if (!s->opt.outbox_budget) s->opt.outbox_budget = d.outbox_budget;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    int rc = pthread_create(&s->thread, NULL, sink_main, s);
    if (rc) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s->conninfo);
        free(s);
        return -rc;
    }
    *out = s;
    return MT_OK;
}

void mt_sink_stop(mt_sink *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    mt_pg_close(s->pg);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->conninfo);
    free(s);
}

void mt_sink_stats_get(mt_sink *s, mt_sink_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->st;
    pthread_mutex_unlock(&s->lock);
    int64_t oldest = 0;
    if (mt_engine_outbox_stats(s->e, &out->outbox_depth, &oldest) == MT_OK && oldest)
        out->oldest_age_s = (double)(mt_now_ns() - oldest) / 1e9;
}
