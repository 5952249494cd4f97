"""Training setups: a model config, its progressive-growing schedule and a default length.

``resolve_setup(name)`` finds what ``alae-fast train --preset NAME`` trains:

1. a setup registered here (``list_setups()``): ``digits-mlp`` (the MLP ALAE on the embedded
   digits at 32×32) and ``mnist-mlp``
   (the paper's MNIST MLP recipe, for ``--data`` pointing at MNIST IDX files);
2. otherwise a model preset (``alae_fast.models.list_presets()``) whose config carries its own
   schedule fields (see :func:`alae_fast.training.schedule.schedule_from_config`); its default
   length is the config's ``train_kimg`` when it has one, else the sum of its ``lod_kimg``
   over the levels trained.

Model-config and schedule fields can be overridden (the CLI's ``--set`` and ``--schedule``).

What a model preset (e.g. StyleALAE's ``digits-32``, the default) must provide to be trainable:

- registration at ``import alae_fast.models``: its config class with ``@register_config``, its
  model class with ``@register_model(ConfigClass)``, the preset with ``register_preset``;
- config fields ``resolution``, ``channels``, ``layer_count`` (or ``max_lod``; the resolution of
  level ``lod`` is ``resolution / 2**(max_lod - lod)``), ``lod_kimg``, ``lod_batch``, ``lod_lr``
  (numbers or per-level tuples), optionally ``start_lod`` and ``train_kimg``;
- the ``ALAEModel`` API: ``mapping``/``generator``/``encoder``/``discriminator`` modules with
  disjoint parameters, ``latent_size``, ``num_ws``, the ``w_avg`` buffer and ``update_w_avg``,
  ``encode(x, lod, blend) -> [N, latent]``, ``decode(ws [N, num_ws, latent] or [N, latent],
  lod, blend, noise) -> [N, C, r, r]`` (r the level's resolution), ``generate`` and
  ``reconstruct``; the discriminator returns one score per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import MLPALAEConfig, ModelConfig, list_presets, preset_config
from .schedule import LODSchedule, schedule_from_config

__all__ = ["TrainSetup", "register_setup", "list_setups", "resolve_setup", "DEFAULT_PRESET"]

DEFAULT_PRESET = "digits-32"


@dataclass(frozen=True)
class TrainSetup:
    """What one training run trains.

    name: the setup or preset name; model_config: the model to build; schedule: levels,
    batches and learning rates; kimg: default training length in thousands of images;
    description: one line.
    """

    name: str
    model_config: ModelConfig
    schedule: LODSchedule
    kimg: float
    description: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not self.kimg > 0:
            raise ValueError(f"TrainSetup {self.name!r}: kimg must be > 0; got {self.kimg!r}")


_SETUPS: dict[str, TrainSetup] = {}


def register_setup(setup: TrainSetup, *, overwrite: bool = False) -> None:
    """Make ``setup`` trainable by name (``overwrite=True`` replaces one of the same name)."""
    if not isinstance(setup, TrainSetup):
        raise TypeError(f"register_setup: expected a TrainSetup; got {type(setup).__name__}")
    if setup.name in _SETUPS and not overwrite:
        raise ValueError(f"register_setup: setup {setup.name!r} already exists")
    _SETUPS[setup.name] = setup


def list_setups() -> list[str]:
    """Names trainable by ``resolve_setup``: registered setups and model presets with a schedule."""
    names = set(_SETUPS)
    for p in list_presets():
        try:
            schedule_from_config(preset_config(p))
            names.add(p)
        except ValueError:
            pass
    return sorted(names)


def _default_kimg(config, schedule: LODSchedule) -> float:
    kimg = getattr(config, "train_kimg", None)
    if kimg is not None:
        return float(kimg)
    return sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1)) / 1000.0


def resolve_setup(name: str, model_overrides: dict | None = None, schedule_overrides: dict | None = None) -> TrainSetup:
    """The setup called ``name`` (see the module docstring) with overrides applied.

    Raises ValueError for an unknown name (listing the known ones), for an unknown field in
    the overrides, and for a model preset whose config carries no schedule.
    """
    model_overrides = dict(model_overrides or {})
    schedule_overrides = dict(schedule_overrides or {})
    if name in _SETUPS:
        base = _SETUPS[name]
        config = base.model_config.replace(**model_overrides) if model_overrides else base.model_config
        schedule = base.schedule.replace(**schedule_overrides) if schedule_overrides else base.schedule
        desc = base.description
        if model_overrides or schedule_overrides:
            desc += f" [overridden: {', '.join(sorted({**model_overrides, **schedule_overrides}))}]"
        return TrainSetup(name, config, schedule, base.kimg, desc, base.notes)
    if name in list_presets():
        config = preset_config(name, **model_overrides)
        schedule = schedule_from_config(config, **schedule_overrides)
        return TrainSetup(name, config, schedule, _default_kimg(config, schedule),
                          f"model preset {name!r} with its own schedule")
    raise ValueError(f"unknown preset {name!r}; trainable: {list_setups()} "
                     f"(model presets: {list_presets()})")


def _builtin() -> None:
    # The MLP ALAE on the embedded digits, sized to train well inside 5 minutes on 2 CPU
    # cores (the MLP counterpart of the default digits-32); the encoder ends in a leaky ReLU like the authors' code, so E's w has F's
    # lrelu-shaped distribution.
    digits = MLPALAEConfig(latent_size=32, mapping_layers=4, image_channels=1, image_size=32,
                           encoder_hidden=(512, 512), generator_hidden=(512, 512), encoder_out_act="lrelu")
    register_setup(TrainSetup(
        "digits-mlp", digits,
        LODSchedule(max_lod=0, base_resolution=32, channels=1, lod_kimg=(120.0,), lod_batch=(64,),
                    lod_lr=(0.002,)),
        kimg=120.0,
        description="MLP ALAE (latent 32, E/G 512-512) on the embedded 32x32 digits; one level, "
                    "batch 64, lr 0.002"))
    # The paper's MNIST MLP recipe (Section 5): 28x28, latent 50, E/G 1024-1024, F 6 layers.
    register_setup(TrainSetup(
        "mnist-mlp", preset_config("mnist-mlp"),
        LODSchedule(max_lod=0, base_resolution=28, channels=1, lod_kimg=(6000.0,), lod_batch=(128,),
                    lod_lr=(0.002,)),
        kimg=6000.0,
        description="the paper's MNIST MLP ALAE; use --data with MNIST IDX files (100 epochs of 60k)"))
    # The official mnist_ref branch's MLP (Z_GAN.py: batch 128, lr 0.002, pixels x / 255).
    register_setup(TrainSetup(
        "mnist-ref", preset_config("mnist-ref"),
        LODSchedule(max_lod=0, base_resolution=28, channels=1, lod_kimg=(6000.0,), lod_batch=(128,),
                    lod_lr=(0.002,)),
        kimg=6000.0,
        description="the MLP of the official mnist_ref branch (loads its checkpoints); use --data with MNIST "
                    "IDX files"))


_builtin()
