#!/usr/bin/env bash
# metron-gen's default dates do not expire under the user (issue 22 item 6):
#   - without --start the workload's hours end where the current hour begins:
#     every timestamp is in the past and within the default 90-day retention;
#   - a metrond with its default retention and future window takes every line
#     of that default workload (204, nothing refused);
#   - --start still fixes the first timestamp (the benchmarks' reproducible bytes).
#
#   test_metron_gen.sh METRON_GEN METROND
set -euo pipefail
gen=${1:?usage: test_metron_gen.sh METRON_GEN METROND}
metrond=${2:?usage: test_metron_gen.sh METRON_GEN METROND}

work=$(mktemp -d /tmp/metron-gen-test.XXXXXX)
metrond_pid=""
passed=0
finish() {
  local rc=$?
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    [ -f "$work/metrond.log" ] && { echo "--- metrond.log (last lines)"; tail -n 20 "$work/metrond.log"; }
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh" # fail, ok, free_port, wait_for

gen_default() { # the hour may turn while generating: then once more
  local i
  for i in 1 2; do
    hour_start=$(($(date +%s) / 3600 * 3600))
    "$gen" --hosts 2 --hours 3 --interval 60 --precision s >"$work/w.lp"
    [ $(($(date +%s) / 3600 * 3600)) != "$hour_start" ] || return 0
  done
}
gen_default
read -r lo hi < <(awk '{t = $NF} NR == 1 || t < lo {lo = t} t > hi {hi = t} END {print lo, hi}' "$work/w.lp")
[ "$lo" -ge $((hour_start - 3 * 3600)) ] ||
  fail "the default workload starts at $lo, before the 3 hours ending at $hour_start"
[ "$hi" -lt "$hour_start" ] || fail "the default workload reaches $hi, in the current hour ($hour_start)"
[ "$hi" -ge $((hour_start - 120)) ] || fail "the default workload ends at $hi, not in the hour before $hour_start"
ok "default workload: 3 whole hours ending at the current hour's start ($lo..$hi)"

"$gen" --hosts 1 --hours 1 --interval 600 --precision s --start 1735689600 >"$work/fixed.lp"
[ "$(head -n 1 "$work/fixed.lp" | awk '{print $NF}')" = 1735689600 ] || fail "--start is not the first timestamp"
ok "--start fixes the first timestamp"

http=$(free_port)
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  >"$work/metrond.log" 2>&1 &
metrond_pid=$!
url=http://127.0.0.1:$http
wait_for 30 curl -fsS "$url/health" || fail "metrond did not come up"
status=$(curl -sS -o "$work/answer" -w '%{http_code}' --data-binary @"$work/w.lp" \
  "$url/write?db=metron&precision=s")
[ "$status" = 204 ] || fail "metrond with its defaults refused the default workload: $status $(cat "$work/answer")"
ok "metrond with its default retention takes the whole default workload"
echo "$passed passed"
