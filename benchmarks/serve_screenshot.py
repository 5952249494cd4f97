"""The README's picture of `alae-fast serve`, taken again on any digits run.

    python benchmarks/serve_screenshot.py --ckpt runs/digits-32 --out benchmarks/results/serve-digits32.png

Needs the ``[app]`` extra, Playwright (``pip install playwright``; no browser download) and a
Chromium binary (Debian's ``/usr/bin/chromium``, or ``--chromium PATH``). It writes the run's
digit-pair directions when the run has none (``alae-fast directions --ckpt RUN``), starts
``alae-fast serve --ckpt RUN`` on a free port, and drives the page in headless Chromium 1280
pixels wide as the README describes: it uploads held-out digit ``--index`` (46 of
``load_digits("test")``, a 0) at the model's resolution, moves the ``digit --to-class`` slider to
``--class-value`` (default: left at the image's own value) and the unfolded pair ``<class> →
<to-class>`` to ``--pair-value`` (default 2), generates seed 3,
fills A and B from seeds 1 and 2, mixes their styles (a StyleALAE's page) and interpolates 8 steps, then saves the whole page.
It prints the latencies the page shows, for the README's sentence on them.

Exit status 1, naming what was wrong, when the run is not a digits run, the page reports an
error, or the server does not start within a minute.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"alae-fast serve exited with status {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url + "api/info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"alae-fast serve did not answer {url} within {seconds:.0f} s")


def _digit_png(index: int, resolution: int, path: Path) -> int:
    import numpy as np
    from PIL import Image

    from alae_fast.data import load_digits

    images, labels = load_digits("test", resolution)
    if not 0 <= index < len(images):
        raise SystemExit(f"--index: expected 0..{len(images) - 1}; got {index}")
    pixels = ((images[index, 0].numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return int(labels[index])


# Moves the slider labelled `name` to `value` (null: its top) as a user's drag does (an input event).
_SET_SLIDER = """([name, value]) => {
  const label = [...document.querySelectorAll('#sliders label')].find((l) => l.textContent === name);
  if (!label) throw new Error('no slider labelled ' + name);
  const s = document.getElementById(label.htmlFor);
  s.value = value === null ? s.max : value;
  s.dispatchEvent(new Event('input'));
}"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", required=True, help="a digits run folder (or one of its checkpoints)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--index", type=int, default=46, help="held-out digit to upload (default 46, a 0)")
    ap.add_argument("--to-class", type=int, default=6, help="class slider pushed to its top (default 6)")
    ap.add_argument("--class-value", default="own",
                    help="where the class slider goes: own (default: left at the image's value), top or a number")
    ap.add_argument("--pair-value", type=float, default=2.0, help="where the pair slider goes (default 2.0)")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    args = ap.parse_args(argv)
    if not 0 <= args.to_class <= 9:
        ap.error(f"--to-class: expected a digit 0..9; got {args.to_class}")
    if args.class_value not in ("top", "own"):
        try:
            float(args.class_value)
        except ValueError:
            ap.error(f"--class-value: expected top, own or a number; got {args.class_value!r}")
    if not Path(args.chromium).is_file():
        ap.error(f"--chromium: no such file {args.chromium} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    import alae_fast

    run = Path(args.ckpt)
    loaded = alae_fast.load(run)
    channels, resolution = loaded.schedule.channels, loaded.schedule.resolution
    if channels != 1:
        raise SystemExit(f"--ckpt: expected a digits run (1 channel); {run} has {channels}")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        digit = Path(tmp) / "digit.png"
        label = _digit_png(args.index, resolution, digit)
        if label == args.to_class:
            raise SystemExit(f"--index {args.index} is already a {label}; choose another --to-class")
        run_dir = run if run.is_dir() else run.parent.parent
        if not (run_dir / "directions").is_dir():
            subprocess.run([sys.executable, "-m", "alae_fast", "directions", "--ckpt", str(run)], check=True)
        proc = subprocess.Popen([sys.executable, "-m", "alae_fast", "serve", "--ckpt", str(run),
                                 "--port", str(port)])
        try:
            _wait_up(url, proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url)
                page.wait_for_function("window.alae.info !== null")
                page.set_input_files("#file", str(digit))
                page.wait_for_function("document.getElementById('reconstruction').src.startsWith('data:image/png')")
                if args.class_value != "own":
                    edits = page.evaluate("window.alae.edits")
                    value = None if args.class_value == "top" else float(args.class_value)
                    page.evaluate(_SET_SLIDER, [f"digit {args.to_class}", value])
                    page.wait_for_function(f"window.alae.edits > {edits}")
                page.click("#sliders details[data-kind=pair] summary")
                a, b = sorted((label, args.to_class))
                edits = page.evaluate("window.alae.edits")
                page.evaluate(_SET_SLIDER, [f"{a} → {b}", args.pair_value if label < args.to_class else -args.pair_value])
                page.wait_for_function(f"window.alae.edits > {edits}")
                # the slider box scrolled to show the class slider and the pair slider both
                page.evaluate("""() => { const box = document.getElementById('sliders');
                  const first = [...box.querySelectorAll('label')].find((l) => l.textContent === 'digit 3');
                  box.scrollTop = first.offsetTop - box.offsetTop; }""")
                page.fill("#seed", "3")
                page.evaluate("window.alae.generated = null")
                page.click("#generate")
                page.wait_for_function("window.alae.generated !== null")
                page.fill("#seed-a", "1")
                page.fill("#seed-b", "2")
                page.evaluate("window.alae.a = window.alae.b = null")
                page.click("#seed-a-go")
                page.click("#seed-b-go")
                page.wait_for_function("window.alae.a && window.alae.b")
                if page.is_visible("#mix"):  # an MLP ALAE has one style input: nothing to mix
                    page.click("#mix")
                    page.wait_for_function("document.getElementById('mix-fine').src.startsWith('data:image/png')")
                page.fill("#steps", "8")
                page.click("#interpolate")
                page.wait_for_function("document.querySelectorAll('#strip img').length >= 8")
                page.wait_for_timeout(300)
                if page.is_visible("#message") and "message ok" not in (page.get_attribute("#message", "class") or ""):
                    raise SystemExit(f"the page reports an error: {page.inner_text('#message')}")
                page.screenshot(path=args.out, full_page=True)
                for field in ("encode-ms", "edit-ms", "generate-ms", "mix-ms", "interp-ms"):
                    if page.is_visible("#" + field):
                        print(f"{field}: {page.inner_text('#' + field)}")
                print(f"model: {page.inner_text('#model')}")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
