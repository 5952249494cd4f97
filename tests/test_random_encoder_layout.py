"""The report's random encoders run in the trained model's memory layout (2026-12-07): a model
trained channels_last (digits-32, photos-32) is evaluated beside random encoders that are
channels_last too, which halves the time of their small convolutions on the CPU. The layout
changes rounding only: the twenty draws keep their values, and their encodings agree with the
contiguous ones to float64 rounding."""

from __future__ import annotations

import copy

import pytest
import torch

from alae_fast.inference import metrics
from alae_fast.inference.metrics import RANDOM_ENCODER_SEED, memory_format_of, random_model
from alae_fast.models import build_model
from alae_fast.models.presets import preset_config
from alae_fast.training.setups import resolve_setup

pytestmark = pytest.mark.usefixtures("one_thread")


def test_memory_format_of_reads_the_models_layout():
    torch.manual_seed(0)
    style = build_model(preset_config("digits-32"))
    assert memory_format_of(style) is torch.contiguous_format
    assert memory_format_of(copy.deepcopy(style).to(memory_format=torch.channels_last)) is torch.channels_last
    # a model whose 4-D weights cannot tell the layouts apart (1x1, or one input channel) reads
    # contiguous rather than guessing
    ones = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Conv2d(8, 8, 1)).to(memory_format=torch.channels_last)
    assert memory_format_of(ones) is torch.contiguous_format
    assert memory_format_of(torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3)).to(
        memory_format=torch.channels_last)) is torch.channels_last


def test_random_model_in_either_layout_holds_the_same_draw():
    config = preset_config("digits-32")
    a = random_model(config, RANDOM_ENCODER_SEED, "cpu")
    b = random_model(config, RANDOM_ENCODER_SEED, "cpu", torch.channels_last)
    assert memory_format_of(a) is torch.contiguous_format and memory_format_of(b) is torch.channels_last
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb), na
    assert not any(p.requires_grad for p in b.parameters()) and not b.training
    a, b = a.double(), b.double()
    assert memory_format_of(b) is torch.channels_last  # the float64 comparison is across layouts
    x = torch.rand(5, 1, 32, 32, dtype=torch.float64) * 2 - 1
    for lod, blend in [(3, 1.0), (2, 0.5)]:
        r = 4 * 2 ** lod
        xi = torch.nn.functional.avg_pool2d(x, 32 // r) if r < 32 else x
        wa, wb = a.encode(xi, lod, blend), b.encode(xi, lod, blend)
        assert wa.abs().max() > 0.1  # random weights give a real encoding, not zeros
        torch.testing.assert_close(wb, wa, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("channels_last", [False, True])
def test_latent_eval_builds_its_random_encoders_in_the_models_layout(monkeypatch, channels_last):
    seen = []
    real = metrics.random_model

    def spy(config, seed, device, memory_format=torch.contiguous_format):
        seen.append((seed, memory_format))
        return real(config, seed, device, memory_format)

    monkeypatch.setattr(metrics, "random_model", spy)
    monkeypatch.setattr(metrics, "RANDOM_ENCODERS", 2)
    config = preset_config("digits-32")
    torch.manual_seed(1)
    model = build_model(config).eval().requires_grad_(False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    sched = resolve_setup("digits-32").schedule
    phase = sched.phase(int(round(sched.kimg_to_reach(sched.max_lod) * 1000)))  # the last level, faded in
    assert phase.lod == sched.max_lod and phase.blend == 1.0
    report = metrics.latent_eval(model, config, sched, phase, None, seed=0, max_train=200)
    want = torch.channels_last if channels_last else torch.contiguous_format
    assert seen == [(RANDOM_ENCODER_SEED, want), (RANDOM_ENCODER_SEED + 1, want)]
    assert report["random_encoder"]["count"] == 2
