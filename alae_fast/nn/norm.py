"""Normalisation layers."""

from __future__ import annotations


import torch
from torch import nn

from ..ops._dispatch import check_eps, check_int, opmath


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

    TypeError for a dim that is not an int, an eps that is not a real number, an x that is not a
    tensor; ValueError for a negative or non-finite eps, a dim out of x's range.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim = check_int(dim, "dim", "PixelNorm")
        self.eps = check_eps(eps, "PixelNorm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"PixelNorm: x must be a torch.Tensor; got {type(x).__name__}")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"PixelNorm: dim {self.dim} is out of range for x of shape {tuple(x.shape)}")
        z = opmath(x)
        return (z * torch.rsqrt(z.square().mean(self.dim, keepdim=True) + self.eps)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps:g}"
