#!/usr/bin/env bash
# HTTPS in front of metrond, as docs/operations.md ("TLS") tells: the nginx
# block is taken from that page (only the port, the certificate paths and
# metrond's address changed), so the page cannot drift from what is tested.
# Real TLS clients go through it: curl and Debian's python3-influxdb.
#
#   test_tls.sh METROND DOC INFLUX_CLIENT_PY
#
# Everything runs on 127.0.0.1 on free ports, under one temporary directory;
# nginx and metrond are stopped and the directory removed on any exit.
set -euo pipefail
metrond=${1:?usage: test_tls.sh METROND DOC INFLUX_CLIENT_PY}
doc=${2:?usage: test_tls.sh METROND DOC INFLUX_CLIENT_PY}
client_py=${3:?usage: test_tls.sh METROND DOC INFLUX_CLIENT_PY}
here=$(cd "$(dirname "$0")" && pwd)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "test_tls: no nginx (tools/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /tmp/metron-tls.XXXXXX)
metrond_pid="" nginx_pid=""
passed=0
finish() {
  local rc=$?
  [ -n "$nginx_pid" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in metrond.log nginx.error.log; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh" # fail, ok, free_port, wait_for

"$here/../support/tls_ca.sh" "$work/certs"
ca=$work/certs/ca.pem
http=$(free_port)
tls=$(free_port)
[ "$http" != "$tls" ] || tls=$(free_port)

# metrond on loopback with a token, as the page says
token=secret-a
hash=$(printf %s "$token" | "$metrond" --hash-token)
printf 'tenant-a %s\n' "$hash" >"$work/tokens"
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --tokens-file "$work/tokens" --grace 3600 --retention-interval 0 --compact-interval 0 \
  >"$work/metrond.log" 2>&1 &
metrond_pid=$!
wait_for 30 curl -fsS "http://127.0.0.1:$http/health" || fail "metrond did not come up"

# nginx with the page's block
awk '/^```nginx$/ { on = 1; next } on && /^```$/ { exit } on' "$doc" >"$work/block.conf"
grep -q 'proxy_pass' "$work/block.conf" || fail "no nginx block in $doc"
sed -e "s|listen 443 ssl;|listen 127.0.0.1:$tls ssl;|" \
  -e "s|/etc/ssl/metrond/fullchain.pem|$work/certs/server.pem|" \
  -e "s|/etc/ssl/metrond/privkey.pem|$work/certs/server.key|" \
  -e "s|server 127.0.0.1:8086;|server 127.0.0.1:$http;|" "$work/block.conf" >"$work/metrond.conf"
for want in "listen 127.0.0.1:$tls ssl;" "$work/certs/server.pem;" "$work/certs/server.key;" \
  "server 127.0.0.1:$http;"; do
  grep -qF "$want" "$work/metrond.conf" || fail "the page's block changed: '$want' not made"
done
user=""
[ "$(id -u)" -ne 0 ] || user="user root;" # workers may then use the 0700 temp directory
cat >"$work/nginx.conf" <<EOF
$user
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.error.log warn;
events { worker_connections 64; }
http {
    access_log $work/nginx.access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $work/metrond.conf;
}
EOF
"$nginx" -t -p "$work" -c "$work/nginx.conf" -e "$work/nginx.error.log" 2>"$work/nginx-t.log" \
  || { cat "$work/nginx-t.log" >&2; fail "nginx -t refused the page's block"; }
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/nginx.error.log" -g 'daemon off;' &
nginx_pid=$!
url=https://127.0.0.1:$tls
wait_for 30 curl -fsS --cacert "$ca" "$url/health" || fail "nginx did not come up on $tls"
ok "nginx serves the page's block on 127.0.0.1:$tls in front of metrond on $http"

# curl: the certificate checked against the test CA
head=$(curl -sS --cacert "$ca" -D - -o /dev/null "$url/ping")
grep -q '^HTTP/1.1 204' <<<"$head" || fail "/ping through TLS: $head"
grep -qi '^X-Influxdb-Version:' <<<"$head" || fail "/ping lost X-Influxdb-Version: $head"
ok "/ping over HTTPS: 204 with X-Influxdb-Version"

post() { # post BODY_FILE PATH [curl options...]: prints the status, the body into $work/answer
  local body=$1 path=$2
  shift 2
  curl -sS --cacert "$ca" -o "$work/answer" -w '%{http_code}' --data-binary "@$body" "$@" "$url$path"
}
printf 'tls,host=h v=1.5 1735689600\ntls,host=h v=2.5 1735689601\ntls,host=h v=-3 1735689602\n' \
  >"$work/three.lp"
status=$(post "$work/three.lp" '/write?db=metron&precision=s')
[ "$status" = 401 ] || fail "a write without a token answered $status"
grep -q 'unable to parse authentication credentials' "$work/answer" || fail "401 body: $(cat "$work/answer")"
status=$(post "$work/three.lp" '/write?db=metron&precision=s' -H "Authorization: Token $token")
[ "$status" = 204 ] || fail "a write with the token answered $status: $(cat "$work/answer")"
ok "writes over HTTPS: 401 without the token, 204 with it (Authorization passed through)"

status=$(curl -sS --cacert "$ca" --tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}' "$url/ping")
[ "$status" = 204 ] || fail "a TLS 1.2 client got $status"
ok "a TLS 1.2 client is served"

# python3-influxdb: ssl=True, verify_ssl=the CA, the token as the Basic password
/usr/bin/python3 "$client_py" 127.0.0.1 "$tls" --ca "$ca" --user metron --password "$token" || fail "python3-influxdb over HTTPS"
ok "python3-influxdb wrote 100 points over HTTPS, the certificate verified"

query() { # query PARAMS: the CSV answer of /api/v1/query over HTTPS
  curl -sS --fail-with-body --cacert "$ca" -H "Authorization: Token $token" \
    "$url/api/v1/query?from=2025-01-01T00:00:00Z&to=2025-01-10T00:00:00Z&format=csv&$1"
}
got=$(query 'select=tls.v')
want='series,time,value
"tls,business_id=tenant-a,host=h v",2025-01-01T00:00:00Z,1.5
"tls,business_id=tenant-a,host=h v",2025-01-01T00:00:01Z,2.5
"tls,business_id=tenant-a,host=h v",2025-01-01T00:00:02Z,-3'
[ "$got" = "$want" ] || fail "tls.v read back over HTTPS:
$got
expected:
$want"
got=$(query 'select=py.load&agg=count,sum&by=none' | tail -n 1)
[ "$got" = "2025-01-01T00:00:00Z,100,1237.5" ] || fail "py.load count,sum: $got"
ok "/api/v1/query over HTTPS answers the points written (tls.v exactly; py.load 100 points, sum 1237.5)"

# plain HTTP to the TLS port: nginx refuses it, nothing reaches metrond
printf 'tls,host=plain v=9 1735689600\n' >"$work/plain.lp"
status=$(curl -sS -o "$work/answer" -w '%{http_code}' --data-binary "@$work/plain.lp" \
  -H "Authorization: Token $token" "http://127.0.0.1:$tls/write?db=metron&precision=s")
[ "$status" = 400 ] || fail "plain HTTP to the TLS port answered $status"
grep -q 'plain HTTP request was sent to HTTPS port' "$work/answer" || fail "$(cat "$work/answer")"
[ -z "$(query 'select=tls.v{host="plain"}' | tail -n +2)" ] || fail "the plain HTTP write was stored"
ok "plain HTTP to the TLS port: 400, nothing written"

# clients that do not trust the CA are refused (curl: 60, SSL certificate problem)
set +e
curl -sS -o /dev/null "$url/ping" 2>"$work/curl.err"
rc_system=$?
curl -sS --cacert "$work/certs/other-ca.pem" -o /dev/null "$url/ping" 2>>"$work/curl.err"
rc_other=$?
set -e
[ "$rc_system" = 60 ] && [ "$rc_other" = 60 ] || fail "untrusted certificate: curl exit $rc_system, $rc_other: $(cat "$work/curl.err")"
grep -q 'SSL certificate problem' "$work/curl.err" || fail "$(cat "$work/curl.err")"
ok "curl without the CA (system store, another CA) refuses the certificate (exit 60)"

# 20 MB in one body, under max_body (25,000,000): it streams through
awk 'BEGIN { for (i = 0; i < 520000; i++) printf "big,host=h%d value=%d.25 %d\n", i % 10, i, 1735689600 + i }' \
  >"$work/big.lp"
lines=520000
bytes=$(stat -c %s "$work/big.lp")
[ "$bytes" -ge 20000000 ] && [ "$bytes" -lt 25000000 ] || fail "big.lp is $bytes bytes"
t0=$(date +%s.%N)
status=$(post "$work/big.lp" '/write?db=metron&precision=s' -H "Authorization: Token $token")
t1=$(date +%s.%N)
[ "$status" = 204 ] || fail "a $bytes-byte write answered $status: $(cat "$work/answer")"
if grep -q 'buffered to a temporary file' "$work/nginx.error.log"; then
  fail "nginx buffered the body to a file: $(grep 'buffered' "$work/nginx.error.log")"
fi
got=$(query 'select=big.value&agg=count&by=none' | tail -n 1)
[ "$got" = "2025-01-01T00:00:00Z,$lines" ] || fail "big.value count: $got, expected $lines"
ok "$bytes bytes in one write: 204, streamed (no temp file), $lines points read back"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "   20 MB write through nginx (TLS): %.2f s\n", b - a }'

# one byte over the limit: nginx refuses it before it travels
truncate -s 25000001 "$work/over.lp"
status=$(post "$work/over.lp" '/write?db=metron&precision=s' -H "Authorization: Token $token")
[ "$status" = 413 ] || fail "a 25,000,001-byte body answered $status"
ok "a body over max_body: 413"

kill -TERM "$metrond_pid"
wait "$metrond_pid" || fail "metrond exited with $?"
metrond_pid=""
echo "$passed passed, 0 failed"
