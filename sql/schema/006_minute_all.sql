-- Version 6: the system-wide minute row, for dashboards that add up across
-- tenants.
--
-- A panel's "all" used to be computed from the tenants' rows: a max of their
-- p95s shown as a p95, an average of their averages. Neither is a statistic
-- of all the points. metrics_minute_all holds, per minute and (measurement,
-- field), the count, average, min, max and PERCENTILE_CONT quantiles over
-- every point of every tenant (the system-wide ones, with no business_id,
-- included), computed by metrond from the points as metrics_minute is
-- (sql/mt_minute.h). The average equals sum(avg * count) / sum(count) over
-- the tenants' rows; the quantiles cannot be had from those rows at all.
--
-- Who reads it: only roles with the owner's privileges (Metron's role, an
-- administrator). It shows how much every tenant sends, so a tenant reader
-- sees no row of it: row-level security forced with the owner's policy
-- only. monitoring_dashboard keeps SELECT so that a panel's SQL that names
-- the table still runs for a tenant (it answers no row instead of failing).
--
-- Idempotent, as version 5.

CREATE TABLE IF NOT EXISTS monitoring.metrics_minute_all (
    minute_bucket TIMESTAMPTZ NOT NULL,
    metric_category VARCHAR(50) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    sample_count BIGINT NOT NULL, -- every tenant's points of the minute
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    median_value DOUBLE PRECISION, -- PERCENTILE_CONT over every tenant's points
    p95_value DOUBLE PRECISION,
    p99_value DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), -- when Metron last wrote the row
    CONSTRAINT metrics_minute_all_key UNIQUE (minute_bucket, metric_category, metric_name)
) PARTITION BY RANGE (minute_bucket);

ALTER TABLE monitoring.metrics_minute_all ENABLE ROW LEVEL SECURITY;
ALTER TABLE monitoring.metrics_minute_all FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS metron_owner ON monitoring.metrics_minute_all;
CREATE POLICY metron_owner ON monitoring.metrics_minute_all FOR ALL TO PUBLIC
    USING ((SELECT monitoring.owner_access('monitoring.metrics_minute_all')))
    WITH CHECK ((SELECT monitoring.owner_access('monitoring.metrics_minute_all')));
REVOKE ALL ON monitoring.metrics_minute_all FROM PUBLIC;
GRANT SELECT ON monitoring.metrics_minute_all TO monitoring_dashboard;

-- Version 5's minute_partitions, keeping the new table's day partitions too
-- (created ahead, protected, dropped whole past the retention).
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
                                  'monitoring.series_minute'::regclass,
                                  'monitoring.metrics_minute_all'::regclass] LOOP
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
