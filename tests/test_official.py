"""Official ALAE checkpoints (podgorskiy/ALAE): loading, conversion, exact outputs, bad input.

Two oracles:
- tests/data/official-alae/: a small StyleALAE made BY THE OFFICIAL CODE (42bcf2e), with its
  outputs for fixed inputs and the exact noise it drew (see its README.md);
- ``Official*`` below: the official networks' forward passes written out from net.py /
  lreq.py, functionally, on official-format state dicts. They are used on random official
  checkpoints of OTHER architectures (grey images, another latent size and channel cap, the
  mnist_ref MLP), so that the importer is not shaped to the fixture. They were checked
  against the fixture too (``test_reference_reproduces_the_fixture``).
"""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from alae_fast.cli import main
from alae_fast.models import OfficialCheckpointError, StyleALAE, StyleALAEConfig, from_preset, load_official, \
    preset_config
from alae_fast.models.official import infer_official_config, official_config_from_yaml
from alae_fast.models.official_io import InertObject, read_official_checkpoint
from alae_fast.models.style_alae import _restd
from alae_fast.inference.loading import convert_official, load_run
from alae_fast.inference.sampling import sample_images

DATA = Path(__file__).parent / "data" / "official-alae"
PTH, YAML, IO = DATA / "alae-small.pth", DATA / "alae-small.yaml", DATA / "alae-small_io.pt"
TOL = {torch.float64: 1e-6, torch.float32: 1e-4}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def io():
    return torch.load(IO, weights_only=True)


# --- the fixture made by the official code ---------------------------------------------------

# float64 on the kernels and on the references, float32 on the kernels by default; float32 on
# the references is the slow suite's (-m slow): the default suite must stay fast on 2 cores.
COMBOS = [(torch.float64, "auto"), (torch.float64, "ref"), (torch.float32, "auto"),
          pytest.param((torch.float32, "ref"), marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=COMBOS, ids=["f64-auto", "f64-ref", "f32-auto", "f32-ref"])
def combo(request):
    return request.param


@pytest.fixture(scope="module")
def dtype(combo):
    return combo[0]


@pytest.fixture(scope="module")
def official_model(combo):
    dtype, impl = combo
    return load_official(PTH, dtype=dtype).set_impl(impl)


def test_mapping_and_discriminator(official_model, io, dtype):
    m = official_model
    assert rel(m.mapping(io["z"].to(dtype)), io["w"]) <= TOL[dtype]
    assert rel(m.discriminator(io["w"].to(dtype)), io["d_of_w"]) <= TOL[dtype]


@pytest.mark.parametrize("case", range(5))
def test_generator_encoder_discriminator_at_each_level(official_model, io, dtype, case):
    c = io["cases"][case]
    m = official_model
    noise = [n.to(dtype) for n in c["noise"]]
    assert noise[0].shape[0] == 1  # the official first noise image is shared by the batch
    image = m.decode(c["styles"].to(dtype), c["lod"], c["blend"], noise=noise)
    assert rel(image, c["image"]) <= TOL[dtype], (c["lod"], c["blend"])
    w = m.encode(c["encoder_input"].to(dtype), c["lod"], c["blend"])
    assert rel(w, c["encoded_w"]) <= TOL[dtype], (c["lod"], c["blend"])
    assert rel(m.discriminator(w), c["d_of_encoded"]) <= TOL[dtype]


def test_truncated_generation(official_model, io, dtype):
    # The official code computed this one in float32, and its rounding bounds the agreement:
    # measured 3.4e-6 in float64 and 3.6e-6 in float32 (the README's figure).
    t = io["truncated"]
    m = official_model
    assert torch.equal(m.w_avg.float(), t["dlatent_avg"].float())
    assert (m.config.truncation_psi, m.config.truncation_cutoff) == (t["psi"], t["cutoff"]) == (0.7, 8)
    image = m.generate(t["z"].to(dtype), 5, 1.0, truncation_psi=t["psi"], truncation_cutoff=t["cutoff"],
                       noise=[n.to(dtype) for n in t["noise"]])
    assert rel(image, t["image"]) <= 1e-5


def test_training_weights_differ_from_ema_and_load_too(io):
    ema, train = load_official(PTH, dtype=torch.float64), load_official(PTH, ema=False, dtype=torch.float64)
    assert not torch.equal(ema.mapping(io["z"]), train.mapping(io["z"]))
    assert torch.equal(ema.w_avg, train.w_avg)  # dlatent_avg has no _s copy


_SCHEDULE_FIELDS = ("lod_kimg", "lod_batch", "lod_lr", "train_kimg", "flip", "fade_fraction")


def test_yaml_and_inferred_configs_agree():
    pytest.importorskip("yaml")
    from_yaml, inferred = official_config_from_yaml(YAML), infer_official_config(read_official_checkpoint(PTH)["models"])
    assert from_yaml.replace(**{f: getattr(inferred, f) for f in _SCHEDULE_FIELDS}) == inferred
    assert (from_yaml.latent_size, from_yaml.layer_count, from_yaml.start_features, from_yaml.max_features,
            from_yaml.mapping_layers) == (32, 6, 4, 32, 3)
    # the fixture's YAML names no epochs, 8-GPU batches, data set size or flips: defaults.py's
    assert (from_yaml.lod_kimg, from_yaml.lod_batch, from_yaml.lod_lr, from_yaml.train_kimg, from_yaml.flip) == \
        ((15 * 70.0,), (512, 256, 128, 64, 32, 32), (0.0015,), 110 * 70.0, True)


# The values of the published configs (podgorskiy/ALAE configs/*.yaml at 42bcf2e) that make
# the architecture and the schedule ((SIZE, PART_COUNT) first: an official epoch is
# SIZE // PART_COUNT x PART_COUNT images); each must give its paper preset exactly.
_PUBLISHED = {
    "ffhq-1024": ((60000, 16), 16, 300, 9, 16, 512, 512,
                  [512, 256, 128, 64, 32, 32, 32, 32, 32],
                  [0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003, 0.003]),
    "celeba-hq-256": ((29000, 16), 30, 280, 7, 64, 512, 512,
                      [512, 256, 128, 64, 32, 32, 32, 32, 24],
                      [0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.003, 0.003]),
    "bedroom-256": ((758260, 4), 2, 112, 7, 32, 512, 512,
                    [512, 256, 128, 64, 32, 32, 32, 32, 32],
                    [0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003, 0.003]),
    "celeba-128": ((182637, 16), 6, 80, 6, 64, 256, 256,
                   [512, 256, 128, 64, 32, 32, 32, 32, 32],
                   [0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.002, 0.003, 0.003]),
}


def _published_yaml(size, epochs_per_lod, train_epochs, layers, start, cap, latent, batch, rates, flip=None):
    flip_line = "" if flip is None else f"  FLIP_IMAGES: {flip}\n"
    size, parts = size if isinstance(size, tuple) else (size, 1)
    return (f"DATASET:\n  SIZE: {size}\n  PART_COUNT: {parts}\n{flip_line}MODEL:\n  LATENT_SPACE_SIZE: {latent}\n  LAYER_COUNT: {layers}\n"
            f"  MAX_CHANNEL_COUNT: {cap}\n  START_CHANNEL_COUNT: {start}\n  DLATENT_AVG_BETA: 0.995\n"
            f"  MAPPING_LAYERS: 8\nTRAIN:\n  EPOCHS_PER_LOD: {epochs_per_lod}\n  TRAIN_EPOCHS: {train_epochs}\n"
            f"  LOD_2_BATCH_8GPU: {batch}\n  LEARNING_RATES: {rates}\n")


@pytest.mark.parametrize("preset", sorted(_PUBLISHED))
def test_published_yaml_is_its_paper_preset(tmp_path, preset):
    pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text(_published_yaml(*_PUBLISHED[preset]))
    assert official_config_from_yaml(tmp_path / "c.yaml") == preset_config(preset)


def test_yaml_schedule_that_differs_from_the_preset_wins(tmp_path):
    pytest.importorskip("yaml")
    size, _, _, layers, start, cap, latent, batch, rates = _PUBLISHED["celeba-128"]
    (tmp_path / "c.yaml").write_text(_published_yaml(size, 3, 40, layers, start, cap, latent,
                                                     [256, 128, 64, 32, 16, 8], [0.001, 0.002], flip=False))
    c = official_config_from_yaml(tmp_path / "c.yaml")
    assert (c.latent_size, c.layer_count, c.start_features, c.max_features) == (256, 6, 64, 256)
    epoch = size[0] // size[1] * size[1]  # 182624 of 182637 in 16 parts: the official loader's length
    assert epoch == 182624
    assert c.lod_kimg == (3 * epoch / 1000,) and c.train_kimg == 40 * epoch / 1000
    assert c.lod_batch == (256, 128, 64, 32, 16, 8) and c.lod_lr == (0.001, 0.002) and c.flip is False
    assert c.replace(**{f: getattr(preset_config("celeba-128"), f) for f in _SCHEDULE_FIELDS}) == \
        preset_config("celeba-128")  # only the schedule differs
    assert c.fade_fraction == 1 / 3  # EPOCHS_PER_LOD 3: the official code fades over 3 // 2 = 1 epoch
    (tmp_path / "bad.yaml").write_text("TRAIN: [1, 2]\n")
    with pytest.raises(OfficialCheckpointError, match="bad.yaml: TRAIN must be a mapping"):
        official_config_from_yaml(tmp_path / "bad.yaml")


def test_yaml_mlp_refusal_names_the_official_default_of_a_key_not_given(tmp_path):
    # a user's trial: MODEL.GENERATOR GeneratorFC alone was refused as "MAPPING_TO_LATENT None",
    # where defaults.py's value, which the official code would use, is MappingToLatent
    pytest.importorskip("yaml")
    (tmp_path / "fc.yaml").write_text("MODEL:\n  GENERATOR: GeneratorFC\n")
    with pytest.raises(OfficialCheckpointError) as e:
        official_config_from_yaml(tmp_path / "fc.yaml")
    assert str(e.value).endswith("got ENCODER 'EncoderDefault', MAPPING_TO_LATENT 'MappingToLatent', "
                                 "MAPPING_FROM_LATENT 'MappingFromLatent'"), e.value
    (tmp_path / "mlp.yaml").write_text("MODEL:\n  GENERATOR: GeneratorFC\n  ENCODER: EncoderFC\n"
                                       "  MAPPING_TO_LATENT: MappingToLatentNoStyle\n"
                                       "  LATENT_SPACE_SIZE: 50\n  CHANNELS: 1\n")
    assert official_config_from_yaml(tmp_path / "mlp.yaml") == preset_config("mnist-ref")


def _edited_yaml(tmp_path, preset, section, key, value):
    import yaml

    data = yaml.safe_load(_published_yaml(*_PUBLISHED[preset]))
    data.setdefault(section, {})[key] = value
    path = tmp_path / f"{key.lower()}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_style_mixing_prob_is_the_configs_mixing_prob(tmp_path):
    # the official trainer mixes with MODEL.STYLE_MIXING_PROB (train_alae.py); defaults.py: 0.9
    pytest.importorskip("yaml")
    assert official_config_from_yaml(_edited_yaml(tmp_path, "celeba-128", "MODEL", "STYLE_MIXING_PROB", 0.0)) == \
        preset_config("celeba-128").replace(mixing_prob=0.0)
    assert official_config_from_yaml(_edited_yaml(tmp_path, "celeba-128", "MODEL", "STYLE_MIXING_PROB", 0.9)) == \
        preset_config("celeba-128")
    with pytest.raises(OfficialCheckpointError, match="mixing_prob"):
        official_config_from_yaml(_edited_yaml(tmp_path, "celeba-128", "MODEL", "STYLE_MIXING_PROB", 1.5))


@pytest.mark.parametrize("section,key,value", [
    ("MODEL", "Z_REGRESSION", True), ("MODEL", "MAPPING_D", "MappingToLatent"), ("MODEL", "MAPPING_F", "Other"),
    ("TRAIN", "ADAM_BETA_0", 0.5), ("TRAIN", "ADAM_BETA_1", 0.999), ("TRAIN", "LEARNING_DECAY_STEPS", [5, 10])])
def test_yaml_settings_alae_fast_does_not_implement_are_refused_by_name(tmp_path, section, key, value):
    # read past, each would give a config that computes or trains otherwise than the official run
    pytest.importorskip("yaml")
    path = _edited_yaml(tmp_path, "ffhq-1024", section, key, value)
    with pytest.raises(OfficialCheckpointError, match=rf"{section}\.{key} {re.escape(repr(value))} is not implemented"):
        official_config_from_yaml(path)
    # the official default given explicitly is the default
    default = {"Z_REGRESSION": False, "MAPPING_D": "MappingD", "MAPPING_F": "MappingF", "ADAM_BETA_0": 0.0,
               "ADAM_BETA_1": 0.99, "LEARNING_DECAY_STEPS": []}[key]
    assert official_config_from_yaml(_edited_yaml(tmp_path, "ffhq-1024", section, key, default)) == \
        preset_config("ffhq-1024")


def test_yaml_epochs_per_lod_0_is_refused_saying_what_it_means(tmp_path):
    pytest.importorskip("yaml")
    with pytest.raises(OfficialCheckpointError, match=r"TRAIN.EPOCHS_PER_LOD 0 \(the official driver then trains "
                                                      r"at the last level"):
        official_config_from_yaml(_edited_yaml(tmp_path, "ffhq-1024", "TRAIN", "EPOCHS_PER_LOD", 0))


# podgorskiy/ALAE configs/ffhq.yaml, whole (Apache-2.0): every key of it is an official one
_FFHQ_YAML = """NAME: ffhq
DATASET:
  PART_COUNT: 16
  SIZE: 60000
  FFHQ_SOURCE: /data/datasets/ffhq-dataset/tfrecords/ffhq/ffhq-r%02d.tfrecords
  PATH: /data/datasets/ffhq-dataset_new/tfrecords/ffhq/splitted/ffhq-r%02d.tfrecords.%03d
  PART_COUNT_TEST: 2
  PATH_TEST: /data/datasets/ffhq-dataset_new/tfrecords/ffhq-test/splitted/ffhq-r%02d.tfrecords.%03d
  SAMPLES_PATH: dataset_samples/faces/realign1024x1024
  STYLE_MIX_PATH: style_mixing/test_images/set_ffhq
  MAX_RESOLUTION_LEVEL: 10
MODEL:
  LATENT_SPACE_SIZE: 512
  LAYER_COUNT: 9
  MAX_CHANNEL_COUNT: 512
  START_CHANNEL_COUNT: 16
  DLATENT_AVG_BETA: 0.995
  MAPPING_LAYERS: 8
OUTPUT_DIR: training_artifacts/ffhq
TRAIN:
  BASE_LEARNING_RATE: 0.002
  EPOCHS_PER_LOD: 16
  LEARNING_DECAY_RATE: 0.1
  LEARNING_DECAY_STEPS: []
  TRAIN_EPOCHS: 300
  LOD_2_BATCH_8GPU: [512, 256, 128,   64,   32,    32,    32,       32,        32]
  LOD_2_BATCH_4GPU: [512, 256, 128,   64,   32,    32,    32,       32,        16]
  LOD_2_BATCH_2GPU: [512, 256, 128,   64,   32,    32,    16]
  LOD_2_BATCH_1GPU: [512, 256, 128,   64,   32,    16]
  LEARNING_RATES: [0.0015,  0.0015,   0.0015,   0.0015,  0.0015,   0.0015,     0.002,     0.003,    0.003]
"""


def test_yaml_with_a_key_the_official_code_does_not_define_is_refused(tmp_path):
    # a misspelt EPOCHS_PER_LOD was ignored: the schedule silently took defaults.py's 15 epochs
    pytest.importorskip("yaml")
    (tmp_path / "ffhq.yaml").write_text(_FFHQ_YAML)
    assert official_config_from_yaml(tmp_path / "ffhq.yaml") == preset_config("ffhq-1024")
    (tmp_path / "typo.yaml").write_text(_FFHQ_YAML.replace("EPOCHS_PER_LOD", "EPOCH_PER_LOD") + "BOGUS: 1\n")
    with pytest.raises(OfficialCheckpointError, match=r"typo.yaml: unknown keys TRAIN.EPOCH_PER_LOD \(did you mean "
                                                      r"TRAIN.EPOCHS_PER_LOD\?\), BOGUS: the official defaults.py "
                                                      r"defines no such key"):
        official_config_from_yaml(tmp_path / "typo.yaml")
    (tmp_path / "model.yaml").write_text("MODEL:\n  LAYER_COUNT: 3\n  MAPPING_LAYER: 4\n")
    with pytest.raises(OfficialCheckpointError, match=r"unknown key MODEL.MAPPING_LAYER \(did you mean "
                                                      r"MODEL.MAPPING_LAYERS\?\)"):
        official_config_from_yaml(tmp_path / "model.yaml")


def test_yaml_without_epochs_per_lod_fades_as_the_official_default(tmp_path):
    pytest.importorskip("yaml")
    from alae_fast.training.schedule import schedule_from_config

    # defaults.py: EPOCHS_PER_LOD 15, an odd count: the official fade lasts 7 epochs of 15
    (tmp_path / "c.yaml").write_text("DATASET:\n  SIZE: 1000\nMODEL:\n  LAYER_COUNT: 3\n  LATENT_SPACE_SIZE: 32\n"
                                     "  MAX_CHANNEL_COUNT: 32\n  START_CHANNEL_COUNT: 16\n")
    c = official_config_from_yaml(tmp_path / "c.yaml")
    assert c.lod_kimg == (15.0,) and c.fade_fraction == 7 / 15
    sched = schedule_from_config(c)
    assert sched.fade_fraction == 7 / 15 and sched.kimg_to_reach(1) == pytest.approx(22.0)
    assert sched.phase(22_000).blend == 1.0 and sched.phase(21_999).in_transition
    with pytest.raises(ValueError, match=r"fade_fraction must be a finite number in \[0.0, 1.0\]"):
        c.replace(fade_fraction=1.5)


def test_loaded_model_is_ready():
    m = load_official(PTH)
    assert isinstance(m, StyleALAE) and not m.training
    assert not any(p.requires_grad for p in m.parameters())


def test_the_tracker_becomes_an_inert_placeholder():
    state = read_official_checkpoint(PTH)
    loss = state["auxiliary"]["tracker"]["tracks"]["loss_d"]
    assert isinstance(loss, InertObject) and type(loss).pickled_as == "tracker.RunningMeanTorch"


# --- an independent functional reference of the official networks ----------------------------

def _lrelu(x, s=0.2):
    return F.leaky_relu(x, s)


def _blur(x):
    f = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = (f[:, None] * f[None, :] / 16).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, k, groups=x.shape[1], padding=1)


def _shift4(w):
    w = F.pad(w, (1, 1, 1, 1))
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def _style_mod(x, s):
    s = s.view(s.shape[0], 2, x.shape[1], 1, 1)
    return s[:, 1] + x * (s[:, 0] + 1)


def official_F(sd, z):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for k in range(len({key.split(".")[1] for key in sd})):
        x = _lrelu(F.linear(x, sd[f"map_blocks.{k}.fc.weight"], sd[f"map_blocks.{k}.fc.bias"]))
    return x


def official_D(sd, w, row):
    for k in range(len({key.split(".")[1] for key in sd})):
        w = F.linear(w, sd[f"map_blocks.{k}.weight"], sd[f"map_blocks.{k}.bias"])
    return w[:, row]


def official_G(sd, styles, lod, blend, noise, L):
    noise = iter(noise)
    x = sd["const"]

    def block(i, x):
        p = f"decode_block.{i}."
        if i > 0:
            res = 4 * 2 ** i
            if res >= 128:
                x = F.conv_transpose2d(x, _shift4(sd[p + "conv_1.weight"]), stride=2, padding=1)
            else:
                x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), sd[p + "conv_1.weight"], padding=1)
            x = _blur(x)
        for s in (1, 2):
            if s == 2:
                x = F.conv2d(x, sd[p + "conv_2.weight"], padding=1)
            x = x + sd[p + f"noise_weight_{s}"] * next(noise) + sd[p + f"bias_{s}"]
            x = F.instance_norm(_lrelu(x), eps=1e-8)
            x = _style_mod(x, F.linear(styles[:, 2 * i + s - 1], sd[p + f"style_{s}.weight"], sd[p + f"style_{s}.bias"]))
        return x

    def to_rgb(i, x):
        return F.conv2d(x, sd[f"to_rgb.{i}.to_rgb.weight"], sd[f"to_rgb.{i}.to_rgb.bias"])

    for i in range(lod):
        x = block(i, x)
    prev = to_rgb(lod - 1, x) if lod > 0 and blend < 1 else None
    x = to_rgb(lod, block(lod, x))
    if prev is not None:
        x = torch.lerp(F.interpolate(prev, scale_factor=2, mode="nearest"), x, blend)
    return x


def official_E(sd, x, lod, blend, L, latent):
    def from_rgb(j, x):
        return _lrelu(_lrelu(F.conv2d(x, sd[f"from_rgb.{j}.from_rgb.weight"], sd[f"from_rgb.{j}.from_rgb.bias"])))

    def stats(x):
        m = x.mean((2, 3), keepdim=True)
        return torch.cat([m, torch.sqrt(((x - m) ** 2).mean((2, 3), keepdim=True))], 1).flatten(1)

    def block(j, x):
        p, res = f"encode_block.{j}.", x.shape[-1]
        x = _lrelu(F.conv2d(x, sd[p + "conv_1.weight"], padding=1) + sd[p + "bias_1"])
        s1 = stats(x)
        x = _blur(F.instance_norm(x))
        if res >= 128:
            x = F.conv2d(x, _shift4(sd[p + "conv_2.weight"]) * 0.25, stride=2, padding=1)
        else:
            x = F.avg_pool2d(F.conv2d(x, sd[p + "conv_2.weight"], padding=1), 2)
        x = _lrelu(x + sd[p + "bias_2"])
        s2 = stats(x)
        w = F.linear(s1, sd[p + "style_1.weight"], sd[p + "style_1.bias"])
        return F.instance_norm(x), w, F.linear(s2, sd[p + "style_2.weight"], sd[p + "style_2.bias"])

    j = L - lod - 1
    w = torch.zeros(x.shape[0], latent, dtype=x.dtype)
    h, s1, s2 = block(j, from_rgb(j, x))
    if blend < 1:
        w += s1 * blend + s2 * blend
        h = torch.lerp(from_rgb(j + 1, F.avg_pool2d(x, 2)), h, blend)
    else:
        w += s1 + s2
    for k in range(j + 1, L):
        h, s1, s2 = block(k, h)
        w += s1 + s2
    return w


def random_official_style(c: StyleALAEConfig, seed=0, ema=True) -> dict:
    """An official-format checkpoint of architecture ``c`` with random EFFECTIVE weights,
    written from the official module structure (net.py), not from alae_fast's key map."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    def lin(o, i, gain=math.sqrt(2)):
        return {"weight": t(o, i, scale=gain / math.sqrt(i)), "bias": t(o, scale=0.1)}

    L, lat, ch, f = c.layer_count, c.latent_size, c.channels, c.features_at
    G = {"const": 1 + t(1, f(0), 4, 4, scale=0.1)}
    for i in range(L):
        p = f"decode_block.{i}."
        if i > 0:
            shape = (f(i - 1), f(i), 3, 3) if 4 * 2 ** i >= 128 else (f(i), f(i - 1), 3, 3)
            G[p + "conv_1.weight"] = t(*shape, scale=math.sqrt(2 / (9 * f(i - 1))))
        G[p + "blur.weight"] = torch.ones(f(i), 1, 3, 3)
        G[p + "conv_2.weight"] = t(f(i), f(i), 3, 3, scale=math.sqrt(2 / (9 * f(i))))
        for s in (1, 2):
            G[p + f"noise_weight_{s}"] = t(1, f(i), 1, 1, scale=0.3)
            G[p + f"bias_{s}"] = t(1, f(i), 1, 1, scale=0.3)
            G.update({p + f"style_{s}.{k}": v for k, v in lin(2 * f(i), lat, gain=1.0).items()})
        G.update({f"to_rgb.{i}.to_rgb.{k}": v.view(v.shape + (1, 1)) if k == "weight" else v
                  for k, v in lin(ch, f(i), gain=0.5).items()})
    E = {}
    for j in range(L):
        i = L - 1 - j
        n, o, p = f(i), f(i - 1), f"encode_block.{j}."
        E.update({f"from_rgb.{j}.from_rgb.{k}": v.view(v.shape + (1, 1)) if k == "weight" else v
                  for k, v in lin(n, ch).items()})
        E[p + "conv_1.weight"] = t(n, n, 3, 3, scale=math.sqrt(2 / (9 * n)))
        E[p + "bias_1"] = t(1, n, 1, 1, scale=0.1)
        E[p + "blur.weight"] = torch.ones(n, 1, 3, 3)
        E[p + "conv_2.weight"] = t(o, n, 3, 3, scale=math.sqrt(2 / (9 * n)))
        E[p + "bias_2"] = t(1, o, 1, 1, scale=0.1)
        E.update({p + f"style_1.{k}": v for k, v in lin(lat, 2 * n).items()})
        E.update({p + f"style_2.{k}": v for k, v in lin(lat, 2 * o).items()})
    Fm = {f"map_blocks.{k}.fc.{n}": v for k in range(c.mapping_layers) for n, v in lin(lat, lat).items()}
    D = {f"map_blocks.{k}.{n}": v for k in range(3) for n, v in lin(2 * lat if k == 2 else lat, lat).items()}
    avg = {"buff": t(1, lat).repeat(2 * L, 1)}
    sfx = "_s" if ema else ""
    models = {"discriminator" + sfx: E, "generator" + sfx: G, "mapping_fl" + sfx: Fm, "mapping_tl" + sfx: D,
              "dlatent_avg": avg}
    return {"models": models, "auxiliary": {"scheduler": {"last_epoch": 3}}}


# A celeba-128-like architecture, small: grey, latent 24, a channel cap that binds, 2 mapping layers.
OTHER = StyleALAEConfig(latent_size=24, mapping_layers=2, layer_count=6, channels=1, start_features=2,
                        max_features=16, from_rgb_lrelus=2, encoder_norm_eps=1e-5, encoder_std_eps=0.0,
                        first_noise_shared=True, truncation_psi=0.7, truncation_cutoff=8)
OTHER_YAML = """\
NAME: other
MODEL:
  LATENT_SPACE_SIZE: 24
  LAYER_COUNT: 6
  MAX_CHANNEL_COUNT: 16
  START_CHANNEL_COUNT: 2
  MAPPING_LAYERS: 2
  CHANNELS: 1
TRAIN:
  LEARNING_RATES: [0.002]
"""


def _as_f64(sd):
    return {k: v.double() for k, v in sd.items()}


def test_reference_reproduces_the_fixture(io):
    # The functional reference above IS the official forward: check it on the fixture first.
    models = read_official_checkpoint(PTH)["models"]
    G, E = _as_f64(models["generator_s"]), _as_f64(models["discriminator_s"])
    Fm, D = _as_f64(models["mapping_fl_s"]), _as_f64(models["mapping_tl_s"])
    assert rel(official_F(Fm, io["z"]), io["w"]) < 1e-12
    assert rel(official_D(D, io["w"], 32), io["d_of_w"]) < 1e-12
    for c in io["cases"][1:2]:  # the fade-in at 128 px: fused resampling, both levels' paths
        assert rel(official_G(G, c["styles"], c["lod"], c["blend"], c["noise"], 6), c["image"]) < 1e-12
        assert rel(official_E(E, c["encoder_input"], c["lod"], c["blend"], 6, 32), c["encoded_w"]) < 1e-12


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("other")
    torch.save(random_official_style(OTHER, seed=3), d / "other.pth")
    (d / "other.yaml").write_text(OTHER_YAML)
    return d


def test_another_architecture_from_its_yaml(other_checkpoint):
    pytest.importorskip("yaml")
    from_yaml = load_official(other_checkpoint / "other.pth", config=other_checkpoint / "other.yaml")
    inferred = load_official(other_checkpoint / "other.pth")
    assert from_yaml.config.replace(**{f: getattr(inferred.config, f) for f in _SCHEDULE_FIELDS}) == inferred.config
    assert from_yaml.config.lod_lr == (0.002,)  # the YAML's TRAIN.LEARNING_RATES
    for k, v in inferred.state_dict().items():
        assert torch.equal(from_yaml.state_dict()[k], v), k


def test_another_architecture_matches_the_reference(other_checkpoint):
    m = load_official(other_checkpoint / "other.pth", dtype=torch.float64)
    c = m.config
    assert (c.latent_size, c.mapping_layers, c.layer_count, c.channels, c.start_features, c.max_features) == \
        (24, 2, 6, 1, 2, 16)
    assert (c.from_rgb_lrelus, c.encoder_norm_eps, c.encoder_std_eps, c.first_noise_shared) == (2, 1e-5, 0.0, True)
    models = read_official_checkpoint(other_checkpoint / "other.pth")["models"]
    G, E = _as_f64(models["generator_s"]), _as_f64(models["discriminator_s"])
    z = torch.randn(2, 24, dtype=torch.float64)
    w = official_F(_as_f64(models["mapping_fl_s"]), z)
    assert rel(m.mapping(z), w) <= 1e-6
    assert rel(m.discriminator(w), official_D(_as_f64(models["mapping_tl_s"]), w, 24)) <= 1e-6
    x = torch.rand(2, 1, 128, 128, dtype=torch.float64) * 2 - 1
    for lod, blend in [(5, 0.3), (3, 1.0), (0, 1.0)]:  # the fused 128 px fade-in, a lower level, 4x4
        styles = torch.randn(2, 12, 24, dtype=torch.float64)
        r = 4 * 2 ** lod
        noise = [torch.randn(1 if k == 0 else 2, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2), dtype=torch.float64)
                 for k in range(2 * lod + 2)]
        assert rel(m.decode(styles, lod, blend, noise=noise), official_G(G, styles, lod, blend, noise, 6)) <= 1e-6
        xi = F.avg_pool2d(x, 128 // r) if r < 128 else x
        assert rel(m.encode(xi, lod, blend), official_E(E, xi, lod, blend, 6, 24)) <= 1e-6
    assert torch.equal(m.w_avg, models["dlatent_avg"]["buff"][0].double())


def random_official_mlp(seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def lin(o, i):
        return {"weight": torch.randn(o, i, generator=g) * math.sqrt(2 / i), "bias": torch.randn(o, generator=g) * 0.1}

    bn = {"bn_2.running_mean": torch.zeros(1024), "bn_2.running_var": torch.ones(1024),
          "bn_2.num_batches_tracked": torch.tensor(0)}
    E = {f"fc_{k + 1}.{n}": v for k, (o, i) in enumerate([(1024, 784), (1024, 1024), (50, 1024)])
         for n, v in lin(o, i).items()} | bn
    G = {f"fc_{k + 1}.{n}": v for k, (o, i) in enumerate([(1024, 50), (1024, 1024), (784, 1024)])
         for n, v in lin(o, i).items()} | bn
    D = {f"map_blocks.{k}.{n}": v for k in range(3) for n, v in lin(50, 50).items()}
    Fm = {f"map_blocks.{k}.fc.{n}": v for k in range(6) for n, v in lin(50, 50).items()}  # unused by mnist_ref
    return {"models": {"discriminator_s": E, "generator_s": G, "mapping_tl_s": D, "mapping_fl_s": Fm,
                       "dlatent_avg": {"buff": torch.randn(8, 50, generator=g).mean(0).repeat(8, 1)}},
            "auxiliary": {}}


def test_mnist_ref_mlp(tmp_path):
    torch.save(random_official_mlp(1), tmp_path / "mnist.pth")
    m = load_official(tmp_path / "mnist.pth", dtype=torch.float64)
    assert m.config == preset_config("mnist-ref")
    sd = {k: v.double() for k, v in read_official_checkpoint(tmp_path / "mnist.pth")["models"]["generator_s"].items()}
    se = {k: v.double() for k, v in read_official_checkpoint(tmp_path / "mnist.pth")["models"]["discriminator_s"].items()}
    sdd = _as_f64(read_official_checkpoint(tmp_path / "mnist.pth")["models"]["mapping_tl_s"])
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)  # pixels in [0, 1]
    h = _lrelu(F.linear(x.view(4, -1), se["fc_1.weight"], se["fc_1.bias"]))
    h = _lrelu(F.linear(h, se["fc_2.weight"], se["fc_2.bias"]))
    w_ref = F.leaky_relu(F.linear(h, se["fc_3.weight"], se["fc_3.bias"]))  # slope 0.01
    assert m.config.pixel_range == (0.0, 1.0)
    assert rel(m.encode(x, native=True), w_ref) <= 1e-6
    assert rel(m.encode(x * 2 - 1), w_ref) <= 1e-6  # the pipeline's [-1, 1], mapped to [0, 1]
    z = torch.randn(4, 50, dtype=torch.float64)
    assert torch.equal(m.mapping(z), z)  # F is the identity
    y = F.leaky_relu(F.linear(z, sd["fc_1.weight"], sd["fc_1.bias"]))
    y = F.leaky_relu(F.linear(y, sd["fc_2.weight"], sd["fc_2.bias"]))
    y = F.linear(y, sd["fc_3.weight"], sd["fc_3.bias"]).view(4, 1, 28, 28)
    assert rel(m.decode(z, native=True), y) <= 1e-6
    assert rel(m.decode(z), y * 2 - 1) <= 1e-6  # returned in [-1, 1]
    assert rel(m.discriminator(w_ref), official_D(sdd, w_ref, 0)) <= 1e-6


def test_convert_round_trip(tmp_path, io):
    out = convert_official(PTH, tmp_path / "converted.pt")
    run, direct = load_run(out), load_official(PTH)
    assert run.config == direct.config and run.phase.lod == 5 and run.phase.blend == 1.0
    for k, v in direct.state_dict().items():
        assert torch.equal(run.model.state_dict()[k], v), k
    official_run = load_run(PTH)
    assert official_run.setup == "official" and official_run.phase.lod == 5
    # the official code does not record how long it trained: no invented kimg (was "5760 kimg")
    assert run.kimg is None and official_run.kimg is None
    assert "kimg not recorded" in repr(official_run) and "kimg not recorded" in repr(run)
    z = io["z"].float()
    assert torch.equal(run.model.generate(z, noise="const"), official_run.model.generate(z, noise="const"))


def test_cli_commands_take_official_and_converted_files(tmp_path, capsys, io):
    from PIL import Image

    images = []
    for k in range(2):
        arr = ((io["images"][k].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        images.append(tmp_path / f"face{k}.png")
        Image.fromarray(arr).save(images[-1])
    assert main(["convert", str(PTH), "--out", str(tmp_path / "c.pt")]) == 0
    official, converted = str(PTH), str(tmp_path / "c.pt")
    assert main(["generate", "--ckpt", official, "--n", "2", "--noise-mode", "batch",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert main(["reconstruct", "--ckpt", official, *map(str, images), "--out", str(tmp_path / "r.png")]) == 0
    assert main(["interpolate", "--ckpt", converted, *map(str, images), "--steps", "3",
                 "--out", str(tmp_path / "i.png")]) == 0
    assert main(["style-mix", "--ckpt", converted, "--rows", "1", "--cols", "2", "--noise-mode", "const",
                 "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "psi 0.7" in out
    assert all((tmp_path / f).is_file() for f in ("g.png", "r.png", "i.png", "s.png"))


def test_sample_images_defaults_to_the_config_truncation(io):
    run = load_run(PTH)
    a = sample_images(run, 2, seed=1, noise="const")
    b = sample_images(run, 2, psi=0.7, cutoff=8, seed=1, noise="const")
    c = sample_images(run, 2, psi=1.0, seed=1, noise="const")
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- noise modes --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    m = StyleALAE(OTHER.replace(layer_count=3)).eval()
    with torch.no_grad():
        for blk in m.generator.blocks:
            for s in (blk.style_1, blk.style_2):
                s.noise_weight.normal_()
    return m


def test_noise_modes(small):
    w = torch.randn(1, 24).repeat(3, 1)
    with torch.no_grad():
        rnd, bat = small.decode(w, noise="random"), small.decode(w, noise="batch")
        const1 = small.decode(w, noise="const")
    assert not torch.allclose(rnd[0], rnd[1])
    assert torch.equal(bat[0], bat[1]) and torch.equal(bat[1], bat[2])
    assert torch.equal(const1[0], const1[2]) and torch.equal(const1, small.decode(w, noise="const"))
    other = StyleALAE(small.config)
    other.load_state_dict(small.state_dict())
    assert torch.equal(other.eval().decode(w, noise="const"), const1)  # the same images in every copy
    assert torch.equal(small.decode(w, noise="zero"), small.decode(w, noise="none"))
    assert not torch.equal(small.decode(w, noise="zero"), const1)
    explicit = [torch.zeros(1, 1, 4 * 2 ** (k // 2), 4 * 2 ** (k // 2)) for k in range(6)]
    assert torch.equal(small.decode(w, noise=explicit), small.decode(w, noise="zero"))
    assert torch.equal(small.decode(w, noise=[None] * 6), small.decode(w, noise="zero"))


def test_random_noise_shares_the_first_image_when_configured(small):
    g = small.generator
    first = g.noise_inputs("random", 5, 2, torch.float32, "cpu")
    assert first[0].shape == (1, 1, 4, 4) and first[1].shape == (5, 1, 4, 4)
    g.first_noise_shared = False
    try:
        assert g.noise_inputs("random", 5, 2, torch.float32, "cpu")[0].shape == (5, 1, 4, 4)
    finally:
        g.first_noise_shared = True


@pytest.mark.parametrize("noise, message", [
    ("gaussian", "noise must be one of"),
    ([torch.zeros(1, 1, 4, 4)], "between 6"),
    ([torch.zeros(1, 1, 4, 4)] * 6, "noise\\[2\\] must have shape"),
    ([torch.zeros(2, 1, 4, 4)] * 6, "noise\\[0\\] must have shape"),
    (["x"] * 6, "noise\\[0\\] must be a tensor"),
])
def test_bad_noise(small, noise, message):
    with pytest.raises((ValueError, TypeError), match=message):
        small.decode(torch.randn(3, 24), noise=noise)


# --- the encoder's std without eps -------------------------------------------------------------

def test_restd_is_the_std_without_eps():
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64) * torch.tensor([1e-4, 1e-2, 1.0, 30.0], dtype=torch.float64).view(1, 4, 1, 1)
    from alae_fast.ops.instance_norm_stats import instance_norm_stats
    _, _, std = instance_norm_stats(x, 1e-5)
    expect = x.var((2, 3), unbiased=False).sqrt()
    assert rel(_restd(std, 1e-5, 0.0), expect) < 1e-12
    assert rel(_restd(std, 1e-5, 1e-3), (x.var((2, 3), unbiased=False) + 1e-3).sqrt()) < 1e-12


def test_restd_in_float32_keeps_the_documented_accuracy():
    # the statistic is computed from std's row alone: var = std^2 - eps carries std's rounding,
    # ~1.2e-7 relative once var >= eps, at most ~1.5e-6 absolute far below it
    from alae_fast.ops.instance_norm_stats import instance_norm_stats

    scales = torch.tensor([0.0, 1e-4, 1e-3, 1e-2, 1.0, 30.0], dtype=torch.float64).view(1, 6, 1, 1)
    x64 = torch.randn(4, 6, 8, 8, dtype=torch.float64) * scales + 0.5
    _, _, std = instance_norm_stats(x64.float(), 1e-5)
    got = _restd(std, 1e-5, 0.0)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    expect = x64.float().double().var((2, 3), unbiased=False).sqrt()
    err = (got.double() - expect).abs()
    assert (err <= 2e-6 + 1e-6 * expect).all(), err
    big = expect >= 1e-2  # var >= 1e-4 > eps
    assert (err[big] / expect[big] <= 1e-6).all(), err / expect


def test_restd_gradients_to_second_order():
    from alae_fast.ops.instance_norm_stats import instance_norm_stats

    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)

    def f(t):
        _, _, std = instance_norm_stats(t, 1e-5)
        return _restd(std, 1e-5, 0.0)

    torch.autograd.gradcheck(f, (x,))
    torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.slow
def test_official_encoder_block_gradients_to_second_order():
    blk = StyleALAE(OTHER.replace(layer_count=2)).double().encoder.blocks[1]
    x = torch.randn(1, blk.conv_1.in_channels, 4, 4, dtype=torch.float64, requires_grad=True)
    assert blk.std_eps == 0.0 and blk.eps == 1e-5
    torch.autograd.gradcheck(lambda t: blk(t)[1], (x,))
    torch.autograd.gradgradcheck(lambda t: blk(t)[1], (x,))


def test_paper_presets_are_official_and_digits_keeps_its_behaviour():
    for name in ("ffhq-1024", "celeba-hq-256", "bedroom-256", "celeba-128"):
        c = preset_config(name)
        assert (c.from_rgb_lrelus, c.encoder_eps, c.first_noise_shared, c.truncation_psi, c.truncation_cutoff) == \
            (2, (1e-5, 0.0), True, 0.7, 8), name
    d = preset_config("digits-32")
    assert (d.from_rgb_lrelus, d.encoder_eps, d.first_noise_shared, d.truncation_psi) == (1, (1e-8, 1e-8), False, 1.0)


def test_ffhq_shapes_are_the_official_parameter_count():
    with torch.device("meta"):
        m = from_preset("ffhq-1024")
    # 53.7 M: the official FFHQ networks, D keeping one of its last layer's 1024 rows.
    assert sum(p.numel() for p in m.parameters()) == 53_719_804


# --- bad input ---------------------------------------------------------------------------------

def _cli_error(capsys, argv) -> str:
    assert main(argv) == 2
    # the fixture's schedulers say it was saved at 4x4: that warning has its own test
    err = "\n".join(line for line in capsys.readouterr().err.strip().splitlines()
                    if "the official training had run" not in line)
    assert "\n" not in err and "Traceback" not in err
    return err


def test_not_a_checkpoint(tmp_path, capsys):
    p = tmp_path / "notes.pth"
    p.write_text("hello, this is not a checkpoint\n")
    with pytest.raises(OfficialCheckpointError, match=f"^{p}: not a PyTorch checkpoint"):
        load_official(p)
    assert str(p) in _cli_error(capsys, ["convert", str(p), "--out", str(tmp_path / "o.pt")])
    assert str(p) in _cli_error(capsys, ["generate", "--ckpt", str(p), "--out", str(tmp_path / "g.png")])


def test_a_dict_that_is_not_an_official_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(OfficialCheckpointError, match="not an official ALAE checkpoint"):
        load_official(tmp_path / "x.pth")


def test_truncated_file(tmp_path, capsys):
    p = tmp_path / "half.pth"
    p.write_bytes(PTH.read_bytes()[: PTH.stat().st_size // 2])
    with pytest.raises(OfficialCheckpointError, match=f"^{p}: truncated or corrupt"):
        load_official(p)
    assert "truncated" in _cli_error(capsys, ["convert", str(p), "--out", str(tmp_path / "o.pt")])


def test_shapes_contradicting_the_config(tmp_path, capsys):
    wrong = preset_config("celeba-128").replace(latent_size=32, layer_count=6, start_features=4, max_features=64,
                                                mapping_layers=3)
    with pytest.raises(OfficialCheckpointError) as e:
        load_official(PTH, config=wrong)
    msg = str(e.value)
    # The first key in the loader's order whose shape the config contradicts, with both shapes.
    assert msg.startswith(f"{PTH}: generator_s.const has shape [1, 32, 4, 4]; the config") and "[1, 64, 4, 4]" in msg
    pytest.importorskip("yaml")
    y = tmp_path / "wrong.yaml"
    y.write_text(YAML.read_text().replace("LATENT_SPACE_SIZE: 32", "LATENT_SPACE_SIZE: 64"))
    err = _cli_error(capsys, ["convert", str(PTH), "--config", str(y), "--out", str(tmp_path / "o.pt")])
    assert "mapping_fl_s.map_blocks.0.fc.weight has shape [32, 32]" in err and "[64, 64]" in err
    assert f"the config {y} (" in err  # the YAML is named beside the checkpoint


def test_no_ema_copies(tmp_path, capsys):
    state = read_official_checkpoint(PTH)
    state["models"] = {k: v for k, v in state["models"].items() if not k.endswith("_s")}
    state["auxiliary"] = {}
    p = tmp_path / "no_ema.pth"
    torch.save(state, p)
    with pytest.raises(OfficialCheckpointError, match=f"^{p}: no EMA copies"):
        load_official(p)
    assert load_official(p, ema=False).w_avg.shape == (32,)
    assert "no EMA copies" in _cli_error(capsys, ["convert", str(p), "--out", str(tmp_path / "o.pt")])
    assert main(["convert", str(p), "--no-ema", "--out", str(tmp_path / "o.pt")]) == 0


class _Touch:
    """Pickles as a call of shutil.copyfile: unpickling it with pickle.load creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return shutil.copyfile, (str(YAML), str(self.marker))


class _System:
    """Pickles as a call of os.system: unpickling it with pickle.load runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _with_aux(tmp_path, name, obj) -> Path:
    state = read_official_checkpoint(PTH)
    state["auxiliary"]["tracker"] = obj
    p = tmp_path / name
    torch.save(state, p)
    return p


def test_pickled_code_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    # A call the unpickler can replace: the models load, the call becomes an inert placeholder.
    p = _with_aux(tmp_path, "evil.pth", _Touch(marker))
    assert "shutil.copyfile" in torch.serialization.get_unsafe_globals_in_checkpoint(p)
    m = load_official(p)
    assert isinstance(m, StyleALAE) and not marker.exists()
    assert main(["convert", str(p), "--out", str(tmp_path / "o.pt")]) == 0 and not marker.exists()
    assert main(["generate", "--ckpt", str(p), "--n", "1", "--out", str(tmp_path / "g.png")]) == 0
    # os.system: refused outright, one line, nothing run.
    p = _with_aux(tmp_path, "evil_os.pth", _System(marker))
    with pytest.raises(OfficialCheckpointError, match=f"^{p}: refused: its pickle calls posix.system"):
        load_official(p)
    assert "posix.system" in _cli_error(capsys, ["convert", str(p), "--out", str(tmp_path / "o2.pt")])
    # The exploit as the whole file, in both torch formats.
    for name, zip_format in (("top.pth", True), ("legacy.pth", False)):
        top = tmp_path / name
        torch.save(_Touch(marker), top, _use_new_zipfile_serialization=zip_format)
        with pytest.raises(OfficialCheckpointError, match=f"^{top}: "):
            load_official(top)
        assert str(top) in _cli_error(capsys, ["generate", "--ckpt", str(top), "--out", str(tmp_path / "g.png")])
    assert not marker.exists()
    # Not vacuous: plain unpickling of the same object does create the file.
    pickle.loads(pickle.dumps(_Touch(marker)))
    assert marker.exists()


def test_legacy_format_checkpoints_load_with_the_tracker_inert(tmp_path, monkeypatch, capsys):
    # The published checkpoints (April 2020, PyTorch 1.4) are in torch.save's legacy format,
    # with the tracker's tracker.RunningMeanTorch objects in 'auxiliary'.
    import types

    module = types.ModuleType("tracker")

    class RunningMeanTorch:
        def __init__(self):
            self.values = [torch.tensor([0.5])]

    RunningMeanTorch.__module__, RunningMeanTorch.__qualname__ = "tracker", "RunningMeanTorch"
    module.RunningMeanTorch = RunningMeanTorch
    monkeypatch.setitem(__import__("sys").modules, "tracker", module)
    state = read_official_checkpoint(PTH)
    state["auxiliary"]["tracker"] = {"tracks": {"loss_d": RunningMeanTorch()}, "epochs": [0]}
    p = tmp_path / "legacy.pth"
    torch.save(state, p, _use_new_zipfile_serialization=False)
    monkeypatch.delitem(__import__("sys").modules, "tracker")
    loaded = read_official_checkpoint(p)
    loss = loaded["auxiliary"]["tracker"]["tracks"]["loss_d"]
    assert isinstance(loss, InertObject) and type(loss).pickled_as == "tracker.RunningMeanTorch"
    m, direct = load_official(p), load_official(PTH)
    for k, v in direct.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k
    assert main(["convert", str(p), "--out", str(tmp_path / "o.pt")]) == 0
    # ... and os.system in that format is refused by name, nothing run.
    marker = tmp_path / "pwned"
    state["auxiliary"]["tracker"] = _System(marker)
    torch.save(state, p, _use_new_zipfile_serialization=False)
    with pytest.raises(OfficialCheckpointError, match=f"^{p}: refused: its pickle calls posix.system"):
        load_official(p)
    assert not marker.exists()
    # A truncated legacy file and a plain pickle (not torch.save): one line each, no warnings.
    half = tmp_path / "half.pth"
    half.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(OfficialCheckpointError, match=f"^{half}: truncated or corrupt"):
        load_official(half)
    plain = tmp_path / "plain.pth"
    plain.write_bytes(pickle.dumps({"models": {}}, protocol=4))
    assert "a pickle that torch.save did not write" in _cli_error(capsys, ["convert", str(plain), "--out",
                                                                           str(tmp_path / "o2.pt")])


class _Call:
    """Pickles as a call of subprocess.call (protocol 2 writes the GLOBAL as Python 2's
    commands.call): unpickling it with pickle.load would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return subprocess.call, (["touch", str(self.marker)],)


class _Exec:
    """Pickles as a call of builtins.exec, which torch's refusal names without "builtins."."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w')",)


def test_subprocess_call_is_inert_in_both_formats_and_refusals_name_the_global(tmp_path, capsys, monkeypatch):
    # A user's trial: subprocess.call in a legacy-format file was refused with torch's raw message
    # (terminal escapes, cut off before the global, advising weights_only=False). The legacy
    # listing read the GLOBAL as pickle does (subprocess.call), torch as commands.call, so the
    # placeholder had another name than the one torch looked up.
    marker = tmp_path / "pwned"
    for name, zip_format in (("call.pth", True), ("call_legacy.pth", False)):
        p = tmp_path / name
        torch.save(read_official_checkpoint(PTH) | {"auxiliary": {"tracker": _Call(marker)}}, p,
                   _use_new_zipfile_serialization=zip_format)
        assert b"commands\ncall" in p.read_bytes()  # not vacuous: the file calls it (torch's zip stores, not deflates)
        assert type(read_official_checkpoint(p)["auxiliary"]["tracker"]).pickled_as == "commands.call"
        assert main(["convert", str(p), "--out", str(tmp_path / "o.pt")]) == 0
    # What torch's unpickler refuses (here: as if the file's globals had not been listed) is one
    # line naming the global, in either format, with no advice to load with weights_only=False.
    import alae_fast.models.official_io as official_io

    state = read_official_checkpoint(PTH)
    monkeypatch.setattr(official_io, "_unsafe", lambda names: [])
    monkeypatch.setattr(torch.serialization, "get_unsafe_globals_in_checkpoint", lambda f: [])
    for obj, named in ((_Call(marker), "commands.call"), (_Exec(marker), "builtins.exec")):
        for zip_format in (True, False):
            p = tmp_path / f"refused_{zip_format}.pth"
            torch.save(state | {"auxiliary": {"tracker": obj}}, p, _use_new_zipfile_serialization=zip_format)
            with pytest.raises(OfficialCheckpointError, match=f"^{p}: refused: its pickle calls {re.escape(named)}, "
                                                              f"which no checkpoint needs"):
                load_official(p)
            err = _cli_error(capsys, ["convert", str(p), "--out", str(tmp_path / "o2.pt")])
            assert named in err and "\x1b" not in err and "weights_only" not in err, err
    assert not marker.exists() and not (tmp_path / "o2.pt").exists()


def test_edit_takes_noise_mode(other_checkpoint, tmp_path):
    # --noise-mode, which every --ckpt command takes, chooses edit's noise too (it was ignored;
    # the official checkpoint's noise weights are not zero, so the noise shows).
    import numpy as np
    from PIL import Image

    Image.fromarray(np.tile(np.arange(128, dtype=np.uint8) * 2, (128, 1))).save(tmp_path / "x.png")
    np.save(tmp_path / "d.npy", np.linspace(-1, 1, 24))
    out = {}
    for name, extra in (("zero", []), ("mode", ["--noise-mode", "random", "--seed", "3"]),
                        ("old", ["--noise", "random", "--seed", "3"])):
        path = tmp_path / f"{name}.png"
        assert main(["edit", "--ckpt", str(other_checkpoint / "other.pth"), str(tmp_path / "x.png"),
                     "--direction", f"{tmp_path / 'd.npy'}=1", "--steps", "2", "--out", str(path), *extra]) == 0
        with Image.open(path) as im:
            out[name] = np.asarray(im)
    assert not np.array_equal(out["mode"], out["zero"])
    assert np.array_equal(out["mode"], out["old"])


def test_evaluate_on_a_small_folder_of_own_images(other_checkpoint, tmp_path, capsys):
    # A folder of up to 14 images holds out one: FID needs two, so all the files are used
    # (it failed with "features: expected [N, D] with N >= 2"); one image is one clear line.
    import json

    import numpy as np
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(5):  # the model's 128 px: no enlargement to warn about beside the error below
        Image.fromarray(np.full((128, 128), 40 * i, np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--ckpt", str(other_checkpoint / "other.pth"), "--data", str(folder),
                 "--num-fid", "4", "--ppl-samples", "2", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["reconstruction_images"] == 4  # all 5 files, at most --num-fid
    # an official checkpoint records no training data: the report cannot call the images
    # held-out or unseen, and says so
    assert metrics["reconstruction_split"] == "unrecorded" and metrics["data"]["split"] == "all"
    # unlabelled images: whether reconstructions can be told apart, beside the mean-colour baseline
    ident = metrics["reconstruction_identification"]
    assert ident["chance"] == 0.25 and 0.0 <= ident["reconstructions"] <= 1.0
    assert ident["mean_colour"] == 1.0  # five flat grey levels: their mean colours tell them apart
    printed = capsys.readouterr().out
    assert "on 4 possibly seen (the checkpoint records no training data) images:" in printed
    assert "matched back to their own input among the 4 possibly seen (the checkpoint records no training data) images" in printed
    for p in list(folder.iterdir())[1:]:
        p.unlink()
    capsys.readouterr()
    # one image: FID cannot be taken (a covariance needs 2), the other metrics are reported
    assert main(["evaluate", "--ckpt", str(other_checkpoint / "other.pth"), "--data", str(folder),
                 "--num-fid", "4", "--ppl-samples", "2", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["fid_generated"] is None and metrics["reconstruction_images"] == 1
    assert "gives 1 real image, and FID compares sets of at least 2" in metrics["fid_skipped"]
    assert "FID:                     skipped (" in capsys.readouterr().out
    # without --data an official model is not scored on the embedded digits
    for cmd, name in (("evaluate", out), ("reconstruct", tmp_path / "rec.png")):
        err = _cli_error(capsys, [cmd, "--ckpt", str(other_checkpoint / "other.pth"), "--out", str(name)])
        assert "records no training data; pass --data FOLDER" in err, cmd


def test_generate_help_names_every_noise_mode_and_the_cutoff_default(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for mode in ("const (default", "random:", "batch:", "zero or none:"):
        assert mode in text, mode
    assert "without --psi the config's, 8 for the paper presets and official checkpoints" in text


def test_convert_refuses_what_it_cannot_do_in_one_line(tmp_path, capsys):
    # An alae_fast checkpoint is not relabelled as a converted official one; an unwritable
    # --out is one line (it was a RuntimeError traceback from torch's writer).
    converted = tmp_path / "c.pt"
    assert main(["convert", str(PTH), "--out", str(converted)]) == 0
    err = _cli_error(capsys, ["convert", str(converted), "--out", str(tmp_path / "again.pt")])
    assert err.endswith("nothing to convert") and str(converted) in err and not (tmp_path / "again.pt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _cli_error(capsys, ["convert", str(PTH), "--out", str(blocker / "sub" / "o.pt")])
    # refused before the checkpoint is read: the path, and the file in the way, named
    assert f"--out '{blocker / 'sub' / 'o.pt'}': '{blocker}' is a file, not a folder" in err
    from alae_fast.inference.loading import convert_official

    with pytest.raises(ValueError, match="cannot write the checkpoint"):  # the library's own check, after reading
        convert_official(PTH, blocker / "sub" / "o.pt")


def test_convert_says_it_replaces_an_existing_out_and_its_help_drops_official_only(tmp_path, capsys):
    # it replaced --out silently; and its help called --config/--no-ema "official checkpoints only"
    # in a command that reads nothing else
    out = tmp_path / "c.pt"
    assert main(["convert", str(PTH), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    first = out.read_bytes()
    assert main(["convert", str(PTH), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (replacing the earlier file)"
    assert out.read_bytes() == first
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "official checkpoints only" not in text and "an existing file there is replaced" in text
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "official checkpoints only" in capsys.readouterr().out


def test_no_ema_on_an_alae_fast_checkpoint_is_refused(tmp_path, capsys):
    # As --config: it was silently ignored, giving the model the file holds.
    converted = tmp_path / "c.pt"
    assert main(["convert", str(PTH), "--out", str(converted)]) == 0
    err = _cli_error(capsys, ["generate", "--ckpt", str(converted), "--no-ema", "--n", "1",
                              "--out", str(tmp_path / "g.png")])
    assert err.startswith("alae-fast generate: error: " + str(converted)) and "--no-ema" in err
    assert not (tmp_path / "g.png").exists()


def test_directions_takes_no_ema_and_config_as_every_ckpt_command(tmp_path, capsys):
    # `directions` had neither: the EMA weights only, and no way to name the official YAML
    Image = pytest.importorskip("PIL.Image")
    pytest.importorskip("yaml")
    import numpy as np

    rng = np.random.default_rng(5)
    res = load_run(PTH).schedule.resolution
    for label in ("smile", "plain"):
        (tmp_path / "lab" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(tmp_path / "lab" / label / f"{i}.png")
    common = ["directions", "--ckpt", str(PTH), "--data", str(tmp_path / "lab")]
    assert main([*common, "--out", str(tmp_path / "ema")]) == 0
    assert main([*common, "--no-ema", "--out", str(tmp_path / "train")]) == 0
    assert main([*common, "--config", str(YAML), "--out", str(tmp_path / "yaml")]) == 0
    capsys.readouterr()
    ema, train, yaml = (np.load(tmp_path / d / "direction_smile.npy") for d in ("ema", "train", "yaml"))
    assert not np.allclose(ema, train)  # the training weights encode otherwise
    np.testing.assert_array_equal(ema, yaml)  # the YAML describes the architecture inferred
    converted = tmp_path / "c.pt"
    assert main(["convert", str(PTH), "--out", str(converted)]) == 0
    capsys.readouterr()
    err = _cli_error(capsys, ["directions", "--ckpt", str(converted), "--no-ema", "--data", str(tmp_path / "lab")])
    assert err.startswith("alae-fast directions: error: " + str(converted)) and "--no-ema" in err


def test_a_damaged_official_checkpoint_is_refused(other_checkpoint, tmp_path):
    # torch.load reads bytes flipped inside a tensor as other weights; the stored CRC-32 shows it
    import shutil
    import zipfile

    p = tmp_path / "flipped.pth"
    shutil.copy(other_checkpoint / "other.pth", p)
    z = zipfile.ZipFile(p)
    info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(p, "r+b") as f:  # the entry's data follow its 30-byte local header, name and extra field
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        f.seek(info.header_offset + 30 + name_len + extra_len + 8)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(OfficialCheckpointError, match=rf"damaged checkpoint \(corrupt: entry '{info.filename}' "
                                                       r"does not match its stored CRC-32\)"):
        read_official_checkpoint(p)
    with pytest.raises(OfficialCheckpointError, match="damaged checkpoint"):
        load_official(p)


def test_train_resume_of_a_converted_checkpoint_says_why_in_one_line(tmp_path, capsys):
    # a user's trial put a converted official checkpoint in a run's checkpoints/ and resumed:
    # a KeyError traceback ('total_kimg') came out of the plan
    from alae_fast.cli import main

    ckdir = tmp_path / "run" / "checkpoints"
    ckdir.mkdir(parents=True)
    assert main(["convert", str(PTH), "--config", str(YAML), "--out", str(ckdir / "ckpt-0000000000.pt")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--kimg", "0.05", "--no-eval",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("alae-fast train: error: --resume: "), err
    assert "holds a model but no training state (converted by `alae-fast convert` from" in err[0]
    assert ("To train on from an official ALAE checkpoint, begin a run from the official .pth itself: alae-fast train "
            "--from-official FILE.pth --data IMAGES") in err[0]


def test_a_checkpoint_saved_while_growing_says_its_levels_above_were_untrained(tmp_path):
    # the fixture's schedulers stand at epoch 3: the official LODDriver trains lod 3 // 15 = 0
    # then, and the levels above are its initial weights; the official figure scripts would use
    # it at its last level all the same, as alae_fast does, but not without a word
    import warnings

    from alae_fast.models.official_io import read_official_checkpoint

    with pytest.warns(RuntimeWarning, match=r"the official training had run 3 epochs when this checkpoint was saved, "
                                            r"at lod 0 \(4x4; 15 epochs a level, defaults.py's EPOCHS_PER_LOD\)"):
        run = load_run(PTH)
    assert run.phase.lod == 5
    yaml_1 = tmp_path / "one.yaml"
    yaml_1.write_text(YAML.read_text().replace("TRAIN:", "TRAIN:\n  EPOCHS_PER_LOD: 1", 1))
    with pytest.warns(RuntimeWarning, match=r"at lod 3 \(32x32; 1 epochs a level, the YAML's EPOCHS_PER_LOD\)"):
        load_run(PTH, config=yaml_1)
    state = read_official_checkpoint(PTH)
    state["auxiliary"].pop("tracker")  # its inert placeholders do not pickle again
    for epoch in (75, 200):  # 75 // 15 = 5: the last level
        for v in state["auxiliary"]["scheduler"].values():
            v["last_epoch"] = epoch
        torch.save(state, tmp_path / "grown.pth")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_run(tmp_path / "grown.pth")
    torch.save({"models": state["models"]}, tmp_path / "models_only.pth")  # no epoch recorded: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run(tmp_path / "models_only.pth")
    # converted, the file still says so when opened (a new user's trial: convert had dropped it)
    from alae_fast.inference.loading import convert_official

    with pytest.warns(RuntimeWarning, match="the official training had run 3 epochs"):
        convert_official(PTH, tmp_path / "c.pt")
    with pytest.warns(RuntimeWarning, match=r"c\.pt \(converted from .*alae-small\.pth\): the official training had "
                                            r"run 3 epochs when this checkpoint was saved, at lod 0 \(4x4"):
        assert load_run(tmp_path / "c.pt").phase.lod == 5
    convert_official(tmp_path / "grown.pth", tmp_path / "g.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_run(tmp_path / "g.pt")
