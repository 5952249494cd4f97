"""Reconstruction quality: the mean squared error, and whether a reconstruction keeps its class.

An autoencoder's MSE says how close the pixels come back, not whether a digit comes back as
the same digit: a blurred 3 and a sharp 8 can have similar errors.
:func:`reconstruction_class_accuracy` asks the second question with a classifier that knows
nothing about the model, 1-NN on the raw pixels of the labelled training images.
Unlabelled images (a folder of photos) get :func:`reconstruction_identification`: can each
reconstruction be matched to its own input among all the inputs, and how often does that
succeed when only each image's mean colour comes back.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["reconstruct_all", "reconstruction_mse", "reconstruction_class_accuracy",
           "reconstruction_identification"]

# Each metric below takes either the model's reconstruct callable or the reconstructions it
# already gave: an evaluation that reports several metrics of the same images runs the model
# over them once (reconstruct_all) and hands every metric the same tensor.
Reconstruct = Callable[[torch.Tensor], torch.Tensor] | torch.Tensor


def _batches(reconstruct, images: torch.Tensor, batch_size: int):
    """Yield ``(x, reconstruct(x))`` over ``images`` in batches, without gradients, checking shapes."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            x = images[i:i + batch_size]
            y = reconstruct(x)
            if not isinstance(y, torch.Tensor) or y.shape != x.shape:
                raise ValueError(f"reconstruct: returned {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y)}"
                                 f" for input {tuple(x.shape)}; expected the same shape")
            yield x, y


def reconstruct_all(reconstruct: Reconstruct, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``reconstruct`` applied to every image, in batches, without gradients, on the CPU.

    Args:
        reconstruct: maps a batch ``[b, C, R, R]`` to a batch of the same shape (e.g.
            ``lambda x: model.reconstruct(x, lod, 1.0)``); or a tensor of reconstructions
            already computed, ``[N, C, R, R]`` like ``images``, returned checked (batch_size unused).
        images: ``[N, C, R, R]`` float tensor (any value range; the model's).
        batch_size: images per call (default 256).

    Returns:
        float64 CPU tensor ``[N, C, R, R]``.

    Raises:
        ValueError: images not a ``[N, ...]`` tensor; reconstructions of another shape, or
            containing NaN or infinity.
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise ValueError("images: expected a [N, ...] tensor")
    if isinstance(reconstruct, torch.Tensor):
        if reconstruct.shape != images.shape:
            raise ValueError(f"reconstruct: the reconstructions given have shape {tuple(reconstruct.shape)}; "
                             f"expected the images' {tuple(images.shape)}")
        rec = reconstruct.detach().to("cpu", torch.float64)
    else:
        parts = [y.detach().to("cpu", torch.float64) for _, y in _batches(reconstruct, images, batch_size)]
        rec = torch.cat(parts) if parts else images.new_zeros(images.shape, dtype=torch.float64, device="cpu")
    if not torch.isfinite(rec).all():
        raise ValueError("reconstruct: returned NaN or infinity")
    return rec


def reconstruction_mse(reconstruct: Reconstruct, images: torch.Tensor,
                       batch_size: int = 256, per_image: bool = False) -> float | torch.Tensor:
    """Mean of ``(reconstruct(x) - x) ** 2`` over every pixel of every image.

    Args:
        reconstruct: maps a batch ``[b, C, R, R]`` to a batch of the same shape (e.g.
            ``lambda x: model.reconstruct(x, lod, 1.0)``); called without gradients; or the
            reconstructions already computed (:func:`reconstruct_all`).
        images: ``[N, C, R, R]`` float tensor, in the value range the model uses (the
            error is in those units). Reconstructions are taken as given, not clamped: for
            ``[-1, 1]`` images 4.0 bounds the error of outputs inside the range, and a model
            early in training, whose outputs overshoot it, can score more.
        batch_size: images per call (default 256).
        per_image: if True, return the float64 ``[N]`` tensor of per-image means instead.

    Returns:
        A Python float (accumulated in float64), or the per-image tensor.

    Raises:
        ValueError: as :func:`reconstruct_all`; no images (unless per_image).
    """
    rec = reconstruct_all(reconstruct, images, batch_size)
    d = (rec - images.detach().to("cpu", torch.float64)).square()
    per_t = d.flatten(1).mean(dim=1)
    if per_image:
        return per_t
    if per_t.numel() == 0:
        raise ValueError("images: is empty")
    return float(per_t.mean())


def _flat_numpy(x: torch.Tensor):
    return x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64).numpy()


def reconstruction_class_accuracy(reconstruct: Reconstruct, train_images: torch.Tensor,
                                  train_labels, test_images: torch.Tensor, test_labels,
                                  batch_size: int = 256) -> dict[str, float]:
    """How often a reconstruction is classified as its input's class, by a pixel-space 1-NN.

    A ``KNeighborsClassifier(n_neighbors=1)`` (Euclidean) is fitted on the flattened
    ``train_images`` and applied to the reconstructions of ``test_images``, and, as the
    ceiling, to the test images themselves.

    Args:
        reconstruct: maps a batch ``[b, C, R, R]`` to the same shape, called without gradients;
            or the reconstructions of ``test_images`` already computed (:func:`reconstruct_all`).
        train_images, test_images: ``[N, C, R, R]`` / ``[M, C, R, R]`` float tensors in the
            model's value range; train_labels, test_labels: ``[N]`` / ``[M]`` integer labels.
        batch_size: images per ``reconstruct`` call (default 256).

    Returns:
        ``{"reconstructions": fraction, "originals": fraction}``, both in ``[0, 1]``.
    """
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from .latent import _labels

    for name, x in (("train_images", train_images), ("test_images", test_images)):
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty [N, ...] tensor")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"test_images: expected images of shape {tuple(train_images.shape[1:])}; "
                         f"got {tuple(test_images.shape[1:])}")
    ytr, yte = _labels(train_labels), _labels(test_labels)
    if len(ytr) != train_images.shape[0] or len(yte) != test_images.shape[0]:
        raise ValueError("labels: need one label per image")
    rec = _flat_numpy(reconstruct_all(reconstruct, test_images, batch_size))
    knn = KNeighborsClassifier(n_neighbors=1).fit(_flat_numpy(train_images), ytr)
    return {"reconstructions": float(np.mean(knn.predict(rec) == yte)),
            "originals": float(np.mean(knn.predict(_flat_numpy(test_images)) == yte))}


def reconstruction_identification(reconstruct: Reconstruct, images: torch.Tensor,
                                  batch_size: int = 256) -> dict[str, float]:
    """How often a reconstruction is nearer to its own input than to any other input.

    For M images, each reconstruction is matched to the nearest (Euclidean, raw pixels) of the
    M inputs; it is identified when that is its own input. The same is done for the baseline
    that keeps only each image's mean colour (every pixel set to the image's per-channel mean),
    so a score above the baseline's means the reconstructions carry the images' content, not
    only their colour. Ties count against the reconstruction.

    Args:
        reconstruct: maps a batch ``[b, C, R, R]`` to the same shape, called without gradients;
            or the reconstructions already computed (:func:`reconstruct_all`).
        images: ``[M, C, R, R]`` float tensor in the model's value range, M >= 2.
        batch_size: images per ``reconstruct`` call (default 256).

    Returns:
        ``{"reconstructions": fraction, "mean_colour": fraction, "chance": 1 / M}``, in [0, 1],
        and ``"mean_colour_mse"``: the baseline's mean squared error (the units of
        :func:`reconstruction_mse`), for an MSE to be read against.

    Raises:
        ValueError: images not a ``[M, C, ...]`` tensor with M >= 2; reconstruct returns another
            shape, NaN or infinity.
    """
    if not isinstance(images, torch.Tensor) or images.dim() < 3 or images.shape[0] < 2:
        raise ValueError("images: expected a [M, C, ...] tensor with M >= 2")
    rec = reconstruct_all(reconstruct, images, batch_size)
    x = images.detach().to("cpu", torch.float64)
    mean_colour = x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x)

    def identified(y: torch.Tensor) -> float:
        d = torch.cdist(y.reshape(y.shape[0], -1), x.reshape(x.shape[0], -1))
        own = d.diagonal()
        others = d + torch.diag(torch.full_like(own, float("inf")))
        return float((own < others.min(dim=1).values).double().mean())

    return {"reconstructions": identified(rec), "mean_colour": identified(mean_colour),
            "chance": 1.0 / x.shape[0], "mean_colour_mse": float((mean_colour - x).square().mean())}
