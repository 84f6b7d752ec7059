"""Refresh policy as a user sees it: credentials are renewed long before they
expire, a failing upstream never leads to expired credentials being served,
retries back off (honouring Retry-After, not hammering on a rejected token),
and malformed upstream answers are never served."""

import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import (  # noqa: E402
    attempts_between, await_condition, body_json, observe_until, rec,
    record_status, to_epoch,
)

LIFETIME = 10
# The contract: every credential served has at least 70% of its lifetime
# left, less the one second the sidecar takes off because `Date` has whole
# seconds (README "Clocks"): 0.1% of a 15-minute key, 10% of these 10 s ones.
MIN_LEFT = 0.70 * LIFETIME - 1.0
# Expiration has seconds resolution and the emulator may truncate too.
ROUNDING = 1.0


def first_attempt_time(env):
    env.emu.wait_for_exchanges(1, timeout=10, successful=False)
    return to_epoch(rec(env.emu.exchanges[0], "time"))


class RefreshAhead(itest.TestCase):
    def test_each_refresh_happens_with_most_of_the_lifetime_left(self):
        env = self.env(lifetime=LIFETIME)
        env.write_token()
        env.sidecar(env.args())
        env.emu.wait_for_exchanges(4, timeout=20)

        ok = env.emu.successful_exchanges()
        for prev, cur in zip(ok, ok[1:]):
            left = to_epoch(rec(prev, "expiration")) - to_epoch(rec(cur, "time"))
            self.assertGreaterEqual(
                left + ROUNDING, MIN_LEFT,
                "refreshed with only %.2fs of a %ds credential left" % (left, LIFETIME))
        self.assertEqual(len({rec(r, "access_key_id") for r in ok}), len(ok))

    def test_every_served_credential_has_most_of_its_lifetime_left(self):
        env = self.env(lifetime=LIFETIME)
        token = env.write_token()
        sc = env.sidecar(env.args())

        keys = set()
        window_end = time.time() + 12
        samples = 0
        while time.time() < window_end:
            resp = sc.get("/v1/credentials", token=token)
            received = time.time()
            data = self.assertCredentials(resp)
            left = to_epoch(data["Expiration"]) - received
            self.assertGreaterEqual(
                left + ROUNDING, MIN_LEFT,
                "served a %ds credential with %.2fs left (sample %d)" % (LIFETIME, left, samples))
            keys.add(data["AccessKeyId"])
            samples += 1
            time.sleep(0.05)
        # ~12 s of 10 s credentials renewed every ~2.5 s: several key changes.
        self.assertGreaterEqual(len(keys), 3, "keys seen: %d in %d samples" % (len(keys), samples))
        issued = {rec(r, "access_key_id") for r in env.emu.successful_exchanges()}
        self.assertLessEqual(keys, issued)


class UpstreamFailure(itest.TestCase):
    def test_last_good_key_is_served_until_expiry_then_503_then_recovery(self):
        env = self.env(lifetime=LIFETIME)
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "1s"]))
        good = env.emu.successful_exchanges()[-1]
        good_key = rec(good, "access_key_id")
        good_expiry = to_epoch(rec(good, "expiration"))

        env.emu.set_fault(status=503, body='{"code": 14, "message": "unavailable"}')
        await_condition(lambda: any(record_status(r) == 503 for r in list(env.emu.exchanges)),
                        timeout=LIFETIME, what="a failed refresh")

        # Keep serving the last good key while it is valid ...
        served_after_failure = 0
        first_503 = None
        deadline = good_expiry + 3
        while time.time() < deadline:
            sent = time.time()
            resp = sc.get("/v1/credentials", token=token)
            if resp.status == 503:
                first_503 = resp
                break
            data = self.assertCredentials(resp)
            self.assertEqual(data["AccessKeyId"], good_key)
            self.assertGreaterEqual(to_epoch(data["Expiration"]), sent,
                                    "served an expired credential: %s" % data["Expiration"])
            served_after_failure += 1
            time.sleep(0.05)
        self.assertGreater(served_after_failure, 0, "the last good key was not served after the failure")
        # ... then 503, never a 200 with an Expiration in the past.
        self.assertIsNotNone(first_503, "still 200 after the credential expired")
        self.assertErrorBody(first_503, 503)
        self.assertEqual(sc.get("/readyz").status, 503)
        self.assertEqual(sc.get("/healthz").status, 200)

        env.emu.clear_faults()

        def new_key_served():
            resp = sc.get("/v1/credentials", token=token)
            return resp.status == 200 and body_json(resp)["AccessKeyId"] != good_key and resp

        resp = await_condition(new_key_served, timeout=10, what="recovery after the upstream came back")
        data = self.assertCredentials(resp)
        self.assertIn(data["AccessKeyId"], {rec(r, "access_key_id") for r in env.emu.successful_exchanges()})
        self.assertEqual(sc.get("/readyz").status, 200)

    def test_429_retry_after_is_honoured(self):
        env = self.env()
        env.emu.set_fault(status=429, headers={"Retry-After": "3"},
                          body='{"code": 8, "message": "slow down"}')
        env.write_token()
        env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "10s"]),
                    wait_ready=False)
        t1 = first_attempt_time(env)
        observe_until(t1 + 2.5)
        attempts = attempts_between(env.emu, t1, t1 + 2.5)
        self.assertLessEqual(len(attempts), 2, "attempts in 2.5 s despite Retry-After: 3")

        env.emu.clear_faults()
        env.emu.wait_for_exchanges(1, timeout=10, successful=True)
        self.assertGreaterEqual(to_epoch(rec(env.emu.successful_exchanges()[0], "time")), t1 + 2.5)

    def test_rejected_token_is_not_hammered(self):
        env = self.env()
        env.emu.set_fault(status=401, body='{"code": 16, "message": "unauthenticated"}')
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "5s"]),
                         wait_ready=False)
        t1 = first_attempt_time(env)
        sc.wait_for_log(r"exchange failed.*kind=rejected", timeout=5)
        self.assertErrorBody(sc.get("/v1/credentials", token=token), 503)
        self.assertEqual(sc.get("/readyz").status, 503)
        observe_until(t1 + 4)
        attempts = attempts_between(env.emu, t1, t1 + 4)
        self.assertLessEqual(len(attempts), 2, "a rejected token was retried %d times in 4 s" % len(attempts))

    def test_persistent_503_backs_off(self):
        env = self.env()
        env.emu.set_fault(status=503, body='{"code": 14, "message": "unavailable"}')
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "2s"]),
                         wait_ready=False)
        t1 = first_attempt_time(env)
        observe_until(t1 + 6)
        attempts = attempts_between(env.emu, t1, t1 + 6)
        # Fixed 100 ms retries would be ~60 attempts; capped exponential
        # backoff (100ms, 200ms, ... 2s) is well under 20, and it does retry.
        self.assertGreaterEqual(len(attempts), 3, "a retryable failure was not retried")
        self.assertLessEqual(len(attempts), 20, "no backoff: %d attempts in 6 s" % len(attempts))
        self.assertErrorBody(sc.get("/v1/credentials", token=token), 503)


class MalformedAnswers(itest.TestCase):
    def test_malformed_answers_are_not_served_and_are_retried(self):
        for kind in ("json", "missing", "past", "badtime"):
            with self.subTest(kind=kind):
                env = self.env()
                env.emu.push_fault(malformed=kind)
                token = env.write_token()
                sc = env.sidecar(env.args(extra=["--retry-initial", "1s", "--retry-max", "2s"]),
                                 wait_ready=False)
                sc.wait_for_log(r"exchange failed", timeout=10)
                bad = env.emu.exchanges[0]
                self.assertIsNotNone(rec(bad, "fault"))
                # Between the bad answer and the retry: nothing, or a good key.
                resp = sc.get("/v1/credentials", token=token)
                if resp.status == 200:
                    self.assertNotEqual(body_json(resp)["AccessKeyId"], rec(bad, "access_key_id"))
                else:
                    self.assertErrorBody(resp, 503)

                env.emu.wait_for_exchanges(1, timeout=10, successful=True)
                await_condition(lambda: sc.get("/readyz").status == 200, timeout=10,
                                what="readiness after the retry")
                good = env.emu.successful_exchanges()[0]
                data = self.assertCredentials(sc.get("/v1/credentials", token=token))
                self.assertEqual(data["AccessKeyId"], rec(good, "access_key_id"))
                self.assertGreater(to_epoch(data["Expiration"]), time.time())


if __name__ == "__main__":
    unittest.main()
