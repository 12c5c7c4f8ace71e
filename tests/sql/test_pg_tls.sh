#!/usr/bin/env bash
# The PostgreSQL URL's sslmode is honoured as libpq reads it, by every
# Metron program that connects: `metron schema`, metrond's sink and
# metron-pgstat. A throwaway PostgreSQL serves TLS with a certificate from a
# test CA; a second one serves no TLS at all.
#
#   test_pg_tls.sh METRON METROND METRON_PGSTAT
#
# Both servers, metrond and the temporary directory go on any exit.
set -euo pipefail
metron=${1:?usage: test_pg_tls.sh METRON METROND METRON_PGSTAT}
metrond=${2:?usage: test_pg_tls.sh METRON METROND METRON_PGSTAT}
pgstat=${3:?usage: test_pg_tls.sh METRON METROND METRON_PGSTAT}
support=$(cd "$(dirname "$0")/../support" && pwd)

work=$(mktemp -d /tmp/metron-pgtls.XXXXXX)
chmod 755 "$work" # the servers run as 'postgres' under it when we are root
metrond_pid=""
passed=0
finish() {
  local rc=$?
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in metrond.log pg-tls/server.log; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  "$support/pg_tmp.sh" stop "$work/pg-tls" || true
  "$support/pg_tmp.sh" stop "$work/pg-plain" || true
  rm -rf "$work"
}
trap finish EXIT
fail() { echo "not ok - $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
wait_for() { # wait_for SECONDS CMD...: polls CMD until it succeeds or the deadline passes
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)/psql

"$support/tls_ca.sh" "$work/certs"
ca=$work/certs/ca.pem
other=$work/certs/other-ca.pem
url=$(PG_TMP_SSL_CERT=$work/certs/server.pem PG_TMP_SSL_KEY=$work/certs/server.key \
  "$support/pg_tmp.sh" start "$work/pg-tls")
plain=$(PG_TMP_SSL_CERT='' "$support/pg_tmp.sh" start "$work/pg-plain")
port=${url##*:}
port=${port%%/*}
log=$work/pg-tls/server.log

# A connection's line in the server log (log_connections): it says whether it used TLS.
authorized() { grep -E "connection authorized: .*application_name=$1 SSL enabled \(protocol=TLSv1\.[23]" "$log"; }
# sql URL QUERY: one value
sql() { "$psql_bin" "$1" -qAtX -c "$2"; }

# metron schema: install and check over verify-full
verify="sslmode=verify-full&sslrootcert=$ca"
"$metron" schema install --pg "$url?$verify&application_name=metron_schema_tls" >"$work/out" 2>&1 \
  || fail "schema install over verify-full: $(cat "$work/out")"
authorized metron_schema_tls >/dev/null || fail "schema install did not use TLS: $(grep authorized "$log")"
"$metron" schema check --pg "$url?$verify" >"$work/out" 2>&1 || fail "schema check: $(cat "$work/out")"
grep -q 'no drift' "$work/out" || fail "schema check: $(cat "$work/out")"
ok "metron schema install and check over sslmode=verify-full (the server logs TLS for the connection)"

# verify-full: a CA that did not sign the certificate, and a host name the certificate lacks
set +e
"$metron" schema check --pg "$url?sslmode=verify-full&sslrootcert=$other" >"$work/out" 2>&1
rc_ca=$?
"$metron" schema check \
  --pg "postgresql://postgres@db.example:$port/metron_test?hostaddr=127.0.0.1&$verify" \
  >"$work/out2" 2>&1
rc_name=$?
set -e
[ "$rc_ca" = 1 ] || fail "verify-full with another CA: exit $rc_ca: $(cat "$work/out")"
grep -q 'cannot connect to PostgreSQL: .*certificate verify failed' "$work/out" || fail "$(cat "$work/out")"
[ "$rc_name" = 1 ] || fail "verify-full with another host name: exit $rc_name: $(cat "$work/out2")"
grep -q 'server certificate for "localhost".* does not match host name "db.example"' "$work/out2" \
  || fail "$(cat "$work/out2")"
# verify-ca checks the chain but not the name: the same URL passes
"$metron" schema check \
  --pg "postgresql://postgres@db.example:$port/metron_test?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert=$ca" \
  >"$work/out" 2>&1 || fail "verify-ca: $(cat "$work/out")"
ok "verify-full refuses another CA (certificate verify failed) and another name; verify-ca takes the name"

# require against a server without TLS
set +e
"$metron" schema check --pg "$plain?sslmode=require" >"$work/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "sslmode=require on a server without TLS: exit $rc: $(cat "$work/out")"
grep -q 'server does not support SSL, but SSL was required' "$work/out" || fail "$(cat "$work/out")"
ok "sslmode=require on a server without TLS: refused, and the error says so"

# metrond's sink (and its rule follower) on the same URL form
http=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_metrond() { # start_metrond POSTGRES_URL
  "$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
    --grace 3600 --retention-interval 0 --compact-interval 0 --postgres "$1" \
    >"$work/metrond.log" 2>&1 &
  metrond_pid=$!
  wait_for 30 curl -fsS "http://127.0.0.1:$http/health" || fail "metrond did not come up"
}
stop_metrond() {
  kill -TERM "$metrond_pid"
  wait "$metrond_pid" || fail "metrond exited with $?"
  metrond_pid=""
}
sink_tls() { # the sink's backends (and the rule follower's): how many, all over TLS
  sql "$url" "SELECT count(*) || ' ' || coalesce(bool_and(s.ssl), false) FROM pg_stat_activity a
              JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'metrond_sink_tls'"
}
start_metrond "$url?$verify&application_name=metrond_sink_tls"
wait_for 20 grep -q 'sink connected to PostgreSQL' "$work/metrond.log" || fail "the sink did not connect"
got=$(sink_tls)
[ "${got#* }" = true ] && [ "${got%% *}" -gt 0 ] || fail "the sink's connections (count, all TLS): $got"
# the whole answer first: grep -q stops reading at its match, and curl then fails writing
metrics=$(curl -fsS "http://127.0.0.1:$http/metrics") || fail "/metrics did not answer"
grep -q '^metron_sink_connected 1' <<<"$metrics" || fail "metron_sink_connected is not 1"
stop_metrond
start_metrond "$url?sslmode=verify-full&sslrootcert=$other"
wait_for 20 grep -q 'sink cannot reach PostgreSQL.*certificate verify failed' "$work/metrond.log" \
  || fail "the sink with another CA: $(grep sink "$work/metrond.log")"
stop_metrond
ok "metrond's sink connects over verify-full (pg_stat_ssl), and with another CA logs the certificate failure"

# metron-pgstat: the watched server over verify-full
"$pgstat" --pg "$url?$verify&application_name=pgstat_tls" --once --print --interval 1s \
  >"$work/lp" 2>"$work/pgstat.err" || fail "metron-pgstat: $(cat "$work/pgstat.err")"
grep -q '^pg_' "$work/lp" || fail "metron-pgstat printed no pg_ lines: $(head -c 500 "$work/lp")"
authorized pgstat_tls >/dev/null || fail "metron-pgstat did not use TLS"
"$pgstat" --pg "$url?sslmode=verify-full&sslrootcert=$other" --once --print --interval 1s \
  >"$work/lp" 2>"$work/pgstat.err" || true
grep -q 'cannot connect.*certificate verify failed' "$work/pgstat.err" || fail "$(cat "$work/pgstat.err")"
[ ! -s "$work/lp" ] || fail "metron-pgstat read a server it should not trust"
ok "metron-pgstat reads over verify-full, and refuses another CA"

echo "$passed passed, 0 failed"
