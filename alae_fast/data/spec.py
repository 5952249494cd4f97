"""What a run was trained on, as a small JSON-ready record, and how commands find it again.

A run stores ``data_spec(path)`` in its ``config.json`` and in every checkpoint. ``reconstruct``,
``evaluate`` and ``train --resume`` read it back with :func:`resolve_run_data` when ``--data`` is
not given again, so a model trained on photos is never silently scored on the digits.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError

__all__ = ["data_spec", "resolve_run_data", "describe_spec"]

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
