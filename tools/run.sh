#!/usr/bin/env bash
# The README's run command: installs what is missing, makes the release
# build, then runs Metron's main job.
#
# The metrond daemon is not built yet (issue #4). Until it is, this runs
# what exists: the workload generator feeding the line-protocol parser
# benchmark, and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash tools/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"

if [ -x build/release/tools/metrond ]; then
  exec build/release/tools/metrond "$@"
fi
echo "run: metrond does not exist yet; running what exists: the devops workload" >&2
echo "run: generator and the line-protocol parser benchmark (bench/bench_lp)." >&2
exec build/release/bench/bench_lp "$@"
