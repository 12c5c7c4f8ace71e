#!/usr/bin/env bash
# kill -9 under metrond: kill9_loop.sh BUILD_DIR ITERATIONS [durability.py options]
# Exits 1 on any acknowledged point lost, duplicated or altered.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 n=$2
shift 2
exec python3 "$here/durability.py" kill9 --iterations "$n" \
  --metrond "$build/tools/metrond" --metron "$build/tools/metron" "$@"
