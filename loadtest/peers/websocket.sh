#!/usr/bin/env bash
# WebSocket subscribers (issue 16): Halley beside nginx with Nchan's `nchan_subscriber
# websocket`, measured by the same `halley-load` in one run, for ROUNDS rounds (default
# 3), the order of the servers turning each round:
#
# - memory per held idle subscriber: 10,000 WebSockets, and 10,000 SSE streams for
#   comparison, each on a server started afresh (a server that has held connections
#   before reuses the memory it freed);
# - fan-out of 10 messages to 10,000 WebSocket subscribers of one channel, beside
#   Halley's own SSE fan-out of the same run: delivery p50/p99, loss, duplicates,
#   order.
#
# Installs nginx and Nchan from Debian's packages when missing (as root). Writes the
# medians, spreads and the goals to the WebSocket section of docs/benchmarks.md
# (summarise_websocket.py).
#
#   loadtest/peers/websocket.sh [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
RUN=$(mktemp -d /tmp/halley-websocket.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

# shellcheck source=servers.sh
source loadtest/peers/servers.sh
ensure_builds
REV=$(measured_rev)
refuse_taken_ports 8080 8081 8090 8091
trap 'stop_halley; stop_nginx' EXIT

# shellcheck source=rounds.sh
source loadtest/peers/rounds.sh

HOLD=(--count 10000 --channels 10 --procs 2 --settle 2s --ramp 1000)
FAN=(--count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 1000)
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-ws halley-sse nchan-ws nchan-sse); do
    case $who in
      halley-*) stop_halley; start_halley ;;
      nchan-*) stop_nginx; start_nginx loadtest/peers/nginx.conf -- 8090 8091 ;;
    esac
    case $who in
      halley-ws) measure halley-ws "$HALLEY" "$round" hold --url 'ws://127.0.0.1:8080/sub/{channel}?t=ws' "${HOLD[@]}" ;;
      halley-sse) measure halley-sse "$HALLEY" "$round" hold --url 'http://127.0.0.1:8080/sub/{channel}?t=sse' "${HOLD[@]}" ;;
      nchan-ws) measure nchan-ws "$NGINX_PIDS" "$round" hold --url 'ws://127.0.0.1:8090/ws/{channel}' "${HOLD[@]}" ;;
      # Nchan's eventsource location answers only a request that accepts the type.
      nchan-sse) measure nchan-sse "$NGINX_PIDS" "$round" hold --url 'http://127.0.0.1:8090/sse/{channel}' --header 'Accept: text/event-stream' "${HOLD[@]}" ;;
    esac
  done
done
stop_halley; start_halley; stop_nginx; start_nginx loadtest/peers/nginx.conf -- 8090 8091
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-ws halley-sse nchan-ws); do
    case $who in
      halley-ws) measure halley-ws "$HALLEY" "$round" fanout --url 'ws://127.0.0.1:8080/sub/{channel}?t=ws' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}" ;;
      halley-sse) measure halley-sse "$HALLEY" "$round" fanout --url 'http://127.0.0.1:8080/sub/{channel}?t=sse' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}" ;;
      nchan-ws) measure nchan-ws "$NGINX_PIDS" "$round" fanout --url 'ws://127.0.0.1:8090/ws/{channel}' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FAN[@]}" ;;
    esac
  done
done

python3 loadtest/peers/summarise_websocket.py "$RESULTS" "$ROUNDS" "$REV" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote the WebSocket section of docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
