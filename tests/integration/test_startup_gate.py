"""The startup gate (/startupz, --startup-gate): what a Kubernetes startup
probe on the sidecar sees when CoreWeave refuses the pod's token for good.

What a user relies on: the probe holds the app back while credentials may
still come, then, once the gate has passed, lets the app start without them,
so the app's credential requests fail with the sidecar's reason and a Job
fails (and counts against backoffLimit) instead of sitting in Init; /readyz
keeps saying that no credentials are held, and the gate opening is logged
once.
"""

import http.client
import json
import re
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import await_condition, body_json, body_text  # noqa: E402

GATE = 3.0  # seconds; long enough for the first probe to come before it
REJECTED = '{"code": 7, "message": "permission denied: organization policy"}'
GATE_LOG_RE = re.compile(r"startup gate open without credentials after=3s last_exchange=rejected http_status=403")


def probe_get(port, path):
    """(status, body) of one GET on the probe listener."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


class StartupGate(itest.TestCase):
    def test_a_token_refused_for_good_opens_the_gate_without_credentials(self):
        env = self.env()
        env.emu.set_fault(status=403, body=REJECTED)
        token = env.write_token()
        started = time.monotonic()
        sc = env.sidecar(env.args(extra=["--startup-gate", "%gs" % GATE, "--probe-listen", "127.0.0.1:0"]),
                         wait_ready=False)
        line = sc.wait_for_log(r"probes listening")
        probe_port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))

        waiting = sc.get("/startupz")
        self.assertLess(time.monotonic() - started, GATE, "the first probe came too late to see the gate shut")
        self.assertEqual(self.assertErrorBody(waiting, 503)["Code"], "NotStarted")
        sc.wait_for_log(r"exchange failed kind=rejected status=403")

        def startup_passed():
            resp = sc.get("/startupz")
            return resp if resp.status == 200 else None

        opened = await_condition(startup_passed, timeout=GATE + 10, what="/startupz 200")
        self.assertGreaterEqual(time.monotonic() - started, GATE, "the gate opened before --startup-gate passed")
        self.assertEqual(body_json(opened), {"status": "gate-open", "reason": "last exchange: rejected (HTTP 403)"})
        status, body = probe_get(probe_port, "/startupz")
        self.assertEqual((status, json.loads(body)["status"]), (200, "gate-open"))

        # Readiness still says no credentials are held, on both listeners.
        self.assertEqual(sc.get("/readyz").status, 503)
        self.assertEqual(probe_get(probe_port, "/readyz")[0], 503)

        # The app that now starts is told why it gets no keys.
        refused = self.assertErrorBody(sc.get("/v1/credentials", token=token), 503)
        self.assertEqual(refused["Code"], "CredentialsUnavailable")
        self.assertIn("rejected (HTTP 403)", refused["Message"])

        # One warning, however often the probes asked.
        sc.wait_for_log(GATE_LOG_RE)
        self.assertEqual(sc.get("/startupz").status, 200)
        self.assertEqual(len([l for l in sc.lines if GATE_LOG_RE.search(l)]), 1, sc.log_text())

    def test_held_credentials_pass_the_startup_probe_at_once(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args(extra=["--startup-gate", "10m"]))
        resp = sc.get("/startupz")
        self.assertEqual(resp.status, 200, body_text(resp))
        self.assertEqual(body_json(resp), {"status": "ready"})
        self.assertNotIn("startup gate open", sc.log_text())


if __name__ == "__main__":
    itest.main()
