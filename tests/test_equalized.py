"""EqualizedLinear / EqualizedConv2d / PixelNorm / set_impl: against plain torch computations
written from the definition, fused vs reference, gradients to second order, bad input."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from alae_fast import _lib
from alae_fast.nn import EqualizedConv2d, EqualizedLinear, PixelNorm, set_impl
from alae_fast_tests_support import OpRecorder

needs_kernels = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")


def act_oracle(z, act, alpha):
    """The activations, written directly (not through bias_act)."""
    if act == "linear":
        return z
    if act == "relu":
        return torch.where(z > 0, z, torch.zeros_like(z))
    if act == "lrelu":
        return torch.where(z > 0, z, z * (0.2 if alpha is None else alpha))
    if act == "tanh":
        return torch.tanh(z)
    raise AssertionError(act)


def linear_oracle(layer, x):
    """y = act(x @ (W*gain*lrmul/sqrt(fan_in)).T + b*bias_lrmul) * act_gain, clamped."""
    fan_in = layer.weight.shape[1]
    w = layer.weight * (layer.gain * layer.lrmul / math.sqrt(fan_in))
    y = x @ w.T
    if layer.bias is not None:
        y = y + layer.bias * layer.bias_lrmul
    y = act_oracle(y, layer.act, layer.act_alpha) * layer.act_gain
    if layer.clamp is not None:
        y = y.clamp(-layer.clamp, layer.clamp)
    return y


def randomize_bias(layer, seed=0):
    g = torch.Generator().manual_seed(seed)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=layer.bias.dtype))
    return layer


@settings(max_examples=40, deadline=None)
@given(fan_in=st.integers(1, 17), fan_out=st.integers(1, 9), lead=st.lists(st.integers(1, 3), max_size=2),
       lrmul=st.sampled_from([1.0, 0.1, 0.01]), bias=st.booleans(), bias_lrmul=st.sampled_from([None, 1.0, 0.5]),
       act=st.sampled_from(["linear", "relu", "lrelu", "tanh"]), alpha=st.sampled_from([None, 0.1]),
       act_gain=st.sampled_from([1.0, 1.7]), clamp=st.sampled_from([None, 0.5]),
       gain=st.sampled_from([math.sqrt(2), 1.0, 0.03]), seed=st.integers(0, 2**16))
def test_linear_matches_oracle(fan_in, fan_out, lead, lrmul, bias, bias_lrmul, act, alpha, act_gain, clamp, gain, seed):
    torch.manual_seed(seed)
    layer = EqualizedLinear(fan_in, fan_out, bias, gain=gain, lrmul=lrmul, bias_lrmul=bias_lrmul, act=act,
                            act_alpha=alpha, act_gain=act_gain, clamp=clamp, dtype=torch.float64)
    randomize_bias(layer, seed)
    x = torch.randn(*lead, fan_in, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (*lead, fan_out) and y.dtype == torch.float64
    torch.testing.assert_close(y, linear_oracle(layer, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(set_impl(copy.deepcopy(layer), "ref")(x), y, rtol=1e-12, atol=1e-12)


def test_linear_init_statistics():
    torch.manual_seed(0)
    layer = EqualizedLinear(400, 500, lrmul=0.1, bias_init=0.7)
    # Stored N(0, 1/lrmul^2); effective std gain/sqrt(fan_in); the bias's effective value is bias_init.
    assert abs(layer.weight.std().item() - 10.0) < 0.1
    assert abs(layer.weight.mean().item()) < 0.05
    assert layer.weight_gain == pytest.approx(math.sqrt(2) * 0.1 / 20.0)
    assert abs((layer.weight * layer.weight_gain).std().item() - math.sqrt(2) / 20.0) < 1e-3
    torch.testing.assert_close(layer.bias * layer.bias_lrmul, torch.full((500,), 0.7))
    torch.testing.assert_close(layer.bias, torch.full((500,), 7.0))
    other = EqualizedLinear(3, 4, lrmul=0.1, bias_lrmul=1.0, bias_init=0.7)
    torch.testing.assert_close(other.bias, torch.full((4,), 0.7))


def test_linear_fused_runs_kernel_and_matches_ref_with_grads(device):
    if not _lib.has_kernel(device.type):
        pytest.skip(f"no compiled kernel for {device.type}")
    torch.manual_seed(1)
    layer = randomize_bias(EqualizedLinear(33, 21, lrmul=0.1, act="lrelu")).to(device)
    ref = set_impl(copy.deepcopy(layer), "ref")
    x = torch.randn(7, 33, device=device, requires_grad=True)
    xr = x.detach().clone().requires_grad_(True)
    with OpRecorder() as rec:
        y = layer(x)
        y.square().sum().backward()
    assert {"alae_fast.bias_act.default", "alae_fast.bias_act_grad.default"} <= rec.alae_ops()
    with OpRecorder() as rec_ref:
        yr = ref(xr)
        yr.square().sum().backward()
    assert not rec_ref.alae_ops()
    torch.testing.assert_close(y, yr)
    torch.testing.assert_close(x.grad, xr.grad)
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad)


@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_linear_gradcheck_gradgradcheck_fused_lrelu(impl):
    torch.manual_seed(2)
    layer = EqualizedLinear(5, 4, lrmul=0.1, act="lrelu", impl=impl, dtype=torch.float64)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)
    # A bias that keeps every pre-activation away from the lrelu kink, where the
    # finite differences of gradcheck would straddle it.
    b = torch.randn(4, dtype=torch.float64).requires_grad_(True)

    def f(x, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

    with torch.no_grad():
        z = F.linear(x, w * layer.weight_gain) + b * layer.bias_lrmul
    assert z.abs().min() > 1e-3
    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_linear_half_and_bias_free():
    torch.manual_seed(3)
    layer = randomize_bias(EqualizedLinear(6, 5, act="lrelu"))
    x = torch.randn(4, 6)
    y = layer(x.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), linear_oracle(layer, x), rtol=3e-2, atol=3e-2)
    nobias = EqualizedLinear(6, 5, bias=False)
    assert nobias.bias is None
    torch.testing.assert_close(nobias(x), x @ (nobias.weight * math.sqrt(2) / math.sqrt(6)).T)


def test_meta_device():
    layer = EqualizedLinear(1024, 1024, device="meta")
    assert layer.weight.is_meta
    assert layer(torch.empty(2, 1024, device="meta")).shape == (2, 1024)


@settings(max_examples=25, deadline=None)
@given(cin=st.integers(1, 4), cout=st.integers(1, 5), k=st.sampled_from([1, 3, (3, 1)]),
       stride=st.sampled_from([1, 2]), padding=st.sampled_from([0, 1, (1, 0)]), hw=st.integers(3, 7),
       act=st.sampled_from(["linear", "lrelu"]), lrmul=st.sampled_from([1.0, 0.1]),
       channels_last=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_matches_oracle(cin, cout, k, stride, padding, hw, act, lrmul, channels_last, seed):
    torch.manual_seed(seed)
    layer = randomize_bias(EqualizedConv2d(cin, cout, k, stride, padding, lrmul=lrmul, act=act,
                                           dtype=torch.float64), seed)
    x = torch.randn(2, cin, hw, hw + 1, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = layer(x)
    kh, kw = layer.kernel_size
    w = layer.weight * (math.sqrt(2) * lrmul / math.sqrt(cin * kh * kw))
    expect = F.conv2d(x.contiguous(), w, layer.bias * lrmul, stride, padding)
    if act == "lrelu":
        expect = torch.where(expect > 0, expect, 0.2 * expect)
    torch.testing.assert_close(y, expect, rtol=1e-12, atol=1e-12)
    if channels_last and cout > 1 and y.shape[2] * y.shape[3] > 1:
        assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(set_impl(copy.deepcopy(layer), "ref")(x), y, rtol=1e-12, atol=1e-12)


def test_conv_gradgradcheck_fused(device):
    torch.manual_seed(4)
    layer = randomize_bias(EqualizedConv2d(2, 3, 3, padding=1, act="lrelu", dtype=torch.float64)).to(device)
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, device=device,
                    requires_grad=True).to(memory_format=torch.channels_last)
    b = layer.bias.detach().clone().requires_grad_(True)

    def f(x, b):
        return torch.func.functional_call(layer, {"weight": layer.weight.detach(), "bias": b}, (x,))

    with torch.no_grad():  # away from the lrelu kink, where finite differences straddle it
        z = F.conv2d(x, layer.weight * layer.weight_gain, b, padding=1)
    assert z.abs().min() > 1e-3

    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))


def test_pixel_norm_matches_numpy():
    torch.manual_seed(5)
    x = torch.randn(4, 6, 3, 2, dtype=torch.float64) * 3
    for dim in (1, -1):
        a = x.numpy()
        expect = a / np.sqrt(np.mean(a * a, axis=dim, keepdims=True) + 1e-8)
        np.testing.assert_allclose(PixelNorm(dim)(x).numpy(), expect, rtol=1e-12)
    z = torch.randn(5, 50) * 7
    torch.testing.assert_close(PixelNorm()(z).square().mean(1), torch.ones(5))
    h = PixelNorm()(z.half())
    assert h.dtype == torch.float16
    assert torch.autograd.gradcheck(PixelNorm(), (torch.randn(3, 4, dtype=torch.float64, requires_grad=True),))


def test_set_impl_switches_nested_layers():
    net = torch.nn.Sequential(EqualizedLinear(3, 3, act="lrelu"), torch.nn.Sequential(EqualizedConv2d(3, 3, 1)))
    assert set_impl(net, "ref") is net
    assert [m.impl for m in net.modules() if hasattr(m, "impl")] == ["ref", "ref"]
    set_impl(net, "auto")
    assert [m.impl for m in net.modules() if hasattr(m, "impl")] == ["auto", "auto"]
    with pytest.raises(ValueError, match="impl"):
        set_impl(net, "cuda")
    with pytest.raises(TypeError, match="module"):
        set_impl(3, "ref")


@pytest.mark.parametrize("kwargs, match, exc", [
    (dict(in_features=0, out_features=3), "in_features", ValueError),
    (dict(in_features=2, out_features=True), "out_features", TypeError),
    (dict(in_features=2, out_features=3, act="gelu"), "act", ValueError),
    (dict(in_features=2, out_features=3, lrmul=0.0), "lrmul", ValueError),
    (dict(in_features=2, out_features=3, gain=-1.0), "gain", ValueError),
    (dict(in_features=2, out_features=3, bias_lrmul=float("nan")), "bias_lrmul", ValueError),
    (dict(in_features=2, out_features=3, clamp=-1.0), "clamp", ValueError),
    (dict(in_features=2, out_features=3, impl="fast"), "impl", ValueError),
    (dict(in_features=2, out_features=3, lrmul=np.array(True)), "lrmul", TypeError),
    (dict(in_features=2, out_features=3, gain=np.array([1.0])), "gain", TypeError),
])
def test_linear_bad_arguments(kwargs, match, exc):
    # the ops' rule: the wrong type is a TypeError, a bad value of the right type a ValueError
    with pytest.raises(exc, match=match) as e:
        EqualizedLinear(**kwargs)
    assert e.type is exc


def test_numpy_numbers_are_numbers():
    # as the ops take them (StyleGAN code passes np.sqrt(2) and 0-d arrays of a config's values)
    a = EqualizedLinear(2, 3, lrmul=np.array(0.01), gain=np.sqrt(2), bias_lrmul=np.float32(0.5))
    b = EqualizedLinear(2, 3, lrmul=0.01, gain=math.sqrt(2), bias_lrmul=0.5)
    assert (a.lrmul, a.gain, a.bias_lrmul) == (b.lrmul, b.gain, b.bias_lrmul)
    assert all(type(v) is float for v in (a.lrmul, a.gain, a.bias_lrmul))
    assert PixelNorm(eps=np.array(1e-6)).eps == 1e-6
    with pytest.raises(TypeError, match="PixelNorm: eps"):
        PixelNorm(eps=np.array(True))


def test_bad_inputs():
    layer = EqualizedLinear(4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 4\]"):
        layer(torch.randn(2, 5))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer([1.0, 2.0, 3.0, 4.0])
    conv = EqualizedConv2d(2, 3, 3)
    with pytest.raises(ValueError, match=r"\[N, 2, H, W\]"):
        conv(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="kernel_size"):
        EqualizedConv2d(2, 3, 0)
    with pytest.raises(ValueError, match="padding"):
        EqualizedConv2d(2, 3, 3, padding=-1)
    with pytest.raises(ValueError, match="out of range"):
        PixelNorm(dim=3)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="eps"):
        PixelNorm(eps=-1.0)


@pytest.mark.parametrize("cin,cout,act", [(1, 8, "lrelu"), (8, 1, "linear"), (3, 16, "lrelu"), (32, 3, "linear")])
def test_rgb_1x1_conv_is_a_product_with_conv_values_and_gradients(cin, cout, act, monkeypatch):
    # FromRGB/ToRGB shapes take the product path (no F.conv2d call): values, gradients and
    # R1-style double-backward gradients equal the convolution's, in float64
    import alae_fast.nn.equalized as eq
    torch.manual_seed(cin * 10 + cout)
    layer = randomize_bias(EqualizedConv2d(cin, cout, 1, act=act, dtype=torch.float64), seed=cin)
    x = torch.randn(3, cin, 5, 6, dtype=torch.float64, requires_grad=True)
    calls = []
    real_conv2d = F.conv2d
    monkeypatch.setattr(eq.F, "conv2d", lambda *a, **k: calls.append(a[1].shape) or real_conv2d(*a, **k))
    y = layer(x)
    assert calls == [] and y.is_contiguous()

    w = layer.weight * layer.weight_gain
    expect = real_conv2d(x, w, layer.bias * layer.bias_lrmul)
    if act == "lrelu":
        expect = torch.where(expect > 0, expect, 0.2 * expect) * layer.act_gain
    torch.testing.assert_close(y, expect, rtol=1e-12, atol=1e-12)

    # first and second order against the convolution's own autograd
    def r1_like(out_fn):
        g, = torch.autograd.grad(out_fn(x).square().sum(), x, create_graph=True)
        return torch.autograd.grad(g.square().sum(), [x, layer.weight, layer.bias])

    def conv_layer(inp):
        z = real_conv2d(inp, layer.weight * layer.weight_gain, layer.bias * layer.bias_lrmul)
        return torch.where(z > 0, z, 0.2 * z) * layer.act_gain if act == "lrelu" else z

    for got, want in zip(r1_like(layer), r1_like(conv_layer)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    w0 = layer.weight.detach().clone().requires_grad_(True)

    def f(inp, weight):
        return torch.func.functional_call(layer, {"weight": weight, "bias": layer.bias.detach()}, (inp,))

    if act == "linear":  # away from the lrelu kink finite differences are only safe for a linear layer
        assert torch.autograd.gradgradcheck(f, (x, w0))


def test_1x1_conv_keeps_conv2d_where_the_product_is_not_faster_or_the_layout_differs(monkeypatch):
    import alae_fast.nn.equalized as eq
    calls = []
    real_conv2d = F.conv2d
    monkeypatch.setattr(eq.F, "conv2d", lambda *a, **k: calls.append(tuple(a[1].shape)) or real_conv2d(*a, **k))
    EqualizedConv2d(3, 64, 1)(torch.randn(2, 3, 4, 4))                                      # wide: oneDNN
    EqualizedConv2d(3, 8, 1, dtype=torch.bfloat16)(torch.randn(2, 3, 4, 4, dtype=torch.bfloat16))
    EqualizedConv2d(3, 8, 3, padding=1)(torch.randn(2, 3, 4, 4))                              # not 1x1
    assert calls == [(64, 3, 1, 1), (8, 3, 1, 1), (8, 3, 3, 3)]
    # a channels_last input takes the product too, over its trailing channels, and keeps its layout
    # (FromRGB and ToRGB of a model trained channels_last), with conv2d's values and gradients
    calls.clear()
    for cin, cout in ((3, 8), (8, 3), (1, 8)):
        layer = EqualizedConv2d(cin, cout, 1, act="lrelu", dtype=torch.float64)
        x = torch.randn(2, cin, 5, 6, dtype=torch.float64).to(memory_format=torch.channels_last).requires_grad_()
        y = layer(x)
        assert calls == [] and (cin == 1 or y.is_contiguous(memory_format=torch.channels_last))
        w, b = layer._scaled(x)
        xr = x.detach().contiguous().requires_grad_()
        ref = F.leaky_relu(real_conv2d(xr, w.detach(), None) + b.detach().view(1, -1, 1, 1), 0.2)
        torch.testing.assert_close(y, ref)
        g = torch.randn(y.shape, dtype=torch.float64)
        torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(ref, xr, g)[0])
