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

Only the standard library plus `cryptography` and `requests` (the latter only in
the self-test) are used, so the suite runs on any CI image with Python 3.11.
"""

from __future__ import annotations

import atexit
import base64
import collections
import dataclasses
import datetime as dt
import hashlib
import http.client
import ipaddress
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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

# The audience CoreWeave's OIDC federation expects (interface.md, seed documents).
AUDIENCE = "https://coreweave.com/iam"

# Exchange modes, spelled like the sidecar's `--exchange` values so a test can
# compare a record with the flag it passed.
MODE_CONTAINER = "container-credentials"
MODE_OIDC = "oidc"

# Fault kinds that answer 200 with a body the sidecar must refuse to use.
MALFORMED_KINDS = ("json", "missing", "past", "badtime", "huge", "slow")

_EXCHANGE_PREFIX = "/v1/cwobject/temporary-credentials/oidc"
_CONTAINER_PATH_RE = re.compile(re.escape(_EXCHANGE_PREFIX) + r"/([^/]+)")
_MAX_DURATION_SECONDS = 43200  # CoreWeave's cap for durationSeconds (12 h)
_MAX_REQUEST_BODY = 1 << 20
_HUGE_BODY_BYTES = 20 * 1024 * 1024
_SLOW_BYTE_INTERVAL = 0.5
# Idle keep-alive connections are closed after this long, like a real front end.
_IDLE_TIMEOUT = 60.0

# google.rpc.Code values used in error bodies.
_RPC_INVALID_ARGUMENT = 3
_RPC_NOT_FOUND = 5
_RPC_PERMISSION_DENIED = 7
_RPC_UNAUTHENTICATED = 16
_RPC_CODE_FOR_HTTP = {
    400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 408: 4, 409: 10, 413: 3,
    429: 8, 499: 1, 500: 13, 501: 12, 502: 14, 503: 14, 504: 4,
}


# ---------------------------------------------------------------------------
# Paths and small helpers
# ---------------------------------------------------------------------------

def repo_root() -> Path:
    """The repository root (this file lives in <repo>/tests/support)."""
    return Path(__file__).resolve().parents[2]


def cwcreds_bin() -> Path:
    """The binary under test: $CWCREDS_BIN (set by CTest), else <repo>/build/cwcreds."""
    configured = os.environ.get("CWCREDS_BIN")
    return Path(configured) if configured else repo_root() / "build" / "cwcreds"


def stop_process(proc: subprocess.Popen, timeout: float = 5) -> Optional[int]:
    """SIGTERM by PID, wait, SIGKILL if it lingers; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (racy by nature; prefer port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TempDir(tempfile.TemporaryDirectory):
    """A temporary directory whose `with` value is a pathlib.Path (removed on exit)."""

    def __init__(self, prefix: str = "cwcreds-test-"):
        super().__init__(prefix=prefix)

    @property
    def path(self) -> Path:
        return Path(self.name)

    def __enter__(self) -> Path:
        return self.path


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    # Strict on purpose: urlsafe_b64decode silently drops characters outside the
    # alphabet, which would let "Bearer eyJ..." decode as if it were a JWT.
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _decode_claims_unverified(token: Optional[str]) -> dict:
    """Best-effort claims of a JWT, for records only (never for decisions)."""
    if not token:
        return {}
    if token.startswith("Bearer "):
        token = token[len("Bearer "):]
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _write_pem(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

class Pki:
    """A test CA, a server certificate for localhost/127.0.0.1 signed by it, and an unrelated CA.

    EC P-256 keeps generation fast. The extensions follow what strict verifiers
    (OpenSSL 3 with X509_STRICT, Go, rustls) insist on, so a TLS failure in a test
    means the sidecar is wrong, not the certificates.
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.dir / "ca.pem"
        self.cert_file = self.dir / "server.pem"
        self.key_file = self.dir / "server-key.pem"
        self.other_ca_file = self.dir / "other-ca.pem"

        self.ca_key, self.ca_cert = self._make_ca("cwcreds test CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._make_server_cert(server_key)
        _, self.other_ca_cert = self._make_ca("cwcreds unrelated test CA")

        _write_pem(self.ca_file, self.ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(self.cert_file, self.cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(
            self.key_file,
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            private=True,
        )
        _write_pem(self.other_ca_file, self.other_ca_cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        # Backdated a day so a slightly skewed CI clock cannot make it "not yet valid".
        now = _utcnow()
        return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(
            now + dt.timedelta(days=30)
        )

    def _make_ca(self, common_name: str):
        key = ec.generate_private_key(ec.SECP256R1())
        # A random serial in the name keeps two CAs from different runs distinct.
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cwcreds tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} {secrets.token_hex(4)}"),
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        return key, self._validity(builder).sign(key, hashes.SHA256())

    def _make_server_cert(self, key) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        return self._validity(builder).sign(self.ca_key, hashes.SHA256())


# ---------------------------------------------------------------------------
# Token issuer
# ---------------------------------------------------------------------------

class Issuer:
    """An OIDC issuer that mints RS256 tokens shaped like Kubernetes projected SA tokens."""

    def __init__(self, issuer: str = "https://oidc.cwcreds-test.invalid/abc123"):
        self.issuer = issuer
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._private_key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # A stable key id derived from the key, like kube-apiserver does.
        self.kid = _b64url(hashlib.sha256(der).digest()[:16])

    def mint(
        self,
        sub: str = "system:serviceaccount:default:app",
        aud=AUDIENCE,
        lifetime: float = 3600,
        iat: Optional[float] = None,
        **extra_claims: Any,
    ) -> str:
        """A signed compact JWT. `lifetime` may be negative (an already-expired token).

        `extra_claims` are added or override defaults; a value of None removes
        the claim, e.g. `mint(exp=None)` for a token without expiry.
        """
        issued = int(time.time() if iat is None else iat)
        claims: dict = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "iat": issued,
            "nbf": issued,
            "exp": int(issued + lifetime),
            "jti": str(uuid.uuid4()),
        }
        # Real tokens carry this nested object; a claim decoder must cope with it.
        parts = sub.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            claims["kubernetes.io"] = {
                "namespace": parts[2],
                "serviceaccount": {"name": parts[3], "uid": str(uuid.uuid4())},
            }
        for name, value in extra_claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def jwks(self) -> dict:
        """The public key as a JWKS document (what the issuer's discovery URL would serve)."""
        numbers = self.public_key.public_numbers()

        def encode_int(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                          "n": encode_int(numbers.n), "e": encode_int(numbers.e)}]}


# ---------------------------------------------------------------------------
# kubelet's atomic writer
# ---------------------------------------------------------------------------

class KubeletTokenDir:
    """A projected-token volume directory, written the way kubelet writes it.

        <dir>/..2026_11_23_15_04_05.123456789/oidc-token   the real file, no newline
        <dir>/..data -> ..2026_11_23_15_04_05.123456789
        <dir>/oidc-token -> ..data/oidc-token               what the pod reads

    Each write creates a new timestamped directory, points `..data_tmp` at it,
    renames that over `..data` (the atomic step), then deletes the previous
    directory — so an inotify watch on the old real file dies on every rotation.
    """

    def __init__(self, directory, filename: str = "oidc-token"):
        if "/" in filename or filename.startswith(".."):
            raise ValueError(f"unsupported token file name {filename!r}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.filename = filename
        self.path = self.dir / filename
        self._lock = threading.Lock()

    @property
    def current_dir(self) -> Optional[Path]:
        """The timestamped directory `..data` points at, or None before the first write."""
        try:
            return self.dir / os.readlink(self.dir / "..data")
        except FileNotFoundError:
            return None

    def write(self, token) -> Path:
        """Publish a new token (str or bytes, written as is); returns the new timestamped dir."""
        data = token.encode("utf-8") if isinstance(token, str) else bytes(token)
        with self._lock:
            previous = self.current_dir
            ts_dir = self._make_timestamped_dir()
            fd = os.open(ts_dir / self.filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(ts_dir / self.filename, 0o644)  # independent of the umask, like kubelet

            tmp_link = self.dir / "..data_tmp"
            if os.path.lexists(tmp_link):  # left over from an interrupted write
                os.unlink(tmp_link)
            os.symlink(ts_dir.name, tmp_link)  # relative, as kubelet does
            os.rename(tmp_link, self.dir / "..data")

            if not os.path.lexists(self.path):
                os.symlink(f"..data/{self.filename}", self.path)
            if previous is not None and previous.name != ts_dir.name:
                shutil.rmtree(previous, ignore_errors=True)
            return ts_dir

    def remove(self) -> None:
        """Delete the user-visible symlink: the token disappears (the next write restores it)."""
        with self._lock:
            if os.path.lexists(self.path):
                os.unlink(self.path)

    def _make_timestamped_dir(self) -> Path:
        # Nanoseconds make names unique in practice; mkdir's EEXIST check makes
        # them unique for sure (coarse clocks, two writes in the same tick).
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(seconds))
        while True:
            candidate = self.dir / f"{stamp}.{nanos:09d}"
            try:
                os.mkdir(candidate, 0o755)
                return candidate
            except FileExistsError:
                nanos = (nanos + 1) % 1_000_000_000


# ---------------------------------------------------------------------------
# CoreWeave upstream emulator
# ---------------------------------------------------------------------------

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


def _rpc_body(code: int, message: str) -> bytes:
    return json.dumps({"code": code, "message": message, "details": []}).encode()


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
        self._server = _TLSServer(("127.0.0.1", self._port), self, context)
        self._port = self._server.server_address[1]
        # A short poll interval keeps stop() fast; shutdown() waits for one poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"cw-emulator:{self._port}", daemon=True,
        )
        self._thread.start()
        return self

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


class _TLSServer(ThreadingHTTPServer):
    """ThreadingHTTPServer doing the TLS handshake in the per-connection thread.

    Wrapping the listening socket instead would run handshakes in the accept
    loop, where one client that connects and sends nothing stalls everyone.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, emulator: Emulator, context: ssl.SSLContext):
        self.emulator = emulator
        self.context = context
        self.stopping = threading.Event()
        self._connections: set = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        if self.stopping.is_set():
            return
        request.settimeout(_IDLE_TIMEOUT)
        conn = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        with self._connections_lock:
            self._connections.add(conn)
        try:
            try:
                conn.do_handshake()
            except (ssl.SSLError, OSError):
                self.emulator._count_tls_failure()
                return
            _Handler(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass  # the client went away or stop() closed the connection: both normal here
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                # The plain-socket shutdown: SSLSocket.shutdown would also drop its
                # SSL object under the feet of the thread using it.
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Anything reaching here is a bug in the emulator itself: make it loud.
        print(f"cw-emulator: unexpected error serving {client_address}:", file=sys.stderr)
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real front end
    server: _TLSServer

    def version_string(self) -> str:
        return "cw-emulator/1"

    def date_time_string(self, timestamp=None) -> str:
        if timestamp is None:
            timestamp = time.time() + self.server.emulator.clock_offset
        return super().date_time_string(timestamp)

    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass  # records are the log; stderr noise would drown test output

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    # -- routing -----------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path.startswith("/_emulator/"):
            self._control(method, path, urllib.parse.parse_qs(url.query))
            return
        container = _CONTAINER_PATH_RE.fullmatch(path)
        if container:
            org = urllib.parse.unquote(container.group(1))
            if method == "GET":
                self._exchange(MODE_CONTAINER, org)
            else:
                self._wrong_method(MODE_CONTAINER, "GET")
        elif path == _EXCHANGE_PREFIX:
            if method == "POST":
                self._exchange(MODE_OIDC, None)
            else:
                self._wrong_method(MODE_OIDC, "POST")
        else:
            self._read_body()
            self._send(404, _rpc_body(_RPC_NOT_FOUND, "Not Found"))

    def _wrong_method(self, mode: str, allowed: str) -> None:
        arrived = time.time()
        self._read_body()
        emulator = self.server.emulator
        emulator._enter()
        emulator._leave(Exchange(arrived, mode, 405, None, None, None, None, None, None,
                                 error="Method Not Allowed", headers=self._header_dict()))
        self._send(405, _rpc_body(12, "Method Not Allowed"), {"Allow": allowed})

    # -- exchanges ---------------------------------------------------------

    def _exchange(self, mode: str, path_org: Optional[str]) -> None:
        emulator = self.server.emulator
        stopping = self.server.stopping
        arrived = time.time()
        raw_body = self._read_body()
        body = None
        if mode == MODE_OIDC and raw_body:
            try:
                body = json.loads(raw_body)
            except (ValueError, UnicodeDecodeError):
                body = None
        if mode == MODE_CONTAINER:
            token = self.headers.get("Authorization")
            org = path_org
        else:
            fields_of = body if isinstance(body, dict) else {}
            token = fields_of.get("oidcToken") if isinstance(fields_of.get("oidcToken"), str) else None
            org = fields_of.get("orgId")
        claims = _decode_claims_unverified(token)
        fields: dict = dict(token=token, org_id=org,
                            duration_seconds=body.get("durationSeconds") if isinstance(body, dict) else None)
        recorded = False

        def record(status: Optional[int], **more) -> None:
            # Recorded before the answer goes out: once a client holds the
            # response, the record is visible to the test.
            nonlocal recorded
            recorded = True
            fields.update(more)
            emulator._leave(Exchange(
                time=arrived, mode=mode, status=status,
                sub=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
                jti=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
                access_key_id=fields.pop("access_key_id", None),
                secret_access_key=fields.pop("secret_access_key", None),
                expiration=fields.pop("expiration", None),
                token=fields.pop("token"),
                headers=self._header_dict(), body=body, **fields,
            ))

        emulator._enter()
        try:
            if raw_body is None or (mode == MODE_OIDC and body is None):
                message = "unreadable request body" if raw_body is None else "request body is not JSON"
                record(400, error=message)
                self._send(400, _rpc_body(_RPC_INVALID_ARGUMENT, message))
                return

            delay = emulator.delay
            if delay and delay > 0 and stopping.wait(delay):
                record(None, fault="stopped")
                self._drop()
                return

            fault = emulator._take_fault()
            if fault is not None and fault.hang is not None:
                fields["fault"] = "hang"
                hang = None if math.isinf(fault.hang) else fault.hang
                if stopping.wait(hang):
                    record(None)
                    self._drop()
                    return

            if fault is not None and fault.reset:
                record(None, fault="reset")
                self._reset()
            elif fault is not None and fault.status is not None:
                status = int(fault.status)
                payload = fault.body
                if payload is None:
                    payload = _rpc_body(_RPC_CODE_FOR_HTTP.get(status, 2),
                                        http.client.responses.get(status, "error"))
                elif isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                elif isinstance(payload, str):
                    payload = payload.encode()
                record(status, fault="status", error=f"injected {status}")
                self._send(status, payload, fault.headers or {})
            elif fault is not None and fault.malformed is not None:
                answer = emulator._malformed(fault.malformed, mode, claims, body)
                record(200, fault=fault.malformed, **answer.record)
                if fault.malformed == "slow":
                    self._send_slowly(200, answer.body)
                else:
                    self._send(200, answer.body, fault.headers or {})
            else:
                answer = emulator._answer(mode, path_org, self.headers, body)
                record(answer.status, **answer.record)
                self._send(answer.status, answer.body, answer.headers)
        finally:
            if not recorded:  # an unexpected error: still account for the request
                record(None, error="emulator error")

    # -- control API (standalone demos) ------------------------------------

    def _control(self, method: str, path: str, query: dict) -> None:
        emulator = self.server.emulator
        raw = self._read_body()
        try:
            args = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            self._send_json(400, {"error": "body is not JSON"})
            return
        try:
            if method == "GET" and path == "/_emulator/exchanges":
                self._send_json(200, [r.to_json() for r in emulator.exchanges])
            elif method == "POST" and path == "/_emulator/fault":
                persistent = bool(args.pop("persistent", False))
                if persistent:
                    args.pop("count", None)
                    emulator.set_fault(**args)
                else:
                    emulator.push_fault(**args)
                self._send_json(200, {"ok": True})
            elif method == "POST" and path == "/_emulator/clear":
                emulator.clear_faults()
                self._send_json(200, {"ok": True})
            elif method == "POST" and path == "/_emulator/reset":
                emulator.reset_records()
                self._send_json(200, {"ok": True})
            elif method == "GET" and path == "/_emulator/token":
                # Lets a demo fetch a valid token with curl.
                def first(name, default):
                    return query.get(name, [default])[0]

                token = emulator.issuer.mint(sub=first("sub", "system:serviceaccount:default:app"),
                                             aud=first("aud", AUDIENCE),
                                             lifetime=float(first("lifetime", "3600")))
                self._send(200, token.encode(), {"Content-Type": "text/plain"})
            elif path == "/_emulator/config" and method in ("GET", "POST"):
                settable = ("lifetime", "lifetime_override", "delay", "expiration_format",
                            "session_token", "org_id")
                numeric = {"lifetime", "lifetime_override", "delay"}
                for name, value in args.items():
                    if name not in settable:
                        raise ValueError(f"unknown setting {name!r}")
                    # Check here: a wrong type would otherwise fail the next exchange instead.
                    if name in numeric and not (
                            isinstance(value, (int, float)) and not isinstance(value, bool)
                            or (name == "lifetime_override" and value is None)):
                        raise ValueError(f"{name} must be a number")
                    if name == "expiration_format" and value not in ("plain", "fraction", "offset"):
                        raise ValueError("expiration_format must be plain, fraction or offset")
                    if name not in numeric and name != "lifetime_override" and not isinstance(value, str):
                        raise ValueError(f"{name} must be a string")
                for name, value in args.items():
                    setattr(emulator, name, value)
                self._send_json(200, {name: getattr(emulator, name) for name in settable})
            else:
                self._send_json(404, {"error": f"no control endpoint {method} {path}"})
        except (TypeError, ValueError) as error:
            self._send_json(400, {"error": str(error)})

    # -- I/O helpers -------------------------------------------------------

    def _header_dict(self) -> dict:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> Optional[bytes]:
        """The request body; None when it cannot be read (the connection is then closed)."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                total = 0
                while True:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    total += size
                    if total > _MAX_REQUEST_BODY:
                        raise ValueError("body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(1024)
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0 or length > _MAX_REQUEST_BODY:
                raise ValueError("bad Content-Length")
            return self.rfile.read(length) if length else b""
        except ValueError:
            self.close_connection = True
            return None

    def _send(self, status: int, body: bytes, headers: Optional[dict] = None) -> int:
        merged = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        for name, value in (headers or {}).items():
            for existing in [k for k in merged if k.lower() == name.lower()]:
                del merged[existing]
            merged[name] = str(value)
        self.send_response(status)  # also adds Date and Server
        for name, value in merged.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
        return status

    def _send_json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, indent=1).encode())

    def _send_slowly(self, status: int, body: bytes) -> int:
        """Full headers at once, then the body one byte per interval until done, gone or stopped."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        stopping = self.server.stopping
        for i in range(len(body)):
            try:
                self.wfile.write(body[i:i + 1])
            except OSError:
                break
            if stopping.wait(_SLOW_BYTE_INTERVAL):
                break
        return status

    def _drop(self) -> None:
        """Close the connection without answering (orderly FIN)."""
        self.close_connection = True
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass

    def _reset(self) -> None:
        """Close the connection with a TCP RST: SO_LINGER with a zero timeout."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()


# ---------------------------------------------------------------------------
# The binary under test
# ---------------------------------------------------------------------------

# Sanitizer settings pass through the clean environment: CI runs this suite
# against ASan/UBSan and TSan builds and relies on them (halt_on_error, suppressions).
_PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS", "MSAN_OPTIONS")

# The contract's line, `listening address=127.0.0.1:PORT` or
# `"msg":"listening","address":"127.0.0.1:PORT"`; whitespace tolerated after the colon.
_LISTENING_RE = re.compile(r'listening.*?address["=:\s]+"?(127\.0\.0\.1:\d+)')


def _clean_env(env: Optional[dict]) -> dict:
    """PATH (plus sanitizer options) and the caller's variables; nothing else leaks in.

    A value of None in `env` removes the variable.
    """
    result = {"PATH": os.environ.get("PATH", os.defpath)}
    for name in _PASSTHROUGH_ENV:
        if name in os.environ:
            result[name] = os.environ[name]
    for name, value in (env or {}).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = str(value)
    return result


def run_cwcreds(args, env: Optional[dict] = None, timeout: float = 20,
                bin=None) -> subprocess.CompletedProcess:
    """Run a one-shot subcommand (`exchange`, `credential-process`, `inspect`, bad configs).

    `args` starts with the subcommand. On timeout subprocess.run kills the child
    and raises TimeoutExpired.
    """
    return subprocess.run(
        [str(bin or cwcreds_bin()), *[str(a) for a in args]],
        env=_clean_env(env), stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=timeout,
    )


@dataclasses.dataclass
class Response:
    """An HTTP answer from the sidecar."""

    status: int
    headers: dict  # lowercase names
    body: str
    elapsed: float = 0.0  # seconds from sending the request to the end of the body

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# Sidecars still running at interpreter exit (a test that forgot to stop one).
_live_sidecars: "set[Sidecar]" = set()


@atexit.register
def _kill_forgotten_sidecars() -> None:
    for sidecar in list(_live_sidecars):
        sidecar._kill()


class Sidecar:
    """`cwcreds serve` as a child process, with its log captured line by line.

    stdout and stderr are read by two threads into one list (the binary logs to
    stderr; stdout is kept for anything unexpected). Waiting for a log line
    blocks on a Condition notified by those readers, so no sleep loops.
    """

    def __init__(self, args, env: Optional[dict] = None, bin=None):
        self.args = [str(a) for a in args]
        has_listen = any(a == "--listen" or a.startswith("--listen=") for a in self.args)
        if not has_listen and "CWCREDS_LISTEN" not in (env or {}):
            self.args += ["--listen", "127.0.0.1:0"]
        self.env = _clean_env(env)
        self.bin = str(bin or cwcreds_bin())
        self.address: Optional[str] = None
        self.port: Optional[int] = None
        self.base_url: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._cond = threading.Condition()
        self._lines: list = []
        self._open_streams = 0
        self._readers: list = []
        self._streams_closed = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self, wait_ready: bool = False, timeout: float = 10) -> "Sidecar":
        """Start, wait for the `listening` line (and /readyz 200 if asked); returns self."""
        if self._proc is not None:
            raise RuntimeError("sidecar already started")
        deadline = time.monotonic() + timeout
        self._proc = subprocess.Popen(
            [self.bin, "serve", *self.args], env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        _live_sidecars.add(self)
        self._open_streams = 2
        for name, stream in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            reader = threading.Thread(target=self._read, args=(stream,),
                                      name=f"cwcreds-{self._proc.pid}-{name}", daemon=True)
            reader.start()
            self._readers.append(reader)
        try:
            line = self.wait_for_log(_LISTENING_RE, timeout=max(0.0, deadline - time.monotonic()))
            self.address = _LISTENING_RE.search(line).group(1)
            self.port = int(self.address.rsplit(":", 1)[1])
            self.base_url = f"http://{self.address}"
            if wait_ready:
                self._wait_ready(deadline, timeout)
        except BaseException:
            self._kill()
            raise
        return self

    def stop(self, sig=signal.SIGTERM, timeout: float = 5) -> Optional[int]:
        """Signal the process (by PID) and wait; returns the exit code.

        If it has not exited after `timeout`, it is SIGKILLed and AssertionError raised.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise AssertionError(
                    f"cwcreds (pid {self._proc.pid}) did not exit within {timeout}s of "
                    f"{signal.Signals(sig).name}; killed it.\n{self._tail()}"
                ) from None
        self._join_readers()
        _live_sidecars.discard(self)
        return self._proc.returncode

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._join_readers()
        _live_sidecars.discard(self)

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=2)

    def __enter__(self) -> "Sidecar":
        # Does not start: both `with Sidecar(a).start() as s:` and
        # `with Sidecar(a) as s: s.start(wait_ready=True)` read naturally.
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.stop()
        except AssertionError:
            if exc_type is None:
                raise
            # Keep the test's own failure as the one reported.
            print(f"cwtest: while handling a test failure: {traceback.format_exc()}", file=sys.stderr)

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> Optional[int]:
        return self._proc.poll() if self._proc else None

    # -- logs --------------------------------------------------------------

    def _read(self, stream) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        finally:
            stream.close()
            with self._cond:
                self._open_streams -= 1
                if self._open_streams == 0:
                    self._streams_closed.set()
                self._cond.notify_all()

    @property
    def lines(self) -> list:
        with self._cond:
            return list(self._lines)

    def mark(self) -> int:
        """The number of lines so far: pass as `start=` to wait only for later lines."""
        with self._cond:
            return len(self._lines)

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def _tail(self, n: int = 40) -> str:
        lines = self.lines
        return "log tail:\n" + "\n".join("    " + line for line in lines[-n:]) if lines else "(no log output)"

    def wait_for_log(self, regex, timeout: float = 10, start: int = 0) -> str:
        """The first line at index >= `start` matching `regex` (str or compiled), waiting for it."""
        if self._proc is None:
            raise RuntimeError("sidecar not started")
        pattern = re.compile(regex) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    if pattern.search(self._lines[index]):
                        return self._lines[index]
                    index += 1
                if self._open_streams == 0:
                    reason = "the process exited"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    reason = f"timed out after {timeout}s"
                    break
                self._cond.wait(remaining)
        code = self._proc.poll()
        if code is None and reason == "the process exited":
            # Its pipes close a moment before it can be reaped; wait for the real code.
            try:
                code = self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                reason = "its output streams closed"
        status = f"exit code {code}" if code is not None else "still running"
        raise AssertionError(
            f"no log line matching {pattern.pattern!r}: {reason} ({status}).\n{self._tail()}"
        )

    # -- HTTP --------------------------------------------------------------

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self.get("/readyz", timeout=1)
                if response.status == 200:
                    return
                last = f"{response.status} {response.body.strip()[:200]}"
            except OSError as error:
                last = repr(error)
            # Bounded wait that ends early if the process dies.
            if self._streams_closed.wait(0.05):
                break
        raise AssertionError(f"/readyz not 200 within {timeout}s (last: {last}).\n{self._tail()}")

    def get(self, path: str, token: Optional[str] = None, timeout: float = 2,
            method: str = "GET", headers: Optional[dict] = None) -> Response:
        """One request on a fresh connection (Connection: close); `token` goes in Authorization."""
        if self.port is None:
            raise RuntimeError("sidecar not listening (start() first)")
        request_headers = {"Connection": "close"}
        if token is not None:
            request_headers["Authorization"] = token
        request_headers.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.perf_counter()
        try:
            conn.request(method, path, headers=request_headers)
            answer = conn.getresponse()
            body = answer.read()
            elapsed = time.perf_counter() - started
            return Response(
                status=answer.status,
                headers={name.lower(): value for name, value in answer.getheaders()},
                body=body.decode("utf-8", "replace"),
                elapsed=elapsed,
            )
        finally:
            conn.close()
