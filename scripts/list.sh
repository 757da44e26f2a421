#!/usr/bin/env bash
# List pours: list.sh [QUERY], for example list.sh 'type=pint&tapId=2&page=1&page_size=10'
set -euo pipefail
. "$(dirname "$0")/common.sh"
curl -sS "${TLS[@]}" "$BASE/api/beers${1:+?$1}"
