"""What image loading does beyond cropping and resizing down, said by every loader (folder
datasets, the Python API's load_image_files, the web app's uploads), never silently:
transparent pixels composited over black (the reference: numpy's straight-alpha "over" on
random colours and alphas), colour images read as greyscale, small images enlarged."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

from alae_fast.data import ImageFolderDataset, LoadNotes, load_image  # noqa: E402
from alae_fast.data.folder import TRANSPARENT_BACKGROUND  # noqa: E402

R = 16


def _rgba(seed: int, alpha_low: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (R, R, 4), dtype=np.uint8)
    arr[..., 3] = rng.integers(alpha_low, 256, (R, R))
    arr[0, 0, 3], arr[0, 1, 3] = 0, 255  # a fully transparent and a fully opaque pixel, always
    return arr


def _over_black(arr: np.ndarray) -> np.ndarray:
    a = arr[..., 3:4].astype(np.float64) / 255.0
    return arr[..., :3].astype(np.float64) * a


def test_background_is_black():
    # the module docstring, the warnings and the reference below all say black
    assert TRANSPARENT_BACKGROUND == "black"


def test_rgba_is_composited_over_black_not_stripped(tmp_path):
    arr = _rgba(0)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    found = LoadNotes()
    got = load_image(tmp_path / "a.png", R, 3, notes=found).transpose(1, 2, 0).astype(np.float64)
    assert found == LoadNotes(transparent=[tmp_path / "a.png"])
    np.testing.assert_allclose(got, _over_black(arr), atol=1.0)  # Pillow's integer rounding
    assert got[0, 0].tolist() == [0, 0, 0]  # alpha 0: nothing of the hidden colour
    assert got[0, 1].tolist() == arr[0, 1, :3].tolist()  # alpha 255: the colour itself
    # stripping alpha (the old behaviour) is far from it wherever alpha is low
    assert np.abs(arr[..., :3].astype(np.float64) - _over_black(arr)).max() > 100


def test_hidden_colour_under_transparent_pixels_does_not_matter(tmp_path):
    a = _rgba(1)
    b = a.copy()
    clear = a[..., 3] == 0
    b[clear, :3] = 255 - a[clear, :3]
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(b, "RGBA").save(tmp_path / "b.png")
    assert clear.sum() >= 1
    np.testing.assert_array_equal(load_image(tmp_path / "a.png", R, 3), load_image(tmp_path / "b.png", R, 3))


def test_opaque_alpha_changes_nothing_and_is_not_reported(tmp_path):
    arr = _rgba(2)
    arr[..., 3] = 255
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(arr[..., :3], "RGB").save(tmp_path / "b.png")
    found = LoadNotes()
    np.testing.assert_array_equal(load_image(tmp_path / "a.png", R, 3, notes=found),
                                  load_image(tmp_path / "b.png", R, 3))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png", R, 1), load_image(tmp_path / "b.png", R, 1))
    assert not found


def test_grey_alpha_and_palette_transparency(tmp_path):
    rng = np.random.default_rng(3)
    la = np.stack([rng.integers(0, 256, (R, R)), rng.integers(0, 256, (R, R))], -1).astype(np.uint8)
    la[0, 0, 1] = 0
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    found = LoadNotes()
    got = load_image(tmp_path / "la.png", R, 1, notes=found)[0].astype(np.float64)
    np.testing.assert_allclose(got, la[..., 0] * (la[..., 1] / 255.0), atol=1.0)
    # a palette image whose index 0 is transparent (GIF-style PNG): those pixels become black
    idx = rng.integers(0, 4, (R, R)).astype(np.uint8)
    idx[0, 0] = 0
    pal = Image.fromarray(idx, "P")
    pal.putpalette([255, 255, 255, 200, 10, 10, 10, 200, 10, 10, 10, 200] + [0] * 756)
    pal.save(tmp_path / "p.png", transparency=0)
    got = load_image(tmp_path / "p.png", R, 3, notes=found).transpose(1, 2, 0)
    assert found == LoadNotes(transparent=[tmp_path / "la.png", tmp_path / "p.png"])
    assert (got[idx == 0] == 0).all()
    assert got[idx == 1].tolist() == [[200, 10, 10]] * int((idx == 1).sum())


@pytest.mark.parametrize("preload", [True, False])
def test_folder_dataset_warns_once_naming_the_files(tmp_path, preload):
    Image.fromarray(_rgba(4), "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(_rgba(5)[..., :3], "RGB").save(tmp_path / "plain.png")
    with pytest.warns(RuntimeWarning, match=r"transparent pixels.*composited over black.*clear\.png"):
        ds = ImageFolderDataset(tmp_path, R, 3, preload=preload)
        x, _ = ds[0]  # clear.png, sorted first; a lazy dataset decodes (and says) it here
    assert [p.name for p in ds.notes.transparent] == ["clear.png"]
    expected = _over_black(_rgba(4)).transpose(2, 0, 1) / 127.5 - 1.0
    np.testing.assert_allclose(x.numpy(), expected, atol=1.0 / 127.5 + 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once for the same folder, split and files
        again = ImageFolderDataset(tmp_path, R, 3, preload=preload)
        again[0]
        again[0]
    assert [p.name for p in again.notes.transparent] == ["clear.png"]


def test_load_image_files_warns_naming_the_file(tmp_path):
    from alae_fast.inference.pixels import load_image_files
    from alae_fast.training.schedule import LODSchedule

    Image.fromarray(_rgba(6), "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(_rgba(7)[..., :3], "RGB").save(tmp_path / "plain.png")
    sched = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(1.0,), lod_batch=(8,), lod_lr=(0.002,), channels=3)
    assert sched.resolution == R
    with pytest.warns(RuntimeWarning, match=r"1 image of 2 has transparent pixels.*clear\.png"):
        x = load_image_files([tmp_path / "clear.png", tmp_path / "plain.png"], sched)
    np.testing.assert_allclose(x[0].numpy(), _over_black(_rgba(6)).transpose(2, 0, 1) / 127.5 - 1.0,
                               atol=1.0 / 127.5 + 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_files([tmp_path / "plain.png"], sched)


def test_upload_decoder_reports_transparency():
    pytest.importorskip("fastapi")
    from alae_fast.app.uploads import decode_image

    buf = io.BytesIO()
    Image.fromarray(_rgba(8), "RGBA").save(buf, format="PNG")
    found = LoadNotes()
    x = decode_image(buf.getvalue(), R, 3, 1 << 20, 10 ** 7, notes=found)
    assert len(found.transparent) == 1 and not found.to_grey and not found.enlarged
    np.testing.assert_allclose(x[0].numpy(), _over_black(_rgba(8)).transpose(2, 0, 1) / 127.5 - 1.0,
                               atol=1.0 / 127.5 + 1e-6)


# --- colour read as grey, small images enlarged ------------------------------------------------------

def test_colour_to_grey_is_noted_only_when_colour_is_lost(tmp_path):
    rng = np.random.default_rng(9)
    colour = rng.integers(0, 256, (R, R, 3), dtype=np.uint8)
    grey_rgb = np.repeat(rng.integers(0, 256, (R, R, 1), dtype=np.uint8), 3, axis=2)  # RGB file, grey content
    Image.fromarray(colour, "RGB").save(tmp_path / "colour.png")
    Image.fromarray(grey_rgb, "RGB").save(tmp_path / "grey_rgb.png")
    Image.fromarray(grey_rgb[..., 0], "L").save(tmp_path / "grey.png")
    found = LoadNotes()
    got = load_image(tmp_path / "colour.png", R, 1, notes=found)[0].astype(np.float64)
    # ITU-R 601 luma, Pillow's convert("L"), within its integer rounding
    luma = colour[..., 0] * 0.299 + colour[..., 1] * 0.587 + colour[..., 2] * 0.114
    np.testing.assert_allclose(got, luma, atol=1.0)
    load_image(tmp_path / "grey_rgb.png", R, 1, notes=found)
    load_image(tmp_path / "grey.png", R, 1, notes=found)
    load_image(tmp_path / "colour.png", R, 3, notes=found)  # a colour model keeps the colour
    assert found == LoadNotes(to_grey=[tmp_path / "colour.png"])
    assert found.message("to_grey", R, 4) == ("1 image of 4 is a colour image and was converted to greyscale "
                                              "(the model has 1 channel; colour differences that keep the "
                                              "brightness are lost): colour.png")
    two = LoadNotes(to_grey=[tmp_path / "a.png", tmp_path / "b.png"], enlarged=[tmp_path / "c.png"])
    assert two.message("to_grey", R).startswith("2 images are colour images and were converted to greyscale")
    assert two.message("enlarged", R, 3).startswith(f"1 image of 3 is smaller than {R}x{R} and was enlarged to it "
                                                    "(Lanczos): it holds less detail")


def test_small_images_are_noted_as_enlarged(tmp_path):
    rng = np.random.default_rng(10)
    Image.fromarray(rng.integers(0, 256, (R // 2, 3 * R, 3), dtype=np.uint8)).save(tmp_path / "strip.png")
    Image.fromarray(rng.integers(0, 256, (R, 2 * R, 3), dtype=np.uint8)).save(tmp_path / "wide.png")
    found = LoadNotes()
    assert load_image(tmp_path / "strip.png", R, 3, notes=found).shape == (3, R, R)
    load_image(tmp_path / "wide.png", R, 3, notes=found)  # its short side is the resolution: cropped only
    assert found == LoadNotes(enlarged=[tmp_path / "strip.png"])
    assert f"1 image is smaller than {R}x{R} and was enlarged" in found.messages(R)[0]


def test_every_loader_says_each_kind(tmp_path):
    from alae_fast.inference.pixels import load_image_files
    from alae_fast.training.schedule import LODSchedule

    rng = np.random.default_rng(11)
    Image.fromarray(rng.integers(0, 256, (R, R, 3), dtype=np.uint8)).save(tmp_path / "colour.png")
    Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8), "L").save(tmp_path / "tiny.png")
    grey = LODSchedule(max_lod=2, base_resolution=4, lod_kimg=(1.0,), lod_batch=(8,), lod_lr=(0.002,), channels=1)
    with pytest.warns(RuntimeWarning) as said:
        load_image_files([tmp_path / "colour.png", tmp_path / "tiny.png"], grey)
    messages = sorted(str(w.message) for w in said)
    assert len(messages) == 2
    # one category for these notes, from a list of files and from a data folder (directions --data):
    # load_image_files gave UserWarning, the folder RuntimeWarning
    assert {w.category for w in said} == {RuntimeWarning}
    assert "1 image of 2 is a colour image and was converted to greyscale" in messages[0]
    assert str(tmp_path / "colour.png") in messages[0]
    assert "1 image of 2 is smaller than 16x16 and was enlarged" in messages[1] and "tiny.png" in messages[1]
    with pytest.warns(RuntimeWarning) as said:
        ds = ImageFolderDataset(tmp_path, R, 1)
    assert {w.category for w in said if "enlarged" in str(w.message)} == {RuntimeWarning}
    assert {str(w.message).split(": ", 1)[1].split(" (")[0] for w in said} >= {
        "1 image of 2 is a colour image and was converted to greyscale",
        "1 image of 2 is smaller than 16x16 and was enlarged to it"}
    assert [p.name for p in ds.notes.to_grey] == ["colour.png"] and [p.name for p in ds.notes.enlarged] == ["tiny.png"]
