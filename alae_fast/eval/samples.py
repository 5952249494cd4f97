"""Which classes a generator's samples fall in: a mode-coverage histogram.

A generator that has partly collapsed draws some classes far more often than others (the
digits-32 run of the previous version drew 187 of 1000 samples as a 3 and 15 as a 1).
:func:`sample_class_histogram` labels samples with the same model-free judge as
:func:`alae_fast.eval.reconstruction_class_accuracy`: 1-NN on the raw pixels of labelled
training images.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["sample_class_histogram"]


def sample_class_histogram(sample: Callable[[int], torch.Tensor], n: int, train_images: torch.Tensor,
                           train_labels, batch_size: int = 250) -> dict:
    """Label ``n`` samples by a pixel-space 1-NN fitted on ``train_images`` and count each class.

    Args:
        sample: ``sample(b) -> [b, C, R, R]`` float images in the value range of
            ``train_images`` (called without gradients, ``ceil(n / batch_size)`` times; it
            owns its random draws, so the histogram is reproducible when it is).
        n: number of samples (int >= 1).
        train_images: ``[N, C, R, R]`` float tensor; train_labels: ``[N]`` integer labels
            (the classes counted are the sorted distinct labels).
        batch_size: samples per call (default 250).

    Returns:
        ``{"n": n, "classes": [c, ...], "counts": [k_c, ...], "fractions": [k_c / n, ...],
        "min_fraction": min over classes}`` (plain Python types).

    Raises:
        ValueError: ``n`` or ``batch_size`` < 1, empty or mismatched training data, a sample
            batch of the wrong shape, or NaN/infinite samples.
    """
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    from .latent import _labels

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
    if not isinstance(train_images, torch.Tensor) or train_images.dim() < 2 or train_images.shape[0] == 0:
        raise ValueError("train_images: expected a non-empty [N, ...] tensor")
    ytr = _labels(train_labels)
    if len(ytr) != train_images.shape[0]:
        raise ValueError("train_labels: need one label per training image")
    flat = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            x = sample(b)
            if not isinstance(x, torch.Tensor) or tuple(x.shape) != (b, *train_images.shape[1:]):
                raise ValueError(f"sample: returned {tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)}; "
                                 f"expected {(b, *train_images.shape[1:])}")
            flat.append(x.detach().reshape(b, -1).to("cpu", torch.float64).numpy())
    xs = np.concatenate(flat)
    if not np.isfinite(xs).all():
        raise ValueError("sample: returned NaN or infinity")
    knn = KNeighborsClassifier(n_neighbors=1).fit(train_images.reshape(train_images.shape[0], -1)
                                                  .to("cpu", torch.float64).numpy(), ytr)
    pred = knn.predict(xs)
    classes = np.unique(ytr)
    counts = [int(np.sum(pred == c)) for c in classes]
    fractions = [k / n for k in counts]
    return {"n": n, "classes": [int(c) for c in classes], "counts": counts, "fractions": fractions,
            "min_fraction": min(fractions)}
