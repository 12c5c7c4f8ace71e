/*
 * mt_index.c — the series index: canonical key <-> id, in LMDB (series,
 * series_by_id, postings) and mirrored in memory for the write path, which
 * must resolve millions of keys per second without a B-tree lookup each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_endian.h"
#include "mt_engine_int.h"
#include "mt_hash.h"

int mt_index_init(mt_index *ix)
{
    memset(ix, 0, sizeof *ix);
    ix->tcap = 1024;
    ix->table = calloc(ix->tcap, sizeof *ix->table);
    ix->ents_cap = 1024;
    ix->ents = calloc(ix->ents_cap, sizeof *ix->ents);
    return ix->table && ix->ents ? MT_OK : -ENOMEM;
}

void mt_index_free(mt_index *ix)
{
    free(ix->arena);
    free(ix->ents);
    free(ix->table);
    memset(ix, 0, sizeof *ix);
}

static const char *key_of(const mt_index *ix, uint32_t id)
{
    return ix->arena + ix->ents[id].off;
}

uint32_t mt_index_find(const mt_index *ix, const void *key, size_t klen, uint64_t hash)
{
    for (uint32_t s = (uint32_t)hash & (ix->tcap - 1);; s = (s + 1) & (ix->tcap - 1)) {
        uint32_t id = ix->table[s];
        if (!id) return 0;
        if (ix->ents[id].len == klen && memcmp(key_of(ix, id), key, klen) == 0) return id;
    }
}

static void table_put(uint32_t *t, uint32_t cap, uint64_t hash, uint32_t id)
{
    uint32_t s = (uint32_t)hash & (cap - 1);
    while (t[s]) s = (s + 1) & (cap - 1);
    t[s] = id;
}

uint32_t mt_index_add(mt_index *ix, const void *key, size_t klen, uint64_t hash, mt_vtype t)
{
    if (ix->n + 1 >= ix->ents_cap) {
        mt_series_ent *e = realloc(ix->ents, ix->ents_cap * 2 * sizeof *e);
        if (!e) return 0;
        ix->ents = e;
        ix->ents_cap *= 2;
    }
    if ((ix->n + 1) * 2 >= ix->tcap) {
        uint32_t cap = ix->tcap * 2;
        uint32_t *tab = calloc(cap, sizeof *tab);
        if (!tab) return 0;
        for (uint32_t id = 1; id <= ix->n; id++)
            if (ix->ents[id].len)
                table_put(tab, cap, mt_hash64(key_of(ix, id), ix->ents[id].len), id);
        free(ix->table);
        ix->table = tab;
        ix->tcap = cap;
    }
    if (ix->arena_len + klen > ix->arena_cap) {
        size_t cap = ix->arena_cap ? ix->arena_cap : 65536;
        while (cap < ix->arena_len + klen) cap *= 2;
        char *a = realloc(ix->arena, cap);
        if (!a) return 0;
        ix->arena = a;
        ix->arena_cap = cap;
    }
    uint32_t id = ++ix->n;
    if (klen) memcpy(ix->arena + ix->arena_len, key, klen); /* 0: a deleted series' id */
    ix->ents[id] = (mt_series_ent){(uint32_t)ix->arena_len, (uint32_t)klen, (uint8_t)t};
    ix->arena_len += klen;
    if (klen) table_put(ix->table, ix->tcap, hash, id);
    return id;
}

int mt_index_truncate(mt_index *ix, uint32_t n)
{
    if (n >= ix->n) return MT_OK;
    ix->arena_len = n ? ix->ents[n].off + ix->ents[n].len : 0;
    ix->n = n;
    memset(ix->table, 0, ix->tcap * sizeof *ix->table);
    for (uint32_t id = 1; id <= n; id++)
        if (ix->ents[id].len)
            table_put(ix->table, ix->tcap, mt_hash64(key_of(ix, id), ix->ents[id].len), id);
    return MT_OK;
}

/* The hash table again from the entries: a forgotten id (no key) is in it no more. */
static void table_rebuild(mt_index *ix)
{
    memset(ix->table, 0, ix->tcap * sizeof *ix->table);
    for (uint32_t i = 1; i <= ix->n; i++)
        if (ix->ents[i].len)
            table_put(ix->table, ix->tcap, mt_hash64(key_of(ix, i), ix->ents[i].len), i);
}

void mt_index_forget(mt_index *ix, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 1 && ids[i] <= ix->n)
            ix->ents[ids[i]].len = 0; /* its bytes stay in the arena until the next open */
    if (n) table_rebuild(ix);
}

int mt_index_load(mt_index *ix, mt_kv_txn *txn)
{
    mt_kv_cursor *c;
    int rc = mt_kv_cursor_open(txn, MT_DB_SERIES_BY_ID, &c);
    if (rc) return rc;
    bool forgotten = false;
    const void *k, *v;
    size_t kl, vl;
    for (rc = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); rc == MT_OK;
         rc = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        /* value: u8 type, then the canonical key (none: a deleted series, whose id is never
           given again); ids are dense and ascending */
        if (kl != 4 || vl < 1 || mt_load_be32(k) != ix->n + 1 ||
            ((const uint8_t *)v)[0] >= MT_VT_COUNT) {
            rc = MT_ECORRUPT;
            break;
        }
        const char *key = (const char *)v + 1;
        if (!mt_index_add(ix, key, vl - 1, mt_hash64(key, vl - 1),
                          (mt_vtype)((const uint8_t *)v)[0])) {
            rc = -ENOMEM;
            break;
        }
        if (vl == 1) forgotten = true;
    }
    mt_kv_cursor_close(c);
    (void)forgotten; /* mt_index_add kept their ids out of the table */
    return rc == MT_ENOTFOUND ? MT_OK : rc;
}

size_t mt_index_term(char *out, size_t cap, mt_term_kind kind, mt_name name, mt_name value)
{
    size_t need = 1 + name.len + (kind == MT_TERM_TAG ? 1 + value.len : 0);
    if (need > cap || need > 511) return 0; /* LMDB's default key limit */
    out[0] = (char)kind;
    memcpy(out + 1, name.ptr, name.len);
    if (kind == MT_TERM_TAG) {
        out[1 + name.len] = '\0';
        memcpy(out + 2 + name.len, value.ptr, value.len);
    }
    return need;
}

int mt_index_store(mt_kv_txn *txn, uint32_t id, const void *key, size_t klen, mt_vtype t)
{
    uint8_t idb[4];
    mt_store_be32(idb, id);
    uint8_t val[5] = {idb[0], idb[1], idb[2], idb[3], (uint8_t)t};
    /* Keys longer than LMDB's 511-byte key limit are found through their hash. */
    int rc = klen <= 511 ? mt_kv_put(txn, MT_DB_SERIES, key, klen, val, 5) : MT_OK;
    char *byid = malloc(klen + 1);
    if (!byid) return -ENOMEM;
    byid[0] = (char)t;
    memcpy(byid + 1, key, klen);
    if (!rc) rc = mt_kv_put(txn, MT_DB_SERIES_BY_ID, idb, 4, byid, klen + 1);
    free(byid);
    mt_series_parts p;
    if (!rc && mt_series_parse(key, klen, &p)) rc = MT_EINVAL;
    char term[512];
    size_t tl;
    if (!rc &&
        (tl = mt_index_term(term, sizeof term, MT_TERM_MEASUREMENT, p.measurement, (mt_name){0})))
        rc = mt_kv_put(txn, MT_DB_POSTINGS, term, tl, idb, 4);
    if (!rc && (tl = mt_index_term(term, sizeof term, MT_TERM_FIELD, p.field, (mt_name){0})))
        rc = mt_kv_put(txn, MT_DB_POSTINGS, term, tl, idb, 4);
    for (size_t i = 0; !rc && i < p.ntags; i++) {
        if ((tl = mt_index_term(term, sizeof term, MT_TERM_TAG, p.tag_keys[i], p.tag_values[i])))
            rc = mt_kv_put(txn, MT_DB_POSTINGS, term, tl, idb, 4);
    }
    return rc;
}

int mt_index_unstore(mt_kv_txn *txn, uint32_t id, const void *key, size_t klen, mt_vtype t)
{
    uint8_t idb[4];
    mt_store_be32(idb, id);
    int rc = klen <= 511 ? mt_kv_del(txn, MT_DB_SERIES, key, klen) : MT_OK;
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    uint8_t tomb = (uint8_t)t; /* the type alone: ids stay dense, the key is gone */
    if (!rc) rc = mt_kv_put(txn, MT_DB_SERIES_BY_ID, idb, 4, &tomb, 1);
    mt_series_parts p;
    if (!rc && mt_series_parse(key, klen, &p)) rc = MT_EINVAL;
    char term[512];
    size_t tl;
    for (size_t i = 0; !rc && i < p.ntags + 2; i++) {
        tl = i == 0   ? mt_index_term(term, sizeof term, MT_TERM_MEASUREMENT, p.measurement,
                                      (mt_name){0})
             : i == 1 ? mt_index_term(term, sizeof term, MT_TERM_FIELD, p.field, (mt_name){0})
                      : mt_index_term(term, sizeof term, MT_TERM_TAG, p.tag_keys[i - 2],
                                      p.tag_values[i - 2]);
        if (tl && (rc = mt_kv_del_dup(txn, MT_DB_POSTINGS, term, tl, idb, 4)) == MT_ENOTFOUND)
            rc = MT_OK;
    }
    return rc;
}
