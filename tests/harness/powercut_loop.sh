#!/usr/bin/env bash
# Power cuts under metrond: powercut_loop.sh BUILD_DIR MODEL ITERATIONS [durability.py options]
# MODEL is ordered or strict (tests/harness/powercut.c); e.g. tests/harness/powercut_loop.sh
# build/release strict 200. Exits 1 on any acknowledged point lost, duplicated or altered.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 model=$2 n=$3
shift 3
exec python3 "$here/durability.py" powercut --model "$model" --iterations "$n" \
  --metrond "$build/tools/metrond" --metron "$build/tools/metron" \
  --shim "$build/tests/harness/powercut.so" "$@"
