/*
 * mt_outbox.c — the outbox (mt_engine.h): what is still to be mirrored
 * into PostgreSQL, written in the transaction that produced it.
 *
 * MT_DB_OUTBOX: u64 sequence (BE) -> u8 kind, then the entry's bytes. A
 * sealed hour is queued as a reference (kind MT_OUTBOX_HOUR, the hour as
 * i64 LE), not as its rows: the sink reads the hour's rollups as they are
 * when it delivers them, so a hour sealed again after backfill is simply
 * queued again and mirrored with its new rows, and retention that already
 * dropped an hour leaves nothing to send. The next sequence is the last
 * key + 1 (never reused while entries remain; after an empty outbox it
 * may start over, which is harmless: acknowledged entries are gone).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_engine_int.h"
#include "mt_time.h"

static void seq_key(uint8_t k[8], uint64_t seq)
{
    for (int i = 0; i < 8; i++) k[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t key_seq(const uint8_t *k)
{
    uint64_t s = 0;
    for (int i = 0; i < 8; i++) s = s << 8 | k[i];
    return s;
}

/* The sequence after the last entry (1 when empty). */
static int next_seq(mt_kv_txn *t, uint64_t *seq)
{
    mt_kv_cursor *c;
    int rc = mt_kv_cursor_open(t, MT_DB_OUTBOX, &c);
    if (rc) return rc;
    const void *k, *v;
    size_t kl, vl;
    rc = mt_kv_cursor_last(c, &k, &kl, &v, &vl);
    *seq = rc == MT_OK && kl == 8 ? key_seq(k) + 1 : 1;
    mt_kv_cursor_close(c);
    return rc == MT_ENOTFOUND || rc == MT_OK ? MT_OK : rc;
}

int mt_outbox_put(mt_engine *e, mt_kv_txn *t, uint8_t kind, const void *data, size_t len)
{
    if (!e->opt.outbox) return MT_OK;
    uint64_t seq;
    int rc = next_seq(t, &seq);
    if (rc) return rc;
    uint8_t key[8], *val = malloc(len + 9);
    if (!val) return -ENOMEM;
    seq_key(key, seq);
    val[0] = kind;
    mt_put_le(val + 1, (uint64_t)mt_now_ns(), 8); /* when it was queued: the age metric */
    memcpy(val + 9, data, len);
    rc = mt_kv_put(t, MT_DB_OUTBOX, key, 8, val, len + 9);
    free(val);
    return rc;
}

int mt_engine_outbox_peek(mt_engine *e, size_t max, int (*fn)(void *ud, const mt_outbox_entry *en),
                          void *ud)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    mt_kv_cursor *c;
    if ((rc = mt_kv_cursor_open(t, MT_DB_OUTBOX, &c))) {
        mt_kv_abort(t);
        return rc;
    }
    const void *k, *v;
    size_t kl, vl, n = 0;
    int r;
    for (r = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl); !rc && r == MT_OK && n < max;
         r = mt_kv_cursor_next(c, &k, &kl, &v, &vl), n++) {
        if (kl != 8 || vl < 9) {
            rc = MT_ECORRUPT;
            break;
        }
        const uint8_t *b = v;
        mt_outbox_entry en = {.seq = key_seq(k),
                              .kind = b[0],
                              .queued_ns = (int64_t)mt_get_le(b + 1, 8),
                              .data = b + 9,
                              .len = vl - 9};
        rc = fn(ud, &en);
    }
    if (!rc && r != MT_OK && r != MT_ENOTFOUND) rc = r; /* a damaged entry: not the end */
    mt_kv_cursor_close(c);
    mt_kv_abort(t);
    return rc;
}

int mt_outbox_ack_txn(mt_kv_txn *t, uint64_t upto, size_t *removed)
{
    int rc = MT_OK;
    for (;;) { /* a fresh cursor per entry: none lives across a delete */
        mt_kv_cursor *c;
        if ((rc = mt_kv_cursor_open(t, MT_DB_OUTBOX, &c))) break;
        const void *k, *v;
        size_t kl, vl;
        int r = mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl);
        uint8_t key[8];
        bool take = r == MT_OK && kl == 8 && key_seq(k) <= upto;
        if (take) memcpy(key, k, 8);
        mt_kv_cursor_close(c);
        if (r != MT_OK && r != MT_ENOTFOUND) rc = r;
        if (!take) break;
        if ((rc = mt_kv_del(t, MT_DB_OUTBOX, key, 8))) break;
        (*removed)++;
    }
    return rc;
}

typedef struct ack_job {
    uint64_t upto;
    size_t removed;
} ack_job;

static int ack_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    (void)e;
    ack_job *j = ud;
    j->removed = 0;
    return mt_outbox_ack_txn(t, j->upto, &j->removed);
}

static void ack_undo(mt_engine *e, void *ud)
{
    (void)e;
    ((ack_job *)ud)->removed = 0;
}

static int ack_run(mt_engine *e, void *ud)
{
    return mt_engine_write_txn(e, ack_body, ack_undo, ud);
}

int mt_engine_outbox_ack(mt_engine *e, uint64_t upto, size_t *removed)
{
    ack_job j = {.upto = upto};
    int rc = mt_engine_run_job(e, ack_run, &j);
    if (removed) *removed = j.removed;
    return rc;
}

int mt_engine_outbox_stats(mt_engine *e, size_t *depth, int64_t *oldest_ns)
{
    mt_kv_txn *t;
    int rc = mt_kv_begin(e->kv, false, &t);
    if (rc) return rc;
    *depth = 0;
    *oldest_ns = 0;
    rc = mt_kv_count(t, MT_DB_OUTBOX, depth);
    mt_kv_cursor *c;
    if (!rc && !(rc = mt_kv_cursor_open(t, MT_DB_OUTBOX, &c))) {
        const void *k, *v;
        size_t kl, vl;
        if (mt_kv_cursor_seek(c, NULL, 0, &k, &kl, &v, &vl) == MT_OK && vl >= 9)
            *oldest_ns = (int64_t)mt_get_le((const uint8_t *)v + 1, 8);
        mt_kv_cursor_close(c);
    }
    mt_kv_abort(t);
    return rc;
}
