#!/usr/bin/env bash
# The README's test command: installs what is missing, builds the test
# build (-Werror, AddressSanitizer + UndefinedBehaviorSanitizer) and the
# release build, starts a throwaway PostgreSQL, and runs every test in both
# builds. The PostgreSQL is stopped at the end, also when tests fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

bash tools/setup.sh

echo "== test build (Debug, -Werror, address+undefined sanitizers)"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DMT_WERROR=ON -DMT_SANITIZE=address,undefined >/dev/null
cmake --build build/test -j "$jobs"
echo "== release build (-O2, LTO)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMT_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"

pgdir=$(mktemp -d /tmp/metron-pg.XXXXXX)
trap 'tests/support/pg_tmp.sh stop "$pgdir"' EXIT
METRON_TEST_PG=$(tests/support/pg_tmp.sh start "$pgdir")
export METRON_TEST_PG
echo "== PostgreSQL for the tests: $METRON_TEST_PG"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== tests, sanitized build"
ctest --test-dir build/test --output-on-failure -j "$jobs"
echo "== tests, release build"
ctest --test-dir build/release --output-on-failure -j "$jobs"
echo "== all tests passed"
