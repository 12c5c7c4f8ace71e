#!/usr/bin/env python3
"""test_grafana.py — every SQL of the Grafana dashboard (sql/grafana) run on
the test PostgreSQL (METRON_TEST_PG) against the installed schema and sample
rows, with Grafana's PostgreSQL macros and the dashboard's variables
expanded the way Grafana expands them; each query must answer rows of the
shape Grafana needs: a "time" column first, then values.

    test_grafana.py METRON_BINARY DASHBOARD_JSON
"""
import datetime
import json
import os
import re
import subprocess
import sys

METRON, DASHBOARD = sys.argv[1], sys.argv[2]
BASE = os.environ.get("METRON_TEST_PG")
if not BASE:
    sys.exit("METRON_TEST_PG is not set: run through tools/test.sh")
DB = "metron_grafana_%d" % os.getpid()
URL = BASE.rsplit("/", 1)[0] + "/" + DB
A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
failures = []


def psql(url, sql, header=False):
    """Rows of sql as lists of strings (the header first when asked)."""
    args = ["psql", url, "-X", "-A", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if not header:
        args.insert(3, "-t")
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr.strip())
    lines = [l for l in out.stdout.split("\n") if l and not re.match(r"^\(\d+ rows?\)$", l)]
    return [l.split("\t") for l in lines]


# ---- Grafana's macros (pkg/tsdb/grafana-postgresql-datasource/macros.go) ----------------

FROM = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=24)
TO = datetime.datetime.now(datetime.timezone.utc)
INTERVAL = "5m"  # what Grafana puts for $__interval on a day's range and a wide panel


def seconds(interval):
    n, unit = re.fullmatch(r"'?(\d+)([smhdw])'?", interval.strip()).groups()
    return int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def macro(name, args):
    a = [x.strip() for x in args.split(",")] if args.strip() else []
    if name == "__time":
        return '%s AS "time"' % a[0]
    if name == "__timeEpoch":
        return 'extract(epoch from %s) AS "time"' % a[0]
    if name == "__timeFilter":
        return "%s BETWEEN '%s' AND '%s'" % (a[0], rfc3339(FROM), rfc3339(TO))
    if name == "__timeFrom":
        return "'%s'" % rfc3339(FROM)
    if name == "__timeTo":
        return "'%s'" % rfc3339(TO)
    if name in ("__timeGroup", "__timeGroupAlias"):
        s = seconds(a[1])
        g = "floor(extract(epoch from %s)/%d)*%d" % (a[0], s, s)
        return g + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        return "%s >= %d AND %s <= %d" % (a[0], FROM.timestamp(), a[0], TO.timestamp())
    if name == "__unixEpochGroupAlias":
        s = seconds(a[1])
        return 'floor(%s/%d)*%d AS "time"' % (a[0], s, s)
    raise ValueError("macro $%s is not one Grafana knows" % name)


def expand(sql, variables):
    # variables first (Grafana interpolates the template before the macros)
    sql = sql.replace("$__interval", INTERVAL)
    for k, v in variables.items():
        sql = sql.replace("$" + k, v).replace("${%s}" % k, v)
    return re.sub(r"\$(__\w+)\(([^)]*)\)", lambda m: macro(m.group(1), m.group(2)), sql)


# the expander itself, on the macros the panels do not use
assert expand("$__unixEpochFilter(t)", {}).startswith("t >= ")
assert expand("$__timeGroupAlias(c, '1h')", {}) == 'floor(extract(epoch from c)/3600)*3600 AS "time"'

# ---- a database with the schema and a day of rows ---------------------------------------

psql(BASE, "DROP DATABASE IF EXISTS %s" % DB)
psql(BASE, "CREATE DATABASE %s" % DB)
try:
    r = subprocess.run([METRON, "schema", "install", "--pg", URL], capture_output=True, text=True)
    if r.returncode:
        sys.exit("metron schema install: " + r.stderr)
    psql(URL, """
        INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, metric_category,
            metric_name, sample_count, avg_value, min_value, max_value, median_value, p95_value, p99_value)
        SELECT date_trunc('hour', now()) - h * interval '1 hour', b, 'cpu', 'usage_user', 360,
               40 + h, 1, 99, 40, 90, 98
        FROM generate_series(0, 23) h,
             unnest(ARRAY['%s'::uuid, '%s'::uuid, NULL]) b;
        INSERT INTO monitoring.alert_rules (id, business_id, rule_name, rule_category, severity,
            metric_name, condition_type, condition_definition, critical_threshold,
            comparison_operator, created_by)
        VALUES ('33333333-3333-4333-8333-333333333333', '%s', 'cpu high', 'performance',
                'critical', 'cpu.usage_user', 'threshold', '{}', 90, 'gt', gen_random_uuid());
        INSERT INTO monitoring.alerts (business_id, alert_rule_id, alert_title, alert_message,
            severity, metric_name, trigger_value, threshold_value, triggered_at)
        VALUES ('%s', '33333333-3333-4333-8333-333333333333', 'cpu high', 'cpu.usage_user 95 > 90',
                'critical', 'cpu.usage_user', 95, 90, now() - interval '10 minutes');
        INSERT INTO monitoring.query_performance (business_id, query_id, query_hash,
            normalized_query, execution_count, total_exec_time, mean_exec_time, max_exec_time,
            performance_category, is_problematic, collected_at)
        VALUES ('%s', 42, 'abc', 'SELECT pg_sleep($1)', 3, 1500, 500, 700, 'poor', true,
                now() - interval '5 minutes');
        INSERT INTO monitoring.system_health (business_id, component_type, component_name,
            health_status, health_score, cache_hit_ratio, active_connections, collected_at)
        SELECT '%s', 'database', 'pg', 'healthy', 95, 0.99, 5, now() - m * interval '1 minute'
        FROM generate_series(0, 120, 15) m;
    """ % (A, B, A, A, A, A))

    dash = json.load(open(DASHBOARD))
    tenant_sql = dash["templating"]["list"][0]["query"]
    tenants = [row[0] for row in psql(URL, tenant_sql)]
    if sorted(tenants) != sorted(["all", A, B]):
        failures.append("tenant variable: %s" % tenants)
    for panel in dash["panels"]:
        for target in panel["targets"]:
            for tenant in ("all", A):
                sql = expand(target["rawSql"], {"tenant": tenant})
                try:
                    rows = psql(URL, sql, header=True)
                except RuntimeError as e:
                    failures.append("%s (tenant %s): %s\n%s" % (panel["title"], tenant, e, sql))
                    continue
                head, data = rows[0], rows[1:]
                if head[0] != "time":
                    failures.append("%s: the first column is %r, not time" % (panel["title"], head[0]))
                if len(head) < 2:
                    failures.append("%s: no value column" % panel["title"])
                if not data:
                    failures.append("%s (tenant %s): no rows" % (panel["title"], tenant))
                for row in data:  # a time Grafana reads: epoch seconds or a timestamp
                    t = row[0]
                    if not (re.fullmatch(r"\d+(\.\d+)?", t) or re.match(r"\d{4}-\d\d-\d\d \d\d:", t)):
                        failures.append("%s: time %r" % (panel["title"], t))
                        break
                if target["format"] == "time_series" and data:
                    # long format: time, a text metric, numeric values
                    for v in data[0][2 if len(head) > 2 and head[1] == "metric" else 1:]:
                        if v and not re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", v):
                            failures.append("%s: value %r is not a number" % (panel["title"], v))
finally:
    psql(BASE, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("grafana: %d panels, every query answered time-first rows" % len(dash["panels"]))
