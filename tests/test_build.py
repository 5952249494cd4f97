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


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_cpu_kernels_name_the_running_cpus_level():
    # The level glibc's resolver picks, read independently from the kernel's CPU flags (the
    # x86-64 psABI levels: v3 = AVX2, BMI1/2, F16C, FMA, LZCNT (abm), MOVBE; v4 = AVX-512 F, BW,
    # CD, DQ, VL on top).
    info = alae_fast.build_info()
    flags = _cpu_flags()
    if flags is None or info["sanitize"] or os.uname().machine != "x86_64":
        assert isinstance(info["cpu_kernels"], str)
        return
    v3 = {"avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "avx", "sse4_2", "popcnt"} <= flags
    v4 = v3 and {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
    expected = "x86-64-v4 (AVX-512)" if v4 else "x86-64-v3 (AVX2)" if v3 else "x86-64 (baseline)"
    assert info["cpu_kernels"] == expected, flags


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
            "info = alae_fast.build_info(); assert not info['loaded'], info\n"
            # the installed package has the library: the reason names this folder and says how to
            # reach the installed one, not "the package was not built"
            f"assert 'imported from {src}, a source folder without a built library' in info['error'], info\n"
            "assert 'not from the installed package' in info['error'] and 'not built' not in info['error']\n"
            "y = alae_fast.ops.bias_act(torch.tensor([-1.0, 2.0]), act='lrelu')\n"
            "print(round(y[0].item(), 4), round(y[1].item(), 4))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["-0.2828", "2.8284"]
    assert out.stderr.count("compiled ops unavailable") == 1


def test_library_not_found_reasons(tmp_path, monkeypatch):
    """Without the library, the reason fits the case: a source checkout (pyproject.toml beside the
    package) says to install it and run from elsewhere; a bare copy says the package was not built."""
    from alae_fast import _lib

    pkg = tmp_path / "alae_fast"
    pkg.mkdir()
    monkeypatch.setattr(_lib, "__file__", str(pkg / "_lib.py"))
    monkeypatch.setattr(_lib, "_installed_library", lambda: None)
    assert "the package was not built" in _lib._not_found_reason()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'alae_fast'\n")
    why = _lib._not_found_reason()
    assert f"imported from the source folder {pkg}, where no library was built" in why and "-e ." in why
    lib = tmp_path / "site" / "alae_fast" / "_C.so"
    monkeypatch.setattr(_lib, "_installed_library", lambda: lib)
    why = _lib._not_found_reason()
    assert f"imported from {pkg}" in why and f"installed package ({lib.parent})" in why


def test_every_submodule_is_an_attribute_on_first_use():
    """`import alae_fast` imports no subpackage beyond the ops and layers, yet every public
    subpackage and their submodules (as the README names them) are reachable as attributes."""
    code = ("import sys, alae_fast\n"
            "assert not any(m in sys.modules for m in ('alae_fast.training', 'alae_fast.edit', 'alae_fast.app'))\n"
            "assert callable(alae_fast.training.official.official_lod_batch)\n"
            "assert callable(alae_fast.edit.edit_w) and callable(alae_fast.inference.load_run)\n"
            "assert alae_fast.compat.rosinality.__name__ == 'alae_fast.compat.rosinality'\n"
            "assert alae_fast.bench.train_load.__name__ == 'alae_fast.bench.train_load'\n"
            "assert alae_fast.app.uploads.__name__ == 'alae_fast.app.uploads'\n"
            "assert {'edit', 'training', 'models'} <= set(dir(alae_fast)) and 'official' in dir(alae_fast.training)\n"
            "for owner, name in ((alae_fast, 'nope'), (alae_fast, '_C'), (alae_fast.training, 'nope')):\n"
            "    try:\n"
            "        getattr(owner, name)\n"
            "    except AttributeError as e:\n"
            "        assert repr(name) in str(e), e\n"
            "    else:\n"
            "        raise AssertionError(name)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _configure(tmp_path, name, env_extra):
    """Runs CMake's configure step of this source tree (CPU only) in tmp_path/name; returns
    the completed process. Skips where cmake or a GNU g++ is missing."""
    import shutil
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    cmake = shutil.which("cmake", path=os.path.dirname(sys.executable)) or shutil.which("cmake")
    if cmake is None or shutil.which("g++") is None or not (root / "CMakeLists.txt").is_file():
        import pytest
        pytest.skip("needs cmake, g++ and the source tree")
    env = {k: v for k, v in os.environ.items() if k not in ("CXX", "CXXFLAGS", "LDFLAGS")}
    env.update(env_extra)
    return subprocess.run([cmake, "-S", str(root), "-B", str(tmp_path / name), f"-DPython_EXECUTABLE={sys.executable}",
                           "-DALAE_FAST_CUDA=OFF"], capture_output=True, text=True, env=env, timeout=300)


def test_configure_refuses_a_compiler_that_links_libstdcxx_statically(tmp_path):
    # The lent GPU machines' image sets CXX to a g++ wrapper that links libstdc++ statically:
    # the library it built segfaulted at import, beside torch's shared libstdc++. Configure
    # must stop first, naming the compiler and the remedy, for a wrapper and for LDFLAGS alike.
    wrapper = tmp_path / "g++-static"
    wrapper.write_text('#!/bin/sh\nexec g++ "$@" -static-libstdc++\n')
    wrapper.chmod(0o755)
    for name, extra in (("wrapper", {"CXX": str(wrapper)}), ("ldflags", {"LDFLAGS": "-static-libstdc++"})):
        r = _configure(tmp_path, name, extra)
        assert r.returncode != 0, (name, r.stdout[-2000:])
        err = " ".join(r.stderr.split())
        assert "links libstdc++ statically" in err and "CXX=/usr/bin/g++" in err, (name, err[-2000:])
    ok = _configure(tmp_path, "plain", {})
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "links libstdc++ statically" not in ok.stderr
