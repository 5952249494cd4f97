"""Four small CLI fixes:

- the advice to refit directions for a checkpoint other than the run's newest names an --out
  folder of its own (``alae-fast directions --ckpt OLDER`` would replace the newest one's in the
  run's directions/), and ``directions`` says so when it has just done that;
- ``edit`` warns of a direction whose amount moves w far beyond the spread of w (below the
  ±10000 refusal, yet a strip of saturated blobs);
- ``evaluate`` of a run trained on a one-image folder skips FID, says why, and reports the rest;
- ``generate --seeds --grid`` says when it replaces an earlier grid.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")

from PIL import Image  # noqa: E402

from alae_fast.cli import main  # noqa: E402
from alae_fast_tests_support import TINY, one_thread, ramp_png  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(out: Path, *extra: str) -> Path:
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.032", "--no-eval", *extra,
                     *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny digits run (0.032 kimg)."""
    return _train(tmp_path_factory.mktemp("small-fixes") / "run")


# --- 1: refitting directions for an older checkpoint --------------------------------------------

def test_the_advice_for_an_older_checkpoint_names_a_folder_of_its_own(run, tmp_path, capsys):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    with one_thread():
        assert main(["train", "--resume", "--out", str(r), "--kimg", "0.064", "--no-eval", "--no-progress",
                     "--threads", "1"]) == 0
        older, newest = r / "checkpoints" / "ckpt-0000000032.pt", sorted((r / "checkpoints").glob("ckpt-*.pt"))[-1]
        assert older.is_file() and newest.name == "ckpt-0000000064.pt"
        # the run's directions/, fitted on its newest checkpoint
        assert main(["directions", "--ckpt", str(r)]) == 0
    capsys.readouterr()
    img = ramp_png(tmp_path)
    given = r / "directions" / "direction_3-8.npy"
    own = r / f"directions-{older.stem}"

    # the older checkpoint with the newest one's file: refit into a folder of its own, not directions/
    assert main(["edit", "--ckpt", str(older), str(img), "--direction", f"{given}=2", "--out",
                 str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert "fitted by alae-fast directions on ckpt-0000000064.pt (0.064 kimg)" in err, err
    assert (f"refit with alae-fast directions --ckpt {older} --out {own}, then edit with --directions {own}; not "
            f"into the run's directions/, which holds its newest checkpoint's, {newest.name})") in err, err

    # the newest: no warning
    assert main(["edit", "--ckpt", str(r), str(img), "--direction", f"{given}=2", "--out",
                 str(tmp_path / "n.png")]) == 0
    assert "warning" not in capsys.readouterr().err

    # the mistake the old advice led to: the older checkpoint's directions over the newest one's, said loudly
    with one_thread():
        assert main(["directions", "--ckpt", str(older)]) == 0
    out = capsys.readouterr().out
    assert ("replacing the earlier 45 files of those names fitted on ckpt-0000000064.pt (0.064 kimg), another "
            "checkpoint: the run's NEWEST, ckpt-0000000064.pt, which edit and serve load for --ckpt") in out, out
    assert f"give --out {own} and edit with --directions {own}" in out, out

    # now the newest warns: the plain advice, its own directions/ being the right place
    assert main(["edit", "--ckpt", str(r), str(img), "--direction", f"{given}=2", "--out",
                 str(tmp_path / "n2.png")]) == 0
    err = capsys.readouterr().err
    assert f"used as given (refit with alae-fast directions --ckpt {r})" in err, err
    assert "--out" not in err, err

    # the newest refitting over the older one's: "another checkpoint", no more
    with one_thread():
        assert main(["directions", "--ckpt", str(r)]) == 0
    out = capsys.readouterr().out
    assert "fitted on ckpt-0000000032.pt (0.032 kimg), another checkpoint than this one;" in out, out
    assert "NEWEST" not in out


# --- 2: a direction far longer than fitted ones ----------------------------------------------------

def test_a_long_direction_below_the_refusal_is_warned_of(run, tmp_path, capsys):
    from alae_fast.inference.loading import load_run

    latent = int(load_run(run).model.latent_size)
    img = ramp_png(tmp_path)
    np.save(tmp_path / "d.npy", np.full(latent, 1e3))
    assert main(["edit", "--ckpt", str(run), str(img), "--direction", f"{tmp_path / 'd.npy'}=2", "--out",
                 str(tmp_path / "far.png")]) == 0
    err = capsys.readouterr().err
    length = f"{np.sqrt(latent) * 1e3:.3g}"
    assert f"(direction file '{tmp_path / 'd.npy'}') has length {length}: amount 2 moves w by" in err, err
    assert "times the spread of w here" in err and "give a smaller amount" in err and "(d / |d|)" in err, err
    assert (tmp_path / "far.png").is_file()
    # a unit direction at the same amount: no word
    np.save(tmp_path / "u.npy", np.full(latent, 1 / np.sqrt(latent)))
    assert main(["edit", "--ckpt", str(run), str(img), "--direction", f"{tmp_path / 'u.npy'}=2", "--out",
                 str(tmp_path / "near.png")]) == 0
    assert "warning" not in capsys.readouterr().err


# --- 3: evaluate of a one-image folder -------------------------------------------------------------

def test_evaluate_of_a_one_image_run_skips_fid_and_reports_the_rest(tmp_path, capsys):
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(one / "000.png")
    r = _train(tmp_path / "run", "--data", str(one))
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(r), "--ppl-samples", "2", "--json"]) == 0
    captured = capsys.readouterr()
    m = json.loads(captured.out)
    assert m["fid_generated"] is None and m["fid_reconstructed"] is None
    assert "gives 1 real image, and FID compares sets of at least 2" in m["fid_skipped"], m
    assert m["reconstruction_images"] == 1 and np.isfinite(m["reconstruction_mse"])
    assert np.isfinite(m["ppl_full"]) and np.isfinite(m["ppl_end"])
    assert captured.err.count("FID skipped") == 1 and "give --data with at least 2 images" in captured.err, \
        captured.err
    assert json.loads((r / "evaluate.json").read_text())["fid_skipped"] == m["fid_skipped"]
    # the report: FID said skipped, the other lines as ever
    assert main(["evaluate", "--ckpt", str(r), "--ppl-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "FID:                     skipped (" in out and "reconstruction MSE" in out and "PPL in W" in out, out


# --- 4: generate's grid replaced ---------------------------------------------------------------------

def test_generate_says_when_it_replaces_its_grid(run, tmp_path, capsys):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    assert main(["generate", "--ckpt", str(r), "--seeds", "0-3", "--grid"]) == 0
    assert "replacing" not in capsys.readouterr().out
    assert main(["generate", "--ckpt", str(r), "--seeds", "0-3", "--grid"]) == 0
    out = capsys.readouterr().out
    assert f"wrote their grid to {r / 'generated-grid.png'}" in out and out.rstrip().endswith(
        ", replacing the earlier one"), out
