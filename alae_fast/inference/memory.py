"""Whether the images a run is asked to decode can fit the memory free now.

The API's counts (``run.generate(n)``, ``sample_images``, ``interpolate_latents``' steps, the
N of a ``decode``d or ``encode``d batch, a style-mixing table, ``generate_seeds``,
``edit_strip``) decode in batches or one image at a time. A count of 10**9 asked the
allocator for 96 GB and failed in its own words (``[enforce fail at alloc_cpu.cpp:127]``), or
on Linux could take the machine into swap before the kernel killed the process.
:func:`check_images_fit` refuses such a count first, in one line naming the argument, the
memory it needs at least and the most that fit.

The need is a lower bound, so that nothing that fits is refused: the larger of the images
kept (the result) and, for the largest batch decoded at once, what one op's output grows by per
image, which must exist at some moment of the decode. That growth is measured once per level
from a one-image and a two-image decode, over every op's output (torch's dispatch: an upsampled
map before its blur is twice any layer's output; a weight scaled for the equalized learning
rate, which does not grow with the batch, is not counted: it had made an MLP ALAE's bound 2 MiB
an image, 320 times its need). What else is alive then (the op's input, other layers' outputs, the allocator's slack)
is not counted: a batched decode grew the process's peak resident memory by 1.5 to 4 times this
bound (digits-mlp x 20000, digits-32 x 2048, celeba-128 x 64, ffhq-1024 x 4, one thread,
2026-12-05). So a
count up to a few times under the limit can still fail in the allocator; one above it cannot
succeed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

__all__ = ["available_bytes", "decode_bytes_per_image", "check_images_fit"]

# a cgroup v1 memory limit this large (PAGE_COUNTER_MAX pages) means none
_NO_LIMIT = 2 ** 60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None  # v2 "max" (no limit) reads as None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


# what each cgroup version calls a level's limit, its usage, its statistics file and, in that
# file, the page cache the kernel can drop (v1 counts it over the level and its descendants)
_FILES = {1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "total_inactive_file"),
          2: ("memory.max", "memory.current", "memory.stat", "inactive_file")}


@dataclass(frozen=True)
class _Mount:
    """A mounted cgroup hierarchy that can limit memory: ``version`` 1 or 2, the hierarchy's
    path it shows at its mount point (``root``; None where unknown), and that ``point``."""
    version: int
    root: str | None
    point: Path


def _unescape(field: bytes) -> str:
    # mountinfo writes a space, tab, newline and backslash in a path as \040, \011, \012, \134 and
    # every other byte as it is; a name need not be UTF-8, so the bytes are decoded as the file
    # system's names are (os.fsdecode: undecodable bytes kept as surrogates, the same path back)
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field))


def _memory_mounts(mountinfo: Path) -> list[_Mount] | None:
    """The cgroup2 mounts and the cgroup v1 mounts of the memory controller in ``mountinfo``
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
        elif fstype == b"cgroup" and b"memory" in supers:
            version = 1
        else:
            continue
        mounts.append(_Mount(version, _unescape(fields[3]), Path(_unescape(fields[4]))))
    return mounts


# where systemd and Docker mount the hierarchies, read when mountinfo cannot be
_SYS_FS_CGROUP = Path("/sys/fs/cgroup")


def _usual_mounts(root: Path) -> list[_Mount]:
    # systemd's and Docker's layout: v2 at root (unified) or root/unified (hybrid), v1 at root/memory
    v2 = root if (root / "cgroup.controllers").exists() else root / "unified"
    return [_Mount(2, None, v2), _Mount(1, None, root / "memory")]


def _process_cgroups(text: str) -> dict[int, str]:
    """``{version: the process's cgroup path}`` from ``/proc/self/cgroup`` (cgroups(7): lines
    ``hierarchy-ID:controllers:path``; v2's is ``0::path``; v1's memory controller is named in its
    hierarchy's list, alone or with others: ``4:cpu,memory:/path``)."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            paths[2] = path
        elif "memory" in controllers.split(","):
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


def _level_rooms(folder: Path, top: Path, files: tuple[str, str, str, str]) -> list[int]:
    """The room of each limited level from ``folder`` up to ``top``: its limit less its usage,
    the inactive page cache taken back. Unlimited levels (v2's ``max``, v1's PAGE_COUNTER_MAX)
    and unreadable ones give none."""
    limit_file, used_file, stat_file, cache_key = files
    rooms = []
    while True:
        limit, used = _read_int(folder / limit_file), _read_int(folder / used_file)
        if limit is not None and limit < _NO_LIMIT and used is not None:
            rooms.append(max(0, limit - used + _stat_value(folder / stat_file, cache_key)))
        if folder == top or folder.parent == folder:
            return rooms
        folder = folder.parent


def cgroup_room(proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path | None = None,
                mountinfo: str | Path = "/proc/self/mountinfo") -> int | None:
    """Bytes the memory cgroups holding this process still allow, or None where none limits it:
    for each level from the process's cgroup up to the top its mount shows, its limit less its
    usage with the inactive page cache taken back (the kernel reclaims that first; a container
    that has just read its data set would otherwise look full), the least over the levels and
    over the hierarchies. Reads cgroup v2 (``memory.max``, ``memory.current``, ``inactive_file``)
    and v1's memory controller (``memory.limit_in_bytes``, ``memory.usage_in_bytes``,
    ``total_inactive_file``), both where a hybrid machine has both. No limit is ``max`` (v2) or
    9223372036854771712 (v1's PAGE_COUNTER_MAX pages) at every level. A cgroup whose folder is
    gone (a job step that has ended) is read from its nearest ancestor that exists.

    Args:
        proc_cgroup: the process's cgroups file (default ``/proc/self/cgroup``): its ``0::``
            line (v2) and the line of the hierarchy whose controllers include ``memory`` (v1).
        root: None (default) to find the hierarchies where ``mountinfo`` says they are mounted,
            as the kernel documents it (any mount point, v1 controllers mounted together as
            ``cpu,memory``, a mount whose root is the container's own cgroup); or a folder to
            read instead, laid out as systemd mounts them (v2 at ``root`` or ``root/unified``, v1
            at ``root/memory``), the process's path below it where present, else its top.
        mountinfo: the process's mount table (default ``/proc/self/mountinfo``), read when
            ``root`` is None; where it cannot be read, ``/sys/fs/cgroup`` is read as ``root``.

    Files that are missing or unreadable count as no limit: None where nothing could be read."""
    try:
        # a cgroup's name need not be UTF-8: decoded as mountinfo's paths are, to match them
        paths = _process_cgroups(os.fsdecode(Path(proc_cgroup).read_bytes()))
    except OSError:
        return None
    mounts = None if root is None else _usual_mounts(Path(root))
    if mounts is None:
        mounts = _memory_mounts(Path(mountinfo))
    if mounts is None:  # no mount table (a /proc without it): the usual layout
        mounts = _usual_mounts(_SYS_FS_CGROUP)
    rooms = []
    for mount in mounts:
        path = paths.get(mount.version)
        folder = None if path is None else _cgroup_folder(mount, path)
        if folder is not None:
            rooms += _level_rooms(folder, mount.point, _FILES[mount.version])
    return min(rooms) if rooms else None


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on ``device`` (a ``torch.device`` or its name), in bytes: on
    the CPU Linux's ``MemAvailable`` (``/proc/meminfo``), lowered to what the process's memory
    cgroups allow (:func:`cgroup_room`); on CUDA the driver's free memory plus what torch's
    caching allocator holds unused. None where it cannot be read (another OS or device type):
    then nothing is refused."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            line = next((ln for ln in f if ln.startswith("MemAvailable:")), None)
    except OSError:
        return None
    if line is None:
        return None
    free = int(line.split()[1]) * 1024  # the file counts kB
    room = cgroup_room()
    return free if room is None else min(free, room)


@torch.no_grad()
def decode_bytes_per_image(run) -> tuple[int, int]:
    """``(image, batch)``: the bytes of one decoded image of ``run`` (a
    :class:`~alae_fast.inference.loading.LoadedRun`) at its level, and the least one more image
    in a batched decode needs (the module docstring's bound), measured once per level and blend
    and kept on ``run``."""
    key = (run.phase.lod, float(run.phase.blend))
    if key in run._decode_bytes:
        return run._decode_bytes[key]
    from torch.utils._python_dispatch import TorchDispatchMode

    class Sizes(TorchDispatchMode):
        # every op's output in order, temporaries inside a layer included (an upsampled map
        # before its blur is twice the layer's output: module hooks saw half of it)
        def __init__(self):
            super().__init__()
            self.bytes = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.bytes.append(sum(t.numel() * t.element_size() for t in (out if isinstance(out, (tuple, list))
                                                                         else (out,)) if isinstance(t, torch.Tensor)))
            return out

    model = run.model
    dtype = next(model.parameters()).dtype
    sizes = []
    for n in (1, 2):  # what grows by one image: a weight scaled for the equalized learning rate does not
        w = torch.zeros(n, model.latent_size, device=run.device, dtype=dtype)
        with Sizes() as seen:
            image = model.decode(w, run.phase.lod, run.phase.blend, noise="zero")
        sizes.append(seen.bytes)
    image_bytes = image[:1].numel() * image.element_size()
    # noise off, the two decodes run the same ops in the same order; were they not, the image
    # alone is still a lower bound
    grown = max((b - a for a, b in zip(*sizes)), default=0) if len(sizes[0]) == len(sizes[1]) else 0
    run._decode_bytes[key] = need = (image_bytes, max(grown, image_bytes))
    return need


def _size(n: float) -> str:
    for unit, k in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} bytes"


def check_images_fit(run, op: str, said: str, batch: int, kept: int = 0, kept_on=None) -> None:
    """ValueError when ``run`` (a :class:`~alae_fast.inference.loading.LoadedRun`) cannot make
    what ``op`` is asked: ``batch`` images (an int >= 0) decoded at once, and ``kept`` (an int
    >= 0) decoded images held besides (the result of a call that decodes a few at a time), on
    ``kept_on`` (a device; None: the model's). Said as ``"{op}: {said} would need at least
    ..."``, ``said`` naming the argument and its value, with the most that fit. Nothing is
    refused where :func:`available_bytes` cannot read the free memory."""
    image, per = decode_bytes_per_image(run)
    kept_on = run.device if kept_on is None else torch.device(kept_on)
    # both must exist at some moment, not necessarily together (an encode before the images kept):
    # the larger of the two is the bound
    needs = {run.device: batch * per}  # device -> bytes
    needs[kept_on] = max(needs.get(kept_on, 0), kept * image)
    for device, need in needs.items():
        free = available_bytes(device)
        if free is None or need <= free:
            continue
        if device == run.device and batch * per > free:
            most = f"about {free // per} images fit at once: make them in batches"
        else:  # what is kept grows with the count; the batch decoded at once fits
            most = f"about {free // image} images fit"
        r = run.phase.resolution
        raise ValueError(f"{op}: {said} would need at least {_size(need)} on {device} ({_size(image)} an image at "
                         f"{r}x{r}" + (f", {_size(per)} for G's largest tensor of each decoded at once"
                                       if batch else "") + f"), more than the {_size(free)} free there; {most}")
