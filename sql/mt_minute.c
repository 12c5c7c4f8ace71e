/*
 * mt_minute.c — the minute mirror (mt_minute.h): dirty minutes recomputed
 * from the stored points and upserted, one thread, one connection.
 *
 * A flush: read the engine's commit floor (which starts its watch of
 * commits), then, for the dirty minutes present now, oldest first, one
 * chunk per transaction (the dirty minutes of one hour): scan every series
 * over the chunk's span once, fold each point into its series-minute row
 * (count, sum, min, max, last) and into the value list of its group and
 * minute; then sort the values by (minute, group) and describe each run
 * (sum, min, max, PERCENTILE_CONT 0.5/0.95/0.99). After the last COMMIT,
 * raise the floor to the oldest minute still dirty (or the current one).
 * A chunk that fails goes back into the dirty set with its first-dirty
 * times: nothing is marked done before PostgreSQL said so.
 */
#include "mt_minute.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_buf.h"
#include "mt_log.h"
#include "mt_pgarr.h"
#include "mt_tenant.h"
#include "mt_pg.h"
#include "mt_schema.h"
#include "mt_series.h"
#include "mt_stats.h"
#include "mt_time.h"
#include "mt_worker.h"

#define MAX_CATEGORY  50  /* metric_category VARCHAR(50) */
#define MAX_NAME      100 /* metric_name VARCHAR(100) */
#define MAINTAIN_NS   (600LL * 1000000000LL)
#define SETTLE_NS     (1000000000LL) /* a minute's last flush: its end plus this */
#define CHUNK_MINUTES 15             /* per transaction at most (fewer: opt.rows_max) */

typedef struct dirty {
    int64_t minute;   /* minute index: start / 60 s */
    int64_t since_ns; /* wall clock when it became dirty (lag) */
    bool now;         /* dirty when the running flush began: this flush takes it; one dirtied
                         again after it was taken waits for the next flush */
} dirty;

struct mt_minute {
    mt_minute_options opt;
    char *conninfo;
    mt_engine *e;
    mt_worker w; /* its lock guards everything below but pg and the thread's own state */
    dirty *set;  /* the dirty minutes, unordered */
    size_t n, cap;
    int64_t last; /* the minute last found in set (a hint for touch), INT64_MIN: none */
    int oom;      /* touch could not grow set: every minute is dirty again (floor) */
    mt_minute_stats st;
    uint64_t rows_per_minute; /* of the last minute computed: for rows_pending */
    /* the thread's */
    mt_pg *pg;
    int64_t maintained_ns;
    int state;       /* last logged: 0 none, 1 connected, 2 failing */
    bool raw_broken; /* raw_partitions failed: raw rows off until a restart (logged) */
};

mt_minute_options mt_minute_options_default(void)
{
    return (mt_minute_options){.flush_ns = 10 * 1000000000LL,
                               .retention_ns = 48 * MT_HOUR_NS,
                               .retry_max_ns = 30 * 1000000000LL,
                               .ahead_ns = 10 * MT_MINUTE_NS,
                               .raw_window_ns = MT_HOUR_NS,
                               .raw_max_rate = MT_MINUTE_RAW_RATE,
                               .values_max = (size_t)1 << 21,
                               .rows_max = 200000};
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* ---- the dirty set ---------------------------------------------------------------------- */

/* Mark minute dirty since `since` (the earlier time wins). Under lock. */
static void mark_unsafe(mt_minute *m, int64_t minute, int64_t since)
{
    if (m->last == minute) return;
    for (size_t i = 0; i < m->n; i++)
        if (m->set[i].minute == minute) {
            if (since < m->set[i].since_ns) m->set[i].since_ns = since;
            m->last = minute;
            return;
        }
    if (mt_grow(&m->set, &m->cap, m->n + 1, sizeof *m->set, 64)) {
        m->oom = 1; /* the floor still covers it: the next start finds it */
        return;
    }
    m->set[m->n++] = (dirty){minute, since, false};
    m->last = minute;
}

void mt_minute_touch(void *ud, int64_t ts)
{
    mt_minute *m = ud;
    int64_t minute = floor_div(ts, MT_MINUTE_NS);
    pthread_mutex_lock(&m->w.lock);
    if (m->last != minute) mark_unsafe(m, minute, mt_now_ns());
    pthread_mutex_unlock(&m->w.lock);
}

static int by_minute(const void *a, const void *b)
{
    int64_t x = ((const dirty *)a)->minute, y = ((const dirty *)b)->minute;
    return x < y ? -1 : x > y;
}

/*
 * Take the next chunk out of the set: the oldest dirty minutes of the hour
 * of the oldest one (CHUNK_MINUTES at most), below `upto`. Minutes older than `oldest`
 * are dropped (past the retention). *n: how many (0: none left).
 */
static void take_chunk(mt_minute *m, int64_t oldest, int64_t upto, dirty out[60], size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&m->w.lock);
    m->last = INT64_MIN;
    for (size_t i = 0; i < m->n;)
        if (m->set[i].minute < oldest)
            m->set[i] = m->set[--m->n];
        else
            i++;
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->set[i].minute < first && m->set[i].minute < upto && m->set[i].now)
            first = m->set[i].minute;
    if (first != INT64_MAX) {
        int64_t hour = floor_div(first, 60);
        for (size_t i = 0; i < m->n;)
            if (floor_div(m->set[i].minute, 60) == hour && m->set[i].minute < upto &&
                m->set[i].now) {
                out[(*n)++] = m->set[i];
                m->set[i] = m->set[--m->n];
            } else {
                i++;
            }
    }
    qsort(out, *n, sizeof *out, by_minute);
    /* a chunk's rows are held in memory and sent at once: at most CHUNK_MINUTES, fewer when
       the last minute computed had many rows */
    size_t most = CHUNK_MINUTES;
    if (m->rows_per_minute && m->opt.rows_max / m->rows_per_minute < most)
        most = m->opt.rows_max / m->rows_per_minute ? m->opt.rows_max / m->rows_per_minute : 1;
    for (; *n > most; (*n)--) {
        mark_unsafe(m, out[*n - 1].minute, out[*n - 1].since_ns);
        for (size_t i = 0; i < m->n; i++) /* still this flush's */
            if (m->set[i].minute == out[*n - 1].minute) m->set[i].now = true;
    }
    m->last = INT64_MIN;
    pthread_mutex_unlock(&m->w.lock);
}

static void put_back(mt_minute *m, const dirty *d, size_t n)
{
    pthread_mutex_lock(&m->w.lock);
    for (size_t i = 0; i < n; i++) mark_unsafe(m, d[i].minute, d[i].since_ns);
    pthread_mutex_unlock(&m->w.lock);
}

static bool keys_ok(mt_name bid, mt_name cat, mt_name name)
{
    return (!bid.len || mt_tenant_uuid_valid_n(bid.ptr, bid.len)) && cat.len <= MAX_CATEGORY &&
           name.len <= MAX_NAME;
}

/* ---- one chunk to rows ------------------------------------------------------------------- */

enum { G_MIN, G_BID, G_CAT, G_NAME, G_CNT, G_AVG, G_LO, G_HI, G_P50, G_P95, G_P99, NG };
enum { S_MIN, S_SER, S_BID, S_CAT, S_NAME, S_DIMS, S_CNT, S_SUM, S_LO, S_HI, S_LAST, NS };
/* the system-wide rows (monitoring.metrics_minute_all): a group's columns without the tenant */
enum { A_MIN, A_CAT, A_NAME, A_CNT, A_AVG, A_LO, A_HI, A_P50, A_P95, A_P99, NA };

typedef struct gval {
    uint32_t group; /* index into chunk.groups */
    uint16_t off;   /* minute within the chunk's hour */
    double v;
} gval;

/* A series with points in the chunk's minutes (the second pass's plan). */
typedef struct ser {
    uint32_t sid, group; /* group: index into chunk.groups */
    uint64_t count;      /* its points in the chunk's minutes */
} ser;

typedef struct chunk {
    mt_minute *m;
    int64_t hour;  /* the chunk's hour index */
    bool want[60]; /* minutes of the hour to compute */
    char **groups; /* group keys (business_id 0 measurement 0 field), malloc'd */
    size_t *glen;
    size_t ng, gcap;
    uint32_t *slots; /* open addressing: group + 1 */
    size_t nslots;
    gval *vals;
    size_t nv, vcap;
    ser *ser; /* the series with points, in id order */
    size_t nser, sercap;
    bool spilled; /* its values exceeded opt.values_max: described in batches */
    mt_pgarr g[NG], s[NS], a[NA];
    size_t grows, srows, arows;
    uint64_t skipped, points;
    uint64_t mpts[60]; /* points per minute of the hour (raw rows' budget) */
    uint64_t raw_rows, raw_minutes, raw_skipped; /* raw rows sent by the chunk */
    double raw_rate;                             /* of its last complete minute */
    bool raw_over, raw_seen;                     /* over the budget; raw_rate is set */
    mt_events_counts ev;                         /* security events and KPIs sent */
    int rc;
} chunk;

static void chunk_free(chunk *c)
{
    for (size_t i = 0; i < c->ng; i++) free(c->groups[i]);
    free(c->groups);
    free(c->glen);
    free(c->slots);
    free(c->vals);
    free(c->ser);
    for (int i = 0; i < NG; i++) free(c->g[i].p);
    for (int i = 0; i < NS; i++) free(c->s[i].p);
    for (int i = 0; i < NA; i++) free(c->a[i].p);
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: a chunk's few thousand groups */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* The index of group key k in c, added if new; -1 when out of memory. */
static int64_t group_of(chunk *c, const char *k, size_t n)
{
    if (c->ng * 2 >= c->nslots) {
        size_t ns = c->nslots ? c->nslots * 2 : 1024;
        uint32_t *s = calloc(ns, sizeof *s);
        if (!s) return -1;
        for (size_t i = 0; i < c->ng; i++) {
            size_t j = hash_bytes(c->groups[i], c->glen[i]) & (ns - 1);
            while (s[j]) j = (j + 1) & (ns - 1);
            s[j] = (uint32_t)i + 1;
        }
        free(c->slots);
        c->slots = s;
        c->nslots = ns;
    }
    size_t j = hash_bytes(k, n) & (c->nslots - 1);
    for (; c->slots[j]; j = (j + 1) & (c->nslots - 1)) {
        size_t g = c->slots[j] - 1;
        if (c->glen[g] == n && !memcmp(c->groups[g], k, n)) return (int64_t)g;
    }
    if (c->ng == c->gcap) {
        size_t cap = c->gcap ? c->gcap * 2 : 256;
        char **gs = realloc(c->groups, cap * sizeof *gs);
        if (gs) c->groups = gs;
        size_t *gl = gs ? realloc(c->glen, cap * sizeof *gl) : NULL;
        if (!gl) return -1;
        c->glen = gl;
        c->gcap = cap;
    }
    char *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    memcpy(copy, k, n);
    c->groups[c->ng] = copy;
    c->glen[c->ng] = n;
    c->slots[j] = (uint32_t)++c->ng;
    return (int64_t)c->ng - 1;
}

/* One series' identity, as its rows spell it. */
typedef struct ident {
    bool ok;    /* PostgreSQL takes its keys */
    char *text; /* line protocol */
    mt_name bid, cat, name;
    mt_pgarr dims; /* JSON of the other tags */
    char *key;
    mt_series_parts parts;
} ident;

static int ident_load(mt_engine *e, uint32_t id, ident *out)
{
    size_t kl;
    int rc = mt_engine_series_key(e, id, out->key, MT_SERIES_MAX_KEY, &kl);
    if (!rc) rc = mt_series_parse(out->key, kl, &out->parts);
    if (rc) return rc;
    int tl = mt_series_format(out->key, kl, out->text, 4096);
    if (tl < 0 || tl >= 4096) return MT_ELIMIT;
    out->bid = (mt_name){"", 0};
    out->dims.len = 0;
    out->dims.rc = 0;
    mt_pgarr_put(&out->dims, "{", 1);
    size_t nd = 0;
    for (size_t k = 0; k < out->parts.ntags; k++) {
        mt_name tk = out->parts.tag_keys[k], tv = out->parts.tag_values[k];
        if (tk.len == 11 && !memcmp(tk.ptr, "business_id", 11)) {
            out->bid = tv;
            continue;
        }
        mt_pgarr_put(&out->dims, nd ? ",\"" : "\"", nd ? 2 : 1);
        nd++;
        mt_pgarr_json(&out->dims, tk.ptr, tk.len);
        mt_pgarr_put(&out->dims, "\":\"", 3);
        mt_pgarr_json(&out->dims, tv.ptr, tv.len);
        mt_pgarr_put(&out->dims, "\"", 1);
    }
    mt_pgarr_put(&out->dims, "}", 1);
    out->cat = out->parts.measurement;
    out->name = out->parts.field;
    out->ok = keys_ok(out->bid, out->cat, out->name);
    return out->dims.rc;
}

static void add_keys(mt_pgarr *bid, mt_pgarr *cat, mt_pgarr *name, mt_name b, mt_name c, mt_name n)
{
    if (b.len)
        mt_pgarr_text(bid, b.ptr, b.len);
    else
        mt_pgarr_null(bid);
    mt_pgarr_text(cat, c.ptr, c.len);
    mt_pgarr_text(name, n.ptr, n.len);
}

/* A series-minute row. */
static void series_row(chunk *c, const ident *id, int64_t minute, const mt_summary *s)
{
    if (!id->ok) {
        c->skipped++;
        return;
    }
    mt_pgarr_i64(&c->s[S_MIN], minute);
    mt_pgarr_text(&c->s[S_SER], id->text, strlen(id->text));
    add_keys(&c->s[S_BID], &c->s[S_CAT], &c->s[S_NAME], id->bid, id->cat, id->name);
    mt_pgarr_text(&c->s[S_DIMS], id->dims.p, id->dims.len);
    mt_pgarr_i64(&c->s[S_CNT], (int64_t)s->count);
    mt_pgarr_double(&c->s[S_SUM], s->sum);
    mt_pgarr_double(&c->s[S_LO], s->min);
    mt_pgarr_double(&c->s[S_HI], s->max);
    mt_pgarr_double(&c->s[S_LAST], s->last);
    c->srows++;
}

static double as_double(mt_vtype t, mt_val v)
{
    switch (t) {
    case MT_VT_FLOAT: return v.f;
    case MT_VT_INT: return (double)v.i;
    case MT_VT_UINT: return (double)v.u;
    default: return (double)v.u;
    }
}

/* Room for one more value in c->vals; -ENOMEM when there is none. */
static int vals_room(chunk *c)
{
    if (c->nv < c->vcap) return MT_OK;
    size_t cap = c->vcap ? c->vcap * 2 : 4096;
    gval *nv = realloc(c->vals, cap * sizeof *nv);
    if (!nv) return -ENOMEM;
    c->vals = nv;
    c->vcap = cap;
    return MT_OK;
}

/*
 * One series over [from, to): with rows (the first pass), its identity and
 * group are learnt, its series-minute rows made and its points counted into
 * *count; values are gathered into c->vals when `values` (the group g given
 * or learnt). MT_ENOTFOUND: nothing stored there.
 */
static int scan_one(chunk *c, uint32_t sid, int64_t from, int64_t to, bool rows, bool values,
                    ident *id, char *gk, int64_t *g, uint64_t *count)
{
    mt_engine *e = c->m->e;
    mt_scan *sc;
    int rc = mt_scan_open(e, sid, from, to, &sc);
    if (rc) return rc;
    mt_points p;
    bool loaded = !rows;
    int64_t cur = INT64_MIN;
    mt_summary s;
    mt_summary_init(&s);
    int r = MT_OK;
    while (!rc && (r = mt_scan_next(sc, &p)) == MT_OK) {
        if (p.type == MT_VT_STRING) break;
        for (size_t i = 0; i < p.n && !rc; i++) {
            int64_t minute = floor_div(p.ts[i], MT_MINUTE_NS);
            int64_t off = minute - c->hour * 60;
            if (off < 0 || off >= 60 || !c->want[off]) continue;
            double v = as_double(p.type, p.vals[i]);
            if (values && (rc = vals_room(c))) break;
            if (rows) {
                c->points++;
                c->mpts[off]++;
                (*count)++;
                if (!loaded) {
                    size_t gl;
                    loaded = true;
                    if ((rc = ident_load(e, sid, id)) ||
                        (rc = mt_engine_series_group(e, sid, gk, MT_SERIES_MAX_KEY + 8, &gl)))
                        break;
                    if ((*g = group_of(c, gk, gl)) < 0) rc = -ENOMEM;
                    if (rc) break;
                }
                if (minute != cur) {
                    if (s.count) series_row(c, id, cur, &s);
                    mt_summary_init(&s);
                    cur = minute;
                }
                mt_summary_add(&s, v);
            }
            if (values) c->vals[c->nv++] = (gval){(uint32_t)*g, (uint16_t)off, v};
        }
    }
    if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r; /* MT_ECORRUPT: never served */
    if (!rc && s.count) series_row(c, id, cur, &s);
    mt_scan_close(sc);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

static int group_rows(chunk *c);
static int all_rows(chunk *c);

/* The key a group's values are described with across tenants: measurement 0 field (or, for
   a key the engine did not spell, the key itself behind a 1: it makes no rows, alone). */
static void batch_key(const chunk *c, uint32_t g, const char **k, size_t *kl, bool *whole)
{
    const char *p = c->groups[g];
    size_t n = c->glen[g];
    const char *z1 = memchr(p, 0, n);
    const char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - p)) : NULL;
    *whole = !z2;
    *k = z2 ? z1 + 1 : p;
    *kl = z2 ? n - (size_t)(z1 + 1 - p) : n;
}

/*
 * The second pass, when the chunk's values did not fit opt.values_max: the
 * series ordered by (measurement, field), and cut into batches of whole
 * (measurement, field)s of about values_max values each; each batch's
 * series are scanned again for their values, which are described (group
 * and system-wide rows) and freed before the next batch. Every group and
 * every system-wide key is inside one batch, so the rows are those one
 * pass over everything makes; memory follows the largest (measurement,
 * field), not the chunk.
 */
static int spill_rows(chunk *c, int64_t from, int64_t to)
{
    chunk f = {0}; /* batch keys, interned by group_of */
    uint32_t *key = malloc((c->ng ? c->ng : 1) * sizeof *key);
    size_t *at = NULL;
    uint32_t *order = malloc((c->nser ? c->nser : 1) * sizeof *order);
    char *kb = malloc(MT_SERIES_MAX_KEY + 9);
    int rc = key && order && kb ? MT_OK : -ENOMEM;
    for (size_t g = 0; !rc && g < c->ng; g++) {
        const char *k;
        size_t kl;
        bool whole;
        batch_key(c, (uint32_t)g, &k, &kl, &whole);
        kb[0] = whole ? 1 : 0;
        memcpy(kb + 1, k, kl);
        int64_t i = group_of(&f, kb, kl + 1);
        if (i < 0)
            rc = -ENOMEM;
        else
            key[g] = (uint32_t)i;
    }
    if (!rc && !(at = calloc(f.ng + 1, sizeof *at))) rc = -ENOMEM;
    for (size_t i = 0; !rc && i < c->nser; i++) at[key[c->ser[i].group] + 1]++;
    for (size_t k = 0; !rc && k < f.ng; k++) at[k + 1] += at[k];
    for (size_t i = 0; !rc && i < c->nser; i++) order[at[key[c->ser[i].group]]++] = (uint32_t)i;
    free(c->vals);
    c->vals = NULL;
    c->nv = c->vcap = 0;
    for (size_t i = 0; !rc && i < c->nser;) {
        size_t j = i;
        uint64_t n = 0;
        /* whole keys, until the batch holds values_max */
        while (j < c->nser && (j == i || n < c->m->opt.values_max ||
                               key[c->ser[order[j]].group] == key[c->ser[order[j - 1]].group]))
            n += c->ser[order[j++]].count;
        for (size_t x = i; !rc && x < j; x++) {
            int64_t g = c->ser[order[x]].group;
            rc = scan_one(c, c->ser[order[x]].sid, from, to, false, true, NULL, NULL, &g, NULL);
        }
        if (!rc) rc = group_rows(c);
        if (!rc) rc = all_rows(c);
        c->nv = 0;
        i = j;
    }
    free(key);
    free(at);
    free(order);
    free(kb);
    chunk_free(&f);
    return rc;
}

/*
 * Every series over the chunk's span: series rows, and the group and
 * system-wide rows of the values. One pass when the values fit
 * opt.values_max, else a second (spill_rows).
 */
static int scan_series(chunk *c, int64_t from, int64_t to)
{
    mt_engine *e = c->m->e;
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    ident id = {0};
    id.key = malloc(MT_SERIES_MAX_KEY);
    id.text = malloc(4096);
    char *gk = malloc(MT_SERIES_MAX_KEY + 8);
    int rc = id.key && id.text && gk ? MT_OK : -ENOMEM;
    bool spill = false;
    /* ids are dense and never reused: 1..series */
    for (uint32_t sid = 1; !rc && sid <= st.series; sid++) {
        int64_t g = -1;
        uint64_t count = 0;
        rc = scan_one(c, sid, from, to, true, !spill, &id, gk, &g, &count);
        if (rc == MT_ENOTFOUND) rc = MT_OK;
        if (rc || !count) continue;
        if (c->nser == c->sercap) {
            size_t cap = c->sercap ? c->sercap * 2 : 1024;
            ser *ns = realloc(c->ser, cap * sizeof *ns);
            if (!ns) {
                rc = -ENOMEM;
                break;
            }
            c->ser = ns;
            c->sercap = cap;
        }
        c->ser[c->nser++] = (ser){sid, (uint32_t)g, count};
        if (!spill && c->nv > c->m->opt.values_max) {
            spill = true; /* the values are gathered again, batch by batch */
            free(c->vals);
            c->vals = NULL;
            c->nv = c->vcap = 0;
        }
    }
    free(id.key);
    free(id.text);
    free(id.dims.p);
    free(gk);
    if (rc) return rc;
    if ((c->spilled = spill)) return spill_rows(c, from, to);
    rc = group_rows(c);
    return rc ? rc : all_rows(c);
}

/*
 * Order the values by (minute, group), stably: a counting sort, O(n) where
 * qsort took n log n comparisons (at 10^7 values a minute, most of a
 * flush). Keys are the chunk's wanted minutes times ng groups (a value's group below ng).
 */
static int sort_values(chunk *c, size_t ng)
{
    if (!c->nv) return MT_OK;
    int idx[60], nw = 0;
    for (int i = 0; i < 60; i++) idx[i] = c->want[i] ? nw++ : -1;
    size_t nk = (size_t)nw * ng;
    size_t *at = calloc(nk + 1, sizeof *at);
    gval *out = malloc(c->nv * sizeof *out);
    if (!at || !out) {
        free(at);
        free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->nv; i++)
        at[(size_t)idx[c->vals[i].off] * ng + c->vals[i].group + 1]++;
    for (size_t k = 0; k < nk; k++) at[k + 1] += at[k];
    for (size_t i = 0; i < c->nv; i++)
        out[at[(size_t)idx[c->vals[i].off] * ng + c->vals[i].group]++] = c->vals[i];
    free(at);
    free(c->vals);
    c->vals = out;
    c->vcap = c->nv;
    return MT_OK;
}

/* The group rows: each (minute, group) run of the sorted values described. */
static int group_rows(chunk *c)
{
    static const double fr[3] = {0.5, 0.95, 0.99};
    int rc = sort_values(c, c->ng);
    if (rc) return rc;
    double *tmp = malloc((c->nv ? c->nv : 1) * sizeof *tmp);
    if (!tmp) return -ENOMEM;
    for (size_t i = 0; i < c->nv;) {
        size_t j = i;
        while (j < c->nv && c->vals[j].off == c->vals[i].off &&
               c->vals[j].group == c->vals[i].group)
            tmp[j - i] = c->vals[j].v, j++;
        size_t n = j - i;
        const char *k = c->groups[c->vals[i].group];
        size_t kl = c->glen[c->vals[i].group];
        /* business_id 0 measurement 0 field */
        const char *z1 = memchr(k, 0, kl),
                   *z2 = z1 ? memchr(z1 + 1, 0, kl - (size_t)(z1 + 1 - k)) : NULL;
        if (!z2) { /* a key the engine did not spell: the engine reports its damage */
            c->skipped++;
            i = j;
            continue;
        }
        mt_name bid = {k, (size_t)(z1 - k)}, cat = {z1 + 1, (size_t)(z2 - z1 - 1)},
                name = {z2 + 1, kl - (size_t)(z2 + 1 - k)};
        if (!keys_ok(bid, cat, name)) {
            c->skipped++;
            i = j;
            continue;
        }
        double sum, lo, hi, q[3];
        rc = mt_describe(tmp, n, fr, 3, &sum, &lo, &hi, q);
        if (rc) {
            free(tmp);
            return rc;
        }
        mt_pgarr_i64(&c->g[G_MIN], c->hour * 60 + c->vals[i].off);
        add_keys(&c->g[G_BID], &c->g[G_CAT], &c->g[G_NAME], bid, cat, name);
        mt_pgarr_i64(&c->g[G_CNT], (int64_t)n);
        mt_pgarr_double(&c->g[G_AVG], sum / (double)n);
        mt_pgarr_double(&c->g[G_LO], lo);
        mt_pgarr_double(&c->g[G_HI], hi);
        mt_pgarr_double(&c->g[G_P50], q[0]);
        mt_pgarr_double(&c->g[G_P95], q[1]);
        mt_pgarr_double(&c->g[G_P99], q[2]);
        c->grows++;
        i = j;
    }
    free(tmp);
    return MT_OK;
}

/*
 * The system-wide rows: every tenant's values of a (minute, measurement,
 * field) described together, so that a dashboard's "all" has true
 * quantiles and the average of every point (a max of the tenants' p95s is
 * no p95). Run after group_rows, whose sort it undoes: each value's group
 * becomes its (measurement, field), interned in a chunk of its own, and the
 * values are sorted and described again. The tenant does not matter here,
 * so a group whose business_id PostgreSQL would refuse still counts; one
 * whose measurement or field is too long for the columns does not.
 */
static int all_rows(chunk *c)
{
    static const double fr[3] = {0.5, 0.95, 0.99};
    chunk f = {0}; /* (measurement 0 field) keys, interned by group_of */
    uint32_t *fid = malloc((c->ng ? c->ng : 1) * sizeof *fid);
    double *tmp = malloc((c->nv ? c->nv : 1) * sizeof *tmp);
    int rc = fid && tmp ? MT_OK : -ENOMEM;
    for (size_t g = 0; !rc && g < c->ng; g++) {
        const char *k = c->groups[g];
        size_t kl = c->glen[g];
        const char *z1 = memchr(k, 0, kl);
        const char *z2 = z1 ? memchr(z1 + 1, 0, kl - (size_t)(z1 + 1 - k)) : NULL;
        fid[g] = UINT32_MAX;
        if (!z2 || (size_t)(z2 - z1 - 1) > MAX_CATEGORY || kl - (size_t)(z2 + 1 - k) > MAX_NAME)
            continue;
        int64_t i = group_of(&f, z1 + 1, kl - (size_t)(z1 + 1 - k));
        if (i < 0)
            rc = -ENOMEM;
        else
            fid[g] = (uint32_t)i;
    }
    size_t nv = 0;
    for (size_t i = 0; !rc && i < c->nv; i++) {
        uint32_t id = fid[c->vals[i].group];
        if (id == UINT32_MAX) continue;
        c->vals[nv] = c->vals[i];
        c->vals[nv++].group = id;
    }
    if (!rc) {
        c->nv = nv;                /* the groups' values are spent: group_rows ran */
        rc = sort_values(c, f.ng); /* by (minute, measurement 0 field) now */
    }
    for (size_t i = 0; !rc && i < nv;) {
        size_t j = i;
        while (j < nv && c->vals[j].off == c->vals[i].off && c->vals[j].group == c->vals[i].group)
            tmp[j - i] = c->vals[j].v, j++;
        size_t n = j - i;
        const char *k = f.groups[c->vals[i].group];
        size_t kl = f.glen[c->vals[i].group];
        const char *z = memchr(k, 0, kl); /* interned above: measurement 0 field */
        double sum, lo, hi, q[3];
        if ((rc = mt_describe(tmp, n, fr, 3, &sum, &lo, &hi, q))) break;
        mt_pgarr_i64(&c->a[A_MIN], c->hour * 60 + c->vals[i].off);
        mt_pgarr_text(&c->a[A_CAT], k, (size_t)(z - k));
        mt_pgarr_text(&c->a[A_NAME], z + 1, kl - (size_t)(z + 1 - k));
        mt_pgarr_i64(&c->a[A_CNT], (int64_t)n);
        mt_pgarr_double(&c->a[A_AVG], sum / (double)n);
        mt_pgarr_double(&c->a[A_LO], lo);
        mt_pgarr_double(&c->a[A_HI], hi);
        mt_pgarr_double(&c->a[A_P50], q[0]);
        mt_pgarr_double(&c->a[A_P95], q[1]);
        mt_pgarr_double(&c->a[A_P99], q[2]);
        c->arows++;
        i = j;
    }
    free(fid);
    free(tmp);
    chunk_free(&f);
    return rc;
}

static const char upsert_all[] =
    "INSERT INTO monitoring.metrics_minute_all (minute_bucket, metric_category, metric_name,"
    " sample_count, avg_value, min_value, max_value, median_value, p95_value, p99_value,"
    " updated_at)"
    " SELECT to_timestamp(m * 60), c, n, cnt, av, mn, mx, p50, p95, p99, now()"
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::float8[],"
    " $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[])"
    " AS u(m, c, n, cnt, av, mn, mx, p50, p95, p99)"
    " WHERE to_timestamp(m * 60) >= now() - $11::bigint * interval '1 second'"
    " ON CONFLICT ON CONSTRAINT metrics_minute_all_key DO UPDATE SET"
    " sample_count = EXCLUDED.sample_count, avg_value = EXCLUDED.avg_value,"
    " min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,"
    " median_value = EXCLUDED.median_value, p95_value = EXCLUDED.p95_value,"
    " p99_value = EXCLUDED.p99_value, updated_at = now()";

static const char upsert_groups[] =
    "INSERT INTO monitoring.metrics_minute (minute_bucket, business_id, metric_category,"
    " metric_name, sample_count, avg_value, min_value, max_value, median_value, p95_value,"
    " p99_value, updated_at)"
    " SELECT to_timestamp(m * 60), b, c, n, cnt, av, mn, mx, p50, p95, p99, now()"
    " FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::float8[],"
    " $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[])"
    " AS u(m, b, c, n, cnt, av, mn, mx, p50, p95, p99)"
    /* past the retention its partition may be gone: the server's clock decides, as it does
       when dropping partitions */
    " WHERE to_timestamp(m * 60) >= now() - $12::bigint * interval '1 second'"
    " ON CONFLICT ON CONSTRAINT metrics_minute_key DO UPDATE SET"
    " sample_count = EXCLUDED.sample_count, avg_value = EXCLUDED.avg_value,"
    " min_value = EXCLUDED.min_value, max_value = EXCLUDED.max_value,"
    " median_value = EXCLUDED.median_value, p95_value = EXCLUDED.p95_value,"
    " p99_value = EXCLUDED.p99_value, updated_at = now()";

static const char upsert_series[] =
    "INSERT INTO monitoring.series_minute (minute_bucket, series, business_id, metric_category,"
    " metric_name, dimensions, sample_count, sum_value, avg_value, min_value, max_value,"
    " last_value, updated_at)"
    " SELECT to_timestamp(m * 60), s, b, c, n, d::jsonb, cnt, sm, sm / cnt, mn, mx, la, now()"
    " FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[],"
    " $7::bigint[], $8::float8[], $9::float8[], $10::float8[], $11::float8[])"
    " AS u(m, s, b, c, n, d, cnt, sm, mn, mx, la)"
    " WHERE to_timestamp(m * 60) >= now() - $12::bigint * interval '1 second'"
    " ON CONFLICT ON CONSTRAINT series_minute_key DO UPDATE SET"
    " business_id = EXCLUDED.business_id, metric_category = EXCLUDED.metric_category,"
    " metric_name = EXCLUDED.metric_name, dimensions = EXCLUDED.dimensions,"
    " sample_count = EXCLUDED.sample_count, sum_value = EXCLUDED.sum_value,"
    " avg_value = EXCLUDED.avg_value, min_value = EXCLUDED.min_value,"
    " max_value = EXCLUDED.max_value, last_value = EXCLUDED.last_value, updated_at = now()";

/* ---- raw rows into monitoring.performance_metrics (opt.raw) ------------------------------ */

/* Whether minute still owes its raw rows later: not complete yet, and inside the window. */
static bool raw_later(const mt_minute *m, int64_t minute, int64_t now)
{
    return m->opt.raw && !m->raw_broken && (minute + 1) * MT_MINUTE_NS + SETTLE_NS > now &&
           minute * MT_MINUTE_NS >= now - m->opt.raw_window_ns;
}

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static void copy_text(mt_pgarr *a, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\')
            mt_pgarr_put(a, "\\\\", 2);
        else if (c == '\t')
            mt_pgarr_put(a, "\\t", 2);
        else if (c == '\n')
            mt_pgarr_put(a, "\\n", 2);
        else if (c == '\r')
            mt_pgarr_put(a, "\\r", 2);
        else
            mt_pgarr_put(a, s + i, 1);
    }
}

#define RAW_COPY_BUF (1u << 20) /* bytes of rows gathered before each send */

static const char raw_delete[] =
    "DELETE FROM monitoring.performance_metrics WHERE source_schema = 'metron'"
    " AND collected_at >= to_timestamp($1::bigint * 60) AND collected_at < to_timestamp($2::bigint"
    " * 60) AND floor(extract(epoch FROM collected_at) / 60)::bigint = ANY($3::bigint[])";

static const char raw_copy[] =
    "COPY monitoring.performance_metrics (business_id, metric_name, metric_category, metric_type,"
    " metric_value, dimensions, source_schema, collected_at) FROM STDIN";

/* Every point of the minutes send[] (offsets in hour) of every series, COPYed; *rows counted. */
static int raw_copy_points(mt_minute *m, int64_t hour, const bool send[60], int64_t from,
                           int64_t to, uint64_t *rows)
{
    mt_engine *e = m->e;
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    ident id = {0};
    id.key = malloc(MT_SERIES_MAX_KEY);
    id.text = malloc(4096);
    mt_pgarr head = {0}, tail = {0}, buf = {0};
    int rc = id.key && id.text ? MT_OK : -ENOMEM;
    if (!rc) rc = mt_pg_copy_begin(m->pg, raw_copy);
    if (rc) goto out;
    int64_t sec = INT64_MIN; /* the second whose text is in stamp */
    char stamp[40] = "";
    for (uint32_t sid = 1; !rc && sid <= st.series; sid++) {
        mt_scan *sc;
        rc = mt_scan_open(e, sid, from, to, &sc);
        if (rc == MT_ENOTFOUND) {
            rc = MT_OK;
            continue;
        }
        if (rc) break;
        mt_points p;
        bool loaded = false;
        int r = MT_OK;
        while (!rc && (r = mt_scan_next(sc, &p)) == MT_OK) {
            if (p.type == MT_VT_STRING) break;
            for (size_t i = 0; i < p.n && !rc; i++) {
                int64_t off = floor_div(p.ts[i], MT_MINUTE_NS) - hour * 60;
                if (off < 0 || off >= 60 || !send[off]) continue;
                if (!loaded) {
                    loaded = true;
                    if ((rc = ident_load(e, sid, &id))) break;
                    if (!id.ok) break; /* counted with the summaries' skipped rows */
                    head.len = tail.len = 0;
                    if (id.bid.len)
                        copy_text(&head, id.bid.ptr, id.bid.len);
                    else
                        mt_pgarr_put(&head, "\\N", 2);
                    mt_pgarr_put(&head, "\t", 1);
                    copy_text(&head, id.name.ptr, id.name.len);
                    mt_pgarr_put(&head, "\t", 1);
                    copy_text(&head, id.cat.ptr, id.cat.len);
                    mt_pgarr_put(&head, "\tgauge\t", 7);
                    mt_pgarr_put(&tail, "\t", 1);
                    copy_text(&tail, id.dims.p, id.dims.len);
                    mt_pgarr_put(&tail, "\tmetron\t", 8);
                    if ((rc = head.rc ? head.rc : tail.rc)) break;
                }
                int64_t s = floor_div(p.ts[i], 1000000000LL);
                if (s != sec) {
                    time_t t = (time_t)s;
                    struct tm tm;
                    gmtime_r(&t, &tm);
                    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
                    sec = s;
                }
                char v[64];
                double x = as_double(p.type, p.vals[i]);
                int vn = isnan(x)   ? snprintf(v, sizeof v, "NaN")
                         : isinf(x) ? snprintf(v, sizeof v, x > 0 ? "Infinity" : "-Infinity")
                                    : snprintf(v, sizeof v, "%.17g", x);
                char us[24]; /* PostgreSQL keeps microseconds */
                int un = snprintf(us, sizeof us, ".%06lld+00\n",
                                  (long long)((p.ts[i] - s * 1000000000LL) / 1000));
                mt_pgarr_put(&buf, head.p, head.len);
                mt_pgarr_put(&buf, v, (size_t)vn);
                mt_pgarr_put(&buf, tail.p, tail.len);
                mt_pgarr_put(&buf, stamp, strlen(stamp));
                mt_pgarr_put(&buf, us, (size_t)un);
                (*rows)++;
                if (buf.rc) rc = buf.rc;
                if (!rc && buf.len >= RAW_COPY_BUF) {
                    rc = mt_pg_copy_put(m->pg, buf.p, buf.len);
                    buf.len = 0;
                }
            }
            if (loaded && !id.ok) break;
        }
        if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r;
        mt_scan_close(sc);
    }
    if (!rc && buf.len) rc = mt_pg_copy_put(m->pg, buf.p, buf.len);
    int erc = mt_pg_copy_end(m->pg, rc != MT_OK);
    if (!rc) rc = erc;
out:
    free(id.key);
    free(id.text);
    free(id.dims.p);
    free(head.p);
    free(tail.p);
    free(buf.p);
    return rc;
}

/*
 * The raw rows of the chunk's complete minutes inside the window, in the
 * chunk's transaction: their old rows deleted, their points copied, unless
 * a minute holds more points than the budget (then deleted only, counted).
 */
static int raw_send(mt_minute *m, chunk *c, const dirty *d, size_t n)
{
    int64_t now = mt_now_ns(), lo = INT64_MAX, hi = INT64_MIN, slo = INT64_MAX, shi = INT64_MIN;
    bool send[60] = {0};
    mt_pgarr del = {0};
    uint64_t skipped = 0, budget = m->opt.raw_max_rate * 60;
    double rate = -1;
    bool over = false;
    for (size_t i = 0; i < n; i++) {
        int64_t minute = d[i].minute, off = minute - c->hour * 60;
        if (minute * MT_MINUTE_NS < now - m->opt.raw_window_ns) continue;
        if ((minute + 1) * MT_MINUTE_NS + SETTLE_NS > now) continue; /* open: raw_later */
        mt_pgarr_i64(&del, minute);
        if (minute < lo) lo = minute;
        if (minute > hi) hi = minute;
        rate = (double)c->mpts[off] / 60.0;
        over = c->mpts[off] > budget;
        if (over) {
            char when[40];
            mt_time_format(minute * MT_MINUTE_NS, when, sizeof when);
            mt_log(MT_LOG_WARN,
                   "msg=\"raw rows: a minute over postgres_raw_max_rate gets none (the store and "
                   "the minute summaries keep every point)\" minute=%s points_per_s=%.0f "
                   "postgres_raw_max_rate=%llu",
                   when, rate, (unsigned long long)m->opt.raw_max_rate);
            skipped++;
            continue;
        }
        send[off] = true;
        if (minute < slo) slo = minute;
        if (minute > shi) shi = minute;
    }
    if (lo == INT64_MAX) return MT_OK;
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)lo);
    snprintf(b, sizeof b, "%lld", (long long)hi + 1);
    const char *p[] = {a, b, mt_pgarr_finish(&del)};
    int rc = p[2] ? mt_pg_exec(m->pg, raw_delete, 3, p) : -ENOMEM;
    free(del.p);
    uint64_t rows = 0;
    if (!rc && slo != INT64_MAX)
        rc = raw_copy_points(m, c->hour, send, slo * MT_MINUTE_NS, (shi + 1) * MT_MINUTE_NS, &rows);
    if (!rc) { /* counted now, committed with the chunk: a failed COMMIT retries them */
        c->raw_rows = rows;
        c->raw_minutes = 0;
        for (int i = 0; i < 60; i++) c->raw_minutes += send[i];
        c->raw_skipped = skipped;
        c->raw_rate = rate;
        c->raw_over = over;
        c->raw_seen = true;
    }
    return rc;
}

/* The busiest of the complete minutes before now (mt_minute.h). */
int mt_minute_recent_rate(mt_engine *e, int64_t now_ns, int minutes, double *pps, int64_t *at_ns)
{
    *pps = 0;
    *at_ns = 0;
    if (minutes <= 0) return MT_OK;
    int64_t end = floor_div(now_ns, MT_MINUTE_NS), start = end - minutes;
    uint64_t *cnt = calloc((size_t)minutes, sizeof *cnt);
    if (!cnt) return -ENOMEM;
    mt_engine_stats st;
    mt_engine_stats_get(e, &st);
    int rc = MT_OK;
    for (uint32_t sid = 1; !rc && sid <= st.series; sid++) {
        mt_scan *sc;
        rc = mt_scan_open(e, sid, start * MT_MINUTE_NS, end * MT_MINUTE_NS, &sc);
        if (rc == MT_ENOTFOUND) {
            rc = MT_OK;
            continue;
        }
        if (rc) break;
        mt_points p;
        int r;
        while ((r = mt_scan_next(sc, &p)) == MT_OK)
            for (size_t i = 0; i < p.n; i++) {
                int64_t k = floor_div(p.ts[i], MT_MINUTE_NS) - start;
                if (k >= 0 && k < minutes) cnt[k]++;
            }
        if (r != MT_ENOTFOUND) rc = r;
        mt_scan_close(sc);
    }
    for (int k = 0; !rc && k < minutes; k++)
        if (cnt[k] && (double)cnt[k] / 60.0 > *pps) {
            *pps = (double)cnt[k] / 60.0;
            *at_ns = (start + k) * MT_MINUTE_NS;
        }
    free(cnt);
    return rc;
}

/* Compute the chunk's minutes and upsert them in one transaction. */
static int send_chunk(mt_minute *m, const dirty *d, size_t n, chunk *c)
{
    c->m = m;
    c->hour = floor_div(d[0].minute, 60);
    for (size_t i = 0; i < n; i++) c->want[d[i].minute - c->hour * 60] = true;
    int rc = scan_series(c, d[0].minute * MT_MINUTE_NS, (d[n - 1].minute + 1) * MT_MINUTE_NS);
    char keep[24];
    snprintf(keep, sizeof keep, "%lld", (long long)(m->opt.retention_ns / 1000000000LL));
    const char *gp[NG + 1], *sp[NS + 1], *ap[NA + 1];
    for (int i = 0; !rc && i < NG; i++)
        if (!(gp[i] = mt_pgarr_finish(&c->g[i]))) rc = -ENOMEM;
    for (int i = 0; !rc && i < NS; i++)
        if (!(sp[i] = mt_pgarr_finish(&c->s[i]))) rc = -ENOMEM;
    for (int i = 0; !rc && i < NA; i++)
        if (!(ap[i] = mt_pgarr_finish(&c->a[i]))) rc = -ENOMEM;
    gp[NG] = sp[NS] = ap[NA] = keep;
    if (!rc) rc = mt_pg_exec(m->pg, "BEGIN", 0, NULL);
    if (!rc && c->grows) rc = mt_pg_exec(m->pg, upsert_groups, NG + 1, gp);
    if (!rc && c->srows) rc = mt_pg_exec(m->pg, upsert_series, NS + 1, sp);
    if (!rc && c->arows) rc = mt_pg_exec(m->pg, upsert_all, NA + 1, ap);
    if (!rc && m->opt.raw && !m->raw_broken) rc = raw_send(m, c, d, n);
    if (!rc)
        rc = mt_events_send(m->pg, m->e, m->opt.events, d[0].minute * MT_MINUTE_NS,
                            (d[n - 1].minute + 1) * MT_MINUTE_NS, &c->ev);
    if (!rc) rc = mt_pg_exec(m->pg, "COMMIT", 0, NULL);
    if (rc == MT_EPG) mt_pg_abort(m->pg);
    return rc;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void state(mt_minute *m, int to, const char *what)
{
    if (m->state == to) return;
    m->state = to;
    if (to == 1)
        mt_log(MT_LOG_INFO, "msg=\"minute mirror connected to PostgreSQL\"");
    else
        mt_log(MT_LOG_WARN,
               "msg=\"minute mirror cannot write to PostgreSQL; the minutes stay dirty, "
               "retrying with backoff\" err=\"%s\"",
               what);
}

static int maintain(mt_minute *m)
{
    char keep[24];
    snprintf(keep, sizeof keep, "%lld", (long long)(m->opt.retention_ns / 1000000000LL));
    const char *p[] = {keep};
    int rc = mt_pg_exec(
        m->pg, "SELECT monitoring.minute_partitions($1::bigint * interval '1 second')", 1, p);
    if (!rc && m->opt.raw && !m->raw_broken) {
        char win[24];
        snprintf(win, sizeof win, "%lld", (long long)(m->opt.raw_window_ns / 1000000000LL));
        const char *rp[] = {win};
        if (mt_pg_exec(m->pg,
                       "SELECT monitoring.raw_partitions($1::bigint * interval '1 second',"
                       " interval '1 hour')",
                       1, rp)) {
            if (!mt_pg_ok(m->pg)) return MT_EPG;
            /* a month of performance_metrics holding other rows: the summaries go on */
            m->raw_broken = true;
            mt_log(MT_LOG_ERROR,
                   "msg=\"raw rows off until metrond restarts: cannot keep the hour partitions "
                   "of monitoring.performance_metrics\" err=\"%s\"",
                   mt_pg_errmsg(m->pg));
        }
    }
    if (!rc) m->maintained_ns = mt_now_ns();
    return rc;
}

static bool connect_pg(mt_minute *m)
{
    char err[512];
    if (mt_pg_open(m->conninfo, &m->pg, err, sizeof err)) {
        state(m, 2, err);
        return false;
    }
    mt_schema_result r;
    if (mt_schema_install(m->pg, &r) || maintain(m)) {
        state(m, 2, mt_pg_errmsg(m->pg));
        mt_pg_close(m->pg);
        m->pg = NULL;
        return false;
    }
    state(m, 1, "");
    return true;
}

/* Sleep until the wall clock reaches at_ns unless stopped; true when stopping. The nap is
   timed on the monotonic clock: a wall clock stepped meanwhile does not stretch it. */
static bool nap_until(mt_minute *m, int64_t at_ns)
{
    return mt_worker_nap(&m->w, at_ns - mt_now_ns());
}

/* One flush: every minute dirty now, chunk by chunk; then the floor. */
static int flush(mt_minute *m, bool *seeded)
{
    int64_t fl;
    int rc = mt_engine_floor_get(m->e, &fl);
    if (rc) return rc;
    int64_t now = mt_now_ns(), oldest = floor_div(now - m->opt.retention_ns, MT_MINUTE_NS) + 1;
    mt_engine_stats es;
    mt_engine_stats_get(m->e, &es);
    /* everything from the floor on may be unmirrored; an engine that stores nothing yet has
       nothing to catch up (what it got since open is in the set already) */
    if (!*seeded && !es.series) *seeded = true;
    if (!*seeded) {
        int64_t from = floor_div(fl, MT_MINUTE_NS),
                to = floor_div(now + m->opt.ahead_ns, MT_MINUTE_NS);
        if (from < oldest) from = oldest;
        pthread_mutex_lock(&m->w.lock);
        for (int64_t k = from; k <= to; k++) mark_unsafe(m, k, now);
        pthread_mutex_unlock(&m->w.lock);
        *seeded = true;
    }
    /* the minutes dirty now; those dirtied while this runs wait for the next flush */
    int64_t upto = INT64_MIN;
    pthread_mutex_lock(&m->w.lock);
    for (size_t i = 0; i < m->n; i++) {
        if (m->set[i].minute >= upto) upto = m->set[i].minute + 1;
        m->set[i].now = true;
    }
    pthread_mutex_unlock(&m->w.lock);
    /* minutes mirrored while open that owe their raw rows: dirty again after the loop */
    dirty *owed = NULL;
    size_t nowed = 0, owcap = 0;
    for (;;) {
        pthread_mutex_lock(&m->w.lock);
        bool stop = m->w.stop;
        pthread_mutex_unlock(&m->w.lock);
        if (stop) break; /* a long catch-up does not hold up shutdown; the floor stays */
        dirty d[60];
        size_t n;
        take_chunk(m, oldest, upto, d, &n);
        if (!n) break;
        chunk c = {0};
        int64_t t0 = mt_mono_ns();
        rc = send_chunk(m, d, n, &c);
        double secs = (double)(mt_mono_ns() - t0) / 1e9;
        int64_t now2 = mt_now_ns();
        /* without a lag: their summaries are in PostgreSQL; minutes without points owe nothing */
        for (size_t i = 0; !rc && i < n; i++)
            if (c.mpts[d[i].minute - c.hour * 60] && raw_later(m, d[i].minute, now2)) {
                if (nowed == owcap) {
                    dirty *o = realloc(owed, (owcap = owcap ? owcap * 2 : 16) * sizeof *o);
                    if (!o) { /* the floor stays below it: the next start sends it */
                        pthread_mutex_lock(&m->w.lock);
                        m->oom = 1;
                        pthread_mutex_unlock(&m->w.lock);
                        owcap = nowed;
                        continue;
                    }
                    owed = o;
                }
                owed[nowed++] = (dirty){d[i].minute, INT64_MAX, false};
            }
        pthread_mutex_lock(&m->w.lock);
        if (!rc) {
            m->st.flushes++;
            m->st.minutes_mirrored += n;
            m->st.rows_delivered += c.grows + c.srows + c.arows;
            m->st.rows_skipped += c.skipped;
            m->st.points_read += c.points;
            m->st.spilled += c.spilled;
            m->st.last_flush_s = secs;
            m->st.flush_s += secs;
            m->rows_per_minute = (c.grows + c.srows + c.arows) / n;
            m->st.raw_rows += c.raw_rows;
            m->st.raw_minutes += c.raw_minutes;
            m->st.raw_skipped += c.raw_skipped;
            if (c.raw_seen) m->st.raw_rate = c.raw_rate, m->st.raw_over = c.raw_over;
            m->st.events_rows += c.ev.events;
            m->st.kpi_rows += c.ev.kpis;
            m->st.events_skipped += c.ev.skipped;
        }
        pthread_mutex_unlock(&m->w.lock);
        chunk_free(&c);
        if (rc == MT_ECORRUPT) { /* a damaged hour: its minutes cannot be computed, the rest can */
            char when[40];
            mt_time_format(d[0].minute * MT_MINUTE_NS, when, sizeof when);
            mt_log(MT_LOG_ERROR,
                   "msg=\"minute mirror skips minutes it cannot read (damaged hour file: metron "
                   "inspect)\" first=%s minutes=%zu",
                   when, n);
            continue;
        }
        if (rc) {
            put_back(m, d, n);
            break;
        }
    }
    pthread_mutex_lock(&m->w.lock);
    for (size_t i = 0; i < nowed; i++) mark_unsafe(m, owed[i].minute, owed[i].since_ns);
    m->last = INT64_MIN; /* a touch of an owed minute must set its time */
    bool stop = m->w.stop;
    pthread_mutex_unlock(&m->w.lock);
    free(owed);
    if (rc || stop) return rc;
    /* what lies below the oldest minute still dirty (or the current one) is in PostgreSQL */
    int64_t to = floor_div(mt_now_ns(), MT_MINUTE_NS);
    pthread_mutex_lock(&m->w.lock);
    for (size_t i = 0; i < m->n; i++)
        if (m->set[i].minute < to) to = m->set[i].minute;
    bool oom = m->oom;
    m->oom = 0;
    pthread_mutex_unlock(&m->w.lock);
    if (oom) return -ENOMEM; /* a minute may be missing from the set: keep the floor */
    return mt_engine_floor_raise(m->e, to * MT_MINUTE_NS);
}

static void *minute_main(void *arg)
{
    mt_minute *m = arg;
    int64_t backoff = 0, next = 0, spent = 0;
    uint64_t seed = (uint64_t)mt_now_ns();
    bool seeded = false;
    for (;;) {
        int rc = MT_OK;
        if (!m->pg && !connect_pg(m)) {
            rc = MT_EPG;
        } else {
            if (mt_now_ns() - m->maintained_ns > MAINTAIN_NS) maintain(m); /* fails: next flush */
            int64_t t0 = mt_mono_ns();
            rc = flush(m, &seeded);
            spent = mt_mono_ns() - t0;
            if (rc == MT_EPG) state(m, 2, mt_pg_errmsg(m->pg));
            if (rc && rc != MT_EPG && rc != MT_ECLOSED) state(m, 2, mt_strerror(rc));
            if (!rc) state(m, 1, "");
            if (rc && m->pg && mt_pg_stale(m->pg)) { /* gone, or no longer a primary */
                mt_pg_close(m->pg);
                m->pg = NULL;
            }
        }
        pthread_mutex_lock(&m->w.lock);
        m->st.connected = m->pg != NULL && rc != MT_EPG;
        if (rc) m->st.failures++;
        pthread_mutex_unlock(&m->w.lock);
        if (rc == MT_ECLOSED) break; /* the engine is gone */
        int64_t now = mt_now_ns();
        if (rc) {
            backoff = backoff ? backoff * 2 : 250 * 1000000LL;
            if (backoff > m->opt.retry_max_ns) backoff = m->opt.retry_max_ns;
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            next = now + backoff / 2 + (int64_t)((seed >> 33) % (uint64_t)(backoff / 2 + 1));
        } else {
            backoff = 0;
            /* the next interval, or the end of the current minute (its last flush) if sooner */
            next = now + m->opt.flush_ns;
            int64_t end = (floor_div(now, MT_MINUTE_NS) + 1) * MT_MINUTE_NS + SETTLE_NS;
            if (end < next) next = end;
            /* at most a fifth of a core: a flush that took d waits 4 d (an open minute of
               millions of points is read again whole by every flush) */
            if (next < now + 4 * spent) next = now + 4 * spent;
        }
        if (nap_until(m, next)) break;
    }
    return NULL;
}

int mt_minute_new(const mt_minute_options *opt, mt_minute **out)
{
    if (!opt || !opt->conninfo || !*opt->conninfo) return MT_EINVAL;
    mt_minute *m = calloc(1, sizeof *m);
    if (!m || !(m->conninfo = strdup(opt->conninfo))) {
        free(m);
        return -ENOMEM;
    }
    m->opt = *opt;
    mt_minute_options d = mt_minute_options_default();
    if (m->opt.flush_ns <= 0) m->opt.flush_ns = d.flush_ns;
    if (m->opt.retention_ns <= 0) m->opt.retention_ns = d.retention_ns;
    if (m->opt.retry_max_ns <= 0) m->opt.retry_max_ns = d.retry_max_ns;
    if (m->opt.ahead_ns < 0) m->opt.ahead_ns = d.ahead_ns;
    if (m->opt.raw_window_ns <= 0) m->opt.raw_window_ns = d.raw_window_ns;
    if (!m->opt.raw_max_rate) m->opt.raw_max_rate = d.raw_max_rate;
    m->last = INT64_MIN;
    int rc = mt_worker_init(&m->w);
    if (rc) {
        free(m->conninfo);
        free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

int mt_minute_start(mt_minute *m, mt_engine *e)
{
    if (m->w.started) return MT_EINVAL;
    m->e = e;
    return mt_worker_start(&m->w, minute_main, m);
}

void mt_minute_stop(mt_minute *m)
{
    if (!m) return;
    mt_worker_stop(&m->w);
    mt_pg_close(m->pg);
    mt_worker_destroy(&m->w);
    free(m->set);
    free(m->conninfo);
    free(m);
}

void mt_minute_stats_get(mt_minute *m, mt_minute_stats *out)
{
    int64_t now = mt_now_ns();
    pthread_mutex_lock(&m->w.lock);
    *out = m->st;
    out->minutes_pending = m->n;
    out->rows_pending = (uint64_t)m->n * m->rows_per_minute;
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < m->n; i++)
        if (m->set[i].since_ns < oldest) oldest = m->set[i].since_ns;
    out->lag_s = oldest == INT64_MAX ? 0 : (double)(now - oldest) / 1e9;
    pthread_mutex_unlock(&m->w.lock);
}
