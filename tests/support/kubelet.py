"""Token files written the way kubelet's atomic writer writes a projected volume.

Each write makes a timestamped directory and swaps the `..data` symlink to it
by rename; the name the pod reads points through `..data`. A watcher that only
works on plain files fails on every real rotation, so the tests rotate tokens
exactly this way.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Optional


class KubeletTokenDir:
    """A projected-token volume directory, written the way kubelet writes it.

        <dir>/..2026_11_23_15_04_05.123456789/oidc-token   the real file, no newline
        <dir>/..data -> ..2026_11_23_15_04_05.123456789
        <dir>/oidc-token -> ..data/oidc-token               what the pod reads

    Each write creates a new timestamped directory, points `..data_tmp` at it,
    renames that over `..data` (the atomic step), then deletes the previous
    directory — so an inotify watch on the old real file dies on every rotation.
    """

    def __init__(self, directory, filename: str = "oidc-token"):
        if "/" in filename or filename.startswith(".."):
            raise ValueError(f"unsupported token file name {filename!r}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.filename = filename
        self.path = self.dir / filename
        self._lock = threading.Lock()

    @property
    def current_dir(self) -> Optional[Path]:
        """The timestamped directory `..data` points at, or None before the first write."""
        try:
            return self.dir / os.readlink(self.dir / "..data")
        except FileNotFoundError:
            return None

    def write(self, token) -> Path:
        """Publish a new token (str or bytes, written as is); returns the new timestamped dir."""
        data = token.encode("utf-8") if isinstance(token, str) else bytes(token)
        with self._lock:
            previous = self.current_dir
            ts_dir = self._make_timestamped_dir()
            fd = os.open(ts_dir / self.filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(ts_dir / self.filename, 0o644)  # independent of the umask, like kubelet

            tmp_link = self.dir / "..data_tmp"
            if os.path.lexists(tmp_link):  # left over from an interrupted write
                os.unlink(tmp_link)
            os.symlink(ts_dir.name, tmp_link)  # relative, as kubelet does
            os.rename(tmp_link, self.dir / "..data")

            if not os.path.lexists(self.path):
                os.symlink(f"..data/{self.filename}", self.path)
            if previous is not None and previous.name != ts_dir.name:
                shutil.rmtree(previous, ignore_errors=True)
            return ts_dir

    def remove(self) -> None:
        """Delete the user-visible symlink: the token disappears (the next write restores it)."""
        with self._lock:
            if os.path.lexists(self.path):
                os.unlink(self.path)

    def _make_timestamped_dir(self) -> Path:
        # Nanoseconds make names unique in practice; mkdir's EEXIST check makes
        # them unique for sure (coarse clocks, two writes in the same tick).
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime(seconds))
        while True:
            candidate = self.dir / f"{stamp}.{nanos:09d}"
            try:
                os.mkdir(candidate, 0o755)
                return candidate
            except FileExistsError:
                nanos = (nanos + 1) % 1_000_000_000
