"""The embedded default data: scikit-learn's bundled handwritten digits.

scikit-learn ships the UCI "optical recognition of handwritten digits" test set inside
its wheel (1797 grey images of 8x8 pixels, integer intensities 0..16, labels 0..9), so
training on it needs no download.

Preparation, in this order:
1. intensities are divided by 16, giving ``[0, 1]``;
2. each image is upscaled from 8x8 to ``resolution`` x ``resolution`` (32 by default) by
   **bilinear** interpolation (``torch.nn.functional.interpolate(mode="bilinear",
   align_corners=False)``, i.e. pixel centres aligned, edges clamped); bilinear output is
   a convex combination of inputs, so the range stays ``[0, 1]``;
3. values are mapped to ``[-1, 1]`` by ``2x - 1``.

The train/test split is fixed: a permutation of the 1797 indices drawn from
``numpy.random.RandomState(0)`` (whose stream numpy guarantees never to change); the
first ``DIGITS_TEST_SIZE`` = 297 indices are the test split, the remaining 1500 the
training split. Every class appears in both (checked by the tests).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import TensorImageDataset

__all__ = ["DIGITS_TEST_SIZE", "DIGITS_SPLIT_SEED", "load_digits", "DigitsDataset"]

DIGITS_TEST_SIZE = 297
DIGITS_SPLIT_SEED = 0


def _split_indices(n: int) -> dict[str, np.ndarray]:
    perm = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(n)
    test = np.sort(perm[:DIGITS_TEST_SIZE])
    train = np.sort(perm[DIGITS_TEST_SIZE:])
    return {"train": train, "test": test, "all": np.arange(n)}


def load_digits(split: str = "train", resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the bundled digits as tensors.

    Args:
        split: ``"train"`` (1500 images), ``"test"`` (297) or ``"all"`` (1797).
        resolution: output side length in pixels, an int >= 8 (default 32).

    Returns:
        ``(images, labels)``: ``images`` float32 ``[N, 1, resolution, resolution]`` in
        ``[-1, 1]`` (0 intensity -> -1, i.e. white ink on black), ``labels`` int64 ``[N]``
        in ``0..9``. Same order every call (ascending original index).
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split: expected 'train', 'test' or 'all', got {split!r}")
    if not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution: expected an int >= 8, got {resolution!r}")
    from sklearn.datasets import load_digits as _sk_load_digits  # slow import, only when used

    bunch = _sk_load_digits()
    raw = np.asarray(bunch.images, dtype=np.float32)  # [1797, 8, 8], 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    idx = _split_indices(raw.shape[0])[split]
    x = torch.from_numpy(raw[idx] / 16.0).unsqueeze(1)
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x * 2.0 - 1.0).clamp_(-1.0, 1.0).contiguous()
    return x, torch.from_numpy(labels[idx])


class DigitsDataset(TensorImageDataset):
    """The bundled digits as a dataset of ``(image [1, R, R] float32 in [-1, 1], label int64)``.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"`` (see :func:`load_digits`).
        resolution: side length, default 32.
        flip: add mirrored copies (length doubles). Off by default: mirrored digits are
            not digits.
    """

    def __init__(self, split: str = "train", resolution: int = 32, flip: bool = False):
        images, labels = load_digits(split, resolution)
        super().__init__(images, labels, flip=flip)
        self.split = split

    def __repr__(self) -> str:
        return f"DigitsDataset(split={self.split!r}, n={self.num_images}, resolution={self.resolution})"
