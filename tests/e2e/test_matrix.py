"""The compatibility matrix: clients that cannot read a rotating token file, through cwcreds.

One pod: the CoreWeave emulator minting real moto keys (15-minute keys), a
kubelet-style token volume, a Secret-style static caller token, and
`cwcreds serve --accept-token-file SECRET --imds` (plus `--imds-listen
127.0.0.1:80` for Ruby when this process may bind port 80). Every client
runs as its own process with only a pod's environment, writes an object to
moto (signature checking on), and reads it back; between the two steps, or
before a client that does both in one process, the pod token is rotated and
the sidecar has seen it. What each client presented is checked on the
sidecar's `cwcreds_credentials_served_total{caller=...}`.

| client | mechanism |
|---|---|
| JS SDK v2 (npm aws-sdk) | IMDS (the token file is read, but v2 drops answers without a Token) |
| AWS CLI v2 (Debian awscli, /usr/bin/aws) | static token |
| rclone (Debian) | static token; IMDS |
| restic (Debian) `init` | static token |
| aws-sdk-go-v2 1.17 (Debian, GOPATH build) | static token; IMDS |
| aws-sdk-go 1.44 (v1, s5cmd's SDK; Debian, GOPATH build) | static token; IMDS (the token file is not read) |
| Ruby aws-sdk-s3 (Debian) | IMDS on 127.0.0.1:80 |
| boto3 | IMDS |

rclone and restic are driven with operations that do not list (`rclone
copyto` both ways, `restic init`); their listing is not exercised here. The
aws-sdk-go v1 program lists with ListObjectsV2, which moto accepts.
"""

import errno
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402
from e2e import cwtest  # noqa: E402

AWS_CLI_V2 = "/usr/bin/aws"  # Debian's awscli; the machine's `aws` on PATH may be v1 from pip
FIGURES: list = []

BOTO3_ROUNDTRIP = """
import json, os, sys, boto3
bucket, key = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
body = os.urandom(64 * 1024)
s3.put_object(Bucket=bucket, Key=key, Body=body)
got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
creds = boto3.session.Session().get_credentials()
print(json.dumps({"ok": got == body, "bytes": len(got), "accessKeyId": creds.access_key,
                  "method": creds.method}))
"""


def can_bind_port_80() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", 80))
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EADDRINUSE):
                return False
            raise
    return True


def setUpModule():
    global GO_S3, GO_S3_V1
    for tool in ("node", "npm", "rclone", "restic", "ruby", "go", AWS_CLI_V2):
        e2e.require_tool(tool)
    # npm ci only when the lockfile changed since the last install (it reinstalls everything).
    installed = e2e.HERE / "node_modules" / ".package-lock.json"
    lockfile = e2e.HERE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=e2e.HERE,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed ({result.returncode}):\n{result.stderr[-3000:]}")
    # The Go clients (aws-sdk-go-v2 and v1), built offline in GOPATH mode over
    # Debian's packaged sources, in one `go build` so both SDKs compile together.
    build_dir = Path(cwtest.cwcreds_bin()).parent / "e2e-go"
    build_dir.mkdir(exist_ok=True)
    GO_S3, GO_S3_V1 = build_dir / "go_s3", build_dir / "go_s3_v1"
    # Go's build cache outlives the build directory: a cold build of both SDKs
    # takes about 50 s on 2 cores (v2 about 25 s of it), a warm one about a second.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cwcreds-e2e-go"
    started = time.monotonic()
    e2e.run(["go", "build", "-o", f"{build_dir}/", "./go_s3", "./go_s3_v1"],
            {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(build_dir), "GO111MODULE": "off",
             "GOPATH": "/usr/share/gocode", "GOCACHE": str(cache), "GOFLAGS": "",
             "CGO_ENABLED": "0"},
            timeout=300, cwd=e2e.HERE)
    FIGURES.append(f"e2e matrix: go build of the aws-sdk-go-v2 and v1 clients took {time.monotonic() - started:.1f}s")


def tearDownModule():
    if FIGURES:
        print("\n" + "\n".join(FIGURES))


class MatrixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = cwtest.TempDir(prefix="cwcreds-e2e-matrix-")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.moto = e2e.Moto().start()
        cls.addClassCleanup(cls.moto.stop)
        # The Secret both sides read: the sidecar as a file, the app as an env variable.
        cls.static_token = secrets.token_hex(24)
        secret = cwtest.KubeletTokenDir(cls.tmp.path / "secret", filename="token")
        secret.write(cls.static_token)
        cls.world = e2e.World(cls.moto, cls.tmp.path / "pod", e2e.CONTAINER, lifetime=900)
        cls.addClassCleanup(cls.world.stop)
        cls.port_80 = can_bind_port_80()
        extra = ["--accept-token-file", str(secret.path), "--imds", "--region", e2e.REGION]
        if cls.port_80:
            extra += ["--imds-listen", "127.0.0.1:80"]
        cls.world.upstream_args = (lambda base=cls.world.upstream_args: lambda: base() + extra)()
        cls.world.start()

    def setUp(self):
        self.home = Path(self.tmp.path / f"home-{self.id().rsplit('.', 1)[-1]}")
        self.home.mkdir()
        self.bucket = re.sub(r"[^a-z0-9-]", "-", self.id().rsplit(".", 1)[-1].lower())[:60]
        self.moto.client("s3").create_bucket(Bucket=self.bucket)

    # -- the pod ------------------------------------------------------------

    def rotate(self):
        """A kubelet rotation of the pod token, waited for until the sidecar has read it."""
        mark = self.world.sidecar.mark()
        self.world.tokens.volume.write(self.world.tokens._mint())
        self.world.sidecar.wait_for_log(r"token rotated", start=mark, timeout=10)

    def served(self, caller: str) -> int:
        text = self.world.sidecar.get("/metrics").body
        match = re.search(r'^cwcreds_credentials_served_total\{caller="%s"\} (\S+)$' % caller, text, re.M)
        return int(float(match.group(1))) if match else 0

    def requests(self, path: str, code: int) -> int:
        text = self.world.sidecar.get("/metrics").body
        match = re.search(r'^cwcreds_http_requests_total\{path="%s",code="%d"\} (\S+)$' % (path, code), text, re.M)
        return int(float(match.group(1))) if match else 0

    def env(self, mechanism: str, **extra) -> dict:
        """A pod's environment for one mechanism: token file, static token or IMDS."""
        env = e2e.pod_env(self.home, self.world.credentials_url, self.world.tokens.path, self.moto.url, **extra)
        if mechanism == "static":
            del env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.static_token
        elif mechanism == "imds":
            for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                         "AWS_EC2_METADATA_DISABLED"):
                del env[name]
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = f"http://127.0.0.1:{self.world.sidecar.port}"
        return env

    def check_served(self, caller: str, before: int):
        self.assertGreater(self.served(caller), before, f"the sidecar served no {caller} caller")

    def roundtrip_json(self, caller: str, cmd, env, timeout=120):
        """A client doing put + get + compare in one process, after a rotation."""
        self.rotate()
        before = self.served(caller)
        started = time.monotonic()
        result = e2e.run(cmd, env, timeout=timeout, cwd=e2e.HERE)
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertTrue(answer["ok"], answer)
        self.assertEqual(answer["bytes"], 64 * 1024)
        self.assertIn(answer["accessKeyId"], self.world.served_keys())
        self.check_served(caller, before)
        FIGURES.append(f"e2e matrix: {self.id().rsplit('.', 1)[-1]} ok in {time.monotonic() - started:.1f}s")
        return answer

    # -- the clients ----------------------------------------------------------

    def test_js_sdk_v2_token_file_refused_by_the_sdk(self):
        # The JS SDK v2 reads the token file and fetches from the sidecar, then
        # drops any container-credentials answer without a non-empty Token
        # (credsFormatIsValid in lib/credentials/remote_credentials.js).
        # CoreWeave's keys have none, and an invented one would be sent to S3
        # and refused. So v2 apps use IMDS (next test). Should a release lift
        # this check, this test fails and docs/clients.md's table must change.
        self.rotate()
        before = self.served("pod-token")
        env = self.env("file")
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        result = subprocess.run(["node", e2e.HERE / "s3_client_v2.cjs", self.moto.url, self.bucket, "v2.bin"],
                                env=env, cwd=e2e.HERE, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=60)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("Missing credentials", result.stderr)
        self.check_served("pod-token", before)

    def test_js_sdk_v2_imds(self):
        env = self.env("imds")
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] += "/"  # written with a slash: the SDK then asks for //latest/…
        self.roundtrip_json("imds-session", ["node", e2e.HERE / "s3_client_v2.cjs", self.moto.url, self.bucket, "v2.bin"],
                            env)

    def test_aws_cli_v2_static_token(self):
        env = self.env("static")
        version = e2e.run([AWS_CLI_V2, "--version"], env, timeout=60).stdout
        self.assertTrue(version.startswith("aws-cli/2."), version)
        before = self.served("accepted-token")
        upload, download = self.home / "up.bin", self.home / "down.bin"
        upload.write_bytes(os.urandom(256 * 1024))
        # AWS CLI 2.9 predates AWS_ENDPOINT_URL.
        cli = [AWS_CLI_V2, "--debug", "--endpoint-url", self.moto.url, "s3", "cp"]
        logs = e2e.run([*cli, upload, f"s3://{self.bucket}/cli.bin"], env, 120).stderr
        self.rotate()
        logs += e2e.run([*cli, f"s3://{self.bucket}/cli.bin", download], env, 120).stderr
        self.assertEqual(download.read_bytes(), upload.read_bytes())
        signed_with = e2e.access_keys_in(logs)
        self.assertTrue(signed_with)
        self.assertLessEqual(signed_with, self.world.served_keys())
        self.check_served("accepted-token", before)
        FIGURES.append(f"e2e matrix: AWS CLI {version.split()[0]} static token ok")

    def rclone(self, mechanism: str, caller: str):
        env = self.env(mechanism, RCLONE_CONFIG_MOTO_TYPE="s3", RCLONE_CONFIG_MOTO_PROVIDER="Other",
                       RCLONE_CONFIG_MOTO_ENV_AUTH="true", RCLONE_CONFIG_MOTO_ENDPOINT=self.moto.url,
                       RCLONE_CONFIG_MOTO_REGION=e2e.REGION, RCLONE_CONFIG_MOTO_NO_CHECK_BUCKET="true",
                       RCLONE_CONFIG=str(self.home / "rclone.conf"))
        before = self.served(caller)
        upload, download = self.home / "up.bin", self.home / "down.bin"
        upload.write_bytes(os.urandom(300 * 1024))
        e2e.run(["rclone", "copyto", upload, f"moto:{self.bucket}/rclone.bin"], env, timeout=120)
        self.rotate()
        e2e.run(["rclone", "copyto", f"moto:{self.bucket}/rclone.bin", download], env, timeout=120)
        self.assertEqual(download.read_bytes(), upload.read_bytes())
        self.check_served(caller, before)

    def test_rclone_static_token(self):
        self.rclone("static", "accepted-token")

    def test_rclone_imds(self):
        self.rclone("imds", "imds-session")

    def test_restic_static_token(self):
        env = self.env("static", RESTIC_REPOSITORY=f"s3:{self.moto.url}/{self.bucket}/repo",
                       RESTIC_PASSWORD="e2e-only-password", RESTIC_CACHE_DIR=str(self.home / "cache"))
        self.rotate()
        before = self.served("accepted-token")
        e2e.run(["restic", "init"], env, timeout=120)
        # Read back what restic wrote, with moto's admin key: its (encrypted) config.
        config = self.moto.client("s3").get_object(Bucket=self.bucket, Key="repo/config")["Body"].read()
        self.assertGreater(len(config), 32)
        self.check_served("accepted-token", before)

    def test_go_sdk_v2_static_token(self):
        self.roundtrip_json("accepted-token", [GO_S3, self.moto.url, self.bucket, "go.bin"], self.env("static"))

    def test_go_sdk_v2_imds(self):
        self.roundtrip_json("imds-session", [GO_S3, self.moto.url, self.bucket, "go.bin"], self.env("imds"))

    # aws-sdk-go v1 as Debian ships it (1.44.133): s5cmd's SDK. It sends
    # AWS_CONTAINER_AUTHORIZATION_TOKEN only; the token file came in 1.47.11.
    def test_go_sdk_v1_static_token(self):
        self.assertTrue(self.roundtrip_json("accepted-token", [GO_S3_V1, self.moto.url, self.bucket, "go1.bin"],
                                            self.env("static"))["listed"])

    def test_go_sdk_v1_imds(self):
        self.assertTrue(self.roundtrip_json("imds-session", [GO_S3_V1, self.moto.url, self.bucket, "go1.bin"],
                                            self.env("imds"))["listed"])

    def test_go_sdk_v1_token_file_not_read(self):
        # With only the token file (a pod's default environment), 1.44 asks the
        # sidecar without Authorization and is refused with 401. Should Debian
        # ship 1.47.11 or later, this test fails and docs/clients.md must change.
        before = self.requests("/v1/credentials", 401)
        result = subprocess.run([GO_S3_V1, self.moto.url, self.bucket, "go1.bin"], env=self.env("file"),
                                cwd=e2e.HERE, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("NoCredentialProviders", result.stderr)
        self.assertGreater(self.requests("/v1/credentials", 401), before)

    def test_ruby_sdk_imds_port_80(self):
        if not self.port_80:
            self.skipTest("cannot bind 127.0.0.1:80 here (not root, or taken): Ruby aws-sdk-core always uses port 80")
        env = self.env("imds")
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:80"
        self.roundtrip_json("imds-session", ["ruby", e2e.HERE / "s3_client.rb", self.moto.url, self.bucket, "rb.bin"],
                            env)

    def test_boto3_imds(self):
        answer = self.roundtrip_json("imds-session", [sys.executable, "-c", BOTO3_ROUNDTRIP, self.bucket, "py.bin"],
                                     self.env("imds"))
        self.assertEqual(answer["method"], "iam-role")


if __name__ == "__main__":
    unittest.main(verbosity=2)
