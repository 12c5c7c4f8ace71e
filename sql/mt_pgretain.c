/* mt_pgretain.c — PostgreSQL retention, one pass (mt_pgretain.h). */
#include "mt_pgretain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_log.h"

#define DAY (24LL * 3600)

static const struct {
    const char *name;
    int64_t keep_s; /* the default */
} tables[MT_PGR_NTABLES] = {
    [MT_PGR_PERFORMANCE_METRICS] = {"performance_metrics", 90 * DAY},
    [MT_PGR_QUERY_PERFORMANCE] = {"query_performance", 30 * DAY},
    [MT_PGR_SYSTEM_HEALTH] = {"system_health", 30 * DAY},
    [MT_PGR_SECURITY_EVENTS] = {"security_events", 90 * DAY},
    [MT_PGR_HOURLY_SUMMARY] = {"hourly_metrics_summary", 400 * DAY},
    [MT_PGR_SERIES_SUMMARY] = {"series_hourly_summary", 400 * DAY},
    [MT_PGR_ALERTS] = {"alerts", 90 * DAY},
};

void mt_pgretain_default(mt_pgretain *p)
{
    for (int i = 0; i < MT_PGR_NTABLES; i++) p->keep_s[i] = tables[i].keep_s;
}

const char *mt_pgretain_name(int table)
{
    return table >= 0 && table < MT_PGR_NTABLES ? tables[table].name : NULL;
}

int mt_pgretain_set(mt_pgretain *p, const char *name, int64_t keep_s)
{
    for (int i = 0; i < MT_PGR_NTABLES; i++)
        if (!strcmp(name, tables[i].name)) {
            p->keep_s[i] = keep_s > 0 ? keep_s : 0;
            return MT_OK;
        }
    return MT_ENOTFOUND;
}

int mt_pgretain_apply(mt_pg *pg, const mt_pgretain *p, mt_pgretain_result *res)
{
    *res = (mt_pgretain_result){0};
    int rc = MT_OK;
    for (int i = 0; i < MT_PGR_NTABLES; i++) {
        if (p->keep_s[i] <= 0) continue;
        char tbl[64], keep[24], n[32];
        snprintf(tbl, sizeof tbl, "monitoring.%s", tables[i].name);
        snprintf(keep, sizeof keep, "%lld", (long long)p->keep_s[i]);
        const char *params[] = {tbl, keep};
        int trc = mt_pg_query_value(pg,
                                    "SELECT monitoring.retain($1::regclass,"
                                    " $2::bigint * interval '1 second')",
                                    2, params, n, sizeof n);
        if (trc) {
            res->removed[i] = -1;
            res->failed++;
            rc = trc;
            mt_log(MT_LOG_ERROR,
                   "msg=\"PostgreSQL retention failed for a table; nothing of it removed, "
                   "tried again at the next pass\" table=%s err=\"%s\"",
                   tbl, trc == MT_EPG ? mt_pg_errmsg(pg) : mt_strerror(trc));
            if (!mt_pg_ok(pg)) break; /* the connection is gone: the caller opens another */
            continue;
        }
        res->removed[i] = atoll(n);
    }
    return rc;
}
