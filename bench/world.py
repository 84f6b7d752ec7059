"""What every part of the benchmark shares: its plan, its fixed figures and the World.

The plan says how long each part runs (full or smoke); the World holds the
PKI, the token volume and the emulator that the parts start sidecars against.
The report quotes the same constants (key lifetime, CPUs of part e).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

import cwtest  # noqa: E402

CELLS = [(16, True), (16, False), (256, True), (256, False)]
PRODUCTION_LIFETIME = 900  # seconds: CoreWeave's container-credentials keys
ORG = "cw-test-org"
BUCKET = "cwcreds-bench"
REGION = "us-east-1"
NETWORK_DELAY = 0.030  # seconds the emulator waits in setup (iv), standing in for the internet
SERVER_CPU, CLIENT_CPU = "0", "1"  # part e: the servers' CPU, wrk's CPU


@dataclasses.dataclass
class Plan:
    wrk_seconds: int        # per wrk cell
    boto_calls: int         # per boto3 setup
    startups: int           # start-to-ready samples
    d_lifetime: float       # credential lifetime in part d, seconds
    d_window: float         # wall time per rate in part d, seconds
    d_rates: tuple = (0, 10, 10_000)


FULL = Plan(wrk_seconds=5, boto_calls=1000, startups=9, d_lifetime=8, d_window=20)
SMOKE = Plan(wrk_seconds=1, boto_calls=50, startups=3, d_lifetime=4, d_window=5)


@dataclasses.dataclass
class World:
    bin: Path
    work: Path
    pki: cwtest.Pki
    issuer: cwtest.Issuer
    volume: cwtest.KubeletTokenDir
    token: str
    emulator: cwtest.Emulator  # container-credentials keys of 900 s, no delay
    baseline_bin: Optional[Path] = None  # part e: a second cwcreds build to compare

    def sidecar_args(self, *extra) -> list:
        return ["--token-file", str(self.volume.path), "--endpoint", self.emulator.url_container(),
                "--ca-file", str(self.pki.ca_file), *extra]
