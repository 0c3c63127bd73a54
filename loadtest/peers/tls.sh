#!/usr/bin/env bash
# TLS (issue 17): Halley beside nginx over TLS, measured by the same `halley-load` in
# one run, for ROUNDS rounds (default 3), the order of the servers turning each round.
# Both serve the same ECDSA P-256 certificate, made here, over TLS 1.3; the client
# offers X25519 first and resumes no session, so every new connection is a full
# handshake.
#
# - new TLS connections per second, one request each (64 at a time, 5 s, two client
#   processes): Halley's poll, nginx's fixed 200 and Nchan's interval-poll; rate and
#   server CPU per connection;
# - memory per held idle subscriber: 10,000 SSE streams over TLS on Halley and on
#   Nchan, and Halley's plain SSE for comparison, each on a server started afresh.
#
# Installs nginx and Nchan from Debian's packages when missing (as root). Writes the
# medians, spreads and the goals to the TLS section of docs/benchmarks.md
# (summarise_tls.py).
#
#   loadtest/peers/tls.sh [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-3}
RUN=$(mktemp -d /tmp/halley-tls.XXXXXX)
RESULTS=$RUN/results.jsonl
L=$ROOT/target/release/halley-load
cd "$ROOT"

# shellcheck source=servers.sh
source loadtest/peers/servers.sh
ensure_builds
REV=$(measured_rev)
refuse_taken_ports 8080 8081 8443 8450 8453 8091

# One pair for both servers, a leaf (CA:FALSE) for localhost and 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
export HALLEY_LOAD_CACERT=$RUN/cert.pem
TLS=(--tls-listen 127.0.0.1:8443 --tls-cert "$RUN/cert.pem" --tls-key "$RUN/key.pem")
NGINX_FILES=(loadtest/peers/nginx-tls.conf "$RUN/cert.pem" "$RUN/key.pem")
trap 'stop_halley; stop_nginx' EXIT

# shellcheck source=rounds.sh
source loadtest/peers/rounds.sh

RATE=(--concurrency 64 --duration 5s --procs 2 --channels 10)
HOLD=(--count 10000 --channels 10 --procs 2 --settle 2s --ramp 1000)
start_halley "${TLS[@]}"; start_nginx "${NGINX_FILES[@]}" -- 8450 8453 8091
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley nginx-fixed-200 nchan); do
    case $who in
      halley) measure halley "$HALLEY" "$round" conn-rate --url 'https://127.0.0.1:8443/sub/{channel}?t=poll' "${RATE[@]}" ;;
      nginx-fixed-200) measure nginx-fixed-200 "$NGINX_PIDS" "$round" conn-rate --url 'https://127.0.0.1:8453/' "${RATE[@]}" ;;
      nchan) measure nchan "$NGINX_PIDS" "$round" conn-rate --url 'https://127.0.0.1:8450/poll/{channel}' "${RATE[@]}" ;;
    esac
  done
done
for round in $(seq "$ROUNDS"); do
  for who in $(rotate "$round" halley-tls-sse nchan-tls-sse halley-sse); do
    case $who in
      halley-*) stop_halley; start_halley "${TLS[@]}" ;;
      nchan-*) stop_nginx; start_nginx "${NGINX_FILES[@]}" -- 8450 8453 8091 ;;
    esac
    case $who in
      halley-tls-sse) measure halley-tls-sse "$HALLEY" "$round" hold --url 'https://127.0.0.1:8443/sub/{channel}?t=sse' "${HOLD[@]}" ;;
      halley-sse) measure halley-sse "$HALLEY" "$round" hold --url 'http://127.0.0.1:8080/sub/{channel}?t=sse' "${HOLD[@]}" ;;
      # Nchan's eventsource location answers only a request that accepts the type.
      nchan-tls-sse) measure nchan-tls-sse "$NGINX_PIDS" "$round" hold --url 'https://127.0.0.1:8450/sse/{channel}' --header 'Accept: text/event-stream' "${HOLD[@]}" ;;
    esac
  done
done

python3 loadtest/peers/summarise_tls.py "$RESULTS" "$ROUNDS" "$REV" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote the TLS section of docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
