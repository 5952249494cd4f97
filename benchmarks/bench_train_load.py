"""pytest-benchmark suite of training processes under competing CPU load (alae_fast.bench.train_load)."""

import pytest

from case_params import bench_params, run_benchmark
from alae_fast.bench.train_load import cases


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_train_load(benchmark, case, name):
    run_benchmark(benchmark, case, name)
