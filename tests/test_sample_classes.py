"""The sample-class histogram of the training report, against a direct scikit-learn reading."""

import numpy as np
import pytest

# The lent GPU machines have no sklearn: skip this module there instead of failing collection.
pytest.importorskip("sklearn")
import torch
from sklearn.neighbors import KNeighborsClassifier

from alae_fast.eval import sample_class_histogram


def test_histogram_matches_a_direct_1nn_reading():
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(4, 1, 6, 6, generator=g)
    train = protos.repeat(5, 1, 1, 1) + 0.1 * torch.randn(20, 1, 6, 6, generator=g)
    labels = torch.arange(4).repeat(5) + 3   # classes 3..6: the histogram names them
    draws = torch.Generator().manual_seed(1)
    pool = torch.randn(70, 1, 6, 6, generator=draws)
    calls = []

    def sample(b):
        start = sum(calls)
        calls.append(b)
        return pool[start:start + b]

    h = sample_class_histogram(sample, 70, train, labels, batch_size=32)
    assert calls == [32, 32, 6]
    pred = KNeighborsClassifier(n_neighbors=1).fit(train.reshape(20, -1).numpy(), labels.numpy()) \
        .predict(pool.reshape(70, -1).numpy())
    assert h["classes"] == [3, 4, 5, 6]
    assert h["counts"] == [int(np.sum(pred == c)) for c in (3, 4, 5, 6)] and sum(h["counts"]) == 70
    assert h["fractions"] == pytest.approx([k / 70 for k in h["counts"]])
    assert h["min_fraction"] == pytest.approx(min(h["fractions"]))
    # samples that are the prototypes of one class all land in it
    one = sample_class_histogram(lambda b: protos[1:2].expand(b, -1, -1, -1), 10, train, labels)
    assert one["counts"] == [0, 10, 0, 0] and one["min_fraction"] == 0.0


def test_histogram_bad_input():
    train, labels = torch.randn(4, 1, 3, 3), torch.tensor([0, 1, 0, 1])
    ok = lambda b: torch.randn(b, 1, 3, 3)  # noqa: E731
    with pytest.raises(ValueError, match="n:"):
        sample_class_histogram(ok, 0, train, labels)
    with pytest.raises(ValueError, match="train_labels"):
        sample_class_histogram(ok, 5, train, labels[:3])
    with pytest.raises(ValueError, match="sample"):
        sample_class_histogram(lambda b: torch.randn(b, 1, 4, 4), 5, train, labels)
    with pytest.raises(ValueError, match="NaN"):
        sample_class_histogram(lambda b: torch.full((b, 1, 3, 3), float("nan")), 5, train, labels)
    with pytest.raises(ValueError, match="train_images"):
        sample_class_histogram(ok, 5, torch.zeros(0, 1, 3, 3), labels[:0])
