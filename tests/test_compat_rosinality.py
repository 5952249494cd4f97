"""compat.rosinality: a small StyleGAN2 written against rosinality's API from compat imports
only runs forward, backward and R1 double backward on the kernels and matches the same
network on reference ops."""

import math

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
    torch.testing.assert_close(upfirdn2d(x, k, up=2, pad=(2, 1)), expected.float().double(), rtol=1e-6, atol=1e-6)
    assert Upsample([1, 3, 3, 1])(x).shape == (2, 3, 16, 16)
    assert Downsample([1, 3, 3, 1])(x).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="pad must be"):
        upfirdn2d(x, k, pad=(1, 1, 1, 1))
