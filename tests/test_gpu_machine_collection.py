"""The CUDA tests collect with only the lent GPU machines' packages.

Those machines' python has torch, numpy, pytest, pytest-benchmark, hypothesis and the build tools
(and what they require), no network, and alae_fast installed with ``--no-deps``: no Pillow, no
scikit-learn, no fastapi. A test module that imports one of those at its top without
``pytest.importorskip`` first fails ``benchmarks/gpu_check.sh`` at collection, before any CUDA
test runs. CI's stage 4 finds that in a venv of its own after an hour (stop 60 failed on
test_cli_small_fixes.py that way); this test finds it in the default suite, in this venv, by
making every other installed distribution's modules unimportable in a child python.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# what CI's stage 4 installs into its GPU-machine venv (.ci/run), i.e. what those machines hold
GPU_MACHINE_ROOTS = ["torch", "numpy", "pytest", "pytest-benchmark", "hypothesis", "ninja", "cmake",
                     "scikit-build-core", "pybind11"]

CHILD = r"""
import importlib.abc, importlib.metadata as md, os, re, sys

roots, tests, pyproject = sys.argv[1].split(","), sys.argv[2], sys.argv[3]

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

# the roots and everything they require (extras left out: the machines installed none)
allowed, todo = set(), [norm(r) for r in roots]
while todo:
    name = todo.pop()
    if name in allowed:
        continue
    allowed.add(name)
    try:
        reqs = md.distribution(name).requires or []
    except md.PackageNotFoundError:
        continue
    for req in reqs:
        if "extra ==" in req.replace('"', " ").replace("'", " ").replace("  ", " "):
            continue
        todo.append(norm(re.match(r"[A-Za-z0-9_.\-]+", req).group(0)))

tops = md.packages_distributions()
# the project itself: installed there with --no-deps, so its own requirements stay blocked
allowed |= {norm(d) for d in tops.get("alae_fast", [])}
blocked = {top for top, dists in tops.items() if top.isidentifier() and not any(norm(d) in allowed for d in dists)}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r} (not on the lent GPU machines)",
                                      name=fullname)
        return None

sys.meta_path.insert(0, Block())
# pytest's own plugin autoload would import blocked distributions' plugins (anyio's): load only
# the allowed ones, as the GPU machines do.
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
plugins = []
for ep in md.entry_points(group="pytest11"):
    if norm(ep.dist.metadata["Name"]) in allowed:
        plugins += ["-p", ep.value]
import pytest
sys.exit(pytest.main([tests, "-c", pyproject, "--rootdir", os.path.dirname(pyproject), "-p", "no:cacheprovider",
                      *plugins, "-m", "cuda", "--collect-only", "-q"]))
"""


def test_the_cuda_tests_collect_with_only_the_gpu_machines_packages():
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(GPU_MACHINE_ROOTS), str(ROOT / "tests"),
                           str(ROOT / "pyproject.toml")],
                          capture_output=True, text=True, timeout=600, cwd="/tmp")
    out = proc.stdout + proc.stderr
    # pytest exits 2 on a collection error, 5 when nothing was selected (both fail gpu_check.sh)
    assert proc.returncode == 0, f"exit {proc.returncode}; the end of pytest's output:\n{out[-6000:]}"
    assert " collected" in out or "tests collected" in out, out[-2000:]


def test_the_check_sees_a_module_that_imports_pillow_unguarded(tmp_path):
    """The blocker is real: a test module importing PIL at its top fails collection under it."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_unguarded.py").write_text(
        "import pytest\nfrom PIL import Image\n\n@pytest.mark.cuda\ndef test_x():\n    pass\n")
    (tests / "test_guarded.py").write_text(
        "import pytest\npytest.importorskip('PIL.Image')\nfrom PIL import Image\n\n"
        "@pytest.mark.cuda\ndef test_y():\n    pass\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.pytest.ini_options]\nmarkers = ["cuda: x"]\n')
    proc = subprocess.run([sys.executable, "-c", CHILD, ",".join(GPU_MACHINE_ROOTS), str(tests), str(pyproject)],
                          capture_output=True, text=True, timeout=120, cwd="/tmp")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "test_unguarded.py" in out and "not on the lent GPU machines" in out, out[-3000:]
    assert "ERROR" in out and "test_guarded.py" not in out.split("short test summary")[-1], out[-3000:]
