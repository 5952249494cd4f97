"""NVlabs ``torch_utils.ops.filtered_lrelu`` (StyleGAN3): see
:func:`alae_fast.compat.nvlabs_filtered_lrelu.filtered_lrelu`."""

from ..nvlabs_filtered_lrelu import filtered_lrelu

__all__ = ["filtered_lrelu"]
