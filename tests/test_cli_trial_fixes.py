"""Refusals a new user's trial found wrong or missing, each said in one line naming the argument.

(The trial found `train --kimg 1e12` training and promising to end in 450,000 years; an MNIST
folder without its labels file refused as a folder without PNG or JPEG files; `edit --latents
some.png` echoing NumPy's advice to unpickle the file; /dev/zero and a FIFO given as an image or
a checkpoint said not to exist; `python -m alae_fast.models | head` ending in a BrokenPipeError
traceback; `--out ''` called a folder; `--refine-lr 1e30` passing the parser to be refused
later in another form; and `alae-fast presets` giving bedroom-256 84925.1 kimg on one line and
84925 on the next.)
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from alae_fast.cli import main
from alae_fast.cli.parser import build_parser
from alae_fast.data import open_dataset
from alae_fast.data.mnist import find_mnist_files, is_mnist_folder, read_idx, write_idx
from alae_fast.edit.commands import load_latents
from alae_fast.errors import UserError
from alae_fast.inference.loading import load_run
from alae_fast.errors import check_regular_file
from alae_fast.inference.projection import MAX_REFINE_LR
from alae_fast.training.options import MAX_KIMG
from alae_fast.training.run import TrainOptions, run_training
from alae_fast_tests_support import TINY, train_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")

# a PNG's signature and the start of its header: enough for the first-bytes checks
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from alae_fast_tests_support import one_thread

    with one_thread():
        return train_tiny_run(tmp_path_factory.mktemp("trial") / "run")


@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


# D2: --kimg and TrainOptions.kimg have an upper bound, the one constant

def test_kimg_beyond_the_bound_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "digits-mlp", "--out", str(tmp_path / "r"), *TINY, "--kimg", "1e12"])
    assert e.value.code == 2
    line = _one_error_line(capsys)
    assert (f"argument --kimg: expected at most {MAX_KIMG:,.0f} (10 billion images, far beyond any real run), "
            f"got 1e12") in line
    assert not (tmp_path / "r").exists()


def test_kimg_bound_itself_is_accepted_and_intervals_keep_no_bound():
    args = build_parser().parse_args(["train", "--kimg", "10000000", "--checkpoint-kimg", "1e12",
                                      "--image-kimg", "1e12"])
    assert args.kimg == MAX_KIMG == 10_000_000
    assert args.checkpoint_kimg == args.image_kimg == 1e12
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--kimg", "10000000.5"])


@pytest.mark.parametrize("kimg", [1e12, MAX_KIMG * 1.0001, 10**30])
def test_run_training_refuses_the_same_kimg(kimg, tmp_path):
    with pytest.raises(ValueError, match=rf"kimg: expected at most {MAX_KIMG:,.0f} \(10 billion images"):
        run_training(TrainOptions(preset="digits-mlp", out=str(tmp_path / "r"), progress=False, kimg=kimg))
    assert not (tmp_path / "r").exists()


# D4: a folder of MNIST IDX files that is not a complete set gets the MNIST error

def _idx(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if "labels" in name:
        write_idx(folder / name, np.zeros(4, np.uint8))
    else:
        write_idx(folder / name, np.zeros((4, 28, 28), np.uint8))


@pytest.mark.parametrize("files,sub,missing", [
    (["train-images-idx3-ubyte.gz"], ".", "MNIST train labels not found"),
    (["train-labels-idx1-ubyte"], ".", "MNIST train images not found"),
    (["train-images-idx3-ubyte.gz"], "MNIST/raw", "MNIST train labels not found"),
    (["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"], "raw", "MNIST train images not found"),
])
def test_an_incomplete_mnist_folder_is_refused_as_mnist(files, sub, missing, tmp_path, capsys):
    data = tmp_path / "mnist"
    for name in files:
        _idx(data / sub, name)
    assert is_mnist_folder(data)
    assert main(["train", "--preset", "mnist-mlp", "--data", str(data), "--kimg", "1",
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert f"alae-fast train: error: --data: {missing} under {str(data)!r}" in line
    assert "PNG" not in line
    assert not (tmp_path / "r").exists()
    with pytest.raises(FileNotFoundError, match=missing):
        open_dataset(data, 28)


def test_a_folder_of_images_alone_is_no_mnist_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG_HEAD)
    (tmp_path / "notes-idx3-ubyte").write_bytes(b"")  # an IDX-like name that no MNIST file has
    assert not is_mnist_folder(tmp_path)


def test_a_complete_mnist_folder_passes_the_data_check(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        _idx(tmp_path, name)
    assert is_mnist_folder(tmp_path)
    assert find_mnist_files(tmp_path)[0].name == "train-images-idx3-ubyte.gz"
    assert len(open_dataset(tmp_path, 28)) == 4


# D6: --latents that is no .npy is said as what it is, never with NumPy's advice to unpickle

def _torch_file(path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, path)


@pytest.mark.parametrize("make,said", [
    (lambda p: p.write_bytes(PNG_HEAD), "is a PNG image, not a NumPy .npy array"),
    (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(20)), "is a JPEG image, not a NumPy .npy array"),
    (lambda p: p.write_text("0.1 0.2 0.3\n"), "is a text file, not a NumPy .npy array"),
    (lambda p: p.write_text('{"setup": 1, "model": 2, "schedule": 3}'), "is a run's config"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2])), "is a Python pickle (a legacy torch checkpoint is one)"),
    (_torch_file, "is a torch checkpoint, not a NumPy .npy array"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("a.txt", "x"), "is a zip archive, not a NumPy .npy array"),
    (lambda p: zipfile.ZipFile(p, "w").close(), "is a zip archive, not a NumPy .npy array"),
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "holds an array of Python objects, which is not loaded (unpickling could run code the file carries)"),
])
def test_latents_that_are_no_npy_are_said_as_what_they_are(make, said, tmp_path):
    path = tmp_path / "w.npy"
    make(path)
    with pytest.raises(ValueError) as e:
        load_latents(path, 8)
    msg = str(e.value)
    assert msg.startswith(f"--latents {str(path)!r} {said}"), msg
    assert "allow_pickle" not in msg and "pickle.load" not in msg and "unsafely" not in msg
    assert "\n" not in msg


def test_an_npz_and_a_cut_npy_keep_their_messages(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"is an \.npz archive; expected one array \[N, 8\]"):
        load_latents(tmp_path / "w.npz", 8)
    np.save(tmp_path / "w.npy", np.zeros((2, 8), np.float32))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "w.npy").read_bytes()[:20])
    with pytest.raises(ValueError, match="could not be read as a NumPy array"):
        load_latents(tmp_path / "cut.npy", 8)
    assert load_latents(tmp_path / "w.npy", 8).shape == (2, 8)


def test_edit_names_an_image_given_as_latents(run_dir, tmp_path, capsys):
    png = tmp_path / "some.png"
    png.write_bytes(PNG_HEAD)
    assert main(["edit", "--ckpt", str(run_dir), "--latents", str(png), "--direction", "3-8=2",
                 "--out", str(tmp_path / "e.png")]) == 2
    line = _one_error_line(capsys)
    assert (f"alae-fast edit: error: --latents {str(png)!r} is a PNG image, not a NumPy .npy array; expected the "
            f".npy file alae-fast encode writes") in line


# D8: a path that exists but is no regular file is said as what it is

def test_check_regular_file_names_the_kind(tmp_path, fifo):
    regular = tmp_path / "f"
    regular.write_bytes(b"x")
    check_regular_file(regular, "file")
    (tmp_path / "link").symlink_to(regular)
    check_regular_file(tmp_path / "link", "file")
    with pytest.raises(FileNotFoundError, match=r"^thing does not exist$"):
        check_regular_file(tmp_path / "missing", "thing")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match=r"is a symbolic link to '.*gone', which does not exist"):
        check_regular_file(tmp_path / "dangling", "thing")
    with pytest.raises(UserError, match=r"^thing is not a regular file \(a FIFO\); give one$"):
        check_regular_file(fifo, "thing", "; give one")
    with pytest.raises(UserError, match=r"^thing is not a regular file \(a folder\)$"):
        check_regular_file(tmp_path, "thing")
    if Path("/dev/null").exists():
        with pytest.raises(UserError, match=r"^thing is not a regular file \(a character device\)$"):
            check_regular_file("/dev/null", "thing")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_as_image_or_checkpoint_is_not_said_to_be_missing(run_dir, capsys):
    assert main(["reconstruct", "--ckpt", str(run_dir), "/dev/zero"]) == 2
    assert ("alae-fast reconstruct: error: image '/dev/zero' is not a regular file (a character device); give "
            "an image file") in _one_error_line(capsys)
    assert main(["generate", "--ckpt", "/dev/zero"]) == 2
    assert ("alae-fast generate: error: checkpoint '/dev/zero' is not a regular file (a character device); pass "
            "the run folder or one checkpoint file") in _one_error_line(capsys)


def test_a_fifo_is_refused_without_being_opened(run_dir, fifo, tmp_path, capsys):
    # opening a FIFO for reading waits for a writer: each of these would hang
    assert main(["reconstruct", "--ckpt", str(run_dir), str(fifo)]) == 2
    assert f"image {str(fifo)!r} is not a regular file (a FIFO)" in _one_error_line(capsys)
    with pytest.raises(UserError, match=r"checkpoint '.*pipe' is not a regular file \(a FIFO\)"):
        load_run(fifo)
    with pytest.raises(ValueError, match=r"--latents '.*pipe' is not a regular file \(a FIFO\)"):
        load_latents(fifo, 8)
    with pytest.raises(ValueError, match=r"IDX file '.*pipe' is not a regular file \(a FIFO\)"):
        read_idx(fifo)
    np.save(tmp_path / "w.npy", np.zeros((1, 8), np.float32))
    assert main(["edit", "--ckpt", str(run_dir), "--latents", str(tmp_path / "w.npy"),
                 "--direction", f"{fifo}=1", "--out", str(tmp_path / "e.png")]) == 2
    assert f"direction file {str(fifo)!r} is not a regular file (a FIFO)" in _one_error_line(capsys)
    assert main(["evaluate", "--ckpt", str(run_dir), "--inception-weights", str(fifo)]) == 2
    assert f"--inception-weights {str(fifo)!r} is not a regular file (a FIFO); expected" in _one_error_line(capsys)


def test_missing_files_are_still_said_not_to_exist(run_dir, tmp_path, capsys):
    assert main(["reconstruct", "--ckpt", str(run_dir), str(tmp_path / "none.png")]) == 2
    assert f"image {str(tmp_path / 'none.png')!r} does not exist" in _one_error_line(capsys)
    assert main(["generate", "--ckpt", str(tmp_path / "none.pt")]) == 2
    assert f"checkpoint {str(tmp_path / 'none.pt')!r} does not exist" in _one_error_line(capsys)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_latents(tmp_path / "none.npy", 8)


# D10: `python -m alae_fast.models | head` ends quietly

def test_models_table_into_a_closed_pipe_ends_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, as `| head -5` is after its lines
    try:
        # from outside the source tree: run from the checkout of a non-editable install, the
        # package warns (on stderr) that it imports the uncompiled sources
        done = subprocess.run([sys.executable, "-m", "alae_fast.models"], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=300, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == b""


# D11: wording

@pytest.mark.parametrize("argv,said", [
    (["generate", "--out", ""], "--out '' is empty; give a file name, or omit --out for the default"),
    (["generate", "--outdir", ""], "--outdir '' is empty; give a folder, or omit --outdir for the default"),
    (["generate", "--out", "  "], "--out '  ' is only spaces; give a file name, or omit --out for the default"),
    (["encode", "x.png", "--out", ""], "--out '' is empty; give a file name, or omit --out for the default"),
])
def test_an_empty_out_is_said_to_be_empty(argv, said, run_dir, capsys):
    assert main([argv[0], "--ckpt", str(run_dir), *argv[1:]]) == 2
    line = _one_error_line(capsys)
    assert f"alae-fast {argv[0]}: error: {said}" in line and "is a folder" not in line


def test_train_refuses_an_empty_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "", "--kimg", "0.016", *TINY]) == 2
    assert "--out '' is empty; give a folder, or omit --out for the default" in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["reconstruct"], ["encode", "x.png"], ["evaluate"],
                                     ["edit", "x.png", "--direction", "3-8=1"]])
@pytest.mark.parametrize("lr", ["1e30", "1000.5", "inf"])
def test_refine_lr_beyond_its_range_is_refused_by_the_parser(command, lr, capsys):
    argv = [command[0], "--ckpt", "run", *command[1:], "--refine-steps", "3", "--refine-lr", lr]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    line = _one_error_line(capsys)
    if lr == "inf":
        assert f"argument --refine-lr: expected a finite number > 0, got {lr}" in line
    else:
        assert (f"argument --refine-lr: expected a number in (0, {MAX_REFINE_LR:g}] (Adam's rate in w's units; "
                f"default 0.05), got {lr}") in line


def test_refine_lr_at_its_bound_passes_the_parser():
    args = build_parser().parse_args(["reconstruct", "--ckpt", "run", "--refine-lr", "1000"])
    assert args.refine_lr == MAX_REFINE_LR


def test_presets_say_a_run_length_as_its_description_does(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    trained = {ln.split()[0]: ln.split(", ", 1)[1].split(" kimg")[0] for ln in lines if " kimg - " in ln}
    described = {ln.split()[0]: ln.rsplit(" kimg in all", 1)[0].rsplit(" ", 1)[1]
                 for ln in lines if ln.endswith(" kimg in all")}
    assert trained["bedroom-256"] == described["bedroom-256"] == "84925"
    for name, total in described.items():
        assert trained[name] == total, name
    assert trained["digits-32"] == "62"


@pytest.mark.parametrize("call", ["load_checkpoint", "official_checkpoint", "official_config", "inception",
                                  "torchscript"])
def test_every_file_argument_says_not_a_regular_file(call):
    # the kind of D8 everywhere a file is read: a character device exists, and is not a file
    from alae_fast.errors import UserError

    dev = "/dev/zero"
    with pytest.raises(UserError, match=r"'/dev/zero' is not a regular file \(a character device\)"):
        if call == "load_checkpoint":
            from alae_fast.training.checkpoint import load_checkpoint
            load_checkpoint(dev)
        elif call == "official_checkpoint":
            from alae_fast.models.official_io import read_official_checkpoint
            read_official_checkpoint(dev)
        elif call == "official_config":
            from alae_fast.models.official_io import read_official_yaml
            read_official_yaml(dev)
        elif call == "inception":
            from alae_fast.eval.fid import _load_state_dict
            _load_state_dict(dev)
        else:
            from alae_fast.eval.fid import InceptionTorchScript
            InceptionTorchScript(dev)
