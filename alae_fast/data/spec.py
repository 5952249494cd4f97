"""What a run was trained on, as a small JSON-ready record, and how commands find it again.

A run stores ``data_spec(path)`` in its ``config.json`` and in every checkpoint, and beside it
(``data_content``) what an image folder's held-out split is chosen from (its files' relative
paths) and, cheaply, what the files hold (their sizes, and the bytes of a few sampled files), so
that another folder of files under the same names (``00000.png ...``) is not taken for the run's
own, and a short fingerprint of each file's path and size, so that a folder elsewhere holding
some of the run's files (a copy with a file added) is not taken for other data
(:func:`content_overlap`). ``reconstruct``,
``evaluate`` and ``train --resume`` read the spec back with :func:`resolve_run_data` when
``--data`` is not given again, so a model trained on photos is never silently scored on the
digits; ``train --resume --data`` checks a new place with :func:`check_moved_data`.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from pathlib import Path

from .._words import plural
from ..errors import UserError

__all__ = ["data_spec", "data_content", "check_moved_data", "resolve_run_data", "describe_spec",
           "content_difference", "content_checked", "same_names_but", "count_difference", "content_overlap",
           "FINGERPRINTS", "FINGERPRINT_DIGITS", "FINGERPRINT_LIMIT", "OVERLAP_FRACTION"]

KINDS = ("digits", "mnist", "folder")

# How many of an image folder's files data_content reads in full (chosen by the MD5 of their
# relative paths): bounded reading for a folder of 70,000 large images, yet a folder of other
# pictures under the same names differs in (almost) every one of them.
SAMPLED_FILES = 16

# The per-file fingerprints of data_content (key FINGERPRINTS): the first FINGERPRINT_DIGITS hex
# digits of the MD5 of "relative path<TAB>size" for every file, sorted and concatenated: 8
# characters a file (150 files: 1.2 KB; 70,000: 560 KB in config.json and each checkpoint).
# Omitted for a folder of more than FINGERPRINT_LIMIT files (its overlap with other folders is
# then unknown, as for a run recorded before fingerprints were).
FINGERPRINTS = "files_md5_8"
FINGERPRINT_DIGITS = 8
FINGERPRINT_LIMIT = 200_000
# A folder elsewhere is said to hold some of a run's files when at least this fraction of the
# smaller of the two folders (and at least one file) has the path and size of one of the run's:
# two unrelated folders of 70,000 files named 00000.png ... share a file or two by chance (the
# same name and size, or the same 32-bit fingerprint), not 1%.
OVERLAP_FRACTION = 0.01


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


def _names_of(relative: list[str]) -> dict:
    """The part of a record the held-out split depends on: the count and the paths' MD5."""
    return {"files": len(relative), "md5": hashlib.md5("\n".join(relative).encode()).hexdigest()}


def _names_of_record(content: dict) -> dict:
    return {"files": content.get("files"), "md5": content.get("md5")}


def _sampled(relative: list[str], k: int = SAMPLED_FILES) -> list[str]:
    """The ``k`` paths of ``relative`` whose MD5 of ``"sample:" + path`` is least: a choice that
    depends on the names alone, not on their order or on the folder they lie in. The prefix makes
    it independent of the held-out split (the files whose plain path MD5 is least), so the sample
    holds training and held-out files alike."""
    return heapq.nsmallest(k, relative, key=lambda r: (hashlib.md5(f"sample:{r}".encode()).hexdigest(), r))


def _unreadable(e: OSError) -> str:
    return f"unreadable ({e.strerror or type(e).__name__})"


def _file_md5(path: Path) -> str:
    """The MD5 of a file's bytes (read in 1 MiB pieces); for a file that cannot be read, a fixed
    word saying so (so the record still compares, and differs from any readable file's)."""
    digest = hashlib.md5()
    try:
        with open(path, "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                digest.update(piece)
    except OSError as e:
        return _unreadable(e)
    return digest.hexdigest()


def _size_of(base: str, r: str) -> str:
    try:
        return str(os.stat(os.path.join(base, r)).st_size)
    except OSError as e:
        return _unreadable(e)


def _fingerprint(r: str, size: str) -> str:
    return hashlib.md5(f"{r}\t{size}".encode()).hexdigest()[:FINGERPRINT_DIGITS]


def _content_of(root: Path, relative: list[str]) -> dict:
    sizes = hashlib.md5()
    base = str(root)
    keep = len(relative) <= FINGERPRINT_LIMIT
    prints = []
    for r in relative:  # one stat a file (a str path: a Path costs 70,000 objects on FFHQ)
        size = _size_of(base, r)
        sizes.update(f"{r}\t{size}\n".encode())
        if keep:
            prints.append(_fingerprint(r, size))
    return {**_names_of(relative), "sizes_md5": sizes.hexdigest(),
            "sampled": {r: _file_md5(root / r) for r in _sampled(relative)},
            **({FINGERPRINTS: "".join(sorted(prints))} if keep else {})}


def _fingerprints(record: dict) -> list[str] | None:
    prints = record.get(FINGERPRINTS) if isinstance(record, dict) else None
    if not isinstance(prints, str) or len(prints) % FINGERPRINT_DIGITS:
        return None
    return [prints[i:i + FINGERPRINT_DIGITS] for i in range(0, len(prints), FINGERPRINT_DIGITS)]


def content_overlap(recorded: dict, path: str | os.PathLike, current: dict) -> int | None:
    """How many of the image files of ``current`` (the :func:`data_content` of the folder
    ``path``) are among those a run ``recorded``, as far as the records tell: files whose
    relative path and size give one of the run's fingerprints (key ``FINGERPRINTS``). None when
    either record holds no fingerprints (a run recorded before they were, a folder of more than
    ``FINGERPRINT_LIMIT`` files): the overlap is not known.

    0 when the matches are not the run's files: every one of the run's sampled files found at
    ``path`` under its path and size holds other bytes there (other images saved under the run's
    file names, of the same sizes: raw PNGs of one resolution), or fewer than
    ``OVERLAP_FRACTION`` of the smaller folder match (chance: names such as ``00000.png`` of the
    same size, or two files sharing a 32-bit fingerprint). Reads at most ``SAMPLED_FILES`` files:
    those of the run's sample that ``current``'s sample did not read already. Copies under other
    names (renamed files) are not seen."""
    theirs, ours = _fingerprints(recorded), _fingerprints(current)
    if theirs is None or ours is None:
        return None
    run = set(theirs)
    shared = sum(1 for p in ours if p in run)
    if shared == 0 or shared < OVERLAP_FRACTION * min(len(theirs), len(ours)):
        return 0
    sampled = recorded.get("sampled")
    if isinstance(sampled, dict):
        base, compared, agreed = str(path), 0, 0
        read = current.get("sampled")  # files data_content read already: not read again
        read = read if isinstance(read, dict) else {}
        for r, digest in sampled.items():
            if not isinstance(r, str) or not os.path.isfile(os.path.join(base, r)):
                continue
            if _fingerprint(r, _size_of(base, r)) not in run:
                continue
            compared += 1
            agreed += (read[r] if r in read else _file_md5(Path(base) / r)) == digest
        if compared and not agreed:
            return 0
    return shared


def data_content(path: str | os.PathLike | None, files: list[Path] | None = None) -> dict | None:
    """What an image folder holds, as a JSON-ready dict; None for the embedded digits
    (``path`` None) and an MNIST folder.

    The files are those its scan finds (:func:`~alae_fast.data.folder.find_image_files`), or
    ``files`` (a list of paths, that scan's result under ``path``). The record:

    - ``"files"``: int, their number, and ``"md5"``: str, the MD5 of their paths relative to
      ``path``, one per line in scan order: all the held-out split depends on;
    - ``"sizes_md5"``: str, the MD5 of each relative path with its size in bytes (one ``stat`` a
      file), so the same names with other sizes are told apart;
    - ``"sampled"``: dict, relative path -> MD5 of the file's bytes, for up to
      ``SAMPLED_FILES`` (16) files chosen by the MD5 of ``"sample:"`` + their relative path (the
      same names give the same choice, in any folder, independent of the held-out split): the
      bytes read are bounded whatever the folder's size. A
      file that cannot be read or stat-ed is recorded as ``"unreadable (reason)"``;
    - ``"files_md5_8"`` (``FINGERPRINTS``): str, for every file the first 8 hex digits of the
      MD5 of its relative path, a tab and its size (as in ``sizes_md5``), sorted and
      concatenated (8 characters a file), so that how many of another folder's files are the
      run's can be counted (:func:`content_overlap`); omitted for a folder of more than
      ``FINGERPRINT_LIMIT`` (200,000) files.

    What the cheap record cannot see: a file outside the sample rewritten with bytes of its
    exact size. Records of runs made before the later keys existed hold only the first two (or
    no fingerprints); :func:`content_difference` compares only the keys a record holds, and
    ignores the fingerprints (``sizes_md5`` says the same of the whole folder).

    Raises ``FileNotFoundError``, ``NotADirectoryError`` or ``ValueError`` as the scan does
    (``path`` missing, not a folder, a run folder, or without an image file).
    """
    if data_spec(path)["kind"] != "folder":
        return None
    return _content_of(Path(path), _relative_files(path, files))


def content_difference(recorded: dict, current: dict) -> tuple[str, list[str]] | None:
    """How the image files of ``current`` (a :func:`data_content`) differ from those a run
    ``recorded`` (its record, maybe of an older run holding only ``"files"`` and ``"md5"``),
    comparing only the keys ``recorded`` holds; None when they agree.

    Returns ``(what, names)``: ``what`` is ``"files"`` (another number of files), ``"names"``
    (as many, under other relative paths), ``"sizes"`` (the same paths, other sizes) or
    ``"bytes"`` (the same paths and sizes, but sampled files hold other bytes; ``names``, the
    sampled files that differ, sorted; empty for the others). Raises ``ValueError`` naming the
    argument when ``recorded`` or ``current`` is not a dict with ``"files"`` and ``"md5"``.
    """
    for name, record in (("recorded", recorded), ("current", current)):
        if not isinstance(record, dict) or "files" not in record or "md5" not in record:
            raise ValueError(f"content_difference: {name} must be a data_content record (a dict with 'files' and "
                             f"'md5'), got {record!r}")
    if recorded["files"] != current["files"]:
        return "files", []
    if recorded["md5"] != current["md5"]:
        return "names", []
    if "sizes_md5" in recorded and recorded["sizes_md5"] != current.get("sizes_md5"):
        return "sizes", []
    sampled = recorded.get("sampled")
    if isinstance(sampled, dict):
        now = current.get("sampled") or {}
        differ = sorted(r for r, digest in sampled.items() if now.get(r) != digest)
        if differ:
            return "bytes", differ
    return None


def content_checked(recorded: dict) -> str:
    """What :func:`content_difference` compares for ``recorded`` (a run's record), as a note
    says it: ``"their names, sizes and the bytes of 16 sampled files"`` (``"of every file"``
    when it sampled them all), or, for a record of a run made before sizes and contents were
    recorded, ``"by name only: ..."``."""
    sampled = recorded.get("sampled") if isinstance(recorded, dict) else None
    if not isinstance(recorded, dict) or "sizes_md5" not in recorded or not isinstance(sampled, dict):
        return "by name only: the run was made before runs recorded their files' sizes and contents"
    files = recorded.get("files")
    read = "every file" if len(sampled) == files else f"{plural(len(sampled), 'sampled file')}"
    return f"checked: their names, sizes and the bytes of {read}"


def same_names_but(what: str, names: list[str], sampled: int) -> str:
    """The words for a :func:`content_difference` of ``what`` ``"sizes"`` or ``"bytes"``
    (``names``: the sampled files that differ, of ``sampled``): "under the same names, but not
    of the same sizes" / "under the same names and sizes, but the bytes of 2 of the 16 sampled
    files differ: a.png, b.png". Raises ``ValueError`` for another ``what``."""
    if what == "sizes":
        return "under the same names, but not of the same sizes"
    if what == "bytes":
        return (f"under the same names and sizes, but the bytes of {len(names)} of the "
                f"{plural(sampled, 'sampled file')} differ: {_listed(names)}")
    raise ValueError(f"same_names_but: what must be 'sizes' or 'bytes', got {what!r}")


def count_difference(differs: tuple[str, list[str]], recorded: dict, now_files: int,
                     words: tuple[str, str, str] = ("then", "now", "then and now"),
                     other_names: str = "under other names") -> str:
    """How image files differ, for a message: ``differs`` as :func:`content_difference` returns
    it, ``recorded`` the run's record, ``now_files`` the number of files found now, ``words``
    the (before, now, both) words ("then", "now", "then and now" for a folder over time; "there",
    "here", "in both" for two places), ``other_names`` what to say of files under other paths.
    E.g. "150 image files then, 151 now"."""
    what, names = differs
    before, now, both = words
    if what == "files":
        files = recorded.get("files")
        return f"{plural(files, 'image file') if isinstance(files, int) else files} {before}, {now_files} {now}"
    if what == "names":
        return f"{plural(now_files, 'image file')} {both}, {other_names}"
    return f"{plural(now_files, 'image file')} {both}, {same_names_but(what, names, len(recorded.get('sampled') or {}))}"


def _listed(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_moved_data(saved: dict, content: dict | None, given: str, flag: str = "--data") -> str | None:
    """Whether ``train --resume`` may read a run trained on ``saved`` (its data spec; ``content``,
    its recorded :func:`data_content`, None when it recorded none) from ``given``, its ``flag``.

    Returns None when ``given`` is where the run's data already are, and a one-line note when it
    holds the same data in a new place: the same kind, and for an image folder the same image
    files relative to it, of the same sizes and, for the sampled files, the same bytes (as
    ``content`` records; by name only for a run that recorded only names; for a run that
    recorded nothing, as the old folder holds, when it still exists). The note says what was
    checked. Raises :class:`~alae_fast.errors.UserError` naming ``flag`` for other data, saying
    what differs: the kind, the number of image files, their names (where the old folder can
    still be listed, the first few files missing from or added to ``given``), their sizes, or
    the bytes of the sampled files (named).
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
        if content is not None and old is not None and _names_of(old) != _names_of_record(content):
            old = None  # changed since the run began: it no longer says what the run was trained on
    if content is not None:
        recorded = content
    elif old is not None:  # a run that recorded nothing, its folder still there: all of it is compared
        recorded = _content_of(Path(saved["path"]), old)
    else:
        return (f"{moved} (trained on {saved['path']!r}, which is gone; the run recorded no file list, so only "
                f"its number of images is checked)")
    current = _content_of(Path(now["path"]), new)
    differs = content_difference(recorded, current)
    if differs is None:
        return (f"{moved}, which holds the same {plural(len(new), 'image file')} as {saved['path']!r} where it "
                f"was trained ({content_checked(recorded)}); the run now records this place")
    what = differs[0]
    said = count_difference(differs, recorded, len(new), ("there", "here", "in both"),
                            "but under other paths relative to the folder")
    if old is not None and what in ("files", "names"):
        missing, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        said += "".join(f"; {where}: {_listed(names)}" for where, names in
                        (("missing here", missing), ("not in the run's data", added)) if names)
    raise UserError(f"--resume {flag} {given!r}: the run was trained on {describe_spec(saved)}, and this folder "
                    f"holds other image files ({said}); a resumed run continues its own data stream, so "
                    f"{flag} may name its data in a new place (the same files, relative to the folder), not other "
                    f"data")

