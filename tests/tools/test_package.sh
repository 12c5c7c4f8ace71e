#!/usr/bin/env bash
# test_package.sh BUILD_DIR — the Debian package, end to end, on this machine (as root; CI's
# machines are throwaway containers): cpack -G DEB in BUILD_DIR, dpkg -i, the files, the user,
# the conffile and the unit are where they belong, the config lists every setting metrond
# knows and metrond accepts it; metrond starts under systemd when systemd is PID 1, else as
# the unit says (its ExecStart, User, WorkingDirectory) with a NOTIFY_SOCKET the test listens
# on, which must get READY=1 once it listens and STOPPING=1 at SIGTERM; a point written over
# HTTP reads back; dpkg --purge leaves nothing (the metron user stays, as Debian's packages
# leave theirs: the test removes it when it made it). Cleans up on any exit.
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/testlib.sh"
passed=0

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i)"
command -v cpack >/dev/null || fail "no cpack"
if dpkg-query -W -f='${Status}' metron 2>/dev/null | grep -q installed; then
  fail "the metron package is installed already: this test would replace and purge it"
fi
user_existed=false
getent passwd metron >/dev/null && user_existed=true

scratch=$(mktemp -d /tmp/metron-pkg.XXXXXX)
chmod 755 "$scratch" # the metron user reaches the notify socket inside
pid=""
sink=""
drop_in=/run/systemd/system/metrond.service.d/zz-test.conf
cleanup() {
  set +e
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$sink" ] && kill "$sink" 2>/dev/null && wait "$sink" 2>/dev/null
  if [ "$systemd" = true ]; then
    systemctl stop metrond.service 2>/dev/null
    rm -f "$drop_in"
    systemctl daemon-reload 2>/dev/null
  fi
  dpkg-query -W metron >/dev/null 2>&1 && dpkg --purge metron >/dev/null 2>&1
  [ "$user_existed" = false ] && getent passwd metron >/dev/null && deluser --system metron >/dev/null 2>&1
  rm -rf "$scratch"
}
systemd=false
[ "$(ps -p 1 -o comm=)" = systemd ] && systemd=true
trap cleanup EXIT

# ---- build the package
t0=$SECONDS
(cd "$scratch" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/out") >"$scratch/cpack.log" 2>&1 ||
  { cat "$scratch/cpack.log" >&2; fail "cpack -G DEB"; }
deb=$(ls "$scratch"/out/metron_*.deb)
ok "cpack -G DEB made $(basename "$deb") in $((SECONDS - t0)) s"

dpkg-deb -c "$deb" >"$scratch/contents"
for f in ./usr/bin/metrond ./usr/bin/metron ./usr/bin/metron-pgstat ./usr/bin/metron-gen \
         ./etc/metron/metrond.conf ./usr/lib/systemd/system/metrond.service \
         ./usr/share/man/man8/metrond.8.gz ./usr/share/man/man1/metron.1.gz \
         ./usr/share/man/man1/metron-pgstat.1.gz ./usr/share/metron/grafana/metron-overview.json \
         ./usr/share/metron/haproxy/metron.cfg ./usr/bin/metron-haproxy-map \
         ./usr/share/doc/metron/README.md; do
  grep -q " $f\$" "$scratch/contents" || fail "the package lacks $f"
done
dpkg-deb -f "$deb" Depends | grep -q 'liblmdb0' || fail "no library dependencies (dpkg-shlibdeps)"
dpkg-deb -e "$deb" "$scratch/control"
grep -qx /etc/metron/metrond.conf "$scratch/control/conffiles" || fail "metrond.conf is no conffile"
ok "the package holds the binaries, config (a conffile), unit, man pages, Grafana files, docs"

# ---- install
dpkg -i "$deb" >"$scratch/dpkg.log" 2>&1 || { cat "$scratch/dpkg.log" >&2; fail "dpkg -i"; }
for f in /usr/bin/metrond /usr/bin/metron /usr/bin/metron-pgstat /usr/bin/metron-gen; do
  [ -x "$f" ] || fail "$f not installed"
done
uid=$(id -u metron) || fail "no metron user"
[ "$uid" -lt 1000 ] || fail "metron is no system user (uid $uid)"
[ "$(stat -c %U:%G /var/lib/metron)" = metron:metron ] || fail "/var/lib/metron not owned by metron"
[ -L /etc/systemd/system/multi-user.target.wants/metrond.service ] || fail "the unit is not enabled"
ok "dpkg -i: binaries, a system user metron (uid $uid), /var/lib/metron its own, the unit enabled"

conf=/etc/metron/metrond.conf
settings=$(/usr/bin/metrond --help | sed -n 's/^  --\([a-z-]*\) .*/\1/p' | grep -v -x -e hash-token -e version -e print-config | tr - _)
[ "$(echo "$settings" | wc -l)" -gt 30 ] || fail "metrond --help lists too few settings: $settings"
for s in $settings; do
  grep -q "^# $s = \|^$s = " "$conf" || fail "$conf lacks the setting $s"
done
grep -qx 'data = /var/lib/metron' "$conf" || fail "$conf does not set data = /var/lib/metron"
/usr/bin/metrond --config "$conf" --print-config >"$scratch/effective" || fail "metrond refuses $conf"
cmp -s "$conf" "$scratch/effective" || fail "$conf is not what metrond --print-config prints of it"
# every commented default, uncommented, is a valid config too
sed 's/^# \([a-z_]* = \)/\1/' "$conf" >"$scratch/all.conf"
/usr/bin/metrond --config "$scratch/all.conf" --print-config >/dev/null || fail "the defaults of $conf, uncommented, are refused"
ok "$conf: all $(echo "$settings" | wc -l) settings of metrond --help, each default accepted"

unit=/usr/lib/systemd/system/metrond.service
for d in Type=notify User=metron ProtectSystem=strict ReadWritePaths=/var/lib/metron \
         NoNewPrivileges=yes Restart=on-failure 'ExecStart=/usr/bin/metrond --config /etc/metron/metrond.conf'; do
  grep -qx "$d" "$unit" || fail "$unit lacks $d"
done
grep -q '^LimitNOFILE=[0-9]' "$unit" || fail "$unit lacks LimitNOFILE"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" >"$scratch/verify" 2>&1 || { cat "$scratch/verify" >&2; fail "systemd-analyze verify $unit"; }
fi
man -l /usr/share/man/man8/metrond.8.gz 2>/dev/null | grep -q -- '--print-config' || fail "man metrond lacks the settings"
ok "the unit: Type=notify, User=metron, ProtectSystem=strict, ReadWritePaths, LimitNOFILE (systemd-analyze verify); man metrond"

# ---- run it
port=$(free_port)
url=http://127.0.0.1:$port
if [ "$systemd" = true ]; then
  systemctl stop metrond.service 2>/dev/null || true # postinst may have started it on the default port
  mkdir -p "$(dirname "$drop_in")"
  printf '[Service]\nEnvironment=METROND_HTTP=127.0.0.1:%s METROND_LP_TCP=off METROND_LP_UDP=off\n' "$port" >"$drop_in"
  systemctl daemon-reload
  systemctl start metrond.service || { journalctl -u metrond -n 50 >&2; fail "systemctl start metrond"; }
  systemctl show -p StatusText metrond.service | grep -q 'listening' || fail "no READY status from sd_notify"
  ok "systemctl start metrond returned (Type=notify: after READY=1)"
else
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  run_user=$(sed -n 's/^User=//p' "$unit")
  workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
  nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit")
  notes="$scratch/notify.log"
  python3 "$here/../support/notify_sink.py" "$scratch/notify.sock" "$notes" &
  sink=$!
  wait_for 10 grep -q LISTENING "$notes" || fail "the notify listener did not start"
  # LimitNOFILE= as systemd would set it, when this container lets root raise the hard limit
  limit=(prlimit --nofile="$nofile")
  "${limit[@]}" true 2>/dev/null || limit=()
  # shellcheck disable=SC2086 # ExecStart is words, as systemd splits it
  (cd "$workdir" && exec "${limit[@]}" setpriv --reuid="$run_user" --regid="$run_user" --init-groups \
     env NOTIFY_SOCKET="$scratch/notify.sock" METROND_HTTP="127.0.0.1:$port" METROND_LP_TCP=off \
     METROND_LP_UDP=off $exec_start) >"$scratch/metrond.log" 2>&1 &
  pid=$!
  ready_or_gone() { grep -q '^READY=1;STATUS=listening' "$notes" || ! kill -0 "$pid"; }
  wait_for 60 ready_or_gone && grep -q '^READY=1;STATUS=listening' "$notes" ||
    { cat "$scratch/metrond.log" >&2; fail "no READY=1 on NOTIFY_SOCKET"; }
  curl -sf "$url/ready" >/dev/null || fail "READY=1 came before /ready answers"
  [ "$(ps -o user= -p "$pid")" = metron ] || fail "metrond does not run as metron"
  ok "ExecStart as User=metron: READY=1 on NOTIFY_SOCKET once listening ($(grep '^READY' "$notes"))"
fi

now=$(date +%s)
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$url/write?db=metron&precision=s" \
  --data-binary "pkgtest,host=deb v=42 $now")
[ "$code" = 204 ] || fail "write answered $code"
got=$(curl -sf "$url/api/v1/query?select=pkgtest.v&from=-1h&to=now%2B1m&agg=last&format=csv") || fail "query"
echo "$got" | grep -q ',42$' || fail "the point did not read back: $got"
[ -f /var/lib/metron/index.mdb ] || fail "no data in /var/lib/metron: $(ls -la /var/lib/metron)"
[ "$(stat -c %U /var/lib/metron/index.mdb)" = metron ] || fail "index.mdb not owned by metron"
ok "a point written over HTTP reads back; the data in /var/lib/metron belongs to metron"

if [ "$systemd" = true ]; then
  systemctl stop metrond.service
  [ "$(systemctl show -p Result --value metrond.service)" = success ] || fail "metrond stopped badly"
else
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  pid=""
  [ "$rc" -eq 0 ] || { cat "$scratch/metrond.log" >&2; fail "metrond exited $rc at SIGTERM"; }
  wait_for 10 grep -q '^STOPPING=1' "$notes" || fail "no STOPPING=1 at SIGTERM: $(cat "$notes")"
  wait "$sink" || true
  sink=""
  ok "SIGTERM: STOPPING=1 on NOTIFY_SOCKET, exit 0"
fi

# ---- purge
dpkg --purge metron >"$scratch/purge.log" 2>&1 || { cat "$scratch/purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/metrond /usr/bin/metron /usr/bin/metron-pgstat /usr/bin/metron-gen \
         /usr/bin/metron-haproxy-map /etc/metron \
         /usr/lib/systemd/system/metrond.service /etc/systemd/system/multi-user.target.wants/metrond.service \
         /usr/share/metron /usr/share/doc/metron /usr/share/man/man8/metrond.8.gz /var/lib/metron; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is left after dpkg --purge"
done
if dpkg-query -W metron >/dev/null 2>&1; then fail "dpkg still knows metron"; fi
ok "dpkg --purge: no binary, config, unit, enablement, docs or data left (the metron user stays)"
echo "$passed passed, 0 failed"
