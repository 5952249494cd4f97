"""The MLP ALAE of the paper's MNIST experiment (Pidhorskyi, Adjeroh, Doretto, CVPR 2020, §5).

Default architecture (``MLPALAEConfig()``, preset 'mnist-mlp'), every layer an
``EqualizedLinear`` (weight gain sqrt(2); leaky ReLUs with slope 0.2 and unit gain, fused
with the bias into one ``bias_act`` op):

    F  pixel norm, then 6 x (50 -> 50, lrmul 0.1, lrelu)            z [N, 50] -> w [N, 50]
    G  50 -> 1024 -> lrelu -> 1024 -> lrelu -> 784, reshaped      w [N, 50] -> x [N, 1, 28, 28]
    E  784 -> 1024 -> lrelu -> 1024 -> lrelu -> 50                 x [N, 1, 28, 28] -> w [N, 50]
    D  50 -> 50 -> 50 -> 1, lrmul 0.1, no activations             w [N, 50] -> score [N]

3,830,565 parameters (E 1,904,690; G 1,905,424; F 15,300; D 5,151).

Pixel range: ``encode`` takes and ``decode`` gives images in [-1, 1] (``alae_fast.data``'s
convention), whatever range the networks work in. That range is ``config.pixel_range``:
(-1, 1) by default, (0, 1) for the official ``mnist_ref`` MLP (preset 'mnist-ref', and what
``load_official`` returns), which was trained on x / 255; ``encode``/``decode`` map to and from
it, and the trainer feeds E real images already in it. G's last layer is linear, so its
output is unbounded; training pulls it towards the range it was fed.

The MLP has a single resolution: ``lod``/``blend``/``noise`` are checked and otherwise ignored,
so that trainers and evaluators call it exactly like a StyleALAE. G takes one style input
(``num_ws == 1``), so style mixing has no effect and truncation acts on the whole w.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn.equalized import EqualizedLinear
from ..nn.norm import PixelNorm
from .base import MODEL_ENCODE_ANYWAY, ALAEModel, check_images, check_pixel_values
from .config import MLPALAEConfig
from .presets import register_model


def _stack(widths, acts, lrmul: float, slope) -> nn.Sequential:
    """EqualizedLinear layers widths[i] -> widths[i+1], each with its fused activation acts[i];
    ``slope`` is one lrelu slope for all, or one per layer."""
    layers = []
    slopes = list(slope) if isinstance(slope, (list, tuple)) else [slope] * len(acts)
    for fan_in, fan_out, act, s in zip(widths[:-1], widths[1:], acts, slopes):
        alpha = s if act == "lrelu" else None
        layers.append(EqualizedLinear(fan_in, fan_out, lrmul=lrmul, act=act, act_alpha=alpha, act_gain=1.0))
    return nn.Sequential(*layers)


class MLPMapping(nn.Module):
    """F: pixel norm, then ``layers`` latent -> latent linear layers, each followed by lrelu.

    z [N, latent] -> w [N, latent]. ``layers=0`` is the identity, w = z, without pixel norm
    (the official mnist_ref MLP).
    """

    def __init__(self, latent_size: int, layers: int, lrmul: float, slope: float):
        super().__init__()
        self.norm = PixelNorm(dim=1) if layers > 0 else nn.Identity()
        self.layers = _stack([latent_size] * (layers + 1), ["lrelu"] * layers, lrmul, slope)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.norm(z))


class MLPGenerator(nn.Module):
    """G: latent -> hidden... -> C*H*W, lrelu between layers, linear output.

    w [N, latent] -> x [N, C, H, W] (unbounded; trained towards the pixel range it was fed).
    """

    def __init__(self, latent_size: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int], slope: float):
        super().__init__()
        self.image_shape = tuple(image_shape)
        features = image_shape[0] * image_shape[1] * image_shape[2]
        widths = [latent_size, *hidden, features]
        self.layers = _stack(widths, ["lrelu"] * len(hidden) + ["linear"], 1.0, slope)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.layers(w).view(w.shape[0], *self.image_shape)


class MLPEncoder(nn.Module):
    """E: C*H*W -> hidden... -> latent, lrelu between layers (and after the last if ``out_act='lrelu'``).

    x [N, C, H, W] or [N, C*H*W] -> w [N, latent].
    """

    def __init__(self, latent_size: int, hidden: tuple[int, ...], features: int, slope: float,
                 out_act: str = "linear", out_slope: float | None = None):
        super().__init__()
        self.features = features
        widths = [features, *hidden, latent_size]
        slopes = [slope] * len(hidden) + [slope if out_slope is None else out_slope]
        self.layers = _stack(widths, ["lrelu"] * len(hidden) + [out_act], 1.0, slopes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the feature count, not -1: reshape cannot infer it for an empty batch
        return self.layers(x.reshape(x.shape[0], self.features))


class MLPDiscriminator(nn.Module):
    """D: ``layers`` linear layers latent -> ... -> latent -> 1 with no activations.

    w [N, latent] -> score [N] (a logit: real is positive).
    """

    def __init__(self, latent_size: int, layers: int, lrmul: float):
        super().__init__()
        widths = [latent_size] * layers + [1]
        self.layers = _stack(widths, ["linear"] * layers, lrmul, 0.0)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.layers(w).view(-1)


@register_model(MLPALAEConfig)
class MLPALAE(ALAEModel):
    """The MLP ALAE (see the module docstring for the architecture and pixel range).

    Args:
        config: an ``MLPALAEConfig`` (default: the paper's MNIST model).
        **overrides: fields to change in ``config``, e.g. ``MLPALAE(mapping_layers=8)``.

    Attributes ``mapping`` (F), ``generator`` (G), ``encoder`` (E), ``discriminator`` (D),
    each a module callable on its own; buffer ``w_avg [latent_size]``.
    Use ``set_impl('ref')`` to run every fused op on its PyTorch reference.
    """

    def __init__(self, config: MLPALAEConfig | None = None, **overrides):
        config = self._resolve_config(MLPALAEConfig, config, overrides)
        super().__init__(config)
        c = config
        self.image_shape = (c.image_channels, c.image_size, c.image_size)
        self.mapping = MLPMapping(c.latent_size, c.mapping_layers, c.mapping_lrmul, c.lrelu_slope)
        self.generator = MLPGenerator(c.latent_size, c.generator_hidden, self.image_shape,
                                      c.lrelu_slope if c.generator_slope is None else c.generator_slope)
        self.encoder = MLPEncoder(c.latent_size, c.encoder_hidden, c.image_features, c.lrelu_slope,
                                  c.encoder_out_act, c.encoder_out_slope)
        self.discriminator = MLPDiscriminator(c.latent_size, c.discriminator_layers, c.discriminator_lrmul)

    @property
    def num_ws(self) -> int:
        return 1

    def encode(self, x: torch.Tensor, lod: int | None = None, blend: float = 1.0, *,
               native: bool = False) -> torch.Tensor:
        """E(x): images [N, C, H, W] or flattened [N, C*H*W] -> w [N, latent_size]; pixels in
        [-1, 1] (``native=True``: in ``config.pixel_range``, what E reads; see the module docstring).

        x: a float tensor (float16, bfloat16, float32, float64) without NaN or infinity, its
        values within ±``PIXEL_LIMIT`` (4; 0..255 images are refused). ``lod`` (None or int
        >= 0) and ``blend`` (in [0, 1]) are checked and ignored. ``native=True`` reads no values
        (the trainer's path; ``ALAEModel``'s docstring).

        Raises, naming ``encode`` and the argument: TypeError for an x that is no tensor or of
        a non-float dtype (uint8 included), a lod or blend of the wrong type; ValueError for an x
        of another shape or on another device than the model, with NaN or infinity or with values
        beyond ±4, a bad lod or blend value.
        """
        self._check_lod_blend_noise(lod, blend, "random", "encode")
        check_images(x, "encode")
        features = self.config.image_features
        if not (tuple(x.shape[1:]) == self.image_shape or (x.ndim == 2 and x.shape[1] == features)):
            raise ValueError(f"encode: x must have shape [N, {', '.join(map(str, self.image_shape))}] "
                             f"or [N, {features}]; got {tuple(x.shape)}")
        self._check_device(x, "encode", "x")
        if not native:
            check_pixel_values(x, "encode", "x", anyway=MODEL_ENCODE_ANYWAY)
        return self.encoder(x if native else self.to_native(x))

    def decode(self, w: torch.Tensor, lod: int | None = None, blend: float = 1.0,
               noise: str = "random", *, native: bool = False) -> torch.Tensor:
        """G(w): w [N, latent_size] or [N, 1, latent_size] -> images [N, C, H, W] in about
        [-1, 1], unbounded (``native=True``: in ``config.pixel_range``, what G writes), in w's
        dtype (the MLP computes in it; StyleALAE's decode gives the model's). ``lod``,
        ``blend`` and ``noise`` (any mode of ``ALAEModel.decode``) are checked and ignored: the
        MLP has one resolution and no noise inputs.

        w: a float tensor without NaN or infinity, its values within ±``MAX_ABS_W`` (1e4: an
        encoded or mapped w lies within about ±10). ``native=True``, and a w that requires grad
        while autograd records, read no values (``ALAEModel``'s docstring).

        Raises, naming ``decode`` and the argument: TypeError for a w that is no tensor or of a
        non-float dtype, a lod, blend or noise of the wrong type; ValueError for a w of another
        shape or on another device than the model, with NaN or infinity or a value beyond ±1e4, a
        noise tensor with NaN or infinity, an unknown noise mode, a bad lod or blend value.
        """
        self._check_lod_blend_noise(lod, blend, noise, "decode")
        ws = self._check_ws(w, "decode")
        self._check_decode_values(w, noise, native)
        y = self.generator(ws[:, 0])
        return y if native else self.from_native(y)
