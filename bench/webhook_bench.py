#!/usr/bin/env python3
"""AdmissionReviews per second, latency and memory of `cwcreds webhook`, and
what hostile clients cost it. (This file is longer than 600 lines: every row
runs the same webhook, before and after, into one report; the attack rows
are each a few dozen lines of client, and apart they would only import back
the runner and the report.)

A 1,000-pod Job makes kube-apiserver send a burst of Pod CREATE reviews, many
at once. This starts the real webhook on loopback with a test certificate and
drives POST /mutate with wrk over TLS, 64 connections kept alive (what the
API server does), in four rows:

- paced at about 1,000 and 3,300 reviews/s (a 1,000-pod Job admitted in one
  second, in 0.3 s): each connection waits a random 0-128 ms (0-38 ms)
  between its answer and its next review, so reviews overlap at random as a
  burst's do. The p99 here is the latency target (< 5 ms): the Job
  controller creates pods at its client's rate (kube-controller-manager
  --kube-api-qps, 20/s by default), far below these;
- saturated: every connection sends its next review the moment it has an
  answer. That measures throughput; its latency is queueing, 64 / (reviews/s)
  on average by Little's law, whatever the server;
- saturated with `Connection: close`: a TLS handshake per review.

Every review is a labelled pod with two containers, so every answer carries
a patch. Reports requests/s, p50/p99 latency (wrk's), errors, the webhook's
CPU per review and resident set (peak VmHWM) and threads. wrk reuses its
SSL object from one connection to the next, so it resumes the TLS session
whenever the webhook issued a ticket: the `Connection: close` row measures
resumed handshakes against a webhook that issues tickets, full ones against
one that does not.

The webhook is reachable from every pod that can reach its Service, and a
fault in it fails every labelled pod's admission, so `--attacks` adds what a
hostile or broken client costs it, each on a fresh webhook process:

- memory at 1,000 silent connections: RSS (VmRSS) and threads idle, with
  1,000 plain TCP connections that send nothing, and with 1,000 TLS
  connections that finished the handshake and stay idle, opened all at once
  and then 10 at a time (from one thread, non-blocking; those not that far
  after 8 s are given up);
- peak memory (VmHWM) under bodies built to hold memory: 40 MiB sent chunked;
  40 KiB of gzip inflating to 40 MiB; 32 connections at once each announcing
  a 3,145,000-byte body (just under the 3 MiB limit) and sending it 64 KiB at
  a time, half never finishing, half finishing as garbage. The container's
  memory limit is 128 MiB (manifests/webhook/deployment.yaml); the stated
  bound is 64 MiB whatever bodies arrive. A valid review follows each;
- drip: 128 connections each sending a byte a second (as slowhttptest does,
  opened again a second after the webhook closes one), from one background
  thread, while 12 valid reviews go one at a time, each on a fresh TLS
  connection within the API server's 5 s (timeoutSeconds), at least 0.5 s
  apart so they span the 5 s a webhook may give a slow request. Two kinds:
  TLS connections sending a POST head that never ends, and plain TCP
  sending a ClientHello (the handshake itself dripped). The target: every
  review answered within 2 s. A server that gives each connection one of
  64 threads and times out per read has all 64 held while bytes keep coming.

Loopback only; every loop is bounded in count and time; every process and
socket this starts is stopped or closed by this process (the webhook by PID).
With --before-bin, every row runs for that binary too and the report puts
the two side by side. The wrk rows alternate (row 1 before, row 1 after,
row 2 before...), so that other load on the machine falls on both sides
alike, and each row reports the CPU other processes used meanwhile: on a
shared 2-CPU machine, a build running beside a row has cut its reviews/s
eightfold. About 45 s per binary; --attacks adds about 70 s for a webhook
that answers under drip, 2 minutes for one that does not (each unanswered
review waits out its 5 s). The Markdown goes to stdout, progress to stderr.

    python3 bench/webhook_bench.py [--seconds 10] [--bin build/cwcreds]
                                   [--before-bin /tmp/cwcreds-before] [--attacks]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import re
import resource
import select
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import cwtest  # noqa: E402
import webhook_client  # noqa: E402
from bench import proc_cpu_seconds, proc_status  # noqa: E402  (bench/, beside this file)
from procfs import TICKS  # noqa: E402

REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "0df28fbd-5f5f-4f63-8b8b-0123456789ab",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": "training",
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "train-", "labels": {"cwcreds/inject": "true", "job-name": "train"}},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "trainer",
                "containers": [
                    {"name": "trainer", "image": "registry.example.com/trainer:1.4",
                     "env": [{"name": "LOG_LEVEL", "value": "info"}],
                     "resources": {"limits": {"nvidia.com/gpu": "8"}},
                     "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
                    {"name": "uploader", "image": "registry.example.com/uploader:0.3"},
                ],
                "volumes": [{"name": "scratch", "emptyDir": {}}],
            },
        },
    },
}
REVIEW_BYTES = json.dumps(REVIEW).encode()

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{close}
{pace}
local f = io.open("{body}", "r")
wrk.body = f:read("*a")
f:close()
"""


# (label, Connection: close, the most a connection waits between reviews in
# ms; 0: not at all). A uniform wait of 0..2m ms gives each of 64 connections
# a review every m ms plus the answer's latency.
ROWS = (
    ("keep-alive, paced ~1,000/s", False, 128),
    ("keep-alive, paced ~3,300/s", False, 38),
    ("keep-alive, saturated", False, 0),
    ("`Connection: close` (TLS handshake each), saturated", True, 0),
)

# timeoutSeconds in manifests/webhook: the API server's whole call, TCP
# connect and TLS handshake included.
API_SERVER_TIMEOUT = 5.0
SILENT = 1000
SILENT_CONNECT_SECONDS = 8.0
DRIPPERS = 128
DRIP_REVIEWS = 12
DRIP_TARGET_S = 2.0
# Just under the webhook's 3 MiB (3,145,728-byte) limit on a review.
LARGE_BODY = 3_145_000
LARGE_SENDERS = 32
PIECE = 64 << 10
INFLATED = 40 << 20
HEAD = b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def log(message: str) -> None:
    print(f"[webhook_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def status(pid: int) -> dict:
    """CPU seconds so far, and VmRSS, VmHWM (MiB) and Threads."""
    return {"cpu_s": proc_cpu_seconds(pid), **proc_status(pid)}


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else float("nan")


def summary(outcomes) -> str:
    """`16 x HTTP/1.1 400 Bad Request, 16 x held open to the end`."""
    counts: dict = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} x {outcome}" for outcome, n in sorted(counts.items(), key=lambda item: -item[1]))


@contextlib.contextmanager
def webhook(binary: str, pki: cwtest.Pki, log_file: Path):
    """`cwcreds webhook` on 127.0.0.1, port 0, its output to `log_file`;
    yields (process, port) and stops the process by PID on the way out."""
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            [binary, "webhook", "--listen", "127.0.0.1:0", "--tls-cert-file", str(pki.cert_file),
             "--tls-key-file", str(pki.key_file), "--org-id", "bench-org", "--image", "registry.example.com/cwcreds:bench", "--log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        # Port 0 is logged at info, which --log-level warn hides: read the
        # port from the kernel's table of listening sockets instead.
        port = None
        for _ in range(500):
            listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
            match = re.search(rf"127\.0\.0\.1:(\d+)\s.*pid={proc.pid},", listening)
            if match:
                port = int(match.group(1))
                break
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        if port is None:
            raise SystemExit(f"the webhook did not start: {log_file.read_text()[-2000:]}")
        yield proc, port
    finally:
        cwtest.stop_process(proc)


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = to_ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["errors"] = int(errors.group(1)) if errors else 0
    result["socket_errors"] = socket_errors.group(1) if socket_errors else "none"
    return result


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS  # less idle and iowait


def own_cpu_seconds() -> float:
    """This process's CPU seconds and its waited-for children's (wrk, ss)."""
    return sum(getattr(resource.getrusage(who), field)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))


def wrk_rows(binaries: list, pki: cwtest.Pki, root: Path, args) -> dict:
    """The wrk rows for every binary, each on a webhook of its own started
    once; row by row, binary after binary, so a change in the machine's
    other load lands on both sides of a comparison rather than on one.
    Beside each row: the CPU other processes used meanwhile (cores), from
    the machine's busy time less the webhook's, wrk's and this process's."""
    body = root / "review.json"
    body.write_bytes(REVIEW_BYTES)
    warm_up = root / "warm-up.lua"
    warm_up.write_text(LUA.replace("{close}", "").replace("{pace}", "").replace("{body}", str(body)))
    results = {}
    with contextlib.ExitStack() as stack:
        servers = {}
        for label, binary in binaries:
            proc, port = stack.enter_context(webhook(binary, pki, root / f"webhook-wrk-{label}.log"))
            servers[label] = (proc, f"https://127.0.0.1:{port}/mutate")
            results[label] = {"idle": status(proc.pid), "rows": []}
            # Unmeasured: the first handshakes and the workers' first
            # allocations would land in the first row only.
            run_wrk(servers[label][1], warm_up, args.connections, 2)
        for index, (row, close, wait_ms) in enumerate(ROWS):
            script = root / f"post-{index}.lua"
            script.write_text(LUA.replace("{close}", 'wrk.headers["Connection"] = "close"' if close else "")
                              .replace("{pace}", f"function delay() return math.random(0, {wait_ms}) end"
                                       if wait_ms else "")
                              .replace("{body}", str(body)))
            for label, (proc, url) in servers.items():
                before = status(proc.pid)
                machine, own, started = busy_cpu_seconds(), own_cpu_seconds(), time.monotonic()
                result = run_wrk(url, script, args.connections, args.seconds)
                elapsed = time.monotonic() - started
                result.update(label=row, **status(proc.pid))
                webhook_cpu = result["cpu_s"] - before["cpu_s"]
                result["other_cores"] = max(busy_cpu_seconds() - machine - webhook_cpu
                                            - (own_cpu_seconds() - own), 0) / elapsed
                # The webhook's own CPU per review: a figure the machine's
                # other load does not distort the way latency is distorted.
                result["cpu_us"] = webhook_cpu / (result["rps"] * args.seconds) * 1e6
                results[label]["rows"].append(result)
                log(f"  {label}, {row}: {result['rps']:.0f}/s, p99 {result['p99_ms']:.2f} ms, "
                    f"other processes {result['other_cores']:.2f} cores")
    return results


# -- one review the way the API server sends it -------------------------------

def client_context(pki: cwtest.Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def admit(port: int, ca_file: Path, timeout: float = API_SERVER_TIMEOUT):
    """One review as the API server sends it, the whole call within `timeout`
    (tests/support/webhook_client.admit). Returns (status or the error,
    seconds); an answer without the patch counts as failed."""
    status, answer, seconds = webhook_client.admit(port, ca_file, REVIEW_BYTES, timeout)
    if isinstance(status, int) and not webhook_client.has_patch(answer):
        status = f"{status} without a patch"
    return status, seconds


# -- 1,000 silent connections -------------------------------------------------

def open_silent(port: int, count: int, context, seconds: float) -> list:
    """`count` connections opened at once from this thread, none waiting on
    another: TCP, and with a context the TLS handshake too. Those not that
    far after `seconds` are closed (a server that handshakes on a fixed pool
    of threads gets to the rest later, or never). Returns the others."""
    selector = selectors.DefaultSelector()
    done = []
    deadline = time.monotonic() + seconds
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE, "connect")
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=min(0.1, max(deadline - time.monotonic(), 0.001))):
                sock = key.fileobj
                selector.unregister(sock)
                if key.data == "connect":
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        sock.close()
                        continue
                    if context is None:
                        done.append(sock)
                        continue
                    sock = context.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False)
                try:
                    sock.do_handshake()
                    done.append(sock)
                except ssl.SSLWantReadError:
                    selector.register(sock, selectors.EVENT_READ, "handshake")
                except ssl.SSLWantWriteError:
                    selector.register(sock, selectors.EVENT_WRITE, "handshake")
                except OSError:
                    sock.close()
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    return done


def still_open(socks: list) -> int:
    """How many of `socks` the peer has not closed (no FIN, no RST yet)."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock.fileno(), select.POLLRDHUP)  # POLLHUP and POLLERR come anyway
    gone = {fd for fd, _ in poller.poll(0)}
    return sum(sock.fileno() not in gone for sock in socks)


def silent_connections(binary: str, pki: cwtest.Pki, root: Path) -> dict:
    """RSS and threads idle (after one review), then with SILENT plain TCP
    connections, then with SILENT TLS connections past the handshake: all at
    once, and again 10 at a time (handshake buffers freed while others are
    still held can stay in the heap: the first reading is what a burst of
    connections costs, the second what idle connections cost). Each on a
    fresh webhook, against that process's own idle reading."""
    result = {}
    for kind, context, batch in (("tcp", None, SILENT), ("tls", client_context(pki), SILENT),
                                 ("tls10", client_context(pki), 10)):
        with webhook(binary, pki, root / f"webhook-silent-{kind}.log") as (proc, port):
            admit(port, pki.ca_file)
            idle = status(proc.pid)
            started = time.monotonic()
            deadline = started + SILENT_CONNECT_SECONDS
            socks: list = []
            try:
                while len(socks) < SILENT and time.monotonic() < deadline:
                    socks += open_silent(port, min(batch, SILENT - len(socks)), context,
                                         deadline - time.monotonic())
                took = time.monotonic() - started
                time.sleep(0.5)  # the webhook accepts the last ones and sets up what it keeps
                loaded = status(proc.pid)
                result[kind] = {"idle": idle, "loaded": loaded, "connected": len(socks), "seconds": took,
                                "open": still_open(socks)}
            finally:
                for sock in socks:
                    sock.close()
        r = result[kind]
        log(f"  {SILENT} silent {kind}: {r['connected']} connected in {took:.1f} s, {r['open']} open; "
            f"RSS {idle['VmRSS']:.1f} -> {loaded['VmRSS']:.1f} MiB, threads {loaded['Threads']}")
    return result


# -- bodies built to hold memory ----------------------------------------------

def raw_tls(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def send(tls: ssl.SSLSocket, pieces, pause: float = 0.0):
    """Sends `pieces` one after another, `pause` s apart, until one fails
    (the webhook closed, or stopped reading for 10 s). Returns the bytes
    sent and the error's name, or None."""
    sent = 0
    for piece in pieces:
        try:
            tls.sendall(piece)
        except OSError as error:
            return sent, type(error).__name__
        sent += len(piece)
        if pause:
            time.sleep(pause)
    return sent, None


def answer(tls: ssl.SSLSocket, seconds: float = 5) -> str:
    """The status line the webhook sent, if it sent one (it may be there even
    after a failed send: an answer, then the close), waiting `seconds` at
    most; else what ended the wait."""
    deadline = time.monotonic() + seconds
    data = b""
    try:
        while b"\r\n" not in data and len(data) < 65536 and time.monotonic() < deadline:
            tls.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as error:
        if not data:
            return type(error).__name__
    return data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed without an answer"


def chunked_body(port: int, context: ssl.SSLContext) -> str:
    """40 MiB of POST /mutate in 1 MiB chunks, all sent unless the webhook
    closes the connection first."""
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"{" * (1 << 20))
    with raw_tls(port, context) as tls:
        sent, error = send(tls, [HEAD + b"Transfer-Encoding: chunked\r\n\r\n"]
                           + [chunk] * (INFLATED >> 20) + [b"0\r\n\r\n"])
        return f"{answer(tls)} ({sent / (1 << 20):.0f} MiB sent{', then ' + error if error else ''})"


def gzip_body(port: int, context: ssl.SSLContext, bomb: bytes) -> str:
    """A gzip body inflating to 40 MiB, sent whole with its Content-Length."""
    with raw_tls(port, context) as tls:
        _, error = send(tls, [HEAD + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
                              + bomb])
        return answer(tls) + (f" (the send: {error})" if error else "")


def large_bodies(port: int, context: ssl.SSLContext) -> str:
    """LARGE_SENDERS connections at once, each announcing LARGE_BODY bytes
    and sending them PIECE at a time (about a second each, so they overlap):
    even ones finish with garbage and read the answer, odd ones stop one
    piece short and hold until all have got that far (30 s at most)."""
    outcomes: dict = {}
    release = threading.Event()
    piece = b"x" * PIECE

    def attack(index: int) -> None:
        finish = index % 2 == 0
        size = LARGE_BODY if finish else LARGE_BODY - PIECE
        pieces = [piece] * (size // PIECE) + [piece[:size % PIECE]]
        try:
            with raw_tls(port, context) as tls:
                _, error = send(tls, [HEAD + b"Content-Length: %d\r\n\r\n" % LARGE_BODY] + pieces, 0.02)
                if error:
                    outcomes[index] = f"{answer(tls, 1)}, the body cut short"
                elif finish:
                    outcomes[index] = answer(tls)
                else:
                    outcomes[index] = "holding"
                    release.wait(30)
                    outcomes[index] = "held open to the end" if still_open([tls]) else "closed while held"
        except OSError as error:
            outcomes[index] = type(error).__name__

    threads = [threading.Thread(target=attack, args=(i,), daemon=True) for i in range(LARGE_SENDERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(outcomes) < LARGE_SENDERS and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the webhook reads what is in flight
    release.set()
    for thread in threads:
        thread.join(10)
    seen = [outcomes.get(i, "unfinished") for i in range(LARGE_SENDERS)]
    return f"finished: {summary(seen[0::2])}; held: {summary(seen[1::2])}"


def body_attacks(binary: str, pki: cwtest.Pki, root: Path) -> list:
    context = client_context(pki)
    bomb = gzip.compress(b" " * INFLATED, 9)
    attacks = (
        (f"{INFLATED >> 20} MiB POST /mutate, chunked", lambda port: chunked_body(port, context)),
        (f"{len(bomb) >> 10} KiB gzip body inflating to {INFLATED >> 20} MiB",
         lambda port: gzip_body(port, context, bomb)),
        (f"{LARGE_SENDERS} connections at once, Content-Length: {LARGE_BODY:,}, 64 KiB pieces",
         lambda port: large_bodies(port, context)),
    )
    rows = []
    for index, (label, attack) in enumerate(attacks):
        with webhook(binary, pki, root / f"webhook-body-{index}.log") as (proc, port):
            admit(port, pki.ca_file)
            idle = status(proc.pid)
            seen = attack(port)
            time.sleep(0.3)
            peak = status(proc.pid)
            after, _ = admit(port, pki.ca_file)
            rows.append({"label": label, "seen": seen, "idle": idle, "peak": peak, "review_after": after,
                         "alive": proc.poll() is None})
        log(f"  {label}: {seen}; VmHWM {peak['VmHWM']:.1f} MiB; then a review: {after}")
    return rows


# -- connections that send a byte a second ------------------------------------

def drip(port: int, kind: str, context: ssl.SSLContext, stop: threading.Event, state: dict,
         seconds: float) -> None:
    """DRIPPERS attackers driven from this one thread, as a slow-HTTP tool
    runs them: each connection gets as far as the webhook lets it, then
    sends a byte a second; one the webhook closes (or answers) is opened
    again a second later. `kind` "head": a TLS handshake, then a POST head
    that never ends; "hello": plain TCP sending a ClientHello. Runs until
    `stop`, `seconds` at most. `state` counts connections dripping (two bytes
    or more on their current connection), bytes, and closes by the webhook."""
    hello = webhook_client.client_hello()
    selector = selectors.DefaultSelector()
    slots = [{"sock": None, "phase": None, "reopen": 0.0, "next": 0.0, "sent": 0} for _ in range(DRIPPERS)]
    deadline = time.monotonic() + seconds

    def close(slot: dict, by_webhook: bool) -> None:
        if slot["sock"] is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(slot["sock"])
            slot["sock"].close()
        slot.update(sock=None, phase=None, reopen=time.monotonic() + 1, sent=0)
        state["closed"] += by_webhook

    def dripping(slot: dict, first: bytes) -> None:
        slot["sock"].send(first)
        slot.update(phase="drip", next=time.monotonic() + 1, sent=0)
        selector.modify(slot["sock"], selectors.EVENT_READ, slot)  # to see the webhook close it

    def handshake(slot: dict) -> None:
        try:
            slot["sock"].do_handshake()
        except ssl.SSLWantReadError:
            selector.modify(slot["sock"], selectors.EVENT_READ, slot)
            return
        except ssl.SSLWantWriteError:
            selector.modify(slot["sock"], selectors.EVENT_WRITE, slot)
            return
        dripping(slot, HEAD + b"X-Drip: ")

    def ready(slot: dict) -> None:
        sock = slot["sock"]
        if slot["phase"] == "connect":
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                raise ConnectionRefusedError
            if kind == "hello":
                selector.modify(sock, selectors.EVENT_READ, slot)
                dripping(slot, hello[:1])
                return
            selector.unregister(sock)
            slot["sock"] = context.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False)
            slot["phase"] = "handshake"
            selector.register(slot["sock"], selectors.EVENT_WRITE, slot)
            handshake(slot)
        elif slot["phase"] == "handshake":
            handshake(slot)
        else:  # readable while dripping: an answer (408, 400) or the webhook closing
            try:
                sock.recv(4096)
            except ssl.SSLWantReadError:
                return  # a TLS 1.3 session ticket
            raise ConnectionAbortedError

    try:
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            for slot in slots:
                try:
                    if slot["sock"] is None and now >= slot["reopen"]:
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        sock.setblocking(False)
                        sock.connect_ex(("127.0.0.1", port))
                        slot.update(sock=sock, phase="connect", sent=0)
                        selector.register(sock, selectors.EVENT_WRITE, slot)
                    elif slot["phase"] == "drip" and now >= slot["next"]:
                        if kind == "head":
                            slot["sock"].send(b"a")
                        elif slot["sent"] + 1 < len(hello):
                            slot["sock"].send(hello[slot["sent"] + 1:slot["sent"] + 2])
                        slot["sent"] += 1
                        slot["next"] += 1
                        state["bytes"] += 1
                except (OSError, ValueError):
                    close(slot, True)
            for key, _ in selector.select(timeout=0.05):
                try:
                    ready(key.data)
                except (OSError, ValueError):
                    close(key.data, True)
            state["dripping"] = sum(slot["sent"] >= 2 for slot in slots)
    finally:
        for slot in slots:
            if slot["sock"] is not None:
                close(slot, False)
        selector.close()


def drip_row(binary: str, pki: cwtest.Pki, root: Path, kind: str) -> dict:
    context = client_context(pki)
    with webhook(binary, pki, root / f"webhook-drip-{kind}.log") as (proc, port):
        admit(port, pki.ca_file)
        state = {"dripping": 0, "bytes": 0, "closed": 0}
        stop = threading.Event()
        attacker = threading.Thread(target=drip, args=(port, kind, context, stop, state, 120), daemon=True)
        attacker.start()
        try:
            # Reviews start once every attacker has dripped twice, past a
            # per-read timeout of a second or two; a server that handshakes
            # only as many connections as it has threads never lets the rest
            # get that far, and the reviews start after 5 s all the same.
            deadline = time.monotonic() + 5
            while state["dripping"] < DRIPPERS and time.monotonic() < deadline:
                time.sleep(0.05)
            in_place = state["dripping"]
            results = []
            for _ in range(DRIP_REVIEWS):
                started = time.monotonic()
                results.append(admit(port, pki.ca_file))
                time.sleep(max(0.5 - (time.monotonic() - started), 0))
            during = status(proc.pid)
        finally:
            stop.set()
            attacker.join(10)
    answered = [seconds for result, seconds in results if result == 200]
    row = {"in_place": in_place, "closed": state["closed"], "bytes": state["bytes"], "status": during,
           "answered": len(answered), "within_target": sum(s <= DRIP_TARGET_S for s in answered),
           "p50_ms": 1000 * percentile(answered, 0.5), "max_ms": 1000 * max(answered, default=float("nan")),
           "failures": summary(result for result, _ in results if result != 200) or "none",
           "which": [index + 1 for index, (result, _) in enumerate(results) if result == 200]}
    log(f"  drip {kind}: {row['answered']} of {DRIP_REVIEWS} answered, max {row['max_ms']:.0f} ms, "
        f"{in_place} dripping at the start, {row['closed']} closed by the webhook")
    return row


# -- the run and the report ---------------------------------------------------

def raise_descriptor_limit(needed: int) -> None:
    """This process holds SILENT sockets at once, and the webhook inherits
    the limit: raise the soft limit towards the hard one if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard),
                                                    hard))


def measure(binaries: list, pki: cwtest.Pki, root: Path, args) -> list:
    """Every row for every binary, binary after binary within a row."""
    started = time.monotonic()
    results = {label: {"label": label, "bin": binary} for label, binary in binaries}
    load_start = os.getloadavg()[0]
    log("wrk rows")
    for label, rows in wrk_rows(binaries, pki, root, args).items():
        results[label]["wrk"] = rows
    if args.attacks:
        for label, binary in binaries:
            log(f"{label}: {SILENT} silent connections")
            results[label]["silent"] = silent_connections(binary, pki, root)
        for label, binary in binaries:
            log(f"{label}: bodies")
            results[label]["bodies"] = body_attacks(binary, pki, root)
        for kind in ("head", "hello"):
            for label, binary in binaries:
                log(f"{label}: drip {kind}")
                results[label].setdefault("drip", {})[kind] = drip_row(binary, pki, root, kind)
    for result in results.values():
        result.update(load_start=load_start, load_end=os.getloadavg()[0], seconds=time.monotonic() - started)
    return list(results.values())


def mib(value: float) -> str:
    return f"{value:.1f} MiB"


def silent_cell(r: dict) -> str:
    grown = r["loaded"]["VmRSS"] - r["idle"]["VmRSS"]
    per = f"{grown * 1024 / r['open']:.1f} KiB per open connection" if r["open"] else "no connection open"
    return (f"{r['connected']} of {SILENT} connected in {r['seconds']:.1f} s, {r['open']} open at the reading; "
            f"RSS {mib(r['loaded']['VmRSS'])} ({grown:+.1f} MiB, {per}); {r['loaded']['Threads']} threads")


def drip_cell(r: dict) -> str:
    times = (f"p50 {r['p50_ms']:.0f} ms, max {r['max_ms']:.0f} ms" if r["answered"] else "no answer")
    if 0 < r["answered"] < DRIP_REVIEWS:
        times += f" (answered: review {', '.join(map(str, r['which']))})"
    return (f"**{r['answered']} of {DRIP_REVIEWS}** answered within {API_SERVER_TIMEOUT:.0f} s "
            f"({r['within_target']} within {DRIP_TARGET_S:.0f} s), {times}; failures: {r['failures']}; "
            f"{r['in_place']} of {DRIPPERS} dripping when the reviews began, {r['closed']} closed by the webhook "
            f"(and opened again); {r['status']['Threads']} threads, RSS {mib(r['status']['VmRSS'])}")


def render(results: list, args) -> str:
    lines = []
    out = lines.append
    command = "python3 bench/webhook_bench.py"
    if args.seconds != 10:
        command += f" --seconds {args.seconds}"
    if args.before_bin:
        command += f" --before-bin {args.before_bin}"
    command += f" --bin {args.bin}" + (" --attacks" if args.attacks else "")
    out("# cwcreds webhook: reviews per second, latency, memory" + (", attacks" if args.attacks else "") + "\n")
    out(f"`{command}`: the real `cwcreds webhook` on loopback with a test certificate (tests/support/cwtest.py's "
        f"`Pki`), wrk -t2 with {args.connections} TLS connections kept alive, POST /mutate with a labelled "
        f"two-container pod (review {len(REVIEW_BYTES)} bytes, every answer a patch), {args.seconds} s per row "
        f"after a 2 s unmeasured warm-up"
        + (", row by row one binary then the other, both webhooks started once." if len(results) > 1 else ".")
        + (" Then, each on a fresh webhook process, the attack rows described in the script's docstring."
           if args.attacks else ""))
    out("")
    out(f"The machine has {os.cpu_count()} CPUs and is shared: other builds and tests may run during a run, "
        "which moves latency and reviews/s (less so the webhook's CPU per review); the column `other CPU` is "
        "what other processes used during the row, in cores. One-minute load average at the start and the end: "
        f"{results[0]['load_start']:.1f} -> {results[0]['load_end']:.1f} ({results[0]['seconds']:.0f} s in all).")
    for r in results:
        out(f"\n## wrk, {r['label']}: `{r['bin']}`\n")
        out("| connections | reviews/s | p50 | p99 | webhook CPU per review | errors | peak RSS | threads "
            "| other CPU |")
        out("|---|---|---|---|---|---|---|---|---|")
        for w in r["wrk"]["rows"]:
            out(f"| {args.connections}, {w['label']} | {w['rps']:.0f} | {w['p50_ms']:.2f} ms | {w['p99_ms']:.2f} ms | "
                f"{w['cpu_us']:.0f} µs | {w['errors']} (socket: {w['socket_errors']}) | {mib(w['VmHWM'])} | "
                f"{w['Threads']} | {w['other_cores']:.2f} |")
        idle = r["wrk"]["idle"]
        out(f"\nIdle: RSS {mib(idle['VmRSS'])}, {idle['Threads']} threads.")
    header = "| | " + " | ".join(f"{r['label']} (`{r['bin']}`)" for r in results) + " |"
    rule = "|---|" + "---|" * len(results)
    if args.attacks:
        out(f"\n## {SILENT:,} silent connections (each kind on a fresh webhook, after one review)\n")
        out(header)
        out(rule)
        out("| idle | " + " | ".join(f"RSS {mib(r['silent']['tcp']['idle']['VmRSS'])}, "
                                    f"{r['silent']['tcp']['idle']['Threads']} threads" for r in results) + " |")
        out(f"| {SILENT:,} plain TCP, nothing sent | " + " | ".join(silent_cell(r["silent"]["tcp"]) for r in results)
            + " |")
        out(f"| {SILENT:,} TLS, handshake done, then idle (opened all at once) | "
            + " | ".join(silent_cell(r["silent"]["tls"]) for r in results) + " |")
        out(f"| {SILENT:,} TLS, the same, opened 10 at a time | "
            + " | ".join(silent_cell(r["silent"]["tls10"]) for r in results) + " |")
        out("\n## Peak memory (VmHWM) under bodies built to hold memory (each on a fresh webhook)\n")
        out(header)
        out(rule)
        for index, body in enumerate(results[0]["bodies"]):
            cells = []
            for r in results:
                b = r["bodies"][index]
                cells.append(f"{b['seen']}; **VmHWM {mib(b['peak']['VmHWM'])}** (idle {mib(b['idle']['VmRSS'])}); "
                             f"a review after: {b['review_after']}" + ("" if b["alive"] else "; the webhook died"))
            out(f"| {body['label']} | " + " | ".join(cells) + " |")
        out(f"\n## Drip: {DRIPPERS} connections sending a byte a second, {DRIP_REVIEWS} reviews meanwhile "
            f"(each on a fresh webhook)\n")
        out(header)
        out(rule)
        out(f"| {DRIPPERS} TLS connections, a POST head a byte a second | "
            + " | ".join(drip_cell(r["drip"]["head"]) for r in results) + " |")
        out(f"| {DRIPPERS} TCP connections, a ClientHello a byte a second | "
            + " | ".join(drip_cell(r["drip"]["hello"]) for r in results) + " |")

    out("\n## Against the targets\n")
    out("| target | " + " | ".join(r["label"] for r in results) + " |")
    out(rule)
    out("| paced p99 < 5 ms (~1,000/s; ~3,300/s) | " + " | ".join(
        f"{r['wrk']['rows'][0]['p99_ms']:.2f} ms; {r['wrk']['rows'][1]['p99_ms']:.2f} ms" for r in results) + " |")
    out("| saturated keep-alive reviews/s not lower than before (≈6.5k measured earlier) | " + " | ".join(
        f"{r['wrk']['rows'][2]['rps']:.0f}/s ({r['wrk']['rows'][2]['cpu_us']:.0f} µs CPU each)" for r in results)
        + " |")
    if args.attacks:
        out("| peak memory < 64 MiB whatever bodies arrive (highest VmHWM of the three) | " + " | ".join(
            mib(max(b["peak"]["VmHWM"] for b in r["bodies"])) for r in results) + " |")
        out(f"| {DRIPPERS} drip connections: every review answered within {DRIP_TARGET_S:.0f} s (head; hello) | "
            + " | ".join(f"{r['drip']['head']['within_target']} of {DRIP_REVIEWS}; "
                         f"{r['drip']['hello']['within_target']} of {DRIP_REVIEWS}" for r in results) + " |")
    last = results[-1]["wrk"]["rows"]
    out(f"\nThe saturated rows are throughput: with every client sending its next review the moment it has an "
        f"answer, the mean latency is {args.connections} / (reviews/s) by Little's law "
        f"({args.connections / last[2]['rps'] * 1000:.1f} ms at {last[2]['rps']:.0f}/s for "
        f"{results[-1]['label']}), whatever the server. Real bursts are slower than the paced rows: the Job "
        f"controller creates pods at its API client's rate (kube-controller-manager `--kube-api-qps`, 20/s by "
        f"default).")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--bin", default=str(cwtest.cwcreds_bin()))
    parser.add_argument("--before-bin", help="a second binary, reported as `before` beside --bin")
    parser.add_argument("--attacks", action="store_true",
                        help="add silent connections, large bodies and drip rows (about 2 more minutes)")
    args = parser.parse_args()
    raise_descriptor_limit(SILENT + DRIPPERS + 256)

    with tempfile.TemporaryDirectory(prefix="cwcreds-webhook-bench-") as tmp:
        root = Path(tmp)
        pki = cwtest.Pki(root / "pki")
        binaries = ([("before", args.before_bin), ("after", args.bin)] if args.before_bin
                    else [("this binary", args.bin)])
        results = measure(binaries, pki, root, args)
    sys.stdout.write(render(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
