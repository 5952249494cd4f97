"""alae_fast.eval: Fréchet distance math and feature networks, latent accuracy, reconstruction MSE, PPL."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from alae_fast.eval import (InceptionV3Features, RandomConvFeatures, classify_features, compute_features,
                            encode_all, feature_network, feature_statistics, fid, fid_from_features, fid_generated,
                            fid_reconstructed, frechet_distance, latent_report, mse_distance,
                            perceptual_path_length, proxy_lpips_distance, reconstruct_all,
                            reconstruction_class_accuracy, reconstruction_identification, reconstruction_mse)
from alae_fast.eval.fid import _avg3

pytestmark = pytest.mark.usefixtures("one_thread_per_module")


# ---------------------------------------------------------------------------- Fréchet distance

def _fd_scipy(mu1, s1, mu2, s2):
    # scipy comes with scikit-learn, a core dependency, but not on the lent GPU machines:
    # imported here so only the test that needs it is skipped there.
    linalg = pytest.importorskip("scipy.linalg")
    covmean = linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def _rand_cov(rng, d, n=None):
    a = rng.randn(d, n or 2 * d + 3)
    return a @ a.T / a.shape[1] + 0.05 * np.eye(d)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 24), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100))
def test_frechet_distance_matches_scipy_sqrtm(d, seed, scale):
    rng = np.random.RandomState(seed)
    mu1, mu2 = rng.randn(d) * scale, rng.randn(d) * scale
    s1, s2 = _rand_cov(rng, d) * scale, _rand_cov(rng, d) * scale
    ref = _fd_scipy(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-7, abs=1e-9 * scale)


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.5], [[4.0]], [-0.5], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal and singular (rank-deficient) covariances: tr sqrt(S1 S2) = sum sqrt(d1 d2)
    d1, d2 = np.array([2.0, 0.0, 3.0, 0.0]), np.array([8.0, 5.0, 0.0, 0.0])
    expected = d1.sum() + d2.sum() - 2 * np.sqrt(d1 * d2).sum()
    assert frechet_distance(np.zeros(4), np.diag(d1), np.zeros(4), np.diag(d2)) == pytest.approx(expected)
    rng = np.random.RandomState(1)
    s = _rand_cov(rng, 6, n=3)  # rank 3 + small ridge
    assert frechet_distance(np.ones(6), s, np.ones(6), s) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="mu/sigma"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))


def test_feature_statistics_and_fid_of_shifted_features():
    rng = np.random.RandomState(2)
    f = rng.randn(200, 5) @ rng.randn(5, 5)
    mu, sigma = feature_statistics(f)
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(sigma, np.cov(f.T))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert fid_from_features(f, f + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(f[:1])


# ---------------------------------------------------------------------------- feature networks

@pytest.fixture(scope="module")
def digit_sets():
    from alae_fast.data import load_digits

    return load_digits("train")[0][:150], load_digits("test")[0][:150]


def test_proxy_network_is_fixed_named_and_ranks_distributions(digit_sets):
    train, test = digit_sets
    net = feature_network(None)
    assert isinstance(net, RandomConvFeatures) and net.is_proxy and "proxy" in net.name and net.dim == 480
    again = RandomConvFeatures()
    x = train[:4]
    assert torch.equal(net(x), again(x))  # weights come from a fixed seed
    assert not torch.equal(RandomConvFeatures(seed=1)(x), net(x))
    same = fid(net, train, test)
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(test.shape, generator=g) * 2 - 1
    blurred = F.avg_pool2d(test, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    f_train = compute_features(net, train)
    assert same == pytest.approx(fid_from_features(f_train, compute_features(net, test)), rel=1e-9)
    assert same < fid_from_features(f_train, compute_features(net, blurred)) \
        < fid_from_features(f_train, compute_features(net, noise))
    assert net(torch.rand(2, 3, 17, 23) * 2 - 1).shape == (2, 480)  # RGB, odd sizes are resized
    with pytest.raises(ValueError, match="images"):
        net(torch.zeros(2, 2, 8, 8))


def test_fid_generated_and_reconstructed_use_the_callables(digit_sets):
    train, test = digit_sets
    net = RandomConvFeatures()
    assert fid_reconstructed(net, test, lambda x: x.clone(), batch_size=64) == pytest.approx(0.0, abs=1e-6)
    pool = test.clone()
    taken = []

    def sample(n):
        taken.append(n)
        out = pool[sum(taken) - n:sum(taken)]
        return out

    score = fid_generated(net, train, sample, num=len(test), batch_size=128)
    assert taken == [128, len(test) - 128]
    assert score == pytest.approx(fid(net, train, test), rel=1e-6)
    feats = compute_features(net, iter([test[:10], test[10:30]]))
    assert feats.shape == (30, 480)
    with pytest.raises(ValueError, match="sample"):
        fid_generated(net, train, lambda n: test[:1], num=4)


# torchvision's parameter names and shapes, spot-checked at each block type
_TORCHVISION_KEYS = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_3a.bn.bias": (384,),
}


def test_inception_architecture_loads_state_dict_files(tmp_path):
    torch.manual_seed(0)
    net = InceptionV3Features()
    sd = net.state_dict()
    for k, shape in _TORCHVISION_KEYS.items():
        assert tuple(sd[k].shape) == shape, k
    # 94 conv+BN layers, 6 entries each; parameters: torchvision's 27,161,264 for Inception3
    # less its 1000-way fc (2,049,000) and AuxLogits head (3,326,696)
    assert len(sd) == 94 * 6 and sum(p.numel() for p in net.parameters()) == 27_161_264 - 2_049_000 - 3_326_696
    for k in sd:  # non-trivial BN statistics so the loaded network differs from a fresh one
        if k.endswith("running_mean"):
            sd[k] = torch.randn_like(sd[k]) * 0.1
    fid_file, tv_file = tmp_path / "fid.pth", tmp_path / "tv.pth"
    torch.save({**sd, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}, fid_file)
    torch.save({**sd, "fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000),
                "AuxLogits.fc.weight": torch.zeros(1000, 768)}, tv_file)
    a = feature_network(fid_file)
    b = InceptionV3Features(tv_file)
    assert (a.variant, b.variant) == ("fid", "torchvision") and not a.is_proxy and a.dim == 2048
    for k in _TORCHVISION_KEYS:
        assert torch.equal(a.state_dict()[k], sd[k])
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    fa, fb = a(x), b(x)
    assert fa.shape == (1, 2048) and torch.isfinite(fa).all()
    assert not torch.allclose(fa, fb)  # the FID graph's pools differ from torchvision's


def test_inception_bad_weight_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        InceptionV3Features(tmp_path / "none.pth")
    p = tmp_path / "x.pth"
    torch.save({"conv.weight": torch.zeros(3)}, p)
    with pytest.raises(ValueError, match="not an InceptionV3 state dict"):
        InceptionV3Features(p)
    torch.save([1, 2, 3], p)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        InceptionV3Features(p)
    p.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not be read"):
        InceptionV3Features(p)
    sd = InceptionV3Features().state_dict()
    sd["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(64, 192, 3, 3)
    torch.save(sd, p)
    with pytest.raises(ValueError, match="shape mismatch"):
        InceptionV3Features(p)


def test_tf_average_pool_excludes_padding():
    x = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones((5, 5)), 1)
    sums = sum(xp[..., i:i + 5, j:j + 5] for i in range(3) for j in range(3))
    counts = sum(ones[i:i + 5, j:j + 5] for i in range(3) for j in range(3))
    np.testing.assert_allclose(_avg3(x, True).numpy(), sums / counts)
    np.testing.assert_allclose(_avg3(x, False).numpy(), sums / 9)


# ---------------------------------------------------------------------------- latent classification

def _blobs(n_per, k=4, d=6, sep=12.0, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * sep
    x = np.concatenate([c + rng.randn(n_per, d) for c in centers])
    y = np.repeat(np.arange(k), n_per)
    return torch.from_numpy(x).float(), torch.from_numpy(y)


def test_latent_report_on_separable_data():
    xtr, ytr = _blobs(60)
    xte, yte = _blobs(25, seed=0)
    xte = xte + torch.randn(xte.shape, generator=torch.Generator().manual_seed(1)) * 0.5
    # "images": the class lives in 6 pixels of an 8x8 picture, the rest is noise
    def to_img(x, seed):
        g = torch.Generator().manual_seed(seed)
        img = torch.randn(x.shape[0], 1, 8, 8, generator=g) * 0.1
        img.view(x.shape[0], -1)[:, :6] = x
        return img

    itr, ite = to_img(xtr, 2), to_img(xte, 3)
    encode = lambda img: img.flatten(1)[:, :6].unsqueeze(1).repeat(1, 2, 1)  # per-layer [b, 2, 6]
    g = torch.Generator().manual_seed(4)
    random_encode = lambda img: torch.randn(img.shape[0], 12, generator=g)  # ignores its input
    rep = latent_report(encode, itr, ytr, ite, yte, random_encode=random_encode, batch_size=37)
    assert rep["dim"] == 12 and rep["pca"]["dim"] == 12
    assert rep["encoder"] == {"knn1": 1.0, "linear_svc": 1.0}
    assert rep["pca"]["knn1"] == 1.0 and rep["pca"]["linear_svc"] >= 0.95
    assert rep["random_encoder"]["knn1"] < 0.5 and rep["random_encoder"]["linear_svc"] < 0.5  # chance: 0.25


def test_latent_report_averages_several_random_encoders():
    xtr, ytr = _blobs(40)
    xte, yte = _blobs(20, seed=0)
    itr, ite = xtr.view(-1, 1, 2, 3), xte.view(-1, 1, 2, 3)  # 6 features as 1x2x3 "images"
    encode = lambda img: img.flatten(1)
    # One encoder that sees the class (accuracy 1) and one that ignores its input (~chance):
    # the report holds each one's accuracy and their mean.
    g = torch.Generator().manual_seed(7)
    blind = lambda img: torch.randn(img.shape[0], 6, generator=g)
    rep = latent_report(encode, itr, ytr, ite, yte, random_encode=[encode, blind], pca=False)
    rnd = rep["random_encoder"]
    assert rnd["count"] == 2 and rnd["knn1_each"][0] == 1.0 and rnd["knn1_each"][1] < 0.5
    assert rnd["knn1"] == pytest.approx(sum(rnd["knn1_each"]) / 2)
    assert rnd["linear_svc"] == pytest.approx(sum(rnd["linear_svc_each"]) / 2)
    with pytest.raises(ValueError, match="random_encode"):
        latent_report(encode, itr, ytr, ite, yte, random_encode=[], pca=False)


def test_knn_accuracy_is_exact_on_constructed_neighbours():
    rng = np.random.RandomState(5)
    train = rng.randn(40, 3) * 10
    labels = rng.randint(0, 3, 40)
    test = train[:20] + rng.randn(20, 3) * 0.01  # each test point sits on one training point
    test_labels = labels[:20].copy()
    test_labels[:5] = (test_labels[:5] + 1) % 3  # 5 of 20 deliberately wrong
    # brute-force 1-NN as the oracle
    nn = np.argmin(((test[:, None] - train[None]) ** 2).sum(-1), axis=1)
    assert np.mean(labels[nn] == test_labels) == 0.75
    assert classify_features(train, labels, test, test_labels)["knn1"] == 0.75


def test_latent_argument_errors():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="one row per input"):
        encode_all(lambda b: b[:1], x, batch_size=4)
    with pytest.raises(ValueError, match="NaN"):
        classify_features(np.full((4, 2), np.nan), [0, 1, 0, 1], np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="features"):
        classify_features(np.zeros((4, 2)), [0, 1, 0, 1], np.zeros((2, 3)), [0, 1])


# ---------------------------------------------------------------------------- reconstruction

def test_reconstruction_mse():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(13, 1, 4, 4, generator=g) * 2 - 1
    assert reconstruction_mse(lambda b: b.clone(), x) == 0.0
    calls = []

    def half(b):
        calls.append(b.shape[0])
        return b * 0.5

    expected = float(np.mean((x.double().numpy() * 0.5) ** 2))
    assert reconstruction_mse(half, x, batch_size=5) == pytest.approx(expected, rel=1e-12)
    assert calls == [5, 5, 3]
    per = reconstruction_mse(half, x, per_image=True)
    np.testing.assert_allclose(per.numpy(), ((x.double() * 0.5) ** 2).flatten(1).mean(1).numpy())
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_mse(lambda b: b[:, :, :2], x)


def _prototype_data(seed=0, classes=4, per_class=(20, 7), noise=0.15):
    """Images scattered around one random prototype per class: [N, 1, 4, 4] and labels."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, 1, 4, 4, generator=g) * 2 - 1
    out = []
    for n in per_class:
        y = torch.arange(classes).repeat_interleave(n)
        out += [protos[y] + noise * torch.randn(len(y), 1, 4, 4, generator=g), y]
    return protos, out


def test_reconstruction_class_accuracy_against_direct_1nn():
    protos, (xtr, ytr, xte, yte) = _prototype_data()
    from sklearn.neighbors import KNeighborsClassifier

    def direct(images):  # an independent reading of the same classifier
        knn = KNeighborsClassifier(1).fit(xtr.flatten(1).double().numpy(), ytr.numpy())
        return float(np.mean(knn.predict(images.flatten(1).double().numpy()) == yte.numpy()))

    g = torch.Generator().manual_seed(1)
    noisy = xte + 1.5 * torch.randn(xte.shape, generator=g)
    calls = []

    def blur(b):
        calls.append(b.shape[0])
        return noisy[sum(calls[:-1]):sum(calls)]

    r = reconstruction_class_accuracy(blur, xtr, ytr, xte, yte, batch_size=5)
    assert calls == [5] * 5 + [3]
    assert r["reconstructions"] == pytest.approx(direct(noisy)) and r["originals"] == pytest.approx(direct(xte))
    assert 0.0 < r["reconstructions"] < 1.0 and r["originals"] == 1.0
    # a reconstruction that returns the input unchanged scores the originals' accuracy
    assert reconstruction_class_accuracy(lambda b: b.clone(), xtr, ytr, xte, yte)["reconstructions"] == 1.0
    # one that returns the prototype of the next class is always read as the wrong class
    shifted = reconstruction_class_accuracy(lambda b: protos[(yte[:b.shape[0]] + 1) % 4] if b.shape[0] == len(yte)
                                            else None, xtr, ytr, xte, yte, batch_size=len(yte))
    assert shifted["reconstructions"] == 0.0


def test_reconstruction_class_accuracy_bad_input():
    _, (xtr, ytr, xte, yte) = _prototype_data()
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_class_accuracy(lambda b: b[:, :, :2], xtr, ytr, xte, yte)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction_class_accuracy(lambda b: b * float("nan"), xtr, ytr, xte, yte)
    with pytest.raises(ValueError, match="one label per image"):
        reconstruction_class_accuracy(lambda b: b, xtr, ytr[:-1], xte, yte)
    with pytest.raises(ValueError, match="test_images: expected images of shape"):
        reconstruction_class_accuracy(lambda b: b, xtr, ytr, xte[:, :, :2], yte)
    with pytest.raises(ValueError, match="train_images: expected a non-empty"):
        reconstruction_class_accuracy(lambda b: b, xtr[:0], ytr[:0], xte, yte)
    with pytest.raises(ValueError, match="batch_size"):
        reconstruction_class_accuracy(lambda b: b, xtr, ytr, xte, yte, batch_size=0)


def _identified_by_loops(rec: np.ndarray, x: np.ndarray) -> float:
    """Reference: image i is identified when its reconstruction is strictly nearer to x[i] than to every other x[j]."""
    hits = 0
    for i in range(len(x)):
        d = [float(np.sqrt(((rec[i] - x[j]) ** 2).sum())) for j in range(len(x))]
        hits += all(d[i] < d[j] for j in range(len(x)) if j != i)
    return hits / len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reconstruction_identification_against_loops(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(23, 3, 6, 5, generator=g) * 2 - 1
    # each reconstruction drifts towards another image by its own amount, plus a fixed perturbation
    mix = torch.rand(23, 1, 1, 1, generator=g)
    other = x[torch.randperm(23, generator=g)]
    wobble = 0.05 * torch.randn(x.shape, generator=g)
    recs = (1 - mix) * x + mix * other + wobble

    def rec(b):  # looks each batch item up by content, so batching cannot change the answer
        idx = [int((x - bi).abs().flatten(1).sum(1).argmin()) for bi in b]
        return recs[idx]

    r = reconstruction_identification(rec, x, batch_size=7)
    xn, rn = x.double().numpy().reshape(23, -1), recs.double().numpy().reshape(23, -1)
    assert r["reconstructions"] == pytest.approx(_identified_by_loops(rn, xn))
    assert 0 < r["reconstructions"] < 1
    means = np.broadcast_to(x.double().numpy().mean(axis=(2, 3), keepdims=True), (23, 3, 6, 5))
    assert r["mean_colour"] == pytest.approx(_identified_by_loops(means.reshape(23, -1), xn))
    assert r["chance"] == pytest.approx(1 / 23)
    assert r["mean_colour_mse"] == pytest.approx(float(((means - x.double().numpy()) ** 2).mean()))


def test_reconstruction_identification_extremes():
    x = torch.randn(9, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    assert reconstruction_identification(lambda b: b.clone(), x)["reconstructions"] == 1.0
    # every reconstruction is another image's input: none is identified
    assert reconstruction_identification(lambda b: b.roll(1, 0), x, batch_size=9)["reconstructions"] == 0.0
    # one constant output for all: at most one image can be nearest, ties count against
    assert reconstruction_identification(lambda b: torch.zeros_like(b), x)["reconstructions"] <= 1 / 9
    same = x[:1].expand(4, -1, -1, -1).clone()  # identical inputs: a tie, never identified
    assert reconstruction_identification(lambda b: b.clone(), same)["reconstructions"] == 0.0


def test_reconstructions_computed_once_score_as_the_callable():
    """An evaluation runs the model over its images once (reconstruct_all) and gives every
    metric that tensor: each metric must score it exactly as it scores the callable."""
    _, (xtr, ytr, xte, yte) = _prototype_data(seed=4)
    g = torch.Generator().manual_seed(5)
    noisy = xte + 0.8 * torch.randn(xte.shape, generator=g)
    calls = []

    def model(b):
        calls.append(b.shape[0])
        idx = [int((xte - bi).abs().flatten(1).sum(1).argmin()) for bi in b]
        return noisy[idx]

    rec = reconstruct_all(model, xte, batch_size=6)
    assert calls == [6] * 4 + [4] and rec.dtype == torch.float64 and torch.equal(rec, noisy.double())
    calls.clear()
    assert reconstruction_mse(rec, xte) == reconstruction_mse(model, xte)
    assert torch.equal(reconstruction_mse(rec, xte, per_image=True), reconstruction_mse(model, xte, per_image=True))
    assert reconstruction_identification(rec, xte) == reconstruction_identification(model, xte)
    assert (reconstruction_class_accuracy(rec, xtr, ytr, xte, yte)
            == reconstruction_class_accuracy(model, xtr, ytr, xte, yte))
    assert len(calls) == 4  # only the callable runs called the model
    net = RandomConvFeatures(seed=0)
    img = torch.rand(12, 3, 16, 16, generator=g) * 2 - 1
    shifted = (img.roll(1, -1) * 0.7).clamp(-1, 1)
    assert fid_reconstructed(net, img, shifted) == pytest.approx(
        fid_reconstructed(net, img, lambda b: (b.roll(1, -1) * 0.7).clamp(-1, 1), batch_size=5), rel=1e-9)


def test_reconstructions_given_are_checked():
    x = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(6))
    with pytest.raises(ValueError, match=r"reconstructions given have shape \(4, 3, 4, 4\)"):
        reconstruction_mse(x[:4], x)
    with pytest.raises(ValueError, match="reconstructions given have shape"):
        reconstruction_identification(x[:, :2], x)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction_identification(x * float("nan"), x)
    with pytest.raises(ValueError, match="reconstructions given have shape"):
        fid_reconstructed(RandomConvFeatures(seed=0), x, x[:, :1])
    with pytest.raises(ValueError, match="images: expected"):
        reconstruct_all(lambda b: b, torch.tensor(1.0))


def test_reconstruction_identification_bad_input():
    x = torch.randn(5, 3, 4, 4)
    with pytest.raises(ValueError, match="M >= 2"):
        reconstruction_identification(lambda b: b, x[:1])
    with pytest.raises(ValueError, match="M >= 2"):
        reconstruction_identification(lambda b: b, x[:, 0, 0])
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_identification(lambda b: b[:, :2], x)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction_identification(lambda b: b * float("inf"), x)
    with pytest.raises(ValueError, match="batch_size"):
        reconstruction_identification(lambda b: b, x, batch_size=0)


# ---------------------------------------------------------------------------- PPL

class _Recorder:
    def __init__(self, fn):
        self.fn, self.seen = fn, []

    def __call__(self, x):
        self.seen.append(x.clone())
        return self.fn(x)


def _filtered_mean(d):
    lo, hi = np.sort(d)[int(np.floor(0.01 * (len(d) - 1)))], np.sort(d)[int(np.ceil(0.99 * (len(d) - 1)))]
    return d[(d >= lo) & (d <= hi)].mean()


@pytest.mark.parametrize("sampling", ["full", "end"])
def test_ppl_quadratic_generator_exact(sampling):
    eps = 1e-4
    mapping = _Recorder(lambda z: torch.tanh(z).unsqueeze(1).repeat(1, 3, 1))  # per-layer w [b, 3, 5]
    generator = _Recorder(lambda w: (w ** 2).reshape(w.shape[0], 1, 3, 5))
    sq = lambda a, b: (a - b).square().flatten(1).sum(1)
    res = perceptual_path_length(mapping, generator, sq, latent_dim=5, num_samples=230, batch_size=100,
                                 sampling=sampling, epsilon=eps, seed=3, dtype=torch.float64)
    expected = []
    for z, w in zip(mapping.seen, generator.seen):
        b = z.shape[0] // 2
        w0, w1 = torch.tanh(z[:b]), torch.tanh(z[b:])
        wa = w[:b, 0]
        delta = w1 - w0
        t = ((wa - w0) * delta).sum(1) / delta.square().sum(1)  # position on the segment, from what G saw
        assert (t >= 0).all() and (t <= 1).all()
        if sampling == "end":
            assert torch.equal(wa, w0)
        # G(wa + eps*delta) - G(wa) = 2 eps wa*delta + eps^2 delta^2, per layer (3 layers)
        diff = 2 * eps * wa * delta + eps ** 2 * delta ** 2
        expected.append((3 * diff.square().sum(1) / eps ** 2).numpy())
    expected = np.concatenate(expected)
    assert [z.shape[0] for z in mapping.seen] == [200, 200, 60]
    np.testing.assert_allclose(res["distances"], expected, rtol=1e-6)
    assert res["ppl"] == pytest.approx(_filtered_mean(expected), rel=1e-6)
    assert res["ppl_unfiltered"] == pytest.approx(expected.mean(), rel=1e-6)
    assert res["sampling"] == sampling and res["epsilon"] == eps


def test_ppl_linear_generator_is_independent_of_t():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 7, generator=g, dtype=torch.float64)
    mapping = _Recorder(lambda z: z * 1.5)
    generator = lambda w: (w @ a.T).reshape(-1, 1, 2, 2)
    sq = lambda x, y: (x - y).square().flatten(1).sum(1)
    full = perceptual_path_length(mapping, generator, sq, 7, num_samples=50, sampling="full", dtype=torch.float64)
    z = mapping.seen[0]
    expected = (((1.5 * (z[50:] - z[:50])) @ a.T) ** 2).sum(1).numpy()
    np.testing.assert_allclose(full["distances"], expected, rtol=1e-6)
    end = perceptual_path_length(lambda z: z * 1.5, generator, sq, 7, num_samples=50, sampling="end",
                                 dtype=torch.float64)
    np.testing.assert_allclose(end["distances"], expected, rtol=1e-6)  # same seed, same pairs


def test_ppl_distances_and_errors():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1
    y = x + 0.3 * torch.randn(x.shape, generator=g)
    d = proxy_lpips_distance()
    assert torch.allclose(d(x, x), torch.zeros(3)) and (d(x, y) > 0).all()
    assert torch.allclose(d(x, y), d(y, x))
    np.testing.assert_allclose(mse_distance(x, y).numpy(), ((x - y) ** 2).flatten(1).mean(1).numpy(), rtol=1e-6)
    ident = lambda w: w.reshape(-1, 1, 1, 4)
    res = perceptual_path_length(ident, ident, d, 4, num_samples=8, batch_size=8)
    assert np.isfinite(res["ppl"])
    with pytest.raises(ValueError, match="sampling"):
        perceptual_path_length(ident, ident, mse_distance, 4, sampling="mid")
    with pytest.raises(ValueError, match="distance"):
        perceptual_path_length(ident, ident, lambda a, b: a, 4, num_samples=2)
    with pytest.raises(ValueError, match="epsilon"):
        perceptual_path_length(ident, ident, mse_distance, 4, epsilon=0)


def _report_with_random(knn1_each):
    return {"dim": 4, "train_images": 10, "test_images": 5, "encoder": {"knn1": 0.97, "linear_svc": 0.9},
            "random_encoder": {"knn1": float(np.mean(knn1_each)), "linear_svc": 0.8, "count": len(knn1_each),
                               "knn1_each": list(knn1_each)}}


def test_latent_report_text_summarises_many_random_encoders():
    from alae_fast.inference.report import format_latent_report

    rng = np.random.default_rng(3)
    each = list(rng.uniform(0.86, 0.97, 20))
    text = format_latent_report(_report_with_random(each))
    # twenty draws: their range, spread and how far their mean may be off, not twenty numbers
    pct = [100 * a for a in each]
    sd = float(np.std(pct, ddof=1))
    line = next(s for s in text.splitlines() if "the 20 random encoders" in s)
    assert f"{min(pct):.1f}% to {max(pct):.1f}%" in line
    assert f"standard deviation {sd:.1f} points" in line
    assert f"uncertain by about {sd / np.sqrt(20):.1f} points" in line
    # the accuracies stay in one column under the header, whatever the row's name
    rows = text.splitlines()
    col = rows[1].index("1-NN") + len("1-NN")
    for name in ("EMA encoder (trained)", "random encoder (mean of 20)"):
        row = next(r for r in rows if r.strip().startswith(name))
        assert row.index("%") + 1 == col, (row, rows[1])
    assert "random encoder (mean of 20)" in text
    assert f"trained - random: {97 - 100 * np.mean(each):+.1f} points 1-NN" in text
    # a few draws are still listed one by one
    few = format_latent_report(_report_with_random([0.9, 0.925, 0.95]))
    assert "1-NN: 90.0%, 92.5%, 95.0%)" in few

