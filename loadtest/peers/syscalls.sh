#!/usr/bin/env bash
# Syscalls per new-connection poll, counted with `strace -c -f` on the server while
# halley-load runs a conn-rate against it (64 connections at a time, 4 s): Halley on
# its defaults, the minimal responder, and nginx's fixed 200 on a `deferred`
# listener. strace slows the servers many times over, so the counts, not the times,
# are the result. Prints one table (markdown) to stdout.
#
#   loadtest/peers/syscalls.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=$(mktemp -d /tmp/halley-syscalls.XXXXXX)
L=$ROOT/target/release/halley-load
cd "$ROOT"
command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
cargo build --release --quiet -p halley -p halley-load

# shellcheck source=references.sh
source loadtest/peers/references.sh
start_references

count() { # label url pids...: one traced run; prints the label, requests and counts
  local label=$1 url=$2; shift 2
  local args=() pid
  for pid in "$@"; do args+=(-p "$pid"); done
  strace -c -f -o "$RUN/$label.strace" "${args[@]}" 2>/dev/null &
  local tracer=$!
  sleep 1
  local requests
  requests=$("$L" conn-rate --url "$url" --concurrency 64 --duration 4s --procs 2 --sources 32 --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  python3 - "$label" "$requests" "$RUN/$label.strace" <<'PY'
import sys
label, requests, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = {}
for line in open(path):
    parts = line.split()
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
        name = parts[-1]
        errors = int(parts[4]) if len(parts) == 6 else 0
        calls[name] = (int(parts[3]), errors)
total = sum(c for c, _ in calls.values())
top = sorted(calls.items(), key=lambda kv: -kv[1][0])
detail = ", ".join(f"{n} {c / requests:.2f}" + (f" ({e / requests:.2f} failed)" if e else "")
                   for n, (c, e) in top if c / requests >= 0.01)
print(f"| {label} | {requests:,} | {total / requests:.2f} | {detail} |")
PY
}

echo "| server | requests | syscalls per request | per request, by call |"
echo "|---|---|---|---|"
count halley 'http://127.0.0.1:8080/sub/{channel}?t=poll' "$HALLEY"
count minimal-responder 'http://127.0.0.1:8096/' "$MINIMAL"
count nginx-fixed-200-deferred 'http://127.0.0.1:8095/' $(pgrep -P "$NGINX")
