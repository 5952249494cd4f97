"""The three losses of ALAE training (Pidhorskyi et al., CVPR 2020, Algorithm 1).

Each is a pure function of callables and tensors, so it serves the MLP ALAE and StyleALAE
alike: pass ``encoder = lambda x: model.encode(x, lod, blend)``,
``generator = lambda w: model.decode(w, lod, blend)``, ``discriminator = model.discriminator``.
With F the mapping, G the generator, E the encoder, D the discriminator and z ~ N(0, I):

1. E and D (``discriminator_loss``)::

       mean_N[ softplus(D(E(x_fake))) + softplus(-D(E(x))) + (gamma/2) * ||d D(E(x)) / dx||^2 ]

   with x_fake = G(F(z)) (no gradient to F, G) and the R1 penalty on real images, its
   gradient built with ``create_graph=True`` so that backward differentiates through it.
2. F and G (``generator_loss``): ``mean_N softplus(-D(E(G(F(z)))))``, the non-saturating
   generator loss; the caller keeps E and D out of the optimizer step.
3. E and G (``latent_reconstruction_loss``): ``mean((E(G(w)) - w.detach())^2)`` with w = F(z),
   the reciprocity in latent space that replaces ALAE's pixel-space reconstruction loss.

A trainer step, e.g.::

    with torch.no_grad():
        x_fake = model.generate(z, lod, blend)
    loss_d = discriminator_loss(E, D, x, x_fake)                  # step E, D
    loss_g = generator_loss(E, D, model.generate(z, lod, blend))  # step F, G
    with torch.no_grad():
        w = model.mapping(z)
    loss_ae = latent_reconstruction_loss(E, G, w)                 # step E, G
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _scores(d, n: int, where: str) -> Tensor:
    """D's output as [N]: one score per sample ([N] or [N, 1] accepted)."""
    if not isinstance(d, torch.Tensor):
        raise TypeError(f"{where}: the discriminator must return a tensor; got {type(d).__name__}")
    if d.numel() != n or d.ndim > 2 or (d.ndim == 2 and d.shape[1] != 1):
        raise ValueError(f"{where}: the discriminator must return one score per sample, shape [{n}] "
                         f"or [{n}, 1]; got {tuple(d.shape)}")
    return d.reshape(n)


def _check_batch(x, name: str, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"{where}: {name} must have a batch dimension of size >= 1; got shape {tuple(x.shape)}")


def _check_callable(f, name: str, where: str) -> None:
    if not callable(f):
        raise TypeError(f"{where}: {name} must be callable; got {type(f).__name__}")


def r1_penalty(score_fn: Callable[[Tensor], Tensor], x: Tensor, gamma: float = 10.0) -> tuple[Tensor, Tensor]:
    """The R1 gradient penalty of Mescheder et al. (2018) on real samples.

    Args:
        score_fn: x -> one score per sample ([N] or [N, 1]); for ALAE ``lambda x: D(E(x))``.
        x: [N, ...] real samples (float). Used through ``x.detach().requires_grad_()``, so the
            penalty reaches score_fn's parameters, never x's history.
        gamma: weight (default 10); the penalty is (gamma / 2) * ||d score / dx||^2 per sample.

    Returns:
        (scores [N], penalty [N]), both differentiable w.r.t. score_fn's parameters (the
        gradient is built with create_graph=True, so backward is a double backward).
    """
    where = "r1_penalty"
    _check_callable(score_fn, "score_fn", where)
    _check_batch(x, "x", where)
    gamma = _weight(gamma, "gamma", where)
    x = x.detach().requires_grad_(True)
    scores = _scores(score_fn(x), x.shape[0], where)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return scores, grad.square().reshape(x.shape[0], -1).sum(1) * (gamma / 2)


def discriminator_loss(encoder: Callable[[Tensor], Tensor], discriminator: Callable[[Tensor], Tensor],
                       x_real: Tensor, x_fake: Tensor, r1_gamma: float = 10.0, *,
                       return_terms: bool = False):
    """Step 1 (train E and D): logistic loss on real and generated images plus R1 on the real ones.

    ``mean_N[softplus(D(E(x_fake))) + softplus(-D(E(x_real))) + (r1_gamma/2)*||grad_x D(E(x_real))||^2]``

    Args:
        encoder: images -> w, e.g. ``lambda x: model.encode(x, lod, blend)``.
        discriminator: w -> one score per sample ([N] or [N, 1]).
        x_real: [N, ...] training images.
        x_fake: [M, ...] generated images G(F(z)); detached here, so no gradient reaches G or F.
        r1_gamma: R1 weight (default 10, the paper's); 0 skips the penalty and its double backward.
        return_terms: also return a dict of detached batch means: 'real' (softplus(-D(E(x_real)))),
            'fake' (softplus(D(E(x_fake)))), 'r1' (the penalty).

    Returns: the scalar loss (in the scores' dtype), or (loss, terms) when ``return_terms``.
    """
    where = "discriminator_loss"
    _check_callable(encoder, "encoder", where)
    _check_callable(discriminator, "discriminator", where)
    _check_batch(x_real, "x_real", where)
    _check_batch(x_fake, "x_fake", where)
    r1_gamma = _weight(r1_gamma, "r1_gamma", where)
    if r1_gamma > 0:
        real, r1 = r1_penalty(lambda x: discriminator(encoder(x)), x_real, r1_gamma)
    else:
        real = _scores(discriminator(encoder(x_real)), x_real.shape[0], where)
        r1 = None
    fake = _scores(discriminator(encoder(x_fake.detach())), x_fake.shape[0], where)
    loss_real = F.softplus(-real)
    loss_fake = F.softplus(fake)
    # Real and fake batches may differ in size: average each over its own batch.
    loss = loss_real.mean() + loss_fake.mean()
    if r1 is not None:
        loss = loss + r1.mean()
    if not return_terms:
        return loss
    terms = {"real": loss_real.detach().mean(), "fake": loss_fake.detach().mean(),
             "r1": r1.detach().mean() if r1 is not None else torch.zeros_like(loss).detach()}
    return loss, terms


def generator_loss(encoder: Callable[[Tensor], Tensor], discriminator: Callable[[Tensor], Tensor],
                   x_fake: Tensor) -> Tensor:
    """Step 2 (train F and G): the non-saturating loss ``mean_N softplus(-D(E(x_fake)))``.

    Args:
        encoder, discriminator: as in ``discriminator_loss``.
        x_fake: [N, ...] generated images G(F(z)), carrying the graph back to F and G.

    Returns: the scalar loss. Gradients also reach E's and D's parameters unless the caller
    froze them (``requires_grad_(False)``); they must not be stepped on this loss.
    """
    where = "generator_loss"
    _check_callable(encoder, "encoder", where)
    _check_callable(discriminator, "discriminator", where)
    _check_batch(x_fake, "x_fake", where)
    return F.softplus(-_scores(discriminator(encoder(x_fake)), x_fake.shape[0], where)).mean()


def latent_reconstruction_loss(encoder: Callable[[Tensor], Tensor], generator: Callable[[Tensor], Tensor],
                               w: Tensor) -> Tensor:
    """Step 3 (train E and G): ``mean((E(G(w)) - w.detach())^2)`` over all elements.

    Args:
        encoder: images -> w [N, latent].
        generator: w [N, latent] -> images, e.g. ``lambda w: model.decode(w, lod, blend)``.
        w: [N, latent] latents F(z). The target is w.detach(); G's input is w itself, so if w
            carries a graph to F, F's parameters receive gradients too (compute w under
            ``torch.no_grad()`` to avoid that work).

    Returns: the scalar loss.
    """
    where = "latent_reconstruction_loss"
    _check_callable(encoder, "encoder", where)
    _check_callable(generator, "generator", where)
    _check_batch(w, "w", where)
    w_rec = encoder(generator(w))
    if not isinstance(w_rec, torch.Tensor) or w_rec.shape != w.shape:
        got = tuple(w_rec.shape) if isinstance(w_rec, torch.Tensor) else type(w_rec).__name__
        raise ValueError(f"{where}: encoder(generator(w)) must have w's shape {tuple(w.shape)}; got {got}")
    return (w_rec - w.detach()).square().mean()


def _weight(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0; got {value!r}")
    return float(value)
