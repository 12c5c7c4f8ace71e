#!/usr/bin/python3
"""An HTTP receiver for the script tests: Slack-, PagerDuty- or any other
HTTP-shaped channel (Python's standard library only).

    http_sink.py --port N --log FILE [--status 200]

Answers every POST with --status (PagerDuty's Events API answers 202) and
an empty JSON object, and appends one JSON line per request to FILE:
{"t" (time.time() when it arrived), "path", "content_type", "body" (the
request body, decoded as UTF-8), "json" (the body parsed, or null when it
is no JSON)}. Runs until killed.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--status", type=int, default=200)
    a = ap.parse_args()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length > 0 else b""
            body = raw.decode("utf-8", "replace")
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            line = json.dumps({"t": time.time(), "path": self.path,
                               "content_type": self.headers.get("Content-Type"),
                               "body": body, "json": doc})
            with lock, open(a.log, "a") as f:
                f.write(line + "\n")
            self.send_response(a.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, fmt, *args):  # the log file is the record
            pass

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
