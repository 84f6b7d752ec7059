"""`cwcreds inspect --s3`: one signed request with the keys the sidecar serves,
and a verdict naming why S3 refused it.

The keys come from the real `cwcreds serve` (exchanging a kubelet-style token
at the HTTPS emulator, whose key minter hands out the key each case needs);
inspect fetches them the way an SDK in the app's container would
(AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
S3 is `moto_server` with signature checking on, so the keys are really
checked:

* moto evaluates only the IAM policies of the key's user, not bucket
  policies (put_bucket_policy is stored, never enforced), so "denied by
  policy" is a user policy with an explicit Deny on the bucket. S3 answers
  a bucket-policy denial with the same 403 AccessDenied, which is all
  inspect sees.
* moto does not check the request time at all, so the skewed clock runs
  against the S3 stand-in of the demo (tests/e2e/s3_standin.py), which
  refuses a signature more than 15 minutes off as S3 does. The skew itself is
  real: inspect runs under libfaketime 30 minutes behind, so libcurl signs
  with that time, as on a node whose clock drifted.
"""

import json
import os
import sys
import unittest
from pathlib import Path

import itest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import e2e  # noqa: E402
from s3_standin import S3StandIn  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
BUCKET = "inspect-bucket"
OBJECT = "reports/2026/a b.txt"


def deny_bucket_policy(bucket):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})


class InspectS3(itest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moto = e2e.Moto().start()
        cls.moto.create_bucket(BUCKET)
        cls.moto.client("s3").put_object(Bucket=BUCKET, Key=OBJECT, Body=b"hello")
        cls.iam = cls.moto.client("iam")

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def user_key(self, name, deny_bucket=False):
        """A moto IAM user allowed all of S3 (but this bucket, if asked) and its key."""
        self.iam.create_user(UserName=name)
        self.iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=e2e._ALLOW_S3)
        if deny_bucket:
            self.iam.put_user_policy(UserName=name, PolicyName="deny", PolicyDocument=deny_bucket_policy(BUCKET))
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def serving(self, key):
        """`cwcreds serve` whose exchanges yield `key`; returns (env, sidecar, token path)."""
        env = self.env()
        env.emu.key_minter = lambda sub, lifetime: key
        env.write_token()
        sc = env.sidecar(env.args())
        return env, sc, env.tokdir.path

    def inspect(self, sc, token_file, target, extra=(), endpoint=None, env=None):
        """`cwcreds inspect --s3` as run in the app's container: the SDK variables only."""
        environment = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{sc.base_url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
            "AWS_ENDPOINT_URL_S3": endpoint or f"http://localhost:{self.moto.port}",
            "AWS_REGION": e2e.REGION,
            **(env or {}),
        }
        return itest.cwtest.run_cwcreds(["inspect", "--s3", target, *extra], env=environment, timeout=30)

    def assertVerdict(self, result, code, cause, *phrases, secrets=()):
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, code, output)
        self.assertIn(f"verdict: {cause}", result.stdout)
        for phrase in phrases:
            self.assertIn(phrase, result.stdout)
        for secret in secrets:
            self.assertNotIn(secret, output)

    def test_allowed_keys_list_the_bucket_and_read_an_object(self):
        key = self.user_key("allowed")
        _, sc, token_file = self.serving(key)
        result = self.inspect(sc, token_file, f"s3://{BUCKET}")
        # Virtual-hosted, as CoreWeave requires: the bucket in the host name.
        self.assertVerdict(result, 0, "OK", f"GET http://{BUCKET}.localhost:{self.moto.port}/?max-keys=0",
                           f"may list s3://{BUCKET}", key[0][:4] + "…" + key[0][-4:], secrets=key)
        result = self.inspect(sc, token_file, f"s3://{BUCKET}/{OBJECT}")
        self.assertVerdict(result, 0, "OK", "reports/2026/a%20b.txt", f"may read s3://{BUCKET}/{OBJECT}",
                           secrets=key)

    def test_a_policy_denial_says_the_keys_are_valid(self):
        key = self.user_key("denied", deny_bucket=True)
        env, sc, token_file = self.serving(key)
        result = self.inspect(sc, token_file, f"s3://{BUCKET}/{OBJECT}")
        self.assertVerdict(result, 1, "policy", "AccessDenied",
                           "denied by a bucket or organization policy: the keys are valid",
                           f"s3:GetObject on arn:aws:s3:::{BUCKET}/{OBJECT}",
                           # the principal to grant, from the pod's token
                           f"to role/{env.issuer.issuer}:system:serviceaccount:default:app", secrets=key)

    def test_a_wrong_secret_is_a_signature_problem_and_an_unknown_key_id_a_key_problem(self):
        key_id, secret = self.user_key("wrong-secret")
        _, sc, token_file = self.serving((key_id, secret[::-1]))
        self.assertVerdict(self.inspect(sc, token_file, f"s3://{BUCKET}"), 1, "signature", "SignatureDoesNotMatch",
                           "is known but the signature is not", secrets=(key_id, secret, secret[::-1]))

        unknown = ("AKIAINSPECTUNKNOWN00", secret)
        _, sc, token_file = self.serving(unknown)
        self.assertVerdict(self.inspect(sc, token_file, f"s3://{BUCKET}"), 1, "key", "InvalidAccessKeyId",
                           "AKIA…WN00 is not known to", secrets=unknown)

    def test_a_clock_30_minutes_behind_is_named_with_both_times(self):
        if not os.path.exists(LIBFAKETIME):
            self.fail("libfaketime is missing: scripts/install-deps.sh installs it")
        with S3StandIn() as stand_in:
            stand_in.create_bucket(BUCKET)
            key = stand_in.mint(900)
            _, sc, token_file = self.serving(key)
            faked = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "-30m", "DONT_FAKE_MONOTONIC": "1",
                     # As in test_clocks.py: under ASan the preload comes first;
                     # under TSan, races inside libfaketime are not cwcreds'.
                     "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
                     "TSAN_OPTIONS": os.environ.get("TSAN_OPTIONS", "") + ":suppressions="
                     + str(Path(__file__).resolve().parent / "libfaketime.tsan-suppressions")}
            # The stand-in serves path-style addressing only.
            result = self.inspect(sc, token_file, f"s3://{BUCKET}", extra=("--s3-addressing", "path"),
                                  endpoint=stand_in.url, env=faked)
            self.assertVerdict(result, 1, "clock", "RequestTimeTooSkewed", "this machine's clock reads",
                               "the endpoint's", "behind", "fix the node's time", secrets=key)
            self.assertEqual(stand_in.refused, [(403, "RequestTimeTooSkewed")])

    def test_a_missing_bucket_and_an_unreachable_endpoint(self):
        key = self.user_key("missing")
        _, sc, token_file = self.serving(key)
        self.assertVerdict(self.inspect(sc, token_file, "s3://no-such-bucket"), 1, "not-found",
                           "NoSuchBucket", "there is no bucket no-such-bucket")
        closed = itest.cwtest.free_loopback_port()
        result = self.inspect(sc, token_file, f"s3://{BUCKET}", endpoint=f"http://127.0.0.1:{closed}")
        self.assertVerdict(result, 1, "endpoint", f"no answer from http://127.0.0.1:{closed}", "--s3-endpoint",
                           "--ca-file", secrets=key)

    def test_json_and_flags_instead_of_the_sdk_variables(self):
        key = self.user_key("flags")
        _, sc, token_file = self.serving(key)
        result = itest.cwtest.run_cwcreds(
            ["inspect", "--s3", f"s3://{BUCKET}", "--sidecar", sc.base_url, "--token-file", token_file,
             "--s3-endpoint", self.moto.url, "--s3-addressing", "path", "--s3-region", e2e.REGION, "--json"],
            timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        report = json.loads(result.stdout)
        self.assertEqual(report["cause"], "ok")
        self.assertTrue(report["ok"])
        self.assertEqual(report["s3"]["http_status"], 200)
        self.assertEqual(report["s3"]["url"], f"{self.moto.url}/{BUCKET}?max-keys=0")
        self.assertNotIn(key[0], result.stdout)
        self.assertNotIn(key[1], result.stdout)

    def test_a_sidecar_that_refuses_the_token_is_named_before_any_s3_request(self):
        key = self.user_key("refused")
        env, sc, _ = self.serving(key)
        stranger = env.tmp / "other-token"
        stranger.write_text(env.mint())
        result = self.inspect(sc, stranger, f"s3://{BUCKET}")
        self.assertVerdict(result, 1, "sidecar", "HTTP 403", "same token volume", "not sent: no keys")


if __name__ == "__main__":
    itest.main()
