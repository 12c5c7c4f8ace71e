"""A loopback port free for TCP and UDP now, below the kernel's ephemeral range.

A port the kernel hands out (bind to 0) lies in the ephemeral range (32768 on), where any
outgoing connection may take it before the daemon binds it; a test's own thousand clients
did once. One chosen below that range can only collide with another test's listener, and the
bind check makes that a narrow race.

Run as a script (tests/support/testlib.sh), it prints one port and takes --owner PID: the ports
given to that process before are kept in a file named after it and not given again (a shell
test picks all its ports before it starts what binds them); files of processes gone are
removed on the way.
"""
import os
import random
import socket
import sys
import tempfile

_given = set()


def free_port():
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(10000, 32000)
        if port in _given:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _given.add(port)
        return port
    raise RuntimeError("no free loopback port in [10000, 32000)")


def _owner_file(pid):
    d = os.path.join(tempfile.gettempdir(), "metron-test-ports")
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.isdigit() and not os.path.exists(f"/proc/{name}"):
            try:
                os.unlink(os.path.join(d, name))
            except OSError:
                pass
    return os.path.join(d, str(pid))


if __name__ == "__main__":
    path = None
    if len(sys.argv) == 3 and sys.argv[1] == "--owner":
        path = _owner_file(int(sys.argv[2]))
        if os.path.exists(path):
            with open(path) as f:
                _given.update(int(x) for x in f.read().split())
    port = free_port()
    if path:
        with open(path, "a") as f:
            f.write(f"{port}\n")
    print(port)
