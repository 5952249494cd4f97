"""Where the cgroups that hold this process keep a controller's files: for the memory a run may
still take (:mod:`alae_fast.inference.memory`) and the CPU time a quota allows
(:mod:`alae_fast._cpu_quota`).

:func:`cgroup_levels` gives, for each mounted hierarchy that can hold the controller (cgroup v2,
and v1's hierarchy of that controller, both on a hybrid machine), the folder of the process's
cgroup and the mount point above it; a reader takes each level's files from that folder up to
the mount point, since a parent's limit binds its children.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

__all__ = ["cgroup_levels", "folders_up"]


@dataclass(frozen=True)
class _Mount:
    """A mounted cgroup hierarchy that can hold a controller's files: ``version`` 1 or 2, the
    hierarchy's path it shows at its mount point (``root``; None where unknown), and that ``point``."""
    version: int
    root: str | None
    point: Path


def _unescape(field: bytes) -> str:
    # mountinfo writes a space, tab, newline and backslash in a path as \040, \011, \012, \134 and
    # every other byte as it is; a name need not be UTF-8, so the bytes are decoded as the file
    # system's names are (os.fsdecode: undecodable bytes kept as surrogates, the same path back)
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field))


def _mounts(mountinfo: Path, controller: str) -> list[_Mount] | None:
    """The cgroup2 mounts and the cgroup v1 mounts of ``controller`` ("memory", "cpu") in ``mountinfo``
    (proc(5): mount ID, parent ID, major:minor, root, mount point, options, optional fields up to
    a ``-``, then file system type, source and super options, where v1 names its controllers:
    ``rw,memory`` or, co-mounted, ``rw,cpu,memory``). None where it cannot be read."""
    try:
        lines = mountinfo.read_bytes().splitlines()
    except OSError:
        return None
    mounts = []
    for line in lines:
        fields = line.split(b" ")
        try:
            dash = fields.index(b"-", 6)
        except ValueError:
            continue
        fstype = fields[dash + 1] if len(fields) > dash + 1 else b""
        supers = fields[dash + 3].split(b",") if len(fields) > dash + 3 else []
        if fstype == b"cgroup2":
            version = 2
        elif fstype == b"cgroup" and controller.encode() in supers:
            version = 1
        else:
            continue
        mounts.append(_Mount(version, _unescape(fields[3]), Path(_unescape(fields[4]))))
    return mounts


# where systemd and Docker mount the hierarchies, read when mountinfo cannot be
_SYS_FS_CGROUP = Path("/sys/fs/cgroup")


def _usual_mounts(root: Path, controller: str) -> list[_Mount]:
    # systemd's and Docker's layout: v2 at root (unified) or root/unified (hybrid), v1 at
    # root/<controller> (root/cpu a link to cpu,cpuacct where they are mounted together)
    v2 = root if (root / "cgroup.controllers").exists() else root / "unified"
    return [_Mount(2, None, v2), _Mount(1, None, root / controller)]


def _process_cgroups(text: str, controller: str) -> dict[int, str]:
    """``{version: the process's cgroup path}`` from ``/proc/self/cgroup`` (cgroups(7): lines
    ``hierarchy-ID:controllers:path``; v2's is ``0::path``; a v1 controller is named in its
    hierarchy's list, alone or with others: ``4:cpu,memory:/path``)."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            paths[2] = path
        elif controller in controllers.split(","):
            paths[1] = path
    return paths


def _nearest_folder(point: Path, parts: tuple[str, ...]) -> Path:
    # the cgroup's folder or, where it is gone (a job step that has ended, a folder this mount
    # namespace does not show), its nearest ancestor below ``point`` that exists: that ancestor's
    # limit and those above it still hold the process
    folder = point.joinpath(*parts)
    while folder != point and not folder.is_dir():
        folder = folder.parent
    return folder


def _cgroup_folder(mount: _Mount, path: str) -> Path | None:
    """The folder under ``mount`` of the cgroup at hierarchy path ``path`` (or of its nearest
    ancestor there that exists), or None where the mount does not show it: the mount shows the
    hierarchy from its root down, so ``path`` is taken relative to that root (a container's mount
    often has its own cgroup as root, shown at the mount point itself); a cgroup outside the root
    is not the process's ancestor there."""
    at = PurePosixPath(path).parts
    if mount.root is None:
        # a mount of unknown root: the path below the mount point, else its top (as a
        # container's own cgroup is mounted); a path above the namespace's root (``/../x``)
        # cannot be placed below it
        return mount.point if ".." in at else _nearest_folder(mount.point, at[1:])
    root = PurePosixPath(mount.root).parts
    if at[:len(root)] == root:
        below = at[len(root):]
        # a ".." left below the root climbs out of the mount: the cgroup is not shown there
        return None if ".." in below else _nearest_folder(mount.point, below)
    # cgroup_namespaces(7): a mount made outside the process's cgroup namespace shows its root
    # relative to the namespace's root, one ".." for each level above it ("/.." is the parent of
    # the namespace's root), and /proc/self/cgroup gives the process's path relative to the
    # namespace's root too. The folder between the two is not named in either file, so the
    # process's own levels cannot be found below the mount point; the mount point itself is an
    # ancestor of them, the nearest one that can be found, and its limit (and none below it) is
    # read. A root that goes down again after its ".." ("/../other") is another branch.
    ups = root[1:]
    if ups and all(part == ".." for part in ups):
        return mount.point
    return None


def cgroup_levels(controller: str, proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path | None = None,
                  mountinfo: str | Path = "/proc/self/mountinfo") -> list[tuple[int, Path, Path]] | None:
    """``(version, folder, top)`` for each hierarchy where ``controller``'s files for this process
    can be read: the cgroup's folder (or its nearest ancestor that exists: a job step that has
    ended) and the mount point (the top level the mount shows); ``[]`` where no hierarchy shows
    the process, None where ``proc_cgroup`` cannot be read.

    Args:
        controller: "memory" or "cpu": the v1 hierarchy whose controllers include it.
        proc_cgroup: the process's cgroups file (default ``/proc/self/cgroup``): its ``0::``
            line (v2) and the line of the hierarchy whose controllers include ``controller`` (v1).
        root: None (default) to find the hierarchies where ``mountinfo`` says they are mounted,
            as the kernel documents it (any mount point, v1 controllers mounted together as
            ``cpu,memory``, a mount whose root is the container's own cgroup); or a folder to
            read instead, laid out as systemd mounts them (v2 at ``root`` or ``root/unified``, v1
            at ``root/<controller>``), the process's path below it where present, else its top.
        mountinfo: the process's mount table (default ``/proc/self/mountinfo``), read when
            ``root`` is None; where it cannot be read, ``/sys/fs/cgroup`` is read as ``root``."""
    try:
        # a cgroup's name need not be UTF-8: decoded as mountinfo's paths are, to match them
        paths = _process_cgroups(os.fsdecode(Path(proc_cgroup).read_bytes()), controller)
    except OSError:
        return None
    mounts = None if root is None else _usual_mounts(Path(root), controller)
    if mounts is None:
        mounts = _mounts(Path(mountinfo), controller)
    if mounts is None:  # no mount table (a /proc without it): the usual layout
        mounts = _usual_mounts(_SYS_FS_CGROUP, controller)
    levels = []
    for mount in mounts:
        path = paths.get(mount.version)
        folder = None if path is None else _cgroup_folder(mount, path)
        if folder is not None:
            levels.append((mount.version, folder, mount.point))
    return levels


def folders_up(folder: Path, top: Path) -> Iterator[Path]:
    """``folder`` and each folder above it up to ``top`` (a level of :func:`cgroup_levels`): the
    levels whose limits all hold the process."""
    while True:
        yield folder
        if folder == top or folder.parent == folder:
            return
        folder = folder.parent
