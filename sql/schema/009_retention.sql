-- Version 10: PostgreSQL kept in bounds, and partitions in UTC whatever the
-- session's time zone.
--
-- Time zones. Versions 1 to 7 computed month and hour bounds in the
-- session's time zone (date_trunc, ::date::timestamptz) and compared them
-- as text: a session in America/New_York looked for a month starting at
-- 04:00 UTC, did not find the one a UTC session made, and failed with
-- "relation performance_metrics_2026_11 already exists"; the install at
-- connect then failed and the mirror stopped. Every function here that
-- makes or drops partitions runs with TimeZone UTC and DateStyle ISO (SET
-- clauses of the function: the session's own settings come back at its
-- end), reads bounds as timestamps (monitoring.partition_bounds), never as
-- text, and creates only what no partition covers yet
-- (monitoring.cover_range), so partitions made earlier by a session in
-- another time zone are kept and the gaps beside them filled.
--
-- Retention. Whole partitions are dropped once they end at or before
-- now() - keep (monitoring.drop_partitions_before: the mechanism the minute
-- tables used since version 5, now shared), never emptied by DELETE; a
-- partition that may still hold a row inside the window is never dropped.
-- The hourly summaries become partitioned by month so that they can be
-- kept the same way: the table as it was is attached whole as the first
-- partition (no row copied), up to the end of the month, and dropped whole
-- once that month leaves the window. monitoring.alerts is not partitioned:
-- its resolved alerts are deleted, the others never. metrond applies the
-- [retention] section's postgres.* keys every postgres_retention_interval
-- through monitoring.retain (docs/operations.md).
--
-- Idempotent, as version 4: every statement can run again.

-- The bounds of partition part as timestamps: [lo, hi). MINVALUE is
-- -infinity, MAXVALUE infinity; a DEFAULT partition has none (NULL, NULL).
CREATE OR REPLACE FUNCTION monitoring.partition_bounds(part REGCLASS, OUT lo TIMESTAMPTZ,
                                                       OUT hi TIMESTAMPTZ)
LANGUAGE plpgsql STABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    expr TEXT := (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = part);
    m TEXT[];
BEGIN
    m := regexp_match(expr, '^FOR VALUES FROM \((MINVALUE|''[^'']+'')\) TO \((MAXVALUE|''[^'']+'')\)$');
    IF m IS NULL THEN
        RETURN; -- DEFAULT, or not a range partition of one column
    END IF;
    lo := CASE WHEN m[1] = 'MINVALUE' THEN '-infinity' ELSE btrim(m[1], '''') END::timestamptz;
    hi := CASE WHEN m[2] = 'MAXVALUE' THEN 'infinity' ELSE btrim(m[2], '''') END::timestamptz;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.partition_bounds(REGCLASS) FROM PUBLIC;

-- Partitions of parent for every part of [from_ts, to_ts) that no partition of it
-- covers yet, each protected like every tenant partition; the first is
-- named name (when that name is free), the others name_from_<start>.
-- index_column, when given, gets an index on each partition made. Returns
-- how many were made. Nothing is made when [from_ts, to_ts) is covered.
CREATE OR REPLACE FUNCTION monitoring.cover_range(parent REGCLASS, from_ts TIMESTAMPTZ, to_ts TIMESTAMPTZ,
                                                  name TEXT, index_column TEXT DEFAULT NULL)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    cursor_at TIMESTAMPTZ := from_ts;
    plo TIMESTAMPTZ;
    phi TIMESTAMPTZ;
    gap_hi TIMESTAMPTZ;
    part_name TEXT;
    made INTEGER := 0;
BEGIN
    LOOP
        EXIT WHEN cursor_at >= to_ts;
        -- the partition holding cursor_at, if any: skip past it
        SELECT b.hi INTO phi
        FROM pg_inherits i, LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
        WHERE i.inhparent = parent AND b.lo <= cursor_at AND b.hi > cursor_at;
        IF FOUND THEN
            cursor_at := phi;
            CONTINUE;
        END IF;
        -- a gap: up to the next partition, or to_ts
        SELECT min(b.lo) INTO plo
        FROM pg_inherits i, LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
        WHERE i.inhparent = parent AND b.lo > cursor_at AND b.lo < to_ts;
        gap_hi := coalesce(plo, to_ts);
        part_name := CASE WHEN made = 0 AND to_regclass(format('monitoring.%I', name)) IS NULL
                          THEN name
                          ELSE name || '_from_' || to_char(cursor_at, 'YYYYMMDD_HH24MISS') END;
        EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                       part_name, parent, cursor_at, gap_hi);
        IF index_column IS NOT NULL THEN
            EXECUTE format('CREATE INDEX ON monitoring.%I (%I)', part_name, index_column);
        END IF;
        PERFORM monitoring.protect_partition(format('monitoring.%I', part_name)::regclass);
        made := made + 1;
        cursor_at := gap_hi;
    END LOOP;
    RETURN made;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.cover_range(REGCLASS, TIMESTAMPTZ, TIMESTAMPTZ, TEXT, TEXT)
    FROM PUBLIC;

-- Drop every partition of parent that ends at or before horizon, whole:
-- each of its rows is older than the horizon. A DEFAULT partition, or one
-- that ends at MAXVALUE, is never dropped. Found through pg_inherits and
-- their bounds, never by name. Returns how many were dropped.
CREATE OR REPLACE FUNCTION monitoring.drop_partitions_before(parent REGCLASS, horizon TIMESTAMPTZ)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    part REGCLASS;
    dropped INTEGER := 0;
BEGIN
    FOR part IN
        SELECT i.inhrelid::regclass
        FROM pg_inherits i, LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
        WHERE i.inhparent = parent AND b.hi IS NOT NULL AND b.hi <= horizon
        ORDER BY b.hi LOOP
        EXECUTE format('DROP TABLE %s', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.drop_partitions_before(REGCLASS, TIMESTAMPTZ) FROM PUBLIC;

-- The hourly summaries, partitioned by month (hour_bucket). The table as it
-- was becomes the first partition, from MINVALUE to the end of this month
-- (UTC) or of its last row's month: attached, not copied, so an upgrade
-- costs a scan, not a rewrite. Its indexes are attached as the parent's. An
-- empty one is simply replaced.
DO $$
DECLARE
    t TEXT;
    idx TEXT;
    legacy TEXT;
    upper_bound TIMESTAMPTZ;
    has_rows BOOLEAN;
    n INTEGER := 0;
BEGIN
    FOREACH t IN ARRAY ARRAY['hourly_metrics_summary', 'series_hourly_summary'] LOOP
        CONTINUE WHEN (SELECT c.relkind FROM pg_class c
                       WHERE c.oid = format('monitoring.%I', t)::regclass) = 'p';
        legacy := t || '_until_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM');
        EXECUTE format('ALTER TABLE monitoring.%I RENAME TO %I', t, legacy);
        -- the index names are the parent's from here on
        FOR idx IN SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                   WHERE i.indrelid = format('monitoring.%I', legacy)::regclass LOOP
            n := n + 1;
            EXECUTE format('ALTER INDEX monitoring.%I RENAME TO %I', idx, legacy || '_idx' || n);
        END LOOP;
        EXECUTE format('CREATE TABLE monitoring.%I (LIKE monitoring.%I INCLUDING DEFAULTS) '
                       'PARTITION BY RANGE (hour_bucket)', t, legacy);
        IF t = 'hourly_metrics_summary' THEN
            ALTER TABLE monitoring.hourly_metrics_summary ADD CONSTRAINT hourly_metrics_summary_key
                UNIQUE NULLS NOT DISTINCT (hour_bucket, business_id, metric_category, metric_name);
            CREATE INDEX idx_hourly_metrics_summary_metric_time
                ON monitoring.hourly_metrics_summary (metric_category, metric_name, hour_bucket DESC);
        ELSE
            ALTER TABLE monitoring.series_hourly_summary
                ADD CONSTRAINT series_hourly_summary_key PRIMARY KEY (hour_bucket, series);
            CREATE INDEX idx_series_hourly_summary_tenant_metric_time
                ON monitoring.series_hourly_summary (business_id, metric_category, metric_name,
                                                     hour_bucket DESC);
        END IF;
        -- the end of the UTC month of now, or of the last row when later
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM monitoring.%I), '
                       '(date_trunc(''month'', greatest(now(), max(hour_bucket)) AT TIME ZONE ''UTC'')'
                       ' + interval ''1 month'') AT TIME ZONE ''UTC'' FROM monitoring.%I',
                       legacy, legacy)
            INTO has_rows, upper_bound;
        IF has_rows THEN
            EXECUTE format('ALTER TABLE monitoring.%I ATTACH PARTITION monitoring.%I '
                           'FOR VALUES FROM (MINVALUE) TO (%L)', t, legacy, upper_bound);
            -- a partition like the others: its own policies (it was a tenant table) go,
            -- reads through the parent use the parent's
            EXECUTE format('DROP POLICY IF EXISTS tenant_reader ON monitoring.%I', legacy);
            EXECUTE format('DROP POLICY IF EXISTS metron_owner ON monitoring.%I', legacy);
            EXECUTE format('ALTER TABLE monitoring.%I NO FORCE ROW LEVEL SECURITY', legacy);
            PERFORM monitoring.protect_partition(format('monitoring.%I', legacy)::regclass);
        ELSE
            EXECUTE format('DROP TABLE monitoring.%I', legacy);
        END IF;
        -- tenant isolation as version 4 set it on every tenant table
        EXECUTE format('ALTER TABLE monitoring.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE monitoring.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_reader ON monitoring.%I FOR SELECT TO PUBLIC USING ('
                       'business_id = (SELECT monitoring.reader_tenant(current_user)) OR '
                       '(business_id IS NULL AND '
                       '(SELECT monitoring.reader_tenant(current_user)) IS NOT NULL))', t);
        EXECUTE format('CREATE POLICY metron_owner ON monitoring.%I FOR ALL TO PUBLIC '
                       'USING ((SELECT monitoring.owner_access(%L))) '
                       'WITH CHECK ((SELECT monitoring.owner_access(%L)))', t,
                       format('monitoring.%I', t), format('monitoring.%I', t));
        EXECUTE format('REVOKE ALL ON monitoring.%I FROM PUBLIC', t);
        EXECUTE format('GRANT SELECT ON monitoring.%I TO monitoring_dashboard', t);
    END LOOP;
END;
$$;

-- Version 4's create_partitions in UTC: monthly partitions of every
-- partitioned table of version 1 and of the hourly summaries, from
-- months_back before this month (UTC) to months_ahead after it, named
-- <table>_YYYY_MM and bounded by UTC months; what a partition made in
-- another time zone covers already is left as it is (cover_range).
-- Returns how many it created.
CREATE OR REPLACE FUNCTION monitoring.create_partitions(months_back INTEGER DEFAULT 1,
                                                        months_ahead INTEGER DEFAULT 3)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    parent REGCLASS;
    month_start TIMESTAMPTZ;
    created INTEGER := 0;
BEGIN
    FOREACH parent IN ARRAY ARRAY['monitoring.performance_metrics'::regclass,
                                  'monitoring.security_events'::regclass,
                                  'monitoring.query_performance'::regclass,
                                  'monitoring.system_health'::regclass,
                                  'monitoring.hourly_metrics_summary'::regclass,
                                  'monitoring.series_hourly_summary'::regclass] LOOP
        FOR i IN -months_back .. months_ahead LOOP
            month_start := date_trunc('month', now()) + make_interval(months => i);
            created := created + monitoring.cover_range(parent, month_start,
                month_start + interval '1 month',
                (SELECT relname FROM pg_class WHERE oid = parent) || '_'
                    || to_char(month_start, 'YYYY_MM'));
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.create_partitions(INTEGER, INTEGER) FROM PUBLIC;

-- The month partition of the hourly summaries that holds hour h (UTC),
-- made when missing: the sink calls it for each hour it sends, so a
-- backfilled hour older than the months create_partitions keeps has its
-- partition too. Returns how many partitions it made.
CREATE OR REPLACE FUNCTION monitoring.summary_partitions(h TIMESTAMPTZ)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    parent REGCLASS;
    month_start TIMESTAMPTZ := date_trunc('month', h);
    created INTEGER := 0;
BEGIN
    FOREACH parent IN ARRAY ARRAY['monitoring.hourly_metrics_summary'::regclass,
                                  'monitoring.series_hourly_summary'::regclass] LOOP
        created := created + monitoring.cover_range(parent, month_start,
            month_start + interval '1 month',
            (SELECT relname FROM pg_class WHERE oid = parent) || '_'
                || to_char(month_start, 'YYYY_MM'));
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.summary_partitions(TIMESTAMPTZ) FROM PUBLIC;

-- Version 6's minute_partitions on the shared mechanism: day partitions
-- (UTC) of the three minute tables from the day of now() - keep to
-- days_ahead days after today; those that end at or before now() - keep
-- dropped whole.
CREATE OR REPLACE FUNCTION monitoring.minute_partitions(keep INTERVAL, days_ahead INTEGER DEFAULT 1,
                                             OUT created INTEGER, OUT dropped INTEGER)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    parent REGCLASS;
    day_start TIMESTAMPTZ;
    horizon TIMESTAMPTZ := now() - keep;
BEGIN
    created := 0;
    dropped := 0;
    FOREACH parent IN ARRAY ARRAY['monitoring.metrics_minute'::regclass,
                                  'monitoring.series_minute'::regclass,
                                  'monitoring.metrics_minute_all'::regclass] LOOP
        dropped := dropped + monitoring.drop_partitions_before(parent, horizon);
        day_start := date_trunc('day', horizon);
        WHILE day_start < date_trunc('day', now()) + make_interval(days => days_ahead + 1) LOOP
            created := created + monitoring.cover_range(parent, day_start,
                day_start + interval '1 day',
                (SELECT relname FROM pg_class WHERE oid = parent) || '_'
                    || to_char(day_start, 'YYYY_MM_DD'));
            day_start := day_start + interval '1 day';
        END LOOP;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.minute_partitions(INTERVAL, INTEGER) FROM PUBLIC;

-- Version 7's raw_partitions in UTC, on the shared mechanism: hour
-- partitions of performance_metrics for [now() - keep - 10 min, now() +
-- ahead) inside the months they fall in (a month made a partitioned
-- partition while empty, as version 7 did), each with its index on
-- collected_at; hour partitions that end before the window dropped whole.
-- A month a session in another time zone made keeps its bounds: the hours
-- are cut at its edges.
CREATE OR REPLACE FUNCTION monitoring.raw_partitions(keep INTERVAL, ahead INTERVAL,
                                                     OUT created INTEGER, OUT dropped INTEGER)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
DECLARE
    parent REGCLASS := 'monitoring.performance_metrics'::regclass;
    horizon TIMESTAMPTZ := now() - keep - interval '10 minutes';
    part REGCLASS;
    kind "char";
    has_rows BOOLEAN;
    m_lo TIMESTAMPTZ;
    m_hi TIMESTAMPTZ;
    h TIMESTAMPTZ;
    step_hi TIMESTAMPTZ;
    month_name TEXT;
BEGIN
    created := 0;
    dropped := 0;
    FOR part IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = parent AND c.relkind = 'p' LOOP
        dropped := dropped + monitoring.drop_partitions_before(part, horizon);
    END LOOP;
    h := date_trunc('hour', horizon);
    WHILE h < now() + ahead LOOP
        -- the month's partition, found by its bounds
        part := NULL;
        SELECT i.inhrelid::regclass, c.relkind, b.lo, b.hi INTO part, kind, m_lo, m_hi
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
             LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
        WHERE i.inhparent = parent AND b.lo <= h AND b.hi > h;
        IF part IS NULL OR kind = 'r' THEN
            IF part IS NULL THEN -- no month yet: the UTC month, cut where neighbours begin
                m_lo := greatest(date_trunc('month', h),
                               (SELECT max(b.hi) FROM pg_inherits i,
                                       LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
                                WHERE i.inhparent = parent AND b.hi <= h));
                m_hi := least(date_trunc('month', h) + interval '1 month',
                            (SELECT min(b.lo) FROM pg_inherits i,
                                    LATERAL monitoring.partition_bounds(i.inhrelid::regclass) b
                             WHERE i.inhparent = parent AND b.lo > h));
                month_name := 'performance_metrics_' || to_char(m_lo, 'YYYY_MM');
                IF to_regclass(format('monitoring.%I', month_name)) IS NOT NULL THEN
                    month_name := month_name || '_from_' || to_char(m_lo, 'YYYYMMDD_HH24MISS');
                END IF;
            ELSE
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', part) INTO STRICT has_rows;
                IF has_rows THEN
                    RAISE EXCEPTION 'raw rows: partition % of monitoring.performance_metrics holds '
                                    'rows and covers the raw window; it is replaced by hour '
                                    'partitions only while empty', part
                        USING HINT = 'move its rows elsewhere (or drop it), or set '
                                     'postgres_raw_rows = false';
                END IF;
                month_name := (SELECT relname FROM pg_class WHERE oid = part);
                EXECUTE format('DROP TABLE %s', part);
            END IF;
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)'
                           ' PARTITION BY RANGE (collected_at)', month_name, parent, m_lo, m_hi);
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF monitoring.%I DEFAULT',
                           month_name || '_default', month_name);
            PERFORM monitoring.protect_partition(format('monitoring.%I', month_name)::regclass);
            PERFORM monitoring.protect_partition(
                format('monitoring.%I', month_name || '_default')::regclass);
            part := format('monitoring.%I', month_name)::regclass;
        END IF;
        step_hi := least(date_trunc('hour', h) + interval '1 hour', m_hi);
        created := created + monitoring.cover_range(part, h, step_hi,
            'performance_metrics_' || to_char(h, 'YYYY_MM_DD_HH24'), 'collected_at');
        h := step_hi;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.raw_partitions(INTERVAL, INTERVAL) FROM PUBLIC;

-- One table's retention: the partitions of a partitioned table that end at
-- or before now() - keep dropped whole; for monitoring.alerts (not
-- partitioned), the resolved alerts resolved before now() - keep deleted
-- (active, acknowledged and suppressed ones are kept whatever their age).
-- Returns the partitions dropped, or the alerts deleted. A table that is
-- neither is refused, by name. lock_timeout: a DROP waits at most 10 s for a
-- long dashboard query (and queries queue behind a waiting DROP), then this
-- run gives up on the table, changing nothing; the next run tries again.
CREATE OR REPLACE FUNCTION monitoring.retain(tbl REGCLASS, keep INTERVAL)
RETURNS INTEGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET lock_timeout = '10s'
AS $$
DECLARE
    n INTEGER;
BEGIN
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'retention of %: keep must be positive, not %', tbl, keep;
    END IF;
    IF tbl = 'monitoring.alerts'::regclass THEN
        DELETE FROM monitoring.alerts
        WHERE status = 'resolved' AND coalesce(resolved_at, updated_at) < now() - keep;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN n;
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) <> 'p' THEN
        RAISE EXCEPTION 'retention of %: not a partitioned table (only whole partitions are '
                        'dropped; monitoring.alerts is the one table pruned by DELETE)', tbl;
    END IF;
    RETURN monitoring.drop_partitions_before(tbl, now() - keep);
END;
$$;
REVOKE ALL ON FUNCTION monitoring.retain(REGCLASS, INTERVAL) FROM PUBLIC;
