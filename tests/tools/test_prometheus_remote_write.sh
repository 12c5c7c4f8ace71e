#!/usr/bin/env bash
# Prometheus remote write in (docs/query.md, "Prometheus remote write"): a
# real Prometheus (Debian's 2.42, installed by tools/setup.sh) scrapes its
# own /metrics every second and remote-writes them to metrond's
# /api/v1/write with tenant-a's bearer token (authorization: credentials).
# Checks that:
#   - metrond then holds Prometheus' own series for tenant-a, read back
#     through /federate with the same names and labels Prometheus has
#     (prometheus_build_info, up), plus business_id;
#   - tenant-b's token sees none of them;
#   - Prometheus counts no failed samples (every batch was answered 2xx).
#
#   test_prometheus_remote_write.sh METROND
#
# Everything runs on 127.0.0.1 on free ports, under one temporary directory;
# Prometheus and metrond are stopped and the directory removed on any exit.
set -euo pipefail
metrond=${1:?usage: test_prometheus_remote_write.sh METROND}
prometheus=$(command -v prometheus || true)
[ -n "$prometheus" ] ||
  { echo "test_prometheus_remote_write: no prometheus (tools/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /tmp/metron-promrw.XXXXXX)
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
for t in tenant-a:tok-a tenant-b:tok-b; do
  printf '%s %s\n' "${t%%:*}" "$(printf %s "${t#*:}" | "$metrond" --hash-token)"
done >"$work/tokens"
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --tokens-file "$work/tokens" --grace 3600 --retention-interval 0 --compact-interval 0 \
  >"$work/metrond.log" 2>&1 &
metrond_pid=$!
url=http://127.0.0.1:$http
wait_for 30 curl -fsS "$url/health" || fail "metrond did not come up"

port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']
remote_write:
  - url: $url/api/v1/write
    authorization:
      credentials: tok-a
    queue_config:
      batch_send_deadline: 1s
EOF
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom=http://127.0.0.1:$port
wait_for 60 curl -fsS "$prom/-/ready" || fail "prometheus did not come up on $port"

federate() { # federate TOKEN SELECTOR: the body of metrond's /federate
  curl -sS --fail-with-body -G -H "Authorization: Bearer $1" --data-urlencode "match[]=$2" \
    "$url/federate"
}
# Prometheus' own view of a series as /federate writes it: name{business_id, then labels sorted}.
prom_series() {
  curl -sS --fail-with-body -G --data-urlencode "query=$1" "$prom/api/v1/query" |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
for r in d["data"]["result"]:
    m = dict(r["metric"]); name = m.pop("__name__")
    labels = [("business_id", "tenant-a")] + sorted(m.items())
    print(name + "{" + ",".join("%s=\"%s\"" % kv for kv in labels) + "}")'
}

# up and prometheus_build_info arrive in metrond under tenant-a, names and labels as Prometheus'
want_up="up{business_id=\"tenant-a\",instance=\"127.0.0.1:$port\",job=\"prometheus\"} 1 "
deadline=$((SECONDS + 60))
until federate tok-a '{__name__=~"up|prometheus_build_info"}' >"$work/fed-a.prom" 2>&1 &&
  grep -qF "$want_up" "$work/fed-a.prom" && grep -q '^prometheus_build_info{' "$work/fed-a.prom"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "metrond's /federate for tenant-a after 60 s:
$(cat "$work/fed-a.prom")"
  sleep 0.2
done
build=$(prom_series prometheus_build_info)
[ -n "$build" ] || fail "prometheus has no prometheus_build_info"
grep -qF "$build 1 " "$work/fed-a.prom" ||
  fail "metrond's prometheus_build_info differs from Prometheus' $build:
$(cat "$work/fed-a.prom")"
grep -q 'version="2\.42\.' "$work/fed-a.prom" || fail "no version label: $(cat "$work/fed-a.prom")"
ok "Prometheus 2.42 remote-writes its own series; /federate gives back up and $build"

# many families arrived, each under the name Prometheus gives it
federate tok-a '{__name__=~"prometheus_.+|go_.+|process_.+"}' >"$work/all-a.prom"
families=$(grep -c '^# TYPE' "$work/all-a.prom" || true)
[ "$families" -ge 50 ] || fail "only $families families in metrond for tenant-a"
for m in go_goroutines process_resident_memory_bytes prometheus_http_requests_total; do
  grep -q "^$m{business_id=\"tenant-a\"" "$work/all-a.prom" || fail "no $m in /federate"
done
ok "$families families of Prometheus' own metrics in metrond, names unchanged"

federate tok-b '{__name__=~".+"}' >"$work/fed-b.prom"
! grep -q '^[a-z]' "$work/fed-b.prom" || fail "tenant-b sees tenant-a's series: $(head "$work/fed-b.prom")"
ok "tenant-b's token sees none of them"

failed=$(curl -sS -G --data-urlencode 'query=sum(prometheus_remote_storage_samples_failed_total)' \
  "$prom/api/v1/query" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "none")')
[ "$failed" = 0 ] || fail "prometheus counts failed remote-write samples: $failed"
ok "Prometheus counts no failed remote-write samples"

kill -TERM "$prom_pid"
wait "$prom_pid" || fail "prometheus exited with $?"
prom_pid=""
kill -TERM "$metrond_pid"
wait "$metrond_pid" || fail "metrond exited with $?"
metrond_pid=""
echo "$passed passed, 0 failed"
