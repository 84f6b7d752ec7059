"""What the benchmark reads from /proc: a process's memory, threads, CPU time and children.

`Sampler` watches one process while a load runs against it: peak resident set
and thread count every 50 ms, and the CPU seconds it used meanwhile.
bench/webhook_bench.py uses `proc_status` and `proc_cpu_seconds` too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Optional


TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict:
    """VmRSS and VmHWM in MiB, and Threads, from /proc/PID/status."""
    fields: dict = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            fields[key] = int(value)
    return fields


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of PID (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def child_pids(pid: int) -> list:
    """Direct children of PID (nginx's worker), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


class Sampler:
    """While active: peak VmRSS and thread count of PID every 50 ms, and its CPU seconds used."""

    def __init__(self, pid: Optional[int], interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.peak_rss: Optional[float] = None
        self.peak_threads: Optional[int] = None
        self.cpu_seconds: Optional[float] = None
        self._cpu_before: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _sample(self) -> bool:
        try:
            status = proc_status(self.pid)
        except (OSError, ValueError):
            return False
        self.peak_rss = max(self.peak_rss or 0.0, status.get("VmRSS", 0.0))
        self.peak_threads = max(self.peak_threads or 0, status.get("Threads", 0))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and self._sample():
            pass

    def __enter__(self) -> "Sampler":
        if self.pid is not None:
            with contextlib.suppress(OSError, ValueError):
                self._cpu_before = proc_cpu_seconds(self.pid)
            self._sample()
            self._thread = threading.Thread(target=self._run, name=f"sampler-{self.pid}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._cpu_before is not None:
            with contextlib.suppress(OSError, ValueError):
                self.cpu_seconds = proc_cpu_seconds(self.pid) - self._cpu_before
