"""What ``alae-fast train`` is asked: :class:`TrainOptions`, their checks, the flag that sets each
(for the messages), and which training behaviours a run has in effect."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..models import MLPALAEConfig


# The options a checkpoint records and a resume must agree with, and the `alae-fast train` flag
# of each (for the messages that refuse a resume).
_FLAGS = {"seed": "--seed", "r1_gamma": "--r1-gamma", "r1_interval": "--r1-interval", "mixing_prob": "--mixing-prob",
          "ema_half_life_kimg": "--ema-kimg", "amp": "--amp", "style_mixing": "--style-mixing",
          "w_avg_update": "--w-avg-update", "flip": "--flip/--no-flip",
          "d_zero_grad_step": "--d-zero-grad-step/--no-d-zero-grad-step", "augment": "--augment",
          "lae_weight": "--lae-weight", "channels_last": "--channels-last/--no-channels-last"}


_NUMERIC_OPTIONS = tuple(_FLAGS)


@dataclass
class TrainOptions:
    """Options of one training run (the ``alae-fast train`` flags).

    preset: setup or model-preset name (None: ``digits-32``, or on resume the checkpoint's);
    data: data path (None: the embedded digits); out: run folder (None: ``runs/<setup>``);
    kimg: training length in thousands of images (None: the setup's); seed; resume;
    device: 'auto', 'cpu', 'cuda'...; amp: bfloat16 autocast; r1_gamma, r1_interval,
    mixing_prob, ema_half_life_kimg: see ``ALAETrainer`` (mixing_prob None: below;
    ema_half_life_kimg None: the model config's ``ema_kimg`` when it has one, else 10).
    seed, amp, r1_gamma None: 0, False, 10 (``_RUN_DEFAULTS``). On ``resume``
    every one of these options and the behaviours below that is None continues as the
    checkpoint's run set it; a value given that differs is refused. checkpoint_kimg / image_kimg:
    intervals (None: a tenth of the run); checkpoint_minutes: also checkpoint when this
    many minutes of wall time passed since the last one (default 10; None: by images only);
    keep: checkpoints kept; log_steps: iterations per
    log record; model_overrides / schedule_overrides: fields changed in the setup's model
    config / schedule; evaluate: run the latent-classification report at the end;
    progress: show progress (tqdm's bar on a terminal, a plain line every 30 s elsewhere); num_workers: data-loading processes; threads: torch CPU
    threads (None: torch's default).
    style_mixing, w_avg_update, mixing_prob, d_zero_grad_step, augment, lae_weight, r1_interval
    (see ``ALAETrainer``; augment: comma-separated DiffAugment policies, '' for none), flip
    (mirror each real image with probability 1/2, ``DataStream``) and channels_last (train a
    StyleALAE in that memory format, ``StyleALAEConfig.channels_last``): None takes the model
    config's field of that name (the paper presets: 'official', 'every_generate', 0.9, True, '',
    1.0, 1, True, False), else 'per_sample', 'generator_step', 0.9, False, '', 1.0, 1, False, False.
    from_official: an official ALAE checkpoint (``.pth``) to train on from, as the official
    trainer continues it (:mod:`alae_fast.training.from_official`; a new run, with ``data``);
    official_config: its official YAML (None: the published configs of the paper
    architectures).
    """

    preset: str | None = None
    data: str | None = None
    out: str | None = None
    kimg: float | None = None
    seed: int | None = None
    resume: bool = False
    device: str = "auto"
    amp: bool | None = None
    r1_gamma: float | None = None
    r1_interval: int | None = None
    mixing_prob: float | None = None
    ema_half_life_kimg: float | None = None
    checkpoint_kimg: float | None = None
    image_kimg: float | None = None
    checkpoint_minutes: float | None = 10.0
    keep: int = 3
    log_steps: int = 20
    model_overrides: dict[str, Any] = field(default_factory=dict)
    schedule_overrides: dict[str, Any] = field(default_factory=dict)
    evaluate: bool = True
    progress: bool = True
    num_workers: int = 0
    threads: int | None = None
    style_mixing: str | None = None
    w_avg_update: str | None = None
    flip: bool | None = None
    d_zero_grad_step: bool | None = None
    augment: str | None = None
    lae_weight: float | None = None
    channels_last: bool | None = None
    from_official: str | None = None
    official_config: str | None = None


# What a run uses when neither the options nor, on --resume, the checkpoint say.
_RUN_DEFAULTS = {"seed": 0, "amp": False, "r1_gamma": 10.0}


# What a run does when neither the options nor the model config say (alae_fast's own choices).
_BEHAVIOUR_DEFAULTS = {"style_mixing": "per_sample", "w_avg_update": "generator_step", "flip": False,
                       "mixing_prob": 0.9, "d_zero_grad_step": False, "augment": "", "lae_weight": 1.0,
                       "r1_interval": 1, "channels_last": False}


def _in_effect(name: str, value, config):
    """The value option ``name`` has in a run of ``config`` when set to ``value`` (None: the
    config's field, else alae_fast's default)."""
    if value is not None:
        return value
    if name == "mixing_prob" and isinstance(config, MLPALAEConfig):
        return 0.0  # one style input: the trainer never mixes, and config.json should not say it does
    if name in _BEHAVIOUR_DEFAULTS:
        return getattr(config, name, _BEHAVIOUR_DEFAULTS[name])
    if name == "ema_half_life_kimg":
        return float(getattr(config, "ema_kimg", 10.0))
    return _RUN_DEFAULTS.get(name)


def training_behaviour(opts: TrainOptions, config) -> dict[str, Any]:
    """``{"style_mixing", "w_avg_update", "flip", "mixing_prob", "d_zero_grad_step", "augment",
    "lae_weight", "r1_interval", "channels_last"}`` for a run: the option when set, else the model
    config's field of that name, else alae_fast's default (per_sample, generator_step, False, 0.9,
    False, '', 1.0, 1, False;
    ``mixing_prob`` 0.0 for an MLP ALAE, which has nothing to mix)."""
    return {name: _in_effect(name, getattr(opts, name), config) for name in _BEHAVIOUR_DEFAULTS}


def _ema_kimg(opts: TrainOptions, config) -> float:
    return float(_in_effect("ema_half_life_kimg", opts.ema_half_life_kimg, config))


MIN_KIMG = 0.001
# The longest run TrainOptions.kimg and --kimg take: 10 billion images, over 100x the longest
# preset schedule (bedroom-256, about 85,000 kimg). Beyond it a number is a typo, not a run: 1e12
# trained and promised to finish in 450,000 years.
MAX_KIMG = 10_000_000.0
# What a refusal of a longer run says it expected (the CLI's --kimg and TrainOptions.kimg alike).
MAX_KIMG_SAID = f"at most {MAX_KIMG:,.0f} ({MAX_KIMG / 1e6:g} billion images, far beyond any real run)"


def is_kimg_amount(value) -> bool:
    """Whether ``value`` is a usable length or interval in kimg: a finite real number of at
    least one image (``MIN_KIMG``; runs and intervals count whole images, and less rounds to
    none). The one rule for ``TrainOptions`` and the CLI's ``--kimg`` / ``--checkpoint-kimg`` /
    ``--image-kimg``."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value * 1000 >= 1)


def _check_options(opts: TrainOptions) -> None:
    """Raises ValueError for a bad ``keep``, ``log_steps``, ``checkpoint_minutes``, ``num_workers``,
    a ``kimg`` / ``checkpoint_kimg`` / ``image_kimg`` that is not a finite number of at least
    one image (0.001 kimg: runs and intervals count whole images, and less rounds to none), or a
    ``kimg`` above ``MAX_KIMG``."""
    for name in ("kimg", "checkpoint_kimg", "image_kimg"):
        v = getattr(opts, name)
        if v is not None and not is_kimg_amount(v):
            raise ValueError(f"{name}: expected None or a finite number >= {MIN_KIMG} (one image); got {v!r}")
    # the intervals have no upper bound: one longer than the run only never comes
    if opts.kimg is not None and opts.kimg > MAX_KIMG:
        raise ValueError(f"kimg: expected {MAX_KIMG_SAID}; got {opts.kimg!r}")
    if not isinstance(opts.num_workers, int) or opts.num_workers < 0:
        raise ValueError(f"num_workers: expected an int >= 0; got {opts.num_workers!r}")
    if opts.keep < 1:
        raise ValueError(f"keep: expected >= 1; got {opts.keep}")
    if opts.log_steps < 1:
        raise ValueError(f"log_steps: expected >= 1; got {opts.log_steps}")
    if opts.checkpoint_minutes is not None and not opts.checkpoint_minutes > 0:
        raise ValueError(f"checkpoint_minutes: expected a number > 0 or None; got {opts.checkpoint_minutes}")


# A flag and the model config field it overrides for one run: given both, they must agree.
_FLAG_FIELDS = {"mixing_prob": "mixing_prob", "style_mixing": "style_mixing", "w_avg_update": "w_avg_update",
                "flip": "flip", "d_zero_grad_step": "d_zero_grad_step", "ema_half_life_kimg": "ema_kimg",
                "augment": "augment", "lae_weight": "lae_weight", "r1_interval": "r1_interval",
                "channels_last": "channels_last"}
