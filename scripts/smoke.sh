#!/usr/bin/env bash
# Check every route of a running server but /metrics (.ci/run checks it with
# promtool): smoke.sh
# Starts nothing; exits non-zero on the first wrong status. With auth on,
# set TOKEN to the admin token.
set -euo pipefail
. "$(dirname "$0")/common.sh"
base="$BASE"
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# expect STATUS METHOD PATH [BODY]: the answer must have STATUS.
expect() {
  local want=$1 method=$2 path=$3 body=${4:-}
  local args=(-sS -o "$out" -w '%{http_code}' -X "$method" "${TLS[@]}" "${AUTH[@]}")
  if [ -n "$body" ]; then args+=(-d "$body"); fi
  local got
  : >"$out"
  got=$(curl "${args[@]}" "$base$path") || got="curl failed"
  if [ "$got" = "$want" ]; then
    echo "ok   $want $method $path"
  else
    echo "FAIL $method $path: got $got, want $want: $(cat "$out" 2>/dev/null)"
    failed=1
  fi
}

expect 200 GET /healthz
expect 200 GET /
expect 200 GET /app.js
expect 200 GET /app.css
expect 201 POST /api/beers '{"tapId":1,"volume":500}'
id=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$out")
id=${id:-1}
expect 200 GET "/api/beers/$id"
expect 200 GET '/api/beers?page=1&page_size=10&type=pint&tapId=1'
expect 200 GET '/api/beers?from=2026-01-01T00:00:00Z&to=2999-01-01T00:00:00Z'
expect 200 GET '/api/beers.csv?tapId=1'
expect 200 GET /api/openapi.json
expect 200 GET /api/report
expect 200 GET /api/taps
expect 200 GET /debug/stats
expect 204 DELETE "/api/beers/$id"
expect 404 GET "/api/beers/$id"
expect 404 DELETE "/api/beers/$id"
expect 400 GET /api/beers/abc
expect 400 POST /api/beers '{"tapId":1'
expect 422 POST /api/beers '{"tapId":1,"volume":50}'
expect 400 GET '/api/beers?type=jug'
expect 400 GET '/api/beers?from=yesterday'
expect 400 GET '/api/report?x=1'
expect 405 PUT /api/report
expect 426 GET /sockets/beers

if [ -n "${TOKEN:-}" ]; then
  # With auth on, writes and subscriptions without a token are refused.
  saved=("${AUTH[@]}")
  AUTH=()
  expect 401 POST /api/beers '{"tapId":1,"volume":500}'
  expect 401 DELETE /api/beers/1
  expect 401 GET /sockets/beers
  expect 200 GET /api/report
  AUTH=("${saved[@]}")
fi

# A WebSocket handshake answers 101; curl then waits until --max-time.
ws=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "${TLS[@]}" "${AUTH[@]}" \
  -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
  -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$base/sockets/beers" 2>/dev/null || true)
if [ "$ws" = 101 ]; then echo "ok   101 GET /sockets/beers (WebSocket)"; else echo "FAIL WebSocket handshake: got $ws, want 101"; failed=1; fi

exit $failed
