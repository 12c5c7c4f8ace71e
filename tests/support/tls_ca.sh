#!/usr/bin/env bash
# Throwaway certificates for the TLS tests, made with the openssl CLI:
#
#   tls_ca.sh DIR   writes into DIR (created if missing):
#     ca.pem                 a test CA (self-signed, 1 day)
#     server.pem server.key  a server certificate signed by it, for
#                            DNS:localhost and IP:127.0.0.1 (what verify-full
#                            and curl check the host name against)
#     other-ca.pem           a second CA that signed nothing here: trusting it
#                            alone must fail verification
#
# Keys are EC P-256 (fast to make), the key files mode 0600.
set -euo pipefail
dir=${1:?usage: tls_ca.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
ossl() { openssl "$@" 2>>openssl.log || { cat openssl.log >&2; exit 1; }; }

ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=Metron test CA" -keyout ca.key -out ca.pem
ossl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=Metron other CA" -keyout other-ca.key -out other-ca.pem
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile server.ext -out server.pem
chmod 644 ca.pem other-ca.pem server.pem
rm -f server.csr server.ext ca.srl
