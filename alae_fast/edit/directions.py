"""Attribute directions in W: reading the official ``.npy`` files, fitting new ones, digit pairs.

A direction is a float64 vector ``[latent]``: the normal of a linear classifier of w, as the
official ``principal_directions/find_principal_directions.py`` (podgorskiy/ALAE, 42bcf2e)
fits it, ``sklearn.svm.LinearSVC(C=1.0, dual=False, max_iter=10000)`` on (w, binary label),
keeping ``coef_[0]`` unnormalised. The official folder holds them as
``principal_directions/direction_<name>.npy`` (names 0, 1, 2, 3, 4, 10, 11, 17, 19: CelebA-HQ
attribute indices; the demo labels them gender, smile, attractive, wavy-hair, young, big lips,
big nose, chubby, glasses). A positive amount moves towards label 1.

Built-in directions of a digits run are named ``"A-B"`` (A, B digits, A != B): the direction
from class A (label 0) to class B (label 1), fitted on the encoded images of the embedded
digits' training split.
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import UserError, first_line
from .apply import direction_problem

__all__ = ["OFFICIAL_DIRECTION_NAMES", "official_direction_index", "parse_direction", "read_direction_file",
           "load_direction", "save_direction", "find_direction_file",
           "fit_direction", "fit_class_directions", "parse_digit_pair", "DIGIT_PAIR", "not_numpy"]

OFFICIAL_DIRECTION_NAMES = {"0": "gender", "1": "smile", "2": "attractive", "3": "wavy-hair", "4": "young",
                            "10": "big lips", "11": "big nose", "17": "chubby", "19": "glasses"}
DIGIT_PAIR = re.compile(r"^([0-9])-([0-9])$")


def _check_latent_size(latent_size) -> int:
    if isinstance(latent_size, bool) or not isinstance(latent_size, (int, np.integer)) or latent_size < 1:
        raise ValueError(f"latent_size: expected an int >= 1 (the model's, model.latent_size); got {latent_size!r}")
    return int(latent_size)


def not_numpy(head: bytes) -> str | None:
    """Why bytes starting with ``head`` (6 or more) are no NumPy file, or None when they may be
    one (``.npy`` header or ``.npz`` zip). For anything else ``np.load(allow_pickle=False)``
    would answer that the file "contains pickled (object) data" and suggest loading it unsafely:
    wrong advice for a text file or an image."""
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04"):
        return None
    return "not a NumPy file: it does not begin with the .npy header; write directions with numpy.save"


def parse_direction(data: bytes, latent_size: int, source: str, scaled: bool = False) -> np.ndarray:
    """A direction from the bytes of a ``.npy`` file: float64 ``[latent_size]``. A ``[1,
    latent_size]`` row (what ``LinearSVC.coef_`` holds) is taken as that vector.

    The one set of rules for every way a direction comes in (``alae-fast edit``, ``serve
    --directions``, the page's upload). ``scaled`` (default False): the vector will be scaled to
    unit length before use (the page's, ``serve``), so its length does not matter; False: it is
    used as given (``alae-fast edit``), so it must move a float32 w as it is.

    Raises :class:`~alae_fast.errors.UserError` (a ValueError) starting with ``source`` when
    the bytes are not a NumPy array (not ``.npy``, truncated, an ``.npz``, pickled objects:
    ``allow_pickle=False``), not numbers, not a vector of ``latent_size`` values, hold NaN or
    infinity (in float64), are all zero, or, unless ``scaled``, cannot move a float32 w
    (:func:`~alae_fast.edit.apply.direction_problem`: zero once in float32 as
    ``np.full(n, 1e-300)`` is, shorter than :func:`~alae_fast.edit.apply.shortest_direction`
    (1.19e-13), or past float32's range); ValueError when ``latent_size`` is not an int >= 1.
    """
    latent_size = _check_latent_size(latent_size)
    problem = not_numpy(data[:6])
    if problem:
        raise UserError(f"{source}: not a readable .npy direction file ({problem})")
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{source}: not a readable .npy direction file ({first_line(e)})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise UserError(f"{source}: is an .npz archive; expected one .npy vector")
    if arr.dtype.kind not in "fiu":
        raise UserError(f"{source}: holds {arr.dtype} values; expected numbers")
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != (latent_size,):
        raise UserError(f"{source}: direction of shape {arr.shape}; the model's latent size is {latent_size} "
                        f"(expected shape ({latent_size},) or (1, {latent_size}))")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise UserError(f"{source}: direction holds NaN or infinity ({bad} of its {latent_size} values); expected "
                        f"finite numbers")
    if scaled:  # only its direction counts: all it needs is a length to divide by
        if not arr.any():
            raise UserError(f"{source}: direction is all zeros; expected a vector of non-zero length")
        return arr
    # judged in float32, the dtype of every model's w that the direction will move
    problem = direction_problem(arr, torch.float32)
    if problem is not None:
        raise UserError(f"{source}: direction {problem}")
    return arr


def read_direction_file(path: str | os.PathLike) -> bytes:
    """The bytes of the direction file ``path``. Raises FileNotFoundError ``direction file 'P'
    does not exist`` (as images and checkpoints say it), and UserError (a ValueError) in one
    plain line for a folder, no permission, or another reason the system gives."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"direction file {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"direction file {str(p)!r} is a folder; give a .npy file (written with numpy.save)") from None
    except OSError as e:  # no permission, an I/O error, ...: the system's words without its errno
        raise UserError(f"direction file {str(p)!r} cannot be read ({e.strerror or first_line(e)})") from None


def load_direction(path: str | os.PathLike, latent_size: int, scaled: bool = False) -> np.ndarray:
    """A direction from a ``.npy`` file: :func:`parse_direction` of its bytes (``scaled`` as
    there), messages starting with the path. Raises UserError (a ValueError) as that does;
    FileNotFoundError for a missing file and UserError for a folder or one that cannot be read
    (:func:`read_direction_file`);
    ValueError when ``latent_size`` is not an int >= 1."""
    latent_size = _check_latent_size(latent_size)
    return parse_direction(read_direction_file(path), latent_size, str(Path(path)), scaled=scaled)


def save_direction(direction: np.ndarray, folder: str | os.PathLike, name: str) -> Path:
    """Writes ``folder/direction_<name>.npy`` (float64, the official layout); returns the path.

    ``direction``: a vector ``[latent]`` of finite numbers that a float32 w can be moved along
    (:func:`~alae_fast.edit.apply.direction_problem`; a file :func:`load_direction` reads back); ``name``: letters, digits and ``_ . + -``. ValueError
    naming the argument otherwise."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise ValueError(f"name: use letters, digits and _ . + - only; got {name!r}")
    arr = np.asarray(direction.detach().cpu() if hasattr(direction, "detach") else direction)
    if arr.dtype.kind not in "fiu" or arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"direction: expected a vector [latent] of numbers; got {arr.dtype} of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("direction: holds NaN or infinity (load_direction would refuse it)")
    problem = direction_problem(arr, torch.float32)
    if problem is not None:
        raise ValueError(f"direction: {problem} (load_direction would refuse it)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"direction_{name}.npy"
    np.save(path, np.asarray(direction, dtype=np.float64))
    return path


def official_direction_index(name: str) -> str | None:
    """The official file number of an attribute name of :data:`OFFICIAL_DIRECTION_NAMES`
    ("smile" -> "1"; "big-lips", "big_lips" and "big lips" -> "10"), else None."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    for index, official in OFFICIAL_DIRECTION_NAMES.items():
        if official.replace(" ", "-") == key:
            return index
    return None


def find_direction_file(name: str, folder: str | os.PathLike | None) -> Path | None:
    """``folder/direction_<name>.npy`` (the official layout) or ``folder/<name>.npy``, if present;
    for an official attribute name (``smile``), the official file of its number
    (``direction_1.npy``, :data:`OFFICIAL_DIRECTION_NAMES`)."""
    if folder is None:
        return None
    candidates = [Path(folder) / f"direction_{name}.npy", Path(folder) / f"{name}.npy"]
    index = official_direction_index(name)
    if index is not None:
        candidates.append(Path(folder) / f"direction_{index}.npy")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def fit_direction(w, labels, C: float = 1.0) -> np.ndarray:
    """The official direction fit: ``LinearSVC(C, dual=False, max_iter=10000)`` on (w, labels).

    Args:
        w: ``[N, latent]`` latents (NumPy array or tensor), e.g. encoded images.
        labels: ``[N]`` binary labels (0/1 or bool); label 1 is the direction's positive side.
        C: the SVM's regularisation, a finite number > 0 (default 1.0, the official value).

    Returns ``coef_[0]``: float64 ``[latent]``, not normalised. Raises ValueError when the
    shapes disagree, a label is not 0/1, either class is empty, w is not finite or C is not a
    finite number > 0.
    """
    from sklearn.svm import LinearSVC

    if isinstance(C, bool) or not isinstance(C, (int, float, np.number)) or not math.isfinite(C) or C <= 0:
        raise ValueError(f"C: expected a finite number > 0; got {C!r}")
    x = np.asarray(w.detach().cpu() if hasattr(w, "detach") else w, dtype=np.float64)
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if x.ndim != 2:
        raise ValueError(f"w: expected [N, latent]; got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels: expected shape ({x.shape[0]},) to match w; got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels: expected binary 0/1 labels; got values {sorted(set(y.tolist()))[:5]}")
    y = y.astype(np.int64)
    if y.min() == y.max():
        raise ValueError(f"labels: both classes are needed; all {len(y)} labels are {int(y[0])}")
    if not np.isfinite(x).all():
        raise ValueError("w: has non-finite values")
    svm = LinearSVC(C=float(C), dual=False, max_iter=10000)
    svm.fit(x, y)
    return svm.coef_[0].astype(np.float64)


def fit_class_directions(w, classes, names: Mapping[int, str] | None = None) -> dict[str, np.ndarray]:
    """One direction per class, each fitted class-vs-rest with :func:`fit_direction`.

    ``w`` ``[N, latent]``; ``classes`` ``[N]`` integer class ids (at least two distinct);
    ``names`` maps a class id to its direction name (default ``str(id)``). Raises ValueError
    for fewer than two classes, ``classes`` of another length than w, a class the fit cannot
    tell from the rest (a zero or non-finite direction: its latents are those of the others),
    naming it, and as :func:`fit_direction`.
    """
    y = np.asarray(classes.detach().cpu() if hasattr(classes, "detach") else classes)
    if y.ndim != 1:
        raise ValueError(f"classes: expected a vector [N] of class ids; got shape {y.shape}")
    n = len(w) if hasattr(w, "__len__") else None
    if n is not None and y.shape[0] != n:  # fit_direction would name its own argument, labels
        raise ValueError(f"classes: expected {n} class ids (one per row of w); got {y.shape[0]}")
    ids = sorted(set(y.tolist()))
    if len(ids) < 2:
        raise ValueError(f"classes: need at least two classes; got {ids}")
    names = dict(names or {})
    out = {}
    for c in ids:
        name = names.get(c, str(c))
        out[name] = d = fit_direction(w, (y == c).astype(np.int64))
        if not np.isfinite(d).all() or not d.any():
            raise ValueError(f"class {name!r}: its latents cannot be told apart from the other classes' (the fitted "
                             f"direction is {'all zeros' if np.isfinite(d).all() else 'not finite'}); are its images "
                             f"the same as another class's?")
    return out


def parse_digit_pair(name: str) -> tuple[int, int] | None:
    """(A, B) for a built-in digit direction name ``"A-B"`` with A != B, else None."""
    m = DIGIT_PAIR.match(name)
    if not m or m.group(1) == m.group(2):
        return None
    return int(m.group(1)), int(m.group(2))
