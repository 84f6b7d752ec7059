"""The emulator's HTTPS side: a threading server doing TLS per connection, and the request handler.

`_TLSServer` accepts connections and runs each TLS handshake in that
connection's own thread; `_Handler` routes the two exchange endpoints and the
`/_emulator/` control API (for standalone demos), reads request bodies, and
carries faults out on the wire: hangs, resets, dropped connections, bodies
dribbled a byte at a time. What to answer is the `Emulator`'s decision
(`emulator.py`).
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Optional

from coreweave_api import (
    _CONTAINER_PATH_RE,
    _EXCHANGE_PREFIX,
    _RPC_CODE_FOR_HTTP,
    _RPC_INVALID_ARGUMENT,
    _RPC_NOT_FOUND,
    MODE_CONTAINER,
    MODE_OIDC,
    Exchange,
    _rpc_body,
)
from pki import AUDIENCE, _decode_claims_unverified

if TYPE_CHECKING:  # only for annotations: emulator.py imports this module
    from emulator import Emulator

_MAX_REQUEST_BODY = 1 << 20
_SLOW_BYTE_INTERVAL = 0.5
# Idle keep-alive connections are closed after this long, like a real front end.
_IDLE_TIMEOUT = 60.0


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
