"""2-D convolution combined with FIR up/downsampling: ``conv2d_resample``.

The result is defined (NVlabs semantics) as the composition

    y = downsample(conv2d(upsample(pad(x)), w), f)

that is: zero-insert x by ``up``, pad by ``padding`` (plus the padding that keeps pixel
centres aligned for the filter), FIR-filter with ``f`` scaled by ``up**2``; correlate with
``w`` (valid); then FIR-filter with ``f`` and keep every ``down``-th sample. The filter is
applied only on the resampling sides (not at all when up = down = 1).

Because the depthwise FIR filter and the convolution are both linear and shift-invariant,
they commute, and the implementation picks the order that touches the fewest pixels:

- 1x1 kernel, down only: filter + downsample first, then the (cheap) 1x1 conv on the small image;
- 1x1 kernel, up only: the 1x1 conv on the small image first, then upsample + filter;
- down only: filter at full resolution, then a strided conv (never computes the dropped pixels);
- up (and maybe down): a transposed strided conv (never multiplies the inserted zeros), then
  the filter, then any downsampling;
- neither: a plain conv2d when the padding allows it, else pad/crop then conv2d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._dispatch import quiet_under_trace, check_bool, check_factors, check_impl, check_same, check_tensor, static_sizes
from .upfirdn2d import _check_filter, _filter_size, _parse_padding, upfirdn2d


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    # conv2d correlates; flip_weight=False asks for a true convolution.
    kh, kw = static_sizes(w, 2, 3)  # a weight's size is a constant of a traced module
    if not flip_weight and (kw > 1 or kh > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


@quiet_under_trace
def _resolve(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """Validates the arguments; returns f checked and the padding as (x0, x1, y0, y1) with the
    centring terms added (:func:`_centred`)."""
    op = "conv2d_resample"
    check_impl("auto", op)
    check_tensor(x, "x", op)
    check_tensor(w, "w", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, C, H, W]; got {x.ndim}-D of shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: w must be 4-D [C_out, C_in / groups, kh, kw]; got {w.ndim}-D of shape {tuple(w.shape)}")
    check_same(w, "w", x, op)
    check_factors(op, up=up, down=down, groups=groups)
    flip_weight, flip_filter = check_bool(flip_weight, "flip_weight", op), check_bool(flip_filter, "flip_filter", op)
    out_channels, in_per_group = w.shape[:2]
    # Without channels torch's convolutions either refuse (no output channels: a RuntimeError about
    # groups) or silently return 0 channels instead of C_out channels of zeros (no input channels).
    if out_channels == 0 or in_per_group == 0:
        raise ValueError(f"{op}: w must have at least one output and one input channel; got w of shape "
                         f"{tuple(w.shape)} for x of shape {tuple(x.shape)}")
    if x.shape[1] != in_per_group * groups or out_channels % groups != 0:
        raise ValueError(f"{op}: w of shape {tuple(w.shape)} with groups={groups} needs x with "
                         f"{in_per_group * groups} channels and C_out divisible by groups; "
                         f"x has shape {tuple(x.shape)}")
    f = _check_filter(f, x, op)
    padding = _parse_padding(padding, op)
    return f, check_output_size(x.shape, static_sizes(w, 2, 3), f, up, down, padding, op)


@quiet_under_trace
def check_output_size(x_shape, kernel_size, f, up: int, down: int, padding, op: str,
                      w_name: str = "w") -> tuple[int, int, int, int]:
    """The padding (x0, x1, y0, y1) with the centring terms added (:func:`_centred`); ValueError
    naming ``op``'s padding when it leaves no output for x of ``x_shape`` [N, C, H, W] and a
    ``kernel_size`` (kh, kw) weight (called ``w_name``). Checked before any convolution, so that a too-small input is
    named as the other ops name it, not left to a convolution's error about its kernel; composite
    ops (modulated_conv2d) call it with their own name and their caller's shapes."""
    kh, kw = kernel_size
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _centred(*padding, fw, fh, up, down)
    for axis, n, p0, p1, k, taps in (("H", x_shape[2], py0, py1, kh, fh), ("W", x_shape[3], px0, px1, kw, fw)):
        size = n * up + p0 + p1 - (taps - 1 if up > 1 else 0) - (k - 1)
        if size < 1 or (down > 1 and (size - taps + down) // down < 1):
            raise ValueError(
                f"{op}: padding leaves no output: x of shape {tuple(x_shape)}, {w_name} {kh}x{kw}, filter {fh}x{fw}, "
                f"up {up}, down {down}, padding {list(padding)} give a convolution output of {size} along "
                f"{axis}" + (f", under the {taps} taps of the downsampling filter" if down > 1 else ""))
    return px0, px1, py0, py1


def _centred(px0, px1, py0, py1, fw, fh, up, down):
    """The padding plus what keeps pixel centres aligned through the filter on each resampling side."""
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return px0, px1, py0, py1


def _transposed_weight(w, groups):
    """w [C_out, C_in / groups, kh, kw] as conv_transpose2d's [C_in, C_out / groups, kh, kw]."""
    out_channels, in_per_group, kh, kw = static_sizes(w, 0, 1, 2, 3)
    if groups == 1:
        return w.transpose(0, 1)
    wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
    return wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """2-D convolution with optional FIR upsampling before it and downsampling after it.

    Args:
        x: [N, C_in, H, W] input, any float dtype that ``F.conv2d`` takes on x's device.
        w: [C_out, C_in / groups, kh, kw] weight, x's dtype and device (TypeError, ValueError).
        f: FIR filter for the resampling (1-D separable or 2-D float32, as for
            ``upfirdn2d``; e.g. from ``setup_filter``), or None for no filtering.
        up: integer upsampling factor (default 1), >= 1.
        down: integer downsampling factor (default 1), >= 1.
        padding: int, [px, py] or [x0, x1, y0, y1] (default 0): padding of the
            upsampled image before the convolution; negative values crop.
        groups: convolution groups (default 1); C_in and C_out must be divisible by it.
        flip_weight: True (default) correlates with w as ``F.conv2d`` does; False flips
            w spatially (a true convolution).
        flip_filter: False (default) applies f as a convolution, True as a correlation.

    Returns:
        [N, C_out, H', W'] in x's dtype: with P the total padding per axis (``padding``
        plus the centring terms), ``up`` upsampled size ``H*up + P - fh + 1`` (filter
        only when up > 1), minus ``kh - 1`` for the conv, then ``(size - fh + down) //
        down`` when down > 1. Differentiable in x and w to any order.

    Raises:
        TypeError naming the argument for one of the wrong type (x, w or f not a float tensor,
        w of another dtype than x; up, down or groups not an int; padding as ``upfirdn2d``'s;
        flip_weight or flip_filter not a bool), ValueError for one of the right type with a bad
        value (a factor or groups < 1, shapes that do not fit, a tensor on another device, a
        padding that leaves no output).
    """
    f, (px0, px1, py0, py1) = _resolve(x, w, f, up, down, padding, groups, flip_weight, flip_filter)
    kh, kw = static_sizes(w, 2, 3)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # conv_transpose2d(x, W, stride=up, padding=q) is zero-insertion followed by a full
        # convolution with W: with W = w flipped (and in/out channels swapped per group)
        # that is the valid correlation with w of the zero-inserted image padded by kw - 1 - q.
        # The rest of the requested padding (kw - 1 and kw - up less than asked) is done by
        # the filter's upfirdn2d; q takes the crop both sides share, so no pixel is computed
        # only to be cropped.
        wt = _transposed_weight(w, groups)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, wt, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                      flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return _conv(x, w, groups=groups, flip_weight=flip_weight)
