#!/usr/bin/env python3
"""The Grafana Prometheus dashboard (sql/grafana/metron-prometheus.json) against
a real metrond, request by request as Grafana 10 sends them (issue 20, item 8).

metron-gen writes three hours of its devops points (cpu, mem, disk, net of
three hosts, every 10 s) into a metrond that requires tokens; the token goes
in the header the provisioned data source sets (datasource-prometheus.yaml:
httpHeaderName1/secureJsonData). Then, as Grafana 10 would:

- variables: label_values(region) is GET label/region/values?start&end;
  label_values(cpu_usage_user{region=~"$region"}, hostname) is GET
  label/hostname/values?match[]=...&start&end (prometheusVersion >= 2.24) and,
  without the version, POST series with the same form; the ad hoc filter
  asks POST labels?start&end (GET too) and GET label/NAME/values. start and
  end are the range's ends in seconds, rounded up (getPrometheusTime).
- panels: the variables put in as Grafana's interpolateQueryExpr does (a
  multi-value or All selection as "(a|b)", regex metacharacters escaped),
  then the backend's built-ins (pkg/tsdb/prometheus/models/query.go):
    frontend interval = max(roundInterval(range / maxDataPoints), timeInterval)
    step             = max(interval, roundInterval(range / 11000))
    $__interval      = the interval ("10s", "1m"), $__range = round(range)"s"
    $__rate_interval = max(interval + scrape, 4 * scrape), as a Go duration
                       ("40s", "2m0s"); scrape is the data source's
                       timeInterval (Grafana's documentation), and Grafana
                       10.0-10.2 put the step there: both are replayed
    start, end       = floor(from / step) * step, floor(to / step) * step
  and each range target is a POST query_range form (query, start, end,
  step), each instant target a POST query at the aligned end.

Every answer is compared with values computed here from the points written
(the lookback, Prometheus' extrapolated rate/increase, quantiles at rank
q*(n-1), sums by region): every series and every step, timestamps exactly,
values within 1e-9 relative. Every target must parse (no bad_data); an
expression without an evaluator here fails the test, so a new panel needs
one. The data source's health check (1+1) and buildinfo are asked too.

  test_grafana_prom.py METROND METRON_GEN DASHBOARD_JSON DATASOURCE_YAML
"""
import bisect
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from free_port import free_port  # noqa: E402  (below the ephemeral range: why in there)

T0 = 1735689600  # metron-gen's default start, an hour boundary (2025-01-01T00:00:00Z)
HOURS = 3
NOW_MS = (T0 + HOURS * 3600) * 1000 - 250  # Grafana's "now": just after the last report
LOOKBACK = 300000
REL = 1e-9
TOKEN = "grafana-token-1"
failures = []


# ---- Grafana's arithmetic -----------------------------------------------------------------

# roundInterval (pkg/tsdb/intervalv2 and the frontend's rangeutil): (at most ms, gives ms)
ROUND = [(10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
         (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
         (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
         (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
         (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000)]


def round_interval(ms):
    for limit, to in ROUND:
        if ms <= limit:
            return to
    return 86400000


def go_duration(ms):
    """time.Duration.String() of whole milliseconds: "40s", "2m0s", "1h0m0s", "500ms"."""
    if ms < 1000:
        return f"{ms}ms"
    h, rest = divmod(ms, 3600000)
    m, rest = divmod(rest, 60000)
    s = f"{rest // 1000}" + (f".{rest % 1000:03d}".rstrip("0") if rest % 1000 else "") + "s"
    if h:
        return f"{h}h{m}m{s}"
    return f"{m}m{s}" if m else s


def format_duration(ms):
    """intervalv2.FormatDuration: the largest unit only ("10s", "1m")."""
    for unit, name in ((86400000, "d"), (3600000, "h"), (60000, "m"), (1000, "s")):
        if ms >= unit:
            return f"{ms // unit}{name}"
    return f"{ms}ms"


def go_seconds(ms):
    """strconv.FormatFloat(seconds, 'f', -1, 64), as Grafana writes start, end and step."""
    s = repr(ms / 1000)
    return s[:-2] if s.endswith(".0") else s


def regex_escape(v):
    """prometheusSpecialRegexEscape: the value of a multi-value or All variable."""
    v = v.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), v)


def interpolate_var(values):
    esc = [regex_escape(v) for v in values]
    return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"


def grafana_times(from_ms, to_ms, max_data_points, scrape_ms):
    rng = to_ms - from_ms
    interval = max(round_interval(rng / max_data_points), scrape_ms)  # the frontend's intervalMs
    calc = rng / max_data_points
    calculated = interval if calc < interval else round_interval(calc)
    step = max(calculated, round_interval(rng / 11000))
    rates = sorted({max(interval + scrape, 4 * scrape) for scrape in (scrape_ms, step)})
    return interval, step, rates


def backend_builtins(expr, interval, rate, rng):
    rng_s = int(math.floor(rng / 1000 + 0.5))
    for k, v in (("$__interval_ms", str(interval)), ("$__interval", format_duration(interval)),
                 ("$__range_ms", str(rng)), ("$__range_s", str(rng_s)), ("$__range", f"{rng_s}s"),
                 ("$__rate_interval_ms", str(rate)), ("$__rate_interval", go_duration(rate))):
        expr = expr.replace(k, v).replace("${" + k[1:] + "}", v)
    return expr


# ---- the points, and PromQL evaluated here ------------------------------------------------

def load_points(lp):
    """{(metric, labels tuple)} -> [(ts_ms, value)] from metron-gen's line protocol."""
    pts = {}
    for line in lp.splitlines():
        head, fields, ts = line.split(" ")
        meas, *tags = head.split(",")
        labels = tuple(sorted(tuple(t.split("=", 1)) for t in tags))
        for f in fields.split(","):
            k, v = f.split("=", 1)
            pts.setdefault((f"{meas}_{k}", labels), []).append(
                (int(ts) * 1000, float(v[:-1] if v.endswith("i") else v)))
    for v in pts.values():
        v.sort()
    return pts


class Data:
    def __init__(self, pts):
        self.pts = pts
        self.ts = {k: [t for t, _ in v] for k, v in pts.items()}

    def series(self, metric, regions, hosts):
        for (m, labels), v in self.pts.items():
            d = dict(labels)
            if m == metric and d["region"] in regions and d["hostname"] in hosts:
                yield labels, (m, labels)

    def window(self, key, lo, hi):
        ts = self.ts[key]
        return self.pts[key][bisect.bisect_left(ts, lo):bisect.bisect_right(ts, hi)]

    def latest(self, key, t):
        w = self.window(key, t - LOOKBACK, t)
        return w[-1][1] if w else None


def extrapolated(samples, t, rng, is_rate):
    """Prometheus 2.42's extrapolatedRate for a counter over [t - rng, t]."""
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    result = last[1] - first[1]
    prev = 0.0
    for _, v in samples:
        if v < prev:
            result += prev
        prev = v
    to_start = (first[0] - (t - rng)) / 1000
    to_end = (t - last[0]) / 1000
    sampled = (last[0] - first[0]) / 1000
    avg = sampled / (len(samples) - 1)
    if result > 0 and first[1] >= 0:
        to_start = min(to_start, sampled * (first[1] / result))
    threshold = avg * 1.1
    extra = sampled + (to_start if to_start < threshold else avg / 2) + \
        (to_end if to_end < threshold else avg / 2)
    result = result * (extra / sampled)
    return result / (rng / 1000) if is_rate else result


def quantile(q, values):
    if not values:
        return None
    v = sorted(values)
    rank = q * (len(v) - 1)
    lo = max(0, math.floor(rank))
    hi = min(len(v) - 1, lo + 1)
    w = rank - math.floor(rank)
    return v[lo] * (1 - w) + v[hi] * w


def per_series(metric, fn, keep_name=False):
    """An evaluator: fn(data, key, t, ctx) per selected series of metric, keyed by its labels."""
    def ev(data, t, ctx):
        out = {}
        for labels, key in data.series(metric, ctx["regions"], ctx["hosts"]):
            v = fn(data, key, t, ctx)
            if v is not None:
                out[tuple(sorted(labels + ((("__name__", metric),) if keep_name else ())))] = v
        return out
    return ev


def by_region(inner):
    def ev(data, t, ctx):
        out = {}
        for labels, v in inner(data, t, ctx).items():
            k = (("region", dict(labels)["region"]),)
            out[k] = out.get(k, 0.0) + v
        return out
    return ev


def rate_of(metric, range_key, is_rate=True):
    return per_series(metric, lambda d, k, t, c: extrapolated(d.window(k, t - c[range_key], t), t,
                                                              c[range_key], is_rate))


def mem_percent(data, t, ctx):
    out = {}
    for labels, key in data.series("mem_used", ctx["regions"], ctx["hosts"]):
        u, a = data.latest(key, t), data.latest(("mem_available", labels), t)
        if u is not None and a is not None:
            out[labels] = 100 * u / (u + a)
    return out


def p95_over(range_key):
    return per_series("cpu_usage_user", lambda d, k, t, c: quantile(
        0.95, [v for _, v in d.window(k, t - c[range_key], t)]))


SEL = 'region=~"$region", hostname=~"$host"'
EXPECT = {
    f"100 - cpu_usage_idle{{{SEL}}}":
        per_series("cpu_usage_idle", lambda d, k, t, c: None if d.latest(k, t) is None
                   else 100 - d.latest(k, t)),
    f"100 * mem_used{{{SEL}}} / (mem_used{{{SEL}}} + mem_available{{{SEL}}})": mem_percent,
    f"mem_used{{{SEL}}}": per_series("mem_used", lambda d, k, t, c: d.latest(k, t), keep_name=True),
    f"quantile_over_time(0.95, cpu_usage_user{{{SEL}}}[5m])": p95_over("5m"),
    f"rate(disk_read_bytes{{{SEL}}}[$__rate_interval])": rate_of("disk_read_bytes", "rate"),
    f"rate(disk_write_bytes{{{SEL}}}[$__rate_interval])": rate_of("disk_write_bytes", "rate"),
    f"rate(net_packets_recv{{{SEL}}}[$__rate_interval])": rate_of("net_packets_recv", "rate"),
    f"rate(net_packets_sent{{{SEL}}}[$__rate_interval])": rate_of("net_packets_sent", "rate"),
    f"sum by (region) (rate(net_bytes_recv{{{SEL}}}[$__rate_interval]))":
        by_region(rate_of("net_bytes_recv", "rate")),
    f"sum by (region) (increase(disk_reads{{{SEL}}}[$__interval]))":
        by_region(rate_of("disk_reads", "interval", is_rate=False)),
    f"quantile_over_time(0.95, cpu_usage_user{{{SEL}}}[$__range])": p95_over("range"),
}


# ---- HTTP, as the data source sends it ---------------------------------------------------

class Source:
    def __init__(self, base, header, value):
        self.base, self.header, self.value = base, header, value

    def call(self, method, path, params):
        body = urllib.parse.urlencode(params, doseq=True)
        url = self.base + path + ("?" + body if method == "GET" and body else "")
        req = urllib.request.Request(url, data=body.encode() if method == "POST" else None, method=method)
        if method == "POST":
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        req.add_header(self.header, self.value)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def strip_db(metric):
    """The answer's labels; a db label /write might keep (issue 20, item 6) is not the data's."""
    return tuple(sorted((k, v) for k, v in metric.items() if not (k == "db" and v == "metron")))


def compare(what, got, want):
    """got: Prometheus' result list; want: {labels: [(t_ms, v)]}. Appends to failures."""
    have = {}
    for r in got:
        k = strip_db(r["metric"])
        if k in have:
            failures.append(f"{what}: series {dict(k)} twice")
        vals = r["values"] if "values" in r else [r["value"]]
        have[k] = [(round(float(t) * 1000), float(v)) for t, v in vals]
    if set(have) != set(want):
        failures.append(f"{what}: series {sorted(have)} != {sorted(want)}")
        return
    for k, w in want.items():
        g = have[k]
        if [t for t, _ in g] != [t for t, _ in w]:
            failures.append(f"{what} {dict(k)}: {len(g)} steps {g[:2]}.. != {len(w)} {w[:2]}..")
            continue
        for (t, gv), (_, wv) in zip(g, w):
            if not close(gv, wv):
                failures.append(f"{what} {dict(k)} at {t}: {gv} != {wv}")
                break


def wait_for(url, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer on {url} within {seconds} s")


def main():
    if len(sys.argv) not in (5, 6):
        raise SystemExit("usage: test_grafana_prom.py METROND METRON_GEN DASHBOARD_JSON DATASOURCE_YAML")
    metrond, gen, dash_path, ds_path = sys.argv[1:5]
    dash = json.load(open(dash_path))
    ds = yaml.safe_load(open(ds_path))["datasources"][0]
    jd = ds["jsonData"]
    work = tempfile.mkdtemp(prefix="grafana-prom.")
    proc = None
    try:
        h = subprocess.run([metrond, "--hash-token"], input=TOKEN, capture_output=True, text=True,
                           check=True).stdout.strip()
        with open(os.path.join(work, "tokens"), "w") as f:
            f.write(f"* {h}\n")
        port = free_port()
        log = open(os.path.join(work, "metrond.log"), "w")
        proc = subprocess.Popen(
            [metrond, "--data", os.path.join(work, "data"), "--http", f"127.0.0.1:{port}",
             "--lp-tcp", "off", "--lp-udp", "off", "--tokens-file", os.path.join(work, "tokens"),
             "--retention-interval", "0", "--compact-interval", "0"], stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/health", 30, "metrond")

        # the provisioned data source: its URL's path on our port, its header with the token
        assert ds["type"] == "prometheus" and ds["url"].endswith(":8086/prometheus"), ds["url"]
        value = ds["secureJsonData"]["httpHeaderValue1"].replace("${METRON_GRAFANA_TOKEN}", TOKEN)
        src = Source(base + urllib.parse.urlparse(ds["url"]).path, jd["httpHeaderName1"], value)
        post = jd.get("httpMethod", "POST")
        scrape = int(re.fullmatch(r"(\d+)s", jd["timeInterval"])[1]) * 1000  # Grafana's "10s"

        lp = subprocess.run([gen, "--hosts", "3", "--hours", str(HOURS), "--start", str(T0),
                             "--interval", "10", "--precision", "s"], capture_output=True, text=True,
                            check=True).stdout
        req = urllib.request.Request(base + "/write?db=metron&precision=s", data=lp.encode(), method="POST")
        req.add_header("Authorization", value)
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.status == 204, r.status
        data = Data(load_points(lp))
        all_regions = sorted({dict(l)["region"] for _, l in data.pts})
        all_hosts = sorted({dict(l)["hostname"] for _, l in data.pts})
        label_names = sorted({"__name__"} | {k for _, l in data.pts for k, _ in l})
        print(f"{len(data.pts)} series, {sum(map(len, data.pts.values()))} points, "
              f"regions {all_regions}, hosts {all_hosts}")

        # the data source's own checks: health (1+1) and the version
        st, j = src.call(post, "/api/v1/query", {"query": "1+1", "time": go_seconds(NOW_MS)})
        if st != 200 or j["data"]["result"][1] != "2":
            failures.append(f"health check 1+1: {st} {j}")
        st, j = src.call("GET", "/api/v1/status/buildinfo", {})
        if st != 200 or not j["data"]["version"].startswith("2."):
            failures.append(f"buildinfo: {st} {j}")
        st, _ = Source(src.base, "X-None", "x").call(post, "/api/v1/query", {"query": "1+1"})
        if st != 401:
            failures.append(f"no token: {st}, not 401")

        # ---- variables
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        from_ms, to_ms = NOW_MS - 3600000, NOW_MS
        se = {"start": str(math.ceil(from_ms / 1000)), "end": str(math.ceil(to_ms / 1000))}
        q = variables["region"]["query"]
        q = q["query"] if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((\w+)\)", q)
        assert m, q
        st, j = src.call("GET", f"/api/v1/label/{m[1]}/values", se)
        if st != 200 or j["data"] != all_regions:
            failures.append(f"variable region: {st} {j} != {all_regions}")
        q = variables["host"]["query"]
        q = q["query"] if isinstance(q, dict) else q
        for regions in (all_regions, all_regions[:1]):
            hosts = sorted({dict(l)["hostname"] for m_, l in data.pts
                            if m_ == "cpu_usage_user" and dict(l)["region"] in regions})
            iq = q.replace("$region", interpolate_var(regions))
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", iq)
            assert m, iq
            # prometheusVersion >= 2.24: label values with match[]; without it, series
            st, j = src.call("GET", f"/api/v1/label/{m[2]}/values", {"match[]": m[1], **se})
            if st != 200 or j["data"] != hosts:
                failures.append(f"variable host ({iq}) by label values: {st} {j} != {hosts}")
            st, j = src.call(post, "/api/v1/series", {"match[]": m[1], **se})
            got = sorted({s.get(m[2], "") for s in j["data"]} - {""}) if st == 200 else j
            if got != hosts:
                failures.append(f"variable host ({iq}) by series: {st} {got} != {hosts}")
            if st == 200 and any(s.get("__name__") != "cpu_usage_user" for s in j["data"]):
                failures.append(f"variable host by series: other metrics in {j['data'][:2]}")
        # the ad hoc filter: label names (POST as configured, and GET), then one label's values
        for method in (post, "GET"):
            st, j = src.call(method, "/api/v1/labels", se)
            if st != 200 or j["data"] != label_names:
                failures.append(f"{method} labels: {st} {j} != {label_names}")
        st, j = src.call("GET", "/api/v1/label/hostname/values", se)
        if st != 200 or j["data"] != all_hosts:
            failures.append(f"ad hoc values of hostname: {st} {j} != {all_hosts}")
        # a range with no points has no series and no values
        empty = {"start": str(T0 - 7200), "end": str(T0 - 3600)}
        st, j = src.call("GET", "/api/v1/label/hostname/values", empty)
        if st != 200 or j["data"] != []:
            failures.append(f"label values before the data: {st} {j}")

        # ---- panels
        targets = [(p["title"], t) for p in dash["panels"] if p.get("type") != "row"
                   for t in p.get("targets", [])]
        for title, t in targets:
            if t["expr"] not in EXPECT:
                failures.append(f"panel {title!r} {t['refId']}: no evaluator for {t['expr']!r}")
            ref = t.get("datasource", {}).get("uid")
            if ref != ds["uid"]:
                failures.append(f"panel {title!r}: data source {ref}, not {ds['uid']}")
        cases = [  # (range, maxDataPoints = the panel's width, regions, hosts)
            (3600000, 1200, all_regions, all_hosts),
            (3600000, 1200, all_regions, all_hosts[1:2]),
            (3 * 3600000, 360, all_regions, all_hosts),
        ]
        replays = points = 0
        for rng, width, regions, hosts in cases:
            from_ms, to_ms = NOW_MS - rng, NOW_MS
            interval, step, rates = grafana_times(from_ms, to_ms, width, scrape)
            start = from_ms // step * step
            end = to_ms // step * step
            for rate in rates:
                ctx = {"regions": regions, "hosts": hosts, "rate": rate, "interval": interval,
                       "range": int(math.floor(rng / 1000 + 0.5)) * 1000, "5m": 300000}
                for title, t in targets:
                    expr = t["expr"].replace("$region", interpolate_var(regions))
                    expr = expr.replace("$host", interpolate_var(hosts))
                    expr = backend_builtins(expr, interval, rate, rng)
                    what = (f"{title!r} {t['refId']} [{expr}] range {rng // 60000}m step "
                            f"{step // 1000}s rate {go_duration(rate)}")
                    # it parses and evaluates: an instant query at the end
                    st, j = src.call(post, "/api/v1/query", {"query": expr, "time": go_seconds(end)})
                    if st != 200 or j.get("status") != "success":
                        failures.append(f"{what}: instant query {st} {j}")
                        continue
                    ev = EXPECT.get(t["expr"])
                    if not ev:
                        continue
                    if t.get("instant") and not t.get("range"):
                        times = [end]
                        st, j = src.call(post, "/api/v1/query", {"query": expr, "time": go_seconds(end)})
                    else:
                        times = range(start, end + 1, step)
                        st, j = src.call(post, "/api/v1/query_range",
                                         {"query": expr, "start": go_seconds(start),
                                          "end": go_seconds(end), "step": go_seconds(step)})
                    if st != 200:
                        failures.append(f"{what}: {st} {j}")
                        continue
                    want = {}
                    for ts in times:
                        for k, v in ev(data, ts, ctx).items():
                            want.setdefault(k, []).append((ts, v))
                    n = sum(map(len, want.values()))
                    if n < len(hosts) * min(len(times), 2) / 3 or not want:
                        failures.append(f"{what}: the test expects almost nothing ({n} values)")
                    compare(what, j["data"]["result"], want)
                    replays += 1
                    points += n
        print(f"{replays} panel requests replayed, {points} values compared")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        if failures:
            print(open(os.path.join(work, "metrond.log")).read()[-3000:], file=sys.stderr)
        if "--keep" in sys.argv:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for f in failures[:40]:
        print("FAIL", f, file=sys.stderr)
    if failures:
        sys.exit(f"{len(failures)} failures")
    print("ok")


if __name__ == "__main__":
    main()
