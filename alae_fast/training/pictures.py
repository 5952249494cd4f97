"""Which real images the training's reconstruction pictures (``images/reconstructions-*.png``)
show, and how the picture says where they come from.

The picture is a look at how well E and G invert each other on images they did not learn from:
the held-out split when the data have one (:func:`alae_fast.data.open_dataset`'s
``split="test"``) of at least 8 images (a folder of 80 files or more), else the training images, said in the picture's column titles either way.
Its images are spread evenly over that split's order (``spread_indices``), not its first ones:
an image folder is in file-name order, and the first 16 files of a folder of crops were all
crops of one photo. The choice is a function of the data alone: it draws no random number
(Python's, NumPy's or torch's), so a run with these pictures trains bit-identically to one
without them.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["SHOWN_IMAGES", "MIN_HELD_OUT_SHOWN", "spread_indices", "reconstruction_images", "reconstruction_titles"]

SHOWN_IMAGES = 16  # the reconstruction picture's originals (4 pairs a row)
# The fewest held-out images the picture shows (two rows); with fewer, it shows training images
MIN_HELD_OUT_SHOWN = 8


def spread_indices(n: int, count: int = SHOWN_IMAGES) -> list[int]:
    """``min(n, count)`` indices into ``range(n)`` spaced as evenly as integers allow, the first
    0 and each ``floor(k * n / count)``: ``spread_indices(203, 4) == [0, 50, 101, 152]``; all of
    ``range(n)`` when ``n <= count``. ValueError for a negative ``n`` or a ``count`` below 1."""
    if n < 0 or count < 1:
        raise ValueError(f"spread_indices: expected n >= 0 and count >= 1; got n={n}, count={count}")
    if n <= count:
        return list(range(n))
    return [k * n // count for k in range(count)]


def reconstruction_images(data: str | None, resolution: int, channels: int, training: Any,
                          count: int = SHOWN_IMAGES) -> tuple[torch.Tensor, str]:
    """(images ``[min(count, N), C, R, R]`` in [-1, 1], ``"held-out"`` or ``"training"``): the
    originals of the training's reconstruction pictures, :func:`spread_indices` of the held-out
    split of ``data`` (the run's ``--data``: None for the embedded digits) when it has one, else
    of ``training`` (the run's training dataset, opened by the caller); also the training images
    when the held-out split holds fewer than :data:`MIN_HELD_OUT_SHOWN` (8) and the training set
    more. ``resolution`` and
    ``channels``: as the training dataset was opened with. Draws no random number."""
    from ..data import open_dataset

    try:
        shown, split = open_dataset(data, resolution, channels, split="test"), "held-out"
    except (FileNotFoundError, ValueError):  # no held-out split (a folder too small to hold one out)
        shown, split = training, "training"
    if split == "held-out" and len(shown) < MIN_HELD_OUT_SHOWN <= len(training):
        # a folder holds out a tenth: under 80 files that is a row or less, where 16 training
        # images say more about the run than 1-7 held-out ones
        shown, split = training, "training"
    index = torch.tensor(spread_indices(len(shown), count), dtype=torch.int64)
    return shown.get_batch(index)[0], split


def reconstruction_titles(split: str) -> tuple[str, str]:
    """The column titles of a pair of the reconstruction picture (``save_pairs_grid``'s
    ``titles``): the original, named by its split, and G(E(x)): ``("held-out x", "G(E(x))")``."""
    return f"{split} x", "G(E(x))"
