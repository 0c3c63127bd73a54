"""The parts of docs/benchmarks.md that a script writes between two markers, shared
by summarise_storage.py and summarise_compare.py: a section is replaced where its
markers are (or added at the end), and ends with the findings written by hand
beside the scripts."""
import os

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
