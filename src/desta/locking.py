"""An exclusive lock file for work that two processes must never do at once (writing the same
data shard, training into the same output directory).

The lock is a ``flock`` on the file, so the OS releases it when its process ends, ``kill -9``
included: a stale lock never needs cleaning up. The holder writes its pid, host and start
time into the file, so that a refused process can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from desta.errors import DestaError


class LockedError(DestaError):
    """Another process holds the lock."""


class ExclusiveLock:
    """``with ExclusiveLock(path, "another process is writing this shard"):`` ...

    Args:
        path: the lock file (created, with its folder, if missing; never deleted).
        busy: what a refusal says first; the holder and the lock file are appended.
    """

    def __init__(self, path: Path, busy: str) -> None:
        self.path = Path(path)
        self.busy = busy
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> ExclusiveLock:
        """Take the lock now or raise LockedError naming the process that holds it."""
        if self._fh is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")  # not "w": the holder's own line must survive our open
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "a process that has not written its pid yet"
            fh.close()
            raise LockedError(f"{self.busy} ({holder}; lock file {self.path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
