"""The StyleALAE configuration: architecture plus the progressive-growing training schedule.

``StyleALAEConfig`` derives from ``ALAEConfig`` (latent size, F, D) and is registered as kind
``"style_alae"``, so ``ModelConfig.from_json(text)`` rebuilds it and ``build_model(config)``
builds a ``StyleALAE``. Besides the architecture it carries the values of its training
schedule (``lod_kimg``, ``lod_batch``, ``lod_lr``, ``start_lod``, ``train_kimg``), so that a
preset is one declaration; what they mean, and the schedule built from them, is in
``alae_fast.training.schedule`` (``schedule_from_config``), their checks are the ones
``LODSchedule`` runs (``check_real_tuple``, ``check_int_tuple`` in ``config.py``).

Levels: lod 0 is 4x4 and lod ``max_lod = layer_count - 1`` the final resolution
``4 * 2**max_lod``; per-lod entries past ``max_lod`` are not used (so a smaller
``layer_count`` keeps a preset's schedule valid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .config import ALAEConfig, check_int, check_int_tuple, check_real, check_real_tuple, per_level, register_config


@register_config
@dataclass(frozen=True)
class StyleALAEConfig(ALAEConfig):
    """StyleALAE (Pidhorskyi, Adjeroh, Doretto, CVPR 2020, Sec. 4) with its training schedule.

    Fixed by the paper: the blur [1, 2, 1] after G's upsampling and before E's downsampling,
    gain 1 of G's style affines, leaky ReLU everywhere except ToRGB and D.

    Architecture fields (besides ``ALAEConfig``'s: latent_size 512, mapping_layers 8,
    mapping_lrmul 0.1, discriminator_layers 3, discriminator_lrmul 0.1, lrelu_slope 0.2,
    w_avg_beta 0.995):
        layer_count: L, the number of resolutions 4, 8, ..., 4 * 2**(L-1) (default 9: 1024 px).
        channels: image channels (default 3).
        start_features, max_features: feature maps at resolution index i (0 = 4x4) are
            ``min(max_features, start_features * 2**(L-1-i))`` (defaults 16 and 512).
        fused_scale_resolution: G upsamples with a fused transposed convolution when a
            block's OUTPUT is at least this many pixels wide, E downsamples with a strided
            convolution when a block's INPUT is (default 128, the paper's); below it they
            use nearest x2 + 3x3 conv and 3x3 conv + 2x2 average pool, the same function.
        to_rgb_gain: equalized-lr gain of G's 1x1 ToRGB convolutions (default 0.03).
        instance_norm_eps: epsilon inside every instance norm's square root (default 1e-8).

    Fidelity fields: where the official implementation (podgorskiy/ALAE, net.py) does
    something the paper does not describe. The defaults keep alae_fast's original behaviour;
    the paper presets set the official values, so that official checkpoints load exactly
    (``alae_fast.models.load_official``):
        from_rgb_lrelus: leaky ReLUs applied after E's FromRGB convolution (default 1;
            official 2: one inside FromRGB and one more in the encoder's forward, i.e. one
            leaky ReLU of slope ``lrelu_slope**2``).
        encoder_norm_eps: epsilon of E's instance norms (default None: ``instance_norm_eps``;
            official 1e-5, torch's ``InstanceNorm2d`` default, while G's is 1e-8).
        encoder_std_eps: epsilon inside the std statistic E maps to w, sqrt(var + eps)
            (default None: the same as E's norm, one fused op; official 0.0: sqrt(var)).
        first_noise_shared: G's very first noise image (block 0, before the first style) is
            one [1, 1, 4, 4] draw shared by the batch, because the official constant input
            has batch 1 (default False; official True). Only ``noise='random'`` reads it.

    Training-schedule fields (per lod, the last entry repeated; ``LODSchedule`` says what
    they mean):
        lod_kimg: thousands of images shown at each level.
        lod_batch: global batch per level.
        lod_lr: Adam learning rate per level.
        start_lod: the first level trained (default 0).
        fade_fraction: the share of each level's images over which it fades in, in [0, 1]
            (default 0.5; an official YAML with an odd EPOCHS_PER_LOD E gets (E // 2) / E, as
            its code fades over E // 2 epochs).
        train_kimg: the default training length in thousands of images (None: the sum of
            ``lod_kimg`` over the levels trained).
        ema_kimg: half-life of the weights' moving average in thousands of images (default
            10, the paper's), the trainer's default when ``--ema-kimg`` is not given.

    Training-behaviour fields (the trainer's defaults when the run does not set them; the
    official code's values by default, see ``alae_fast.training.trainer``):
        style_mixing: 'official' (one draw per batch over the active style inputs, default)
            or 'per_sample' (StyleGAN's per-sample draw over all of them).
        w_avg_update: 'every_generate' (w_avg moves at each of the three F(z) of an
            iteration, default) or 'generator_step' (once, after the generator step).
        flip: mirror real images horizontally with probability 1/2 (default True).
        mixing_prob: probability of style mixing in the trainer's steps 1 and 2 (default 0.9,
            the paper's), the trainer's default when ``--mixing-prob`` is not given.
        d_zero_grad_step: in step 3 the E + D optimiser also steps D with a zero gradient, as
            the official train_alae.py does under the torch 1.x its models were trained with
            (see ``alae_fast.training.trainer``; True in the paper presets). Default False, so a
            checkpoint written before this field existed resumes as it trained.
        augment: DiffAugment policies in front of E in the adversarial steps, comma-separated
            ('translation', 'cutout', 'color'; ``alae_fast.training.augment``). Default '': none,
            the paper's.
        lae_weight: weight of the trainer's step 3, the latent reconstruction loss
            ``mean((E(G(w)) - w)^2)``, a finite number > 0 (default 1.0: the paper's and the
            official code's unweighted loss; ``alae_fast.training.trainer``).
        r1_interval: a training behaviour: R1 every this many iterations, weighted by it
            (StyleGAN2's lazy regularisation; ``alae_fast.training.trainer``), an int >= 1.
            Default 1: every iteration, as the paper and the official code, so a checkpoint
            written before this field existed resumes as it trained.
        channels_last: a training behaviour: ``alae-fast train`` (``run_training``) moves the
            model to ``torch.channels_last`` before training, so every 4-D parameter and
            activation has that layout (the same arithmetic in another order, so another
            trajectory). On the CPU the convolutions of 8-16 feature maps run about twice as fast
            in that layout. ``build_model`` and the loaded runs of ``load_run`` (reconstruct,
            encode, evaluate) stay contiguous, which gives the same values up to rounding.
            Default False (contiguous), so a checkpoint written before this field existed
            resumes as it trained.

    Defaults: the paper's FFHQ 1024 model and schedule (16 epochs of 60k images per level,
    300 epochs in all, the authors' 8-GPU batches and learning rates).
    """

    kind: ClassVar[str] = "style_alae"
    layer_count: int = 9
    channels: int = 3
    start_features: int = 16
    max_features: int = 512
    fused_scale_resolution: int = 128
    to_rgb_gain: float = 0.03
    instance_norm_eps: float = 1e-8
    # --- fidelity to the official implementation (see the docstring) ---
    from_rgb_lrelus: int = 1
    encoder_norm_eps: float | None = None
    encoder_std_eps: float | None = None
    first_noise_shared: bool = False
    lod_kimg: tuple[float, ...] = (960.0,)
    lod_batch: tuple[int, ...] = (512, 256, 128, 64, 32, 32, 32, 32, 32)
    lod_lr: tuple[float, ...] = (0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003, 0.003)
    start_lod: int = 0
    fade_fraction: float = 0.5
    train_kimg: float | None = 18000.0
    ema_kimg: float = 10.0
    style_mixing: str = "official"
    w_avg_update: str = "every_generate"
    flip: bool = True
    mixing_prob: float = 0.9
    d_zero_grad_step: bool = False
    augment: str = ""
    lae_weight: float = 1.0
    r1_interval: int = 1
    channels_last: bool = False

    def validate(self) -> None:
        super().validate()
        for name in ("layer_count", "channels", "start_features", "max_features", "fused_scale_resolution"):
            check_int(self, name)
        check_real(self, "to_rgb_gain", 0.0, low_open=True)
        check_real(self, "instance_norm_eps", 0.0)
        check_int(self, "from_rgb_lrelus", 1)
        for name in ("encoder_norm_eps", "encoder_std_eps"):
            if getattr(self, name) is not None:
                check_real(self, name, 0.0)
        if not isinstance(self.first_noise_shared, bool):
            raise TypeError(f"StyleALAEConfig: first_noise_shared must be a bool; got {self.first_noise_shared!r}")
        check_real_tuple(self, "lod_kimg")
        check_real_tuple(self, "lod_lr")
        check_int_tuple(self, "lod_batch", 1)
        check_int(self, "start_lod", 0)
        if self.start_lod > self.max_lod:
            raise ValueError(f"StyleALAEConfig: start_lod must be <= max_lod = {self.max_lod}; got {self.start_lod}")
        check_real(self, "fade_fraction", 0.0, 1.0)
        if self.train_kimg is not None:
            check_real(self, "train_kimg", 0.0, low_open=True)
        check_real(self, "ema_kimg", 0.0, low_open=True)
        if self.style_mixing not in ("official", "per_sample"):
            raise ValueError(f"StyleALAEConfig: style_mixing must be 'official' or 'per_sample'; "
                             f"got {self.style_mixing!r}")
        if self.w_avg_update not in ("every_generate", "generator_step"):
            raise ValueError(f"StyleALAEConfig: w_avg_update must be 'every_generate' or 'generator_step'; "
                             f"got {self.w_avg_update!r}")
        if not isinstance(self.flip, bool):
            raise TypeError(f"StyleALAEConfig: flip must be a bool; got {type(self.flip).__name__}")
        check_real(self, "mixing_prob", 0.0, 1.0)
        check_real(self, "lae_weight", 0.0, low_open=True)
        check_int(self, "r1_interval", 1)
        if not isinstance(self.d_zero_grad_step, bool):
            raise TypeError(f"StyleALAEConfig: d_zero_grad_step must be a bool; got {self.d_zero_grad_step!r}")
        if not isinstance(self.channels_last, bool):
            raise TypeError(f"StyleALAEConfig: channels_last must be a bool; got {self.channels_last!r}")
        if not isinstance(self.augment, str):
            raise TypeError(f"StyleALAEConfig: augment must be a str; got {type(self.augment).__name__}")
        from ..training.augment import parse_augment  # here: training imports the models

        # one spelling of a setting ('none', ' cutout,color ' -> '', 'cutout,color'), so that
        # a flag and --set, or a resume, compare what the run does, not how it was typed
        object.__setattr__(self, "augment", ",".join(parse_augment(self.augment, "StyleALAEConfig: augment")))

    # --- derived sizes -----------------------------------------------------------------------
    @property
    def max_lod(self) -> int:
        """The last level of detail, ``layer_count - 1``."""
        return self.layer_count - 1

    @property
    def resolution(self) -> int:
        """Final image side in pixels, ``4 * 2**max_lod``."""
        return self.resolution_at(self.max_lod)

    @property
    def num_ws(self) -> int:
        """Style inputs of G: two per resolution."""
        return 2 * self.layer_count

    def resolution_at(self, lod: int) -> int:
        """Image side at level ``lod``: ``4 * 2**lod``."""
        return 4 * 2 ** lod

    def features_at(self, lod: int) -> int:
        """Feature maps of resolution index ``lod`` (-1 gives E's output width below 4x4)."""
        return min(self.max_features, self.start_features * 2 ** (self.layer_count - 1 - lod))

    @property
    def encoder_eps(self) -> tuple[float, float]:
        """(E's instance-norm eps, E's std-statistic eps) with the None defaults resolved."""
        norm = self.instance_norm_eps if self.encoder_norm_eps is None else self.encoder_norm_eps
        return norm, (norm if self.encoder_std_eps is None else self.encoder_std_eps)

    def per_lod(self, name: str, lod: int):
        """Entry ``lod`` of the per-lod tuple ``name`` (the last entry repeats)."""
        return per_level(getattr(self, name), lod)
