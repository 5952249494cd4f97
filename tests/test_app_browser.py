"""The `alae-fast serve` page in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by Playwright. Upload a digit, move a slider, and check that the pictures shown change
and are exactly what the API answers; bad uploads show a message and the page keeps working.

Marked `browser`; skipped when playwright or the chromium binary is missing (.ci/run installs both)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from alae_fast_tests_support import one_thread, sibling

pytestmark = pytest.mark.browser
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("ALAE_FAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium binary at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


S = sibling("app_support.py")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with one_thread():
        run = S.train_digits_run(tmp_path_factory.mktemp("browser") / "digits")
        with S.ServerThread(run) as srv:
            yield srv


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server.url)
        pg.wait_for_function("window.alae && window.alae.info !== null")
        yield pg
        browser.close()
        assert not errors, errors


def _src(page, sel: str) -> str:
    return page.get_attribute(sel, "src") or ""


def test_upload_then_slider_changes_the_picture_as_the_api_says(page, server, tmp_path):
    assert "digits-mlp" in page.inner_text("#model")
    assert page.locator("#sliders input[type=range]").count() == 10
    digit = tmp_path / "digit.png"
    digit.write_bytes(S.digit_png(5, (48, 48)))
    page.set_input_files("#file", str(digit))
    page.wait_for_function("document.getElementById('reconstruction').src.startsWith('data:image/png')")
    rec = _src(page, "#reconstruction")
    assert _src(page, "#original").startswith("data:image/png") and "MSE" in page.inner_text("#mse")
    assert "ms server" in page.inner_text("#encode-ms")
    # the page shows what the API answers for the same upload
    status, enc = S.post(server.url + "api/encode", digit.read_bytes(), raw=True)
    assert status == 200 and enc["reconstruction"] == rec and enc["original"] == _src(page, "#original")
    assert page.evaluate("window.alae.current.w") == enc["w"]

    slider = page.locator("#dir-8")
    lo, hi = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
    edits = page.evaluate("window.alae.edits")
    page.evaluate("""([v]) => { const s = document.getElementById('dir-8'); s.value = v;
                     s.dispatchEvent(new Event('input', {bubbles: true})); }""", [hi - 0.05 * (hi - lo)])
    page.wait_for_function(f"window.alae.edits > {edits}")
    edited = _src(page, "#edited")
    assert edited.startswith("data:image/png") and edited != rec
    sent = page.evaluate("window.alae.lastEdit")
    assert sent["amounts"][8] == pytest.approx(float(slider.input_value()))
    status, api = S.post(server.url + "api/edit", sent)
    assert status == 200 and api["image"] == edited  # exactly the API's picture
    assert page.get_attribute("a.dl[data-for=edited]", "href") == edited  # the PNG download is that picture
    assert "ms server" in page.inner_text("#edit-ms")


def test_use_as_a_after_an_edit_takes_the_edited_picture_and_its_styles(page, server):
    # the page holds the slider edit of the test above; "use as A" shows that picture, so A's w
    # must be the edited w (it was the unedited E(x): mixing and interpolation used another image)
    edited = _src(page, "#edited")
    sent = page.evaluate("window.alae.lastEdit")
    status, api = S.post(server.url + "api/edit", sent)
    assert status == 200 and api["image"] == edited
    page.click("#use-a")
    assert _src(page, "#slot-a") == edited
    wa = page.evaluate("window.alae.a.w")  # the edit's styles (style inputs from 16 on keep E(x))
    assert wa == api["ws"] and wa[0] != sent["w"]
    _, strip = S.post(server.url + "api/interpolate", {"wa": wa, "wb": wa, "steps": 2})
    assert strip["images"][0] == edited  # A's styles decode to A's picture


def test_an_error_is_shown_where_the_user_is_looking(page):
    # a message from the bottom of the page (interpolation) must not appear only at its top
    page.set_viewport_size({"width": 1280, "height": 500})
    try:
        page.evaluate("window.alae.a = window.alae.b = null; document.getElementById('message').hidden = true")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.click("#interpolate")
        page.wait_for_selector("#message:not([hidden])")
        assert "fill both A and B" in page.inner_text("#message")
        box = page.locator("#message").bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 500, box
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.evaluate("window.scrollTo(0, 0)")


def test_an_empty_seed_is_refused_not_read_as_0(page):
    page.evaluate("document.getElementById('message').hidden = true")
    before = page.evaluate("window.alae.generated ? window.alae.generated.image : null")
    page.fill("#seed", "")
    page.click("#generate")
    page.wait_for_selector("#message:not([hidden])")
    assert "seed" in page.inner_text("#message")
    assert page.evaluate("window.alae.generated ? window.alae.generated.image : null") == before


def test_a_phone_wide_window_does_not_scroll_sideways(page):
    page.set_viewport_size({"width": 390, "height": 844})  # the cards were 440 px at least
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_generate_and_interpolate_on_the_page(page, server):
    page.fill("#seed", "11")
    page.click("#generate")
    page.wait_for_function("document.getElementById('generated').src.startsWith('data:image/png')")
    _, api = S.post(server.url + "api/generate", {"seed": 11, "psi": 1.0, "noise_mode": "const"})
    assert _src(page, "#generated") == api["image"]
    page.click("#seed-a-go")
    page.click("#seed-b-go")
    page.wait_for_function("window.alae.a && window.alae.b")
    page.fill("#steps", "4")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 4")
    # A and B show the pictures interpolation starts and ends on (samples without noise)
    page.wait_for_function("document.getElementById('interp-3').src.startsWith('data:image/png')")
    assert _src(page, "#interp-0") == _src(page, "#slot-a") and _src(page, "#interp-3") == _src(page, "#slot-b")
    assert page.locator("#mix-block").is_hidden()  # one style input: no mixing offered


def test_a_transparent_upload_is_encoded_and_the_page_says_how(page, server, tmp_path):
    import io

    import numpy as np
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(S.digit_png(4, (48, 48)))).convert("L"))
    alpha = np.random.default_rng(0).integers(0, 256, grey.shape, dtype=np.uint8)
    f = tmp_path / "sticker.png"
    Image.fromarray(np.stack([grey, alpha], -1), "LA").save(f)
    before = _src(page, "#original")
    page.set_input_files("#file", str(f))
    page.wait_for_function(f"document.getElementById('original').src !== {before!r}")
    page.wait_for_selector("#message:not([hidden])")
    assert "sticker.png" in page.inner_text("#message") and "composited over black" in page.inner_text("#message")
    assert page.get_attribute("#message", "class") == "message ok"  # a notice, not an error
    status, enc = S.post(server.url + "api/encode", f.read_bytes(), raw=True)
    assert status == 200 and "transparent pixels" in enc["notice"] and enc["original"] == _src(page, "#original")


def test_a_bad_upload_shows_a_message_and_the_page_keeps_working(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#message:not([hidden])")
    assert "not an image" in page.inner_text("#message")
    good = tmp_path / "ok.png"
    good.write_bytes(S.digit_png(1))
    before = _src(page, "#reconstruction")
    page.set_input_files("#file", str(good))
    page.wait_for_function(f"document.getElementById('reconstruction').src !== {before!r}")
