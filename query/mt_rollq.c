/*
 * mt_rollq.c — rollup reports (mt_rollq.h). Hourly rows stream from the
 * index as stored; a longer bucket is gathered from its hours into
 * accumulators kept sorted by key, then written in key order.
 */
#include "mt_rollq.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_endian.h"
#include "mt_out.h"
#include "mt_query_int.h"
#include "mt_series.h"
#include "mt_sketch.h"
#include "mt_stats.h"
#include "mt_time.h"

#define HOUR MT_HOUR_NS

/* LMDB keys are at most 511 bytes: longer groups have no rollup row (mt_rollup.c) */
#define GROUP_MAX 512

static const double fractions[3] = {0.5, 0.95, 0.99};

typedef struct acc {
    char key[GROUP_MAX]; /* the group key, or the series id (4 bytes BE) */
    size_t klen;
    uint32_t id;
    uint64_t count;
    double sum, min, max, q[3];
    mt_sketch *sk; /* groups: the merged hours */
    uint32_t *ids; /* exact groups: the series seen */
    size_t nids, idcap;
} acc;

typedef struct report {
    mt_engine *e;
    const mt_rollq_spec *spec;
    mt_output_format f;
    mt_out o;
    size_t rows;
    bool filtered;  /* series: only those in sel */
    bool gfiltered; /* groups: only those in gsel */
    uint32_t *sel;  /* sorted ids the selector (and the tenant) matched */
    size_t nsel;
    acc *gsel; /* series mode: unused; groups mode: the groups of sel, sorted */
    size_t ngsel, gselcap;
    acc **a; /* bucket accumulators, sorted by key */
    size_t na, acap;
    double *vals; /* exact quantiles: the bucket's values */
    size_t nvals, valcap;
    char damage[4200]; /* the hour and file of an MT_ECORRUPT met by an exact read */
    char **labels;     /* series mode: labels[id], formatted once for every hour's row */
    size_t nlabels;
} report;

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* The index of key in the sorted accs, or where it belongs (*found false). */
static size_t find(acc *const *v, size_t n, const char *key, size_t klen, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = keycmp(v[mid]->key, v[mid]->klen, key, klen);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void id_key(uint32_t id, char k[4])
{
    mt_store_be32(k, id);
}

/* ---- the selector: which series, and so which groups ---------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int resolve(report *r, char *err, size_t errcap)
{
    const mt_rollq_spec *s = r->spec;
    bool selector = s->select && *s->select;
    if (!selector && !s->tenant) return MT_OK;
    if (!selector) {
        /* a tenant's whole report: its series from the postings; its groups by key (wanted_group)
         */
        int rc =
            mt_engine_postings(r->e, MT_TERM_TAG, (mt_name){MT_TENANT_TAG, strlen(MT_TENANT_TAG)},
                               (mt_name){s->tenant, strlen(s->tenant)}, &r->sel, &r->nsel);
        r->filtered = rc == MT_OK;
        return rc;
    }
    /* the ids alone: opening a query would also name and prepare every series */
    mt_selector *sel = malloc(sizeof *sel);
    if (!sel) return -ENOMEM;
    int rc = mt_selector_parse(s->select, NULL, sel, err, errcap);
    if (!rc && s->tenant) rc = mt_selector_restrict(sel, s->tenant, err, errcap);
    if (!rc) rc = mt_selector_resolve(r->e, sel, &r->sel, &r->nsel);
    mt_selector_free(sel);
    free(sel);
    if (rc) return rc;
    r->filtered = true; /* r->sel is sorted, as wanted_series' bsearch needs */
    if (s->series) return MT_OK;
    r->gfiltered = true;
    /* the groups of the matched series, sorted, each once */
    acc **v = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; !rc && i < r->nsel; i++) {
        acc g = {0};
        rc = mt_engine_series_group(r->e, r->sel[i], g.key, sizeof g.key, &g.klen);
        if (rc == MT_ELIMIT) { /* a group too long to have rollups */
            rc = MT_OK;
            continue;
        }
        if (rc) break;
        bool found;
        size_t at = find(v, n, g.key, g.klen, &found);
        if (found) continue;
        if ((rc = mt_grow(&v, &cap, n + 1, sizeof *v, 16))) break;
        if (!(v[n] = malloc(sizeof g))) {
            rc = -ENOMEM;
            break;
        }
        acc *fresh = v[n];
        memmove(v + at + 1, v + at, (n - at) * sizeof *v);
        *fresh = g;
        v[at] = fresh;
        n++;
    }
    /* flatten: the group filter only needs the keys */
    if (!rc && n && !(r->gsel = malloc(n * sizeof *r->gsel))) rc = -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!rc) r->gsel[i] = *v[i];
        free(v[i]);
    }
    free(v);
    r->ngsel = rc ? 0 : n;
    return rc;
}

static bool wanted_series(const report *r, uint32_t id)
{
    return !r->filtered || bsearch(&id, r->sel, r->nsel, sizeof id, cmp_u32);
}

static bool wanted_group(const report *r, const void *key, size_t klen)
{
    const char *t = r->spec->tenant;
    /* a group key starts with its business_id and a 0 */
    if (t && (klen <= strlen(t) || memcmp(key, t, strlen(t) + 1) != 0)) return false;
    if (!r->gfiltered) return true;
    size_t lo = 0, hi = r->ngsel;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = keycmp(r->gsel[mid].key, r->gsel[mid].klen, key, klen);
        if (!c) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void header(report *r)
{
    static const char *const group_cols[] = {"hour_bucket", "business_id", "metric_category",
                                             "metric_name"};
    static const char *const value_cols[] = {"sample_count", "avg_value", "min_value", "max_value",
                                             "median_value", "p95_value", "p99_value"};
    mt_out *o = &r->o;
    if (r->f == MT_OUT_JSON) mt_out_puts(o, "{\"columns\":[");
    if (r->spec->series) {
        mt_out_cell(o, r->f, true, "hour_bucket", 11, true);
        mt_out_cell(o, r->f, false, "series", 6, true);
    } else {
        for (int i = 0; i < 4; i++)
            mt_out_cell(o, r->f, i == 0, group_cols[i], strlen(group_cols[i]), true);
    }
    for (int i = 0; i < 7; i++)
        mt_out_cell(o, r->f, false, value_cols[i], strlen(value_cols[i]), true);
    mt_out_puts(o, r->f == MT_OUT_JSON ? "],\"rows\":[" : "\n");
}

static void number(report *r, double v)
{
    char num[64];
    if (isfinite(v))
        mt_out_cell(&r->o, r->f, false, num, mt_format_double(v, num, sizeof num), false);
    else if (r->f == MT_OUT_JSON)
        mt_out_cell(&r->o, r->f, false, "null", 4, false);
    else
        mt_out_cell(&r->o, r->f, false, "", 0, false);
}

/* A series' label, kept in r->labels; into buf only when memory is short. */
static const char *series_label(report *r, uint32_t id, char *buf, size_t cap)
{
    if (id < r->nlabels && r->labels[id]) return r->labels[id];
    char skey[MT_SERIES_MAX_KEY];
    size_t sl;
    buf[0] = '\0';
    if (mt_engine_series_key(r->e, id, skey, sizeof skey, &sl) == MT_OK)
        mt_series_format(skey, sl, buf, cap);
    if (id >= r->nlabels) {
        size_t n = r->nlabels ? r->nlabels : 1024;
        while (n <= id) n *= 2;
        char **l = realloc(r->labels, n * sizeof *l);
        if (!l) return buf;
        memset(l + r->nlabels, 0, (n - r->nlabels) * sizeof *l);
        r->labels = l;
        r->nlabels = n;
    }
    r->labels[id] = strdup(buf);
    return r->labels[id] ? r->labels[id] : buf;
}

/* One row: a group key (business_id 0 measurement 0 field) or a series id. */
static void row(report *r, int64_t t, const char *key, size_t klen, uint32_t id, uint64_t count,
                double sum, double min, double max, const double q[3])
{
    char ts[48], label[4096];
    mt_out *o = &r->o;
    mt_time_format(t, ts, sizeof ts);
    if (r->f == MT_OUT_JSON) mt_out_puts(o, r->rows ? ",[" : "[");
    mt_out_cell(o, r->f, true, ts, strlen(ts), true);
    if (r->spec->series) {
        const char *l = series_label(r, id, label, sizeof label);
        mt_out_cell(o, r->f, false, l, strlen(l), true);
    } else {
        const char *p = key, *end = key + klen;
        for (int part = 0; part < 3; part++) {
            const char *z = memchr(p, '\0', (size_t)(end - p));
            size_t n = (size_t)((z ? z : end) - p);
            if (part == 0 && n == 0 && r->f == MT_OUT_JSON)
                mt_out_puts(o, ",null"); /* the system-wide tenant: NULL in the seed's table */
            else
                mt_out_cell(o, r->f, false, p, n, true);
            p = z ? z + 1 : end;
        }
    }
    char cnt[24], *c = cnt + sizeof cnt;
    uint64_t left = count;
    do *--c = (char)('0' + left % 10);
    while (left /= 10);
    mt_out_cell(o, r->f, false, c, (size_t)(cnt + sizeof cnt - c), false);
    number(r, sum / (double)count);
    number(r, min);
    number(r, max);
    for (int i = 0; i < 3; i++) number(r, q[i]);
    mt_out_puts(o, r->f == MT_OUT_JSON ? "]" : "\n");
    r->rows++;
}

/* ---- hourly rows: as stored ------------------------------------------------------------- */

static int hourly(void *ud, const mt_rollup *ro)
{
    report *r = ud;
    bool want =
        r->spec->series ? wanted_series(r, ro->id) : wanted_group(r, ro->group, ro->group_len);
    if (want) {
        const double q[3] = {ro->p50, ro->p95, ro->p99};
        row(r, ro->hour * HOUR, ro->group, ro->group_len, ro->id, ro->count, ro->sum, ro->min,
            ro->max, q);
    }
    return r->o.rc;
}

/* ---- buckets: hours merged -------------------------------------------------------------- */

static int acc_get(report *r, const char *key, size_t klen, bool create, acc **out)
{
    bool found;
    if (klen > GROUP_MAX) return MT_ELIMIT;
    size_t at = find(r->a, r->na, key, klen, &found);
    if (found || !create) {
        *out = found ? r->a[at] : NULL;
        return MT_OK;
    }
    int rc = mt_grow(&r->a, &r->acap, r->na + 1, sizeof *r->a, 16);
    acc *a = rc ? NULL : calloc(1, sizeof *a);
    if (!a) return -ENOMEM;
    memcpy(a->key, key, klen);
    a->klen = klen;
    a->min = INFINITY;
    a->max = -INFINITY;
    if (!r->spec->series && (rc = mt_sketch_new(&a->sk))) {
        free(a);
        return rc;
    }
    memmove(r->a + at + 1, r->a + at, (r->na - at) * sizeof *r->a);
    r->a[at] = a;
    r->na++;
    *out = a;
    return MT_OK;
}

static int gather(void *ud, const mt_rollup *ro)
{
    report *r = ud;
    char idk[4];
    const char *key = ro->group;
    size_t klen = ro->group_len;
    if (r->spec->series) {
        if (!wanted_series(r, ro->id)) return MT_OK;
        id_key(ro->id, idk);
        key = idk, klen = 4;
    } else if (!wanted_group(r, key, klen)) {
        return MT_OK;
    }
    acc *a;
    int rc = acc_get(r, key, klen, true, &a);
    if (rc) return rc;
    a->id = ro->id;
    a->count += ro->count;
    a->sum += ro->sum;
    if (ro->min < a->min) a->min = ro->min;
    if (ro->max > a->max) a->max = ro->max;
    if (a->sk && ro->sketch_len) rc = mt_sketch_decode_merge(a->sk, ro->sketch, ro->sketch_len);
    return rc;
}

/* Exact groups: note which series each group's hours hold. */
static int gather_ids(void *ud, const mt_rollup *ro)
{
    report *r = ud;
    char key[GROUP_MAX];
    size_t klen;
    acc *a;
    int rc = mt_engine_series_group(r->e, ro->id, key, sizeof key, &klen);
    if (rc == MT_ELIMIT) return MT_OK;
    if (!rc) rc = acc_get(r, key, klen, false, &a);
    if (rc || !a) return rc;
    if (a->nids && a->ids[a->nids - 1] == ro->id) return MT_OK;
    for (size_t i = 0; i < a->nids; i++)
        if (a->ids[i] == ro->id) return MT_OK;
    if ((rc = mt_grow(&a->ids, &a->idcap, a->nids + 1, sizeof *a->ids, 16))) return rc;
    a->ids[a->nids++] = ro->id;
    return MT_OK;
}

/* Every numeric value of the series over [from, to), appended to r->vals. */
static int collect(report *r, uint32_t id, int64_t from, int64_t to)
{
    mt_scan *s;
    int rc = mt_scan_open(r->e, id, from, to, &s);
    if (rc) return rc;
    mt_points p;
    while ((rc = mt_scan_next(s, &p)) == MT_OK) {
        if (p.type == MT_VT_STRING) continue;
        if ((rc = mt_grow(&r->vals, &r->valcap, r->nvals + p.n, sizeof *r->vals, 16))) break;
        for (size_t i = 0; i < p.n; i++) {
            mt_val v = p.vals[i];
            r->vals[r->nvals++] = p.type == MT_VT_FLOAT ? v.f
                                  : p.type == MT_VT_INT ? (double)v.i
                                                        : (double)v.u;
        }
    }
    if (rc == MT_ECORRUPT) mt_scan_damage(s, r->damage, sizeof r->damage);
    mt_scan_close(s);
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

static int flush(report *r, int64_t t, int64_t from, int64_t to)
{
    int rc = MT_OK;
    for (size_t i = 0; i < r->na && !rc; i++) {
        acc *a = r->a[i];
        if (!r->spec->series && !r->spec->exact) {
            for (int k = 0; k < 3 && !rc; k++)
                rc = mt_sketch_quantile(a->sk, fractions[k], &a->q[k]);
        } else {
            r->nvals = 0;
            if (r->spec->series) rc = collect(r, a->id, from, to);
            for (size_t k = 0; k < a->nids && !rc; k++) rc = collect(r, a->ids[k], from, to);
            if (!rc) rc = mt_percentiles_cont(r->vals, r->nvals, fractions, 3, a->q);
        }
        if (!rc) row(r, t, a->key, a->klen, a->id, a->count, a->sum, a->min, a->max, a->q);
        rc = rc ? rc : r->o.rc;
    }
    for (size_t i = 0; i < r->na; i++) {
        mt_sketch_free(r->a[i]->sk);
        free(r->a[i]->ids);
        free(r->a[i]);
    }
    r->na = 0;
    return rc;
}

static int buckets(report *r, int64_t h0, int64_t h1)
{
    int64_t step = r->spec->step, hours = step / HOUR;
    int rc = MT_OK;
    /* the first bucket holding hour h0, aligned to the epoch like date_bin */
    int64_t b = h0 >= 0 ? h0 / hours * hours : -((-h0 + hours - 1) / hours) * hours;
    for (; b < h1 && !rc; b += hours) {
        int64_t bh0 = b < h0 ? h0 : b, bh1 = b + hours > h1 ? h1 : b + hours;
        rc = mt_engine_rollups(r->e, bh0, bh1, !r->spec->series, gather, r);
        if (!rc && !r->spec->series && r->spec->exact)
            rc = mt_engine_rollups(r->e, bh0, bh1, false, gather_ids, r);
        if (!rc) rc = flush(r, b * HOUR, bh0 * HOUR, bh1 * HOUR);
    }
    return rc;
}

/* ---- hours not sealed yet ---------------------------------------------------------------- */

static int any_rollup(void *ud, const mt_rollup *ro)
{
    (void)ro;
    *(bool *)ud = true;
    return 1; /* one is enough */
}

/* The hours that start in [from, to), as mt_rollq_write reads them. */
static void hour_range(const mt_rollq_spec *spec, int64_t *h0, int64_t *h1)
{
    *h0 = spec->from / HOUR + (spec->from % HOUR > 0);
    *h1 = spec->to / HOUR + (spec->to % HOUR > 0);
    if (spec->from < 0 && spec->from % HOUR) *h0 = spec->from / HOUR;
    if (spec->to < 0 && spec->to % HOUR) *h1 = spec->to / HOUR;
}

int mt_rollq_open_hours(mt_engine *e, const mt_rollq_spec *spec, int64_t now_ns, mt_rollq_open *out,
                        size_t cap)
{
    int64_t grace = spec->grace_ns > 0 ? spec->grace_ns : mt_engine_grace_ns(e), h0, h1;
    hour_range(spec, &h0, &h1);
    int64_t now_h = now_ns >= 0 ? now_ns / HOUR : (now_ns - HOUR + 1) / HOUR;
    size_t n = 0;
    /* an hour ending more than the grace ago is sealed or holds nothing: no older one waits */
    for (int64_t h = now_h - 1 - grace / HOUR; h <= now_h && n < cap; h++) {
        if (h < h0 || h >= h1 || (h + 1) * HOUR + grace <= now_ns) continue;
        bool sealed = false;
        int rc = mt_engine_rollups(e, h, h + 1, true, any_rollup, &sealed);
        if (rc < 0) return rc;
        if (!sealed) out[n++] = (mt_rollq_open){h * HOUR, (h + 1) * HOUR + grace};
    }
    return (int)n;
}

/* Say when the open hours appear: a JSON member (after "rows") or a table's last lines. */
static void open_note(report *r, const mt_rollq_open *op, int n)
{
    char h[48], at[48], line[256];
    if (r->f == MT_OUT_JSON) mt_out_puts(&r->o, ",\"open\":[");
    for (int i = 0; i < n; i++) {
        mt_time_format(op[i].hour_ns, h, sizeof h);
        mt_time_format(op[i].available_ns, at, sizeof at);
        if (r->f == MT_OUT_JSON)
            snprintf(line, sizeof line, "%s{\"hour\":\"%s\",\"available_at\":\"%s\"}", i ? "," : "",
                     h, at);
        else
            snprintf(line, sizeof line,
                     "-- hour %s is open: its rollup appears at %s (its end plus the grace, "
                     "once its writes settle)\n",
                     h, at);
        mt_out_puts(&r->o, line);
    }
    if (r->f == MT_OUT_JSON) mt_out_puts(&r->o, "]");
}

/* Keep the last line mt_engine_damage gives (the most recent damage met). */
static void last_line(void *ud, const char *line)
{
    snprintf(ud, sizeof((report *)0)->damage, "%s", line);
}

int mt_rollq_write(mt_engine *e, const mt_rollq_spec *spec, mt_output_format f, mt_write_fn fn,
                   void *ud, size_t *rows, char *err, size_t errcap)
{
    if (errcap) *err = '\0';
    if (spec->to <= spec->from) {
        snprintf(err, errcap, "the range is empty: to must be after from");
        return MT_EINVAL;
    }
    if (spec->step < 0 || spec->step % HOUR) {
        snprintf(err, errcap, "step must be a whole number of hours (1h, 1d, 30d)");
        return MT_EINVAL;
    }
    report r = {.e = e, .spec = spec, .f = f, .o = {fn, ud, 0}};
    int rc = resolve(&r, err, errcap);
    if (!rc) {
        int64_t h0, h1;
        hour_range(spec, &h0, &h1);
        header(&r);
        if (spec->step <= HOUR)
            rc = mt_engine_rollups(e, h0, h1, !spec->series, hourly, &r);
        else
            rc = buckets(&r, h0, h1);
        if (r.f == MT_OUT_JSON) mt_out_puts(&r.o, "]");
        mt_rollq_open op[4];
        int nop = rc || r.f == MT_OUT_CSV ? 0 : mt_rollq_open_hours(e, spec, mt_now_ns(), op, 4);
        if (nop < 0) rc = nop;
        if (nop > 0) open_note(&r, op, nop);
        if (r.f == MT_OUT_JSON) mt_out_puts(&r.o, "}\n");
        if (!rc) rc = r.o.rc;
        /* a damaged rollup record of index.mdb: the engine keeps what it was */
        if (rc == MT_ECORRUPT && !r.damage[0]) mt_engine_damage(e, last_line, r.damage);
        if (rc && !*err)
            snprintf(err, errcap, "rollups: %s%s%s", mt_strerror(rc), r.damage[0] ? ": " : "",
                     r.damage);
    }
    for (size_t i = 0; i < r.na; i++) {
        mt_sketch_free(r.a[i]->sk);
        free(r.a[i]->ids);
        free(r.a[i]);
    }
    free(r.a);
    free(r.sel);
    free(r.gsel);
    free(r.vals);
    for (size_t i = 0; i < r.nlabels; i++) free(r.labels[i]);
    free(r.labels);
    if (rows) *rows = r.rows;
    return rc;
}
