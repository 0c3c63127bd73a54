"""What the summarisers share: reading a run's JSON lines, a measure's values and
their format, and the part of docs/benchmarks.md each writes between two markers (replaced
where its markers are, or added at the end), ending with the findings written by
hand beside the scripts."""
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))


def findings(name):
    """The lines of loadtest/peers/NAME, written by hand, if it exists."""
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return []
    return [open(path).read().rstrip("\n"), ""]


def replace_section(doc_path, start, end, lines):
    """Writes LINES between START and END in DOC_PATH, replacing what was there."""
    section = "\n".join([start] + lines + [end]) + "\n"
    try:
        doc = open(doc_path).read()
    except FileNotFoundError:
        doc = ""
    if start in doc and end in doc:
        before, rest = doc.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        doc = before + section + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    open(doc_path, "w").write(doc)
    return section


def load_runs(results_path):
    """The JSON lines of RESULTS_PATH by (scenario, server), each list in the order
    the runs came."""
    runs = {}
    for line in open(results_path):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            runs.setdefault((r["scenario"], r["server"]), []).append(r)
    return runs


def values(runs, scenario, server, key):
    """KEY of every run of SERVER in SCENARIO, in the order they came."""
    return [r[key] for r in runs.get((scenario, server), []) if key in r]


def fmt(value, decimals=2):
    """A figure for a table: whole above 100, else to DECIMALS without trailing zeros."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")


def median(runs, scenario, server, key):
    """The median of KEY over the rounds, or None without a run."""
    vs = values(runs, scenario, server, key)
    return statistics.median(vs) if vs else None


def cell(runs, scenario, server, key, decimals=3):
    """A table cell: the median of the rounds and, in brackets, lowest–highest."""
    vs = values(runs, scenario, server, key)
    if not vs:
        return "–"
    return (f"{fmt(statistics.median(vs), decimals)} "
            f"({fmt(min(vs), decimals)}–{fmt(max(vs), decimals)})")


def per_round(runs, scenario, a, b, key):
    """A / B round by round (the ratios of one run), as text."""
    pairs = zip(values(runs, scenario, a, key), values(runs, scenario, b, key))
    return " ".join(f"{x / y:.2f}" for x, y in pairs if y)


def tables(runs, scenarios):
    """A table per (title, scenario, servers, [(label, key)]): a row per measure, a
    column per server that ran it."""
    lines = []
    for title, scenario, servers, metrics in scenarios:
        present = [s for s in servers if (scenario, s) in runs]
        if not present:
            continue
        lines += [f"### {title}", ""]
        lines.append("| measure | " + " | ".join(present) + " |")
        lines.append("|---|" + "---|" * len(present))
        for label, key in metrics:
            cells = " | ".join(cell(runs, scenario, s, key) for s in present)
            lines.append(f"| {label} | {cells} |")
        lines.append("")
    return lines


def goal(text, shown, met):
    """A row of a goals table."""
    return f"| {text} | {shown} | {'met' if met else '**not met**'} |"
