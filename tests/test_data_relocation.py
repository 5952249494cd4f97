"""A run's image folder moved elsewhere (``train --resume --data NEWPATH``: the same files are
accepted, bit-identically; other files are refused, saying what differs), and run folders inside
the data (the folder scan skips them, so a run never trains on its own pictures)."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
import torch
from PIL import Image

from alae_fast.cli import main
from alae_fast.data import find_image_files, split_files
from alae_fast.errors import UserError
from alae_fast.inference.loading import load_run, run_data
from alae_fast.training.checkpoint import list_checkpoints, load_checkpoint
from alae_fast.training.run import TrainOptions, run_training
from alae_fast_tests_support import TINY, assert_same_training_state, one_thread, toy

pytestmark = pytest.mark.usefixtures("one_thread")

_BASE = dict(preset="toy-pg", progress=False, evaluate=False, checkpoint_kimg=0.016, image_kimg=1000.0, keep=100,
             seed=1, schedule_overrides={"lod_kimg": [0.016], "lod_batch": [8]})


def _folder(path: Path, n: int = 20, sub: str | None = None) -> Path:
    """``n`` random greyscale 16x16 PNGs in ``path`` (half of them in ``path/sub`` when given)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        where = path / sub if sub is not None and i % 2 else path
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(where / f"img{i:03d}.png")
    return path


def _last(out: Path) -> dict:
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """A run of 0.048 kimg on a folder with a sub-folder, checkpointed every 0.016 kimg."""
    toy()
    root = tmp_path_factory.mktemp("straight")
    data = _folder(root / "photosA", sub="more")
    with one_thread():
        run_training(TrainOptions(out=str(root / "run"), data=str(data), kimg=0.048, **_BASE))
    return root


def _interrupted_copy(straight: Path, dest: Path) -> Path:
    """The straight run's folder as if it had stopped after its first checkpoint (0.016 kimg)."""
    out = dest / "run"
    shutil.copytree(straight / "run", out)
    for step, path in list_checkpoints(out / "checkpoints"):
        if step > 16:
            path.unlink()
    return out


# --- defect 1: a moved folder -------------------------------------------------------------------

def test_resume_from_a_moved_folder_continues_bit_identically_and_records_the_new_place(straight, tmp_path,
                                                                                       capsys):
    out = _interrupted_copy(straight, tmp_path)
    old = tmp_path / "photosA"
    shutil.copytree(straight / "photosA", old)
    ckpt = list_checkpoints(out / "checkpoints")[-1][1]
    state = torch.load(ckpt, weights_only=True)
    state["data_spec"] = {"kind": "folder", "path": str(old.resolve())}  # trained on `old`
    torch.save(state, ckpt)
    new = tmp_path / "mnt" / "photosB"
    new.parent.mkdir()
    old.rename(new)
    # gone: the line asks for --data ...
    with pytest.raises(UserError, match="which no longer exists; pass --data PATH"):
        run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, **_BASE))
    # ... and --data naming the same files in their new place is taken, with one line
    capsys.readouterr()
    run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, data=str(new), **_BASE))
    said = [s for s in capsys.readouterr().out.splitlines() if "now read from" in s]
    assert said == [f"note: --data: the run's data are now read from the image folder {str(new.resolve())!r}, which "
                    f"holds the same 20 image files as {str(old.resolve())!r} where it was trained (checked: their "
                    f"names, sizes and the bytes of 16 sampled files); the run now records this place"]
    assert_same_training_state(_last(out), _last(straight / "run"))
    # the run records the new place: config.json, its checkpoints, the commands on it
    spec = {"kind": "folder", "path": str(new.resolve())}
    assert json.loads((out / "config.json").read_text())["data_spec"] == spec and _last(out)["data_spec"] == spec
    assert run_data(load_run(out))[0] == str(new.resolve())
    capsys.readouterr()
    run_training(TrainOptions(out=str(out), kimg=0.064, resume=True, **_BASE))
    assert f"using the run's training data, the image folder {str(new.resolve())!r}" in capsys.readouterr().out


def test_a_finished_run_resumed_from_a_moved_folder_records_it_in_its_checkpoint(straight, tmp_path):
    """A resume that trains nothing writes no checkpoint of its own: the one it resumed from is
    rewritten with the new place, its training state untouched."""
    out = tmp_path / "run"
    shutil.copytree(straight / "run", out)
    new = tmp_path / "elsewhere"
    shutil.copytree(straight / "photosA", new)
    before = _last(out)
    run_training(TrainOptions(out=str(out), resume=True, data=str(new), **_BASE))  # already at 0.048 kimg
    after = _last(out)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [16, 32, 48]
    assert after["data_spec"] == {"kind": "folder", "path": str(new.resolve())}
    assert_same_training_state(after, before)
    assert run_data(load_run(out))[0] == str(new.resolve())


def test_resume_refuses_a_new_place_with_other_files(straight, tmp_path):
    out = _interrupted_copy(straight, tmp_path)
    src = straight / "photosA"

    def refused(folder: Path, *expected: str) -> str:
        with pytest.raises(UserError) as e:
            run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, data=str(folder), **_BASE))
        msg = str(e.value)
        assert msg.startswith(f"--resume --data {str(folder)!r}: the run was trained on the image folder"), msg
        assert all(s in msg for s in expected), msg
        return msg

    # one file fewer, the old folder still there: the file is named
    fewer = tmp_path / "fewer"
    shutil.copytree(src, fewer)
    (fewer / "img004.png").unlink()
    refused(fewer, "20 image files there, 19 here", "missing here: img004.png")
    # as many files, one under another name; the old folder still there: both named
    renamed = tmp_path / "renamed"
    shutil.copytree(src, renamed)
    (renamed / "img004.png").rename(renamed / "other.png")
    refused(renamed, "20 image files in both, but under other paths relative to the folder",
            "missing here: img004.png", "not in the run's data: other.png")
    # a sub-folder flattened: the same names, other relative paths (the split hashes those)
    flat = tmp_path / "flat"
    shutil.copytree(src, flat)
    for f in (flat / "more").iterdir():
        f.rename(flat / f.name)
    (flat / "more").rmdir()
    refused(flat, "20 image files in both", "missing here: more/img001.png")
    # the old folder gone: the recorded file list still tells
    gone = straight / "photosA"
    hidden = straight / "photosA.hidden"
    gone.rename(hidden)
    try:
        msg = refused(fewer, "20 image files there, 19 here")
        assert "missing here" not in msg
    finally:
        hidden.rename(gone)
    # not an image folder at all: the kinds differ
    from alae_fast.data import write_idx

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    write_idx(mnist / "train-images-idx3-ubyte", np.zeros((20, 28, 28), np.uint8))
    write_idx(mnist / "train-labels-idx1-ubyte", np.zeros(20, np.uint8))
    with pytest.raises(UserError, match=r"^--resume --data: the run was trained on the image folder .*, not the "
                                        r"MNIST folder"):
        run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, data=str(mnist), **_BASE))
    # nothing of the refused attempts reached the run: it resumes as before
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [16]


def test_resume_refuses_a_new_place_whose_files_give_other_training_images(straight, tmp_path):
    """The same file names, one of the training split no longer decodes: the stream's length differs.
    A run that recorded no file list (made before runs did), its old folder gone, is judged by it alone."""
    out = _interrupted_copy(straight, tmp_path)
    ckpt = list_checkpoints(out / "checkpoints")[-1][1]
    state = torch.load(ckpt, weights_only=True)
    state.pop("data_content", None)
    state["data_spec"] = {"kind": "folder", "path": str(tmp_path / "gone")}
    torch.save(state, ckpt)
    new = tmp_path / "new"
    shutil.copytree(straight / "photosA", new)
    train = split_files(find_image_files(new), new, "train")
    train[0].write_bytes(b"not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unreadable file's own warning
        with pytest.raises(UserError, match=r"^--resume --data .*: the run's data stream was saved for 18 training "
                                            r"images, this data gives 17"):
            run_training(TrainOptions(out=str(out), kimg=0.048, resume=True, data=str(new), **_BASE))


def test_cli_resume_from_a_moved_folder(tmp_path, capsys):
    data = _folder(tmp_path / "photosA")
    out = tmp_path / "runs" / "mv"
    args = ["--no-eval", "--no-progress", "--threads", "1"]
    assert main(["train", "--preset", "digits-mlp", "--data", str(data), "--out", str(out), "--kimg", "0.032",
                 *TINY, "--no-eval"]) == 0
    data.rename(tmp_path / "photosB")
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", *args]) == 2
    assert "pass --data PATH" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.048", "--data", str(tmp_path / "photosB"),
                 *args]) == 0
    assert "the run's data are now read from the image folder" in capsys.readouterr().out
    assert main(["reconstruct", "--ckpt", str(out), "--n", "2"]) == 0
    assert f"the image folder {str((tmp_path / 'photosB').resolve())!r}" in capsys.readouterr().out
    shutil.copytree(tmp_path / "photosB", tmp_path / "photosC")
    (tmp_path / "photosC" / "img000.png").unlink()
    assert main(["train", "--resume", "--out", str(out), "--kimg", "0.064", "--data", str(tmp_path / "photosC"),
                 *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume --data" in err[0] and "20 image files there, 19 here" in err[0], err


# --- defect 2: run folders inside the data ----------------------------------------------------------

def is_run_folder(path: Path) -> bool:
    from alae_fast.data.folder import is_run_folder as rule  # here: without it, each test fails on its own

    return rule(path)


def _fake_run_folder(path: Path, marker: str = "checkpoints") -> Path:
    (path / "images").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"setup": "digits-mlp", "schedule": {}, "data_spec": None}))
    if marker == "checkpoints":
        (path / "checkpoints").mkdir()
    else:
        (path / "log.jsonl").write_text("")
    for name in ("images/samples-0000000032.png", "images/reconstructions-0000000032.png", "loss_curves.png"):
        Image.new("L", (8, 8)).save(path / name)
    return path


def test_the_folder_scan_skips_run_folders_and_says_so_once(tmp_path):
    data = _folder(tmp_path / "photos", sub="sub")
    before = find_image_files(data)
    assert before == sorted(p for p in data.rglob("*") if p.suffix == ".png")  # no run folder: as ever
    held = split_files(before, data, "test")
    _fake_run_folder(data / "runs" / "a")
    _fake_run_folder(data / "sub" / "b", marker="log")
    # folders that only look a little like runs are data
    (data / "notes").mkdir()
    (data / "notes" / "config.json").write_text(json.dumps({"camera": "x"}))
    (data / "notes" / "log.jsonl").write_text("")
    Image.new("L", (8, 8)).save(data / "notes" / "n.png")
    (data / "half").mkdir()
    (data / "half" / "config.json").write_text(json.dumps({"setup": "s", "schedule": {}}))
    Image.new("L", (8, 8)).save(data / "half" / "h.png")
    assert is_run_folder(data / "runs" / "a") and is_run_folder(data / "sub" / "b")
    assert not is_run_folder(data / "notes") and not is_run_folder(data / "half") and not is_run_folder(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = find_image_files(data)
        assert find_image_files(data) == files  # scanned again: said once
    assert files == sorted(before + [data / "half" / "h.png", data / "notes" / "n.png"])
    assert split_files(before, data, "test") == held
    said = [str(w.message) for w in caught]
    assert said == [f"{data}: skipped 6 image files of 2 alae-fast run folders (a run's own pictures are not "
                    f"data): runs/a (3), sub/b (3)"], said
    # the data folder itself a run folder: refused as one, not as a folder without images
    with pytest.raises(ValueError, match=r"data folder '.*a' is an alae-fast run folder: a run's own pictures are "
                                         r"not data; give the folder of images to train on \(a run is read with --ckpt\)"):
        find_image_files(data / "runs" / "a")


def test_a_run_inside_its_data_never_trains_on_its_own_pictures(tmp_path, monkeypatch, capsys):
    data = _folder(tmp_path / "selfdata")
    monkeypatch.chdir(data)
    assert main(["train", "--preset", "digits-mlp", "--data", ".", "--kimg", "0.032", "--image-kimg", "0.016",
                 *TINY, "--no-eval"]) == 0
    assert "note: --out 'runs/digits-mlp' lies inside --data '.'" in capsys.readouterr().out
    run = data / "runs" / "digits-mlp"
    assert list((run / "images").glob("*.png")) and is_run_folder(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert find_image_files(data) == sorted(data.glob("img*.png"))
    # the resume read 20 files where the run had 20, not those plus its pictures
    assert main(["train", "--resume", "--out", "runs/digits-mlp", "--kimg", "0.048", "--no-eval", "--no-progress",
                 "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "18 training images, 2 held out" in out
    # the held-out split reconstruct takes is the data's own
    assert main(["reconstruct", "--ckpt", str(run), "--n", "2"]) == 0
    capsys.readouterr()
    held = split_files(find_image_files(data), data, "test")
    assert all(f.parent == data for f in held)
    # the run folder given as --data is refused by name, with the data it was trained on
    assert main(["train", "--preset", "digits-mlp", "--data", str(run), "--out", str(tmp_path / "again"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"is an alae-fast run folder, trained on {str(data)!r}" in err and "--data" in err, err


def test_resume_refuses_its_own_folder_changed_in_place(tmp_path):
    # the same path with other files fell through to the stream's "dataset of N items" error,
    # which named neither the folder nor what changed
    data = _folder(tmp_path / "data")
    out = tmp_path / "run"
    run_training(TrainOptions(out=str(out), data=str(data), kimg=0.016, **_BASE))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(data / "new.png")
    with pytest.raises(UserError, match=r"--resume: the run's training data, the image folder .*data' \(where its "
                                        r"checkpoint records them\), changed since the run began "
                                        r"\(20 image files then, 21 now\)"):
        run_training(TrainOptions(out=str(out), resume=True, kimg=0.032, **_BASE))
    (data / "new.png").unlink()
    (data / "img000.png").rename(data / "renamed.png")
    with pytest.raises(UserError, match=r"\(20 image files then and now, under other names\)"):
        run_training(TrainOptions(out=str(out), resume=True, kimg=0.032, **_BASE))
    (data / "renamed.png").rename(data / "img000.png")
    run_training(TrainOptions(out=str(out), resume=True, kimg=0.032, **_BASE))  # as it was: it continues
    assert _last(out)["trainer"]["images_seen"] == 32
