"""A real slow-HTTP attack tool against cwcreds: Debian's `slowhttptest` in
each of its modes (slow headers, slow body, slow read, range) against the
sidecar's main listener (`--max-connections 64`) and probe listener (64
slots), with more attacking connections than slots, and against the webhook
over TLS, which any pod that can reach its Service can attack the same way.

What must hold: a normal caller, asking every 0.1 s throughout each attack,
is answered every time (a credentials request with the token on the main
listener, /healthz on the probe listener, as the kubelet asks; an
AdmissionReview on the webhook, as the API server sends it, within its
timeoutSeconds); the target keeps running. How long each answer took and what
slowhttptest saw are printed as figures, not asserted: this machine may be
shared.
"""

import http.client
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

import itest  # noqa: E402
# Functions only: a TestCase imported here would run again with these tests.
from webhook_client import admit, pod, review, start_webhook  # noqa: E402

ATTACK_SECONDS = 5
ATTACK_CONNECTIONS = 200  # against 64 slots
# slowhttptest's flags per mode: -H slow headers (Slowloris), -B slow body
# (R-U-Dead-Yet), -X slow read (a tiny receive window, answers read 5 bytes a
# second, each request repeated 10 times on its connection), -R range.
MODES = {
    "slow headers": ["-H", "-i", "1"],
    "slow body": ["-B", "-i", "1", "-s", "8192"],
    "slow read": ["-X", "-k", "10", "-n", "1", "-w", "1", "-y", "64", "-z", "5"],
    "range": ["-R", "-a", "5", "-b", "2000"],
}
# The webhook's slow body goes where a body is read, as the API server sends
# it: to POST /mutate, declared JSON (a server may refuse another type before
# reading anything, which would make the attack moot).
WEBHOOK_SLOW_BODY = ["-t", "POST", "-f", "application/json"]


def ask(port, path, token):
    """One GET on a fresh connection, as an SDK's first call or a kubelet probe; the status or the error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Authorization": token} if token else {})
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException) as error:
        return repr(error)
    finally:
        conn.close()


def note(text):
    sys.stderr.write("  [figure] %s\n" % text)


class SlowHttpTest(itest.TestCase):

    def setUp(self):
        super().setUp()
        self.tool = shutil.which("slowhttptest")
        self.assertIsNotNone(self.tool, "slowhttptest is not installed (bash scripts/install-deps.sh installs it)")

    def attack(self, url, mode, extra):
        """Runs slowhttptest against `url` for ATTACK_SECONDS; returns its output."""
        command = [self.tool, *MODES[mode], *extra, "-c", str(ATTACK_CONNECTIONS), "-r", "200",
                   "-l", str(ATTACK_SECONDS), "-p", "3", "-u", url]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        try:
            output, _ = proc.communicate(timeout=ATTACK_SECONDS + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        return output

    def run_against(self, running, target, call):  # noqa: C901 - one loop per mode
        """Each mode in turn against `target(mode)`, which gives the URL and
        extra flags, while `call()` makes one normal request and returns its
        status (or the error); `running()` says whether the attacked process
        still runs."""
        for mode in MODES:
            url, extra = target(mode)
            results = []
            stop = threading.Event()

            def caller():
                while not stop.is_set():
                    started = time.monotonic()
                    status = call()
                    results.append((status, time.monotonic() - started))
                    stop.wait(0.1)

            thread = threading.Thread(target=caller, daemon=True)
            thread.start()
            try:
                output = self.attack(url, mode, extra)
            finally:
                stop.set()
                thread.join(10)
            statuses = [status for status, _ in results]
            latencies = sorted(seconds for _, seconds in results)
            output = re.sub(r"\x1b\[[0-9;]*m", "", output)
            connected = [int(n) for n in re.findall(r"connected:\s*(\d+)", output)]
            closed = [int(n) for n in re.findall(r"closed:\s*(\d+)", output)]
            available = sorted(set(re.findall(r"service available:\s*(\w+)", output)))
            ended = re.search(r"Exit status:\s*(.*)", output)
            note("%s on %s: %d of %d calls answered 200, p50 %.0f ms, max %.0f ms; slowhttptest: "
                 "at most %s connected at once, %s closed by the end, service available %s, \"%s\""
                 % (mode, url, statuses.count(200), len(statuses),
                    1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
                    1000 * latencies[-1] if latencies else float("nan"),
                    max(connected, default="?"), closed[-1] if closed else "?",
                    "/".join(available) or "?", ended.group(1).strip() if ended else "?"))
            # Every mode is reported, even after one fails.
            with self.subTest(mode=mode):
                self.assertTrue(statuses, "no call was made during %s" % mode)
                self.assertEqual(statuses.count(200), len(statuses), "%s: %s" % (mode, statuses))
                self.assertTrue(running(), "the target exited during %s" % mode)

    def test_main_listener_under_every_mode(self):
        world = self.env()
        token = world.write_token()
        sc = world.sidecar(world.args(extra=["--max-connections", "64"], log_level="info"))
        url = "http://127.0.0.1:%d/v1/credentials" % sc.port
        self.run_against(lambda: sc.returncode is None, lambda mode: (url, []),
                         lambda: ask(sc.port, "/v1/credentials", token))

    def test_probe_listener_under_every_mode(self):
        world = self.env()
        world.write_token()
        sc = world.sidecar(world.args(extra=["--probe-listen", "127.0.0.1:0"], log_level="info"))
        line = sc.wait_for_log(r"probes listening")
        probe_port = int(re.search(r"probe_address=127\.0\.0\.1:(\d+)", line).group(1))
        url = "http://127.0.0.1:%d/healthz" % probe_port
        self.run_against(lambda: sc.returncode is None, lambda mode: (url, []),
                         lambda: ask(probe_port, "/healthz", None))

    def test_webhook_under_every_mode(self):
        tmp = cwtest.TempDir()
        self.addCleanup(tmp.cleanup)
        pki = cwtest.Pki(tmp.path / "pki")
        proc, port, _ = start_webhook(self, pki.cert_file, pki.key_file)
        body = review(pod())

        def target(mode):
            if mode == "slow body":
                return "https://127.0.0.1:%d/mutate" % port, WEBHOOK_SLOW_BODY
            # Range applies too: the webhook's answers are a few hundred
            # bytes, so there is nothing to amplify, but each request still
            # carries a 13 KiB head of 2,000 overlapping ranges that the
            # webhook must parse or ignore, from 200 connections at once.
            return "https://127.0.0.1:%d/healthz" % port, []

        def call():
            # A fresh TLS connection each time, the whole call within the API
            # server's timeoutSeconds, as a pod's admission needs.
            return admit(port, pki.ca_file, body)[0]

        self.run_against(lambda: proc.poll() is None, target, call)


if __name__ == "__main__":
    import unittest
    unittest.main()
