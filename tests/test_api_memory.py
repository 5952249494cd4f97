"""A count of images that cannot fit in memory, and a w too large for G, are refused by the
Python API in one line naming the argument, before any allocation (``alae_fast.inference.memory``,
``alae_fast.limits.MAX_ABS_W``). ``run.generate(10**9)`` was torch's allocator error
(``[enforce fail at alloc_cpu.cpp:127] ... 96000000000 bytes``) and ``run.decode`` of a w of 3e38
an all-NaN image, silently.

The run is a checkpoint written by hand from a freshly built digits-32 StyleALAE (untrained)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import alae_fast
import alae_fast.inference.memory as memory
from alae_fast.edit.commands import edit_strip
from alae_fast.inference.loading import CHECKPOINT_FORMAT, _official_schedule
from alae_fast.inference.sampling import (generate_seeds, interpolate_latents, sample_images, style_mix_images,
                                          style_mix_tiles)
from alae_fast.limits import MAX_ABS_W
from alae_fast.models import build_model
from alae_fast.models.presets import DIGITS_32

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model = build_model(DIGITS_32)
    schedule = _official_schedule(DIGITS_32)
    images = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    path = tmp_path_factory.mktemp("memory") / "ckpt.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": DIGITS_32.to_dict(), "schedule": schedule.to_dict(),
                "setup": "test", "trainer": {"ema": {"module": model.state_dict()}, "images_seen": images}}, path)
    return alae_fast.load(path)


def _largest_output_bytes(run) -> int:
    """The largest tensor any module outputs in a one-image decode, found by walking the
    autograd-free forward with torch's dispatch of every op (independent of the module hooks
    the estimate uses): a lower bound of what the estimate must cover."""
    from torch.utils._python_dispatch import TorchDispatchMode

    largest = 0

    class Largest(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal largest
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    largest = max(largest, t.numel() * t.element_size())
            return out

    with torch.no_grad(), Largest():
        run.model.decode(torch.zeros(1, run.model.latent_size), run.phase.lod, run.phase.blend, noise="zero")
    return largest


def test_the_estimate_covers_every_tensor_of_a_decode(run):
    per = memory.decode_bytes_per_image(run)
    r, c = run.phase.resolution, run.schedule.channels
    assert per >= c * r * r * 4 + _largest_output_bytes(run), per
    assert per < 64 * 1024 * (r * r) // (32 * 32) * 4, per  # and not absurdly more: 100 KiB at 32x32 here
    assert memory.decode_bytes_per_image(run) == per and run._decode_bytes  # measured once per level


def test_a_count_past_the_free_memory_is_refused_naming_it_and_the_most_that_fit(run, monkeypatch):
    per = memory.decode_bytes_per_image(run)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10 * per)
    w = torch.zeros(11, run.model.latent_size)
    x = torch.zeros(2, 1, run.phase.resolution, run.phase.resolution)
    cases = [
        (lambda: run.generate(11), "generate: n 11 would need"),
        (lambda: sample_images(run, 11), "sample_images: n 11 would need"),
        (lambda: run.decode(w), "decode: w of 11 latents would need"),
        (lambda: interpolate_latents(run, x[:1], x[1:], 11), "interpolate_latents: steps 11 would need"),
        (lambda: generate_seeds(run, list(range(11))), "generate_seeds: 11 seeds would need"),
        (lambda: style_mix_tiles(run, 1, 2), r"style_mix_tiles: rows 1 and cols 2 \(11 images\) would need"),
        (lambda: style_mix_images(run, x, x), r"style_mix_images: 2 sources and 2 destinations \(12 mixed images\)"),
        (lambda: edit_strip(run, x, {"a": np.ones(run.model.latent_size)}, {"a": 1.0}, steps=6),
         r"edit_strip: steps 6 with 2 images \(12 images\) would need"),
    ]
    for call, said in cases:
        with pytest.raises(ValueError, match="^" + said) as e:
            call()
        assert re.search(r"more than the .* free on cpu; about 10 images fit: make them in batches$", str(e.value))
    # exactly what fits is made
    assert run.generate(10).shape[0] == 10 and run.decode(w[:10]).shape[0] == 10
    assert interpolate_latents(run, x[:1], x[1:], 10).shape[0] == 10


def test_generate_of_a_billion_is_one_line_before_any_allocation(run):
    if memory.available_bytes(run.device) is None:
        pytest.skip("free memory cannot be read on this platform")
    with pytest.raises(ValueError, match=r"^generate: n 1000000000 would need about [\d.]+ [GMK]iB at once "):
        run.generate(10 ** 9)


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


def test_free_memory_is_read_on_linux():
    free = memory.available_bytes(torch.device("cpu"))
    try:
        with open("/proc/meminfo") as f:
            meminfo = f.read()
    except OSError:
        assert free is None
        return
    kb = int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1))
    assert 0 < free <= kb * 1024 * 1.5  # within what the file says (it moves between the reads)
    assert memory.available_bytes(torch.device("meta")) is None
