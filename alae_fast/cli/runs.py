"""Opening a run for a command (``--ckpt``), and where and whether its outputs can be written
(``--out``, ``--outdir``), checked before any work."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError, first_line


def _run_folder(ckpt_path: Path) -> Path:
    """:func:`alae_fast.inference.loading._run_folder`, where a command's outputs go by default
    (imported when a command runs: the CLI's module level stays torch-free)."""
    from ..inference.loading import _run_folder as run_folder

    return run_folder(ckpt_path)


def _out(args, run, default_name: str) -> Path:
    return Path(args.out) if args.out else _run_folder(run.path) / default_name


def data_file(run, prefix: str, data, suffix: str, recorded=None) -> Path:
    """``<run folder>/<prefix>-<name><suffix>``: where a command writes by default what it made of
    data other than the run's own, named for the folder (``digits`` for the embedded digits), so
    that the run's own file (``<prefix><suffix>``) is not replaced by another folder's; ``evaluate``
    (``evaluate-<name>.json``) and ``reconstruct`` (``reconstructions-<name>.png``) share the rule.

    ``data``: a ``--data`` path (None: the digits) or its :func:`~alae_fast.data.spec.data_spec`.
    ``recorded``: None, or a function giving the data spec a file at a path records (None when
    it records none, or is missing): when ``<prefix>-<name><suffix>`` holds what was made of
    other data of the same name (another folder called so), a short hash of the data's path is
    added: ``<prefix>-<name>-<8 hex digits><suffix>``."""
    import hashlib
    import re

    from ..data.spec import data_spec

    spec = data if isinstance(data, dict) else data_spec(data)
    stem = "digits" if spec.get("kind") == "digits" else Path(spec.get("path") or "data").name
    stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", stem).strip("._") or "data"
    folder = _run_folder(run.path)
    path = folder / f"{prefix}-{stem}{suffix}"
    if recorded is not None and recorded(path) not in (None, spec):
        digest = hashlib.md5(str(spec.get("path")).encode()).hexdigest()[:8]
        path = folder / f"{prefix}-{stem}-{digest}{suffix}"
    return path


# The PNG text chunk in which reconstruct records which data its reconstructions-<name>.png shows
# (their data_spec, as JSON), so that another folder of the same name gets a file of its own.
_PNG_DATA_KEY = "alae-fast-data"


def mark_png_data(path: Path, spec: dict) -> None:
    """Records ``spec`` in the PNG ``path`` as a text chunk (read back by :func:`png_data`),
    written again by Pillow with the same pixels. Nothing for a file that is not a PNG."""
    import json
    import os

    from PIL import Image, PngImagePlugin

    with Image.open(path) as img:
        if img.format != "PNG":
            return
        img.load()
        info = PngImagePlugin.PngInfo()
        info.add_text(_PNG_DATA_KEY, json.dumps(spec, sort_keys=True))
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        img.save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)


def png_data(path: Path) -> dict | None:
    """The data spec :func:`mark_png_data` recorded in the PNG ``path``; None when it is missing,
    unreadable, not a PNG, or records none (written before reconstruct recorded it)."""
    import json

    from PIL import Image

    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}).get(_PNG_DATA_KEY) if img.format == "PNG" else None
    except (OSError, ValueError, SyntaxError):
        return None
    try:
        spec = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return spec if isinstance(spec, dict) else None


# What each command writes to --out / --outdir: a file of that suffix (or of one of those
# suffixes), or a folder (None).
_OUT_KINDS = {"generate": ".png", "reconstruct": ".png", "interpolate": ".png", "style-mix": ".png",
              "edit": ".png", "evaluate": ".json", "convert": (".pt", ".pth"), "train": None, "directions": None,
              "encode": ".npy"}


_OUT_SAID = {".png": "pictures are written as PNG", ".json": "the metrics are written as JSON",
             ".npy": "the latents are written in NumPy's .npy format",
             (".pt", ".pth"): "the checkpoint is written with torch.save"}


def _probe_writable(flag: str, path: Path, folder: Path) -> None:
    """UserError naming ``flag`` unless ``folder`` could be made and written in: its nearest
    existing ancestor is a folder that takes a file. Nothing is created (a temporary probe file
    is removed at once), so a command refused later leaves no empty folders."""
    import tempfile

    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".alae-fast-probe-"):
            pass
    except OSError as e:
        raise UserError(f"{flag} {str(path)!r}: cannot write there ({e.strerror or first_line(e)})") from None


def _check_outputs(args) -> None:
    """Refuses, before any work, a --out/--outdir that cannot be written as the command writes
    it: a folder where a file goes (or the reverse), a file not named as what is written there
    (PIL would write PNG bytes under any name, torch.save a checkpoint under a picture's), a
    place that cannot be created or written."""
    kind = _OUT_KINDS.get(args.command, "absent")
    out = getattr(args, "out", None)
    if out is not None and kind != "absent":
        if not out.strip():  # Path('') is '.', the current folder: refused as "a folder", or trained into
            raise UserError(f"--out {out!r} is {'empty' if not out else 'only spaces'}; give "
                            f"{'a folder' if kind is None else 'a file name'}, or omit --out for the "
                            f"default")
        path = Path(out)
        if kind is None:  # a folder
            if path.exists() and not path.is_dir():
                raise UserError(f"--out {out!r} is a file; {args.command} writes a folder there")
            _probe_writable("--out", path, path)
        else:
            suffixes = (kind,) if isinstance(kind, str) else kind
            if path.is_dir():  # a symlink to a folder too: the write would replace the link
                raise UserError(f"--out {out!r} is a folder; give a file name (e.g. "
                                f"{str(path / ('output' + suffixes[0]))!r})")
            if path.suffix.lower() not in suffixes:
                raise UserError(f"--out {out!r}: {_OUT_SAID[kind]}; give a name ending in "
                                f"{' or '.join(suffixes)}")
            _probe_writable("--out", path, path.parent)
    outdir = getattr(args, "outdir", None)
    if outdir is not None:
        if not outdir.strip():
            raise UserError(f"--outdir {outdir!r} is {'empty' if not outdir else 'only spaces'}; give a folder, or "
                            f"omit --outdir for the default")
        path = Path(outdir)
        if path.exists() and not path.is_dir():
            raise UserError(f"--outdir {outdir!r} is a file; give a folder (it gets one seedNNNN.png per seed)")
        _probe_writable("--outdir", path, path)


def _say_older_checkpoint(given: str, run) -> None:
    """One line on stderr naming the checkpoint used when ``given`` is a run folder whose newest
    checkpoint did not load: the library warns of each one skipped ("trying an older one"), and
    without this the user never learnt which one the pictures or metrics came from."""
    from ..training.checkpoint import list_checkpoints

    if not Path(given).is_dir():
        return
    listed = list_checkpoints(run.path.parent)
    if listed and Path(listed[-1][1]).resolve() != Path(run.path).resolve():
        print(f"alae-fast: warning: using the older checkpoint {run.path} (the newest loadable one)",
              file=sys.stderr)


def open_run(args):
    from ..inference.loading import load_run

    from ..models import MLPALAEConfig

    mode = getattr(args, "noise_mode", None)
    try:
        run = load_run(args.ckpt, args.device, config=args.config, ema=not args.no_ema, noise_mode=mode or "zero")
    except ImportError as e:  # --config without PyYAML: say how to get it, in one line
        raise ValueError(str(e)) from None
    _say_older_checkpoint(args.ckpt, run)
    if mode in ("random", "batch", "const") and isinstance(run.config, MLPALAEConfig):
        raise UserError(f"--noise-mode {mode}: {run.path} is an MLP ALAE, whose G has no noise inputs "
                        f"(its pictures are the same in every noise mode)")
    return run
