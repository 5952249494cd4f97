"""The loss-curve PNG of a run (``loss_curves.png``), drawn with matplotlib, an optional extra.

- :func:`read_jsonl` reads a JSONL log, skipping a line cut short by a kill;
- :func:`plot_loss_curves` draws one panel per logged quantity against kimg;
- :func:`draw_loss_curves` is what training calls: no plot (and one line saying why) instead of
  an error when matplotlib is missing or the log has nothing to draw yet.

matplotlib is the ``[plot]`` extra (``[test]`` includes it). It
is imported only inside these functions, with the Agg renderer on a bare ``Figure`` (no pyplot,
no display, no global backend switch). The PNG is written atomically like every other picture.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._extras import install_hint
from .pictures import save_png

__all__ = ["read_jsonl", "plot_loss_curves", "draw_loss_curves"]

# matplotlib's tab10 colours, in the order the panels take them (first panel blue, second red)
_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (23, 190, 207), (140, 86, 75), (227, 119, 194)]
# pixel layout of one panel (matplotlib places axes in figure fractions; these fix them in pixels)
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM, _XLABEL_HEIGHT = 70, 20, 22, 22, 24
_DPI = 100
_told_missing: set[str] = set()  # draw_loss_curves says once per process that matplotlib is missing


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


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _hex(rgb: tuple[int, ...]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _series(records: list[dict], keys: Sequence[str] | None, x_key: str | None, log_path
            ) -> tuple[list[str], list[float], str, list[tuple[float, float]]]:
    """(keys to draw, x of each record, x label, (x, new lod) at each change of lod)."""
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
    xs = [float(r[x_key]) if x_key and _is_number(r.get(x_key)) else float(i) for i, r in enumerate(records)]
    lod_changes, prev = [], None
    for x, r in zip(xs, records):
        lod = r.get("lod")
        if _is_number(lod) and lod != prev:
            if prev is not None:
                lod_changes.append((x, lod))
            prev = lod
    return list(keys), xs, x_key or "record", lod_changes


def _draw_panel(ax, key: str, pts: list[tuple[float, float]], color: tuple[int, ...], smooth: int,
                lod_changes, show_x: bool, legend_x: float) -> None:
    """One quantity in its axes: raw points (faint when smoothed), the moving average, lod lines."""
    ax.set_title(key, loc="left", fontsize=9, pad=3)
    for side in ax.spines.values():
        side.set_color("#787878")
    ax.tick_params(labelsize=8, labelbottom=show_x, length=3)
    ax.grid(axis="y", color="#e8e8e8", linewidth=1)
    ax.set_axisbelow(True)
    if not pts:
        ax.text(0.01, 0.95, "(no values)", transform=ax.transAxes, color="gray", fontsize=8, va="top")
        return
    xs, ys = np.array([x for x, _ in pts]), np.array([y for _, y in pts])
    for x, lod in lod_changes:
        ax.axvline(x, color="#969696", linewidth=1, linestyle=(0, (3, 3)))
        ax.text(x, 0.97, f" lod {_fmt(float(lod))}", transform=ax.get_xaxis_transform(), color="#6e6e6e",
                fontsize=8, va="top")
    main = _hex(color)
    if smooth > 1:
        faint = _hex(tuple(int(c + (255 - c) * 0.7) for c in color))
        ax.plot(xs, ys, color=faint, linewidth=0.75, label="raw")
        xs = xs[smooth - 1:]  # fewer points than the window: no mean yet, only the raw line
        ys_line = np.convolve(ys, np.ones(smooth) / smooth, mode="valid")[:len(xs)]
    else:
        ys_line = ys
    # not antialiased: the line keeps its exact colour, so a reader (or a test) can find it by colour
    ax.plot(xs, ys_line, color=main, linewidth=1.5, antialiased=False, marker="o" if len(xs) == 1 else None,
            markersize=3, label=f"mean of {smooth}")
    ax.text(0.99, 0.97, f"last {_fmt(float(ys[-1]))}", transform=ax.transAxes, color=main, fontsize=8,
            ha="right", va="top")
    if smooth > 1:  # legend: which line is which, in the title row (inside, it covered the lod labels)
        ax.legend(loc="lower left", bbox_to_anchor=(legend_x, 1.0), ncol=2, frameon=False, fontsize=8,
                  borderpad=0.2, borderaxespad=0.0, handlelength=1.5, columnspacing=1.0)


def plot_loss_curves(log_path: str | os.PathLike, png_path: str | os.PathLike, keys: Sequence[str] | None = None,
                     x_key: str | None = None, width: int = 800, panel_height: int = 180,
                     smooth: int = 1) -> Path:
    """Draw the quantities of a JSONL training log as a PNG, one panel per quantity (matplotlib).

    Args:
        log_path: JSONL file, one JSON object per line (unparsable lines are skipped).
        png_path: where to write the PNG (RGB, ``width`` x ``len(keys) * panel_height + 24`` pixels).
        keys: quantities to draw (default: every numeric key except the x axis and
            ``lod``, in order of first appearance).
        x_key: horizontal axis (default: the first of ``kimg``, ``step``, ``iter``
            present in the log, else the record number).
        width, panel_height: picture size in pixels.
        smooth: draw a moving average over this many points (1 = raw) on top of the raw
            points (shown faint); each panel then has a legend naming both lines.

    Panel i's line has tab10 colour i (blue, red, green, ...), drawn without antialiasing. When
    the log has a ``lod`` field, a dashed vertical line marks each change of level of detail,
    labelled with the new value. Raises ``ValueError`` if the log has no numeric quantity to
    draw, ``ImportError`` (naming the ``[plot]`` extra) without matplotlib. Returns the PNG path.
    """
    records, _ = read_jsonl(log_path)
    if not records:
        raise ValueError(f"log_path: {log_path} holds no JSON records")
    keys, xs_all, xlabel, lod_changes = _series(records, keys, x_key, log_path)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"the loss-curve plot needs matplotlib ({install_hint('plot')})", name=e.name) from e

    height = len(keys) * panel_height + _XLABEL_HEIGHT
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    left, right = _MARGIN_LEFT, width - _MARGIN_RIGHT
    x_lo, x_hi = min(xs_all), max(xs_all)
    for pi, key in enumerate(keys):
        top, bottom = pi * panel_height + _MARGIN_TOP, (pi + 1) * panel_height - _MARGIN_BOTTOM
        ax = fig.add_axes((left / width, 1 - bottom / height, (right - left) / width, (bottom - top) / height))
        ax.set_xlim(x_lo, x_hi if x_hi > x_lo else x_lo + 1.0)
        pts = [(x, float(r[key])) for x, r in zip(xs_all, records) if _is_number(r.get(key))]
        _draw_panel(ax, key, pts, _COLORS[pi % len(_COLORS)], smooth, lod_changes, pi == len(keys) - 1,
                    legend_x=(right - 330 - left) / (right - left))
    fig.text(0.5, 4 / height, xlabel, ha="center", va="bottom", fontsize=9)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return save_png(rgb, png_path)


def draw_loss_curves(log_path: str | os.PathLike, png_path: str | os.PathLike, say: Callable[[str], object] = print,
                     **options) -> list[Path]:
    """:func:`plot_loss_curves` for a running training: ``[path]`` when drawn, ``[]`` when the log
    has nothing to draw yet, and ``[]`` without matplotlib, after saying once per process (through
    ``say``) why no plot was drawn and how to get one. ``options`` go to :func:`plot_loss_curves`."""
    try:
        return [plot_loss_curves(log_path, png_path, **options)]
    except ValueError:
        return []
    except ImportError:
        if "matplotlib" not in _told_missing:
            _told_missing.add("matplotlib")
            say(f"note: no {Path(png_path).name}: the loss-curve plot needs matplotlib, which is not installed; "
                f"training goes on without it. For the plot: {install_hint('plot')}")
        return []
