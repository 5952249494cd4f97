"""The instance-norm gradient map and its vector-Jacobian product, in differentiable torch ops.

Shared by ``adain`` and ``instance_norm_stats``: their gradient ops (``adain_grad``,
``instance_norm_stats_grad``) compute the map below in a kernel; the backward of those ops is
the VJP below, written in torch ops (plus the differentiable ``bias_act_grad`` op for the
activation's derivatives) so that a third order can follow. The CPU and CUDA kernels compute
the same map with ``row_grad_coefs`` (csrc/common/instance_norm.h):
``A = scale``, ``B = (g_std - scale * sum_gy_xhat) / L``, ``D = (g_mean - scale * sum_gy) / L``,
``da = A * gy + B * xhat + D``.

Derivation (per (n, c) plane of L = H * W values, sums over the plane; the plane's mean and std
are held as independent inputs, since the forward returns them as outputs of their own)::

    a     = act(z)                     the activation of the pre-activation z
    inv_std = 1 / std
    xhat  = (a - mean) * inv_std
    scale = sigma * inv_std            sigma = 1 + style_scale (1 when absent)

    The map (inputs gy, g_mean, g_std, z, mean, std, sigma):
    sum_gy      = sum(gy)
    sum_gy_xhat = sum(gy * xhat)
    da = scale * (gy - sum_gy / L - xhat * sum_gy_xhat / L) + g_mean / L + g_std * xhat / L
    dz = act'(z) * da

Its VJP takes the cotangents dz_cot, sum_gy_cot, sum_gy_xhat_cot of (dz, sum_gy, sum_gy_xhat)
and differentiates the scalar ``s = sum(dz_cot * dz) + sum_gy_cot * sum_gy
+ sum_gy_xhat_cot * sum_gy_xhat``. With ``da_cot = act'(z) * dz_cot`` (the cotangent of da),
``sum_da_cot = sum(da_cot)`` and ``sum_da_cot_xhat = sum(da_cot * xhat)``::

    ds/dgy     = scale * da_cot + c_one + c_xhat * xhat,
                 c_one  = sum_gy_cot      - scale * sum_da_cot / L
                 c_xhat = sum_gy_xhat_cot - scale * sum_da_cot_xhat / L
    ds/dg_mean = sum_da_cot / L
    ds/dg_std  = sum_da_cot_xhat / L
    ds/dxhat   = c_xhat * gy + c_da * da_cot,            (through da, sum_gy_xhat)
                 c_da = g_std / L - scale * sum_gy_xhat / L
    ds/dz      = act'(z) * inv_std * ds/dxhat + dz_cot * act''(z) * da
                 (the second term is 0 for piecewise-linear activations)
    ds/dmean   = -inv_std * sum(ds/dxhat) = -inv_std * (c_xhat * sum_gy + c_da * sum_da_cot)
    ds/dscale  = w = sum(da_cot * gy) - sum_gy * sum_da_cot / L - sum_gy_xhat * sum_da_cot_xhat / L
    ds/dsigma  = inv_std * w
    ds/dstd    = -inv_std * (inv_std * sigma * w + c_xhat * sum_gy_xhat + c_da * sum_da_cot_xhat)
                 (xhat and scale both carry 1/std: d xhat/d std = -inv_std * xhat,
                  d scale/d std = -inv_std * scale)

Every row sum of ``ds/dxhat`` follows from sums already taken, so the full-size tensor is formed
only for the z gradient: each full-size pass costs about as much as the whole fused forward.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .bias_act import _PIECEWISE_LINEAR, _act_ref


class MapInputs(NamedTuple):
    """The inputs of the gradient map, in the computation dtype ([N,C,H,W] or [N,C] rows).

    ``gy``, ``g_mean``, ``g_std`` may be None (zero); ``sigma`` None means 1.
    """
    gy: torch.Tensor | None
    g_mean: torch.Tensor | None
    g_std: torch.Tensor | None
    z: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    sigma: torch.Tensor | None


class MapGrads(NamedTuple):
    """One field per ``MapInputs`` field: a bool (is it needed?) or its gradient (None if not)."""
    gy: object = None
    g_mean: object = None
    g_std: object = None
    z: object = None
    mean: object = None
    std: object = None
    sigma: object = None


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


def dz_to_inputs(dz, noise, noise_weight, needs, sum_dz=None, sum_dz_noise=None):
    """Gradients (x, noise, noise_weight, bias) from dz = dL/d(x + noise_weight*noise + bias).

    ``needs`` is a mapping-like with bool fields ``x``, ``noise``, ``noise_weight``, ``bias``.
    ``sum_dz`` and ``sum_dz_noise`` ([N, C] row sums of dz and dz * noise, as the grad kernel
    returns them) spare passes over dz when given. Written in torch ops, so differentiable.
    """
    dx = dz if needs.x else None
    dnoise = dnw = db = None
    if noise is not None and needs.noise:
        dnoise = channel_dot(dz, noise_weight)
    if noise_weight is not None and needs.noise_weight:
        if sum_dz_noise is not None:
            dnw = sum_dz_noise.sum(0).to(dz.dtype)
        else:
            dnw = _sum_f32(dz * noise, (0, 2, 3))
    if needs.bias:
        db = sum_dz.sum(0).to(dz.dtype) if sum_dz is not None else _sum_f32(dz, (0, 2, 3))
    return dx, dnoise, dnw, db


def act_deriv(g: torch.Tensor, z: torch.Tensor, act: str, alpha: float, order: int) -> torch.Tensor:
    """``g * act^(order)(z)`` (gain 1) by the differentiable bias_act_grad op."""
    return torch.ops.alae_fast.bias_act_grad(g, z, None, 1, act, alpha, 1.0, None, order)[0]


def _rowsum(t: torch.Tensor) -> torch.Tensor:
    return t.sum((2, 3))


def _row(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, None, None]


def _through_act(g: torch.Tensor, z: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    return g if act == "linear" else act_deriv(g, z, act, alpha, 1)


def in_grad_map(m: MapInputs, act: str, alpha: float) -> torch.Tensor:
    """The map's ``dz`` (module docstring) in differentiable torch ops; [N,C,H,W]."""
    L = m.z.shape[2] * m.z.shape[3]
    inv_std = 1.0 / m.std
    scale = inv_std if m.sigma is None else m.sigma * inv_std
    xhat = (_act_ref(m.z, act, alpha) - _row(m.mean)) * _row(inv_std)
    da = torch.zeros_like(m.z)
    if m.gy is not None:
        da = _row(scale) * (m.gy - _row(_rowsum(m.gy)) / L - xhat * _row(_rowsum(m.gy * xhat)) / L)
    if m.g_mean is not None:
        da = da + _row(m.g_mean) / L
    if m.g_std is not None:
        da = da + _row(m.g_std) * xhat / L
    return _through_act(da, m.z, act, alpha)


def _grad_z(m, dz_cot, da_cot, xhat, q, act, alpha):
    """ds/dz (module docstring): ``act'(z) * inv_std * ds/dxhat + dz_cot * act''(z) * da``."""
    g_xhat = None  # inv_std * ds/dxhat, never formed where gy or da_cot is absent
    if m.gy is not None:
        g_xhat = _row(q.c_xhat * q.inv_std) * m.gy
    if da_cot is not None:
        term = _row(q.c_da * q.inv_std)
        g_xhat = term * da_cot if g_xhat is None else torch.addcmul(g_xhat, term, da_cot)
    if g_xhat is None:
        g_xhat = torch.zeros_like(m.z)
    gz = _through_act(g_xhat, m.z, act, alpha)
    if dz_cot is not None and act not in _PIECEWISE_LINEAR:
        L = m.z.shape[2] * m.z.shape[3]
        gy = m.gy if m.gy is not None else torch.zeros_like(m.z)
        da = (_row(q.scale) * (gy - _row(q.sum_gy) / L - xhat * _row(q.sum_gy_xhat) / L)
              + _row(q.g_mean) / L + _row(q.g_std) * xhat / L)
        gz = gz + act_deriv(dz_cot * da, m.z, act, alpha, 2)
    return gz


class _Rows(NamedTuple):
    """The [N, C] quantities of the derivation (absent ones as zero rows)."""
    inv_std: torch.Tensor
    scale: torch.Tensor
    g_mean: torch.Tensor
    g_std: torch.Tensor
    sum_gy: torch.Tensor
    sum_gy_xhat: torch.Tensor
    sum_da_cot: torch.Tensor
    sum_da_cot_xhat: torch.Tensor
    c_xhat: torch.Tensor
    c_da: torch.Tensor


def in_grad_vjp(m: MapInputs, dz_cot, sum_gy_cot, sum_gy_xhat_cot, act: str, alpha: float,
                needs: MapGrads) -> MapGrads:
    """Vector-Jacobian product of the instance-norm gradient map (module docstring).

    Args:
        m: the map's inputs, in the computation dtype.
        dz_cot: [N,C,H,W] cotangent of dz; sum_gy_cot, sum_gy_xhat_cot: [N,C] cotangents of
            sum_gy and sum_gy_xhat. Each may be None (zero).
        act, alpha: the activation (any bias_act activation, gain 1).
        needs: MapGrads of bools, which gradients to compute.
    Returns:
        MapGrads of the gradients (computation dtype; None where not needed).
    """
    L = m.z.shape[2] * m.z.shape[3]
    if L == 0:
        # Planes of no values: every sum over a plane is 0 and every per-element gradient empty.
        # The statistics are NaN there (the mean of no values), and 0 * NaN or 0 / L would turn
        # the row gradients (style_scale's, the statistics') NaN where PyTorch's autograd gives 0.
        zero_row, zero_el = torch.zeros_like(m.mean), torch.zeros_like(m.z)
        return MapGrads(**{f: (zero_el if f in ("gy", "z") else zero_row) if need else None
                           for f, need in needs._asdict().items()})
    inv_std = 1.0 / m.std
    scale = inv_std if m.sigma is None else m.sigma * inv_std
    xhat = (_act_ref(m.z, act, alpha) - _row(m.mean)) * _row(inv_std)
    zero_row = torch.zeros_like(m.mean)
    sum_gy = _rowsum(m.gy) if m.gy is not None else zero_row
    sum_gy_xhat = _rowsum(m.gy * xhat) if m.gy is not None else zero_row
    if dz_cot is not None:
        da_cot = _through_act(dz_cot, m.z, act, alpha)
        sum_da_cot, sum_da_cot_xhat = _rowsum(da_cot), _rowsum(da_cot * xhat)
    else:
        da_cot, sum_da_cot, sum_da_cot_xhat = None, zero_row, zero_row
    c_one = (sum_gy_cot if sum_gy_cot is not None else zero_row) - scale * sum_da_cot / L
    c_xhat = (sum_gy_xhat_cot if sum_gy_xhat_cot is not None else zero_row) - scale * sum_da_cot_xhat / L
    g = {}
    if needs.gy:
        g_gy = torch.addcmul(_row(c_one), _row(c_xhat), xhat)
        g["gy"] = torch.addcmul(g_gy, _row(scale), da_cot) if da_cot is not None else g_gy
    if needs.g_mean:
        g["g_mean"] = sum_da_cot / L
    if needs.g_std:
        g["g_std"] = sum_da_cot_xhat / L
    if needs.z or needs.mean or needs.std or needs.sigma:
        g_std_row = m.g_std if m.g_std is not None else zero_row
        w = ((_rowsum(da_cot * m.gy) if (da_cot is not None and m.gy is not None) else zero_row)
             - sum_gy * sum_da_cot / L - sum_gy_xhat * sum_da_cot_xhat / L)
        c_da = g_std_row / L - scale * sum_gy_xhat / L
        q = _Rows(inv_std, scale, m.g_mean if m.g_mean is not None else zero_row, g_std_row,
                  sum_gy, sum_gy_xhat, sum_da_cot, sum_da_cot_xhat, c_xhat, c_da)
        if needs.z:
            g["z"] = _grad_z(m, dz_cot, da_cot, xhat, q, act, alpha)
        if needs.mean:
            g["mean"] = -inv_std * (c_xhat * sum_gy + c_da * sum_da_cot)
        if needs.std:
            sigma_w = w if m.sigma is None else m.sigma * w
            g["std"] = -inv_std * (inv_std * sigma_w + c_xhat * sum_gy_xhat + c_da * sum_da_cot_xhat)
        if needs.sigma:
            g["sigma"] = inv_std * w
    return MapGrads(**g)
