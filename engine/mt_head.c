/*
 * mt_head.c — the head: points not yet sealed, in memory (per series, in
 * arrival order) and in the LMDB head log (records of zstd-compressed
 * points, one per commit). The log is the write-ahead log: a committed
 * LMDB transaction is durable and atomic, so there is no torn tail to
 * repair, and replaying the records in sequence order rebuilds the memory
 * side exactly, arrival order included (which decides last-write-wins).
 *
 * Record: u8 version, u32 raw length, u32 checksum (low 32 bits of XXH3
 * over the compressed bytes), then a zstd frame of:
 *   uvarint points, then per point: svarint series id delta (version 1: the
 *   uvarint id), svarint ts delta (from the previous point), value by the
 *   series' type: float as a tag (version 2: uvarint zigzag(m) << 5 | e for
 *   a decimal m / 10^e, 16 and then 8 bytes LE for any other bit pattern;
 *   version 1: 8 bytes), int svarint, uint uvarint, bool 1 byte, string
 *   uvarint length + bytes. Version 2 is written; both are read
 *   (docs/format.md). A float of an agent is a short decimal: 3 bytes
 *   instead of 8, before zstd, so the log a group commit writes is shorter.
 */
#include <assert.h>
#include <stddef.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_hash.h"
#include "mt_zstd.h"

#define REC_VERSION   2 /* written */
#define REC_VERSION_1 1 /* read too */
#define REC_HEADER    9
#define REC_RAW_FLOAT 16 /* a float tag's low 5 bits: 8 bytes follow (0..15: a decimal's e) */
#define REC_LEVEL     1  /* the log is rewritten at every seal: favour speed */

/* ---- buckets ---------------------------------------------------------------
 *
 * A bucket holds one hour of one series as a byte stream, appended point by
 * point in arrival order (which decides last-write-wins, so it is kept):
 *   timestamp  uvarint zigzag of the delta of deltas (wrapping 64-bit
 *              arithmetic, from the hour's start: any int64 stamp is exact)
 *   float      uvarint tag: (zigzag(m - previous m) << 2 | 0) for a decimal
 *              m / 10^scale (mt_decimal_at); 1 and 8 bytes LE for any other
 *              bit pattern; (e << 2 | 2) and uvarint zigzag(m) when the
 *              scale changes to e
 *   int, uint  uvarint zigzag of the (wrapping) delta from the previous value
 *   bool       1 byte
 *   string     uvarint length, bytes
 * Regular stamps and decimal values take 3-4 bytes a point; no value is
 * rounded. Buckets live in memory only: the log keeps its own format.
 */

#define BUCKET_MIN 64 /* bytes of a new bucket */

static uint64_t hour_start(int64_t hour)
{
    return (uint64_t)hour * (uint64_t)MT_HOUR_NS; /* wraps at the int64 edges, as decode does */
}

static void cursor_start(const mt_head_bucket *b, uint64_t *ts, uint64_t *dt, uint64_t *v,
                         int32_t *scale)
{
    *ts = hour_start(b->hour), *dt = 0, *v = 0, *scale = -1;
}

void mt_head_cursor_init(mt_head_cursor *c, const mt_head_bucket *b, mt_vtype type)
{
    c->p = b->buf;
    c->end = b->buf + b->len;
    c->type = type;
    cursor_start(b, &c->ts, &c->dt, &c->v, &c->scale);
}

static uint64_t get_uv(mt_head_cursor *c)
{
    mt_rd r = {c->p, c->end};
    uint64_t u = 0;
    int rc = mt_rd_uvarint(&r, &u);
    assert(rc == MT_OK); /* the head wrote it */
    (void)rc;
    c->p = r.p;
    return u;
}

bool mt_head_cursor_next(mt_head_cursor *c, int64_t *ts, mt_val *v, const char **str)
{
    if (c->p >= c->end) return false;
    c->dt += (uint64_t)mt_unzigzag(get_uv(c));
    c->ts += c->dt;
    *ts = (int64_t)c->ts;
    *str = NULL;
    uint64_t u;
    switch (c->type) {
    case MT_VT_FLOAT:
        u = get_uv(c);
        if ((u & 3) == 1) {
            assert(c->end - c->p >= 8);
            v->u = mt_get_le(c->p, 8);
            c->p += 8;
            return true;
        }
        if ((u & 3) == 2) {
            c->scale = (int32_t)(u >> 2);
            c->v = (uint64_t)mt_unzigzag(get_uv(c));
        } else {
            c->v += (uint64_t)mt_unzigzag(u >> 2);
        }
        v->f = mt_decimal_value((int64_t)c->v, c->scale);
        return true;
    case MT_VT_INT:
    case MT_VT_UINT:
        c->v += (uint64_t)mt_unzigzag(get_uv(c));
        v->u = c->v;
        return true;
    case MT_VT_BOOL: v->u = *c->p++; return true;
    case MT_VT_STRING:
        v->u = get_uv(c);
        assert((uint64_t)(c->end - c->p) >= v->u);
        *str = (const char *)c->p;
        c->p += v->u;
        return true;
    }
    assert(!"a bucket of an unknown type");
    return false;
}

/* Room for need more bytes in b; h->bytes follows its capacity. */
static int bucket_reserve(mt_head *h, mt_head_bucket *b, size_t need)
{
    if ((size_t)b->len + need <= b->cap) return MT_OK;
    size_t cap = b->cap ? b->cap : BUCKET_MIN;
    while (cap < (size_t)b->len + need) cap += cap / 2; /* 1.5x: the slack is memory held */
    if (cap > UINT32_MAX) return -ENOMEM;
    uint8_t *n = realloc(b->buf, cap);
    if (!n) return -ENOMEM;
    h->bytes += cap - b->cap;
    b->buf = n;
    b->cap = (uint32_t)cap;
    return MT_OK;
}

static int bucket_append(mt_head *h, mt_head_bucket *b, int64_t ts, mt_vtype t, mt_val v,
                         const char *str)
{
    size_t slen = t == MT_VT_STRING ? v.u : 0;
    if (slen > UINT32_MAX || bucket_reserve(h, b, 2 * MT_UVARINT_MAX + 2 + slen)) return -ENOMEM;
    if (b->n == 0) cursor_start(b, &b->last_ts, &b->last_dt, &b->last_v, &b->scale);
    uint8_t *p = b->buf + b->len;
    uint64_t dt = (uint64_t)ts - b->last_ts;
    p += mt_put_uvarint(p, mt_zigzag((int64_t)(dt - b->last_dt)));
    b->last_ts = (uint64_t)ts;
    b->last_dt = dt;
    int64_t m;
    switch (t) {
    case MT_VT_FLOAT:
        if (b->scale >= 0 && mt_decimal_at(v.f, b->scale, &m)) {
            p += mt_put_uvarint(p, mt_zigzag((int64_t)((uint64_t)m - b->last_v)) << 2);
            b->last_v = (uint64_t)m;
            break;
        }
        for (int e = 0; e <= MT_DECIMAL_MAX_E; e++) {
            if (e == b->scale || !mt_decimal_at(v.f, e, &m)) continue;
            p += mt_put_uvarint(p, (uint64_t)e << 2 | 2);
            p += mt_put_uvarint(p, mt_zigzag(m));
            b->scale = e;
            b->last_v = (uint64_t)m;
            goto done;
        }
        *p++ = 1;
        mt_put_le(p, v.u, 8);
        p += 8;
        break;
    case MT_VT_INT:
    case MT_VT_UINT:
        p += mt_put_uvarint(p, mt_zigzag((int64_t)(v.u - b->last_v)));
        b->last_v = v.u;
        break;
    case MT_VT_BOOL: *p++ = (uint8_t)(v.u & 1); break;
    case MT_VT_STRING:
        p += mt_put_uvarint(p, slen);
        if (slen) memcpy(p, str, slen);
        p += slen;
        break;
    }
done:
    b->len = (uint32_t)(p - b->buf);
    assert(b->len <= b->cap);
    b->n++;
    return MT_OK;
}

/* ---- memory side ---------------------------------------------------------- */

static void series_free(mt_head *h, mt_head_series *s)
{
    for (uint32_t k = 0; k < s->nb; k++) {
        h->bytes -= s->b[k].cap;
        free(s->b[k].buf);
    }
    h->bytes -= (uint64_t)s->bcap * sizeof *s->b;
    free(s->b);
    memset(s, 0, sizeof *s);
}

void mt_head_free(mt_head *h)
{
    for (uint32_t i = 0; i < h->cap; i++) series_free(h, &h->s[i]);
    free(h->s);
    free(h->hours);
    free(h->log);
    memset(h, 0, sizeof *h);
}

/* The first of n elements of size bytes, sorted by the hour each begins with, whose hour is
   not below hour (n when none): the hours of the head and the buckets of a series. */
static size_t hour_lower_bound(const void *arr, size_t n, size_t size, int64_t hour)
{
    static_assert(offsetof(mt_head_hour, hour) == 0 && offsetof(mt_head_bucket, hour) == 0,
                  "each begins with its hour");
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int64_t at;
        memcpy(&at, (const char *)arr + mid * size, sizeof at);
        if (at < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static mt_head_hour *hour_slot(mt_head *h, int64_t hour, uint64_t seq, int64_t wall)
{
    size_t lo = hour_lower_bound(h->hours, h->nhours, sizeof *h->hours, hour);
    if (lo < h->nhours && h->hours[lo].hour == hour) return &h->hours[lo];
    if (h->nhours == h->hours_cap) {
        size_t cap = h->hours_cap ? h->hours_cap * 2 : 16;
        mt_head_hour *n = realloc(h->hours, cap * sizeof *n);
        if (!n) return NULL;
        h->hours = n;
        h->hours_cap = cap;
    }
    memmove(&h->hours[lo + 1], &h->hours[lo], (h->nhours - lo) * sizeof *h->hours);
    h->nhours++;
    h->hours[lo] = (mt_head_hour){.hour = hour, .first_seq = seq, .first_write_wall = wall};
    return &h->hours[lo];
}

/* The series' bucket of an hour, made when absent (NULL: out of memory). */
static mt_head_bucket *bucket_of(mt_head *h, mt_head_series *s, int64_t hour)
{
    if (s->nb && s->b[s->nb - 1].hour == hour) return &s->b[s->nb - 1]; /* the usual case */
    uint32_t lo = (uint32_t)hour_lower_bound(s->b, s->nb, sizeof *s->b, hour);
    if (lo < s->nb && s->b[lo].hour == hour) return &s->b[lo];
    if (s->nb == s->bcap) {
        uint32_t cap = s->bcap ? s->bcap * 2 : 2;
        mt_head_bucket *n = realloc(s->b, cap * sizeof *n);
        if (!n) return NULL;
        h->bytes += (uint64_t)(cap - s->bcap) * sizeof *n;
        s->b = n;
        s->bcap = cap;
    }
    memmove(&s->b[lo + 1], &s->b[lo], (s->nb - lo) * sizeof *s->b);
    s->nb++;
    s->b[lo] = (mt_head_bucket){.hour = hour, .scale = -1};
    return &s->b[lo];
}

void mt_head_prefetch(const mt_head *h, uint32_t id, int64_t ts, int stage)
{
    if (id >= h->cap) return;
    const mt_head_series *s = &h->s[id];
    if (stage == 0) {
        __builtin_prefetch(s);
        return;
    }
    if (!s->nb) return;
    if (stage == 1) { /* the buckets: the newest, and the oldest when there are a few */
        __builtin_prefetch(&s->b[s->nb - 1]);
        if (s->nb > 1) __builtin_prefetch(&s->b[0]);
        return;
    }
    int64_t hour = mt_hour_of(ts);
    const mt_head_bucket *b = &s->b[s->nb - 1];
    if (b->hour != hour) {
        size_t k = hour_lower_bound(s->b, s->nb, sizeof *s->b, hour);
        if (k == s->nb || s->b[k].hour != hour) return;
        b = &s->b[k];
    }
    if (b->buf) __builtin_prefetch(b->buf + b->len, 1);
}

int mt_head_append(mt_head *h, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str,
                   uint64_t seq, int64_t wall)
{
    if (id >= h->cap) {
        uint32_t cap = h->cap ? h->cap : 1024;
        while (cap <= id) cap *= 2;
        mt_head_series *s = realloc(h->s, cap * sizeof *s);
        if (!s) return -ENOMEM;
        memset(s + h->cap, 0, (cap - h->cap) * sizeof *s);
        h->bytes += (uint64_t)(cap - h->cap) * sizeof *s;
        h->s = s;
        h->cap = cap;
    }
    int64_t hour = mt_hour_of(ts);
    mt_head_hour *hh = hour_slot(h, hour, seq, wall);
    mt_head_bucket *b = hh ? bucket_of(h, &h->s[id], hour) : NULL;
    if (!b || bucket_append(h, b, ts, t, v, str)) return -ENOMEM;
    hh->points++;
    hh->last_write_wall = wall;
    hh->last_seq = seq;
    hh->last_mark = ++h->appended;
    h->points++;
    if (ts > h->max_ts) h->max_ts = ts;
    return MT_OK;
}

static bool in_set(const int64_t *hours, size_t n, int64_t hour)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hours[mid] < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && hours[lo] == hour;
}

bool mt_head_hour_in(const int64_t *hours, size_t n, int64_t hour)
{
    return in_set(hours, n, hour);
}

void mt_head_drop(mt_head *h, const int64_t *hours, size_t nh)
{
    for (uint32_t id = 0; id < h->cap; id++) {
        mt_head_series *s = &h->s[id];
        uint32_t keep = 0;
        for (uint32_t k = 0; k < s->nb; k++) {
            if (!in_set(hours, nh, s->b[k].hour)) {
                s->b[keep++] = s->b[k];
                continue;
            }
            h->points -= s->b[k].n;
            h->bytes -= s->b[k].cap;
            free(s->b[k].buf);
        }
        s->nb = keep;
        if (keep == 0 && s->bcap) series_free(h, s); /* an idle series holds nothing */
    }
    size_t keep = 0;
    for (size_t i = 0; i < h->nhours; i++)
        if (!in_set(hours, nh, h->hours[i].hour)) h->hours[keep++] = h->hours[i];
    h->nhours = keep;
}

/* ---- the log's records, as runs ------------------------------------------- */

#define LOG_RUN_POINTS (1u << 16) /* a run takes records until it holds this many points */

void mt_head_log_add(mt_head *h, uint64_t seq, uint64_t points)
{
    assert(!h->nlog || seq > h->log[h->nlog - 1].last_seq);
    if (h->nlog == h->log_cap && (!h->nlog || h->log[h->nlog - 1].points < LOG_RUN_POINTS)) {
        size_t cap = h->log_cap ? h->log_cap * 2 : 64;
        mt_logrun *n = realloc(h->log, cap * sizeof *n);
        if (n) h->log = n, h->log_cap = cap;
    }
    mt_logrun *r = h->nlog ? &h->log[h->nlog - 1] : NULL;
    if (r && (r->points < LOG_RUN_POINTS || h->nlog == h->log_cap)) {
        r->last_seq = seq; /* a long run when memory ran out: only the estimate coarsens */
        r->points += points;
    } else if (h->nlog < h->log_cap) {
        h->log[h->nlog++] = (mt_logrun){seq, seq, points};
    } else {
        return; /* no run and no memory: the record is not counted (an estimate) */
    }
    h->log_points += points;
}

void mt_head_log_trim(mt_head *h, uint64_t seq)
{
    size_t k = 0;
    while (k < h->nlog && h->log[k].last_seq < seq) h->log_points -= h->log[k++].points;
    memmove(h->log, h->log + k, (h->nlog - k) * sizeof *h->log);
    h->nlog -= k;
    if (h->nlog && h->log[0].first_seq < seq) h->log[0].first_seq = seq;
}

uint64_t mt_head_log_points_from(const mt_head *h, uint64_t seq)
{
    uint64_t n = h->log_points;
    for (size_t k = 0; k < h->nlog && h->log[k].last_seq < seq; k++) n -= h->log[k].points;
    return n;
}

uint64_t mt_head_log_floor(const mt_head *h, const int64_t *hours, size_t n, uint64_t next)
{
    uint64_t floor = next;
    for (size_t i = 0; i < h->nhours; i++)
        if (!in_set(hours, n, h->hours[i].hour) && h->hours[i].first_seq < floor)
            floor = h->hours[i].first_seq;
    return floor;
}

/* Sort order for collect: by timestamp, then arrival (so the later of equal stamps is last). */
typedef struct ord {
    int64_t ts;
    uint32_t i;
} ord;

static int ord_cmp(const void *a, const void *b)
{
    const ord *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

int mt_head_collect(const mt_head *h, uint32_t id, int64_t from, int64_t to, mt_vtype type,
                    int64_t **ts, mt_val **v, char **strs, size_t *strs_len, size_t *n)
{
    *ts = NULL, *v = NULL, *strs = NULL, *strs_len = 0, *n = 0;
    if (id >= h->cap || h->s[id].nb == 0 || from >= to) return MT_OK;
    const mt_head_series *s = &h->s[id];
    int64_t h0 = mt_hour_of(from), h1 = mt_hour_of(to - 1);
    size_t cap = 0, slen = 0, most = 0;
    for (uint32_t k = 0; k < s->nb; k++)
        if (s->b[k].hour >= h0 && s->b[k].hour <= h1) {
            cap += s->b[k].n;
            slen += type == MT_VT_STRING ? s->b[k].len : 0; /* a bound on the string bytes */
            if (s->b[k].n > most) most = s->b[k].n;
        }
    if (cap == 0) return MT_OK;
    int64_t *ots = malloc(cap * sizeof *ots);
    mt_val *ov = malloc(cap * sizeof *ov);
    char *os = malloc(slen ? slen : 1);
    ord *o = malloc(most * sizeof *o);
    mt_val *bv = malloc(most * sizeof *bv); /* one bucket's values, by arrival */
    const char **bs = type == MT_VT_STRING ? malloc(most * sizeof *bs) : NULL;
    int rc = ots && ov && os && o && bv && (type != MT_VT_STRING || bs) ? MT_OK : -ENOMEM;
    size_t k = 0, sl = 0;
    for (uint32_t bi = 0; !rc && bi < s->nb; bi++) {
        const mt_head_bucket *b = &s->b[bi];
        if (b->hour < h0 || b->hour > h1) continue;
        /* Buckets ascend by hour, so sorting each one sorts the whole. */
        mt_head_cursor c;
        mt_head_cursor_init(&c, b, type);
        size_t m = 0;
        bool sorted = true;
        int64_t t;
        mt_val val;
        const char *str;
        for (uint32_t i = 0; mt_head_cursor_next(&c, &t, &val, &str); i++) {
            if (t < from || t >= to) continue;
            if (m && t <= o[m - 1].ts) sorted = false;
            o[m] = (ord){t, i};
            bv[i] = val;
            if (bs) bs[i] = str;
            m++;
        }
        if (!sorted) qsort(o, m, sizeof *o, ord_cmp);
        size_t w = 0;
        for (size_t i = 0; i < m; i++) {
            if (w && o[w - 1].ts == o[i].ts) w--; /* of equal stamps the last written wins */
            o[w++] = o[i];
        }
        for (size_t i = 0; i < w; i++) {
            val = bv[o[i].i];
            if (bs) {
                size_t len = val.u;
                memcpy(os + sl, bs[o[i].i], len);
                val.u = MT_VAL_STR(sl, len);
                sl += len;
            }
            ots[k] = o[i].ts;
            ov[k++] = val;
        }
    }
    free(o);
    free(bv);
    free(bs);
    if (rc) {
        free(ots), free(ov), free(os);
        return rc;
    }
    *ts = ots, *v = ov, *strs = os, *strs_len = sl, *n = k;
    return MT_OK;
}

/* ---- log records ---------------------------------------------------------- */

static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return MT_OK;
    size_t c = *cap ? *cap : 65536;
    while (c < need) c *= 2;
    uint8_t *n = realloc(*buf, c);
    if (!n) return -ENOMEM;
    *buf = n;
    *cap = c;
    return MT_OK;
}

void mt_rec_reset(mt_recbuf *r)
{
    r->raw_len = 10; /* room for the point count, written by finish */
    r->npoints = 0;
    r->last_ts = 0;
    r->last_id = 0;
    r->last_e = 0;
    r->out_len = 0;
}

/* A float's tag: the decimal at the exponent last used, else at the smallest that holds it. */
static uint8_t *put_float(mt_recbuf *r, uint8_t *p, mt_val v)
{
    int64_t m;
    int e = r->last_e;
    if (!mt_decimal_at(v.f, e, &m)) {
        e = 0;
        while (e <= MT_DECIMAL_MAX_E && !mt_decimal_at(v.f, e, &m)) e++;
    }
    if (e > MT_DECIMAL_MAX_E) {
        *p++ = REC_RAW_FLOAT;
        mt_put_le(p, v.u, 8);
        return p + 8;
    }
    _Static_assert(MT_DECIMAL_MAX_E < REC_RAW_FLOAT, "a decimal's e fits below the raw tag");
    r->last_e = e;
    return p + mt_put_uvarint(p, mt_zigzag(m) << 5 | (uint64_t)e); /* |m| < 2^53: no bit lost */
}

int mt_rec_add(mt_recbuf *r, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str)
{
    size_t slen = t == MT_VT_STRING ? v.u : 0;
    if (reserve(&r->raw, &r->raw_cap, r->raw_len + 5 + 10 + 10 + slen)) return -ENOMEM;
    uint8_t *p = r->raw + r->raw_len;
    /* the fields of a line are series made one after another: mostly 1 apart */
    p += mt_put_uvarint(p, mt_zigzag((int64_t)id - (int64_t)r->last_id));
    p += mt_put_uvarint(p, mt_zigzag((int64_t)((uint64_t)ts - (uint64_t)r->last_ts)));
    switch (t) {
    case MT_VT_FLOAT: p = put_float(r, p, v); break;
    case MT_VT_INT: p += mt_put_uvarint(p, mt_zigzag(v.i)); break;
    case MT_VT_UINT: p += mt_put_uvarint(p, v.u); break;
    case MT_VT_BOOL: *p++ = (uint8_t)(v.u & 1); break;
    case MT_VT_STRING:
        p += mt_put_uvarint(p, slen);
        if (slen) memcpy(p, str, slen);
        p += slen;
        break;
    }
    r->raw_len = (size_t)(p - r->raw);
    r->last_ts = ts;
    r->last_id = id;
    r->npoints++;
    return MT_OK;
}

int mt_rec_finish(mt_recbuf *r)
{
    /* The count goes in front: shift it into the 10 bytes kept for it. */
    uint8_t cnt[10];
    size_t cl = mt_put_uvarint(cnt, r->npoints);
    uint8_t *raw = r->raw + 10 - cl;
    memcpy(raw, cnt, cl);
    size_t raw_len = r->raw_len - (10 - cl);
    if (!r->zc && mt_zstd_c_new(&r->zc)) return -ENOMEM;
    size_t bound = mt_zstd_bound(raw_len), zn;
    if (reserve(&r->out, &r->out_cap, REC_HEADER + bound)) return -ENOMEM;
    int rc = mt_zstd_compress(r->zc, r->out + REC_HEADER, bound, raw, raw_len, REC_LEVEL, &zn);
    if (rc) return rc;
    uint32_t sum = (uint32_t)mt_hash64(r->out + REC_HEADER, zn);
    r->out[0] = REC_VERSION;
    mt_store_le32(r->out + 1, (uint32_t)raw_len);
    mt_store_le32(r->out + 5, sum);
    r->out_len = REC_HEADER + zn;
    return MT_OK;
}

void mt_rec_free(mt_recbuf *r)
{
    free(r->raw);
    free(r->out);
    mt_zstd_c_free(r->zc);
    memset(r, 0, sizeof *r);
}

int mt_rec_replay(const void *rec, size_t len, mt_vtype (*type_of)(void *, uint32_t),
                  int (*fn)(void *, const mt_rec_point *), void *ud)
{
    const uint8_t *h = rec;
    if (len < REC_HEADER) return MT_ECORRUPT;
    if (h[0] != REC_VERSION && h[0] != REC_VERSION_1) return MT_EFORMAT;
    const bool v1 = h[0] == REC_VERSION_1;
    uint32_t raw_len = mt_load_le32(h + 1), sum = mt_load_le32(h + 5);
    if ((uint32_t)mt_hash64(h + REC_HEADER, len - REC_HEADER) != sum || raw_len > (1u << 30))
        return MT_ECORRUPT;
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    if (!raw) return -ENOMEM;
    int rc = mt_zstd_decompress(NULL, raw, raw_len, h + REC_HEADER, len - REC_HEADER);
    mt_rd r = {raw, raw + raw_len};
    uint64_t n = 0, u;
    int64_t ts = 0, id = 0;
    if (!rc) rc = mt_rd_uvarint(&r, &n);
    for (uint64_t i = 0; !rc && i < n; i++) {
        mt_rec_point pt = {0};
        if ((rc = mt_rd_uvarint(&r, &u))) break;
        /* wrapping: a damaged delta gives an id the bounds below refuse */
        id = v1 ? (int64_t)u : (int64_t)((uint64_t)id + (uint64_t)mt_unzigzag(u));
        if ((v1 && u > UINT32_MAX) || id <= 0 || id > UINT32_MAX) {
            rc = MT_ECORRUPT;
            break;
        }
        if ((rc = mt_rd_uvarint(&r, &u))) break;
        ts = (int64_t)((uint64_t)ts + (uint64_t)mt_unzigzag(u));
        pt.id = (uint32_t)id;
        pt.ts = ts;
        mt_vtype t = type_of(ud, pt.id);
        switch (t) {
        case MT_VT_FLOAT:
            if (!v1) {
                if ((rc = mt_rd_uvarint(&r, &u))) break;
                unsigned e = (unsigned)(u & 31);
                if (e <= MT_DECIMAL_MAX_E) {
                    pt.v.f = mt_decimal_value(mt_unzigzag(u >> 5), (int)e);
                    break;
                }
                if (u != REC_RAW_FLOAT) {
                    rc = MT_ECORRUPT;
                    break;
                }
            }
            if (r.end - r.p < 8) {
                rc = MT_ECORRUPT;
                break;
            }
            pt.v.u = mt_get_le(r.p, 8);
            r.p += 8;
            break;
        case MT_VT_INT: rc = mt_rd_svarint(&r, &pt.v.i); break;
        case MT_VT_UINT: rc = mt_rd_uvarint(&r, &pt.v.u); break;
        case MT_VT_BOOL:
            if (r.p >= r.end || *r.p > 1)
                rc = MT_ECORRUPT;
            else
                pt.v.u = *r.p++;
            break;
        case MT_VT_STRING:
            if (!(rc = mt_rd_uvarint(&r, &u)) && u > (uint64_t)(r.end - r.p)) rc = MT_ECORRUPT;
            if (!rc) {
                pt.v.u = u;
                pt.str = (const char *)r.p;
                r.p += u;
            }
            break;
        default: rc = MT_ECORRUPT; break;
        }
        if (!rc) rc = fn(ud, &pt);
    }
    if (!rc && r.p != r.end) rc = MT_ECORRUPT;
    free(raw);
    return rc;
}

/* ---- merging a sealed chunk with head points ------------------------------ */

void mt_pts_free(mt_pts *p)
{
    free(p->ts);
    free(p->v);
    free(p->strs);
    memset(p, 0, sizeof *p);
}

int mt_pts_merge(mt_vtype t, const mt_points *old, const mt_pts *h, mt_pts *out)
{
    size_t cap = old->n + h->n;
    memset(out, 0, sizeof *out);
    out->ts = malloc((cap ? cap : 1) * sizeof *out->ts);
    out->v = malloc((cap ? cap : 1) * sizeof *out->v);
    size_t sl = t == MT_VT_STRING ? old->strs_len + h->strs_len : 0;
    out->strs = malloc(sl ? sl : 1);
    if (!out->ts || !out->v || !out->strs) {
        mt_pts_free(out);
        return -ENOMEM;
    }
    size_t i = 0, j = 0, n = 0;
    while (i < old->n || j < h->n) {
        bool take_h = j < h->n && (i >= old->n || h->ts[j] <= old->ts[i]);
        if (take_h && i < old->n && h->ts[j] == old->ts[i]) i++; /* replaced by the head */
        int64_t ts = take_h ? h->ts[j] : old->ts[i];
        mt_val v = take_h ? h->v[j] : old->vals[i];
        if (t == MT_VT_STRING) {
            const char *src = (take_h ? h->strs : old->strs) + MT_VAL_STR_OFF(v);
            size_t len = MT_VAL_STR_LEN(v);
            memcpy(out->strs + out->strs_len, src, len);
            v.u = MT_VAL_STR(out->strs_len, len);
            out->strs_len += len;
        }
        out->ts[n] = ts;
        out->v[n++] = v;
        if (take_h)
            j++;
        else
            i++;
    }
    out->n = n;
    return MT_OK;
}
