#!/usr/bin/env python3
"""
corrupt_trial.py - damage a populated data directory one way at a time and
classify what Metron's readers make of it (issue 16, item 7).

Builds a data dir once (metron-gen line protocol through `metron import
--data`), saves the answers of a set of readers on the intact dir, then for
each trial copies the dir, applies ONE damage to a random hour file
(blocks/**/*.blk) or to index.mdb:

  flip       one bit flipped at a random offset
  truncate   the file cut at a random length (0 .. size-1)
  delete     the file removed

runs the readers again (metron inspect, query, export, rollup --group and
--series, each with --data) and classifies the trial:

  crash     a reader died on a signal, printed a sanitizer report, or ran
            past the timeout
  silent    a reader exited 0 with an answer that differs from the intact
            dir's: a wrong answer served
  detected  a reader exited non-zero; "named" when every such error names
            the damaged file (its name, or index.mdb), "unnamed" otherwise
  harmless  every reader exited 0 with the intact answers

(crash, then silent, then detected: a trial where one reader refuses and
another serves a wrong answer is silent.) inspect's byte counts are left out
of the comparison: a truncated file is truthfully smaller.

Every trial is deterministic from its seed and can be replayed alone:
  corrupt_trial.py --metron ... --gen ... --replay flip:1000004
which keeps its copy and prints each reader's output.

Exit status: 1 when any trial crashed; with --strict also when any was
silent (LMDB values carry no checksum yet: the known gap, issue 16 item 2);
with --require-named also when a detection does not name its file. 0
otherwise; 2 on a setup failure.

  # CI (ctest corrupt_trial_short): 60 trials
  tests/harness/corrupt_trial.py --metron build/test/tools/metron \\
      --gen build/test/bench/metron-gen --trials 60 --seed 1
  # the long run (docs/RELIABILITY.md): 1,000 bit flips + 200 truncations
  tests/harness/corrupt_trial.py --metron build/test/tools/metron \\
      --gen build/test/bench/metron-gen --flips 1000 --truncations 200 \\
      --seed 1 --jobs 2 --log ct.jsonl
  # counts of a run cut short
  tests/harness/corrupt_trial.py --metron - --gen - --summarize ct.jsonl
"""
import argparse
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile

START = 1735689600  # passed to metron-gen as --start
SANITIZER = re.compile(
    r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|ThreadSanitizer"
)
KINDS = ("flip", "truncate", "delete")


def readers(hours):
    end = str(START + (hours + 1) * 3600)
    rng = ["--from", str(START), "--to", end]
    out = [("inspect", ["inspect"])]
    for m in ("cpu", "mem", "disk", "net"):
        out.append(
            (
                "query-" + m,
                ["query", m] + rng
                + ["--agg", "count,sum,stddev,p99,last", "--step", "1h", "--by", "hostname",
                   "--format", "csv"],
            )
        )
    out.append(("export-mem.used", ["export", "mem.used", "--format", "csv"]))
    out.append(("rollup-groups", ["rollup"] + rng + ["--group", "--format", "csv"]))
    out.append(("rollup-series", ["rollup"] + rng + ["--series", "--format", "csv"]))
    return out


def normalize(name, text):
    """What must match the intact answer: inspect without its paths and byte counts."""
    if name != "inspect":
        return text
    keep = []
    for line in text.splitlines():
        if line.startswith(("data directory", "bytes on disk", "bytes per point")):
            continue
        cols = line.split()
        if len(cols) == 4 and cols[0] != "measurement":
            line = " ".join(cols[:3])  # bytes/point depends on file sizes
        keep.append(line)
    return "\n".join(keep)


def run_reader(metron, args, data, timeout, env):
    cmd = [metron, args[0], "--data", data] + args[1:]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, b"", b"timeout after %ds" % timeout
    return p.returncode, p.stdout, p.stderr


def sanitizer_env(root):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    supp = os.path.join(root, "tests", "lsan.supp")
    if os.path.exists(supp):
        env.setdefault("LSAN_OPTIONS", "suppressions=" + supp)
    return env


def damage(rng, kind, data):
    """Apply one damage of this kind to a file of data; returns (target, what, path)."""
    blks = []
    for d, _, files in os.walk(os.path.join(data, "blocks")):
        blks += [os.path.join(d, f) for f in files if f.endswith(".blk")]
    blks.sort()
    if rng.random() < 0.5 or not blks:
        path, target = os.path.join(data, "index.mdb"), "index.mdb"
    else:
        path, target = rng.choice(blks), "hour"
    rel = os.path.relpath(path, data)
    size = os.path.getsize(path)
    if kind == "flip":
        off, bit = rng.randrange(size), rng.randrange(8)
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ (1 << bit)]))
        what = "%s: bit %d of byte %d (of %d) flipped" % (rel, bit, off, size)
    elif kind == "truncate":
        n = rng.randrange(size)
        os.truncate(path, n)
        what = "%s: truncated to %d of %d bytes" % (rel, n, size)
    else:
        os.unlink(path)
        what = "%s: deleted" % rel
    return target, what, path


def trial(cfg, kind, seed, keep=False):
    rng = random.Random("%s:%d" % (kind, seed))
    data = os.path.join(cfg.work, "t-%s-%d" % (kind, seed))
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(cfg.base, data)
    target, what, path = damage(rng, kind, data)
    name = os.path.basename(path)
    cls, notes, unnamed = "harmless", [], []
    for rname, args in cfg.readers:
        rc, out, err = run_reader(cfg.metron, args, data, cfg.timeout, cfg.env)
        errs = err.decode("utf-8", "replace")
        if keep:
            print("--- %s: exit %s\n%s" % (rname, rc, errs.strip()))
        if rc is None or rc < 0 or SANITIZER.search(errs):
            why = ("timeout" if rc is None else "signal %s" % signal.Signals(-rc).name
                   if rc < 0 else "sanitizer report")
            notes.append("%s: %s: %s" % (rname, why, first_lines(errs)))
            cls = "crash"
        elif rc != 0:
            if name not in errs:
                unnamed.append("%s: %s" % (rname, first_lines(errs)))
            if cls == "harmless":
                cls = "detected"
        elif normalize(rname, out.decode("utf-8", "replace")) != cfg.expected[rname]:
            notes.append("%s: exit 0, answer differs from the intact one" % rname)
            if cls != "crash":
                cls = "silent"
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    return {"kind": kind, "seed": seed, "target": target, "what": what, "class": cls,
            "notes": notes, "unnamed": unnamed}


def first_lines(s, n=2):
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return " | ".join(lines[:n])[:300]


def build_base(cfg):
    lp = os.path.join(cfg.work, "workload.lp")
    with open(lp, "wb") as f:
        subprocess.run([cfg.gen, "--hosts", str(cfg.hosts), "--hours", str(cfg.hours),
                        "--start", str(START)],
                       stdout=f, check=True)
    shutil.rmtree(cfg.base, ignore_errors=True)
    subprocess.run([cfg.metron, "import", "--data", cfg.base, lp], check=True,
                   stdout=subprocess.DEVNULL, env=cfg.env)
    os.unlink(lp)
    cfg.expected = {}
    for rname, args in cfg.readers:
        rc, out, err = run_reader(cfg.metron, args, cfg.base, cfg.timeout, cfg.env)
        if rc != 0:
            sys.exit("corrupt_trial: %s fails on the intact dir (exit %s): %s"
                     % (rname, rc, err.decode()[:500]))
        cfg.expected[rname] = normalize(rname, out.decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metron", required=True, help="the metron binary")
    ap.add_argument("--gen", required=True, help="the metron-gen binary")
    ap.add_argument("--trials", type=int, default=0,
                    help="a mix: 2/3 flips, 1/4 truncations, the rest deletions")
    ap.add_argument("--flips", type=int, default=0)
    ap.add_argument("--truncations", type=int, default=0)
    ap.add_argument("--deletions", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--hours", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=60, help="seconds per reader")
    ap.add_argument("--work", help="working directory (default: a temporary one, removed)")
    ap.add_argument("--strict", action="store_true", help="fail on silent wrong answers too")
    ap.add_argument("--require-named", action="store_true",
                    help="fail when a detection does not name the damaged file")
    ap.add_argument("--log", help="append each trial's result to this file as it ends (JSON lines)")
    ap.add_argument("--summarize", metavar="LOG",
                    help="print the counts of a --log file (of a run cut short) and exit")
    ap.add_argument("--replay", action="append", default=[],
                    help="KIND:SEED of one trial: run it alone, keep its copy, show the errors")
    cfg = ap.parse_args()
    if cfg.summarize:
        with open(cfg.summarize) as f:
            results = [json.loads(line) for line in f if line.strip()]
        results.sort(key=lambda r: (KINDS.index(r["kind"]), r["seed"]))
        report(results)
        return 1 if any(r["class"] == "crash" for r in results) else 0
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg.env = sanitizer_env(root)
    cfg.readers = readers(cfg.hours)
    own_work = not cfg.work
    cfg.work = cfg.work or tempfile.mkdtemp(prefix="corrupt_trial.")
    os.makedirs(cfg.work, exist_ok=True)
    cfg.base = os.path.join(cfg.work, "base")
    if cfg.trials:
        cfg.flips += cfg.trials * 2 // 3
        cfg.truncations += cfg.trials // 4
        cfg.deletions += cfg.trials - cfg.trials * 2 // 3 - cfg.trials // 4
    plan = []
    for kind, n in (("flip", cfg.flips), ("truncate", cfg.truncations),
                    ("delete", cfg.deletions)):
        plan += [(i / n, kind, cfg.seed * 1000003 + i) for i in range(n)]
    plan = [(k, s) for _, k, s in sorted(plan)]  # kinds interleaved: a cut run has each
    for r in cfg.replay:
        kind, _, seed = r.partition(":")
        if kind not in KINDS or not seed.isdigit():
            sys.exit("corrupt_trial: --replay takes KIND:SEED, e.g. flip:1000004")
    if not plan and not cfg.replay:
        sys.exit("corrupt_trial: nothing to do (--trials, --flips, --truncations, --deletions "
                 "or --replay)")
    build_base(cfg)
    print("corrupt_trial: %d readers, %s" % (len(cfg.readers), cfg.work), flush=True)
    for r in cfg.replay:
        kind, _, seed = r.partition(":")
        res = trial(cfg, kind, int(seed), keep=True)
        print("%s:%s %s -> %s %s" % (kind, seed, res["what"], res["class"],
                                     "; ".join(res["notes"] + res["unnamed"])))
    results = []
    log = open(cfg.log, "a") if cfg.log else None
    with concurrent.futures.ThreadPoolExecutor(max(1, cfg.jobs)) as ex:
        futs = [ex.submit(trial, cfg, k, s) for k, s in plan]
        for i, f in enumerate(concurrent.futures.as_completed(futs)):
            results.append(f.result())
            if log:
                log.write(json.dumps(results[-1]) + "\n")
                log.flush()
            if (i + 1) % 100 == 0:
                print("corrupt_trial: %d/%d trials" % (i + 1, len(plan)), flush=True)
    results.sort(key=lambda r: (KINDS.index(r["kind"]), r["seed"]))
    report(results)
    if own_work:
        shutil.rmtree(cfg.work, ignore_errors=True)
    crashes = sum(r["class"] == "crash" for r in results)
    silent = sum(r["class"] == "silent" for r in results)
    unnamed = sum(r["class"] == "detected" and bool(r["unnamed"]) for r in results)
    fail = crashes or (cfg.strict and silent) or (cfg.require_named and unnamed)
    return 1 if fail else 0


def report(results):
    if not results:
        return
    classes = ("detected", "harmless", "silent", "crash")
    print("\n%-26s %9s %9s %9s %9s %7s" % (("damage / target",) + classes + ("total",)))
    rows = {}
    for r in results:
        for key in ((r["kind"], r["target"]), (r["kind"], "all"), ("all", r["target"]),
                    ("all", "all")):
            rows.setdefault(key, {c: 0 for c in classes})[r["class"]] += 1
    for (kind, target), c in sorted(rows.items(), key=lambda kv: (
            kv[0][0] == "all", kv[0][0], kv[0][1] == "all", kv[0][1])):
        print("%-26s %9d %9d %9d %9d %7d" % (("%s / %s" % (kind, target),)
                                               + tuple(c[k] for k in classes)
                                               + (sum(c.values()),)))
    det = [r for r in results if r["class"] == "detected"]
    unnamed = [r for r in det if r["unnamed"]]
    print("\ndetected: %d name the damaged file, %d do not" % (len(det) - len(unnamed),
                                                              len(unnamed)))
    for r in unnamed[:20]:
        print("  unnamed  %s:%d  %s\n           %s" % (r["kind"], r["seed"], r["what"],
                                                   r["unnamed"][0]))
    if len(unnamed) > 20:
        print("  ... and %d more" % (len(unnamed) - 20))
    for cls in ("silent", "crash"):
        bad = [r for r in results if r["class"] == cls]
        if bad:
            print("\n%s (%d); replay with --replay KIND:SEED" % (cls, len(bad)))
        for r in bad:
            print("  %s:%d  %s\n           %s" % (r["kind"], r["seed"], r["what"],
                                              "; ".join(r["notes"])))


if __name__ == "__main__":
    sys.exit(main())
