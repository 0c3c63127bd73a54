"""Writes the WebSocket section of docs/benchmarks.md from websocket.sh's JSON lines:
for each scenario and server the median of the rounds and their spread (lowest to
highest), the ratios of one run (round by round), the goals of issue 16 checked
against the medians, then websocket-findings.md. The section sits between two markers
and replaces the one there.

    summarise_websocket.py RESULTS.jsonl ROUNDS REV docs/benchmarks.md
"""
import sys

import sections
from sections import findings, load_runs, replace_section

results_path, rounds, rev, doc_path = sys.argv[1:5]
START = "<!-- websocket: written by loadtest/peers/websocket.sh -->"
END = "<!-- /websocket -->"
runs = load_runs(results_path)

HOLD = "hold"
FAN = "fanout"
SCENARIOS = [
    ("Held idle subscribers (10,000, each server started afresh)", HOLD,
     ["halley-ws", "nchan-ws", "halley-sse", "nchan-sse"], [
         ("server bytes per subscriber", "server_bytes_per_subscriber"),
         ("held", "held"),
         ("failed", "failed"),
     ]),
    ("Fan-out of 10 messages to 10,000 subscribers of one channel", FAN,
     ["halley-ws", "nchan-ws", "halley-sse"], [
         ("delivery p50 ms", "latency_p50_ms"),
         ("delivery p99 ms", "latency_p99_ms"),
         ("server CPU µs/delivered frame", "server_cpu_us_per_delivered"),
         ("lost", "lost"),
         ("duplicated", "duplicated"),
         ("out of order", "out_of_order"),
     ]),
]


def values(scenario, server, key):
    return sections.values(runs, scenario, server, key)


def median(scenario, server, key):
    return sections.median(runs, scenario, server, key)


def per_round(scenario, a, b, key):
    return sections.per_round(runs, scenario, a, b, key)


lines = ["", f"## WebSocket subscribers ({rev})", ""]
lines.append(
    f"`loadtest/peers/websocket.sh {rounds}`: Halley's WebSocket subscribers beside Nchan's "
    "(`nchan_subscriber websocket`, nginx with two workers) and both servers' SSE, measured "
    f"by the same `halley-load` in one run, {rounds} rounds, the order of the servers "
    "turning each round. Each cell is the median of the rounds and, in brackets, the "
    "lowest and highest. Memory is the growth of the server's resident set (all its "
    "processes) over the subscribers held, divided by their number."
)
lines.append("")
lines += sections.tables(runs, SCENARIOS)

mem = "server_bytes_per_subscriber"
h_mem, n_mem = median(HOLD, "halley-ws", mem), median(HOLD, "nchan-ws", mem)
p99 = "latency_p99_ms"
h_ws, n_ws, h_sse = (median(FAN, s, p99) for s in ("halley-ws", "nchan-ws", "halley-sse"))
lost = sum(values(FAN, "halley-ws", "lost") + values(FAN, "halley-ws", "duplicated")
           + values(FAN, "halley-ws", "out_of_order"))


goal = sections.goal

lines += ["### Against the goals of issue 16 (medians above)", ""]
lines += ["| goal | measured | |", "|---|---|---|"]
if h_mem is not None:
    lines.append(goal("memory per held idle WebSocket subscriber ≤ 512 bytes",
                      f"{sections.fmt(h_mem)} B (Nchan: {sections.fmt(n_mem)} B)", h_mem <= 512))
if h_ws is not None and n_ws is not None:
    lines.append(goal("WebSocket fan-out p99 below Nchan's WebSocket",
                      f"{sections.fmt(h_ws)} vs {sections.fmt(n_ws)} ms (round by round "
                      f"{per_round(FAN, 'halley-ws', 'nchan-ws', p99)})", h_ws < n_ws))
if h_ws is not None and h_sse is not None:
    lines.append(goal("… and at most Halley's own SSE fan-out of the same run",
                      f"{sections.fmt(h_ws)} vs {sections.fmt(h_sse)} ms (round by round "
                      f"{per_round(FAN, 'halley-ws', 'halley-sse', p99)})", h_ws <= h_sse))
    lines.append(goal("nothing lost, duplicated or out of order (every round)",
                      f"{lost} in all", lost == 0))
lines.append("")
lines += findings("websocket-findings.md")
print(replace_section(doc_path, START, END, lines))
