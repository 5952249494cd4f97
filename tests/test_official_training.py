"""Training as the official ALAE trains (podgorskiy/ALAE 42bcf2e): the mixing draw and its cutoff
distribution, w_avg updates per iteration, flips of the real images, the per-level tables and
which presets use what."""

import numpy as np
import pytest
import torch

from alae_fast.data import DataStream, TensorImageDataset, stream_flips
from alae_fast.models import build_model, preset_config
from alae_fast.training.official import OFFICIAL_CONFIGS, official_lod_batch, official_lod_lr
from alae_fast.training.run import TrainOptions, training_behaviour
from alae_fast.training.schedule import schedule_from_config
from alae_fast.training.trainer import ALAETrainer
from alae_fast_tests_support import toy

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(**kw):
    T = toy()
    config = T.ToyPGConfig(lod_kimg=(0.032,), lod_batch=(8,))
    torch.manual_seed(0)
    return ALAETrainer(build_model(config), schedule_from_config(config), seed=3, **kw)


def _cutoffs(ws: torch.Tensor) -> list[int]:
    """Per sample: the first style input that differs from input 0 (num_ws when none)."""
    num_ws = ws.shape[1]
    differs = (ws != ws[:, :1]).any(-1)  # [N, num_ws]; input 0 never differs
    first = torch.where(differs, torch.arange(num_ws), torch.full_like(differs, num_ws, dtype=torch.int64))
    return first.min(1).values.tolist()


# --- style mixing ------------------------------------------------------------------------------

@pytest.mark.parametrize("lod", [0, 1, 2])
def test_official_mixing_one_draw_per_batch_over_active_layers(lod):
    tr = _trainer(style_mixing="official")
    num_ws = tr.model.num_ws  # 6: layer_count 3, two style inputs per layer
    active = 2 * (lod + 1)
    draws = 2000
    counts = np.zeros(num_ws + 1)
    with torch.no_grad():
        for _ in range(draws):
            ws, w = tr._styles(8, mixing=True, lod=lod)
            cuts = _cutoffs(ws)
            assert len(set(cuts)) == 1, "one draw for the whole batch"
            assert torch.equal(ws[:, 0], w)
            counts[cuts[0]] += 1
    # hand computation: no mixing with 0.1; else cutoff uniform on 1..active (both ends), and the
    # cutoff `active` equals no mixing when active == num_ws (nothing left to replace)
    expect = np.zeros(num_ws + 1)
    expect[1:active + 1] = 0.9 / active
    expect[num_ws] += 0.1
    assert counts[0] == 0 and counts[active + 1:num_ws].sum() == 0
    se = np.sqrt(expect * (1 - expect) / draws)
    assert np.all(np.abs(counts / draws - expect) <= 5 * se + 1e-12), (counts / draws, expect)


def test_per_sample_mixing_draws_each_sample_over_all_layers():
    tr = _trainer(style_mixing="per_sample")
    cuts = []
    with torch.no_grad():
        for _ in range(300):
            cuts += _cutoffs(tr._styles(8, mixing=True, lod=0)[0])
    assert set(cuts) == set(range(1, 7))  # layers beyond lod 0's active two as well
    assert len(set(cuts[:8])) > 1 or len(set(cuts[8:16])) > 1  # samples of one batch differ


def test_no_mixing_without_the_flag_or_probability():
    tr = _trainer(style_mixing="official", mixing_prob=0.0)
    with torch.no_grad():
        for _ in range(20):
            assert set(_cutoffs(tr._styles(8, mixing=True, lod=2)[0])) == {6}
    with pytest.raises(ValueError, match="style_mixing"):
        _trainer(style_mixing="sometimes")
    with pytest.raises(ValueError, match="w_avg_update"):
        _trainer(w_avg_update="never")


# --- w_avg -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, per_step", [("generator_step", 1), ("every_generate", 3)])
def test_w_avg_updates_per_iteration(mode, per_step):
    tr = _trainer(w_avg_update=mode)
    model = tr.model
    seen = []
    original = model.update_w_avg

    def spy(w, beta=None):
        seen.append(w.detach().clone())
        return original(w, beta)

    model.update_w_avg = spy
    x = torch.rand(8, 1, 16, 16) * 2 - 1
    before = model.w_avg.detach().clone()
    tr.step(x)
    tr.step(x)
    assert len(seen) == 2 * per_step
    # hand computation: w_avg <- mean + 0.995 (w_avg - mean), once per batch mean seen
    ref = before.double()
    for w in seen:
        mean = w.double().reshape(-1, w.shape[-1]).mean(0)
        ref = mean + 0.995 * (ref - mean)
    torch.testing.assert_close(model.w_avg.double(), ref, rtol=1e-6, atol=1e-7)
    assert not torch.equal(model.w_avg, before)


# --- flips -------------------------------------------------------------------------------------

def test_stream_flips_are_fair_and_a_function_of_seed_and_position():
    a = stream_flips(1000, 0, 5000, seed=7)
    assert a.dtype == torch.bool and 0.47 < a.float().mean() < 0.53
    assert torch.equal(stream_flips(1000, 1234, 100, seed=7), a[1234:1334])  # any window of the same stream
    assert not torch.equal(stream_flips(1000, 0, 5000, seed=8), a)
    assert not torch.equal(a[:1000], a[1000:2000])  # a new coin per epoch
    with pytest.raises(ValueError, match="n"):
        stream_flips(0, 0, 1)


def _images(n=50):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 4, 4, generator=g) * 2 - 1
    return TensorImageDataset(x, torch.arange(n))


def test_stream_flips_exactly_the_positions_it_says():
    ds = _images()
    plain, flipped = DataStream(ds, 12, seed=4), DataStream(ds, 12, seed=4, flip=True)
    pos = 0
    for _ in range(10):  # crosses epochs (50 items)
        (x0, y0), (x1, y1) = plain.next(), flipped.next()
        assert torch.equal(y0, y1)
        bits = stream_flips(len(ds), pos, 12, seed=4)
        assert torch.equal(x1[bits], x0[bits].flip(-1)) and torch.equal(x1[~bits], x0[~bits])
        pos += 12
    assert bits.any() and (~bits).any()


@pytest.mark.parametrize("world", [1, 2])
def test_flips_resume_and_shard_exactly(world):
    ds = _images()
    whole = DataStream(ds, 8, seed=1, flip=True)
    expect = [whole.next()[0] for _ in range(9)]
    ranks = [DataStream(ds, 8, rank=r, world_size=world, seed=1, flip=True) for r in range(world)]
    got = [torch.cat([s.next()[0] for s in ranks]) for _ in range(4)]
    state = ranks[0].state_dict()
    assert state["flip"] is True
    resumed = [DataStream(ds, 8, rank=r, world_size=world, seed=1) for r in range(world)]
    for s in resumed:
        s.load_state_dict(state)
    got += [torch.cat([s.next()[0] for s in resumed]) for _ in range(5)]
    for a, b in zip(got, expect):
        assert torch.equal(a, b)


def test_flips_with_workers_match_direct_loading():
    ds = _images()
    direct = DataStream(ds, 10, seed=2, flip=True)
    workers = DataStream(ds, 10, seed=2, flip=True, num_workers=1)
    for _ in range(3):
        assert torch.equal(direct.next()[0], workers.next()[0])


# --- presets and tables ------------------------------------------------------------------------

PAPER = ("ffhq-1024", "celeba-hq-256", "bedroom-256", "celeba-128")
# digits-32 spaces R1 out (lazy R1, since 2026-12-07: the twenty-second round of
# benchmarks/results/digits-experiments.md)
DIGITS_R1_INTERVAL = 2


@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_train_as_the_official_code(name):
    config = preset_config(name)
    L = config.layer_count
    assert official_lod_batch(name, 8, L) == tuple(config.per_lod("lod_batch", i) for i in range(L))
    assert official_lod_lr(name, L) == tuple(config.per_lod("lod_lr", i) for i in range(L))
    b = training_behaviour(TrainOptions(), config)
    assert b == {"style_mixing": "official", "w_avg_update": "every_generate", "flip": True, "mixing_prob": 0.9,
                 "d_zero_grad_step": True, "augment": "", "lae_weight": 1.0, "r1_interval": 1,
                 "channels_last": False}  # the paper augments nothing; the official code trains NCHW
    assert config.w_avg_beta == 0.995


def test_official_tables_as_the_yaml_files():
    # spot checks against configs/*.yaml at 42bcf2e
    assert official_lod_batch("celeba-128", 1) == (128, 128, 128, 64, 32, 16)
    assert official_lod_batch("ffhq-1024", 4, 10)[-2:] == (16, 16)
    assert official_lod_lr("bedroom-256")[6] == 0.002 and official_lod_lr("celeba-hq-256")[6] == 0.0015
    assert sorted(OFFICIAL_CONFIGS) == sorted(PAPER)
    with pytest.raises(ValueError, match="gpus"):
        official_lod_batch("ffhq-1024", 3)
    with pytest.raises(ValueError, match="preset"):
        official_lod_batch("digits-32")


def test_digits_keeps_its_behaviour_and_options_override():
    config = preset_config("digits-32")
    assert training_behaviour(TrainOptions(), config) == {"style_mixing": "per_sample",
                                                          "w_avg_update": "generator_step", "flip": False,
                                                          "mixing_prob": 0.0, "d_zero_grad_step": False,
                                                          "augment": "", "lae_weight": 0.25,
                                                          "r1_interval": DIGITS_R1_INTERVAL, "channels_last": True}
    opts = TrainOptions(style_mixing="official", flip=True, mixing_prob=0.9, d_zero_grad_step=True,
                        augment="translation", lae_weight=0.5, r1_interval=1, channels_last=False)
    assert training_behaviour(opts, config) == {"style_mixing": "official", "w_avg_update": "generator_step",
                                                "flip": True, "mixing_prob": 0.9, "d_zero_grad_step": True,
                                                "augment": "translation", "lae_weight": 0.5, "r1_interval": 1,
                                                "channels_last": False}
    # R1 every step for the paper's presets (the paper's and the official code's); every second
    # step for the two CPU presets (since 2026-12-07)
    for name in ("celeba-128", "ffhq-1024", "celeba-hq-256", "bedroom-256"):
        assert training_behaviour(TrainOptions(), preset_config(name))["r1_interval"] == 1, name
    assert training_behaviour(TrainOptions(), preset_config("photos-32"))["r1_interval"] == 2
    # digits-32 (since 2026-12-07) and photos-32 train channels_last; an option given says otherwise
    assert training_behaviour(TrainOptions(), preset_config("photos-32"))["channels_last"] is True
    assert training_behaviour(TrainOptions(channels_last=False), preset_config("photos-32"))["channels_last"] is False
    # a config without the fields (the MLP ALAE) gets alae_fast's defaults, except mixing: with one
    # style input the trainer never mixes, so config.json records 0.0, not the StyleALAE default 0.9
    assert training_behaviour(TrainOptions(), preset_config("mnist-mlp"))["style_mixing"] == "per_sample"
    assert training_behaviour(TrainOptions(), preset_config("mnist-mlp"))["mixing_prob"] == 0.0
    assert training_behaviour(TrainOptions(), preset_config("mnist-mlp"))["d_zero_grad_step"] is False
    assert training_behaviour(TrainOptions(), preset_config("mnist-mlp"))["r1_interval"] == 1
    # a checkpoint written before r1_interval was a config field: its options recorded the run
    # default 1 and its model config has no field; it resumes with R1 every iteration, as it trained
    from alae_fast.models import StyleALAEConfig
    from alae_fast.training.options import _in_effect
    old = {k: v for k, v in config.to_dict().items() if k != "r1_interval"}
    was = StyleALAEConfig.from_dict(old)
    assert was.r1_interval == 1 and _in_effect("r1_interval", 1, was) == _in_effect("r1_interval", None, was) == 1
    toy()  # a StyleALAE preset that leaves mixing to the default
    assert training_behaviour(TrainOptions(), preset_config("toy-pg"))["mixing_prob"] == 0.9
    with pytest.raises(ValueError, match="style_mixing"):
        config.replace(style_mixing="nope")
    with pytest.raises(ValueError, match="mixing_prob"):
        config.replace(mixing_prob=1.5)
    with pytest.raises(TypeError, match="d_zero_grad_step must be a bool"):
        config.replace(d_zero_grad_step="yes")
    with pytest.raises(TypeError, match="channels_last must be a bool"):
        config.replace(channels_last="yes")
    for bad in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="lae_weight must be a finite number in \\(0.0, inf\\]"):
            config.replace(lae_weight=bad)
    with pytest.raises(TypeError, match="lae_weight must be a number"):
        config.replace(lae_weight="1")
    for bad in (0, -2):
        with pytest.raises(ValueError, match="r1_interval must be >= 1"):
            config.replace(r1_interval=bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="r1_interval must be an int"):
            config.replace(r1_interval=bad)


# --- a run ---------------------------------------------------------------------------------------

def test_run_uses_and_resumes_the_behaviour(tmp_path, monkeypatch):
    import json

    from PIL import Image

    import alae_fast.training.run as run_module
    from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
    from alae_fast.training.run import run_training

    made = []  # the lae_weight and r1_interval of each trainer a run makes: what it trains with, not only
    # what it records

    class Recording(run_module.ALAETrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append((self.lae_weight, self.r1_interval))

    monkeypatch.setattr(run_module, "ALAETrainer", Recording)

    toy()
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "run"
    common = dict(preset="toy-pg", data=str(data), out=str(out), evaluate=False, progress=False, threads=1)
    run_training(TrainOptions(kimg=0.032, style_mixing="official", w_avg_update="every_generate", flip=True,
                              d_zero_grad_step=True, augment="cutout", lae_weight=0.5, r1_interval=3, **common))
    assert json.loads((out / "config.json").read_text())["behaviour"] == {
        "style_mixing": "official", "w_avg_update": "every_generate", "flip": True, "mixing_prob": 0.9,
        "d_zero_grad_step": True, "augment": "cutout", "lae_weight": 0.5, "r1_interval": 3, "channels_last": False}
    run_training(TrainOptions(kimg=0.048, resume=True, **common))  # flags not repeated: the checkpoint's
    assert made == [(0.5, 3), (0.5, 3)]
    state = load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])
    assert state["options"]["style_mixing"] == "official" and state["data"]["flip"] is True
    assert state["options"]["augment"] == "cutout" and state["options"]["lae_weight"] == 0.5
    assert json.loads((out / "config.json").read_text())["behaviour"]["w_avg_update"] == "every_generate"
    with pytest.raises(ValueError, match="flip"):
        run_training(TrainOptions(kimg=0.064, resume=True, flip=False, **common))
    with pytest.raises(ValueError, match="--d-zero-grad-step/--no-d-zero-grad-step: checkpoint True, now False"):
        run_training(TrainOptions(kimg=0.064, resume=True, d_zero_grad_step=False, **common))
    with pytest.raises(ValueError, match="--lae-weight: checkpoint 0.5, now 1.0"):
        run_training(TrainOptions(kimg=0.064, resume=True, lae_weight=1.0, **common))
    with pytest.raises(ValueError, match="--r1-interval: checkpoint 3, now 1"):
        run_training(TrainOptions(kimg=0.064, resume=True, r1_interval=1, **common))
    for bad, error in (("0.5", TypeError), (True, TypeError), (-1.0, ValueError)):
        with pytest.raises(error, match="lae_weight: expected"):
            run_training(TrainOptions(kimg=0.032, lae_weight=bad, **dict(common, out=str(tmp_path / "bad"))))
