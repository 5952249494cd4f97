"""Decoding an uploaded image safely, in memory (no file is ever written).

Limits, each answered with :class:`UploadError` (carrying the HTTP status for the page):

- the body: at most ``max_bytes`` (413 past it; the reader stops reading there), and all bodies
  being read or decoded at once at most :data:`BODY_BUDGET_UPLOADS` times the largest upload
  (:class:`BodyBudget`; 503 with ``Retry-After`` past it);
- the format: PNG, JPEG, WebP, BMP or GIF, told by the signature its bytes start with
  (:func:`signature_format`: PNG ``\\x89PNG\\r\\n\\x1a\\n``, JPEG ``\\xff\\xd8\\xff``, GIF ``GIF87a`` or
  ``GIF89a``, BMP ``BM``, WebP ``RIFF`` + 4 bytes + ``WEBP``). Bytes that start with none of them
  get 415 (a text file, a PDF, an image format outside that list, whatever the file is named),
  as does a whole file of a variant Pillow does not decode (415 with Pillow's "Unsupported ...");
- the pixels: at most ``max_pixels`` (413), checked from the header before anything is decoded;
  Pillow's own decompression-bomb check is also turned into an error;
- the content: a file that starts with one of those signatures but cannot be read, whether its
  header (a JPEG cut to its first 200 bytes) or its pixels (one cut at 60%) is missing or damaged,
  is a truncated or corrupt image of that format: 400, naming the format.

The image is then prepared exactly as ``alae-fast reconstruct`` prepares files
(:func:`alae_fast.data.load_image`: EXIF orientation, centre crop, resize: a block mean for
2^k times the resolution, as the official code, Lanczos otherwise).

Decoding is bounded (:class:`DecodeSlots`): a 40-megapixel RGB image is 120 MB decoded, and
preparing it (orientation, mode, crop) copies it: about 450 MB at the peak, measured on a
6300x6300 JPEG. N uploads decoded at once would take N times that.
At most :data:`DECODE_SLOTS` (2) decodes run at once; a decode waits for a slot up to
:data:`DECODE_WAIT_S` (5 s), then the upload is refused with 503 ("the server is busy",
``Retry-After``) rather than queued without end: a page that asked several seconds ago is better
told to try again than left waiting behind a pile of uploads, each holding a worker thread.
Two slots, not one, so that one upload's decode overlaps another's model work on 2 cores.
"""

from __future__ import annotations

import io
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import torch

from .._words import plural
from ..errors import UserError, first_line

__all__ = ["UploadError", "BodyBudget", "DecodeSlots", "decode_image", "signature_format", "FORMATS", "DECODE_SLOTS",
           "DECODE_WAIT_S", "BODY_BUDGET_UPLOADS", "UPLOAD_LIMIT_RANGE", "check_upload_limit", "size_text", "too_large"]

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
# Pillow's names (FORMATS) -> the first bytes of a file of that format. Each is as loose as or
# looser than the test of Pillow's own plugin (WebP's also checks the chunk after "WEBP"), so every
# file Pillow identifies as one of FORMATS matches its signature here.
_SIGNATURES = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "GIF": (b"GIF87a", b"GIF89a"),
               "BMP": (b"BM",)}
# the sizes of a BMP's info header (BITMAPCOREHEADER 12, BITMAPINFOHEADER 40, its V2/V3 extensions
# 52 and 56, OS/2 2.x 64, V4 108, V5 124)
_BMP_INFO_SIZES = (12, 40, 52, 56, 64, 108, 124)
DECODE_SLOTS = 2
DECODE_WAIT_S = 5.0
# Bodies held in memory at once, in uploads of the largest size: each body is read whole before
# it can be decoded, so without a bound N slow uploads hold N times the limit.
BODY_BUDGET_UPLOADS = 4
# The upload limits a server may be given, in bytes (``--max-upload-mb``, ``serve(max_upload_mb=)``,
# ``ModelService.open(max_upload_bytes=)``). Below 64 KiB nearly every photo would be refused (a
# small JPEG is tens of KiB), and below a few bytes every upload: a typo (1e-9) must not start a
# server that refuses everything. At most 1 GiB: every upload is held in memory whole, up to
# BODY_BUDGET_UPLOADS (4) at once, so 4 GiB at the top; and the largest image within the
# 40-megapixel limit, a 16-bit RGBA PNG stored uncompressed, is 320 MB: more never helps, while a
# value like 1e12 would remove the limit (and the memory bound with it).
UPLOAD_LIMIT_RANGE = (64 * 2 ** 10, 2 ** 30)


def size_text(n: int | float) -> str:
    """A byte count for people: "512 bytes", "64.0 KiB" below 1 MiB, "8.0 MiB" from there (a small
    limit is never shown as "0.0 MiB")."""
    if n < 2 ** 10:
        return plural(int(n), "byte")
    return f"{n / 2 ** 10:.1f} KiB" if n < 2 ** 20 else f"{n / 2 ** 20:.1f} MiB"


def too_large(what: str, size: int, limit: int) -> str:
    """"the upload is 9.0 MiB; the limit is 8.0 MiB": exact byte counts where rounding would show
    the two as equal (a body one byte past the limit)."""
    a, b = size_text(size), size_text(limit)
    if a == b:
        a, b = f"{size} bytes", f"{limit} bytes"
    return f"{what} is {a}; the limit is {b}"


def check_upload_limit(value, name: str = "max_upload_mb", unit: int = 2 ** 20) -> int:
    """The upload limit ``value`` (a number of ``unit`` bytes: MiB by default, 1 for bytes) in
    bytes, within :data:`UPLOAD_LIMIT_RANGE` (64 KiB to 1 GiB). ValueError naming ``name``
    otherwise (a bool, a string, NaN, a value outside the range)."""
    lo, hi = UPLOAD_LIMIT_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value * unit <= hi:
        span = f"[{lo / unit:g}, {hi / unit:g}]" if unit != 1 else f"[{lo}, {hi}]"
        raise ValueError(f"{name}: expected a number in {span} ({lo >> 10} KiB to {hi >> 30} GiB: every upload is "
                         f"held in memory, a few at once), got {value!r}")
    return int(value * unit)


def signature_format(data: bytes) -> str | None:
    """The name in :data:`FORMATS` of the supported format whose signature (magic bytes) ``data``
    starts with, or None: PNG ``\\x89PNG\\r\\n\\x1a\\n``, JPEG ``\\xff\\xd8\\xff``, GIF ``GIF87a`` /
    ``GIF89a``, BMP ``BM`` (and, from 18 bytes on, a known info-header size at byte 14), WebP
    ``RIFF`` + 4 bytes (its size) + ``WEBP``. Only the first bytes are looked at: a match says
    what the file claims to be, not that it decodes."""
    data = bytes(data[:18])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    fmt = next((fmt for fmt, sigs in _SIGNATURES.items() if data.startswith(sigs)), None)
    # "BM" alone is two letters of any text ("BMW ..."): past the file header, a BMP's info header
    # starts with its own size, one of a few
    if fmt == "BMP" and len(data) >= 18 and int.from_bytes(data[14:18], "little") not in _BMP_INFO_SIZES:
        return None
    return fmt


class UploadError(UserError):
    """An upload the app refuses; ``status`` is the HTTP status to answer with (4xx)."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After (with 503)


class BodyBudget:
    """The bytes of request bodies held in memory at once, at most ``limit`` (an int >= 1;
    ValueError otherwise): :meth:`take` reserves a chunk's bytes as it arrives and refuses with
    :class:`UploadError` 503 (``Retry-After``) past the limit; :meth:`give` returns them when the
    request is done. Thread-safe."""

    def __init__(self, limit: int):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: expected an int >= 1 (bytes), got {limit!r}")
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            if self.used + n > self.limit:
                raise UploadError(f"the server is busy reading other uploads ({size_text(self.limit)} at a "
                                  f"time): try again in a moment", 503, retry_after=1)
            self.used += n

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


class DecodeSlots:
    """At most ``slots`` decodes at once (default :data:`DECODE_SLOTS`, read when built); a
    decode waits up to ``wait_s`` seconds (default :data:`DECODE_WAIT_S`) for a slot. ValueError
    unless ``slots`` is an int >= 1 and ``wait_s`` a number >= 0."""

    def __init__(self, slots: int | None = None, wait_s: float | None = None):
        slots = DECODE_SLOTS if slots is None else slots
        wait_s = DECODE_WAIT_S if wait_s is None else wait_s
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"slots: expected an int >= 1, got {slots!r}")
        if isinstance(wait_s, bool) or not isinstance(wait_s, (int, float)) or not wait_s >= 0:
            raise ValueError(f"wait_s: expected a number of seconds >= 0, got {wait_s!r}")
        self.slots, self.wait_s = slots, float(wait_s)
        self._free = threading.BoundedSemaphore(slots)

    @contextmanager
    def hold(self):
        """One slot for the ``with`` block; :class:`UploadError` 503 when none frees within ``wait_s``."""
        if not self._free.acquire(timeout=self.wait_s):
            raise UploadError(f"the server is busy decoding other uploads ({self.slots} at a time; none finished "
                              f"within {self.wait_s:g} s): try again in a moment", 503, retry_after=1)
        try:
            yield
        finally:
            self._free.release()


def decode_image(data: bytes, resolution: int, channels: int, max_bytes: int, max_pixels: int,
                 notes=None) -> torch.Tensor:
    """The bytes of an uploaded image -> ``[1, channels, resolution, resolution]`` float32 with
    pixels in [-1, 1]. Raises :class:`UploadError` (see the module docstring). An image with
    transparent pixels is composited over black, a colour one read by a greyscale model
    converted, a small one enlarged (:func:`alae_fast.data.load_image`); ``notes``: a
    :class:`alae_fast.data.LoadNotes` that records them, or None."""
    from PIL import Image

    from ..data import load_image

    if not data:
        raise UploadError("the upload is empty: choose an image file (PNG, JPEG, WebP, BMP or GIF)")
    if len(data) > max_bytes:
        raise UploadError(too_large("the upload", len(data), max_bytes), 413)
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
            w, h = img.size
            fmt = img.format
    except Image.DecompressionBombError as e:
        raise UploadError(f"the image is too large to decode safely ({first_line(e)})", 413) from e
    except Exception as e:  # UnidentifiedImageError (text, PDFs, a header cut short), OSError
        fmt = signature_format(data)
        if fmt is None:
            raise UploadError(f"the upload is not an image in a supported format ({', '.join(FORMATS)})", 415) from e
        if not isinstance(e, Image.UnidentifiedImageError) and "unsupported" in str(e).lower():
            # a whole header of a kind Pillow does not decode ("Unsupported BMP compression (4)",
            # 64 bits a pixel): a valid file, of a variant outside what is supported
            raise UploadError(f"the upload is a {fmt} file of a kind that cannot be read ({first_line(e)})", 415) from e
        # a supported format's signature, then a header Pillow cannot read (a JPEG cut to 200
        # bytes): a truncated or corrupt file of that format, as one cut later (400, not 415)
        why = "" if isinstance(e, Image.UnidentifiedImageError) else f" ({first_line(e)})"
        raise UploadError(f"the image could not be decoded (truncated or corrupt {fmt}?): it starts as a {fmt} "
                          f"file but could not be opened{why}") from e
    if w * h > max_pixels:
        raise UploadError(f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                          f"{max_pixels / 1e6:.1f} megapixels", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            arr = load_image(io.BytesIO(data), resolution, channels, notes=notes)
    except Exception as e:  # OSError "image file is truncated", SyntaxError, broken PNG chunks ...
        raise UploadError(f"the image could not be decoded (truncated or corrupt {fmt}?): {first_line(e)}") from e
    return torch.from_numpy(np.array(arr, dtype=np.float32)).unsqueeze(0) / 127.5 - 1.0
