"""PNG pictures of images, drawn with Pillow: grids, labelled tables, single images.

- :func:`save_image_grid` tiles a batch of images in ``[-1, 1]`` into one PNG;
- :func:`save_pairs_grid` shows originals beside their reconstructions, each column titled (and
  each row, one pair a row, when the pairs have names);
- :func:`save_labelled_grid` draws a table of images with row and column titles;
- :func:`save_image` / :func:`png_bytes` write one image (or a batch) at its own pixels;
- :func:`grid_size`, :func:`pairs_grid_size` and :func:`labelled_grid_size` give the size of the
  picture each writer makes, so that the command line refuses one over
  :data:`MAX_PICTURE_PIXELS` before any image is made, with the writers' own arithmetic.

PNG files are written to a temporary name and renamed, so a reader (or a kill) never
sees half a picture.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..limits import MAX_PICTURE_PIXELS  # refused before anything is drawn; the CLI checks it too

__all__ = ["PAIR_TITLES", "make_grid", "save_image_grid", "save_pairs_grid", "save_labelled_grid", "save_image",
           "png_bytes", "to_uint8", "save_png", "display_scale", "grid_size", "pairs_grid_size", "labelled_grid_size",
           "labelled_grid_bound", "MAX_PICTURE_PIXELS"]


def display_scale(res: int) -> int:
    """How many times pictures of ``res`` x ``res`` images are enlarged (by pixel repetition) so
    that small ones are seen: towards 128 pixels, never shrunk (an int >= 1). The picture
    commands and training's sample grids use it."""
    return max(1, 128 // res)


def _check_scale(scale) -> None:
    """ValueError naming ``scale`` unless it is an int >= 1 (not a bool)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale: expected a positive int, got {scale!r}")


def _grid_columns(count: int, nrow: int | None) -> int:
    """Images per row of a grid of ``count``: ``nrow``, by default ceil(sqrt(count)) (exact for any count)."""
    if nrow is None:
        root = math.isqrt(count)
        return root + (root * root < count)
    nrow = int(nrow)
    if nrow < 1:
        raise ValueError(f"nrow: expected >= 1, got {nrow}")
    return nrow


def grid_size(count: int, height: int, width: int, nrow: int | None = None, padding: int = 2,
              scale: int = 1) -> tuple[int, int]:
    """``(width, height)`` in pixels of the picture :func:`save_image_grid` writes for ``count``
    images of ``height`` x ``width``: ``nrow`` per row (default ``ceil(sqrt(count))``), in
    ``ceil(count / nrow)`` rows, ``padding`` pixels between and around them, the whole enlarged
    ``scale`` times. :func:`make_grid` lays its grid out by it. It grows with ``count``.
    ValueError for ``count`` < 1, ``nrow`` < 1 or ``padding`` < 0."""
    if count < 1:
        raise ValueError(f"count: expected >= 1 images, got {count}")
    if padding < 0:
        raise ValueError(f"padding: expected >= 0, got {padding}")
    nrow = _grid_columns(count, nrow)
    rows = -(-count // nrow)
    return (padding + nrow * (width + padding)) * scale, (padding + rows * (height + padding)) * scale


def _pairs_per_row(count: int, pairs_per_row: int | None) -> int:
    return pairs_per_row or max(1, _grid_columns(count, None))


PAIR_TITLES = ("input x", "G(E(x))", "refined G(w)")  # over the columns of save_pairs_grid


def _pair_titles(titles, per_pair: int) -> list[str] | None:
    """The column titles of one pair (``per_pair`` of them), or None for an untitled grid."""
    if titles is True:
        return list(PAIR_TITLES[:per_pair])
    if titles is False or titles is None:
        return None
    if isinstance(titles, str):  # list() would make each character a title
        raise ValueError(f"titles: expected True, False or {per_pair} strings (one a column of a pair); got {titles!r}")
    titles = list(titles)
    if len(titles) != per_pair or not all(isinstance(t, str) for t in titles):
        raise ValueError(f"titles: expected True, False or {per_pair} strings (one a column of a pair); got {titles!r}")
    return titles


def _pair_row_titles(row_titles, count: int, pairs_per_row: int | None, titles) -> list[str] | None:
    """``row_titles`` as a list of ``count`` strings, or None; ValueError naming ``row_titles`` for
    another count or kind, or naming ``pairs_per_row`` / ``titles`` where they cannot go with it
    (a row title names one pair; a table of titled rows titles its columns too)."""
    if row_titles is None:
        return None
    if not isinstance(row_titles, str):
        try:
            # a list first: a generator's titles would be used up by the check below
            row_titles = list(row_titles)
        except TypeError:
            pass
    if not isinstance(row_titles, list) or not all(isinstance(t, str) for t in row_titles):
        raise ValueError(f"row_titles: expected {count} strings (one a pair), or None; got {row_titles!r}")
    if len(row_titles) != count:
        raise ValueError(f"row_titles: expected {count} strings (one a pair); got {len(row_titles)}")
    if pairs_per_row not in (None, 1):
        raise ValueError(f"pairs_per_row: expected None or 1 with row_titles (a title names one pair's row); "
                         f"got {pairs_per_row!r}")
    if titles is False or titles is None:
        raise ValueError("titles: row_titles go with column titles (True or strings); got "
                         f"{titles!r}")
    return row_titles


def pairs_grid_size(count: int, height: int, width: int, pairs_per_row: int | None = None, padding: int = 2,
                    scale: int = 1, per_pair: int = 2, titles: bool | Sequence[str] = True,
                    row_titles: Sequence[str] | None = None) -> tuple[int, int]:
    """``(width, height)`` in pixels of the picture :func:`save_pairs_grid` writes for ``count``
    originals of ``height`` x ``width`` and their reconstructions (``per_pair * count`` images:
    2, or 3 with ``refined``; ``pairs_per_row`` groups a row, default ``ceil(sqrt(count))``):
    with ``titles`` (default) a :func:`labelled_grid_size` table with a title over each column
    and ``padding * scale`` pixels between images, else a :func:`grid_size` grid. With
    ``row_titles`` (``count`` strings, e.g. the inputs' file names) one pair a row, each beside
    its title. Raises as :func:`grid_size`, and ValueError for a ``per_pair`` other than 2 or 3,
    ``titles`` of another count, or ``row_titles`` as :func:`save_pairs_grid` refuses them."""
    if per_pair not in (2, 3):
        raise ValueError(f"per_pair: expected 2 (original, reconstruction) or 3 (and the refined one); got {per_pair!r}")
    named = _pair_row_titles(row_titles, count, pairs_per_row, titles)
    cols = per_pair * (1 if named is not None else _pairs_per_row(count, pairs_per_row))
    pair_titles = _pair_titles(titles, per_pair)
    if pair_titles is None:
        return grid_size(per_pair * count, height, width, cols, padding, scale)
    grid_size(per_pair * count, height, width, cols, padding, scale)  # the same argument checks
    # save_labelled_grid's layout (empty row labels: none wide), measured without a list of count labels
    label_width = max(_text_size(t)[0] for t in set(named)) if named is not None else 0
    return _table_size(-(-count * per_pair // cols), cols, label_width, max(_text_size(t)[1] for t in pair_titles),
                       height, width, scale, padding * scale)[:2]


def _refuse_large(who: str, size: tuple[int, int], fewer: str) -> None:
    """ValueError, before anything is drawn, for a picture of ``size`` (width, height) over
    :data:`MAX_PICTURE_PIXELS`; ``fewer`` says what makes it smaller."""
    if size[0] * size[1] > MAX_PICTURE_PIXELS:
        raise ValueError(f"{who}: the picture would be {size[0]}x{size[1]} pixels ({size[0] * size[1]:,}), more than "
                         f"{MAX_PICTURE_PIXELS} (2**26, MAX_PICTURE_PIXELS); {fewer}")


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one uint8 picture.

    Args:
        images: ``[N, C, H, W]`` float tensor, C in {1, 3}, values in ``[-1, 1]`` (clamped;
            -1 -> 0, 1 -> 255, rounded); TypeError for another dtype, ValueError for NaN/inf.
        nrow: images per row (default: ``ceil(sqrt(N))``).
        padding: pixels between and around images.
        pad_value: colour of the padding, in ``[-1, 1]`` (default 1.0, white).

    Returns:
        ``[H', W', C]`` uint8 array (C kept even when it is 1).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images: expected [N, 1 or 3, H, W], got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("images: is empty")
    if not images.is_floating_point():  # uint8 pixels would be read as [-1, 1] values: all white
        raise TypeError(f"images: expected a float tensor with pixels in [-1, 1]; got {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images: contain NaN or infinity")
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, float)) or not -1.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value: expected a number in [-1, 1]; got {pad_value!r}")
    width, height = grid_size(n, h, w, nrow, padding)
    nrow = _grid_columns(n, nrow)
    x = ((images.detach().to("cpu", torch.float32).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pad = int(round((min(max(pad_value, -1.0), 1.0) + 1) * 127.5))
    grid = np.full((height, width, c), pad, dtype=np.uint8)
    arr = x.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top:top + h, left:left + w] = arr[i]
    return grid


def save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 picture ``[H, W, C]`` (C in {1, 3, 4}) as a PNG, atomically: to a temporary
    name in the same folder, then renamed (parent folders are made). Returns the path.

    Raises IsADirectoryError when ``path`` is a folder (or a link to one), ValueError when it
    does not end in ``.png``, and the OSError of a failed write with ``path`` (not the temporary
    name) as its filename."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    if path.is_dir():  # os.replace would fail (a folder) or replace a symlink to one with a file
        raise IsADirectoryError(f"{str(path)!r} is a folder; give a file name for the PNG")
    if path.suffix.lower() != ".png":  # PNG bytes under another name mislead every viewer
        raise ValueError(f"{str(path)!r}: pictures are written as PNG; give a name ending in .png")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as e:
        # the error names the temporary file; the caller gave (and should see) the final name
        tmp.unlink(missing_ok=True)
        raise type(e)(e.errno, e.strerror, str(path)) from None
    return path


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2,
                    pad_value: float = 1.0, scale: int = 1) -> Path:
    """Save ``images`` ``[N, C, H, W]`` in ``[-1, 1]`` as one PNG grid (see :func:`make_grid`).

    ``scale`` > 1 enlarges the whole grid by pixel repetition (small images stay crisp); the
    picture is :func:`grid_size` pixels. Returns the path written. Raises as :func:`make_grid`,
    ValueError naming ``scale`` for a scale that is not an int >= 1, and ValueError
    ("save_image_grid: the picture would be WxH pixels ...") for a picture over
    :data:`MAX_PICTURE_PIXELS`, checked before anything is drawn.
    """
    _check_scale(scale)
    if isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[0] > 0:  # else make_grid says why
        _refuse_large("save_image_grid", grid_size(images.shape[0], images.shape[2], images.shape[3], nrow, padding,
                                                   scale), "give fewer images or a smaller scale")
    grid = make_grid(images, nrow, padding, pad_value)
    if scale != 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return save_png(grid, path)


def save_pairs_grid(originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike,
                    pairs_per_row: int | None = None, padding: int = 2, scale: int = 1,
                    refined: torch.Tensor | None = None, titles: bool | Sequence[str] = True,
                    row_titles: Sequence[str] | None = None) -> Path:
    """Save originals and reconstructions side by side: each original is followed by its
    reconstruction in the same row (and by its refined reconstruction when ``refined`` is given,
    e.g. G of :meth:`~alae_fast.inference.LoadedRun.project`'s w), ``pairs_per_row`` groups a row
    (default ``ceil(sqrt(N))``). All ``[N, C, H, W]`` in ``[-1, 1]``, same shape (ValueError
    otherwise).

    ``titles``: True (default) draws :data:`PAIR_TITLES` ("input x", "G(E(x))", "refined G(w)")
    over the columns (a :func:`save_labelled_grid` table, RGB); a sequence of 2 (3 with
    ``refined``) strings draws those; False draws the plain :func:`save_image_grid` grid.
    ``row_titles``: None (default), or N strings (the inputs' file names, say): one pair a row,
    each beside its title, so that a pair can be told from the others; with it ``pairs_per_row``
    must be None or 1 and ``titles`` not False. The picture is :func:`pairs_grid_size` pixels;
    raises as :func:`save_image_grid` (ValueError naming ``titles`` or ``row_titles`` for a wrong
    count), before the images are copied for a picture over :data:`MAX_PICTURE_PIXELS`."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"reconstructions: shape {tuple(reconstructions.shape)} differs from originals "
                         f"{tuple(originals.shape)}")
    if refined is not None and refined.shape != originals.shape:
        raise ValueError(f"refined: shape {tuple(refined.shape)} differs from originals {tuple(originals.shape)}")
    groups = [originals, reconstructions] + ([] if refined is None else [refined])
    pair_titles = _pair_titles(titles, len(groups))
    _check_scale(scale)
    n = originals.shape[0]
    named = _pair_row_titles(row_titles, n, pairs_per_row, titles)
    if originals.dim() == 4 and n > 0:
        _refuse_large("save_pairs_grid", pairs_grid_size(n, originals.shape[2], originals.shape[3], pairs_per_row,
                                                         padding, scale, len(groups), titles, named),
                      "give fewer images or a smaller scale")
    pairs_per_row = 1 if named is not None else _pairs_per_row(n, pairs_per_row)
    both = torch.stack([g.detach().cpu() for g in groups], dim=1).flatten(0, 1)
    cols = len(groups) * pairs_per_row
    if pair_titles is None or both.dim() != 4 or n == 0 or both.shape[1] not in (1, 3):  # make_grid says why
        return save_image_grid(both, path, nrow=cols, padding=padding, scale=scale)
    cells = [list(both[i:i + cols]) for i in range(0, both.shape[0], cols)]
    cells[-1] += [None] * (cols - len(cells[-1]))
    # the gaps enlarged with the images, as in the untitled grid
    return save_labelled_grid(cells, path, named if named is not None else [""] * len(cells),
                              pair_titles * pairs_per_row, scale=scale, padding=padding * scale)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``[N, C, H, W]`` (or one ``[C, H, W]``), C in {1, 3}, pixels in [-1, 1] -> uint8
    ``[N, H, W, C]`` (or ``[H, W, C]``): clamped, ``(x + 1) * 127.5`` rounded to nearest, as
    :func:`make_grid` does. NaN or infinity raise ValueError, a non-float dtype TypeError."""
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or images.shape[-3] not in (1, 3):
        raise ValueError(f"images: expected [N, 1 or 3, H, W] or [1 or 3, H, W], got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if not images.is_floating_point():  # uint8 pixels would be read as [-1, 1] values: all white
        raise TypeError(f"images: expected a float tensor with pixels in [-1, 1]; got {images.dtype}")
    x = images.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("images: contain NaN or infinity")
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def _pil(image: torch.Tensor):
    from PIL import Image

    arr = to_uint8(image)
    return Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """One image ``[C, H, W]`` in [-1, 1] as a PNG of exactly H x W pixels (grey or RGB), written
    atomically. Returns the path."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(f"image: expected [C, H, W], got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    return save_png(to_uint8(image), path)


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """One image ``[C, H, W]`` in [-1, 1] encoded as PNG bytes in memory, enlarged ``scale``
    times by pixel repetition (default 1: its own pixels). ValueError for another shape (a
    batch too: one image at a time) or NaN/inf pixels, TypeError for a non-float dtype."""
    import io

    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(f"image: expected one image [C, H, W], got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    _check_scale(scale)
    img = _pil(image)
    if scale != 1:
        from PIL import Image
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _latin_font_files() -> list[str]:
    """TrueType files of DejaVu Sans to try, best first: the one inside matplotlib's package,
    then the system's by name (Pillow searches the system's font folders)."""
    import importlib.util

    files = []
    # find_spec locates matplotlib (the `plot` extra) without importing it: importing it would
    # cost every picture-writing command a second or so, and only its font file is wanted
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if bundled.is_file():
            files.append(str(bundled))
    files.append("DejaVuSans.ttf")
    return files


@functools.lru_cache(maxsize=None)  # one font object: loading it again for every label was most of the time
def _font(size: int = 12):
    """Pillow's own font: Aileron (a bitmap font before Pillow 10.1), ASCII only."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


@functools.lru_cache(maxsize=None)
def _wide_font(size: int = 12):
    """DejaVu Sans, which has Latin-1 and far more (Greek, arrows; no CJK nor emoji), or None
    where none is found or Pillow has no FreeType."""
    from PIL import ImageFont

    for file in _latin_font_files():
        try:
            return ImageFont.truetype(file, size)
        except (OSError, ImportError):  # not there, or a Pillow built without FreeType
            continue
    return None


@functools.lru_cache(maxsize=None)
def _missing_mask(font) -> bytes:
    # a private-use code point: no font has it, so this is the font's missing-glyph box
    return bytes(font.getmask("\ue000"))


@functools.lru_cache(maxsize=65536)
def _draws(font, char: str) -> bool:
    """Whether ``font`` has a glyph for ``char`` (its mask is not the missing-glyph box)."""
    return char.isspace() or bytes(font.getmask(char)) != _missing_mask(font)


@functools.lru_cache(maxsize=16384)
def _label_font(text: str):
    """The font ``text`` is measured and drawn in: Pillow's own where it has every character,
    else DejaVu Sans where that has one Pillow's lacks (ünïcødé.png was titled □n□c□d□.png).

    Per title, not one font for all: the pictures' sizes, and so the most files or steps a
    picture holds that the command line tells, are those of Pillow's font for every ASCII title,
    whatever fonts a machine has."""
    font = _font(12)
    missing = {c for c in text if not _draws(font, c)}
    wide = _wide_font(12) if missing else None
    if wide is not None and any(_draws(wide, c) for c in missing):
        return wide
    return font


@functools.lru_cache(maxsize=16384)  # a label is measured by the size check and again by the drawing
def _text_size(text: str) -> tuple[int, int]:
    """(width, height) of ``text`` (``\\n`` breaks lines) in its labels' font (12 px)."""
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).multiline_textbbox((0, 0), text, font=_label_font(text))
    return box[2] - box[0], box[3] - box[1]


def _table_size(rows: int, cols: int, label_width: int, title_height: int, height: int, width: int, scale: int,
                padding: int) -> tuple[int, int, int, int]:
    """(picture width, picture height, labels' column width, titles' row height) of a labelled
    grid of ``rows`` x ``cols`` cells whose widest row label and tallest column title measure
    ``label_width`` and ``title_height`` pixels."""
    left, top = label_width + 2 * padding, title_height + 2 * padding
    return (left + cols * (width * scale + padding) + padding, top + rows * (height * scale + padding) + padding,
            left, top)


def _labelled_layout(row_labels: Sequence[str], col_labels: Sequence[str], height: int, width: int, scale: int,
                     padding: int) -> tuple[int, int, int, int]:
    """(picture width, picture height, labels' column width, titles' row height) of a labelled grid."""
    return _table_size(len(row_labels), len(col_labels), max(_text_size(t)[0] for t in set(row_labels)),
                       max(_text_size(t)[1] for t in set(col_labels)), height, width, scale, padding)


def labelled_grid_size(row_labels: Sequence[str], col_labels: Sequence[str], height: int, width: int,
                       scale: int = 1, padding: int = 4) -> tuple[int, int]:
    """``(width, height)`` in pixels of the picture :func:`save_labelled_grid` writes for a table
    of ``len(row_labels)`` x ``len(col_labels)`` cells of ``height`` x ``width`` images enlarged
    ``scale`` times, ``padding`` pixels apart, beside a column as wide as the widest row label
    and under a row as tall as the tallest column title (each with ``padding`` on both sides).
    It grows with the number of rows and of columns when their labels do not shrink. ValueError
    for no labels."""
    if not row_labels or not col_labels:
        raise ValueError("row_labels/col_labels: expected at least one of each")
    return _labelled_layout(row_labels, col_labels, height, width, scale, padding)[:2]


def labelled_grid_bound(rows: int, cols: int, height: int, width: int, scale: int = 1,
                        padding: int = 4) -> tuple[int, int]:
    """``(width, height)``, a lower bound of :func:`labelled_grid_size` for ``rows`` x ``cols``
    cells of ``height`` x ``width`` images enlarged ``scale`` times (default 1), ``padding``
    pixels apart (default 4, as :func:`save_labelled_grid`), whatever their titles (the tiles and
    padding alone, as under empty titles), in O(1): a table whose bound is over
    :data:`MAX_PICTURE_PIXELS` is refused without measuring a million titles. Plain arithmetic
    on ints >= 0; raises nothing."""
    return _table_size(rows, cols, 0, 0, height, width, scale, padding)[:2]


def save_labelled_grid(cells: Sequence[Sequence[torch.Tensor | str | None]], path: str | os.PathLike,
                       row_labels: Sequence[str], col_labels: Sequence[str], scale: int = 1,
                       padding: int = 4) -> Path:
    """A table of images with a title over each column and beside each row, as one PNG.

    Args:
        cells: rows of equal length; each cell an image ``[C, H, W]`` in [-1, 1] (all the same
            shape), a string, drawn as text in a cell of the same size (for a corner that would
            otherwise be an empty tile), or None, left white (the end of a last row).
        row_labels / col_labels: one title per row / column (``\\n`` breaks lines).
            Text is drawn in Pillow's default font, which has ASCII only; a title with a
            character it lacks (accents, Greek, arrows) in DejaVu Sans where one is found
            (matplotlib's copy, or the system's). Characters neither has (CJK, emoji) come
            out as boxes.
        scale: images enlarged by pixel repetition; padding: pixels between cells.

    Returns the path written (RGB PNG, white background) of :func:`labelled_grid_size` pixels.
    Raises ValueError for a ``scale`` that is not an int >= 1, a ragged or empty table, label counts that do not match it, images of
    different sizes, and a picture over :data:`MAX_PICTURE_PIXELS` ("save_labelled_grid: the
    picture would be WxH pixels ..."), checked before anything is drawn.
    """
    from PIL import Image, ImageDraw

    _check_scale(scale)
    rows = [list(r) for r in cells]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("cells: expected a non-empty table with rows of equal length")
    if len(row_labels) != len(rows) or len(col_labels) != len(rows[0]):
        raise ValueError(f"row_labels/col_labels: expected {len(rows)} and {len(rows[0])}, got "
                         f"{len(row_labels)} and {len(col_labels)}")
    images = [c for r in rows for c in r if isinstance(c, torch.Tensor)]
    if not images:
        raise ValueError("cells: hold no image")
    width, height, left, top = _labelled_layout(row_labels, col_labels, images[0].shape[-2], images[0].shape[-1],
                                                scale, padding)
    _refuse_large("save_labelled_grid", (width, height), "give fewer rows or columns or a smaller scale")
    h, w = images[0].shape[-2] * scale, images[0].shape[-1] * scale
    size = _text_size
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for k, t in enumerate(col_labels):
        tw, th = size(t)
        draw.multiline_text((left + k * (w + padding) + (w - tw) // 2, (top - th) // 2), t, fill="black",
                            font=_label_font(t), align="center")
    for r, (t, row) in enumerate(zip(row_labels, rows)):
        y = top + r * (h + padding)
        tw, th = size(t)
        draw.multiline_text((padding, y + (h - th) // 2), t, fill="black", font=_label_font(t))
        for k, cell in enumerate(row):
            x = left + k * (w + padding)
            if cell is None:
                continue
            if isinstance(cell, str):
                draw.rectangle([x, y, x + w - 1, y + h - 1], outline=(180, 180, 180))
                cw, ch = size(cell)
                draw.multiline_text((x + (w - cw) // 2, y + (h - ch) // 2), cell, fill=(90, 90, 90),
                                    font=_label_font(cell), align="center")
            else:
                if tuple(cell.shape[-2:]) != tuple(images[0].shape[-2:]):
                    raise ValueError(f"cells: images differ in size ({tuple(cell.shape)} vs {tuple(images[0].shape)})")
                tile = _pil(cell).convert("RGB")
                if scale != 1:
                    tile = tile.resize((w, h), Image.Resampling.NEAREST)
                img.paste(tile, (x, y))
    return save_png(np.asarray(img), path)
