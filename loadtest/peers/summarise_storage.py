"""Writes the storage section of docs/benchmarks.md from storage.sh's JSON lines: per
measurement the median of the runs, and Halley's ratio to the Redis policy it is
compared with, then storage-findings.md. The section sits between two markers and
replaces the one there.

    summarise_storage.py RESULTS.jsonl REPEAT docs/benchmarks.md
"""
import statistics
import sys

from sections import findings, load_runs, replace_section

results_path, repeat, doc_path = sys.argv[1], sys.argv[2], sys.argv[3]
START = "<!-- storage: written by loadtest/peers/storage.sh -->"
END = "<!-- /storage -->"

runs = load_runs(results_path)


def median(scenario, server, key):
    values = [r[key] for r in runs.get((scenario, server), []) if key in r]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"


PAIRS = [("always", "always"), ("batch", "everysec"), ("never", "no")]
lines = ["", "## Durable log (`--data-dir`) beside Redis", ""]
lines.append(
    f"`loadtest/peers/storage.sh {repeat}`: medians of {repeat} runs of 5 s each, Halley and "
    "Redis interleaved, both with their data under /tmp on the same ext4 disk. 16 publishers, "
    "each on its own keep-alive connection and waiting for each answer, 200-byte messages; "
    "Halley `POST /pub/{channel}` (answered `201` only once stored), Redis "
    "`XADD {channel} * data PAYLOAD` (append-only file on). `--fsync batch` is compared with "
    "`appendfsync everysec`, `--fsync never` with `appendfsync no`."
)
lines.append("")
for channels in (16, 1):
    lines.append(f"### Over {channels} channel{'s' if channels > 1 else ''}")
    lines.append("")
    lines.append("| Halley `--fsync` | publishes/s | p50 ms | p99 ms | Redis `appendfsync` | publishes/s | p50 ms | p99 ms | Halley / Redis |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for mode, policy in PAIRS:
        h = f"halley-{mode}-{channels}"
        r = f"redis-{policy}-{channels}"
        hr = median("publish-rate", h, "publishes_per_s")
        rr = median("publish-rate", r, "publishes_per_s")
        ratio = f"{hr / rr:.2f}×" if hr and rr else "–"
        lines.append(
            f"| {mode} | {fmt(hr)} | {fmt(median('publish-rate', h, 'publish_p50_ms'), 2)} | "
            f"{fmt(median('publish-rate', h, 'publish_p99_ms'), 2)} | {policy} | {fmt(rr)} | "
            f"{fmt(median('publish-rate', r, 'publish_p50_ms'), 2)} | "
            f"{fmt(median('publish-rate', r, 'publish_p99_ms'), 2)} | {ratio} |"
        )
    lines.append("")
lines.append("### Catch-up")
lines.append("")
lines.append(
    "A channel of 100,000 messages of 200 bytes, read from the start on one connection: "
    "Halley `t=stream&since=0` (the last 1,000 in memory, the rest read from the log by the "
    "catch-up thread), Redis `XRANGE` pages of 1,000 (Redis serves from memory)."
)
lines.append("")
lines.append("| server | seconds | events/s | MiB/s on the wire |")
lines.append("|---|---|---|---|")
for server in ("halley", "redis"):
    lines.append(
        f"| {server} | {fmt(median('catchup', server, 'catchup_s'), 3)} | "
        f"{fmt(median('catchup', server, 'events_per_s'))} | {fmt(median('catchup', server, 'mib_per_s'), 1)} |"
    )
lines.append("")
# What we found, written by hand beside this script, follows the figures.
lines += findings("storage-findings.md")
print(replace_section(doc_path, START, END, lines))
