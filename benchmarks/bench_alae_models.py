"""pytest-benchmark suite of whole StyleALAE networks (cases from alae_fast.bench.alae_models)."""

import pytest

from alae_fast.bench.alae_models import cases
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_alae_models(benchmark, case, name):
    run_benchmark(benchmark, case, name)
