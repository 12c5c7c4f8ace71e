-- The seed's monitoring.performance_metrics (partitioned, the seed's
-- indexes; metric_value double precision: the audit's fix for the
-- NUMERIC(15,6) overflow) and its hourly_metrics_summary view, unrefreshed,
-- for the benchmarks that compare Metron with the seed's design
-- (bench/rollup_vs_pg.sh, bench/compare). One partition holds the points:
--   psql -v start=EPOCH_S -f bench/seed_pg.sql
CREATE SCHEMA monitoring;
CREATE TABLE monitoring.performance_metrics (
    id UUID DEFAULT gen_random_uuid(),
    business_id UUID,
    metric_name VARCHAR(100) NOT NULL,
    metric_category VARCHAR(50) NOT NULL,
    metric_type VARCHAR(20) NOT NULL,
    metric_value DOUBLE PRECISION NOT NULL,
    metric_unit VARCHAR(20),
    dimensions JSONB DEFAULT '{}'::jsonb,
    tags JSONB DEFAULT '{}'::jsonb,
    source_schema VARCHAR(50),
    source_table VARCHAR(100),
    source_query_id BIGINT,
    collected_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    processed_at TIMESTAMPTZ,
    is_anomaly BOOLEAN DEFAULT FALSE,
    anomaly_score NUMERIC(5,4),
    baseline_value NUMERIC(15,6),
    threshold_breached BOOLEAN DEFAULT FALSE,
    alert_generated BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    retention_policy VARCHAR(20) DEFAULT 'standard'
) PARTITION BY RANGE (collected_at);
CREATE TABLE monitoring.performance_metrics_bench PARTITION OF monitoring.performance_metrics
    FOR VALUES FROM (to_timestamp(:start) - interval '1 day') TO (to_timestamp(:start) + interval '40 days');
CREATE INDEX idx_performance_metrics_category_time
    ON monitoring.performance_metrics (metric_category, collected_at DESC, business_id);
CREATE INDEX idx_performance_metrics_business_metric_time
    ON monitoring.performance_metrics (business_id, metric_name, collected_at DESC);
CREATE MATERIALIZED VIEW monitoring.hourly_metrics_summary AS
SELECT
    DATE_TRUNC('hour', collected_at) as hour_bucket,
    business_id,
    metric_category,
    metric_name,
    COUNT(*) as sample_count,
    AVG(metric_value) as avg_value,
    MIN(metric_value) as min_value,
    MAX(metric_value) as max_value,
    PERCENTILE_CONT(0.50) WITHIN GROUP (ORDER BY metric_value) as median_value,
    PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY metric_value) as p95_value,
    PERCENTILE_CONT(0.99) WITHIN GROUP (ORDER BY metric_value) as p99_value
FROM monitoring.performance_metrics
WHERE collected_at >= NOW() - INTERVAL '30 days'
GROUP BY hour_bucket, business_id, metric_category, metric_name
WITH NO DATA;
