#!/usr/bin/env python3
"""test_grafana.py — every SQL of the Grafana dashboard (sql/grafana) run on
the test PostgreSQL (METRON_TEST_PG) against the installed schema and sample
rows, with Grafana's PostgreSQL macros and the dashboard's variables
expanded the way Grafana expands them; each query must answer rows of the
shape Grafana needs: a "time" column first, then values.

The minute rows the live panels read are real: a metrond mirrors them from
six hours of points written through /write (tenants A and B and the
system-wide one, four hosts, fields in percent, bytes and packets). The
live panels must answer each host's minutes, one unit per panel, and the
"all" quantiles must equal PERCENTILE_CONT over every tenant's points; the
hourly "all" average must be the sample-weighted one.

    test_grafana.py METRON_BINARY DASHBOARD_JSON METROND_BINARY
"""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from free_port import free_port  # noqa: E402  (below the ephemeral range: why in there)

METRON, DASHBOARD, METROND = sys.argv[1], sys.argv[2], sys.argv[3]
BASE = os.environ.get("METRON_TEST_PG")
if not BASE:
    sys.exit("METRON_TEST_PG is not set: run through tools/test.sh")
DB = "metron_grafana_%d" % os.getpid()
ROLE = "grafana_reader_%d" % os.getpid()  # roles are the cluster's: dropped at the end
URL = BASE.rsplit("/", 1)[0] + "/" + DB
A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
failures = []


def psql(url, sql, header=False):
    """Rows of sql as lists of strings (the header first when asked)."""
    args = ["psql", url, "-q", "-X", "-A", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if not header:
        args.insert(3, "-t")
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr.strip())
    lines = [l for l in out.stdout.split("\n") if l and not re.match(r"^\(\d+ rows?\)$", l)]
    return [l.split("\t") for l in lines]


# ---- Grafana's macros (pkg/tsdb/grafana-postgresql-datasource/macros.go) ----------------

NOW = datetime.datetime.now(datetime.timezone.utc)
FROM, TO = NOW - datetime.timedelta(hours=24), NOW
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


def expand(sql, variables, time_from=None):
    """sql as Grafana sends it: variables first (a list, a multi-value one: quoted and joined
    with commas), then the macros, over the dashboard's range or the panel's timeFrom."""
    global FROM
    FROM = NOW - datetime.timedelta(seconds=seconds(time_from)) if time_from else NOW - \
        datetime.timedelta(hours=24)
    sql = sql.replace("$__interval", INTERVAL)
    for k, v in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        if isinstance(v, list):
            v = ",".join("'%s'" % x.replace("'", "''") for x in v)
        sql = sql.replace("${%s}" % k, v).replace("$" + k, v)
    return re.sub(r"\$(__\w+)\(([^)]*)\)", lambda m: macro(m.group(1), m.group(2)), sql)


# the expander itself, on the macros the panels do not use
assert expand("$__unixEpochFilter(t)", {}).startswith("t >= ")
assert expand("$__timeGroupAlias(c, '1h')", {}) == 'floor(extract(epoch from c)/3600)*3600 AS "time"'

# ---- six hours of points through a real metrond: the minute rows -----------------------

T = {"A": A, "B": B, None: None}
HOSTS = {"h1": A, "h2": A, "h3": B, "h4": None}  # h4: system-wide points (no business_id)
MINUTES = 360
END = int(time.time()) // 60 * 60  # the minute being written is not part of the test
FIELDS = {  # measurement.field: its unit, as the dashboard's unit panels must sort them
    "cpu.usage_user": "percent", "mem.used_percent": "percent", "mem.used": "bytes",
    "net.bytes_recv": "bytes", "net.packets_recv": "packets"}


def value(host, field, ts):
    """A point's value: deterministic, different per host, field and time."""
    k = int(host[1]) * 7919 + sum(map(ord, field)) * 131 + ts
    base = {"percent": 100, "bytes": 8e9, "packets": 1e6}[FIELDS[field]]
    return round(base * ((k * 2654435761) % 1000003) / 1000003, 3)


def lines():
    out = []
    for k in range(1, MINUTES + 1):
        for off in (5, 20, 35, 50):
            ts = END - k * 60 + off
            for host, bid in HOSTS.items():
                tags = (",business_id=" + bid if bid else "") + ",host=" + host
                by_meas = {}
                for f in FIELDS:
                    meas, field = f.split(".")
                    by_meas.setdefault(meas, []).append("%s=%s" % (field, value(host, f, ts)))
                for meas, kv in by_meas.items():
                    out.append("%s%s %s %d" % (meas, tags, ",".join(kv), ts))
    return out


def percentile_cont(vs, q):
    vs = sorted(vs)
    r = q * (len(vs) - 1)
    lo = int(r)
    return vs[lo] + (r - lo) * (vs[min(lo + 1, len(vs) - 1)] - vs[lo])


def wait_for(sql, want, secs):
    got = None
    end = time.time() + secs
    while time.time() < end:
        try:
            got = psql(URL, sql)[0][0]
            if got == want:
                return True, got
        except RuntimeError as e:
            got = str(e)
        time.sleep(0.2)
    return False, got


def check(cond, what):
    if not cond:
        failures.append(what)


psql(BASE, "DROP DATABASE IF EXISTS %s" % DB)
psql(BASE, "CREATE DATABASE %s" % DB)
data = tempfile.mkdtemp(prefix="metron-grafana-")
daemon = None
try:
    r = subprocess.run([METRON, "schema", "install", "--pg", URL], capture_output=True, text=True)
    if r.returncode:
        sys.exit("metron schema install: " + r.stderr)
    # hourly rows of three tenants with different counts and averages: an unweighted average of
    # their averages is not the average of their points
    psql(URL, """
        INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, metric_category,
            metric_name, sample_count, avg_value, min_value, max_value, median_value, p95_value, p99_value)
        SELECT date_trunc('hour', now()) - h * interval '1 hour', b, 'cpu', 'usage_user', c,
               a + h, 1, 99, 40, 90, 98
        FROM generate_series(0, 23) h,
             (VALUES ('%s'::uuid, 360, 40), ('%s'::uuid, 100, 10), (NULL, 20, 90)) t(b, c, a);
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

    http = free_port()
    log = open(data + ".log", "w")
    # a grace of two days: no hour is sealed, so the hourly rows above stay as they are
    daemon = subprocess.Popen([METROND, "--data", data, "--lp-tcp", "off", "--lp-udp", "off",
                               "--http", "127.0.0.1:%d" % http, "--grace", "172800",
                               "--postgres", URL, "--postgres-flush-interval", "1"],
                              stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % http, timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    body = lines()
    for i in range(0, len(body), 2000):
        req = urllib.request.Request("http://127.0.0.1:%d/write?db=metron&precision=s" % http,
                                     data="\n".join(body[i:i + 2000]).encode(), method="POST")
        try:
            urllib.request.urlopen(req, timeout=30).close()
        except urllib.error.HTTPError as e:
            sys.exit("/write answered %d: %s" % (e.code, e.read().decode()[:500]))
    want_series = MINUTES * len(HOSTS) * len(FIELDS)
    ok, got = wait_for("SELECT count(*) FROM monitoring.series_minute", str(want_series), 120)
    if not ok:
        sys.exit("the mirror wrote %s series-minute rows, not %d (log: %s.log)" % (got, want_series, data))
    ok, got = wait_for("SELECT count(*) FROM monitoring.metrics_minute_all",
                       str(MINUTES * len(FIELDS)), 30)
    if not ok:
        sys.exit("the mirror wrote %s system-wide rows, not %d" % (got, MINUTES * len(FIELDS)))

    dash = json.load(open(DASHBOARD))
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    options = {}

    def var_options(name, values):
        return [row[0] for row in psql(URL, expand(variables[name]["query"], values))]

    tenants = var_options("tenant", {})
    check(tenants == ["all", A, B], "tenant variable: %s" % tenants)
    # a tenant's login is offered its tenant only, and reads no system-wide row
    psql(URL, "CREATE ROLE %s NOLOGIN; GRANT monitoring_dashboard TO %s;"
              " INSERT INTO monitoring.tenant_readers VALUES ('%s', '%s')" % (ROLE, ROLE, ROLE, A))
    got = [r[0] for r in psql(URL, "SET ROLE %s; %s" % (ROLE, variables["tenant"]["query"]))]
    check(got == [A], "tenant variable for tenant A's reader: %s" % got)
    got = psql(URL, "SET ROLE %s; SELECT count(*) FROM monitoring.metrics_minute_all" % ROLE)
    check(got == [["0"]], "tenant A's reader reads %s system-wide rows" % got)
    fields = {"percent_field": "percent", "bytes_field": "bytes", "packets_field": "packets"}
    for tenant in ("all", A):
        hosts = var_options("host", {"tenant": tenant})
        want = sorted(h for h, b in HOSTS.items() if tenant == "all" or b == tenant)
        check(hosts == want, "host variable (tenant %s): %s, not %s" % (tenant, hosts, want))
    for name, unit in fields.items():  # a unit panel's field variable offers its unit only
        got = var_options(name, {"tenant": "all"})
        want = sorted(f for f, u in FIELDS.items() if u == unit)
        check(got == want, "%s variable: %s, not %s" % (name, got, want))
    metrics = var_options("metric", {"tenant": "all"})
    check(set(FIELDS) <= set(metrics), "metric variable: %s" % metrics)

    def run(panel, target, values):
        sql = expand(target["rawSql"], values, panel.get("timeFrom"))
        try:
            rows = psql(URL, sql, header=True)
        except RuntimeError as e:
            failures.append("%s (%s): %s\n%s" % (panel["title"], values, e, sql))
            return None, []
        head, data_rows = rows[0], rows[1:]
        if head[0] != "time":
            failures.append("%s: the first column is %r, not time" % (panel["title"], head[0]))
        if len(head) < 2:
            failures.append("%s: no value column" % panel["title"])
        for row in data_rows:  # a time Grafana reads: epoch seconds or a timestamp
            t = row[0]
            if not (re.fullmatch(r"\d+(\.\d+)?", t) or re.match(r"\d{4}-\d\d-\d\d \d\d:", t)):
                failures.append("%s: time %r" % (panel["title"], t))
                break
        if target["format"] == "time_series" and data_rows:
            # long format: time, a text metric, numeric values
            for v in data_rows[0][2 if len(head) > 2 and head[1] == "metric" else 1:]:
                if v and not re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", v):
                    failures.append("%s: value %r is not a number" % (panel["title"], v))
        return head, data_rows

    def epoch(t):
        if re.fullmatch(r"\d+(\.\d+)?", t):
            return int(float(t))
        return int(datetime.datetime.fromisoformat(t.replace(" ", "T")).timestamp())

    panels = [p for p in dash["panels"] if p["type"] != "row"]
    for panel in panels:
        if panel["type"] == "timeseries":
            check(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"),
                  "%s: no unit (one unit per axis)" % panel["title"])
        for target in panel["targets"]:
            for tenant in ("all", A):
                values = {"tenant": tenant, "metric": "cpu.usage_user",
                          "host": var_options("host", {"tenant": tenant}),
                          "percent_field": "cpu.usage_user", "bytes_field": "net.bytes_recv",
                          "packets_field": "net.packets_recv"}
                head, rows = run(panel, target, values)
                if head is None:
                    continue
                one_tenant = "(one tenant)" in panel["title"]
                if tenant == "all" and one_tenant:
                    check(not rows, "%s: rows under \"all\" (no quantile of all the points "
                          "there)" % panel["title"])
                else:
                    check(rows, "%s (tenant %s): no rows" % (panel["title"], tenant))

    # the live per-host panels: every host of the tenant, each minute of the last 6 hours, the
    # minute's average of its points
    live = {p["id"]: p for p in panels}
    for pid, var_name, field in ((101, "percent_field", "mem.used_percent"),
                                 (102, "bytes_field", "mem.used"),
                                 (103, "packets_field", "net.packets_recv")):
        p = live[pid]
        check(p.get("timeFrom") == "6h", "%s: not the last 6 hours" % p["title"])
        check(p["fieldConfig"]["defaults"]["unit"] in {"percent": ("percent",),
              "bytes": ("bytes", "decbytes"), "packets": ("suffix: packets",)}[FIELDS[field]],
              "%s: unit %s for %s" % (p["title"], p["fieldConfig"]["defaults"]["unit"], field))
        for tenant in ("all", A):
            hosts = sorted(h for h, b in HOSTS.items() if tenant == "all" or b == tenant)
            _, rows = run(p, p["targets"][0], {"tenant": tenant, "host": hosts, var_name: field})
            got_hosts = sorted({r[1] for r in rows})
            check(got_hosts == hosts, "%s (tenant %s): hosts %s" % (p["title"], tenant, got_hosts))
            per_host = {}
            for r in rows:
                per_host.setdefault(r[1], {})[epoch(r[0])] = float(r[2])
            for h, series in per_host.items():
                check(MINUTES - 1 <= len(series) <= MINUTES,
                      "%s: %s has %d minutes, not the last 6 hours at 1-minute steps"
                      % (p["title"], h, len(series)))
                m = END - 60
                want = sum(value(h, field, m + o) for o in (5, 20, 35, 50)) / 4
                check(abs(series.get(m, float("nan")) - want) <= 1e-6 * max(1, abs(want)),
                      "%s: %s at the last minute %s, not %s" % (p["title"], h, series.get(m), want))
        _, rows = run(p, p["targets"][0], {"tenant": "all", "host": ["h3"], var_name: field})
        check({r[1] for r in rows} == {"h3"}, "%s: host h3 alone gave %s"
              % (p["title"], sorted({r[1] for r in rows})))

    # the live quantiles under "all": PERCENTILE_CONT over every tenant's points of the minute
    p = live[104]
    for field in ("cpu.usage_user", "net.bytes_recv"):
        head, rows = run(p, p["targets"][0], {"tenant": "all", "metric": field})
        got = {epoch(r[0]): dict(zip(head[1:], map(float, r[1:]))) for r in rows}
        for m in (END - 60, END - 61 * 60, END - 300 * 60):
            pts = [value(h, field, m + o) for h in HOSTS for o in (5, 20, 35, 50)]
            want = {"avg": sum(pts) / len(pts), "p50": percentile_cont(pts, 0.5),
                    "p95": percentile_cont(pts, 0.95), "p99": percentile_cont(pts, 0.99)}
            for k, w in want.items():
                g = got.get(m, {}).get(k)
                check(g is not None and abs(g - w) <= 1e-9 * max(1, abs(w)),
                      "%s (all, %s, %d): %s %s, not %s" % (p["title"], field, m, k, g, w))
        # and a tenant's own rows under its id
        head, rows = run(p, p["targets"][0], {"tenant": B, "metric": field})
        m = END - 60
        pts = [value("h3", field, m + o) for o in (5, 20, 35, 50)]
        g = {epoch(r[0]): float(r[3]) for r in rows}.get(m)
        check(g is not None and abs(g - percentile_cont(pts, 0.95)) <= 1e-9 * max(1, g),
              "%s (tenant B, %s): p95 %s" % (p["title"], field, g))

    # the hourly average under "all" is weighted by the counts: (360*40 + 100*10 + 20*90) / 480
    p = live[1]
    head, rows = run(p, p["targets"][0], {"tenant": "all", "metric": "cpu.usage_user"})
    hour = int(time.time()) // 3600 * 3600
    got = {epoch(r[0]): float(r[1]) for r in rows}.get(hour)
    want = (360 * 40 + 100 * 10 + 20 * 90) / 480
    check(got is not None and abs(got - want) < 1e-9, "%s: all %s, not %s" % (p["title"], got, want))
finally:
    if daemon:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    subprocess.run(["rm", "-rf", data])
    psql(BASE, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
    psql(BASE, "DROP ROLE IF EXISTS %s" % ROLE)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("grafana: %d panels, every query answered time-first rows; live panels per host, one unit "
      "each; \"all\" quantiles equal PERCENTILE_CONT over every tenant's points" % len(panels))
