"""NaN and inf propagate through every fused op exactly as through its reference.

Hiding a NaN hides a diverging run. For every op x activation x dtype, with NaN, +inf and
-inf planted in the inputs (seeded fuzz), the kernel path and the plain-PyTorch reference
must give the same NaN / +inf / -inf pattern, forward and backward (and second order for the
activation ops), with finite values close. The references are compositions of PyTorch's own
kernels, so they set the rule (e.g. relu(NaN) = NaN, relu'(NaN) = 1, clamp'(NaN) = 0).
"""

import math

import pytest
import torch

from alae_fast import _lib
from alae_fast.ops import (ACTIVATIONS, adain, bias_act, instance_norm_stats, modulate_weight, modulated_conv2d,
                           setup_filter, upfirdn2d)

pytestmark = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
ACTS = list(ACTIVATIONS)
SPECIALS = (math.nan, math.inf, -math.inf)


def assert_same_specials(got, ref, what):
    """Same NaN, +inf and -inf positions; finite values close (loosely: the pattern is the point)."""
    assert got.shape == ref.shape, what
    tol = {torch.float16: 2e-2, torch.bfloat16: 8e-2}.get(ref.dtype, 1e-3)
    got, ref = got.double(), ref.double()
    for name, pred in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        g, r = pred(got), pred(ref)
        if not torch.equal(g, r):
            i = (g != r).nonzero()[0].tolist()
            raise AssertionError(f"{what}: {name} pattern differs, first at {i}: kernel {got[tuple(i)].item()}, "
                                 f"reference {ref[tuple(i)].item()}")
    fin = torch.isfinite(got)
    torch.testing.assert_close(got[fin], ref[fin], rtol=tol, atol=tol, msg=lambda m: f"{what}: {m}")


def _plant(t, gen, count=3):
    """t with NaN, +inf and -inf at random positions (one of each per `count` round)."""
    t = t.clone()
    flat = t.view(-1)
    for _ in range(count):
        for v in SPECIALS:
            flat[torch.randint(flat.numel(), (1,), generator=gen)] = v
    return t


def _randn(*shape, dtype, gen):
    return torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype)


def _grads(out, inputs, gen):
    """Gradients of <out, cotangent> (a finite random cotangent) for every input needing one."""
    outs = out if isinstance(out, tuple) else (out,)
    cots = [_randn(*o.shape, dtype=o.dtype, gen=gen) for o in outs]
    need = [t for t in inputs if t is not None and t.requires_grad]
    return torch.autograd.grad(outs, need, cots, allow_unused=False)


def _compare(fn, inputs, seed, what, second_order=False, ref_fix=None):
    """Runs fn(impl, *inputs) on the kernel and the reference; compares outputs and gradients.
    ref_fix(results) adjusts the reference's results where PyTorch itself is inconsistent."""
    results = {}
    for impl in ("auto", "ref"):
        gen = torch.Generator().manual_seed(seed + 1)
        ins = [None if t is None else t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
        out = fn(impl, *ins)
        grads = _grads(out, ins, gen)
        res = list(out if isinstance(out, tuple) else (out,)) + list(grads)
        if second_order:
            need = [t for t in ins if t is not None and t.requires_grad]
            outs = fn(impl, *ins)
            outs = outs if isinstance(outs, tuple) else (outs,)
            g1 = torch.autograd.grad(outs, need, [_randn(*o.shape, dtype=o.dtype, gen=gen) for o in outs],
                                     create_graph=True)
            h = [_randn(*g.shape, dtype=g.dtype, gen=gen) for g in g1]
            live = [(g, v) for g, v in zip(g1, h) if g.requires_grad]  # constant for linear
            if live:
                res += list(torch.autograd.grad([g for g, _ in live], need, [v for _, v in live],
                                                allow_unused=True, materialize_grads=True))
            else:
                res += [torch.zeros_like(t) for t in need]
        results[impl] = res
    if ref_fix is not None:
        ref_fix(results["ref"])
    for i, (a, b) in enumerate(zip(results["auto"], results["ref"])):
        assert_same_specials(a, b, f"{what} result {i}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_nan_inf(act, dtype, clamp):
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        x = _plant(_randn(2, 5, 3, 4, dtype=dtype, gen=gen), gen)
        b = _randn(5, dtype=dtype, gen=gen)
        if seed == 2:
            b[1] = math.nan  # a NaN bias poisons its whole channel
        x.requires_grad_(True)
        b.requires_grad_(True)
        second = dtype == torch.float64
        _compare(lambda impl, x, b: bias_act(x, b, act=act, clamp=clamp, impl=impl), [x, b], seed,
                 f"bias_act {act} {dtype} clamp={clamp} seed {seed}", second_order=second,
                 ref_fix=_elu_nan_rule(x, b) if act in ("elu", "selu") else None)


def _elu_nan_rule(x, b):
    """PyTorch's elu backward at z = NaN is 1 in its scalar loop and NaN in its vector loop
    (which one runs depends on the tensor's size and the CPU); the kernels take NaN, the
    answer that hides nothing. This sets the reference's gradients to NaN there."""
    nan_z = torch.isnan(x.double() + b.double().view(1, -1, 1, 1))
    nan_c = nan_z.any(dim=(0, 2, 3))

    def fix(results):
        for r in results[1:]:
            if r.shape == x.shape:
                r[nan_z] = math.nan
            elif r.shape == b.shape:
                r[nan_c] = math.nan
    return fix


def test_bias_act_relu_nan_smallest_case():
    x = torch.tensor([math.nan, 1.0, -1.0])
    y = bias_act(x, act="relu", gain=1.0)
    assert torch.isnan(y[0]) and y[1] == 1 and y[2] == 0
    assert torch.isnan(torch.relu(x)[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_adain_nan_inf(act, dtype):
    for seed in range(2):
        gen = torch.Generator().manual_seed(seed)
        N, C, H, W = 2, 4, 4, 4
        x = _randn(N, C, H, W, dtype=dtype, gen=gen)
        x[0, 1, 2, 3] = math.nan
        x[1, 2, 0, 0] = math.inf
        x[1, 3, 1, 2] = -math.inf
        x[0, 0, 3, 3] = -math.inf
        args = [x, _randn(N, C, dtype=dtype, gen=gen), _randn(N, C, dtype=dtype, gen=gen),
                _randn(C, dtype=dtype, gen=gen), _randn(N, 1, H, W, dtype=dtype, gen=gen),
                _randn(C, dtype=dtype, gen=gen)]
        for t in args:
            t.requires_grad_(True)

        def fn(impl, x, s, t, b, nz, nw):
            return adain(x, s, t, bias=b, noise=nz, noise_weight=nw, act=act, impl=impl)
        _compare(fn, args, seed, f"adain {act} {dtype} seed {seed}", second_order=dtype == torch.float64)


def test_adain_relu_one_nan_pixel_poisons_its_plane():
    x = torch.randn(1, 2, 4, 4)
    x[0, 0, 1, 1] = math.nan
    y = adain(x, None, None, act="relu")
    assert torch.isnan(y[0, 0]).all() and torch.isfinite(y[0, 1]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_instance_norm_stats_nan_inf(act, dtype):
    gen = torch.Generator().manual_seed(0)
    x = _randn(2, 3, 4, 5, dtype=dtype, gen=gen)
    x[0, 1, 2, 3] = math.nan
    x[1, 0, 0, 0] = math.inf
    x[1, 2, 3, 1] = -math.inf
    b = _randn(3, dtype=dtype, gen=gen)
    for t in (x, b):
        t.requires_grad_(True)
    bias_used = act != "linear"  # linear without bias is the plain instance-norm kernel
    _compare(lambda impl, x, b: instance_norm_stats(x, impl=impl, bias=b if bias_used else None, act=act),
             [x, b if bias_used else None], 0, f"instance_norm_stats {act} {dtype}",
             second_order=dtype == torch.float64)
    y, mean, std = instance_norm_stats(x.detach(), act=act, bias=b.detach() if bias_used else None)
    if act in ("linear", "relu", "lrelu", "elu", "selu", "softplus", "swish"):
        assert torch.isnan(mean[0, 1]) and torch.isnan(y[0, 1]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", [dict(), dict(up=2, padding=[2, 1, 1, 2]), dict(down=2, padding=1),
                                  dict(up=[1, 2], down=[2, 1], padding=[0, 1, 2, 0], flip_filter=True)],
                         ids=["plain", "up", "down", "mixed"])
@pytest.mark.parametrize("separable", [False, True])
def test_upfirdn2d_nan_inf(dtype, case, separable):
    gen = torch.Generator().manual_seed(1)
    x = _plant(_randn(2, 3, 7, 6, dtype=dtype, gen=gen), gen, count=1)
    taps = torch.tensor([1.0, 0.0, 3.0, 2.0]) if separable else torch.tensor([[1.0, 0.0, 2.0], [0.5, 3.0, 1.0]])
    f = taps.requires_grad_(True)
    x.requires_grad_(True)
    _compare(lambda impl, x, f: upfirdn2d(x, f, impl=impl, **case), [x, f], 1,
             f"upfirdn2d {case} {dtype} separable={separable}", ref_fix=_exact_filter_grad(x, f, case, seed=1))


def _exact_filter_grad(x, f, case, seed):
    """The filter gradient from the definition, reading only samples that reach a kept output.

    upfirdn2d_ref filters at every position and then keeps every down-th one, so a sample that
    only dropped outputs read still multiplies its zero cotangent into the filter gradient
    (0 * NaN = NaN in taps that never touch it). The kernel reads only what the output reads.
    Here: one strided 2-D convolution of the zero-inserted, padded x in float64."""
    def fix(results):
        up, down = case.get("up", 1), case.get("down", 1)
        ux, uy = (up, up) if isinstance(up, int) else up
        dx, dy = (down, down) if isinstance(down, int) else down
        z = upfirdn2d(x.detach().double(), None, up=[ux, uy], padding=case.get("padding", 0), impl="ref")
        fd = f.detach().double().requires_grad_(True)
        k = torch.outer(fd, fd) if fd.ndim == 1 else fd
        if not case.get("flip_filter", False):
            k = k.flip([0, 1])
        N, C = z.shape[:2]
        y = torch.nn.functional.conv2d(z.reshape(N * C, 1, *z.shape[2:]), k[None, None] * case.get("gain", 1),
                                       stride=(dy, dx))
        gen = torch.Generator().manual_seed(seed + 1)
        g = _randn(*results[0].shape, dtype=results[0].dtype, gen=gen).double()
        (df,) = torch.autograd.grad(y.reshape(g.shape), fd, g)
        results[2] = df.float()
    return fix


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_modulated_conv2d_nan_inf(dtype, fused, up, down):
    gen = torch.Generator().manual_seed(2)
    x = _randn(2, 3, 6, 6, dtype=dtype, gen=gen)
    x[0, 1, 2, 2] = math.nan
    weight = _randn(4, 3, 3, 3, dtype=dtype, gen=gen)
    weight[2, 0, 1, 1] = math.inf
    styles = _randn(2, 3, dtype=dtype, gen=gen)
    styles[1, 2] = math.nan
    f = setup_filter([1, 3, 3, 1]) if up > 1 or down > 1 else None
    args = [x, weight, styles]
    for t in args:
        t.requires_grad_(True)
    _compare(lambda impl, x, w, s: modulated_conv2d(x, w, s, up=up, down=down, padding=1, resample_filter=f,
                                                    fused_modconv=fused, impl=impl),
             args, 2, f"modulated_conv2d {dtype} fused={fused} up={up} down={down}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_modulate_weight_nan_inf(dtype):
    gen = torch.Generator().manual_seed(3)
    weight = _plant(_randn(5, 4, 3, 3, dtype=dtype, gen=gen), gen, count=1)
    styles = _randn(3, 4, dtype=dtype, gen=gen)
    styles[2, 1] = math.nan
    for t in (weight, styles):
        t.requires_grad_(True)
    _compare(lambda impl, w, s: modulate_weight(w, s, impl=impl), [weight, styles], 3, f"modulate_weight {dtype}",
             second_order=dtype == torch.float64)
