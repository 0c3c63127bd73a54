"""Writes the TLS section of docs/benchmarks.md from tls.sh's JSON lines: for each
scenario and server the median of the rounds and their spread (lowest to highest),
the ratios of one run (round by round), the goals of issue 17 checked against the
medians, then tls-findings.md. The section sits between two markers and replaces the
one there.

    summarise_tls.py RESULTS.jsonl ROUNDS REV docs/benchmarks.md
"""
import sys

import sections
from sections import findings, fmt, goal, load_runs, median, per_round, replace_section

results_path, rounds, rev, doc_path = sys.argv[1:5]
START = "<!-- tls: written by loadtest/peers/tls.sh -->"
END = "<!-- /tls -->"
runs = load_runs(results_path)

RATE = "conn-rate (new connection each)"
HOLD = "hold"
SCENARIOS = [
    ("New TLS connections, one request each (64 at a time, 5 s, full handshakes)", RATE,
     ["halley", "nginx-fixed-200", "nchan"], [
         ("connections/s", "requests_per_s"),
         ("server CPU µs/connection", "server_cpu_us_per_request"),
         ("p99 ms", "latency_p99_ms"),
         ("errors", "errors"),
     ]),
    ("Held idle SSE subscribers (10,000, each server started afresh)", HOLD,
     ["halley-tls-sse", "nchan-tls-sse", "halley-sse"], [
         ("server bytes per subscriber", "server_bytes_per_subscriber"),
         ("held", "held"),
         ("failed", "failed"),
     ]),
]

lines = ["", f"## TLS ({rev})", ""]
lines.append(
    f"`loadtest/peers/tls.sh {rounds}`: Halley's TLS port beside nginx's (two workers, "
    "OpenSSL), the same ECDSA P-256 certificate and TLS 1.3 for both, measured by the same "
    f"`halley-load` in one run, {rounds} rounds, the order of the servers turning each "
    "round. The client offers X25519 first and resumes no session. Each cell is the "
    "median of the rounds and, in brackets, the lowest and highest. Memory is the growth "
    "of the server's resident set (all its processes) over the subscribers held, "
    "divided by their number."
)
lines.append("")
lines += sections.tables(runs, SCENARIOS)

rate, cpu, mem = "requests_per_s", "server_cpu_us_per_request", "server_bytes_per_subscriber"
h_rate, n_rate = median(runs, RATE, "halley", rate), median(runs, RATE, "nginx-fixed-200", rate)
h_cpu, n_cpu = median(runs, RATE, "halley", cpu), median(runs, RATE, "nginx-fixed-200", cpu)
h_mem = median(runs, HOLD, "halley-tls-sse", mem)
n_mem = median(runs, HOLD, "nchan-tls-sse", mem)
plain = median(runs, HOLD, "halley-sse", mem)

lines += ["### Against the goals of issue 17 (medians above)", ""]
lines += ["| goal | measured | |", "|---|---|---|"]
if h_rate is not None and n_rate is not None:
    lines.append(goal("new TLS connections per second at least nginx's",
                      f"{fmt(h_rate)} vs {fmt(n_rate)} (round by round "
                      f"{per_round(runs, RATE, 'halley', 'nginx-fixed-200', rate)})",
                      h_rate >= n_rate))
if h_cpu is not None and n_cpu is not None:
    lines.append(goal("… at no more server CPU per handshake than nginx's",
                      f"{fmt(h_cpu)} vs {fmt(n_cpu)} µs (round by round "
                      f"{per_round(runs, RATE, 'halley', 'nginx-fixed-200', cpu)})",
                      h_cpu <= n_cpu))
if h_mem is not None:
    lines.append(goal("memory per held idle SSE-over-TLS subscriber ≤ 2 KiB",
                      f"{fmt(h_mem)} B (Nchan over TLS: {fmt(n_mem)} B; Halley's plain "
                      f"SSE: {fmt(plain)} B)", h_mem <= 2048))
lines.append("")
lines += findings("tls-findings.md")
print(replace_section(doc_path, START, END, lines))
