"""Official ALAE checkpoints (podgorskiy/ALAE, Apache-2.0) as alae_fast models.

    from alae_fast.models import load_official
    model = load_official("ffhq/model_157.pth")                        # architecture from shapes
    model = load_official("model.pth", config="configs/ffhq.yaml")    # or from the official YAML
    w = model.encode(x)                  # x [N, 3, 1024, 1024] in [-1, 1]
    y = model.decode(w, noise="batch")

Supported: the StyleALAE of the master branch (commit 42bcf2e: ``GeneratorDefault``,
``EncoderDefault``, ``MappingF``, ``MappingD``; the four published configs ffhq,
celeba-hq256, bedroom, celeba) and the MLP of the ``mnist_ref`` branch (``GeneratorFC``,
``EncoderFC``, ``MappingToLatentNoStyle``, ``MappingFromLatent``).

What conversion does (the official layers are in ``lreq.py``/``net.py``):
- The official equalised-lr layers store EFFECTIVE weights (the He scale is applied at
  init); alae_fast stores w / (gain · lrmul / sqrt(fan_in)) and biases b / lrmul, so every
  weight is divided by its layer's ``weight_gain`` and every bias by its ``bias_lrmul``.
- G's up-convolution at >= 128 px is a ConvTranspose2d with weight [in, out, 3, 3]; as the
  [out, in, 3, 3] convolution weight alae_fast keeps it is ``w.transpose(0, 1).flip(2, 3)``.
- The official D (``MappingD``) ends in 2·latent outputs of which it returns output
  ``latent``; the ``mnist_ref`` D returns output 0: that one row becomes D's single output.
- The encoder's blocks are indexed from the top resolution down (``encode_block[L-1-i]`` is
  alae_fast's ``blocks[i]``), and so are its FromRGB layers.
- Per-layer noise weights and biases [1, C, 1, 1] become [C]; ``dlatent_avg.buff`` [2L,
  latent] (identical rows) becomes ``w_avg`` (row 0).
The architecture must be the official one for outputs to match: the paper presets carry
the official fidelity fields (``StyleALAEConfig``: two leaky ReLUs after FromRGB, E's
instance norm eps 1e-5 and std without eps, G's first noise image shared by the batch).

Loading never runs pickled code (``alae_fast.models.official_io``).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Iterator

import torch

from ..errors import caller_stacklevel
from .config import MLPALAEConfig, ModelConfig, per_level
from .official_io import OfficialCheckpointError, read_official_checkpoint, read_official_yaml
from .presets import MNIST_REF, OFFICIAL_FIDELITY, build_model, preset_config
from .style_config import StyleALAEConfig

__all__ = ["load_official", "official_config_from_yaml", "infer_official_config", "official_state_dict",
           "is_official_checkpoint", "OfficialCheckpointError", "OFFICIAL_FUSED_RESOLUTION"]

# The official G and E switch to the fused (transposed / strided) resampling at 128 px; the
# weight layout of G's up-convolution depends on it.
OFFICIAL_FUSED_RESOLUTION = 128
# alae_fast network -> the official checkpoint's model name (E is the official "discriminator").
_NAMES = {"encoder": "discriminator", "generator": "generator", "mapping": "mapping_fl",
          "discriminator": "mapping_tl"}
# The official defaults.py (master, 42bcf2e) for the MODEL keys this loader reads.
_MODEL_DEFAULTS = {"LAYER_COUNT": 6, "START_CHANNEL_COUNT": 64, "MAX_CHANNEL_COUNT": 512, "LATENT_SPACE_SIZE": 256,
                   "MAPPING_LAYERS": 5, "CHANNELS": 3, "DLATENT_AVG_BETA": 0.995, "STYLE_MIXING_PROB": 0.9,
                   "TRUNCATIOM_PSI": 0.7,
                   "TRUNCATIOM_CUTOFF": 8, "GENERATOR": "GeneratorDefault", "ENCODER": "EncoderDefault"}
# ... and for the TRAIN and DATASET keys that make the schedule (defaults.py's values).
_TRAIN_DEFAULTS = {"EPOCHS_PER_LOD": 15, "TRAIN_EPOCHS": 110, "LOD_2_BATCH_8GPU": [512, 256, 128, 64, 32, 32],
                   "LEARNING_RATES": [0.002]}
_DATASET_DEFAULTS = {"SIZE": 70000, "PART_COUNT": 1, "FLIP_IMAGES": True}
# Official settings (key, defaults.py's value) that alae_fast does not implement: a YAML giving
# another value is refused by name, never loaded as a config that would compute or train otherwise
# than the official run (Z_REGRESSION: E regresses z and reconstructs G(F(E(x))); MAPPING_D/F:
# other network classes; the Adam betas and the step decay of the official scheduler).
_UNSUPPORTED_SETTINGS = (("MODEL", "Z_REGRESSION", False), ("MODEL", "MAPPING_D", "MappingD"),
                         ("MODEL", "MAPPING_F", "MappingF"), ("TRAIN", "ADAM_BETA_0", 0.0),
                         ("TRAIN", "ADAM_BETA_1", 0.99), ("TRAIN", "LEARNING_DECAY_STEPS", []))
_PAPER_PRESETS = ("ffhq-1024", "celeba-hq-256", "bedroom-256", "celeba-128")
_STYLE_ARCH = ("latent_size", "mapping_layers", "layer_count", "channels", "start_features", "max_features")


# --- configs ----------------------------------------------------------------------------------

def _style_config(arch: dict[str, Any], extra: dict[str, Any] | None = None,
                  schedule: dict[str, Any] | None = None) -> StyleALAEConfig:
    """The paper preset with this architecture, else the official defaults; with ``schedule``
    (from a YAML) where it trains differently from that preset."""
    extra = dict(extra or {})
    for name in _PAPER_PRESETS:
        preset = preset_config(name)
        if all(getattr(preset, k) == v for k, v in arch.items()):
            config = preset.replace(**extra) if extra else preset
            if schedule and not _same_schedule(config, config.replace(**schedule)):
                config = config.replace(**schedule)
            return config
    return StyleALAEConfig(**{**OFFICIAL_FIDELITY, **arch, **extra, **(schedule or {})})


def _same_schedule(a: StyleALAEConfig, b: StyleALAEConfig) -> bool:
    """Whether two configs train alike: the same value at every level of each per-level table
    (a shorter table repeats its last entry), the same length and flips."""
    levels = range(a.layer_count)
    return (all(per_level(getattr(a, f), lod) == per_level(getattr(b, f), lod)
                for f in ("lod_kimg", "lod_batch", "lod_lr") for lod in levels)
            and a.train_kimg == b.train_kimg and a.flip == b.flip and a.fade_fraction == b.fade_fraction)


def yaml_sections(data: dict[str, Any], path) -> tuple[dict, dict]:
    """A read YAML's ``(TRAIN, DATASET)`` sections (empty where absent), else
    OfficialCheckpointError naming the one that is not a mapping."""
    train, dataset = data.get("TRAIN") or {}, data.get("DATASET") or {}
    for key, section in (("TRAIN", train), ("DATASET", dataset)):
        if not isinstance(section, dict):
            raise OfficialCheckpointError(f"{path}: {key} must be a mapping; got {type(section).__name__}")
    return train, dataset


def yaml_whole(section: dict, name: str, path, low: int = 1) -> int:
    """``section[key]`` (``name`` = 'TRAIN.KEY') as a whole number >= ``low``, else
    OfficialCheckpointError naming it: a YAML's TRAIN and DATASET counts."""
    value = section[name.split(".", 1)[1]]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise OfficialCheckpointError(f"{path}: {name} must be a whole number >= {low}; got {value!r}")
    return value


def yaml_table(section: dict, name: str, path, kind=int) -> tuple:
    """``section[key]`` (``name`` = 'TRAIN.KEY') as a non-empty tuple of positive ``kind`` (int or
    float) numbers, else OfficialCheckpointError naming it: the per-level batch and rate tables."""
    value = section[name.split(".", 1)[1]]
    ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
        not isinstance(v, bool) and isinstance(v, (int, float) if kind is float else int) and v > 0
        and math.isfinite(v) for v in value)
    if not ok:
        what = "whole numbers" if kind is int else "numbers"
        raise OfficialCheckpointError(f"{path}: {name} must be a non-empty list of positive {what}, one per level; "
                                      f"got {value!r}")
    return tuple(kind(v) for v in value)


def official_epoch_images(dataset: dict, path) -> int:
    """The images of an official epoch for a YAML's DATASET section (defaults.py's values filled
    in): the TFRecords loader's length, ``(SIZE // PART_COUNT) x PART_COUNT`` (dataloader.py: each
    of the PART_COUNT files gives SIZE // PART_COUNT images), which LODDriver takes as the data
    set's size; 182624 for celeba.yaml's 182637 in 16 parts. OfficialCheckpointError naming a
    malformed value."""
    size = yaml_whole(dataset, "DATASET.SIZE", path)
    parts = yaml_whole(dataset, "DATASET.PART_COUNT", path)
    if parts > size:
        raise OfficialCheckpointError(f"{path}: DATASET.PART_COUNT {parts} is more than DATASET.SIZE {size}: the "
                                      f"official loader's parts would hold no image")
    return size // parts * parts


def _yaml_schedule(data: dict[str, Any], layer_count: int, path) -> dict[str, Any]:
    """The StyleALAE schedule of an official YAML: TRAIN.EPOCHS_PER_LOD and TRAIN_EPOCHS times an
    official epoch (:func:`official_epoch_images`), TRAIN.LOD_2_BATCH_8GPU (the global batch of the recommended 8-GPU
    run, as the paper presets carry), TRAIN.LEARNING_RATES and DATASET.FLIP_IMAGES; missing keys
    take defaults.py's values. Tables are cut to the model's levels. A malformed value is
    refused naming its key."""
    train, dataset = yaml_sections(data, path)
    t, d = {**_TRAIN_DEFAULTS, **train}, {**_DATASET_DEFAULTS, **dataset}
    size = official_epoch_images(d, path)
    epochs = yaml_whole(t, "TRAIN.EPOCHS_PER_LOD", path, low=0)
    if epochs == 0:
        raise OfficialCheckpointError(
            f"{path}: TRAIN.EPOCHS_PER_LOD 0 (the official driver then trains at the last level from the first "
            f"image, without growing) has no alae_fast schedule; give the epochs per level (to sample, encode or "
            f"edit, load without the YAML: the architecture is then read from the checkpoint's shapes)")
    # lod_driver.get_blend_factor fades over EPOCHS_PER_LOD // 2 epochs: for an odd count (the
    # defaults' 15) that is not half of the level (even counts give exactly 0.5). EPOCHS_PER_LOD
    # 1 would divide by zero there; here it is a level without fade-in.
    fade = (epochs // 2) / epochs
    return dict(lod_kimg=(epochs * size / 1000.0,), fade_fraction=fade,
                lod_batch=yaml_table(t, "TRAIN.LOD_2_BATCH_8GPU", path)[:layer_count],
                lod_lr=yaml_table(t, "TRAIN.LEARNING_RATES", path, float)[:layer_count],
                train_kimg=yaml_whole(t, "TRAIN.TRAIN_EPOCHS", path) * size / 1000.0,
                flip=_yaml_bool(d, "DATASET.FLIP_IMAGES", path))


def _yaml_bool(section: dict, name: str, path) -> bool:
    """``section[key]`` as a bool (yacs refuses another type where defaults.py has a bool), else
    OfficialCheckpointError naming it: `FLIP_IMAGES: maybe` had trained with flips."""
    value = section[name.split(".", 1)[1]]
    if not isinstance(value, bool):
        raise OfficialCheckpointError(f"{path}: {name} must be true or false; got {value!r}")
    return value


def _refuse_unsupported(data: dict[str, Any], path) -> None:
    """OfficialCheckpointError naming the first of :data:`_UNSUPPORTED_SETTINGS` that ``data`` sets
    to another value than the official default."""
    for section, key, default in _UNSUPPORTED_SETTINGS:
        part = data.get(section)
        value = part.get(key, default) if isinstance(part, dict) else default
        if value != default:
            raise OfficialCheckpointError(
                f"{path}: {section}.{key} {value!r} is not implemented by alae_fast (only the official default "
                f"{default!r}); a config read past it would compute or train otherwise than the official run. "
                f"Load without the YAML to read the architecture from the checkpoint's shapes")


def official_growth(state: Any, layer_count: int, yaml_path=None) -> tuple[int, int, int, str] | None:
    """Where the official training of a checkpoint stood when it was saved: ``(epochs, lod,
    epochs_per_lod, source)`` from its schedulers' ``last_epoch`` (``auxiliary.scheduler``; the
    official ``LODDriver`` trains at lod ``min(layer_count - 1, epoch // EPOCHS_PER_LOD)``), with
    EPOCHS_PER_LOD from the YAML at ``yaml_path`` or defaults.py's 15 (``source`` says which).
    None where the checkpoint records no epoch (a file cut down to its models)."""
    aux = state.get("auxiliary") if isinstance(state, dict) else None
    sched = aux.get("scheduler") if isinstance(aux, dict) else None
    epochs = [v.get("last_epoch") for v in sched.values() if isinstance(v, dict)] if isinstance(sched, dict) else []
    epochs = [int(e) for e in epochs if isinstance(e, int) and not isinstance(e, bool) and e >= 0]
    if not epochs:
        return None
    per_lod, source = int(_TRAIN_DEFAULTS["EPOCHS_PER_LOD"]), "defaults.py's EPOCHS_PER_LOD"
    if yaml_path is not None:
        train = read_official_yaml(yaml_path).get("TRAIN") or {}
        if isinstance(train, dict) and "EPOCHS_PER_LOD" in train:
            per_lod, source = int(train["EPOCHS_PER_LOD"]), "the YAML's EPOCHS_PER_LOD"
    epoch = max(epochs)
    lod = layer_count - 1 if per_lod <= 0 else min(layer_count - 1, epoch // per_lod)
    return epoch, lod, per_lod, source


def official_config_from_yaml(path: str | os.PathLike) -> ModelConfig:
    """The alae_fast config of an official YAML config (``configs/*.yaml``, yacs keys).

    Reads MODEL.LATENT_SPACE_SIZE, LAYER_COUNT, START_CHANNEL_COUNT, MAX_CHANNEL_COUNT,
    MAPPING_LAYERS, CHANNELS, DLATENT_AVG_BETA, STYLE_MIXING_PROB (``mixing_prob``),
    TRUNCATIOM_PSI, TRUNCATIOM_CUTOFF (missing keys take the official defaults.py values),
    GENERATOR/ENCODER and, for the MLP,
    MAPPING_TO_LATENT / MAPPING_FROM_LATENT. A StyleALAE's schedule is the YAML's: per-level
    images TRAIN.EPOCHS_PER_LOD x an official epoch (:func:`official_epoch_images`: DATASET.SIZE //
    PART_COUNT x PART_COUNT), length TRAIN.TRAIN_EPOCHS epochs,
    batch TRAIN.LOD_2_BATCH_8GPU (the global batch of the recommended 8-GPU run), rates
    TRAIN.LEARNING_RATES, flips DATASET.FLIP_IMAGES. A StyleALAE whose architecture is a
    paper preset's gets that preset, and equals it when the YAML trains alike (the published
    configs do); others get the official fidelity fields.

    Raises FileNotFoundError, ImportError (no PyYAML) or OfficialCheckpointError (an
    architecture this loader does not support, bad values, TRAIN.EPOCHS_PER_LOD 0, or a
    StyleALAE setting alae_fast does not implement set to another value than the official
    default: MODEL.Z_REGRESSION, MAPPING_D, MAPPING_F, TRAIN.ADAM_BETA_0, ADAM_BETA_1,
    LEARNING_DECAY_STEPS). TRAIN.BASE_LEARNING_RATE is not read: the official scheduler sets
    every level's rate from LEARNING_RATES before the first step.
    """
    data = read_official_yaml(path)
    model = data.get("MODEL") or {}
    if not isinstance(model, dict):
        raise OfficialCheckpointError(f"{path}: MODEL must be a mapping; got {type(model).__name__}")
    m = {**_MODEL_DEFAULTS, **model}
    try:
        if m["GENERATOR"] == "GeneratorFC":
            to_latent = m.get("MAPPING_TO_LATENT", "MappingToLatent")  # absent: defaults.py's, as the refusal says
            from_latent = m.get("MAPPING_FROM_LATENT", "MappingFromLatent")
            if to_latent != "MappingToLatentNoStyle" or from_latent != "MappingFromLatent" or m["ENCODER"] != "EncoderFC":
                raise OfficialCheckpointError(
                    f"{path}: only the MLP of the mnist_ref branch is supported (GENERATOR GeneratorFC, ENCODER "
                    f"EncoderFC, MAPPING_TO_LATENT MappingToLatentNoStyle, MAPPING_FROM_LATENT MappingFromLatent); "
                    f"got ENCODER {m['ENCODER']!r}, MAPPING_TO_LATENT {to_latent!r}, MAPPING_FROM_LATENT {from_latent!r}")
            return MNIST_REF.replace(latent_size=int(m["LATENT_SPACE_SIZE"]), image_channels=int(m["CHANNELS"]),
                                     w_avg_beta=float(m["DLATENT_AVG_BETA"]))
        if m["GENERATOR"] != "GeneratorDefault" or m["ENCODER"] != "EncoderDefault":
            raise OfficialCheckpointError(
                f"{path}: unsupported architecture GENERATOR {m['GENERATOR']!r}, ENCODER {m['ENCODER']!r} "
                f"(supported: GeneratorDefault + EncoderDefault, or the mnist_ref MLP)")
        _refuse_unsupported(data, path)
        # whole numbers as yacs takes them (LAYER_COUNT 3.7 had become 3 without a word)
        for key in ("LATENT_SPACE_SIZE", "MAPPING_LAYERS", "LAYER_COUNT", "CHANNELS", "START_CHANNEL_COUNT",
                    "MAX_CHANNEL_COUNT", "TRUNCATIOM_CUTOFF"):
            yaml_whole(m, f"MODEL.{key}", path, low=0)
        arch = dict(latent_size=int(m["LATENT_SPACE_SIZE"]), mapping_layers=int(m["MAPPING_LAYERS"]),
                    layer_count=int(m["LAYER_COUNT"]), channels=int(m["CHANNELS"]),
                    start_features=int(m["START_CHANNEL_COUNT"]), max_features=int(m["MAX_CHANNEL_COUNT"]))
        extra = dict(w_avg_beta=float(m["DLATENT_AVG_BETA"]), truncation_psi=float(m["TRUNCATIOM_PSI"]),
                     truncation_cutoff=int(m["TRUNCATIOM_CUTOFF"]), mixing_prob=float(m["STYLE_MIXING_PROB"]))
        return _style_config(arch, extra, _yaml_schedule(data, arch["layer_count"], path))
    except (TypeError, ValueError) as e:
        if isinstance(e, OfficialCheckpointError):
            raise
        raise OfficialCheckpointError(f"{path}: bad MODEL values ({e})") from None


def _indices(sd: dict, prefix: str) -> list[int]:
    """Sorted distinct integers i of keys '<prefix><i>.…'."""
    out = set()
    for k in sd:
        if k.startswith(prefix):
            head = k[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                out.add(int(head))
    return sorted(out)


def infer_official_config(models: dict[str, dict], suffix: str = "_s", source: str = "checkpoint") -> ModelConfig:
    """The alae_fast config of an official checkpoint's ``models`` dict, from its shapes.

    Args:
        models: the checkpoint's ``models`` (name -> state dict).
        suffix: '_s' (the EMA copies) or '' (the training weights).
        source: the file, named in messages.

    StyleALAE: L from G's blocks, latent from G's style layers, channels from ToRGB, the
    features per level from G's convolutions and E's last block (start_features = the top
    level's, max_features = the 4x4 block's output), F's and D's layer counts. The MLP
    (``generator`` with ``fc_1``): the mnist_ref preset with the latent size and widths found.
    Raises OfficialCheckpointError when a needed tensor is missing or the features do not
    follow ALAE's rule min(max_features, start_features · 2^(L-1-i)).
    """
    g, e = _model(models, "generator" + suffix, source), _model(models, "discriminator" + suffix, source)
    try:
        if "fc_1.weight" in g:
            latent = g["fc_1.weight"].shape[1]
            features = g["fc_3.weight"].shape[0]
            side = math.isqrt(features)
            if side * side != features:
                raise OfficialCheckpointError(f"{source}: the MLP generator's output ({features}) is not a square image")
            d = _model(models, "mapping_tl" + suffix, source)
            return MNIST_REF.replace(
                latent_size=latent, image_size=side, image_channels=1,
                encoder_hidden=(e["fc_1.weight"].shape[0], e["fc_2.weight"].shape[0]),
                generator_hidden=(g["fc_1.weight"].shape[0], g["fc_2.weight"].shape[0]),
                discriminator_layers=len(_indices(d, "map_blocks.")))
        f = _model(models, "mapping_fl" + suffix, source)
        levels = _indices(g, "decode_block.")
        L = len(levels)
        if L == 0:
            raise OfficialCheckpointError(f"{source}: generator{suffix} has no decode_block.0 ... (not an official "
                                          f"StyleALAE generator)")
        if levels != list(range(L)):  # a block added or left out: name it, not the blocks that are there
            first_gap = min(set(range(max(levels) + 2)) - set(levels))
            strays = [i for i in levels if i > first_gap]
            raise OfficialCheckpointError(
                f"{source}: generator{suffix} has decode blocks {levels}, not consecutive from 0: "
                f"decode_block.{first_gap} is missing, or {', '.join(f'decode_block.{i}' for i in strays)} "
                f"{'is' if len(strays) == 1 else 'are'} not its own (give the official YAML config to have every "
                f"tensor checked against its architecture)")
        feats = [g[f"decode_block.{i}.conv_2.weight"].shape[0] for i in range(L)]
        below = e[f"encode_block.{L - 1}.conv_2.weight"].shape[0]
        start, maxf = feats[-1], below
        expected = [min(maxf, start * 2 ** (L - 1 - i)) for i in range(L)]
        if feats != expected:
            raise OfficialCheckpointError(
                f"{source}: generator feature maps per level {feats} do not follow min(max, start·2^(L-1-i)) "
                f"with start {start}, max {maxf}")
        arch = dict(latent_size=g["decode_block.0.style_1.weight"].shape[1],
                    mapping_layers=len(_indices(f, "map_blocks.")), layer_count=L,
                    channels=g["to_rgb.0.to_rgb.weight"].shape[0], start_features=start, max_features=maxf)
        # a file without D (see official_state_dict) keeps the official MappingToLatent's 3 layers
        d = models.get("mapping_tl" + suffix)
        return _style_config(arch, dict(discriminator_layers=len(_indices(d, "map_blocks.")) if isinstance(d, dict)
                                        else 3))
    except KeyError as k:
        raise OfficialCheckpointError(f"{source}: cannot infer the architecture: tensor {k.args[0]!r} is missing "
                                      f"(give the official YAML config)") from None


def _model(models: dict, name: str, source: str) -> dict:
    sd = models.get(name)
    if not isinstance(sd, dict):
        raise OfficialCheckpointError(f"{source}: 'models' has no state dict {name!r}")
    return sd


# --- the key map ----------------------------------------------------------------------------
# Each entry: (alae_fast key, official model, official key, official shape, how). how is
# 'weight' (divide by the layer's weight_gain), 'bias' (divide by its bias_lrmul), 'plain'
# (reshape only), 'upconv' (ConvTranspose2d weight -> conv weight, then as 'weight'),
# ('row', r) (row r of D's last layer, then as 'weight' / 'bias').

def _style_entries(c: StyleALAEConfig) -> Iterator[tuple]:
    L, lat, ch = c.layer_count, c.latent_size, c.channels
    f = c.features_at
    for k in range(c.mapping_layers):
        yield (f"mapping.layers.{k}.weight", "mapping_fl", f"map_blocks.{k}.fc.weight", (lat, lat), "weight")
        yield (f"mapping.layers.{k}.bias", "mapping_fl", f"map_blocks.{k}.fc.bias", (lat,), "bias")
    yield ("generator.const", "generator", "const", (1, f(0), 4, 4), "plain")
    for i in range(L):
        o, p = f(i), f"decode_block.{i}."
        for s in (1, 2):
            ours = f"generator.blocks.{i}.style_{s}."
            if s == 1 and i > 0:
                fused = c.resolution_at(i) >= OFFICIAL_FUSED_RESOLUTION
                yield (ours + "conv.weight", "generator", p + "conv_1.weight",
                       (f(i - 1), o, 3, 3) if fused else (o, f(i - 1), 3, 3), "upconv" if fused else "weight")
            if s == 2:
                yield (ours + "conv.weight", "generator", p + "conv_2.weight", (o, o, 3, 3), "weight")
            yield (ours + "noise_weight", "generator", p + f"noise_weight_{s}", (1, o, 1, 1), "plain")
            yield (ours + "bias", "generator", p + f"bias_{s}", (1, o, 1, 1), "plain")
            yield (ours + "adain.style.weight", "generator", p + f"style_{s}.weight", (2 * o, lat), "weight")
            yield (ours + "adain.style.bias", "generator", p + f"style_{s}.bias", (2 * o,), "bias")
        yield (f"generator.to_rgb.{i}.weight", "generator", f"to_rgb.{i}.to_rgb.weight", (ch, o, 1, 1), "weight")
        yield (f"generator.to_rgb.{i}.bias", "generator", f"to_rgb.{i}.to_rgb.bias", (ch,), "bias")
    for i in range(L - 1, -1, -1):  # the official order: top resolution first
        j, n, o = L - 1 - i, f(i), f(i - 1)
        p, ours = f"encode_block.{j}.", f"encoder.blocks.{i}."
        yield (f"encoder.from_rgb.{i}.weight", "discriminator", f"from_rgb.{j}.from_rgb.weight", (n, ch, 1, 1), "weight")
        yield (f"encoder.from_rgb.{i}.bias", "discriminator", f"from_rgb.{j}.from_rgb.bias", (n,), "bias")
        yield (ours + "conv_1.weight", "discriminator", p + "conv_1.weight", (n, n, 3, 3), "weight")
        yield (ours + "conv_1.bias", "discriminator", p + "bias_1", (1, n, 1, 1), "bias")
        yield (ours + "down.conv.weight", "discriminator", p + "conv_2.weight", (o, n, 3, 3), "weight")
        yield (ours + "down.conv.bias", "discriminator", p + "bias_2", (1, o, 1, 1), "bias")
        yield (ours + "style_1.weight", "discriminator", p + "style_1.weight", (lat, 2 * n), "weight")
        yield (ours + "style_1.bias", "discriminator", p + "style_1.bias", (lat,), "bias")
        yield (ours + "style_2.weight", "discriminator", p + "style_2.weight", (lat, 2 * o), "weight")
        yield (ours + "style_2.bias", "discriminator", p + "style_2.bias", (lat,), "bias")
    yield from _d_entries(c.discriminator_layers, lat, 2 * lat, lat)


def _d_entries(layers: int, lat: int, last_out: int, row: int) -> Iterator[tuple]:
    for k in range(layers):
        last = k == layers - 1
        yield (f"discriminator.layers.{k}.weight", "mapping_tl", f"map_blocks.{k}.weight",
               (last_out if last else lat, lat), ("row", row) if last else "weight")
        yield (f"discriminator.layers.{k}.bias", "mapping_tl", f"map_blocks.{k}.bias",
               (last_out if last else lat,), ("row", row) if last else "bias")


def _mlp_entries(c: MLPALAEConfig) -> Iterator[tuple]:
    if len(c.encoder_hidden) != 2 or len(c.generator_hidden) != 2 or c.mapping_layers != 0:
        raise OfficialCheckpointError("an official (mnist_ref) MLP has two hidden layers in E and G and F the "
                                      f"identity (mapping_layers 0); the config has E {c.encoder_hidden}, "
                                      f"G {c.generator_hidden}, mapping_layers {c.mapping_layers}")
    lat, feat = c.latent_size, c.image_features
    for net, model, widths in (("encoder", "discriminator", [feat, *c.encoder_hidden, lat]),
                               ("generator", "generator", [lat, *c.generator_hidden, feat])):
        for k in range(3):
            yield (f"{net}.layers.{k}.weight", model, f"fc_{k + 1}.weight", (widths[k + 1], widths[k]), "weight")
            yield (f"{net}.layers.{k}.bias", model, f"fc_{k + 1}.bias", (widths[k + 1],), "bias")
    yield from _d_entries(c.discriminator_layers, lat, lat, 0)


def _entries(config: ModelConfig) -> list[tuple]:
    if isinstance(config, StyleALAEConfig):
        return list(_style_entries(config))
    if isinstance(config, MLPALAEConfig):
        return list(_mlp_entries(config))
    raise TypeError(f"load_official: config must be a StyleALAEConfig or MLPALAEConfig; got {type(config).__name__}")


# Official tensors with no counterpart, which carry nothing a model needs: the fixed blur
# taps, the MLP's unused BatchNorm statistics and its unused F layers (mnist_ref's F returns z).
def _ignored(model: str, key: str, config: ModelConfig) -> bool:
    if key.endswith("blur.weight"):
        return True
    if isinstance(config, MLPALAEConfig):
        return key.startswith("bn_2.") or model == "mapping_fl"
    return False


# --- conversion -------------------------------------------------------------------------------

def _check_shapes(models: dict, config: ModelConfig, suffix: str, source: str, entries: list[tuple],
                  config_source: str | None = None) -> None:
    """Every tensor the config needs is there with its shape; nothing unknown is there.
    ``config_source`` (the YAML's path) is named in messages."""
    the_config = f"the config {config_source}" if config_source else "the config"
    needed: dict[str, set] = {}
    for _, model, key, shape, _ in entries:
        sd = _model(models, model + suffix, source)
        needed.setdefault(model, set()).add(key)
        if key not in sd:
            raise OfficialCheckpointError(f"{source}: {model}{suffix}.{key} is missing; {the_config} "
                                          f"({_describe(config)}) needs it with shape {list(shape)}")
        got = tuple(sd[key].shape)
        if got != tuple(shape):
            raise OfficialCheckpointError(f"{source}: {model}{suffix}.{key} has shape {list(got)}; {the_config} "
                                          f"({_describe(config)}) gives {list(shape)}")
    for model, keys in needed.items():
        extra = sorted(k for k in models[model + suffix] if k not in keys and not _ignored(model, k, config))
        if extra:
            raise OfficialCheckpointError(f"{source}: {model}{suffix}.{extra[0]} (shape "
                                          f"{list(models[model + suffix][extra[0]].shape)}) is not part of "
                                          f"{the_config}'s architecture ({_describe(config)})")


def _describe(config: ModelConfig) -> str:
    if isinstance(config, StyleALAEConfig):
        return (f"StyleALAE latent {config.latent_size}, {config.layer_count} levels, features "
                f"{config.start_features}..{config.max_features}, F {config.mapping_layers} layers, "
                f"{config.channels} channels")
    return f"MLP ALAE latent {config.latent_size}, {config.image_channels}x{config.image_size}x{config.image_size}"


def official_state_dict(models: dict[str, dict], model: torch.nn.Module, ema: bool = True,
                        source: str = "checkpoint", config_source: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of alae_fast ``model`` (built from the right config) holding the
    official ``models``' weights, as new tensors in the model's dtypes (for
    ``model.load_state_dict(..., assign=True)``).

    The rescaling runs in float64 for a float64 model (exact to the last bit of the official
    float32 weights), else in the model's dtype (one more rounding, ~6e-8 relative: half
    the work and memory on a 54 M-parameter model). Checks every shape first
    (``OfficialCheckpointError`` naming the first mismatching key with both shapes, and
    ``config_source``, the config's file, when given).
    Buffers without an official counterpart (resampling taps) keep the model's values.
    """
    config = model.config
    suffix = "_s" if ema else ""
    entries = _entries(config)
    if isinstance(config, StyleALAEConfig) and "mapping_tl" + suffix not in models:
        # The official Checkpointer.load warns of a model without its state dict and goes on: a
        # file cut down to what sampling needs opens, with D as the model's own initial weights
        warnings.warn(f"{source}: 'models' has no mapping_tl{suffix} (the latent discriminator D): D keeps "
                      f"freshly initialised weights, which only model.discriminator(w) and training would use; "
                      f"F, G and E are the checkpoint's", RuntimeWarning, stacklevel=caller_stacklevel())
        entries = [entry for entry in entries if entry[1] != "mapping_tl"]
    _check_shapes(models, config, suffix, source, entries, config_source)
    state = model.state_dict()
    for ours, mname, key, _, how in entries:
        target = state[ours]
        if not torch.isfinite(models[mname + suffix][key]).all():
            # every picture would be NaN, silently: the API refuses NaN in x, w, z and noise too
            raise OfficialCheckpointError(f"{source}: {mname + suffix}.{key} holds NaN or infinity; a model with "
                                          f"non-finite weights draws nothing")
        t = models[mname + suffix][key].detach().to(torch.float64 if target.dtype == torch.float64 else target.dtype)
        module = model.get_submodule(ours.rsplit(".", 1)[0])
        kind = ours.rsplit(".", 1)[1]
        if how == "upconv":
            t = t.transpose(0, 1).flip(2, 3)
        if isinstance(how, tuple):  # one row of D's last layer
            t = t[how[1]:how[1] + 1]
        if how in ("weight", "upconv") or (isinstance(how, tuple) and kind == "weight"):
            t = t / module.weight_gain
        elif how == "bias" or isinstance(how, tuple):
            t = t / module.bias_lrmul
        else:
            t = t.clone()  # never share storage with the loaded checkpoint
        state[ours] = t.reshape(target.shape).to(target.dtype).contiguous()
    avg = models.get("dlatent_avg")
    if not isinstance(avg, dict) or "buff" not in avg:
        raise OfficialCheckpointError(f"{source}: 'models' has no dlatent_avg.buff (the w average truncation and "
                                      f"editing use)")
    buff = avg["buff"]
    # the official DLatent holds one row per style input, all equal (its update averages ws
    # repeated over the inputs); alae_fast keeps one w_avg, so a buffer that is not that is refused
    # (the MLP's official row count is its own: only the StyleALAE's is one per style input)
    rows = 2 * int(config.layer_count) if hasattr(config, "layer_count") else None
    if (not isinstance(buff, torch.Tensor) or buff.ndim != 2 or buff.shape[1] != config.latent_size
            or (rows is not None and buff.shape[0] != rows)):
        said = list(buff.shape) if isinstance(buff, torch.Tensor) else type(buff).__name__
        raise OfficialCheckpointError(f"{source}: dlatent_avg.buff has shape {said}; the config gives "
                                      f"[{rows if rows is not None else 'rows'}, {config.latent_size}] (one row per "
                                      f"style input)")
    if not torch.isfinite(buff).all():
        raise OfficialCheckpointError(f"{source}: dlatent_avg.buff holds NaN or infinity")
    spread = float((buff.double() - buff[:1].double()).abs().max())
    if spread > 1e-6 * max(1.0, float(buff.double().abs().max())):
        raise OfficialCheckpointError(f"{source}: dlatent_avg.buff's rows differ (by up to {spread:.3g}), where the "
                                      f"official training keeps them equal; alae_fast keeps one w average")
    state["w_avg"] = buff[0].to(state["w_avg"].dtype).clone()
    return state


def is_official_checkpoint(state: Any) -> bool:
    """Whether a loaded checkpoint looks like the official format (a 'models' dict holding
    a 'generator' or 'generator_s' state dict)."""
    return (isinstance(state, dict) and isinstance(state.get("models"), dict)
            and any(k in state["models"] for k in ("generator", "generator_s")))


# The parameter dtypes a model may have: those the ops compute in (alae_fast.models.base.IMAGE_DTYPES).
_MODEL_DTYPES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32",
                 torch.float64: "float64"}
_DTYPES_SAID = "None or torch.float16, torch.bfloat16, torch.float32 or torch.float64"


def _check_dtype_device(dtype, device, op: str = "load_official") -> tuple[torch.dtype | None, torch.device]:
    """``(dtype, device)`` checked for ``op``: TypeError for a dtype that is no ``torch.dtype``
    (a string names the one it meant) or a device neither a string nor a ``torch.device``;
    ValueError for a dtype that is not floating, or a device this torch cannot use (the
    wording of :func:`~alae_fast.inference.loading.check_device`, which the CLI's --device and
    ``alae_fast.load`` use too, with ``op`` in front)."""
    from ..inference.loading import check_device  # the inference package imports this module

    if dtype is not None and not isinstance(dtype, torch.dtype):
        meant = f": use torch.{dtype}" if isinstance(dtype, str) and dtype in _MODEL_DTYPES.values() else ""
        raise TypeError(f"{op}: dtype must be {_DTYPES_SAID}; got {dtype!r} of type {type(dtype).__name__}{meant}")
    if dtype is not None and dtype not in _MODEL_DTYPES:
        raise ValueError(f"{op}: dtype must be {_DTYPES_SAID} (a floating dtype); got {dtype}")
    try:
        device = check_device(device, "device")
    except (TypeError, ValueError) as e:
        raise type(e)(f"{op}: {e}") from None
    return dtype, device


def load_official(path: str | os.PathLike, config: str | os.PathLike | ModelConfig | None = None,
                  ema: bool = True, *, dtype: torch.dtype | None = None,
                  device: str | torch.device = "cpu") -> torch.nn.Module:
    """An official ALAE checkpoint as a ready alae_fast model.

    Args:
        path: the official ``.pth`` (``Checkpointer.save`` format).
        config: None (default: infer the architecture from the tensors' shapes), the path of
            the official YAML config it was trained with, or an alae_fast ``ModelConfig``.
        ema: True (default) loads the ``*_s`` copies (the moving average the official demo
            and figures use); False the training weights.
        dtype: None (default: torch's default dtype) or the model's parameter dtype, a
            floating ``torch.dtype``: torch.float16, torch.bfloat16, torch.float32 or
            torch.float64. float64 keeps the official float32 weights exactly after the
            rescaling.
        device: where the model lives (default 'cpu'): a ``torch.device`` or a name torch
            accepts ('cpu', 'cuda', 'cuda:1', 'mps', 'xpu') of a device this torch can use now
            (:func:`alae_fast.inference.loading.check_device`).

    Returns: a ``StyleALAE`` or ``MLPALAE`` in eval mode without gradients, ``w_avg`` = the
    official ``dlatent_avg``; ``model.mapping(z)``, ``decode(ws, lod, blend, noise=...)``,
    ``encode(x, lod, blend)``, ``discriminator(w)`` as for any alae_fast model: images in
    [-1, 1]. The mnist_ref MLP's networks work in [0, 1] (``config.pixel_range``), which
    ``encode``/``decode`` map to and from; ``native=True`` takes and gives [0, 1] directly.

    The model's ``encode``, ``decode`` and ``generate`` check their input as any alae_fast
    model's do (``ALAEModel``'s docstring): NaN, infinity, |w| or |z| beyond 1e4, pixels
    beyond ±4 and a truncation cutoff outside [1, num_ws] are refused with a ValueError.

    Raises:
        TypeError, naming ``load_official`` and the argument: ``dtype`` neither None nor a
            ``torch.dtype`` (e.g. the string 'float64'), ``device`` neither a string nor a
            ``torch.device``, ``ema`` not a bool, ``config`` of another type.
        ValueError, naming ``load_official`` and the argument: ``dtype`` a torch.dtype that
            is not floating (torch.int64); ``device`` no device name, or one this torch was
            built without or cannot see (``cuda`` on a CPU-only torch).
        FileNotFoundError: ``path`` (or the YAML) does not exist.
        OfficialCheckpointError (a ValueError), one line starting with the file: not a
            checkpoint, truncated, not the official format, no ``_s`` copies with ema=True,
            a tensor missing or of a shape the config contradicts (first key, both shapes).
        ImportError: a YAML config given without PyYAML installed.
    """
    model, _ = load_official_with_config(path, config, ema, dtype=dtype, device=device)
    return model


def load_official_with_config(path, config=None, ema: bool = True, *, dtype=None, device="cpu"):
    """``load_official``, also returning the config used: ``(model, config)``."""
    _check_dtype_device(dtype, device)  # before the file is read: a typo is said at once
    return official_model_from_state(read_official_checkpoint(path), str(path), config, ema, dtype=dtype,
                                     device=device)


def official_model_from_state(state: Any, source: str, config=None, ema: bool = True, *, dtype=None, device="cpu"):
    """``(model, config)`` from an already read checkpoint ``state`` (``read_official_checkpoint``);
    ``source`` names the file in messages. Arguments and errors as ``load_official``."""
    dtype, device = _check_dtype_device(dtype, device)
    if not is_official_checkpoint(state):
        what = ("an alae_fast checkpoint (load it with alae_fast.inference.load_run)"
                if isinstance(state, dict) and str(state.get("format", "")).startswith("alae_fast")
                else "not an official ALAE checkpoint (no 'models' dict with a 'generator')")
        raise OfficialCheckpointError(f"{source}: {what}")
    models = state["models"]
    if not isinstance(ema, bool):
        raise TypeError(f"load_official: ema must be a bool; got {type(ema).__name__}")
    suffix = "_s" if ema else ""
    if ema and "generator_s" not in models:
        raise OfficialCheckpointError(f"{source}: no EMA copies (generator_s, discriminator_s, ...) in 'models'; "
                                      f"load with ema=False (--no-ema) to use the training weights")
    if not ema and "generator" not in models:
        raise OfficialCheckpointError(f"{source}: no training weights ('generator' ...) in 'models', only the EMA "
                                      f"copies; load with ema=True")
    if config is None:
        cfg = infer_official_config(models, suffix, source)
    elif isinstance(config, ModelConfig):
        cfg = config
    elif isinstance(config, (str, os.PathLike)):
        cfg = official_config_from_yaml(config)
    else:
        raise TypeError(f"load_official: config must be None, a YAML path or a ModelConfig; got {type(config).__name__}")
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the global RNG alone
        model = build_model(cfg)
    if dtype is not None:
        model = model.to(dtype)
    config_source = str(config) if isinstance(config, (str, os.PathLike)) else None
    model.load_state_dict(official_state_dict(models, model, ema, source, config_source), assign=True)
    return model.to(device).eval().requires_grad_(False), cfg
