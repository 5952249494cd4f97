"""A folder's held-out split (disjoint, a fixed fraction, independent of listing order) and the
detection of its channels from the files' headers."""

from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
from PIL import Image

from alae_fast.data import HOLDOUT_FRACTION, ImageFolderDataset, folder_channels, open_dataset, split_files


def _write(folder: Path, names, mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for n in names:
        shape = (12, 10, 3) if mode == "RGB" else (12, 10)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / n)
    return folder


def test_split_is_disjoint_a_fixed_fraction_and_order_free(tmp_path):
    root = _write(tmp_path / "d", [f"a{i:03d}.png" for i in range(47)] + ["sub/b.png"] * 0)
    _write(root / "sub", ["b1.png", "b2.jpg", "b3.jpeg"])
    files = sorted(p for p in root.rglob("*") if p.is_file())
    train, test = split_files(files, root, "train"), split_files(files, root, "test")
    assert len(test) == round(HOLDOUT_FRACTION * 50) == 5
    assert set(train).isdisjoint(test) and sorted(train + test) == files
    assert split_files(list(reversed(files)), root, "test") == list(reversed(test))
    assert split_files(files, root, "all") == files
    # adding files moves few of the held-out ones (the split depends on each path only)
    _write(root, [f"z{i}.png" for i in range(10)])
    more = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(set(split_files(more, root, "test")) & set(test)) >= 3
    ds_train, ds_test = open_dataset(root, 8), open_dataset(root, 8, split="test")
    assert len(ds_train) + len(ds_test) == len(more) == len(ImageFolderDataset(root, 8))
    assert set(ds_train.files).isdisjoint(ds_test.files) and ds_test.split == "test"


def test_split_edge_cases_and_errors(tmp_path):
    one = _write(tmp_path / "one", ["x.png"])
    assert len(open_dataset(one, 8, split="train")) == 1
    with pytest.raises(ValueError, match="too few"):
        open_dataset(one, 8, split="test")
    two = _write(tmp_path / "two", ["x.png", "y.png"])
    assert len(open_dataset(two, 8, split="test")) == 1 and len(open_dataset(two, 8)) == 1
    files = sorted(two.iterdir())
    with pytest.raises(ValueError, match="split"):
        split_files(files, two, "val")
    with pytest.raises(ValueError, match="fraction"):
        split_files(files, two, "test", fraction=1.0)


def test_folder_channels_from_headers(tmp_path):
    assert folder_channels(_write(tmp_path / "grey", ["a.png", "b.png"], mode="L")) == 1
    assert folder_channels(_write(tmp_path / "rgb", ["a.jpg"])) == 3
    mixed = _write(tmp_path / "mixed", ["a.png"], mode="L")
    _write(mixed, ["b.png"])
    assert folder_channels(mixed) == 3
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    _write(tmp_path / "bad", ["y.png"], mode="L")
    assert folder_channels(tmp_path / "bad") == 1
    with pytest.raises(FileNotFoundError):
        folder_channels(tmp_path / "missing")
    # colour photos sorted after many greyscale images still make the folder colour
    late = _write(tmp_path / "late", [f"a{i:03d}.png" for i in range(70)], mode="L")
    _write(late, ["z.jpg"])
    assert folder_channels(late) == 3
    assert folder_channels(late, max_files=64) == 1  # only when asked to look at fewer
    # nothing readable: said, not called greyscale
    (tmp_path / "allbad").mkdir()
    for name in ("x.png", "y.jpg"):
        (tmp_path / "allbad" / name).write_bytes(b"not an image")
    with pytest.raises(ValueError, match="none of its 2 image files could be read"):
        folder_channels(tmp_path / "allbad")
