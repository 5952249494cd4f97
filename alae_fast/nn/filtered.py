"""StyleGAN3's filtered nonlinearity as a layer, on the fused filtered_lrelu op."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ops._dispatch import check_bool, check_int, check_positive_int, check_real
from ..ops.filtered_lrelu import filtered_lrelu
from ..ops.upfirdn2d import _parse_padding


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float) -> torch.Tensor | None:
    """1-D Kaiser-windowed sinc lowpass taps (float32), as StyleGAN3 designs its separable
    filters: ``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)``; None for one tap.

    numtaps >= 1; cutoff, width and fs in the same units (cycles per unit length). Needs scipy
    (ImportError naming it otherwise)."""
    if numtaps == 1:
        return None
    try:
        from scipy.signal import firwin
    except ImportError as e:  # an optional dependency: say which one
        raise ImportError("lowpass_filter needs scipy (pip install scipy)") from e
    return torch.as_tensor(firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)


def synthesis_padding(in_size: int, out_size: int, up: int, down: int, up_taps: int, down_taps: int,
                      conv_kernel: int = 3) -> list[int]:
    """[x0, x1, y0, y1] that makes filtered_lrelu map the (in_size + conv_kernel - 1)-wide
    output of a StyleGAN3 convolution to exactly out_size samples, centred.

    From the output-size formula: out = (x*up + pad - (up_taps-1) - (down_taps-1) + down-1) // down
    with x = in_size + conv_kernel - 1, the total pad (out-1)*down + 1 - x*up + up_taps-1 +
    down_taps-1 gives out exactly; it is split with the extra sample (if odd) and the
    upsampling phase on the leading side."""
    total = (out_size - 1) * down + 1 - (in_size + conv_kernel - 1) * up + (up_taps - 1) + (down_taps - 1)
    lo = (total + up) // 2
    return [lo, total - lo, lo, total - lo]


def _taps(f, name: str, layer: str) -> torch.Tensor | None:
    """Filter taps as a float32 tensor (None kept): TypeError naming ``layer`` and ``name`` for
    taps that are not numbers, ValueError for taps empty or more than 2-D."""
    if f is None:
        return None
    try:
        t = torch.as_tensor(f, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{layer}: {name} must be 1-D or 2-D taps (numbers) or None; got {type(f).__name__} "
                        f"({e})") from None
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise ValueError(f"{layer}: {name} must be non-empty 1-D or 2-D taps or None; got shape {tuple(t.shape)}")
    return t


class FilteredLeakyReLU(nn.Module):
    """Bias, FIR upsampling, leaky ReLU and FIR downsampling: the nonlinearity of a
    StyleGAN3 synthesis layer (Karras et al., NeurIPS 2021), one ``filtered_lrelu`` call.

    Args:
        channels: C of the input [N, C, H, W] (the bias length).
        up_filter, down_filter: 1-D (separable) or 2-D float taps, or None (identity);
            kept as buffers.
        up, down: integer factors >= 1 (default 2 and 2).
        padding: int, [px, py] or [x0, x1, y0, y1] as filtered_lrelu takes it.
        gain: scale after the activation (default sqrt(2)); slope (default 0.2);
        clamp: None (default) or >= 0, applied after the gain.
        bias: learn a per-channel bias, initialised to zero (default True).

    gain, slope and clamp are real numbers (Python, NumPy or 0-d tensors that do not require
    grad; clamp may be +inf). TypeError naming the argument for one of the wrong type (a
    channels, up or down that is not an int, a padding that is not an int or a list of them,
    filter taps that are not numbers, a bias that is not a bool, a gain, slope or clamp that is
    not a real number), ValueError for one of the right type with a bad value (a count or factor
    < 1, a padding of another length, filters empty or more than 2-D, NaN or inf, a negative
    clamp); filtered_lrelu's own errors (naming filtered_lrelu) at a call with an x too small.
    Output [N, C, OH, OW] as filtered_lrelu gives it, in x's dtype and memory format.
    ``for_synthesis_layer`` builds one with StyleGAN3's filter design and padding.
    """

    def __init__(self, channels: int, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None,
                 up: int = 2, down: int = 2, padding=0, gain: float = math.sqrt(2), slope: float = 0.2,
                 clamp: float | None = None, bias: bool = True):
        super().__init__()
        name = "FilteredLeakyReLU"
        channels = check_positive_int(channels, "channels", name)
        self.bias = nn.Parameter(torch.zeros(channels)) if check_bool(bias, "bias", name) else None
        self.register_buffer("up_filter", _taps(up_filter, "up_filter", name))
        self.register_buffer("down_filter", _taps(down_filter, "down_filter", name))
        self.up, self.down = check_int(up, "up", name, minimum=1), check_int(down, "down", name, minimum=1)
        _parse_padding(padding, name)  # checked here; kept as given, as filtered_lrelu takes it
        self.padding = padding
        self.gain, self.slope = check_real(gain, "gain", name), check_real(slope, "slope", name)
        self.clamp = check_real(clamp, "clamp", name, none_ok=True, inf_ok=True)
        if self.clamp is not None and self.clamp < 0:
            raise ValueError(f"{name}: clamp must be >= 0 or None; got {self.clamp}")

    @classmethod
    def for_synthesis_layer(cls, channels: int, in_size: int, out_size: int, in_sampling_rate: float,
                            out_sampling_rate: float, in_cutoff: float, out_cutoff: float, in_half_width: float,
                            out_half_width: float, filter_size: int = 6, lrelu_upsampling: int = 2,
                            conv_kernel: int = 3, conv_clamp: float | None = 256, is_torgb: bool = False):
        """The nonlinearity of a StyleGAN3 synthesis layer from its sampling rates, cutoffs
        and transition half-widths (separable Kaiser lowpass filters; needs scipy). The
        intermediate rate is max(in, out) rate times lrelu_upsampling (1 for ToRGB). TypeError
        for an is_torgb that is not a bool; the constructor's errors otherwise."""
        is_torgb = check_bool(is_torgb, "is_torgb", "FilteredLeakyReLU.for_synthesis_layer")
        tmp_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        up, down = int(round(tmp_rate / in_sampling_rate)), int(round(tmp_rate / out_sampling_rate))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        fu = lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_rate)
        fd = lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_rate)
        padding = synthesis_padding(in_size, out_size, up, down, up_taps, down_taps,
                                    1 if is_torgb else conv_kernel)
        return cls(channels, fu, fd, up=up, down=down, padding=padding, gain=1.0 if is_torgb else math.sqrt(2),
                   slope=1.0 if is_torgb else 0.2, clamp=conv_clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias.to(x.dtype)
        return filtered_lrelu(x, self.up_filter, self.down_filter, b, up=self.up, down=self.down,
                              padding=self.padding, gain=self.gain, slope=self.slope, clamp=self.clamp)

    def extra_repr(self) -> str:
        return (f"up={self.up}, down={self.down}, padding={self.padding}, gain={self.gain:.4f}, "
                f"slope={self.slope}, clamp={self.clamp}")
