/* mt_ingest.c — line protocol into engine batches (contract in mt_ingest.h). */
#include "mt_ingest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_hash.h"

#define CACHE_SLOTS  65536 /* power of two */
#define CACHE_PROBES 8

typedef struct slot {
    uint64_t hash;
    uint32_t id; /* 0: empty */
    uint32_t koff;
    uint32_t klen;
} slot;

struct mt_series_cache {
    mt_engine *eng;
    slot *slots;
    char *keys;
    size_t keys_len, keys_cap;
};

int mt_series_cache_new(mt_engine *e, size_t max_bytes, mt_series_cache **out)
{
    mt_series_cache *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    c->eng = e;
    c->keys_cap = max_bytes ? max_bytes : 8u << 20;
    c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    c->keys = malloc(c->keys_cap);
    if (!c->slots || !c->keys) {
        mt_series_cache_free(c);
        return -ENOMEM;
    }
    *out = c;
    return MT_OK;
}

void mt_series_cache_free(mt_series_cache *c)
{
    if (!c) return;
    free(c->slots);
    free(c->keys);
    free(c);
}

/* The id of key, from the cache or the engine; 0 for a series not created yet. */
static uint32_t cache_find(mt_series_cache *c, const char *key, size_t klen)
{
    uint64_t h = mt_hash64(key, klen);
    size_t s = (size_t)h & (CACHE_SLOTS - 1);
    for (int k = 0; k < CACHE_PROBES; k++) {
        slot *sl = &c->slots[(s + (size_t)k) & (CACHE_SLOTS - 1)];
        if (!sl->id) break;
        if (sl->hash == h && sl->klen == klen && memcmp(c->keys + sl->koff, key, klen) == 0)
            return sl->id;
    }
    uint32_t id;
    mt_vtype t;
    if (mt_engine_series_lookup(c->eng, key, klen, &id, &t) != MT_OK) return 0;
    if (c->keys_len + klen > c->keys_cap) { /* full: start over */
        memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
        c->keys_len = 0;
        if (klen > c->keys_cap) return id;
    }
    slot *sl = &c->slots[s];
    for (int k = 0; k < CACHE_PROBES; k++) {
        slot *cand = &c->slots[(s + (size_t)k) & (CACHE_SLOTS - 1)];
        if (!cand->id) {
            sl = cand;
            break;
        }
    }
    memcpy(c->keys + c->keys_len, key, klen);
    *sl = (slot){h, id, (uint32_t)c->keys_len, (uint32_t)klen};
    c->keys_len += klen;
    return id;
}

static const mt_name business_id = {"business_id", 11};

static int name_cmp(mt_name a, mt_name b)
{
    int r = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return r ? r : (a.len > b.len) - (a.len < b.len);
}

static const mt_vtype types[] = {
    [MT_LP_FLOAT] = MT_VT_FLOAT, [MT_LP_INT] = MT_VT_INT,       [MT_LP_UINT] = MT_VT_UINT,
    [MT_LP_BOOL] = MT_VT_BOOL,   [MT_LP_STRING] = MT_VT_STRING,
};

static const mt_name db_tag = {"db", 2};

int mt_ingest_line(mt_batch *b, const mt_lp_line *line, mt_series_cache *cache, const char *tenant)
{
    return mt_ingest_line_db(b, line, cache, tenant, NULL);
}

int mt_ingest_line_db(mt_batch *b, const mt_lp_line *line, mt_series_cache *cache,
                      const char *tenant, const char *db)
{
    /* The parser's strings and the engine's names share a layout: convert once per line. */
    mt_name tk[259], tv[259];
    if (line->ntags > 256) return MT_ELIMIT;
    /* tags the line gets besides its own, in key order (business_id < db) */
    mt_name xk[2], xv[2];
    bool xtenant[2] = {false, false};
    size_t nx = 0, x = 0, nt = 0;
    if (tenant && strcmp(tenant, "*") != 0) {
        xk[nx] = business_id;
        xv[nx] = (mt_name){tenant, strlen(tenant)};
        xtenant[nx++] = true;
    }
    if (db && *db) {
        xk[nx] = db_tag;
        xv[nx++] = (mt_name){db, strlen(db)};
    }
    for (size_t i = 0; i < line->ntags; i++) {
        mt_name k = {line->tags[i].key.ptr, line->tags[i].key.len};
        mt_name v = {line->tags[i].value.ptr, line->tags[i].value.len};
        for (; x < nx; x++) {
            int cmp = name_cmp(k, xk[x]);
            if (cmp < 0) break;
            if (cmp == 0) {
                /* the line names it too: the tenant's must agree; a line's own db wins (as
                   VictoriaMetrics does: metron-pgstat's db is PostgreSQL's database) */
                if (xtenant[x] && (v.len != xv[x].len || memcmp(v.ptr, xv[x].ptr, v.len)))
                    return MT_ECONFLICT;
                x++;
                break;
            }
            tk[nt] = xk[x];
            tv[nt++] = xv[x];
        }
        tk[nt] = k;
        tv[nt++] = v;
    }
    for (; x < nx; x++) {
        tk[nt] = xk[x];
        tv[nt++] = xv[x];
    }
    mt_name m = {line->measurement.ptr, line->measurement.len};
    char key[MT_SERIES_MAX_KEY];
    /* Keys differ only in the field: if the longest fits, all do, and the line goes in whole. */
    size_t longest = 0;
    for (size_t f = 1; f < line->nfields; f++)
        if (line->fields[f].key.len > line->fields[longest].key.len) longest = f;
    mt_name lf = {line->fields[longest].key.ptr, line->fields[longest].key.len};
    size_t full = mt_series_key(key, sizeof key, m, tk, tv, nt, lf);
    if (!full) return MT_ELIMIT;
    /* The field is the key's last name (2-byte length, bytes): the rest is built once. */
    size_t prefix = full - 2 - lf.len;
    mt_batch_line(b, line->lineno); /* a refusal names it */
    for (size_t f = 0; f < line->nfields; f++) {
        const mt_lp_field *fd = &line->fields[f];
        if (fd->key.len == 0) return MT_ELIMIT; /* as mt_series_key would refuse it */
        key[prefix] = (char)(fd->key.len >> 8);
        key[prefix + 1] = (char)fd->key.len;
        memcpy(key + prefix + 2, fd->key.ptr, fd->key.len);
        size_t kl = prefix + 2 + fd->key.len;
        mt_val v;
        const char *str = NULL;
        switch (fd->type) {
        case MT_LP_FLOAT: v.f = fd->v.f; break;
        case MT_LP_INT: v.i = fd->v.i; break;
        case MT_LP_UINT: v.u = fd->v.u; break;
        case MT_LP_BOOL: v.u = fd->v.b; break;
        case MT_LP_STRING:
            v.u = fd->v.s.len;
            str = fd->v.s.ptr;
            break;
        }
        uint32_t id = cache ? cache_find(cache, key, kl) : 0;
        int rc = id ? mt_batch_add_id(b, id, line->ts, types[fd->type], v, str)
                    : mt_batch_add(b, key, kl, line->ts, types[fd->type], v, str);
        if (rc) return rc;
    }
    return MT_OK;
}
