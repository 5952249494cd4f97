"""The web page's editing interface: directions as a matrix, slider values, direction files.

The arithmetic is :mod:`alae_fast.edit`'s (``alae-fast edit`` / ``alae-fast directions`` run the
same): :func:`projections` is :func:`~alae_fast.edit.direction_coefficients`,
:func:`apply_directions` is :func:`~alae_fast.edit.edit_w` in its 'absolute' mode (the demo's
sliders) and :func:`fit_class_directions` is :func:`alae_fast.edit.fit_class_directions`. This
module adds what the page needs around them: [K, D] matrices instead of named vectors,
per-image amounts, the image's own styles above a cutoff, uploads, slider limits.

Official reference: podgorskiy/ALAE ``interactive_demo.py`` (Apache-2.0). For one image with
w = E(x) and directions d_i (rows of ``directions``), the demo

1. subtracts the average: ``l = w - w_avg``;
2. reads each attribute's value on the ORIGINAL l: ``v_i = <l, d_i>`` (all before any removal);
3. removes those components: ``l <- l - sum_i v_i d_i``;
4. adds the slider amounts: ``l <- l + sum_i a_i d_i`` and the average back: ``w' = l + w_avg``;
5. gives w' to the style inputs below a cutoff and keeps the image's own styles above it
   (``torch.where(layer < cutoff, w', ws_original)``; the demo uses 16 of FFHQ's 18).

The demo's styles below the cutoff are all one w. Ours may differ (a sample truncated on its
first style inputs only, as ``alae-fast generate`` makes them): each edited style input then
moves by the vector w' - w of style input 0, keeping its own difference from it, so styles that
equal w get exactly w' (the demo's result) and an edit at the image's own values is the identity.

With ``a_i = v_i`` (the sliders where the image put them) the edit is the identity, whatever
the directions (unit length or not, orthogonal or not). The functions here take the vectors as
given (official ``direction_*.npy`` files are LinearSVC normals of unit-free length, as are those
fitted here); the page's service scales every direction to unit length before it uses
them (:meth:`~.service.ModelService.add_direction`), so that a slider's unit is the same for all.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import edit
from ..errors import UserError

__all__ = ["projections", "apply_directions", "load_directions", "direction_files",
           "fit_class_directions", "slider_ranges"]


def _check(w: torch.Tensor, w_avg: torch.Tensor, directions: torch.Tensor) -> None:
    d = w_avg.shape[-1]
    if w.ndim != 2 or w.shape[1] != d:
        raise ValueError(f"w: expected [N, {d}], got {tuple(w.shape)}")
    if directions.ndim != 2 or directions.shape[1] != d:
        raise ValueError(f"directions: expected [K, {d}], got {tuple(directions.shape)}")


def projections(w: torch.Tensor, w_avg: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """The attribute values of step 2: ``(w - w_avg) @ directions.T``, ``[N, K]``.

    w: ``[N, D]``; w_avg: ``[D]``; directions: ``[K, D]``; all one float dtype."""
    _check(w, w_avg, directions)
    if directions.shape[0] == 0:
        return w.new_zeros(w.shape[0], 0)
    coefs = edit.direction_coefficients(w, dict(enumerate(directions)), w_avg)
    return torch.stack(list(coefs.values()), dim=1)


def apply_directions(w: torch.Tensor, w_avg: torch.Tensor, directions: torch.Tensor, amounts: torch.Tensor,
                     num_ws: int = 1, ws_original: torch.Tensor | None = None,
                     cutoff: int | None = None) -> torch.Tensor:
    """Steps 1-5 of the module docstring: move w to the attribute values ``amounts``.

    Args:
        w: ``[N, D]`` the images' latents (E(x), or F(z)).
        w_avg: ``[D]`` the model's average w.
        directions: ``[K, D]`` attribute directions (K may be 0: then w' = w).
        amounts: ``[N, K]`` or ``[K]`` the attribute values wanted (``projections`` gives the
            image's own).
        num_ws: style inputs of G; the result is ``[N, num_ws, D]``.
        ws_original: ``[N, num_ws, D]`` the image's own styles (default: w broadcast), kept at
            inputs >= ``cutoff``; inputs below it get w' plus their own difference from w
            (zero where they equal w; the module docstring).
        cutoff: edit style inputs [0, cutoff) only (default None: all).

    Returns styles ``[N, num_ws, D]`` for ``decode``. Raises ValueError on shape mismatches,
    naming the argument.
    """
    _check(w, w_avg, directions)
    k = directions.shape[0]
    amounts = torch.as_tensor(amounts, dtype=w.dtype, device=w.device)
    if amounts.ndim == 1:
        amounts = amounts.expand(w.shape[0], -1)
    if amounts.shape != (w.shape[0], k):
        raise ValueError(f"amounts: expected [{w.shape[0]}, {k}] (one value per direction), got "
                         f"{tuple(amounts.shape)}")
    if not torch.isfinite(amounts).all():
        raise ValueError("amounts: contain NaN or infinity")
    ws = edit.edit_w(w, dict(enumerate(directions)), {i: amounts[:, i] for i in range(k)}, w_avg, num_ws,
                     edit_layers=None, mode="absolute")
    if ws_original is None:
        return ws
    if ws_original.shape != ws.shape:
        raise ValueError(f"ws_original: expected {tuple(ws.shape)}, got {tuple(ws_original.shape)}")
    # w' + (own - w), not own + (w' - w): a style equal to w then gets w' to the last bit
    moved = ws + (ws_original - w.unsqueeze(1))
    if cutoff is None:
        return moved
    layer = torch.arange(num_ws, device=w.device).view(1, -1, 1)
    return torch.where(layer < cutoff, moved, ws_original)


def load_directions(folder: str | os.PathLike, latent_size: int, scaled: bool = False) -> dict[str, np.ndarray]:
    """Every ``*.npy`` in ``folder`` (sorted by name) as ``{name: [latent_size]}``, named as
    ``alae-fast edit --direction NAME`` finds the file: ``direction_<name>.npy`` (the official
    layout) is ``<name>``, an official CelebA-HQ index the label the official demo gives it
    (``direction_1.npy`` is ``smile``, :data:`~alae_fast.edit.OFFICIAL_DIRECTION_NAMES`), any
    other file its stem. ``scaled``: the vectors will be scaled to unit length (the page's), so
    only what cannot be (all zero) is refused for its length (:func:`~alae_fast.edit.parse_direction`).

    Raises FileNotFoundError for a missing folder and UserError for a folder without .npy
    files, with one that does not load (see :func:`alae_fast.edit.parse_direction`), or with two
    files that take the same name (``smile.npy`` beside ``direction_smile.npy``)."""
    return {name: vec for name, _, vec in direction_files(folder, latent_size, scaled)}


def direction_files(folder: str | os.PathLike, latent_size: int, scaled: bool = False
                    ) -> list[tuple[str, Path, np.ndarray]]:
    """:func:`load_directions` with each direction's file: ``[(name, path, vector)]`` in the
    files' order. Raises as that does."""
    root = Path(folder)
    if root.is_file():
        raise UserError(f"--directions: {str(root)!r} is a file; give the folder that holds the .npy files "
                        f"(every *.npy in it becomes a slider)")
    if not root.is_dir():
        raise FileNotFoundError(f"--directions: folder {str(root)!r} does not exist")
    files = sorted(root.glob("*.npy"), key=lambda p: (len(p.stem), p.stem))  # direction_2 before direction_10
    if not files:
        raise UserError(f"--directions: {str(root)!r} holds no .npy files")
    out: list[tuple[str, Path, np.ndarray]] = []
    named: dict[str, Path] = {}
    for p in files:
        name = _direction_name(p.stem)
        if name in named:
            raise UserError(f"--directions: {named[name].name} and {p.name} both name the direction {name!r}; "
                            f"keep one of them")
        named[name] = p
        out.append((name, p, edit.load_direction(p, latent_size, scaled=scaled)))
    return out


def _direction_name(stem: str) -> str:
    # the sliders carry the names the CLI's --direction takes for the same files
    prefix = "direction_"
    name = stem[len(prefix):] if stem.startswith(prefix) and len(stem) > len(prefix) else stem
    return edit.OFFICIAL_DIRECTION_NAMES.get(name, name)


def fit_class_directions(w: np.ndarray, labels: np.ndarray, names: dict[int, str] | None = None
                         ) -> dict[str, np.ndarray]:
    """One direction per class: :func:`alae_fast.edit.fit_class_directions` (one-vs-rest
    ``LinearSVC(C=1, dual=False)`` on latents ``w [N, D]`` with integer ``labels [N]``, as the
    official ``find_principal_directions.py`` does per attribute, on W), each normal at the
    fit's own length (the page's service scales it to unit length, keeping that length as the
    direction's ``norm``). Moving along it makes the image more like that class. Returns
    ``{name: [D] float64}`` in class order, named by ``names`` (default ``"class <id>"``)."""
    w = np.asarray(w, dtype=np.float64)
    labels = np.asarray(labels)
    if w.ndim != 2 or labels.shape != (w.shape[0],):
        raise ValueError(f"w/labels: expected [N, D] and [N], got {w.shape} and {labels.shape}")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError(f"labels: need at least 2 classes, got {classes.tolist()}")
    named = {int(c): (names or {}).get(int(c), f"class {c}") for c in classes}
    return dict(edit.fit_class_directions(w, labels, named))


def slider_ranges(values: np.ndarray, widen: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Slider limits per direction from attribute values ``[N, K]`` of typical latents: the 0.5th
    and 99.5th percentiles, each side widened by ``widen`` times their span."""
    lo, hi = np.percentile(values, 0.5, axis=0), np.percentile(values, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    return lo - widen * span, hi + widen * span
