"""The demo on a machine without moto (Debian 12 packages none): the S3
stand-in it uses there refuses what S3 refuses, and the demo completes with
Debian's own AWS CLI v2 through the real sidecar.

* a key the stand-in minted puts, heads and gets an object, bytes compared;
* a made-up key, the right key with a wrong secret, and an expired key are
  each refused with S3's error code, so the demo's upload proves the key
  cwcreds served is the one that works;
* `scripts/demo.py` with moto_server off PATH and /usr/bin/aws (Debian's
  awscli) exits 0 and reads back what it uploaded.
"""

import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402
from e2e import cwtest  # noqa: E402
from s3_standin import S3StandIn  # noqa: E402

DEBIAN_AWS = Path("/usr/bin/aws")


class StandIn(unittest.TestCase):
    def setUp(self):
        self.s3 = S3StandIn().__enter__()
        self.addCleanup(self.s3.__exit__, None, None, None)

    def client(self, key):
        return e2e.boto3_client("s3", self.s3.url, key)

    def refused_with(self, key, code):
        with self.assertRaises(e2e.botocore.exceptions.ClientError) as caught:
            self.client(key).put_object(Bucket="b", Key="k", Body=b"x")
        self.assertEqual(e2e.error_code(caught.exception), code)

    def test_a_minted_key_writes_and_reads_back(self):
        key = self.s3.mint(60)
        s3 = self.client(key)
        s3.create_bucket(Bucket="b")
        data = os.urandom(70_000)
        s3.put_object(Bucket="b", Key="dir/with space+plus", Body=data)
        self.assertEqual(s3.head_object(Bucket="b", Key="dir/with space+plus")["ContentLength"], len(data))
        self.assertEqual(s3.get_object(Bucket="b", Key="dir/with space+plus")["Body"].read(), data)

    def test_a_made_up_key_a_wrong_secret_and_an_expired_key_are_refused(self):
        self.s3.create_bucket("b")
        key_id, _ = self.s3.mint(60)
        self.refused_with(("CWAKMADEUP0000000000", "x" * 40), "InvalidAccessKeyId")
        self.refused_with((key_id, "not-the-secret"), "SignatureDoesNotMatch")
        self.refused_with(self.s3.mint(-2), "ExpiredToken")
        self.assertEqual(self.s3.buckets["b"], {}, "a refused request stored something")


class DemoWithoutMoto(unittest.TestCase):
    def test_the_demo_completes_with_debians_aws_cli_and_no_moto(self):
        if not DEBIAN_AWS.exists():
            self.fail("Debian's awscli is missing: scripts/install-deps.sh installs it")
        # The interpreter by its own path and a PATH without it: no moto_server
        # to find, and `aws` is Debian's.
        env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
               "CWCREDS_BIN": str(cwtest.cwcreds_bin())}
        demo = cwtest.repo_root() / "scripts" / "demo.py"
        result = subprocess.run([sys.executable, str(demo)], env=env, capture_output=True, text=True, timeout=180)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("moto is not installed", result.stdout)
        self.assertIn("hello from a pod without static keys", result.stdout)
        self.assertIn("the S3 stand-in accepted the upload signed with", result.stdout)


if __name__ == "__main__":
    unittest.main()
