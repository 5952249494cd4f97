"""Training setups: what ``alae-fast train --preset NAME`` trains, resolved from the preset registry.

There is one registry, ``alae_fast.models``' presets (``register_preset``): a preset is one
declaration of a model config, and of its training schedule when the config does not carry
one. ``resolve_setup(name)`` turns it into a ``TrainSetup``: the config (with ``--set``
overrides), its schedule (with ``--schedule`` overrides; built by
:mod:`alae_fast.training.schedule`, the schedule's one home) and the default length (the
preset's ``kimg``, else the config's ``train_kimg``, else the schedule's levels added up).

What a preset (e.g. StyleALAE's ``digits-32``, the default) must provide to be trainable:

- registration at ``import alae_fast.models``: its config class with ``@register_config``, its
  model class with ``@register_model(ConfigClass)``, the preset with ``register_preset``;
- a schedule: the config fields :func:`alae_fast.training.schedule.schedule_from_config` reads
  (``resolution``, ``channels``, ``layer_count`` or ``max_lod``, ``lod_kimg``, ``lod_batch``,
  ``lod_lr``, optionally ``start_lod`` and ``train_kimg``), or ``register_preset(...,
  schedule=...)``;
- the ``ALAEModel`` API: ``mapping``/``generator``/``encoder``/``discriminator`` modules with
  disjoint parameters, ``latent_size``, ``num_ws``, the ``w_avg`` buffer and ``update_w_avg``,
  ``encode(x, lod, blend) -> [N, latent]``, ``decode(ws [N, num_ws, latent] or [N, latent],
  lod, blend, noise) -> [N, C, r, r]`` (r the level's resolution), ``generate`` and
  ``reconstruct``; the discriminator returns one score per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import ModelConfig, list_presets
from ..models.presets import Preset, all_presets, get_preset
from .schedule import LODSchedule, config_schedule_fields, make_schedule

__all__ = ["TrainSetup", "list_setups", "resolve_setup", "DEFAULT_PRESET"]

DEFAULT_PRESET = "digits-32"


@dataclass(frozen=True)
class TrainSetup:
    """What one training run trains.

    name: the preset name; model_config: the model to build; schedule: levels, batches and
    learning rates; kimg: default training length in thousands of images (> 0, else
    ValueError); description: one line.
    """

    name: str
    model_config: ModelConfig
    schedule: LODSchedule
    kimg: float
    description: str = ""

    def __post_init__(self):
        if not self.kimg > 0:
            raise ValueError(f"TrainSetup {self.name!r}: kimg must be > 0; got {self.kimg!r}")


def _schedule_fields(preset: Preset, config: ModelConfig) -> dict:
    """The schedule's fields: the preset's own, else those ``config`` carries (ValueError if none)."""
    return dict(preset.schedule) if preset.schedule is not None else config_schedule_fields(config)


def list_setups() -> list[str]:
    """Names ``resolve_setup`` accepts: every preset with a schedule, sorted."""
    names = []
    for name, preset in all_presets().items():
        try:
            _schedule_fields(preset, preset.config)
            names.append(name)
        except ValueError:
            pass
    return names


def _default_kimg(config, schedule: LODSchedule) -> float:
    kimg = getattr(config, "train_kimg", None)
    if kimg is not None:
        return float(kimg)
    return sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1)) / 1000.0


def _model_geometry(config: ModelConfig) -> dict[str, tuple[int, object]] | None:
    """The schedule fields the model fixes: ``{field: (the model's value, how a model gets another
    value v: a function v -> text)}`` for a StyleALAE-like config (``layer_count``,
    ``resolution``, ``channels``) or an MLP one (``image_size``, ``image_channels``; one level);
    None for a config of neither kind."""
    fields = getattr(config, "__dataclass_fields__", {})
    if all(hasattr(config, f) for f in ("layer_count", "resolution", "channels")):
        levels = int(config.layer_count)
        base = int(config.resolution) // 2 ** (levels - 1)
        return {"max_lod": (levels - 1, lambda v: f"--set layer_count={v + 1}"),
                "base_resolution": (base, lambda v: f"its levels start at {base}x{base} whatever its size"),
                "channels": (int(config.channels), lambda v: f"--set channels={v}")}
    if "image_size" in fields and "image_channels" in fields:
        return {"max_lod": (0, lambda v: "an MLP model has one level"),
                "base_resolution": (int(config.image_size), lambda v: f"--set image_size={v}"),
                "channels": (int(config.image_channels), lambda v: f"--set image_channels={v}")}
    return None


def _check_geometry(name: str, config: ModelConfig, schedule: LODSchedule, schedule_overrides: dict) -> None:
    """ValueError when the schedule's levels, first resolution or channels are not the model's:
    a run would train, then fail where the model cannot follow (``--schedule max_lod`` past its
    layers), so it is refused before anything is built, naming what to give."""
    for field, (want, model_for) in (_model_geometry(config) or {}).items():
        have = getattr(schedule, field)
        if have == want:
            continue
        if field in schedule_overrides:
            fix = model_for(have)
            fix = f", so change the model instead ({fix})" if fix.startswith("--set") else f" ({fix})"
            raise ValueError(f"--schedule {field}={have}: the model of {name!r} is built for {field} {want}; a "
                             f"schedule follows its model{fix}")
        raise ValueError(f"--set: the model of {name!r} is now built for {field} {want}, but the preset's schedule "
                         f"has {field} {have}; give --schedule {field}={want} too")


def resolve_setup(name: str, model_overrides: dict | None = None, schedule_overrides: dict | None = None) -> TrainSetup:
    """The setup of preset ``name`` (see the module docstring) with overrides applied.

    Raises ValueError for an unknown name (listing the trainable ones), for an unknown field in
    the overrides, for a preset without a schedule, and for a schedule whose levels, first
    resolution or channels are not the model's (``--schedule max_lod`` past its layers).
    """
    model_overrides = dict(model_overrides or {})
    schedule_overrides = dict(schedule_overrides or {})
    try:
        preset = get_preset(name)
    except ValueError:
        raise ValueError(f"unknown preset {name!r}; trainable: {list_setups()} "
                         f"(model presets: {list_presets()})") from None
    try:
        config = preset.config.replace(**model_overrides) if model_overrides else preset.config
    except ValueError as e:  # an unknown field or a bad value, from --set: said as its flag
        raise ValueError(f"--set: {e}") from None
    try:
        schedule = make_schedule(_schedule_fields(preset, config), schedule_overrides)
    except ValueError as e:
        if not schedule_overrides:  # the preset's own schedule: not the user's to fix
            raise
        raise ValueError(f"--schedule: {e}") from None
    _check_geometry(name, config, schedule, schedule_overrides)
    kimg = preset.kimg if preset.kimg is not None else _default_kimg(config, schedule)
    desc = preset.train_description or f"model preset {name!r} with its own schedule"
    if model_overrides or schedule_overrides:
        desc += f" [overridden: {', '.join(sorted({**model_overrides, **schedule_overrides}))}]"
    return TrainSetup(name, config, schedule, kimg, desc)
