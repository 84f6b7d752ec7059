#!/usr/bin/env python3
"""cwcreds benchmark (issue 7): the sidecar side by side with its limits, in one run.

bench/run.sh installs wrk and nginx, builds build-bench/cwcreds and calls this
file. Everything listens on 127.0.0.1 and is stopped by PID on the way out
(try/finally through an ExitStack; SIGTERM and Ctrl-C unwind it too): the HTTPS
CoreWeave emulator and the sidecar come from tests/support/cwtest.py, nginx
(Debian's nginx-light, 1 worker, `daemon off`, its own config in a temp dir)
serves the sidecar's own JSON as a static file, moto_server stands in for S3.

  a. wrk -t2 --latency against /v1/credentials, nginx and cwcreds cell by cell:
     16 and 256 connections, keep-alive and `Connection: close`.
  b. boto3 end to end: N put_object calls, each setup in a fresh Python process
     (bench/boto3_calls.py) with only a pod's environment: (i) static keys,
     (ii) cwcreds container-credentials (15-minute keys: botocore re-fetches on
     every call), (iii) cwcreds oidc --duration 1h, (iv) the seed's direct setup
     (botocore calls the emulator over HTTPS, which adds 30 ms for the network).
  c. Footprint: RSS idle and sampled under part a's load, CPU per 100,000
     requests, binary size, process start to /readyz 200.
  d. Upstream exchanges per simulated hour at 0, 10 and 10,000 requests/s:
     short credential lifetimes, scaled to CoreWeave's 15 minutes.
  e. Confined to 1 CPU: nginx (1 worker) and cwcreds each under `taskset -c 0`,
     wrk (1 thread) under `taskset -c 1`, part a's four cells; cwcreds sizes its
     loops from its affinity mask. `--baseline-bin` adds a second cwcreds build
     to the same cells, for before/after figures.

No figure is checked against a target (benchmarks report, tests assert); the
exit code is non-zero only when a part could not run or the sidecar died.

This file is the entry point: the plan, the parts in turn, the report. The
parts are in parts.py, what they share in world.py, wrk in wrk.py, nginx and
moto in servers.py, /proc readings in procfs.py, the Markdown in report.py.

    python3 bench/bench.py --bin build-bench/cwcreds [--smoke] [--parts abcde] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402
from parts import part_a, part_b, part_c_static, part_d, part_e  # noqa: E402
# webhook_bench.py takes these two from here.
from procfs import proc_cpu_seconds, proc_status  # noqa: E402,F401
from report import machine_info, render  # noqa: E402
from world import FULL, ORG, PRODUCTION_LIFETIME, REPO, SMOKE, World  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=REPO / "build-bench" / "cwcreds")
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes: for CI to keep it working")
    parser.add_argument("--parts", default="abcde", help="which parts to run (default abcde)")
    parser.add_argument("--baseline-bin", type=Path, help="part e: a second cwcreds build run in the same cells")
    parser.add_argument("--seconds", type=int, help="wrk duration per cell (default 5, smoke 1)")
    parser.add_argument("--calls", type=int, help="boto3 calls per setup (default 1000, smoke 50)")
    parser.add_argument("--out", type=Path, help="report file (default bench/RESULTS.md; "
                                                 "smoke: build-bench/RESULTS-smoke.md)")
    parser.add_argument("--command", default=None, help="the command line to record in the report")
    args = parser.parse_args()
    args.command = args.command or " ".join(["python3", "bench/bench.py", *sys.argv[1:]])
    plan = dataclasses.replace(SMOKE if args.smoke else FULL)
    if args.seconds:
        plan.wrk_seconds = args.seconds
    if args.calls:
        plan.boto_calls = args.calls
    out = args.out or (REPO / "build-bench" / "RESULTS-smoke.md" if args.smoke else REPO / "bench" / "RESULTS.md")
    args.bin = args.bin.resolve()
    if not args.bin.exists():
        print(f"bench: no binary at {args.bin} (bench/run.sh builds it)", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("bench: wrk not found (bench/run.sh installs it)", file=sys.stderr)
        return 2

    # SIGTERM unwinds like Ctrl-C, so every finally below stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    info = machine_info(args.bin)
    results: dict = {}
    problems: list = []
    failed = False
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cwcreds-bench-")))
        pki = cwtest.Pki(work / "pki")
        issuer = cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(work / "tokens")
        token = issuer.mint(lifetime=6 * 3600)
        volume.write(token)
        emulator = stack.enter_context(cwtest.Emulator(pki, issuer, lifetime=PRODUCTION_LIFETIME, org_id=ORG))
        world = World(args.bin, work, pki, issuer, volume, token, emulator,
                      args.baseline_bin.resolve() if args.baseline_bin else None)

        steps = [("a", "wrk: nginx vs cwcreds (and c under load)", part_a),
                 ("b", "boto3 end to end", part_b),
                 ("c", "binary size and start-to-ready", part_c_static),
                 ("d", "upstream exchanges per simulated hour", part_d),
                 ("e", "confined to 1 CPU: nginx vs cwcreds", part_e)]
        for key, title, function in steps:
            if key not in args.parts:
                continue
            if key == "e" and ((os.cpu_count() or 1) < 2 or shutil.which("taskset") is None):
                results["e_skipped"] = "needs 2 CPUs and taskset"
                problems.append("e: skipped: needs 2 CPUs and taskset")
                continue
            if key == "b":
                try:
                    import boto3  # noqa: F401
                    import moto.server  # noqa: F401
                except ImportError as error:
                    results["b_skipped"] = f"{error} (boto3 and moto[server] come with the machine's Python)"
                    problems.append(f"b: skipped: {error}")
                    failed = True
                    continue
            print(f"bench: {key}. {title}", flush=True)
            try:
                results[key] = function(world, plan, problems)
            except Exception:  # noqa: BLE001 - one broken part must not hide the others
                failed = True
                problems.append(f"{key}: did not complete: {traceback.format_exc(limit=3).strip()}")
                print(f"bench: part {key} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        if any("exited" in p for p in problems):
            failed = True

    report = render(args, plan, info, results, problems, started)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"\nbench: wrote {out}\n")
    print(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
