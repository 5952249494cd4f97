"""pytest-benchmark suite of one ALAE training iteration (cases from alae_fast.bench.train)."""

import pytest

from case_params import bench_params, run_benchmark
from alae_fast.bench.train import cases


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_alae_train(benchmark, case, name):
    run_benchmark(benchmark, case, name)
