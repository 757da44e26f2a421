#!/usr/bin/env bash
# Delete one pour: delete.sh ID (prints the status, 204 deleted, after the JSON error of any other)
set -euo pipefail
. "$(dirname "$0")/common.sh"
curl -sS "${TLS[@]}" "${AUTH[@]}" -X DELETE -w '%{http_code}\n' "$BASE/api/beers/${1:?usage: $0 ID}"
