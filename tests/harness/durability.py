#!/usr/bin/env python3
"""Durability loops for metrond (docs/testing.md).

  durability.py powercut --model ordered|strict --iterations N BUILD_BIN_ARGS
  durability.py kill9 --iterations N ...
  durability.py readers --iterations N ...

with --metrond PATH --metron PATH [--shim powercut.so] [--workdir DIR] [--seed S].

powercut: each iteration starts metrond under the power-cut shim
(tests/harness/powercut.c) on the data directory the previous cut left, a
client writes batches of unique points over HTTP (the current hour and the
six before it, so sealed hours are re-sealed by backfill, --grace 1) and
records those answered 204; the shim cuts the power at a random moment (a
random count of file-system calls, or a random time), writes what the model
lets survive, and the process is gone. That directory replaces the data
directory; `metron export --data` must hold every acknowledged point exactly
once with its value, and no point with a value it was never written with.
Every --chain iterations the data directory starts afresh (bounds the
export's size); at the end of each chain metrond is started without the shim,
stopped, and the check is made again.

kill9: the same with SIGKILL at a random moment and no shim.

readers: metrond (no shim) re-sealing backfilled hours while `metron export
--data` and `metron query --data` run N times beside it: no read may die of
a signal or a sanitizer report; each answer is correct (every point
acknowledged before it started, exactly once, right values) or an error that
says what it is about (exit 1 and a message).

Prints one summary line and exits 1 on any loss, duplicate, alteration,
crash or failed start.
"""
import argparse
import faulthandler
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from free_port import free_port  # noqa: E402  (below the ephemeral range: why in there)

HOUR_NS = 3600 * 10**9
SERIES = 16
BATCH = 200
BACK_HOURS = 6


class Points:
    """Point c is series s{c % SERIES} at hour_start + c ns with value c."""

    def __init__(self, seed, batch=BATCH):
        self.rng = random.Random(seed)
        self.size = batch
        self.next = 1
        self.acked = {}  # (series, ts) -> value
        self.sent = {}  # (series, ts) -> value, every point ever sent
        now = time.time_ns()
        self.hour0 = now - now % HOUR_NS

    def batch(self):
        lines, keys = [], []
        for _ in range(self.size):
            c = self.next
            self.next += 1
            h = 0 if self.rng.random() < 0.3 else self.rng.randint(1, BACK_HOURS)
            ts = self.hour0 - h * HOUR_NS + c
            key = ("s%d" % (c % SERIES), ts)
            lines.append("pc,s=%s v=%di %d" % (key[0], c, ts))
            keys.append((key, c))
            self.sent[key] = c
        return "\n".join(lines).encode(), keys


def wait_ready(proc, port, deadline_s=20):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            ok = c.getresponse().status == 204
            c.close()
            if ok:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def writer(port, pts, stop, lock, pause=0.0):
    """Writes batches until stop is set or metrond is gone; records the 204s."""
    conn = None
    while not stop.is_set():
        with lock:
            body, keys = pts.batch()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/write?db=metron", body=body)
            r = conn.getresponse()
            r.read()
            if r.status == 204:
                with lock:
                    for key, v in keys:
                        pts.acked[key] = v
            elif r.status >= 500:
                time.sleep(0.01)
            if pause:
                time.sleep(pause)
        except (OSError, http.client.HTTPException):
            if conn:
                conn.close()
            conn = None
            return


def start_metrond(args, data, port, env_extra=None, log=None):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    if env_extra:
        env.update(env_extra)
    cmd = [args.metrond, "--data", data, "--http", "127.0.0.1:%d" % port, "--lp-tcp", "off",
           "--lp-udp", "off", "--grace", "1", "--compact-interval", "2",
           "--retention-interval", "0"] + args.metrond_arg
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def export(args, data):
    p = subprocess.run([args.metron, "export", "--data", data, "pc"], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def sanitizer_report(text):
    return "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text


def check(pts, out, acked=None):
    """(lost, duplicated, altered) of the acknowledged points (default pts.acked) in an export."""
    seen = {}
    altered = 0
    for line in out.splitlines():
        if not line.startswith("pc,"):
            continue
        head, field, ts = line.split(" ")
        key = (head.split("s=", 1)[1], int(ts))
        v = int(field[2:].rstrip("i"))
        seen[key] = seen.get(key, 0) + 1
        if key[1] % HOUR_NS != v:  # point c is at hour_start + c ns with value c
            altered += 1
    lost = [k for k in (pts.acked if acked is None else acked) if k not in seen]
    dup = [k for k, n in seen.items() if n > 1]
    return lost, dup, altered


class Tally:
    def __init__(self):
        self.cuts = self.acked = self.lost = self.dup = self.altered = self.failed = 0
        self.notes = []
        self.mid_seal = 0  # cuts with a .tmp hour file or two generations of an hour on disk
        self.how = {}  # powercut: "count" or "timer" cuts, from POWERCUT_OUT.done

    def note(self, text):
        self.notes.append(text)
        print(text, file=sys.stderr)


def verify(args, tally, pts, data, what):
    rc, out, err = export(args, data)
    if rc == 1 and "no Metron data there" in err and not sanitizer_report(err):
        out = ""  # the index never became durable: fine while nothing was acknowledged
    elif rc != 0 or sanitizer_report(err):
        tally.failed += 1
        tally.note("%s: metron export failed (exit %d): %s" % (what, rc, err.strip()[-2000:]))
        return False
    lost, dup, altered = check(pts, out)
    if lost or dup or altered:
        tally.note("%s: %d lost (e.g. %s), %d duplicated (e.g. %s), %d altered" %
                   (what, len(lost), lost[:5], len(dup), dup[:5], altered))
        shutil.copytree(data, os.path.join(args.workdir, "evidence-%d" % tally.cuts),
                        dirs_exist_ok=True)
    tally.lost += len(lost)
    tally.dup += len(dup)
    tally.altered += altered
    return not (lost or dup or altered)


def in_seal(data):
    """Whether the live directory shows a seal under way: a temporary hour file, or an
    hour with two generations (published, the old one not yet unlinked)."""
    hours = {}
    for d, _, fs in os.walk(data):
        for f in fs:
            if f.endswith(".tmp"):
                return True
            if f.endswith(".blk"):
                h = os.path.join(d, f.split(".")[0])
                hours[h] = hours.get(h, 0) + 1
    return any(n > 1 for n in hours.values())


def clean_start_stop(args, tally, data, what):
    """metrond without the shim on the directory: must start, and stop with 0."""
    port = free_port()
    logp = os.path.join(args.workdir, "clean.log")
    with open(logp, "w") as log:
        p = start_metrond(args, data, port, log=log)
        ready = wait_ready(p, port)
        if ready:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    text = open(logp).read()
    if not ready or rc != 0 or sanitizer_report(text):
        tally.failed += 1
        tally.note("%s: metrond without the shim did not start and stop cleanly (exit %s):\n%s"
                   % (what, rc, text[-3000:]))


def run_cuts(args, mode):
    rng = random.Random(args.seed)
    tally = Tally()
    data = os.path.join(args.workdir, "data")
    pts = None
    for it in range(args.iterations):
        if it % 50 == 49:
            print("%d iterations, %d acknowledged points so far" % (it + 1, tally.acked),
                  file=sys.stderr)
        if it % args.chain == 0:
            if pts is not None:
                clean_start_stop(args, tally, data, "chain end %d" % it)
                verify(args, tally, pts, data, "chain end %d" % it)
                tally.acked += len(pts.acked)
            shutil.rmtree(data, ignore_errors=True)
            os.makedirs(data)
            pts = Points(rng.random())
        port = free_port()
        env = {}
        store = os.path.join(args.workdir, "store")
        out = os.path.join(args.workdir, "out")
        shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        if os.path.exists(out + ".done"):
            os.unlink(out + ".done")
        when = rng.uniform(0.05, args.max_run)
        if mode == "powercut":
            env = {"LD_PRELOAD": args.shim, "POWERCUT_DIR": data, "POWERCUT_STORE": store,
                   "POWERCUT_OUT": out, "POWERCUT_MODEL": args.model,
                   "POWERCUT_AT_MS": str(int(when * 1000) + 200)}
            if rng.random() < 0.5:  # a random call: also cuts in recovery and inside seals
                env["POWERCUT_AFTER"] = str(rng.randint(1, args.max_calls))
        logp = os.path.join(args.workdir, "metrond.log")
        with open(logp, "w") as log:
            proc = start_metrond(args, data, port, env, log)
            stop, lock = threading.Event(), threading.Lock()
            if wait_ready(proc, port):
                t0 = time.monotonic()
                ws = [threading.Thread(target=writer, args=(port, pts, stop, lock))
                      for _ in range(2)]
                for w in ws:
                    w.start()
                if mode == "kill9":
                    while time.monotonic() - t0 < when and proc.poll() is None:
                        time.sleep(0.005)
                    proc.kill()
                try:
                    rc = proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rc = proc.wait()
                stop.set()
                for w in ws:
                    w.join()
            else:
                rc = proc.wait(timeout=60)
        text = open(logp).read()
        tally.cuts += 1
        expected = 42 if mode == "powercut" else -signal.SIGKILL
        if rc != expected or sanitizer_report(text):
            tally.failed += 1
            tally.note("iteration %d: metrond ended with %s, not %s:\n%s" %
                       (it, rc, expected, text[-3000:]))
            break
        if in_seal(data):
            tally.mid_seal += 1
        if mode == "powercut":
            how = open(out + ".done").read().split(" ")[0] if os.path.exists(out + ".done") else "?"
            tally.how[how] = tally.how.get(how, 0) + 1
            shutil.rmtree(data)
            os.rename(out, data)
        if not verify(args, tally, pts, data, "iteration %d" % it):
            break
    if pts is not None:
        if not (tally.failed or tally.lost or tally.dup or tally.altered):
            clean_start_stop(args, tally, data, "last chain")
            verify(args, tally, pts, data, "last chain")
        tally.acked += len(pts.acked)
    name = "powercut (%s)" % args.model if mode == "powercut" else "kill -9"
    print("%s: %d cuts, %d acknowledged points, %d lost, %d duplicated, %d altered, "
          "%d failed runs (%d cuts inside a seal%s)" %
          (name, tally.cuts, tally.acked, tally.lost, tally.dup, tally.altered, tally.failed,
           tally.mid_seal, "".join(", %d by %s" % (n, k) for k, n in sorted(tally.how.items()))))
    return 0 if not (tally.lost or tally.dup or tally.altered or tally.failed) else 1


def run_readers(args):
    rng = random.Random(args.seed)
    data = os.path.join(args.workdir, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    # Small, paced batches: every commit still makes old hours due again (a re-seal), while
    # the data a read must go through stays small over a long run.
    pts = Points(rng.random(), batch=20)
    port = free_port()
    logp = os.path.join(args.workdir, "metrond.log")
    log = open(logp, "w")
    proc = start_metrond(args, data, port, log=log)
    if not wait_ready(proc, port):
        print("readers: metrond did not start:\n" + open(logp).read()[-3000:])
        return 1
    stop, lock = threading.Event(), threading.Lock()
    ws = [threading.Thread(target=writer, args=(port, pts, stop, lock, 0.05)) for _ in range(2)]
    for w in ws:
        w.start()
    time.sleep(0.5)
    correct = errors = crashes = wrong = 0
    messages = {}
    frm = str((pts.hour0 - (BACK_HOURS + 1) * HOUR_NS) // 10**9)
    to = str((pts.hour0 + HOUR_NS) // 10**9)
    for i in range(args.iterations):
        if i % 100 == 99:
            print("%d reads, %d correct, %d errors so far" % (i + 1, correct, errors),
                  file=sys.stderr)
        with lock:
            acked = dict(pts.acked)
        if i % 2 == 0:
            cmd = [args.metron, "export", "--data", data, "pc"]
        else:
            cmd = [args.metron, "query", "--data", data, "pc.v", "--from", frm, "--to", to,
                   "--step", "1h", "--agg", "count", "--by", "none", "--format", "csv"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if p.returncode < 0 or p.returncode > 1 or sanitizer_report(p.stderr):
            crashes += 1
            print("read %d (%s): exit %d\n%s" % (i, cmd[1], p.returncode, p.stderr[-3000:]),
                  file=sys.stderr)
            continue
        if p.returncode == 1:
            msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "(no message)"
            if msg == "(no message)":
                wrong += 1
            errors += 1
            messages[msg] = messages.get(msg, 0) + 1
            continue
        if cmd[1] == "export":
            lost, dup, altered = check(pts, p.stdout, acked)
            ok = not (lost or dup or altered)
        else:
            total = 0
            for line in p.stdout.splitlines()[1:]:
                cells = line.split(",")
                try:
                    total += int(float(cells[-1]))
                except (ValueError, IndexError):
                    pass
            with lock:
                sent = len(pts.sent)
            ok = len(acked) <= total <= sent
        if ok:
            correct += 1
        else:
            wrong += 1
            print("read %d (%s): a wrong answer" % (i, cmd[1]), file=sys.stderr)
    stop.set()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    for w in ws:
        w.join()
    log.close()
    text = open(logp).read()
    gens = [int(f.split(".")[1]) for _, _, fs in os.walk(data) for f in fs if f.endswith(".blk")]
    if rc != 0 or sanitizer_report(text):
        crashes += 1
        print("metrond ended with %s:\n%s" % (rc, text[-3000:]), file=sys.stderr)
    for msg, n in sorted(messages.items(), key=lambda x: -x[1]):
        print("  %d x %s" % (n, msg))
    print("readers beside a re-sealing metrond: %d reads, %d correct, %d errors, %d wrong, "
          "%d crashes (%d acknowledged points, hour files up to generation %d)" %
          (args.iterations, correct, errors, wrong, crashes, len(pts.acked), max(gens or [0])))
    return 0 if not (crashes or wrong) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["powercut", "kill9", "readers"])
    ap.add_argument("--model", choices=["ordered", "strict"], default="strict")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--chain", type=int, default=10, help="iterations on one data directory")
    ap.add_argument("--max-run", type=float, default=1.5, help="seconds before the latest cut")
    ap.add_argument("--max-calls", type=int, default=80,
                    help="largest file-system call count a cut is placed at")
    ap.add_argument("--metrond", required=True)
    ap.add_argument("--metron", required=True)
    ap.add_argument("--shim")
    ap.add_argument("--metrond-arg", action="append", default=[],
                    help="one more argument for metrond (repeat), e.g. --metrond-arg=--sync "
                    "--metrond-arg=false to see the loop catch losses")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    faulthandler.register(signal.SIGUSR1)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    print("seed %d" % args.seed, file=sys.stderr)
    own = args.workdir is None
    if own:
        args.workdir = tempfile.mkdtemp(prefix="metron-%s." % args.mode)
    os.makedirs(args.workdir, exist_ok=True)
    args.workdir = os.path.abspath(args.workdir)
    if args.mode == "powercut" and not args.shim:
        ap.error("powercut needs --shim")
    rc = run_readers(args) if args.mode == "readers" else run_cuts(args, args.mode)
    if own and rc == 0 and not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    elif rc:
        print("evidence kept in %s" % args.workdir, file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
