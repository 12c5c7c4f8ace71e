-- Version 9: security events and business KPIs fed, and views that tell the
-- truth.
--
-- What version 1's header said and was not so: nothing fed security_events
-- or business_metrics (so security_dashboard and business_kpi_dashboard were
-- always empty), and metron-pgstat did not do the job of the seed's
-- collect_business_metrics(). Since this version:
--   - security_events gets one row per `security_event` point and
--     business_metrics one row per period of each `business_kpi` series,
--     both sent by any agent as line protocol to metrond (the tenant from its
--     token as always) and mirrored by metrond's minute mirror in the
--     transaction of the minutes they fall in: exactly once (the row's id is
--     md5 of its natural key, so a re-send after a crash of either side
--     lands on the same row). trend_direction and percentage_change are
--     Metron's, against the previous period of the same series; target_value
--     and is_kpi come from metrond's [kpi NAME] sections (or the point's
--     `target` field). docs/postgres.md, "Security events and KPIs";
--   - collect_business_metrics()' job, KPIs computed from the application's
--     own tables, is user-defined SQL that metron-pgstat runs every interval
--     ([kpi.NAME] sections of its config: query, period, industry; the
--     sql_exporter convention; docs/pgstat.md) and pushes as business_kpi;
--   - slow_queries_dashboard shows each statement once (below);
--   - system_health's cpu, memory and disk columns and alerts_active,
--     last_alert_at are filled by metron-pgstat through
--     monitoring.host_health (below).
--
-- Idempotent, as version 4: every statement can run again on a database
-- that has it.

-- The previous period of a KPI series, and the dashboard's window.
CREATE INDEX IF NOT EXISTS idx_business_metrics_metric_period
    ON monitoring.business_metrics (business_id, metric_name, time_period, period_start DESC);

-- The seed's view showed a row per statement per interval, so one slow
-- statement collected every 15 s filled all 50 rows. Now each statement
-- (tenant and query_hash) once: its latest interval of the last hour whose
-- mean passed 100 ms, the seed's columns and order.
CREATE OR REPLACE VIEW monitoring.slow_queries_dashboard WITH (security_invoker = true) AS
SELECT * FROM (
    SELECT DISTINCT ON (qp.business_id, qp.query_hash)
        qp.business_id,
        qp.query_hash,
        LEFT(qp.normalized_query, 100) AS query_preview,
        qp.execution_count,
        ROUND(qp.mean_exec_time, 3) AS avg_time_ms,
        ROUND(qp.max_exec_time, 3) AS max_time_ms,
        qp.performance_category,
        qp.is_problematic,
        qp.collected_at
    FROM monitoring.query_performance qp
    WHERE qp.collected_at >= NOW() - INTERVAL '1 hour'
      AND qp.mean_exec_time > 100
    ORDER BY qp.business_id, qp.query_hash, qp.collected_at DESC
) latest
ORDER BY avg_time_ms DESC
LIMIT 50;

-- What a system_health row of a database host takes from the rest of
-- Metron, at time `at_time`:
--   cpu_usage_percent     100 - usage_idle of measurement cpu (tag cpu=cpu-total, or no cpu
--                         tag), Telegraf's cpu input;
--   memory_usage_percent  used_percent of measurement mem (Telegraf's mem);
--   disk_usage_percent    the highest used_percent of measurement disk over the host's
--                         disks (Telegraf's disk: the fullest one);
-- each the last value of the latest minute row (series_minute, the minute
-- mirror) of a series with tag host = `host`, within the 5 minutes before
-- `at_time`, of the row's tenant or system-wide (the tenant's first); NULL when no
-- agent sends them. Clamped to 0..100 (the seed's NUMERIC(5,2)).
--   alerts_active  Metron's alerts (monitoring.alerts) active or acknowledged, of the
--                  tenant or system-wide, on a series tagged host=`host` or
--                  server=`server` (metron-pgstat's tag);
--   last_alert_at  the latest triggered_at of those alerts, whatever their status.
-- SECURITY INVOKER: it reads as the caller, through the policies.
CREATE OR REPLACE FUNCTION monitoring.host_health(host TEXT, tenant UUID, server TEXT,
                                                  at_time TIMESTAMPTZ DEFAULT now(),
                                                  OUT cpu_usage_percent NUMERIC(5,2),
                                                  OUT memory_usage_percent NUMERIC(5,2),
                                                  OUT disk_usage_percent NUMERIC(5,2),
                                                  OUT alerts_active INTEGER,
                                                  OUT last_alert_at TIMESTAMPTZ)
LANGUAGE sql STABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH latest AS (
        SELECT DISTINCT ON (s.series) s.metric_category, s.metric_name, s.last_value,
               s.business_id, s.dimensions
        FROM monitoring.series_minute s
        WHERE s.minute_bucket >= at_time - interval '5 minutes' AND s.minute_bucket <= at_time
          AND s.dimensions ->> 'host' = host
          AND (s.business_id = tenant OR s.business_id IS NULL)
          AND ((s.metric_category = 'cpu' AND s.metric_name = 'usage_idle'
                AND coalesce(s.dimensions ->> 'cpu', 'cpu-total') = 'cpu-total')
               OR (s.metric_category IN ('mem', 'disk') AND s.metric_name = 'used_percent'))
        ORDER BY s.series, s.minute_bucket DESC
    ), pick AS (
        SELECT DISTINCT ON (metric_category) metric_category,
               CASE WHEN metric_category = 'cpu' THEN 100 - last_value
                    WHEN metric_category = 'disk' THEN max(last_value) OVER (PARTITION BY
                        metric_category, business_id IS NULL)
                    ELSE last_value END AS v
        FROM latest
        ORDER BY metric_category, business_id IS NULL
    ), alerts AS (
        SELECT a.status, a.triggered_at
        FROM monitoring.alerts a
        WHERE (a.business_id = tenant OR a.business_id IS NULL)
          AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(a.affected_components) c
                      WHERE strpos(replace(c, ' ', ',') || ',', ',host=' || host || ',') > 0
                         OR strpos(replace(c, ' ', ',') || ',', ',server=' || server || ',') > 0)
    )
    SELECT
        (SELECT round(least(greatest(v, 0), 100)::numeric, 2) FROM pick WHERE metric_category = 'cpu'),
        (SELECT round(least(greatest(v, 0), 100)::numeric, 2) FROM pick WHERE metric_category = 'mem'),
        (SELECT round(least(greatest(v, 0), 100)::numeric, 2) FROM pick WHERE metric_category = 'disk'),
        (SELECT count(*)::int FROM alerts WHERE status IN ('active', 'acknowledged')),
        (SELECT max(triggered_at) FROM alerts)
$$;
