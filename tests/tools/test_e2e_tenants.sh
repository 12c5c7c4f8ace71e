#!/usr/bin/env bash
# Two tenants end to end (issue 19, "Done when"), in one run of one metrond:
#   - each tenant's rule, webhook endpoint and channels (Slack, PagerDuty, email) are rows of
#     monitoring.alert_rules / webhook_endpoints / notification_channels in PostgreSQL;
#   - each alert reaches exactly its tenant's receivers: the signed webhook checked by
#     tools/examples/webhook_receiver.py, Slack- and PagerDuty-shaped HTTP receivers
#     (tests/support/http_sink.py), email through a real aiosmtpd (tests/support/smtp_sink.py),
#     and never the other tenant's, although B's escalation names A's PagerDuty channel;
#   - escalation to PagerDuty after the rule's fractional minutes (0.1 for A, 0.2 for B), not
#     before, and each delivery recorded in the alert's notifications_sent;
#   - security_event and business_kpi lines sent with each tenant's token show in
#     security_dashboard and business_kpi_dashboard, read as each tenant's reader role (RLS):
#     its own rows only;
#   - a real Prometheus 2.42 scrapes /federate with each tenant's token: each job holds its
#     tenant's series only;
#   - old partitions dropped on schedule (postgres_retention_interval = 2): the partitions past
#     each table's window go with their old rows at the first pass, the recent ones and their
#     rows stay, and old partitions made again go at a later pass.
#
#   test_e2e_tenants.sh METROND METRON      (METRON_TEST_PG: the test PostgreSQL, a superuser URL)
#
# Everything runs on 127.0.0.1 on free ports, under one temporary directory, in a database of
# its own; every process started is stopped, the database and the reader roles dropped and the
# directory removed on any exit. Waits poll with deadlines.
set -euo pipefail
metrond=${1:?usage: test_e2e_tenants.sh METROND METRON}
metron=${2:?usage: test_e2e_tenants.sh METROND METRON}
: "${METRON_TEST_PG:?METRON_TEST_PG is not set: run the suite through tools/test.sh}"
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
prometheus=$(command -v prometheus || true)
[ -n "$prometheus" ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
  { echo "test_e2e_tenants: no prometheus or python3-aiosmtpd (tools/setup.sh installs them)" >&2; exit 1; }

A=aaaaaaaa-e2e0-4000-8000-00000000000a
B=bbbbbbbb-e2e0-4000-8000-00000000000b
work=$(mktemp -d /tmp/metron-e2e.XXXXXX)
db=metron_e2e_$$
reader_a=metron_e2e_a_$$ reader_b=metron_e2e_b_$$
metrond_pid="" prom_pid="" pids=()
passed=0
finish() {
  local rc=$?
  set +e # a stopped process's status (143) must not end the cleanup
  [ -n "$prom_pid" ] && kill -TERM "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  psql "$METRON_TEST_PG" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  psql "$METRON_TEST_PG" -qAtX -c "DROP ROLE IF EXISTS $reader_a" -c "DROP ROLE IF EXISTS $reader_b" \
    >/dev/null 2>&1
  if [ "$rc" -ne 0 ]; then
    for f in metrond.log prometheus.log; do
      [ -f "$work/$f" ] && { echo "--- $f (last lines)"; tail -n 30 "$work/$f"; }
    done
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh" # fail, ok, free_port, wait_for
# want SECONDS WHAT EXPECTED CMD...: polls until CMD prints EXPECTED, or fails naming WHAT.
want() {
  local deadline=$((SECONDS + $1)) what=$2 expected=$3 got=""; shift 3
  while :; do
    got=$("$@" 2>&1) || true
    [ "$got" = "$expected" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.2
  done
  fail "$what: got
$got
expected:
$expected"
}
url=${METRON_TEST_PG%/*}/$db
hostport=${url#*@}
hostport=${hostport%%/*}
sql() { psql "$url" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }            # as Metron's role
sql_as() { psql "postgresql://$1@$hostport/$db" -qAtX -v ON_ERROR_STOP=1 -c "$2"; } # a reader
# lines FILE EXPR: EXPR (Python, over d: one JSON line of FILE) for each line of FILE.
lines() {
  [ -f "$1" ] || return 0
  /usr/bin/python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    v = eval(sys.argv[2])
    print(" ".join(map(str, v)) if isinstance(v, tuple) else v)' "$1" "$2"
}
count() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# ---- PostgreSQL: the schema, two reader roles, old partitions with old rows -----------------
psql "$METRON_TEST_PG" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" \
  -c "CREATE ROLE $reader_a LOGIN" -c "CREATE ROLE $reader_b LOGIN" >/dev/null
"$metron" schema install --pg "$url" >"$work/install.out" 2>&1 || fail "schema install: $(cat "$work/install.out")"
for t in "$reader_a $A" "$reader_b $B"; do
  # shellcheck disable=SC2086 # role and tenant, two words
  "$metron" schema tenant add $t --pg "$url" >"$work/tenant.out" 2>&1 ||
    fail "tenant add $t: $(cat "$work/tenant.out")"
done

# The partitions of the monthly tables that end at or before now() - keep (the defaults of
# [retention], docs/operations.md).
doomed_sql="SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '') FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent,
  LATERAL monitoring.partition_bounds(c.oid) b, (VALUES ('performance_metrics', '90 days'),
  ('query_performance', '30 days'), ('system_health', '30 days'), ('security_events', '90 days'),
  ('hourly_metrics_summary', '400 days'), ('series_hourly_summary', '400 days')) k(t, keep)
  WHERE p.relname = k.t AND p.relnamespace = 'monitoring'::regnamespace
  AND b.hi <= now() - k.keep::interval"
kept_sql="SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_class p ON p.oid = i.inhparent, LATERAL monitoring.partition_bounds(c.oid) b
  WHERE p.relnamespace = 'monitoring'::regnamespace AND p.relname IN ('performance_metrics',
  'query_performance', 'system_health', 'security_events', 'hourly_metrics_summary',
  'series_hourly_summary') AND b.hi > now() - interval '30 days'"
rows_sql="SELECT string_agg(x, ' ' ORDER BY x) FROM (
  SELECT 'qp:' || query_hash AS x FROM monitoring.query_performance
  UNION ALL SELECT 'sh:' || component_name FROM monitoring.system_health
  UNION ALL SELECT 'se:' || event_description FROM monitoring.security_events
  UNION ALL SELECT 'hs:' || metric_category FROM monitoring.hourly_metrics_summary
    WHERE metric_category IN ('old', 'new')) v"
sql "SELECT monitoring.create_partitions(16, 3)" >/dev/null
sql "INSERT INTO monitoring.query_performance (business_id, query_id, query_hash, execution_count,
       total_exec_time, mean_exec_time, collected_at) VALUES
       ('$A', 1, 'old', 1, 1, 1, now() - interval '70 days'), ('$A', 2, 'new', 1, 1, 1, now());
     INSERT INTO monitoring.system_health (business_id, component_type, component_name,
       health_status, collected_at) VALUES ('$B', 'db', 'old', 'ok', now() - interval '70 days'),
       ('$B', 'db', 'new', 'ok', now());
     INSERT INTO monitoring.security_events (business_id, event_type, event_category, severity,
       event_source, event_description, occurred_at) VALUES
       ('$A', 'login', 'auth', 'low', 't', 'old', now() - interval '130 days');
     INSERT INTO monitoring.hourly_metrics_summary (hour_bucket, business_id, metric_category,
       metric_name, sample_count) VALUES
       (date_trunc('hour', now() - interval '440 days'), '$A', 'old', 'x', 1),
       (date_trunc('hour', now()), '$A', 'new', 'x', 1)" >/dev/null
doomed=$(sql "$doomed_sql")
for t in performance_metrics query_performance system_health security_events hourly_metrics_summary; do
  [[ "$doomed" == *"${t}_"* ]] || fail "no old partition of $t to drop: $doomed"
done
kept_before=$(sql "$kept_sql")
[ "$(sql "$rows_sql")" = "hs:new hs:old qp:new qp:old se:old sh:new sh:old" ] ||
  fail "old rows: $(sql "$rows_sql")"

# ---- the receivers: per tenant a signed webhook, Slack, PagerDuty and an SMTP server ---------
start_receiver() { # start_receiver NAME PORT CMD...: in the background, until PORT answers
  local name=$1 port=$2; shift 2
  "$@" >"$work/$name.out" 2>&1 &
  pids+=($!)
  wait_for 15 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "$name did not come up: $(cat "$work/$name.out")"
}
declare -A port
for t in a b; do
  for k in hook slack pager mail; do port[$k-$t]=$(free_port); done
  start_receiver "hook-$t" "${port[hook-$t]}" /usr/bin/python3 "$root/tools/examples/webhook_receiver.py" \
    --port "${port[hook-$t]}" --secret "secret-$t" --log "$work/hook-$t.jsonl"
  start_receiver "slack-$t" "${port[slack-$t]}" /usr/bin/python3 "$here/support/http_sink.py" \
    --port "${port[slack-$t]}" --log "$work/slack-$t.jsonl"
  start_receiver "pager-$t" "${port[pager-$t]}" /usr/bin/python3 "$here/support/http_sink.py" \
    --port "${port[pager-$t]}" --log "$work/pager-$t.jsonl" --status 202
  start_receiver "mail-$t" "${port[mail-$t]}" /usr/bin/python3 "$here/support/smtp_sink.py" \
    --port "${port[mail-$t]}" --log "$work/mail-$t.jsonl"
done

# ---- each tenant's endpoint, channels and rule, in PostgreSQL --------------------------------
# B's escalation also names A's PagerDuty channel: the tenant rule keeps B's alert from it.
for t in a b; do
  [ $t = a ] && bid=$A esc=0.1 names='"pager a"' || bid=$B esc=0.2 names='"pager b", "pager a"'
  sql "INSERT INTO monitoring.webhook_endpoints (business_id, endpoint_name, webhook_url, secret_token)
         VALUES ('$bid', 'hook $t', 'http://127.0.0.1:${port[hook-$t]}/hook', 'secret-$t');
       INSERT INTO monitoring.notification_channels (business_id, channel_name, channel_type,
         configuration) VALUES
         ('$bid', 'slack $t', 'slack', '{\"url\": \"http://127.0.0.1:${port[slack-$t]}/services/T/B/$t\"}'),
         ('$bid', 'pager $t', 'pagerduty', '{\"events_url\": \"http://127.0.0.1:${port[pager-$t]}/v2/enqueue\",
           \"routing_key\": \"rk-$t\"}'),
         ('$bid', 'mail $t', 'email', '{\"smtp_url\": \"smtp://127.0.0.1:${port[mail-$t]}\",
           \"from\": \"metron@$t.example\", \"to\": [\"ops@$t.example\"]}');
       INSERT INTO monitoring.alert_rules (business_id, rule_name, rule_category, severity,
         metric_name, condition_type, condition_definition, evaluation_window, critical_threshold,
         comparison_operator, created_by, notification_channels, escalation_rules) VALUES
         ('$bid', 'cpu hot', 'performance', 'critical', 'cpu.usage', 'threshold', '{}',
          '1 minute', 90, 'gt', gen_random_uuid(), '[\"hook $t\", \"slack $t\", \"mail $t\"]',
          '[{\"after_minutes\": $esc, \"channels\": [$names]}]')" >/dev/null
done

# ---- metrond: two tenants' tokens, the KPI settings, a short PostgreSQL retention ------------
for t in "$A:tok-a" "$B:tok-b"; do
  printf '%s %s\n' "${t%%:*}" "$(printf %s "${t#*:}" | "$metrond" --hash-token)"
done >"$work/tokens"
cat >"$work/metrond.ini" <<EOF
[metrond]
postgres_retention_interval = 2
postgres_flush_interval = 1
alert_interval = 1

[kpi orders]
target = 200
category = sales
EOF
http=$(free_port)
"$metrond" --config "$work/metrond.ini" --data "$work/data" --http "127.0.0.1:$http" \
  --lp-tcp off --lp-udp off --tokens-file "$work/tokens" --postgres "$url" --grace 3600 \
  --retention-interval 0 --compact-interval 0 >"$work/metrond.log" 2>&1 &
metrond_pid=$!
base=http://127.0.0.1:$http
wait_for 30 curl -fsS "$base/health" || fail "metrond did not come up"
log_has() { grep -qF "$1" "$work/metrond.log"; }
wait_for 20 log_has 'msg="alert rules loaded" rules=2' || fail "the two rules were not loaded"
wait_for 20 log_has 'msg="webhook endpoints loaded" endpoints=8' || fail "the 8 endpoints were not loaded"

# A real Prometheus, one job per tenant token, started now: it takes a few seconds to come up.
prom_port=$(free_port)
{
  printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n'
  for t in a b; do
    cat <<EOF
  - job_name: metron-$t
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{__name__=~".+"}']
    authorization:
      credentials: tok-$t
    static_configs:
      - targets: ['127.0.0.1:$http']
EOF
  done
} >"$work/prometheus.yml"
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!

# ---- each tenant writes: a breaching cpu series, security events, KPIs (yesterday, today) -----
now=$(date +%s)
yday=$((now - 86400))
write() { # write TOKEN LINES
  local status
  status=$(printf '%s' "$2" | curl -sS -o "$work/answer" -w '%{http_code}' --data-binary @- \
    -H "Authorization: Token $1" "$base/write?db=metron&precision=s")
  [ "$status" = 204 ] || fail "write as $1: $status $(cat "$work/answer")"
}
write tok-a "cpu,host=web-a usage=95 $now
mem,host=web-a used_percent=40 $now
security_event,event_type=login_failed,event_category=authentication,severity=high,source_ip=203.0.113.7 risk_score=80i,blocked=true,description=\"5 failed logins\" $((now - 3))
security_event,event_type=login_failed,event_category=authentication,severity=high,source_ip=203.0.113.7 risk_score=90i,description=\"a 6th\" $((now - 2))
business_kpi,metric_name=orders,period=day,industry=retail value=100 $yday
business_kpi,metric_name=orders,period=day,industry=retail value=150 $now
"
write tok-b "cpu,host=db-b usage=97 $now
security_event,event_type=privilege_escalation,event_category=authorization,severity=critical risk_score=100i,blocked=true,description=\"sudo\" $((now - 1))
business_kpi,metric_name=orders,period=day,industry=banking value=42 $now
"

# ---- alerts: each tenant's reach its receivers, and only those --------------------------------
id_a="" id_b=""
alert_id() { sql "SELECT id FROM monitoring.alerts WHERE business_id = '$1' AND status = 'active'"; }
alert_len() { alert_id "$1" | tr -d '\n' | wc -c; }
for t in a b; do
  [ $t = a ] && bid=$A host=web-a || bid=$B host=db-b
  series="cpu,business_id=$bid,host=$host usage"
  want 20 "tenant $t's webhook" "accepted fired $bid $series" \
    lines "$work/hook-$t.jsonl" 'd["result"], d["event"], d["business_id"], d["series"]'
  want 20 "tenant $t's Slack" "True $bid" lines "$work/slack-$t.jsonl" \
    'd["json"]["text"].startswith("[CRITICAL] cpu hot fired: '"$series"'") and "attachments" in d["json"], "'"$bid"'" if "'"$bid"'" in d["body"] else "-"'
  want 20 "tenant $t's mail" "['ops@$t.example'] metron@$t.example True" lines "$work/mail-$t.jsonl" \
    'd["rcpt_tos"], d["mail_from"], "Subject: [CRITICAL] cpu hot fired: '"$series"'" in d["data"]'
  want 20 "tenant $t's alert row" 36 alert_len "$bid"
  [ $t = a ] && id_a=$(alert_id "$A") || id_b=$(alert_id "$B")
done
ok "each tenant's alert reached its own webhook (signature checked), Slack and mail"

# ---- retention: the first pass, right after the sink connected --------------------------------
want 30 "old partitions past each window" "" sql "$doomed_sql"
[ "$(sql "$kept_sql")" = "$kept_before" ] || fail "recent partitions: $(sql "$kept_sql"), were $kept_before"
want 30 "rows after the first retention pass" \
  "hs:new qp:new se:5 failed logins se:a 6th se:sudo sh:new" sql "$rows_sql"
ok "retention: the partitions past each window dropped with their old rows, the recent ones kept"

# ---- escalation: to PagerDuty after 0.1 (A) and 0.2 (B) minutes, never across tenants ----------
want 30 "A's escalation" "trigger rk-a $id_a 1" lines "$work/pager-a.jsonl" \
  'd["json"]["event_action"], d["json"]["routing_key"], d["json"]["dedup_key"], d["json"]["payload"]["custom_details"]["escalation_level"]'
want 40 "B's escalation" "trigger rk-b $id_b 1" lines "$work/pager-b.jsonl" \
  'd["json"]["event_action"], d["json"]["routing_key"], d["json"]["dedup_key"], d["json"]["payload"]["custom_details"]["escalation_level"]'
for t in a b; do
  [ "$(count "$work/pager-$t.jsonl")" = 1 ] || fail "PagerDuty $t received: $(cat "$work/pager-$t.jsonl")"
done
# when each arrived, after its alert fired: not before the set minutes, within a few rounds
for t in a b; do
  [ $t = a ] && id=$id_a after=6 || id=$id_b after=12
  fired=$(sql "SELECT extract(epoch from triggered_at) FROM monitoring.alerts WHERE id = '$id'")
  late=$(lines "$work/pager-$t.jsonl" "'%.3f' % (d['t'] - $fired)")
  /usr/bin/python3 -c "import sys; sys.exit(not ($after <= $late <= $after + 5))" ||
    fail "tenant $t's escalation arrived $late s after the alert fired (escalation after $after s)"
  echo "# tenant $t: escalated $late s after firing (set: $after s)"
done
records_sql="SELECT string_agg((e->>'event') || ':' || (e->>'channel') || ':' || (e->>'outcome'), ','
  ORDER BY e->>'event', e->>'channel') FROM monitoring.alerts a,
  jsonb_array_elements(a.notifications_sent) e WHERE a.id = "
want 20 "A's delivery records" "escalated:pager a:sent,fired:hook a:sent,fired:mail a:sent,fired:slack a:sent" \
  sql "$records_sql'$id_a'"
want 20 "B's delivery records" "escalated:pager b:sent,fired:hook b:sent,fired:mail b:sent,fired:slack b:sent" \
  sql "$records_sql'$id_b'"
escalated_in() { sql "SELECT round(extract(epoch from (e->>'at')::timestamptz - a.triggered_at))
  BETWEEN $2 AND $2 + 5 FROM monitoring.alerts a, jsonb_array_elements(a.notifications_sent) e
  WHERE a.id = '$1' AND e->>'event' = 'escalated'"; }
[ "$(escalated_in "$id_a" 6)$(escalated_in "$id_b" 12)" = tt ] ||
  fail "escalation records: $(sql "SELECT notifications_sent FROM monitoring.alerts")"
ok "escalation: A's PagerDuty after 0.1 min, B's after 0.2 min, each recorded; A's PagerDuty never heard of B"

# every receiver, in full: one notification each but PagerDuty's escalation, its tenant's only
for t in a b; do
  [ $t = a ] && mine=$A other=$B || mine=$B other=$A
  for k in hook slack pager mail; do
    [ "$(count "$work/$k-$t.jsonl")" = 1 ] || fail "$k $t received: $(cat "$work/$k-$t.jsonl")"
    ! grep -q "$other" "$work/$k-$t.jsonl" || fail "$k $t received the other tenant's: $(cat "$work/$k-$t.jsonl")"
    grep -q "$mine" "$work/$k-$t.jsonl" || fail "$k $t: not its tenant's: $(cat "$work/$k-$t.jsonl")"
  done
done
ok "exactly the right receivers: 8 receivers, one notification each, never the other tenant's"

# ---- security events and KPIs, read as each tenant's reader role (row-level security) ---------
sec="SELECT string_agg(concat_ws(':', business_id, event_category, severity, event_count,
  max_risk_score, blocked_events), ' ' ORDER BY event_category) FROM monitoring.security_dashboard"
kpi="SELECT string_agg(concat_ws(':', business_id, industry_vertical, metric_name, current_value,
  achievement_percentage, trend_direction), ' ' ORDER BY period_start)
  FROM monitoring.business_kpi_dashboard"
want 30 "A's security_dashboard" "$A:authentication:high:2:90:1" sql_as "$reader_a" "$sec"
want 30 "A's business_kpi_dashboard" "$A:retail:orders:100.0000:50.00 $A:retail:orders:150.0000:75.00:up" \
  sql_as "$reader_a" "$kpi"
want 30 "B's security_dashboard" "$B:authorization:critical:1:100:1" sql_as "$reader_b" "$sec"
want 30 "B's business_kpi_dashboard" "$B:banking:orders:42.0000:21.00" sql_as "$reader_b" "$kpi"
[ "$(sql_as "$reader_a" "SELECT count(*) FROM monitoring.security_events WHERE business_id = '$B'")" = 0 ] ||
  fail "A's reader reads B's events"
[ "$(sql "SELECT count(DISTINCT business_id) FROM monitoring.security_dashboard")" = 2 ] ||
  fail "Metron's role sees both tenants: $(sql "$sec")"
ok "security_dashboard and business_kpi_dashboard: each tenant's reader sees its events and KPIs only"

# ---- Prometheus scrapes /federate with each tenant's token ------------------------------------
wait_for 60 curl -fsS "http://127.0.0.1:$prom_port/-/ready" || fail "prometheus did not come up"
query() { # one "job business_id host value" line per series
  curl -sS --fail-with-body -G --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" |
    /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
for r in sorted(d["data"]["result"], key=lambda r: sorted(r["metric"].items())):
    m = r["metric"]
    print(m.get("job", "-"), m.get("business_id", "-"), m.get("host", "-"), r["value"][1])'
}
want 60 "prometheus: up" "metron-a - - 1
metron-b - - 1" query up
want 30 "prometheus: cpu_usage" "metron-a $A web-a 95
metron-b $B db-b 97" query cpu_usage
want 30 "prometheus: mem_used_percent" "metron-a $A web-a 40" query mem_used_percent
# every series each job holds is its tenant's (the events and KPIs are series too)
want 30 "prometheus: the tenants of each job's series" "metron-a $A - 1
metron-b $B - 1" query 'group by (job, business_id) ({business_id!=""})'
ok "Prometheus 2.42 scrapes /federate with each tenant's token: each job its tenant's series only"

# ---- retention on schedule: old partitions made again go at a later pass -----------------------
passes=$(grep -c 'PostgreSQL retention applied' "$work/metrond.log" || true)
# one statement (one transaction): a pass in between would drop the month before the insert
again=$(sql "SELECT monitoring.create_partitions(16, 3);
  INSERT INTO monitoring.query_performance (business_id, query_id, query_hash, execution_count,
    total_exec_time, mean_exec_time, collected_at) VALUES
    ('$A', 3, 'old again', 1, 1, 1, now() - interval '70 days');
  $doomed_sql" | tail -n 1)
[ -n "$again" ] || fail "old partitions were not made again"
want 20 "old partitions made again" "" sql "$doomed_sql"
want 10 "rows after a later pass" "hs:new qp:new se:5 failed logins se:a 6th se:sudo sh:new" sql "$rows_sql"
[ "$(grep -c 'PostgreSQL retention applied' "$work/metrond.log")" -gt "$passes" ] ||
  fail "no later retention pass in the log"
ok "retention on schedule: old partitions made again are dropped at a later pass, recent ones kept"

! grep -E 'level=(error|fatal)' "$work/metrond.log" || fail "errors in metrond's log"
kill -TERM "$prom_pid"
wait "$prom_pid" || fail "prometheus exited with $?"
prom_pid=""
kill -TERM "$metrond_pid"
wait "$metrond_pid" || fail "metrond exited with $?"
metrond_pid=""
echo "$passed passed, 0 failed"
