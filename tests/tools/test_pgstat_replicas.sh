#!/usr/bin/env bash
# metron-pgstat --url A --url B (issue 24, item 2: an agent writes every batch to both replicas
# of a pair), against the test PostgreSQL and two real metronds:
#   - one round writes the same readings to A and B;
#   - with B killed (-9), A still gets the next round at once and B's copy waits in B's own
#     spool (DIR/url2), not in A's;
#   - B restarted, the next round first sends B its backlog: both nodes then hold the same
#     points, and every spool is empty.
#
#   test_pgstat_replicas.sh METROND METRON METRON_PGSTAT      (METRON_TEST_PG: the PostgreSQL)
set -euo pipefail
metrond=${1:?usage: test_pgstat_replicas.sh METROND METRON METRON_PGSTAT}
metron=${2:?usage: test_pgstat_replicas.sh METROND METRON METRON_PGSTAT}
pgstat=${3:?usage: test_pgstat_replicas.sh METROND METRON METRON_PGSTAT}
: "${METRON_TEST_PG:?METRON_TEST_PG is not set: run the suite through tools/test.sh}"
work=$(mktemp -d /tmp/metron-pgstat2.XXXXXX)
pid_a="" pid_b=""
passed=0
finish() {
  local rc=$?
  set +e
  for p in "$pid_a" "$pid_b"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  if [ "$rc" -ne 0 ]; then
    for f in a.log b.log pgstat.log; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 30 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh"

port_a=$(free_port)
port_b=$(free_port)
A=http://127.0.0.1:$port_a
B=http://127.0.0.1:$port_b
start() { # start a|b: in the background, until /health answers
  local n=$1 port
  [ "$n" = a ] && port=$port_a || port=$port_b
  "$metrond" --data "$work/data-$n" --http "127.0.0.1:$port" --lp-tcp off --lp-udp off \
    --retention-interval 0 --compact-interval 0 >>"$work/$n.log" 2>&1 &
  [ "$n" = a ] && pid_a=$! || pid_b=$!
  wait_for 30 curl -fsS "http://127.0.0.1:$port/health" || fail "metrond $n did not come up"
}
start a
start b

round() { # one baseline and one interval, pushed to both nodes
  "$pgstat" --pg "$METRON_TEST_PG" --url "$A" --url "$B" --no-sink --once --interval 1s \
    --spool "$work/spool" >>"$work/pgstat.log" 2>&1 || fail "metron-pgstat exited $?"
}
# stamps URL: the sorted timestamps of pg_database's points on that node
stamps() {
  "$metron" export --url "$1" 'pg_database' --from -1h --to $(($(date +%s) + 3600)) |
    awk '{print $NF}' | sort -u
}
spooled() { find "$work/spool" -name '*.lp' | wc -l; }

round
sa=$(stamps "$A") sb=$(stamps "$B")
[ -n "$sa" ] || fail "A has no pg_database point after a round"
[ "$sa" = "$sb" ] || fail "A and B differ after a round: $(echo "$sa" | wc -l) against $(echo "$sb" | wc -l) stamps"
ok "one round wrote the same readings to both nodes ($(echo "$sa" | wc -l) stamps)"

kill -KILL "$pid_b" && wait "$pid_b" 2>/dev/null || true
pid_b=""
round
[ "$(stamps "$A" | wc -l)" -gt "$(echo "$sa" | wc -l)" ] || fail "A did not get the round while B was down"
[ "$(find "$work/spool" -maxdepth 1 -name '*.lp' | wc -l)" = 0 ] || fail "A's spool holds a push"
[ "$(find "$work/spool/url2" -name '*.lp' | wc -l)" -ge 1 ] || fail "B's push is not in spool/url2"
ok "with B killed, A got the round at once and B's copy waits in its own spool"

start b
round
sa=$(stamps "$A") sb=$(stamps "$B")
[ "$sa" = "$sb" ] || fail "after B came back the nodes differ: $(echo "$sa" | wc -l) against $(echo "$sb" | wc -l) stamps"
[ "$(spooled)" = 0 ] || fail "$(spooled) pushes are still spooled"
ok "B restarted got its backlog: both nodes hold the same $(echo "$sa" | wc -l) stamps, no spool left"
echo "$passed passed, 0 failed"
