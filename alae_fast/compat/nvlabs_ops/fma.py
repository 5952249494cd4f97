"""NVlabs ``torch_utils.ops.fma``: ``fma(a, b, c) = a * b + c`` with broadcasting."""

from __future__ import annotations

import torch

__all__ = ["fma"]


def fma(a, b, c):
    """``a * b + c`` in one ``torch.addcmul`` (broadcast as NVlabs' does: the result has the
    broadcast shape of the three); differentiable to any order in all three."""
    return torch.addcmul(c, a, b)
