#!/usr/bin/env bash
# Halley at the machine's limit (issue 15): every figure beside a reference measured
# in the same minute, on this machine, interleaved, for ROUNDS rounds (default 5), the
# order of the servers turning each round:
#
# - new-connection polls (64 at a time, 5 s): Halley on its defaults; the minimal
#   responder (`halley-load minimal-responder`: accept, read, write a fixed 200,
#   close, on a deferred listener); nginx's fixed 200 on a `deferred` listener and on
#   a plain one; Nchan's interval poll;
# - fan-out of 10 messages to 10,000 streams: Halley; the writev floor
#   (`halley-load writev-floor`: the same bytes to the same sockets, one writev
#   each, nothing else); Nchan;
# - publish latency under a flood of 256 new-connection polls: Halley and Nchan.
#
# Installs nginx and Nchan from Debian's packages when missing (as root). Writes the
# medians, spreads and ratios to the limits section of docs/benchmarks.md
# (summarise_limits.py).
#
#   loadtest/peers/limits.sh [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-5}
RUN=$(mktemp -d /tmp/halley-limits.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

cargo build --release --quiet -p halley -p halley-load
REV=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo "+changes")

# shellcheck source=references.sh
source loadtest/peers/references.sh
start_references

# shellcheck source=rounds.sh
source loadtest/peers/rounds.sh

RATE=(--concurrency 64 --duration 5s --procs 2 --sources 32)
FAN=(--count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 1000)
FLOOD=(--concurrency 256 --duration 6s --rate 100 --procs 2 --sources 32)
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley minimal nginx-deferred nginx nchan); do
    case $who in
      halley) measure halley "$HALLEY" "$round" conn-rate --url 'http://127.0.0.1:8080/sub/{channel}?t=poll' "${RATE[@]}" ;;
      minimal) measure minimal-responder "$MINIMAL" "$round" conn-rate --url 'http://127.0.0.1:8096/' "${RATE[@]}" ;;
      nginx-deferred) measure nginx-fixed-200-deferred "$NGINX_PIDS" "$round" conn-rate --url 'http://127.0.0.1:8095/' "${RATE[@]}" ;;
      nginx) measure nginx-fixed-200 "$NGINX_PIDS" "$round" conn-rate --url 'http://127.0.0.1:8094/' "${RATE[@]}" ;;
      nchan) measure nchan "$NGINX_PIDS" "$round" conn-rate --url 'http://127.0.0.1:8090/poll/{channel}' "${RATE[@]}" ;;
    esac
  done
  for who in $(rotate "$round" halley floor nchan); do
    case $who in
      halley) measure halley "$HALLEY" "$round" fanout --url 'http://127.0.0.1:8080/sub/{channel}?t=stream' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}" ;;
      floor) measure writev-floor "$FLOOR" "$round" fanout --url 'http://127.0.0.1:8097/sub/{channel}?t=stream' --pub-url 'http://127.0.0.1:8098/pub/{channel}' "${FAN[@]}" ;;
      nchan) measure nchan "$NGINX_PIDS" "$round" fanout --url 'http://127.0.0.1:8090/stream/{channel}' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FAN[@]}" ;;
    esac
  done
  for who in $(rotate "$round" halley nchan); do
    case $who in
      halley) measure halley "$HALLEY" "$round" publish-under-flood --flood-url 'http://127.0.0.1:8080/sub/{channel}?t=poll' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FLOOD[@]}" ;;
      nchan) measure nchan "$NGINX_PIDS" "$round" publish-under-flood --flood-url 'http://127.0.0.1:8090/poll/{channel}' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FLOOD[@]}" ;;
    esac
  done
done

python3 loadtest/peers/summarise_limits.py "$RESULTS" "$ROUNDS" "$REV" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote the limits section of docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
