#!/usr/bin/env python3
"""Clocks: a node clock minutes or hours off the upstream's, and a wall clock
that steps while keys are held.

The rule users rely on: a key's lifetime is `Expiration - Date` on the
upstream's clock, its end on the node is counted on the monotonic clock, and
the `Expiration` served is that end in the node's wall clock. So an SDK on a
skewed node sees the real time left, and a step of the wall clock neither
stops service nor stretches a key past its real end.

The wall-clock step uses libfaketime (Debian's `libfaketime`) preloaded into
the real binary, with the monotonic clock left alone, as an NTP step does.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itest  # noqa: E402
from itest import to_epoch  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
TSAN_SUPPRESSIONS = Path(__file__).resolve().parent / "libfaketime.tsan-suppressions"


def renewed(tc, sc, token, old, what):
    """The first served answer with a key other than `old`, awaited: the
    emulator counts an exchange a moment before the sidecar publishes it."""
    def fresh():
        data = tc.assertCredentials(sc.get("/v1/credentials", token=token))
        return data if data["AccessKeyId"] != old else None
    return itest.await_condition(fresh, 60, what=what)


class SkewedNodeClock(itest.TestCase):
    def _left_on_node_clock(self, data, node_offset=0.0):
        """Seconds of life the served Expiration promises to an SDK whose
        clock reads `node_offset` more than the test's."""
        return to_epoch(data["Expiration"]) - (time.time() + node_offset)

    def test_a_node_ten_minutes_ahead_serves_every_key_with_its_full_life(self):
        # Short keys from an upstream 10 minutes behind: by the node's clock
        # they "expired" 9 minutes before they were issued. They must be
        # served anyway, with an Expiration a minute ahead of the node.
        env = self.env(lifetime=60)
        env.emu.clock_offset = -600
        token = env.write_token()
        sc = env.sidecar(env.args())
        first = self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertGreater(self._left_on_node_clock(first), 50)
        self.assertLessEqual(self._left_on_node_clock(first), 60)
        sc.wait_for_log(r"clock skew skew=-?60\ds")

        # The renewal comes on schedule (a quarter of the minute, less
        # jitter), and the renewed key is served in turn.
        second = renewed(self, sc, token, first["AccessKeyId"], "a renewal")
        self.assertIn(second["AccessKeyId"], {r.access_key_id for r in env.emu.successful_exchanges()})
        self.assertGreater(self._left_on_node_clock(second), 40)
        self.assertEqual(sc.get("/readyz").status, 200)

    def test_an_upstream_hours_off_either_way_gets_renewal_scheduled_within_the_life_of_the_key(self):
        for upstream_ahead in (-3 * 3600, 3 * 3600):
            with self.subTest(upstream_ahead=upstream_ahead):
                env = self.env(lifetime=120)
                env.emu.clock_offset = upstream_ahead
                token = env.write_token()
                sc = env.sidecar(env.args(extra=("--refresh-jitter", "0")))
                data = self.assertCredentials(sc.get("/v1/credentials", token=token))
                self.assertGreater(self._left_on_node_clock(data), 100)
                self.assertLessEqual(self._left_on_node_clock(data), 120)
                status = sc.get("/v1/status", token=token).json
                # A quarter of 120 s after the exchange, not hours away.
                self.assertLessEqual(status["next_refresh"]["in_seconds"], 30)
                self.assertGreater(to_epoch(status["credentials"]["served_until"]), time.time() + 90)


class SteppedWallClock(itest.TestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(LIBFAKETIME):
            self.fail("libfaketime is missing: scripts/install-deps.sh installs it")

    def _sidecar_with_movable_clock(self, env, shift_file):
        shift_file.write_text("+0\n")
        environment = {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": str(shift_file),
            "FAKETIME_NO_CACHE": "1",
            "DONT_FAKE_MONOTONIC": "1",
            # Under ASan the preload must be allowed to come first.
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
            # Under TSan, races inside libfaketime itself are not cwcreds'.
            "TSAN_OPTIONS": os.environ.get("TSAN_OPTIONS", "") + ":suppressions=" + str(TSAN_SUPPRESSIONS),
        }
        return env.sidecar(env.args(extra=("--refresh-jitter", "0")), env=environment)

    def test_a_wall_clock_stepped_back_two_hours_neither_delays_renewal_nor_stretches_the_key(self):
        env = self.env(lifetime=60)
        token = env.write_token()
        shift_file = env.tmp / "faketime"
        sc = self._sidecar_with_movable_clock(env, shift_file)
        first = self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertLessEqual(to_epoch(first["Expiration"]) - time.time(), 60)

        shift_file.write_text("-2h\n")
        node_now = time.time() - 7200
        restated = self.assertCredentials(sc.get("/v1/credentials", token=token))
        # The same key, its end stated in the node's new clock: under a
        # minute away, not two hours and a minute.
        self.assertEqual(restated["AccessKeyId"], first["AccessKeyId"])
        self.assertLessEqual(to_epoch(restated["Expiration"]) - node_now, 60)
        self.assertGreater(to_epoch(restated["Expiration"]) - node_now, 0)

        # The renewal due 15 s after the first exchange still comes.
        second = renewed(self, sc, token, first["AccessKeyId"], "the scheduled renewal")
        self.assertLessEqual(to_epoch(second["Expiration"]) - (time.time() - 7200), 60)

    def test_a_wall_clock_stepped_forward_keeps_the_key_served(self):
        env = self.env(lifetime=900)
        token = env.write_token()
        shift_file = env.tmp / "faketime"
        sc = self._sidecar_with_movable_clock(env, shift_file)
        first = self.assertCredentials(sc.get("/v1/credentials", token=token))
        shift_file.write_text("+2h\n")
        moved = self.assertCredentials(sc.get("/v1/credentials", token=token))
        self.assertEqual(moved["AccessKeyId"], first["AccessKeyId"])
        left = to_epoch(moved["Expiration"]) - (time.time() + 7200)
        self.assertGreater(left, 880)
        self.assertLessEqual(left, 900)
        self.assertEqual(sc.get("/readyz").status, 200)


if __name__ == "__main__":
    itest.main()
