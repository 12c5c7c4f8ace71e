#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs one.
#
#   tools/fuzz.sh [TARGET] [SECONDS]     default: lp 180
#
# New inputs go to build/fuzz/corpus-TARGET, crashes to build/fuzz/artifacts-TARGET/ (the seed corpus in
# tests/fuzz/corpus/TARGET is read, never written). Copy a crash file into
# tests/fuzz/corpus/TARGET once it is fixed: the replay test keeps it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${1:-lp}
secs=${2:-180}

bash tools/setup.sh
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMT_TESTS=OFF -DMT_FUZZ=ON \
  -DMT_SANITIZE=fuzzer-no-link,address,undefined >/dev/null
cmake --build build/fuzz -j "$(nproc)" --target "fuzz_$target"
mkdir -p "build/fuzz/corpus-$target" "build/fuzz/artifacts-$target"
# crash, leak and timeout files go under build/, never to the working directory
"build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$secs" -print_final_stats=1 \
  -artifact_prefix="build/fuzz/artifacts-$target/" \
  "build/fuzz/corpus-$target" "tests/fuzz/corpus/$target"
