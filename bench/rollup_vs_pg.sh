#!/usr/bin/env bash
# Rollups: Metron against the seed's PostgreSQL design, on the same points,
# in one run. Metron loads the devops workload and seals it (bench_rollup:
# the whole seal, and the part of it that computes the hourly rollups);
# PostgreSQL gets the same points by COPY into the seed's
# monitoring.performance_metrics (partitioned, the seed's indexes;
# metric_value double precision, the audit's fix for NUMERIC(15,6)
# overflow) and times REFRESH MATERIALIZED VIEW of the seed's
# hourly_metrics_summary over them. Then the bytes on disk of both.
# Medians of --repeat runs; a throwaway PostgreSQL (tests/support/pg_tmp.sh)
# on 127.0.0.1, stopped at the end.
#
#   bench/rollup_vs_pg.sh [--hosts N] [--hours N] [--repeat N]    default 100 x 24, 3
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hosts=100 hours=24 repeat=3
while [ $# -gt 0 ]; do
  case $1 in
  --hosts) hosts=$2; shift 2 ;;
  --hours) hours=$2; shift 2 ;;
  --repeat) repeat=$2; shift 2 ;;
  *) echo "usage: bench/rollup_vs_pg.sh [--hosts N] [--hours N] [--repeat N]" >&2; exit 2 ;;
  esac
done
bench=$root/build/release/bench/bench_rollup
[ -x "$bench" ] || { echo "rollup_vs_pg: build first (cmake --build build/release)" >&2; exit 1; }

work=$(mktemp -d /tmp/metron-rollup-pg.XXXXXX)
pgdir=$work/pg
chmod 755 "$work" # PostgreSQL runs as the postgres user when we are root: it reads in here
trap '"$root/tests/support/pg_tmp.sh" stop "$pgdir" 2>/dev/null || true; rm -rf "$work"' EXIT
url=$("$root/tests/support/pg_tmp.sh" start "$pgdir")
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
psql() { "$bin/psql" "$url" -qAtX -v ON_ERROR_STOP=1 "$@"; }

# the seed's view keeps 30 days: the points end at the last whole hour
start=$(( ($(date +%s) / 3600 - hours) * 3600 ))
echo "== Metron: load, seal, compact ($hosts hosts x $hours h, $repeat runs)"
"$bench" --hosts "$hosts" --hours "$hours" --start "$start" --repeat "$repeat" \
  --copy "$work/points.copy" | tee "$work/metron.txt"
. <(grep = "$work/metron.txt")

echo "== PostgreSQL $(psql -c 'SHOW server_version'): COPY into the seed's table"
psql -v start="$start" -f "$root/bench/seed_pg.sql"
t0=$(date +%s.%N)
psql -c "\\copy monitoring.performance_metrics (business_id, metric_name, metric_category, metric_type, metric_value, tags, collected_at) FROM '$work/points.copy'"
psql -c "VACUUM ANALYZE monitoring.performance_metrics"
copy_s=$(echo "$(date +%s.%N) - $t0" | bc)
rows=$(psql -c "SELECT count(*) FROM monitoring.performance_metrics")
pg_bytes=$(psql -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'monitoring.performance_metrics'::regclass")
refresh=()
for _ in $(seq 1 "$repeat"); do
  t0=$(date +%s.%N)
  psql -c "REFRESH MATERIALIZED VIEW monitoring.hourly_metrics_summary"
  refresh+=("$(echo "$(date +%s.%N) - $t0" | bc)")
done
refresh_s=$(printf '%s\n' "${refresh[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
mv_rows=$(psql -c "SELECT count(*) FROM monitoring.hourly_metrics_summary")

[ "$rows" -eq "$points" ] || { echo "rollup_vs_pg: PostgreSQL has $rows rows, Metron $points points" >&2; exit 1; }
[ "$mv_rows" -eq "$group_rollup_rows" ] || { echo "rollup_vs_pg: view rows $mv_rows, Metron groups $group_rollup_rows" >&2; exit 1; }
awk -v p="$points" -v g="$mv_rows" -v seal="$metron_seal_s" -v ru="$metron_rollup_s" -v gr="$metron_group_s" -v ref="$refresh_s" \
    -v mb="$metron_bytes" -v pb="$pg_bytes" -v copy="$copy_s" -v h="$hosts" -v hr="$hours" 'BEGIN {
  printf "\n== rollups and storage, %d hosts x %d h: %d points, %d hourly group rows (medians)\n", h, hr, p, g
  printf "| measure | Metron | PostgreSQL (seed) | ratio |\n|---|---|---|---|\n"
  printf "| the view'"'"'s rows: hourly group rollups, count to p99 | %.3f s | %.2f s (REFRESH MATERIALIZED VIEW) | %.0fx faster |\n", gr, ref, ref / gr
  printf "| every rollup Metron keeps (+ series rows, sketches, storing) | %.3f s | %.2f s | %.0fx faster |\n", ru, ref, ref / ru
  printf "| ... the whole seal (rollups, encode, zstd, fsync, index) | %.2f s | %.2f s | %.1fx faster |\n", seal, ref, ref / seal
  printf "| bytes on disk per point | %.2f | %.1f (table + indexes) | %.0fx smaller |\n", mb / p, pb / p, pb / mb
  printf "| (loading the points: PostgreSQL COPY + VACUUM ANALYZE) | | %.1f s | |\n", copy
}'
