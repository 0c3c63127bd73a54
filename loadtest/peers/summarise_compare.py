"""Writes the comparison section of docs/benchmarks.md from compare.sh's JSON lines:
for each measurement the median of each build's rounds, their spread (lowest to
highest), and the ratio of the new build to the base one, as a ratio of medians and
round by round; then compare-findings.md. The section sits between two markers and
replaces the one there.

    summarise_compare.py RESULTS.jsonl ROUNDS BASE_REV NEW_REV docs/benchmarks.md
"""
import statistics
import sys

import sections
from sections import findings, fmt, load_runs, replace_section

results_path, rounds, base_rev, new_rev, doc_path = sys.argv[1:6]
START = "<!-- compare: written by loadtest/peers/compare.sh -->"
END = "<!-- /compare -->"

# (scenario, server) -> runs in the order they ran: the i-th of each build is round i.
runs = load_runs(results_path)

MEASURES = [
    ("New-connection polls", "conn-rate (new connection each)", [
        ("requests/s", "requests_per_s"),
        ("server CPU µs/request", "server_cpu_us_per_request"),
        ("p99 ms", "latency_p99_ms"),
    ]),
    ("Keep-alive polls", "conn-rate (keep-alive)", [
        ("requests/s", "requests_per_s"),
        ("server CPU µs/request", "server_cpu_us_per_request"),
        ("p99 ms", "latency_p99_ms"),
    ]),
    ("Fan-out of 10 messages to 10,000 streams", "fanout", [
        ("delivery p50 ms", "latency_p50_ms"),
        ("delivery p99 ms", "latency_p99_ms"),
        ("server CPU µs/delivered frame", "server_cpu_us_per_delivered"),
        ("lost", "lost"),
    ]),
    ("Publishing under a flood of new connections", "publish-under-flood", [
        ("publish p50 ms", "publish_latency_p50_ms"),
        ("publish p99 ms", "publish_latency_p99_ms"),
        ("flood requests", "flood_requests"),
    ]),
    ("Memory per held stream (10,000)", "hold", [
        ("bytes/subscriber", "server_bytes_per_subscriber"),
        ("held", "held"),
    ]),
]


def values(scenario, server, key):
    return sections.values(runs, scenario, server, key)


def cell(scenario, server, key):
    vs = values(scenario, server, key)
    if not vs:
        return "–", None
    m = statistics.median(vs)
    return f"{fmt(m)} ({fmt(min(vs))}–{fmt(max(vs))})", m


lines = ["", f"## This tree against the main before it ({new_rev} vs {base_rev})", ""]
lines.append(
    f"`loadtest/peers/compare.sh {base_rev} {rounds}`: the server of {new_rev} (new) beside "
    f"the server of {base_rev} (base), each measured by the same `halley-load`, one at a "
    f"time on fresh servers with their defaults, {rounds} rounds, the two builds taking "
    "turns to go first. Each cell is the median of the rounds and, in brackets, the "
    "lowest and highest; a ratio is new / base, of the medians and then round by round "
    "(the spread of those is the noise)."
)
lines.append("")
for title, scenario, metrics in MEASURES:
    lines.append(f"### {title}")
    lines.append("")
    lines.append("| measure | base | new | new / base | round by round |")
    lines.append("|---|---|---|---|---|")
    for label, key in metrics:
        base_text, base_median = cell(scenario, "base", key)
        new_text, new_median = cell(scenario, "new", key)
        ratio = "–"
        if base_median and new_median is not None:
            ratio = f"{new_median / base_median:.2f}"
        per_round = [
            f"{n / b:.2f}"
            for b, n in zip(values(scenario, "base", key), values(scenario, "new", key))
            if b
        ]
        lines.append(f"| {label} | {base_text} | {new_text} | {ratio} | {' '.join(per_round) or '–'} |")
    lines.append("")

lines += findings("compare-findings.md")
print(replace_section(doc_path, START, END, lines))
