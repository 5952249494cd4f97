"""Reconstruction error: mean squared difference between images and their reconstructions."""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["reconstruction_mse"]


def reconstruction_mse(reconstruct: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                       batch_size: int = 256, per_image: bool = False) -> float | torch.Tensor:
    """Mean of ``(reconstruct(x) - x) ** 2`` over every pixel of every image.

    Args:
        reconstruct: maps a batch ``[b, C, R, R]`` to a batch of the same shape (e.g.
            ``lambda x: model.reconstruct(x, lod, 1.0)``); called without gradients.
        images: ``[N, C, R, R]`` float tensor, in the value range the model uses (the
            error is in those units: for ``[-1, 1]`` images, 4.0 is the largest possible).
        batch_size: images per call (default 256).
        per_image: if True, return the float64 ``[N]`` tensor of per-image means instead.

    Returns:
        A Python float (accumulated in float64), or the per-image tensor.
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise ValueError("images: expected a [N, ...] tensor")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    per = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            x = images[i:i + batch_size]
            y = reconstruct(x)
            if not isinstance(y, torch.Tensor) or y.shape != x.shape:
                raise ValueError(f"reconstruct: returned {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y)}"
                                 f" for input {tuple(x.shape)}; expected the same shape")
            d = (y.detach().to("cpu", torch.float64) - x.to("cpu", torch.float64)).square()
            per.append(d.reshape(d.shape[0], -1).mean(dim=1))
    per_t = torch.cat(per) if per else torch.zeros(0, dtype=torch.float64)
    if per_image:
        return per_t
    if per_t.numel() == 0:
        raise ValueError("images: is empty")
    return float(per_t.mean())
