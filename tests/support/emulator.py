"""An HTTPS fake of CoreWeave's two temporary-credentials endpoints, on 127.0.0.1.

`Emulator` validates tokens like the real service (signature, issuer, expiry,
audience, organisation), issues keys in either answer shape, records every
exchange, and injects faults (error statuses, hangs, resets, malformed
answers) on demand. Its HTTPS server and request handler are in
`emulator_http.py`; the paths, the modes and the `Exchange` record in
`coreweave_api.py`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import errno
import json
import secrets
import ssl
import string
import threading
import time
import urllib.parse
from typing import Any, Callable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from coreweave_api import (
    _EXCHANGE_PREFIX,
    _MAX_DURATION_SECONDS,
    _RPC_INVALID_ARGUMENT,
    _RPC_NOT_FOUND,
    _RPC_PERMISSION_DENIED,
    _RPC_UNAUTHENTICATED,
    MALFORMED_KINDS,
    MODE_CONTAINER,
    MODE_OIDC,
    Exchange,
    _rpc_body,
)
from emulator_http import _TLSServer
from pki import AUDIENCE, Issuer, Pki, _b64url_decode, _utcnow

_HUGE_BODY_BYTES = 20 * 1024 * 1024


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclasses.dataclass
class _Fault:
    status: Optional[int] = None
    body: Any = None
    headers: Optional[dict] = None
    hang: Optional[float] = None
    reset: bool = False
    malformed: Optional[str] = None

    def validate(self) -> None:
        actions = sum([self.status is not None, bool(self.reset), self.malformed is not None])
        if actions > 1:
            raise ValueError("a fault is one of status, reset or malformed (optionally after hang)")
        if actions == 0 and self.hang is None:
            raise ValueError("a fault needs status, hang, reset or malformed")
        if self.malformed is not None and self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"malformed must be one of {MALFORMED_KINDS}, not {self.malformed!r}")
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"bad status {self.status!r}")


class _Rejected(Exception):
    """A request the real service would refuse: HTTP status + google.rpc.Status."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclasses.dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict
    record: dict


class Emulator:
    """HTTPS fake of CoreWeave's temporary-credentials endpoints on 127.0.0.1.

    Behaviour knobs (`lifetime`, `lifetime_override`, `delay`, `key_minter`,
    `expiration_format`, `session_token`, `org_id`) are plain attributes that
    may be changed at any time: each request reads each one once, and a single
    attribute read/write is atomic in CPython.

    After `stop()`, `start()` binds the same port again, so a test can take the
    upstream down and bring it back at the address the sidecar was given.
    """

    def __init__(self, pki: Pki, issuer: Issuer, lifetime: float = 900,
                 org_id: str = "cw-test-org", port: int = 0):
        self.pki = pki
        self.issuer = issuer
        self.org_id = org_id
        self.lifetime = lifetime
        self.lifetime_override: Optional[float] = None
        self.delay: float = 0
        self.key_minter: Optional[Callable[[str, float], tuple]] = None
        self.expiration_format = "plain"  # "plain" | "fraction" | "offset"
        self.session_token = ""           # container mode "Token" value
        # Seconds the emulated upstream's clock runs ahead of this machine's
        # (negative: behind). Moves its Date header and the expiries it issues,
        # as a real upstream with a different clock would.
        self.clock_offset: float = 0
        self.on_exchange: Optional[Callable[[Exchange], None]] = None  # called after recording

        self._port = port
        self._server: Optional[_TLSServer] = None
        self._thread: Optional[threading.Thread] = None
        self._cond = threading.Condition()
        self._records: list = []
        self._queued: collections.deque = collections.deque()  # [fault, remaining]
        self._persistent: Optional[_Fault] = None
        self._in_flight = 0
        self.max_in_flight = 0  # most exchange requests ever handled at once
        self.tls_failures = 0   # handshakes that failed (e.g. the client distrusts the CA)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Emulator":
        if self._server is not None:
            raise RuntimeError("emulator already running")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.pki.cert_file), str(self.pki.key_file))
        self._server = self._bind(context)
        self._port = self._server.server_address[1]
        # A short poll interval keeps stop() fast; shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"cw-emulator:{self._port}", daemon=True,
        )
        self._thread.start()
        return self

    def _bind(self, context) -> "_TLSServer":
        # Brought back on its old port, the emulator may find that port taken
        # for a moment: it came from the ephemeral range, so a connection
        # anywhere on this machine can get it as its local port until it
        # closes. Wait for that (bounded), rather than fail the test.
        deadline = time.monotonic() + (10 if self._port else 0)
        while True:
            try:
                return _TLSServer(("127.0.0.1", self._port), self, context)
            except OSError as error:
                if error.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()  # wakes hanging, delayed and dribbling handlers
        server.shutdown()
        server.server_close()
        server.close_connections()  # wakes handlers blocked reading idle keep-alive sockets
        self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._port}"

    def url_container(self, org_id: Optional[str] = None) -> str:
        return f"{self.base_url}{_EXCHANGE_PREFIX}/{urllib.parse.quote(org_id or self.org_id, safe='')}"

    def url_oidc(self) -> str:
        return f"{self.base_url}{_EXCHANGE_PREFIX}"

    # -- records -----------------------------------------------------------

    @property
    def exchanges(self) -> list:
        with self._cond:
            return list(self._records)

    def successful_exchanges(self) -> list:
        with self._cond:
            return [r for r in self._records if r.ok]

    def wait_for_exchanges(self, n: int, timeout: float = 10, successful: bool = True) -> list:
        """Block until at least `n` (successful) exchanges are recorded; return them all."""

        def matching() -> list:
            return [r for r in self._records if r.ok] if successful else list(self._records)

        with self._cond:
            if self._cond.wait_for(lambda: len(matching()) >= n, timeout=timeout):
                return matching()
            got = len(matching())
            seen = [(r.mode, r.status, r.fault) for r in self._records]
        kind = "successful exchanges" if successful else "exchanges"
        raise AssertionError(
            f"expected at least {n} {kind} within {timeout}s, got {got};"
            f" all records (mode, status, fault): {seen}"
        )

    def reset_records(self) -> None:
        with self._cond:
            self._records.clear()
            self.max_in_flight = self._in_flight

    # -- faults ------------------------------------------------------------

    def push_fault(self, status=None, body=None, headers=None, hang=None, reset=False,
                   count: int = 1, malformed=None) -> None:
        """Apply a fault to the next `count` exchange requests, before normal processing.

        `hang` (seconds) waits first, then applies the other fault fields, or
        answers normally when there are none; the emulator stopping ends the
        wait and closes the connection unanswered.
        """
        fault = _Fault(status, body, headers, hang, reset, malformed)
        fault.validate()
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._cond:
            self._queued.append([fault, int(count)])

    def set_fault(self, status=None, body=None, headers=None, hang=None, reset=False,
                  malformed=None) -> None:
        """Like push_fault, for every exchange request until clear_faults()."""
        fault = _Fault(status, body, headers, hang, reset, malformed)
        fault.validate()
        with self._cond:
            self._persistent = fault

    def clear_faults(self) -> None:
        with self._cond:
            self._queued.clear()
            self._persistent = None

    def _take_fault(self) -> Optional[_Fault]:
        # Queued one-shot faults go first: they model a blip on top of a standing condition.
        with self._cond:
            if self._queued:
                entry = self._queued[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queued.popleft()
                return entry[0]
            return self._persistent

    # -- bookkeeping used by the handler ----------------------------------

    def _enter(self) -> None:
        with self._cond:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self, record: Exchange) -> None:
        """Record a request as done (it may still be writing its answer)."""
        with self._cond:
            self._in_flight -= 1
            self._records.append(record)
            self._cond.notify_all()
        callback = self.on_exchange
        if callback is not None:
            callback(record)

    def _count_tls_failure(self) -> None:
        with self._cond:
            self.tls_failures += 1

    # -- the real service's logic -----------------------------------------

    def _verify_token(self, token: str) -> dict:
        """Validate a JWT like CoreWeave would; returns the claims or raises _Rejected."""
        issuer = self.issuer
        parts = token.split(".")
        if len(parts) != 3:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: not a JWT")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: malformed JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: malformed JWT")
        if header.get("alg") != "RS256":
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: unsupported signing algorithm")
        if header.get("kid") not in (None, issuer.kid):
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: unknown signing key")
        try:
            issuer.public_key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: bad signature") from None
        if claims.get("iss") != issuer.issuer:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: untrusted issuer")

        now = time.time()

        def number(name: str) -> Optional[float]:
            value = claims.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value)

        exp = number("exp")
        if exp is None:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: no expiry")
        if exp <= now:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: token is expired")
        nbf = number("nbf")
        if nbf is not None and nbf > now:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: token is not valid yet")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if AUDIENCE not in audiences:
            raise _Rejected(403, _RPC_PERMISSION_DENIED, f"token audience is not {AUDIENCE}")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: no subject")
        return claims

    def _parse_oidc_request(self, body: Any) -> tuple:
        """(duration, org, token, attributes) from a POST body, or raises _Rejected(400)."""
        if not isinstance(body, dict):
            raise _Rejected(400, _RPC_INVALID_ARGUMENT, "request body must be a JSON object")
        duration = body.get("durationSeconds")
        # Strict int: a float or a quoted number in the body is a sidecar bug worth catching.
        if isinstance(duration, bool) or not isinstance(duration, int) \
                or not 1 <= duration <= _MAX_DURATION_SECONDS:
            raise _Rejected(400, _RPC_INVALID_ARGUMENT,
                            f"durationSeconds must be an integer in 1..{_MAX_DURATION_SECONDS}")
        org = body.get("orgId")
        if not isinstance(org, str) or not org:
            raise _Rejected(400, _RPC_INVALID_ARGUMENT, "orgId is required")
        token = body.get("oidcToken")
        if not isinstance(token, str) or not token:
            raise _Rejected(400, _RPC_INVALID_ARGUMENT, "oidcToken is required")
        attributes = body.get("attributes", {})
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
            raise _Rejected(400, _RPC_INVALID_ARGUMENT, "attributes must map strings to strings")
        return duration, org, token, attributes

    def _format_expiry(self, instant: dt.datetime, fmt: str) -> tuple:
        """(string, the instant it denotes) in the configured style."""
        if fmt == "fraction":
            return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), instant
        whole = instant.replace(microsecond=0)
        if fmt == "offset":
            return whole.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat(), whole
        return whole.strftime("%Y-%m-%dT%H:%M:%SZ"), whole

    def _issue(self, mode: str, sub: str, iss: str, lifetime: float, attributes: dict,
               expiry_shift: Optional[float] = None) -> tuple:
        """A fresh credential: (response object, record fields)."""
        minter = self.key_minter
        if minter is not None:
            access_key_id, secret = minter(sub, lifetime)
        else:
            access_key_id = "CWAK" + _random_string(string.ascii_uppercase + string.digits, 16)
            secret = _random_string(string.ascii_letters + string.digits + "/+", 40)
        offset = lifetime if expiry_shift is None else expiry_shift
        expiration, expires_at = self._format_expiry(
            _utcnow() + dt.timedelta(seconds=offset + self.clock_offset), self.expiration_format
        )
        role = f"{iss}:{sub}"
        if mode == MODE_CONTAINER:
            obj = {"AccessKeyId": access_key_id, "SecretAccessKey": secret,
                   "Token": self.session_token, "Expiration": expiration,
                   "attributes": {"cw-role": role}}
        else:
            obj = {"accessKeyId": access_key_id, "secretKey": secret,
                   "principalName": f"role/{role}", "expiry": expiration,
                   "attributes": {**attributes, "cw-role": role}}
        fields = dict(access_key_id=access_key_id, secret_access_key=secret,
                      expiration=expiration, expires_at=expires_at)
        return obj, fields

    def _answer(self, mode: str, path_org: Optional[str], headers, body: Any) -> _Answer:
        """Normal processing of one exchange request."""
        record: dict = {}
        try:
            if mode == MODE_CONTAINER:
                token = headers.get("Authorization")
                record["token"] = token
                if not token:
                    raise _Rejected(401, _RPC_UNAUTHENTICATED, "missing Authorization header")
                org, lifetime, attributes = path_org, self.lifetime, {}
                if token.startswith("Bearer "):
                    # The service takes the header verbatim, so this fails JWT parsing.
                    raise _Rejected(401, _RPC_UNAUTHENTICATED, "invalid token: not a JWT")
            else:
                if isinstance(body, dict):
                    record["token"] = body.get("oidcToken") if isinstance(body.get("oidcToken"), str) else None
                duration, org, token, attributes = self._parse_oidc_request(body)
                override = self.lifetime_override
                lifetime = duration if override is None else override
            if org != self.org_id:
                raise _Rejected(404, _RPC_NOT_FOUND, f"organization {org!r} not found")
            claims = self._verify_token(token)
            obj, fields = self._issue(mode, claims["sub"], claims["iss"], lifetime, attributes)
            record.update(fields)
            return _Answer(200, json.dumps(obj).encode(), {}, record)
        except _Rejected as rejected:
            record["error"] = rejected.message
            return _Answer(rejected.status, _rpc_body(rejected.code, rejected.message), {}, record)

    def _malformed(self, kind: str, mode: str, claims: dict, body: Any) -> _Answer:
        """A 200 answer the sidecar must not accept (or, for "huge"/"slow", must bound)."""
        sub = claims.get("sub") if isinstance(claims.get("sub"), str) else "unknown"
        iss = self.issuer.issuer
        lifetime = self.lifetime
        if mode == MODE_OIDC and self.lifetime_override is None and isinstance(body, dict) \
                and isinstance(body.get("durationSeconds"), int):
            lifetime = body["durationSeconds"]
        shift = -3600 if kind == "past" else None
        obj, fields = self._issue(mode, sub, iss, lifetime, {}, expiry_shift=shift)
        secret_key = "SecretAccessKey" if mode == MODE_CONTAINER else "secretKey"
        expiry_key = "Expiration" if mode == MODE_CONTAINER else "expiry"
        if kind == "json":
            payload = json.dumps(obj).encode()[:40]  # cut mid-document
        elif kind == "missing":
            del obj[secret_key]
            fields["secret_access_key"] = None
            payload = json.dumps(obj).encode()
        elif kind == "badtime":
            obj[expiry_key] = "not-a-timestamp"
            fields.update(expiration="not-a-timestamp", expires_at=None)
            payload = json.dumps(obj).encode()
        elif kind == "huge":
            # Valid JSON whose only problem is its size.
            head = json.dumps(obj).encode()[:-1] + b', "padding": "'
            payload = head + b"x" * (_HUGE_BODY_BYTES - len(head) - 2) + b'"}'
        else:  # "past", "slow"
            payload = json.dumps(obj).encode()
        return _Answer(200, payload, {}, fields)
