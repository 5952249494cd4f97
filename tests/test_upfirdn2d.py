"""upfirdn2d: kernel vs an independent numpy oracle of the definition (hypothesis over factors,
padding, filters, sizes, layouts and dtypes), gradients of any order, the torch.library
contract, torch.compile, the filter helpers and layers, and bad input."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alae_fast import _lib
from alae_fast.nn import Blur, Downsample, Upsample, set_impl
from alae_fast.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_ref, upsample2d
from alae_fast.testing import tolerances
from alae_fast_tests_oracles import upfirdn2d_np

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
needs_kernel = pytest.mark.skipif(not _lib.loaded(), reason="compiled library not loaded")
pytestmark = pytest.mark.usefixtures("one_thread_per_module")


def out_size(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down


def assert_matches(actual, expected, dtype, x64, f, gain):
    """|actual - expected| <= rtol*|expected| + atol*S with S = gain * sum|f|^(1 or 2) * max|x|,
    a bound on the output magnitude: half types round relative to it, not to each value."""
    rtol, atol = tolerances(dtype)
    if f is None:
        fsum = 1.0
    else:
        fa = np.abs(np.asarray(f, dtype=np.float64))
        fsum = fa.sum() ** (2 if fa.ndim == 1 else 1)
    scale = abs(gain) * fsum * max(float(np.abs(x64).max()), 1e-30)
    got = actual.detach().to("cpu", torch.float64).numpy()
    assert got.shape == expected.shape
    err = np.abs(got - expected)
    bound = rtol * np.abs(expected) + 4 * atol * scale
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert (err <= bound).all(), f"error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(["1d", "2d", "none"]))
    tx = draw(st.integers(1, 8))
    ty = draw(st.integers(1, 8)) if kind == "2d" else tx
    fw, fh = (1, 1) if kind == "none" else (tx, ty)
    up = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    down = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pad = tuple(draw(st.integers(-3, 5)) for _ in range(4))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(out_size(w, up[0], down[0], pad[0], pad[1], fw) >= 1)
    assume(out_size(h, up[1], down[1], pad[2], pad[3], fh) >= 1)
    return dict(kind=kind, fshape=None if kind == "none" else ((tx,) if kind == "1d" else (ty, tx)),
                up=up, down=down, pad=pad, shape=(draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 8])), h, w),
                flip=draw(st.booleans()), gain=draw(st.sampled_from([1.0, 0.5, 4.0])),
                layout=draw(st.sampled_from(["contiguous", "channels_last"])),
                dtype=draw(st.sampled_from(DTYPES)), f64=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def run_case(c, device, impl="auto"):
    gen = torch.Generator().manual_seed(c["seed"])
    x = torch.randn(c["shape"], generator=gen).to(c["dtype"])
    fdtype = torch.float64 if c.get("f64") else torch.float32
    f = None if c["fshape"] is None else torch.randn(c["fshape"], generator=gen, dtype=fdtype)
    xd = x.to(device)
    if c["layout"] == "channels_last":
        xd = xd.contiguous(memory_format=torch.channels_last)
    y = upfirdn2d(xd, None if f is None else f.to(device), list(c["up"]), list(c["down"]), list(c["pad"]),
                  c["flip"], c["gain"], impl=impl)
    x64 = x.double().numpy()
    # The taps the op applies: float64 ones to a float64 x (which float64's tolerance checks
    # to the last bits), float32 ones to every other x.
    fa = None if f is None else (f if c["dtype"] == torch.float64 else f.float()).double().numpy()
    expected = upfirdn2d_np(x64, fa, c["up"], c["down"], c["pad"], c["flip"], c["gain"])
    assert y.dtype == c["dtype"] and y.device.type == torch.device(device).type
    assert_matches(y, expected, c["dtype"], x64, fa, c["gain"])
    if c["layout"] == "channels_last" and c["shape"][1] > 1 and impl == "auto":
        assert y.is_contiguous(memory_format=torch.channels_last)


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(cases())
def test_kernel_matches_oracle_cpu(c):
    run_case(c, "cpu")


@needs_kernel
@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(2, 9), st.integers(8, 12))
def test_many_small_planes_match_oracle_cpu(c, n, ch):
    """NCHW batches of 16 or more planes of at most 64 pixels run planes-innermost on the CPU
    (csrc/cpu/upfirdn2d_kernels.h, run_nchw_planes_last), in chunks with an 8-plane tail."""
    h, w = min(c["shape"][2], 8), min(c["shape"][3], 8)
    fw, fh = (1, 1) if c["fshape"] is None else (c["fshape"][-1], c["fshape"][0])
    assume(out_size(w, c["up"][0], c["down"][0], c["pad"][0], c["pad"][1], fw) >= 1)
    assume(out_size(h, c["up"][1], c["down"][1], c["pad"][2], c["pad"][3], fh) >= 1)
    run_case(dict(c, shape=(n, ch, h, w), layout="contiguous"), "cpu")


@settings(max_examples=25, deadline=None)
@given(cases())
def test_reference_matches_oracle(c):
    run_case(c, "cpu", impl="ref")


@pytest.mark.cuda
@settings(max_examples=60, deadline=None)
@given(cases())
def test_kernel_matches_oracle_cuda(c):
    run_case(c, "cuda")


# Shapes large enough to split planes into several row blocks (wide rows), to use many
# planes per thread, and StyleGAN's own filters, through every CPU path.
@needs_kernel
@pytest.mark.parametrize("kind", ["2d", "separable", "outer"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("up,down", [((2, 2), (1, 1)), ((1, 1), (2, 2)), ((3, 1), (1, 2))])
def test_float64_taps_are_applied_in_float64(kind, layout, up, down, device):
    """A float64 x with float64 taps is float64 throughout: random taps, which float32 cannot
    hold, would put the output ~1e-8 (relative) off the oracle if the kernel rounded them. The
    outer product of two float64 rows goes through the rank-1 test of the CPU kernel."""
    gen = torch.Generator().manual_seed(5)
    row = torch.randn(5, generator=gen, dtype=torch.float64)
    f = {"2d": torch.randn(4, 5, generator=gen, dtype=torch.float64),
         "separable": torch.randn(6, generator=gen, dtype=torch.float64),
         "outer": torch.outer(torch.randn(3, generator=gen, dtype=torch.float64), row)}[kind]
    x = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    xd = x.to(device)
    if layout == "channels_last":
        xd = xd.contiguous(memory_format=torch.channels_last)
    pad = [2, 1, 3, -1]
    y = upfirdn2d(xd, f.to(device), list(up), list(down), pad, False, 1.5)
    expected = upfirdn2d_np(x.numpy(), f.numpy(), up, down, pad, False, 1.5)
    assert_matches(y, expected, torch.float64, x.numpy(), f.numpy(), 1.5)
    # Any other x gets the taps rounded to float32, exactly as if it had been given them.
    x32 = xd.float()
    torch.testing.assert_close(upfirdn2d(x32, f.to(device), list(up), list(down), pad, False, 1.5),
                               upfirdn2d(x32, f.float().to(device), list(up), list(down), pad, False, 1.5),
                               rtol=0, atol=0)


@needs_kernel
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("filt", ["binomial4", "sep8", "random2d", "none"])
@pytest.mark.parametrize("up,down", [((2, 2), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (1, 1)), ((3, 1), (2, 3))])
def test_large_and_blocked(layout, filt, up, down, device):
    gen = torch.Generator().manual_seed(1)
    f = {"binomial4": setup_filter([1, 3, 3, 1]), "sep8": setup_filter([1, 3, 5, 7, 7, 5, 3, 1]),
         "random2d": torch.randn(3, 5, generator=gen), "none": None}[filt]
    shape = (1, 2, 37, 2501) if layout != "channels_last" else (2, 9, 23, 71)
    x = torch.randn(shape, generator=gen)
    xd = x.to(device)
    if layout == "channels_last":
        xd = xd.contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        xd = torch.empty(shape[0], shape[1], shape[2], 2 * shape[3], device=device)[..., ::2].copy_(xd)
    pad = [2, 1, -1, 3]
    prev = torch.get_num_threads()
    torch.set_num_threads(2)  # several threads, each with several work units
    try:
        y = upfirdn2d(xd, None if f is None else f.to(device), list(up), list(down), pad, False, 1.0)
    finally:
        torch.set_num_threads(prev)
    expected = upfirdn2d_np(x.double().numpy(), None if f is None else f.double().numpy(), up, down, pad)
    assert_matches(y, expected, torch.float32, x.numpy(), None if f is None else f.numpy(), 1.0)


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [2, 3, 8])
def test_channels_last_few_channels_routes(c, dtype):
    # A channels_last tensor of at most 8 channels, planes of more than 64 pixels, whose rows the
    # NHWC engine cannot filter by polyphase class (a 2-D filter that is no outer product, up or
    # down 3) is transposed to NCHW, filtered by the row engine and transposed back
    # (csrc/cpu/upfirdn2d.cpp, few_channels): bit for bit the contiguous computation. Separable
    # filters with factors 1 and 2 stay in the NHWC engine (vertical pass first, so they round
    # differently from the contiguous result): against the float64 oracle, in the output's layout,
    # through the gradient too. 13 x 11 = 143 pixels: the transposes' 8 x 64 tiles have whole and
    # partial edges.
    gen = torch.Generator().manual_seed(c)
    x = torch.randn(3, c, 13, 11, generator=gen).to(dtype)
    xl = x.contiguous(memory_format=torch.channels_last)
    x64 = x.double().numpy()
    filters = {"separable": setup_filter([1, 3, 3, 1]), "2d": torch.rand(3, 4, generator=gen) + 0.1}
    settings_ = [(2, 1, [2, 1, 2, 1]), (2, 1, [1, 2, 1, 1]), (1, 2, [1, 1, 1, 1]), (1, 2, [2, 1, 0, 2]),
                 (1, 1, [1, 2, 1, 1]), (1, 1, [2, 1, 2, 1]), (3, 1, [1, 2, 1, 1]), (1, 3, [2, 1, 2, 1])]
    for (name, f), (up, down, pad) in zip(list(filters.items()) * 4, settings_):
        y = upfirdn2d(x, f, up, down, pad)
        yl = upfirdn2d(xl, f, up, down, pad)
        assert yl.is_contiguous(memory_format=torch.channels_last), (name, up, down)
        if name == "2d" or 3 in (up, down):
            assert torch.equal(y, yl), (name, up, down, dtype)
        else:
            assert_matches(yl, upfirdn2d_np(x64, f.double().numpy(), (up, up), (down, down), pad), dtype, x64,
                           f.numpy(), 1.0)
    xlg = xl.detach().requires_grad_()
    f = filters["separable"]
    v = torch.randn(3, c, 26, 22, generator=gen).to(dtype)
    (gl,) = torch.autograd.grad(upsample2d(xlg, f), xlg, v.contiguous(memory_format=torch.channels_last))
    assert gl.is_contiguous(memory_format=torch.channels_last)
    # the gradient of upsample2d is a 2x2 down-sampling of v by the flipped, gain-4 filter
    grad64 = upfirdn2d_ref(v.double(), f.double(), 1, 2, [1, 2, 1, 2], gain=4.0)
    assert_matches(gl, grad64.numpy(), dtype, v.double().numpy(), f.numpy(), 4.0)
    if dtype == torch.float64:
        torch.testing.assert_close(upsample2d(xl, f), upfirdn2d_ref(x, f, 2, 1, [2, 1, 2, 1], gain=4.0))


@needs_kernel
@pytest.mark.parametrize("c", [1, 3, 7, 8, 9, 16, 17])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_channels_last_rows_by_class(c, up, down):
    # The NHWC engine's per-class horizontal pass (csrc/cpu/upfirdn2d_kernels.h, hpass_pixels):
    # one loop over a row's W*C values for up = down = 1, pixel by pixel along C from 8 channels
    # on, flat into a buffer and copied out below 8; every tap count a class takes (up to 8, so
    # 16 for up 2), paddings that cut into the input and that reach past it, and margins past
    # 64 pixels, where the engine keeps its per-pixel sums. Float64 against the oracle, float32
    # within its rounding.
    gen = torch.Generator().manual_seed(100 * c + 10 * up + down)
    x = torch.randn(2, c, 7, 23, generator=gen, dtype=torch.float64)
    xl = x.contiguous(memory_format=torch.channels_last)
    for taps in range(1, 8 * up + 1):
        f = torch.rand(taps, generator=gen, dtype=torch.float64) + 0.1
        for pad in ([taps // 2, (taps - 1) // 2, taps, 1], [-3, taps + 2, 0, taps], [70, 2, taps, 0], [1, 66, 1, taps]):
            expected = upfirdn2d_np(x.numpy(), f.numpy(), (up, up), (down, down), pad)
            for dtype in (torch.float64, torch.float32):
                y = upfirdn2d(xl.to(dtype), f, up, down, pad)
                assert y.is_contiguous(memory_format=torch.channels_last)
                assert_matches(y, expected, dtype, x.numpy(), f.numpy(), 1.0)


@needs_kernel
def test_thread_count_does_not_change_result():
    x = torch.randn(3, 5, 33, 31)
    f = setup_filter([1, 3, 3, 1])
    prev = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = upsample2d(x, f)
        torch.set_num_threads(2)
        many = upsample2d(x, f)
    finally:
        torch.set_num_threads(prev)
    assert torch.equal(one, many)


# --- every tap count, factor, layout and dtype (issue 17) --------------------------------------------
# The CPU kernel specialises on taps <= 8 per horizontal pass, sums more than 8 rows through a
# scratch row in chunks of 8, picks vertical-first for separable filters with down >= up, and
# converts through the accumulation type for the half types; the CUDA kernel specialises
# isotropic up 2 / down 2 / 1 with <= 8 taps. A 9-tap separable down-2 filter once overran
# the scratch row. The grid below crosses each of those boundaries: for every tap count
# 1..16 (and 17, 24: two and three chunks), separable and 2-D, every dtype, it runs all 16
# (up, down) pairs of 1..4 on the x axis, each once with the same pair on y and once with
# another, in both layouts, with paddings cycling through -4..8; forward, backward and double
# backward against upfirdn2d_ref in float64.

UD_PAIRS = [(u, d) for u in range(1, 5) for d in range(1, 5)]


def grid_settings(taps_x, taps_y, shape, layouts=("contiguous", "channels_last")):
    """(up, down, pad, layout) settings of one tap count: 16 pairs on x x {the same pair on
    y, another} x layouts (with one layout: the two alternate, so each pair meets both),
    paddings drawn deterministically from -4..8 (raised at the end where an axis would have
    no output)."""
    out = []
    for i, (ux, dx) in enumerate(UD_PAIRS):
        for j, (uy, dy) in enumerate([(ux, dx), UD_PAIRS[(5 * i + 3) % 16]]):
            for k, layout in enumerate(layouts if len(layouts) > 1 else [("contiguous", "channels_last")[(i + j) % 2]]):
                m = 4 * i + 2 * j + k
                pad = [-4 + (m * 7 + 3 * q * q) % 13 for q in range(4)]
                for a, (n, u, d, t) in enumerate(((shape[3], ux, dx, taps_x), (shape[2], uy, dy, taps_y))):
                    while out_size(n, u, d, pad[2 * a], pad[2 * a + 1], t) < 1:
                        pad[2 * a + 1] += 1
                out.append(([ux, uy], [dx, dy], pad, layout))
    return out


def grid_filter(kind, taps, gen):
    if kind == "separable":
        return torch.rand(taps, generator=gen) + 0.1
    return torch.rand(max(1, taps - 3) if taps > 3 else taps, taps, generator=gen) + 0.1  # non-square 2-D


def check_against_ref(x, f, up, down, pad, layout, dtype, flip=False, gain=1.0, orders=2, gen=None):
    """upfirdn2d on x (dtype, layout) vs upfirdn2d_ref in float64 on the same rounded values:
    forward, then (orders >= 1) the vector-Jacobian product, then (orders >= 2) the derivative
    of that product with respect to its cotangent (the double backward of a linear op)."""
    rtol, atol = tolerances(dtype)
    xk = x.to(dtype)
    if layout == "channels_last":
        xk = xk.contiguous(memory_format=torch.channels_last)
    xr = xk.detach().double().requires_grad_()
    xk = xk.detach().requires_grad_()
    yk = upfirdn2d(xk, f, up, down, pad, flip, gain)
    yr = upfirdn2d_ref(xr, f, up, down, pad, flip, gain)

    def close(a, b, what):
        scale = float(b.detach().abs().max()) if b.numel() else 1.0
        err = (a.detach().double() - b.detach()).abs()
        bound = 8 * (rtol * b.detach().abs() + atol * max(scale, 1e-30)) * (1 + f.numel() ** 0.5 / 4)
        assert bool((err <= bound).all()), (f"{what}: error {float(err.max()):.3g} (max |ref| {scale:.3g}) "
                                            f"up={up} down={down} pad={pad} {layout} {dtype} f={tuple(f.shape)}")

    close(yk, yr, "forward")
    assert yk.dtype == dtype and yk.shape == yr.shape
    if orders < 1:
        return
    v = torch.randn(yr.shape, generator=gen, dtype=torch.float64).to(x.device, dtype)
    vk, vr = v.clone().requires_grad_(), v.double().requires_grad_()
    (gk,) = torch.autograd.grad(yk, xk, vk, create_graph=orders >= 2)
    (gr,) = torch.autograd.grad(yr, xr, vr, create_graph=orders >= 2)
    close(gk, gr, "backward")
    if orders < 2:
        return
    w = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.device, dtype)
    (ggk,) = torch.autograd.grad(gk, vk, w)
    (ggr,) = torch.autograd.grad(gr, vr, w.double())
    close(ggk, ggr, "double backward")


@needs_kernel
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["separable", "2d"])
@pytest.mark.parametrize("taps", list(range(1, 18)))
def test_every_taps_factor_layout(taps, kind, dtype, device):
    # 32 settings per item; float32 and float64 also check the backward and double backward
    # on half of them (every x pair once, the same pair on y); the half types differ from
    # them only in the conversions, checked forward. The slow test below runs every combination.
    gen = torch.Generator().manual_seed(taps)
    f = grid_filter(kind, taps, gen).to(device)
    # 3 or 9 channels: the CPU runs a channels_last tensor of at most 8 through NCHW planes,
    # one of more in its NHWC engine; odd and even tap counts share the grid between the two.
    shape = (1, 3 if taps % 2 else 9, 13 + taps % 5, 19 - taps % 4)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    half = dtype in (torch.float16, torch.bfloat16)
    for n, (up, down, pad, layout) in enumerate(grid_settings(f.shape[-1], f.shape[0], shape, layouts=("one",))):
        check_against_ref(x, f, up, down, pad, layout, dtype, flip=n % 3 == 0, gain=(1.0, 2.0)[n % 2],
                          orders=2 if n % 2 == 0 and not half else 0, gen=gen)


def test_issue_17_case():
    # NCHW, a 9-tap separable filter, down 2: the vertical-first scratch row was sized by the
    # output columns (8) but summed over the input columns (16).
    gen = torch.Generator().manual_seed(17)
    x = torch.randn(1, 3, 16, 16, generator=gen)
    f = torch.rand(9, generator=gen) + 0.1
    y = upfirdn2d(x, f, down=2)
    torch.testing.assert_close(y, upfirdn2d_ref(x, f, down=2))
    for taps in (9, 12):  # ADA's 12-tap down-2 filter, and the backward of an up-2
        f = torch.rand(taps, generator=gen) + 0.1
        xg = torch.randn(2, 3, 16, 16, generator=gen, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(upsample2d(xg, f).square().sum(), xg)
        (gr,) = torch.autograd.grad(upsample2d(xg, f, impl="ref").square().sum(), xg)
        torch.testing.assert_close(g, gr)


@pytest.mark.parametrize("taps", [9, 12, 16])
def test_gradcheck_many_taps(taps, device):
    gen = torch.Generator().manual_seed(taps)
    f = (torch.rand(taps, generator=gen) + 0.1).to(device)
    x = torch.randn(1, 1, 8, 14, dtype=torch.float64, device=device, requires_grad=True)
    fn = lambda t: upfirdn2d(t, f, [1, 2], [2, 1], [3, 2, 1, 4])  # x: down 2 (vertical-first), y: up 2
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@needs_kernel
@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["separable", "2d"])
@pytest.mark.parametrize("taps", list(range(1, 17)) + [24])
def test_every_taps_factor_layout_exhaustive(taps, kind, dtype, device):
    # Every (up, down) pair on x times every pair on y, both layouts, two paddings each.
    gen = torch.Generator().manual_seed(100 + taps)
    f = grid_filter(kind, taps, gen).to(device)
    shape = (2, 3 if taps % 2 else 9, 12 + taps % 7, 17 + taps % 3)  # both channels_last routes, as above
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(device)
    for n, ((ux, dx), (uy, dy), layout, p) in enumerate(
            (a, b, l, p) for a in UD_PAIRS for b in UD_PAIRS for l in ("contiguous", "channels_last") for p in range(2)):
        pad = [-4 + (n * 5 + 7 * q + p * 6) % 13 for q in range(4)]
        for a, (m, u, d, t) in enumerate(((shape[3], ux, dx, f.shape[-1]), (shape[2], uy, dy, f.shape[0]))):
            while out_size(m, u, d, pad[2 * a], pad[2 * a + 1], t) < 1:
                pad[2 * a + 1] += 1
        check_against_ref(x, f, [ux, uy], [dx, dy], pad, layout, dtype, flip=n % 2 == 1, orders=2, gen=gen)


@pytest.mark.parametrize("kwargs,match", [
    (dict(up=[2**17, 1]), "up must be >= 1 and <= 65536"),
    (dict(down=[1, 2**40]), "down must be >= 1 and <= 65536"),
    (dict(padding=[0, 2**31, 0, 0]), "padding must be within"),
    (dict(padding=[-(2**62), 2**62, 0, 0]), "padding must be within"),
    # each entry within its bound, the output past what a tensor can address
    (dict(padding=[10**9] * 4), r"would take more bytes than a tensor can address"),
    (dict(up=[65536, 65536], padding=[2**30] * 4), r"would take more bytes than a tensor can address"),
])
@needs_kernel
def test_absurd_arguments_are_rejected_not_overflowed(kwargs, match):
    args = dict(f=None, up=[1, 1], down=[1, 1], padding=[0, 0, 0, 0])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        torch.ops.alae_fast.upfirdn2d(X, args["f"], args["up"], args["down"], args["padding"], False, 1.0)


@pytest.mark.parametrize("call", ["upfirdn2d", "upsample2d", "filter2d"])
def test_a_padding_whose_output_overflows_names_the_op(call):
    # a trial's case: padding 10**9 is within the kernel's bound, its output is not addressable;
    # refused before any kernel runs, naming the function called (torch had said "Storage size
    # calculation overflowed" and nothing else)
    x, f = torch.randn(2, 3, 8, 8), setup_filter([1, 3, 3, 1])
    fn = {"upfirdn2d": lambda: upfirdn2d(x, f, padding=10**9), "upsample2d": lambda: upsample2d(x, f, padding=10**9),
          "filter2d": lambda: filter2d(x, f, padding=10**9)}[call]
    with pytest.raises(ValueError, match=rf"^{call}: the output \[2, 3, .*\] .* would take .* bytes, past what a "
                                         rf"tensor can address \(2\*\*63\)$"):
        fn()


# --- gradients -------------------------------------------------------------------------------------

GRAD_CASES = [
    (torch.randn(4), [2, 2], [1, 1], [2, 1, 2, 1]),
    (torch.randn(3, 4), [1, 1], [2, 2], [1, 1, 0, 2]),
    (torch.randn(5), [3, 2], [2, 3], [-1, 2, 3, -2]),
    (None, [2, 1], [1, 2], [0, 1, 1, 0]),
    (torch.randn(2, 3), [1, 1], [1, 1], [1, 1, 1, 1]),
]


@pytest.mark.parametrize("f,up,down,pad", GRAD_CASES)
@pytest.mark.parametrize("flip", [False, True])
def test_gradcheck_and_gradgradcheck(f, up, down, pad, flip, device):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, device=device)
    for layout in ("contiguous", "channels_last"):
        xl = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
        xl = xl.detach().requires_grad_()
        fd = None if f is None else f.to(device)
        fn = lambda t: upfirdn2d(t, fd, up, down, pad, flip, 1.5)
        assert torch.autograd.gradcheck(fn, (xl,))
        assert torch.autograd.gradgradcheck(fn, (xl,))


@needs_kernel
def test_third_order_runs_on_kernels():
    # upfirdn2d is linear: the gradient of order k is the op (or its adjoint) applied to the
    # incoming gradient, so every order is checked against the reference's autograd.
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 2, 12, 14, dtype=torch.float64, requires_grad=True)

    def third(fn):
        y = fn(x)
        (g,) = torch.autograd.grad((y * v).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad((g * g).sum(), v, create_graph=True)
        (ggg,) = torch.autograd.grad((gg ** 2).sum(), v)
        return ggg

    got = third(lambda t: upsample2d(t, f))
    want = third(lambda t: upsample2d(t, f, impl="ref"))
    torch.testing.assert_close(got, want)


def test_filter_gets_its_gradient():
    # The filter's gradient is computed on the kernel path too (tests/test_op_gradients.py
    # checks it in depth, with gradcheck); here: upsample2d, against the reference.
    x = torch.randn(1, 1, 4, 4, requires_grad=True)
    grads = []
    for impl in ("auto", "ref"):
        f = setup_filter([1, 3, 3, 1]).requires_grad_()
        upsample2d(x, f, impl=impl).square().sum().backward()
        grads.append(f.grad)
    assert x.grad is not None and grads[0] is not None
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-5)


# --- torch.library contract and torch.compile -------------------------------------------------------

@needs_kernel
@pytest.mark.parametrize("args", [
    dict(f=torch.randn(4), up=[2, 2], down=[1, 1], pad=[2, 1, 2, 1], cl=False),
    dict(f=torch.randn(3, 2), up=[1, 3], down=[2, 1], pad=[0, -1, 3, 2], cl=True),
    dict(f=None, up=[1, 1], down=[2, 2], pad=[0, 0, 0, 0], cl=False),
])
def test_opcheck(args):
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    if args["cl"]:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.library.opcheck(torch.ops.alae_fast.upfirdn2d.default,
                          (x, args["f"], args["up"], args["down"], args["pad"], False, 2.0))


@needs_kernel
def test_torch_compile_fullgraph_forward_backward():
    f = setup_filter([1, 3, 3, 1])

    def fn(x):
        return downsample2d(upsample2d(x, f), f).square().sum()

    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), fn(x))
    torch.testing.assert_close(torch.autograd.grad(compiled(x), x)[0], torch.autograd.grad(fn(x), x)[0])


@needs_kernel
def test_torch_compile_inductor_channels_last():
    f = setup_filter([1, 2, 1])
    fn = lambda x: filter2d(upsample2d(x, f), f, padding=1)
    x = torch.randn(2, 4, 6, 5).contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(fn, fullgraph=True)
    got = compiled(x)
    torch.testing.assert_close(got, fn(x))
    assert got.is_contiguous(memory_format=torch.channels_last)


# --- filter helpers and layers ---------------------------------------------------------------------

def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)
    f8 = setup_filter(list(range(1, 9)))
    assert f8.ndim == 1 and abs(float(f8.sum()) - 1) < 1e-6  # >= 8 taps stay separable
    assert setup_filter([1, 2], separable=True).ndim == 1
    torch.testing.assert_close(setup_filter([1, 2], normalize=False, flip_filter=True), torch.tensor([[4., 2], [2, 1]]))
    torch.testing.assert_close(setup_filter([1, 3], normalize=False, separable=True, gain=4), torch.tensor([2., 6]))
    torch.testing.assert_close(setup_filter(None), torch.ones(1, 1))
    torch.testing.assert_close(setup_filter(2.0, normalize=False), torch.full((1, 1), 4.0))  # outer([2], [2])


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 3, 5, 7, 7, 5, 3, 1], [2]])
def test_helpers_match_oracle(taps, device):
    f = setup_filter(taps, device=device)
    fn = f.double().cpu().numpy()
    k = len(taps)
    x = torch.randn(2, 3, 8, 10, dtype=torch.float64)
    xd = x.to(device)
    y = upsample2d(xd, f)
    assert y.shape == (2, 3, 16, 20)
    e = upfirdn2d_np(x, fn, (2, 2), (1, 1), ((k + 1) // 2, (k - 2) // 2, (k + 1) // 2, (k - 2) // 2), gain=4)
    np.testing.assert_allclose(y.cpu().numpy(), e, rtol=1e-9, atol=1e-12)
    y = downsample2d(xd, f)
    assert y.shape == (2, 3, 4, 5)
    e = upfirdn2d_np(x, fn, (1, 1), (2, 2), ((k - 1) // 2, (k - 2) // 2, (k - 1) // 2, (k - 2) // 2))
    np.testing.assert_allclose(y.cpu().numpy(), e, rtol=1e-9, atol=1e-12)
    y = filter2d(xd, f, padding=[1, 0, 2, 1])
    assert y.shape == (2, 3, 11, 11)
    e = upfirdn2d_np(x, fn, padding=(1 + k // 2, (k - 1) // 2, 2 + k // 2, 1 + (k - 1) // 2))
    np.testing.assert_allclose(y.cpu().numpy(), e, rtol=1e-9, atol=1e-12)
    if k == 1:
        return  # a 1-tap upsampler only inserts zeros
    # a constant image stays constant away from the borders
    ones = torch.ones(1, 1, 12, 12, dtype=torch.float64, device=device)
    np.testing.assert_allclose(upsample2d(ones, f)[..., 6:-6, 6:-6].cpu().numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(downsample2d(ones, f)[..., 2:-2, 2:-2].cpu().numpy(), 1.0, rtol=1e-12)


def test_layers(device):
    x = torch.randn(2, 3, 8, 8, device=device)
    k = torch.tensor([1., 3, 3, 1])
    k2 = (torch.outer(k, k) / 64).double().numpy()
    up, down, blur = Upsample().to(device), Downsample().to(device), Blur(pad=(2, 1), upsample_factor=2).to(device)
    assert set(up.state_dict()) == {"kernel"}
    x64 = x.double().cpu().numpy()
    np.testing.assert_allclose(up(x).cpu().numpy(), upfirdn2d_np(x64, k2, (2, 2), (1, 1), (2, 1, 2, 1), gain=4),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(down(x).cpu().numpy(), upfirdn2d_np(x64, k2, (1, 1), (2, 2), (1, 1, 1, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(blur(x).cpu().numpy(), upfirdn2d_np(x64 * 4, k2, padding=(2, 1, 2, 1)), rtol=1e-5, atol=1e-5)
    assert Blur()(x.cpu()).shape == x.shape
    ref_up = set_impl(Upsample().to(device), "ref")
    torch.testing.assert_close(ref_up(x), up(x))
    xcl = x.contiguous(memory_format=torch.channels_last)
    assert down(xcl).is_contiguous(memory_format=torch.channels_last) or not _lib.loaded()
    with pytest.raises(ValueError, match="factor"):
        Upsample(factor=0)
    with pytest.raises(ValueError, match="kernel"):
        Blur(kernel=[[[1.0]]])
    with pytest.raises(ValueError, match="pad"):
        Blur(pad=(1, 2, 3))


def test_half_dtype_module_keeps_working():
    m = Downsample().half()  # the kernel buffer becomes float16; upfirdn2d takes it as float32
    x = torch.randn(1, 2, 8, 8).half()
    torch.testing.assert_close(m(x).float(), Downsample()(x.float()), rtol=2e-3, atol=2e-3)


# --- bad input -------------------------------------------------------------------------------------

X = torch.randn(1, 2, 4, 4)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(padding=-3), ValueError, "padding"),              # output size <= 0
    (dict(f=torch.ones(2, 2, 2)), ValueError, "f must be 1-D"),
    (dict(x=torch.randn(2, 4, 4)), ValueError, "x must be 4-D"),
    (dict(x=torch.randn(1, 1, 2, 4, 4)), ValueError, "x must be 4-D"),
    (dict(up=0), ValueError, "up must be >= 1"),
    (dict(up=[1, 0]), ValueError, "up must be >= 1"),
    (dict(down=0), ValueError, "down must be >= 1"),
    (dict(down=[2, 2, 2]), ValueError, "down must be"),
    (dict(padding=[1, 2, 3]), ValueError, "padding must be"),
    (dict(padding=[1, 2, 3, 4, 5]), ValueError, "padding must be"),
    (dict(f=torch.ones(3, dtype=torch.int64)), TypeError, "f must be a floating-point"),
    (dict(f=torch.ones(0)), ValueError, "f must not be empty"),
    (dict(f=torch.ones(3, device="meta")), ValueError, "f must be on x's device"),
    (dict(f=[1, 2, 1]), TypeError, "f must be a torch.Tensor"),
    (dict(x=torch.ones(1, 1, 4, 4, dtype=torch.int32)), TypeError, "x must have dtype"),
    (dict(up=1.5), TypeError, "up must be"),
    (dict(flip_filter=1), TypeError, "flip_filter"),
    (dict(gain=float("nan")), ValueError, "gain"),
    (dict(impl="cuda"), ValueError, "impl must be"),
])
@pytest.mark.parametrize("fn", [upfirdn2d, upfirdn2d_ref])
def test_bad_arguments(kwargs, exc, match, fn):
    args = dict(x=X, f=torch.ones(3))
    args.update(kwargs)
    if fn is upfirdn2d_ref:
        if "impl" in args:
            return
    with pytest.raises(exc, match=match):
        fn(**args)


@needs_kernel
@pytest.mark.parametrize("args,match", [
    ((X, torch.ones(2, 2, 2), [1, 1], [1, 1], [0, 0, 0, 0], False, 1.0), "f must be 1-D"),
    ((X[0], None, [1, 1], [1, 1], [0, 0, 0, 0], False, 1.0), "x must be 4-D"),
    ((X, None, [0, 1], [1, 1], [0, 0, 0, 0], False, 1.0), "up must be >= 1"),
    ((X, None, [1, 1], [1, 0], [0, 0, 0, 0], False, 1.0), "down must be >= 1"),
    ((X, None, [1, 1], [1, 1], [0, 0, 0], False, 1.0), "padding must be"),
    ((X, torch.ones(2, dtype=torch.int32), [1, 1], [1, 1], [0, 0, 0, 0], False, 1.0), "f must be a floating"),
    ((X, None, [1, 1], [1, 1], [-2, -2, 0, 0], False, 1.0), "padding leaves no output"),
])
def test_registered_op_checks_too(args, match):
    with pytest.raises(ValueError, match=match):
        torch.ops.alae_fast.upfirdn2d(*args)


def test_helpers_bad_arguments():
    with pytest.raises(ValueError, match="up must be >= 1"):
        upsample2d(X, None, up=0)
    with pytest.raises(ValueError, match="down must be >= 1"):
        downsample2d(X, None, down=[2, 0])
    with pytest.raises(ValueError, match="padding"):
        filter2d(X, None, padding=[1, 2, 3])
    with pytest.raises(ValueError, match="f must be 1-D"):
        filter2d(X, torch.ones(1, 1, 1))
    with pytest.raises(ValueError, match="setup_filter"):
        setup_filter(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="non-zero sum"):
        setup_filter([1, -1])


def test_empty_batch_and_empty_image():
    f = setup_filter([1, 3, 3, 1])
    y = upsample2d(torch.randn(0, 3, 4, 4), f)
    assert y.shape == (0, 3, 8, 8)
    # only padding reaches the output of a 0-wide image
    y = upfirdn2d(torch.randn(1, 2, 3, 0), None, padding=[2, 1, 0, 0])
    assert y.shape == (1, 2, 3, 3) and (y == 0).all()


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("shape", [(0, 4, 8, 8), (2, 0, 8, 8)])
@pytest.mark.parametrize("taps", [(4,), (4, 4)])
def test_filter_gradient_of_an_empty_batch(impl, shape, taps):
    # No images: the filter still gets its gradient, zeros of its shape, whether or not x
    # requires grad too, on both paths.
    f = torch.rand(*taps, requires_grad=True)
    for x_grad in (False, True):
        x = torch.randn(*shape, requires_grad=x_grad)
        y = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], impl=impl)
        assert y.requires_grad
        grads = torch.autograd.grad(y.sum(), (f, x) if x_grad else (f,))
        assert grads[0].shape == f.shape and not grads[0].any()
        if x_grad:
            assert grads[1].shape == x.shape


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("shape, kwargs", [
    ((1, 2, 0, 5), dict(padding=[4, 4, 4, 4])),
    ((2, 3, 3, 0), dict(up=2, padding=[3, 3, 3, 3])),
    ((1, 1, 0, 0), dict(down=2, padding=[5, 5, 5, 5]))])
@pytest.mark.parametrize("taps", [(4,), (4, 4)])
def test_gradients_of_an_empty_plane_padded_into_an_output(impl, shape, kwargs, taps):
    # An empty plane whose padding alone makes the output: x's gradient is the empty tensor of its
    # shape (its adjoint upfirdn2d would have to make an empty plane, which upfirdn2d refuses),
    # the filter's and the second order as the reference's, in float64.
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    f = (torch.rand(*taps, dtype=torch.float64) + 0.1).requires_grad_(True)
    y = upfirdn2d(x, f, impl=impl, **kwargs)
    assert y.shape[2] > 0 and y.shape[3] > 0 and not y.any()
    g = torch.randn_like(y)
    gx, gf = torch.autograd.grad(y, (x, f), g, create_graph=True)
    gx_ref, gf_ref = torch.autograd.grad(upfirdn2d_ref(x, f, **kwargs), (x, f), g, create_graph=True)
    assert gx.shape == x.shape and gf.shape == f.shape
    torch.testing.assert_close(gf, gf_ref)
    assert torch.autograd.gradcheck(lambda a, b: upfirdn2d(a, b, impl=impl, **kwargs), (x, f))
    assert torch.autograd.gradgradcheck(lambda a, b: upfirdn2d(a, b, impl=impl, **kwargs), (x, f))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(gain=float("nan")), ValueError, "setup_filter: gain must be a finite real number"),
    (dict(gain=float("inf")), ValueError, "gain must be a finite"),
    (dict(gain="2"), TypeError, "gain must be a finite"),
    (dict(gain=-4.0, separable=True), ValueError, "separable filter carries sqrt.gain. per axis"),
    (dict(f=list(range(1, 9)), gain=-1.0), ValueError, "gain must be >= 0"),  # 8 taps: separable by default
    (dict(f="abc"), TypeError, "setup_filter: f must be a number"),
])
def test_setup_filter_bad_arguments(kwargs, exc, match):
    args = dict(f=[1, 2, 1])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        setup_filter(**args)


def test_setup_filter_negative_gain_of_a_2d_filter():
    # A 2-D result carries gain itself: a negative one is fine there.
    torch.testing.assert_close(setup_filter([1, 2, 1], gain=-2.0), -2.0 * setup_filter([1, 2, 1]))
