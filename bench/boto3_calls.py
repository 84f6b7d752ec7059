#!/usr/bin/env python3
"""One boto3 app for bench/bench.py part b: N small put_object calls, each timed.

bench.py runs this in a fresh Python process per setup, with only the
environment a pod would have (credentials, region and endpoint from AWS_*
variables; nothing configured in code), so botocore's default credential chain
decides how credentials are fetched: static keys, the cwcreds sidecar, or
CoreWeave's endpoint directly. `--trust-bundle` is the one exception, for the
direct setup against the local emulator: botocore's container-credentials
fetcher ignores AWS_CA_BUNDLE and always verifies against certifi's bundle, so
this points that fetcher at a bundle holding certifi's CAs plus the emulator's
test CA (api.coreweave.com has a publicly trusted certificate and needs none).

    python3 bench/boto3_calls.py BUCKET N [--trust-bundle PEM] [--max-seconds S]

Prints one JSON line: the first call (it also fetches credentials and opens the
connection), then N timed calls (mean, p50, p90, p99 in ms), the mean time per
call spent in botocore's get_frozen_credentials (where a refresh happens; a
two-clock-read wrapper measures it), and any errors. The
loop is bounded by N, by --max-seconds and by 20 errors in a row.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time


def percentile(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bucket")
    parser.add_argument("calls", type=int)
    parser.add_argument("--trust-bundle", help="CA bundle for botocore's container-credentials fetcher")
    parser.add_argument("--max-seconds", type=float, default=300)
    args = parser.parse_args()

    if args.trust_bundle:
        import botocore.httpsession

        bundle = args.trust_bundle
        botocore.httpsession.where = lambda: bundle  # what get_cert_path() uses for verify=True

    import boto3
    import botocore.credentials

    # Time spent getting credentials for each signature (botocore's signer calls
    # get_frozen_credentials once per request): the overhead itself, free of S3 noise.
    credential_seconds = [0.0]

    def timed(method):
        def wrapper(self):
            started = time.perf_counter()
            try:
                return method(self)
            finally:
                credential_seconds[0] += time.perf_counter() - started
        return wrapper

    for cls in (botocore.credentials.Credentials, botocore.credentials.RefreshableCredentials):
        cls.get_frozen_credentials = timed(cls.__dict__["get_frozen_credentials"])

    client = boto3.client("s3")
    body = b"cwcreds bench: a few bytes"
    errors: list = []

    def call(key: str) -> float:
        started = time.perf_counter()
        try:
            client.put_object(Bucket=args.bucket, Key=key, Body=body)
        except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the run
            errors.append(f"{type(error).__name__}: {error}"[:300])
        return time.perf_counter() - started

    first = call("first")
    credential_seconds[0] = 0.0
    times: list = []
    consecutive_errors = 0
    deadline = time.monotonic() + args.max_seconds
    for i in range(args.calls):
        if time.monotonic() > deadline or consecutive_errors >= 20:
            break
        before = len(errors)
        times.append(call(f"obj-{i % 16}"))
        consecutive_errors = consecutive_errors + 1 if len(errors) > before else 0

    ordered = sorted(times)
    print(json.dumps({
        "calls": len(times),
        "first_ms": first * 1e3,
        "mean_ms": sum(times) / len(times) * 1e3 if times else float("nan"),
        "p50_ms": percentile(ordered, 0.50) * 1e3,
        "p90_ms": percentile(ordered, 0.90) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "credentials_ms": credential_seconds[0] / len(times) * 1e3 if times else float("nan"),
        "errors": len(errors),
        "first_errors": errors[:3],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
