"""`alae-fast serve` on an official ALAE checkpoint (tests/data/official-alae/alae-small.pth), as a
user's trial found it: what loading warned of (a checkpoint saved while its training was still
growing) only in the terminal, a page that called the training weights of ``--no-ema`` "the EMA
model's", JSON sent without ``Content-Type: application/json`` refused as "not a valid
dictionary", a query parameter given twice silently taken as the last, and two argument errors
that contradicted themselves ("expected 12 rows ..., got 12 rows"; names "got list" for a list)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("PIL.Image")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from alae_fast.errors import UserError  # noqa: E402
from alae_fast_tests_support import one_thread, sibling  # noqa: E402

S = sibling("app_support.py")
OFFICIAL = Path(__file__).parent / "data" / "official-alae" / "alae-small.pth"
GROWING = "its levels above were not trained yet"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def official_server():
    with one_thread():
        with pytest.warns(RuntimeWarning, match=GROWING):  # still said in the terminal, as before
            srv = S.ServerThread(OFFICIAL).start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture(scope="module")
def official_service():
    from alae_fast.app.service import ModelService
    from alae_fast.inference.loading import load_run

    with pytest.warns(RuntimeWarning, match=GROWING):
        return ModelService(load_run(str(OFFICIAL)))


def test_the_page_says_what_loading_warned_of(official_server):
    # the official fixture was saved at lod 0 of 5: its pictures at 128x128 come from untrained levels,
    # which the terminal said and the page did not (its notes were empty)
    info = S.get(official_server.url + "api/info")[1]
    assert info["setup"] == "official" and info["kimg"] is None and info["checkpoint"] == "alae-small.pth"
    assert any(n.startswith("warning: ") and GROWING in n for n in info["notes"]), info["notes"]


def test_info_says_which_weights_draw_the_pictures(official_server, tmp_path):
    assert S.get(official_server.url + "api/info")[1]["ema"] is True
    with pytest.warns(RuntimeWarning, match=GROWING):
        srv = S.ServerThread(OFFICIAL, ema=False).start()
    try:
        assert S.get(srv.url + "api/info")[1]["ema"] is False
    finally:
        srv.stop()


def test_a_converted_no_ema_checkpoint_says_training_weights_too(tmp_path):
    from alae_fast.app.service import ModelService
    from alae_fast.inference.loading import convert_official, load_run

    with pytest.warns(RuntimeWarning, match=GROWING):
        out = convert_official(OFFICIAL, tmp_path / "conv.pt", ema=False)
    assert ModelService(load_run(str(out))).info()["ema"] is False


def test_json_sent_as_another_content_type_is_told_so(official_server):
    url = official_server.url + "api/generate"
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):  # the second: curl -d without -H
        status, answer = S.post(url, b'{"seed": 1}', raw=True, content_type=ctype)
        assert status == 422, answer
        assert f"Content-Type {ctype!r}, not JSON" in answer["error"], answer
        assert "valid dictionary" not in answer["error"]
    status, answer = S.post(url, b"", raw=True, content_type="application/json")
    assert status == 422 and answer["error"] == "bad request: the body is empty: expected a JSON object", answer
    status, answer = S.post(url, b"[1, 2]", raw=True, content_type="application/json")
    assert status == 422 and answer["error"] == "bad request: the body: expected a JSON object {...}, got an array"
    # a JSON body with the JSON type is read as before
    assert S.post(url, b'{"seed": 1}', raw=True, content_type="application/json")[0] == 200


def test_a_query_parameter_given_twice_is_refused(official_server):
    png = S.digit_png(3, (40, 40))
    status, answer = S.post(official_server.url + "api/encode?refine_steps=1&refine_steps=2", png, raw=True)
    assert status == 422 and "refine_steps: given 2 times; expected one value" in answer["error"], answer
    status, answer = S.post(official_server.url + "api/directions?name=a&name=b", None, method="DELETE")
    assert status == 422 and "name: given 2 times" in answer["error"], answer
    assert S.post(official_server.url + "api/encode?refine_steps=1", png, raw=True)[0] == 200


def test_styles_mixing_rows_and_numbers_say_so(official_service):
    svc = official_service
    n, size = svc.num_ws, svc.latent_size
    row = [0.1] * size
    with pytest.raises(UserError) as e:
        svc.values([row] + [0.1] * (n - 1))  # as many items as style inputs, the first one a row
    said = str(e.value)
    assert f"got {n} rows" not in said and "mixing rows and numbers (item 0 is a row, item 1 is not)" in said, said
    with pytest.raises(UserError, match=r"got 1 row$"):
        svc.values([row])
    with pytest.raises(UserError, match=r"got 2 rows$"):
        svc.values([row, row])
    assert len(svc.values([row] * n)) == 0  # no directions: no values, but the styles are taken


def test_names_that_are_not_strings_say_which(official_service):
    with pytest.raises(UserError, match=r"names: expected a list of direction names \(strings\), got 1 \(int\) at "
                                        r"index 0"):
        official_service.edit([0.1] * official_service.latent_size, [], [1])
    with pytest.raises(UserError, match=r"names: .* got str$"):
        official_service.edit([0.1] * official_service.latent_size, [], "abc")


# --- in a browser ---------------------------------------------------------------------------------

CHROMIUM = os.environ.get("ALAE_FAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
def test_the_page_names_an_official_checkpoint_and_its_weights(official_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium binary at {CHROMIUM}")
    with pytest.warns(RuntimeWarning, match=GROWING):
        no_ema = S.ServerThread(OFFICIAL, ema=False).start()
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                for srv, ema in ((official_server, True), (no_ema, False)):
                    pg = b.new_page(viewport={"width": 1280, "height": 900})
                    errors = []
                    pg.on("pageerror", lambda e: errors.append(str(e)))
                    pg.goto(srv.url)
                    pg.wait_for_function("window.alae && window.alae.info !== null")
                    model = pg.inner_text("#model")
                    assert model.startswith("official ALAE checkpoint (no alae_fast training run) · length of "
                                            "training not recorded · 128×128"), model
                    assert model.endswith("alae-small.pth" if ema else
                                          "alae-small.pth · training weights (--no-ema), not the EMA copy"), model
                    footer = pg.inner_text("footer")
                    assert ("Pictures are the EMA model's" in footer) == ema, footer
                    assert ("Pictures are the training weights' (--no-ema" in footer) == (not ema), footer
                    # the loading warning is on the page, not only in the terminal
                    pg.wait_for_selector("#message:not([hidden])")
                    assert GROWING in pg.inner_text("#message")
                    pg.close()
                    assert not errors, errors
            finally:
                b.close()
    finally:
        no_ema.stop()


@pytest.mark.browser
def test_a_drop_without_a_file_is_said(official_server):
    # a link or text dragged onto the drop zone did nothing: no upload, no message
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium binary at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            pg = b.new_page(viewport={"width": 1280, "height": 900})
            pg.goto(official_server.url)
            pg.wait_for_function("window.alae && window.alae.info !== null")
            pg.evaluate("document.getElementById('message').hidden = true")
            pg.evaluate("""() => { const dt = new DataTransfer(); dt.setData('text/uri-list', 'https://example.com/a.png');
                dt.setData('text/plain', 'https://example.com/a.png');
                document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                                   cancelable: true})); }""")
            pg.wait_for_selector("#message:not([hidden])", timeout=5000)
            assert pg.inner_text("#message").startswith("the drop held no file (a link or text?): drop an image file")
            assert pg.get_attribute("#message", "class") == "message"  # an error, not a notice
        finally:
            b.close()


def test_a_direction_with_nan_says_what_was_expected(official_server):
    import io

    import numpy as np

    latent = S.get(official_server.url + "api/info")[1]["latent_size"]
    vec = np.ones(latent)
    vec[[2, 5]] = np.nan, np.inf
    buf = io.BytesIO()
    np.save(buf, vec)
    status, answer = S.post(official_server.url + "api/directions?name=bad", buf.getvalue(), raw=True)
    assert status == 400 and answer["error"] == (f"direction 'bad': direction holds NaN or infinity (2 of its {latent} "
                                                 f"values); expected finite numbers"), answer
