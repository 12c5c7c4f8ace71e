# tests/cluster/cluster_lib.sh — what the cluster tests share (sourced, not run): metrond nodes
# on free loopback ports reading one tokens file, and HAProxy with deploy/haproxy/metron.cfg as
# shipped (its global, defaults and frontend; the listen addresses, the socket path and the
# backends are the test's). Sources tests/support/testlib.sh (fail, ok, free_port, wait_for).
#
# The sourcing script sets, before calling these:
#   metrond          the binary
#   work             its temporary directory (the nodes' data, logs, tokens, metron.cfg)
#   declare -A port pid   a node's port and pid by name (start_node sets both)
#   haproxy_pid=""   set by start_haproxy
# and keeps its own EXIT trap, which calls stop_node for each node and stops $haproxy_pid.
. "$(dirname "${BASH_SOURCE[0]}")/../support/testlib.sh"

cl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
haproxy=$(command -v haproxy || true)
socat=$(command -v socat || true)
[ -n "$haproxy" ] && [ -n "$socat" ] ||
  { echo "$(basename "$0"): no haproxy or socat (tools/setup.sh installs them)" >&2; exit 1; }

# hash TOKEN: its sha256-hex as the tokens file and tenants.map hold it
hash() { printf %s "$1" | "$metrond" --hash-token; }

# stop_node NAME [SIGNAL]: stops the node (TERM by default) and waits for it
stop_node() {
  [ -n "${pid[$1]:-}" ] || return 0
  kill "-${2:-TERM}" "${pid[$1]}" 2>/dev/null
  wait "${pid[$1]}" 2>/dev/null || true # its status after a signal is not 0
  pid[$1]=""
}

# start_node NAME: metrond on ${port[NAME]} (a free port when unset), data $work/NAME, tokens
# $work/tokens, log $work/NAME.log, then the words of the array node_args if the caller set one
# (a --postgres URL and its settings); returns once /ready answers 200
start_node() {
  [ -n "${port[$1]:-}" ] || port[$1]=$(free_port)
  "$metrond" --data "$work/$1" --http "127.0.0.1:${port[$1]}" --lp-tcp off --lp-udp off \
    --tokens-file "$work/tokens" --grace 1 --retention-interval 0 --compact-interval 0 \
    ${node_args[@]+"${node_args[@]}"} >>"$work/$1.log" 2>&1 &
  pid[$1]=$!
  wait_for 30 curl -fsS "http://127.0.0.1:${port[$1]}/ready" || fail "node $1 did not come up"
}

# haproxy_config: $work/metron.cfg, the shipped configuration up to its backends, listening on
# 127.0.0.1:$f1 (replica 1) and :$f2 (replica 2), the runtime socket at $sock; sets f1 f2 sock.
# The caller appends its backends.
haproxy_config() {
  f1=$(free_port) f2=$(free_port)
  sock=$work/haproxy.sock
  sed -e "s#^\([[:space:]]*bind\) :8086 #\1 127.0.0.1:$f1 #" \
    -e "s#^\([[:space:]]*bind\) :8087 #\1 127.0.0.1:$f2 #" \
    -e "s#/run/haproxy/metron.sock#$sock#" \
    -e '/^[[:space:]]*\(user\|group\)[[:space:]]/d' -e 's#^\([[:space:]]*log\) /dev/log #\1 stderr #' \
    -e '/^# ---- backends/,$d' "$cl_root/deploy/haproxy/metron.cfg" >"$work/metron.cfg"
  local want
  for want in "bind 127.0.0.1:$f1 id 1" "bind 127.0.0.1:$f2 id 2" "stats socket $sock "; do
    grep -q "$want" "$work/metron.cfg" || fail "deploy/haproxy/metron.cfg changed: no '$want' after the edits"
  done
}

# start_haproxy: checks $work/metron.cfg (haproxy -c) and starts HAProxy on it (log
# $work/haproxy.log); sets haproxy_pid. The caller waits for its servers (all_up).
start_haproxy() {
  "$haproxy" -c -f "$work/metron.cfg" >"$work/check.out" 2>&1 || fail "haproxy -c: $(cat "$work/check.out")"
  "$haproxy" -db -f "$work/metron.cfg" >"$work/haproxy.log" 2>&1 &
  haproxy_pid=$!
}

# hx COMMAND...: one command on the runtime socket; prints its answer
hx() { echo "$*" | "$socat" -t 5 - "UNIX-CONNECT:$sock"; }
# status BACKEND SERVER: the server's status, check status and code in `show stat`
status() { hx "show stat" | awk -F, -v b="$1" -v s="$2" '$1 == b && $2 == s { print $18, $37, $38 }'; }
# all_up BACKEND,SERVER: every server UP after a passed check (a server starts UP before its
# first check), BACKEND,SERVER (the last one of the configuration) among them; one answer read
# whole, so that an empty one (socket not yet served) is no pass.
all_up() {
  local st
  st=$(hx "show stat") || return 1
  grep -q "^$1," <<<"$st" || return 1
  [ -z "$(awk -F, '$2 != "FRONTEND" && $2 != "BACKEND" && $1 !~ /^#/ && ($18 != "UP" || $37 != "L7OK")' <<<"$st")" ]
}
