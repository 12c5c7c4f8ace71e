-- Metron's PostgreSQL side, version 1: the seed's `monitoring` schema,
-- corrected so that it loads on PostgreSQL 15 and later and every object
-- works (../shared/seed-audit.md lists what failed). Tables, columns and
-- view names are the seed's, so existing dashboards and queries keep
-- working; every change says why, in a comment beside it.
--
-- Applied by `metron schema install` (sql/mt_schema.h) in one transaction,
-- never by hand-concatenated SQL. No CONCURRENTLY anywhere: it cannot run
-- inside a transaction, nor on a partitioned table.
--
-- Not here, on purpose: the seed's functions collect_database_metrics(),
-- collect_business_metrics(), evaluate_alerts(), cleanup_old_metrics(),
-- send_webhook_notification() and export_metrics_prometheus(), and its
-- pg_cron schedules. Metron does their work natively (metron-pgstat,
-- rollups at sealing, retention, alert evaluation, webhooks, /metrics); the
-- audit found each of them broken or unsafe. No extension is required:
-- gen_random_uuid() is built in since PostgreSQL 13.

CREATE SCHEMA IF NOT EXISTS monitoring;

-- =======================
-- METRICS
-- =======================

CREATE TABLE monitoring.performance_metrics (
    id UUID DEFAULT gen_random_uuid(),
    business_id UUID,
    metric_name VARCHAR(100) NOT NULL,
    metric_category VARCHAR(50) NOT NULL,
    metric_type VARCHAR(20) NOT NULL, -- counter, gauge, histogram, summary
    -- double precision, not NUMERIC(15,6): byte counters and sizes reach 10^9
    -- and overflowed the seed's type
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
    baseline_value DOUBLE PRECISION, -- as metric_value
    threshold_breached BOOLEAN DEFAULT FALSE,
    alert_generated BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    retention_policy VARCHAR(20) DEFAULT 'standard'
) PARTITION BY RANGE (collected_at);

-- The seed's materialized view, as a table Metron upserts into when an hour
-- is sealed (and again after backfill): no REFRESH recomputing 30 days, and
-- NULLS NOT DISTINCT makes the system-wide (NULL) tenant one row per key
-- instead of a new row on every upsert.
CREATE TABLE monitoring.hourly_metrics_summary (
    hour_bucket TIMESTAMPTZ NOT NULL,
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
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), -- new: when Metron last wrote the row
    CONSTRAINT hourly_metrics_summary_key
        UNIQUE NULLS NOT DISTINCT (hour_bucket, business_id, metric_category, metric_name)
);

-- New: the same per series, with the series' other tags as dimensions.
CREATE TABLE monitoring.series_hourly_summary (
    hour_bucket TIMESTAMPTZ NOT NULL,
    series TEXT NOT NULL, -- the series as line protocol: cpu,host=a usage_user
    business_id UUID,
    metric_category VARCHAR(50) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    dimensions JSONB NOT NULL DEFAULT '{}'::jsonb,
    sample_count BIGINT NOT NULL,
    avg_value DOUBLE PRECISION,
    min_value DOUBLE PRECISION,
    max_value DOUBLE PRECISION,
    median_value DOUBLE PRECISION,
    p95_value DOUBLE PRECISION,
    p99_value DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT series_hourly_summary_key PRIMARY KEY (hour_bucket, series)
);

CREATE TABLE monitoring.security_events (
    id UUID DEFAULT gen_random_uuid(),
    business_id UUID NOT NULL,
    event_type VARCHAR(50) NOT NULL,
    event_category VARCHAR(30) NOT NULL,
    severity VARCHAR(20) NOT NULL,
    event_source VARCHAR(50) NOT NULL,
    user_id UUID,
    session_id UUID,
    ip_address INET,
    user_agent TEXT,
    event_description TEXT NOT NULL,
    event_data JSONB DEFAULT '{}'::jsonb,
    affected_resources JSONB DEFAULT '[]'::jsonb,
    risk_score INTEGER CHECK (risk_score BETWEEN 0 AND 100),
    detection_method VARCHAR(50),
    is_blocked BOOLEAN DEFAULT FALSE,
    response_action VARCHAR(50),
    investigation_status VARCHAR(30) DEFAULT 'new',
    compliance_impact JSONB DEFAULT '{}'::jsonb,
    requires_notification BOOLEAN DEFAULT FALSE,
    notification_sent BOOLEAN DEFAULT FALSE,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    detected_at TIMESTAMPTZ DEFAULT NOW(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    -- the partition key must be in the primary key of a partitioned table: the
    -- seed's PRIMARY KEY (id) made the whole CREATE TABLE fail
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE monitoring.query_performance (
    id UUID DEFAULT gen_random_uuid(),
    business_id UUID,
    query_id BIGINT NOT NULL,
    query_hash TEXT NOT NULL,
    normalized_query TEXT,
    execution_count BIGINT NOT NULL,
    total_exec_time NUMERIC(15,6) NOT NULL,
    mean_exec_time NUMERIC(15,6) NOT NULL,
    min_exec_time NUMERIC(15,6),
    max_exec_time NUMERIC(15,6),
    stddev_exec_time NUMERIC(15,6),
    rows_processed BIGINT,
    shared_blks_hit BIGINT,
    shared_blks_read BIGINT,
    shared_blks_dirtied BIGINT,
    shared_blks_written BIGINT,
    local_blks_hit BIGINT,
    local_blks_read BIGINT,
    temp_blks_read BIGINT,
    temp_blks_written BIGINT,
    blk_read_time NUMERIC(15,6),
    blk_write_time NUMERIC(15,6),
    performance_category VARCHAR(20),
    optimization_suggestions JSONB DEFAULT '[]'::jsonb,
    is_problematic BOOLEAN DEFAULT FALSE,
    last_optimized TIMESTAMPTZ,
    collected_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (id, collected_at) -- new: rows can be named (the seed had no key)
) PARTITION BY RANGE (collected_at);

CREATE TABLE monitoring.business_metrics (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    business_id UUID NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    metric_category VARCHAR(50) NOT NULL,
    industry_vertical VARCHAR(20) NOT NULL,
    current_value NUMERIC(15,4) NOT NULL,
    previous_value NUMERIC(15,4),
    target_value NUMERIC(15,4),
    time_period VARCHAR(20) NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end TIMESTAMPTZ NOT NULL,
    trend_direction VARCHAR(10),
    percentage_change NUMERIC(8,4),
    is_kpi BOOLEAN DEFAULT FALSE,
    alert_threshold NUMERIC(15,4),
    calculation_method TEXT,
    data_sources JSONB DEFAULT '[]'::jsonb,
    dimensions JSONB DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE monitoring.system_health (
    id UUID DEFAULT gen_random_uuid(),
    business_id UUID,
    component_type VARCHAR(50) NOT NULL,
    component_name VARCHAR(100) NOT NULL,
    health_status VARCHAR(20) NOT NULL,
    health_score INTEGER CHECK (health_score BETWEEN 0 AND 100),
    cpu_usage_percent NUMERIC(5,2),
    memory_usage_percent NUMERIC(5,2),
    disk_usage_percent NUMERIC(5,2),
    connection_count INTEGER,
    active_connections INTEGER,
    idle_connections INTEGER,
    cache_hit_ratio NUMERIC(5,4),
    index_hit_ratio NUMERIC(5,4),
    locks_waiting INTEGER,
    deadlocks_count INTEGER,
    replication_lag_seconds NUMERIC(10,3),
    custom_metrics JSONB DEFAULT '{}'::jsonb,
    alerts_active INTEGER DEFAULT 0,
    last_alert_at TIMESTAMPTZ,
    collected_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    PRIMARY KEY (id, collected_at) -- as security_events: the seed's key failed
) PARTITION BY RANGE (collected_at);

-- =======================
-- ALERTS
-- =======================

CREATE TABLE monitoring.alert_rules (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    business_id UUID,
    rule_name VARCHAR(100) NOT NULL,
    rule_category VARCHAR(50) NOT NULL,
    severity VARCHAR(20) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    condition_type VARCHAR(20) NOT NULL
        CHECK (condition_type IN ('threshold', 'trend', 'anomaly', 'pattern')),
    condition_definition JSONB NOT NULL,
    evaluation_window INTERVAL NOT NULL DEFAULT '5 minutes',
    -- double precision as metric_value (a threshold on bytes overflowed)
    warning_threshold DOUBLE PRECISION,
    critical_threshold DOUBLE PRECISION,
    -- checked: the seed aborted the evaluation of every rule on one NULL or
    -- upper-case operator; NULL stays allowed for non-threshold rules
    comparison_operator VARCHAR(10) CHECK (comparison_operator IN ('gt', 'lt', 'eq', 'ne', 'gte', 'lte')),
    trend_period INTERVAL,
    anomaly_sensitivity NUMERIC(3,2),
    pattern_definition JSONB,
    notification_channels JSONB DEFAULT '[]'::jsonb,
    escalation_rules JSONB DEFAULT '{}'::jsonb,
    cooldown_period INTERVAL DEFAULT '15 minutes',
    is_active BOOLEAN DEFAULT TRUE,
    created_by UUID NOT NULL,
    business_hours_only BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    -- NULLS NOT DISTINCT: two system-wide rules could share a name in the seed
    CONSTRAINT alert_rules_name_unique UNIQUE NULLS NOT DISTINCT (business_id, rule_name)
);

CREATE TABLE monitoring.alerts (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY, -- Metron sets it: stable across re-mirroring
    business_id UUID,
    alert_rule_id UUID NOT NULL REFERENCES monitoring.alert_rules(id),
    alert_title VARCHAR(200) NOT NULL,
    alert_message TEXT NOT NULL,
    severity VARCHAR(20) NOT NULL,
    status VARCHAR(20) DEFAULT 'active'
        CHECK (status IN ('active', 'acknowledged', 'resolved', 'suppressed')),
    metric_name VARCHAR(100) NOT NULL,
    trigger_value DOUBLE PRECISION NOT NULL, -- as metric_value
    threshold_value DOUBLE PRECISION,
    affected_components JSONB DEFAULT '[]'::jsonb,
    related_metrics JSONB DEFAULT '[]'::jsonb,
    suggested_actions JSONB DEFAULT '[]'::jsonb,
    acknowledged_by UUID,
    acknowledged_at TIMESTAMPTZ,
    resolved_by UUID,
    resolved_at TIMESTAMPTZ,
    resolution_notes TEXT,
    notifications_sent JSONB DEFAULT '[]'::jsonb,
    last_notification_at TIMESTAMPTZ,
    notification_count INTEGER DEFAULT 0,
    triggered_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE monitoring.notification_channels (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    business_id UUID,
    channel_name VARCHAR(100) NOT NULL,
    channel_type VARCHAR(50) NOT NULL, -- email, sms, slack, webhook, pagerduty: all sent as webhooks
    configuration JSONB NOT NULL,
    is_active BOOLEAN DEFAULT TRUE,
    rate_limit_per_hour INTEGER DEFAULT 10,
    current_hour_count INTEGER DEFAULT 0,
    last_reset_at TIMESTAMPTZ DEFAULT NOW(),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE monitoring.webhook_endpoints (
    id UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    business_id UUID,
    endpoint_name VARCHAR(100) NOT NULL,
    webhook_url TEXT NOT NULL,
    secret_token TEXT,
    event_types JSONB DEFAULT '[]'::jsonb,
    is_active BOOLEAN DEFAULT TRUE,
    retry_attempts INTEGER DEFAULT 3,
    timeout_seconds INTEGER DEFAULT 30,
    total_calls INTEGER DEFAULT 0,
    successful_calls INTEGER DEFAULT 0,
    failed_calls INTEGER DEFAULT 0,
    last_success_at TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- =======================
-- INDEXES (plain: CONCURRENTLY fails on partitioned tables and inside a
-- transaction; no NOW() in predicates: they must be immutable, and the
-- partitions bound the scans anyway)
-- =======================

CREATE INDEX idx_performance_metrics_category_time
    ON monitoring.performance_metrics (metric_category, collected_at DESC, business_id);
CREATE INDEX idx_performance_metrics_business_metric_time
    ON monitoring.performance_metrics (business_id, metric_name, collected_at DESC)
    WHERE business_id IS NOT NULL;
CREATE INDEX idx_security_events_business_time
    ON monitoring.security_events (business_id, occurred_at DESC, severity);
CREATE INDEX idx_alerts_active_severity
    ON monitoring.alerts (status, severity, business_id)
    WHERE status = 'active';
CREATE INDEX idx_query_performance_time
    ON monitoring.query_performance (collected_at DESC, mean_exec_time DESC);
CREATE INDEX idx_system_health_time
    ON monitoring.system_health (collected_at DESC, component_type);
CREATE INDEX idx_hourly_metrics_summary_metric_time
    ON monitoring.hourly_metrics_summary (metric_category, metric_name, hour_bucket DESC);

-- =======================
-- DASHBOARD VIEWS (the seed's names and columns; security_invoker, so a
-- dashboard role's row-level security holds through them)
-- =======================

-- From the hourly rollups Metron mirrors (the most recent hour of each
-- metric within the last two) rather than from raw rows nobody writes any
-- more. health_status comes from the alerts of the metric: the seed's one
-- rule for every metric (avg < 50 healthy, < 80 warning) called a 99% cache
-- hit ratio "critical".
CREATE VIEW monitoring.system_dashboard WITH (security_invoker = true) AS
WITH current_metrics AS (
    SELECT DISTINCT ON (business_id, metric_category, metric_name)
        business_id, metric_category, metric_name, avg_value, max_value, min_value,
        sample_count, hour_bucket
    FROM monitoring.hourly_metrics_summary
    WHERE hour_bucket >= date_trunc('hour', NOW()) - INTERVAL '2 hours'
    ORDER BY business_id, metric_category, metric_name, hour_bucket DESC
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
    cm.hour_bucket + INTERVAL '1 hour' AS last_updated -- the end of the hour summarized
FROM current_metrics cm;

CREATE VIEW monitoring.alerts_dashboard WITH (security_invoker = true) AS
SELECT
    a.business_id,
    a.severity,
    COUNT(*) AS alert_count,
    MIN(a.triggered_at) AS oldest_alert,
    MAX(a.triggered_at) AS newest_alert,
    COUNT(*) FILTER (WHERE a.acknowledged_at IS NULL) AS unacknowledged_count,
    array_agg(DISTINCT a.metric_name) AS affected_metrics
FROM monitoring.alerts a
WHERE a.status = 'active'
GROUP BY a.business_id, a.severity;

CREATE VIEW monitoring.slow_queries_dashboard WITH (security_invoker = true) AS
SELECT
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
ORDER BY qp.mean_exec_time DESC
LIMIT 50;

CREATE VIEW monitoring.business_kpi_dashboard WITH (security_invoker = true) AS
SELECT
    bm.business_id,
    bm.industry_vertical,
    bm.metric_category,
    bm.metric_name,
    bm.current_value,
    bm.target_value,
    CASE
        WHEN bm.target_value > 0 THEN ROUND(((bm.current_value / bm.target_value) * 100), 2)
        ELSE NULL
    END AS achievement_percentage,
    bm.trend_direction,
    bm.percentage_change,
    bm.period_start,
    bm.period_end
FROM monitoring.business_metrics bm
WHERE bm.is_kpi = TRUE
  AND bm.period_end >= NOW() - INTERVAL '24 hours';

CREATE VIEW monitoring.security_dashboard WITH (security_invoker = true) AS
SELECT
    se.business_id,
    se.event_category,
    se.severity,
    COUNT(*) AS event_count,
    COUNT(*) FILTER (WHERE se.occurred_at >= NOW() - INTERVAL '1 hour') AS recent_events,
    MAX(se.risk_score) AS max_risk_score,
    COUNT(*) FILTER (WHERE se.is_blocked = TRUE) AS blocked_events,
    COUNT(*) FILTER (WHERE se.investigation_status = 'new') AS pending_investigation
FROM monitoring.security_events se
WHERE se.occurred_at >= NOW() - INTERVAL '24 hours'
GROUP BY se.business_id, se.event_category, se.severity
ORDER BY event_count DESC;

-- =======================
-- MAINTENANCE
-- =======================

-- Monthly partitions of every partitioned table of the schema, from
-- months_back before this month to months_ahead after it; returns how many
-- it created. metrond calls it daily and `metron schema install` once, so
-- inserts never meet a missing partition (the seed created some for one
-- table, once). Partitions are found through pg_inherits, never by
-- comparing names (the seed's cleanup dropped an unrelated table that way).
-- SECURITY INVOKER with a fixed search_path: the seed's SECURITY DEFINER
-- functions let any role become superuser.
CREATE FUNCTION monitoring.create_partitions(months_back INTEGER DEFAULT 1,
                                             months_ahead INTEGER DEFAULT 3)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent REGCLASS;
    month_start DATE;
    part_name TEXT;
    created INTEGER := 0;
BEGIN
    FOREACH parent IN ARRAY ARRAY['monitoring.performance_metrics'::regclass,
                                  'monitoring.security_events'::regclass,
                                  'monitoring.query_performance'::regclass,
                                  'monitoring.system_health'::regclass] LOOP
        FOR i IN -months_back .. months_ahead LOOP
            month_start := (date_trunc('month', now()) + make_interval(months => i))::date;
            part_name := (SELECT relname FROM pg_class WHERE oid = parent)
                         || '_' || to_char(month_start, 'YYYY_MM');
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = parent
                  AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES FROM (%L) TO (%L)',
                        month_start::timestamptz, (month_start + interval '1 month')::timestamptz));
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           part_name, parent, month_start::timestamptz,
                           (month_start + interval '1 month')::timestamptz);
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;

-- =======================
-- TENANT ISOLATION
-- =======================

-- A read-only role for dashboards (Grafana's data source logs in as a
-- member of it). With isolation on, it sees only the rows of the tenant in
-- its setting monitoring.business_id (ALTER ROLE grafana_acme SET
-- monitoring.business_id = '<uuid>'); system-wide rows (NULL business_id)
-- stay visible to every tenant. Metron's own role owns the tables and is
-- not subject to the policies.
-- Roles belong to the cluster: another database's install may create it at
-- the same moment, which shows as a unique violation, not a duplicate.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'monitoring_dashboard') THEN
        CREATE ROLE monitoring_dashboard NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

GRANT USAGE ON SCHEMA monitoring TO monitoring_dashboard;
-- the tables and views, not their partitions: a partition read directly
-- would pass by the parent's policies
DO $$
DECLARE
    r REGCLASS;
BEGIN
    FOR r IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'monitoring' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO monitoring_dashboard', r);
    END LOOP;
END;
$$;

CREATE FUNCTION monitoring.tenant_tables()
RETURNS SETOF REGCLASS
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'business_id' AND NOT a.attisdropped
    WHERE n.nspname = 'monitoring' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
$$;

DO $$
DECLARE
    t REGCLASS;
BEGIN
    FOR t IN SELECT * FROM monitoring.tenant_tables() LOOP
        EXECUTE format('CREATE POLICY tenant_isolation ON %s FOR SELECT TO monitoring_dashboard '
                       'USING (business_id IS NULL OR business_id = '
                       'NULLIF(current_setting(''monitoring.business_id'', true), '''')::uuid)', t);
    END LOOP;
END;
$$;

-- The setting that turns isolation on or off (off after install):
--   SELECT monitoring.set_tenant_isolation(true);
CREATE FUNCTION monitoring.set_tenant_isolation(enabled BOOLEAN)
RETURNS VOID
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t REGCLASS;
BEGIN
    FOR t IN SELECT * FROM monitoring.tenant_tables() LOOP
        EXECUTE format('ALTER TABLE %s %s ROW LEVEL SECURITY', t,
                       CASE WHEN enabled THEN 'ENABLE' ELSE 'DISABLE' END);
    END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION monitoring.create_partitions(INTEGER, INTEGER) FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring.set_tenant_isolation(BOOLEAN) FROM PUBLIC;
REVOKE ALL ON FUNCTION monitoring.tenant_tables() FROM PUBLIC;
