"""python3-influxdb's setup calls against metrond, as a new InfluxDB 1.x user makes them.

usage: influx_setup.py HOST PORT
create_database, write_points into two databases, get_list_database, and query
(SHOW MEASUREMENTS, SHOW TAG KEYS, SHOW TAG VALUES, SHOW FIELD KEYS) through the
client's own result parsing; a SELECT raises the client's error naming what metron
answers. Exits non-zero (an AssertionError or the client's exception) on any
difference from what InfluxDB 1.8 would give.
"""
import sys
import time

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError

host, port = sys.argv[1], int(sys.argv[2])
c = InfluxDBClient(host=host, port=port)
c.create_database("py_a")
c.create_database("py_b")
now = int(time.time()) - 60
for db, v in (("py_a", 1.5), ("py_b", 2.5)):
    assert c.write_points(
        [{"measurement": "pycpu", "tags": {"host": "h1"}, "time": now, "fields": {"usage": v}}],
        time_precision="s", database=db)
dbs = [d["name"] for d in c.get_list_database()]
assert "py_a" in dbs and "py_b" in dbs and "metron" in dbs, dbs
c.switch_database("py_a")
ms = [m["name"] for m in c.get_list_measurements()]
assert ms == ["pycpu"], ms
rs = c.query("SHOW TAG KEYS FROM pycpu")
assert list(rs.get_points("pycpu")) == [{"tagKey": "host"}], rs.raw
rs = c.query('SHOW TAG VALUES FROM pycpu WITH KEY = "host"')
assert list(rs.get_points("pycpu")) == [{"key": "host", "value": "h1"}], rs.raw
rs = c.query("SHOW FIELD KEYS")
assert list(rs.get_points("pycpu")) == [{"fieldKey": "usage", "fieldType": "float"}], rs.raw
try:
    c.query("SELECT * FROM pycpu")
    raise AssertionError("SELECT answered without an error")
except InfluxDBClientError as e:
    assert "SHOW MEASUREMENTS" in str(e), str(e)
print("python3-influxdb: databases %s, measurements %s" % (dbs, ms))
