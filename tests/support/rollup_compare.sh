# tests/support/rollup_compare.sh — PostgreSQL's hourly rows against `metron rollup` (sourced,
# not run; test_switchover.sh and tests/cluster/test_cluster.sh use it).
#
#   pg_hourly_csv URL TABLE   the rows of monitoring.hourly_metrics_summary (TABLE = groups) or
#                             monitoring.series_hourly_summary (TABLE = series) as CSV in the
#                             column order of `metron rollup --group|--series --format csv`,
#                             sorted, without a header
#   rollup_compare KEYCOLS METRON PG
#                             the same keys (the first KEYCOLS columns) in the same order, the
#                             numbers equal as doubles; exits non-zero naming the first
#                             difference (two files of sorted CSV rows)

pg_hourly_csv() {
  local iso="to_char(hour_bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
  local cols="sample_count, avg_value, min_value, max_value, median_value, p95_value, p99_value"
  local q
  case $2 in
  groups) q="SELECT $iso, coalesce(business_id::text, ''), metric_category, metric_name, $cols
             FROM monitoring.hourly_metrics_summary" ;;
  series) q="SELECT $iso, series, $cols FROM monitoring.series_hourly_summary" ;;
  *) echo "pg_hourly_csv: groups or series, not $2" >&2; return 2 ;;
  esac
  psql "$1" -qAtX -v ON_ERROR_STOP=1 -c "COPY ($q) TO STDOUT WITH (FORMAT csv)" | LC_ALL=C sort
}

rollup_compare() {
  /usr/bin/python3 - "$@" <<'EOF'
import csv, sys
k = int(sys.argv[1])
m = list(csv.reader(open(sys.argv[2])))
p = list(csv.reader(open(sys.argv[3])))
if len(m) != len(p):
    sys.exit(f"{sys.argv[2]}: Metron has {len(m)} rows, PostgreSQL {len(p)}")
for a, b in zip(m, p):
    if a[:k] != b[:k] or len(a) != len(b) or any(float(x) != float(y) for x, y in zip(a[k:], b[k:])):
        sys.exit(f"Metron {a} != PostgreSQL {b}")
EOF
}
