#!/usr/bin/env python3
"""Memory and CPU of `cwcreds serve`, idle and under wrk load, for sizing resources.

Starts the HTTPS emulator and the real sidecar on loopback (as
bench/wrk_credentials.py does), then reports the sidecar's resident set
(VmRSS, and the peak VmHWM), thread count and CPU time per request: idle
after the first exchange, during wrk runs with 16, 256 and 1000 connections
(keep-alive and `Connection: close`), and idle again after the serving
threads were let go. The figures size `resources:` in manifests/.

    python3 bench/rss_sidecar.py [--seconds 5] [--bin build/cwcreds]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402

CELLS = [(16, True), (16, False), (256, True), (256, False), (1000, True)]
TICKS = os.sysconf("SC_CLK_TCK")


def status(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
        elif key == "Threads":
            fields[key] = int(value)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    fields["cpu_s"] = (int(stat[11]) + int(stat[12])) / TICKS  # utime + stime
    return fields


def run_wrk(url: str, token: str, connections: int, keep_alive: bool, seconds: int, pid: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s",
               "-H", f"Authorization: {token}"]
    if not keep_alive:
        command += ["-H", "Connection: close"]
    peak = {"rss": 0.0, "threads": 0}
    done = threading.Event()

    def sample():
        while not done.wait(0.1):
            now = status(pid)
            peak["rss"] = max(peak["rss"], now["VmRSS"])
            peak["threads"] = max(peak["threads"], now["Threads"])

    before = status(pid)["cpu_s"]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = subprocess.run(command + [url], capture_output=True, text=True,
                             timeout=seconds + 30, check=True).stdout
    finally:
        done.set()
        sampler.join(timeout=2)
    cpu = status(pid)["cpu_s"] - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rss": peak["rss"], "threads": peak["threads"], "rps": requests / seconds,
            "cpu_us_per_req": cpu / max(requests, 1) * 1e6, "cpu_cores": cpu / seconds}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bin", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cwcreds-rss-") as work:
        pki, issuer = cwtest.Pki(work), cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(Path(work) / "tokens")
        token = issuer.mint()
        volume.write(token)
        with cwtest.Emulator(pki, issuer, lifetime=900) as emulator:
            sidecar_args = ["--token-file", str(volume.path), "--endpoint", emulator.url_container(),
                            "--ca-file", pki.ca_file]
            with cwtest.Sidecar(sidecar_args, bin=args.bin) as sidecar:
                sidecar.start(wait_ready=True)
                pid = sidecar._proc.pid
                time.sleep(2)
                idle = status(pid)
                print(f"idle after the first exchange: RSS {idle['VmRSS']:.1f} MiB, "
                      f"{idle['Threads']} threads")
                print()
                print("| connections | mode | requests/s | peak RSS MiB | peak threads | CPU us/request | CPU cores |")
                print("|---|---|---|---|---|---|---|")
                url = f"{sidecar.base_url}/v1/credentials"
                for connections, keep_alive in CELLS:
                    cell = run_wrk(url, token, connections, keep_alive, args.seconds, pid)
                    print(f"| {connections} | {'keep-alive' if keep_alive else 'close'} | {cell['rps']:.0f} | "
                          f"{cell['rss']:.1f} | {cell['threads']} | {cell['cpu_us_per_req']:.1f} | "
                          f"{cell['cpu_cores']:.2f} |", flush=True)
                time.sleep(12)  # idle serving threads are let go after 10 s
                after = status(pid)
                print()
                print(f"idle 12 s after the load: RSS {after['VmRSS']:.1f} MiB, {after['Threads']} threads; "
                      f"peak over the run (VmHWM) {after['VmHWM']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
