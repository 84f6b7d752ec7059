"""A local S3 that checks signatures, for the demo on a machine without moto.

Debian 12 packages no moto, and nothing here installs from PyPI, so on a bare
bookworm the demo runs against this instead: the few S3 calls it makes
(create a bucket, put an object, head and get it back), each of which must be
signed (AWS Signature Version 4) with a key this stand-in minted and that has
not expired, as S3 and moto with signature checking require. A made-up,
wrong or expired key gets 403, so the demo still proves the key cwcreds
served is the one that works. The e2e suite keeps moto: it needs all of S3.

Loopback only; bodies are capped; stopped with the `with` block.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

MAX_BODY = 16 * 1024 * 1024
# A request signed this long before or after now is refused, as S3 does.
MAX_SKEW = 15 * 60

_AUTHORIZATION_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/s3/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(secret: str, method: str, raw_path: str, raw_query: str, headers: dict,
                    signed: list, payload_hash: str, amz_date: str, scope: str) -> str:
    """The signature S3 expects (AWS's "Signature Version 4" document): the
    canonical request, the string to sign, and the key derived from the secret."""
    canonical_uri = urllib.parse.quote(urllib.parse.unquote(raw_path), safe="/~")
    query = sorted(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
                               for k, v in query)
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
    canonical_request = "\n".join([method, canonical_uri, canonical_query, canonical_headers, ";".join(signed),
                                   payload_hash])
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    date, region, service, terminal = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), terminal)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _dechunk(body: bytes) -> Optional[bytes]:
    """The data of an aws-chunked body (`size;chunk-signature=...` framing)."""
    data, at = b"", 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            return None
        try:
            size = int(body[at:end].split(b";")[0], 16)
        except ValueError:
            return None
        if size == 0:
            return data
        data += body[end + 2:end + 2 + size]
        at = end + 2 + size + 2


class S3StandIn:
    """Buckets and objects in memory, behind SigV4 checks, on 127.0.0.1."""

    def __init__(self):
        self.keys: dict = {}      # access key id -> (secret, expires at epoch)
        self.buckets: dict = {}   # name -> {object key: bytes}
        self.refused: list = []   # (status, code) of every refused request
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.url = ""

    def __enter__(self) -> "S3StandIn":
        stand_in = self

        class Handler(_Handler):
            s3 = stand_in

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-stand-in", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)

    def mint(self, lifetime: float) -> tuple:
        """A new key pair valid `lifetime` seconds (plus one: the emulator
        rounds the expiry it announces down to a whole second)."""
        key_id = "CWAK" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        with self._lock:
            self.keys[key_id] = (secret, time.time() + lifetime + 1)
        return key_id, secret

    def key_minter(self, name: str) -> "StandInMinter":
        return StandInMinter(self)

    def create_bucket(self, name: str) -> None:
        with self._lock:
            self.buckets.setdefault(name, {})


class StandInMinter:
    """The emulator's `key_minter` over the stand-in (as KeyMinter is over moto)."""

    def __init__(self, s3: S3StandIn):
        self._s3 = s3

    def __call__(self, sub: str, lifetime: float) -> tuple:
        return self._s3.mint(lifetime)

    def close(self) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    s3: S3StandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the demo prints what matters itself
        pass

    def _reply(self, status: int, body: bytes = b"", headers: Optional[dict] = None, head: bool = False) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        with self.s3._lock:
            self.s3.refused.append((status, code))
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self._reply(status, body, {"Content-Type": "application/xml"}, head)

    def _authenticated_body(self, head: bool = False) -> Optional[bytes]:
        """The request body if the request is signed by a live key, else None
        (the refusal already sent)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._error(400, "EntityTooLarge", "larger than the stand-in accepts", head)
            return None
        body = self.rfile.read(length) if length else b""
        match = _AUTHORIZATION_RE.match(self.headers.get("Authorization", ""))
        amz_date = self.headers.get("X-Amz-Date", "")
        if match is None or not amz_date:
            self._error(403, "AccessDenied", "requests must be signed with AWS Signature Version 4", head)
            return None
        with self.s3._lock:
            secret, expires = self.s3.keys.get(match["key"], (None, 0.0))
        if secret is None:
            self._error(403, "InvalidAccessKeyId", "the access key id does not exist", head)
            return None
        if time.time() > expires:
            self._error(403, "ExpiredToken", "the access key has expired", head)
            return None
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            self._error(403, "AccessDenied", "X-Amz-Date is not a basic ISO 8601 time", head)
            return None
        if abs(time.time() - signed_at.timestamp()) > MAX_SKEW:
            self._error(403, "RequestTimeTooSkewed", "the request was signed too long ago or ahead", head)
            return None
        payload_hash = self.headers.get("X-Amz-Content-Sha256", "")
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        signed = match["signed"].split(";")
        scope = f"{match['date']}/{match['region']}/s3/aws4_request"
        expected = sigv4_signature(secret, self.command, path, query, headers, signed, payload_hash, amz_date, scope)
        if "host" not in signed or not hmac.compare_digest(expected, match["signature"]):
            self._error(403, "SignatureDoesNotMatch", "the signature does not match", head)
            return None
        if payload_hash.startswith("STREAMING-"):
            body = _dechunk(body)
            if body is None:
                self._error(400, "IncompleteBody", "the aws-chunked body is malformed")
                return None
        elif payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
            self._error(400, "XAmzContentSHA256Mismatch", "the body does not match x-amz-content-sha256", head)
            return None
        return body

    def _target(self) -> tuple:
        path = urllib.parse.unquote(self.path.partition("?")[0])
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def do_PUT(self) -> None:
        body = self._authenticated_body()
        if body is None:
            return
        bucket, key = self._target()
        with self.s3._lock:
            if not key:
                self.s3.buckets.setdefault(bucket, {})
                self._reply(200, headers={"Location": "/" + bucket})
                return
            if bucket not in self.s3.buckets:
                exists = False
            else:
                exists = True
                self.s3.buckets[bucket][key] = body
        if not exists:
            self._error(404, "NoSuchBucket", "the bucket does not exist")
            return
        self._reply(200, headers={"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def _get(self, head: bool) -> None:
        if self._authenticated_body(head) is None:
            return
        bucket, key = self._target()
        with self.s3._lock:
            objects = self.s3.buckets.get(bucket)
            data = objects.get(key) if objects is not None else None
        if objects is None:
            self._error(404, "NoSuchBucket", "the bucket does not exist", head)
        elif data is None:
            self._error(404, "NoSuchKey", "the object does not exist", head)
        else:
            self._reply(200, data, {"ETag": '"%s"' % hashlib.md5(data).hexdigest(),
                                    "Content-Type": "binary/octet-stream",
                                    "Last-Modified": formatdate(usegmt=True)}, head)

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_POST(self) -> None:
        if self._authenticated_body() is not None:
            self._error(501, "NotImplemented", "the stand-in serves only bucket creation, put, head and get")

    do_DELETE = do_POST
