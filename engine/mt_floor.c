/*
 * mt_floor.c — the commit floor (mt_engine.h, mt_engine_floor_get): the
 * lowest timestamp that may not yet be mirrored. Commits lower it in their
 * own transaction (mt_engine.c, group_body); a mirror reads it, and raises
 * it once what lies below has been mirrored. Both on the writer thread, so
 * that no commit falls between the test and the write.
 */
#include "mt_engine_int.h"

typedef struct floor_job {
    int64_t value; /* get: out; raise: the mirror's bound in, the floor set out; lower: in */
} floor_job;

static int get_run(mt_engine *e, void *ud)
{
    floor_job *j = ud;
    j->value = e->floor;
    e->floor_low = INT64_MAX; /* the watch of the next raise starts now */
    return MT_OK;
}

int mt_engine_floor_get(mt_engine *e, int64_t *floor)
{
    floor_job j = {0};
    int rc = mt_engine_run_job(e, get_run, &j);
    if (!rc) *floor = j.value;
    return rc;
}

static int put_body(mt_engine *e, mt_kv_txn *t, void *ud)
{
    (void)e;
    floor_job *j = ud;
    return mt_engine_meta_put(t, "floor", (uint64_t)j->value);
}

/* Make j->value the floor, in index.mdb and then in memory. */
static int put_floor(mt_engine *e, floor_job *j)
{
    int rc = mt_engine_write_txn(e, put_body, NULL, j);
    if (!rc) e->floor = j->value;
    return rc;
}

static int raise_run(mt_engine *e, void *ud)
{
    floor_job *j = ud;
    if (e->floor_low < j->value) j->value = e->floor_low; /* committed while it computed */
    return j->value <= e->floor ? MT_OK : put_floor(e, j);
}

int mt_engine_floor_raise(mt_engine *e, int64_t to)
{
    floor_job j = {to};
    return mt_engine_run_job(e, raise_run, &j);
}

static int lower_run(mt_engine *e, void *ud)
{
    floor_job *j = ud;
    if (j->value < e->floor_low)
        e->floor_low = j->value; /* a raise computed meanwhile stops here */
    return j->value >= e->floor ? MT_OK : put_floor(e, j);
}

int mt_engine_floor_lower(mt_engine *e, int64_t ts)
{
    floor_job j = {ts};
    return mt_engine_run_job(e, lower_run, &j);
}
