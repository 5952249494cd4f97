"""The ALAE training iteration (Pidhorskyi et al., CVPR 2020, Algorithm 1), generic over ``ALAEModel``.

Each call of :meth:`ALAETrainer.step` runs, on this rank's share of one global batch:

1. **E and D** minimise ``softplus(D(E(G(F(z))))) + softplus(−D(E(x))) + (γ/2)·‖∇ₓD(E(x))‖²``
   (γ = 10; R1 on the real images, every step unless ``r1_interval`` > 1, in which case it
   runs every ``r1_interval``-th step with γ·interval, StyleGAN2's lazy regularisation). The
   fakes are made under ``torch.no_grad``, with style mixing.
2. **F and G** minimise ``softplus(−D(E(G(F(z)))))``, with style mixing; E and D are frozen.
3. **E and G** (and F, through G's input) minimise ``mean((E(G(w)) − w.detach())²)`` with
   w = F(z) and no mixing; D is frozen. ``lae_weight`` (default 1, the paper's and the official
   code's) scales this loss before its backward. Steps 1 and 3 share E's Adam and steps 2 and 3
   share G's, so the weight sets how large step 3's updates are beside the adversarial ones
   (Adam divides each step by the running RMS of both losses' gradients).

``w_avg`` moves towards the batch mean of the unmixed F(z) with β = ``config.w_avg_beta``
(0.995): after step 2 only (``w_avg_update='generator_step'``), or after F runs on fresh z in
each of the three steps, as the official ``Model.generate`` does (``'every_generate'``, three
updates per iteration; podgorskiy/ALAE model.py at 42bcf2e).

Style mixing (steps 1 and 2) replaces the style inputs from a cutoff on with F(z2) of a
second draw:

- ``style_mixing='per_sample'``: each sample mixes with probability ``mixing_prob`` at its own
  cutoff, uniform in [1, num_ws) over ALL of G's style inputs (StyleGAN's way);
- ``style_mixing='official'``: ONE draw per global batch: with probability ``mixing_prob`` the
  whole batch mixes at one cutoff, uniform in [1, 2·(lod + 1)] over the ACTIVE style inputs
  (both ends included, so the top draw leaves every active input unmixed), as the official
  ``Model.generate`` does with ``random.random()`` and ``random.randint(1, (lod + 1) * 2)``.

Two Adam optimisers, β = (0, 0.99), eps = 1e-8: one over E + D, one over F + G (step 3 steps
both; D has no gradient there, and Adam skips parameters without one). Their learning rate
follows the schedule's level; their state is dropped at every change of level, as ALAE does.

``d_zero_grad_step=True`` steps D in step 3 as well, with a zero gradient, as the official
train_alae.py does under the torch 1.x its models were trained with: its
``encoder_optimizer.zero_grad()`` zeroed gradients in place (torch >= 2.0 sets them to None), so
D, absent from the latent reconstruction loss, held a zero gradient that LREQAdam, which skips
only ``grad is None``, stepped. Such a step leaves D's weights where they are (β1 = 0: the step
is lr·g/√v̂ with g = 0) but counts a step and decays D's second moment by β2 once more, so in
steady state v ≈ 0.5·g² and D's real steps are ≈ √2 = 1.41 times those of one Adam step an
iteration.
After the three steps the EMA copy (:mod:`alae_fast.training.ema`) moves by
β = 0.5^(global batch / 10 000).

Randomness: every z (and the mixing draws) of a step is drawn for the GLOBAL batch from the
trainer's own ``torch.Generator`` (same seed on every rank), and each rank takes its slice.
A 2-process run therefore sees exactly the latents of a 1-process run with the same global
batch. G's noise inputs come from torch's default generator, seeded alike on every rank: each
rank draws the global batch's noise images, in a single process's order, and takes its slice
(:meth:`ALAETrainer._noise`).

``amp=True`` runs the forward passes under ``torch.autocast(dtype=torch.bfloat16)``; weights,
optimiser state and the EMA stay in the model's dtype.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from numbers import Real
from typing import Any

import torch
from torch import nn

from .distributed import DistributedContext
from .augment import augment_images, parse_augment
from .ema import EMA
from .losses import discriminator_loss, generator_loss, latent_reconstruction_loss
from .schedule import LODSchedule, Phase, blend_real_images, images_for_lod

__all__ = ["ALAETrainer", "ADAM_BETAS", "ADAM_EPS", "STYLE_MIXING_MODES", "W_AVG_UPDATE_MODES"]

ADAM_BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8
_NETS = ("mapping", "generator", "encoder", "discriminator")
STYLE_MIXING_MODES = ("per_sample", "official")
W_AVG_UPDATE_MODES = ("generator_step", "every_generate")


def _adam(params, lr: float) -> torch.optim.Adam:
    # The fused implementation (CPU and CUDA) updates every tensor in one kernel call; torch's
    # default on the CPU is a Python loop of ~10 small ops per parameter, which for the small
    # digits models cost as much as the fused ops saved.
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, foreach=True)


class ALAETrainer:
    """Runs ALAE training iterations on one model (see the module docstring).

    Args:
        model: an ``alae_fast.models.ALAEModel`` (mapping, generator, encoder, discriminator,
            ``encode``/``decode``, ``num_ws``, ``update_w_avg``), already on its device.
        schedule: the progressive-growing schedule (levels, batch, learning rate).
        ctx: the distributed context (default: a single process on the model's device).
        seed: seeds the trainer's latent generator (identical on every rank).
        r1_gamma: R1 weight γ (default 10).
        r1_interval: apply R1 every this many steps, scaled by it (default 1: every step).
        mixing_prob: style-mixing probability in steps 1 and 2 (default 0.9).
        style_mixing: 'per_sample' (default) or 'official' (see the module docstring).
        w_avg_update: 'generator_step' (default) or 'every_generate' (see the module docstring).
        ema_half_life_kimg: EMA half-life in thousands of images (default 10).
        amp: bfloat16 autocast of the forward passes (default False).
        d_zero_grad_step: also step D, with a zero gradient, in step 3 (default False; the
            official code's behaviour, see the module docstring).
        augment: DiffAugment policies applied to every image D∘E reads in steps 1 and 2, real
            and generated (:mod:`alae_fast.training.augment`; a comma-separated str or a
            sequence; default (): none, the paper's).
        lae_weight: weight of step 3's latent reconstruction loss in its backward, a finite
            number > 0 (default 1.0: the paper's unweighted loss; TypeError for a non-number
            or a bool, ValueError outside the range). The ``loss_ae`` that :meth:`step` returns
            is the unweighted loss.

    Attributes: ``model``, ``ema`` (an :class:`EMA`; ``ema.module`` is the model to use for
    outputs), ``augment`` (the policies, a tuple), ``lae_weight``, ``images_seen``, ``step_count``, ``lod``
    (level the optimisers were made for), ``opt_ed``, ``opt_fg``, ``generator`` (the latent
    ``torch.Generator``).
    """

    def __init__(self, model: nn.Module, schedule: LODSchedule, ctx: DistributedContext | None = None, *,
                 seed: int = 0, r1_gamma: float = 10.0, r1_interval: int = 1, mixing_prob: float = 0.9,
                 ema_half_life_kimg: float = 10.0, amp: bool = False, style_mixing: str = "per_sample",
                 w_avg_update: str = "generator_step", d_zero_grad_step: bool = False, augment=(),
                 lae_weight: float = 1.0):
        for name in _NETS:
            if not isinstance(getattr(model, name, None), nn.Module):
                raise TypeError(f"model: must have an nn.Module attribute {name!r} (an ALAEModel); "
                                f"got {type(model).__name__}")
        if not isinstance(schedule, LODSchedule):
            raise TypeError(f"schedule: expected an LODSchedule; got {type(schedule).__name__}")
        if not (isinstance(r1_gamma, (int, float)) and math.isfinite(r1_gamma) and r1_gamma >= 0):
            raise ValueError(f"r1_gamma: expected a finite number >= 0; got {r1_gamma!r}")
        if isinstance(r1_interval, bool) or not isinstance(r1_interval, int) or r1_interval < 1:
            raise ValueError(f"r1_interval: expected an int >= 1; got {r1_interval!r}")
        if not (isinstance(mixing_prob, (int, float)) and 0.0 <= mixing_prob <= 1.0):
            raise ValueError(f"mixing_prob: expected a number in [0, 1]; got {mixing_prob!r}")
        if style_mixing not in STYLE_MIXING_MODES:
            raise ValueError(f"style_mixing: expected one of {STYLE_MIXING_MODES}; got {style_mixing!r}")
        if w_avg_update not in W_AVG_UPDATE_MODES:
            raise ValueError(f"w_avg_update: expected one of {W_AVG_UPDATE_MODES}; got {w_avg_update!r}")
        if not (isinstance(ema_half_life_kimg, (int, float)) and ema_half_life_kimg > 0):
            raise ValueError(f"ema_half_life_kimg: expected a number > 0; got {ema_half_life_kimg!r}")
        if not isinstance(d_zero_grad_step, bool):
            raise TypeError(f"d_zero_grad_step: expected a bool; got {d_zero_grad_step!r}")
        self.d_zero_grad_step = d_zero_grad_step
        self.augment = parse_augment(augment, "augment")
        if isinstance(lae_weight, bool) or not isinstance(lae_weight, Real):
            raise TypeError(f"lae_weight: expected a number; got {type(lae_weight).__name__}")
        if not (math.isfinite(lae_weight) and lae_weight > 0):
            raise ValueError(f"lae_weight: expected a finite number > 0; got {lae_weight!r}")
        self.lae_weight = float(lae_weight)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.ctx = ctx if ctx is not None else DistributedContext(device=self.device)
        self.model = model
        # Each net's parameters, listed once: the three steps switch requires_grad and gather
        # gradients per net several times an iteration, and Module.parameters() walks the
        # module tree every time (~1 ms of a 40 ms digits-32 iteration at 8x8). Parameters keep
        # their identity for the trainer's life (optimisers and load_state_dict rely on it too).
        self._net_params = {n: tuple(getattr(model, n).parameters()) for n in _NETS}
        self.schedule = schedule
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.mixing_prob = float(mixing_prob)
        self.style_mixing, self.w_avg_update = style_mixing, w_avg_update
        self.amp = bool(amp)
        self.latent_size = int(model.latent_size)
        self.ctx.broadcast_module(model)
        self.ema = EMA(model, ema_half_life_kimg * 1000.0)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.images_seen = 0
        self.step_count = 0
        self.lod = schedule.phase(0).lod
        self._make_optimizers(schedule.lr_at(self.lod))

    # --- optimisers ----------------------------------------------------------------------------
    def _params(self, *names: str) -> list[nn.Parameter]:
        return [p for n in names for p in self._net_params[n]]

    def _make_optimizers(self, lr: float) -> None:
        # fresh optimisers: no Adam moments carried over from the previous level
        self.opt_ed = _adam(self._params("encoder", "discriminator"), lr)
        self.opt_fg = _adam(self._params("mapping", "generator"), lr)

    def _set_trainable(self, *names: str) -> None:
        for n in _NETS:
            flag = n in names
            for p in self._net_params[n]:
                p.requires_grad_(flag)

    def _autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    # --- schedule ------------------------------------------------------------------------------
    def phase(self) -> Phase:
        """The schedule's phase for the next step (level, blend, global batch, learning rate)."""
        return self.schedule.phase(self.images_seen)

    def prepare_real(self, x_full: torch.Tensor, phase: Phase | None = None) -> torch.Tensor:
        """Full-resolution real images ``[n, C, R, R]`` as the next step consumes them: pooled to
        the level's resolution, faded with its blend, on the trainer's device and dtype."""
        phase = phase or self.phase()
        x = x_full.to(self.device, self.dtype, non_blocking=True)
        return blend_real_images(images_for_lod(x, self.schedule, phase.lod), phase.blend)

    # --- latents -------------------------------------------------------------------------------
    def _global_randn(self, n_global: int) -> torch.Tensor:
        """This rank's slice of a [n_global, latent] normal draw (same draw on every rank)."""
        z = torch.randn(n_global, self.latent_size, generator=self.generator, device=self.device, dtype=self.dtype)
        n = n_global // self.ctx.world_size
        return z[self.ctx.rank * n:(self.ctx.rank + 1) * n]

    def _styles(self, n_global: int, mixing: bool, lod: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ws [n, num_ws, latent], w [n, latent]) from fresh z, mixed as ``style_mixing`` says."""
        z = self._global_randn(n_global)
        w = self.model.mapping(z)
        num_ws = int(self.model.num_ws)
        ws = w.unsqueeze(1).expand(-1, num_ws, -1)
        if not (mixing and self.mixing_prob > 0 and num_ws > 1):
            return ws, w
        if self.style_mixing == "official":
            cut = self._official_cutoff(lod, num_ws)
            if cut is None:
                return ws, w
            z2 = self._global_randn(n_global)
            layer = torch.arange(num_ws, device=self.device).view(1, -1, 1)
            return torch.where(layer < cut, ws, self.model.mapping(z2).unsqueeze(1)), w
        z2 = self._global_randn(n_global)
        n = z.shape[0]
        lo, hi = self.ctx.rank * n, (self.ctx.rank + 1) * n
        u = torch.rand(n_global, generator=self.generator, device=self.device)[lo:hi]
        cut = torch.randint(1, num_ws, (n_global,), generator=self.generator, device=self.device)[lo:hi]
        cut = torch.where(u < self.mixing_prob, cut, torch.full_like(cut, num_ws))
        layer = torch.arange(num_ws, device=self.device).view(1, -1, 1)
        ws = torch.where(layer < cut.view(-1, 1, 1), ws, self.model.mapping(z2).unsqueeze(1))
        return ws, w

    def _noise(self, n_global: int, lod: int):
        """G's noise inputs for one decode of this rank's slice: 'random' in a single process;
        with more, every rank draws the GLOBAL batch's noise images from torch's default
        generator (seeded alike on every rank) in the order a single process draws them, and
        takes its slice, so that a 2-process run sees the noise of a 1-process one."""
        gen = getattr(self.model, "generator", None)
        if self.ctx.world_size == 1 or not hasattr(gen, "noise_inputs"):
            return "random"
        n = n_global // self.ctx.world_size
        lo = self.ctx.rank * n
        noises = gen.noise_inputs("random", n_global, lod, gen.const.dtype, gen.const.device)
        return [t if t is None or t.shape[0] == 1 else t[lo:lo + n] for t in noises]

    def _official_cutoff(self, lod: int, num_ws: int) -> int | None:
        """One draw for the whole global batch: None (no mixing, probability 1 − mixing_prob) or
        a cutoff uniform in [1, min(2·(lod + 1), num_ws)], both ends included. Drawn from the
        trainer's generator on its device, so every rank draws the same."""
        u, c = torch.rand(2, generator=self.generator, device=self.device, dtype=torch.float64).tolist()
        if u >= self.mixing_prob:
            return None
        active = min(2 * (lod + 1), num_ws)  # StyleALAE has two style inputs per level
        return 1 + min(int(c * active), active - 1)

    def _track_w_avg(self, w: torch.Tensor) -> None:
        # every rank moves w_avg by the same global batch mean
        m = self.model
        m.update_w_avg(self.ctx.mean(w.detach().to(m.w_avg.dtype).mean(0, keepdim=True)))

    # --- one iteration -------------------------------------------------------------------------
    def _begin_step(self, x_real: torch.Tensor) -> tuple[Phase, torch.Tensor]:
        """The phase of this iteration (new optimisers at a change of level, the level's
        learning rate set) and ``x_real`` checked and brought to the level (pooled, blended)."""
        phase = self.phase()
        if phase.lod != self.lod:
            self.lod = phase.lod
            self._make_optimizers(phase.lr)
        for opt in (self.opt_ed, self.opt_fg):
            for group in opt.param_groups:
                group["lr"] = phase.lr
        n = phase.batch // self.ctx.world_size
        if x_real.shape[0] != n:
            raise ValueError(f"x_real: expected this rank's {n} images of the global batch {phase.batch}; "
                             f"got {x_real.shape[0]}")
        if x_real.shape[-1] == phase.resolution:
            x = x_real.to(self.device, self.dtype, non_blocking=True)
            return phase, blend_real_images(x, phase.blend)
        return phase, self.prepare_real(x_real, phase)

    def step(self, x_real: torch.Tensor) -> dict[str, Any]:
        """One training iteration on this rank's real images.

        Args:
            x_real: this rank's share of the global batch, ``[phase.batch / world_size, C, R, R]``
                at full resolution (as the data stream yields them; pooled and blended here) or
                already at the level's resolution.

        Returns:
            dict of this rank's detached scalar tensors ``loss_d``, ``loss_g``, ``loss_ae``,
            ``d_real``, ``d_fake``, ``r1`` and plain numbers ``lod``, ``blend``, ``batch``
            (global), ``lr``, ``kimg`` (after the step).
        """
        phase, x = self._begin_step(x_real)
        lod, blend, m = phase.lod, phase.blend, self.model
        # E, G and R1 work in the model's own pixel range (config.pixel_range; the data are in
        # [-1, 1]): R1 taken on [-1, 1] images would be scaled by ((hi - lo) / 2)^2 (1/4 for [0, 1]).
        x = m.to_native(x)

        def encode(img):
            return m.encode(img, lod, blend, native=True)

        def decode(w):
            return m.decode(w, lod, blend, noise=self._noise(phase.batch, lod), native=True)

        def encode_augmented(img):  # what D∘E reads in the adversarial steps (DiffAugment)
            if not self.augment:
                return encode(img)
            # transformed in the pipeline's [-1, 1] (0 mid grey) whatever range E reads
            out = augment_images(m.from_native(img), self.augment, self.generator, phase.batch,
                                 self.ctx.rank * img.shape[0])
            return encode(m.to_native(out))

        # 1. E, D: adversarial loss on real and generated images, R1 on real ones.
        with torch.no_grad(), self._autocast():
            ws, w = self._styles(phase.batch, mixing=True, lod=lod)
            x_fake = decode(ws)
        if self.w_avg_update == "every_generate":
            self._track_w_avg(w)
        self._set_trainable("encoder", "discriminator")
        lazy = self.step_count % self.r1_interval == 0
        gamma = self.r1_gamma * self.r1_interval if lazy else 0.0
        with self._autocast():
            loss_d, terms = discriminator_loss(encode_augmented, m.discriminator, x, x_fake.to(x.dtype), gamma,
                                               return_terms=True)
        self.opt_ed.zero_grad(set_to_none=True)
        loss_d.backward()
        self.ctx.average_gradients(self._params("encoder", "discriminator"))
        self.opt_ed.step()

        # 2. F, G: non-saturating loss through the frozen E and D.
        self._set_trainable("mapping", "generator")
        with self._autocast():
            ws, w = self._styles(phase.batch, mixing=True, lod=lod)
            loss_g = generator_loss(encode_augmented, m.discriminator, decode(ws))
        self.opt_fg.zero_grad(set_to_none=True)
        loss_g.backward()
        self.ctx.average_gradients(self._params("mapping", "generator"))
        self.opt_fg.step()
        self._track_w_avg(w)

        # 3. E, G (and F through G's input): latent reconstruction, no mixing.
        self._set_trainable("mapping", "generator", "encoder")
        with self._autocast():
            w = m.mapping(self._global_randn(phase.batch))
            loss_ae = latent_reconstruction_loss(encode, decode, w)
        if self.w_avg_update == "every_generate":
            self._track_w_avg(w)
        self.opt_ed.zero_grad(set_to_none=True)
        self.opt_fg.zero_grad(set_to_none=True)
        (loss_ae * self.lae_weight if self.lae_weight != 1.0 else loss_ae).backward()
        self.ctx.average_gradients(self._params(*_NETS))
        if self.d_zero_grad_step:  # zeros on every rank: nothing to average
            for p in self._net_params["discriminator"]:
                p.grad = torch.zeros_like(p)
        self.opt_ed.step()
        self.opt_fg.step()
        self._set_trainable(*_NETS)

        self.ema.update(m, phase.batch)
        self.images_seen += phase.batch
        self.step_count += 1
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "loss_ae": loss_ae.detach(),
                "d_real": terms["real"], "d_fake": terms["fake"], "r1": terms["r1"],
                "lod": lod, "blend": blend, "batch": phase.batch, "lr": phase.lr,
                "kimg": self.images_seen / 1000.0}

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs from the trainer (tensors and plain values only)."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "opt_ed": self.opt_ed.state_dict(), "opt_fg": self.opt_fg.state_dict(),
                "images_seen": self.images_seen, "step_count": self.step_count, "lod": self.lod,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (same model architecture and schedule)."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.images_seen = int(state["images_seen"])
        self.step_count = int(state["step_count"])
        self.lod = int(state["lod"])
        self._make_optimizers(self.schedule.lr_at(self.lod))
        self.opt_ed.load_state_dict(state["opt_ed"])
        self.opt_fg.load_state_dict(state["opt_fg"])
        self.generator.set_state(state["generator"].cpu())
