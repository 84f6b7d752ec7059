"""The binary under test: where it is, and running it the way tests need.

`run_cwcreds` runs a one-shot subcommand; `Sidecar` runs `cwcreds serve` as a
child process and gives tests its log lines, its port and a tiny HTTP client.
Both start it with a clean environment. The small pieces tests and benchmarks
use around a run (the repository's paths, a free loopback port, a temporary
directory, stopping a process) are here too.
"""

from __future__ import annotations

import atexit
import dataclasses
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional


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

    def send_signal(self, sig=signal.SIGTERM) -> None:
        """Signal the process (by PID) without waiting for it."""
        assert self._proc is not None and self._proc.poll() is None, "cwcreds is not running"
        self._proc.send_signal(sig)

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

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
