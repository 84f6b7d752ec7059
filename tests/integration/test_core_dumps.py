#!/usr/bin/env python3
"""The sidecar holds the pod's token and live keys: no core dump may carry
them to the node's disk, and no other process of the same user may read its
memory. The kernel shows a non-dumpable process by handing its /proc entries
to root, which a test can see when the sidecar runs as an ordinary user.
"""

import os
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import cwtest  # noqa: E402

NOBODY = 65534


class CoreDumps(unittest.TestCase):
    def test_serve_running_as_an_ordinary_user_is_not_dumpable(self):
        proc = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             str(cwtest.cwcreds_bin()), "serve", "--listen", "127.0.0.1:0",
             "--token-file", "/nonexistent/token", "--endpoint", "https://127.0.0.1:9/x"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(cwtest.stop_process, proc)
        for line in proc.stderr:  # the process is up once it says where it listens
            if "listening" in line:
                break
        else:
            self.fail("cwcreds exited before listening")
        status = Path(f"/proc/{proc.pid}/status")
        self.assertEqual(self._field(status, "Uid").split()[0], str(NOBODY), "not running as the ordinary user")
        # A dumpable process owns its /proc entries; a non-dumpable one's belong to root.
        self.assertEqual(status.stat().st_uid, 0)
        self.assertEqual(Path(f"/proc/{proc.pid}/limits").read_text().count("Max core file size        0"), 1)

    @staticmethod
    def _field(path, name):
        for line in path.read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"{name} not in {path}")


if __name__ == "__main__":
    unittest.main()
