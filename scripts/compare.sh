#!/usr/bin/env bash
# Measures this checkout's server against another commit's, in one run and
# in alternating rounds, so that a noisy machine affects both alike: POST
# throughput (also with a keg on every tap, which the other commit may not
# know), and fan-out delivery at 2,000 and 10,000 subscribers with the idle
# subscriber's memory. About ten minutes.
#
#   scripts/compare.sh BASE      BASE is a commit, like main~5 or 21f960f
#   OUT=/tmp/run scripts/compare.sh BASE
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/compare.sh BASE-COMMIT}
out=${OUT:-bench-results/compare}
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary=$out/summary.txt
results=$out/results.jsonl
: >"$summary"
: >"$results"
go build -o "$out/altair" .
go build -o "$out/loadtest" ./loadtest
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git archive "$base" | tar -x -C "$tree"
(cd "$tree" && go build -o "$out/base" .)
port=18600
pid=

say() { echo "$*" | tee -a "$summary"; }

# start BIN ENV...: a fresh server on port; waits until it answers.
start() {
  local bin=$1
  shift
  env "$@" HOST=127.0.0.1 PORT=$port LOG_FORMAT=json DATA_FILE=:memory: "$out/$bin" 2>>"$out/server.log" >/dev/null &
  pid=$!
  for _ in $(seq 600); do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "nothing listens on port $port" >&2
  exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap 'stop; rm -rf "$tree"' EXIT

# measure LABEL ARGS...: one load run, summarised and kept as JSON.
measure() {
  local label=$1
  shift
  say ""
  "$out/loadtest" -addr 127.0.0.1:$port -label "$label" -json "$results" "$@" | tee -a "$summary" || true
}

# kegs: a 2,000 l keg on each of the 20 taps the load tool pours on.
kegs() {
  for tap in $(seq 20); do
    curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/api/kegs" \
      -d "{\"tapId\":$tap,\"beverage\":{\"name\":\"Lager $tap\"},\"size\":2000000}"
  done
}

say "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ); base $(git rev-parse --short "$base"), this $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
say "" && say "### POST throughput, :memory:, 64 posters, 10 s, three alternating rounds"
for round in 1 2 3; do
  start base
  measure "base post round=$round" -posters 64 -duration 10s
  stop
  start altair
  measure "this post round=$round" -posters 64 -duration 10s
  stop
  start altair
  kegs
  measure "this post kegs round=$round" -posters 64 -duration 10s
  stop
done

say "" && say "### Fan-out, every subscriber gets every pour, two alternating rounds"
for run in "2000 20" "10000 2"; do
  set -- $run
  for round in 1 2; do
    start base
    measure "base subs=$1 rate=$2 round=$round" -subs "$1" -rate "$2" -duration 20s
    stop
    start altair
    measure "this subs=$1 rate=$2 round=$round" -subs "$1" -rate "$2" -duration 20s
    stop
  done
done
say "" && say "figures: $summary, $results"
