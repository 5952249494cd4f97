"""One training at a time in a run folder.

Two ``alae-fast train`` jobs given the same ``--out`` (a new run started while another trains
there, or a ``--resume`` of a run that is still going) had both exited 0 with the folder holding
one's config and log beside the other's checkpoints, and one job's pruning deleting the
checkpoint the other named last. Rank 0 of a run holds an exclusive ``flock`` on
``<out>/run.lock`` from before it writes anything until the run returns, and removes the file as
it lets go; the kernel drops the lock when the process ends, however it ends (SIGKILL included),
so a file left by a killed run never blocks a resume. The file holds the holder's pid and host
for the refusal's message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from ..errors import UserError

__all__ = ["LOCK_NAME", "RunLock"]

LOCK_NAME = "run.lock"


class RunLock:
    """An exclusive lock on the run folder ``out``, taken by :meth:`acquire` and given back by
    :meth:`release` (also a context manager).

    :meth:`acquire` makes ``out`` if needed and raises :class:`~alae_fast.errors.UserError`
    naming ``--out`` and the holder (pid, host) when another process holds it.
    """

    def __init__(self, out: str | os.PathLike):
        self.path = Path(out) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise UserError(f"--out {str(self.path.parent)!r}: another `alae-fast train` is writing this run "
                                f"folder ({holder}); wait for it to end (then --resume continues the run), or give "
                                f"another --out") from None
            try:  # the holder before us removes the file as it lets go: locked, it must still be the file there
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Removes the file, then lets go (a run folder keeps no lock file after its run)."""
        if self._fd is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
