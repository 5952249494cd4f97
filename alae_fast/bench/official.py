"""Benchmark cases of official ALAE checkpoints at full size (FFHQ 1024x1024, 53.7 M parameters).

No real checkpoint is needed or committed: a synthetic one with random weights, written in
the official format (the official key names, layouts and EFFECTIVE weights, as
``Checkpointer.save`` writes them), is generated once per process in a temporary folder
(~215 MB) on first use and removed at exit.

Cases (CPU, and the second also on CUDA):
- ``load ffhq-1024 .pth + build``: ``load_official(path)``: reading the file without running
  pickled code, inferring the architecture from the shapes, building the StyleALAE and
  converting the weights (one candidate: the figure is the absolute time, with a
  :class:`~alae_fast.bench.harness.TimeTarget` of ``LOAD_SECONDS`` = 10 s on the 2-core CPU,
  checked by the report and by ``--strict`` like the ratio targets);
- ``encode+decode 1 image 1024x1024``: ``decode(encode(x), noise='const')`` with no
  gradients, ``fused`` (every op on its kernel) against ``ref`` (the same model with
  ``set_impl('ref')``).
"""

from __future__ import annotations

import atexit
import copy
import math
import shutil
import tempfile
from pathlib import Path

import torch

from ..models import load_official, preset_config
from ..models.official import _style_entries
from .harness import Case, TimeTarget

OP = "official"
LOAD_SECONDS = 10.0  # the load case's target, seconds per call
_FILES: dict[str, Path] = {}


def synthetic_official_checkpoint(name: str = "ffhq-1024", seed: int = 0) -> Path:
    """A random official-format checkpoint of paper preset ``name`` (EMA copies and
    dlatent_avg only, as the published files), written once per process; returns its path."""
    if name in _FILES:
        return _FILES[name]
    config = preset_config(name)
    g = torch.Generator().manual_seed(seed)
    models: dict[str, dict] = {}
    for _, model, key, shape, _how in _style_entries(config):
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        if key == "const":
            t = torch.ones(shape)
        elif len(shape) == 1 or shape[-1] == 1 and shape[0] == 1:  # biases, noise weights
            t = torch.randn(shape, generator=g) * 0.05
        else:
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        models.setdefault(model + "_s", {})[key] = t
    models["dlatent_avg"] = {"buff": torch.randn(1, config.latent_size, generator=g).repeat(config.num_ws, 1)}
    folder = Path(tempfile.mkdtemp(prefix="alae_fast_official_"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / f"{name}.pth"
    torch.save({"models": models, "auxiliary": {}}, path)
    _FILES[name] = path
    return path


def _load(name: str):
    def run():
        return load_official(synthetic_official_checkpoint(name))
    return run


def _encode_decode(model, x):
    def run():
        with torch.no_grad():
            return model.decode(model.encode(x), noise="const")
    return run


class _Lazy:
    """Builds the (fused, ref) model pair on first call, so that collecting the cases costs nothing."""

    def __init__(self, name: str, device: torch.device):
        self.name, self.device, self.models = name, device, None

    def get(self, which: str):
        if self.models is None:
            fused = load_official(synthetic_official_checkpoint(self.name), device=self.device)
            self.models = {"fused": fused, "ref": copy.deepcopy(fused).set_impl("ref")}
        return self.models[which]


def cases(device: torch.device, quick: bool = False, compile: bool = True) -> list[Case]:
    """The cases of the module docstring (``quick``/``compile`` change nothing: one shape, no
    compiled candidate)."""
    out = []
    if device.type == "cpu":
        out.append(Case(OP, "load ffhq-1024 .pth (53.7 M params) + build", {"fused": _load("ffhq-1024")}, device,
                        targets=[TimeTarget("<= 10 s on the 2-core CPU", "fused", LOAD_SECONDS)]))
    lazy = _Lazy("ffhq-1024", device)
    x = (torch.rand(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1)) * 2 - 1).to(device)

    def candidate(which):
        def run():
            return _encode_decode(lazy.get(which), x)()
        return run

    out.append(Case(OP, "ffhq-1024 encode+decode 1 image 1024x1024", {k: candidate(k) for k in ("fused", "ref")},
                    device))
    return out
