"""The training's reconstruction picture (images/reconstructions-*.png): its originals spread
over the held-out split (the training images only where there is none), said in its titles,
chosen without a random number. A trial's picture showed the first 16 training files by name,
all crops of one photo, and did not say which split they came from."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from alae_fast.training.pictures import (reconstruction_images, reconstruction_titles, spread_indices)

Image = pytest.importorskip("PIL.Image")


def test_spread_indices():
    assert spread_indices(203, 4) == [0, 50, 101, 152]
    assert spread_indices(5, 16) == [0, 1, 2, 3, 4] and spread_indices(0, 16) == []
    picked = spread_indices(1000)
    assert len(picked) == 16 == len(set(picked)) and picked == sorted(picked) and picked[-1] >= 900
    with pytest.raises(ValueError):
        spread_indices(5, 0)


def _states():
    return (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


def _same_states(a, b):
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_held_out_images_spread_over_the_folder_without_a_random_draw(tmp_path):
    from alae_fast.data import open_dataset

    # 200 files (20 held out) named so that the first 16 by name are crops of one photo
    for k in range(200):
        Image.fromarray(np.full((8, 8, 3), k, np.uint8)).save(tmp_path / f"img{k:03d}.png")
    train = open_dataset(str(tmp_path), 8, 3, split="train")
    before = _states()
    x, split = reconstruction_images(str(tmp_path), 8, 3, train)
    assert _same_states(before, _states())  # the training's random streams untouched
    test = open_dataset(str(tmp_path), 8, 3, split="test")
    assert split == "held-out" and len(test) >= 16 and x.shape[0] == 16
    torch.testing.assert_close(x, test.get_batch(torch.tensor(spread_indices(len(test))))[0])
    assert reconstruction_titles(split) == ("held-out x", "G(E(x))")
    # a folder of 60 holds out 6, under two rows: 16 training images instead, said so
    few = tmp_path / "few"
    few.mkdir()
    for k in range(60):
        Image.fromarray(np.full((8, 8, 3), 4 * k, np.uint8)).save(few / f"img{k:03d}.png")
    train = open_dataset(str(few), 8, 3, split="train")
    assert 0 < len(open_dataset(str(few), 8, 3, split="test")) < 8
    x, split = reconstruction_images(str(few), 8, 3, train)
    assert split == "training" and x.shape[0] == 16
    torch.testing.assert_close(x, train.get_batch(torch.tensor(spread_indices(len(train))))[0])
    # a folder too small to hold any image out: the training images, said so
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(small / "only.png")
    one = open_dataset(str(small), 8, 3, split="train")
    x, split = reconstruction_images(str(small), 8, 3, one)
    assert split == "training" and x.shape[0] == 1
    assert reconstruction_titles(split) == ("training x", "G(E(x))")


def test_embedded_digits_show_their_held_out_split():
    from alae_fast.data import open_dataset

    train = open_dataset(None, 16, 1, split="train")
    before = _states()
    x, split = reconstruction_images(None, 16, 1, train)
    assert _same_states(before, _states())
    test = open_dataset(None, 16, 1, split="test")
    assert split == "held-out" and x.shape == (16, 1, 16, 16)
    torch.testing.assert_close(x, test.get_batch(torch.tensor(spread_indices(len(test))))[0])


def test_training_picture_shows_the_held_out_split(tmp_path, monkeypatch):
    import alae_fast.training.run as training_run
    from alae_fast.cli import main
    from alae_fast_tests_support import toy

    toy()

    titled = []
    real = training_run.save_pairs_grid

    def recording(originals, reconstructions, path, **kw):
        titled.append(kw.get("titles", True))
        return real(originals, reconstructions, path, **kw)

    monkeypatch.setattr(training_run, "save_pairs_grid", recording)
    assert main(["train", "--preset", "toy-pg", "--out", str(tmp_path / "run"), "--kimg", "0.032", "--no-progress",
                 "--no-eval", "--threads", "1"]) == 0
    assert titled and all(tuple(t) == ("held-out x", "G(E(x))") for t in titled), titled
