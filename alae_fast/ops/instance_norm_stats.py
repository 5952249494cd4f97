"""Instance normalisation that also returns its statistics: ``instance_norm_stats``.

ALAE's encoder takes the per-channel mean and std before every instance norm and maps
them through linear layers to the latent w; the R1 penalty then differentiates through
them. One kernel computes the normalised tensor and both statistics (the adain engine with
a linear activation), and all three are differentiable to second order.
"""

from __future__ import annotations

import torch

from .. import _lib
from ._dispatch import (quiet_under_trace, check_alpha, check_choice, check_eps, check_same, check_tensor, op_arguments, opmath,
                        save_arguments, saved_arguments, use_kernel)
from .adain import _fake_adain, _like_plan
from .bias_act import ACTIVATIONS, _act_ref
from .instance_norm_grad import MapGrads, MapInputs, in_grad_vjp


@quiet_under_trace
def _resolve(x, eps, bias=None, act="linear", alpha=None, op="instance_norm_stats"):
    """Validates the arguments; returns (eps, alpha) normalised for the op."""
    check_tensor(x, "x", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D [N, C, H, W]; got shape {tuple(x.shape)}")
    eps = check_eps(eps, op)
    if bias is not None:
        check_tensor(bias, "bias", op)
        if bias.ndim != 1 or bias.shape[0] != x.shape[1]:
            raise ValueError(f"{op}: bias must have shape [C] = [{x.shape[1]}]; got {tuple(bias.shape)}")
        check_same(bias, "bias", x, op)
    check_choice(act, "act", ACTIVATIONS, op)
    return eps, check_alpha(alpha, ACTIVATIONS[act][0], op)


def instance_norm_stats(x: torch.Tensor, eps: float = 1e-8, impl: str = "auto", *,
                        bias: torch.Tensor | None = None, act: str = "linear",
                        alpha: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Instance norm over H and W, with its statistics: ``(y, mean, std)``.

    With ``a = act(x + bias)`` (just ``x`` by default): ``mean = mean(a)`` and
    ``std = sqrt(mean((a - mean)^2) + eps)`` per (n, c) (biased variance),
    ``y = (a - mean) / std``.

    Args:
        x: [N, C, H, W]; float16, bfloat16, float32 or float64 (statistics in float32 for
            the half types). Contiguous and channels_last run without a copy.
        eps: added to the variance, >= 0 (default 1e-8, as ALAE's encoder).
        impl: 'auto' (compiled kernel when built for x's device, else the reference) or 'ref'.
        bias: [C] or None: added before the activation (x's dtype and device).
        act: any bias_act activation, gain 1 (default 'linear'). ALAE's encoder block is
            conv -> bias -> leaky ReLU -> these statistics: with ``bias`` and ``act='lrelu'``
            the three run as one kernel (the adain engine) instead of a bias_act pass first.
        alpha: lrelu's negative slope (default 0.2) or elu's scale (default 1.0).

    Returns:
        y: x's shape, dtype and memory format; mean, std: [N, C] in x's dtype. Each is
        differentiable to second order.

    Raises:
        TypeError naming the argument for one of the wrong type (x or bias not a float tensor,
        act or impl not a string, eps or alpha not a real number), ValueError for one of the
        right type with a bad value (a wrong shape or device, an unknown act or impl, NaN or
        inf, a negative eps).
    """
    eps, alpha = _resolve(x, eps, bias, act, alpha)
    if use_kernel(x, impl, "instance_norm_stats"):
        if bias is None and act == "linear":
            y, mean, std = torch.ops.alae_fast.instance_norm_stats(x, eps)
        else:
            y, mean, std = torch.ops.alae_fast.adain(x, None, None, bias, None, None, act, alpha, eps)
        return y, mean.to(x.dtype), std.to(x.dtype)
    return _instance_norm_stats_ref(x, eps, bias, act, alpha)


def instance_norm_stats_ref(x: torch.Tensor, eps: float = 1e-8, *, bias: torch.Tensor | None = None,
                            act: str = "linear", alpha: float | None = None):
    """Plain-PyTorch ``instance_norm_stats`` (same arguments and results)."""
    eps, alpha = _resolve(x, eps, bias, act, alpha, op="instance_norm_stats_ref")
    return _instance_norm_stats_ref(x, eps, bias, act, alpha)


def _instance_norm_stats_ref(x, eps, bias=None, act="linear", alpha=0.0):
    a = opmath(x)
    if bias is not None:
        a = a + opmath(bias).view(1, -1, 1, 1)
    if act != "linear":
        a = _act_ref(a, act, alpha)
    mean = a.mean((2, 3), keepdim=True)
    xc = a - mean
    std = torch.sqrt(xc.square().mean((2, 3), keepdim=True) + eps)
    y = xc / std
    return y.to(x.dtype), mean[:, :, 0, 0].to(x.dtype), std[:, :, 0, 0].to(x.dtype)


# --- registration: fake kernels, and the autograd of instance_norm_stats_grad ---------------
# (instance_norm_stats's own autograd is C++, csrc/autograd/instance_norm_stats.cpp.)

def _fake(x, eps):
    return _fake_adain(x, None, None, None, None, None, "linear", 0.0, eps)


def _fake_grad(gy, gmean, gstd, x, mean, std):
    return _like_plan(x)


# instance_norm_stats_grad's arguments, named as in its schema (csrc/ops/instance_norm_stats.cpp).
_GradArgs = op_arguments("instance_norm_stats_grad") if _lib.loaded() else None


def _setup_grad(ctx, inputs, output):
    ctx.set_materialize_grads(False)
    save_arguments(ctx, _GradArgs(*inputs))


def _backward_grad(ctx, dx_cot):
    """Backward of instance_norm_stats_grad: the VJP of the instance-norm map
    (instance_norm_grad.py) with a linear activation and no style scale."""
    a = saved_arguments(ctx, _GradArgs)
    need = _GradArgs(*ctx.needs_input_grad)
    if dx_cot is None:
        return tuple(_GradArgs())
    m = MapInputs(None if a.gy is None else opmath(a.gy), a.gmean, a.gstd, opmath(a.x), a.mean, a.std, None)
    needs = MapGrads(gy=need.gy, g_mean=need.gmean, g_std=need.gstd, z=need.x, mean=need.mean,
                     std=need.std, sigma=False)
    g = in_grad_vjp(m, opmath(dx_cot), None, None, "linear", 0.0, needs)
    return tuple(_GradArgs(gy=None if g.gy is None else g.gy.to(a.x.dtype), gmean=g.g_mean, gstd=g.g_std,
                           x=None if g.z is None else g.z.to(a.x.dtype), mean=g.mean, std=g.std))


if _lib.loaded():
    torch.library.register_fake("alae_fast::instance_norm_stats")(_fake)
    torch.library.register_fake("alae_fast::instance_norm_stats_grad")(_fake_grad)
    torch.library.register_autograd("alae_fast::instance_norm_stats_grad", _backward_grad,
                                    setup_context=_setup_grad)
