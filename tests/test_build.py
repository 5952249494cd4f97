"""The compiled library: it loads, says what it was built with, and runs multithreaded."""

import os
import subprocess
import sys

import torch

import alae_fast


def test_library_loaded():
    info = alae_fast.build_info()
    assert info["loaded"], info["error"]
    assert info["cpu"] is True and info["openmp"] is True
    # The library must be built against the torch that runs it.
    assert info["torch"] == torch.__version__
    assert info["torch_runtime"] == torch.__version__
    assert isinstance(info["cuda"], bool)
    if info["cuda"]:
        assert info["cuda_archs"]


def test_parallel_for_uses_threads():
    # Without OpenMP at build time, at::parallel_for in our code silently runs on one thread.
    if torch.get_num_threads() < 2:
        return
    assert torch.ops.alae_fast.parallel_threads(256) >= 2


def test_import_without_library_warns_and_falls_back(tmp_path):
    # A package folder without _C.so: import works, warns once, and ops run their references.
    import shutil
    src = tmp_path / "alae_fast"
    shutil.copytree(os.path.dirname(alae_fast.__file__), src, ignore=shutil.ignore_patterns("_C*.so", "__pycache__"))
    # Drop an editable install's redirecting finder, which would still map alae_fast._C to the build.
    code = ("import sys, warnings; warnings.simplefilter('always')\n"
            "sys.meta_path = [f for f in sys.meta_path if 'ScikitBuild' not in type(f).__name__]\n"
            "import torch, alae_fast\n"
            f"assert alae_fast.__file__.startswith({str(tmp_path)!r}), alae_fast.__file__\n"
            "info = alae_fast.build_info(); assert not info['loaded'] and 'not found' in info['error']\n"
            "y = alae_fast.ops.bias_act(torch.tensor([-1.0, 2.0]), act='lrelu')\n"
            "print(round(y[0].item(), 4), round(y[1].item(), 4))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["-0.2828", "2.8284"]
    assert out.stderr.count("compiled ops unavailable") == 1
