"""Greyscale images of more than 8 bits are scaled to 8-bit grey levels, never clipped, by the rule
``alae_fast.data.load_image`` states: a float TIFF (mode F) with values in [0, 1] loaded as black
(Pillow's convert("L") takes floats as 0-255 levels and clips), with no warning.

References are written here from the rule: round(value * 255) for mode F, round(value * 255 /
65535) for 16-bit images and 32-bit ones with a value above 255, the value itself otherwise."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

from alae_fast.data import load_image  # noqa: E402
from alae_fast.data.folder import ImageFolderDataset  # noqa: E402
from alae_fast.errors import UserError  # noqa: E402
from alae_fast.inference.pixels import load_image_files  # noqa: E402
from alae_fast.training.schedule import LODSchedule  # noqa: E402

SIZE = 16  # load_image at the image's own size: no crop, no resize, only the levels


def _schedule(resolution: int) -> LODSchedule:
    """A one-level greyscale schedule at ``resolution`` (what load_image_files takes from a run)."""
    return LODSchedule(max_lod=0, base_resolution=resolution, lod_kimg=(1.0,), lod_batch=(4,), lod_lr=(0.001,),
                       channels=1)


def _round_half_up(v: np.ndarray) -> np.ndarray:
    return np.floor(v + 0.5).astype(np.uint8)


def _float_tiff(path, values: np.ndarray):
    Image.fromarray(values.astype(np.float32), "F").save(path)
    return path


@pytest.mark.parametrize("channels", [1, 3])
def test_a_float_image_in_0_1_is_read_as_fractions_of_white(tmp_path, channels):
    rng = np.random.default_rng(0)
    v = rng.random((SIZE, SIZE)).astype(np.float32)
    v[0, 0], v[0, 1] = 0.0, 1.0  # both ends of the range are taken
    got = load_image(_float_tiff(tmp_path / "g.tiff", v), SIZE, channels)
    ref = _round_half_up(v.astype(np.float64) * 255.0)
    assert got.shape == (channels, SIZE, SIZE) and got.dtype == np.uint8
    for c in range(channels):
        np.testing.assert_array_equal(got[c], ref)


def test_the_reported_gradient_is_not_black(tmp_path):
    # the trial's image: a ramp 0..1 came back as pixels in [-1, -0.992]
    v = np.linspace(0, 1, 1024, dtype=np.float32).reshape(32, 32)
    x = load_image_files([_float_tiff(tmp_path / "g.tiff", v)], _schedule(32))
    ref = torch.from_numpy(_round_half_up(v.astype(np.float64) * 255.0).astype(np.float32)) / 127.5 - 1.0
    assert x.shape == (1, 1, 32, 32)
    torch.testing.assert_close(x[0, 0], ref, rtol=0, atol=0)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_a_float_image_reads_as_its_8_bit_twin(tmp_path):
    # what encode and reconstruct take in: the same tensor as the 8-bit PNG of the same levels
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    Image.fromarray(levels, "L").save(tmp_path / "twin.png")
    _float_tiff(tmp_path / "f.tiff", levels.astype(np.float64) / 255.0)
    schedule = _schedule(SIZE)
    a, b = load_image_files([tmp_path / "f.tiff", tmp_path / "twin.png"], schedule)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("values, said", [
    (np.linspace(0, 255, SIZE * SIZE), "float pixel values in [0, 255]"),
    (np.linspace(-0.5, 0.5, SIZE * SIZE), "float pixel values in [-0.5, 0.5]"),
    (np.linspace(0, 1.01, SIZE * SIZE), "float pixel values in [0, 1.01]"),
])
def test_a_float_image_outside_0_1_is_refused_naming_the_file_and_range(tmp_path, values, said):
    path = _float_tiff(tmp_path / "bad.tiff", values.reshape(SIZE, SIZE))
    with pytest.raises(ValueError) as e:
        load_image(path, SIZE, 1)
    msg = str(e.value)
    assert msg.startswith("bad.tiff: ") and said in msg and "must lie in [0, 1]" in msg, msg
    # the image commands say it as a refusal of that file, not as a picture
    with pytest.raises(UserError, match=r"bad\.tiff.*" + re.escape(said)) as e:
        load_image_files([path], _schedule(SIZE))
    assert "could not be read as an image" not in str(e.value)  # it was read; its values are refused
    with pytest.raises(ValueError, match=r"^load_image_files: paths must name at least one image file; got none$"):
        load_image_files([], _schedule(SIZE))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_float_image_with_nan_or_infinity_is_refused(tmp_path, bad):
    v = np.full((SIZE, SIZE), 0.5)
    v[3, 4] = bad
    with pytest.raises(ValueError, match="holding NaN or infinity"):
        load_image(_float_tiff(tmp_path / "nan.tiff", v), SIZE, 1)


def test_a_32_bit_integer_image_is_scaled_as_16_or_8_bits(tmp_path):
    rng = np.random.default_rng(2)
    wide = rng.integers(0, 65536, (SIZE, SIZE)).astype(np.int32)
    wide[0, 0] = 65535
    Image.fromarray(wide, "I").save(tmp_path / "wide.tiff")
    assert Image.open(tmp_path / "wide.tiff").mode == "I"
    np.testing.assert_array_equal(load_image(tmp_path / "wide.tiff", SIZE, 1)[0],
                                  _round_half_up(wide.astype(np.float64) * 255.0 / 65535.0))
    narrow = rng.integers(0, 256, (SIZE, SIZE)).astype(np.int32)  # no value above 255: 8-bit levels
    Image.fromarray(narrow, "I").save(tmp_path / "narrow.tiff")
    np.testing.assert_array_equal(load_image(tmp_path / "narrow.tiff", SIZE, 1)[0], narrow.astype(np.uint8))


@pytest.mark.parametrize("low, high", [(-5, 200), (0, 70000)])
def test_a_32_bit_integer_image_outside_16_bits_is_refused(tmp_path, low, high):
    v = np.linspace(low, high, SIZE * SIZE).round().astype(np.int32).reshape(SIZE, SIZE)
    Image.fromarray(v, "I").save(tmp_path / "i32.tiff")
    with pytest.raises(ValueError, match=rf"i32\.tiff: 32-bit integer pixel values \(mode I\) in \[{low}, {high}\]"):
        load_image(tmp_path / "i32.tiff", SIZE, 1)


def test_16_bit_images_keep_their_scaling(tmp_path):
    rng = np.random.default_rng(3)
    v = rng.integers(0, 65536, (SIZE, SIZE), dtype=np.uint16)
    Image.fromarray(v).save(tmp_path / "i16.png")
    assert Image.open(tmp_path / "i16.png").mode.startswith("I;16")
    np.testing.assert_array_equal(load_image(tmp_path / "i16.png", SIZE, 1)[0],
                                  _round_half_up(v.astype(np.float64) * 255.0 / 65535.0))


def test_a_folder_skips_a_refused_image_saying_why(tmp_path, monkeypatch):
    # a training folder reads PNG/JPEG only, where no float image can be; the rule reaches it
    # through load_image all the same: a refused file is skipped with its reason
    import alae_fast.data.folder as folder

    for i in range(3):
        Image.fromarray(np.full((SIZE, SIZE), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    real = folder.load_image

    def float_for_one(path, *a, **k):
        if path.name == "1.png":
            return real(_float_tiff(tmp_path.parent / "f.tiff", np.full((SIZE, SIZE), 3.0)), *a, **k)
        return real(path, *a, **k)

    monkeypatch.setattr(folder, "load_image", float_for_one)
    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable image file of 3 \(all files\): 1\.png "
                                            r"\(PixelRangeError: f\.tiff: float pixel values in \[3, 3\]"):
        ds = ImageFolderDataset(tmp_path, SIZE, 1)
    assert [p.name for p in ds.files] == ["0.png", "2.png"]
