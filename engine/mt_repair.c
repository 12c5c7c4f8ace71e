/*
 * mt_repair.c — rebuilding index.mdb from the hour files alone, when the
 * index is lost (deleted, emptied, replaced). Runs inside recovery's write
 * transaction (mt_engine_open with rebuild_index), on a new, empty index.
 *
 * Every hour file (version 2) carries its hour (header), its generation
 * (name) and each chunk's series key (keys frame, mt_hourfile.c). So:
 *
 *   1. per hour, the newest generation whose footer and keys verify is
 *      taken (an older one when the newest is damaged; a generation written
 *      by a seal that crashed before its commit holds what the lost head log
 *      held, so it is the better choice, not a worse one);
 *   2. every series of the chosen files gets a new id, in key order of first
 *      sight (ids must be dense: the old ones had gaps where series lived
 *      only in the head);
 *   3. each chosen file is written again as a new generation with the new
 *      ids (chunks copied byte for byte, ascending by new id), its rollups
 *      recomputed from its points by the code that seals, and its hour
 *      recorded;
 *   4. the caller's transaction commits; recovery's sweep then removes the
 *      generations the new ones supersede and sets aside what it cannot
 *      account for (lost+found/), as on every open.
 *
 * What cannot come back is reported, line by line: points that were only in
 * the head log (written since their hour's seal), hour files too damaged to
 * read, files written before hour files carried keys (version 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_codec.h"
#include "mt_engine_int.h"
#include "mt_hash.h"
#include "mt_time.h"

typedef struct cand {
    int64_t hour;
    uint32_t gen;
} cand;

typedef struct found {
    cand *c;
    size_t n, cap;
    bool nomem;
} found;

static found *walk_found; /* nftw has no user pointer: serialised by walk_lock */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

static int on_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    if (flag != FTW_F) return 0;
    int64_t hour;
    uint32_t gen;
    bool temp;
    if (!mt_hf_parse_path(path, &hour, &gen, &temp) || temp) return 0; /* not a published file */
    found *f = walk_found;
    if (mt_grow(&f->c, &f->cap, f->n + 1, sizeof *f->c, 256)) {
        f->nomem = true;
        return 1;
    }
    f->c[f->n++] = (cand){hour, gen};
    return 0;
}

/* Ascending hour, then the newest generation first. */
static int by_hour_then_newest(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->hour != y->hour) return x->hour < y->hour ? -1 : 1;
    return (x->gen < y->gen) - (x->gen > y->gen);
}

__attribute__((format(printf, 2, 3))) static void say(mt_engine *e, const char *fmt, ...)
{
    if (!e->opt.report) return;
    char line[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e->opt.report(e->opt.report_ud, line);
}

/* An hour file opened with its footer verified. */
typedef struct hfile {
    int fd;
    mt_hf_index ix;
    char path[4096];
} hfile;

static int hfile_open(mt_engine *e, const cand *c, hfile *f)
{
    mt_hf_path(f->path, sizeof f->path, e->dir, c->hour, c->gen);
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return -errno;
    int rc = mt_hf_read_index(f->fd, c->hour, &f->ix);
    if (rc) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

static void hfile_close(hfile *f)
{
    if (f->fd >= 0) close(f->fd);
    mt_hf_index_free(&f->ix);
    f->fd = -1;
}

/* Pass 1: every key of a chosen file into the index (and the store), once. */
typedef struct keys_ctx {
    mt_engine *e;
    mt_kv_txn *t;
    const mt_hf_index *ix;
    uint32_t *newid; /* per entry, pass 2 */
    size_t conflicts;
} keys_ctx;

static int learn_key(void *ud, size_t i, const void *key, size_t klen)
{
    keys_ctx *k = ud;
    mt_index *ix = &k->e->index;
    mt_series_parts parts;
    if (mt_series_parse(key, klen, &parts))
        return MT_ECORRUPT; /* the keys frame's checksum
                               held: not ours */
    mt_vtype type = (mt_vtype)k->ix->e[i].type;
    uint64_t h = mt_hash64(key, klen);
    uint32_t id = mt_index_find(ix, key, klen, h);
    if (!id) {
        if (!(id = mt_index_add(ix, key, klen, h, type))) return -ENOMEM;
        int rc = mt_index_store(k->t, id, key, klen, type);
        if (rc) return rc;
    } else if (ix->ents[id].type != type) {
        k->conflicts++; /* the same series with another type in another hour: keep the first */
        id = 0;
    }
    if (k->newid) k->newid[i] = id;
    return MT_OK;
}

/* Entry order for the rewrite: ascending new id. */
typedef struct order {
    uint32_t id;
    size_t i;
} order;

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const order *)a)->id, y = ((const order *)b)->id;
    return (x > y) - (x < y);
}

/* Pass 2: the chosen file again, as generation gen with the new ids; its rollups; its hour. */
static int rewrite(mt_engine *e, mt_kv_txn *t, hfile *f, int64_t hour, size_t *lost)
{
    size_t n = f->ix.n;
    keys_ctx k = {e, t, &f->ix, calloc(n ? n : 1, sizeof(uint32_t)), 0};
    order *o = malloc((n ? n : 1) * sizeof *o);
    mt_hfmap *map = NULL;
    int rc = k.newid && o ? mt_hf_read_keys(f->fd, &f->ix, learn_key, &k) : -ENOMEM;
    if (!rc) rc = mt_hfmap_open(f->fd, &map);
    size_t m = 0;
    for (size_t i = 0; !rc && i < n; i++)
        if (k.newid[i]) o[m++] = (order){k.newid[i], i};
    *lost += n - m;
    if (!rc) qsort(o, m, sizeof *o, by_id);
    mt_rollups *ro = NULL;
    mt_hf_writer *w = NULL;
    uint32_t gen = e->next_gen++;
    if (!rc) rc = mt_rollups_new(hour, &ro);
    if (!rc) rc = mt_hf_begin(e->dir, hour, gen, &w);
    for (size_t j = 0; !rc && j < m; j++) {
        mt_hf_entry en = f->ix.e[o[j].i];
        const uint8_t *chunk = map->base + en.off;
        mt_points p;
        /* the points are decoded (and so verified) before they are trusted again */
        rc = mt_decoder_decode(e->dec, chunk, en.len, &p);
        if (!rc) rc = mt_rollups_add(ro, &e->index, o[j].id, (mt_vtype)en.type, p.vals, p.n);
        en.id = o[j].id;
        if (!rc)
            rc = mt_hf_add(w, &en, chunk, en.len, MT_INDEX_KEY(&e->index, en.id),
                           MT_INDEX_KEYLEN(&e->index, en.id));
    }
    uint64_t bytes = 0;
    if (!rc) {
        rc = mt_hf_commit(w, &bytes);
        w = NULL;
    }
    if (!rc) rc = mt_rollups_store(ro, t);
    if (!rc) {
        uint8_t key[4], val[MT_HOUR_VAL];
        mt_engine_hour_key(key, hour);
        mt_engine_hour_val(val, gen, bytes, 0); /* a new index: its log has no record yet */
        rc = mt_kv_put(t, MT_DB_HOURS, key, 4, val, sizeof val);
    }
    mt_hf_abort(w);
    mt_rollups_free(ro);
    mt_hfmap_release(map);
    free(o);
    free(k.newid);
    if (k.conflicts)
        say(e,
            "hour file %s: %zu chunks whose series has another type elsewhere "
            "were left out",
            f->path, k.conflicts);
    return rc;
}

int mt_repair_rebuild_index(mt_engine *e, mt_kv_txn *t)
{
    found f = {0};
    char blocks[4200];
    snprintf(blocks, sizeof blocks, "%s/blocks", e->dir);
    pthread_mutex_lock(&walk_lock);
    walk_found = &f;
    nftw(blocks, on_file, 16, FTW_PHYS);
    pthread_mutex_unlock(&walk_lock);
    if (f.nomem) {
        free(f.c);
        return -ENOMEM;
    }
    qsort(f.c, f.n, sizeof *f.c, by_hour_then_newest);
    /* new generations above every existing one: nothing is overwritten, and recovery's sweep
       then sees the old ones as superseded */
    for (size_t i = 0; i < f.n; i++)
        if (f.c[i].gen >= e->next_gen) e->next_gen = f.c[i].gen + 1;
    /* 1. choose a file per hour; 2. learn every key (ids in order of first sight) */
    cand *chosen = malloc((f.n ? f.n : 1) * sizeof *chosen);
    size_t nchosen = 0, unreadable = 0, lost_chunks = 0;
    int rc = chosen ? MT_OK : -ENOMEM;
    for (size_t i = 0; !rc && i < f.n;) {
        size_t j = i;
        bool have = false;
        for (; j < f.n && f.c[j].hour == f.c[i].hour; j++) {
            if (have) continue;
            hfile h = {.fd = -1};
            int hr = hfile_open(e, &f.c[j], &h);
            keys_ctx k = {e, t, &h.ix, NULL, 0};
            if (!hr) hr = mt_hf_read_keys(h.fd, &h.ix, learn_key, &k);
            if (hr == -ENOMEM) rc = hr;
            if (!hr) {
                chosen[nchosen++] = f.c[j];
                have = true;
            } else {
                unreadable++;
                say(e, "hour file %s: %s", h.path[0] ? h.path : "?",
                    hr == MT_EFORMAT ? "written before hour files carried series keys (version "
                                       "1): cannot be indexed; kept"
                                     : mt_strerror(hr));
            }
            hfile_close(&h);
        }
        if (!have && !rc) {
            char when[48];
            mt_time_format(f.c[i].hour * MT_HOUR_NS, when, sizeof when);
            say(e, "hour %s: no readable generation; its points are not in the rebuilt index",
                when);
        }
        i = j;
    }
    /* 3. each chosen file again, with the new ids */
    for (size_t i = 0; !rc && i < nchosen; i++) {
        hfile h = {.fd = -1};
        rc = hfile_open(e, &chosen[i], &h);
        if (!rc) rc = rewrite(e, t, &h, chosen[i].hour, &lost_chunks);
        hfile_close(&h);
    }
    if (!rc) rc = mt_engine_meta_put(t, "gen", e->next_gen);
    if (!rc) {
        say(e,
            "rebuilt the index from %zu hour files: %u series; %zu files unreadable; the points "
            "written since their hour was last sealed were only in the lost head log and are "
            "not recovered",
            nchosen, e->index.n, unreadable);
        if (lost_chunks) say(e, "%zu chunks left out (type conflicts)", lost_chunks);
    }
    /* the index is rebuilt from scratch by recovery, from what was stored */
    mt_index_truncate(&e->index, 0);
    free(chosen);
    free(f.c);
    return rc;
}
