"""The size of a picture is known before it is drawn: grid_size, pairs_grid_size and
labelled_grid_size are the writers' own layout (the command line refuses with them), and every
writer refuses a picture over MAX_PICTURE_PIXELS before drawing it."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image")

import alae_fast.inference.pictures as pictures  # noqa: E402
from alae_fast.inference.pictures import (MAX_PICTURE_PIXELS, grid_size, labelled_grid_size,  # noqa: E402
                                          make_grid, pairs_grid_size, save_image_grid, save_labelled_grid,
                                          save_pairs_grid)

README = Path(__file__).parent.parent / "README.md"


def _size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


@pytest.mark.parametrize("n, nrow, padding, scale", [(1, None, 2, 1), (5, None, 2, 4), (9, None, 0, 1),
                                                     (10, None, 1, 2), (7, 3, 2, 3), (3, 8, 2, 1), (17, 1, 5, 1)])
def test_grid_size_is_the_size_written(tmp_path, n, nrow, padding, scale):
    images = torch.rand(n, 1, 5, 3) * 2 - 1
    width, height = grid_size(n, 5, 3, nrow, padding, scale)
    g = make_grid(images, nrow, padding)
    assert (g.shape[1] * scale, g.shape[0] * scale) == (width, height)
    assert _size(save_image_grid(images, tmp_path / "g.png", nrow, padding, scale=scale)) == (width, height)
    assert _size(save_pairs_grid(images, images, tmp_path / "p.png", nrow, padding, scale)) == \
        pairs_grid_size(n, 5, 3, nrow, padding, scale)
    assert _size(save_pairs_grid(images, images, tmp_path / "t.png", nrow, padding, scale, refined=images)) == \
        pairs_grid_size(n, 5, 3, nrow, padding, scale, per_pair=3)
    assert _size(save_pairs_grid(images, images, tmp_path / "u.png", nrow, padding, scale, titles=False)) == \
        pairs_grid_size(n, 5, 3, nrow, padding, scale, titles=False) == \
        grid_size(2 * n, 5, 3, 2 * (nrow or math.isqrt(n - 1) + 1), padding, scale)


def test_pairs_with_refined_reconstructions_are_triples_in_order(tmp_path):
    a, b, c = (torch.full((2, 1, 1, 1), v) for v in (-1.0, 0.0, 1.0))
    with Image.open(save_pairs_grid(a, b, tmp_path / "t.png", padding=0, refined=c, titles=False)) as im:
        assert np.asarray(im.convert("L")).ravel().tolist() == [0, 128, 255, 0, 128, 255]  # x, G(E(x)), refined
    with pytest.raises(ValueError, match=r"^refined: shape \(1, 1, 1, 1\) differs from originals \(2, 1, 1, 1\)"):
        save_pairs_grid(a, b, tmp_path / "u.png", refined=c[:1])
    with pytest.raises(ValueError, match=r"^per_pair: expected 2 \(original, reconstruction\) or 3"):
        pairs_grid_size(2, 1, 1, per_pair=4)
    assert not (tmp_path / "u.png").exists()


@pytest.mark.parametrize("n, per_row, refined", [(5, None, True), (4, 1, False), (7, 3, False)])
def test_pairs_grid_titles_each_column_and_keeps_every_pixel(tmp_path, n, per_row, refined):
    from alae_fast.inference.pictures import PAIR_TITLES, _text_size

    torch.manual_seed(n)
    groups = [torch.rand(n, 3, 6, 5) * 2 - 1 for _ in range(3 if refined else 2)]
    scale, padding = 3, 2
    path = save_pairs_grid(*groups[:2], tmp_path / "t.png", per_row, padding, scale,
                           refined=groups[2] if refined else None)
    arr = np.asarray(Image.open(path).convert("RGB"))
    assert (arr.shape[1], arr.shape[0]) == pairs_grid_size(n, 6, 5, per_row, padding, scale, len(groups))
    per_row = per_row or math.isqrt(n - 1) + 1
    gap = padding * scale  # the gaps are enlarged with the images, as in the untitled grid
    top = max(_text_size(t)[1] for t in PAIR_TITLES[:len(groups)]) + 2 * gap
    left = 2 * gap
    for i in range(n):  # pair i sits in row i // per_row, its images side by side, each enlarged 3 times
        r, q = divmod(i, per_row)
        for g, images in enumerate(groups):
            y, x = top + r * (6 * scale + gap), left + (q * len(groups) + g) * (5 * scale + gap)
            want = ((images[i].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
            assert np.array_equal(arr[y:y + 6 * scale:scale, x:x + 5 * scale:scale], want)
    assert (arr[:top] < 128).any()  # the titles are drawn over the columns
    r, q = divmod(n, per_row)  # the cells after the last pair, in a short last row, stay white
    if q:
        x = left + q * len(groups) * (5 * scale + gap)
        assert (arr[top + r * (6 * scale + gap):, x:] == 255).all()
    with pytest.raises(ValueError, match=r"^titles: expected True, False or 2 strings"):
        save_pairs_grid(*groups[:2], tmp_path / "u.png", titles=["only one"])
    assert not (tmp_path / "u.png").exists()


@pytest.mark.parametrize("refined", [False, True])
def test_pairs_grid_with_row_titles_puts_one_named_pair_a_row(tmp_path, refined):
    # reconstruct of a user's files laid two pairs a row under column titles alone: which pair was
    # which file could not be told; with row_titles each pair has a row beside its name
    from alae_fast.inference.pictures import PAIR_TITLES, _text_size

    n, scale, padding = 3, 3, 2
    groups = [torch.rand(n, 1, 6, 5) * 2 - 1 for _ in range(3 if refined else 2)]
    names = ["a.png", "a much longer name.png", "b.png"]
    path = save_pairs_grid(*groups[:2], tmp_path / "t.png", padding=padding, scale=scale,
                           refined=groups[2] if refined else None, row_titles=names)
    arr = np.asarray(Image.open(path).convert("L"))
    assert (arr.shape[1], arr.shape[0]) == pairs_grid_size(n, 6, 5, padding=padding, scale=scale,
                                                           per_pair=len(groups), row_titles=names)
    gap = padding * scale
    top = max(_text_size(t)[1] for t in PAIR_TITLES[:len(groups)]) + 2 * gap
    left = _text_size(names[1])[0] + 2 * gap  # as wide as the widest name
    assert arr.shape[1] == left + len(groups) * (5 * scale + gap) + gap  # one pair a row
    assert arr.shape[0] == top + n * (6 * scale + gap) + gap
    for i in range(n):
        for g, images in enumerate(groups):
            y, x = top + i * (6 * scale + gap), left + g * (5 * scale + gap)
            want = ((images[i, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
            assert np.array_equal(arr[y:y + 6 * scale:scale, x:x + 5 * scale:scale], want)
        assert (arr[top + i * (6 * scale + gap):top + (i + 1) * (6 * scale + gap), :left - gap] < 128).any()  # named
    for bad, said in (({"row_titles": names[:2]}, r"^row_titles: expected 3 strings \(one a pair\); got 2$"),
                      ({"row_titles": "abc"}, r"^row_titles: expected 3 strings"),
                      ({"row_titles": names, "pairs_per_row": 2},
                       r"^pairs_per_row: expected None or 1 with row_titles"),
                      ({"row_titles": names, "titles": False}, r"^titles: row_titles go with column titles")):
        with pytest.raises(ValueError, match=said):
            save_pairs_grid(*groups[:2], tmp_path / "u.png", **bad)
        with pytest.raises(ValueError, match=said):
            pairs_grid_size(n, 6, 5, **bad)
    assert not (tmp_path / "u.png").exists()


def test_grid_size_counts_rows_and_columns_exactly():
    # ceil(sqrt(n)) columns even where float sqrt would round: 10**16 + 1 images need 10**8 + 1 columns
    assert grid_size(10 ** 16 + 1, 1, 1, padding=0) == (10 ** 8 + 1, 10 ** 8)
    assert grid_size(4, 32, 32, scale=4) == ((2 + 2 * 34) * 4, (2 + 2 * 34) * 4)
    with pytest.raises(ValueError, match=r"^count: expected >= 1"):
        grid_size(0, 32, 32)
    with pytest.raises(ValueError, match=r"^nrow: expected >= 1, got 0$"):
        grid_size(3, 32, 32, nrow=0)


def test_writers_refuse_a_picture_over_the_limit_before_drawing(tmp_path, monkeypatch):
    monkeypatch.setattr(pictures, "make_grid", lambda *a, **k: pytest.fail("drew the grid"))
    x = torch.zeros(4, 1, 32, 32)
    # 4 images of 32x32 shown 120 times larger: (2 + 2 x 34) x 120 = 8400 pixels a side
    with pytest.raises(ValueError, match=r"^save_image_grid: the picture would be 8400x8400 pixels \(70,560,000\), "
                                         r"more than 67108864 \(2\*\*26, MAX_PICTURE_PIXELS\); give fewer images or a "
                                         r"smaller scale$"):
        save_image_grid(x, tmp_path / "g.png", scale=120)
    with pytest.raises(ValueError, match=r"^save_pairs_grid: the picture would be "):
        save_pairs_grid(x, x, tmp_path / "p.png", scale=100)
    assert not list(tmp_path.iterdir())


def test_labelled_grid_size_is_the_size_written_and_capped(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(3, 4, 1, 8, 8, generator=g) * 2 - 1
    cells = [["corner", *imgs[0, :3]], *[[*imgs[r]] for r in (1, 2)]]
    rows, cols = ["sources A", "B1 with A's\ncoarse styles (0-2)", "B2"], ["B", "A1", "A2", "A3"]
    for scale, padding in ((1, 4), (4, 4), (3, 0)):
        path = save_labelled_grid(cells, tmp_path / "t.png", rows, cols, scale=scale, padding=padding)
        assert _size(path) == labelled_grid_size(rows, cols, 8, 8, scale, padding)
    # style-mix --rows 300 --cols 40 wrote a 5527x118953 PNG: the labelled grid had no limit
    width, height = labelled_grid_size(rows, cols, 8, 8, 400)
    assert width * height > MAX_PICTURE_PIXELS
    monkeypatch.setattr(Image, "new", lambda *a, **k: pytest.fail("drew the picture"))
    with pytest.raises(ValueError, match=rf"^save_labelled_grid: the picture would be {width}x{height} pixels "
                                         rf"\({width * height:,}\), more than {MAX_PICTURE_PIXELS} \(2\*\*26, "
                                         r"MAX_PICTURE_PIXELS\); give fewer rows or columns or a smaller scale$"):
        save_labelled_grid(cells, tmp_path / "big.png", rows, cols, scale=400)
    assert not (tmp_path / "big.png").exists()


def test_readme_says_how_many_images_a_generate_grid_holds():
    # "65,536 images of 32x32" counted neither the 4x enlargement nor the gaps
    from alae_fast.cli.pictures import _display_scale, _largest_fitting

    def most(res: int) -> int:
        scale = _display_scale(res)
        return _largest_fitting(lambda n: grid_size(n, res, res, scale=scale), 1, 10 ** 6)

    n32, n1024 = most(32), most(1024)
    assert (n32, n1024) == (3600, 56)
    side = grid_size(n32, 32, 32, scale=4)
    text = " ".join(README.read_text().split())
    assert (f"a `generate` grid holds at most {n32:,} images of 32×32 ({side[0]:,}×{side[1]:,} pixels) and "
            f"{n1024} of 1024×1024") in text
    assert "65,536" not in text
    for n in (n32, n1024):  # one more does not fit
        res = 32 if n == n32 else 1024
        w, h = grid_size(n + 1, res, res, scale=_display_scale(res))
        assert w * h > MAX_PICTURE_PIXELS
    assert re.search(r"2\^26 = 67,108,864 pixels", text) and 2 ** 26 == MAX_PICTURE_PIXELS
    assert np.prod(grid_size(n32, 32, 32, scale=4)) <= MAX_PICTURE_PIXELS


@pytest.mark.parametrize("titles", [True, False])
def test_every_writer_checks_scale_and_titles(tmp_path, titles):
    # the titled pairs grid (the default) had lost save_image_grid's scale check: scale 0 was a
    # Pillow error, scale True a picture
    x = torch.rand(2, 1, 4, 4) * 2 - 1
    for scale in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"^scale: expected a positive int, got {re.escape(repr(scale))}$"):
            save_pairs_grid(x, x, tmp_path / "p.png", scale=scale, titles=titles)
        with pytest.raises(ValueError, match=r"^scale: expected a positive int"):
            save_labelled_grid([[x[0]]], tmp_path / "l.png", ["r"], ["c"], scale=scale)
    with pytest.raises(ValueError, match=r"^titles: expected True, False or 2 strings \(one a column of a pair\); "
                                         r"got 'ab'$"):
        save_pairs_grid(x, x, tmp_path / "p.png", titles="ab")  # not the titles 'a' and 'b'
    assert not list(tmp_path.iterdir())


def test_row_titles_may_be_any_iterable_of_strings(tmp_path):
    # a generator was used up by the check of its items, then refused as "got 0" titles
    from alae_fast.inference.pictures import save_pairs_grid

    x = torch.zeros(2, 1, 6, 5)
    sizes = []
    for titles in (["a", "b"], (t for t in ["a", "b"]), iter(("a", "b"))):
        assert pairs_grid_size(2, 6, 5, row_titles=(t for t in ["a", "b"])) == pairs_grid_size(2, 6, 5, row_titles=["a", "b"])
        path = save_pairs_grid(x, x, tmp_path / "p.png", row_titles=titles)
        with Image.open(path) as im:
            sizes.append(im.size)
    assert sizes[0] == sizes[1] == sizes[2] == pairs_grid_size(2, 6, 5, row_titles=["a", "b"])
    for bad in ((t for t in ["a", 3]), 5, "ab"):
        with pytest.raises(ValueError, match=r"^row_titles: expected 2 strings \(one a pair\), or None; got "):
            pairs_grid_size(2, 6, 5, row_titles=bad)


def test_reconstructs_titled_size_is_pairs_grid_size_and_its_bound_past_4096_titles():
    # reconstruct sized its file-titled picture through _labelled_size, a second copy of
    # save_pairs_grid's layout; now pairs_grid_size itself, skipped past 4096 titles where the
    # tiles alone are too large (each title is measured, ~0.3 ms)
    from alae_fast.cli.pictures import _bounded_size, _fits
    from alae_fast.inference.pictures import display_scale

    res, scale = 32, display_scale(32)
    for per in (2, 3):
        for count in (1, 7, 4094 - per, 4096 - per, 4097 - per, 5000):
            names = [f"file_{k:05d}.png" for k in range(count)]
            exact = pairs_grid_size(count, res, res, scale=scale, per_pair=per, row_titles=names)
            size, is_exact = _bounded_size(count, per, res, scale, 2 * scale,
                                           lambda: pairs_grid_size(count, res, res, scale=scale, per_pair=per,
                                                                   row_titles=names))
            if count + per <= 4096:
                assert is_exact and size == exact, (per, count)
            else:  # the lower bound: as refused as the exact size, and no larger
                assert not is_exact and not _fits(size) and not _fits(exact), (per, count)
                assert size[0] <= exact[0] and size[1] <= exact[1], (per, count, size, exact)
