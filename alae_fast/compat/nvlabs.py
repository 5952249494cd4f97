"""NVlabs StyleGAN2-ADA / StyleGAN3 ``torch_utils.ops`` signatures on alae_fast's ops.

Two ways in:

- ``install()`` registers the modules of :mod:`alae_fast.compat.nvlabs_ops` in ``sys.modules``
  as ``torch_utils.ops.bias_act``, ``torch_utils.ops.upfirdn2d``, ... so NVlabs' own
  ``training/networks.py``, ``augment.py`` (and, with filtered_lrelu, ``networks_stylegan3.py``)
  import them unchanged and compile nothing. Call it before importing NVlabs' training code.
- The functions here, for call sites you edit: same argument names, defaults and semantics.

``impl='cuda'`` (NVlabs' default) means "the compiled kernel": ours runs on CPU tensors too,
and falls back to the reference where no kernel was built. ``impl='ref'`` forces the
PyTorch reference. Behaviour was written from the documented semantics; no NVlabs code is used.
"""

from __future__ import annotations

import importlib
import sys
import types

from ..ops.modulated_conv2d import modulated_conv2d as _modulated_conv2d
from . import nvlabs_ops as torch_utils_ops
from .nvlabs_ops import MODULES, OPTIONAL_MODULES
from .nvlabs_ops.bias_act import activation_funcs, bias_act
from .nvlabs_ops.conv2d_resample import conv2d_resample
from .nvlabs_ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from .nvlabs_filtered_lrelu import filtered_lrelu  # StyleGAN3

__all__ = ["bias_act", "activation_funcs", "upfirdn2d", "setup_filter", "filter2d", "upsample2d",
           "downsample2d", "conv2d_resample", "modulated_conv2d", "filtered_lrelu", "torch_utils_ops", "install", "uninstall"]


def _load_modules() -> dict[str, types.ModuleType]:
    """The shim modules by NVlabs name: every one of MODULES, and the OPTIONAL ones whose file exists."""
    mods = {}
    for name in MODULES + OPTIONAL_MODULES:
        try:
            mods[name] = importlib.import_module(f"{torch_utils_ops.__name__}.{name}")
        except ModuleNotFoundError as e:
            if name in OPTIONAL_MODULES and e.name == f"{torch_utils_ops.__name__}.{name}":
                continue
            raise
    return mods


for _name, _mod in _load_modules().items():
    setattr(torch_utils_ops, _name, _mod)

def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """NVlabs ``networks.modulated_conv2d`` (StyleGAN2-ADA): x [N, I, H, W], weight [O, I, kh, kw],
    styles [N, I]; see :func:`alae_fast.ops.modulated_conv2d`."""
    return _modulated_conv2d(x, weight, styles, noise=noise, up=up, down=down, padding=padding,
                             resample_filter=resample_filter, demodulate=demodulate,
                             flip_weight=flip_weight, fused_modconv=fused_modconv)


# --- the sys.modules drop-in ------------------------------------------------------------------

# What install() replaced, to put back: sys.modules key -> previous module (None: was absent),
# and the attributes it set on the torch_utils.ops package.
_saved_modules: dict[str, types.ModuleType | None] = {}
_saved_attrs: list[tuple[types.ModuleType, str, object]] = []
_MISSING = object()


def _package(name: str) -> types.ModuleType:
    """Imports package ``name``, or registers an empty one when no such package is installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name not in ("torch_utils", "torch_utils.ops"):
            raise
    pkg = types.ModuleType(name, "Stand-in package registered by alae_fast.compat.nvlabs.install().")
    pkg.__path__ = []
    _saved_modules.setdefault(name, sys.modules.get(name))
    sys.modules[name] = pkg
    parent, _, child = name.rpartition(".")
    if parent:
        _saved_attrs.append((sys.modules[parent], child, getattr(sys.modules[parent], child, _MISSING)))
        setattr(sys.modules[parent], child, pkg)
    return pkg


def install() -> types.ModuleType:
    """Makes ``torch_utils.ops.<name>`` (and ``from torch_utils.ops import <name>``) give
    alae_fast's shim module for every name in ``nvlabs_ops.MODULES`` (bias_act, upfirdn2d,
    conv2d_resample, conv2d_gradfix, grid_sample_gradfix, fma) and filtered_lrelu when its
    shim is present.

    If an NVlabs checkout is importable (its root on ``sys.path``), its ``torch_utils`` and
    ``torch_utils.ops`` packages are used and only those modules are replaced: ``misc``,
    ``persistence`` and the rest stay NVlabs'. Otherwise empty stand-in packages are
    registered. Call it before NVlabs' training modules are imported (they bind the modules
    at import). Idempotent; :func:`uninstall` puts everything back. Returns the
    ``torch_utils.ops`` package.
    """
    _package("torch_utils")
    ops_pkg = _package("torch_utils.ops")
    for name, mod in _load_modules().items():
        key = f"torch_utils.ops.{name}"
        if sys.modules.get(key) is mod:
            continue
        _saved_modules.setdefault(key, sys.modules.get(key))
        _saved_attrs.append((ops_pkg, name, getattr(ops_pkg, name, _MISSING)))
        sys.modules[key] = mod
        setattr(ops_pkg, name, mod)
    return ops_pkg


def uninstall() -> None:
    """Undoes :func:`install`: restores the previous ``sys.modules`` entries and attributes."""
    for pkg, name, old in reversed(_saved_attrs):
        if old is _MISSING:
            if hasattr(pkg, name):
                delattr(pkg, name)
        else:
            setattr(pkg, name, old)
    _saved_attrs.clear()
    for key, old in _saved_modules.items():
        if old is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = old
    _saved_modules.clear()
