"""NVlabs StyleGAN3 ``torch_utils.ops.filtered_lrelu`` signature on alae_fast's op.

``filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=sqrt(2), slope=0.2,
clamp=None, flip_filter=False, impl='cuda')``: same argument names, defaults and semantics as
NVlabs stylegan3 (``impl='cuda'``, their default, means "the compiled kernel", which here runs
on CPU tensors too; ``impl='ref'`` forces the PyTorch reference). Nothing is compiled at import.
Written from the documented semantics; no NVlabs code is used.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops._dispatch import as_real, said_real
from ..ops.filtered_lrelu import filtered_lrelu as _filtered_lrelu
from .nvlabs_ops._impl import resolve_impl

__all__ = ["filtered_lrelu"]


def _padding(padding):
    """NVlabs' filtered_lrelu (unlike its upfirdn2d) takes numpy integers as padding entries;
    they become ints. Anything else goes to the op unchanged, which checks it."""
    if isinstance(padding, (list, tuple)) and any(isinstance(v, np.integer) for v in padding):
        return [int(v) if isinstance(v, np.integer) else v for v in padding]
    return padding


def _check_nvlabs_range(gain, slope) -> tuple:
    """(gain, slope) as read, for the op: NVlabs' filtered_lrelu asserts gain > 0 and slope >= 0
    (both implementations); alae_fast's op computes any real values, but code written for
    NVlabs' contract must not run with values NVlabs refuses. A number is passed on as read
    (a 0-d tensor is read once, not again by the op); non-numbers are left to the op, which
    names them."""
    g, s = as_real(gain), as_real(slope)
    if g is not None and not g > 0:
        raise ValueError(f"filtered_lrelu: gain must be > 0 (as NVlabs requires); got {said_real(gain)}")
    if s is not None and not s >= 0:
        raise ValueError(f"filtered_lrelu: slope must be >= 0 (as NVlabs requires); got {said_real(slope)}")
    return (gain if g is None else g), (slope if s is None else s)


def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2,
                   clamp=None, flip_filter=False, impl="cuda"):
    """NVlabs ``filtered_lrelu.filtered_lrelu``; see :func:`alae_fast.ops.filtered_lrelu`.

    x: [N, C, H, W]; fu, fd: 1-D or 2-D filters or None (float32 taps; float64 for float64
    x); b: [C] or None; up, down: ints >= 1; padding: int, [px, py] or [x0, x1, y0, y1]
    (entries ints or numpy integers, as NVlabs accepts); gain > 0 (default sqrt(2)), slope
    >= 0 (default 0.2), clamp (None or >= 0), flip_filter; impl 'cuda' (kernel) or 'ref'.
    Returns [N, C, OH, OW] of x's dtype. Raises TypeError naming an argument of the wrong
    type, ValueError naming one of the right type with a bad value (gain <= 0 and slope < 0
    included, which NVlabs refuses and alae_fast's op would compute).
    """
    gain, slope = _check_nvlabs_range(gain, slope)
    return _filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=_padding(padding), gain=gain, slope=slope,
                           clamp=clamp, flip_filter=flip_filter, impl=resolve_impl(impl, "filtered_lrelu"))
