"""A tiny progressive-growing ALAE for the trainer and CLI tests (not a test module).

It honours the ``ALAEModel`` API the trainer relies on - ``encode(x, lod, blend)``,
``decode(w, lod, blend, noise)``, ``num_ws`` > 1 (so style mixing is exercised), per-level
resolutions 4·2^lod with fade-in blending - and carries its own schedule fields
(``resolution``, ``channels``, ``layer_count``, ``lod_kimg``, ``lod_batch``, ``lod_lr``), as a
StyleALAE config must. It records the (shape, lod, blend) of every encode call so tests can
check what the trainer fed it. Plain ``nn.Linear`` layers: small and fast.

Tests load it with ``toy()`` from tests/support.py (``from alae_fast_tests_support import toy``),
once per process, under the fixed module name ``alae_fast_tests_toy_alae``. Loading it registers
the config kind and the model preset ``toy-pg``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from alae_fast.models import ALAEConfig, ALAEModel, list_presets, register_config, register_model, register_preset
from alae_fast.models.mlp_alae import MLPDiscriminator, MLPMapping


@register_config
@dataclasses.dataclass(frozen=True)
class ToyPGConfig(ALAEConfig):
    kind: ClassVar[str] = "toy_pg_test"
    latent_size: int = 8
    mapping_layers: int = 2
    resolution: int = 16
    channels: int = 1
    layer_count: int = 3
    styles_per_layer: int = 2
    lod_kimg: tuple = (0.032,)
    lod_batch: tuple = (8,)
    lod_lr: tuple = (0.002,)


@register_model(ToyPGConfig)
class ToyPGALAE(ALAEModel):
    def __init__(self, config: ToyPGConfig):
        super().__init__(config)
        c = config
        self.mapping = MLPMapping(c.latent_size, c.mapping_layers, c.mapping_lrmul, c.lrelu_slope)
        self.discriminator = MLPDiscriminator(c.latent_size, c.discriminator_layers, c.discriminator_lrmul)
        self.res = [4 * 2 ** lod for lod in range(c.layer_count)]
        self.generator = nn.ModuleList(nn.Linear(c.latent_size * self.num_ws, c.channels * r * r) for r in self.res)
        self.encoder = nn.ModuleList(nn.Linear(c.channels * r * r, c.latent_size) for r in self.res)
        self.calls: list[tuple[tuple, int, float]] = []

    @property
    def num_ws(self) -> int:
        return self.config.layer_count * self.config.styles_per_layer

    def _enc(self, x, lod):
        return F.leaky_relu(self.encoder[lod](x.flatten(1)), 0.2)

    def encode(self, x, lod=None, blend=1.0, *, native=False):
        x = x if native else self.to_native(x)
        lod = len(self.res) - 1 if lod is None else lod
        assert x.shape[-1] == self.res[lod], (x.shape, lod)
        self.calls.append((tuple(x.shape), lod, float(blend)))
        w = self._enc(x, lod)
        if blend < 1.0 and lod > 0:
            w = torch.lerp(self._enc(F.avg_pool2d(x, 2), lod - 1), w, blend)
        return w

    def _dec(self, ws, lod):
        r = self.res[lod]
        return self.generator[lod](ws.flatten(1)).view(ws.shape[0], self.config.channels, r, r)

    def decode(self, w, lod=None, blend=1.0, noise="random", *, native=False):
        lod = len(self.res) - 1 if lod is None else lod
        ws = self._check_ws(w, "decode")
        y = self._dec(ws, lod)
        if blend < 1.0 and lod > 0:
            y = torch.lerp(F.interpolate(self._dec(ws, lod - 1), scale_factor=2, mode="nearest"), y, blend)
        return y if native else self.from_native(y)


if "toy-pg" not in list_presets():
    register_preset("toy-pg", ToyPGConfig(), "test-only progressive toy ALAE: 4, 8, 16 px, 6 style inputs")
