"""Differentiable augmentation of the images D∘E reads in ALAE's adversarial steps.

DiffAugment (Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020): random, differentiable transforms T of one family (each image its own
draw) are applied to real and generated images alike wherever the discriminator reads them, in
its own step and in the generator's, so D cannot memorise a small training set while G still learns the untransformed images (T
is applied to both sides alike, and G's gradient flows through T). In ALAE the discriminator
of images is D∘E, so T sits in front of E in steps 1 and 2; step 3 (E(G(w)) ≈ w) reads G's
images as they are. R1 is taken with respect to the untransformed real images, through T, as
StyleGAN2-ADA does.

Policies (``AUGMENT_POLICIES``), applied in the order given, each image with its own draws:

- ``translation``: an integer shift in each axis, uniform in [-s, s] with
  s = floor(side / 8) pixels (0 below 8x8), the vacated pixels 0;
- ``cutout``: a square of side ceil(side / 2) set to 0, its centre uniform over the pixels
  (clipped at the borders);
- ``color``: brightness + U(-0.5, 0.5); saturation (colour images only) × U(0, 2) about each
  pixel's channel mean; contrast × U(0.5, 1.5) about each image's mean.

Images are in the data pipeline's [-1, 1] (0 is mid grey); the trainer maps a model that reads
another ``pixel_range`` there and back around the transform. Departures from the authors'
DiffAugment_pytorch.py (mit-han-lab/data-efficient-gans), each measured with: the shift bound
is floor(side / 8) where theirs rounds side / 8 (so 1 pixel at 4x4, where a shift of a quarter
of the image would change what a 4x4 image is); cutout's centre is a pixel of the image where
theirs may also lie one past the last row or column; saturation is not drawn for one-channel
images (a no-op there). Every draw comes from the ``torch.Generator`` given (the trainer's,
identical on every rank, drawn for the global batch and sliced), so runs are reproducible and
resume bit-identically.
"""

from __future__ import annotations

import torch

__all__ = ["AUGMENT_POLICIES", "parse_augment", "augment_images"]

AUGMENT_POLICIES = ("translation", "cutout", "color")


def parse_augment(spec, where: str = "augment") -> tuple[str, ...]:
    """The policies named in ``spec``, as a tuple of names in the order given (() for none).

    Args:
        spec: None, a comma-separated str ('', 'none': none; spaces around names ignored) or
            a tuple/list of names; each one of ``AUGMENT_POLICIES`` at most once.
        where: what the messages name (the argument or flag).

    Raises: TypeError for another type; ValueError naming ``where`` for an unknown or
    repeated name.
    """
    if spec is None:
        return ()
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split(",") if s.strip()]
    elif isinstance(spec, (tuple, list)):
        names = list(spec)
    else:
        raise TypeError(f"{where}: expected a comma-separated list of {', '.join(AUGMENT_POLICIES)} "
                        f"(or 'none'); got {spec!r}")
    if names == ["none"]:
        return ()
    for name in names:
        if name not in AUGMENT_POLICIES:
            raise ValueError(f"{where}: unknown augmentation {name!r}; expected a comma-separated list of "
                             f"{', '.join(AUGMENT_POLICIES)} (or 'none')")
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: each augmentation may be named once; got {spec!r}")
    return tuple(names)


def augment_images(x: torch.Tensor, policies: tuple[str, ...], generator: torch.Generator,
                   n_global: int | None = None, offset: int = 0) -> torch.Tensor:
    """T(x): ``policies`` applied to a batch of images, differentiable to any order in x.

    Args:
        x: [n, C, H, W] floating-point images (any float dtype; pixels in [-1, 1], see the
            module docstring), this rank's slice ``[offset, offset + n)`` of a global batch of
            ``n_global`` images (default: n and 0, a single process).
        policies: a tuple or list of names from ``AUGMENT_POLICIES`` (:func:`parse_augment`
            makes one); () returns x itself and draws nothing.
        generator: a ``torch.Generator`` on x's device; for each random quantity of each policy
            (translation: 2, none under 8x8; cutout: 2; color: 2, or 3 for colour
            images) it draws ``n_global`` float64 values and x's slice takes its own.
        n_global, offset: ints, 0 <= offset, offset + n <= n_global.

    Returns: a new [n, C, H, W] tensor of x's dtype (x unchanged).

    Raises: TypeError for a non-float x, policies that are not a tuple or list, or a
    non-int n_global/offset; ValueError for a non-4-D x, an unknown policy (before any draw),
    a slice outside the global batch, or a generator on another device than x.
    """
    if not isinstance(policies, (tuple, list)):
        raise TypeError(f"augment_images: policies must be a tuple or list of {AUGMENT_POLICIES}; got {policies!r}")
    for policy in policies:
        if policy not in AUGMENT_POLICIES:
            raise ValueError(f"augment_images: unknown policy {policy!r} in policies; expected names from "
                             f"{AUGMENT_POLICIES}")
    if not policies:
        return x
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"augment_images: x must be a floating-point tensor; got {got}")
    if x.ndim != 4:
        raise ValueError(f"augment_images: x must be [N, C, H, W]; got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    for name, value in (("n_global", n_global), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"augment_images: {name} must be an int; got {value!r}")
    n_global = n if n_global is None else n_global
    lo, hi = offset, offset + n
    if lo < 0 or hi > n_global:
        raise ValueError(f"augment_images: offset {offset} and x's {n} images make the slice [{lo}, {hi}), "
                         f"outside the global batch of n_global = {n_global}")
    dev = x.device
    if not isinstance(generator, torch.Generator) or generator.device.type != dev.type:
        where = generator.device if isinstance(generator, torch.Generator) else type(generator).__name__
        raise ValueError(f"augment_images: generator must be a torch.Generator on x's device ({dev}); got {where}")

    def draw():  # one float64 U[0, 1) per image of the global batch; this rank's slice [n]
        return torch.rand(n_global, generator=generator, device=dev, dtype=torch.float64)[lo:hi]

    def u():  # draw() as x's dtype, broadcast over an image
        return draw().to(x.dtype).view(n, 1, 1, 1)

    for policy in policies:
        if policy == "translation":
            sy, sx = h // 8, w // 8
            if sy == 0 and sx == 0:
                continue
            # shifts uniform over the 2s + 1 integers of [-s, s]
            dy = (draw() * (2 * sy + 1)).floor().long() - sy
            dx = (draw() * (2 * sx + 1)).floor().long() - sx
            padded = torch.nn.functional.pad(x, (sx, sx, sy, sy))
            rows = (torch.arange(h, device=dev).view(1, h) - dy.view(n, 1) + sy)  # [n, h]
            cols = (torch.arange(w, device=dev).view(1, w) - dx.view(n, 1) + sx)  # [n, w]
            idx_n = torch.arange(n, device=dev).view(n, 1, 1, 1)
            idx_c = torch.arange(c, device=dev).view(1, c, 1, 1)
            x = padded[idx_n, idx_c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
        elif policy == "cutout":
            ch, cw = (h + 1) // 2, (w + 1) // 2
            cy = (draw() * h).floor().long().view(n, 1, 1)
            cx = (draw() * w).floor().long().view(n, 1, 1)
            yy = torch.arange(h, device=dev).view(1, h, 1)
            xx = torch.arange(w, device=dev).view(1, 1, w)
            inside = ((yy - cy + ch // 2) >= 0) & ((yy - cy + ch // 2) < ch) \
                & ((xx - cx + cw // 2) >= 0) & ((xx - cx + cw // 2) < cw)
            x = x * (~inside).to(x.dtype).unsqueeze(1)
        elif policy == "color":
            x = x + (u() - 0.5)
            if c > 1:
                mean = x.mean(1, keepdim=True)
                x = (x - mean) * (u() * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (u() + 0.5) + mean
    return x
