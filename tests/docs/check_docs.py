#!/usr/bin/env python3
"""Docs check (CTest `docs.names`, label docs): every name the docs give exists.

A newcomer copies flags, metric names, endpoint paths, annotations and file
paths straight out of README.md, docs/*.md and manifests/README.md; a name
that no longer exists fails them far from the cause. This fails when a doc
names one that does not exist:

- a flag (`--x`): in a command or code span run by `cwcreds` (per
  subcommand when one is named) or in prose, against `cwcreds SUB --help` of
  the built binary (CWCREDS_BIN, else build/cwcreds) or, without a binary, the
  settings table in app/config.cpp. Flags in commands of other programs
  (kubectl, aws, podman, ...) are theirs, not checked; those of a repository
  script (`bash scripts/x.sh --y`) must appear in that script;
- a metric (`cwcreds_...`): against the names the sidecar's and the
  webhook's /metrics write (sidecar/serve/metrics.cpp, webhook/*.cpp);
- an endpoint path (`/v1/...`, `/latest/...`, `/healthz`, ...): against the
  paths the servers route (string literals in sidecar/ and webhook/);
- an annotation or label `cwcreds.coreweave.com/...`: against inject/,
  webhook/ and manifests/components/;
- a test named in code (`test_x`, `x_test`, `fuzz_x`, as the failure table
  cites them): against tests/*/test_x.py, tests/unit/**/x_test.cpp and
  tests/fuzz/fuzz_x.cpp;
- a repository file or directory, and a relative link with its #anchor:
  against `git ls-files` (untracked files too, so a new page counts before
  it is committed), plus build outputs under build*/.

`--self-test` feeds it a page of made-up names and fails unless each is
caught, and a page of real ones and fails unless it passes.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ["serve", "exchange", "credential-process", "inspect", "inject", "webhook"]
GLOBAL_FLAGS = {"--help", "--version"}


# Programs whose flags are their own business: commands of theirs are not checked.
OTHER_PROGRAMS = {
    "apt", "apt-get", "aws", "bash", "cat", "cmake", "cp", "ctest", "curl", "docker", "git", "go", "grep",
    "helm", "jq", "kubectl", "kustomize", "ls", "make", "node", "npm", "openssl", "podman", "printenv",
    "promtool", "python3", "rclone", "restic", "s5cmd", "sed", "sh", "slowhttptest", "strip", "sudo", "ulimit",
    "wc", "wrk", "xargs",
}
TOP_DIRS = ("app", "common", "sidecar", "inject", "webhook", "tests", "scripts", "bench", "manifests", "docs", ".ci")
TOP_FILES = ("README.md", "ARCHITECTURE.md", "Dockerfile", "CMakeLists.txt", ".dockerignore")
BUILD_OUTPUTS = ("build/", "build-", ".ccache/")

FLAG = re.compile(r"(?<![\w/.-])(--[a-z][a-z0-9-]*)")
METRIC = re.compile(r"(?<![\w-])(cwcreds_[a-z0-9_]+)")
ENDPOINT = re.compile(r"(?<![\w.:/-])(/(?:v1|latest)(?:/[a-z0-9._-]+)*/?|/(?:healthz|readyz|startupz|metrics|mutate)\b)")
ANNOTATION = re.compile(r"(?<![\w/.-])(cwcreds\.coreweave\.com/[a-z0-9-]+)")
PATH = re.compile(
    r"(?<![\w./~:@-])((?:" + "|".join(re.escape(d) for d in TOP_DIRS) + r")/[A-Za-z0-9_.*/<>-]*[A-Za-z0-9_*>]"
    r"|(?:" + "|".join(re.escape(f) for f in TOP_FILES) + r")(?![\w.-]))")
TEST_NAME = re.compile(r"`(test_[a-z0-9_]+|[a-z0-9_]+_test|fuzz_[a-z0-9_]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SPAN = re.compile(r"`([^`]+)`")


class Facts:
    """What exists: read from the binary, the sources and git."""

    def __init__(self, binary: Path | None):
        self.flags = self._flags(binary)
        src = lambda *globs: "".join(p.read_text() for g in globs for p in sorted(REPO.glob(g)))
        metrics_src = src("sidecar/serve/metrics.cpp", "webhook/*.cpp")
        self.metrics = set(re.findall(r'(cwcreds_[a-z0-9_]+)', metrics_src))
        self.metrics |= {m + s for m in list(self.metrics) for s in ("_bucket", "_sum", "_count")}
        routes = set(re.findall(r'"(/[a-z0-9._/-]*)"', src("sidecar/serve/*.cpp", "webhook/*.cpp")))
        self.endpoints = {r.rstrip("/") for r in routes if r.startswith(("/v1", "/latest", "/healthz", "/readyz",
                                                                          "/startupz", "/metrics", "/mutate"))}
        self.annotations = set(re.findall(r"(cwcreds\.coreweave\.com/[a-z0-9-]+)",
                                          src("inject/*.?pp", "webhook/*.?pp", "manifests/components/*/*.yaml")))
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.split()
        self.files = {f for f in listed if (REPO / f).exists()}
        self.dirs = {str(Path(f).parent.joinpath(*[]).as_posix()) for f in self.files}
        for f in list(self.files):
            parts = Path(f).parts
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))
        # Docs name a Python test method as well as a test file.
        self.test_functions = set(re.findall(r"^\s*def (test_[a-z0-9_]+)\(", src("tests/**/*.py"), re.MULTILINE))

    @staticmethod
    def _flags(binary: Path | None) -> dict[str, set[str]]:
        if binary is not None and binary.is_file():
            flags = {}
            for sub in SUBCOMMANDS:
                out = subprocess.run([str(binary), sub, "--help"], capture_output=True, text=True, timeout=10)
                flags[sub] = set(FLAG.findall(out.stdout + out.stderr))
            return flags
        # No binary: the settings table every subcommand's parser is built from.
        text = (REPO / "app/config.cpp").read_text()
        every = set(re.findall(r'Setting\{"(--[a-z0-9-]+)"', text))
        return {sub: every for sub in SUBCOMMANDS}

    def all_flags(self) -> set[str]:
        return set().union(*self.flags.values()) | GLOBAL_FLAGS

    def path_exists(self, path: str) -> bool:
        path = path.rstrip("/")
        if path.startswith(BUILD_OUTPUTS):
            return True
        # <NAME> and ALL-CAPS segments are placeholders; * is a glob.
        pattern = re.sub(r"<[^>]*>|\b[A-Z][A-Z0-9_-]+\b(?=[./]|$)", "*", path)
        if "*" not in pattern:
            return pattern in self.files or pattern in self.dirs
        return any(fnmatch.fnmatchcase(f, pattern) for f in self.files | self.dirs)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_\[\]()]|<[^>]*>", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    text = path.read_text()
    found = set(re.findall(r'<a id="([^"]+)"', text))
    seen: dict[str, int] = {}
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(r"#{1,6} ", line):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def blocks(text: str):
    """(line, kind, text): prose paragraphs joined into one line, and fenced code lines.

    kind is 'prose', 'shell' (a command in a sh/bash/console fence, continuation
    lines joined) or 'code' (any other fence: output, YAML, JSON)."""
    lines = text.splitlines()
    i = 0
    para: list[str] = []
    start = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"\s*```(\w*)", line)
        if fence:
            if para:
                yield start, "prose", " ".join(para)
                para = []
            lang = fence.group(1)
            kind = "shell" if lang in ("sh", "bash", "console", "shell") else "code"
            i += 1
            pending = ""
            while i < len(lines) and not re.match(r"\s*```", lines[i]):
                cur = lines[i]
                if kind == "shell" and cur.rstrip().endswith("\\"):
                    pending += cur.rstrip()[:-1] + " "
                elif kind == "shell" and pending and cur.lstrip().startswith("|"):
                    pending += cur + " "
                else:
                    yield i + 1, kind, pending + cur
                    pending = ""
                i += 1
            i += 1
            continue
        if line.strip():
            if not para:
                start = i + 1
            para.append(line.strip())
        elif para:
            yield start, "prose", " ".join(para)
            para = []
        i += 1
    if para:
        yield start, "prose", " ".join(para)


def command_segments(command: str):
    """(program, subcommand, script, text) for each piece of a shell line."""
    command = re.sub(r"\s#\s.*$", "", command)  # a trailing comment
    # `kubectl exec POD -- cwcreds ...`: what follows a lone -- is a command of its own.
    for piece in re.split(r"\|\||&&|[|;]|\$\(|\s--\s", command):
        try:
            words = shlex.split(piece, comments=False)
        except ValueError:
            words = piece.split()
        while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in ("sudo", "exec", "(")):
            words = words[1:]
        if not words:
            continue
        program = Path(words[0]).name
        sub = words[1] if program == "cwcreds" and len(words) > 1 and words[1] in SUBCOMMANDS else None
        script = None
        if program in ("bash", "sh", "python3") and len(words) > 1 and "/" in words[1]:
            script = words[1]
        elif "/" in words[0] and words[0].endswith((".sh", ".py")):
            script = words[0]
        yield program, sub, script, piece


class Checker:
    def __init__(self, facts: Facts):
        self.facts = facts
        self.problems: list[str] = []

    def report(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def check_flags(self, where: str, text: str, program: str | None, sub: str | None, script: str | None) -> None:
        for flag in FLAG.findall(text):
            flag = flag.split("=")[0]
            if script:
                script_path = REPO / script
                if script_path.is_file() and flag in script_path.read_text():
                    continue
                if not script_path.is_file():
                    continue  # the missing script is reported as a path
                self.report(where, f"flag {flag} is not one {script} takes")
                continue
            if program is not None and program != "cwcreds":
                continue
            known = self.facts.flags.get(sub, set()) | GLOBAL_FLAGS if sub else self.facts.all_flags()
            if flag in known:
                continue
            self.report(where, f"flag {flag} is not a flag of cwcreds {sub or ''}".rstrip())

    def check_shell(self, where: str, line: str) -> None:
        for program, sub, script, piece in command_segments(line):
            if program in OTHER_PROGRAMS and script is None:
                continue
            if program == "cwcreds" or script or program.startswith("-"):
                self.check_flags(where, piece, "cwcreds" if program.startswith("-") else program, sub, script)
            # Any other word first (a placeholder, a path): not a command of ours.

    def check_prose(self, where: str, text: str) -> None:
        spans = SPAN.findall(text)
        for span in spans:
            segments = list(command_segments(span))
            if not segments:
                continue
            program, _, _, _ = segments[0]
            if program in OTHER_PROGRAMS or program == "cwcreds" or program.endswith((".sh", ".py")):
                self.check_shell(where, span)
            else:
                self.check_flags(where, span, None, None, None)
        # Flags in the prose itself, outside any code span.
        self.check_flags(where, SPAN.sub(" ", text), None, None, None)

    def check_names(self, where: str, text: str, doc: Path) -> None:
        for metric in METRIC.findall(text):
            if metric not in self.facts.metrics:
                self.report(where, f"metric {metric} is not exported")
        for endpoint in ENDPOINT.findall(text):
            if endpoint.rstrip("/") not in self.facts.endpoints:
                self.report(where, f"endpoint {endpoint} is not served")
        for annotation in ANNOTATION.findall(text):
            if annotation not in self.facts.annotations:
                self.report(where, f"annotation {annotation} is not read or written anywhere")
        for test in TEST_NAME.findall(text):
            stem = Path(test).name
            if stem in self.facts.test_functions:
                continue
            if not any(Path(f).stem == stem and f.startswith("tests/") for f in self.facts.files):
                self.report(where, f"test {test} is not in tests/")
        for path in PATH.findall(text):
            if not self.facts.path_exists(path):
                self.report(where, f"file {path} is not in the repository")

    def check_links(self, where: str, text: str, doc: Path) -> None:
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = doc if not file_part else (doc.parent / file_part).resolve()
            try:
                rel = resolved.relative_to(REPO).as_posix()
            except ValueError:
                self.report(where, f"link {target} leaves the repository")
                continue
            if file_part and not self.facts.path_exists(rel):
                self.report(where, f"link {target}: {rel} is not in the repository")
                continue
            if anchor and resolved.suffix == ".md" and resolved.is_file() and anchor not in anchors_of(resolved):
                self.report(where, f"link {target}: no heading #{anchor} in {rel}")

    def check_doc(self, doc: Path, name: str) -> None:
        text = doc.read_text()
        for line, kind, block in blocks(text):
            where = f"{name}:{line}"
            self.check_names(where, block, doc)
            if kind == "prose":
                self.check_links(where, block, doc)
                self.check_prose(where, block)
            elif kind == "shell":
                self.check_shell(where, block)


def docs_to_check() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "manifests/README.md"]


def self_test(facts: Facts) -> int:
    bad = """# A page of made-up names

Run `cwcreds serve --no-such-flag` and watch `cwcreds_no_such_metric`.
The sidecar answers `/v1/nothing`; annotate `cwcreds.coreweave.com/no-such-annotation`;
see `scripts/no-such-script.sh`, `test_no_such_suite` and [a page](no-such-page.md), or [a section](#no-such-section).

```sh
kubectl exec pod -c cwcreds -- cwcreds inspect --sidecar http://127.0.0.1:9911 --listen 0.0.0.0:1
bash scripts/test.sh --no-such-mode
```
"""
    good = """# A page of real names

Run `cwcreds serve --org-id X` and watch `cwcreds_ready` and `cwcreds_exchange_duration_seconds_bucket`.
The sidecar answers `/v1/credentials` and `/healthz`; annotate `cwcreds.coreweave.com/guaranteed`;
see `scripts/test.sh`, `test_clocks`, `test_go_sdk_v1_imds`, `caller_auth_test`, `manifests/example`, `tests/manifests/*.test.mjs`, `build/cwcreds` and [the top](#a-page-of-real-names).
The token lives at `/var/run/secrets/cwcreds.coreweave.com/serviceaccount`.

```sh
kubectl apply --validate=strict -k manifests/example
kubectl exec pod -c cwcreds -- cwcreds inspect --sidecar http://127.0.0.1:9911 --json
bash scripts/test.sh --quick
```
"""
    expected = ["--no-such-flag", "cwcreds_no_such_metric", "/v1/nothing", "cwcreds.coreweave.com/no-such-annotation",
                "scripts/no-such-script.sh", "test_no_such_suite", "no-such-page.md", "#no-such-section", "flag --listen",
                "--no-such-mode"]
    failures = 0
    with tempfile.TemporaryDirectory(dir=REPO / "docs") as scratch:
        for name, text in (("bad.md", bad), ("good.md", good)):
            page = Path(scratch) / name
            page.write_text(text)
            checker = Checker(facts)
            checker.check_doc(page, name)
            found = "\n".join(checker.problems)
            if name == "good.md" and checker.problems:
                print(f"self-test: real names reported:\n{found}")
                failures += 1
            if name == "bad.md":
                for needle in expected:
                    if needle not in found:
                        print(f"self-test: {needle} was not caught")
                        failures += 1
                print(found)
    print("self-test:", "FAILED" if failures else "every made-up name caught, every real one passed")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="prove the check catches made-up names")
    parser.add_argument("--bin", default=os.environ.get("CWCREDS_BIN", str(REPO / "build/cwcreds")))
    args = parser.parse_args()
    binary = Path(args.bin)
    facts = Facts(binary if binary.is_file() else None)
    source = f"flags from {binary}" if binary.is_file() else "flags from app/config.cpp (no binary)"
    if args.self_test:
        return self_test(facts)
    checker = Checker(facts)
    docs = docs_to_check()
    for doc in docs:
        checker.check_doc(doc, doc.relative_to(REPO).as_posix())
    for problem in checker.problems:
        print(problem)
    print(f"docs check: {len(docs)} pages, {source}: "
          + (f"{len(checker.problems)} problem(s)" if checker.problems else "every name exists"))
    return 1 if checker.problems else 0


if __name__ == "__main__":
    sys.exit(main())
