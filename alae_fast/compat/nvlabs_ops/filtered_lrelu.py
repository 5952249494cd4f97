"""NVlabs ``torch_utils.ops.filtered_lrelu`` (StyleGAN3): see
:func:`alae_fast.compat.nvlabs_filtered_lrelu.filtered_lrelu`, with the module's ``_init()``
and the two argument parsers NVlabs code imports from it."""

from ..nvlabs_filtered_lrelu import filtered_lrelu
from . import _impl
from . import upfirdn2d as _upfirdn2d

__all__ = ["filtered_lrelu"]

# NVlabs' module API besides the op: training loops call _init() first; code reads the parsers
_init = _impl.init
_parse_padding = _upfirdn2d._parse_padding
_get_filter_size = _upfirdn2d._get_filter_size
