"""`cwcreds webhook` over real TLS: AdmissionReviews as the API server sends
them, the certificate rotated the way the kubelet updates a mounted Secret
while reviews keep flowing, and hostile bodies."""

import base64
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

        self.proc = subprocess.Popen(
            [str(cwtest.cwcreds_bin()), "webhook", "--listen", "127.0.0.1:0",
             "--tls-cert-file", str(root / "tls" / "tls.crt"), "--tls-key-file", str(root / "tls" / "tls.key"),
             "--org-id", "acme", "--image", "registry.example.com/cwcreds:0.1.0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(self.proc.stdout.close)
        self.addCleanup(cwtest.stop_process, self.proc)
        self.log = []
        started = threading.Event()
        self.port = None

        def drain():
            for line in self.proc.stdout:
                self.log.append(line)
                match = re.search(r"webhook listening .*port=(\d+)", line)
                if match:
                    self.port = int(match.group(1))
                    started.set()
            started.set()

        threading.Thread(target=drain, daemon=True).start()
        self.assertTrue(started.wait(10), "the webhook did not start")
        self.assertIsNotNone(self.port, "".join(self.log))

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

    def test_malformed_and_oversized_reviews_get_a_clear_400(self):
        status, body = self.post(b"{not json")
        self.assertEqual((status, json.loads(body)), (400, {"error": "body is not JSON"}))
        status, body = self.post(b"x" * (3 * 1024 * 1024 + 1))
        self.assertEqual((status, json.loads(body)), (400, {"error": "AdmissionReview larger than 3145728 bytes"}))
        # A huge Content-Length is refused before any body is sent: no memory reserved for it.
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            tls = ssl.create_default_context(cafile=str(self.both_cas)).wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000000000\r\n\r\n")
            head = tls.recv(4096).decode()
            self.assertTrue(head.startswith("HTTP/1.1 400"), head)
        # ...and the webhook still answers.
        status, _ = self.post(review(pod()))
        self.assertEqual(status, 200)
        metrics = self.get("/metrics")
        self.assertIn('cwcreds_webhook_admissions_total{result="bad_request"} 3', metrics)
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
        import gzip  # noqa: PLC0415 - only this test needs it
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
        silent = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(300)]
        try:
            # A real review still gets its answer (late: workers are freed as
            # the silent ones time out), and no thread was added per connection.
            conn = self.connect(self.both_cas)
            conn.timeout = 120
            status, _ = self.post(review(pod()), conn=conn)
            conn.close()
            self.assertEqual(status, 200)
            # A fixed pool (64 workers, the acceptor, main), not a thread each.
            self.assertLessEqual(self.threads(), at_rest)
        finally:
            for sock in silent:
                sock.close()

    def test_sigterm_exits_cleanly(self):
        self.assertEqual(cwtest.stop_process(self.proc), 0)


if __name__ == "__main__":
    unittest.main()
