"""`cwcreds webhook` over real TLS: AdmissionReviews as the API server sends
them, refusals that say why, logs that cannot be forged, and the certificate
rotated the way the kubelet updates a mounted Secret while reviews keep
flowing. Hostile clients: test_webhook_attacks.py."""

import base64
import json
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402
from webhook_client import UID, WebhookCase, pod, review  # noqa: E402


class WebhookTest(WebhookCase):
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
                         "cwcreds cannot inject this pod: hostNetwork pod: the cwcreds sidecar's ports would be "
                         "the node's, shared with every hostNetwork pod there; choose two ports free on the node "
                         "with annotations cwcreds.coreweave.com/port and cwcreds.coreweave.com/probe-port")

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

    def test_probes_answer(self):
        self.assertEqual(self.get("/healthz"), "ok\n")
        self.assertEqual(self.get("/readyz"), "ok\n")

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

    def test_sigterm_exits_cleanly(self):
        self.assertEqual(cwtest.stop_process(self.proc), 0)





if __name__ == "__main__":
    unittest.main()
