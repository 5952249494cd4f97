"""What a run was trained on, as a small JSON-ready record, and how commands find it again.

A run stores ``data_spec(path)`` in its ``config.json`` and in every checkpoint, and beside it
(``data_content``) what an image folder's held-out split is chosen from. ``reconstruct``,
``evaluate`` and ``train --resume`` read the spec back with :func:`resolve_run_data` when
``--data`` is not given again, so a model trained on photos is never silently scored on the
digits; ``train --resume --data`` checks a new place with :func:`check_moved_data`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._words import plural
from ..errors import UserError

__all__ = ["data_spec", "data_content", "check_moved_data", "resolve_run_data", "describe_spec"]

KINDS = ("digits", "mnist", "folder")


def data_spec(path: str | os.PathLike | None) -> dict:
    """``{"kind": "digits" | "mnist" | "folder", "path": absolute path or None}`` for a ``--data``
    argument (None: the embedded digits). The kind is read from the path as
    :func:`alae_fast.data.open_dataset` does; a missing path gets kind ``"folder"``."""
    if path is None:
        return {"kind": "digits", "path": None}
    from .mnist import is_mnist_folder

    p = Path(path).expanduser().resolve()
    kind = "mnist" if p.is_dir() and is_mnist_folder(p) else "folder"
    return {"kind": kind, "path": str(p)}


def describe_spec(spec: dict) -> str:
    """``"the embedded digits"`` or ``"the image folder '/x'"`` / ``"the MNIST folder '/x'"``."""
    if spec.get("kind") == "digits" or not spec.get("path"):
        return "the embedded digits"
    return f"the {'MNIST' if spec['kind'] == 'mnist' else 'image'} folder {spec['path']!r}"


def resolve_run_data(spec: dict | None, given: str | None, flag: str = "--data") -> tuple[str | None, str | None]:
    """The data a command on a run should use, and a note saying so (None when nothing needs saying).

    ``given`` (the command's ``--data``) wins. Otherwise the run's ``spec``: the digits give
    ``None``; a folder that still exists gives its path; a folder that is gone raises
    :class:`~alae_fast.errors.UserError` asking for ``flag``. A run that recorded no spec
    (made before runs stored one) uses the digits, and the note says it was assumed.
    """
    if given is not None:
        return given, None
    if not spec:
        return None, (f"note: this run does not record its training data; using the embedded digits "
                      f"(pass {flag} to use other data)")
    if spec.get("kind") not in KINDS:
        raise UserError(f"the run's data record {spec!r} has an unknown kind (expected one of {KINDS})")
    if spec["kind"] == "digits" or not spec.get("path"):
        return None, None
    if not Path(spec["path"]).exists():
        raise UserError(f"the run was trained on {describe_spec(spec)}, which no longer exists; "
                        f"pass {flag} PATH to name its data")
    return spec["path"], f"using the run's training data, {describe_spec(spec)} (pass {flag} to use other data)"


def _relative_files(path: str | os.PathLike, files: list[Path] | None = None) -> list[str]:
    from .folder import find_image_files

    root = Path(path)
    return [f.relative_to(root).as_posix() for f in (find_image_files(root) if files is None else files)]


def _content_of(relative: list[str]) -> dict:
    return {"files": len(relative), "md5": hashlib.md5("\n".join(relative).encode()).hexdigest()}


def data_content(path: str | os.PathLike | None, files: list[Path] | None = None) -> dict | None:
    """For an image folder, ``{"files": N, "md5": hex}``: how many image files its scan finds
    (:func:`~alae_fast.data.folder.find_image_files`, or ``files``, that scan's result under
    ``path``) and the MD5 of their paths relative to it, one per line in scan order, which is
    all the held-out split depends on. None for the embedded digits and an MNIST folder."""
    if data_spec(path)["kind"] != "folder":
        return None
    return _content_of(_relative_files(path, files))


def _listed(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_moved_data(saved: dict, content: dict | None, given: str, flag: str = "--data") -> str | None:
    """Whether ``train --resume`` may read a run trained on ``saved`` (its data spec; ``content``,
    its recorded :func:`data_content`, None when it recorded none) from ``given``, its ``flag``.

    Returns None when ``given`` is where the run's data already are, and a one-line note when it
    holds the same data in a new place: the same kind, and for an image folder the same image
    files relative to it (as ``content`` records; for a run that recorded none, as the old
    folder holds, when it still exists). Raises :class:`~alae_fast.errors.UserError` naming
    ``flag`` for other data, saying what differs: the kind, the number of image files, or (where
    the old folder can still be listed) the first few files missing from or added to ``given``.
    """
    now = data_spec(given)
    if (saved.get("kind"), saved.get("path")) == (now["kind"], now["path"]):
        return None
    if saved.get("kind") != now["kind"] or now["kind"] == "digits":
        raise UserError(f"--resume {flag}: the run was trained on {describe_spec(saved)}, not {describe_spec(now)}; "
                        f"a resumed run continues its own data stream (leave out {flag}, or train a new run with "
                        f"--out)")
    moved = f"note: {flag}: the run's data are now read from {describe_spec(now)}"
    if now["kind"] != "folder":  # an MNIST folder's split is its files': the image count is checked on opening
        return f"{moved} (trained on {saved['path']!r}); the run now records this place"
    try:
        new = _relative_files(now["path"])
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        raise UserError(f"{flag}: {e}") from None
    old = None
    if saved.get("path") and Path(saved["path"]).is_dir():
        try:
            old = _relative_files(saved["path"])
        except (OSError, ValueError):
            old = None
        if content is not None and old is not None and _content_of(old) != content:
            old = None  # changed since the run began: it no longer says what the run was trained on
    recorded = content if content is not None else (_content_of(old) if old is not None else None)
    if recorded is None:
        return (f"{moved} (trained on {saved['path']!r}, which is gone; the run recorded no file list, so only "
                f"its number of images is checked)")
    if _content_of(new) == recorded:
        return (f"{moved}, which holds the same {plural(len(new), 'image file')} as {saved['path']!r} where it "
                f"was trained; the run now records this place")
    if len(new) != recorded["files"]:
        differs = f"{plural(recorded['files'], 'image file')} there, {len(new)} here"
    else:
        differs = f"{plural(len(new), 'image file')} in both, but under other paths relative to the folder"
    if old is not None:
        missing, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        differs += "".join(f"; {what}: {_listed(names)}" for what, names in
                           (("missing here", missing), ("not in the run's data", added)) if names)
    raise UserError(f"--resume {flag} {given!r}: the run was trained on {describe_spec(saved)}, and this folder "
                    f"holds other image files ({differs}); a resumed run continues its own data stream, so "
                    f"{flag} may name its data in a new place (the same files, relative to the folder), not other "
                    f"data")
