"""pytest-benchmark suites: `pytest benchmarks` (not part of the test run).

Each case of alae_fast.bench.<op> becomes one benchmark per candidate, grouped by case, so
pytest-benchmark's table shows fused, ref, compiled and copy side by side. The interleaved
ratio report is `alae-fast bench` (or benchmarks/report.py).

Selections (marks set by case_params.bench_params):
- `pytest benchmarks -m quick`: one small case per op (the first that `alae-fast bench --quick`
  times, with its candidates), official and train_load left out: a minute or two on a 2-core CPU;
- `pytest benchmarks`: every case but the `slow` suites (official, train_load: the ones
  `alae-fast bench --quick` leaves out), which the project's `-m "not slow"` deselects;
- `pytest benchmarks -m slow`: those suites alone (minutes, and over 15 minutes for train_load).
"""

import sys
from pathlib import Path

# --import-mode=importlib keeps folders off sys.path; the suites share case_params.py from here
sys.path.insert(0, str(Path(__file__).parent))

from alae_fast.bench.report import HEAVY  # noqa: E402

_DESELECTED_SLOW = []


def pytest_configure(config):
    # pyproject.toml registers slow; quick belongs to these suites alone
    config.addinivalue_line("markers", "quick: one small benchmark case per op (`pytest benchmarks -m quick`)")


def pytest_report_header(config):
    return (f"benchmarks: `-m quick` runs one small case per op (a minute or two on a 2-core CPU); the suites "
            f"{', '.join(HEAVY)} are marked slow (deselected by default; `-m slow` runs them)")


def pytest_deselected(items):
    _DESELECTED_SLOW.extend(item for item in items if item.get_closest_marker("slow"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # -m deselects silently but for a count: say which suites were left out, why, and how to run them
    if not _DESELECTED_SLOW:
        return
    ops = [op for op in HEAVY if any(f"test_{op}[" in item.name for item in _DESELECTED_SLOW)]
    terminalreporter.write_line(f"{len(_DESELECTED_SLOW)} slow benchmarks deselected (run them with "
                                f"`pytest benchmarks -m slow`):")
    for op in ops:
        terminalreporter.write_line(f"  {op}: {HEAVY[op]}")
