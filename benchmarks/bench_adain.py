"""pytest-benchmark suite of adain and instance_norm_stats (cases from alae_fast.bench.adain)."""

import pytest

from alae_fast.bench.adain import cases
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_adain(benchmark, case, name):
    run_benchmark(benchmark, case, name)
