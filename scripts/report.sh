#!/usr/bin/env bash
# Show the report: report.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"
curl -sS "${TLS[@]}" "$BASE/api/report"
