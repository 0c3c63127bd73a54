#!/usr/bin/env bash
# Several servers on one Redis (issue 18): Halley's nodes beside nginx with Nchan on
# the same Redis (`nchan_redis_pass`, nginx-redis.conf), measured by the same
# `halley-load` in one run, for ROUNDS rounds (default 3), the order of the servers
# turning each round:
#
# - fan-out of 10 messages to 10,000 SSE subscribers of one channel: one Halley in
#   memory (the single server of the goal), one Halley on Redis, three Halley nodes on
#   Redis with the subscribers spread over them and the messages published on the
#   first, and Nchan on Redis. Delivery p50/p99, loss, duplicates, order.
# - publish throughput and latency from 16 closed-loop publishers over 16 channels,
#   through Redis: Halley (one node publishing, three listening) and Nchan.
# - held idle SSE subscribers: 95,000 over five Halley nodes on one Redis (19,000
#   each, the descriptor limit of a process here), beside 19,000 on one node.
#
# Redis is started afresh (no persistence) on 127.0.0.1:6390 for each measurement.
# The nodes run with --header-timeout 10s: with five nodes and five load processes on
# two cores, a client may take longer than the 1 s default between connecting and
# sending its request (seen: 8,566 of 95,000 closed by it), which measures the
# machine, not the servers.
# Installs nginx and Nchan from Debian's packages when missing (as root). Writes the
# medians, spreads and the goals to the Redis section of docs/benchmarks.md
# (summarise_redis.py).
#
#   loadtest/peers/redis.sh [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
RUN=$(mktemp -d /tmp/halley-redis.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

# shellcheck source=servers.sh
source loadtest/peers/servers.sh
ensure_builds
REV=$(measured_rev)
refuse_taken_ports 6390 8080 8081 8082 8083 8084 8085 8086 8087 8088 8089 8090 8091
REDIS=; NODES=(); NODE_PIDS=
trap 'stop_nodes; stop_nginx; stop_redis' EXIT

start_redis() {
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --maxclients 1000 --loglevel warning &
  REDIS=$!
  wait_port 6390
}
stop_redis() { if [ -n "$REDIS" ]; then kill "$REDIS" 2>/dev/null || true; wait "$REDIS" 2>/dev/null || true; fi; REDIS=; }
start_nodes() { # count extra-flags...: Halley nodes, node i on 8080+2i and 8081+2i
  local count=$1 i; shift
  for ((i = 0; i < count; i++)); do
    "$ROOT/target/release/halley" --listen "127.0.0.1:$((8080 + 2 * i))" \
      --admin-listen "127.0.0.1:$((8081 + 2 * i))" --log-level warn --header-timeout 10s "$@" &
    NODES+=($!)
  done
  for ((i = 0; i < count; i++)); do wait_port $((8080 + 2 * i)); wait_port $((8081 + 2 * i)); done
  NODE_PIDS=$(IFS=,; echo "${NODES[*]}")
}
stop_nodes() {
  local pid
  for pid in "${NODES[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  NODES=(); NODE_PIDS=
}
subscriber_urls() { # count: the SSE URL of each of the first count nodes, comma-separated
  local i urls=()
  for ((i = 0; i < $1; i++)); do urls+=("http://127.0.0.1:$((8080 + 2 * i))/sub/{channel}?t=sse"); done
  (IFS=,; echo "${urls[*]}")
}
fresh() { # who: stops everything, starts Redis and the servers `who` needs
  stop_nodes; stop_nginx; stop_redis
  case $1 in
    halley-memory) start_nodes 1 ;;
    halley-redis) start_redis; start_nodes 1 --redis redis://127.0.0.1:6390 ;;
    halley-3-nodes) start_redis; start_nodes 3 --redis redis://127.0.0.1:6390 ;;
    halley-5-nodes) start_redis; start_nodes 5 --redis redis://127.0.0.1:6390 ;;
    nchan-redis) start_redis; start_nginx loadtest/peers/nginx-redis.conf -- 8090 8091 ;;
  esac
}

# shellcheck source=rounds.sh
source loadtest/peers/rounds.sh

FAN=(--count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 2000)
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-memory halley-redis halley-3-nodes nchan-redis); do
    fresh "$who"
    case $who in
      halley-memory | halley-redis)
        measure "$who" "$NODE_PIDS" "$round" fanout --url "$(subscriber_urls 1)" \
          --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}" ;;
      halley-3-nodes)
        measure "$who" "$NODE_PIDS" "$round" fanout --url "$(subscriber_urls 3)" \
          --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}" ;;
      nchan-redis)
        measure "$who" "$NGINX_PIDS" "$round" fanout --url 'http://127.0.0.1:8090/sse/{channel}' \
          --header 'Accept: text/event-stream' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FAN[@]}" ;;
    esac
  done
done

RATE=(--publishers 16 --channels 16 --payload 200 --duration 5s)
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-3-nodes nchan-redis); do
    fresh "$who"
    case $who in
      halley-3-nodes) measure "$who" "$NODE_PIDS" "$round" publish-rate --url 'http://127.0.0.1:8081/pub/{channel}' "${RATE[@]}" ;;
      nchan-redis) measure "$who" "$NGINX_PIDS" "$round" publish-rate --url 'http://127.0.0.1:8091/pub/{channel}' "${RATE[@]}" ;;
    esac
  done
done

for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-5-nodes halley-redis); do
    fresh "$who"
    case $who in
      halley-5-nodes) measure "$who" "$NODE_PIDS" "$round" hold --url "$(subscriber_urls 5)" \
        --count 95000 --channels 100 --procs 5 --settle 3s --ramp 5000 ;;
      halley-redis) measure "$who" "$NODE_PIDS" "$round" hold --url "$(subscriber_urls 1)" \
        --count 19000 --channels 100 --procs 1 --settle 3s --ramp 5000 ;;
    esac
  done
done

stop_nodes; stop_nginx; stop_redis
python3 loadtest/peers/summarise_redis.py "$RESULTS" "$ROUNDS" "$REV" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote the Redis section of docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
