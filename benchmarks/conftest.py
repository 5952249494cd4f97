"""pytest-benchmark suites: `pytest benchmarks` (not part of the test run).

Each case of alae_fast.bench.<op> becomes one benchmark per candidate, grouped by case, so
pytest-benchmark's table shows fused, ref, compiled and copy side by side. The interleaved
ratio report is `alae-fast bench` (or benchmarks/report.py).
"""

import sys
from pathlib import Path

# --import-mode=importlib keeps folders off sys.path; the suites share case_params.py from here
sys.path.insert(0, str(Path(__file__).parent))
