"""No secret ever leaves the sidecar except in a 200 /v1/credentials answer:
run a full life cycle at debug level (exchange, serve, rotation, refresh,
upstream errors whose bodies echo the token, rejected callers, 404, 405) and
search every log line and every other HTTP body for any 16-character piece of
any token, secret key or access key id involved."""

import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import await_condition, body_text, rec, record_status  # noqa: E402

LEVEL_KEYS = ("level", "lvl", "severity")
MESSAGE_KEYS = ("msg", "message")
# Length of the secret pieces searched for.
SLICE = 16


class NoSecretLeaks(itest.TestCase):
    def _full_cycle(self, log_format):
        env = self.env(lifetime=10)
        tokens = [env.write_token()]
        sc = env.sidecar(env.args(extra=[
            "--log-format", log_format, "--retry-initial", "100ms", "--retry-max", "1s"]))
        bodies = []

        def call(path, token=None, method="GET", expect=None):
            resp = sc.get(path, token=token, method=method)
            if expect is not None:
                self.assertEqual(resp.status, expect, "%s %s: %s" % (method, path, body_text(resp)))
            if not (path == "/v1/credentials" and resp.status == 200):
                bodies.append(("%s %s -> %d" % (method, path, resp.status), body_text(resp)))
            return resp

        # Serve, and the ways callers get turned away.
        call("/v1/credentials", token=tokens[0], expect=200)
        intruder = env.mint(sub="system:serviceaccount:other:intruder")
        tokens.append(intruder)
        call("/v1/credentials", expect=401)
        call("/v1/credentials", token=intruder, expect=403)
        call("/nope", token=tokens[0], expect=404)
        call("/v1/credentials", token=tokens[0], method="POST", expect=405)
        call("/v1/status", token=tokens[0])
        call("/metrics")

        # Rotate, then let a refresh use the new token.
        tokens.append(env.write_token())
        sc.wait_for_log(r"token rotated", timeout=10)
        seen = len(env.emu.exchanges)
        await_condition(lambda: any(record_status(r) == 200 for r in list(env.emu.exchanges)[seen:]),
                        timeout=15, what="a refresh with the rotated token")
        call("/v1/credentials", token=tokens[-1], expect=200)
        call("/v1/credentials", token=tokens[0], expect=200)

        # Upstream errors whose bodies echo the token back.
        echo = tokens[-1]
        env.emu.push_fault(status=503, body=json.dumps(
            {"code": 14, "message": "unavailable, you sent " + echo}))
        env.emu.push_fault(status=401, body=json.dumps(
            {"code": 16, "message": "token " + echo + " is not accepted"}))
        await_condition(lambda: any(record_status(r) == 401 for r in list(env.emu.exchanges)),
                        timeout=15, what="the upstream 503 and 401")
        call("/v1/status", token=tokens[-1])
        failed_at = len(env.emu.exchanges)
        await_condition(lambda: any(record_status(r) == 200 for r in list(env.emu.exchanges)[failed_at:]),
                        timeout=15, what="recovery after the upstream errors")
        call("/v1/credentials", token=intruder, expect=403)
        call("/v1/status", token=tokens[-1])
        call("/metrics")

        self.assertEqual(sc.stop(), 0)
        log = sc.log_text()

        secrets = set(tokens)
        for r in list(env.emu.exchanges):
            for field in ("token", "secret_access_key", "access_key_id"):
                value = rec(r, field)
                if value:
                    secrets.add(value)
        # A signature alone is enough to replay nothing, but it never belongs in a log.
        secrets |= {t.split(".")[2] for t in tokens if t.count(".") == 2 and len(t.split(".")[2]) >= 16}
        self.assertGreaterEqual(len(env.emu.successful_exchanges()), 3)

        # Not only whole secrets: an excerpt cut to 160 characters still
        # carries a piece of a token, and 16 characters of a key are enough
        # to find or guess the rest. Any 16-character slice counts.
        pieces = {}
        for secret in secrets:
            for i in range(len(secret) - SLICE + 1):
                pieces.setdefault(secret[i:i + SLICE], secret)

        short = [secret for secret in secrets if len(secret) < SLICE]

        def leaks_in(what, text):
            found = ["%s holds the secret %s…" % (what, secret[:4]) for secret in short if secret in text]
            for i in range(len(text) - SLICE + 1):
                secret = pieces.get(text[i:i + SLICE])
                if secret is not None:
                    found.append("%s holds %r, a piece of the secret %s…" % (what, text[i:i + SLICE], secret[:6]))
                    break
            return found

        leaks = []
        for line in log.splitlines():
            leaks += leaks_in("log line %r" % line[:200], line)
        for what, text in bodies:
            leaks += leaks_in("%s body" % what, text)
        self.assertEqual(leaks, [])
        return log

    def test_text_logs_and_error_bodies_hold_no_secret(self):
        self._full_cycle("text")

    def test_json_logs_and_error_bodies_hold_no_secret(self):
        log = self._full_cycle("json")
        lines = [line for line in log.splitlines() if line.strip()]
        self.assertGreater(len(lines), 0)
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                self.fail("log line is not JSON: %r" % line)
            self.assertIsInstance(entry, dict, line)
            self.assertTrue(any(k in entry for k in LEVEL_KEYS), "no level in %r" % line)
            self.assertTrue(any(k in entry for k in MESSAGE_KEYS), "no message in %r" % line)


if __name__ == "__main__":
    unittest.main()
