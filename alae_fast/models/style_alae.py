"""StyleALAE (Pidhorskyi, Adjeroh, Doretto, CVPR 2020, Sec. 4): a StyleGAN-like generator G and
an encoder E that mirrors it, tied through the latent space W, with progressive growing.

With L = ``config.layer_count`` resolutions 4, 8, ..., 4·2^(L-1) and C_i =
``min(max_features, start_features·2^(L-1-i))`` feature maps at resolution index i (0 = 4x4):

    F  pixel norm, then ``mapping_layers`` x (latent -> latent, lrmul 0.1, lrelu 0.2)
                                                                  z [N, latent] -> w [N, latent]
    G  a learned constant [C_0, 4, 4] (ones at first); per resolution i, two ``StyleBlock``s:
         i > 0: nearest x2 + 3x3 conv C_{i-1} -> C_i (one transposed conv when the output
                is >= fused_scale_resolution px), then blur [1,2,1];
         noise -> bias -> lrelu -> instance norm -> style (w_{2i}), one fused ``adain`` op
         (noise: see ``StyleGenerator.noise_inputs``);
         3x3 conv C_i -> C_i, then noise -> ... -> style (w_{2i+1}) again;
       ToRGB at the current resolution: 1x1 conv, gain 0.03, no activation.
                                 ws [N, 2L, latent] (or one w) -> x [N, channels, R, R]
    E  FromRGB at the input resolution: 1x1 conv + bias + lrelu (``from_rgb_lrelus`` of them,
       2 in the official code); per resolution i, top down:
         3x3 conv C_i -> C_i + bias -> lrelu -> instance_norm_stats (mean_1, std_1)
         -> blur [1,2,1] -> 3x3 conv C_i -> C_{i-1} and 2x2 average pool (one strided conv
         when the input is >= fused_scale_resolution px) -> bias -> lrelu
         -> instance_norm_stats (mean_2, std_2);
         w += Linear(2 C_i -> latent)([mean_1, std_1]) + Linear(2 C_{i-1} -> latent)([mean_2, std_2]).
       (C_{-1} = min(max_features, start_features·2^L): the 4x4 block downsamples to 2x2.)
       E's instance norms use ``encoder_norm_eps`` and its std statistics sqrt(var +
       ``encoder_std_eps``) (official: 1e-5 and 0; default: ``instance_norm_eps`` for both).
                                                           x [N, channels, R, R] -> w [N, latent]
    D  ``discriminator_layers`` linear layers latent -> ... -> 1, lrmul 0.1, no activations.
                                                                      w [N, latent] -> score [N]

Every layer has an equalized learning rate (weights N(0, 1/lrmul), scaled at run time by
gain·lrmul/sqrt(fan_in); gain sqrt(2) except ToRGB 0.03 and G's style affines 1). Biases and
noise weights start at 0, the style affines' biases at 0 so that every style scale 1 + s
starts near 1.

Progressive growing: level ``lod`` works at R = 4·2^lod with G's blocks 0..lod and E's blocks
lod..0. While a level fades in (``blend`` < 1, lod > 0), G lerps the previous level's ToRGB
output, nearest-upsampled, into the new one, and E lerps FromRGB of the 2x2-average-pooled
input into the new block's output and scales the new block's style contributions by blend.
``lod=None`` means the last level; at lod 0 ``blend`` has nothing to fade and is ignored.

Layers: ``alae_fast.nn`` (EqualizedLinear/Conv2d, PixelNorm, Blur, Upsample, Downsample,
StyleBlock); the encoder block calls ``alae_fast.ops.instance_norm_stats`` itself. Every
elementwise and filtering step runs on ``alae_fast.ops`` (bias_act, adain,
instance_norm_stats, upfirdn2d) with double backward on the kernels, so R1 through E runs on
them; ``model.set_impl('ref')`` switches the whole model to the PyTorch references.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.equalized import EqualizedConv2d, EqualizedLinear
from ..nn.resample import Blur, Downsample, Upsample
from ..nn.style import StyleBlock
from ..ops.instance_norm_stats import instance_norm_stats
from .base import MODEL_ENCODE_ANYWAY, ALAEModel, check_images, check_pixel_values
from .mlp_alae import MLPDiscriminator, MLPMapping
from .presets import register_model
from .style_config import StyleALAEConfig

__all__ = ["StyleALAE", "StyleGenerator", "StyleEncoder", "GeneratorBlock", "EncoderBlock", "DownConv2d"]


# --- resampling -------------------------------------------------------------------------------
#
# A 3x3 "same" convolution followed by 2x2 average pooling is exactly one stride-2 convolution
# with a 4x4 kernel (the 3x3 taps averaged over the four 2x2 shifts, padding 1), boundaries
# included; the fused form never computes the pixels the pooling drops. (G's nearest x2 + 3x3
# conv and its transposed-conv form are StyleBlock's up='nearest' and up='fused'.)

def _shift_sum(w: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] -> [..., 4, 4]: the sum of the taps placed at the four 2x2 offsets."""
    p = F.pad(w, [1, 1, 1, 1])
    return p[..., 1:, 1:] + p[..., :-1, 1:] + p[..., 1:, :-1] + p[..., :-1, :-1]


def _built_on_cpu(factory):
    """``factory()`` built on the CPU, then moved to torch's current default device.

    The resampling layers compute their normalised taps at construction, which a meta
    tensor cannot do; ``with torch.device('meta'):`` still gives a meta model this way.
    """
    device = torch.get_default_device()
    with torch.device("cpu"):
        layer = factory()
    return layer.to(device)


def layout_of(param: torch.Tensor) -> torch.memory_format:
    """The memory format a module's activations follow: ``torch.channels_last`` when its 4-D
    parameter ``param`` is stored channels_last (``model.to(memory_format=torch.channels_last)``),
    else ``torch.contiguous_format``. ``param`` must have more than one channel and more than
    one pixel, where the two formats differ."""
    cl = param.is_contiguous(memory_format=torch.channels_last) and not param.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def nearest_up() -> Upsample:
    """Nearest-neighbour x2 upsampling: the box filter (1, 1) with gain 4."""
    return _built_on_cpu(lambda: Upsample(kernel=(1, 1), factor=2))


def average_down() -> Downsample:
    """2x2 average pooling: the box filter (1, 1), keeping every second sample."""
    return _built_on_cpu(lambda: Downsample(kernel=(1, 1), factor=2))


def blur(taps) -> Blur:
    """Size-keeping blur with ``taps`` normalised to unit sum."""
    return _built_on_cpu(lambda: Blur(kernel=tuple(taps)))


class DownConv2d(nn.Module):
    """A 3x3 equalized-lr convolution, 2x2 average pooling, then bias + leaky ReLU (fused).

    ``fused=True`` runs convolution and pooling as one stride-2 convolution (same result).
    Input [N, in_channels, H, W] (H, W even) -> [N, out_channels, H/2, W/2].
    Parameters ``conv.weight``, ``conv.bias`` (applied after the pooling).
    """

    def __init__(self, in_channels: int, out_channels: int, fused: bool, slope: float):
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, padding=1, act="lrelu", act_alpha=slope)
        self.fused = bool(fused)
        self.pool = None if self.fused else average_down()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv._epilogue(*self.pre_activation(x), 1)

    def pre_activation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(pooled conv(x), b)`` before bias and activation (see EqualizedConv2d.pre_activation)."""
        w, b = self.conv._scaled(x)
        if self.fused:
            y = F.conv2d(x, _shift_sum(w) * 0.25, stride=2, padding=1)
        else:
            y = self.pool(F.conv2d(x, w, padding=1))
        return y, (None if b is None else b.to(y.dtype))

    def extra_repr(self) -> str:
        return f"fused={self.fused}"


# --- generator ------------------------------------------------------------------------------------

class GeneratorBlock(nn.Module):
    """One resolution of G (see the module docstring): two ``alae_fast.nn.StyleBlock``s.

    ``style_1``: [up-conv 3x3 -> blur] -> noise -> bias -> lrelu -> IN -> style (the first
    block has no conv and starts from G's constant); ``style_2``: conv 3x3 -> the same.
    forward(x [N, in_channels, H, W], w1, w2 [N, latent], noise_1, noise_2: each a tensor
    [N or 1, 1, H', W'] or None for no noise) -> [N, out_channels, 2H, 2W] (first block:
    [N, out_channels, H, W]).
    """

    def __init__(self, in_channels: int, out_channels: int, latent_size: int, *, first: bool, fused: bool,
                 slope: float, eps: float):
        super().__init__()
        up = None if first else ("fused" if fused else "nearest")
        self.style_1 = _built_on_cpu(lambda: StyleBlock(in_channels, out_channels, latent_size, up=up, conv=not first,
                                                        alpha=slope, eps=eps))
        self.style_2 = _built_on_cpu(lambda: StyleBlock(out_channels, out_channels, latent_size, blur=False,
                                                        alpha=slope, eps=eps))

    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, noise_1: torch.Tensor | None,
                noise_2: torch.Tensor | None) -> torch.Tensor:
        return self.style_2(self.style_1(x, w1, noise_1), w2, noise_2)


class StyleGenerator(nn.Module):
    """G: styles -> images at any level (see the module docstring).

    forward(ws [N, 2L, latent], lod int in [0, L-1], blend float in [0, 1], noise: a mode
    or per-layer tensors, see ``noise_inputs``) -> [N, channels, 4·2^lod, 4·2^lod]. Only
    style inputs [0, 2·lod + 2) are read.
    Parameters: ``const [1, C_0, 4, 4]``, ``blocks[i]``, ``to_rgb[i]``. The 'const' noise
    images are not parameters or buffers: they are drawn on the CPU from a fixed seed per
    layer when first used (so every copy of the model, on any device, has the same ones),
    and are not stored in checkpoints.
    """

    CONST_NOISE_SEED = 0x414C4145  # 'ALAE'; layer k uses this + k

    def __init__(self, config: StyleALAEConfig):
        super().__init__()
        c = config
        self.layer_count = c.layer_count
        self.const = nn.Parameter(torch.ones(1, c.features_at(0), 4, 4))
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        for i in range(c.layer_count):
            self.blocks.append(GeneratorBlock(
                c.features_at(max(i - 1, 0)), c.features_at(i), c.latent_size, first=i == 0,
                fused=c.resolution_at(i) >= c.fused_scale_resolution, slope=c.lrelu_slope,
                eps=c.instance_norm_eps))
            self.to_rgb.append(EqualizedConv2d(c.features_at(i), c.channels, 1, gain=c.to_rgb_gain))
        self.upsample = nearest_up()  # the previous level's image during a fade-in
        self.first_noise_shared = c.first_noise_shared
        self._const_noise: dict = {}

    def check_noise_list(self, noise, n: int, lod: int, op: str = "decode") -> None:
        """A list/tuple of per-input noise for ``n`` images at ``lod``, as :meth:`noise_inputs`
        takes it: between 2·lod + 2 and 2·L entries, each None or a tensor ``[n or 1, 1, r, r]``
        (r = 4·2^(k // 2) for input k; entries past 2·lod + 2 are not read). Raises ValueError
        (count, shape) or TypeError (an entry that is no tensor, or not of a float dtype) naming
        ``op`` (the method the caller called) and the entry."""
        count = 2 * (lod + 1)
        if not count <= len(noise) <= 2 * self.layer_count:
            raise ValueError(f"{op}: noise list must have between {count} (2·lod + 2) and "
                             f"{2 * self.layer_count} entries; got {len(noise)}")
        for k in range(count):
            t, r = noise[k], 4 * 2 ** (k // 2)
            if t is None:
                continue
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{op}: noise[{k}] must be a tensor or None; got {type(t).__name__}")
            if not t.is_floating_point():  # an integer or bool map was cast to float without a word
                raise TypeError(f"{op}: noise[{k}] must have a float dtype; got {t.dtype}")
            if t.ndim != 4 or t.shape[0] not in (1, n) or t.shape[1] != 1 or tuple(t.shape[2:]) != (r, r):
                raise ValueError(f"{op}: noise[{k}] must have shape [{n} or 1, 1, {r}, {r}]; got {tuple(t.shape)}")

    def noise_inputs(self, noise, n: int, lod: int, dtype: torch.dtype, device) -> list:
        """The noise images of style inputs [0, 2·lod + 2): a list of tensors [N or 1, 1, r, r]
        (r = 4·2^(k // 2) for input k) or None where there is no noise.

        noise: 'random' (N(0, 1) per sample, drawn in input order from torch's default
        generator; with ``first_noise_shared`` input 0 is one [1, 1, 4, 4] draw, as the
        official G), 'batch' (one [1, 1, r, r] draw per input, shared by the batch: the
        official ``batch_constant``), 'const' (fixed images, see the class docstring),
        'zero' or 'none' (no noise), or a list/tuple of per-input tensors [N or 1, 1, r, r]
        (or None entries) with at least 2·lod + 2 and at most 2·L entries, as rosinality's
        generator takes them. Raises ValueError/TypeError naming the bad entry.
        """
        count = 2 * (lod + 1)
        if isinstance(noise, (list, tuple)):
            self.check_noise_list(noise, n, lod)
            return [None if t is None else t.to(device=device, dtype=dtype) for t in noise[:count]]
        res = [4 * 2 ** (k // 2) for k in range(count)]
        if noise in ("zero", "none"):
            return [None] * count
        if noise == "random":
            return [torch.randn(1 if k == 0 and self.first_noise_shared else n, 1, r, r, dtype=dtype, device=device)
                    for k, r in enumerate(res)]
        if noise == "batch":
            return [torch.randn(1, 1, r, r, dtype=dtype, device=device) for r in res]
        if noise == "const":
            return [self._const(k, r, dtype, device) for k, r in enumerate(res)]
        raise ValueError(f"decode: noise must be 'random', 'batch', 'const', 'zero', 'none' or a list of "
                         f"per-layer tensors; got {noise!r}")

    def _const(self, k: int, r: int, dtype, device) -> torch.Tensor:
        key = (k, dtype, str(device))
        if key not in self._const_noise:
            g = torch.Generator().manual_seed(self.CONST_NOISE_SEED + k)
            self._const_noise[key] = torch.randn(1, 1, r, r, generator=g, dtype=torch.float64).to(device, dtype)
        return self._const_noise[key]

    def forward(self, ws: torch.Tensor, lod: int, blend: float = 1.0, noise="random") -> torch.Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        if layout_of(self.const) is torch.channels_last:
            # every later activation follows this one's layout (convolutions, alae_fast ops)
            x = x.contiguous(memory_format=torch.channels_last)
        noises = self.noise_inputs(noise, ws.shape[0], lod, x.dtype, x.device)
        previous = None
        for i in range(lod + 1):
            if i == lod and lod > 0 and blend < 1.0:
                previous = self.to_rgb[i - 1](x)
            x = self.blocks[i](x, ws[:, 2 * i], ws[:, 2 * i + 1], noises[2 * i], noises[2 * i + 1])
        image = self.to_rgb[lod](x)
        if previous is not None:
            image = torch.lerp(self.upsample(previous), image, blend)
        return image


# --- encoder --------------------------------------------------------------------------------------

def _restd(std: torch.Tensor, eps: float, std_eps: float) -> torch.Tensor:
    """sqrt(var + std_eps) from the outputs of instance_norm_stats with ``eps`` ([N, C] rows).

    The official encoder's statistic is sqrt(var) (std_eps 0) while its norm uses eps 1e-5.
    Computed from the rows alone, var = std^2 - eps in float64: a pass over y (var = std^2 *
    mean(y^2), exact but full-size, through R1's double backward too) made an iteration of
    digits-32 at 32x32 27% slower. The price is std's own rounding: var is off by about
    2 * 2^-24 * (var + eps) in float32 (float64: 2^-53), a relative 1.2e-7 once var >= eps; for
    var far below eps (a nearly constant plane) the statistic is off by at most ~1.5e-6
    absolutely (sqrt of 2.4e-12) instead of being ~0. Clamped at 0 so rounding cannot give a
    NaN. Differentiable to any order.
    """
    acc = torch.float64 if std.dtype in (torch.float32, torch.float64) else torch.float32
    var = (std.to(acc).square() - eps).clamp_min(0.0)
    return torch.sqrt(var + std_eps).to(std.dtype)


class EncoderBlock(nn.Module):
    """One resolution of E (see the module docstring).

    forward(x [N, in_channels, H, W]) -> (x [N, out_channels, H/2, W/2] instance-normalised,
    w [N, latent]: this block's contribution to E's output).
    """

    def __init__(self, in_channels: int, out_channels: int, latent_size: int, *, fused: bool, slope: float,
                 eps: float, std_eps: float | None = None):
        super().__init__()
        self.eps = float(eps)
        self.std_eps = self.eps if std_eps is None else float(std_eps)
        self.conv_1 = EqualizedConv2d(in_channels, in_channels, 3, padding=1, act="lrelu", act_alpha=slope)
        self.blur = blur((1, 2, 1))
        self.down = DownConv2d(in_channels, out_channels, fused, slope)
        self.style_1 = EqualizedLinear(2 * in_channels, latent_size)
        self.style_2 = EqualizedLinear(2 * out_channels, latent_size)
        self.impl = "auto"

    def _normalized(self, layer: nn.Module, conv: EqualizedConv2d, x: torch.Tensor):
        # conv -> bias -> lrelu -> instance_norm_stats, with bias and activation taken over by
        # the statistics op: one kernel and one pass fewer, forward and in both backwards.
        if conv._fusable_lrelu():
            y, b = layer.pre_activation(x)
            y, mean, std = instance_norm_stats(y, self.eps, self.impl, bias=b, act="lrelu", alpha=conv.act_alpha)
        else:
            y, mean, std = instance_norm_stats(layer(x), self.eps, impl=self.impl)
        if self.std_eps != self.eps:
            std = _restd(std, self.eps, self.std_eps)
        return y, mean, std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mean_1, std_1 = self._normalized(self.conv_1, self.conv_1, x)
        x, mean_2, std_2 = self._normalized(self.down, self.down.conv, self.blur(x))
        w = self.style_1(torch.cat([mean_1, std_1], 1)) + self.style_2(torch.cat([mean_2, std_2], 1))
        return x, w


class StyleEncoder(nn.Module):
    """E: images at any level -> one w per image (see the module docstring).

    forward(x [N, channels, 4·2^lod, 4·2^lod], lod int in [0, L-1], blend float in [0, 1])
    -> w [N, latent]. Parameters: ``from_rgb[i]``, ``blocks[i]`` (index i = resolution index).
    """

    def __init__(self, config: StyleALAEConfig):
        super().__init__()
        c = config
        self.from_rgb = nn.ModuleList()
        self.blocks = nn.ModuleList()
        norm_eps, std_eps = c.encoder_eps
        # n leaky ReLUs of slope s in a row are one of slope s**n (the official E applies two).
        from_rgb_slope = c.lrelu_slope ** c.from_rgb_lrelus
        for i in range(c.layer_count):
            self.from_rgb.append(EqualizedConv2d(c.channels, c.features_at(i), 1, act="lrelu",
                                                 act_alpha=from_rgb_slope))
            self.blocks.append(EncoderBlock(
                c.features_at(i), c.features_at(i - 1), c.latent_size,
                fused=c.resolution_at(i) >= c.fused_scale_resolution, slope=c.lrelu_slope,
                eps=norm_eps, std_eps=std_eps))
        self.pool = average_down()  # the input of the previous level during a fade-in

    def forward(self, x: torch.Tensor, lod: int, blend: float = 1.0) -> torch.Tensor:
        # FromRGB's output takes the layout of the 3x3 convolutions' weights: an image's layout
        # is ambiguous at one channel (and DiffAugment's indexing returns contiguous images)
        layout = layout_of(self.blocks[lod].conv_1.weight)
        h, w = self.blocks[lod](self.from_rgb[lod](x).contiguous(memory_format=layout))
        if lod > 0 and blend < 1.0:
            w = w * blend
            h = torch.lerp(self.from_rgb[lod - 1](self.pool(x)).contiguous(memory_format=layout), h, blend)
        for i in range(lod - 1, -1, -1):
            h, wi = self.blocks[i](h)
            w = w + wi
        return w


# --- the model ------------------------------------------------------------------------------------

@register_model(StyleALAEConfig)
class StyleALAE(ALAEModel):
    """StyleALAE: F, G, E, D of the module docstring in one module.

    Args:
        config: a ``StyleALAEConfig`` (default: the paper's FFHQ 1024 model; see the presets
            ``ffhq-1024``, ``celeba-hq-256``, ``bedroom-256``, ``celeba-128``, ``digits-32``).
        **overrides: fields to change in ``config``, e.g. ``StyleALAE(layer_count=3)``.

    Attributes ``mapping`` (F), ``generator`` (G), ``encoder`` (E), ``discriminator`` (D);
    buffer ``w_avg [latent_size]``; ``num_ws`` = 2·layer_count style inputs of G.
    Images are [N, channels, 4·2^lod, 4·2^lod] with pixels in [-1, 1] (G's output is
    unbounded; training pulls it there).
    """

    def __init__(self, config: StyleALAEConfig | None = None, **overrides):
        config = self._resolve_config(StyleALAEConfig, config, overrides)
        super().__init__(config)
        c = config
        self.mapping = MLPMapping(c.latent_size, c.mapping_layers, c.mapping_lrmul, c.lrelu_slope)
        self.generator = StyleGenerator(c)
        self.encoder = StyleEncoder(c)
        self.discriminator = MLPDiscriminator(c.latent_size, c.discriminator_layers, c.discriminator_lrmul)

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def max_lod(self) -> int:
        return self.config.max_lod

    def _lod(self, lod, blend, noise, op: str) -> tuple[int, float]:
        blend = self._check_lod_blend_noise(lod, blend, noise, op, self.max_lod)
        return (self.max_lod if lod is None else int(lod)), blend

    def encode(self, x: torch.Tensor, lod: int | None = None, blend: float = 1.0, *,
               native: bool = False) -> torch.Tensor:
        """E(x): images [N, channels, 4·2^lod, 4·2^lod], pixels in [-1, 1] (``native=True``: in
        ``config.pixel_range``) -> w [N, latent_size] in x's dtype.

        x: a float tensor (float16, bfloat16, float32, float64) without NaN or infinity, its
        values within ±``PIXEL_LIMIT`` (4: pixels belong in [-1, 1]; 0..255 images are
        refused). lod: level, None (default) for the last; blend in [0, 1]: fade-in of that
        level (default 1; see the module docstring). ``native=True`` reads no values (the
        trainer's path; ``ALAEModel``'s docstring).

        Raises, naming ``encode`` and the argument: TypeError for an x that is no tensor or of
        a non-float dtype (uint8 included), a lod that is not an int, a blend that is not a
        number; ValueError for an x of another shape or on another device than the model, with
        NaN or infinity or with values beyond ±4, a lod outside [0, max_lod] or a blend outside
        [0, 1].
        """
        lod, blend = self._lod(lod, blend, "random", "encode")
        check_images(x, "encode")
        r = self.config.resolution_at(lod)
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.config.channels, r, r):
            raise ValueError(f"encode: x must have shape [N, {self.config.channels}, {r}, {r}] at lod {lod}; "
                             f"got {tuple(x.shape)}")
        self._check_device(x, "encode", "x")
        if not native:
            check_pixel_values(x, "encode", "x", anyway=MODEL_ENCODE_ANYWAY)
        return self.encoder(x if native else self.to_native(x), lod, blend)

    def decode(self, w: torch.Tensor, lod: int | None = None, blend: float = 1.0,
               noise="random", *, native: bool = False) -> torch.Tensor:
        """G(w): w [N, latent_size] (the same w for every style input) or [N, num_ws,
        latent_size] -> images [N, channels, 4·2^lod, 4·2^lod], pixels in about [-1, 1]
        (``native=True``: in ``config.pixel_range``), in the model's dtype (G starts from its
        learned constant: a w of another float dtype is cast to the model's).

        w: a float tensor without NaN or infinity, its values within ±``MAX_ABS_W`` (1e4: an
        encoded or mapped w lies within about ±10). lod: level, None (default) for the last;
        blend in [0, 1] (default 1); noise: 'random' (fresh N(0, 1) noise images, default),
        'batch' (one draw per layer shared by the batch), 'const' (fixed per-layer images),
        'zero'/'none' (no noise), or a list of per-layer tensors [N or 1, 1, r, r] without NaN
        or infinity (see ``StyleGenerator.noise_inputs``). ``native=True``, and a w that
        requires grad while autograd records, read no values (``ALAEModel``'s docstring).

        Raises, naming ``decode`` and the argument: TypeError for a w that is no tensor or of
        a non-float dtype, a lod that is not an int, a blend that is not a number, a noise
        neither a string nor a list, a noise entry that is no float tensor; ValueError for a w
        of another shape or on another device than the model, with NaN or infinity or a value
        beyond ±1e4, a noise tensor of the wrong shape or with NaN or infinity, an unknown noise
        mode, a lod outside [0, max_lod] or a blend outside [0, 1].
        """
        lod, blend = self._lod(lod, blend, noise, "decode")
        ws = self._check_ws(w, "decode")
        self._check_decode_values(w, noise, native)
        y = self.generator(ws, lod, blend, noise)
        return y if native else self.from_native(y)

