"""The time a training run has left, level by level.

A progressive run slows down as it grows: ``digits-32`` trained 348 images/s at 8x8 and 145 at
32x32 (2 threads), so a remaining time taken from the speed so far (tqdm's, and the plain
progress line's) said "160 s left" after 30 s of a run that took 325 s in all. :class:`RemainingTime`
keeps the seconds each level took per image and counts the images the schedule still has at
each level: at a level already trained, at its measured pace; at one not reached yet, by a
line fitted to the levels measured: an iteration's fixed cost shared by its batch, plus a cost
per unit of arithmetic (:func:`flops_per_image`, G's forward and E's for one image), so
``seconds per image = overhead / batch + rate * flops``. With one level measured it takes that
level's pace scaled by the arithmetic alone, which overstates the larger levels of a small
model, whose small levels are mostly per-call costs. The default ``digits-32`` run (2026-12-05,
idle, 191 s of training): 194 s left at 30 s (161 s in truth), 122 at 90 s (101), 41 at 150 s
(exact); replayed on the same log, the arithmetic alone had said about 1.5 times the truth at
first, the speed so far about half.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

from .schedule import LODSchedule

__all__ = ["flops_per_image", "RemainingTime"]


def flops_per_image(model, schedule: LODSchedule) -> dict[int, float]:
    """``{lod: floating-point operations of G(w) and E(x) for one image at that level}`` of
    ``model`` (an ALAE model), counted by ``torch.utils.flop_counter`` on one image: milliseconds
    for the presets a CPU trains, and the model's state and torch's random streams are left as
    they were (G's noise is off; the random state is forked all the same), so a resumed run
    continues bit-identically. (A copy on the meta device would cost no arithmetic, but its
    first use imports torch's reference kernels: a second at every start.)"""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    param = next(model.parameters())
    devices = [param.device] if param.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        for lod in range(schedule.start_lod, schedule.max_lod + 1):
            w = torch.zeros(1, model.latent_size, device=param.device, dtype=param.dtype)
            # with gradients on: the counter's module tracking expects a graph to hook
            with FlopCounterMode(display=False) as counter:
                model.encode(model.decode(w, lod, 1.0, noise="zero"), lod, 1.0)
            out[lod] = float(counter.get_total_flops())
    return out


class RemainingTime:
    """Seconds left in a run of ``total`` images on ``schedule`` (see the module docstring).

    ``update(images_seen)`` after each iteration charges the time since the previous call to
    the level the iteration trained at; :meth:`seconds_left` is None until one level has a pace.
    ``cost``: :func:`flops_per_image` (or any per-level relative cost); ``clock``: seconds."""

    def __init__(self, schedule: LODSchedule, total: int, cost: dict[int, float], images_seen: int,
                 clock=time.perf_counter):
        self.schedule, self.total, self.cost, self.clock = schedule, total, cost, clock
        self.seconds: dict[int, float] = defaultdict(float)
        self.images: dict[int, int] = defaultdict(int)
        self.n, self.t = images_seen, clock()

    def update(self, images_seen: int) -> None:
        now = self.clock()
        lod = self.schedule.phase(self.n).lod  # the iteration that began at self.n trained here
        self.seconds[lod] += now - self.t
        self.images[lod] += images_seen - self.n
        self.n, self.t = images_seen, now

    def _left_by_level(self) -> dict[int, int]:
        """Images still to train at each level, from ``self.n`` to ``total``."""
        s = self.schedule
        left, start = {}, 0
        for lod in range(s.start_lod, s.max_lod + 1):
            end = self.total if lod == s.max_lod else start + s.images_at(lod)
            count = min(end, self.total) - max(start, self.n)
            if count > 0:
                left[lod] = count
            start = end
        return left

    def _line(self, pace: dict[int, float]) -> tuple[float, float] | None:
        """``(overhead, rate)`` of ``pace = overhead / batch + rate * cost`` fitted by least squares
        to the measured levels (cost scaled to at most 1), or None: fewer than two levels, or a
        fit that is not two positive numbers (the line would not grow with the arithmetic)."""
        top = max(self.cost.values(), default=0.0)
        points = [(1.0 / self.schedule.batch_at(lod), self.cost.get(lod, 0.0) / top if top else 0.0, p)
                  for lod, p in pace.items()]
        if len(points) < 2:
            return None
        s11 = sum(u * u for u, _, _ in points)
        s12 = sum(u * c for u, c, _ in points)
        s22 = sum(c * c for _, c, _ in points)
        r1 = sum(u * p for u, _, p in points)
        r2 = sum(c * p for _, c, p in points)
        det = s11 * s22 - s12 * s12
        if det <= 1e-12 * s11 * s22:
            return None
        overhead, rate = (r1 * s22 - r2 * s12) / det, (s11 * r2 - s12 * r1) / det
        return (overhead, rate / top) if overhead >= 0 and rate > 0 else None

    def seconds_left(self) -> float | None:
        pace = {lod: self.seconds[lod] / n for lod, n in self.images.items() if n > 0}
        if not pace:
            return None
        line = self._line(pace)
        total = 0.0
        for lod, count in self._left_by_level().items():
            if lod in pace:
                total += count * pace[lod]
            elif line is not None:
                total += count * (line[0] / self.schedule.batch_at(lod) + line[1] * self.cost[lod])
            else:
                # the nearest level measured, the higher one on a tie (the closer in size)
                ref = min(pace, key=lambda m: (abs(m - lod), -m))
                scale = self.cost[lod] / self.cost[ref] if self.cost.get(ref) else 1.0
                total += count * pace[ref] * scale
        return total
