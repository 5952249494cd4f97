"""alae_fast: fused StyleGAN-family ops and the Adversarial Latent Autoencoder.

``alae_fast.ops`` holds the ops (compiled CPU/CUDA kernels behind ``torch.ops.alae_fast``,
each with a pure-PyTorch ``*_ref``), ``alae_fast.nn`` the layers built on them,
``alae_fast.models`` the ALAE models, ``alae_fast.training``, ``alae_fast.data`` and
``alae_fast.eval`` the rest; every subpackage is reachable as an attribute after
``import alae_fast`` (the heavier ones are imported on first use).

:func:`load` opens a trained run for use::

    import alae_fast
    run = alae_fast.load("runs/digits-32")      # or one checkpoints/ckpt-*.pt file
    w = run.encode(x)                           # x: [N, C, R, R], pixels in [-1, 1]
    x_rec = run.decode(w)                       # no noise: the same w gives the same image
"""

from __future__ import annotations

import os

from ._omp import choose_wait

choose_wait()  # before torch loads libgomp: see alae_fast/_omp.py

from ._lazy import lazy_submodules  # noqa: E402
from ._lib import build_info, load_error  # noqa: E402
from . import ops, nn  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_info", "load_error", "load", "ops", "nn", "models", "training", "inference", "data", "eval", "compat",
           "edit", "errors", "__version__"]

# subpackages on first use: `import alae_fast` stays as cheap as the ops it always needs
__getattr__, __dir__ = lazy_submodules(__name__, __path__)


def load(run_or_checkpoint: str | os.PathLike, device="cpu", *, config=None, ema: bool = True,
         noise_mode: str = "zero"):
    """Open a trained run for use: a run folder (its newest loadable checkpoint), one
    ``ckpt-*.pt`` file, or a checkpoint of the official ALAE code. The same function as
    :func:`alae_fast.inference.load_run`, with the same keyword arguments (``config`` and
    ``ema`` for official checkpoints, ``noise_mode`` for ``decode``).

    Returns a :class:`~alae_fast.inference.LoadedRun`: ``.model`` is the EMA model (the
    one ALAE uses for all outputs) in eval mode with gradients off, on ``device``;
    ``.encode(x)``, ``.decode(w)``, ``.reconstruct(x)`` and ``.generate(n, seed, psi)`` run it at
    the level of detail the run reached (``.phase.resolution`` pixels; ``encode`` and
    ``reconstruct`` also take full-resolution images). Images are float ``[N, C, R, R]`` with
    pixels in [-1, 1]; ``decode`` defaults to no noise, so results repeat exactly. ``.config``,
    ``.schedule``, ``.setup`` and ``.images_seen`` describe the run.

    Raises as ``load_run``: TypeError for a path that is not a str or os.PathLike,
    FileNotFoundError when there is no checkpoint and :class:`~alae_fast.errors.UserError` (a
    ValueError) when the file is not a readable checkpoint or its contents disagree.
    """
    from .inference.loading import load_run

    return load_run(run_or_checkpoint, device, config=config, ema=ema, noise_mode=noise_mode)
