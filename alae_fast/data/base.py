"""What every image dataset of ``alae_fast.data`` shares.

Every dataset is a ``torch.utils.data.Dataset`` whose item ``i`` is ``(image, label)``:
``image`` a float32 tensor ``[C, R, R]`` with values in ``[-1, 1]`` (or ``[0, 1]`` where a
dataset says so), ``label`` an int64 scalar tensor (``-1`` when the data has no labels).

Horizontal flipping is done by *index*, not by a random draw inside ``__getitem__``: a
dataset built with ``flip=True`` has ``2 * N`` items, item ``N + i`` being item ``i``
mirrored. The sampler then decides which version is seen, so the data order is a pure
function of (seed, position) and a resumed run sees exactly the images it would have seen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["ImageDataset", "TensorImageDataset", "lower_resolution"]


def lower_resolution(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Downsample square images by repeated 2x2 average pooling.

    Args:
        images: ``[N, C, H, H]`` or ``[C, H, H]`` floating tensor; ``H`` must be
            ``resolution * 2**k`` for some ``k >= 0``.
        resolution: target side length in pixels.

    Returns:
        ``[N, C, resolution, resolution]`` (or ``[C, ...]``), same dtype; the input itself
        when it already has that size. Each output pixel is the mean of the
        ``2**k x 2**k`` block it covers, which is what progressive growing uses for the
        lower levels of detail.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4) or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images: expected [N, C, H, H] or [C, H, H], got {tuple(images.shape)}")
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution: expected a positive int, got {resolution!r}")
    size = images.shape[-1]
    if size % resolution or (size // resolution) & (size // resolution - 1):
        raise ValueError(f"resolution: {resolution} does not divide image size {size} by a power of 2")
    squeeze = images.dim() == 3
    x = images.unsqueeze(0) if squeeze else images
    while x.shape[-1] > resolution:
        x = F.avg_pool2d(x, 2)
    return x.squeeze(0) if squeeze else x


class ImageDataset(Dataset):
    """Base class: maps an item index to (base index, mirrored?) and applies the mirror.

    Subclasses set ``self.num_images`` (N, the images on disk or in memory),
    ``self.resolution``, ``self.channels`` and implement ``_load(i) -> (image, label)``
    for ``0 <= i < N``. ``flip`` doubles the length (see the module docstring).
    """

    num_images: int
    resolution: int
    channels: int
    flip: bool = False

    def __len__(self) -> int:
        return self.num_images * (2 if self.flip else 1)

    def _split_index(self, index: int) -> tuple[int, bool]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index %= n
        return index % self.num_images, index >= self.num_images

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        base, mirrored = self._split_index(int(index))
        image, label = self._load(base)
        if mirrored:
            image = image.flip(-1)
        return image, label

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` (ints in ``[0, len)``) stacked: ``([B, C, R, R] float32, [B] int64)``."""
        indices = _check_indices(indices, len(self))
        items = [self[int(i)] for i in indices]
        if not items:
            return (torch.empty(0, self.channels, self.resolution, self.resolution),
                    torch.empty(0, dtype=torch.int64))
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


class TensorImageDataset(ImageDataset):
    """Images held in memory: ``images`` ``[N, C, R, R]`` float (or uint8, see below), ``labels`` ``[N]`` int64.

    ``uint8`` images are stored as such (4x less memory) and converted on access with
    ``x / 127.5 - 1``. ``get_batch(indices)`` gathers many items with one indexing op,
    which the loader uses instead of collating items one by one.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None, flip: bool = False):
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images: expected a [N, C, R, R] tensor, got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        if labels is None:
            labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels: expected shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.num_images = images.shape[0]
        self.channels = images.shape[1]
        self.resolution = images.shape[-1]
        self.flip = bool(flip)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_float(self.images[index]), self.labels[index]

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` (int64 ``[B]``) stacked: ``([B, C, R, R] float32, [B] int64)``."""
        return _gather(self.images, self.labels, self.flip, indices)


def _check_indices(indices, n: int) -> torch.Tensor:
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n):
        raise IndexError(f"indices out of range for a dataset of {n} items")
    return indices


def _to_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 127.5 - 1.0
    return x


def _gather(images: torch.Tensor, labels: torch.Tensor, flip: bool, indices) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched item lookup for in-memory images (index ``>= N`` means mirrored)."""
    num_images = images.shape[0]
    indices = _check_indices(indices, num_images * (2 if flip else 1))
    base = indices % num_images
    # advanced indexing copies, so the in-place mirror below never touches `images`
    batch = _to_float(images[base])
    if flip:
        mirrored = indices >= num_images
        if bool(mirrored.any()):
            batch[mirrored] = batch[mirrored].flip(-1)
    return batch, labels[base]
