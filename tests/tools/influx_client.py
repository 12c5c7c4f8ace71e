"""Writes points to metrond with Debian's python3-influxdb (InfluxDB 1.x client).

usage: influx_client.py HOST PORT [USERNAME PASSWORD]
With a username and password the client sends HTTP Basic auth, as any
InfluxDB 1.x client configured with credentials does (metrond takes the
password as the token). Exits non-zero if the client raises: it expects
exactly 204 from /write.
"""
import sys

from influxdb import InfluxDBClient

host, port = sys.argv[1], int(sys.argv[2])
creds = {"username": sys.argv[3], "password": sys.argv[4]} if len(sys.argv) > 4 else {}
client = InfluxDBClient(host=host, port=port, database="metron", **creds)
version = client.ping()
assert version, "ping returned no version"
points = [
    {
        "measurement": "py",
        "tags": {"host": "p"},
        "time": 1735689600 + i,
        "fields": {"load": i / 4},
    }
    for i in range(100)
]
# two batches: the client splits by batch_size
assert client.write_points(points, time_precision="s", batch_size=60)
print("python3-influxdb %s: wrote %d points, server version %s" % (
    getattr(sys.modules["influxdb"], "__version__", "?"), len(points), version))
