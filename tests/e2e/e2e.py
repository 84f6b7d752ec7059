"""Shared pieces of the end-to-end tests: real AWS clients against moto through cwcreds.

Everything runs on 127.0.0.1 and is stopped by PID when a test ends:

* `Moto` runs `moto_server` with signature checking on (INITIAL_NO_AUTH_ACTION_COUNT):
  after a few bootstrap calls, every S3 request must be signed with an access key
  that exists in moto's IAM, so a made-up, wrong or deleted key fails.
* `KeyMinter` is the emulator's `key_minter`: each exchange creates a real moto IAM
  user and access key, and a reaper thread deletes the key once past its expiry,
  so an expired key really fails.
* `TokenRotator` writes a kubelet-style token volume and rotates it on its own.
* `CountingProxy` sits in front of the sidecar and counts `/v1/credentials` hits.
* `World` is one pod: the HTTPS CoreWeave emulator (minting moto keys), a rotating
  token volume and the real `cwcreds serve`, in one exchange mode.
* `pod_env` is the environment of an app container using the sidecar, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "support"))

import cwtest  # noqa: E402

# The admin key is created during moto's unauthenticated allowance: create_user,
# put_user_policy, create_access_key. Everything after needs a real signature.
_BOOTSTRAP_CALLS = 3
REGION = "us-east-1"
ORG_ID = "cw-test-org"
CONTAINER = cwtest.MODE_CONTAINER
OIDC = cwtest.MODE_OIDC

# Signed with "Credential=<access key id>/<date>/<region>/<service>/aws4_request".
_CREDENTIAL_RE = re.compile(r"Credential=([A-Z0-9]+)/")
_RUNNING_RE = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")

# This process's own boto3 clients (moto bootstrap and admin) must not pick up
# anything from the machine's ~/.aws or environment.
for _name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402

_ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
_ALLOW_S3 = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})


def mask(value: Optional[str]) -> str:
    """An access key id as logs show it: first and last four characters."""
    if not value:
        return "-"
    return value[:4] + "…" + value[-4:] if len(value) > 12 else "…"


def error_code(error: BaseException) -> Optional[str]:
    """The AWS error code of a botocore ClientError, else None."""
    if isinstance(error, botocore.exceptions.ClientError):
        return error.response.get("Error", {}).get("Code")
    return None


def boto3_client(service: str, url: str, key: tuple):
    """A boto3 client for a local endpoint, signing with `key` (id, secret), one attempt per call."""
    access_key_id, secret = key
    return boto3.session.Session().client(
        service, endpoint_url=url, region_name=REGION,
        aws_access_key_id=access_key_id, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30))


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH: the e2e tests need it "
                           f"(moto, boto3 and the AWS CLI come with the machine's Python; "
                           f"node and npm from scripts/install-deps.sh)")
    return path


# ---------------------------------------------------------------------------
# moto
# ---------------------------------------------------------------------------

class Moto:
    """`moto_server` on 127.0.0.1 with signature checking on, and an admin key in it."""

    def __init__(self):
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.url: Optional[str] = None
        self.admin_key: Optional[tuple] = None
        self._cond = threading.Condition()
        self._tail: list = []
        self._reader: Optional[threading.Thread] = None
        self._closed = False

    def start(self, timeout: float = 30) -> "Moto":
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": os.environ.get("HOME", "/root"),
               "INITIAL_NO_AUTH_ACTION_COUNT": str(_BOOTSTRAP_CALLS)}
        for name in ("PYENV_ROOT", "PYENV_VERSION", "LANG"):
            if name in os.environ:
                env[name] = os.environ[name]
        self.proc = subprocess.Popen(
            [require_tool("moto_server"), "-H", "127.0.0.1", "-p", "0"], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, name="moto-log", daemon=True)
        self._reader.start()
        try:
            deadline = time.monotonic() + timeout
            with self._cond:
                while self.port is None and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            if self.port is None:
                raise RuntimeError("moto_server did not start:\n" + self.log_tail())
            self.url = f"http://127.0.0.1:{self.port}"
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            with self._cond:
                self._tail = (self._tail + [line])[-50:]
                match = _RUNNING_RE.search(line)
                if match and self.port is None:
                    self.port = int(match.group(1))
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def log_tail(self) -> str:
        with self._cond:
            return "\n".join(self._tail)

    def client(self, service: str, key: Optional[tuple] = None):
        """A boto3 client for moto signing with `key` (id, secret); defaults to the admin key."""
        return boto3_client(service, self.url, key or self.admin_key)

    def _bootstrap(self) -> None:
        iam = self.client("iam", ("AKIABOOTSTRAPBOOTSTR", "unused-during-the-allowance"))
        iam.create_user(UserName="cwcreds-e2e-admin")
        iam.put_user_policy(UserName="cwcreds-e2e-admin", PolicyName="all", PolicyDocument=_ALLOW_ALL)
        key = iam.create_access_key(UserName="cwcreds-e2e-admin")["AccessKey"]
        self.admin_key = (key["AccessKeyId"], key["SecretAccessKey"])
        # From here on signatures are checked: prove it before any test relies on it.
        try:
            self.client("s3", ("AKIAE2EMADEUPKEY0000", "x" * 40)).list_buckets()
        except botocore.exceptions.ClientError as error:
            if error_code(error) != "InvalidAccessKeyId":
                raise
        else:
            raise AssertionError("moto accepted a made-up access key: signature checking is off")
        self.client("s3").list_buckets()  # and the admin key works

    def key_minter(self, name: str) -> "KeyMinter":
        """The emulator's `key_minter`: real moto IAM keys (S3StandIn has the same)."""
        return KeyMinter(self, name)

    def create_bucket(self, name: str) -> None:
        self.client("s3").create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.proc is not None:
            cwtest.stop_process(self.proc)
            if self._reader is not None:
                self._reader.join(timeout=5)
            self.proc.stdout.close()

    def __enter__(self) -> "Moto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class KeyMinter:
    """The emulator's `key_minter`: a real moto IAM user and access key per exchange.

    Each key is deleted by a reaper thread once past the expiry the emulator
    announces for it (plus a second, since that expiry is truncated to whole
    seconds and computed a moment after minting), so an expired key fails.
    """

    def __init__(self, moto: Moto, name: str):
        self._iam = moto.client("iam")
        self._name = name
        self._lock = threading.Condition()
        self._seq = 0
        self._due: list = []          # [(due epoch, user, access key id)] sorted
        self.minted: dict = {}        # access key id -> (user, due)
        self.deleted: dict = {}       # access key id -> epoch when deleted
        self.errors: list = []
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap, name=f"key-reaper-{name}", daemon=True)
        self._reaper.start()

    def __call__(self, sub: str, lifetime: float) -> tuple:
        with self._lock:
            self._seq += 1
            user = f"cw-{self._name}-{self._seq}"
        self._iam.create_user(UserName=user, Tags=[{"Key": "sub", "Value": sub[:256]}])
        self._iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=_ALLOW_S3)
        key = self._iam.create_access_key(UserName=user)["AccessKey"]
        due = time.time() + float(lifetime) + 1
        with self._lock:
            self.minted[key["AccessKeyId"]] = (user, due)
            self._due.append((due, user, key["AccessKeyId"]))
            self._due.sort()
            self._lock.notify_all()
        return key["AccessKeyId"], key["SecretAccessKey"]

    def _reap(self) -> None:
        with self._lock:
            while not self._stopping:
                if not self._due:
                    self._lock.wait(5)
                    continue
                wait = self._due[0][0] - time.time()
                if wait > 0:
                    self._lock.wait(min(wait, 5))
                    continue
                _, user, access_key_id = self._due.pop(0)
                self._lock.release()
                try:
                    self._iam.delete_access_key(UserName=user, AccessKeyId=access_key_id)
                    deleted_at = time.time()
                except Exception as error:  # noqa: BLE001 - recorded, asserted on by tests
                    deleted_at = None
                    self.errors.append(f"delete {mask(access_key_id)}: {error}")
                finally:
                    self._lock.acquire()
                if deleted_at is not None:
                    self.deleted[access_key_id] = deleted_at
                self._lock.notify_all()

    def wait_deleted(self, access_key_id: str, timeout: float) -> bool:
        """Block until the reaper has deleted this key (bounded)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while access_key_id not in self.deleted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 1))
            return True

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._reaper.join(timeout=10)


# ---------------------------------------------------------------------------
# Token volume that rotates on its own
# ---------------------------------------------------------------------------

class TokenRotator:
    """A kubelet-style projected token volume, rotated every `period` seconds by a thread.

    Tokens live `token_lifetime` seconds, so a sidecar that kept using an old
    token would see it rejected before long.
    """

    def __init__(self, directory: Path, issuer: cwtest.Issuer, period: Optional[float],
                 token_lifetime: float = 3600, sub: str = "system:serviceaccount:default:e2e-app"):
        self.volume = cwtest.KubeletTokenDir(directory)
        self.issuer = issuer
        self.period = period
        self.token_lifetime = token_lifetime
        self.sub = sub
        self.rotations: list = []  # epoch seconds of each rotation (not the first write)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.volume.write(self._mint())

    @property
    def path(self) -> Path:
        return self.volume.path

    def _mint(self) -> str:
        return self.issuer.mint(sub=self.sub, lifetime=self.token_lifetime)

    def start(self) -> "TokenRotator":
        if self.period:
            self._thread = threading.Thread(target=self._run, name="token-rotator", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.volume.write(self._mint())
            self.rotations.append(time.time())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------------------
# A counting proxy in front of the sidecar
# ---------------------------------------------------------------------------

class CountingProxy(ThreadingHTTPServer):
    """Forwards every GET to the sidecar and counts the `/v1/credentials` answers by status."""

    daemon_threads = True

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.hits: dict = {}  # status -> count, /v1/credentials only
        self._thread: Optional[threading.Thread] = None
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/credentials"

    @property
    def credential_hits(self) -> int:
        with self.lock:
            return sum(self.hits.values())

    def start(self) -> "CountingProxy":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="counting-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection, like the SDKs' credential fetches

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "accept", "user-agent")}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=5)
        try:
            conn.request("GET", self.path, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            status = answer.status
            content_type = answer.getheader("Content-Type", "application/json")
        except OSError:
            status, body, content_type = 502, b'{"Code":"ProxyError"}', "application/json"
        finally:
            conn.close()
        if self.path.split("?")[0] == "/v1/credentials":
            with self.server.lock:
                self.server.hits[status] = self.server.hits.get(status, 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# ---------------------------------------------------------------------------
# One pod: emulator + token volume + sidecar
# ---------------------------------------------------------------------------

class World:
    """The CoreWeave emulator minting moto keys, a rotating token volume and `cwcreds serve`.

    `lifetime` is the emulator's key lifetime in container-credentials mode and
    the `--duration` in oidc mode (where the emulator honours durationSeconds).
    """

    def __init__(self, moto, directory: Path, mode: str, lifetime: float,
                 rotate_every: Optional[float] = None, token_lifetime: float = 3600,
                 sub: str = "system:serviceaccount:default:e2e-app"):
        self.mode = mode
        self.lifetime = lifetime
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = cwtest.Pki(self.dir / "pki")
        self.issuer = cwtest.Issuer()
        self.minter = moto.key_minter(f"{'cc' if mode == CONTAINER else 'oidc'}-{self.dir.name}")
        self.emulator = cwtest.Emulator(self.pki, self.issuer, lifetime=lifetime, org_id=ORG_ID)
        self.emulator.key_minter = self.minter
        self.tokens = TokenRotator(self.dir / "tokens", self.issuer, rotate_every, token_lifetime, sub)
        self.sidecar: Optional[cwtest.Sidecar] = None

    def upstream_args(self) -> list:
        """The upstream flags, shared by `serve`, `exchange` and `credential-process`."""
        args = ["--token-file", str(self.tokens.path), "--ca-file", str(self.pki.ca_file)]
        if self.mode == CONTAINER:
            return args + ["--endpoint", self.emulator.url_container()]
        return args + ["--exchange", OIDC, "--org-id", ORG_ID, "--endpoint", self.emulator.url_oidc(),
                       "--duration", f"{int(self.lifetime)}s"]

    def start(self) -> "World":
        self.emulator.start()
        self.sidecar = cwtest.Sidecar(self.upstream_args()).start(wait_ready=True, timeout=15)
        self.tokens.start()
        return self

    def stop(self) -> Optional[int]:
        self.tokens.stop()
        code = self.sidecar.stop() if self.sidecar is not None else None
        self.emulator.stop()
        self.minter.close()
        return code

    @property
    def credentials_url(self) -> str:
        return f"{self.sidecar.base_url}/v1/credentials"

    def served_keys(self) -> set:
        return {r.access_key_id for r in self.emulator.successful_exchanges()}


def pod_env(home: Path, credentials_url: str, token_file: Path, endpoint: str, **extra) -> dict:
    """The environment of an app container next to the sidecar, and nothing else.

    HOME is an empty directory so no ~/.aws leaks in. AWS_EC2_METADATA_DISABLED
    keeps an SDK whose credential fetch failed from reaching off loopback for
    instance metadata; it provides no credentials.
    """
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in ("PYENV_ROOT", "PYENV_VERSION"):  # so the machine's python tools resolve
        if name in os.environ:
            env[name] = os.environ[name]
    env.update({k: str(v) for k, v in extra.items()})
    return env


def seconds_until(rfc3339: str) -> float:
    """Seconds from now until an `Expiration` like 2026-03-14T21:44:43Z."""
    instant = dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return instant.timestamp() - time.time()


def access_keys_in(text: str) -> set:
    """Access key ids found in SigV4 Authorization headers within `text`."""
    return set(_CREDENTIAL_RE.findall(text))


def run(cmd, env: dict, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """A client command with a bounded run time; raises with its output when it fails."""
    result = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(str(c) for c in cmd[:4])} … exited {result.returncode}\n"
                             f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}")
    return result
