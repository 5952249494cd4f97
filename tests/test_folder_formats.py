"""A folder scan says which image files it leaves out for their format (a new-user trial's
WebP, BMP and TIFF files were passed over in silence, while `reconstruct` and `serve` read
WebP and BMP), and the files it takes are the same as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
Image = pytest.importorskip("PIL.Image")

from alae_fast.data.folder import find_image_files  # noqa: E402


def _save(path, fmt):
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(path, format=fmt)


def test_other_formats_are_named_once_and_left_out(tmp_path):
    (tmp_path / "sub").mkdir()
    for name, fmt in (("a.png", "PNG"), ("b.JPG", "JPEG"), ("sub/c.jpeg", "JPEG")):
        _save(tmp_path / name, fmt)
    for name, fmt in (("d.webp", "WEBP"), ("e.BMP", "BMP"), ("sub/f.tif", "TIFF"), ("g.gif", "GIF"),
                      ("h.tiff", "TIFF")):
        _save(tmp_path / name, fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = find_image_files(tmp_path)
        again = find_image_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.png", "b.JPG", "sub/c.jpeg"]
    assert again == files
    said = [str(w.message) for w in caught]
    assert len(said) == 1, said
    assert ("left out 5 image files in .bmp, .gif, .tif, .tiff, .webp: the image-folder dataset reads .png, .jpg, .jpeg only"
            in said[0]), said
    assert "d.webp, e.BMP, g.gif and 2 more" in said[0], said


def test_a_folder_of_only_other_formats_is_refused_after_naming_them(tmp_path):
    _save(tmp_path / "only.webp", "WEBP")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError, match="contains no PNG or JPEG"):
        warnings.simplefilter("always")
        find_image_files(tmp_path)
    assert any("only.webp" in str(w.message) for w in caught)


def test_png_and_jpeg_folders_say_nothing(tmp_path):
    for i in range(3):
        _save(tmp_path / f"{i}.png", "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(find_image_files(tmp_path)) == 3


def test_skipped_files_are_named_with_their_reason(tmp_path):
    from alae_fast.data import ImageFolderDataset

    for i in range(3):
        _save(tmp_path / f"{i}.png", "PNG")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageFolderDataset(tmp_path, 8, 3, split="all")
    said = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(said) == 1 and "skipped 1 unreadable image file of 4" in said[0], said
    assert "broken.png (" in said[0] and "Error" in said[0].split("broken.png (", 1)[1], said


def test_greyscale_images_in_a_colour_folder_are_said_once(tmp_path):
    # a trial's folder held 21 greyscale files among 203: they became 3-channel without a word,
    # while colour images in a greyscale model's folder are named
    from alae_fast.data.folder import ImageFolderDataset

    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"c{k}.png")
    for k in range(7):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"g{k}.png")  # mode L
    # a grey image stored as RGB is colour data already: nothing to say of it
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb-grey.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(tmp_path, resolution=8, channels=3, split="all")
        ImageFolderDataset(tmp_path, resolution=8, channels=3, split="all")  # once per folder
    said = [(w.category, str(w.message)) for w in caught]
    assert said == [(RuntimeWarning, f"{tmp_path} (all files): 7 images of 12 are greyscale and were converted to "
                                     f"colour (the model has 3 channels; each repeats its grey level in R, G and B): "
                                     f"g0.png, g1.png, g2.png, g3.png, g4.png and 2 more")], said
    assert [p.name for p in ds.notes.to_colour] == [f"g{k}.png" for k in range(7)]
    # a greyscale model's folder: grey images are what it takes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ImageFolderDataset(tmp_path, resolution=8, channels=1, split="all")
    assert not any("converted to colour" in str(w.message) for w in caught)
