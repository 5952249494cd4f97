"""One rule for a bad argument in every op and shim, as Python's own: an argument of the wrong
TYPE (a string or None where a number is expected, a float or bool where an int is, a tensor
where a scalar is) raises TypeError; one of the right type with a bad VALUE (NaN or inf,
negative, out of range, a wrong length) raises ValueError. Either message names the op and the
argument. The table below runs each case over alae_fast.ops, the NVlabs shims
(alae_fast.compat.nvlabs) and the rosinality shims (alae_fast.compat.rosinality).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alae_fast import ops
from alae_fast.compat import nvlabs
from alae_fast.compat import rosinality as ros

pytestmark = pytest.mark.usefixtures("one_thread")

NAN, INF = float("nan"), math.inf
X = torch.randn(1, 4, 8, 8)
F4 = ops.setup_filter([1, 3, 3, 1])
W = torch.randn(4, 4, 3, 3)
S = torch.randn(1, 4)
K = ros.make_kernel([1, 3, 3, 1])

T, V = TypeError, ValueError
# the cases of each kind of argument: (case, value, expected exception)
INT_FACTOR = [("str", "2", T), ("None", None, T), ("bool", True, T), ("float", 2.0, T), ("nan", NAN, T),
              ("zero", 0, V), ("negative", -1, V)]
PADDING = [("str", "1", T), ("None", None, T), ("bool", True, T), ("float", 1.5, T), ("nan", NAN, T),
           ("float-entry", [1.5, 0], T), ("length-3", [1, 1, 1], V), ("crops-all", -100, V)]
REAL = [("str", "2", T), ("None", None, T), ("bool", True, T), ("tensor-1d", torch.ones(2), T),
        ("nan", NAN, V), ("inf", INF, V)]
REAL_OR_NONE = [c for c in REAL if c[0] != "None"]
CLAMP = REAL_OR_NONE[:-1] + [("negative", -1.0, V)]  # +inf is no clamp
EPS = REAL + [("negative", -1.0, V)]
BOOL = [("str", "True", T), ("None", None, T), ("int", 1, T), ("float", 1.0, T)]
CHOICE = [("None", None, T), ("int", 3, T), ("unknown", "nope", V)]


def _rows():
    rows = []

    def add(op, arg, call, cases, name=None):
        for case, value, exc in cases:
            rows.append(pytest.param(call, value, exc, op, name or arg, id=f"{op}-{arg}-{case}"))

    add("bias_act", "dim", lambda v: ops.bias_act(X, torch.zeros(4), dim=v),
        [c for c in INT_FACTOR if c[0] not in ("zero", "negative")] + [("out-of-range", 7, V)])
    add("bias_act", "act", lambda v: ops.bias_act(X, act=v), CHOICE)
    add("bias_act", "alpha", lambda v: ops.bias_act(X, act="lrelu", alpha=v), REAL_OR_NONE)
    add("bias_act", "gain", lambda v: ops.bias_act(X, gain=v), REAL_OR_NONE)
    add("bias_act", "clamp", lambda v: ops.bias_act(X, clamp=v), CLAMP)
    add("bias_act", "impl", lambda v: ops.bias_act(X, impl=v), CHOICE)
    for op, fn in (("upfirdn2d", ops.upfirdn2d), ("nvlabs.upfirdn2d", nvlabs.upfirdn2d)):
        add(op, "up", lambda v, fn=fn: fn(X, F4, up=v), INT_FACTOR + [("float-entry", [2, 2.0], T)])
        add(op, "down", lambda v, fn=fn: fn(X, F4, down=v), INT_FACTOR + [("length-3", [2, 2, 2], V)])
        add(op, "padding", lambda v, fn=fn: fn(X, F4, padding=v), PADDING)
        add(op, "gain", lambda v, fn=fn: fn(X, F4, gain=v), REAL)
        add(op, "flip_filter", lambda v, fn=fn: fn(X, F4, flip_filter=v), BOOL)
        add(op, "f", lambda v, fn=fn: fn(X, v), [("str", "f", T), ("list", [1.0, 2.0], T),
                                                  ("int-tensor", torch.ones(3, dtype=torch.long), T),
                                                  ("3-d", torch.ones(1, 2, 2), V)])
        add(op, "impl", lambda v, fn=fn: fn(X, F4, impl=v), CHOICE)
    for op, mod in (("filter2d", ops), ("nvlabs.filter2d", nvlabs)):
        add(op, "padding", lambda v, mod=mod: mod.filter2d(X, F4, padding=v), PADDING)
        add(op, "gain", lambda v, mod=mod: mod.filter2d(X, F4, gain=v), REAL)
    for op, mod in (("upsample2d", ops), ("nvlabs.upsample2d", nvlabs)):
        add(op, "up", lambda v, mod=mod: mod.upsample2d(X, F4, up=v), INT_FACTOR)
        add(op, "gain", lambda v, mod=mod: mod.upsample2d(X, F4, gain=v), REAL)
    for op, mod in (("downsample2d", ops), ("nvlabs.downsample2d", nvlabs)):
        add(op, "down", lambda v, mod=mod: mod.downsample2d(X, F4, down=v), INT_FACTOR)
        add(op, "padding", lambda v, mod=mod: mod.downsample2d(X, F4, padding=v), PADDING[:-1])
    for op, mod in (("setup_filter", ops), ("nvlabs.setup_filter", nvlabs)):
        add(op, "gain", lambda v, mod=mod: mod.setup_filter([1, 2], gain=v), REAL)
        add(op, "f", lambda v, mod=mod: mod.setup_filter(v), [("str", "ab", T), ("3-d", [[[1.0]]], V)])
        add(op, "normalize", lambda v, mod=mod: mod.setup_filter([1, 2], normalize=v), BOOL)
        add(op, "flip_filter", lambda v, mod=mod: mod.setup_filter([1, 2], flip_filter=v), BOOL)
        add(op, "separable", lambda v, mod=mod: mod.setup_filter([1, 2], separable=v),
            [c for c in BOOL if c[0] != "None"])
        add(op, "device", lambda v, mod=mod: mod.setup_filter([1, 2], device=v),
            [("int", 3, T), ("unknown", "nope", V)])
    for op, mod in (("filter2d", ops), ("upsample2d", ops), ("downsample2d", ops)):
        add(op, "flip_filter", lambda v, op=op: getattr(ops, op)(X, F4, flip_filter=v), BOOL)
    gradfix = nvlabs.torch_utils_ops.conv2d_gradfix
    add("no_weight_gradients", "disable", lambda v: gradfix.no_weight_gradients(v).__enter__(), BOOL)
    for op, fn in (("filtered_lrelu", ops.filtered_lrelu), ("nvlabs.filtered_lrelu", nvlabs.filtered_lrelu)):
        add(op, "up", lambda v, fn=fn: fn(X, F4, F4, up=v, padding=8), INT_FACTOR)
        add(op, "down", lambda v, fn=fn: fn(X, F4, F4, down=v, padding=8), INT_FACTOR)
        add(op, "padding", lambda v, fn=fn: fn(X, F4, F4, padding=v), PADDING)
        add(op, "gain", lambda v, fn=fn: fn(X, gain=v), REAL)
        add(op, "slope", lambda v, fn=fn: fn(X, slope=v), REAL)
        add(op, "clamp", lambda v, fn=fn: fn(X, clamp=v), CLAMP)
        add(op, "flip_filter", lambda v, fn=fn: fn(X, flip_filter=v), BOOL)
        add(op, "fu", lambda v, fn=fn: fn(X, v), [("list", [1.0, 2.0], T),
                                                  ("int-tensor", torch.ones(3, dtype=torch.long), T)])
    # NVlabs asserts gain > 0 and slope >= 0: the shim refuses what its values NVlabs refuses
    add("nvlabs.filtered_lrelu", "gain", lambda v: nvlabs.filtered_lrelu(X, gain=v), [("negative", -1.0, V)])
    add("nvlabs.filtered_lrelu", "slope", lambda v: nvlabs.filtered_lrelu(X, slope=v), [("negative", -1.0, V)])
    for op, fn in (("conv2d_resample", ops.conv2d_resample), ("nvlabs.conv2d_resample", nvlabs.conv2d_resample)):
        add(op, "up", lambda v, fn=fn: fn(X, W, F4, up=v), INT_FACTOR)
        add(op, "down", lambda v, fn=fn: fn(X, W, F4, down=v), INT_FACTOR)
        add(op, "padding", lambda v, fn=fn: fn(X, W, F4, padding=v), PADDING)
        add(op, "groups", lambda v, fn=fn: fn(X, W[:, :2], F4, groups=v), INT_FACTOR)
        add(op, "flip_weight", lambda v, fn=fn: fn(X, W, F4, flip_weight=v), BOOL)
        add(op, "flip_filter", lambda v, fn=fn: fn(X, W, F4, flip_filter=v), BOOL)
    for op, fn in (("modulated_conv2d", ops.modulated_conv2d), ("nvlabs.modulated_conv2d", nvlabs.modulated_conv2d)):
        add(op, "up", lambda v, fn=fn: fn(X, W, S, up=v, resample_filter=F4), INT_FACTOR)
        add(op, "down", lambda v, fn=fn: fn(X, W, S, down=v, resample_filter=F4), INT_FACTOR)
        add(op, "padding", lambda v, fn=fn: fn(X, W, S, padding=v), PADDING)
        add(op, "demodulate", lambda v, fn=fn: fn(X, W, S, demodulate=v), BOOL)
        add(op, "fused_modconv", lambda v, fn=fn: fn(X, W, S, fused_modconv=v), BOOL)
    add("modulated_conv2d", "impl", lambda v: ops.modulated_conv2d(X, W, S, impl=v), CHOICE)
    add("modulate_weight", "eps", lambda v: ops.modulate_weight(W, S, eps=v), EPS)
    add("modulate_weight", "impl", lambda v: ops.modulate_weight(W, S, impl=v), CHOICE)
    add("adain", "eps", lambda v: ops.adain(X, None, None, eps=v), EPS)
    add("adain", "alpha", lambda v: ops.adain(X, None, None, alpha=v), REAL_OR_NONE)
    add("adain", "act", lambda v: ops.adain(X, None, None, act=v), CHOICE)
    add("adain", "impl", lambda v: ops.adain(X, None, None, impl=v), CHOICE)
    add("instance_norm_stats", "eps", lambda v: ops.instance_norm_stats(X, eps=v), EPS)
    add("instance_norm_stats", "alpha", lambda v: ops.instance_norm_stats(X, act="lrelu", alpha=v), REAL_OR_NONE)
    add("instance_norm_stats", "act", lambda v: ops.instance_norm_stats(X, act=v), CHOICE)
    add("instance_norm_stats", "impl", lambda v: ops.instance_norm_stats(X, impl=v), CHOICE)
    add("nvlabs.bias_act", "gain", lambda v: nvlabs.bias_act(X, gain=v), REAL_OR_NONE)
    add("nvlabs.bias_act", "clamp", lambda v: nvlabs.bias_act(X, clamp=v), CLAMP)
    add("nvlabs.bias_act", "act", lambda v: nvlabs.bias_act(X, act=v), CHOICE)
    add("nvlabs.bias_act", "impl", lambda v: nvlabs.bias_act(X, impl=v), CHOICE)
    add("rosinality.fused_leaky_relu", "negative_slope",
        lambda v: ros.fused_leaky_relu(X, negative_slope=v), REAL)
    add("rosinality.fused_leaky_relu", "scale", lambda v: ros.fused_leaky_relu(X, scale=v), REAL)
    add("rosinality.upfirdn2d", "up", lambda v: ros.upfirdn2d(X, K, up=v), INT_FACTOR)
    add("rosinality.upfirdn2d", "down", lambda v: ros.upfirdn2d(X, K, down=v),
        INT_FACTOR + [("length-3", (1, 2, 3), V), ("float-entry", (2, 2.0), T)])
    add("rosinality.upfirdn2d", "pad", lambda v: ros.upfirdn2d(X, K, pad=v),
        [("str", "1", T), ("None", None, T), ("int", 1, T), ("bool-entry", (True, 0), T),
         ("float-entry", (1.5, 0), T), ("length-3", (1, 1, 1), V), ("crops-all", (-100, 0), V)])
    add("rosinality.upfirdn2d", "kernel", lambda v: ros.upfirdn2d(X, v),
        [("str", "k", T), ("None", None, T), ("1-d", torch.ones(3), V)])
    return rows


@pytest.mark.parametrize("call, value, exc, op, arg", _rows())
def test_bad_argument_type_or_value(call, value, exc, op, arg):
    other = ValueError if exc is TypeError else TypeError
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    assert info.type is exc or (issubclass(info.type, exc) and not issubclass(info.type, other)), (
        f"{op}({arg}={value!r}) raised {info.type.__name__}: {info.value}")
    message = str(info.value)
    assert arg in message, message
    assert op.rpartition(".")[2] in message, message


@pytest.mark.parametrize("gain", [np.sqrt(4.0), np.float32(2.0), torch.tensor(2.0), np.array(2.0), 2, np.int64(2)],
                         ids=["np.float64", "np.float32", "0-d-tensor", "0-d-array", "int", "np.int64"])
def test_scalar_kinds_are_accepted(gain):
    # StyleGAN3 passes gain=np.sqrt(2); a 0-d tensor is read as NVlabs' ops read one.
    ref = ops.upfirdn2d(X, F4, gain=2.0)
    torch.testing.assert_close(ops.upfirdn2d(X, F4, gain=gain), ref)
    torch.testing.assert_close(nvlabs.upfirdn2d(X, F4, gain=gain), ref)
    torch.testing.assert_close(ops.bias_act(X, gain=gain), ops.bias_act(X, gain=2.0))
    torch.testing.assert_close(ops.filtered_lrelu(X, gain=gain), ops.filtered_lrelu(X, gain=2.0))
    torch.testing.assert_close(ops.adain(X, None, None, eps=gain), ops.adain(X, None, None, eps=2.0))
    for factor in (np.int64(2), np.int32(2)):
        assert ops.upfirdn2d(X, F4, up=factor).shape == ops.upfirdn2d(X, F4, up=2).shape
        assert ops.conv2d_resample(X, W, F4, up=factor).shape == ops.conv2d_resample(X, W, F4, up=2).shape
        assert ops.filtered_lrelu(X, F4, F4, up=factor, padding=np.int64(8)).shape == \
            ops.filtered_lrelu(X, F4, F4, up=2, padding=8).shape


# --- the layers: alae_fast.nn and the rosinality layers --------------------------------------------

def _layer_rows():
    from alae_fast import nn as ann

    rows = []

    def add(layer, arg, call, cases):
        for case, value, exc in cases:
            rows.append(pytest.param(call, value, exc, layer, arg, id=f"{layer}-{arg}-{case}"))

    count = [("str", "4", T), ("None", None, T), ("bool", True, T), ("float", 4.0, T), ("zero", 0, V),
             ("negative", -2, V)]
    impl = CHOICE
    add("FusedLeakyReLU", "channels", lambda v: ann.FusedLeakyReLU(v), count)
    add("FusedLeakyReLU", "bias", lambda v: ann.FusedLeakyReLU(4, bias=v), BOOL)
    add("EqualizedLinear", "in_features", lambda v: ann.EqualizedLinear(v, 3), count)
    add("EqualizedLinear", "bias", lambda v: ann.EqualizedLinear(2, 3, bias=v), BOOL)
    add("EqualizedLinear", "lrmul", lambda v: ann.EqualizedLinear(2, 3, lrmul=v), REAL + [("zero", 0.0, V)])
    add("EqualizedLinear", "act", lambda v: ann.EqualizedLinear(2, 3, act=v), CHOICE)
    add("EqualizedLinear", "impl", lambda v: ann.EqualizedLinear(2, 3, impl=v), impl)
    add("EqualizedConv2d", "kernel_size", lambda v: ann.EqualizedConv2d(2, 3, v),
        count + [("float-entry", (3, 3.0), T), ("length-3", (3, 3, 3), V)])
    add("EqualizedConv2d", "padding", lambda v: ann.EqualizedConv2d(2, 3, 3, padding=v),
        [("str", "1", T), ("None", None, T), ("float", 1.0, T), ("negative", -1, V)])
    add("EqualizedConv2d", "stride", lambda v: ann.EqualizedConv2d(2, 3, 3, stride=v), count)
    add("set_impl", "impl", lambda v: ann.set_impl(torch.nn.Linear(1, 1), v), CHOICE)
    add("PixelNorm", "dim", lambda v: ann.PixelNorm(dim=v), [("str", "1", T), ("float", 1.0, T), ("bool", True, T)])
    add("PixelNorm", "eps", lambda v: ann.PixelNorm(eps=v), EPS)
    add("Blur", "kernel", lambda v: ann.Blur(kernel=v),
        [("str", "ab", T), ("3-d", [[[1.0]]], V), ("zero-sum", [1, -1], V)])
    add("Blur", "pad", lambda v: ann.Blur(pad=v), [("str", "1", T), ("int", 1, T), ("float-entry", (1.5, 0), T),
                                                   ("length-3", (1, 1, 1), V)])
    add("Blur", "upsample_factor", lambda v: ann.Blur(upsample_factor=v), count)
    add("Upsample", "factor", lambda v: ann.Upsample(factor=v), count)
    add("Downsample", "factor", lambda v: ann.Downsample(factor=v), count)
    add("NoiseInjection", "channels", lambda v: ann.NoiseInjection(v), count)
    add("AdaIN", "channels", lambda v: ann.AdaIN(v, 8), count)
    add("AdaIN", "w_dim", lambda v: ann.AdaIN(4, v), count)
    add("AdaIN", "eps", lambda v: ann.AdaIN(4, 8, eps=v), EPS)
    add("AdaIN", "impl", lambda v: ann.AdaIN(4, 8, impl=v), impl)
    add("StyleBlock", "w_dim", lambda v: ann.StyleBlock(4, 4, v), count)
    add("StyleBlock", "up", lambda v: ann.StyleBlock(4, 4, 8, up=v), [("int", 2, T), ("bool", True, T),
                                                                      ("unknown", "bilinear", V)])
    for flag in ("conv", "blur", "noise"):
        add("StyleBlock", flag, lambda v, flag=flag: ann.StyleBlock(4, 4, 8, **{flag: v}), BOOL)
    add("StyleBlock", "act", lambda v: ann.StyleBlock(4, 4, 8, act=v), CHOICE)
    add("StyleBlock", "alpha", lambda v: ann.StyleBlock(4, 4, 8, alpha=v), REAL_OR_NONE)
    add("StyleBlock", "eps", lambda v: ann.StyleBlock(4, 4, 8, eps=v), EPS)
    add("StyleBlock", "impl", lambda v: ann.StyleBlock(4, 4, 8, impl=v), impl)
    add("ModulatedConv2d", "kernel_size", lambda v: ann.ModulatedConv2d(4, 4, v, 8), count)
    add("ModulatedConv2d", "up", lambda v: ann.ModulatedConv2d(4, 4, 3, 8, up=v), count)
    add("ModulatedConv2d", "demodulate", lambda v: ann.ModulatedConv2d(4, 4, 3, 8, demodulate=v), BOOL)
    add("ModulatedConv2d", "fused_modconv", lambda v: ann.ModulatedConv2d(4, 4, 3, 8, fused_modconv=v), BOOL)
    add("ModulatedConv2d", "resample_filter", lambda v: ann.ModulatedConv2d(4, 4, 3, 8, up=2, resample_filter=v),
        [("str", "ab", T), ("3-d", [[[1.0]]], V), ("zero-sum", [1, -1], V)])
    add("ModulatedConv2d", "impl", lambda v: ann.ModulatedConv2d(4, 4, 3, 8, impl=v), impl)
    add("ToRGB", "clamp", lambda v: ann.ToRGB(4, 8, clamp=v), CLAMP)
    add("ToRGB", "resample_filter", lambda v: ann.ToRGB(4, 8, resample_filter=v), [("str", "ab", T),
                                                                                    ("zero-sum", [1, -1], V)])
    add("ToRGB", "out_channels", lambda v: ann.ToRGB(4, 8, out_channels=v), count)
    add("FilteredLeakyReLU", "channels", lambda v: ann.FilteredLeakyReLU(v, None, None), count)
    add("FilteredLeakyReLU", "bias", lambda v: ann.FilteredLeakyReLU(4, None, None, bias=v), BOOL)
    add("FilteredLeakyReLU", "up", lambda v: ann.FilteredLeakyReLU(4, None, None, up=v), INT_FACTOR)
    add("FilteredLeakyReLU", "padding", lambda v: ann.FilteredLeakyReLU(4, None, None, padding=v), PADDING[:-1])
    add("FilteredLeakyReLU", "up_filter", lambda v: ann.FilteredLeakyReLU(4, v, None),
        [("str", "ab", T), ("3-d", [[[1.0]]], V)])
    add("FilteredLeakyReLU", "clamp", lambda v: ann.FilteredLeakyReLU(4, None, None, clamp=v), CLAMP)
    add("rosinality.FusedLeakyReLU", "channel", lambda v: ros.FusedLeakyReLU(v), count)
    add("rosinality.FusedLeakyReLU", "bias", lambda v: ros.FusedLeakyReLU(4, bias=v), BOOL)
    add("rosinality.FusedLeakyReLU", "negative_slope", lambda v: ros.FusedLeakyReLU(4, negative_slope=v), REAL)
    add("rosinality.make_kernel", "kernel", lambda v: ros.make_kernel(v), [("str", "ab", T), ("zero-sum", [1, -1], V)])
    add("rosinality.Blur", "pad", lambda v: ros.Blur([1, 3, 3, 1], v), [("int", 1, T), ("length-3", (1, 1, 1), V),
                                                                        ("float-entry", (1.5, 1), T)])
    add("rosinality.Blur", "upsample_factor", lambda v: ros.Blur([1, 3, 3, 1], (1, 1), upsample_factor=v), count)
    add("rosinality.Upsample", "factor", lambda v: ros.Upsample([1, 3, 3, 1], factor=v), count)
    add("rosinality.Downsample", "factor", lambda v: ros.Downsample([1, 3, 3, 1], factor=v), count)
    add("rosinality.EqualLinear", "in_dim", lambda v: ros.EqualLinear(v, 3), count)
    add("rosinality.EqualLinear", "bias", lambda v: ros.EqualLinear(2, 3, bias=v), BOOL)
    add("rosinality.EqualLinear", "lr_mul", lambda v: ros.EqualLinear(2, 3, lr_mul=v), REAL + [("zero", 0.0, V)])
    add("rosinality.EqualConv2d", "kernel_size", lambda v: ros.EqualConv2d(2, 3, v), count)
    add("rosinality.EqualConv2d", "padding", lambda v: ros.EqualConv2d(2, 3, 3, padding=v),
        [("str", "1", T), ("float", 1.0, T), ("negative", -1, V)])
    add("rosinality.EqualConv2d", "bias", lambda v: ros.EqualConv2d(2, 3, 3, bias=v), BOOL)
    for flag in ("demodulate", "upsample", "downsample", "fused"):
        add("rosinality.ModulatedConv2d", flag, lambda v, flag=flag: ros.ModulatedConv2d(4, 4, 3, 8, **{flag: v}), BOOL)
    add("rosinality.ModulatedConv2d", "style_dim", lambda v: ros.ModulatedConv2d(4, 4, 3, v), count)
    add("rosinality.ModulatedConv2d", "blur_kernel", lambda v: ros.ModulatedConv2d(4, 4, 3, 8, upsample=True,
                                                                                    blur_kernel=v),
        [("int", 3, T), ("str", "ab", T), ("zero-sum", [1, -1], V)])
    return rows


@pytest.mark.parametrize("call, value, exc, op, arg", _layer_rows())
def test_layer_constructor_argument_type_or_value(call, value, exc, op, arg):
    test_bad_argument_type_or_value(call, value, exc, op, arg)


@pytest.mark.parametrize("flag", [np.True_, np.False_])
def test_numpy_bools_are_bools(flag):
    # a flag read from an array or a config: NumPy's bool is a bool, as torch's own arguments take it
    torch.testing.assert_close(ops.setup_filter([1, 2], normalize=flag), ops.setup_filter([1, 2], normalize=bool(flag)))
    torch.testing.assert_close(ops.upfirdn2d(X, F4, flip_filter=flag), ops.upfirdn2d(X, F4, flip_filter=bool(flag)))


def test_setup_filter_flags_take_effect():
    # what the refused strings would have done silently: "False" is truthy
    f = [1.0, 2.0]
    torch.testing.assert_close(ops.setup_filter(f, normalize=False), torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    torch.testing.assert_close(ops.setup_filter(f, normalize=True, flip_filter=True),
                               torch.tensor([[4.0, 2.0], [2.0, 1.0]]) / 9)
    assert ops.setup_filter(f, separable=True).shape == (2,)
    assert ops.setup_filter(f, device="cpu").device.type == "cpu"


# Every argument combination below is refused by the composite op itself, under its own name:
# none of its inner calls (conv2d_resample, upfirdn2d) may be the one to refuse it.
_INNER = ("conv2d_resample", "upfirdn2d")


def _composite_calls():
    w1, w3 = torch.randn(4, 4, 1, 1), W
    for up in (1, 2):
        for down in (1, 2):
            for w in (w1, w3):
                for pad in (-9, -6, -5, -4, -3, -2, -1, [0, -7, 0, 0], [-6, 0, 1, 1], [0, 0, -8, 0]):
                    yield ("modulated_conv2d", lambda w=w, up=up, down=down, pad=pad: ops.modulated_conv2d(
                        X, w, S, up=up, down=down, padding=pad, resample_filter=F4))
                    yield ("modulated_conv2d", lambda w=w, up=up, down=down, pad=pad: ops.modulated_conv2d(
                        X, w, S, up=up, down=down, padding=pad, resample_filter=F4, fused_modconv=False))
                    yield ("modulated_conv2d", lambda w=w, up=up, down=down, pad=pad: nvlabs.modulated_conv2d(
                        X, w, S, up=up, down=down, padding=pad, resample_filter=F4))
                    yield ("conv2d_resample", lambda w=w, up=up, down=down, pad=pad: ops.conv2d_resample(
                        X, w, F4, up=up, down=down, padding=pad))
    for pad in (-9, -5, -4, -3, [-8, 0], [0, -6, 0, 0]):
        for name in ("filter2d", "upsample2d", "downsample2d"):
            yield (name, lambda name=name, pad=pad: getattr(ops, name)(X, F4, padding=pad))
            yield (name, lambda name=name, pad=pad: getattr(nvlabs, name)(X, F4, padding=pad))


@pytest.mark.parametrize("op, call", list(_composite_calls()))
def test_composite_ops_name_themselves(op, call):
    try:
        call()
    except (TypeError, ValueError) as e:
        message = str(e)
        assert message.startswith(f"{op}: "), message
        if op not in _INNER:
            assert not any(message.startswith(f"{inner}:") for inner in _INNER), message
