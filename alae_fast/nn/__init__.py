"""Drop-in layers for StyleGAN-family networks, built on ``alae_fast.ops``."""

from .activation import FusedLeakyReLU

__all__ = ["FusedLeakyReLU"]
