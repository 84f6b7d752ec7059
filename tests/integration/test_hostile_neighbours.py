"""Neighbours that take resources rather than send bad requests: a process
that uses up the sidecar's descriptors, sockets camping on every connection
slot (main and probe listener), clients that pipeline and never read, 2,000
requests in one write, and a token path that is not UTF-8.

What must hold: a normal caller is still answered (credentials, probes), the
sidecar does not spin, its memory stays under the container's memory request,
and it never crashes. CPU time and RSS figures are printed for the notes;
only the RSS bound that docs/performance.md states is asserted.
"""

import os
import re
import socket
import stat
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import await_condition, sanitized, socket_inodes  # noqa: E402

# docs/performance.md, "Resources": the resident set stays under the sidecar
# container's memory request in manifests/ (24Mi). Asserted here because it is
# the bound a user relies on when setting that request; before buffers were
# bounded, these 100 clients took the sidecar to ~40 MiB.
RSS_BOUND_MIB = 24
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    text = Path("/proc/%d/stat" % pid).read_text()
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mib(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def note(text):
    sys.stderr.write("  [figure] %s\n" % text)


def connect(port, timeout=5.0):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_answers(sock, count, timeout=5.0):
    """Reads until `count` answers (by Content-Length) or EOF/timeout; returns them."""
    sock.settimeout(timeout)
    data = b""
    answers = []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end]
            match = re.search(rb"(?i)content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            if len(data) >= head_end + 4 + length:
                answers.append(data[:head_end + 4 + length])
                data = data[head_end + 4 + length:]
                continue
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        data += chunk
    return answers


def ask(port, path, token=None, keep_alive=True):
    """One request on a fresh connection; returns (socket, status or None)."""
    sock = connect(port)
    headers = "Host: 127.0.0.1\r\n"
    if token is not None:
        headers += "Authorization: %s\r\n" % token
    if not keep_alive:
        headers += "Connection: close\r\n"
    sock.sendall(("GET %s HTTP/1.1\r\n%s\r\n" % (path, headers)).encode())
    answers = read_answers(sock, 1)
    status = int(answers[0].split(b" ", 2)[1]) if answers else None
    return sock, status


class Neighbours(itest.TestCase):

    def start(self, extra=(), bin=None, token_file=None):
        if getattr(self, "world", None) is None:
            self.world = self.env()
        self.token = self.world.write_token()
        args = self.world.args(extra=list(extra), log_level="info", token_file=token_file)
        if bin is None:
            self.sc = self.world.sidecar(args)
        else:
            self.sc = cwtest.Sidecar(args, bin=bin)
            self.world.sidecars.append(self.sc)
            self.addCleanup(itest.stop_quietly, self.sc)
            self.sc.start(wait_ready=True)
        return self.sc

    def hold(self, sockets):
        self.addCleanup(lambda: [s.close() for s in sockets])
        return sockets

    def assert_served(self, port, what):
        sock, status = ask(port, "/v1/credentials", token=self.token, keep_alive=False)
        sock.close()
        self.assertEqual(status, 200, "%s: a normal caller was not answered" % what)

    # -- descriptors --------------------------------------------------------

    def test_a_64_descriptor_limit_lowers_the_cap_and_callers_are_still_served(self):
        # `ulimit -n 64` (soft and hard) before exec, as a tight container would.
        wrapper = self.world_dir() / "ulimit-64.sh"
        wrapper.write_text('#!/bin/sh\nulimit -n 64 || exit 99\nexec "%s" "$@"\n' % cwtest.cwcreds_bin())
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        sc = self.start(bin=wrapper)
        line = sc.wait_for_log(r"--max-connections lowered to fit the descriptor limit")
        # What is left once 32 descriptors and each loop's own are kept aside.
        self.assertTrue(1 <= int(re.search(r"max_connections=(\d+)", line).group(1)) <= 32, line)
        self.assertRegex(line, r"descriptor_limit=64\b")
        # 100 keep-alive callers that asked once: more than the descriptors allow.
        campers = self.hold([])
        for index in range(100):
            sock, status = ask(sc.port, "/healthz")
            campers.append(sock)
            self.assertEqual(status, 200, "caller #%d was not answered" % index)
        before = cpu_seconds(sc.pid)
        self.assert_served(sc.port, "with 100 connections held under a 64-descriptor limit")
        time.sleep(2)  # a window for the figure only: a spinning loop burns it all
        note("64 descriptors, 100 held connections: CPU %.2f s in 2 s" % (cpu_seconds(sc.pid) - before))
        self.assertIsNone(sc.returncode)

    def test_every_listener_full_under_400_descriptors_leaves_the_exchange_its_sockets(self):
        # `ulimit -n 400` with IMDS on a listener of its own; keys renewed every ~2 s.
        wrapper = self.world_dir() / "ulimit-400.sh"
        wrapper.write_text('#!/bin/sh\nulimit -n 400 || exit 99\nexec "%s" "$@"\n' % cwtest.cwcreds_bin())
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        self.world = self.env(lifetime=8)
        sc = self.start(extra=["--imds-listen", "127.0.0.1:0"], bin=wrapper)
        line = sc.wait_for_log(r"--max-connections lowered to fit the descriptor limit")
        caps = {name: int(re.search(name + r"=(\d+)", line).group(1))
                for name in ("max_connections", "imds_connections")}
        self.assertLess(caps["imds_connections"], 256, line)
        imds_port = int(re.search(r"imds_at=127\.0\.0\.1:(\d+)", sc.wait_for_log(r"imds_at=")).group(1))
        renewals_before = len(re.findall(r"exchange ok", sc.log_text()))
        # More connections than both listeners' caps, held silent (each
        # counts until the 10 s head timeout): the caps, not the descriptor
        # limit, stop them.
        self.hold([connect(imds_port) for _ in range(300)])
        self.hold([connect(sc.port) for _ in range(400)])
        await_condition(lambda: len(re.findall(r"exchange ok", sc.log_text())) >= renewals_before + 2,
                        timeout=20, what="two renewals while every listener is full")
        note("ulimit -n 400, caps %s, 300 IMDS + 400 main connections held: %d renewals, 0 failed"
             % (caps, len(re.findall(r"exchange ok", sc.log_text())) - renewals_before))
        self.assertNotRegex(sc.log_text(), r"exchange failed")
        self.assertNotRegex(sc.log_text(), r"cannot accept connections")
        self.assert_served(sc.port, "with every listener full")

    def test_when_descriptors_run_out_accepting_pauses_and_resumes(self):
        sc = self.start()
        # The limit drops to the lowest descriptor number free: the next
        # accept4 fails with EMFILE while the connection cap (1024) is far
        # away, and no connection is held that could give its descriptor up.
        import resource  # noqa: PLC0415 - only this test needs it
        saved = resource.prlimit(sc.pid, resource.RLIMIT_NOFILE)
        in_use = {int(fd) for fd in os.listdir("/proc/%d/fd" % sc.pid)}
        lowest_free = min(set(range(len(in_use) + 1)) - in_use)
        resource.prlimit(sc.pid, resource.RLIMIT_NOFILE, (lowest_free, saved[1]))
        waiting = self.hold([connect(sc.port) for _ in range(10)])
        for sock in waiting:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sc.wait_for_log(r"cannot accept connections .*reason=\"?Too many open files")
        before = cpu_seconds(sc.pid)
        time.sleep(2)  # a window for the figure only: a loop woken at once burns it all
        note("EMFILE with 10 connections waiting: CPU %.2f s in 2 s" % (cpu_seconds(sc.pid) - before))
        # Once per episode, not per wake-up: between two such lines accepting
        # resumed. (A descriptor the process frees meanwhile, a finished
        # exchange's socket, lets one caller in; from then on the idle one
        # gives its descriptor to the next, each a short episode of its own.)
        events = re.findall(r"cannot accept connections|accepting connections again", sc.log_text())
        self.assertEqual(events[0], "cannot accept connections")
        self.assertFalse(any(a == b == "cannot accept connections" for a, b in zip(events, events[1:])),
                         "logged per wake-up, not once per episode: %s" % events)
        # Descriptors come back: the waiting connections are answered.
        resource.prlimit(sc.pid, resource.RLIMIT_NOFILE, saved)
        for index, sock in enumerate(waiting):
            answers = read_answers(sock, 1)
            self.assertTrue(answers and answers[0].startswith(b"HTTP/1.1 200 "), "waiting caller #%d" % index)
        sc.wait_for_log(r"accepting connections again")

    def test_when_descriptors_run_out_idle_connections_make_room(self):
        sc = self.start()
        import resource  # noqa: PLC0415 - only this test needs it
        resource.prlimit(sc.pid, resource.RLIMIT_NOFILE, (64, 64))
        # Keep-alive callers that asked once, more than the descriptors allow:
        # each newcomer takes the descriptor of the one idle longest.
        held = self.hold([])
        for index in range(100):
            sock, status = ask(sc.port, "/healthz")
            held.append(sock)
            self.assertEqual(status, 200, "caller #%d was not answered" % index)
        self.assert_served(sc.port, "with 100 connections held under a 64-descriptor limit")

    # -- slot camping -------------------------------------------------------

    def test_campers_on_every_slot_do_not_lock_out_a_new_caller(self):
        sc = self.start(extra=["--max-connections", "16"])
        campers = self.hold([ask(sc.port, "/healthz")[0] for _ in range(16)])
        silent = self.hold([connect(sc.port) for _ in range(16)])
        self.assertEqual(len(campers) + len(silent), 32)
        for attempt in range(5):
            self.assert_served(sc.port, "caller #%d with every slot camped on" % attempt)

    def test_72_connections_on_half_sent_heads_do_not_lock_out_callers_or_probes(self):
        sc = self.start(extra=["--max-connections", "64", "--probe-listen", "127.0.0.1:0"])
        line = sc.wait_for_log(r"probes listening")
        probe_port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))
        figures = []
        for name, port, path, token in (("main listener", sc.port, "/v1/credentials", self.token),
                                        ("probe listener", probe_port, "/healthz", None)):
            campers = self.hold([])
            for _ in range(72):
                sock = connect(port)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                campers.append(sock)
            answered, resets, latencies = 0, 0, []
            for index in range(30):
                # Camping goes on: every third round, a camper finishes its
                # head (an unauthenticated /healthz) and starts another, and
                # a camper the sidecar closed is replaced.
                if index % 3 == 0:
                    for at, sock in enumerate(campers):
                        try:
                            sock.sendall(b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n")
                        except OSError:
                            sock.close()
                            campers[at] = connect(port)
                            campers[at].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                started = time.monotonic()
                status = None
                for _attempt in range(2):  # an SDK retries a reset connection once, at once
                    try:
                        sock, status = ask(port, path, token=token, keep_alive=False)
                        sock.close()
                    except OSError:
                        status = None
                    if status is not None:
                        break
                    resets += 1
                latencies.append(time.monotonic() - started)
                answered += status == 200
            latencies.sort()
            figures.append("%s: %d of 30 answered, %d resets retried, p50 %.0f ms, max %.0f ms"
                           % (name, answered, resets, 1000 * latencies[15], 1000 * latencies[-1]))
            note("--max-connections 64, 72 campers on half-sent heads, " + figures[-1])
            # The promise is 90 %: a caller whose connection arrives while
            # 72 campers race it for the slot the oldest head frees can lose
            # it, retried or not (seen once in 30 under TSan's slowdown), and
            # a kubelet probe tolerates that (failureThreshold 6 and 60).
            # Before the eviction of half-sent heads: 0 of 30.
            self.assertGreaterEqual(answered, 27, figures[-1])
            for sock in campers:
                sock.close()
        self.assertIsNone(sc.returncode)

    def test_64_campers_on_the_probe_listener_do_not_fail_probes(self):
        sc = self.start(extra=["--probe-listen", "127.0.0.1:0"])
        line = sc.wait_for_log(r"probes listening")
        probe_port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))
        # Each asks /healthz once and keeps its socket, as a hostile pod would.
        campers = []
        for _ in range(64):
            sock, status = ask(probe_port, "/healthz")
            self.assertEqual(status, 200)
            campers.append(sock)
        self.hold(campers)
        silent = self.hold([connect(probe_port) for _ in range(64)])
        self.assertEqual(len(silent), 64)
        failures = 0
        for _ in range(20):  # kubelet: a new connection per probe
            sock, status = ask(probe_port, "/healthz")
            sock.close()
            failures += status != 200
        note("probe listener, 64 camping + 64 silent sockets: %d of 20 probes failed" % failures)
        self.assertEqual(failures, 0)

    # -- buffers ------------------------------------------------------------

    def test_clients_that_pipeline_and_never_read_stay_within_the_memory_request(self):
        sc = self.start()
        baseline = rss_mib(sc.pid)
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 70
        hogs = []
        for _ in range(100):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", sc.port))
            sock.sendall(request)
            hogs.append(sock)
        self.hold(hogs)
        # The sidecar answers until each hog's socket is full; wait for its CPU to settle.
        previous = -1.0
        def settled():
            nonlocal previous
            now = cpu_seconds(sc.pid)
            done = now == previous
            previous = now
            return done
        await_condition(settled, timeout=30, interval=0.3, what="the sidecar to stop answering the hogs")
        peak = rss_mib(sc.pid)
        note("100 clients pipelining 70 GET /metrics, never reading: RSS %.1f -> %.1f MiB" % (baseline, peak))
        self.assert_served(sc.port, "with 100 clients that never read")
        if not sanitized(sc.pid):
            self.assertLess(peak, RSS_BOUND_MIB)

    def test_2000_requests_in_one_write_are_all_answered(self):
        sc = self.start()
        sock = connect(sc.port)
        self.hold([sock])
        # Short requests, longer answers (404 JSON): the answers to what one
        # read brings in are more than the sidecar queues for one client.
        sock.sendall(b"GET /x HTTP/1.1\r\n\r\n" * 2000)
        answers = read_answers(sock, 2000)
        note("2,000 pipelined GET /x: %d answers" % len(answers))
        self.assertEqual(len(answers), 2000)
        self.assertTrue(all(answer.startswith(b"HTTP/1.1 404 ") for answer in answers))

    # -- a path that is not UTF-8 -------------------------------------------

    def test_a_token_path_that_is_not_utf8_is_shown_not_fatal(self):
        self.world = self.env()
        self.token = self.world.write_token()
        # Bytes that are not UTF-8 in a directory name (os.fsdecode keeps them).
        odd = self.world.tmp / os.fsdecode(b"tokens-\xff\xfe")
        odd.mkdir()
        token_file = odd / "oidc-token"
        token_file.write_text(self.token)
        sc = self.world.sidecar(self.world.args(token_file=token_file, log_level="info"))
        response = sc.get("/v1/status", token=self.token)
        self.assertEqual(response.status, 200, response.body)
        data = itest.body_json(response)
        self.assertIn("tokens-\ufffd\ufffd", data["token"]["file"])
        self.assertEqual(sc.get("/healthz").status, 200)
        self.assertIsNone(sc.returncode)

    def world_dir(self):
        if getattr(self, "world", None) is None:
            self.world = self.env()
        return self.world.tmp


if __name__ == "__main__":
    itest.main()
