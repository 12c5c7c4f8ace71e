-- Version 7: optional raw rows, one per point, into the seed's
-- monitoring.performance_metrics for a recent window (metrond's
-- postgres_raw_rows, off by default; sql/mt_minute.h), for tools that read
-- that table directly.
--
-- The table is partitioned by month (version 1). A window of an hour cannot
-- be kept by dropping months, so the months the window passes through are
-- partitioned again, by hour: such a month's partition becomes a
-- partitioned table with the same bounds (monitoring.create_partitions
-- finds it and leaves it alone), an hour partition per hour of the window,
-- and a DEFAULT partition for rows of other writers outside the window. Hour
-- partitions are dropped whole once they end before the window, never
-- emptied by DELETE. A month's plain partition is replaced only while it is
-- empty; one that holds rows is left alone and named in the error.
--
-- Metron's rows carry source_schema = 'metron': a re-send of a minute
-- deletes exactly those of the minute and copies them again, in the
-- transaction that upserts the minute's summaries (exactly once).
--
-- Tenant isolation: performance_metrics is a tenant table since version 4
-- (its policies apply to every partition read through it); each partition
-- made here is protected like the others (monitoring.protect_partition).
--
-- Idempotent, as version 4: every statement can run again.

-- Hour partitions of performance_metrics for [now() - keep - 10 min, now() +
-- ahead), created when missing (with an index on collected_at, which the
-- per-minute DELETE of a re-send uses); those that end before now() - keep
-- - 10 min dropped (the 10 minutes: a client's clock a little behind the
-- server's never sends into a dropped hour). Found through pg_inherits and
-- their bounds, never by name. metrond calls it at connect and every 10
-- minutes when raw rows are on.
CREATE OR REPLACE FUNCTION monitoring.raw_partitions(keep INTERVAL, ahead INTERVAL,
                                                     OUT created INTEGER, OUT dropped INTEGER)
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent REGCLASS := 'monitoring.performance_metrics'::regclass;
    horizon TIMESTAMPTZ := now() - keep - interval '10 minutes';
    part REGCLASS;
    kind "char";
    has_rows BOOLEAN;
    lo TIMESTAMPTZ;
    hi TIMESTAMPTZ;
    h TIMESTAMPTZ;
    month_name TEXT;
    hour_name TEXT;
BEGIN
    created := 0;
    dropped := 0;
    FOR part, hi IN
        SELECT i.inhrelid::regclass,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN (SELECT m.inhrelid FROM pg_inherits m WHERE m.inhparent = parent) LOOP
        CONTINUE WHEN hi IS NULL OR hi > horizon; -- the DEFAULT partition has no bounds
        EXECUTE format('DROP TABLE %s', part);
        dropped := dropped + 1;
    END LOOP;
    h := date_trunc('hour', horizon);
    WHILE h < now() + ahead LOOP
        -- the month's partition, found by its bounds
        part := NULL;
        SELECT i.inhrelid::regclass, c.relkind, b.lo, b.hi INTO part, kind, lo, hi
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
             LATERAL (SELECT substring(pg_get_expr(c.relpartbound, c.oid)
                                       FROM 'FROM \(''([^'']+)''\)')::timestamptz AS lo,
                             substring(pg_get_expr(c.relpartbound, c.oid)
                                       FROM 'TO \(''([^'']+)''\)')::timestamptz AS hi) b
        WHERE i.inhparent = parent AND b.lo <= h AND b.hi > h;
        IF part IS NULL OR kind = 'r' THEN
            IF part IS NULL THEN -- no month yet: create_partitions' bounds and name
                lo := date_trunc('month', h)::date::timestamptz;
                hi := (date_trunc('month', h) + interval '1 month')::date::timestamptz;
            ELSE
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', part) INTO STRICT has_rows;
                IF has_rows THEN
                    RAISE EXCEPTION 'raw rows: partition % of monitoring.performance_metrics holds '
                                    'rows and covers the raw window; it is replaced by hour '
                                    'partitions only while empty', part
                        USING HINT = 'move its rows elsewhere (or drop it), or set '
                                     'postgres_raw_rows = false';
                END IF;
                EXECUTE format('DROP TABLE %s', part);
            END IF;
            month_name := 'performance_metrics_' || to_char(lo, 'YYYY_MM');
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)'
                           ' PARTITION BY RANGE (collected_at)', month_name, parent, lo, hi);
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF monitoring.%I DEFAULT',
                           month_name || '_default', month_name);
            PERFORM monitoring.protect_partition(format('monitoring.%I', month_name)::regclass);
            PERFORM monitoring.protect_partition(
                format('monitoring.%I', month_name || '_default')::regclass);
            part := format('monitoring.%I', month_name)::regclass;
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = part
              AND substring(pg_get_expr(c.relpartbound, c.oid)
                            FROM 'FROM \(''([^'']+)''\)')::timestamptz = h) THEN
            hour_name := 'performance_metrics_' || to_char(h AT TIME ZONE 'UTC', 'YYYY_MM_DD_HH24');
            EXECUTE format('CREATE TABLE monitoring.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           hour_name, part, h, h + interval '1 hour');
            EXECUTE format('CREATE INDEX ON monitoring.%I (collected_at)', hour_name);
            PERFORM monitoring.protect_partition(format('monitoring.%I', hour_name)::regclass);
            created := created + 1;
        END IF;
        h := h + interval '1 hour';
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.raw_partitions(INTERVAL, INTERVAL) FROM PUBLIC;
