"""MNIST in its original IDX files, raw or gzip-compressed.

IDX layout (big-endian): two zero bytes; a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64); a byte giving the number of dimensions ``n``;
``n`` uint32 sizes; then the values in C order. :func:`read_idx` checks every part of
that header and that the payload has exactly the announced size, so a truncated or
wrong file is an error naming the file, never silently short data.

Gzip is recognised by its magic bytes (``1f 8b``), not by the file name.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import TensorImageDataset

__all__ = ["read_idx", "write_idx", "find_mnist_files", "load_mnist", "MNISTDataset"]

_IDX_TYPES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in _IDX_TYPES.items()}

# Names used by the original site and by common mirrors/torchvision-style folders.
_MNIST_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":
            try:
                return gzip.decompress(f.read())
            except (OSError, EOFError) as e:
                raise ValueError(f"{path}: corrupt gzip data ({e})") from e
        return f.read()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (raw or gzip) into a numpy array of its stored shape and type.

    Multi-byte types come back in native byte order. Raises ``FileNotFoundError`` for a
    missing file and ``ValueError`` naming the file for a folder, device or FIFO, a bad magic
    number, unknown type code, zero dimensions, or a payload shorter or longer than the header
    announces.
    """
    path = Path(path)
    if not path.is_file():
        from ..errors import check_regular_file

        check_regular_file(path, f"IDX file {str(path)!r}")
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic bytes {data[:4].hex()}, expected 0000TTNN)")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header announces 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX payload {what}: header says shape {shape} of {dtype.name} "
                         f"({expected} bytes), file has {got}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file.

    ``compress`` None means: gzip when the name ends in ``.gz``. Returns the path.
    Used to make test data; kept public because it is the exact inverse of :func:`read_idx`.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if native not in _IDX_CODES:
        raise ValueError(f"array: dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"array: expected 1..255 dimensions, got {array.ndim}")
    code = _IDX_CODES[native]
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes())
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def find_mnist_files(root: str | os.PathLike, split: str = "train") -> tuple[Path, Path]:
    """Locate ``(images, labels)`` IDX files of ``split`` ('train' or 'test') in ``root``.

    Accepts the original names (``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
    ...), their ``.idx3-ubyte`` spelling, each raw or with ``.gz``, in ``root`` or in
    ``root/raw`` or ``root/MNIST/raw``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"MNIST path {str(root)!r} does not exist")
    found = []
    for kind in ("images", "labels"):
        candidates = [d / (n + gz) for d in (root, root / "raw", root / "MNIST" / "raw")
                      for n in _MNIST_NAMES[(split, kind)] for gz in ("", ".gz")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise FileNotFoundError(f"MNIST {split} {kind} not found under {str(root)!r} "
                                    f"(looked for {_MNIST_NAMES[(split, kind)][0]}[.gz])")
        found.append(hit)
    return found[0], found[1]


def is_mnist_folder(root: str | os.PathLike) -> bool:
    """True when ``root`` holds any MNIST IDX file under a name :func:`find_mnist_files` looks
    for, a complete set or not. A folder with the images but not the labels is MNIST missing a
    file, and the MNIST loader's error names that file; read as an image folder it was refused
    for holding no PNG or JPEG files, which points the user the wrong way."""
    root = Path(root)
    return any((d / (n + gz)).is_file() for d in (root, root / "raw", root / "MNIST" / "raw")
               for names in _MNIST_NAMES.values() for n in names for gz in ("", ".gz"))


def load_mnist(root: str | os.PathLike, split: str = "train", value_range: tuple[float, float] = (-1.0, 1.0),
               resolution: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST images and labels from IDX files.

    Args:
        root: folder holding the files (see :func:`find_mnist_files`).
        split: ``"train"`` (60000 in the real data) or ``"test"`` (10000).
        value_range: ``(lo, hi)`` that pixel 0 and 255 map to; ``(-1, 1)`` (default) is what
            every alae_fast model's ``encode`` takes, the official mnist_ref MLP included (it maps
            to its own [0, 1], ``config.pixel_range``); ``(0, 1)`` gives x / 255.
        resolution: None keeps 28x28; an int >= 28 pads the background symmetrically
            (e.g. 32, as StyleALAE needs a power of 2).

    Returns:
        ``(images, labels)``: float32 ``[N, 1, R, R]`` and int64 ``[N]`` in ``0..9``.
        Raises ``ValueError`` when the files disagree (count, type, shape, label values).
    """
    images_path, labels_path = find_mnist_files(root, split)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels [N], got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    lo, hi = (float(v) for v in value_range)
    x = torch.from_numpy(images).unsqueeze(1).to(torch.float32) * ((hi - lo) / 255.0) + lo
    if resolution is not None:
        h, w = images.shape[1:]
        if not isinstance(resolution, int) or resolution < max(h, w):
            raise ValueError(f"resolution: expected None or an int >= {max(h, w)}, got {resolution!r}")
        top, left = (resolution - h) // 2, (resolution - w) // 2
        x = F.pad(x, (left, resolution - w - left, top, resolution - h - top), value=lo)
    return x.contiguous(), torch.from_numpy(labels.astype(np.int64))


class MNISTDataset(TensorImageDataset):
    """MNIST from IDX files as ``(image [1, R, R] float32, label int64)``; see :func:`load_mnist`."""

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 value_range: tuple[float, float] = (-1.0, 1.0), resolution: int | None = None):
        images, labels = load_mnist(root, split, value_range, resolution)
        super().__init__(images, labels)
        self.split = split

    def __repr__(self) -> str:
        return f"MNISTDataset(split={self.split!r}, n={self.num_images}, resolution={self.resolution})"
