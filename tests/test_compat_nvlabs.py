"""compat.nvlabs: NVlabs signatures, defaults and padding conventions, checked against direct
float64 computations of the documented semantics (not against the wrappers' own code path)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alae_fast.compat import nvlabs


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _depthwise(x, f2d):
    # correlation of every channel with the 2-D filter f2d (float64)
    C = x.shape[1]
    return F.conv2d(x, f2d.to(x.dtype).expand(C, 1, *f2d.shape), groups=C)


def _zero_insert(x, up):
    N, C, H, W = x.shape
    z = x.new_zeros(N, C, H * up, W * up)
    z[:, :, ::up, ::up] = x
    return z


def test_bias_act_defaults_and_impl_names():
    x, b = _rand(2, 4, 5, 5), _rand(4, seed=1)
    z = x + b.view(1, 4, 1, 1)
    # lrelu: alpha 0.2 and gain sqrt(2) by default
    expected = torch.where(z >= 0, z, 0.2 * z) * np.sqrt(2)
    for impl in ("cuda", "ref"):
        torch.testing.assert_close(nvlabs.bias_act(x, b, act="lrelu", impl=impl), expected)
    torch.testing.assert_close(nvlabs.bias_act(x, b, act="lrelu", clamp=0.5), expected.clamp(-0.5, 0.5))
    torch.testing.assert_close(nvlabs.bias_act(x), x)  # act='linear', no bias
    # dim: the bias runs along another axis
    torch.testing.assert_close(nvlabs.bias_act(x, _rand(5, seed=2), dim=3), x + _rand(5, seed=2))
    with pytest.raises(ValueError, match="^bias_act: impl must be"):
        nvlabs.bias_act(x, impl="cpp")
    # every shim's refusal names its function, as the op's own argument errors do
    for name, call in (("upfirdn2d", lambda: nvlabs.upfirdn2d(x, None, impl="cpp")),
                       ("filter2d", lambda: nvlabs.filter2d(x, None, impl="cpp")),
                       ("upsample2d", lambda: nvlabs.upsample2d(x, None, impl="cpp")),
                       ("downsample2d", lambda: nvlabs.downsample2d(x, None, impl="cpp"))):
        with pytest.raises(ValueError, match=f"^{name}: impl must be 'cuda' or 'ref'"):
            call()


def test_setup_filter_and_resampling_paddings():
    f = nvlabs.setup_filter([1, 3, 3, 1])
    k = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64)
    f2 = torch.outer(k, k) / 64
    torch.testing.assert_close(f.double(), f2)
    x = _rand(2, 3, 7, 6)
    # filter2d keeps the size: pad fw//2 before, (fw-1)//2 after
    torch.testing.assert_close(nvlabs.filter2d(x, f), _depthwise(F.pad(x, [2, 1, 2, 1]), f2.flip(0, 1)))
    # upsample2d: zero-insert, pad (fw+up-1)//2 / (fw-up)//2, filter with gain up^2
    up = _depthwise(F.pad(_zero_insert(x, 2), [2, 1, 2, 1]), f2.flip(0, 1) * 4)
    y = nvlabs.upsample2d(x, f)
    assert y.shape == (2, 3, 14, 12)
    torch.testing.assert_close(y, up)
    # downsample2d: pad (fw-down+1)//2 / (fw-down)//2, filter, keep every 2nd sample
    xd = _rand(2, 3, 8, 6, seed=3)
    dn = _depthwise(F.pad(xd, [1, 1, 1, 1]), f2.flip(0, 1))[:, :, ::2, ::2]
    torch.testing.assert_close(nvlabs.downsample2d(xd, f), dn)
    # the generic op with explicit [x0, x1, y0, y1] padding and impl='ref'
    torch.testing.assert_close(nvlabs.upfirdn2d(x, f, padding=[1, 2, 0, 3], impl="ref"),
                               _depthwise(F.pad(x, [1, 2, 0, 3]), f2.flip(0, 1)))


def test_conv2d_resample_matches_its_definition():
    f = nvlabs.setup_filter([1, 3, 3, 1])
    x, w = _rand(2, 4, 6, 6), _rand(5, 4, 3, 3, seed=4)
    # up 2, padding 1: upsample2d (with the padding's extra) then the 3x3 convolution
    y = nvlabs.conv2d_resample(x, w, f=f, up=2, padding=1)
    k = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64)
    f2 = torch.outer(k, k) / 64
    ref = F.conv2d(_depthwise(F.pad(_zero_insert(x, 2), [3, 2, 3, 2]), f2.flip(0, 1) * 4), w)
    assert y.shape == ref.shape == (2, 5, 12, 12)
    torch.testing.assert_close(y, ref)
    # down 2: blur (pad 1 + 1 more per side for the 3x3 kernel's padding) then strided conv
    y = nvlabs.conv2d_resample(x, w, f=f, down=2, padding=1)
    ref = F.conv2d(_depthwise(F.pad(x, [2, 2, 2, 2]), f2.flip(0, 1)), w, stride=2)
    torch.testing.assert_close(y, ref)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_vs_per_sample_convolution(fused, demodulate):
    x, w, s = _rand(3, 4, 7, 7), _rand(5, 4, 3, 3, seed=5), _rand(3, 4, seed=6)
    noise = _rand(3, 1, 7, 7, seed=7)
    y = nvlabs.modulated_conv2d(x, w, s, noise=noise, padding=1, demodulate=demodulate, fused_modconv=fused)
    ref = []
    for n in range(3):
        wn = w * s[n].view(1, 4, 1, 1)
        if demodulate:
            wn = wn / torch.sqrt(wn.square().sum((1, 2, 3), keepdim=True) + 1e-8)
        ref.append(F.conv2d(x[n:n + 1], wn, padding=1))
    torch.testing.assert_close(y, torch.cat(ref) + noise)


def test_module_shaped_namespace():
    ops = nvlabs.torch_utils_ops
    x = _rand(1, 2, 4, 4)
    torch.testing.assert_close(ops.bias_act.bias_act(x, act="relu"), x.clamp_min(0) * np.sqrt(2))
    f = ops.upfirdn2d.setup_filter([1, 2, 1])
    assert ops.upfirdn2d.upsample2d(x, f).shape == (1, 2, 8, 8)
    assert ops.conv2d_resample.conv2d_resample(x, _rand(3, 2, 1, 1), f=f, down=2).shape == (1, 3, 2, 2)
