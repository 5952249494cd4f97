"""Training data: the embedded digits, image folders, MNIST IDX files, and a resumable loader.

Every dataset yields ``(image [C, R, R] float32, label int64)`` (label -1 when unknown);
see :mod:`alae_fast.data.base`. :func:`open_dataset` picks one from a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import ImageDataset, TensorImageDataset, lower_resolution
from .digits import DIGITS_TEST_SIZE, DigitsDataset, load_digits
from .folder import (HOLDOUT_FRACTION, IMAGE_EXTENSIONS, ImageFolderDataset, LoadNotes, find_image_files,
                     folder_channels, load_image, split_files)
from .loader import DataStream, ShardedStreamSampler, stream_flips, stream_indices
from .mnist import MNISTDataset, find_mnist_files, is_mnist_folder, load_mnist, read_idx, write_idx

__all__ = [
    "ImageDataset", "TensorImageDataset", "lower_resolution",
    "DIGITS_TEST_SIZE", "DigitsDataset", "load_digits",
    "HOLDOUT_FRACTION", "IMAGE_EXTENSIONS", "ImageFolderDataset", "find_image_files", "folder_channels",
    "LoadNotes", "load_image", "split_files",
    "DataStream", "ShardedStreamSampler", "stream_flips", "stream_indices",
    "MNISTDataset", "find_mnist_files", "is_mnist_folder", "load_mnist", "read_idx", "write_idx",
    "open_dataset",
]


def open_dataset(path: str | os.PathLike | None, resolution: int, channels: int = 3, split: str = "train",
                 flip: bool = False, value_range: tuple[float, float] = (-1.0, 1.0)) -> ImageDataset:
    """The dataset a ``--data`` argument names, checked before any training starts.

    - ``None``: the embedded digits (:class:`DigitsDataset`, ``split``, 1 channel; ``flip``
      ignored since mirrored digits are not digits);
    - a folder holding MNIST IDX files (``train-images-idx3-ubyte[.gz]`` ...):
      :class:`MNISTDataset` of ``split``, padded to ``resolution`` (>= 28), in ``value_range``;
    - any other folder: :class:`ImageFolderDataset` at ``resolution`` with ``channels``
      and ``flip``, ``split`` "train" or "test" (its held-out ``HOLDOUT_FRACTION``) or "all".

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder without
    readable images, with the path in the message.
    """
    if path is None:
        return DigitsDataset(split=split, resolution=resolution)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"data path {str(p)!r} does not exist")
    if p.is_dir() and is_mnist_folder(p):
        return MNISTDataset(p, split=split, value_range=value_range, resolution=resolution)
    return ImageFolderDataset(p, resolution=resolution, channels=channels, flip=flip, split=split)
