#!/usr/bin/env bash
# Print a .env for docker compose with fresh random tokens for the admin,
# the three simulated taps and a screen:  scripts/tokens.sh > .env
# Open the dashboard as that screen: http://localhost:8338/#token=<SCREEN_TOKEN>
set -euo pipefail
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin=$(token) t1=$(token) t2=$(token) t3=$(token) screen=$(token)
cat <<ENV
ADMIN_TOKEN=$admin
TAP1_TOKEN=$t1
TAP2_TOKEN=$t2
TAP3_TOKEN=$t3
TAP_TOKENS=1:$t1,2:$t2,3:$t3
SCREEN_TOKEN=$screen
SCREEN_TOKENS=bar-tv:$screen
ENV
