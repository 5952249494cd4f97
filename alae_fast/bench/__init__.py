"""Benchmark cases and the report behind ``alae-fast bench`` (see benchmarks/ for the pytest-benchmark suites)."""

from .._lazy import lazy_submodules  # noqa: E402

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
