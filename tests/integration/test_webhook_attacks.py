"""`cwcreds webhook` against hostile clients any pod that reaches its Service
could be: bodies chunked, compressed or large and many, silent connections,
and connections that drip a head, a ClientHello or a body a byte a second.
What must hold: memory bounded, no thread per connection, and every real
review answered within the API server's timeout."""

import gzip
import socket
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from itest import sanitized  # noqa: E402
from webhook_client import (LARGE_BODY, WebhookCase, admit, client_hello, has_patch, percentile,  # noqa: E402
                            pod, review, summary)


class WebhookAttacks(WebhookCase):
    def test_chunked_and_compressed_bodies_are_refused_before_they_are_read(self):
        # 40 MiB sent chunked: refused on the head, the body never read.
        with self.raw_tls() as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (1 << 20, b"{" * (1 << 20))
            sent = 0
            try:
                for _ in range(40):
                    tls.sendall(chunk)
                    sent += 1
            except OSError:
                pass  # the webhook answered and closed
            answer = self.read_until_closed(tls)
        self.assertTrue(answer.startswith("HTTP/1.1 411"), answer)
        self.assertIn("chunked", answer)
        # 40 KiB of gzip that would inflate to 40 MiB.
        bomb = gzip.compress(b" " * (40 << 20))
        with self.raw_tls() as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)
            answer = self.read_until_closed(tls)
        self.assertTrue(answer.startswith("HTTP/1.1 415"), answer)
        peak = self.peak_rss_mib()
        sys.stderr.write("\n  [figure] 40 MiB chunked (%d MiB sent before the refusal) and a %d KiB gzip "
                         "bomb: webhook peak RSS %.1f MiB\n" % (sent, len(bomb) >> 10, peak))
        status, _ = self.post(review(pod()))
        self.assertEqual(status, 200)
        self.assertIn("admission refused reason=\"a compressed body is refused\"", "".join(self.log))
        if not sanitized(self.proc.pid):
            self.assertLess(peak, 64, "the webhook's peak memory (docs/performance.md: under 64 MiB whatever bodies arrive)")

    def test_a_flood_of_silent_connections_takes_no_thread_each_and_passes(self):
        # Counted against the process at rest, its pool started (it has
        # answered): a sanitizer runtime adds threads of its own.
        self.assertEqual(self.post(review(pod()))[0], 200)
        at_rest = self.threads()
        # How long they take to open is a figure: a webhook that stops
        # accepting while its threads are busy leaves the kernel's backlog
        # full, and each further connection attempt is retried a second later.
        started = time.monotonic()
        silent = [socket.create_connection(("127.0.0.1", self.port), timeout=10) for _ in range(300)]
        opened = time.monotonic() - started
        try:
            # A real review gets its answer within the API server's timeout,
            # and no thread was added per connection.
            status, body, seconds = admit(self.port, self.both_cas, review(pod()))
            during = self.threads()
            sys.stderr.write("\n  [figure] 300 silent connections (opened in %.1f s): a review answered %s in "
                             "%.0f ms; webhook threads %d at rest, %d during the flood\n"
                             % (opened, status, 1000 * seconds, at_rest, during))
            self.assertEqual((status, has_patch(body)), (200, True))
            self.assertLessEqual(during, at_rest)
        finally:
            for sock in silent:
                sock.close()

    # -- connections that send a byte a second ----------------------------

    def test_128_drip_connections_do_not_delay_a_review(self):
        # A third each: a head, a TLS ClientHello and a body, each sent a byte
        # a second. Twice the old fixed pool's 64 threads: a server that gives
        # each connection a thread until it finishes has none left.
        hello = client_hello()
        kinds = ("slow head", "slow hello", "slow body")
        states = [{"kind": kinds[i % 3], "hello": hello, "dripped": 0, "closed": 0, "last error": None}
                  for i in range(128)]
        stop = threading.Event()
        threads = [threading.Thread(target=self.drip, args=(state["kind"], stop, state), daemon=True)
                   for state in states]

        def halt():
            stop.set()
            for thread in threads:
                thread.join(10)

        self.addCleanup(halt)
        for thread in threads:
            thread.start()
        # Reviews start once every attacker has dripped twice, past a
        # per-read timeout of a second or two. A server that serves only as
        # many TLS handshakes as it has threads never lets the rest get that
        # far: the reviews start after this bound all the same.
        deadline = time.monotonic() + 5
        while not all(s["dripped"] >= 2 for s in states) and time.monotonic() < deadline:
            time.sleep(0.05)
        in_place = sum(s["dripped"] >= 2 for s in states)

        # One after another, each on a fresh connection, as the API server
        # may; half a second apart, so that they span several seconds of the
        # attack, past any deadline of a few seconds on the drippers' requests
        # and the reconnections that follow.
        results = []
        for index in range(12):
            if index:
                stop.wait(0.5)
            status, body, seconds = admit(self.port, self.both_cas, review(pod()))
            results.append((status, has_patch(body), seconds))
            if status != 200:
                break  # the rest would wait out their 5 s the same way
        answered = [seconds for status, _, seconds in results if status == 200]
        sys.stderr.write(
            "\n  [figure] 128 drip connections (%s), %d dripping when the reviews began, %d closed by the "
            "webhook (and opened again) by the end: %d of %d reviews answered 200, p50 %.0f ms, max %.0f ms; "
            "first failure: %s\n"
            % (", ".join("%d %s" % (sum(s["kind"] == kind for s in states), kind) for kind in kinds),
               in_place, sum(s["closed"] for s in states), len(answered), len(results),
               1000 * percentile(answered, 0.5), 1000 * max(answered, default=float("nan")),
               next((status for status, _, _ in results if status != 200), "none")))
        self.assertEqual([(status, patched) for status, patched, _ in results], [(200, True)] * 12)
        self.assertIsNone(self.proc.poll(), "the webhook exited")

    # -- many large bodies at once ----------------------------------------

    def test_many_large_bodies_at_once_keep_memory_bounded(self):
        # 32 bodies just under the 3 MiB limit arrive together, 64 KiB at a
        # time: half never end (held open once all but the last piece is
        # sent), half end as garbage. A server that keeps each whole body as
        # it arrives needs about 100 MiB for them, near the container's
        # 128 MiB memory limit (manifests/webhook/deployment.yaml), where the
        # kernel kills the webhook and every labelled pod's admission fails;
        # 64 MiB leaves that limit a wide margin. Chunked and gzip bodies come
        # at the same time: refused on their heads, they must add nothing.
        bomb = gzip.compress(b" " * (40 << 20))
        piece = b"x" * (64 << 10)
        release = threading.Event()
        self.addCleanup(release.set)
        outcomes = {}

        def status_line(tls):
            try:
                return tls.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
            except OSError as error:
                return repr(error)

        def large(index):
            finish = index % 2 == 0
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n" % LARGE_BODY)
                    left = LARGE_BODY if finish else LARGE_BODY - len(piece)
                    while left > 0:
                        tls.sendall(piece[:left])
                        left -= min(left, len(piece))
                        time.sleep(0.02)  # the pace of the attack: the bodies overlap for about a second
                    if finish:
                        outcomes[index] = status_line(tls)
                    else:
                        outcomes[index] = "held"
                        release.wait(30)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        def chunked(index):
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n")
                    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"{" * (1 << 20))
                    try:
                        for _ in range(40):
                            tls.sendall(chunk)
                    except OSError:
                        pass  # the webhook answered and closed
                    outcomes[index] = status_line(tls)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        def gzipped(index):
            try:
                with self.raw_tls() as tls:
                    tls.settimeout(5)
                    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)
                    outcomes[index] = status_line(tls)
            except OSError as error:
                outcomes.setdefault(index, repr(error))

        senders = [(large, i) for i in range(32)] + [(chunked, 32), (chunked, 33), (gzipped, 34), (gzipped, 35)]
        threads = [threading.Thread(target=target, args=(index,), daemon=True) for target, index in senders]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(outcomes) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        release.set()
        for thread in threads:
            thread.join(10)

        status, body, _ = admit(self.port, self.both_cas, review(pod()))
        peak = self.peak_rss_mib()
        seen = [outcomes.get(i, "unfinished") for i in range(len(threads))]
        sys.stderr.write(
            "\n  [figure] 32 bodies of 3 MiB - 1 KiB at once (16 held open: %s; 16 ending in garbage: %s), "
            "2 x 40 MiB chunked (%s), 2 gzip bombs of %d KiB (%s): webhook peak RSS %.1f MiB\n"
            % (summary(seen[1:32:2]), summary(seen[0:32:2]), summary(seen[32:34]), len(bomb) >> 10,
               summary(seen[34:36]), peak))
        self.assertEqual((status, has_patch(body)), (200, True))
        self.assertIsNone(self.proc.poll(), "the webhook exited")
        if not sanitized(self.proc.pid):
            self.assertLess(peak, 64, "the webhook's peak memory, 32 large bodies at once")



if __name__ == "__main__":
    unittest.main()
