#!/usr/bin/env python3
"""Run the CoreWeave upstream emulator on its own, for demos and manual testing.

It sets up everything a `cwcreds serve` needs on one machine: a throw-away CA
and server certificate, a token issuer, a kubelet-style token directory with a
fresh token, and the HTTPS emulator on 127.0.0.1. It prints the exact sidecar
command line, logs every exchange, and rotates the token on SIGHUP (or every
`--rotate-every` seconds) the way kubelet would, so a demo can show rotation.

Faults and settings are driven over the loopback control API, e.g.:

    curl --cacert DIR/ca.pem -d '{"status": 503, "count": 3}' https://127.0.0.1:PORT/_emulator/fault
    curl --cacert DIR/ca.pem -d '{"lifetime": 120}' https://127.0.0.1:PORT/_emulator/config
    curl --cacert DIR/ca.pem https://127.0.0.1:PORT/_emulator/exchanges

Usage: python3 tests/support/cw_emulator.py [--port 8443] [--dir DIR] [--exchange oidc] ...
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cwtest  # noqa: E402 - needs the path above


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--dir", help="where to write ca.pem and tokens/ (default: a new temp dir)")
    parser.add_argument("--org-id", default="cw-test-org")
    parser.add_argument("--issuer", default="https://oidc.cwcreds-test.invalid/abc123")
    parser.add_argument("--sub", default="system:serviceaccount:default:app", help="token subject")
    parser.add_argument("--lifetime", type=float, default=900,
                        help="credential lifetime in container-credentials mode, seconds (default 900)")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--rotate-every", type=float, default=0,
                        help="rotate the token this often, seconds (0: only on SIGHUP)")
    parser.add_argument("--expiration-format", choices=("plain", "fraction", "offset"), default="plain")
    parser.add_argument("--exchange", choices=(cwtest.MODE_CONTAINER, cwtest.MODE_OIDC),
                        default=cwtest.MODE_CONTAINER, help="mode for the printed sidecar command")
    return parser.parse_args()


def describe(record: cwtest.Exchange) -> str:
    """One log line per exchange; secrets are cut short even in a demo."""
    key = (record.access_key_id or "")[:8] + "…" if record.access_key_id else "-"
    parts = [
        time.strftime("%H:%M:%S", time.localtime(record.time)),
        record.mode,
        str(record.status if record.status is not None else "no-answer"),
        f"sub={record.sub or '-'}",
        f"jti={(record.jti or '-')[:8]}",
        f"key={key}",
        f"expires={record.expiration or '-'}",
    ]
    if record.fault:
        parts.append(f"fault={record.fault}")
    if record.error:
        parts.append(f"error={record.error!r}")
    return " ".join(parts)


def main() -> int:
    args = parse_args()
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cw-emulator-"))
    directory.mkdir(parents=True, exist_ok=True)

    pki = cwtest.Pki(directory)
    issuer = cwtest.Issuer(args.issuer)
    tokens = cwtest.KubeletTokenDir(directory / "tokens")
    tokens.write(issuer.mint(sub=args.sub, lifetime=args.token_lifetime))

    emulator = cwtest.Emulator(pki, issuer, lifetime=args.lifetime, org_id=args.org_id, port=args.port)
    emulator.expiration_format = args.expiration_format
    emulator.on_exchange = lambda record: print(describe(record), flush=True)
    emulator.start()

    endpoint = emulator.url_oidc() if args.exchange == cwtest.MODE_OIDC else emulator.url_container()
    command = [str(cwtest.cwcreds_bin()), "serve", "--exchange", args.exchange,
               "--org-id", args.org_id, "--endpoint", endpoint, "--ca-file", str(pki.ca_file),
               "--token-file", str(tokens.path), "--listen", "127.0.0.1:9911"]
    print(f"emulator   {emulator.base_url} (org {args.org_id}, pid {os.getpid()})")
    print(f"files      {directory}")
    print(f"token      {tokens.path}  (kill -HUP {os.getpid()} rotates it)")
    print(f"sidecar    {shlex.join(command)}")
    print(f"control    curl --cacert {shlex.quote(str(pki.ca_file))} {emulator.base_url}/_emulator/exchanges")
    print(flush=True)

    # Signals only note what was asked and wake the main loop, which does the
    # work: nothing heavy runs inside a signal handler.
    wake = threading.Event()
    requested = {"stop": False, "rotate": False}

    def on_signal(signum, _frame):
        requested["rotate" if signum == signal.SIGHUP else "stop"] = True
        wake.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    next_rotation = time.monotonic() + args.rotate_every if args.rotate_every > 0 else None
    while not requested["stop"]:
        wake.wait(None if next_rotation is None else max(0.0, next_rotation - time.monotonic()))
        wake.clear()
        due = next_rotation is not None and time.monotonic() >= next_rotation
        if requested["stop"]:
            break
        if requested["rotate"] or due:
            requested["rotate"] = False
            tokens.write(issuer.mint(sub=args.sub, lifetime=args.token_lifetime))
            print(f"{time.strftime('%H:%M:%S')} token rotated -> {tokens.current_dir.name}", flush=True)
            if next_rotation is not None:
                next_rotation = time.monotonic() + args.rotate_every

    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
