"""instance_norm_stats: (y, mean, std) vs an independent numpy oracle, each output
differentiable to second order, the encoder's R1 pattern, the op contract, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alae_fast.ops import instance_norm_stats, instance_norm_stats_ref
from alae_fast.testing import assert_close_to_oracle

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def oracle(x: torch.Tensor, eps=1e-8):
    """(y, mean, std) in float64 numpy, written from the definition."""
    v = x.detach().double().cpu().numpy()
    mean = v.mean(axis=(2, 3))
    std = np.sqrt(((v - mean[:, :, None, None]) ** 2).mean(axis=(2, 3)) + eps)
    return (v - mean[:, :, None, None]) / std[:, :, None, None], mean, std


def make_layout(x, layout):
    if layout == "channels_last":
        return x.to(memory_format=torch.channels_last)
    if layout == "strided":
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x


@st.composite
def cases(draw):
    big_c = draw(st.booleans())
    return dict(
        shape=(draw(st.integers(1, 3)),
               draw(st.sampled_from([257, 96])) if big_c else draw(st.integers(1, 6)),
               draw(st.integers(1, 3 if big_c else 7)), draw(st.integers(1, 3 if big_c else 7))),
        dtype=draw(st.sampled_from(DTYPES)),
        layout=draw(st.sampled_from(["contiguous", "channels_last", "strided"])),
        eps=draw(st.sampled_from([1e-8, 1e-3])),
        offset=draw(st.sampled_from([0.0, 3.0])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def run_case(c, device):
    g = torch.Generator().manual_seed(c["seed"])
    x = (torch.randn(c["shape"], generator=g, dtype=torch.float64) * 2 + c["offset"]).to(c["dtype"])
    ey, em, es = oracle(x, c["eps"])
    xl = make_layout(x.to(device), c["layout"])
    y, mean, std = instance_norm_stats(xl, eps=c["eps"])
    assert y.shape == x.shape and mean.shape == std.shape == x.shape[:2]
    assert y.dtype == mean.dtype == std.dtype == x.dtype
    if c["layout"] == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    scale = 4.0 if c["dtype"] in (torch.float16, torch.bfloat16) else 2.0
    assert_close_to_oracle(y, ey, scale=scale)
    assert_close_to_oracle(mean, em, scale=scale)
    assert_close_to_oracle(std, es, scale=scale)
    for got, exp in zip(instance_norm_stats_ref(xl, eps=c["eps"]), (ey, em, es)):
        assert_close_to_oracle(got, exp, scale=scale)


# a parameter, not the device fixture: hypothesis refuses function-scoped fixtures
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@settings(max_examples=60)
@given(c=cases())
def test_matches_oracle(c, device):
    run_case(c, device)


# Which outputs the loss uses: every subset, so each cotangent path (and the None ones) runs.
USES = ["y", "mean", "std", "mean+std", "y+mean+std"]


def loss_of(outputs, uses, weights):
    y, mean, std = outputs
    parts = {"y": (y * weights[0]).sin().sum(), "mean": (mean * weights[1]).exp().sum(),
             "std": (std * weights[2]).square().sum()}
    return sum(parts[u] for u in uses.split("+"))


@pytest.mark.parametrize("uses", USES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(uses, layout, device):
    x = make_layout(torch.randn(2, 3, 4, 3, dtype=torch.float64, device=device), layout).requires_grad_()
    ws = [torch.randn(s, dtype=torch.float64, device=device) for s in ((2, 3, 4, 3), (2, 3), (2, 3))]
    f = lambda x: loss_of(instance_norm_stats(x), uses, ws)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
    # And with the three outputs as the function's outputs (their cotangents all random).
    assert torch.autograd.gradgradcheck(instance_norm_stats, (x,))


def test_batch_beyond_one_cuda_grid_slab(device):
    # More samples than a CUDA grid's z dimension holds (65535): the channels_last kernels run
    # in slabs of samples, and every slab must see its own samples. Forward and backward,
    # checked against float64 statistics computed directly.
    N = 65535 + 37
    x = (torch.randn(N, 2, 2, 3, device=device) * 2 + 0.5).to(memory_format=torch.channels_last)
    x.requires_grad_()
    y, mean, std = instance_norm_stats(x, eps=1e-5)
    xd = x.detach().double()
    m = xd.mean(dim=(2, 3))
    s = (xd.var(dim=(2, 3), unbiased=False) + 1e-5).sqrt()
    torch.testing.assert_close(mean.double(), m, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std.double(), s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y.double(), (xd - m[..., None, None]) / s[..., None, None], rtol=1e-4, atol=1e-4)
    (gx,) = torch.autograd.grad(mean.sum() + std.sum(), x)
    # d(mean)/dx = 1/L; d(std)/dx = (x - mean) / (L * std)
    L = 6
    expected = 1 / L + (xd - m[..., None, None]) / (L * s[..., None, None])
    torch.testing.assert_close(gx.double(), expected, rtol=1e-4, atol=1e-5)


def test_encoder_r1_matches_reference():
    # ALAE's encoder: statistics -> linear -> w, a discriminator on w, and R1 on the image.
    x0 = torch.randn(3, 6, 8, 8)
    lin = torch.nn.Linear(12, 5)
    results = []
    for impl in ("auto", "ref"):
        x = x0.clone().requires_grad_()
        y, mean, std = instance_norm_stats(x * 1.5 + 0.3, impl=impl)
        y2, m2, s2 = instance_norm_stats(torch.nn.functional.leaky_relu(y, 0.2), impl=impl)
        w = lin(torch.cat([mean, std], 1)) + lin(torch.cat([m2, s2], 1))
        score = (w.sin() * torch.arange(5.0)).sum()
        (gx,) = torch.autograd.grad(score, x, create_graph=True)
        r1 = gx.square().sum()
        results.append((gx, *torch.autograd.grad(r1, (x, lin.weight, lin.bias))))
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-5)


def test_constant_plane_gives_finite_outputs_and_grads():
    for shape in [(2, 3, 4, 4), (2, 3, 1, 1)]:
        x = torch.randn(shape)
        x[:, 2] = -1.25
        x.requires_grad_()
        y, mean, std = instance_norm_stats(x)
        assert torch.isfinite(y).all() and torch.isfinite(std).all()
        assert torch.equal(y[:, 2], torch.zeros_like(y[:, 2]))
        torch.testing.assert_close(mean[:, 2], torch.full((2,), -1.25))
        (gx,) = torch.autograd.grad(y.square().sum() + std.sum() + mean.sum(), x, create_graph=True)
        assert torch.isfinite(gx).all()
        (ggx,) = torch.autograd.grad(gx.square().sum(), x)
        assert torch.isfinite(ggx).all()


@pytest.mark.parametrize("cl", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(cl, dtype):
    x = torch.randn(2, 3, 4, 5, dtype=dtype)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_()
    torch.library.opcheck(torch.ops.alae_fast.instance_norm_stats.default, (x, 1e-8))
    y, mean, std = torch.ops.alae_fast.instance_norm_stats(x, 1e-8)
    g = [torch.randn_like(t, requires_grad=True) for t in (y, mean, std)]
    m, s = mean.detach().requires_grad_(), std.detach().requires_grad_()
    torch.library.opcheck(torch.ops.alae_fast.instance_norm_stats_grad.default, (g[0], g[1], g[2], x, m, s))
    torch.library.opcheck(torch.ops.alae_fast.instance_norm_stats_grad.default, (None, g[1], None, x, m, s))


def test_half_statistics_are_float32_inside():
    # The op keeps float32 statistics for half inputs; the public function casts them.
    x = torch.randn(2, 3, 4, 4).to(torch.bfloat16)
    _, mean, std = torch.ops.alae_fast.instance_norm_stats(x, 1e-8)
    assert mean.dtype == std.dtype == torch.float32
    assert instance_norm_stats(x)[1].dtype == torch.bfloat16


def test_torch_compile_fullgraph_forward_backward():
    def f(x):
        y, mean, std = instance_norm_stats(x)
        return y.square().sum() + (mean * std).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last).requires_grad_()
    torch.testing.assert_close(torch.autograd.grad(compiled(x), x)[0], torch.autograd.grad(f(x), x)[0])


@pytest.mark.parametrize("x,eps,match", [
    (torch.randn(2, 3, 4), 1e-8, "x must be 4-D"),
    (torch.randn(2, 3, 4, 4), -1.0, "eps must be"),
    (torch.randn(2, 3, 4, 4), float("inf"), "eps must be"),
])
def test_bad_arguments(x, eps, match):
    with pytest.raises(ValueError, match=match):
        instance_norm_stats(x, eps=eps)
    with pytest.raises(ValueError, match=match):
        torch.ops.alae_fast.instance_norm_stats(x, eps)


def test_bad_dtype():
    with pytest.raises(TypeError, match="x must have dtype"):
        instance_norm_stats(torch.ones(1, 1, 2, 2, dtype=torch.int64))


# --- bias and activation before the statistics (the encoder's conv -> bias -> lrelu -> stats) ----

def oracle_biased(x, b, act, alpha, eps=1e-8):
    v = x.detach().double().numpy() + b.detach().double().numpy()[None, :, None, None]
    if act == "lrelu":
        v = np.where(v > 0, v, alpha * v)
    elif act == "tanh":
        v = np.tanh(v)
    return oracle(torch.from_numpy(v), eps)


@pytest.mark.parametrize("act,alpha", [("lrelu", 0.2), ("lrelu", 0.05), ("tanh", None), ("linear", None)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bias_act_matches_oracle(act, alpha, layout, dtype):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(3, 5, 6, 7, generator=g, dtype=torch.float64) * 2 + 0.5).to(dtype)
    b = torch.randn(5, generator=g, dtype=torch.float64).to(dtype)
    expected = oracle_biased(x, b, act, 0.2 if alpha is None else alpha)
    for impl in ("auto", "ref"):
        y, mean, std = instance_norm_stats(make_layout(x, layout), impl=impl, bias=b, act=act, alpha=alpha)
        for got, want in zip((y, mean, std), expected):
            assert_close_to_oracle(got, want, scale=2.0)
        if layout == "channels_last":
            assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("uses", USES)
@pytest.mark.parametrize("act", ["lrelu", "tanh"])
def test_bias_act_gradcheck_and_gradgradcheck(uses, act):
    # Offsets keep lrelu's inputs away from its kink, where finite differences are not valid.
    x = (torch.randn(2, 3, 4, 3, dtype=torch.float64) + torch.tensor([2.0, -2.0, 0.0]).view(1, 3, 1, 1)).requires_grad_()
    b = (torch.randn(3, dtype=torch.float64) * 0.1).requires_grad_()
    ws = [torch.randn(s, dtype=torch.float64) for s in ((2, 3, 4, 3), (2, 3), (2, 3))]
    if act == "lrelu":
        x = x.detach()
        x[:, 2] = x[:, 2].sign() * (x[:, 2].abs() + 0.5)
        x.requires_grad_()
    f = lambda x, b: loss_of(instance_norm_stats(x, bias=b, act=act), uses, ws)
    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(lambda x, b: instance_norm_stats(x, bias=b, act=act), (x, b))


def test_bias_act_r1_matches_reference():
    # The encoder block as the model runs it: R1 through stats of lrelu(conv + bias).
    x0 = torch.randn(3, 6, 8, 8)
    b0 = torch.randn(6)
    lin = torch.nn.Linear(12, 5)
    results = []
    for impl in ("auto", "ref"):
        x, b = x0.clone().requires_grad_(), b0.clone().requires_grad_()
        y, mean, std = instance_norm_stats(x * 1.5, impl=impl, bias=b, act="lrelu")
        w = lin(torch.cat([mean, std], 1)) + y.mean((2, 3)).sum(1, keepdim=True)
        (gx,) = torch.autograd.grad((w.sin() * torch.arange(5.0)).sum(), x, create_graph=True)
        results.append((gx, *torch.autograd.grad(gx.square().sum(), (x, b, lin.weight))))
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(bias=torch.randn(4)), ValueError, r"bias must have shape \[C\] = \[3\]"),
    (dict(bias=torch.randn(3, dtype=torch.float64)), TypeError, "bias must have x's dtype"),
    (dict(act="gelu"), ValueError, "act must be one of"),
    (dict(act="lrelu", alpha=float("nan")), ValueError, "alpha must be a finite number"),
])
def test_bias_act_bad_arguments(kwargs, exc, match):
    x = torch.randn(2, 3, 4, 4)
    for fn in (instance_norm_stats, instance_norm_stats_ref):
        with pytest.raises(exc, match=match):
            fn(x, **kwargs)
