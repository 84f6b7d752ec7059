"""The one-shot subcommands: `cwcreds exchange` prints container-credentials
JSON, `cwcreds credential-process` prints what `~/.aws/config`'s
credential_process expects; both in either exchange mode, and both fail loudly
(non-zero, a message on stderr, nothing on stdout). `cwcreds inject` stops at
input no manifest could need instead of reading it all."""

import json
import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

import itest  # noqa: E402
from itest import CONTAINER, EXPIRATION_RE, OIDC, rec, to_epoch  # noqa: E402

MODES = (CONTAINER, OIDC)


def upstream_args(env, mode, ca_file=None):
    ca_file = ca_file or env.pki.ca_file
    if mode == OIDC:
        args = ["--exchange", OIDC, "--org-id", env.org_id, "--endpoint", env.emu.url_oidc(),
                "--duration", "20s"]
    else:
        args = ["--endpoint", env.emu.url_container()]
    return args + ["--token-file", env.tokdir.path, "--ca-file", ca_file]


class Exchange(itest.TestCase):
    def run_ok(self, args):
        proc = cwtest.run_cwcreds(args)
        self.assertEqual(proc.returncode, 0, "stderr: %s" % proc.stderr)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            self.fail("stdout is not JSON: %r" % proc.stdout)

    def assertSameExpiry(self, served, record):
        # Never later than the upstream's instant; up to Date's second, the
        # round trip and the whole-second format earlier (docs/operations.md, "Clocks").
        upstream = to_epoch(rec(record, "expiration"))
        self.assertLessEqual(to_epoch(served), upstream + 1e-6)
        self.assertGreater(to_epoch(served), upstream - 2.5)

    def test_exchange_prints_container_credentials(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                env = self.env()
                env.write_token()
                data = self.run_ok(["exchange"] + upstream_args(env, mode))
                record = env.emu.successful_exchanges()[-1]
                self.assertEqual(rec(record, "mode"), mode)
                self.assertEqual(data["AccessKeyId"], rec(record, "access_key_id"))
                self.assertEqual(data["SecretAccessKey"], rec(record, "secret_access_key"))
                self.assertIsInstance(data["Token"], str)
                self.assertRegex(data["Expiration"], EXPIRATION_RE)
                self.assertSameExpiry(data["Expiration"], record)

    def test_credential_process_prints_version_1_json(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                env = self.env()
                env.write_token()
                data = self.run_ok(["credential-process"] + upstream_args(env, mode))
                record = env.emu.successful_exchanges()[-1]
                self.assertEqual(data["Version"], 1)
                self.assertIsInstance(data["Version"], int)
                self.assertEqual(data["AccessKeyId"], rec(record, "access_key_id"))
                self.assertEqual(data["SecretAccessKey"], rec(record, "secret_access_key"))
                # The emulator's Token is empty: no SessionToken at all.
                self.assertNotIn("SessionToken", data)
                self.assertSameExpiry(data["Expiration"], record)
                self.assertEqual(
                    set(data), {"Version", "AccessKeyId", "SecretAccessKey", "Expiration"})


class Failures(itest.TestCase):
    def assertFailsClearly(self, args, pattern, secrets=()):
        proc = cwtest.run_cwcreds(args)
        self.assertNotEqual(proc.returncode, 0, "stdout: %s" % proc.stdout)
        self.assertEqual(proc.stdout.strip(), "", "a failure printed something on stdout")
        self.assertRegex(proc.stderr, re.compile(pattern, re.I))
        for secret in secrets:
            self.assertNotIn(secret, proc.stderr, "the token leaked into stderr")

    def test_rejected_token_fails_with_a_message(self):
        for sub in ("exchange", "credential-process"):
            for mode in MODES:
                with self.subTest(sub=sub, mode=mode):
                    env = self.env()
                    token = env.write_token(aud="https://not-coreweave.example/iam")
                    self.assertFailsClearly(
                        [sub] + upstream_args(env, mode),
                        r"401|reject|unauthori[sz]ed|unauthenticated|denied|not accepted",
                        secrets=[token])

    def test_untrusted_upstream_certificate_fails_with_a_message(self):
        for sub in ("exchange", "credential-process"):
            with self.subTest(sub=sub):
                env = self.env()
                token = env.write_token()
                self.assertFailsClearly(
                    [sub] + upstream_args(env, CONTAINER, ca_file=env.pki.other_ca_file),
                    r"certificate|tls|ssl|verif",
                    secrets=[token])
                self.assertEqual(env.emu.successful_exchanges(), [])
                # And what to do about it: the CA bundle flag.
                proc = cwtest.run_cwcreds([sub] + upstream_args(env, CONTAINER, ca_file=env.pki.other_ca_file))
                self.assertIn("--ca-file", proc.stderr)

    def test_missing_token_file_names_the_reason_and_the_volume(self):
        env = self.env()
        args = upstream_args(env, CONTAINER)
        args[args.index("--token-file") + 1] = str(env.tmp / "no-such-token")
        self.assertFailsClearly(["exchange"] + args, r"No such file or directory")
        proc = cwtest.run_cwcreds(["exchange"] + args)
        self.assertIn("projected service-account token volume", proc.stderr)
        self.assertIn("--token-file", proc.stderr)


class FileErrors(itest.TestCase):
    def test_inject_names_the_os_reason(self):
        env = self.env()
        proc = cwtest.run_cwcreds(["inject", "--image", "registry.example.com/cwcreds:0.1.0",
                                   "--org-id", env.org_id, "-f", env.tmp / "nope.yaml"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("nope.yaml: No such file or directory", proc.stderr)

    def test_webhook_without_its_certificate_is_a_configuration_error_with_the_reason(self):
        env = self.env()
        missing = env.tmp / "no-tls.crt"
        proc = cwtest.run_cwcreds(["webhook", "--listen", "127.0.0.1:0", "--tls-cert-file", missing,
                                   "--tls-key-file", missing, "--org-id", env.org_id,
                                   "--image", "registry.example.com/cwcreds:0.1.0"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("no-tls.crt: No such file or directory", proc.stderr)
        self.assertIn("--tls-cert-file", proc.stderr)


class InjectInput(itest.TestCase):
    def test_input_larger_than_any_manifest_is_refused_with_the_bound(self):
        # A disk image or a log given to -f by mistake: 64 MiB and one byte.
        env = self.env()
        big = env.tmp / "not-a-manifest.img"
        with open(big, "wb") as out:
            out.truncate((64 << 20) + 1)
        proc = cwtest.run_cwcreds(["inject", "--image", "registry.example.com/cwcreds:0.1.0",
                                   "--org-id", env.org_id, "-f", big], timeout=60)
        self.assertEqual(proc.returncode, 2, "stderr: %s" % proc.stderr[-500:])
        self.assertEqual(proc.stdout, "")
        self.assertIn("input larger than 64 MiB", proc.stderr)


if __name__ == "__main__":
    unittest.main()
