#!/usr/bin/env python3
"""bench/compare's last step: checks every peer's answers against Metron's
and prints the markdown report (figures, ratios, agreement).

The answers are in --answers as SYSTEM.QUERY.N (the N-th request of that
query: VictoriaMetrics' Q1 takes one request per aggregation), the figures
in --figures as key=value lines (medians, in seconds and bytes)."""
import argparse
import datetime
import json
import math
import os

SYSTEMS = [("metron", "Metron"), ("victoria", "VictoriaMetrics"), ("influx", "InfluxDB"),
           ("postgres", "PostgreSQL (seed)")]
PEERS = SYSTEMS[1:]
AGGS = ["count", "avg", "min", "max", "p50", "p95", "p99"]


def hour_of(t):
    if isinstance(t, str):
        t = datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
    return int(t // 3600 * 3600)


def tags_of(series):
    """'cpu,a=1,b=2 field' -> ({'a': '1', 'b': '2'}, 'field')"""
    head, field = series.rsplit(" ", 1)
    tags = dict(kv.split("=", 1) for kv in head.split(",")[1:])
    return tags, field


class Answers:
    def __init__(self, d, start=0, hours=24):
        self.d, self.start, self.hours = d, int(start), int(hours)

    def json(self, sys, q, n=1):
        with open(os.path.join(self.d, f"{sys}.{q}.{n}")) as f:
            return json.load(f)

    def tsv(self, sys, q):
        with open(os.path.join(self.d, f"{sys}.{q}.1")) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]

    def has(self, sys, q):
        return os.path.exists(os.path.join(self.d, f"{sys}.{q}.1"))

    # ---- PromQL, Metron's and VictoriaMetrics': Prometheus' matrix -------------------------
    def prom(self, sys, q):
        """P1-P4 where the two semantics agree, keyed (labels, t) or, for topk, (t, rank)."""
        start = self.start
        if q == "P3":  # the check's own request, 1 ms earlier (compare's prom_get says why)
            q = "P3c"
        out = {}
        for s in self.json(sys, q)["data"]["result"]:
            # VictoriaMetrics 1.79 keeps __name__ on quantile_over_time, Prometheus drops it
            labels = tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
            for t, v in s["values"]:
                t = round(t * 1000)
                # rates: from a whole 5 minutes of samples on (Prometheus extrapolates a
                # partial window at the day's start and end, MetricsQL does not)
                if q in ("P1", "P4") and not start + 300 <= t // 1000 < start + self.hours * 3600:
                    continue
                if q == "P2":  # topk: the 5 values (ties may pick different series)
                    out.setdefault(t, []).append(float(v))
                else:
                    out[(labels, t)] = [float(v)]
        if q == "P2":  # (t, rank): the values, largest first
            out = {(t, i): [x] for t, v in out.items()
                   for i, x in enumerate(sorted(v, reverse=True))}
        return out

    # ---- Metron: {"columns": [...], "rows": [...]} -----------------------------------------
    def metron_rows(self, q):
        return self.json("metron", q)["rows"]

    def metron(self, q):
        if q.startswith("P"):
            return self.prom("metron", q)
        rows = self.metron_rows(q)
        if q == "Q1":
            out = {}
            for r in rows:
                tags, field = tags_of(r[1])
                out[(field, tags["hostname"], hour_of(r[0]))] = r[2:9]
            return out
        if q == "Q1g":
            return {(r[3], r[1], hour_of(r[0])): r[4:11] for r in rows}
        if q == "Q2":
            return {int(datetime.datetime.fromisoformat(r[1].replace("Z", "+00:00")).timestamp()):
                    [r[2]] for r in rows}
        if q == "Q3":
            out = {}
            for r in rows:
                tags, field = tags_of(r[0])
                out[(field, tags["hostname"])] = [r[2]]
            return out
        if q == "Q4":
            return {(r[0], hour_of(r[1])): [r[2]] for r in rows}

    # ---- VictoriaMetrics: Prometheus API JSON, export JSON lines ---------------------------
    def victoria(self, q):
        if q.startswith("P"):
            return self.prom("victoria", q)
        if q == "Q1":
            out = {}
            for i in range(len(AGGS)):
                for s in self.json("victoria", q, i + 1)["data"]["result"]:
                    m = s["metric"]
                    field = m["__name__"][len("cpu_"):]
                    for t, v in s["values"]:
                        key = (field, m["hostname"], hour_of(round(t)) - 3600)
                        out.setdefault(key, [None] * len(AGGS))[i] = float(v)
            return out
        if q == "Q2":
            out = {}
            with open(os.path.join(self.d, "victoria.Q2.1")) as f:
                for line in f:
                    s = json.loads(line)
                    for t, v in zip(s["timestamps"], s["values"]):
                        out[t // 1000] = [v]
            return out
        if q == "Q3":
            return {(s["metric"]["__name__"][len("cpu_"):], s["metric"]["hostname"]):
                    [float(s["value"][1])] for s in self.json("victoria", q)["data"]["result"]}
        if q == "Q4":
            return {(s["metric"]["region"], hour_of(round(t)) - 3600): [float(v)]
                    for s in self.json("victoria", q)["data"]["result"] for t, v in s["values"]}
        return None

    # ---- InfluxDB 1.x: {"results": [{"series": [...]}]} -----------------------------------
    def influx_series(self, q):
        return self.json("influx", q)["results"][0].get("series", [])

    def influx(self, q):
        if q in ("Q1", "Q1g"):
            prefix = {"count": 0, "mean": 1, "min": 2, "max": 3, "median": 4, "percentile": 5}
            out = {}
            for s in self.influx_series(q):
                seen = set()
                where = []  # column -> (field, aggregate index)
                for c in s["columns"][1:]:
                    agg, field = c.split("_", 1)
                    i = prefix[agg]
                    if (agg, field) in seen:  # the second percentile() is p99
                        i = 6
                    seen.add((agg, field))
                    where.append((field, i))
                who = s["tags"]["hostname" if q == "Q1" else "business_id"]
                for row in s["values"]:
                    for (field, i), v in zip(where, row[1:]):
                        if v is not None:
                            out.setdefault((field, who, hour_of(row[0])), [None] * 7)[i] = v
            return out
        if q == "Q2":
            return {t: [v] for s in self.influx_series(q) for t, v in s["values"]}
        if q == "Q3":
            out = {}
            for s in self.influx_series(q):
                row = s["values"][0]
                for c, v in zip(s["columns"][1:], row[1:]):
                    out[(c[len("last_"):], s["tags"]["hostname"])] = [v]
            return out
        if q == "Q4":
            return {(s["tags"]["region"], hour_of(t)): [v]
                    for s in self.influx_series(q) for t, v in s["values"]}

    # ---- PostgreSQL: psql -At, tab separated -----------------------------------------------
    def postgres(self, q):
        rows = self.tsv("postgres", q)
        if q == "Q1g":
            return {(r[2], r[1], hour_of(float(r[0]))): [float(x) for x in r[3:10]] for r in rows}
        if q == "Q2":
            return {int(float(r[0])): [float(r[1])] for r in rows}
        if q == "Q3":
            return {(r[0], r[1]): [float(r[2])] for r in rows}
        if q == "Q4":
            return {(r[1], hour_of(float(r[0]))): [float(r[2])] for r in rows}
        return None


def agree(mine, theirs, names):
    """One sentence: do the two answers hold the same keys and values?"""
    if theirs is None:
        return None
    if not mine:
        return "Metron's answer is empty"
    only_m, only_t = set(mine) - set(theirs), set(theirs) - set(mine)
    if only_m or only_t:
        return f"different rows: {len(only_m)} only in Metron's, {len(only_t)} only in theirs"
    parts = []
    for i, name in enumerate(names):
        worst, equal = 0.0, True
        for k, mv in mine.items():
            a, b = mv[i], theirs[k][i]
            if a is None or b is None:
                if a != b:
                    return f"{name}: a value missing for {k}"
                continue
            if float(a) != float(b):
                equal = False
                rel = abs(float(a) - float(b)) / max(abs(float(a)), abs(float(b)), 1e-300)
                worst = max(worst, rel)
        parts.append((name, "equal" if equal else ("equal to 1e-12" if worst <= 1e-12 else
                                                     f"differ by up to {worst:.2%}")))
    # "count, min, max equal; p95 differ by up to 1.2%"
    groups = {}
    for name, verdict in parts:
        groups.setdefault(verdict, []).append(name)
    return f"{len(mine)} rows, the same; " + "; ".join(
        f"{', '.join(n)} {v}" for v, n in groups.items())


def fmt_secs(s):
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def main():
    ap = argparse.ArgumentParser()
    for a in ("figures", "answers", "points", "hosts", "hours", "start", "repeat",
              "query_repeat", "conns", "http_conns"):
        ap.add_argument("--" + a.replace("_", "-"), required=True)
    o = ap.parse_args()
    fig = {}
    with open(o.figures) as f:
        for line in f:
            k, v = line.rstrip("\n").split("=", 1)
            fig[k] = v
    points = int(o.points)
    have = [s for s, _ in SYSTEMS if f"{s}.ingest" in fig]
    names = dict(SYSTEMS)

    def num(k):
        return float(fig[k]) if k in fig else None

    lines = []
    p = lines.append
    when = datetime.datetime.utcfromtimestamp(int(o.start)).strftime("%Y-%m-%d %H:00")
    p(f"## Metron and its peers, {o.hosts} hosts x {o.hours} h of the devops workload")
    p("")
    p(f"{points:,} points from {when} UTC; medians of {o.repeat} ingest runs (a fresh server "
      f"each) and {o.query_repeat} query runs after a warm-up; `bench/compare --hosts {o.hosts} "
      f"--hours {o.hours} --repeat {o.repeat} --query-repeat {o.query_repeat} --conns {o.conns} "
      f"--http-conns {o.http_conns}`. Versions: " +
      ", ".join(f"{names[s]} {fig.get(s, '?')}" for s in have) + ".")
    p("")
    p("In each peer's cell, the factor is Metron's lead over that peer (its cost divided by "
      "Metron's; above 1: Metron ahead).")
    p("")
    p("| | " + " | ".join(names[s] for s in have) + " | target against the best peer |")
    p("|---" * (len(have) + 2) + "|")

    rows = [("ingest, points/s until durable and queryable", "ingest",
             lambda s: f"{points / s / 1e6:.2f}M", 1.5, "at least 1.5x faster"),
            ("bytes on disk per point, after compaction", "bytes",
             lambda b: f"{b / points:.2f}", 1.25, "at most 0.8x the bytes"),
            ("peak memory during ingest, MB", "rss", lambda b: f"{b / 1e6:.0f}", 1 / 0.6,
             "at most 0.6x the memory")]
    queries = [("Q1 hourly count/avg/min/max/p50/p95/p99, every cpu series, 24 h", "Q1"),
               ("Q1g the same per the seed view's group (business_id, field)", "Q1g"),
               ("Q2 one field of one host, every raw point, 24 h", "Q2"),
               ("Q3 the last value of every cpu series", "Q3"),
               ("Q4 cpu.usage_user hourly p95 by region, 24 h", "Q4"),
               ("P1 PromQL `rate(net_bytes_recv[5m])`, every host, 24 h at 60 s steps", "P1"),
               ("P2 PromQL `topk(5, cpu_usage_user)`, 24 h at 60 s steps", "P2"),
               ("P3 PromQL `quantile_over_time(0.95, cpu_usage_user[1h])`, 24 h at 60 s steps",
                "P3"),
               ("P4 PromQL `sum by (region) (rate(net_bytes_recv[5m]))`, 24 h at 60 s steps",
                "P4")]
    for label, q in queries:
        rows.append((label, q, fmt_secs, 2.0, "at least 2x faster"))
    verdicts = []
    for label, key, show, target, target_text in rows:
        mine = num(f"metron.{key}")
        cells, best = [], None
        for s in have:
            v = num(f"{s}.{key}")
            if v is None:
                cells.append("—")
                continue
            runs = fig.get(f"{s}.{key}.runs")
            note = " (1 run)" if runs == "1" else ""
            if s == "metron" or mine is None:
                cells.append(show(v) + note)
                continue
            lead = v / mine
            cells.append(f"{show(v)}{note} · {lead:.2f}x")
            if best is None or lead < best[0]:
                best = (lead, names[s])
        verdict = "—"
        if best:
            met = best[0] >= target
            verdict = f"{target_text}: {'met' if met else 'NOT met'} ({best[0]:.2f}x {best[1]})"
            verdicts.append((label, met, best))
        p(f"| {label} | " + " | ".join(cells) + f" | {verdict} |")
    if "postgres.refresh" in fig:
        p("")
        p(f"PostgreSQL's hourly rollups are its materialized view: REFRESH MATERIALIZED VIEW "
          f"took {fmt_secs(float(fig['postgres.refresh']))} after the load; Metron computes "
          f"its rollups while sealing each hour, inside the ingest time above.")

    # ---- agreement ----------------------------------------------------------------------
    ans = Answers(o.answers, o.start, o.hours)
    p("")
    p("### Do the answers agree with Metron's?")
    p("")
    cols = {"Q1": AGGS, "Q1g": AGGS, "Q2": ["value"], "Q3": ["last"], "Q4": ["p95"],
            "P1": ["rate"], "P2": ["the 5 values"], "P3": ["p95"], "P4": ["sum"]}
    for _, q in queries:
        if not ans.has("metron", q):
            continue
        mine = ans.metron(q)
        for s, name in PEERS:
            if not ans.has(s, q):
                continue
            theirs = getattr(ans, s)(q)
            verdict = agree(mine, theirs, cols[q])
            if verdict:
                p(f"- {q}, {name}: {verdict}")
    p("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
