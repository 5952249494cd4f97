"""pytest-benchmark suite of bias_act (cases from alae_fast.bench.bias_act)."""

import pytest

from alae_fast.bench.bias_act import cases
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_bias_act(benchmark, case, name):
    run_benchmark(benchmark, case, name)
