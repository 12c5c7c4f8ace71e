/* mt_pgstat.c — PostgreSQL's statistics as line protocol (mt_pgstat.h). */
#include "mt_pgstat.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    C_CALLS,
    C_TOTAL,
    C_ROWS,
    C_HIT,
    C_READ,
    C_DIRTIED,
    C_WRITTEN,
    C_LHIT,
    C_LREAD,
    C_TREAD,
    C_TWRITTEN,
    C_BREAD,
    C_BWRITE,
    NCOUNTERS
};

static const char *const counter_names[NCOUNTERS] = {"calls",
                                                     "total_exec_ms",
                                                     "rows",
                                                     "shared_blks_hit",
                                                     "shared_blks_read",
                                                     "shared_blks_dirtied",
                                                     "shared_blks_written",
                                                     "local_blks_hit",
                                                     "local_blks_read",
                                                     "temp_blks_read",
                                                     "temp_blks_written",
                                                     "blk_read_ms",
                                                     "blk_write_ms"};

typedef struct stmt {
    char key[96]; /* dbid/userid/queryid */
    double c[NCOUNTERS];
    double d[NCOUNTERS]; /* this interval */
    double max_ms, stddev_ms;
    int64_t queryid;
    char db[64];
    char query[1024];
} stmt;

struct mt_pgstat {
    char server[256], business_id[64], host[256];
    size_t top;
    bool this_db_only;
    stmt *prev, *cur;
    size_t nprev, ncur, capcur;
    bool baseline; /* a first collection was made */
    mt_pgstat_stmt *tops;
    size_t ntops;
    mt_pgstat_health health;
    int64_t prev_deadlocks;
    bool have_deadlocks;
};

int mt_pgstat_new(const mt_pgstat_options *opt, mt_pgstat **out)
{
    mt_pgstat *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    snprintf(s->server, sizeof s->server, "%s", opt && opt->server ? opt->server : "postgres");
    if (opt && opt->business_id)
        snprintf(s->business_id, sizeof s->business_id, "%s", opt->business_id);
    if (opt && opt->host)
        snprintf(s->host, sizeof s->host, "%s", opt->host);
    else /* host:port/db */
        snprintf(s->host, sizeof s->host, "%.*s", (int)strcspn(s->server, ":/"), s->server);
    s->top = opt && opt->top ? opt->top : 20;
    s->this_db_only = opt && opt->this_db_only;
    *out = s;
    return MT_OK;
}

void mt_pgstat_free(mt_pgstat *s)
{
    if (!s) return;
    free(s->prev);
    free(s->cur);
    free(s->tops);
    free(s);
}

const mt_pgstat_stmt *mt_pgstat_top(const mt_pgstat *s, size_t *n)
{
    *n = s->ntops;
    return s->tops;
}

/* ---- line protocol out ----------------------------------------------------------------- */

typedef struct out {
    char **buf;
    size_t *len, *cap;
    int rc;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt, ...)
{
    for (int tries = 0; !o->rc && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(*o->buf ? *o->buf + *o->len : NULL, *o->buf ? *o->cap - *o->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->rc = MT_EINVAL;
            return;
        }
        if (*o->buf && (size_t)n < *o->cap - *o->len) {
            *o->len += (size_t)n;
            return;
        }
        size_t cap = (*o->cap ? *o->cap * 2 : 65536) + (size_t)n;
        char *b = realloc(*o->buf, cap);
        if (!b) {
            o->rc = -ENOMEM;
            return;
        }
        *o->buf = b;
        *o->cap = cap;
    }
}

/* A tag value, escaped for line protocol (comma, space, equals sign). */
static void tag(out *o, const char *key, const char *v)
{
    put(o, ",%s=", key);
    for (const char *p = *v ? v : "none"; *p; p++) {
        if (*p == ',' || *p == ' ' || *p == '=' || *p == '\\') put(o, "\\");
        if (*p == '\n' || *p == '\r')
            put(o, "\\ ");
        else
            put(o, "%c", *p);
    }
}

static void head(out *o, const mt_pgstat *s, const char *measurement, const char *db)
{
    put(o, "%s", measurement);
    if (s->business_id[0]) tag(o, "business_id", s->business_id);
    if (db) tag(o, "db", db);
    tag(o, "server", s->server);
}

/* ---- statements --------------------------------------------------------------------------- */

typedef struct reading {
    mt_pgstat *s;
    int rc;
} reading;

static int on_stmt(void *ud, int ncols, const char *const *v)
{
    mt_pgstat *s = ud;
    if (ncols != 20) return MT_EINVAL;
    if (s->ncur == s->capcur) {
        size_t cap = s->capcur ? s->capcur * 2 : 256;
        stmt *n = realloc(s->cur, cap * sizeof *n);
        if (!n) return -ENOMEM;
        s->cur = n;
        s->capcur = cap;
    }
    stmt *st = &s->cur[s->ncur++];
    memset(st, 0, sizeof *st);
    snprintf(st->key, sizeof st->key, "%s/%s/%s", v[0], v[1], v[2]);
    st->queryid = strtoll(v[2], NULL, 10);
    snprintf(st->db, sizeof st->db, "%s", v[3] ? v[3] : "");
    snprintf(st->query, sizeof st->query, "%s", v[4] ? v[4] : "");
    for (int k = 0; k < NCOUNTERS; k++) st->c[k] = v[5 + k] ? strtod(v[5 + k], NULL) : 0;
    st->max_ms = v[18] ? strtod(v[18], NULL) : 0;
    st->stddev_ms = v[19] ? strtod(v[19], NULL) : 0;
    return MT_OK;
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const stmt *)a)->key, ((const stmt *)b)->key);
}

static int by_delta_time(const void *a, const void *b)
{
    double x = ((const stmt *)a)->d[C_TOTAL], y = ((const stmt *)b)->d[C_TOTAL];
    return (x < y) - (x > y);
}

/*
 * The collector's own statements carry this marker, and the ranking leaves
 * them out: on a quiet server the reads of pg_stat_statements and
 * pg_stat_activity (tens of milliseconds each) would otherwise be its top
 * statements, reported as the server's own workload.
 */
#define SELF_MARK "/* metron-pgstat */ "

static int self_rows(mt_pg *pg, const char *sql, int (*fn)(void *, int, const char *const *),
                     void *ud)
{
    size_t n = strlen(SELF_MARK) + strlen(sql) + 1;
    char *marked = malloc(n);
    if (!marked) return -ENOMEM;
    snprintf(marked, n, "%s%s", SELF_MARK, sql);
    int rc = mt_pg_query_rows(pg, marked, 0, NULL, fn, ud);
    free(marked);
    return rc;
}

typedef struct value_out {
    char *text;
    size_t cap;
} value_out;

static int one_value(void *ud, int ncols, const char *const *v)
{
    value_out *o = ud;
    if (ncols >= 1 && v[0]) snprintf(o->text, o->cap, "%s", v[0]);
    return MT_OK;
}

static int self_value(mt_pg *pg, const char *sql, char *text, size_t cap)
{
    value_out o = {text, cap};
    text[0] = '\0';
    return self_rows(pg, sql, one_value, &o);
}

static int statements(mt_pgstat *s, mt_pg *pg, int version, out *o, int64_t now)
{
    char have[8];
    int rc =
        self_value(pg, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
                   have, sizeof have);
    if (rc || !strcmp(have, "0")) return rc; /* not installed: nothing to read */
    /* PostgreSQL 17 renamed the block times */
    const char *bt = version >= 170000 ? "shared_blk_read_time, shared_blk_write_time"
                                       : "blk_read_time, blk_write_time";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT s.dbid::text, s.userid::text, s.queryid::text, d.datname, left(s.query, 1000),"
             " s.calls, s.total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read,"
             " s.shared_blks_dirtied, s.shared_blks_written, s.local_blks_hit, s.local_blks_read,"
             " s.temp_blks_read, s.temp_blks_written, %s, s.max_exec_time, s.stddev_exec_time"
             " FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid"
             " WHERE s.queryid IS NOT NULL AND left(s.query, %zu) <> '%s'%s",
             bt, strlen(SELF_MARK), SELF_MARK,
             s->this_db_only ? " AND d.datname = current_database()" : "");
    s->ncur = 0;
    if ((rc = self_rows(pg, sql, on_stmt, s))) return rc;
    qsort(s->cur, s->ncur, sizeof *s->cur, by_key);
    /* deltas against the previous reading; a counter that went down counts from zero */
    for (size_t i = 0; i < s->ncur; i++) {
        stmt *c = &s->cur[i];
        const stmt *p = s->nprev ? bsearch(c, s->prev, s->nprev, sizeof *c, by_key) : NULL;
        for (int k = 0; k < NCOUNTERS; k++)
            c->d[k] = p && c->c[k] >= p->c[k] ? c->c[k] - p->c[k] : c->c[k];
    }
    bool emit = s->baseline;
    /* keep this reading, sorted by key, for the next deltas */
    stmt *keep = malloc((s->ncur ? s->ncur : 1) * sizeof *keep);
    if (!keep) return -ENOMEM;
    if (s->ncur) memcpy(keep, s->cur, s->ncur * sizeof *keep);
    free(s->prev);
    s->prev = keep;
    s->nprev = s->ncur;
    s->ntops = 0;
    if (!emit) return MT_OK;
    qsort(s->cur, s->ncur, sizeof *s->cur, by_delta_time);
    double other[NCOUNTERS] = {0};
    bool any_other = false;
    free(s->tops);
    s->tops = calloc(s->top ? s->top : 1, sizeof *s->tops);
    if (!s->tops) return -ENOMEM;
    size_t rank = 0;
    for (size_t i = 0; i < s->ncur; i++) {
        stmt *c = &s->cur[i];
        if (c->d[C_CALLS] <= 0) continue; /* not run in the interval */
        if (rank >= s->top) {
            for (int k = 0; k < NCOUNTERS; k++) other[k] += c->d[k];
            any_other = true;
            continue;
        }
        rank++;
        char qid[24], rk[24];
        snprintf(qid, sizeof qid, "%lld", (long long)c->queryid);
        snprintf(rk, sizeof rk, "%zu", rank);
        head(o, s, "pg_stmt", c->db);
        tag(o, "queryid", qid);
        tag(o, "rank", rk);
        put(o, " ");
        for (int k = 0; k < NCOUNTERS; k++)
            put(o, k == C_TOTAL || k >= C_BREAD ? "%s%s=%.6f" : "%s%s=%.0fi", k ? "," : "",
                counter_names[k], c->d[k]);
        put(o, ",mean_exec_ms=%.6f,max_exec_ms=%.6f,stddev_exec_ms=%.6f %lld\n",
            c->d[C_TOTAL] / c->d[C_CALLS], c->max_ms, c->stddev_ms, (long long)now);
        mt_pgstat_stmt *t = &s->tops[s->ntops++];
        t->queryid = c->queryid;
        snprintf(t->query, sizeof t->query, "%s", c->query);
        t->calls = (uint64_t)c->d[C_CALLS];
        t->total_ms = c->d[C_TOTAL];
        t->mean_ms = c->d[C_TOTAL] / c->d[C_CALLS];
        t->max_ms = c->max_ms;
        t->stddev_ms = c->stddev_ms;
        t->rows = (uint64_t)c->d[C_ROWS];
        t->shared_hit = (uint64_t)c->d[C_HIT];
        t->shared_read = (uint64_t)c->d[C_READ];
        t->shared_dirtied = (uint64_t)c->d[C_DIRTIED];
        t->shared_written = (uint64_t)c->d[C_WRITTEN];
    }
    if (any_other) {
        head(o, s, "pg_stmt", NULL);
        tag(o, "queryid", "other");
        put(o, " ");
        for (int k = 0; k < NCOUNTERS; k++)
            put(o, k == C_TOTAL || k >= C_BREAD ? "%s%s=%.6f" : "%s%s=%.0fi", k ? "," : "",
                counter_names[k], other[k]);
        put(o, " %lld\n", (long long)now);
    }
    return o->rc;
}

/* ---- the rest: one row, fields named as the columns ------------------------------------- */

typedef struct rowctx {
    mt_pgstat *s;
    out *o;
    const char *measurement;
    const char *const *fields; /* names of the columns after the tag columns */
    int ntags;                 /* leading columns that are tags: tag name from fields too */
    int64_t now;
} rowctx;

static int on_row(void *ud, int ncols, const char *const *v)
{
    rowctx *r = ud;
    out *o = r->o;
    bool any = false;
    for (int i = r->ntags; i < ncols; i++) any |= v[i] != NULL;
    if (!any) return MT_OK; /* no field: not a line */
    head(o, r->s, r->measurement, NULL);
    for (int i = 0; i < r->ntags && i < ncols; i++) tag(o, r->fields[i], v[i] ? v[i] : "");
    bool first = true;
    for (int i = r->ntags; i < ncols; i++) {
        if (!v[i]) continue;
        const char *name = r->fields[i];
        bool integer = name[strlen(name) - 1] == '#'; /* a name ending in # is an integer */
        put(o, "%s%.*s=%s%s", first ? " " : ",", (int)(strlen(name) - (integer ? 1 : 0)), name,
            v[i], integer ? "i" : "");
        first = false;
    }
    put(o, " %lld\n", (long long)r->now);
    return o->rc;
}

static int rows(mt_pgstat *s, mt_pg *pg, out *o, int64_t now, const char *m, int ntags,
                const char *const *fields, const char *sql)
{
    rowctx r = {s, o, m, fields, ntags, now};
    return self_rows(pg, sql, on_row, &r);
}

const mt_pgstat_health *mt_pgstat_last_health(const mt_pgstat *s)
{
    return &s->health;
}

static int on_health(void *ud, int ncols, const char *const *v)
{
    mt_pgstat_health *h = ud;
    if (ncols != 9) return MT_EINVAL;
    h->connections = atoi(v[0]);
    h->active = atoi(v[1]);
    h->idle = atoi(v[2]);
    h->max_connections = atoi(v[3]);
    h->locks_waiting = atoi(v[4]);
    h->deadlocks = v[5] ? strtoll(v[5], NULL, 10) : 0;
    h->cache_hit_ratio = v[6] ? strtod(v[6], NULL) : NAN;
    h->index_hit_ratio = v[7] ? strtod(v[7], NULL) : NAN;
    h->replication_lag_s = v[8] ? strtod(v[8], NULL) : NAN;
    return MT_OK;
}

static int health(mt_pgstat *s, mt_pg *pg)
{
    mt_pgstat_health h = {0};
    int rc = self_rows(
        pg,
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
        " (SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
        "   AND backend_type = 'client backend'),"
        " (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle'"
        "   AND backend_type = 'client backend'),"
        " current_setting('max_connections')::int,"
        " (SELECT count(*) FROM pg_locks WHERE NOT granted),"
        " (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()),"
        " (SELECT CASE WHEN blks_hit + blks_read > 0 THEN blks_hit::float8 / (blks_hit + blks_read)"
        "   END FROM pg_stat_database WHERE datname = current_database()),"
        " (SELECT CASE WHEN sum(idx_blks_hit + idx_blks_read) > 0"
        "   THEN sum(idx_blks_hit)::float8 / sum(idx_blks_hit + idx_blks_read) END"
        "   FROM pg_statio_user_indexes),"
        " (SELECT max(extract(epoch FROM replay_lag)) FROM pg_stat_replication)",
        on_health, &h);
    if (rc) return rc;
    int score = 100;
    if (!isnan(h.cache_hit_ratio))
        score -= h.cache_hit_ratio < 0.90 ? 20 : h.cache_hit_ratio < 0.99 ? 10 : 0;
    score -= h.locks_waiting * 5 > 20 ? 20 : h.locks_waiting * 5;
    if (s->have_deadlocks && h.deadlocks > s->prev_deadlocks) score -= 10;
    if (!isnan(h.replication_lag_s))
        score -= h.replication_lag_s > 30 ? 20 : h.replication_lag_s > 5 ? 10 : 0;
    if (h.max_connections && h.connections * 10 > h.max_connections * 8) score -= 10;
    h.score = score < 0 ? 0 : score;
    h.status = h.score >= 80 ? "healthy" : h.score >= 50 ? "warning" : "critical";
    s->prev_deadlocks = h.deadlocks;
    s->have_deadlocks = true;
    s->health = h;
    return MT_OK;
}

/* Append one element (quoted; NULL: SQL NULL) to a text array literal for unnest. */
static int arr_add(char **a, size_t *len, size_t *cap, const char *v)
{
    size_t need = *len + 2 * strlen(v ? v : "") + 8;
    if (need > *cap) {
        size_t c = *cap ? *cap * 2 : 4096;
        while (c < need) c *= 2;
        char *n = realloc(*a, c);
        if (!n) return -ENOMEM;
        *a = n;
        *cap = c;
    }
    char *p = *a + *len;
    *p++ = *len ? ',' : '{';
    if (!v) {
        memcpy(p, "NULL", 4);
        p += 4;
    } else {
        *p++ = '"';
        for (const char *c = v; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *len = (size_t)(p - *a);
    return MT_OK;
}

/* Close the literal: "}" after the elements, "{}" when there are none. */
static int arr_close(char **a, size_t *len, size_t *cap)
{
    if (*len + 3 > *cap) {
        char *n = realloc(*a, *len + 3);
        if (!n) return -ENOMEM;
        *a = n;
        *cap = *len + 3;
    }
    if (!*len) (*a)[(*len)++] = '{';
    (*a)[(*len)++] = '}';
    (*a)[*len] = '\0';
    return MT_OK;
}

int mt_pgstat_write(const mt_pgstat *s, mt_pg *sink, int64_t now)
{
    enum { QID, QUERY, CALLS, TOTAL, MEAN, MAX, STDDEV, ROWS, HIT, READ, DIRTIED, WRITTEN, NCOL };
    char *col[NCOL] = {0};
    size_t len[NCOL] = {0}, cap[NCOL] = {0};
    int rc = MT_OK;
    for (size_t i = 0; !rc && i < s->ntops; i++) {
        const mt_pgstat_stmt *t = &s->tops[i];
        char v[NCOL][32];
        snprintf(v[QID], 32, "%lld", (long long)t->queryid);
        snprintf(v[CALLS], 32, "%llu", (unsigned long long)t->calls);
        snprintf(v[TOTAL], 32, "%.6f", t->total_ms);
        snprintf(v[MEAN], 32, "%.6f", t->mean_ms);
        snprintf(v[MAX], 32, "%.6f", t->max_ms);
        snprintf(v[STDDEV], 32, "%.6f", t->stddev_ms);
        snprintf(v[ROWS], 32, "%llu", (unsigned long long)t->rows);
        snprintf(v[HIT], 32, "%llu", (unsigned long long)t->shared_hit);
        snprintf(v[READ], 32, "%llu", (unsigned long long)t->shared_read);
        snprintf(v[DIRTIED], 32, "%llu", (unsigned long long)t->shared_dirtied);
        snprintf(v[WRITTEN], 32, "%llu", (unsigned long long)t->shared_written);
        for (int k = 0; !rc && k < NCOL; k++)
            rc = arr_add(&col[k], &len[k], &cap[k], k == QUERY ? t->query : v[k]);
    }
    for (int k = 0; !rc && k < NCOL; k++) rc = arr_close(&col[k], &len[k], &cap[k]);
    char when[32], bid[64];
    snprintf(when, sizeof when, "%.9f", (double)now / 1e9);
    snprintf(bid, sizeof bid, "%s", s->business_id);
    const char *params[NCOL + 2] = {when, s->business_id[0] ? bid : NULL};
    for (int k = 0; k < NCOL; k++) params[2 + k] = col[k];
    if (!rc) rc = mt_pg_exec(sink, "BEGIN", 0, NULL);
    if (!rc && s->ntops)
        rc = mt_pg_exec(
            sink,
            "INSERT INTO monitoring.query_performance (business_id, query_id, query_hash,"
            " normalized_query, execution_count, total_exec_time, mean_exec_time, max_exec_time,"
            " stddev_exec_time, rows_processed, shared_blks_hit, shared_blks_read,"
            " shared_blks_dirtied, shared_blks_written, performance_category, is_problematic,"
            " collected_at)"
            " SELECT $2::uuid, q, q::text, t, c, tot, m, mx, sd, r, h, rd, dt, w,"
            " CASE WHEN m < 10 THEN 'excellent' WHEN m < 50 THEN 'good' WHEN m < 200 THEN"
            " 'acceptable' WHEN m < 1000 THEN 'poor' ELSE 'critical' END, m > 200,"
            " to_timestamp($1::float8)"
            " FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::numeric[], $7::numeric[],"
            " $8::numeric[], $9::numeric[], $10::bigint[], $11::bigint[], $12::bigint[],"
            " $13::bigint[], $14::bigint[]) AS u(q, t, c, tot, m, mx, sd, r, h, rd, dt, w)",
            NCOL + 2, params);
    const mt_pgstat_health *h = &s->health;
    char conn[16], act[16], idle[16], locks[16], dl[24], cache[32], idx[32], lag[32], score[8];
    snprintf(conn, sizeof conn, "%d", h->connections);
    snprintf(act, sizeof act, "%d", h->active);
    snprintf(idle, sizeof idle, "%d", h->idle);
    snprintf(locks, sizeof locks, "%d", h->locks_waiting);
    snprintf(dl, sizeof dl, "%lld", (long long)h->deadlocks);
    snprintf(cache, sizeof cache, "%.4f", h->cache_hit_ratio);
    snprintf(idx, sizeof idx, "%.4f", h->index_hit_ratio);
    snprintf(lag, sizeof lag, "%.3f", h->replication_lag_s);
    snprintf(score, sizeof score, "%d", h->score);
    const char *hp[] = {when,
                        s->business_id[0] ? bid : NULL,
                        s->server,
                        h->status ? h->status : "unknown",
                        score,
                        conn,
                        act,
                        idle,
                        isnan(h->cache_hit_ratio) ? NULL : cache,
                        isnan(h->index_hit_ratio) ? NULL : idx,
                        locks,
                        dl,
                        isnan(h->replication_lag_s) ? NULL : lag,
                        s->host};
    if (!rc)
        rc = mt_pg_exec(
            sink,
            "INSERT INTO monitoring.system_health (business_id, component_type,"
            " component_name, health_status, health_score, connection_count,"
            " active_connections, idle_connections, cache_hit_ratio, index_hit_ratio,"
            " locks_waiting, deadlocks_count, replication_lag_seconds,"
            " cpu_usage_percent, memory_usage_percent, disk_usage_percent,"
            " alerts_active, last_alert_at, collected_at)"
            " SELECT $2::uuid, 'database', left($3, 100), $4, $5::int, $6::int,"
            " $7::int, $8::int, $9::numeric, $10::numeric, $11::int, $12::int,"
            " $13::numeric, h.cpu_usage_percent, h.memory_usage_percent,"
            " h.disk_usage_percent, h.alerts_active, h.last_alert_at,"
            " to_timestamp($1::float8)"
            " FROM monitoring.host_health($14, $2::uuid, $3, to_timestamp($1::float8)) h",
            14, hp);
    if (!rc)
        rc = mt_pg_exec(sink, "COMMIT", 0, NULL);
    else
        mt_pg_abort(sink);
    for (int k = 0; k < NCOL; k++) free(col[k]);
    return rc;
}

int mt_pgstat_collect(mt_pgstat *s, mt_pg *pg, int64_t now, char **buf, size_t *len, size_t *cap)
{
    out o = {buf, len, cap, 0};
    int version = mt_pg_server_version(pg);
    int rc = statements(s, pg, version, &o, now);
    static const char *const act[] = {"state", "connections#"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_activity", 1, act,
                  "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity"
                  " WHERE backend_type = 'client backend' GROUP BY 1");
    static const char *const age[] = {"longest_xact_s", "longest_query_s", "waiting_on_locks#"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_activity", 0, age,
                  "SELECT greatest(coalesce(max(extract(epoch FROM now() - xact_start)), 0), 0),"
                  " greatest(coalesce(max(extract(epoch FROM now() - query_start))"
                  "   FILTER (WHERE state = 'active'), 0), 0),"
                  " count(*) FILTER (WHERE wait_event_type = 'Lock')"
                  " FROM pg_stat_activity WHERE backend_type = 'client backend'");
    static const char *const locks[] = {"waiting#"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_locks", 0, locks,
                  "SELECT count(*) FROM pg_locks WHERE NOT granted");
    static const char *const db[] = {
        "db",           "cache_hit_ratio", "xact_commit#", "xact_rollback#",
        "temp_bytes#",  "tup_returned#",   "tup_fetched#", "tup_inserted#",
        "tup_updated#", "tup_deleted#",    "deadlocks#",   "conflicts#",
        "size_bytes#"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_database", 1, db,
                  "SELECT datname, CASE WHEN blks_hit + blks_read > 0"
                  " THEN blks_hit::float8 / (blks_hit + blks_read) END,"
                  " xact_commit, xact_rollback, temp_bytes, tup_returned, tup_fetched,"
                  " tup_inserted, tup_updated, tup_deleted, deadlocks, conflicts,"
                  " pg_database_size(datid) FROM pg_stat_database"
                  " WHERE datname IS NOT NULL AND datname NOT IN ('template0', 'template1')");
    if (!rc && version >= 170000) {
        static const char *const cp[] = {"num_timed#", "num_requested#", "buffers_written#"};
        rc = rows(s, pg, &o, now, "pg_checkpointer", 0, cp,
                  "SELECT num_timed, num_requested, buffers_written FROM pg_stat_checkpointer");
        static const char *const bw[] = {"buffers_clean#", "maxwritten_clean#"};
        if (!rc)
            rc = rows(s, pg, &o, now, "pg_bgwriter", 0, bw,
                      "SELECT buffers_clean, maxwritten_clean FROM pg_stat_bgwriter");
    } else if (!rc) {
        static const char *const bw[] = {"checkpoints_timed#", "checkpoints_req#",
                                         "buffers_checkpoint#", "buffers_clean#",
                                         "buffers_backend#"};
        rc = rows(s, pg, &o, now, "pg_bgwriter", 0, bw,
                  "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean,"
                  " buffers_backend FROM pg_stat_bgwriter");
    }
    if (!rc && version >= 140000) {
        static const char *const wal[] = {"wal_records#", "wal_bytes#"};
        rc = rows(s, pg, &o, now, "pg_wal", 0, wal,
                  "SELECT wal_records, wal_bytes FROM pg_stat_wal");
    }
    static const char *const rep[] = {"client", "lag_bytes#", "replay_lag_s"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_replication", 1, rep,
                  "SELECT coalesce(application_name, client_addr::text, 'standby'),"
                  " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,"
                  " extract(epoch FROM replay_lag) FROM pg_stat_replication");
    static const char *const standby[] = {"replay_delay_s"};
    if (!rc)
        rc = rows(s, pg, &o, now, "pg_replication", 0, standby,
                  "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                  " WHERE pg_is_in_recovery()");
    if (!rc) rc = health(s, pg);
    s->baseline = true;
    return rc ? rc : o.rc;
}
