"""Progressive growing: which level of detail (LOD), blend, batch and learning rate apply when.

Training walks the levels ``start_lod, start_lod + 1, ..., max_lod``; level ``lod`` works on
images of side ``base_resolution * 2**lod`` (4·2^lod for StyleALAE; the MLP ALAE has one level).
Each level except the last lasts a fixed number of images, ``lod_kimg[lod] * 1000``; the last
one lasts until training ends. Every level after the first begins with a fade-in over the
first ``fade_fraction`` of its images (default 1/2; the official code fades over
``EPOCHS_PER_LOD // 2`` of its ``EPOCHS_PER_LOD`` epochs, 7/15 for an odd 15): with t the
fraction of the fade done,

    blend(t) = sin(t·π − π/2) / 2 + 1/2        (0 at t = 0, 1 at t = 1; then 1)

and G, E and the real images all move from the previous resolution to the new one by that
blend (``blend_real_images``: ``x·b + up(down(x))·(1 − b)``).

Per-level values (``lod_kimg``, ``lod_batch``, ``lod_lr``) are tuples indexed by lod; a
tuple shorter than ``max_lod + 1`` repeats its last value (``alae_fast.models.config.per_level``).

This module is the schedule's one home. Its values come from the preset: a model config that
carries them (StyleALAE's ``lod_*`` fields, see :func:`schedule_from_config`) or the
``schedule`` given with the preset (``alae_fast.models.register_preset``, for the MLP
configs); ``alae_fast.training.setups.resolve_setup`` builds the one from the other. The
checks of the per-level values are shared with the configs (``check_real_tuple``,
``check_int_tuple``), so a config and its schedule accept the same values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F

from .._words import word_for
from ..models.config import check_fields, check_int_tuple, check_real_tuple, per_level

__all__ = ["LODSchedule", "Phase", "blend_factor", "blend_real_images", "config_schedule_fields", "fit_schedule",
           "images_for_lod", "make_schedule", "schedule_from_config", "SCHEDULE_CONFIG_FIELDS"]

# The fields a model config provides to carry its own training schedule.
SCHEDULE_CONFIG_FIELDS = ("resolution", "channels", "lod_kimg", "lod_batch", "lod_lr")


def blend_factor(t: float) -> float:
    """The fade-in curve ``sin(t·π − π/2)/2 + 1/2`` for ``t`` clipped to [0, 1] (float in [0, 1])."""
    t = min(max(float(t), 0.0), 1.0)
    return math.sin(t * math.pi - 0.5 * math.pi) / 2.0 + 0.5


@dataclass(frozen=True)
class Phase:
    """Where training stands after ``images_seen`` images (what ``LODSchedule.phase`` returns).

    lod: current level of detail; resolution: its image side in pixels; blend: fade-in of
    that level in [0, 1]; batch: global batch; lr: Adam learning rate; lod_start: images
    seen when this level began; in_transition: True during the fade-in.
    """

    lod: int
    resolution: int
    blend: float
    batch: int
    lr: float
    lod_start: int
    in_transition: bool


@dataclass(frozen=True)
class LODSchedule:
    """The progressive-growing schedule of a training run (see the module docstring).

    Fields:
        max_lod: level of the final resolution (``resolution == base_resolution * 2**max_lod``).
        base_resolution: image side at lod 0 (4 for StyleALAE; the image side for an MLP).
        lod_kimg: thousands of images shown at each level (the last level runs until the
            end of training, so its entry only matters to ``kimg_to_reach``).
        lod_batch: global batch per level (a multiple of the world size in a DDP run).
        lod_lr: Adam learning rate per level (both optimisers).
        start_lod: first level trained (default 0).
        channels: image channels.
        fade_fraction: the share of each level's images (after the first level) over which it
            fades in, a number in [0, 1] (default 0.5; 0: no fade-in).
    """

    max_lod: int
    base_resolution: int
    lod_kimg: tuple[float, ...]
    lod_batch: tuple[int, ...]
    lod_lr: tuple[float, ...]
    start_lod: int = 0
    channels: int = 3
    fade_fraction: float = 0.5

    def __post_init__(self):
        for name in ("lod_kimg", "lod_batch", "lod_lr"):  # a number means the same at every level
            value = getattr(self, name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                object.__setattr__(self, name, (value,))
            elif isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("max_lod", "start_lod"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"LODSchedule: {name} must be an int >= 0; got {v!r}")
        if self.start_lod > self.max_lod:
            raise ValueError(f"LODSchedule: start_lod ({self.start_lod}) must be <= max_lod ({self.max_lod})")
        for name in ("base_resolution", "channels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LODSchedule: {name} must be a positive int; got {v!r}")
        check_real_tuple(self, "lod_kimg")
        check_int_tuple(self, "lod_batch", 1)
        check_real_tuple(self, "lod_lr")
        f = self.fade_fraction
        if isinstance(f, bool) or not isinstance(f, Real) or not 0.0 <= f <= 1.0:
            raise ValueError(f"LODSchedule: fade_fraction must be a number in [0, 1]; got {f!r}")
        object.__setattr__(self, "fade_fraction", float(f))

    # --- per-level lookups -------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        """Final image side: ``base_resolution * 2**max_lod``."""
        return self.resolution_at(self.max_lod)

    def resolution_at(self, lod: int) -> int:
        """Image side at level ``lod``."""
        return self.base_resolution * (2 ** lod)

    def batch_at(self, lod: int) -> int:
        return int(per_level(self.lod_batch, lod))

    def lr_at(self, lod: int) -> float:
        return float(per_level(self.lod_lr, lod))

    def images_at(self, lod: int) -> int:
        """Images shown at level ``lod`` (all but the last level)."""
        return int(round(per_level(self.lod_kimg, lod) * 1000))

    def fade_images(self, lod: int) -> float:
        """Images over which level ``lod`` fades in (``fade_fraction`` of its images; 0 for
        start_lod). A float: half of an odd count is kept exact, as the blend uses it."""
        if lod <= self.start_lod:
            return 0.0
        return self.images_at(lod) * self.fade_fraction

    def kimg_to_reach(self, lod: int) -> float:
        """Thousands of images after which level ``lod`` is fully faded in (0 for start_lod)."""
        if lod <= self.start_lod:
            return 0.0
        total = sum(self.images_at(level) for level in range(self.start_lod, lod))
        return (total + math.floor(self.fade_images(lod))) / 1000.0

    # --- where training stands ---------------------------------------------------------------
    def phase(self, images_seen: int) -> Phase:
        """The phase after ``images_seen`` images (an int >= 0)."""
        if isinstance(images_seen, bool) or not isinstance(images_seen, int) or images_seen < 0:
            raise ValueError(f"images_seen: expected an int >= 0; got {images_seen!r}")
        lod, start = self.start_lod, 0
        while lod < self.max_lod and images_seen >= start + self.images_at(lod):
            start += self.images_at(lod)
            lod += 1
        blend, in_transition = 1.0, False
        fade = self.fade_images(lod)
        if fade > 0:  # the first level, a level of no images (a schedule fitted to a tiny --kimg) or fade_fraction 0: no fade
            t = (images_seen - start) / fade
            if t < 1.0:
                blend, in_transition = blend_factor(t), True
        return Phase(lod=lod, resolution=self.resolution_at(lod), blend=blend, batch=self.batch_at(lod),
                     lr=self.lr_at(lod), lod_start=start, in_transition=in_transition)

    # --- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(getattr(self, f.name)) if isinstance(getattr(self, f.name), tuple)
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LODSchedule:
        check_fields(cls, data, "LODSchedule")
        return cls(**data)

    def replace(self, **changes) -> LODSchedule:
        """A copy with fields changed (validated); unknown names raise ValueError."""
        check_fields(self, changes, "LODSchedule")
        return dataclasses.replace(self, **changes)


def fit_schedule(schedule: LODSchedule, total_kimg: float, reach_fraction: float) -> LODSchedule:
    """``schedule`` with every level's length scaled by one factor so that the final level is
    fully faded in after ``reach_fraction * total_kimg`` thousand images.

    What ``alae-fast train --kimg N`` does when N is too short to reach the final resolution
    with the preset's schedule: the same path through the levels, in proportion, instead of a
    run that ends at a lower resolution or in the middle of a fade-in.

    Args:
        schedule: the schedule to compress (or stretch); its ``lod_kimg`` is expanded to one
            entry per level ``0..max_lod`` before scaling.
        total_kimg: the run's length in thousands of images (> 0).
        reach_fraction: in (0, 1]: where in the run the final level's fade-in ends.

    Returns the schedule unchanged when it has one level (nothing to reach). Raises
    ValueError for a non-positive ``total_kimg`` or a ``reach_fraction`` outside (0, 1].
    """
    if not (isinstance(total_kimg, Real) and math.isfinite(total_kimg) and total_kimg > 0):
        raise ValueError(f"total_kimg: expected a finite number > 0; got {total_kimg!r}")
    if not (isinstance(reach_fraction, Real) and 0 < reach_fraction <= 1):
        raise ValueError(f"reach_fraction: expected a number in (0, 1]; got {reach_fraction!r}")
    reach = schedule.kimg_to_reach(schedule.max_lod)
    if reach <= 0:
        return schedule
    scale = reach_fraction * float(total_kimg) / reach
    lod_kimg = tuple(per_level(schedule.lod_kimg, lod) * scale for lod in range(schedule.max_lod + 1))
    return schedule.replace(lod_kimg=lod_kimg)


def images_for_lod(x: torch.Tensor, schedule: LODSchedule, lod: int) -> torch.Tensor:
    """Full-resolution images ``[N, C, R, R]`` brought to level ``lod`` by 2×2 average pooling.

    ``R`` must be ``schedule.resolution`` (ValueError otherwise). Returns ``[N, C, r, r]``,
    ``r = schedule.resolution_at(lod)``; the input itself at the final level.
    """
    if x.ndim != 4 or x.shape[-1] != schedule.resolution or x.shape[-2] != schedule.resolution:
        raise ValueError(f"x: expected images [N, C, {schedule.resolution}, {schedule.resolution}]; "
                         f"got {tuple(x.shape)}")
    for _ in range(schedule.max_lod - lod):
        x = F.avg_pool2d(x, 2)
    return x


def blend_real_images(x: torch.Tensor, blend: float) -> torch.Tensor:
    """Real images as the network sees them during a fade-in: ``x·b + up(down(x))·(1 − b)``.

    ``down`` is 2×2 average pooling and ``up`` nearest-neighbour ×2, so at ``blend = 0`` the
    images carry exactly the previous level's information. ``x`` is ``[N, C, H, W]`` with even
    H and W; returned unchanged when ``blend >= 1``.
    """
    if blend >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    return torch.lerp(low, x, float(blend))


def config_schedule_fields(config) -> dict[str, Any]:
    """The ``LODSchedule`` fields a model config carries (see :func:`schedule_from_config`).

    Raises ValueError naming the missing fields when the config has no schedule, or when its
    resolution is not divisible by ``2**max_lod``.
    """
    missing = [n for n in SCHEDULE_CONFIG_FIELDS if not hasattr(config, n)]
    max_lod = getattr(config, "max_lod", None)
    if max_lod is None:
        layers = getattr(config, "layer_count", None)
        if layers is None:
            missing.append("max_lod (or layer_count)")
        else:
            max_lod = int(layers) - 1
    if missing:
        raise ValueError(f"{type(config).__name__} carries no training schedule: missing {word_for(len(missing), 'field')} {missing} "
                         f"(see alae_fast.training.schedule.schedule_from_config)")
    resolution = int(config.resolution)
    if resolution % (2 ** max_lod):
        raise ValueError(f"{type(config).__name__}: resolution {resolution} is not divisible by 2**max_lod "
                         f"= {2 ** max_lod}")
    return dict(max_lod=int(max_lod), base_resolution=resolution // (2 ** max_lod),
                lod_kimg=config.lod_kimg, lod_batch=config.lod_batch, lod_lr=config.lod_lr,
                start_lod=int(getattr(config, "start_lod", 0)), channels=int(config.channels),
                fade_fraction=float(getattr(config, "fade_fraction", 0.5)))


def make_schedule(fields: dict[str, Any], overrides: dict[str, Any]) -> LODSchedule:
    """``LODSchedule(**fields)`` with ``overrides`` (``--schedule``) replacing some of them,
    validated once. Unknown override names raise ValueError."""
    check_fields(LODSchedule, overrides, "LODSchedule")
    schedule = LODSchedule(**{**fields, **overrides})
    levels = schedule.max_lod + 1
    for name in ("lod_kimg", "lod_batch", "lod_lr"):  # per-level lists: entries past the last level go unused
        value = overrides.get(name)
        if isinstance(value, (list, tuple)) and len(value) > levels:
            raise ValueError(f"--schedule {name}: {len(value)} entries, but this schedule has {levels} level"
                             f"{'s' * (levels > 1)} (lod 0-{schedule.max_lod}); the entries past it would never "
                             f"be used")
    return schedule


def schedule_from_config(config, **overrides) -> LODSchedule:
    """The schedule a model config carries, with ``overrides`` applied to the result.

    The config must have (as dataclass fields or properties):

    - ``resolution`` (int): final image side; ``channels`` (int): image channels;
    - ``max_lod`` (int), or ``layer_count`` (int, L) meaning ``max_lod = L - 1``;
      ``base_resolution = resolution // 2**max_lod`` (4 for StyleALAE);
    - ``lod_kimg``: kimg per level (number or tuple indexed by lod);
    - ``lod_batch``: global batch per level (int or tuple);
    - ``lod_lr``: learning rate per level (number or tuple);
    - optionally ``start_lod`` (int, default 0).

    Raises ValueError naming the missing fields when the config has no schedule.
    """
    return make_schedule(config_schedule_fields(config), overrides)
