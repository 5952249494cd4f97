"""FID's feature networks, issue 14: NVlabs' TorchScript Inception file (tested with a small
scripted module of the same interface, since the real file cannot be downloaded here), uint8
quantisation before the network, and an optional comparison with pytorch-fid's network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alae_fast.eval import (InceptionTorchScript, InceptionV3Features, RandomConvFeatures, compute_features,
                            feature_network, quantize_uint8)
from alae_fast.eval.fid import is_torchscript_file


class _FakeNVlabsInception(torch.nn.Module):
    """NVlabs' detector interface: uint8 [N, 3, H, W] in, 2048 features out with
    return_features=True; it refuses float input, as a uint8-only graph would misread it."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Parameter(torch.randn(3 * 4 * 4, 2048, generator=torch.Generator().manual_seed(0)))

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if img.dtype != torch.uint8:
            raise RuntimeError("expected uint8 input")
        x = F.adaptive_avg_pool2d(img.to(torch.float32) / 255.0, 4).flatten(1)
        f = x @ self.proj
        return f if return_features else f[:, :1008]


def _script(tmp_path):
    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(_FakeNVlabsInception()).save(str(path))
    return path


def test_torchscript_file_is_recognised_and_fed_uint8(tmp_path):
    path = _script(tmp_path)
    assert is_torchscript_file(path)
    sd = tmp_path / "sd.pth"
    torch.save({"a": torch.zeros(2)}, sd)
    assert not is_torchscript_file(sd)  # torch.save files are zips too, without code/
    net = feature_network(path)
    assert isinstance(net, InceptionTorchScript) and not net.is_proxy and net.dim == 2048
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 1, 20, 20, generator=g) * 2 - 1
    ref = _FakeNVlabsInception()(quantize_uint8(x).expand(-1, 3, -1, -1).contiguous(), return_features=True)
    torch.testing.assert_close(net(x), ref)
    # the network sees what a saved PNG holds: values within half a level give the same features
    on_levels = quantize_uint8(x).float() / 127.5 - 1
    torch.testing.assert_close(net(on_levels + 0.3 / 127.5), net(on_levels), rtol=0, atol=0)
    assert compute_features(net, x).shape == (5, 2048)
    with pytest.raises(ValueError, match="TorchScript file"):
        InceptionV3Features(path)  # a state-dict loader given the scripted file says what it is


def test_torchscript_bad_files(tmp_path):
    class Wrong(torch.nn.Module):
        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return img.float().mean(dim=(2, 3))

    p = tmp_path / "wrong.pt"
    torch.jit.script(Wrong()).save(str(p))
    with pytest.raises(ValueError, match=r"expected \[2, 2048\] features"):
        feature_network(p)(torch.zeros(2, 3, 8, 8))
    with pytest.raises(FileNotFoundError):
        InceptionTorchScript(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could not be loaded as TorchScript"):
        InceptionTorchScript(tmp_path / "junk.pt")


def test_quantize_uint8_rounds_like_saving_a_png():
    x = torch.tensor([-2.0, -1.0, -1 + 0.4 / 127.5, -1 + 0.6 / 127.5, 0.0, 1.0, 3.0])
    assert quantize_uint8(x).tolist() == [0, 0, 0, 1, 128, 255, 255]
    from alae_fast.inference.pictures import to_uint8
    y = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1
    assert np.array_equal(to_uint8(y), quantize_uint8(y).permute(0, 2, 3, 1).numpy())  # same rule as the PNGs


def test_compute_features_quantises_generated_images():
    net = RandomConvFeatures()
    g = torch.Generator().manual_seed(3)
    levels = torch.randint(0, 256, (6, 3, 16, 16), generator=g).float() / 127.5 - 1  # exactly 8-bit images
    off = levels + (torch.rand(levels.shape, generator=g) - 0.5) * 0.9 / 127.5  # within half a level
    np.testing.assert_array_equal(compute_features(net, off), compute_features(net, levels))
    assert not np.array_equal(compute_features(net, off, quantize=False), compute_features(net, levels))


def test_matches_pytorch_fid_network_when_installed(tmp_path):
    """Our FID-variant InceptionV3 against pytorch-fid's, with the same (random) weights: pytorch-fid
    downloads its real weights, which is impossible here, so the graphs are compared, not the
    published numbers."""
    inception = pytest.importorskip("pytorch_fid.inception")
    torch.manual_seed(0)
    theirs = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    theirs.Mixed_5b = inception.FIDInceptionA(192, pool_features=32)
    theirs.Mixed_5c = inception.FIDInceptionA(256, pool_features=64)
    theirs.Mixed_5d = inception.FIDInceptionA(288, pool_features=64)
    theirs.Mixed_6b = inception.FIDInceptionC(768, channels_7x7=128)
    theirs.Mixed_6c = inception.FIDInceptionC(768, channels_7x7=160)
    theirs.Mixed_6d = inception.FIDInceptionC(768, channels_7x7=160)
    theirs.Mixed_6e = inception.FIDInceptionC(768, channels_7x7=192)
    theirs.Mixed_7b = inception.FIDInceptionE_1(1280)
    theirs.Mixed_7c = inception.FIDInceptionE_2(2048)
    sd = theirs.state_dict()
    for k in sd:
        if k.endswith("running_mean"):
            sd[k] = torch.randn_like(sd[k]) * 0.1
    theirs.load_state_dict(sd)
    path = tmp_path / "pt_inception.pth"
    torch.save(sd, path)
    ours = InceptionV3Features(path)
    # pytorch-fid's InceptionV3.forward (resize_input=True; inputs already in [-1, 1]) over its
    # block list; the wrapper itself cannot be built here, as it downloads weights
    blocks = [theirs.Conv2d_1a_3x3, theirs.Conv2d_2a_3x3, theirs.Conv2d_2b_3x3, theirs.maxpool1,
              theirs.Conv2d_3b_1x1, theirs.Conv2d_4a_3x3, theirs.maxpool2, theirs.Mixed_5b, theirs.Mixed_5c,
              theirs.Mixed_5d, theirs.Mixed_6a, theirs.Mixed_6b, theirs.Mixed_6c, theirs.Mixed_6d, theirs.Mixed_6e,
              theirs.Mixed_7a, theirs.Mixed_7b, theirs.Mixed_7c, torch.nn.AdaptiveAvgPool2d((1, 1))]
    net = torch.nn.Sequential(*blocks).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        want = net(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)).flatten(1)
    torch.testing.assert_close(ours(x), want, rtol=1e-4, atol=1e-4)
