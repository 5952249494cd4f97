"""adain: kernel vs an independent numpy oracle, gradients to second order in every input,
the torch.library contract, torch.compile, constant planes, and bad input."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from alae_fast.ops import ACTIVATIONS, adain, adain_ref
from alae_fast.testing import assert_close_to_oracle, tolerances
from alae_fast_tests_oracles import act_np

ACTS = list(ACTIVATIONS)
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def oracle(x, scale, shift, bias, noise, nw, act="lrelu", alpha=None, eps=1e-8):
    """IN(act(x + nw*noise + bias)) * (1 + scale) + shift in float64 numpy (None = absent)."""
    n = lambda t: None if t is None else t.detach().double().cpu().numpy()
    x, scale, shift, bias, noise, nw = map(n, (x, scale, shift, bias, noise, nw))
    z = x.copy()
    if noise is not None:
        z = z + (1.0 if nw is None else nw[None, :, None, None]) * noise
    if bias is not None:
        z = z + bias[None, :, None, None]
    a = act_np(z, act, alpha)
    mean = a.mean(axis=(2, 3), keepdims=True)
    var = ((a - mean) ** 2).mean(axis=(2, 3), keepdims=True)
    y = (a - mean) / np.sqrt(var + eps)
    if scale is not None:
        y = y * (1 + scale[:, :, None, None])
    if shift is not None:
        y = y + shift[:, :, None, None]
    return y


def make_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return x.to(memory_format=torch.channels_last)
    if layout == "strided":  # not dense: every other element of a wider tensor
        wide = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "permuted":  # dense, but neither contiguous nor channels_last
        return x.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)
    return x


def make_inputs(N, C, H, W, dtype=torch.float64, device="cpu", parts="sbBnw", generator=None):
    """x plus the optional tensors named in parts: s(cale) b(ias of style) B(ias) n(oise) w(eight)."""
    r = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64).to(device, dtype)
    x = r(N, C, H, W) * 2
    return dict(
        x=x,
        style_scale=r(N, C) * 0.5 if "s" in parts else None,
        style_bias=r(N, C) if "b" in parts else None,
        bias=r(C) if "B" in parts else None,
        noise=r(N, 1, H, W) if "n" in parts else None,
        noise_weight=r(C) if ("w" in parts and "n" in parts) else None,
    )


def call(fn, d, **kw):
    return fn(d["x"], d["style_scale"], d["style_bias"], bias=d["bias"], noise=d["noise"],
              noise_weight=d["noise_weight"], **kw)


@st.composite
def cases(draw):
    big_c = draw(st.booleans())
    return dict(
        N=draw(st.integers(1, 3)),
        C=draw(st.sampled_from([300, 129])) if big_c else draw(st.integers(1, 6)),
        H=draw(st.integers(1, 6)) if not big_c else draw(st.integers(1, 3)),
        W=draw(st.integers(1, 6)) if not big_c else draw(st.integers(1, 3)),
        parts="".join(p for p in "sbBnw" if draw(st.booleans())),
        act=draw(st.sampled_from(ACTS)),
        alpha=draw(st.sampled_from([None, 0.1])),
        eps=draw(st.sampled_from([1e-8, 1e-5, 0.5])),
        dtype=draw(st.sampled_from(DTYPES)),
        layout=draw(st.sampled_from(["contiguous", "channels_last", "strided", "permuted"])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def run_case(c, device):
    g = torch.Generator().manual_seed(c["seed"])
    d = make_inputs(c["N"], c["C"], c["H"], c["W"], c["dtype"], device, c["parts"], g)
    expected = oracle(**{k: d[k] for k in ("x", "bias", "noise")}, scale=d["style_scale"], shift=d["style_bias"],
                      nw=d["noise_weight"], act=c["act"], alpha=c["alpha"], eps=c["eps"])
    d["x"] = make_layout(d["x"], c["layout"])
    y = call(adain, d, act=c["act"], alpha=c["alpha"], eps=c["eps"])
    assert y.dtype == d["x"].dtype and y.shape == d["x"].shape
    if c["layout"] == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    # Normalising divides by the plane's std: the output's error is the input rounding
    # error magnified by up to a few units; half types get a wider band.
    scale = 4.0 if c["dtype"] in (torch.float16, torch.bfloat16) else 2.0
    slack = normalisation_slack(d, c["act"], c["alpha"], c["eps"])
    assert_close_with_slack(y, expected, scale, slack)
    assert_close_with_slack(call(adain_ref, d, act=c["act"], alpha=c["alpha"], eps=c["eps"]), expected, scale, slack)


def normalisation_slack(d, act, alpha, eps):
    """Per-plane [N, C, 1, 1] error the arithmetic may reach before rounding the output.

    Adding noise and bias rounds each element by u·|term| (u: the compute type's unit
    roundoff, float32 for the half types); dividing by the plane's std magnifies that by up
    to |z| / std(act(z)), times the activation's slope (≤ 2 for every activation) and the
    style scale |1 + s|. A plane of two nearly equal values is legitimately ill-conditioned
    (found by hypothesis: a 1×2 plane, float32, error 1e-4), so the tolerance grows with it
    instead of the inputs being made benign. The 16 covers the mean's and variance's sums."""
    u = 2.0 ** -53 if d["x"].dtype == torch.float64 else 2.0 ** -24
    n = lambda t: 0.0 if t is None else t.detach().double().cpu().numpy()
    x, noise, bias = n(d["x"]), n(d["noise"]), n(d["bias"])
    nw = 1.0 if d["noise_weight"] is None else n(d["noise_weight"])[None, :, None, None]
    b = bias[None, :, None, None] if d["bias"] is not None else 0.0
    z = x + nw * noise + b
    magnitude = np.abs(x) + np.abs(nw * noise) + np.abs(b) + np.zeros_like(x)
    a = act_np(z, act, alpha)
    std = np.sqrt(a.var(axis=(2, 3), keepdims=True) + eps)
    style = 1.0 if d["style_scale"] is None else np.abs(1 + n(d["style_scale"]))[:, :, None, None]
    return 16 * u * 2 * magnitude.max(axis=(2, 3), keepdims=True) / std * style


def assert_close_with_slack(actual, expected, scale, slack):
    """|actual − expected| ≤ the dtype's tolerances (widened by scale) + slack, elementwise."""
    rtol, atol = tolerances(actual.dtype)
    got = actual.detach().cpu().double().numpy()
    bound = atol * scale + rtol * scale * np.abs(expected) + slack
    excess = np.abs(got - expected) - bound
    assert np.all(excess <= 0), (f"{int((excess > 0).sum())} of {excess.size} elements beyond tolerance; "
                                 f"worst excess {excess.max():.3g} at {np.unravel_index(excess.argmax(), excess.shape)}")


# a parameter, not the device fixture: hypothesis refuses function-scoped fixtures
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@settings(max_examples=60)
@given(c=cases())
def test_matches_oracle(c, device):
    run_case(c, device)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_large_planes_and_many_chunks(layout, device):
    # Many parallel tasks and chunks per sample, long rows, and C not a multiple of the vector width.
    for shape in [(3, 37, 33, 31), (2, 640, 9, 7), (1, 3, 130, 129)]:
        d = make_inputs(*shape, dtype=torch.float32, device=device)
        expected = oracle(d["x"], d["style_scale"], d["style_bias"], d["bias"], d["noise"], d["noise_weight"])
        d["x"] = make_layout(d["x"], layout)
        assert_close_to_oracle(call(adain, d), expected, scale=4.0)


# channels_last rows are walked in groups of pixels (csrc/cpu/adain_engine.h): below 16
# channels as one flat loop over a group's pixels x channels (the per-channel values repeated,
# each pixel's noise spread over its channels), from 16 channels on pixel by pixel (at 8, 16
# and 32 channels in vector registers, tested below). The channel
# counts cover 1, primes, the 16 boundary and past it; the plane sizes a partial last group
# (7 x 9), several groups and, for C = 3, two chunks of work (130 x 129 pixels).
LANE_CASES = [(1, 7, 9), (2, 7, 9), (3, 7, 9), (3, 130, 129), (5, 13, 11), (8, 9, 9), (9, 7, 9), (15, 6, 7),
              (16, 7, 9), (17, 5, 6), (40, 3, 5)]


def assert_channels_last_matches_contiguous_in_float64(N, C, H, W, parts, seed, act="lrelu", alpha=None):
    """float64, forward and every input's gradient: channels_last against contiguous (the NCHW
    rows, an independent loop structure) to 1e-10, and the forward against the oracle."""
    g = torch.Generator().manual_seed(seed)
    d = make_inputs(N, C, H, W, dtype=torch.float64, parts=parts, generator=g)
    names = [k for k in ("x", "style_scale", "style_bias", "bias", "noise", "noise_weight") if d[k] is not None]
    gy = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    results = []
    for layout in ("channels_last", "contiguous"):
        ins = {k: d[k].clone().requires_grad_() for k in names}
        ins["x"] = make_layout(ins["x"].detach(), layout).requires_grad_()
        y = adain(ins["x"], ins.get("style_scale"), ins.get("style_bias"), bias=ins.get("bias"),
                  noise=ins.get("noise"), noise_weight=ins.get("noise_weight"), act=act, alpha=alpha)
        if layout == "channels_last":
            assert y.is_contiguous(memory_format=torch.channels_last)
        results.append((y, *torch.autograd.grad(y, [ins[k] for k in names], make_layout(gy, layout))))
    expected = oracle(d["x"], d["style_scale"], d["style_bias"], d["bias"], d["noise"], d["noise_weight"],
                      act=act, alpha=alpha)
    np.testing.assert_allclose(results[0][0].detach().numpy(), expected, rtol=1e-10, atol=1e-10)
    for name, a, b in zip(["y", *names], *results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("C,H,W", LANE_CASES)
@pytest.mark.parametrize("parts", ["sbBnw", "sb"])
def test_channels_last_lane_groups_match_contiguous_in_float64(C, H, W, parts):
    assert_channels_last_matches_contiguous_in_float64(2, C, H, W, parts, seed=C * 1000 + H)


# 8, 16 and 32 channels with linear, relu or lrelu take the register loops
# (csrc/cpu/adain_register_lanes.h): per-channel values and partial sums in vector registers,
# two pixels at a time. The planes give an odd pixel count (the last pixel alone) within one
# group, several groups with a partial last one (groups of 2048 / C pixels), and (67 x 67) two
# chunks of work per sample at 8 channels (chunks of 32768 / C pixels).
@pytest.mark.parametrize("C", [8, 16, 32])
@pytest.mark.parametrize("act", ["linear", "relu", "lrelu", "tanh"])
@pytest.mark.parametrize("H,W,parts", [(7, 9, "sbBnw"), (23, 29, "sbBnw"), (23, 29, "sB"), (5, 5, ""),
                                       (67, 67, "sbBnw")])
def test_channels_last_register_lanes_match_contiguous_in_float64(C, act, H, W, parts):
    # tanh has no register form: its rows take the generic channels_last loops, the same check.
    assert_channels_last_matches_contiguous_in_float64(3, C, H, W, parts, seed=C * 100 + H, act=act, alpha=0.3)


@pytest.mark.parametrize("C", [8, 16, 32])
@pytest.mark.parametrize("act", ["linear", "relu", "lrelu"])
def test_channels_last_register_lanes_propagate_nan(C, act):
    # A NaN in one pixel of one channel makes that row's statistics, and so its whole output,
    # NaN, and its input gradient NaN wherever the activation passes a gradient (relu's zero
    # slope passes none, as its scalar form); the other rows stay finite, in both layouts alike.
    d = make_inputs(2, C, 6, 7, dtype=torch.float32, generator=torch.Generator().manual_seed(C))
    d["x"][1, C // 2, 3, 4] = float("nan")
    outs = []
    for layout in ("channels_last", "contiguous"):
        x = make_layout(d["x"], layout).requires_grad_()
        y = adain(x, d["style_scale"], d["style_bias"], bias=d["bias"], noise=d["noise"],
                  noise_weight=d["noise_weight"], act=act)
        (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
        outs.append((y.detach().isnan(), gx.isnan()))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
        assert a[1, C // 2].any() and a.sum() == a[1, C // 2].sum()
    assert outs[0][0][1, C // 2].all()


@pytest.mark.parametrize("C", [3, 8, 16, 24, 32])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_channels_last_lane_groups_in_every_dtype(C, dtype):
    # The half types are widened a group at a time and narrowed back (F16C for float16): forward
    # and gradients of every input against float64 autograd of the reference on the same
    # rounded inputs, in both layouts.
    g = torch.Generator().manual_seed(C)
    d = make_inputs(2, C, 23, 29, dtype=dtype, generator=g)
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    w = torch.randn(2, C, 23, 29, generator=g, dtype=torch.float64)
    want_ins = [d[k].detach().double().requires_grad_() for k in names]
    want_y = adain_ref(want_ins[0], want_ins[1], want_ins[2], bias=want_ins[3], noise=want_ins[4],
                       noise_weight=want_ins[5])
    want = (want_y, *torch.autograd.grad((want_y * w).sum(), want_ins))
    # (float32: the bias gradient, a sum of dz that nearly cancels, is the least accurate:
    # 1.2e-5 of its norm in channels_last at C = 3, 2.4e-6 contiguous.)
    bound = 3e-5 if dtype == torch.float32 else 2e-2
    for layout in ("channels_last", "contiguous"):
        ins = [d[k].detach().clone() for k in names]
        ins[0] = make_layout(ins[0], layout)
        ins = [t.requires_grad_() for t in ins]
        y = adain(ins[0], ins[1], ins[2], bias=ins[3], noise=ins[4], noise_weight=ins[5])
        got = (y, *torch.autograd.grad((y.double() * w).sum(), ins))
        for name, a, b in zip(["y", *names], got, want):
            assert a.dtype == dtype, name
            err = (a.double() - b).norm()
            assert err <= bound * b.norm() + 1e-6, (layout, name, float(err), float(b.norm()))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_statistics_of_a_plane_of_four_million_pixels(layout):
    # One float32 sum over a whole plane had drifted as planes grew (std 0.23% off at 2^26
    # pixels, the mean wrong past 2^31); rows are now reduced in blocks whose sums are added in
    # double, and NCHW rows longer than a block are recomputed block by block. 2048 x 2048
    # pixels: 16 blocks.
    from alae_fast.ops import instance_norm_stats
    g = torch.Generator().manual_seed(5)
    x64 = torch.rand(1, 2, 2048, 2048, generator=g, dtype=torch.float64) * 4 - 1
    x64[:, 1] = x64[:, 1] * 1e-2 + 7  # a plane whose mean is far from its spread
    x = make_layout(x64.float(), layout)
    y, mean, std = instance_norm_stats(x)
    xd = x.double()
    want_mean = xd.mean(dim=(2, 3))
    want_std = (xd.var(dim=(2, 3), unbiased=False) + 1e-8).sqrt()
    torch.testing.assert_close(mean.double(), want_mean, rtol=1e-6, atol=0)
    torch.testing.assert_close(std.double(), want_std, rtol=1e-5, atol=0)
    want_y = (xd - want_mean[:, :, None, None]) / want_std[:, :, None, None]
    assert (y.double() - want_y).abs().max() < 1e-3
    # The backward's four sums over the plane, through a gradient that uses all of them.
    xg = x.detach().requires_grad_()
    a = torch.linspace(-1, 1, 2048 * 2048, dtype=torch.float64).reshape(1, 1, 2048, 2048)
    yg, mg, sg = instance_norm_stats(xg)
    (gx,) = torch.autograd.grad((yg.double() * a).sum() + mg.double().sum() + sg.double().sum(), xg)
    xr = xd.clone().requires_grad_()
    mr = xr.mean(dim=(2, 3), keepdim=True)
    sr = ((xr - mr).square().mean(dim=(2, 3), keepdim=True) + 1e-8).sqrt()
    (want_gx,) = torch.autograd.grad((((xr - mr) / sr) * a).sum() + mr.sum() + sr.sum(), xr)
    err = (gx.double() - want_gx).norm() / want_gx.norm()
    assert err < 1e-4, float(err)


def test_mean_far_from_zero_keeps_precision():
    # One-pass shifted sums: a plane with mean 1e4 and std 1 loses nothing in float32.
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64) + 1e4
    y = adain(x.float(), None, None, act="linear")
    assert_close_to_oracle(y, oracle(x.float(), None, None, None, None, None, act="linear"), scale=10.0)


@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish", "linear", "softplus"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck_every_input(act, layout, device):
    d = make_inputs(2, 3, 4, 3, device=device)
    d["x"] = make_layout(d["x"], layout)
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    inputs = [d[k].detach().requires_grad_() for k in names]

    def f(x, s, t, b, n, w):
        return adain(x, s, t, bias=b, noise=n, noise_weight=w, act=act)

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


@pytest.mark.parametrize("parts", ["", "s", "b", "n", "Bn", "nw", "sbB"])
def test_gradgradcheck_optional_parts(parts):
    d = make_inputs(2, 3, 3, 4, parts=parts)
    names = [k for k in ("x", "style_scale", "style_bias", "bias", "noise", "noise_weight") if d[k] is not None]
    inputs = [d[k].detach().requires_grad_() for k in names]

    def f(*ts):
        kw = dict(zip(names, ts))
        return adain(kw["x"], kw.get("style_scale"), kw.get("style_bias"), bias=kw.get("bias"),
                     noise=kw.get("noise"), noise_weight=kw.get("noise_weight"), act="elu")

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


def test_third_order():
    d = make_inputs(1, 2, 3, 3)
    x, s = d["x"].requires_grad_(), d["style_scale"].requires_grad_()
    probe = torch.randn(x.shape, dtype=torch.float64)

    def second(x, s):
        y = adain(x, s, None, act="tanh")
        (gx,) = torch.autograd.grad((y * probe).sin().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), (x, s), create_graph=True)

    assert torch.autograd.gradcheck(second, (x, s))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_r1_style_double_backward_matches_reference(layout, dtype):
    # The generator/encoder pattern: a penalty on the input gradient, then back to every
    # parameter. Fused and reference must agree on both orders.
    d = make_inputs(2, 5, 6, 7, dtype=dtype)
    d["x"] = make_layout(d["x"], layout)
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    w = torch.randn(d["x"].shape, dtype=dtype)
    outs = []
    # float32 is checked against the reference in float64: both float32 paths round, and the
    # second derivatives of the style carry ~1e-4 of relative rounding error in the fused
    # path's sums (about 1e-4 before and after the channels_last kernels were rewritten).
    runs = [(adain, dtype), (adain_ref, torch.float64 if dtype == torch.float32 else dtype)]
    for fn, dt in runs:
        ins = [d[k].detach().clone().to(dt).requires_grad_() for k in names]
        y = fn(ins[0], ins[1], ins[2], bias=ins[3], noise=ins[4], noise_weight=ins[5])
        grads = torch.autograd.grad((y * w.to(dt)).square().sum(), ins, create_graph=True)
        penalty = sum(g.float().square().sum() if dt != torch.float64 else g.square().sum() for g in grads)
        outs.append((y, *grads, *torch.autograd.grad(penalty, ins)))
    for a, r in zip(*outs):
        if dtype == torch.float32:
            torch.testing.assert_close(a.double(), r, rtol=2e-4, atol=1e-4)
        else:
            # bfloat16 rounds every stored intermediate differently on the two paths.
            a, r = a.double(), r.double()
            assert (a - r).norm() <= 3e-2 * r.norm() + 1e-6


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_gradients_on_planes_wider_than_a_reduction_block(layout, dtype):
    # The CPU backward widens half rows into float32 blocks of 512 before reducing; a 40x40
    # plane (1600 values: three full blocks and a partial one) must reduce every block. The
    # expected gradients are float64 autograd of the reference on the same rounded inputs.
    g = torch.Generator().manual_seed(3)
    d = make_inputs(2, 3, 40, 40, dtype=dtype, generator=g)
    d["x"] = make_layout(d["x"], layout)
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    w = torch.randn(d["x"].shape, generator=g, dtype=torch.float64)
    results = []
    for fn, dt in ((adain, dtype), (adain_ref, torch.float64)):
        ins = [d[k].detach().to(dt).requires_grad_() for k in names]
        y = fn(ins[0], ins[1], ins[2], bias=ins[3], noise=ins[4], noise_weight=ins[5])
        results.append(torch.autograd.grad((y.double() * w).sum(), ins))
    for name, got, want in zip(names, *results):
        assert got.dtype == dtype, name
        err = (got.double() - want).norm()
        assert err <= 2e-2 * want.norm() + 1e-6, (name, float(err), float(want.norm()))


def test_constant_plane_gives_finite_outputs_and_grads():
    # A zero-variance plane (here: channel 1 everywhere, and a 1x1 image) normalises to 0.
    for shape in [(2, 3, 5, 5), (2, 3, 1, 1)]:
        d = make_inputs(*shape, parts="sbB", dtype=torch.float32)
        x = d["x"].clone()
        x[:, 1] = 0.7
        names = ["x", "style_scale", "style_bias", "bias"]
        ins = [x.requires_grad_()] + [d[k].clone().requires_grad_() for k in names[1:]]
        y = adain(ins[0], ins[1], ins[2], bias=ins[3])
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y[:, 1], ins[2][:, 1, None, None].expand(2, *shape[2:]).detach())
        grads = torch.autograd.grad(y.square().sum(), ins, create_graph=True)
        assert all(torch.isfinite(g).all() for g in grads)
        grads2 = torch.autograd.grad(sum(g.square().sum() for g in grads), ins)
        assert all(torch.isfinite(g).all() for g in grads2)


OPCHECK_CASES = [
    ((2, 3, 4, 5), "lrelu", "sbBnw", False, torch.float32),
    ((2, 3, 4, 5), "tanh", "sb", True, torch.float64),
    ((1, 4, 3, 3), "swish", "nB", False, torch.float32),
    ((2, 2, 3, 1), "linear", "", True, torch.float32),
]


@pytest.mark.parametrize("shape,act,parts,cl,dtype", OPCHECK_CASES)
def test_opcheck(shape, act, parts, cl, dtype):
    d = make_inputs(*shape, dtype=dtype, parts=parts)
    if cl:
        d["x"] = d["x"].to(memory_format=torch.channels_last)
    for v in d.values():
        if v is not None:
            v.requires_grad_()
    args = (d["x"], d["noise"], d["noise_weight"], d["bias"], d["style_scale"], d["style_bias"], act, 0.2, 1e-8)
    torch.library.opcheck(torch.ops.alae_fast.adain.default, args)
    y, mean, std = torch.ops.alae_fast.adain(*args)
    gy = torch.randn_like(y, requires_grad=True)
    gm = torch.randn_like(mean, requires_grad=True)
    grad_args = (gy, gm, None, d["x"], d["noise"], d["noise_weight"], d["bias"], d["style_scale"],
                 mean.detach().requires_grad_(), std.detach().requires_grad_(), act, 0.2)
    torch.library.opcheck(torch.ops.alae_fast.adain_grad.default, grad_args)


def test_torch_compile_fullgraph_forward_backward():
    def loss(x, s, t, b, n, w):
        return adain(x, s, t, bias=b, noise=n, noise_weight=w).square().sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    d = make_inputs(2, 8, 6, 6, dtype=torch.float32)
    d["x"] = d["x"].to(memory_format=torch.channels_last)
    names = ["x", "style_scale", "style_bias", "bias", "noise", "noise_weight"]
    ins = [d[k].requires_grad_() for k in names]
    eager = torch.autograd.grad(loss(*ins), ins)
    got = torch.autograd.grad(compiled(*ins), ins)
    for a, e in zip(got, eager):
        torch.testing.assert_close(a, e)


@pytest.mark.slow
def test_torch_compile_inductor():
    def f(x, s, t):
        return adain(x, s, t, act="lrelu")

    d = make_inputs(2, 8, 6, 6, dtype=torch.float32)
    compiled = torch.compile(f, fullgraph=True)
    torch.testing.assert_close(compiled(d["x"], d["style_scale"], d["style_bias"]),
                               f(d["x"], d["style_scale"], d["style_bias"]))


def test_batch_shared_noise_and_impl_ref():
    d = make_inputs(3, 4, 5, 5, dtype=torch.float32)
    shared = d["noise"][:1]
    y = adain(d["x"], d["style_scale"], d["style_bias"], noise=shared, noise_weight=d["noise_weight"])
    expected = oracle(d["x"], d["style_scale"], d["style_bias"], None, shared.expand(3, 1, 5, 5), d["noise_weight"])
    assert_close_to_oracle(y, expected, scale=2.0)
    torch.testing.assert_close(call(adain, d), call(adain, d, impl="ref"), rtol=1e-5, atol=1e-5)


def test_empty_batch():
    x = torch.randn(0, 3, 4, 4)
    assert adain(x, torch.randn(0, 3), torch.randn(0, 3)).shape == x.shape


@pytest.mark.parametrize("shape", [(2, 3, 0, 4), (2, 3, 4, 0)])
def test_empty_planes_double_backward_matches_reference(shape):
    # H or W = 0: the statistics are NaN (the mean of no values), but every gradient of a row
    # input (style_scale, style_bias, bias, noise_weight) is a sum over no values: 0 at first and
    # second order, as PyTorch's autograd gives it on adain_ref. The double backward's row
    # gradients had been 0 * NaN = NaN for style_scale.
    N, C, H, W = shape
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(s, generator=g, dtype=torch.float64) for s in
              (shape, (N, C), (N, C), (C,), (N, 1, H, W), (C,))]
    results = []
    for fn in (adain, adain_ref):
        ts = [t.clone().requires_grad_() for t in inputs]
        y = fn(ts[0], ts[1], ts[2], bias=ts[3], noise=ts[4], noise_weight=ts[5])
        first = torch.autograd.grad(y.square().sum(), ts, create_graph=True)
        second = torch.autograd.grad(sum(t.square().sum() for t in first if t.requires_grad), ts, allow_unused=True)
        results.append((first, second))
    for got, want in zip(results[0], results[1]):
        for a, b in zip(got, want):
            if b is None:
                assert a is None or not a.any()
            else:
                torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=torch.randn(2, 3, 4)), "x must be 4-D"),
    (dict(style_scale=torch.randn(3, 3)), "style_scale must have shape"),
    (dict(style_scale=torch.randn(2, 4)), "style_scale must have shape"),
    (dict(style_bias=torch.randn(2, 3, 1)), "style_bias must have shape"),
    (dict(noise=torch.randn(2, 3, 4, 4)), "noise must have shape"),
    (dict(noise=torch.randn(2, 1, 4, 5)), "noise must have shape"),
    (dict(noise=torch.randn(3, 1, 4, 4)), "noise must have shape"),
    (dict(noise_weight=torch.randn(3)), "noise_weight was given without noise"),
    (dict(noise=torch.randn(2, 1, 4, 4), noise_weight=torch.randn(4)), "noise_weight must have shape"),
    (dict(bias=torch.randn(2)), "bias must have shape"),
    (dict(eps=-1e-3), "eps must be"),
    (dict(eps=math.nan), "eps must be"),
    (dict(act="gelu"), "act must be one of"),
    (dict(impl="cuda"), "impl must be"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    args = dict(x=torch.randn(2, 3, 4, 4), style_scale=torch.randn(2, 3), style_bias=torch.randn(2, 3))
    args.update(kwargs)
    x, s, t = args.pop("x"), args.pop("style_scale"), args.pop("style_bias")
    with pytest.raises(ValueError, match=match):
        adain(x, s, t, **args)


def test_bad_types_raise_type_error():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError, match="style_scale must have x's dtype"):
        adain(x, torch.randn(2, 3, dtype=torch.float64), None)
    with pytest.raises(TypeError, match="x must have dtype"):
        adain(x.int(), None, None)
    with pytest.raises(TypeError, match="bias must be a torch.Tensor"):
        adain(x, None, None, bias=[1.0, 2.0, 3.0])


def test_registered_op_checks_too():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="style_scale must have shape"):
        torch.ops.alae_fast.adain(x, None, None, None, torch.randn(3, 3), None, "lrelu", 0.2, 1e-8)
    with pytest.raises(ValueError, match="noise must have shape"):
        torch.ops.alae_fast.adain(x, torch.randn(2, 2, 4, 4), None, None, None, None, "lrelu", 0.2, 1e-8)
    with pytest.raises(ValueError, match="eps must be"):
        torch.ops.alae_fast.adain(x, None, None, None, None, None, "lrelu", 0.2, -1.0)
    with pytest.raises(ValueError, match="x must be 4-D"):
        torch.ops.alae_fast.adain(x[0], None, None, None, None, None, "lrelu", 0.2, 1e-8)
    y, mean, std = torch.ops.alae_fast.adain(x, None, None, None, None, None, "lrelu", 0.2, 1e-8)
    with pytest.raises(ValueError, match="mean must have shape"):
        torch.ops.alae_fast.adain_grad(y, None, None, x, None, None, None, None, mean[:1], std, "lrelu", 0.2)


# --- layers -------------------------------------------------------------------------------

def test_noise_injection_layer():
    from alae_fast.nn import NoiseInjection
    layer = NoiseInjection(4)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(layer(x), x)  # the weight starts at 0
    with torch.no_grad():
        layer.weight.copy_(torch.arange(4.0))
    noise = torch.randn(2, 1, 5, 5)
    torch.testing.assert_close(layer(x, noise), x + torch.arange(4.0).view(1, 4, 1, 1) * noise)
    torch.testing.assert_close(layer(x, None), x)
    with pytest.raises(ValueError, match="noise must be"):
        layer(x, "zero")


def test_adain_layer_starts_as_plain_instance_norm():
    from alae_fast.nn import AdaIN
    layer = AdaIN(6, w_dim=10)
    with torch.no_grad():
        layer.style.weight.zero_()
    x, w = torch.randn(3, 6, 4, 4), torch.randn(3, 10)
    assert_close_to_oracle(layer(x, w), oracle(x, None, None, None, None, None, act="linear"), scale=2.0)
    with pytest.raises(ValueError, match="w must have shape"):
        layer(x, torch.randn(3, 9))


@pytest.mark.parametrize("up", [None, "nearest", "fused"])
def test_style_block_matches_its_definition(up):
    from alae_fast.nn import StyleBlock
    from alae_fast.ops import filter2d, setup_filter
    block = StyleBlock(4, 6, w_dim=8, up=up)
    with torch.no_grad():
        block.noise_weight.normal_()
        block.bias.normal_()
    x, w = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    noise = torch.randn(2, 1, 10 if up else 5, 10 if up else 5)
    y = block(x, w, noise=noise)
    assert y.shape == (2, 6, *noise.shape[2:])
    # The definition, step by step in plain torch.
    weight = block.conv.weight * block.conv.weight_gain
    h = F.interpolate(x, scale_factor=2, mode="nearest") if up else x
    h = F.conv2d(h, weight, padding=1)
    h = filter2d(h, setup_filter([1, 2, 1]), impl="ref")
    s = block.adain.style(w)
    expected = oracle(h, s[:, :6], s[:, 6:], block.bias, noise, block.noise_weight)
    assert_close_to_oracle(y, expected, scale=10.0)


def test_style_block_double_backward_matches_reference():
    import copy

    from alae_fast.nn import StyleBlock, set_impl
    # float64: in float32 the second-order terms through 8x8 instance norms differ by a few
    # 1e-4 between any two summation orders, which says nothing about the kernels
    torch.manual_seed(0)
    block = StyleBlock(3, 4, w_dim=5, up="fused").double()
    x0, w = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    noise = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    results = []
    for b in (block, set_impl(copy.deepcopy(block), "ref")):
        x = x0.clone().requires_grad_()
        y = b(x, w, noise=noise)
        (gx,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
        params = list(b.parameters())
        results.append((y, gx, *torch.autograd.grad(gx.square().sum(), params, allow_unused=True,
                                                    materialize_grads=True)))
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


def test_style_block_without_conv_and_bad_configs():
    from alae_fast.nn import StyleBlock
    block = StyleBlock(4, 4, w_dim=3, conv=False)
    y = block(torch.randn(2, 4, 4, 4), torch.randn(2, 3), noise=None)
    assert y.shape == (2, 4, 4, 4)
    with pytest.raises(ValueError, match="conv=False"):
        StyleBlock(4, 5, w_dim=3, conv=False)
    with pytest.raises(ValueError, match="up must be"):
        StyleBlock(4, 5, w_dim=3, up="bilinear")


def test_registered_op_names_itself_for_a_bad_activation():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match="^adain: act must be one of"):
        torch.ops.alae_fast.adain(x, None, None, None, None, None, "gelu", 0.0, 1e-8)
