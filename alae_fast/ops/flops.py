"""FLOP formulas of the ``torch.ops.alae_fast`` ops, for ``torch.utils.flop_counter``.

Without them ``FlopCounterMode`` (and anything that reads ``flop_registry``, such as
``alae_fast.training.eta``) counts 0 for every op of this package, so a StyleGAN's FIR filtering
(blur, up/downsampling, StyleGAN3's filtered leaky ReLU) went uncounted while the convolutions
beside it were counted. The rule, stated here once:

- **A FLOP is what torch's counter counts**: 2 per multiply-add of a convolution or a matrix
  product (``torch.utils.flop_counter.conv_flop_count``). Elementwise arithmetic and reductions
  count 0, as torch counts none for its own (``F.leaky_relu``, ``F.instance_norm``, ``torch.mul``,
  ``torch.sum``): so ``bias_act``, ``adain``, ``instance_norm_stats`` and ``modulate_weight`` and
  their gradient ops are registered with 0, the count of their plain-torch references, and
  a model built from these ops counts what the same model built from torch ops counts.
- **upfirdn2d** is a depthwise convolution of each [H, W] plane with the filter. Per axis, in
  the padded, zero-inserted image of length ``in*up + pad0 + pad1``, the output sample o reads
  the taps at positions ``o*down + t`` (t < taps). A tap is counted along the axis when its
  position there holds an input sample or padding, and not when it holds one of the ``up - 1``
  zeros inserted after each sample: padding is counted as torch counts a padded ``conv2d``,
  inserted zeros are not, as torch counts a strided ``conv_transpose2d`` by its input samples.
  With ``up = 1`` the count is exactly torch's count of ``F.pad`` + ``F.conv2d(stride=down,
  groups=C)``.

  A tap of a 2-D filter costs one multiply-add where it is counted along both axes: per plane
  ``A_x * A_y``, A the counted (output, tap) pairs of an axis. A 1-D (separable) filter is two 1-D convolutions, along x then y (the reference's
  order): ``R_y * A_x + OW * A_y``, R_y the rows of the padded image that are input or padding
  (rows of inserted zeros filter to zeros). No filter (None) is no arithmetic: 0 (the op then
  pads, crops or resamples, and its gain is an elementwise scale).
- **filtered_lrelu** and **filtered_lrelu_masked** are their upsampling and downsampling passes,
  each counted as upfirdn2d; the bias and the activation are elementwise. **filtered_lrelu_grad**
  is the adjoints of those passes (``D^T`` then ``U^T``: upfirdn2d with up and down swapped and
  the padding that gives the forward's input size), each counted the same way.

Under ``torch.compile`` with dynamic shapes (inductor estimates a node's run time from its
formula) the sizes may be symbols, whose values a formula must not ask for: there an axis with
``up > 1`` is counted as ``taps / up`` taps per output (``out * taps // up`` in all: each output
meets one phase of the zero-inserted axis, and the phases hold ``taps / up`` input taps on
average; exact up to the borders when ``down`` shares no factor with ``up``, within one tap per
output otherwise) and its rows as ``in + pad0 + pad1``; ``up = 1`` stays exact.

The other gradients are ops counted above (upfirdn2d's backward is upfirdn2d; its filter
gradient and conv2d_resample and modulated_conv2d's convolutions are torch's own ``conv2d``).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import flop_registry, register_flop_formula

from .. import _lib

__all__ = ["upfirdn2d_flops", "filtered_lrelu_flops", "filtered_lrelu_grad_flops"]


# --- upfirdn2d -------------------------------------------------------------------------------------

def _counted(n: int, up: int, pad0: int, length: int) -> list[int]:
    """1 for each of the ``length`` positions of the padded, zero-inserted axis that holds an
    input sample or padding, 0 for an inserted zero. Position p is sample ``p - pad0`` of the
    zero-inserted axis (negative pad0: a crop), which is an input sample where divisible by up."""
    size = n * up
    return [1 if (q < 0 or q >= size or q % up == 0) else 0 for q in range(-pad0, length - pad0)]


def _symbolic(*values) -> bool:
    return not all(isinstance(v, int) for v in values)


def _axis(n: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> tuple[int, int, int]:
    """(counted (output, tap) pairs, counted positions, outputs) of one axis."""
    length = n * up + pad0 + pad1
    if _symbolic(n, up, down, pad0, pad1, taps):  # sizes as symbols: no comparison, no loop
        out = (length - taps + down) // down
        if up == 1:
            return out * taps, length, out
        return out * taps // up, n + pad0 + pad1, out
    out = max((length - taps + down) // down, 0)
    if up == 1:  # every position is an input sample or padding
        return out * taps, max(length, 0), out
    counted = _counted(n, up, pad0, max(length, 0))
    pairs = sum(sum(counted[t: t + out * down: down]) for t in range(taps))
    return pairs, sum(counted), out


def upfirdn2d_flops(x_shape, f_shape, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0)) -> int:
    """FLOPs of ``upfirdn2d`` of an x of ``x_shape`` [N, C, H, W] with a filter of ``f_shape``
    ([taps_y, taps_x], [taps] for a separable one, None for none) by the module's rule. ``up``
    and ``down`` are [x, y], ``padding`` [x0, x1, y0, y1], as the op's schema takes them."""
    if f_shape is None:
        return 0
    N, C, H, W = x_shape
    if len(f_shape) == 2:
        fh, fw = f_shape
    else:
        fh = fw = f_shape[0]
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = padding
    ax, _, ow = _axis(W, ux, dx, px0, px1, fw)
    ay, rows, _ = _axis(H, uy, dy, py0, py1, fh)
    macs = ax * ay if len(f_shape) == 2 else rows * ax + ow * ay
    return 2 * N * C * macs


# --- filtered_lrelu --------------------------------------------------------------------------------

def _taps(f_shape) -> tuple[int, int]:
    """(taps along x, taps along y), (1, 1) without a filter."""
    if f_shape is None:
        return 1, 1
    return f_shape[-1], f_shape[0]


def _upsampled(x_shape, fu_shape, up: int, padding) -> tuple[int, int]:
    """(UH, UW): the plane after filtered_lrelu's upsampling pass."""
    fuw, fuh = _taps(fu_shape)
    px0, px1, py0, py1 = padding
    return (x_shape[2] * up + py0 + py1 - fuh + 1, x_shape[3] * up + px0 + px1 - fuw + 1)


def filtered_lrelu_flops(x_shape, fu_shape, fd_shape, up: int, down: int, padding) -> int:
    """FLOPs of ``filtered_lrelu`` (and ``filtered_lrelu_masked``) on an x of ``x_shape``: its
    upsampling pass (fu, up, padding) and its downsampling pass (fd, down), each as upfirdn2d."""
    N, C = x_shape[0], x_shape[1]
    uh, uw = _upsampled(x_shape, fu_shape, up, padding)
    return (upfirdn2d_flops(x_shape, fu_shape, [up, up], [1, 1], padding)
            + upfirdn2d_flops((N, C, uh, uw), fd_shape, [1, 1], [down, down], [0, 0, 0, 0]))


def _adjoint_padding(n: int, m: int, up: int, down: int, pad0: int, taps: int) -> tuple[int, int]:
    """(pad0, pad1) of the upfirdn2d (up and down swapped, taps flipped) that is the adjoint of
    one with ``n`` inputs, ``m`` outputs, ``up``, ``down``, ``pad0`` and ``taps`` along an axis:
    it pads the other side by ``taps - 1 - pad0`` and ends where its ``n`` outputs end."""
    adj0 = taps - 1 - pad0
    return adj0, (n - 1) * up + taps - m * down - adj0


def filtered_lrelu_grad_flops(dy_shape, fu_shape, fd_shape, in_size, up: int, down: int, padding) -> int:
    """FLOPs of ``filtered_lrelu_grad``: ``D^T`` (dy [N, C, OH, OW] back to the upsampled plane)
    then ``U^T`` (back to ``in_size`` [H, W]), each the upfirdn2d adjoint of the forward's pass."""
    N, C, OH, OW = dy_shape
    H, W = in_size
    uh, uw = _upsampled((N, C, H, W), fu_shape, up, padding)
    (fdw, fdh), (fuw, fuh) = _taps(fd_shape), _taps(fu_shape)
    px0, _, py0, _ = padding
    dx0, dx1 = _adjoint_padding(uw, OW, 1, down, 0, fdw)
    dy0, dy1 = _adjoint_padding(uh, OH, 1, down, 0, fdh)
    ux0, ux1 = _adjoint_padding(W, uw, up, 1, px0, fuw)
    uy0, uy1 = _adjoint_padding(H, uh, up, 1, py0, fuh)
    return (upfirdn2d_flops((N, C, OH, OW), fd_shape, [down, down], [1, 1], [dx0, dx1, dy0, dy1])
            + upfirdn2d_flops((N, C, uh, uw), fu_shape, [1, 1], [up, up], [ux0, ux1, uy0, uy1]))


# --- registration ----------------------------------------------------------------------------------
# Formulas get the op's arguments with tensors replaced by their shapes (register_flop_formula's
# default), and the output's shapes as out_shape.

def _upfirdn2d(x, f, up, down, padding, flip_filter, gain, *, out_shape=None, **kwargs) -> int:
    return upfirdn2d_flops(x, f, up, down, padding)


def _filtered_lrelu(x, fu, fd, b, up, down, padding, *args, out_shape=None, **kwargs) -> int:
    return filtered_lrelu_flops(x, fu, fd, up, down, padding)


def _filtered_lrelu_masked(v, state, fu, fd, up, down, padding, *args, out_shape=None, **kwargs) -> int:
    return filtered_lrelu_flops(v, fu, fd, up, down, padding)


def _filtered_lrelu_grad(dy, state, fu, fd, in_size, up, down, padding, *args, out_shape=None, **kwargs) -> int:
    return filtered_lrelu_grad_flops(dy, fu, fd, in_size, up, down, padding)


def _elementwise(*args, out_shape=None, **kwargs) -> int:
    return 0


FORMULAS = {
    "upfirdn2d": _upfirdn2d,
    "filtered_lrelu": _filtered_lrelu,
    "filtered_lrelu_masked": _filtered_lrelu_masked,
    "filtered_lrelu_grad": _filtered_lrelu_grad,
    **{op: _elementwise for op in ("bias_act", "bias_act_grad", "adain", "adain_grad", "instance_norm_stats",
                                   "instance_norm_stats_grad", "modulate_weight", "modulate_weight_grad")},
}


def _register() -> None:
    for name, formula in FORMULAS.items():
        target = getattr(torch.ops.alae_fast, name)
        if target not in flop_registry:  # registering twice is an error (a re-imported module)
            register_flop_formula(target)(formula)


if _lib.loaded():
    _register()
