"""Startup and shutdown as an SDK and kubelet see them: a caller that arrives
while the first exchange is stalled gets a quick 503 instead of a hang, the
liveness probe answers meanwhile, and SIGTERM/SIGINT end the process cleanly
within kubelet's grace period even while an upstream call hangs."""

import signal
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import await_condition  # noqa: E402

# botocore waits 2 s for the container-credentials endpoint: an answer after
# that is no answer to the SDK, so this bound is the promise itself.
SDK_TIMEOUT = 2
# --startup-wait's default: how long a caller is parked for the first exchange.
STARTUP_WAIT = 0.8
# The one time bound kept on shutdown is the user-visible one: kubelet sends
# SIGKILL terminationGracePeriodSeconds (30 s by default; the manifests keep
# it) after SIGTERM, and a killed sidecar is what a user would notice. It
# takes ~0.1 s on an idle machine (bench/ would measure it, not this test).
GRACE_PERIOD = 30


class Startup(itest.TestCase):
    def test_caller_during_stalled_first_exchange_gets_503_not_a_hang(self):
        env = self.env()
        env.emu.delay = 5
        token = env.write_token()
        sc = env.sidecar(env.args(), wait_ready=False)

        # Raises (a timeout) instead of returning if the sidecar holds the
        # caller past the SDK's patience; before that, it is parked for
        # --startup-wait in case the first exchange completes.
        started = time.monotonic()
        self.assertErrorBody(sc.get("/v1/credentials", token=token, timeout=SDK_TIMEOUT), 503)
        self.assertGreaterEqual(time.monotonic() - started, STARTUP_WAIT - 0.05,
                                "answered 503 without waiting --startup-wait for the first exchange")
        self.assertEqual(sc.get("/healthz", timeout=SDK_TIMEOUT).status, 200)
        self.assertEqual(sc.get("/readyz", timeout=SDK_TIMEOUT).status, 503)

        # Once the stalled exchange completes the sidecar serves normally.
        await_condition(lambda: sc.get("/readyz").status == 200, timeout=15,
                        what="readiness after the slow first exchange")
        self.assertCredentials(sc.get("/v1/credentials", token=token, timeout=SDK_TIMEOUT))


class Shutdown(itest.TestCase):
    def _exits_cleanly_on(self, sig):
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args())
        self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertEqual(sc.stop(sig, GRACE_PERIOD), 0, sc.log_text())
        self.assertRegex(sc.log_text(), r"shutting down")

    def test_sigterm_exits_0(self):
        self._exits_cleanly_on(signal.SIGTERM)

    def test_sigint_exits_0(self):
        self._exits_cleanly_on(signal.SIGINT)

    def test_with_a_drain_delay_keys_are_served_after_sigterm_then_it_exits_0(self):
        # A sidecar run as a plain container is signalled with the app, which
        # may still need keys while it finishes; no preStop command can hold
        # the signal back (the image has no shell).
        env = self.env()
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--drain-delay", "2s"]))
        sc.send_signal(signal.SIGTERM)
        await_condition(lambda: "draining" in sc.log_text(), timeout=10, what="the drain to begin")
        self.assertCredentials(sc.get("/v1/credentials", token=token, timeout=SDK_TIMEOUT))
        self.assertEqual(sc.get("/healthz", timeout=SDK_TIMEOUT).status, 200)
        await_condition(lambda: not sc.running(), timeout=GRACE_PERIOD, what="the exit after the drain delay")
        self.assertEqual(sc.stop(), 0, sc.log_text())
        self.assertRegex(sc.log_text(), r"draining .*serving_for=2000ms[\s\S]*shutting down")

    def test_a_second_signal_ends_the_drain_at_once(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args(extra=["--drain-delay", "%ds" % (GRACE_PERIOD * 4)]))
        sc.send_signal(signal.SIGTERM)
        await_condition(lambda: "draining" in sc.log_text(), timeout=10, what="the drain to begin")
        # Well before the drain delay: the second signal, not the delay, ended it.
        self.assertEqual(sc.stop(signal.SIGINT, GRACE_PERIOD), 0, sc.log_text())
        self.assertRegex(sc.log_text(), r"shutting down signal=2")

    def test_sigterm_while_an_exchange_hangs_exits_0_within_the_grace_period(self):
        env = self.env()
        # The exchange would hang past the grace period: only cancelling it
        # lets the sidecar exit in time.
        env.emu.push_fault(hang=GRACE_PERIOD * 3)
        token = env.write_token()
        sc = env.sidecar(env.args(extra=["--exchange-timeout", "%ds" % (GRACE_PERIOD * 2)]), wait_ready=False)
        # The first exchange hangs: callers get 503 after the startup wait.
        self.assertErrorBody(sc.get("/v1/credentials", token=token, timeout=SDK_TIMEOUT), 503)

        started = time.monotonic()
        code = sc.stop(signal.SIGTERM, GRACE_PERIOD)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 0, sc.log_text())
        self.assertLessEqual(elapsed, GRACE_PERIOD)
        sys.stderr.write("\nshutdown while an exchange hung took %.2fs (a figure)\n" % elapsed)


if __name__ == "__main__":
    unittest.main()
