#!/usr/bin/python3
"""A real SMTP server for the channel tests (Debian's python3-aiosmtpd).

    smtp_sink.py --port N --log FILE [--cert server.pem --key server.key]

Accepts every message and appends one JSON line per message to FILE:
{"mail_from", "rcpt_tos", "tls" (whether the session ran STARTTLS),
"data" (the message as received)}. With --cert and --key it offers
STARTTLS and refuses MAIL before it (require_starttls), so a client that
does not upgrade delivers nothing. Runs until killed.
"""
import argparse
import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        line = json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "data": envelope.content.decode("utf-8", "replace"),
        })
        with self.lock, open(self.path, "a") as f:
            f.write(line + "\n")
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    kw = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kw = {"tls_context": ctx, "require_starttls": True}
    c = Controller(Keep(a.log), hostname="127.0.0.1", port=a.port, **kw)
    c.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
