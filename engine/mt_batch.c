/*
 * mt_batch.c — batches of points on their way to the writer. Keys repeat
 * across a batch (every field of every line of a host), so each distinct
 * key is stored once and points refer to it; the writer then resolves each
 * distinct key to a series id once per batch.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_engine_int.h"
#include "mt_hash.h"

mt_batch *mt_batch_new(void)
{
    return calloc(1, sizeof(mt_batch));
}

void mt_batch_free(mt_batch *b)
{
    if (!b) return;
    free(b->keys);
    free(b->k);
    free(b->table);
    free(b->p);
    free(b->strs);
    free(b->gid);
    free(b->why);
    free(b);
}

void mt_batch_reset(mt_batch *b)
{
    b->keys_len = 0;
    b->nk = 0;
    if (b->table) memset(b->table, 0, b->tcap * sizeof *b->table);
    b->np = 0;
    b->strs_len = 0;
    b->line = 0;
    b->next = NULL;
}

void mt_batch_line(mt_batch *b, uint64_t lineno)
{
    b->line = lineno > MT_BP_LINE_MAX ? MT_BP_LINE_MAX : (uint32_t)lineno;
}

size_t mt_batch_len(const mt_batch *b)
{
    return b->np;
}

void mt_batch_fit(mt_batch *b)
{
    /* a quarter spare is kept: shrinking costs a copy when the allocator moves the block */
    if (b->np && b->pcap - b->np > b->pcap / 4) {
        mt_bpoint *p = realloc(b->p, b->np * sizeof *p);
        if (p) b->p = p, b->pcap = b->np;
    }
    if (b->keys_len && b->keys_cap - b->keys_len > b->keys_cap / 4) {
        char *k = realloc(b->keys, b->keys_len);
        if (k) b->keys = k, b->keys_cap = b->keys_len;
    }
}

size_t mt_batch_bytes(const mt_batch *b)
{
    return sizeof *b + b->keys_cap + b->kcap * sizeof *b->k + b->tcap * sizeof *b->table +
           b->pcap * sizeof *b->p + b->strs_cap + b->gid_cap * sizeof *b->gid +
           b->why_cap * sizeof *b->why;
}

static int grow_bytes(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return MT_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    char *n = realloc(*buf, c);
    if (!n) return -ENOMEM;
    *buf = n;
    *cap = c;
    return MT_OK;
}

static int rehash(mt_batch *b, uint32_t cap)
{
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return -ENOMEM;
    for (uint32_t i = 0; i < b->nk; i++) {
        uint32_t s = (uint32_t)b->k[i].hash & (cap - 1);
        while (t[s]) s = (s + 1) & (cap - 1);
        t[s] = i + 1;
    }
    free(b->table);
    b->table = t;
    b->tcap = cap;
    return MT_OK;
}

/* The batch-local index of key, adding it if new; -1 on ENOMEM. */
static int64_t key_index(mt_batch *b, const void *key, size_t klen)
{
    uint64_t h = mt_hash64(key, klen);
    if (b->nk * 2 >= b->tcap && rehash(b, b->tcap ? b->tcap * 2 : 64)) return -1;
    uint32_t s = (uint32_t)h & (b->tcap - 1);
    for (; b->table[s]; s = (s + 1) & (b->tcap - 1)) {
        const mt_bkey *k = &b->k[b->table[s] - 1];
        if (k->hash == h && k->len == klen && memcmp(b->keys + k->off, key, klen) == 0)
            return b->table[s] - 1;
    }
    if (b->nk == b->kcap) {
        uint32_t cap = b->kcap ? b->kcap * 2 : 64;
        mt_bkey *k = realloc(b->k, cap * sizeof *k);
        if (!k) return -1;
        b->k = k;
        b->kcap = cap;
    }
    if (grow_bytes(&b->keys, &b->keys_cap, b->keys_len + klen)) return -1;
    memcpy(b->keys + b->keys_len, key, klen);
    b->k[b->nk] = (mt_bkey){(uint32_t)b->keys_len, (uint32_t)klen, h};
    b->keys_len += klen;
    b->table[s] = ++b->nk;
    return b->nk - 1;
}

static int add_point(mt_batch *b, uint32_t key, uint32_t id, int64_t ts, mt_vtype t, mt_val v,
                     const char *str)
{
    if (b->np == b->pcap) {
        size_t cap = b->pcap ? b->pcap * 2 : 1024;
        mt_bpoint *p = realloc(b->p, cap * sizeof *p);
        if (!p) return -ENOMEM;
        b->p = p;
        b->pcap = cap;
    }
    if (t == MT_VT_STRING) {
        if (v.u > UINT32_MAX || grow_bytes(&b->strs, &b->strs_cap, b->strs_len + v.u))
            return -ENOMEM;
        if (v.u) memcpy(b->strs + b->strs_len, str, v.u);
        v.u = MT_VAL_STR(b->strs_len, v.u);
        b->strs_len += MT_VAL_STR_LEN(v);
    }
    assert(b->line <= MT_BP_LINE_MAX && (unsigned)t < MT_VT_COUNT); /* each keeps to its bits */
    b->p[b->np++] =
        (mt_bpoint){.ref = id ? id : key,
                    .meta = (id ? MT_BP_ID : 0) | (uint32_t)t << MT_BP_TYPE_SHIFT | b->line,
                    .ts = ts,
                    .v = v};
    return MT_OK;
}

int mt_batch_add(mt_batch *b, const void *key, size_t klen, int64_t ts, mt_vtype t, mt_val v,
                 const char *str)
{
    if (klen > MT_SERIES_MAX_KEY || (unsigned)t >= MT_VT_COUNT) return MT_EINVAL;
    int64_t ki = key_index(b, key, klen);
    if (ki < 0) return -ENOMEM;
    return add_point(b, (uint32_t)ki, 0, ts, t, v, str);
}

int mt_batch_add_id(mt_batch *b, uint32_t id, int64_t ts, mt_vtype t, mt_val v, const char *str)
{
    if (!id || (unsigned)t >= MT_VT_COUNT) return MT_EINVAL;
    return add_point(b, 0, id, ts, t, v, str);
}

int mt_batch_point(const mt_batch *b, size_t i, mt_batch_pt *out)
{
    if (i >= b->np) return MT_EINVAL;
    const mt_bpoint *p = &b->p[i];
    *out =
        (mt_batch_pt){.id = mt_bp_id(p), .type = mt_bp_type(p), .ts = p->ts, .line = mt_bp_line(p)};
    if (!out->id) {
        out->key = b->keys + b->k[p->ref].off;
        out->klen = b->k[p->ref].len;
    }
    return MT_OK;
}
