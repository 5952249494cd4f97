"""pytest-benchmark suite of modulated_conv2d and modulate_weight (cases from
alae_fast.bench.modulated_conv2d)."""

import pytest

from alae_fast.bench.modulated_conv2d import cases
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_modulated_conv2d(benchmark, case, name):
    run_benchmark(benchmark, case, name)
