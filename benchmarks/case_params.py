"""Turns the benchmark cases of alae_fast.bench into pytest-benchmark parameters (used by bench_*.py).

Lives beside the suites, not in the package: it needs pytest, which the package never imports
at run time (``alae-fast bench`` runs the same cases without it). ``conftest.py`` puts this folder
on ``sys.path`` so the suites import it as ``case_params``.
"""

from __future__ import annotations

import pytest
import torch

from alae_fast.testing import cuda_available


def bench_params(cases_fn, quick: bool = False):
    """pytest params (case, candidate name) for every case ``cases_fn(device)`` returns, on the
    CPU and, where present, on CUDA; grouped so that one case's candidates share a table."""
    params = []
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if cuda_available() else [])
    for device in devices:
        for case in cases_fn(device, quick=quick):
            for name in case.candidates:
                params.append(pytest.param(case, name, id=f"{device.type}-{case.name}-{name}".replace(" ", "-")))
    return params


def run_benchmark(benchmark, case, name: str) -> None:
    """Times ``case.candidates[name]`` with pytest-benchmark (synchronising on CUDA)."""
    from alae_fast.cpu_allocator import keep_freed_memory

    keep_freed_memory()  # as in `alae-fast bench`: see alae_fast.cpu_allocator
    fn = case.candidates[name]
    benchmark.group = f"{case.op} {case.device.type} {case.name}"
    if case.device.type == "cuda":
        def timed():
            fn()
            torch.cuda.synchronize(case.device)
        benchmark(timed)
    else:
        benchmark(fn)
