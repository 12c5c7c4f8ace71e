#!/usr/bin/env bash
# metron export/query --data beside a metrond re-sealing backfilled hours:
# readers_loop.sh BUILD_DIR READS [durability.py options]. Exits 1 on a crash or a wrong answer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 n=$2
shift 2
exec python3 "$here/durability.py" readers --iterations "$n" \
  --metrond "$build/tools/metrond" --metron "$build/tools/metron" "$@"
