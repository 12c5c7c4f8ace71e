#!/usr/bin/env bash
# Bytes per point that VictoriaMetrics (Debian's victoria-metrics package)
# needs for the generator's devops workload: the reference for Metron's
# storage target. Starts VictoriaMetrics on 127.0.0.1 with its data in a
# temporary directory, feeds the workload over its TCP line-protocol
# listener, forces a flush and a merge, waits until the parts stop
# changing, and prints the size on disk divided by the points.
#
#   bench/vm_bytes.sh [metron-gen options...]     e.g. --hosts 100 --hours 24
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gen=$root/build/release/bench/metron-gen
[ -x "$gen" ] || { echo "vm_bytes: build first (tools/run.sh or cmake --build build/release)" >&2; exit 1; }
if ! command -v victoria-metrics >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics >/dev/null
fi
command -v nc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq netcat-openbsd >/dev/null

dir=$(mktemp -d /tmp/metron-vm.XXXXXX)
http=127.0.0.1:$((20000 + RANDOM % 20000))
lp=127.0.0.1:$((40000 + RANDOM % 20000))
victoria-metrics -storageDataPath="$dir" -httpListenAddr="$http" -influxListenAddr="$lp" \
  -retentionPeriod=100y -loggerLevel=ERROR >"$dir.log" 2>&1 &
vm=$!
trap 'kill $vm 2>/dev/null; wait $vm 2>/dev/null; rm -rf "$dir" "$dir.log"' EXIT
for _ in $(seq 1 50); do curl -sf "http://$http/health" >/dev/null && break; sleep 0.2; done

points=$("$gen" --count "$@" | awk '{print $4}')
start=$(date +%s.%N)
"$gen" "$@" | nc -q 1 "${lp%:*}" "${lp#*:}"
rows() { curl -s "http://$http/metrics" | awk '/^vm_rows\{type="storage\/(small|big)"\}/ {s+=$2} END {print s+0}'; }
until [ "$(rows)" -ge "$points" ]; do
  curl -s "http://$http/internal/force_flush" >/dev/null; sleep 0.5
done
ingest=$(echo "$(date +%s.%N) - $start" | bc)
curl -s "http://$http/internal/force_merge" >/dev/null
prev=0
for _ in $(seq 1 120); do  # until the size on disk holds still for 5 s
  sleep 5
  size=$(du -s -B1 "$dir" | awk '{print $1}')
  [ "$size" = "$prev" ] && break
  prev=$size
done
printf 'victoria-metrics %s: %d points, %d bytes on disk, %.3f bytes/point; ingest until queryable %.1f s\n' \
  "$(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null)" "$points" "$size" "$(echo "$size / $points" | bc -l)" "$ingest"
