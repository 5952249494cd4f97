"""A folder of PNG/JPEG images of any size, prepared for one square resolution.

Each image is prepared once, the same way every time:
1. EXIF orientation applied (photos taken sideways come out upright);
2. converted to RGB (``channels=3``) or greyscale (``channels=1``); greyscale of more than
   8 bits is scaled to 8 bits (:func:`load_image` states the rule: 16-bit images by 255/65535,
   32-bit integer ones likewise when a value exceeds 255, float ones read as 0 black to 1
   white, values outside those ranges refused naming the file); an image with transparent pixels (alpha < 255: RGBA, LA, or a palette or
   colour key with transparency) is **composited over black** first (``TRANSPARENT_BACKGROUND``),
   so what a transparent pixel hides never reaches the model; alpha that is 255 everywhere
   changes nothing;
3. **center-cropped** to a square of side ``min(width, height)``;
4. **resized** to ``resolution`` x ``resolution``: a square of ``2^k`` times the resolution
   is averaged over its ``2^k x 2^k`` blocks (what the official ALAE code does to bring its
   1024-px images to a 256-px model, repeated 2x2 average pooling; here rounded once to the
   nearest grey level); any other size with Pillow's Lanczos filter (which low-passes when
   shrinking, so no aliasing; also used when enlarging small images);
5. stored as uint8 and returned as float32 ``x / 127.5 - 1`` in ``[-1, 1]``.

Nothing of this is silent where it loses or invents information: images with transparent
pixels (composited), colour images read as greyscale (``channels=1`` and a colour image whose
channels differ somewhere) and images smaller than the resolution (enlarged) are collected in
a :class:`LoadNotes`, and every loader says them: the dataset warns once per kind, naming its
files, and names each file once per folder, resolution and channels in a process (a command
that opens several splits of one folder names each split's files when it first opens that
split, training's then the held-out ones, and says nothing for a split whose files were all
named before, as the "all" split after the other two; each dataset's ``notes`` lists its own
files), ``alae_fast.inference.load_image_files`` warns, the web app answers a notice.

Lower resolutions for progressive growing are made from this full-resolution tensor by
2x2 average pooling: :func:`alae_fast.data.lower_resolution`. Images of mixed sizes and
aspect ratios are all handled by steps 3-4.

Held-out split: ``split="train"`` (default) and ``split="test"`` divide the N files found
into disjoint parts (unreadable files are then skipped within each); the test part is
``round(HOLDOUT_FRACTION * N)`` files (10%, at least one when N >= 2; none when N = 1, where
``split="test"`` raises ``ValueError``). Which files are
held out depends only on their paths relative to the folder (the files with the smallest MD5
of that path), not on the order of listing, so adding a file moves at most a few others.
``split="all"`` takes every file.

Channels: :func:`folder_channels` says whether a folder holds colour images (3) or only
greyscale ones (1), so a trainer can match its model to the data: greyscale modes from the
files' headers, an image saved in colour from its pixels (greyscale when R, G and B are equal
everywhere; at most ``PIXEL_CHECK_BUDGET`` pixels decoded); :func:`read_folder_channels` also
names the files that decided it.

Bad data: a file that cannot be decoded (truncated, not really an image, ...), or whose
values :func:`load_image` refuses (a float image outside [0, 1]), is skipped;
a single warning names how many were skipped, of which split, and the first few (each file
is named once per process: a split opened again, or the "all" split after the others, names
only files not named before, and says nothing when there are none), and
``dataset.skipped`` lists ``(path, reason)`` for each. A missing path raises ``FileNotFoundError``, a folder
with no PNG/JPEG file (or only unreadable ones) ``ValueError``, both at construction, so a
trainer fails before its first step.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._words import plural
from .base import ImageDataset, _gather

__all__ = ["IMAGE_EXTENSIONS", "HOLDOUT_FRACTION", "PIXEL_CHECK_BUDGET", "TRANSPARENT_BACKGROUND",
           "ImageFolderDataset", "LoadNotes", "DecodeWarning", "FolderChannels",
           "find_image_files", "folder_channels", "read_folder_channels", "is_run_folder", "load_image", "split_files"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# Image formats a folder scan leaves out, with a warning (the CLI's image commands and serve read
# some of them one file at a time).
_OTHER_IMAGE_EXTENSIONS = (".webp", ".bmp", ".gif", ".tif", ".tiff")
HOLDOUT_FRACTION = 0.1
# Black, i.e. -1 in the model's pixels: compositing over it is multiplying by alpha (what a
# premultiplied image stores), the same for any hidden colour under a transparent pixel.
TRANSPARENT_BACKGROUND = "black"
_SPLITS = ("train", "test", "all")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# Greyscale modes of more than 8 bits, which Pillow's convert("L") clips instead of scaling
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_WIDE_MODES = _SIXTEEN_BIT_MODES + ("I", "F")
_SPLIT_NAMES = {"train": "training split", "test": "held-out split", "all": "all files"}
# (folder, skipped file) already named: a command opens a folder's splits more than once
# (training, then evaluation; evaluate's training, held-out and all files), and a file needs
# naming once.
_warned_skips: set[tuple[str, str]] = set()
# (folder, kind, resolution, channels, file) already named: what loading did to a file (colour to
# greyscale, ...) is said once a process, not again for each split that holds it (the "all"
# split after the others); a later split's files not yet named are named then (training opens
# the training split, then the held-out one that the reported MSE is measured on).
_warned_notes: set[tuple[str, str, int, int, str]] = set()
# (folder, run folders skipped in it) already warned about: every command scans its data more than once.
_warned_runs: set[tuple[str, tuple[str, ...]]] = set()
_warned_formats: set[str] = set()  # folders whose other-format images were named once


class DecodeWarning(RuntimeWarning):
    """A warning about an image met while a lazily loading dataset decodes it for a batch (an
    unreadable file, the first of a kind of note): under torchrun each rank decodes its own
    slice, so each rank says its own (the warnings every rank meets alike, from the folder's
    scan, are said by rank 0 alone: :func:`alae_fast.training.distributed.warnings_said_once`)."""


@dataclass
class LoadNotes:
    """What :func:`load_image` did to images beyond cropping and resizing them down, for the
    caller to say: ``transparent`` (composited over ``TRANSPARENT_BACKGROUND``), ``to_grey``
    (colour images read as greyscale), ``enlarged`` (smaller than the resolution) and
    ``to_colour`` (greyscale images read as colour), each a list of the images' paths (or names)
    in the order loaded. ``to_colour`` is said of a folder only (``FOLDER_KINDS``): a grey file
    among colour ones is worth a word, while a grey image given alone to a colour model (a
    command's IMAGE, an upload) is an ordinary request."""

    transparent: list = field(default_factory=list)
    to_grey: list = field(default_factory=list)
    enlarged: list = field(default_factory=list)
    to_colour: list = field(default_factory=list)

    KINDS = ("transparent", "to_grey", "enlarged")
    FOLDER_KINDS = KINDS + ("to_colour",)

    def __bool__(self) -> bool:
        return any(getattr(self, k) for k in self.KINDS)

    def message(self, kind: str, resolution: int, total: int | None = None, names=None) -> str:
        """The one sentence every loader says for ``kind`` (one of ``KINDS``): how many of
        ``total`` images, what was done and why it matters, and the first five ``names``
        (default: the paths' file names)."""
        items = getattr(self, kind)
        names = [Path(str(p)).name for p in items] if names is None else list(names)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        of = f" of {total}" if total is not None else ""
        one = len(items) == 1
        were, they = ("was", "it holds") if one else ("were", "they hold")
        what = {"transparent": f"{'has' if one else 'have'} transparent pixels and {were} composited over "
                               f"{TRANSPARENT_BACKGROUND} (the model has no alpha channel)",
                "to_grey": f"{'is a colour image' if one else 'are colour images'} and {were} converted to greyscale "
                           f"(the model has 1 channel; colour differences that keep the brightness are lost)",
                "enlarged": f"{'is' if one else 'are'} smaller than {resolution}x{resolution} and {were} enlarged to "
                            f"it (Lanczos): {they} less detail than the model's resolution",
                "to_colour": f"{'is' if one else 'are'} greyscale and {were} converted to colour (the model has 3 "
                             f"channels; {'it repeats its' if one else 'each repeats its'} grey level in R, G and B)"
                }[kind]
        return f"{plural(len(items), 'image')}{of} {what}: {shown}"

    def messages(self, resolution: int, total: int | None = None) -> list[str]:
        """:meth:`message` for every kind that has images."""
        return [self.message(k, resolution, total) for k in self.KINDS if getattr(self, k)]


def split_files(files: list[Path], root: Path, split: str, fraction: float = HOLDOUT_FRACTION) -> list[Path]:
    """The files of ``split`` ("train", "test" or "all"; see the module docstring), in their given order.

    Raises ValueError for another split name, a fraction outside [0, 1), and for
    ``split="test"`` when no file is held out.
    """
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {_SPLITS}, got {split!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction: expected a number in [0, 1), got {fraction!r}")
    if split == "all":
        return list(files)
    n_test = int(round(fraction * len(files)))
    if len(files) >= 2 and fraction > 0:
        n_test = min(max(n_test, 1), len(files) - 1)
    key = {f: hashlib.md5(f.relative_to(root).as_posix().encode()).hexdigest() for f in files}
    held = set(sorted(files, key=lambda f: (key[f], str(f)))[:n_test])
    if split == "test" and not held:
        raise ValueError(f"data folder {str(root)!r}: {plural(len(files), 'image is', 'images are')} too few to "
                         f"hold any out (held-out fraction {fraction:g})")
    return [f for f in files if (f in held) == (split == "test")]


# Pixels folder_channels decodes, at most, to learn whether images saved in a colour mode hold
# colour: about a second of decoding (a megapixel takes 10-20 ms), so that a folder of RGB-saved
# grey scans does not decode every file at start-up. Past it, such files count as colour by
# their mode, and FolderChannels.why() says so. Each file is charged _PIXELS_PER_FILE besides
# its own pixels: opening and checking a small file costs ~0.2-0.4 ms whatever its size, so
# that 60000 RGB-saved 28x28 digits would otherwise take a minute within the budget.
PIXEL_CHECK_BUDGET = 1 << 26
_PIXELS_PER_FILE = 1 << 14
# Colour images folder_channels names before it stops looking: enough to show the user which
# files made the folder colour without reading a large colour folder whole.
_COLOUR_NAMED = 5


def _shown(paths, limit: int = 5) -> str:
    names = [Path(str(p)).name for p in paths]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class FolderChannels:
    """What :func:`read_folder_channels` found: ``channels`` (3 or 1), the ``colour`` images
    (up to ``_COLOUR_NAMED``, where it stopped looking), ``grey`` (how many greyscale images),
    ``rgb_grey`` (images saved in a colour mode whose R, G and B are equal everywhere: counted
    greyscale), ``unread`` (images of a colour mode counted colour without reading their pixels,
    past ``PIXEL_CHECK_BUDGET``; also in ``colour``), ``looked_at`` (files opened, unreadable
    ones included) and ``total`` (the folder's image files)."""

    channels: int
    colour: list = field(default_factory=list)
    grey: int = 0
    rgb_grey: list = field(default_factory=list)
    unread: list = field(default_factory=list)
    looked_at: int = 0
    total: int = 0

    def why(self) -> str:
        """Which files decided ``channels``, for a line beside it: "" for a folder whose images
        were all of one kind by their mode (nothing to explain), else "colour because N images of
        M are: (a few names)", the greyscale ones beside them, and those saved in colour counted
        greyscale or counted colour unread, each named."""
        if (not self.colour or not self.grey) and not self.rgb_grey:
            return ""
        read = len(self.colour) + self.grey
        of = f"{read}" if self.looked_at == self.total else f"the first {read} read (of {self.total} files)"
        rgb = len(self.rgb_grey)
        saved = (f"{rgb} of them saved in colour with R, G and B equal everywhere: {_shown(self.rgb_grey)}"
                 if rgb else "")
        if self.colour:
            n = len(self.colour)
            text = f"colour because {plural(n, 'image')} of {of} {'is' if n == 1 else 'are'}: {_shown(self.colour)}"
            if self.grey:
                text += (f" (the other {self.grey} {'is' if self.grey == 1 else 'are'} greyscale"
                         f"{', ' + saved if saved else ''})")
        elif self.looked_at == self.total:
            text = f"greyscale: all {read} images are, {saved}"
        else:  # max_files
            text = f"greyscale: the first {read} images read (of {self.total} files) all are, {saved}"
        if self.unread:
            n = len(self.unread)
            text += (f"; {plural(n, 'image')} saved in colour {'was' if n == 1 else 'were'} counted colour by "
                     f"{'its' if n == 1 else 'their'} mode, pixels unread (the start-up check decodes at most "
                     f"{PIXEL_CHECK_BUDGET / 2**20:g} megapixels, PIXEL_CHECK_BUDGET, a file counting "
                     f"{_PIXELS_PER_FILE} besides its own): {_shown(self.unread)}")
        return text


def _holds_colour(img) -> bool:
    """Whether an opened image of a colour mode (RGB, RGBA, P, CMYK, ...) holds colour as
    :func:`load_image` reads it: its channels differ somewhere once transparent pixels are
    composited over ``TRANSPARENT_BACKGROUND`` (what a fully transparent pixel hides is no colour
    the model sees)."""
    from PIL import Image

    if _has_alpha(img):
        rgba = img.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, TRANSPARENT_BACKGROUND), rgba)
        else:
            img = rgba
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


def read_folder_channels(path: str | os.PathLike, max_files: int | None = None) -> FolderChannels:
    """Whether the folder ``path`` holds colour images, and which (:class:`FolderChannels`;
    ``channels`` as :func:`folder_channels` says it, ``why()`` naming the files that decided it).

    Every file is looked at unless ``max_files`` (the first ones, sorted) is given, so that a few
    colour photos after many greyscale ones still make the folder colour; it stops at the
    ``_COLOUR_NAMED``-th colour image. A file of a greyscale mode (L, LA, 1, I, I;16, F) is
    greyscale from its header alone; one of a colour mode (RGB, RGBA, P, CMYK, YCbCr...) is
    decoded, and is greyscale when its R, G and B are equal everywhere (a grey scan or digit
    saved as RGB: :func:`load_image` loses nothing reading it as greyscale), until
    ``PIXEL_CHECK_BUDGET`` pixels have been decoded (each file charged ``_PIXELS_PER_FILE``
    more); past it, colour by its mode. Unreadable files are skipped; ValueError when none of
    the files looked at can be read; other errors as :func:`find_image_files`.
    """
    from PIL import Image

    files = find_image_files(path)
    total = len(files)
    if max_files is not None:
        files = files[:max_files]
    found = FolderChannels(1, total=total)
    decoded, first_error = 0, None
    for f in files:
        found.looked_at += 1
        try:
            with Image.open(f) as img:
                if img.mode in _GREY_MODES:
                    found.grey += 1
                    continue
                size = img.width * img.height + _PIXELS_PER_FILE
                if decoded + size > PIXEL_CHECK_BUDGET:
                    found.unread.append(f)
                    found.colour.append(f)
                else:
                    decoded += size
                    if _holds_colour(img):
                        found.colour.append(f)
                    else:
                        found.grey += 1
                        found.rgb_grey.append(f)
        except Exception as e:  # an unreadable file says nothing about the others
            first_error = first_error or f"{f.name}: {e}"
            continue
        if len(found.colour) >= _COLOUR_NAMED:
            break
    if not found.colour and not found.grey:
        raise ValueError(f"data folder {str(path)!r}: none of its {len(files)} image files could be read "
                         f"(first: {first_error})")
    found.channels = 3 if found.colour else 1
    return found


def folder_channels(path: str | os.PathLike, max_files: int | None = None) -> int:
    """3 if any image under ``path`` holds colour, else 1: ``read_folder_channels(path,
    max_files).channels`` (see there: greyscale modes from the header, colour modes from their
    pixels, within a budget)."""
    return read_folder_channels(path, max_files).channels


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an alae-fast run folder: it holds a ``config.json`` that is a JSON
    object with the ``setup`` and ``schedule`` a run records, and a ``checkpoints/`` folder or
    a ``log.jsonl`` (a run writes its config.json and log.jsonl before its first picture)."""
    d = Path(path)
    config = d / "config.json"
    if not config.is_file() or not ((d / "checkpoints").is_dir() or (d / "log.jsonl").is_file()):
        return False
    try:
        record = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "setup" in record and "schedule" in record


def _outside_run_folders(root: Path, files: list[Path]) -> tuple[list[Path], dict[Path, int]]:
    """``files`` (under ``root``) less those inside a run folder (``root`` or one below it), in
    their order, and how many each skipped run folder (the outermost, relative to ``root``) held."""
    verdict: dict[Path, bool] = {}
    kept: list[Path] = []
    skipped: dict[Path, int] = {}
    for f in files:
        rel = f.relative_to(root)
        inside = None
        for part in reversed(rel.parents):  # outermost first: root itself is Path(".")
            if part not in verdict:
                verdict[part] = is_run_folder(root / part)
            if verdict[part]:
                inside = part
                break
        if inside is None:
            kept.append(f)
        else:
            skipped[inside] = skipped.get(inside, 0) + 1
    return kept, skipped


def _trained_on(run: Path) -> str:
    """", trained on 'PATH'" from a run folder's config.json, or "" when it names no folder."""
    try:
        spec = json.loads((run / "config.json").read_text(encoding="utf-8")).get("data_spec") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    return f", trained on {spec['path']!r}" if isinstance(spec, dict) and spec.get("path") else ""


def find_image_files(path: str | os.PathLike, reader: str = "the image-folder dataset") -> list[Path]:
    """All files under ``path`` (recursively) ending in .png/.jpg/.jpeg (any case), sorted (a
    warning names, once per folder and process, the WebP/BMP/GIF/TIFF files it leaves out,
    saying "``reader`` reads .png, .jpg, .jpeg only": ``reader`` is what reads the folder, e.g.
    ``"evaluate --data"``; default ``"the image-folder dataset"``), except those inside an
    alae-fast run folder (:func:`is_run_folder`; ``path`` or one below it: a run's own pictures
    are not data), which a warning names once per process.

    Raises ``FileNotFoundError`` if ``path`` does not exist, ``NotADirectoryError`` if it is
    not a folder, ``ValueError`` if it is a run folder itself or holds no such file.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data path {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"data path {str(root)!r} is not a folder (expected a folder of PNG/JPEG images)")
    if is_run_folder(root):
        raise ValueError(f"data folder {str(root)!r} is an alae-fast run folder{_trained_on(root)}: a run's own "
                         f"pictures are not data; give the folder of images to train on (a run is read with --ckpt)")
    files, others = [], []
    for p in root.rglob("*"):
        suffix = p.suffix.lower()
        if suffix in IMAGE_EXTENSIONS and p.is_file():
            files.append(p)
        elif suffix in _OTHER_IMAGE_EXTENSIONS and p.is_file():
            others.append(p)
    files.sort()
    files, runs = _outside_run_folders(root, files)
    if others and str(root.resolve()) not in _warned_formats:
        # Pillow could read them, but the split and a run's record are over PNG/JPEG files: say
        # what is left out rather than pass over it in silence
        _warned_formats.add(str(root.resolve()))
        kinds = sorted({p.suffix.lower() for p in others})
        shown = ", ".join(p.relative_to(root).as_posix() for p in sorted(others)[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        warnings.warn(f"{root}: left out {plural(len(others), 'image file')} in {', '.join(kinds)}: {reader} reads "
                      f"{', '.join(IMAGE_EXTENSIONS)} only (convert them to PNG to use them): {shown}{more}",
                      RuntimeWarning, stacklevel=2)
    key = (str(root.resolve()), tuple(sorted(str(r) for r in runs)))
    if runs and key not in _warned_runs:
        _warned_runs.add(key)
        shown = ", ".join(f"{r.as_posix()} ({n})" for r, n in list(runs.items())[:5])
        more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
        warnings.warn(f"{root}: skipped {plural(sum(runs.values()), 'image file')} of "
                      f"{plural(len(runs), 'alae-fast run folder')} "
                      f"(a run's own pictures are not data): {shown}{more}", RuntimeWarning, stacklevel=2)
    if not files:
        beside = ", outside alae-fast run folders" if runs else ""
        raise ValueError(f"data folder {str(root)!r} contains no PNG or JPEG files{beside} "
                         f"(searched recursively for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def _source_name(path) -> str:
    """The file name of ``path`` for a message; "the image" for bytes read from memory (an upload)."""
    return Path(path).name if isinstance(path, (str, os.PathLike)) else "the image"


class PixelRangeError(ValueError):
    """A decoded image whose pixel values :func:`load_image`'s rule refuses (a float image
    outside [0, 1], ...): the file is an image, its values are what is wrong. ``str(e)`` is
    ``"NAME: REASON"``; ``e.file`` is the file's name and ``e.reason`` the rest (its values, the
    range expected and what to do), for a caller that names the file its own way."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = file, reason

    def __reduce__(self):  # pickled (a worker process's error) and rebuilt with both parts
        return type(self), (self.file, self.reason)


def _wide_to_eight_bits(img, path):
    """A greyscale image of mode 'I;16*', 'I' or 'F' as an 8-bit 'L' image, by the rule of
    :func:`load_image`; ValueError naming the file and its values outside that rule's range.

    A transparent grey level (``info["transparency"]``: a 16-bit PNG's tRNS chunk) is kept as
    alpha: the image comes back as 'LA', alpha 0 where a pixel holds that level (in the wide
    units, before scaling) and 255 elsewhere, for :func:`load_image` to composite over
    ``TRANSPARENT_BACKGROUND`` and say so like any other transparent pixel (the new 'L' image
    would otherwise have dropped it and shown the level the key hides)."""
    from numbers import Real

    from PIL import Image

    arr = np.asarray(img, dtype=np.float64)
    name = _source_name(path)
    if img.mode == "F":
        if not np.isfinite(arr).all():
            raise PixelRangeError(name, "a float image (mode F) holding NaN or infinity; its values must be finite "
                                        "numbers in [0, 1] (read as 0 black to 1 white)")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 1:
            # a float image has no agreed full scale (Pillow takes 255, most tools 1): reading
            # one of another range by a guess would darken or wash it out without a word
            raise PixelRangeError(name, f"float pixel values in [{lo:.6g}, {hi:.6g}] (mode F); they must lie in "
                                        f"[0, 1] (read as 0 black to 1 white): scale them to [0, 1], or save it "
                                        f"with 8- or 16-bit integers")
        peak = 1.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if img.mode == "I" and (lo < 0 or hi > 65535):
            raise PixelRangeError(name, f"32-bit integer pixel values (mode I) in [{lo:.0f}, {hi:.0f}]; they must "
                                        f"lie in [0, 65535] (16-bit grey levels, or 8-bit when none exceeds 255): "
                                        f"save it with 8- or 16-bit integers")
        # mode I holds 16-bit grey levels (a 16-bit PNG under older Pillow) when any value
        # exceeds 255, else 8-bit ones
        peak = 65535.0 if img.mode in _SIXTEEN_BIT_MODES or hi > 255 else 255.0
    grey = Image.fromarray(np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    key = img.info.get("transparency")
    if isinstance(key, Real) and not isinstance(key, bool):
        clear = arr == float(key)
        if clear.any():
            return Image.merge("LA", (grey, Image.fromarray(np.where(clear, 0, 255).astype(np.uint8), "L")))
    return grey


# Pillow reads a 2- or 4-bit greyscale PNG as 'L' with its levels scaled to 0-255 (x85, x17),
# but leaves its tRNS grey level in the file's units, which then matches no pixel (or the wrong
# ones): the factor to bring the key to the pixels' scale, by the decoder's raw mode
_LOW_BIT_GREY_SCALE = {"L;2": 85, "L;4": 17}


def _low_bit_grey_scale(img) -> int:
    """For an opened, not yet loaded, 2- or 4-bit greyscale PNG with a transparent grey level
    still in the file's units (below 2**bits): the factor that scales it as Pillow scaled the
    pixels; else 1."""
    key = img.info.get("transparency")
    if img.format != "PNG" or img.mode != "L" or not isinstance(key, int) or not img.tile:
        return 1
    args = img.tile[0][3]
    raw = args[0] if isinstance(args, tuple) and args else args
    scale = _LOW_BIT_GREY_SCALE.get(raw, 1) if isinstance(raw, str) else 1
    return scale if 0 < key <= 255 // scale else 1


def _has_alpha(img) -> bool:
    return img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info


def load_image(path: str | os.PathLike, resolution: int, channels: int = 3,
               notes: LoadNotes | None = None) -> np.ndarray:
    """Decode and prepare one image (steps 1-4 of the module docstring).

    ``path``: a file path, or a binary file object (an upload's bytes); ``resolution``: the
    output side, an int >= 1; ``channels``: 3 (RGB, default) or 1 (greyscale).

    Greyscale images of more than 8 bits are scaled to 8-bit grey levels (rounded), never
    clipped: 16-bit ones (modes I;16*) by 255/65535; 32-bit integer ones (mode I) likewise when
    any value exceeds 255, else taken as 0-255 levels, and refused when a value lies outside
    [0, 65535]; 32-bit float ones (mode F, e.g. a float TIFF) read with 0 as black and 1 as
    white, and refused when a value lies outside [0, 1] or is NaN or infinite (a float image
    has no agreed full scale: Pillow's convert takes 255, most tools 1). A transparent grey level
    (a PNG's tRNS chunk: ``info["transparency"]``) counts in the file's own units, 16-bit ones
    and 2- or 4-bit ones alike (Pillow leaves the latter's key unscaled): pixels of that level
    are transparent, composited over black and noted like any other.

    Returns a uint8 array ``[channels, resolution, resolution]``. Raises ``PixelRangeError`` (a
    ``ValueError``) naming
    the file and its value range for a mode I or F image outside the ranges above, and
    whatever Pillow raises for an unreadable file (``OSError``, ``SyntaxError``,
    ``ValueError``, ...). ``notes``: if given, ``path`` is appended to its ``transparent``,
    ``to_grey``, ``enlarged`` or ``to_colour`` list when the image was composited, converted from
    colour, enlarged or converted from greyscale to colour, so the caller can say so (only for
    an image that was prepared).
    """
    from PIL import Image, ImageOps

    composited = to_grey = False
    with Image.open(path) as img:
        key_scale = _low_bit_grey_scale(img)  # before load(), which drops the decoder's raw mode
        img.load()  # decode now: a truncated file fails here, not later
        if key_scale != 1:
            img.info["transparency"] *= key_scale
        to_colour = channels == 3 and img.mode in _GREY_MODES
        img = ImageOps.exif_transpose(img)
        if img.mode in _WIDE_MODES:
            # Pillow's convert("L") clips these instead of scaling them (a [0, 1] float image
            # came out black)
            img = _wide_to_eight_bits(img, path)
        if _has_alpha(img):
            # convert("RGB") would drop alpha and keep whatever colour transparent pixels hide
            rgba = img.convert("RGBA")
            if rgba.getchannel("A").getextrema()[0] < 255:
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, TRANSPARENT_BACKGROUND), rgba)
                composited = True
            else:
                img = rgba
        if channels == 1 and img.mode not in _GREY_MODES:
            rgb = np.asarray(img.convert("RGB"))
            to_grey = bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())
        img = img.convert("RGB" if channels == 3 else "L")
        w, h = img.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        k = side // resolution
        if side == k * resolution and k > 1 and k & (k - 1) == 0:
            img = img.reduce(k)  # the exact block mean, rounded half up
        elif side != resolution:
            img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
        arr = np.asarray(img, dtype=np.uint8)
    if notes is not None:  # only for an image that was prepared
        for kind, happened in (("transparent", composited), ("to_grey", to_grey), ("enlarged", side < resolution),
                               ("to_colour", to_colour)):
            if happened:
                getattr(notes, kind).append(path)
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return np.ascontiguousarray(arr)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _short(text: str, limit: int = 200) -> str:
    """The first line of ``text`` (a decoder's error), for a list of skipped files: whole when
    it fits in ``limit`` characters, else cut after its last sentence ("; " or ". ") that ends
    past half the limit, or failing one at its last word, marked "..."."""
    line = text.strip().splitlines()[0] if text.strip() else text
    if len(line) <= limit:
        return line
    head = line[:limit - 4]
    cut = max(head.rfind("; "), head.rfind(". "))
    if cut < limit // 2:
        cut = head.rfind(" ")
    return (head[:cut] if cut > 0 else head).rstrip(";., ") + " ..."


def _skip_reason(path: Path, exc: BaseException) -> str:
    """Why ``path`` was skipped, for the folder's warning: the loading rule's refusal
    (:class:`PixelRangeError`) whole, without the file's name again (its values, the range
    expected and what to do are what the user acts on); a decoder's error by :func:`_short`."""
    if isinstance(exc, PixelRangeError):
        return f"{type(exc).__name__}: {exc.reason if exc.file == path.name else exc}"
    return _short(_describe(exc))


class ImageFolderDataset(ImageDataset):
    """PNG/JPEG images under a folder as ``(image [C, R, R] float32 in [-1, 1], label -1)``.

    Args:
        path: folder searched recursively for .png/.jpg/.jpeg files (:func:`find_image_files`).
        resolution: output side length in pixels (any int >= 1; the presets use powers of 2).
        channels: 3 (RGB, default) or 1 (greyscale).
        split: "all" (default), "train" or "test" (the held-out files); see the module
            docstring. ``holdout``: the held-out fraction (default ``HOLDOUT_FRACTION``).
        flip: if True, ``len`` doubles and items ``N..2N-1`` are the mirrored images
            (horizontal flip chosen by the sampler's index, so resume stays exact).
        preload: ``True`` decodes every image at construction and keeps them in memory as
            uint8 (``N * C * R * R`` bytes); ``False`` checks each file's header at
            construction and decodes on access; ``"auto"`` (default) preloads when that
            takes at most ``max_preload_bytes`` (default 1 GiB).
        reader: what reads the folder, as the scan's warning of the files it leaves out for
            their format names it (:func:`find_image_files`; default "the image-folder dataset").

    ``dataset.found`` lists every image file the folder's scan found (all splits, unreadable
    ones included), from which the split was chosen.

    Images with transparent pixels are composited over black, colour images read as greyscale
    and small ones enlarged, with one warning per kind naming them, each file named once per
    folder in a process (a later split names only its files not named before; see the module
    docstring);
    ``dataset.notes`` (a :class:`LoadNotes`) lists them (in lazy mode, those decoded so far).
    Unreadable files are skipped (see the module docstring). In lazy mode a file whose
    header looked fine but whose decode fails later is replaced by the next readable image
    (in file order), with a warning, so a training step never dies on one bad file.
    """

    def __init__(self, path: str | os.PathLike, resolution: int, channels: int = 3, flip: bool = False,
                 preload: bool | str = "auto", max_preload_bytes: int = 1 << 30, split: str = "all",
                 holdout: float = HOLDOUT_FRACTION, reader: str = "the image-folder dataset"):
        if not isinstance(resolution, int) or resolution < 1:
            raise ValueError(f"resolution: expected a positive int, got {resolution!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels: expected 1 or 3, got {channels!r}")
        if preload not in (True, False, "auto"):
            raise ValueError(f"preload: expected True, False or 'auto', got {preload!r}")
        self.root = Path(path)
        found = find_image_files(self.root, reader=reader)
        self.found = found
        files = split_files(found, self.root, split, holdout)
        self.split = split
        self.resolution = resolution
        self.channels = channels
        self.flip = bool(flip)
        if preload == "auto":
            preload = len(files) * channels * resolution * resolution <= max_preload_bytes
        self.preloaded = bool(preload)
        self.skipped: list[tuple[Path, str]] = []
        self.notes = LoadNotes()
        self._noted: set[tuple[str, Path]] = set()  # (kind, file) in self.notes: lazy decodes test it per image
        self._said: set[str] = set()  # kinds this dataset warned of (lazy: the first new file of each)
        self.images: torch.Tensor | None = None

        good: list[Path] = []
        arrays: list[np.ndarray] = []
        brief: dict[Path, str] = {}  # each skipped file's reason as the warning says it
        for f in files:
            try:
                if self.preloaded:
                    arrays.append(load_image(f, resolution, channels, notes=self.notes))
                else:
                    self._verify(f)
                good.append(f)
            except Exception as e:  # any decode failure means: skip this file
                self.skipped.append((f, _describe(e)))
                brief[f] = _skip_reason(f, e)
        folder = str(self.root.resolve())
        unsaid = [(p, why) for p, why in self.skipped if (folder, str(p)) not in _warned_skips]
        if unsaid:
            _warned_skips.update((folder, str(p)) for p, _ in unsaid)
            # each with its reason: "unreadable" covers Pillow's decompression-bomb limit too
            names = ", ".join(f"{p.name} ({brief[p]})" for p, _ in unsaid[:5])
            more = f" and {len(unsaid) - 5} more" if len(unsaid) > 5 else ""
            before = len(self.skipped) - len(unsaid)
            named = f" (and {before} named before)" if before else ""
            warnings.warn(f"{self.root}: skipped {plural(len(self.skipped), 'unreadable image file')} of {len(files)} "
                          f"({_SPLIT_NAMES[split]}): {names}{more}{named}", RuntimeWarning, stacklevel=2)
        if not good:
            part = "" if split == "all" else f" ({_SPLIT_NAMES[split]}; the folder holds {len(found)})"
            raise ValueError(f"data folder {str(self.root)!r}: none of its {len(files)} image files{part} could be read "
                             f"(first error: {self.skipped[0][1]})")
        self.files = good
        self.num_images = len(good)
        for kind in LoadNotes.FOLDER_KINDS:
            self._warn_notes(kind)
        self.labels = torch.full((self.num_images,), -1, dtype=torch.int64)
        if self.preloaded:
            self.images = torch.from_numpy(np.stack(arrays))

    def _warn_notes(self, kind: str, category: type[Warning] = RuntimeWarning, fresh=None) -> None:
        """Warn of ``kind`` naming this dataset's files of it that no dataset of the folder (at
        this resolution and channels) named before in this process; nothing when there are none.
        The count is of all this split's files of the kind, "(and K named before)" saying how
        many of them an earlier split named. ``fresh``: the files of ``kind`` that may not have
        been named yet (default: all of them; a lazy decode gives the file just noted, every
        earlier one of the kind having been found named, so it does not test them all again)."""
        items = getattr(self.notes, kind)
        key = (str(self.root.resolve()), kind, self.resolution, self.channels)
        new = [p for p in (items if fresh is None else fresh) if key + (str(p),) not in _warned_notes]
        if not new:
            return
        _warned_notes.update(key + (str(p),) for p in new)
        self._said.add(kind)
        note = self.notes.message(kind, self.resolution, self.num_images if self.preloaded else None,
                                  names=[Path(str(p)).name for p in new])
        before = len(items) - len(new)
        if before:
            note += f" (and {before} named before)"
        if not self.preloaded:
            note += " (lazy loading: more may follow as they are decoded)"
        warnings.warn(f"{self.root} ({_SPLIT_NAMES[self.split]}): {note}", category, stacklevel=3)

    @property
    def num_skipped(self) -> int:
        """How many files were skipped as unreadable (so far, in this process)."""
        return len(self.skipped)

    @staticmethod
    def _verify(path: Path) -> None:
        from PIL import Image

        with Image.open(path) as img:
            img.verify()  # header and (for PNG) chunk checksums, without a full decode

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.images is not None:
            return self.images[index].to(torch.float32) / 127.5 - 1.0, self.labels[index]
        for step in range(self.num_images):
            f = self.files[(index + step) % self.num_images]
            try:
                found = LoadNotes()
                arr = load_image(f, self.resolution, self.channels, notes=found)
                for kind in LoadNotes.FOLDER_KINDS:
                    if getattr(found, kind) and (kind, f) not in self._noted:  # decoded again: said already
                        self._noted.add((kind, f))
                        getattr(self.notes, kind).append(f)
                        if kind not in self._said:  # the first not named before; the rest are listed in .notes
                            self._warn_notes(kind, DecodeWarning, fresh=[f])
            except Exception as e:
                if all(p != f for p, _ in self.skipped):
                    self.skipped.append((f, _describe(e)))
                    warnings.warn(f"{f}: unreadable ({_describe(e)}); using the next image instead",
                                  DecodeWarning, stacklevel=2)
                continue
            return torch.from_numpy(arr).to(torch.float32) / 127.5 - 1.0, self.labels[index]
        raise RuntimeError(f"data folder {str(self.root)!r}: no image could be decoded")

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` stacked: ``([B, C, R, R] float32, [B] int64)``."""
        if self.images is not None:
            return _gather(self.images, self.labels, self.flip, indices)
        return super().get_batch(indices)

    def __repr__(self) -> str:
        return (f"ImageFolderDataset({str(self.root)!r}, split={self.split!r}, n={self.num_images}, "
                f"skipped={self.num_skipped}, "
                f"resolution={self.resolution}, channels={self.channels}, flip={self.flip}, "
                f"preloaded={self.preloaded})")
