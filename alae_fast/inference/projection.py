"""Encoder-initialised projection: E(x) refined by gradient descent on G's pixel error.

ALAE's reconstruction is G(E(x)). Step 3 trains E only on G's own images, so on real images E
inverts G loosely, and after a short run the loose inverse, not G, is what limits the
reconstructions: on ``photos-32``'s held-out tiles G(E(x)) scored MSE 0.159 while a w found by
100 steps of descent from E(x) scored 0.028 (``benchmarks/results/photos-experiments.md``).
:func:`project_latents` takes E(x) as the start and minimises ``mean((G(w) − x)²)`` over w, as
StyleGAN2's projector does over W (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", Appendix D) and Image2StyleGAN over W+ (Abdal et al. 2019), starting from
the encoder as In-Domain GAN Inversion does (Zhu et al. 2020). Nothing of it is in the ALAE paper
or the official code; ``alae-fast`` applies it only when asked (``--refine-steps``), and reports
it beside, never instead of, ALAE's own G(E(x)).

The arithmetic (what a caller may reproduce): Adam (betas 0.9, 0.999, eps 1e-8) on w alone, the
learning rate ``lr · ½(1 + cos(π t / steps))`` at step t = 0 … steps − 1, the loss the sum over
images of each image's mean squared pixel error, so every image follows its own path: an image's
result does not depend on the others in its batch (up to float rounding). Each image keeps the
iterate of lowest error seen (E(x) and the steps + 1 iterates after it). The networks' weights
get no gradient and are not changed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
import warnings

import torch

from ..errors import caller_stacklevel
from ..limits import MAX_REFINE_STEPS
from ..models.base import check_finite, check_images
from ..ops._dispatch import said_typed
from .sampling import check_count

PROJECTION_SPACES = ("w", "w+")
DEFAULT_REFINE_STEPS = 100
DEFAULT_REFINE_LR = 0.05
# Adam moves each coordinate of w by about lr a step, and w's coordinates are of order 1: a rate
# past this only overflows (1e39 is not a float32) or leaves every image at E(x)
MAX_REFINE_LR = 1000.0
DEFAULT_REFINE_IMAGES = 256  # what `evaluate --refine-steps` refines unless --refine-images says


def check_refine_steps(steps, op: str, name: str = "steps") -> int:
    """``steps`` as an int when it is an integer (Python's or NumPy's) in [0, MAX_REFINE_STEPS];
    TypeError naming ``op`` and ``name`` for another type (a bool, a float, a string, None),
    ValueError for an int outside."""
    what = f"{op}: {name} must be an int in [0, {MAX_REFINE_STEPS}] (descent steps from E(x); 0: E(x) itself)"
    if isinstance(steps, bool) or not isinstance(steps, Integral):
        raise TypeError(f"{what}; got {said_typed(steps)}")
    if not 0 <= steps <= MAX_REFINE_STEPS:
        raise ValueError(f"{what}; got {steps!r}")
    return int(steps)


def check_refine_lr(lr, op: str, name: str = "lr") -> float:
    """``lr`` as a float when it is a real number (Python's or NumPy's) in (0,
    :data:`MAX_REFINE_LR`]; TypeError naming ``op`` and ``name`` for another type, ValueError for
    NaN, infinity or a number outside."""
    what = (f"{op}: {name} must be a number in (0, {MAX_REFINE_LR:g}] (Adam's learning rate, in w's units; "
            f"default {DEFAULT_REFINE_LR:g})")
    if isinstance(lr, bool) or not isinstance(lr, Real):
        raise TypeError(f"{what}; got {said_typed(lr)}")
    if not math.isfinite(lr) or lr <= 0 or lr > MAX_REFINE_LR:
        raise ValueError(f"{what}; got {lr!r}")
    return float(lr)


def check_space(space, op: str, name: str = "space") -> str:
    """``space`` when it is one of :data:`PROJECTION_SPACES`; TypeError naming ``op`` and ``name``
    for a non-string, ValueError for another string."""
    what = (f"{op}: {name} must be one of {PROJECTION_SPACES} ('w': one w for every style input, "
            f"'w+': one per style input)")
    if not isinstance(space, str):
        raise TypeError(f"{what}; got {said_typed(space)}")
    if space not in PROJECTION_SPACES:
        raise ValueError(f"{what}; got {space!r}")
    return space


def check_refinement(op: str, steps, lr, space,
                     names: tuple[str, str, str] = ("steps", "lr", "space")) -> tuple[int, float, str]:
    """The three checks above, in that order, each error naming ``op`` and its own of ``names``;
    returns (steps, lr, space) as an int, a float and a string."""
    return check_refine_steps(steps, op, names[0]), check_refine_lr(lr, op, names[1]), check_space(space, op, names[2])


# Images refined at once by default: each holds G's graph for its backward pass
PROJECT_BATCH = 256


def project_latents(model, x: torch.Tensor, lod: int | None = None, blend: float = 1.0, *,
                    steps: int = DEFAULT_REFINE_STEPS, lr: float = DEFAULT_REFINE_LR, space: str = "w",
                    noise="zero", batch_size: int = PROJECT_BATCH, op: str = "project_latents") -> torch.Tensor:
    """The latents of ``x`` refined from E(x): see the module docstring for the arithmetic.

    model: an ALAE model (``ALAEModel``: ``encode``, ``decode``, ``num_ws``); x: images
    ``[N, C, r, r]`` at level ``lod`` with ``blend``, pixels in [-1, 1], a float tensor on the
    model's device; steps: int in [0, MAX_REFINE_STEPS] (default 100; 0 returns E(x)); lr: a number
    in (0, MAX_REFINE_LR] = (0, 1000] (default 0.05, in w's units: photos-32's w has a
    per-dimension standard deviation of about 0.9); space: "w" (default; one w ``[N, latent_size]``, G's own latent space, where the
    editing directions live) or "w+" (``[N, num_ws, latent_size]``, one w per style input:
    closer reconstructions, further from what G was trained on); noise: a ``decode`` noise mode or
    per-layer noise list (default "zero": deterministic); batch_size: int >= 1, images refined at
    a time (each image's path does not depend on it); op: the name the errors and the warning
    begin with (default "project_latents"; ``LoadedRun.project`` gives "project", the name its
    caller used).

    Returns w detached, in the dtype E gives (x's), on x's device: for each image the iterate of
    lowest pixel error among E(x) and the steps' iterates, so never worse than E(x) by that error
    (StyleGAN2's projector returns the last iterate, which an lr too large for the model leaves
    far worse than where it started). Warns (RuntimeWarning) when, with steps >= 1, some images
    kept E(x) because no step lowered their error, attributed to the caller's line (the first
    outside ``alae_fast.inference``: through ``LoadedRun.project``, the line that called it).
    Raises TypeError naming the argument for a steps, lr, space or batch_size of the wrong type,
    ValueError for a bad value, what ``encode``/``decode`` raise for a bad x or noise, and
    FloatingPointError when the descent reaches NaN or infinity (an lr too large for this model)."""
    steps, lr, space = check_refinement(op, steps, lr, space)
    check_count(batch_size, "batch_size", op)
    check_images(x, op)
    if x.ndim == 0:  # x.shape[0] below is the image count
        raise ValueError(f"{op}: x must be images [N, C, r, r]; got a 0-d tensor")
    check_finite(x, op, "x")
    parts, kept = [], 0
    for i in range(0, x.shape[0], batch_size):
        w, moved = _project_batch(model, x[i:i + batch_size], lod, blend, steps, float(lr), space,
                                  _noise_rows(noise, i, i + batch_size, x.shape[0]), op)
        parts.append(w)
        kept += int((~moved).sum())
    if steps and kept:
        # never worse than E(x), but a descent that changed nothing must say so, not pass as a refinement
        warnings.warn(f"{op}: {kept} of {x.shape[0]} images kept E(x): no step of the descent lowered "
                      f"their pixel error (lr {lr:g}; a rate far too large, or too small, for this model does that)",
                      RuntimeWarning, stacklevel=caller_stacklevel())
    if parts:
        return torch.cat(parts)
    # no images: the empty result still has the shape of the space asked for, in the encoder's dtype
    return x.new_zeros((0, int(model.num_ws), model.latent_size) if space == "w+" else (0, model.latent_size))


def _noise_rows(noise, start: int, stop: int, n: int):
    """A noise list's entries of one image each ([n, 1, r, r]) cut to the images of a batch
    ``start:stop``; shared entries ([1, 1, r, r], None) and modes as they are."""
    if not isinstance(noise, (list, tuple)) or n == 1:
        return noise
    return [t[start:stop] if isinstance(t, torch.Tensor) and t.ndim >= 1 and t.shape[0] == n else t for t in noise]


def _project_batch(model, x, lod, blend, steps, lr, space, noise, op) -> torch.Tensor:
    with torch.no_grad():
        w0 = model.encode(x, lod, blend)
    if space == "w+":
        w0 = w0.unsqueeze(1).repeat(1, int(model.num_ws), 1)
    moved = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)  # an iterate beat E(x)
    if steps == 0:
        return w0, moved
    w = w0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    target = x.detach()
    best_w, best = w0.detach().clone(), None

    def errors(w_now):  # each image's mean squared pixel error; half types accumulate in float32
        err = model.decode(w_now, lod, blend, noise) - target
        err = err.float() if err.dtype in (torch.float16, torch.bfloat16) else err
        return err.square().mean(dim=tuple(range(1, err.ndim)))

    def keep(per, w_now):  # the best iterate so far, per image
        nonlocal best
        per = per.detach()
        better = torch.ones_like(per, dtype=torch.bool) if best is None else per < best
        if best is not None:
            moved.logical_or_(better)
        best = per if best is None else torch.where(better, per, best)
        best_w[better] = w_now.detach()[better]

    with torch.enable_grad():
        for t in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * t / steps))
            per = errors(w)
            # the gradient of w alone: the networks' .grad stay as they are (None in inference)
            (grad,) = torch.autograd.grad(per.sum(), [w])
            keep(per, w)  # the error of w before this step: E(x)'s at t = 0
            w.grad = grad
            opt.step()
    if not torch.isfinite(w).all():
        raise FloatingPointError(f"{op}: the descent reached NaN or infinity within {steps} steps at lr "
                                 f"{lr:g}; use a smaller lr")
    with torch.no_grad():
        keep(errors(w), w)
    return best_w, moved


def refined_reconstruction(model, x: torch.Tensor, lod: int | None, blend: float, *,
                           steps: int = DEFAULT_REFINE_STEPS, space: str = "w", lr: float = DEFAULT_REFINE_LR,
                           labelled: bool, limit: int | None = None) -> dict:
    """The reconstruction figures of G(w), w refined from E(x) (:func:`project_latents`, noise
    off), as the reports print them beside ALAE's own G(E(x)).

    x: images ``[M, C, r, r]`` in [-1, 1] at ``lod``/``blend``; steps: an int in [1,
    MAX_REFINE_STEPS]; space, lr: as :func:`project_latents`'s; labelled: whether the data have classes (unlabelled data also get the
    matched-back figure, ``alae_fast.eval.reconstruction_identification``); limit: refine only the
    first ``limit`` images (None: all; an int >= 1, Python's or NumPy's; a step costs a forward and a backward pass of
    G per image: 1.2 ms for photos-32 on two cores, 150 ms for celeba-128). Returns ``{"steps",
    "space", "lr", "images", "of", "mse", "encoder_mse", "identification"}``: ``images`` refined
    of the ``of`` given, their refined MSE, G(E(x))'s MSE on the same images (the figure to read
    it against when not all were refined) and the matched-back figure among them (None for
    labelled data or fewer than 2 images). Raises as :func:`project_latents`, and ValueError for
    steps 0 (nothing to report beside G(E(x))) or a limit < 1."""
    from ..eval import reconstruction_identification, reconstruction_mse

    if check_refine_steps(steps, "refined_reconstruction") == 0:
        raise ValueError("refined_reconstruction: steps must be >= 1 (0 is G(E(x)) itself)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, Integral) or limit < 1):
        raise ValueError(f"refined_reconstruction: limit must be None or an int >= 1; got {limit!r}")
    limit = None if limit is None else int(limit)  # NumPy ints too
    given = int(x.shape[0])
    x = x if limit is None else x[:limit]
    w = project_latents(model, x, lod, blend, steps=steps, lr=lr, space=space, noise="zero")
    with torch.no_grad():
        rec = model.decode(w, lod, blend, "zero")
        plain = model.reconstruct(x, lod, blend, "zero")
    ident = None if labelled or x.shape[0] < 2 else reconstruction_identification(rec, x)
    return {"steps": steps, "space": space, "lr": float(lr), "images": int(x.shape[0]), "of": given,
            "mse": reconstruction_mse(rec, x), "encoder_mse": reconstruction_mse(plain, x), "identification": ident}
