"""The labelled pictures' fonts: a file named ünïcødé 8.png was titled □n□c□d□ 8.png (Pillow's own
font has ASCII only). A title with a character Pillow's font lacks is drawn in DejaVu Sans
(matplotlib's copy, or the system's), which has Latin-1; an ASCII title keeps Pillow's font and
so its size, which the command line's "at most N IMAGES" counts on; without DejaVu the pictures
are written in Pillow's font as before."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PIL.Image")
import torch  # noqa: E402
from PIL import Image, ImageFont  # noqa: E402

import alae_fast.inference.pictures as pictures  # noqa: E402

# a private-use code point: no font has a glyph for it, so it is drawn as the font's missing-glyph box
MISSING = "\ue000"
LATIN_1 = "üïøéÆÄÖßñçà"


@pytest.fixture
def fresh_font():
    """The font and the measurements cached from it, forgotten before and after the test."""
    def clear():
        for cached in (pictures._font, pictures._wide_font, pictures._missing_mask, pictures._draws,
                       pictures._label_font, pictures._text_size):
            cached.cache_clear()
    clear()
    yield
    clear()


def _dejavu_available() -> bool:
    for file in pictures._latin_font_files():
        try:
            ImageFont.truetype(file, 12)
            return True
        except (OSError, ImportError):
            continue
    return False


needs_dejavu = pytest.mark.skipif(not _dejavu_available(),
                                  reason="no DejaVu Sans here (neither matplotlib's nor the system's)")


def _boxed(font, text: str) -> set[str]:
    box = bytes(font.getmask(MISSING))
    return {c for c in text if bytes(font.getmask(c)) == box}


@needs_dejavu
def test_a_title_with_latin_1_letters_gets_a_font_that_has_them(fresh_font):
    font = pictures._label_font("ünïcødé 8.png")
    assert font is pictures._wide_font(12) and "DejaVu" in font.getname()[0]
    assert not _boxed(font, LATIN_1 + "abcXYZ019"), _boxed(font, LATIN_1)
    # the check itself tells a box from a letter: CJK, which DejaVu lacks, is still a box
    assert _boxed(font, "日本") == {"日", "本"}
    # Pillow's own font is the one that lacks them
    assert _boxed(pictures._font(12), LATIN_1) == set(LATIN_1)


def test_an_ascii_title_keeps_pillows_font_and_its_size(fresh_font):
    # the size checks (reconstruct's "at most 1255 IMAGES" of 'digit0.png (k)' titles) are
    # counted in Pillow's font: a font with more letters must not move them
    from PIL import ImageDraw

    for title in ("digit0.png (12)", "input x", "3-8: -2\n0-1: +1.5", "t=0.50"):
        assert pictures._label_font(title) is pictures._font(12), title
        box = ImageDraw.Draw(Image.new("RGB", (1, 1))).multiline_textbbox((0, 0), title, font=pictures._font(12))
        assert pictures._text_size(title) == (box[2] - box[0], box[3] - box[1]), title
    # a title neither font helps (CJK) stays in Pillow's font too: nothing gained by switching
    assert pictures._label_font("日本語.png") is pictures._font(12)


def _title_pixels(tmp_path, title: str) -> np.ndarray:
    """The row-label column of a one-cell labelled grid titled ``title``."""
    x = torch.zeros(1, 8, 8)
    path = pictures.save_labelled_grid([[x]], tmp_path / "t.png", [title], ["x"])
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L"))
    left = pictures._text_size(title)[0] + 8  # the labels' column: the title and its padding
    return arr[:, :left]


@needs_dejavu
def test_an_accented_title_is_drawn_not_boxed(tmp_path, fresh_font):
    # each accented letter drawn alone against the missing-glyph box drawn alone, in the picture
    for letter in "üé":
        drawn, boxed = _title_pixels(tmp_path, letter), _title_pixels(tmp_path, MISSING)
        assert (drawn < 128).any(), letter  # something is drawn at all
        assert drawn.shape != boxed.shape or not np.array_equal(drawn, boxed), letter
    # and the accents are drawn: ü is not u, é is not e
    assert not np.array_equal(_title_pixels(tmp_path, "ünïcødé 8.png"), _title_pixels(tmp_path, "unicode 8.png"))


@needs_dejavu
def test_the_size_of_an_accented_title_is_the_size_written(tmp_path, fresh_font):
    rows, cols = ["ünïcødé 8.png", "Ærøskøbing.png"], ["input x", "G(E(x))"]
    x = torch.zeros(1, 8, 8)
    path = pictures.save_labelled_grid([[x, x], [x, x]], tmp_path / "g.png", rows, cols, scale=2)
    with Image.open(path) as im:
        assert im.size == pictures.labelled_grid_size(rows, cols, 8, 8, scale=2)


def test_without_dejavu_pillows_font_is_used(tmp_path, fresh_font, monkeypatch):
    monkeypatch.setattr(pictures, "_latin_font_files", lambda: [str(tmp_path / "no-such-font.ttf")])
    assert pictures._wide_font(12) is None and pictures._label_font("ünïcødé.png") is pictures._font(12)
    x = torch.zeros(1, 8, 8)
    path = pictures.save_labelled_grid([[x]], tmp_path / "g.png", ["ünïcødé.png"], ["x"])
    with Image.open(path) as im:
        assert im.size == pictures.labelled_grid_size(["ünïcødé.png"], ["x"], 8, 8)


def test_finding_the_font_does_not_import_matplotlib():
    # matplotlib is only where its font file lies: importing it would slow every picture command
    code = ("import sys; import alae_fast.inference.pictures as p; assert p._label_font('ü') is not None; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
