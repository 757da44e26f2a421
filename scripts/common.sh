# Sourced by the other scripts: the server to talk to and the token to send.
#   ADDR    host:port of a plain HTTP server (default localhost:8338)
#   URL     the server's base URL instead, such as https://bar.local:8338
#   CACERT  a CA certificate to trust for https (see scripts/certs.sh)
#   TOKEN   a tap's or the admin's token, sent as a bearer token when set
ADDR=${ADDR:-localhost:8338}
BASE=${URL:-http://$ADDR}
AUTH=()
if [ -n "${TOKEN:-}" ]; then
  AUTH=(-H "Authorization: Bearer $TOKEN")
fi
TLS=()
if [ -n "${CACERT:-}" ]; then
  TLS=(--cacert "$CACERT")
fi
