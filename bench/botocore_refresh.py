#!/usr/bin/env python3
"""How often botocore re-fetches container credentials, by time left.

The README's "Why a sidecar" reports this: 50 boto3 `put_object` calls made 51 credential
fetches when the credentials had 14 or 9 minutes left, and 1 fetch with 17 or
60 minutes left. This reproduces that figure on this machine's boto3:

    python3 bench/botocore_refresh.py [--calls 50] [--minutes 9 14 17 60]

For each N, a loopback HTTP server plays the credentials endpoint and answers
every fetch with keys expiring N minutes after the fetch (what a sidecar that
always hands out keys with N minutes left would do), counting the fetches; a
moto S3 server on loopback takes the calls. A fresh boto3 session per N, with
only a pod's environment (AWS_CONTAINER_CREDENTIALS_FULL_URI, the token file,
region, endpoint), makes the calls. Prints one line per N: fetches, and
fetches per call. A figure, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import os
import sys
import tempfile
import threading
from pathlib import Path


class CredentialsEndpoint(http.server.ThreadingHTTPServer):
    """Answers GET with container credentials expiring `minutes` from now."""

    daemon_threads = True

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.fetches = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        server: CredentialsEndpoint = self.server  # type: ignore[assignment]
        with server.lock:
            server.fetches += 1
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=server.minutes)
        body = json.dumps({
            "AccessKeyId": "AKIAEXAMPLEBENCH0001",
            "SecretAccessKey": "bench-secret-key-not-a-real-one-000000000",
            "Token": "",
            "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def count_fetches(minutes: float, calls: int, s3_endpoint: str, token_file: Path) -> tuple[int, int, str]:
    import boto3
    import botocore

    server = CredentialsEndpoint(minutes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                del os.environ[name]
        os.environ.update({
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:%d/v1/credentials" % server.server_address[1],
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        })
        s3 = boto3.session.Session().client("s3")
        bucket = "bench-refresh-%d" % int(minutes * 60)
        s3.create_bucket(Bucket=bucket)
        before = server.fetches
        for i in range(calls):
            s3.put_object(Bucket=bucket, Key="k%d" % i, Body=b"x")
        # During the calls, and in all (client creation and create_bucket included).
        return (server.fetches - before, server.fetches,
                "boto3 %s, botocore %s" % (boto3.__version__, botocore.__version__))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.shutdown()
        server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--minutes", type=float, nargs="+", default=[9, 14, 17, 60])
    args = parser.parse_args()
    if not 1 <= args.calls <= 10_000:
        parser.error("--calls: 1 to 10000")

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        with tempfile.TemporaryDirectory() as tmp:
            token_file = Path(tmp) / "token"
            token_file.write_text("bench-token")
            versions = ""
            print("%d put_object calls per row; the endpoint answers every fetch with N minutes left" % args.calls)
            for minutes in args.minutes:
                fetches, total, versions = count_fetches(minutes, args.calls, "http://%s:%d" % (host, port),
                                                         token_file)
                print("  %5.1f minutes left: %4d credential fetches during the calls (%.2f per call), %d in all"
                      % (minutes, fetches, fetches / args.calls, total))
            print(versions)
    finally:
        moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
