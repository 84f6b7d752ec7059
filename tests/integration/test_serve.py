"""What an SDK sees on the sidecar's local endpoints: the keys, the format,
the authorization rules, the health endpoints, and one upstream call for any
number of concurrent callers."""

import secrets
import sys
import threading
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import CONTAINER, OIDC, body_json, body_text, rec, to_epoch  # noqa: E402


class ServeCredentials(itest.TestCase):
    def _serves_issued_keys(self, mode, expiration_format="plain"):
        env = self.env()
        env.emu.expiration_format = expiration_format
        token = env.write_token()
        sc = env.sidecar(env.args(mode))

        data = self.assertCredentials(sc.get("/v1/credentials", token=token))

        issued = env.emu.successful_exchanges()
        self.assertEqual(len(issued), 1)
        record = issued[-1]
        self.assertEqual(rec(record, "mode"), mode)
        self.assertEqual(data["AccessKeyId"], rec(record, "access_key_id"))
        self.assertEqual(data["SecretAccessKey"], rec(record, "secret_access_key"))
        # Expiration has seconds resolution; the emulator's instant may not.
        upstream_expiry = to_epoch(rec(record, "expiration"))
        served_expiry = to_epoch(data["Expiration"])
        # Never later than the upstream's instant. The sidecar counts the
        # lifetime from when it sent the request and takes off the second
        # that the whole-second Date may lag, then truncates to the second:
        # up to two seconds (plus the round trip) earlier.
        why = "served %s, upstream said %s" % (data["Expiration"], rec(record, "expiration"))
        self.assertLessEqual(served_expiry, upstream_expiry + 1e-6, why)
        self.assertGreater(served_expiry, upstream_expiry - 2.5, why)
        return data

    def test_container_credentials_mode_serves_the_issued_keys(self):
        self._serves_issued_keys(CONTAINER)

    def test_oidc_mode_serves_the_issued_keys(self):
        self._serves_issued_keys(OIDC)

    def test_fractional_upstream_expiration_is_served_as_whole_seconds_utc(self):
        self._serves_issued_keys(CONTAINER, expiration_format="fraction")

    def test_offset_upstream_expiration_is_served_as_utc(self):
        self._serves_issued_keys(CONTAINER, expiration_format="offset")

    def test_oidc_mode_with_offset_expiry_is_served_as_utc(self):
        self._serves_issued_keys(OIDC, expiration_format="offset")


class ServeAuthorization(itest.TestCase):
    def test_missing_authorization_is_401_and_wrong_one_is_403(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args())

        self.assertErrorBody(sc.get("/v1/credentials"), 401)
        other = env.mint(sub="system:serviceaccount:default:someone-else")
        self.assertErrorBody(sc.get("/v1/credentials", token=other), 403)
        self.assertErrorBody(sc.get("/v1/credentials", token="not-a-token"), 403)

    def test_health_endpoints_need_no_authorization(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args())

        self.assertEqual(sc.get("/healthz").status, 200)
        self.assertEqual(sc.get("/readyz").status, 200)

    def test_allow_unauthenticated_serves_callers_without_authorization(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args(extra=["--allow-unauthenticated"]))

        data = self.assertCredentials(sc.get("/v1/credentials"))
        self.assertEqual(data["AccessKeyId"], rec(env.emu.successful_exchanges()[-1], "access_key_id"))

    def test_client_token_file_is_what_callers_must_present(self):
        env = self.env()
        projected = env.write_token()
        client_file = env.tmp / "client-token"
        client_secret = "client-" + secrets.token_urlsafe(24)
        client_file.write_text(client_secret)
        sc = env.sidecar(env.args(extra=["--client-token-file", str(client_file)]))

        self.assertCredentials(sc.get("/v1/credentials", token=client_secret))
        self.assertErrorBody(sc.get("/v1/credentials", token=projected), 403)
        self.assertErrorBody(sc.get("/v1/credentials"), 401)


class ServeRouting(itest.TestCase):
    def test_readyz_is_200_while_holding_credentials(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args())
        self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertEqual(sc.get("/readyz").status, 200)
        self.assertEqual(sc.get("/healthz").status, 200)

    def test_unknown_paths_are_404(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args())
        for path in ("/", "/nope", "/v1/nope", "/v2/credentials", "/v1/credentials/x"):
            with self.subTest(path=path):
                self.assertEqual(sc.get(path, token=token).status, 404)

    def test_other_methods_on_credentials_are_405(self):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args())
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                resp = sc.get("/v1/credentials", token=token, method=method)
                self.assertEqual(resp.status, 405, body_text(resp))
                self.assertNotIn("SecretAccessKey", body_text(resp))


class ServeConcurrency(itest.TestCase):
    def test_many_concurrent_callers_at_start_cause_one_exchange(self):
        env = self.env()
        # Keep the first exchange in flight while the callers pile up.
        env.emu.delay = 0.3
        token = env.write_token()
        sc = env.sidecar(env.args(), wait_ready=False)

        results = []
        lock = threading.Lock()
        start = threading.Barrier(64, timeout=10)

        def caller():
            try:
                start.wait()
                for _ in range(20):
                    resp = sc.get("/v1/credentials", token=token, timeout=5)
                    with lock:
                        results.append(resp.status)
                    if resp.status == 200:
                        return
            except Exception as exc:  # recorded, asserted below
                with lock:
                    results.append(repr(exc))

        threads = [threading.Thread(target=caller) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads), "callers still running")

        unexpected = [r for r in results if r not in (200, 503)]
        self.assertEqual(unexpected, [])
        self.assertIn(200, results)
        self.assertEqual(len(env.emu.successful_exchanges()), 1)
        self.assertEqual(len(env.emu.exchanges), 1)
        # Everyone got the same keys, from memory.
        data = body_json(sc.get("/v1/credentials", token=token))
        self.assertEqual(data["AccessKeyId"], rec(env.emu.exchanges[0], "access_key_id"))


if __name__ == "__main__":
    unittest.main()
