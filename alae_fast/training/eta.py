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
model, whose small levels are mostly per-call costs. The default ``digits-32`` run (2026-12-06,
idle, 192 s of training): 220 s left at 30 s (162 s in truth), 123 at 60 s (132), 74 at 120 s
(72), 40 at 150 s (42); replayed on a run's log, the arithmetic alone had said about 1.5 times
the truth at first, the speed so far about half.

A level's pace is the lower quartile of its blocks (stretches of at least ``BLOCK_S`` seconds), and
the whole estimate is scaled by how the last ``RECENT_S`` seconds compare with their level's pace:
a slow stretch (other work on the cores) counts while it lasts and is gone from the estimate
seconds after it ends. The mean over a level, used before, had kept it: a new user's default run
that shared the cores for about a minute said 1199 s left, 7.5 times the truth, a minute after
the other work had ended.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .schedule import LODSchedule

__all__ = ["flops_per_image", "RemainingTime", "SETTLING"]

# Iterations of each level left out of its pace: a level's first ones allocate its larger
# buffers and warm its kernels, and a pace taken from them, applied to the rest of the level,
# made the estimate jump at each level change
SETTLING = 3

# A level's pace is taken over blocks of at least this many seconds (short ones would be mostly noise)
BLOCK_S = 2.0

# The current pace: the iterations of the current level that ended within this many seconds
RECENT_S = 10.0


class _Count(TorchDispatchMode):
    """Sums the FLOPs of the ops ``torch.utils.flop_counter`` has formulas for (convolutions and
    matrix products, and this package's FIR filtering by :mod:`alae_fast.ops.flops`; elementwise
    work such as AdaIN and bias_act counts 0: memory-bound, which FLOPs do not measure). On the
    meta device the ops run their references, so the filters are counted as torch counts those.
    Without FlopCounterMode's module tracking, which wants an autograd graph to hook."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_per_image(model, schedule: LODSchedule) -> dict[int, float]:
    """``{lod: floating-point operations of G(w) and E(x) for one image at that level}`` of
    ``model`` (an ALAE model), counted on the meta device: ``model``'s own modules run on
    stand-ins of its weights that hold no data (``torch.func.functional_call``), so nothing is
    computed (0.1 s for digits-32, 0.7 s for ffhq-1024's nine levels on a 2-core CPU) and the
    model, its gradients and torch's random streams are untouched (G's noise is off): a resumed
    run continues bit-identically."""
    from torch.func import functional_call

    class Cycle(torch.nn.Module):  # functional_call runs forward: encode(decode(w)) at one level
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, w, lod):
            return self.inner.encode(self.inner.decode(w, lod, 1.0, noise="zero"), lod, 1.0)

    cycle = Cycle(model)
    meta = {name: torch.empty_like(t, device="meta") for name, t in
            list(cycle.named_parameters()) + list(cycle.named_buffers())}
    dtype = next(model.parameters()).dtype
    out = {}
    with torch.no_grad():
        for lod in range(schedule.start_lod, schedule.max_lod + 1):
            w = torch.zeros(1, model.latent_size, device="meta", dtype=dtype)
            with _Count() as counter:
                functional_call(cycle, meta, (w, lod))
            out[lod] = float(counter.total)
    return out


class RemainingTime:
    """Seconds left in a run of ``total`` images on ``schedule`` (see the module docstring).

    ``update(images_seen)`` after each iteration charges the time since the previous call to
    the level the iteration trained at; :meth:`seconds_left` is None until one level has a pace;
    :meth:`slowdown` says how much slower the last seconds ran than their level's pace.
    ``cost``: :func:`flops_per_image` (or any per-level relative cost); ``clock``: seconds."""

    def __init__(self, schedule: LODSchedule, total: int, cost: dict[int, float], images_seen: int,
                 clock=time.perf_counter):
        self.schedule, self.total, self.cost, self.clock = schedule, total, cost, clock
        self.seconds: dict[int, float] = defaultdict(float)
        self.images: dict[int, int] = defaultdict(int)
        self.calls: dict[int, int] = defaultdict(int)
        self.blocks: dict[int, list] = defaultdict(list)  # (seconds per image, images) of closed blocks
        self.block: dict[int, list] = defaultdict(lambda: [0.0, 0])  # the open block: seconds, images
        self._quartile: dict[int, float] = {}
        self.recent: deque = deque()  # (end time, seconds, images) of the current level's last iterations
        self.recent_sums = [0.0, 0]  # their seconds and images
        self.recent_lod: int | None = None
        self.factor = 1.0  # the current pace over its level's
        self.n, self.t = images_seen, clock()

    def update(self, images_seen: int) -> None:
        """Charges the time since the last call (or the start) to the level of the iteration
        that trained from the last call's ``images_seen`` to this one's (an int)."""
        now = self.clock()
        lod = self.schedule.phase(self.n).lod  # the iteration that began at self.n trained here
        if lod != self.recent_lod:
            # a new level: its own pace decides, from its first counted iteration on; until then
            # no slowdown (one carried over from a slow stretch at the level's end had said 1798 s
            # left for 58 through the new level's settling, minutes where an iteration takes 20 s)
            self.recent.clear()
            self.recent_sums = [0.0, 0]
            self.recent_lod, self.factor = lod, 1.0
        self.calls[lod] += 1
        if self.calls[lod] > SETTLING:
            dt, images = now - self.t, images_seen - self.n
            self.seconds[lod] += dt
            self.images[lod] += images
            block = self.block[lod]
            block[0] += dt
            block[1] += images
            if block[0] >= BLOCK_S and block[1] > 0:
                self.blocks[lod].append((block[0] / block[1], block[1]))
                self._quartile.pop(lod, None)
                block[0], block[1] = 0.0, 0
            self.recent.append((now, dt, images))
            self.recent_sums[0] += dt
            self.recent_sums[1] += images
            # running sums: at 0.5 ms an iteration the window holds 20,000 of them
            while len(self.recent) > 1 and now - self.recent[0][0] > RECENT_S:
                _, d, k = self.recent.popleft()
                self.recent_sums[0] -= d
                self.recent_sums[1] -= k
            ref = self._pace(lod)
            if self.recent_sums[1] > 0 and ref:
                self.factor = self.recent_sums[0] / self.recent_sums[1] / ref
        self.n, self.t = images_seen, now

    def _pace(self, lod: int) -> float | None:
        """Seconds per image at ``lod`` as the machine runs it undisturbed: the lower quartile, by
        images, of its closed blocks' paces (a slow stretch spans many blocks of few images: by
        blocks it would soon be the quartile), or its mean before a block has closed; None before
        it has a pace."""
        blocks = self.blocks.get(lod)
        if blocks:
            # cached until the level's next block closes: tqdm asks on every redraw, and a
            # days-long level holds tens of thousands of blocks
            pace = self._quartile.get(lod)  # (get: tqdm's monitor thread may ask during update)
            if pace is None:
                blocks = sorted(blocks)
                quarter, seen = 0.25 * sum(n for _, n in blocks), 0
                for pace, n in blocks:
                    seen += n
                    if seen >= quarter:
                        break
                self._quartile[lod] = pace
            return pace
        n = self.images.get(lod, 0)
        return self.seconds[lod] / n if n > 0 else None

    def slowdown(self) -> float:
        """The last ``RECENT_S`` seconds' pace over their level's pace (1.0: as fast as that level
        has run; 25: other work takes most of the cores); 1.0 before the current level has a pace."""
        return self.factor

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
        """Seconds the run has left (a float), or None before a level has a pace."""
        pace = {lod: p for lod in list(self.images) if (p := self._pace(lod)) is not None}
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
        return total * self.factor
