"""Side-by-side timing of an op's candidates, robust to a noisy machine.

Each case names candidates (callables with no arguments): typically ``fused`` (our kernel),
``ref`` (the eager PyTorch reference), ``compiled`` (``torch.compile`` of the reference)
and ``copy`` (a ``copy_`` of the same bytes: the memory roofline). ``measure`` runs them
interleaved, in a shuffled order each round, and reports per candidate the median over
rounds of its time divided by the baseline's time in that same round, so slow phases of
the machine hit numerator and denominator alike. CUDA candidates are timed with CUDA events.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class Target:
    """A figure the case must reach: ``ratio(numerator/denominator) <= bound``.

    ``text`` says it in words, e.g. "fused <= 1.3x copy".
    """
    text: str
    numerator: str
    denominator: str
    bound: float

    def check(self, ratios: dict[str, float]) -> tuple[float, bool] | None:
        if self.numerator not in ratios or self.denominator not in ratios:
            return None
        value = ratios[self.numerator] / ratios[self.denominator]
        return value, value <= self.bound


@dataclass
class Case:
    """One benchmark: ``op`` and ``name`` label it; ``candidates`` maps name -> callable."""
    op: str
    name: str
    candidates: dict[str, Callable[[], object]]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    baseline: str = "fused"
    targets: list[Target] = field(default_factory=list)


@dataclass
class Result:
    case: Case
    seconds: dict[str, float]       # median seconds per call
    ratios: dict[str, float]        # median over rounds of t(candidate) / t(baseline)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn: Callable[[], object], reps: int, device: torch.device) -> float:
    """Seconds per call, averaged over ``reps`` back-to-back calls."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def measure(case: Case, rounds: int = 15, min_seconds: float = 0.02, warmup: int = 2) -> Result:
    """Times every candidate of ``case``; see the module docstring for the method.

    rounds: interleaved rounds (default 15). min_seconds: each timing repeats its call
    until it lasts at least this long (default 20 ms), the repeat count fixed per candidate.
    """
    dev = case.device
    reps = {}
    # Cases of one suite compile the same reference function at other shapes; without a reset
    # dynamo's recompile limit (8) silently turns later "compiled" candidates into eager code.
    if "compiled" in case.candidates:
        torch._dynamo.reset()
    for name, fn in case.candidates.items():
        for _ in range(warmup):  # first calls compile, allocate, fault pages in
            fn()
        _sync(dev)
        t = _time_once(fn, 1, dev)
        reps[name] = max(1, int(min_seconds / max(t, 1e-7)))
    times = {name: [] for name in case.candidates}
    ratios = {name: [] for name in case.candidates}
    order = list(case.candidates)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        this = {}
        for name in order:
            _sync(dev)
            this[name] = _time_once(case.candidates[name], reps[name], dev)
            times[name].append(this[name])
        for name in order:
            ratios[name].append(this[name] / this[case.baseline])
    return Result(case, {k: statistics.median(v) for k, v in times.items()},
                  {k: statistics.median(v) for k, v in ratios.items()})


def format_table(results: list[Result], columns: list[str]) -> str:
    """A text table: per case the baseline's time and each column as t(column)/t(baseline)."""
    head = ["op", "case", "fused ms"] + [f"{c}/fused" for c in columns if c != "fused"]
    rows = []
    for r in results:
        row = [r.case.op, r.case.name, f"{r.seconds[r.case.baseline] * 1e3:.3f}"]
        for c in columns:
            if c == "fused":
                continue
            row.append(f"{r.ratios[c]:.2f}" if c in r.ratios else "-")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_targets(results: list[Result]) -> tuple[str, bool]:
    """Lines 'PASS/FAIL case: text (value)' for every target; and whether all passed."""
    lines, ok = [], True
    for r in results:
        for t in r.case.targets:
            got = t.check(r.ratios)
            if got is None:
                continue
            value, passed = got
            ok &= passed
            lines.append(f"{'PASS' if passed else 'FAIL'}  {r.case.op} {r.case.name}: {t.text} "
                         f"(measured {value:.2f}, bound {t.bound:g})")
    return "\n".join(lines), ok
