"""Writes points to metrond with Debian's python3-influxdb (InfluxDB 1.x client).

usage: influx_client.py HOST PORT [CA_FILE TOKEN]
With CA_FILE and TOKEN: over HTTPS, the server's certificate checked
against CA_FILE, the token sent as "Authorization: Token TOKEN".
Exits non-zero if the client raises: it expects exactly 204 from /write.
"""
import sys

from influxdb import InfluxDBClient

host, port = sys.argv[1], int(sys.argv[2])
if len(sys.argv) > 3:
    # no username/password: the client would send them as Basic auth
    client = InfluxDBClient(host=host, port=port, database="metron", ssl=True,
                            verify_ssl=sys.argv[3], username=None, password=None,
                            headers={"Authorization": "Token " + sys.argv[4]})
else:
    client = InfluxDBClient(host=host, port=port, database="metron")
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
