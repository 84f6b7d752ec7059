"""The webhook as the integration tests drive it: AdmissionReviews as the API
server sends them, the webhook started on a loopback port with a test
certificate, and a test case holding one running webhook with the helpers
its tests share (test_webhook.py, test_webhook_attacks.py,
test_slow_clients.py).

A review counts as answered only within the API server's timeoutSeconds
(manifests/webhook/mutatingwebhookconfiguration.yaml): past it, the API server
gives up and the pod's admission fails, however well the webhook answers later.
"""

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import unittest
from pathlib import Path

import cwtest

UID = "0df28fbd-5f5f-4f63-8b8b-0123456789ab"
# timeoutSeconds in manifests/webhook/mutatingwebhookconfiguration.yaml: the
# whole call, connection and TLS handshake included, must end within it.
API_SERVER_TIMEOUT = 5
# Bodies just under the webhook's 3 MiB limit on an AdmissionReview.
LARGE_BODY = 3 * 1024 * 1024 - 1024


def review(pod, operation="CREATE", kind="Pod"):
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation,
            "namespace": "team-a",
            "object": pod,
        },
    }


def pod(labelled=True, **spec):
    labels = {"app": "web"}
    if labelled:
        labels["cwcreds/inject"] = "true"
    body = {"containers": [{"name": "web", "image": "nginx"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "labels": labels}, "spec": body}


def start_webhook(test, cert_file, key_file):
    """Runs `cwcreds webhook` on a free loopback port with this key pair,
    stopped when `test` is cleaned up; returns the process, its port and its
    log lines (appended as they come)."""
    proc = subprocess.Popen(
        [str(cwtest.cwcreds_bin()), "webhook", "--listen", "127.0.0.1:0",
         "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
         "--org-id", "acme", "--image", "registry.example.com/cwcreds:0.1.0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    test.addCleanup(proc.stdout.close)
    test.addCleanup(cwtest.stop_process, proc)
    log, ports = [], []
    started = threading.Event()

    def drain():
        for line in proc.stdout:
            log.append(line)
            match = re.search(r"webhook listening .*port=(\d+)", line)
            if match:
                ports.append(int(match.group(1)))
                started.set()
        started.set()

    threading.Thread(target=drain, daemon=True).start()
    test.assertTrue(started.wait(10), "the webhook did not start")
    test.assertTrue(ports, "".join(log))
    return proc, ports[0], log


def admit(port, cafile, body, timeout=API_SERVER_TIMEOUT):
    """POSTs one review the way the API server does: a fresh TLS connection,
    the whole call bounded by `timeout`. Returns (status, body, seconds); the
    status is the error's repr when the call failed or ran out of time, which
    the API server would count as a failed admission. (http.client gives
    the TCP connect and the TLS handshake `timeout` each, so an answer that
    comes later than `timeout` in all is turned into a failure at the end.)"""
    started = time.monotonic()
    deadline = started + timeout
    context = ssl.create_default_context(cafile=str(cafile))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        conn.connect()
        # Each step gets what is left of the budget, not a fresh timeout.
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        conn.request("POST", "/mutate", body=data, headers={"Content-Type": "application/json"})
        conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        response = conn.getresponse()
        answer = response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as error:
        status, answer = repr(error), b""
    finally:
        conn.close()
    seconds = time.monotonic() - started
    if seconds > timeout and not isinstance(status, str):
        status = "answered after %.1f s" % seconds
    return status, answer, seconds


def has_patch(body):
    """Whether a webhook answer carries the JSONPatch that injects the sidecar."""
    try:
        return bool(json.loads(body)["response"]["patch"])
    except (ValueError, KeyError, TypeError):
        return False


def client_hello():
    """The first flight of a real TLS client (a ClientHello record, about
    500 bytes), made in memory without a server."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # waiting for the ServerHello, which never comes
    return outgoing.read()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else float("nan")


def summary(outcomes):
    """`3 x HTTP/1.1 400 Bad Request, 1 x held` for a figure line."""
    counts = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join("%d x %s" % (n, outcome) for outcome, n in sorted(counts.items()))


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: tls.crt and
    tls.key are symlinks through `..data`, which is swapped atomically."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.generation = 0
        for name in ("tls.crt", "tls.key"):
            os.symlink(f"..data/{name}", self.dir / name)

    def publish(self, pki: cwtest.Pki):
        self.generation += 1
        target = self.dir / f"..gen{self.generation}"
        target.mkdir()
        (target / "tls.crt").write_bytes(pki.cert_file.read_bytes())
        (target / "tls.key").write_bytes(pki.key_file.read_bytes())
        link = self.dir / "..data_tmp"
        os.symlink(target.name, link)
        os.replace(link, self.dir / "..data")


class WebhookCase(unittest.TestCase):
    """One webhook per test, serving the old certificate from a Secret-like
    directory; `both_cas` trusts the old and the new one."""

    def setUp(self):
        tmp = cwtest.TempDir()
        self.addCleanup(tmp.cleanup)
        root = tmp.path
        self.pki_old = cwtest.Pki(root / "pki-old")
        self.pki_new = cwtest.Pki(root / "pki-new")
        (root / "tls").mkdir()
        self.secret = SecretVolume(root / "tls")
        self.secret.publish(self.pki_old)
        self.both_cas = root / "both-cas.pem"
        self.both_cas.write_bytes(self.pki_old.ca_file.read_bytes() + self.pki_new.ca_file.read_bytes())

        self.proc, self.port, self.log = start_webhook(self, root / "tls" / "tls.crt", root / "tls" / "tls.key")

    def connect(self, cafile):
        context = ssl.create_default_context(cafile=str(cafile))
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)

    def post(self, body, cafile=None, conn=None):
        own = conn is None
        conn = conn or self.connect(cafile or self.both_cas)
        try:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            conn.request("POST", "/mutate", body=data, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()

    def raw_tls(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return ssl.create_default_context(cafile=str(self.both_cas)).wrap_socket(raw, server_hostname="localhost")


    @staticmethod
    def read_until_closed(tls):
        data = b""
        try:
            while len(data) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return data.decode(errors="replace")

    def peak_rss_mib(self):
        for line in Path("/proc/%d/status" % self.proc.pid).read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
        return 0.0

    def get(self, path):
        conn = self.connect(self.both_cas)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            self.assertEqual(response.status, 200, path)
            return response.read().decode()
        finally:
            conn.close()

    def handshake_ok(self, cafile):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                ssl.create_default_context(cafile=str(cafile)).wrap_socket(raw, server_hostname="localhost").close()
            return True
        except ssl.SSLError:
            return False

    def threads(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))

    def drip(self, kind, stop, state):
        """One attacker, on a thread of its own, as a slow-HTTP tool runs
        one: a connection that sends a byte a second, opened again a second
        after the webhook closes it, until `stop` is set. A byte a second is
        under any per-read timeout, so only a deadline on the whole
        handshake, head or body ends a connection. `state` counts the bytes
        dripped and the connections the webhook closed."""
        deadline = time.monotonic() + 60  # a bound on the thread; the test stops it long before
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                self.drip_one_connection(kind, stop, state, deadline)
            except OSError as error:
                if not stop.is_set():
                    state["closed"] += 1
                    state["last error"] = repr(error)
                    stop.wait(1)

    def drip_one_connection(self, kind, stop, state, deadline):
        """Gets as far as the webhook lets it (TCP, the TLS handshake, the
        first bytes of a request that never ends), then sends a byte a
        second; returns once stopped, raises once the webhook closes it."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            # No wait below is longer than a second, so `stop` is seen in time.
            sock.settimeout(1)
            if kind == "slow hello":
                hello = state["hello"]
                first, drops = hello[:1], (hello[i:i + 1] for i in range(1, len(hello)))
            else:
                sock = ssl.create_default_context(cafile=str(self.both_cas)).wrap_socket(
                    sock, server_hostname="localhost", do_handshake_on_connect=False)
                while True:
                    try:
                        sock.do_handshake()
                        break
                    except TimeoutError:  # the webhook has not answered the ClientHello yet
                        if stop.is_set() or time.monotonic() > deadline:
                            return
                head = b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                if kind == "slow head":
                    first, drops = head + b"X-Drip: ", iter(lambda: b"a", None)
                else:
                    first, drops = head + b"Content-Length: 100000\r\n\r\n", iter(lambda: b" ", None)
            sock.sendall(first)
            for byte in drops:
                if stop.wait(1) or time.monotonic() > deadline:
                    return
                sock.sendall(byte)
                state["dripped"] += 1
        finally:
            sock.close()
