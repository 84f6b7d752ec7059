"""Hundreds of concurrent SDK clients, with and without keep-alive, all get
their credentials: nobody is refused, stalled or dropped."""

import http.client
import json
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402,F401

import itest  # noqa: E402
from itest import rec  # noqa: E402

CLIENTS = 256
REQUESTS_PER_CLIENT = 20
# A stalled client shows up as a failure, not a hang.
CLIENT_TIMEOUT = 10


def run_clients(target):
    failures = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS, timeout=30)

    def worker(i):
        try:
            barrier.wait()
            target(i)
        except Exception as exc:
            with lock:
                failures.append("client %d: %r" % (i, exc))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    return failures, stuck


class ManyClients(itest.TestCase):
    def setUp(self):
        super().setUp()
        self.world = self.env()
        self.token = self.world.write_token()
        self.sc = self.world.sidecar(self.world.args(log_level="info"))
        self.key = rec(self.world.emu.successful_exchanges()[-1], "access_key_id")

    def check(self, resp):
        body = resp.read()
        if resp.status != 200:
            raise AssertionError("status %d: %r" % (resp.status, body[:200]))
        if json.loads(body)["AccessKeyId"] != self.key:
            raise AssertionError("wrong key served")

    def test_keep_alive_clients_reuse_their_connection(self):
        headers = {"Authorization": self.token}

        def client(i):
            conn = http.client.HTTPConnection("127.0.0.1", self.sc.port, timeout=CLIENT_TIMEOUT)
            n_done = [0]
            try:
                sock = None
                for n in range(REQUESTS_PER_CLIENT):
                    conn.request("GET", "/v1/credentials", headers=headers)
                    self.check(conn.getresponse())
                    if n == 0:
                        sock = conn.sock
                    elif conn.sock is None or conn.sock is not sock:
                        raise AssertionError("connection not kept alive after request %d" % n)
                    n_done[0] = n + 1
            except Exception as exc:
                raise AssertionError("after %d good requests: %r" % (n_done[0], exc)) from exc
            finally:
                conn.close()

        failures, stuck = run_clients(client)
        self.assertEqual(stuck, 0, "clients still waiting")
        self.assertEqual(failures[:10], [], "%d of %d clients failed" % (len(failures), CLIENTS))
        self.assertEqual(len(self.world.emu.successful_exchanges()), 1)

    def test_connection_close_clients(self):
        headers = {"Authorization": self.token, "Connection": "close"}

        def client(i):
            for _ in range(REQUESTS_PER_CLIENT):
                conn = http.client.HTTPConnection("127.0.0.1", self.sc.port, timeout=CLIENT_TIMEOUT)
                try:
                    conn.request("GET", "/v1/credentials", headers=headers)
                    self.check(conn.getresponse())
                finally:
                    conn.close()

        failures, stuck = run_clients(client)
        self.assertEqual(stuck, 0, "clients still waiting")
        self.assertEqual(failures[:10], [], "%d of %d clients failed" % (len(failures), CLIENTS))
        self.assertEqual(len(self.world.emu.successful_exchanges()), 1)


if __name__ == "__main__":
    unittest.main()
