#!/usr/bin/env bash
# metron-floor (bench/metron_floor.c) on a tiny data dir that `metron import` builds: every
# value type, an irregular step, a float exact at no decimal exponent:
#   - it exits 0 and names the measurement and each field, in text and in Markdown;
#   - the hour files and index.mdb are the same bytes afterwards (it only reads);
#   - a usage error exits 2; a directory without index.mdb exits 1 naming the file.
#
#   test_metron_floor.sh METRON METRON_FLOOR
set -euo pipefail
metron=${1:?usage: test_metron_floor.sh METRON METRON_FLOOR}
floor=${2:?usage: test_metron_floor.sh METRON METRON_FLOOR}

work=$(mktemp -d /tmp/metron-floor-test.XXXXXX)
passed=0
trap 'rc=$?; rm -rf "$work"; [ "$rc" = 0 ] || echo "$passed passed, 1 failed"' EXIT
. "$(dirname "$0")/../support/testlib.sh" # fail, ok

cat >"$work/in.lp" <<'LP'
weird,host=a f=1.5,i=3i,b=true,s="x" 1796400000000000000
weird,host=a f=0.30000000000000004,i=7i,b=false,s="yy" 1796400010000000000
weird,host=a f=2.25,i=11i,b=true,s="zzz" 1796400027000000000
weird,host=b f=1e300,i=-5i 1796403600000000000
weird,host=b f=3.14159,i=-9i 1796403601000000000
LP
"$metron" import --data "$work/data" "$work/in.lp" >/dev/null || fail "metron import"
sums() { (cd "$work/data" && find blocks index.mdb -type f -print0 | sort -z | xargs -0 md5sum); }
before=$(sums)

"$floor" --data "$work/data" >"$work/out.txt" || fail "metron-floor exited $?"
for f in b f i s; do
  grep -Eq "^weird +$f +" "$work/out.txt" || fail "no row for field $f: $(cat "$work/out.txt")"
done
grep -Eq '^\(all\) +\(all\) +6 +6 +16 ' "$work/out.txt" || fail "totals: $(cat "$work/out.txt")"
grep -q '^rollups G (group rows)' "$work/out.txt" || fail "no index.mdb section"
ok "text: a row per field (b, f, i, s of weird), 6 series in 6 chunks of 16 points, index.mdb"

"$floor" --data "$work/data" --format md >"$work/out.md" || fail "metron-floor --format md exited $?"
grep -Eq '^\| weird +\| f +\| float ' "$work/out.md" || fail "md: $(cat "$work/out.md")"
grep -q '^|---|---|---|---:' "$work/out.md" || fail "md: no header rule"
ok "--format md: a Markdown table"

[ "$(sums)" = "$before" ] || fail "the data dir changed"
ok "the hour files and index.mdb are unchanged"

rc=0
"$floor" --data "$work/data" --format csv 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "--format csv exited $rc, not 2"
rc=0
"$floor" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "no --data exited $rc, not 2"
rc=0
"$floor" --data "$work/none" 2>"$work/err" || rc=$?
[ "$rc" = 1 ] && grep -q "$work/none/index.mdb" "$work/err" || fail "missing dir: $rc $(cat "$work/err")"
ok "usage errors exit 2; a missing index.mdb exits 1 naming it"
echo "$passed passed"
