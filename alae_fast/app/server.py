"""The web app of ``alae-fast serve``: FastAPI routes over :class:`~.service.ModelService`, run by uvicorn.

Routes (every answer JSON except the page; pictures travel as ``data:image/png;base64`` URLs):

- ``GET /`` the page, ``GET /static/*`` its script and style (from the package, never a path
  named by a request: StaticFiles refuses anything outside that folder);
- ``GET /api/info`` ``api_version`` (``service.API_VERSION``, 2: raised when a route's numbers
  change meaning), model and directions (each: name, slider limits ``lo``/``hi``, ``source``,
  ``removable``, ``kind``: class / pair / attribute, ``norm``: its length as given; every
  direction is used scaled to unit length, so values and amounts are components of w - w_avg),
  ``noise_inputs`` (false for an MLP ALAE, whose G takes no noise: every ``noise_mode`` gives the
  same picture), ``ema`` (false for an official checkpoint opened with ``--no-ema``: its training
  weights draw the pictures), ``notes`` (what the server says at start, what loading warned of
  included: an official checkpoint saved while its training was still growing);
- ``POST /api/encode?refine_steps=N`` body = the image's bytes -> w, original, reconstruction,
  error, values, ``refine_steps``; N (optional, default 0: w = E(x), ALAE's own) an integer in
  [0, ``service.MAX_PAGE_REFINE_STEPS``] = [0, 1000]: w is E(x) refined by N steps of descent on
  G's pixel error (``LoadedRun.project`` in W); anything else (not an integer, out of range):
  400 naming it and the range. The body is told by its first bytes, never a file name
  (:func:`.uploads.signature_format`): 415 when they match no supported format's signature
  (PNG, JPEG, GIF, BMP, WebP; a text file, a PDF, a TIFF), 400 "could not be decoded (truncated
  or corrupt JPEG?)" naming the format when they match one but the file cannot be read, its
  header or its pixels (cut short or damaged), 400 for an empty body, 413 past the upload or
  pixel limit (:mod:`.uploads`);
- ``POST /api/values`` ``{w}`` -> the attribute value of w along each direction;
- ``POST /api/edit`` ``{w, amounts, names?}`` -> the edited picture, its styles ``ws`` (style
  inputs from 16 on keep w, as the official demo) and ``w`` (style input 0); ``names``, the
  directions the amounts are for, gets 409 when they are no longer the server's;
- ``POST /api/generate`` ``{seed, psi?, noise_mode?, cutoff?}`` (seed: a JSON integer in [0, 2**63),
  ``alae_fast.inference.sampling.SEED_LIMIT``, as ``alae-fast generate --seed``) -> the sample, ``plain`` (without
  noise), its styles ``ws``, ``w`` (style input 0), the ``psi`` and ``cutoff`` used: psi on style
  inputs [0, cutoff), both by default the config's, as ``alae-fast generate`` (cutoff: an int in
  [1, num_ws], else 400/422 naming it; 400 with psi 1, where it would change nothing, as the CLI);
- ``POST /api/mix`` ``{wa, wb}``; ``POST /api/interpolate`` ``{wa, wb, steps}`` (wa, wb, and the
  w of edit and values: one w, or styles ``ws`` as edit and generate answer them);
- ``POST /api/directions?name=N`` body = a .npy file: adds a direction for this server's life;
  N (default "uploaded") 1 to 60 printable characters, else 400 naming it (never trimmed);
  ``DELETE /api/directions?name=N`` removes an uploaded one (404 for an unknown name, 409 for
  one the server started with).

Each answer carries ``ms``, the server's time for the model work. Bad input gets a 4xx (400,
404, 409, 413, 415 for an upload in no supported format, 422; 403 for a foreign host or origin,
405 for a wrong method) or a 503 with ``Retry-After``, and ``{"error": message}``, which the page
shows; the server keeps serving. A query parameter that a POST or DELETE route does not take
(``name`` and ``refine_steps`` are the only ones) gets 422 naming it, never the default's answer. Model work runs in worker threads (FastAPI runs ``def``
routes in its thread pool), so a slow decode never blocks the event loop: the page, ``/api/info``
and uploads keep answering meanwhile. Uploads are read into memory up to the limit (never written
to disk) and refused past it, as is one that would take the bodies held at once past a few
uploads' worth (503); a few decode at a time (503 with ``Retry-After`` when none can start soon:
:mod:`.uploads`). Every other request body (the JSON ones) is read the same way, up to
:data:`MAX_JSON_BYTES`, before its route parses it (:class:`_BodyLimit`): a declared
Content-Length or a chunked body, reading stops at the limit with 413. Numbers in the JSON bodies
are strict, as the CLI and the Python API take them: a string ("0.5") or a boolean where a number
goes gets 422 naming the field. A JSON body sent with another Content-Type than JSON (curl's ``-d``
without ``-H 'Content-Type: application/json'``), an empty one or one that is no JSON object gets 422
saying which.
"""

from __future__ import annotations

import base64
import errno
import re
import socket
import sys
import time
import warnings
from contextlib import asynccontextmanager
from importlib import resources
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt
from starlette.concurrency import run_in_threadpool

from ..errors import UserError
from .service import ModelService
from .uploads import BodyBudget, UploadError, check_upload_limit, size_text, too_large

__all__ = ["create_app", "serve", "check_port"]


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class _Request(BaseModel):
    # a field the endpoint does not know (a typo: "psy", "noisemode") is refused with 422 naming
    # it, not ignored: an ignored field would silently give the default's picture
    model_config = ConfigDict(extra="forbid")


class EditRequest(_Request):
    w: list
    amounts: list
    names: list | None = None


class ValuesRequest(_Request):
    w: list


# Numbers are strict (StrictInt, StrictFloat): JSON true is not seed 1 nor "0.5" psi 0.5, as
# neither is for `alae-fast generate` or run.generate; a JSON int is a valid StrictFloat (psi 1).
class GenerateRequest(_Request):
    # a JSON integer of any size, read exactly (Python's json: 9007199254740993 stays itself, where a
    # JavaScript number would round it); its range, [0, SEED_LIMIT) as the CLI's, is ModelService's check
    # (400), a fraction or 1e20 (a JSON float) is not an integer (422)
    seed: StrictInt
    psi: StrictFloat | None = None  # None: the config's, as the CLI without --psi
    noise_mode: str = "const"
    cutoff: StrictInt | None = None


class PairRequest(_Request):
    wa: list
    wb: list
    steps: StrictInt = 8


MAX_DIRECTION_NAME = 60


def check_direction_name(name: str) -> None:
    """UserError (400) unless ``name`` is 1 to :data:`MAX_DIRECTION_NAME` printable characters
    (``str.isprintable``: no control, format or line-break characters; the page shows it as a
    slider's label). Refused, never trimmed: a trimmed name would silently differ from the one
    sent, and a DELETE naming the sent one would then miss."""
    if not name or len(name) > MAX_DIRECTION_NAME or not name.isprintable():
        bad = next((f"character {ch!r} at {i}" for i, ch in enumerate(name) if not ch.isprintable()), None)
        got = bad or (f"{len(name)} characters" if name else "an empty name")
        raise UserError(f"name: expected 1 to {MAX_DIRECTION_NAME} printable characters, got {got}")


def _query(*known: str):
    """A route dependency refusing (422, "name: unknown field") any query parameter not in ``known``:
    a misspelt one ("refine-steps", "?seed=5" beside a JSON body) would otherwise be ignored and
    the default's answer given, as an unknown JSON field would (:class:`_Request`); and one given
    more than once (422 "name: given 2 times; expected one value"), of which the route would
    silently take the last."""
    def check(request: Request) -> None:
        unknown = [k for k in request.query_params if k not in known]
        if unknown:
            raise RequestValidationError([{"type": "extra_forbidden", "loc": ("query", k), "msg": "unknown field"}
                                          for k in unknown])
        # "?refine_steps=1&refine_steps=2": the route would silently take the last one
        keys = [k for k, _ in request.query_params.multi_items()]
        repeated = [k for k in dict.fromkeys(keys) if keys.count(k) > 1]
        if repeated:
            raise RequestValidationError([{"type": "repeated", "loc": ("query", k),
                                           "msg": f"given {keys.count(k)} times; expected one value"}
                                          for k in repeated])
    return [Depends(check)]


@asynccontextmanager
async def _read_body(request: Request, limit: int, budget: BodyBudget):
    """The request body (for the ``async with`` block), refused with 413 as soon as it passes
    ``limit`` bytes, and with 503 when the bodies held at once would pass ``budget``, whose bytes
    it holds until the block ends."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(too_large("the upload", int(declared), limit), 413)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            if size + len(chunk) > limit:
                raise UploadError(f"the upload is larger than the limit of {size_text(limit)}", 413)
            budget.take(len(chunk))
            size += len(chunk)
            chunks.append(chunk)
        yield b"".join(chunks)
    finally:
        budget.give(size)


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

# The largest JSON body a route reads (:class:`_BodyLimit` reads it before the framework parses it
# whole): the biggest legitimate one, a 1024² model's styles [18][512] as text, is about 200 kB.
MAX_JSON_BYTES = 1 << 20
MAX_DIRECTION_BYTES = 1 << 20  # a direction's .npy: [latent] float64 is 4 kB at 512
# raw uploads, read by their routes with limits of their own (_read_body)
_UPLOAD_ROUTES = (("POST", "/api/encode"), ("POST", "/api/directions"))


class _BodyLimit:
    """ASGI middleware: the body of every request but a GET, a HEAD or a raw upload
    (:data:`_UPLOAD_ROUTES`, which read theirs with :func:`_read_body`) is read here before the
    route sees it, whatever its framing: 413 before any byte is read for a declared
    Content-Length past :data:`MAX_JSON_BYTES`, and as soon as the bytes read pass it for a
    chunked body (the rest is never read: the server drops it); 503 with ``Retry-After`` when the
    bodies held at once would pass ``budget`` (the uploads' :class:`~.uploads.BodyBudget`, whose
    bytes are held until the answer is sent). The route then reads the bytes held here.

    A middleware, not a check in each route: FastAPI reads a JSON body whole before any code of
    the route runs, so a check there would come after the memory is spent. GET and HEAD are
    left alone: no route reads their body, and an unread one is dropped by the server."""

    def __init__(self, app, budget: BodyBudget, limit: int = MAX_JSON_BYTES):
        self.app, self.budget, self.limit = app, budget, limit

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope["method"] in ("GET", "HEAD")
                or (scope["method"], scope["path"]) in _UPLOAD_ROUTES):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send, too_large("the request body", int(declared), self.limit)
                                      + " for a JSON request of this page", 413)
        chunks, size = [], 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":  # the client went away: the server drops this
                    # answer, but the middleware around (BaseHTTPMiddleware) must get one
                    return await self._refuse(scope, receive, send, "the client disconnected before its request "
                                              "body ended", 400)
                chunk = message.get("body", b"")
                if size + len(chunk) > self.limit:
                    return await self._refuse(scope, receive, send, f"the request body is larger than "
                                              f"{size_text(self.limit)}, the limit of a JSON request of this page",
                                              413)
                try:
                    self.budget.take(len(chunk))
                except UploadError as e:
                    return await self._refuse(scope, receive, send, str(e), e.status, e.retry_after)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body, sent = b"".join(chunks), False
            del chunks

            async def replay():
                nonlocal sent
                if sent:  # after the body: what the server says next (a disconnect)
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.budget.give(size)

    @staticmethod
    async def _refuse(scope, receive, send, message: str, status: int, retry_after: int | None = None):
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)


def _host_name(host_header: str) -> str:
    """The name of a Host header or URL netloc without its port ('[::1]:80' -> '::1')."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def create_app(service: ModelService, loopback_only: bool = True) -> FastAPI:
    """The FastAPI app serving ``service`` (see the module docstring).

    Requests from other web sites are refused with 403: a POST whose ``Origin`` is not this
    server (a page elsewhere posting to the local model), and, with ``loopback_only`` (the
    server bound to 127.0.0.1/::1, the default), any request whose ``Host`` is not a loopback
    name (DNS rebinding: a foreign name resolved to 127.0.0.1 to read the answers)."""
    app = FastAPI(title="alae_fast", docs_url=None, redoc_url=None, openapi_url=None)
    from . import uploads

    bodies = app.state.bodies = BodyBudget(uploads.BODY_BUDGET_UPLOADS * max(service.max_upload_bytes,
                                                                            MAX_DIRECTION_BYTES, MAX_JSON_BYTES))
    static = resources.files("alae_fast.app") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # added first, so it runs inside _same_site_only: a foreign request is refused before any of
    # its body is read
    app.add_middleware(_BodyLimit, budget=bodies)

    @app.middleware("http")
    async def _same_site_only(request: Request, call_next):
        host = request.headers.get("host", "")
        if loopback_only and _host_name(host) not in _LOOPBACK_NAMES:
            return JSONResponse({"error": f"host {host!r} refused: this server answers to 127.0.0.1 or "
                                          f"localhost only"}, status_code=403)
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin is not None and urlsplit(origin).netloc != host:
            return JSONResponse({"error": f"cross-site request from {origin!r} refused"}, status_code=403)
        return await call_next(request)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)  # 404, 405: the page reads "error" as from every route
    async def _http_error(request, exc: StarletteHTTPException):
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(UserError)
    async def _user_error(_request, exc: UserError):
        retry = getattr(exc, "retry_after", None)
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400),
                            headers={"Retry-After": str(retry)} if retry is not None else None)

    @app.exception_handler(ValueError)  # the library's argument errors: bad input, not a crash
    async def _value_error(_request, exc: ValueError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        def part(e) -> str:
            where = ".".join(str(p) for p in e.get("loc", ())[1:]) or "body"
            if e.get("type") == "json_invalid":  # its location is a byte offset, which says nothing here
                return f"the body is not JSON ({e.get('ctx', {}).get('error', e.get('msg'))})"
            if tuple(e.get("loc", ())) == ("body",):  # the body as a whole, not one of its fields
                got = e.get("input")
                if e.get("type") == "missing":
                    return "the body is empty: expected a JSON object"
                if isinstance(got, (bytes, bytearray)):  # FastAPI parses JSON only when the type says JSON
                    ctype = request.headers.get("content-type", "")
                    return (f"the body was sent as Content-Type {ctype!r}, not JSON: send the JSON object with "
                            f"Content-Type: application/json (curl: -H 'Content-Type: application/json')")
                kind = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number",
                        type(None): "null"}.get(type(got), type(got).__name__)
                return f"the body: expected a JSON object {{...}}, got {kind}"
            if e.get("type") == "extra_forbidden":
                return f"{where}: unknown field"
            return f"{where}: {e.get('msg')}"

        parts = [part(e) for e in exc.errors()]
        return JSONResponse({"error": "bad request: " + "; ".join(parts)}, status_code=422)

    def timed(fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        return out, round((time.perf_counter() - t) * 1000.0, 1)

    @app.get("/")
    def index():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/api/info")
    def info():
        return service.info()

    @app.post("/api/encode", dependencies=_query("refine_steps"))
    async def encode(request: Request, refine_steps: str = "0"):
        # a query parameter, not a JSON field: the body is the image's own bytes. Its text is read
        # here (decimal digits, an optional sign) and ModelService refuses what is no integer in
        # its range with one message saying the range (400), for "1.5" as for "-1"
        text = refine_steps.strip()
        # fullmatch, not lstrip + isdigit: "+-5" passed that test and int() then raised (a 500)
        refine_steps = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else refine_steps
        async with _read_body(request, service.max_upload_bytes, bodies) as data:
            r, ms = await run_in_threadpool(timed, service.encode_upload, data, refine_steps)
        return {"w": r["w"], "original": _data_url(r["original"]), "reconstruction": _data_url(r["reconstruction"]),
                "mse": r["mse"], "values": r["values"], "notice": r["notice"], "refine_steps": r["refine_steps"],
                "ms": ms}

    @app.post("/api/edit", dependencies=_query())
    def edit(req: EditRequest):
        r, ms = timed(service.edit, req.w, req.amounts, req.names)
        return {"image": _data_url(r["image"]), "ws": r["ws"], "w": r["w"], "ms": ms}

    @app.post("/api/values", dependencies=_query())
    def values(req: ValuesRequest):
        return {"values": service.values(req.w)}

    @app.post("/api/generate", dependencies=_query())
    def generate(req: GenerateRequest):
        r, ms = timed(service.generate, req.seed, req.psi, req.noise_mode, req.cutoff)
        return {"image": _data_url(r["image"]), "plain": _data_url(r["plain"]), "w": r["w"], "ws": r["ws"],
                "psi": r["psi"], "cutoff": r["cutoff"], "values": service.values(r["w"]), "ms": ms}

    @app.post("/api/mix", dependencies=_query())
    def mix(req: PairRequest):
        r, ms = timed(service.mix, req.wa, req.wb)
        return {**{k: _data_url(v) for k, v in r.items()}, "ms": ms}

    @app.post("/api/interpolate", dependencies=_query())
    def interpolate(req: PairRequest):
        r, ms = timed(service.interpolate, req.wa, req.wb, req.steps)
        return {"images": [_data_url(p) for p in r], "ms": ms}

    @app.post("/api/directions", dependencies=_query("name"))
    async def add_direction(request: Request, name: str = "uploaded"):
        from ..edit.directions import parse_direction

        check_direction_name(name)
        async with _read_body(request, MAX_DIRECTION_BYTES, bodies) as data:
            # scaled: the page scales it to unit length, so its own length does not matter
            vec = parse_direction(data, service.latent_size, f"direction {name!r}", scaled=True)
        d = await run_in_threadpool(service.add_direction, name, vec, "uploaded from the page", None, True)
        return {"name": d.name, "directions": service.info()["directions"]}

    @app.delete("/api/directions", dependencies=_query("name"))
    def remove_direction(name: str):
        d = service.remove_direction(name)
        return {"name": d.name, "directions": service.info()["directions"]}

    return app


def check_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (listening), or UserError in one line when the port is taken
    or the address is not this machine's. Handing the bound socket to uvicorn leaves no gap
    for another program to take the port between the check and the start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use (another server?); choose another with --port") from e
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e})") from e
    except OverflowError as e:
        sock.close()
        raise UserError(f"--port: expected 0-65535, got {port}") from e
    return sock


def serve(ckpt: str, directions: str | None = None, host: str = "127.0.0.1", port: int = 7860,
          device: str = "cpu", max_upload_mb: float = 8.0, ready=None, *, config=None, ema: bool = True) -> int:
    """Load ``ckpt`` (``config``, ``ema``: as :func:`~alae_fast.inference.loading.load_run`, for an
    official checkpoint), bind ``host:port`` (127.0.0.1 by default: this machine only), say where and
    serve until interrupted; what loading warns of is printed as before and also shown on the page
    (``notes`` of ``/api/info``). ``ready(url, stop)`` is called once the server accepts connections;
    ``stop()`` ends it (for running it in a thread). ``max_upload_mb``: the largest upload in MiB,
    within [1/16, 1024] (64 KiB to 1 GiB, :data:`~.uploads.UPLOAD_LIMIT_RANGE`); ValueError naming
    it otherwise, before anything loads. Returns 0; a taken port, a bad checkpoint or direction
    file raise :class:`~alae_fast.errors.UserError`."""
    import uvicorn

    from ..edit.commands import saved_directions_folder
    from ..inference.loading import load_run

    max_upload_bytes = check_upload_limit(max_upload_mb, "max_upload_mb")
    # what loading warns of (an official checkpoint saved while its training was still growing: its
    # upper levels untrained) is said on the page too, not only in this terminal
    with warnings.catch_warnings(record=True) as said:
        run = load_run(ckpt, device, config=config, ema=ema)
    for w in said:  # the terminal's line, as before (the CLI's one-line form)
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    sock = check_port(host, port)  # before the slow part, so a taken port fails at once
    if directions is None and (saved := saved_directions_folder(run)) is not None:
        directions = saved
        # which checkpoint they were fitted on (or that it is not known) is the service's note, below
        print(f"directions from {saved}, the run's own directions/ folder (--directions DIR for another folder)",
              flush=True)
    try:
        service = ModelService.open(run, directions, max_upload_bytes=max_upload_bytes)
        app = create_app(service, loopback_only=host in _LOOPBACK_NAMES)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        for note in service.notes:
            print(note, flush=True)
        service.notes[:0] = [f"warning: {w.message}" for w in said]  # said on stderr above
        scope = ("this machine only" if host in ("127.0.0.1", "localhost", "::1")
                 else "REACHABLE FROM OTHER MACHINES on the network")
        print(f"serving {run.path} ({run.setup}, {run.phase.resolution}x{run.phase.resolution}, "
              f"{len(service.directions)} directions) at {url} - bound to {host}, {scope}; Ctrl+C stops",
              flush=True)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        if ready is not None:
            import threading

            def _wait():
                while not server.started and not server.should_exit:
                    time.sleep(0.02)
                if server.started:
                    ready(url, lambda: setattr(server, "should_exit", True))

            threading.Thread(target=_wait, daemon=True).start()
        server.run(sockets=[sock])
    finally:
        sock.close()
    print("server stopped", file=sys.stderr)
    return 0
