"""Writes points to metrond with Debian's python3-influxdb (InfluxDB 1.x client).

usage: influx_client.py HOST PORT [--user U --password P] [--ca CA_FILE --token T]
--user/--password: the client sends HTTP Basic auth, as any InfluxDB 1.x
client configured with credentials does (metrond takes the password as the
token). --ca: over HTTPS, the server's certificate checked against CA_FILE.
--token: sent as "Authorization: Token T". Exits non-zero if the client
raises: it expects exactly 204 from /write.
"""
import argparse
import sys

from influxdb import InfluxDBClient

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--ca")
ap.add_argument("--token")
a = ap.parse_args()
kw = {"host": a.host, "port": a.port, "database": "metron"}
if a.user is not None:
    kw.update(username=a.user, password=a.password)
if a.ca:
    kw.update(ssl=True, verify_ssl=a.ca)
if a.token:
    # no username/password then: the client would send them as Basic auth
    kw.update(username=None, password=None, headers={"Authorization": "Token " + a.token})
client = InfluxDBClient(**kw)
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
