"""Activation layers on the fused bias_act op."""

from __future__ import annotations

import torch
from torch import nn

from ..ops._dispatch import check_bool, check_positive_int, check_real
from ..ops.bias_act import bias_act


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU + gain in one op, as rosinality's ``FusedLeakyReLU``.

    Args:
        channels: size of dim 1 of the input (the bias length).
        bias: learn a per-channel bias, initialised to zero (default True).
        negative_slope: leaky ReLU slope for negative inputs (default 0.2).
        scale: output gain (default sqrt(2), which keeps unit variance for lrelu).

    Input [N, C, ...] of any float dtype; output of the same shape and memory format.
    negative_slope and scale are finite real numbers (Python, NumPy or 0-d tensors that do not
    require grad). TypeError naming the argument for a channels that is not an int, a bias that
    is not a bool, a negative_slope or scale that is not a real number; ValueError for channels
    < 1, a NaN or infinite negative_slope or scale.
    """

    def __init__(self, channels: int, bias: bool = True, negative_slope: float = 0.2,
                 scale: float = 2 ** 0.5):
        super().__init__()
        channels = check_positive_int(channels, "channels", "FusedLeakyReLU")
        self.bias = nn.Parameter(torch.zeros(channels)) if check_bool(bias, "bias", "FusedLeakyReLU") else None
        self.negative_slope = check_real(negative_slope, "negative_slope", "FusedLeakyReLU")
        self.scale = check_real(scale, "scale", "FusedLeakyReLU")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias.to(x.dtype)
        return bias_act(x, b, dim=1, act="lrelu", alpha=self.negative_slope, gain=self.scale)

    def extra_repr(self) -> str:
        channels = 0 if self.bias is None else self.bias.shape[0]
        return f"channels={channels}, negative_slope={self.negative_slope}, scale={self.scale:.4f}"
