"""Drop-in layers for StyleGAN-family networks, built on ``alae_fast.ops``."""

from .activation import FusedLeakyReLU

__all__ = ["FusedLeakyReLU"]

from .equalized import EqualizedConv2d, EqualizedLinear, set_impl  # noqa: E402
from .norm import PixelNorm  # noqa: E402

__all__ += ["EqualizedConv2d", "EqualizedLinear", "PixelNorm", "set_impl"]
from .resample import Blur, Downsample, Upsample  # noqa: E402

__all__ += ["Blur", "Downsample", "Upsample"]
from .style import AdaIN, ModulatedConv2d, NoiseInjection, StyleBlock, ToRGB  # noqa: E402
__all__ += ["AdaIN", "ModulatedConv2d", "NoiseInjection", "StyleBlock", "ToRGB"]
from .filtered import FilteredLeakyReLU  # noqa: E402
__all__ += ["FilteredLeakyReLU"]
