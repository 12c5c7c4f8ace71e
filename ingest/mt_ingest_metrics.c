/*
 * mt_ingest_metrics.c — ingest's /metrics families (contract in
 * mt_ingest.h), in the Prometheus text format 0.0.4: HELP and TYPE before
 * the samples of each.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mt_ingest.h"
#include "mt_promtext.h"

char *mt_ingest_metrics(const mt_ingest_counters *c, const mt_engine_stats *e, size_t *len)
{
    mt_sbuf o = {0};
    mt_promtext_one(&o, "metron_lines_accepted_total", "counter",
                    "Lines of line protocol accepted.", (double)c->lines_ok);
    mt_promtext_family(&o, "metron_lines_rejected_total", "counter", "Lines rejected, by reason.");
    for (int r = 0; r < MT_LP_E__COUNT; r++)
        mt_sb_printf(&o, "metron_lines_rejected_total{reason=\"%s\"} %llu\n",
                     mt_lp_errcode_label((mt_lp_errcode)r),
                     (unsigned long long)c->lines_rejected[r]);
    mt_promtext_one(&o, "metron_points_accepted_total", "counter",
                    "Points committed by the engine.", (double)c->points_ok);
    mt_promtext_family(&o, "metron_points_rejected_total", "counter",
                       "Points refused by the engine, by reason.");
    uint64_t other = e->points_out_of_time + e->points_over_series_limit;
    mt_sb_printf(&o, "metron_points_rejected_total{reason=\"type_conflict\"} %llu\n",
                 (unsigned long long)(c->points_rejected > other ? c->points_rejected - other : 0));
    mt_sb_printf(&o, "metron_points_rejected_total{reason=\"timestamp\"} %llu\n",
                 (unsigned long long)e->points_out_of_time);
    mt_promtext_family(
        &o, "metron_remote_write_samples_total", "counter",
        "Prometheus remote-write samples, by outcome: decoded into a batch (the engine may "
        "still refuse some), refused as bad data, stale markers left out.");
    mt_sb_printf(&o, "metron_remote_write_samples_total{outcome=\"accepted\"} %llu\n",
                 (unsigned long long)c->rw_samples);
    mt_sb_printf(&o, "metron_remote_write_samples_total{outcome=\"bad_data\"} %llu\n",
                 (unsigned long long)c->rw_bad_samples);
    mt_sb_printf(&o, "metron_remote_write_samples_total{outcome=\"stale\"} %llu\n",
                 (unsigned long long)c->rw_stale);
    mt_promtext_one(
        &o, "metron_remote_write_series_forbidden_total", "counter",
        "Prometheus remote-write series refused (403) for another tenant's business_id label.",
        (double)c->rw_forbidden);
    if (o.oom) {
        mt_sb_free(&o);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
