"""Normalisation layers."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops._dispatch import as_real, opmath, said_real


class PixelNorm(nn.Module):
    """Pixel-wise feature normalisation of progressive GANs and StyleGAN's mapping network.

    ``y = x / sqrt(mean(x^2 over dim) + eps)``: every feature vector gets unit root mean square,
    so z ~ N(0, I) lands on a sphere of radius sqrt(size) whatever its norm.

    Args:
        dim: the dimension that is normalised (default 1: features of [N, C] or channels of
            [N, C, H, W]).
        eps: added to the mean square before the square root (default 1e-8).

    Input of any shape with ``dim`` in range, float16/bfloat16/float32/float64 (half types are
    computed in float32); output of the same shape and dtype. No parameters.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"PixelNorm: dim must be an int; got {type(dim).__name__}")
        eps_ = as_real(eps)
        if eps_ is None or not math.isfinite(eps_) or eps_ < 0:
            raise ValueError(f"PixelNorm: eps must be a finite number >= 0; got {said_real(eps)}")
        self.dim = dim
        self.eps = float(eps_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PixelNorm: x must be a torch.Tensor; got {type(x).__name__}")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"PixelNorm: dim {self.dim} is out of range for x of shape {tuple(x.shape)}")
        z = opmath(x)
        return (z * torch.rsqrt(z.square().mean(self.dim, keepdim=True) + self.eps)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps:g}"
