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


# --- what a port from NVlabs' code passes besides the plain calls ------------------------------

@pytest.mark.parametrize("impl", ["cuda", "ref"])
@pytest.mark.parametrize("f1", [[1.0, 3.0, 3.0, 1.0], [1.0, 2.0, 1.0]])
def test_negative_gain_with_a_separable_filter(impl, f1):
    # the reference once scaled each of its two passes by sqrt(gain): complex for a negative gain
    x = _rand(2, 3, 5, 6)
    f = torch.tensor(f1, dtype=torch.float64) / sum(f1)
    f2 = f[:, None] * f[None, :]
    for fn, args in ((nvlabs.upfirdn2d, dict(padding=2, gain=-2.0)), (nvlabs.upsample2d, dict(gain=-1.0)),
                     (nvlabs.downsample2d, dict(gain=-0.5)), (nvlabs.filter2d, dict(gain=-3.0))):
        torch.testing.assert_close(fn(x, f, impl=impl, **args), fn(x, f2, impl="ref", **args))
    y = nvlabs.upfirdn2d(x, f, padding=1, gain=-2.0, impl=impl)
    torch.testing.assert_close(y, -2.0 * nvlabs.upfirdn2d(x, f, padding=1, impl="ref"))


def test_flags_take_numpy_bools_and_refuse_the_rest():
    x, w, s = _rand(2, 3, 8, 8), _rand(4, 3, 3, 3, seed=1), _rand(2, 3, seed=2)
    f = nvlabs.setup_filter([1, 3, 3, 1]).double()
    torch.testing.assert_close(nvlabs.upfirdn2d(x, f, padding=2, flip_filter=np.bool_(True)),
                               nvlabs.upfirdn2d(x, f, padding=2, flip_filter=True), rtol=0, atol=0)
    torch.testing.assert_close(nvlabs.conv2d_resample(x, w, f, up=2, flip_weight=np.bool_(False)),
                               nvlabs.conv2d_resample(x, w, f, up=2, flip_weight=False), rtol=0, atol=0)
    torch.testing.assert_close(nvlabs.modulated_conv2d(x, w, s, padding=1, demodulate=np.bool_(False)),
                               nvlabs.modulated_conv2d(x, w, s, padding=1, demodulate=False), rtol=0, atol=0)
    torch.testing.assert_close(nvlabs.filtered_lrelu(x, f, f, up=2, down=2, padding=1, flip_filter=np.bool_(True)),
                               nvlabs.filtered_lrelu(x, f, f, up=2, down=2, padding=1, flip_filter=True),
                               rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"^upfirdn2d: flip_filter must be a bool \(True or False\); got 1 of type int$"):
        nvlabs.upfirdn2d(x, f, flip_filter=1)
    with pytest.raises(TypeError, match=r"^conv2d_resample: flip_weight must be a bool \(True or False\); got 'yes'"):
        nvlabs.conv2d_resample(x, w, flip_weight="yes")
    with pytest.raises(TypeError, match=r"^conv2d_resample: flip_filter must be a bool .* of type numpy\.int64$"):
        nvlabs.conv2d_resample(x, w, f, up=2, flip_filter=np.int64(0))
    with pytest.raises(TypeError, match=r"^filtered_lrelu: flip_filter must be a bool"):
        nvlabs.filtered_lrelu(x, f, f, flip_filter=None)
    with pytest.raises(TypeError, match=r"^modulated_conv2d: fused_modconv must be a bool"):
        nvlabs.modulated_conv2d(x, w, s, fused_modconv=0)


@pytest.mark.parametrize("op", ["filter2d", "upsample2d", "downsample2d"])
def test_resampling_wrappers_name_themselves(op):
    fn, f = getattr(nvlabs, op), nvlabs.setup_filter([1, 3, 3, 1])
    with pytest.raises(TypeError, match=rf"^{op}: x must have dtype in"):
        fn(torch.ones(1, 1, 8, 8, dtype=torch.int32), f)
    with pytest.raises(ValueError, match=rf"^{op}: x must be 4-D \[N, C, H, W\]; got 3-D"):
        fn(torch.ones(1, 8, 8), f)
    with pytest.raises(ValueError, match=rf"^{op}: gain must be a finite real number; got nan"):
        fn(torch.ones(1, 1, 8, 8), f, gain=float("nan"))
    with pytest.raises(ValueError, match=rf"^{op}: padding leaves no output: .*\(the padding given plus the "
                                         r"filter's centring\)$"):
        fn(torch.ones(1, 1, 4, 4), f, padding=-4)


def test_scalar_tensors_are_taken_as_nvlabs_takes_them():
    """NVlabs' ops read gain, alpha, clamp and slope with float() (upfirdn2d folds gain into the
    filter), so a 0-d tensor works there; ours refused it. It is now read as its float, in every
    op and shim; a 0-d tensor that requires grad is refused saying its gradient would be dropped."""
    from alae_fast.compat import rosinality
    from alae_fast.compat.nvlabs_filtered_lrelu import filtered_lrelu

    x, b = _rand(2, 4, 8, 8), _rand(4, seed=1)
    f = nvlabs.setup_filter([1, 3, 3, 1]).double()
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    # the documented semantics: a [1,3,3,1] blur of x (a true convolution) scaled by the gain 2
    want = 2.0 * _depthwise(F.pad(x, (1, 2, 1, 2)), f.flip([0, 1]))  # setup_filter makes 4 taps 2-D
    torch.testing.assert_close(nvlabs.upfirdn2d(x, f, padding=[1, 2, 1, 2], gain=t(2.0)), want)
    lrelu = lambda v, a, g, c: (F.leaky_relu(v, a) * g).clamp(-c, c)  # noqa: E731
    torch.testing.assert_close(nvlabs.bias_act(x, b, act="lrelu", alpha=t(0.1), gain=t(1.5), clamp=t(0.5)),
                               lrelu(x + b.view(1, -1, 1, 1), 0.1, 1.5, 0.5))
    torch.testing.assert_close(rosinality.fused_leaky_relu(x, b, t(0.3), torch.tensor(2)),
                               F.leaky_relu(x + b.view(1, -1, 1, 1), 0.3) * 2)
    torch.testing.assert_close(filtered_lrelu(x, f, f, up=2, down=2, padding=3, gain=t(1.2), slope=t(0.1)),
                               filtered_lrelu(x, f, f, up=2, down=2, padding=3, gain=1.2, slope=0.1))
    needs_grad = torch.tensor(2.0, requires_grad=True)
    said = r"tensor\(2\.0, requires_grad=True\), a tensor that requires grad: it is taken as a number, so its gradient"
    for call in (lambda: nvlabs.upfirdn2d(x, f, gain=needs_grad), lambda: nvlabs.bias_act(x, gain=needs_grad),
                 lambda: filtered_lrelu(x, f, f, up=2, down=2, padding=3, gain=needs_grad),
                 lambda: rosinality.fused_leaky_relu(x, b, 0.2, needs_grad)):
        with pytest.raises((TypeError, ValueError), match=said):
            call()
    for bad, said in ((torch.tensor([2.0, 3.0]), r"a tensor of shape \(2,\)"), (torch.tensor(True), r"tensor\(True\)")):
        with pytest.raises(TypeError, match=f"^upfirdn2d: gain must be a finite real number; got {said}$"):
            nvlabs.upfirdn2d(x, f, gain=bad)
    # a learnable gain (an nn.Parameter, whose repr spans two lines) is said on one line
    with pytest.raises(TypeError, match=r"^upfirdn2d: gain must be a finite real number; got tensor\(2\.0, "
                                         r"requires_grad=True\), a tensor that requires grad: [^\n]*$"):
        nvlabs.upfirdn2d(x, f, gain=torch.nn.Parameter(torch.tensor(2.0)))
    # setup_filter folds the gain it checked (a float), not the tensor given
    torch.testing.assert_close(nvlabs.setup_filter([1, 3, 3, 1], gain=t(4.0)), nvlabs.setup_filter([1, 3, 3, 1]) * 4)
    # the layers take their scalars as the ops do, and refuse what is not one
    from alae_fast.nn import AdaIN, FilteredLeakyReLU, FusedLeakyReLU

    assert FusedLeakyReLU(4, negative_slope=t(0.1), scale=t(2.0)).scale == 2.0
    with pytest.raises(TypeError, match=r"^FusedLeakyReLU: negative_slope must be a real number; got bool$"):
        FusedLeakyReLU(4, negative_slope=True)
    with pytest.raises(TypeError, match=r"^AdaIN: eps must be a finite number >= 0; got '1e-3' of type str$"):
        AdaIN(4, 8, eps="1e-3")
    with pytest.raises(TypeError, match=r"^FilteredLeakyReLU: gain must be a real number; got a tensor of shape \(1,\)$"):
        FilteredLeakyReLU(4, None, None, gain=torch.tensor([2.0]))
