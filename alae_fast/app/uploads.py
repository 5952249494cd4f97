"""Decoding an uploaded image safely, in memory (no file is ever written).

Limits, each answered with :class:`UploadError` (carrying the HTTP status for the page):

- the body: at most ``max_bytes`` (413 past it; the reader stops reading there);
- the format: PNG, JPEG, WebP, BMP or GIF as Pillow identifies it from the bytes (415 otherwise:
  a text file, a PDF, an image format outside that list);
- the pixels: at most ``max_pixels`` (413), checked from the header before anything is decoded;
  Pillow's own decompression-bomb check is also turned into an error;
- the content: a truncated or corrupt file fails while decoding (400).

The image is then prepared exactly as ``alae-fast reconstruct`` prepares files
(:func:`alae_fast.data.load_image`: EXIF orientation, centre crop, resize: a block mean for
2^k times the resolution, as the official code, Lanczos otherwise).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

from ..errors import UserError, first_line

__all__ = ["UploadError", "decode_image", "FORMATS"]

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")


class UploadError(UserError):
    """An upload the app refuses; ``status`` is the HTTP status to answer with (4xx)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, resolution: int, channels: int, max_bytes: int, max_pixels: int,
                 transparent: list | None = None) -> torch.Tensor:
    """The bytes of an uploaded image -> ``[1, channels, resolution, resolution]`` float32 with
    pixels in [-1, 1]. Raises :class:`UploadError` (see the module docstring). An image with
    transparent pixels is composited over black (:func:`alae_fast.data.load_image`); then
    ``"upload"`` is appended to ``transparent`` when that is a list."""
    from PIL import Image

    from ..data import load_image

    if not data:
        raise UploadError("the upload is empty: choose an image file (PNG, JPEG, WebP, BMP or GIF)")
    if len(data) > max_bytes:
        raise UploadError(f"the upload is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB", 413)
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
            w, h = img.size
    except Image.DecompressionBombError as e:
        raise UploadError(f"the image is too large to decode safely ({first_line(e)})", 413) from e
    except Exception as e:  # UnidentifiedImageError for text, PDFs, other formats
        raise UploadError(f"the upload is not an image in a supported format ({', '.join(FORMATS)})", 415) from e
    if w * h > max_pixels:
        raise UploadError(f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                          f"{max_pixels / 1e6:.1f} megapixels", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            found: list = []
            arr = load_image(io.BytesIO(data), resolution, channels, transparent=found)
    except Exception as e:  # OSError "image file is truncated", SyntaxError, broken PNG chunks ...
        raise UploadError(f"the image could not be decoded (truncated or corrupt?): {first_line(e)}") from e
    if found and transparent is not None:
        transparent.append("upload")
    return torch.from_numpy(np.array(arr, dtype=np.float32)).unsqueeze(0) / 127.5 - 1.0
