#!/usr/bin/env bash
# The sink follows a PostgreSQL switchover (issue 24, item 4; docs/postgres.md, "High
# availability: Patroni and etcd"): the client side of a Patroni pair, without Patroni.
#
# A primary n1 and its synchronous streaming standby n2 (tests/support/pg_pair.sh); metrond's
# postgres URL names both hosts with target_session_attrs=read-write. Two tenants, 14 past
# hours written in phases:
#   1. hours 0-3 mirrored into n1;
#   2. failover: hours 4-5 written, n1 crashed at once (pg_ctl stop -m immediate) while the
#      sink delivers them, hours 6-7 written while no primary exists, n2 promoted, hours 8-9;
#      the mirror must catch up on n2 (timed);
#   3. fencing: n1 rebuilt as n2's standby, hours 10-11 mirrored into n2; then n2 turned
#      read-only in place (default_transaction_read_only = on, reloaded: a fenced primary, or
#      a provider's read-only mode) while its sessions stay open, n1 promoted, hours 12-13.
#      A sink that keeps its session retries into 25006 for ever; it must open a new one,
#      which libpq gives to n1 (timed).
# Then on n1: every (hour, group) row of hourly_metrics_summary and every (hour, series) row
# of series_hourly_summary equals `metron rollup` (each once: counted per natural key), every
# point of the minute mirror is there once, no row was quarantined, and /metrics shows the
# reconnections (metron_sink_connects_total) and the failed batches.
#
#   test_switchover.sh METROND METRON
#
# Everything on 127.0.0.1 at free ports, under one temporary directory; metrond and both
# PostgreSQL clusters are stopped and the directories removed on any exit. Waits poll with
# deadlines.
set -euo pipefail
metrond=${1:?usage: test_switchover.sh METROND METRON}
metron=${2:?usage: test_switchover.sh METROND METRON}
here=$(cd "$(dirname "$0")/.." && pwd)
pair=$here/support/pg_pair.sh
A=aaaaaaaa-5111-4000-8000-00000000000a
B=bbbbbbbb-5111-4000-8000-00000000000b
work=$(mktemp -d /tmp/metron-switch.XXXXXX)
pgdir=$(mktemp -d /tmp/metron-switch-pg.XXXXXX)
metrond_pid=""
passed=0
finish() {
  local rc=$?
  set +e
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    [ -f "$work/metrond.log" ] && { echo "--- metrond.log (last lines)"; tail -n 30 "$work/metrond.log"; }
    for n in 1 2; do [ -f "$pgdir/n$n.log" ] && { echo "--- n$n.log"; tail -n 8 "$pgdir/n$n.log"; }; done
    echo "$passed passed, 1 failed"
  fi
  "$pair" stop "$pgdir" >/dev/null 2>&1
  rm -rf "$work" "$pgdir"
}
trap finish EXIT
. "$here/support/testlib.sh"       # fail, ok, free_port, wait_for
. "$here/support/rollup_compare.sh" # pg_hourly_csv, rollup_compare

read -r p1 p2 < <("$pair" start "$pgdir") || fail "the PostgreSQL pair did not start"
[ -n "$p2" ] || fail "the PostgreSQL pair did not start"
url="postgresql://postgres@127.0.0.1:$p1,127.0.0.1:$p2/metron_test?target_session_attrs=read-write&connect_timeout=2"
on() { psql "postgresql://postgres@127.0.0.1:$1/metron_test" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
ok "primary n1 on $p1, synchronous standby n2 on $p2"

http=$(free_port)
# grace 1 and seal_settle 0: a past hour seals a second after its last write; the minute
# mirror every second; no retention pass (it would drop nothing, but adds statements)
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --postgres "$url" --grace 1 --seal-settle 0 --postgres-flush-interval 1 \
  --postgres-retention-interval 0 --retention-interval 0 --compact-interval 0 \
  >"$work/metrond.log" 2>&1 &
metrond_pid=$!
base=http://127.0.0.1:$http
wait_for 30 curl -fsS "$base/health" || fail "metrond did not come up"

h0=$(($(date +%s) / 3600 * 3600 - 24 * 3600)) # hour 0: a day ago, all 14 hours long past
metric() { curl -fsS "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
write_hours() { # write_hours FIRST LAST: both tenants, 2 hosts, cpu.usage and mem.used each minute
  local t
  for ((k = $1; k <= $2; k++)); do
    for ((t = h0 + k * 3600; t < h0 + (k + 1) * 3600; t += 60)); do
      echo "cpu,business_id=$A,host=a1 usage=$(((t / 60) % 97)).5 $t"
      echo "cpu,business_id=$A,host=a2 usage=$(((t / 60) % 89)).25 $t"
      echo "mem,business_id=$A,host=a1 used=$(((t / 60) % 83 * 1000)) $t"
      echo "mem,business_id=$A,host=a2 used=$(((t / 60) % 79 * 1000)) $t"
      echo "cpu,business_id=$B,host=b1 usage=$(((t / 60) % 71)).75 $t"
      echo "cpu,business_id=$B,host=b2 usage=$(((t / 60) % 67)) $t"
      echo "mem,business_id=$B,host=b1 used=$(((t / 60) % 61 * 1000)) $t"
      echo "mem,business_id=$B,host=b2 used=$(((t / 60) % 59 * 1000)) $t"
    done
  done >"$work/in.lp"
  local code
  code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST --data-binary @"$work/in.lp" \
    "$base/write?db=metron&precision=s")
  [ "$code" = 204 ] || fail "write of hours $1-$2: $code $(cat "$work/resp")"
}
# mirrored PORT LAST: hours 0..LAST are on the server at PORT (4 groups, 8 series an hour) and
# the outbox is empty
mirrored() {
  local want_g=$((($2 + 1) * 4)) want_s=$((($2 + 1) * 8)) g s
  g=$(on "$1" "SELECT count(*) FROM monitoring.hourly_metrics_summary") || return 1
  s=$(on "$1" "SELECT count(*) FROM monitoring.series_hourly_summary") || return 1
  [ "$g" = "$want_g" ] && [ "$s" = "$want_s" ] && [ "$(metric metron_sink_outbox_depth)" = 0 ]
}
ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- 1: hours 0-3 into n1 ---------------------------------------------------------------------
write_hours 0 3
wait_for 30 mirrored "$p1" 3 || fail "hours 0-3 never reached n1"
ok "hours 0-3 mirrored into n1"

# ---- 2: failover: n1 crashes mid-stream, n2 promoted --------------------------------------------
write_hours 4 5
"$pair" crash "$pgdir" 1
ok "n1 crashed (pg_ctl stop -m immediate) right after hours 4-5 were written (sealing or in flight)"
write_hours 6 7
wait_for 15 sh -c "curl -fsS '$base/metrics' | grep -q '^metron_sink_connected 0'" ||
  fail "the sink never noticed n1 was gone"
"$pair" promote "$pgdir" 2
t_promote=$(ms)
write_hours 8 9
wait_for 60 mirrored "$p2" 9 || fail "the mirror never caught up on n2: $(on "$p2" \
  "SELECT count(*) FROM monitoring.hourly_metrics_summary") group rows of 40"
ok "n2 promoted; hours 0-9 on n2 $(($(ms) - t_promote)) ms after the promote"

# ---- 3: n2 fenced read-only in place, n1 promoted -----------------------------------------------
"$pair" rebuild "$pgdir" 1 2
write_hours 10 11
wait_for 30 mirrored "$p2" 11 || fail "hours 10-11 never reached n2"
wait_for 30 "$pair" caught "$pgdir" 1 2 || fail "n1 never caught up with n2"
ok "n1 rebuilt as n2's standby; hours 10-11 mirrored into n2 and replayed on n1"
on "$p2" "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
on "$p2" "SELECT pg_reload_conf()" >/dev/null
wait_for 10 sh -c "[ \"\$(psql 'postgresql://postgres@127.0.0.1:$p2/metron_test' -qAtX -c 'SHOW default_transaction_read_only')\" = on ]"
wait_for 30 "$pair" caught "$pgdir" 1 2 || fail "n1 never caught up with n2 after the fence"
"$pair" promote "$pgdir" 1
t_promote=$(ms)
write_hours 12 13
wait_for 60 mirrored "$p1" 13 || fail "the mirror never left the read-only n2 for n1: $(on "$p1" \
  "SELECT count(*) FROM monitoring.hourly_metrics_summary") group rows of 56 on n1; \
  failures $(metric metron_sink_failures_total)"
ok "n2 read-only, n1 promoted; hours 0-13 on n1 $(($(ms) - t_promote)) ms after the promote"

# ---- the rows on n1 against Metron's rollups ----------------------------------------------------
from=$(date -u -d "@$h0" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((h0 + 14 * 3600))" +%Y-%m-%dT%H:%M:%SZ)
"$metron" rollup --data "$work/data" --from "$from" --to "$to" --group --format csv |
  grep -v '^hour_bucket' | LC_ALL=C sort >"$work/metron_groups.csv"
"$metron" rollup --data "$work/data" --from "$from" --to "$to" --series --format csv |
  grep -v '^hour_bucket' | LC_ALL=C sort >"$work/metron_series.csv"
pg_hourly_csv "postgresql://postgres@127.0.0.1:$p1/metron_test" groups >"$work/pg_groups.csv"
pg_hourly_csv "postgresql://postgres@127.0.0.1:$p1/metron_test" series >"$work/pg_series.csv"
[ "$(wc -l <"$work/metron_groups.csv")" = 56 ] || fail "metron rollup: $(wc -l <"$work/metron_groups.csv") group rows, not 14 hours x 4"
[ "$(wc -l <"$work/metron_series.csv")" = 112 ] || fail "metron rollup: $(wc -l <"$work/metron_series.csv") series rows, not 14 hours x 8"
rollup_compare 4 "$work/metron_groups.csv" "$work/pg_groups.csv" || fail "hourly_metrics_summary differs"
rollup_compare 2 "$work/metron_series.csv" "$work/pg_series.csv" || fail "series_hourly_summary differs"
ok "56 group rows and 112 series rows on n1, each equal to metron rollup"
dups=$(on "$p1" "SELECT count(*) FROM (SELECT 1 FROM monitoring.hourly_metrics_summary
                 GROUP BY hour_bucket, business_id, metric_category, metric_name HAVING count(*) > 1) d")
dups_s=$(on "$p1" "SELECT count(*) FROM (SELECT 1 FROM monitoring.series_hourly_summary
                   GROUP BY hour_bucket, series HAVING count(*) > 1) d")
hours=$(on "$p1" "SELECT count(DISTINCT hour_bucket) FROM monitoring.hourly_metrics_summary
                  WHERE hour_bucket >= to_timestamp($h0) AND hour_bucket < to_timestamp($((h0 + 14 * 3600)))")
[ "$dups" = 0 ] && [ "$dups_s" = 0 ] || fail "natural keys held twice: $dups group, $dups_s series"
[ "$hours" = 14 ] || fail "$hours hours of 14 on n1"
ok "every natural key once, all 14 hours (before, during and after both switches)"

# the minute mirror followed too: every point of the 14 hours counted once in series_minute
points=$((14 * 60 * 8))
minute_points() { [ "$(on "$p1" "SELECT sum(sample_count) FROM monitoring.series_minute")" = "$points" ]; }
wait_for 30 minute_points || fail "series_minute on n1 counts $(on "$p1" "SELECT sum(sample_count) FROM monitoring.series_minute") points, not $points"
ok "series_minute on n1 counts each of the $points points once"

quar=$(metric metron_sink_quarantine_rows) held=$(metric metron_sink_rows_quarantined_total)
[ "$quar" = 0 ] && [ "$held" = 0 ] || fail "rows quarantined: $held (held now $quar)"
connects=$(metric metron_sink_connects_total) failures=$(metric metron_sink_failures_total)
[ "$connects" -ge 3 ] || fail "the sink connected $connects times, not at least 3 (n1, n2, n1)"
[ "$failures" -ge 1 ] || fail "no failed batch counted: $failures"
[ "$(metric metron_sink_connected)" = 1 ] || fail "metron_sink_connected is not 1"
ok "/metrics: connects $connects, failed batches $failures, connected, nothing quarantined"
kill -TERM "$metrond_pid" && wait "$metrond_pid" || true
metrond_pid=""
[ -z "$("$metron" sink quarantine list --data "$work/data")" ] || fail "the quarantine holds rows"
ok "metron sink quarantine list: empty"
echo "$passed passed"
