"""Turns the benchmark cases of alae_fast.bench into pytest-benchmark parameters (used by bench_*.py).

Lives beside the suites, not in the package: it needs pytest, which the package never imports
at run time (``alae-fast bench`` runs the same cases without it). ``conftest.py`` puts this folder
on ``sys.path`` so the suites import it as ``case_params``.

Each parameter carries the marks that select a run (see ``conftest.py``): ``slow`` on every
benchmark of a suite that ``alae-fast bench --quick`` leaves out (``report.HEAVY``), ``quick``
on one small case per op, the first that ``alae-fast bench --quick`` times.
"""

from __future__ import annotations

import pytest
import torch

from alae_fast.bench.report import HEAVY, SUITES
from alae_fast.testing import cuda_available


def suite_of(cases_fn) -> str:
    """The ``alae-fast bench`` suite name (a key of ``report.SUITES``) of a ``cases`` function,
    from its module; raises ValueError naming the module when no suite has it."""
    for name, module in SUITES.items():
        if module == cases_fn.__module__:
            return name
    raise ValueError(f"cases_fn: {cases_fn.__module__}.{cases_fn.__name__} is not the cases() of a suite of "
                     f"alae_fast.bench.report.SUITES ({', '.join(SUITES.values())}); add it there first")


def quick_picks(cases_fn, device: torch.device) -> set[tuple[str, str, str]]:
    """``(op, case name, candidate)`` of the quick selection on ``device``: for each op, the
    first case of ``cases_fn(device, quick=True)`` with the candidates it has there (a
    candidate that --quick leaves out, as modulated_conv2d's compiled one, stays out)."""
    picks, seen = set(), set()
    for case in cases_fn(device, quick=True):
        if case.op in seen:
            continue
        seen.add(case.op)
        picks |= {(case.op, case.name, name) for name in case.candidates}
    return picks


def bench_params(cases_fn):
    """pytest params (case, candidate name) for every case ``cases_fn(device)`` returns, on the
    CPU and, where present, on CUDA; grouped so that one case's candidates share a table.

    Marks: every param of a suite in ``report.HEAVY`` gets ``slow`` (the project's default
    ``-m "not slow"`` deselects them); in the other suites the params of :func:`quick_picks`
    get ``quick``. Raises ValueError (from :func:`suite_of`) for a function that is no suite's.
    """
    suite = suite_of(cases_fn)
    params = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if cuda_available() else [])
    for device in devices:
        quick = set() if suite in HEAVY else quick_picks(cases_fn, device)
        for case in cases_fn(device):
            for name in case.candidates:
                marks = [pytest.mark.slow] if suite in HEAVY else []
                if (case.op, case.name, name) in quick:
                    marks.append(pytest.mark.quick)
                # a suite's other ops (adain's instance_norm_stats) can share a case name with its own
                label = case.name if case.op == suite else f"{case.op} {case.name}"
                params.append(pytest.param(case, name, id=f"{device.type}-{label}-{name}".replace(" ", "-"),
                                           marks=marks))
    return params


def run_benchmark(benchmark, case, name: str, warmup: int = 2) -> None:
    """Times ``case.candidates[name]`` with pytest-benchmark (synchronising on CUDA), after
    ``warmup`` untimed calls (default 2; ``case.warmup`` overrides it), as ``alae-fast bench``
    does (alae_fast.bench.harness.measure)."""
    from alae_fast.cpu_allocator import keep_freed_memory

    keep_freed_memory()  # as in `alae-fast bench`: see alae_fast.cpu_allocator
    fn = case.candidates[name]
    benchmark.group = f"{case.op} {case.device.type} {case.name}"
    if name == "compiled":
        # each case compiles the same reference at other shapes: past dynamo's recompile limit
        # (8) a later "compiled" candidate would silently run eager code
        torch._dynamo.reset()
    # the first calls compile, allocate and fault pages in; left to pytest-benchmark's
    # calibration they made a compiled candidate's timing a handful of rounds
    for _ in range(warmup if case.warmup is None else case.warmup):
        fn()
    if case.device.type == "cuda":
        torch.cuda.synchronize(case.device)
    if case.device.type == "cuda":
        def timed():
            fn()
            torch.cuda.synchronize(case.device)
        benchmark(timed)
    else:
        benchmark(fn)
