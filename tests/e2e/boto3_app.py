"""A boto3 app as it would run in a pod: the default credential chain, nothing configured in code.

Credentials, region and endpoint come from the environment only
(AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
AWS_REGION, AWS_ENDPOINT_URL). Retries are off, so every failure counts.

    boto3_app.py soak BUCKET SECONDS [PAUSE]     one long-lived client: put, get, compare, pause, …
                                                 until SECONDS are up (or 100000 operations)
    boto3_app.py calls BUCKET N                  N put_object calls

Prints one JSON summary line on stdout: operations, errors, and which access
keys signed the requests (read from each request's SigV4 Authorization header).
"""

import json
import os
import re
import sys
import time

import boto3
import botocore.config

_CREDENTIAL_RE = re.compile(r"Credential=([A-Z0-9]+)/")


class KeyLog:
    """Which access key signed each request, from the Authorization header as sent."""

    def __init__(self):
        self.keys = {}  # key -> [first use, last use, requests] (monotonic seconds from start)
        self.started = time.monotonic()

    def before_send(self, request, **_):
        header = request.headers.get("Authorization", b"")
        if isinstance(header, bytes):
            header = header.decode("ascii", "replace")
        match = _CREDENTIAL_RE.search(header)
        key = match.group(1) if match else "(unsigned)"
        now = round(time.monotonic() - self.started, 3)
        entry = self.keys.setdefault(key, [now, now, 0])
        entry[1] = now
        entry[2] += 1


def main() -> int:
    mode, bucket = sys.argv[1], sys.argv[2]
    log = KeyLog()
    client = boto3.client("s3", config=botocore.config.Config(
        retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=20))
    client.meta.events.register("before-send.s3", log.before_send)
    ops = 0
    errors = []
    started = time.monotonic()

    def attempt(what, fn):
        nonlocal ops
        ops += 1
        try:
            return fn()
        except Exception as error:  # noqa: BLE001 - every failure is reported
            errors.append({"at": round(time.monotonic() - started, 3), "op": what,
                           "error": f"{type(error).__name__}: {error}"[:300]})
            return None

    if mode == "soak":
        seconds = float(sys.argv[3])
        pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
        max_ops = 100_000
        deadline = started + seconds
        i = 0
        while time.monotonic() < deadline and ops < max_ops:
            key = f"soak/obj-{i % 8}"
            body = os.urandom(512) + str(i).encode()
            attempt("put", lambda: client.put_object(Bucket=bucket, Key=key, Body=body))
            got = attempt("get", lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read())
            if got is not None and got != body:
                errors.append({"at": round(time.monotonic() - started, 3), "op": "get",
                               "error": f"{key}: read back {len(got)} bytes that differ from what was put"})
            i += 1
            if pause > 0:
                time.sleep(pause)  # a steady rate, not a wait for a condition
    elif mode == "calls":
        for i in range(int(sys.argv[3])):
            attempt("put", lambda: client.put_object(Bucket=bucket, Key=f"calls/obj-{i}", Body=b"x"))
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2

    print(json.dumps({"ops": ops, "errors": errors, "seconds": round(time.monotonic() - started, 3),
                      "keys": log.keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
