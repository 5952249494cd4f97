"""Style layers: AdaIN and noise (StyleGAN / StyleALAE) and modulated convolution (StyleGAN2).

- ``AdaIN``: instance norm, then a per-sample scale and bias computed from w.
- ``NoiseInjection``: adds per-pixel noise with a learned per-channel weight.
- ``StyleBlock``: StyleALAE's decoder half-block, conv -> blur -> noise -> bias -> leaky
  ReLU -> instance norm -> style, where everything after the blur is ONE fused ``adain`` op.
- ``ModulatedConv2d`` and ``ToRGB``: StyleGAN2's modulated convolution layers.

Every layer has an ``impl`` attribute ('auto' or 'ref') read at each call, so
``alae_fast.nn.set_impl(model, 'ref')`` switches a model to the PyTorch references.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops._dispatch import (check_alpha, check_bool, check_choice, check_eps, check_positive_int, check_real,
                             check_tensor, shapes_checked, static_sizes)
from ..ops.adain import adain
from ..ops.bias_act import ACTIVATIONS, bias_act
from ..ops.modulated_conv2d import modulated_conv2d
from ..ops.upfirdn2d import _setup_filter, filter2d, upsample2d
from .equalized import EqualizedConv2d, EqualizedLinear

_SQRT2 = math.sqrt(2.0)
IMPLS = ("auto", "ref")


# Constructor arguments follow the ops' rule (alae_fast.ops): TypeError for the wrong type,
# ValueError for a bad value of the right type, each naming the layer and the argument, also for
# the arguments a layer hands on to the layers it builds (an AdaIN's eps is StyleBlock's eps).

def _check_impl(impl, layer):
    return check_choice(impl, "impl", IMPLS, layer)


def _filter(taps, device, layer: str) -> torch.Tensor:
    """``resample_filter`` taps as setup_filter makes them, its errors naming ``layer``."""
    return _setup_filter(taps, device, True, False, 1, None, layer, "resample_filter")


def _check_clamp(clamp, layer: str) -> float | None:
    clamp = check_real(clamp, "clamp", layer, none_ok=True, inf_ok=True)
    if clamp is not None and clamp < 0:
        raise ValueError(f"{layer}: clamp must be >= 0 or None; got {clamp}")
    return clamp


def _check_x(x, channels: int, layer: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: x must be a torch.Tensor [N, {channels}, H, W]; got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{layer}: x must have shape [N, {channels}, H, W]; got {tuple(x.shape)}")


def _modulation_input(x, layer: str) -> torch.Tensor:
    """x as the modulated convolution takes it: under torch.autocast a float32 or half x is cast to
    the autocast dtype, as autocast casts a convolution's input (EqualizedConv2d's), so that the
    output, and the noise the op casts to x's dtype, have that dtype, and float16 gets the op's
    overflow guard (it pre-scales weight and styles for a float16 x only)."""
    check_tensor(x, "x", layer)
    dev = x.device.type
    if x.dtype != torch.float64 and torch.amp.is_autocast_available(dev) and torch.is_autocast_enabled(dev):
        return x.to(torch.get_autocast_dtype(dev))
    return x


def _modulation_dtype(weight: torch.Tensor, x: torch.Tensor) -> torch.dtype:
    # modulated_conv2d takes styles in the weight's dtype. StyleGAN2-ADA keeps weight and styles
    # in float32 and casts only the modulated weight to a float16 x; a float64 x gets its own
    # dtype, as EqualizedConv2d casts its parameters to it.
    return torch.promote_types(weight.dtype, x.dtype)


def make_noise(x: torch.Tensor, noise, layer: str) -> torch.Tensor | None:
    """The noise image for x [N, C, H, W]: 'random' draws N(0, 1) of shape [N, 1, H, W], None
    means no noise, a tensor [N or 1, 1, H, W] is used as given (cast to x's dtype)."""
    if noise is None:
        return None
    if isinstance(noise, str):
        if noise != "random":
            raise ValueError(f"{layer}: noise must be 'random', None or a tensor; got {noise!r}")
        return torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], dtype=x.dtype, device=x.device)
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"{layer}: noise must be 'random', None or a tensor; got {type(noise).__name__}")
    return noise.to(x.dtype)


class NoiseInjection(nn.Module):
    """``x + weight[c] * noise``: per-pixel noise, one learned weight per channel.

    Args:
        channels: C. The weight [C] starts at 0, so the layer starts as the identity.

    ``forward(x, noise='random')``: x [N, C, H, W]; noise 'random' (fresh N(0, 1) of shape
    [N, 1, H, W]), None (identity) or a tensor [N or 1, 1, H, W]. Output like x.

    TypeError for a channels that is not an int, an x or noise of the wrong type; ValueError for
    channels < 1, an x of the wrong shape, another noise string.
    """

    def __init__(self, channels: int, *, device=None, dtype=None):
        super().__init__()
        self.channels = check_positive_int(channels, "channels", "NoiseInjection")
        self.weight = nn.Parameter(torch.zeros(self.channels, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, noise="random") -> torch.Tensor:
        _check_x(x, self.channels, "NoiseInjection")
        n = make_noise(x, noise, "NoiseInjection")
        if n is None:
            return x
        # One fused multiply-add pass.
        return torch.addcmul(x, self.weight.to(x.dtype).view(1, -1, 1, 1), n)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class AdaIN(nn.Module):
    """Adaptive instance norm: ``IN(x) * (1 + scale(w)) + bias(w)``.

    Args:
        channels: C of x.
        w_dim: size of the latent w.
        eps: instance-norm epsilon (default 1e-8, as StyleALAE).
        impl: 'auto' or 'ref' (see ``alae_fast.ops.adain``).

    The style affine is an equalized linear layer w -> [scale (C), bias (C)] with gain 1 and
    zero-initialised bias, so ``1 + scale`` starts around 1 and the bias around 0.
    ``forward(x, w, *, bias=None, noise=None, noise_weight=None, act='linear', alpha=None)``:
    x [N, C, H, W], w [N, w_dim]; the keyword arguments are fused in before the norm, as
    ``alae_fast.ops.adain`` takes them (and refuses them, naming adain). Output like x.

    TypeError for a channels or w_dim that is not an int, an eps that is not a real number, an
    impl that is not a string; ValueError for a count < 1, a negative or non-finite eps, an
    unknown impl.
    """

    def __init__(self, channels: int, w_dim: int, *, eps: float = 1e-8, impl: str = "auto",
                 device=None, dtype=None):
        super().__init__()
        self.channels = check_positive_int(channels, "channels", "AdaIN")
        self.w_dim = check_positive_int(w_dim, "w_dim", "AdaIN")
        self.eps = check_eps(eps, "AdaIN")
        self.impl = _check_impl(impl, "AdaIN")
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0, impl=impl, device=device, dtype=dtype)

    def styles(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, bias), each [N, C] in x's dtype."""
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"AdaIN: w must be a torch.Tensor [N, {self.w_dim}]; got {type(w).__name__}")
        if w.ndim != 2 or w.shape[1] != self.w_dim:
            raise ValueError(f"AdaIN: w must have shape [N, {self.w_dim}]; got {tuple(w.shape)}")
        s = self.style(w).to(x.dtype)
        return s[:, :self.channels], s[:, self.channels:]

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, bias=None, noise=None, noise_weight=None,
                act: str = "linear", alpha: float | None = None) -> torch.Tensor:
        scale, shift = self.styles(x, w)
        return adain(x, scale, shift, bias=bias, noise=noise, noise_weight=noise_weight, act=act,
                     alpha=alpha, eps=self.eps, impl=self.impl)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, w_dim={self.w_dim}, eps={self.eps:g}"


class StyleBlock(nn.Module):
    """StyleALAE's decoder half-block: conv -> blur -> noise -> bias -> lrelu -> IN -> style.

    Args:
        in_channels, out_channels: channels of input and output.
        w_dim: size of the latent w.
        up: None (default: same resolution), 'nearest' (nearest-neighbour x2, then the
            3x3 conv) or 'fused' (the same function as 'nearest' computed as one stride-2
            transposed conv with the 4x4 kernel that the 3x3 kernel becomes; StyleALAE uses
            it from 128 px up). Either way the weight is the [out, in, 3, 3] conv weight.
        conv: apply the 3x3 conv (default True); False requires in == out channels and up None
            (StyleALAE's first block, which starts from a learned constant).
        blur: apply the [1, 2, 1] blur after the conv (default True, whenever conv is).
        noise: learn a noise weight (default True; initialised to 0).
        act, alpha: activation before the norm (default 'lrelu', slope 0.2).
        eps: instance-norm epsilon (default 1e-8).
        impl: 'auto' or 'ref'.

    TypeError, naming the argument, for a channel count or w_dim that is not an int, an up or
    act or impl that is not a string (up may be None), conv/blur/noise that are not bools, an
    alpha or eps that is not a real number; ValueError for a count < 1, an unknown up, act or
    impl, a NaN or infinite alpha, a negative eps, conv=False with up or unequal channels.

    Equalized learning rate: the conv weight is N(0, 1) scaled by sqrt(2 / fan_in) at run
    time. The bias [out] and noise weight [out] start at 0.

    ``forward(x, w, noise='random')``: x [N, in, H, W], w [N, w_dim]; noise as
    ``NoiseInjection`` takes it. Output [N, out, H', W'] with H' = 2H when up is set.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, up: str | None = None,
                 conv: bool = True, blur: bool = True, noise: bool = True, act: str = "lrelu",
                 alpha: float | None = None, eps: float = 1e-8, impl: str = "auto", device=None,
                 dtype=None):
        super().__init__()
        name = "StyleBlock"
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        check_positive_int(w_dim, "w_dim", name)
        if up is not None:
            check_choice(up, "up", ("nearest", "fused"), name, said="None, 'nearest' or 'fused'")
        conv, blur, noise = (check_bool(v, k, name) for k, v in (("conv", conv), ("blur", blur), ("noise", noise)))
        if not conv and (up is not None or in_channels != out_channels):
            raise ValueError(f"{name}: conv=False needs up=None and in_channels == out_channels")
        check_choice(act, "act", ACTIVATIONS, name)
        check_alpha(alpha, 0.0, name)  # kept as given: None means adain's default for the act
        check_eps(eps, name)
        self.up, self.act, self.alpha = up, act, alpha
        self.impl = _check_impl(impl, name)
        factory = {"device": device, "dtype": dtype}
        self.conv = (EqualizedConv2d(in_channels, out_channels, 3, padding=1, bias=False, impl=impl, **factory)
                     if conv else None)
        self.register_buffer("blur_filter", _setup_filter([1, 2, 1], device, True, False, 1, None, name)
                             if conv and blur else None)
        self.noise_weight = nn.Parameter(torch.zeros(out_channels, **factory)) if noise else None
        self.bias = nn.Parameter(torch.zeros(out_channels, **factory))
        self.adain = AdaIN(out_channels, w_dim, eps=eps, impl=impl, **factory)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        if self.up is None:
            return self.conv(x)
        if self.up == "nearest":
            return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        # conv3x3(nearest_x2(x)) as a transposed conv: output pixel 2m takes w[0] from input
        # m-1 and w[1]+w[2] from m, pixel 2m+1 takes w[0]+w[1] from m and w[2] from m+1; that is
        # conv_transpose2d(stride 2, padding 1) with the flipped 2x2 box sum of the padded kernel.
        w, _ = self.conv._scaled(x)
        w = F.pad(w, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w.flip([2, 3]).transpose(0, 1), stride=2, padding=1)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise="random") -> torch.Tensor:
        _check_x(x, self.in_channels, "StyleBlock")
        if self.conv is not None:
            x = self._conv(x)
            if self.blur_filter is not None:
                x = filter2d(x, self.blur_filter, impl=self.impl)
        n = make_noise(x, noise, "StyleBlock") if self.noise_weight is not None else None
        return self.adain(x, w, bias=self.bias.to(x.dtype), noise=n,
                          noise_weight=None if n is None else self.noise_weight.to(x.dtype),
                          act=self.act, alpha=self.alpha)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, up={self.up}, conv={self.conv is not None}, "
                f"blur={self.blur_filter is not None}, noise={self.noise_weight is not None}, act={self.act}")


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated convolution with its style affine.

    Args:
        in_channels, out_channels, kernel_size: I, O and k (square kernel).
        w_dim: size of the latent w.
        demodulate: normalise each output channel (default True).
        up, down: 1 (default) or a resampling factor, through ``conv2d_resample``.
        resample_filter: FIR taps for up/down (default (1, 3, 3, 1)).
        fused_modconv: grouped conv with per-sample weights (default True) or the
            activation-scaling order (False); see ``alae_fast.ops.modulated_conv2d``.
        impl: 'auto' or 'ref'.

    TypeError, naming the argument, for a count or factor that is not an int, demodulate or
    fused_modconv not a bool, impl not a string, resample_filter taps that are not numbers;
    ValueError for a count or factor < 1, an unknown impl, resample_filter taps that are empty,
    more than 2-D or sum to 0 (they are normalised).

    Parameters: ``weight [O, I, k, k]`` ~ N(0, 1), used times 1/sqrt(I*k*k) (equalized
    learning rate); the affine w -> styles [I] is an equalized linear layer with gain 1 and
    bias initialised to 1 (styles start around 1).

    ``forward(x, w, noise=None)``: x [N, I, H, W] of float16/bfloat16/float32/float64, w [N, w_dim],
    noise broadcastable to the output ([N or 1, 1 or O, H', W']) or None. Output [N, O, H', W']
    in x's dtype, where the convolution pads the (upsampled) image by k // 2 on each side:
    ``H' = (H * up + 1 - k % 2) // down`` (H * up // down for odd k), W' alike. Weight and
    styles are used in the wider of the weight's and x's dtypes (float32 for a half x, as
    StyleGAN2-ADA modulates; the convolution runs in x's dtype). Under torch.autocast a float32
    or half x is first cast to the autocast dtype, as EqualizedConv2d's convolution is, and the
    output has that dtype. TypeError naming this layer for an x that is not a float tensor; other
    errors in x, w and noise are the affine's (EqualizedLinear) and ``modulated_conv2d``'s.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool = True, up: int = 1, down: int = 1, resample_filter=(1, 3, 3, 1),
                 fused_modconv: bool = True, impl: str = "auto", device=None, dtype=None):
        super().__init__()
        name = "ModulatedConv2d"
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", name)
        self.w_dim = check_positive_int(w_dim, "w_dim", name)
        self.up = check_positive_int(up, "up", name)
        self.down = check_positive_int(down, "down", name)
        self.demodulate = check_bool(demodulate, "demodulate", name)
        self.fused_modconv = check_bool(fused_modconv, "fused_modconv", name)
        self.impl = _check_impl(impl, name)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size, **factory))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0, impl=impl, **factory)
        self.register_buffer("resample_filter", _filter(resample_filter, device, name) if up > 1 or down > 1 else None)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = _modulation_input(x, "ModulatedConv2d")
        dtype = _modulation_dtype(self.weight, x)
        styles = self.affine(w).to(dtype)
        # Like StyleGAN2-ADA, transposed convs (up > 1) skip the weight flip: same family, cheaper.
        return modulated_conv2d(x, self.weight.to(dtype) * self.weight_gain, styles, noise=noise, up=self.up,
                                down=self.down, padding=self.kernel_size // 2,
                                resample_filter=self.resample_filter, demodulate=self.demodulate,
                                flip_weight=self.up == 1, fused_modconv=self.fused_modconv, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, w_dim={self.w_dim}, "
                f"demodulate={self.demodulate}, up={self.up}, down={self.down}, fused_modconv={self.fused_modconv}")


class ToRGB(nn.Module):
    """StyleGAN2's output layer: a modulated 1x1 conv without demodulation, plus a bias.

    Args:
        in_channels: channels of the features.
        w_dim: size of the latent w.
        out_channels: image channels (default 3).
        kernel_size: default 1.
        clamp: clamp the output to [-clamp, clamp] (default None).
        resample_filter: FIR taps used to upsample ``skip`` (default (1, 3, 3, 1)).
        impl: 'auto' or 'ref'.

    TypeError, naming the argument, for a count that is not an int, a clamp that is not a real
    number or None, impl not a string, resample_filter taps that are not numbers; ValueError for
    a count < 1, a negative or NaN clamp, an unknown impl, bad resample_filter taps.

    ``forward(x, w, skip=None)``: x [N, in, H, W], w [N, w_dim]; output [N, out, H', W'] with
    H' = H + 1 - k % 2 (padding k // 2; H' = H for the default k = 1), W' alike. skip, the
    previous resolution's image, is added to the result: [N, out, H', W'] as it is, or
    [N, out, H'/2, W'/2] (both H' and W' even), which the filter upsamples to exactly twice its
    size; an odd H' or W' takes only the full size. Dtypes and autocast as ``ModulatedConv2d``'s,
    skip cast to the output's dtype. TypeError for a skip that is not a float tensor, ValueError
    for another shape (naming ToRGB, skip, the shapes expected and the one given).
    """

    def __init__(self, in_channels: int, w_dim: int, out_channels: int = 3, *, kernel_size: int = 1,
                 clamp: float | None = None, resample_filter=(1, 3, 3, 1), impl: str = "auto",
                 device=None, dtype=None):
        super().__init__()
        name = "ToRGB"
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", name)
        self.clamp = _check_clamp(clamp, name)
        self.impl = _check_impl(impl, name)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size, **factory))
        self.bias = nn.Parameter(torch.zeros(out_channels, **factory))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0, impl=impl, **factory)
        self.register_buffer("resample_filter", _filter(resample_filter, device, name))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = _modulation_input(x, "ToRGB")
        dtype = _modulation_dtype(self.weight, x)
        # Without demodulation the equalized-lr gain must scale something: the styles, as in ADA.
        styles = self.affine(w).to(dtype) * self.weight_gain
        y = modulated_conv2d(x, self.weight.to(dtype), styles, padding=self.kernel_size // 2, demodulate=False,
                             impl=self.impl)
        y = bias_act(y, self.bias.to(y.dtype), act="linear", clamp=self.clamp, impl=self.impl)
        if skip is not None:
            self._check_skip(skip, y)
            if static_sizes(skip, -2, -1) != static_sizes(y, -2, -1):
                skip = upsample2d(skip, self.resample_filter, impl=self.impl)
            y = y + skip.to(y.dtype)
        return y

    def _check_skip(self, skip, y: torch.Tensor) -> None:
        # Sizes only, no values read: torch.compile traces the check whole.
        check_tensor(skip, "skip", "ToRGB")
        if not shapes_checked():
            return
        n, c, h, w = y.shape
        full = (n, c, h, w)
        # upsample2d gives exactly twice the size (its padding is the filter's taps - 1), so only
        # an even output has a half size.
        half = (n, c, h // 2, w // 2) if h % 2 == 0 and w % 2 == 0 else None
        if tuple(skip.shape) not in (full, half):
            said = (f"[N, out, H', W'] = {list(full)} (an odd H' or W' has no half size)" if half is None
                    else f"[N, out, H'/2, W'/2] = {list(half)} or [N, out, H', W'] = {list(full)}")
            raise ValueError(f"ToRGB: skip must have shape {said} for the output of shape {tuple(y.shape)}; "
                             f"got {tuple(skip.shape)}")

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, clamp={self.clamp}"
