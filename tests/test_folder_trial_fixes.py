"""Two defects a new user's trial met: a folder made colour by one grey digit saved as RGB, with a
note that named no file (folder_channels, train's channel note); and an official checkpoint
evaluated on a tenth of a folder, though it records no training data to hold that tenth out of
(evaluate's choice of images)."""

import json
from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
from PIL import Image

import alae_fast.data.folder as folder_mod
from alae_fast.data.folder import folder_channels, read_folder_channels

OFFICIAL = Path(__file__).parent / "data" / "official-alae" / "alae-small.pth"


def _digit(i: int, side: int = 16) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (side, side), dtype=np.uint8)


def _trial_folder(root: Path, colour_rgba: bool = True) -> Path:
    """The trial's folder: 14 greyscale PNGs, a grey digit saved as an RGB JPEG (three.jpg), an
    RGBA image (rgba.png) and a red digit (red3.jpg)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(14):
        Image.fromarray(_digit(i)).save(root / f"d{i:02d}.png")
    Image.fromarray(_digit(3)).convert("RGB").save(root / "three.jpg", quality=95)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 128
    if colour_rgba:
        rgba[..., 2] = 200
    rgba[..., 3] = 255
    rgba[4:12, 4:12, 3] = 100
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = _digit(3)
    Image.fromarray(red).save(root / "red3.jpg")
    return root


def test_a_grey_image_saved_as_rgb_counts_as_greyscale(tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(4):
        Image.fromarray(_digit(i)).save(grey / f"d{i}.png")
    Image.fromarray(_digit(9)).convert("RGB").save(grey / "three.jpg", quality=95)
    Image.fromarray(_digit(8)).convert("RGB").save(grey / "eight.png")
    found = read_folder_channels(grey)
    assert found.channels == 1 == folder_channels(grey)
    assert sorted(p.name for p in found.rgb_grey) == ["eight.png", "three.jpg"]
    assert found.why() == ("greyscale: all 6 images are, 2 of them saved in colour with R, G and B equal "
                           "everywhere: eight.png, three.jpg")
    # a grey image with transparency composited over black stays grey
    la = np.zeros((16, 16, 4), np.uint8)
    la[..., :3] = 90
    la[..., 3] = 255
    la[:4, :4, 3] = 0
    Image.fromarray(la, "RGBA").save(grey / "a.png")
    assert folder_channels(grey) == 1


def test_the_trial_folder_names_the_files_that_made_it_colour(tmp_path):
    found = read_folder_channels(_trial_folder(tmp_path / "trial"))
    assert found.channels == 3
    assert [p.name for p in found.colour] == ["red3.jpg", "rgba.png"]
    assert found.why() == ("colour because 2 images of 17 are: red3.jpg, rgba.png (the other 15 are greyscale, "
                           "1 of them saved in colour with R, G and B equal everywhere: three.jpg)")
    # the colour in rgba.png is hidden where alpha is 0 only: still colour; greyish it is grey
    found = read_folder_channels(_trial_folder(tmp_path / "grey-rgba", colour_rgba=False))
    assert [p.name for p in found.colour] == ["red3.jpg"]
    assert found.why().startswith("colour because 1 image of 17 is: red3.jpg (the other 16 are greyscale, 2 of them")


def test_one_kind_of_folder_says_nothing_more(tmp_path):
    grey, colour = tmp_path / "grey", tmp_path / "colour"
    grey.mkdir(), colour.mkdir()
    for i in range(3):
        Image.fromarray(_digit(i)).save(grey / f"{i}.png")
        Image.fromarray(np.stack([_digit(i), _digit(i + 1), _digit(i + 2)], -1)).save(colour / f"{i}.png")
    assert read_folder_channels(grey).why() == "" and read_folder_channels(grey).channels == 1
    assert read_folder_channels(colour).why() == "" and read_folder_channels(colour).channels == 3


def test_a_large_colour_folder_is_not_read_whole(tmp_path, monkeypatch):
    # it stops at the fifth colour image, and says how many it read of how many
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(_digit(i)).save(folder / f"a{i}.png")
    for i in range(20):
        Image.fromarray(np.stack([_digit(i), _digit(i + 1), _digit(i + 2)], -1)).save(folder / f"b{i:02d}.png")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda f, *a, **k: opened.append(Path(f).name) or real_open(f, *a, **k))
    found = read_folder_channels(folder)
    assert found.channels == 3 and len(opened) == 8 and found.looked_at == 8
    assert found.why() == ("colour because 5 images of the first 8 read (of 23 files) are: b00.png, b01.png, "
                           "b02.png, b03.png, b04.png (the other 3 are greyscale)")


def test_pixels_past_the_budget_are_not_decoded_and_that_is_said(tmp_path, monkeypatch):
    folder = tmp_path / "rgbgrey"
    folder.mkdir()
    Image.fromarray(_digit(0)).save(folder / "a.png")
    for i in range(4):
        Image.fromarray(_digit(i)).convert("RGB").save(folder / f"g{i}.png")
    # two 16x16 images, each charged its opening besides its pixels
    monkeypatch.setattr(folder_mod, "PIXEL_CHECK_BUDGET", 2 * (16 * 16 + folder_mod._PIXELS_PER_FILE))
    decoded = []
    real = folder_mod._holds_colour
    monkeypatch.setattr(folder_mod, "_holds_colour", lambda img: decoded.append(img) or real(img))
    found = read_folder_channels(folder)
    assert len(decoded) == 2  # the budget's two; the others by their mode
    assert found.channels == 3 and [p.name for p in found.unread] == ["g2.png", "g3.png"]
    assert found.why() == ("colour because 2 images of 5 are: g2.png, g3.png (the other 3 are greyscale, 2 of them "
                           "saved in colour with R, G and B equal everywhere: g0.png, g1.png); 2 images saved in "
                           "colour were counted colour by their mode, pixels unread (the start-up check decodes at "
                           "most 0.0317383 megapixels, PIXEL_CHECK_BUDGET, a file counting 16384 besides its own): "
                           "g2.png, g3.png")


def test_unreadable_files_are_skipped_and_none_readable_is_said(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"not an image")
    Image.fromarray(_digit(0)).convert("RGB").save(folder / "y.png")
    assert folder_channels(folder) == 1
    (folder / "y.png").write_bytes(b"nor this")
    with pytest.raises(ValueError, match="none of its 2 image files could be read"):
        folder_channels(folder)


def test_train_note_names_the_colour_files(tmp_path):
    from alae_fast.training.plan import _match_channels
    from alae_fast.training.options import TrainOptions
    from alae_fast.training.setups import resolve_setup

    data = _trial_folder(tmp_path / "trial")
    setup = resolve_setup("digits-32", {}, {})
    matched, note = _match_channels(setup, TrainOptions(preset="digits-32", data=str(data)))
    assert matched.schedule.channels == 3
    first, second = note.split("\n")
    assert first == ("note: the data are colour (3 channels); 'digits-32' is a greyscale preset: training it with "
                     "channels=3, taken from the data (--set channels=1 keeps the preset's and converts the images)")
    assert second == (f"  {data}: colour because 2 images of 17 are: red3.jpg, rgba.png (the other 15 are greyscale, "
                      f"1 of them saved in colour with R, G and B equal everywhere: three.jpg)")
    # kept at 1 channel by the user: the warning names them too
    _, warning = _match_channels(resolve_setup("digits-32", {"channels": 1}, {}),
                                 TrainOptions(preset="digits-32", data=str(data), model_overrides={"channels": 1}))
    assert warning.startswith("warning: the data are colour (3 channels) but 'digits-32' takes 1: every image is "
                              "converted to greyscale\n  ")
    assert "red3.jpg, rgba.png" in warning


def _photos(root: Path, n: int) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(root / f"p{i:03d}.png")
    return root


@pytest.mark.skipif(not OFFICIAL.is_file(), reason="the official-ALAE fixture is not on this machine")
def test_an_official_checkpoint_is_evaluated_on_the_whole_folder(tmp_path, capsys):
    from alae_fast.cli import main

    folder = _photos(tmp_path / "photos", 30)
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--ckpt", str(OFFICIAL), "--data", str(folder), "--num-fid", "25",
                 "--ppl-samples", "2", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    # all 30 files, at most --num-fid: not the 3 a held-out split of 30 would give
    assert metrics["reconstruction_images"] == 25
    assert metrics["data"]["split"] == "all" and metrics["reconstruction_split"] == "unrecorded"
    captured = capsys.readouterr()
    assert "on 25 possibly seen (the checkpoint records no training data) images" in captured.out
    assert "held-out split" not in captured.out + captured.err


def test_a_run_that_records_its_folder_keeps_its_held_out_split(tmp_path):
    # the run's own folder: its held-out split, as before; another folder: all of it
    from alae_fast.inference.metrics import _real_images

    folder = _photos(tmp_path / "own", 30)
    ds, split, read = _real_images(str(folder), 16, 3, "own")
    assert (split, read, len(ds)) == ("held-out", "test", 3)
    ds, split, read = _real_images(str(folder), 16, 3, "changed")
    assert (split, read, len(ds)) == ("changed", "test", 3)
    ds, split, read = _real_images(str(folder), 16, 3, "unrecorded")
    assert (split, read, len(ds)) == ("unrecorded", "all", 30)
    ds, split, read = _real_images(str(folder), 16, 3, "other")
    assert (split, read, len(ds)) == ("unseen", "all", 30)


def test_max_files_says_how_many_were_read(tmp_path):
    folder = tmp_path / "some"
    folder.mkdir()
    Image.fromarray(_digit(0)).convert("RGB").save(folder / "a.png")
    for i in range(3):
        Image.fromarray(_digit(i)).save(folder / f"b{i}.png")
    Image.fromarray(np.stack([_digit(1), _digit(2), _digit(3)], -1)).save(folder / "z.png")
    found = read_folder_channels(folder, max_files=2)
    assert found.channels == 1
    assert found.why() == ("greyscale: the first 2 images read (of 5 files) all are, 1 of them saved in colour with "
                           "R, G and B equal everywhere: a.png")
    assert read_folder_channels(folder).why() == ("colour because 1 image of 5 is: z.png (the other 4 are greyscale, "
                                                  "1 of them saved in colour with R, G and B equal everywhere: a.png)")


@pytest.mark.skipif(not OFFICIAL.is_file(), reason="the official-ALAE fixture is not on this machine")
def test_an_official_checkpoint_reconstructs_from_the_whole_folder(tmp_path, capsys):
    # as evaluate: no tenth of the folder is held out from a checkpoint that records no data
    from alae_fast.cli import main

    folder = _photos(tmp_path / "photos", 30)
    assert main(["reconstruct", "--ckpt", str(OFFICIAL), "--data", str(folder), "--n", "20",
                 "--out", str(tmp_path / "rec.png")]) == 0
    out = capsys.readouterr().out
    assert "wrote 20 possibly seen originals beside" in out, out
    assert "held-out" not in out
