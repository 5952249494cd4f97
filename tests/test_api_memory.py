"""A count of images that cannot fit in memory, and a w too large for G, are refused by the
Python API in one line naming the argument, before any allocation (``alae_fast.inference.memory``,
``alae_fast.limits.MAX_ABS_W``). ``run.generate(10**9)`` was torch's allocator error
(``[enforce fail at alloc_cpu.cpp:127] ... 96000000000 bytes``) and ``run.decode`` of a w of 3e38
an all-NaN image, silently.

The run is a checkpoint written by hand from a freshly built digits-32 StyleALAE (untrained)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import alae_fast
import alae_fast._cgroup as _cgroup
import alae_fast.inference.memory as memory
from alae_fast.edit.commands import edit_strip
from alae_fast.inference.loading import CHECKPOINT_FORMAT, _official_schedule
from alae_fast.inference.sampling import (generate_seeds, interpolate_latents, sample_images, style_mix_images,
                                          style_mix_tiles)
from alae_fast.limits import MAX_ABS_W
from alae_fast.models import build_model
from alae_fast.models.presets import DIGITS_32

pytestmark = pytest.mark.usefixtures("one_thread")

# cgroup v1's "no limit": PAGE_COUNTER_MAX pages of 4 KiB, as memory.limit_in_bytes reads it
PAGE_COUNTER_MAX = 9223372036854771712


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model = build_model(DIGITS_32)
    schedule = _official_schedule(DIGITS_32)
    images = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    path = tmp_path_factory.mktemp("memory") / "ckpt.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": DIGITS_32.to_dict(), "schedule": schedule.to_dict(),
                "setup": "test", "trainer": {"ema": {"module": model.state_dict()}, "images_seen": images}}, path)
    return alae_fast.load(path)


_PEAK = """
import dataclasses, sys, types, torch
from alae_fast.inference.memory import decode_bytes_per_image
from alae_fast.models import build_model
from alae_fast.training.setups import resolve_setup
torch.set_num_threads(1)
preset, lod, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = resolve_setup(preset); m = build_model(s.model_config).eval()
phase = dataclasses.replace(s.schedule.phase(10 ** 12), lod=lod, blend=1.0)
run = types.SimpleNamespace(model=m, phase=phase, device=torch.device("cpu"), _decode_bytes={})
image, per = decode_bytes_per_image(run)
def status(key):  # kB in /proc/self/status
    return next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith(key + ":"))
with torch.no_grad():
    w = torch.randn(n, m.latent_size)
    m.decode(w[:1], lod, 1.0, noise="zero")
    with open("/proc/self/clear_refs", "w") as f:  # the peak (VmHWM) starts again from the resident size now
        f.write("5")
    base = status("VmRSS")
    m.decode(w, lod, 1.0, noise="zero")
print(image, per, (status("VmHWM") - base) * 1024)
"""


@pytest.mark.parametrize("preset, lod, n", [("digits-32", 3, 2048), ("digits-32", 0, 8192), ("digits-mlp", 0, 20000)])
def test_the_need_is_a_lower_bound_of_a_batched_decodes_peak(preset, lod, n):
    """The bound refuses nothing that fits: a decode of n images in a fresh process grows its peak
    resident memory (VmHWM, reset just before by /proc/self/clear_refs: the process's lifetime peak
    of getrusage could lie above a small decode's) by more than n times the bound, a measure
    independent of how the bound is made. At digits-32's first level and in the MLP ALAE the largest tensor of a
    decode is a weight scaled for the equalized learning rate, which does not grow with the batch:
    counted per image, it had made the MLP's bound 2 MiB, 320 times its need."""
    import subprocess
    import sys

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("the peak resident size cannot be reset here (/proc/self/clear_refs)")
    image, per, grown = map(int, subprocess.run([sys.executable, "-c", _PEAK, preset, str(lod), str(n)],
                                                 capture_output=True, text=True, check=True, cwd="/").stdout.split())
    assert image <= per and n * per <= grown, (image, per, n * per, grown)


def test_the_need_covers_the_largest_module_output(run):
    image, per = memory.decode_bytes_per_image(run)
    assert image == run.schedule.channels * run.phase.resolution ** 2 * 4
    largest_output = 0  # of any module, by forward hooks: what grows with each image at this level

    def hook(_module, _inputs, out):
        nonlocal largest_output
        largest_output = max(largest_output, out.numel() * out.element_size() if isinstance(out, torch.Tensor) else 0)

    handles = [m.register_forward_hook(hook) for m in run.model.modules()]
    with torch.no_grad():
        run.model.decode(torch.zeros(1, run.model.latent_size), run.phase.lod, run.phase.blend, noise="zero")
    for h in handles:
        h.remove()
    assert per >= largest_output >= image, (per, largest_output, image)
    assert memory.decode_bytes_per_image(run) == (image, per) and run._decode_bytes  # measured once per level


@pytest.fixture
def free(run, monkeypatch):
    """The free memory set to ten images decoded at once; returns (image, per) bytes."""
    image, per = memory.decode_bytes_per_image(run)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * per)
    return image, per


def test_a_batch_past_the_free_memory_is_refused_naming_it_and_the_most_that_fit(run, free):
    w = torch.zeros(11, run.model.latent_size)
    x = torch.zeros(11, 1, run.phase.resolution, run.phase.resolution)
    cases = [
        (lambda: run.generate(11), "generate: n 11 would need"),
        (lambda: sample_images(run, 11), "sample_images: n 11 would need"),
        (lambda: run.decode(w), "decode: w of 11 latents would need"),
        (lambda: run.encode(x), "encode: x of 11 images would need"),
        (lambda: run.reconstruct(x, refine_steps=5), "reconstruct: x of 11 images would need"),
        (lambda: run.project(x, steps=5), "project: x of 11 images would need"),
        (lambda: interpolate_latents(run, x[:1], x[1:2], 11), "interpolate_latents: steps 11 would need"),
        (lambda: style_mix_tiles(run, 1, 11), r"style_mix_tiles: rows 1 and cols 11 \(47 images\) would need"),
        (lambda: style_mix_images(run, x, x[:2]), r"style_mix_images: 11 sources and 2 destinations \(66 mixed "),
    ]
    for call, said in cases:
        with pytest.raises(ValueError, match="^" + said) as e:
            call()
        assert re.search(r"more than the .* free there; about 10 images fit at once: make them in batches$",
                         str(e.value)), str(e.value)
    # exactly what fits is made
    assert run.generate(10).shape[0] == 10 and run.decode(w[:10]).shape[0] == 10
    assert run.encode(x[:10]).shape[0] == 10 and interpolate_latents(run, x[:1], x[1:2], 10).shape[0] == 10


def test_calls_that_decode_a_few_at_a_time_count_what_they_keep(run, free):
    """generate_seeds decodes one image at a time and edit_strip one strip image at a time: only
    the images they keep grow with the count (they were charged as one batch of all of them,
    and told to make in batches what they already make one by one)."""
    image, per = free
    most = (10 * per) // image  # seeds: one decoded at a time, all of them kept
    assert most > 20
    with pytest.raises(ValueError, match=rf"^generate_seeds: {most + 1} seeds would need at least .*; about "
                                         rf"{most} images fit$"):
        generate_seeds(run, list(range(most + 1)))
    assert generate_seeds(run, list(range(most))).shape[0] == most
    x = torch.zeros(2, 1, run.schedule.resolution, run.schedule.resolution)
    steps = (10 * per) // (2 * image)  # two images encoded at once, then 2·steps kept
    with pytest.raises(ValueError, match=rf"^edit_strip: steps {steps + 1} with 2 images"):
        edit_strip(run, x, {"a": np.ones(run.model.latent_size)}, {"a": 1.0}, steps=steps + 1)
    assert edit_strip(run, x, {"a": np.ones(run.model.latent_size)}, {"a": 1.0}, steps=steps).shape[0] == 2 * steps
    rows = 1  # a table: A and B decoded at once (cols, 3·rows), then a row of cols at a time, all kept
    cols = max(c for c in range(1, 100) if max(max(c, 3 * rows) * per, (c + 3 * rows * (c + 1)) * image) <= 10 * per)
    with pytest.raises(ValueError, match=rf"^style_mix_tiles: rows 1 and cols {cols + 1} "):
        style_mix_tiles(run, rows, cols + 1)
    assert style_mix_tiles(run, rows, cols)[2].shape[:2] == (3 * rows, cols)


def test_generate_of_a_billion_is_one_line_before_any_allocation(run):
    if memory.available_bytes(run.device) is None:
        pytest.skip("free memory cannot be read on this platform")
    with pytest.raises(ValueError, match=r"^generate: n 1000000000 would need at least [\d.]+ [GMK]iB on cpu "):
        run.generate(10 ** 9)
    with pytest.raises(ValueError, match=r"^generate: psi must be"):  # the arguments are checked first
        run.generate(10 ** 9, psi=5.0)


@pytest.mark.parametrize("value", [3e38, 1e30, -2 * MAX_ABS_W])
def test_a_w_beyond_the_limit_is_refused_not_decoded_to_nan(run, value):
    w = torch.zeros(2, run.model.latent_size)
    w[1, 3] = value
    got = re.escape(format(abs(value), "g"))
    with pytest.raises(ValueError, match=rf"^decode: w must have values within ±10000 .*; got {got}$"):
        run.decode(w)
    with pytest.raises(ValueError, match=r"^decode: w must have values within"):
        run.decode(w.unsqueeze(1).expand(-1, run.model.num_ws, -1))  # w+ too


def test_a_w_at_the_limit_is_decoded(run):
    w = torch.zeros(1, run.model.latent_size)
    w[0, 0] = -MAX_ABS_W
    assert run.decode(w).shape == (1, 1, run.phase.resolution, run.phase.resolution)


def _cgroup_tree(root, files: dict) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_room_takes_the_least_over_the_hierarchy_with_the_page_cache_back(tmp_path):
    # v2, nested (a Slurm job under a user slice): the job's 4 GiB is the room, less what it uses,
    # plus the inactive page cache the kernel would reclaim first
    g = 2 ** 30
    root = tmp_path / "cg"
    _cgroup_tree(root, {"cgroup.controllers": "memory", "memory.max": "max",
                        "slice/memory.max": str(16 * g), "slice/memory.current": str(2 * g),
                        "slice/memory.stat": "anon 1\ninactive_file 0\n",
                        "slice/job/memory.max": str(4 * g), "slice/job/memory.current": str(3 * g),
                        "slice/job/memory.stat": "anon 5\ninactive_file 1073741824\nactive_file 9\n"})
    (tmp_path / "self").write_text("0::/slice/job\n")
    assert memory.cgroup_room(tmp_path / "self", root) == 4 * g - 3 * g + g
    # v1 (a hybrid machine: memory under memory/, v2 unified/ without a limit): PAGE_COUNTER_MAX is none
    root = tmp_path / "v1"
    _cgroup_tree(root, {"unified/cgroup.procs": "", "memory/memory.limit_in_bytes": "9223372036854771712",
                        "memory/memory.usage_in_bytes": "5", "memory/box/memory.limit_in_bytes": str(2 * g),
                        "memory/box/memory.usage_in_bytes": str(g),
                        "memory/box/memory.stat": "cache 3\ntotal_inactive_file 1024\n"})
    (tmp_path / "self1").write_text("4:memory:/box\n0::/\n1:cpu:/\n")
    assert memory.cgroup_room(tmp_path / "self1", root) == g + 1024
    # a namespace that shows the process's cgroup as the root; no limit anywhere; no file at all
    (tmp_path / "self2").write_text("0::/\n")
    _cgroup_tree(tmp_path / "ns", {"cgroup.controllers": "", "memory.max": str(g), "memory.current": str(g // 2)})
    assert memory.cgroup_room(tmp_path / "self2", tmp_path / "ns") == g // 2
    _cgroup_tree(tmp_path / "free", {"cgroup.controllers": "", "memory.max": "max", "memory.current": "7"})
    assert memory.cgroup_room(tmp_path / "self2", tmp_path / "free") is None
    assert memory.cgroup_room(tmp_path / "missing", root) is None


def _mountinfo(path, *mounts) -> None:
    """A ``/proc/self/mountinfo`` of ``(root, mount point, fstype, super options)`` mounts, after
    the system's own lines (proc(5)'s layout; a space in a path written as ``\\040``)."""
    lines = ["22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
             "31 22 0:28 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755"]
    for i, (root, point, fstype, supers) in enumerate(mounts):
        point = str(point).replace("\\", "\\134").replace(" ", "\\040")
        lines.append(f"{40 + i} 31 0:{40 + i} {root} {point} rw,nosuid,relatime shared:{20 + i} - {fstype} "
                     f"{fstype} {supers}")
    path.write_text("\n".join(lines) + "\n")


def _v1_level(limit, used, cache=0) -> dict:
    return {"memory.limit_in_bytes": str(limit), "memory.usage_in_bytes": str(used),
            "memory.stat": f"cache 9\ntotal_inactive_file {cache}\n"}


def _under(folder: str, files: dict) -> dict:
    return {f"{folder}/{name}" if folder else name: text for name, text in files.items()}


@pytest.mark.parametrize("controllers, point", [
    ("cpu,memory", "cpu,memory"),        # co-mounted, at the name systemd gives it
    ("memory,cpuset", "cg mem/box"),     # co-mounted, at a mount point of another name (with a space)
])
def test_cgroup_room_finds_a_v1_memory_hierarchy_wherever_mountinfo_says(tmp_path, controllers, point):
    # v1 mounted with other controllers, not at .../memory: the limit was missed (no refusal
    # before the allocator or the OOM killer)
    g = 2 ** 30
    mount = tmp_path / point
    _cgroup_tree(mount, {**_v1_level(PAGE_COUNTER_MAX, 5), **_under("job", _v1_level(2 * g, g, 4096)),
                         **_under("job/step", _v1_level(8 * g, g))})
    (tmp_path / "cgroup").write_text(f"7:{controllers}:/job/step\n3:pids:/\n0::/\n")
    _mountinfo(tmp_path / "mountinfo", ("/", mount, "cgroup", f"rw,{controllers}"),
               ("/", tmp_path / "pids", "cgroup", "rw,pids"))
    room = memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo")
    assert room == 2 * g - g + 4096  # the job's, the least of the step's and its ancestors'
    # the same tree read in the usual layout (root=): the mount is not at root/memory, so not found
    assert memory.cgroup_room(tmp_path / "cgroup", tmp_path) is None


def test_cgroup_room_reads_a_mount_whose_root_is_the_containers_own_cgroup(tmp_path):
    # Docker without a cgroup namespace: /proc/self/cgroup names the host's path, while the
    # container's mount shows that cgroup itself at its mount point
    g = 2 ** 30
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    _cgroup_tree(v1, {**_v1_level(3 * g, g), **_under("worker", _v1_level(PAGE_COUNTER_MAX, g // 2))})
    _cgroup_tree(v2, {"cgroup.controllers": "cpu memory", "memory.max": str(4 * g), "memory.current": str(g),
                      "memory.stat": f"anon 7\ninactive_file {g}\n"})
    # a mount of another cgroup (a sibling, not an ancestor) with a small limit: not the process's
    other = tmp_path / "other"
    _cgroup_tree(other, _v1_level(1024, 0))
    (tmp_path / "cgroup").write_text("4:memory:/docker/abc/worker\n0::/system.slice/docker-abc.scope\n")
    _mountinfo(tmp_path / "mountinfo", ("/docker/abc", v1, "cgroup", "rw,memory"),
               ("/docker/other", other, "cgroup", "rw,memory"),
               ("/system.slice/docker-abc.scope", v2, "cgroup2", "rw,nsdelegate"))
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") == 2 * g  # v1's 3 - 1
    (tmp_path / "cgroup").write_text("0::/system.slice/docker-abc.scope\n")  # v2 alone: its 4 - 1 + 1
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") == 4 * g
    # a cgroup namespace: the process's cgroup is "/", and so is the mount's root
    _mountinfo(tmp_path / "mountinfo", ("/", v2, "cgroup2", "rw,nsdelegate"))
    (tmp_path / "cgroup").write_text("0::/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") == 4 * g


def test_cgroup_room_without_a_memory_controller_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(_cgroup, "_SYS_FS_CGROUP", tmp_path / "no-sys")  # the fallback of a missing mountinfo
    limited = tmp_path / "cpu"
    _cgroup_tree(limited, _v1_level(1024, 0))  # files that look limiting, in a hierarchy without memory
    _mountinfo(tmp_path / "mountinfo", ("/", limited, "cgroup", "rw,cpu,cpuacct"),
               ("/", tmp_path / "systemd", "cgroup", "rw,xattr,name=systemd"))
    (tmp_path / "cgroup").write_text("2:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") is None
    # the memory controller named, but its hierarchy mounted nowhere; no mountinfo at all
    (tmp_path / "cgroup").write_text("4:memory:/\n0::/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") is None
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "missing") is None


def test_cgroup_room_on_a_hybrid_machine_reads_v1_and_v2_and_keeps_unlimited_unlimited(tmp_path):
    g = 2 ** 30
    v1, v2 = tmp_path / "memory", tmp_path / "unified"
    _cgroup_tree(v1, {**_v1_level(PAGE_COUNTER_MAX, 9 * g), **_under("user.slice", _v1_level(6 * g, 2 * g, 1024))})
    # the unified hierarchy has no memory controller here: no memory.* files at all
    _cgroup_tree(v2, {"cgroup.controllers": "", "user.slice/cgroup.procs": "1\n"})
    (tmp_path / "cgroup").write_text("12:memory:/user.slice\n1:name=systemd:/user.slice\n0::/user.slice\n")
    _mountinfo(tmp_path / "mountinfo", ("/", v1, "cgroup", "rw,memory"), ("/", v2, "cgroup2", "rw,nsdelegate"))
    info = tmp_path / "mountinfo"
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == 6 * g - 2 * g + 1024
    # a v2 limit beside it (a hierarchy with memory on both sides, as a test can make it): the least
    _cgroup_tree(v2, {"user.slice/memory.max": str(3 * g), "user.slice/memory.current": str(2 * g)})
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == g
    # no limit anywhere: v1's PAGE_COUNTER_MAX pages and v2's "max" stay unlimited, at every level
    _cgroup_tree(v1, _under("user.slice", _v1_level(PAGE_COUNTER_MAX, 2 * g)))
    _cgroup_tree(v2, {"user.slice/memory.max": "max", "memory.max": "max", "memory.current": "5"})
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) is None


def test_cgroup_room_reads_the_nearest_ancestor_of_a_cgroup_that_is_gone(tmp_path):
    # the process's own folder is absent (a job step that has ended, a folder this mount
    # namespace does not show): the job above it still limits the process, and so does the slice
    g = 2 ** 30
    v1, v2 = tmp_path / "memory", tmp_path / "unified"
    _cgroup_tree(v1, {**_v1_level(PAGE_COUNTER_MAX, 5), **_under("job", _v1_level(2 * g, g, 4096))})
    _cgroup_tree(v2, {"cgroup.controllers": "memory", "slice/memory.max": str(3 * g),
                      "slice/memory.current": str(g), "slice/job/memory.max": str(8 * g),
                      "slice/job/memory.current": str(g)})
    (tmp_path / "cgroup").write_text("4:memory:/job/step-gone/task\n0::/slice/job/step-gone\n")
    _mountinfo(tmp_path / "mountinfo", ("/", v1, "cgroup", "rw,memory"))
    info = tmp_path / "mountinfo"
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == 2 * g - g + 4096
    _mountinfo(info, ("/", v2, "cgroup2", "rw"))  # v2: up two levels, the least of the job's and the slice's
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == 2 * g
    # the usual layout (root=) walks up the same way: v1's job, and the least over v1 and v2
    _cgroup_tree(tmp_path / "usual", {"unified/cgroup.procs": "",
                                      **_under("memory", {**_v1_level(PAGE_COUNTER_MAX, 5),
                                                          **_under("job", _v1_level(2 * g, g // 2))})})
    assert memory.cgroup_room(tmp_path / "cgroup", tmp_path / "usual") == 2 * g - g // 2
    # a path that climbs out of the mount's root ("..") is not read from a folder beside it
    _cgroup_tree(tmp_path / "v2b", {"cgroup.controllers": "", "ns/cgroup.procs": "", **_under("x", {"memory.max": "1024",
                                                                              "memory.current": "0"})})
    _mountinfo(info, ("/ns", tmp_path / "v2b" / "ns", "cgroup2", "rw"))
    (tmp_path / "cgroup").write_text("0::/ns/../x\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) is None


def test_cgroup_room_without_mountinfo_reads_the_usual_layout(tmp_path, monkeypatch):
    # a /proc without mountinfo (or one that cannot be read): /sys/fs/cgroup as systemd lays it
    # out, v1 at memory/, v2 at the root or at unified/, as before mountinfo was read
    g = 2 ** 30
    sys_cgroup = tmp_path / "sys-fs-cgroup"
    monkeypatch.setattr(_cgroup, "_SYS_FS_CGROUP", sys_cgroup)
    _cgroup_tree(sys_cgroup, {"unified/cgroup.procs": "",
                              **_under("memory", {**_v1_level(PAGE_COUNTER_MAX, 5),
                                                  **_under("box", _v1_level(2 * g, g, 1024))})})
    (tmp_path / "cgroup").write_text("4:memory:/box\n0::/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "missing") == g + 1024
    unreadable = tmp_path / "mountinfo-dir"  # read_bytes of a folder: IsADirectoryError, an OSError
    unreadable.mkdir()
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=unreadable) == g + 1024
    # v2 at the root (a unified machine)
    _cgroup_tree(tmp_path / "v2only", {"cgroup.controllers": "memory", "box/memory.max": str(3 * g),
                                       "box/memory.current": str(g)})
    monkeypatch.setattr(_cgroup, "_SYS_FS_CGROUP", tmp_path / "v2only")
    (tmp_path / "cgroup").write_text("0::/box\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=unreadable) == 2 * g
    # a readable mountinfo without a memory hierarchy is believed: no fallback
    _mountinfo(tmp_path / "mountinfo")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") is None


def test_cgroup_room_reads_a_mount_point_whose_name_is_not_utf8(tmp_path):
    # a mount point (and a cgroup) named in Latin-1 bytes: decoded with os.fsdecode, the same
    # bytes back when the folder is opened; errors="replace" made a U+FFFD path that did not exist
    g = 2 ** 30
    base = os.fsencode(tmp_path)
    point = base + b"/m\xe9moire cg"
    os.makedirs(point + b"/caf\xe9")
    for name, text in _v1_level(PAGE_COUNTER_MAX, 5).items():
        with open(point + b"/" + name.encode(), "w") as f:
            f.write(text)
    for name, text in _v1_level(2 * g, g).items():
        with open(point + b"/caf\xe9/" + name.encode(), "w") as f:
            f.write(text)
    escaped = point.replace(b" ", b"\\040")
    with open(tmp_path / "mountinfo", "wb") as f:
        f.write(b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:40 / " + escaped
                + b" rw,nosuid shared:20 - cgroup cgroup rw,memory\n")
    with open(tmp_path / "cgroup", "wb") as f:
        f.write(b"4:memory:/caf\xe9\n0::/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo") == g


def test_cgroup_room_reads_the_mount_point_of_a_mount_rooted_above_the_namespace(tmp_path):
    # cgroup_namespaces(7): a mount made in the initial cgroup namespace, read from a process in a
    # new one, shows its root as "/.." (the parent of the namespace's root, one ".." a level),
    # while /proc/self/cgroup says "/". The folder between is named in neither file, so the
    # mount point, the nearest ancestor that can be found, is read (it was None: no limit)
    g = 2 ** 30
    v1, v2 = tmp_path / "freezer-like", tmp_path / "v2"
    _cgroup_tree(v1, {**_v1_level(3 * g, g), **_under("sub", _v1_level(8 * g, g)),
                      **_under("sub2", _v1_level(1024, 0))})
    _cgroup_tree(v2, {"cgroup.controllers": "memory", "memory.max": str(5 * g), "memory.current": str(g)})
    (tmp_path / "cgroup").write_text("4:memory:/\n0::/inner\n")
    _mountinfo(tmp_path / "mountinfo", ("/..", v1, "cgroup", "rw,memory"), ("/../..", v2, "cgroup2", "rw"))
    info = tmp_path / "mountinfo"
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == 2 * g  # v1's 3 - 1, not sub2's 1024
    # a process itself above the namespace's root, still below the mount's: read where it is
    (tmp_path / "cgroup").write_text("0::/../..\n4:memory:/../sub2\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) == 1024
    # a mount of another branch ("/../other") does not hold the process
    _mountinfo(info, ("/../other", v1 / "sub2", "cgroup", "rw,memory"))
    (tmp_path / "cgroup").write_text("4:memory:/\n")
    assert memory.cgroup_room(tmp_path / "cgroup", mountinfo=info) is None


def _usual_layout_room() -> tuple[bool, int | None]:
    """This process's cgroup room read here, apart from ``cgroup_room``: /proc/self/cgroup's
    paths under /sys/fs/cgroup as systemd lays it out (v1 at memory/, v2 at the root or
    unified/), each level's limit less its usage plus its inactive page cache. ``(found, room)``:
    found is False where a path is not under that layout (a container's own mount), where this
    reading says nothing."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return False, None
    sys_cgroup = Path("/sys/fs/cgroup")
    v2 = sys_cgroup if (sys_cgroup / "cgroup.controllers").exists() else sys_cgroup / "unified"
    rooms, found = [], False
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":
            top, names = v2, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            top, names = sys_cgroup / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                                 "total_inactive_file")
        else:
            continue
        folder = top / path.lstrip("/")
        if not folder.is_dir():
            if top.is_dir() and any(top.iterdir()):
                return False, None
            continue  # this hierarchy is not mounted here
        found = True
        while True:
            try:
                limit = (folder / names[0]).read_text().strip()
                used = int((folder / names[1]).read_text())
                stat = dict(ln.split() for ln in (folder / "memory.stat").read_text().splitlines())
            except (OSError, ValueError):
                limit = "max"
            if limit.isdigit() and int(limit) < PAGE_COUNTER_MAX:
                rooms.append(max(0, int(limit) - used + int(stat.get(names[2], 0))))
            if folder == top:
                break
            folder = folder.parent
    return found, min(rooms) if rooms else None


def test_free_memory_is_read_on_linux():
    free = memory.available_bytes(torch.device("cpu"))
    try:
        with open("/proc/meminfo") as f:
            meminfo = f.read()
    except OSError:
        assert free is None
        return
    kb = int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1))
    found, room = _usual_layout_room()
    if not found:
        # the cgroups are mounted elsewhere than this test reads: only that the cgroups can lower
        # MemAvailable, not raise it (their own reading is checked on the fake trees above)
        assert free is not None and free <= kb * 1024 * 1.05
        return
    expected = kb * 1024 if room is None else min(kb * 1024, room)
    assert free == pytest.approx(expected, rel=0.05)  # the same readings, a moment apart
    assert memory.available_bytes(torch.device("meta")) is None
