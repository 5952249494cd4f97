"""Seeded fuzz of every alae_fast op: random shapes, factors, taps, paddings, layouts and dtypes,
forward, backward and double backward of the compiled kernels compared with each op's pure
PyTorch reference evaluated in float64 on the same (already rounded) inputs.

Its purpose is memory safety (tests/sanitize/run.sh runs it under AddressSanitizer and
UndefinedBehaviorSanitizer, where any out-of-bounds access aborts the process); the
comparison also turns a wrong read that does not crash into a failure.

Run: ``python tests/sanitize/fuzz_ops.py --calls 2000 --seed 0`` (``--help`` lists the
options); a failure prints the command that repeats just that call (``--only I``).

Adding an op: write a generator ``def gen_<op>(rng) -> Call`` that draws one call (see the
ones below: ``Call.fn(impl, **tensors)`` returns the op's output tensor or tuple of tensors,
``tensors`` are float64 masters, ``grads`` names the differentiable ones) and add it to OPS.
Nothing else changes.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

import alae_fast
from alae_fast.ops import (ACTIVATIONS, adain, bias_act, filtered_lrelu, instance_norm_stats, modulate_weight,
                           modulated_conv2d, setup_filter, upfirdn2d)
from alae_fast.testing import tolerances

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "channels_last", "strided")


@dataclass
class Call:
    """One op call: ``fn(impl, **tensors)`` with tensors cast to the call's dtype and layout.

    tensors: name -> float64 master values (None for an absent optional input).
    grads: names of the tensors the call differentiates (the others are constants).
    layout: applied to every 4-D tensor named in ``layout_of`` ('contiguous', 'channels_last',
        or 'strided': a non-contiguous view, which the ops copy).
    tol: widens the dtype's tolerances (long sums, cancellation in the gradients).
    double: whether to check the double backward too.
    """
    op: str
    fn: Callable
    tensors: dict
    params: dict
    dtype: torch.dtype
    grads: tuple = ()
    layout: str = "contiguous"
    layout_of: tuple = ("x",)
    tol: float = 1.0
    double: bool = True
    # tensors kept float32 whatever the call's dtype (filters)
    float32: tuple = field(default_factory=tuple)


def _with_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if t.ndim != 4 or layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    wide = torch.zeros(*t.shape[:3], 2 * t.shape[3] + 1, dtype=t.dtype, device=t.device)
    return wide[..., 1::2].copy_(t)  # every other column of a wider tensor: not contiguous


def _randn(rng: random.Random, *shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(rng.randrange(2**62))
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _pick_dtype(rng):
    return rng.choice(DTYPES)


# --- generators, one per op ------------------------------------------------------------------

def gen_bias_act(rng: random.Random) -> Call:
    rank = rng.randint(1, 4)
    shape = [rng.choice([0, 1, 2, 3, 5, 8, 17]) if rng.random() < 0.1 else rng.randint(1, 9) for _ in range(rank)]
    if rng.random() < 0.1:
        shape[-1] = rng.randint(30, 600)  # runs longer than a vector block, with tails
    act = rng.choice(list(ACTIVATIONS))
    with_b = rng.random() < 0.75
    dim = rng.randrange(rank) if with_b else 0
    alpha = None if rng.random() < 0.5 else rng.uniform(0.05, 1.5)
    gain = None if rng.random() < 0.5 else rng.uniform(0.25, 2.0)
    clamp = None if rng.random() < 0.6 else rng.uniform(0.3, 3.0)
    tensors = dict(x=_randn(rng, *shape), b=_randn(rng, shape[dim]) if with_b else None)

    def fn(impl, x, b):
        return bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)

    return Call("bias_act", fn, tensors, dict(shape=shape, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp),
                _pick_dtype(rng), grads=("x", "b") if with_b else ("x",), layout=rng.choice(LAYOUTS))


def _upfirdn_out(n, up, down, p0, p1, taps):
    return (n * up + p0 + p1 - taps + down) // down


def gen_upfirdn2d(rng: random.Random) -> Call:
    kind = rng.choice(["1d", "2d", "none"])
    tx = rng.randint(1, 16) if rng.random() < 0.9 else rng.randint(17, 26)
    ty = rng.randint(1, 16) if kind == "2d" else tx
    fw, fh = (1, 1) if kind == "none" else (tx, ty)
    up = [rng.randint(1, 4), rng.randint(1, 4)]
    down = [rng.randint(1, 4), rng.randint(1, 4)]
    if rng.random() < 0.06:
        shape = [1, rng.randint(1, 2), rng.randint(8, 30), rng.randint(900, 2600)]  # several row blocks
    else:
        shape = [rng.randint(0, 2) if rng.random() < 0.05 else rng.randint(1, 2), rng.choice([1, 2, 3, 8]),
                 rng.randint(1, 24), rng.randint(1, 24)]
    H, W = shape[2], shape[3]
    pad = [rng.randint(-4, 8) for _ in range(4)]
    # Redraw the end padding until each axis has an output (the op rejects empty ones).
    for axis, (n, u, d, t) in enumerate(((W, up[0], down[0], fw), (H, up[1], down[1], fh))):
        while _upfirdn_out(n, u, d, pad[2 * axis], pad[2 * axis + 1], t) < 1:
            pad[2 * axis + 1] += 1
    flip, gain = rng.random() < 0.5, rng.choice([1.0, 0.5, 2.0])
    f = None if kind == "none" else _randn(rng, *((tx,) if kind == "1d" else (ty, tx)))
    if f is not None and rng.random() < 0.5:
        f = f.abs() + 0.1  # positive taps (the NVlabs filters): no cancellation in the sums
    tensors = dict(x=_randn(rng, *shape), f=f)

    def fn(impl, x, f):
        return upfirdn2d(x, f, up, down, pad, flip, gain, impl=impl)

    taps = fw * fh
    return Call("upfirdn2d", fn, tensors, dict(shape=shape, f=None if f is None else list(f.shape), up=up,
                                               down=down, pad=pad, flip=flip, gain=gain),
                _pick_dtype(rng), grads=("x",), layout=rng.choice(LAYOUTS), tol=1 + math.sqrt(taps) / 2,
                float32=("f",))


def gen_filtered_lrelu(rng: random.Random) -> Call:
    # Separable (the CPU row-pass engine) and 2-D filters (the per-plane engine), no filter,
    # up/down 1-4, tap counts past 16, pads that crop or add, a clamp or none.
    def taps():
        return rng.randint(1, 14) if rng.random() < 0.9 else rng.randint(15, 24)

    def draw_filter():
        kind = rng.choice(["sep", "sep", "2d", "none"])
        if kind == "none":
            return None, 1, 1
        tw, th = taps(), taps()
        f = _randn(rng, tw) if kind == "sep" else _randn(rng, th, tw)
        f = f.abs() + 0.1 if rng.random() < 0.5 else f
        return f, tw, (tw if kind == "sep" else th)

    up, down = rng.randint(1, 4), rng.randint(1, 4)
    fu, fuw, fuh = draw_filter()
    fd, fdw, fdh = draw_filter()
    if rng.random() < 0.06:
        shape = [1, rng.randint(1, 2), rng.randint(30, 70), rng.randint(30, 70)]
    else:
        shape = [rng.randint(0, 2) if rng.random() < 0.05 else rng.randint(1, 2), rng.choice([1, 2, 3, 8]),
                 rng.randint(1, 16), rng.randint(1, 16)]
    H, W = shape[2], shape[3]
    pad = [rng.randint(-3, 10) for _ in range(4)]
    # Redraw the end padding until each axis has an output after both passes.
    for axis, (n, tu, td) in enumerate(((W, fuw, fdw), (H, fuh, fdh))):
        while (_upfirdn_out(n, up, 1, pad[2 * axis], pad[2 * axis + 1], tu) < 1
               or _upfirdn_out(_upfirdn_out(n, up, 1, pad[2 * axis], pad[2 * axis + 1], tu), 1, down, 0, 0, td) < 1):
            pad[2 * axis + 1] += 1
    gain, slope = rng.choice([1.0, math.sqrt(2), 0.5]), rng.choice([0.2, 0.0, 1.0, 0.5])
    clamp = None if rng.random() < 0.5 else rng.choice([0.5, 2.0, 64.0])
    flip = rng.random() < 0.5
    b = _randn(rng, shape[1]) if rng.random() < 0.7 else None
    tensors = dict(x=_randn(rng, *shape), fu=fu, fd=fd, b=b)

    def fn(impl, x, fu, fd, b):
        return filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip, impl=impl)

    tol = 1 + math.sqrt(fuw * fuh * fdw * fdh) / 2
    return Call("filtered_lrelu", fn, tensors,
                dict(shape=shape, fu=None if fu is None else list(fu.shape), fd=None if fd is None else list(fd.shape),
                     up=up, down=down, pad=pad, gain=gain, slope=slope, clamp=clamp, flip=flip),
                _pick_dtype(rng), grads=("x", "b") if b is not None else ("x",), layout=rng.choice(LAYOUTS),
                tol=tol, float32=("fu", "fd"))


def _style_shapes(rng):
    N = rng.randint(0, 2) if rng.random() < 0.05 else rng.randint(1, 3)
    C = rng.choice([1, 2, 3, 5, 8, 33])
    H, W = rng.randint(1, 12), rng.randint(1, 12)
    if H * W < 2:
        W = 2  # one pixel has no variance: the gradient is all cancellation
    if rng.random() < 0.05:
        H, W = rng.randint(40, 90), rng.randint(40, 90)  # several channels_last chunks
    return N, C, H, W


def gen_adain(rng: random.Random) -> Call:
    N, C, H, W = _style_shapes(rng)
    act = rng.choice(list(ACTIVATIONS))
    alpha = None if rng.random() < 0.6 else rng.uniform(0.05, 1.0)
    eps = rng.choice([1e-8, 1e-5, 1e-3])
    with_noise = rng.random() < 0.5
    t = dict(x=_randn(rng, N, C, H, W),
             style_scale=_randn(rng, N, C) * 0.5 if rng.random() < 0.8 else None,
             style_bias=_randn(rng, N, C) if rng.random() < 0.8 else None,
             bias=_randn(rng, C) if rng.random() < 0.6 else None,
             noise=_randn(rng, rng.choice([1, N]) if N else 0, 1, H, W) if with_noise else None,
             noise_weight=_randn(rng, C) if with_noise and rng.random() < 0.7 else None)

    def fn(impl, x, style_scale, style_bias, bias, noise, noise_weight):
        return adain(x, style_scale, style_bias, bias=bias, noise=noise, noise_weight=noise_weight, act=act,
                     alpha=alpha, eps=eps, impl=impl)

    return Call("adain", fn, t, dict(shape=[N, C, H, W], act=act, alpha=alpha, eps=eps,
                                     given=[k for k, v in t.items() if v is not None]),
                _pick_dtype(rng), grads=tuple(k for k, v in t.items() if v is not None),
                layout=rng.choice(LAYOUTS), layout_of=("x", "noise"), tol=4 + math.sqrt(H * W) / 4)


def gen_instance_norm_stats(rng: random.Random) -> Call:
    N, C, H, W = _style_shapes(rng)
    act = rng.choice(["linear", "linear", "lrelu", "tanh", "softplus"])
    eps = rng.choice([1e-8, 1e-5, 1e-3])
    t = dict(x=_randn(rng, N, C, H, W), bias=_randn(rng, C) if rng.random() < 0.4 else None)

    def fn(impl, x, bias):
        return instance_norm_stats(x, eps, impl, bias=bias, act=act)

    return Call("instance_norm_stats", fn, t, dict(shape=[N, C, H, W], act=act, eps=eps, bias=t["bias"] is not None),
                _pick_dtype(rng), grads=tuple(k for k, v in t.items() if v is not None),
                layout=rng.choice(LAYOUTS), tol=4 + math.sqrt(H * W) / 4)


def gen_modulate_weight(rng: random.Random) -> Call:
    N = rng.randint(0, 3) if rng.random() < 0.1 else rng.randint(1, 4)
    O, I = rng.randint(1, 9), rng.choice([1, 2, 3, 7, 16, 40])
    k = rng.choice([1, 1, 3, 3, 5])
    eps = rng.choice([1e-8, 1e-4])
    t = dict(weight=_randn(rng, O, I, k, k), styles=_randn(rng, N, I) + 1.5)

    def fn(impl, weight, styles):
        return modulate_weight(weight, styles, eps, impl=impl)

    return Call("modulate_weight", fn, t, dict(N=N, O=O, I=I, k=k, eps=eps), _pick_dtype(rng),
                grads=("weight", "styles"), layout=rng.choice(LAYOUTS), layout_of=("weight",),
                tol=2 + math.sqrt(I * k * k) / 4)


def gen_modulated_conv2d(rng: random.Random) -> Call:
    N, I, O = rng.randint(1, 2), rng.randint(1, 4), rng.randint(1, 4)
    k = rng.choice([1, 3])
    up, down = rng.choice([(1, 1), (2, 1), (1, 2)])
    H, W = rng.randint(4, 9), rng.randint(4, 9)
    f = setup_filter([1, 3, 3, 1]) if up > 1 or down > 1 else None
    padding = k // 2
    demodulate, fused = rng.random() < 0.8, rng.random() < 0.7
    dtype = rng.choice([torch.float32, torch.float64])  # the half paths are bias_act/upfirdn2d/modulate_weight's
    t = dict(x=_randn(rng, N, I, H, W), weight=_randn(rng, O, I, k, k), styles=_randn(rng, N, I) + 1.5)

    def fn(impl, x, weight, styles):
        return modulated_conv2d(x, weight, styles, up=up, down=down, padding=padding,
                                resample_filter=None if f is None else f.to(x.device),
                                demodulate=demodulate, fused_modconv=fused, impl=impl)

    return Call("modulated_conv2d", fn, t, dict(N=N, I=I, O=O, k=k, up=up, down=down, demodulate=demodulate,
                                                fused_modconv=fused),
                dtype, grads=("x", "weight", "styles"), layout=rng.choice(LAYOUTS), tol=_modconv_tol(I, k, demodulate),
                double=rng.random() < 0.3)


def _modconv_tol(I, k, demodulate):
    # One input tap demodulated is sign(w·s) times x: its weight and style gradients cancel
    # analytically, and what remains of the double backward is rounding amplified by the
    # 1/|w·s| of the normalisation (seed 0, call 495 of the sanitizer build: 0.4% in float32).
    return 64.0 if demodulate and I * k * k == 1 else 4 + I * k


# op name -> generator of one random call. New ops add one line here.
OPS: dict[str, Callable[[random.Random], Call]] = {
    "bias_act": gen_bias_act,
    "upfirdn2d": gen_upfirdn2d,
    "adain": gen_adain,
    "instance_norm_stats": gen_instance_norm_stats,
    "modulate_weight": gen_modulate_weight,
    "modulated_conv2d": gen_modulated_conv2d,
    "filtered_lrelu": gen_filtered_lrelu,
}


# --- running and comparing -------------------------------------------------------------------

def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _inputs(call: Call, dtype: torch.dtype, device: torch.device, rounded: dict | None = None) -> dict:
    """The call's tensors in ``dtype``, its layout and on ``device``, as fresh leaves
    (requires_grad where differentiated). With ``rounded`` (the kernel's inputs), the same
    values in float64."""
    out = {}
    for name, master in call.tensors.items():
        if master is None:
            out[name] = None
            continue
        src = master if rounded is None else rounded[name].detach().double()
        t = src.to(device=device, dtype=torch.float32 if name in call.float32 else dtype)
        if name in call.layout_of:
            t = _with_layout(t, call.layout)
        out[name] = t.detach().requires_grad_(name in call.grads)
    return out


def _scale(tensors) -> float:
    """The largest |value| among the reference tensors of one stage (outputs, gradients, ...):
    the absolute tolerance of each is relative to it, since a gradient that cancels
    analytically (e.g. demodulated styles with one input channel) is pure rounding."""
    return max([float(t.detach().abs().max()) for t in tensors if t is not None and t.numel()] + [1e-30])


def _check(what: str, got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, tol: float, scale: float):
    """|got - want| <= tol * (rtol |want| + atol scale), want in float64."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != reference {tuple(want.shape)}"
    if want.numel() == 0:
        return
    rtol, atol = tolerances(dtype)
    g, w = got.detach().double(), want.detach().double()
    if not torch.isfinite(w).all():
        same = (torch.isnan(g) == torch.isnan(w)) & ((g == w) | torch.isnan(w) | torch.isfinite(w))
        assert same.all(), f"{what}: non-finite values differ from the reference"
        fin = torch.isfinite(w)
        g, w = g[fin], w[fin]
        if w.numel() == 0:
            return
    err = (g - w).abs()
    bound = tol * (rtol * w.abs() + atol * scale)
    if dtype.is_floating_point and got.dtype != torch.float64:
        # an exact value past the dtype's range is correctly stored as inf of its sign
        past = w.abs() > torch.finfo(got.dtype).max
        err = torch.where(past & torch.isinf(g) & (torch.sign(g) == torch.sign(w)), torch.zeros_like(err), err)
    if not bool((err <= bound).all()):
        i = int(torch.argmax(err - bound))
        raise AssertionError(f"{what}: |error| {float(err.flatten()[i]):.3g} > bound {float(bound.flatten()[i]):.3g} "
                             f"(value {float(w.flatten()[i]):.4g}, scale {scale:.3g}, {dtype})")


def _grads(outs, inputs, names, cotangents, create_graph=False):
    diff = [(o, v) for o, v in zip(outs, cotangents) if o.requires_grad]
    if not diff or not names:
        return [None] * len(names)
    return list(torch.autograd.grad([o for o, _ in diff], [inputs[n] for n in names], [v for _, v in diff],
                                    create_graph=create_graph, allow_unused=True))


def check_call(call: Call, rng: random.Random, device="cpu") -> None:
    """Forward, backward and (if call.double) double backward of the kernel on ``device``
    against the float64 reference. Raises AssertionError on a mismatch."""
    dt, device = call.dtype, torch.device(device)
    k_in = _inputs(call, dt, device)
    r_in = _inputs(call, torch.float64, device, rounded=k_in)
    k_out = _as_tuple(call.fn("auto", **k_in))
    r_out = _as_tuple(call.fn("ref", **r_in))
    assert len(k_out) == len(r_out)
    scale = _scale(r_out)
    for j, (a, b) in enumerate(zip(k_out, r_out)):
        _check(f"output {j}", a, b, a.dtype if a.is_floating_point() else dt, call.tol * 2, scale)
    names = [n for n in call.grads if k_in.get(n) is not None]
    if not names:
        return
    # Cotangents: random values in each output's own dtype, the reference's the same values.
    v_k = [_randn(rng, *o.shape).to(device=device, dtype=o.dtype) for o in k_out]
    v_r = [v.double() for v in v_k]
    if call.double:
        for v in v_k + v_r:
            v.requires_grad_()
    g_k = _grads(k_out, k_in, names, v_k, create_graph=call.double)
    g_r = _grads(r_out, r_in, names, v_r, create_graph=call.double)
    scale = _scale(g_r)
    for n, a, b in zip(names, g_k, g_r):
        c = a if b is None else b
        # an empty input's gradient is empty either way: connected or not, nothing is lost
        assert (a is None) == (b is None) or c.numel() == 0, \
            f"grad {n}: kernel {'has none' if a is None else 'has one'}, reference not"
        if a is None or b is None:
            continue
        _check(f"grad {n}", a, b, dt, call.tol * 4, scale)
    if not call.double:
        return
    # d/d(inputs, cotangents) of sum(grad * w) for random w: every second-order path.
    pairs = [(a, b) for a, b in zip(g_k, g_r) if a is not None and b is not None and a.requires_grad]
    if not pairs:
        return
    w_k = [_randn(rng, *a.shape).to(device=device, dtype=a.dtype) for a, _ in pairs]
    w_r = [w.double() for w in w_k]
    wrt_k = [k_in[n] for n in names] + [v for v in v_k]
    wrt_r = [r_in[n] for n in names] + [v for v in v_r]
    gg_k = torch.autograd.grad([a for a, _ in pairs], wrt_k, w_k, allow_unused=True)
    gg_r = torch.autograd.grad([b for _, b in pairs], wrt_r, w_r, allow_unused=True)
    labels = [f"grad-grad {n}" for n in names] + [f"grad-grad cotangent {j}" for j in range(len(v_k))]
    if dt in (torch.float16, torch.bfloat16):
        # Half-type double backward runs (for the sanitizers) but its values are not compared:
        # rounding of the half intermediates moves points across the activations' kinks and
        # clamp bounds, where the second derivative jumps, so no bound holds (seen at seed 0:
        # elu with a clamp, selu inside adain). float32/float64 second order is compared here,
        # and the op tests gradgradcheck every op in float64.
        return
    scale = _scale(gg_r)
    for what, a, b in zip(labels, gg_k, gg_r):
        if a is None or b is None:
            # One side may leave an exactly-zero second derivative unconnected.
            c = a if b is None else b
            assert c is None or not bool(c.detach().abs().gt(0).any()), f"{what}: only one side is connected"
            continue
        _check(what, a, b, dt, call.tol * 16, scale)


def draw(seed: int, i: int, ops: list[str]) -> tuple[Call, random.Random]:
    """Call i of the run with this seed: reproducible on its own (--only i)."""
    rng = random.Random(f"{seed}:{i}")
    return OPS[ops[i % len(ops)]](rng), rng


def run(calls: int, seed: int = 0, ops: list[str] | None = None, only: int | None = None,
        verbose: bool = False, device="cpu") -> dict:
    """Runs ``calls`` fuzz calls (ops in turn); returns {op: count}. Raises on the first failure,
    naming the call and how to repeat it."""
    ops = list(ops or OPS)
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise ValueError(f"unknown ops {unknown}; choose from {list(OPS)}")
    counts = {o: 0 for o in ops}
    # Calls are compared with a float64 reference: with TF32 convolutions and matmuls (cuDNN's
    # default on Ampere and later, seen on an H200: modulated_conv2d off by 1.2e-3 in float32)
    # the difference would be TF32's rounding, not the kernels'.
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for i in ([only] if only is not None else range(calls)):
            call, rng = draw(seed, i, ops)
            if verbose:
                print(f"[{i}] {call.op} {call.dtype} {call.layout} {call.params}", flush=True)
            try:
                check_call(call, rng, device)
            except Exception as e:
                raise AssertionError(
                    f"fuzz call {i} failed: {call.op} dtype={call.dtype} layout={call.layout} {call.params}\n"
                    f"  {type(e).__name__}: {e}\n"
                    f"  repeat: python tests/sanitize/fuzz_ops.py --device {device} --seed {seed} "
                    f"--ops {' '.join(ops)} --only {i}") from e
            counts[call.op] += 1
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000, help="number of op calls (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    p.add_argument("--ops", nargs="*", default=None, help=f"subset of: {', '.join(OPS)} (default all)")
    p.add_argument("--only", type=int, default=None, help="run just call I of this seed")
    p.add_argument("--verbose", action="store_true", help="print every call before running it")
    p.add_argument("--device", default="cpu", help="device of the kernels: cpu (default) or cuda")
    a = p.parse_args(argv)
    info = alae_fast.build_info()
    if not info["loaded"]:
        print(f"fuzz_ops: the compiled library is not loaded ({info['error']}); nothing to test", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    if a.device.startswith("cuda") and not info["cuda"]:
        print(f"fuzz_ops: no CUDA kernels in this build ({info}); nothing to test", file=sys.stderr)
        return 2
    counts = run(a.calls, a.seed, a.ops, a.only, a.verbose, a.device)
    print(f"fuzz_ops: {sum(counts.values())} calls on {a.device} passed in {time.perf_counter() - t0:.0f} s "
          f"(seed {a.seed}, sanitize={info.get('sanitize')}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
