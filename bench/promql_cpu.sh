#!/usr/bin/env bash
# metrond's CPU time per PromQL query, two builds side by side (the README's "CPU per query"
# figures). On a shared machine wall times move by 2x between runs of the same binary; the
# CPU a query costs moves far less, and alternating the builds round by round spreads what
# noise is left over both.
#
# Each round starts each build in turn on a copy of the data dir `bench/compare --keep` left
# (DIR/metron), asks the query over the day the data covers at 60 s steps 3 times to warm up,
# then counts metrond's task-clock (`perf stat`, every thread) over 40 more; it prints ms per
# query for each, then the minimum and median of the rounds. The answers of the two builds are
# compared byte for byte (a speed-up must not change an answer).
#
#   bench/promql_cpu.sh DIR BUILD_A [BUILD_B] [--query Q] [--rounds N]
#
# needs perf (apt-get install linux-perf) and curl; e.g.
#   bench/compare --systems metron --repeat 1 --keep       # prints "kept DIR"
#   bench/promql_cpu.sh DIR /tmp/metrond.old build/release/tools/metrond
set -euo pipefail
usage() {
  echo "usage: bench/promql_cpu.sh DIR BUILD_A [BUILD_B] [--query Q] [--rounds N]" >&2
  exit 2
}
query='sum by (region) (rate(net_bytes_recv[5m]))' rounds=5 builds=()
[ $# -ge 2 ] || usage
dir=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    --query) query=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -*) usage ;;
    *) builds+=("$1"); shift ;;
  esac
done
if [ ${#builds[@]} -lt 1 ] || [ ${#builds[@]} -gt 2 ]; then usage; fi
command -v perf >/dev/null || { echo "promql_cpu: needs perf (apt-get install linux-perf)" >&2; exit 1; }
[ -d "$dir/metron/blocks" ] || { echo "promql_cpu: $dir/metron is not a kept compare dir" >&2; exit 1; }
# the day the data covers: from its first hour file, blocks/YYYY/MM/DD/HH.G.blk
first=$(cd "$dir/metron/blocks" && find . -name '*.blk' | sort | head -1)
[ -n "$first" ] || { echo "promql_cpu: no hour file under $dir/metron/blocks" >&2; exit 1; }
IFS=/ read -r _ y m d f <<<"$first"
start=$(date -u -d "$y-$m-$d ${f%%.*}:00" +%s) end=$((start + 86400))
enc=$(printf '%s' "$query" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g')
work=$(mktemp -d /tmp/metron-promql-cpu.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
url="http://127.0.0.1:$port/prometheus/api/v1/query_range?query=$enc&start=$start&end=$end&step=60"

# one_round BUILD INDEX: ms of CPU per query, the answer kept as $work/answer.INDEX
one_round() {
  rm -rf "$work/data"
  cp -r "$dir/metron" "$work/data"
  "$1" --data "$work/data" --lp-tcp 127.0.0.1:0 --lp-udp off --http "127.0.0.1:$port" \
    --log-level warn --retention-interval 0 --compact-interval 0 >"$work/metrond.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  for _ in 1 2 3; do curl -sf -o "$work/answer.$2" "$url"; done
  perf stat -x, -e task-clock -p "$pid" -o "$work/stat" &
  local pp=$!
  sleep 0.2
  for _ in $(seq 40); do curl -sf -o /dev/null "$url"; done
  kill -INT "$pp"
  wait "$pp" || true
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  awk -F, '/task-clock/ {printf "%.2f\n", $1 / 40}' "$work/stat"
}

stats() { sort -n | awk '{x[NR] = $1} END {printf "min %.2f median %.2f", x[1], x[int((NR + 1) / 2)]}'; }

echo "promql_cpu: $query, $start to $end at 60 s steps, $rounds rounds; ms of CPU per query"
for r in $(seq "$rounds"); do
  line="round $r:"
  for i in "${!builds[@]}"; do
    ms=$(one_round "${builds[$i]}" "$i")
    echo "$ms" >>"$work/ms.$i"
    line="$line  ${builds[$i]} $ms"
  done
  echo "$line"
done
for i in "${!builds[@]}"; do echo "${builds[$i]}: $(stats <"$work/ms.$i")"; done
if [ ${#builds[@]} -eq 2 ]; then
  if ! cmp -s "$work/answer.0" "$work/answer.1"; then
    echo "answers: DIFFER" >&2
    exit 1
  fi
  echo "answers: the same bytes"
fi
