"""NVlabs ``torch_utils.ops.conv2d_gradfix``: ``conv2d``, ``conv_transpose2d``,
``no_weight_gradients`` and the ``enabled`` switch.

NVlabs wrote this module because PyTorch 1.7-1.9 could not take the double backward of
cuDNN convolutions; its custom op runs only on those versions and otherwise falls back to
``torch.nn.functional``. The PyTorch versions alae_fast supports differentiate convolutions
to any order themselves, so these are ``F.conv2d`` / ``F.conv_transpose2d``, with NVlabs'
signatures. ``enabled`` and ``no_weight_gradients()`` are kept so NVlabs' training loop runs;
they change no result (as NVlabs' own fallback), and no gradient is ever dropped.
"""

from __future__ import annotations

import contextlib

import torch.nn.functional as F

from ...ops._dispatch import check_bool

__all__ = ["enabled", "weight_gradients_disabled", "no_weight_gradients", "conv2d", "conv_transpose2d"]

enabled = False
weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Sets ``weight_gradients_disabled`` inside the block (a speed hint NVlabs' custom op
    used; the result and the gradients are the same without it). TypeError unless ``disable``
    is a bool (a string such as "False" would have switched it on)."""
    global weight_gradients_disabled
    disable = check_bool(disable, "disable", "no_weight_gradients")
    old = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = old


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d`` with NVlabs' argument names."""
    return F.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation,
                    groups=groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """``torch.nn.functional.conv_transpose2d`` with NVlabs' argument names and order."""
    return F.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding,
                              output_padding=output_padding, groups=groups, dilation=dilation)
