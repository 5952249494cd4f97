"""Side-by-side timing of an op's candidates, robust to a noisy machine.

Each case names candidates (callables with no arguments): typically ``fused`` (our kernel),
``ref`` (the eager PyTorch reference), ``compiled`` (``torch.compile`` of the reference)
and ``copy`` (a ``copy_`` of the same bytes: the memory roofline of one forward pass, which
reads the input once and writes the output once; forward+backward cases have no such single
pass, so they have no ``copy`` candidate). ``measure`` runs them
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

    ``text`` says it in words, e.g. "fused <= 1.3x copy". :meth:`verdict` restates it in the
    units of the report's table (``t(column)/t(baseline)``), which is how it is printed.
    """
    text: str
    numerator: str
    denominator: str
    bound: float

    def check(self, ratios: dict[str, float]) -> tuple[float, bool] | None:
        """``(ratios[numerator] / ratios[denominator], passed)``, or None when either was not measured."""
        if self.numerator not in ratios or self.denominator not in ratios:
            return None
        value = ratios[self.numerator] / ratios[self.denominator]
        return value, value <= self.bound

    def verdict(self, ratios: dict[str, float], baseline: str = "fused",
                round_ratios: dict[str, list[float]] | None = None) -> "Verdict | None":
        """The target in the table's units, or None when a candidate it needs was not measured.

        ratios: a :class:`Result`'s ratios (t(candidate)/t(baseline)); baseline: the case's.
        A target ``fused <= b x other`` reads in the table as ``other/fused >= 1/b``, one on
        ``other <= b x fused`` as ``other/fused <= b``; a target between two non-baseline
        candidates keeps its own ratio. Pass/fail is :meth:`check`'s. round_ratios (a
        :class:`Result`'s, per round; optional) give the verdict's ``spread``: the quartiles of
        the same figure taken round by round.
        """
        got = self.check(ratios)
        if got is None:
            return None
        value, passed = got
        if self.numerator == baseline:
            column, relation, measured, bound = f"{self.denominator}/{baseline}", ">=", 1 / value, 1 / self.bound
            per_round = lambda num, den: den / num
        else:
            column = f"{self.numerator}/{baseline}" if self.denominator == baseline else \
                f"{self.numerator}/{self.denominator}"
            relation, measured, bound = "<=", value, self.bound
            per_round = lambda num, den: num / den
        spread = None
        rr = round_ratios or {}
        if rr.get(self.numerator) and rr.get(self.denominator):
            spread = quartiles([per_round(n, d) for n, d in zip(rr[self.numerator], rr[self.denominator])])
        return Verdict(self, column, measured, relation, bound, passed, spread)


@dataclass
class TimeTarget:
    """An absolute figure the case must reach: ``seconds[candidate] <= bound`` seconds per call.

    ``text`` says it in words, e.g. "load <= 10 s on the 2-core CPU". The measured figure is
    the candidate's median time per call (a :class:`Result`'s ``seconds``), printed in seconds
    beside the ratios of the other targets; a :class:`Target` compares two candidates instead.
    """
    text: str
    candidate: str
    bound: float

    def verdict(self, seconds: dict[str, float],
                round_seconds: dict[str, list[float]] | None = None) -> "Verdict | None":
        """The target checked, or None when ``candidate`` was not measured.

        seconds: a :class:`Result`'s median seconds per call; round_seconds (a
        :class:`Result`'s, per round; optional) give the verdict's ``spread``.
        """
        if self.candidate not in seconds:
            return None
        value = seconds[self.candidate]
        rs = (round_seconds or {}).get(self.candidate)
        return Verdict(self, f"{self.candidate} time", value, "<=", self.bound, value <= self.bound,
                       quartiles(rs) if rs else None, unit=" s")


def quartiles(values: list[float]) -> tuple[float, float]:
    """The lower and upper quartiles of ``values`` (at least one; one value is both), by
    :func:`statistics.quantiles`' inclusive method: the middle half of the values lies between them."""
    if len(values) == 1:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def format_comparison(measured: float, relation: str, bound: float, passed: bool, digits: int = 2,
                      unit: str = "x") -> str:
    """``'<measured><unit> (target <relation> <bound><unit>)'``, e.g. ``'2.99x (target >= 3x)'``.

    measured, bound: in the units shown; relation: ``'>='`` or ``'<='``; passed: the verdict.
    digits: decimals (default 2, as the table prints ratios). When the rounded figures would
    read as the other verdict (2.996 against >= 3 shows as 3.00), more decimals are shown, up
    to 6, so a FAIL never reads like a pass. The bound drops trailing zeros. Raises ValueError
    for another relation.
    """
    if relation not in (">=", "<="):
        raise ValueError(f"relation: expected '>=' or '<='; got {relation!r}")
    for d in range(digits, 7):
        m, b = f"{measured:.{d}f}", f"{bound:.{d}f}"
        looks = float(m) >= float(b) if relation == ">=" else float(m) <= float(b)
        if looks == passed:
            break
    if "." in b:
        b = b.rstrip("0").rstrip(".")
    return f"{m}{unit} (target {relation} {b}{unit})"


@dataclass
class Verdict:
    """A :class:`Target` or :class:`TimeTarget` checked against one result, in the table's
    units: ``column`` (e.g. ``'ref/fused'``, or ``'fused time'`` for a time target),
    ``measured`` (that column's figure, a median over rounds), ``relation``
    (``'>='``/``'<='``), ``bound`` (the figure the column must reach), ``passed``,
    ``spread``: the lower and upper quartiles of the figure over rounds (None when the rounds
    were not kept), and ``unit`` (``'x'`` for a ratio, ``' s'`` for seconds). A verdict is
    ``marginal`` when the bound lies inside that middle half of the rounds: another run on
    the same machine may well give the other verdict."""
    target: "Target | TimeTarget"
    column: str
    measured: float
    relation: str
    bound: float
    passed: bool
    spread: tuple[float, float] | None = None
    unit: str = "x"

    @property
    def marginal(self) -> bool:
        return self.spread is not None and self.spread[0] <= self.bound <= self.spread[1]

    def text(self) -> str:
        """E.g. ``'ref/fused 2.99x (target >= 3x)'``, rounded as the table rounds (see
        :func:`format_comparison`), then, for a marginal verdict, ``'; marginal: the middle half of
        the rounds spans 2.90-3.08x'``."""
        figure = format_comparison(self.measured, self.relation, self.bound, self.passed, unit=self.unit)
        out = f"{self.column} {figure}"
        if self.marginal:
            out += (f"; marginal: the middle half of the rounds spans "
                    f"{self.spread[0]:.2f}-{self.spread[1]:.2f}{self.unit}")
        return out


@dataclass
class LeftOut:
    """A candidate that a case has but that an option left out of this run: ``option`` (e.g.
    ``'--quick'``) and ``why`` (shown in the report's note)."""
    option: str
    why: str


@dataclass
class Case:
    """One benchmark: ``op`` and ``name`` label it; ``candidates`` maps name -> callable.

    ``left_out`` maps a candidate the case would have to the :class:`LeftOut` saying which
    option dropped it from this run (the table marks it apart from a candidate the case
    cannot have).

    ``warmup`` (calls per candidate before timing; None: :func:`measure`'s) and ``reps`` (calls
    per timing; None: calibrated to ``min_seconds`` by one extra call) let a case whose every
    call is a whole process of seconds spend its calls on rounds. ``notes`` (no arguments, called
    after the rounds) returns what the case saw beside its timings, e.g. which OpenMP wait each
    child process chose; the report prints it and writes it to ``--json``.
    """
    op: str
    name: str
    candidates: dict[str, Callable[[], object]]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    baseline: str = "fused"
    targets: list[Target | TimeTarget] = field(default_factory=list)
    left_out: dict[str, LeftOut] = field(default_factory=dict)
    warmup: int | None = None
    reps: int | None = None
    notes: Callable[[], str] | None = None


@dataclass
class Result:
    case: Case
    seconds: dict[str, float]       # median seconds per call
    ratios: dict[str, float]        # median over rounds of t(candidate) / t(baseline)
    notes: str = ""                 # the case's notes (Case.notes), "" when it has none
    round_ratios: dict[str, list[float]] = field(default_factory=dict)  # t(candidate) / t(baseline), round by round
    round_seconds: dict[str, list[float]] = field(default_factory=dict)  # seconds per call, round by round


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
    until it lasts at least this long (default 20 ms), the repeat count fixed per candidate
    (``case.reps`` fixes it instead). warmup: calls per candidate before timing (default 2;
    ``case.warmup`` overrides it).
    """
    dev = case.device
    reps = {}
    # Cases of one suite compile the same reference function at other shapes; without a reset
    # dynamo's recompile limit (8) silently turns later "compiled" candidates into eager code.
    if "compiled" in case.candidates:
        torch._dynamo.reset()
    warmup = warmup if case.warmup is None else case.warmup
    for name, fn in case.candidates.items():
        for _ in range(warmup):  # first calls compile, allocate, fault pages in
            fn()
        _sync(dev)
        if case.reps is not None:
            reps[name] = case.reps
            continue
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
                  {k: statistics.median(v) for k, v in ratios.items()},
                  case.notes() if case.notes else "", ratios, times)


NOT_APPLICABLE = "\u2014"  # an em dash, as the README's tables print it


def format_table(results: list[Result], columns: list[str], na: str = NOT_APPLICABLE) -> str:
    """A text table: per case the baseline's time (ms) and each column as t(column)/t(baseline),
    two decimals.

    A column the case left out for an option shows that option in parentheses (e.g.
    ``(--quick)``); one the case does not have (it cannot run there, or its ratio means nothing
    there, as ``copy`` beside forward+backward) shows ``na`` (default an em dash).
    """
    head = ["op", "case", "fused ms"] + [f"{c}/fused" for c in columns if c != "fused"]
    rows = []
    for r in results:
        row = [r.case.op, r.case.name, f"{r.seconds[r.case.baseline] * 1e3:.3f}"]
        for c in columns:
            if c == "fused":
                continue
            if c in r.ratios:
                row.append(f"{r.ratios[c]:.2f}")
            elif c in r.case.left_out:
                row.append(f"({r.case.left_out[c].option})")
            else:
                row.append(na)
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def target_records(results: list[Result]) -> list[dict]:
    """Every target of ``results`` checked, as dicts for JSON: ``op``, ``case``, ``target``
    (its words), ``status`` (``'PASS'``, ``'FAIL'``, or ``'SKIP'`` when a candidate it needs
    was not measured), ``column``, ``measured``, ``relation`` and ``bound`` in the table's units
    (seconds for a :class:`TimeTarget`; None for a SKIP), ``spread`` (the figure's lower and
    upper quartiles over rounds, None when the rounds were not kept) and ``marginal`` (the
    bound inside that spread), and ``why`` for a SKIP."""
    out = []
    for r in results:
        for t in r.case.targets:
            rec = {"op": r.case.op, "case": r.case.name, "target": t.text}
            if isinstance(t, TimeTarget):
                v, needs = t.verdict(r.seconds, r.round_seconds), (t.candidate,)
            else:
                v, needs = t.verdict(r.ratios, r.case.baseline, r.round_ratios), (t.numerator, t.denominator)
            if v is None:
                missing = [c for c in needs if c not in r.ratios]
                why = [f"{c} left out by {r.case.left_out[c].option}" if c in r.case.left_out else f"{c} not measured"
                       for c in missing]
                rec.update(status="SKIP", column=None, measured=None, relation=None, bound=None, spread=None,
                           marginal=None, why="; ".join(why))
            else:
                rec.update(status="PASS" if v.passed else "FAIL", column=v.column, measured=v.measured,
                           relation=v.relation, bound=v.bound, spread=list(v.spread) if v.spread else None,
                           marginal=v.marginal, text=v.text())
            out.append(rec)
    return out


def format_targets(results: list[Result]) -> tuple[str, bool]:
    """Lines ``'PASS/FAIL  op case: target: column figure (target >= bound)'`` for every target,
    in the table's units and rounding (see :meth:`Target.verdict`), ``'SKIP ...'`` for a target
    whose candidate was not measured (left out by an option: it counts neither way); and
    whether none failed."""
    lines, ok = [], True
    for rec in target_records(results):
        head = f"{rec['status']}  {rec['op']} {rec['case']}: {rec['target']}: "
        if rec["status"] == "SKIP":
            lines.append(head + f"not checked ({rec['why']})")
        else:
            ok &= rec["status"] == "PASS"
            lines.append(head + rec["text"])
    return "\n".join(lines), ok


# What the suites record when --no-compile drops their compiled candidate.
NO_COMPILE = LeftOut("--no-compile", "torch.compile of the reference")
