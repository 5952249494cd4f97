"""NVlabs StyleGAN2-ADA / StyleGAN3 ``torch_utils.ops`` signatures on alae_fast's ops.

Replace ``from torch_utils.ops import bias_act, upfirdn2d, conv2d_resample`` call sites with
the functions here: same argument names, defaults and semantics. ``impl='cuda'`` (NVlabs'
default) means "the compiled kernel": ours runs on CPU tensors too, and falls back to the
reference where no kernel was built. ``impl='ref'`` forces the PyTorch reference.
Behaviour was written from the documented semantics; no NVlabs code is used.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..ops.bias_act import bias_act as _bias_act
from ..ops.upfirdn2d import downsample2d as _downsample2d, filter2d as _filter2d
from ..ops.upfirdn2d import setup_filter as _setup_filter, upfirdn2d as _upfirdn2d, upsample2d as _upsample2d
from ..ops.conv2d_resample import conv2d_resample as _conv2d_resample
from ..ops.modulated_conv2d import modulated_conv2d as _modulated_conv2d
from .nvlabs_filtered_lrelu import filtered_lrelu  # noqa: F401  (StyleGAN3)

__all__ = ["bias_act", "upfirdn2d", "setup_filter", "filter2d", "upsample2d", "downsample2d",
           "conv2d_resample", "modulated_conv2d"]


def _impl(impl: str) -> str:
    if impl in ("cuda", "auto"):
        return "auto"
    if impl == "ref":
        return "ref"
    raise ValueError(f"impl must be 'cuda' or 'ref' (NVlabs names) or 'auto'; got {impl!r}")


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="cuda"):
    """NVlabs ``bias_act.bias_act``; see :func:`alae_fast.ops.bias_act`."""
    return _bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=_impl(impl))


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upfirdn2d.upfirdn2d``; see :func:`alae_fast.ops.upfirdn2d`."""
    return _upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                         impl=_impl(impl))


def setup_filter(f, device=torch.device("cpu"), normalize=True, flip_filter=False, gain=1, separable=None):
    """NVlabs ``upfirdn2d.setup_filter``; see :func:`alae_fast.ops.setup_filter`."""
    return _setup_filter(f, device=device, normalize=normalize, flip_filter=flip_filter, gain=gain,
                            separable=separable)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upfirdn2d.filter2d``."""
    return _filter2d(x, f, padding=padding, flip_filter=flip_filter, gain=gain, impl=_impl(impl))


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upfirdn2d.upsample2d`` (gain multiplied by up**2)."""
    return _upsample2d(x, f, up=up, padding=padding, flip_filter=flip_filter, gain=gain, impl=_impl(impl))


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    """NVlabs ``upfirdn2d.downsample2d``."""
    return _downsample2d(x, f, down=down, padding=padding, flip_filter=flip_filter, gain=gain,
                            impl=_impl(impl))


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """NVlabs ``conv2d_resample.conv2d_resample``: upsample, pad, convolve, downsample, in the
    cheapest order."""
    return _conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups,
                            flip_weight=flip_weight, flip_filter=flip_filter)


def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True):
    """NVlabs ``networks.modulated_conv2d`` (StyleGAN2-ADA): x [N, I, H, W], weight [O, I, kh, kw],
    styles [N, I]; see :func:`alae_fast.ops.modulated_conv2d`."""
    return _modulated_conv2d(x, weight, styles, noise=noise, up=up, down=down, padding=padding,
                             resample_filter=resample_filter, demodulate=demodulate,
                             flip_weight=flip_weight, fused_modconv=fused_modconv)


# NVlabs code calls these through modules (``from torch_utils.ops import bias_act`` then
# ``bias_act.bias_act(...)``); this namespace has the same shape, so one import line changes:
#     from alae_fast.compat.nvlabs import torch_utils_ops
#     bias_act, upfirdn2d, conv2d_resample = (torch_utils_ops.bias_act, torch_utils_ops.upfirdn2d,
#                                             torch_utils_ops.conv2d_resample)
torch_utils_ops = SimpleNamespace(
    bias_act=SimpleNamespace(bias_act=bias_act),
    upfirdn2d=SimpleNamespace(upfirdn2d=upfirdn2d, setup_filter=setup_filter, filter2d=filter2d,
                              upsample2d=upsample2d, downsample2d=downsample2d),
    conv2d_resample=SimpleNamespace(conv2d_resample=conv2d_resample),
)
__all__.append("torch_utils_ops")
