/*
 * mt_state.c — small records kept in the data directory for other parts
 * of Metron (alert states), optionally queued for the sink in the same
 * transaction (mt_engine.h). MT_DB_STATE: key bytes -> value bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_engine_int.h"

typedef struct put_job {
    const void *key, *val;
    size_t klen, vlen;
    uint8_t kind;
} put_job;

static int put_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    put_job *j = ud;
    int rc = j->val ? mt_kv_put(t, MT_DB_STATE, j->key, j->klen, j->val, j->vlen)
                    : mt_kv_del(t, MT_DB_STATE, j->key, j->klen);
    if (rc == MT_ENOTFOUND) rc = MT_OK;
    if (!rc && j->kind) rc = mt_outbox_put(e, t, j->kind, j->key, j->klen);
    return rc;
}

static int put_run(mt_engine *e, void *ud)
{
    return mt_engine_write_txn(e, put_body, NULL, ud);
}

int mt_engine_state_put(mt_engine *e, const void *key, size_t klen, const void *val, size_t vlen,
                        uint8_t outbox_kind)
{
    if (!klen || klen > 500) return MT_EINVAL;
    put_job j = {key, val, klen, vlen, outbox_kind};
    return mt_engine_run_job(e, put_run, &j);
}

int mt_engine_state_scan(mt_engine *e, const void *prefix, size_t plen,
                         int (*fn)(void *ud, const void *key, size_t klen, const void *val,
                                   size_t vlen),
                         void *ud)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    mt_kv_cursor *c;
    if ((rc = mt_kv_cursor_open(t, MT_DB_STATE, &c))) {
        mt_kv_abort(t);
        return rc;
    }
    const void *k, *v;
    size_t kl, vl;
    int r;
    for (r = mt_kv_cursor_seek(c, prefix, plen, &k, &kl, &v, &vl); !rc && r == MT_OK;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl)) {
        if (kl < plen || memcmp(k, prefix, plen)) break;
        rc = fn(ud, k, kl, v, vl);
    }
    if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r; /* a damaged record: not the end */
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    return rc;
}

int mt_engine_state_get(mt_engine *e, const void *key, size_t klen, void **val, size_t *vlen)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    const void *v;
    size_t vl;
    rc = mt_kv_get(t, MT_DB_STATE, key, klen, &v, &vl);
    if (!rc) {
        void *copy = malloc(vl ? vl : 1);
        if (!copy)
            rc = -ENOMEM;
        else
            memcpy(copy, v, vl), *val = copy, *vlen = vl;
    }
    mt_kv_abort(t);
    return rc;
}

typedef struct apply_job {
    const mt_state_op *ops;
    size_t n;
    uint64_t upto;
    size_t removed;
} apply_job;

static int apply_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    apply_job *j = ud;
    int rc = MT_OK;
    j->removed = 0;
    for (size_t i = 0; !rc && i < j->n; i++) {
        const mt_state_op *o = &j->ops[i];
        rc = o->val ? mt_kv_put(t, MT_DB_STATE, o->key, o->klen, o->val, o->vlen)
                    : mt_kv_del(t, MT_DB_STATE, o->key, o->klen);
        if (rc == MT_ENOTFOUND) rc = MT_OK; /* deleting what is not there: done */
        if (!rc && o->outbox_kind) rc = mt_outbox_put(e, t, o->outbox_kind, o->key, o->klen);
    }
    if (!rc && j->upto) rc = mt_outbox_ack_txn(t, j->upto, &j->removed);
    return rc;
}

static void apply_undo(mt_engine *e, void *ud)
{
    (void)e;
    ((apply_job *)ud)->removed = 0;
}

static int apply_run(mt_engine *e, void *ud)
{
    return mt_engine_write_txn(e, apply_body, apply_undo, ud);
}

int mt_engine_state_apply(mt_engine *e, const mt_state_op *ops, size_t n, uint64_t ack_upto,
                          size_t *acked)
{
    for (size_t i = 0; i < n; i++)
        if (!ops[i].klen || ops[i].klen > 500) return MT_EINVAL;
    apply_job j = {ops, n, ack_upto, 0};
    int rc = mt_engine_run_job(e, apply_run, &j);
    if (acked) *acked = j.removed;
    return rc;
}
