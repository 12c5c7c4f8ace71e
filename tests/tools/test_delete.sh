#!/usr/bin/env bash
# Deletion (issue 22, item 5), through a real metrond with real PostgreSQL:
#   - two tenants written over several hours, mirrored; a tenant's token gets 403 on
#     POST /api/v1/admin/delete tenant=; the system token deletes tenant A;
#   - nothing of A is left: not in PostgreSQL (every table Metron writes), not in the data
#     directory's files (grep for A's business_id), not by metron export/series --data;
#   - B's points are byte for byte what they were (exports compared);
#   - metron delete --data beside the running metrond is refused, naming the way through it;
#   - a selector delete of a range (metron delete --data, metrond stopped) removes exactly
#     the points in the range;
#   - PromQL (/prometheus/api/v1/series and query) answers both tenants before, B alone after;
#   - metron inspect reports format 5 (tombstones allowed in series_by_id) after the tenant delete.
#
#   test_delete.sh METROND METRON      (METRON_TEST_PG: the test PostgreSQL, a superuser URL)
set -euo pipefail
metrond=${1:?usage: test_delete.sh METROND METRON}
metron=${2:?usage: test_delete.sh METROND METRON}
: "${METRON_TEST_PG:?METRON_TEST_PG is not set: run the suite through tools/test.sh}"
A=aaaaaaaa-de1e-4000-8000-00000000000a
B=bbbbbbbb-de1e-4000-8000-00000000000b
work=$(mktemp -d /tmp/metron-delete.XXXXXX)
db=metron_delete_$$
metrond_pid=""
passed=0
finish() {
  local rc=$?
  set +e
  [ -n "$metrond_pid" ] && kill -TERM "$metrond_pid" 2>/dev/null && wait "$metrond_pid" 2>/dev/null
  psql "$METRON_TEST_PG" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  if [ "$rc" -ne 0 ]; then
    [ -f "$work/metrond.log" ] && { echo "--- metrond.log"; tail -n 30 "$work/metrond.log"; }
    echo "$passed passed, 1 failed"
  fi
  rm -rf "$work"
}
trap finish EXIT
. "$(dirname "$0")/../support/testlib.sh"
url=${METRON_TEST_PG%/*}/$db
psql "$METRON_TEST_PG" -qAtX -c "CREATE DATABASE $db" >/dev/null
sql() { psql "$url" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

{
  printf '* %s\n' "$(printf %s tok-sys | "$metrond" --hash-token)"
  printf '%s %s\n' "$A" "$(printf %s tok-a | "$metrond" --hash-token)"
} >"$work/tokens"
http=$(free_port)
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --tokens-file "$work/tokens" --postgres "$url" --grace 1 --retention-interval 0 \
  --compact-interval 0 >"$work/metrond.log" 2>&1 &
metrond_pid=$!
base=http://127.0.0.1:$http
wait_for 30 curl -fsS "$base/health" || fail "metrond did not come up"

# four hours of points of each tenant, the last in the current hour (in the head)
now=$(date +%s)
h=$((now / 3600 * 3600))
for t in $(seq $((h - 3 * 3600)) 300 $((now - 30))); do
  echo "cpu,business_id=$A,host=a1 usage=$((t % 97)).5 $t"
  echo "cpu,business_id=$B,host=b1 usage=$((t % 89)).25 $t"
  echo "mem,business_id=$B,host=b1 used=$((t % 83)) $t"
done >"$work/in.lp"
code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST -H "Authorization: Token tok-sys" \
  --data-binary @"$work/in.lp" "$base/write?db=metron&precision=s")
[ "$code" = 204 ] || fail "write: $code $(cat "$work/resp")"
ok "two tenants written"

a_rows() {
  local n=0 q
  for t in hourly_metrics_summary series_hourly_summary metrics_minute series_minute; do
    q=$(sql "SELECT count(*) FROM monitoring.$t WHERE business_id = '$A'")
    n=$((n + q))
  done
  echo "$n"
}
have_a_rows() { sql "SELECT count(*) FROM monitoring.series_minute WHERE business_id = '$A'" | grep -qv '^0$' &&
  sql "SELECT count(*) FROM monitoring.series_hourly_summary WHERE business_id = '$A'" | grep -qv '^0$'; }
wait_for 90 have_a_rows || fail "A's rows never reached PostgreSQL"
ok "A mirrored ($(a_rows) rows)"
# B's rows, hourly and by minute (not updated_at: the mirror may upsert the same values again);
# the current hour's hourly rows come when it is sealed (a delete seals it to rewrite it)
b_rows() {
  sql "SELECT 'h', hour_bucket, series, sample_count, avg_value, p95_value
         FROM monitoring.series_hourly_summary WHERE business_id = '$B'
         AND hour_bucket < to_timestamp($h)
       UNION ALL SELECT 'g', hour_bucket, metric_name, sample_count, avg_value, p95_value
         FROM monitoring.hourly_metrics_summary WHERE business_id = '$B'
         AND hour_bucket < to_timestamp($h)
       UNION ALL SELECT 'm', minute_bucket, series, sample_count, avg_value, max_value
         FROM monitoring.series_minute WHERE business_id = '$B'
       UNION ALL SELECT 'n', minute_bucket, metric_name, sample_count, avg_value, p95_value
         FROM monitoring.metrics_minute WHERE business_id = '$B' ORDER BY 1, 2, 3"
}
# every sealed hour's rows are there (3 hours x 2 series) and two reads a second apart agree
b_settled() {
  [ "$(sql "SELECT count(*) FROM monitoring.series_hourly_summary WHERE business_id = '$B'
            AND hour_bucket < to_timestamp($h)")" = 6 ] || return 1
  b_rows >"$work/b_rows_1"
  sleep 1
  b_rows >"$work/b_rows_0"
  cmp -s "$work/b_rows_0" "$work/b_rows_1"
}
wait_for 90 b_settled || fail "B's rows did not settle in PostgreSQL"
ok "B mirrored ($(wc -l <"$work/b_rows_0") rows)"

"$metron" export --data "$work/data" 'cpu.usage' >"$work/cpu_before.lp"
"$metron" export --data "$work/data" 'mem.used' >"$work/mem_before.lp"
grep -q "$A" "$work/cpu_before.lp" || fail "A's points are not there to begin with"
grep -v "$A" "$work/cpu_before.lp" >"$work/b_cpu_before.lp"

# PromQL reads: /prometheus/api/v1/series and query (the 5-hour window covers every point)
prom() { # prom PATH PARAM...: GET with the system token, the parameters URL-encoded
  local path=$1
  shift
  local args=()
  for a in "$@"; do args+=(--data-urlencode "$a"); done
  curl -fsS -G -H "Authorization: Token tok-sys" "${args[@]}" "$base/prometheus/api/v1/$path"
}
prom_series() { prom series 'match[]=cpu_usage' "start=$((h - 4 * 3600))" "end=$((now + 60))"; }
prom_query() { prom query 'query=count_over_time(cpu_usage[5h])' "time=$((now + 60))"; }
for r in "$(prom_series)" "$(prom_query)"; do
  grep -q "$A" <<<"$r" && grep -q "$B" <<<"$r" || fail "PromQL before the delete lacks a tenant: $r"
done
ok "PromQL /series and /query answer both tenants before the delete"

code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST -H "Authorization: Token tok-a" \
  --data "tenant=$A" "$base/api/v1/admin/delete")
[ "$code" = 403 ] || fail "a tenant token deleting a tenant: $code $(cat "$work/resp")"
ok "a tenant's token gets 403"

out=$("$metron" delete --data "$work/data" --tenant "$A" 2>&1) && fail "delete --data beside metrond ran"
grep -q "api/v1/admin/delete" <<<"$out" || fail "the refusal does not say the way: $out"
ok "metron delete --data beside metrond is refused: $out"

code=$(curl -sS -o "$work/resp" -w '%{http_code}' -XPOST -H "Authorization: Token tok-sys" \
  --data "tenant=$A" "$base/api/v1/admin/delete")
[ "$code" = 200 ] || fail "system token delete: $code $(cat "$work/resp")"
grep -q '"series_forgotten":1' "$work/resp" || fail "delete result: $(cat "$work/resp")"
ok "the system token deletes A: $(cat "$work/resp")"

no_a_rows() {
  for t in hourly_metrics_summary series_hourly_summary metrics_minute series_minute \
    performance_metrics security_events business_metrics alerts; do
    [ "$(sql "SELECT count(*) FROM monitoring.$t WHERE business_id = '$A'")" = 0 ] || return 1
  done
}
wait_for 60 no_a_rows || fail "A's rows are still in PostgreSQL: $(a_rows)"
ok "nothing of A in PostgreSQL"
b_rows >"$work/b_rows_after"
diff "$work/b_rows_0" "$work/b_rows_after" || fail "B's rows in PostgreSQL changed with A's delete"
ok "B's $(wc -l <"$work/b_rows_0") rows in PostgreSQL unchanged"
q=$(curl -fsS -H "Authorization: Token tok-sys" "$base/api/v1/query?select=cpu.usage&from=-1d&to=now" || true)
grep -q "$A" <<<"$q" && fail "/api/v1/query still answers A: $q"
ok "/api/v1/query has no A"
for r in "$(prom_series)" "$(prom_query)"; do
  grep -q "$A" <<<"$r" && fail "PromQL still answers A: $r"
  grep -q "$B" <<<"$r" || fail "PromQL lost B: $r"
done
ok "PromQL /series and /query: B, nothing of A"

kill -TERM "$metrond_pid" && wait "$metrond_pid" || true
metrond_pid=""
grep -rl "$A" "$work/data" && fail "A's business_id is still in the data directory's files"
ok "A's business_id is in no file of the data directory"
# a tombstone in series_by_id: format 5 (4 and up have them), so that a build reading up to 3
# refuses the directory by its version instead of calling the record damage (docs/format.md)
"$metron" inspect --data "$work/data" --format json >"$work/inspect.json" ||
  fail "inspect after the delete: $(cat "$work/inspect.json")"
grep -q '"format":6,"format_max":6' "$work/inspect.json" || fail "format: $(cat "$work/inspect.json")"
ok "metron inspect reports format 5 after the tenant delete"
"$metron" export --data "$work/data" 'cpu.usage' >"$work/cpu_after.lp"
"$metron" export --data "$work/data" 'mem.used' >"$work/mem_after.lp"
cmp "$work/b_cpu_before.lp" "$work/cpu_after.lp" || fail "B's cpu points changed"
cmp "$work/mem_before.lp" "$work/mem_after.lp" || fail "B's mem points changed"
[ -z "$("$metron" series --data "$work/data" "cpu.usage{business_id=\"$A\"}")" ] || fail "A's series listed"
ok "B's points unchanged byte for byte, A's series gone"

# a range of B's cpu: exactly the points in [from, to) go, the rest stay
from=$((h - 2 * 3600 + 900)) to=$((h - 3600 + 1200))
"$metron" delete --data "$work/data" "cpu.usage{business_id=\"$B\"}" \
  --from "$(date -u -d "@$from" +%FT%TZ)" --to "$(date -u -d "@$to" +%FT%TZ)" >"$work/del.out"
awk -v f="$from" -v t="$to" '{ s = substr($NF, 1, length($NF) - 9) + 0; if (s < f || s >= t) print }' \
  "$work/b_cpu_before.lp" >"$work/b_cpu_expected.lp"
"$metron" export --data "$work/data" 'cpu.usage' >"$work/cpu_range.lp"
cmp "$work/b_cpu_expected.lp" "$work/cpu_range.lp" || fail "range delete: $(cat "$work/del.out")"
cmp "$work/mem_before.lp" <("$metron" export --data "$work/data" 'mem.used') || fail "mem changed"
ok "a range of a selector: exactly its points went ($(cat "$work/del.out"))"

# PostgreSQL follows once metrond runs again: B's cpu rows of the range are gone, its hours and
# minutes count exactly the points left, and B's mem rows are as they were
"$metrond" --data "$work/data" --http "127.0.0.1:$http" --lp-tcp off --lp-udp off \
  --tokens-file "$work/tokens" --postgres "$url" --grace 1 --retention-interval 0 \
  --compact-interval 0 >>"$work/metrond.log" 2>&1 &
metrond_pid=$!
wait_for 30 curl -fsS "$base/health" || fail "metrond did not come up again"
cpu_series="cpu,business_id=$B,host=b1 usage"
# expected: points left per hour and per minute, from the export
awk '{ s = substr($NF, 1, length($NF) - 9) + 0; h[int(s / 3600) * 3600]++; m[int(s / 60) * 60]++ }
     END { for (k in h) print "h", k, h[k]; for (k in m) print "m", k, m[k] }' \
  "$work/b_cpu_expected.lp" | sort >"$work/cpu_expected_counts"
cpu_counts() {
  sql "SELECT 'h', extract(epoch FROM hour_bucket)::bigint, sample_count
         FROM monitoring.series_hourly_summary WHERE business_id = '$B' AND series = '$cpu_series'
       UNION ALL SELECT 'm', extract(epoch FROM minute_bucket)::bigint, sample_count
         FROM monitoring.series_minute WHERE business_id = '$B' AND series = '$cpu_series'" |
    tr '|' ' ' | sort
}
range_mirrored() {
  cpu_counts >"$work/cpu_counts"
  # the current hour's hourly row comes when it is sealed: compare what the hours before hold
  grep -v "^h $h " "$work/cpu_expected_counts" >"$work/cpu_want"
  grep -v "^h $h " "$work/cpu_counts" | cmp -s - "$work/cpu_want"
}
wait_for 60 range_mirrored || fail "B's cpu rows after the range delete: $(diff "$work/cpu_want" "$work/cpu_counts" | head -20)"
ok "B's cpu rows in PostgreSQL count exactly the points left ($(wc -l <"$work/cpu_want") hours and minutes)"
b_rows | grep -v "usage" >"$work/b_rows_mem"
grep -v "usage" "$work/b_rows_0" | diff - "$work/b_rows_mem" || fail "B's mem rows changed"
ok "B's mem rows in PostgreSQL unchanged"
echo "$passed passed"
