"""pytest-benchmark suite of official ALAE checkpoints at full size (cases from alae_fast.bench.official)."""

import pytest

from alae_fast.bench.official import cases
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_official(benchmark, case, name):
    run_benchmark(benchmark, case, name)
