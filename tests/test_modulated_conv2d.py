"""modulated_conv2d and modulate_weight: both execution orders vs an independent per-sample
oracle, gradients to second order, float16 pre-scaling, the op contract, bad input, and
the ModulatedConv2d / ToRGB layers."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from alae_fast.nn import ModulatedConv2d, ToRGB, set_impl
from alae_fast.ops import (bias_act, conv2d_resample, modulate_weight, modulated_conv2d, modulated_conv2d_ref,
                           setup_filter, upsample2d)


def oracle(x, weight, styles, noise=None, up=1, down=1, padding=0, f=None, demodulate=True, flip_weight=True):
    """One plain convolution per sample with that sample's weight, in float64."""
    x, weight, styles = x.double(), weight.double(), styles.double()
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]
        if demodulate:
            w = w / torch.sqrt(w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if up == 1 and down == 1 and isinstance(padding, int):
            wk = w if flip_weight else w.flip([2, 3])
            outs.append(F.conv2d(x[n:n + 1], wk, padding=padding))
        else:
            outs.append(conv2d_resample(x[n:n + 1], w, f=f, up=up, down=down, padding=padding,
                                        flip_weight=flip_weight))
    y = torch.cat(outs)
    return y if noise is None else y + noise.double()


def tol(dtype):
    return {torch.float64: dict(rtol=1e-9, atol=1e-9), torch.float32: dict(rtol=1e-4, atol=1e-4),
            torch.bfloat16: dict(rtol=5e-2, atol=5e-2), torch.float16: dict(rtol=1e-2, atol=1e-2)}[dtype]


@st.composite
def cases(draw):
    k = draw(st.sampled_from([1, 3]))
    N, O = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    noise_kind = draw(st.sampled_from([None, "n1", "1o"]))
    noise_shape = {None: None, "n1": (N, 1, H, W), "1o": (1, O, H, W)}[noise_kind]
    return dict(N=N, I=draw(st.integers(1, 5)), O=O, k=k, H=H, W=W, noise_shape=noise_shape,
                demodulate=draw(st.booleans()), fused=draw(st.booleans()), flip=draw(st.booleans()),
                dtype=draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16])),
                cl=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def run_case(c, device):
    g = torch.Generator().manual_seed(c["seed"])
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    x = r(c["N"], c["I"], c["H"], c["W"]).to(c["dtype"])
    weight = r(c["O"], c["I"], c["k"], c["k"])
    styles = r(c["N"], c["I"]) + 1
    noise = None if c["noise_shape"] is None else r(*c["noise_shape"]).to(c["dtype"])
    expected = oracle(x, weight, styles, noise, padding=c["k"] // 2, demodulate=c["demodulate"],
                      flip_weight=c["flip"])
    wdt = torch.float64 if c["dtype"] == torch.float64 else torch.float32
    xd = x.to(device)
    if c["cl"]:
        xd = xd.to(memory_format=torch.channels_last)
    args = (xd, weight.to(device, wdt), styles.to(device, wdt), None if noise is None else noise.to(device))
    kw = dict(padding=c["k"] // 2, demodulate=c["demodulate"], flip_weight=c["flip"], fused_modconv=c["fused"])
    for fn in (modulated_conv2d, modulated_conv2d_ref):
        y = fn(*args, **kw)
        assert y.dtype == x.dtype and y.shape == expected.shape
        if c["cl"] and not xd.is_contiguous():  # the fused grouped conv, and a noise sum, returned NCHW
            assert y.is_contiguous(memory_format=torch.channels_last), (fn.__name__, y.stride())
        torch.testing.assert_close(y.double().cpu(), expected, **tol(c["dtype"]))


# a parameter, not the device fixture: hypothesis refuses function-scoped fixtures
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@settings(max_examples=50)
@given(c=cases())
def test_matches_oracle(c, device):
    run_case(c, device)


@pytest.mark.parametrize("up,down", [(2, 1), (1, 2)])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_resampling_paths(up, down, fused, k):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    weight = torch.randn(4, 3, k, k, dtype=torch.float64)
    styles = torch.randn(2, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1])
    kw = dict(up=up, down=down, padding=k // 2, resample_filter=f, flip_weight=up == 1)
    expected = oracle(x, weight, styles, f=f, **{k_: v for k_, v in kw.items() if k_ != "resample_filter"})
    y = modulated_conv2d(x, weight, styles, fused_modconv=fused, **kw)
    assert y.shape[-1] == 6 * up // down
    torch.testing.assert_close(y, expected)
    noise = torch.randn(2, 1, *y.shape[2:], dtype=torch.float64)
    torch.testing.assert_close(modulated_conv2d(x, weight, styles, noise=noise, fused_modconv=fused, **kw),
                               expected + noise)


def test_modulate_weight_matches_oracle_and_reference():
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        weight = torch.randn(5, 7, 3, 3, dtype=torch.float64)
        styles = torch.randn(3, 7, dtype=torch.float64)
        w = weight[None] * styles[:, None, :, None, None]
        d = 1 / torch.sqrt(w.square().sum(dim=(2, 3, 4)) + 1e-8)
        got_w, got_d = modulate_weight(weight.to(dtype), styles.to(dtype))
        assert got_w.shape == (3, 5, 7, 3, 3) and got_w.dtype == dtype
        t = dict(rtol=1e-5, atol=1e-6) if dtype != torch.bfloat16 else dict(rtol=2e-2, atol=2e-2)
        w_exp = (w * d[:, :, None, None, None]).to(dtype).double()
        torch.testing.assert_close(got_w.double(), w_exp, **t)
        torch.testing.assert_close(got_d.double(), d.to(dtype).double(), **t)
        ref_w, ref_d = modulate_weight(weight.to(dtype), styles.to(dtype), impl="ref")
        torch.testing.assert_close(got_w.double(), ref_w.double(), **t)


def test_modulate_weight_batch_beyond_one_cuda_grid_slab(device):
    # More samples than a CUDA grid's y dimension holds (65535): launched in slabs of samples.
    N = 65535 + 5
    weight = torch.randn(2, 3, 1, 1, dtype=torch.float64)
    styles = torch.randn(N, 3, dtype=torch.float64)
    w = weight[None] * styles[:, None, :, None, None]
    d = 1 / torch.sqrt(w.square().sum(dim=(2, 3, 4)) + 1e-8)
    got_w, got_d = modulate_weight(weight.to(device), styles.to(device))
    torch.testing.assert_close(got_w.cpu(), w * d[:, :, None, None, None])
    torch.testing.assert_close(got_d.cpu(), d)


@pytest.mark.parametrize("K", [1, 3])
def test_modulate_weight_gradcheck_and_gradgradcheck(K):
    weight = torch.randn(4, 3, K, K, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(modulate_weight, (weight, styles))
    assert torch.autograd.gradgradcheck(modulate_weight, (weight, styles))
    only_w = lambda w, s: modulate_weight(w, s)[0]
    only_d = lambda w, s: modulate_weight(w, s)[1]
    assert torch.autograd.gradgradcheck(only_w, (weight, styles))
    assert torch.autograd.gradgradcheck(only_d, (weight, styles))


def test_modulate_weight_third_order():
    weight = torch.randn(3, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)

    def second(w, s):
        out, d = modulate_weight(w, s)
        (gw,) = torch.autograd.grad((out.sin().sum() + d.square().sum()), w, create_graph=True)
        return torch.autograd.grad(gw.square().sum(), (w, s), create_graph=True)

    assert torch.autograd.gradcheck(second, (weight, styles))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_gradcheck_and_gradgradcheck_every_input(fused, demodulate, device):
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, device=device, requires_grad=True)
    weight = torch.randn(2, 3, 3, 3, dtype=torch.float64, device=device, requires_grad=True)
    styles = torch.randn(2, 3, dtype=torch.float64, device=device, requires_grad=True)
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64, device=device, requires_grad=True)
    f = lambda x, w, s, n: modulated_conv2d(x, w, s, noise=n, padding=1, demodulate=demodulate,
                                             fused_modconv=fused)
    assert torch.autograd.gradcheck(f, (x, weight, styles, noise))
    assert torch.autograd.gradgradcheck(f, (x, weight, styles, noise))


@pytest.mark.parametrize("fused", [True, False])
def test_path_length_double_backward_matches_reference(fused):
    # StyleGAN2's path-length penalty differentiates the output with respect to the styles
    # (through w), then back-propagates that gradient's norm to the weights.
    x0 = torch.randn(3, 8, 6, 6)
    w0 = torch.randn(5, 8, 3, 3)
    s0 = torch.randn(3, 8) + 1
    probe = torch.randn(3, 5, 6, 6)
    results = []
    for fn in (modulated_conv2d, modulated_conv2d_ref):
        x, weight, styles = (t.clone().requires_grad_() for t in (x0, w0, s0))
        y = fn(x, weight, styles, padding=1, fused_modconv=fused)
        (gs,) = torch.autograd.grad((y * probe).sum(), styles, create_graph=True)
        results.append((y, gs, *torch.autograd.grad(gs.square().sum(), (x, weight, styles))))
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)


def test_float16_prescaling_prevents_overflow():
    # Products near 1e3 * 1e3 overflow float16 (max 65504); the pre-scaling keeps them in range
    # and the demodulated result matches float32.
    x = torch.randn(2, 4, 5, 5)
    weight = torch.randn(3, 4, 3, 3) * 1e3
    styles = (torch.rand(2, 4) + 0.5) * 1e3
    expected = modulated_conv2d(x, weight, styles, padding=1)
    for fused in (True, False):
        y = modulated_conv2d(x.half(), weight, styles, padding=1, fused_modconv=fused)
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y.float(), expected, rtol=2e-2, atol=2e-2)


def test_fused_and_unfused_agree_and_ref_dispatch():
    x, weight, styles = torch.randn(3, 6, 7, 5), torch.randn(4, 6, 3, 3), torch.randn(3, 6)
    noise = torch.randn(3, 1, 7, 5)
    a = modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=True)
    b = modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=False)
    c = modulated_conv2d(x, weight, styles, noise=noise, padding=1, impl="ref")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    weight = torch.randn(4, 3, 3, 3, dtype=dtype, requires_grad=True)
    styles = torch.randn(2, 3, dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.alae_fast.modulate_weight.default, (weight, styles, 1e-8))
    w, d = torch.ops.alae_fast.modulate_weight(weight, styles, 1e-8)
    gw = torch.randn_like(w, requires_grad=True)
    gd = torch.randn_like(d, requires_grad=True)
    dd = d.detach().requires_grad_()
    torch.library.opcheck(torch.ops.alae_fast.modulate_weight_grad.default, (gw, gd, weight, styles, dd))
    torch.library.opcheck(torch.ops.alae_fast.modulate_weight_grad.default, (gw, None, weight, styles, dd))
    torch.library.opcheck(torch.ops.alae_fast.modulate_weight_grad.default, (None, gd, weight, styles, dd))


@pytest.mark.parametrize("fused", [True, False])
def test_torch_compile_fullgraph_forward_backward(fused):
    def loss(x, w, s):
        return modulated_conv2d(x, w, s, padding=1, fused_modconv=fused).square().sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    ins = [torch.randn(2, 4, 5, 5, requires_grad=True), torch.randn(3, 4, 3, 3, requires_grad=True),
           torch.randn(2, 4, requires_grad=True)]
    for a, e in zip(torch.autograd.grad(compiled(*ins), ins), torch.autograd.grad(loss(*ins), ins)):
        torch.testing.assert_close(a, e)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=torch.randn(2, 3, 5)), ValueError, "x must be 4-D"),
    (dict(weight=torch.randn(4, 5, 3, 3)), ValueError, "weight must have I = x.shape"),
    (dict(weight=torch.randn(4, 3, 3)), ValueError, "weight must be 4-D"),
    (dict(styles=torch.randn(3, 3)), ValueError, "styles must have shape"),
    (dict(styles=torch.randn(2, 4)), ValueError, "styles must have shape"),
    (dict(noise=torch.randn(2, 2, 5, 5)), ValueError, "noise must broadcast"),
    (dict(noise=torch.randn(2, 1, 4, 5)), ValueError, "noise must broadcast"),
    (dict(noise=torch.randn(2, 5, 5)), ValueError, "noise must broadcast"),
    (dict(up=0), ValueError, "up must be an int >= 1"),
    (dict(down=1.5), TypeError, "down must be an int >= 1"),
    (dict(styles=torch.randn(2, 3, dtype=torch.float64)), TypeError, "styles must have weight's dtype"),
    (dict(demodulate=1), TypeError, "demodulate must be a bool"),
    (dict(impl="cuda"), ValueError, "impl must be"),
    # named as this op's arguments, not as conv2d_resample's f and padding
    (dict(up=2, resample_filter=torch.randn(2, 2, 2)), ValueError, "modulated_conv2d: resample_filter must be 1-D"),
    (dict(padding=[1, 2, 3]), ValueError, "modulated_conv2d: padding must be"),
])
def test_bad_arguments(kwargs, exc, match):
    args = dict(x=torch.randn(2, 3, 5, 5), weight=torch.randn(4, 3, 3, 3), styles=torch.randn(2, 3), padding=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        modulated_conv2d(**args)


def test_modulate_weight_bad_arguments():
    with pytest.raises(ValueError, match="styles must have shape"):
        modulate_weight(torch.randn(4, 3, 3, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        modulate_weight(torch.randn(4, 3, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="eps must be"):
        modulate_weight(torch.randn(4, 3, 3, 3), torch.randn(2, 3), eps=-1.0)
    with pytest.raises(ValueError, match="styles must have shape"):
        torch.ops.alae_fast.modulate_weight(torch.randn(4, 3, 3, 3), torch.randn(2, 5), 1e-8)


# --- layers -------------------------------------------------------------------------------

@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv2d_layer(up, down, fused):
    torch.manual_seed(0)
    layer = ModulatedConv2d(6, 5, 3, w_dim=8, up=up, down=down, fused_modconv=fused)
    x, w = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
    y = layer(x, w)
    assert y.shape == (2, 5, 8 * up // down, 8 * up // down)
    # Demodulated: each output channel has about unit variance for unit-variance input, except
    # that the [1,3,3,1] blur before a downsampling passes only ~0.31 of white noise's std.
    low = 0.3 if down == 1 else 0.1
    assert low < y.std().item() < 3
    ref = set_impl(layer, "ref")(x, w)
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


def test_torgb_layer():
    layer = ToRGB(6, w_dim=8, clamp=256.0)
    x, w = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
    skip = torch.randn(2, 3, 4, 4)
    y = layer(x, w, skip=skip)
    assert y.shape == (2, 3, 8, 8)
    styles = layer.affine(w) * layer.weight_gain
    expected = oracle(x, layer.weight.detach(), styles.detach(), demodulate=False)
    from alae_fast.ops import upsample2d
    expected = expected + layer.bias.detach().double()[None, :, None, None] + upsample2d(
        skip, layer.resample_filter).double()
    torch.testing.assert_close(y.double(), expected, rtol=1e-4, atol=1e-4)
    assert layer(x, w, skip=torch.randn(2, 3, 8, 8)).shape == (2, 3, 8, 8)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_float16_demodulation_with_all_zero_rows_is_finite(fused, impl):
    # An all-zero styles row (a sample) or weight row (an output channel) has max-abs 0; the
    # float16 pre-normalisation must not divide by it (0/0 = NaN where the answer is finite).
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 4, generator=g, dtype=torch.float64)
    styles[1] = 0
    weight[2] = 0
    noise = torch.randn(6, 6, generator=g, dtype=torch.float64)
    exact = modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=fused, impl=impl)
    assert (exact[1] == noise).all() and (exact[:, 2] == noise).all()
    y32 = modulated_conv2d(x.float(), weight.float(), styles.float(), noise=noise.float(), padding=1,
                           fused_modconv=fused, impl=impl)
    y16 = modulated_conv2d(x.half(), weight.float(), styles.float(), noise=noise.half(), padding=1,
                           fused_modconv=fused, impl=impl)
    assert torch.isfinite(y16).all()
    torch.testing.assert_close(y32.double(), exact, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y16.double(), exact, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y16[1].double(), noise.half().double().expand(5, 6, 6))
    # Rows that are not all zero are scaled exactly as before: one tiny nonzero style gives
    # the same float16 answer as scaling by its own max-abs.
    s2 = styles.clone()
    s2[1, 0] = 1e-3
    y16b = modulated_conv2d(x.half(), weight.float(), s2.float(), padding=1, fused_modconv=fused, impl=impl)
    exact_b = modulated_conv2d(x, weight, s2, padding=1, fused_modconv=fused, impl=impl)
    torch.testing.assert_close(y16b.double(), exact_b, rtol=2e-2, atol=2e-2)


def test_noise_broadcasts_as_nvlabs_adds_it():
    g = torch.Generator().manual_seed(6)
    x, w, s = (torch.randn(*sh, generator=g, dtype=torch.float64) for sh in ((2, 3, 5, 5), (4, 3, 3, 3), (2, 3)))
    base = modulated_conv2d(x, w, s, padding=1)
    for shape in ((5, 5), (1, 5), (2, 1, 5, 5), (2, 4, 5, 5), (1, 4, 1, 1), (5,)):
        n = torch.randn(*shape, generator=g, dtype=torch.float64)
        for fused in (True, False):
            torch.testing.assert_close(modulated_conv2d(x, w, s, noise=n, padding=1, fused_modconv=fused), base + n)
    for bad in ((4, 5), (3, 1, 5, 5), (1, 1, 1, 5, 5), (2, 2, 5, 5)):
        with pytest.raises(ValueError, match="noise must broadcast"):
            modulated_conv2d(x, w, s, noise=torch.zeros(bad, dtype=torch.float64), padding=1)


@pytest.mark.parametrize("fused_modconv", [True, False])
@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_empty_batch(fused_modconv, impl):
    # N = 0: the fused order's grouped conv would need groups = 0; both orders give the empty
    # output, and weight gets its (zero) gradient.
    x = torch.randn(0, 4, 8, 8)
    weight = torch.randn(3, 4, 3, 3, requires_grad=True)
    styles = torch.randn(0, 4, requires_grad=True)
    for fn in ((lambda *a, **k: modulated_conv2d(*a, impl=impl, **k)), modulated_conv2d_ref):
        y = fn(x, weight, styles, padding=1, up=2, resample_filter=setup_filter([1, 3, 3, 1]),
               fused_modconv=fused_modconv)
        assert y.shape == (0, 3, 16, 16)
        gw, gs = torch.autograd.grad(y.sum(), (weight, styles))
        assert gw.shape == weight.shape and not gw.any() and gs.shape == (0, 4)


@pytest.mark.parametrize("fused_modconv", [True, False])
@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("x_shape, w_shape, match", [
    ((2, 0, 8, 8), (3, 0, 3, 3), r"x must have at least one input channel"),   # torch: a RuntimeError about a view
    ((2, 4, 8, 8), (0, 4, 3, 3), r"weight must have at least one output channel"),  # torch: one about groups
])
def test_zero_channels_are_named(fused_modconv, impl, x_shape, w_shape, match):
    x, weight = torch.randn(x_shape), torch.randn(w_shape)
    styles = torch.randn(x_shape[0], x_shape[1])
    for fn in ((lambda *a, **k: modulated_conv2d(*a, impl=impl, **k)), modulated_conv2d_ref):
        with pytest.raises(ValueError, match=match):
            fn(x, weight, styles, padding=1, fused_modconv=fused_modconv)


# --- the layers under autocast and with half inputs ------------------------------------------

def _layer_reference(layer, x, w, skip=None):
    """The layer's function in float64 from its parameters, by the per-sample ``oracle``, with
    float64 leaves for its parameters (returned in order) so that the gradients compare."""
    params = [p.detach().double().requires_grad_() for p in (layer.weight, layer.affine.weight, layer.affine.bias)]
    weight, a_weight, a_bias = params
    styles = w.detach().double() @ (a_weight * layer.affine.weight_gain).t() + a_bias
    x = x.detach().double().requires_grad_()
    if isinstance(layer, ToRGB):
        params.append(layer.bias.detach().double().requires_grad_())
        y = oracle(x, weight, styles * layer.weight_gain, padding=layer.kernel_size // 2, demodulate=False)
        y = y + params[-1][None, :, None, None]
        if skip is not None:
            skip = skip.detach().double().requires_grad_()
            up = skip.shape[-1] != y.shape[-1]
            y = y + (upsample2d(skip, layer.resample_filter.double()) if up else skip)
        return y, x, params, skip
    y = oracle(x, weight * layer.weight_gain, styles, up=layer.up, down=layer.down,
               padding=layer.kernel_size // 2, f=layer.resample_filter, demodulate=layer.demodulate,
               flip_weight=layer.up == 1)
    return y, x, params, None


def _rel_err(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


# float32 x under autocast (cast to bfloat16 there), and explicit half x and w.
HALF_MODES = [("autocast", torch.bfloat16), ("bfloat16", torch.bfloat16), ("float16", torch.float16)]
HALF_BOUND = {torch.bfloat16: 3e-2, torch.float16: 5e-3}  # relative L2 error, forward and gradients


def _run_half(layer, x, w, mode, skip=None):
    if mode == "autocast":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return layer(x, w) if skip is None else layer(x, w, skip)
    dt = dict(HALF_MODES)[mode]
    return layer(x.to(dt), w.to(dt)) if skip is None else layer(x.to(dt), w.to(dt), skip.to(dt))


@pytest.mark.parametrize("mode, dtype", HALF_MODES)
@pytest.mark.parametrize("k, up, down", [(3, 1, 1), (1, 1, 1), (3, 2, 1), (3, 1, 2), (2, 1, 1)])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_layer_half_and_autocast(mode, dtype, k, up, down, fused, demodulate):
    # A trial's finding: the affine gave half styles for the float32 weight, which the op
    # refuses. Modulation is float32 (StyleGAN2-ADA), the output in the convolution's dtype.
    torch.manual_seed(k * 100 + up * 10 + down)
    layer = ModulatedConv2d(6, 5, k, 8, up=up, down=down, fused_modconv=fused, demodulate=demodulate)
    x, w = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
    if mode != "autocast":  # the reference sees the input as rounded
        x, w = x.to(dtype).float(), w.to(dtype).float()
    x.requires_grad_()
    y = _run_half(layer, x, w, mode)
    assert y.dtype == dtype
    ref, x64, params, _ = _layer_reference(layer, x, w)
    assert y.shape == ref.shape
    assert _rel_err(y, ref) < HALF_BOUND[dtype]
    g = torch.randn(ref.shape, dtype=torch.float64)
    (y.double() * g).sum().backward()
    grads64 = torch.autograd.grad((ref * g).sum(), [x64] + params)
    got = [x.grad, layer.weight.grad, layer.affine.weight.grad, layer.affine.bias.grad]
    for name, a, b in zip(("x", "weight", "affine.weight", "affine.bias"), got, grads64):
        assert a is not None and a.dtype == torch.float32, name
        assert _rel_err(a, b) < HALF_BOUND[dtype], name


@pytest.mark.parametrize("mode, dtype", HALF_MODES)
@pytest.mark.parametrize("skip_size", [None, 4, 8])
@pytest.mark.parametrize("k", [1, 3])
def test_torgb_half_and_autocast(mode, dtype, skip_size, k):
    torch.manual_seed(skip_size or 0)
    layer = ToRGB(6, 8, kernel_size=k)
    with torch.no_grad():
        layer.bias.normal_()
    x, w = torch.randn(2, 6, 8, 8), torch.randn(2, 8)
    skip = None if skip_size is None else torch.randn(2, 3, skip_size, skip_size)
    if mode != "autocast":
        x, w = x.to(dtype).float(), w.to(dtype).float()
        skip = None if skip is None else skip.to(dtype).float()
    x.requires_grad_()
    if skip is not None:
        skip.requires_grad_()
    y = _run_half(layer, x, w, mode, skip)
    assert y.dtype == dtype and y.shape == (2, 3, 8, 8)
    ref, x64, params, skip64 = _layer_reference(layer, x, w, skip)
    assert _rel_err(y, ref) < HALF_BOUND[dtype]
    g = torch.randn(ref.shape, dtype=torch.float64)
    (y.double() * g).sum().backward()
    leaves = [x64] + params + ([] if skip is None else [skip64])
    grads64 = torch.autograd.grad((ref * g).sum(), leaves)
    got = [x.grad, layer.weight.grad, layer.affine.weight.grad, layer.affine.bias.grad, layer.bias.grad]
    names = ["x", "weight", "affine.weight", "affine.bias", "bias"]
    if skip is not None:
        got.append(skip.grad)
        names.append("skip")
    for name, a, b in zip(names, got, grads64):
        assert a is not None, name
        assert _rel_err(a, b) < HALF_BOUND[dtype], name


@pytest.mark.parametrize("layer_fn", [lambda: ModulatedConv2d(4, 5, 3, 8), lambda: ModulatedConv2d(4, 5, 3, 8, up=2),
                                      lambda: ModulatedConv2d(4, 5, 3, 8, fused_modconv=False), lambda: ToRGB(4, 8)])
def test_layers_float32_path_is_the_op_with_float32_parameters(layer_fn):
    # The float32 path is the op on the parameters as they are, bit for bit (the README's
    # training figures were made with it); the casts for half inputs do not touch it.
    torch.manual_seed(3)
    layer = layer_fn()
    x, w, skip = torch.randn(2, 4, 8, 8), torch.randn(2, 8), torch.randn(2, 3, 4, 4)
    if isinstance(layer, ToRGB):
        y = modulated_conv2d(x, layer.weight, layer.affine(w) * layer.weight_gain, demodulate=False)
        expected = bias_act(y, layer.bias, act="linear") + upsample2d(skip, layer.resample_filter)
        assert torch.equal(layer(x, w, skip), expected)
    else:
        expected = modulated_conv2d(x, layer.weight * layer.weight_gain, layer.affine(w), up=layer.up, padding=1,
                                    resample_filter=layer.resample_filter, flip_weight=layer.up == 1,
                                    fused_modconv=layer.fused_modconv)
        assert torch.equal(layer(x, w), expected)


def test_layers_float64_input_modulates_in_float64():
    # A float64 x with float32 parameters is computed in float64, as EqualizedConv2d casts its
    # parameters to x's dtype (styles of w's float64 used to be refused for the float32 weight).
    torch.manual_seed(4)
    layer = ModulatedConv2d(4, 5, 3, 8)
    x, w = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    ref = _layer_reference(layer, x, w)[0]
    for ww in (w, w.float()):
        y = layer(x, ww)
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, ref, rtol=1e-5 if ww is w else 1e-4, atol=1e-6 if ww is w else 1e-4)


def test_noise_under_autocast_keeps_the_output_dtype():
    layer = ModulatedConv2d(4, 5, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(torch.randn(2, 4, 8, 8), torch.randn(2, 8), noise=torch.randn(2, 1, 8, 8))
    assert y.dtype == torch.bfloat16


@pytest.mark.parametrize("layer", [ModulatedConv2d, ToRGB])
def test_layers_name_a_non_tensor_x(layer):
    m = layer(4, 5, 3, 8) if layer is ModulatedConv2d else layer(4, 8)
    with pytest.raises(TypeError, match=rf"^{layer.__name__}: x must be a torch.Tensor; got list$"):
        m([[0.0]], torch.randn(2, 8))


# --- output shapes -------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3)])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv2d_layer_output_shape(k, up, down, fused):
    # The docstring's H' = (H * up + 1 - k % 2) // down: padding k // 2 on each side adds one
    # row for an even kernel.
    layer = ModulatedConv2d(3, 5, k, 8, up=up, down=down, fused_modconv=fused)
    for H, W in ((9, 7), (8, 6)):
        y = layer(torch.randn(2, 3, H, W), torch.randn(2, 8))
        assert y.shape == (2, 5, (H * up + 1 - k % 2) // down, (W * up + 1 - k % 2) // down)


def test_modulated_conv2d_even_kernel_shape_from_the_trial():
    assert ModulatedConv2d(4, 5, 2, 8)(torch.randn(2, 4, 9, 7), torch.randn(2, 8)).shape == (2, 5, 10, 8)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_torgb_output_shape(k):
    H = 9 + 1 - k % 2
    y = ToRGB(4, 8, kernel_size=k)(torch.randn(2, 4, 9, 9), torch.randn(2, 8))
    assert y.shape == (2, 3, H, H)


# --- ToRGB's skip --------------------------------------------------------------------------

_SKIP_8 = (r"\[N, out, H'/2, W'/2\] = \[2, 3, 4, 4\] or \[N, out, H', W'\] = \[2, 3, 8, 8\] "
           r"for the output of shape \(2, 3, 8, 8\)")


@pytest.mark.parametrize("x_size, k, skip_shape, match", [
    # the trial's: one channel, not three; batch 1, not 2 (both had been broadcast silently)
    ((8, 8), 1, (2, 1, 4, 4), rf"^ToRGB: skip must have shape {_SKIP_8}; got \(2, 1, 4, 4\)$"),
    ((8, 8), 1, (1, 3, 8, 8), rf"^ToRGB: skip must have shape {_SKIP_8}; got \(1, 3, 8, 8\)$"),
    ((8, 8), 1, (2, 3, 8), rf"^ToRGB: skip must have shape {_SKIP_8}; got \(2, 3, 8\)$"),
    ((8, 8), 1, (2, 3, 4, 8), rf"^ToRGB: skip must have shape {_SKIP_8}; got \(2, 3, 4, 8\)$"),
    ((8, 8), 1, (2, 3, 16, 16), rf"^ToRGB: skip must have shape {_SKIP_8}; got \(2, 3, 16, 16\)$"),
    # the trial's raw torch RuntimeError: 5 upsamples to 10, 4 to 8; an odd output has no half
    ((9, 9), 1, (2, 3, 5, 5), r"^ToRGB: skip must have shape \[N, out, H', W'\] = \[2, 3, 9, 9\] \(an odd H' or "
                              r"W' has no half size\) for the output of shape \(2, 3, 9, 9\); got \(2, 3, 5, 5\)$"),
    ((9, 9), 1, (2, 3, 4, 4), r"^ToRGB: skip must have shape \[N, out, H', W'\] = \[2, 3, 9, 9\] "),
    ((8, 9), 1, (2, 3, 4, 4), r"^ToRGB: skip must have shape \[N, out, H', W'\] = \[2, 3, 8, 9\] "),
    # an even kernel adds a row: 9 -> 10, whose half is 5
    ((9, 9), 2, (2, 3, 9, 9), r"^ToRGB: skip must have shape \[N, out, H'/2, W'/2\] = \[2, 3, 5, 5\] or "
                              r"\[N, out, H', W'\] = \[2, 3, 10, 10\] "),
])
def test_torgb_refuses_a_skip_of_another_shape(x_size, k, skip_shape, match):
    layer = ToRGB(4, 8, kernel_size=k)
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(2, 4, *x_size), torch.randn(2, 8), skip=torch.randn(skip_shape))


@pytest.mark.parametrize("skip, match", [
    ([0.0], r"^ToRGB: skip must be a torch.Tensor; got list$"),
    (torch.zeros(2, 3, 4, 4, dtype=torch.long), r"^ToRGB: skip must have dtype in"),
])
def test_torgb_refuses_a_skip_of_another_type(skip, match):
    with pytest.raises(TypeError, match=match):
        ToRGB(4, 8)(torch.randn(2, 4, 8, 8), torch.randn(2, 8), skip=skip)


@pytest.mark.parametrize("x_size, k, skip_size", [((8, 8), 1, (4, 4)), ((8, 8), 1, (8, 8)), ((9, 9), 1, (9, 9)),
                                                  ((8, 6), 1, (4, 3)), ((9, 9), 2, (5, 5)), ((9, 9), 2, (10, 10))])
def test_torgb_takes_the_skip_sizes_it_can_add(x_size, k, skip_size):
    layer = ToRGB(4, 8, kernel_size=k)
    x, w, skip = torch.randn(2, 4, *x_size), torch.randn(2, 8), torch.randn(2, 3, *skip_size)
    y = layer(x, w, skip=skip)
    base = layer(x, w)
    added = skip if skip.shape == base.shape else upsample2d(skip, layer.resample_filter)
    torch.testing.assert_close(y, base + added)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torgb_skip_check_compiles_whole(dynamic):
    # The check compares sizes only: torch.compile traces forward and backward in one graph,
    # and with dynamic sizes another batch and image size reuse it.
    torch.manual_seed(6)
    layer = ToRGB(4, 8, clamp=4.0)

    def loss(x, w, skip):
        return layer(x, w, skip=skip).square().sum()

    torch._dynamo.reset()
    compiled = torch.compile(loss, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for k, (n, h) in enumerate(((2, 10), (5, 14))):
        x, w = torch.randn(n, 4, h, h, requires_grad=True), torch.randn(n, 8)
        for skip in (torch.randn(n, 3, h // 2, h // 2), torch.randn(n, 3, h, h)):
            with torch.compiler.set_stance("fail_on_recompile" if dynamic and k else "default"):
                got = compiled(x, w, skip)
            (g,) = torch.autograd.grad(got, x)
            want = loss(x, w, skip)
            (g_want,) = torch.autograd.grad(want, x)
            torch.testing.assert_close(got, want)
            torch.testing.assert_close(g, g_want)
    # Where the graph may break, the error is the eager one.
    with pytest.raises(ValueError, match=r"^ToRGB: skip must have shape"):
        torch.compile(loss, backend="aot_eager")(x, w, torch.randn(n, 1, h // 2, h // 2))


def test_torgb_and_modulated_conv2d_trace_without_warnings_of_their_own():
    # Under torch.jit.trace a size is a traced tensor; the layers compare none (the ops' own
    # warnings are theirs), and the traced graph computes what the layer does.
    import warnings

    torch.manual_seed(7)
    x, w, skip = torch.randn(2, 4, 8, 8), torch.randn(2, 8), torch.randn(2, 3, 4, 4)
    for layer, args in ((ToRGB(4, 8), (x, w, skip)), (ModulatedConv2d(4, 5, 3, 8), (x, w))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            traced = torch.jit.trace(layer, args)
        ours = [str(c.message) for c in caught
                if issubclass(c.category, torch.jit.TracerWarning) and c.filename.endswith("nn/style.py")]
        assert ours == []
        torch.testing.assert_close(traced(*args), layer(*args))
