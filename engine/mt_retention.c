/*
 * mt_retention.c — retention (mt_engine.h): whole hours dropped, hours
 * that mix policies rewritten without their expired series, old rollups
 * deleted. Runs as a writer job, like a seal: new files first, then one
 * LMDB transaction, then the in-memory hours, then the old files unlinked.
 * A crash before the commit leaves the old state (recovery removes the
 * new files nobody names); after it, the new state: the transaction lists
 * every generation it stops naming in meta "unref:" (mt_delete.c), and
 * open unlinks exactly those rather than setting them aside in lost+found.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_fault.h"
#include "mt_series.h"

typedef struct plan {
    int64_t hour;
    bool drop;      /* every series expired: the hour goes */
    uint32_t gen;   /* rewritten: the new generation */
    uint64_t bytes; /* rewritten: the new file's size */
    uint32_t old_gen;
    uint64_t old_bytes;
} plan;

typedef struct job {
    const mt_retention *p;
    int64_t now;
    bool dry_run;
    mt_retention_result *res;
} job;

static bool name_is(mt_name n, const char *s)
{
    return s && strlen(s) == n.len && !memcmp(n.ptr, s, n.len);
}

int64_t mt_retention_keep_of(const mt_retention *p, const char *key, size_t klen)
{
    mt_series_parts parts;
    if (mt_series_parse(key, klen, &parts)) return p->keep_ns;
    mt_name bid = {"", 0};
    for (size_t k = 0; k < parts.ntags; k++)
        if (name_is(parts.tag_keys[k], "business_id")) bid = parts.tag_values[k];
    int best = -1;
    int64_t keep = p->keep_ns;
    for (size_t i = 0; i < p->nrules; i++) {
        const mt_retention_rule *r = &p->rules[i];
        if (r->measurement && !name_is(parts.measurement, r->measurement)) continue;
        if (r->business_id && !name_is(bid, r->business_id)) continue;
        /* tenant and measurement, then tenant, then measurement */
        int score = (r->business_id ? 2 : 0) + (r->measurement ? 1 : 0);
        if (score > best) best = score, keep = r->keep_ns;
    }
    return keep;
}

mt_retention *mt_retention_copy(const mt_retention *p)
{
    size_t names = 0;
    for (size_t i = 0; i < p->nrules; i++) {
        const mt_retention_rule *r = &p->rules[i];
        names += (r->measurement ? strlen(r->measurement) + 1 : 0) +
                 (r->business_id ? strlen(r->business_id) + 1 : 0);
    }
    mt_retention *c = malloc(sizeof *c + p->nrules * sizeof *p->rules + names);
    if (!c) return NULL;
    mt_retention_rule *rules = (mt_retention_rule *)(c + 1);
    char *at = (char *)(rules + p->nrules);
    for (size_t i = 0; i < p->nrules; i++) {
        const mt_retention_rule *r = &p->rules[i];
        rules[i] = (mt_retention_rule){.keep_ns = r->keep_ns};
        if (r->measurement) rules[i].measurement = strcpy(at, r->measurement), at += strlen(at) + 1;
        if (r->business_id) rules[i].business_id = strcpy(at, r->business_id), at += strlen(at) + 1;
    }
    *c = *p;
    c->rules = rules;
    return c;
}

int64_t mt_retention_shortest_keep(const mt_retention *p)
{
    int64_t k = p->keep_ns > 0 ? p->keep_ns : 0;
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].keep_ns > 0 && (!k || p->rules[i].keep_ns < k)) k = p->rules[i].keep_ns;
    return k;
}

static bool expired(int64_t hour, int64_t keep, int64_t now)
{
    return keep > 0 && (hour + 1) * MT_HOUR_NS <= now - keep;
}

/* Write the hour's new generation with only the series still kept. */
static int rewrite(mt_engine *e, mt_hour_desc *d, const int64_t *keep, int64_t now, plan *pl)
{
    mt_hf_writer *w;
    pl->gen = e->next_gen++;
    const mt_hour_live *l = d->live; /* read by run(): the writer thread keeps it */
    int rc = mt_hf_begin(e->dir, d->hour, pl->gen, &w);
    for (size_t i = 0; !rc && i < l->idx->n; i++) {
        const mt_hf_entry *en = &l->idx->e[i];
        if (expired(d->hour, keep[en->id], now)) continue;
        rc = mt_hf_add(w, en, l->map->base + en->off, en->len, MT_INDEX_KEY(&e->index, en->id),
                       MT_INDEX_KEYLEN(&e->index, en->id));
    }
    if (rc) {
        mt_hf_abort(w);
        return rc;
    }
    return mt_hf_commit(w, &pl->bytes);
}

typedef struct index_job {
    const plan *plans;
    size_t np;
    bool rollups; /* drop the rollups of hours before rollup_before */
    int64_t rollup_before;
    mt_retention_result *res;
    uint64_t seq_before;
    bool dropped;        /* an hour goes whole ... */
    uint64_t drop_seq;   /* ... the greatest sealed_seq of those */
    bool log_rewritten;  /* the head log was written again ... */
    uint64_t log_points; /* ... with this many points */
} index_job;

/*
 * A dropped hour's records must not outlive it in the head log: replay skips a point only for
 * an hour whose file holds it, and a dropped hour has none. When the log still has a record
 * from before the hour's last seal (a head hour held long pins old records: mt_seal.c), the log
 * is written again without them, in this transaction.
 */
static int drop_old_records(mt_engine *e, mt_kv_txn *t, index_job *j)
{
    uint64_t first;
    int rc = mt_seal_log_first_seq(t, &first);
    if (rc || !first || !j->dropped || j->drop_seq < first) return rc;
    j->log_rewritten = true;
    return mt_seal_log_rewrite(e, t, NULL, 0, &j->log_points);
}

static void index_undo(mt_engine *e, void *ud)
{
    index_job *j = ud;
    e->seq = j->seq_before;
    j->log_rewritten = false;
}

static void log_follows(mt_engine *e, void *ud)
{
    const index_job *j = ud;
    if (j->log_rewritten) mt_seal_log_rewritten(e, j->seq_before, j->log_points);
}

/* The sealed_seq of an hour, from its record in t (memory does not keep it: mt_hour_desc). */
static int sealed_seq_of(mt_kv_txn *t, const uint8_t key[4], uint64_t *seq)
{
    const void *v;
    size_t vl;
    uint32_t gen;
    uint64_t bytes;
    int rc = mt_kv_get(t, MT_DB_HOURS, key, 4, &v, &vl);
    if (rc == MT_ENOTFOUND) return MT_ECORRUPT; /* an hour in memory is in the index */
    return rc ? rc : mt_engine_hour_parse(v, vl, &gen, &bytes, seq);
}

/* Retention's transaction: expired rollups go, the hours' new generations or their deletion. */
static int index_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    index_job *j = ud;
    j->res->rollup_hours_dropped = 0; /* counted again if a full map made this run again */
    j->dropped = false;
    j->drop_seq = 0;
    int rc = j->rollups ? mt_rollups_drop(t, j->rollup_before, false, &j->res->rollup_hours_dropped)
                        : MT_OK;
    for (size_t i = 0; !rc && i < j->np; i++) {
        uint8_t key[4], val[MT_HOUR_VAL];
        const plan *pl = &j->plans[i];
        uint64_t seq = 0;
        mt_engine_hour_key(key, pl->hour);
        rc = sealed_seq_of(t, key, &seq); /* a rewrite keeps it; a drop may need the log's */
        /* the generation it named is unlinked at publish; a crash before that leaves it listed
           for open to unlink (as a delete's: mt_delete.c), not to set aside in lost+found */
        if (!rc) rc = mt_engine_unref_put(t, pl->hour, pl->old_gen, pl->old_bytes);
        if (rc) break;
        if (pl->drop) {
            j->dropped = true;
            if (seq > j->drop_seq) j->drop_seq = seq;
            rc = mt_kv_del(t, MT_DB_HOURS, key, 4);
        } else {
            mt_engine_hour_val(val, pl->gen, pl->bytes, seq);
            rc = mt_kv_put(t, MT_DB_HOURS, key, 4, val, sizeof val);
        }
    }
    if (!rc && j->np) rc = mt_engine_meta_put(t, "gen", e->next_gen);
    if (!rc) rc = drop_old_records(e, t, j);
    return rc;
}

static int run(mt_engine *e, void *ud)
{
    job *j = ud;
    const mt_retention *p = j->p;
    mt_retention_result *res = j->res;
    memset(res, 0, sizeof *res);
    /* the shortest keep: hours ending after now - it keep every series */
    int64_t shortest = p->keep_ns;
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].keep_ns > 0 && (shortest <= 0 || p->rules[i].keep_ns < shortest))
            shortest = p->rules[i].keep_ns;
    int64_t *keep = NULL;
    plan *plans = NULL;
    mt_publish *pub = NULL;
    size_t np = 0;
    int rc = MT_OK;
    if (shortest > 0 && e->nhours && expired(e->hours[0].hour, shortest, j->now)) {
        keep = malloc((e->index.n + 1) * sizeof *keep);
        plans = malloc(e->nhours * sizeof *plans);
        pub = malloc(e->nhours * sizeof *pub);
        if (!keep || !plans || !pub) rc = -ENOMEM;
        for (uint32_t id = 1; !rc && id <= e->index.n; id++)
            keep[id] = mt_retention_keep_of(p, e->index.arena + e->index.ents[id].off,
                                            e->index.ents[id].len);
    }
    for (size_t h = 0; keep && !rc && h < e->nhours; h++) {
        mt_hour_desc *d = &e->hours[h];
        if (!expired(d->hour, shortest, j->now)) break; /* ascending: the rest are younger */
        if ((rc = mt_engine_hour_index(e, d))) break;
        const mt_hf_index *ix = d->live->idx;
        size_t gone = 0;
        for (size_t i = 0; i < ix->n; i++) {
            const mt_hf_entry *en = &ix->e[i];
            if (!expired(d->hour, keep[en->id], j->now)) continue;
            gone++;
            res->points_dropped += en->count;
        }
        if (!gone) continue;
        res->chunks_dropped += gone;
        plan *pl = &plans[np++];
        *pl = (plan){
            .hour = d->hour, .drop = gone == ix->n, .old_gen = d->gen, .old_bytes = d->bytes};
        if (pl->drop)
            res->hours_dropped++;
        else
            res->hours_rewritten++;
        if (!pl->drop && !j->dry_run) rc = rewrite(e, d, keep, j->now, pl);
        if (rc) np--;
    }
    /* rollups of hour h go when (h + 1) h <= now - keep: h < floor((now - keep) / 1 h) */
    int64_t rollup_before = p->rollup_keep_ns > 0 ? mt_hour_of(j->now - p->rollup_keep_ns) : 0;
    index_job ij = {
        .plans = plans, .np = np, .rollup_before = rollup_before, .res = res, .seq_before = e->seq};
    if (!rc && j->dry_run && p->rollup_keep_ns > 0) { /* counted in a read transaction */
        mt_kv_txn *t = NULL;
        rc = mt_kv_begin(e->kv, false, &t);
        if (!rc) rc = mt_rollups_drop(t, rollup_before, true, &res->rollup_hours_dropped);
        mt_kv_abort(t);
    } else if (!rc && !j->dry_run && (np || p->rollup_keep_ns > 0)) {
        ij.rollups = p->rollup_keep_ns > 0;
        rc = mt_engine_write_txn(e, index_body, index_undo, &ij);
    }
    for (size_t i = 0; i < np; i++)
        pub[i] = (mt_publish){.hour = plans[i].hour,
                              .gen = plans[i].gen,
                              .bytes = plans[i].bytes,
                              .drop = plans[i].drop,
                              .had_old = true,
                              .old_gen = plans[i].old_gen};
    if (rc || j->dry_run) { /* nothing changed: the new files go */
        if (!j->dry_run) mt_engine_discard(e, pub, np);
        for (size_t i = 0; i < np && j->dry_run; i++)
            res->bytes_freed += plans[i].drop ? plans[i].old_bytes : 0;
    } else {
        mt_fault_crash("retention.committed"); /* tests: committed, not published */
        rc = mt_engine_publish(e, pub, np, log_follows, &ij);
        /* the entries go once the files are gone; a failure leaves them for the next open */
        if (np) (void)mt_engine_unref_settle(e);
        for (size_t i = 0; i < np; i++)
            res->bytes_freed += plans[i].old_bytes - (plans[i].drop ? 0 : plans[i].bytes);
    }
    free(pub);
    free(keep);
    free(plans);
    return rc;
}

int mt_engine_retention(mt_engine *e, const mt_retention *p, int64_t now, bool dry_run,
                        mt_retention_result *res)
{
    job j = {.p = p, .now = now, .dry_run = dry_run, .res = res};
    if (!e->opt.read_only) return mt_engine_run_job(e, run, &j);
    if (!dry_run) return MT_EINVAL;
    /* a reader's dry run: its snapshot is its own; the lock keeps the hours still */
    pthread_rwlock_wrlock(&e->lock);
    int rc = run(e, &j);
    pthread_rwlock_unlock(&e->lock);
    return rc;
}
