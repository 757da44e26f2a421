#!/usr/bin/env bash
# Measures every target of BENCHMARKS.md on this machine, on loopback: POST
# throughput against the minimal reference server, fresh and with a million
# pours stored, fan-out to 1,000 to 10,000 subscribers, memory per idle
# subscriber, subscriber churn, and a journal of 1,000,000 pours: its reads,
# time ranges among them, its CSV export while pours go on, and its replay.
# Takes about fifteen minutes.
#
#   scripts/bench.sh            figures in bench-results/ (summary.txt, results.jsonl)
#   OUT=/tmp/run scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
results=$out/results.jsonl
summary=$out/summary.txt
: >"$results"
: >"$summary"
go build -o "$out/altair" .
go build -o "$out/loadtest" ./loadtest
port=18500
minport=18501
fullport=18502
pids=()

say() { echo "$*" | tee -a "$summary"; }

# start_altair PORT ENV...: a fresh server on PORT; waits until it answers.
start_altair() {
  local p=$1
  shift
  env "$@" HOST=127.0.0.1 PORT="$p" LOG_FORMAT=json "$out/altair" 2>>"$out/altair.log" >/dev/null &
  pids+=($!)
  await_port "$p"
}

start_minimal() {
  "$out/loadtest" -minimal 127.0.0.1:$minport 2>/dev/null &
  pids+=($!)
  await_port $minport
}

await_port() {
  for _ in $(seq 600); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# stop: stops the server started last.
stop() {
  local pid=${pids[-1]}
  unset 'pids[-1]'
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_all() { while [ ${#pids[@]} -gt 0 ]; do stop; done; }
trap stop_all EXIT

# measure LABEL PORT ARGS...: one load run, summarised and kept as JSON.
measure() {
  local label=$1 p=$2
  shift 2
  say ""
  "$out/loadtest" -addr 127.0.0.1:"$p" -label "$label" -json "$results" "$@" | tee -a "$summary" || true
}

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ)"

say "" && say "### POST throughput, 64 posters, 10 s each, three rounds; the full server holds 1,000,000 pours with pourIds"
start_altair $fullport DATA_FILE=:memory:
measure "altair seed memory" $fullport -seed 1000000 -pourids -posters 64
for round in 1 2 3; do
  start_altair $port DATA_FILE=:memory:
  measure "altair post memory round=$round" $port -posters 64 -duration 10s
  stop
  start_minimal
  measure "minimal post round=$round" $minport -posters 64 -duration 10s
  stop
  measure "altair post full round=$round" $fullport -posters 64 -duration 10s
  rm -f "$out/post.jsonl"*
  start_altair $port DATA_FILE="$out/post.jsonl"
  measure "altair post journal round=$round" $port -posters 64 -duration 10s
  stop
done
stop

say "" && say "### Fan-out: every subscriber gets every pour, in order"
for run in "1000 20" "2000 20" "5000 4" "10000 2"; do
  set -- $run
  start_altair $port DATA_FILE=:memory:
  measure "altair subs=$1 rate=$2" $port -subs "$1" -rate "$2" -duration 20s
  stop
  start_minimal
  measure "minimal subs=$1 rate=$2" $minport -subs "$1" -rate "$2" -duration 20s
  stop
done

say "" && say "### Churn: 10,000 subscribe/unsubscribe cycles, three times"
start_altair $port DATA_FILE=:memory:
measure "altair churn" $port -churn 10000
stop

# rss PORT: the server's resident memory in MiB, from /debug/stats.
rss() { curl -s "http://127.0.0.1:$1/debug/stats" | sed -n 's/.*"rssBytes":\([0-9]*\).*/\1/p' | awk '{printf "%.0f", $1/1048576}'; }

# export_csv PORT: every pour as CSV while 8 posters keep pouring, with the
# server's RSS before, at most during, and after.
export_csv() {
  local before peak=0 now took rows poster
  before=$(rss "$1")
  "$out/loadtest" -addr 127.0.0.1:"$1" -posters 8 -duration 15s >/dev/null &
  poster=$!
  sleep 1
  curl -sS -o "$out/export.csv" -w '%{time_total}' "http://127.0.0.1:$1/api/beers.csv" >"$out/export.time" &
  local fetch=$!
  while kill -0 $fetch 2>/dev/null; do
    now=$(rss "$1") && [ "${now:-0}" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  wait $fetch
  now=$(rss "$1")
  took=$(cat "$out/export.time")
  rows=$(($(wc -l <"$out/export.csv") - 1))
  wait $poster
  say "CSV export of $rows pours while 8 posters pour: ${took} s; server RSS ${before} MiB before, at most ${peak} MiB during, ${now} MiB just after"
}

say "" && say "### 1,000,000 stored pours in a journal"
rm -f "$out/big.jsonl"*
start_altair $port DATA_FILE="$out/big.jsonl"
measure "altair seed" $port -seed 1000000 -pourids -posters 64
measure "altair reads" $port -read 2000
stop
start_altair $port DATA_FILE="$out/big.jsonl"
say "" && say "replay at start-up: $(grep '"replayed the journal"' "$out/altair.log" | tail -1)"
measure "altair after replay" $port -read 2000
say ""
export_csv $port
stop

"$out/loadtest" -plot "$results" >"$out/latency.svg"
say "" && say "figures: $summary, $results; plot: $out/latency.svg"
