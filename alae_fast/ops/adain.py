"""Fused noise + bias + activation + instance norm + style: ``adain``.

``y = IN(act(x + noise_weight * noise + bias)) * (1 + style_scale) + style_bias``, the
half-block StyleALAE's generator runs twice per resolution. The kernel reads x twice per
(n, c) plane while the plane is still in cache (once to accumulate the statistics, once to
write y) and never materialises the intermediate sums, activations or normalised values.

Gradients reach every input, to second order and beyond: the backward is the registered op
``adain_grad`` (two more passes per plane), and the backward of ``adain_grad`` is written in
differentiable torch ops (plus the differentiable ``bias_act_grad`` op for the activation's
derivatives), so R1 and path-length penalties can differentiate through it.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from .. import _lib
from ._dispatch import check_same, check_tensor, opmath, use_kernel
from .bias_act import _PIECEWISE_LINEAR, ACTIVATIONS, _act_ref


def _resolve(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha, eps, op="adain"):
    """Validates the arguments; returns (noise, alpha, eps) normalised for the op."""
    check_tensor(x, "x", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, C, H, W]; got shape {tuple(x.shape)}")
    N, C, H, W = x.shape
    for name, t in (("style_scale", style_scale), ("style_bias", style_bias)):
        if t is None:
            continue
        check_tensor(t, name, op)
        if t.ndim != 2 or t.shape[0] != N or t.shape[1] != C:
            raise ValueError(f"{op}: {name} must have shape [N, C] = [{N}, {C}] to match x; "
                             f"got {tuple(t.shape)}")
        check_same(t, name, x, op)
    for name, t in (("bias", bias), ("noise_weight", noise_weight)):
        if t is None:
            continue
        check_tensor(t, name, op)
        if t.ndim != 1 or t.shape[0] != C:
            raise ValueError(f"{op}: {name} must have shape [C] = [{C}]; got {tuple(t.shape)}")
        check_same(t, name, x, op)
    if noise is not None:
        check_tensor(noise, "noise", op)
        if noise.ndim != 4 or noise.shape[0] not in (1, N) or noise.shape[1] != 1 or tuple(noise.shape[2:]) != (H, W):
            raise ValueError(f"{op}: noise must have shape [N, 1, H, W] = [{N}, 1, {H}, {W}] "
                             f"(or [1, 1, H, W], shared by the batch); got {tuple(noise.shape)}")
        check_same(noise, "noise", x, op)
        if noise.shape[0] != N:
            noise = noise.expand(N, 1, H, W)
    elif noise_weight is not None:
        raise ValueError(f"{op}: noise_weight was given without noise")
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"{op}: act must be one of {', '.join(ACTIVATIONS)}; got {act!r}")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, Real) or not math.isfinite(alpha)):
        raise ValueError(f"{op}: alpha must be a finite number or None; got {alpha!r}")
    if isinstance(eps, bool) or not isinstance(eps, Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{op}: eps must be a finite number >= 0; got {eps!r}")
    alpha = ACTIVATIONS[act][0] if alpha is None else float(alpha)
    return noise, alpha, float(eps)


def adain(x: torch.Tensor, style_scale: torch.Tensor | None, style_bias: torch.Tensor | None, *,
          bias: torch.Tensor | None = None, noise: torch.Tensor | None = None,
          noise_weight: torch.Tensor | None = None, act: str = "lrelu", alpha: float | None = None,
          eps: float = 1e-8, impl: str = "auto") -> torch.Tensor:
    """Fused ``IN(act(x + noise_weight * noise + bias)) * (1 + style_scale) + style_bias``.

    Instance norm (IN) is taken over H and W for each (n, c):
    ``(v - mean) / sqrt(mean((v - mean)^2) + eps)`` (biased variance, eps inside the root).

    Args:
        x: [N, C, H, W]; float16, bfloat16, float32 or float64 (statistics and arithmetic in
            float32 for the half types, float64 for float64). Contiguous and channels_last
            run without a copy; other strides are copied first.
        style_scale: [N, C] or None (then 0): the output is scaled by ``1 + style_scale``.
        style_bias: [N, C] or None (then 0): added after the scale.
        bias: [C] or None: added before the activation.
        noise: [N, 1, H, W] (or [1, 1, H, W], shared by the batch) or None.
        noise_weight: [C] or None (then noise is added with weight 1); needs ``noise``.
        act: any bias_act activation: 'lrelu' (default), 'linear', 'relu', 'tanh', 'sigmoid',
            'elu', 'selu', 'softplus', 'swish'. Its gain is always 1: instance norm divides any
            positive gain out (up to eps), and StyleALAE uses plain leaky ReLU 0.2 here.
        alpha: lrelu's negative slope (default 0.2) or elu's scale (default 1.0).
        eps: added to the variance, >= 0 (default 1e-8, as StyleALAE). With eps = 0 a
            constant plane divides by zero; with eps > 0 it gives ``style_bias``.
        impl: 'auto' (compiled kernel when built for x's device, else the reference) or 'ref'.

    All tensors share x's dtype and device. Returns y of x's shape, dtype and memory format,
    differentiable to second order in every tensor argument.
    """
    noise, alpha, eps = _resolve(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha, eps)
    if use_kernel(x, impl, "adain"):
        return torch.ops.alae_fast.adain(x, noise, noise_weight, bias, style_scale, style_bias,
                                         act, alpha, eps)[0]
    return _adain_ref(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha, eps)


def adain_ref(x: torch.Tensor, style_scale: torch.Tensor | None, style_bias: torch.Tensor | None, *,
              bias: torch.Tensor | None = None, noise: torch.Tensor | None = None,
              noise_weight: torch.Tensor | None = None, act: str = "lrelu",
              alpha: float | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Plain-PyTorch ``adain`` (same arguments and result; autograd by PyTorch)."""
    noise, alpha, eps = _resolve(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha,
                                 eps, op="adain_ref")
    return _adain_ref(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha, eps)


def _adain_ref(x, style_scale, style_bias, bias, noise, noise_weight, act, alpha, eps):
    N, C = x.shape[:2]
    z = opmath(x)
    if noise is not None:
        n = opmath(noise)
        z = z + (n if noise_weight is None else opmath(noise_weight).view(1, C, 1, 1) * n)
    if bias is not None:
        z = z + opmath(bias).view(1, C, 1, 1)
    a = _act_ref(z, act, alpha)
    mean = a.mean((2, 3), keepdim=True)
    xc = a - mean
    y = xc * torch.rsqrt(xc.square().mean((2, 3), keepdim=True) + eps)
    if style_scale is not None:
        y = y * (1 + opmath(style_scale).view(N, C, 1, 1))
    if style_bias is not None:
        y = y + opmath(style_bias).view(N, C, 1, 1)
    return y.to(x.dtype)


# --- registration: fake kernels, and the autograd of adain_grad ----------------------------
# (adain's own autograd is C++, csrc/autograd/adain.cpp: per-call cost.)

def _stat_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _like_plan(x: torch.Tensor) -> torch.Tensor:
    # The kernels keep NCHW-contiguous and channels_last x as they are and copy anything else
    # to NCHW-contiguous; the output takes that tensor's strides.
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return torch.empty_like(x)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _fake_adain(x, noise, noise_weight, bias, style_scale, style_bias, act, alpha, eps):
    torch._check(x.dim() == 4, lambda: "adain: x must be 4-D")
    stat = x.new_empty((x.shape[0], x.shape[1]), dtype=_stat_dtype(x))
    return _like_plan(x), stat, torch.empty_like(stat)


def _fake_adain_grad(gy, gmean, gstd, x, noise, noise_weight, bias, style_scale, mean, std, act, alpha):
    stat = x.new_empty((x.shape[0], x.shape[1]), dtype=_stat_dtype(x))
    return (_like_plan(x), stat, torch.empty_like(stat), torch.empty_like(stat),
            torch.empty_like(stat))


def _sum_f32(t: torch.Tensor, dims) -> torch.Tensor:
    """Sum over dims, accumulated in float32 for half types, in t's dtype."""
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.sum(dims, dtype=torch.float32).to(t.dtype)
    return t.sum(dims)


def channel_dot(t: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """``sum_c w[c] * t[:, c]`` of [N, C, H, W] t as [N, 1, H, W] (w None: plain sum over C).

    A batched matrix-vector product on t's memory layout, one read of t; differentiable.
    (bmm rather than matmul: matmul folds a 1-D operand that requires grad by copying t.)
    """
    N, C, H, W = t.shape
    if w is None:
        return _sum_f32(t, (1,)).unsqueeze(1)
    if t.is_contiguous():
        return torch.bmm(w.view(1, 1, C).expand(N, 1, C), t.view(N, C, H * W)).view(N, 1, H, W)
    if t.is_contiguous(memory_format=torch.channels_last):
        tl = t.permute(0, 2, 3, 1).reshape(N, H * W, C)
        return torch.bmm(tl, w.view(1, C, 1).expand(N, C, 1)).view(N, 1, H, W)
    return torch.einsum("nchw,c->nhw", t, w).unsqueeze(1)


def _dz_to_inputs(dz, noise, noise_weight, needs, sum_dz=None, sum_dz_noise=None):
    """Gradients of (x, noise, noise_weight, bias) from dz = dL/d(x + noise_weight*noise + bias).

    ``needs`` is (x, noise, noise_weight, bias). ``sum_dz`` and ``sum_dz_noise`` ([N, C] row
    sums of dz and dz * noise, as the grad kernel returns them) spare passes over dz when given.
    Written in torch ops, so differentiable.
    """
    dx = dz if needs[0] else None
    dnoise = dnw = db = None
    if noise is not None and needs[1]:
        dnoise = channel_dot(dz, noise_weight)
    if noise_weight is not None and needs[2]:
        if sum_dz_noise is not None:
            dnw = sum_dz_noise.sum(0).to(dz.dtype)
        else:
            dnw = _sum_f32(dz * noise, (0, 2, 3))
    if needs[3]:
        db = sum_dz.sum(0).to(dz.dtype) if sum_dz is not None else _sum_f32(dz, (0, 2, 3))
    return dx, dnoise, dnw, db


def _act_deriv(g: torch.Tensor, z: torch.Tensor, act: str, alpha: float, order: int) -> torch.Tensor:
    """``g * act^(order)(z)`` (gain 1) by the differentiable bias_act_grad op."""
    return torch.ops.alae_fast.bias_act_grad(g, z, None, 1, act, alpha, 1.0, None, order)[0]


def _rowsum(t: torch.Tensor) -> torch.Tensor:
    return t.sum((2, 3))


def _row(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, None, None]


def in_grad_map(gy, gmean, gstd, z, mean, std, sigma, act, alpha):
    """The ``dz`` output of ``adain_grad`` in differentiable torch ops (see ``in_grad_vjp``)."""
    L = z.shape[2] * z.shape[3]
    r = 1.0 / std
    sr = r if sigma is None else sigma * r
    xhat = (_act_ref(z, act, alpha) - _row(mean)) * _row(r)
    da = torch.zeros_like(z)
    if gy is not None:
        da = _row(sr) * (gy - _row(_rowsum(gy)) / L - xhat * _row(_rowsum(gy * xhat)) / L)
    if gmean is not None:
        da = da + _row(gmean) / L
    if gstd is not None:
        da = da + _row(gstd) * xhat / L
    if act == "linear":
        return da
    return _act_deriv(da, z, act, alpha, 1)


def in_grad_vjp(U, Q, P, gy, gmean, gstd, z, mean, std, sigma, act, alpha, needs):
    """Vector-Jacobian product of the instance-norm gradient map, in differentiable torch ops.

    The map (the ``adain_grad`` op, with mean and std held as independent inputs) is
    ``dz = act'(z) * da``, ``Sg = sum(gy)``, ``Sgx = sum(gy * xhat)`` with
    ``xhat = (act(z) - mean) / std`` and
    ``da = sigma/std * (gy - Sg/L - xhat*Sgx/L) + gmean/L + gstd*xhat/L`` (sums over H, W).

    Args: U [N,C,H,W], Q and P [N,C]: cotangents of dz, Sg and Sgx (each may be None);
    gy [N,C,H,W], gmean, gstd [N,C]: the map's inputs (None = 0); z the pre-activation;
    mean, std [N,C]; sigma [N,C] or None (1); needs: which of
    (gy, gmean, gstd, z, mean, std, sigma) to return. All in the computation dtype.
    Returns that 7-tuple, None where not needed.
    """
    N, C, H, W = z.shape
    L = H * W
    r = 1.0 / std
    sr = r if sigma is None else sigma * r
    a = _act_ref(z, act, alpha)
    xhat = (a - _row(mean)) * _row(r)
    zero_row = torch.zeros_like(mean)
    Sg = _rowsum(gy) if gy is not None else zero_row
    Sgx = _rowsum(gy * xhat) if gy is not None else zero_row
    gm = gmean if gmean is not None else zero_row
    gs = gstd if gstd is not None else zero_row
    if U is not None:
        V = U if act == "linear" else _act_deriv(U, z, act, alpha, 1)
        SV, SVx = _rowsum(V), _rowsum(V * xhat)
    else:
        V, SV, SVx = None, zero_row, zero_row
    Qr = Q if Q is not None else zero_row
    Pr = P if P is not None else zero_row
    cg = Qr - sr * SV / L
    cx = Pr - sr * SVx / L
    out = [None] * 7
    if needs[0]:
        ggy = torch.addcmul(_row(cg), _row(cx), xhat)
        out[0] = torch.addcmul(ggy, _row(sr), V) if V is not None else ggy
    if needs[1]:
        out[1] = SV / L
    if needs[2]:
        out[2] = SVx / L
    if any(needs[3:]):
        # W = sum(V*gy) - Sg*SV/L - Sgx*SVx/L: the derivative with respect to sigma/std.
        Wr = (_rowsum(V * gy) if (V is not None and gy is not None) else zero_row) - Sg * SV / L - Sgx * SVx / L
        cv = gs / L - sr * Sgx / L
        # Gx = cx*gy + cv*V. Its row sums follow from sums already taken (Sg, SV, Sgx, SVx are
        # 0 where gy or V is absent), so the full tensor is formed only for the z gradient:
        # each full-size pass costs about as much as the whole fused forward.
        if needs[3]:
            ga = None
            if gy is not None:
                ga = _row(cx * r) * gy
            if V is not None:
                ga = _row(cv * r) * V if ga is None else torch.addcmul(ga, _row(cv * r), V)
            if ga is None:
                ga = torch.zeros_like(z)
            gz = ga if act == "linear" else _act_deriv(ga, z, act, alpha, 1)
            if U is not None and act not in _PIECEWISE_LINEAR:
                ggyc = gy if gy is not None else torch.zeros_like(z)
                da = _row(sr) * (ggyc - _row(Sg) / L - xhat * _row(Sgx) / L) + _row(gm) / L + _row(gs) * xhat / L
                gz = gz + _act_deriv(U * da, z, act, alpha, 2)
            out[3] = gz
        if needs[4]:
            out[4] = -r * (cx * Sg + cv * SV)
        if needs[5]:
            sW = Wr if sigma is None else sigma * Wr
            out[5] = -r * (r * sW + cx * Sgx + cv * SVx)
        if needs[6]:
            out[6] = r * Wr
    return tuple(out)


def _setup_adain_grad(ctx, inputs, output):
    gy, gmean, gstd, x, noise, noise_weight, bias, style_scale, mean, std, act, alpha = inputs
    ctx.act, ctx.alpha = act, alpha
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(gy, gmean, gstd, x, noise, noise_weight, bias, style_scale, mean, std)


def _backward_adain_grad(ctx, U, Q, P, Qz, Qzn):
    gy, gmean, gstd, x, noise, noise_weight, bias, style_scale, mean, std = ctx.saved_tensors
    need = ctx.needs_input_grad
    result = [None] * 12
    if noise is None:
        Qzn = None  # sum(dz * noise) is then a constant zero
    if U is None and Q is None and P is None and Qz is None and Qzn is None:
        return tuple(result)
    C = x.shape[1]
    # The pre-activation, in differentiable torch ops so that a third order can follow.
    z = opmath(x)
    if noise is not None:
        n = opmath(noise)
        z = z + (n if noise_weight is None else opmath(noise_weight).view(1, C, 1, 1) * n)
    if bias is not None:
        z = z + opmath(bias).view(1, C, 1, 1)
    need_z = any(need[3:7])
    sigma = None if style_scale is None else 1 + opmath(style_scale)
    gyo = None if gy is None else opmath(gy)
    # sum(dz) and sum(dz * noise) are linear in dz: their cotangents join U's.
    Ue = None if U is None else opmath(U)
    for extra in (None if Qz is None else _row(Qz),
                  None if Qzn is None else _row(Qzn) * opmath(noise)):
        if extra is not None:
            Ue = extra.expand(z.shape) if Ue is None else Ue + extra
    g = in_grad_vjp(Ue, Q, P, gyo, gmean, gstd, z, mean, std, sigma, ctx.act, ctx.alpha,
                    (need[0], need[1], need[2], need_z, need[8], need[9], style_scale is not None and need[7]))
    ggy, ggm, ggs, gz, gmu, gsd, gsig = g
    result[0] = None if ggy is None else ggy.to(x.dtype)
    result[1], result[2] = ggm, ggs
    if gz is not None:
        gz = gz.to(x.dtype)
        result[3:7] = _dz_to_inputs(gz, noise, noise_weight, (need[3], need[4], need[5], need[6]))
    if Qzn is not None and need[4]:
        # sum(dz * noise) also depends on noise directly.
        dz = in_grad_map(gyo, gmean, gstd, z, mean, std, sigma, ctx.act, ctx.alpha)
        extra = channel_dot(_row(Qzn) * dz, None).to(x.dtype)
        result[4] = extra if result[4] is None else result[4] + extra
    result[7] = None if gsig is None else gsig.to(x.dtype)
    result[8], result[9] = gmu, gsd
    return tuple(result)


if _lib.loaded():
    torch.library.register_fake("alae_fast::adain")(_fake_adain)
    torch.library.register_fake("alae_fast::adain_grad")(_fake_adain_grad)
    torch.library.register_autograd("alae_fast::adain_grad", _backward_adain_grad,
                                    setup_context=_setup_adain_grad)
