"""Writes the Redis section of docs/benchmarks.md from redis.sh's JSON lines: for each
scenario and server the median of the rounds and their spread (lowest to highest),
the ratios of one run (round by round), the goals of issue 18 checked against the
medians, then redis-findings.md. The section sits between two markers and replaces
the one there.

    summarise_redis.py RESULTS.jsonl ROUNDS REV docs/benchmarks.md
"""
import sys

import sections
from sections import findings, fmt, goal, load_runs, median, per_round, replace_section

results_path, rounds, rev, doc_path = sys.argv[1:5]
START = "<!-- redis: written by loadtest/peers/redis.sh -->"
END = "<!-- /redis -->"
runs = load_runs(results_path)

FAN, RATE, HOLD = "fanout", "publish-rate", "hold"
SCENARIOS = [
    ("Fan-out of 10 messages to 10,000 SSE subscribers of one channel", FAN,
     ["halley-memory", "halley-redis", "halley-3-nodes", "nchan-redis"], [
         ("delivery p50 ms", "latency_p50_ms"),
         ("delivery p99 ms", "latency_p99_ms"),
         ("server CPU µs/delivered frame", "server_cpu_us_per_delivered"),
         ("lost", "lost"),
         ("duplicated", "duplicated"),
         ("out of order", "out_of_order"),
     ]),
    ("Publishes through Redis, 16 closed-loop publishers over 16 channels (200 B, 5 s)", RATE,
     ["halley-3-nodes", "nchan-redis"], [
         ("publishes/s", "publishes_per_s"),
         ("publish p50 ms", "publish_p50_ms"),
         ("publish p99 ms", "publish_p99_ms"),
         ("errors", "errors"),
     ]),
    ("Held idle SSE subscribers on one Redis (each run on servers started afresh)", HOLD,
     ["halley-5-nodes", "halley-redis"], [
         ("held", "held"),
         ("failed", "failed"),
         ("server bytes per subscriber", "server_bytes_per_subscriber"),
     ]),
]

lines = ["", f"## Several servers on Redis ({rev})", ""]
lines.append(
    f"`loadtest/peers/redis.sh {rounds}`: Halley's nodes sharing their channels through "
    "one `redis-server` beside nginx with Nchan 1.3.6 on the same Redis "
    "(`nchan_redis_pass`, two workers), measured by the same `halley-load` in one run, "
    f"{rounds} rounds, the order of the servers turning each round; Redis and the "
    "servers started afresh for each measurement. `halley-memory` is one Halley without "
    "Redis, `halley-redis` one node on Redis, `halley-3-nodes` three nodes with the "
    "subscribers spread over them and the messages published on the first (so two "
    "thirds of the deliveries cross from one node to another through Redis). In the "
    "held row, `halley-5-nodes` holds 95,000 subscribers over five nodes (19,000 each) "
    "and `halley-redis` 19,000 on one. Each cell is the median of the rounds and, in "
    "brackets, the lowest and highest. All on this 2-core machine: the nodes, Redis "
    "and the load generator share its cores."
)
lines.append("")
lines += sections.tables(runs, SCENARIOS)

p99 = "latency_p99_ms"
single, cross, nchan = (median(runs, FAN, s, p99) for s in ("halley-memory", "halley-3-nodes", "nchan-redis"))
rate = "publishes_per_s"
h_rate, n_rate = median(runs, RATE, "halley-3-nodes", rate), median(runs, RATE, "nchan-redis", rate)
h_pub99, n_pub99 = median(runs, RATE, "halley-3-nodes", "publish_p99_ms"), median(runs, RATE, "nchan-redis", "publish_p99_ms")
mem = "server_bytes_per_subscriber"
five, one = median(runs, HOLD, "halley-5-nodes", mem), median(runs, HOLD, "halley-redis", mem)
held = median(runs, HOLD, "halley-5-nodes", "held")
troubles = sum(sum(sections.values(runs, FAN, "halley-3-nodes", key))
               for key in ("lost", "duplicated", "out_of_order"))

lines += ["### Against the goals of issue 18 (medians above)", ""]
lines += ["| goal | measured | |", "|---|---|---|"]
if single is not None and cross is not None:
    lines.append(goal("cross-node fan-out p99 at most 1.25 × a single Halley's",
                      f"{fmt(cross)} vs {fmt(single)} ms (round by round "
                      f"{per_round(runs, FAN, 'halley-3-nodes', 'halley-memory', p99)})",
                      cross <= 1.25 * single))
if cross is not None and nchan is not None:
    lines.append(goal("… and below Nchan-on-Redis's",
                      f"{fmt(cross)} vs {fmt(nchan)} ms (round by round "
                      f"{per_round(runs, FAN, 'halley-3-nodes', 'nchan-redis', p99)})",
                      cross < nchan))
    lines.append(goal("nothing lost, duplicated or out of order across nodes (every round)",
                      f"{troubles} in all", troubles == 0))
if h_rate is not None and n_rate is not None:
    lines.append(goal("publish throughput through Redis above Nchan-on-Redis's",
                      f"{fmt(h_rate)} vs {fmt(n_rate)} /s (round by round "
                      f"{per_round(runs, RATE, 'halley-3-nodes', 'nchan-redis', rate)}); "
                      f"p99 {fmt(h_pub99)} vs {fmt(n_pub99)} ms",
                      h_rate > n_rate))
if five is not None and one is not None:
    lines.append(goal("95,000 held over five nodes, memory per subscriber as for one node",
                      f"{fmt(held)} held; {fmt(five)} vs {fmt(one)} B",
                      held is not None and held >= 95000 and five <= 1.1 * one))
lines.append("")
lines += findings("redis-findings.md")
print(replace_section(doc_path, START, END, lines))
