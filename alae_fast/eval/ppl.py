"""Perceptual path length (Karras et al. 2019) in W.

For pairs of latents ``z0, z1 ~ N(0, I)`` mapped to ``w0 = F(z0)``, ``w1 = F(z1)`` and a
position ``t`` on the segment between them,

    PPL sample = d( G(lerp(w0, w1, t)), G(lerp(w0, w1, t + ε)) ) / ε²,    ε = 1e-4,

with ``t ~ U(0, 1)`` for ``sampling="full"`` and ``t = 0`` for ``sampling="end"``. W is
interpolated linearly (it is not a Gaussian space, so no slerp). The score is the mean of
the samples after dropping those below the 1st and above the 99th percentile (as the
original), which tames the rare huge values at discontinuities.

The image distance ``d`` is the caller's choice: the original uses LPIPS (VGG), which
needs trained weights that are not shipped here. :func:`proxy_lpips_distance` is an
LPIPS-like distance on the fixed random conv net of :mod:`alae_fast.eval.fid` (a proxy:
its values are not comparable with published PPL numbers); :func:`mse_distance` is the
plain pixel one.

The generator must be deterministic in ``w`` (same noise inputs for both images of a
pair, e.g. ``lambda w: model.decode(w, lod, 1.0, noise="zero")``), or the noise, not the
latent step, dominates the distance.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .fid import RandomConvFeatures

__all__ = ["perceptual_path_length", "mse_distance", "proxy_lpips_distance"]

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel difference per image: ``[N, ...], [N, ...] -> [N]``."""
    return (a - b).square().reshape(a.shape[0], -1).mean(dim=1)


def proxy_lpips_distance(net: RandomConvFeatures | None = None) -> Distance:
    """An LPIPS-like distance on a fixed random conv net (a PROXY for LPIPS).

    For each of the net's four layers, activations are unit-normalised across channels at
    every pixel; the distance sums, over layers, the spatial mean of the squared
    difference of those normalised activations (LPIPS with all learned channel weights
    set to 1). Returns ``d(a, b) -> [N]`` for images ``[N, C, H, W]`` in [-1, 1].
    """
    net = net if net is not None else RandomConvFeatures()

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for fa, fb in zip(net.layers(a), net.layers(b)):
            fa = F.normalize(fa, dim=1, eps=1e-10)
            fb = F.normalize(fb, dim=1, eps=1e-10)
            total = total + (fa - fb).square().sum(dim=1).mean(dim=(1, 2))
        return total

    return distance


def perceptual_path_length(mapping: Callable[[torch.Tensor], torch.Tensor],
                           generator: Callable[[torch.Tensor], torch.Tensor],
                           distance: Distance, latent_dim: int, num_samples: int = 1000, batch_size: int = 50,
                           sampling: str = "full", epsilon: float = 1e-4, seed: int = 0,
                           device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
    """Perceptual path length in W.

    Args:
        mapping: ``z [b, latent_dim] -> w [b, ...]`` (e.g. ``[b, latent]`` or per-layer
            ``[b, L, latent]``).
        generator: ``w [b, ...] -> images [b, C, H, W]``, deterministic (see module doc).
        distance: ``(images_a, images_b) -> [b]`` per-pair distances.
        latent_dim: size of z.
        num_samples: number of pairs (default 1000; the original uses 100 000).
        batch_size: pairs per call; the generator sees ``2 * batch_size`` images at once.
        sampling: ``"full"`` (t ~ U(0, 1)) or ``"end"`` (t = 0).
        epsilon: step along the path (default 1e-4).
        seed: z and t are drawn from a CPU ``torch.Generator`` with this seed, then moved
            to ``device`` as ``dtype``, so results do not depend on the device's RNG.

    Returns:
        ``{"ppl": filtered mean, "ppl_unfiltered": plain mean, "sampling", "epsilon",
        "num_samples", "distances": float64 numpy [num_samples] of d / ε²}``.
    """
    if sampling not in ("full", "end"):
        raise ValueError(f"sampling: expected 'full' or 'end', got {sampling!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon: expected > 0, got {epsilon}")
    if num_samples < 1 or batch_size < 1 or latent_dim < 1:
        raise ValueError(f"num_samples/batch_size/latent_dim: expected positive ints, got "
                         f"{num_samples}, {batch_size}, {latent_dim}")
    gen = torch.Generator().manual_seed(seed)
    dists = []
    done = 0
    with torch.no_grad():
        while done < num_samples:
            b = min(batch_size, num_samples - done)
            z = torch.randn(2 * b, latent_dim, generator=gen, dtype=torch.float64)
            t = torch.rand(b, generator=gen, dtype=torch.float64)
            if sampling == "end":
                t = torch.zeros_like(t)
            z, t = z.to(device, dtype), t.to(device, dtype)
            w = mapping(z)
            w0, w1 = w[:b], w[b:]
            tt = t.reshape(b, *([1] * (w.dim() - 1)))
            wa = torch.lerp(w0, w1, tt)
            wb = torch.lerp(w0, w1, tt + epsilon)
            images = generator(torch.cat([wa, wb]))
            d = distance(images[:b], images[b:])
            if not isinstance(d, torch.Tensor) or d.shape != (b,):
                raise ValueError(f"distance: must return a [{b}] tensor, got "
                                 f"{tuple(d.shape) if isinstance(d, torch.Tensor) else type(d).__name__}")
            dists.append(d.to("cpu", torch.float64).numpy() / (epsilon ** 2))
            done += b
    dist = np.concatenate(dists)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    kept = dist[(dist >= lo) & (dist <= hi)]
    return {"ppl": float(kept.mean()), "ppl_unfiltered": float(dist.mean()), "sampling": sampling,
            "epsilon": float(epsilon), "num_samples": int(num_samples), "distances": dist}
