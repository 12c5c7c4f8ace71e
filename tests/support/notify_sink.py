#!/usr/bin/env python3
"""notify_sink.py SOCKET OUT: systemd's side of sd_notify, for tests where systemd is not PID 1.

Binds a Unix datagram socket at SOCKET (writable by anyone: the daemon may run as another
user), appends each message to OUT as it arrives (one line per message, newlines inside a
message as ';'), and exits after STOPPING=1 or after 300 s.
"""
import os
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.settimeout(1.0)
deadline = time.monotonic() + 300
with open(out, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while time.monotonic() < deadline:
        try:
            msg = s.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            continue
        f.write(msg.replace("\n", ";") + "\n")
        if "STOPPING=1" in msg.split("\n"):
            break
os.unlink(path)
