"""The main job, exactly as the README runs it: `alae-fast train` with no argument.

Slow (about five minutes on 2 cores): run with `pytest -m slow`. It checks the
figures the README states for the default run (seed 0) with some room, since a run is
deterministic only for a machine and thread count: reconstructions G(E(x)) of the input's
class, the EMA encoder's latent 1-NN, its lead over the mean of twenty random encoders, every
digit class among the EMA samples; and that the run wrote what the README says it writes. On
an AMD Zen 3 (2 threads, 2026-12-07) seeds 0-3 of the preset (latent 20, 62 kimg, channels_last, R1
every second iteration) gave reconstructions 85.5 / 89.2 / 85.5 / 86.5%, 1-NN 96.3 / 95.3 / 95.3 /
96.0%, +8.5 / +7.5 / +7.5 / +8.2 points over random encoders and a rarest sample class of 7.0 /
8.2 / 6.9 / 7.4%: the issue's 80% for each seed's reconstructions and 5 points for each seed's lead
are the bounds here (85% and 95% are the means').
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alae_fast.inference.metrics import RANDOM_ENCODERS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    # the command of the environment running the tests (its bin/ need not be on PATH)
    beside = Path(sys.executable).parent / "alae-fast"
    exe = str(beside) if beside.is_file() else shutil.which("alae-fast")
    if exe is None:
        pytest.skip("the alae-fast command is not installed (pip install --no-build-isolation .)")
    out = tmp_path_factory.mktemp("default") / "run"
    # only --out and --no-progress differ from the README's command: the temporary folder,
    # and no progress bar in the captured output
    proc = subprocess.run([exe, "train", "--out", str(out), "--no-progress"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_default_run_reaches_the_readme_figures(default_run):
    out, stdout = default_run
    latent = json.loads((out / "eval.json").read_text())["latent"]
    trained, random = latent["encoder"]["knn1"], latent["random_encoder"]
    assert random["count"] == RANDOM_ENCODERS == 20 and len(random["knn1_each"]) == 20
    assert random["knn1"] == pytest.approx(sum(random["knn1_each"]) / 20)
    assert trained >= 0.94, trained
    assert trained - random["knn1"] >= 0.05, (trained, random)
    assert latent["reconstruction_class"]["reconstructions"] >= 0.80, latent["reconstruction_class"]
    assert latent["sample_classes"]["min_fraction"] >= 0.05, latent["sample_classes"]
    # the comparison with PCA is printed, not hidden
    assert "PCA (20 components)" in stdout and "trained - PCA:" in stdout and "trained - random:" in stdout


def test_default_run_writes_the_run_folder(default_run):
    out, stdout = default_run
    for name in ("config.json", "log.jsonl", "loss_curves.png", "eval.json"):
        assert (out / name).is_file(), name
    assert list((out / "images").glob("reconstructions-*.png")) and list((out / "images").glob("samples-*.png"))
    assert list((out / "checkpoints").glob("ckpt-*.pt"))
    # the preset trains channels_last with R1 every second iteration (both since 2026-12-07), and
    # config.json records them
    record = json.loads((out / "config.json").read_text())
    behaviour = record["behaviour"]
    assert behaviour["channels_last"] is True and behaviour["r1_interval"] == 2
    assert record["model"]["latent_size"] == 20  # since 2026-12-07 (was 24)
    ev = json.loads((out / "eval.json").read_text())
    assert ev["kimg"] == pytest.approx(62.0, abs=0.032) and 0.0 < ev["reconstruction_mse"] < 1.0
    assert f"wrote run folder {out}" in stdout
