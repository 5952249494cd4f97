"""Training ALAE: the trainer (:mod:`.trainer`), schedules (:mod:`.schedule`), presets' setups,
checkpoints, the official code's settings (:mod:`.official`) and ``alae-fast train`` (:mod:`.run`).
Each submodule is imported on first use (``alae_fast.training.official`` works after ``import
alae_fast``)."""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
