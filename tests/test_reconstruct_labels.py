"""What ``alae-fast reconstruct`` calls the images it shows, and where ``reconstruct`` and
``generate --seeds`` write, on tiny runs of real PNG folders:

- the run's folder changed since training: "possibly TRAINING", as ``evaluate`` says it, not
  "held-out" (even when the current held-out split holds a file the run trained on);
- a folder holding out no readable image (one image; held-out files unreadable): the training
  images, labelled "TRAINING (no usable held-out split)" as ``train`` and ``evaluate`` do, not an
  error blaming a ``--data`` the user did not pass;
- other data: ``reconstructions-<folder>.png``, the run's ``reconstructions.png`` kept;
- ``generate --seeds --grid``: the grid beside the images' folder, never in it (FID tools read
  every image there); a checkpoint still growing: files at its level's own pixels.

The held-out files are computed here independently (the MD5 rule alae_fast.data.folder documents)."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from alae_fast.cli import main
from alae_fast.inference.metrics import SPLIT_LABELS
from alae_fast_tests_support import TINY, one_thread, toy

pytestmark = pytest.mark.usefixtures("one_thread")

CHANGED = SPLIT_LABELS["changed"]  # "possibly TRAINING (the run's training folder changed since training, ...)"
TRAINING = SPLIT_LABELS["training"]  # "TRAINING (no usable held-out split)"


def _folder(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` random 32x32 grey PNGs, as a user's folder."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


def _held_out(folder: Path) -> list[Path]:
    """A tenth of the files (at least one of two or more), those whose relative path has the
    smallest MD5: the folder's held-out split."""
    files = sorted(folder.glob("*.png"))
    n = min(max(round(0.1 * len(files)), 1), len(files) - 1)
    return sorted(sorted(files, key=lambda f: hashlib.md5(f.name.encode()).hexdigest())[:n])


def _train(out: Path, data: Path) -> Path:
    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", "0.032", "--no-eval",
                     "--data", str(data), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A run of a folder of 30 random PNGs (3 held out)."""
    root = tmp_path_factory.mktemp("reconstruct-labels")
    photos = _folder(root / "photos", 30)
    return {"run": _train(root / "run", photos), "photos": photos}


def _moved_run(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``run`` and of its folder, the copy's record naming the copied folder (so that
    the copied folder can be changed without touching the module's run)."""
    config = json.loads((run / "config.json").read_text())
    photos = Path(shutil.copytree(config["data_spec"]["path"], tmp_path / "photosC"))
    copy = Path(shutil.copytree(run, tmp_path / "pc"))
    config["data_spec"]["path"] = str(photos.resolve())
    (copy / "config.json").write_text(json.dumps(config))
    for ckpt in (copy / "checkpoints").glob("*.pt"):
        state = torch.load(ckpt, weights_only=False)
        state["data_spec"] = config["data_spec"]
        torch.save(state, ckpt)
    return copy, photos


def _reconstruct(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["reconstruct", *argv]) == 0
    return capsys.readouterr().out


def _refused(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2, argv
    return capsys.readouterr().err


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_the_run_s_own_folder_unchanged_is_held_out(folder_run, capsys):
    out = _reconstruct(capsys, "--ckpt", str(folder_run["run"]), "--n", "5")
    assert "note: the data's held-out images number 3, fewer than --n 5" in out, out
    assert f"wrote 3 held-out originals beside their reconstructions G(E(x)) to " \
           f"{folder_run['run'] / 'reconstructions.png'}" in out, out
    assert "TRAINING" not in out, out


def test_a_changed_folder_is_possibly_training_as_evaluate_says(folder_run, tmp_path, capsys):
    run, photos = _moved_run(folder_run["run"], tmp_path)
    assert "wrote 3 held-out originals" in _reconstruct(capsys, "--ckpt", str(run), "--n", "5")
    trained_held = _held_out(photos)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(photos / "added.png")  # a file added since training
    out = _reconstruct(capsys, "--ckpt", str(run), "--n", "5", "--out", str(tmp_path / "r.png"))
    assert f"wrote {len(_held_out(photos))} {CHANGED} originals beside their reconstructions" in out, out
    assert "held-out originals" not in out and (tmp_path / "r.png").is_file()
    # remove a held-out file: the split now picks a file the run trained on, still "possibly TRAINING"
    (photos / "added.png").unlink()
    trained_held[0].unlink()
    now_held = _held_out(photos)
    assert set(now_held) - set(trained_held), "the test needs a training file in the current held-out split"
    out = _reconstruct(capsys, "--ckpt", str(run), "--n", "5")
    assert f"wrote {len(now_held)} {CHANGED} originals" in out, out
    assert f"to {run / 'reconstructions.png'}" in out, out  # the run's own folder: its own picture
    assert "note: the data's possibly TRAINING images number" in out, out
    # --data naming that folder says the same
    out = _reconstruct(capsys, "--ckpt", str(run), "--data", str(photos), "--n", "5")
    assert f"{CHANGED} originals" in out, out


def test_a_one_image_folder_shows_its_training_image(tmp_path, capsys):
    one = _folder(tmp_path / "one", 1)
    run = _train(tmp_path / "run", one)
    out = _reconstruct(capsys, "--ckpt", str(run), "--n", "5")
    assert f"note: the image folder {str(one.resolve())!r} holds out no image that can be read (1 image is too " \
           f"few to hold any out" in out and "showing its training images instead" in out, out
    assert f"wrote 1 {TRAINING} original beside its reconstruction G(E(x)) to {run / 'reconstructions.png'}" in out
    assert "--data:" not in out and (run / "reconstructions.png").is_file()
    assert _png(run / "reconstructions.png").ndim >= 2


def test_unreadable_held_out_files_fall_back_to_the_training_images(tmp_path, capsys):
    photos = _folder(tmp_path / "photos", 30)
    for f in _held_out(photos):  # unreadable from the start: the run trains on the rest
        f.write_bytes(b"not a png")
    run = _train(tmp_path / "run", photos)
    out = _reconstruct(capsys, "--ckpt", str(run), "--n", "4")
    assert "holds out no image that can be read (none of its 3 image files (held-out split" in out, out
    assert f"wrote 4 {TRAINING} originals beside" in out, out
    assert "held-out originals" not in out and "--data:" not in out, out
    # named with --data, the same fallback
    out = _reconstruct(capsys, "--ckpt", str(run), "--data", str(photos), "--n", "2")
    assert f"wrote 2 {TRAINING} originals beside" in out, out
    # the folder changed since (a file added): its training images are possibly TRAINING, as evaluate says
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(photos / "zzz.png")
    out = _reconstruct(capsys, "--ckpt", str(run), "--n", "2")
    assert f"wrote 2 {CHANGED} originals beside" in out, out


def test_a_folder_with_no_readable_image_names_the_folder_not_data(folder_run, tmp_path, capsys):
    run, photos = _moved_run(folder_run["run"], tmp_path)
    for f in photos.glob("*.png"):
        f.write_bytes(b"not a png")
    err = _refused(capsys, ["reconstruct", "--ckpt", str(run)])
    assert "could be read" in err and "--data" not in err, err
    # given with --data, the error names it
    err = _refused(capsys, ["reconstruct", "--ckpt", str(run), "--data", str(photos)])
    assert "error: --data: data folder" in err and "could be read" in err, err
    err = _refused(capsys, ["reconstruct", "--ckpt", str(run), "--data", str(tmp_path / "missing")])
    assert "--data" in err and "does not exist" in err, err


def test_other_data_get_their_own_picture(folder_run, tmp_path, capsys):
    run = Path(shutil.copytree(folder_run["run"], tmp_path / "run"))
    _reconstruct(capsys, "--ckpt", str(run), "--n", "2")
    own = (run / "reconstructions.png").read_bytes()
    other = _folder(tmp_path / "my photos", 6, seed=3)
    out = _reconstruct(capsys, "--ckpt", str(run), "--data", str(other), "--n", "4")
    path = run / "reconstructions-my_photos.png"
    assert f"wrote 4 unseen originals beside their reconstructions G(E(x)) to {path}\n" in out, out
    assert (run / "reconstructions.png").read_bytes() == own  # the held-out picture is kept
    assert _png(path).shape != _png(run / "reconstructions.png").shape  # 4 pairs, not 2
    out = _reconstruct(capsys, "--ckpt", str(run), "--data", str(other), "--n", "3")
    assert f"to {path} (replacing the earlier reconstructions-my_photos.png)" in out, out
    # --out keeps working as given
    out = _reconstruct(capsys, "--ckpt", str(run), "--data", str(other), "--n", "2", "--out", str(tmp_path / "x.png"))
    assert f"wrote 2 unseen originals beside their reconstructions G(E(x)) to {tmp_path / 'x.png'}" in out, out
    assert (run / "reconstructions.png").read_bytes() == own


def test_the_seeds_grid_goes_beside_the_folder(folder_run, tmp_path, capsys):
    run = Path(shutil.copytree(folder_run["run"], tmp_path / "run"))
    capsys.readouterr()
    out = tmp_path / "fid"
    assert main(["generate", "--ckpt", str(run), "--seeds", "0-2", "--outdir", str(out), "--grid"]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["seed0000.png", "seed0001.png", "seed0002.png"]
    grid = tmp_path / "fid-grid.png"
    assert f"wrote their grid to {grid} (outside the folder of the images, which FID tools read whole)" in text, text
    assert grid.is_file()
    # the default folder: <run>/generated, its grid <run>/generated-grid.png (not generated.png)
    assert main(["generate", "--ckpt", str(run), "--seeds", "4", "--grid"]) == 0
    text = capsys.readouterr().out
    assert f"to {run / 'generated'}" in text and f"wrote their grid to {run / 'generated-grid.png'}" in text, text
    assert sorted(p.name for p in (run / "generated").iterdir()) == ["seed0004.png"]
    assert not (run / "generated.png").exists()
    # --out names it, as before
    assert main(["generate", "--ckpt", str(run), "--seeds", "1,2", "--outdir", str(out), "--grid",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert f"wrote their grid to {tmp_path / 'g.png'}\n" in capsys.readouterr().out
    assert "grid.png" not in [p.name for p in out.iterdir()]


def test_the_seeds_grid_refuses_a_default_it_cannot_place(folder_run, tmp_path, capsys, monkeypatch):
    run = str(folder_run["run"])
    monkeypatch.chdir(tmp_path)
    err = _refused(capsys, ["generate", "--ckpt", run, "--seeds", "0", "--outdir", ".", "--grid"])
    assert "--grid with --outdir '.'" in err and "give --out FILE.png for the grid" in err, err
    assert not list(tmp_path.iterdir())  # refused before any image was written
    (tmp_path / "imgs-grid.png").mkdir()
    err = _refused(capsys, ["generate", "--ckpt", run, "--seeds", "0", "--outdir", "imgs", "--grid"])
    assert "--grid: the grid's default file" in err and "is a folder; give --out FILE.png" in err, err
    assert not (tmp_path / "imgs").exists()


@pytest.fixture(scope="module")
def growing_run(tmp_path_factory):
    """The toy StyleALAE (4, 8, 16 px) stopped at its 8x8 level."""
    toy()
    out = tmp_path_factory.mktemp("growing") / "toy"
    with one_thread():
        assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.024", "--no-eval",
                     "--no-progress", "--threads", "1", "--schedule", "lod_kimg=[0.016]",
                     "--schedule", "lod_batch=[8]"]) == 0
    return out


def test_a_growing_checkpoint_writes_its_level_s_own_pixels(growing_run, tmp_path, capsys):
    import alae_fast

    run = alae_fast.load(growing_run)
    level, res = run.phase.resolution, run.schedule.resolution
    assert level < res, (level, res)
    assert tuple(run.generate(2).shape[-2:]) == (level, level)
    capsys.readouterr()
    out = tmp_path / "s"
    assert main(["generate", "--ckpt", str(growing_run), "--seeds", "0,1", "--outdir", str(out), "--grid"]) == 0
    text = capsys.readouterr().out
    assert f"lod {run.phase.lod}, {level}x{level}) to {out} (the level's own pixels; the run's resolution is " \
           f"{res}x{res})" in text, text
    assert _png(out / "seed0000.png").shape[:2] == (level, level)
    # the files are what the API's generate_seeds gives
    from alae_fast.inference.pictures import to_uint8
    from alae_fast.inference.sampling import generate_seeds

    want = to_uint8(generate_seeds(run, [1])[0]).squeeze(-1)
    assert np.array_equal(_png(out / "seed0001.png"), want)
    # the grid is a preview, as the plain generate's: enlarged to the run's resolution, and says so
    assert f"wrote their grid to {tmp_path / 's-grid.png'}, each {level}x{level} image enlarged to {res}x{res}" \
           in text, text
    assert main(["generate", "--ckpt", str(growing_run), "--n", "2", "--out", str(tmp_path / "g.png")]) == 0
    assert f"{level}x{level} enlarged to {res}x{res}) to {tmp_path / 'g.png'}" in capsys.readouterr().out
