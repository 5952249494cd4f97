"""Attribute editing: the official demo's arithmetic against a hand-written NumPy version, the
official LinearSVC fit on labelled clusters, direction files (good and bad), and the `edit` and
`directions` commands end to end on a tiny trained run."""

from pathlib import Path

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
import torch
from PIL import Image

from alae_fast.cli import main
from alae_fast.edit import (EDIT_LAYERS, direction_coefficients, edit_w, fit_class_directions, fit_direction,
                            load_direction, save_direction)
from alae_fast_tests_support import one_thread, toy

HERE = Path(__file__).parent
pytestmark = pytest.mark.usefixtures("one_thread")


def _demo_edit(w, w_avg, dirs, sliders, num_ws, keep_from):
    """interactive_demo.py, one image at a time, written out in NumPy float64:
    latents = w - avg; v_k = sum(latents * d_k); latents -= v_k d_k (for each k, the v_k all from
    the original latents); new = latents + sum(slider_k d_k); styles[i] = new + avg for
    i < keep_from, else the encoded w."""
    out = np.empty((w.shape[0], num_ws, w.shape[1]))
    for n in range(w.shape[0]):
        lat = w[n] - w_avg
        v = [float(np.sum(lat * d)) for d in dirs]
        for vk, d in zip(v, dirs):
            lat = lat - vk * d
        new = lat + sum(s * d for s, d in zip(sliders[n], dirs)) + w_avg
        for i in range(num_ws):
            out[n, i] = new if i < keep_from else w[n]
    return out, v


@pytest.mark.parametrize("num_ws", [18, 8])
def test_edit_w_is_the_demo_arithmetic(num_ws):
    rng = np.random.default_rng(0)
    L = 12
    w = rng.normal(size=(3, L))
    w_avg = rng.normal(size=L) * 0.3
    dirs = {"a": rng.normal(size=L) * 0.4, "b": rng.normal(size=L) * 1.7, "unused": rng.normal(size=L)}
    amounts = {"a": 2.5, "b": -1.25}
    wt = torch.from_numpy(w)
    # absolute: the amounts are the sliders
    ws = edit_w(wt, dirs, amounts, torch.from_numpy(w_avg), num_ws, mode="absolute")
    ref, _ = _demo_edit(w, w_avg, [dirs["a"], dirs["b"]], [[2.5, -1.25]] * 3, num_ws, 16)
    assert ws.dtype == torch.float64 and ws.shape == (3, num_ws, L)
    np.testing.assert_allclose(ws.numpy(), ref, rtol=1e-12, atol=1e-12)
    # offset: the sliders start at each image's own coefficient (the traversal figures)
    coefs = direction_coefficients(wt, dirs, w_avg)
    sliders = [[float(coefs["a"][n]) + 2.5, float(coefs["b"][n]) - 1.25] for n in range(3)]
    ref, _ = _demo_edit(w, w_avg, [dirs["a"], dirs["b"]], sliders, num_ws, 16)
    ws = edit_w(wt, dirs, amounts, w_avg, num_ws)
    np.testing.assert_allclose(ws.numpy(), ref, rtol=1e-12, atol=1e-12)
    if num_ws > EDIT_LAYERS:  # the last two keep the encoded w
        assert torch.equal(ws[:, 16:], wt.unsqueeze(1).expand(-1, 2, -1))
    np.testing.assert_allclose(coefs["unused"].numpy(), (w - w_avg) @ dirs["unused"], rtol=1e-12)


def test_edit_w_float32_layers_and_identity():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 6, generator=g)
    avg = torch.randn(6, generator=g)
    d = {"x": np.random.default_rng(2).normal(size=6)}  # float64 file applied to float32 w
    same = edit_w(w, d, {"x": 0.0}, avg, 5)
    torch.testing.assert_close(same, w.unsqueeze(1).expand(-1, 5, -1), rtol=1e-5, atol=1e-5)
    moved = edit_w(w, d, {"x": 3.0}, avg, 5, edit_layers=2)
    assert moved.dtype == torch.float32
    step = torch.from_numpy(d["x"]).float() * 3.0
    torch.testing.assert_close(moved[:, :2], (w + step).unsqueeze(1).expand(-1, 2, -1), rtol=1e-5, atol=1e-5)
    assert torch.equal(moved[:, 2:], w.unsqueeze(1).expand(-1, 3, -1))
    assert torch.equal(edit_w(w, d, {"x": 3.0}, avg, 5, edit_layers=None)[:, 4], moved[:, 0])
    # NumPy's ints are ints here too (as seeds and counts are in the rest of the API)
    assert torch.equal(edit_w(w, d, {"x": 3.0}, avg, np.int64(5), edit_layers=np.int32(2)), moved)


def test_edit_w_bad_arguments():
    w, avg = torch.randn(2, 4), torch.zeros(4)
    with pytest.raises(ValueError, match=r"directions\['x'\].*4 values.*\(5,\)"):
        edit_w(w, {"x": np.ones(5)}, {"x": 1.0}, avg, 3)
    with pytest.raises(ValueError, match="unknown direction"):
        edit_w(w, {"x": np.ones(4)}, {"y": 1.0}, avg, 3)
    with pytest.raises(ValueError, match="non-finite"):
        edit_w(w, {"x": np.array([1, np.nan, 0, 0])}, {"x": 1.0}, avg, 3)
    with pytest.raises(ValueError, match="mode"):
        edit_w(w, {"x": np.ones(4)}, {"x": 1.0}, avg, 3, mode="relative")
    # either w or w_avg may be another model's: a size disagreement names both
    for call in (lambda w_, a_: edit_w(w_, {"x": np.ones(4)}, {"x": 1.0}, a_, 3),
                 lambda w_, a_: direction_coefficients(w_, {"x": np.ones(4)}, a_)):
        with pytest.raises(ValueError, match=r"^w, w_avg: latent sizes disagree: w is \(2, 3\), w_avg \(4,\) "):
            call(torch.randn(2, 3), avg)
        with pytest.raises(ValueError, match=r"^w, w_avg: latent sizes disagree: w is \(2, 4\), w_avg \(3,\) "):
            call(w, torch.zeros(3))
        with pytest.raises(ValueError, match=r"^w_avg: expected a vector \[latent\]"):
            call(w, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="num_ws"):
        edit_w(w, {"x": np.ones(4)}, {"x": 1.0}, avg, 0)


# --- fitting ---------------------------------------------------------------------------------------

def test_fit_direction_separates_labelled_clusters():
    rng = np.random.default_rng(3)
    L, n = 16, 200
    axis = rng.normal(size=L)
    axis /= np.linalg.norm(axis)
    noise = rng.normal(size=(2 * n, L))
    labels = np.repeat([0, 1], n)
    w = noise + np.where(labels[:, None] == 1, 2.0, -2.0) * axis
    d = fit_direction(torch.from_numpy(w).float(), labels)
    assert d.dtype == np.float64 and d.shape == (L,)
    assert abs(np.linalg.norm(d) - 1.0) > 1e-3  # the official vectors are not normalised
    assert d @ axis / np.linalg.norm(d) > 0.9  # points from label 0 to label 1
    proj = w @ d
    assert proj[labels == 1].mean() > proj[labels == 0].mean()
    assert ((proj > np.median(proj)) == labels.astype(bool)).mean() > 0.95
    per_class = fit_class_directions(w, labels * 2 + 3, {3: "neg", 5: "pos"})
    np.testing.assert_allclose(per_class["pos"], d, rtol=1e-5, atol=1e-6)  # same fit, float64 input
    with pytest.raises(ValueError, match="both classes"):
        fit_direction(w, np.ones(2 * n))
    with pytest.raises(ValueError, match="binary"):
        fit_direction(w, labels * 2)
    with pytest.raises(ValueError, match="labels: expected shape"):
        fit_direction(w, labels[:-1])
    with pytest.raises(ValueError, match=r"^classes: expected 400 class ids \(one per row of w\); got 399$"):
        fit_class_directions(w, labels[:-1])


# --- direction files -------------------------------------------------------------------------------

def test_direction_files(tmp_path):
    v = np.random.default_rng(4).normal(size=8)
    p = save_direction(v, tmp_path, "smile")
    assert p.name == "direction_smile.npy"
    out = load_direction(p, 8)
    assert out.dtype == np.float64 and np.array_equal(out, v)
    np.save(tmp_path / "f32.npy", v.astype(np.float32))
    assert load_direction(tmp_path / "f32.npy", 8).dtype == np.float64
    with pytest.raises(ValueError, match=r"direction_smile\.npy.*latent size is 9"):
        load_direction(p, 9)
    (tmp_path / "junk.npy").write_bytes(b"this is not numpy")
    with pytest.raises(ValueError, match=r"junk\.npy: not a readable \.npy") as e:
        load_direction(tmp_path / "junk.npy", 8)
    assert "NumPy file" in str(e.value) and "pickle" not in str(e.value)  # not NumPy's advice to unpickle
    (tmp_path / "cut.npy").write_bytes(p.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"cut\.npy: not a readable"):
        load_direction(tmp_path / "cut.npy", 8)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: not a readable"):
        load_direction(tmp_path / "obj.npy", 8)  # pickled objects are never loaded
    # a missing file is said as a missing image or checkpoint is, without the system's errno
    with pytest.raises(FileNotFoundError, match=r"^direction file '.*missing\.npy' does not exist$"):
        load_direction(tmp_path / "missing.npy", 8)
    np.save(tmp_path / "m.npy", np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        load_direction(tmp_path / "m.npy", 8)
    np.save(tmp_path / "row.npy", v[None])  # LinearSVC.coef_'s [1, D] row is that vector
    assert np.array_equal(load_direction(tmp_path / "row.npy", 8), v)
    np.save(tmp_path / "zero.npy", np.zeros(8))
    with pytest.raises(ValueError, match=r"zero\.npy: direction is all zeros"):
        load_direction(tmp_path / "zero.npy", 8)  # the same rule as the page's upload (one parser)
    np.save(tmp_path / "inf.npy", np.r_[np.ones(7), np.inf])
    with pytest.raises(ValueError, match=r"inf\.npy: direction holds NaN or infinity"):
        load_direction(tmp_path / "inf.npy", 8)


def test_direction_files_that_cannot_be_read_say_so_plainly(tmp_path, monkeypatch):
    from alae_fast.errors import UserError

    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(UserError, match=r"^direction file '.*folder\.npy' is a folder; give a \.npy file"):
        load_direction(tmp_path / "folder.npy", 8)
    np.save(tmp_path / "locked.npy", np.ones(8))
    real = Path.read_bytes

    def refuse(self):  # the tests may run as root, whom chmod 000 does not stop
        if self.name == "locked.npy":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(UserError) as e:
        load_direction(tmp_path / "locked.npy", 8)
    assert str(e.value) == f"direction file {str(tmp_path / 'locked.npy')!r} cannot be read (Permission denied)"
    assert "Errno" not in str(e.value) and "PermissionError" not in str(e.value)


def _float32_length(v: np.ndarray) -> float:
    """The reference: the length of v once stored in float32, in exact arithmetic (Python floats
    of the float32 values, scaled so that their squares neither underflow nor overflow)."""
    f = [float(x) for x in v.astype(np.float32)]
    top = max(abs(x) for x in f)
    return 0.0 if top == 0 else top * sum((x / top) ** 2 for x in f) ** 0.5


@pytest.mark.parametrize("value, said", [
    (1e-300, r"has length 5\.66e-300, which is 0 in float32 \(every value underflows\)"),
    (1e-45, r"has length 7\.93e-45 in float32, too short to use"),
    (1e-20, r"has length 5\.66e-20 in float32, too short to use"),
    (1e39, r"has values beyond float32's range"),
])
def test_directions_unusable_in_float32_are_refused_everywhere(tmp_path, value, said):
    # np.full(32, 1e-300) was taken: nonzero in float64, all zero in the model's float32
    from alae_fast.edit.apply import direction_problem, shortest_direction
    from alae_fast.edit.directions import parse_direction

    v = np.full(32, value)
    np.save(tmp_path / "d.npy", v)
    with pytest.raises(ValueError, match=r"d\.npy: direction " + said):
        load_direction(tmp_path / "d.npy", 32)
    with pytest.raises(ValueError, match="direction " + said):  # the page's upload and --directions folder
        parse_direction((tmp_path / "d.npy").read_bytes(), 32, "direction 'uploaded'")
    with pytest.raises(ValueError, match=r"^directions\['d'\]: " + said):  # the Python API, w in float32
        edit_w(torch.zeros(1, 32), {"d": v}, {"d": 1.0}, torch.zeros(32), 1)
    with pytest.raises(ValueError, match="load_direction would refuse it"):
        save_direction(v, tmp_path, "tiny")
    if value < 1:
        assert _float32_length(v) < shortest_direction(torch.float32) == np.finfo(np.float32).eps / 1e6
    if value == 1e-20:  # float64 has the precision: the same vector moves a float64 w
        assert direction_problem(v, torch.float64) is None
        ws = edit_w(torch.zeros(1, 32, dtype=torch.float64), {"d": v}, {"d": 1e6}, torch.zeros(32, dtype=torch.float64),
                    1)
        assert float(ws.abs().max()) == pytest.approx(1e-14)


def test_directions_of_usable_length_are_taken(tmp_path):
    from alae_fast.edit.apply import direction_problem, shortest_direction

    rng = np.random.default_rng(7)
    for scale in (1.0, 1e-6, 2e-13, 1e30):
        v = rng.normal(size=32) * scale
        np.save(tmp_path / "d.npy", v)
        assert np.array_equal(load_direction(tmp_path / "d.npy", 32), v), scale
        assert direction_problem(v) is None and _float32_length(v) >= shortest_direction()
    # just either side of the bound, judged on the float32 values, against the reference length
    bound = shortest_direction()
    for factor, ok in ((1.01, True), (0.99, False)):
        v = rng.normal(size=32)
        v *= factor * bound / _float32_length(v)
        assert (_float32_length(v) >= bound) == ok
        assert (direction_problem(v) is None) == ok, factor


def test_edit_command_refuses_vanishing_and_missing_direction_files(toy_run, tmp_path, capsys):
    img = _digit_png(tmp_path / "x.png", 200)
    np.save(tmp_path / "tiny.npy", np.full(8, 1e-300))
    np.save(tmp_path / "tiny45.npy", np.full(8, 1e-45))
    np.save(tmp_path / "fine.npy", np.random.default_rng(1).normal(size=8))
    (tmp_path / "folder.npy").mkdir()
    out = tmp_path / "e.png"
    cases = [(f"{tmp_path / 'tiny.npy'}=2", f"{tmp_path / 'tiny.npy'}: direction has length 2.83e-300, which is 0 "
                                            f"in float32"),
             (f"{tmp_path / 'tiny45.npy'}=2", f"{tmp_path / 'tiny45.npy'}: direction has length 3.96e-45 in "
                                              f"float32, too short to use"),
             (f"{tmp_path / 'missing.npy'}=2", f"direction file {str(tmp_path / 'missing.npy')!r} does not exist"),
             (f"{tmp_path / 'gone' / 'd'}=2", f"direction file {str(tmp_path / 'gone' / 'd')!r} does not exist"),
             (f"{tmp_path / 'folder.npy'}=2", f"direction file {str(tmp_path / 'folder.npy')!r} is a folder"),
             (f"{tmp_path}=2", f"direction file {str(tmp_path)!r} is a folder")]
    for direction, said in cases:
        rc = main(["edit", "--ckpt", str(toy_run), str(img), "--direction", direction, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and said in err[0], (direction, err)
        assert "Errno" not in err[0] and "Error:" not in err[0], err
    assert not out.exists()
    assert main(["edit", "--ckpt", str(toy_run), str(img), "--direction", f"{tmp_path / 'fine.npy'}=2",
                 "--steps", "2", "--out", str(out)]) == 0 and out.is_file()


def test_reads_an_official_direction_file(tmp_path):
    path = HERE / "fixtures" / "official-directions" / "direction_1.npy"  # podgorskiy/ALAE, smile
    d = load_direction(path, 512)
    assert d.dtype == np.float64 and d.shape == (512,)
    assert abs(np.linalg.norm(d) - 1.010) < 1e-3  # not unit-norm, as the official fit leaves it
    with pytest.raises(ValueError, match=r"direction_1\.npy.*latent size is 256"):
        load_direction(path, 256)  # e.g. the celeba-128 model
    w = torch.randn(2, 512, dtype=torch.float64)
    ws = edit_w(w, {"smile": d}, {"smile": 20.0}, torch.zeros(512, dtype=torch.float64), 18)
    torch.testing.assert_close(ws[:, :16], (w + 20.0 * torch.from_numpy(d)).unsqueeze(1).expand(-1, 16, -1))


# --- the commands ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    toy()
    out = tmp_path_factory.mktemp("edit") / "toy"
    with one_thread():
        rc = main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.064", "--no-progress", "--no-eval",
                   "--threads", "1", "--style-mixing", "official", "--w-avg-update", "every_generate"])
    assert rc == 0
    return out


def _digit_png(path, value):
    img = np.zeros((16, 16), np.uint8)
    img[3:13, 6:10] = value
    Image.fromarray(img).save(path)
    return path


def test_run_records_the_behaviour(toy_run):
    import json

    cfg = json.loads((toy_run / "config.json").read_text())
    assert cfg["behaviour"] == {"style_mixing": "official", "w_avg_update": "every_generate", "flip": False,
                                "mixing_prob": 0.9, "d_zero_grad_step": False, "augment": "",
                                "lae_weight": 1.0, "r1_interval": 1, "channels_last": False}


def test_edit_and_directions_commands(toy_run, tmp_path, capsys):
    img = _digit_png(tmp_path / "one.png", 255)
    d = tmp_path / "dirs"
    assert main(["directions", "--ckpt", str(toy_run), "--out", str(d)]) == 0
    files = sorted(p.name for p in d.glob("direction_*.npy"))
    assert len(files) == 45 and "direction_3-8.npy" in files
    v = load_direction(d / "direction_3-8.npy", 8)
    out = tmp_path / "edit.png"
    rc = main(["edit", "--ckpt", str(toy_run), str(img), str(img), "--direction", "3-8=4",
               "--direction", f"{d / 'direction_0-1.npy'}=1.5", "--steps", "5", "--out", str(out)])
    assert rc == 0
    with Image.open(out) as im:
        strip = np.asarray(im)
    assert strip.shape[0] > strip.shape[1] / 5 * 1.5  # two rows of five
    assert "3-8 -4..+4" in capsys.readouterr().out
    # each column is titled with its amounts, each row with its image's file name
    import alae_fast.inference.pictures as pictures

    titled = []
    real = pictures.save_labelled_grid

    def recording(cells, path, row_labels, col_labels, **kw):
        titled.append((list(row_labels), list(col_labels), [len(r) for r in cells]))
        return real(cells, path, row_labels, col_labels, **kw)

    long_name = _digit_png(tmp_path / ("a" * 30 + ".png"), 200)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pictures, "save_labelled_grid", recording)
        assert main(["edit", "--ckpt", str(toy_run), str(img), str(long_name), "--direction", "3-8=4",
                     "--direction", f"{d / 'direction_0-1.npy'}=-1.5", "--steps", "5", "--out", str(out)]) == 0
    assert titled == [(["one.png", "aaaaaaaaa...aaaa.png"],
                       ["input", "3-8: -4\n0-1: +1.5", "3-8: -2\n0-1: +0.75", "3-8: +0\n0-1: +0",
                        "3-8: +2\n0-1: -0.75", "3-8: +4\n0-1: -1.5"], [6, 6])]
    # the rows' files in full on stdout, once, below the wrote line: a cut title, or one the
    # picture's font cannot draw (日本語.png came out as empty boxes), still names its file
    said = capsys.readouterr().out.splitlines()
    legend = [line for line in said if line.startswith("rows, top to bottom: ")]
    assert legend == [f"rows, top to bottom: 1 'one.png': {img}; 2 'aaaaaaaaa...aaaa.png': {long_name}"], said
    assert said[-1] == legend[0] and said[-2].startswith("wrote 2 strips of 5 images")
    # the built-in pair and the written file are the same fit
    from alae_fast.edit.commands import resolve_directions
    from alae_fast.inference.loading import load_run

    run = load_run(toy_run)
    vectors, amounts = resolve_directions(["3-8=2", f"{d / 'direction_0-1.npy'}=-1"], run)
    np.testing.assert_allclose(vectors["3-8"], v, rtol=1e-6, atol=1e-8)  # built-in, fitted again
    assert amounts == {"3-8": 2.0, "0-1": -1.0}
    # a strip's middle column is the reconstruction (offset 0)
    from alae_fast.edit.commands import edit_strip
    from alae_fast.inference.pixels import load_image_files, prepare_images

    x = load_image_files([img], run.schedule)
    s = edit_strip(run, x, vectors, amounts, steps=3)
    with torch.no_grad():
        rec = run.decode(run.encode(prepare_images(x, run.schedule, run.phase)))
    torch.testing.assert_close(s[1:2], rec, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(s[0], s[2])


def test_directions_from_class_folders(toy_run, tmp_path):
    for cls, value in (("dark", 60), ("bright", 250)):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(6):
            _digit_png(tmp_path / "data" / cls / f"{i}.png", value - 7 * i)
    assert main(["directions", "--ckpt", str(toy_run), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "o")]) == 0
    # with the record of the checkpoint they were fitted on (alae_fast.edit.provenance)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["direction_bright.npy", "direction_dark.npy",
                                                                   "fitted_on.json"]


def test_edit_bad_input_one_line(toy_run, tmp_path, capsys):
    img = _digit_png(tmp_path / "x.png", 200)
    np.save(tmp_path / "short.npy", np.ones(5))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    cases = [
        (["--direction", f"{tmp_path / 'short.npy'}=1"], r"short\.npy.*latent size is 8"),
        (["--direction", "smile=1"], r"unknown direction 'smile'"),
        (["--direction", "smile=1", "--directions", str(tmp_path)], r"no direction_smile\.npy or direction_1\.npy \(the official smile\) in"),
        (["--direction", f"{tmp_path / 'bad.npy'}=1"], r"bad\.npy: not a readable \.npy"),
        (["--direction", "3-8=lots"], r"amount 'lots' is not a number"),
        # a folder given but empty: 3-8 had fallen through to the built-in pair, the folder unused
        (["--direction", "3-8=1", "--directions", str(tmp_path / "empty")],
         r"--directions: '.*empty' holds no \.npy files, where '3-8' would be looked for"),
    ]
    (tmp_path / "empty").mkdir()
    import re

    for extra, pattern in cases:
        capsys.readouterr()
        rc = main(["edit", "--ckpt", str(toy_run), str(img), *extra, "--out", str(tmp_path / "e.png")])
        err = capsys.readouterr().err
        assert rc == 2, extra
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert re.search(pattern, err), (pattern, err)
    # an empty --directions is only refused where a NAME would be looked for in it
    np.save(tmp_path / "ok.npy", np.linspace(-1.0, 1.0, 8))
    assert main(["edit", "--ckpt", str(toy_run), str(img), "--direction", f"{tmp_path / 'ok.npy'}=1",
                 "--directions", str(tmp_path / "empty"), "--out", str(tmp_path / "e.png")]) == 0


def test_official_attribute_names_find_the_official_files(toy_run, tmp_path):
    # README: direction_<n>.npy with n = 1 smile, 10 big lips ...: the names find those files.
    from alae_fast.edit.commands import resolve_directions
    from alae_fast.inference.loading import load_run

    run = load_run(toy_run)
    np.save(tmp_path / "direction_1.npy", np.linspace(-1.0, 1.0, 8))
    np.save(tmp_path / "direction_10.npy", np.linspace(1.0, 2.0, 8))
    vectors, amounts = resolve_directions(["smile=20", "big-lips=-3"], run, tmp_path)
    np.testing.assert_array_equal(vectors["smile"], np.linspace(-1.0, 1.0, 8))
    np.testing.assert_array_equal(vectors["big-lips"], np.linspace(1.0, 2.0, 8))
    assert amounts == {"smile": 20.0, "big-lips": -3.0}
    with pytest.raises(ValueError, match=r"no direction_glasses\.npy or direction_19\.npy \(the official glasses\)"):
        resolve_directions(["glasses=1"], run, tmp_path)


def test_edit_seed_goes_with_drawn_noise(toy_run, tmp_path, capsys):
    # --seed seeds G's noise: with no noise drawn (zero, none, const) it changed nothing, silently
    img = _digit_png(tmp_path / "x.png", 200)
    base = ["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--steps", "2"]
    for mode in ([], ["--noise-mode", "zero"], ["--noise-mode", "const"]):
        assert main([*base, *mode, "--seed", "3", "--out", str(tmp_path / "e.png")]) == 2, mode
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--seed seeds G's noise" in err[0] and "random or batch" in err[0], err
    assert not (tmp_path / "e.png").exists()
    for mode in ("random", "batch"):  # where noise is drawn, it takes effect
        assert main([*base, "--noise-mode", mode, "--seed", "1", "--out", str(tmp_path / f"{mode}.png")]) == 0


def test_edit_noise_and_noise_mode_disagreeing_are_refused(toy_run, tmp_path, capsys):
    img = _digit_png(tmp_path / "x.png", 200)
    rc = main(["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--noise", "random",
               "--noise-mode", "zero", "--out", str(tmp_path / "e.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--noise is the older spelling of --noise-mode" in err[0], err
    assert main(["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--noise", "random",
                 "--seed", "1", "--steps", "2", "--out", str(tmp_path / "e.png")]) == 0


def test_edit_layers_below_one_is_refused(toy_run, tmp_path, capsys):
    # --edit-layers 0 edited no style input: every picture of the strip was the reconstruction
    img = _digit_png(tmp_path / "x.png", 200)
    rc = main(["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--edit-layers", "0",
               "--out", str(tmp_path / "e.png")])
    err = capsys.readouterr().err.strip().splitlines()
    from alae_fast.inference.loading import load_run

    num_ws = int(load_run(toy_run).model.num_ws)  # the range said as for a value above it
    assert rc == 2 and err == [f"alae-fast edit: error: --edit-layers 0: no style input would be edited (those below "
                               f"0); expected 1-{num_ws}, or leave it out to edit all of them"], err


def test_edit_layers_above_the_model_are_refused_and_the_default_fits_every_model(toy_run, tmp_path, capsys):
    # an explicit --edit-layers above the model's count was taken as "all" without a word; only
    # the default (the official demo's 16, which must work on a model with fewer) may be cut
    from alae_fast.inference.loading import load_run

    num_ws = int(load_run(toy_run).model.num_ws)
    assert 1 < num_ws < EDIT_LAYERS  # this toy model has fewer style inputs than the demo's 16
    img = _digit_png(tmp_path / "x.png", 200)
    base = ["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--steps", "2"]
    for n in (num_ws + 1, 20):
        out = tmp_path / f"e{n}.png"
        assert main([*base, "--edit-layers", str(n), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"alae-fast edit: error: --edit-layers {n}: this model has {num_ws} style inputs; "
                       f"expected 1-{num_ws}, or leave it out to edit all of them"], err
        assert not out.exists()
    # left out: the demo's 16 cut to the model, i.e. all of them, the same picture as --edit-layers num_ws
    pictures = {}
    for name, flag in (("default", []), ("all", ["--edit-layers", str(num_ws)]), ("one", ["--edit-layers", "1"])):
        out = tmp_path / f"{name}.png"
        assert main([*base, *flag, "--out", str(out)]) == 0, capsys.readouterr().err
        with Image.open(out) as im:
            pictures[name] = np.asarray(im).copy()
    assert np.array_equal(pictures["default"], pictures["all"])
    assert not np.array_equal(pictures["default"], pictures["one"])  # the flag is taken, not ignored


def test_edit_strip_edit_layers(toy_run, tmp_path):
    from alae_fast.edit.commands import edit_strip, resolve_directions
    from alae_fast.inference.loading import load_run
    from alae_fast.inference.pixels import load_image_files

    run = load_run(toy_run)
    num_ws = int(run.model.num_ws)
    x = load_image_files([_digit_png(tmp_path / "x.png", 200)], run.schedule)
    vectors, amounts = resolve_directions(["3-8=2"], run)
    default = edit_strip(run, x, vectors, amounts, steps=2)
    torch.testing.assert_close(default, edit_strip(run, x, vectors, amounts, steps=2, edit_layers=None),
                               rtol=0, atol=0)
    torch.testing.assert_close(default, edit_strip(run, x, vectors, amounts, steps=2, edit_layers=num_ws),
                               rtol=0, atol=0)
    assert default.dtype == torch.float32 and default.shape[0] == 2
    for bad, said in ((num_ws + 1, rf"^edit_layers: {num_ws + 1} is more than num_ws \({num_ws}, "),
                      (EDIT_LAYERS, rf"^edit_layers: 16 is more than num_ws \({num_ws}, "),
                      (0, r"^edit_layers: expected an int >= 1 or None \(all\); got 0: no style input"),
                      ("all", r"^edit_layers: expected an int >= 1, None \(all\) or 'demo' \(the default")):
        with pytest.raises(ValueError, match=said):
            edit_strip(run, x, vectors, amounts, steps=2, edit_layers=bad)
    # steps: the type rule of the ops and the API, each error naming the function called
    from alae_fast.edit.commands import edit_latents_strip
    w = run.encode(x)
    for fn, arg in ((edit_strip, x), (edit_latents_strip, w)):
        for bad, error in (("7", TypeError), (2.0, TypeError), (True, TypeError), (1, ValueError)):
            with pytest.raises(error, match=rf"^{fn.__name__}: steps must be an int >= 2; got "):
                fn(run, arg, vectors, amounts, steps=bad)
    torch.testing.assert_close(edit_strip(run, x, vectors, amounts, steps=np.int64(2)), default, rtol=0, atol=0)


@pytest.mark.parametrize("num_ws", [1, 8, 16, 18])
def test_edit_w_edit_layers_range(num_ws):
    # default 'demo': the official demo's torch.where(layer_idx < 16, w', w); None: all; an int:
    # 1..num_ws, above it a ValueError naming edit_layers and num_ws (not silently "all")
    g = torch.Generator().manual_seed(3)
    w, avg = torch.randn(2, 6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    d = {"x": np.random.default_rng(4).normal(size=6)}
    ref, _ = _demo_edit(w.numpy(), avg.numpy(), [d["x"]],
                        [[float(c) + 2.0] for c in direction_coefficients(w, d, avg)["x"]], num_ws, 16)
    np.testing.assert_allclose(edit_w(w, d, {"x": 2.0}, avg, num_ws).numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers="demo").numpy(), ref,
                               rtol=1e-12, atol=1e-12)
    every, _ = _demo_edit(w.numpy(), avg.numpy(), [d["x"]],
                          [[float(c) + 2.0] for c in direction_coefficients(w, d, avg)["x"]], num_ws, num_ws)
    np.testing.assert_allclose(edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers=None).numpy(), every,
                               rtol=1e-12, atol=1e-12)
    assert torch.equal(edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers=num_ws),
                       edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers=None))
    for bad in (num_ws + 1, 20 if num_ws < 20 else 21):
        with pytest.raises(ValueError, match=rf"^edit_layers: {bad} is more than num_ws \({num_ws}, the model's "
                                             rf"style inputs\); expected 1\.\.{num_ws}, or None to edit all of them$"):
            edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers=bad)
    for bad in (True, 2.0, "all", "16"):
        with pytest.raises(ValueError, match=r"^edit_layers: expected an int >= 1, None \(all\) or 'demo'"):
            edit_w(w, d, {"x": 2.0}, avg, num_ws, edit_layers=bad)


def test_edit_layers_default_on_a_model_with_more_style_inputs_than_the_demo_edits(toy_run, tmp_path, capsys,
                                                                                  monkeypatch):
    # the 1024² case (18 inputs, the demo edits 16) on the toy model: the demo's count set to 2
    import alae_fast.edit.apply as apply_module
    from alae_fast.inference.loading import load_run

    num_ws = int(load_run(toy_run).model.num_ws)
    assert num_ws > 2
    monkeypatch.setattr(apply_module, "EDIT_LAYERS", 2)
    img = _digit_png(tmp_path / "x.png", 200)
    base = ["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=1", "--steps", "2"]
    assert main([*base, "--edit-layers", str(num_ws + 1), "--out", str(tmp_path / "e.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alae-fast edit: error: --edit-layers {num_ws + 1}: this model has {num_ws} style inputs; "
                   f"expected 1-{num_ws}, or leave it out to edit the first 2 (the official demo's)"], err
    pictures = {}
    for name, flag in (("default", []), ("two", ["--edit-layers", "2"]), ("all", ["--edit-layers", str(num_ws)])):
        assert main([*base, *flag, "--out", str(tmp_path / f"{name}.png")]) == 0, capsys.readouterr().err
        with Image.open(tmp_path / f"{name}.png") as im:
            pictures[name] = np.asarray(im).copy()
    assert np.array_equal(pictures["default"], pictures["two"])
    assert not np.array_equal(pictures["default"], pictures["all"])


def test_edit_titles_are_exact_distinct_and_fit():
    from alae_fast.cli.pictures import _edit_titles, _file_titles
    from alae_fast.edit.commands import strip_fractions

    # linspace(-1, 1, 99)'s middle is -1.1e-16: the middle column said "-4.44e-16"
    assert strip_fractions(99)[49] == 0.0 and strip_fractions(2) == [-1.0, 1.0]
    assert strip_fractions(7) == [-t for t in reversed(strip_fractions(7))]
    assert _edit_titles({"3-8": 4.0, "x": -1.5}, 99)[49] == "3-8: +0\nx: +0"
    for steps in (2, 7, 101, 1001):  # amount 40 at 1001 steps gave 851 distinct titles of 1001
        titles = _edit_titles({"a": 40.0}, steps)
        assert len(set(titles)) == steps, steps
    assert _edit_titles({"a_long_direction_name": 1.0}, 3) == ["a_lon...name: -1", "a_lon...name: +0",
                                                               "a_lon...name: +1"]
    # a digit pair's amount is not read as a third digit ("3-8 -2" read as "3-8-2")
    assert _edit_titles({"3-8": 2.0}, 3, first="input") == ["input", "3-8: -2", "3-8: +0", "3-8: +2"]
    # the same file name in two folders: told apart by the folders, as few as do it
    assert _file_titles(["a/img.png", "b/img.png", "c.png"]) == ["a/img.png", "b/img.png", "c.png"]
    assert _file_titles(["r/a/b/img.png", "r/c/b/img.png", "d/img.png", "e.png"]) == \
        ["a/b/img.png", "c/b/img.png", "d/img.png", "e.png"]
    assert _file_titles(["/abs/x/img.png", "img.png"]) == ["x/img.png", "img.png"]  # no "//"
    # a title that is another file's name: the folders still tell them apart ('a.png (1)' was twice)
    assert _file_titles(["x/a.png", "y/a.png", "a.png (1)"]) == ["x/a.png", "y/a.png", "a.png (1)"]
    # nothing to tell them apart (one file twice, or a cut that makes two alike): numbers no
    # title has, until every title is unique
    for images in (["a.png", "a.png", "a.png (1)"], ["a.png", "./a.png", "a.png (1)", "a.png (2)"],
                   ["a" * 30 + "1.png", "a" * 30 + "2.png", "b/" + "a" * 30 + "1.png"],
                   [f"{k}/{'x' * 25}.png" for k in range(12)] + ["x.png (1)", "x.png", "x.png"]):
        titles = _file_titles(images)
        assert len(set(titles)) == len(titles), titles
    assert _file_titles(["a.png", "a.png", "a.png (1)"]) == ["a.png (2)", "a.png (3)", "a.png (1)"]
    # one file twice beside another of its name: the folder tells the other, a number the twice
    assert _file_titles(["x/a.png", "x/a.png", "y/a.png"]) == ["x/a.png (1)", "x/a.png (2)", "y/a.png"]
    assert _file_titles(["/r/x/a.png"] * 3) == ["a.png (1)", "a.png (2)", "a.png (3)"]


# --- edit from a refined w, from latents given, beside its input ------------------------------------

def _recording_grid(mp):
    """save_labelled_grid recorded: each call's (rows, columns, cells) in the returned list."""
    import alae_fast.inference.pictures as pictures

    calls, real = [], pictures.save_labelled_grid

    def recording(cells, path, row_labels, col_labels, **kw):
        calls.append((list(row_labels), list(col_labels), [list(r) for r in cells]))
        return real(cells, path, row_labels, col_labels, **kw)

    mp.setattr(pictures, "save_labelled_grid", recording)
    return calls


def test_edit_strip_starts_with_its_input(toy_run, tmp_path, capsys):
    # the middle column is G(E(x)): without the image itself an edit could not be compared with it
    from alae_fast.inference.loading import load_run
    from alae_fast.inference.pixels import load_image_files, prepare_images, to_display

    img = _digit_png(tmp_path / "one.png", 255)
    with pytest.MonkeyPatch.context() as mp:
        calls = _recording_grid(mp)
        assert main(["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=2", "--steps", "3",
                     "--out", str(tmp_path / "e.png")]) == 0
    (rows, cols, cells), = calls
    assert rows == ["one.png"] and cols == ["input", "3-8: -2", "3-8: +0", "3-8: +2"]
    run = load_run(toy_run)
    x = load_image_files([img], run.schedule)
    res = run.schedule.resolution
    torch.testing.assert_close(cells[0][0], to_display(prepare_images(x, run.schedule, run.phase), res)[0])
    out = capsys.readouterr().out
    assert "each after its input, from w = E(x))" in out, out


def test_edit_refine_steps_edits_the_refined_w(toy_run, tmp_path, capsys):
    # edit could only move the raw E(x); --refine-steps / --refine-lr as encode's and reconstruct's
    from alae_fast.edit.commands import edit_strip
    from alae_fast.inference.loading import load_run
    from alae_fast.inference.pixels import load_image_files, prepare_images

    img = _digit_png(tmp_path / "one.png", 255)
    with pytest.MonkeyPatch.context() as mp:
        calls = _recording_grid(mp)
        assert main(["edit", "--ckpt", str(toy_run), str(img), "--direction", "3-8=2", "--steps", "3",
                     "--refine-steps", "5", "--refine-lr", "0.1", "--out", str(tmp_path / "e.png")]) == 0
    (rows, cols, cells), = calls
    assert rows == ["one.png\nw: E(x) refined,\n5 steps"] and cols[0] == "input"
    out = capsys.readouterr().out
    assert "refining E(x) of 1 image by 5 steps" in out
    assert "from w = E(x) refined by 5 steps of descent on G's pixel error" in out, out
    # the middle column is G of the refined w, not G(E(x))
    run = load_run(toy_run)
    x = load_image_files([img], run.schedule)
    xl = prepare_images(x, run.schedule, run.phase)
    with torch.no_grad():
        refined = run.decode(run.project(xl, 5, 0.1))
        raw = run.decode(run.encode(xl))
    torch.testing.assert_close(cells[0][2], refined[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(refined, raw, atol=1e-4)
    # the API: edit_strip(refine_steps=...) is the same strip
    from alae_fast.edit.commands import resolve_directions

    vectors, amounts = resolve_directions(["3-8=2"], run)
    s = edit_strip(run, x, vectors, amounts, steps=3, refine_steps=5, refine_lr=0.1)
    torch.testing.assert_close(s[1], refined[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="refine_steps"):
        edit_strip(run, x, vectors, amounts, steps=3, refine_steps=-1)
    # the flags parse as encode's: the same ranges and words
    import re

    for flags, pattern in ((["--refine-steps", "-1"], r"--refine-steps: expected an int in \[0, 100000\], got -1"),
                           (["--refine-steps", "2.5"], r"--refine-steps: expected an int in \[0, 100000\]"),
                           (["--refine-lr", "0.1"], r"--refine-lr 0.1 applies only with --refine-steps N"),
                           (["--refine-steps", "1", "--refine-lr", "2000"], r"--refine-lr: expected a number in "
                                                                            r"\(0, 1000\]"),
                           (["--space", "w+"], r"unrecognized arguments: --space")):
        for command in (["encode"], ["edit", "--direction", "3-8=1"]):
            if command == ["encode"] and flags == ["--space", "w+"]:
                continue
            capsys.readouterr()
            try:
                out = tmp_path / ("o.npy" if command == ["encode"] else "o.png")
                rc = main([*command, "--ckpt", str(toy_run), str(img), *flags, "--out", str(out)])
            except SystemExit as e:  # argparse's refusals
                rc = e.code
            err = capsys.readouterr().err
            assert rc == 2 and re.search(pattern, err), (command, flags, err)
    from alae_fast.cli.parser import build_parser

    def helps(name):
        sub = next(a for a in build_parser()._actions if a.dest == "command").choices[name]
        return {a.dest: (a.type, a.default, a.help) for a in sub._actions if a.dest in ("refine_steps", "refine_lr")}

    enc, ed = helps("encode"), helps("edit")
    assert enc["refine_lr"] == ed["refine_lr"]
    assert enc["refine_steps"][:2] == ed["refine_steps"][:2] and ed["refine_steps"][2].startswith(enc["refine_steps"][2])


def test_edit_latents_from_encode(toy_run, tmp_path, capsys):
    # latents a user computed (encode's .npy): one strip a row, no input column, the same pictures
    img = _digit_png(tmp_path / "one.png", 255)
    img2 = _digit_png(tmp_path / "two.png", 120)
    npy = tmp_path / "w.npy"
    assert main(["encode", "--ckpt", str(toy_run), str(img), str(img2), "--out", str(npy)]) == 0
    with pytest.MonkeyPatch.context() as mp:
        calls = _recording_grid(mp)
        base = ["edit", "--ckpt", str(toy_run), "--direction", "3-8=2", "--steps", "3"]
        assert main([*base, "--latents", str(npy), "--out", str(tmp_path / "l.png")]) == 0
        assert main([*base, str(img), str(img2), "--out", str(tmp_path / "i.png")]) == 0
    (rows, cols, cells), (_, icols, icells) = calls
    assert rows == ["w.npy [0]", "w.npy [1]"] and cols == icols[1:] == ["3-8: -2", "3-8: +0", "3-8: +2"]
    for r in range(2):
        for a, b in zip(cells[r], icells[r][1:]):
            torch.testing.assert_close(a, b)
    assert "from the latents of" in capsys.readouterr().out
    # what the file must hold, each said in one line naming --latents
    w = np.load(npy)
    bad = {"wplus.npy": np.stack([w, w], 1), "short.npy": w[:, :5], "int.npy": w.astype(np.int64),
           "nan.npy": np.where(np.arange(8) == 3, np.nan, w).astype(np.float32), "big.npy": w * 1e6,
           "none.npy": w[:0], "vector.npy": w[0]}
    patterns = {"wplus.npy": r"w\+ latents", "short.npy": r"shape \(2, 5\)", "int.npy": r"dtype int64",
                "nan.npy": r"row 0 holds NaN or infinity", "big.npy": r"within ±10000",
                "none.npy": r"shape \(0, 8\)", "vector.npy": r"shape \(8,\)"}
    import re

    for name, a in bad.items():
        np.save(tmp_path / name, a)
        capsys.readouterr()
        rc = main([*base, "--latents", str(tmp_path / name), "--out", str(tmp_path / "x.png")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--latents" in err[0] and re.search(patterns[name], err[0]), (name, err)
    (tmp_path / "garbage.npy").write_bytes(b"not numpy")
    for extra, pattern in (([], r"give IMAGE files to edit, or --latents"),
                           (["--latents", str(npy), str(img)], r"give one or the other"),
                           (["--latents", str(npy), "--refine-steps", "3"], r"rows of --latents are edited as they are"),
                           (["--latents", str(tmp_path / "garbage.npy")], r"is a text file, not a NumPy \.npy array"),
                           (["--latents", str(tmp_path / "missing.npy")], r"does not exist")):
        capsys.readouterr()
        rc = main([*base, *extra, "--out", str(tmp_path / "x.png")])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and re.search(pattern, err[0]), (extra, err)
