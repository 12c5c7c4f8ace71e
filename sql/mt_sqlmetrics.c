/*
 * mt_sqlmetrics.c — the SQL sink's and the minute mirror's lines of
 * /metrics (contracts in mt_sink.h and mt_minute.h): each module renders
 * its own, the server only concatenates.
 */
#include <stdio.h>

#include "mt_minute.h"
#include "mt_sink.h"

/* Append what snprintf wrote at buf + *n when it fit in cap - *n; else nothing. */
static void took(size_t *n, size_t cap, int k)
{
    if (k > 0 && (size_t)k < cap - *n) *n += (size_t)k;
}

size_t mt_sink_metrics(mt_sink *s, char *buf, size_t cap)
{
    mt_sink_stats st;
    mt_sink_stats_get(s, &st);
    size_t n = 0;
    if (cap == 0) return 0;
    took(&n, cap,
         snprintf(
             buf, cap,
             "# HELP metron_sink_connected Whether the SQL sink is connected to PostgreSQL.\n"
             "# TYPE metron_sink_connected gauge\nmetron_sink_connected %d\n"
             "# HELP metron_sink_connects_total Sessions the SQL sink opened (reconnections "
             "included).\n"
             "# TYPE metron_sink_connects_total counter\nmetron_sink_connects_total %llu\n"
             "# HELP metron_sink_outbox_depth Sealed hours waiting to be mirrored.\n"
             "# TYPE metron_sink_outbox_depth gauge\nmetron_sink_outbox_depth %zu\n"
             "# HELP metron_sink_oldest_undelivered_seconds Age of the oldest hour waiting.\n"
             "# TYPE metron_sink_oldest_undelivered_seconds gauge\n"
             "metron_sink_oldest_undelivered_seconds %.3f\n"
             "# HELP metron_sink_rows_delivered_total Rollup rows committed into PostgreSQL.\n"
             "# TYPE metron_sink_rows_delivered_total counter\nmetron_sink_rows_delivered_total "
             "%llu\n"
             "# HELP metron_sink_failures_total Batches that failed and were retried.\n"
             "# TYPE metron_sink_failures_total counter\nmetron_sink_failures_total %llu\n"
             "# HELP metron_sink_rows_skipped_total Rows that could not be formed (a series key or "
             "alert record that does not decode).\n"
             "# TYPE metron_sink_rows_skipped_total counter\nmetron_sink_rows_skipped_total %llu\n"
             "# HELP metron_sink_rows_quarantined_total Rows PostgreSQL does not take, held in the "
             "data dir (metron sink quarantine list).\n"
             "# TYPE metron_sink_rows_quarantined_total counter\n"
             "metron_sink_rows_quarantined_total %llu\n"
             "# HELP metron_sink_quarantine_rows Rows in the quarantine now.\n"
             "# TYPE metron_sink_quarantine_rows gauge\nmetron_sink_quarantine_rows %zu\n",
             st.connected ? 1 : 0, (unsigned long long)st.connects, st.outbox_depth,
             st.oldest_age_s, (unsigned long long)st.rows_delivered,
             (unsigned long long)st.failures, (unsigned long long)st.rows_skipped,
             (unsigned long long)st.rows_quarantined, st.quarantine_held));
    return n;
}

size_t mt_minute_metrics(mt_minute *m, bool raw, char *buf, size_t cap)
{
    mt_minute_stats ms;
    mt_minute_stats_get(m, &ms);
    size_t n = 0;
    if (cap == 0) return 0;
    took(
        &n, cap,
        snprintf(
            buf + n, cap - n,
            "# HELP metron_minute_lag_seconds Age of the oldest commit whose minute is not yet "
            "in PostgreSQL (0: none).\n"
            "# TYPE metron_minute_lag_seconds gauge\nmetron_minute_lag_seconds %.3f\n"
            "# HELP metron_minute_pending_minutes Minutes touched and not yet mirrored.\n"
            "# TYPE metron_minute_pending_minutes gauge\nmetron_minute_pending_minutes %zu\n"
            "# HELP metron_minute_rows_pending Rows of those minutes (estimated from the last "
            "minute computed).\n"
            "# TYPE metron_minute_rows_pending gauge\nmetron_minute_rows_pending %llu\n"
            "# HELP metron_minute_rows_delivered_total Minute rows committed into PostgreSQL.\n"
            "# TYPE metron_minute_rows_delivered_total counter\n"
            "metron_minute_rows_delivered_total %llu\n"
            "# HELP metron_minute_failures_total Minute mirror transactions that failed.\n"
            "# TYPE metron_minute_failures_total counter\nmetron_minute_failures_total %llu\n"
            "# HELP metron_minute_minutes_total Minutes computed and committed.\n"
            "# TYPE metron_minute_minutes_total counter\nmetron_minute_minutes_total %llu\n"
            "# HELP metron_minute_flush_seconds_total Time spent computing and upserting minutes.\n"
            "# TYPE metron_minute_flush_seconds_total counter\n"
            "metron_minute_flush_seconds_total %.6f\n"
            "# HELP metron_minute_points_read_total Points scanned to compute minutes.\n"
            "# TYPE metron_minute_points_read_total counter\nmetron_minute_points_read_total "
            "%llu\n"
            "# HELP metron_minute_spilled_total Transactions whose values exceeded "
            "postgres_minute_values (their points read twice).\n"
            "# TYPE metron_minute_spilled_total counter\nmetron_minute_spilled_total %llu\n",
            ms.lag_s, ms.minutes_pending, (unsigned long long)ms.rows_pending,
            (unsigned long long)ms.rows_delivered, (unsigned long long)ms.failures,
            (unsigned long long)ms.minutes_mirrored, ms.flush_s, (unsigned long long)ms.points_read,
            (unsigned long long)ms.spilled));
    if (raw)
        took(&n, cap,
             snprintf(buf + n, cap - n,
                      "# HELP metron_raw_rows_total Raw rows committed into "
                      "monitoring.performance_metrics.\n"
                      "# TYPE metron_raw_rows_total counter\nmetron_raw_rows_total %llu\n"
                      "# HELP metron_raw_minutes_skipped_total Minutes over "
                      "postgres_raw_max_rate, sent without raw rows.\n"
                      "# TYPE metron_raw_minutes_skipped_total counter\n"
                      "metron_raw_minutes_skipped_total %llu\n"
                      "# HELP metron_raw_points_per_second Points per second of the last "
                      "complete minute.\n"
                      "# TYPE metron_raw_points_per_second gauge\n"
                      "metron_raw_points_per_second %.1f\n"
                      "# HELP metron_raw_over_budget 1 when that minute was over "
                      "postgres_raw_max_rate.\n"
                      "# TYPE metron_raw_over_budget gauge\nmetron_raw_over_budget %d\n",
                      (unsigned long long)ms.raw_rows, (unsigned long long)ms.raw_skipped,
                      ms.raw_rate, ms.raw_over ? 1 : 0));
    took(&n, cap,
         snprintf(buf + n, cap - n,
                  "# HELP metron_events_rows_total Rows of security_event and business_kpi "
                  "points committed into PostgreSQL (a re-send counts again).\n"
                  "# TYPE metron_events_rows_total counter\n"
                  "metron_events_rows_total{table=\"security_events\"} %llu\n"
                  "metron_events_rows_total{table=\"business_metrics\"} %llu\n"
                  "# HELP metron_events_skipped_total security_event and business_kpi points "
                  "that made no row (no tenant, no event_type or metric_name, ...).\n"
                  "# TYPE metron_events_skipped_total counter\n"
                  "metron_events_skipped_total %llu\n",
                  (unsigned long long)ms.events_rows, (unsigned long long)ms.kpi_rows,
                  (unsigned long long)ms.events_skipped));
    return n;
}
