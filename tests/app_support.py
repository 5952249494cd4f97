"""Shared by the app tests: a small trained digits run, the toy StyleALAE run, digit PNG bytes,
a server started on a free loopback port, and a gate holding a model call while a test looks."""

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


def train_toy_style_run(out: Path, *extra: str) -> Path:
    """The toy StyleALAE (6 style inputs, 16x16, trained on the digits); ``extra``: more
    ``alae-fast train`` arguments, e.g. ``--set truncation_cutoff=3``."""
    from alae_fast.cli import main

    toy()
    assert main(["train", "--preset", "toy-pg", "--out", str(out), "--kimg", "0.048", "--no-eval", "--no-progress",
                 "--schedule", "lod_kimg=[0.016]", "--schedule", "lod_batch=[8]", *extra]) == 0
    return out


# The toy StyleALAE with the official truncation rule scaled to its 6 style inputs: psi 0.7 on
# inputs 0-2, so that a cutoff below the count is what the page and the CLI default to.
TRUNCATED = ("--set", "truncation_psi=0.7", "--set", "truncation_cutoff=3")
_RUNS: dict = {}


def truncated_toy_run(tmp_path_factory) -> Path:
    """:func:`train_toy_style_run` with :data:`TRUNCATED`, trained once per test process
    (both app test modules use it; this module is loaded once, see ``sibling``)."""
    if "truncated" not in _RUNS:
        _RUNS["truncated"] = train_toy_style_run(tmp_path_factory.mktemp("truncated") / "toy", *TRUNCATED)
    return _RUNS["truncated"]


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


def post(url: str, body, raw: bool = False, content_type: str = "application/octet-stream", timeout=60,
         method: str = "POST"):
    """POST JSON (or raw bytes; ``body`` None: no body) with urllib; returns (status, decoded
    JSON answer). ``method``: another one, e.g. DELETE."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
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


class Gate:
    """Holds every call of ``ModelService.<method>`` (in any server of this process) until
    :meth:`open`, so that a test sees what the page shows while a request runs. ``arrived`` is
    set by the first call, ``calls`` counts them; with ``error``, a released call raises
    ``UserError(error)`` (a 400) instead of answering. Use as a context manager: leaving it opens
    the gate and puts the method back."""

    def __init__(self, method: str, error: str | None = None, timeout: float = 60.0):
        self.method, self.error, self.timeout = method, error, timeout
        self.calls = 0
        self.arrived, self._open = threading.Event(), threading.Event()

    def open(self):
        self._open.set()

    def __enter__(self) -> "Gate":
        from alae_fast.app.service import ModelService
        from alae_fast.errors import UserError

        self._real = real = getattr(ModelService, self.method)
        gate = self

        def held(service, *args, **kw):
            gate.calls += 1
            gate.arrived.set()
            if not gate._open.wait(gate.timeout):
                raise RuntimeError(f"Gate({gate.method!r}) was never opened")
            if gate.error is not None:
                raise UserError(gate.error)
            return real(service, *args, **kw)

        setattr(ModelService, self.method, held)
        return self

    def __exit__(self, *exc):
        from alae_fast.app.service import ModelService

        self.open()
        setattr(ModelService, self.method, self._real)
