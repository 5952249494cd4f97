"""NVlabs ``torch_utils.ops.upfirdn2d``: the op, its filter helpers, and the three argument
parsers NVlabs' own ``conv2d_resample.py`` and layers import from this module.

Semantics are NVlabs' and alae_fast's alike (see :mod:`alae_fast.ops.upfirdn2d`): up/down
int or [x, y]; padding int, [px, py] or [x0, x1, y0, y1]; f 1-D (separable) or 2-D (float32;
a float64 x gets float64 taps), or None; ``flip_filter=False`` convolves; ``gain`` scales the
output. ``impl='cuda'`` (default) runs the compiled kernel on CPU or CUDA tensors,
``impl='ref'`` the reference. f receives its gradient on both.
"""

from __future__ import annotations

import importlib

import torch

from . import _impl
from ._impl import resolve_impl

# The module: the name alae_fast.ops.upfirdn2d is also the function's, re-exported by alae_fast.ops.
_ops = importlib.import_module("alae_fast.ops.upfirdn2d")

__all__ = ["upfirdn2d", "setup_filter", "filter2d", "upsample2d", "downsample2d"]

_init = _impl.init  # NVlabs' module API: training loops call <module>._init() first


def _parse_scaling(scaling) -> tuple[int, int]:
    """int or [sx, sy] -> (sx, sy), each >= 1 (TypeError for another type or non-int entries,
    ValueError for another length or a factor < 1)."""
    return _ops._parse_scaling(scaling, "scaling", "upfirdn2d")


def _parse_padding(padding) -> tuple[int, int, int, int]:
    """int, [px, py] or [x0, x1, y0, y1] -> (x0, x1, y0, y1) (TypeError for another type or
    non-int entries, ValueError for another length)."""
    return _ops._parse_padding(padding, "upfirdn2d")


def _get_filter_size(f) -> tuple[int, int]:
    """(taps along x, taps along y) of a 1-D or 2-D filter; (1, 1) for None."""
    if f is not None and not isinstance(f, torch.Tensor):
        raise TypeError(f"upfirdn2d: f must be None or a 1-D or 2-D tensor; got {f!r:.80} of type {type(f).__name__}")
    if f is not None and f.ndim not in (1, 2):
        raise ValueError(f"upfirdn2d: f must be None or a 1-D or 2-D tensor; got {f!r:.80}")
    fw, fh = _ops._filter_size(f)
    if fw < 1 or fh < 1:
        raise ValueError(f"upfirdn2d: f must not be empty; got shape {tuple(f.shape)}")
    return fw, fh


def setup_filter(f, device=torch.device("cpu"), normalize=True, flip_filter=False, gain=1, separable=None):
    """NVlabs ``setup_filter``: float32 taps on ``device`` (default CPU); see
    :func:`alae_fast.ops.setup_filter`."""
    return _ops.setup_filter(f, device=device, normalize=normalize, flip_filter=flip_filter, gain=gain,
                             separable=separable)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upfirdn2d``; see :func:`alae_fast.ops.upfirdn2d`."""
    return _ops.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                          impl=resolve_impl(impl, "upfirdn2d"))


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``filter2d``; see :func:`alae_fast.ops.filter2d`."""
    return _ops.filter2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain, impl=resolve_impl(impl, "filter2d"))


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upsample2d`` (gain multiplied by ux * uy); see :func:`alae_fast.ops.upsample2d`."""
    return _ops.upsample2d(x, f, up=up, padding=padding, flip_filter=flip_filter, gain=gain,
                           impl=resolve_impl(impl, "upsample2d"))


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``downsample2d``; see :func:`alae_fast.ops.downsample2d`."""
    return _ops.downsample2d(x, f, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                             impl=resolve_impl(impl, "downsample2d"))
