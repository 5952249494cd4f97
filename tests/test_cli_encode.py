"""`alae-fast encode`: the latents of image files as one .npy, the rows what `LoadedRun.encode`
gives for the same files (a new-user trial found no command-line way to save them)."""

from __future__ import annotations

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
Image = pytest.importorskip("PIL.Image")

import torch  # noqa: E402

from alae_fast.cli import main  # noqa: E402
from alae_fast.data import load_digits  # noqa: E402
from alae_fast.inference.loading import load_run  # noqa: E402
from alae_fast.inference.pixels import load_image_files  # noqa: E402
from alae_fast_tests_support import one_thread, train_tiny_run  # noqa: E402


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("encode")
    train_tiny_run(root / "run")
    x, _ = load_digits("test", 32)
    files = []
    for i, size in enumerate((32, 48, 20)):  # other sizes: center-cropped and resized as everywhere
        files.append(root / f"d{i}.png")
        img = Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).resize((size, size))
        img.save(files[-1])
    return root / "run", [str(f) for f in files]


def test_encode_writes_what_the_api_encodes(run_and_images, tmp_path, capsys):
    run_dir, files = run_and_images
    out = tmp_path / "sub" / "w.npy"  # a folder that does not exist yet is made
    with one_thread():
        assert main(["encode", "--ckpt", str(run_dir), *files[::-1], "--out", str(out)]) == 0
    assert f"wrote the latents of 3 images (3 x 8, float32, in the order given) to {out}" in capsys.readouterr().out
    w = np.load(out)
    run = load_run(run_dir)
    with torch.no_grad(), one_thread(), pytest.warns(RuntimeWarning, match="enlarged"):  # the 20 px file, as the CLI said
        expected = run.encode(load_image_files(files[::-1], run.schedule)).numpy()
    assert w.dtype == np.float32 and w.shape == (3, 8)
    assert np.array_equal(w, expected)
    assert not np.allclose(w[0], w[1])  # other images, other latents: the order is the files'


def test_encode_defaults_into_the_run_folder(run_and_images, capsys):
    run_dir, files = run_and_images
    with one_thread():
        assert main(["encode", "--ckpt", str(run_dir), files[0]]) == 0
    assert np.load(run_dir / "latents.npy").shape == (1, 8)


@pytest.mark.parametrize("bad,said", [
    (["--out", "{tmp}/w.txt"], "the latents are written in NumPy's .npy format; give a name ending in .npy"),
    (["--out", "{tmp}"], "is a folder; give a file name"),
    (["{tmp}/missing.png"], "does not exist"),
])
def test_encode_refuses_what_it_cannot_do(run_and_images, tmp_path, capsys, bad, said):
    run_dir, files = run_and_images
    argv = ["encode", "--ckpt", str(run_dir), files[0], *[a.format(tmp=tmp_path) for a in bad]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob("*.txt"))
