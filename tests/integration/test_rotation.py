"""Token rotation the way kubelet does it (and plain files rewritten in place):
the sidecar picks up the new token without restart, uses it for the next
exchange, exchanges at once when the old token had been rejected, and accepts
callers presenting either the previous or the new token."""

import base64
import hashlib
import json
import os
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import await_condition, rec, record_status  # noqa: E402

# A rejected token waits --retry-max unless the token rotates: make that wait
# long, so an exchange within a few seconds can only come from the rotation.
REJECTED_ARGS = ["--retry-initial", "100ms", "--retry-max", "60s"]
WELL_BELOW_RETRY_MAX = 10


def jti_of(token):
    """The jti claim of `token` (decoded, not verified)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload)).get("jti")


def used_token(record):
    """Which token an upstream request carried, as the jti when there is one."""
    jti = rec(record, "jti")
    if jti:
        return jti
    return rec(record, "token")


def ident(token):
    return jti_of(token) or token


def served(sc, token, timeout=5):
    """The first 200 /v1/credentials answer: the emulator records an exchange
    just before answering, so the sidecar may store the keys a moment later."""
    def ok():
        resp = sc.get("/v1/credentials", token=token)
        return resp if resp.status == 200 else None
    return await_condition(ok, timeout=timeout, what="credentials to be served")


def write_in_place(path, token):
    """Rewrite a plain file in place (same inode), as an editor or `echo >` does."""
    with open(path, "r+" if os.path.exists(path) else "w") as f:
        f.seek(0)
        f.write(token)
        f.truncate()


class KubeletRotation(itest.TestCase):
    def test_next_exchange_after_rotation_carries_the_new_token(self):
        env = self.env(lifetime=12)
        old = env.write_token()
        sc = env.sidecar(env.args())
        first = env.emu.successful_exchanges()[0]
        self.assertEqual(used_token(first), ident(old))

        new = env.write_token()
        sc.wait_for_log(r"token rotated", timeout=10)
        seen = len(env.emu.exchanges)
        # Credentials last 12 s and are renewed after ~3 s: a refresh follows.
        await_condition(lambda: len(env.emu.exchanges) > seen, timeout=15,
                        what="a refresh after the rotation")
        after = list(env.emu.exchanges)[seen:]
        self.assertEqual(used_token(after[0]), ident(new))
        self.assertEqual(record_status(after[0]), 200)

        # And what is served now is the key obtained with the new token.
        await_condition(
            lambda: itest.body_json(sc.get("/v1/credentials", token=new)).get("AccessKeyId")
            == rec(after[0], "access_key_id"),
            timeout=5, what="the new key to be served")

    def test_callers_with_previous_or_new_token_are_accepted(self):
        env = self.env()
        old = env.write_token()
        sc = env.sidecar(env.args())
        self.assertCredentials(sc.get("/v1/credentials", token=old))

        new = env.write_token()
        await_condition(lambda: sc.get("/v1/credentials", token=new).status == 200,
                        timeout=10, what="the rotated token to be accepted")
        self.assertCredentials(sc.get("/v1/credentials", token=old))
        self.assertCredentials(sc.get("/v1/credentials", token=new))
        unrelated = env.mint(sub="system:serviceaccount:other:intruder")
        self.assertErrorBody(sc.get("/v1/credentials", token=unrelated), 403)

    def test_rejected_token_then_rotation_exchanges_at_once(self):
        env = self.env()
        env.emu.set_fault(status=401, body='{"code": 16, "message": "token not accepted"}')
        env.write_token()
        sc = env.sidecar(env.args(extra=REJECTED_ARGS), wait_ready=False)
        sc.wait_for_log(r"exchange failed.*kind=rejected", timeout=10)
        self.assertEqual(sc.get("/readyz").status, 503)

        env.emu.clear_faults()
        new = env.write_token()
        env.emu.wait_for_exchanges(1, timeout=WELL_BELOW_RETRY_MAX, successful=True)
        good = env.emu.successful_exchanges()[0]
        self.assertEqual(used_token(good), ident(new))
        data = self.assertCredentials(served(sc, new))
        self.assertEqual(data["AccessKeyId"], rec(good, "access_key_id"))

    def test_expired_token_then_rotation_exchanges_at_once(self):
        env = self.env()
        now = int(time.time())
        expired = env.mint(iat=now - 7200, lifetime=3600)
        env.tokdir.write(expired)
        sc = env.sidecar(env.args(extra=REJECTED_ARGS), wait_ready=False)
        # Whether the sidecar notices the expiry itself or learns it from the
        # upstream's 401, it must not be ready and must say why.
        await_condition(
            lambda: any(record_status(r) not in (None, 200) for r in list(env.emu.exchanges))
            or "expired" in sc.log_text().lower(),
            timeout=10, what="the expired token to be refused")
        self.assertEqual(sc.get("/readyz").status, 503)
        self.assertEqual(env.emu.successful_exchanges(), [])

        new = env.write_token()
        env.emu.wait_for_exchanges(1, timeout=WELL_BELOW_RETRY_MAX, successful=True)
        self.assertEqual(used_token(env.emu.successful_exchanges()[0]), ident(new))
        self.assertCredentials(served(sc, new))


# The rotation storm: rotations far faster than kubelet's (every 100 ms
# instead of every ~48 min), while busy callers each send the token the file
# holds at that moment. A caller's token may be refused only once it is two
# rotations old; the current and the previous one never.
STORM_ROTATIONS = 100
STORM_SECONDS = 10.0
STORM_CLIENTS = 16
STORM_REQUESTS_PER_CLIENT = 20_000   # a bound; the storm's end stops them first
STORM_TIME_LIMIT = 60                # a bound for a stalled sidecar, not a measurement


def fingerprint(token):
    """What the sidecar logs for a token (sha256: and 12 hex digits): safe to print."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class RotationStorm(itest.TestCase):
    def test_callers_with_the_current_or_previous_token_are_never_refused_during_a_storm(self):
        env = self.env()
        tokens = [env.mint() for _ in range(STORM_ROTATIONS + 1)]
        env.tokdir.write(tokens[0])
        sc = env.sidecar(env.args(log_level="info"))
        self.assertCredentials(sc.get("/v1/credentials", token=tokens[0]))

        generation_of = {token: n for n, token in enumerate(tokens)}
        # Written by the rotator only. A refusal is judged against `begun`,
        # the newest generation the sidecar could have seen by then: judged
        # against the finished writes, a token the file had already replaced
        # would pass for the previous one while the rotator was between the
        # write and the count.
        begun = [0]
        storm_over = threading.Event()
        lock = threading.Lock()
        counts = {"requests": 0, "ok": 0, "refused_fresh": 0, "refused_stale": 0, "other": 0}
        refusals = []           # (generation presented, newest generation begun), fresh refusals only

        def rotator():
            started = time.monotonic()
            for n in range(1, STORM_ROTATIONS + 1):
                # Paced, not awaited: the rotations are the load.
                storm_over.wait(max(0.0, started + n * STORM_SECONDS / STORM_ROTATIONS - time.monotonic()))
                begun[0] = n
                env.tokdir.write(tokens[n])
            storm_over.set()

        def client():
            deadline = time.monotonic() + STORM_TIME_LIMIT
            mine = dict.fromkeys(counts, 0)
            for _ in range(STORM_REQUESTS_PER_CLIENT):
                if storm_over.is_set() or time.monotonic() > deadline:
                    break
                try:
                    token = env.tokdir.path.read_text()
                except FileNotFoundError:
                    continue  # the path was resolved through a directory deleted meanwhile
                status = sc.get("/v1/credentials", token=token).status
                # How many rotations old the token was, at most, when the answer came.
                newest = begun[0]
                age = newest - generation_of[token]
                mine["requests"] += 1
                if status == 200:
                    mine["ok"] += 1
                elif status == 403 and age > 1:
                    mine["refused_stale"] += 1
                elif status == 403:
                    mine["refused_fresh"] += 1
                    with lock:
                        refusals.append((generation_of[token], newest))
                else:
                    mine["other"] += 1
            with lock:
                for key, value in mine.items():
                    counts[key] += value

        clients = [threading.Thread(target=client, daemon=True) for _ in range(STORM_CLIENTS)]
        rotation = threading.Thread(target=rotator, daemon=True)
        for thread in clients:
            thread.start()
        rotation.start()
        rotation.join(STORM_TIME_LIMIT)
        storm_over.set()
        for thread in clients:
            thread.join(STORM_TIME_LIMIT)
        self.assertFalse(rotation.is_alive() or any(t.is_alive() for t in clients), "the storm did not end")

        print("rotation storm: %(requests)d requests, %(ok)d ok, %(refused_fresh)d current/previous refused, "
              "%(refused_stale)d older refused, %(other)d other" % counts, file=sys.stderr)
        self.assertEqual(begun[0], STORM_ROTATIONS)
        self.assertGreater(counts["requests"], 0)
        self.assertEqual(counts["refused_fresh"], 0,
                         "callers with the current or previous token were refused:\n"
                         + self._refusal_report(sc, tokens, refusals))
        self.assertEqual(counts["other"], 0, "answers other than 200 and 403")
        self.assertIsNone(sc.returncode, "the sidecar exited:\n" + sc.log_text())

    @staticmethod
    def _refusal_report(sc, tokens, refusals):
        """For each refused generation: its fingerprint, the rotator's position
        when refused, and whether the sidecar's log shows it ever read it
        (tokens themselves are never printed)."""
        log = sc.log_text()
        lines = []
        for generation in sorted({g for g, _ in refusals}):
            newest = sorted({n for g, n in refusals if g == generation})
            mark = fingerprint(tokens[generation])
            read = "read by the sidecar" if mark in log else "never read by the sidecar"
            lines.append("  generation %d (%s): %d refusals, rotations begun then %s; %s"
                         % (generation, mark, sum(1 for g, _ in refusals if g == generation),
                            ",".join(map(str, newest)), read))
        return "\n".join(lines)


class PlainFileRotation(itest.TestCase):
    def test_plain_file_rewritten_in_place_is_noticed(self):
        env = self.env()
        env.emu.set_fault(status=401, body='{"code": 16, "message": "token not accepted"}')
        path = env.tmp / "plain-token"
        write_in_place(path, env.mint())
        sc = env.sidecar(env.args(token_file=path, extra=REJECTED_ARGS), wait_ready=False)
        sc.wait_for_log(r"exchange failed.*kind=rejected", timeout=10)

        env.emu.clear_faults()
        new = env.mint()
        write_in_place(path, new)
        env.emu.wait_for_exchanges(1, timeout=WELL_BELOW_RETRY_MAX, successful=True)
        self.assertEqual(used_token(env.emu.successful_exchanges()[0]), ident(new))
        self.assertCredentials(served(sc, new))

    def test_plain_file_rotation_is_used_for_the_next_refresh(self):
        env = self.env(lifetime=12)
        path = env.tmp / "plain-token"
        old = env.mint()
        write_in_place(path, old)
        sc = env.sidecar(env.args(token_file=path))

        new = env.mint()
        write_in_place(path, new)
        await_condition(lambda: sc.get("/v1/credentials", token=new).status == 200,
                        timeout=10, what="the rewritten token to be accepted")
        seen = len(env.emu.exchanges)
        await_condition(lambda: len(env.emu.exchanges) > seen, timeout=15,
                        what="a refresh after the rewrite")
        self.assertEqual(used_token(list(env.emu.exchanges)[seen]), ident(new))


class MissingToken(itest.TestCase):
    def _missing_then_written(self, env, token_file, write):
        sc = env.sidecar(env.args(token_file=token_file, extra=["--token-poll", "1s"]),
                         wait_ready=False)
        sc.wait_for_log(r"token unavailable", timeout=10)
        future = env.mint()
        self.assertEqual(sc.get("/readyz").status, 503)
        with self.subTest("a caller is told the sidecar is not ready (503), not that its token is wrong"):
            self.assertErrorBody(sc.get("/v1/credentials", token=future), 503)
        self.assertEqual(sc.get("/healthz").status, 200)
        self.assertEqual(env.emu.successful_exchanges(), [])

        write(future)
        await_condition(lambda: sc.get("/readyz").status == 200, timeout=10,
                        what="readiness after the token appeared")
        self.assertEqual(used_token(env.emu.successful_exchanges()[0]), ident(future))
        self.assertCredentials(sc.get("/v1/credentials", token=future))
        self.assertIsNone(sc.returncode, "the sidecar restarted or exited:\n" + sc.log_text())

    def test_kubelet_token_missing_at_start_then_written(self):
        env = self.env()
        self._missing_then_written(env, env.tokdir.path, env.tokdir.write)

    def test_plain_token_missing_at_start_then_created(self):
        env = self.env()
        path = env.tmp / "later-token"
        self._missing_then_written(env, path, lambda t: write_in_place(path, t))


if __name__ == "__main__":
    unittest.main()
