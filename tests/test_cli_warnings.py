"""What the CLI says besides its results: warnings as one ``alae-fast: warning: ...`` line each
(the --data check ran before the one-line format was installed, and its warning came out in
Python's raw form, with a source line, saying "training reads" for every command), a folder's
conversion said once per command (evaluate said it for each of the three splits it opens), the
command's name said once in an error, and a run's own config.json given to --config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from alae_fast.cli import main  # noqa: E402
from alae_fast_tests_support import TINY, train_tiny_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = ["--num-fid", "40", "--ppl-samples", "2"]
RAW_WARNING = re.compile(r"\.py:\d+: \w*Warning")  # Python's own format: "FILE.py:LINE: CATEGORY: ..."


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A greyscale digits MLP of a few steps."""
    return train_tiny_run(tmp_path_factory.mktemp("cli-warnings") / "mlp")


def _folder(path: Path, n: int, colour: bool, gif: bool = True) -> Path:
    """``n`` random 32x32 PNGs (colour: RGB with channels that differ) and, with ``gif``, one GIF."""
    rng = np.random.default_rng(n + 10 * colour)
    path.mkdir(parents=True)
    for i in range(n):
        shape = (32, 32, 3) if colour else (32, 32)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path / f"{i:02d}.png")
    if gif:
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(path / "x.gif")
    return path


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _one_line_warnings(err: str, *fragments: str) -> list[str]:
    """The lines of ``err`` holding every fragment, after checking that no warning came out in
    Python's raw form (its "FILE.py:LINE: RuntimeWarning:" line and the source line after it)."""
    assert not RAW_WARNING.search(err), err
    found = [line for line in _lines(err) if all(f in line for f in fragments)]
    assert all(line.startswith("alae-fast: warning: ") for line in found), err
    return found


@pytest.mark.parametrize("command", ["reconstruct", "evaluate"])
def test_data_check_warns_in_one_line_saying_what_the_command_reads(command, run, tmp_path, capsys):
    data = _folder(tmp_path / "data", 12, colour=False)
    extra = (["--n", "2", "--out", str(tmp_path / "r.png")] if command == "reconstruct"
             else [*QUICK, "--out", str(tmp_path / "e.json")])
    assert main([command, "--ckpt", str(run), "--data", str(data), *extra]) == 0
    err = capsys.readouterr().err
    said = _one_line_warnings(err, "left out 1 image file in .gif")
    assert len(said) == 1, err
    assert f"left out 1 image file in .gif: {command} --data reads .png, .jpg, .jpeg only" in said[0], said
    assert "training reads" not in err


def test_train_data_check_warns_in_one_line(tmp_path, capsys):
    data = _folder(tmp_path / "data", 12, colour=False)
    assert main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "run"), "--data", str(data), "--kimg",
                 "0.016", "--no-eval", *TINY]) == 0
    err = capsys.readouterr().err
    said = _one_line_warnings(err, "left out 1 image file in .gif")
    assert len(said) == 1 and "train --data reads .png, .jpg, .jpeg only" in said[0], err


def test_evaluate_says_a_folders_conversion_once(run, tmp_path, capsys):
    # evaluate opens the training split, the held-out split and all files of other data: the
    # greyscale conversion of the same folder was said three times (135, 15 and 150 images)
    data = _folder(tmp_path / "colour", 20, colour=True, gif=False)
    assert main(["evaluate", "--ckpt", str(run), "--data", str(data), *QUICK, "--out", str(tmp_path / "e.json")]) == 0
    err = capsys.readouterr().err
    said = _one_line_warnings(err, "converted to greyscale")
    assert len(said) == 1, err
    assert str(data) in said[0]


def test_an_error_names_the_command_once(run, tmp_path, capsys):
    # "alae-fast style-mix: error: style-mix: this model ..." (the library names the operation too)
    rc = main(["style-mix", "--ckpt", str(run), "--out", str(tmp_path / "m.png")])
    err = _lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("alae-fast style-mix: error: this model has 1 style input"), err
    assert err[0].count("style-mix") == 1, err
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("command", ["generate", "convert"])
def test_a_runs_own_config_json_given_to_config_is_named_as_such(command, run, tmp_path, capsys):
    config = run / "config.json"
    assert json.loads(config.read_text())["setup"] == "digits-mlp"
    argv = ([command, "--ckpt", str(run), "--config", str(config), "--out", str(tmp_path / "g.png")]
            if command == "generate" else
            [command, str(tmp_path / "model.pth"), "--config", str(config), "--out", str(tmp_path / "c.pt")])
    rc = main(argv)
    err = _lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1, err
    assert f"--config {str(config)!r} is an alae-fast run's config.json" in err[0], err
    assert "official ALAE code's YAML config" in err[0] and "unknown key" not in err[0], err
    assert not (tmp_path / "g.png").exists() and not (tmp_path / "c.pt").exists()


def test_another_json_config_is_left_to_the_loader(run, tmp_path, capsys):
    # only a run's record is said as such; any other file is read (and refused) as a YAML config
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"MODEL": {"LATENT_SPACE_SIZE": 8}}))
    rc = main(["generate", "--ckpt", str(run), "--config", str(other), "--out", str(tmp_path / "g.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "run's config.json" not in err
    assert "only for checkpoints of the official ALAE code" in err, err
