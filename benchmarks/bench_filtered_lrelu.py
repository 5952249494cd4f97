"""pytest-benchmark suite of filtered_lrelu (cases from alae_fast.bench.filtered_lrelu), and its
peak memory of forward+backward against the reference."""

import pytest

from alae_fast.bench.filtered_lrelu import SHAPES, cases, peak_memory
from case_params import bench_params, run_benchmark


@pytest.mark.parametrize("case,name", bench_params(cases))
def test_filtered_lrelu(benchmark, case, name):
    run_benchmark(benchmark, case, name)


@pytest.mark.parametrize("index", range(len(SHAPES)), ids=[s[0] for s in SHAPES])
def test_filtered_lrelu_peak_memory(benchmark, index):
    fused, ref = peak_memory(index, "fused"), peak_memory(index, "ref")
    benchmark.extra_info.update(peak_mib_fused=fused, peak_mib_ref=ref, fused_over_ref=fused / ref)
    benchmark.pedantic(lambda: None, rounds=1)
