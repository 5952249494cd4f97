"""The official ALAE's per-level batch and learning-rate tables (podgorskiy/ALAE configs/*.yaml, 42bcf2e).

The official trainer picks ``TRAIN.LOD_2_BATCH_{8,4,2,1}GPU`` by the number of GPUs; the entry
for a level is the batch of all GPUs together, each taking ``entry // gpus`` (lod_driver.py). A
table shorter than the levels repeats its last entry. ``TRAIN.LEARNING_RATES`` is indexed by
level in the same way and does not depend on the GPU count.

alae_fast's ``lod_batch`` is the global batch too, but it is the same whatever the number of
processes (so a run means the same on 1 or 8 GPUs). The paper presets carry the 8-GPU tables,
the configuration the official README recommends. To follow an official run on fewer GPUs:

    alae-fast train --preset celeba-128 --schedule lod_batch=[128,128,128,64,32,16]

with the table of :func:`official_lod_batch`.
"""

from __future__ import annotations

from ..models.config import per_level

__all__ = ["OFFICIAL_CONFIGS", "official_lod_batch", "official_lod_lr"]

# The tables as the YAMLs have them; most are shared by several configs, so each is named once.
_BATCH_8 = (512, 256, 128, 64, 32, 32, 32, 32, 32)  # ffhq, bedroom, celeba
_BATCH_4 = (512, 256, 128, 64, 32, 32, 32, 32, 16)  # all four
_BATCH_2 = (512, 256, 128, 64, 32, 32, 16)          # ffhq, bedroom
_BATCH_1 = (512, 256, 128, 64, 32, 16)              # ffhq, bedroom
_BATCH_2_SMALL = (128, 128, 128, 64, 32, 32, 16)    # celeba-hq256, celeba
_BATCH_1_SMALL = (128, 128, 128, 64, 32, 16)        # celeba-hq256, celeba
_LR = (0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003, 0.003)  # all but celeba-hq256

# preset name -> (official config file, {gpus: LOD_2_BATCH_<gpus>GPU}, LEARNING_RATES)
OFFICIAL_CONFIGS: dict[str, tuple[str, dict[int, tuple[int, ...]], tuple[float, ...]]] = {
    "ffhq-1024": ("configs/ffhq.yaml", {8: _BATCH_8, 4: _BATCH_4, 2: _BATCH_2, 1: _BATCH_1}, _LR),
    "celeba-hq-256": ("configs/celeba-hq256.yaml",
                      {8: (512, 256, 128, 64, 32, 32, 32, 32, 24), 4: _BATCH_4, 2: _BATCH_2_SMALL, 1: _BATCH_1_SMALL},
                      (0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.003, 0.003)),
    "bedroom-256": ("configs/bedroom.yaml", {8: _BATCH_8, 4: _BATCH_4, 2: _BATCH_2, 1: _BATCH_1}, _LR),
    "celeba-128": ("configs/celeba.yaml", {8: _BATCH_8, 4: _BATCH_4, 2: _BATCH_2_SMALL, 1: _BATCH_1_SMALL}, _LR),
}


def _entry(preset: str) -> tuple[str, dict[int, tuple[int, ...]], tuple[float, ...]]:
    if preset not in OFFICIAL_CONFIGS:
        raise ValueError(f"preset: the official tables exist for {sorted(OFFICIAL_CONFIGS)}; got {preset!r}")
    return OFFICIAL_CONFIGS[preset]


def official_lod_batch(preset: str, gpus: int = 8, levels: int | None = None) -> tuple[int, ...]:
    """The official global batch per level for ``preset`` trained on ``gpus`` GPUs (1, 2, 4 or 8).

    ``levels``: the table's length (its last entry repeated, as the official driver does);
    None gives the table as the YAML has it. Raises ValueError for another preset or GPU count.
    """
    _, tables, _ = _entry(preset)
    if gpus not in tables:
        raise ValueError(f"gpus: the official configs have tables for 1, 2, 4 and 8 GPUs; got {gpus!r}")
    table = tables[gpus]
    if levels is None:
        return table
    return tuple(per_level(table, i) for i in range(levels))


def official_lod_lr(preset: str, levels: int | None = None) -> tuple[float, ...]:
    """The official learning rate per level for ``preset`` (``TRAIN.LEARNING_RATES``), optionally
    cut or extended to ``levels`` entries."""
    _, _, lrs = _entry(preset)
    if levels is None:
        return lrs
    return tuple(per_level(lrs, i) for i in range(levels))
