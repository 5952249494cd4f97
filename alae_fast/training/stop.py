"""Stopping a training run cleanly: SIGTERM and Ctrl-C (SIGINT) ask for a checkpoint, then an exit.

Schedulers (Slurm, Kubernetes) and preemptible clouds send SIGTERM some seconds before they
kill a job; people press Ctrl-C. Either signal, the first time, only sets a flag: the
training loop finishes the iteration it is in (never a half-applied optimiser step),
writes a checkpoint, and returns normally, so ``--resume`` continues exactly as after any
interval checkpoint. A second signal of either kind means "now": the default action is
restored and the signal re-raised, so the process dies at once (the checkpoint protocol is
atomic, so at worst the last checkpoint is the previous one).

Handlers can only be installed from the main thread; elsewhere :class:`StopRequest` does
nothing and the signals keep their current behaviour.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["StopRequest", "StopInterrupted", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopInterrupted(Exception):
    """Raised in the main thread at the first signal inside ``StopRequest(interrupt=True)``;
    its message is the signal's name."""


class StopRequest:
    """Context manager that turns the first SIGINT/SIGTERM into a request to stop.

    Inside ``with StopRequest() as stop:``, ``stop.requested`` is None until a signal
    arrives, then the signal's name (``"SIGTERM"``, ``"SIGINT"``). The previous handlers are
    put back on exit. ``message`` is printed to stderr on the first signal; it is read when the
    signal comes, so the owner may change it as its work moves on. With
    ``interrupt=True`` the first signal also raises :class:`StopInterrupted` where the main
    thread is (for work that is safe to abandon, such as the final evaluation; a long C call
    finishes first).
    """

    def __init__(self, message: str = "stopping after this iteration; a checkpoint follows "
                                      "(signal again to exit at once)", *, interrupt: bool = False,
                 announce: bool = True):
        self.message = message
        self.announce = announce  # False: say nothing (a torchrun rank other than 0: rank 0 says it for the job)
        self.interrupt = interrupt
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:
            # the second signal: die of it now, as if we had never caught it
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.requested = signal.Signals(signum).name
        if self.announce:
            print(f"\n{self.requested}: {self.message}", file=sys.stderr, flush=True)
        if self.interrupt:
            raise StopInterrupted(self.requested)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()
