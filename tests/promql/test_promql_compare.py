#!/usr/bin/env python3
"""PromQL equal to Prometheus (issue 20, item 3).

Loads the same points into a real Prometheus (Debian's 2.42: blocks made with
`promtool tsdb create-blocks-from openmetrics`, served from --storage.tsdb.path)
and into metrond (line protocol), then runs every query of the corpus through
both /api/v1/query (at several times) and /api/v1/query_range (two steps),
and compares status, result type, every series' labels and every sample:
timestamps exactly, values within 1e-9 relative (NaN equals NaN, infinities
by sign). A query Prometheus refuses must be refused by Metron too.

  test_promql_compare.py METROND CORPUS [--keep]

Everything listens on 127.0.0.1 on free ports under one temporary directory,
removed at exit. The data are a fixed function of a fixed seed: counters with
resets and jittered scrape times, gauges with gaps longer than the lookback.
"""
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from free_port import free_port  # noqa: E402  (below the ephemeral range: why in there)

T0 = 1699999200  # an hour boundary (2023-11-14T22:00:00Z)
HOURS = 3
REL = 1e-9


def gen_points():
    """[(measurement, tags dict, field, [(ts_ms, value), ...])] and the Prometheus name."""
    rnd = random.Random(20)
    series = []
    # counters: http requests_total{code, host}, scraped every 15 s with jitter, one reset
    for host in ("a", "b", "c"):
        for code in ("200", "500"):
            pts, v, t = [], rnd.uniform(0, 50), T0 * 1000
            while t < (T0 + HOURS * 3600) * 1000:
                jt = t + rnd.randint(-900, 900)
                v += rnd.uniform(0, 20) if code == "200" else rnd.choice([0, 0, 1])
                if host == "b" and code == "200" and abs(t - (T0 + 5400) * 1000) < 7000:
                    v = rnd.uniform(0, 3)  # a counter reset
                pts.append((jt, round(v, 3)))
                t += 15000
            series.append(("http", {"host": host, "code": code}, "requests_total", pts))
    # gauges: cpu usage_user and usage_system{host, region}, every 10 s, with gaps
    for host, region in (("a", "eu"), ("b", "eu"), ("c", "us")):
        for field in ("usage_user", "usage_system"):
            pts, t = [], T0 * 1000
            while t < (T0 + HOURS * 3600) * 1000:
                in_gap = host == "c" and (T0 + 3000) * 1000 <= t < (T0 + 3900) * 1000
                if not in_gap:
                    pts.append((t + rnd.randint(0, 500), round(rnd.uniform(0, 100), 4)))
                t += 10000
            series.append(("cpu", {"host": host, "region": region}, field, pts))
    # a sparse gauge with one sample a minute, and one that stops half-way
    for host in ("a", "b", "c"):
        pts, t = [], T0 * 1000
        stop = (T0 + (HOURS * 3600 if host != "b" else 5000)) * 1000
        while t < stop:
            pts.append((t, float(rnd.randint(1000, 100000))))
            t += 60000
        series.append(("mem", {"host": host}, "used_bytes", pts))
    return series


def fmt_lp_value(v):
    return repr(float(v))


def write_data(series, work, metrond_url):
    lines = []
    om = []
    for meas, tags, field, pts in series:
        tagstr = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(tags.items()))
        name = f"{meas}_{field}"
        for ts, v in pts:
            lines.append(f"{meas},{tagstr} {field}={fmt_lp_value(v)} {ts * 1000000}")
            om.append((ts, f"{name}{{{labels}}} {fmt_lp_value(v)} {ts / 1000:.3f}"))
    body = ("\n".join(lines) + "\n").encode()
    for i in range(0, len(lines), 20000):
        chunk = ("\n".join(lines[i:i + 20000]) + "\n").encode()
        req = urllib.request.Request(metrond_url + "/write?db=metron&precision=ns", data=chunk, method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 204, r.status
    om.sort(key=lambda x: x[0])
    path = os.path.join(work, "data.om")
    with open(path, "w") as f:
        f.write("\n".join(x[1] for x in om) + "\n# EOF\n")
    return path, len(body)


def wait_for(url, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up at {url}")


def get(base, path, params):
    url = base + path + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"status": "error", "error": body.decode(errors="replace")}


def num(s):
    return float(s)  # "NaN", "+Inf", "-Inf" parse too


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def key(metric):
    return tuple(sorted(metric.items()))


def compare(prom, met):
    """None when equal, else why not."""
    ps, pj = prom
    ms, mj = met
    if pj.get("status") != "success":
        if mj.get("status") == "success":
            return f"Prometheus refused ({pj.get('errorType')}: {pj.get('error')}), Metron answered"
        return None
    if mj.get("status") != "success":
        return f"Metron refused: {ms} {mj.get('errorType')}: {mj.get('error')}"
    pd, md = pj["data"], mj["data"]
    if pd["resultType"] != md["resultType"]:
        return f"resultType {pd['resultType']} vs {md['resultType']}"
    t = pd["resultType"]
    if t in ("scalar", "string"):
        pr, mr = pd["result"], md["result"]
        if pr[0] != mr[0]:
            return f"time {pr[0]} vs {mr[0]}"
        if t == "string":
            return None if pr[1] == mr[1] else f"{pr[1]!r} vs {mr[1]!r}"
        return None if close(num(pr[1]), num(mr[1])) else f"{pr[1]} vs {mr[1]}"
    pm = {key(s["metric"]): s for s in pd["result"]}
    mm = {key(s["metric"]): s for s in md["result"]}
    if len(pm) != len(pd["result"]) or len(mm) != len(md["result"]):
        return "duplicate label sets in an answer"
    if set(pm) != set(mm):
        return f"series differ: only Prometheus {sorted(set(pm) - set(mm))[:3]}, only Metron {sorted(set(mm) - set(pm))[:3]}"
    for k in pm:
        pv = pm[k].get("values") or [pm[k]["value"]]
        mv = mm[k].get("values") or [mm[k]["value"]]
        if len(pv) != len(mv):
            return f"{dict(k)}: {len(pv)} samples vs {len(mv)}"
        for (pt, px), (mt, mx) in zip(pv, mv):
            if pt != mt:
                return f"{dict(k)}: time {pt} vs {mt}"
            if not close(num(px), num(mx)):
                return f"{dict(k)} at {pt}: {px} vs {mx}"
    return None


def tenant_check(metrond, work):
    """The Prometheus API reads as the token's tenant, like every read (RELIABILITY 12)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(os.path.join(work, "tokens"), "w") as f:
        for tenant, tok in (("tenant-a", "tok-a"), ("tenant-b", "tok-b"), ("*", "tok-s")):
            h = subprocess.run([metrond, "--hash-token"], input=tok, capture_output=True, text=True,
                               check=True).stdout.strip()
            f.write(f"{tenant} {h}\n")
    log = open(os.path.join(work, "metrond-tokens.log"), "w")
    p = subprocess.Popen([metrond, "--data", os.path.join(work, "data-tokens"), "--http",
                          f"127.0.0.1:{port}", "--lp-tcp", "off", "--lp-udp", "off",
                          "--tokens-file", os.path.join(work, "tokens"), "--retention-interval", "0",
                          "--compact-interval", "0"], stdout=log, stderr=log)
    failures = []
    try:
        wait_for(url + "/health", 30, "metrond with tokens")
        now = int(time.time())

        def call(tok, path, params, data=None):
            req = urllib.request.Request(url + path + ("?" + urllib.parse.urlencode(params) if params else ""),
                                         data=data, method="POST" if data else "GET")
            if tok:
                req.add_header("Authorization", f"Bearer {tok}")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    body = r.read()
                    return r.status, json.loads(body) if body else None
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")

        for tok, v in (("tok-a", 1), ("tok-b", 2)):
            st, _ = call(tok, "/write", {"db": "x", "precision": "s"}, f"cpu,host=h usage={v} {now}\n".encode())
            assert st == 204, st
        want = {"tok-a": (["tenant-a"], "1"), "tok-b": (["tenant-b"], "2"),
                "tok-s": (["tenant-a", "tenant-b"], None)}
        for tok, (tenants, value) in want.items():
            st, j = call(tok, "/prometheus/api/v1/query", {"query": 'cpu_usage{business_id=~".+"}', "time": now})
            got = sorted(r["metric"]["business_id"] for r in j["data"]["result"]) if st == 200 else j
            if got != tenants:
                failures.append(f"{tok} query sees {got}, not {tenants}")
            if value and st == 200 and j["data"]["result"][0]["value"][1] != value:
                failures.append(f"{tok} reads {j['data']['result'][0]['value'][1]}, not {value}")
            st, j = call(tok, "/prometheus/api/v1/label/business_id/values", {})
            if st != 200 or j["data"] != tenants:
                failures.append(f"{tok} label values {st} {j}, not {tenants}")
            st, j = call(tok, "/prometheus/api/v1/series", {"match[]": '{business_id="tenant-b"}'})
            seen = [s["business_id"] for s in j["data"]] if st == 200 else j
            if seen != (["tenant-b"] if tok != "tok-a" else []):
                failures.append(f"{tok} series of tenant-b: {seen}")
        st, _ = call(None, "/prometheus/api/v1/query", {"query": "cpu_usage"})
        if st != 401:
            failures.append(f"no token: {st}, not 401")
    finally:
        p.terminate()
        p.wait(timeout=20)
    return failures


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: test_promql_compare.py METROND CORPUS [--keep]")
    metrond, corpus = sys.argv[1], sys.argv[2]
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise SystemExit("test_promql_compare: no prometheus/promtool (tools/setup.sh installs them)")
    queries = []
    with open(corpus) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                queries.append(line)
    work = tempfile.mkdtemp(prefix="metron-promql.")
    procs = []
    try:
        mport, pport = free_port(), free_port()
        murl, purl = f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{pport}"
        mlog = open(os.path.join(work, "metrond.log"), "w")
        procs.append(subprocess.Popen(
            [metrond, "--data", os.path.join(work, "data"), "--http", f"127.0.0.1:{mport}",
             "--lp-tcp", "off", "--lp-udp", "off", "--retention-interval", "0",
             "--compact-interval", "0", "--max-future", "0"], stdout=mlog, stderr=mlog))
        wait_for(murl + "/health", 30, "metrond")
        om, _ = write_data(gen_points(), work, murl)
        blocks = os.path.join(work, "prom")
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks],
                       check=True, stdout=subprocess.DEVNULL)
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {}\n")
        plog = open(os.path.join(work, "prometheus.log"), "w")
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={blocks}",
             f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=100y"],
            stdout=plog, stderr=plog))
        wait_for(purl + "/-/ready", 60, "prometheus")

        instants = [T0 + 3600, T0 + 1800.5, T0 + 3300, T0 + 5400.25, T0 + 7200 + 7.123]
        ranges = [(T0 + 600, T0 + 3 * 3600 - 600, 60), (T0 + 2900.5, T0 + 4000, 37)]
        checks = failed = nonempty = 0

        def tally(p, why):
            nonlocal nonempty
            d = p[1].get("data") or {}
            if not why and p[1].get("status") == "success" and (
                    d.get("result") if isinstance(d, dict) else d):
                nonempty += 1
        for q in queries:
            for t in instants:
                checks += 1
                p = get(purl, "/api/v1/query", {"query": q, "time": t})
                m = get(murl, "/prometheus/api/v1/query", {"query": q, "time": t})
                why = compare(p, m)
                tally(p, why)
                if why:
                    failed += 1
                    print(f"not ok - query {q!r} time={t}: {why}")
            for s, e, st in ranges:
                checks += 1
                params = {"query": q, "start": s, "end": e, "step": st}
                p = get(purl, "/api/v1/query_range", params)
                m = get(murl, "/prometheus/api/v1/query_range", params)
                why = compare(p, m)
                tally(p, why)
                if why:
                    failed += 1
                    print(f"not ok - query_range {q!r} {s}..{e} step {st}: {why}")
        # the listings, POST form bodies and the error envelope, as Prometheus answers them
        def post(base, path, params):
            req = urllib.request.Request(base + path, data=urllib.parse.urlencode(params).encode(),
                                         method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        api = [
            ("/api/v1/series", [("match[]", "cpu_usage_user"), ("match[]", "mem_used_bytes{host!=\"a\"}")]),
            ("/api/v1/series", [("match[]", '{__name__=~".+"}'), ("start", T0 + 6000), ("end", T0 + 7000)]),
            ("/api/v1/labels", []),
            ("/api/v1/labels", [("match[]", "mem_used_bytes")]),
            ("/api/v1/label/host/values", []),
            ("/api/v1/label/__name__/values", []),
            ("/api/v1/label/region/values", [("match[]", "cpu_usage_user{host=\"c\"}")]),
            ("/api/v1/query", [("query", "sum(rate(http_requests_total[5m]))"), ("time", T0 + 3600)]),
            ("/api/v1/query_range", [("query", "cpu_usage_user"), ("start", T0), ("end", T0 + 600), ("step", "1m")]),
        ]
        for path, params in api:
            # Prometheus takes POST on query, query_range, series and labels, not on label values
            for how in (get, post) if "/label/" not in path else (get,):
                checks += 1
                p, m = how(purl, path, params), how(murl, "/prometheus" + path, params)
                if "query" in path:
                    why = compare(p, m)
                elif p[1].get("status") != "success" or m[1] != p[1]:
                    why = f"{p} vs {m}"
                else:
                    why = None
                tally(p, why)
                if why:
                    failed += 1
                    print(f"not ok - {how.__name__} {path} {params}: {why}")
        refusals = [
            ("/api/v1/query", [("query", "rate(")]),
            ("/api/v1/query", [("query", "1 > 2")]),
            ("/api/v1/query", [("time", T0)]),
            ("/api/v1/query_range", [("query", "up"), ("start", T0), ("end", T0 - 1), ("step", 10)]),
            ("/api/v1/query_range", [("query", "up"), ("start", T0), ("end", T0 + 86400 * 2), ("step", 10)]),
            ("/api/v1/query_range", [("query", "up"), ("start", T0), ("end", T0 + 60), ("step", 0)]),
            ("/api/v1/query", [("query", "up"), ("time", "not-a-time")]),
            ("/api/v1/series", []),
        ]
        for path, params in refusals:
            checks += 1
            p, m = get(purl, path, params), get(murl, "/prometheus" + path, params)
            if p[0] != m[0] or p[1].get("errorType") != m[1].get("errorType") or m[1].get("status") != "error":
                failed += 1
                print(f"not ok - refusal {path} {params}: Prometheus {p[0]} {p[1]}, Metron {m[0]} {m[1]}")
            else:
                nonempty += 1
        for why in tenant_check(metrond, work):
            failed += 1
            print(f"not ok - tenants: {why}")
        print(f"{len(queries)} queries, {checks} comparisons ({nonempty} equal and not empty), "
              f"{failed} differ")
        # a corpus that only ever compares empty answers or errors proves nothing
        if failed or nonempty < checks // 2:
            sys.exit(1)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if "--keep" in sys.argv:
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
