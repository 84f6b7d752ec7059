#!/usr/bin/env python3
"""The house rules of the source tree, checked from the files themselves.

1. Arrows point down. Each folder may include only the folders below it
   (ALLOWED); app/ sits on top and may include anything. A job never includes
   app/, and exchanging never depends on serving.
2. No cycles between source files.
3. No source file over 600 lines unless its opening lines say why, in a line
   containing "longer than 600 lines".

Prints each breach and exits 1 when there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# folder -> the folders its files may include (besides themselves).
ALLOWED = {
    "common": set(),
    "sidecar/exchange": {"common"},
    "sidecar/serve": {"common", "sidecar/exchange"},
    "sidecar/inspect": {"common", "sidecar/exchange"},
    "inject": {"common"},
    "webhook": {"common", "inject"},
}
TOP = "app"
SOURCE_SUFFIXES = {".cpp", ".hpp"}
LENGTH_CHECKED = {".cpp", ".hpp", ".py", ".sh", ".mjs"}
LENGTH_DIRS = ["app", "common", "sidecar", "inject", "webhook", "tests", "bench", "scripts"]
MAX_LINES = 600
SKIPPED_PARTS = {"node_modules", "fixtures", "corpus"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(relative):
    """The rule folder a source file belongs to, or None outside them."""
    text = relative.as_posix()
    for folder in sorted(list(ALLOWED) + [TOP], key=len, reverse=True):
        if text.startswith(folder + "/"):
            return folder
    return None


def source_files():
    for folder in list(ALLOWED) + [TOP]:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in SOURCE_SUFFIXES:
                yield path.relative_to(ROOT)


def main():
    problems = []
    graph = {}
    files = list(source_files())
    for relative in files:
        own = folder_of(relative)
        includes = [pathlib.PurePosixPath(i) for i in INCLUDE.findall((ROOT / relative).read_text())]
        graph[relative.as_posix()] = [i.as_posix() for i in includes if (ROOT / i).exists()]
        if own == TOP:
            continue
        for included in includes:
            other = folder_of(included)
            if other is None or other == own:
                continue
            if other not in ALLOWED[own]:
                problems.append("%s includes %s: %s may not depend on %s" % (relative, included, own, other))

    # Cycles, by depth-first search over the file graph.
    state = {}
    def visit(node, path):
        state[node] = "open"
        for child in graph.get(node, []):
            if state.get(child) == "open":
                problems.append("include cycle: " + " -> ".join(path[path.index(child):] + [child]))
            elif child not in state:
                visit(child, path + [child])
        state[node] = "done"
    for node in graph:
        if node not in state:
            visit(node, [node])

    checked = 0
    for folder in LENGTH_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in LENGTH_CHECKED or SKIPPED_PARTS & set(path.parts):
                continue
            checked += 1
            lines = path.read_text(errors="replace").splitlines()
            head = "\n".join(lines[:30]).lower()
            if len(lines) > MAX_LINES and "longer than 600 lines" not in head:
                problems.append("%s: %d lines, and its opening lines do not say why it is longer than %d"
                                % (path.relative_to(ROOT), len(lines), MAX_LINES))

    for problem in problems:
        print(problem)
    print("layout: %d source files' includes, %d files' lengths checked, %d problems"
          % (len(files), checked, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
