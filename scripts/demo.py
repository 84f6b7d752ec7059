#!/usr/bin/env python3
"""What cwcreds does, in a few seconds, on one machine.

Starts moto (a local S3 that checks signatures), a local HTTPS stand-in for
CoreWeave's credentials endpoint that hands out real moto keys, a kubelet-style
projected token volume, and the real `cwcreds serve`; then runs `aws s3 cp`
with exactly a pod's environment, prints what happened, and stops everything
it started. Secrets are masked in what it prints.

Debian 12 packages no moto: where moto_server is missing (a bare bookworm),
tests/e2e/s3_standin.py takes its place, an S3 of buckets and objects that
checks the same signatures against the keys it minted.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

import e2e  # noqa: E402
from s3_standin import S3StandIn  # noqa: E402

LIFETIME = 900  # CoreWeave's container-credentials keys live 15 minutes
SUBJECT = "system:serviceaccount:default:demo-app"


def when(iso: str, seconds: float) -> str:
    """`19:42:07 UTC (in 14m 59s)`."""
    clock = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%H:%M:%S UTC")
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{clock} (in {minutes}m {secs:02d}s)" if minutes else f"{clock} (in {secs}s)"


def reads_token_file(version: str) -> bool:
    """Whether this AWS CLI (`aws --version` output) reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:
    v1 since 1.30.0, v2 since 2.15.0 (their changelogs)."""
    match = re.match(r"aws-cli/(\d+)\.(\d+)\.", version)
    if not match:
        return True
    major, minor = int(match.group(1)), int(match.group(2))
    return (major, minor) >= ((2, 15) if major == 2 else (1, 30))


def main() -> int:
    e2e.require_tool("aws")
    with_moto = shutil.which("moto_server") is not None
    s3_name = "moto" if with_moto else "the S3 stand-in"
    s3_server = e2e.Moto() if with_moto else S3StandIn()
    with tempfile.TemporaryDirectory(prefix="cwcreds-demo-") as tmp, s3_server as s3:
        work = Path(tmp)
        world = e2e.World(s3, work / "pod", e2e.CONTAINER, LIFETIME, sub=SUBJECT)
        try:
            world.start()
            print(f"1. {s3_name} (S3, signatures checked{'' if with_moto else '; moto is not installed'}) on "
                  f"{s3.url}; CoreWeave emulator on "
                  f"{world.emulator.base_url}, minting real keys for it that live {LIFETIME // 60} min")
            print(f"   kubelet-style token volume: {world.tokens.path}")
            token = world.tokens.path.read_text()
            status = world.sidecar.get("/v1/status", token=token).json
            tok, creds, refresh = status["token"], status["credentials"], status["next_refresh"]
            print("2. cwcreds serve " + " ".join(world.upstream_args()))
            print(f"   listens on {world.sidecar.base_url}; after its first exchange /v1/status says:")
            print(f"   token         {tok['subject']}, expires {when(tok['expires_at'], tok['expires_in_seconds'])}")
            print(f"   credentials   {creds['access_key_id']}, expire {when(creds['expiration'], creds['expires_in_seconds'])}")
            print(f"   next refresh  {when(refresh['at'], refresh['in_seconds'])}: {refresh['reason']}")

            home = work / "home"
            home.mkdir()
            env = e2e.pod_env(home, world.credentials_url, world.tokens.path, s3.url)
            print("3. the app runs with a pod's environment, no AWS keys anywhere:")
            for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                         "AWS_ENDPOINT_URL"):
                print(f"     {name}={env[name]}")
            version = e2e.run(["aws", "--version"], env, timeout=60).stdout.strip()
            if not reads_token_file(version):
                # Debian 12's AWS CLI 2.9 predates the token file: it sends
                # AWS_CONTAINER_AUTHORIZATION_TOKEN, here the token as it is now
                # (in a pod: a Secret and --accept-token-file, see docs/clients.md).
                env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = world.tokens.path.read_text()
                print(f"     ({version.split()[0]} predates the token file: the token goes in "
                      "AWS_CONTAINER_AUTHORIZATION_TOKEN instead)")
            s3.create_bucket("demo-bucket")
            upload = home / "hello.txt"
            upload.write_text("hello from a pod without static keys\n")
            result = e2e.run(["aws", "--endpoint-url", s3.url, "--debug", "s3", "cp", upload.name, "s3://demo-bucket/hello.txt"], env,
                             timeout=60, cwd=home)
            print(f"   $ aws s3 cp hello.txt s3://demo-bucket/hello.txt\n     {result.stdout.strip().splitlines()[-1]}")
            back = e2e.run(["aws", "--endpoint-url", s3.url, "s3", "cp", "s3://demo-bucket/hello.txt", "-"], env, timeout=60).stdout
            print(f"   $ aws s3 cp s3://demo-bucket/hello.txt -\n     {back.strip()}")
            signed = sorted(e2e.mask(k) for k in e2e.access_keys_in(result.stderr))
            print(f"   {s3_name} accepted the upload signed with {', '.join(signed)}, the key cwcreds served "
                  f"({len(world.emulator.successful_exchanges())} exchange so far)")
        finally:
            code = world.stop()
    print(f"4. stopped cwcreds (exit {code}), the emulator and {s3_name}")
    print("\nIn production cwcreds talks to https://api.coreweave.com: drop --endpoint and --ca-file and give\n"
          "  cwcreds serve --org-id <ORG-ID>                                   # 15-minute keys\n"
          "  cwcreds serve --org-id <ORG-ID> --exchange oidc --duration 1h     # 1-hour keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
