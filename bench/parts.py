"""The benchmark's parts, each a function of the World and the plan returning its figures.

  a. wrk against nginx and the sidecar, cell by cell (and c's footprint under load);
  b. boto3 end to end, each setup in a fresh Python process;
  c. binary size and process start to /readyz 200;
  d. upstream exchanges per simulated hour at 0, 10 and 10,000 requests/s;
  e. confined to 1 CPU: nginx and the sidecar under taskset.

A part appends what went wrong to `problems` and raises only when it cannot
go on; bench.py runs them in turn and report.py renders what they return.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402
from procfs import Sampler, proc_status  # noqa: E402
from report import fmt  # noqa: E402
from servers import Moto, Nginx  # noqa: E402
from world import (  # noqa: E402
    BUCKET,
    CELLS,
    CLIENT_CPU,
    NETWORK_DELAY,
    ORG,
    PRODUCTION_LIFETIME,
    REGION,
    REPO,
    SERVER_CPU,
    Plan,
    World,
)
from wrk import PACED_LUA, run_wrk  # noqa: E402


def credentials_metric(sidecar: cwtest.Sidecar) -> Optional[int]:
    """cwcreds_http_requests_total for /v1/credentials with code 200, from /metrics."""
    try:
        text = sidecar.get("/metrics").body
    except OSError:
        return None
    total, seen = 0, False
    for line in text.splitlines():
        if line.startswith("cwcreds_http_requests_total{") and 'path="/v1/credentials"' in line \
                and 'code="200"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
            seen = True
    return total if seen else None


# ---------------------------------------------------------------------------
# a + c(load): wrk against nginx and the sidecar, cell by cell
# ---------------------------------------------------------------------------

def part_a(world: World, plan: Plan, problems: list) -> dict:
    out: dict = {"cells": []}
    with cwtest.Sidecar(world.sidecar_args(), bin=world.bin) as sidecar:
        sidecar.start(wait_ready=True)
        pid = sidecar.pid
        answer = sidecar.get("/v1/credentials", token=world.token)
        if answer.status != 200:
            raise RuntimeError(f"/v1/credentials answered {answer.status}: {answer.body[:200]}")
        time.sleep(1.0)  # settle after the first exchange
        idle = proc_status(pid)
        out["idle"] = idle
        url = f"{sidecar.base_url}/v1/credentials"
        auth = (f"Authorization: {world.token}",)
        with Nginx(answer.body.encode()) as nginx:
            for connections, keep_alive in CELLS:
                cell = {"connections": connections, "keep_alive": keep_alive}
                with Sampler(nginx.worker_pid) as sampled:
                    cell["nginx"] = run_wrk(nginx.url, connections, plan.wrk_seconds,
                                            keep_alive=keep_alive, headers=auth)
                cell["nginx"].update(cpu=sampled.cpu_seconds, rss=sampled.peak_rss)
                if sidecar.returncode is None:
                    with Sampler(pid) as sampled:
                        cell["cwcreds"] = run_wrk(url, connections, plan.wrk_seconds,
                                                  keep_alive=keep_alive, headers=auth)
                    cell["cwcreds"].update(cpu=sampled.cpu_seconds, rss=sampled.peak_rss,
                                           threads=sampled.peak_threads)
                else:
                    cell["cwcreds"] = {"failed": f"cwcreds had exited (code {sidecar.returncode})",
                                       "requests": None, "rps": None}
                for side in ("nginx", "cwcreds"):
                    if "failed" in cell[side]:
                        problems.append(f"a: {side} c{connections} "
                                        f"{'keep-alive' if keep_alive else 'close'}: {cell[side]['failed']}")
                out["cells"].append(cell)
                print(f"  a: c{connections:<3} {'keep-alive' if keep_alive else 'close     '}  nginx "
                      f"{fmt(cell['nginx'].get('rps'), '.0f')} req/s, cwcreds {fmt(cell['cwcreds'].get('rps'), '.0f')}"
                      f" req/s", flush=True)
        if sidecar.returncode is None:
            out["after"] = proc_status(pid)
        else:
            problems.append(f"a: cwcreds exited with code {sidecar.returncode} under load")
        out["upstream_exchanges"] = len(world.emulator.successful_exchanges())
    return out


# ---------------------------------------------------------------------------
# e: confined to 1 CPU
# ---------------------------------------------------------------------------

def confined_binary(work: Path, binary: Path, name: str) -> Path:
    """A script that execs `binary` under `taskset -c SERVER_CPU` (the PID stays the sidecar's)."""
    wrapper = work / f"confined-{name}.sh"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {SERVER_CPU} "{binary}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def part_e(world: World, plan: Plan, problems: list) -> dict:
    builds = [("cwcreds", world.bin)]
    if world.baseline_bin is not None:
        builds.append(("baseline", world.baseline_bin))
    auth = (f"Authorization: {world.token}",)
    client = ("taskset", "-c", CLIENT_CPU)
    out: dict = {"cells": [], "loops": {}, "builds": [name for name, _ in builds]}
    with contextlib.ExitStack() as stack:
        urls = {}
        body = None
        for name, binary in builds:
            sidecar = stack.enter_context(
                cwtest.Sidecar(world.sidecar_args(), bin=confined_binary(world.work, binary, name)))
            sidecar.start(wait_ready=True)
            answer = sidecar.get("/v1/credentials", token=world.token)
            if answer.status != 200:
                raise RuntimeError(f"{name}: /v1/credentials answered {answer.status}")
            body = body or answer.body.encode()
            sized = re.search(r"server sized loops=(\d+)", sidecar.log_text())
            out["loops"][name] = int(sized.group(1)) if sized else None
            urls[name] = (sidecar, f"{sidecar.base_url}/v1/credentials")
        nginx = stack.enter_context(Nginx(body, prefix=("taskset", "-c", SERVER_CPU)))
        time.sleep(1.0)  # settle after the first exchanges
        for connections, keep_alive in CELLS:
            cell = {"connections": connections, "keep_alive": keep_alive}
            cell["nginx"] = run_wrk(nginx.url, connections, plan.wrk_seconds, threads=1,
                                    keep_alive=keep_alive, headers=auth, prefix=client)
            for name, (sidecar, url) in urls.items():
                with Sampler(sidecar.pid) as sampled:
                    cell[name] = run_wrk(url, connections, plan.wrk_seconds, threads=1,
                                         keep_alive=keep_alive, headers=auth, prefix=client)
                cell[name].update(threads=sampled.peak_threads)
            for side in ("nginx", *urls):
                if "failed" in cell[side]:
                    problems.append(f"e: {side} c{connections} "
                                    f"{'keep-alive' if keep_alive else 'close'}: {cell[side]['failed']}")
            out["cells"].append(cell)
            print(f"  e: c{connections:<3} {'keep-alive' if keep_alive else 'close     '}  "
                  + ", ".join(f"{side} {fmt(cell[side].get('rps'), '.0f')} req/s p99 "
                              f"{fmt(cell[side].get('p99'), '.2f')} ms" for side in ("nginx", *urls)),
                  flush=True)
        for name, (sidecar, _) in urls.items():
            if sidecar.returncode is not None:
                problems.append(f"e: {name} exited with code {sidecar.returncode} under load")
    return out


# ---------------------------------------------------------------------------
# b: boto3 end to end
# ---------------------------------------------------------------------------

def run_boto(world: World, moto: Moto, label: str, env_extra: dict, calls: int,
             trust_bundle: Optional[Path] = None) -> dict:
    home = world.work / f"home-{label}"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home),
           "AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto.url, **env_extra}
    max_seconds = 60 + calls * 0.25
    command = [sys.executable, str(REPO / "bench" / "boto3_calls.py"), BUCKET, str(calls),
               "--max-seconds", str(max_seconds)]
    if trust_bundle is not None:
        command += ["--trust-bundle", str(trust_bundle)]
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=max_seconds + 60)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"boto3 run {label} failed (exit {done.returncode}): {done.stderr[-800:]}")
    return json.loads(lines[-1])


def part_b(world: World, plan: Plan, problems: list) -> dict:
    import boto3  # the machine's Python brings boto3 and moto (see run.sh)
    import botocore.httpsession

    calls = plan.boto_calls
    rows: list = []
    with Moto(world.work) as moto:
        boto3.session.Session(aws_access_key_id="AKIABENCHSTATIC00001", aws_secret_access_key="x" * 40,
                              region_name=REGION).client("s3", endpoint_url=moto.url).create_bucket(Bucket=BUCKET)
        pod = {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(world.volume.path)}

        def record(label: str, title: str, result: dict, fetches: Optional[int]) -> None:
            result.update(label=label, title=title, fetches=fetches)
            if result["errors"]:
                problems.append(f"b: {label}: {result['errors']} failed calls, e.g. {result['first_errors'][:1]}")
            rows.append(result)
            print(f"  b: ({label}) {title}: {fmt(result['mean_ms'])} ms/call, fetches {fetches}", flush=True)

        # (i) static keys
        record("i", "static keys (AWS_ACCESS_KEY_ID/SECRET)",
               run_boto(world, moto, "i", {"AWS_ACCESS_KEY_ID": "AKIABENCHSTATIC00001",
                                           "AWS_SECRET_ACCESS_KEY": "x" * 40}, calls), 0)

        # (ii) and (iii): the sidecar; the app changes only AWS_CONTAINER_CREDENTIALS_FULL_URI
        for label, title, extra in (
                ("ii", "cwcreds, container-credentials (15-min keys)", ()),
                ("iii", "cwcreds, oidc --duration 1h", ("--exchange", "oidc", "--org-id", ORG,
                                                        "--endpoint", world.emulator.url_oidc(),
                                                        "--duration", "1h"))):
            args = world.sidecar_args() if not extra else \
                ["--token-file", str(world.volume.path), "--ca-file", str(world.pki.ca_file), *extra]
            with cwtest.Sidecar(args, bin=world.bin) as sidecar:
                sidecar.start(wait_ready=True)
                before = credentials_metric(sidecar) or 0
                result = run_boto(world, moto, label,
                                  {**pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{sidecar.base_url}/v1/credentials"},
                                  calls)
                after = credentials_metric(sidecar)
                record(label, title, result, None if after is None else after - before)
                if label == "ii":
                    # The floor for (ii): botocore re-fetching the same JSON from nginx.
                    body = sidecar.get("/v1/credentials", token=world.token).body.encode()
                    with Nginx(body) as nginx:
                        result = run_boto(world, moto, "ii-nginx",
                                          {**pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI": nginx.url}, calls)
                    record("ii-nginx", "reference: the same JSON from nginx (the floor for (ii))", result, None)

        # (iv) the seed's direct setup: botocore fetches from CoreWeave (the emulator) over HTTPS
        bundle = world.work / "trust-bundle.pem"
        bundle.write_bytes(Path(botocore.httpsession.where()).read_bytes() + b"\n"
                           + Path(world.pki.ca_file).read_bytes())
        with cwtest.Emulator(world.pki, world.issuer, lifetime=PRODUCTION_LIFETIME, org_id=ORG) as direct:
            direct.delay = NETWORK_DELAY
            result = run_boto(world, moto, "iv",
                              {**pod, "AWS_CONTAINER_CREDENTIALS_FULL_URI": direct.url_container()},
                              calls, trust_bundle=bundle)
            record("iv", f"direct to CoreWeave (emulator over HTTPS, +{NETWORK_DELAY * 1e3:.0f} ms)",
                   result, len(direct.successful_exchanges()))
    return {"rows": rows, "calls": calls}


# ---------------------------------------------------------------------------
# c: binary size and start-to-ready
# ---------------------------------------------------------------------------

def part_c_static(world: World, plan: Plan, problems: list) -> dict:
    out: dict = {"unstripped": world.bin.stat().st_size, "stripped": None}
    strip = shutil.which("strip")
    if strip:
        stripped = world.work / "cwcreds.stripped"
        subprocess.run([strip, "-o", str(stripped), str(world.bin)], check=True, timeout=60)
        out["stripped"] = stripped.stat().st_size
    samples: list = []
    latency_re = re.compile(r"exchange ok.*?latency_ms[=\":\s]+(\d+)")
    for i in range(plan.startups):
        port = cwtest.free_loopback_port()
        log_path = world.work / f"startup-{i}.log"
        command = [str(world.bin), "serve", *world.sidecar_args(), "--listen", f"127.0.0.1:{port}"]
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(command, env={"PATH": os.environ.get("PATH", os.defpath)},
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        ready = None
        try:
            deadline = started + 10
            while time.perf_counter() < deadline and proc.poll() is None:
                try:
                    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=1)) as conn:
                        conn.request("GET", "/readyz")
                        if conn.getresponse().status == 200:
                            ready = time.perf_counter() - started
                            break
                except OSError:
                    pass
                time.sleep(0.001)
        finally:
            cwtest.stop_process(proc)
        match = latency_re.search(log_path.read_text(errors="replace"))
        if ready is None:
            problems.append(f"c: start-to-ready run {i}: not ready within 10 s (exit {proc.returncode})")
            continue
        samples.append({"ready_ms": ready * 1e3, "exchange_ms": float(match.group(1)) if match else None})
    out["startups"] = samples
    return out


# ---------------------------------------------------------------------------
# d: upstream exchanges per simulated hour at 0, 10 and 10,000 requests/s
# ---------------------------------------------------------------------------

def part_d(world: World, plan: Plan, problems: list) -> dict:
    lifetime, window = plan.d_lifetime, plan.d_window
    script = world.work / "paced.lua"
    script.write_text(PACED_LUA)
    runs: list = []
    with cwtest.Emulator(world.pki, world.issuer, lifetime=lifetime, org_id=ORG) as emulator:
        emulator.expiration_format = "fraction"  # no whole-second truncation of an 8 s lifetime
        args = ["--token-file", str(world.volume.path), "--endpoint", emulator.url_container(),
                "--ca-file", str(world.pki.ca_file), "--refresh-jitter", "0"]
        for rate in plan.d_rates:
            emulator.reset_records()
            with cwtest.Sidecar(args, bin=world.bin) as sidecar:
                sidecar.start(wait_ready=True)
                start = emulator.successful_exchanges()[0].time
                end = start + window
                load: dict = {"requests": 0, "rps": 0.0}
                seconds = int(end - time.time())
                url = f"{sidecar.base_url}/v1/credentials"
                auth = (f"Authorization: {world.token}",)
                if rate and seconds >= 1:
                    # Each wrk thread sends one request every INTERVAL ms: rate = threads * 1000 / INTERVAL.
                    connections, threads = (1, 1) if rate <= 100 else (32, 2)
                    interval = threads * 1000 / rate
                    load = run_wrk(url, connections, seconds, threads=threads, headers=auth,
                                   script=script, script_args=(f"{interval:g}",))
                    if "failed" in load:
                        problems.append(f"d: load at {rate} req/s: {load['failed']}")
                time.sleep(max(0.0, end + 0.3 - time.time()))
                times = sorted(r.time - start for r in emulator.successful_exchanges() if start <= r.time < end)
                failed = sum(1 for r in emulator.exchanges if not r.ok and start <= r.time < end)
            runs.append({"rate": rate, "achieved": load.get("rps"), "requests": load.get("requests"),
                         "times": times, "failed": failed})
            print(f"  d: {rate} req/s (achieved {fmt(load.get('rps'), '.0f')}): {len(times)} exchanges in "
                  f"{window:g} s", flush=True)

    # Count in a window that ends midway between two renewals of the unloaded run,
    # so window-edge rounding cannot tell the rates apart; extra or missing
    # exchanges under load still change the count.
    def mean_interval(times: list) -> Optional[float]:
        return (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else None

    base = mean_interval(runs[0]["times"])
    renewals = math.floor(window / base - 0.5) if base else None
    counted = (renewals + 0.5) * base if base else window  # count exchanges before this
    span = (renewals + 1) * base if base else window        # each counted exchange stands for one interval
    scale = lifetime / PRODUCTION_LIFETIME  # test seconds per production second
    rows: list = []
    for run in runs:
        count = sum(1 for t in run["times"] if t < counted)
        interval = mean_interval(run["times"])
        rows.append({**run, "exchanges": count, "per_hour": count / span * scale * 3600,
                     "interval": interval,
                     "per_hour_from_interval": 3600 * scale / interval if interval else None})
    return {"rows": rows, "lifetime": lifetime, "window": window, "counted": counted, "span": span}
