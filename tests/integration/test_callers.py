"""Callers besides the pod's token: an accepted static token file
(--accept-token-file, a mounted Secret) and EC2 instance metadata (--imds,
--imds-listen). What each is allowed, what is refused and with which status,
what /v1/status and /metrics say, and that no secret shows anywhere."""

import http.client
import os
import re
import secrets
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

import itest  # noqa: E402
from itest import CONTAINER  # noqa: E402

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
SESSION = "X-aws-ec2-metadata-token"
CREDS = "/latest/meta-data/iam/security-credentials/"


def served(sc, caller):
    match = re.search(r'^cwcreds_credentials_served_total\{caller="%s"\} (\S+)$' % caller,
                      sc.get("/metrics").body, re.M)
    return int(float(match.group(1)))


def await_condition(what, condition, timeout=10):
    """Polls `condition` (bounded) until it holds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


class AcceptedTokenFile(itest.TestCase):
    def secret_dir(self, env, value):
        secret = cwtest.KubeletTokenDir(env.tmp / "secret", filename="token")
        secret.write(value)
        return secret

    def test_missing_empty_or_short_files_are_refused_at_startup(self):
        env = self.env()
        env.write_token()
        short = env.tmp / "short"
        short.write_text("x" * 31 + "\n")
        empty = env.tmp / "empty"
        empty.write_text("")
        for path, reason in ((env.tmp / "absent", "No such file"), (empty, "empty"),
                             (short, "shorter than 32 characters")):
            with self.subTest(path=path.name):
                proc = cwtest.run_cwcreds(["serve", *env.args(CONTAINER), "--listen", "127.0.0.1:0",
                                           "--accept-token-file", str(path)], timeout=10)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn("--accept-token-file", proc.stderr)
                self.assertIn(reason, proc.stderr)

    def test_a_token_of_exactly_32_characters_is_enough(self):
        env = self.env()
        env.write_token()
        value = secrets.token_hex(16)  # what `openssl rand -hex 16` makes: 32 characters
        secret = self.secret_dir(env, value + "\n")
        sc = env.sidecar(env.args(CONTAINER, extra=["--accept-token-file", str(secret.path)]))
        self.assertCredentials(sc.get("/v1/credentials", token=value))

    def test_static_token_is_served_counted_and_revoked_when_the_secret_changes(self):
        env = self.env()
        pod_token = env.write_token()
        first, second = secrets.token_hex(24), secrets.token_hex(24)
        secret = self.secret_dir(env, first)
        sc = env.sidecar(env.args(CONTAINER, extra=["--accept-token-file", str(secret.path)]))

        self.assertCredentials(sc.get("/v1/credentials", token=pod_token))
        self.assertCredentials(sc.get("/v1/credentials", token=first))
        self.assertEqual(sc.get("/v1/credentials", token="x" * 48).status, 403)
        self.assertEqual(served(sc, "pod-token"), 1)
        self.assertEqual(served(sc, "accepted-token"), 1)
        status = sc.get("/v1/status", token=first).json
        self.assertEqual(status["callers"]["served"]["accepted-token"], 1)
        self.assertEqual(status["callers"]["accepted_token_files"][0]["file"], str(secret.path))
        self.assertTrue(status["callers"]["accepted_token_files"][0]["readable"])

        # A new Secret value: the old one stops working, the new one works.
        secret.write(second)
        await_condition("the sidecar refusing the replaced value",
                        lambda: sc.get("/v1/credentials", token=first).status == 403)
        self.assertCredentials(sc.get("/v1/credentials", token=second))

        # The Secret going away revokes its value at once and is visible
        # (a Secret volume swaps its ..data like a projected one).
        secret.remove()
        self.assertEqual(sc.get("/v1/credentials", token=second).status, 403)
        self.assertFalse(sc.get("/v1/status", token=pod_token).json["callers"]["accepted_token_files"][0]["readable"])
        self.assertRegex(sc.get("/metrics").body, r"(?m)^cwcreds_accepted_token_files_unreadable 1$")
        inspect = cwtest.run_cwcreds(["inspect", "--token-file", str(env.tokdir.path),
                                      "--sidecar", sc.base_url], timeout=20)
        self.assertNotEqual(inspect.returncode, 0)
        self.assertIn("unreadable", inspect.stdout)

        for text in (sc.log_text(), sc.get("/metrics").body, sc.get("/v1/status", token=pod_token).body):
            for value in (first, second):
                self.assertNotIn(value, text)


    def test_the_probe_listener_reports_the_same_caller_metrics_as_the_loopback_one(self):
        env = self.env()
        env.write_token()
        value = secrets.token_hex(24)
        secret = self.secret_dir(env, value)
        sc = env.sidecar(env.args(CONTAINER, extra=["--accept-token-file", str(secret.path), "--imds",
                                                    "--probe-listen", "127.0.0.1:0"]))
        line = sc.wait_for_log(r"probes listening")
        probe_port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))

        def samples(port):
            """{sample name with its labels: value} of one listener's /metrics."""
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", "/metrics")
                body = connection.getresponse().read().decode()
            finally:
                connection.close()
            return dict(line.rsplit(" ", 1) for line in body.splitlines() if line and not line.startswith("#"))

        secret.remove()
        # Refused at once: the sidecar has read the file's absence.
        self.assertEqual(sc.get("/v1/credentials", token=value).status, 403)
        loopback, probes = samples(sc.port), samples(probe_port)
        # Both listeners answer from one process: the same metrics (request
        # counts by path differ between two scrapes), and the same value for
        # what the callers' state decides.
        self.assertEqual({name.split("{")[0] for name in loopback}, {name.split("{")[0] for name in probes})
        self.assertEqual(loopback["cwcreds_accepted_token_files_unreadable"], "1")
        self.assertEqual(probes["cwcreds_accepted_token_files_unreadable"], "1")
        # Knowing the callers does not make the probe listener serve them.
        connection = http.client.HTTPConnection("127.0.0.1", probe_port, timeout=5)
        try:
            connection.request("PUT", "/latest/api/token", headers={TTL: "60"})
            self.assertEqual(connection.getresponse().status, 404)
        finally:
            connection.close()

    def test_a_secret_file_emptied_deleted_or_spoiled_revokes_its_value_at_once(self):
        def truncate(secret):
            os.truncate(secret.path, 0)  # in place, through the symlinks

        spoilers = (("emptied in place", truncate, "empty"),
                    ("deleted", lambda secret: secret.remove(), "No such file"),
                    ("replaced by 10 characters", lambda secret: secret.write("0123456789"), "shorter than 32"))
        for how, spoil, problem in spoilers:
            with self.subTest(how):
                env = self.env()
                pod_token = env.write_token()
                value = secrets.token_hex(24)
                secret = self.secret_dir(env, value)
                sc = env.sidecar(env.args(CONTAINER, extra=["--accept-token-file", str(secret.path)]))
                self.assertCredentials(sc.get("/v1/credentials", token=value))

                spoil(secret)
                # The very next call: no waiting for a poll or a directory event.
                self.assertEqual(sc.get("/v1/credentials", token=value).status, 403)
                files = sc.get("/v1/status", token=pod_token).json["callers"]["accepted_token_files"]
                self.assertFalse(files[0]["readable"])
                self.assertIn(problem, files[0]["problem"])
                self.assertRegex(sc.get("/metrics").body, r"(?m)^cwcreds_accepted_token_files_unreadable 1$")
                self.assertCredentials(sc.get("/v1/credentials", token=pod_token))

                # Restored: served again.
                secret.write(value)
                await_condition("the restored value to be served",
                                lambda: sc.get("/v1/credentials", token=value).status == 200)

    def test_a_file_it_may_not_read_names_the_permission(self):
        if os.geteuid() == 0:
            cwcreds_user = ["setpriv", "--reuid=65532", "--regid=65532", "--clear-groups"]
        else:
            cwcreds_user = []
        env = self.env()
        env.write_token()
        locked = env.tmp / "locked"
        locked.write_text(secrets.token_hex(24))
        os.chmod(locked, 0o000)
        if not cwcreds_user and os.access(locked, os.R_OK):
            self.skipTest("this user can read a file of mode 000")
        proc = subprocess.run([*cwcreds_user, str(cwtest.cwcreds_bin()), "serve", *map(str, env.args(CONTAINER)),
                               "--listen", "127.0.0.1:0", "--accept-token-file", str(locked)],
                              capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("Permission denied", proc.stderr)
        self.assertRegex(proc.stderr, r"runs as uid \d+, gid \d+")
        self.assertNotIn("characters", proc.stderr)


class InstanceMetadata(itest.TestCase):
    def start(self, extra=()):
        env = self.env()
        self.pod_token = env.write_token(sub="system:serviceaccount:team-a:s3-app")
        return env.sidecar(env.args(CONTAINER, extra=["--imds", "--region", "US-EAST-04A", *extra]))

    def session(self, sc, ttl="60"):
        answer = sc.get("/latest/api/token", method="PUT", headers={TTL: ttl})
        self.assertEqual(answer.status, 200, answer.body)
        return answer.body

    def test_the_imds_v2_flow_gives_the_served_credentials_with_a_null_token(self):
        sc = self.start()
        token = self.session(sc)
        self.assertEqual(len(token), 64)
        self.assertEqual(sc.get(CREDS, headers={SESSION: token}).body, "s3-app")
        document = sc.get(CREDS + "s3-app", headers={SESSION: token}).json
        container = sc.get("/v1/credentials", token=self.pod_token).json
        self.assertEqual(document["Code"], "Success")
        self.assertEqual(document["Type"], "AWS-HMAC")
        for field in ("AccessKeyId", "SecretAccessKey", "Expiration"):
            self.assertEqual(document[field], container[field], field)
        self.assertIn("Token", document)
        self.assertIsNone(document["Token"])
        self.assertEqual(sc.get("/latest/meta-data/placement/region", headers={SESSION: token}).body,
                         "US-EAST-04A")
        self.assertEqual(served(sc, "imds-session"), 1)
        self.assertNotIn(token, sc.log_text())
        self.assertNotIn(token, sc.get("/v1/status", token=self.pod_token).body)

    def test_every_refusal(self):
        sc = self.start()
        token = self.session(sc)
        cases = [
            ("PUT without a TTL", "PUT", "/latest/api/token", {}, 400),
            ("PUT with TTL 0", "PUT", "/latest/api/token", {TTL: "0"}, 400),
            ("PUT with TTL 21601", "PUT", "/latest/api/token", {TTL: "21601"}, 400),
            ("PUT with TTL abc", "PUT", "/latest/api/token", {TTL: "abc"}, 400),
            ("PUT through a proxy", "PUT", "/latest/api/token", {TTL: "60", "X-Forwarded-For": "10.0.0.1"}, 403),
            ("GET through a proxy", "GET", CREDS + "s3-app", {SESSION: token, "X-Forwarded-For": "10.0.0.1"}, 403),
            ("PUT relayed (Forwarded)", "PUT", "/latest/api/token", {TTL: "60", "Forwarded": "for=10.0.0.1"}, 403),
            ("PUT relayed (Via)", "PUT", "/latest/api/token", {TTL: "60", "Via": "1.1 proxy"}, 403),
            ("GET relayed (X-Real-IP)", "GET", CREDS + "s3-app", {SESSION: token, "X-Real-IP": "10.0.0.1"}, 403),
            # A page in a browser in the pod, its name rebound to 127.0.0.1 (DNS rebinding).
            ("PUT from a rebound page", "PUT", "/latest/api/token", {TTL: "60", "Host": "attacker.example"}, 403),
            ("GET from a rebound page", "GET", CREDS + "s3-app", {SESSION: token, "Host": "attacker.example:80"}, 403),
            ("GET of the token path", "GET", "/latest/api/token", {}, 405),
            ("IMDSv1: no session token", "GET", CREDS + "s3-app", {}, 401),
            ("a made-up session token", "GET", CREDS + "s3-app", {SESSION: "0" * 64}, 401),
            ("listing without a session", "GET", CREDS, {}, 401),
            ("another role", "GET", CREDS + "admin", {SESSION: token}, 404),
            ("POST with a session", "POST", CREDS + "s3-app", {SESSION: token}, 405),
        ]
        for what, method, path, headers, status in cases:
            with self.subTest(what):
                answer = sc.get(path, method=method, headers=headers)
                self.assertEqual(answer.status, status, f"{method} {path}: {answer.body}")
                self.assertNotIn("SecretAccessKey", answer.body)

    def test_the_link_local_address_and_loopback_names_are_answered(self):
        sc = self.start()
        for host in ("169.254.169.254", "169.254.169.254:80", "localhost", "[::1]:9911"):
            with self.subTest(host):
                answer = sc.get("/latest/api/token", method="PUT", headers={TTL: "60", "Host": host})
                self.assertEqual(answer.status, 200, answer.body)

    def test_off_loopback_listening_is_refused_with_imds_whatever_is_allowed(self):
        env = self.env()
        env.write_token()
        proc = cwtest.run_cwcreds(["serve", *env.args(CONTAINER), "--listen", "0.0.0.0:0", "--allow-non-loopback",
                                   "--imds"], timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--imds", proc.stderr)
        self.assertIn("loopback", proc.stderr)

    def test_a_flood_of_session_requests_pushes_out_no_one_elses_session(self):
        sc = self.start()
        mine = self.session(sc, ttl="21600")
        for _ in range(1100):  # more than any store of sessions would hold
            self.assertEqual(sc.get("/latest/api/token", method="PUT", headers={TTL: "21600"}).status, 200)
        self.assertEqual(sc.get(CREDS + "s3-app", headers={SESSION: mine}).status, 200)

    def test_session_tokens_expire_at_their_ttl(self):
        sc = self.start()
        token = self.session(sc, ttl="1")
        self.assertEqual(sc.get(CREDS, headers={SESSION: token}).status, 200)
        await_condition("the 1-second session expiring", lambda: sc.get(CREDS, headers={SESSION: token}).status == 401)

    def test_without_imds_the_paths_do_not_exist(self):
        env = self.env()
        env.write_token()
        sc = env.sidecar(env.args(CONTAINER))
        self.assertEqual(sc.get("/latest/api/token", method="PUT", headers={TTL: "60"}).status, 404)

    def test_the_imds_only_listener_serves_instance_metadata_and_nothing_else(self):
        sc = self.start(extra=["--imds-listen", "127.0.0.1:0"])
        line = sc.wait_for_log(r"imds_at=127\.0\.0\.1:(\d+)")
        port = int(re.search(r"imds_at=127\.0\.0\.1:(\d+)", line).group(1))

        def request(method, path, headers):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request(method, path, headers=headers)
                answer = conn.getresponse()
                return answer.status, answer.read().decode()
            finally:
                conn.close()

        status, token = request("PUT", "/latest/api/token", {TTL: "60"})
        self.assertEqual(status, 200)
        # A session from one listener works on the other: one store per process.
        self.assertEqual(sc.get(CREDS, headers={SESSION: token}).body, "s3-app")
        self.assertEqual(request("GET", CREDS, {SESSION: token})[0], 200)
        self.assertEqual(request("GET", "/v1/credentials", {"Authorization": self.pod_token})[0], 404)
        self.assertEqual(request("GET", "/metrics", {})[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
