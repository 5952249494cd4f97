"""The filtered_lrelu engines that need no torch, built with AddressSanitizer and UBSan and run
against a direct sum over the definition:

- tests/native/filtered_lrelu_tile_emulation.cpp: the fused CUDA kernel's phases
  (csrc/common/filtered_lrelu_tile.h) run block by block and thread by thread on the CPU, in a
  shared-memory buffer of exactly the planned size. It is how the CUDA fast path is tested on
  machines without a GPU (the CUDA tests run it for real where one is lent).
- tests/native/fuzz_filtered_lrelu_engine.cpp: the CPU engine's passes and code packing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = os.environ.get("CXX") or shutil.which("g++")

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++ or $CXX): the package itself needs one")


def _build_and_run(source: str, tmp_path: Path, *args: str) -> str:
    exe = tmp_path / Path(source).stem
    build = subprocess.run(
        [CXX, "-std=c++20", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-D_GLIBCXX_SANITIZE_VECTOR=1", "-I", str(ROOT / "csrc"), str(ROOT / source), "-o", str(exe)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    env.pop("LD_PRELOAD", None)
    run = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return run.stdout


def test_fused_cuda_kernel_emulated_matches_the_definition(tmp_path):
    out = _build_and_run("tests/native/filtered_lrelu_tile_emulation.cpp", tmp_path, "3000")
    assert "random fused launches matched the definition" in out
    # StyleGAN3's forward and gradient shapes take the fused path with real tiles (not 1x1)
    assert "StyleGAN3 pair 38 -> 82 -> 36" in out and "tile 18x18" in out


def test_cpu_engine_passes_match_the_definition(tmp_path):
    out = _build_and_run("tests/native/fuzz_filtered_lrelu_engine.cpp", tmp_path)
    assert "random passes matched the definition" in out
