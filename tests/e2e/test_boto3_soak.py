"""boto3, one long-lived client, for over three credential lifetimes across token rotations.

In both exchange modes at once (each its own emulator, token volume and
sidecar; one moto): the CoreWeave emulator hands out real moto keys that live
LIFETIME seconds and are deleted once expired, the token volume rotates every
ROTATE_EVERY seconds with tokens that live TOKEN_LIFETIME seconds, and a boto3
app in a pod's environment puts and gets objects for SOAK seconds.

Expected: no error at all; the requests were signed with at least 3 different
keys, every one of them handed out by the emulator; the sidecar exchanged about
once per refresh interval (a quarter of the lifetime, minus up to 10% jitter),
not once per request; and a key used early in the run, now past its expiry,
is really refused by moto.
"""

import json
import math
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402
from e2e import cwtest  # noqa: E402

LIFETIME = 45          # key lifetime (emulator for container-credentials, --duration for oidc)
ROTATE_EVERY = 40      # kubelet rotates the token this often
TOKEN_LIFETIME = 100   # so a sidecar stuck on an old token would be refused within the run
SOAK = 3 * LIFETIME + 5
PAUSE = 0.05           # between put/get pairs: a steady app, not a CPU hog on a 2-core CI
REFRESH_FRACTION = 0.25  # the sidecar's defaults
REFRESH_JITTER = 0.1


class Boto3SoakTest(unittest.TestCase):
    def test_long_lived_client_in_both_modes(self):
        tmp = cwtest.TempDir(prefix="cwcreds-e2e-soak-")
        self.addCleanup(tmp.cleanup)
        moto = e2e.Moto().start()
        self.addCleanup(moto.stop)
        admin_s3 = moto.client("s3")

        worlds, apps = {}, {}
        for mode in (e2e.CONTAINER, e2e.OIDC):
            world = e2e.World(moto, tmp.path / mode, mode, LIFETIME,
                              rotate_every=ROTATE_EVERY, token_lifetime=TOKEN_LIFETIME)
            self.addCleanup(world.stop)
            world.start()
            worlds[mode] = world
            bucket = f"soak-{'cc' if mode == e2e.CONTAINER else 'oidc'}"
            admin_s3.create_bucket(Bucket=bucket)
            home = tmp.path / f"home-{mode}"
            home.mkdir()
            env = e2e.pod_env(home, world.credentials_url, world.tokens.path, moto.url)
            started = time.time()
            proc = subprocess.Popen(
                [sys.executable, str(e2e.HERE / "boto3_app.py"), "soak", bucket, str(SOAK), str(PAUSE)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(cwtest.stop_process, proc)
            apps[mode] = (proc, started)

        summaries = {}
        for mode, (proc, started) in apps.items():
            try:
                out, err = proc.communicate(timeout=SOAK + 60)
            except subprocess.TimeoutExpired:
                cwtest.stop_process(proc)
                self.fail(f"{mode}: the boto3 app did not finish within {SOAK + 60}s")
            ended = time.time()
            self.assertEqual(proc.returncode, 0, f"{mode}: boto3 app failed:\n{err[-3000:]}")
            summaries[mode] = (json.loads(out.strip().splitlines()[-1]), started, ended)

        figures = []
        for mode, (summary, started, ended) in summaries.items():
            world = worlds[mode]
            with self.subTest(mode=mode):
                figures.append(self.check(mode, world, moto, summary, started, ended))
        print("\n" + "\n".join(figures))

        for mode, world in worlds.items():
            self.assertEqual(world.stop(), 0, f"{mode}: sidecar exit code")
            self.assertEqual(world.minter.errors, [], f"{mode}: deleting expired keys failed")

    def check(self, mode, world, moto, summary, started, ended) -> str:
        elapsed = ended - started
        errors = summary["errors"]
        self.assertEqual(errors, [], f"{mode}: {len(errors)} errors in {summary['ops']} operations; "
                                     f"first: {errors[:5]}")
        self.assertGreater(summary["ops"], 0)

        # Keys: several, each handed out by the emulator (moto knows no other key the app could have).
        used = set(summary["keys"])
        served = {r.access_key_id: r for r in world.emulator.successful_exchanges()}
        self.assertNotIn("(unsigned)", used)
        self.assertLessEqual(used, set(served), f"{mode}: signed with a key the emulator never handed out")
        self.assertGreaterEqual(len(used), 3, f"{mode}: keys used: {sorted(map(e2e.mask, used))}")

        # Token rotations happened during the run, and the sidecar exchanged the new tokens.
        rotations = [t for t in world.tokens.rotations if started <= t <= ended]
        self.assertGreaterEqual(len(rotations), 2, f"{mode}: token rotations during the run")
        in_run = [r for r in world.emulator.successful_exchanges() if started <= r.time <= ended]
        tokens_used = {r.jti for r in in_run}
        self.assertGreaterEqual(len(tokens_used), 3, f"{mode}: distinct tokens exchanged during the run")
        self.assertTrue(all(r.mode == mode for r in world.emulator.exchanges))

        # Exchanges follow the refresh interval, not the request count.
        longest = REFRESH_FRACTION * LIFETIME + 1            # + exchange latency, whole-second expiry
        shortest = REFRESH_FRACTION * (1 - REFRESH_JITTER) * (LIFETIME - 1)
        low, high = math.floor(elapsed / longest) - 1, math.ceil(elapsed / shortest) + 1
        requests = sum(entry[2] for entry in summary["keys"].values())
        failed = [r for r in world.emulator.exchanges if not r.ok]
        self.assertEqual(failed, [], f"{mode}: failed exchanges")
        # Only the upper bound is asserted: a loaded machine can delay a
        # renewal, never add one, and that renewals happen at all is shown
        # by the keys and tokens used above. `low` is printed as a figure.
        self.assertLessEqual(len(in_run), high,
                             f"{mode}: {len(in_run)} exchanges in {elapsed:.0f}s, expected {low}..{high} "
                             f"(every {shortest:.1f}..{longest:.1f}s); S3 requests: {requests}")

        # The first key the app used is past its expiry by now: moto must refuse it.
        first_key = min(used, key=lambda k: summary["keys"][k][0])
        first = served[first_key]
        self.assertTrue(world.minter.wait_deleted(first_key, timeout=LIFETIME + 10),
                        f"{mode}: key {e2e.mask(first_key)} was not deleted after its expiry")
        self.assertLessEqual(first.expires_at.timestamp(), world.minter.deleted[first_key])
        with self.assertRaises(e2e.botocore.exceptions.ClientError) as refused:
            moto.client("s3", (first.access_key_id, first.secret_access_key)).list_objects_v2(
                Bucket="soak-cc", MaxKeys=1)
        self.assertEqual(e2e.error_code(refused.exception), "InvalidAccessKeyId")

        status = world.sidecar.get("/v1/status", token=world.tokens.path.read_text()).json or {}
        fetches = status.get("counters", {}).get("credentials_served", "?")
        return (f"e2e soak [{mode}]: {summary['ops']} S3 calls ({requests} requests, {fetches} credential "
                f"fetches answered by the sidecar) in {elapsed:.0f}s, "
                f"errors {len(errors)}, distinct access keys {len(used)}, "
                f"token rotations {len(rotations)}, tokens exchanged {len(tokens_used)}, "
                f"exchanges {len(in_run)} (expected {elapsed / (REFRESH_FRACTION * LIFETIME):.1f} "
                f"= {elapsed:.0f}s / {REFRESH_FRACTION * LIFETIME:.2f}s; allowed {low}..{high}), "
                f"expired key refused: InvalidAccessKeyId")


if __name__ == "__main__":
    unittest.main(verbosity=2)
