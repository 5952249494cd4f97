"""Layers with the equalized learning rate of progressive GANs / StyleGAN / ALAE.

A weight is stored as N(0, (1/lrmul)^2) and multiplied at run time by
``gain * lrmul / sqrt(fan_in)``. The effective weight then has the He-style standard deviation
``gain / sqrt(fan_in)`` at initialisation, while Adam-type optimizers (whose steps are about
the same size for every parameter) move every layer at the same relative speed; ``lrmul`` < 1
slows a layer down (the mapping network F and the discriminator D of ALAE use 0.1). The bias is
stored divided by its own multiplier ``bias_lrmul`` (default: ``lrmul``) and multiplied back at
run time.

Bias, activation, gain and clamp after the matmul/conv run as ONE fused ``bias_act`` op
(``alae_fast.ops.bias_act``), whose gradient is itself a differentiable op, so R1's double
backward runs on the kernels too.

Choosing the implementation: every layer here has an ``impl`` attribute ('auto' or 'ref')
passed to ``bias_act``. ``set_impl(model, 'ref')`` switches every layer of a whole model that
has such an attribute (use it on a deep copy to compare fused against reference), and
ALAE_FAST_IMPL=ref in the environment at import forces the references process-wide.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops._dispatch import as_real, check_bool, check_choice, check_positive_int, is_int, said_real, said_typed, shapes_checked
from ..ops.bias_act import ACTIVATIONS, bias_act

_SQRT2 = math.sqrt(2.0)
IMPLS = ("auto", "ref")


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Sets ``impl`` ('auto' or 'ref') on ``module`` and every submodule that has an ``impl`` attribute.

    The layers of ``alae_fast.nn`` read ``self.impl`` at each call, so this switches a whole
    model between the compiled kernels ('auto') and the PyTorch references ('ref') in place,
    e.g. ``set_impl(copy.deepcopy(model), 'ref')`` to compare the two. Returns ``module``.
    TypeError for an ``impl`` that is not a string or a ``module`` that is not an nn.Module,
    ValueError for another string.
    """
    check_choice(impl, "impl", IMPLS, "set_impl")
    if not isinstance(module, nn.Module):
        raise TypeError(f"set_impl: module must be a torch.nn.Module; got {type(module).__name__}")
    for m in module.modules():
        if isinstance(getattr(m, "impl", None), str):
            m.impl = impl
    return module


# The layers' argument checks follow the ops' rule (alae_fast.ops): TypeError for a value of the
# wrong type (a float, bool or string for a count, a string or None for a number, a non-bool flag),
# ValueError for one of the right type out of range, each naming the layer and the argument.

def _positive_real(value, name: str, layer: str) -> float:
    real = as_real(value)
    if real is None:
        raise TypeError(f"{layer}: {name} must be a finite number > 0; got {said_typed(value)}")
    if not math.isfinite(real) or real <= 0:
        raise ValueError(f"{layer}: {name} must be a finite number > 0; got {said_real(value)}")
    return float(real)


def _real(value, name: str, layer: str) -> float:
    real = as_real(value)
    if real is None:
        raise TypeError(f"{layer}: {name} must be a finite number; got {said_typed(value)}")
    if not math.isfinite(real):
        raise ValueError(f"{layer}: {name} must be a finite number; got {said_real(value)}")
    return float(real)


class _Equalized(nn.Module):
    """Shared parameter setup and the fused epilogue of EqualizedLinear and EqualizedConv2d."""

    def _setup(self, layer, weight_shape, fan_in, bias, gain, lrmul, bias_init, bias_lrmul,
               act, act_alpha, act_gain, clamp, impl, device, dtype):
        gain = _positive_real(gain, "gain", layer)
        lrmul = _positive_real(lrmul, "lrmul", layer)
        bias_lrmul = lrmul if bias_lrmul is None else _positive_real(bias_lrmul, "bias_lrmul", layer)
        bias_init = _real(bias_init, "bias_init", layer)
        bias = check_bool(bias, "bias", layer)
        check_choice(act, "act", ACTIVATIONS, layer)
        if act_alpha is not None:
            act_alpha = _real(act_alpha, "act_alpha", layer)
        if act_gain is not None:
            act_gain = _real(act_gain, "act_gain", layer)
        if clamp is not None:
            clamp = _real(clamp, "clamp", layer)
            if clamp < 0:
                raise ValueError(f"{layer}: clamp must be >= 0 or None; got {clamp}")
        check_choice(impl, "impl", IMPLS, layer)
        self.gain, self.lrmul, self.bias_lrmul = gain, lrmul, bias_lrmul
        self.weight_gain = gain * lrmul / math.sqrt(fan_in)
        self.act, self.act_alpha, self.act_gain, self.clamp = act, act_alpha, act_gain, clamp
        self.impl = impl
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(weight_shape, **factory).normal_(0.0, 1.0 / lrmul))
        if bias:
            self.bias = nn.Parameter(torch.full((weight_shape[0],), bias_init / bias_lrmul, **factory))
        else:
            self.register_parameter("bias", None)

    def _scaled(self, x: torch.Tensor):
        """The run-time weight and bias, in x's dtype."""
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias
        if b is not None:
            if self.bias_lrmul != 1.0:
                b = b * self.bias_lrmul
            b = b.to(x.dtype)
        return w, b

    def _fusable_lrelu(self) -> bool:
        # The epilogue is exactly "+ bias, leaky ReLU" (gain 1, no clamp): a following op that
        # applies bias and activation itself (instance_norm_stats, adain) can take it over.
        return self.act == "lrelu" and self.clamp is None and self.act_gain == 1.0

    def _plain_epilogue(self) -> bool:
        # A linear activation with unit gain and no clamp is just "+ bias", which the matmul /
        # conv routines add for free; bias_act would cost one more pass over the output.
        return self.act == "linear" and self.clamp is None and (self.act_gain is None or self.act_gain == 1.0)

    def _epilogue(self, y: torch.Tensor, b, dim: int) -> torch.Tensor:
        # Under autocast the matmul/conv output is bfloat16/float16 while b is float32: the
        # fused op takes b in y's dtype (it accumulates in float32 anyway).
        if b is not None and b.dtype != y.dtype:
            b = b.to(y.dtype)
        return bias_act(y, b, dim=dim, act=self.act, alpha=self.act_alpha, gain=self.act_gain,
                        clamp=self.clamp, impl=self.impl)

    def _repr_tail(self) -> str:
        s = f"bias={self.bias is not None}, gain={self.gain:.4g}, lrmul={self.lrmul:g}"
        if self.bias is not None and self.bias_lrmul != self.lrmul:
            s += f", bias_lrmul={self.bias_lrmul:g}"
        if self.act != "linear":
            s += f", act={self.act}"
            if self.act_alpha is not None:
                s += f", act_alpha={self.act_alpha:g}"
        if self.act_gain is None or self.act_gain != 1.0:
            s += f", act_gain={self.act_gain}"
        if self.clamp is not None:
            s += f", clamp={self.clamp:g}"
        if self.impl != "auto":
            s += f", impl={self.impl}"
        return s


class EqualizedLinear(_Equalized):
    """Fully connected layer with equalized learning rate and a fused bias + activation.

    ``y = clamp(act(x @ (W * gain*lrmul/sqrt(in_features)).T + b * bias_lrmul, act_alpha) * act_gain)``

    Args:
        in_features, out_features: sizes of the last dimension of input and output.
        bias: learn a bias (default True).
        gain: weight gain (default sqrt(2), He initialisation for (leaky) ReLU networks).
        lrmul: learning-rate multiplier of the weight (default 1.0; ALAE's F and D use 0.1).
        bias_init: the bias's effective initial value (default 0.0).
        bias_lrmul: learning-rate multiplier of the bias (default: ``lrmul``).
        act: activation name from ``alae_fast.ops.ACTIVATIONS`` (default 'linear').
        act_alpha: lrelu slope / elu scale (default None: bias_act's default, 0.2 for lrelu).
        act_gain: gain after the activation. Default 1.0: in the StyleGAN1/ALAE convention
            the sqrt(2) already lives in the weight's ``gain``. None takes bias_act's default
            (sqrt(2) for relu/lrelu/swish, the StyleGAN2 convention, used with ``gain=1``).
        clamp: clamp the output to [-clamp, clamp] (default None: no clamp).
        impl: 'auto' (compiled kernel where built) or 'ref' (PyTorch reference); an attribute
            that ``set_impl`` can change later.
        device, dtype: where and in what dtype to create the parameters (e.g. 'meta').

    Input ``[..., in_features]`` of float16/bfloat16/float32/float64 (parameters are cast to
    its dtype); output ``[..., out_features]`` of the same dtype.
    Parameters: ``weight [out_features, in_features]`` ~ N(0, 1/lrmul^2) and
    ``bias [out_features]`` = bias_init / bias_lrmul (or None).

    Raises TypeError, naming the argument, for one of the wrong type (a float, bool or string
    feature count; a string, None or bool for a number; a bias that is not a bool; an act or impl
    that is not a string), ValueError for one of the right type with a bad value (a count < 1,
    gain or lrmul <= 0, NaN or inf, a negative clamp, an unknown act or impl).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 gain: float = _SQRT2, lrmul: float = 1.0, bias_init: float = 0.0,
                 bias_lrmul: float | None = None, act: str = "linear", act_alpha: float | None = None,
                 act_gain: float | None = 1.0, clamp: float | None = None, impl: str = "auto",
                 device=None, dtype=None):
        super().__init__()
        name = "EqualizedLinear"
        self.in_features = check_positive_int(in_features, "in_features", name)
        self.out_features = check_positive_int(out_features, "out_features", name)
        self._setup(name, (out_features, in_features), in_features, bias, gain, lrmul, bias_init,
                    bias_lrmul, act, act_alpha, act_gain, clamp, impl, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"EqualizedLinear: x must be a torch.Tensor; got {type(x).__name__}")
        if shapes_checked() and (x.ndim < 1 or x.shape[-1] != self.in_features):
            raise ValueError(f"EqualizedLinear: x must have shape [..., {self.in_features}]; "
                             f"got {tuple(x.shape)}")
        w, b = self._scaled(x)
        if self._plain_epilogue():
            return F.linear(x, w, b)
        return self._epilogue(F.linear(x, w), b, x.ndim - 1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + self._repr_tail()


def _pair(value, name: str, layer: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``: TypeError for another type or entries that
    are not ints, ValueError for another length or an entry below ``minimum``."""
    what = f"an int >= {minimum} or a pair of them"
    if is_int(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{layer}: {name} must be {what}; got {said_typed(value)}")
    if len(value) != 2:
        raise ValueError(f"{layer}: {name} must be {what}; got {value!r}")
    if not all(is_int(v) for v in value):
        raise TypeError(f"{layer}: {name} must be {what}; got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{layer}: {name} must be {what}; got {value!r}")
    return int(value[0]), int(value[1])


def _conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: tuple[int, int],
            padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, w, b, stride, padding)``; a 1x1 convolution from or to a few channels
    (FromRGB, ToRGB: at most 3 on one side and 32 on the other) of a contiguous or channels_last float32/float64
    CPU tensor is computed as a product instead (from one channel: the broadcast product, exact;
    else a matrix product over channels; then ``+ b``), which autograd differentiates to any
    order.

    Why: oneDNN spends about 1 ms on the 1x1 convolution of a digits-32 batch (32 x 1 x 32 x 32
    to 8 channels), whose arithmetic takes microseconds; forward, backward and R1's double
    backward of FromRGB/ToRGB at that level took 14-24 ms against 7-8 ms as products (2 threads).
    Larger channel counts (3 -> 64 at 128 px) are as fast or faster through oneDNN, and half
    types and other devices keep ``F.conv2d``. A channels_last x gives a channels_last result,
    as ``F.conv2d`` does."""
    o, i, kh, kw = w.shape
    nchw = x.is_contiguous()
    if not ((kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0) and min(i, o) <= 3 and max(i, o) <= 32
            and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and x.dtype == w.dtype
            and (nchw or x.is_contiguous(memory_format=torch.channels_last))):
        return F.conv2d(x, w, b, stride, padding)
    w2 = w.reshape(o, i)
    if i == 1:
        y = x * w2.view(1, o, 1, 1)
    elif nchw:
        n = x.shape[0]
        y = torch.matmul(w2, x.view(n, i, x.shape[2] * x.shape[3])).view(n, o, x.shape[2], x.shape[3])
    else:  # channels_last: the product over the trailing channels, and a channels_last result
        y = torch.matmul(x.permute(0, 2, 3, 1), w2.t()).permute(0, 3, 1, 2)
    return y if b is None else y + b.view(1, o, 1, 1)


class EqualizedConv2d(_Equalized):
    """2-D convolution with equalized learning rate and a fused bias + activation.

    ``y = clamp(act(conv2d(x, W * gain*lrmul/sqrt(in_channels*kh*kw)) + b * bias_lrmul) * act_gain)``

    Args:
        in_channels, out_channels: channel counts of input and output.
        kernel_size: int or (kh, kw).
        stride: int or pair (default 1).
        padding: zero padding, int or (ph, pw) (default 0).
        bias, gain, lrmul, bias_init, bias_lrmul, act, act_alpha, act_gain, clamp, impl,
        device, dtype: as in ``EqualizedLinear`` (gain default sqrt(2), act_gain default 1.0).

    Input ``[N, in_channels, H, W]`` of float16/bfloat16/float32/float64, contiguous or
    channels_last; output ``[N, out_channels, (H + 2*ph - kh)//sh + 1, (W + 2*pw - kw)//sw + 1]``
    of the same dtype, channels_last when the input is.
    Parameters: ``weight [out_channels, in_channels, kh, kw]`` ~ N(0, 1/lrmul^2), ``bias [out_channels]``.
    Errors as ``EqualizedLinear``'s; kernel_size and stride (>= 1) and padding (>= 0) are an int or
    a pair of ints (TypeError for another type, ValueError for another length or a smaller entry).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, gain: float = _SQRT2, lrmul: float = 1.0, bias_init: float = 0.0,
                 bias_lrmul: float | None = None, act: str = "linear", act_alpha: float | None = None,
                 act_gain: float | None = 1.0, clamp: float | None = None, impl: str = "auto",
                 device=None, dtype=None):
        super().__init__()
        name = "EqualizedConv2d"
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        kh, kw = self.kernel_size
        self._setup(name, (out_channels, in_channels, kh, kw), in_channels * kh * kw, bias, gain, lrmul,
                    bias_init, bias_lrmul, act, act_alpha, act_gain, clamp, impl, device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"EqualizedConv2d: x must be a torch.Tensor; got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"EqualizedConv2d: x must have shape [N, {self.in_channels}, H, W]; "
                             f"got {tuple(x.shape)}")
        # conv2d follows the input's memory format (channels_last in, channels_last out) and
        # bias_act keeps it, so channels_last needs no conversion here.
        w, b = self._scaled(x)
        if self._plain_epilogue():
            return _conv2d(x, w, b, self.stride, self.padding)
        return self._epilogue(_conv2d(x, w, None, self.stride, self.padding), b, 1)

    def pre_activation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(conv(x), b)``: the convolution without bias and activation, and the run-time bias
        ([out_channels] in the output's dtype, or None), for a caller that fuses bias and
        activation into its next op. ``forward(x)`` is ``bias_act(*pre_activation(x), ...)``."""
        w, b = self._scaled(x)
        y = _conv2d(x, w, None, self.stride, self.padding)
        return y, (None if b is None else b.to(y.dtype))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, " + self._repr_tail())
