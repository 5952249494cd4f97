"""Attribute editing of a trained run: the work behind ``alae-fast edit`` and ``alae-fast directions``.

- :func:`resolve_directions` turns ``NAME_OR_NPY=AMOUNT`` arguments into vectors and amounts:
  a path to a ``.npy`` file, a name found as ``direction_<name>.npy`` in a directions folder
  (the official layout), or, for a model of the embedded digits' format (1×32×32 … any 1-channel
  model), a built-in digit pair ``"A-B"`` fitted on the spot.
- :func:`edit_strip` decodes one row per image, amounts from −AMOUNT to +AMOUNT (offsets from the
  image's own coefficient, as the official traversal figures; the middle column is the
  reconstruction), from w = E(x) or E(x) refined by descent (``refine_steps``);
  :func:`edit_latents_strip` does it for latents given (:func:`load_latents`: the .npy of
  ``alae-fast encode``).
- :func:`fit_run_directions` fits directions from a folder with one sub-folder per class
  (class-vs-rest, one direction per class), or, without data on a digits model, every digit
  pair A-B with A < B.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import first_line
from ..inference.memory import check_images_fit
from ..inference.projection import DEFAULT_REFINE_LR, check_refinement
from ..ops._dispatch import check_int
from .apply import DEMO_LAYERS, MAX_AMOUNT, _length, edit_w, edited_style_inputs
from .directions import (find_direction_file, fit_class_directions, fit_direction, load_direction,
                         official_direction_index, parse_digit_pair)

__all__ = ["parse_direction_arg", "direction_name", "resolve_directions", "encode_images", "digit_directions",
           "edit_strip", "edit_latents_strip", "load_latents", "strip_fractions", "fit_run_directions", "images_by_class"]


def parse_direction_arg(text: str) -> tuple[str, float]:
    """``"NAME_OR_NPY=AMOUNT"`` → (name or path, amount); the split is at the last ``=``. ValueError
    naming --direction for a missing ``=``, an empty name, or an amount that is not a finite number
    within ±``MAX_AMOUNT``."""
    if "=" not in text:
        raise ValueError(f"--direction: expected NAME_OR_NPY=AMOUNT; got {text!r}")
    spec, amount = text.rsplit("=", 1)
    try:
        value = float(amount)
    except ValueError:
        raise ValueError(f"--direction {text!r}: amount {amount!r} is not a number") from None
    if not np.isfinite(value) or not spec:
        raise ValueError(f"--direction {text!r}: expected a name or file and a finite amount")
    if abs(value) > MAX_AMOUNT:  # edit_w's bound, said here in the flag's terms
        raise ValueError(f"--direction {text!r}: the amount must be within ±{MAX_AMOUNT:g} (the official demo moves "
                         f"by up to ±40)")
    return spec, value


def _names_file(spec: str) -> bool:
    """Whether a --direction's NAME_OR_NPY names a file: a name holds no slash, so with one, or
    ending in .npy, a missing file or a folder is said as such (load_direction), not as an
    unknown name."""
    return spec.endswith(".npy") or Path(spec).is_file() or "/" in spec or os.sep in spec


def direction_name(spec: str) -> str:
    """The name a --direction's NAME_OR_NPY goes by (as :func:`resolve_directions` keys it): a
    file's stem without ``direction_`` (``dirs/direction_3.npy`` -> ``3``; ``direction_.npy``
    keeps its stem, as the web page's sliders name it), else the name itself."""
    if not _names_file(spec):
        return spec
    stem = Path(spec).stem
    return stem.removeprefix("direction_") or stem


@torch.no_grad()
def encode_images(run, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """E(x) of the run's EMA model for full-resolution images ``[N, C, R, R]``: ``[N, latent]`` on the CPU."""
    from ..inference.pixels import prepare_images

    device = next(run.model.parameters()).device
    out = [run.encode(prepare_images(x[i:i + batch], run.schedule, run.phase).to(device)).float().cpu()
           for i in range(0, x.shape[0], batch)]
    return torch.cat(out)


def _is_digits_model(run) -> bool:
    return run.schedule.channels == 1 and run.schedule.resolution >= 8


def digit_directions(run, pairs: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Directions ``"A-B"`` (class A → class B) fitted with the official LinearSVC on the EMA
    encoder's w of the embedded digits' training split (one encoding, one fit per pair)."""
    from ..data import load_digits

    if not _is_digits_model(run):
        raise ValueError(f"digit directions: need a 1-channel model (the embedded digits); this one takes "
                         f"{run.schedule.channels}x{run.schedule.resolution}x{run.schedule.resolution} images")
    x, y = load_digits("train", resolution=run.schedule.resolution)
    w = encode_images(run, x).double().numpy()
    y = y.numpy()
    out = {}
    for a, b in pairs:
        keep = (y == a) | (y == b)
        out[f"{a}-{b}"] = fit_direction(w[keep], (y[keep] == b).astype(np.int64))
    return out


def saved_directions_folder(run) -> Path | None:
    """The folder ``alae-fast directions`` writes by default for ``run`` (a ``LoadedRun``):
    ``directions/`` in its run folder, when the checkpoint is a training run's (in its
    ``checkpoints/``) and the folder holds a .npy file; else None. ``alae-fast edit`` and
    ``serve`` read it when no ``--directions`` is given, and say so, with the checkpoint its files
    were fitted on when that is not the one loaded (:mod:`.provenance`). A checkpoint file elsewhere
    (an official .pth in a downloads folder) has no run folder, and a ``directions/`` beside it
    may be another model's: it is not read unasked."""
    path = Path(run.path)
    if path.parent.name != "checkpoints":
        return None
    folder = path.parent.parent / "directions"
    return folder if folder.is_dir() and any(folder.glob("*.npy")) else None


def _beside_hint(run) -> str:
    """For a checkpoint outside a run's checkpoints/ (whose directions/ is not read unasked): where
    ``alae-fast directions`` wrote them for it, as a flag to give, when that folder holds any."""
    from ..inference.loading import _run_folder

    folder = _run_folder(Path(run.path)) / "directions"
    if saved_directions_folder(run) is None and folder.is_dir() and any(folder.glob("*.npy")):
        return f"; {str(folder)!r} holds .npy directions: give --directions {folder}"
    return ""


def resolve_directions(specs: Sequence[str], run, directions_dir: str | os.PathLike | None = None,
                       refit_pairs: bool = False) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(name → float64 vector, name → amount) for ``--direction`` arguments (module docstring).

    ``refit_pairs`` (default False): on a digits model, a built-in digit pair ``A-B`` given by
    name is fitted on the spot for ``run`` even where ``directions_dir`` holds a file of that
    name (what ``alae-fast edit`` asks when that folder's directions were fitted on another
    checkpoint: :mod:`.provenance`); False reads the file.

    Raises ValueError with one line naming the argument or file: one direction given twice (the
    same name twice, or two names or paths that find the same file, e.g. ``smile`` and ``1``
    for ``direction_1.npy``: its amounts would add up, unseen), an unknown name (saying where
    it was looked for), a digit pair ``A-B`` whose A and B are not two different digits 0-9 (on
    a digits model, where no file of that name was found), a file that is a folder, unreadable,
    of the wrong length or unusable in float32 (:func:`~.directions.parse_direction`), a bad
    amount, or a --directions folder that does not exist or holds no .npy file; FileNotFoundError (``direction file
    'P' does not exist``) for a file argument (ending in .npy, or a path with a slash) that is
    not there.
    """
    from ..errors import check_regular_file

    if not specs:
        raise ValueError("--direction: give at least one NAME_OR_NPY=AMOUNT")
    if directions_dir is not None and not Path(directions_dir).is_dir():
        raise ValueError(f"--directions: {str(directions_dir)!r} is not a folder")
    names = [spec for spec, _ in map(parse_direction_arg, specs) if not _names_file(spec)]
    if directions_dir is not None and names and not any(Path(directions_dir).glob("*.npy")):
        # a name not found there fell through to a built-in digit pair, so the folder given was
        # silently not used (`alae-fast serve --directions` refuses such a folder too)
        raise ValueError(f"--directions: {str(directions_dir)!r} holds no .npy files, where "
                         f"{', '.join(repr(n) for n in names)} would be looked for")
    latent = int(run.model.latent_size)
    vectors: dict[str, np.ndarray] = {}
    amounts: dict[str, float] = {}
    pairs: list[tuple[str, tuple[int, int]]] = []
    given: dict[str, str] = {}  # name -> the argument that gave it
    read: dict[Path, str] = {}  # direction file (resolved) -> the argument that read it

    def once(name: str, text: str, file: Path | None = None) -> None:
        # edit_w removes and re-adds each named direction from the same w: one vector under two
        # names moved w by the sum of their amounts, as one --direction of that sum would
        if name in given:
            raise ValueError(f"--direction {given[name]!r} and {text!r} both give the direction {name!r}; give "
                             f"each direction once")
        given[name] = text
        if file is not None:
            key = file.resolve()
            if key in read:
                raise ValueError(f"--direction {read[key]!r} and {text!r} both name the direction file "
                                 f"{str(file)!r} (their amounts would add up); give each direction once")
            read[key] = text

    for text in specs:
        spec, amount = parse_direction_arg(text)
        path = Path(spec)
        if _names_file(spec):
            name = direction_name(spec)
            if path.exists() and not path.is_dir():  # else read_direction_file says which
                # read whole, /dev/zero would fill the memory and a FIFO wait for a writer
                check_regular_file(path, f"direction file {str(path)!r}", "; give a .npy file (written with "
                                                                          "numpy.save)")
            once(name, text, path if path.is_file() else None)
            vectors[name] = load_direction(path, latent)
        else:
            name = spec
            found = find_direction_file(name, directions_dir)
            if refit_pairs and parse_digit_pair(name) is not None and _is_digits_model(run):
                found = None  # fitted on the spot below, for the checkpoint loaded
            once(name, text, found)
            if found is not None:
                vectors[name] = load_direction(found, latent)
            elif parse_digit_pair(name) is not None and _is_digits_model(run):
                pairs.append((name, parse_digit_pair(name)))
            else:
                index = official_direction_index(name)
                also = f" or direction_{index}.npy (the official {name})" if index is not None else ""
                where = (f"no direction_{name}.npy{also} in {str(directions_dir)!r}" if directions_dir
                         else "no --directions folder" + _beside_hint(run))
                if _is_digits_model(run) and re.fullmatch(r"\d+-\d+", name):  # the A-B form, but 3-3 or 3-10
                    raise ValueError(f"--direction: {name!r} is not a built-in digit pair: A and B must be two "
                                     f"different digits 0-9, e.g. 3-8 ({where}; not a file)")
                builtin = ("built-in digit pairs are A-B with A and B two different digits 0-9, e.g. 3-8"
                           if _is_digits_model(run) else "built-in digit pairs exist only for 1-channel digit models")
                raise ValueError(f"--direction: unknown direction {name!r} ({where}; not a file; {builtin})")
        amounts[name] = amount
    if pairs:
        vectors.update(digit_directions(run, [p for _, p in pairs]))
    return vectors, amounts


def strip_fractions(steps: int) -> list[float]:
    """The ``steps`` (an int >= 2) fractions t of each amount along an edit strip: -1 to 1
    evenly, as ``np.linspace(-1, 1, steps)`` but computed as ``(2k - (steps - 1)) / (steps - 1)``,
    so that the middle of an odd strip is exactly 0 (linspace gives -1.1e-16 there for 99
    steps) and each t is symmetric about it."""
    return [(2 * k - (steps - 1)) / (steps - 1) for k in range(steps)]


@torch.no_grad()
def edit_strip(run, x: torch.Tensor, directions: dict[str, np.ndarray], amounts: dict[str, float],
               steps: int = 7, edit_layers: int | str | None = DEMO_LAYERS, noise: str = "zero",
               seed: int = 0, refine_steps: int = 0, refine_lr: float = DEFAULT_REFINE_LR,
               labels: Mapping[str, str] | None = None) -> torch.Tensor:
    """Rows of edits: for each image of ``x`` (full resolution ``[N, C, R, R]``), ``steps`` images
    with every amount scaled by t from -1 to 1 (:func:`strip_fractions`), as offsets
    (:func:`edit_w`, mode 'offset'), from w = E(x), or with ``refine_steps`` >= 1 from E(x)
    refined by that many steps of descent on G's pixel error (``run.project`` in W, Adam's
    first rate ``refine_lr``; noise as the decodes', seeded with ``seed``), then as
    :func:`edit_latents_strip`. ``steps``: an int >= 2 (default 7). ``edit_layers``: as
    :func:`edit_w`'s, checked against the run's ``num_ws`` before any image is encoded: an int
    1..num_ws, None (all), or ``'demo'`` (default: the official demo's style inputs below 16, all
    of them on a model with 16 or fewer). ``refine_steps`` / ``refine_lr``: as ``run.project``'s
    steps and lr (default 0: ALAE's own E(x)). Returns ``[N·steps, C, r, r]`` float32 on the
    CPU, row by row. Raises TypeError naming ``edit_strip`` and the argument for a ``steps``,
    ``refine_steps`` or ``refine_lr`` of the wrong type, ValueError for a bad value of those or of
    ``edit_layers`` (one above ``num_ws`` names the model's count), for an edit that moves w beyond
    ±MAX_ABS_W (:func:`edit_latents_strip`; ``labels`` as there), or naming the most that fit when the strips' images
    would not fit the memory free now (:func:`~alae_fast.inference.memory.check_images_fit`),
    :func:`edit_w`'s errors for the directions and amounts, and FloatingPointError for a descent
    that reached NaN or infinity."""
    from ..inference.pixels import prepare_images

    steps = _check_steps(steps, "edit_strip")
    refine_steps, refine_lr, _ = check_refinement("edit_strip", refine_steps, refine_lr, "w",
                                                  ("refine_steps", "refine_lr", "space"))
    if isinstance(x, torch.Tensor) and x.ndim == 4:  # else encode says what is wrong with x
        # x encoded at once, then one image decoded at a time, every strip kept on the CPU
        count = x.shape[0] * steps
        check_images_fit(run, "edit_strip", f"steps {steps} with {x.shape[0]} images ({count} images)",
                         batch=x.shape[0], kept=count, kept_on="cpu")
    edited_style_inputs(edit_layers, int(run.model.num_ws))  # said before the work, not after the first encode
    device = next(run.model.parameters()).device
    x = prepare_images(x, run.schedule, run.phase).to(device)
    if refine_steps:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # the descent's noise, when drawn, repeats as the decodes' does
            w = run.project(x, refine_steps, refine_lr, space="w", noise=noise)
    else:
        w = run.encode(x)
    return edit_latents_strip(run, w, directions, amounts, steps=steps, edit_layers=edit_layers, noise=noise,
                              seed=seed, labels=labels)


def _check_steps(steps, op: str) -> int:
    """``steps`` as an int >= 2 (a strip's images): TypeError naming ``op`` for another type,
    ValueError for a smaller int."""
    return check_int(steps, "steps", op, minimum=2)


@torch.no_grad()
def edit_latents_strip(run, w: torch.Tensor, directions: dict[str, np.ndarray], amounts: dict[str, float],
                       steps: int = 7, edit_layers: int | str | None = DEMO_LAYERS, noise: str = "zero",
                       seed: int = 0, labels: Mapping[str, str] | None = None) -> torch.Tensor:
    """:func:`edit_strip` from latents: for each w of ``w`` (``[N, latent]``, a float tensor, e.g.
    ``run.encode`` or ``run.project``'s, or :func:`load_latents`'), ``steps`` images with every
    amount scaled by t from -1 to 1 (:func:`strip_fractions`) as offsets (:func:`edit_w`, mode
    'offset': an odd strip's middle image is G(w)). Each image is decoded with the same noise
    (``noise='random'`` reseeded with ``seed`` before each decode, as the demo with "Randomize
    noise" off; 'zero': none). Returns ``[N·steps, C, r, r]`` float32 on the CPU, row by row.
    Raises as :func:`edit_strip`, naming ``edit_latents_strip``, and, before anything is decoded,
    ValueError when an end of a strip (t = ±1; the edit is linear in t) moves w beyond
    ±MAX_ABS_W (1e4, what ``run.decode`` refuses; an encoded w lies within about ±10): the
    message names each direction (by ``labels[name]``, a dict name -> how the caller names it,
    e.g. ``"--direction 'd.npy=2' (direction file 'd.npy')"``; default ``directions[name]``), its
    length and how far its amount moves w, and what was expected."""
    steps = _check_steps(steps, "edit_latents_strip")
    m = run.model
    edited_style_inputs(edit_layers, int(m.num_ws))
    device = next(m.parameters()).device
    if isinstance(w, torch.Tensor) and w.ndim == 2:  # else edit_w says what is wrong with w
        count = w.shape[0] * steps
        check_images_fit(run, "edit_latents_strip", f"steps {steps} with {w.shape[0]} latents ({count} images)",
                         batch=1, kept=count, kept_on="cpu")
        w = w.to(device, torch.float32)
        _check_reach(w, directions, amounts, edit_layers, m, labels)
    rows = []
    for t in strip_fractions(steps):
        ws = edit_w(w, directions, {k: float(t) * a for k, a in amounts.items()}, m.w_avg, int(m.num_ws),
                    edit_layers=edit_layers, mode="offset")
        imgs = []
        for i in range(ws.shape[0]):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                imgs.append(run.decode(ws[i:i + 1], noise=noise).float().cpu())
        rows.append(torch.cat(imgs))
    return torch.stack(rows, 1).flatten(0, 1)


def _check_reach(w: torch.Tensor, directions, amounts, edit_layers, model, labels) -> None:
    """ValueError (see :func:`edit_latents_strip`) when either end of the strips (every amount
    times -1 or +1) moves ``w`` beyond ±MAX_ABS_W; nothing is decoded before this is known."""
    from ..limits import MAX_ABS_W

    for t in (-1.0, 1.0):
        ws = edit_w(w, directions, {k: t * a for k, a in amounts.items()}, model.w_avg, int(model.num_ws),
                    edit_layers=edit_layers, mode="offset")
        big = float(ws.abs().amax())
        if big <= MAX_ABS_W:
            continue
        said = []
        for name, a in sorted(amounts.items(), key=lambda kv: -abs(float(kv[1])) * _largest(directions[kv[0]])):
            d = _vector(directions[name])
            label = (labels or {}).get(name, f"directions[{name!r}]")
            said.append(f"{label} has length {_length(d):.3g} (largest value {float(d.abs().max()):.3g}): amount "
                        f"{float(a):g} moves w by up to {abs(float(a)) * float(d.abs().max()):.3g}")
        raise ValueError(f"{'; '.join(said)}; the edited w reaches {big:.3g}, beyond ±{MAX_ABS_W:g}, where G "
                         f"overflows and decode refuses it (an encoded w lies within about ±10): expected directions "
                         f"of length about 1 (as alae-fast directions fits them) or a smaller amount")
    _warn_far_moves(w, directions, amounts, model, labels)


# How far an edit may move w, in spreads of w, before it is warned of. An edit moves w by
# |amount| · |d| at a strip's ends; G was trained on w = F(z) and E(x), which lie within about one
# spread of w_avg (the spread: the farthest of the w edited from w_avg, and at least sqrt(latent),
# the length of a w one unit from w_avg in every coordinate, F's outputs being of order 1 each).
# Ten times that is far outside anything G has seen: the pictures saturate (black and white
# blobs). Fitted directions stay well within it (alae-fast directions' digit pairs, length up to
# about 6, at amount 2 move w about 12 where the spread of a latent-8 model is about 3-4; the
# official FFHQ ones, 0.63-1.19 long, at the README's amount 20 move w about 24 where sqrt(512)
# is 22.6), while a hand-made np.full(20, 1e3) (length 4472) at amount 2 moves it 8944: below the
# ±MAX_ABS_W refusal, yet all saturated. Warned, not refused: an extrapolation may be wanted.
FAR_MOVE_SPREADS = 10.0


def _warn_far_moves(w: torch.Tensor, directions, amounts, model, labels) -> None:
    """A RuntimeWarning for each direction whose amount moves ``w`` by more than
    :data:`FAR_MOVE_SPREADS` spreads of w (see there), naming it (``labels`` as
    :func:`edit_latents_strip`'s), its length, the move, and a smaller amount or a normalised
    direction to give instead."""
    rows = w.detach().double().cpu().reshape(w.shape[0], -1)
    centre = model.w_avg.detach().double().cpu().reshape(-1)
    farthest = float((rows - centre).norm(dim=1).max()) if rows.shape[0] else 0.0
    spread = max(farthest, float(rows.shape[1]) ** 0.5)
    for name, a in amounts.items():
        length = _length(_vector(directions[name]))
        move = abs(float(a)) * length
        if not move > FAR_MOVE_SPREADS * spread:
            continue
        label = (labels or {}).get(name, f"directions[{name!r}]")
        warnings.warn(f"{label} has length {length:.3g}: amount {float(a):g} moves w by {move:.3g}, more than "
                      f"{FAR_MOVE_SPREADS:g} times the spread of w here ({spread:.3g}, how far the w edited lie "
                      f"from w_avg), far outside the latents G was trained on: the strip's ends will be saturated "
                      f"blobs. Fitted directions have lengths of about 1 (alae-fast directions' up to about 6): give "
                      f"a smaller amount (about {spread / length:.3g} moves w by one spread) or a normalised "
                      f"direction (d / |d|)", RuntimeWarning, stacklevel=4)


def _vector(d) -> torch.Tensor:
    return torch.as_tensor(np.asarray(d) if not isinstance(d, torch.Tensor) else d).detach().double().cpu()


def _largest(d) -> float:
    t = _vector(d)
    return float(t.abs().max()) if t.numel() else 0.0


def _refuse_zip(p: Path, said: str, wanted: str, latent_size: int) -> None:
    """ValueError saying what the zip archive ``p`` is: an .npz (several arrays), a torch
    checkpoint (torch.save writes a zip whose entries end in data.pkl) or another archive."""
    try:
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        raise ValueError(f"{said} is a damaged zip archive ({first_line(e)}); {wanted}") from None
    if names and all(n.endswith(".npy") for n in names):
        raise ValueError(f"{said} is an .npz archive; expected one array [N, {latent_size}] (.npy)")
    what = "a torch checkpoint" if any(n.endswith("data.pkl") for n in names) else "a zip archive"
    raise ValueError(f"{said} is {what}, not a NumPy .npy array; {wanted}")


def load_latents(path: str | os.PathLike, latent_size: int) -> torch.Tensor:
    """The latents of a ``.npy`` file as ``alae-fast encode`` writes them (a float array ``[N,
    latent_size]``, one w a row) as a float32 tensor, for :func:`edit_latents_strip`. Raises
    FileNotFoundError for a missing file and ValueError naming the file (as ``--latents``) for a
    folder, a device or FIFO, an empty file, a file that is no .npy (saying what it is: an image,
    text, a pickle, a torch checkpoint, an .npz ...), an array of Python objects (never
    unpickled), another shape (w+ latents ``[N, num_ws, latent]`` included: an edit moves one
    w), no rows, a dtype other than a float one, values that are NaN or infinite, or beyond
    ±``MAX_ABS_W`` (what ``LoadedRun.decode`` and the web service refuse: an encoded w lies
    within about ±10)."""
    from ..inference.loading import _not_a_checkpoint
    from ..errors import check_regular_file
    from ..limits import MAX_ABS_W

    p = Path(path)
    said = f"--latents {str(p)!r}"
    wanted = "expected the .npy file alae-fast encode writes"
    if p.is_dir():
        raise ValueError(f"{said} is a folder; give the .npy file alae-fast encode wrote")
    check_regular_file(p, said, f"; {wanted}")
    # By its first bytes, before NumPy: for anything but a .npy, np.load's refusal is "contains
    # pickled (object) data" with advice to load it unsafely, wrong for an image or text and unsafe.
    try:
        with open(p, "rb") as f:
            head = f.read(6)
        if not head:
            raise ValueError(f"{said} is empty (0 bytes); {wanted}")
        if head[:1] == b"\x80":
            raise ValueError(f"{said} is a Python pickle (a legacy torch checkpoint is one), not a NumPy .npy "
                             f"array; {wanted}")
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # a zip's first entry, or an empty zip
            _refuse_zip(p, said, wanted, latent_size)
        # a .npy, or the start of one cut short (np.load says where it ends)
        kind = None if b"\x93NUMPY".startswith(head[:6]) else _not_a_checkpoint(p)
    except OSError as e:
        raise ValueError(f"{said} cannot be read ({e.strerror or first_line(e)})") from None
    if kind is not None:  # an image, JSON, text, another binary: said as --ckpt says it
        raise ValueError(f"{said} is {kind}, not a NumPy .npy array; {wanted}")
    try:
        a = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        if "allow_pickle" in str(e):  # NumPy's advice would have the file's objects unpickled
            raise ValueError(f"{said} holds an array of Python objects, which is not loaded (unpickling could "
                             f"run code the file carries); {wanted}") from None
        raise ValueError(f"{said} could not be read as a NumPy array ({first_line(e)}); {wanted}") from e
    if not isinstance(a, np.ndarray):  # an .npz NumPy knew by a zip signature the checks above do not
        a.close()
        raise ValueError(f"{said} is an .npz archive; expected one array [N, {latent_size}] (.npy)")
    expected = f"expected float latents [N, {latent_size}] (one w a row, as alae-fast encode writes them)"
    if a.ndim == 3 and a.shape[-1] == latent_size:
        raise ValueError(f"{said}: shape {a.shape} holds w+ latents (one w per style input, encode --space w+); "
                         f"an edit moves one w per image: {expected}")
    if a.ndim != 2 or a.shape[1] != latent_size or a.shape[0] < 1:
        raise ValueError(f"{said}: shape {a.shape}; {expected}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{said}: dtype {a.dtype}; {expected}")
    a = a.astype(np.float32)
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"{said}: row {int(np.nonzero(bad.any(1))[0][0])} holds NaN or infinity (in float32)")
    big = float(np.abs(a).max())
    if big > MAX_ABS_W:
        raise ValueError(f"{said}: values must be within ±{MAX_ABS_W:g} (an encoded w lies within about ±10); "
                         f"got {big:g}")
    return torch.from_numpy(a)


def images_by_class(folder: str | os.PathLike, resolution: int,
                    channels: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Images of ``folder/<class>/*`` (PNG/JPEG, center-cropped and resized, [-1, 1]) with their
    class ids and the sorted class names. Each class folder is scanned once; a sub-folder
    without readable images is skipped with a RuntimeWarning. Raises ValueError when ``folder``
    is not a folder or holds fewer than two class folders of images."""
    from ..data import ImageFolderDataset

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--data: {str(root)!r} is not a folder")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    xs, ys, kept = [], [], []
    for name in names:
        try:
            # one scan a class, its left-out formats said as what this command reads
            ds = ImageFolderDataset(root / name, resolution=resolution, channels=channels, reader="directions --data")
        except ValueError as e:  # a folder without readable images is not a class: said, not dropped unseen
            warnings.warn(f"--data: sub-folder {name!r} skipped: it is not a class of images ({first_line(e)})",
                          RuntimeWarning, stacklevel=2)
            continue
        xs.append(ds.get_batch(torch.arange(len(ds)))[0])
        ys.append(np.full(len(ds), len(kept)))
        kept.append(name)
    if len(kept) < 2:
        raise ValueError(f"--data: {str(root)!r} needs at least two sub-folders of images, one per class; "
                         f"found {kept}")
    return torch.cat(xs), np.concatenate(ys), kept


def fit_run_directions(run, data: str | os.PathLike | None) -> dict[str, np.ndarray]:
    """Directions for a run: class-vs-rest per sub-folder of ``data`` (named after the folder),
    or, with ``data=None`` on a digits model, every digit pair ``"A-B"`` with A < B."""
    if data is None:
        if not _is_digits_model(run):
            raise ValueError("--data: give a folder with one sub-folder of images per class (the built-in "
                             "digit directions need a 1-channel digits model)")
        return digit_directions(run, [(a, b) for a in range(10) for b in range(a + 1, 10)])
    x, y, names = images_by_class(data, run.schedule.resolution, run.schedule.channels)
    w = encode_images(run, x).double().numpy()
    return fit_class_directions(w, y, dict(enumerate(names)))
