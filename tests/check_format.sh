#!/usr/bin/env bash
# Fails when a C file differs from what the project's .clang-format makes of it.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (tools/setup.sh installs it)"; exit 1; }
bad=0
for f in $(git ls-files --cached --others --exclude-standard -- '*.c' '*.h'); do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "format: $f is not formatted (clang-format -i $f)"; bad=1; }
done
[ $bad -eq 0 ] && echo "format: every C file is formatted"
exit $bad
