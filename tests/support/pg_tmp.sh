#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: initdb in DIR, listening on
# 127.0.0.1 only at a free port, pg_stat_statements preloaded.
#
#   pg_tmp.sh start DIR   prints the connection URL on stdout
#   pg_tmp.sh stop DIR    stops the server and removes DIR
#   pg_tmp.sh crash DIR   stops it at once, as a crash would (pg_ctl stop -m immediate)
#   pg_tmp.sh restart DIR starts it again on the same port (after crash)
#
# With PG_TMP_SSL_CERT and PG_TMP_SSL_KEY set (PEM files), start serves TLS
# too (ssl=on; a copy of the key that the server's user owns, mode 0600) and
# logs each connection, with its SSL state. Plain connections stay allowed:
# the client's sslmode decides.
#
# initdb and postgres refuse to run as root: as root they run as the
# 'postgres' OS user on a directory it owns.
set -euo pipefail
cmd=${1:?usage: pg_tmp.sh start|stop DIR}
dir=${2:?usage: pg_tmp.sh start|stop DIR}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg_tmp: no PostgreSQL server found (tools/setup.sh installs it)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  ssl_opts=""
  if [ -n "${PG_TMP_SSL_CERT:-}" ]; then
    install -m 0644 "$PG_TMP_SSL_CERT" "$dir/server.crt"
    install -m 0600 "${PG_TMP_SSL_KEY:?PG_TMP_SSL_KEY goes with PG_TMP_SSL_CERT}" "$dir/server.key"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/server.crt" "$dir/server.key"; fi
    ssl_opts="-c ssl=on -c ssl_cert_file='$dir/server.crt' -c ssl_key_file='$dir/server.key' -c log_connections=on"
  fi
  for attempt in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue   # taken
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
         -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' \
             -c shared_preload_libraries=pg_stat_statements -c max_connections=50 $ssl_opts" >/dev/null; then
      as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
        -c "CREATE DATABASE metron_test" >/dev/null
      echo "postgresql://postgres@127.0.0.1:$port/metron_test"
      exit 0
    fi
  done
  cat "$dir/server.log" >&2
  exit 1
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
  ;;
crash)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
  ;;
restart)
  # postmaster.opts holds the options of the last start: the same port and socket
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 restart >/dev/null 2>>"$dir/pg_ctl.log"
  ;;
*) echo "usage: pg_tmp.sh start|stop|crash|restart DIR" >&2; exit 2 ;;
esac
