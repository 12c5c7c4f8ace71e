#!/usr/bin/env bash
# Installs the Debian packages Metron needs, only those that are missing.
# Idempotent and quiet when everything is present. Needs root (or sudo).
set -euo pipefail

packages=(
  # build
  gcc make cmake pkg-config clang clang-format libclang-rt-14-dev
  # libraries Metron links
  liblmdb-dev libzstd-dev libuv1-dev libpq-dev libxxhash-dev zlib1g-dev libinih-dev
  libhttp-parser-dev libssl-dev libcurl4-openssl-dev
  # Prometheus remote write in: snappy blocks, protobuf-c (protoc-c generates the C at build)
  libsnappy-dev libprotobuf-c-dev protobuf-c-compiler
  # metrond's readiness under systemd (sd_notify)
  libsystemd-dev
  # packaging: man pages from --help, the .deb (cpack -G DEB runs dpkg-deb; dpkg-shlibdeps
  # finds the library packages), its scripts' adduser and deb-systemd-helper
  help2man dpkg-dev adduser init-system-helpers
  # tests, and the README's examples
  libcriterion-dev postgresql postgresql-contrib python3 python3-influxdb curl netcat-openbsd
  # the email channel's test: a real SMTP server (STARTTLS too)
  python3-aiosmtpd
  # the Grafana Prometheus test reads the provisioning YAML
  python3-yaml
  # the TLS recipe (docs/operations.md) and its test: nginx in front, openssl makes the certs
  nginx openssl
  # Prometheus export: promtool checks /federate and export's text, a real Prometheus scrapes
  prometheus
  # routing by tenant (deploy/haproxy, docs/cluster.md): HAProxy 2.6, socat for its runtime API
  haproxy socat
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (postgresql, nginx, prometheus, haproxy) must not start it: the
# tests run their own on free ports, and a system nginx would take port 80. invoke-rc.d
# asks policy-rc.d; exit 101 means "not now". One already there is kept.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2
