"""Benchmark cases of one whole ALAE training iteration (the three steps, R1 double backward
included, Adam and EMA updates), on the fused ops ('fused') vs the PyTorch references ('ref').

Cases: the trainable digits presets (StyleALAE ``digits-32`` and the MLP ``digits-mlp``), at their preset batch and
in the preset's training layout (``digits-32`` channels_last), from the same initial weights, at the preset's last
level of detail, fully faded in (where a default run spends most of its time; at 4x4 an
iteration is all Python and optimizer overhead). Each call of a candidate runs one more
iteration of its own trainer. Beside them (no target), ``photos-32``'s iteration in its
channels_last layout against the same model and images contiguous (``--channels-last``; on
the CPU its 8- and 16-map convolutions run about twice as fast channels_last).
"""

from __future__ import annotations

import copy

import torch

from ..models import build_model
from ..training.setups import resolve_setup
from ..training.trainer import ALAETrainer
from .harness import Case, Target

PRESETS = ("digits-32", "digits-mlp")


def _iteration(trainer: ALAETrainer, x: torch.Tensor):
    return lambda: trainer.step(x)


def preset_model(config, device="cpu") -> torch.nn.Module:
    """A model of ``config`` on ``device`` in the layout ``alae-fast train`` trains it in by default
    (channels_last where the config says so, as for ``digits-32`` and ``photos-32``); seeded by the caller."""
    model = build_model(config).to(device)
    if getattr(config, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    return model


def _last_level(name: str, device: torch.device):
    """Preset ``name``'s model (seed 0) in the layout the preset trains in (channels_last for
    ``digits-32`` and ``photos-32``, as ``alae-fast train`` moves it), schedule, the image count
    at the start of its last level's stable half (kimg_to_reach is where the fade-in ends), that
    phase, and a batch of images for it: the same setting for every candidate of a case."""
    setup = resolve_setup(name)
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = preset_model(setup.model_config, device)
    sched = setup.schedule
    at = int(round(sched.kimg_to_reach(sched.max_lod) * 1000))
    phase = sched.phase(at)
    x = (torch.rand(phase.batch, sched.channels, sched.resolution, sched.resolution, generator=gen) * 2 - 1)
    return setup, model, sched, at, phase, x.to(device)


def _trainer_at(model, sched, at: int, **kwargs) -> ALAETrainer:
    trainer = ALAETrainer(model, sched, seed=0, **kwargs)
    trainer.images_seen = at  # the first step() switches to the last level
    return trainer


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """One case per preset; candidates fused and ref (no compiled column: torch.compile
    cannot run the R1 double backward)."""
    out = []
    for name in PRESETS:
        _, model, sched, at, phase, x = _last_level(name, device)
        cand = {impl: _iteration(_trainer_at(copy.deepcopy(model).set_impl("auto" if impl == "fused" else "ref"),
                                             sched, at), x)
                for impl in ("fused", "ref")}
        targets = [Target(">= 1.5x faster than ref", "fused", "ref", 1 / 1.5)] if name == "digits-32" else []
        out.append(Case("alae_train", f"{name} iteration, batch {phase.batch}, lod {phase.lod}", cand, device,
                        targets=targets))
    if not quick:
        out.append(_layout_case(device))
    return out


def _layout_case(device: torch.device) -> Case:
    """photos-32 at its last level, batch 32, DiffAugment's translation as the preset: the
    iteration with the model channels_last ('fused') and contiguous ('contiguous')."""
    setup, model, sched, at, phase, x = _last_level("photos-32", device)
    cand = {name: _iteration(_trainer_at(copy.deepcopy(model).to(memory_format=layout), sched, at,
                                         augment=setup.model_config.augment), x)
            for name, layout in (("fused", torch.channels_last), ("contiguous", torch.contiguous_format))}
    return Case("alae_train", f"photos-32 iteration, batch {phase.batch}, lod {phase.lod}, channels_last, "
                "vs contiguous", cand, device)
