"""Shared by the app tests: a small trained digits run, the toy StyleALAE run, digit PNG bytes,
and a server started on a free loopback port."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from alae_fast_tests_support import TINY, one_thread, toy


def train_digits_run(out: Path, kimg: str = "0.064") -> Path:
    from alae_fast.cli import main

    with one_thread():
        assert main(["train", "--preset", "digits-mlp", "--out", str(out), "--kimg", kimg, *TINY, "--no-eval"]) == 0
    return out


def train_toy_style_run(out: Path) -> Path:
    from alae_fast.cli import main

    toy()
    assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.048", "--no-eval", "--no-progress",
                 "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]"]) == 0
    return out


def digit_png(index: int = 0, size: tuple[int, int] = (40, 40), fmt: str = "PNG") -> bytes:
    from alae_fast.data import load_digits

    x, _ = load_digits("test", 32)
    img = Image.fromarray(((x[index, 0].numpy() + 1) * 127.5).round().astype(np.uint8)).resize(size)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


class ServerThread:
    """``alae_fast.app.server.serve`` in a thread on a free loopback port; ``url`` once ready."""

    def __init__(self, ckpt, **kw):
        self.url = self._stop = self.error = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(str(ckpt), kw), daemon=True)

    def _run(self, ckpt, kw):
        def ready(url, stop):
            self.url, self._stop = url, stop
            self._ready.set()

        try:
            from alae_fast.app import server

            server.serve(ckpt, port=0, ready=ready, **kw)
        except BaseException as e:  # re-raised by start()
            self.error = e
            self._ready.set()

    def start(self, timeout: float = 120.0) -> "ServerThread":
        self.thread.start()
        assert self._ready.wait(timeout), "the server did not start"
        if self.error:
            raise self.error
        return self

    def stop(self):
        if self._stop:
            self._stop()
        self.thread.join(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def post(url: str, body, raw: bool = False, content_type: str = "application/octet-stream", timeout=60):
    """POST JSON (or raw bytes) with urllib; returns (status, decoded JSON answer)."""
    import json
    import urllib.error
    import urllib.request

    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": content_type if raw else "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(url: str, timeout=60):
    import json
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        ctype = r.headers.get("content-type", "")
        return r.status, (json.loads(body) if "json" in ctype else body.decode())
