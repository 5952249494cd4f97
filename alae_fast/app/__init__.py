"""``alae-fast serve``: a local web page to play with a trained run (needs the ``[app]`` extra: FastAPI, uvicorn).

- :mod:`.editing` - attribute editing in W (the official ALAE demo's math) and direction fitting;
- :mod:`.uploads` - decoding an uploaded image safely (size and pixel limits, in memory);
- :mod:`.service` - the model work behind every endpoint, one call per picture, no web types;
- :mod:`.server` - the FastAPI app and :func:`~.server.serve`;
- ``static/`` - the page (plain HTML, CSS and JavaScript, no network access needed).

Importing this package imports neither FastAPI nor uvicorn; :mod:`.server` does.
"""

from .._lazy import lazy_submodules  # noqa: E402

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
