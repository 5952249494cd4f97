"""How to install one of alae_fast's optional extras, said the same way by every command that needs one.

alae_fast is installed from its source folder (README), not from a package index, so a hint of
``pip install 'alae_fast[app]'`` sends pip looking for a package of that name elsewhere. The
hint names instead the extra's own requirements, as this installation's metadata lists them
(pyproject.toml's ``[project.optional-dependencies]``), which pip installs from anywhere."""
from __future__ import annotations

import importlib.metadata
import re
import shlex

__all__ = ["install_hint"]

_EXTRA_MARKER = re.compile(r"""^\s*extra\s*==\s*["']([^"']+)["']\s*$""")


def _requirements(extra: str) -> list[str] | None:
    """The requirement strings of ``extra`` (markers dropped), or None without package metadata
    (alae_fast imported from a source folder that was never installed)."""
    try:
        reqs = importlib.metadata.requires("alae_fast") or []
        extras = importlib.metadata.metadata("alae_fast").get_all("Provides-Extra") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    if extra not in extras:
        raise ValueError(f"extra: alae_fast has no extra {extra!r}; it has {sorted(extras)}")
    out = []
    for r in reqs:
        spec, _, marker = r.partition(";")
        m = _EXTRA_MARKER.match(marker)
        if m and m.group(1) == extra:
            out.append(spec.strip())
    return out


def install_hint(extra: str) -> str:
    """The shell command that installs the extra ``extra`` (e.g. "app", "plot", "official"), e.g.
    ``pip install 'fastapi>=0.110' 'uvicorn>=0.29' 'httpx>=0.27' (the [app] extra)``; where
    alae_fast has no package metadata, ``pip install --no-build-isolation '.[app]'`` to be run
    in the source folder. ValueError for an extra the installed package does not declare."""
    reqs = _requirements(extra)
    if reqs is None:
        return f"pip install --no-build-isolation '.[{extra}]' in the alae_fast source folder"
    return "pip install " + " ".join(shlex.quote(r) for r in reqs) + f" (the [{extra}] extra)"
