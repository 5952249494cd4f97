"""Model configurations: frozen dataclasses that round-trip through JSON.

``ModelConfig`` holds the machinery (``to_dict``/``from_dict``/``to_json``/``from_json``,
``replace``, validation); each concrete config declares a ``kind`` and is registered with
``@register_config`` so that ``ModelConfig.from_json(text)`` rebuilds the right class.
``ALAEConfig`` holds what every ALAE shares (the latent size, the mapping network F, the
latent discriminator D); ``MLPALAEConfig`` adds the MLP encoder E and generator G. A
StyleALAE config derives from ``ALAEConfig`` in the same way::

    @register_config
    @dataclasses.dataclass(frozen=True)
    class StyleALAEConfig(ALAEConfig):
        kind: ClassVar[str] = "style_alae"
        latent_size: int = 512
        ...
        def validate(self):
            super().validate()
            ...

JSON holds tuples as lists; ``from_dict`` turns lists back into tuples, so
``C.from_json(c.to_json()) == c``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

from .._words import word_for

_CONFIG_KINDS: dict[str, type[ModelConfig]] = {}


def register_config(cls: type[ModelConfig]) -> type[ModelConfig]:
    """Class decorator: makes ``ModelConfig.from_dict`` / ``from_json`` know ``cls.kind``."""
    if not (isinstance(cls, type) and issubclass(cls, ModelConfig) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"register_config: expected a dataclass deriving from ModelConfig; got {cls!r}")
    kind = cls.__dict__.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"register_config: {cls.__name__} must define its own non-empty class attribute 'kind'")
    if kind in _CONFIG_KINDS and _CONFIG_KINDS[kind] is not cls:
        raise ValueError(f"register_config: kind {kind!r} is already registered by {_CONFIG_KINDS[kind].__name__}")
    _CONFIG_KINDS[kind] = cls
    return cls


def config_kinds() -> dict[str, type[ModelConfig]]:
    """The registered config classes by kind."""
    return dict(_CONFIG_KINDS)


@dataclass(frozen=True)
class ModelConfig:
    """Base of all model configs: JSON round trip, copies with changes, validation."""

    kind: ClassVar[str] = ""

    def __post_init__(self):
        # JSON has no tuples; accept lists anywhere a tuple is expected and store tuples, so a
        # config equals its round trip and stays hashable.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raises ValueError/TypeError naming the first bad field. Subclasses extend it."""

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"kind": ..., <field>: <value>, ...}`` (tuples as lists)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The config as a JSON object string (see ``to_dict``)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuilds a config from ``to_dict`` output.

        On ``ModelConfig`` itself the class is chosen by ``data["kind"]``; on a concrete class
        ``kind`` may be omitted but must match when present. Missing fields take their
        defaults; unknown fields raise ValueError.
        """
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict: data must be a dict; got {type(data).__name__}")
        data = dict(data)
        kind = data.pop("kind", None)
        target = cls
        if cls.__dict__.get("kind", "") == "" or cls not in _CONFIG_KINDS.values():
            if kind is None:
                raise ValueError(f"{cls.__name__}.from_dict: data needs a 'kind' "
                                 f"(one of {sorted(_CONFIG_KINDS)})")
            if kind not in _CONFIG_KINDS:
                raise ValueError(f"{cls.__name__}.from_dict: unknown kind {kind!r}; "
                                 f"expected one of {sorted(_CONFIG_KINDS)}")
            target = _CONFIG_KINDS[kind]
            if not issubclass(target, cls):
                raise ValueError(f"{cls.__name__}.from_dict: kind {kind!r} is a {target.__name__}, "
                                 f"not a {cls.__name__}")
        elif kind is not None and kind != cls.kind:
            raise ValueError(f"{cls.__name__}.from_dict: kind must be {cls.kind!r}; got {kind!r}")
        check_fields(target, data, f"{target.__name__}.from_dict")
        return target(**data)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Rebuilds a config from ``to_json`` output (see ``from_dict``)."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> ModelConfig:
        """A copy with some fields changed (validated again); unknown names raise ValueError."""
        check_fields(self, changes, type(self).__name__)
        return dataclasses.replace(self, **changes)


# --- field checks shared by the configs (and the training schedule, alae_fast.training.schedule) ---

def check_fields(cls, data, where: str) -> None:
    """Raises ValueError (prefixed ``where``) naming the keys of ``data`` that are not fields of
    the dataclass (or dataclass instance) ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown {word_for(len(unknown), 'field')} {unknown}; expected some of {sorted(names)}")


def check_int(cfg: ModelConfig, name: str, minimum: int = 1) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{type(cfg).__name__}: {name} must be an int; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{type(cfg).__name__}: {name} must be >= {minimum}; got {value}")


def check_real(cfg: ModelConfig, name: str, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{type(cfg).__name__}: {name} must be a number; got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        lo = "(" if low_open else "["
        raise ValueError(f"{type(cfg).__name__}: {name} must be a finite number in {lo}{low}, {high}]; got {value}")
    object.__setattr__(cfg, name, value)  # JSON may hand back 1 for 1.0


def check_real_tuple(cfg, name: str) -> None:
    """A non-empty tuple of finite numbers > 0 (a per-level ``lod_kimg``/``lod_lr``), stored as
    floats; ValueError otherwise."""
    value = getattr(cfg, name)
    if (not isinstance(value, tuple) or len(value) == 0 or any(
            isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0 for v in value)):
        raise ValueError(f"{type(cfg).__name__}: {name} must be a non-empty sequence of finite numbers > 0 "
                         f"(one per lod, the last repeated); got {value!r}")
    object.__setattr__(cfg, name, tuple(float(v) for v in value))


def check_pixel_range(cfg) -> None:
    """``pixel_range``: two finite numbers lo < hi, stored as floats; ValueError otherwise."""
    value = cfg.pixel_range
    if (not isinstance(value, tuple) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) for v in value)
            or not value[0] < value[1]):
        raise ValueError(f"{type(cfg).__name__}: pixel_range must be two finite numbers (lo, hi) with "
                         f"lo < hi; got {value!r}")
    object.__setattr__(cfg, "pixel_range", (float(value[0]), float(value[1])))


def per_level(values: tuple, lod: int):
    """Entry ``lod`` of a per-level tuple; a tuple shorter than the levels repeats its last entry
    (the rule of every ``lod_*`` value, see alae_fast.training.schedule)."""
    return values[min(lod, len(values) - 1)]


def check_int_tuple(cfg: ModelConfig, name: str, min_len: int = 0) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, tuple) or len(value) < min_len or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{type(cfg).__name__}: {name} must be a sequence of at least {min_len} "
                         f"positive ints; got {value!r}")


# --- ALAE configs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ALAEConfig(ModelConfig):
    """What every ALAE has: the latent space, the mapping network F and the discriminator D.

    Fields:
        latent_size: size of z and w (both live in R^latent_size).
        mapping_layers: linear layers of F after its pixel norm (latent -> latent each).
        mapping_lrmul: learning-rate multiplier of F's layers.
        discriminator_layers: linear layers of D (latent -> ... -> latent -> 1).
        discriminator_lrmul: learning-rate multiplier of D's layers.
        lrelu_slope: negative slope of every leaky ReLU.
        w_avg_beta: decay of the running mean of w (``update_w_avg``) used by truncation.
        truncation_psi, truncation_cutoff: the truncation that sampling commands apply by
            default (``alae-fast generate`` and ``inference.sample_images`` when no
            psi is given): w <- w_avg + psi (w - w_avg) on style inputs [0, cutoff) (cutoff
            None: all). Defaults 1.0 and None (no truncation); the paper presets carry the
            official 0.7 and 8. ``generate()`` itself and training never read them.
        pixel_range: ``(lo, hi)``, the pixel range E reads and G writes (the networks' native
            range; default (-1, 1)). The pipeline's images are always in [-1, 1]: ``encode``
            and ``decode`` map them to and from this range, and the trainer feeds E real
            images already mapped, so R1's gradient is taken in the native range, as the
            model's authors trained it. The official ``mnist_ref`` MLP uses (0, 1) (x / 255).
    """

    latent_size: int = 512
    mapping_layers: int = 8
    mapping_lrmul: float = 0.1
    discriminator_layers: int = 3
    discriminator_lrmul: float = 0.1
    lrelu_slope: float = 0.2
    w_avg_beta: float = 0.995
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    pixel_range: tuple[float, float] = (-1.0, 1.0)

    def validate(self) -> None:
        super().validate()
        check_int(self, "latent_size")
        check_int(self, "mapping_layers", self._min_mapping_layers)
        check_real(self, "mapping_lrmul", 0.0, low_open=True)
        check_int(self, "discriminator_layers")
        check_real(self, "discriminator_lrmul", 0.0, low_open=True)
        check_real(self, "lrelu_slope", 0.0, 1.0)
        check_real(self, "w_avg_beta", 0.0, 1.0)
        check_real(self, "truncation_psi")
        if self.truncation_cutoff is not None:
            check_int(self, "truncation_cutoff", 0)
        check_pixel_range(self)

    # F may be the identity (0 layers) only where a model says so (the MLP of mnist_ref).
    _min_mapping_layers: ClassVar[int] = 1


@register_config
@dataclass(frozen=True)
class MLPALAEConfig(ALAEConfig):
    """The MLP ALAE of the paper's MNIST experiment (defaults: exactly that model).

    Fields (besides ``ALAEConfig``'s, whose defaults here are latent 50 and 6 mapping layers):
        image_channels, image_size: the image is [image_channels, image_size, image_size]
            (default 1 x 28 x 28: 784 inputs to E and outputs of G).
        encoder_hidden: widths of E's hidden layers (default (1024, 1024)).
        generator_hidden: widths of G's hidden layers (default (1024, 1024)).
        encoder_out_act: activation after E's last layer. 'linear' (default) follows the
            paper's description, leaky ReLUs only between layers; 'lrelu' is what the
            authors' code does, so that E's w gets the same lrelu-shaped distribution as F's.
        encoder_out_slope: slope of that final leaky ReLU (default None: ``lrelu_slope``; the
            official ``mnist_ref`` code calls ``F.leaky_relu(x)``, slope 0.01).
        generator_slope: slope of G's hidden leaky ReLUs (default None: ``lrelu_slope``;
            ``mnist_ref``: 0.01).
        mapping_layers: 0 makes F the identity, w = z, without pixel norm (``mnist_ref``'s
            ``MappingFromLatent`` at the branch's last commit).
    """

    kind: ClassVar[str] = "mlp_alae"
    latent_size: int = 50
    mapping_layers: int = 6
    image_channels: int = 1
    image_size: int = 28
    encoder_hidden: tuple[int, ...] = (1024, 1024)
    generator_hidden: tuple[int, ...] = (1024, 1024)
    encoder_out_act: str = "linear"
    encoder_out_slope: float | None = None
    generator_slope: float | None = None

    _min_mapping_layers: ClassVar[int] = 0

    def validate(self) -> None:
        super().validate()
        for name in ("encoder_out_slope", "generator_slope"):
            if getattr(self, name) is not None:
                check_real(self, name, 0.0, 1.0)
        check_int(self, "image_channels")
        check_int(self, "image_size")
        check_int_tuple(self, "encoder_hidden")
        check_int_tuple(self, "generator_hidden")
        if self.encoder_out_act not in ("linear", "lrelu"):
            raise ValueError(f"MLPALAEConfig: encoder_out_act must be 'linear' or 'lrelu'; got {self.encoder_out_act!r}")

    @property
    def image_features(self) -> int:
        """Pixels per image: image_channels * image_size**2 (784 for MNIST)."""
        return self.image_channels * self.image_size * self.image_size
