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
 *   uvarint points, then per point: uvarint series id, svarint ts delta
 *   (from the previous point), value by the series' type: float 8 bytes,
 *   int svarint, uint uvarint, bool 1 byte, string uvarint length + bytes.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_hash.h"

#define REC_VERSION 1
#define REC_HEADER  9
#define REC_LEVEL   1 /* the log is rewritten at every seal: favour speed */

/* ---- memory side ---------------------------------------------------------- */

void mt_head_free(mt_head *h)
{
    for (uint32_t i = 0; i < h->cap; i++) {
        free(h->s[i].ts);
        free(h->s[i].v);
        free(h->s[i].strs);
    }
    free(h->s);
    free(h->hours);
    free(h->log);
    memset(h, 0, sizeof *h);
}

static mt_head_hour *hour_slot(mt_head *h, int64_t hour, uint64_t seq, int64_t wall)
{
    size_t lo = 0, hi = h->nhours;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->hours[mid].hour < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
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

int mt_head_append(mt_head *h, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str,
                   uint64_t seq, int64_t wall)
{
    if (id >= h->cap) {
        uint32_t cap = h->cap ? h->cap : 1024;
        while (cap <= id) cap *= 2;
        mt_head_series *s = realloc(h->s, cap * sizeof *s);
        if (!s) return -ENOMEM;
        memset(s + h->cap, 0, (cap - h->cap) * sizeof *s);
        h->s = s;
        h->cap = cap;
    }
    mt_head_series *s = &h->s[id];
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 64;
        int64_t *nts = realloc(s->ts, cap * sizeof *nts);
        if (nts) s->ts = nts;
        mt_val *nv = realloc(s->v, cap * sizeof *nv);
        if (nv) s->v = nv;
        if (!nts || !nv) return -ENOMEM;
        s->cap = cap;
    }
    if (t == MT_VT_STRING) {
        if (s->strs_len + v.u > s->strs_cap) {
            size_t cap = s->strs_cap ? s->strs_cap : 256;
            while (cap < s->strs_len + v.u) cap *= 2;
            if (cap > UINT32_MAX) return -ENOMEM;
            char *ns = realloc(s->strs, cap);
            if (!ns) return -ENOMEM;
            s->strs = ns;
            s->strs_cap = (uint32_t)cap;
        }
        if (v.u) memcpy(s->strs + s->strs_len, str, v.u);
        v.u = MT_VAL_STR(s->strs_len, v.u);
        s->strs_len += (uint32_t)MT_VAL_STR_LEN(v);
    }
    mt_head_hour *hh = hour_slot(h, mt_hour_of(ts), seq, wall);
    if (!hh) return -ENOMEM;
    hh->points++;
    hh->last_write_wall = wall;
    hh->last_seq = seq;
    s->ts[s->n] = ts;
    s->v[s->n] = v;
    s->n++;
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

bool mt_head_in_hours(const int64_t *hours, size_t n, int64_t ts)
{
    return in_set(hours, n, mt_hour_of(ts));
}

void mt_head_drop(mt_head *h, const int64_t *hours, size_t nh)
{
    for (uint32_t id = 0; id < h->cap; id++) {
        mt_head_series *s = &h->s[id];
        uint32_t keep = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            if (mt_head_in_hours(hours, nh, s->ts[i])) continue;
            s->ts[keep] = s->ts[i];
            s->v[keep] = s->v[i];
            keep++;
        }
        h->points -= s->n - keep;
        s->n = keep;
        if (keep == 0) s->strs_len = 0; /* string bytes are reclaimed once a series empties */
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
    if (id >= h->cap || h->s[id].n == 0) return MT_OK;
    const mt_head_series *s = &h->s[id];
    ord *o = malloc(s->n * sizeof *o);
    if (!o) return -ENOMEM;
    size_t m = 0;
    bool sorted = true;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->ts[i] < from || s->ts[i] >= to) continue;
        if (m && s->ts[i] <= o[m - 1].ts) sorted = false;
        o[m++] = (ord){s->ts[i], i};
    }
    if (!sorted) qsort(o, m, sizeof *o, ord_cmp);
    /* last write wins: of equal timestamps keep the last in arrival order */
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k && o[k - 1].ts == o[i].ts) k--;
        o[k++] = o[i];
    }
    *ts = malloc((k ? k : 1) * sizeof **ts);
    *v = malloc((k ? k : 1) * sizeof **v);
    size_t sl = 0;
    if (type == MT_VT_STRING)
        for (size_t i = 0; i < k; i++) sl += MT_VAL_STR_LEN(s->v[o[i].i]);
    *strs = malloc(sl ? sl : 1);
    if (!*ts || !*v || !*strs) {
        free(o);
        free(*ts), free(*v), free(*strs);
        *ts = NULL, *v = NULL, *strs = NULL;
        return -ENOMEM;
    }
    sl = 0;
    for (size_t i = 0; i < k; i++) {
        (*ts)[i] = o[i].ts;
        mt_val val = s->v[o[i].i];
        if (type == MT_VT_STRING) {
            size_t len = MT_VAL_STR_LEN(val);
            memcpy(*strs + sl, s->strs + MT_VAL_STR_OFF(val), len);
            val.u = MT_VAL_STR(sl, len);
            sl += len;
        }
        (*v)[i] = val;
    }
    free(o);
    *strs_len = sl;
    *n = k;
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
    r->out_len = 0;
}

int mt_rec_add(mt_recbuf *r, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str)
{
    size_t slen = t == MT_VT_STRING ? v.u : 0;
    if (reserve(&r->raw, &r->raw_cap, r->raw_len + 5 + 10 + 10 + slen)) return -ENOMEM;
    uint8_t *p = r->raw + r->raw_len;
    p += mt_put_uvarint(p, id);
    p += mt_put_uvarint(p, mt_zigzag((int64_t)((uint64_t)ts - (uint64_t)r->last_ts)));
    switch (t) {
    case MT_VT_FLOAT:
        for (int k = 0; k < 8; k++) *p++ = (uint8_t)(v.u >> (8 * k));
        break;
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
    if (!r->zc && !(r->zc = ZSTD_createCCtx())) return -ENOMEM;
    size_t bound = ZSTD_compressBound(raw_len);
    if (reserve(&r->out, &r->out_cap, REC_HEADER + bound)) return -ENOMEM;
    size_t zn = ZSTD_compressCCtx(r->zc, r->out + REC_HEADER, bound, raw, raw_len, REC_LEVEL);
    if (ZSTD_isError(zn)) return MT_ECORRUPT;
    uint32_t sum = (uint32_t)mt_hash64(r->out + REC_HEADER, zn);
    r->out[0] = REC_VERSION;
    for (int k = 0; k < 4; k++) {
        r->out[1 + k] = (uint8_t)(raw_len >> (8 * k));
        r->out[5 + k] = (uint8_t)(sum >> (8 * k));
    }
    r->out_len = REC_HEADER + zn;
    return MT_OK;
}

void mt_rec_free(mt_recbuf *r)
{
    free(r->raw);
    free(r->out);
    ZSTD_freeCCtx(r->zc);
    memset(r, 0, sizeof *r);
}

int mt_rec_replay(const void *rec, size_t len, mt_vtype (*type_of)(void *, uint32_t),
                  int (*fn)(void *, const mt_rec_point *), void *ud)
{
    const uint8_t *h = rec;
    if (len < REC_HEADER || h[0] != REC_VERSION) return len < REC_HEADER ? MT_ECORRUPT : MT_EFORMAT;
    uint32_t raw_len = 0, sum = 0;
    for (int k = 0; k < 4; k++) {
        raw_len |= (uint32_t)h[1 + k] << (8 * k);
        sum |= (uint32_t)h[5 + k] << (8 * k);
    }
    if ((uint32_t)mt_hash64(h + REC_HEADER, len - REC_HEADER) != sum || raw_len > (1u << 30))
        return MT_ECORRUPT;
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    if (!raw) return -ENOMEM;
    size_t got = ZSTD_decompress(raw, raw_len, h + REC_HEADER, len - REC_HEADER);
    int rc = ZSTD_isError(got) || got != raw_len ? MT_ECORRUPT : MT_OK;
    mt_rd r = {raw, raw + raw_len};
    uint64_t n = 0, id, u;
    int64_t ts = 0;
    if (!rc) rc = mt_rd_uvarint(&r, &n);
    for (uint64_t i = 0; !rc && i < n; i++) {
        mt_rec_point pt = {0};
        if ((rc = mt_rd_uvarint(&r, &id)) || id == 0 || id > UINT32_MAX ||
            (rc = mt_rd_uvarint(&r, &u)))
            break;
        ts = (int64_t)((uint64_t)ts + (uint64_t)mt_unzigzag(u));
        pt.id = (uint32_t)id;
        pt.ts = ts;
        mt_vtype t = type_of(ud, pt.id);
        switch (t) {
        case MT_VT_FLOAT:
            if (r.end - r.p < 8) rc = MT_ECORRUPT;
            for (int k = 0; !rc && k < 8; k++) pt.v.u |= (uint64_t)r.p[k] << (8 * k);
            r.p += rc ? 0 : 8;
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
