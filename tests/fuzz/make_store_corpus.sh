#!/usr/bin/env bash
# Rewrites the seed corpora of fuzz_hourfile, fuzz_rollup, fuzz_headrec,
# fuzz_alert, fuzz_quar and fuzz_http from real bytes: one host's two hours
# of metron-gen data imported into a fresh data dir (its first hour file and
# its rollups), and the encoders' own records.
#
#   tests/fuzz/make_store_corpus.sh [BUILD_DIR]     (default build/test)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bench/metron-gen" --hosts 1 --hours 2 --interval 60 >"$tmp/w.lp"
"$build/tools/metron" import --data "$tmp/d" "$tmp/w.lp" >/dev/null
hour=$(find "$tmp/d/blocks" -name '*.blk' | sort | head -1)
"$build/tests/make_store_corpus" "$tmp/d" "$hour" "$root/tests/fuzz/corpus"
