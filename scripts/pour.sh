#!/usr/bin/env bash
# Pour a beer: pour.sh TAP VOLUME [POUR_ID]
set -euo pipefail
. "$(dirname "$0")/common.sh"
if [ $# -lt 2 ]; then
  echo "usage: $0 TAP VOLUME [POUR_ID]" >&2
  exit 2
fi
body="{\"tapId\":$1,\"volume\":$2${3:+,\"pourId\":\"$3\"}}"
curl -sS "${TLS[@]}" "${AUTH[@]}" -H 'Content-Type: application/json' -d "$body" "$BASE/api/beers"
