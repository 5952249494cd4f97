"""Which checkpoint a folder of directions was fitted on: the record ``alae-fast directions`` writes.

W changes with every checkpoint of a run (E, F and w_avg all move with training), so a direction
fitted on one checkpoint need not point along its attribute in another: after ``alae-fast train
--resume``, a run's ``directions/`` fitted on the older checkpoint would move the edits of the
newer one along the wrong line, without a word. ``alae-fast directions`` therefore writes
:data:`RECORD_NAME` beside its ``.npy`` files, one entry per file::

    {"about": "...", "files": {"direction_3-8.npy": {"checkpoint": "ckpt-000208.pt",
        "path": "/runs/frun/checkpoints/ckpt-000208.pt", "kimg": 0.208, "setup": "digits-mlp",
        "fingerprint": "sha256:...", "sha256": "..."}}}

``fingerprint`` is :func:`model_fingerprint` of the model the directions were fitted on (a hash
of its weights' shapes and of a strided sample of every weight, w_avg whole): it does not depend
on the file's name, place, size or time, so a copied or moved checkpoint still matches and a
retrained one of the same name does not. ``sha256`` is the hash of the ``.npy`` file written, so
that a file replaced by hand afterwards is not claimed to be the fitted one.

:func:`provenance` reads the record for the directions a command is about to use and says which
of three cases holds: fitted on the checkpoint loaded (``"same"``), on another (``"other"``, with
that checkpoint's name and kimg), or not known (``"unknown"``: no record, a file it does not
list, a file changed since, an unreadable record).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["RECORD_NAME", "model_fingerprint", "checkpoint_entry", "write_record", "read_record", "Provenance",
           "provenance", "describe_checkpoint", "files_said", "newest_of_run", "own_directions_folder",
           "refit_advice"]

RECORD_NAME = "fitted_on.json"

# values sampled from each weight for the fingerprint: every weight is moved by each optimiser
# step, so a sample tells two checkpoints apart at a cost independent of the model's size
_SAMPLE = 1024


def model_fingerprint(model: torch.nn.Module) -> str:
    """``"sha256:<hex>"`` of ``model``'s ``state_dict()``: each entry's name, shape, and up to 1024
    values taken at an even stride (w_avg and every smaller tensor whole), as float64, so the
    same weights give the same fingerprint on any device and in any float dtype they are held
    in. Raises TypeError unless ``model`` has a ``state_dict``."""
    if not hasattr(model, "state_dict"):
        raise TypeError(f"model: expected a torch.nn.Module; got {type(model).__name__}")
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):
            continue
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // _SAMPLE)
        sample = flat[::step][:_SAMPLE]
        if sample.is_floating_point() or sample.is_complex():
            sample = sample.to("cpu", torch.float64)
        else:
            sample = sample.to("cpu", torch.int64)
        h.update(f"{name}{tuple(t.shape)}{flat.numel()}".encode())
        h.update(sample.contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def describe_checkpoint(name: str | None, kimg) -> str:
    """``"ckpt-000208.pt (0.208 kimg)"``; the name alone where kimg is not known (None)."""
    name = name or "an unnamed checkpoint"
    return name if kimg is None else f"{name} ({kimg:g} kimg)"


def checkpoint_entry(run) -> dict:
    """What the record says of the checkpoint of ``run`` (a ``LoadedRun``): its file's name and
    path, kimg (None for an official checkpoint), setup and :func:`model_fingerprint` of
    ``run.model`` (the model the directions are fitted with)."""
    path = Path(run.path)
    return {"checkpoint": path.name, "path": str(path.resolve()), "kimg": run.kimg, "setup": str(run.setup),
            "fingerprint": model_fingerprint(run.model)}


def _file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def read_record(folder: str | os.PathLike) -> dict | None:
    """The ``files`` table of ``folder``'s record (file name -> entry), or None when there is no
    record or it is not one (unreadable, not JSON, another shape): then nothing is known."""
    try:
        data = json.loads((Path(folder) / RECORD_NAME).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, dict)}


def write_record(folder: str | os.PathLike, run, paths) -> Path:
    """Records in ``folder``/:data:`RECORD_NAME` that the direction files ``paths`` (in
    ``folder``, just written) were fitted on the checkpoint of ``run``; entries of other files
    already recorded there are kept (a file rewritten gets its new entry). Returns the record's
    path. Raises OSError when the record cannot be written."""
    folder = Path(folder)
    files = read_record(folder) or {}
    entry = checkpoint_entry(run)
    for p in paths:
        p = Path(p)
        files[p.name] = dict(entry, sha256=_file_hash(p))
    files = {k: v for k, v in sorted(files.items()) if (folder / k).is_file()}
    record = folder / RECORD_NAME
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps({"about": "written by alae-fast directions: the checkpoint each direction file here "
                                        "was fitted on (alae-fast edit and serve compare it with the one loaded)",
                               "files": files}, indent=1) + "\n")
    os.replace(tmp, record)
    return record


@dataclass
class Provenance:
    """Where the direction files asked about come from.

    status: ``"same"`` (every file recorded as fitted on the checkpoint loaded), ``"other"`` (at
    least one fitted on another checkpoint: ``others`` maps those files' names to that
    checkpoint, :func:`describe_checkpoint`), or ``"unknown"`` (at least one file not recorded,
    or changed since, and none of another checkpoint); ``unknown``: those files' names;
    ``loaded``: the checkpoint loaded, described."""
    status: str
    loaded: str
    others: dict = field(default_factory=dict)
    unknown: list = field(default_factory=list)

    def other_checkpoints(self) -> str:
        """The other checkpoints named once each, joined with ' and '."""
        return " and ".join(dict.fromkeys(self.others.values()))


def provenance(paths, run) -> Provenance:
    """Which checkpoint the direction files ``paths`` were fitted on, compared with ``run``'s (a
    ``LoadedRun``), from the record in each file's folder (module docstring). A file is of the
    loaded checkpoint when its entry's fingerprint is :func:`model_fingerprint` of ``run.model``;
    of another when the fingerprints differ; unknown without a record, without an entry, or when
    the file's bytes are no longer those recorded."""
    loaded = describe_checkpoint(Path(run.path).name, run.kimg)
    mine = None
    others, unknown = {}, []
    records: dict[Path, dict | None] = {}
    for p in paths:
        p = Path(p)
        folder = p.parent
        if folder not in records:
            records[folder] = read_record(folder)
        entry = (records[folder] or {}).get(p.name)
        if entry is None or entry.get("sha256") != _file_hash(p) or not isinstance(entry.get("fingerprint"), str):
            unknown.append(p.name)
            continue
        if mine is None:
            mine = model_fingerprint(run.model)
        if entry["fingerprint"] != mine:
            name = entry.get("checkpoint") if isinstance(entry.get("checkpoint"), str) else None
            kimg = entry.get("kimg") if isinstance(entry.get("kimg"), (int, float)) else None
            said = describe_checkpoint(name, kimg)
            if said == loaded:  # the same name and kimg, other weights: a run trained again
                said += ", other weights than the one loaded of that name"
            others[p.name] = said
    status = "other" if others else "unknown" if unknown else "same"
    return Provenance(status, loaded, others, unknown)


def files_said(names, limit: int = 3) -> str:
    """File names for a message: all of them up to ``limit``, else the first ``limit`` and how
    many in all (``"direction_0-1.npy, direction_0-2.npy, direction_0-3.npy, ... (45 files)"``)."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])}, ... ({len(names)} files)"


def newest_of_run(path: str | os.PathLike) -> Path | None:
    """The newest checkpoint of the run whose ``checkpoints/`` holds ``path`` (what ``--ckpt RUN``
    loads, and what ``alae-fast directions --ckpt RUN`` fits the run's ``directions/`` on), or
    None when ``path`` is not in a run's ``checkpoints/`` or it lists none."""
    from ..training.checkpoint import list_checkpoints

    path = Path(path)
    if path.parent.name != "checkpoints":
        return None
    listed = list_checkpoints(path.parent)
    return Path(listed[-1][1]) if listed else None


def own_directions_folder(path: str | os.PathLike) -> Path:
    """``<run folder>/directions-<checkpoint stem>`` for the checkpoint ``path`` in a run's
    ``checkpoints/``: where directions fitted on an older checkpoint of the run go (``alae-fast
    directions --out``), apart from the run's ``directions/``, its newest checkpoint's."""
    path = Path(path)
    return path.parent.parent / f"directions-{path.stem}"


def refit_advice(run, ckpt=None) -> str:
    """The command that refits directions for the checkpoint of ``run`` (a ``LoadedRun``;
    ``ckpt``: how the user named it, default ``run.path``).

    ``alae-fast directions --ckpt CKPT`` writes into the run's ``directions/``, which ``edit`` and
    ``serve`` read for the run's newest checkpoint: for that one it is the advice. For an older
    checkpoint of the run it would replace the newest one's directions, and ``edit --ckpt RUN``
    would then warn and refit; the advice is an ``--out`` folder of its own,
    :func:`own_directions_folder`, given to edit with ``--directions``."""
    path = Path(run.path)
    ckpt = str(path if ckpt is None else ckpt)
    newest = newest_of_run(path)
    if newest is None or newest.resolve() == path.resolve():
        return f"alae-fast directions --ckpt {ckpt}"
    folder = own_directions_folder(path)
    return (f"alae-fast directions --ckpt {ckpt} --out {folder}, then edit with --directions {folder}; not into "
            f"the run's directions/, which holds its newest checkpoint's, {newest.name}")
