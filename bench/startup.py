#!/usr/bin/env python3
"""Start to first credential: `cwcreds serve` started N times against an
upstream that answers after 50 ms, split by the sidecar's own log timestamps.

  process start  from spawning the process to its first log line
  token read     from the first log line to `token loaded`
  exchange       from `token loaded` to `exchange ok` (TLS handshake, the
                 upstream's 50 ms, parsing, publishing the keys)
  total          from spawning to `exchange ok`

Log lines carry millisecond UTC timestamps (the sidecar runs with
--log-level debug so every split point is logged); the spawn instant is this
script's clock just before the fork, on the same machine. Every sidecar is
stopped by PID before the next starts. Nothing is asserted.

    python3 bench/startup.py [--bin build/cwcreds] [--starts 100] [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\w+) (.*)$")


def stamp(line: str) -> float:
    match = STAMP.match(line)
    return dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=dt.timezone.utc).timestamp()


def first(lines: list, event: str) -> float:
    for line in lines:
        match = STAMP.match(line)
        if match and match.group(3).startswith(event):
            return stamp(line)
    raise RuntimeError(f"no '{event}' line in:\n" + "\n".join(lines[-10:]))


def percentile(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=None)
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=50)
    args = parser.parse_args()

    spans = {"process start": [], "token read": [], "exchange": [], "total": []}
    with cwtest.TempDir() as work:
        pki, issuer = cwtest.Pki(work), cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(Path(work) / "tokens")
        volume.write(issuer.mint())
        with cwtest.Emulator(pki, issuer, lifetime=900) as emulator:
            emulator.delay = args.delay_ms / 1000
            for _ in range(args.starts):
                sidecar = cwtest.Sidecar(["--token-file", str(volume.path), "--endpoint", emulator.url_container(),
                                          "--ca-file", pki.ca_file, "--log-level", "debug"], bin=args.bin)
                with sidecar:
                    spawned = time.time()
                    sidecar.start()
                    sidecar.wait_for_log(re.compile(r" exchange ok "), timeout=10)
                    lines = list(sidecar._lines)
                began = stamp(next(line for line in lines if STAMP.match(line)))
                loaded = first(lines, "token loaded")
                ok = first(lines, "exchange ok")
                spans["process start"].append(began - spawned)
                spans["token read"].append(loaded - began)
                spans["exchange"].append(ok - loaded)
                spans["total"].append(ok - spawned)

    print(f"{args.starts} starts of cwcreds serve, upstream answering after {args.delay_ms:g} ms (ms)")
    print()
    print("| span | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for name, values in spans.items():
        ms = [v * 1000 for v in values]
        print(f"| {name} | {statistics.median(ms):.1f} | {percentile(ms, 0.99):.1f} | {max(ms):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
