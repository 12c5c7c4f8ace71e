# tests/support/testlib.sh — helpers the shell tests share (sourced, not run):
# TAP-style ok/fail lines, a free loopback port, and polling with a deadline
# (a test waits for an event, never a fixed sleep). The sourcing script keeps
# `passed` (a count) and its own cleanup trap.

fail() { echo "not ok - $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }

# A loopback port nobody listens on, below the kernel's ephemeral range and not given to this
# script before (tests/support/free_port.py says why).
free_port() { /usr/bin/python3 "${BASH_SOURCE[0]%/*}/free_port.py" --owner $$; }

# wait_for SECONDS CMD...: polls until CMD succeeds (0) or the deadline passes (1).
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
