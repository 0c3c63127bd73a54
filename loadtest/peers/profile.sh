#!/usr/bin/env bash
# Where Halley's CPU goes in one headline scenario: `perf record -e cpu-clock -g` on a
# fresh Halley (its defaults) while halley-load runs the scenario, then the split
# between the kernel, Halley and libc, and the top symbols of each. This virtual
# machine has no hardware counters, so the profile samples the CPU clock.
#
#   loadtest/peers/profile.sh conn-rate|fanout|flood [TOP]
#
# For instruction counts that do not move with the machine's noise, run the server
# under `valgrind --tool=callgrind --instr-atstart=no`, switch it on with
# `callgrind_control -i on PID` once it listens, and divide the total by the
# requests (docs/benchmarks.md gives the figures this found).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SCENARIO=${1:?usage: profile.sh conn-rate|fanout|flood [TOP]}
TOP=${2:-25}
RUN=$(mktemp -d /tmp/halley-profile.XXXXXX)
L=$ROOT/target/release/halley-load
cd "$ROOT"
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
cargo build --release --quiet -p halley -p halley-load

"$ROOT/target/release/halley" --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 --log-level warn &
HALLEY=$!
trap 'kill $HALLEY 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null && break; sleep 0.1; done

SUB='http://127.0.0.1:8080/sub/{channel}'
PUB='http://127.0.0.1:8081/pub/{channel}'
case $SCENARIO in
  conn-rate) LOAD=(conn-rate --url "$SUB?t=poll" --concurrency 64 --duration 5s --procs 2 --sources 32); WAIT=0; SECONDS_=6 ;;
  fanout) LOAD=(fanout --url "$SUB?t=stream" --pub-url "$PUB" --count 10000 --channels 1 --messages 10 --interval 300ms --procs 2 --timeout 60s --settle 2s --ramp 2000); WAIT=7.5; SECONDS_=3.5 ;;
  flood) LOAD=(publish-under-flood --flood-url "$SUB?t=poll" --pub-url "$PUB" --concurrency 256 --duration 6s --rate 100 --procs 2 --sources 32); WAIT=0; SECONDS_=6 ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
# The fan-out's subscribers connect first (5 s at 2,000 a second, 2 s to settle):
# the profile covers the publishes and their deliveries only.
"$L" "${LOAD[@]}" --server-pid "$HALLEY" --json >"$RUN/result.json" 2>/dev/null &
LOADER=$!
sleep "$WAIT"
perf record -e cpu-clock -F 2999 -g -p "$HALLEY" -o "$RUN/perf.data" -- sleep "$SECONDS_" 2>/dev/null
wait "$LOADER"
cat "$RUN/result.json"; echo
echo "## share by object"
perf report -i "$RUN/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -5
echo "## top symbols"
perf report -i "$RUN/perf.data" --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -"$TOP"
echo "(perf data in $RUN/perf.data)"
