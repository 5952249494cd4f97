"""`alae-fast serve` without a browser: the editing math against the official demo's loop, the
upload guards, every endpoint on a small trained digits run (through HTTP on a real uvicorn
server), bad input answered with 4xx while the server keeps serving, and model work that does
not block the server."""

from __future__ import annotations

import base64
import io
import socket
import sys
import threading
import time
import urllib.parse

import numpy as np
import pytest

# The lent GPU machines have no PIL: skip this module there instead of failing collection.
pytest.importorskip("PIL.Image")
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from alae_fast.app import editing  # noqa: E402
from alae_fast.app.uploads import FORMATS, UploadError, decode_image, signature_format  # noqa: E402
from alae_fast.edit.directions import parse_direction  # noqa: E402
from alae_fast.errors import UserError  # noqa: E402
from alae_fast_tests_support import sibling  # noqa: E402


S = sibling("app_support.py")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return S.train_digits_run(tmp_path_factory.mktemp("app") / "digits")


@pytest.fixture(scope="module")
def server(digits_run):
    with S.ServerThread(digits_run) as srv:
        yield srv


# --- editing math ---------------------------------------------------------------------------------

def _official_loop(w, w_avg, directions, amounts):
    # interactive_demo.py, written as the demo does it: one w, values first, then removals
    latents = w - w_avg
    values = [float((latents * d).sum()) for d in directions]
    for v, d in zip(values, directions):
        latents = latents - v * d
    latents = latents + sum(a * d for a, d in zip(amounts, directions))
    return latents + w_avg


def test_apply_directions_matches_the_official_demo_loop():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(5, 12, generator=g, dtype=torch.float64)  # neither unit length nor orthogonal
    w = torch.randn(3, 12, generator=g, dtype=torch.float64)
    w_avg = torch.randn(12, generator=g, dtype=torch.float64)
    amounts = torch.randn(3, 5, generator=g, dtype=torch.float64)
    ws = editing.apply_directions(w, w_avg, d, amounts, num_ws=4)
    assert ws.shape == (3, 4, 12)
    for i in range(3):
        ref = _official_loop(w[i], w_avg, list(d), amounts[i].tolist())
        for k in range(4):
            torch.testing.assert_close(ws[i, k], ref, rtol=1e-12, atol=1e-12)
    # at the image's own values the edit is the identity, whatever the directions
    own = editing.projections(w, w_avg, d)
    torch.testing.assert_close(editing.apply_directions(w, w_avg, d, own)[:, 0], w, rtol=1e-12, atol=1e-12)
    # only style inputs below the cutoff change; the others keep the image's own styles
    broadcast = w.unsqueeze(1).expand(-1, 4, -1)
    mixed = editing.apply_directions(w, w_avg, d, amounts, num_ws=4, ws_original=broadcast, cutoff=2)
    assert torch.equal(mixed[:, :2], ws[:, :2]) and torch.equal(mixed[:, 2:], broadcast[:, 2:])
    # styles that differ from w (a sample truncated on its first inputs only): each edited input
    # moves by the edit of w, keeping its own difference from w; at w's own values, the identity
    original = torch.randn(3, 4, 12, generator=g, dtype=torch.float64)
    original[:, 0] = w
    mixed = editing.apply_directions(w, w_avg, d, amounts, num_ws=4, ws_original=original, cutoff=3)
    torch.testing.assert_close(mixed[:, :3], ws[:, :3] + (original[:, :3] - w.unsqueeze(1)), rtol=1e-12, atol=1e-12)
    assert torch.equal(mixed[:, 0], ws[:, 0]) and torch.equal(mixed[:, 3:], original[:, 3:])
    same = editing.apply_directions(w, w_avg, d, own, num_ws=4, ws_original=original, cutoff=3)
    torch.testing.assert_close(same, original, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="amounts"):
        editing.apply_directions(w, w_avg, d, amounts[:, :4])
    with pytest.raises(ValueError, match="directions"):
        editing.apply_directions(w, w_avg, d[:, :5], amounts)


def test_fit_class_directions_point_towards_their_class():
    rng = np.random.RandomState(0)
    means = rng.randn(4, 6) * 3
    labels = np.repeat(np.arange(4), 50)
    w = means[labels] + rng.randn(200, 6)
    dirs = editing.fit_class_directions(w, labels, {c: f"c{c}" for c in range(4)})
    assert list(dirs) == ["c0", "c1", "c2", "c3"]
    # the fit's own normals, not scaled to unit length (ModelService.add_direction does that, and
    # keeps this length as the direction's norm)
    from alae_fast import edit
    raw = edit.fit_class_directions(w, labels, {c: f"c{c}" for c in range(4)})
    for c, (name, d) in enumerate(dirs.items()):
        assert np.array_equal(d, raw[name])
        proj = w @ d
        assert proj[labels == c].mean() > proj[labels != c].max() - 1e-9 or \
            (proj[labels == c].mean() > proj[labels != c].mean() + 2)
    with pytest.raises(ValueError, match="2 classes"):
        editing.fit_class_directions(w, np.zeros(200, int))


def test_direction_files(tmp_path):
    good = tmp_path / "d" / "smile.npy"
    good.parent.mkdir()
    np.save(good, np.arange(1, 9, dtype=np.float32))
    np.save(tmp_path / "d" / "row.npy", np.ones((1, 8)))
    loaded = editing.load_directions(tmp_path / "d", 8)
    assert set(loaded) == {"smile", "row"} and loaded["smile"].dtype == np.float64
    with pytest.raises(UserError, match=r"short: direction of shape \(5,\); the model's latent size is 8"):
        parse_direction(_npy(np.ones(5)), 8, "short")
    with pytest.raises(UserError, match="not a readable .npy"):
        parse_direction(b"\x93NUMPY garbage", 8, "bad")
    with pytest.raises(UserError, match="not a NumPy file") as e:  # a text file: no advice to unpickle it
        parse_direction(b"hello, not an array", 8, "text")
    assert "pickle" not in str(e.value)
    with pytest.raises(UserError, match="is a file; give the folder"):
        editing.load_directions(good, 8)
    with pytest.raises(UserError, match="not a readable .npy"):  # pickles are refused
        parse_direction(_npy(np.array([{"a": 1}], dtype=object)), 8, "pickle")
    with pytest.raises(UserError, match="NaN"):
        parse_direction(_npy(np.full(8, np.nan)), 8, "nan")
    with pytest.raises(FileNotFoundError):
        editing.load_directions(tmp_path / "none", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .npy"):
        editing.load_directions(tmp_path / "empty", 8)


def test_direction_files_are_named_as_the_cli_names_them(tmp_path):
    # the page said "direction_cat" where `alae-fast edit --direction cat` finds direction_cat.npy,
    # and "direction_1" where the official demo says "smile"
    d = tmp_path / "d"
    d.mkdir()
    rng = np.random.default_rng(0)
    vecs = {}
    for stem in ("direction_cat", "direction_1", "direction_19", "direction_3-8", "plain", "direction_"):
        vecs[stem] = rng.normal(size=8)
        np.save(d / f"{stem}.npy", vecs[stem])
    loaded = editing.load_directions(d, 8)
    assert list(loaded) == ["plain", "direction_", "smile", "glasses", "3-8", "cat"]  # the files' order
    assert np.array_equal(loaded["smile"], vecs["direction_1"]) and np.array_equal(loaded["cat"], vecs["direction_cat"])
    np.save(d / "cat.npy", rng.normal(size=8))
    with pytest.raises(UserError, match=r"direction_cat.npy and cat.npy both name the direction 'cat'|"
                                        r"cat.npy and direction_cat.npy both name the direction 'cat'"):
        editing.load_directions(d, 8)


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


# --- uploads --------------------------------------------------------------------------------------

def test_decode_image_guards():
    png = S.digit_png(0, (40, 30))
    x = decode_image(png, 32, 1, max_bytes=1 << 20, max_pixels=10_000)
    assert x.shape == (1, 1, 32, 32) and x.min() >= -1 and x.max() <= 1 and x.std() > 0.1
    from alae_fast.data import load_image
    ref = torch.from_numpy(load_image(io.BytesIO(png), 32, 1).astype(np.float32)) / 127.5 - 1
    assert torch.equal(x[0], ref)  # the same preparation as `alae-fast reconstruct`

    def status(data, **kw):
        with pytest.raises(UploadError) as e:
            decode_image(data, 32, 1, **{"max_bytes": 1 << 20, "max_pixels": 10_000, **kw})
        return e.value.status, str(e.value)

    assert status(b"")[0] == 400
    assert status(b"hello, not an image")[0] == 415
    assert status(b"%PDF-1.4\n...")[0] == 415
    assert status(png[: len(png) // 2]) [0] == 400  # truncated PNG
    jpeg = S.digit_png(0, (64, 64), "JPEG")
    code, msg = status(jpeg[: len(jpeg) // 2])
    assert code == 400 and "decoded" in msg
    code, msg = status(png, max_bytes=100)
    assert code == 413 and f"the upload is {len(png)} bytes; the limit is 100 bytes" in msg, msg
    code, msg = status(S.digit_png(0, (200, 200)))  # 40,000 pixels > 10,000
    assert code == 413 and "megapixels" in msg
    tiff = io.BytesIO()
    Image.new("L", (8, 8)).save(tiff, format="TIFF")
    assert status(tiff.getvalue())[0] == 415  # a format outside the list


def _upload_status(data: bytes) -> tuple[int, str]:
    with pytest.raises(UploadError) as e:
        decode_image(data, 32, 1, max_bytes=1 << 20, max_pixels=1 << 20)
    return e.value.status, str(e.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_supported_format_cut_short_is_400_never_415(fmt):
    """A file that starts with a supported format's signature but cannot be read is a truncated or
    corrupt image of that format (400, naming it), however early it was cut: a JPEG cut to its
    first 200 bytes answers as one cut at 60% (Pillow cannot even identify the first: 415 before)."""
    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((96, 96)) * 255).astype(np.uint8))  # noise: no format compresses it small
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    data = buf.getvalue()
    assert len(data) > 2000 and signature_format(data) == fmt
    # down to the signature alone (WebP's: "RIFF", 4 bytes of size, "WEBP")
    signature = {"PNG": 8, "JPEG": 3, "GIF": 6, "BMP": 2, "WEBP": 12}[fmt]
    for n in (len(data) * 6 // 10, 200, 100, 30, 12, signature):
        code, msg = _upload_status(data[:n])
        assert code == 400 and f"could not be decoded (truncated or corrupt {fmt}?)" in msg, (n, code, msg)


def test_bytes_of_no_supported_format_are_415():
    # random bytes, a text file (whatever its name: the bytes decide), a PDF, a TIFF, and the
    # first bytes of a signature too short to be one
    noise = np.random.default_rng(1).bytes(4096)
    tiff = io.BytesIO()
    Image.new("L", (8, 8)).save(tiff, format="TIFF")
    for data in (noise, b"hello, not an image\n" * 50, b"%PDF-1.4\n...", tiff.getvalue(), b"\x89PN", b"\xff\xd8",
                 b"GIF8", b"RIFF\x00\x00\x00\x00WAVE"):
        assert signature_format(data) is None, data[:12]
        code, msg = _upload_status(data)
        assert code == 415 and "not an image in a supported format (PNG, JPEG, WEBP, BMP, GIF)" in msg, (data[:12], msg)


def test_signatures_take_every_file_pillow_takes():
    """Every file that Pillow's own plugin accepts as one of FORMATS matches that format's signature
    here, so a readable image is never told 415 by the signature check."""
    Image.init()
    for fmt in FORMATS:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (200, 30, 90)).save(buf, format=fmt)
        data = buf.getvalue()
        assert Image.OPEN[fmt][1](data[:16]) and signature_format(data) == fmt
        assert decode_image(data, 32, 3, max_bytes=1 << 20, max_pixels=1 << 20).shape == (1, 3, 32, 32)


# --- the server over HTTP -------------------------------------------------------------------------

def _png_of(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as im:
        return np.asarray(im)


def test_endpoints_on_a_digits_run(server, digits_run, tmp_path, capsys):
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    status, page = S.get(url)
    assert status == 200 and "<title>alae_fast</title>" in page
    status, js = S.get(url + "static/app.js")
    assert status == 200 and "api/encode" in js
    info = S.get(url + "api/info")[1]
    assert info["api_version"] == 2  # unit-length directions: scripts built for raw amounts can tell
    assert info["resolution"] == 32 and info["channels"] == 1 and info["latent_size"] == 8
    names = [d["name"] for d in info["directions"]]
    assert names == [f"digit {c}" for c in range(10)]  # fitted from the embedded labels
    assert all(d["lo"] < d["hi"] for d in info["directions"])

    status, enc = S.post(url + "api/encode", S.digit_png(3), raw=True, content_type="image/png")
    assert status == 200 and len(enc["w"]) == 8 and len(enc["values"]) == 10 and enc["ms"] >= 0
    assert enc["notice"] == ""  # an opaque image: nothing beyond crop and resize to say
    orig, rec = _png_of(enc["original"]), _png_of(enc["reconstruction"])
    assert orig.shape == rec.shape == (32, 32)
    # the MSE of the two pictures shown (the reconstruction clamped as its PNG): at most 4
    assert enc["mse"] == pytest.approx(np.mean(((orig / 127.5 - 1) - (rec / 127.5 - 1)) ** 2), abs=2e-2)
    assert 0 <= enc["mse"] <= 4

    # the API's reconstruction is the library's: alae_fast.load + the same preparation
    import alae_fast
    from alae_fast.app.uploads import decode_image as dec
    from alae_fast.inference.pictures import to_uint8
    run = alae_fast.load(digits_run)
    x = dec(S.digit_png(3), 32, 1, 1 << 20, 10 ** 7)
    with torch.no_grad():
        w = run.encode(x)
        lib = to_uint8(run.decode(w))[0, ..., 0]
    assert np.array_equal(rec, lib)
    np.testing.assert_allclose(enc["w"], w[0].numpy(), rtol=1e-6, atol=1e-6)

    # edits: at the image's own values the reconstruction; moved, another picture, repeatably
    same = S.post(url + "api/edit", {"w": enc["w"], "amounts": enc["values"]})[1]
    assert np.array_equal(_png_of(same["image"]), rec)
    moved = list(enc["values"])
    moved[8] += 3.0
    a = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved})[1]
    b = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved})[1]
    assert a["image"] == b["image"] and not np.array_equal(_png_of(a["image"]), rec)

    # generate: a seed repeats and equals `alae-fast generate --seeds`
    g1 = S.post(url + "api/generate", {"seed": 7, "psi": 0.7, "noise_mode": "const"})[1]
    g2 = S.post(url + "api/generate", {"seed": 7, "psi": 0.7, "noise_mode": "const"})[1]
    assert g1["image"] == g2["image"] and len(g1["w"]) == 8
    from alae_fast.cli import main
    assert main(["generate", "--network", str(digits_run), "--seeds", "7", "--trunc", "0.7",
                 "--outdir", str(tmp_path)]) == 0
    with Image.open(tmp_path / "seed0007.png") as im:
        assert np.array_equal(np.asarray(im), _png_of(g1["image"]))
    capsys.readouterr()

    strip = S.post(url + "api/interpolate", {"wa": enc["w"], "wb": g1["w"], "steps": 5})[1]
    assert len(strip["images"]) == 5 and strip["images"][0] == same["image"]
    status, mix = S.post(url + "api/mix", {"wa": enc["w"], "wb": g1["w"]})
    assert status == 400 and "several style inputs" in mix["error"]  # the MLP ALAE has one


def test_encode_refines_e_of_x_when_asked(server, digits_run):
    """refine_steps 0 (or none) is ALAE's own E(x), the answer as before; N > 0 is
    ``run.project(x, steps=N)`` in W on the same prepared image, and the picture is G of that w;
    bad values are refused naming refine_steps, and the server keeps serving."""
    import alae_fast
    from alae_fast.app.service import MAX_PAGE_REFINE_STEPS
    from alae_fast.app.uploads import decode_image as dec
    from alae_fast.inference.pictures import to_uint8
    from alae_fast.limits import MAX_REFINE_STEPS

    url, png = server.url, S.digit_png(6)
    assert S.get(url + "api/info")[1]["max_refine_steps"] == MAX_PAGE_REFINE_STEPS == 1000
    status, plain = S.post(url + "api/encode", png, raw=True)
    status0, zero = S.post(url + "api/encode?refine_steps=0", png, raw=True)
    assert status == status0 == 200 and plain["refine_steps"] == zero["refine_steps"] == 0
    assert {k: v for k, v in plain.items() if k != "ms"} == {k: v for k, v in zero.items() if k != "ms"}

    # the references through the public API alone: alae_fast.load, the upload's decoding, project
    run = alae_fast.load(digits_run)
    x = dec(png, 32, 1, 1 << 20, 10 ** 7)
    with torch.no_grad():
        assert plain["w"] == run.encode(x)[0].tolist()  # E(x) itself, exactly
    w5 = run.project(x, steps=5)
    status, five = S.post(url + "api/encode?refine_steps=5", png, raw=True)
    assert status == 200 and five["refine_steps"] == 5 and five["original"] == plain["original"]
    np.testing.assert_allclose(five["w"], w5[0].numpy(), rtol=1e-6, atol=1e-6)
    assert five["w"] != plain["w"]
    with torch.no_grad():
        assert np.array_equal(_png_of(five["reconstruction"]), to_uint8(run.decode(w5))[0, ..., 0])
    assert five["reconstruction"] != plain["reconstruction"]
    assert five["values"] == S.post(url + "api/values", {"w": five["w"]})[1]["values"]
    # the refined w is what the page edits: at its own values, its own reconstruction
    same = S.post(url + "api/edit", {"w": five["w"], "amounts": five["values"]})[1]
    assert same["image"] == five["reconstruction"]

    for bad, code, says in (("-1", 400, "refine_steps: expected an integer in [0, 1000]"),
                            (str(MAX_PAGE_REFINE_STEPS + 1), 400, "refine_steps: expected an integer in [0, 1000]"),
                            (str(MAX_REFINE_STEPS + 1), 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("1.5", 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("x", 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("true", 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("True", 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("", 400, "refine_steps: expected an integer in [0, 1000]"),
                            ("%EF%BC%95", 400, "refine_steps: expected an integer in [0, 1000]"),  # a full-width 5
                            ("%2B-5", 400, "refine_steps: expected an integer in [0, 1000]"),  # "+-5": was a 500
                            ("5-", 400, "refine_steps: expected an integer in [0, 1000]")):
        status, answer = S.post(url + "api/encode?refine_steps=" + bad, png, raw=True)
        assert status == code and says in answer["error"], (bad, status, answer)
    # a misspelt parameter would give E(x) as if refined: refused by name
    for query in ("refine-steps=5", "steps=5", "refine_steps=5&space=w%2B"):
        status, answer = S.post(url + "api/encode?" + query, png, raw=True)
        name = query.split("&")[-1].split("=")[0]
        assert status == 422 and answer["error"] == f"bad request: {name}: unknown field", (query, answer)
    assert S.post(url + "api/encode", png, raw=True)[1]["w"] == plain["w"]
    # the service's own check, as the Python values a caller of it could pass: a bool is not a count
    from alae_fast.app.service import ModelService
    svc = ModelService(run)
    for bad in (True, False, 1.5, "5", None, -1, MAX_PAGE_REFINE_STEPS + 1):
        with pytest.raises(UserError, match=r"refine_steps: expected an integer in \[0, 1000\]"):
            svc.encode_upload(png, bad)
    assert svc.encode_upload(png, 5)["w"] == five["w"]


def test_bad_input_gets_4xx_and_the_server_keeps_serving(server):
    url = server.url
    w = [0.1] * 8
    cases = [
        (S.post(url + "api/encode", b"not an image at all", raw=True), 415, "not an image"),
        (S.post(url + "api/encode", S.digit_png(1)[:80], raw=True), 400, "could not be decoded"),
        # a JPEG or a PNG cut to 200 bytes: truncated (400), not an unsupported format (415)
        (S.post(url + "api/encode", S.digit_png(1, (128, 128), "JPEG")[:200], raw=True), 400,
         "could not be decoded (truncated or corrupt JPEG?)"),
        (S.post(url + "api/encode", S.digit_png(1, (128, 128))[:200], raw=True), 400,
         "could not be decoded (truncated or corrupt PNG?)"),
        (S.post(url + "api/encode", np.random.default_rng(2).bytes(2048), raw=True), 415, "not an image"),
        (S.post(url + "api/encode", b"", raw=True), 400, "empty"),
        (S.post(url + "api/edit", {"w": w[:5], "amounts": [0] * 10}), 400, "8 numbers"),
        (S.post(url + "api/edit", {"w": w, "amounts": [0] * 3}), 400, "10 numbers"),
        (S.post(url + "api/edit", {"w": w, "amounts": ["x"] * 10}), 400, "numbers only"),
        (S.post(url + "api/edit", {"w": "abc", "amounts": []}), 422, "bad request"),
        (S.post(url + "api/generate", {"seed": 1, "psi": 5}), 400, "psi"),
        (S.post(url + "api/generate", {"seed": -1}), 400, "seed"),
        (S.post(url + "api/generate", {"seed": 1, "noise_mode": "loud"}), 400, "noise_mode"),
        (S.post(url + "api/interpolate", {"wa": w, "wb": w, "steps": 100}), 400, "steps"),
        (S.post(url + "api/directions?name=short", _npy(np.ones(3)), raw=True), 400, "the model's latent size is 8"),
        (S.post(url + "api/directions?name=bad", b"garbage", raw=True), 400, "not a readable .npy"),
        # a name is refused, never trimmed (a DELETE naming what was sent would then miss)
        (S.post(url + "api/directions?name=" + "n" * 61, _npy(np.ones(8)), raw=True), 400,
         "name: expected 1 to 60 printable characters, got 61 characters"),
        (S.post(url + "api/directions?name=a%0Ab", _npy(np.ones(8)), raw=True), 400, "got character '\\n' at 1"),
        (S.post(url + "api/directions?name=a%E2%80%8Bb", _npy(np.ones(8)), raw=True), 400,
         "got character '\\u200b' at 1"),
        (S.post(url + "api/directions?name=", _npy(np.ones(8)), raw=True), 400, "got an empty name"),
        # JSON integers beyond a float, strings and booleans as numbers: 400, never a 500
        (S.post(url + "api/values", {"w": [10 ** 400] + w[1:]}), 400, "within"),
        (S.post(url + "api/edit", {"w": w, "amounts": [10 ** 400] + [0] * 9}), 400, "within"),
        (S.post(url + "api/interpolate", {"wa": [10 ** 400] + w[1:], "wb": w}), 400, "within"),
        (S.post(url + "api/edit", {"w": ["1.5"] + w[1:], "amounts": [0] * 10}), 400, "numbers only"),
        (S.post(url + "api/edit", {"w": [True] + w[1:], "amounts": [0] * 10}), 400, "numbers only"),
        (S.post(url + "api/edit", {"w": w, "amounts": [True] * 10}), 400, "numbers only"),
        (S.post(url + "api/generate", {"seed": True}), 422, "seed"),
        (S.post(url + "api/interpolate", {"wa": w, "wb": w, "steps": True}), 422, "steps"),
        (S.post(url + "api/nowhere", {}), 404, "Not Found: POST /api/nowhere"),
    ]
    for (status, body), want_status, want_text in cases:
        assert status == want_status and want_text in body["error"], (status, body, want_text)
    # a JSON body far beyond any request of the page is refused before any byte of it is read
    # (declared, not sent: a client still writing 2 MiB could see the early answer as a reset)
    code, text = _raw_request(url, "POST /api/edit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 2097152\r\n\r\n")
    assert code == 413 and "the request body is 2.0 MiB; the limit is 1.0 MiB for a JSON request" in text, text
    import json
    import urllib.error
    with pytest.raises(urllib.error.HTTPError) as e:  # the page reads "error" from every answer
        S.get(url + "api/generate")
    assert e.value.code == 405 and json.loads(e.value.read())["error"] == "Method Not Allowed: GET /api/generate"
    assert S.get(url + "api/info")[0] == 200
    status, _ = S.get(url + "static/index.html")
    assert status == 200
    for path in ("static/../cli.py", "static/%2e%2e/cli.py", "static//etc/passwd"):
        try:
            code = S.get(url + path)[0]
        except Exception as e:  # urllib raises HTTPError for 404
            code = getattr(e, "code", None)
        assert code == 404, path


def _raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, str]:
    host, port = url.split("//")[1].strip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 12:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        data += s.recv(65536) if b'"error"' not in data else b""
    return int(data.split(b" ", 2)[1]), data.decode(errors="replace")


def test_requests_from_other_sites_are_refused(server):
    """A page elsewhere posting to the local model (Origin) and DNS rebinding (a foreign Host)
    get 403; the page's own requests, with or without Origin, pass."""
    url = server.url
    hostport = url.split("//")[1].strip("/")
    body = b'{"seed": 1}'

    def post(extra: str) -> tuple[int, str]:
        head = (f"POST /api/generate HTTP/1.1\r\nHost: {hostport}\r\n{extra}Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        return _raw_request(url, head, body)

    status, text = post("Origin: https://evil.example\r\n")
    assert status == 403 and "cross-site request from 'https://evil.example' refused" in text
    assert post(f"Origin: http://{hostport}\r\n")[0] == 200  # the page itself
    assert post("")[0] == 200  # no Origin: not a browser's cross-site request
    status, text = _raw_request(url, "GET /api/info HTTP/1.1\r\nHost: rebound.example:80\r\nConnection: close\r\n\r\n")
    assert status == 403 and "127.0.0.1 or localhost only" in text
    port = hostport.rsplit(":", 1)[1]
    assert _raw_request(url, f"GET /api/info HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n")[0] == 200


def test_host_names():
    from alae_fast.app.server import _host_name

    assert [_host_name(h) for h in ("127.0.0.1:8000", "[::1]:80", "localhost", "::1", "a.b:1")] == \
        ["127.0.0.1", "::1", "localhost", "::1", "a.b"]


def test_upload_size_limit_declared_and_streamed(digits_run):
    with S.ServerThread(digits_run, max_upload_mb=0.1) as srv:
        # a declared size past the limit is refused before any byte of the body is read
        code, text = _raw_request(srv.url, "POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                                           "Content-Length: 9437184\r\n\r\n")
        assert code == 413 and "the upload is 9.0 MiB; the limit is 102.4 KiB" in text, text  # not "0.1 MiB"
        # no size declared (chunked): reading stops at the limit
        chunk = b"\0" * 60000
        body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        code, text = _raw_request(srv.url, "POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                                           "Transfer-Encoding: chunked\r\n\r\n", body)
        assert code == 413 and "larger than the limit of 102.4 KiB" in text, text
        assert S.get(srv.url + "api/info")[0] == 200


class _Chunks:
    """A request body sent chunked (no Content-Length) in ``size``-byte chunks, ``total`` bytes in
    all; ``pulled`` counts the chunks the server asked for."""

    def __init__(self, total: int, size: int = 1 << 16):
        self.total, self.size, self.pulled = total, size, 0

    async def __aiter__(self):
        for _ in range(self.total // self.size):
            self.pulled += 1
            yield b"[" + b"0," * (self.size // 2 - 1) + b"0"  # JSON-like filler, never complete


def test_every_body_stops_being_read_at_its_limit_whatever_the_framing(digits_run):
    """A 60 MB chunked body to each route that reads one: 413 once the bytes read pass the route's
    limit (1 MiB for the JSON routes and directions, the upload limit for images), the rest never
    pulled; the bytes held come back; a JSON body that would pass the in-memory body budget gets
    503 as an upload does. Driven in process (httpx's ASGI transport pulls the body chunk by chunk
    as the app asks), so the count of chunks read is exact."""
    import asyncio

    import httpx

    import alae_fast
    from alae_fast.app.server import MAX_DIRECTION_BYTES, MAX_JSON_BYTES, create_app
    from alae_fast.app.service import ModelService

    service = ModelService.open(alae_fast.load(digits_run), max_upload_bytes=256 << 10, fit_digits=False)
    app = create_app(service)
    routes = [("POST", "/api/edit", MAX_JSON_BYTES), ("POST", "/api/values", MAX_JSON_BYTES),
              ("POST", "/api/generate", MAX_JSON_BYTES), ("POST", "/api/mix", MAX_JSON_BYTES),
              ("POST", "/api/interpolate", MAX_JSON_BYTES), ("DELETE", "/api/directions?name=x", MAX_JSON_BYTES),
              ("POST", "/api/nowhere", MAX_JSON_BYTES), ("POST", "/api/encode", 256 << 10),
              ("POST", "/api/directions?name=x", MAX_DIRECTION_BYTES)]

    async def send(method, path, content, headers=None):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            return await c.request(method, path, content=content,
                                   headers={"Content-Type": "application/json", **(headers or {})})

    for method, path, limit in routes:
        body = _Chunks(60_000_000)
        r = asyncio.run(send(method, path, body))
        assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
        assert r.status_code == 413 and "larger than" in r.json()["error"], (path, r.status_code, r.text)
        # the chunk that passed the limit is the last one read
        assert body.pulled == limit // body.size + 1, (path, body.pulled)
        assert app.state.bodies.used == 0, path

    # the JSON bodies count against the bodies held at once, as uploads do
    budget = app.state.bodies
    budget.take(budget.limit - 10)  # another request holds nearly all of it
    r = asyncio.run(send("POST", "/api/values", b'{"w": [0, 0, 0, 0, 0, 0, 0, 0]}'))
    assert r.status_code == 503 and "busy reading other uploads" in r.json()["error"] and \
        r.headers["retry-after"] == "1", r.text
    budget.give(budget.limit - 10)
    r = asyncio.run(send("POST", "/api/values", b'{"w": [0, 0, 0, 0, 0, 0, 0, 0]}'))
    assert r.status_code == 200 and r.json() == {"values": []} and budget.used == 0, r.text
    # within the limit, chunked: read whole and answered as with a Content-Length
    async def small():
        yield b'{"w": [0, 0, 0, 0, '
        yield b'0, 0, 0, 0]}'
    r = asyncio.run(send("POST", "/api/values", small()))
    assert r.status_code == 200 and r.json() == {"values": []}, r.text


def test_a_chunked_json_body_is_refused_while_it_is_still_being_sent(server):
    """Over a real connection (uvicorn): a chunked POST to /api/edit that would be 60 MB is answered
    413 once the server has read past 1 MiB, while the client is still sending (before, the server
    read and parsed all of it, then answered 400)."""
    import select

    host, port = server.url.split("//")[1].strip("/").split(":")
    chunk = b"0," * (1 << 15)
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent, total = 0, 60_000_000
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /api/edit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
        while sent < total and not select.select([s], [], [], 0.002)[0]:
            s.sendall(frame)
            sent += len(chunk)
        answered_at = sent
        assert answered_at < total, "no answer before the whole body was sent"
        data = b""
        while b'"}' not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
    assert answered_at <= 16 << 20, answered_at  # 1 MiB read, plus what the sockets' buffers held
    text = data.decode(errors="replace")
    assert text.startswith("HTTP/1.1 413") and "larger than 1.0 MiB, the limit of a JSON request" in text, text
    assert S.get(server.url + "api/info")[0] == 200


def test_direction_upload_adds_a_slider(digits_run):
    with S.ServerThread(digits_run) as srv:
        status, body = S.post(srv.url + "api/directions?name=mine", _npy(np.linspace(-1, 1, 8)), raw=True)
        assert status == 200 and body["name"] == "mine" and len(body["directions"]) == 11
        enc = S.post(srv.url + "api/encode", S.digit_png(2), raw=True)[1]
        assert len(enc["values"]) == 11
        # the same vector again, or a multiple of it (the same slider once scaled to unit length):
        # refused, and editing still works
        for again in (np.linspace(-1, 1, 8), np.linspace(-1, 1, 8) * 3.5):
            status, body = S.post(srv.url + "api/directions?name=again", _npy(again), raw=True)
            assert status == 400 and "lies along direction 'mine'" in body["error"]
            assert "the same direction" in body["error"]
        assert len(S.get(srv.url + "api/info")[1]["directions"]) == 11
        status, edited = S.post(srv.url + "api/edit", {"w": enc["w"], "amounts": enc["values"]})
        assert status == 200
        # a long vector is scaled to unit length like any other (its slider values had passed the
        # edit's limit, and it was refused): its length is reported, its values are unit components
        status, body = S.post(srv.url + "api/directions?name=long", _npy(np.full(8, 1e12)), raw=True)
        assert status == 200 and body["directions"][-1]["norm"] == pytest.approx(1e12 * 8 ** 0.5)
        assert body["directions"][-1]["kind"] == "attribute"
        values = S.post(srv.url + "api/values", {"w": enc["w"]})[1]["values"]
        assert abs(values[-1]) < 100  # a component of w - w_avg: an encoded w lies within about ±10
        assert S.post(srv.url + "api/directions?name=long", None, method="DELETE")[0] == 200
        # 60 printable characters, spaces included, are a name as sent; no name is "uploaded"
        long_name = "ä direction " + "x" * 48
        status, body = S.post(srv.url + "api/directions?name=" + urllib.parse.quote(long_name),
                              _npy(np.linspace(2, 3, 8)), raw=True)
        assert status == 200 and body["name"] == long_name
        status, body = S.post(srv.url + "api/directions", _npy(np.linspace(3, 2, 8)), raw=True)
        assert status == 200 and body["name"] == "uploaded"
        assert len(S.get(srv.url + "api/info")[1]["directions"]) == 13


def test_model_work_does_not_block_the_server(digits_run, monkeypatch):
    from alae_fast.app.service import ModelService

    real = ModelService.edit

    def slow_edit(self, *args):
        time.sleep(3.0)
        return real(self, *args)

    monkeypatch.setattr(ModelService, "edit", slow_edit)
    with S.ServerThread(digits_run) as srv:
        enc = S.post(srv.url + "api/encode", S.digit_png(2), raw=True)[1]
        done = {}
        t = threading.Thread(target=lambda: done.setdefault("r", S.post(srv.url + "api/edit",
                                                                           {"w": enc["w"], "amounts": enc["values"]})))
        t.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        assert S.get(srv.url + "api/info")[0] == 200 and S.get(srv.url)[0] == 200
        waited = time.perf_counter() - t0
        assert t.is_alive() and waited < 2.0, waited  # answered while the slow edit was still running
        t.join(30)
        assert done["r"][0] == 200


def test_serve_without_the_app_extra_says_how_to_install_it(digits_run, capsys, monkeypatch):
    """Not "pip install 'alae_fast[app]'": the package is installed from its source folder, and pip
    would look for one of that name on an index. The hint is the extra's own requirements."""
    from alae_fast._extras import install_hint
    from alae_fast.cli import main

    monkeypatch.delitem(sys.modules, "alae_fast.app.server", raising=False)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--ckpt", str(digits_run), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"alae-fast serve: error: the web page needs the [app] extra (fastapi is missing): {install_hint('app')}"], err
    assert "'fastapi>=" in err[0]


def test_serve_says_where_it_binds_and_refuses_a_taken_port(digits_run, capsys):
    from alae_fast.cli import main

    with S.ServerThread(digits_run) as srv:
        port = int(srv.url.rsplit(":", 1)[1].strip("/"))
        out = capsys.readouterr().out
        assert "bound to 127.0.0.1, this machine only" in out and srv.url in out
        assert main(["serve", "--ckpt", str(digits_run), "--port", str(port)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"port {port} on 127.0.0.1 is in use" in err[0]


def test_size_texts():
    from alae_fast.app.uploads import size_text, too_large

    assert [size_text(n) for n in (0, 1, 1023, 1024, 65536, 104857, 2 ** 20 - 1, 2 ** 20, 8 * 2 ** 20)] == \
        ["0 bytes", "1 byte", "1023 bytes", "1.0 KiB", "64.0 KiB", "102.4 KiB", "1024.0 KiB", "1.0 MiB", "8.0 MiB"]
    assert too_large("the upload", 9 * 2 ** 20, 65536) == "the upload is 9.0 MiB; the limit is 64.0 KiB"
    # one byte past the limit: exact counts, not "64.0 KiB; the limit is 64.0 KiB"
    assert too_large("the upload", 65537, 65536) == "the upload is 65537 bytes; the limit is 65536 bytes"


def test_the_upload_limit_is_refused_outside_its_range(digits_run, capsys):
    """1e-9 MiB (0 bytes: every upload refused) and 1e12 MiB (no limit, no memory bound) are refused
    by the CLI when parsing, in one line naming the flag and the range, and by serve() and
    ModelService.open naming their argument; the ends of the range are taken."""
    import alae_fast
    from alae_fast.app import server
    from alae_fast.app.service import ModelService
    from alae_fast.cli import build_parser, main

    for bad in ("1e-9", "0.06", "1025", "1e12", "nan", "inf", "0", "-8"):
        with pytest.raises(SystemExit) as e:
            main(["serve", "--ckpt", str(digits_run), "--max-upload-mb", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "argument --max-upload-mb: expected a number in [0.0625, 1024] (64 KiB to 1 GiB" \
            in err[0] and f"got {bad}" in err[0], err
    for good, want in (("0.0625", 0.0625), ("1024", 1024.0), ("8", 8.0)):
        args = build_parser().parse_args(["serve", "--ckpt", str(digits_run), "--max-upload-mb", good])
        assert args.max_upload_mb == want
    for bad in (1e-9, 1e12, float("nan"), True, "8"):
        with pytest.raises(ValueError, match=r"^max_upload_mb: expected a number in \[0.0625, 1024\]"):
            server.serve(str(digits_run), port=0, max_upload_mb=bad)
    run = alae_fast.load(digits_run)
    for bad in (0, 65535, 2 ** 30 + 1, 1e18):
        with pytest.raises(ValueError, match=r"^max_upload_bytes: expected a number in \[65536, 1073741824\]"):
            ModelService.open(run, max_upload_bytes=bad, fit_digits=False)
    assert ModelService.open(run, max_upload_bytes=65536, fit_digits=False).max_upload_bytes == 65536
    assert ModelService.open(run, max_upload_bytes=2 ** 30, fit_digits=False).max_upload_bytes == 2 ** 30


def test_serve_bad_arguments_are_one_line(digits_run, tmp_path, capsys):
    from alae_fast.cli import main

    (tmp_path / "dirs").mkdir()
    (tmp_path / "dirs" / "broken.npy").write_bytes(b"\x93NUMPY\x01\x00 broken")
    assert main(["serve", "--ckpt", str(digits_run), "--directions", str(tmp_path / "dirs"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.npy" in err[0] and "not a readable .npy" in err[0]
    np.save(tmp_path / "dirs" / "broken.npy", np.ones(3))
    assert main(["serve", "--ckpt", str(digits_run), "--directions", str(tmp_path / "dirs"), "--port", "0"]) == 2
    assert "the model's latent size is 8" in capsys.readouterr().err
    assert main(["serve", "--ckpt", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_style_mixing_on_a_style_alae(tmp_path):
    run = S.train_toy_style_run(tmp_path / "toy")
    with S.ServerThread(run) as srv:
        info = S.get(srv.url + "api/info")[1]
        assert info["num_ws"] == 6 and info["style_levels"] == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}
        assert len(info["directions"]) == 10  # trained on the embedded digits: class directions fitted
        a = S.post(srv.url + "api/generate", {"seed": 1, "noise_mode": "none"})[1]
        b = S.post(srv.url + "api/generate", {"seed": 2, "noise_mode": "none"})[1]
        status, mix = S.post(srv.url + "api/mix", {"wa": a["w"], "wb": b["w"]})
        assert status == 200 and mix["a"] == a["image"] and mix["b"] == b["image"]
        # a sample with noise: "plain" is the picture mixing (and interpolation, editing) make of
        # its w, which the page shows in A and B
        c = S.post(srv.url + "api/generate", {"seed": 1, "noise_mode": "const"})[1]
        assert c["w"] == a["w"] and c["plain"] == a["image"]
        assert S.post(srv.url + "api/mix", {"wa": c["w"], "wb": b["w"]})[1]["a"] == c["plain"]
        import alae_fast
        from alae_fast.inference.pictures import to_uint8
        from alae_fast.inference.sampling import mix_ranges
        lib = alae_fast.load(run)
        wa = torch.tensor([a["w"]]).unsqueeze(1).expand(-1, 6, -1)
        wb = torch.tensor([b["w"]]).unsqueeze(1).expand(-1, 6, -1)
        for name, (lo, hi) in (("coarse", (0, 2)), ("middle", (2, 4)), ("fine", (4, 6))):
            with torch.no_grad():
                want = to_uint8(lib.decode(mix_ranges(wa, wb, lo, hi)))[0]
            got = _png_of(mix[name])
            assert np.array_equal(got.reshape(want.shape), want), name
        same = S.post(srv.url + "api/mix", {"wa": b["w"], "wb": b["w"]})[1]
        assert same["coarse"] == same["fine"] == b["image"]


def test_edit_keeps_the_last_style_inputs_as_the_official_demo(tmp_path, monkeypatch):
    """Style inputs from EDIT_LAYERS on keep the encoded w (at 1024² the last two of 18; here,
    with 6 inputs, the limit is moved to 4), and the edit's styles as A or B of mixing and
    interpolation decode to the picture shown as edited."""
    from alae_fast.app import service as service_module
    from alae_fast.app.service import ModelService

    monkeypatch.setattr(service_module, "EDIT_LAYERS", 4)
    svc = ModelService.open(alae_fast_load_run(S.train_toy_style_run(tmp_path / "toy")))
    w = svc.generate(1, noise_mode="none")["w"]
    amounts = [v + (2.0 if i == 3 else 0.0) for i, v in enumerate(svc.values(w))]
    out = svc.edit(w, amounts)
    ws = torch.tensor(out["ws"])
    assert ws.shape == (6, len(w)) and torch.equal(torch.tensor(out["w"]), ws[0])
    assert torch.equal(ws[4:], torch.tensor([w, w], dtype=ws.dtype))  # kept
    assert not torch.allclose(ws[:4], torch.tensor(w).expand(4, -1))  # edited
    assert torch.equal(ws[0], ws[3])
    strip = svc.interpolate(out["ws"], out["ws"], 2)
    assert strip[0] == strip[1] == out["image"]
    assert svc.mix(out["ws"], w)["a"] == out["image"]
    with pytest.raises(UserError, match="wa: expected 6 rows"):
        svc.mix(out["ws"][:3], w)


def alae_fast_load_run(path):
    from alae_fast.inference.loading import load_run

    return load_run(path)


def test_no_digit_directions_for_a_run_on_other_data(digits_run):
    import alae_fast
    from alae_fast.app.service import ModelService

    run = alae_fast.load(digits_run)
    assert len(ModelService.open(run).directions) == 10
    run.state["data_spec"] = {"kind": "folder", "path": "/photos"}  # as a run trained on a folder records
    assert ModelService.open(run).directions == []


# --- truncation as `alae-fast generate` -----------------------------------------------------------

@pytest.fixture(scope="module")
def truncated_run(tmp_path_factory):
    return S.truncated_toy_run(tmp_path_factory)  # psi 0.7 on style inputs 0-2 of 6


def test_generate_truncates_below_the_configs_cutoff_as_the_cli(truncated_run, tmp_path, capsys):
    """The page's sample of a seed and psi is, pixel for pixel, what `alae-fast generate --seeds`
    writes and what the Python API gives, with the CLI's truncation rule: by default the config's
    psi on the style inputs below its cutoff; a psi alone keeps that cutoff (the CLI's --psi alone
    truncates all inputs: cutoff = num_ws here)."""
    import alae_fast
    from alae_fast.cli import main
    from alae_fast.inference.pictures import to_uint8
    from alae_fast.inference.sampling import generate_seeds

    lib = alae_fast.load(truncated_run)

    def cli(*args) -> np.ndarray:
        out = tmp_path / f"cli{len(list(tmp_path.iterdir()))}"
        assert main(["generate", "--network", str(truncated_run), "--seeds", "5", "--outdir", str(out), *args]) == 0
        with Image.open(out / "seed0005.png") as im:
            return np.asarray(im)

    def api(psi, cutoff, noise="const") -> np.ndarray:
        with torch.no_grad():
            return to_uint8(generate_seeds(lib, [5], psi=psi, noise_mode=noise, cutoff=cutoff))[0]

    def same(page: np.ndarray, want: np.ndarray) -> bool:
        return page.shape == want.reshape(page.shape).shape and np.array_equal(page, want.reshape(page.shape))

    with S.ServerThread(truncated_run) as srv:
        url = srv.url
        info = S.get(url + "api/info")[1]
        assert info["num_ws"] == 6 and info["truncation"] == {"psi": 0.7, "cutoff": 3}

        default = S.post(url + "api/generate", {"seed": 5})[1]  # the config's psi and cutoff
        assert default["psi"] == 0.7 and default["cutoff"] == 3
        assert same(_png_of(default["image"]), cli()) and same(_png_of(default["image"]), api(0.7, 3))

        half = S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "noise_mode": "const"})[1]
        assert half["psi"] == 0.5 and half["cutoff"] == 3
        page = _png_of(half["image"])
        assert same(page, cli("--psi", "0.5", "--cutoff", "3")) and same(page, api(0.5, 3))
        every = S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "cutoff": 6})[1]
        assert same(_png_of(every["image"]), cli("--psi", "0.5")) and same(_png_of(every["image"]), api(0.5, None))
        assert not np.array_equal(page, _png_of(every["image"]))  # the cutoff shows in the picture
        noisy = S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "noise_mode": "random"})[1]
        assert same(_png_of(noisy["image"]), cli("--psi", "0.5", "--cutoff", "3", "--noise-mode", "random"))
        capsys.readouterr()

        # the styles answered: psi on inputs 0-2, F(z) itself on 3-5, w = input 0
        ws = torch.tensor(half["ws"])
        plain_w = torch.tensor(S.post(url + "api/generate", {"seed": 5, "psi": 1.0})[1]["ws"])
        assert ws.shape == (6, 8) and torch.equal(ws[:3], ws[:1].expand(3, -1)) and torch.equal(ws[3:], plain_w[3:])
        assert torch.equal(ws[0], lib.model.truncate(plain_w[:1], 0.5)[0]) and half["w"] == half["ws"][0]

        # what "edit this sample" and "use as A/B" take decodes to the picture shown (plain)
        assert S.post(url + "api/mix", {"wa": half["ws"], "wb": half["ws"]})[1]["a"] == half["plain"]
        assert S.post(url + "api/interpolate", {"wa": half["ws"], "wb": half["ws"], "steps": 2})[1]["images"][0] == \
            half["plain"]
        assert S.post(url + "api/values", {"w": half["ws"]})[1]["values"] == half["values"]
        same_edit = S.post(url + "api/edit", {"w": half["ws"], "amounts": half["values"]})[1]
        assert same_edit["image"] == half["plain"]
        moved = list(half["values"])
        moved[2] += 2.0
        edited = S.post(url + "api/edit", {"w": half["ws"], "amounts": moved})[1]
        ews = torch.tensor(edited["ws"])  # every input moved alike: truncated inputs stay alike
        assert edited["image"] != half["plain"] and torch.equal(ews[:3], ews[:1].expand(3, -1))
        torch.testing.assert_close(ews[3:] - ews[0], ws[3:] - ws[0], rtol=0, atol=1e-5)
        assert S.post(url + "api/mix", {"wa": edited["ws"], "wb": half["ws"]})[1]["a"] == edited["image"]

        for cutoff, code in ((0, 400), (7, 400), (-1, 400), ("3", 422), (True, 422), (2.5, 422)):
            status, body = S.post(url + "api/generate", {"seed": 5, "cutoff": cutoff})
            assert status == code and "cutoff" in body["error"], (cutoff, status, body)
            if code == 400:
                assert "[1, 6]" in body["error"]
        # psi 1 truncates nothing: a cutoff with it is refused, as `alae-fast generate` refuses it
        status, body = S.post(url + "api/generate", {"seed": 5, "psi": 1, "cutoff": 3})
        assert status == 400 and "cutoff: 3 has no effect with psi 1" in body["error"], body
        assert main(["generate", "--network", str(truncated_run), "--seeds", "5", "--psi", "1", "--cutoff", "3",
                     "--outdir", str(tmp_path / "refused")]) == 2
        assert "--cutoff 3 has no effect with --psi 1" in capsys.readouterr().err
        status, body = S.post(url + "api/generate", {"seed": 5, "psi": 1})  # without a cutoff: no truncation
        assert status == 200 and same(_png_of(body["image"]), cli("--psi", "1")), body.get("error")
        capsys.readouterr()


def test_every_numeric_field_is_strict(truncated_run):
    """No endpoint takes a string or a boolean for a number (nor a fraction for an integer), as
    neither the CLI nor the Python API does: 422 naming the field for the request's own numbers,
    400 naming the list for a latent's or the amounts' numbers; the same bodies with numbers pass."""
    w = [0.1] * 8
    good = {"generate": {"seed": 1, "psi": 0.5, "cutoff": 2}, "interpolate": {"wa": w, "wb": w, "steps": 2},
            "mix": {"wa": w, "wb": w}, "edit": {"w": w, "amounts": [0.0] * 10}, "values": {"w": w}}
    scalars = [("generate", "seed", ("1", True, 1.5, None)), ("generate", "psi", ("0.5", True, [0.5])),
               ("generate", "cutoff", ("2", True, 2.5)), ("interpolate", "steps", ("2", True, 2.5))]
    lists = [("interpolate", "wa"), ("interpolate", "wb"), ("mix", "wa"), ("mix", "wb"), ("edit", "w"),
             ("edit", "amounts"), ("values", "w")]
    with S.ServerThread(truncated_run) as srv:
        for route, body in good.items():
            status, answer = S.post(srv.url + "api/" + route, body)
            assert status == 200, (route, answer)
        for route, name, bads in scalars:
            for bad in bads:
                status, answer = S.post(srv.url + "api/" + route, {**good[route], name: bad})
                assert status == 422 and f"bad request: {name}:" in answer["error"], (route, name, bad, answer)
        for route, name in lists:
            for bad in ("0.5", True):
                values = [bad] + good[route][name][1:]
                status, answer = S.post(srv.url + "api/" + route, {**good[route], name: values})
                assert status == 400 and f"{name}: expected numbers only" in answer["error"], (route, name, answer)
        # a style row of the styles [num_ws][latent] too
        rows = [w] * 5 + [["0.5"] + w[1:]]
        status, answer = S.post(srv.url + "api/values", {"w": rows})
        assert status == 400 and "w: expected numbers only" in answer["error"], answer


def test_generate_without_psi_keeps_the_old_answer_on_an_untruncated_run(server):
    # a config without truncation (psi 1): every input is the one w, as before this API had ws
    info = S.get(server.url + "api/info")[1]
    assert info["truncation"] == {"psi": 1.0, "cutoff": 1}
    a = S.post(server.url + "api/generate", {"seed": 3})[1]
    b = S.post(server.url + "api/generate", {"seed": 3, "psi": 1.0})[1]
    assert a["image"] == b["image"] and a["ws"] == [a["w"]] and (a["psi"], a["cutoff"]) == (1.0, 1)
    # a cutoff with psi 1 (given, or the config's) would change nothing: refused, as the CLI does
    for body, says in (({"seed": 3, "psi": 1.0, "cutoff": 1}, "with psi 1"),
                       ({"seed": 3, "psi": 1, "cutoff": 1}, "with psi 1"),
                       ({"seed": 3, "cutoff": 1}, "this run's truncation psi is 1")):
        status, answer = S.post(server.url + "api/generate", body)
        assert status == 400 and "cutoff: 1 has no effect" in answer["error"] and says in answer["error"], answer


def test_seeds_take_the_clis_range_exactly(server, digits_run, tmp_path, capsys):
    """A seed is an int in [0, SEED_LIMIT) = [0, 2**63), as `alae-fast generate --seed(s)` and
    run.generate take it: a JSON integer past 2**53 (where a JavaScript number rounds) is read
    exactly and gives the CLI's and the Python API's picture of that seed; past the range, 400 in
    one line giving it (the same constant); a fraction or a JSON float such as 1e20, 422 naming seed."""
    import json
    import urllib.request

    import alae_fast
    from alae_fast.inference.sampling import seed_range_text
    from alae_fast.cli import main
    from alae_fast.inference.pictures import to_uint8
    from alae_fast.inference.sampling import SEED_LIMIT

    url = server.url
    info = S.get(url + "api/info")[1]
    assert info["seed_limit"] == str(SEED_LIMIT) and info["seed_range"] == seed_range_text() == "[0, 2**63)"
    assert seed_range_text(1000) == "[0, 1000)"

    big = 2 ** 53 + 1  # 9007199254740993: a JavaScript number reads it as 2**53
    # the body as the page writes it: the seed's digits, a JSON integer
    req = urllib.request.Request(url + "api/generate", data=b'{"seed":9007199254740993,"psi":1,"noise_mode":"const"}',
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    run = alae_fast.load(digits_run)
    with torch.no_grad():
        lib = to_uint8(run.generate(1, seed=big, psi=1.0, noise="const"))[0, ..., 0]
        rounded = to_uint8(run.generate(1, seed=2 ** 53, psi=1.0, noise="const"))[0, ..., 0]
    assert np.array_equal(_png_of(answer["image"]), lib)
    assert not np.array_equal(lib, rounded)  # the seed JavaScript would have made of it is another picture
    assert main(["generate", "--network", str(digits_run), "--seeds", str(big), "--outdir", str(tmp_path)]) == 0
    with Image.open(tmp_path / f"seed{big}.png") as im:
        assert np.array_equal(np.asarray(im), lib)
    capsys.readouterr()

    for seed in (2 ** 32, SEED_LIMIT - 1):  # the page stopped at 2**32; the CLI's last seed
        status, body = S.post(url + "api/generate", {"seed": seed, "psi": 1.0})
        assert status == 200, (seed, body)
        with torch.no_grad():
            want = to_uint8(run.generate(1, seed=seed, psi=1.0, noise="const"))[0, ..., 0]
        assert np.array_equal(_png_of(body["image"]), want), seed
    for seed in (SEED_LIMIT, 10 ** 30, -1):
        status, body = S.post(url + "api/generate", {"seed": seed})
        assert status == 400 and body["error"] == (f"seed: expected an integer in [0, 2**63) (as alae-fast generate "
                                                   f"--seed), got {seed}"), (seed, body)
    for seed in (1e20, 1.5, 1.0, "9007199254740993", None):
        status, body = S.post(url + "api/generate", {"seed": seed})
        assert status == 422 and body["error"].startswith("bad request: seed: "), (seed, body)
        assert "\n" not in body["error"]


# --- removing uploaded directions -----------------------------------------------------------------

def test_an_uploaded_direction_can_be_removed(digits_run):
    digits = [f"digit {c}" for c in range(10)]
    with S.ServerThread(digits_run) as srv:
        url = srv.url
        enc = S.post(url + "api/encode", S.digit_png(2), raw=True)[1]
        moved = list(enc["values"])
        moved[8] += 3.0
        before = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved})[1]["image"]

        status, body = S.post(url + "api/directions?name=mine", _npy(np.linspace(-1, 1, 8)), raw=True)
        assert status == 200 and [d["removable"] for d in body["directions"]] == [False] * 10 + [True]
        status, body = S.post(url + "api/directions?name=mine", None, method="DELETE")
        assert status == 200 and body["name"] == "mine" and [d["name"] for d in body["directions"]] == digits
        assert [d["name"] for d in S.get(url + "api/info")[1]["directions"]] == digits

        # later edits use the remaining directions: the same picture as before the upload
        assert S.post(url + "api/values", {"w": enc["w"]})[1]["values"] == enc["values"]
        assert S.post(url + "api/edit", {"w": enc["w"], "amounts": moved})[1]["image"] == before
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved + [0.0]})
        assert status == 400 and "expected 10 numbers" in body["error"]
        # amounts of the right count meant for other directions: refused, not applied to these
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": digits[:9] + ["mine"]})
        assert status == 409 and "names" in body["error"] and "'mine'" in body["error"]
        # each way of differing is said as itself (a script's misspelt name is told which)
        assert "['mine'] is not a direction of this server" in body["error"]
        assert "['digit 9'] is a direction of this server left out" in body["error"]
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": digits[::-1]})
        assert status == 409 and "the same directions in another order" in body["error"]
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": digits[:9] + ["digit 0"]})
        assert status == 409 and "['digit 0'] is given more than once" in body["error"]
        assert "['digit 9'] is a direction of this server left out" in body["error"]
        assert S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": digits})[1]["image"] == before
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": "digit 0"})
        assert status == 422 and "names" in body["error"]
        status, body = S.post(url + "api/edit", {"w": enc["w"], "amounts": moved, "names": list(range(10))})
        assert status == 400 and "names: expected a list of direction names" in body["error"]

        cases = [(S.post(url + "api/directions?name=mine", None, method="DELETE"), 404, "no direction 'mine'"),
                 (S.post(url + "api/directions?name=digit%203", None, method="DELETE"), 409, "came with the server"),
                 (S.post(url + "api/directions", None, method="DELETE"), 422, "name")]
        for (status, body), want_status, want_text in cases:
            assert status == want_status and want_text in body["error"], (status, body)

        # the vector can come back; names stay unique with removals in between
        names = [S.post(url + "api/directions?name=a", _npy(np.linspace(-1, 1, 8) + s), raw=True)[1]["name"]
                 for s in (0.0, 2.0, 3.0)]
        assert names == ["a", "a (2)", "a (3)"]
        assert S.post(url + "api/directions?name=a%20(2)", None, method="DELETE")[0] == 200
        assert S.post(url + "api/directions?name=a", _npy(np.linspace(-1, 1, 8) + 4), raw=True)[1]["name"] == "a (2)"
        assert [d["name"] for d in S.get(url + "api/info")[1]["directions"]][10:] == ["a", "a (3)", "a (2)"]


# --- decoding uploads, a few at a time ------------------------------------------------------------

def test_decode_slots():
    from alae_fast.app.uploads import DecodeSlots

    slots = DecodeSlots(2, 0.1)
    with slots.hold(), slots.hold():
        with pytest.raises(UploadError) as e:
            with slots.hold():
                pass
        assert e.value.status == 503 and "busy" in str(e.value) and e.value.retry_after == 1
    with slots.hold():  # the slots came back
        pass
    for bad, name in (((0, 1.0), "slots"), ((True, 1.0), "slots"), ((1, -1.0), "wait_s"),
                      ((1, float("nan")), "wait_s")):
        with pytest.raises(ValueError, match=name):
            DecodeSlots(*bad)


def _concurrent_encodes(url: str, n: int, raw: bool = False) -> list[tuple[int, dict | str]]:
    """n uploads at once: (status, JSON answer), or with ``raw`` (status, the answer's head and
    start as text, headers included)."""
    out: list = [None] * n
    png = S.digit_png(4, (64, 64))
    head = (f"POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(png)}\r\nConnection: close\r\n\r\n")

    def one(i):
        out[i] = _raw_request(url, head, png) if raw else S.post(url + "api/encode", png, raw=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_uploads_decode_two_at_a_time(digits_run, monkeypatch):
    """N concurrent uploads never decode more than DECODE_SLOTS images at once; one that cannot
    start within DECODE_WAIT_S gets 503 with Retry-After, and the server keeps serving."""
    from alae_fast.app import service as service_module
    from alae_fast.app import uploads

    real, lock, state = service_module.decode_image, threading.Lock(), {"now": 0, "peak": 0, "hold": 0.3}

    def slow_decode(*args, **kw):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(state["hold"])
            return real(*args, **kw)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(service_module, "decode_image", slow_decode)
    with S.ServerThread(digits_run) as srv:  # the defaults: 2 slots, 5 s of waiting: all six get through
        answers = _concurrent_encodes(srv.url, 6)
        assert [a[0] for a in answers] == [200] * 6 and state["peak"] == 2, (answers, state)
        assert len({tuple(a[1]["w"]) for a in answers}) == 1

    monkeypatch.setattr(uploads, "DECODE_WAIT_S", 0.3)
    state.update(peak=0, hold=2.5)  # the first two hold their slots far past the others' wait
    with S.ServerThread(digits_run) as srv:
        answers = _concurrent_encodes(srv.url, 4, raw=True)
        assert sorted(a[0] for a in answers) == [200, 200, 503, 503] and state["peak"] == 2, (answers, state)
        refused = [a[1] for a in answers if a[0] == 503]
        assert all("the server is busy decoding other uploads (2 at a time" in e for e in refused), refused
        assert all("\r\nretry-after: 1\r\n" in e.lower() for e in refused), refused
        code, text = _raw_request(srv.url, "POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                                           "Content-Length: 0\r\nConnection: close\r\n\r\n")
        assert code == 400 and "empty" in text  # serving again once the decodes ended


def test_bodies_held_at_once_are_bounded(digits_run, monkeypatch):
    """Every upload is read whole into memory before it decodes: a slow upload that holds most of
    the budget (BODY_BUDGET_UPLOADS uploads of the largest size) makes the next one that would pass
    it get 503 with Retry-After, and the bytes come back when the slow one ends."""
    from alae_fast.app import server as server_module
    from alae_fast.app import uploads

    budgets = []

    class Seen(uploads.BodyBudget):
        def __init__(self, *a):
            super().__init__(*a)
            budgets.append(self)

    def held(n: int, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while budgets[-1].used != n:
            assert time.monotonic() < end, f"the server holds {budgets[-1].used} bytes of bodies, not {n}"
            time.sleep(0.02)

    monkeypatch.setattr(server_module, "BodyBudget", Seen)
    monkeypatch.setattr(uploads, "BODY_BUDGET_UPLOADS", 1)
    with S.ServerThread(digits_run, max_upload_mb=1.0) as srv:  # budget: 1 MiB
        assert budgets[-1].limit == 2 ** 20
        host, port = srv.url.split("//")[1].strip("/").split(":")
        slow = socket.create_connection((host, int(port)), timeout=30)
        try:  # declares 900 kB and sends 700 kB of it, then waits
            slow.sendall(b"POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                         b"Content-Length: 921600\r\nConnection: close\r\n\r\n" + bytes(716800))
            held(716800)  # read by the server, not yet decodable
            big = bytes(409600)  # 400 kB: within the upload limit, past what the budget has left
            code, text = _raw_request(srv.url, "POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                               f"image/png\r\nContent-Length: {len(big)}\r\nConnection: close\r\n\r\n",
                                      big)
            assert code == 503 and "the server is busy reading other uploads (1.0 MiB at a time)" in text, text
            assert "\r\nretry-after: 1\r\n" in text.lower(), text
        finally:
            slow.close()
        held(0)
        png = S.digit_png(4, (64, 64))
        assert S.post(srv.url + "api/encode", png, raw=True)[0] == 200  # the slow upload's bytes came back
    from alae_fast.app.uploads import BodyBudget

    budget = BodyBudget(10)
    budget.take(6)
    with pytest.raises(UploadError) as e:
        budget.take(5)
    assert e.value.status == 503 and e.value.retry_after == 1 and budget.used == 6
    budget.give(6)
    budget.take(10)
    for bad in (0, True, 1.5, None):
        with pytest.raises(ValueError, match="limit"):
            BodyBudget(bad)


def test_unknown_fields_and_bodies_that_are_not_json_are_refused_by_name(server):
    """A misspelt field ("psy") would otherwise be dropped and the default's picture given; a body
    that is not JSON says so, not "0: JSON decode error"."""
    url = server.url
    for route, body, field in (("api/generate", {"seed": 3, "psy": 0.5}, "psy"),
                               ("api/generate", {"seed": 3, "noisemode": "random"}, "noisemode"),
                               ("api/interpolate", {"wa": [0.0], "wb": [0.0], "step": 4}, "step")):
        status, answer = S.post(url + route, body)
        assert status == 422 and answer["error"] == f"bad request: {field}: unknown field", (route, answer)
    status, answer = S.post(url + "api/generate", b'{"seed": 3,', raw=True, content_type="application/json")
    assert status == 422 and answer["error"].startswith("bad request: the body is not JSON ("), answer
    assert S.post(url + "api/generate", {"seed": 3})[0] == 200  # the known fields alone still pass


def test_query_parameters_a_route_does_not_take_are_refused_by_name(server):
    """"?seed=5" beside a JSON body, or "?nam=x" for an upload, would otherwise be dropped and the
    answer given for the body's seed or the default name: every POST and DELETE route refuses a
    query parameter it does not take with 422 naming it, and takes the ones it does."""
    url = server.url
    seed = S.post(url + "api/generate", {"seed": 3})[1]
    wa = seed["w"]
    amounts = [0.0] * len(S.get(url + "api/info")[1]["directions"])
    for route, body, query in (("api/generate", {"seed": 3}, "seed=5"),
                               ("api/edit", {"w": wa, "amounts": amounts}, "psi=0.5"),
                               ("api/values", {"w": wa}, "w=1"),
                               ("api/mix", {"wa": wa, "wb": wa}, "alpha=0.5"),
                               ("api/interpolate", {"wa": wa, "wb": wa}, "steps=4")):
        status, answer = S.post(url + route + "?" + query, body)
        name = query.split("=")[0]
        assert status == 422 and answer["error"] == f"bad request: {name}: unknown field", (route, answer)
        status, answer = S.post(url + route, body)  # the route itself answers without the query
        assert status == 200 or (route == "api/mix" and "several style inputs" in answer["error"]), (route, answer)
    status, answer = S.post(url + "api/directions?name=q&nam=x", _npy(np.linspace(-1, 1, 8)), raw=True)
    assert status == 422 and answer["error"] == "bad request: nam: unknown field", answer
    status, answer = S.post(url + "api/directions?nme=q", None, method="DELETE")
    assert status == 422 and answer["error"] == "bad request: nme: unknown field", answer
    assert "q" not in [d["name"] for d in S.get(url + "api/info")[1]["directions"]]


def test_serve_and_edit_read_the_directions_alae_fast_directions_wrote(digits_run, tmp_path, capsys):
    """`alae-fast directions` writes RUN/directions; serve and edit read it when no --directions is
    given, and say so (they had ignored it: the page showed only its built-in directions)."""
    import shutil

    import numpy as np

    from alae_fast.cli import main

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    import alae_fast

    latent = alae_fast.load(run).model.latent_size
    (run / "directions").mkdir()
    np.save(run / "directions" / "direction_thick.npy", np.linspace(-1.0, 1.0, latent))
    capsys.readouterr()
    with S.ServerThread(run) as srv:
        names = [d["name"] for d in S.get(srv.url + "api/info")[1]["directions"]]
    out = capsys.readouterr().out
    assert "thick" in names and f"directions from {run / 'directions'}" in out, (names, out)
    img = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray((np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)).save(img)
    assert main(["edit", "--ckpt", str(run), str(img), "--direction", "thick=2", "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert f"directions are looked for in {run / 'directions'}" in err, err
    # a direction given as a file is read as given: the run's folder is not consulted, nor said
    assert main(["edit", "--ckpt", str(run), str(img), "--direction", f"{run / 'directions' / 'direction_thick.npy'}=2",
                 "--steps", "3"]) == 0
    assert "looked for" not in capsys.readouterr().err
    # an empty folder is not one: the built-in directions, and no note
    (run / "directions" / "direction_thick.npy").unlink()
    assert main(["edit", "--ckpt", str(run), str(img), "--direction", "thick=2"]) == 2
    assert "unknown direction 'thick'" in capsys.readouterr().err
    # a checkpoint file outside a run's checkpoints/ (an official .pth in a downloads folder) has no
    # run folder: a directions/ beside it may be another model's, and is not read unasked
    loose = tmp_path / "loose"
    (loose / "directions").mkdir(parents=True)
    ckpt = next((run / "checkpoints").glob("ckpt-*.pt"))
    shutil.copy(ckpt, loose / ckpt.name)
    np.save(loose / "directions" / "direction_thick.npy", np.linspace(-1.0, 1.0, latent))
    assert main(["edit", "--ckpt", str(loose / ckpt.name), str(img), "--direction", "thick=2"]) == 2
    out = capsys.readouterr()
    assert "unknown direction 'thick'" in out.err and "looked for in" not in out.err
    # where `alae-fast directions` wrote them for that file, the refusal says how to use them
    assert f"{str(loose / 'directions')!r} holds .npy directions: give --directions {loose / 'directions'}" in out.err


def test_class_and_pair_directions_come_grouped_and_a_unit_means_the_same_for_both(digits_run, tmp_path, capsys):
    """`alae-fast directions` writes the 45 digit pairs (raw SVM normals, not unit length) into the
    run; serve reads them beside the 10 fitted class directions. Each direction says its kind and
    its length as given, and every one is used scaled to unit length: a slider's value is the
    component of w - w_avg along it, and one unit moves w by 1 in W, for a pair as for a class
    (a pair had moved w by its own length, ~1.5, per unit, beside classes of length 1)."""
    import shutil

    import alae_fast
    from alae_fast.cli import main

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)  # the module's run is read by other servers: no directions/ there
    assert main(["directions", "--ckpt", str(run)]) == 0
    raw = {p.stem.removeprefix("direction_"): np.load(p) for p in (run / "directions").glob("*.npy")}
    pairs = [f"{a}-{b}" for a in range(10) for b in range(a + 1, 10)]
    assert sorted(raw) == sorted(pairs)
    capsys.readouterr()
    w_avg = alae_fast.load(run).model.w_avg.double().numpy()
    with S.ServerThread(run) as srv:
        dirs = S.get(srv.url + "api/info")[1]["directions"]
        assert [d["name"] for d in dirs if d["kind"] == "class"] == [f"digit {c}" for c in range(10)]
        assert [d["name"] for d in dirs if d["kind"] == "pair"] == pairs
        assert len(dirs) == 55 and {d["kind"] for d in dirs} == {"class", "pair"}
        for d in dirs:
            if d["kind"] == "pair":
                assert d["norm"] == pytest.approx(np.linalg.norm(raw[d["name"]]), rel=1e-9)
            assert d["norm"] > 0 and d["lo"] < d["hi"]
        # a class's norm is its fit's own length too (it was 1: the fit had been scaled before)
        assert max(abs(d["norm"] - 1) for d in dirs if d["kind"] == "class") > 0.05
        assert max(abs(d["norm"] - 1) for d in dirs if d["kind"] == "pair") > 0.05

        enc = S.post(srv.url + "api/encode", S.digit_png(3), raw=True)[1]
        w = np.asarray(enc["w"], dtype=np.float64)
        index = {d["name"]: i for i, d in enumerate(dirs)}
        for name in ("3-8", "digit 8"):
            i = index[name]
            unit = raw[name] / np.linalg.norm(raw[name]) if name in raw else None
            if unit is not None:  # the value is the component along the unit vector, not along the file's
                assert enc["values"][i] == pytest.approx((w - w_avg) @ unit, abs=1e-5)
            moved = list(enc["values"])
            moved[i] += 1.0
            status, out = S.post(srv.url + "api/edit", {"w": enc["w"], "amounts": moved,
                                                        "names": [d["name"] for d in dirs]})
            assert status == 200
            step = np.asarray(out["w"], dtype=np.float64) - w
            assert np.linalg.norm(step) == pytest.approx(1.0, abs=1e-4), name  # one unit: a distance of 1
            if unit is not None:
                np.testing.assert_allclose(step, unit, atol=1e-4)
        # a pair direction uploaded again at another length is the same slider: refused
        status, body = S.post(srv.url + "api/directions?name=again", _npy(raw["3-8"] * 2), raw=True)
        assert status == 400 and "lies along direction '3-8'" in body["error"]


# --- directions scaled to unit length: what lies along one, what can be scaled --------------------

@pytest.fixture(scope="module")
def plain_service(digits_run):
    import alae_fast
    from alae_fast.app.service import ModelService

    return ModelService.open(alae_fast.load(digits_run), fit_digits=False)


def _fresh(svc):
    from alae_fast.app.service import ModelService

    return ModelService(svc.run)


def test_a_direction_along_one_on_the_page_is_refused_whichever_way_and_however_stored(plain_service):
    """The same line once scaled to unit length is one slider: a negative multiple (the opposite
    direction), a float32 copy (as an upload of a float32 file gives), a copy with tiny noise; a
    clearly different direction is still added. (Exact equality of the unit vectors had let all
    of these through but a positive multiple.)"""
    from alae_fast.app.service import SameLine

    svc = _fresh(plain_service)
    v = np.random.default_rng(3).normal(size=8)
    svc.add_direction("v", v, source="test")
    noise = np.random.default_rng(4).normal(size=8)
    cases = {"minus": (-v, "opposite"), "minus 2.5": (-2.5 * v, "opposite"), "times 3": (3 * v, "same"),
             "float32": (v.astype(np.float32), "same"), "noise": (v + 1e-9 * noise, "same"),
             "float32 file": (parse_direction(_npy(v.astype(np.float32)), 8, "f32", scaled=True), "same")}
    for name, (vec, how) in cases.items():
        with pytest.raises(SameLine, match=f"lies along direction 'v'.*points in the {how} direction") as e:
            svc.add_direction(name, vec, source="test")
        assert e.value.other == "v" and e.value.how == f"the {how}", name
    assert [d.name for d in svc.directions] == ["v"]
    other = svc.add_direction("other", v + 0.5 * np.linalg.norm(v) * noise / np.linalg.norm(noise), source="test")
    assert other.name == "other" and [d.name for d in svc.directions] == ["v", "other"]


def test_any_finite_non_zero_length_is_scaled_to_one_without_under_or_overflow(plain_service):
    """A direction's length does not matter on the page: 1e-170 and 1e170 times a vector give its
    unit vector and their own length (np.linalg.norm had given 0 and infinity, with a
    RuntimeWarning); only what cannot be scaled is refused."""
    import warnings

    v = np.random.default_rng(5).normal(size=8)
    unit = v / np.linalg.norm(v)
    for scale in (1e-170, 1e-14, 1e170, 1e300):
        svc = _fresh(plain_service)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            d = svc.add_direction("d", v * scale, source="test")
        np.testing.assert_allclose(d.vector, unit, rtol=1e-12, atol=1e-15)
        assert d.norm == pytest.approx(np.linalg.norm(v) * scale, rel=1e-12) and d.lo < d.hi
    svc = _fresh(plain_service)
    for bad, said in ((np.zeros(8), "all zeros"), (np.full(8, np.nan), "NaN or infinity"),
                      (np.full(8, 1.5e308), "length past float64's range")):
        with pytest.raises(UserError, match=f"direction 'bad' .*{said}"):
            svc.add_direction("bad", bad, source="test")
    assert svc.directions == []


def test_given_values_are_taken_along_the_vector_as_given_and_scaled_to_unit_length(plain_service):
    """``values`` are projections on the vector as given (a fit's, of length 3 here): the
    slider's limits are in units of the unit vector, a third of them."""
    svc = _fresh(plain_service)
    run = svc.run
    v = np.random.default_rng(6).normal(size=8)
    v *= 3 / np.linalg.norm(v)
    with torch.no_grad():
        w = run.model.mapping(torch.randn(300, 8, generator=torch.Generator().manual_seed(0))).double()
    raw_values = editing.projections(w, run.model.w_avg.double().cpu(), torch.from_numpy(v).view(1, -1)).numpy()
    d = svc.add_direction("fit", v, source="test", values=raw_values)
    lo, hi = editing.slider_ranges(raw_values / 3)
    assert (d.lo, d.hi) == (pytest.approx(float(lo[0])), pytest.approx(float(hi[0])))
    raw_lo, raw_hi = editing.slider_ranges(raw_values)
    assert abs(d.hi - d.lo) == pytest.approx(abs(float(raw_hi[0] - raw_lo[0])) / 3)


def test_a_page_upload_is_refused_only_when_it_cannot_be_scaled(server):
    """An upload is scaled to unit length: a short one (1e-14) or a long one (1e30) is a slider
    like any other; `alae-fast edit`, which uses the raw vector, still refuses them."""
    v = np.linspace(-1, 1, 8) + 0.3
    for name, scale in (("tiny", 1e-14), ("vast", 1e30)):
        status, body = S.post(server.url + f"api/directions?name={name}", _npy(v * scale), raw=True)
        assert status == 200, body
        assert body["directions"][-1]["norm"] == pytest.approx(np.linalg.norm(v) * scale, rel=1e-12)
        assert S.post(server.url + f"api/directions?name={name}", None, method="DELETE")[0] == 200
        v = v[::-1].copy()  # not along the first, so that both are added
    with pytest.raises(UserError, match="too short to use"):
        parse_direction(_npy(v * 1e-14), 8, "tiny")
    with pytest.raises(UserError, match="overflow|beyond float32's range"):
        parse_direction(_npy(v * 1e300), 8, "vast")
    status, body = S.post(server.url + "api/directions?name=zero", _npy(np.zeros(8)), raw=True)
    assert status == 400 and "all zeros" in body["error"]
    status, body = S.post(server.url + "api/directions?name=inf", _npy(np.full(8, np.inf)), raw=True)
    assert status == 400 and "NaN or infinity" in body["error"]


def test_serve_skips_a_direction_file_along_an_earlier_one_and_says_which(digits_run, tmp_path, capsys):
    """thick.npy = v and thick_x2.npy = 2v are one slider on the page: serve starts with the
    first and prints which file it skipped, beside which, and why (it had refused to start,
    naming neither file nor folder)."""
    folder = tmp_path / "dirs"
    folder.mkdir()
    v = np.random.default_rng(7).normal(size=8)
    np.save(folder / "thick.npy", v)
    np.save(folder / "thick_x2.npy", 2 * v)
    np.save(folder / "thick_neg.npy", -v)
    np.save(folder / "other.npy", np.random.default_rng(8).normal(size=8))
    with S.ServerThread(digits_run, directions=str(folder)) as srv:
        info = S.get(srv.url + "api/info")[1]
    out = capsys.readouterr().out
    names = [d["name"] for d in info["directions"]]
    assert names[:2] == ["other", "thick"] and "thick_x2" not in names and "thick_neg" not in names
    assert f"--directions {folder}: skipped thick_x2.npy: it lies along thick.npy (the same direction" in out
    assert f"--directions {folder}: skipped thick_neg.npy: it lies along thick.npy (the opposite direction" in out
    assert "one slider does what both would" in out
    assert any("skipped thick_x2.npy" in n for n in info["notes"])



def _untrained_style_checkpoint(path):
    """A checkpoint written by hand from a freshly built StyleALAE (digits-32 cut to 16x16 and a
    few feature maps): a model whose G has noise inputs, without training one (the toy ALAE of
    these tests has none)."""
    from alae_fast.inference.loading import CHECKPOINT_FORMAT, _official_schedule
    from alae_fast.models import build_model
    from alae_fast.models.presets import DIGITS_32

    cfg = DIGITS_32.replace(layer_count=3, start_features=4, max_features=8, latent_size=8, mapping_layers=2)
    schedule = _official_schedule(cfg)
    images = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": cfg.to_dict(), "schedule": schedule.to_dict(),
                "setup": "test", "trainer": {"ema": {"module": build_model(cfg).state_dict()}, "images_seen": images}},
               path)
    return path


def test_info_says_whether_the_model_has_noise_inputs(server, tmp_path):
    """An MLP ALAE's G takes no noise (the CLI refuses --noise-mode random there): /api/info says
    so, and the page offers no noise mode; a StyleALAE's G has noise inputs. A new field: the
    numbers of every route mean what they meant, so api_version stays 2."""
    info = S.get(server.url + "api/info")[1]
    assert info["noise_inputs"] is False and info["api_version"] == 2
    # every mode is the same picture on the MLP: nothing the page hides would change it
    images = {S.post(server.url + "api/generate", {"seed": 4, "psi": 1.0, "noise_mode": m})[1]["image"]
              for m in ("const", "random", "none")}
    assert len(images) == 1
    with S.ServerThread(_untrained_style_checkpoint(tmp_path / "style.pt")) as srv:
        info = S.get(srv.url + "api/info")[1]
    assert info["noise_inputs"] is True and info["api_version"] == 2 and info["num_ws"] == 6


def test_a_whole_image_of_an_unsupported_variant_is_415_with_pillows_reason():
    # a BMP whose header says compression 4 (BI_JPEG) is complete, not truncated: a variant Pillow
    # does not decode (a review had found it answered 400 "truncated or corrupt BMP?")
    import struct

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    data[30:34] = struct.pack("<I", 4)  # BITMAPINFOHEADER's biCompression
    with pytest.raises(UploadError, match=r"a BMP file of a kind that cannot be read \(.*Unsupported BMP "
                                          r"compression") as e:
        decode_image(bytes(data), 32, 3, max_bytes=1 << 20, max_pixels=10_000)
    assert e.value.status == 415


def test_text_that_starts_with_bm_is_not_taken_for_a_bmp():
    # "BM" is two letters of any text: from 18 bytes on, a BMP's info-header size decides
    assert signature_format(b"BMW is a car maker, not an image") is None
    with pytest.raises(UploadError, match="not an image in a supported format") as e:
        decode_image(b"BMW is a car maker, not an image", 32, 3, max_bytes=1 << 20, max_pixels=10_000)
    assert e.value.status == 415
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "BMP")
    assert signature_format(buf.getvalue()) == "BMP"
    assert signature_format(b"BM12") == "BMP"  # too short to tell: a BMP cut short


@pytest.mark.parametrize("psi, cutoff", [(0.7, 0), (1.0, 4), (0.7, 4), (0.7, 99)])
def test_generate_takes_every_truncation_a_config_may_hold(digits_run, psi, cutoff, monkeypatch):
    # a config's cutoff of 0 (which truncates nothing) had made every sample a 400 once the
    # sampling functions refused a cutoff of 0 from their callers
    import dataclasses

    import alae_fast
    from alae_fast.app.service import ModelService
    from alae_fast.inference.sampling import generate_seeds

    run = alae_fast.load(digits_run)
    monkeypatch.setattr(run, "config", dataclasses.replace(run.config, truncation_psi=psi, truncation_cutoff=cutoff))
    svc = ModelService(run)
    answer = svc.generate(3)
    truncates = psi != 1 and cutoff != 0
    want = generate_seeds(run, [3], psi=psi if truncates else 1.0,
                          cutoff=cutoff if truncates and cutoff < run.model.num_ws else None)
    assert answer["image"] == svc._png(want)
