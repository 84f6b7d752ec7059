"""Refresh policy as a user sees it: credentials are renewed long before they
expire, a failing upstream never leads to expired credentials being served,
retries back off (honouring Retry-After, not hammering on a rejected token),
and malformed upstream answers are never served."""

import re
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import (  # noqa: E402
    await_condition, body_json, rec, record_status, to_epoch,
)

LIFETIME = 10
# The contract: every credential served has at least 70% of its lifetime
# left, less the one second the sidecar takes off because `Date` has whole
# seconds (docs/operations.md, "Clocks"): 0.1% of a 15-minute key, 10% of these 10 s ones.
MIN_LEFT = 0.70 * LIFETIME - 1.0
# Expiration has seconds resolution and the emulator may truncate too.
ROUNDING = 1.0


# Recording jitter of the emulator's arrival times, in seconds.
SLACK = 0.05


def attempt_times(env, count, timeout=10):
    """Arrival times of the first `count` upstream attempts, awaited."""
    env.emu.wait_for_exchanges(count, timeout=timeout, successful=False)
    return sorted(to_epoch(rec(r, "time")) for r in list(env.emu.exchanges))[:count]


def duration_seconds(text):
    """`2s960ms` / `300ms` / `1m5s` -> seconds (the sidecar's format)."""
    return sum(int(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
               for amount, unit in re.findall(r"(\d+)(ms|h|m|s)", text))


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


class RefreshFraction(itest.TestCase):
    def test_a_non_default_refresh_fraction_sets_the_renewal_time(self):
        """--refresh-fraction 0.7 (jitter off): the renewal is scheduled, and
        made, after 70% of the lifetime, where the default would renew after
        25%. /v1/status shows the schedule; the emulator sees the renewal."""
        lifetime, fraction = 10, 0.7
        env = self.env(lifetime=lifetime)
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--refresh-fraction", str(fraction), "--refresh-jitter", "0"]))
        first = env.emu.successful_exchanges()[0]

        status = body_json(sc.get("/v1/status", token=token))
        obtained = to_epoch(status["credentials"]["obtained_at"])
        scheduled = to_epoch(status["next_refresh"]["at"]) - obtained
        # Both times are printed in whole seconds, and the lifetime is
        # measured against the answer's whole-second Date header.
        self.assertAlmostEqual(scheduled, fraction * status["credentials"]["lifetime_seconds"], delta=1.5,
                               msg="next refresh %.1fs after the key was obtained: %r" % (scheduled, status))
        self.assertIn("70%", status["next_refresh"]["reason"])

        env.emu.wait_for_exchanges(2, timeout=lifetime + 5)
        renewed_after = to_epoch(rec(env.emu.successful_exchanges()[1], "time")) - to_epoch(rec(first, "time"))
        # A lower bound only: a loaded machine can delay the renewal, never advance it.
        self.assertGreaterEqual(renewed_after, fraction * lifetime - ROUNDING,
                                "renewed %.1fs after a %ds key was issued" % (renewed_after, lifetime))


# Long enough keys that the expiry margin (10% of the lifetime) is wider than
# the one second that whole-second Expiration values can take off.
MARGIN_LIFETIME = 20
MARGIN = MARGIN_LIFETIME / 10


class UpstreamFailure(itest.TestCase):
    def test_last_good_key_is_served_until_expiry_then_503_then_recovery(self):
        env = self.env(lifetime=MARGIN_LIFETIME)
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "1s"]))
        good = env.emu.successful_exchanges()[-1]
        good_key = rec(good, "access_key_id")
        good_expiry = to_epoch(rec(good, "expiration"))

        env.emu.set_fault(status=503, body='{"code": 14, "message": "unavailable"}')
        await_condition(lambda: any(record_status(r) == 503 for r in list(env.emu.exchanges)),
                        timeout=MARGIN_LIFETIME, what="a failed refresh")

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
            # Never served within the margin: the key was handed out before
            # `sent` + margin of its end, and Expiration (whole seconds) is
            # at most a second before that end.
            self.assertGreater(to_epoch(data["Expiration"]) - sent, MARGIN - ROUNDING,
                               "served with %.2fs left, inside the %gs expiry margin: %s"
                               % (to_epoch(data["Expiration"]) - sent, MARGIN, data["Expiration"]))
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

    # Retries are checked by their order and spacing, never by counting
    # attempts in a fixed window: the emulator records when each attempt
    # arrives, and the gap between two arrivals is at least the delay the
    # sidecar waited (a loaded machine only lengthens it). SLACK absorbs
    # the emulator's own recording jitter.
    def test_429_retry_after_is_honoured(self):
        env = self.env()
        env.emu.set_fault(status=429, headers={"Retry-After": "3"},
                          body='{"code": 8, "message": "slow down"}')
        env.write_token()
        env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "10s"]),
                    wait_ready=False)
        attempts = attempt_times(env, 2)
        self.assertGreaterEqual(attempts[1] - attempts[0], 3 - SLACK,
                                "retried %.2fs after a 429 with Retry-After: 3" % (attempts[1] - attempts[0]))

        env.emu.clear_faults()
        env.emu.wait_for_exchanges(1, timeout=10, successful=True)

    def test_rejected_token_is_not_hammered(self):
        env = self.env()
        env.emu.set_fault(status=401, body='{"code": 16, "message": "unauthenticated"}')
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "5s"]),
                         wait_ready=False)
        sc.wait_for_log(r"exchange failed.*kind=rejected", timeout=5)
        self.assertErrorBody(sc.get("/v1/credentials", token=token), 503)
        self.assertEqual(sc.get("/readyz").status, 503)
        # A rejected token waits a random 50-100% of --retry-max (5 s).
        attempts = attempt_times(env, 2, timeout=15)
        self.assertGreaterEqual(attempts[1] - attempts[0], 2.5 - SLACK,
                                "a rejected token was retried after %.2fs" % (attempts[1] - attempts[0]))

    def test_persistent_503_backs_off(self):
        env = self.env()
        env.emu.set_fault(status=503, body='{"code": 14, "message": "unavailable"}')
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--retry-initial", "100ms", "--retry-max", "1s"]),
                         wait_ready=False)
        # 100 ms doubling to the 1 s cap, each delay 50-100% of its base:
        # seven attempts show the doubling and then the cap.
        attempts = attempt_times(env, 7, timeout=30)
        for failure, (before, after) in enumerate(zip(attempts, attempts[1:]), start=1):
            base = min(0.1 * 2 ** (failure - 1), 1.0)
            self.assertGreaterEqual(after - before, base / 2 - SLACK,
                                    "retry %d came %.2fs after the previous attempt" % (failure, after - before))
        # The delays the sidecar announces: doubling, never above the cap.
        announced = [duration_seconds(m) for m in re.findall(r"exchange failed .*retry_in=(\S+)", sc.log_text())]
        self.assertGreaterEqual(len(announced), 6, sc.log_text()[-2000:])
        for failure, delay in enumerate(announced, start=1):
            base = min(0.1 * 2 ** (failure - 1), 1.0)
            self.assertGreaterEqual(delay, base / 2 - 0.001, "retry_in after failure %d: %s" % (failure, announced))
            self.assertLessEqual(delay, 1.0, "retry_in above --retry-max: %s" % announced)
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
