"""Shared helpers for the cwcreds integration tests.

Every test builds its own world: a temporary directory, a PKI, a JWT issuer, a
kubelet-style token directory, an HTTPS CoreWeave emulator and the real
`cwcreds` binary, all torn down through `addCleanup`. The helpers here only
remove boilerplate; the assertions live in the test files.
"""

import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

# What the sidecar must put in `Expiration`: RFC 3339 UTC, seconds, `Z`.
EXPIRATION_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

CONTAINER = "container-credentials"
OIDC = "oidc"
ORG_ID = "cw-test-org"

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d\d):?(\d\d))?$"
)


def to_epoch(value):
    """Seconds since the epoch for an emulator/sidecar time of any shape:
    a number, a datetime, or an RFC 3339 string (fractions, offsets)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    text = str(value).strip()
    m = _RFC3339_RE.match(text)
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % (text,))
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    base = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc).timestamp()
    if m.group(7):
        base += float("0." + m.group(7))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        base -= offset if m.group(9) == "+" else -offset
    return base


def body_text(resp):
    body = resp.body
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8", "replace")
    return str(body)


def body_json(resp):
    """The parsed JSON body of a cwtest Response, or None when it is not JSON."""
    value = getattr(resp, "json", None)
    if callable(value):
        try:
            value = value()
        except Exception:
            value = None
    if value is not None:
        return value
    try:
        return json.loads(body_text(resp))
    except ValueError:
        return None


def header(resp, name):
    headers = resp.headers or {}
    name = name.lower()
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def await_condition(predicate, timeout, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a truthy value; return that value.
    Raise AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def observe_until(deadline_epoch):
    """Let wall-clock time pass until `deadline_epoch`: used only for windows
    in which the tests count upstream attempts."""
    while True:
        left = deadline_epoch - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def socket_inodes(pid):
    """The inodes of a process's sockets, as /proc/net/tcp names them."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def sanitized(pid):
    """Whether the process runs a sanitizer build (figures mean little there)."""
    maps = Path("/proc/%d/maps" % pid).read_text()
    return any(name in maps for name in ("libasan", "libtsan", "libubsan", "liblsan"))


def rec(record, field, default=None):
    if isinstance(record, dict):
        return record.get(field, default)
    return getattr(record, field, default)


def record_status(record):
    status = rec(record, "status")
    return int(status) if status is not None else None


def attempts_between(emulator, start, end):
    """Upstream requests (successful or not) received in [start, end)."""
    return [r for r in list(emulator.exchanges) if start <= to_epoch(rec(r, "time")) < end]


class Env:
    """One isolated world for a test: temp dir, PKI, issuer, token dir, emulator."""

    def __init__(self, tc, lifetime=900, org_id=ORG_ID, kubelet=True):
        self.tc = tc
        self.tmp = Path(tempfile.mkdtemp(prefix="cwcreds-it-"))
        tc.addCleanup(shutil.rmtree, str(self.tmp), True)
        self._stack = contextlib.ExitStack()
        tc.addCleanup(self._stack.close)
        (self.tmp / "pki").mkdir()
        self.pki = cwtest.Pki(str(self.tmp / "pki"))
        self.issuer = cwtest.Issuer()
        (self.tmp / "tokens").mkdir()
        self.tokdir = cwtest.KubeletTokenDir(str(self.tmp / "tokens"))
        self.org_id = org_id
        self.emu = self._stack.enter_context(
            cwtest.Emulator(self.pki, self.issuer, lifetime=lifetime, org_id=org_id)
        )
        self.sidecars = []

    # -- tokens ---------------------------------------------------------
    def mint(self, **kw):
        return self.issuer.mint(**kw)

    def write_token(self, **kw):
        token = self.mint(**kw)
        self.tokdir.write(token)
        return token

    # -- sidecar --------------------------------------------------------
    def args(self, mode=CONTAINER, token_file=None, extra=(), duration="20s", log_level="debug"):
        token_file = token_file or self.tokdir.path
        if mode == OIDC:
            args = [
                "--exchange", OIDC,
                "--org-id", self.org_id,
                "--endpoint", self.emu.url_oidc(),
                "--duration", duration,
            ]
        else:
            args = ["--endpoint", self.emu.url_container()]
        args += [
            "--token-file", str(token_file),
            "--ca-file", self.pki.ca_file,
            "--log-level", log_level,
        ]
        return args + list(extra)

    def sidecar(self, args, env=None, start=True, wait_ready=True, timeout=10):
        full_env = None
        if env is not None:
            full_env = dict(os.environ)
            full_env.update(env)
        sc = cwtest.Sidecar(args, env=full_env)
        self.sidecars.append(sc)
        self.tc.addCleanup(stop_quietly, sc)
        if start:
            sc.start(wait_ready=wait_ready, timeout=timeout)
        return sc

    def log_tails(self, lines=60):
        out = []
        for i, sc in enumerate(self.sidecars):
            try:
                text = sc.log_text()
            except Exception as exc:  # pragma: no cover - diagnostics only
                text = "<no log: %r>" % (exc,)
            tail = "\n".join(text.splitlines()[-lines:])
            out.append("--- sidecar #%d log (last %d lines) ---\n%s" % (i, lines, tail))
        return "\n".join(out)


def stop_quietly(sc):
    try:
        if getattr(sc, "returncode", None) is None:
            sc.stop(signal.SIGTERM, 5)
    except Exception:
        pass


class TestCase(unittest.TestCase):
    """unittest.TestCase that prints the sidecar logs of a failed test."""

    def setUp(self):
        self._envs = []
        self.addCleanup(self._dump_logs_on_failure)

    def env(self, **kw):
        e = Env(self, **kw)
        self._envs.append(e)
        return e

    def _dump_logs_on_failure(self):
        if not self._failed_so_far():
            return
        for e in self._envs:
            sys.stderr.write("\n%s\n" % e.log_tails())

    def _failed_so_far(self):
        # Python >= 3.11 reports failures to the result at once; older
        # versions collect them in the outcome until the test ends.
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        if any(exc for _, exc in getattr(outcome, "errors", []) or []):
            return True
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        failed = list(getattr(result, "failures", [])) + list(getattr(result, "errors", []))
        return any(test is self or getattr(test, "test_case", None) is self for test, _ in failed)

    # -- assertions shared by several files -----------------------------
    def assertErrorBody(self, resp, status):
        self.assertEqual(resp.status, status, body_text(resp))
        data = body_json(resp)
        self.assertIsInstance(data, dict, "error body is not a JSON object: %r" % body_text(resp))
        self.assertIn("Code", data)
        self.assertIn("Message", data)
        self.assertIsInstance(data["Code"], str)
        self.assertIsInstance(data["Message"], str)
        return data

    def assertCredentials(self, resp):
        """A well-formed 200 container-credentials answer; returns the JSON."""
        self.assertEqual(resp.status, 200, body_text(resp))
        ctype = header(resp, "content-type") or ""
        self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json")
        self.assertIn("no-store", (header(resp, "cache-control") or "").lower())
        data = body_json(resp)
        self.assertIsInstance(data, dict, body_text(resp))
        for key in ("AccessKeyId", "SecretAccessKey", "Token", "Expiration"):
            self.assertIn(key, data)
        self.assertIsInstance(data["Token"], str)
        self.assertIsInstance(data["AccessKeyId"], str)
        self.assertIsInstance(data["SecretAccessKey"], str)
        self.assertRegex(data["Expiration"], EXPIRATION_RE)
        return data


def main():
    unittest.main(verbosity=int(os.environ.get("CWTEST_VERBOSITY", "1")))
