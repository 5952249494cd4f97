"""pytest-benchmark suite of upfirdn2d (cases from alae_fast.bench.upfirdn2d)."""

import pytest

from case_params import bench_params, run_benchmark
from alae_fast.bench.upfirdn2d import cases


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_upfirdn2d(benchmark, case, name):
    run_benchmark(benchmark, case, name)
