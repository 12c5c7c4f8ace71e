/*
 * mt_compact.c — compaction (mt_engine.h): the sealed hours that late
 * points touched are merged into one new file each (a seal of exactly
 * those hours), then index.mdb is rewritten without its free pages
 * (mt_kv_compact). A writer job: writes wait for it, queries do not,
 * except for the moment the index file is swapped.
 */
#include "mt_engine_int.h"

typedef struct job {
    bool index;
    mt_progress_fn progress;
    void *ud;
    mt_compact_result *res;
} job;

static int run(mt_engine *e, void *ud)
{
    job *j = ud;
    size_t late = 0;
    for (size_t i = 0; i < e->head.nhours; i++)
        late += mt_engine_hour(e, e->head.hours[i].hour) != NULL;
    if (j->progress) j->progress(j->ud, "hours", 0, late);
    int rc = mt_seal_run(e, MT_SEAL_BACKFILL, &j->res->hours_rewritten);
    if (j->progress) j->progress(j->ud, "hours", j->res->hours_rewritten, late);
    if (rc || !j->index) return rc;
    if (j->progress) j->progress(j->ud, "index", 0, 1);
    rc = mt_kv_compact(e->kv, &j->res->index_before, &j->res->index_after);
    if (rc == MT_ECLOSED) mt_engine_after_commit(e, rc); /* the index could not be reopened */
    if (j->progress) j->progress(j->ud, "index", 1, 1);
    return rc;
}

int mt_engine_compact(mt_engine *e, bool index, mt_progress_fn progress, void *ud,
                      mt_compact_result *res)
{
    *res = (mt_compact_result){0};
    job j = {.index = index, .progress = progress, .ud = ud, .res = res};
    return mt_engine_run_job(e, run, &j);
}
