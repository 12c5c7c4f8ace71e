#!/usr/bin/env python3
"""Writes tests/fuzz/corpus/rw: seeds for fuzz_rw (run by hand when the decoder changes).

Each file is fuzz_rw's input: one mode byte (bit 0: the rest is the body as sent, a snappy
block; clear: the rest is a protobuf WriteRequest that fuzz_rw compresses), then the bytes.
The protobuf is encoded here by hand (field numbers of ingest/prom/*.proto)."""
import os
import struct
import sys


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    if wire == 2:
        return varint(num << 3 | 2) + varint(len(payload)) + payload
    if wire == 1:
        return varint(num << 3 | 1) + payload
    return varint(num << 3) + varint(payload)


def label(k, v):
    return field(1, 2, k.encode()) + field(2, 2, v.encode())


def sample(v, ms):
    return field(1, 1, struct.pack("<d", v)) + field(2, 0, ms)


def series(labels, samples):
    return b"".join(field(1, 2, label(k, v)) for k, v in labels) + b"".join(
        field(2, 2, sample(v, ms)) for v, ms in samples)


def request(*ts):
    return b"".join(field(1, 2, t) for t in ts)


def snappy_literal(raw):
    """A valid snappy block of raw as literals only (no library needed)."""
    out = bytearray(varint(len(raw)))
    for i in range(0, len(raw), 60):
        chunk = raw[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
up = series([("__name__", "up"), ("instance", "localhost:9090"), ("job", "prometheus")],
            [(1.0, 1700000000000)])
seeds = {
    "up": request(up),
    "two-series": request(up, series([("__name__", "prometheus_build_info"),
                                      ("version", "2.42.0")], [(1.0, 1700000000123)])),
    "unsorted-empty": request(series([("zone", "b"), ("__name__", "m"), ("e", "")], [(2.5, 5)])),
    "ooo-nan-stale": request(series([("__name__", "m")],
                                    [(3.0, 3000), (float("nan"), 1000), (stale, 2000)])),
    "tenant-label": request(series([("__name__", "m"), ("business_id", "other")], [(1.0, 1)])),
    "bad-names": request(series([("job", "x")], [(1.0, 1)]),
                         series([("__name__", "9m"), ("a-b", "c")], [(1.0, 1)]),
                         series([("__name__", "m"), ("__x", "c"), ("a", "1"), ("a", "2")],
                                [(1.0, 1)])),
    "ts-range": request(series([("__name__", "m")], [(1.0, -(1 << 63)), (1.0, (1 << 63) - 1)])),
    "many-labels": request(series([("__name__", "m")] + [("l%d" % i, "v") for i in range(300)],
                                  [(1.0, 1)])),
    "empty-labels": request(b"\x0a\x00" * 2000 + series([("__name__", "m")], [(1.0, 1)])),
    "metadata-field": request(up) + field(3, 2, b"\x08\x01\x12\x02up"),
    "truncated": request(up)[:-3],
}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "rw")
os.makedirs(out, exist_ok=True)
for name, raw in seeds.items():
    with open(os.path.join(out, "seed-pb-" + name), "wb") as f:
        f.write(b"\x00" + raw)
bodies = {
    "up": snappy_literal(request(up)),
    "bomb": varint(1 << 31) + b"\x00ab",
    "bad-header": b"\xff\xff\xff\xff\xff\xff",
    "short": snappy_literal(request(up))[:-4],
    "copy-before-start": varint(8) + b"\x01\x10",  # a copy of offset 16 with nothing yet
}
for name, body in bodies.items():
    with open(os.path.join(out, "seed-body-" + name), "wb") as f:
        f.write(b"\x03" + body)
