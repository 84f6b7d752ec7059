"""Test harness for cwcreds: a local CoreWeave upstream, kubelet token files, and the binary.

Integration tests run the real `cwcreds` binary against things that behave like
production but live entirely on 127.0.0.1:

* `Pki` makes a throw-away CA and a server certificate for localhost, so the
  sidecar talks real TLS to the emulator and "wrong CA" cases can be exercised.
* `Issuer` mints RS256 JWTs shaped like Kubernetes projected service-account tokens.
* `KubeletTokenDir` writes token files exactly the way kubelet's atomic writer does
  (timestamped directory, `..data` symlink swapped by rename), because a watcher
  that only works on plain files fails on every real rotation.
* `Emulator` is an HTTPS fake of CoreWeave's two temporary-credentials endpoints:
  it validates tokens like the real service, records every exchange, and injects
  faults (error statuses, hangs, resets, malformed answers) on demand.
* `Sidecar` / `run_cwcreds` run the binary with a clean environment and give
  tests its log lines, its port and a tiny HTTP client.

This module is what tests, benchmarks and scripts import; it gathers the
harness from the modules beside it, one per part: `pki.py` (Pki, Issuer, the
JWT helpers), `kubelet.py` (KubeletTokenDir), `emulator.py` (Emulator, its
service logic and faults), `emulator_http.py` (its TLS server and request
handler), `coreweave_api.py` (paths, modes, error codes, the Exchange record)
and `sidecar.py` (running the binary, paths, ports, temporary directories).
They import each other by plain module name, through the same tests/support
entry on sys.path that makes `import cwtest` work.

Only the standard library plus `cryptography` and `requests` (the latter only in
the self-test) are used, so the suite runs on any CI image with Python 3.11.
"""

from __future__ import annotations

from coreweave_api import MALFORMED_KINDS, MODE_CONTAINER, MODE_OIDC, Exchange
from emulator import Emulator
from kubelet import KubeletTokenDir
from pki import AUDIENCE, Issuer, Pki
from sidecar import Response, Sidecar, TempDir, cwcreds_bin, free_loopback_port, repo_root, run_cwcreds
# Not in __all__, yet imported from here: tests stop processes they started
# themselves, and the self-test checks the environment a run passes through.
from sidecar import _PASSTHROUGH_ENV, stop_process  # noqa: F401

__all__ = [
    "AUDIENCE",
    "MODE_CONTAINER",
    "MODE_OIDC",
    "MALFORMED_KINDS",
    "Emulator",
    "Exchange",
    "Issuer",
    "KubeletTokenDir",
    "Pki",
    "Response",
    "Sidecar",
    "TempDir",
    "cwcreds_bin",
    "free_loopback_port",
    "repo_root",
    "run_cwcreds",
]
