#!/usr/bin/env bash
# Halley's durable log beside Redis on this machine, in one run: publish throughput and
# latency under each --fsync mode (Redis XADD with appendfsync always, everysec and no
# as the anchors), with 16 closed-loop publishers over 16 channels and over one channel,
# and catch-up throughput from the start of a 100,000-event channel. Each measurement
# runs REPEAT times (default 3), interleaved; the medians go into the storage section
# of docs/benchmarks.md.
#
#   loadtest/peers/storage.sh [REPEAT]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPEAT=${1:-3}
RUN=$(mktemp -d /tmp/halley-storage.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

command -v redis-server >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
cargo build --release --quiet -p halley -p halley-load

PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$RUN"/data-*; }
trap cleanup EXIT

wait_port() { # port: until something accepts connections there (10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# Redis: one server per appendfsync policy, append-only file on, snapshots off.
declare -A REDIS_PORT=([always]=6391 [everysec]=6392 [no]=6393)
for policy in always everysec no; do
  mkdir -p "$RUN/data-redis-$policy"
  redis-server --port "${REDIS_PORT[$policy]}" --bind 127.0.0.1 --dir "$RUN/data-redis-$policy" \
    --appendonly yes --appendfsync "$policy" --save '' --logfile "$RUN/redis-$policy.log" &
  PIDS+=($!)
done
# Halley: one per --fsync mode, two loops, streams long enough to read a whole channel.
declare -A HALLEY_ADMIN=([always]=18301 [batch]=18303 [never]=18305)
for mode in always batch never; do
  port=${HALLEY_ADMIN[$mode]}
  target/release/halley --listen 127.0.0.1:$((port - 1)) --admin-listen 127.0.0.1:$port \
    --data-dir "$RUN/data-halley-$mode" --fsync "$mode" --stream-max-bytes 1GiB \
    --log-level warn 2>"$RUN/halley-$mode.log" &
  PIDS+=($!)
done
for port in 6391 6392 6393 18301 18303 18305; do wait_port $port; done

for run in $(seq "$REPEAT"); do
  for channels in 16 1; do
    for mode in always batch never; do
      $L publish-rate --url "http://127.0.0.1:${HALLEY_ADMIN[$mode]}/pub/{channel}" --channels $channels \
        --duration 5s --json --label "halley-$mode-$channels" >>"$RESULTS"
    done
    for policy in always everysec no; do
      $L publish-rate --url "redis://127.0.0.1:${REDIS_PORT[$policy]}" --channels $channels \
        --duration 5s --json --label "redis-$policy-$channels" >>"$RESULTS"
    done
  done
  $L catchup --url "http://127.0.0.1:18305/pub/{channel}" \
    --sub-url "http://127.0.0.1:18304/sub/{channel}?t=stream&since=0" \
    --channel "catchup-$run" --events 100000 --json --label halley >>"$RESULTS"
  $L catchup --url "redis://127.0.0.1:6393" --channel "catchup-$run" --events 100000 \
    --json --label redis >>"$RESULTS"
done

python3 loadtest/peers/summarise_storage.py "$RESULTS" "$REPEAT" docs/benchmarks.md
echo "results: $RESULTS"
