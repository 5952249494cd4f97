"""NVlabs ``torch_utils.ops.conv2d_resample``: ``conv2d_resample``."""

from __future__ import annotations

from ...ops.conv2d_resample import conv2d_resample as _conv2d_resample

__all__ = ["conv2d_resample"]


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Upsample, pad, convolve, downsample (NVlabs semantics), in the cheapest order; see
    :func:`alae_fast.ops.conv2d_resample` for shapes, dtypes and errors."""
    return _conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups,
                            flip_weight=flip_weight, flip_filter=flip_filter)
