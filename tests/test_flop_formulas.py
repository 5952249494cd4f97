"""FLOP formulas of the custom ops (alae_fast.ops.flops): FlopCounterMode counts each op by the
formula, the formula agrees with an independent count (torch's own count of a plain-torch
reference where one computes the same arithmetic, a brute-force count of the taps elsewhere),
and the adjoint paddings the gradient's count assumes are the adjoint's."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from alae_fast import _lib, ops
from alae_fast.ops import flops

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not _lib.loaded(), reason="needs the compiled library (the ops are its)")]


def _count(fn, *args, **kwargs) -> tuple[int, dict]:
    with FlopCounterMode(display=False) as mode:
        fn(*args, **kwargs)
    return mode.get_total_flops(), {str(k): v for k, v in mode.get_flop_counts()["Global"].items()}


def _case(rng: random.Random, *, up_one: bool = False):
    N, C = rng.randint(1, 2), rng.randint(1, 3)
    H, W = rng.randint(1, 9), rng.randint(1, 9)
    ux, uy = (1, 1) if up_one else (rng.randint(1, 3), rng.randint(1, 3))
    dx, dy = rng.randint(1, 3), rng.randint(1, 3)
    separable = rng.random() < 0.5
    fh = rng.randint(1, 6)
    fw = fh if separable else rng.randint(1, 6)
    f = torch.rand(fh) + 0.1 if separable else torch.rand(fh, fw) + 0.1
    while True:
        pad = [rng.randint(-3, 5) for _ in range(4)]
        ow = (W * ux + pad[0] + pad[1] - fw + dx) // dx
        oh = (H * uy + pad[2] + pad[3] - fh + dy) // dy
        if ow >= 1 and oh >= 1:
            break
    return torch.randn(N, C, H, W), f, [ux, uy], [dx, dy], pad


def _indicator(n: int, up: int, pad0: int, pad1: int) -> torch.Tensor:
    """The padded, zero-inserted axis built as a tensor: 1 where an input sample or padding is."""
    z = torch.zeros(n * up)
    z[::up] = 1
    z = F.pad(z[None, None], [max(pad0, 0), max(pad1, 0)], value=1.0)[0, 0]  # padding counts
    return z[max(-pad0, 0): z.shape[0] - max(-pad1, 0)]


def _brute_force(x, f, up, down, pad) -> int:
    """Counted multiply-adds by convolving indicator images with filters of ones: a 2-D filter
    over the padded, zero-inserted image; a separable one as two passes, along x on every padded
    row that holds samples or padding, then along y on every output column."""
    N, C, H, W = x.shape
    ix, iy = _indicator(W, up[0], pad[0], pad[1]).double(), _indicator(H, up[1], pad[2], pad[3]).double()
    if f.ndim == 2:
        img = (iy[:, None] * ix[None, :])[None, None]
        n = F.conv2d(img, torch.ones(1, 1, *f.shape, dtype=torch.float64), stride=down[::-1]).sum()
    else:
        k = f.shape[0]
        along_x = F.conv1d(ix[None, None], torch.ones(1, 1, k, dtype=torch.float64), stride=down[0])[0, 0]
        along_y = F.conv1d(iy[None, None], torch.ones(1, 1, k, dtype=torch.float64), stride=down[1])[0, 0]
        n = iy.sum() * along_x.sum() + along_x.shape[0] * along_y.sum()
    return 2 * N * C * int(n)


@pytest.mark.parametrize("seed", range(40))
def test_upfirdn2d_counts_its_formula_and_the_brute_force(seed):
    x, f, up, down, pad = _case(random.Random(seed))
    total, by_op = _count(ops.upfirdn2d, x, f, up=up, down=down, padding=pad)
    assert by_op == {"alae_fast.upfirdn2d": total}
    assert total == flops.upfirdn2d_flops(x.shape, f.shape, up, down, pad) == _brute_force(x, f, up, down, pad)


def _torch_reference(x, f, down, pad):
    """upfirdn2d for up = 1 in plain torch: pad (or crop), then depthwise conv2d with the taps
    (two 1-D ones for a separable filter), strided by down."""
    C = x.shape[1]
    z = F.pad(x, [max(p, 0) for p in pad])
    z = z[:, :, max(-pad[2], 0): z.shape[2] - max(-pad[3], 0), max(-pad[0], 0): z.shape[3] - max(-pad[1], 0)]
    if f.ndim == 2:
        return F.conv2d(z, f.flip([0, 1])[None, None].expand(C, 1, *f.shape), stride=down[::-1], groups=C)
    k = f.shape[0]
    z = F.conv2d(z, f.flip(0).reshape(1, 1, 1, k).expand(C, 1, 1, k), stride=(1, down[0]), groups=C)
    return F.conv2d(z, f.flip(0).reshape(1, 1, k, 1).expand(C, 1, k, 1), stride=(down[1], 1), groups=C)


@pytest.mark.parametrize("seed", range(30))
def test_upfirdn2d_without_upsampling_counts_as_torchs_pad_and_conv2d(seed):
    x, f, up, down, pad = _case(random.Random(100 + seed), up_one=True)
    ours, _ = _count(ops.upfirdn2d, x, f, down=down, padding=pad)
    ref, by_op = _count(_torch_reference, x, f, down, pad)
    assert set(by_op) == {"aten.convolution"}
    assert ours == ref
    torch.testing.assert_close(ops.upfirdn2d(x, f, down=down, padding=pad), _torch_reference(x, f, down, pad))


def test_no_filter_is_no_arithmetic():
    x = torch.randn(2, 3, 5, 5)
    assert _count(ops.upfirdn2d, x, None, up=2, padding=[1, 0, 2, -1])[0] == 0
    assert flops.upfirdn2d_flops(x.shape, None) == 0


def test_upfirdn2d_backward_counts_its_adjoint():
    # the backward of upfirdn2d is upfirdn2d (up and down swapped): counted by the same rule
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    f = ops.setup_filter([1, 3, 3, 1])
    forward, _ = _count(ops.upfirdn2d, x.detach(), f, up=2, padding=[2, 1, 2, 1])
    with FlopCounterMode(display=False) as mode:
        ops.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]).sum().backward()
    assert mode.get_total_flops() > forward > 0


def _fl_case(rng: random.Random):
    N, C = rng.randint(1, 2), rng.randint(1, 3)
    H, W = rng.randint(3, 8), rng.randint(3, 8)
    up, down = rng.randint(1, 3), rng.randint(1, 3)
    fu = None if rng.random() < 0.2 else torch.rand(rng.randint(1, 8)) + 0.1
    fd = None if rng.random() < 0.2 else (torch.rand(rng.randint(1, 6)) + 0.1 if rng.random() < 0.5
                                          else torch.rand(rng.randint(1, 5), rng.randint(1, 5)) + 0.1)
    fuw, fuh = (1, 1) if fu is None else (fu.shape[-1], fu.shape[0])
    fdw, fdh = (1, 1) if fd is None else (fd.shape[-1], fd.shape[0])
    while True:
        pad = [rng.randint(-2, 9) for _ in range(4)]
        uw, uh = W * up + pad[0] + pad[1] - fuw + 1, H * up + pad[2] + pad[3] - fuh + 1
        if min(uw, uh) >= 1 and (uw - fdw + down) // down >= 1 and (uh - fdh + down) // down >= 1:
            return torch.randn(N, C, H, W), fu, fd, up, down, pad, (uh, uw)


@pytest.mark.parametrize("seed", range(25))
def test_filtered_lrelu_counts_its_two_filter_passes(seed):
    x, fu, fd, up, down, pad, (uh, uw) = _fl_case(random.Random(200 + seed))
    total, by_op = _count(ops.filtered_lrelu, x, fu, fd, up=up, down=down, padding=pad)
    assert set(by_op) == {"alae_fast.filtered_lrelu"}
    u = torch.zeros(x.shape[0], x.shape[1], uh, uw)
    passes = [(x, fu, [up, up], [1, 1], pad), (u, fd, [1, 1], [down, down], [0, 0, 0, 0])]
    assert total == sum(0 if f is None else _brute_force(t, f, a, b, p) for t, f, a, b, p in passes)
    assert total == flops.filtered_lrelu_flops(x.shape, None if fu is None else fu.shape,
                                               None if fd is None else fd.shape, up, down, pad)
    # the same passes run as upfirdn2d ops count the same
    u_run = ops.upfirdn2d(x, fu, up=up, padding=pad, gain=up * up)
    assert u_run.shape[2:] == (uh, uw)
    assert total == _count(ops.upfirdn2d, x, fu, up=up, padding=pad)[0] + _count(ops.upfirdn2d, u_run, fd,
                                                                                   down=down)[0]


def _adjoint_pad(f, up, down, pad0_xy, in_hw, out_hw) -> list[int]:
    """[x0, x1, y0, y1] of the adjoint of an upfirdn2d pass from in_hw to out_hw, by flops._adjoint_padding."""
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    return [*flops._adjoint_padding(in_hw[1], out_hw[1], up, down, pad0_xy[0], fw),
            *flops._adjoint_padding(in_hw[0], out_hw[0], up, down, pad0_xy[1], fh)]


def _check_adjoint(t, f, up, down, pad):
    """The adjoint padding is the adjoint's: upfirdn2d with up and down swapped, the taps flipped
    and that padding equals autograd's vector-Jacobian product of the pass (float64)."""
    t = t.double().requires_grad_(True)
    f = None if f is None else f.double()
    y = ops.upfirdn2d_ref(t, f, up=up, down=down, padding=pad)
    g = torch.randn_like(y)
    adj = _adjoint_pad(f, up, down, (pad[0], pad[2]), t.shape[2:], y.shape[2:])
    got = ops.upfirdn2d_ref(g, f, up=down, down=up, padding=adj, flip_filter=True)
    torch.testing.assert_close(got, torch.autograd.grad(y, t, g)[0])
    return g, adj


@pytest.mark.parametrize("seed", range(15))
def test_filtered_lrelu_grad_counts_the_adjoint_passes(seed):
    x, fu, fd, up, down, pad, (uh, uw) = _fl_case(random.Random(300 + seed))
    x.requires_grad_(True)
    y = ops.filtered_lrelu(x, fu, fd, up=up, down=down, padding=pad)
    dy = torch.randn_like(y)
    with FlopCounterMode(display=False) as mode:
        torch.autograd.grad(y, x, dy)
    counts = {str(k): v for k, v in mode.get_flop_counts()["Global"].items()}
    shape = (lambda f: None if f is None else f.shape)
    expect = flops.filtered_lrelu_grad_flops(dy.shape, shape(fu), shape(fd), x.shape[2:], up, down, pad)
    assert counts == {"alae_fast.filtered_lrelu_grad": expect}
    # D^T then U^T, each the adjoint of its pass (checked against autograd), counted by brute force
    u = torch.randn(x.shape[0], x.shape[1], uh, uw)
    g_d, pad_d = _check_adjoint(u, fd, 1, down, [0, 0, 0, 0])
    g_u, pad_u = _check_adjoint(x.detach(), fu, up, 1, pad)
    assert g_d.shape == dy.shape and g_u.shape[2:] == (uh, uw)
    assert expect == sum(0 if f is None else _brute_force(g, f, [a, a], [b, b], p)
                         for g, f, a, b, p in ((g_d, fd, down, 1, pad_d), (g_u, fu, 1, up, pad_u)))


def test_elementwise_ops_count_zero_as_torch_counts_its_own():
    for name in ("bias_act", "bias_act_grad", "adain", "adain_grad", "instance_norm_stats",
                 "instance_norm_stats_grad", "modulate_weight", "modulate_weight_grad"):
        assert getattr(torch.ops.alae_fast, name) in flop_registry, name
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    s = torch.randn(2, 4, requires_grad=True)
    w = torch.randn(3, 4, 3, 3, requires_grad=True)
    with FlopCounterMode(display=False) as mode:
        (ops.bias_act(x, act="lrelu").sum() + ops.adain(x, s, s).sum() + ops.instance_norm_stats(x)[0].sum()
         + ops.modulate_weight(w, s)[0].sum()).backward()
    counts = {str(k): v for k, v in mode.get_flop_counts()["Global"].items()}
    assert counts and set(counts) <= {f"alae_fast.{n}" for n in flops.FORMULAS} and sum(counts.values()) == 0
    # as torch counts their plain references: nothing
    with FlopCounterMode(display=False) as mode:
        (ops.bias_act_ref(x, act="lrelu").sum() + ops.adain_ref(x, s, s).sum()).backward()
    assert mode.get_total_flops() == 0


def test_modulated_conv2d_counts_its_convolution_and_its_filter():
    x, w, s = torch.randn(2, 4, 8, 8), torch.randn(5, 4, 3, 3), torch.randn(2, 4)
    f = ops.setup_filter([1, 3, 3, 1])
    _, by_op = _count(ops.modulated_conv2d, x, w, s, up=2, padding=1, resample_filter=f)
    assert by_op["alae_fast.upfirdn2d"] > 0 and by_op["aten.convolution"] > 0


def test_the_registry_is_filled_once_on_import():
    import importlib

    importlib.reload(flops)  # a second registration would raise "duplicate registrations"
    assert flop_registry[torch.ops.alae_fast.upfirdn2d] is not None


def test_symbolic_sizes_are_counted_without_asking_their_values():
    # inductor estimates a node's run time from its formula, with sizes that may be symbols whose
    # values cannot be asked (an unbacked one raises when compared or made an int)
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    s = ShapeEnv().create_unbacked_symint()
    for count in (flops.upfirdn2d_flops((2, 3, s, s), (4, 4), [2, 2], [1, 1], [2, 1, 2, 1]),
                  flops.upfirdn2d_flops((2, 3, s, s), (4,), [1, 1], [2, 2], [1, 1, 1, 1]),
                  flops.filtered_lrelu_flops((2, 3, s, s), (12,), (12,), 2, 2, [10, 10, 10, 10]),
                  flops.filtered_lrelu_grad_flops((2, 3, s, s), (12,), (12,), (s, s), 2, 2, [10, 10, 10, 10])):
        assert isinstance(count, torch.SymInt)
    # with up = 1 the symbolic count is the exact one
    t = ShapeEnv().create_unbacked_symint()
    exact = flops.upfirdn2d_flops((2, 3, 9, 9), (3, 3), [1, 1], [2, 2], [1, 0, 1, 0])
    symbolic = flops.upfirdn2d_flops((2, 3, t, t), (3, 3), [1, 1], [2, 2], [1, 0, 1, 0])
    assert symbolic.node.expr.subs(t.node.expr, 9) == exact
    # with up > 1 it is taps / up per output: within the borders of the exact count where down and
    # up share no factor (3 taps at up 2: 1.5 a pixel, where ceil(3 / 2) = 2 counted a third too many)
    for taps, up in ((3, 2), (4, 3), (4, 2), (12, 4)):
        n = 64
        exact = flops.upfirdn2d_flops((1, 1, n, n), (taps,), [up, up], [1, 1], [1, 1, 1, 1])
        symbolic = flops.upfirdn2d_flops((1, 1, t, t), (taps,), [up, up], [1, 1], [1, 1, 1, 1])
        assert abs(int(symbolic.node.expr.subs(t.node.expr, n)) / exact - 1) < 0.05, (taps, up)
