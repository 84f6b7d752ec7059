"""CoreWeave's temporary-credentials API as the emulator speaks it, and the record of one exchange.

The endpoint paths and the two exchange modes, the service's limits, the
google.rpc error codes and bodies, and `Exchange`, the record the emulator
keeps of each request. Both halves of the emulator use them: `emulator.py`
(the service's logic, faults and records) and `emulator_http.py` (TLS,
routing and the wire).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, NamedTuple, Optional

# Exchange modes, spelled like the sidecar's `--exchange` values so a test can
# compare a record with the flag it passed.
MODE_CONTAINER = "container-credentials"
MODE_OIDC = "oidc"

# Fault kinds that answer 200 with a body the sidecar must refuse to use.
MALFORMED_KINDS = ("json", "missing", "past", "badtime", "huge", "slow")

_EXCHANGE_PREFIX = "/v1/cwobject/temporary-credentials/oidc"
_CONTAINER_PATH_RE = re.compile(re.escape(_EXCHANGE_PREFIX) + r"/([^/]+)")
_MAX_DURATION_SECONDS = 43200  # CoreWeave's cap for durationSeconds (12 h)

# google.rpc.Code values used in error bodies.
_RPC_INVALID_ARGUMENT = 3
_RPC_NOT_FOUND = 5
_RPC_PERMISSION_DENIED = 7
_RPC_UNAUTHENTICATED = 16
_RPC_CODE_FOR_HTTP = {
    400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 409: 10, 413: 3,
    429: 8, 499: 1, 500: 13, 501: 12, 502: 14, 503: 14, 504: 4,
}


def _rpc_body(code: int, message: str) -> bytes:
    return json.dumps({"code": code, "message": message, "details": []}).encode()


class Exchange(NamedTuple):
    """One request to an exchange endpoint, recorded just before its answer is sent (or it is dropped)."""

    time: float                      # epoch seconds when the request arrived
    mode: str                        # MODE_CONTAINER or MODE_OIDC
    status: Optional[int]            # HTTP status sent; None when no answer was sent
    sub: Optional[str]               # token subject (decoded even when rejected)
    jti: Optional[str]               # token id: tells which minted token was used
    access_key_id: Optional[str]
    secret_access_key: Optional[str]
    expiration: Optional[str]        # the expiry string exactly as sent
    token: Optional[str]             # the raw token presented
    # Extras (after the contract fields so attribute names stay stable):
    org_id: Optional[str] = None
    duration_seconds: Any = None     # oidc mode: durationSeconds as sent
    expires_at: Optional[dt.datetime] = None  # the instant `expiration` denotes
    fault: Optional[str] = None      # "status", "reset", "hang", a MALFORMED_KINDS value, "stopped"
    error: Optional[str] = None      # message of an error answer
    headers: Optional[dict] = None   # request headers, lowercase names
    body: Any = None                 # parsed JSON request body (oidc mode)

    @property
    def ok(self) -> bool:
        """True when a usable credential was handed out."""
        return self.status == 200 and self.fault in (None, "hang")

    def to_json(self) -> dict:
        record = self._asdict()
        record["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        record["ok"] = self.ok
        return record
