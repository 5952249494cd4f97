"""Exponential moving average of a model's weights, the copy used for every output and evaluation.

After each training iteration that consumed a global batch of ``batch`` images,

    θ_ema ← β·θ_ema + (1 − β)·θ,    β = 0.5^(batch / half_life_images)

so the average forgets half of its past every ``half_life_images`` images (10 000 in ALAE,
whatever the batch). Floating-point buffers (e.g. ``w_avg``) are copied, not averaged:
they are already running statistics.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA", "ema_beta"]


def ema_beta(batch: int, half_life_images: float = 10_000.0) -> float:
    """``0.5 ** (batch / half_life_images)`` (batch: images in the step, an int >= 1)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: expected a positive int; got {batch!r}")
    if not half_life_images > 0:
        raise ValueError(f"half_life_images: expected > 0; got {half_life_images!r}")
    return 0.5 ** (batch / float(half_life_images))


class EMA:
    """Holds ``module``, a frozen deep copy of the model that tracks its moving average.

    Args:
        model: the trained model; copied once here (parameters, buffers, config).
        half_life_images: images over which the average halves its memory (default 10 000).
    """

    def __init__(self, model: nn.Module, half_life_images: float = 10_000.0):
        if not half_life_images > 0:
            raise ValueError(f"half_life_images: expected > 0; got {half_life_images!r}")
        self.half_life_images = float(half_life_images)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self._lists = None  # (model, module, model params, module params)

    @torch.no_grad()
    def update(self, model: nn.Module, batch: int) -> float:
        """Move the average towards ``model`` after a step of ``batch`` images; returns the β used."""
        beta = ema_beta(batch, self.half_life_images)
        # The parameter lists are built once per (model, module) pair: walking the module trees
        # every iteration costs more than the small models' update itself. (Parameters keep
        # their identity through .to() and load_state_dict; buffers may not, so they are
        # listed anew.)
        if self._lists is None or self._lists[0] is not model or self._lists[1] is not self.module:
            src_p, ema_p = list(model.parameters()), list(self.module.parameters())
            if len(ema_p) != len(src_p):
                raise ValueError("model: has a different parameter list than the EMA copy")
            self._lists = (model, self.module, src_p, ema_p)
        _, _, src_p, ema_p = self._lists
        # lerp(a, b, w) = a + w·(b − a) = β·a + (1 − β)·b for w = 1 − β
        torch._foreach_lerp_(ema_p, [p.detach() for p in src_p], 1.0 - beta)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)
        return beta

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "half_life_images": self.half_life_images}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.half_life_images = float(state["half_life_images"])
