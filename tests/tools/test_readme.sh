#!/usr/bin/env bash
# test_readme.sh — every shell example of README.md runs as pasted (issue 19).
#
#   tests/tools/test_readme.sh BIN_DIR README.md      (METRON_TEST_PG: the test PostgreSQL)
#
# Each ```sh block of the README carries a marker on the line before it:
#   <!-- readme-test: run (...) -->          run beside "tools/run.sh running"
#   <!-- readme-test: run-stopped (...) -->  run with that daemon stopped
#   <!-- readme-test: run-daemon (...) -->   its first line is the daemon (started in the
#                                            background in place of the plain one), the rest
#                                            runs beside it
#   <!-- readme-test: skip (why) -->         not run, and the reason says why
# A block without a marker fails the test, so a new example is run or said not to be.
#
# The blocks run in order in a fresh directory, each with bash -e in a process group
# of its own (what it leaves in the background is stopped after it), where
# build/release/tools holds BIN_DIR's binaries and tools/run.sh starts metrond as the
# real one does after building. The only text changed is where the machine differs: the
# README's PostgreSQL (postgresql://metron@127.0.0.1/metrics, psql metrics) becomes a
# database of the test PostgreSQL. The README's ports (8086, 8089, 9099) must be free:
# the test runs alone (RUN_SERIAL).
set -uo pipefail
bin=$(cd "$1" && pwd)
readme=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
: "${METRON_TEST_PG:?METRON_TEST_PG is not set: run the suite through tools/test.sh}"

work=$(mktemp -d /tmp/metron-readme.XXXXXX)
daemon_pid=
fail() {
    echo "test_readme: $*" >&2
    exit 1
}
stop_daemon() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM -- "-$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        daemon_pid=
    fi
}
db=metron_readme_$$
cleanup() {
    stop_daemon
    psql "$METRON_TEST_PG" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

for port in 8086 8089 9099; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port is in use: the README's examples need it"
    fi
done

psql "$METRON_TEST_PG" -qAtX -c "CREATE DATABASE $db" >/dev/null || fail "cannot create $db"
pg_url="${METRON_TEST_PG%/*}/$db"

mkdir -p "$work/build/release" "$work/tools"
ln -s "$bin" "$work/build/release/tools"
cat >"$work/tools/run.sh" <<EOF
#!/bin/sh
# tools/run.sh without the build: metrond, as tools/run.sh execs it
exec build/release/tools/metrond "\$@"
EOF
chmod +x "$work/tools/run.sh"
cd "$work" || exit 1

# Start "tools/run.sh ARGS" in the background in a process group of its own; wait for /ready.
start_daemon() {
    setsid bash -c "exec $*" >>"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 100); do
        curl -sf http://127.0.0.1:8086/ready >/dev/null && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/daemon.log" >&2
    fail "the daemon did not come up: $*"
}

# The blocks: "<kind>\t<start line>" then the block's lines, then an end mark, per block.
blocks=$(awk '
    /^```sh/ {
        if (prev !~ /^<!-- readme-test: (run|run-stopped|run-daemon|skip) /) {
            printf "UNMARKED\t%d\n", NR; next
        }
        kind = prev; sub(/^<!-- readme-test: /, "", kind); sub(/ .*/, "", kind)
        printf "BLOCK\t%s\t%d\n", kind, NR + 1; inblock = 1; next
    }
    inblock && /^```/ { print "END"; inblock = 0; next }
    inblock { print; next }
    NF { prev = $0 }
' "$readme")
if grep -q '^UNMARKED' <<<"$blocks"; then
    fail "README blocks without a readme-test marker at lines: $(grep '^UNMARKED' <<<"$blocks" | cut -f2 | tr '\n' ' ')"
fi

ran=0 skipped=0 failed=0
run_block() { # kind line file
    local kind=$1 line=$2 file=$3
    # the machine's PostgreSQL in place of the README's
    sed -i -e "s|postgresql://metron@127.0.0.1/metrics|$pg_url|g" \
        -e "s|psql metrics |psql '$pg_url' |g" "$file"
    case $kind in
    skip) skipped=$((skipped + 1)); return ;;
    run) [ -n "$daemon_pid" ] || start_daemon tools/run.sh ;;
    run-stopped) stop_daemon ;;
    run-daemon)
        stop_daemon
        start_daemon "$(head -n1 "$file")"
        sed -i 1d "$file"
        ;;
    esac
    printf "\n--- README.md line %s (%s)\n" "$line" "$kind"
    setsid bash -e "$file" >"$file.out" 2>&1 &
    local pid=$!
    wait "$pid"
    local rc=$?
    kill -TERM -- "-$pid" 2>/dev/null # what the block left running (nc, a metrond)
    sleep 0.5
    kill -KILL -- "-$pid" 2>/dev/null
    sed 's/^/    /' "$file.out"
    if [ "$rc" -ne 0 ]; then
        echo "FAILED: the block at README.md line $line exited $rc" >&2
        failed=$((failed + 1))
    fi
    ran=$((ran + 1))
    check_block "$line" "$file.out"
}

# What some blocks must show (beyond exiting 0): the README's own claims.
check_block() { # line output
    local out=$2
    if grep -q 'FROM monitoring.alerts' "$cur_text"; then
        grep -q 'active *| *critical *| *95' "$out" ||
            { echo "FAILED: line $1: no active critical alert in PostgreSQL" >&2; failed=$((failed + 1)); }
        grep -q 'POST /hook' "$out" ||
            { echo "FAILED: line $1: the receiver got no webhook" >&2; failed=$((failed + 1)); }
    fi
    if grep -q "curl -i -XPOST 'http://127.0.0.1:8086/write" "$cur_text"; then
        grep -q '^HTTP/1.1 204' "$out" ||
            { echo "FAILED: line $1: the write got no 204" >&2; failed=$((failed + 1)); }
        grep -q 'partial write: unable to parse' "$out" ||
            { echo "FAILED: line $1: the bad line was not named" >&2; failed=$((failed + 1)); }
    fi
}

n=0 kind= line= file=
while IFS= read -r l; do
    case $l in
    BLOCK$'\t'*)
        kind=$(cut -f2 <<<"$l")
        line=$(cut -f3 <<<"$l")
        n=$((n + 1))
        file=$work/block$n.sh
        : >"$file"
        ;;
    END)
        cur_text=$work/block$n.orig
        cp "$file" "$cur_text"
        run_block "$kind" "$line" "$file"
        ;;
    *) printf '%s\n' "$l" >>"$file" ;;
    esac
done <<<"$blocks"

stop_daemon
echo "test_readme: $ran blocks run, $skipped skipped (each says why), $failed failed"
[ "$failed" -eq 0 ] && [ "$ran" -gt 0 ]
