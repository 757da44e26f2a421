#!/usr/bin/env bash
# Make a local certificate authority and a server certificate it signs, for
# trying Altair over TLS:
#   scripts/certs.sh [DIR [NAME...]]
# DIR (default certs) gets ca.pem, ca-key.pem, server.pem and server-key.pem.
# The server's certificate names localhost, server (the compose service),
# 127.0.0.1, ::1 and every NAME, such as the bar's own host name.
set -euo pipefail
dir=${1:-certs}
shift || true
mkdir -p "$dir"
san="DNS:localhost,DNS:server,IP:127.0.0.1,IP:::1"
for name in "$@"; do san="$san,DNS:$name"; done
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -days 3650 -subj "/CN=Altair local CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
openssl req "${ec[@]}" -subj "/CN=altair" -keyout "$dir/server-key.pem" -out "$dir/server.csr" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial -days 825 \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") -out "$dir/server.pem" 2>/dev/null
rm -f "$dir/server.csr" "$dir/ca.srl"
chmod 600 "$dir/ca-key.pem" "$dir/server-key.pem"
echo "$dir: ca.pem (trust it on taps: TLS_CA_FILE), server.pem and server-key.pem (TLS_CERT_FILE, TLS_KEY_FILE), for $san"
