"""benchmarks/serve_screenshot.py: the README's picture of the serve page, taken in headless Chromium.

Marked `browser`; skipped without playwright, the [app] extra or a chromium binary (.ci/run's
stage 1b has all three)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from alae_fast_tests_support import benchmark_script, sibling

pytestmark = pytest.mark.browser
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("ALAE_FAST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium binary at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

S = sibling("app_support.py")


@pytest.fixture(scope="module")
def script():
    return benchmark_script("serve_screenshot.py")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return S.train_digits_run(tmp_path_factory.mktemp("screenshot") / "digits")


def test_the_page_is_driven_and_saved_whole(script, digits_run, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "serve.png"
    assert script.main(["--ckpt", str(digits_run), "--out", str(out), "--chromium", CHROMIUM]) == 0
    printed = capsys.readouterr().out
    # an MLP ALAE's page has no style mixing
    for field in ("encode-ms", "edit-ms", "generate-ms", "interp-ms"):
        assert f"{field}: " in printed and "ms server" in printed.split(f"{field}: ")[1].splitlines()[0]
    assert "digits-mlp" in printed and "mix-ms" not in printed
    # the pair directions were written for the run, as the README's command line does first
    assert len(list((digits_run / "directions").glob("direction_*.npy"))) == 45
    with Image.open(out) as im:
        # the whole page, not the viewport: the interpolation strip lies below 900 pixels
        assert im.width == 1280 and im.height > 900


@pytest.mark.parametrize("argv, says", [
    (["--to-class", "10"], "--to-class: expected a digit 0..9; got 10"),
    (["--class-value", "high"], "--class-value: expected top, own or a number; got 'high'"),
    (["--chromium", "/nonexistent/chromium"], "--chromium: no such file /nonexistent/chromium"),
])
def test_bad_arguments_are_refused_by_name(script, digits_run, tmp_path, capsys, argv, says):
    with pytest.raises(SystemExit) as e:
        script.main(["--ckpt", str(digits_run), "--out", str(tmp_path / "x.png"), *argv])
    assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv, says", [
    (["--index", "297"], "--index: expected 0..296; got 297"),
    (["--to-class", "0"], "--index 46 is already a 0; choose another --to-class"),
])
def test_a_digit_that_cannot_be_edited_so_is_refused(script, digits_run, tmp_path, argv, says):
    with pytest.raises(SystemExit, match=says):
        script.main(["--ckpt", str(digits_run), "--out", str(tmp_path / "x.png"), "--chromium", CHROMIUM, *argv])
    assert not (tmp_path / "x.png").exists()
