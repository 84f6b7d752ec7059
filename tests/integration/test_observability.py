#!/usr/bin/env python3
"""Seeing why credentials fail: /v1/status, /metrics, `cwcreds inspect`, clock skew.

Runs the real binary against the HTTPS emulator. Each test asserts what an
operator would read while debugging ExpiredToken / InvalidAccessKeyId /
AccessDenied, and that none of it shows a secret.
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import cwtest  # noqa: E402


class Rig(unittest.TestCase):
    """A temp dir, PKI, issuer, kubelet-style token and emulator per test."""

    lifetime = 900

    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cwcreds-obs-"))
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.pki = cwtest.Pki(self.dir)
        self.issuer = cwtest.Issuer()
        self.volume = cwtest.KubeletTokenDir(self.dir / "tokens")
        self.token = self.issuer.mint()
        self.volume.write(self.token)
        self.emulator = cwtest.Emulator(self.pki, self.issuer, lifetime=self.lifetime).start()
        self.addCleanup(self.emulator.stop)

    def sidecar(self, *extra: str) -> cwtest.Sidecar:
        sidecar = cwtest.Sidecar(["--token-file", str(self.volume.path), "--endpoint", self.emulator.url_container(),
                                  "--ca-file", self.pki.ca_file, "--log-level", "debug", *extra])
        self.addCleanup(sidecar.stop)
        return sidecar.start(wait_ready=False)

    def status(self, sidecar: cwtest.Sidecar) -> dict:
        response = sidecar.get("/v1/status", token=self.volume.path.read_text())
        self.assertEqual(response.status, 200, response.body)
        return response.json

    def secrets(self) -> list[str]:
        found = [self.token, self.volume.path.read_text()]
        for record in self.emulator.exchanges:
            found += [record.secret_access_key or "", record.access_key_id or "", record.token or ""]
        return [s for s in found if s]

    def assertNoSecret(self, text: str) -> None:
        for secret in self.secrets():
            self.assertNotIn(secret, text)

    def inspect(self, *args: str) -> subprocess.CompletedProcess:
        return cwtest.run_cwcreds(["inspect", *args])


class Status(Rig):
    def test_healthy_status_shows_token_credentials_and_next_refresh(self):
        sidecar = self.sidecar()
        sidecar.wait_for_log(r"exchange ok")
        status = self.status(sidecar)
        issued = self.emulator.successful_exchanges()[0]
        self.assertTrue(status["ready"])
        self.assertEqual(status["token"]["subject"], "system:serviceaccount:default:app")
        self.assertEqual(status["token"]["audience"], ["https://coreweave.com/iam"])
        self.assertEqual(status["credentials"]["access_key_id"],
                         issued.access_key_id[:4] + "…" + issued.access_key_id[-4:])
        # What the upstream said, and what SDKs are told: the same end on
        # this node's clock, never later, up to Date's second and the
        # whole-second format earlier.
        self.assertEqual(status["credentials"]["upstream_expiration"], issued.expiration)
        served_end = datetime.datetime.fromisoformat(status["credentials"]["expiration"].replace("Z", "+00:00"))
        upstream_end = datetime.datetime.fromisoformat(issued.expiration.replace("Z", "+00:00"))
        served_end, upstream_end = served_end.timestamp(), upstream_end.timestamp()
        self.assertLessEqual(served_end, upstream_end)
        self.assertGreater(served_end, upstream_end - 2.5)
        self.assertEqual(status["credentials"]["lifetime_seconds"], 900)
        self.assertIn("scheduled renewal", status["next_refresh"]["reason"])
        self.assertEqual(status["last_exchange"]["result"], "ok")
        self.assertEqual(status["upstream"]["exchange"], "container-credentials")
        self.assertNoSecret(json.dumps(status))

    def test_failing_upstream_shows_status_code_excerpt_and_backoff(self):
        self.emulator.set_fault(status=503, body='{"code": 14, "message": "backend unavailable"}')
        sidecar = self.sidecar("--retry-initial", "5s")
        self.emulator.wait_for_exchanges(1, successful=False)
        sidecar.wait_for_log(r"exchange failed kind=retryable status=503")
        status = self.status(sidecar)
        self.assertFalse(status["ready"])
        self.assertIsNone(status["credentials"])
        self.assertEqual(status["last_exchange"]["result"], "retryable")
        self.assertEqual(status["last_exchange"]["http_status"], 503)
        self.assertIn("backend unavailable", status["last_exchange"]["error"])
        self.assertIn("backoff after failure 1", status["next_refresh"]["reason"])
        self.assertEqual(status["counters"]["exchanges"]["retryable"], 1)

    def test_status_needs_the_pod_token(self):
        sidecar = self.sidecar()
        self.assertEqual(sidecar.get("/v1/status").status, 401)
        self.assertEqual(sidecar.get("/v1/status", token="someone-else").status, 403)


class Metrics(Rig):
    def test_metrics_are_valid_prometheus_and_free_of_secrets(self):
        sidecar = self.sidecar()
        sidecar.wait_for_log(r"exchange ok")
        sidecar.get("/v1/credentials", token=self.token)
        sidecar.get("/v1/credentials")
        body = sidecar.get("/metrics").body
        self.assertRegex(body, r'cwcreds_http_requests_total\{path="/v1/credentials",code="200"\} 1\n')
        self.assertRegex(body, r'cwcreds_http_requests_total\{path="/v1/credentials",code="401"\} 1\n')
        self.assertRegex(body, r'cwcreds_exchanges_total\{result="ok"\} 1\n')
        self.assertRegex(body, r"\ncwcreds_ready 1\n")
        self.assertRegex(body, r"\ncwcreds_credentials_expires_in_seconds 8\d\d(\.\d+)?\n")
        self.assertRegex(body, r"\ncwcreds_token_expiry_timestamp_seconds \d+")
        self.assertNoSecret(body)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian package prometheus) is needed; scripts/install-deps.sh installs it")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_probe_listener_serves_probes_and_metrics_but_never_credentials(self):
        sidecar = self.sidecar("--probe-listen", "127.0.0.1:0")
        line = sidecar.wait_for_log(r"probes listening")
        port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))
        sidecar.wait_for_log(r"exchange ok")
        def get(path: str, token: str | None = None) -> tuple[int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", path, headers={"Authorization": token} if token else {})
                response = connection.getresponse()
                return response.status, response.read().decode()
            finally:
                connection.close()

        self.assertEqual(get("/readyz")[0], 200)
        self.assertEqual(get("/healthz")[0], 200)
        self.assertIn("cwcreds_ready 1", get("/metrics")[1])
        self.assertEqual(get("/v1/credentials", token=self.token)[0], 404)
        self.assertEqual(get("/v1/status", token=self.token)[0], 404)


class ClockSkew(Rig):
    def test_skewed_upstream_clock_is_reported_and_lifetime_measured_on_its_clock(self):
        # The upstream's clock is 5 minutes behind ours: its 15-minute keys
        # expire, by our clock, 10 minutes after issue. Lifetime must still
        # read 15 minutes, and the skew must be visible everywhere.
        self.emulator.clock_offset = -300
        sidecar = self.sidecar()
        sidecar.wait_for_log(r"exchange ok")
        sidecar.wait_for_log(r"clock skew skew=30\ds")
        status = self.status(sidecar)
        self.assertAlmostEqual(status["credentials"]["lifetime_seconds"], 900, delta=2)
        self.assertAlmostEqual(status["credentials"]["clock_skew_seconds"], 300, delta=2)
        self.assertTrue(status["credentials"]["clock_skew_warning"])
        self.assertRegex(sidecar.get("/metrics").body, r"\ncwcreds_clock_skew_seconds 30\d")
        report = self.inspect("--token-file", str(self.volume.path), "--sidecar", sidecar.base_url)
        self.assertRegex(report.stdout, r"warn\s+clock skew\s+node clock 30\d s from the upstream's")


class RunningLow(Rig):
    lifetime = 12

    def test_a_warning_is_logged_when_served_credentials_drop_under_a_quarter_of_their_life(self):
        sidecar = self.sidecar("--retry-initial", "200ms", "--retry-max", "1s")
        sidecar.wait_for_log(r"exchange ok")
        self.emulator.set_fault(status=503)
        line = sidecar.wait_for_log(r"credentials running low", timeout=15)
        self.assertRegex(line, r"expires_in=[0-3]s lifetime=1[12]s consecutive_failures=\d+ last_error=\"?retryable")


class Inspect(Rig):
    def test_healthy_token_and_sidecar(self):
        sidecar = self.sidecar()
        sidecar.wait_for_log(r"exchange ok")
        report = self.inspect("--token-file", str(self.volume.path), "--sidecar", sidecar.base_url,
                              "--org-id", "cw-test-org")
        self.assertEqual(report.returncode, 0, report.stdout + report.stderr)
        self.assertIn("verdict: OK", report.stdout)
        self.assertIn("access policy principal:  role/https://oidc.cwcreds-test.invalid/abc123:"
                      "system:serviceaccount:default:app", report.stdout)
        self.assertIn('"arn:aws:iam::cw-test-org:role/', report.stdout)
        self.assertRegex(report.stdout, r"ok\s+credentials\s+CWAK…\w{4} expire in 1[45]m")
        self.assertRegex(report.stdout, r"ok\s+same token")
        self.assertNoSecret(report.stdout)

    def test_broken_token_fails_with_reasons_and_json(self):
        broken = cwtest.KubeletTokenDir(self.dir / "broken")
        broken.write(self.issuer.mint(aud="sts.amazonaws.com", lifetime=600, iat=time.time() - 3600))
        report = self.inspect("--token-file", str(broken.path))
        self.assertEqual(report.returncode, 1)
        self.assertRegex(report.stdout, r"FAIL\s+audience\s+is \[sts.amazonaws.com\], needs https://coreweave.com/iam")
        self.assertRegex(report.stdout, r"FAIL\s+not expired\s+expired 50m")
        as_json = json.loads(self.inspect("--token-file", str(broken.path), "--json").stdout)
        self.assertFalse(as_json["ok"])
        verdicts = {check["name"]: check["verdict"] for check in as_json["checks"]}
        self.assertEqual(verdicts["audience"], "FAIL")
        self.assertEqual(verdicts["readable"], "ok")

    def test_missing_token_and_unreachable_sidecar(self):
        report = self.inspect("--token-file", str(self.dir / "nowhere" / "oidc-token"),
                              "--sidecar", f"http://127.0.0.1:{cwtest.free_loopback_port()}")
        self.assertEqual(report.returncode, 1)
        self.assertRegex(report.stdout, r"FAIL\s+readable\s+No such file or directory \(is the projected token volume")
        self.assertRegex(report.stdout, r"FAIL\s+reachable\s+no answer from http://127.0.0.1:\d+")


if __name__ == "__main__":
    unittest.main()
