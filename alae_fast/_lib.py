"""Loads the compiled library ``alae_fast/_C.so`` once, and says what it was built with.

Nothing is compiled at import. If the library is missing or fails to load (built against
another torch, say), importing still works: a warning names the reason once, and every op
runs its pure-PyTorch reference.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import torch

_LOADED = False
_ERROR: str | None = None
_INFO: dict | None = None


def _find_library() -> Path | None:
    # find_spec, not __file__: in an editable install the package folder is the source tree
    # while the built library lives in site-packages.
    spec = importlib.util.find_spec("alae_fast._C")
    if spec is not None and spec.origin:
        return Path(spec.origin)
    for root in (Path(p) for p in importlib.util.find_spec("alae_fast").submodule_search_locations):
        hit = sorted(root.glob("_C*.so"))
        if hit:
            return hit[0]
    return None


def _installed_library() -> Path | None:
    """The library of the installed distribution (site-packages), or None when none is installed."""
    import importlib.metadata

    try:
        files = importlib.metadata.distribution("alae_fast").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    dist = importlib.metadata.distribution("alae_fast")
    for f in files:
        if f.name.startswith("_C") and f.suffix == ".so" and f.parent.name == "alae_fast":
            hit = Path(dist.locate_file(f))
            if hit.is_file():
                return hit
    return None


def _not_found_reason() -> str:
    """Why no library was found: most often a source folder imported instead of the installed
    package (Python puts the script's folder first on sys.path), which the advice to build
    would not fix."""
    here = Path(__file__).resolve().parent
    installed = _installed_library()
    if installed is not None and installed.parent.resolve() != here:
        return (f"alae_fast was imported from {here}, a source folder without a built library, not from the "
                f"installed package ({installed.parent}): Python looks in the script's folder (or the current "
                f"one) first; run from another folder, or install with pip install --no-build-isolation -e .")
    if (here.parent / "pyproject.toml").is_file():
        return (f"alae_fast was imported from the source folder {here}, where no library was built: pip install "
                f"--no-build-isolation . (then run from outside the source folder), or -e . to build it in place")
    return "alae_fast/_C.so was not found: the package was not built (pip install --no-build-isolation .)"


def _load() -> None:
    global _LOADED, _ERROR, _INFO
    path = _find_library()
    if path is None:
        _ERROR = _not_found_reason()
    else:
        try:
            torch.ops.load_library(str(path))
            _INFO = json.loads(torch.ops.alae_fast.build_info())
            _LOADED = True
        except Exception as e:  # any failure means: use the references, and say why
            _ERROR = f"loading {path} failed: {type(e).__name__}: {e}"
    if not _LOADED:
        warnings.warn(f"alae_fast: compiled ops unavailable, using PyTorch references ({_ERROR})",
                      RuntimeWarning, stacklevel=3)


def loaded() -> bool:
    """True when the compiled library is loaded (its CPU kernels are then available)."""
    return _LOADED


def load_error() -> str | None:
    """Why the compiled library did not load, or None when it did."""
    return _ERROR


def has_kernel(device_type: str) -> bool:
    """True when a compiled kernel exists for ``device_type`` ('cpu' or 'cuda')."""
    if not _LOADED:
        return False
    if device_type == "cpu":
        return True
    if device_type == "cuda":
        return bool(_INFO.get("cuda"))
    return False


def build_info() -> dict:
    """What the loaded library was built with.

    Returns a dict: ``torch`` (version compiled against), ``torch_runtime`` (version running),
    ``cpu`` and ``cuda`` (bool: kernels built), ``cuda_archs`` (str, e.g. "90-real"),
    ``openmp`` (bool), ``libmvec`` (bool: the CPU activation loops call glibc's vectorised
    exp/tanh), ``sanitize`` (bool: an ASan+UBSan test build), ``compiler``, ``cpu_kernels``
    (str: the instruction set whose clones of the CPU loops run on this CPU, e.g.
    "x86-64-v3 (AVX2)"; training figures are deterministic per machine because of it), ``loaded`` (bool),
    ``error`` (str or None), ``default_impl`` ('auto' or 'ref', from ALAE_FAST_IMPL; for any
    other value of it, the message every op raises, so that this report still prints).
    """
    info = dict(_INFO) if _INFO else {"torch": None, "cpu": False, "cuda": False, "cuda_archs": "",
                                      "openmp": False, "compiler": None, "cpu_kernels": None}
    try:
        impl = default_impl()
    except ValueError as e:
        impl = str(e)
    info.update(loaded=_LOADED, error=_ERROR, torch_runtime=torch.__version__, default_impl=impl)
    return info


def default_impl() -> str:
    """'ref' when the environment variable ALAE_FAST_IMPL=ref forces the references, else 'auto'."""
    value = os.environ.get("ALAE_FAST_IMPL", "auto").strip().lower() or "auto"
    if value not in ("auto", "ref"):
        raise ValueError(f"ALAE_FAST_IMPL must be 'auto' or 'ref'; got {value!r}")
    return value


_load()
