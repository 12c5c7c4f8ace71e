-- Version 4: tenant isolation keyed on the role, always on; secrets out of
-- the dashboard role's reach.
--
-- Version 1 chose the tenant from the setting monitoring.business_id, and
-- isolation was off after install: any dashboard login, or any panel's SQL,
-- could SET that setting (or call set_config) and read another tenant.
-- From here on the tenant comes from who the reader is: a map from roles to
-- tenants that only Metron's role (the owner of the tables) can read or
-- write, filled by `metron schema tenant add ROLE BUSINESS_ID`
-- (docs/postgres.md, "Tenant isolation").
--
-- Idempotent: every statement can run again on a database that has it (an
-- upgrade interrupted by hand, the upgrade test).

-- The one place that says which tenant a reader role sees. role_name is a
-- role's name as current_user reports it; a role not here sees nothing.
CREATE TABLE IF NOT EXISTS monitoring.tenant_readers (
    role_name NAME PRIMARY KEY,
    business_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- no reader, no tenant may read the map: tenants could learn each other's
-- role names and business ids from it
REVOKE ALL ON monitoring.tenant_readers FROM PUBLIC, monitoring_dashboard;

-- The tables that hold tenant rows: the map itself holds a business_id but is
-- no tenant table (its readers are policies, through reader_tenant below).
CREATE OR REPLACE FUNCTION monitoring.tenant_tables()
RETURNS SETOF REGCLASS
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'business_id' AND NOT a.attisdropped
    WHERE n.nspname = 'monitoring' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname <> 'tenant_readers'
$$;
REVOKE ALL ON FUNCTION monitoring.tenant_tables() FROM PUBLIC;

-- The tenant of role `reader`, when the session's user may act as it, else
-- NULL. Policies call it as reader_tenant(current_user).
--
-- Keyed on current_user, not session_user: a role's tenant then follows
-- PostgreSQL's own rule for privileges (what a role may do, the roles that
-- may SET ROLE to it may do too), an administrator sees what a reader sees
-- with SET ROLE, and SET ROLE to any role a reader belongs to
-- (monitoring_dashboard, or none mapped) only narrows what it sees.
--
-- SECURITY DEFINER, because readers may not read the map; inside it
-- current_user is the function's owner, so the role comes in as an argument.
-- A reader calling it directly with another role's name would learn that
-- role's tenant: it answers only for roles the session's user is a member
-- of, which are the roles it could SET ROLE to and read as anyway.
CREATE OR REPLACE FUNCTION monitoring.reader_tenant(reader NAME)
RETURNS UUID
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.business_id FROM monitoring.tenant_readers r
    WHERE r.role_name = reader AND pg_has_role(session_user, reader, 'MEMBER')
$$;
-- every role that reads a tenant table runs it through the policies
REVOKE ALL ON FUNCTION monitoring.reader_tenant(NAME) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.reader_tenant(NAME) TO PUBLIC;

-- Whether the current role has the privileges of the owner of table t.
-- Such a role may ALTER the table (turn its row-level security off) anyway,
-- so it loses nothing to the policies. Follows an ALTER ... OWNER TO: no
-- role name is written into a policy.
CREATE OR REPLACE FUNCTION monitoring.owner_access(t REGCLASS)
RETURNS BOOLEAN
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT pg_has_role(current_user, c.relowner, 'USAGE')
                     FROM pg_class c WHERE c.oid = t), false)
$$;
REVOKE ALL ON FUNCTION monitoring.owner_access(REGCLASS) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.owner_access(REGCLASS) TO PUBLIC;

-- Every tenant table: row-level security enabled and FORCEd (its owner,
-- Metron's role, goes through the policies too, so no role is exempt but
-- superusers and BYPASSRLS roles), the policy keyed on the setting dropped,
-- and two policies:
--   tenant_reader  SELECT: the reader's tenant's rows and the system-wide
--                  (NULL business_id) ones, and nothing at all for a role
--                  with no tenant (default deny: the system-wide rows, such
--                  as the server's query texts, are for tenants, not for any
--                  login that was granted monitoring_dashboard).
--   metron_owner   everything, for the owner of the table.
-- The sub-selects run once per query (an InitPlan), not once per row.
DO $$
DECLARE
    t REGCLASS;
BEGIN
    FOR t IN SELECT * FROM monitoring.tenant_tables() LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_reader ON %s', t);
        EXECUTE format('DROP POLICY IF EXISTS metron_owner ON %s', t);
        EXECUTE format('CREATE POLICY tenant_reader ON %s FOR SELECT TO PUBLIC USING ('
                       'business_id = (SELECT monitoring.reader_tenant(current_user)) OR '
                       '(business_id IS NULL AND '
                       '(SELECT monitoring.reader_tenant(current_user)) IS NOT NULL))', t);
        EXECUTE format('CREATE POLICY metron_owner ON %s FOR ALL TO PUBLIC '
                       'USING ((SELECT monitoring.owner_access(%L))) '
                       'WITH CHECK ((SELECT monitoring.owner_access(%L)))', t, t, t);
    END LOOP;
END;
$$;

-- The off switch of version 1 is gone: isolation is always on. The function
-- stays so that scripts which turn it on keep working; turning it off fails.
CREATE OR REPLACE FUNCTION monitoring.set_tenant_isolation(enabled BOOLEAN)
RETURNS VOID
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT enabled THEN
        RAISE EXCEPTION 'tenant isolation is always on since schema version 4'
            USING HINT = 'a role sees the tenant that `metron schema tenant add` gave it';
    END IF;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.set_tenant_isolation(BOOLEAN) FROM PUBLIC;

-- A partition read directly passes by its parent's policies. So a partition
-- keeps no privilege but its owner's (default privileges of the schema may
-- have granted some), and row-level security without a policy answers no
-- rows to any other role that gets a grant later. Reads and writes through
-- the parent do not look at a partition's own security.
CREATE OR REPLACE FUNCTION monitoring.protect_partition(part REGCLASS)
RETURNS VOID
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee OID;
BEGIN
    FOR grantee IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                   WHERE c.oid = part AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', part,
                       CASE WHEN grantee = 0 THEN 'PUBLIC'
                            ELSE quote_ident(pg_get_userbyid(grantee)) END);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
END;
$$;
REVOKE ALL ON FUNCTION monitoring.protect_partition(REGCLASS) FROM PUBLIC;

-- Version 1's create_partitions, protecting each partition it creates.
CREATE OR REPLACE FUNCTION monitoring.create_partitions(months_back INTEGER DEFAULT 1,
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
            PERFORM monitoring.protect_partition(format('monitoring.%I', part_name)::regclass);
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END;
$$;
REVOKE ALL ON FUNCTION monitoring.create_partitions(INTEGER, INTEGER) FROM PUBLIC;

-- the partitions that exist already
DO $$
DECLARE
    p REGCLASS;
BEGIN
    FOR p IN SELECT i.inhrelid::regclass FROM pg_inherits i
             WHERE i.inhparent IN (SELECT * FROM monitoring.tenant_tables()) LOOP
        PERFORM monitoring.protect_partition(p);
    END LOOP;
END;
$$;

-- Secrets: the dashboard role reads every column of webhook_endpoints but
-- the secret and the URL (Slack-, Teams- and PagerDuty-style URLs carry a
-- token), and every column of notification_channels but configuration
-- (the URL and secret of each channel). Metron's role, the owner, reads
-- them all. A column added later is not granted: it starts hidden.
REVOKE ALL ON monitoring.webhook_endpoints FROM PUBLIC, monitoring_dashboard;
GRANT SELECT (id, business_id, endpoint_name, event_types, is_active, retry_attempts,
              timeout_seconds, total_calls, successful_calls, failed_calls, last_success_at,
              last_failure_at, created_at, updated_at)
    ON monitoring.webhook_endpoints TO monitoring_dashboard;
REVOKE ALL ON monitoring.notification_channels FROM PUBLIC, monitoring_dashboard;
GRANT SELECT (id, business_id, channel_name, channel_type, is_active, rate_limit_per_hour,
              current_hour_count, last_reset_at, created_at, updated_at)
    ON monitoring.notification_channels TO monitoring_dashboard;
