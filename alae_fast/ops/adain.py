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

from typing import NamedTuple

import torch

from .. import _lib
from ._dispatch import (quiet_under_trace, check_alpha, check_choice, check_eps, check_same, check_tensor, op_arguments, opmath,
                        save_arguments, saved_arguments, use_kernel)
from .bias_act import ACTIVATIONS, _act_ref
from .instance_norm_grad import MapGrads, MapInputs, channel_dot, dz_to_inputs, in_grad_map, in_grad_vjp


@quiet_under_trace
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
    check_choice(act, "act", ACTIVATIONS, op)
    alpha = check_alpha(alpha, ACTIVATIONS[act][0], op)
    return noise, alpha, check_eps(eps, op)


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

    Raises TypeError naming the argument for one of the wrong type (a tensor argument that is
    not a float tensor or of another dtype, act or impl not a string, alpha or eps not a real
    number), ValueError for one of the right type with a bad value (a wrong shape or device,
    noise_weight without noise, an unknown act or impl, NaN or inf, a negative eps).
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
    a = _act_ref(_pre_activation(x, noise, noise_weight, bias), act, alpha)
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


class AdainGradOutputs(NamedTuple):
    """The outputs of the adain_grad op (see csrc/ops/adain.cpp), row sums [N, C] in the
    computation dtype."""
    dz: torch.Tensor  # dL/d(x + noise_weight * noise + bias), x's dtype
    sum_gy: torch.Tensor
    sum_gy_xhat: torch.Tensor
    sum_dz: torch.Tensor
    sum_dz_noise: torch.Tensor  # zeros without noise


def _pre_activation(x, noise, noise_weight, bias):
    """z = x + noise_weight * noise + bias in the computation dtype, in differentiable torch ops."""
    C = x.shape[1]
    z = opmath(x)
    if noise is not None:
        n = opmath(noise)
        z = z + (n if noise_weight is None else opmath(noise_weight).view(1, C, 1, 1) * n)
    if bias is not None:
        z = z + opmath(bias).view(1, C, 1, 1)
    return z


# adain_grad's arguments, named as in its schema (csrc/ops/adain.cpp).
_AdainGradArgs = op_arguments("adain_grad") if _lib.loaded() else None


def _setup_adain_grad(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    save_arguments(ctx, _AdainGradArgs(*inputs))


def _backward_adain_grad(ctx, *cotangents):
    """Backward of adain_grad: the VJP of the instance-norm map (instance_norm_grad.py) and the
    chain through z = x + noise_weight * noise + bias and sigma = 1 + style_scale."""
    a = saved_arguments(ctx, _AdainGradArgs)
    need = _AdainGradArgs(*ctx.needs_input_grad)
    cot = AdainGradOutputs(*cotangents)
    if a.noise is None:
        cot = cot._replace(sum_dz_noise=None)  # sum(dz * noise) is then a constant zero
    if all(c is None for c in cot):
        return tuple(_AdainGradArgs())
    z = _pre_activation(a.x, a.noise, a.noise_weight, a.bias)
    m = MapInputs(None if a.gy is None else opmath(a.gy), a.gmean, a.gstd, z, a.mean, a.std,
                  None if a.style_scale is None else 1 + opmath(a.style_scale))
    # sum(dz) and sum(dz * noise) are linear in dz: their cotangents join dz's.
    dz_cot = None if cot.dz is None else opmath(cot.dz)
    for extra in (None if cot.sum_dz is None else cot.sum_dz[:, :, None, None],
                  None if cot.sum_dz_noise is None else cot.sum_dz_noise[:, :, None, None] * opmath(a.noise)):
        if extra is not None:
            dz_cot = extra.expand(z.shape) if dz_cot is None else dz_cot + extra
    needs = MapGrads(gy=need.gy, g_mean=need.gmean, g_std=need.gstd,
                     z=need.x or need.noise or need.noise_weight or need.bias,
                     mean=need.mean, std=need.std, sigma=a.style_scale is not None and need.style_scale)
    g = in_grad_vjp(m, dz_cot, cot.sum_gy, cot.sum_gy_xhat, a.act, a.alpha, needs)
    dx = dnoise = dnw = dbias = None
    if g.z is not None:
        dx, dnoise, dnw, dbias = dz_to_inputs(g.z.to(a.x.dtype), a.noise, a.noise_weight, need)
    if cot.sum_dz_noise is not None and need.noise:
        # sum(dz * noise) also depends on noise directly.
        dz = in_grad_map(m, a.act, a.alpha)
        extra = channel_dot(cot.sum_dz_noise[:, :, None, None] * dz, None).to(a.x.dtype)
        dnoise = extra if dnoise is None else dnoise + extra
    return tuple(_AdainGradArgs(
        gy=None if g.gy is None else g.gy.to(a.x.dtype), gmean=g.g_mean, gstd=g.g_std,
        x=dx, noise=dnoise, noise_weight=dnw, bias=dbias,
        style_scale=None if g.sigma is None else g.sigma.to(a.x.dtype), mean=g.mean, std=g.std))


if _lib.loaded():
    torch.library.register_fake("alae_fast::adain")(_fake_adain)
    torch.library.register_fake("alae_fast::adain_grad")(_fake_adain_grad)
    torch.library.register_autograd("alae_fast::adain_grad", _backward_adain_grad,
                                    setup_context=_setup_adain_grad)
