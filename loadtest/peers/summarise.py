#!/usr/bin/env python3
"""Turns halley-load's JSON lines into docs/benchmarks.md: per scenario, the median of
the runs for each server, and Halley's figure as a ratio of each peer's."""
import json
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

results_path, repeat = sys.argv[1], sys.argv[2]
runs = defaultdict(list)
for line in open(results_path):
    line = line.strip()
    if line:
        r = json.loads(line)
        key = r["scenario"]
        if r["scenario"] == "hold" and r.get("subscribers", 0) > 10000:
            key += f" ({r['subscribers']:,})"
        if r["scenario"] == "liveblog":
            key += f" ({r['readers']:,})"
        runs[(key, r["server"])].append(r)


# Figures compared as ratios (counts such as held or lost are shown as they are).
MEASURES = {"requests_per_s", "server_cpu_us_per_request", "server_bytes_per_subscriber",
            "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
            "publish_latency_p50_ms", "publish_latency_p99_ms", "publish_latency_max_ms"}


def median(scenario, server, field):
    values = [r[field] for r in runs.get((scenario, server), []) if isinstance(r.get(field), (int, float))]
    return statistics.median(values) if values else None


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def table(scenario, fields, servers, base="halley"):
    rows = [f"| server | {' | '.join(label for label, _, _ in fields)} |", "|---" * (len(fields) + 1) + "|"]
    for server in servers:
        if (scenario, server) not in runs:
            continue
        cells = []
        for _, field, better in fields:
            value = median(scenario, server, field)
            text = "–" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")
            mine = median(scenario, base, field)
            if server != base and value and mine is not None and field in MEASURES:
                text += f" ({'Halley' if base == 'halley' else base} ×{mine / value:.2f})"
            cells.append(text)
        rows.append(f"| {server} | {' | '.join(cells)} |")
    return "\n".join(rows)


def liveblog():
    rows = ["| server | readers | requests/s asked | requests/s served | errors | p99 ms | server CPU µs/request |", "|---|---|---|---|---|---|---|"]
    steps = sorted({r["readers"] for (key, _), rs in runs.items() if key.startswith("liveblog") for r in rs})
    for readers in steps:
        for server in ["halley", "nchan"]:
            key = f"liveblog ({readers:,})"
            if (key, server) not in runs:
                continue
            cell = lambda f: "–" if median(key, server, f) is None else f"{median(key, server, f):,.2f}".rstrip("0").rstrip(".")
            rows.append(f"| {server} | {readers:,} | {readers / 60:,.0f} | {cell('requests_per_s')} | {cell('errors')} | {cell('latency_p99_ms')} | {cell('server_cpu_us_per_request')} |")
    return "\n".join(rows)


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"""# Benchmarks

Halley beside nginx with Nchan and Pushpin, each measured by `halley-load` on the same
machine in one run, every figure the median of {repeat} runs (the holds of 19,000 and
100,000 connections and the live blog: one run each). A ratio in brackets is Halley's figure divided by that peer's.
Reproduce with `loadtest/peers/run.sh {repeat}` (as root: it installs the peers from
Debian's packages); the raw JSON lines of each run are kept in the run's temporary
directory.

- Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, Linux {platform.release()}; load tester and servers share it.
- Halley: {version(['target/release/halley', '--version'])}, two loops (defaults).
- nginx: {version(['nginx', '-v'])}, Nchan {version(['dpkg-query', '-W', '-f=${Version}', 'libnginx-mod-nchan'])}, two workers.
- Pushpin: {version(['pushpin', '--version'])}, Debian's settings but for ports and its delivery rate limit (`message_rate`, `message_hwm`, lifted); backend `halley-load grip-origin`, reached through zurl.

## New connection per request (interval poll)

Each request on a new connection: Halley `t=poll`, Nchan `interval-poll`, and nginx
answering a fixed 200 (the ceiling of one short exchange). Server CPU per request is
read from `/proc/PID/stat` over the measured window (10 ms ticks).

{table("conn-rate (new connection each)", [("requests/s", "requests_per_s", 1), ("server CPU µs/request", "server_cpu_us_per_request", -1), ("p99 ms", "latency_p99_ms", -1), ("errors", "errors", -1)], ["halley", "nchan", "nginx-fixed-200"])}

The same with TCP_DEFER_ACCEPT on both sides of the comparison: a second Halley with
`--defer-accept 1s`, and nginx's fixed 200 on a `deferred` listener.

{table("conn-rate (new connection each)", [("requests/s", "requests_per_s", 1), ("server CPU µs/request", "server_cpu_us_per_request", -1), ("p99 ms", "latency_p99_ms", -1), ("errors", "errors", -1)], ["halley-defer-accept", "nginx-fixed-200", "nginx-fixed-200-deferred"], base="halley-defer-accept")}

## Keep-alive requests

{table("conn-rate (keep-alive)", [("requests/s", "requests_per_s", 1), ("server CPU µs/request", "server_cpu_us_per_request", -1), ("p99 ms", "latency_p99_ms", -1), ("errors", "errors", -1)], ["halley", "nchan", "nginx-fixed-200"])}

## Memory per held idle subscriber

10,000 streams (`t=stream`, Nchan `http-raw-stream`, Pushpin `Grip-Hold: stream`) over
10 channels, opened at 500 a second; server RSS (summed over its processes) before and
after, per subscriber.

{table("hold", [("bytes/subscriber", "server_bytes_per_subscriber", -1), ("held", "held", 1), ("failed", "failed", -1)], ["halley", "nchan", "pushpin"])}

## Fan-out to 10,000 streams

10 messages, 300 ms apart, to 10,000 streaming subscribers of one channel (opened at
500 a second, then 2 s to settle before the first publish); latency from
the publish to each arrival (all on one clock), and what was lost, duplicated or out of
order.

{table("fanout", [("p50 ms", "latency_p50_ms", -1), ("p99 ms", "latency_p99_ms", -1), ("max ms", "latency_max_ms", -1), ("delivered", "delivered", 1), ("lost", "lost", -1), ("duplicated", "duplicated", -1), ("out of order", "out_of_order", -1)], ["halley", "nchan", "pushpin"])}

## Publishing under a connection flood

100 publishes a second on the publish port while 256 connections at a time flood the
subscriber port with new connections.

{table("publish-under-flood", [("publish p50 ms", "publish_latency_p50_ms", -1), ("publish p99 ms", "publish_latency_p99_ms", -1), ("publish max ms", "publish_latency_max_ms", -1), ("flood requests", "flood_requests", 1)], ["halley", "nchan"])}

## Held connections up to the descriptor limit

One process may hold 20,000 descriptors here; Halley holds 19,000 streams.

{table("hold (19,000)", [("held", "held", 1), ("failed", "failed", -1), ("bytes/subscriber", "server_bytes_per_subscriber", -1)], ["halley"])}

## 100,000 held connections

More than one process may hold here, on both sides: seven Halley processes share the
subscriber port (SO_REUSEPORT), and six tester processes open 100,000 streams from
eight loopback source addresses, 10,000 a second. Memory is summed over the seven.

{table("hold (100,000)", [("held", "held", 1), ("failed", "failed", -1), ("bytes/subscriber", "server_bytes_per_subscriber", -1)], ["halley"])}

## Live blog

Readers polling every 60 s (±10 s), each poll a new connection (Halley `t=poll`, Nchan
`interval-poll`), 70 s per step, one run each; the rate asked is readers / 60.

{liveblog()}
""")

import os

# What we found, written by hand beside this script, follows the figures of this run.
findings = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md")
if os.path.exists(findings):
    print(open(findings).read())

# The storage section (written by storage.sh) is kept from the previous document, after
# this run's findings.
STORAGE_START = "<!-- storage: written by loadtest/peers/storage.sh -->"
STORAGE_END = "<!-- /storage -->"
previous = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "benchmarks.md")
# So is the comparison of two builds (written by compare.sh).
COMPARE_START = "<!-- compare: written by loadtest/peers/compare.sh -->"
COMPARE_END = "<!-- /compare -->"
if os.path.exists(previous):
    text = open(previous).read()
    for start, end in ((STORAGE_START, STORAGE_END), (COMPARE_START, COMPARE_END)):
        if start in text and end in text:
            print(start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n")

