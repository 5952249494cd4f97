"""The `alae-fast serve` page in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by Playwright. Upload a digit, move a slider, and check that the pictures shown change
and are exactly what the API answers; bad uploads show a message and the page keeps working;
truncation as `alae-fast generate` (on a StyleALAE whose config truncates inputs 0-2 of 6);
removing an uploaded direction, and the name a file's name gives it; class and digit-pair
directions in their own groups, a slider's unit the same for both; buttons disabled while their request runs; an upload's E(x)
refined by the steps the page's field asks for.

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
def digits_run(tmp_path_factory):
    with one_thread():
        return S.train_digits_run(tmp_path_factory.mktemp("browser") / "digits")


@pytest.fixture(scope="module")
def server(digits_run):
    with one_thread():
        with S.ServerThread(digits_run) as srv:
            yield srv


@pytest.fixture(scope="module")
def style_server(tmp_path_factory):
    with one_thread():
        with S.ServerThread(S.truncated_toy_run(tmp_path_factory)) as srv:
            yield srv


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _opened(browser, url):
    """The page at ``url`` once it has its model's info; closed after, failing on any page error."""
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_function("window.alae && window.alae.info !== null")
    yield pg
    pg.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def page(browser, server):
    yield from _opened(browser, server.url)


@pytest.fixture(scope="module")
def style_page(browser, style_server):
    yield from _opened(browser, style_server.url)


def _src(page, sel: str) -> str:
    return page.get_attribute(sel, "src") or ""


def _error_shown(pg, says: str) -> str:
    """The error the banner shows once it shows one (not a notice), checked to contain ``says``."""
    pg.wait_for_selector("#message:not([hidden])")
    text = pg.inner_text("#message")
    assert says in text and pg.get_attribute("#message", "class") == "message", (says, text)
    return text


def _cleared(pg):
    """The banner goes (soon after the answer that clears it is shown); fails if it stays."""
    pg.wait_for_selector("#message", state="hidden", timeout=3000)


def _pixels(data_url: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    assert data_url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as im:
        return np.asarray(im)


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


def _refused_on_page(pg, field: str, value: str, button: str) -> str:
    """Fills ``field`` with ``value``, clicks ``button`` and returns the message the page shows;
    the generated picture stays what it was (nothing was sent as a default value)."""
    pg.evaluate("document.getElementById('message').hidden = true")
    before = pg.evaluate("window.alae.generated ? window.alae.generated.image : null")
    pg.fill(field, value)
    pg.click(button)
    pg.wait_for_selector("#message:not([hidden])")
    assert pg.evaluate("window.alae.generated ? window.alae.generated.image : null") == before
    return pg.inner_text("#message")


def test_an_empty_seed_is_refused_not_read_as_0(page):
    assert _refused_on_page(page, "#seed", "", "#generate") == (
        "seed: expected an integer in [0, 2**63) (as alae-fast generate --seed), got an empty field")


def test_numbers_are_read_as_the_number_fields_read_them(page, server):
    # "1e3" is a number a number field accepts (1000), as "12.0" is 12: not refused for its spelling
    for text, seed in (("1e3", 1000), ("1E2", 100), ("12.0", 12)):
        page.evaluate("window.alae.generated = null")
        page.fill("#seed", text)
        page.click("#generate")
        page.wait_for_function("window.alae.generated !== null")
        _, api = S.post(server.url + "api/generate", {"seed": seed, "psi": 1.0, "noise_mode": "const"})
        assert _src(page, "#generated") == api["image"] and f"seed {seed}," in page.inner_text("#gen-settings")
    # what is not a whole number in range is refused with the page's message, nothing sent
    for text in ("1.5", "-1", "1e20", "1e400", "9223372036854775808", "abc", "0x10", "1 000"):
        msg = _refused_on_page(page, "#seed", text, "#generate")
        assert f'seed: expected an integer in [0, 2**63) (as alae-fast generate --seed), got "{text}"' == msg, msg
    page.fill("#seed", "0")
    # A and B from seeds, and the steps, read alike
    page.fill("#seed-a", "3e0")
    page.fill("#seed-b", "4.0")
    page.evaluate("window.alae.a = window.alae.b = null")
    page.click("#seed-a-go")
    page.click("#seed-b-go")
    page.wait_for_function("window.alae.a && window.alae.b")
    assert page.evaluate("window.alae.a.w") == S.post(server.url + "api/generate", {"seed": 3, "psi": 1.0})[1]["ws"]
    assert page.evaluate("window.alae.b.w") == S.post(server.url + "api/generate", {"seed": 4, "psi": 1.0})[1]["ws"]
    page.fill("#steps", "3e0")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 3")
    assert "steps: enter a whole number from 2 to 16" in _refused_on_page(page, "#steps", "2.5", "#interpolate")
    page.fill("#steps", "8")


def test_empty_steps_and_cutoff_are_refused_by_name(page, style_page):
    # a number input holding text it cannot read gives "": it went out as 0 steps ("got 0") and as
    # the cutoff "" (the server's "Input should be a valid integer")
    page.fill("#seed-a", "3")
    page.fill("#seed-b", "4")
    page.click("#seed-a-go")
    page.click("#seed-b-go")
    page.wait_for_function("window.alae.a && window.alae.b")
    assert "steps: enter a whole number from 2 to 16" in _refused_on_page(page, "#steps", "", "#interpolate")
    page.fill("#steps", "8")
    assert "cutoff: enter a whole number from 1 to 6" in _refused_on_page(style_page, "#cutoff", "", "#generate")
    style_page.fill("#cutoff", "3")


def test_a_phone_wide_window_does_not_scroll_sideways(page):
    page.set_viewport_size({"width": 390, "height": 844})  # the cards were 440 px at least
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_generate_and_interpolate_on_the_page(page, server):
    page.fill("#seed", "11")
    # the page is the module's: an earlier test's sample may still be shown, so wait for this one
    # (a loaded CI machine compared the earlier picture)
    page.evaluate("window.alae.generated = null")
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
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


def test_an_earlier_upload_answering_late_does_not_replace_a_later_one(page, server, tmp_path):
    import threading
    import time

    from alae_fast.app.service import ModelService

    first, second = tmp_path / "first.png", tmp_path / "second.png"
    first.write_bytes(S.digit_png(1, (48, 48)))
    second.write_bytes(S.digit_png(2, (48, 48)))
    real, calls = ModelService.encode_upload, []
    held, second_done, first_done = threading.Event(), threading.Event(), threading.Event()

    def encode(service, data, *rest):
        calls.append(data)
        if len(calls) == 1:  # the first upload answers only after the second has
            held.set()
            second_done.wait(30)
            time.sleep(0.3)
            try:
                return real(service, data, *rest)
            finally:
                first_done.set()
        try:
            return real(service, data, *rest)
        finally:
            second_done.set()

    ModelService.encode_upload = encode
    try:
        page.set_input_files("#file", str(first))
        assert held.wait(30)
        page.set_input_files("#file", str(second))
        assert first_done.wait(30)
        page.wait_for_function("!document.getElementById('encode-card').classList.contains('busy')")
    finally:
        ModelService.encode_upload = real
    _, want = S.post(server.url + "api/encode", second.read_bytes(), raw=True)
    assert len(calls) == 2 and _src(page, "#original") == want["original"]
    assert page.evaluate("window.alae.current.w") == want["w"]


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


def test_a_bad_upload_shows_a_message_and_the_page_keeps_working(page, server, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.set_input_files("#file", str(bad))
    _error_shown(page, "not an image")
    good = tmp_path / "ok.png"
    good.write_bytes(S.digit_png(1))
    before = _src(page, "#reconstruction")
    page.set_input_files("#file", str(good))
    page.wait_for_function(f"document.getElementById('reconstruction').src !== {before!r}")
    _cleared(page)  # the upload that succeeded clears the error of the one it replaced
    _, want = S.post(server.url + "api/encode", good.read_bytes(), raw=True)
    assert _src(page, "#original") == want["original"] and _src(page, "#reconstruction") == want["reconstruction"]


def test_the_refine_field_refines_the_upload_and_the_page_says_so(page, server, tmp_path):
    """With the refine field at N the page sends refine_steps N, says what runs while the server
    refines (the card busy), then shows the API's G(w) of E(x) refined by N steps (another picture
    than G(E(x))), labelled so, and edits that w; a field it cannot read is refused by name with
    nothing sent; 0 gives G(E(x)) again."""
    digit = tmp_path / "eight.png"
    digit.write_bytes(S.digit_png(8, (48, 48)))
    _, plain = S.post(server.url + "api/encode", digit.read_bytes(), raw=True)
    _, refined = S.post(server.url + "api/encode?refine_steps=20", digit.read_bytes(), raw=True)
    assert refined["reconstruction"] != plain["reconstruction"] and refined["w"] != plain["w"]
    sent: list = []

    def on_request(r):
        if "/api/encode" in r.url:
            sent.append(r.url)

    page.on("request", on_request)
    try:
        assert page.get_attribute("#refine-steps", "max") == "1000" and page.input_value("#refine-steps") == "0"
        page.fill("#refine-steps", "20")
        with S.Gate("encode_upload") as gate:
            page.set_input_files("#file", str(digit))
            assert gate.arrived.wait(30)
            assert "busy" in page.get_attribute("#encode-card", "class")
            assert page.text_content("#encode-status") == "refining E(x) by 20 steps of descent…"
            gate.open()
            page.wait_for_function("!document.getElementById('encode-card').classList.contains('busy')")
        assert page.text_content("#encode-status") == ""
        assert sent[-1].endswith("/api/encode?refine_steps=20"), sent
        assert _src(page, "#reconstruction") == refined["reconstruction"] == _src(page, "#edited")
        assert _src(page, "#reconstruction") != plain["reconstruction"]
        assert page.inner_text("#rec-label") == "reconstruction G(w), E(x) refined by 20 steps"
        assert page.inner_text("#mse").startswith("reconstruction G(w), E(x) refined by 20 steps: MSE ")
        assert page.evaluate("window.alae.current.w") == refined["w"]
        edits = page.evaluate("window.alae.edits")
        _set_range(page, "#dir-1", float(page.get_attribute("#dir-1", "max")))
        page.wait_for_function(f"window.alae.edits > {edits}")
        assert page.evaluate("window.alae.lastEdit.w") == refined["w"]  # the edit starts from the refined w

        count = len(sent)
        for text in ("2.5", "1001", "-1"):
            page.evaluate("document.getElementById('message').hidden = true")
            page.fill("#refine-steps", text)
            page.set_input_files("#file", str(digit))
            assert _error_shown(page, "refine steps") == \
                "refine steps: enter a whole number from 0 to 1000 (0: ALAE's own E(x))"
        assert len(sent) == count and _src(page, "#reconstruction") == refined["reconstruction"]

        page.fill("#refine-steps", "0")
        page.evaluate("window.alae.encoded = null")
        page.set_input_files("#file", str(digit))
        page.wait_for_function("window.alae.encoded !== null")
        assert sent[-1].endswith("/api/encode") and _src(page, "#reconstruction") == plain["reconstruction"]
        assert page.inner_text("#rec-label") == "reconstruction G(E(x))"
        assert page.inner_text("#mse").startswith("reconstruction G(E(x)): MSE ")
        assert page.evaluate("window.alae.current.w") == plain["w"]
    finally:
        page.remove_listener("request", on_request)
        page.fill("#refine-steps", "0")


def _set_range(page, sel: str, value: float):
    page.evaluate("""([sel, v]) => { const s = document.querySelector(sel); s.value = v;
                     s.dispatchEvent(new Event('input', {bubbles: true})); }""", [sel, value])


def test_an_uploaded_direction_can_be_removed_on_the_page(page, server, tmp_path):
    import io

    import numpy as np

    digit = tmp_path / "digit.png"
    digit.write_bytes(S.digit_png(7, (48, 48)))
    before = _src(page, "#reconstruction")
    page.set_input_files("#file", str(digit))
    page.wait_for_function(f"document.getElementById('reconstruction').src !== {before!r}")
    assert page.locator("#sliders button.remove").count() == 0  # the fitted ones stay
    buf = io.BytesIO()
    np.save(buf, np.linspace(-1, 1, 8))
    npy = tmp_path / "mine.npy"
    npy.write_bytes(buf.getvalue())
    page.set_input_files("#direction-file", str(npy))
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 11")
    assert page.locator("#sliders button.remove").count() == 1 and page.is_visible("#dir-10-remove")

    edits = page.evaluate("window.alae.edits")
    _set_range(page, "#dir-10", float(page.get_attribute("#dir-10", "max")))
    _set_range(page, "#dir-2", float(page.get_attribute("#dir-2", "max")))
    page.wait_for_function(f"window.alae.edits > {edits} && window.alae.lastEdit.amounts.length === 11")
    page.wait_for_timeout(200)  # both slider moves answered
    kept = float(page.input_value("#dir-2"))
    edits = page.evaluate("window.alae.edits")
    page.click("#dir-10-remove")
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 10")
    assert page.locator("#sliders button.remove").count() == 0
    assert "removed direction mine" in page.inner_text("#message")
    assert float(page.input_value("#dir-2")) == pytest.approx(kept)  # the other sliders stay where they were
    # the edit is made again with the remaining directions, and the picture is the API's
    page.wait_for_function(f"window.alae.edits > {edits}")
    sent = page.evaluate("window.alae.lastEdit")
    assert sent["names"] == [f"digit {c}" for c in range(10)] and sent["amounts"][2] == pytest.approx(kept)
    status, api = S.post(server.url + "api/edit", sent)
    assert status == 200 and api["image"] == _src(page, "#edited")
    assert len(S.get(server.url + "api/info")[1]["directions"]) == 10


def _check_busy(page, button: str, card: str, method: str, path: str, done_js: str):
    """``button`` (double-clicked) sends one request to ``path``; while ``method`` is held in the
    server the button is disabled and ``card`` is busy; both come back once it answers, and once
    it fails (the error shown)."""
    for error in (None, f"{method} held and refused by the test"):
        page.evaluate("document.getElementById('message').hidden = true")
        seen: list = []

        def on_request(r):
            if r.url.split("?")[0].endswith(path):
                seen.append(r.url)

        page.on("request", on_request)
        with S.Gate(method, error=error) as gate:
            page.dblclick(f"#{button}")
            assert gate.arrived.wait(30), f"no {method} call"
            assert page.is_disabled(f"#{button}") and "busy" in page.get_attribute(f"#{card}", "class")
            page.click(f"#{button}", force=True)  # a click on the disabled button sends nothing
            gate.open()
            page.wait_for_function(f"!document.getElementById({button!r}).disabled")
        assert "busy" not in page.get_attribute(f"#{card}", "class")
        assert page.get_attribute(f"#{card}", "aria-busy") is None
        if error is None:
            page.wait_for_function(done_js)
        else:
            page.wait_for_selector("#message:not([hidden])")
            assert error in page.inner_text("#message")
        page.wait_for_timeout(300)  # a second request, had one been sent, would be seen by now
        page.remove_listener("request", on_request)
        assert len(seen) == 1 and gate.calls == 1, (seen, gate.calls)


def test_an_uploaded_direction_file_name_becomes_a_name_the_server_takes(page, server):
    """The server refuses a name that is not 1-60 printable characters (test_app); the page makes
    one of any file's name (control and invisible characters dropped, 60 code points kept),
    shows it, and removes it again under that name."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.linspace(1, -1, 8))
    odd = "tab\there\u200b " + "é" * 70 + ".NPY"
    want = ("tabhere " + "é" * 70)[:60]
    page.set_input_files("#direction-file", {"name": odd, "mimeType": "application/octet-stream",
                                             "buffer": buf.getvalue()})
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 11")
    assert f"added direction {want}" in page.inner_text("#message")
    names = [d["name"] for d in S.get(server.url + "api/info")[1]["directions"]]
    assert names[-1] == want
    page.click("#dir-10-remove")
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 10")
    assert f"removed direction {want}" in page.inner_text("#message")


def test_generate_is_busy_while_it_runs(page):
    page.fill("#seed", "21")
    page.evaluate("window.alae.generated = null")
    _check_busy(page, "generate", "generate-card", "generate", "/api/generate", "window.alae.generated !== null")
    assert not page.is_disabled("#random-seed")


def test_truncation_on_the_page_is_the_clis(style_page, style_server):
    pg, url = style_page, style_server.url
    # the slider starts at the config's psi, and the page says which inputs it truncates
    assert pg.input_value("#psi") == "0.7" and pg.inner_text("#psi-out") == "0.7"
    assert pg.input_value("#cutoff") == "3" and pg.is_visible("#cutoff")
    assert pg.inner_text("#trunc-scope") == "on styles 0-2 of 6 (the config's)"
    pg.fill("#seed", "5")
    pg.click("#generate")
    pg.wait_for_function("window.alae.generated !== undefined && window.alae.generated !== null")
    _, default = S.post(url + "api/generate", {"seed": 5})  # the CLI's defaults (test_app: the same pixels)
    assert _src(pg, "#generated") == default["image"]
    assert "ψ 0.7 on styles 0-2 of 6" in pg.inner_text("#gen-settings")

    _set_range(pg, "#psi", 0.5)
    assert pg.inner_text("#psi-out") == "0.5"
    pg.click("#generate")
    pg.wait_for_function("window.alae.generated.psi === 0.5")
    _, half = S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "noise_mode": "const"})
    assert _src(pg, "#generated") == half["image"] and half["image"] != default["image"]

    pg.fill("#cutoff", "6")
    assert pg.inner_text("#trunc-scope") == "on all 6 styles"
    pg.click("#generate")
    pg.wait_for_function("window.alae.generated.cutoff === 6")
    _, every = S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "cutoff": 6})
    assert _src(pg, "#generated") == every["image"] != half["image"]
    pg.fill("#cutoff", "3")

    # "edit this sample" and "use as A" take its styles: the picture shown, without noise
    pg.click("#generate")
    pg.wait_for_function("window.alae.generated.cutoff === 3")
    pg.click("#gen-edit")
    assert pg.evaluate("window.alae.current.w") == half["ws"] and _src(pg, "#edited") == half["plain"]
    pg.click("#gen-a")
    assert pg.evaluate("window.alae.a.w") == half["ws"] and _src(pg, "#slot-a") == half["plain"]
    edits = pg.evaluate("window.alae.edits")
    _set_range(pg, "#dir-4", float(pg.get_attribute("#dir-4", "max")))
    pg.wait_for_function(f"window.alae.edits > {edits}")
    status, api = S.post(url + "api/edit", pg.evaluate("window.alae.lastEdit"))
    assert status == 200 and api["image"] == _src(pg, "#edited") != half["plain"]


def test_psi_1_sends_no_cutoff(style_page, style_server):
    """psi 1 truncates nothing: the server refuses a cutoff with it (as `alae-fast generate`), so the
    page disables the cutoff field and sends none; another psi brings the cutoff back."""
    pg, url = style_page, style_server.url
    sent: list = []

    def on_request(r):
        if r.url.endswith("/api/generate"):
            sent.append(r.post_data_json)

    pg.fill("#seed", "5")
    pg.fill("#cutoff", "2")  # not the config's: sent while psi truncates
    pg.on("request", on_request)
    try:
        _set_range(pg, "#psi", 1)
        assert pg.is_disabled("#cutoff") and pg.inner_text("#trunc-scope") == "(ψ 1: no truncation)"
        pg.evaluate("window.alae.generated = null")
        pg.click("#generate")
        pg.wait_for_function("window.alae.generated !== null")
        assert sent[-1] == {"seed": 5, "psi": 1, "noise_mode": "const"}, sent
        _, api = S.post(url + "api/generate", {"seed": 5, "psi": 1})
        assert _src(pg, "#generated") == api["image"] and "ψ 1 (no truncation)" in pg.inner_text("#gen-settings")
        assert not pg.is_visible("#message")  # no refusal shown

        _set_range(pg, "#psi", 0.5)
        assert not pg.is_disabled("#cutoff") and pg.inner_text("#trunc-scope") == "on styles 0-1 of 6"
        pg.click("#generate")
        pg.wait_for_function("window.alae.generated.cutoff === 2")
        assert sent[-1] == {"seed": 5, "psi": 0.5, "noise_mode": "const", "cutoff": 2}, sent
        assert _src(pg, "#generated") == S.post(url + "api/generate", {"seed": 5, "psi": 0.5, "cutoff": 2})[1]["image"]
    finally:
        pg.remove_listener("request", on_request)
        pg.fill("#cutoff", "3")


def test_mix_and_interpolate_are_busy_while_they_run(style_page):
    pg = style_page
    pg.evaluate("window.alae.a = window.alae.b = null")
    pg.click("#seed-a-go")
    pg.click("#seed-b-go")
    pg.wait_for_function("window.alae.a && window.alae.b")
    _check_busy(pg, "mix", "pair-card", "mix", "/api/mix",
                "document.getElementById('mix-fine').src.startsWith('data:image/png')")
    _check_busy(pg, "interpolate", "pair-card", "interpolate", "/api/interpolate",
                "document.querySelectorAll('#strip img').length > 0")
    _check_busy(pg, "seed-a-go", "pair-card", "generate", "/api/generate", "true")


def test_a_success_clears_the_error_it_replaced(page, server, tmp_path):
    """Every action of the page: an error stays until an action begun after it succeeds, which
    clears it and shows its result; a new error replaces the one shown (one message, never two);
    an action that began before an error and succeeds after it leaves that error in view."""
    import io

    import numpy as np

    url = server.url
    # generate: a seed that is not an integer, then one that is
    page.fill("#seed", "1.5")
    page.click("#generate")
    _error_shown(page, 'seed: expected an integer in [0, 2**63) (as alae-fast generate --seed), got "1.5"')
    page.fill("#seed", "3")
    page.evaluate("window.alae.generated = null")
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
    _cleared(page)
    assert _src(page, "#generated") == S.post(url + "api/generate", {"seed": 3, "psi": 1.0})[1]["image"]

    # A from a seed: refused, then taken (B filled first, for the interpolation below)
    page.fill("#seed-b", "4")
    page.evaluate("window.alae.b = null")
    page.click("#seed-b-go")
    page.wait_for_function("window.alae.b !== null")
    page.fill("#seed-a", "-1")
    page.click("#seed-a-go")
    _error_shown(page, 'seed of A: expected an integer in [0, 2**63) (as alae-fast generate --seed), got "-1"')
    page.fill("#seed-a", "5")
    page.evaluate("window.alae.a = null")
    page.click("#seed-a-go")
    page.wait_for_function("window.alae.a !== null")
    _cleared(page)
    five = S.post(url + "api/generate", {"seed": 5, "psi": 1.0})[1]
    assert page.evaluate("window.alae.a.w") == five["ws"] and _src(page, "#slot-a") == five["plain"]

    # a new error replaces the one shown (the steps' replaces A's seed's), then interpolation clears it
    page.fill("#seed-a", "-1")
    page.click("#seed-a-go")
    _error_shown(page, "seed of A")
    page.fill("#steps", "2.5")
    page.click("#interpolate")
    page.wait_for_function("document.getElementById('message').textContent.startsWith('steps')")
    assert _error_shown(page, "steps") == "steps: enter a whole number from 2 to 16"
    assert page.locator(".message").count() == 1
    page.fill("#seed-a", "5")
    page.fill("#steps", "3")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('#strip img').length === 3")
    _cleared(page)
    assert _src(page, "#interp-0") == _src(page, "#slot-a")

    # upload: a file that is no image (415), then an image
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.set_input_files("#file", str(bad))
    _error_shown(page, "not an image")
    good = tmp_path / "six.png"
    good.write_bytes(S.digit_png(6, (48, 48)))
    before = _src(page, "#reconstruction")
    page.set_input_files("#file", str(good))
    page.wait_for_function(f"document.getElementById('reconstruction').src !== {before!r}")
    _cleared(page)
    enc = S.post(url + "api/encode", good.read_bytes(), raw=True)[1]
    assert _src(page, "#reconstruction") == enc["reconstruction"]

    # an edit the server refuses (400), then the next slider position
    with S.Gate("edit", error="edit refused by the test") as gate:
        _set_range(page, "#dir-3", float(page.get_attribute("#dir-3", "max")))
        assert gate.arrived.wait(30)
        gate.open()
        _error_shown(page, "edit refused by the test")
    edits = page.evaluate("window.alae.edits")
    _set_range(page, "#dir-3", float(page.get_attribute("#dir-3", "min")))
    page.wait_for_function(f"window.alae.edits > {edits}")
    _cleared(page)
    assert S.post(url + "api/edit", page.evaluate("window.alae.lastEdit"))[1]["image"] == _src(page, "#edited")

    # "reset sliders" with an error shown: the reset succeeds and clears it
    page.fill("#steps", "1")
    page.click("#interpolate")
    _error_shown(page, "steps: enter a whole number from 2 to 16")
    page.click("#reset")
    _cleared(page)
    page.fill("#steps", "3")

    # "use as A" and "edit this sample" with nothing to take: an error, gone once they can
    page.evaluate("window.alae.generated = null")
    page.click("#gen-a")
    _error_shown(page, "use as A: generate a sample first")
    page.click("#gen-edit")
    assert _error_shown(page, "edit this sample: generate a sample first") == \
        "edit this sample: generate a sample first"  # replaced, not added
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
    _cleared(page)
    page.click("#gen-a")
    assert page.is_hidden("#message") and _src(page, "#slot-a") == page.evaluate("window.alae.generated.plain")
    page.evaluate("window.alae.current = null")
    page.click("#use-b")
    _error_shown(page, "use as B: encode an image (or edit a sample) first")
    page.click("#gen-edit")
    _cleared(page)
    page.click("#use-b")
    assert page.is_hidden("#message") and page.evaluate("window.alae.b.w") == page.evaluate("window.alae.generated.ws")

    # a direction the server refuses (400: its length), then one it takes: the notice replaces the error
    short, vec = tmp_path / "short.npy", tmp_path / "extra.npy"
    buf = io.BytesIO()
    np.save(buf, np.ones(3))
    short.write_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.arange(8.0) - 3.5)
    vec.write_bytes(buf.getvalue())
    page.set_input_files("#direction-file", str(short))
    _error_shown(page, "the model's latent size is 8")
    page.set_input_files("#direction-file", str(vec))
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 11")
    page.wait_for_selector("#message.ok:not([hidden])")
    assert page.inner_text("#message") == "added direction extra"
    page.click("#dir-10-remove")
    page.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 10")
    page.wait_for_timeout(300)  # the edit made again without it has answered: the notice stays
    assert page.inner_text("#message") == "removed direction extra" and page.is_visible("#message")
    page.click("#message")  # a click closes it
    assert page.is_hidden("#message")

    # a generate that began before an error and succeeds after it leaves that error in view
    with S.Gate("generate") as gate:
        page.fill("#seed", "8")
        page.click("#generate")
        assert gate.arrived.wait(30)
        page.fill("#steps", "")
        page.click("#interpolate")
        _error_shown(page, "steps: enter a whole number from 2 to 16")
        gate.open()
        page.wait_for_function("!document.getElementById('generate').disabled")
    page.wait_for_timeout(200)
    _error_shown(page, "steps: enter a whole number from 2 to 16")
    assert _src(page, "#generated") == S.post(url + "api/generate", {"seed": 8, "psi": 1.0})[1]["image"]
    page.fill("#steps", "3")
    page.click("#interpolate")
    _cleared(page)
    page.fill("#steps", "8")


def test_mixing_clears_the_error_it_replaced(style_page, style_server):
    pg = style_page
    pg.evaluate("window.alae.a = window.alae.b = null")
    pg.click("#mix")
    _error_shown(pg, "fill both A and B first")
    pg.fill("#seed-a", "1")
    pg.fill("#seed-b", "2")
    pg.click("#seed-a-go")
    pg.click("#seed-b-go")
    pg.wait_for_function("window.alae.a && window.alae.b")
    _cleared(pg)  # A's and B's samples are successes begun after it
    with S.Gate("mix", error="mix refused by the test") as gate:  # a 400 from the server
        pg.click("#mix")
        assert gate.arrived.wait(30)
        gate.open()
        _error_shown(pg, "mix refused by the test")
    pg.evaluate("document.getElementById('mix-fine').removeAttribute('src')")
    pg.click("#mix")
    pg.wait_for_function("document.getElementById('mix-fine').src.startsWith('data:image/png')")
    _cleared(pg)
    _, want = S.post(style_server.url + "api/mix", {"wa": pg.evaluate("window.alae.a.w"),
                                                    "wb": pg.evaluate("window.alae.b.w")})
    assert _src(pg, "#mix-fine") == want["fine"] and _src(pg, "#mix-coarse") == want["coarse"]


def test_seeds_past_2_53_reach_the_server_exactly(page, server, digits_run):
    """A seed is read as the digits typed (a BigInt), not as a JavaScript number (exact to 2**53
    only), and sent as that JSON integer: 2**53 + 1 gives run.generate's picture of 2**53 + 1, not
    of 2**53. The range is the CLI's, [0, 2**63); "1e3" is still 1000, "1e20" is past the range."""
    import numpy as np
    import torch

    import alae_fast
    from alae_fast.inference.pictures import to_uint8

    url = server.url
    assert page.get_attribute("#seed", "title") == "an integer in [0, 2**63), as alae-fast generate --seed"
    # the page's reading of a seed's text: exact, whole, in range
    table = page.evaluate("""() => ["1e3", "12.0", "120e-1", "0e9", "-0", "1e18", "9007199254740993",
        "9223372036854775807", "9223372036854775808", "1e19", "1e20", "1.5", "-1", "", "e5", "1e999999999"]
        .map((t) => String(wholeSeed(t, BigInt(window.alae.info.seed_limit))))""")
    assert table == ["1000", "12", "12", "0", "0", "1000000000000000000", "9007199254740993", "9223372036854775807",
                     "null", "null", "null", "null", "null", "null", "null", "null"]
    sent: list = []

    def on_request(r):
        if r.url.endswith("/api/generate"):
            sent.append(r.post_data)

    page.on("request", on_request)
    try:
        big = 2 ** 53 + 1
        page.fill("#seed", str(big))
        page.evaluate("window.alae.generated = null")
        page.click("#generate")
        page.wait_for_function("window.alae.generated !== null")
        assert sent[-1] == '{"seed":9007199254740993,"psi":1,"noise_mode":"const"}', sent
        run = alae_fast.load(digits_run)
        with torch.no_grad():
            want = to_uint8(run.generate(1, seed=big, psi=1.0, noise="const"))[0, ..., 0]
            rounded = to_uint8(run.generate(1, seed=2 ** 53, psi=1.0, noise="const"))[0, ..., 0]
        shown = _pixels(_src(page, "#generated"))
        assert np.array_equal(shown, want) and not np.array_equal(shown, rounded)
        assert "seed 9007199254740993," in page.inner_text("#gen-settings")

        last = 2 ** 63 - 1  # the CLI's last seed
        page.fill("#seed", str(last))
        page.click("#generate")
        page.wait_for_function(f"document.getElementById('gen-settings').textContent.includes('seed {last},')")
        assert sent[-1] == f'{{"seed":{last},"psi":1,"noise_mode":"const"}}'
        assert _src(page, "#generated") == S.post(url + "api/generate", {"seed": last, "psi": 1.0})[1]["image"]

        page.fill("#seed-a", str(big))
        page.evaluate("window.alae.a = null")
        page.click("#seed-a-go")
        page.wait_for_function("window.alae.a !== null")
        assert page.evaluate("window.alae.a.w") == S.post(url + "api/generate", {"seed": big, "psi": 1.0})[1]["ws"]

        count = len(sent)
        for text in ("9223372036854775808", "1e19", "1e20", "-1", "0.5"):
            msg = _refused_on_page(page, "#seed", text, "#generate")
            assert msg == f'seed: expected an integer in [0, 2**63) (as alae-fast generate --seed), got "{text}"'
        assert len(sent) == count  # refused on the page: nothing sent
    finally:
        page.remove_listener("request", on_request)
        page.fill("#seed", "0")


def _encoded(page, tmp_path, digit: int, name: str):
    """Uploads a digit as ``name`` and waits until the page shows its encoding."""
    path = tmp_path / name
    path.write_bytes(S.digit_png(digit, (48, 48)))
    page.evaluate("window.alae.encoded = null")
    page.set_input_files("#file", str(path))
    page.wait_for_function("window.alae.encoded !== null")
    return path


def test_a_and_b_say_where_their_pictures_came_from(page, server, tmp_path):
    """The seed fields of A and B read 1 and 2 beside an edited upload and a sample of seed 3: a
    slot filled by "use as" now says where its picture came from, its seed field holds the
    sample's seed or nothing, and "from seed" says the seed and psi it drew with."""
    _encoded(page, tmp_path, 6, "six.png")
    page.click("#use-a")
    assert page.input_value("#seed-a") == "" and page.inner_text("#from-a") == "the edited picture above"
    page.fill("#seed", "3")
    page.evaluate("window.alae.generated = null")
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
    page.click("#gen-b")
    assert page.input_value("#seed-b") == "3"
    assert page.inner_text("#from-b") == "the sample of seed 3, ψ 1, without noise"
    _, api = S.post(server.url + "api/generate", {"seed": 3, "psi": 1.0})
    assert _src(page, "#slot-b") == api["plain"] and page.evaluate("window.alae.b.w") == api["ws"]
    page.fill("#seed-a", "5")
    page.evaluate("window.alae.a = null")
    page.click("#seed-a-go")
    page.wait_for_function("window.alae.a !== null")
    assert page.inner_text("#from-a") == "seed 5, ψ 1" and page.input_value("#seed-a") == "5"


def test_edit_this_sample_clears_the_upload_timings(page, server, tmp_path):
    # "encode and refine: 2337 ms server" stayed under a sample being edited
    _encoded(page, tmp_path, 2, "two.png")
    assert "ms server" in page.inner_text("#encode-ms")
    page.evaluate("window.alae.generated = null")
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
    page.click("#gen-edit")
    assert page.inner_text("#encode-ms") == "" and page.inner_text("#edit-ms") == ""
    assert page.inner_text("#mse") == "a generated sample, without noise (no reconstruction error)"


def test_a_request_sent_during_a_refinement_says_it_waits(page, server, tmp_path):
    """The server takes one request at a time and a refinement holds it for seconds: a generate
    clicked meanwhile said nothing for 5 s. Its status says it waits, until its answer replaces it;
    a request sent with no refinement running says nothing of the kind."""
    waiting = "waiting for the model: the server is refining an upload and takes one request at a time…"
    digit = tmp_path / "four.png"
    digit.write_bytes(S.digit_png(4, (48, 48)))
    try:
        page.fill("#refine-steps", "5")
        with S.Gate("encode_upload") as upload, S.Gate("generate") as gen:
            page.set_input_files("#file", str(digit))
            assert upload.arrived.wait(30)
            page.fill("#seed", "7")
            page.evaluate("window.alae.generated = null")
            page.click("#generate")
            assert gen.arrived.wait(30)
            assert page.inner_text("#generate-ms") == waiting
            gen.open()
            page.wait_for_function("window.alae.generated !== null")
            assert "ms server" in page.inner_text("#generate-ms")
            upload.open()
            page.wait_for_function("!document.getElementById('encode-card').classList.contains('busy')")
        assert page.evaluate("window.alae.refining") == 0
        with S.Gate("generate") as gen:
            page.evaluate("window.alae.generated = null")
            page.click("#generate")
            assert gen.arrived.wait(30)
            assert page.inner_text("#generate-ms") != waiting
            gen.open()
            page.wait_for_function("window.alae.generated !== null")
    finally:
        page.fill("#refine-steps", "0")


def test_an_upload_too_large_says_the_pictures_shown_are_the_previous_ones(page, server, tmp_path):
    _encoded(page, tmp_path, 1, "one.png")
    limit = page.evaluate("window.alae.info.max_upload_bytes")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * limit)
    page.set_input_files("#file", str(big))
    assert _error_shown(page, "big.png is ").endswith("(the pictures shown are still those of the previous image)")
    page.evaluate("document.getElementById('message').hidden = true")


@pytest.fixture(scope="module")
def pairs_server(digits_run, tmp_path_factory):
    """The digits run with the 45 digit-pair directions `alae-fast directions` writes into it
    (a copy: the module's run is served without them), served beside its 10 fitted classes."""
    import shutil

    from alae_fast.cli import main

    run = tmp_path_factory.mktemp("pairs") / "digits"
    shutil.copytree(digits_run, run)
    with one_thread():
        assert main(["directions", "--ckpt", str(run)]) == 0
        with S.ServerThread(run) as srv:
            yield srv


@pytest.fixture(scope="module")
def pairs_page(browser, pairs_server):
    yield from _opened(browser, pairs_server.url)


def test_class_and_pair_directions_are_grouped_on_the_page(pairs_page, pairs_server, tmp_path):
    """The 10 class directions first, in their own group; the 45 pairs A -> B folded under one
    heading that counts them and the moved ones; the page says what one unit of a slider is, and
    a unit moves w by 1 for a pair as for a class (the server scales both to unit length)."""
    import io

    import numpy as np

    pg, url = pairs_page, pairs_server.url
    dirs = S.get(url + "api/info")[1]["directions"]
    index = {d["name"]: i for i, d in enumerate(dirs)}
    groups_js = """() => Array.from(document.querySelectorAll('#sliders .group')).map((g) => [g.dataset.kind,
        g.tagName, Array.from(g.querySelectorAll('label')).map((l) => l.textContent)])"""
    pairs = [f"{a} → {b}" for a in range(10) for b in range(a + 1, 10)]
    classes = [f"digit {c}" for c in range(10)]
    assert pg.evaluate(groups_js) == [["class", "SECTION", classes], ["pair", "DETAILS", pairs]]
    head = pg.inner_text("#sliders details.group > summary")
    assert "Pairs A → B" in head and "(45)" in head and "moved" not in head
    assert "one unit moves w by a distance of 1 in W" in pg.inner_text("#slider-unit")
    assert pg.is_visible(f"#dir-{index['digit 3']}") and not pg.is_visible(f"#dir-{index['3-8']}")
    title = pg.get_attribute(f"label[for=dir-{index['3-8']}]", "title")
    assert f"length {dirs[index['3-8']]['norm']:.3g} as given, scaled to 1 here" in title, title

    digit = tmp_path / "digit.png"
    digit.write_bytes(S.digit_png(3, (48, 48)))
    pg.set_input_files("#file", str(digit))
    pg.wait_for_function("window.alae.current !== null")
    pg.click("#sliders details.group > summary")
    pair = f"#dir-{index['3-8']}"
    assert pg.is_visible(pair)
    own = float(pg.input_value(pair))
    edits = pg.evaluate("window.alae.edits")
    _set_range(pg, pair, own + 1.0)
    pg.wait_for_function(f"window.alae.edits > {edits}")
    assert "· 1 moved" in pg.inner_text("#sliders details.group > summary")
    sent = pg.evaluate("window.alae.lastEdit")
    # the amounts go in the server's order (the pairs came first, from the folder), not the page's
    assert sent["names"] == [d["name"] for d in dirs] and sent["amounts"][index["3-8"]] == pytest.approx(own + 1)
    status, api = S.post(url + "api/edit", sent)
    assert status == 200 and api["image"] == _src(pg, "#edited")
    step = np.asarray(api["w"]) - np.asarray(pg.evaluate("window.alae.current.w"))
    assert np.linalg.norm(step) == pytest.approx(1.0, abs=1e-4)  # one unit: a distance of 1 in W

    # a direction added rebuilds the sliders: it goes between the classes and the pairs, the
    # moved pair keeps its value and the pairs stay unfolded, as the user left them
    buf = io.BytesIO()
    np.save(buf, np.linspace(-1, 1, 8))
    pg.set_input_files("#direction-file", {"name": "thick.npy", "mimeType": "application/octet-stream",
                                           "buffer": buf.getvalue()})
    pg.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 56")
    assert [g[:2] + [g[2] if g[0] != "pair" else len(g[2])] for g in pg.evaluate(groups_js)] == [
        ["class", "SECTION", classes], ["attribute", "SECTION", ["thick"]], ["pair", "DETAILS", 45]]
    assert pg.evaluate("document.querySelector('#sliders details.group').open")
    assert float(pg.input_value(pair)) == pytest.approx(own + 1.0)
    assert "· 1 moved" in pg.inner_text("#sliders details.group > summary")
    pg.click("#reset")
    pg.wait_for_function("!document.querySelector('#sliders details.group > summary').textContent.includes('moved')")
    pg.click(f"#dir-{len(dirs)}-remove")
    pg.wait_for_function("document.querySelectorAll('#sliders input[type=range]').length === 55")



@pytest.fixture(scope="module")
def noisy_page(browser, tmp_path_factory):
    """The page of a freshly built StyleALAE (digits-32 cut to 16x16), whose G has noise inputs
    (the toy ALAE's and the MLP's have none), from a checkpoint written by hand: nothing trained."""
    import torch

    from alae_fast.inference.loading import CHECKPOINT_FORMAT, _official_schedule
    from alae_fast.models import build_model
    from alae_fast.models.presets import DIGITS_32

    cfg = DIGITS_32.replace(layer_count=3, start_features=4, max_features=8, latent_size=8, mapping_layers=2)
    schedule = _official_schedule(cfg)
    images = sum(schedule.images_at(lod) for lod in range(schedule.start_lod, schedule.max_lod + 1))
    path = tmp_path_factory.mktemp("noisy") / "style.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_config": cfg.to_dict(), "schedule": schedule.to_dict(),
                "setup": "test", "trainer": {"ema": {"module": build_model(cfg).state_dict()}, "images_seen": images}},
               path)
    with one_thread():
        with S.ServerThread(path) as srv:
            yield from _opened(browser, srv.url)


def test_a_model_without_noise_inputs_offers_no_noise_mode(page, noisy_page, tmp_path):
    """The digits MLP has no noise inputs (/api/info's noise_inputs: false): the page showed the
    noise select all the same, and said "noise const" of a sample no mode changes. A StyleALAE
    has noise inputs: the select is there, and the sample says its mode."""
    assert page.evaluate("window.alae.info.noise_inputs") is False
    assert page.locator("#noise-label").is_hidden() and page.locator("#noise").is_hidden()
    assert "noise mode" not in page.inner_text("footer")  # nor does the footer speak of one
    page.fill("#seed", "6")
    page.evaluate("window.alae.generated = null")
    page.click("#generate")
    page.wait_for_function("window.alae.generated !== null")
    said = page.inner_text("#gen-settings")
    assert said.startswith("seed 6,") and said.endswith(", no noise inputs") and "noise const" not in said, said

    pg = noisy_page
    assert pg.evaluate("window.alae.info.noise_inputs") is True
    assert pg.is_visible("#noise-label") and pg.is_visible("#noise")
    assert "(per its noise mode)" in pg.inner_text("footer")
    pg.select_option("#noise", "random")
    pg.fill("#seed", "6")
    pg.click("#generate")
    pg.wait_for_function("window.alae.generated")
    assert pg.inner_text("#gen-settings").endswith(", noise random")

def test_the_pair_cards_title_names_what_it_holds(page, style_page):
    # one style input: no mixing (the server answers /api/mix 400), so the title does not offer it
    assert page.inner_text("#pair-title") == "Two images: interpolation"
    assert page.locator("#mix-block").is_hidden()
    assert style_page.inner_text("#pair-title") == "Two images: style mixing and interpolation"
    assert style_page.is_visible("#mix-block")


def test_a_cutoff_generate_refuses_reads_as_a_refusal(style_page):
    """A cutoff of 0 read "on no style input (cutoff 0)", as if generate took it, while an empty
    one read "(cutoff: enter a whole number)": both, and every other cutoff generate refuses,
    now read as the refusal generate gives."""
    pg = style_page
    _set_range(pg, "#psi", 0.5)
    try:
        for text in ("", "0", "-1", "7", "1.5"):
            pg.fill("#cutoff", text)
            assert pg.inner_text("#trunc-scope") == "(cutoff: enter a whole number from 1 to 6)", text
            assert "cutoff: enter a whole number from 1 to 6" in _refused_on_page(pg, "#cutoff", text, "#generate")
        for text, scope in (("1", "on style 0 of 6"), ("3", "on styles 0-2 of 6 (the config's)"),
                            ("6", "on all 6 styles")):
            pg.fill("#cutoff", text)
            assert pg.inner_text("#trunc-scope") == scope, text
    finally:
        pg.evaluate("document.getElementById('message').hidden = true")
        pg.fill("#cutoff", "3")
