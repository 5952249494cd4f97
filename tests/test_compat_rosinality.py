"""compat.rosinality: a small StyleGAN2 written against rosinality's API from compat imports
only runs forward, backward and R1 double backward on the kernels and matches the same
network on reference ops."""


import numpy as np
import pytest
import torch
from torch import nn

import alae_fast.ops._dispatch as dispatch
from alae_fast.compat.rosinality import (Blur, Downsample, EqualConv2d, EqualLinear, FusedLeakyReLU,
                                         ModulatedConv2d, Upsample, fused_leaky_relu, make_kernel, upfirdn2d)


# --- a StyleGAN2 in rosinality's style, from compat imports only --------------------------
class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise):
        return image + self.weight * noise


class StyledConv(nn.Module):
    def __init__(self, cin, cout, k, style_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, k, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(cout)

    def forward(self, x, style, noise):
        out = self.conv(x, style)
        out = self.noise(out, noise[: out.shape[0], :, : out.shape[2], : out.shape[3]])
        return self.activate(out)


class ToRGB(nn.Module):
    def __init__(self, cin, style_dim, upsample=True):
        super().__init__()
        self.upsample = Upsample([1, 3, 3, 1]) if upsample else None
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(nn.Module):
    def __init__(self, style_dim=16, ch=8):
        super().__init__()
        self.style = nn.Sequential(*[EqualLinear(style_dim, style_dim, lr_mul=0.01, activation="fused_lrelu")
                                     for _ in range(2)])
        self.input = nn.Parameter(torch.randn(1, ch, 4, 4))
        self.conv1 = StyledConv(ch, ch, 3, style_dim)
        self.to_rgb1 = ToRGB(ch, style_dim, upsample=False)
        self.up = StyledConv(ch, ch, 3, style_dim, upsample=True)
        self.conv2 = StyledConv(ch, ch, 3, style_dim)
        self.to_rgb2 = ToRGB(ch, style_dim)

    def forward(self, z, noise):
        w = self.style(z)
        x = self.conv1(self.input.repeat(z.shape[0], 1, 1, 1), w, noise)
        skip = self.to_rgb1(x, w)
        x = self.conv2(self.up(x, w, noise), w, noise)
        return self.to_rgb2(x, w, skip)


class Discriminator(nn.Module):
    def __init__(self, ch=8):
        super().__init__()
        self.rgb = EqualConv2d(3, ch, 1)
        self.act = FusedLeakyReLU(ch)
        self.blur = Blur([1, 3, 3, 1], pad=(2, 2))
        self.down = EqualConv2d(ch, ch, 3, stride=2, bias=False)
        self.act2 = FusedLeakyReLU(ch)
        self.mod_down = ModulatedConv2d(ch, ch, 3, 4, downsample=True)
        self.pool = Downsample([1, 3, 3, 1])
        self.fc = EqualLinear(ch, 1)

    def forward(self, x):
        x = self.act(self.rgb(x))
        x = self.act2(self.down(self.blur(x)))
        x = self.mod_down(x, torch.ones(x.shape[0], 4, device=x.device, dtype=x.dtype))
        x = self.pool(x)
        return self.fc(x.flatten(1))


def _run(force_ref: bool, monkeypatch):
    monkeypatch.setattr(dispatch, "_FORCE_REF", force_ref)
    torch.manual_seed(0)
    G, D = Generator().double(), Discriminator().double()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, NoiseInjection):
                m.weight.fill_(0.3)
            if isinstance(m, FusedLeakyReLU):
                m.bias.normal_()
    z = torch.randn(2, 16, dtype=torch.float64)
    noise = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    img = G(z, noise)
    assert img.shape == (2, 3, 8, 8)
    x = img.detach().requires_grad_()
    score = D(x)
    (gx,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    r1 = gx.square().sum()
    loss = r1 + torch.nn.functional.softplus(-D(img)).mean()
    params = list(G.parameters()) + list(D.parameters())
    grads = torch.autograd.grad(loss, params)
    return [img, score, r1] + list(grads)


def test_rosinality_stylegan2_matches_reference_with_r1(monkeypatch):
    from alae_fast import _lib
    if not _lib.loaded():
        pytest.skip("compiled library not loaded")
    fused = _run(False, monkeypatch)
    ref = _run(True, monkeypatch)
    for a, b in zip(fused, ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert all(torch.isfinite(t).all() for t in fused)


def test_rosinality_ops_semantics():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    torch.testing.assert_close(fused_leaky_relu(x, b, 0.1, 2.0),
                               torch.nn.functional.leaky_relu(x + b.view(1, -1, 1, 1), 0.1) * 2.0)
    # rosinality's upfirdn2d: zero-insert, pad (before, after) on both axes, true convolution.
    k = make_kernel([1, 3, 3, 1]).double()
    up = torch.zeros(2, 3, 16, 16, dtype=torch.float64)
    up[:, :, ::2, ::2] = x
    padded = torch.nn.functional.pad(up, (2, 1, 2, 1))
    expected = torch.nn.functional.conv2d(padded.reshape(6, 1, 19, 19), k.flip([0, 1])[None, None]).reshape(2, 3, 16, 16)
    torch.testing.assert_close(upfirdn2d(x, k, up=2, pad=(2, 1)), expected, rtol=1e-12, atol=1e-12)
    assert Upsample([1, 3, 3, 1])(x).shape == (2, 3, 16, 16)
    assert Downsample([1, 3, 3, 1])(x).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="pad must be"):
        upfirdn2d(x, k, pad=(1, 1, 1))
    with pytest.raises(TypeError, match="pad must be"):
        upfirdn2d(x, k, pad=1)


def _rosinality_native(x, k, up_x, up_y, down_x, down_y, x0, x1, y0, y1):
    """rosinality's documented recipe, written out in float64: zero-insert, pad/crop with
    (x0, x1, y0, y1), convolve with the flipped kernel, keep every down-th sample."""
    N, C, H, W = x.shape
    z = x.new_zeros(N, C, H * up_y, W * up_x)
    z[:, :, ::up_y, ::up_x] = x
    z = torch.nn.functional.pad(z, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    z = z[:, :, max(-y0, 0): z.shape[2] - max(-y1, 0), max(-x0, 0): z.shape[3] - max(-x1, 0)]
    kh, kw = k.shape
    out = torch.nn.functional.conv2d(z.reshape(N * C, 1, *z.shape[2:]), k.flip([0, 1]).view(1, 1, kh, kw))
    return out.reshape(N, C, *out.shape[2:])[:, :, ::down_y, ::down_x]


@pytest.mark.parametrize("pad", [(2, 0, 1, 3), [0, 1, 2, -1], (1, 2), [-1, 2]])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), ((2, 1), (1, 2)), ([1, 2], 1)])
def test_rosinality_upfirdn2d_accepts_its_spellings(pad, up, down):
    # pad: (x0, x1, y0, y1) or (before, after) for both axes; up/down: int or (x, y).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    k = torch.randn(3, 4, generator=g, dtype=torch.float64)  # applied in float64, as rosinality's conv2d does
    p = [pad[0], pad[1], pad[0], pad[1]] if len(pad) == 2 else list(pad)
    u = (up, up) if isinstance(up, int) else tuple(up)
    d = (down, down) if isinstance(down, int) else tuple(down)
    expected = _rosinality_native(x, k, *u, *d, *p)
    torch.testing.assert_close(upfirdn2d(x, k, up=up, down=down, pad=pad), expected, rtol=1e-12, atol=1e-12)


def test_rosinality_upfirdn2d_kernel_gradient_and_bad_kernel():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    k = make_kernel([1, 3, 3, 1]).requires_grad_(True)
    upfirdn2d(x, k, pad=(2, 1, 1, 2)).sum().backward()
    assert k.grad is not None and torch.isfinite(k.grad).all()
    with pytest.raises(ValueError, match="kernel must be a 2-D"):
        upfirdn2d(x, torch.ones(4), pad=(1, 2))


def test_rosinality_fused_leaky_relu_spellings():
    g = torch.Generator().manual_seed(1)
    for shape in ((4, 5), (2, 5, 3), (2, 5, 3, 4)):
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        b = torch.randn(5, generator=g, dtype=torch.float64)
        view = [1, 5] + [1] * (len(shape) - 2)
        torch.testing.assert_close(fused_leaky_relu(x, b), torch.nn.functional.leaky_relu(x + b.view(view), 0.2) * 2 ** 0.5)
        torch.testing.assert_close(fused_leaky_relu(x, None, 0.3, 1.0), torch.nn.functional.leaky_relu(x, 0.3))
        torch.testing.assert_close(fused_leaky_relu(x, bias=b, negative_slope=0.1, scale=3.0),
                                   torch.nn.functional.leaky_relu(x + b.view(view), 0.1) * 3.0)
    layer = FusedLeakyReLU(5, bias=False, negative_slope=0.1, scale=1.5)
    assert layer.bias is None
    x = torch.randn(2, 5, 3, 3)
    torch.testing.assert_close(layer(x), torch.nn.functional.leaky_relu(x, 0.1) * 1.5)


def test_rosinality_conv2d_gradfix():
    from alae_fast.compat.rosinality import conv2d_gradfix
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    with conv2d_gradfix.no_weight_gradients():
        y = conv2d_gradfix.conv2d(x, w, padding=1, groups=2)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    gx.square().sum().backward()  # R1's double backward reaches the weights
    assert w.grad is not None and torch.isfinite(w.grad).all()
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, padding=1, groups=2))
    yt = conv2d_gradfix.conv_transpose2d(x, w.transpose(0, 1).reshape(4, 2, 3, 3), stride=2, padding=0, groups=1)
    torch.testing.assert_close(yt, torch.nn.functional.conv_transpose2d(x, w.transpose(0, 1).reshape(4, 2, 3, 3), stride=2))


@pytest.mark.parametrize("kwargs,kind,match", [
    (dict(up=2.5), TypeError, r"^upfirdn2d: up must be an int or an \(x, y\) pair of ints; got 2.5"),
    (dict(up=2.0), TypeError, r"^upfirdn2d: up must be an int"),
    (dict(down=1.9), TypeError, r"^upfirdn2d: down must be an int"),
    (dict(up="2"), TypeError, r"^upfirdn2d: up must be an int"),
    (dict(up=(2, 1.5)), TypeError, r"^upfirdn2d: up must be an int"),
    (dict(down=(1, 2, 3)), ValueError, r"^upfirdn2d: down must be an int or an \(x, y\) pair"),
    (dict(up=True), TypeError, r"^upfirdn2d: up must be an int"),
    (dict(down=0), ValueError, r"^upfirdn2d: down must be >= 1; got 0"),
    (dict(up=(1, -2)), ValueError, r"^upfirdn2d: up must be >= 1"),
    (dict(pad=(0.5, 1.7)), TypeError, r"^upfirdn2d: pad must hold ints; got \(0.5, 1.7\)"),
    (dict(pad=(1, 1, 1, 1.0)), TypeError, r"^upfirdn2d: pad must hold ints"),
    (dict(pad=3), TypeError, r"^upfirdn2d: pad must be \(before, after\) or \(x0, x1, y0, y1\)"),
    (dict(pad=(1, 1, 1)), ValueError, r"^upfirdn2d: pad must be \(before, after\) or \(x0, x1, y0, y1\)"),
])
def test_rosinality_upfirdn2d_refuses_what_is_not_an_int(kwargs, kind, match):
    # these were truncated by int(): up=2.5 ran as 2, down=1.9 as no downsampling at all
    x, k = torch.randn(1, 1, 4, 4), torch.ones(2, 2)
    with pytest.raises(kind, match=match):
        upfirdn2d(x, k, **kwargs)


def test_rosinality_upfirdn2d_takes_numpy_ints_and_names_input():
    g = torch.Generator().manual_seed(3)
    x, k = torch.randn(1, 2, 5, 5, generator=g), torch.randn(3, 3, generator=g)
    torch.testing.assert_close(upfirdn2d(x, k, up=np.int64(2), down=(np.int32(1), 2), pad=(np.int64(1), 1)),
                               upfirdn2d(x, k, up=2, down=(1, 2), pad=(1, 1)), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"^upfirdn2d: input must be a 4-D tensor \[N, C, H, W\]; got \(2, 5, 5\)"):
        upfirdn2d(x[0], k)


def test_rosinality_upfirdn2d_takes_1d_numpy_arrays_as_native_takes_any_iterable():
    # rosinality's native op iterates up/down/pad: a 1-D NumPy array of ints works there, and here
    g = torch.Generator().manual_seed(4)
    x, k = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g,
                                                                                 dtype=torch.float64)
    for up, down, pad in (((2, 1), (1, 2), (2, 1)), ((1, 2), (2, 1), (1, 2, 0, 1))):
        got = upfirdn2d(x, k, up=np.array(up), down=np.array(down, dtype=np.int32), pad=np.array(pad))
        torch.testing.assert_close(got, upfirdn2d(x, k, up=up, down=down, pad=pad), rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"^upfirdn2d: up must be an int or an \(x, y\) pair of ints; got array"):
        upfirdn2d(x, k, up=np.array([2.0, 2.0]))
    with pytest.raises(TypeError, match=r"^upfirdn2d: pad must be \(before, after\) or \(x0, x1, y0, y1\)"):
        upfirdn2d(x, k, pad=np.zeros((2, 2), dtype=np.int64))


def test_rosinality_fused_leaky_relu_names_its_arguments():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"^fused_leaky_relu: bias must be 1-D of length input.shape\[1\] = 3; "
                                         r"got \(4,\)"):
        fused_leaky_relu(x, torch.zeros(4))
    with pytest.raises(TypeError, match="^fused_leaky_relu: negative_slope must be a real number; got str"):
        fused_leaky_relu(x, torch.zeros(3), negative_slope="a")
    with pytest.raises(TypeError, match="^fused_leaky_relu: scale must be a real number; got NoneType"):
        fused_leaky_relu(x, None, 0.2, None)
    with pytest.raises(TypeError, match="^fused_leaky_relu: input must be a torch.Tensor; got list"):
        fused_leaky_relu([1.0, 2.0])
    with pytest.raises(ValueError, match=r"^fused_leaky_relu: input must be \[N, C, \.\.\.\] \(at least 2-D\) with "
                                         r"a bias; got \(3,\)"):
        fused_leaky_relu(torch.randn(3), torch.zeros(3))
    # without a bias any shape goes, as in rosinality's op
    v = torch.randn(7, dtype=torch.float64)
    torch.testing.assert_close(fused_leaky_relu(v), torch.nn.functional.leaky_relu(v, 0.2) * 2 ** 0.5)


def test_rosinality_errors_name_rosinality_arguments():
    # every refusal names the shim and rosinality's argument names, never bias_act's or
    # upfirdn2d's own (x, b, f, alpha, gain, padding)
    x, k = torch.randn(2, 3, 5, 5), torch.ones(3, 3)
    cases = [
        (lambda: fused_leaky_relu(torch.randint(0, 5, (2, 3))), TypeError, r"^fused_leaky_relu: input must have dtype"),
        (lambda: fused_leaky_relu(x, None, 0.2, float("nan")), ValueError, r"^fused_leaky_relu: scale must be finite; got nan"),
        (lambda: fused_leaky_relu(x, None, float("inf")), ValueError, r"^fused_leaky_relu: negative_slope must be finite; got inf"),
        (lambda: fused_leaky_relu(x, torch.zeros(3, device="meta")), ValueError,
         r"^fused_leaky_relu: bias must be on input's device cpu; got meta"),
        (lambda: upfirdn2d(torch.ones(1, 1, 4, 4, dtype=torch.int32), k), TypeError, r"^upfirdn2d: input must have dtype"),
        (lambda: upfirdn2d(x, torch.ones(3, 3, dtype=torch.int32)), TypeError,
         r"^upfirdn2d: kernel must be a floating-point tensor; got torch.int32"),
        (lambda: upfirdn2d(x, torch.ones(3, 3, device="meta")), ValueError,
         r"^upfirdn2d: kernel must be on input's device cpu; got meta"),
        (lambda: upfirdn2d(x, torch.ones(0, 3)), ValueError, r"^upfirdn2d: kernel must not be empty"),
        (lambda: upfirdn2d(x, k, pad=(-5, -5)), ValueError,
         r"^upfirdn2d: pad \[-5, -5, -5, -5\] leaves no output: .* is \[-7, -7\] for input of shape \(2, 3, 5, 5\)"),
        (lambda: upfirdn2d(x, k, down=4, pad=(-2, -2)), ValueError, r"^upfirdn2d: pad \[-2, -2, -2, -2\] leaves no output"),
    ]
    for call, kind, match in cases:
        with pytest.raises(kind, match=match):
            call()
    # an integer bias is cast to input's dtype, as rosinality's op casts it
    torch.testing.assert_close(fused_leaky_relu(x, torch.arange(3)), fused_leaky_relu(x, torch.arange(3.0)))
    # the output-size rule is the one the shim documents: the smallest pad that leaves one sample
    assert upfirdn2d(x, k, down=4, pad=(0, 0)).shape == (2, 3, 1, 1)


@pytest.mark.parametrize("upsample, downsample, demodulate", [(False, False, True), (True, False, True),
                                                              (False, True, True), (False, False, False),
                                                              (True, False, False), (False, True, False)])
def test_unfused_modulated_conv_is_the_fused_function(upsample, downsample, demodulate, monkeypatch):
    """rosinality's fused=False path (style on the input, demodulation on the output) was stored
    and ignored; it computes the fused path's function, and its gradients to second order. The
    independent reference: one conv2d per sample with that sample's modulated weight."""
    torch.manual_seed(3)
    kw = dict(demodulate=demodulate, upsample=upsample, downsample=downsample)
    fused = ModulatedConv2d(3, 5, 3, 4, **kw).double()
    unfused = ModulatedConv2d(3, 5, 3, 4, fused=False, **kw).double()
    unfused.load_state_dict(fused.state_dict())
    assert "fused=False" in repr(unfused)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    import alae_fast.compat.rosinality as ros

    groups = []  # the unfused path convolves with one shared weight [5, 3, 3, 3]: no per-sample groups

    def recording(*a, _real, **k):
        if tuple(a[1].shape[:2]) in ((5, 3), (3, 5)):  # not the reference blur's [C, 1, k, k] filters
            groups.append(k.get("groups", 1))
        return _real(*a, **k)

    for name in ("conv2d", "conv_transpose2d"):
        monkeypatch.setattr(ros.F, name, lambda *a, _real=getattr(torch.nn.functional, name), **k:
                            recording(*a, _real=_real, **k))
    out = unfused(x, s)
    assert groups == [1]
    monkeypatch.undo()
    torch.testing.assert_close(out, fused(x, s), rtol=1e-12, atol=1e-12)
    if not (upsample or downsample):  # per-sample conv2d with w * style * demod, written out
        style = fused.modulation(s)
        for n in range(2):
            w = fused.scale * fused.weight[0] * style[n].view(1, 3, 1, 1)
            if demodulate:
                w = w * torch.rsqrt(w.square().sum([1, 2, 3]) + 1e-8).view(5, 1, 1, 1)
            torch.testing.assert_close(out[n:n + 1], torch.nn.functional.conv2d(x[n:n + 1], w, padding=1),
                                       rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [x, s, *unfused.parameters()])
    ref = torch.autograd.grad((fused(x, s) * g).sum(), [x, s, *fused.parameters()])
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    xs, ss = x[:1, :, :6, :6].detach().requires_grad_(), s[:1].detach().requires_grad_()
    assert torch.autograd.gradgradcheck(lambda a, b: unfused(a, b), (xs, ss))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("upsample,downsample", [(False, False), (True, False), (False, True)])
def test_modulated_conv_keeps_channels_last(fused, upsample, downsample):
    # A channels_last generator stays channels_last through the layer, with the same values: the
    # fused grouped convolution had returned a contiguous tensor, so every later layer ran
    # contiguous (a trial's finding).
    torch.manual_seed(4)
    conv = ModulatedConv2d(8, 4, 3, 6, upsample=upsample, downsample=downsample, fused=fused).double()
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64)
    s = torch.randn(2, 6, dtype=torch.float64)
    xl = x.contiguous(memory_format=torch.channels_last)
    y, yl = conv(x, s), conv(xl, s)
    assert yl.is_contiguous(memory_format=torch.channels_last) and not yl.is_contiguous()
    assert y.is_contiguous()
    torch.testing.assert_close(yl, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("upsample,downsample", [(False, False), (True, False), (False, True)])
def test_modulated_conv_empty_batch(fused, upsample, downsample):
    # N = 0: the fused path's grouped convolution would take groups=0, which torch refuses
    # ("non-positive groups is not supported"); the layer gives the empty output, and its
    # parameters their (zero) gradients, as the unfused path does.
    conv = ModulatedConv2d(3, 4, 3, 5, upsample=upsample, downsample=downsample, fused=fused)
    x, s = torch.randn(0, 3, 8, 8, requires_grad=True), torch.randn(0, 5, requires_grad=True)
    y = conv(x, s)
    side = 16 if upsample else 4 if downsample else 8
    assert y.shape == (0, 4, side, side)
    grads = torch.autograd.grad(y.sum(), [x, s, conv.weight], allow_unused=True)
    assert grads[0].shape == x.shape and grads[1].shape == s.shape
    assert grads[2] is None or not grads[2].any()


# --- the layers' forwards name what they were given ------------------------------------------
# A trial's finding: ModulatedConv2d(3, 4, 3, 8)(x, style [2, 7]) raised torch's "mat1 and mat2
# shapes cannot be multiplied (2x7 and 8x3)", and a wrong channel count "shape '[2, 1, 3, 1, 1]' is
# invalid for input of size 10": neither named the argument. Every layer now says which of its
# arguments does not fit, what it expected and what it got.
_X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize("call,kind,match", [
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X, torch.randn(2, 7)), ValueError,
     r"^ModulatedConv2d: style must have shape \[N, style_dim\] = \[2, 8\] to match input; got \(2, 7\)$"),
    (lambda: ModulatedConv2d(5, 4, 3, 8)(_X, torch.randn(2, 8)), ValueError,
     r"^ModulatedConv2d: input must be 4-D \[N, in_channel, H, W\] with in_channel = 5; got shape \(2, 3, 8, 8\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8, fused=False)(_X, torch.randn(3, 8)), ValueError,
     r"^ModulatedConv2d: style must have shape \[N, style_dim\] = \[2, 8\] to match input; got \(3, 8\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X, torch.randn(8)), ValueError,
     r"^ModulatedConv2d: style must have shape \[N, style_dim\] = \[2, 8\] to match input; got \(8,\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X, torch.randn(2, 1, 8)), ValueError, r"^ModulatedConv2d: style must have shape"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X[0], torch.randn(2, 8)), ValueError,
     r"^ModulatedConv2d: input must be 4-D \[N, in_channel, H, W\] with in_channel = 3; got shape \(3, 8, 8\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8, upsample=True)(_X[:, :, :0], torch.randn(2, 8)), ValueError,
     r"^ModulatedConv2d: input must be 4-D \[N, in_channel, H, W\] with in_channel = 3 and H, W >= 1; "
     r"got shape \(2, 3, 0, 8\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8, downsample=True)(_X[:, :, :1], torch.randn(2, 8)), ValueError,
     r"^ModulatedConv2d: input must be 4-D .* and H, W >= 2; got shape \(2, 3, 1, 8\)$"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X, [0.0] * 8), TypeError, r"^ModulatedConv2d: style must be a torch.Tensor; got list"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X.numpy(), torch.randn(2, 8)), TypeError,
     r"^ModulatedConv2d: input must be a torch.Tensor; got ndarray"),
    (lambda: ModulatedConv2d(3, 4, 3, 8)(_X.long(), torch.randn(2, 8)), TypeError,
     r"^ModulatedConv2d: input must have dtype in"),
    (lambda: EqualLinear(8, 4)(torch.randn(2, 7)), ValueError,
     r"^EqualLinear: input must have shape \[\.\.\., in_dim\] with in_dim = 8 \(usually \[N, 8\]\); got shape \(2, 7\)$"),
    (lambda: EqualLinear(8, 4, activation="fused_lrelu")(torch.randn(8)), ValueError,
     r"^EqualLinear: input must be \[N, in_dim\] = \[N, 8\] with activation .*; got shape \(8,\)$"),
    (lambda: EqualLinear(8, 4, activation="fused_lrelu")(torch.randn(2, 3, 8)), ValueError,
     r"^EqualLinear: input must be \[N, in_dim\] = \[N, 8\] with activation .*; got shape \(2, 3, 8\)$"),
    (lambda: EqualLinear(8, 4)("x"), TypeError, r"^EqualLinear: input must be a torch.Tensor; got str"),
    (lambda: EqualConv2d(5, 4, 3)(_X), ValueError,
     r"^EqualConv2d: input must be \[N, in_channel, H, W\] \(or unbatched \[in_channel, H, W\]\) with in_channel = 5; "
     r"got shape \(2, 3, 8, 8\)$"),
    (lambda: EqualConv2d(3, 4, 3)(_X[0, 0]), ValueError, r"^EqualConv2d: input must be \[N, in_channel, H, W\]"),
    (lambda: EqualConv2d(3, 4, 3)(_X[:, :, :2]), ValueError,
     r"^EqualConv2d: input's H and W must be >= 1 and, padded by padding = 0 on each side, >= kernel_size = 3; "
     r"got shape \(2, 3, 2, 8\)$"),
    (lambda: EqualConv2d(3, 4, 3, padding=1)(_X[:, :, :0]), ValueError, r"^EqualConv2d: input's H and W must be >= 1"),
    (lambda: FusedLeakyReLU(4)(_X), ValueError,
     r"^FusedLeakyReLU: input must be \[N, channel, \.\.\.\] with channel = 4 \(its bias is added along dim 1\); "
     r"got shape \(2, 3, 8, 8\)$"),
    (lambda: FusedLeakyReLU(4)(torch.randn(4)), ValueError, r"^FusedLeakyReLU: input must be \[N, channel, \.\.\.\]"),
    (lambda: Blur([1, 3, 3, 1], (2, 1))(_X[0]), ValueError, r"^Blur: input must be 4-D \[N, C, H, W\]; got shape \(3, 8, 8\)$"),
    (lambda: Upsample([1, 3, 3, 1])(_X[:, :, :, :0]), ValueError,
     r"^Upsample: input must be 4-D \[N, C, H, W\] with H, W >= 1; got shape \(2, 3, 8, 0\)$"),
    (lambda: Downsample([1, 3, 3, 1])(_X[:, :, :1]), ValueError,
     r"^Downsample: input must be 4-D \[N, C, H, W\] with H, W >= 2; got shape \(2, 3, 1, 8\)$"),
    (lambda: Downsample([1, 3, 3, 1], factor=4)(_X[:, :, :3]), ValueError, r"^Downsample: .* with H, W >= 4"),
])
def test_rosinality_layers_name_what_does_not_fit(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


def test_rosinality_layers_take_what_they_took():
    # the checks refuse only what torch (or fused_leaky_relu) refused: the smallest sizes each
    # layer can take, unbatched EqualConv2d input, any leading dims of EqualLinear without
    # activation, any shape for FusedLeakyReLU without a bias, and the values are the same
    torch.manual_seed(5)
    s = torch.randn(2, 8)
    for kw, side, out in ((dict(), 1, 1), (dict(upsample=True), 1, 2), (dict(downsample=True), 2, 1)):
        for fused in (True, False):
            y = ModulatedConv2d(3, 4, 3, 8, fused=fused, **kw)(_X[:, :, :side, :side], s)
            assert y.shape == (2, 4, out, out)
    lin = EqualLinear(8, 4)
    v = torch.randn(5, 2, 8)
    torch.testing.assert_close(lin(v), torch.nn.functional.linear(v, lin.weight * lin.scale, lin.bias))
    assert lin(torch.randn(8)).shape == (4,)
    act = EqualLinear(8, 4, activation="fused_lrelu")
    assert act(torch.randn(2, 4, 8)).shape == (2, 4, 4)  # bias along dim 1, as rosinality's fused_leaky_relu
    assert EqualLinear(8, 4, bias=False, activation="fused_lrelu")(torch.randn(8)).shape == (4,)
    conv = EqualConv2d(3, 4, 3, padding=1)
    torch.testing.assert_close(conv(_X[0]), conv(_X)[0])
    assert EqualConv2d(3, 4, 3, padding=1)(_X[:, :, :1, :1]).shape == (2, 4, 1, 1)
    assert EqualConv2d(3, 4, 3)(_X[:, :, :3, :3]).shape == (2, 4, 1, 1)
    assert FusedLeakyReLU(4, bias=False)(torch.randn(3)).shape == (3,)
    assert FusedLeakyReLU(3)(torch.randn(2, 3)).shape == (2, 3)
    assert Downsample([1, 3, 3, 1])(_X[:, :, :2, :2]).shape == (2, 3, 1, 1)
    assert Upsample([1, 3, 3, 1])(_X[:, :, :1, :1]).shape == (2, 3, 2, 2)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("upsample,downsample", [(False, False), (True, False), (False, True)])
def test_rosinality_layers_compile_fullgraph(fused, upsample, downsample):
    # the forwards' checks compare shapes only: the layers trace whole under torch.compile, with
    # dynamic sizes, and a new batch and image size reuse the graph
    torch.manual_seed(6)
    conv = ModulatedConv2d(3, 4, 3, 8, upsample=upsample, downsample=downsample, fused=fused)
    lin, econv, act = EqualLinear(8, 8, activation="fused_lrelu"), EqualConv2d(4, 4, 3, padding=1), FusedLeakyReLU(4)
    blur, up, down = Blur([1, 3, 3, 1], (2, 1)), Upsample([1, 3, 3, 1]), Downsample([1, 3, 3, 1])

    def fn(x, z):
        y = act(econv(conv(x, lin(z))))
        return down(up(blur(y)))

    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="eager", fullgraph=True, dynamic=True)
    # sizes distinct from each other and from the layers' own (8, 4, 3): an equal one is duck-sized
    # with it (a style of length 8 and an image 8 high share one symbol) and recompiles anyway
    for k, (n, h, w) in enumerate(((2, 9, 7), (5, 13, 11))):
        x, z = torch.randn(n, 3, h, w), torch.randn(n, 8)
        with torch.compiler.set_stance("fail_on_recompile" if k else "default"):
            y = compiled(x, z)
        torch.testing.assert_close(y, fn(x, z))


def test_make_kernel_inside_a_compiled_forward():
    # rosinality's blocks build kernels in __init__, but a user's may build one in forward: the
    # zero-sum check must not break the graph (a new user's trial found fullgraph=True failing at
    # it), nor be dropped there (taps summing to 0 would give a kernel of NaN)
    torch.manual_seed(7)

    def fn(x, taps):
        return upfirdn2d(x, make_kernel(taps), up=2, down=1, pad=(2, 1))

    x = torch.randn(2, 3, 6, 5)
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True)
    taps = [1.0, 3.0, 3.0, 1.0]
    torch.testing.assert_close(compiled(x, taps), fn(x, taps))
    k = torch.tensor(taps)
    # rosinality's upfirdn2d_native: zero-stuff, pad, correlate with the flipped kernel
    padded = torch.nn.functional.pad(_zero_stuff(x, 2), (2, 1, 2, 1)).reshape(6, 1, 15, 13)
    ref = torch.nn.functional.conv2d(padded, (k[:, None] * k[None, :] / 64).flip(0, 1)[None, None])
    torch.testing.assert_close(fn(x, taps), ref.reshape(2, 3, 12, 10))
    with pytest.raises(RuntimeError, match="make_kernel: kernel taps must not sum to 0"):
        compiled(x, [1.0, -1.0])
    with pytest.raises(ValueError, match="make_kernel: kernel taps must not sum to 0"):
        fn(x, [1.0, -1.0])


def _zero_stuff(x, up):
    y = x.new_zeros(*x.shape[:2], x.shape[2] * up, x.shape[3] * up)
    y[:, :, ::up, ::up] = x
    return y


@pytest.mark.parametrize("resample", [{}, {"upsample": True}, {"downsample": True}])
def test_the_input_checks_add_no_tracer_warnings(monkeypatch, resample):
    # under torch.jit.trace a size is a traced tensor: the checks had made a traced ModulatedConv2d
    # print 14 TracerWarnings where it printed 2 (a review of the change that added them)
    import warnings

    from alae_fast.compat import rosinality as R

    def traced_warnings():
        m = R.ModulatedConv2d(4, 5, 3, 8, **resample)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.jit.trace(m, (torch.randn(2, 4, 8, 8), torch.randn(2, 8)), check_trace=False)
        return sum(issubclass(w.category, torch.jit.TracerWarning) for w in caught)

    with_checks = traced_warnings()
    monkeypatch.setattr(R, "_shapes_checked", lambda: False)
    assert with_checks == traced_warnings()


def test_layers_print_as_rosinalitys_do():
    # rosinality's model.py prints its layers this way; EqualConv2d had printed "EqualConv2d()"
    assert repr(EqualConv2d(3, 4, 3)) == "EqualConv2d(3, 4, 3, stride=1, padding=0)"
    assert repr(EqualConv2d(8, 16, 1, stride=2, padding=1, bias=False)) == "EqualConv2d(8, 16, 1, stride=2, padding=1)"
    assert repr(EqualLinear(8, 4)) == "EqualLinear(8, 4)"
    assert repr(ModulatedConv2d(3, 5, 3, 4, upsample=True)) == \
        "ModulatedConv2d(3, 5, 3, upsample=True, downsample=False)"
