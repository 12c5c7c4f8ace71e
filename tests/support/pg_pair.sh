#!/usr/bin/env bash
# A throwaway primary and streaming standby for the tests (pg_tmp.sh's sibling): two
# clusters in DIR/n1 and DIR/n2, each on 127.0.0.1 at a free port of its own, trust
# authentication, what a Patroni pair looks like to a client without Patroni.
#
#   pg_pair.sh start DIR          n1 primary with the database metron_test, n2 its standby
#                                 (pg_basebackup -R -X stream); prints "PORT1 PORT2".
#                                 Replication is synchronous (n1's synchronous_standby_names
#                                 names n2, set once n2 streams; n2 does not inherit it): a
#                                 COMMIT returns once n2 has it, so a crash of n1 loses no
#                                 acknowledged row, as with Patroni's synchronous_mode
#   pg_pair.sh crash DIR N        node N stopped at once, as a crash would (-m immediate)
#   pg_pair.sh down DIR N         node N stopped cleanly (-m fast: its standbys get every WAL
#                                 record first, as in Patroni's switchover)
#   pg_pair.sh promote DIR N      node N (a standby) becomes a primary (pg_ctl promote, waits)
#   pg_pair.sh rebuild DIR N M    node N made anew as an asynchronous standby of node M, on
#                                 its old port (what Patroni does to a former primary)
#   pg_pair.sh caught DIR N M     exit 0 when standby N has replayed all WAL primary M wrote
#   pg_pair.sh stop DIR           both stopped, DIR removed
#
# initdb and postgres refuse to run as root: as root they run as the 'postgres' OS user.
set -euo pipefail
cmd=${1:?usage: pg_pair.sh start|crash|down|promote|rebuild|caught|stop DIR ...}
dir=${2:?usage: pg_pair.sh CMD DIR ...}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg_pair: no PostgreSQL server found (tools/setup.sh installs it)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_at() { as_pg "$bin/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
port_of() { cat "$dir/n$1.port"; }
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# run_node N PORT [EXTRA]: start node N's cluster on PORT (cluster_name nN names it to its primary)
run_node() {
  as_pg "$bin/pg_ctl" -D "$dir/n$1" -l "$dir/n$1.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$2 -c unix_socket_directories='$dir' \
        -c cluster_name=n$1 -c max_connections=50 -c wal_level=replica -c max_wal_senders=5 \
        -c hot_standby=on ${3:-}" >/dev/null
}

# pick_port N [EXTRA]: start node N on a free port, retrying when one is taken meanwhile
pick_port() {
  for attempt in $(seq 1 50); do
    local port=$((20000 + RANDOM % 40000))
    free "$port" || continue
    if run_node "$1" "$port" "${2:-}" 2>>"$dir/pg_ctl.log"; then
      echo "$port" >"$dir/n$1.port"
      return 0
    fi
  done
  cat "$dir/n$1.log" >&2
  return 1
}

basebackup() { # basebackup N FROM: node N as a standby of node FROM
  rm -rf "$dir/n$1"
  as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$(port_of "$2")" -U postgres -D "$dir/n$1" \
    -R -X stream -c fast >>"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
}

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/n1" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  pick_port 1
  psql_at "$(port_of 1)" "CREATE DATABASE metron_test" >/dev/null
  basebackup 2 1
  pick_port 2
  # synchronous from here (ALTER SYSTEM after the base backup: n2's copy lacks it); wait
  # until n1 sees n2 streaming as its synchronous standby
  psql_at "$(port_of 1)" "ALTER SYSTEM SET synchronous_standby_names = 'n2'" >/dev/null
  psql_at "$(port_of 1)" "SELECT pg_reload_conf()" >/dev/null
  for i in $(seq 1 600); do
    [ "$(psql_at "$(port_of 1)" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'n2' AND sync_state = 'sync'")" = 1 ] && break
    [ "$i" -lt 600 ] || { echo "pg_pair: n2 never streamed from n1" >&2; exit 1; }
    sleep 0.05
  done
  echo "$(port_of 1) $(port_of 2)"
  ;;
crash) as_pg "$bin/pg_ctl" -D "$dir/n${3:?node}" -m immediate -w stop >/dev/null ;;
down) as_pg "$bin/pg_ctl" -D "$dir/n${3:?node}" -m fast -w stop >/dev/null ;;
promote) as_pg "$bin/pg_ctl" -D "$dir/n${3:?node}" -w -t 60 promote >/dev/null ;;
rebuild)
  n=${3:?node} from=${4:?primary node}
  if [ -f "$dir/n$n/postmaster.pid" ]; then as_pg "$bin/pg_ctl" -D "$dir/n$n" -m immediate -w stop >/dev/null || true; fi
  port=$(port_of "$n")
  basebackup "$n" "$from"
  run_node "$n" "$port"
  ;;
caught)
  n=${3:?standby} from=${4:?primary}
  want=$(psql_at "$(port_of "$from")" "SELECT pg_current_wal_lsn()")
  [ "$(psql_at "$(port_of "$n")" "SELECT pg_last_wal_replay_lsn() >= '$want'::pg_lsn")" = t ]
  ;;
stop)
  for n in 1 2; do
    if [ -f "$dir/n$n/postmaster.pid" ]; then as_pg "$bin/pg_ctl" -D "$dir/n$n" -m immediate -w stop >/dev/null || true; fi
  done
  rm -rf "$dir"
  ;;
*) echo "usage: pg_pair.sh start|crash|down|promote|rebuild|caught|stop DIR ..." >&2; exit 2 ;;
esac
