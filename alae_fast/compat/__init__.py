"""Drop-in replacements for the ops of the NVlabs (:mod:`.nvlabs`) and rosinality
(:mod:`.rosinality`) StyleGAN code, imported on first use."""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
