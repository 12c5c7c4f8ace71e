#!/usr/bin/env bash
# Prometheus export checked by Prometheus' own tools (docs/query.md,
# "Prometheus export"):
#   - promtool check metrics passes on metrond's /federate (a tenant's token
#     and the system token) and on `metron export --format prometheus`;
#   - a real Prometheus (Debian's 2.42, installed by tools/setup.sh) scrapes
#     /federate with each tenant's bearer token (authorization: credentials)
#     and answers its own /api/v1/query with each tenant's series and values
#     under that tenant's job, and never the other tenant's.
#
#   test_prometheus_scrape.sh METROND METRON
#
# Everything runs on 127.0.0.1 on free ports, under one temporary directory;
# Prometheus and metrond are stopped and the directory removed on any exit.
set -euo pipefail
metrond=${1:?usage: test_prometheus_scrape.sh METROND METRON}
metron=${2:?usage: test_prometheus_scrape.sh METROND METRON}
prometheus=$(command -v prometheus || true)
promtool=$(command -v promtool || true)
[ -n "$prometheus" ] && [ -n "$promtool" ] ||
  { echo "test_prometheus_scrape: no prometheus/promtool (tools/setup.sh installs them)" >&2; exit 1; }

work=$(mktemp -d /tmp/metron-prom.XXXXXX)
metrond_pid="" prom_pid=""
passed=0
finish() {
  local rc=$?
  [ -n "$prom_pid" ] && kill -TERM "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  if [ "$rc" -ne 0 ]; then
    for f in metrond.log prometheus.log; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 20 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh" # fail, ok, free_port, wait_for

http=$(free_port)
for t in tenant-a:tok-a tenant-b:tok-b '*:tok-s'; do
  printf '%s %s\n' "${t%%:*}" "$(printf %s "${t#*:}" | "$metrond" --hash-token)"
done >"$work/tokens"
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --tokens-file "$work/tokens" --grace 3600 --retention-interval 0 --compact-interval 0 \
  >"$work/metrond.log" 2>&1 &
metrond_pid=$!
url=http://127.0.0.1:$http
wait_for 30 curl -fsS "$url/health" || fail "metrond did not come up"

# Current timestamps: /federate gives the latest sample of the last 5 minutes.
now=$(date +%s)
write() { # write TOKEN LINES
  local status
  status=$(printf '%s' "$2" | curl -sS -o "$work/answer" -w '%{http_code}' --data-binary @- \
    -H "Authorization: Token $1" "$url/write?db=metron&precision=s")
  [ "$status" = 204 ] || fail "write as $1: $status $(cat "$work/answer")"
}
write tok-a "cpu,host=web-1 usage_idle=91.5,usage_user=4i $now
cpu,host=web\\ \"2\" usage_idle=88.25 $now
mem,host=web-1 available_bytes=123456789u,swapping=false $now
"
write tok-b "cpu,host=db-1 usage_idle=12.5 $now
"

federate() { # federate TOKEN SELECTOR: the body of /federate
  curl -sS --fail-with-body -G -H "Authorization: Bearer $1" --data-urlencode "match[]=$2" \
    "$url/federate"
}
federate tok-a '{__name__=~".+"}' >"$work/fed-a.prom"
federate tok-s '{__name__=~".+"}' >"$work/fed-s.prom"
"$metron" export --data "$work/data" cpu --format prometheus >"$work/export.prom"
"$metron" export --data "$work/data" mem --format prometheus >>"$work/export.prom"
ms=$((now * 1000))
grep -qxF "cpu_usage_idle{business_id=\"tenant-a\",host=\"web \\\"2\\\"\"} 88.25 $ms" "$work/fed-a.prom" ||
  fail "tenant-a's escaped series in /federate: $(cat "$work/fed-a.prom")"
! grep -q 'tenant-b' "$work/fed-a.prom" || fail "tenant-a's /federate holds tenant-b: $(cat "$work/fed-a.prom")"
grep -qxF "cpu_usage_idle{business_id=\"tenant-b\",host=\"db-1\"} 12.5 $ms" "$work/fed-s.prom" ||
  fail "the system token's /federate: $(cat "$work/fed-s.prom")"
[ "$(grep -c '^[a-z]' "$work/export.prom")" = 6 ] || fail "export: $(cat "$work/export.prom")"
for f in fed-a fed-s export; do
  "$promtool" check metrics <"$work/$f.prom" >"$work/promtool.out" 2>&1 ||
    fail "promtool check metrics refused $f.prom: $(cat "$work/promtool.out")
$(cat "$work/$f.prom")"
done
ok "promtool check metrics passes /federate (tenant, system token) and metron export --format prometheus"

# A real Prometheus scrapes /federate once a second, one job per tenant token.
port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
EOF
for t in a b; do
  cat >>"$work/prometheus.yml" <<EOF
  - job_name: metron-$t
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{__name__=~"cpu_.*|mem_.*"}']
    authorization:
      credentials: tok-$t
    static_configs:
      - targets: ['127.0.0.1:$http']
EOF
done
"$promtool" check config "$work/prometheus.yml" >"$work/promtool.out" 2>&1 ||
  fail "promtool check config: $(cat "$work/promtool.out")"
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom=http://127.0.0.1:$port
wait_for 60 curl -fsS "$prom/-/ready" || fail "prometheus did not come up on $port"

# What Prometheus' /api/v1/query answers, one "job business_id host value" line per series.
query() {
  curl -sS --fail-with-body -G --data-urlencode "query=$1" "$prom/api/v1/query" |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
for r in sorted(d["data"]["result"], key=lambda r: sorted(r["metric"].items())):
    m = r["metric"]
    print(m.get("job", "-"), m.get("business_id", "-"), m.get("host", "-"), r["value"][1])'
}
want_query() { # want_query QUERY EXPECTED: polls Prometheus until QUERY answers EXPECTED
  local deadline=$((SECONDS + 60)) got=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    got=$(query "$1" 2>&1) || true
    [ "$got" = "$2" ] && return 0
    sleep 0.2
  done
  fail "prometheus: $1 answered
$got
expected:
$2"
}
want_query 'up' 'metron-a - - 1
metron-b - - 1'
want_query 'cpu_usage_idle' 'metron-a tenant-a web "2" 88.25
metron-a tenant-a web-1 91.5
metron-b tenant-b db-1 12.5'
want_query 'mem_available_bytes' 'metron-a tenant-a web-1 123456789'
ok "Prometheus 2.42 scrapes /federate with each tenant's token: its series, its values, its job"
want_query 'count by (job, business_id) ({business_id!=""})' 'metron-a tenant-a - 5
metron-b tenant-b - 1'
ok "no series crossed tenants: metron-a holds tenant-a's 5 series only, metron-b tenant-b's 1"

kill -TERM "$prom_pid"
wait "$prom_pid" || fail "prometheus exited with $?"
prom_pid=""
kill -TERM "$metrond_pid"
wait "$metrond_pid" || fail "metrond exited with $?"
metrond_pid=""
echo "$passed passed, 0 failed"
