#!/usr/bin/env bash
# Fails when a file includes a header its layer may not use (STYLE.md 9.1):
#   engine/base <- engine <- query <- alert <- {server, sql} <- tools
#                  engine <- ingest <- server
# query/ and ingest/ never include each other, nor server/ and sql/; only
# server/ (and tools/) see sockets, only sql/ SQL; alert/ sees neither
# (sql/ uses its types); each third-party library is confined to the
# modules that own it.
set -u
cd "$(dirname "$0")/.."

layer_of() {  # path -> module name
  case "$1" in
    engine/base/*) echo base ;; engine/*) echo engine ;; query/*) echo query ;;
    alert/*) echo alert ;; ingest/*) echo ingest ;; server/*) echo server ;;
    sql/*) echo sql ;; tools/*) echo tools ;; *) echo other ;;
  esac
}
allowed() {   # module -> modules it may include
  case "$1" in
    base) echo "base" ;; engine) echo "base engine" ;; query) echo "base engine query" ;;
    alert) echo "base engine query alert" ;;
    ingest) echo "base engine ingest" ;; sql) echo "base engine query alert sql" ;;
    server) echo "base engine query alert ingest server" ;;
    tools) echo "base engine query alert ingest server sql tools" ;;
  esac
}
third_party_ok() {  # module header -> 0 if the module may include the system header
  case "$2" in
    lmdb.h|zstd.h) [ "$1" = engine ] ;;
    uv.h) [ "$1" = server ] || [ "$1" = tools ] ;;
    http_parser.h) [ "$1" = server ] ;;
    libpq-fe.h) [ "$1" = sql ] ;;
    snappy-c.h|protobuf-c/protobuf-c.h) [ "$1" = ingest ] ;;
    systemd/sd-daemon.h|ini.h) [ "$1" = tools ] ;;
    # libcurl: alert delivery, and the HTTP clients of the binaries (metron --url, metron-pgstat)
    curl/curl.h) [ "$1" = alert ] || [ "$1" = tools ] ;;
    # OpenSSL: webhook signatures (alert), token hashes (ingest), Basic auth base64 (server),
    # --version
    openssl/*) [ "$1" = alert ] || [ "$1" = ingest ] || [ "$1" = server ] || [ "$1" = tools ] ;;
    # zlib: gzip bodies (server), gzip exports (tools)
    zlib.h) [ "$1" = server ] || [ "$1" = tools ] ;;
    *) return 0 ;;
  esac
}

declare -A home
for h in $(git ls-files --cached --others --exclude-standard -- '*.h'); do
  home[$(basename "$h")]=$(layer_of "$h")
done

bad=0
for f in $(git ls-files --cached --others --exclude-standard -- engine ingest query alert server sql tools | grep -E '\.[ch]$'); do
  m=$(layer_of "$f")
  while IFS= read -r inc; do
    name=$(sed -E 's/^#include *[<"]([^">]+)[">].*/\1/' <<<"$inc")
    if [[ "$inc" == *'"'* ]]; then
      target=${home[$(basename "$name")]:-}
      [ -z "$target" ] && continue
      if ! grep -qw "$target" <<<"$(allowed "$m")"; then
        echo "layers: $f ($m) includes $name ($target): arrows must point down"
        bad=1
      elif [ "$target" = alert ] && [ "$m" != alert ] && [ "$(basename "$name")" != mt_alert.h ]; then
        echo "layers: $f ($m) includes $name: outside alert/, include its contract, mt_alert.h"
        bad=1
      fi
    elif ! third_party_ok "$m" "$name"; then
      echo "layers: $f ($m) includes <$name>, which belongs to another module"
      bad=1
    fi
  done < <(grep -E '^#include' "$f")
done
[ $bad -eq 0 ] && echo "layers: all includes point down"
exit $bad
