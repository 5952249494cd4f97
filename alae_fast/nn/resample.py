"""FIR blur and 2x up/downsampling layers on ``upfirdn2d``, with rosinality's signatures.

Each layer holds its filter as a buffer named ``kernel``: the 2-D taps, normalised to sum to
1 (times ``factor**2`` for upsampling, which keeps the image's mean), exactly as rosinality's
``make_kernel`` builds them, so those state dicts load. The filter is applied as a
convolution (NVlabs' ``flip_filter=False``). Inputs are [N, C, H, W] of any float dtype;
outputs keep x's dtype and memory format.

Constructor arguments follow the ops' rule: TypeError naming the layer and the argument for one of
the wrong type (taps that are not numbers, a factor that is not an int, a pad that is not a pair
of ints), ValueError for one of the right type with a bad value (taps empty, more than 2-D or
summing to 0, a factor < 1, a pad of another length).
"""

from __future__ import annotations

import torch
from torch import nn

from ..ops._dispatch import check_positive_int, is_int as _is_int, said_typed
from ..ops.upfirdn2d import upfirdn2d


def make_kernel(kernel, layer: str) -> torch.Tensor:
    """2-D float32 taps normalised to sum 1: the outer product of 1-D ``kernel`` with itself,
    or ``kernel`` itself when it is 2-D. TypeError naming ``layer`` for taps that are not
    numbers, ValueError for taps empty, more than 2-D or summing to 0."""
    try:
        k = torch.as_tensor(kernel, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{layer}: kernel must be 1-D or 2-D taps (numbers); got {type(kernel).__name__} "
                        f"({e})") from None
    if k.ndim == 1:
        k = torch.outer(k, k)
    if k.ndim != 2 or k.numel() == 0:
        raise ValueError(f"{layer}: kernel must be non-empty 1-D or 2-D taps; got shape {tuple(k.shape)}")
    total = k.sum()
    if total == 0:
        raise ValueError(f"{layer}: kernel taps must not sum to 0")
    return k / total


def _check_factor(factor, layer: str, name: str = "factor") -> int:
    return check_positive_int(factor, name, layer)


class Blur(nn.Module):
    """FIR blur: ``upfirdn2d(x, kernel, padding=pad)``.

    Args:
        kernel: 1-D taps (made 2-D by an outer product) or 2-D taps; default (1, 3, 3, 1).
        pad: (pad0, pad1) applied to both axes (negative crops), or None (default) for the
            padding that keeps the size: (k // 2, (k - 1) // 2) per axis.
        upsample_factor: scales the taps by its square (default 1), as rosinality does for
            the blur that follows a transposed convolution.

    Output [N, C, H + pad0 + pad1 - kh + 1, W + pad0 + pad1 - kw + 1].
    """

    def __init__(self, kernel=(1, 3, 3, 1), pad=None, upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel, "Blur")
        factor = _check_factor(upsample_factor, "Blur", "upsample_factor")
        if factor > 1:
            k = k * factor ** 2
        self.register_buffer("kernel", k)
        if pad is None:
            self.pad = None
        else:
            if not isinstance(pad, (list, tuple)):
                raise TypeError(f"Blur: pad must be (pad0, pad1) ints or None; got {said_typed(pad)}")
            if len(pad) != 2:
                raise ValueError(f"Blur: pad must be (pad0, pad1) ints or None; got {pad!r}")
            if not all(_is_int(p) for p in pad):
                raise TypeError(f"Blur: pad must be (pad0, pad1) ints or None; got {pad!r}")
            self.pad = (int(pad[0]), int(pad[1]))
        self.impl = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel.shape
        if self.pad is None:
            padding = [kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2]
        else:
            padding = [self.pad[0], self.pad[1], self.pad[0], self.pad[1]]
        return upfirdn2d(x, self.kernel, padding=padding, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, pad={self.pad}"


class Upsample(nn.Module):
    """FIR upsampling by ``factor`` (default 2) with ``kernel`` (default (1, 3, 3, 1)), its
    taps scaled by factor**2. Output [N, C, H * factor, W * factor]."""

    def __init__(self, kernel=(1, 3, 3, 1), factor: int = 2):
        super().__init__()
        self.factor = _check_factor(factor, "Upsample")
        self.register_buffer("kernel", make_kernel(kernel, "Upsample") * self.factor ** 2)
        self.impl = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel.shape
        u = self.factor
        padding = [(kw + u - 1) // 2, (kw - u) // 2, (kh + u - 1) // 2, (kh - u) // 2]
        return upfirdn2d(x, self.kernel, up=u, padding=padding, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, factor={self.factor}"


class Downsample(nn.Module):
    """FIR downsampling by ``factor`` (default 2) after blurring with ``kernel`` (default
    (1, 3, 3, 1)). Output [N, C, H // factor, W // factor]."""

    def __init__(self, kernel=(1, 3, 3, 1), factor: int = 2):
        super().__init__()
        self.factor = _check_factor(factor, "Downsample")
        self.register_buffer("kernel", make_kernel(kernel, "Downsample"))
        self.impl = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel.shape
        d = self.factor
        padding = [(kw - d + 1) // 2, (kw - d) // 2, (kh - d + 1) // 2, (kh - d) // 2]
        return upfirdn2d(x, self.kernel, down=d, padding=padding, impl=self.impl)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, factor={self.factor}"
