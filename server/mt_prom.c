/*
 * mt_prom.c — /metrics in the Prometheus text format 0.0.4: one HELP and
 * one TYPE per family, before its samples; label values escaped; the
 * commit-latency histogram cumulative, ending with le="+Inf" = _count.
 * Ingest renders its own families (mt_ingest_metrics), the daemon its
 * (more_metrics); this file composes them with the server's, the engine's
 * and the process's, in an order that has not changed since one file
 * rendered them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_promtext.h"
#include "mt_server_int.h"

static double rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

char *mt_prom_render(mt_server *srv, size_t *len)
{
    mt_sbuf o = {0};
    const mt_server_stats *s = &srv->st;
    mt_engine_stats e;
    mt_engine_stats_get(srv->eng, &e);

    size_t ilen = 0;
    char *ingest = mt_ingest_metrics(&s->ingest, &e, &ilen); /* lines, points, remote write */
    if (ingest) mt_sb_put(&o, ingest, ilen);
    o.oom |= !ingest;
    free(ingest);
    mt_promtext_family(&o, "metron_bytes_received_total", "counter",
                       "Bytes received, by listener.");
    static const char *const listeners[] = {"tcp", "udp", "http"};
    for (int l = 0; l < 3; l++)
        mt_sb_printf(&o, "metron_bytes_received_total{listener=\"%s\"} %llu\n", listeners[l],
                     (unsigned long long)s->bytes_received[l]);
    mt_promtext_one(&o, "metron_connections", "gauge", "Open TCP and HTTP connections.",
                    (double)s->connections_open);
    mt_promtext_family(&o, "metron_connections_open", "gauge", "Open connections, by listener.");
    mt_sb_printf(&o, "metron_connections_open{listener=\"tcp\"} %llu\n",
                 (unsigned long long)s->connections_open_by[LISTENER_TCP]);
    mt_sb_printf(&o, "metron_connections_open{listener=\"http\"} %llu\n",
                 (unsigned long long)s->connections_open_by[LISTENER_HTTP]);
    mt_promtext_one(&o, "metron_connections_accepted_total", "counter", "Connections accepted.",
                    (double)s->connections_total);
    mt_promtext_one(&o, "metron_connections_refused_total", "counter",
                    "Connections refused at the limit.", (double)s->connections_refused);
    mt_promtext_one(
        &o, "metron_connections_evicted_total", "counter",
        "HTTP connections closed at max_conns_http to make room: the most stalled (idle or slow).",
        (double)s->connections_evicted);
    mt_promtext_one(
        &o, "metron_connections_deferred_total", "counter",
        "HTTP accepts held in the listener's queue for a loop iteration at max_conns_http: only "
        "connections not yet read could have made room.",
        (double)s->connections_deferred);
    mt_promtext_family(&o, "metron_http_slow_closed_total", "counter",
                       "HTTP connections closed (408) for missing a deadline, by what was late.");
    mt_sb_printf(&o, "metron_http_slow_closed_total{stage=\"headers\"} %llu\n",
                 (unsigned long long)s->http_header_timeouts);
    mt_sb_printf(&o, "metron_http_slow_closed_total{stage=\"body\"} %llu\n",
                 (unsigned long long)s->http_body_timeouts);
    mt_promtext_one(&o, "metron_http_bodies_refused_total", "counter",
                    "HTTP bodies refused (503, Retry-After) for want of room in mem_budget.",
                    (double)s->http_bodies_refused);
    mt_promtext_one(
        &o, "metron_http_body_bytes", "gauge",
        "Bytes of HTTP bodies held (being received or inflated), counted in mem_budget.",
        (double)s->body_bytes);
    mt_promtext_one(&o, "metron_connections_idle_closed_total", "counter",
                    "Connections closed after the idle timeout.",
                    (double)s->connections_idle_closed);
    mt_promtext_family(&o, "metron_http_requests_total", "counter",
                       "HTTP requests answered, by status class.");
    for (int k = 2; k <= 5; k++)
        mt_sb_printf(&o, "metron_http_requests_total{code=\"%dxx\"} %llu\n", k,
                     (unsigned long long)s->http_requests[k]);
    mt_promtext_one(&o, "metron_http_bodies_too_large_total", "counter",
                    "HTTP bodies over the limit (413).", (double)s->http_bodies_too_large);
    mt_promtext_one(&o, "metron_head_records_skipped_total", "counter",
                    "Head log records that failed their checksum at open: their points are lost.",
                    (double)e.head_records_skipped);
    mt_promtext_one(
        &o, "metron_unreadable_hour_files", "gauge",
        "Sealed hour files the index names that could not be read at open (see the log).",
        (double)e.hours_unreadable);
    mt_promtext_one(&o, "metron_files_set_aside_total", "counter",
                    "Hour files open could not account for, moved to lost+found/ (never deleted).",
                    (double)e.files_set_aside);
    mt_promtext_one(&o, "metron_http_unauthorized_total", "counter",
                    "HTTP requests refused on their credentials (401, 403), before their body.",
                    (double)s->http_unauthorized);
    mt_promtext_one(&o, "metron_ingest_inflight_bytes", "gauge",
                    "Bytes of batches waiting for their commit.", (double)s->inflight_bytes);
    mt_promtext_one(&o, "metron_ingest_pauses_total", "counter",
                    "Times reading paused because the writer fell behind.", (double)s->pauses);
    mt_promtext_one(&o, "metron_write_errors_total", "counter",
                    "Batches the engine failed to write.", (double)s->write_errors);
    mt_promtext_one(&o, "metron_series", "gauge", "Series known.", (double)e.series);
    mt_promtext_one(&o, "metron_points_over_series_limit_total", "counter",
                    "Points refused because their series would pass a cardinality limit.",
                    (double)e.points_over_series_limit);
    mt_promtext_one(&o, "metron_head_points", "gauge", "Points in the head, not yet sealed.",
                    (double)e.head_points);
    mt_promtext_one(&o, "metron_head_bytes", "gauge", "Bytes the head holds in memory.",
                    (double)e.head_bytes);
    mt_promtext_one(&o, "metron_sealed_hour_files", "gauge", "Hours with a sealed file.",
                    (double)e.sealed_hours);
    mt_promtext_one(&o, "metron_hour_files_written_total", "counter",
                    "Hour file generations written: first seals and merges of late points.",
                    (double)e.hour_files_written);
    mt_promtext_one(&o, "metron_late_points", "gauge",
                    "Points for hours that already have a file, waiting in the head to be merged.",
                    (double)e.late_points);
    mt_promtext_one(&o, "metron_head_log_points", "gauge",
                    "Points in the head log on disk, sealed ones not yet trimmed included.",
                    (double)e.log_points);
    mt_promtext_one(&o, "metron_head_log_rewrites_total", "counter",
                    "Seals that wrote the head log again instead of trimming it.",
                    (double)e.log_rewrites);
    mt_promtext_one(&o, "metron_commits_total", "counter", "LMDB write transactions committed.",
                    (double)e.commits);
    mt_promtext_one(&o, "metron_index_bytes", "gauge", "Size of index.mdb.", (double)e.index_bytes);
    mt_promtext_one(&o, "metron_block_bytes", "gauge", "Size of the current hour files.",
                    (double)e.block_bytes);
    mt_promtext_family(&o, "metron_commit_seconds", "histogram",
                       "Time of each group commit, fsync included.");
    uint64_t cum = 0;
    for (int k = 0; k < MT_COMMIT_BUCKETS; k++) {
        cum += e.commit_buckets[k];
        if (k == MT_COMMIT_BUCKETS - 1)
            mt_sb_printf(&o, "metron_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
                         (unsigned long long)cum);
        else
            mt_sb_printf(&o, "metron_commit_seconds_bucket{le=\"%g\"} %llu\n",
                         mt_commit_bucket_le[k], (unsigned long long)cum);
    }
    mt_sb_printf(&o, "metron_commit_seconds_sum %.9f\nmetron_commit_seconds_count %llu\n",
                 e.commit_seconds, (unsigned long long)cum);
    mt_promtext_one(&o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    rss_bytes());
    if (srv->cfg.more_metrics) {
        size_t n = 0;
        char *more = srv->cfg.more_metrics(srv->cfg.more_metrics_ud, &n);
        if (more) mt_sb_put(&o, more, n);
        free(more);
    }
    if (o.oom) {
        mt_sb_free(&o);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
