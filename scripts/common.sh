# Sourced by the other scripts: the server's address and the token to send.
#   ADDR   host:port of the server (default localhost:8338)
#   TOKEN  a tap's or the admin's token, sent as a bearer token when set
ADDR=${ADDR:-localhost:8338}
AUTH=()
if [ -n "${TOKEN:-}" ]; then
  AUTH=(-H "Authorization: Bearer $TOKEN")
fi
