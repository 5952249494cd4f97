"""Fused bias + activation + gain + clamp: ``bias_act``.

``y = clamp(act(x + b, alpha) * gain, -clamp, clamp)``, with ``b`` broadcast along ``dim``.
The kernel reads x once and writes y once; its gradient op computes
``dx = dy * gain * act'(x + b)`` (zero where the clamp cut) in one more pass, and is itself
differentiable, so R1-style double backward runs on kernels too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _lib
from ._dispatch import (quiet_under_trace, check_choice, check_int, check_real, check_same, check_tensor, op_arguments, opmath, save_arguments,
                        saved_arguments, use_kernel)

_SQRT2 = math.sqrt(2.0)

# name: (default alpha, default gain). alpha is read by lrelu (negative slope) and elu
# (the scale of its negative branch); the other activations ignore it.
ACTIVATIONS = {
    "linear": (0.0, 1.0),
    "relu": (0.0, _SQRT2),
    "lrelu": (0.2, _SQRT2),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (1.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, _SQRT2),
}
# Activations whose derivatives beyond the first vanish (almost everywhere).
_PIECEWISE_LINEAR = ("linear", "relu", "lrelu")


@quiet_under_trace
def _resolve(x, b, dim, act, alpha, gain, clamp, op="bias_act"):
    """Validates the arguments; returns (dim, alpha, gain, clamp) normalised for the op."""
    check_tensor(x, "x", op)
    check_choice(act, "act", ACTIVATIONS, op)
    dim = check_int(dim, "dim", op)
    if b is None:
        dim = 0  # dim only says where b goes: without b any dim is accepted, as NVlabs does
    elif x.ndim == 0:
        raise ValueError(f"{op}: b needs x with at least one dimension; x is 0-d")
    elif not -x.ndim <= dim < x.ndim:
        raise ValueError(f"{op}: dim must be in [{-x.ndim}, {x.ndim - 1}] for x of rank {x.ndim}; got {dim}")
    else:
        dim %= x.ndim
    if b is not None:
        check_tensor(b, "b", op)
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"{op}: b must be 1-D of length x.shape[{dim}] = {x.shape[dim]}; "
                             f"got shape {tuple(b.shape)}")
        check_same(b, "b", x, op)
    def_alpha, def_gain = ACTIVATIONS[act]
    alpha = check_real(alpha, "alpha", op, none_ok=True)
    gain = check_real(gain, "gain", op, none_ok=True)
    clamp = check_real(clamp, "clamp", op, none_ok=True, inf_ok=True)
    if clamp is not None and clamp < 0:
        raise ValueError(f"{op}: clamp must be >= 0 or None; got {clamp}")
    return dim, def_alpha if alpha is None else alpha, def_gain if gain is None else gain, clamp


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """Fused ``clamp(act(x + b, alpha) * gain, -clamp, clamp)``.

    Args:
        x: tensor of any shape; float16, bfloat16, float32 or float64 (half types are
            computed in float32). Any strides; contiguous and channels_last run without a copy.
        b: optional 1-D bias of length ``x.shape[dim]``, same dtype and device as ``x``.
        dim: the dimension of ``x`` that ``b`` runs along (default 1, channels of NCHW);
            checked only when ``b`` is given.
        act: 'linear' (default), 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu',
            'softplus' or 'swish'.
        alpha: lrelu's negative slope (default 0.2) or elu's negative scale (default 1.0);
            ignored by the other activations.
        gain: output scale; default sqrt(2) for relu, lrelu and swish, 1 otherwise.
        clamp: clamp the output to [-clamp, clamp]; None (default) for no clamp. Must be >= 0.
        impl: 'auto' (compiled kernel when built for x's device, else the reference) or 'ref'.

    Returns:
        Tensor of x's shape, dtype and memory format. Differentiable to second order in
        x and b (third order where the activation's third derivative is needed).

    Raises:
        TypeError naming the argument for one of the wrong type (x or b not a float tensor, b of
        another dtype, dim not an int, act or impl not a string, alpha, gain or clamp not a real
        number or None), ValueError for one of the right type with a bad value (b of the wrong
        shape or device, dim out of range, an unknown act or impl, NaN or inf, a negative clamp).
    """
    dim, alpha, gain, clamp = _resolve(x, b, dim, act, alpha, gain, clamp)
    if use_kernel(x, impl, "bias_act"):
        return torch.ops.alae_fast.bias_act(x, b, dim, act, alpha, gain, clamp)
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None,
                 clamp: float | None = None) -> torch.Tensor:
    """Plain-PyTorch ``bias_act`` (same arguments and result; autograd by PyTorch)."""
    dim, alpha, gain, clamp = _resolve(x, b, dim, act, alpha, gain, clamp, op="bias_act_ref")
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


# The activations in plain PyTorch: act(z, alpha).
_ACT_REF = {
    "linear": lambda z, alpha: z,
    "relu": lambda z, alpha: F.relu(z),
    "lrelu": lambda z, alpha: F.leaky_relu(z, alpha),
    "tanh": lambda z, alpha: torch.tanh(z),
    "sigmoid": lambda z, alpha: torch.sigmoid(z),
    "elu": lambda z, alpha: F.elu(z, alpha),
    "selu": lambda z, alpha: F.selu(z),
    "softplus": lambda z, alpha: F.softplus(z),
    "swish": lambda z, alpha: z * torch.sigmoid(z),
}


def _act_ref(z: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    return _ACT_REF[act](z, alpha)


def _bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    z = opmath(x)
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        z = z + opmath(b).reshape(shape)
    y = _act_ref(z, act, alpha)
    if gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    y = y.to(x.dtype)
    return y.clone() if y is x else y  # a new tensor, as the kernel's: the identity must not alias x


# --- registration: fake kernels, and the autograd of bias_act_grad -------------------------
# (bias_act's own autograd is C++, csrc/autograd/bias_act.cpp: per-call cost.)

def _fake_like_x(x, *args):
    # The kernels write into at::empty_like of x (x made dense first), which keeps x's
    # strides for dense x and otherwise gives x's suggested memory format: empty_like does both.
    return torch.empty_like(x)


def _fake_grad(g, x, b, dim, *args):
    torch._check(g.shape == x.shape, lambda: "bias_act_grad: g must have x's shape")
    return torch.empty_like(x), x.new_empty(0 if b is None else b.shape[0])


# bias_act_grad's arguments, named as in its schema (csrc/ops/bias_act.cpp).
_GradArgs = op_arguments("bias_act_grad") if _lib.loaded() else None


def _setup_grad(ctx, inputs, output):
    save_arguments(ctx, _GradArgs(*inputs))


def _backward_grad(ctx, ddz, ddb):
    # dz = g * h_k(x + b) with h_k = gain * act^(k) masked by the clamp, and db = sum of dz over
    # all dims but `dim`, so db's cotangent joins dz's broadcast along `dim`. dz is linear in g
    # (d/dg is this op applied to the cotangent) and d/dx is g * h_{k+1}(x + b).
    a = saved_arguments(ctx, _GradArgs)
    need = _GradArgs(*ctx.needs_input_grad)
    need_b = a.b is not None and need.b
    dout = ddz
    if a.b is not None and ddb is not None:
        shape = [1] * a.x.ndim
        shape[a.dim] = -1
        dout = ddb.reshape(shape) if dout is None else dout + ddb.reshape(shape)
    if dout is None:
        return tuple(_GradArgs())
    dg = dx = db = None
    if need.g:
        dg = torch.ops.alae_fast.bias_act_grad(*a._replace(g=dout.expand_as(a.x)))[0]
    if need.x or need_b:
        if a.act in _PIECEWISE_LINEAR:
            # Every derivative past the first is zero (the clamp's mask too, almost
            # everywhere). A zero-stride zero stands for it: R1's double backward would
            # otherwise pay a multiply and a kernel pass per activation for a tensor of
            # zeros. (None would differ from PyTorch, which raises on it in autograd.grad.)
            zero = a.x.new_zeros(())
            dx = zero.expand(a.x.shape) if need.x else None
            db = zero.expand(a.b.shape) if need_b else None
        elif a.order >= 3:
            raise NotImplementedError("bias_act: gradients beyond the third order of x are not implemented")
        else:
            t, tb = torch.ops.alae_fast.bias_act_grad(*a._replace(g=dout * a.g, order=a.order + 1))
            dx = t if need.x else None
            db = tb if need_b else None
    return tuple(_GradArgs(g=dg, x=dx, b=db))


if _lib.loaded():
    torch.library.register_fake("alae_fast::bias_act")(_fake_like_x)
    torch.library.register_fake("alae_fast::bias_act_grad")(_fake_grad)
    torch.library.register_autograd("alae_fast::bias_act_grad", _backward_grad, setup_context=_setup_grad)
