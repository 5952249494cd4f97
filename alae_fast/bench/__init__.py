"""Benchmark cases and the report behind ``alae-fast bench`` (see benchmarks/ for the pytest-benchmark suites)."""
