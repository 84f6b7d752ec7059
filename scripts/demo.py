#!/usr/bin/env python3
"""What cwcreds does, in a minute, on one machine.

Starts the CoreWeave emulator (HTTPS, with a CA made on the spot), writes a
kubelet-style projected token volume, runs the real `cwcreds serve`, fetches
credentials with curl exactly as an SDK would, rotates the token, waits for a
refresh, and stops everything it started. Secrets are masked in what it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402

LIFETIME = 40  # seconds: short, so a refresh happens during the demo


def mask(value: str) -> str:
    return value[:4] + "…" + value[-4:] if len(value) > 12 else "…"


def fetch(sidecar: cwtest.Sidecar, token_file: str) -> dict:
    """GET /v1/credentials with curl, sending the token file like an SDK."""
    token = Path(token_file).read_text()
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "2", "-H", f"Authorization: {token}", f"{sidecar.base_url}/v1/credentials"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def show(label: str, credentials: dict) -> None:
    expires = credentials["Expiration"]
    left = time.mktime(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    print(f"  {label}: AccessKeyId={mask(credentials['AccessKeyId'])} SecretAccessKey=<{len(credentials['SecretAccessKey'])} chars> "
          f"Token={credentials['Token']!r} Expiration={expires} ({left:.0f}s left)")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cwcreds-demo-") as work:
        pki = cwtest.Pki(work)
        issuer = cwtest.Issuer()
        volume = cwtest.KubeletTokenDir(Path(work) / "tokens")
        volume.write(issuer.mint(sub="system:serviceaccount:default:demo-app"))
        with cwtest.Emulator(pki, issuer, lifetime=LIFETIME) as emulator:
            print(f"1. CoreWeave emulator on {emulator.base_url} (keys live {LIFETIME}s here; 15 min at CoreWeave)")
            print(f"   token volume {volume.dir} (kubelet layout: ..data -> timestamped dir)")
            args = ["--token-file", str(volume.path), "--endpoint", emulator.url_container(),
                    "--ca-file", pki.ca_file]
            with cwtest.Sidecar(args) as sidecar:
                started = time.monotonic()
                sidecar.start(wait_ready=True)
                print(f"2. cwcreds serve on {sidecar.base_url}, ready in {1000 * (time.monotonic() - started):.0f} ms")
                print(f"   an app sets AWS_CONTAINER_CREDENTIALS_FULL_URI={sidecar.base_url}/v1/credentials")
                print(f"               AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={volume.path}")
                first = fetch(sidecar, volume.path)
                show("curl /v1/credentials", first)

                print("3. kubelet rotates the token (new ..data directory, symlink swapped)")
                mark = sidecar.mark()
                volume.write(issuer.mint(sub="system:serviceaccount:default:demo-app"))
                print("   sidecar log:", sidecar.wait_for_log(r"token rotated", start=mark).split(" ", 2)[-1])
                show("curl with the new token", fetch(sidecar, volume.path))

                print(f"4. waiting for the scheduled refresh (after ~25% of {LIFETIME}s)...")
                mark = sidecar.mark()
                line = sidecar.wait_for_log(r"exchange ok", start=mark, timeout=LIFETIME)
                print("   sidecar log:", line.split(" ", 2)[-1])
                second = fetch(sidecar, volume.path)
                show("curl /v1/credentials", second)
                print(f"   new key: {second['AccessKeyId'] != first['AccessKeyId']}; "
                      f"exchanges so far: {len(emulator.successful_exchanges())}, "
                      f"made with the rotated token: {emulator.exchanges[-1].jti != emulator.exchanges[0].jti}")

                code = sidecar.stop()
                print(f"5. stopped the sidecar (exit {code}) and the emulator")
    print("\nIn production, drop --endpoint/--ca-file and give --org-id: cwcreds then exchanges at "
          "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc/<ORG-ID>.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
