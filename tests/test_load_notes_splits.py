"""What loading changes is said, never silent, for every split and every mode:

1. a greyscale image of more than 8 bits with a transparent grey level (a 16-bit PNG's tRNS) is
   composited over black and named, like the 8-bit one (its 8-bit copy dropped the key and showed
   the hidden level); so is a 2- or 4-bit one (Pillow leaves its key in the file's units);
2. a folder's held-out split, opened after its training split in the same process (training,
   then its end-of-training MSE), names its own files not named before; the "all" split after
   both says nothing, after the training split alone only the held-out files;
3. the loading rule's refusal of an image reaches the user whole: the file, its values, the
   range expected and what to do (it was cut at 120/200 characters).

References are numpy's: the rule's scaling (round(v * 255 / 65535)), straight-alpha "over"
black, and the note sentences written out here."""

from __future__ import annotations

import pickle
import re
import struct
import warnings
import zlib

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import alae_fast.data.folder as folder  # noqa: E402
from alae_fast.data import LoadNotes, load_image  # noqa: E402
from alae_fast.data.folder import ImageFolderDataset, PixelRangeError, split_files  # noqa: E402
from alae_fast.errors import UserError  # noqa: E402

R = 8
KEY = 50372  # the transparent 16-bit grey level of the report (196 once scaled to 8 bits)
BLACK = "composited over black (the model has no alpha channel)"
GREY = ("greyscale and {} converted to colour (the model has 3 channels; {} grey level in R, G and B)")


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    """The once-per-process records, empty for each test."""
    monkeypatch.setattr(folder, "_warned_notes", set())
    monkeypatch.setattr(folder, "_warned_skips", set())


def _scaled(v: np.ndarray) -> np.ndarray:
    return np.floor(v.astype(np.float64) * 255.0 / 65535.0 + 0.5)


def _grey16(seed: int, key: int = KEY) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.integers(1, 65536, (R, R)).astype(np.uint16)
    v[v == key] = key + 1  # the key only where put below
    v[0, 0] = v[3, 5] = key
    return v


def _save_grey16(path, seed: int) -> np.ndarray:
    v = _grey16(seed)
    Image.fromarray(v).save(path, transparency=KEY)
    with Image.open(path) as img:  # what the report's file is: I;16 with a tRNS grey level
        assert img.mode == "I;16" and img.info["transparency"] == KEY
    return v


def _over_black_grey16(v: np.ndarray) -> np.ndarray:
    return np.where(v == KEY, 0.0, _scaled(v))


# ---- 1. wide greyscale with a transparent grey level ------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_grey_with_a_transparent_level_is_composited_and_named(tmp_path, channels):
    path = tmp_path / "g16t.png"
    v = _save_grey16(path, 0)
    found = LoadNotes()
    got = load_image(path, R, channels, notes=found)
    ref = _over_black_grey16(v)
    assert got.shape == (channels, R, R)
    for c in range(channels):
        np.testing.assert_array_equal(got[c], ref)
    assert got[0, 0, 0] == 0 and got[0, 3, 5] == 0  # not the hidden level 196
    assert found.transparent == [path]
    assert found.to_colour == ([path] if channels == 3 else [])
    assert found.message("transparent", R, 1) == f"1 image of 1 has transparent pixels and was {BLACK}: g16t.png"


def test_16_bit_grey_reads_as_its_8_bit_twin_with_the_same_transparent_level(tmp_path):
    # the 8-bit version of the same image (L with tRNS) was composited; the 16-bit one was not
    v = _save_grey16(tmp_path / "g16t.png", 1)
    eight = _scaled(v).astype(np.uint8)
    key8 = int(eight[0, 0])
    assert key8 == 196
    clear = v == KEY
    eight[(eight == key8) & ~clear] = key8 + 1  # the 8-bit key only where the 16-bit one is
    Image.fromarray(eight, "L").save(tmp_path / "g8t.png", transparency=key8)
    twin = np.where(clear, 0, eight).astype(np.uint8)
    a, b = LoadNotes(), LoadNotes()
    np.testing.assert_array_equal(load_image(tmp_path / "g8t.png", R, 3, notes=a)[0], twin)
    np.testing.assert_array_equal(load_image(tmp_path / "g16t.png", R, 3, notes=b)[0], _over_black_grey16(v))
    assert [p.name for p in a.transparent] == ["g8t.png"] and [p.name for p in b.transparent] == ["g16t.png"]


def test_a_transparent_level_no_pixel_holds_changes_nothing(tmp_path):
    v = _grey16(2)
    v[v == 7] = 8
    Image.fromarray(v).save(tmp_path / "g.png", transparency=7)
    found = LoadNotes()
    np.testing.assert_array_equal(load_image(tmp_path / "g.png", R, 1, notes=found)[0], _scaled(v))
    assert not found.transparent


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I", "F"])
def test_every_wide_mode_keeps_its_transparent_level(mode):
    rng = np.random.default_rng(3)
    if mode == "F":
        v = rng.random((R, R))
        key = float(np.float32(v[2, 2]))
        v = v.astype(np.float32)
        ref = np.floor(v.astype(np.float64) * 255.0 + 0.5)
    else:
        v = _grey16(3).astype(np.int64)
        key = KEY
        ref = _scaled(v)
    if mode == "F":
        img = Image.fromarray(v, "F")
    elif mode == "I":
        img = Image.fromarray(v.astype(np.int32), "I")
    else:
        img = Image.frombytes(mode, (R, R), v.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    assert img.mode == mode
    img.info["transparency"] = key
    clear = np.asarray(img, dtype=np.float64) == key
    assert 1 <= clear.sum() < R * R
    out = folder._wide_to_eight_bits(img, "w.png")
    assert out.mode == "LA"
    la = np.asarray(out)
    np.testing.assert_array_equal(la[..., 0], ref)
    np.testing.assert_array_equal(la[..., 1], np.where(clear, 0, 255))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _low_bit_grey_png(levels: np.ndarray, bits: int, key: int) -> bytes:
    """A greyscale PNG of ``bits`` (1, 2, 4) bits a pixel with tRNS grey level ``key``, written
    by hand (Pillow writes none)."""
    rows = []
    for row in levels:
        text = "".join(format(int(x), f"0{bits}b") for x in row)
        text += "0" * (-len(text) % 8)
        rows.append(b"\x00" + int(text, 2).to_bytes(len(text) // 8, "big"))
    h, w = levels.shape
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 0))
            + _chunk(b"tRNS", struct.pack(">H", key)) + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
            + _chunk(b"IEND", b""))


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_grey_with_a_transparent_level_is_composited(tmp_path, bits):
    rng = np.random.default_rng(bits)
    top = 2 ** bits - 1
    for key in range(1, top + 1):
        levels = rng.integers(0, top + 1, (R, R))
        levels[0, 0] = key
        levels[1, 1] = (key + 1) % (top + 1)
        path = tmp_path / f"g{bits}_{key}.png"
        path.write_bytes(_low_bit_grey_png(levels, bits, key))
        found = LoadNotes()
        got = load_image(path, R, 1, notes=found)[0]
        np.testing.assert_array_equal(got, np.where(levels == key, 0, levels * (255 // top)), err_msg=f"key {key}")
        assert found.transparent == [path]


# ---- 2. a folder's splits in one process -----------------------------------------------------

def _palette_transparent(seed: int) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 4, (R, R)).astype(np.uint8)
    idx[0, 0], idx[1, 1] = 0, 1
    pal = Image.fromarray(idx, "P")
    colours = [[255, 255, 255], [200, 10, 10], [10, 200, 10], [10, 10, 200]]
    pal.putpalette(sum(colours, []) + [0] * 756)
    ref = np.array(colours, np.float64)[idx]
    ref[idx == 0] = 0.0  # index 0 is transparent
    return pal, ref


def _rgba(seed: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (R, R, 4), dtype=np.uint8)
    arr[0, 0, 3], arr[0, 1, 3] = 0, 255
    if mode == "LA":
        arr = arr[..., [0, 3]]
        a = arr[..., 1:].astype(np.float64) / 255.0
        return arr, np.repeat(arr[..., :1] * a, 3, -1)
    return arr, arr[..., :3] * (arr[..., 3:].astype(np.float64) / 255.0)


def _two_split_folder(root):
    """30 files, 3 of them held out: in the training split an LA, an RGBA and an 8-bit grey
    image; in the held-out split a palette image with a transparent index, a 16-bit grey one
    with a transparent level (also greyscale read as colour), and a small RGB one (enlarged);
    random RGB images besides. Returns ({name: reference [R, R, 3] or None}, train, test names)."""
    root.mkdir()
    names = [f"{i:02d}.png" for i in range(30)]
    paths = [root / n for n in names]
    test = [p.name for p in split_files(paths, root, "test")]
    train = [n for n in names if n not in test]
    assert len(test) == 3
    rng = np.random.default_rng(7)
    refs = {}
    specials = {train[2]: "LA", train[5]: "RGBA", train[9]: "L", test[0]: "P", test[1]: "I;16", test[2]: "small"}
    for i, name in enumerate(names):
        kind = specials.get(name, "RGB")
        if kind in ("LA", "RGBA"):
            arr, refs[name] = _rgba(i, kind)
            Image.fromarray(arr, kind).save(root / name)
        elif kind == "L":
            g = rng.integers(1, 256, (R, R), dtype=np.uint8)
            Image.fromarray(g, "L").save(root / name)
            refs[name] = np.repeat(g[..., None].astype(np.float64), 3, -1)
        elif kind == "P":
            pal, refs[name] = _palette_transparent(i)
            pal.save(root / name, transparency=0)
        elif kind == "I;16":
            v = _save_grey16(root / name, i)
            refs[name] = np.repeat(_over_black_grey16(v)[..., None], 3, -1)
        elif kind == "small":
            Image.fromarray(rng.integers(1, 256, (R // 2, R // 2, 3), dtype=np.uint8)).save(root / name)
        else:
            Image.fromarray(rng.integers(1, 256, (R, R, 3), dtype=np.uint8)).save(root / name)
    return refs, train, test, specials


def _open(root, split, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(root, R, 3, split=split, **options)
    return ds, [str(w.message) for w in caught]


def test_the_held_out_split_names_its_own_files_after_the_training_split(tmp_path):
    root = tmp_path / "photos"
    refs, train, test, kinds = _two_split_folder(root)
    by_kind = {k: n for n, k in kinds.items()}
    ds, said = _open(root, "train")
    la, rgba, grey = by_kind["LA"], by_kind["RGBA"], by_kind["L"]
    assert said == [
        f"{root} (training split): 2 images of 27 have transparent pixels and were {BLACK}: {la}, {rgba}",
        f"{root} (training split): 2 images of 27 are " + GREY.format("were", "each repeats its") + f": {la}, {grey}",
    ]
    pal, g16, small = by_kind["P"], by_kind["I;16"], by_kind["small"]
    held, said = _open(root, "test")
    assert said == [
        f"{root} (held-out split): 2 images of 3 have transparent pixels and were {BLACK}: {pal}, {g16}",
        f"{root} (held-out split): 1 image of 3 is smaller than {R}x{R} and was enlarged to it (Lanczos): it holds "
        f"less detail than the model's resolution: {small}",
        f"{root} (held-out split): 1 image of 3 is " + GREY.format("was", "it repeats its") + f": {g16}",
    ]
    assert [p.name for p in held.notes.transparent] == [pal, g16]
    # the pixels are the composited ones, checked against numpy's
    for dataset in (ds, held):
        for k, f in enumerate(dataset.files):
            if f.name in refs:
                got = dataset.images[k].numpy().transpose(1, 2, 0).astype(np.float64)
                np.testing.assert_allclose(got, refs[f.name], atol=1.0, err_msg=f.name)
    # every file is named by now: the "all" split and the splits opened again say nothing
    for split in ("all", "test", "train"):
        assert _open(root, split)[1] == [], split


def test_the_all_split_after_the_training_split_names_only_the_held_out_files(tmp_path):
    root = tmp_path / "photos"
    refs, train, test, kinds = _two_split_folder(root)
    by_kind = {k: n for n, k in kinds.items()}
    _open(root, "train")
    _, said = _open(root, "all")
    transparent = [s for s in said if "transparent pixels" in s]
    assert transparent == [f"{root} (all files): 4 images of 30 have transparent pixels and were {BLACK}: "
                           f"{by_kind['P']}, {by_kind['I;16']} (and 2 named before)"], said


def test_a_lazy_held_out_split_names_its_first_new_file_when_decoded(tmp_path):
    root = tmp_path / "photos"
    refs, train, test, kinds = _two_split_folder(root)
    _open(root, "train")
    held, said = _open(root, "test", preload=False)
    assert said == []  # nothing decoded yet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, _ = held.get_batch([0, 1])
    said = [str(w.message) for w in caught]
    assert said[0] == (f"{root} (held-out split): 1 image has transparent pixels and was {BLACK}: {test[0]} "
                       f"(lazy loading: more may follow as they are decoded)"), said
    np.testing.assert_allclose(x[0].numpy().transpose(1, 2, 0), refs[test[0]] / 127.5 - 1.0, atol=1 / 127.5 + 1e-6)


# ---- 3. the refusal, whole ------------------------------------------------------------------

def _schedule(resolution: int):
    from alae_fast.training.schedule import LODSchedule

    return LODSchedule(max_lod=0, base_resolution=resolution, lod_kimg=(1.0,), lod_batch=(4,), lod_lr=(0.001,),
                       channels=1)


I90000 = ("i90000.tif: 32-bit integer pixel values (mode I) in [0, 90000]; they must lie in [0, 65535] (16-bit grey "
          "levels, or 8-bit when none exceeds 255): save it with 8- or 16-bit integers")
F15 = ("f15.tif: float pixel values in [0, 15] (mode F); they must lie in [0, 1] (read as 0 black to 1 white): scale "
       "them to [0, 1], or save it with 8- or 16-bit integers")


def _refused_images(folder_path):
    folder_path.mkdir()
    v = np.linspace(0, 90000, R * R).round().astype(np.int32).reshape(R, R)
    Image.fromarray(v, "I").save(folder_path / "i90000.tif")
    Image.fromarray(np.linspace(0, 15, R * R, dtype=np.float32).reshape(R, R), "F").save(folder_path / "f15.tif")
    return folder_path / "i90000.tif", folder_path / "f15.tif"


def test_an_image_given_alone_is_refused_with_the_whole_reason(tmp_path):
    from alae_fast.inference.pixels import load_image_files

    for path, text in zip(_refused_images(tmp_path / "single"), (I90000, F15)):
        with pytest.raises(PixelRangeError) as e:
            load_image(path, R, 1)
        assert str(e.value) == text
        assert e.value.file == path.name and text == f"{path.name}: {e.value.reason}"
        again = pickle.loads(pickle.dumps(e.value))  # a worker process's error, rebuilt
        assert type(again) is PixelRangeError and str(again) == text and again.reason == e.value.reason
        # what encode/reconstruct say: the file, its values, the range expected and the advice
        with pytest.raises(UserError) as e:
            load_image_files([path], _schedule(R))
        assert str(e.value) == f"image {str(path)!r}: {e.value.__cause__.reason}"
        assert not str(e.value).endswith("...")
    # a long path does not cut the reason
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "i90000.tif"
    deep.parent.mkdir()
    deep.write_bytes((tmp_path / "single" / "i90000.tif").read_bytes())
    with pytest.raises(UserError) as e:
        load_image_files([deep], _schedule(R))
    assert str(e.value).endswith(I90000.split(": ", 1)[1]) and len(str(e.value)) > 200


def test_a_folder_names_a_refused_file_with_the_whole_reason(tmp_path):
    # a folder reads .png/.jpg files; Pillow goes by the content, so a TIFF's bytes under a .png
    # name reach the rule (what a 16-bit PNG under older Pillow, mode I, would)
    i90000, f15 = _refused_images(tmp_path / "single")
    root = tmp_path / "data"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((R, R), 40 * i + 1, np.uint8)).save(root / f"{i}.png")
    (root / "i90000.png").write_bytes(i90000.read_bytes())
    (root / "f15.png").write_bytes(f15.read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ImageFolderDataset(root, R, 1)
    said = [str(w.message) for w in caught if "skipped" in str(w.message)]
    reason = {name: text.split(": ", 1)[1] for name, text in (("i90000.png", I90000), ("f15.png", F15))}
    assert said == [f"{root}: skipped 2 unreadable image files of 5 (all files): f15.png (PixelRangeError: "
                    f"{reason['f15.png']}), i90000.png (PixelRangeError: {reason['i90000.png']})"], said
    assert sorted(p.name for p in ds.files) == ["0.png", "1.png", "2.png"]
    # the dataset keeps each whole, with the file's name
    assert dict((p.name, why) for p, why in ds.skipped) == {
        "f15.png": "PixelRangeError: f15.png: " + reason["f15.png"],
        "i90000.png": "PixelRangeError: i90000.png: " + reason["i90000.png"]}


def test_a_long_decoder_error_is_cut_after_a_sentence_not_inside_it():
    # a decoder's error past 200 characters (none of the loading rule's): cut after its last
    # sentence that ends past half the limit, else after its last whole word, marked "..."
    long = "b" * 120 + "; the file holds 3 frames. " + "x " * 100
    assert folder._short(long) == "b" * 120 + "; the file holds 3 frames ..."
    words = "broken chunk; " + "the decoder says " * 20
    cut = folder._short(words)
    assert len(cut) <= 200 and cut.endswith(" decoder ...") and words.startswith(cut[:-4] + " "), cut
    assert folder._short("short: kept whole\nsecond line") == "short: kept whole"
    assert re.fullmatch(r"(word )+\.\.\.", folder._short("word " * 100))
