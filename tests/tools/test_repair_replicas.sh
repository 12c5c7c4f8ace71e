#!/usr/bin/env bash
# metron repair --from URL --to URL --tenant (issue 24, item 2), between two real metronds:
#   - A and B share one tokens file (tenants T1, T2 and a system token); both tenants' points
#     of four hours are written to both, except while B is down (kill -9) in the middle, when
#     A alone takes them;
#   - --dry-run names the hours that differ (exit 3) and copies nothing;
#   - a T2 token asked to repair T1 is refused before anything is copied (the tenant comes from
#     the token, X-Metron-Tenant); a wrong token's 401 is named with the URL;
#   - the repair with T1's token copies exactly the missed points, verifies every hour (exit 0);
#     A's and B's exports of T1 are then byte for byte the same, hour by hour; T2's points on
#     B are untouched; a second run copies nothing;
#   - a point only B has makes the one-way repair fail naming the hour; --both makes the pair
#     equal; the system token repairs T2.
#
#   test_repair_replicas.sh METROND METRON
#
# Everything runs on 127.0.0.1 on free ports, under one temporary directory; every process
# started is stopped and the directory removed on any exit. Waits poll with deadlines.
set -euo pipefail
metrond=${1:?usage: test_repair_replicas.sh METROND METRON}
metron=${2:?usage: test_repair_replicas.sh METROND METRON}
T1=11111111-5e91-4000-8000-000000000001
T2=22222222-5e91-4000-8000-000000000002
work=$(mktemp -d /tmp/metron-repair.XXXXXX)
pid_a="" pid_b=""
passed=0
finish() {
  local rc=$?
  set +e
  for p in "$pid_a" "$pid_b"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  if [ "$rc" -ne 0 ]; then
    for f in a.log b.log repair.out repair.err; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 30 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh"

{
  printf '* %s\n' "$(printf %s tok-sys | "$metrond" --hash-token)"
  printf '%s %s\n' "$T1" "$(printf %s tok-1 | "$metrond" --hash-token)"
  printf '%s %s\n' "$T2" "$(printf %s tok-2 | "$metrond" --hash-token)"
} >"$work/tokens"
port_a=$(free_port)
port_b=$(free_port)
A=http://127.0.0.1:$port_a
B=http://127.0.0.1:$port_b
start() { # start a|b: in the background, until /health answers
  local n=$1 port
  [ "$n" = a ] && port=$port_a || port=$port_b
  "$metrond" --data "$work/data-$n" --http "127.0.0.1:$port" --lp-tcp off --lp-udp off \
    --tokens-file "$work/tokens" --retention-interval 0 --compact-interval 0 \
    >>"$work/$n.log" 2>&1 &
  [ "$n" = a ] && pid_a=$! || pid_b=$!
  wait_for 30 curl -fsS "http://127.0.0.1:$port/health" || fail "metrond $n did not come up"
}
start a
start b

# write URL TOKEN FILE: POST line protocol (seconds), 204 expected
write() {
  local code
  code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST -H "Authorization: Token $2" \
    --data-binary @"$3" "$1/write?db=metron&precision=s")
  [ "$code" = 204 ] || fail "write $3 to $1: $code $(cat "$work/resp")"
}
# points T FROM TO: both tenants' cpu and mem of 3 hosts, every 30 s of [FROM, TO)
points() {
  local t=$1 from=$2 to=$3 s
  for ((s = from; s < to; s += 30)); do
    for host in h1 h2 h3; do
      if [ "$t" = 1 ]; then
        echo "cpu,host=$host usage=$(((s / 30 + ${host#h}) % 97)).25 $s"
        echo "mem,host=$host used=$(((s / 30) % 1013 + ${host#h}))i $s"
      else
        echo "disk,host=$host free=$(((s / 30 + ${host#h}) % 89)).5 $s"
      fi
    done
  done
}
now=$(date +%s)
h=$((now / 3600 * 3600))
t0=$((h - 3 * 3600)) # four hours: h-3h .. now
down=$((h - 2 * 3600 + 1800)) up=$((h - 3600 + 1200))
for t in 1 2; do
  points $t $t0 $down >"$work/p1-$t.lp"
  points $t $down $up >"$work/p2-$t.lp"
  points $t $up $now >"$work/p3-$t.lp"
done
for u in $A $B; do write $u tok-1 "$work/p1-1.lp" && write $u tok-2 "$work/p1-2.lp"; done
kill -KILL "$pid_b" && wait "$pid_b" 2>/dev/null || true
pid_b=""
write $A tok-1 "$work/p2-1.lp"
write $A tok-2 "$work/p2-2.lp"
start b
for u in $A $B; do write $u tok-1 "$work/p3-1.lp" && write $u tok-2 "$work/p3-2.lp"; done
missed=$(wc -l <"$work/p2-1.lp")
ok "A took every point; B was killed (-9) for $((up - down)) s and missed $missed of T1's"

# exp URL TOKEN FROM TO: the export of [FROM, TO) as that token sees it
exp() { METRON_TOKEN=$2 "$metron" export --url "$1" '{__name__=~".+"}' --from "$3" --to "$4"; }
exp $B tok-2 $t0 $((now + 60)) >"$work/b-t2-before.lp"
exp $B tok-1 $t0 $((now + 60)) >"$work/b-t1-before.lp"
[ -s "$work/b-t2-before.lp" ] && [ -s "$work/b-t1-before.lp" ] || fail "B has no points to begin with"
since=$((t0 - 3600))

rc=0
METRON_TOKEN=tok-1 "$metron" repair --from $A --to $B --tenant $T1 --since $since --dry-run \
  >"$work/repair.out" 2>"$work/repair.err" || rc=$?
[ "$rc" = 3 ] || fail "dry run: exit $rc: $(cat "$work/repair.err")"
differs=$(awk '$NF == "differs" {print $1}' "$work/repair.out" | tr '\n' ' ')
want_h="$(date -u -d @$((h - 7200)) +%FT%TZ) $(date -u -d @$((h - 3600)) +%FT%TZ) "
[ "$differs" = "$want_h" ] || fail "dry run lists '$differs', not '$want_h': $(cat "$work/repair.out")"
exp $B tok-1 $t0 $((now + 60)) | cmp -s - "$work/b-t1-before.lp" || fail "the dry run wrote"
ok "--dry-run names the two hours B missed part of ($differs), exit 3, nothing written"

curl -sS -D "$work/headers" -o /dev/null -H "Authorization: Token tok-2" "$A/api/v1/export?select=disk"
grep -qi "^X-Metron-Tenant: $T2" "$work/headers" || fail "no X-Metron-Tenant: $(cat "$work/headers")"
rc=0
METRON_TOKEN=tok-2 "$metron" repair --from $A --to $B --tenant $T1 --since $since \
  >"$work/repair.out" 2>"$work/repair.err" || rc=$?
[ "$rc" = 1 ] || fail "T2's token repairing T1: exit $rc: $(cat "$work/repair.out" "$work/repair.err")"
grep -q "token is tenant $T2's, not $T1's" "$work/repair.err" || fail "refusal: $(cat "$work/repair.err")"
exp $B tok-1 $t0 $((now + 60)) | cmp -s - "$work/b-t1-before.lp" || fail "the refused repair wrote"
ok "T2's token cannot repair T1: $(head -n 1 "$work/repair.err")"

rc=0
METRON_TOKEN=bogus "$metron" repair --from $A --to $B --tenant $T1 --since $since \
  >"$work/repair.out" 2>"$work/repair.err" || rc=$?
[ "$rc" = 1 ] && grep -q "$A/api/v1/export answered 401" "$work/repair.err" ||
  fail "a wrong token: exit $rc: $(cat "$work/repair.err")"
ok "a wrong token: exit 1, naming the URL and the status"

t_start=$(date +%s.%N)
METRON_TOKEN=tok-1 "$metron" repair --from $A --to $B --tenant $T1 --since $since \
  >"$work/repair.out" 2>"$work/repair.err" || fail "repair: exit $?: $(cat "$work/repair.err")"
t_took=$(echo "$(date +%s.%N) - $t_start" | bc)
cat "$work/repair.out"
copied=$(awk 'NR > 1 {s += $6} END {print s}' "$work/repair.out")
[ "$copied" -ge "$missed" ] || fail "copied $copied points, fewer than the $missed missed"
awk 'NR > 1 && $NF != "yes" {exit 1}' "$work/repair.out" || fail "an hour did not verify"
for ((s = t0; s < now; s += 3600)); do
  exp $A tok-1 $s $((s + 3600)) >"$work/a.lp"
  exp $B tok-1 $s $((s + 3600)) >"$work/b.lp"
  [ -s "$work/a.lp" ] && cmp -s "$work/a.lp" "$work/b.lp" || fail "hour $s: A and B differ for T1"
done
ok "repair copied $copied points (hours with a gap, in full) in $t_took s; T1's exports of A and B equal hour by hour"

exp $B tok-2 $t0 $((now + 60)) | cmp -s - "$work/b-t2-before.lp" || fail "T2's points on B changed"
ok "T2's points on B untouched (still without its gap)"

METRON_TOKEN=tok-1 "$metron" repair --from $A --to $B --tenant $T1 --since $since \
  >"$work/repair.out" 2>"$work/repair.err" || fail "second repair: exit $?: $(cat "$work/repair.err")"
[ "$(awk 'NR > 1 {s += $6} END {print s}' "$work/repair.out")" = 0 ] ||
  fail "the second run copied: $(cat "$work/repair.out")"
ok "a second run copies nothing: $(tail -n 1 "$work/repair.err")"

# a point B alone has (A missed it): one-way cannot verify; --both can
echo "cpu,host=h9 usage=1.5 $((t0 + 60))" >"$work/extra.lp"
write $B tok-1 "$work/extra.lp"
rc=0
METRON_TOKEN=tok-1 "$metron" repair --from $A --to $B --tenant $T1 --since $since \
  >"$work/repair.out" 2>"$work/repair.err" || rc=$?
hour3=$(date -u -d @$t0 +%FT%TZ)
[ "$rc" = 1 ] && grep -q "do not verify equal: $hour3 (to has more)" "$work/repair.err" &&
  grep -q -- "--both" "$work/repair.err" || fail "one-way with more on B: exit $rc: $(cat "$work/repair.err")"
ok "one-way: B holding a point A lacks fails naming $hour3 and --both"
METRON_TOKEN=tok-1 "$metron" repair --from $A --to $B --tenant $T1 --since $since --both \
  >"$work/repair.out" 2>"$work/repair.err" || fail "--both: exit $?: $(cat "$work/repair.err")"
exp $A tok-1 $t0 $((now + 60)) >"$work/a.lp"
exp $B tok-1 $t0 $((now + 60)) >"$work/b.lp"
grep -q "host=h9" "$work/a.lp" && cmp -s "$work/a.lp" "$work/b.lp" || fail "--both: A and B differ"
ok "--both: A took B's point, the pair is equal"

"$metron" repair --from $A --to $B --tenant $T2 --since $since --token tok-sys \
  >"$work/repair.out" 2>"$work/repair.err" || fail "system token: exit $?: $(cat "$work/repair.err")"
exp $A tok-2 $t0 $((now + 60)) >"$work/a.lp"
exp $B tok-2 $t0 $((now + 60)) >"$work/b.lp"
cmp -s "$work/a.lp" "$work/b.lp" || fail "T2 after the system token's repair: A and B differ"
grep -q "$T1" "$work/b.lp" && fail "T2's export holds T1"
ok "the system token repairs T2 (--tenant): $(tail -n 1 "$work/repair.err")"
echo "$passed passed"
