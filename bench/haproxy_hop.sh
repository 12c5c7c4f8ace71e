#!/usr/bin/env bash
# The cost of routing through HAProxy (issue 24; docs/cluster.md, docs/scale.md): four metrond
# nodes as two replica pairs behind HAProxy with deploy/haproxy/metron.cfg, one tenant on
# pair1, all on 127.0.0.1 (one machine: the nodes, HAProxy and the client share its cores).
#
#   ingest  the same workload (metron-gen, bodies of 5,000 lines over one kept-alive HTTP
#           connection each way) posted straight to one node, and through HAProxy to both
#           replicas (each body to port 1 and port 2, as an agent with two outputs writes);
#           points acknowledged per second, each point counted once
#   query   /api/v1/query over the loaded range, straight to a node and through HAProxy
#           (which balances reads over the pair: both replicas hold the range): one series'
#           raw points, and every host's cpu fields as 1-minute averages; median of N requests
#           on a kept-alive connection
#
#   bench/haproxy_hop.sh [--hosts N] [--hours N] [--repeat N]     (defaults 10, 2, 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hosts=10 hours=2 repeat=200
while [ $# -gt 0 ]; do
  case $1 in
  --hosts) hosts=$2 ;; --hours) hours=$2 ;; --repeat) repeat=$2 ;;
  *) echo "usage: bench/haproxy_hop.sh [--hosts N] [--hours N] [--repeat N]" >&2; exit 2 ;;
  esac
  shift 2
done
rel=$root/build/release
metrond=$rel/tools/metrond
[ -x "$metrond" ] || { echo "haproxy_hop: build first (cmake --build build/release)" >&2; exit 1; }
work=$(mktemp -d /tmp/metron-hop.XXXXXX)
declare -A port pid
haproxy_pid=""
passed=0
cleanup() {
  set +e
  for n in "${!pid[@]}"; do stop_node "$n"; done
  [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
. "$root/tests/cluster/cluster_lib.sh"

T=7f3c2a10-0000-4000-8000-000000000001
printf '%s %s\n' "$T" "$(hash tok-t)" >"$work/tokens"
for n in n1 n2 n3 n4; do start_node $n; done
printf '%s pair1\n' "$T" >"$work/assign"
"$root/tools/metron-haproxy-map" "$work/tokens" "$work/assign" >"$work/tenants.map"
"$root/tools/metron-haproxy-map" --business "$work/tokens" "$work/assign" >"$work/business.map"
haproxy_config
cat >>"$work/metron.cfg" <<EOF
backend pair1
    server r1 127.0.0.1:${port[n1]} check
    server r2 127.0.0.1:${port[n2]} check
    use-server r1 if { var(txn.replica) -m int 1 }
    use-server r2 if { var(txn.replica) -m int 2 }
backend pair2
    server r1 127.0.0.1:${port[n3]} check
    server r2 127.0.0.1:${port[n4]} check
    use-server r1 if { var(txn.replica) -m int 1 }
    use-server r2 if { var(txn.replica) -m int 2 }
backend any
    server n1 127.0.0.1:${port[n1]}
EOF
start_haproxy
wait_for 30 all_up any,n1 || { echo "haproxy_hop: HAProxy's servers never came up" >&2; exit 1; }

now=$(date +%s)
start_a=$((now / 3600 * 3600 - 2 * hours * 3600)) start_b=$((now / 3600 * 3600 - hours * 3600))
# the tenant's token binds every line to it: the generator's own business_id tags go
"$rel/bench/metron-gen" --hosts "$hosts" --hours "$hours" --start "$start_a" --precision s |
  sed 's/,business_id=[^,]*//' >"$work/a.lp"
"$rel/bench/metron-gen" --hosts "$hosts" --hours "$hours" --start "$start_b" --precision s |
  sed 's/,business_id=[^,]*//' >"$work/b.lp"
points=$("$rel/bench/metron-gen" --hosts "$hosts" --hours "$hours" --count | awk '{print $4}')

/usr/bin/python3 - "$work" "$points" "$repeat" "${port[n1]}" "$f1" "$f2" "$start_a" "$start_b" "$hours" \
  "${port[n2]}" <<'EOF'
import http.client, statistics, sys, time, urllib.parse
work, points, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
node, f1, f2 = (int(p) for p in sys.argv[4:7])
start_a, start_b, hours, node2 = (int(a) for a in sys.argv[7:11])
H = {"Authorization": "Token tok-t"}

def bodies(path, lines=5000):
    with open(path, "rb") as f:
        chunk = []
        for line in f:
            chunk.append(line)
            if len(chunk) == lines:
                yield b"".join(chunk)
                chunk = []
        if chunk:
            yield b"".join(chunk)

def post_all(path, ports):
    conns = [http.client.HTTPConnection("127.0.0.1", p) for p in ports]
    t0 = time.perf_counter()
    for body in bodies(path):
        for c in conns:
            c.request("POST", "/write?db=metron&precision=s", body, H)
            r = c.getresponse()
            r.read()
            if r.status != 204:
                sys.exit(f"write answered {r.status}")
    return points / (time.perf_counter() - t0)

def query_times(port, start, select, step=None):
    args = {"select": select, "from": start, "to": start + hours * 3600}
    if step:
        args["step"], args["agg"] = step, "avg"
    q = urllib.parse.urlencode(args)
    c = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        c.request("GET", "/api/v1/query?" + q, headers=H)
        r = c.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t0)
        if r.status != 200 or len(body) < 100:
            sys.exit(f"query {q} on {port} answered {r.status}: {body[:200]!r}")
    return statistics.median(times)

direct = post_all(f"{work}/a.lp", [node])
post_all(f"{work}/a.lp", [node2])  # untimed: the pair's reads are balanced, both must hold it
proxied = post_all(f"{work}/b.lp", [f1, f2])
print(f"ingest, {points} points: straight to one node {direct / 1e6:.2f} M points/s; "
      f"through HAProxy to both replicas {proxied / 1e6:.2f} M points/s "
      f"({proxied / direct:.2f}x, each point written twice)")
for what, sel, step in (("one series' raw points", 'cpu.usage_user{hostname="host_1"}', None),
                        ("every host's cpu, 10 fields, 1-minute avg", "cpu", "1m")):
    qd = query_times(node, start_a, sel, step)
    qp = query_times(f1, start_a, sel, step)
    print(f"query, {what} of {hours} h, median of {repeat}: straight {qd * 1e3:.2f} ms; "
          f"through HAProxy {qp * 1e3:.2f} ms (+{(qp / qd - 1) * 100:.1f}%, "
          f"+{(qp - qd) * 1e3:.2f} ms)")
EOF
