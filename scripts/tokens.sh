#!/usr/bin/env bash
# Print a .env for docker compose with fresh random tokens for the admin
# and the three simulated taps:  scripts/tokens.sh > .env
set -euo pipefail
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin=$(token) t1=$(token) t2=$(token) t3=$(token)
cat <<ENV
ADMIN_TOKEN=$admin
TAP1_TOKEN=$t1
TAP2_TOKEN=$t2
TAP3_TOKEN=$t3
TAP_TOKENS=1:$t1,2:$t2,3:$t3
ENV
