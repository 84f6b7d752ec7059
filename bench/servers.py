"""The servers the benchmark compares the sidecar with or talks through: nginx and moto_server.

nginx (Debian's nginx-light, 1 worker, `daemon off`, its own config in a temp
dir) serves the sidecar's own JSON as a static file; moto_server stands in for
S3. Both listen on 127.0.0.1 and are stopped by PID. The CoreWeave emulator
and the sidecar come from tests/support/cwtest.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402
from procfs import child_pids  # noqa: E402

NGINX_CONF = """\
# nginx for the cwcreds bench: 1 worker, loopback only, the sidecar's JSON as a static file.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {dir}/www;
        location = /v1/credentials {{
            default_type application/json;
            add_header Cache-Control no-store;
        }}
    }}
}}
"""


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before listening")
        try:
            with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=1)) as conn:
                conn.connect()
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"not listening on 127.0.0.1:{port} within {timeout}s")


class Nginx:
    """nginx serving `body` at /v1/credentials on 127.0.0.1, 1 worker, own config in a temp dir."""

    def __init__(self, body: bytes, prefix: tuple = ()):
        self.body = body
        self.prefix = prefix  # e.g. ("taskset", "-c", "0"): it execs nginx, so the PID stays nginx's
        self.dir: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.worker_pid: Optional[int] = None

    def __enter__(self) -> "Nginx":
        binary = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if binary is None:
            raise RuntimeError("nginx not found (bench/run.sh installs nginx-light)")
        self.dir = Path(tempfile.mkdtemp(prefix="cwcreds-bench-nginx-"))
        try:
            # The worker drops to nobody when started as root: it must be able to read the file.
            self.dir.chmod(0o755)
            www = self.dir / "www" / "v1"
            www.mkdir(parents=True)
            (www / "credentials").write_bytes(self.body)
            for path in (self.dir / "www", www, www / "credentials"):
                path.chmod(0o755 if path.is_dir() else 0o644)
            (self.dir / "tmp").mkdir()
            self.port = cwtest.free_loopback_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
            log = open(self.dir / "stderr.log", "wb")
            with log:
                self.proc = subprocess.Popen([*self.prefix, binary, "-p", str(self.dir), "-c", str(conf),
                                              "-e", "stderr"],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                wait_for_port(self.port, self.proc, timeout=10)
            except RuntimeError as error:
                raise RuntimeError(f"nginx: {error}: {(self.dir / 'stderr.log').read_text()[-500:]}") from None
            workers = child_pids(self.proc.pid)
            self.worker_pid = workers[0] if len(workers) == 1 else None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            cwtest.stop_process(self.proc)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/credentials"


class Moto:
    """moto_server (python -m moto.server) on 127.0.0.1; no signature checks (moto's default)."""

    _RUNNING_RE = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")

    def __init__(self, work: Path):
        self.log_path = work / "moto.log"
        self.proc: Optional[subprocess.Popen] = None
        self.url: Optional[str] = None

    def __enter__(self) -> "Moto":
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(self.log_path.parent)}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while self.url is None:
                match = self._RUNNING_RE.search(self.log_path.read_text(errors="replace"))
                if match:
                    self.url = f"http://127.0.0.1:{match.group(1)}"
                elif self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start: " + self.log_path.read_text()[-500:])
                else:
                    time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            cwtest.stop_process(self.proc)
