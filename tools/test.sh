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
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp
# ctest -V keeps every test's own output in the log; the summary and the
# lines tests print for people (kills survived, ...) are shown here.
run_suite() {
  local build=$1 log=$1/ctest.log
  if ! ctest --test-dir "$build" --output-on-failure -V -j "$jobs" >"$log" 2>&1; then
    grep -vE '^[0-9]+: \[(----|====|RUN |PASS)\]' "$log" | tail -n 150
    echo "== tests failed in $build (full log: $log)"
    return 1
  fi
  grep -hE '^[0-9]+: (crash test|replayed|powercut|kill -9|readers beside)' "$log" | sed -E 's/^[0-9]+: /   /' || true
  grep -E 'tests passed' "$log"
}
echo "== tests, sanitized build"
run_suite build/test
echo "== tests, release build"
run_suite build/release
echo "== all tests passed"
