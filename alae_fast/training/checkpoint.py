"""Crash-safe checkpoints: atomic writes, keep-last-K, and finding the newest loadable one.

A checkpoint ``<dir>/<prefix>-<step:010d>.pt`` comes into existence only complete:

1. ``torch.save`` writes to a temporary file in the same folder
   (``.<prefix>-<step>.pt.tmp-<pid>``), which is flushed and ``fsync``-ed;
2. ``os.replace`` renames it to the final name (atomic on POSIX within one file system);
3. the folder is ``fsync``-ed so the rename itself survives a power cut.

So ``kill -9`` (or a crash, or a full disk) at any moment leaves either the previous set of
complete checkpoints, or that set plus the new one - plus at worst a stray temporary file,
which is never taken for a checkpoint and is removed by the next save. Older checkpoints
are deleted only after the new one is in place, keeping the newest ``keep``.

:func:`find_latest_checkpoint` still *loads* candidates newest-first and skips any that
fail (a file damaged some other way, e.g. copied half-way), warning for each.

A file can also be damaged without failing to load: torch's zip reader does not compare the
CRC-32 that ``torch.save`` stores for each entry, so bytes flipped inside a tensor's data (a
bad disk, a faulty copy) load as other weights or NaN. :func:`checkpoint_damage` compares
them (one sequential read of the file), and every reader here runs it first:
:func:`load_checkpoint` refuses a damaged file, :func:`find_latest_checkpoint` (what
``--resume`` and a run folder use) skips it, as it skips a truncated one.

One writer per folder: in a distributed run only rank 0 saves.

Checkpoints are read with ``torch.load(weights_only=True)`` by default, which refuses
arbitrary pickled objects; store tensors, numbers, strings and lists/dicts/tuples of them.
:func:`capture_rng_state` returns the random-generator states in exactly such types.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_checkpoint", "list_checkpoints", "find_latest_checkpoint", "load_checkpoint", "checkpoint_damage",
           "capture_rng_state", "restore_rng_state"]



def checkpoint_damage(path: str | os.PathLike, chunk: int = 1 << 22) -> str | None:
    """:func:`alae_fast.zip_integrity.checkpoint_damage` (what is damaged in ``path``'s zip
    archive, None when intact), imported when called: a test loads this file on its own, with
    no package around it, to time a save in a fresh process."""
    from ..zip_integrity import checkpoint_damage as damage

    return damage(path, chunk)


def _pattern(prefix: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(prefix)}-(\d+)\.pt$")


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder for fsync; rename durability is its own
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_prefix(prefix: str) -> None:
    if not prefix or "/" in prefix or os.sep in prefix or prefix.startswith("."):
        raise ValueError(f"prefix: expected a plain file-name prefix, got {prefix!r}")


def list_checkpoints(directory: str | os.PathLike, prefix: str = "ckpt") -> list[tuple[int, Path]]:
    """Complete checkpoints in ``directory`` as ``(step, path)``, oldest first (empty if none)."""
    _check_prefix(prefix)
    d = Path(directory)
    if not d.is_dir():
        return []
    pat = _pattern(prefix)
    found = []
    for p in d.iterdir():
        m = pat.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(state: dict[str, Any], directory: str | os.PathLike, step: int, keep: int = 3,
                    prefix: str = "ckpt") -> Path:
    """Atomically write ``state`` as checkpoint ``step`` and keep only the newest ``keep``.

    Args:
        state: what to save (anything ``torch.save`` takes; see the module docstring on
            ``weights_only`` loading).
        directory: the run's checkpoint folder (created if missing).
        step: a non-negative int that orders checkpoints (e.g. images seen, or iteration);
            saving the same step again replaces that checkpoint atomically.
        keep: how many checkpoints to keep (>= 1); older ones are deleted after the new
            one is durable.
        prefix: file-name prefix (default ``"ckpt"``).

    Returns:
        The final path, ``<directory>/<prefix>-<step:010d>.pt``.
    """
    _check_prefix(prefix)
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step: expected a non-negative int, got {step!r}")
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep: expected an int >= 1, got {keep!r}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{prefix}-{int(step):010d}.pt"
    tmp = d / f".{final.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        # leave no half-written file behind on an ordinary error (kill -9 never gets here)
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(d)
    _cleanup(d, prefix, keep)
    return final


def _cleanup(d: Path, prefix: str, keep: int) -> None:
    ckpts = list_checkpoints(d, prefix)
    for _, p in ckpts[:-keep]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    # temporary files of earlier writers that were killed mid-write
    stale = re.compile(rf"^\.{re.escape(prefix)}-\d+\.pt\.tmp-\d+$")
    for p in d.iterdir():
        if stale.match(p.name):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` a checkpoint after :func:`checkpoint_damage` found it intact.

    ``weights_only=False`` allows arbitrary pickles: only for files you trust. Raises
    IsADirectoryError for a folder, FileNotFoundError for a missing file, UserError for a path
    that is no regular file (a device, a FIFO: :func:`~alae_fast.errors.check_regular_file`),
    :class:`~alae_fast.errors.UserError` (a ValueError) naming the file when it is damaged (cut
    short, or an entry whose bytes no longer match their stored CRC-32), and whatever
    ``torch.load`` raises for a file that is no checkpoint."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"checkpoint {str(p)!r} is a folder; give a ckpt-*.pt file")
    from ..errors import check_regular_file  # imported here: see _why_unreadable

    check_regular_file(p, f"checkpoint {str(p)!r}", "; give a ckpt-*.pt file")
    damage = checkpoint_damage(p)
    if damage is not None:
        from ..errors import UserError  # imported here: see _why_unreadable

        raise UserError(f"checkpoint {str(p)!r} is damaged ({damage})")
    return torch.load(p, map_location=map_location, weights_only=weights_only)


def _why_unreadable(path: Path, exc: BaseException) -> str:
    """One line on why ``path`` did not load: an empty file or a damaged zip archive says so
    (torch's EOFError has no message, and a truncated archive gives an OS error code:
    "[Errno 22] Invalid argument" or "failed finding central directory"); otherwise the error's
    type and first line (torch's unpickling errors run long)."""
    # imported here: tests load this file on its own (no package) to time a save in a fresh process
    from ..errors import first_line

    try:
        if path.stat().st_size == 0:
            return "an empty file: 0 bytes"
        damage = checkpoint_damage(path)
        if damage is not None:
            return damage
    except OSError:
        pass
    return first_line(exc)


def find_latest_checkpoint(directory: str | os.PathLike, prefix: str = "ckpt", map_location: Any = "cpu",
                           weights_only: bool = True) -> tuple[Path, Any] | None:
    """The newest checkpoint in ``directory`` that is intact and loads, as ``(path, state)``;
    None if none does (or ``directory`` is missing).

    Candidates are tried newest first; one that is damaged (:func:`checkpoint_damage`: cut short,
    or bytes that no longer match their stored CRC-32, which ``torch.load`` would load as other
    weights) or fails to load is skipped with a ``RuntimeWarning`` naming it and why, in one line.
    ``prefix``: as :func:`list_checkpoints` (ValueError for one that is not a plain file-name
    prefix); ``map_location``, ``weights_only``: as ``torch.load``.
    """
    for _, p in reversed(list_checkpoints(directory, prefix)):
        try:
            damage = checkpoint_damage(p)
            if damage is None:
                return p, torch.load(p, map_location=map_location, weights_only=weights_only)
            why = damage
        except Exception as e:  # damaged file: fall back to the previous one
            why = _why_unreadable(p, e)
        warnings.warn(f"checkpoint {p} is unreadable ({why}); trying an older one", RuntimeWarning, stacklevel=2)
    return None


def capture_rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """States of every random generator a training run uses, in ``weights_only``-safe types.

    Captures Python's ``random``, NumPy's global ``np.random`` (legacy MT19937), torch's
    CPU generator, every visible CUDA device's generator (when CUDA is initialised), and
    each extra ``torch.Generator`` in ``generators`` (by name). Restore with
    :func:`restore_rng_state`.
    """
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    return state


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Put back what :func:`capture_rng_state` captured (the ``generators`` by the same names).

    A generator named in ``generators`` but missing from ``state`` raises ``KeyError``;
    CUDA states are restored only for devices that exist.
    """
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), int(pos), int(has_gauss),
                         float(cached)))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for i, s in enumerate(cuda[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    saved = state.get("generators", {})
    for gname, g in (generators or {}).items():
        if gname not in saved:
            raise KeyError(f"generators: no saved state for generator {gname!r}")
        g.set_state(saved[gname])
