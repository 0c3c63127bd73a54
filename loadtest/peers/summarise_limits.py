"""Writes the limits section of docs/benchmarks.md from limits.sh's JSON lines: for
each scenario and server the median of the rounds and their spread (lowest to
highest), each server's ratio to the reference of the same scenario (of the medians,
and round by round: the i-th run of each server is round i), the goals of issue 15
checked against the medians, then limits-findings.md. The section sits between two
markers and replaces the one there.

    summarise_limits.py RESULTS.jsonl ROUNDS REV docs/benchmarks.md
"""
import statistics
import sys

import sections
from sections import findings, load_runs, replace_section

results_path, rounds, rev, doc_path = sys.argv[1:5]
START = "<!-- limits: written by loadtest/peers/limits.sh -->"
END = "<!-- /limits -->"
runs = load_runs(results_path)

CONN = "conn-rate (new connection each)"
FAN = "fanout"
FLOOD = "publish-under-flood"

SCENARIOS = [
    ("New-connection polls (64 at a time, 5 s)", CONN, "minimal-responder",
     ["halley", "minimal-responder", "nginx-fixed-200-deferred", "nginx-fixed-200", "nchan"], [
         ("requests/s", "requests_per_s"),
         ("server CPU µs/request", "server_cpu_us_per_request"),
         ("kernel share of it", "server_kernel_share"),
         ("p99 ms", "latency_p99_ms"),
         ("errors", "errors"),
     ]),
    ("Fan-out of 10 messages to 10,000 streams", FAN, "writev-floor",
     ["halley", "writev-floor", "nchan"], [
         ("server CPU µs/delivered frame", "server_cpu_us_per_delivered"),
         ("kernel share of it", "server_kernel_share"),
         ("delivery p50 ms", "latency_p50_ms"),
         ("delivery p99 ms", "latency_p99_ms"),
         ("lost", "lost"),
     ]),
    ("Publishing under a flood of 256 new-connection polls", FLOOD, None,
     ["halley", "nchan"], [
         ("publish p50 ms", "publish_latency_p50_ms"),
         ("publish p99 ms", "publish_latency_p99_ms"),
         ("flood requests", "flood_requests"),
         ("server CPU ms", "server_cpu_ms"),
         ("kernel share of it", "server_kernel_share"),
     ]),
]


def values(scenario, server, key):
    return sections.values(runs, scenario, server, key)


def median(scenario, server, key):
    vs = values(scenario, server, key)
    return statistics.median(vs) if vs else None


def fmt(value):
    return sections.fmt(value, 3)


def cell(scenario, server, key):
    vs = values(scenario, server, key)
    if not vs:
        return "–"
    return f"{fmt(statistics.median(vs))} ({fmt(min(vs))}–{fmt(max(vs))})"


def ratios(scenario, server, reference, key):
    """The ratio of medians and the round-by-round ratios, as text."""
    a, b = median(scenario, server, key), median(scenario, reference, key)
    if a is None or not b:
        return "–", "–"
    per_round = [f"{x / y:.2f}" for x, y in zip(values(scenario, server, key),
                                                values(scenario, reference, key)) if y]
    return f"{a / b:.2f}", " ".join(per_round)


lines = ["", f"## At the machine's limit ({rev})", ""]
lines.append(
    f"`loadtest/peers/limits.sh {rounds}`: Halley on its defaults beside the references "
    "of the limit, measured by the same `halley-load` in one run, interleaved, "
    f"{rounds} rounds, the order of the servers turning each round. Each cell is the "
    "median of the rounds and, in brackets, the lowest and highest. The kernel's share "
    "is `stime` over `utime + stime` of the server's processes, as the kernel books "
    "it (loopback's receive work runs in softirq on whichever task is on the core)."
)
lines.append("")
for title, scenario, reference, servers, metrics in SCENARIOS:
    present = [s for s in servers if (scenario, s) in runs]
    if not present:
        continue
    lines.append(f"### {title}")
    lines.append("")
    lines.append("| measure | " + " | ".join(present) + " |")
    lines.append("|---|" + "---|" * len(present))
    for label, key in metrics:
        lines.append(f"| {label} | " + " | ".join(cell(scenario, s, key) for s in present) + " |")
    lines.append("")
    if reference and (scenario, reference) in runs:
        # The first two measures (the rate and the CPU of new-connection polls; the CPU
        # and its kernel share of fan-out), each server against the reference.
        for label, key in metrics[:2]:
            if key == "server_kernel_share":
                continue
            lines.append(f"{label}, each server / {reference}:")
            lines.append("")
            lines.append("| server | of the medians | round by round |")
            lines.append("|---|---|---|")
            for s in present:
                if s != reference:
                    whole, per_round = ratios(scenario, s, reference, key)
                    lines.append(f"| {s} | {whole} | {per_round} |")
            lines.append("")


def goal(text, value, target, met, shown):
    if value is None or target is None:
        return f"| {text} | – | not measured |"
    return f"| {text} | {shown} | {'met' if met else '**not met**'} |"


def ratio(a, b):
    return a / b if a is not None and b else None


cpu = "server_cpu_us_per_request"
h_cpu, m_cpu, n_cpu = (median(CONN, s, cpu) for s in ("halley", "minimal-responder", "nginx-fixed-200-deferred"))
h_rate, n_rate = (median(CONN, s, "requests_per_s") for s in ("halley", "nginx-fixed-200-deferred"))
p99 = median(FLOOD, "halley", "publish_latency_p99_ms")
frame = "server_cpu_us_per_delivered"
f_ratio = ratio(median(FAN, "halley", frame), median(FAN, "writev-floor", frame))
h_fan, n_fan = median(FAN, "halley", "latency_p99_ms"), median(FAN, "nchan", "latency_p99_ms")
lines += ["### Against the goals of issue 15 (medians above)", ""]
lines.append("| goal | measured | |")
lines.append("|---|---|---|")
r = ratio(h_cpu, m_cpu)
lines.append(goal("server CPU per new-connection poll ≤ 1.1× the minimal responder's", r, 1.1,
                  r is not None and r <= 1.1, f"{r:.3f}×" if r else "–"))
r = ratio(h_cpu, n_cpu)
rounds_text = ratios(CONN, "halley", "nginx-fixed-200-deferred", cpu)[1]
lines.append(goal("… and ≤ nginx's fixed 200 on a `deferred` listener", r, 1.0,
                  r is not None and r <= 1.0,
                  f"{r:.3f}× (round by round {rounds_text})" if r else "–"))
r = ratio(h_rate, n_rate)
rounds_text = ratios(CONN, "halley", "nginx-fixed-200-deferred", "requests_per_s")[1]
lines.append(goal("new-connection polls per second ≥ nginx `deferred`", r, 1.0,
                  r is not None and r >= 1.0,
                  f"{r:.3f}× (round by round {rounds_text})" if r else "–"))
lines.append(goal("publish p99 under a connection flood < 2 ms", p99, 2.0,
                  p99 is not None and p99 < 2.0, f"{fmt(p99)} ms"))
lines.append(goal("fan-out server CPU per delivered frame ≤ 1.2× the bare writev", f_ratio, 1.2,
                  f_ratio is not None and f_ratio <= 1.2, f"{f_ratio:.2f}×" if f_ratio else "–"))
lines.append(goal("fan-out delivery p99 below Nchan's", h_fan, n_fan,
                  h_fan is not None and n_fan is not None and h_fan < n_fan,
                  f"{fmt(h_fan)} ms vs {fmt(n_fan)} ms"))
lines.append("")
lines += findings("limits-findings.md")
print(replace_section(doc_path, START, END, lines))
