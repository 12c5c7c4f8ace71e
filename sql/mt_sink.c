/*
 * mt_sink.c — the SQL sink (mt_sink.h): outbox entries to upserts, one
 * thread, one connection.
 *
 * A batch is first sent as it always was: a few multi-row statements in one
 * transaction. Only when PostgreSQL refuses it for good (mt_quar_permanent)
 * is it rolled back and sent again in careful mode: a savepoint around each
 * statement, and a statement refused split in halves, each under its own
 * savepoint, down to the single rows refused, which are held back
 * (mt_quarantine.h); the rest commits. The quarantine changes and the
 * outbox acknowledgement are then one engine transaction, after COMMIT: a
 * crash before it sends the batch again, and the same rows land and the
 * same rows are refused (their records have the same keys).
 */
#include "mt_sink.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_buf.h"
#include "mt_alert.h"
#include "mt_log.h"
#include "mt_minute.h"
#include "mt_pgarr.h"
#include "mt_tenant.h"
#include "mt_pg.h"
#include "mt_quarantine.h"
#include "mt_schema.h"
#include "mt_series.h"
#include "mt_sink_int.h"
#include "mt_time.h"
#include "mt_worker.h"

#define MAX_CATEGORY 50  /* monitoring.*.metric_category VARCHAR(50) */
#define MAX_NAME     100 /* metric_name VARCHAR(100) */
#define MAINTAIN_NS  (24 * MT_HOUR_NS)

struct mt_sink {
    mt_engine *e;
    mt_sink_options opt;
    char *conninfo;
    mt_worker w; /* its lock guards stop, st, retain and opt.retain (mt_sink_set_retain) */
    mt_sink_stats st;
    mt_pg *pg;
    int64_t maintained_ns; /* when partitions were last made */
    mt_pgretain retain;    /* opt.retain copied (opt.retain then points here) */
    int64_t retained_ns;   /* when the retention last ran (0: not yet) */
    int state;             /* last logged: 0 none, 1 connected, 2 cannot connect, 3 refused */
    bool near_full;        /* the outbox passed 90% of its budget (logged) */
    mt_log_limit held_log; /* the lines per row held back */
};

mt_sink_options mt_sink_options_default(void)
{
    return (mt_sink_options){.batch_hours = 24,
                             .idle_ns = 200 * 1000000LL,
                             .retry_max_ns = 30 * 1000000000LL,
                             .outbox_budget = 100000};
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

/*
 * Rows of one table for one hour: one array literal per column, and where
 * each row's element begins in each, so that any run of rows [lo, hi) is a
 * slice of every literal: what bisection sends when PostgreSQL refuses
 * some row of the run.
 */
typedef struct rowset {
    mt_pgarr col[NCOLS];
    size_t n;
    size_t *off;      /* off[i * NCOLS + c]: row i's element of column c, at its separator */
    const char **why; /* the sink's own check that refuses row i (the refused set only) */
    size_t cap;
    int rc;
} rowset;

typedef struct rows {
    mt_sink *s;
    rowset ok, bad; /* rows to send; rows the sink's checks know PostgreSQL refuses */
    uint64_t skipped;
} rows;

static void rowset_free(rowset *rs)
{
    for (int c = 0; c < NCOLS; c++) free(rs->col[c].p);
    free(rs->off);
    free(rs->why);
}

static void row_begin(rowset *rs, const char *why)
{
    if (rs->rc) return;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        size_t *off = realloc(rs->off, cap * NCOLS * sizeof *off);
        if (off) rs->off = off;
        const char **w = off ? realloc(rs->why, cap * sizeof *w) : NULL;
        if (!w) {
            rs->rc = -ENOMEM;
            return;
        }
        rs->why = w;
        rs->cap = cap;
    }
    for (int c = 0; c < NCOLS; c++) rs->off[rs->n * NCOLS + c] = rs->col[c].len;
    rs->why[rs->n] = why;
}

static int rowset_rc(const rowset *rs)
{
    for (int c = 0; c < NCOLS; c++)
        if (rs->col[c].rc) return rs->col[c].rc;
    return rs->rc;
}

/* Rows [lo, hi) of column c as an array literal, built in out; NULL when out of memory. */
static const char *slice(const rowset *rs, int c, size_t lo, size_t hi, mt_pgarr *out)
{
    const mt_pgarr *a = &rs->col[c];
    size_t from = rs->off[lo * NCOLS + c] + 1, to = hi < rs->n ? rs->off[hi * NCOLS + c] : a->len;
    mt_pgarr_reset(out);
    mt_pgarr_put(out, "{", 1);
    mt_pgarr_put(out, a->p + from, to - from);
    return mt_pgarr_finish(out);
}

static void add_values(rowset *rs, const mt_rollup *ro)
{
    mt_pgarr_u64(&rs->col[C_COUNT], ro->count);
    mt_pgarr_double(&rs->col[C_AVG], ro->sum / (double)ro->count);
    mt_pgarr_double(&rs->col[C_MIN], ro->min);
    mt_pgarr_double(&rs->col[C_MAX], ro->max);
    mt_pgarr_double(&rs->col[C_P50], ro->p50);
    mt_pgarr_double(&rs->col[C_P95], ro->p95);
    mt_pgarr_double(&rs->col[C_P99], ro->p99);
    rs->n++;
}

/* What PostgreSQL would refuse in the key columns (the schema's types), or NULL. */
static const char *check_keys(mt_name bid, mt_name cat, mt_name name)
{
    if (bid.len && !mt_tenant_uuid_valid_n(bid.ptr, bid.len))
        return "metron: business_id is not a UUID";
    if (cat.len > MAX_CATEGORY) return "metron: measurement longer than 50 bytes (VARCHAR(50))";
    if (name.len > MAX_NAME) return "metron: field longer than 100 bytes (VARCHAR(100))";
    return NULL;
}

/* Start a row in the set its keys belong to, with the tenant, category and name columns. */
static rowset *add_keys(rows *r, mt_name bid, mt_name cat, mt_name name)
{
    const char *why = check_keys(bid, cat, name);
    rowset *rs = why ? &r->bad : &r->ok;
    row_begin(rs, why);
    if (bid.len)
        mt_pgarr_text(&rs->col[C_BID], bid.ptr, bid.len);
    else
        mt_pgarr_null(&rs->col[C_BID]); /* the system-wide tenant */
    mt_pgarr_text(&rs->col[C_CAT], cat.ptr, cat.len);
    mt_pgarr_text(&rs->col[C_NAME], name.ptr, name.len);
    return rs;
}

static int on_group(void *ud, const mt_rollup *ro)
{
    rows *r = ud;
    rowset *rs = add_keys(r, ro->business_id, ro->measurement, ro->field);
    add_values(rs, ro);
    return rs->rc;
}

static int on_series(void *ud, const mt_rollup *ro)
{
    rows *r = ud;
    char key[MT_SERIES_MAX_KEY], text[4096];
    size_t kl;
    mt_series_parts parts;
    if (mt_engine_series_key(r->s->e, ro->id, key, sizeof key, &kl) ||
        mt_series_parse(key, kl, &parts)) {
        r->skipped++; /* no key to name the row by: the engine's damage, reported there */
        return MT_OK;
    }
    int tl = mt_series_format(key, kl, text, sizeof text);
    if (tl < 0 || (size_t)tl >= sizeof text) {
        r->skipped++;
        return MT_OK;
    }
    mt_name bid = {"", 0};
    mt_pgarr dims = {0};
    mt_pgarr_put(&dims, "{", 1);
    for (size_t k = 0; k < parts.ntags; k++) {
        if (parts.tag_keys[k].len == 11 && !memcmp(parts.tag_keys[k].ptr, "business_id", 11)) {
            bid = parts.tag_values[k];
            continue;
        }
        mt_pgarr_put(&dims, dims.len > 1 ? ",\"" : "\"", dims.len > 1 ? 2 : 1);
        mt_pgarr_json(&dims, parts.tag_keys[k].ptr, parts.tag_keys[k].len);
        mt_pgarr_put(&dims, "\":\"", 3);
        mt_pgarr_json(&dims, parts.tag_values[k].ptr, parts.tag_values[k].len);
        mt_pgarr_put(&dims, "\"", 1);
    }
    mt_pgarr_put(&dims, "}", 1);
    int rc = dims.rc;
    if (!rc) {
        rowset *rs = add_keys(r, bid, parts.measurement, parts.field);
        mt_pgarr_text(&rs->col[C_SERIES], text, (size_t)tl);
        mt_pgarr_text(&rs->col[C_DIMS], dims.p, dims.len);
        add_values(rs, ro);
        rc = rs->rc;
    }
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

/* ---- a batch: what to send, and what the quarantine becomes ------------------------- */

/* A change to the quarantine, applied with the outbox acknowledgement after COMMIT. */
typedef struct qop {
    uint8_t key[MT_QUAR_KEY_LEN];
    void *val; /* the record (malloc'd); NULL: the row left the quarantine */
    size_t vlen;
    bool fresh; /* decided by rows read now (an hour's rollups, an alert's state), which
                   outrank a record sent again: its values may be older */
} qop;

typedef struct batch {
    uint64_t last_seq;
    int64_t hours[256];
    size_t n;
    char *alerts[256]; /* state keys of alerts (malloc'd), each once */
    size_t alen[256], na;
    char *held[256]; /* quarantine record keys queued again (malloc'd), each once */
    size_t hlen[256], nh;
    char *notes[256]; /* delivery records: 'N', an alert id, JSON (malloc'd), each once */
    size_t nlen[256], nn;
    char *dels[256]; /* deletions: MT_DELETE_TENANT and a business_id (malloc'd), each once */
    size_t dlen[256], nd;
    /* one try */
    bool careful;        /* a savepoint around each statement; a refusal bisected to its rows */
    mt_pgarr par[NCOLS]; /* slices being sent */
    qop *ops;
    size_t nops, capops;
    uint64_t sent, skipped;
} batch;

static void ops_clear(batch *b)
{
    for (size_t i = 0; i < b->nops; i++) free(b->ops[i].val);
    b->nops = 0;
}

static int ops_add(batch *b, const uint8_t key[MT_QUAR_KEY_LEN], void *val, size_t vlen, bool fresh)
{
    if (mt_grow(&b->ops, &b->capops, b->nops + 1, sizeof *b->ops, 32)) {
        free(val);
        return -ENOMEM;
    }
    qop *o = &b->ops[b->nops++];
    memcpy(o->key, key, MT_QUAR_KEY_LEN);
    o->val = val;
    o->vlen = vlen;
    o->fresh = fresh;
    return MT_OK;
}

/* Hold a row back: its record, replacing any of the same natural key. */
static int hold(batch *b, uint8_t table, int64_t hour, const char *natural, int n,
                const char *const *params, const char *sqlstate, const char *reason,
                uint32_t refusals, bool fresh)
{
    mt_quar_row r = {.table = table,
                     .hour = hour,
                     .at_ns = mt_now_ns(),
                     .refusals = refusals,
                     .reason = reason,
                     .natural = natural,
                     .nparams = n};
    snprintf(r.sqlstate, sizeof r.sqlstate, "%s", sqlstate);
    assert(n >= 0 && n <= MT_QUAR_MAX_PARAMS);
    memcpy(r.params, params, (size_t)n * sizeof *params);
    void *val;
    size_t vlen;
    int rc = mt_quar_encode(&r, &val, &vlen);
    if (rc) return rc;
    uint8_t key[MT_QUAR_KEY_LEN];
    mt_quar_key(table, hour, natural, key);
    return ops_add(b, key, val, vlen, fresh);
}

/* The text of a one-element array literal "{...}" (quoted with backslashes, or NULL). */
static void elem_text(const char *lit, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = lit + 1;
    if (*p == '"')
        for (p++; *p && *p != '"' && n + 1 < cap; p++) {
            if (*p == '\\' && p[1]) p++;
            out[n++] = *p;
        }
    out[n] = '\0';
}

/* Hold row i of rs back (its values as one-element arrays). */
static int hold_row(batch *b, bool groups, int64_t hour, const rowset *rs, size_t i,
                    const char *sqlstate, const char *reason)
{
    char h[24], when[40];
    snprintf(h, sizeof h, "%lld", (long long)hour);
    const char *params[13] = {h};
    int ncol = groups ? C_SERIES : NCOLS;
    for (int c = 0; c < ncol; c++)
        if (!(params[1 + c] = slice(rs, c, i, i + 1, &b->par[c]))) return -ENOMEM;
    /* names as long as a series key allows: a key cut short could hash like another */
    enum { N = MT_SERIES_MAX_KEY + 1 };
    char *natural = malloc(2 * (size_t)N), *x = malloc(3 * (size_t)N);
    if (!natural || !x) {
        free(natural);
        free(x);
        return -ENOMEM;
    }
    char *y = x + N, *z = y + N;
    mt_time_format(hour * MT_HOUR_NS, when, sizeof when);
    if (groups) {
        elem_text(params[1 + C_BID], x, N);
        elem_text(params[1 + C_CAT], y, N);
        elem_text(params[1 + C_NAME], z, N);
        snprintf(natural, 2 * N, "hour=%s business_id=%s metric_category=%s metric_name=%s", when,
                 x, y, z);
    } else {
        elem_text(params[1 + C_SERIES], x, N);
        snprintf(natural, 2 * N, "hour=%s series=%s", when, x);
    }
    int rc = hold(b, groups ? MT_QUAR_GROUPS : MT_QUAR_SERIES, hour, natural, 1 + ncol, params,
                  sqlstate, reason, 1, true);
    free(natural);
    free(x);
    return rc;
}

/*
 * Careful mode runs each statement under a savepoint. After a failure
 * there: true when PostgreSQL refused these rows for good (state and msg
 * kept, the savepoint undone, the transaction usable); false when the
 * batch must fail (*rc says why).
 */
static bool refused(mt_pg *pg, int *rc, char state[6], char *msg, size_t cap)
{
    snprintf(state, 6, "%s", mt_pg_sqlstate(pg));
    snprintf(msg, cap, "%s", mt_pg_errmsg(pg));
    if (*rc != MT_EPG || !mt_quar_permanent(state)) return false;
    *rc = mt_pg_exec(pg, "ROLLBACK TO SAVEPOINT row_group", 0, NULL);
    if (!*rc) *rc = mt_pg_exec(pg, "RELEASE SAVEPOINT row_group", 0, NULL);
    return *rc == MT_OK;
}

static int exec_rows(batch *b, mt_pg *pg, bool groups, int64_t hour, const rowset *rs, size_t lo,
                     size_t hi)
{
    char h[24];
    snprintf(h, sizeof h, "%lld", (long long)hour);
    const char *params[13] = {h};
    int ncol = groups ? C_SERIES : NCOLS;
    for (int c = 0; c < ncol; c++)
        if (!(params[1 + c] = slice(rs, c, lo, hi, &b->par[c]))) return -ENOMEM;
    return mt_pg_exec(pg, groups ? upsert_groups : upsert_series, 1 + ncol, params);
}

/*
 * Send rows [lo, hi) of rs. In careful mode a permanent refusal is rolled
 * back to the savepoint and the run split in two, down to the rows that
 * are refused alone, which are held back: k bad rows of n cost about
 * 2 k log2(n) statements, and the good ones land.
 */
static int send_rows(mt_sink *s, batch *b, bool groups, int64_t hour, const rowset *rs, size_t lo,
                     size_t hi)
{
    if (lo >= hi) return MT_OK;
    int rc;
    if (b->careful && (rc = mt_pg_exec(s->pg, "SAVEPOINT row_group", 0, NULL))) return rc;
    rc = exec_rows(b, s->pg, groups, hour, rs, lo, hi);
    if (!rc && b->careful) rc = mt_pg_exec(s->pg, "RELEASE SAVEPOINT row_group", 0, NULL);
    if (!rc) {
        b->sent += hi - lo;
        return MT_OK;
    }
    char st[6], msg[512];
    if (!b->careful || !refused(s->pg, &rc, st, msg, sizeof msg)) return rc;
    if (hi - lo == 1) return hold_row(b, groups, hour, rs, lo, st, msg);
    size_t mid = lo + (hi - lo) / 2;
    rc = send_rows(s, b, groups, hour, rs, lo, mid);
    return rc ? rc : send_rows(s, b, groups, hour, rs, mid, hi);
}

/*
 * The month partition of the hourly summaries that holds the hour, made
 * when missing: a backfilled hour may be older than the months kept ahead.
 */
static int summary_month(mt_sink *s, int64_t hour)
{
    char h[24];
    snprintf(h, sizeof h, "%lld", (long long)hour);
    const char *p[] = {h};
    return mt_pg_exec(
        s->pg, "SELECT monitoring.summary_partitions(to_timestamp($1::bigint * 3600))", 1, p);
}

/* Upsert one hour's rows (inside the caller's transaction); rows refused are held back. */
static int deliver_hour(mt_sink *s, batch *b, int64_t hour)
{
    int rc = summary_month(s, hour);
    for (int kind = 0; kind < 2 && !rc; kind++) {
        bool groups = kind == 0;
        rows r = {.s = s};
        rc = mt_engine_rollups(s->e, hour, hour + 1, groups, groups ? on_group : on_series, &r);
        if (!rc) rc = rowset_rc(&r.ok);
        if (!rc) rc = rowset_rc(&r.bad);
        if (!rc) rc = send_rows(s, b, groups, hour, &r.ok, 0, r.ok.n);
        for (size_t i = 0; !rc && i < r.bad.n; i++)
            rc = hold_row(b, groups, hour, &r.bad, i, "", r.bad.why[i]);
        b->skipped += r.skipped;
        rowset_free(&r.ok);
        rowset_free(&r.bad);
    }
    return rc;
}

/*
 * Send one stored or built row (an alert, or a record queued again); a
 * permanent refusal in careful mode holds it back with refusals. *landed
 * says whether it is in PostgreSQL once the batch commits.
 */
static int send_one(mt_sink *s, batch *b, uint8_t table, int64_t hour, const char *natural, int n,
                    const char *const *params, uint32_t refusals, bool fresh, bool *landed)
{
    int nsql;
    const char *sql = mt__sink_statement(table, &nsql);
    *landed = false;
    if (!sql || nsql != n) return MT_EINVAL;
    int rc;
    if (b->careful && (rc = mt_pg_exec(s->pg, "SAVEPOINT row_group", 0, NULL))) return rc;
    rc = mt_pg_exec(s->pg, sql, n, params);
    if (!rc && b->careful) rc = mt_pg_exec(s->pg, "RELEASE SAVEPOINT row_group", 0, NULL);
    if (!rc) {
        b->sent++;
        *landed = true;
        return MT_OK;
    }
    char st[6], msg[512];
    if (!b->careful || !refused(s->pg, &rc, st, msg, sizeof msg)) return rc;
    return hold(b, table, hour, natural, n, params, st, msg, refusals, fresh);
}

/* A record queued again (metron sink quarantine retry): its row, sent as it was kept. */
static int deliver_held(mt_sink *s, batch *b, const char *key, size_t klen)
{
    if (klen != MT_QUAR_KEY_LEN) return MT_OK; /* not a record key: nothing to send */
    void *val;
    size_t vlen;
    int rc = mt_engine_state_get(s->e, key, klen, &val, &vlen);
    if (rc == MT_ENOTFOUND) return MT_OK; /* it left the quarantine since */
    if (rc) return rc;
    mt_quar_row r;
    bool landed = false;
    if (mt_quar_decode(val, vlen, &r)) {
        b->skipped++; /* unreadable: kept, listed as such, never sent */
    } else {
        if (r.table == MT_QUAR_GROUPS || r.table == MT_QUAR_SERIES) rc = summary_month(s, r.hour);
        if (!rc)
            rc = send_one(s, b, r.table, r.hour, r.natural, r.nparams, r.params, r.refusals + 1,
                          false, &landed);
        if (!rc && landed) rc = ops_add(b, (const uint8_t *)key, NULL, 0, false);
    }
    free(val);
    return rc;
}

static int deliver_alert(mt_sink *s, batch *b, const char *key, size_t klen)
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
    if (rc) {
        b->skipped++; /* an unreadable record is not retried for ever */
        free(r);
        return MT_OK;
    }
    const mt_alert_rule *ru = &r->rule;
    const char *why = NULL;
    if (!mt_tenant_uuid_valid_n(ru->id, strlen(ru->id)))
        why = "metron: the rule id is not a UUID";
    else if (!r->alert_id[0])
        why = "metron: the alert has no id";
    else if (ru->business_id[0] &&
             !mt_tenant_uuid_valid_n(ru->business_id, strlen(ru->business_id)))
        why = "metron: the rule's business_id is not a UUID";
    else if (r->business_id[0] && !mt_tenant_uuid_valid_n(r->business_id, strlen(r->business_id)))
        why = "metron: the series' business_id is not a UUID";
    static const char *const conds[] = {"threshold", "trend", "anomaly"};
    static const char *const statuses[] = {"active", "active", "acknowledged", "resolved",
                                           "suppressed"};
    char warn[32], crit[32], value[32], thr[32], resolved[32], notified[32], count[16], trig[32],
        msg[1700], natural[1400];
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
    snprintf(natural, sizeof natural, "alert=%s rule=%s series=%s", r->alert_id, ru->name,
             r->series);
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
    bool landed = false;
    if (why)
        rc = hold(b, MT_QUAR_ALERTS, 0, natural, 21, params, "", why, 1, true);
    else
        rc = send_one(s, b, MT_QUAR_ALERTS, 0, natural, 21, params, 1, true, &landed);
    if (!rc && landed) { /* an older refusal of the same alert is over */
        uint8_t qk[MT_QUAR_KEY_LEN];
        mt_quar_key(MT_QUAR_ALERTS, 0, natural, qk);
        rc = ops_add(b, qk, NULL, 0, true);
    }
    free(r);
    return rc;
}

/*
 * One delivery of an alert (alert/mt_alerting.h: 'N', the alert's id, the
 * record as JSON) appended to its notifications_sent, unless it holds that
 * record already (an outbox entry replayed after a crash appends nothing).
 * An alert without a row (not mirrored) takes nothing. In careful mode a
 * record PostgreSQL refuses is dropped (counted skipped): it is a log of
 * deliveries, never worth holding the batch.
 */
static const char append_note[] =
    "UPDATE monitoring.alerts SET notifications_sent = coalesce(notifications_sent, '[]'::jsonb)"
    " || jsonb_build_array($2::jsonb) WHERE id = $1::uuid"
    " AND NOT coalesce(notifications_sent, '[]'::jsonb) @> jsonb_build_array($2::jsonb)";

static int deliver_note(mt_sink *s, batch *b, const char *data, size_t len)
{
    if (len < 38 || data[0] != 'N' || !mt_tenant_uuid_valid_n(data + 1, 36)) {
        b->skipped++; /* not a record alerting.c wrote */
        return MT_OK;
    }
    char id[37], *json = malloc(len - 36);
    if (!json) return -ENOMEM;
    memcpy(id, data + 1, 36);
    id[36] = '\0';
    memcpy(json, data + 37, len - 37);
    json[len - 37] = '\0';
    const char *params[] = {id, json};
    int rc = b->careful ? mt_pg_exec(s->pg, "SAVEPOINT row_group", 0, NULL) : MT_OK;
    if (!rc) rc = mt_pg_exec(s->pg, append_note, 2, params);
    if (!rc && b->careful) rc = mt_pg_exec(s->pg, "RELEASE SAVEPOINT row_group", 0, NULL);
    char st[6], msg[512];
    if (rc && b->careful && refused(s->pg, &rc, st, msg, sizeof msg)) {
        mt_log(MT_LOG_WARN,
               "msg=\"sink dropped a delivery record PostgreSQL refused\" alert_id=%s "
               "sqlstate=%s",
               id, st);
        b->skipped++;
    }
    free(json);
    return rc;
}

/*
 * A deletion (mt_engine_delete), before the batch's hours. A tenant: every row of it that
 * Metron writes goes (summaries of hours and minutes, raw rows Metron sent, security events,
 * KPIs, alerts); metrics_minute_all has no tenant column and keeps its totals. An hour: its
 * summary rows go, and deliver_hour puts back what its rollups hold now.
 */
static const char *const delete_tenant[] = {
    "DELETE FROM monitoring.hourly_metrics_summary WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.series_hourly_summary WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.metrics_minute WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.series_minute WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.performance_metrics WHERE business_id = $1::uuid"
    " AND source_schema = 'metron'",
    "DELETE FROM monitoring.security_events WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.business_metrics WHERE business_id = $1::uuid",
    "DELETE FROM monitoring.alerts WHERE business_id = $1::uuid",
};

/* The text of a UUID's 16 bytes (out: 37 bytes). */
static void uuid_text(const uint8_t *u, char *out)
{
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        o += (size_t)snprintf(out + o, 37 - o, "%02x", u[i]);
    }
}

#define IN_HOUR(col)                                                                               \
    col " >= to_timestamp($1::bigint * 3600) AND " col " < to_timestamp(($1::bigint + 1) * 3600)"
/* The rows of an hour that a range delete replaces: its summaries, hourly and by minute, and
   the raw rows Metron sent (the minute mirror sends again those of the series left). */
static const char *const hour_rows[] = {
    "DELETE FROM monitoring.hourly_metrics_summary WHERE " IN_HOUR("hour_bucket"),
    "DELETE FROM monitoring.series_hourly_summary WHERE " IN_HOUR("hour_bucket"),
    "DELETE FROM monitoring.metrics_minute WHERE " IN_HOUR("minute_bucket"),
    "DELETE FROM monitoring.series_minute WHERE " IN_HOUR("minute_bucket"),
    "DELETE FROM monitoring.performance_metrics WHERE source_schema = 'metron' AND " IN_HOUR(
        "collected_at"),
};
#define N_HOUR_ROWS (sizeof hour_rows / sizeof *hour_rows)

/* Delete an hour's rows (hour_rows) of one tenant (bid), of none ("") or of all (NULL). */
static int delete_hour_rows(mt_sink *s, const char *hour, const char *bid)
{
    int rc = MT_OK;
    for (size_t k = 0; !rc && k < N_HOUR_ROWS; k++) {
        char sql[512];
        snprintf(sql, sizeof sql, "%s%s", hour_rows[k],
                 !bid   ? ""
                 : *bid ? " AND business_id = $2::uuid"
                        : " AND business_id IS NULL");
        const char *p[] = {hour, bid};
        rc = mt_pg_exec(s->pg, sql, bid && *bid ? 2 : 1, p);
    }
    return rc;
}

/*
 * An hour of a range delete (MT_DELETE_HOUR_OF): only the rows of the tenants its series
 * belong to go (and, with the flag, the rows without a tenant); deliver_hour puts back what
 * this node's rollups hold now, and the minute mirror what its minutes hold (redo_minutes).
 * Other nodes' tenants share the hour in this database.
 */
static int delete_hour_of(mt_sink *s, const uint8_t *d, size_t len)
{
    int64_t hour;
    memcpy(&hour, d + 1, 8);
    char h[32], bid[37];
    snprintf(h, sizeof h, "%lld", (long long)hour);
    int rc = d[9] ? delete_hour_rows(s, h, "") : MT_OK;
    for (size_t at = 10; !rc && at + 16 <= len; at += 16) {
        uuid_text(d + at, bid);
        rc = delete_hour_rows(s, h, bid);
    }
    return rc;
}

/* After the COMMIT of a batch: the minutes of its range deletes' hours are computed again. */
static int redo_minutes(mt_sink *s, const batch *b)
{
    if (!s->opt.touch) return MT_OK;
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < b->nd; i++) {
        const char *d = b->dels[i];
        if (d[0] != MT_DELETE_HOUR && d[0] != MT_DELETE_HOUR_OF) continue;
        int64_t hour;
        memcpy(&hour, d + 1, 8);
        rc = mt_engine_floor_lower(s->e, hour * MT_HOUR_NS);
        for (int k = 0; !rc && k < 60; k++)
            s->opt.touch(s->opt.touch_ud, hour * MT_HOUR_NS + k * MT_MINUTE_NS);
    }
    return rc;
}

static int deliver_delete(mt_sink *s, const char *d, size_t len)
{
    char arg[64];
    if (d[0] == MT_DELETE_HOUR_OF) return delete_hour_of(s, (const uint8_t *)d, len);
    if (d[0] == MT_DELETE_HOUR) { /* an entry of an older build: every tenant's rows */
        int64_t hour;
        memcpy(&hour, d + 1, 8);
        snprintf(arg, sizeof arg, "%lld", (long long)hour);
        return delete_hour_rows(s, arg, NULL);
    }
    if (len != 17) return MT_OK;
    uuid_text((const uint8_t *)d + 1, arg); /* the UUID's bytes (mt_delete.c) */
    const char *p[] = {arg};
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < sizeof delete_tenant / sizeof *delete_tenant; i++)
        rc = mt_pg_exec(s->pg, delete_tenant[i], 1, p);
    if (!rc) mt_log(MT_LOG_INFO, "msg=\"sink deleted a tenant's rows\" business_id=%s", arg);
    return rc;
}

/* ---- the loop --------------------------------------------------------------------------- */

/* Keep one copy of each key of a kind (queued twice: once is the same). */
static int keep_key(char **keys, size_t *lens, size_t *n, const void *k, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (lens[i] == len && !memcmp(keys[i], k, len)) return MT_OK;
    if (!(keys[*n] = malloc(len ? len : 1))) return -ENOMEM;
    memcpy(keys[*n], k, len);
    lens[(*n)++] = len;
    return MT_OK;
}

static int on_entry(void *ud, const mt_outbox_entry *en)
{
    batch *b = ud;
    b->last_seq = en->seq;
    if (en->kind == MT_OUTBOX_ALERT) return keep_key(b->alerts, b->alen, &b->na, en->data, en->len);
    if (en->kind == MT_OUTBOX_QUARANTINE)
        return keep_key(b->held, b->hlen, &b->nh, en->data, en->len);
    if (en->kind == MT_OUTBOX_NOTIFICATION)
        return keep_key(b->notes, b->nlen, &b->nn, en->data, en->len);
    const uint8_t *d = en->data;
    bool replace = en->kind == MT_OUTBOX_DELETE &&
                   ((en->len == 9 && d[0] == MT_DELETE_HOUR) ||
                    (en->len >= 10 && (en->len - 10) % 16 == 0 && d[0] == MT_DELETE_HOUR_OF));
    if (en->kind == MT_OUTBOX_DELETE && !replace)
        return en->len == 17 && d[0] == MT_DELETE_TENANT
                   ? keep_key(b->dels, b->dlen, &b->nd, en->data, en->len)
                   : MT_OK;
    if (replace) { /* the hour's rows go, then come back from its rollups as they are now */
        int rc = keep_key(b->dels, b->dlen, &b->nd, en->data, en->len);
        if (rc) return rc;
        d++;
    } else if (en->kind != MT_OUTBOX_HOUR || en->len != 8) {
        return MT_OK; /* not ours: acknowledged */
    }
    int64_t hour;
    memcpy(&hour, d, 8);
    for (size_t i = 0; i < b->n; i++)
        if (b->hours[i] == hour) return MT_OK; /* queued twice: once is the same */
    b->hours[b->n++] = hour;
    return MT_OK;
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->na; i++) free(b->alerts[i]);
    for (size_t i = 0; i < b->nh; i++) free(b->held[i]);
    for (size_t i = 0; i < b->nn; i++) free(b->notes[i]);
    for (size_t i = 0; i < b->nd; i++) free(b->dels[i]);
    for (int c = 0; c < NCOLS; c++) free(b->par[c].p);
    ops_clear(b);
    free(b->ops);
}

/*
 * One try at the batch in one transaction: records queued again first
 * (their values may be older), then the hours, then the alerts. Careful
 * mode also makes deferred constraints immediate, so that a refusal is
 * met at its statement, under its savepoint, never at COMMIT.
 */
static int send_batch(mt_sink *s, batch *b)
{
    ops_clear(b);
    b->sent = b->skipped = 0;
    int rc = mt_pg_exec(s->pg, "BEGIN", 0, NULL);
    if (!rc && b->careful) rc = mt_pg_exec(s->pg, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL);
    for (size_t i = 0; !rc && i < b->nd; i++) rc = deliver_delete(s, b->dels[i], b->dlen[i]);
    for (size_t i = 0; !rc && i < b->nh; i++) rc = deliver_held(s, b, b->held[i], b->hlen[i]);
    for (size_t i = 0; !rc && i < b->n; i++) rc = deliver_hour(s, b, b->hours[i]);
    for (size_t i = 0; !rc && i < b->na; i++) rc = deliver_alert(s, b, b->alerts[i], b->alen[i]);
    /* after the alerts: a record's alert row is in this batch or an earlier one */
    for (size_t i = 0; !rc && i < b->nn; i++) rc = deliver_note(s, b, b->notes[i], b->nlen[i]);
    if (!rc) rc = mt_pg_exec(s->pg, "COMMIT", 0, NULL);
    return rc;
}

typedef struct clear_ctx {
    batch *b;
    int rc;
} clear_ctx;

/* A record of an hour just delivered: its row now either landed or was held again. */
static int on_stale(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    clear_ctx *x = ud;
    if (klen != MT_QUAR_KEY_LEN) return MT_OK;
    for (size_t i = 0; i < x->b->nops; i++)
        if (x->b->ops[i].fresh && x->b->ops[i].val && !memcmp(x->b->ops[i].key, key, klen))
            return MT_OK; /* refused again now */
    return x->rc = ops_add(x->b, key, NULL, 0, true);
}

/*
 * After COMMIT: the hours just sent were read as they are now, so each
 * record of theirs that this batch did not hold again is over (the row
 * landed with its current values, or no longer exists). Then the changes
 * and the acknowledgement, in one engine transaction.
 */
static int settle(mt_sink *s, batch *b)
{
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < b->n; i++)
        for (int t = 0; !rc && t < 2; t++) {
            uint8_t prefix[10] = {'Q', t ? MT_QUAR_SERIES : MT_QUAR_GROUPS};
            for (int k = 0; k < 8; k++)
                prefix[2 + k] = (uint8_t)((uint64_t)b->hours[i] >> (56 - 8 * k));
            clear_ctx x = {b, MT_OK};
            rc = mt_engine_state_scan(s->e, prefix, sizeof prefix, on_stale, &x);
            if (!rc) rc = x.rc;
        }
    mt_state_op *ops = rc ? NULL : malloc((b->nops ? b->nops : 1) * sizeof *ops);
    if (!rc && !ops) rc = -ENOMEM;
    for (size_t i = 0; !rc && i < b->nops; i++)
        ops[i] = (mt_state_op){b->ops[i].key, MT_QUAR_KEY_LEN, b->ops[i].val, b->ops[i].vlen, 0};
    if (!rc) rc = mt_engine_state_apply(s->e, ops, b->nops, b->last_seq, NULL);
    free(ops);
    return rc;
}

/* s on one logfmt line: line breaks (PostgreSQL's DETAIL) as spaces, quotes as '. */
static void flat(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        out[n++] = *s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s == '"' ? '\'' : *s;
    out[n] = '\0';
}

/* One log line per row held back (rate-limited: a schema change can refuse thousands). */
static void log_held(mt_sink *s, const batch *b, uint64_t *held)
{
    for (size_t i = 0; i < b->nops; i++) {
        mt_quar_row r;
        if (!b->ops[i].val || mt_quar_decode(b->ops[i].val, b->ops[i].vlen, &r)) continue;
        (*held)++;
        char key[512], why[600];
        flat(r.natural, key, sizeof key);
        flat(r.reason, why, sizeof why);
        mt_log_limited(&s->held_log, 10, MT_LOG_WARN,
                       "msg=\"sink quarantined a row PostgreSQL does not take; the rest of its "
                       "batch landed\" table=%s key=\"%s\" sqlstate=%s reason=\"%s\" refusals=%u",
                       mt_quar_table_name(r.table), key, r.sqlstate[0] ? r.sqlstate : "-", why,
                       r.refusals);
    }
}

/* Log on a change of state only: a PostgreSQL down for an hour is one line, not thousands. */
static void state(mt_sink *s, int to, const char *what)
{
    if (s->state == to) return;
    s->state = to;
    if (to == 1) {
        char server[300] = "";
        if (s->pg) mt_pg_server_name(s->pg, server, sizeof server);
        mt_log(MT_LOG_INFO, "msg=\"sink connected to PostgreSQL\" server=%s", server);
    } else
        mt_log(MT_LOG_WARN,
               "msg=\"%s; the outbox keeps every row, retrying with backoff\" err=\"%s\"",
               to == 2 ? "sink cannot reach PostgreSQL" : "PostgreSQL refused a sink batch", what);
}

/* Sleep ns unless stopped; true when stopping. */
static bool nap(mt_sink *s, int64_t ns)
{
    return mt_worker_nap(&s->w, ns);
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
    pthread_mutex_lock(&s->w.lock);
    s->st.connects++;
    pthread_mutex_unlock(&s->w.lock);
    state(s, 1, "");
    return true;
}

/* One retention pass (mt_pgretain.h), logged when it removed something. */
static void retain(mt_sink *s)
{
    mt_pgretain_result r;
    pthread_mutex_lock(&s->w.lock); /* a copy: a reload may replace it during the pass */
    mt_pgretain keep = s->retain;
    pthread_mutex_unlock(&s->w.lock);
    mt_pgretain_apply(s->pg, &keep, &r);
    char line[512];
    size_t n = 0;
    for (int i = 0; i < MT_PGR_NTABLES && n < sizeof line; i++)
        if (r.removed[i] > 0)
            n += (size_t)snprintf(line + n, sizeof line - n, " %s=%lld", mt_pgretain_name(i),
                                  (long long)r.removed[i]);
    if (n)
        mt_log(MT_LOG_INFO,
               "msg=\"PostgreSQL retention applied (partitions dropped; alerts: resolved rows "
               "deleted)\"%s",
               line);
}

static void *sink_main(void *arg)
{
    mt_sink *s = arg;
    int64_t backoff = 0;
    uint64_t seed = (uint64_t)mt_now_ns();
    size_t held_now = 0;
    if (mt_quar_count(s->e, &held_now) == MT_OK) {
        pthread_mutex_lock(&s->w.lock);
        s->st.quarantine_held = held_now;
        pthread_mutex_unlock(&s->w.lock);
    }
    for (;;) {
        pthread_mutex_lock(&s->w.lock);
        bool stop = s->w.stop;
        pthread_mutex_unlock(&s->w.lock);
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
            pthread_mutex_lock(&s->w.lock);
            bool retaining = s->opt.retain != NULL;
            pthread_mutex_unlock(&s->w.lock);
            if (retaining && s->opt.retain_every_ns > 0 &&
                (!s->retained_ns || mt_now_ns() - s->retained_ns >= s->opt.retain_every_ns)) {
                retain(s); /* a failure is logged per table and tried at the next pass */
                s->retained_ns = mt_now_ns();
            }
            batch b = {0};
            size_t max = s->opt.batch_hours < 256 ? s->opt.batch_hours : 256;
            rc = mt_engine_outbox_peek(s->e, max, on_entry, &b);
            idle = !rc && !b.last_seq;
            if (!rc && !idle) {
                rc = send_batch(s, &b);
                /* refused for good: the batch again, each statement under a savepoint, so
                   the refused rows are found and held back and the rest lands */
                if (rc == MT_EPG && mt_quar_permanent(mt_pg_sqlstate(s->pg)) && mt_pg_ok(s->pg)) {
                    mt_pg_abort(s->pg);
                    b.careful = true;
                    rc = send_batch(s, &b);
                }
                if (rc == MT_EPG) state(s, mt_pg_ok(s->pg) ? 3 : 2, mt_pg_errmsg(s->pg));
                if (rc) mt_pg_abort(s->pg);
            }
            /* committed: now, and only now, the entries may go, with what the COMMIT
               decided about the quarantine */
            if (!rc && !idle) rc = redo_minutes(s, &b);
            if (!rc && !idle) rc = settle(s, &b);
            uint64_t held = 0;
            if (!rc && !idle) log_held(s, &b, &held);
            size_t counted;
            if (!rc && b.nops && mt_quar_count(s->e, &counted) == MT_OK) held_now = counted;
            pthread_mutex_lock(&s->w.lock);
            if (!rc && !idle) {
                s->st.rows_delivered += b.sent;
                s->st.hours_delivered += b.n;
                s->st.rows_skipped += b.skipped;
                s->st.rows_quarantined += held;
                if (b.nops) s->st.quarantine_held = held_now;
            }
            pthread_mutex_unlock(&s->w.lock);
            batch_free(&b);
            if (!rc && !idle) state(s, 1, "");
            /* the connection is gone, or its server no longer takes writes (a demoted or
               fenced primary: 25006, 57P0x): a new one, which target_session_attrs=read-write
               gives to the primary of the moment; the same batch is sent again there */
            if (rc && s->pg && mt_pg_stale(s->pg)) {
                mt_pg_close(s->pg);
                s->pg = NULL;
            }
        }
        pthread_mutex_lock(&s->w.lock);
        s->st.connected = s->pg != NULL && rc != MT_EPG;
        pthread_mutex_unlock(&s->w.lock);
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
            pthread_mutex_lock(&s->w.lock);
            s->st.failures++;
            pthread_mutex_unlock(&s->w.lock);
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
    if (opt->retain) {
        s->retain = *opt->retain;
        s->opt.retain = &s->retain;
    }
    int rc = mt_worker_init(&s->w);
    if (!rc && (rc = mt_worker_start(&s->w, sink_main, s))) mt_worker_destroy(&s->w);
    if (rc) {
        free(s->conninfo);
        free(s);
        return rc;
    }
    *out = s;
    return MT_OK;
}

void mt_sink_stop(mt_sink *s)
{
    if (!s) return;
    mt_worker_stop(&s->w);
    mt_pg_close(s->pg);
    mt_worker_destroy(&s->w);
    free(s->conninfo);
    free(s);
}

void mt_sink_set_retain(mt_sink *s, const mt_pgretain *retain)
{
    if (!s) return;
    pthread_mutex_lock(&s->w.lock);
    if (retain) s->retain = *retain;
    s->opt.retain = retain ? &s->retain : NULL;
    pthread_mutex_unlock(&s->w.lock);
}

void mt_sink_stats_get(mt_sink *s, mt_sink_stats *out)
{
    pthread_mutex_lock(&s->w.lock);
    *out = s->st;
    pthread_mutex_unlock(&s->w.lock);
    int64_t oldest = 0;
    if (mt_engine_outbox_stats(s->e, &out->outbox_depth, &oldest) == MT_OK && oldest)
        out->oldest_age_s = (double)(mt_now_ns() - oldest) / 1e9;
}

const char *mt__sink_statement(uint8_t table, int *n)
{
    switch (table) {
    case MT_QUAR_GROUPS: *n = 11; return upsert_groups;
    case MT_QUAR_SERIES: *n = 13; return upsert_series;
    case MT_QUAR_ALERTS: *n = 21; return upsert_alert;
    default: *n = 0; return NULL;
    }
}
