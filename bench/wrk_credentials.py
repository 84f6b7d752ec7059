#!/usr/bin/env python3
"""wrk against /v1/credentials: 16 and 256 connections, keep-alive and close.

Starts the HTTPS emulator and the real sidecar on loopback, runs each wrk
cell for a bounded time, prints a Markdown table, and stops what it started.

    python3 bench/wrk_credentials.py [--seconds 5] [--bin build/cwcreds]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402

CELLS = [(16, True), (16, False), (256, True), (256, False)]


def to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, token: str, connections: int, keep_alive: bool, seconds: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "2s",
               "-H", f"Authorization: {token}"]
    if not keep_alive:
        command += ["-H", "Connection: close"]
    out = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"99%\s+(\S+)", out).group(1)),
        "errors": sum(int(n) for n in errors.groups()) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bin", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cwcreds-bench-") as work:
        pki, issuer = cwtest.Pki(work), cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(Path(work) / "tokens")
        token = issuer.mint()
        volume.write(token)
        with cwtest.Emulator(pki, issuer, lifetime=3600) as emulator:
            sidecar_args = ["--token-file", str(volume.path), "--endpoint", emulator.url_container(),
                            "--ca-file", pki.ca_file]
            with cwtest.Sidecar(sidecar_args, bin=args.bin) as sidecar:
                sidecar.start(wait_ready=True)
                url = f"{sidecar.base_url}/v1/credentials"
                print("| connections | mode | requests/s | p50 ms | p99 ms | socket errors | non-2xx |")
                print("|---|---|---|---|---|---|---|")
                for connections, keep_alive in CELLS:
                    cell = run_wrk(url, token, connections, keep_alive, args.seconds)
                    print(f"| {connections} | {'keep-alive' if keep_alive else 'close'} | {cell['rps']:.0f} | "
                          f"{cell['p50']:.3f} | {cell['p99']:.3f} | {cell['errors']} | {cell['non2xx']} |")
                print(f"\nupstream exchanges during the run: {len(emulator.successful_exchanges())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
