"""`alae-fast evaluate` draws from the seed the run was trained with, so that it repeats the
figures of the run's own eval.json (it took seed 0, undocumented, and a run trained with --seed 2
got other sample-class figures); --seed still chooses another; a checkpoint that records no seed
takes 0. The random encoders are the same for every seed (RANDOM_ENCODER_SEED)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from alae_fast.cli import build_parser, main
from alae_fast.cli.evaluate import _training_seed
from alae_fast.inference.metrics import RANDOM_ENCODER_SEED, RANDOM_ENCODERS
from alae_fast_tests_support import TINY, one_thread

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = ["--num-fid", "40", "--ppl-samples", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits MLP trained with --seed 3, its eval.json written by training."""
    out = tmp_path_factory.mktemp("evaluate-seed") / "mlp"
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.032", "--seed", "3",
                     *TINY]) == 0
    assert (out / "eval.json").is_file()
    return out


def _evaluate(capsys, run: Path, *argv) -> dict:
    assert main(["evaluate", "--ckpt", str(run), *QUICK, "--json", "--out", str(run.parent / "e.json"), *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_repeats_the_runs_eval_json_by_default(run, capsys):
    trained = json.loads((run / "eval.json").read_text())
    metrics = _evaluate(capsys, run)
    assert metrics["seed"] == 3
    # the whole latent block: random encoders, PCA, reconstruction classes, sample classes
    assert metrics["latent"] == trained["latent"]
    assert _evaluate(capsys, run, "--seed", "3") == metrics


def test_seed_overrides_the_runs(run, capsys):
    trained = json.loads((run / "eval.json").read_text())
    metrics = _evaluate(capsys, run, "--seed", "0")
    assert metrics["seed"] == 0
    # other samples: the draws did change
    assert metrics["latent"]["sample_classes"] != trained["latent"]["sample_classes"]
    # the random-encoder baseline is the config's: the same twenty different draws whatever the seed
    rnd = metrics["latent"]["random_encoder"]
    assert rnd == trained["latent"]["random_encoder"]
    assert rnd["count"] == RANDOM_ENCODERS == 20 and len(rnd["knn1_each"]) == 20
    assert rnd["seed"] == RANDOM_ENCODER_SEED
    assert len(set(rnd["knn1_each"])) > 5, rnd["knn1_each"]  # twenty draws, not one draw twenty times
    assert rnd["knn1"] == pytest.approx(sum(rnd["knn1_each"]) / 20)


def test_the_report_says_the_seed(run, capsys):
    assert main(["evaluate", "--ckpt", str(run), *QUICK, "--out", str(run.parent / "r.json")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(", evaluation seed 3"), first


def test_seed_help_says_the_default():
    evaluate = next(a for a in build_parser()._actions if a.dest == "command").choices["evaluate"]
    seed = next(a for a in evaluate._actions if a.dest == "seed")
    assert seed.default is None
    assert "the seed the run was trained with" in seed.help and "official" in seed.help


def test_where_the_seed_is_read_from(tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    path = folder / "checkpoints" / "ckpt-0000000064.pt"

    def loaded(state):
        return SimpleNamespace(state=state, path=path)

    # the checkpoint's own record first
    (folder / "config.json").write_text(json.dumps({"options": {"seed": 5}}))
    assert _training_seed(loaded({"options": {"seed": 7}})) == 7
    # a checkpoint without it (older runs): the run folder's config.json
    assert _training_seed(loaded({})) == 5
    # neither (an official checkpoint, its folder without config.json), or a record that is no
    # seed: 0
    (folder / "config.json").unlink()
    assert _training_seed(loaded({"format": "official"})) == 0
    for bad in (True, -1, 2 ** 63, "3", 1.5, None):
        assert _training_seed(loaded({"options": {"seed": bad}})) == 0, bad
    (folder / "config.json").write_text("not json")
    assert _training_seed(loaded({})) == 0


def test_a_checkpoint_file_outside_its_folder_uses_its_own_record(run, tmp_path):
    from alae_fast.inference.loading import load_run

    ckpt = sorted((run / "checkpoints").glob("ckpt-*.pt"))[-1]
    alone = tmp_path / "alone.pt"
    shutil.copy(ckpt, alone)  # no config.json beside it: the checkpoint holds the seed
    assert _training_seed(load_run(alone)) == 3
