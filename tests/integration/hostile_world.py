"""What the hostile-client tests share: one healthy sidecar to throw things at, and /proc readings of it.

`HostileWorld` starts the sidecar and, after whatever a test threw at it,
checks that a normal client is still served and that no answer carried a
secret. `Sampler` records the sidecar's peak resident set and thread count
meanwhile: figures for the notes, not assertions. Used by
test_hostile_clients.py (bad requests) and test_hostile_load.py (floods).
"""

import threading
from pathlib import Path

import itest
from itest import rec


def proc_status(pid):
    fields = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024.0  # MiB
        elif key == "Threads":
            fields[key] = int(value)
    return fields


class Sampler:
    """Peak RSS and threads of a process, sampled every 50 ms in the background."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_rss = 0.0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self._sample()

    def _sample(self):
        try:
            now = proc_status(self.pid)
        except OSError:
            return
        self.peak_rss = max(self.peak_rss, now["VmRSS"])
        self.peak_threads = max(self.peak_threads, now["Threads"])

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self._sample()



class HostileWorld(itest.TestCase):
    """One healthy sidecar; each test throws something at it, then checks a
    normal client is still served and no secret leaked."""

    def start(self, lifetime=900, extra=()):
        self.world = self.env(lifetime=lifetime)
        self.token = self.world.write_token()
        self.sc = self.world.sidecar(self.world.args(extra=list(extra), log_level="info"))
        self.pid = self.sc.pid
        return self.sc

    def secrets(self):
        values = [self.token]
        for r in self.world.emu.exchanges:
            for field in ("secret_access_key", "access_key_id"):
                if rec(r, field):
                    values.append(rec(r, field))
        return values

    def assert_no_secret(self, data, what):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        for secret in self.secrets():
            self.assertNotIn(secret, text, "%s: a secret in the answer" % what)

    def assert_still_serving(self):
        self.assertIsNone(self.sc.returncode, "the sidecar exited:\n" + self.sc.log_text()[-3000:])
        data = self.assertCredentials(self.sc.get("/v1/credentials", token=self.token))
        self.assertIn(data["AccessKeyId"], {rec(r, "access_key_id") for r in self.world.emu.successful_exchanges()})
        self.assertEqual(self.sc.get("/healthz").status, 200)
