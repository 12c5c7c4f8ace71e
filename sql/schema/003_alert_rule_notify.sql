-- Version 3: metrond follows monitoring.alert_rules without a restart. A
-- change to a rule notifies channel metron_alert_rules (metrond LISTENs,
-- and polls every minute as a safety net); a change of an alert's status
-- (a person acknowledging it) notifies metron_alerts.
CREATE FUNCTION monitoring.notify_metron()
RETURNS TRIGGER
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER alert_rules_notify_metron
    AFTER INSERT OR UPDATE OR DELETE ON monitoring.alert_rules
    FOR EACH ROW EXECUTE FUNCTION monitoring.notify_metron('metron_alert_rules');

CREATE TRIGGER alerts_status_notify_metron
    AFTER UPDATE OF status ON monitoring.alerts
    FOR EACH ROW EXECUTE FUNCTION monitoring.notify_metron('metron_alerts');

REVOKE ALL ON FUNCTION monitoring.notify_metron() FROM PUBLIC;
