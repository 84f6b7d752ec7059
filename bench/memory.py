#!/usr/bin/env python3
"""Memory of `cwcreds serve` as a scheduler sees it: RSS, PSS and private dirty.

Reads /proc/PID/smaps_rollup of the real sidecar on loopback, against the
HTTPS emulator, trusting Debian's whole CA bundle as production does: the
sidecar gets --ca-file pointing at a copy of /etc/ssl/certs/ca-certificates.crt
with the emulator's test CA appended, so OpenSSL parses every certificate of
the system store (a one-certificate --ca-file understates it). Phases:

  0. for comparison, idle with a one-certificate --ca-file;
  1. idle after the first exchange;
  2. 1,000 keep-alive connections open, each after one /v1/credentials answer;
  3. after 100 connections each pipelined 70 GET /metrics (answers read), idle;
  4. with 100 connections that sent 70 pipelined GET /metrics and never read;
  5. idle again once every connection is closed.

Which figure means what (docs/performance.md): RSS counts shared library
pages once per process that maps them; PSS splits shared pages among the
processes that map them (what a node really spends per pod when many pods
share the same image layer); private dirty is memory only this process can
free: heap, stacks, buffers (what grows with load, and what the memory limit
must cover beyond the library text).

    python3 bench/memory.py [--bin build/cwcreds] [--smoke]

Everything runs on 127.0.0.1 and is stopped by PID. Nothing is asserted.
Whether freed buffers go back to the kernel after the connections close is
up to glibc's allocator, so the last rows vary from run to run.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def rollup(pid: int) -> dict:
    """smaps_rollup in MiB: Rss, Pss, Private_Dirty (and the parts of RSS)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[-1] == "kB":
            fields[key] = int(parts[0]) / 1024
    return fields


def open_connections(port: int, count: int) -> list:
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        sockets.append(s)
    return sockets


def read_answers(s: socket.socket, count: int) -> None:
    """Reads `count` HTTP answers (Content-Length framed) from one connection."""
    buffer = b""
    done = 0
    while done < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n"):
                if line.startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(buffer) >= head_end + 4 + length:
                buffer = buffer[head_end + 4 + length:]
                done += 1
                continue
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed after %d of %d answers" % (done, count))
        buffer += chunk


def request(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n\r\n").encode()


def row(label: str, pid: int) -> str:
    m = rollup(pid)
    return (f"| {label} | {m['Rss']:.1f} | {m['Pss']:.1f} | {m['Private_Dirty']:.1f} | "
            f"{m.get('Shared_Clean', 0):.1f} | {m.get('Private_Clean', 0):.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=None)
    parser.add_argument("--smoke", action="store_true", help="100 connections instead of 1,000, 10 per case")
    args = parser.parse_args()
    many, per_case = (100, 10) if args.smoke else (1000, 100)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, many + 256)), hard))

    lines = []
    with tempfile.TemporaryDirectory(prefix="cwcreds-memory-") as work:
        pki, issuer = cwtest.Pki(work), cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(Path(work) / "tokens")
        token = issuer.mint()
        volume.write(token)
        bundle = Path(work) / "system-bundle-plus-test-ca.pem"
        bundle.write_bytes(SYSTEM_BUNDLE.read_bytes() + b"\n" + Path(pki.ca_file).read_bytes())
        certificates = bundle.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
        with cwtest.Emulator(pki, issuer, lifetime=900) as emulator:
            base_args = ["--token-file", str(volume.path), "--endpoint", emulator.url_container()]
            # For comparison: the one-certificate --ca-file earlier figures used.
            with cwtest.Sidecar(base_args + ["--ca-file", pki.ca_file], bin=args.bin) as single:
                single.start(wait_ready=True)
                time.sleep(1)
                single_row = row("idle, one-certificate --ca-file (for comparison)", single._proc.pid)
            sidecar_args = base_args + ["--ca-file", str(bundle)]
            with cwtest.Sidecar(sidecar_args, bin=args.bin) as sidecar:
                sidecar.start(wait_ready=True)
                pid = sidecar._proc.pid
                port = sidecar.port
                lines.append(f"cwcreds serve, --ca-file: Debian's bundle plus the test CA ({certificates} "
                             f"certificates); MiB from /proc/PID/smaps_rollup")
                lines.append("")
                lines.append("| phase | RSS | PSS | private dirty | shared clean | private clean |")
                lines.append("|---|---:|---:|---:|---:|---:|")
                lines.append(single_row)
                time.sleep(1)
                lines.append(row("idle after the first exchange", pid))

                conns = open_connections(port, many)
                for s in conns:
                    s.sendall(request("/v1/credentials", token))
                for s in conns:
                    read_answers(s, 1)
                lines.append(row(f"{many} keep-alive connections open", pid))
                for s in conns:
                    s.close()

                pipelined = open_connections(port, per_case)
                for s in pipelined:
                    s.sendall(request("/metrics", token) * 70)
                for s in pipelined:
                    read_answers(s, 70)
                time.sleep(1)
                lines.append(row(f"{per_case} connections after 70 pipelined GET /metrics each, idle", pid))
                for s in pipelined:
                    s.close()

                stalled = open_connections(port, per_case)
                for s in stalled:
                    s.setblocking(False)
                    try:
                        s.sendall(request("/metrics", token) * 70)
                    except BlockingIOError:
                        pass
                time.sleep(1)
                lines.append(row(f"{per_case} connections that sent 70 GET /metrics and never read", pid))
                for s in stalled:
                    s.close()
                time.sleep(1)
                lines.append(row("idle after every connection closed", pid))
                lines.append(row_hwm(pid))
    print("\n".join(lines))
    return 0


def row_hwm(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return f"\npeak RSS over the run (VmHWM): {int(line.split()[1]) / 1024:.1f} MiB"
    return ""


if __name__ == "__main__":
    sys.exit(main())
