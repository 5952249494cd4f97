"""Benchmark cases of whole StyleALAE networks: fused ops against the same model on the references.

Candidates per case: ``fused`` (the model as built, every op on its compiled kernel) and
``ref`` (a deep copy with ``set_impl('ref')``: the same weights and convolutions, every fused
op replaced by its plain-PyTorch reference). Cases:

- ``digits-32`` (the CPU preset, lod 3 = 32x32, batch 32): G forward, E forward, and the R1
  double backward of step 1 (``grad(D(E(x)).sum(), x, create_graph=True)``, then backward of
  the penalty to E's and D's parameters);
- the same with fused resampling at every resolution (``fused_scale_resolution=4``:
  transposed/strided convolutions) instead of the paper's nearest x2 + conv in G and conv +
  2x2 average pool in E below 128 px, which the preset uses: the same function, less work
  for the fused ops;
- ``celeba-hq-256`` at lod 4 (64x64), batch 2: G forward + backward to every parameter.

``quick`` keeps the first three (the preset as it ships, which carries the target): the other
four take about a minute together on a 2-core CPU, most of it the celeba-hq-256 case.
"""

from __future__ import annotations

import copy

import torch

from ..models import from_preset
from .harness import Case, Target

OP = "alae_models"


def _pair(name: str, device: torch.device, **overrides):
    torch.manual_seed(0)
    model = from_preset(name, **overrides).to(device)
    return {"fused": model, "ref": copy.deepcopy(model).set_impl("ref")}


def _g_forward(model, ws, lod):
    def run():
        with torch.no_grad():
            return model.decode(ws, lod)
    return run


def _e_forward(model, x, lod):
    def run():
        with torch.no_grad():
            return model.encode(x, lod)
    return run


def _r1(model, x, lod):
    params = [p for n in ("encoder", "discriminator") for p in getattr(model, n).parameters()]

    def run():
        xg = x.detach().requires_grad_(True)
        score = model.discriminator(model.encode(xg, lod))
        (grad,) = torch.autograd.grad(score.sum(), xg, create_graph=True)
        penalty = grad.square().sum() * 5.0
        return torch.autograd.grad(penalty, params, allow_unused=True)  # biases do not move the gradient
    return run


def _g_forward_backward(model, ws, gy, lod):
    g = model.generator
    params = [g.const, *g.blocks[:lod + 1].parameters(), *g.to_rgb[lod].parameters()]

    def run():
        image = model.decode(ws, lod)
        return torch.autograd.grad(image, params, gy)
    return run


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """The cases listed in the module docstring on ``device``; ``quick`` (default False) keeps
    only the digits-32 preset's three; ``compile`` changes nothing (no compiled candidate)."""
    out = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    variants = (("digits-32", {}), ("digits-32 fused resampling", {"fused_scale_resolution": 4}))
    for tag, overrides in variants[:1] if quick else variants:
        models = _pair("digits-32", device, **overrides)
        cfg = models["fused"].config
        lod, batch = cfg.max_lod, 32
        ws = torch.randn(batch, cfg.latent_size, generator=gen).to(device)
        # pixels in [-1, 1], as images are: the model's encode refuses values beyond ±4, which
        # a randn batch of this size holds
        x = (torch.rand(batch, cfg.channels, cfg.resolution, cfg.resolution, generator=gen) * 2 - 1).to(device)
        label = f"{tag} lod {lod} batch {batch}"
        out.append(Case(OP, f"G fwd {label}", {k: _g_forward(m, ws, lod) for k, m in models.items()}, device))
        out.append(Case(OP, f"E fwd {label}", {k: _e_forward(m, x, lod) for k, m in models.items()}, device))
        targets = []
        if device.type == "cpu" and not overrides:  # the figure of the issue: the preset as it ships
            targets = [Target(">= 1.5x faster than ref", "fused", "ref", 1 / 1.5)]
        out.append(Case(OP, f"R1 double bwd {label}", {k: _r1(m, x, lod) for k, m in models.items()}, device,
                        targets=targets))
    if quick:
        return out

    models = _pair("celeba-hq-256", device)
    cfg = models["fused"].config
    lod, batch = 4, 2
    r = cfg.resolution_at(lod)
    ws = torch.randn(batch, cfg.latent_size, generator=gen).to(device)
    gy = torch.randn(batch, cfg.channels, r, r, generator=gen).to(device)
    out.append(Case(OP, f"G fwd+bwd celeba-hq-256 lod {lod} ({r}x{r}) batch {batch}",
                    {k: _g_forward_backward(m, ws, gy, lod) for k, m in models.items()}, device))
    return out
