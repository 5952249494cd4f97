"""rosinality/stylegan2-pytorch's op and layer API on alae_fast's fused ops.

Call :func:`install` before importing rosinality's ``model.py`` (or ``train.py``, ``swagan.py``,
``non_leaking.py``): their ``from op import ...`` then get these ops and the checkout's ``op/``
(which JIT-compiles CUDA at import) is never imported. Or swap ``from op import
fused_leaky_relu, upfirdn2d`` (and the layers of ``model.py``) for ``from
alae_fast.compat.rosinality import ...``: same signatures, defaults and semantics, with compiled
CPU and CUDA kernels behind them and double backward (R1) through all of it. No JIT build
happens at import.

Semantics kept from that code base:
- ``upfirdn2d(input, kernel, up, down, pad)``: ``up``/``down`` an int or (x, y); ``pad``
  (before, after) on both axes or (x0, x1, y0, y1); no gain; a 2-D kernel applied as a true
  convolution (flipped).
- ``fused_leaky_relu`` uses ``negative_slope`` (as rosinality's CUDA op; its CPU fallback
  always used 0.2, a bug not reproduced).
- ``conv2d_gradfix``: ``conv2d``, ``conv_transpose2d``, ``no_weight_gradients``, ``enabled``
  (plain torch convolutions, which take double backward on current PyTorch).
- ``make_kernel`` normalises to sum 1; ``Upsample`` multiplies the kernel by factor**2.
- ``EqualLinear`` stores weights divided by ``lr_mul`` and scales by ``lr_mul/sqrt(in_dim)``;
  with ``activation`` it runs ``fused_leaky_relu`` (slope 0.2, gain sqrt(2)) on the output.

The layers check their constructor arguments as the ops do (:mod:`alae_fast.ops`): TypeError
naming the layer and the argument for one of the wrong type (a float, bool or string where a
size or factor is an int; a flag such as ``bias``, ``demodulate`` or ``upsample`` that is not a
bool: rosinality's model.py passes bools; a string or None for a number; taps that are not
numbers), ValueError for one of the right type with a bad value (a size or factor < 1, NaN or
inf, ``lr_mul`` <= 0, a pad of another length, taps empty or summing to 0). Their forwards check
the tensors they are given before torch sees them: TypeError naming the layer and ``input`` (or
``style``) for one that is not a float tensor, ValueError for one of a shape the layer cannot take
(another ndim, another channel count or style length than the layer was built for, a style batch
other than input's, an image too small for the layer's kernel or resampling), saying the shape
expected and the shape given. Shape comparisons only: no tensor is read, and the layers still trace
whole under ``torch.compile(fullgraph=True)``.
"""

from __future__ import annotations

import math
import re
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from ..ops._dispatch import (as_real, check_bool, check_int, check_positive_int, check_real, check_same, check_tensor, is_finite, is_int,
                             quiet_under_trace, said_kind, said_typed, static_sizes)
# whether the forwards compare their inputs' sizes: not under torch.jit.trace (14 TracerWarnings a
# traced ModulatedConv2d, where it had printed 2)
from ..ops._dispatch import shapes_checked as _shapes_checked
from ..ops.bias_act import bias_act
from ..ops.upfirdn2d import _check_filter, _out_size
from ..ops.upfirdn2d import upfirdn2d as _upfirdn2d
from .nvlabs_ops import conv2d_gradfix  # rosinality's op/conv2d_gradfix.py has NVlabs' API

__all__ = ["fused_leaky_relu", "FusedLeakyReLU", "upfirdn2d", "conv2d_gradfix", "make_kernel", "Blur",
           "Upsample", "Downsample", "EqualLinear", "EqualConv2d", "ModulatedConv2d", "install", "uninstall"]


def fused_leaky_relu(input: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = 2 ** 0.5) -> torch.Tensor:
    """``leaky_relu(input + bias, negative_slope) * scale``, bias broadcast along dim 1.

    input [N, C, ...] (any shape without a bias) any float dtype; bias [C] or None (cast to input's dtype,
    as rosinality does); negative_slope, scale real numbers (Python, NumPy or 0-d tensors that
    do not require grad: :func:`alae_fast.ops._dispatch.as_real`). Raises TypeError for an
    argument of the wrong type (a string, None or bool for a number), ValueError for one of the
    right type with a bad value (NaN, inf, a wrong shape), naming ``input``, ``bias``,
    ``negative_slope`` or ``scale``, as rosinality's arguments are called.
    """
    op = "fused_leaky_relu"
    # every argument checked here, so that no error names bias_act's own arguments (x, b, alpha, gain)
    check_tensor(input, "input", op)
    if bias is not None:
        if input.ndim < 2:
            raise ValueError(f"{op}: input must be [N, C, ...] (at least 2-D) with a bias; got "
                             f"{tuple(input.shape)}")
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"{op}: bias must be a tensor [C] or None; got {type(bias).__name__}")
        if _shapes_checked() and bias.shape != (input.shape[1],):
            raise ValueError(f"{op}: bias must be 1-D of length input.shape[1] = {input.shape[1]}; got "
                             f"{tuple(bias.shape)}")
        check_same(bias, "bias", input, op, dtype=False, x_name="input")
        bias = bias.to(input.dtype)

    def real(name, value):  # rosinality's own words: no "or None", the value as given
        r = as_real(value)
        if r is None:
            raise TypeError(f"{op}: {name} must be a real number; got {said_kind(value)}")
        if not is_finite(r):
            raise ValueError(f"{op}: {name} must be finite; got {value!r}")
        return r

    alpha = real("negative_slope", negative_slope)
    return bias_act(input, bias, dim=1, act="lrelu", alpha=alpha, gain=real("scale", scale))


class FusedLeakyReLU(nn.Module):
    """rosinality's ``FusedLeakyReLU(channel, bias=True, negative_slope=0.2, scale=2**0.5)``."""

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = 2 ** 0.5):
        super().__init__()
        name = "FusedLeakyReLU"
        channel = check_positive_int(channel, "channel", name)
        self.bias = nn.Parameter(torch.zeros(channel)) if check_bool(bias, "bias", name) else None
        # checked as given, kept as given: fused_leaky_relu reads them at each call
        check_real(negative_slope, "negative_slope", name)
        check_real(scale, "scale", name)
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:  # without one any shape goes, as in fused_leaky_relu
            check_tensor(input, "input", "FusedLeakyReLU")
            if _shapes_checked() and (input.ndim < 2 or input.shape[1] != self.bias.shape[0]):
                raise ValueError(f"FusedLeakyReLU: input must be [N, channel, ...] with channel = {self.bias.shape[0]} "
                                 f"(its bias is added along dim 1); got shape {tuple(input.shape)}")
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


def _sequence(value) -> bool:
    """Whether ``value`` is a sequence of up/down factors or pads: a tuple or list (torch.Size
    included), or a 1-D NumPy array, which rosinality's native op takes as any iterable."""
    return isinstance(value, (tuple, list)) or (type(value).__module__ == "numpy" and getattr(value, "ndim", 0) == 1)


def _pair(value, name: str) -> list[int]:
    """rosinality's up/down: an int, or an (x, y) pair of ints, each >= 1 (TypeError for another
    type or non-int entries, ValueError for a sequence of another length or a factor < 1)."""
    pair = list(value) if _sequence(value) else [value, value]
    if len(pair) != 2:
        raise ValueError(f"upfirdn2d: {name} must be an int or an (x, y) pair of ints; got {value!r}")
    if not all(is_int(v) for v in pair):
        raise TypeError(f"upfirdn2d: {name} must be an int or an (x, y) pair of ints; got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"upfirdn2d: {name} must be >= 1; got {value!r}")
    return [int(v) for v in pair]


def upfirdn2d(input: torch.Tensor, kernel: torch.Tensor, up=1, down=1, pad=(0, 0)) -> torch.Tensor:
    """rosinality's ``upfirdn2d``: zero-insert by ``up``, pad (negative crops), convolve with
    ``kernel``, keep every ``down``-th sample.

    Args:
        input: [N, C, H, W], any float dtype.
        kernel: 2-D [kh, kw] taps of any float dtype (applied in float64 for float64 input,
            else float32), applied as a true convolution.
        up, down: int or (x, y) factors, each >= 1 (default 1).
        pad: (before, after) ints, the same on both axes, or (x0, x1, y0, y1) (default (0, 0)).
            Pairs and pads may be tuples, lists or 1-D NumPy integer arrays.

    Returns [N, C, (H*uy + y0 + y1 - kh + dy) // dy, (W*ux + x0 + x1 - kw + dx) // dx] in
    input's dtype. Raises TypeError naming ``input``, ``kernel``, ``up``, ``down`` or ``pad``
    when of the wrong type (a float, bool, string or None factor or pad is refused, not
    truncated; a kernel that is not a tensor), ValueError when of the right type with a bad
    value (a factor < 1, a pad of another length or that leaves no output, a kernel not 2-D).
    """
    op = "upfirdn2d"
    check_tensor(input, "input", op)
    if input.ndim != 4:
        raise ValueError(f"{op}: input must be a 4-D tensor [N, C, H, W]; got {tuple(input.shape)}")
    if not _sequence(pad):
        raise TypeError(f"upfirdn2d: pad must be (before, after) or (x0, x1, y0, y1); got {pad!r} "
                        f"of type {type(pad).__name__}")
    if len(pad) not in (2, 4):
        raise ValueError(f"upfirdn2d: pad must be (before, after) or (x0, x1, y0, y1); got {pad!r}")
    if not all(is_int(p) for p in pad):
        raise TypeError(f"upfirdn2d: pad must hold ints; got {pad!r}")
    pad = [int(p) for p in pad]
    if len(pad) == 2:
        pad = [pad[0], pad[1], pad[0], pad[1]]
    if not isinstance(kernel, torch.Tensor):
        raise TypeError(f"upfirdn2d: kernel must be a 2-D [kh, kw] tensor (as rosinality's); "
                        f"got {kernel!r:.80} of type {type(kernel).__name__}")
    if kernel.ndim != 2:
        raise ValueError(f"upfirdn2d: kernel must be a 2-D [kh, kw] tensor (as rosinality's); "
                         f"got {tuple(kernel.shape)!r}")
    _check_filter(kernel, input, op, name="kernel", x_name="input")
    (ux, uy), (dx, dy) = up, down = _pair(up, "up"), _pair(down, "down")
    kh, kw = kernel.shape
    oh = _out_size(input.shape[2], uy, dy, pad[2], pad[3], kh)
    ow = _out_size(input.shape[3], ux, dx, pad[0], pad[1], kw)
    if _shapes_checked() and (oh < 1 or ow < 1):
        raise ValueError(f"{op}: pad {pad} leaves no output: (in * up + pad0 + pad1 - k + down) // down is "
                         f"[{oh}, {ow}] for input of shape {tuple(input.shape)}, kernel {kh}x{kw}, "
                         f"up {up}, down {down}")
    return _upfirdn2d(input, kernel, up=up, down=down, padding=pad)


# taps built inside a traced forward are constants of the trace, checked once as it is made
@quiet_under_trace
def make_kernel(k, op: str = "make_kernel", name: str = "kernel") -> torch.Tensor:
    """A 2-D FIR kernel normalised to sum 1 from 1-D taps (outer product) or 2-D taps.
    TypeError for taps that are not numbers, ValueError for taps empty, more than 2-D or
    summing to 0, naming ``op`` (the layer that was given them) and ``name`` (its argument).
    Inside ``torch.compile`` the sum is checked in the graph instead (``torch._assert_async``), so a
    forward that builds its kernel traces whole under ``fullgraph=True``; taps summing to 0 then
    raise RuntimeError with the same message when the graph runs."""
    try:
        k = torch.as_tensor(k, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{op}: {name} must be 1-D or 2-D taps (numbers); got {type(k).__name__} ({e})") from None
    if k.ndim not in (1, 2) or k.numel() == 0:
        raise ValueError(f"{op}: {name} must be non-empty 1-D or 2-D taps; got shape {tuple(k.shape)}")
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    total = k.sum()
    said = f"{op}: {name} taps must not sum to 0 (they are normalised to sum 1)"
    if torch.compiler.is_compiling():
        # a Python branch on the sum would break the graph: rosinality's blocks may build their
        # kernels in forward as well as in __init__
        torch._assert_async(total != 0, said)
    elif total == 0:
        raise ValueError(said)
    return k / total


def _pad(pad, layer: str) -> tuple:
    """Blur's pad as rosinality's upfirdn2d takes it: (before, after) or (x0, x1, y0, y1) ints."""
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"{layer}: pad must be (before, after) or (x0, x1, y0, y1) ints; got {said_typed(pad)}")
    if len(pad) not in (2, 4):
        raise ValueError(f"{layer}: pad must be (before, after) or (x0, x1, y0, y1) ints; got {pad!r}")
    if not all(is_int(p) for p in pad):
        raise TypeError(f"{layer}: pad must hold ints; got {pad!r}")
    return tuple(int(p) for p in pad)


def _check_image(input, layer: str, channels: int | None = None, least: int = 1) -> None:
    """A layer's ``input``: a float tensor [N, C, H, W] (C = ``channels`` when given) with H, W >=
    ``least``; TypeError or ValueError naming ``layer`` and ``input`` otherwise (shapes compared, no
    tensor read)."""
    check_tensor(input, "input", layer)
    if not _shapes_checked():
        return
    c = "C" if channels is None else "in_channel"
    said = f"[N, {c}, H, W]" + ("" if channels is None else f" with in_channel = {channels}")
    if input.ndim != 4 or (channels is not None and input.shape[1] != channels):
        raise ValueError(f"{layer}: input must be 4-D {said}; got shape {tuple(input.shape)}")
    if input.shape[2] < least or input.shape[3] < least:
        raise ValueError(f"{layer}: input must be 4-D {said}{' and' if channels else ' with'} H, W >= {least}; got "
                         f"shape {tuple(input.shape)}")


class Blur(nn.Module):
    """rosinality's ``Blur(kernel, pad, upsample_factor=1)``."""

    def __init__(self, kernel, pad, upsample_factor: int = 1):
        super().__init__()
        kernel = make_kernel(kernel, "Blur")
        upsample_factor = check_positive_int(upsample_factor, "upsample_factor", "Blur")
        if upsample_factor > 1:
            kernel = kernel * (upsample_factor ** 2)
        self.register_buffer("kernel", kernel)
        self.pad = _pad(pad, "Blur")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        _check_image(input, "Blur")  # an image too small for the pad is upfirdn2d's to say (it names pad)
        return upfirdn2d(input, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """rosinality's ``Upsample(kernel, factor=2)``: [N, C, H, W] -> [N, C, H*f, W*f]."""

    def __init__(self, kernel, factor: int = 2):
        super().__init__()
        self.factor = factor = check_positive_int(factor, "factor", "Upsample")
        kernel = make_kernel(kernel, "Upsample") * (factor ** 2)
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        _check_image(input, "Upsample")
        return upfirdn2d(input, self.kernel, up=self.factor, down=1, pad=self.pad)


class Downsample(nn.Module):
    """rosinality's ``Downsample(kernel, factor=2)``: [N, C, H, W] -> [N, C, H/f, W/f]."""

    def __init__(self, kernel, factor: int = 2):
        super().__init__()
        self.factor = factor = check_positive_int(factor, "factor", "Downsample")
        kernel = make_kernel(kernel, "Downsample")
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        _check_image(input, "Downsample", least=self.factor)  # the output is [H // factor, W // factor]
        return upfirdn2d(input, self.kernel, up=1, down=self.factor, pad=self.pad)


class EqualLinear(nn.Module):
    """rosinality's ``EqualLinear(in_dim, out_dim, bias=True, bias_init=0, lr_mul=1, activation=None)``."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0, lr_mul: float = 1,
                 activation=None):
        super().__init__()
        name = "EqualLinear"
        in_dim, out_dim = check_positive_int(in_dim, "in_dim", name), check_positive_int(out_dim, "out_dim", name)
        bias = check_bool(bias, "bias", name)
        bias_init = check_real(bias_init, "bias_init", name)
        lr_mul = check_real(lr_mul, "lr_mul", name)
        if lr_mul <= 0:  # the weight is stored divided by it
            raise ValueError(f"{name}: lr_mul must be > 0; got {lr_mul}")
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor(input, "input", "EqualLinear")
        in_dim, out_dim = self.weight.shape[1], self.weight.shape[0]
        if _shapes_checked():
            if input.ndim < 1 or input.shape[-1] != in_dim:
                raise ValueError(f"EqualLinear: input must have shape [..., in_dim] with in_dim = {in_dim} (usually "
                                 f"[N, {in_dim}]); got shape {tuple(input.shape)}")
            if self.activation and self.bias is not None and (
                    input.ndim < 2 or (input.ndim > 2 and input.shape[1] != out_dim)):
                # what fused_leaky_relu refuses, said of this layer's input rather than of F.linear's output
                raise ValueError(f"EqualLinear: input must be [N, in_dim] = [N, {in_dim}] with activation "
                                 f"(fused_leaky_relu adds the bias [out_dim = {out_dim}] along dim 1 of the output, as "
                                 f"rosinality's does); got shape {tuple(input.shape)}")
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            out = F.linear(input, self.weight * self.scale)
            return fused_leaky_relu(out, bias)
        return F.linear(input, self.weight * self.scale, bias=bias)

    def __repr__(self):
        return f"{self.__class__.__name__}({self.weight.shape[1]}, {self.weight.shape[0]})"


class EqualConv2d(nn.Module):
    """rosinality's ``EqualConv2d(in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True)``."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        name = "EqualConv2d"
        in_channel, out_channel = check_positive_int(in_channel, "in_channel", name), check_positive_int(out_channel, "out_channel", name)
        kernel_size, stride = check_positive_int(kernel_size, "kernel_size", name), check_positive_int(stride, "stride", name)
        padding = check_int(padding, "padding", name, minimum=0)
        bias = check_bool(bias, "bias", name)
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        check_tensor(input, "input", "EqualConv2d")
        in_channel, k, p = self.weight.shape[1], self.weight.shape[2], self.padding
        if _shapes_checked():
            if input.ndim not in (3, 4) or input.shape[-3] != in_channel:  # F.conv2d takes an unbatched [C, H, W] too
                raise ValueError(f"EqualConv2d: input must be [N, in_channel, H, W] (or unbatched [in_channel, H, W]) "
                                 f"with in_channel = {in_channel}; got shape {tuple(input.shape)}")
            h, w = input.shape[-2], input.shape[-1]
            if h < 1 or w < 1 or h + 2 * p < k or w + 2 * p < k:
                raise ValueError(f"EqualConv2d: input's H and W must be >= 1 and, padded by padding = {p} on each "
                                 f"side, >= kernel_size = {k}; got shape {tuple(input.shape)}")
        return F.conv2d(input, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)

    def __repr__(self):
        return (f"{self.__class__.__name__}({self.weight.shape[1]}, {self.weight.shape[0]}, {self.weight.shape[2]}, "
                f"stride={self.stride}, padding={self.padding})")


class ModulatedConv2d(nn.Module):
    """rosinality's ``ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim,
    demodulate=True, upsample=False, downsample=False, blur_kernel=[1, 3, 3, 1], fused=True)``.

    forward(input [N, in, H, W], style [N, style_dim]) -> [N, out, H', W'] (H' = 2H when
    upsampling, H/2 when downsampling), in the input's memory format (contiguous or
    channels_last). ``fused=True`` (default) runs per-sample weights as one
    grouped convolution; ``fused=False`` is rosinality's other path, the same function: the
    input is scaled by the style, convolved with the shared weight (one weight for the batch,
    less memory for large batches), and the output scaled by the demodulation coefficients.
    The blur around the resampling is alae_fast's upfirdn2d kernel either way.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, downsample: bool = False,
                 blur_kernel=(1, 3, 3, 1), fused: bool = True):
        super().__init__()
        name = "ModulatedConv2d"
        in_channel, out_channel = check_positive_int(in_channel, "in_channel", name), check_positive_int(out_channel, "out_channel", name)
        kernel_size, style_dim = check_positive_int(kernel_size, "kernel_size", name), check_positive_int(style_dim, "style_dim", name)
        demodulate, upsample, downsample, fused = (
            check_bool(v, k, name) for k, v in (("demodulate", demodulate), ("upsample", upsample),
                                                ("downsample", downsample), ("fused", fused)))
        if not isinstance(blur_kernel, (tuple, list, torch.Tensor)):
            raise TypeError(f"{name}: blur_kernel must be a sequence of taps; got {said_typed(blur_kernel)}")
        make_kernel(blur_kernel, name, "blur_kernel")  # its taps refused under this layer's name, not Blur's
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        self.fused = fused

    def forward(self, input: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        name = "ModulatedConv2d"
        # downsampling's blur gives [H + k - 2, W + k - 2], which its stride-2 k x k convolution needs >= k
        _check_image(input, name, self.in_channel, least=2 if self.downsample else 1)
        check_tensor(style, "style", name)
        style_dim = self.modulation.weight.shape[1]
        if _shapes_checked() and (style.ndim != 2 or style.shape[0] != input.shape[0] or style.shape[1] != style_dim):
            raise ValueError(f"{name}: style must have shape [N, style_dim] = [{input.shape[0]}, {style_dim}] to match "
                             f"input; got {tuple(style.shape)}")
        # a traced fused path is fixed to its batch anyway (groups = N)
        if not self.fused or static_sizes(input, 0)[0] == 0:
            # a batch of 0 would make the fused path's grouped convolution groups=0, which torch
            # refuses ("non-positive groups"); the unfused path computes the same (empty) result
            return self._forward_unfused(input, style)
        out = self._forward_fused(input, style)
        # The grouped convolution needs the batch in its channels, which a channels_last input
        # does not keep: without this every later layer of a channels_last generator would run
        # contiguous (the unfused path, and ops.modulated_conv2d, keep the input's layout).
        if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def _forward_fused(self, input: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channel, height, width = input.shape
        style = self.modulation(style).view(batch, 1, in_channel, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        weight = weight.view(batch * self.out_channel, in_channel, k, k)
        if self.upsample:
            x = input.reshape(1, batch * in_channel, height, width)
            w = weight.view(batch, self.out_channel, in_channel, k, k).transpose(1, 2)
            w = w.reshape(batch * in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(x, w, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, *out.shape[2:])
            return self.blur(out)
        if self.downsample:
            x = self.blur(input)
            _, _, height, width = x.shape
            x = x.reshape(1, batch * in_channel, height, width)
            out = F.conv2d(x, weight, padding=0, stride=2, groups=batch)
            return out.view(batch, self.out_channel, *out.shape[2:])
        x = input.reshape(1, batch * in_channel, height, width)
        out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, *out.shape[2:])

    def _forward_unfused(self, input: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # conv(x * s, w) * d equals conv(x, w * s * d): the style scales input channels, the
        # demodulation coefficients d (computed from w * s as in the fused path) output channels
        batch, in_channel = input.shape[:2]
        weight = self.scale * self.weight.squeeze(0)  # [out, in, k, k], shared by the batch
        style = self.modulation(style)
        if self.demodulate:
            demod = torch.rsqrt((weight.unsqueeze(0) * style.view(batch, 1, in_channel, 1, 1)).pow(2).sum([2, 3, 4])
                                + self.eps)
        x = input * style.view(batch, in_channel, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2))
        elif self.downsample:
            out = F.conv2d(self.blur(x), weight, padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        return out * demod.view(batch, self.out_channel, 1, 1) if self.demodulate else out

    def __repr__(self):
        return (f"{self.__class__.__name__}({self.in_channel}, {self.out_channel}, {self.kernel_size}, "
                f"upsample={self.upsample}, downsample={self.downsample}"
                + (", fused=False)" if not self.fused else ")"))


# install(): the sys.modules entries it replaced (None where there was none), by key
_saved_modules: dict = {}
_MARK = "__alae_fast_rosinality__"  # set on the modules install() made


def install(name: str = "op") -> types.ModuleType:
    """Registers these ops as rosinality's ``op`` package in ``sys.modules``, so that the
    checkout's own ``from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d, conv2d_gradfix``
    (``model.py``, ``swagan.py``, ``train.py``, ``non_leaking.py``) import them unchanged and its
    ``op/`` directory, which JIT-compiles CUDA at import, is never imported.

    Registers ``name`` (a package: ``fused_leaky_relu``, ``FusedLeakyReLU``, ``upfirdn2d`` and
    the ``conv2d_gradfix`` module as attributes) and its submodules ``name.fused_act``,
    ``name.upfirdn2d`` and ``name.conv2d_gradfix``, as rosinality's package has them. ``name``
    is where the code imports ``op`` from: ``"op"`` for rosinality's checkout, a dotted name for
    code that vendors it (``"models.stylegan2.op"``: ``from models.stylegan2.op import ...``
    then gets these; the parent packages are imported as usual). Call it before importing
    that code: its modules bind the ops when they are imported. Idempotent per name;
    :func:`uninstall` restores what ``sys.modules`` held. Returns the package module.
    Raises TypeError for a ``name`` that is not a string, ValueError for one that is not a
    dotted Python name.
    """
    if not isinstance(name, str):
        raise TypeError(f"install: name must be a module name such as 'op' (str); got {said_typed(name)}")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
        raise ValueError(f"install: name must be a dotted Python module name such as 'op'; got {name!r}")
    current = sys.modules.get(name)
    if current is not None and getattr(current, _MARK, False):
        return current

    def module(key, doc, is_package=False, **attrs):
        mod = types.ModuleType(key, doc)
        if is_package:
            mod.__path__ = []  # a package: its submodules come from sys.modules only
        mod.__dict__.update(attrs, **{_MARK: True})
        return mod

    this = __name__
    fused_act = module(f"{name}.fused_act", f"rosinality's op.fused_act on {this}",
                       fused_leaky_relu=fused_leaky_relu, FusedLeakyReLU=FusedLeakyReLU)
    up = module(f"{name}.upfirdn2d", f"rosinality's op.upfirdn2d on {this}", upfirdn2d=upfirdn2d)
    # as in rosinality's package, the attribute upfirdn2d is the function (its __init__ rebinds it)
    package = module(name, f"rosinality's op package on {this} (alae_fast.compat.rosinality.install)",
                     is_package=True, fused_act=fused_act, conv2d_gradfix=conv2d_gradfix,
                     fused_leaky_relu=fused_leaky_relu, FusedLeakyReLU=FusedLeakyReLU, upfirdn2d=upfirdn2d)
    for key, mod in ((name, package), (f"{name}.fused_act", fused_act), (f"{name}.upfirdn2d", up),
                     (f"{name}.conv2d_gradfix", conv2d_gradfix)):
        _saved_modules.setdefault(key, sys.modules.get(key))
        sys.modules[key] = mod
    return package


def uninstall() -> None:
    """Undoes every :func:`install`: puts back the ``sys.modules`` entries they replaced
    (removes those there were none of). Modules that already imported the ops keep them."""
    for key, old in reversed(list(_saved_modules.items())):
        if old is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = old
    _saved_modules.clear()
