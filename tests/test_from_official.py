"""Training on from an official ALAE checkpoint (``alae-fast train --from-official``): the weights,
EMA and w_avg the official trainer resumes with, its position in epochs of the run's data, the
official driver's level, blend, batch and rate at every later image, fresh Adam, and the
refusals."""

import json
import re
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL.Image")  # the lent GPU machines have no PIL
from PIL import Image

from alae_fast.cli import main
from alae_fast.data import open_dataset
from alae_fast.models import build_model, load_official, preset_config
from alae_fast.models.official import official_config_from_yaml
from alae_fast.models.official_io import read_official_checkpoint
from alae_fast.training.checkpoint import find_latest_checkpoint
from alae_fast.training.from_official import OFFICIAL_EPOCHS, load_official_start, official_start
from alae_fast.training.official import OFFICIAL_CONFIGS
from alae_fast.training.schedule import schedule_from_config
from alae_fast.training.trainer import ALAETrainer

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = Path(__file__).parent / "data" / "official-alae"
PTH, YAML = FIXTURE / "alae-small.pth", FIXTURE / "alae-small.yaml"
_NETS = ("discriminator", "generator", "mapping_fl", "mapping_tl")


def _folder(root: Path, n: int = 14) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(root / f"p{i:02d}.png")
    return root


def _variant(path: Path, epoch: int | None = 3, drop=(), epochs=None) -> Path:
    """The fixture's models re-saved with the schedulers at ``epoch`` (None: no auxiliary), the
    models in ``drop`` left out; ``epochs``: the two schedulers' epochs, when they differ."""
    models = dict(read_official_checkpoint(PTH)["models"])
    for name in drop:
        del models[name]
    state = {"models": models}
    if epoch is not None or epochs is not None:
        enc, dec = epochs if epochs is not None else (epoch, epoch)
        state["auxiliary"] = {"scheduler": {"encoder_optimizer": {"last_epoch": enc},
                                            "decoder_optimizer": {"last_epoch": dec}}}
    torch.save(state, path)
    return path


def _yaml(path: Path, size: int) -> Path:
    """alae-small.yaml with DATASET.SIZE ``size`` (the images of an official epoch)."""
    path.write_text(YAML.read_text() + f"DATASET:\n  SIZE: {size}\n")
    return path


def _official_driver(epoch: int, iteration: int, per_lod: int, n: int, layer_count: int) -> tuple[int, float, bool]:
    """``(lod, blend, in_transition)`` of the official LODDriver (lod_driver.py, 42bcf2e) after
    ``set_epoch(epoch)`` and ``iteration`` images of that epoch, on ``n`` images: written from
    its source, independently of alae_fast's schedule."""
    lod = min(layer_count - 1, epoch // per_lod)
    first_half = (epoch % per_lod) < (per_lod // 2)
    growing = epoch // per_lod == lod > 0  # the driver's chained comparison
    in_transition = first_half and growing
    if not in_transition:
        return lod, 1.0, False
    b = ((epoch % per_lod) * n + iteration) / (per_lod // 2 * n)
    return lod, math.sin(b * math.pi - 0.5 * math.pi) * 0.5 + 0.5, True


# --- the start ----------------------------------------------------------------------------------

def test_weights_ema_w_avg_position_and_fresh_adam_are_the_official_resumes():
    start = official_start(PTH, YAML)
    # the fixture's schedulers: last_epoch 3; an epoch: defaults.py's DATASET.SIZE 70000
    assert start.epoch == 3 and start.images_per_epoch == 70000 and start.position == 210000
    torch.manual_seed(0)
    trainer = ALAETrainer(build_model(start.config), schedule_from_config(start.config))
    trained_before = [p.detach().clone() for p in trainer.model.parameters()]
    load_official_start(trainer, start)
    for ours, ref in ((trainer.model, load_official(PTH, YAML, ema=False)), (trainer.ema.module, load_official(PTH, YAML))):
        got, want = ours.state_dict(), ref.state_dict()
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(trained_before, trainer.model.parameters()))
    assert torch.equal(trainer.model.w_avg, read_official_checkpoint(PTH)["models"]["dlatent_avg"]["buff"][0])
    # the fixture's EMA copies were perturbed: the two loads must differ
    assert any(not torch.equal(a, b) for a, b in zip(trainer.model.parameters(), trainer.ema.module.parameters()))
    assert trainer.images_seen == 210000 and trainer.lod == 0
    assert not trainer.opt_ed.state and not trainer.opt_fg.state
    assert all(p.requires_grad for p in trainer.model.parameters())


@pytest.mark.parametrize("per_lod", [1, 2, 6, 15])
def test_levels_blends_batches_and_rates_are_the_official_drivers_in_epochs_of_the_data(per_lod):
    n = 36
    start = replace(official_start(PTH, YAML), epochs_per_lod=per_lod, images_per_epoch=n)
    sched = schedule_from_config(start.config)
    layers = start.config.layer_count
    for epoch in range(per_lod * layers + 3):
        for iteration in (0, 8, 20, n - 1):
            lod, blend, fading = _official_driver(epoch, iteration, per_lod, n, layers)
            ph = sched.phase(epoch * n + iteration)
            assert (ph.lod, ph.batch, ph.lr) == (lod, 8, 0.0015), (epoch, iteration)
            assert ph.blend == pytest.approx(blend, abs=1e-9), (epoch, iteration)
            if abs(blend - 1.0) > 1e-9:
                assert ph.in_transition == fading
    assert start.config.train_kimg * 1000 == pytest.approx(110 * n)  # defaults.py's TRAIN_EPOCHS


def test_the_batch_table_is_the_official_drivers_for_the_process_count():
    # alae-small.yaml gives LOD_2_BATCH_1GPU only; the others are defaults.py's
    assert official_start(PTH, YAML, world_size=1).model_config.lod_batch == (8,) * 6
    assert official_start(PTH, YAML, world_size=2).model_config.lod_batch == (256, 256, 128, 64, 32, 16)
    assert official_start(PTH, YAML, world_size=4).model_config.lod_batch == (512, 256, 128, 64, 32, 16)
    three = official_start(PTH, YAML, world_size=3)  # the official driver has no table: the 8-GPU one
    assert three.batch_table == 8 and three.model_config.lod_batch == (512, 256, 128, 64, 32, 32)


def test_the_published_configs_epochs_give_the_paper_presets_schedules():
    # (SIZE, PART_COUNT) of the published configs: an official epoch is SIZE // PART_COUNT x PART_COUNT
    sizes = {"ffhq-1024": (60000, 16), "celeba-hq-256": (29000, 16), "bedroom-256": (758260, 4),
             "celeba-128": (182637, 16)}
    for name, (per_lod, epochs, size) in OFFICIAL_EPOCHS.items():
        preset = preset_config(name)
        assert size == sizes[name][0] // sizes[name][1] * sizes[name][1]
        assert preset.lod_kimg[0] == pytest.approx(per_lod * size / 1000)
        assert preset.train_kimg == pytest.approx(epochs * size / 1000)
        assert name in OFFICIAL_CONFIGS


def test_a_file_without_a_scheduler_starts_at_epoch_0_as_the_official_trainer(tmp_path):
    start = official_start(_variant(tmp_path / "no-aux.pth", epoch=None), YAML)
    assert start.epoch is None and start.position == 0


def test_a_file_without_ema_copies_starts_the_ema_from_the_training_weights(tmp_path):
    path = _variant(tmp_path / "no-ema.pth", drop=[n + "_s" for n in _NETS])
    start = official_start(path, YAML)
    assert not start.has_ema
    trainer = ALAETrainer(build_model(start.config), schedule_from_config(start.config))
    load_official_start(trainer, start)
    for a, b in zip(trainer.model.state_dict().values(), trainer.ema.module.state_dict().values()):
        assert torch.equal(a, b)


def test_a_file_of_the_ema_copies_alone_trains_from_them(tmp_path):
    start = official_start(_variant(tmp_path / "ema-only.pth", drop=_NETS), YAML)
    assert start.has_ema and not start.has_training
    trainer = ALAETrainer(build_model(start.config), schedule_from_config(start.config))
    load_official_start(trainer, start)
    want = load_official(PTH, YAML).state_dict()
    for ours in (trainer.model, trainer.ema.module):
        got = ours.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)


# --- the command ----------------------------------------------------------------------------------

def _train(*argv) -> int:
    return main(["train", *map(str, argv), "--no-eval", "--no-progress", "--threads", "1"])


def test_train_from_an_official_checkpoint_then_resume(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    n = len(open_dataset(str(data), 128, 3, split="train"))
    yaml = _yaml(tmp_path / "small.yaml", n)  # an official epoch: the data's images
    pth = _variant(tmp_path / "e16.pth", epoch=16)  # defaults.py's 15 epochs a level: lod 1, fading in
    run = tmp_path / "run"
    first = 16 * n
    assert _train("--from-official", pth, "--config", yaml, "--data", data, "--out", run,
                  "--kimg", (first + 16) / 1000, "--log-steps", 1) == 0
    out = capsys.readouterr().out
    lod, blend, fading = _official_driver(16, 0, 15, n, 6)
    assert (lod, fading) == (1, True)
    assert (f"training on from the official checkpoint {str(pth)!r} at epoch 16 of 110 ({first / 1000:g} kimg: "
            f"epochs of {n} images (DATASET.SIZE), 15 per level, from the YAML {str(yaml)!r}), lod 1 (8x8, fading in, "
            f"blend {blend:.3f}), global batch 8 (LOD_2_BATCH_1GPU), lr 0.0015; weights: its training copies, EMA: its "
            f"*_s copies; Adam starts afresh") in out
    assert "note: an official epoch" not in out
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2] and records[0]["lod"] == 1
    assert records[0]["kimg"] == pytest.approx((first + 8) / 1000)
    _, state = find_latest_checkpoint(run / "checkpoints")
    assert state["trainer"]["images_seen"] == first + 16 and state["data"]["position"] == first + 16
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["from_official"] == str(pth) and config["setup"] == "from-official"
    assert config["schedule"]["lod_kimg"] == [15 * n / 1000] and config["schedule"]["lod_batch"] == [8] * 6
    # pictures of the official model as it starts, then of what training made of it
    assert (run / "images" / f"samples-{first:010d}.png").is_file()
    assert (run / "images" / f"reconstructions-{first + 16:010d}.png").is_file()
    # checkpoints and pictures every tenth of what the run trains (16 images), not of its length
    assert config["options"]["checkpoint_kimg"] == pytest.approx(0.0016)
    # a run begun from an official checkpoint is an alae_fast run: its commands find its data and
    # images seen (an official checkpoint itself records neither), and --resume continues it
    assert main(["evaluate", "--ckpt", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kimg"] == pytest.approx((first + 16) / 1000), report
    assert _train("--resume", "--out", run, "--kimg", (first + 24) / 1000) == 0
    _, state = find_latest_checkpoint(run / "checkpoints")
    assert state["trainer"]["images_seen"] == first + 24
    assert state["intervals"]["checkpoint_kimg"] == pytest.approx(0.0016)  # kept by the resume


def test_data_of_another_size_than_an_official_epoch_and_an_overridden_batch_are_said(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    n = len(open_dataset(str(data), 128, 3, split="train"))
    yaml = _yaml(tmp_path / "small.yaml", 100)
    assert _train("--from-official", PTH, "--config", yaml, "--data", data, "--out", tmp_path / "run",
                  "--kimg", 0.304, "--schedule", "lod_batch=[16]") == 0
    out = capsys.readouterr().out
    assert "at epoch 3 of 110 (0.3 kimg: epochs of 100 images (DATASET.SIZE)" in out
    assert "global batch 16 (--schedule lod_batch)" in out
    files = len(list(data.iterdir()))
    assert (f"note: an official epoch is 100 images (DATASET.SIZE // PART_COUNT x PART_COUNT), as the official loader "
            f"counts it; --data gives {n} training images ({files - n} more held out for the evaluation; the official "
            f"trainer trains on every image), so an epoch here is {100 / n:.3g} passes over them (a YAML written for "
            f"this folder would give SIZE: {files})") in out
    # alae-small.yaml's one learning rate for 6 levels: the official scheduler's IndexError, said
    assert ("note: LEARNING_RATES gives 1 rate for 6 levels: the official scheduler stops at lod 1 (IndexError); "
            "alae_fast repeats the last rate") in out
    assert "change the official training" not in out
    assert f"note: the global batch 16 is larger than the {n} training images" in out
    # flags that change the official training are said (--r1-gamma 10 is the official value: not)
    assert _train("--config", yaml, "--data", data, "--out", tmp_path / "run2", "--kimg", 0.016, "--no-flip",
                  "--mixing-prob", "0.2", "--r1-gamma", "10") == 0
    assert ("note: --mixing-prob, --no-flip change the official training for this run (config.json's 'behaviour' "
            "records what it uses)") in capsys.readouterr().out


def _refused(capsys, *argv) -> str:
    try:
        rc = _train(*argv)
    except SystemExit as e:
        rc = e.code
    assert rc == 2, argv
    return capsys.readouterr().err


def test_what_contradicts_training_on_from_an_official_checkpoint_is_refused(tmp_path, capsys):
    data = _folder(tmp_path / "data", 6)
    run = tmp_path / "run"
    base = ["--from-official", PTH, "--config", YAML, "--out", run]
    cases = [
        ([*base, "--data", data, "--resume"], "--from-official begins a new run from an official checkpoint; --resume"),
        ([*base, "--data", data, "--preset", "celeba-128"], "--preset celeba-128: with --from-official the model is"),
        ([*base, "--data", data, "--set", "latent_size=8"], "--set latent_size: with --from-official the model is"),
        ([*base, "--data", data, "--schedule", "lod_kimg=[1]"],
         "--schedule lod_kimg: with --from-official the levels last the official epochs"),
        (base, "--from-official: give --data, the images to train on"),
        (["--from-official", PTH, "--data", data, "--out", run],
         "its architecture is none of the published configs, and the checkpoint does not record the schedule"),
        (["--config", YAML, "--out", run], "--config: give --data, the images to train on"),
        (["--config", YAML, "--data", data, "--out", run, "--preset", "digits-32"],
         "--preset digits-32: with --config the model is the YAML's"),
        (["--config", YAML, "--data", data, "--out", run, "--resume"], "--config begins a new run from an official YAML"),
        ([*base, "--data", data, "--kimg", 0.01], "--kimg 0.01: the checkpoint is already at"),
        (["--from-official", tmp_path / "missing.pth", "--data", data, "--out", run],
         f"--from-official: checkpoint {str(tmp_path / 'missing.pth')!r} does not exist"),
        (["--config", tmp_path / "missing.yaml", "--data", data, "--out", run],
         f"--config: config {str(tmp_path / 'missing.yaml')!r} does not exist"),
        ([*base, "--data", data, "--schedule", "lod_batch=[0]"], "--set/--schedule: LODSchedule: lod_batch must be"),
    ]
    for argv, said in cases:
        err = _refused(capsys, *argv)
        assert said in err, (argv, err)
        assert "Traceback" not in err
    assert not run.exists()


def test_official_files_that_cannot_be_trained_on_are_refused(tmp_path, capsys):
    data = _folder(tmp_path / "data", 6)
    neither = _variant(tmp_path / "neither.pth", drop=["generator", "generator_s"])
    err = _refused(capsys, "--from-official", neither, "--config", YAML, "--data", data, "--out", tmp_path / "r")
    assert ("'models' has no generator (training copies) and not all of the *_s copies to start them from") in err
    assert main(["convert", str(PTH), "--out", str(tmp_path / "c.pt")]) == 0
    capsys.readouterr()
    err = _refused(capsys, "--from-official", tmp_path / "c.pt", "--data", data, "--out", tmp_path / "r")
    assert f"was converted by `alae-fast convert` from {str(PTH.resolve())!r}, keeping one model: pass that" in err
    some_ema = _variant(tmp_path / "some-ema.pth", drop=["mapping_tl_s"])
    err = _refused(capsys, "--from-official", some_ema, "--config", YAML, "--data", data, "--out", tmp_path / "r")
    assert "has some EMA copies but not mapping_tl_s" in err
    odd = _variant(tmp_path / "odd.pth", epochs=(3, 4))
    err = _refused(capsys, "--from-official", odd, "--config", YAML, "--data", data, "--out", tmp_path / "r")
    assert "the schedulers record different epochs [3, 4]" in err
    finished = _variant(tmp_path / "done.pth", epoch=110)
    err = _refused(capsys, "--from-official", finished, "--config", YAML, "--data", data, "--out", tmp_path / "r")
    assert "where its official schedule of 110 epochs" in err and "give a longer --kimg to train on" in err
    assert _train("--data", data, "--out", tmp_path / "mine", "--preset", "digits-32", "--kimg", 0.016) == 0
    ours = sorted((tmp_path / "mine" / "checkpoints").glob("ckpt-*.pt"))[-1]
    capsys.readouterr()
    err = _refused(capsys, "--from-official", ours, "--data", data, "--out", tmp_path / "r")
    assert f"--from-official {str(ours)!r} is an alae_fast checkpoint; a run of `alae-fast train` continues with --resume" in err
    assert not (tmp_path / "r").exists()


def test_an_official_yaml_trains_from_scratch_in_its_epochs(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    n = len(open_dataset(str(data), 128, 3, split="train"))
    run = tmp_path / "run"
    yaml = _yaml(tmp_path / "alae-small.yaml", n)
    assert _train("--config", yaml, "--data", data, "--out", run, "--kimg", 0.016, "--seed", 4) == 0
    out = capsys.readouterr().out
    assert (f"training the official config {str(yaml)!r} from scratch as the official trainer does: epochs of {n} "
            f"images (DATASET.SIZE), 15 per level, from the YAML {str(yaml)!r}, 110 in all; global batch 8 at lod 0 "
            f"(LOD_2_BATCH_1GPU), lr 0.0015") in out
    config = json.loads((run / "config.json").read_text())
    assert config["setup"] == "official-alae-small"
    assert config["schedule"]["lod_kimg"] == [15 * n / 1000] and config["schedule"]["lod_batch"] == [8] * 6
    official = load_official(PTH, YAML).config
    for field in ("latent_size", "layer_count", "start_features", "max_features", "mapping_layers",
                  "from_rgb_lrelus", "encoder_norm_eps", "encoder_std_eps", "first_noise_shared"):
        assert config["model"][field] == getattr(official, field), field
    _, state = find_latest_checkpoint(run / "checkpoints")
    assert state["trainer"]["images_seen"] == 16
    # its own initial weights, not the fixture's
    ours, theirs = state["trainer"]["model"], load_official(PTH, YAML, ema=False).state_dict()
    assert not torch.allclose(ours["mapping.layers.0.weight"], theirs["mapping.layers.0.weight"], atol=1e-3)


@pytest.mark.parametrize("train,said", [
    ("LOD_2_BATCH_1GPU: []", "TRAIN.LOD_2_BATCH_1GPU must be a non-empty list of positive whole numbers, one per level; got []"),
    ("LOD_2_BATCH_1GPU: 8", "TRAIN.LOD_2_BATCH_1GPU must be a non-empty list of positive whole numbers"),
    ("LOD_2_BATCH_1GPU: [8, 'x']", "TRAIN.LOD_2_BATCH_1GPU must be a non-empty list of positive whole numbers"),
    ("LOD_2_BATCH_1GPU: [8, 0]", "got [8, 0]"),
    ("LEARNING_RATES: []", "TRAIN.LEARNING_RATES must be a non-empty list of positive numbers"),
    ("EPOCHS_PER_LOD: -3", "TRAIN.EPOCHS_PER_LOD must be a whole number >= 0; got -3"),
    ("TRAIN_EPOCHS: 0", "TRAIN.TRAIN_EPOCHS must be a whole number >= 1; got 0"),
])
def test_a_malformed_train_table_is_named_in_one_line(tmp_path, capsys, train, said):
    data = _folder(tmp_path / "data", 4)
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(YAML.read_text().replace("  LEARNING_RATES: [0.0015]", "") + f"  {train}\n")
    for argv in (["--from-official", PTH, "--config", yaml], ["--config", yaml]):
        err = _refused(capsys, *argv, "--data", data, "--out", tmp_path / "r")
        assert said in err and "Traceback" not in err, err


def test_load_official_names_a_malformed_train_value_too(tmp_path):
    from alae_fast.models.official_io import OfficialCheckpointError

    for train, said in (("TRAIN_EPOCHS: 0", "TRAIN.TRAIN_EPOCHS must be a whole number >= 1; got 0"),
                        ("LEARNING_RATES: []", "TRAIN.LEARNING_RATES must be a non-empty list of positive numbers"),
                        ("LOD_2_BATCH_8GPU: [64, -1]", "TRAIN.LOD_2_BATCH_8GPU must be a non-empty list")):
        yaml = tmp_path / "bad.yaml"
        yaml.write_text(YAML.read_text().replace("  LEARNING_RATES: [0.0015]", "") + f"  {train}\n")
        with pytest.raises(OfficialCheckpointError, match=re.escape(said)):
            load_official(PTH, yaml)
    # yacs refuses another type than defaults.py's: a float count or a flag that is no bool had been
    # truncated or taken as true
    for text, said in (("MODEL:\n  LAYER_COUNT: 3.7\n", "MODEL.LAYER_COUNT must be a whole number >= 0; got 3.7"),
                       ("DATASET:\n  FLIP_IMAGES: maybe\n", "DATASET.FLIP_IMAGES must be true or false; got 'maybe'")):
        yaml = tmp_path / "typed.yaml"
        yaml.write_text(text)
        with pytest.raises(OfficialCheckpointError, match=re.escape(said)):
            official_config_from_yaml(yaml)


def test_a_batch_table_the_processes_cannot_share_names_its_key():
    from alae_fast.training.options import TrainOptions
    from alae_fast.training.plan import _check_batches
    from alae_fast.training.setups import TrainSetup

    start = official_start(PTH, YAML, world_size=3)  # the 8-GPU table: 512 ... 32, not shared by 3
    setup = TrainSetup(start.name, start.config, schedule_from_config(start.config), 1.0, "x")
    with pytest.raises(ValueError, match=re.escape(
            f"TRAIN.LOD_2_BATCH_8GPU of the YAML {str(YAML)!r} (--schedule lod_batch=[...] sets another): the global "
            f"batch 512 of level 0 (4x4) is not a multiple of the world size 3")):
        _check_batches(TrainOptions(), setup, 3, start)
