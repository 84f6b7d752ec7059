"""The benchmark's report: the machine and versions it ran on, and its figures as Markdown.

`render` turns what the parts returned into bench/RESULTS.md (or the smoke
report); `fmt` and `ratio` are how every figure is written, in the report and
on the parts' progress lines.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from world import CLIENT_CPU, PRODUCTION_LIFETIME, REPO, SERVER_CPU, Plan


def fmt(value, spec: str = ".2f", none: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return none
    return format(value, spec)


def ratio(a, b) -> Optional[float]:
    return a / b if a is not None and b else None


def command_output(command: list) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[0] if (done.stdout or done.stderr) else "n/a"


def machine_info(bin_path: Path) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    os_release = {}
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            os_release[key] = value.strip('"')

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    build_type = "n/a"
    cache = bin_path.parent / "CMakeCache.txt"
    if cache.exists():
        text = cache.read_text()
        match = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.MULTILINE)
        build_type = match.group(1) if match else build_type
        flags = re.search(rf"^CMAKE_CXX_FLAGS_{build_type.upper()}:\w+=(.*)$", text, re.MULTILINE)
        if flags:
            build_type += f" build type, {flags.group(1) or 'no flags'}"
        # The Dockerfile builds the CI type: say whether these are its figures.
        build_type += ("; the build the image ships" if build_type.startswith("CI ")
                       else "; NOT the build the image ships (CI)")
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "memory": f"{int(meminfo.group(1)) / 1024 / 1024:.1f} GiB" if meminfo else "unknown",
        "os": os_release.get("PRETTY_NAME", "unknown"),
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "cwcreds": f"{command_output([str(bin_path), '--version'])} ({build_type}, {bin_path}), "
                   f"commit {commit}{' with local changes' if dirty not in ('', 'n/a') else ''}",
        "nginx": command_output(["nginx", "-v"]) if shutil.which("nginx") else
        command_output(["/usr/sbin/nginx", "-v"]),
        "wrk": command_output(["wrk", "--version"]).split(" Copyright")[0],
        "python": f"{platform.python_version()} ({sys.executable}), boto3 {version('boto3')}, "
                  f"botocore {version('botocore')}, moto {version('moto')}",
    }


def median(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def render(args, plan: Plan, info: dict, results: dict, problems: list, started: float) -> str:
    mode = "smoke" if args.smoke else "full"
    lines = [
        "# cwcreds benchmark results",
        "",
        f"Written by `bench/bench.py` ({mode} mode) — figures from one run on one machine; "
        "nothing here is asserted. See bench/run.sh for how each part is measured.",
        "",
        f"- **Command:** `{args.command}`",
        f"- **Date:** {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')} "
        f"(run took {time.monotonic() - started:.0f} s)",
        f"- **Machine:** {info['nproc']} CPUs (nproc), {info['cpu']}, {info['memory']} memory, "
        f"kernel {info['kernel']}, {info['os']}; load average at start {info['load']}",
        f"- **Software:** {info['cwcreds']}; {info['nginx']}; {info['wrk']}; Python {info['python']}",
        "",
    ]

    a = results.get("a")
    if a:
        lines += [
            "## a. `/v1/credentials` under wrk: cwcreds vs nginx",
            "",
            f"`wrk -t2 -cN -d{plan.wrk_seconds}s --latency --timeout 2s -H 'Authorization: <token>'` "
            "(plus `-H 'Connection: close'` for the close cells), nginx and cwcreds alternating cell by "
            "cell. nginx (1 worker) serves the JSON the sidecar served, as a static file with the same "
            "`Content-Type` and `Cache-Control`. Targets (issue 7): throughput ratio ≥ 0.9, p99 ratio ≤ 1.5.",
            "",
            "| connections | mode | nginx req/s | nginx p50 ms | nginx p99 ms | cwcreds req/s | cwcreds p50 ms "
            "| cwcreds p99 ms | throughput ratio | p99 ratio | errors / timeouts / non-2xx (nginx; cwcreds) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cell in a["cells"]:
            n, c = cell["nginx"], cell["cwcreds"]

            def errs(side: dict) -> str:
                if "failed" in side:
                    return "failed"
                return f"{side['socket_errors']} / {side['timeouts']} / {side['non2xx']}"

            lines.append(
                f"| {cell['connections']} | {'keep-alive' if cell['keep_alive'] else 'close'} "
                f"| {fmt(n.get('rps'), '.0f')} | {fmt(n.get('p50'), '.3f')} | {fmt(n.get('p99'), '.3f')} "
                f"| {fmt(c.get('rps'), '.0f')} | {fmt(c.get('p50'), '.3f')} | {fmt(c.get('p99'), '.3f')} "
                f"| {fmt(ratio(c.get('rps'), n.get('rps')))} | {fmt(ratio(c.get('p99'), n.get('p99')))} "
                f"| {errs(n)}; {errs(c)} |")
        details = [f"c{cell['connections']} {'keep-alive' if cell['keep_alive'] else 'close'}: "
                   f"{side} {cell[side]['error_detail']}"
                   for cell in a["cells"] for side in ("nginx", "cwcreds")
                   if cell[side].get("socket_errors")]
        if details:
            lines += ["", "Socket errors by kind: " + "; ".join(details) + "."]
        lines += ["", f"Upstream exchanges while serving all of this: {a['upstream_exchanges']}.", ""]

    b = results.get("b")
    if b:
        base = next((r for r in b["rows"] if r["label"] == "i"), None)
        lines += [
            "## b. boto3 end to end",
            "",
            f"{b['calls']} `put_object` calls of a few bytes against moto_server on 127.0.0.1, one fresh "
            "Python process per setup with only a pod's environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, and "
            "the credential variables); one first call (timed on its own: it opens the connection and, "
            "for (ii)-(iv), fetches credentials), then each call timed. Credential fetches are counted at "
            "the server (cwcreds `/metrics`, emulator records) and include one at client creation and one "
            "for the first call. *Credentials ms/call* is the time botocore spent in "
            "`get_frozen_credentials` (where it refreshes), per call: the overhead itself, without moto's "
            "noise. The (ii-nginx) row serves botocore the (ii) JSON from nginx instead: the cost of "
            "botocore's own fetch on every call, which no sidecar can remove. "
            "Targets (issue 7): (ii) adds < 0.3 ms per call over (i), (iii) adds nothing measurable.",
            "",
            "| setup | calls | credential fetches | first call ms | mean ms/call | p50 ms | p99 ms "
            "| overhead vs (i), mean ms | overhead vs (i), p50 ms | credentials ms/call | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in b["rows"]:
            over_mean = row["mean_ms"] - base["mean_ms"] if base and row is not base else None
            over_p50 = row["p50_ms"] - base["p50_ms"] if base and row is not base else None
            lines.append(
                f"| ({row['label']}) {row['title']} | {row['calls']} | {fmt(row['fetches'], 'd')} "
                f"| {fmt(row['first_ms'])} | {fmt(row['mean_ms'], '.3f')} | {fmt(row['p50_ms'], '.3f')} "
                f"| {fmt(row['p99_ms'], '.3f')} | {fmt(over_mean, '+.3f', '—')} | {fmt(over_p50, '+.3f', '—')} "
                f"| {fmt(row.get('credentials_ms'), '.3f')} | {row['errors']} |")
        lines += [
            "",
            "In (iv) botocore's container-credentials fetcher trusts the emulator's test CA through a bundle "
            "of certifi's CAs plus that CA (`bench/boto3_calls.py --trust-bundle`): it ignores "
            "`AWS_CA_BUNDLE`, and https is allowed to any host, so only the trust needed changing.",
            "",
        ]
    elif "b_skipped" in results:
        lines += ["## b. boto3 end to end", "", f"Skipped: {results['b_skipped']}", ""]

    if a or results.get("c"):
        lines += ["## c. Footprint", ""]
    if a:
        idle = a["idle"]
        after = a.get("after", {})
        lines += [
            f"cwcreds RSS idle (1 s after the first exchange): {fmt(idle.get('VmRSS'), '.1f')} MiB, "
            f"{idle.get('Threads', 'n/a')} threads; peak over all of part a (VmHWM): "
            f"{fmt(after.get('VmHWM'), '.1f')} MiB; right after the load: {fmt(after.get('VmRSS'), '.1f')} MiB, "
            f"{after.get('Threads', 'n/a')} threads. Targets (issue 7): < 8 MiB idle, < 16 MiB under load.",
            "",
            "Under part a's load (VmRSS sampled every 50 ms; CPU = utime+stime from /proc/PID/stat "
            "before and after each wrk run, divided by the requests wrk counted):",
            "",
            "| connections | mode | cwcreds peak RSS MiB | cwcreds peak threads | cwcreds CPU s / 100k req "
            "| nginx worker peak RSS MiB | nginx worker CPU s / 100k req |",
            "|---|---|---|---|---|---|---|",
        ]
        for cell in a["cells"]:
            n, c = cell["nginx"], cell["cwcreds"]

            def per_100k(side: dict) -> Optional[float]:
                return side["cpu"] / side["requests"] * 1e5 if side.get("cpu") is not None and side.get("requests") else None

            lines.append(
                f"| {cell['connections']} | {'keep-alive' if cell['keep_alive'] else 'close'} "
                f"| {fmt(c.get('rss'), '.1f')} | {fmt(c.get('threads'), 'd')} | {fmt(per_100k(c), '.2f')} "
                f"| {fmt(n.get('rss'), '.1f')} | {fmt(per_100k(n), '.2f')} |")
        lines.append("")
    c = results.get("c")
    if c:
        samples = c["startups"]
        ready = median([s["ready_ms"] for s in samples])
        exchange = median([s["exchange_ms"] for s in samples])
        without = median([s["ready_ms"] - s["exchange_ms"] for s in samples if s["exchange_ms"] is not None])
        size = lambda n: f"{n / 1024 / 1024:.2f} MiB ({n:,} bytes)" if n else "n/a"  # noqa: E731
        lines += [
            f"Binary: {size(c['unstripped'])} as built, {size(c['stripped'])} stripped.",
            "",
            f"Start to ready (process spawn to the first `/readyz` 200, polled every 1 ms; local emulator, "
            f"no delay), median of {len(samples)}: **{fmt(ready, '.1f')} ms**, of which the first exchange "
            f"took {fmt(exchange, '.0f')} ms (the sidecar's own `latency_ms`), leaving {fmt(without, '.1f')} ms "
            f"for the sidecar itself. All runs: "
            + ", ".join(f"{s['ready_ms']:.1f}" for s in samples) + " ms. "
            "Target (issue 7): ready within 50 ms plus one exchange.",
            "",
        ]

    d = results.get("d")
    if d:
        scale = PRODUCTION_LIFETIME / d["lifetime"]
        lines += [
            "## d. Upstream load: exchanges per simulated hour",
            "",
            f"The emulator issues keys living {d['lifetime']:g} s instead of {PRODUCTION_LIFETIME} s, so "
            f"time runs {scale:g}× faster than in production. Each rate gets a fresh sidecar "
            "(`--refresh-jitter 0`, so renewals are not random) and "
            f"{d['window']:g} s from its first exchange. Load comes from wrk paced by a Lua `delay()` "
            "that hands each wrk thread send slots on a fixed schedule (Debian's wrk has no `-R`): 1 "
            "thread and connection for 10 req/s, 2 threads and 32 connections for 10,000 req/s; the "
            "achieved rate is shown. Exchanges are counted from the emulator's records in the first "
            f"{d['counted']:.2f} s of each run ({d['counted'] * scale / 60:.0f} simulated minutes): a "
            "window sized from the unloaded run to end midway between two renewals, so window-edge "
            "rounding cannot tell the rates apart while an extra or a missing exchange still shows. "
            f"Per simulated hour = count × 3600 / ({d['span']:.2f} s × {scale:g}), {d['span']:.2f} s being "
            "as many mean renewal intervals of the unloaded run as exchanges counted there; the last "
            "column uses each run's own mean gap between exchanges instead. With the default `--refresh-fraction 0.25`, 900 s "
            f"keys are renewed {3600 / (0.25 * PRODUCTION_LIFETIME):.0f} times an hour; here about "
            f"{3600 / (0.25 * PRODUCTION_LIFETIME * (d['lifetime'] + 0.5) / d['lifetime']):.0f}, because the "
            "sidecar measures a lifetime from the upstream's `Date`, which has whole seconds: up to 1 s too "
            f"long, {100 / d['lifetime']:.0f}% of {d['lifetime']:g} s but 0.1% of 900 s. What matters is "
            "that the figure is the same at every rate. (The seed's direct setup makes one exchange per "
            "botocore call: 36,000 an hour at 10 req/s.)",
            "",
            "| target req/s | achieved req/s | requests | exchanges counted | failed exchanges "
            "| per simulated hour | mean interval s | per simulated hour (from interval) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in d["rows"]:
            lines.append(
                f"| {row['rate']:,} | {fmt(row['achieved'], '.0f')} | {fmt(row['requests'], 'd')} "
                f"| {row['exchanges']} | {row['failed']} | {row['per_hour']:.1f} | {fmt(row['interval'], '.2f')} "
                f"| {fmt(row['per_hour_from_interval'], '.1f')} |")
        counts = sorted({row["exchanges"] for row in d["rows"]})
        verdict = "equal at every rate" if len(counts) == 1 else \
            f"not equal: {', '.join(str(row['exchanges']) for row in d['rows'])} exchanges"
        lines += ["", f"Exchange counts: **{verdict}**.", ""]

    e = results.get("e")
    if e:
        names = e["builds"]
        lines += [
            "## e. Confined to 1 CPU",
            "",
            f"nginx (1 worker) and cwcreds each started under `taskset -c {SERVER_CPU}`, wrk under "
            f"`taskset -c {CLIENT_CPU}`: `wrk -t1 -cN -d{plan.wrk_seconds}s --latency --timeout 2s "
            "-H 'Authorization: <token>'` (plus `-H 'Connection: close'`), nginx then cwcreds cell by cell. "
            "Loops cwcreds chose (its `server sized` log line): "
            + ", ".join(f"{name} {e['loops'].get(name) or 'not logged (sized from the machine)'}"
                        for name in names) + ".",
            "",
            "| connections | mode | server | req/s | p50 ms | p99 ms | throughput vs nginx | p99 vs nginx "
            "| threads | errors / timeouts / non-2xx |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cell in e["cells"]:
            n = cell["nginx"]
            for side in ("nginx", *names):
                r = cell[side]
                errors = "failed" if "failed" in r else f"{r['socket_errors']} / {r['timeouts']} / {r['non2xx']}"
                lines.append(
                    f"| {cell['connections']} | {'keep-alive' if cell['keep_alive'] else 'close'} | {side} "
                    f"| {fmt(r.get('rps'), '.0f')} | {fmt(r.get('p50'), '.3f')} | {fmt(r.get('p99'), '.3f')} "
                    f"| {fmt(ratio(r.get('rps'), n.get('rps'))) if side != 'nginx' else '—'} "
                    f"| {fmt(ratio(r.get('p99'), n.get('p99'))) if side != 'nginx' else '—'} "
                    f"| {fmt(r.get('threads'), 'd')} | {errors} |")
        lines.append("")

    if problems:
        lines += ["## Problems during the run", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(lines)
