#!/usr/bin/env python3
"""Self-test of the harness in cwtest.py, without the C++ binary.

Integration tests trust the emulator to behave like CoreWeave and the token
directory to behave like kubelet; if either drifts, sidecar tests would pass or
fail for the wrong reason. This suite pins that behaviour down with a plain
HTTP client (`requests`), and runs the `Sidecar` helper against a tiny fake
binary so its start/log/stop logic is covered too.

Run: python3 tests/support/selftest_cwtest.py -v
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import sys
import threading
import time
import unittest
from pathlib import Path

import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cwtest  # noqa: E402 - needs the path above

SUB = "system:serviceaccount:default:app"


def decode_part(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def parse_rfc3339(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Shared:
    """Keys are generated once per run: RSA generation is the slow part."""

    tmp = None
    pki = None
    issuer = None

    @classmethod
    def get(cls):
        if cls.pki is None:
            cls.tmp = cwtest.TempDir()
            cls.pki = cwtest.Pki(cls.tmp.path / "pki")
            cls.issuer = cwtest.Issuer()
        return cls.pki, cls.issuer


def tearDownModule():
    if Shared.tmp is not None:
        Shared.tmp.cleanup()


class PkiAndIssuerTest(unittest.TestCase):
    def setUp(self):
        self.pki, self.issuer = Shared.get()

    def test_server_certificate_is_for_loopback_and_signed_by_the_ca(self):
        cert = x509.load_pem_x509_certificate(self.pki.cert_file.read_bytes())
        ca = x509.load_pem_x509_certificate(self.pki.ca_file.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual([str(ip) for ip in san.get_values_for_type(x509.IPAddress)], ["127.0.0.1"])
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertFalse(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        self.assertTrue(ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        self.assertEqual(cert.issuer, ca.subject)
        cert.verify_directly_issued_by(ca)
        other = x509.load_pem_x509_certificate(self.pki.other_ca_file.read_bytes())
        self.assertNotEqual(other.subject, ca.subject)

    def test_minted_token_is_an_rs256_jwt_with_the_expected_claims(self):
        token = self.issuer.mint(lifetime=600, extra="x")
        header, claims = (decode_part(p) for p in token.split(".")[:2])
        self.assertEqual(header, {"alg": "RS256", "typ": "JWT", "kid": self.issuer.kid})
        self.assertEqual(claims["iss"], self.issuer.issuer)
        self.assertEqual(claims["sub"], SUB)
        self.assertEqual(claims["aud"], cwtest.AUDIENCE)
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        self.assertEqual(claims["nbf"], claims["iat"])
        self.assertEqual(claims["extra"], "x")
        self.assertNotEqual(claims["jti"], decode_part(self.issuer.mint().split(".")[1])["jti"])

    def test_mint_accepts_list_audience_backdating_and_claim_removal(self):
        token = self.issuer.mint(aud=["a", cwtest.AUDIENCE], iat=1000, lifetime=10, nbf=None)
        claims = decode_part(token.split(".")[1])
        self.assertEqual(claims["aud"], ["a", cwtest.AUDIENCE])
        self.assertEqual((claims["iat"], claims["exp"]), (1000, 1010))
        self.assertNotIn("nbf", claims)


class EmulatorTestBase(unittest.TestCase):
    def setUp(self):
        self.pki, self.issuer = Shared.get()
        self.emu = cwtest.Emulator(self.pki, self.issuer)
        self.emu.start()
        self.addCleanup(self.emu.stop)
        self.session = requests.Session()
        self.addCleanup(self.session.close)

    def container(self, token=None, org=None, timeout=5, **kwargs):
        headers = {} if token is False else {"Authorization": token or self.issuer.mint()}
        return self.session.get(self.emu.url_container(org), headers=headers,
                                verify=str(self.pki.ca_file), timeout=timeout, **kwargs)

    def oidc(self, token=None, duration=3600, org=None, timeout=5, **extra):
        body = {"durationSeconds": duration, "orgId": org or self.emu.org_id,
                "oidcToken": token or self.issuer.mint(), **extra}
        return self.session.post(self.emu.url_oidc(), json=body, verify=str(self.pki.ca_file),
                                 timeout=timeout)

    def assertRpcError(self, response, status, code):
        self.assertEqual(response.status_code, status, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertEqual(response.json()["code"], code)
        self.assertIsInstance(response.json()["message"], str)


class EmulatorExchangeTest(EmulatorTestBase):
    def test_container_mode_returns_seed_shaped_credentials(self):
        before = dt.datetime.now(dt.timezone.utc)
        token = self.issuer.mint()
        response = self.container(token)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers["Content-Type"], "application/json")
        self.assertIn("Date", response.headers)
        body = response.json()
        self.assertRegex(body["AccessKeyId"], r"^CWAK[A-Z0-9]{16}$")
        self.assertEqual(len(body["SecretAccessKey"]), 40)
        self.assertEqual(body["Token"], "")
        self.assertRegex(body["Expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        left = (parse_rfc3339(body["Expiration"]) - before).total_seconds()
        self.assertTrue(898 <= left <= 901, left)
        self.assertEqual(body["attributes"], {"cw-role": f"{self.issuer.issuer}:{SUB}"})

        (record,) = self.emu.exchanges
        self.assertTrue(record.ok)
        self.assertEqual((record.mode, record.status, record.sub, record.token),
                         (cwtest.MODE_CONTAINER, 200, SUB, token))
        self.assertEqual(record.jti, decode_part(token.split(".")[1])["jti"])
        self.assertEqual((record.access_key_id, record.secret_access_key, record.expiration),
                         (body["AccessKeyId"], body["SecretAccessKey"], body["Expiration"]))

    def test_oidc_mode_uses_duration_seconds_unless_overridden(self):
        before = dt.datetime.now(dt.timezone.utc)
        response = self.oidc(duration=7200, attributes={"name": "demo"})
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual(set(body), {"accessKeyId", "secretKey", "principalName", "expiry", "attributes"})
        self.assertEqual(body["principalName"], f"role/{self.issuer.issuer}:{SUB}")
        self.assertEqual(body["attributes"]["name"], "demo")
        self.assertAlmostEqual((parse_rfc3339(body["expiry"]) - before).total_seconds(), 7200, delta=2)

        self.emu.lifetime_override = 30
        body = self.oidc(duration=7200).json()
        self.assertAlmostEqual((parse_rfc3339(body["expiry"]) - before).total_seconds(), 30, delta=2)
        records = self.emu.successful_exchanges()
        self.assertEqual([r.mode for r in records], [cwtest.MODE_OIDC] * 2)
        self.assertEqual(records[0].duration_seconds, 7200)
        self.assertEqual(records[0].body["attributes"], {"name": "demo"})

    def test_oidc_mode_validates_the_request_body(self):
        for duration in (0, 43201, "3600", 3600.0, True, None):
            with self.subTest(duration=duration):
                self.assertRpcError(self.oidc(duration=duration), 400, 3)
        self.assertEqual(self.oidc(duration=43200).status_code, 200)
        self.assertEqual(self.oidc(duration=1).status_code, 200)
        response = self.session.post(self.emu.url_oidc(), data="{not json", verify=str(self.pki.ca_file))
        self.assertRpcError(response, 400, 3)

    def test_invalid_tokens_are_rejected_like_the_real_service(self):
        other_key = cwtest.Issuer(self.issuer.issuer)  # same iss, different key
        token = self.issuer.mint()
        cases = [
            ("wrong audience", self.container(self.issuer.mint(aud="sts.amazonaws.com")), 403, 7),
            ("expired", self.container(self.issuer.mint(lifetime=-5)), 401, 16),
            ("not yet valid", self.container(self.issuer.mint(iat=time.time() + 600)), 401, 16),
            ("bad signature", self.container(other_key.mint()), 401, 16),
            ("tampered", self.container(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")), 401, 16),
            ("Bearer prefix", self.container("Bearer " + token), 401, 16),
            ("missing header", self.container(False), 401, 16),
            ("garbage", self.container("not-a-jwt"), 401, 16),
            ("wrong org", self.container(token, org="someone-else"), 404, 5),
            ("oidc expired", self.oidc(self.issuer.mint(lifetime=-5)), 401, 16),
            ("oidc wrong org", self.oidc(token, org="someone-else"), 404, 5),
            ("oidc wrong audience", self.oidc(self.issuer.mint(aud=["x"])), 403, 7),
        ]
        for name, response, status, code in cases:
            with self.subTest(name):
                self.assertRpcError(response, status, code)
        self.assertEqual(self.container(self.issuer.mint(aud=["x", cwtest.AUDIENCE])).status_code, 200)
        records = self.emu.exchanges
        self.assertEqual(len(records), len(cases) + 1)
        self.assertEqual(len(self.emu.successful_exchanges()), 1)
        self.assertEqual(records[5].token, "Bearer " + token)  # recorded verbatim

    def test_expiration_formats_denote_the_same_instant(self):
        seen = {}
        for fmt, pattern in [("plain", r"Z$"), ("fraction", r"\.\d{6}Z$"), ("offset", r"\+01:00$")]:
            self.emu.expiration_format = fmt
            text = self.container().json()["Expiration"]
            self.assertRegex(text, pattern)
            record = self.emu.exchanges[-1]
            self.assertEqual(parse_rfc3339(text), record.expires_at)
            seen[fmt] = record.expires_at
        spread = max(seen.values()) - min(seen.values())
        self.assertLess(spread.total_seconds(), 3)

    def test_key_minter_and_session_token_are_used(self):
        self.emu.key_minter = lambda sub, lifetime: (f"AK-{sub[-3:]}-{int(lifetime)}", "s3cr3t")
        self.emu.session_token = "session"
        body = self.container().json()
        self.assertEqual((body["AccessKeyId"], body["SecretAccessKey"], body["Token"]),
                         ("AK-app-900", "s3cr3t", "session"))

    def test_delay_holds_every_answer(self):
        self.emu.delay = 0.4
        started = time.monotonic()
        self.assertEqual(self.container().status_code, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)

    def test_unknown_paths_and_wrong_methods(self):
        response = self.session.get(self.emu.base_url + "/v1/nothing", verify=str(self.pki.ca_file))
        self.assertRpcError(response, 404, 5)
        response = self.session.post(self.emu.url_container(), verify=str(self.pki.ca_file))
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response.headers["Allow"], "GET")

    def test_wrong_ca_fails_the_handshake(self):
        with self.assertRaises(requests.exceptions.SSLError):
            requests.get(self.emu.url_container(), verify=str(self.pki.other_ca_file), timeout=5)
        self.assertEqual(self.emu.exchanges, [])
        # The failure is counted by the server thread just after the client gives up.
        deadline = time.monotonic() + 2
        while self.emu.tls_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.emu.tls_failures, 1)


class EmulatorFaultTest(EmulatorTestBase):
    def test_pushed_status_fault_applies_count_times_then_normal(self):
        self.emu.push_fault(status=503, count=2)
        self.assertRpcError(self.container(), 503, 14)
        self.assertRpcError(self.oidc(), 503, 14)
        self.assertEqual(self.container().status_code, 200)
        self.assertEqual([(r.status, r.fault) for r in self.emu.exchanges],
                         [(503, "status"), (503, "status"), (200, None)])

    def test_status_fault_carries_headers_and_body(self):
        self.emu.push_fault(status=429, headers={"Retry-After": "2"})
        self.emu.push_fault(status=502, body="<html>bad gateway</html>", headers={"Content-Type": "text/html"})
        response = self.container()
        self.assertRpcError(response, 429, 8)
        self.assertEqual(response.headers["Retry-After"], "2")
        response = self.container()
        self.assertEqual((response.status_code, response.text), (502, "<html>bad gateway</html>"))
        self.assertEqual(response.headers["Content-Type"], "text/html")

    def test_persistent_fault_lasts_until_cleared(self):
        self.emu.set_fault(status=500)
        for _ in range(3):
            self.assertEqual(self.container().status_code, 500)
        self.emu.clear_faults()
        self.assertEqual(self.container().status_code, 200)

    def test_reset_closes_the_connection_abruptly(self):
        self.emu.push_fault(reset=True)
        with self.assertRaises(requests.exceptions.ConnectionError):
            self.container()
        self.assertEqual(self.container().status_code, 200)
        self.assertEqual(self.emu.exchanges[0].fault, "reset")
        self.assertIsNone(self.emu.exchanges[0].status)

    def test_short_hang_then_normal_answer(self):
        self.emu.push_fault(hang=0.4)
        started = time.monotonic()
        self.assertEqual(self.container().status_code, 200)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        self.assertTrue(self.emu.exchanges[0].ok)

    def test_hang_then_status(self):
        self.emu.push_fault(hang=0.2, status=504)
        self.assertEqual(self.container().status_code, 504)

    def test_hanging_request_ends_promptly_when_the_emulator_stops(self):
        self.emu.push_fault(hang=60)
        outcome = []

        def call():
            try:
                outcome.append(self.container(timeout=30).status_code)
            except requests.exceptions.RequestException as error:
                outcome.append(error)

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.3)  # let the request reach the hang
        started = time.monotonic()
        self.emu.stop()
        caller.join(timeout=5)
        self.assertFalse(caller.is_alive())
        self.assertLess(time.monotonic() - started, 2)
        self.assertIsInstance(outcome[0], requests.exceptions.ConnectionError)
        (record,) = self.emu.wait_for_exchanges(1, successful=False)
        self.assertEqual((record.status, record.fault), (None, "hang"))

    def test_malformed_answers(self):
        def expect(kind, check):
            self.emu.push_fault(malformed=kind)
            response = self.container()
            self.assertEqual(response.status_code, 200, kind)
            check(response)

        def invalid_json(response):
            with self.assertRaises(ValueError):
                response.json()

        expect("json", invalid_json)
        expect("missing", lambda r: self.assertNotIn("SecretAccessKey", r.json()))
        expect("past", lambda r: self.assertLess(parse_rfc3339(r.json()["Expiration"]),
                                                 dt.datetime.now(dt.timezone.utc)))

        def unparsable(response):
            with self.assertRaises(ValueError):
                parse_rfc3339(response.json()["Expiration"])

        expect("badtime", unparsable)
        expect("huge", lambda r: self.assertGreaterEqual(len(r.content), 20 * 1024 * 1024))
        self.emu.push_fault(malformed="missing")
        self.assertNotIn("secretKey", self.oidc().json())
        records = self.emu.exchanges
        self.assertEqual([r.fault for r in records], ["json", "missing", "past", "badtime", "huge", "missing"])
        self.assertFalse(any(r.ok for r in records))

    def test_slow_body_is_dribbled(self):
        self.emu.push_fault(malformed="slow")
        started = time.monotonic()
        response = self.container(stream=True)
        self.assertEqual(response.status_code, 200)
        first = response.raw.read(3)
        elapsed = time.monotonic() - started
        response.close()
        self.assertEqual(first, b'{"A')
        self.assertGreaterEqual(elapsed, 0.9)

    def test_invalid_fault_arguments_are_refused(self):
        with self.assertRaises(ValueError):
            self.emu.push_fault(malformed="nonsense")
        with self.assertRaises(ValueError):
            self.emu.push_fault(status=503, reset=True)
        with self.assertRaises(ValueError):
            self.emu.push_fault()


class EmulatorRecordsTest(EmulatorTestBase):
    def test_wait_for_exchanges_wakes_on_new_records(self):
        timer = threading.Timer(0.2, lambda: [self.container(), self.container()])
        timer.start()
        self.addCleanup(timer.join)
        records = self.emu.wait_for_exchanges(2, timeout=5)
        self.assertEqual(len(records), 2)

    def test_wait_for_exchanges_counts_only_successes_by_default(self):
        self.emu.push_fault(status=503)
        self.container()
        self.assertEqual(len(self.emu.wait_for_exchanges(1, timeout=1, successful=False)), 1)
        started = time.monotonic()
        with self.assertRaisesRegex(AssertionError, r"at least 1 successful exchanges within 0.2s, got 0"):
            self.emu.wait_for_exchanges(1, timeout=0.2)
        self.assertLess(time.monotonic() - started, 1)
        self.emu.reset_records()
        self.assertEqual(self.emu.exchanges, [])

    def test_concurrent_exchanges_are_counted(self):
        self.emu.delay = 0.3
        callers = [threading.Thread(target=lambda: requests.get(
            self.emu.url_container(), headers={"Authorization": self.issuer.mint()},
            verify=str(self.pki.ca_file), timeout=5)) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        self.assertEqual(self.emu.max_in_flight, 3)

    def test_restart_keeps_the_port_and_the_records(self):
        port = self.emu.port
        self.container()
        self.emu.stop()
        with self.assertRaises(requests.exceptions.ConnectionError):
            self.container(timeout=2)
        self.emu.start()
        self.assertEqual(self.emu.port, port)
        self.assertEqual(self.container().status_code, 200)
        self.assertEqual(len(self.emu.successful_exchanges()), 2)

    def test_control_api(self):
        base = self.emu.base_url + "/_emulator"

        def call(method, path, **kwargs):
            return requests.request(method, base + path, verify=str(self.pki.ca_file), timeout=5, **kwargs)

        self.assertEqual(call("POST", "/fault", json={"status": 503, "count": 1}).status_code, 200)
        self.assertEqual(self.container().status_code, 503)
        call("POST", "/fault", json={"status": 500, "persistent": True})
        self.assertEqual(self.container().status_code, 500)
        call("POST", "/clear")
        token = call("GET", "/token", params={"sub": "system:serviceaccount:ns:x"}).text
        self.assertEqual(self.container(token).status_code, 200)
        self.assertEqual(call("POST", "/config", json={"lifetime": 60}).json()["lifetime"], 60)
        self.assertEqual(call("POST", "/config", json={"delay": "1"}).status_code, 400)
        listing = call("GET", "/exchanges").json()
        self.assertEqual([r["status"] for r in listing], [503, 500, 200])
        self.assertEqual(listing[2]["sub"], "system:serviceaccount:ns:x")
        self.assertEqual(call("POST", "/fault", json={"malformed": "?"}).status_code, 400)
        call("POST", "/reset")
        self.assertEqual(self.emu.exchanges, [])


class KubeletTokenDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = cwtest.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.tokens = cwtest.KubeletTokenDir(self.tmp.path / "tokens")

    def entries(self):
        return sorted(os.listdir(self.tokens.dir))

    def test_layout_matches_kubelets_atomic_writer(self):
        ts_dir = self.tokens.write("first-token")
        d = self.tokens.dir
        self.assertRegex(ts_dir.name, r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$")
        self.assertEqual(self.entries(), sorted([ts_dir.name, "..data", "oidc-token"]))
        self.assertTrue(os.path.islink(d / "..data"))
        self.assertEqual(os.readlink(d / "..data"), ts_dir.name)  # relative
        self.assertTrue(os.path.islink(self.tokens.path))
        self.assertEqual(os.readlink(self.tokens.path), "..data/oidc-token")
        real = ts_dir / "oidc-token"
        self.assertTrue(stat.S_ISREG(os.lstat(real).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(real).st_mode), 0o644)
        self.assertEqual(real.read_bytes(), b"first-token")  # no trailing newline
        self.assertEqual(self.tokens.path, d / "oidc-token")

    def test_rotation_swaps_data_and_removes_the_old_directory(self):
        first = self.tokens.write("one")
        link_inode = os.lstat(self.tokens.path).st_ino
        second = self.tokens.write("two")  # same second: names must still differ
        third = self.tokens.write(b"three")
        self.assertEqual(len({first.name, second.name, third.name}), 3)
        self.assertFalse(first.exists())
        self.assertFalse(second.exists())
        self.assertEqual(self.entries(), sorted([third.name, "..data", "oidc-token"]))
        self.assertEqual(os.lstat(self.tokens.path).st_ino, link_inode)  # the visible link never changes
        with open(self.tokens.path) as f:
            self.assertEqual(f.read(), "three")
        self.assertEqual(self.tokens.current_dir, third)

    def test_an_open_descriptor_keeps_reading_the_old_token(self):
        # Why watchers must re-open: a reader holding the old file sees old content.
        self.tokens.write("old")
        with open(self.tokens.path) as held:
            self.tokens.write("new")
            self.assertEqual(held.read(), "old")
        self.assertEqual(self.tokens.path.read_text(), "new")

    def test_remove_makes_the_token_disappear_until_the_next_write(self):
        self.tokens.write("one")
        self.tokens.remove()
        self.assertFalse(os.path.lexists(self.tokens.path))
        self.tokens.write("two")
        self.assertEqual(self.tokens.path.read_text(), "two")


FAKE_SIDECAR = r'''#!{python}
"""A stand-in for cwcreds, used to test the Sidecar helper."""
import http.server, json, os, signal, sys, threading, time

args = sys.argv[1:]
def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ") + " info " + msg, file=sys.stderr, flush=True)

if args[0] == "exchange":
    print(json.dumps({{"AccessKeyId": "AK", "env": sorted(os.environ)}}))
    sys.exit(0)
if "--fail" in args:
    print("error: --org-id is required", file=sys.stderr)
    sys.exit(2)
listen = args[args.index("--listen") + 1] if "--listen" in args else os.environ["CWCREDS_LISTEN"]
host, port = listen.rsplit(":", 1)
started = time.monotonic()

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/readyz":
            status = 200 if time.monotonic() - started > 0.3 else 503
            body = b"ok"
        else:
            status = 200
            body = json.dumps({{"auth": self.headers.get("Authorization"), "env": sorted(os.environ)}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
if "--json" in args:
    print(json.dumps({{"msg": "listening", "address": "%s:%d" % server.server_address}}), file=sys.stderr, flush=True)
else:
    log("listening address=%s:%d" % server.server_address)
print("stdout line", flush=True)
server.serve_forever(poll_interval=0.05)
log("shutting down")
'''


class SidecarHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = cwtest.TempDir()
        cls.fake = cls.tmp.path / "fake-cwcreds"
        cls.fake.write_text(FAKE_SIDECAR.format(python=sys.executable))
        cls.fake.chmod(0o755)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_start_get_log_and_stop(self):
        os.environ["CWCREDS_LEAK_CHECK"] = "leaked"
        self.addCleanup(os.environ.pop, "CWCREDS_LEAK_CHECK")
        with cwtest.Sidecar(["--org-id", "x"], env={"CWCREDS_ORG_ID": "y"}, bin=self.fake) as sidecar:
            sidecar.start(wait_ready=True)
            self.assertIn("--listen", sidecar.args)
            self.assertEqual(sidecar.base_url, f"http://127.0.0.1:{sidecar.port}")
            self.assertIsNotNone(sidecar.pid)
            response = sidecar.get("/v1/credentials", token="tok")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.headers["content-type"], "application/json")
            self.assertEqual(response.json["auth"], "tok")
            env = set(response.json["env"])
            self.assertIn("CWCREDS_ORG_ID", env)
            self.assertNotIn("CWCREDS_LEAK_CHECK", env)
            self.assertIsNone(sidecar.get("/readyz").json)
            self.assertEqual(sidecar.wait_for_log(r"^stdout line$"), "stdout line")
            mark = sidecar.mark()
            self.assertEqual(sidecar.stop(), 0)
            self.assertIn("shutting down", sidecar.wait_for_log("shutting down", start=mark))
            self.assertIn("listening address=127.0.0.1:", sidecar.log_text())
            self.assertEqual(sidecar.returncode, 0)

    def test_json_listening_line_and_listen_from_env(self):
        sidecar = cwtest.Sidecar(["--json"], env={"CWCREDS_LISTEN": "127.0.0.1:0"}, bin=self.fake)
        self.assertNotIn("--listen", sidecar.args)
        with sidecar.start():
            self.assertGreater(sidecar.port, 0)

    def test_wait_for_log_times_out_with_the_log_tail(self):
        with cwtest.Sidecar([], bin=self.fake).start() as sidecar:
            with self.assertRaisesRegex(AssertionError, r"(?s)timed out after 0.2s.*listening address"):
                sidecar.wait_for_log("never printed", timeout=0.2)

    def test_start_fails_fast_when_the_process_exits(self):
        started = time.monotonic()
        sidecar = cwtest.Sidecar(["--fail"], bin=self.fake)
        with self.assertRaisesRegex(AssertionError, r"(?s)process exited \(exit code 2\).*--org-id is required"):
            sidecar.start(timeout=10)
        self.assertLess(time.monotonic() - started, 5)

    def test_run_cwcreds_uses_a_clean_environment(self):
        result = cwtest.run_cwcreds(["exchange"], env={"A": 1}, bin=self.fake)
        self.assertEqual(result.returncode, 0, result.stderr)
        env = json.loads(result.stdout)["env"]
        self.assertIn("A", env)
        self.assertTrue(set(env) <= {"A", "PATH", *cwtest._PASSTHROUGH_ENV, "LC_CTYPE"}, env)

    def test_paths_and_ports(self):
        self.assertTrue((cwtest.repo_root() / "tests" / "support" / "cwtest.py").exists())
        self.assertEqual(cwtest.cwcreds_bin().name, Path(os.environ.get("CWCREDS_BIN", "cwcreds")).name)
        self.assertGreater(cwtest.free_loopback_port(), 0)


if __name__ == "__main__":
    unittest.main()
