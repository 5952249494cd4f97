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
import importlib.util
import os
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
# The stand-in packages install() registered: modules a checkout served through them go with them.
_stand_ins: list[str] = []
_MISSING = object()


class _CheckoutPath:
    """``__path__`` of a stand-in package: its folder in the first ``sys.path`` entry that holds
    ``torch_utils/__init__.py``, looked up at each import until one is found, so a checkout put
    on the path after install() serves its modules as its own package would have; then kept, as
    a real package's path is fixed when it is imported, so that two checkouts' modules never mix
    (a second checkout put first on the path later serves none of them)."""

    def __init__(self, name: str):
        self._parts = name.split(".")
        self._found: list[str] | None = None

    def _folders(self) -> list[str]:
        if self._found is not None:
            return self._found
        for entry in sys.path:
            if isinstance(entry, str) and os.path.isfile(os.path.join(entry or ".", self._parts[0], "__init__.py")):
                folder = os.path.join(os.path.abspath(entry), *self._parts)
                self._found = [folder] if os.path.isfile(os.path.join(folder, "__init__.py")) else []
                return self._found
        return []

    def __iter__(self):
        return iter(self._folders())

    def __len__(self) -> int:
        return len(self._folders())

    def __getitem__(self, index):
        return self._folders()[index]

    def __repr__(self) -> str:
        return f"_CheckoutPath({self._folders()!r})"


def _package(name: str) -> types.ModuleType:
    """Imports package ``name``, or registers a stand-in for it when no such package is installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name not in ("torch_utils", "torch_utils.ops"):
            raise
    pkg = types.ModuleType(name, "Stand-in package registered by alae_fast.compat.nvlabs.install().")
    pkg.__path__ = _CheckoutPath(name)

    def __getattr__(attr):
        # ``from torch_utils import misc`` asks hasattr() in importlib's _handle_fromlist before
        # importing the submodule, and a failed import then ends in a bare "cannot import name ...
        # (unknown location)". So that one caller gets the ImportError, and only when no finder
        # has the submodule (else the AttributeError lets the import load it from the checkout);
        # any other getattr(pkg, name, default) (pickle.whichmodule scans every module) must keep
        # getting an AttributeError.
        full = f"{name}.{attr}"
        if (attr.startswith("__") or sys._getframe(1).f_code.co_name != "_handle_fromlist"
                or full in sys.modules or importlib.util.find_spec(full) is not None):
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        raise ImportError(
            f"cannot import name {attr!r} from {name!r}: {name} is alae_fast.compat.nvlabs' stand-in "
            f"package, which holds only the ops install() serves, and no checkout on sys.path has {full}; "
            f"NVlabs' own torch_utils modules (misc, persistence, ...) come from a stylegan2-ada-pytorch "
            f"or stylegan3 checkout whose root is on sys.path", name=name)

    pkg.__getattr__ = __getattr__
    _saved_modules.setdefault(name, sys.modules.get(name))
    _stand_ins.append(name)
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
    ``persistence`` and the rest stay NVlabs'. Otherwise stand-in packages are registered
    that load those other modules from the first checkout on ``sys.path`` at their import, so
    the checkout may be put on the path before or after this call; while none has the module,
    ``from torch_utils import misc`` raises an ImportError that says so. Call it before
    NVlabs' training modules are imported (they bind the modules at import). Idempotent;
    :func:`uninstall` puts everything back, dropping the modules loaded through the stand-ins.
    Returns the ``torch_utils.ops`` package.
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
    for name in _stand_ins:
        for key in [k for k in sys.modules if k.startswith(f"{name}.") and k not in _saved_modules]:
            del sys.modules[key]
    _stand_ins.clear()
    for key, old in _saved_modules.items():
        if old is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = old
    _saved_modules.clear()
