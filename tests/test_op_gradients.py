"""No silently dropped gradient: every tensor argument of every op receives its gradient,
equal to the reference's, on the kernel path. upfirdn2d's filter gradient (csrc/autograd/
upfirdn2d.cpp) is checked in float64 with gradcheck and gradgradcheck."""

import pytest
import torch

from alae_fast import _lib
from alae_fast.ops import (adain, bias_act, conv2d_resample, downsample2d, filter2d, instance_norm_stats,
                           modulate_weight, modulated_conv2d, setup_filter, upfirdn2d, upsample2d)

pytestmark = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")

def _rand(*shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


CASES = [
    dict(),
    dict(padding=1),
    dict(up=2, padding=[2, 1, 1, 2]),
    dict(down=2, padding=[1, 2, 0, 1]),
    dict(up=[2, 1], down=[1, 3], padding=[0, 1, 2, -1], flip_filter=True, gain=1.5),
    dict(up=3, down=2, padding=[-1, 2, 3, 0], gain=0.5),
]
CASE_IDS = ["plain", "pad", "up", "down", "mixed", "updown"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("fshape", [(3, 4), (4,), (1, 3)], ids=["2d", "sep", "row"])
def test_upfirdn2d_filter_grad_matches_reference(case, fshape):
    x = _rand(2, 3, 7, 6, seed=0)
    f = _rand(*fshape, seed=1, dtype=torch.float32)
    g = None
    grads = {}
    for impl in ("auto", "ref"):
        xi = x.clone().requires_grad_(True)
        fi = f.clone().requires_grad_(True)
        y = upfirdn2d(xi, fi, impl=impl, **case)
        if g is None:
            g = _rand(*y.shape, seed=2)
        grads[impl] = torch.autograd.grad(y, (xi, fi), g)
    assert grads["auto"][1] is not None and grads["auto"][1].dtype == torch.float32
    torch.testing.assert_close(grads["auto"][0], grads["ref"][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads["auto"][1], grads["ref"][1], rtol=1e-5, atol=1e-5)


def test_upfirdn2d_filter_grad_smallest_case():
    # The reported case: padding=1, both x and f requiring grad, kernel path.
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    f = torch.randn(3, 3, requires_grad=True)
    upfirdn2d(x, f, padding=1).square().sum().backward()
    assert f.grad is not None and x.grad is not None
    f_ref = f.detach().clone().requires_grad_(True)
    upfirdn2d(x.detach(), f_ref, padding=1, impl="ref").square().sum().backward()
    torch.testing.assert_close(f.grad, f_ref.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_upfirdn2d_filter_grad_half_and_channels_last(dtype):
    x = _rand(2, 3, 8, 8, seed=3).to(dtype).to(memory_format=torch.channels_last).requires_grad_(True)
    f = _rand(4, seed=4, dtype=torch.float32).requires_grad_(True)
    y = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1])
    g = _rand(*y.shape, seed=5).to(dtype)
    (df,) = torch.autograd.grad(y, f, g)
    fr = f.detach().clone().requires_grad_(True)
    yr = upfirdn2d(x.detach().double(), fr.double(), up=2, padding=[2, 1, 2, 1], impl="ref")
    (dfr,) = torch.autograd.grad(yr, fr, g.double())
    torch.testing.assert_close(df, dfr, rtol=2e-2, atol=2e-2 * dfr.abs().max().item())


def _gradchecks(case, fshape, impl, fast):
    # Random float64 taps and gradcheck's own step: a float64 x gets float64 taps on the kernel
    # path too, so its finite differences see every perturbation of f.
    x = _rand(1, 2, 5, 4, seed=6).requires_grad_(True)
    f = _rand(*fshape, seed=7).requires_grad_(True)
    fn = lambda x, f: upfirdn2d(x, f, impl=impl, **case)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, f), fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, (x, f), fast_mode=fast)


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
@pytest.mark.parametrize("case,fshape", [(CASES[4], (3, 2)), (CASES[5], (3,))], ids=["mixed-2d", "updown-sep"])
def test_upfirdn2d_gradcheck_with_filter(case, fshape, fast):
    _gradchecks(case, fshape, "auto", fast=fast)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("fshape", [(3, 2), (3,)], ids=["2d", "sep"])
@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_upfirdn2d_gradcheck_with_filter_full(case, fshape, impl):
    _gradchecks(case, fshape, impl, fast=False)


def test_resampling_helpers_pass_the_filter_gradient():
    x = _rand(1, 2, 6, 6, seed=8)
    for fn in (lambda x, f, i: filter2d(x, f, impl=i), lambda x, f, i: upsample2d(x, f, impl=i),
               lambda x, f, i: downsample2d(x, f, impl=i),
               lambda x, f, i: conv2d_resample(x, _rand(3, 2, 3, 3, seed=9), f=f, up=2, padding=1),
               lambda x, f, i: conv2d_resample(x, _rand(3, 2, 3, 3, seed=9), f=f, down=2, padding=1)):
        out = {}
        for impl in ("auto", "ref"):
            f = setup_filter([1, 3, 3, 1]).double().requires_grad_(True)
            y = fn(x, f, impl)
            (out[impl],) = torch.autograd.grad(y, f, _rand(*y.shape, seed=10))
        torch.testing.assert_close(out["auto"], out["ref"], rtol=1e-5, atol=1e-6)


def _all_grads(fn, tensors, seed):
    ins = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*ins)
    outs = out if isinstance(out, tuple) else (out,)
    cots = [_rand(*o.shape, seed=seed + i, dtype=o.dtype) for i, o in enumerate(outs)]
    return torch.autograd.grad(outs, ins, cots, allow_unused=True)


def _same_grads(kernel_fn, ref_fn, tensors, names, seed=20):
    got, ref = _all_grads(kernel_fn, tensors, seed), _all_grads(ref_fn, tensors, seed)
    for name, a, b in zip(names, got, ref):
        assert b is not None, f"reference gives no gradient for {name}"
        assert a is not None, f"kernel path dropped the gradient of {name}"
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8, msg=lambda m: f"{name}: {m}")


def test_every_tensor_argument_gets_its_gradient():
    N, C, H, W = 2, 3, 5, 4
    x = _rand(N, C, H, W, seed=11)
    _same_grads(lambda x, b: bias_act(x, b, act="swish", clamp=3.0),
                lambda x, b: bias_act(x, b, act="swish", clamp=3.0, impl="ref"), [x, _rand(C, seed=12)], ["x", "b"])
    adain_args = [x, _rand(N, C, seed=13), _rand(N, C, seed=14), _rand(C, seed=15), _rand(N, 1, H, W, seed=16),
                  _rand(C, seed=17)]
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    _same_grads(lambda x, s, t, b, n, w: adain(x, s, t, bias=b, noise=n, noise_weight=w, act="elu"),
                lambda x, s, t, b, n, w: adain(x, s, t, bias=b, noise=n, noise_weight=w, act="elu", impl="ref"),
                adain_args, names)
    _same_grads(lambda x, b: instance_norm_stats(x, bias=b, act="lrelu"),
                lambda x, b: instance_norm_stats(x, bias=b, act="lrelu", impl="ref"), [x, _rand(C, seed=18)],
                ["x", "bias"])
    weight, styles = _rand(4, C, 3, 3, seed=19), _rand(N, C, seed=21)
    _same_grads(lambda w, s: modulate_weight(w, s), lambda w, s: modulate_weight(w, s, impl="ref"),
                [weight, styles], ["weight", "styles"])
    f = setup_filter([1, 3, 3, 1]).double()
    for fused in (True, False):
        for up, down in ((1, 1), (2, 1), (1, 2)):
            kw = dict(up=up, down=down, padding=1, fused_modconv=fused)
            noise = _rand(*modulated_conv2d(x, weight, styles, **kw).shape[2:], seed=22)  # [H', W']
            if up == down == 1:  # no resampling: the filter is not used
                _same_grads(lambda x, w, s, n: modulated_conv2d(x, w, s, noise=n, **kw),
                            lambda x, w, s, n: modulated_conv2d(x, w, s, noise=n, impl="ref", **kw),
                            [x, weight, styles, noise], ["x", "weight", "styles", "noise"])
                continue
            _same_grads(lambda x, w, s, n, f: modulated_conv2d(x, w, s, noise=n, resample_filter=f, **kw),
                        lambda x, w, s, n, f: modulated_conv2d(x, w, s, noise=n, resample_filter=f, impl="ref", **kw),
                        [x, weight, styles, noise, f], ["x", "weight", "styles", "noise", "resample_filter"])
