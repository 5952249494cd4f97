"""StyleGAN2's modulated convolution: ``modulated_conv2d``, and its fused weight kernel
``modulate_weight``.

Per sample n the convolution weight is ``weight * styles[n]`` (scaling input channels),
optionally demodulated: divided per output channel by ``sqrt(sum(w^2) + 1e-8)`` over the
input channels and taps, which restores unit output variance.

Two execution orders give the same function:

- fused (``fused_modconv=True``): build the N per-sample weights and run ONE grouped
  convolution (groups = N). ``modulate_weight`` writes the modulated, demodulated weights
  and the demodulation coefficients in one pass over [N, O, I, kh, kw]; its backward reads
  the weights' gradient once. The plain-torch path takes four passes each way.
- not fused: scale the activations by the styles, run one shared convolution, then
  demodulate and add noise in one fused epilogue (``torch.addcmul``). The coefficients come
  from ``styles^2 @ sum_k weight^2`` without forming per-sample weights at all.

Both run up/down-sampling through ``conv2d_resample``, and both are differentiable to any
order (the backward of ``modulate_weight_grad`` is written in torch ops).
"""

from __future__ import annotations

import math

import torch

from .. import _lib
from ._dispatch import (quiet_under_trace, shapes_checked, check_bool, check_eps, check_impl, check_int, check_same, check_tensor, kernel_layout, opmath,
                        static_sizes, use_kernel)
from .conv2d_resample import check_output_size, conv2d_resample
from .upfirdn2d import _check_filter, _parse_padding

DEMOD_EPS = 1e-8


# --- the fused weight kernel --------------------------------------------------------------

def modulate_weight(weight: torch.Tensor, styles: torch.Tensor, eps: float = DEMOD_EPS,
                    impl: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample modulated and demodulated weights, and the demodulation coefficients.

    Args:
        weight: [O, I, kh, kw]; float16, bfloat16, float32 or float64 (computed in float32
            for the half types).
        styles: [N, I], weight's dtype and device.
        eps: added to each sum of squares before the reciprocal square root (default 1e-8), >= 0.
        impl: 'auto' (compiled kernel when built for weight's device) or 'ref'.

    Returns:
        ``w`` [N, O, I, kh, kw] = weight * styles[n, i] * d[n, o] and ``d`` [N, O] =
        rsqrt(sum over i, kh, kw of (weight * styles)^2 + eps), both in weight's dtype and
        differentiable to any order in weight and styles.

    Raises TypeError for a weight or styles that is not a float tensor (or of another dtype than
    weight), an eps that is not a real number, an impl that is not a string; ValueError for
    shapes that do not fit, another device, a negative or non-finite eps, another impl string.
    """
    op = "modulate_weight"
    check_tensor(weight, "weight", op)
    check_tensor(styles, "styles", op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D [O, I, kh, kw]; got shape {tuple(weight.shape)}")
    if shapes_checked() and (styles.ndim != 2 or styles.shape[1] != weight.shape[1]):
        raise ValueError(f"{op}: styles must have shape [N, I] with I = weight.shape[1] = {weight.shape[1]}; "
                         f"got {tuple(styles.shape)}")
    if styles.device != weight.device:
        raise ValueError(f"{op}: styles must be on weight's device {weight.device}; got {styles.device}")
    if styles.dtype != weight.dtype:
        raise TypeError(f"{op}: styles must have weight's dtype {weight.dtype}; got {styles.dtype}")
    eps = check_eps(eps, op)
    if use_kernel(weight, impl, op):
        return torch.ops.alae_fast.modulate_weight(weight, styles, eps)
    return _modulate_weight_ref(weight, styles, eps)


def _modulate_weight_ref(weight, styles, eps):
    w = opmath(weight)[None] * opmath(styles)[:, None, :, None, None]
    d = (w.square().sum(dim=(2, 3, 4)) + eps).rsqrt()
    return (w * d[:, :, None, None, None]).to(weight.dtype), d.to(weight.dtype)


def _fake_modulate(weight, styles, eps):
    N, (O, I, kh, kw) = styles.shape[0], weight.shape
    return weight.new_empty((N, O, I, kh, kw)), weight.new_empty((N, O))


def _fake_modulate_grad(gw, gd, weight, styles, d):
    return torch.empty_like(weight, memory_format=torch.contiguous_format), torch.empty_like(styles)


def _setup_modulate_grad(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(*inputs)


def _backward_modulate_grad(ctx, A, B):
    # The op maps (gw, gd, W, s, d) -> (gW, gs) with, per (n, o) and m = W*s:
    #   T = sum(gw*m), c = (gd + T) d^3, gm = gw*d - c*m, gW = sum_n gm*s, gs = sum_{o,k} gm*W.
    # With H = A*s + B*W (A, B the cotangents of gW, gs) and J = sum(m*H) per (n, o):
    #   d/dgw = d*H - d^3*J*m,   d/dgd = -d^3*J,   d/dd = sum(gw*H) - 3 d^2 (gd + T) J,
    #   and W, s receive gm through H and gm2 = -c*H - d^3*J*gw through m.
    gw, gd, weight, styles, d = ctx.saved_tensors
    need = ctx.needs_input_grad
    if A is None and B is None:
        return None, None, None, None, None
    dt = weight.dtype
    W = opmath(weight)[None]                            # [1, O, I, kh, kw]
    s = opmath(styles)[:, None, :, None, None]          # [N, 1, I, 1, 1]
    dd = opmath(d)[:, :, None, None, None]              # [N, O, 1, 1, 1]
    m = W * s
    H = 0
    if A is not None:
        H = opmath(A)[None] * s
    if B is not None:
        H = H + opmath(B)[:, None, :, None, None] * W
    J = (m * H).sum(dim=(2, 3, 4), keepdim=True)
    g = None if gw is None else opmath(gw)
    T = 0 if g is None else (g * m).sum(dim=(2, 3, 4), keepdim=True)
    gdv = 0 if gd is None else opmath(gd)[:, :, None, None, None]
    d3 = dd * dd * dd
    c = (gdv + T) * d3
    out = [None] * 5
    if need[0]:
        out[0] = (dd * H - d3 * J * m).to(dt)
    if need[1]:
        out[1] = (-d3 * J)[:, :, 0, 0, 0].to(dt)
    if need[2] or need[3]:
        gm = -c * m if g is None else g * dd - c * m
        gm2 = -c * H if g is None else -c * H - d3 * J * g
        if need[2]:
            gW = (gm2 * s).sum(0)
            if B is not None:
                gW = gW + (gm * opmath(B)[:, None, :, None, None]).sum(0)
            out[2] = gW.to(dt)
        if need[3]:
            gs = (gm2 * W).sum(dim=(1, 3, 4))
            if A is not None:
                gs = gs + (gm * opmath(A)[None]).sum(dim=(1, 3, 4))
            out[3] = gs.to(dt)
    if need[4]:
        gdd = -3 * dd * dd * (gdv + T) * J
        if g is not None:
            gdd = gdd + (g * H).sum(dim=(2, 3, 4), keepdim=True)
        out[4] = gdd[:, :, 0, 0, 0].to(dt)
    return tuple(out)


# modulate_weight's own autograd is C++ (csrc/autograd/modulate_weight.cpp: per-call cost);
# its gradient op's autograd, the double backward, is the Python above.
if _lib.loaded():
    torch.library.register_fake("alae_fast::modulate_weight")(_fake_modulate)
    torch.library.register_fake("alae_fast::modulate_weight_grad")(_fake_modulate_grad)
    torch.library.register_autograd("alae_fast::modulate_weight_grad", _backward_modulate_grad,
                                    setup_context=_setup_modulate_grad)


# --- the convolution ----------------------------------------------------------------------

@quiet_under_trace
def _resolve(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight,
             fused_modconv, op):
    check_tensor(x, "x", op)
    check_tensor(weight, "weight", op)
    check_tensor(styles, "styles", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, I, H, W]; got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D [O, I, kh, kw]; got shape {tuple(weight.shape)}")
    N, I = x.shape[:2]
    if weight.shape[1] != I:
        raise ValueError(f"{op}: weight must have I = x.shape[1] = {I} input channels (weight.shape[1]); "
                         f"got weight of shape {tuple(weight.shape)}")
    if styles.ndim != 2 or styles.shape[0] != N or styles.shape[1] != I:
        raise ValueError(f"{op}: styles must have shape [N, I] = [{N}, {I}] to match x; got {tuple(styles.shape)}")
    # torch's convolutions refuse a weight without output channels (a RuntimeError about "groups"),
    # and give no channel to an input without input channels where zeros are due: named here instead.
    if I == 0:
        raise ValueError(f"{op}: x must have at least one input channel (x.shape[1] = I >= 1); got x of shape "
                         f"{tuple(x.shape)}")
    if weight.shape[0] == 0:
        raise ValueError(f"{op}: weight must have at least one output channel (weight.shape[0] = O >= 1); got "
                         f"weight of shape {tuple(weight.shape)}")
    check_same(weight, "weight", x, op, dtype=False)
    check_same(styles, "styles", x, op, dtype=False)
    if styles.dtype != weight.dtype:
        raise TypeError(f"{op}: styles must have weight's dtype {weight.dtype}; got {styles.dtype}")
    if noise is not None:
        check_tensor(noise, "noise", op)
        check_same(noise, "noise", x, op, dtype=False)
        if noise.ndim > 4:
            raise ValueError(f"{op}: noise must broadcast to the output [N, O, H_out, W_out] (at most 4-D, "
                             f"e.g. [H_out, W_out] or [N, 1, H_out, W_out]); got shape {tuple(noise.shape)}")
    up, down = check_int(up, "up", op, minimum=1), check_int(down, "down", op, minimum=1)
    for name, v in (("demodulate", demodulate), ("flip_weight", flip_weight), ("fused_modconv", fused_modconv)):
        check_bool(v, name, op)
    # Checked here, under this op's names and with the caller's x (not the grouped convolution's
    # [1, N*I, H, W]), so that conv2d_resample, which checks them as its f and padding, finds
    # nothing to refuse.
    f = _check_filter(resample_filter, x, op, "resample_filter")
    check_output_size(x.shape, static_sizes(weight, 2, 3), f, up, down, _parse_padding(padding, op), op, "weight")


@quiet_under_trace
def _check_noise_size(y, noise, op):
    # Any shape that broadcasts to the output without enlarging it, as NVlabs adds noise
    # (its SynthesisLayer passes [H, W] with noise_mode='const', [N, 1, H, W] with 'random').
    if noise is None:
        return
    ok = noise.ndim <= 4 and all(n in (1, o) for n, o in zip(reversed(noise.shape), reversed(y.shape)))
    if not ok:
        raise ValueError(f"{op}: noise must broadcast to the output's shape {tuple(y.shape)} "
                         f"(e.g. [H_out, W_out], [1 or N, 1 or O, H_out, W_out]); got {tuple(noise.shape)}")


def _nonzero(norm: torch.Tensor) -> torch.Tensor:
    # An all-zero row (a sample's styles, an output channel's weights) has max-abs 0: it is
    # left unscaled instead of divided by 0 (0/0 = NaN, where the exact answer, like the
    # float32 one, is finite). Every non-zero norm, and NaN, is kept as it is.
    return torch.where(norm == 0, torch.ones_like(norm), norm)


def _prescale_fp16(x, weight, styles):
    """StyleGAN2-ADA's guard against float16 overflow: scale weight and styles to max-abs 1
    (per output channel, per sample) first. Demodulation divides both scales back out; only
    the 1e-8 in the demodulation sees them. All-zero rows are left as they are (see _nonzero)."""
    I, kh, kw = weight.shape[1:]
    weight = weight * (1 / math.sqrt(I * kh * kw) / _nonzero(weight.norm(float("inf"), dim=(1, 2, 3), keepdim=True)))
    styles = styles / _nonzero(styles.norm(float("inf"), dim=1, keepdim=True))
    return weight, styles


def _conv(x, w, f, up, down, padding, groups, flip_weight):
    return conv2d_resample(x, w, f=f, up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight)


def _demod_coefs(weight, styles, eps):
    """d [N, O] = rsqrt(styles^2 @ sum_k weight^2 + eps), without per-sample weights."""
    wsq = opmath(weight).square().sum(dim=(2, 3))  # [O, I]
    return (opmath(styles).square() @ wsq.t() + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True,
                     impl: str = "auto") -> torch.Tensor:
    """StyleGAN2 modulated convolution (NVlabs semantics).

    Args:
        x: [N, I, H, W] activations; float16, bfloat16, float32 or float64.
        weight: [O, I, kh, kw] shared weight (any float dtype; usually float32 parameters).
        styles: [N, I] per-sample input-channel scales, weight's dtype.
        noise: optional tensor added to the output: any shape that broadcasts to
            [N, O, H', W'] without enlarging it, e.g. [H', W'] (NVlabs' noise_mode='const'),
            [N, 1, H', W'] or [N, O, H', W']; any float dtype (cast to x's).
        up, down: integer up/down-sampling factors (default 1), via ``conv2d_resample``.
        padding: int, [px, py] or [x0, x1, y0, y1] (default 0), as ``conv2d_resample``'s.
        resample_filter: FIR filter for up/down-sampling (e.g. ``setup_filter([1, 3, 3, 1])``)
            or None.
        demodulate: divide by the per-(n, o) norm of the modulated weight (default True).
        flip_weight: True (default) correlates as ``F.conv2d``; False flips the kernel.
        fused_modconv: True (default) runs one grouped conv with per-sample weights; False
            scales the activations, runs a shared conv, and demodulates afterwards.
        impl: 'auto' (fused weight kernel where built) or 'ref' (plain torch throughout).

    For float16 x with demodulation, weight and styles are first scaled to max-abs 1 as
    StyleGAN2-ADA does, so that float16 products cannot overflow.

    Returns [N, O, H', W'] in x's dtype, differentiable to any order in x, weight, styles
    and noise. Spatial size as ``conv2d_resample``: H' = H + pads - kh + 1 without resampling.

    Raises TypeError naming the argument for one of the wrong type (a tensor argument that is not
    a float tensor, styles of another dtype than weight, up or down not an int, padding as
    ``upfirdn2d``'s, a flag not a bool, impl not a string), ValueError for one of the right type
    with a bad value (shapes that do not fit, another device, a factor < 1, a padding that leaves
    no output, a noise that does not broadcast to the output, another impl string), each naming
    modulated_conv2d, never the conv2d_resample it runs on.
    """
    op = "modulated_conv2d"
    _resolve(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, fused_modconv, op)
    check_impl(impl, op)
    N, I, H, W = static_sizes(x, 0, 1, 2, 3)
    O = static_sizes(weight, 0)[0]
    if x.dtype == torch.float16 and demodulate:
        weight, styles = _prescale_fp16(x, weight, styles)
    if N == 0:  # a grouped conv needs groups >= 1; with no samples both orders give the same (empty) result
        fused_modconv = False

    if not fused_modconv:
        y = _conv(x * styles.to(x.dtype).reshape(N, I, 1, 1), weight.to(x.dtype), resample_filter, up, down,
                  padding, 1, flip_weight)
        _check_noise_size(y, noise, op)
        if demodulate:
            d = _demod_coefs(weight, styles, DEMOD_EPS).to(x.dtype).reshape(N, O, 1, 1)
            # One fused pass for demodulation and noise.
            return _layout_of(x, y * d if noise is None else torch.addcmul(noise.to(x.dtype), y, d))
        return _layout_of(x, y if noise is None else y + noise.to(x.dtype))

    if demodulate:
        w, _ = modulate_weight(weight, styles, DEMOD_EPS, impl=impl)
    else:
        w = weight[None] * styles[:, None, :, None, None]
    y = _conv(x.reshape(1, N * I, H, W), w.reshape(N * O, I, *weight.shape[2:]).to(x.dtype), resample_filter,
              up, down, padding, N, flip_weight)
    y = y.reshape(N, O, *y.shape[2:])
    _check_noise_size(y, noise, op)
    return _layout_of(x, y if noise is None else y + noise.to(x.dtype))


def _layout_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y in x's memory format. The grouped convolution takes the batch into its channels
    ([1, N·I, H, W]), which a channels_last x cannot be viewed as, so its output is NCHW, and a
    noise tensor added to y can lend the sum its own layout: one copy, only then, gives the
    result the input's layout back, as every other op keeps it."""
    if kernel_layout(x) == torch.channels_last and not y.is_contiguous(memory_format=torch.channels_last):
        return y.contiguous(memory_format=torch.channels_last)
    return y


def modulated_conv2d_ref(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                         noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                         resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                         flip_weight: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """Plain-PyTorch ``modulated_conv2d`` as StyleGAN2-ADA computes it: per-sample weights
    and their norms are formed with elementwise torch ops in both execution orders."""
    op = "modulated_conv2d_ref"
    _resolve(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, fused_modconv, op)
    N, I, H, W = static_sizes(x, 0, 1, 2, 3)
    O = static_sizes(weight, 0)[0]
    if x.dtype == torch.float16 and demodulate:
        weight, styles = _prescale_fp16(x, weight, styles)
    if N == 0:  # see modulated_conv2d
        fused_modconv = False
    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight[None] * styles.reshape(N, 1, I, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=(2, 3, 4)) + DEMOD_EPS).rsqrt()
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(N, O, 1, 1, 1)
    if not fused_modconv:
        y = _conv(x * styles.to(x.dtype).reshape(N, I, 1, 1), weight.to(x.dtype), resample_filter, up, down,
                  padding, 1, flip_weight)
        _check_noise_size(y, noise, op)
        if demodulate:
            y = y * dcoefs.to(x.dtype).reshape(N, O, 1, 1)
        return _layout_of(x, y if noise is None else y + noise.to(x.dtype))
    y = _conv(x.reshape(1, N * I, H, W), w.reshape(N * O, I, *weight.shape[2:]).to(x.dtype), resample_filter,
              up, down, padding, N, flip_weight)
    y = y.reshape(N, O, *y.shape[2:])
    _check_noise_size(y, noise, op)
    return _layout_of(x, y if noise is None else y + noise.to(x.dtype))
