"""Submodules as attributes on first use, so ``import alae_fast`` stays cheap and still gives
``alae_fast.training.official.official_lod_batch(...)`` without a second import line."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Iterable


def lazy_submodules(package: str, path: Iterable[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package's ``__init__``: an attribute that names one of its
    public submodules or subpackages (found on ``path``, the package's ``__path__``; names with a
    leading underscore are private) imports it; anything else raises AttributeError as usual."""
    path = list(path)

    def names() -> set[str]:
        # read on each miss, not cached: cheap, and a module added to an editable install shows up
        return {m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")}

    def __getattr__(name: str):
        if not name.startswith("_") and name in names():
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        module = importlib.import_module(package)
        return sorted(set(vars(module)) | names())

    return __getattr__, __dir__
