"""Latent-space classification accuracy, as in the ALAE paper's MNIST table.

Features of the training split are fitted by two scikit-learn classifiers and scored on
the test split:

- **1-NN**: ``KNeighborsClassifier(n_neighbors=1)``, Euclidean distance;
- **LinearSVC**: ``LinearSVC(C=0.02)`` (the paper's setting), squared hinge loss, one
  vs rest, on the raw (unscaled) features.

:func:`latent_report` puts a trained encoder beside two baselines computed the same way:
PCA of the raw pixels with the same number of components as the encoder's feature
dimension, and a randomly initialised encoder (the caller builds it and passes its
encode function). Nothing here knows about models: encoders are callables.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["encode_all", "classify_features", "pca_features", "latent_report"]

EncodeFn = Callable[[torch.Tensor], torch.Tensor]


def encode_all(encode: EncodeFn, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Run ``encode`` over ``images`` in batches, without gradients.

    Args:
        encode: maps a float batch ``[b, ...]`` to features ``[b, ...]`` (any trailing
            shape; e.g. ``[b, latent]`` or per-layer ``[b, L, latent]``).
        images: ``[N, ...]`` tensor; batches are moved to nothing - ``encode`` handles devices.
        batch_size: images per call (default 256).

    Returns:
        float64 numpy array ``[N, D]``, each sample's features flattened.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            f = encode(images[i:i + batch_size])
            if not isinstance(f, torch.Tensor) or f.shape[0] != min(batch_size, images.shape[0] - i):
                raise ValueError("encode: must return a tensor with one row per input image")
            out.append(f.detach().reshape(f.shape[0], -1).to("cpu", torch.float64).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _labels(y) -> np.ndarray:
    return np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)


def classify_features(train_features, train_labels, test_features, test_labels, svc_c: float = 0.02,
                      svc_max_iter: int = 20000, seed: int = 0) -> dict[str, float]:
    """Fit 1-NN and LinearSVC(C=svc_c) on training features, score both on test features.

    Args:
        train_features: ``[N, D]`` array or tensor; test_features ``[M, D]``.
        train_labels, test_labels: ``[N]`` / ``[M]`` integer class labels.
        svc_c: LinearSVC regularisation ``C`` (default 0.02, the paper's).
        svc_max_iter: LinearSVC iteration cap (liblinear); seed: its ``random_state``.

    Returns:
        ``{"knn1": accuracy, "linear_svc": accuracy}``, fractions in ``[0, 1]``.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import LinearSVC

    xtr = np.asarray(train_features, dtype=np.float64)
    xte = np.asarray(test_features, dtype=np.float64)
    ytr, yte = _labels(train_labels), _labels(test_labels)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"features: expected [N, D] and [M, D], got {xtr.shape} and {xte.shape}")
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise ValueError("labels: need one label per feature row")
    if not (np.isfinite(xtr).all() and np.isfinite(xte).all()):
        raise ValueError("features: contain NaN or infinity (did the encoder diverge?)")
    knn = KNeighborsClassifier(n_neighbors=1).fit(xtr, ytr)
    with warnings.catch_warnings():
        # an unconverged SVC still gives a usable score; the report should not fail on it
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(C=svc_c, max_iter=svc_max_iter, random_state=seed).fit(xtr, ytr)
    return {"knn1": float(np.mean(knn.predict(xte) == yte)),
            "linear_svc": float(np.mean(svc.predict(xte) == yte))}


def pca_features(train_images: torch.Tensor, test_images: torch.Tensor, dim: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PCA with ``dim`` components fitted on the flattened training images, applied to both splits.

    ``dim`` is capped at ``min(N_train, pixels)``. Returns float64 ``([N, d], [M, d])``.
    """
    from sklearn.decomposition import PCA

    xtr = train_images.reshape(train_images.shape[0], -1).to(torch.float64).cpu().numpy()
    xte = test_images.reshape(test_images.shape[0], -1).to(torch.float64).cpu().numpy()
    d = int(min(dim, xtr.shape[0], xtr.shape[1]))
    if d < 1:
        raise ValueError(f"dim: expected a positive number of components, got {dim}")
    pca = PCA(n_components=d, random_state=seed).fit(xtr)
    return pca.transform(xtr), pca.transform(xte)


def latent_report(encode: EncodeFn, train_images: torch.Tensor, train_labels, test_images: torch.Tensor,
                  test_labels, random_encode: EncodeFn | None = None, pca: bool = True, batch_size: int = 256,
                  svc_c: float = 0.02, seed: int = 0) -> dict:
    """Latent classification accuracy of an encoder and its baselines.

    Args:
        encode: the trained encoder, ``images [b, C, R, R] -> features [b, ...]``.
        train_images, test_images: ``[N, C, R, R]`` / ``[M, C, R, R]`` float tensors, as
            the encoder expects them (e.g. in ``[-1, 1]``).
        train_labels, test_labels: ``[N]`` / ``[M]`` integer labels.
        random_encode: the same architecture, randomly initialised (None skips it); or an
            iterable of such encoders (several initialisations; a generator lets the caller
            build each one only when it is reached), reported as the mean of
            their accuracies, with each one's under ``knn1_each`` / ``linear_svc_each``: one
            random draw's 1-NN accuracy varies by several points from seed to seed.
        pca: also report PCA of the raw pixels with the encoder's feature dimension.
        batch_size, svc_c, seed: see :func:`encode_all` and :func:`classify_features`.

    Returns:
        ``{"dim": D, "encoder": {"knn1", "linear_svc"}, "random_encoder": {...},
        "pca": {...}}`` (the baselines only when asked for); accuracies are fractions.
    """
    ftr = encode_all(encode, train_images, batch_size)
    fte = encode_all(encode, test_images, batch_size)
    report: dict = {"dim": int(ftr.shape[1]),
                    "encoder": classify_features(ftr, train_labels, fte, test_labels, svc_c, seed=seed)}
    if random_encode is not None:
        several = not callable(random_encode)
        runs = []
        for r in (random_encode if several else [random_encode]):
            rtr = encode_all(r, train_images, batch_size)
            rte = encode_all(r, test_images, batch_size)
            runs.append(classify_features(rtr, train_labels, rte, test_labels, svc_c, seed=seed))
        if not runs:
            raise ValueError("random_encode: expected an encoder or a non-empty sequence of encoders")
        report["random_encoder"] = {k: float(np.mean([r[k] for r in runs])) for k in ("knn1", "linear_svc")}
        if several:
            report["random_encoder"].update(count=len(runs), knn1_each=[r["knn1"] for r in runs],
                                            linear_svc_each=[r["linear_svc"] for r in runs])
    if pca:
        ptr, pte = pca_features(train_images, test_images, ftr.shape[1], seed=seed)
        report["pca"] = classify_features(ptr, train_labels, pte, test_labels, svc_c, seed=seed)
        report["pca"]["dim"] = int(ptr.shape[1])
    return report
