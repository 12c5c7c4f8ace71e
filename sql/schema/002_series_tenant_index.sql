-- Version 2: dashboards filter the per-series rollups by tenant and metric
-- over a time range; without this index each such panel scans the table.
CREATE INDEX idx_series_hourly_summary_tenant_metric_time
    ON monitoring.series_hourly_summary (business_id, metric_category, metric_name, hour_bucket DESC);
