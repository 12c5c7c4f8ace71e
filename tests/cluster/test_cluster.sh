#!/usr/bin/env bash
# A test cluster on one machine (issue 24, item 5; docs/cluster.md): HAProxy with the shipped
# configuration (tests/cluster/cluster_lib.sh), four metrond nodes as two replica pairs
# (pair1 = n1 + n2, pair2 = n3 + n4) all mirroring into one PostgreSQL database, and 20 tenants,
# 10 on each pair (tools/metron-haproxy-map makes the maps).
#
# A writer posts, round after round, 10 points of each tenant (past hours, so that hours seal
# and mirror: 5 series, timestamps unique) to BOTH HAProxy ports (replica 1 and replica 2),
# as an agent with two outputs does; a point is acknowledged when at least one of the two
# writes was answered 204. Mid-stream n2 is killed with -9 (HAProxy marks it DOWN, its
# replica's writes fail over to n1), the writer goes on, n2 is started again and taken back
# (UP), the writer goes on a little, then stops. Then:
#   - metron repair --from n1 --to n2 for each tenant of pair1 (a system token);
#   - tenant 3 moves from pair1 to pair2 (docs/cluster.md, "Moving a tenant", "A replica
#     pair"; no writer meanwhile: test_tenant_move.sh covers one): repair n1 -> n3 and
#     n1 -> n4, the flip of its token and business.map (the map files regenerated, equal to
#     HAProxy's), drained, repair --dry-run of both exits 0, metron delete --url --keep-mirror
#     on n1 and n2 (pair2 mirrors the same rows);
#   - after (a) and (b), the first hour of one pair1 tenant is deleted on n1 and n2 (a range:
#     the sink replaces that tenant's rows of the hour, and no other tenant's).
# Checks:
#   (a) every tenant's export through HAProxy, on both ports, is its acknowledged set exactly
#       (none missing, none extra, none twice);
#   (b) the two nodes of each tenant's pair export the same (the repair verified), and the
#       moved tenant is on neither node of pair1;
#   (c) every row of monitoring.hourly_metrics_summary and series_hourly_summary equals the
#       rollup of a single node holding its tenant (metron rollup --url of n1 for pair1's
#       tenants, n3 for pair2's; n2's and n4's rollups equal their partner's), no natural key
#       twice (the range delete's hour included: pair2's rows of it stay), and the moved
#       tenant's rows are there and right after its delete from pair1.
#
#   test_cluster.sh METROND METRON      (METRON_TEST_PG: the test PostgreSQL, a superuser URL)
#
# Everything listens on 127.0.0.1 on free ports under one temporary directory and a database
# of its own; every process started is stopped, the directory removed and the database dropped
# on any exit. Waits poll with deadlines.
set -euo pipefail
[ -n "${CLUSTER_DEBUG:-}" ] && set -x
metrond=${1:?usage: test_cluster.sh METROND METRON}
metron=${2:?usage: test_cluster.sh METROND METRON}
: "${METRON_TEST_PG:?METRON_TEST_PG is not set: run the suite through tools/test.sh}"
root=$(cd "$(dirname "$0")/../.." && pwd)
mapper=$root/tools/metron-haproxy-map

NT=20 # tenants 0-9 on pair1, 10-19 on pair2; tenant 3 moves to pair2
MOVED=3
bid=() tok=()
for ((i = 0; i < NT; i++)); do
  bid[i]=$(printf 'c1c1c1c1-0024-4000-8000-%012d' "$i")
  tok[i]=tok-t$i
done
pair_of() { if [ "$1" -lt $((NT / 2)) ]; then echo pair1; else echo pair2; fi; }

work=$(mktemp -d /tmp/metron-cluster.XXXXXX)
db=metron_cluster_$$
declare -A port pid
haproxy_pid="" writer_pid=""
passed=0
finish() {
  local rc=$?
  set +e # a stopped process's status (143) must not end the cleanup
  [ -n "$writer_pid" ] && kill -TERM "$writer_pid" 2>/dev/null && wait "$writer_pid" 2>/dev/null
  [ -n "$haproxy_pid" ] && kill -TERM "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
  for n in n1 n2 n3 n4; do stop_node $n; done
  psql "$METRON_TEST_PG" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  if [ "$rc" -ne 0 ]; then
    for f in haproxy.log n1.log n2.log n3.log n4.log step.out step.err refused; do
      [ -s "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  [ -n "${CLUSTER_KEEP:-}" ] && echo "# kept $work" || rm -rf "$work"
}
trap finish EXIT
# hash, start_node, stop_node, haproxy_config, start_haproxy, hx, status, all_up; testlib.sh's
# fail, ok, free_port, wait_for
. "$root/tests/cluster/cluster_lib.sh"
. "$root/tests/support/rollup_compare.sh" # pg_hourly_csv, rollup_compare
t_start=$SECONDS

# ---- PostgreSQL, four nodes, HAProxy ---------------------------------------------------------
psql "$METRON_TEST_PG" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
pg=${METRON_TEST_PG%/*}/$db
sql() { psql "$pg" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
{
  printf '* %s\n' "$(hash tok-sys)"
  for ((i = 0; i < NT; i++)); do printf '%s %s\n' "${bid[i]}" "$(hash "${tok[i]}")"; done
} >"$work/tokens"
# grace 1 (start_node) and seal-settle 0: a past hour seals a second after its last write;
# late-quiet 1: points a repair copies into a sealed hour are merged (and mirrored) a second
# after; the mirror flushes every second
node_args=(--postgres "$pg" --seal-settle 0 --late-quiet 1 --postgres-flush-interval 1
  --postgres-retention-interval 0)
for n in n1 n2 n3 n4; do start_node $n; done
url() { echo "http://127.0.0.1:${port[$1]}"; }
haproxy_config
cat >>"$work/metron.cfg" <<EOF
backend pair1
    server r1 127.0.0.1:${port[n1]}
    server r2 127.0.0.1:${port[n2]}
    use-server r1 if { var(txn.replica) -m int 1 }
    use-server r2 if { var(txn.replica) -m int 2 }
backend pair2
    server r1 127.0.0.1:${port[n3]}
    server r2 127.0.0.1:${port[n4]}
    use-server r1 if { var(txn.replica) -m int 1 }
    use-server r2 if { var(txn.replica) -m int 2 }
backend any
    server n1 127.0.0.1:${port[n1]}
    server n2 127.0.0.1:${port[n2]}
    server n3 127.0.0.1:${port[n3]}
    server n4 127.0.0.1:${port[n4]}
EOF
# the map files as an operator makes them (docs/cluster.md, "The map files")
maps() {
  "$mapper" --config "$work/metron.cfg" "$work/tokens" "$work/assign" >"$work/tenants.map.new" &&
    "$mapper" --business --config "$work/metron.cfg" "$work/tokens" "$work/assign" >"$work/business.map.new" &&
    mv "$work/tenants.map.new" "$work/tenants.map" && mv "$work/business.map.new" "$work/business.map"
}
for ((i = 0; i < NT; i++)); do echo "${bid[i]} $(pair_of $i)"; done >"$work/assign"
maps || fail "metron-haproxy-map"
start_haproxy
wait_for 30 all_up any,n4 || fail "HAProxy's servers not all UP: $(hx "show stat" 2>&1 | cut -d, -f1,2,18,37)"
wait_for 30 sh -c "[ \"\$(psql '$pg' -qAtX -c 'SELECT count(*) FROM monitoring.hourly_metrics_summary')\" = 0 ]" ||
  fail "the monitoring schema never appeared in $db"
ok "n1-n4 up (pair1 = n1 + n2, pair2 = n3 + n4) mirroring into $db; HAProxy on $f1 and $f2; $NT tenants, half on each pair"

# ---- the writer ------------------------------------------------------------------------------
# Round r: for each tenant, 10 points at h0 + 200 r + 20 j (seconds; all in past hours), posted
# to both ports by one curl. The lines (as the export prints them) go to acked.I when one of
# the two answers was 204; every other answer is kept in refused. The round reached is in
# $work/round; it stops at the stop file or when the rounds reach an hour before now.
now_s=$(date +%s)
hour_now=$((now_s / 3600 * 3600))
h0=$((hour_now - 8 * 3600))
last_round=$((7 * 3600 / 200 - 1)) # the last point: h0 + 7 h - 20 s, an hour before hour_now
writer() {
  local r i j ts v body exp codes
  for ((r = 0; r <= last_round; r++)); do
    [ -e "$work/stop" ] && break
    for ((i = 0; i < NT; i++)); do
      body="" exp=""
      for ((j = 0; j < 10; j++)); do
        ts=$((h0 + r * 200 + j * 20)) v=$((r * 10 + j))
        body+="cl,k=$((j % 5)) v=$v $ts"$'\n'
        exp+="cl,business_id=${bid[i]},k=$((j % 5)) v=$v ${ts}000000000"$'\n'
      done
      codes=$(curl -sS --max-time 10 -o /dev/null -o /dev/null -w '%{http_code} ' -XPOST \
        -H "Authorization: Token ${tok[i]}" --data-binary "$body" \
        "http://127.0.0.1:$f1/write?db=metron&precision=s" \
        "http://127.0.0.1:$f2/write?db=metron&precision=s" 2>/dev/null) || true
      case " $codes" in
      *" 204 "*) printf %s "$exp" >>"$work/acked.$i" ;;
      *) echo "round $r tenant $i: ${codes:-no answer}" >>"$work/refused" ;;
      esac
      [ "$codes" = "204 204 " ] || echo "round $r tenant $i: $codes" >>"$work/single"
    done
    echo "$r" >"$work/round"
  done
}
echo -1 >"$work/round"
writer &
writer_pid=$!
round() { cat "$work/round"; }
round_at_least() { [ "$(round)" -ge "$1" ]; }
wait_for 60 round_at_least 15 || fail "the writer is slow: round $(round) after 60 s"
ok "writer running: round $(round), $NT tenants x 10 points a round to both ports"

# ---- n2 killed with -9 mid-stream, the writer goes on, n2 back -------------------------------
stop_node n2 KILL
at_kill=$(round)
n2_down() { [ "$(status pair1 r2 | cut -d' ' -f1)" = DOWN ]; }
wait_for 20 n2_down || fail "n2 not marked DOWN: $(status pair1 r2)"
wait_for 60 round_at_least $((at_kill + 15)) || fail "the writer stalled with n2 down at round $(round)"
ok "n2 killed (-9) at round $at_kill, marked DOWN; the writer went on to round $(round)"
start_node n2
n2_up() { [ "$(status pair1 r2 | cut -d' ' -f1,2)" = "UP L7OK" ]; }
wait_for 30 n2_up || fail "n2 not UP again: $(status pair1 r2)"
at_up=$(round)
wait_for 60 round_at_least $((at_up + 8)) || fail "the writer stalled after n2 came back at round $(round)"
touch "$work/stop"
wait "$writer_pid" || fail "the writer failed"
writer_pid=""
rounds=$(($(round) + 1))
refused=0 single=0
[ -s "$work/refused" ] && refused=$(wc -l <"$work/refused")
[ -s "$work/single" ] && single=$(wc -l <"$work/single")
ok "n2 restarted and UP at round $at_up; the writer stopped after $rounds rounds ($refused requests acknowledged by neither port, $single by one only)"

export METRON_TOKEN=tok-sys
until_s=$hour_now # every point is before it
from=$(date -u -d "@$h0" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$until_s" +%Y-%m-%dT%H:%M:%SZ)
# export_of NODE BID: the tenant's points on one node, sorted
export_of() {
  "$metron" export --url "$(url "$1")" "{business_id=\"$2\"}" --format lp --from "$h0" \
    --to "$until_s" | LC_ALL=C sort
}
[ "$(export_of n2 "${bid[0]}" | wc -l)" -lt "$(LC_ALL=C sort -u "$work/acked.0" | wc -l)" ] ||
  fail "n2 missed nothing of tenant 0 while it was down"

# ---- repair n2 from n1 ------------------------------------------------------------------------
t=$SECONDS
copied=0
for ((i = 0; i < NT / 2; i++)); do
  "$metron" repair --from "$(url n1)" --to "$(url n2)" --tenant "${bid[i]}" --since "$h0" --until "$until_s" \
    >"$work/step.out" 2>"$work/step.err" || fail "repair of tenant $i: $(cat "$work/step.err")"
  c=$(grep -o '[0-9]* points copied' "$work/step.err" | cut -d' ' -f1)
  copied=$((copied + ${c:-0}))
done
for ((i = 0; i < NT; i++)); do
  case $(pair_of $i) in pair1) a=n1 b=n2 ;; *) a=n3 b=n4 ;; esac
  "$metron" repair --from "$(url $a)" --to "$(url $b)" --tenant "${bid[i]}" --since "$h0" --until "$until_s" \
    --dry-run >"$work/step.out" 2>"$work/step.err" || fail "repair --dry-run of tenant $i ($a, $b): $(cat "$work/step.err")"
done
ok "n2 repaired from n1 in $((SECONDS - t)) s ($copied points copied for pair1's $((NT / 2)) tenants); repair --dry-run of every tenant on its pair exits 0"

# ---- tenant 3 moves from pair1 to pair2 (docs/cluster.md, "Moving a tenant", "A replica pair")
T=${bid[MOVED]}
t=$SECONDS
for n in n3 n4; do # 1. history, to each new node
  "$metron" repair --from "$(url n1)" --to "$(url $n)" --tenant "$T" --since "$h0" --until "$until_s" \
    >"$work/step.out" 2>"$work/step.err" || fail "move, step 1, repair n1 -> $n: $(cat "$work/step.err")"
done
: >"$work/out" # 2. the flip, at run time and in the files
for h in $(awk -v t="$T" '$1 == t { print $2 }' "$work/tokens"); do
  hx "set map tenants.map $h pair2" >>"$work/out"
done
hx "set map business.map $T pair2" >>"$work/out"
[ -z "$(tr -d '\n' <"$work/out")" ] || fail "set map: $(cat "$work/out")"
sed -i "s/^$T .*/$T pair2/" "$work/assign"
maps || fail "metron-haproxy-map after the flip"
[ "$(hx "show map tenants.map" | grep . | cut -d' ' -f2- | sort)" = "$(sort "$work/tenants.map")" ] &&
  [ "$(hx "show map business.map" | grep . | cut -d' ' -f2- | sort)" = "$(sort "$work/business.map")" ] ||
  fail "the regenerated maps differ from HAProxy's: $(hx "show map tenants.map")"
scur() { hx "show stat" | awk -F, '$1 == "pair1" && ($2 == "r1" || $2 == "r2") { s += $5 } END { print s + 0 }'; }
drained() { [ "$(scur)" = 0 ]; }
wait_for 30 drained || fail "sessions on pair1 did not drain: $(scur)" # 3. drained
for n in n3 n4; do # 4. verify
  "$metron" repair --from "$(url n1)" --to "$(url $n)" --tenant "$T" --since "$h0" --until "$until_s" --dry-run \
    >"$work/step.out" 2>"$work/step.err" || fail "move, step 4, repair --dry-run n1 -> $n: $(cat "$work/step.err")"
done
# T's rows in PostgreSQL as pair2 mirrored them (the copies merged into n3's hours) before step 5,
# as in a real move where step 5 comes long after step 1
t_rows() { "$metron" rollup --url "$(url n3)" --from "$from" --to "$to" --group --format csv | grep -c "$T"; }
t_mirrored() {
  local want
  want=$(t_rows) && [ "$want" -gt 0 ] && [ "$(sql "SELECT count(*) FROM monitoring.hourly_metrics_summary WHERE business_id = '$T'")" = "$want" ]
}
wait_for 30 t_mirrored || fail "the moved tenant's rows never came from n3: $(t_rows) in its rollup"
for n in n1 n2; do # 5. remove from the old pair
  "$metron" delete --url "$(url $n)" --tenant "$T" --keep-mirror >"$work/step.out" 2>"$work/step.err" ||
    fail "move, step 5, delete on $n: $(cat "$work/step.err")"
  grep -q '"status":"success"' "$work/step.out" || fail "move, step 5, delete on $n: $(cat "$work/step.out")"
done
ok "tenant $MOVED moved from pair1 to pair2 in $((SECONDS - t)) s: copied to n3 and n4, flipped, drained, verified, deleted from n1 and n2"

# ---- (a) through HAProxy, (b) on each pair's nodes ---------------------------------------------
total=0
for ((i = 0; i < NT; i++)); do
  LC_ALL=C sort "$work/acked.$i" >"$work/acked.$i.sorted"
  [ -z "$(uniq -d "$work/acked.$i.sorted" | head -n 3)" ] || fail "the writer acknowledged a point of tenant $i twice"
  total=$((total + $(wc -l <"$work/acked.$i.sorted")))
  for p in "$f1" "$f2"; do
    curl -fsS -H "Authorization: Token ${tok[i]}" \
      "http://127.0.0.1:$p/api/v1/export?select=%7Bbusiness_id%3D%22${bid[i]}%22%7D&start=$h0&end=$until_s" |
      LC_ALL=C sort >"$work/read"
    missing=$(LC_ALL=C comm -23 "$work/acked.$i.sorted" "$work/read" | wc -l)
    extra=$(LC_ALL=C comm -13 "$work/acked.$i.sorted" "$work/read" | wc -l)
    twice=$(uniq -d "$work/read" | wc -l)
    [ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$twice" = 0 ] ||
      fail "tenant $i through HAProxy's $p against the acknowledged: $missing missing, $extra extra, $twice twice; e.g. $(LC_ALL=C comm -3 "$work/acked.$i.sorted" "$work/read" | head -n 3)"
  done
done
ok "(a) every acknowledged point ($total, $NT tenants) read through HAProxy, on both ports, exactly once"
for ((i = 0; i < NT; i++)); do
  if [ "$i" = "$MOVED" ] || [ "$(pair_of $i)" = pair2 ]; then a=n3 b=n4; else a=n1 b=n2; fi
  export_of $a "${bid[i]}" >"$work/on_a"
  export_of $b "${bid[i]}" >"$work/on_b"
  cmp -s "$work/on_a" "$work/on_b" || fail "tenant $i: $a and $b differ: $(diff "$work/on_a" "$work/on_b" | head -n 3)"
  cmp -s "$work/on_a" "$work/acked.$i.sorted" || fail "tenant $i: $a holds $(wc -l <"$work/on_a") points, acknowledged $(wc -l <"$work/acked.$i.sorted")"
done
for n in n1 n2; do
  [ "$(export_of $n "$T" | wc -l)" = 0 ] || fail "$n still holds points of the moved tenant"
done
ok "(b) both nodes of each tenant's pair export its acknowledged set; the moved tenant is on n3 and n4, not on n1 or n2"

# ---- a range of one pair1 tenant deleted (on both nodes, as writes go) --------------------------
# The sink replaces that tenant's rows of the hour only: pair2's tenants share the hour in the
# one database, and no node of pair1 could give theirs back (before: every row of the hour went).
for ((r = 0; r < NT; r++)); do [ "$r" != "$MOVED" ] && [ "$(pair_of $r)" = pair1 ] && break; done
for n in n1 n2; do
  curl -fsS -XPOST -H "Authorization: Token tok-sys" "$(url $n)/api/v1/admin/delete" \
    --data-urlencode "match={business_id=\"${bid[r]}\"}" --data-urlencode "start=$h0" \
    --data-urlencode "end=$((h0 + 3600))" >"$work/step.out" || fail "range delete on $n: $(cat "$work/step.out")"
  grep -q '"status":"success"' "$work/step.out" || fail "range delete on $n: $(cat "$work/step.out")"
done
ok "tenant $r's first hour deleted on n1 and n2 (POST /api/v1/admin/delete, match= start= end=)"

# ---- (c) PostgreSQL's hourly rows against a single node's rollup -------------------------------
rollup_of() { # rollup_of NODE groups|series: its rollups of [h0, until), sorted, no header
  local kind=--group
  [ "$2" = series ] && kind=--series
  "$metron" rollup --url "$(url "$1")" --from "$from" --to "$to" $kind --format csv |
    grep -v '^hour_bucket' | LC_ALL=C sort
}
outbox_empty() {
  local n d
  for n in n1 n2 n3 n4; do
    d=$(curl -fsS -H "Authorization: Token tok-sys" "$(url $n)/metrics" | awk '$1 == "metron_sink_outbox_depth" { print $2 }')
    [ "$d" = 0 ] || return 1
  done
}
# the expected rows: n1's rollups (pair1's tenants) and n3's (pair2's and the moved one)
expected() {
  for k in groups series; do
    { rollup_of n1 $k && rollup_of n3 $k; } | LC_ALL=C sort >"$work/all_$k.csv" || return 1
    pg_hourly_csv "$pg" $k >"$work/pgall_$k.csv" || return 1
    grep -v "$T" "$work/all_$k.csv" >"$work/metron_$k.csv" || true # the moved tenant: below
    grep -v "$T" "$work/pgall_$k.csv" >"$work/pg_$k.csv" || true
    grep "$T" "$work/all_$k.csv" >"$work/metron_moved_$k.csv" || true
    grep "$T" "$work/pgall_$k.csv" >"$work/pg_moved_$k.csv" || true
  done
}
converged() {
  outbox_empty && expected &&
    rollup_compare 4 "$work/metron_groups.csv" "$work/pg_groups.csv" &&
    rollup_compare 2 "$work/metron_series.csv" "$work/pg_series.csv"
}
t=$SECONDS
if ! wait_for 60 converged; then
  expected
  outbox_empty || fail "the sinks' outboxes never emptied"
  rollup_compare 4 "$work/metron_groups.csv" "$work/pg_groups.csv" >&2 || true
  rollup_compare 2 "$work/metron_series.csv" "$work/pg_series.csv" >&2 || true
  fail "PostgreSQL's hourly rows (the moved tenant's aside) never equalled n1's and n3's rollups"
fi
for k in groups series; do
  cmp -s <(rollup_of n1 $k) <(rollup_of n2 $k) || fail "n1's and n2's $k rollups differ"
  cmp -s <(rollup_of n3 $k) <(rollup_of n4 $k) || fail "n3's and n4's $k rollups differ"
done
g=$(wc -l <"$work/pg_groups.csv") s=$(wc -l <"$work/pg_series.csv")
ok "(c) PostgreSQL converged in $((SECONDS - t)) s: $g group rows and $s series rows of the $((NT - 1)) tenants that stayed, each equal to n1's or n3's rollup (n2's and n4's equal theirs)"
# The moved tenant: deleted from pair1 with --keep-mirror, its rows in PostgreSQL are pair2's.
mg=$(wc -l <"$work/metron_moved_groups.csv")
[ "$mg" -gt 0 ] || fail "n3's rollup holds no row of the moved tenant"
rollup_compare 4 "$work/metron_moved_groups.csv" "$work/pg_moved_groups.csv" &&
  rollup_compare 2 "$work/metron_moved_series.csv" "$work/pg_moved_series.csv" ||
  fail "the moved tenant's hourly rows in PostgreSQL after its delete from pair1: $(wc -l <"$work/pg_moved_groups.csv") group rows, n3's rollup has $mg"
ok "(c) the moved tenant's $mg group rows are in PostgreSQL, equal to n3's rollup (deleted from pair1 with --keep-mirror)"
dups=$(sql "SELECT count(*) FROM (SELECT 1 FROM monitoring.hourly_metrics_summary
            GROUP BY hour_bucket, business_id, metric_category, metric_name HAVING count(*) > 1) d")
dups_s=$(sql "SELECT count(*) FROM (SELECT 1 FROM monitoring.series_hourly_summary
              GROUP BY hour_bucket, series HAVING count(*) > 1) d")
[ "$dups" = 0 ] && [ "$dups_s" = 0 ] || fail "natural keys held twice: $dups group, $dups_s series"
ok "(c) every natural key once in PostgreSQL though each pair's two nodes upsert the same rows"
echo "# $NT tenants, $rounds rounds, $total points acknowledged; $((SECONDS - t_start)) s in all"
echo "1..$passed"
