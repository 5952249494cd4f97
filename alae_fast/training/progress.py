"""What a training run prints while it runs: its one-line messages (rank 0 only) and the progress
bar (tqdm on a terminal, a plain line per stretch of images otherwise)."""

from __future__ import annotations

import sys
import time

from .distributed import DistributedContext


class _Say:
    def __init__(self, ctx: DistributedContext):
        self.on = ctx.is_main

    def __call__(self, *args, **kw):
        if self.on:
            print(*args, **kw, flush=True)


class _PlainProgress:
    """The progress of a run whose stderr is not a terminal (a log file, a pipe, a scheduler's
    output): one plain line at most every ``every_s`` seconds and at the end, instead of tqdm's
    carriage-return redraws (thousands of them in a 5-minute run, one unreadable line in a file).
    Has the parts of tqdm's interface the loop uses: ``update``, ``set_postfix_str``, ``close``.
    ``eta``: a :class:`~.eta.RemainingTime` that says the time left (None: the speed so far does)."""

    def __init__(self, total: int, initial: int, file, every_s: float = 30.0, clock=time.monotonic, eta=None):
        self.total, self.n, self.file, self.every_s, self.clock = total, initial, file, every_s, clock
        self.t0 = self.t_last = clock()
        self.n0, self.postfix, self.closed, self.eta = initial, "", False, eta

    def update(self, n: int) -> None:
        self.n += n
        if self.eta is not None:
            self.eta.update(self.n)
        # the last images are said by close(), once, with the losses of the last step (a line here
        # too had printed 100% twice, the first with the previous window's losses)
        if self.n < self.total and self.clock() - self.t_last >= self.every_s:
            self._line()

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def _line(self) -> None:
        self.t_last = now = self.clock()
        elapsed = now - self.t0
        rate = (self.n - self.n0) / elapsed if elapsed > 0 else 0.0
        seconds = self.eta.seconds_left() if self.eta is not None else None
        if seconds is None and rate > 0:
            seconds = (self.total - self.n) / rate
        left = f", {round(seconds)} s left" if seconds is not None and self.n < self.total else ""
        tail = f": {self.postfix}" if self.postfix else ""
        digits = 1 if self.total >= 10_000 else 3  # a short run in tenths of a kimg would read 0.0/0.1
        print(f"{self.n / 1000:.{digits}f}/{self.total / 1000:.{digits}f} kimg ({100 * self.n / max(self.total, 1):.0f}%), "
              f"{round(elapsed)} s{left}{tail}", file=self.file, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()


def _progress(total: int, initial: int, enabled: bool, file=None, eta=None):
    """The progress display on ``file`` (default stderr): tqdm's bar on a terminal, plain lines
    (:class:`_PlainProgress`) elsewhere, None when not ``enabled`` (``--no-progress``, other ranks).
    ``eta``: a :class:`~.eta.RemainingTime` for the time left (None: the speed so far)."""
    if not enabled:
        return None
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    if not (callable(isatty) and isatty()):
        return _PlainProgress(total, initial, file, eta=eta)
    # imported here, not at the top: tqdm is a dependency of training runs only, and the op and
    # model tests import this module on machines with just torch (the lent GPU's python)
    from tqdm import tqdm

    class Bar(tqdm):
        # tqdm's remaining time is (total - n) / rate: given the rate that the level-by-level
        # estimate implies, it shows that estimate; the bar leaves the rate out (the postfix says
        # the images/s of the last log window)
        @property
        def format_dict(self):
            d = super().format_dict
            seconds = eta.seconds_left() if eta is not None else None
            if seconds is not None and seconds > 0 and d["total"] and d["n"] < d["total"]:
                d["rate"] = (d["total"] - d["n"]) / seconds
            return d

        def update(self, n=1):
            out = super().update(n)
            if eta is not None:
                eta.update(self.n)
            return out

    return Bar(total=total, initial=initial, unit="img", unit_scale=True, dynamic_ncols=True, smoothing=0.1,
               file=file, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
