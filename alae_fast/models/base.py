"""What every ALAE model shares: the four networks, the w average, truncation and style mixing.

A model holds F (``mapping``: z -> w), G (``generator``), E (``encoder``: x -> w) and D
(``discriminator``: w -> one score per sample) and implements ``encode`` and ``decode``;
``generate`` and ``reconstruct`` are built on those here.

Pixels: ``encode`` takes and ``decode`` gives images in [-1, 1], alae_fast's convention, for
every model. A model whose networks work in another range (``config.pixel_range``, e.g. the
official mnist_ref MLP's [0, 1]) maps at that boundary; ``native=True`` skips the map (the
trainer uses it, so that E and R1 see exactly what the model's authors fed it). G takes ``num_ws`` style inputs
(1 for the MLP ALAE, 2·L for StyleALAE); F and E produce ONE w per sample, which ``generate``
broadcasts to the ``num_ws`` inputs before truncating and mixing.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import nn

from ..limits import MAX_ABS_W
from ..nn.equalized import set_impl
from ..ops._dispatch import is_finite, said_typed
from .config import ALAEConfig

# G's noise inputs (``decode(..., noise=...)``): 'random' fresh N(0, 1) images per sample;
# 'batch' one draw per layer shared by the batch (the official ``batch_constant``, used by its
# PPL metric); 'const' fixed per-layer images (as NVlabs' noise_mode='const'); 'zero' or
# 'none' no noise. A list of per-layer tensors is also accepted (see StyleALAE.decode).
NOISE_MODES = ("random", "batch", "const", "zero", "none")

# Truncation psi, the one range for every place it is given (``ALAEModel.generate``/``truncate``,
# ``alae_fast.load(...).generate``, ``alae_fast.inference.sample_images``/``generate_seeds``, the
# CLI's ``--psi`` and the web page): 0 gives w_avg, 1 no truncation, above 1 exaggerates, below 0
# mirrors through w_avg; beyond [-1, 2] only artefacts remain.
PSI_RANGE = (-1.0, 2.0)

# What E accepts as images (the ops' dtypes, alae_fast.ops): integer images (uint8) are refused.
IMAGE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# Pixels are in [-1, 1]. The user-facing entries (alae_fast.load(...).encode/reconstruct,
# prepare_images) refuse images with a value beyond +-PIXEL_LIMIT: the 0..255 (or 0..65535) scale
# given as floats, which E would otherwise encode into nonsense without a word. The margin lets
# G's own unclamped outputs (about [-1, 1], more at psi 2) go back through E.
PIXEL_LIMIT = 4.0


def check_psi(value, name: str = "psi", op: str | None = None) -> float:
    """``value`` as a float when it is a finite real number (Python's or NumPy's) in
    :data:`PSI_RANGE`; otherwise TypeError for another type (a bool, a string, None, a tensor) or
    ValueError for NaN, infinity or a number outside, naming ``name`` (as the caller spelled the
    parameter) and ``op``."""
    where = f"{op}: " if op else ""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{where}{name} must be a finite number in [{PSI_RANGE[0]:g}, {PSI_RANGE[1]:g}]; "
                        f"got {said_typed(value)}")
    if not is_finite(value):
        raise ValueError(f"{where}{name} must be a finite number in [{PSI_RANGE[0]:g}, {PSI_RANGE[1]:g}]; "
                         f"got {value!r}")
    if not PSI_RANGE[0] <= value <= PSI_RANGE[1]:
        raise ValueError(f"{where}{name} must be in [{PSI_RANGE[0]:g}, {PSI_RANGE[1]:g}] (0: w_avg, 1: no "
                         f"truncation); got {value!r}")
    return float(value)


# How the refusals of out-of-range pixels say to encode such values anyway: the model's own
# encode checks them as well, so the way round is its native entry, which reads no values.
RUN_ENCODE_ANYWAY = "run.model.encode(x, run.phase.lod, run.phase.blend, native=True)"
MODEL_ENCODE_ANYWAY = "model.encode(x, lod, blend, native=True)"


def _values_readable(t: torch.Tensor) -> bool:
    """Whether ``t``'s values can be looked at: not on the meta device (``flops_per_image``
    counts the ops on stand-ins without data) nor a stand-in traced by ``torch.compile``
    (reading a value there breaks the graph)."""
    return t.numel() > 0 and t.device.type != "meta" and not torch.compiler.is_compiling()


def check_finite(t: torch.Tensor, op: str, name: str) -> None:
    """ValueError ``"<op>: <name> contains NaN or infinity"`` when the tensor ``t`` holds one
    (an empty tensor, or one without values to read, passes: see :func:`_values_readable`)."""
    if _values_readable(t) and not bool(torch.isfinite(t.detach()).all()):
        raise ValueError(f"{op}: {name} contains NaN or infinity")


def check_latent_values(w: torch.Tensor, op: str, name: str = "w",
                        usual: str = "an encoded or mapped w lies within about ±10") -> None:
    """ValueError naming ``op`` and ``name`` when the float tensor ``w`` holds NaN or infinity,
    or a value beyond ±:data:`~alae_fast.limits.MAX_ABS_W` (1e4): finite, but G's pixels then
    overflow to 1e27 or NaN. ``usual`` says where such values normally lie (the message's
    parenthesis). One reduction, read once: a single host sync on an accelerator."""
    if not _values_readable(w):
        return
    big = float(w.detach().abs().amax())
    if not math.isfinite(big):  # amax propagates NaN; inf is its own maximum
        raise ValueError(f"{op}: {name} contains NaN or infinity")
    if big > MAX_ABS_W:
        raise ValueError(f"{op}: {name} must have values within ±{MAX_ABS_W:g} ({usual}); got {big:g}")


def check_pixel_values(x: torch.Tensor, op: str, name: str = "x", anyway: str = RUN_ENCODE_ANYWAY) -> None:
    """ValueError naming ``op`` and ``name`` when a float image tensor ``x`` holds NaN or
    infinity (``"<op>: <name> contains NaN or infinity"``) or a value beyond
    ±:data:`PIXEL_LIMIT` (pixels belong in [-1, 1]): a 0..255 image is told how to convert,
    values of another scale how to encode them anyway (``anyway``: the call to name)."""
    if not _values_readable(x):
        return
    lo, hi = (float(v) for v in torch.aminmax(x.detach().float()))
    if not (math.isfinite(lo) and math.isfinite(hi)):  # aminmax propagates NaN
        raise ValueError(f"{op}: {name} contains NaN or infinity")
    if lo < -PIXEL_LIMIT or hi > PIXEL_LIMIT:
        hint = (" (convert 0-255 images with x / 127.5 - 1)" if lo >= 0 else
                f" (images of another scale; to encode such values anyway: {anyway})")
        raise ValueError(f"{op}: {name} must hold pixels in [-1, 1]; got values in [{lo:g}, {hi:g}]{hint}")


def check_cutoff_range(cutoff: int, num_ws: int, op: str, name: str = "cutoff") -> None:
    """ValueError naming ``op`` and ``name`` unless the int ``cutoff`` is in [1, ``num_ws``]:
    truncation applies to the style inputs below it, so 0 would truncate none and a cutoff past
    ``num_ws`` names inputs the model does not have (``num_ws`` itself truncates them all)."""
    if not 1 <= cutoff <= num_ws:
        raise ValueError(f"{op}: {name} must be an int in [1, {num_ws}] (the style inputs below it are truncated; "
                         f"this model has {num_ws}); got {cutoff}")


def check_images(x, op: str, name: str = "x") -> None:
    """TypeError unless ``x`` is a tensor of one of :data:`IMAGE_DTYPES` (shapes are the model's
    to check): what every entry that takes images runs first."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor; got {type(x).__name__}")
    if x.dtype not in IMAGE_DTYPES:
        raise TypeError(f"{op}: {name} must have dtype float16, bfloat16, float32 or float64 (pixels in [-1, 1]); "
                        f"got {x.dtype}" + (" (convert 0-255 images with x.float() / 127.5 - 1)"
                                            if x.dtype == torch.uint8 else ""))


class ALAEModel(nn.Module):
    """Base class of the ALAE models (see the module docstring).

    Subclasses set ``self.mapping``, ``self.generator``, ``self.encoder``,
    ``self.discriminator`` and implement ``num_ws``, ``encode`` and ``decode``.

    Buffers: ``w_avg [latent_size]``, the running mean of F's output (zeros at first), which
    the trainer updates with ``update_w_avg`` and truncation pulls towards.

    A subclass's ``encode`` checks ``x`` with :func:`check_images` first (a tensor of a float
    dtype; TypeError naming ``encode: x`` otherwise), so a uint8 image is refused at the entry
    rather than deep inside an op. Every tensor argument (x, w, z, ws) must be on the model's
    device (its ``w_avg``'s; ValueError naming the method and the argument otherwise, rather than
    an op deep inside naming its own). ``lod``, ``blend``, ``noise`` (and ``generate``'s
    ``mixing_prob``) of the wrong type (a float or string lod, a string or tensor blend, a noise
    that is neither a string nor a list) raise TypeError naming the method and the argument, as
    ``alae_fast.load(...)``'s methods do; bad values of the right type raise ValueError.

    Values. ``encode``, ``decode``, ``generate`` and ``reconstruct`` refuse input that would
    give NaN or nonsense without a word, with a ValueError naming the method and the argument,
    as ``alae_fast.load(...)``'s methods do (the same checks and words): NaN or infinity in x,
    w, z or a noise tensor; pixels beyond ±:data:`PIXEL_LIMIT` (4; pixels belong in [-1, 1]: a
    0..255 image is refused rather than encoded into nonsense); a w or z value beyond
    ±:data:`~alae_fast.limits.MAX_ABS_W` (1e4: an encoded or mapped w lies within about ±10,
    and G's output overflows to NaN long before float32 does); a negative truncation cutoff
    (one of num_ws or more truncates every input, as the official code's fixed 8). Reading the values costs one reduction and, on an accelerator, one host sync
    per call, so they are read only on the user-facing path: ``native=True`` (the trainer's
    path, which feeds E and G its own values every step) checks types and shapes only, and so
    does ``decode`` of a w that requires grad while autograd records (a descent's iterate,
    e.g. ``project_latents``, which says its own divergence). Tensors on the meta device and
    tensors traced by ``torch.compile`` have no values to read and pass unread.
    """

    def __init__(self, config: ALAEConfig):
        super().__init__()
        if not isinstance(config, ALAEConfig):
            raise TypeError(f"{type(self).__name__}: config must be an ALAEConfig; got {type(config).__name__}")
        self.config = config
        self.latent_size = config.latent_size
        self.register_buffer("w_avg", torch.zeros(config.latent_size))

    @classmethod
    def _resolve_config(cls, config_cls: type, config, overrides: dict):
        """``config`` (None: ``config_cls()``) with ``overrides`` applied; TypeError when it is
        not a ``config_cls``. What a model's ``__init__(config=None, **overrides)`` starts with."""
        config = config_cls() if config is None else config
        if not isinstance(config, config_cls):
            article = "an" if config_cls.__name__[0] in "AEIOUM" else "a"
            raise TypeError(f"{cls.__name__}: config must be {article} {config_cls.__name__}; "
                            f"got {type(config).__name__}")
        return config.replace(**overrides) if overrides else config

    @property
    def num_ws(self) -> int:
        """How many style inputs G takes."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor, lod: int | None = None, blend: float = 1.0, *,
               native: bool = False) -> torch.Tensor:
        """E(x); x in [-1, 1], or in ``config.pixel_range`` with ``native=True`` (values then
        unchecked: see the class docstring)."""
        raise NotImplementedError

    def decode(self, w: torch.Tensor, lod: int | None = None, blend: float = 1.0,
               noise: str = "random", *, native: bool = False) -> torch.Tensor:
        """G(w); images in about [-1, 1], or in ``config.pixel_range`` with ``native=True``
        (values then unchecked: see the class docstring)."""
        raise NotImplementedError

    # --- pixel range -----------------------------------------------------------------------
    def to_native(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (the pipeline's range) -> ``config.pixel_range`` (what E reads).
        The same tensor when that range is (-1, 1); otherwise an affine map, so gradients flow."""
        lo, hi = self.config.pixel_range
        if (lo, hi) == (-1.0, 1.0):
            return x
        return (x + 1.0) * ((hi - lo) / 2.0) + lo

    def from_native(self, y: torch.Tensor) -> torch.Tensor:
        """Images in ``config.pixel_range`` (what G writes) -> [-1, 1]; inverse of ``to_native``."""
        lo, hi = self.config.pixel_range
        if (lo, hi) == (-1.0, 1.0):
            return y
        return (y - lo) * (2.0 / (hi - lo)) - 1.0

    # --- shared ----------------------------------------------------------------------------
    def generate(self, z: torch.Tensor, lod: int | None = None, blend: float = 1.0,
                 truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 mixing_prob: float = 0.0, noise: str = "random") -> torch.Tensor:
        """Images G(F(z)), with optional style mixing and truncation.

        Args:
            z: [N, latent_size] latent codes (any float dtype of the model), finite, within
                ±``MAX_ABS_W`` (1e4; z ~ N(0, I) lies within about ±6).
            lod, blend, noise: passed to ``decode`` (a list of noise tensors: finite).
            truncation_psi: w <- w_avg + psi * (w - w_avg) on the style inputs below the
                cutoff, a finite number in ``PSI_RANGE`` [-1, 2] (default 1.0: no truncation; 0
                gives every sample w_avg).
            truncation_cutoff: None (default: truncate every style input) or an int >= 0:
                truncate style inputs [0, cutoff) only; a cutoff of num_ws or more truncates them
                all, as the official code's fixed cutoff 8 does on a model of fewer inputs, and 0
                none (``LoadedRun.generate``, the user's entry, takes [1, num_ws] only).
            mixing_prob: probability, per sample, that a second w = F(z2), z2 ~ N(0, I), takes
                over the style inputs from a cutoff drawn uniformly in [1, num_ws) (default 0).
                A model with num_ws == 1 has no such cutoff, so mixing leaves it unchanged.

        Returns: what ``decode`` returns for those styles: images [N, C, r, r] in about [-1, 1].

        Raises, naming ``generate`` and the argument: TypeError for a z that is not a float
        tensor, a truncation_psi or mixing_prob that is not a real number, a truncation_cutoff
        neither None nor an int (a bool, a float), a lod, blend or noise of the wrong type;
        ValueError for a z of the wrong shape, on another device than the model, with NaN or
        infinity or a value beyond ±1e4, a psi outside ``PSI_RANGE``, a negative cutoff, a
        mixing_prob outside [0, 1], a bad lod, blend or noise value (see the class docstring).
        """
        self._check_z(z, "generate")
        check_latent_values(z, "generate", "z", usual="z ~ N(0, I) lies within about ±6")
        psi = check_psi(truncation_psi, "truncation_psi", "generate")
        truncation_cutoff = _check_cutoff(truncation_cutoff, "truncation_cutoff", "generate")
        p = _finite(mixing_prob, "mixing_prob", "generate")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"generate: mixing_prob must be in [0, 1]; got {mixing_prob}")
        # named as generate's, not as the decode that reads them below
        self._check_lod_blend_noise(lod, blend, noise, "generate", getattr(self, "max_lod", None))
        self._check_noise_values(noise, "generate")
        ws = self.mapping(z).unsqueeze(1).expand(-1, self.num_ws, -1)
        if p > 0 and self.num_ws > 1:
            ws = self.mix_styles(ws, self.mapping(torch.randn_like(z)), p)
        if psi != 1.0:
            ws = self.truncate(ws, psi, truncation_cutoff)
        # the styles are F's, not the caller's: decode's value checks would blame a "w" the
        # caller never gave (and cost a sync for nothing)
        return self.from_native(self.decode(ws, lod, blend, noise, native=True))

    def reconstruct(self, x: torch.Tensor, lod: int | None = None, blend: float = 1.0,
                    noise: str = "random") -> torch.Tensor:
        """G(E(x)): the images' reconstructions, shaped like ``decode``'s output. x as ``encode``
        takes it (a float tensor, finite, pixels in [-1, 1]); TypeError naming ``reconstruct: x``
        for a non-float one, and ``encode``'s and ``decode``'s errors (see the class docstring)."""
        check_images(x, "reconstruct")
        # E's w goes to G unchecked: it is no input of the caller's, and a run's evaluation
        # reconstructs through this at every snapshot
        return self.from_native(self.decode(self.encode(x, lod, blend), lod, blend, noise, native=True))

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
        """``w_avg + psi * (ws - w_avg)`` on style inputs [0, cutoff) (all when cutoff is None).

        ws: [N, latent_size] or [N, num_ws, latent_size], a float tensor on the model's device;
        returns a new tensor of that shape. psi: a finite number in ``PSI_RANGE``. cutoff: None
        or an int >= 0 (as ``generate``'s truncation_cutoff: num_ws or more truncates every
        input, 0 none).

        Raises, naming ``truncate`` and the argument: TypeError for a ws that is no float tensor,
        a psi that is not a real number, a cutoff neither None nor an int; ValueError for a ws of
        another shape or device, a psi outside ``PSI_RANGE``, a negative cutoff.
        """
        psi = check_psi(psi, "psi", "truncate")
        cutoff = _check_cutoff(cutoff, "cutoff", "truncate")
        if not isinstance(ws, torch.Tensor) or not ws.is_floating_point():
            raise TypeError(f"truncate: ws must be a float tensor [N, {self.latent_size}] or "
                            f"[N, num_ws, {self.latent_size}]; got "
                            f"{ws.dtype if isinstance(ws, torch.Tensor) else type(ws).__name__}")
        if ws.ndim not in (2, 3) or ws.shape[-1] != self.latent_size:
            raise ValueError(f"truncate: ws must have shape [N, {self.latent_size}] or "
                             f"[N, num_ws, {self.latent_size}]; got {tuple(ws.shape)}")
        self._check_device(ws, "truncate", "ws")
        w_avg = self.w_avg.to(ws.dtype)
        truncated = torch.lerp(w_avg.expand_as(ws), ws, psi)
        if cutoff is None:
            return truncated
        if ws.ndim == 2:  # a single style input, index 0
            return truncated if cutoff >= 1 else ws
        layer = torch.arange(ws.shape[1], device=ws.device).view(1, -1, 1)
        return torch.where(layer < cutoff, truncated, ws)

    def mix_styles(self, ws: torch.Tensor, w2: torch.Tensor, prob: float) -> torch.Tensor:
        """Per sample, with probability ``prob``, style inputs [c, num_ws) come from ``w2``.

        ws: [N, num_ws, latent_size]; w2: [N, latent_size]; c uniform in [1, num_ws).
        The draw happens on ws's device (no host synchronisation).
        """
        n, num_ws = ws.shape[0], ws.shape[1]
        if num_ws < 2:
            return ws
        cutoff = torch.randint(1, num_ws, (n,), device=ws.device)
        mixed = torch.rand(n, device=ws.device) < prob
        cutoff = torch.where(mixed, cutoff, torch.full_like(cutoff, num_ws))
        layer = torch.arange(num_ws, device=ws.device).view(1, -1, 1)
        return torch.where(layer < cutoff.view(-1, 1, 1), ws, w2.unsqueeze(1))

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float | None = None) -> None:
        """w_avg <- mean_N(w) + beta * (w_avg - mean_N(w)); beta defaults to config.w_avg_beta.

        w: [N, latent_size] or [N, num_ws, latent_size] (all style inputs are averaged).
        beta: None or a number in [0, 1] (1 keeps w_avg, 0 replaces it by the batch mean; outside,
        w_avg would be pushed past both). TypeError for a beta that is not a real number,
        ValueError for one outside [0, 1] or a w whose last dimension is not latent_size.
        """
        beta = self.config.w_avg_beta if beta is None else _finite(beta, "beta", "update_w_avg")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"update_w_avg: beta must be None or a number in [0, 1]; got {beta!r}")
        if w.shape[-1] != self.latent_size:
            raise ValueError(f"update_w_avg: w must end in latent_size {self.latent_size}; got {tuple(w.shape)}")
        mean = w.detach().reshape(-1, self.latent_size).mean(0).to(self.w_avg.dtype)
        self.w_avg.copy_(torch.lerp(mean, self.w_avg, beta))

    def set_impl(self, impl: str) -> ALAEModel:
        """Runs every layer on the compiled kernels ('auto') or the references ('ref'). Returns self."""
        set_impl(self, impl)
        return self

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per network and in total: keys mapping, generator, encoder,
        discriminator, total."""
        counts = {name: sum(p.numel() for p in getattr(self, name).parameters())
                  for name in ("mapping", "generator", "encoder", "discriminator")}
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    # --- argument checks shared by subclasses ------------------------------------------------
    def _check_device(self, t: torch.Tensor, op: str, name: str) -> None:
        """ValueError naming ``op`` and ``name`` unless the tensor ``t`` is on the model's device
        (its ``w_avg``'s): otherwise the first layer's op refused it in its own words, naming an
        argument the caller never gave (``bias_act: b must be on x's device``), or torch did."""
        device = self.w_avg.device
        if t.device != device:
            raise ValueError(f"{op}: {name} must be on the model's device {device}; got {t.device} "
                             f"(move it with {name}.to({str(device)!r}))")

    def _check_z(self, z, op: str) -> None:
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{op}: z must be a torch.Tensor; got {type(z).__name__}")
        if not z.is_floating_point():
            raise TypeError(f"{op}: z must have a float dtype (float16, bfloat16, float32, float64); got {z.dtype}")
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"{op}: z must have shape [N, {self.latent_size}]; got {tuple(z.shape)}")
        self._check_device(z, op, "z")

    def _check_noise_values(self, noise, op: str) -> None:
        """NaN or infinity in a list of per-layer noise tensors refused, naming ``noise[k]``."""
        if isinstance(noise, (list, tuple)):
            for k, t in enumerate(noise):
                if isinstance(t, torch.Tensor):
                    check_finite(t, op, f"noise[{k}]")

    def _check_decode_values(self, w: torch.Tensor, noise, native: bool) -> None:
        """``decode``'s value checks, on the path the class docstring says they run on."""
        if native or (w.requires_grad and torch.is_grad_enabled()):
            return
        check_latent_values(w, "decode", "w")
        self._check_noise_values(noise, "decode")

    def _check_ws(self, w, op: str) -> torch.Tensor:
        """Validates w ([N, latent] or [N, num_ws, latent]); returns it as [N, num_ws, latent]."""
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"{op}: w must be a torch.Tensor; got {type(w).__name__}")
        if not w.is_floating_point():
            raise TypeError(f"{op}: w must have a float dtype (float16, bfloat16, float32, float64); got {w.dtype}")
        self._check_device(w, op, "w")
        if w.ndim == 2 and w.shape[1] == self.latent_size:
            return w.unsqueeze(1).expand(-1, self.num_ws, -1)
        if w.ndim == 3 and w.shape[1] == self.num_ws and w.shape[2] == self.latent_size:
            return w
        raise ValueError(f"{op}: w must have shape [N, {self.latent_size}] or "
                         f"[N, {self.num_ws}, {self.latent_size}]; got {tuple(w.shape)}")

    @staticmethod
    def _check_lod_blend_noise(lod, blend, noise, op: str, max_lod: int | None = None) -> float:
        """``blend`` as a float once ``lod``, ``blend`` and ``noise`` are checked: TypeError naming
        ``op`` and the argument for a lod neither None nor an int (Python's or NumPy's; not a
        bool), a blend that is not a real number, a noise neither a string nor a list/tuple;
        ValueError for a lod < 0 or > ``max_lod``, a blend outside [0, 1], another noise string."""
        if lod is not None:
            if isinstance(lod, bool) or not isinstance(lod, Integral):
                raise TypeError(f"{op}: lod must be None or an int >= 0; got {said_typed(lod)}")
            if lod < 0:
                raise ValueError(f"{op}: lod must be None or an int >= 0; got {lod!r}")
            if max_lod is not None and lod > max_lod:
                raise ValueError(f"{op}: lod must be <= {max_lod}; got {lod}")
        blend = _finite(blend, "blend", op)
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"{op}: blend must be in [0, 1]; got {blend}")
        if isinstance(noise, (list, tuple)):
            return blend  # per-layer tensors: the model that reads them checks them
        said = f"{op}: noise must be one of {NOISE_MODES} or a list of per-layer tensors"
        if not isinstance(noise, str):
            raise TypeError(f"{said}; got {said_typed(noise)}")
        if noise not in NOISE_MODES:
            raise ValueError(f"{said}; got {noise!r}")
        return blend


def _finite(value, name: str, op: str) -> float:
    """``value`` as a float: TypeError naming ``op`` and ``name`` unless it is a real number
    (Python's or NumPy's; not a bool, a string, None or a tensor), ValueError for NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{op}: {name} must be a finite number; got {said_typed(value)}")
    if not is_finite(value):
        raise ValueError(f"{op}: {name} must be a finite number; got {value!r}")
    return float(value)


def _check_cutoff(cutoff, name: str, op: str) -> int | None:
    """A truncation cutoff as None or an int >= 0: any, as the official code (its fixed cutoff 8
    truncates every input of a model with fewer, and sample_images passes a config's cutoff to any
    model). TypeError naming ``op`` and ``name`` for another type (a bool, a float), ValueError for
    a negative int."""
    if cutoff is None:
        return None
    if isinstance(cutoff, bool) or not isinstance(cutoff, Integral):
        raise TypeError(f"{op}: {name} must be None or an int >= 0; got {said_typed(cutoff)}")
    if cutoff < 0:
        raise ValueError(f"{op}: {name} must be None or an int >= 0; got {cutoff}")
    return int(cutoff)
