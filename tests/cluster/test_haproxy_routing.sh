#!/usr/bin/env bash
# Routing by tenant through HAProxy (issue 24, item 1): deploy/haproxy/metron.cfg as shipped
# (its global, defaults and frontend; only the listen addresses, the socket path and the
# backends are the test's), the maps printed by tools/metron-haproxy-map, three metrond nodes:
#   A holds tenant 1, B tenant 2, the pair B+C (r1 = B, r2 = C) tenant 3.
# It checks, querying each node directly with the system token:
#   - a write with tenant 1's token (Token, Bearer, Basic, ?p=) lands on A only; tenant 2's
#     on B only; reads through HAProxy answer the tenant's points;
#   - a system token routes by ?tenant=BID; without it, or with an unknown one, 400;
#   - a token the map does not know gets 401 from HAProxy with metrond's body (v1 and v2);
#     no token at all reaches a node: /ping 204, a write metrond's own 401;
#   - tenant 3: writes on port 1 land on B, on port 2 on C;
#   - `set map` on the runtime socket moves tenant 2 to C (the next write lands on C);
#     `del map` makes a token unknown (401), `add map` brings it back; a regenerated map
#     swapped in whole (prepare map, add map with a payload, commit map) moves tenant 1 to C;
#   - health checks on /ready (L7OK 200); B killed with -9 is marked DOWN (show stat, polled
#     with a deadline); tenant 3's reads still answer through C, and a write for replica 1
#     goes to C; B restarted is UP again.
#
#   test_haproxy_routing.sh METROND
#
# Everything listens on 127.0.0.1 on free ports under one temporary directory; every process
# started is stopped and the directory removed on any exit. Waits poll with deadlines.
set -euo pipefail
metrond=${1:?usage: test_haproxy_routing.sh METROND}
root=$(cd "$(dirname "$0")/../.." && pwd)
mapper=$root/tools/metron-haproxy-map

T1=11111111-0a7e-4000-8000-000000000001
T2=22222222-0a7e-4000-8000-000000000002
T3=33333333-0a7e-4000-8000-000000000003
work=$(mktemp -d /tmp/metron-route.XXXXXX)
declare -A port pid
haproxy_pid=""
passed=0
finish() {
  local rc=$?
  set +e # a stopped process's status (143) must not end the cleanup
  [ -n "$haproxy_pid" ] && kill -TERM "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
  for n in a b c; do stop_node $n; done
  if [ "$rc" -ne 0 ]; then
    for f in haproxy.log a.log b.log c.log; do
      [ -s "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
# hash, start_node, stop_node, haproxy_config, start_haproxy, hx, status, all_up; testlib.sh's
# fail, ok, free_port, wait_for
. "$root/tests/cluster/cluster_lib.sh"

# ---- three nodes, one tokens file ----------------------------------------------------------
{
  echo "# the tokens file every node reads"
  printf '* %s\n' "$(hash tok-sys)"
  printf '%s %s\n' "$T1" "$(hash tok-1)" "$T2" "$(hash tok-2)" "$T3" "$(hash tok-3)"
} >"$work/tokens"
for n in a b c; do start_node $n; done
ok "nodes A, B, C up on ${port[a]}, ${port[b]}, ${port[c]}"

# ---- HAProxy: the shipped configuration, the test's addresses and backends -------------------
haproxy_config
cat >>"$work/metron.cfg" <<EOF
backend node_a
    server r1 127.0.0.1:${port[a]}
backend node_b
    server r1 127.0.0.1:${port[b]}
backend node_c
    server r1 127.0.0.1:${port[c]}
backend pair_bc
    server r1 127.0.0.1:${port[b]}
    server r2 127.0.0.1:${port[c]}
    use-server r1 if { var(txn.replica) -m int 1 }
    use-server r2 if { var(txn.replica) -m int 2 }
backend any
    server a 127.0.0.1:${port[a]}
    server b 127.0.0.1:${port[b]}
    server c 127.0.0.1:${port[c]}
EOF
printf '%s node_a\n%s node_b\n%s pair_bc\n' "$T1" "$T2" "$T3" >"$work/assign"

# the maps, and the tool's refusals naming file and line
"$mapper" --config "$work/metron.cfg" "$work/tokens" "$work/assign" >"$work/tenants.map"
"$mapper" --business --config "$work/metron.cfg" "$work/tokens" "$work/assign" >"$work/business.map"
[ "$(cat "$work/tenants.map")" = "$(hash tok-sys) *
$(hash tok-1) node_a
$(hash tok-2) node_b
$(hash tok-3) pair_bc" ] || fail "tenants.map: $(cat "$work/tenants.map")"
[ "$(cat "$work/business.map")" = "$T1 node_a
$T2 node_b
$T3 pair_bc" ] || fail "business.map: $(cat "$work/business.map")"
head -n 2 "$work/assign" >"$work/assign2"
rc=0
"$mapper" "$work/tokens" "$work/assign2" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$work/out" ] &&
  [ "$(cat "$work/err")" = "$work/tokens line 5: tenant $T3 has no backend in $work/assign2" ] ||
  fail "unplaced tenant: rc $rc, stdout $(cat "$work/out"), stderr $(cat "$work/err")"
echo "$T1 pair_zz" >"$work/assign3"
rc=0
"$mapper" --config "$work/metron.cfg" "$work/tokens" "$work/assign3" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$work/out" ] &&
  [ "$(cat "$work/err")" = "$work/assign3 line 1: backend pair_zz is not a backend of $work/metron.cfg" ] ||
  fail "unknown backend: rc $rc, stdout $(cat "$work/out"), stderr $(cat "$work/err")"
ok "metron-haproxy-map: both maps; a tenant without a backend and an unknown backend refused by file and line"

start_haproxy
wait_for 30 all_up pair_bc,r2 || fail "HAProxy's servers not all UP: $(hx "show stat" 2>&1 | cut -d, -f1,2,18,37)"
[ "$(status pair_bc r1)" = "UP L7OK 200" ] || fail "pair_bc r1: $(status pair_bc r1)"
ok "HAProxy up on $f1 and $f2; every server UP, checked on /ready (L7OK 200)"

# ---- writes and reads through HAProxy ------------------------------------------------------
now=$(date +%s)
seq=0
# put PORT LINE CURL-ARGS...: POST /write through HAProxy's PORT; prints the status.
put() {
  local p=$1 line=$2
  shift 2
  curl -sS -o "$work/resp" -w '%{http_code}' -XPOST "$@" --data-binary "$line" \
    "http://127.0.0.1:$p/write?db=metron&precision=s${Q:-}"
}
# write PORT TENANT CURL-ARGS...: one new point of TENANT through PORT, 204 or fail.
write() {
  local p=$1 t=$2 code
  shift 2
  seq=$((seq + 1))
  code=$(put "$p" "cpu,host=h$seq usage=$seq $((now - 600 + seq))" "$@")
  [ "$code" = 204 ] || fail "write $seq of $t via $p ($*): $code $(cat "$work/resp")"
}
# where TENANT: its points on each node, read directly with the system token.
where() {
  local out="" n c
  for n in a b c; do
    if [ -z "${pid[$n]}" ]; then
      out="$out $n=-"
      continue
    fi
    c=$(curl -fsS -H "Authorization: Token tok-sys" \
      "http://127.0.0.1:${port[$n]}/api/v1/export?select=*" | grep -c "business_id=$1," || true)
    out="$out $n=$c"
  done
  echo "${out# }"
}
expect_where() { [ "$(where "$1")" = "$2" ] || fail "$3: tenant $1 is at $(where "$1"), expected $2"; }

write "$f1" T1 -H "Authorization: Token tok-1"
expect_where "$T1" "a=1 b=0 c=0" "Token via port 1"
write "$f2" T1 -H "Authorization: Bearer tok-1"
write "$f1" T1 -u "grafana:tok-1"
Q="&u=x&p=tok-1" write "$f1" T1
expect_where "$T1" "a=4 b=0 c=0" "Bearer, Basic, ?p="
write "$f1" T2 -H "Authorization: Token tok-2"
expect_where "$T2" "a=0 b=1 c=0" "tenant 2"
ok "tenant 1's writes (Token, Bearer, Basic, ?p=) on A only; tenant 2's on B only"

n=$(curl -fsS -H "Authorization: Token tok-1" "http://127.0.0.1:$f2/api/v1/export?select=*" | grep -c "business_id=$T1," || true)
[ "$n" = 4 ] || fail "tenant 1's read through HAProxy: $n points, expected 4"
n=$(curl -fsS -H "Authorization: Bearer tok-2" "http://127.0.0.1:$f1/api/v1/export?select=*" | grep -c . || true)
[ "$n" = 1 ] || fail "tenant 2's read through HAProxy: $n points, expected 1"
ok "reads through HAProxy answer the tenant's points"

# a system token: routed by tenant=
Q="&tenant=$T2" code=$(put "$f1" "cpu,business_id=$T2,host=sys usage=1 $now" -H "Authorization: Token tok-sys")
[ "$code" = 204 ] || fail "system write with tenant=: $code $(cat "$work/resp")"
expect_where "$T2" "a=0 b=2 c=0" "system token, tenant=T2"
for q in "" "&tenant=44444444-0a7e-4000-8000-000000000004"; do
  Q=$q code=$(put "$f1" "cpu,business_id=$T2,host=sys usage=2 $now" -H "Authorization: Token tok-sys")
  [ "$code" = 400 ] && grep -q 'a system token routes by tenant=BID' "$work/resp" ||
    fail "system write, query '$q': $code $(cat "$work/resp")"
done
ok "system token: routed by tenant=; 400 without it or with an unknown tenant"

# unknown tokens: 401 from HAProxy, as metrond words it
code=$(put "$f1" "cpu v=1" -H "Authorization: Token tok-nobody")
[ "$code" = 401 ] && [ "$(cat "$work/resp")" = '{"error":"authorization failed"}' ] ||
  fail "unknown token: $code $(cat "$work/resp")"
code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST -H "Authorization: Token tok-nobody" \
  --data-binary "cpu v=1" "http://127.0.0.1:$f2/api/v2/write?bucket=metron")
[ "$code" = 401 ] && [ "$(cat "$work/resp")" = '{"code":"unauthorized","message":"authorization failed"}' ] ||
  fail "unknown token, v2: $code $(cat "$work/resp")"
code=$(put "$f1" "cpu v=1")
[ "$code" = 401 ] && grep -q 'unable to parse authentication credentials' "$work/resp" ||
  fail "no token: $code $(cat "$work/resp")"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$f1/ping")
[ "$code" = 204 ] || fail "/ping through HAProxy: $code"
ok "an unknown token gets HAProxy's 401 (v1 and v2 bodies); no token: metrond's 401; /ping 204"

# tenant 3 on the pair: port 1 writes to r1 (B), port 2 to r2 (C); a double write to both
write "$f1" T3 -H "Authorization: Token tok-3"
expect_where "$T3" "a=0 b=1 c=0" "tenant 3 via port 1"
write "$f2" T3 -H "Authorization: Token tok-3"
expect_where "$T3" "a=0 b=1 c=1" "tenant 3 via port 2"
line="cpu,host=both usage=7 $((now - 30))"
for p in "$f1" "$f2"; do
  code=$(put "$p" "$line" -H "Authorization: Token tok-3")
  [ "$code" = 204 ] || fail "tenant 3's double write via $p: $code"
done
expect_where "$T3" "a=0 b=2 c=2" "tenant 3's double write"
ok "tenant 3: port 1 writes to B, port 2 to C; an agent's double write reaches both"

# ---- the runtime API: move tenant 2 to C, drop and restore a token ---------------------------
h2=$(hash tok-2)
hx "set map tenants.map $h2 node_c" >"$work/out"
hx "set map business.map $T2 node_c" >>"$work/out"
[ -z "$(tr -d '\n' <"$work/out")" ] || fail "set map: $(cat "$work/out")"
hx "show map tenants.map" | grep -q " $h2 node_c$" || fail "show map: $(hx "show map tenants.map")"
write "$f1" T2 -H "Authorization: Token tok-2"
expect_where "$T2" "a=0 b=2 c=1" "tenant 2 after set map"
Q="&tenant=$T2" code=$(put "$f2" "cpu,business_id=$T2,host=sys usage=3 $now" -H "Authorization: Token tok-sys")
[ "$code" = 204 ] || fail "system write after set map: $code $(cat "$work/resp")"
expect_where "$T2" "a=0 b=2 c=2" "system token's tenant 2 after set map"
h1=$(hash tok-1)
hx "del map tenants.map $h1" >/dev/null
code=$(put "$f1" "cpu v=1" -H "Authorization: Token tok-1")
[ "$code" = 401 ] || fail "tenant 1 after del map: $code $(cat "$work/resp")"
hx "add map tenants.map $h1 node_a" >/dev/null
write "$f1" T1 -H "Authorization: Token tok-1"
expect_where "$T1" "a=5 b=0 c=0" "tenant 1 after add map"
ok "runtime API: set map moves tenant 2 to C; del map -> 401, add map -> routed again"

# a whole regenerated map swapped in at once (prepare, add with a payload, commit: docs/cluster.md)
printf '%s node_c\n%s node_c\n%s pair_bc\n' "$T1" "$T2" "$T3" >"$work/assign"
"$mapper" --config "$work/metron.cfg" "$work/tokens" "$work/assign" >"$work/tenants.map.new"
v=$(hx "prepare map tenants.map")
[ "${v% *}" = "New version created:" ] || fail "prepare map: $v"
v=${v##* }
{
  printf 'add map @%s tenants.map <<\n' "$v"
  cat "$work/tenants.map.new"
  echo
} | "$socat" -t 5 - "UNIX-CONNECT:$sock" >"$work/out"
hx "commit map @$v tenants.map" >>"$work/out"
[ -z "$(tr -d '\n' <"$work/out")" ] || fail "add map payload, commit map: $(cat "$work/out")"
[ "$(hx "show map tenants.map" | grep . | cut -d' ' -f2- | sort)" = "$(sort "$work/tenants.map.new")" ] ||
  fail "after commit map: $(hx "show map tenants.map")"
write "$f1" T1 -H "Authorization: Token tok-1"
expect_where "$T1" "a=5 b=0 c=1" "tenant 1 after the regenerated map"
ok "a regenerated tenants.map swapped in whole (prepare/add/commit map): tenant 1 now on C"

# ---- a node dies -----------------------------------------------------------------------------
stop_node b KILL
down() { [ "$(status pair_bc r1 | cut -d' ' -f1)" = DOWN ] && [ "$(status node_b r1 | cut -d' ' -f1)" = DOWN ]; }
t0=$SECONDS
wait_for 20 down || fail "B not marked DOWN: pair_bc r1 $(status pair_bc r1)"
ok "B killed: marked DOWN after $((SECONDS - t0)) s (pair_bc r1: $(status pair_bc r1))"
for i in 1 2 3 4; do
  for p in "$f1" "$f2"; do
    n=$(curl -fsS -H "Authorization: Token tok-3" "http://127.0.0.1:$p/api/v1/export?select=*" |
      grep -c "business_id=$T3," || true)
    [ "$n" = 2 ] || fail "tenant 3's read $i via $p with B down: $n points, expected C's 2"
  done
done
write "$f1" T3 -H "Authorization: Token tok-3"
expect_where "$T3" "a=0 b=- c=3" "tenant 3's replica-1 write with B down"
ok "tenant 3 with B down: reads answer from C (8 of 8); a replica-1 write goes to C"

start_node b
wait_for 20 all_up pair_bc,r2 || fail "B not UP again: pair_bc r1 $(status pair_bc r1)"
ok "B restarted: UP again (pair_bc r1: $(status pair_bc r1))"
echo "1..$passed"
