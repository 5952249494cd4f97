"""filtered_lrelu: kernel and reference vs an independent numpy oracle of the definition
(hypothesis over tap counts 1-16, up/down 1-4, pads -4..8, separable and 2-D filters, layouts
and dtypes), gradients of first and second order (gradcheck/gradgradcheck in float64, and
agreement with the reference's autograd), the torch.library contract, torch.compile, NaN
behaviour, the compact saved state, and bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alae_fast import _lib
from alae_fast.ops import filtered_lrelu, filtered_lrelu_ref
from alae_fast.testing import assert_close_to_oracle
from alae_fast_tests_oracles import upfirdn2d_np

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
needs_kernel = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")
pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def taps2d(f):
    if f is None:
        return np.ones((1, 1))
    f = f.double().numpy()
    return np.outer(f, f) if f.ndim == 1 else f


def oracle(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """filtered_lrelu by its definition (NVlabs' docstring), in float64 numpy."""
    z = x.double().numpy()
    if b is not None:
        z = z + b.double().numpy().reshape(1, -1, 1, 1)
    z = upfirdn2d_np(z, taps2d(fu), (up, up), (1, 1), padding, flip_filter, up * up)
    z = np.where(z > 0, z, z * slope) * gain
    if clamp is not None:
        z = np.clip(z, -clamp, clamp)
    return upfirdn2d_np(z, taps2d(fd), (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1.0)


def out_size(n, up, down, p0, p1, tu, td):
    return (n * up + p0 + p1 - (tu - 1) - (td - 1) + (down - 1)) // down


def make_case(rng, *, n=2, c=3, h=5, w=6, up=2, down=2, tu=4, td=4, sep=True, pad=(2, 1, 3, 2), bias=True,
              dtype=torch.float64, cl=False):
    x = torch.randn(n, c, h, w, generator=rng, dtype=dtype)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    fu = torch.rand(tu if sep else (tu, tu + 1 if tu < 16 else tu), generator=rng) + 0.1
    fd = torch.rand(td if sep else (td + 1 if td < 16 else td, td), generator=rng) + 0.1
    b = torch.randn(c, generator=rng, dtype=dtype) if bias else None
    return x, fu, fd, b, dict(up=up, down=down, padding=list(pad))


def assert_matches_oracle(y, x, fu, fd, b, kw, scale=1.0):
    cfg = dict(gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False)
    cfg.update({k: v for k, v in kw.items() if k in cfg})
    want = oracle(x, fu, fd, b, kw["up"], kw["down"], kw["padding"], **cfg)
    assert tuple(y.shape) == want.shape
    assert_close_to_oracle(y, want, dtype=x.dtype, scale=scale)


# --- forward vs the oracle ------------------------------------------------------------------

@st.composite
def cases(draw, dtype=torch.float64):
    up, down = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    tu, td = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    pad = [draw(st.integers(-4, 8)) for _ in range(4)]
    sep = draw(st.booleans())
    tw_u, th_u = (tu, tu) if sep else (tu + 1 if tu < 16 else tu, tu)
    tw_d, th_d = (td, td) if sep else (td, td + 1 if td < 16 else td)
    uw, uh = w * up + pad[0] + pad[1] - tw_u + 1, h * up + pad[2] + pad[3] - th_u + 1
    assume(uw >= 1 and uh >= 1 and (uw - tw_d + down) // down >= 1 and (uh - th_d + down) // down >= 1)
    seed = draw(st.integers(0, 2**31 - 1))
    extra = dict(gain=draw(st.sampled_from([1.0, math.sqrt(2), 0.5])), slope=draw(st.sampled_from([0.2, 0.0, -0.5, 1.3])),
                 clamp=draw(st.sampled_from([None, 0.3, 2.0, math.inf])), flip_filter=draw(st.booleans()))
    rng = torch.Generator().manual_seed(seed)
    x, fu, fd, b, kw = make_case(rng, n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)), h=h, w=w, up=up,
                                 down=down, tu=tu, td=td, sep=sep, pad=pad, bias=draw(st.booleans()), dtype=dtype,
                                 cl=draw(st.booleans()))
    if draw(st.integers(0, 5)) == 0:
        fu = None
    if draw(st.integers(0, 5)) == 0:
        fd = None
    kw.update(extra)
    if extra["clamp"] == math.inf:
        kw["clamp"] = math.inf
    return x, fu, fd, b, kw


def _oracle_kw(kw):
    kw = dict(kw)
    if kw.get("clamp") == math.inf:
        kw["clamp"] = None
    return kw


@needs_kernel
@settings(max_examples=100)
@given(cases())
def test_kernel_matches_oracle(case):
    x, fu, fd, b, kw = case
    y = filtered_lrelu(x, fu, fd, b, **kw)
    assert_matches_oracle(y, x, fu, fd, b, _oracle_kw(kw))
    assert y.is_contiguous(memory_format=torch.channels_last if not x.is_contiguous() else torch.contiguous_format)


@settings(max_examples=40)
@given(cases())
def test_reference_matches_oracle(case):
    x, fu, fd, b, kw = case
    assert_matches_oracle(filtered_lrelu_ref(x, fu, fd, b, **kw), x, fu, fd, b, _oracle_kw(kw))


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cl", [False, True])
def test_dtypes_and_layouts(dtype, cl):
    rng = torch.Generator().manual_seed(1)
    x, fu, fd, b, kw = make_case(rng, n=2, c=4, h=9, w=8, tu=12, td=12, pad=(9, 8, 9, 8), dtype=dtype, cl=cl)
    y = filtered_lrelu(x, fu, fd, b, clamp=1.5, **kw)
    assert y.dtype == dtype
    assert y.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
    # Half types round the input and bias; compare against the oracle of the rounded values.
    assert_matches_oracle(y, x, fu, fd, b, dict(kw, clamp=1.5), scale=4.0)
    torch.testing.assert_close(y, filtered_lrelu_ref(x, fu, fd, b, clamp=1.5, **kw),
                               **({} if dtype in (torch.float32, torch.float64) else dict(rtol=2e-2, atol=2e-2)))


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sep", [True, False])
def test_channels_last_runs_on_transposed_copies_bit_for_bit(dtype, sep):
    # 70 channels and 9 x 11 = 99 pixels: the CPU kernel's layout transposes (8 x 64 tiles) have
    # whole and partial tiles on both axes; forward, the masked op (the double backward) and the
    # gradient each read and write channels_last, and must equal the contiguous computation.
    rng = torch.Generator().manual_seed(7)
    x, fu, fd, b, kw = make_case(rng, n=3, c=70, h=9, w=11, tu=6, td=6, sep=sep, pad=(3, 2, 4, 1), dtype=dtype)
    xl = x.contiguous(memory_format=torch.channels_last)
    cfg = (b, kw["up"], kw["down"], kw["padding"], math.sqrt(2), 0.2, 2.0, False)
    y, state = torch.ops.alae_fast.filtered_lrelu(x, fu, fd, *cfg)
    yl, state_l = torch.ops.alae_fast.filtered_lrelu(xl, fu, fd, *cfg)
    assert yl.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, yl)
    assert torch.equal(state, state_l)
    dy = torch.randn(y.shape, generator=rng, dtype=dtype)
    dyl = dy.contiguous(memory_format=torch.channels_last)
    rest = (kw["up"], kw["down"], kw["padding"], math.sqrt(2), 0.2, False)
    dx, db = torch.ops.alae_fast.filtered_lrelu_grad(dy, state, fu, fd, list(x.shape[2:]), *rest, True)
    dxl, dbl = torch.ops.alae_fast.filtered_lrelu_grad(dyl, state, fu, fd, list(x.shape[2:]), *rest, True)
    assert dxl.is_contiguous(memory_format=torch.channels_last) and torch.equal(dx, dxl) and torch.equal(db, dbl)
    v = torch.randn(x.shape, generator=rng, dtype=dtype)
    m = torch.ops.alae_fast.filtered_lrelu_masked(v, state, fu, fd, *rest)
    ml = torch.ops.alae_fast.filtered_lrelu_masked(v.contiguous(memory_format=torch.channels_last), state, fu, fd,
                                                   *rest)
    assert ml.is_contiguous(memory_format=torch.channels_last) and torch.equal(m, ml)
    # and the contiguous result is the reference's
    torch.testing.assert_close(y, filtered_lrelu_ref(x, fu, fd, b, clamp=2.0, **kw),
                               **({} if dtype in (torch.float32, torch.float64) else dict(rtol=2e-2, atol=2e-2)))


@needs_kernel
@pytest.mark.parametrize("up,down", [(1, 1), (2, 2), (4, 2), (2, 1), (1, 3), (3, 4)])
@pytest.mark.parametrize("sep", [True, False])
def test_stylegan3_like_configs(up, down, sep):
    rng = torch.Generator().manual_seed(up * 10 + down)
    x, fu, fd, b, kw = make_case(rng, n=1, c=2, h=10, w=11, up=up, down=down, tu=6 * up, td=4 * down, sep=sep,
                                 pad=(5 * up, 5 * up - 1, 6 * up, 4 * up))
    assert_matches_oracle(filtered_lrelu(x, fu, fd, b, **kw), x, fu, fd, b, kw)


@needs_kernel
def test_tap_counts_and_pads_past_every_boundary():
    # Every tap count 1..16 on each filter, every up/down 1..4, pads from -4 to 8: the edges
    # where a tap reads before the first or after the last sample, for a sanitizer run too.
    rng = torch.Generator().manual_seed(7)
    for up in range(1, 5):
        for down in range(1, 5):
            for t in range(1, 17):
                for p in (-4, -1, 0, 3, 8):
                    pad = (p, 8 - p if p > 0 else 2, max(p, 0), p + 4)
                    tu, td = t, 17 - t
                    h = w = 4
                    if min(out_size(w, up, down, pad[0], pad[1], tu, td),
                           out_size(h, up, down, pad[2], pad[3], tu, td)) < 1:
                        continue
                    if min(w * up + pad[0] + pad[1] - tu + 1, h * up + pad[2] + pad[3] - tu + 1) < 1:
                        continue
                    x, fu, fd, b, kw = make_case(rng, n=1, c=1, h=h, w=w, up=up, down=down, tu=tu, td=td, pad=pad)
                    assert_matches_oracle(filtered_lrelu(x, fu, fd, b, **kw), x, fu, fd, b, kw)


# --- gradients ----------------------------------------------------------------------------

def _grads(fn, x, b, gy, create_graph=False):
    y = fn(x, b)
    return torch.autograd.grad(y, [x, b], gy, create_graph=create_graph)


@needs_kernel
@settings(max_examples=60)
@given(cases())
def test_gradients_match_reference(case):
    x, fu, fd, b, kw = case
    x.requires_grad_(True)
    if b is None:
        b = torch.zeros(x.shape[1], dtype=x.dtype)
    b.requires_grad_(True)
    gy = torch.randn_like(filtered_lrelu_ref(x, fu, fd, b, **kw))
    got = _grads(lambda x, b: filtered_lrelu(x, fu, fd, b, **kw), x, b, gy)
    want = _grads(lambda x, b: filtered_lrelu_ref(x, fu, fd, b, **kw), x, b, gy)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


@needs_kernel
@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("clamp", [None, 0.8])
@pytest.mark.parametrize("up,down,pad", [(2, 2, (3, 2, 4, 1)), (1, 3, (-1, 4, 1, 3)), (3, 1, (2, -2, 1, 1))])
def test_gradcheck_gradgradcheck(sep, clamp, up, down, pad):
    rng = torch.Generator().manual_seed(3)
    x, fu, fd, b, kw = make_case(rng, n=1, c=2, h=4, w=5, up=up, down=down, tu=3, td=4, sep=sep, pad=pad)
    x.requires_grad_(True)
    b.requires_grad_(True)
    fn = lambda x, b: filtered_lrelu(x, fu, fd, b, clamp=clamp, flip_filter=sep, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-5)


@needs_kernel
def test_double_backward_matches_reference():
    # R1-style: a penalty on the input gradient of D(x) = <filtered_lrelu(x * w), v>,
    # differentiated with respect to the parameters w and v. (Its x-derivative through the
    # activation is zero almost everywhere: the kernel's input gradient does not depend on x.)
    rng = torch.Generator().manual_seed(5)
    x, fu, fd, b, kw = make_case(rng, n=2, c=3, h=6, w=6, tu=6, td=6, pad=(3, 2, 3, 2))
    x.requires_grad_(True)
    b.requires_grad_(True)
    w = (torch.rand(1, 3, 1, 1, generator=rng, dtype=x.dtype) + 0.5).requires_grad_(True)
    v = torch.randn_like(filtered_lrelu_ref(x, fu, fd, b, **kw)).requires_grad_(True)
    outs = []
    for fn in (filtered_lrelu, filtered_lrelu_ref):
        d = (fn(x * w, fu, fd, b, **kw) * v).sum()
        gx, gb = torch.autograd.grad(d, [x, b], create_graph=True)
        penalty = gx.square().sum() + gb.sin().sum()
        outs.append(torch.autograd.grad(penalty, [w, v]))
    for g, want in zip(*outs):
        assert g.abs().sum() > 0
        torch.testing.assert_close(g, want)


@needs_kernel
def test_half_gradients_match_reference():
    rng = torch.Generator().manual_seed(11)
    for dtype in (torch.float16, torch.bfloat16):
        x, fu, fd, b, kw = make_case(rng, n=1, c=2, h=8, w=8, tu=6, td=6, pad=(3, 2, 3, 2), dtype=dtype)
        x.requires_grad_(True)
        b.requires_grad_(True)
        gy = torch.randn_like(filtered_lrelu_ref(x, fu, fd, b, **kw))
        got = _grads(lambda x, b: filtered_lrelu(x, fu, fd, b, **kw), x, b, gy)
        want = _grads(lambda x, b: filtered_lrelu_ref(x, fu, fd, b, **kw), x, b, gy)
        for g, w in zip(got, want):
            assert g.dtype == dtype
            torch.testing.assert_close(g.float(), w.float(), rtol=3e-2, atol=3e-2)


@needs_kernel
def test_filter_requiring_grad_raises_on_kernel_path_and_ref_computes_it():
    rng = torch.Generator().manual_seed(2)
    x, fu, fd, b, kw = make_case(rng)
    fu.requires_grad_(True)
    with pytest.raises(ValueError, match="fu requires a gradient"):
        filtered_lrelu(x, fu, fd, b, **kw)
    filtered_lrelu_ref(x, fu, fd, b, **kw).sum().backward()
    assert fu.grad is not None and torch.isfinite(fu.grad).all() and fu.grad.abs().sum() > 0
    with torch.no_grad():  # no gradient is asked for: the kernel runs
        filtered_lrelu(x, fu, fd, b, **kw)


@needs_kernel
def test_registered_ops_refuse_a_filter_requiring_grad():
    # The ops' own autograd (C++) gives the filters no gradient: called directly through
    # torch.ops with a filter that requires one, each op refuses rather than leave it without.
    rng = torch.Generator().manual_seed(3)
    x, fu, fd, b, kw = make_case(rng, dtype=torch.float32)
    cfg = (kw["up"], kw["down"], kw["padding"], math.sqrt(2), 0.2)
    y, state = torch.ops.alae_fast.filtered_lrelu(x, fu, fd, b, *cfg, None, False)
    for name in ("fu", "fd"):
        f = {"fu": fu, "fd": fd}
        f[name] = f[name].detach().clone().requires_grad_()
        calls = [
            lambda: torch.ops.alae_fast.filtered_lrelu(x, f["fu"], f["fd"], b, *cfg, None, False),
            lambda: torch.ops.alae_fast.filtered_lrelu_grad(torch.ones_like(y), state, f["fu"], f["fd"],
                                                            list(x.shape[2:]), *cfg, False, True),
            lambda: torch.ops.alae_fast.filtered_lrelu_masked(torch.ones_like(x), state, f["fu"], f["fd"], *cfg, False),
        ]
        for call in calls:
            with pytest.raises(ValueError, match=f"{name} requires a gradient, which the kernel does not compute"):
                call()
            with torch.no_grad():
                call()


# --- the saved state, NaN, the contract ---------------------------------------------------------

@needs_kernel
def test_state_is_two_bits_per_upsampled_element():
    x = torch.randn(2, 3, 9, 7)
    fu, fd = torch.rand(6) + 0.1, torch.rand(5) + 0.1
    y, state = torch.ops.alae_fast.filtered_lrelu(x, fu, fd, None, 2, 2, [3, 2, 4, 1], math.sqrt(2), 0.2, 0.5, False)
    uh, uw = 9 * 2 + 5 - 6 + 1, 7 * 2 + 5 - 6 + 1
    assert state.dtype == torch.uint8 and tuple(state.shape) == (2, 3, (uh * uw + 3) // 4)
    # The codes are the branches of the reference's upsampled tensor.
    from alae_fast.ops.upfirdn2d import upfirdn2d_ref
    z = upfirdn2d_ref(x.double(), fu, up=2, padding=[3, 2, 4, 1], gain=4).reshape(2, 3, -1)
    a = torch.where(z > 0, z, z * 0.2) * math.sqrt(2)
    want = torch.where(a.abs() > 0.5, 2, (z > 0).long())
    got = torch.stack([(state.long() >> (2 * k)) & 3 for k in range(4)], -1).reshape(2, 3, -1)[:, :, :uh * uw]
    torch.testing.assert_close(got, want)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("h,w", [(7, 9), (8, 8), (9, 16), (17, 15), (4, 25), (25, 4), (4, 40)])
@pytest.mark.parametrize("sep", [True, False])
def test_plane_sizes_around_register_blocks(dtype, h, w, sep):
    # The separable engine transposes float planes in 8x8 register blocks (4x4 for double),
    # plus a scalar remainder, and activates/masks the whole padded upsampled plane at once;
    # the 2-D engine sums blocks of 16 (float) or 8 (double) outputs of a row in registers:
    # sizes below, at and past one block, for the output, the saved codes and the gradient.
    rng = torch.Generator().manual_seed(h * 100 + w)
    x, fu, fd, b, kw = make_case(rng, n=2, c=3, h=h, w=w, tu=12, td=12, pad=(9, 8, 9, 8), dtype=dtype, sep=sep)
    x.requires_grad_(True)
    b.requires_grad_(True)
    y, state = torch.ops.alae_fast.filtered_lrelu(x.detach(), fu, fd, b.detach(), 2, 2, kw["padding"],
                                                   math.sqrt(2), 0.2, 1.0, False)
    assert_matches_oracle(y, x.detach(), fu, fd, b.detach(), dict(kw, clamp=1.0))
    from alae_fast.ops.upfirdn2d import upfirdn2d_ref
    z = upfirdn2d_ref(x.detach().double() + b.detach().double().reshape(1, -1, 1, 1), fu, up=2,
                      padding=kw["padding"], gain=4)
    uh, uw = z.shape[2:]
    a = torch.where(z > 0, z, z * 0.2) * math.sqrt(2)
    want = torch.where(a.abs() > 1.0, 2, (z > 0).long()).reshape(2, 3, -1)
    got = torch.stack([(state.long() >> (2 * k)) & 3 for k in range(4)], -1).reshape(2, 3, -1)[:, :, :uh * uw]
    torch.testing.assert_close(got, want)
    gy = torch.randn(y.shape, generator=rng, dtype=dtype)
    got = _grads(lambda x, b: filtered_lrelu(x, fu, fd, b, clamp=1.0, **kw), x, b, gy)
    want = _grads(lambda x, b: filtered_lrelu_ref(x, fu, fd, b, clamp=1.0, **kw), x, b, gy)
    for g, w_ in zip(got, want):
        torch.testing.assert_close(g, w_)


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clamp", [None, 1.0])
def test_nan_and_inf_propagate_as_in_reference(dtype, clamp):
    rng = torch.Generator().manual_seed(4)
    x, fu, fd, b, kw = make_case(rng, n=1, c=2, h=6, w=6, tu=4, td=4, dtype=dtype)
    x[0, 0, 2, 3] = float("nan")
    x[0, 1, 4, 1] = float("inf")
    x[0, 1, 0, 0] = -float("inf")
    got = filtered_lrelu(x, fu, fd, b, clamp=clamp, **kw)
    want = filtered_lrelu_ref(x, fu, fd, b, clamp=clamp, **kw)
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.isinf(), want.isinf())
    assert got.isnan().any()
    fin = want.isfinite()
    torch.testing.assert_close(got[fin].double(), want[fin].double(), rtol=2e-2, atol=2e-2)


@needs_kernel
def test_nan_gradient_as_in_reference():
    rng = torch.Generator().manual_seed(6)
    for clamp in (None, 1.0):
        x, fu, fd, b, kw = make_case(rng, n=1, c=1, h=6, w=6)
        x[0, 0, 2, 2] = float("nan")
        x.requires_grad_(True)
        gy = torch.randn(1, 1, *filtered_lrelu_ref(x, fu, fd, b, **kw).shape[2:], dtype=x.dtype)
        g1 = torch.autograd.grad(filtered_lrelu(x, fu, fd, b, clamp=clamp, **kw), x, gy)[0]
        g2 = torch.autograd.grad(filtered_lrelu_ref(x, fu, fd, b, clamp=clamp, **kw), x, gy)[0]
        torch.testing.assert_close(g1, g2, equal_nan=True)


def _op_args(sep=True, cl=False):
    x = torch.randn(2, 3, 6, 5)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    fu = torch.rand(4 if sep else (4, 3)) + 0.1
    fd = torch.rand(3 if sep else (3, 2)) + 0.1
    return x, fu, fd, torch.randn(3)


@needs_kernel
@pytest.mark.parametrize("sep,cl", [(True, False), (False, True)])
def test_opcheck(sep, cl):
    x, fu, fd, b = _op_args(sep, cl)
    cfg = (2, 2, [2, 1, 3, 0], math.sqrt(2), 0.2)
    torch.library.opcheck(torch.ops.alae_fast.filtered_lrelu.default,
                          (x.requires_grad_(), fu, fd, b.requires_grad_(), *cfg, 0.7, False))
    y, state = torch.ops.alae_fast.filtered_lrelu(x.detach(), fu, fd, b.detach(), *cfg, 0.7, False)
    dy = torch.randn_like(y).requires_grad_()
    torch.library.opcheck(torch.ops.alae_fast.filtered_lrelu_grad.default,
                          (dy, state, fu, fd, [6, 5], *cfg, False, True))
    torch.library.opcheck(torch.ops.alae_fast.filtered_lrelu_masked.default,
                          (torch.randn_like(x).requires_grad_(), state, fu, fd, *cfg, False))


@needs_kernel
def test_torch_compile_fullgraph_forward_backward():
    x, fu, fd, b = _op_args(cl=True)
    x.requires_grad_(True)
    fn = lambda x: filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[2, 1, 3, 0], clamp=0.9)  # noqa: E731
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    got = compiled(x)
    torch.testing.assert_close(got, fn(x))
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(torch.autograd.grad(compiled(x).sum(), x)[0], torch.autograd.grad(fn(x).sum(), x)[0])


@needs_kernel
def test_torch_compile_inductor():
    x, fu, fd, b = _op_args()
    fn = lambda x: filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[2, 1, 3, 0])  # noqa: E731
    torch.testing.assert_close(torch.compile(fn, fullgraph=True)(x), fn(x))


@needs_kernel
def test_threads_give_the_same_result():
    x, fu, fd, b = _op_args()
    x = torch.randn(3, 17, 12, 12)
    b = torch.randn(17)
    one = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[3, 3, 3, 3])
    torch.set_num_threads(2)
    try:
        two = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[3, 3, 3, 3])
    finally:
        torch.set_num_threads(1)
    assert torch.equal(one, two)


def test_identity_filters_default_call():
    # fu = fd = None, up = down = 1: gain * lrelu(x + b), as NVlabs' defaults give.
    x, b = torch.randn(2, 3, 4, 5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    want = torch.nn.functional.leaky_relu(x + b.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    for impl in ("auto", "ref"):
        torch.testing.assert_close(filtered_lrelu(x, b=b, impl=impl), want)


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(x=torch.randn(3, 4, 5)), ValueError, "x must be 4-D"),
    (dict(x=torch.randn(1, 2, 4, 4).long()), TypeError, "x must have dtype"),
    (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
    (dict(fu=torch.ones(2, 2, 2)), ValueError, "fu must be 1-D"),
    (dict(fd=torch.ones(0)), ValueError, "fd must not be empty"),
    (dict(fu=torch.ones(3, dtype=torch.int64)), TypeError, "fu must be a floating-point"),
    (dict(fd=[1.0, 2.0]), TypeError, "fd must be a torch.Tensor"),
    (dict(b=torch.randn(3)), ValueError, "b must be 1-D of length C = 2"),
    (dict(b=torch.randn(2, dtype=torch.float64)), TypeError, "b must have x's dtype"),
    (dict(up=0), ValueError, "up must be >= 1"),
    (dict(down=2.0), TypeError, "down must be an int"),
    (dict(padding=[1, 2, 3]), ValueError, "padding must be"),
    (dict(padding=-9), ValueError, "padding leaves no output"),
    (dict(gain=float("nan")), ValueError, "gain must be finite"),
    (dict(slope="0.2"), TypeError, "slope must be a real number"),
    (dict(clamp=-1.0), ValueError, "clamp must be >= 0"),
    (dict(flip_filter=1), TypeError, "flip_filter must be a bool"),
])
def test_bad_arguments(impl, kwargs, exc, match):
    args = dict(x=torch.randn(1, 2, 4, 4), fu=torch.ones(2), fd=torch.ones(2), up=2, down=2, padding=1)
    args.update(kwargs)
    fn = filtered_lrelu if impl == "auto" else filtered_lrelu_ref
    with pytest.raises(exc, match=match):
        fn(**args)


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("kwargs,match", [
    # past upfirdn2d's bounds the kernels' int64 geometry overflowed: a padding of 2**62 was refused
    # as one that "leaves no output", one of 2**40 and an up of 2**40 by torch ("Storage size
    # calculation overflowed"), naming no argument
    (dict(padding=[0, 0, 2 ** 62, 2 ** 62]), r"padding must be within \[-1073741824, 1073741824\]"),
    (dict(padding=2 ** 40), r"padding must be within"),
    (dict(up=2 ** 40), r"up and down must be <= 65536"),
    (dict(down=2 ** 17), r"up and down must be <= 65536"),
    # within them, an output no tensor can address is named too
    (dict(padding=2 ** 30), r"the output of x of shape \(2, 2, 4, 4\).*past what a tensor can address"),
])
def test_sizes_past_the_bounds_are_named(impl, kwargs, match):
    args = dict(x=torch.randn(2, 2, 4, 4), up=1, down=1, padding=0)
    args.update(kwargs)
    fn = filtered_lrelu if impl == "auto" else filtered_lrelu_ref
    with pytest.raises(ValueError, match=match):
        fn(**args)


@needs_kernel
def test_op_checks_the_bounds():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"filtered_lrelu: padding must be within"):
        torch.ops.alae_fast.filtered_lrelu(x, None, None, None, 1, 1, [0, 0, 2 ** 62, 2 ** 62], 1.0, 0.2, None, False)
    with pytest.raises(ValueError, match=r"filtered_lrelu: up must be >= 1 and <= 65536"):
        torch.ops.alae_fast.filtered_lrelu(x, None, None, None, 2 ** 40, 1, [0, 0, 0, 0], 1.0, 0.2, None, False)


def test_bad_impl():
    with pytest.raises(ValueError, match="impl must be"):
        filtered_lrelu(torch.randn(1, 1, 2, 2), impl="cuda")


@needs_kernel
def test_op_checks_state():
    x, fu, fd, b = _op_args()
    y, state = torch.ops.alae_fast.filtered_lrelu(x, fu, fd, b, 2, 2, [2, 1, 3, 0], 1.0, 0.2, None, False)
    with pytest.raises(ValueError, match="state must be uint8"):
        torch.ops.alae_fast.filtered_lrelu_grad(y, state[:, :, 1:], fu, fd, [6, 5], 2, 2, [2, 1, 3, 0], 1.0, 0.2,
                                                False, False)
    with pytest.raises(ValueError, match="dy must be"):
        torch.ops.alae_fast.filtered_lrelu_grad(y[:, :, 1:], state, fu, fd, [6, 5], 2, 2, [2, 1, 3, 0], 1.0, 0.2,
                                                False, False)


@needs_kernel
@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("cl", [False, True])
def test_float64_taps_are_applied_in_float64(sep, cl, device):
    """A float64 x with float64 taps is float64 throughout, forward and backward: random taps,
    which float32 cannot hold, would put the output ~1e-8 (relative) off the oracle if rounded.
    Any other x gets the taps rounded to float32, exactly as if it had been given them."""
    rng = torch.Generator().manual_seed(3)
    x, _, _, b, kw = make_case(rng, n=2, c=3, h=7, w=8, tu=6, td=6, pad=(5, 4, 5, 4), cl=cl)
    fu = torch.randn(6 if sep else (5, 6), generator=rng, dtype=torch.float64)
    fd = torch.randn(6 if sep else (6, 4), generator=rng, dtype=torch.float64)
    xd = x.to(device, copy=True).requires_grad_(True)
    y = filtered_lrelu(xd, fu.to(device), fd.to(device), b.to(device), clamp=1.5, **kw)
    assert_matches_oracle(y.cpu(), x, fu, fd, b, dict(kw, clamp=1.5))
    xr = x.clone().requires_grad_(True)
    yr = filtered_lrelu_ref(xr, fu, fd, b, clamp=1.5, **kw)
    torch.testing.assert_close(y.cpu(), yr, rtol=1e-12, atol=1e-12)
    gy = torch.randn(y.shape, generator=rng, dtype=torch.float64)
    (gx,) = torch.autograd.grad(y, xd, gy.to(device))
    (gxr,) = torch.autograd.grad(yr, xr, gy)
    torch.testing.assert_close(gx.cpu(), gxr, rtol=1e-12, atol=1e-12)
    x32 = x.float().to(device)
    torch.testing.assert_close(filtered_lrelu(x32, fu.to(device), fd.to(device), clamp=1.5, **kw),
                               filtered_lrelu(x32, fu.float().to(device), fd.float().to(device), clamp=1.5, **kw),
                               rtol=0, atol=0)


# --- CUDA ----------------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("cl", [False, True])
def test_cuda_matches_cpu(dtype, sep, cl):
    rng = torch.Generator().manual_seed(8)
    for up, down, tu, td, pad in [(2, 2, 12, 12, (9, 8, 9, 8)), (4, 2, 7, 5, (-2, 6, 3, 0)), (1, 3, 1, 16, (8, 8, 0, 8))]:
        x, fu, fd, b, kw = make_case(rng, n=2, c=3, h=9, w=10, up=up, down=down, tu=tu, td=td, sep=sep, pad=pad,
                                     dtype=dtype, cl=cl)
        want = filtered_lrelu(x, fu, fd, b, clamp=1.0, **kw)
        xc, bc = x.cuda().requires_grad_(), b.cuda().requires_grad_()
        got = filtered_lrelu(xc, fu.cuda(), fd.cuda(), bc, clamp=1.0, **kw)
        assert got.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        tol = {} if dtype in (torch.float32, torch.float64) else dict(rtol=2e-2, atol=2e-2)
        torch.testing.assert_close(got.cpu(), want, **tol)
        gy = torch.randn_like(want)
        gx, gb = torch.autograd.grad(got, [xc, bc], gy.cuda())
        xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
        wx, wb = torch.autograd.grad(filtered_lrelu(xr, fu, fd, br, clamp=1.0, **kw), [xr, br], gy)
        torch.testing.assert_close(gx.cpu(), wx, **tol)
        torch.testing.assert_close(gb.cpu(), wb, **(tol or dict(rtol=1e-4, atol=1e-4)))


@pytest.mark.cuda
@pytest.mark.parametrize("sep", [True, False])
def test_cuda_fused_tiles_and_fallback_match_cpu_exactly(sep):
    """Planes of several fused tiles (StyleGAN3-T's 36x36 layer; 70x45 with up 4) and one whose
    1x1 tile does not fit in shared memory (an 80x80 2-D fd in float64, the unfused path): the
    CUDA state must equal the CPU's byte for byte and the values match in float64, through the
    gradient and the second-order op."""
    rng = torch.Generator().manual_seed(10)
    cases = [dict(n=2, c=3, h=38, w=38, up=2, down=2, tu=12, td=12, pad=(9, 8, 9, 8)),
             dict(n=1, c=2, h=70, w=45, up=4, down=2, tu=24, td=12, pad=(13, 11, 13, 11))]
    if not sep:
        cases.append(dict(n=1, c=2, h=6, w=5, up=1, down=1, tu=3, td=80, pad=(40, 40, 40, 40)))
    for case in cases:
        x, fu, fd, b, kw = make_case(rng, sep=sep, dtype=torch.float64, cl=case["n"] == 1, **case)
        want, want_state = torch.ops.alae_fast.filtered_lrelu(x, fu, fd, b, kw["up"], kw["down"], kw["padding"],
                                                              1.4, 0.2, 0.9, False)
        got, got_state = torch.ops.alae_fast.filtered_lrelu(x.cuda(), fu.cuda(), fd.cuda(), b.cuda(), kw["up"],
                                                            kw["down"], kw["padding"], 1.4, 0.2, 0.9, False)
        torch.testing.assert_close(got.cpu(), want)
        assert torch.equal(got_state.cpu(), want_state)
        gy = torch.randn(want.shape, generator=rng, dtype=torch.float64)
        args = (list(x.shape[2:]), kw["up"], kw["down"], kw["padding"], 1.4, 0.2, False, True)
        wdx, wdb = torch.ops.alae_fast.filtered_lrelu_grad(gy, want_state, fu, fd, *args)
        gdx, gdb = torch.ops.alae_fast.filtered_lrelu_grad(gy.cuda(), got_state, fu.cuda(), fd.cuda(), *args)
        torch.testing.assert_close(gdx.cpu(), wdx)
        torch.testing.assert_close(gdb.cpu(), wdb)
        margs = (kw["up"], kw["down"], kw["padding"], 1.4, 0.2, False)
        wm = torch.ops.alae_fast.filtered_lrelu_masked(x, want_state, fu, fd, *margs)
        gm = torch.ops.alae_fast.filtered_lrelu_masked(x.cuda(), got_state, fu.cuda(), fd.cuda(), *margs)
        torch.testing.assert_close(gm.cpu(), wm)


@pytest.mark.cuda
def test_cuda_gradcheck_gradgradcheck():
    rng = torch.Generator().manual_seed(9)
    x, fu, fd, b, kw = make_case(rng, n=1, c=2, h=4, w=5, tu=3, td=4)
    x, b, fu, fd = x.cuda().requires_grad_(), b.cuda().requires_grad_(), fu.cuda(), fd.cuda()
    fn = lambda x, b: filtered_lrelu(x, fu, fd, b, clamp=0.8, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x, b), eps=1e-6, atol=1e-5)


# --- layer and compat entry ---------------------------------------------------------------------

def test_compat_signature_is_nvlabs():
    import inspect

    from alae_fast.compat import nvlabs
    sig = inspect.signature(nvlabs.filtered_lrelu)
    assert list(sig.parameters) == ["x", "fu", "fd", "b", "up", "down", "padding", "gain", "slope", "clamp",
                                    "flip_filter", "impl"]
    d = {k: p.default for k, p in sig.parameters.items()}
    assert d["fu"] is None and d["fd"] is None and d["b"] is None and d["clamp"] is None
    assert (d["up"], d["down"], d["padding"], d["slope"], d["flip_filter"], d["impl"]) == (1, 1, 0, 0.2, False, "cuda")
    assert d["gain"] == math.sqrt(2)


# ids without the word "cuda": conftest skips every test whose keywords hold it
@pytest.mark.parametrize("impl", ["cuda", "ref"], ids=["nvlabs-default-impl", "ref"])
def test_compat_matches_oracle(impl):
    from alae_fast.compat.nvlabs import filtered_lrelu as nv_filtered_lrelu
    rng = torch.Generator().manual_seed(12)
    x, fu, fd, b, kw = make_case(rng, tu=12, td=12, pad=(9, 8, 9, 8), h=8, w=8)
    y = nv_filtered_lrelu(x=x, fu=fu, fd=fd, b=b, up=2, down=2, padding=[9, 8, 9, 8], gain=math.sqrt(2), slope=0.2,
                          clamp=2.0, impl=impl)
    assert_matches_oracle(y, x, fu, fd, b, dict(kw, clamp=2.0))
    with pytest.raises(ValueError, match="impl must be"):
        nv_filtered_lrelu(x, impl="triton")


def test_compat_padding_takes_numpy_integers():
    # NVlabs' filtered_lrelu (unlike its upfirdn2d) accepts numpy integer padding entries
    # (``isinstance(x, (int, np.integer))``): paddings computed with numpy, as
    # networks_stylegan3.py's are, may be passed without int().
    from alae_fast.compat.nvlabs import filtered_lrelu as nv_filtered_lrelu
    rng = torch.Generator().manual_seed(13)
    x, fu, fd, b, kw = make_case(rng, tu=12, td=12, pad=(9, 8, 9, 8), h=8, w=8)
    ref = nv_filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 8, 9, 8])
    for padding in ([np.int64(9), np.int32(8), 9, np.int16(8)], (np.int64(9), 8, 9, 8)):
        torch.testing.assert_close(nv_filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=padding), ref, rtol=0, atol=0)
    pad2 = np.array([9, 9])
    torch.testing.assert_close(nv_filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[pad2[0], pad2[1]]),
                               nv_filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 9]), rtol=0, atol=0)
    # What NVlabs refuses stays refused: a numpy array, float entries, numpy integer up/down.
    for padding, exc in ((np.array([9, 8, 9, 8]), TypeError), ([9.0, 8, 9, 8], TypeError)):
        with pytest.raises(exc, match="padding"):
            nv_filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=padding)


@pytest.mark.parametrize("impl", ["cuda", "ref"], ids=["nvlabs-default-impl", "ref"])
def test_compat_refuses_what_nvlabs_asserts_against(impl):
    # NVlabs asserts gain > 0 and slope >= 0 in both its implementations; alae_fast's own op
    # computes any real gain and slope (checked here too), the NVlabs-signature shim must not.
    from alae_fast.compat.nvlabs import filtered_lrelu as nv_filtered_lrelu
    rng = torch.Generator().manual_seed(14)
    x, fu, fd, b, kw = make_case(rng, tu=12, td=12, pad=(9, 8, 9, 8), h=8, w=8)
    call = dict(up=2, down=2, padding=[9, 8, 9, 8], impl=impl)
    for gain in (0, 0.0, -1.0, np.float64(-0.5), float("nan")):
        with pytest.raises(ValueError, match=r"gain must be > 0 \(as NVlabs requires\)"):
            nv_filtered_lrelu(x, fu, fd, b, gain=gain, **call)
    for slope in (-0.2, np.float32(-1), float("nan")):
        with pytest.raises(ValueError, match=r"slope must be >= 0 \(as NVlabs requires\)"):
            nv_filtered_lrelu(x, fu, fd, b, slope=slope, **call)
    # the edges NVlabs allows: slope 0 (a ReLU), numpy scalars, a tiny positive gain
    for gain, slope in ((1.0, 0), (np.float64(0.5), np.float32(0.1)), (1e-3, 0.2)):
        y = nv_filtered_lrelu(x, fu, fd, b, gain=gain, slope=slope, **call)
        assert_matches_oracle(y, x, fu, fd, b, dict(kw, gain=float(gain), slope=float(slope)))
    # alae_fast's op itself keeps its wider domain: a negative slope and gain are computed
    y = filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[9, 8, 9, 8], gain=-1.5, slope=-0.3)
    assert_matches_oracle(y, x, fu, fd, b, dict(kw, gain=-1.5, slope=-0.3))


def test_synthesis_layer_nonlinearity_keeps_size_and_matches_reference():
    pytest.importorskip("scipy")
    from alae_fast.nn import FilteredLeakyReLU
    # A StyleGAN3-T layer at 36 samples: rate 16 in and out, intermediate rate 32.
    layer = FilteredLeakyReLU.for_synthesis_layer(2, in_size=36, out_size=36, in_sampling_rate=16,
                                                  out_sampling_rate=16, in_cutoff=8, out_cutoff=8,
                                                  in_half_width=4, out_half_width=4, conv_clamp=256)
    assert (layer.up, layer.down) == (2, 2) and layer.up_filter.shape == (12,)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(1, 2, 38, 38, dtype=torch.float64)  # the 3x3 convolution's output (36 + 2)
    y = layer(x)
    assert y.shape == (1, 2, 36, 36)
    want = filtered_lrelu_ref(x, layer.up_filter, layer.down_filter, layer.bias.double(), up=2, down=2,
                              padding=layer.padding, clamp=256)
    torch.testing.assert_close(y, want)
    y.sum().backward()
    assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0


@needs_kernel
def test_empty_batch_gives_zero_bias_gradient_on_both_paths():
    # Found by the fuzz: with N = 0 the reference's graph was cut (upfirdn2d_ref returned fresh
    # zeros), so b got no gradient there while the kernel gave the exact one, zeros.
    rng = torch.Generator().manual_seed(8)
    x, fu, fd, b, kw = make_case(rng, n=0, c=3, h=5, w=6)
    b.requires_grad_(True)
    for impl in ("auto", "ref"):
        y = filtered_lrelu(x.requires_grad_(True), fu, fd, b, impl=impl, **kw)
        assert y.shape[0] == 0
        gx, gb = torch.autograd.grad(y.sum(), [x, b])
        assert gx.shape == x.shape and torch.equal(gb, torch.zeros_like(b)), impl
