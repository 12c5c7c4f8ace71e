-- Version 5: minute summaries, mirrored continuously (sql/mt_minute.h), and
-- the seed's live view fed from them again.
--
-- Hourly rows appear once an hour is sealed (its end plus the grace), so a
-- dashboard on them is 5 to 65 minutes behind. metrond recomputes the
-- minutes that committed points touched, from the stored points, every
-- postgres_flush_interval (10 s), and upserts them here: the same row after
-- any re-send. The tables are partitioned by day (UTC) and kept
-- postgres_minute_retention (48 h) by dropping whole partitions
-- (monitoring.minute_partitions below), never by DELETE.
--
-- Idempotent, as version 4: every statement can run again on a database
-- that has it.

-- Per group, as hourly_metrics_summary (the seed's columns), per minute.
-- median/p95/p99 are PERCENTILE_CONT over every value of the minute.
CREATE TABLE IF NOT EXISTS monitoring.metrics_minute (
    minute_bucket TIMESTAMPTZ NOT NULL,
    business_id UUID,
    metric_category VARCHAR(50) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    sample_count BIGINT NOT NULL,
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    median_value DOUBLE PRECISION,
    p95_value DOUBLE PRECISION,
    p99_value DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), -- when Metron last wrote the row
    -- the partition key is part of every unique key of a partitioned table
    CONSTRAINT metrics_minute_key
        UNIQUE NULLS NOT DISTINCT (minute_bucket, business_id, metric_category, metric_name)
) PARTITION BY RANGE (minute_bucket);

-- Per series, as series_hourly_summary is per hour: count, sum, min, max and
-- the last value of the minute (avg for panels that want it directly).
CREATE TABLE IF NOT EXISTS monitoring.series_minute (
    minute_bucket TIMESTAMPTZ NOT NULL,
    series TEXT NOT NULL, -- the series as line protocol: cpu,host=a usage_user
    business_id UUID,
    metric_category VARCHAR(50) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    dimensions JSONB NOT NULL DEFAULT '{}'::jsonb,
    sample_count BIGINT NOT NULL,
    sum_value DOUBLE PRECISION,
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    last_value DOUBLE PRECISION, -- the value with the latest timestamp of the minute
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT series_minute_key PRIMARY KEY (minute_bucket, series)
) PARTITION BY RANGE (minute_bucket);

CREATE INDEX IF NOT EXISTS idx_series_minute_tenant_metric_time
    ON monitoring.series_minute (business_id, metric_category, metric_name, minute_bucket DESC);

-- Day partitions (UTC) of both tables from the day of now() - keep to
-- days_ahead days after today, created when missing and protected like every
-- tenant partition; partitions that end at or before now() - keep dropped
-- whole. Found through pg_inherits and their bounds, never by name. Returns
-- how many were created and dropped. metrond calls it at connect and every
-- 10 minutes with its postgres_minute_retention.
CREATE OR REPLACE FUNCTION monitoring.minute_partitions(keep INTERVAL, days_ahead INTEGER DEFAULT 1,
                                             OUT created INTEGER, OUT dropped INTEGER)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent REGCLASS;
    part REGCLASS;
    day_start TIMESTAMPTZ;
    upper_bound TIMESTAMPTZ;
    horizon TIMESTAMPTZ := now() - keep;
BEGIN
    created := 0;
    dropped := 0;
    FOREACH parent IN ARRAY ARRAY['monitoring.metrics_minute'::regclass,
                                  'monitoring.series_minute'::regclass] LOOP
        FOR part, upper_bound IN
            SELECT i.inhrelid::regclass,
                   substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = parent LOOP
            CONTINUE WHEN upper_bound IS NULL OR upper_bound > horizon;
            EXECUTE format('DROP TABLE %s', part);
            dropped := dropped + 1;
        END LOOP;
        day_start := date_trunc('day', horizon AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        WHILE day_start < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                          + make_interval(days => days_ahead + 1) LOOP
            IF NOT EXISTS (
                SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = parent
                  AND substring(pg_get_expr(c.relpartbound, c.oid)
                                FROM 'FROM \(''([^'']+)''\)')::timestamptz = day_start) THEN
                EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                               (SELECT relname FROM pg_class WHERE oid = parent) || '_'
                                   || to_char(day_start AT TIME ZONE 'UTC', 'YYYY_MM_DD'),
                               parent, day_start, day_start + interval '1 day');
                PERFORM monitoring.protect_partition(
                    format('monitoring.%I', (SELECT relname FROM pg_class WHERE oid = parent) || '_'
                           || to_char(day_start AT TIME ZONE 'UTC', 'YYYY_MM_DD'))::regclass);
                created := created + 1;
            END IF;
            day_start := day_start + interval '1 day';
        END LOOP;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.minute_partitions(INTERVAL, INTEGER) FROM PUBLIC;

-- Tenant isolation as version 4 set it for every tenant table: row-level
-- security forced, a reader sees its tenant's rows and the system-wide ones,
-- the owner (Metron's role) everything; the dashboard role may read.
DO $$
DECLARE
    t REGCLASS;
BEGIN
    FOREACH t IN ARRAY ARRAY['monitoring.metrics_minute'::regclass,
                             'monitoring.series_minute'::regclass] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_reader ON %s', t);
        EXECUTE format('DROP POLICY IF EXISTS metron_owner ON %s', t);
        EXECUTE format('CREATE POLICY tenant_reader ON %s FOR SELECT TO PUBLIC USING ('
                       'business_id = (SELECT monitoring.reader_tenant(current_user)) OR '
                       '(business_id IS NULL AND '
                       '(SELECT monitoring.reader_tenant(current_user)) IS NOT NULL))', t);
        EXECUTE format('CREATE POLICY metron_owner ON %s FOR ALL TO PUBLIC '
                       'USING ((SELECT monitoring.owner_access(%L))) '
                       'WITH CHECK ((SELECT monitoring.owner_access(%L)))', t, t, t);
        EXECUTE format('GRANT SELECT ON %s TO monitoring_dashboard', t);
    END LOOP;
END;
$$;

-- The seed's view, live again: the last 15 minutes (every minute that
-- overlaps them, so up to 16), from the minute rows. The seed's columns and
-- meaning: avg_value is the average of every point of the window (the
-- minutes' averages weighted by their counts), min/max over the window,
-- sample_count the points; health_status from the alerts of the metric as
-- in version 1; last_updated when Metron last wrote a row of the window.
-- The other views of the seed read no recent window of performance_metrics
-- (alerts, query_performance, business_metrics, security_events).
CREATE OR REPLACE VIEW monitoring.system_dashboard WITH (security_invoker = true) AS
WITH current_metrics AS (
    SELECT business_id, metric_category, metric_name,
        sum(avg_value * sample_count) / sum(sample_count) AS avg_value,
        max(max_value) AS max_value,
        min(min_value) AS min_value,
        sum(sample_count)::bigint AS sample_count,
        max(updated_at) AS updated_at
    FROM monitoring.metrics_minute
    WHERE minute_bucket > NOW() - INTERVAL '16 minutes'
    GROUP BY business_id, metric_category, metric_name
)
SELECT
    COALESCE(cm.business_id, '00000000-0000-0000-0000-000000000000'::UUID) AS business_id,
    cm.metric_category,
    cm.metric_name,
    cm.avg_value,
    cm.max_value,
    cm.min_value,
    cm.sample_count,
    CASE
        WHEN EXISTS (SELECT 1 FROM monitoring.alerts a
                     WHERE a.status IN ('active', 'acknowledged') AND a.severity = 'critical'
                       AND a.metric_name IN (cm.metric_name, cm.metric_category || '.' || cm.metric_name)
                       AND a.business_id IS NOT DISTINCT FROM cm.business_id) THEN 'critical'
        WHEN EXISTS (SELECT 1 FROM monitoring.alerts a
                     WHERE a.status IN ('active', 'acknowledged')
                       AND a.metric_name IN (cm.metric_name, cm.metric_category || '.' || cm.metric_name)
                       AND a.business_id IS NOT DISTINCT FROM cm.business_id) THEN 'warning'
        ELSE 'healthy'
    END AS health_status,
    cm.updated_at AS last_updated
FROM current_metrics cm;
