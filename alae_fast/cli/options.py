"""The options several image commands share: the refinement of E(x) (``--refine-steps``,
``--space``, ``--refine-lr``) and the seed of G's noise (``--seed`` with ``--noise-mode``)."""

from __future__ import annotations

import contextlib

from .._words import plural as _plural
from ..errors import UserError


def _check_noise_seed(args) -> None:
    """UserError when ``--seed`` (G's noise seed of reconstruct, interpolate, edit) is given with a
    noise mode that draws no noise: it would change nothing."""
    if args.seed is not None and args.noise_mode not in ("random", "batch"):
        raise UserError(f"--seed seeds G's noise, and noise mode {args.noise_mode or 'zero'} draws none; it goes "
                        f"with --noise-mode random or batch")


@contextlib.contextmanager
def _noise_seeded(seed: int | None, run):
    """torch's generators seeded with ``seed`` (None: 0) inside the block and restored after it:
    G's random noise is drawn from them, and an unseeded draw gave another picture each run."""
    import torch

    device = run.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0 if seed is None else seed)
        yield


def _noise_said(args) -> str:
    """The noise of a picture command's success line: '' when none was drawn (the default)."""
    if args.noise_mode not in ("random", "batch"):
        return ""
    return f" (noise {args.noise_mode}, seed {0 if args.seed is None else args.seed})"


def _refine_options(args) -> tuple[str, float]:
    """(space, lr) of ``--space`` and ``--refine-lr``, checked against ``--refine-steps``: without
    steps, ``--space w+`` and ``--refine-lr`` would change nothing, and are refused (``--space w``
    is what E(x) already is, and is taken, so a sweep over steps may keep it)."""
    from ..inference.projection import DEFAULT_REFINE_LR

    # the value's range is the parser's (arguments._refine_lr)
    if not args.refine_steps:
        if args.space == "w+":
            raise UserError("--space w+ applies only with --refine-steps N (N >= 1): without it the latents are "
                            "E(x), one w")
        if args.refine_lr is not None:
            raise UserError(f"--refine-lr {args.refine_lr:g} applies only with --refine-steps N (N >= 1)")
        if getattr(args, "refine_images", None) is not None:
            raise UserError(f"--refine-images {args.refine_images} applies only with --refine-steps N (N >= 1)")
    return args.space or "w", DEFAULT_REFINE_LR if args.refine_lr is None else args.refine_lr


@contextlib.contextmanager
def _refine_lr_named(lr: float):
    """A descent that reached NaN or infinity (``project_latents``' FloatingPointError) said as
    one line naming --refine-lr, not a traceback."""
    try:
        yield
    except FloatingPointError as e:
        raise UserError(f"--refine-lr {lr:g}: {str(e).removeprefix('project_latents: ')}") from e


def _say_refining(args, count: int, space: str, lr: float) -> None:
    """One line before a descent starts: 100000 steps are minutes of silence otherwise."""
    if args.refine_steps:
        print(f"refining E(x) of {_plural(count, 'image')} by {_plural(args.refine_steps, 'step')} of descent on "
              f"the pixel error in {space} (Adam, lr {lr:g})", flush=True)
