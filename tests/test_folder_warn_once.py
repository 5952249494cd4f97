"""An image folder says what loading did to its images once, however many of its splits a command
opens (evaluate opens the training split, the held-out split and all files: the greyscale
conversion of the same images was said three times), and names each unreadable file once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import alae_fast.data.folder as folder  # noqa: E402
from alae_fast.data.folder import ImageFolderDataset, split_files  # noqa: E402

SIZE = 8


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    """The once-per-process records, empty for each test (other tests of the session fill them)."""
    monkeypatch.setattr(folder, "_warned_notes", set())
    monkeypatch.setattr(folder, "_warned_skips", set())


def _colour_folder(path, n: int, broken=()):
    rng = np.random.default_rng(n)
    path.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(path / f"{i:02d}.png")
    for name in broken:
        (path / name).write_bytes(b"not an image")
    return path


def _said(splits, root, channels=1, resolution=SIZE, **options) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for split in splits:
            ImageFolderDataset(root, resolution, channels, split=split, **options)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("preload", [True, False])
def test_the_conversion_is_said_once_for_the_three_splits_evaluate_opens(tmp_path, preload):
    # each file is named once: the training split names its files, the held-out split its own
    # (the files the reported MSE is measured on), and the "all" split, whose files were all
    # named by then, says nothing
    root = _colour_folder(tmp_path / "photos", 20)
    files = sorted(root.glob("*.png"))
    train, test = split_files(files, root, "train"), split_files(files, root, "test")
    said = _said(["train", "test", "all"], root, preload=preload)
    if not preload:  # lazy: said when the first image is decoded
        assert said == []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for split in ("train", "test", "all"):
                ds = ImageFolderDataset(root, SIZE, 1, split=split, preload=False)
                ds.get_batch([0])
        said = [str(w.message) for w in caught]
    grey = [s for s in said if "converted to greyscale" in s]
    what = ("converted to greyscale (the model has 1 channel; colour differences that keep the brightness are "
            "lost): ")
    if preload:
        assert grey == [f"{root} (training split): {len(train)} images of {len(train)} are colour images and were "
                        f"{what}" + ", ".join(p.name for p in train[:5]) + f" and {len(train) - 5} more",
                        f"{root} (held-out split): {len(test)} images of {len(test)} are colour images and were "
                        f"{what}" + ", ".join(p.name for p in test)], grey
    else:  # the first decoded of each split; the "all" split's first is the training split's
        lazy = " (lazy loading: more may follow as they are decoded)"
        assert grey == [f"{root} (training split): 1 image is a colour image and was {what}{train[0].name}{lazy}",
                        f"{root} (held-out split): 1 image is a colour image and was {what}{test[0].name}{lazy}"], grey
    assert not any("said once" in s or "not named again" in s for s in said), said


def test_each_dataset_still_lists_its_own_files(tmp_path):
    root = _colour_folder(tmp_path / "photos", 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = {s: ImageFolderDataset(root, SIZE, 1, split=s) for s in ("train", "test", "all")}
    files = sorted(root.glob("*.png"))
    for split, ds in sets.items():
        assert sorted(ds.notes.to_grey) == split_files(files, root, split), split


def test_another_resolution_or_channel_count_is_said_again(tmp_path):
    root = _colour_folder(tmp_path / "photos", 6)
    assert len([s for s in _said(["all"], root) if "converted" in s]) == 1
    # enlarged: a new fact at a larger resolution, said once too
    said = _said(["all", "train"], root, resolution=2 * SIZE)
    assert len([s for s in said if "enlarged" in s]) == 1 and len([s for s in said if "converted" in s]) == 1
    assert _said(["all"], root, channels=3) == []  # colour read as colour: nothing to say


def _broken_in_both_splits(root, good: int) -> list[str]:
    """Four names of broken files which, beside ``good`` images, fall in both splits (split_files
    looks only at the paths, so the names are chosen before any file is written)."""
    goods = [root / f"{i:02d}.png" for i in range(good)]
    for k in range(1000):
        names = [f"broken{k + i}.png" for i in range(4)]
        files = sorted(goods + [root / n for n in names])
        held = {p.name for p in split_files(files, root, "test")}
        if 0 < len(held & set(names)) < 4:
            return names
    raise AssertionError("no names found")  # pragma: no cover


def test_each_unreadable_file_is_named_once(tmp_path):
    broken = _broken_in_both_splits(tmp_path / "photos", 30)
    root = _colour_folder(tmp_path / "photos", 30, broken=broken)
    said = _said(["train", "test", "all", "train"], root, channels=3)
    skips = [s for s in said if "unreadable" in s]
    # one warning for the training split's broken files, one for the held-out split's; the "all"
    # split and the training split opened again name none again, and so say nothing
    assert [s.split("(")[1].split(")")[0] for s in skips] == ["training split", "held-out split"], skips
    for name in broken:
        assert sum(name in s for s in skips) == 1, skips


def test_the_all_split_names_only_files_not_named_before(tmp_path):
    broken = _broken_in_both_splits(tmp_path / "photos", 30)
    root = _colour_folder(tmp_path / "photos", 30, broken=broken)
    train = {p.name for p in split_files(sorted(root.glob("*.png")), root, "train")}
    first_named = len(train & set(broken))
    said = [s for s in _said(["train", "all"], root, channels=3) if "unreadable" in s]
    assert len(said) == 2, said
    assert said[1].startswith(f"{root}: skipped 4 unreadable image files of 34 (all files): ")
    assert said[1].endswith(f" (and {first_named} named before)"), said[1]
    assert all(name not in said[1] for name in train & set(broken))


def test_a_jobs_warnings_are_said_by_rank_0_and_a_ranks_own_decoding_by_that_rank(recwarn):
    # under torchrun every rank scanned the same folder and warned of the same files: each line
    # came once per rank (the folder's notes, twice)
    from alae_fast.training.distributed import warnings_said_once

    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest, **kw: shown.append(str(message))
        with warnings_said_once(0):
            warnings.warn("the folder: left out 1 image file", RuntimeWarning)
        with warnings_said_once(1), warnings_said_once(1):  # nested: one
            warnings.warn("the folder: left out 1 image file", RuntimeWarning)
            warnings.warn("x.png: unreadable; using the next image instead", folder.DecodeWarning)
        warnings.warn("after: said again", RuntimeWarning)
    assert shown == ["the folder: left out 1 image file", "rank 1: x.png: unreadable; using the next image instead",
                     "after: said again"]
