"""Fréchet distance between image sets, with a pluggable feature network.

FID (Heusel et al. 2017) fits a Gaussian to the features of each image set and reports

    d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁ Σ₂)^½ .

``tr (Σ₁Σ₂)^½`` is computed as the sum of square roots of the eigenvalues of the
symmetric PSD matrix ``Σ₁^½ Σ₂ Σ₁^½`` (same eigenvalues as ``Σ₁Σ₂``), in float64. That is
exact for PSD inputs, never complex, and stable for singular covariances (fewer images
than feature dimensions), where the usual ``scipy.linalg.sqrtm(Σ₁Σ₂)`` needs an offset.

Feature networks (:func:`feature_network` picks one):

- :class:`InceptionV3Features` - the real thing, when the user has an InceptionV3 weights
  file. Two ``state_dict`` files (``torch.save`` of a dict of tensors) load, both with
  torchvision's parameter names: the FID Inception converted from TensorFlow by
  pytorch-fid (``pt_inception-2015-12-05-*.pth``, 1008-way ``fc``; its small differences
  from torchvision's graph are reproduced: padding-excluded average pools in the A, C and
  first E blocks, a max pool in the last E block) and torchvision's ImageNet
  ``inception_v3_google-*.pth`` (1000-way ``fc``). Input as pytorch-fid: bilinear resize
  to 299x299, values in [-1, 1], grey repeated to RGB; features are the 2048-d pool3
  activations. Only with the pytorch-fid file are numbers comparable to published FIDs.
  Verified: with identical random weights and random BN statistics, the ``"fid"`` variant's
  features equal those of pytorch-fid 0.3.0's FID Inception graph (its blocks after its
  bilinear resize to 299) within 1e-4 on random 64x64 images (``tests/test_fid_torchscript.py``,
  run when pytorch-fid is installed; it cannot download the real weights, so published FID
  values themselves were not reproduced).
- :class:`InceptionTorchScript` - NVlabs' TorchScript Inception (``inception-2015-12-05.pt``,
  as stylegan2-ada-pytorch / stylegan3 use it): a scripted module called as
  ``net(uint8 images [N, 3, H, W], return_features=True) -> [N, 2048]`` that resizes by
  itself. :func:`feature_network` recognises the file (a TorchScript archive holds ``code/``)
  and picks this class. What is verified here: the loading path, the uint8 input and the
  feature checks, with a small scripted module of the same interface (the real file cannot
  be downloaded on the project's machines); not that its numbers equal NVlabs' on real data.
  A TensorFlow file is refused with an error.
- :class:`RandomConvFeatures` - a **proxy**, used when no weights file is given: a fixed
  randomly initialised 4-layer conv net (weights from ``numpy.random.RandomState(seed)``,
  which numpy keeps stable across versions), so scores are reproducible and move with
  distribution shifts, but they are NOT FID values and must not be compared with
  published ones. Its ``name`` is ``"proxy-randconv"`` and reports must carry that name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import check_regular_file, first_line
from .recon import Reconstruct, reconstruct_all

__all__ = [
    "frechet_distance", "feature_statistics", "fid_from_features",
    "FeatureNet", "InceptionV3Features", "InceptionTorchScript", "RandomConvFeatures", "feature_network",
    "compute_features", "quantize_uint8", "is_torchscript_file", "fid", "fid_generated", "fid_reconstructed",
]


# ---------------------------------------------------------------------------- the math

def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` (float64) of features ``[N, D]``, N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features: expected [N, D] with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: means ``[D]``; sigma1, sigma2: covariances ``[D, D]`` (symmetric PSD).

    Returns:
        ``‖mu1 − mu2‖² + tr sigma1 + tr sigma2 − 2 tr (sigma1 sigma2)^½`` as a float >= 0
        (tiny negative rounding is clipped to 0).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"mu/sigma: expected [D] and [D, D] with one D, got {mu1.shape}, {s1.shape}, "
                         f"{mu2.shape}, {s2.shape}")
    for name, m in (("sigma1", s1), ("sigma2", s2), ("mu1", mu1), ("mu2", mu2)):
        if not np.isfinite(m).all():
            raise ValueError(f"{name}: contains NaN or infinity")
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    diff = mu1 - mu2
    return max(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean), 0.0)


def fid_from_features(features_a, features_b) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``[N, D]``, ``[M, D]``."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


# ---------------------------------------------------------------------------- networks

class FeatureNet(nn.Module):
    """A frozen image -> feature map. Subclasses set ``name``, ``dim`` and ``is_proxy``.

    ``forward(images)`` takes ``[N, C, H, W]`` float images in ``[-1, 1]`` with C = 1 or 3
    (grey is repeated to RGB), any H, W, and returns float32 ``[N, dim]``.
    """

    name: str
    dim: int
    is_proxy: bool

    def _prepare(self, images: torch.Tensor, size: int, antialias: bool) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images: expected [N, 1 or 3, H, W], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        p = next(self.parameters())
        x = images.to(device=p.device, dtype=torch.float32).clamp(-1.0, 1.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)
        return x


class _ConvBN(nn.Module):
    # conv (no bias) + batch norm (eps 1e-3, as the TF original) + ReLU; names as torchvision
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x, tf_pool: bool):
    # The TF graph averages only over in-image pixels at the border
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=not tf_pool)


class _BlockA(nn.Module):  # 35x35 grid: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1
    def __init__(self, cin: int, pool_features: int, tf_pool: bool):
        super().__init__()
        self.tf_pool = tf_pool
        self.branch1x1 = _ConvBN(cin, 64, 1)
        self.branch5x5_1 = _ConvBN(cin, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg3(x, self.tf_pool)),
        ], 1)


class _BlockB(nn.Module):  # 35 -> 17 reduction
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = _ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class _BlockC(nn.Module):  # 17x17 grid with factorised 7x7 convolutions
    def __init__(self, cin: int, c7: int, tf_pool: bool):
        super().__init__()
        self.tf_pool = tf_pool
        self.branch1x1 = _ConvBN(cin, 192, 1)
        self.branch7x7_1 = _ConvBN(cin, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x, self.tf_pool))], 1)


class _BlockD(nn.Module):  # 17 -> 8 reduction
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(cin, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = x
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class _BlockE(nn.Module):  # 8x8 grid with split 1x3 / 3x1 branches
    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool  # "avg" (torchvision), "avg_tf" (FID, Mixed_7b) or "max" (FID, Mixed_7c)
        self.branch1x1 = _ConvBN(cin, 320, 1)
        self.branch3x3_1 = _ConvBN(cin, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        if self.pool == "max":
            p = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            p = _avg3(x, self.pool == "avg_tf")
        return torch.cat([self.branch1x1(x),
                          self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
                          self.branch_pool(p)], 1)


class InceptionV3Features(FeatureNet):
    """InceptionV3 up to the 2048-d pool3 features, weights from a state-dict file.

    Args:
        weights: path to a ``torch.save``'d state dict with torchvision's parameter names
            (see the module docstring), or None to build the architecture with untrained
            weights (for tests; such a network is not a meaningful FID network).
        variant: ``"fid"`` (TF-converted FID graph), ``"torchvision"``, or ``"auto"``
            (default: ``"fid"`` when the file's ``fc.weight`` has 1008 rows, else
            ``"torchvision"``; ``"fid"`` when no file is given).
        device: where to run.

    ``forward(images [N, C, H, W] in [-1, 1]) -> [N, 2048]``; inputs are resized to
    299x299 bilinearly. Parameters that only the classifier heads use (``fc.*``,
    ``AuxLogits.*``) are ignored; every other parameter must be in the file.
    """

    is_proxy = False
    dim = 2048

    def __init__(self, weights: str | os.PathLike | None = None, variant: str = "auto",
                 device: torch.device | str = "cpu"):
        super().__init__()
        if variant not in ("auto", "fid", "torchvision"):
            raise ValueError(f"variant: expected 'auto', 'fid' or 'torchvision', got {variant!r}")
        state = _load_state_dict(weights) if weights is not None else None
        if variant == "auto":
            fc = state.get("fc.weight") if state is not None else None
            variant = "torchvision" if fc is not None and fc.shape[0] != 1008 else "fid"
        self.variant = variant
        tf = variant == "fid"
        self.name = "inception-v3-fid" if tf else "inception-v3-torchvision"
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _BlockA(192, 32, tf)
        self.Mixed_5c = _BlockA(256, 64, tf)
        self.Mixed_5d = _BlockA(288, 64, tf)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, 128, tf)
        self.Mixed_6c = _BlockC(768, 160, tf)
        self.Mixed_6d = _BlockC(768, 160, tf)
        self.Mixed_6e = _BlockC(768, 192, tf)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, "avg_tf" if tf else "avg")
        self.Mixed_7c = _BlockE(2048, "max" if tf else "avg")
        if state is not None:
            self._load(state, weights)
        self.requires_grad_(False)
        self.eval()
        self.to(device)

    def _load(self, state: dict, path) -> None:
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        own = self.state_dict()
        missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise ValueError(f"weights: {path} is not an InceptionV3 state dict with torchvision's names "
                             f"({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, "
                             f"e.g. {unexpected[:3]})")
        bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise ValueError(f"weights: {path}: shape mismatch for {bad[:3]} "
                             f"(e.g. {bad[0]}: file {tuple(state[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)})")
        self.load_state_dict(state, strict=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(images, 299, antialias=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))


def is_torchscript_file(path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``<name>/code/``), as NVlabs'
    ``inception-2015-12-05.pt`` is; ``torch.save`` files are zips too, but hold no code."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return any("/code/" in name for name in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _load_state_dict(path) -> dict:
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"weights: {str(p)!r} is a folder; give the InceptionV3 weights file")
    check_regular_file(p, f"weights: InceptionV3 weights file {str(p)!r}")
    if is_torchscript_file(p):
        raise ValueError(f"weights: {p} is a TorchScript file (such as NVlabs' inception-2015-12-05.pt), not a "
                         f"state dict: open it with feature_network() or InceptionTorchScript")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"weights: {p} could not be read as a torch state dict ({first_line(e)}); "
                         f"TensorFlow Inception files are not supported; use pytorch-fid's "
                         f"pt_inception-2015-12-05-*.pth, torchvision's inception_v3_google-*.pth or NVlabs' "
                         f"TorchScript inception-2015-12-05.pt") from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"weights: {p} does not hold a state dict (a dict of tensors)")
    return obj


def quantize_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 0..255 (clamped, ``(x + 1) * 127.5`` rounded to nearest), the
    values a saved PNG holds and NVlabs' and pytorch-fid's pipelines see."""
    return ((images.detach().to(torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


class InceptionTorchScript(FeatureNet):
    """NVlabs' TorchScript Inception feature network (see the module docstring).

    Args:
        path: the TorchScript file (``inception-2015-12-05.pt``).
        device: where to run it.

    ``forward(images [N, C, H, W] in [-1, 1], C 1 or 3) -> [N, 2048]`` float32: the images are
    quantised to uint8 (:func:`quantize_uint8`), grey repeated to RGB, and passed as
    ``net(x, return_features=True)``; the network resizes them itself. Raises ValueError for a
    file that is not TorchScript or returns features of another shape.
    """

    is_proxy = False
    dim = 2048
    name = "inception-v3-nvlabs-torchscript"

    def __init__(self, path: str | os.PathLike, device: torch.device | str = "cpu"):
        super().__init__()
        p = Path(path)
        check_regular_file(p, f"weights: Inception file {str(p)!r}")
        try:
            self.net = torch.jit.load(str(p), map_location=device).eval()
        except Exception as e:
            raise ValueError(f"weights: {p} could not be loaded as TorchScript ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from e
        self.requires_grad_(False)
        self._device = torch.device(device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images: expected [N, 1 or 3, H, W], got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
        x = quantize_uint8(images).to(self._device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        f = self.net(x.contiguous(), return_features=True)
        if not isinstance(f, torch.Tensor) or tuple(f.shape) != (images.shape[0], self.dim):
            raise ValueError(f"weights: the TorchScript network returned "
                             f"{tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__}, expected "
                             f"[{images.shape[0]}, {self.dim}] features")
        return f.to(torch.float32)


class RandomConvFeatures(FeatureNet):
    """PROXY feature network: a fixed, randomly initialised conv net (not Inception).

    Images are resized to 64x64 (bilinear with antialiasing), grey repeated to RGB, then
    passed through four 3x3 stride-2 convolutions (3 -> 32 -> 64 -> 128 -> 256 channels,
    He-scaled normal weights drawn from ``numpy.random.RandomState(seed)``, zero bias,
    leaky ReLU 0.2). The feature vector is the concatenation of each layer's per-channel
    spatial mean: 480 values covering four scales.

    Random conv features are sensitive to colour, texture and shape statistics, so a
    Fréchet distance on them ranks distributions sensibly, but its values are on their
    own scale: report them as "FID (proxy-randconv)", never as FID.
    """

    is_proxy = True
    channels = (32, 64, 128, 256)

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu"):
        super().__init__()
        self.seed = int(seed)
        self.name = "proxy-randconv" if seed == 0 else f"proxy-randconv-seed{seed}"
        rng = np.random.RandomState(self.seed)
        self.weights = nn.ParameterList()
        cin = 3
        for cout in self.channels:
            w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
            self.weights.append(nn.Parameter(torch.from_numpy(w.astype(np.float32)), requires_grad=False))
            cin = cout
        self.dim = sum(self.channels)
        self.eval()
        self.to(device)

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Activation maps of the four layers: ``[N, 32, 32, 32]`` ... ``[N, 256, 4, 4]``."""
        x = self._prepare(images, 64, antialias=True)
        out = []
        for w in self.weights:
            x = F.leaky_relu(F.conv2d(x, w, stride=2, padding=1), 0.2)
            out.append(x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([a.mean(dim=(2, 3)) for a in self.layers(images)], 1)


def feature_network(inception_weights: str | os.PathLike | None = None,
                    device: torch.device | str = "cpu") -> FeatureNet:
    """The feature network of an ``--inception-weights`` file: :class:`InceptionTorchScript` for a
    TorchScript file (NVlabs' ``inception-2015-12-05.pt``), :class:`InceptionV3Features` for a
    state dict, and the :class:`RandomConvFeatures` proxy when None."""
    if inception_weights is not None:
        if is_torchscript_file(inception_weights):
            return InceptionTorchScript(inception_weights, device=device)
        return InceptionV3Features(inception_weights, device=device)
    return RandomConvFeatures(device=device)


# ---------------------------------------------------------------------------- FID of image sets

Images = torch.Tensor | Iterable[torch.Tensor]


def compute_features(net: FeatureNet, images: Images, batch_size: int = 64, quantize: bool = True) -> np.ndarray:
    """Features ``[N, net.dim]`` (float64) of a tensor ``[N, C, H, W]`` in [-1, 1] or an iterable
    of such batches.

    ``quantize`` (default True): images are first rounded to the 256 levels of uint8
    (:func:`quantize_uint8`, back to [-1, 1]), so generated images are scored as the PNGs that
    NVlabs' and pytorch-fid's pipelines read; real images from 8-bit files are unchanged by it."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    batches = (images[i:i + batch_size] for i in range(0, images.shape[0], batch_size)) \
        if isinstance(images, torch.Tensor) else images
    out = []
    with torch.no_grad():
        for x in batches:
            if quantize and isinstance(x, torch.Tensor) and x.is_floating_point():
                x = quantize_uint8(x).to(torch.float32) / 127.5 - 1.0
            out.append(net(x).to("cpu", torch.float64).numpy())
    if not out:
        raise ValueError("images: no images given")
    return np.concatenate(out)


def fid(net: FeatureNet, images_a: Images, images_b: Images, batch_size: int = 64) -> float:
    """Fréchet distance in ``net``'s feature space between two image sets (each >= 2 images).

    With fewer images than ``net.dim`` the covariances are singular and the value is biased
    upwards; compare only scores computed with the same ``net`` and image counts.
    """
    return fid_from_features(compute_features(net, images_a, batch_size), compute_features(net, images_b, batch_size))


def fid_generated(net: FeatureNet, real_images: Images, sample: Callable[[int], torch.Tensor], num: int,
                  batch_size: int = 64) -> float:
    """FID of generations: ``sample(n)`` returns ``n`` generated images ``[n, C, H, W]`` in [-1, 1];
    ``num`` of them are compared with ``real_images``."""
    if num < 2:
        raise ValueError(f"num: expected at least 2 generated images, got {num}")

    def batches():
        done = 0
        while done < num:
            n = min(batch_size, num - done)
            with torch.no_grad():
                x = sample(n)
            if x.shape[0] != n:
                raise ValueError(f"sample: asked for {n} images, got {x.shape[0]}")
            done += n
            yield x

    return fid_from_features(compute_features(net, real_images, batch_size), compute_features(net, batches()))


def fid_reconstructed(net: FeatureNet, real_images: torch.Tensor, reconstruct: Reconstruct,
                      batch_size: int = 64) -> float:
    """FID between ``real_images`` ``[N, C, H, W]`` and ``reconstruct(real_images)`` (applied per
    batch), or the reconstructions already computed: a tensor of ``real_images``' shape.

    Raises ValueError when given reconstructions of another shape or with NaN or infinity
    (checked by :func:`alae_fast.eval.reconstruct_all`)."""
    if isinstance(reconstruct, torch.Tensor):
        return fid(net, real_images, reconstruct_all(reconstruct, real_images), batch_size)

    def batches():
        for i in range(0, real_images.shape[0], batch_size):
            with torch.no_grad():
                yield reconstruct(real_images[i:i + batch_size])

    return fid_from_features(compute_features(net, real_images, batch_size), compute_features(net, batches()))
