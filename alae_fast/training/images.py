"""PNG output of a run: image grids and loss curves, drawn with Pillow only.

- :func:`save_image_grid` tiles a batch of images in ``[-1, 1]`` into one PNG;
- :func:`save_pairs_grid` shows originals beside their reconstructions;
- :func:`save_labelled_grid` draws a table of images with row and column titles;
- :func:`save_image` / :func:`png_bytes` write one image (or a batch) at its own pixels;
- :func:`plot_loss_curves` draws one panel per logged quantity from a JSONL log.

PNG files are written to a temporary name and renamed, so a reader (or a kill) never
sees half a picture.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["make_grid", "save_image_grid", "save_pairs_grid", "save_labelled_grid", "save_image", "png_bytes",
           "to_uint8", "read_jsonl", "plot_loss_curves"]


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one uint8 picture.

    Args:
        images: ``[N, C, H, W]`` tensor, C in {1, 3}, values in ``[-1, 1]`` (clamped;
            -1 -> 0, 1 -> 255, rounded).
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
    if not torch.isfinite(images).all():
        raise ValueError("images: contain NaN or infinity")
    if padding < 0:
        raise ValueError(f"padding: expected >= 0, got {padding}")
    nrow = int(nrow) if nrow is not None else math.ceil(math.sqrt(n))
    if nrow < 1:
        raise ValueError(f"nrow: expected >= 1, got {nrow}")
    ncol_rows = math.ceil(n / nrow)
    x = ((images.detach().to("cpu", torch.float32).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pad = int(round((min(max(pad_value, -1.0), 1.0) + 1) * 127.5))
    grid = np.full((padding + ncol_rows * (h + padding), padding + nrow * (w + padding), c), pad, dtype=np.uint8)
    arr = x.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, q = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top:top + h, left:left + w] = arr[i]
    return grid


def _save_png(array: np.ndarray, path: str | os.PathLike) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None, padding: int = 2,
                    pad_value: float = 1.0, scale: int = 1) -> Path:
    """Save ``images`` ``[N, C, H, W]`` in ``[-1, 1]`` as one PNG grid (see :func:`make_grid`).

    ``scale`` > 1 enlarges the whole grid by pixel repetition (small images stay crisp).
    Returns the path written.
    """
    grid = make_grid(images, nrow, padding, pad_value)
    if scale != 1:
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale: expected a positive int, got {scale!r}")
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return _save_png(grid, path)


def save_pairs_grid(originals: torch.Tensor, reconstructions: torch.Tensor, path: str | os.PathLike,
                    pairs_per_row: int | None = None, padding: int = 2, scale: int = 1) -> Path:
    """Save originals and reconstructions side by side: each original is followed by its
    reconstruction in the same row. Both ``[N, C, H, W]`` in ``[-1, 1]``, same shape."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"reconstructions: shape {tuple(reconstructions.shape)} differs from originals "
                         f"{tuple(originals.shape)}")
    n = originals.shape[0]
    pairs_per_row = pairs_per_row or max(1, math.ceil(math.sqrt(n)))
    both = torch.stack([originals.detach().cpu(), reconstructions.detach().cpu()], dim=1).flatten(0, 1)
    return save_image_grid(both, path, nrow=2 * pairs_per_row, padding=padding, scale=scale)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``[N, C, H, W]`` (or one ``[C, H, W]``), C in {1, 3}, pixels in [-1, 1] -> uint8
    ``[N, H, W, C]`` (or ``[H, W, C]``): clamped, ``(x + 1) * 127.5`` rounded to nearest, as
    :func:`make_grid` does. NaN or infinity raise ValueError."""
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4) or images.shape[-3] not in (1, 3):
        raise ValueError(f"images: expected [N, 1 or 3, H, W] or [1 or 3, H, W], got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
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
    return _save_png(to_uint8(image), path)


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """One image ``[C, H, W]`` in [-1, 1] encoded as PNG bytes in memory, enlarged ``scale``
    times by pixel repetition (default 1: its own pixels)."""
    import io

    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale: expected a positive int, got {scale!r}")
    img = _pil(image)
    if scale != 1:
        from PIL import Image
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def save_labelled_grid(cells: Sequence[Sequence[torch.Tensor | str]], path: str | os.PathLike,
                       row_labels: Sequence[str], col_labels: Sequence[str], scale: int = 1,
                       padding: int = 4) -> Path:
    """A table of images with a title over each column and beside each row, as one PNG.

    Args:
        cells: rows of equal length; each cell an image ``[C, H, W]`` in [-1, 1] (all the same
            shape) or a string, drawn as text in a cell of the same size (for a corner that would
            otherwise be an empty tile).
        row_labels / col_labels: one title per row / column (``\\n`` breaks lines).
        scale: images enlarged by pixel repetition; padding: pixels between cells.

    Returns the path written (RGB PNG, white background).
    """
    from PIL import Image, ImageDraw

    rows = [list(r) for r in cells]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("cells: expected a non-empty table with rows of equal length")
    if len(row_labels) != len(rows) or len(col_labels) != len(rows[0]):
        raise ValueError(f"row_labels/col_labels: expected {len(rows)} and {len(rows[0])}, got "
                         f"{len(row_labels)} and {len(col_labels)}")
    images = [c for r in rows for c in r if isinstance(c, torch.Tensor)]
    if not images:
        raise ValueError("cells: hold no image")
    h, w = images[0].shape[-2] * scale, images[0].shape[-1] * scale
    font = _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text: str) -> tuple[int, int]:
        box = probe.multiline_textbbox((0, 0), text, font=font)
        return box[2] - box[0], box[3] - box[1]

    left = max(size(t)[0] for t in row_labels) + 2 * padding
    top = max(size(t)[1] for t in col_labels) + 2 * padding
    width = left + len(rows[0]) * (w + padding) + padding
    height = top + len(rows) * (h + padding) + padding
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for k, t in enumerate(col_labels):
        tw, th = size(t)
        draw.multiline_text((left + k * (w + padding) + (w - tw) // 2, (top - th) // 2), t, fill="black",
                            font=font, align="center")
    for r, (t, row) in enumerate(zip(row_labels, rows)):
        y = top + r * (h + padding)
        tw, th = size(t)
        draw.multiline_text((padding, y + (h - th) // 2), t, fill="black", font=font)
        for k, cell in enumerate(row):
            x = left + k * (w + padding)
            if isinstance(cell, str):
                draw.rectangle([x, y, x + w - 1, y + h - 1], outline=(180, 180, 180))
                cw, ch = size(cell)
                draw.multiline_text((x + (w - cw) // 2, y + (h - ch) // 2), cell, fill=(90, 90, 90), font=font,
                                    align="center")
            else:
                if tuple(cell.shape[-2:]) != tuple(images[0].shape[-2:]):
                    raise ValueError(f"cells: images differ in size ({tuple(cell.shape)} vs {tuple(images[0].shape)})")
                tile = _pil(cell).convert("RGB")
                if scale != 1:
                    tile = tile.resize((w, h), Image.Resampling.NEAREST)
                img.paste(tile, (x, y))
    return _save_png(np.asarray(img), path)


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Records of a JSONL log and the number of unparsable lines skipped (e.g. a last line
    cut short by a kill). Blank lines are ignored."""
    records, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(rec, dict):
                records.append(rec)
            else:
                bad += 1
    return records, bad


_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (23, 190, 207), (140, 86, 75), (227, 119, 194)]


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plot_loss_curves(log_path: str | os.PathLike, png_path: str | os.PathLike, keys: Sequence[str] | None = None,
                     x_key: str | None = None, width: int = 800, panel_height: int = 180,
                     smooth: int = 1) -> Path:
    """Draw the quantities of a JSONL training log as a PNG, one panel per quantity.

    Args:
        log_path: JSONL file, one JSON object per line (unparsable lines are skipped).
        png_path: where to write the PNG.
        keys: quantities to draw (default: every numeric key except the x axis and
            ``lod``, in order of first appearance).
        x_key: horizontal axis (default: the first of ``kimg``, ``step``, ``iter``
            present in the log, else the record number).
        width, panel_height: picture size in pixels.
        smooth: draw a moving average over this many points (1 = raw) on top of the raw
            points (shown faint); each panel then has a legend naming both lines.

    When the log has a ``lod`` field, a dashed vertical line marks each change of level
    of detail, labelled with the new value. Raises ``ValueError`` if the log has no
    numeric quantity to draw. Returns the PNG path.
    """
    from PIL import Image, ImageDraw, ImageFont

    records, _ = read_jsonl(log_path)
    if not records:
        raise ValueError(f"log_path: {log_path} holds no JSON records")
    if x_key is None:
        x_key = next((k for k in ("kimg", "step", "iter") if any(_is_number(r.get(k)) for r in records)), None)
    if keys is None:
        seen: dict[str, None] = {}
        for r in records:
            for k, v in r.items():
                if k not in (x_key, "lod") and _is_number(v):
                    seen.setdefault(k, None)
        keys = list(seen)
    if not keys:
        raise ValueError(f"log_path: {log_path} has no numeric quantity to plot")
    xs_all = [float(r[x_key]) if x_key and _is_number(r.get(x_key)) else float(i) for i, r in enumerate(records)]
    xlabel = x_key or "record"

    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    margin_l, margin_r, margin_t, margin_b = 70, 20, 22, 22
    height = len(keys) * panel_height + 24
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    x_lo, x_hi = min(xs_all), max(xs_all)
    if x_hi == x_lo:
        x_hi = x_lo + 1.0

    lod_changes = []
    prev = None
    for x, r in zip(xs_all, records):
        lod = r.get("lod")
        if _is_number(lod) and lod != prev:
            if prev is not None:
                lod_changes.append((x, lod))
            prev = lod

    for pi, key in enumerate(keys):
        pts = [(x, float(r[key])) for x, r in zip(xs_all, records) if _is_number(r.get(key))]
        top = pi * panel_height + margin_t
        bottom = (pi + 1) * panel_height - margin_b
        left, right = margin_l, width - margin_r
        draw.text((left, top - 16), key, fill="black", font=font)
        draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
        if not pts:
            draw.text((left + 8, top + 8), "(no values)", fill="gray", font=font)
            continue
        ys = [y for _, y in pts]
        y_lo, y_hi = min(ys), max(ys)
        if y_hi == y_lo:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
        span = y_hi - y_lo
        y_lo, y_hi = y_lo - 0.05 * span, y_hi + 0.05 * span

        def px(x, y):
            return (left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                    bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top))

        for t in _nice_ticks(y_lo, y_hi):
            _, yy = px(x_lo, t)
            draw.line([left, yy, right, yy], fill=(232, 232, 232))
            draw.text((4, yy - 7), _fmt(t), fill="black", font=font)
        for t in _nice_ticks(x_lo, x_hi, 8):
            xx, _ = px(t, y_lo)
            draw.line([xx, bottom, xx, bottom + 4], fill="black")
            if pi == len(keys) - 1:
                draw.text((xx - 10, bottom + 5), _fmt(t), fill="black", font=font)
        for x, lod in lod_changes:
            xx, _ = px(x, y_lo)
            for yy in range(int(top), int(bottom), 6):
                draw.line([xx, yy, xx, min(yy + 3, bottom)], fill=(150, 150, 150))
            draw.text((xx + 2, top + 2), f"lod {_fmt(float(lod))}", fill=(110, 110, 110), font=font)
        color = _COLORS[pi % len(_COLORS)]
        raw = [px(x, y) for x, y in pts]
        if smooth > 1:
            faint = tuple(int(c + (255 - c) * 0.7) for c in color)
            if len(raw) > 1:
                draw.line(raw, fill=faint, width=1)
            ys_s = np.convolve(np.asarray(ys), np.ones(smooth) / smooth, mode="valid")
            line = [px(x, y) for (x, _), y in zip(pts[smooth - 1:], ys_s)]
        else:
            line = raw
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        elif line:
            x0, y0 = line[0]
            draw.ellipse([x0 - 2, y0 - 2, x0 + 2, y0 + 2], fill=color)
        draw.text((right - 150, top + 2), f"last {_fmt(ys[-1])}", fill=color, font=font)
        if smooth > 1:  # legend: which line is which
            lx = right - 330
            draw.line([lx, top + 9, lx + 18, top + 9], fill=faint, width=1)
            draw.text((lx + 22, top + 2), "raw", fill="black", font=font)
            draw.line([lx + 52, top + 9, lx + 70, top + 9], fill=color, width=2)
            draw.text((lx + 74, top + 2), f"mean of {smooth}", fill="black", font=font)
    draw.text((width // 2 - 20, height - 16), xlabel, fill="black", font=font)
    return _save_png(np.asarray(img), png_path)
