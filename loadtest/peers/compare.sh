#!/usr/bin/env bash
# Halley against an earlier Halley, interleaved on this machine: the server built from
# this tree beside the server built from BASE (a git revision), each measured by this
# tree's halley-load, one at a time on the same ports, for ROUNDS rounds (default 5),
# the two taking turns to go first. Every measurement starts a fresh server.
#
# Scenarios, as in run.sh: new-connection polls and keep-alive polls (64 connections,
# 5 s), fan-out of 10 messages to 10,000 streams, publish latency under a flood of
# 256 new-connection polls, and memory per held stream (10,000).
#
#   loadtest/peers/compare.sh BASE [ROUNDS]
#
# The medians, their spread and each round's ratio go into the comparison section of
# docs/benchmarks.md (summarise_compare.py), replacing the one there.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BASE=${1:?usage: compare.sh BASE [ROUNDS]}
ROUNDS=${2:-5}
RUN=$(mktemp -d /tmp/halley-compare.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

cargo build --release --quiet -p halley -p halley-load
BASE_REV=$(git rev-parse --short "$BASE")
NEW_REV=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo "+changes")
git worktree add --quiet --detach "$RUN/base" "$BASE"
(cd "$RUN/base" && CARGO_TARGET_DIR="$RUN/base-target" cargo build --release --quiet -p halley)
declare -A BINARY=([base]="$RUN/base-target/release/halley" [new]="$ROOT/target/release/halley")

SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  git worktree remove --force "$RUN/base" 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # port: until something accepts connections there (10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}
start() { # which: a fresh server of that build, on its defaults but the addresses
  "${BINARY[$1]}" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 --log-level warn &
  SERVER=$!
  wait_port 8080; wait_port 8081
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; sleep 1; }
measure() { # which round scenario args...: one measurement on a fresh server
  local which=$1 round=$2; shift 2
  echo "$which: $1 (round $round/$ROUNDS)" >&2
  start "$which"
  "$L" "$@" --json --label "$which" --server-pid "$SERVER" >>"$RESULTS" || echo "$which: $1 failed" >&2
  stop
}

RATE=(--concurrency 64 --duration 5s --procs 2 --sources 32)
FAN=(--count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 500)
FLOOD=(--concurrency 256 --duration 6s --rate 100 --procs 2 --sources 32)
HOLD=(--count 10000 --channels 10 --procs 2 --settle 2s --ramp 500)
SUB='http://127.0.0.1:8080/sub/{channel}'
for round in $(seq "$ROUNDS"); do
  order=(base new)
  if [ $((round % 2)) -eq 0 ]; then order=(new base); fi
  for which in "${order[@]}"; do
    measure "$which" "$round" conn-rate --url "$SUB?t=poll" "${RATE[@]}"
    measure "$which" "$round" conn-rate --url "$SUB?t=poll" "${RATE[@]}" --keepalive
    measure "$which" "$round" fanout --url "$SUB?t=stream" --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}"
    measure "$which" "$round" publish-under-flood --flood-url "$SUB?t=poll" --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FLOOD[@]}"
    measure "$which" "$round" hold --url "$SUB?t=stream" "${HOLD[@]}"
  done
done

python3 loadtest/peers/summarise_compare.py "$RESULTS" "$ROUNDS" "$BASE_REV" "$NEW_REV" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote the comparison section of docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
