"""FIR resampling of images: ``upfirdn2d`` and the filter helpers built on it.

``upfirdn2d`` follows NVlabs' StyleGAN2-ADA/StyleGAN3 semantics. Per axis, in order:

1. upsample by inserting ``up - 1`` zeros after each sample;
2. pad with zeros, or crop where a pad is negative;
3. apply the FIR filter ``f`` as a convolution (a correlation when ``flip_filter``),
   scaled by ``gain``;
4. keep every ``down``-th sample, starting with the first.

Output size per axis: ``(in * up + pad0 + pad1 - taps + down) // down``.

The kernels are polyphase: they never build the zero-inserted image and never multiply a
zero tap. upfirdn2d is linear in x, and its adjoint is upfirdn2d again (up and down
swapped, the filter flipped, the padding recomputed), so the op's backward is the op
itself and gradients of every order run on the kernels. The filter's gradient is a small
correlation of the padded, zero-inserted x with the output gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import _lib
from ._dispatch import (quiet_under_trace, as_real, check_bool, check_tensor, is_finite, is_int as _is_int, kernel_layout, opmath,
                        said_real, said_typed, static_sizes, use_kernel)


# --- argument parsing -------------------------------------------------------------------------

# The kernels' bounds (kMaxFactor and kMaxPad of csrc/ops/upfirdn2d.h), checked here too, so that
# the reference refuses what the kernel refuses and the error names the op the caller called
# (upsample2d, filter2d, ...), not the upfirdn2d they run on.
MAX_FACTOR = 2 ** 16
MAX_PAD = 2 ** 30


def _parse_scaling(value, name: str, op: str) -> tuple[int, int]:
    """int or [x, y] -> (x, y), each >= 1: TypeError for another type (a float, a bool, a
    string, None) or entries that are not ints, ValueError for a list of another length or a
    factor < 1."""
    if _is_int(value):
        value = [value, value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{op}: {name} must be an int or a list of 2 ints [{name}x, {name}y]; got {value!r} "
                        f"of type {type(value).__name__}")
    if len(value) != 2:
        raise ValueError(f"{op}: {name} must be an int or a list of 2 ints [{name}x, {name}y]; got {value!r}")
    if not all(_is_int(v) for v in value):
        raise TypeError(f"{op}: {name} must hold ints; got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{op}: {name} must be >= 1; got {list(value)}")
    return int(value[0]), int(value[1])


def _parse_padding(padding, op: str) -> tuple[int, int, int, int]:
    """int, [px, py] or [x0, x1, y0, y1] -> (x0, x1, y0, y1); negative entries crop. TypeError
    for another type (a float, a bool, a string, None) or entries that are not ints, ValueError
    for a list of another length."""
    if _is_int(padding):
        padding = [padding, padding]
    if not isinstance(padding, (list, tuple)):
        raise TypeError(f"{op}: padding must be an int, [px, py] or [x0, x1, y0, y1]; got {padding!r} "
                        f"of type {type(padding).__name__}")
    if len(padding) not in (2, 4):
        raise ValueError(f"{op}: padding must be an int, [px, py] or [x0, x1, y0, y1]; got {padding!r}")
    if not all(_is_int(v) or isinstance(v, torch.SymInt) for v in padding):
        raise TypeError(f"{op}: padding must hold ints; got {padding!r}")
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    return tuple(v if isinstance(v, torch.SymInt) else int(v) for v in padding)  # NumPy ints as ints


@quiet_under_trace
def _check_filter(f, x: torch.Tensor | None, op: str, name: str = "f", x_name: str = "x"):
    """Validates filter ``name`` (None, or a 1-D/2-D floating tensor on x's device; ``x_name``
    is what the caller calls x); returns it as float32 (float64 kept: the kernels and the
    reference apply taps in x's accumulation dtype, float64 for float64 x, so they round it
    only for other x)."""
    if f is None:
        return None
    if not isinstance(f, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor or None; got {type(f).__name__}")
    if not f.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating-point tensor; got {f.dtype}")
    if f.ndim not in (1, 2):
        raise ValueError(f"{op}: {name} must be 1-D (separable) or 2-D; got {f.ndim}-D of shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"{op}: {name} must not be empty; got shape {tuple(f.shape)}")
    if x is not None and f.device != x.device:
        raise ValueError(f"{op}: {name} must be on {x_name}'s device {x.device}; got {f.device}")
    # float64 taps stay float64: a float64 x is then computed in float64 throughout (and
    # gradcheck of the filter gradient sees its own perturbations).
    return f if f.dtype == torch.float64 or f.dtype == torch.float32 else f.to(torch.float32)


def _filter_size(f) -> tuple[int, int]:
    """(taps along x, taps along y) of a filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    return static_sizes(f, -1, 0)


def _out_size(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down


def _check_x(x, op: str) -> None:
    check_tensor(x, "x", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, C, H, W]; got {x.ndim}-D of shape {tuple(x.shape)}")


def _check_gain(gain, op: str) -> float:
    """``gain`` as a float: TypeError naming ``op`` unless :func:`as_real` takes it (a string,
    None, a bool, a tensor of more than one element), ValueError unless it is finite."""
    value = as_real(gain)
    if value is None:
        raise TypeError(f"{op}: gain must be a finite real number; got {said_typed(gain)}")
    if not is_finite(value):
        raise ValueError(f"{op}: gain must be a finite real number; got {said_real(gain)}")
    return float(value)


@quiet_under_trace
def _resolve(x, f, up, down, padding, flip_filter, gain, op):
    _check_x(x, op)
    f = _check_filter(f, x, op)
    ux, uy = _parse_scaling(up, "up", op)
    dx, dy = _parse_scaling(down, "down", op)
    px0, px1, py0, py1 = _parse_padding(padding, op)
    flip_filter = check_bool(flip_filter, "flip_filter", op)
    gain = _check_gain(gain, op)
    fw, fh = _filter_size(f)
    ow = _out_size(x.shape[3], ux, dx, px0, px1, fw)
    oh = _out_size(x.shape[2], uy, dy, py0, py1, fh)
    for name, (fx, fy) in (("up", (ux, uy)), ("down", (dx, dy))):
        if fx > MAX_FACTOR or fy > MAX_FACTOR:
            raise ValueError(f"{op}: {name} must be >= 1 and <= {MAX_FACTOR}; got {[fx, fy]}")
    if any(isinstance(p, int) and abs(p) > MAX_PAD for p in (px0, px1, py0, py1)):
        raise ValueError(f"{op}: padding must be within [-{MAX_PAD}, {MAX_PAD}]; got {[px0, px1, py0, py1]}"
                         + ("" if op.startswith("upfirdn2d") else " (the padding given plus the filter's centring)"))
    if ow < 1 or oh < 1:
        raise ValueError(
            f"{op}: padding leaves no output: output size (in*up + pad0 + pad1 - taps + down) // down "
            f"is [{oh}, {ow}] for x of shape {tuple(x.shape)}, filter {fh}x{fw}, up {[ux, uy]}, "
            f"down {[dx, dy]}, padding {[px0, px1, py0, py1]}"
            + ("" if op.startswith("upfirdn2d") else " (the padding given plus the filter's centring)"))
    if isinstance(ow, int) and isinstance(oh, int) and not isinstance(x.shape[0], torch.SymInt):
        # torch's own refusal of such a size is a RuntimeError about storage that names no argument
        nbytes = x.shape[0] * x.shape[1] * oh * ow * x.element_size()
        if nbytes >= 2 ** 63:
            raise ValueError(f"{op}: the output [{x.shape[0]}, {x.shape[1]}, {oh}, {ow}] of up {[ux, uy]}, down "
                             f"{[dx, dy]} and padding {[px0, px1, py0, py1]} would take {nbytes:.3g} bytes, past "
                             f"what a tensor can address (2**63)")
    return f, [ux, uy], [dx, dy], [px0, px1, py0, py1], flip_filter, gain


# --- public ops ---------------------------------------------------------------------------------

def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0,
              flip_filter: bool = False, gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Upsample, pad/crop, FIR-filter and downsample a batch of images.

    Args:
        x: [N, C, H, W] tensor; float16, bfloat16, float32 or float64 (half types accumulate
            in float32). Any strides; contiguous and channels_last run without a copy.
        f: the filter, any float dtype, on x's device, applied in x's accumulation dtype
            (float64 taps for float64 x, float32 for the others): 2-D
            [taps_y, taps_x], or 1-D [taps] meaning the same taps along both axes
            (separable), or None for the identity [[1]]. Differentiable: with the kernel,
            f's gradient is a correlation of the padded, zero-inserted x with the output
            gradient (derived in csrc/autograd/upfirdn2d.cpp), computed only when f
            requires grad.
        up: upsampling factor, int or [ux, uy] (default 1), each in [1, 65536].
        down: downsampling factor, int or [dx, dy] (default 1), each in [1, 65536].
        padding: int, [px, py] or [x0, x1, y0, y1] (default 0), in samples of the
            upsampled image; negative values crop; each within [-2**30, 2**30].
        flip_filter: False (default) applies f as a convolution, True as a correlation.
        gain: overall scale of the output (default 1).
        impl: 'auto' (compiled kernel when built for x's device, else the reference) or 'ref'.

    Returns:
        [N, C, (H*uy + y0 + y1 - taps_y + dy) // dy, (W*ux + x0 + x1 - taps_x + dx) // dx],
        x's dtype, channels_last when x is. Differentiable in x to any order and in f to
        second order (the filter gradient is made of differentiable ops).

    Raises:
        TypeError naming the argument for one of the wrong type: x or f not a tensor of a float
        dtype; up, down or padding (or an entry) a float, bool, string or None; flip_filter not
        a bool; gain not a real number; impl not a string. ValueError for one of the right type
        with a bad value: x not 4-D, f empty, more than 2-D or on another device, a factor < 1
        or > 65536, a list of the wrong length, a padding beyond ±2**30 or one that leaves no output, a NaN or infinite gain, an
        impl other than 'auto' or 'ref'.
    """
    return _run(x, f, up, down, padding, flip_filter, gain, impl, "upfirdn2d")


def _run(x, f, up, down, padding, flip_filter, gain, impl, op):
    """upfirdn2d with its arguments checked and named as ``op`` (upfirdn2d or a wrapper of it)."""
    f, up, down, padding, flip_filter, gain = _resolve(x, f, up, down, padding, flip_filter, gain, op)
    if use_kernel(x, impl, op):
        return torch.ops.alae_fast.upfirdn2d(x, f, up, down, padding, flip_filter, gain)
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0,
                  flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Plain-PyTorch ``upfirdn2d`` (same arguments and result), the literal recipe:
    zero-insert, pad, depthwise conv2d, strided slice. Autograd by PyTorch."""
    f, up, down, padding, flip_filter, gain = _resolve(x, f, up, down, padding, flip_filter, gain, "upfirdn2d_ref")
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain):
    (ux, uy), (dx, dy), (px0, px1, py0, py1) = up, down, padding
    N, C, H, W = x.shape
    fw, fh = _filter_size(f)
    oh, ow = _out_size(H, uy, dy, py0, py1, fh), _out_size(W, ux, dx, px0, px1, fw)
    z = opmath(x)
    if z.numel() == 0:  # still attached to x and f, so each gets its (zero) gradient
        tied = z.sum() if f is None else z.sum() + f.sum().to(z.dtype) * 0
        return x.new_zeros((N, C, oh, ow)) + tied.to(x.dtype)
    if ux > 1 or uy > 1:
        z = z.reshape(N, C, H, 1, W, 1)
        z = F.pad(z, [0, ux - 1, 0, 0, 0, uy - 1])
        z = z.reshape(N, C, H * uy, W * ux)
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(z.dtype)
    if not flip_filter:  # conv2d correlates: reverse the taps to convolve
        f = f.flip(list(range(f.ndim)))
    # the gain goes on one pass only: sqrt(gain) per pass would be complex for a negative gain
    if f.ndim == 2:
        z = F.conv2d(z, (f * gain)[None, None].expand(C, 1, fh, fw), groups=C)
    else:
        z = F.conv2d(z, (f * gain).reshape(1, 1, 1, fw).expand(C, 1, 1, fw), groups=C)
        z = F.conv2d(z, f.reshape(1, 1, fh, 1).expand(C, 1, fh, 1), groups=C)
    z = z[:, :, ::dy, ::dx]
    return z.to(x.dtype)


# --- filter helpers -------------------------------------------------------------------------------

def setup_filter(f, device=None, normalize: bool = True, flip_filter: bool = False, gain: float = 1,
                 separable: bool | None = None) -> torch.Tensor:
    """Makes a float32 FIR filter tensor for ``upfirdn2d`` from taps.

    Args:
        f: taps: a number, a 1-D or 2-D sequence or tensor, or None (meaning [1]).
        device: where to put the result (a torch.device or its name); None keeps a tensor's
            device (CPU for the rest).
        normalize: divide by the sum of the taps (default True), so a constant image is
            kept as it is.
        flip_filter: reverse the taps along every axis (default False).
        gain: overall scale, a finite real number (default 1); a separable result carries
            sqrt(gain) per axis, so it needs gain >= 0.
        separable: return 1-D taps applied along both axes (True) or their 2-D outer
            product (False). None (default): 1-D input with 8 or more taps stays 1-D,
            shorter 1-D input becomes 2-D, as NVlabs' setup_filter does.

    Returns:
        1-D [taps] (separable) or 2-D [taps_y, taps_x] float32 tensor.

    Raises:
        TypeError: f is not numbers, gain is not a real number (a string, None, a bool),
        normalize or flip_filter is not a bool (a string such as "False", None, an int),
        separable is neither None nor a bool, device is neither None, a string nor a
        torch.device; ValueError: f empty or more than 2-D, a non-finite gain, a negative gain
        for a separable result, normalize=True with taps summing to 0, a device name torch
        does not know.
    """
    return _setup_filter(f, device, normalize, flip_filter, gain, separable, "setup_filter")


def _setup_filter(f, device, normalize, flip_filter, gain, separable, op: str, name: str = "f") -> torch.Tensor:
    """:func:`setup_filter` with its errors naming ``op`` and calling the taps ``name``: a layer
    that builds its filter here names itself and its own argument."""
    if f is None:
        f = 1
    if device is None:
        device = f.device if isinstance(f, torch.Tensor) else torch.device("cpu")
    elif isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"{op}: device {device!r} is not a device name ({e})") from None
    elif not isinstance(device, torch.device):
        raise TypeError(f"{op}: device must be None, a device name or a torch.device; got {said_typed(device)}")
    gain = _check_gain(gain, op)
    normalize = check_bool(normalize, "normalize", op)
    flip_filter = check_bool(flip_filter, "flip_filter", op)
    if separable is not None:
        separable = check_bool(separable, "separable", op)
    try:
        f = torch.as_tensor(f, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{op}: {name} must be a number, a 1-D or 2-D sequence of numbers, a tensor "
                        f"or None; got {type(f).__name__} ({e})") from None
    if f.ndim not in (0, 1, 2):
        raise ValueError(f"{op}: {name} must be a number or 1-D or 2-D taps; got {f.ndim}-D")
    if f.numel() == 0:
        raise ValueError(f"{op}: {name} must not be empty")
    if f.ndim == 0:
        f = f.reshape(1)
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if separable and f.ndim != 1:
        raise ValueError(f"{op}: separable=True needs 1-D taps")
    if separable and gain < 0:  # sqrt(gain) per axis: no real separable filter has a negative gain
        raise ValueError(f"{op}: a separable filter carries sqrt(gain) per axis, so gain must be >= 0; "
                         f"got {gain!r} (pass separable=False for a 2-D filter)")
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        total = f.sum()
        if total == 0:
            raise ValueError(f"{op}: normalize=True needs taps ({name}) with a non-zero sum")
        f = f / total
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def filter2d(x: torch.Tensor, f: torch.Tensor | None, padding=0, flip_filter: bool = False,
             gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """FIR-filters x keeping its size: ``upfirdn2d`` with the padding that centres f.

    x: [N, C, H, W]; f as for ``upfirdn2d``; padding (int, [px, py] or [x0, x1, y0, y1],
    default 0) is extra padding on top of the centring. Output [N, C, H + y0 + y1, W + x0 + x1].
    Errors as ``upfirdn2d``'s, naming filter2d (a padding that leaves no output counts the
    centring too).
    """
    _check_x(x, "filter2d")
    f = _check_filter(f, x, "filter2d")
    px0, px1, py0, py1 = _parse_padding(padding, "filter2d")
    fw, fh = _filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return _run(x, f, 1, 1, p, flip_filter, gain, impl, "filter2d")


def upsample2d(x: torch.Tensor, f: torch.Tensor | None, up=2, padding=0, flip_filter: bool = False,
               gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Upsamples x by ``up`` (int or [ux, uy], default 2) with the FIR filter f.

    The padding keeps pixel centres aligned and the gain is multiplied by ux * uy so the
    image keeps its mean. x: [N, C, H, W]; padding is extra padding as for ``filter2d``.
    Output [N, C, H*uy + y0 + y1, W*ux + x0 + x1]. Errors as ``upfirdn2d``'s, naming upsample2d.
    """
    _check_x(x, "upsample2d")
    f = _check_filter(f, x, "upsample2d")
    ux, uy = _parse_scaling(up, "up", "upsample2d")
    px0, px1, py0, py1 = _parse_padding(padding, "upsample2d")
    fw, fh = _filter_size(f)
    p = [px0 + (fw + ux - 1) // 2, px1 + (fw - ux) // 2, py0 + (fh + uy - 1) // 2, py1 + (fh - uy) // 2]
    return _run(x, f, [ux, uy], 1, p, flip_filter, _check_gain(gain, "upsample2d") * ux * uy, impl,
                "upsample2d")  # gain checked as given, before the product


def downsample2d(x: torch.Tensor, f: torch.Tensor | None, down=2, padding=0, flip_filter: bool = False,
                 gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Downsamples x by ``down`` (int or [dx, dy], default 2) after FIR-filtering with f.

    The padding keeps pixel centres aligned. x: [N, C, H, W]; padding is extra padding as
    for ``filter2d``. Output [N, C, (H + y0 + y1) // dy, (W + x0 + x1) // dx]. Errors as
    ``upfirdn2d``'s, naming downsample2d.
    """
    _check_x(x, "downsample2d")
    f = _check_filter(f, x, "downsample2d")
    dx, dy = _parse_scaling(down, "down", "downsample2d")
    px0, px1, py0, py1 = _parse_padding(padding, "downsample2d")
    fw, fh = _filter_size(f)
    p = [px0 + (fw - dx + 1) // 2, px1 + (fw - dx) // 2, py0 + (fh - dy + 1) // 2, py1 + (fh - dy) // 2]
    return _run(x, f, 1, [dx, dy], p, flip_filter, gain, impl, "downsample2d")


# --- registration: fake kernel (the autograd is C++, csrc/autograd/upfirdn2d.cpp) -----------------

def _fake(x, f, up, down, padding, flip_filter, gain):
    fw, fh = _filter_size(f)
    N, C, H, W = x.shape
    oh = _out_size(H, up[1], down[1], padding[2], padding[3], fh)
    ow = _out_size(W, up[0], down[0], padding[0], padding[1], fw)
    torch._check(oh >= 1 and ow >= 1, lambda: "upfirdn2d: padding leaves no output")
    # the kernel's layout rule (csrc/ops/upfirdn2d.cpp)
    return torch.empty((N, C, oh, ow), dtype=x.dtype, device=x.device, memory_format=kernel_layout(x))


if _lib.loaded():
    torch.library.register_fake("alae_fast::upfirdn2d")(_fake)
