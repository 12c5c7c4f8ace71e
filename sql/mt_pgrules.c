/* mt_pgrules.c — rules and acknowledgements from PostgreSQL (mt_pgrules.h). */
#include "mt_pgrules.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_buf.h"
#include "mt_log.h"
#include "mt_pg.h"
#include "mt_time.h"
#include "mt_worker.h"

struct mt_pgrules {
    char *conninfo;
    int64_t poll_ns;
    mt_pgrules_callbacks cb;
    mt_worker w; /* follow()'s thread */
};

static const char rules_sql[] =
    "SELECT id::text, coalesce(business_id::text, ''), rule_name, metric_name, condition_type,"
    " coalesce(condition_definition->>'aggregation', 'avg'),"
    " extract(epoch from evaluation_window), warning_threshold, critical_threshold,"
    " coalesce(comparison_operator, ''), coalesce(extract(epoch from trend_period), 3600),"
    " coalesce(anomaly_sensitivity, 1), coalesce(extract(epoch from cooldown_period), 900),"
    " coalesce(business_hours_only, false), coalesce(condition_definition->>'no_data', 'keep'),"
    " coalesce((SELECT string_agg((w->>'from') || '/' || (w->>'to'), ',') FROM"
    " jsonb_array_elements(CASE WHEN jsonb_typeof(condition_definition->'silences') = 'array'"
    " THEN condition_definition->'silences' ELSE '[]' END) w), ''),"
    /* notification_channels: ids or names (strings, or objects with an id or a name) */
    " coalesce((SELECT string_agg(CASE jsonb_typeof(c) WHEN 'string' THEN c #>> '{}'"
    " ELSE coalesce(c->>'id', c->>'name') END, E'\\n') FROM"
    " jsonb_array_elements(CASE WHEN jsonb_typeof(notification_channels) = 'array'"
    " THEN notification_channels ELSE '[]' END) c), ''),"
    /* escalation_rules [{"after_minutes": 15, "channels": [...]}, ...] as levels "15:a\nb",
       separated by \x1e; a level without its keys reads 'x', which no rule takes */
    " coalesce((SELECT string_agg(coalesce(e->>'after_minutes', 'x') || ':' ||"
    " coalesce((SELECT string_agg(CASE jsonb_typeof(c) WHEN 'string' THEN c #>> '{}'"
    " ELSE coalesce(c->>'id', c->>'name') END, E'\\n') FROM jsonb_array_elements(CASE WHEN"
    " jsonb_typeof(e->'channels') = 'array' THEN e->'channels' ELSE '[]' END) c), ''),"
    " E'\\x1e') FROM jsonb_array_elements(CASE WHEN jsonb_typeof(escalation_rules) = 'array'"
    " THEN escalation_rules ELSE '[]' END) e), '')"
    " FROM monitoring.alert_rules WHERE is_active AND rule_category <> 'metron' ORDER BY id";

typedef struct set {
    mt_alert_rule *r;
    size_t n, cap;
} set;

static int64_t secs(const char *v)
{
    return (int64_t)llround(strtod(v, NULL) * 1e9);
}

static int on_rule(void *ud, int ncols, const char *const *v)
{
    set *s = ud;
    if (ncols != 18) return MT_EINVAL;
    mt_alert_rule r = mt_alert_rule_default();
    char err[256] = "";
    size_t n;
    snprintf(r.id, sizeof r.id, "%s", v[0]);
    snprintf(r.business_id, sizeof r.business_id, "%s", v[1]);
    snprintf(r.name, sizeof r.name, "%s", v[2]);
    snprintf(r.metric, sizeof r.metric, "%s", v[3]);
    bool ok = mt_cond_parse(v[4], &r.cond) && !mt_agg_parse(v[5], &r.agg, 1, &n, err, sizeof err) &&
              n == 1;
    r.window_ns = v[6] ? secs(v[6]) : r.window_ns;
    if ((r.has_warning = v[7] != NULL)) r.warning = strtod(v[7], NULL);
    if ((r.has_critical = v[8] != NULL)) r.critical = strtod(v[8], NULL);
    if (ok && v[9][0])
        ok = mt_cmp_parse(v[9], &r.op);
    else if (ok && r.cond != MT_COND_ANOMALY)
        ok = false, snprintf(err, sizeof err, "no operator");
    r.trend_period_ns = secs(v[10]);
    r.anomaly_sensitivity = strtod(v[11], NULL);
    r.cooldown_ns = secs(v[12]);
    r.business_hours_only = !strcmp(v[13], "t");
    ok = ok && mt_nodata_parse(v[14], &r.nodata);
    char windows[1024];
    snprintf(windows, sizeof windows, "%s", v[15]);
    for (char *save, *w = strtok_r(windows, ",", &save); ok && w; w = strtok_r(NULL, ",", &save))
        if (!mt_alert_rule_add_silence(&r, w))
            ok = false, snprintf(err, sizeof err, "a silence is not {\"from\": T, \"to\": T}");
    if (ok && (size_t)snprintf(r.channels, sizeof r.channels, "%s", v[16]) >= sizeof r.channels)
        ok = false, snprintf(err, sizeof err, "notification_channels is too long");
    for (const char *e = v[17]; ok && *e;) { /* levels separated by \x1e */
        size_t len = strcspn(e, "\x1e");
        char level[600];
        if (len >= sizeof level || (snprintf(level, sizeof level, "%.*s", (int)len, e),
                                    !mt_alert_rule_add_escalation(&r, level)))
            ok = false, snprintf(err, sizeof err,
                                 "escalation_rules: a level is not {\"after_minutes\": N, "
                                 "\"channels\": [...]} (at most 8, N >= 0)");
        e += len + (e[len] != '\0');
    }
    if (ok && mt_alert_rule_check(&r, err, sizeof err)) ok = false;
    if (!ok) {
        mt_log(MT_LOG_WARN, "msg=\"alert rule skipped\" rule=\"%s\" id=%s err=\"%s\"", r.name, r.id,
               err[0] ? err : "a condition or field Metron cannot evaluate");
        return MT_OK;
    }
    if (mt_grow(&s->r, &s->cap, s->n + 1, sizeof *s->r, 16)) return -ENOMEM;
    s->r[s->n++] = r;
    return MT_OK;
}

static int on_ack(void *ud, int ncols, const char *const *v)
{
    const mt_pgrules *p = ud;
    if (ncols == 1 && v[0]) p->cb.acknowledged(p->cb.ud, v[0]);
    return MT_OK;
}

/* event_types (a channel's configuration may carry them too), '\n'-separated; NULL or [] is '' */
#define EVENT_TYPES(col)                                                                           \
    " coalesce((SELECT string_agg(t, E'\\n') FROM jsonb_array_elements_text(CASE WHEN"             \
    " jsonb_typeof(" col ") = 'array' THEN " col " ELSE '[]' END) t), '')"

/* a channel's configuration key as text ('' when absent) */
#define CONF(k) " coalesce(configuration->>'" k "', '')"

/* the columns one a line (clang-format would break the macros' strings apart) */
/* clang-format off */
static const char endpoints_sql[] =
    "SELECT id::text, false, endpoint_name, webhook_url, coalesce(secret_token, ''),"
    " coalesce(retry_attempts, 3), coalesce(timeout_seconds, 30), 0,"
    " coalesce(business_id::text, '')," EVENT_TYPES("event_types") ","
    " 'webhook', '', '', '', '', '', '', '', '', '', '', '', 0, 0"
    " FROM monitoring.webhook_endpoints WHERE is_active"
    " UNION ALL"
    " SELECT id::text, true, channel_name,"
    " coalesce(configuration->>'url', configuration->>'smtp_url',"
    "          configuration->>'webhook_url', configuration->>'events_url', ''),"
    " coalesce(configuration->>'secret', ''),"
    " coalesce((configuration->>'retry_attempts')::int, 3),"
    " coalesce((configuration->>'timeout_seconds')::int, 30),"
    " coalesce(rate_limit_per_hour, 10),"
    " coalesce(business_id::text, '')," EVENT_TYPES("configuration->'event_types'") ","
    " lower(channel_type),"
    CONF("ca_file") ","
    CONF("from") ","
    /* "to": a string, or an array of addresses */
    " coalesce(CASE jsonb_typeof(configuration->'to') WHEN 'array' THEN"
    " (SELECT string_agg(t, ',') FROM jsonb_array_elements_text(configuration->'to') t)"
    " ELSE configuration->>'to' END, ''),"
    CONF("username") ","
    CONF("password") ","
    " coalesce(configuration->>'starttls', 'false'),"
    CONF("routing_key") ","
    CONF("sms_to") ","
    CONF("body_template") ","
    CONF("content_type") ","
    CONF("auth_header") ","
    " coalesce(current_hour_count, 0), coalesce(extract(epoch from last_reset_at), 0)"
    " FROM monitoring.notification_channels WHERE is_active"
    " ORDER BY 1";
/* clang-format on */

typedef struct eps {
    mt_webhook *e;
    size_t n, cap;
} eps;

/* One row of endpoints_sql as an endpoint of the notifier (mt_notify.h): every field set one by
   one over mt_webhook_init's zeroed memory, so an endpoint read twice compares equal. */
static int on_endpoint(void *ud, int ncols, const char *const *v)
{
    eps *s = ud;
    if (ncols != 24) return MT_EINVAL;
    /* a webhook endpoint without an http(s) URL is none Metron can call; a channel is read
       whatever it holds (metrond says once what it cannot deliver, and counts it) */
    if (strcmp(v[1], "t") && strncmp(v[3], "http://", 7) && strncmp(v[3], "https://", 8))
        return MT_OK;
    if (strlen(v[9]) >= 512) {
        /* cut, the list would mean other events: the endpoint is left out, and said so */
        mt_log(MT_LOG_WARN, "msg=\"webhook endpoint skipped: event_types is too long\" id=%s",
               v[0]);
        return MT_OK;
    }
    if (mt_grow(&s->e, &s->cap, s->n + 1, sizeof *s->e, 8)) return -ENOMEM;
    mt_webhook *w = &s->e[s->n++];
    mt_webhook_init(w);
    snprintf(w->id, sizeof w->id, "%s", v[0]);
    w->channel = !strcmp(v[1], "t");
    snprintf(w->name, sizeof w->name, "%s", v[2]);
    snprintf(w->url, sizeof w->url, "%s", v[3]);
    snprintf(w->secret, sizeof w->secret, "%s", v[4]);
    w->retry_attempts = atoi(v[5]);
    w->timeout_s = atoi(v[6]) > 0 ? atoi(v[6]) : 30;
    w->rate_limit_per_hour = atoi(v[7]);
    snprintf(w->business_id, sizeof w->business_id, "%s", v[8]);
    mt_channel_conf *c = &w->ch;
    c->type = mt_channel_type_parse(v[10]);
    snprintf(c->type_name, sizeof c->type_name, "%s", v[10]);
    snprintf(c->ca_file, sizeof c->ca_file, "%s", v[11]);
    snprintf(c->mail_from, sizeof c->mail_from, "%s", v[12]);
    snprintf(c->mail_to, sizeof c->mail_to, "%s", v[13]);
    snprintf(c->username, sizeof c->username, "%s", v[14]);
    snprintf(c->password, sizeof c->password, "%s", v[15]);
    c->starttls = !strcmp(v[16], "true");
    snprintf(c->routing_key, sizeof c->routing_key, "%s", v[17]);
    snprintf(c->sms_to, sizeof c->sms_to, "%s", v[18]);
    snprintf(c->body_template, sizeof c->body_template, "%s", v[19]);
    snprintf(c->content_type, sizeof c->content_type, "%s", v[20]);
    snprintf(c->auth_header, sizeof c->auth_header, "%s", v[21]);
    mt_webhook_check_channel(w);
    mt_webhook_parse_events(v[9], &w->events, w->unknown_event, sizeof w->unknown_event);
    w->hour_count = atoi(v[22]);
    w->hour_start_ns = (int64_t)llround(strtod(v[23], NULL) * 1e9);
    return MT_OK;
}

/* Add the calls made since the last time to each webhook endpoint's row. */
static int write_back(mt_pgrules *p, mt_pg *pg, const eps *s)
{
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < s->n; i++) {
        mt_pg_endpoint_delta d;
        if (s->e[i].channel) { /* its rate limit's count, kept across restarts */
            char count[24], reset[32];
            int n = 0;
            int64_t hour = 0;
            if (!p->cb.channel_count || !p->cb.channel_count(p->cb.ud, s->e[i].id, &n, &hour) ||
                !hour)
                continue;
            snprintf(count, sizeof count, "%d", n);
            snprintf(reset, sizeof reset, "%.9f", (double)hour / 1e9);
            const char *params[] = {s->e[i].id, count, reset};
            rc = mt_pg_exec(pg,
                            "UPDATE monitoring.notification_channels SET current_hour_count ="
                            " $2::int, last_reset_at = to_timestamp($3::float8),"
                            " updated_at = now() WHERE id = $1::uuid",
                            3, params);
            continue;
        }
        if (!p->cb.endpoint_delta(p->cb.ud, s->e[i].id, &d)) continue;
        char t[24], ok[24], bad[24], ls[32], lf[32];
        snprintf(t, sizeof t, "%llu", (unsigned long long)d.total);
        snprintf(ok, sizeof ok, "%llu", (unsigned long long)d.successful);
        snprintf(bad, sizeof bad, "%llu", (unsigned long long)d.failed);
        snprintf(ls, sizeof ls, "%.9f", (double)d.last_success_ns / 1e9);
        snprintf(lf, sizeof lf, "%.9f", (double)d.last_failure_ns / 1e9);
        const char *params[] = {
            s->e[i].id, t, ok, bad, d.last_success_ns ? ls : NULL, d.last_failure_ns ? lf : NULL};
        rc = mt_pg_exec(pg,
                        "UPDATE monitoring.webhook_endpoints SET total_calls = total_calls + $2,"
                        " successful_calls = successful_calls + $3,"
                        " failed_calls = failed_calls + $4,"
                        " last_success_at = coalesce(to_timestamp($5::float8), last_success_at),"
                        " last_failure_at = coalesce(to_timestamp($6::float8), last_failure_at),"
                        " updated_at = now() WHERE id = $1::uuid",
                        6, params);
    }
    return rc;
}

/* Read the rules and the acknowledgements once. */
static int refresh(mt_pgrules *p, mt_pg *pg)
{
    set s = {0};
    int rc = mt_pg_query_rows(pg, rules_sql, 0, NULL, on_rule, &s);
    if (!rc) p->cb.rules(p->cb.ud, s.r, s.n);
    free(s.r);
    if (!rc && p->cb.acknowledged)
        rc = mt_pg_query_rows(
            pg, "SELECT id::text FROM monitoring.alerts WHERE status = 'acknowledged'", 0, NULL,
            on_ack, p);
    if (!rc && p->cb.endpoints) {
        eps e = {0};
        rc = mt_pg_query_rows(pg, endpoints_sql, 0, NULL, on_endpoint, &e);
        if (!rc) p->cb.endpoints(p->cb.ud, e.e, e.n);
        if (!rc && p->cb.endpoint_delta) rc = write_back(p, pg, &e);
        free(e.e);
    }
    return rc;
}

static void *follow(void *arg)
{
    mt_pgrules *p = arg;
    mt_pg *pg = NULL;
    int64_t backoff = 0;
    bool said = false;
    while (!mt_worker_stopping(&p->w)) {
        char err[512];
        int rc = MT_OK;
        if (!pg) {
            rc = mt_pg_open(p->conninfo, &pg, err, sizeof err);
            if (!rc) rc = mt_pg_exec(pg, "LISTEN metron_alert_rules", 0, NULL);
            if (!rc) rc = mt_pg_exec(pg, "LISTEN metron_alerts", 0, NULL);
        }
        if (!rc) rc = refresh(p, pg);
        /* wait for a notification or the poll interval, in slices that see a stop */
        for (int64_t waited = 0; !rc && waited < p->poll_ns && !mt_worker_stopping(&p->w);
             waited += 200 * 1000000LL) {
            bool notified;
            rc = mt_pg_wait_notify(pg, 200, &notified);
            if (notified) break;
        }
        if (rc) {
            if (!said)
                mt_log(MT_LOG_WARN,
                       "msg=\"cannot read alert rules from PostgreSQL; retrying\" "
                       "err=\"%s\"",
                       pg ? mt_pg_errmsg(pg) : err);
            said = true;
            mt_pg_close(pg);
            pg = NULL;
            backoff = backoff ? backoff * 2 : 250 * 1000000LL;
            if (backoff > 30 * 1000000000LL) backoff = 30 * 1000000000LL;
            if (mt_worker_nap(&p->w, backoff)) break;
        } else {
            backoff = 0;
            said = false;
        }
    }
    mt_pg_close(pg);
    return NULL;
}

int mt_pgrules_start(const char *conninfo, int64_t poll_ns, const mt_pgrules_callbacks *cb,
                     mt_pgrules **out)
{
    if (!conninfo || !*conninfo || !cb || !cb->rules) return MT_EINVAL;
    mt_pgrules *p = calloc(1, sizeof *p);
    if (!p || !(p->conninfo = strdup(conninfo))) {
        free(p);
        return -ENOMEM;
    }
    p->poll_ns = poll_ns > 0 ? poll_ns : 60 * 1000000000LL;
    p->cb = *cb;
    int rc = mt_worker_init(&p->w);
    if (!rc && (rc = mt_worker_start(&p->w, follow, p))) mt_worker_destroy(&p->w);
    if (rc) {
        free(p->conninfo);
        free(p);
        return rc;
    }
    *out = p;
    return MT_OK;
}

void mt_pgrules_stop(mt_pgrules *p)
{
    if (!p) return;
    mt_worker_stop(&p->w);
    mt_worker_destroy(&p->w);
    free(p->conninfo);
    free(p);
}
