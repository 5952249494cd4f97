"""NVlabs ``torch_utils.ops.grid_sample_gradfix``: ``grid_sample`` and the ``enabled`` switch.

NVlabs' custom op existed for double backward through ``grid_sample`` on old PyTorch; current
PyTorch differentiates it to second order itself, so this is ``F.grid_sample`` with NVlabs'
fixed settings (bilinear, zero padding, align_corners=False). ``enabled`` changes nothing.
"""

from __future__ import annotations

import torch.nn.functional as F

__all__ = ["enabled", "grid_sample"]

enabled = False


def grid_sample(input, grid):
    """input [N, C, H, W], grid [N, Ho, Wo, 2] in [-1, 1] -> [N, C, Ho, Wo], bilinear,
    zeros outside, align_corners=False (as NVlabs' augment pipeline calls it)."""
    return F.grid_sample(input=input, grid=grid, mode="bilinear", padding_mode="zeros", align_corners=False)
