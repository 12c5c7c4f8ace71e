#!/usr/bin/env bash
# What opening and reading cost as the history kept grows (issue 17): for
# each number of days, a data dir of --hosts hosts ending an hour ago
# (metron-gen through `metron import --data`, built once and kept under
# --dir), then
#   query     `metron query --data` for one hour of one series: wall time
#             and peak RSS, median of 5;
#   open      metrond started on the dir: seconds until /ready answers, and
#             its anonymous RSS (RssAnon) then, and after a query mix (one
#             hour of one series, a day of a host's cpu, the last hour's
#             rollups), median of 3 starts.
#
#   bench/history.sh [--hosts N] [--days "1 30 90"] [--dir D]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/release
hosts=10 days="1 30" dir=/var/tmp/metron-history
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) hosts=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "usage: bench/history.sh [--hosts N] [--days \"1 30 90\"] [--dir D]" >&2; exit 2 ;;
  esac
done
for b in metron metrond; do
  [ -x "$bin/tools/$b" ] || { echo "history: build first (cmake --build build/release)" >&2; exit 1; }
done
mkdir -p "$dir"
now_h=$(( $(date +%s) / 3600 * 3600 ))
q_from=$(date -u -d @$((now_h - 5 * 3600)) +%Y-%m-%dT%H:%M:%SZ)
q_to=$(date -u -d @$((now_h - 4 * 3600)) +%Y-%m-%dT%H:%M:%SZ)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf "%-6s %-10s %14s %12s %12s %14s %16s\n" days points "query s" "query MB" "open s" "RssAnon MB" "after queries MB"
for d in $days; do
  data=$dir/h$hosts-d$d
  if [ ! -f "$data/.complete" ]; then
    rm -rf "$data"
    "$bin/bench/metron-gen" --hosts "$hosts" --hours $((d * 24)) --start $((now_h - d * 24 * 3600 - 3600)) |
      "$bin/tools/metron" import --data "$data" - >/dev/null 2>&1
    touch "$data/.complete"
  fi
  points=$("$bin/bench/metron-gen" --hosts "$hosts" --hours $((d * 24)) --count | awk '{print $4}')
  qs=() qm=()
  for _ in 1 2 3 4 5; do
    out=$( { /usr/bin/time -f "%e %M" "$bin/tools/metron" query --data "$data" \
        'cpu.usage_user{hostname="host_0"}' --from "$q_from" --to "$q_to" --format csv >/dev/null; } 2>&1 | tail -1)
    qs+=("${out% *}") qm+=("${out#* }")
  done
  os=() ra=() rq=()
  for _ in 1 2 3; do
    port=$((20000 + RANDOM % 20000))
    t0=$(date +%s.%N)
    "$bin/tools/metrond" --data "$data" --http 127.0.0.1:$port --lp-tcp off --lp-udp off \
      --retention-interval 0 --compact-interval 0 --log-level error >/dev/null 2>&1 &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/ready" >/dev/null; do sleep 0.02; done
    t1=$(date +%s.%N)
    os+=("$(echo "$t1 - $t0" | bc)")
    ra+=("$(awk '/RssAnon/ {print $2}' /proc/$pid/status)")
    curl -sf "http://127.0.0.1:$port/api/v1/query?select=cpu.usage_user%7Bhostname%3D%22host_0%22%7D&from=$q_from&to=$q_to" >/dev/null
    curl -sf "http://127.0.0.1:$port/api/v1/query?select=cpu.usage_user%7Bhostname%3D%22host_1%22%7D&from=now-25h&to=now&step=1h&agg=avg,p95" >/dev/null
    curl -sf "http://127.0.0.1:$port/api/v1/rollup?from=now-2h&to=now" >/dev/null
    rq+=("$(awk '/RssAnon/ {print $2}' /proc/$pid/status)")
    kill $pid
    wait $pid 2>/dev/null || true
  done
  printf "%-6s %-10s %14s %12.1f %12.3f %14.1f %16.1f\n" "$d" "$points" \
    "$(printf '%s\n' "${qs[@]}" | median)" "$(printf '%s\n' "${qm[@]}" | median | awk '{print $1/1024}')" \
    "$(printf '%s\n' "${os[@]}" | median)" "$(printf '%s\n' "${ra[@]}" | median | awk '{print $1/1024}')" \
    "$(printf '%s\n' "${rq[@]}" | median | awk '{print $1/1024}')"
done
