"""`cwcreds webhook` over real TLS: AdmissionReviews as the API server sends
them, the certificate rotated the way the kubelet updates a mounted Secret
while reviews keep flowing, and hostile clients: bodies too large, chunked or
compressed, silent connections, and connections that send a byte a second.

A review counts as answered only within the API server's timeoutSeconds
(manifests/webhook/mutatingwebhookconfiguration.yaml): past it, the API server
gives up and the pod's admission fails, however well the webhook answers later.
"""

import base64
import gzip
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402
from itest import sanitized  # noqa: E402

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


class WebhookTest(unittest.TestCase):
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

    def test_labelled_pod_is_patched_unlabelled_passes_unservable_is_denied(self):
        status, body = self.post(review(pod()))
        self.assertEqual(status, 200)
        answer = json.loads(body)["response"]
        self.assertEqual(answer["uid"], UID)
        self.assertTrue(answer["allowed"])
        self.assertEqual(answer["patchType"], "JSONPatch")
        patch = json.loads(base64.b64decode(answer["patch"]))
        self.assertEqual(patch[0]["path"], "/spec/initContainers")
        self.assertEqual(patch[0]["value"][0]["name"], "cwcreds")
        self.assertEqual(patch[0]["value"][0]["image"], "registry.example.com/cwcreds:0.1.0")

        status, body = self.post(review(pod(labelled=False)))
        self.assertEqual((status, json.loads(body)["response"]), (200, {"uid": UID, "allowed": True}))

        status, body = self.post(review(pod(hostNetwork=True, containers=[
            {"name": "exporter", "image": "x", "ports": [{"containerPort": 9911}]}])))
        answer = json.loads(body)["response"]
        self.assertEqual(status, 200)
        self.assertFalse(answer["allowed"])
        self.assertEqual(answer["status"]["message"],
                         "cwcreds cannot inject this pod: hostNetwork pod: container 'exporter' uses port 9911, "
                         "which the cwcreds sidecar needs on the node's network (9911 credentials, 9912 probes)")

    def test_a_pod_name_cannot_forge_log_lines_or_send_terminal_escapes(self):
        # No space, tab, quote or '=' (which used to be what got a value quoted):
        # vertical tabs stand in for spaces on a terminal.
        forged = "web\n2026-12-05T00:00:00.000Z\vinfo\vadmission\vallowed\x1b]0;owned\x07\x1b[2J"
        refused = pod(hostNetwork=True, containers=[{"name": "x", "image": "x", "ports": [{"containerPort": 9911}]}])
        refused["metadata"]["name"] = forged
        status, body = self.post(review(refused))
        self.assertEqual(status, 200)
        self.assertFalse(json.loads(body)["response"]["allowed"])
        deadline = time.monotonic() + 10
        while not any("admission refused" in line for line in self.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        text = "".join(self.log)
        refusals = [line for line in self.log if "admission refused" in line]
        self.assertEqual(len(refusals), 1, text)
        self.assertIn(r'pod="team-a/web\n2026-12-05T00:00:00.000Z', refusals[0])
        self.assertFalse(any(line.startswith("2026-12-05T00:00:00.000Z") for line in self.log), text)
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\x07", text)
        self.assertNotIn("\v", text)

    def test_malformed_and_oversized_reviews_are_refused_saying_why(self):
        status, body = self.post(b"{not json")
        self.assertEqual((status, json.loads(body)), (400, {"error": "body is not JSON"}))
        # Over 3 MiB: refused on the head, before the body is read (no memory reserved for it).
        for length in (3 * 1024 * 1024 + 1, 100000000000):
            with self.raw_tls() as tls:
                tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n" % length)
                answer = self.read_until_closed(tls)
            self.assertTrue(answer.startswith("HTTP/1.1 413"), answer)
            self.assertIn('{"error":"the body is larger than 3145728 bytes"}', answer)
        # A 40 MiB header line is judged at 16 KiB, not read whole.
        with self.raw_tls() as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nX-Long: ")
            sent = 0
            try:
                for _ in range(40):
                    tls.sendall(b"a" * (1 << 20))
                    sent += 1
            except OSError:
                pass  # answered and closed
            answer = self.read_until_closed(tls)
        self.assertTrue(answer.startswith("HTTP/1.1 431"), answer)
        sys.stderr.write("\n  [figure] 40 MiB header line: %d MiB sent before the 431; webhook peak RSS %.1f MiB\n"
                         % (sent, self.peak_rss_mib()))
        # ...and the webhook still answers.
        status, _ = self.post(review(pod()))
        self.assertEqual(status, 200)
        metrics = self.get("/metrics")
        self.assertIn('cwcreds_webhook_admissions_total{result="bad_request"} 4', metrics)
        self.assertIn('cwcreds_webhook_admissions_total{result="mutated"} 1', metrics)

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

    def test_chunked_and_compressed_bodies_are_refused_before_they_are_read(self):
        # 40 MiB sent chunked: refused on the head, the body never read.
        with self.raw_tls() as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (1 << 20, b"{" * (1 << 20))
            sent = 0
            try:
                for _ in range(40):
                    tls.sendall(chunk)
                    sent += 1
            except OSError:
                pass  # the webhook answered and closed
            answer = self.read_until_closed(tls)
        self.assertTrue(answer.startswith("HTTP/1.1 411"), answer)
        self.assertIn("chunked", answer)
        # 40 KiB of gzip that would inflate to 40 MiB.
        bomb = gzip.compress(b" " * (40 << 20))
        with self.raw_tls() as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)
            answer = self.read_until_closed(tls)
        self.assertTrue(answer.startswith("HTTP/1.1 415"), answer)
        peak = self.peak_rss_mib()
        sys.stderr.write("\n  [figure] 40 MiB chunked (%d MiB sent before the refusal) and a %d KiB gzip "
                         "bomb: webhook peak RSS %.1f MiB\n" % (sent, len(bomb) >> 10, peak))
        status, _ = self.post(review(pod()))
        self.assertEqual(status, 200)
        self.assertIn("admission refused reason=\"a compressed body is refused\"", "".join(self.log))
        if not sanitized(self.proc.pid):
            self.assertLess(peak, 64, "the webhook's peak memory (README: under 64 MiB whatever bodies arrive)")

    def get(self, path):
        conn = self.connect(self.both_cas)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            self.assertEqual(response.status, 200, path)
            return response.read().decode()
        finally:
            conn.close()

    def test_probes_answer(self):
        self.assertEqual(self.get("/healthz"), "ok\n")
        self.assertEqual(self.get("/readyz"), "ok\n")

    def handshake_ok(self, cafile):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                ssl.create_default_context(cafile=str(cafile)).wrap_socket(raw, server_hostname="localhost").close()
            return True
        except ssl.SSLError:
            return False

    def test_certificate_rotated_mid_run_without_a_failed_review(self):
        self.assertTrue(self.handshake_ok(self.pki_old.ca_file))
        self.assertFalse(self.handshake_ok(self.pki_new.ca_file))

        # Reviews keep flowing, new connections each time and one kept alive,
        # while the Secret volume flips to the new pair.
        failures, done = [], threading.Event()
        counts = {"fresh": 0, "kept": 0}

        def stream():
            kept = self.connect(self.both_cas)
            deadline = time.monotonic() + 30
            try:
                while not done.is_set() and time.monotonic() < deadline:
                    for name, conn in (("fresh", None), ("kept", kept)):
                        status, _ = self.post(review(pod()), conn=conn)
                        counts[name] += 1
                        if status != 200:
                            failures.append((name, status))
            except Exception as error:  # noqa: BLE001 - reported below
                failures.append(repr(error))
            finally:
                kept.close()

        worker = threading.Thread(target=stream)
        worker.start()
        self.secret.publish(self.pki_new)
        deadline = time.monotonic() + 10
        while not self.handshake_ok(self.pki_new.ca_file):
            self.assertLess(time.monotonic(), deadline, "the new certificate was never served")
        after = dict(counts)
        while counts["fresh"] < after["fresh"] + 5 and worker.is_alive():
            time.sleep(0.01)
        done.set()
        worker.join()
        self.assertEqual(failures, [])
        self.assertGreater(counts["kept"], 0)
        self.assertFalse(self.handshake_ok(self.pki_old.ca_file), "the old certificate is still served")
        self.assertIn('cwcreds_webhook_certificate_reloads_total{result="ok"} 1', self.get("/metrics"))

    def test_a_broken_new_pair_keeps_the_old_one_serving(self):
        broken = cwtest.Pki(self.secret.dir.parent / "pki-broken")
        broken.key_file.write_bytes(self.pki_new.key_file.read_bytes())  # key of another certificate
        self.secret.publish(broken)
        self.assertTrue(self.handshake_ok(self.pki_old.ca_file))
        status, _ = self.post(review(pod()), cafile=self.pki_old.ca_file)
        self.assertEqual(status, 200)
        self.assertIn('cwcreds_webhook_certificate_reloads_total{result="failed"} 1', self.get("/metrics"))
        self.assertTrue(any("certificate reload failed" in line for line in self.log))

    def threads(self):
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))

    def test_a_flood_of_silent_connections_takes_no_thread_each_and_passes(self):
        # Counted against the process at rest, its pool started (it has
        # answered): a sanitizer runtime adds threads of its own.
        self.assertEqual(self.post(review(pod()))[0], 200)
        at_rest = self.threads()
        # How long they take to open is a figure: a webhook that stops
        # accepting while its threads are busy leaves the kernel's backlog
        # full, and each further connection attempt is retried a second later.
        started = time.monotonic()
        silent = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(300)]
        opened = time.monotonic() - started
        try:
            # A real review gets its answer within the API server's timeout,
            # and no thread was added per connection.
            status, body, seconds = admit(self.port, self.both_cas, review(pod()))
            during = self.threads()
            sys.stderr.write("\n  [figure] 300 silent connections (opened in %.1f s): a review answered %s in "
                             "%.0f ms; webhook threads %d at rest, %d during the flood\n"
                             % (opened, status, 1000 * seconds, at_rest, during))
            self.assertEqual((status, has_patch(body)), (200, True))
            self.assertLessEqual(during, at_rest)
        finally:
            for sock in silent:
                sock.close()

    # -- connections that send a byte a second ----------------------------

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

    def test_128_drip_connections_do_not_delay_a_review(self):
        # A third each: a head, a TLS ClientHello and a body, each sent a byte
        # a second. Twice the old fixed pool's 64 threads: a server that gives
        # each connection a thread until it finishes has none left.
        hello = client_hello()
        kinds = ("slow head", "slow hello", "slow body")
        states = [{"kind": kinds[i % 3], "hello": hello, "dripped": 0, "closed": 0, "last error": None}
                  for i in range(128)]
        stop = threading.Event()
        threads = [threading.Thread(target=self.drip, args=(state["kind"], stop, state), daemon=True)
                   for state in states]

        def halt():
            stop.set()
            for thread in threads:
                thread.join(10)

        self.addCleanup(halt)
        for thread in threads:
            thread.start()
        # Reviews start once every attacker has dripped twice, past a
        # per-read timeout of a second or two. A server that serves only as
        # many TLS handshakes as it has threads never lets the rest get that
        # far: the reviews start after this bound all the same.
        deadline = time.monotonic() + 5
        while not all(s["dripped"] >= 2 for s in states) and time.monotonic() < deadline:
            time.sleep(0.05)
        in_place = sum(s["dripped"] >= 2 for s in states)

        # One after another, each on a fresh connection, as the API server
        # may; half a second apart, so that they span several seconds of the
        # attack, past any deadline of a few seconds on the drippers' requests
        # and the reconnections that follow.
        results = []
        for index in range(12):
            if index:
                stop.wait(0.5)
            status, body, seconds = admit(self.port, self.both_cas, review(pod()))
            results.append((status, has_patch(body), seconds))
            if status != 200:
                break  # the rest would wait out their 5 s the same way
        answered = [seconds for status, _, seconds in results if status == 200]
        sys.stderr.write(
            "\n  [figure] 128 drip connections (%s), %d dripping when the reviews began, %d closed by the "
            "webhook (and opened again) by the end: %d of %d reviews answered 200, p50 %.0f ms, max %.0f ms; "
            "first failure: %s\n"
            % (", ".join("%d %s" % (sum(s["kind"] == kind for s in states), kind) for kind in kinds),
               in_place, sum(s["closed"] for s in states), len(answered), len(results),
               1000 * percentile(answered, 0.5), 1000 * max(answered, default=float("nan")),
               next((status for status, _, _ in results if status != 200), "none")))
        self.assertEqual([(status, patched) for status, patched, _ in results], [(200, True)] * 12)
        self.assertIsNone(self.proc.poll(), "the webhook exited")

    # -- many large bodies at once ----------------------------------------

    def test_many_large_bodies_at_once_keep_memory_bounded(self):
        # 32 bodies just under the 3 MiB limit arrive together, 64 KiB at a
        # time: half never end (held open once all but the last piece is
        # sent), half end as garbage. A server that keeps each whole body as
        # it arrives needs about 100 MiB for them, near the container's
        # 128 MiB memory limit (manifests/webhook/deployment.yaml), where the
        # kernel kills the webhook and every labelled pod's admission fails;
        # 64 MiB leaves that limit a wide margin. Chunked and gzip bodies come
        # at the same time: refused on their heads, they must add nothing.
        bomb = gzip.compress(b" " * (40 << 20))
        piece = b"x" * (64 << 10)
        release = threading.Event()
        self.addCleanup(release.set)
        outcomes = {}

        def status_line(tls):
            try:
                return tls.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
            except OSError as error:
                return repr(error)

        def large(index):
            finish = index % 2 == 0
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n" % LARGE_BODY)
                    left = LARGE_BODY if finish else LARGE_BODY - len(piece)
                    while left > 0:
                        tls.sendall(piece[:left])
                        left -= min(left, len(piece))
                        time.sleep(0.02)  # the pace of the attack: the bodies overlap for about a second
                    if finish:
                        outcomes[index] = status_line(tls)
                    else:
                        outcomes[index] = "held"
                        release.wait(30)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        def chunked(index):
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n")
                    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"{" * (1 << 20))
                    try:
                        for _ in range(40):
                            tls.sendall(chunk)
                    except OSError:
                        pass  # the webhook answered and closed
                    outcomes[index] = status_line(tls)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        def gzipped(index):
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)
                    outcomes[index] = status_line(tls)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        senders = [(large, i) for i in range(32)] + [(chunked, 32), (chunked, 33), (gzipped, 34), (gzipped, 35)]
        threads = [threading.Thread(target=target, args=(index,), daemon=True) for target, index in senders]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(outcomes) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        release.set()
        for thread in threads:
            thread.join(10)

        status, body, _ = admit(self.port, self.both_cas, review(pod()))
        peak = self.peak_rss_mib()
        seen = [outcomes.get(i, "unfinished") for i in range(len(threads))]
        sys.stderr.write(
            "\n  [figure] 32 bodies of 3 MiB - 1 KiB at once (16 held open: %s; 16 ending in garbage: %s), "
            "2 x 40 MiB chunked (%s), 2 gzip bombs of %d KiB (%s): webhook peak RSS %.1f MiB\n"
            % (summary(seen[1:32:2]), summary(seen[0:32:2]), summary(seen[32:34]), len(bomb) >> 10,
               summary(seen[34:36]), peak))
        self.assertEqual((status, has_patch(body)), (200, True))
        self.assertIsNone(self.proc.poll(), "the webhook exited")
        if not sanitized(self.proc.pid):
            self.assertLess(peak, 64, "the webhook's peak memory, 32 large bodies at once")

    def test_sigterm_exits_cleanly(self):
        self.assertEqual(cwtest.stop_process(self.proc), 0)


if __name__ == "__main__":
    unittest.main()
