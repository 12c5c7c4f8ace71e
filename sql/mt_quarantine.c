/*
 * mt_quarantine.c — rows PostgreSQL never takes (mt_quarantine.h): the
 * record format, listing, and sending them again.
 */
#include "mt_quarantine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_buf.h"
#include "mt_hash.h"
#include "mt_sink_int.h"
#include "mt_time.h"

#define VERSION   1
#define HEAD      28          /* version .. nparams */
#define NULL_LEN  0xffffffffu /* a parameter that is SQL NULL */
#define APPLY_MAX 1024        /* records changed per engine transaction */

const char *mt_quar_table_name(uint8_t table)
{
    switch (table) {
    case MT_QUAR_GROUPS: return "monitoring.hourly_metrics_summary";
    case MT_QUAR_SERIES: return "monitoring.series_hourly_summary";
    case MT_QUAR_ALERTS: return "monitoring.alerts";
    default: return "?";
    }
}

bool mt_quar_permanent(const char *st)
{
    if (!st || strlen(st) != 5) return false; /* no SQLSTATE: libpq's own error (connection) */
    /* 22 data exception (out of range, bad encoding, too long), 23 integrity constraint
       violation (check, not null, unique, foreign key), 54000 program limit (an index row
       too large): the row's own, and sending it again changes nothing. Everything else
       (08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention,
       42 a schema or privilege wrong for every row) is retried: the next try can pass. */
    return !strncmp(st, "22", 2) || !strncmp(st, "23", 2) || !strcmp(st, "54000");
}

void mt_quar_key(uint8_t table, int64_t hour, const char *natural, uint8_t out[MT_QUAR_KEY_LEN])
{
    uint64_t h = mt_hash64(natural, strlen(natural));
    out[0] = 'Q';
    out[1] = table;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)((uint64_t)hour >> (56 - 8 * i));
    for (int i = 0; i < 8; i++) out[10 + i] = (uint8_t)(h >> (56 - 8 * i));
}

static size_t put_str(uint8_t *p, const char *s)
{
    if (!s) {
        mt_put_le(p, NULL_LEN, 4);
        return 4;
    }
    size_t n = strlen(s);
    mt_put_le(p, n, 4);
    memcpy(p + 4, s, n);
    p[4 + n] = '\0';
    return n + 5;
}

int mt_quar_encode(const mt_quar_row *r, void **out, size_t *len)
{
    if (r->nparams < 0 || r->nparams > MT_QUAR_MAX_PARAMS || !r->reason || !r->natural)
        return MT_EINVAL;
    size_t n = HEAD + 5 + strlen(r->reason) + 5 + strlen(r->natural) + 8;
    for (int i = 0; i < r->nparams; i++) n += r->params[i] ? strlen(r->params[i]) + 5 : 4;
    uint8_t *p = malloc(n);
    if (!p) return -ENOMEM;
    p[0] = VERSION;
    p[1] = r->table;
    mt_put_le(p + 2, (uint64_t)r->hour, 8);
    mt_put_le(p + 10, (uint64_t)r->at_ns, 8);
    mt_put_le(p + 18, r->refusals, 4);
    memset(p + 22, 0, 5);
    memcpy(p + 22, r->sqlstate, strnlen(r->sqlstate, 5));
    p[27] = (uint8_t)r->nparams;
    size_t at = HEAD;
    at += put_str(p + at, r->reason);
    at += put_str(p + at, r->natural);
    for (int i = 0; i < r->nparams; i++) at += put_str(p + at, r->params[i]);
    mt_put_le(p + at, mt_hash64(p, at), 8);
    *out = p;
    *len = at + 8;
    return MT_OK;
}

/* A string at *at: its pointer (NULL for SQL NULL) or MT_ECORRUPT. */
static int get_str(const uint8_t *p, size_t end, size_t *at, bool nullable, const char **s)
{
    if (end - *at < 4) return MT_ECORRUPT;
    uint32_t n = (uint32_t)mt_get_le(p + *at, 4);
    *at += 4;
    if (n == NULL_LEN) {
        *s = NULL;
        return nullable ? MT_OK : MT_ECORRUPT;
    }
    if (end - *at < (size_t)n + 1 || p[*at + n] != '\0' || memchr(p + *at, 0, n))
        return MT_ECORRUPT;
    *s = (const char *)p + *at;
    *at += (size_t)n + 1;
    return MT_OK;
}

int mt_quar_decode(const void *val, size_t len, mt_quar_row *r)
{
    const uint8_t *p = val;
    if (len < HEAD + 8 || p[0] != VERSION) return MT_ECORRUPT;
    size_t end = len - 8;
    if (mt_get_le(p + end, 8) != mt_hash64(p, end)) return MT_ECORRUPT;
    memset(r, 0, sizeof *r);
    r->table = p[1];
    r->hour = (int64_t)mt_get_le(p + 2, 8);
    r->at_ns = (int64_t)mt_get_le(p + 10, 8);
    r->refusals = (uint32_t)mt_get_le(p + 18, 4);
    memcpy(r->sqlstate, p + 22, 5);
    r->sqlstate[5] = '\0';
    r->nparams = p[27];
    if (r->nparams > MT_QUAR_MAX_PARAMS) return MT_ECORRUPT;
    size_t at = HEAD;
    int rc = get_str(p, end, &at, false, &r->reason);
    if (!rc) rc = get_str(p, end, &at, false, &r->natural);
    for (int i = 0; !rc && i < r->nparams; i++) rc = get_str(p, end, &at, true, &r->params[i]);
    if (!rc && at != end) rc = MT_ECORRUPT;
    return rc;
}

int mt_quar_send(mt_pg *pg, const mt_quar_row *r)
{
    int n;
    const char *sql = mt__sink_statement(r->table, &n);
    if (!sql || n != r->nparams) return MT_EINVAL;
    return mt_pg_exec(pg, sql, n, r->params);
}

typedef struct list_ctx {
    int (*fn)(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row);
    void *ud;
} list_ctx;

static int on_record(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
    list_ctx *l = ud;
    if (klen != MT_QUAR_KEY_LEN) return MT_OK; /* not a quarantine record */
    mt_quar_row r;
    return l->fn(l->ud, key, mt_quar_decode(val, vlen, &r) ? NULL : &r);
}

int mt_quar_list(mt_engine *e,
                 int (*fn)(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row),
                 void *ud)
{
    list_ctx l = {fn, ud};
    return mt_engine_state_scan(e, "Q", 1, on_record, &l);
}

static int count_one(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row)
{
    (void)key, (void)row;
    ++*(size_t *)ud;
    return MT_OK;
}

int mt_quar_count(mt_engine *e, size_t *n)
{
    *n = 0;
    return mt_quar_list(e, count_one, n);
}

/* ---- changes gathered, then applied in one engine transaction -------------------------- */

typedef struct change {
    uint8_t key[MT_QUAR_KEY_LEN];
    void *val; /* malloc'd record; NULL: delete */
    size_t vlen;
} change;

typedef struct changes {
    change *c;
    size_t n, cap;
    uint8_t kind; /* outbox kind for every put (requeue), else 0 */
    int rc;
} changes;

static void changes_add(changes *ch, const uint8_t key[MT_QUAR_KEY_LEN], void *val, size_t vlen)
{
    if (!ch->rc && mt_grow(&ch->c, &ch->cap, ch->n + 1, sizeof *ch->c, 64)) ch->rc = -ENOMEM;
    if (ch->rc) {
        free(val);
        return;
    }
    memcpy(ch->c[ch->n].key, key, MT_QUAR_KEY_LEN);
    ch->c[ch->n].val = val;
    ch->c[ch->n++].vlen = vlen;
}

static int changes_apply(mt_engine *e, changes *ch)
{
    int rc = MT_OK;
    mt_state_op ops[APPLY_MAX];
    for (size_t i = 0; !rc && i < ch->n; i += APPLY_MAX) {
        size_t k = ch->n - i < APPLY_MAX ? ch->n - i : APPLY_MAX;
        for (size_t j = 0; j < k; j++) {
            change *c = &ch->c[i + j];
            ops[j] = (mt_state_op){c->key, MT_QUAR_KEY_LEN, c->val, c->vlen, ch->kind};
        }
        rc = mt_engine_state_apply(e, ops, k, 0, NULL);
    }
    return rc;
}

static void changes_free(changes *ch)
{
    for (size_t i = 0; i < ch->n; i++) free(ch->c[i].val);
    free(ch->c);
}

static int on_requeue(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row)
{
    changes *ch = ud;
    if (!row) return MT_OK; /* unreadable: listed as such, never sent */
    void *val;
    size_t vlen;
    int rc = mt_quar_encode(row, &val, &vlen); /* the same record, queued with it */
    if (rc) return rc;
    changes_add(ch, key, val, vlen);
    return ch->rc;
}

int mt_quar_requeue(mt_engine *e, size_t *queued)
{
    changes ch = {.kind = MT_OUTBOX_QUARANTINE};
    *queued = 0;
    int rc = mt_quar_list(e, on_requeue, &ch);
    /* one transaction when it fits, so a failure queues nothing */
    if (!rc) rc = changes_apply(e, &ch);
    if (!rc) *queued = ch.n;
    changes_free(&ch);
    return rc;
}

typedef struct retry_ctx {
    changes ch;
    mt_pg *pg;
    mt_quar_result *res;
    char *err;
    size_t cap;
    bool stopped;
} retry_ctx;

static int on_retry(void *ud, const uint8_t key[MT_QUAR_KEY_LEN], const mt_quar_row *row)
{
    retry_ctx *x = ud;
    if (!row) return MT_OK;
    int rc = mt_pg_exec(x->pg, "BEGIN", 0, NULL);
    if (!rc) rc = mt_quar_send(x->pg, row);
    if (!rc) rc = mt_pg_exec(x->pg, "COMMIT", 0, NULL);
    if (!rc) {
        x->res->landed++;
        changes_add(&x->ch, key, NULL, 0);
        return x->ch.rc;
    }
    char state[6], reason[512];
    snprintf(state, sizeof state, "%s", mt_pg_sqlstate(x->pg));
    snprintf(reason, sizeof reason, "%s", mt_pg_errmsg(x->pg));
    if (mt_pg_ok(x->pg)) mt_pg_abort(x->pg);
    if (rc != MT_EPG || !mt_quar_permanent(state)) {
        snprintf(x->err, x->cap, "%s: %s", row->natural, reason);
        x->stopped = true;
        return rc;
    }
    mt_quar_row again = *row;
    snprintf(again.sqlstate, sizeof again.sqlstate, "%s", state);
    again.reason = reason;
    again.at_ns = mt_now_ns();
    again.refusals++;
    void *val;
    size_t vlen;
    if ((rc = mt_quar_encode(&again, &val, &vlen))) return rc;
    x->res->refused++;
    changes_add(&x->ch, key, val, vlen);
    return x->ch.rc;
}

int mt_quar_retry(mt_engine *e, const char *conninfo, mt_quar_result *res, char *err, size_t cap)
{
    *res = (mt_quar_result){0};
    if (cap) err[0] = '\0';
    retry_ctx x = {.res = res, .err = err, .cap = cap};
    int rc = mt_pg_open(conninfo, &x.pg, err, cap);
    if (rc) return rc;
    rc = mt_quar_list(e, on_retry, &x);
    if (!rc && x.ch.rc) rc = x.ch.rc;
    if (!rc && !x.stopped) err[0] = '\0';
    /* what PostgreSQL decided so far is recorded even when a later row stopped the run */
    int arc = changes_apply(e, &x.ch);
    if (!rc) rc = arc;
    if (rc && cap && !err[0]) snprintf(err, cap, "%s", mt_strerror(rc));
    changes_free(&x.ch);
    mt_pg_close(x.pg);
    return rc;
}
