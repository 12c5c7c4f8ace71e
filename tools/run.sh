#!/usr/bin/env bash
# The README's run command: installs what is missing, makes the release
# build, then starts metrond on its embedded default: data in ./data, line
# protocol on TCP and UDP 127.0.0.1:8089, HTTP on 127.0.0.1:8086, no
# PostgreSQL needed. Extra arguments go to metrond (metrond --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tools/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
exec build/release/tools/metrond "$@"
