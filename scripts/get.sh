#!/usr/bin/env bash
# Read one pour: get.sh ID
set -euo pipefail
. "$(dirname "$0")/common.sh"
curl -sS "${TLS[@]}" "$BASE/api/beers/${1:?usage: $0 ID}"
