"""Floods of local clients: 1,000 idle connections, and 10,000 requests over
256 connections while tokens rotate and keys renew.

What must hold: the sidecar neither crashes nor stalls, a normal client
keeps getting answers, authorised callers see zero non-200 answers under
load, and every connection's file descriptor is given back.

Speed and size are figures, not assertions: latencies, RSS (from
/proc/PID/status), threads and descriptors are printed for the notes, and
bench/ measures the footprint and latency of the build the image ships. A
machine shared with other work may be slow; the tests only assert what must
hold at any speed.
"""

import http.client
import json
import os
import resource
import select
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

from hostile_world import HostileWorld, Sampler, proc_status  # noqa: E402
from itest import await_condition, socket_inodes, to_epoch  # noqa: E402

IDLE_CONNECTIONS = 1000
HOLD_SECONDS = 6
# A normal client's wait for an answer: an answer must come, and a generous
# limit keeps a stall from hanging the test. Latency is printed, not judged.
ANSWER_WAIT = 10
LOAD_REQUESTS = 10_000
LOAD_CONNECTIONS = 256
ROTATE_EVERY = 3.0
LOAD_LIFETIME = 8   # keys renewed every ~2 s during the load
LOAD_TIME_LIMIT = 90


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def connection_sockets(pid, port):
    """How many of the process's sockets are accepted connections on `port`."""
    inodes = socket_inodes(pid)
    # A set: /proc/net/tcp is read in chunks and may list a socket twice under churn.
    connected = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            state, inode = parts[3], parts[9]
            if inode in inodes and local_port == port and state != "0A":  # 0A: LISTEN
                connected.add(inode)
    return len(connected)


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ConnectionFlood(HostileWorld):
    def test_1000_idle_connections_do_not_starve_a_normal_client(self):
        limit = raise_fd_limit(IDLE_CONNECTIONS * 2 + 512)
        if limit < IDLE_CONNECTIONS + 256:
            self.skipTest("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (limit, IDLE_CONNECTIONS))
        sc = self.start()  # --max-connections 1024 (default) > IDLE_CONNECTIONS + the normal client
        pid, port = self.pid, sc.port
        # The readiness probe's connection closes just after its answer is
        # sent: await the empty baseline rather than race that close.
        await_condition(lambda: connection_sockets(pid, port) == 0, timeout=5,
                        what="the readiness probe's connection to close")
        base_fds, base_status = fd_count(pid), proc_status(pid)

        idle = []
        reopened = [0]
        stop = threading.Event()
        lock = threading.Lock()

        def open_idle():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            return s

        def keeper():
            """Keep IDLE_CONNECTIONS open, reopening any the sidecar closes
            (it keeps idle ones 60 s, so none should need it)."""
            while not stop.is_set():
                with lock:
                    current = list(idle)
                readable = []
                for start in range(0, len(current), 500):
                    r, _, _ = select.select(current[start:start + 500], [], [], 0)
                    readable += r
                for s in readable:
                    try:
                        data = s.recv(1)
                    except OSError:
                        data = b""
                    if data:
                        continue
                    s.close()
                    with lock:
                        idle.remove(s)
                    try:
                        replacement = open_idle()
                    except OSError:
                        continue
                    with lock:
                        idle.append(replacement)
                        reopened[0] += 1
                stop.wait(0.05)

        latencies = []
        statuses = []
        with Sampler(pid) as sampler:
            for _ in range(IDLE_CONNECTIONS):
                idle.append(open_idle())
            keeper_thread = threading.Thread(target=keeper, daemon=True)
            keeper_thread.start()
            try:
                held_peak = 0
                end = time.monotonic() + HOLD_SECONDS
                while time.monotonic() < end:
                    held_peak = max(held_peak, connection_sockets(pid, port))
                    started = time.perf_counter()
                    try:
                        resp = sc.get("/v1/credentials", token=self.token, timeout=ANSWER_WAIT)
                        statuses.append(resp.status)
                    except OSError as exc:
                        statuses.append(repr(exc))
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.05)
            finally:
                stop.set()
                keeper_thread.join(5)
                with lock:
                    for s in idle:
                        s.close()
                    idle.clear()
        # Every connection given back: no accepted socket left, descriptors at the baseline.
        await_condition(lambda: connection_sockets(pid, port) == 0, timeout=10,
                        what="the sidecar to close every client connection")
        after_fds = await_condition(lambda: (lambda n: n if n <= base_fds + 1 else None)(fd_count(pid)),
                                    timeout=10, what="descriptors back to the baseline")
        after_status = proc_status(pid)
        lat = sorted(latencies)
        sys.stderr.write(
            "\n%d idle connections held %ds (reopened %d; up to %d accepted at once): "
            "normal client %d requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms; sidecar fds %d -> %d, "
            "threads %d -> peak %d -> %d, RSS %.1f MiB -> peak %.1f MiB (VmHWM %.1f)\n"
            % (IDLE_CONNECTIONS, HOLD_SECONDS, reopened[0], held_peak, len(lat), 1000 * lat[len(lat) // 2],
               1000 * lat[int(len(lat) * 0.99)], 1000 * lat[-1], base_fds, after_fds, base_status["Threads"],
               sampler.peak_threads, after_status["Threads"], base_status["VmRSS"], sampler.peak_rss,
               after_status["VmHWM"]))
        self.assertTrue(statuses and all(s == 200 for s in statuses), statuses)
        self.assertGreaterEqual(held_peak, IDLE_CONNECTIONS * 0.9, "the idle connections were not accepted")
        self.assertLessEqual(after_fds, base_fds + 1)
        self.assert_still_serving()

    def test_10000_requests_over_256_connections_while_tokens_rotate_and_keys_renew(self):
        raise_fd_limit(LOAD_CONNECTIONS * 2 + 512)
        sc = self.start(lifetime=LOAD_LIFETIME)
        pid, port = self.pid, sc.port
        world = self.world
        base_fds = fd_count(pid)
        tokens = [self.token]          # in write order
        lock = threading.Lock()
        done = threading.Event()
        counts = {"ok": 0, "stale_403": 0, "reconnects": 0}
        failures = []
        rotations = [0]

        def current_token():
            for _ in range(100):
                try:
                    return world.tokdir.path.read_text()
                except FileNotFoundError:  # read between the ..data swap and the old dir's removal
                    time.sleep(0.001)
            raise AssertionError("token file unreadable for 100 tries")

        def enough():
            with lock:
                return counts["ok"] + counts["stale_403"] >= LOAD_REQUESTS
        renewed_before = len(world.emu.successful_exchanges())

        def load_done():
            return enough() and rotations[0] >= 2 and len(world.emu.successful_exchanges()) - renewed_before >= 1

        def client(i):
            conn = None
            deadline = time.monotonic() + LOAD_TIME_LIMIT
            while not done.is_set() and time.monotonic() < deadline:
                token = current_token()
                for attempt in (0, 1):
                    fresh = conn is None
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    try:
                        conn.request("GET", "/v1/credentials", headers={"Authorization": token})
                        resp = conn.getresponse()
                        body = resp.read()
                        break
                    except (OSError, http.client.HTTPException) as exc:
                        conn.close()
                        conn = None
                        if fresh or attempt == 1:
                            with lock:
                                failures.append("client %d: %r" % (i, exc))
                            resp = None
                            break
                        # The sidecar closed the keep-alive connection: reconnect, as SDKs do.
                        with lock:
                            counts["reconnects"] += 1
                if resp is None:
                    continue
                with lock:
                    if resp.status == 200:
                        data = json.loads(body)
                        if to_epoch(data["Expiration"]) <= time.time():
                            failures.append("client %d: expired key served" % i)
                        counts["ok"] += 1
                    else:
                        index = tokens.index(token) if token in tokens else -1
                        if resp.status == 403 and index <= len(tokens) - 3:
                            counts["stale_403"] += 1  # two rotations old: not an authorised caller any more
                        else:
                            failures.append("client %d: %d %r (token %d of %d)"
                                            % (i, resp.status, body[:200], index, len(tokens)))
                if load_done():
                    done.set()
            if conn is not None:
                conn.close()

        def rotator():
            while not done.wait(ROTATE_EVERY):
                token = world.mint()
                with lock:
                    tokens.append(token)
                world.tokdir.write(token)
                rotations[0] += 1

        started = time.monotonic()
        with Sampler(pid) as sampler:
            threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(LOAD_CONNECTIONS)]
            rotate = threading.Thread(target=rotator, daemon=True)
            rotate.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, started + LOAD_TIME_LIMIT + 15 - time.monotonic()))
            done.set()
            rotate.join(10)
        took = time.monotonic() - started
        stuck = sum(t.is_alive() for t in threads)
        renewals = len(world.emu.successful_exchanges()) - renewed_before

        await_condition(lambda: connection_sockets(pid, port) == 0, timeout=10,
                        what="the sidecar to close every client connection")
        after_fds = await_condition(lambda: (lambda n: n if n <= base_fds + 1 else None)(fd_count(pid)),
                                    timeout=10, what="descriptors back to the baseline")
        total = counts["ok"] + counts["stale_403"]
        sys.stderr.write(
            "\nload: %d requests over %d keep-alive connections in %.1fs (%.0f/s): 200=%d, 403 for a token "
            ">=2 rotations old=%d, failures=%d, reconnects=%d; %d token rotations, "
            "%d key renewals meanwhile; sidecar peak RSS %.1f MiB, peak threads %d, fds %d -> %d\n"
            % (total, LOAD_CONNECTIONS, took, total / took, counts["ok"], counts["stale_403"], len(failures),
               counts["reconnects"], rotations[0], renewals, sampler.peak_rss, sampler.peak_threads,
               base_fds, after_fds))
        self.assertEqual(failures[:20], [])
        self.assertEqual(stuck, 0)
        self.assertGreaterEqual(total, LOAD_REQUESTS)
        self.assertGreaterEqual(rotations[0], 2, "no token rotation happened during the load")
        self.assertGreaterEqual(renewals, 1, "no key renewal happened during the load")
        self.assertLessEqual(after_fds, base_fds + 1)
        self.assertIsNone(sc.returncode)
        data = self.assertCredentials(sc.get("/v1/credentials", token=tokens[-1]))
        self.assertGreater(to_epoch(data["Expiration"]), time.time())


if __name__ == "__main__":
    unittest.main()
