#!/usr/bin/python3
"""webhook_receiver.py -- an example receiver of Metron's alert webhooks.

Only the Python standard library. It checks every request the way
docs/alerts.md asks a receiver to:

  1. X-Metron-Timestamp is within 300 s of this machine's clock (a stale
     request is refused: 400);
  2. X-Metron-Signature equals "sha256=" + hex HMAC-SHA256 of
     "<timestamp>.<raw body>" under the shared secret, compared in
     constant time (hmac.compare_digest; a mismatch is refused: 401);
  3. the body's "delivery" (signed) equals X-Metron-Delivery (400 if not);
  4. a delivery id seen before is a replay or a retry of something already
     handled: answered 200, so the sender stops retrying, but not
     processed again ("duplicate").

Then the notification is processed: here, printed as one JSON line.
Every decision is printed (and appended to --log) as a JSON line:
{"result": "accepted"|"duplicate"|"rejected", "reason": ..., "delivery": ...}.

  webhook_receiver.py --port 9000 --secret "$SECRET" [--bind 127.0.0.1] [--log FILE]

The secret may come from the environment instead (METRON_WEBHOOK_SECRET).
Seen ids are kept for twice the window: a replay older than that has a
stale timestamp anyway. Keep them in a shared store (a database table with
a unique key) when several processes receive.
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WINDOW_S = 300


class Seen:
    """Delivery ids handled in the last 2 x WINDOW_S seconds."""

    def __init__(self):
        self.ids = {}
        self.lock = threading.Lock()

    def first_time(self, delivery, now):
        with self.lock:
            for k in [k for k, t in self.ids.items() if now - t > 2 * WINDOW_S]:
                del self.ids[k]
            if delivery in self.ids:
                return False
            self.ids[delivery] = now
            return True


def check(secret, headers, body, seen, now=None):
    """(status, decision) for one request: the whole check, in order."""
    now = time.time() if now is None else now
    ts = headers.get("X-Metron-Timestamp", "")
    sig = headers.get("X-Metron-Signature", "")
    delivery = headers.get("X-Metron-Delivery", "")
    if not ts or not sig or not delivery:
        return 400, {"result": "rejected", "reason": "missing X-Metron headers"}
    try:
        when = int(ts)
    except ValueError:
        return 400, {"result": "rejected", "reason": "timestamp is not a number"}
    if abs(now - when) > WINDOW_S:
        return 400, {"result": "rejected", "reason": "stale timestamp", "delivery": delivery}
    want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want.encode(), sig.encode()):
        return 401, {"result": "rejected", "reason": "bad signature", "delivery": delivery}
    try:
        doc = json.loads(body)
    except ValueError:
        return 400, {"result": "rejected", "reason": "body is not JSON", "delivery": delivery}
    if doc.get("delivery") != delivery:
        return 400, {"result": "rejected", "reason": "delivery id mismatch", "delivery": delivery}
    if not seen.first_time(delivery, now):
        return 200, {"result": "duplicate", "reason": "replayed delivery id", "delivery": delivery}
    alert = doc.get("alert", {})
    return 200, {"result": "accepted", "delivery": delivery, "event": doc.get("event"),
                 "business_id": alert.get("business_id"), "series": alert.get("series"),
                 "bytes": len(body)}


def main():
    ap = argparse.ArgumentParser(description="an example receiver of Metron's webhooks")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--secret", default=os.environ.get("METRON_WEBHOOK_SECRET"))
    ap.add_argument("--log", help="append each decision here too (JSON lines)")
    args = ap.parse_args()
    if not args.secret:
        ap.error("--secret or METRON_WEBHOOK_SECRET is needed")
    secret = args.secret.encode()
    seen = Seen()
    out_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            status, decision = check(secret, self.headers, body, seen)
            line = json.dumps(decision, sort_keys=True)
            with out_lock:
                print(line, flush=True)
                if args.log:
                    with open(args.log, "a") as f:
                        f.write(line + "\n")
            answer = json.dumps(decision).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, fmt, *a):  # the decisions are the log
            pass

    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    print(json.dumps({"listening": "%s:%d" % (args.bind, args.port)}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
