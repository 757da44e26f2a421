#!/usr/bin/env bash
# Check every route of a running server but /metrics (.ci/run checks it with
# promtool): smoke.sh
# Starts nothing; exits non-zero if any answer is wrong. With auth on,
# set TOKEN to the admin token.
set -euo pipefail
. "$(dirname "$0")/common.sh"
base="$BASE"
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# contains TEXT: the last answer must contain TEXT.
contains() {
  if grep -qF -- "$1" "$out"; then
    echo "ok   ... has $1"
  else
    echo "FAIL the answer lacks $1: $(cat "$out")"
    failed=1
  fi
}

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

# Kegs: one goes on tap 1 partly poured, is read, listed and weighed, is
# charged a pour, and comes off again, so that a second run finds tap 1 as
# the first did.
expect 201 POST /api/kegs '{"tapId":1,"beverage":{"name":"Smoke Lager","brewery":"Altair","style":"lager","abv":4.8},"size":19550,"remaining":19000}'
keg=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$out")
keg=${keg:-1}
expect 200 GET "/api/kegs/$keg"
expect 200 GET '/api/kegs?tapId=1&onTap=true&page=1&page_size=10'
contains "\"id\":$keg,"
expect 200 PATCH "/api/kegs/$keg" '{"remaining":15000,"lowAt":20}'
contains '"remaining":15000,'
expect 201 POST /api/beers '{"tapId":1,"volume":500}'
contains "\"kegId\":$keg}"
expect 200 GET "/api/beers?kegId=$keg"
contains '"total":1}'
expect 200 GET "/api/beers.csv?kegId=$keg"
contains ",$keg,Smoke Lager"
expect 200 GET "/api/kegs/$keg"
contains '"remaining":14500,'
expect 200 POST "/api/kegs/$keg/end"
contains '"endedAt":'
expect 409 POST "/api/kegs/$keg/end"
expect 409 PATCH "/api/kegs/$keg" '{"lowAt":10}'
expect 404 GET /api/kegs/999999999
expect 404 PATCH /api/kegs/999999999 '{"lowAt":10}'
expect 400 GET /api/kegs/abc
expect 400 POST /api/kegs '{"tapId":1,"beverage":"Smoke Lager","size":20000}'
expect 400 GET '/api/kegs?onTap=yes'
expect 400 GET '/api/beers?kegId=0'
expect 422 POST /api/kegs '{"tapId":1,"beverage":{"name":"Smoke Lager"},"size":10,"lowAt":200}'
contains 'size 10 ml is out of range'
contains 'lowAt 200 is out of range'
expect 200 GET /api/report
seq=$(sed -n 's/.*"seq":\([0-9]*\)}.*/\1/p' "$out")
seq=${seq:-0}
expect 400 GET "/sockets/beers?after=$((seq + 1000000))"

if [ -n "${TOKEN:-}" ]; then
  # With auth on, writes and subscriptions without a token are refused.
  saved=("${AUTH[@]}")
  AUTH=()
  expect 401 POST /api/beers '{"tapId":1,"volume":500}'
  expect 401 DELETE /api/beers/1
  expect 401 GET /sockets/beers
  expect 401 POST /api/kegs '{"tapId":1,"beverage":{"name":"Smoke Lager"},"size":20000}'
  expect 401 PATCH /api/kegs/1 '{"lowAt":10}'
  expect 401 POST /api/kegs/1/end
  expect 200 GET /api/kegs
  expect 200 GET /api/report
  AUTH=("${saved[@]}")
fi

# handshake QUERY: a WebSocket handshake must answer 101; curl then waits
# until --max-time, keeping the frames it got in $out.
handshake() {
  local ws
  : >"$out"
  ws=$(curl -sS -o "$out" -w '%{http_code}' --max-time 2 "${TLS[@]}" "${AUTH[@]}" \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$base/sockets/beers$1" 2>/dev/null || true)
  if [ "$ws" = 101 ]; then echo "ok   101 GET /sockets/beers$1 (WebSocket)"; else echo "FAIL WebSocket handshake $1: got $ws, want 101"; failed=1; fi
}
handshake ''
# Resuming just before the last change: that change comes first, no report.
handshake "?after=$((seq - 1))"
if head -c 64 "$out" | grep -aqF "\"seq\":$seq,"; then
  echo "ok   ... change $seq first"
else
  echo "FAIL resuming after $((seq - 1)) did not start with change $seq: $(head -c 200 "$out" | tr -d '\000')"
  failed=1
fi

exit $failed
