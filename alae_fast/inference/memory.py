"""Whether a batch of images a run is asked to decode fits the memory free now.

The API's counts (``run.generate(n)``, ``sample_images``, ``interpolate_latents``' steps, a
style-mixing figure's rows and columns, the N of a ``decode``d w) decode in one batch. A count
of 10**9 asked the allocator for 96 GB and failed in its own words (``[enforce fail at
alloc_cpu.cpp:127]``), or on Linux could take the machine into swap before the kernel killed
the process. :func:`check_images_fit` refuses such a count first, in one line naming the
argument, the memory it would need and the most that fit, as the commands refuse a picture
too large (:data:`alae_fast.limits.MAX_PICTURE_PIXELS`).

The need is an estimate, per image: the image itself, and three times the largest activation
any module of G outputs for one image at the run's level (measured once per level by forward
hooks on a one-image decode): a layer's input and output are alive together, with room for a
temporary. It errs towards refusing only where the batch would not have fitted anyway.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["available_bytes", "decode_bytes_per_image", "check_images_fit"]

# a layer's input, its output and one temporary of that size are alive together in a forward pass
_ACTIVATIONS_ALIVE = 3


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room() -> int | None:
    """Bytes the process's cgroup (v2) still allows, or None without a limit: a container's
    limit can be far below the machine's free memory."""
    limit = _read_int(Path("/sys/fs/cgroup/memory.max"))  # "max" (no limit) reads as None
    used = _read_int(Path("/sys/fs/cgroup/memory.current"))
    if limit is None or used is None:
        return None
    return max(0, limit - used)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on ``device``, in bytes: on the CPU Linux's ``MemAvailable``
    (``/proc/meminfo``), lowered to what a cgroup v2 limit leaves; on CUDA the driver's free
    memory plus what torch's caching allocator holds unused. None where it cannot be read (another
    OS or device type): then nothing is refused."""
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
    room = _cgroup_room()
    return free if room is None else min(free, room)


@torch.no_grad()
def decode_bytes_per_image(run) -> int:
    """The memory one image's decode needs at ``run.phase``, in bytes (the module docstring's
    estimate), measured once per level and blend and kept on ``run``."""
    key = (run.phase.lod, float(run.phase.blend))
    if key in run._decode_bytes:
        return run._decode_bytes[key]
    largest = 0

    def hook(_module, _inputs, out):
        nonlocal largest
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                largest = max(largest, t.numel() * t.element_size())

    model = run.model
    w = torch.zeros(1, model.latent_size, device=run.device, dtype=next(model.parameters()).dtype)
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        image = model.decode(w, run.phase.lod, run.phase.blend, noise="zero")
    finally:
        for h in handles:
            h.remove()
    need = image.numel() * image.element_size() + _ACTIVATIONS_ALIVE * largest
    run._decode_bytes[key] = need
    return need


def _size(n: float) -> str:
    for unit, k in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} bytes"


def check_images_fit(run, count: int, op: str, said: str) -> None:
    """ValueError when decoding ``count`` images of ``run`` in one batch needs more memory than
    :func:`available_bytes` finds free now (nothing where that cannot be read), said as
    ``"{op}: {said} would need about ..."``: ``said`` names the argument and its value."""
    free = available_bytes(run.device)
    if free is None:
        return
    per = decode_bytes_per_image(run)
    if count * per <= free:
        return
    most = free // per
    r = run.phase.resolution
    raise ValueError(f"{op}: {said} would need about {_size(count * per)} at once ({_size(per)} an image "
                     f"at {r}x{r}: the image and G's largest activations), more than the {_size(free)} free on "
                     f"{run.device}; about {most} images fit: make them in batches")
