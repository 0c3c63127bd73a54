#!/usr/bin/env bash
# Halley beside nginx+Nchan and Pushpin, on this machine, in one run: installs the
# peers from Debian's packages when missing (as root), starts every server on
# loopback ports, runs each scenario REPEAT times (default 3) against each, and writes
# the medians and the ratios to docs/benchmarks.md.
#
#   loadtest/peers/run.sh [REPEAT]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPEAT=${1:-3}
RUN=$(mktemp -d /tmp/halley-peers.XXXXXX)
RESULTS=$RUN/results.jsonl
EXTRA_HALLEYS=()
L=$ROOT/target/release/halley-load
cd "$ROOT"

if ! command -v pushpin >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-nchan pushpin >/dev/null
fi
cargo build --release --quiet -p halley -p halley-load

cleanup() {
  stop_halley; stop_nginx; stop_pushpin
  kill "${ORIGIN:-}" "${ZURL:-}" "${HALLEY_DEFERRED:-}" "${EXTRA_HALLEYS[@]}" 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # host port: until something accepts connections there (10 s)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1:$2" >&2; return 1
}

# Each server can be started afresh (the memory of a hold is measured on a server that
# has held nothing before: one that has reuses the memory it freed).
start_halley() {
  "$ROOT/target/release/halley" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 --log-level warn &
  HALLEY=$!
  wait_port 127.0.0.1 8080; wait_port 127.0.0.1 8081
}
stop_halley() { if [ -n "${HALLEY:-}" ]; then kill "$HALLEY" 2>/dev/null || true; wait "$HALLEY" 2>/dev/null || true; fi; HALLEY=; }
# A second Halley with TCP_DEFER_ACCEPT, for the new-connection rows beside nginx's
# `deferred` listener.
start_halley_deferred() {
  "$ROOT/target/release/halley" --listen 127.0.0.1:8082 --admin-listen 127.0.0.1:8083 --log-level warn --defer-accept 1s &
  HALLEY_DEFERRED=$!
  wait_port 127.0.0.1 8083
}
start_nginx() {
  rm -rf "$RUN/nginx"; mkdir -p "$RUN/nginx/tmp"; cp loadtest/peers/nginx.conf "$RUN/nginx/"
  nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g 'daemon off;' 2>/dev/null &
  NGINX=$!
  for port in 8090 8091 8094 8095; do wait_port 127.0.0.1 $port; done
  sleep 0.3
  NGINX_PIDS="$NGINX,$(pgrep -d, -P "$NGINX")"
}
stop_nginx() { if [ -n "${NGINX:-}" ]; then kill "$NGINX" 2>/dev/null || true; wait "$NGINX" 2>/dev/null || true; fi; NGINX=; }
# Pushpin sends its requests to the backend through zurl, a daemon of its own that
# Debian starts as a service (not running here without systemd) and whose default
# policy refuses loopback addresses: run one that allows them, on the paths Pushpin
# expects, with queues deep enough for thousands of subscribers arriving at once.
start_zurl() {
  mkdir -p /var/run/zurl
  sed -e 's/^deny=.*/deny=/' -e 's/^max_open_requests=.*/max_open_requests=50000/' \
      -e 's/^in_hwm=.*/in_hwm=50000/' -e 's/^out_hwm=.*/out_hwm=50000/' /etc/zurl.conf > "$RUN/zurl.conf"
  zurl --config="$RUN/zurl.conf" >/dev/null 2>&1 &
  ZURL=$!
}

start_pushpin() {
  rm -rf "$RUN/pushpin"; mkdir -p "$RUN/pushpin"
  sed "s#RUNDIR#$RUN/pushpin#g" loadtest/peers/pushpin.conf > "$RUN/pushpin/pushpin.conf"
  cp loadtest/peers/routes "$RUN/pushpin/"
  (cd "$RUN/pushpin" && exec pushpin --config "$RUN/pushpin/pushpin.conf" >/dev/null 2>&1) &
  PUSHPIN=$!
  wait_port 127.0.0.1 8092; wait_port 127.0.0.1 8093
  sleep 1
  PUSHPIN_PIDS="$PUSHPIN,$(pgrep -d, -P "$PUSHPIN")"
}
stop_pushpin() {
  [ -n "${PUSHPIN:-}" ] || return 0
  pkill -P "$PUSHPIN" 2>/dev/null || true; kill "$PUSHPIN" 2>/dev/null || true; wait "$PUSHPIN" 2>/dev/null || true; PUSHPIN=
}

"$L" grip-origin --listen 127.0.0.1:9000 2>/dev/null &
ORIGIN=$!
wait_port 127.0.0.1 9000
start_zurl
start_halley; start_nginx; start_pushpin

run() { # label pids scenario args...: REPEAT runs; a failed run is reported and skipped
  local label=$1 pids=$2; shift 2
  for i in $(seq "$REPEAT"); do
    echo "$label: $* ($i/$REPEAT)" >&2
    "$L" "$@" --json --label "$label" --server-pid "$pids" >> "$RESULTS" || echo "$label: $1 run $i failed" >&2
    sleep 1
  done
}

fresh() { # server: restart it, for a hold measured from nothing
  case $1 in
    halley) stop_halley; start_halley ;;
    nchan) stop_nginx; start_nginx ;;
    pushpin) stop_pushpin; start_pushpin ;;
  esac
}

PUSHPIN_BODY='{"items":[{"channel":"{channel}","formats":{"http-stream":{"content":"{payload}\n"}}}]}'
RATE=(--concurrency 64 --duration 5s --procs 2 --sources 32)
start_halley_deferred
for keepalive in "" "--keepalive"; do
  run halley "$HALLEY" conn-rate --url 'http://127.0.0.1:8080/sub/{channel}?t=poll' "${RATE[@]}" $keepalive
  run nchan "$NGINX_PIDS" conn-rate --url 'http://127.0.0.1:8090/poll/{channel}' "${RATE[@]}" $keepalive
  run nginx-fixed-200 "$NGINX_PIDS" conn-rate --url 'http://127.0.0.1:8094/' "${RATE[@]}" $keepalive
  if [ -z "$keepalive" ]; then
    run halley-defer-accept "$HALLEY_DEFERRED" conn-rate --url 'http://127.0.0.1:8082/sub/{channel}?t=poll' "${RATE[@]}"
    run nginx-fixed-200-deferred "$NGINX_PIDS" conn-rate --url 'http://127.0.0.1:8095/' "${RATE[@]}"
  fi
done
kill "$HALLEY_DEFERRED"; wait "$HALLEY_DEFERRED" 2>/dev/null || true; HALLEY_DEFERRED=
# Subscribers arrive at 500 a second, for every server: Pushpin answers a faster burst
# with `502 Error while proxying to origin` (1,000 a second: 8% of them here).
HOLD=(--count 10000 --channels 10 --procs 2 --settle 2s --ramp 500)
for i in $(seq "$REPEAT"); do
  fresh halley; REPEAT=1 run halley "$HALLEY" hold --url 'http://127.0.0.1:8080/sub/{channel}?t=stream' "${HOLD[@]}"
  fresh nchan; REPEAT=1 run nchan "$NGINX_PIDS" hold --url 'http://127.0.0.1:8090/stream/{channel}' "${HOLD[@]}"
  fresh pushpin; REPEAT=1 run pushpin "$PUSHPIN_PIDS" hold --url 'http://127.0.0.1:8092/stream/{channel}' "${HOLD[@]}"
done
FAN=(--count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 500)
run halley "$HALLEY" fanout --url 'http://127.0.0.1:8080/sub/{channel}?t=stream' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FAN[@]}"
run nchan "$NGINX_PIDS" fanout --url 'http://127.0.0.1:8090/stream/{channel}' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FAN[@]}"
run pushpin "$PUSHPIN_PIDS" fanout --url 'http://127.0.0.1:8092/stream/{channel}' --pub-url 'http://127.0.0.1:8093/publish/' --pub-body "$PUSHPIN_BODY" "${FAN[@]}"
FLOOD=(--concurrency 256 --duration 6s --rate 100 --procs 2 --sources 32)
run halley "$HALLEY" publish-under-flood --flood-url 'http://127.0.0.1:8080/sub/{channel}?t=poll' --pub-url 'http://127.0.0.1:8081/pub/{channel}' "${FLOOD[@]}"
run nchan "$NGINX_PIDS" publish-under-flood --flood-url 'http://127.0.0.1:8090/poll/{channel}' --pub-url 'http://127.0.0.1:8091/pub/{channel}' "${FLOOD[@]}"
fresh halley
REPEAT=1 run halley "$HALLEY" hold --url 'http://127.0.0.1:8080/sub/{channel}?t=stream' --count 19000 --channels 10 --procs 2 --settle 2s

# 100,000 held streams: more than one process may hold here, on either side. Six more
# Halley processes join the subscriber port (SO_REUSEPORT spreads connections over all
# seven), and six tester processes open them at 10,000 a second.
fresh halley
EXTRA_HALLEYS=()
for i in 1 2 3 4 5 6; do
  "$ROOT/target/release/halley" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:$((8100 + i)) --log-level warn &
  EXTRA_HALLEYS+=($!)
  wait_port 127.0.0.1 $((8100 + i))
done
ALL_HALLEYS=$(IFS=,; echo "$HALLEY,${EXTRA_HALLEYS[*]}")
REPEAT=1 run halley "$ALL_HALLEYS" hold --url 'http://127.0.0.1:8080/sub/{channel}?t=stream' --count 100000 --channels 10 --procs 6 --sources 8 --ramp 10000 --settle 2s
kill "${EXTRA_HALLEYS[@]}"; wait "${EXTRA_HALLEYS[@]}" 2>/dev/null || true; EXTRA_HALLEYS=()

# Live blog: readers polling every 60 s (±10 s), each poll on a new connection, in
# steps; one run of 70 s per step and server.
for readers in 600000 900000 1200000; do
  LIVE=(--readers "$readers" --interval 60s --jitter 10s --duration 70s --procs 4 --sources 32)
  REPEAT=1 run halley "$HALLEY" liveblog --url 'http://127.0.0.1:8080/sub/{channel}?t=poll' "${LIVE[@]}"
  REPEAT=1 run nchan "$NGINX_PIDS" liveblog --url 'http://127.0.0.1:8090/poll/{channel}' "${LIVE[@]}"
done

python3 loadtest/peers/summarise.py "$RESULTS" "$REPEAT" > "$RUN/benchmarks.md"
mv "$RUN/benchmarks.md" docs/benchmarks.md
cp "$RESULTS" "$RUN/kept-results.jsonl"
echo "wrote docs/benchmarks.md (raw results in $RUN/kept-results.jsonl)" >&2
