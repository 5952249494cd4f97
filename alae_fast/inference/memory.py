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

from pathlib import Path

import torch

from .._cgroup import cgroup_levels, folders_up

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


def _level_rooms(folder: Path, top: Path, files: tuple[str, str, str, str]) -> list[int]:
    """The room of each limited level from ``folder`` up to ``top``: its limit less its usage,
    the inactive page cache taken back. Unlimited levels (v2's ``max``, v1's PAGE_COUNTER_MAX)
    and unreadable ones give none."""
    limit_file, used_file, stat_file, cache_key = files
    rooms = []
    for level in folders_up(folder, top):
        limit, used = _read_int(level / limit_file), _read_int(level / used_file)
        if limit is not None and limit < _NO_LIMIT and used is not None:
            rooms.append(max(0, limit - used + _stat_value(level / stat_file, cache_key)))
    return rooms


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

    ``proc_cgroup``, ``root``, ``mountinfo``: where the cgroups are found, as
    :func:`alae_fast._cgroup.cgroup_levels` takes them for the ``memory`` controller.

    Files that are missing or unreadable count as no limit: None where nothing could be read."""
    rooms = []
    for version, folder, top in cgroup_levels("memory", proc_cgroup, root, mountinfo) or []:
        rooms += _level_rooms(folder, top, _FILES[version])
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
